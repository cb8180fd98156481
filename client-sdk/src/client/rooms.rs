//! World rooms: join, leave, members, broadcast and the kept history. Membership belongs to
//! the connection: after a reconnect the client is in no room until it joins again.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

impl Client {
    /// Joins room `room` on this connection; returns how many users are in it, the user
    /// included. Messages sent to the room then arrive as [`crate::Event::RoomMessage`].
    ///
    /// # Errors
    /// `TOO_MANY_ROOMS`, `ROOM_FULL`, `INVALID_ARGUMENT` (room 0), or a connection error.
    pub async fn room_join(&self, room: u64) -> Result<pb::RoomJoined, ClientError> {
        match self
            .call(RequestKind::RoomJoin(pb::RoomJoin { room }))
            .await?
        {
            ResponseResult::RoomJoin(j) => Ok(j),
            other => Err(unexpected("RoomJoin", &other)),
        }
    }

    /// Leaves room `room` (a no-op when not in it).
    ///
    /// # Errors
    /// A connection error.
    pub async fn room_leave(&self, room: u64) -> Result<(), ClientError> {
        match self
            .call(RequestKind::RoomLeave(pb::RoomLeave { room }))
            .await?
        {
            ResponseResult::RoomLeave(_) => Ok(()),
            other => Err(unexpected("RoomLeave", &other)),
        }
    }

    /// The users in a joined room (at most `limit`, 0 = 100), and how many there are.
    ///
    /// # Errors
    /// `NOT_IN_ROOM`, or a connection error.
    pub async fn room_members(
        &self,
        room: u64,
        limit: u32,
    ) -> Result<pb::RoomMemberList, ClientError> {
        let r = pb::RoomMembers { room, limit };
        match self.call(RequestKind::RoomMembers(r)).await? {
            ResponseResult::RoomMembers(l) => Ok(l),
            other => Err(unexpected("RoomMembers", &other)),
        }
    }

    /// Sends `text` to everyone in a joined room, with a fresh `client_msg_id`; returns the
    /// ack once it is stored.
    ///
    /// # Errors
    /// `NOT_IN_ROOM`, `INVALID_ARGUMENT`, `TOO_LARGE`, `RATE_LIMITED`, or a connection error.
    pub async fn room_send(&self, room: u64, text: &str) -> Result<pb::RoomSent, ClientError> {
        self.room_send_with(pb::RoomSend {
            room,
            client_msg_id: self.inner.next_client_msg_id(),
            text: text.to_owned(),
        })
        .await
    }

    /// Sends a room message as given (a resend with the same `client_msg_id` is acked with
    /// the original, `duplicate` set).
    ///
    /// # Errors
    /// As [`Client::room_send`].
    pub async fn room_send_with(&self, msg: pb::RoomSend) -> Result<pb::RoomSent, ClientError> {
        match self.call(RequestKind::RoomSend(msg)).await? {
            ResponseResult::RoomSend(ok) => Ok(ok),
            other => Err(unexpected("RoomSend", &other)),
        }
    }

    /// A page of a joined room's kept history, newest first: `limit` (0 = 50) messages with
    /// id below `before_id` (0 = from the newest). While `has_more`, ask again with the last
    /// message's id.
    ///
    /// # Errors
    /// `NOT_IN_ROOM`, or a connection error.
    pub async fn room_history(
        &self,
        room: u64,
        limit: u32,
        before_id: u64,
    ) -> Result<pb::RoomMessages, ClientError> {
        let r = pb::RoomHistory {
            room,
            limit,
            before_id,
        };
        match self.call(RequestKind::RoomHistory(r)).await? {
            ResponseResult::RoomHistory(m) => Ok(m),
            other => Err(unexpected("RoomHistory", &other)),
        }
    }
}
