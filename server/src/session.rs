//! The session map: which users are online on which connections.
//!
//! Sharded (dashmap) by user id. Each entry lists the user's live connections as [`Peer`]s;
//! routing clones nothing but the frame (`Bytes` is reference counted) and never awaits while
//! holding a shard guard: `try_send` either queues the frame or marks the peer as too slow.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use feige_protocol::ErrorCode;
use feige_storage::UserId;
use tokio::sync::{mpsc, Notify};

/// Lets anyone tell a connection task to close, and why.
#[derive(Debug, Default)]
pub struct Control {
    notify: Notify,
    reason: AtomicI32,
}

impl Control {
    /// Asks the connection to send a Kicked push with `code` and close. The first reason wins.
    pub fn kick(&self, code: ErrorCode) {
        if self
            .reason
            .compare_exchange(0, code as i32, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// Waits until [`Control::kick`] was called; returns the reason.
    pub async fn kicked(&self) -> ErrorCode {
        loop {
            let code = self.reason.load(Ordering::Acquire);
            if code != 0 {
                return ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified);
            }
            self.notify.notified().await;
        }
    }
}

/// One live, logged-in connection of a user.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Server-unique connection id.
    pub conn_id: u64,
    /// First 8 bytes of the session token's hash, to find the connections of one token.
    pub token_tag: u64,
    /// The connection's bounded queue of encoded frames.
    pub outbox: mpsc::Sender<Bytes>,
    /// The connection's kick switch.
    pub control: Arc<Control>,
}

impl Peer {
    /// Queues `frame` without waiting; a full outbox kicks the connection as a slow consumer
    /// (it will reconnect and sync, so nothing is lost).
    pub fn deliver(&self, frame: Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send(frame) {
            self.control.kick(ErrorCode::SlowConsumer);
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

    /// Number of users online.
    pub fn users_online(&self) -> usize {
        self.map.len()
    }

    /// Kicks every connection (for shutdown).
    pub fn kick_all(&self, code: ErrorCode) {
        for entry in self.map.iter() {
            for p in entry.value() {
                p.control.kick(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(conn_id: u64, cap: usize) -> (Peer, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(cap);
        (
            Peer {
                conn_id,
                token_tag: 0,
                outbox: tx,
                control: Arc::default(),
            },
            rx,
        )
    }

    #[tokio::test]
    async fn first_and_last_device_and_slow_kick() {
        let s = Sessions::default();
        let (p1, mut r1) = peer(1, 1);
        let (p2, _r2) = peer(2, 1);
        assert!(s.add(7, p1.clone()));
        assert!(!s.add(7, p2));
        s.for_each(7, |p| p.deliver(Bytes::from_static(b"x")));
        assert_eq!(r1.recv().await.unwrap(), Bytes::from_static(b"x"));
        // p2's outbox (capacity 1) is full now: a second frame kicks it.
        s.for_each(7, |p| p.deliver(Bytes::from_static(b"y")));
        assert!(!s.remove(7, 1));
        assert!(s.is_online(7));
        assert!(s.remove(7, 2));
        assert!(!s.is_online(7));
        assert_eq!(p1.control.reason.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn kick_reason_first_wins() {
        let c = Control::default();
        c.kick(ErrorCode::SlowConsumer);
        c.kick(ErrorCode::ShuttingDown);
        assert_eq!(c.kicked().await, ErrorCode::SlowConsumer);
    }
}
