//! World rooms: RoomJoin and RoomLeave (on the connection task: they change what the
//! connection is in, [`crate::rooms::Rooms`]), RoomSend (rate-limited on the connection
//! task, then stored through the writer and broadcast after the commit), RoomMembers and
//! RoomHistory (reads). Every request but a join needs the connection to be in the room.

use feige_protocol::{frame, pb, Envelope, ErrorCode, PushKind, ResponseResult};
use feige_storage::{now_ms, rooms as store};
use tokio::time::Instant;

use super::caller::{token_tag, Caller, Conn, Flow, Reply, State, SMALL_REPLY};
use crate::convert;
use crate::error::RequestError;
use crate::rooms::JoinError;
use crate::validate::{self, page_limit};

const MEMBERS_DEFAULT: u32 = 100;
const MEMBERS_MAX: u32 = 1000;
const HISTORY_DEFAULT: u32 = 50;
const HISTORY_MAX: u32 = 200;

fn room_id(room: u64) -> Result<u64, RequestError> {
    if room == 0 {
        return Err(RequestError::invalid("room is required"));
    }
    Ok(room)
}

fn ensure_in(me: &Caller, room: u64) -> Result<(), RequestError> {
    if me.shared.rooms.contains(room, me.conn_id) {
        Ok(())
    } else {
        Err(RequestError::new(
            ErrorCode::NotInRoom,
            format!("this connection has not joined room {room}"),
        ))
    }
}

/// Serves `RoomJoin`: adds this connection to the room; answers the room's user count.
pub(crate) fn join(conn: &mut Conn, rid: u64, r: pb::RoomJoin) -> Flow {
    let State::LoggedIn(login) = &conn.state else {
        return conn.not_logged_in(rid);
    };
    let user = login.user;
    let peer = conn.peer(token_tag(&login.token_hash));
    let result = room_id(r.room).and_then(|room| match conn.shared.rooms.join(room, user, peer) {
        Ok(n) => Ok(ResponseResult::RoomJoin(pb::RoomJoined {
            room,
            member_count: u32::try_from(n).unwrap_or(u32::MAX),
        })),
        Err(JoinError::TooManyRooms) => Err(RequestError::new(
            ErrorCode::TooManyRooms,
            format!(
                "a connection may be in at most {} rooms",
                conn.shared.config.max_rooms_per_connection
            ),
        )),
        Err(JoinError::RoomFull) => Err(RequestError::new(
            ErrorCode::RoomFull,
            format!("room {room} is full"),
        )),
    });
    conn.respond(rid, result);
    Flow::Continue
}

/// Serves `RoomLeave`: removes this connection from the room (a no-op when not in it).
pub(crate) fn leave(conn: &mut Conn, rid: u64, r: pb::RoomLeave) -> Flow {
    if !conn.logged_in() {
        return conn.not_logged_in(rid);
    }
    let result = room_id(r.room).map(|room| {
        conn.shared.rooms.leave(room, conn.conn_id);
        ResponseResult::RoomLeave(pb::Done {})
    });
    conn.respond(rid, result);
    Flow::Continue
}

/// Serves `RoomMembers`: the room's users' public profiles, by id.
pub(crate) async fn members(me: Caller, r: pb::RoomMembers) -> Reply {
    let room = room_id(r.room)?;
    ensure_in(&me, room)?;
    let limit = page_limit(r.limit, MEMBERS_DEFAULT, MEMBERS_MAX);
    let (ids, count) = me.shared.rooms.members(room, limit);
    let users = me
        .shared
        .store
        .read(move |c| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = feige_storage::social::public_user(c, id)? {
                    out.push(u);
                }
            }
            Ok(out)
        })
        .await?;
    // The list stops at the reply budget (`count` still tells how many there are).
    let budget = me.shared.config.reply_page_bytes().saturating_sub(1024);
    let mut used = 0;
    let members = users
        .iter()
        .map(convert::public)
        .take_while(|u| {
            used += prost::Message::encoded_len(u) + 8;
            used <= budget
        })
        .collect();
    Ok(ResponseResult::RoomMembers(pb::RoomMemberList {
        members,
        count: u32::try_from(count).unwrap_or(u32::MAX),
    }))
}

/// Serves `RoomSend` on the connection task: the sender's message rate (shared with
/// SendMessage), then the rest on its own task ([`send_stored`]).
pub(crate) async fn send(conn: &mut Conn, rid: u64, r: pb::RoomSend) -> Flow {
    let Some(me) = conn.caller() else {
        return conn.not_logged_in(rid);
    };
    if let Err(wait) = conn
        .shared
        .limits
        .send(me.user, conn.peer_addr.ip(), Instant::now())
    {
        conn.respond(
            rid,
            Err(RequestError::rate_limited("sending too fast", wait)),
        );
        return Flow::Continue;
    }
    conn.spawn_reply(rid, SMALL_REPLY, send_stored(me, r)).await
}

/// Stores a room message through the writer and, after the commit, pushes it to every
/// other connection in the room (a resend is acked again and pushed to no one).
async fn send_stored(me: Caller, r: pb::RoomSend) -> Reply {
    let room = room_id(r.room)?;
    ensure_in(&me, room)?;
    validate::message_text(&r.text, me.shared.config.max_text_len)?;
    let (user, keep) = (me.user, me.shared.config.room_history);
    let (m, duplicate) = me
        .shared
        .writer
        .call(move |c| store::store(c, room, user, r.client_msg_id, &r.text, keep, now_ms()))
        .await?;
    let ack = pb::RoomSent {
        message_id: m.id,
        sent_at_ms: m.sent_at_ms,
        duplicate,
    };
    if !duplicate {
        let push = Envelope::push(PushKind::RoomMessage(room_message(m)));
        me.shared
            .rooms
            .broadcast(room, me.conn_id, &frame::encode_to_bytes(&push));
    }
    Ok(ResponseResult::RoomSend(ack))
}

/// Serves `RoomHistory`: a page of the room's kept messages, newest first.
pub(crate) async fn history(me: Caller, r: pb::RoomHistory) -> Reply {
    let room = room_id(r.room)?;
    ensure_in(&me, room)?;
    let before = validate::id("before_id", r.before_id)?;
    let limit = page_limit(r.limit, HISTORY_DEFAULT, HISTORY_MAX);
    let (list, has_more) = me
        .shared
        .store
        .read(move |c| store::history(c, room, before, limit))
        .await?;
    // The page stops at the reply budget, as History's does.
    let budget = me.shared.config.reply_page_bytes().saturating_sub(1024);
    let (mut used, mut messages, mut has_more) = (0, Vec::with_capacity(list.len()), has_more);
    for m in list {
        let m = room_message(m);
        used += prost::Message::encoded_len(&m) + 8;
        if used > budget {
            has_more = true;
            break;
        }
        messages.push(m);
    }
    Ok(ResponseResult::RoomHistory(pb::RoomMessages {
        messages,
        has_more,
    }))
}

pub(crate) fn room_message(m: store::RoomMessageRecord) -> pb::RoomMessage {
    pb::RoomMessage {
        room: m.room,
        message_id: m.id,
        from_user: m.sender,
        client_msg_id: m.client_msg_id,
        text: m.text,
        sent_at_ms: m.sent_at_ms,
    }
}
