//! The session map: which users are online on which connections.
//!
//! Sharded (dashmap) by user id. Each entry lists the user's live connections as [`Peer`]s;
//! routing copies the encoded frame into each connection's outbox and never awaits while
//! holding a shard guard: [`Outbox::push`] either queues the frame or marks the peer as too slow.

use dashmap::DashMap;
use feige_protocol::ErrorCode;
use feige_storage::UserId;

pub use crate::control::Control;
pub use crate::outbox::{Outbox, OutboxReader, PushError, Reservation, MAX_OUTBOX_BYTES};

/// One live, logged-in connection of a user.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Server-unique connection id.
    pub conn_id: u64,
    /// First 8 bytes of the session token's hash, to find the connections of one token.
    pub token_tag: u64,
    /// The connection's bounded queue of encoded frames, and its kick switch.
    pub outbox: Outbox,
}

impl Peer {
    /// Queues `frame` without waiting; a full outbox kicks the connection as a slow consumer
    /// (it will reconnect and sync, so nothing is lost).
    pub fn deliver(&self, frame: &[u8]) {
        if let Err(PushError::Full) = self.outbox.push(frame) {
            self.control().kick(ErrorCode::SlowConsumer);
        }
    }

    /// Like [`Peer::deliver`] for `count` whole frames back to back in `frames`
    /// ([`Outbox::push_many`]).
    pub fn deliver_many(&self, frames: &[u8], count: u32) {
        if let Err(PushError::Full) = self.outbox.push_many(frames, count) {
            self.control().kick(ErrorCode::SlowConsumer);
        }
    }

    /// Like [`Peer::deliver_many`], but writes to the socket directly when it can
    /// ([`Outbox::push_many_now`]).
    pub fn deliver_many_now(&self, frames: &[u8], count: u32) {
        if let Err(PushError::Full) = self.outbox.push_many_now(frames, count) {
            self.control().kick(ErrorCode::SlowConsumer);
        }
    }

    /// The connection's kick switch.
    pub fn control(&self) -> &Control {
        self.outbox.control()
    }

    /// Like [`Peer::deliver`], but writes to the socket directly when it can
    /// ([`Outbox::push_now`]).
    pub fn deliver_now(&self, frame: &[u8]) {
        if let Err(PushError::Full) = self.outbox.push_now(frame) {
            self.control().kick(ErrorCode::SlowConsumer);
        }
    }
}

/// One user's live connections. Most users have one, held inline: a `Vec` would cost every
/// logged-in user a heap allocation (room for four peers) beside its map entry.
#[derive(Debug, Clone)]
enum Peers {
    One(Peer),
    /// Two or more.
    Many(Vec<Peer>),
}

impl Peers {
    fn push(&mut self, peer: Peer) {
        match self {
            Peers::One(first) => {
                // Two peers take exactly their room; further ones grow it as a `Vec` does.
                *self = Peers::Many(vec![first.clone(), peer]);
            }
            Peers::Many(v) => v.push(peer),
        }
    }

    /// Removes the connection `conn_id`; returns true when none is left (the entry is then
    /// to be dropped). Back to one, the list is held inline again.
    fn remove(&mut self, conn_id: u64) -> bool {
        match self {
            Peers::One(p) => p.conn_id == conn_id,
            Peers::Many(v) => {
                v.retain(|p| p.conn_id != conn_id);
                match v.len() {
                    0 => true,
                    1 => {
                        if let Some(p) = v.pop() {
                            *self = Peers::One(p);
                        }
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    fn as_slice(&self) -> &[Peer] {
        match self {
            Peers::One(p) => std::slice::from_ref(p),
            Peers::Many(v) => v,
        }
    }
}

/// user id → that user's live connections.
#[derive(Debug, Default)]
pub struct Sessions {
    map: DashMap<UserId, Peers>,
}

impl Sessions {
    /// Registers a logged-in connection; returns true when it is the user's first.
    pub fn add(&self, user: UserId, peer: Peer) -> bool {
        self.add_if(user, peer, |_| true).unwrap_or(false)
    }

    /// Registers a logged-in connection if `allowed(connections the user holds now)`, counted
    /// and added under the entry's lock, so that concurrent logins cannot pass a cap together.
    /// Returns whether it is the user's first, or `None` when refused.
    pub fn add_if(
        &self,
        user: UserId,
        peer: Peer,
        allowed: impl FnOnce(usize) -> bool,
    ) -> Option<bool> {
        match self.map.entry(user) {
            dashmap::Entry::Occupied(mut e) => {
                if !allowed(e.get().as_slice().len()) {
                    return None;
                }
                e.get_mut().push(peer);
                Some(false)
            }
            dashmap::Entry::Vacant(e) => {
                if !allowed(0) {
                    return None;
                }
                e.insert(Peers::One(peer));
                Some(true)
            }
        }
    }

    /// Removes a connection; returns true when it was the user's last.
    pub fn remove(&self, user: UserId, conn_id: u64) -> bool {
        let mut last = false;
        self.map.remove_if_mut(&user, |_, peers| {
            last = peers.remove(conn_id);
            last
        });
        last
    }

    /// Calls `f` for each live connection of `user`, under the shard lock (`f` must not block).
    pub fn for_each(&self, user: UserId, mut f: impl FnMut(&Peer)) {
        if let Some(peers) = self.map.get(&user) {
            peers.as_slice().iter().for_each(&mut f);
        }
    }

    /// Users with at least one live connection.
    pub fn users_online(&self) -> usize {
        self.map.len()
    }

    /// Calls `f` for every live connection of every user, one shard lock at a time (`f` must
    /// not block).
    pub fn for_each_peer(&self, mut f: impl FnMut(&Peer)) {
        for entry in self.map.iter() {
            entry.value().as_slice().iter().for_each(&mut f);
        }
    }

    /// Whether `user` has a live connection.
    pub fn is_online(&self, user: UserId) -> bool {
        self.map.contains_key(&user)
    }

    /// Bytes of output all connections hold ([`Outbox::output_bytes`]).
    pub fn output_bytes(&self) -> usize {
        let mut total = 0;
        for entry in self.map.iter() {
            total += entry
                .value()
                .as_slice()
                .iter()
                .map(|p| p.outbox.output_bytes())
                .sum::<usize>();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::sync::atomic::Ordering;

    /// `body` as one frame: its length, then the body.
    fn f(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn peer(conn_id: u64, cap: usize) -> (Peer, OutboxReader) {
        let (tx, rx) = Outbox::new(cap);
        (
            Peer {
                conn_id,
                token_tag: 0,
                outbox: tx,
            },
            rx,
        )
    }
    #[test]
    fn racing_adds_never_pass_the_cap() {
        let s = std::sync::Arc::new(Sessions::default());
        let added: usize = std::thread::scope(|scope| {
            let joins: Vec<_> = (0..8u64)
                .map(|i| {
                    let s = s.clone();
                    scope.spawn(move || {
                        let (p, rx) = peer(i, 1);
                        let ok = s.add_if(7, p, |current| current < 3).is_some();
                        (ok, rx)
                    })
                })
                .collect();
            joins
                .into_iter()
                .map(|j| usize::from(j.join().unwrap().0))
                .sum()
        });
        assert_eq!(added, 3);
        let mut held = 0;
        s.for_each(7, |_| held += 1);
        assert_eq!(held, 3);
        // A refused first connection leaves no entry.
        assert_eq!(s.add_if(8, peer(9, 1).0, |_| false), None);
        assert!(!s.is_online(8));
    }

    #[tokio::test]
    async fn first_and_last_device_and_slow_kick() {
        let s = Sessions::default();
        let (p1, r1) = peer(1, 1);
        let (p2, _r2) = peer(2, 1);
        assert!(s.add(7, p1.clone()));
        assert!(!s.add(7, p2));
        s.for_each(7, |p| p.deliver(&f(b"x")));
        r1.ready().await;
        let mut buf = BytesMut::new();
        r1.drain_into(&mut buf, usize::MAX);
        assert_eq!(&buf[..], f(b"x"));
        // p2's outbox (capacity 1) is full now: a second frame kicks it.
        s.for_each(7, |p| p.deliver(&f(b"y")));
        assert!(!s.remove(7, 1));
        assert!(s.is_online(7));
        assert!(s.remove(7, 2));
        assert!(!s.is_online(7));
        assert_eq!(p1.control().reason.load(Ordering::Relaxed), 0);
    }

    fn ids(s: &Sessions, user: UserId) -> Vec<u64> {
        let mut v = Vec::new();
        s.for_each(user, |p| v.push(p.conn_id));
        v
    }

    #[test]
    fn a_users_connections_are_kept_in_order_and_removed_one_by_one() {
        let s = Sessions::default();
        let (peers, _readers): (Vec<_>, Vec<_>) = (1..=4).map(|i| peer(i, 8)).unzip();
        assert!(s.add(7, peers[0].clone()));
        assert!(
            matches!(*s.map.get(&7).unwrap(), Peers::One(_)),
            "one is inline"
        );
        for p in &peers[1..] {
            assert!(!s.add(7, p.clone()));
        }
        assert_eq!(ids(&s, 7), [1, 2, 3, 4]);
        assert!(!s.remove(7, 9), "an unknown connection");
        assert!(!s.remove(7, 2));
        assert_eq!(ids(&s, 7), [1, 3, 4]);
        assert!(!s.remove(7, 1));
        assert!(!s.remove(7, 4));
        assert_eq!(ids(&s, 7), [3]);
        assert!(
            matches!(*s.map.get(&7).unwrap(), Peers::One(_)),
            "back to one, inline again"
        );
        assert!(!s.remove(7, 1), "already gone");
        assert!(s.remove(7, 3));
        assert!(!s.is_online(7));
        assert!(ids(&s, 7).is_empty());
        assert!(!s.remove(7, 3), "no entry left");
        // And again from empty: the first is the first again.
        assert!(s.add(7, peers[1].clone()));
        assert!(!s.remove(8, 2), "another user");
        assert_eq!(ids(&s, 7), [2]);
    }

    #[test]
    fn a_single_peer_needs_no_allocation_of_its_own() {
        // The entry holds the peer itself: no wider than a peer and a tag.
        assert!(std::mem::size_of::<Peers>() <= std::mem::size_of::<Peer>() + 8);
        let (p, _r) = peer(1, 8);
        let mut one = Peers::One(p.clone());
        one.push(p.clone());
        assert!(matches!(&one, Peers::Many(v) if v.capacity() == 2));
        assert!(one.remove(1), "both were connection 1");
    }

    #[tokio::test]
    async fn output_bytes_counts_every_connection() {
        let s = Sessions::default();
        let (a, _ra) = peer(1, 8);
        let (b, _rb) = peer(2, 8);
        let (c, _rc) = peer(3, 8);
        s.add(7, a);
        s.add(7, b);
        s.add(8, c);
        s.for_each(7, |p| p.deliver(&f(b"abc")));
        s.for_each(8, |p| p.deliver(&f(b"de")));
        assert_eq!(s.output_bytes(), 2 * 7 + 6);
    }
}
