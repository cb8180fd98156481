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

/// user id → that user's live connections.
#[derive(Debug, Default)]
pub struct Sessions {
    map: DashMap<UserId, Vec<Peer>>,
}

impl Sessions {
    /// Registers a logged-in connection; returns true when it is the user's first.
    pub fn add(&self, user: UserId, peer: Peer) -> bool {
        let mut entry = self.map.entry(user).or_default();
        entry.push(peer);
        entry.len() == 1
    }

    /// Removes a connection; returns true when it was the user's last.
    pub fn remove(&self, user: UserId, conn_id: u64) -> bool {
        let mut last = false;
        self.map.remove_if_mut(&user, |_, peers| {
            peers.retain(|p| p.conn_id != conn_id);
            last = peers.is_empty();
            last
        });
        last
    }

    /// Calls `f` for each live connection of `user`, under the shard lock (`f` must not block).
    pub fn for_each(&self, user: UserId, mut f: impl FnMut(&Peer)) {
        if let Some(peers) = self.map.get(&user) {
            peers.iter().for_each(&mut f);
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
}
