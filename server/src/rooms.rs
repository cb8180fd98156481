//! World rooms' membership, in memory: room id → the connections in it, sharded (dashmap).
//! Membership belongs to a connection, not a user: a connection joins and leaves, and
//! leaves all its rooms when it closes or logs out ([`Rooms::leave_all`]). A broadcast
//! copies one encoded frame into each member's outbox under the room's shard lock, never
//! waiting: a full outbox kicks that connection as a slow consumer ([`Peer::deliver`]).
//!
//! Lock order: a connection's entry in `by_conn`, then a room's in `rooms`; no guard of one
//! map is taken while the other's is held the other way round.

use std::collections::HashMap;

use dashmap::DashMap;
use feige_storage::UserId;

use crate::session::Peer;

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinError {
    /// The connection is in `max_rooms_per_connection` rooms.
    TooManyRooms,
    /// The room holds `max_room_connections` connections.
    RoomFull,
}

/// One room: its connections, and how many of them each user has (for the member count).
#[derive(Debug, Default)]
struct Room {
    conns: HashMap<u64, (UserId, Peer)>,
    users: HashMap<UserId, u32>,
}

/// Every room with a connection in it, and each connection's rooms.
#[derive(Debug)]
pub(crate) struct Rooms {
    rooms: DashMap<u64, Room>,
    by_conn: DashMap<u64, Vec<u64>>,
    max_per_conn: usize,
    max_conns: usize,
}

impl Rooms {
    /// An empty registry with the configured bounds.
    pub(crate) fn new(max_per_conn: usize, max_conns: usize) -> Self {
        Rooms {
            rooms: DashMap::new(),
            by_conn: DashMap::new(),
            max_per_conn,
            max_conns,
        }
    }

    /// Adds the connection `peer` of `user` to `room` (joining twice is a no-op); returns
    /// the number of distinct users in the room.
    ///
    /// # Errors
    /// The connection's or the room's bound.
    pub(crate) fn join(&self, room: u64, user: UserId, peer: Peer) -> Result<usize, JoinError> {
        let conn_id = peer.conn_id;
        let mut mine = self.by_conn.entry(conn_id).or_default();
        if mine.contains(&room) {
            return Ok(self.rooms.get(&room).map_or(0, |r| r.users.len()));
        }
        if mine.len() >= self.max_per_conn {
            return Err(JoinError::TooManyRooms);
        }
        let mut r = self.rooms.entry(room).or_default();
        // A new room holds no connection yet, so it is never full: no empty room is left.
        if r.conns.len() >= self.max_conns {
            let none = mine.is_empty();
            drop((r, mine));
            if none {
                self.by_conn.remove_if(&conn_id, |_, m| m.is_empty());
            }
            return Err(JoinError::RoomFull);
        }
        r.conns.insert(conn_id, (user, peer));
        *r.users.entry(user).or_default() += 1;
        mine.push(room);
        Ok(r.users.len())
    }

    /// Removes connection `conn_id` from `room`; returns whether it was in it.
    pub(crate) fn leave(&self, room: u64, conn_id: u64) -> bool {
        let left = match self.by_conn.get_mut(&conn_id) {
            Some(mut mine) => {
                let before = mine.len();
                mine.retain(|r| *r != room);
                before != mine.len()
            }
            None => false,
        };
        self.by_conn.remove_if(&conn_id, |_, mine| mine.is_empty());
        if left {
            self.remove_member(room, conn_id);
        }
        left
    }

    /// Removes connection `conn_id` from every room it is in (it closed or logged out).
    pub(crate) fn leave_all(&self, conn_id: u64) {
        if let Some((_, mine)) = self.by_conn.remove(&conn_id) {
            for room in mine {
                self.remove_member(room, conn_id);
            }
        }
    }

    fn remove_member(&self, room: u64, conn_id: u64) {
        self.rooms.remove_if_mut(&room, |_, r| {
            if let Some((user, _)) = r.conns.remove(&conn_id) {
                if let Some(n) = r.users.get_mut(&user) {
                    *n -= 1;
                    if *n == 0 {
                        r.users.remove(&user);
                    }
                }
            }
            r.conns.is_empty()
        });
    }

    /// Whether connection `conn_id` is in `room`.
    pub(crate) fn contains(&self, room: u64, conn_id: u64) -> bool {
        self.rooms
            .get(&room)
            .is_some_and(|r| r.conns.contains_key(&conn_id))
    }

    /// The users in `room`, by id, at most `limit`, and how many there are.
    pub(crate) fn members(&self, room: u64, limit: usize) -> (Vec<UserId>, usize) {
        let Some(r) = self.rooms.get(&room) else {
            return (Vec::new(), 0);
        };
        let mut users: Vec<UserId> = r.users.keys().copied().collect();
        drop(r);
        let count = users.len();
        users.sort_unstable();
        users.truncate(limit);
        (users, count)
    }

    /// Whether `room` has a connection in it (a room exists only while it has).
    pub(crate) fn exists(&self, room: u64) -> bool {
        self.rooms.contains_key(&room)
    }

    /// Whether `user` has a connection in `room`.
    pub(crate) fn has_user(&self, room: u64, user: UserId) -> bool {
        self.rooms
            .get(&room)
            .is_some_and(|r| r.users.contains_key(&user))
    }

    /// Copies `frame` into the outbox of every connection in `room` but `except` (the
    /// sender's, which gets the ack), without waiting.
    pub(crate) fn broadcast(&self, room: u64, except: u64, frame: &[u8]) {
        if let Some(r) = self.rooms.get(&room) {
            for (conn_id, (_, peer)) in &r.conns {
                if *conn_id != except {
                    peer.deliver(frame);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Outbox;

    fn peer(conn_id: u64) -> (Peer, crate::session::OutboxReader) {
        let (outbox, rx) = Outbox::new(64);
        let p = Peer {
            conn_id,
            token_tag: 0,
            outbox,
        };
        (p, rx)
    }

    #[test]
    fn joins_count_users_and_respect_the_bounds() {
        let rooms = Rooms::new(2, 3);
        let (a1, _r1) = peer(1);
        let (a2, _r2) = peer(2);
        let (b, _r3) = peer(3);
        let (c, _r4) = peer(4);
        assert_eq!(rooms.join(7, 100, a1.clone()), Ok(1));
        assert_eq!(
            rooms.join(7, 100, a1.clone()),
            Ok(1),
            "a second join is a no-op"
        );
        assert_eq!(rooms.join(7, 100, a2), Ok(1), "one user on two connections");
        assert_eq!(rooms.join(7, 200, b), Ok(2));
        assert_eq!(rooms.join(7, 300, c.clone()), Err(JoinError::RoomFull));
        assert!(
            rooms.by_conn.get(&4).is_none(),
            "a refused join leaves nothing behind"
        );
        assert_eq!(rooms.join(8, 100, a1.clone()), Ok(1));
        assert_eq!(rooms.join(9, 100, a1), Err(JoinError::TooManyRooms));
        assert!(rooms.rooms.get(&9).is_none(), "no empty room is made");
        assert_eq!(rooms.members(7, 10), (vec![100, 200], 2));
        assert_eq!(rooms.members(7, 1), (vec![100], 2));
        assert!(rooms.contains(7, 1));
        assert!(rooms.leave(7, 2));
        assert!(!rooms.leave(7, 2), "already left");
        assert_eq!(
            rooms.members(7, 10),
            (vec![100, 200], 2),
            "100 is still in on conn 1"
        );
        rooms.leave_all(1);
        assert_eq!(rooms.members(7, 10), (vec![200], 1));
        assert!(!rooms.contains(8, 1));
        assert!(rooms.rooms.get(&8).is_none(), "an empty room is dropped");
        assert!(rooms.by_conn.get(&1).is_none());
        assert_eq!(rooms.join(9, 300, c), Ok(1));
    }

    #[tokio::test]
    async fn a_broadcast_reaches_everyone_but_the_sender() {
        let rooms = Rooms::new(4, 10);
        let (a, ra) = peer(1);
        let (b, rb) = peer(2);
        rooms.join(5, 10, a).unwrap();
        rooms.join(5, 20, b).unwrap();
        rooms.broadcast(5, 1, &[0, 0, 0, 1, 0]);
        assert!(!rb.is_empty());
        assert!(ra.is_empty());
    }
}
