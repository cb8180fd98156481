//! The logged-in connections as admins see them (conn id → user, device, address, since,
//! transport), and the reasons of admins' kicks. Written at login and at the connection's
//! end, read only by the admin API; routing never looks here.

use std::net::SocketAddr;

use dashmap::DashMap;
use feige_protocol::ErrorCode;
use feige_storage::UserId;

use crate::session::Outbox;

/// How a connection reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// The binary protocol over TCP (or TLS).
    #[default]
    Tcp,
    /// The JSON protocol over WebSocket.
    Ws,
}

impl Transport {
    /// `"tcp"` or `"ws"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        }
    }
}

/// One logged-in connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The user it is logged in as.
    pub user: UserId,
    /// The session's device name.
    pub device: String,
    /// The peer's address.
    pub addr: SocketAddr,
    /// When it logged in (unix ms).
    pub since_ms: i64,
    /// TCP or WebSocket.
    pub transport: Transport,
    /// Its outbox, for its kick switch.
    pub outbox: Outbox,
}

/// conn id → [`ConnInfo`], and conn id → the reason of a pending admin kick.
#[derive(Debug, Default)]
pub struct Connections {
    map: DashMap<u64, ConnInfo>,
    reasons: DashMap<u64, String>,
}

impl Connections {
    /// Records a connection that logged in.
    pub fn insert(&self, conn_id: u64, info: ConnInfo) {
        self.map.insert(conn_id, info);
    }

    /// Forgets a connection (it logged out or ended), and any kick reason left for it.
    pub fn remove(&self, conn_id: u64) {
        self.map.remove(&conn_id);
        self.reasons.remove(&conn_id);
    }

    /// How many connections are logged in.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A page of the connections by id, and how many there are.
    pub fn page(&self, offset: usize, limit: usize) -> (Vec<(u64, ConnInfo)>, usize) {
        let mut ids: Vec<u64> = self.map.iter().map(|e| *e.key()).collect();
        let total = ids.len();
        ids.sort_unstable();
        let list = ids
            .into_iter()
            .skip(offset)
            .take(limit)
            .filter_map(|id| self.map.get(&id).map(|e| (id, e.value().clone())))
            .collect();
        (list, total)
    }

    /// The connection `conn_id`, if it is logged in.
    pub fn get(&self, conn_id: u64) -> Option<ConnInfo> {
        self.map.get(&conn_id).map(|e| e.value().clone())
    }

    /// The ids of the connections whose address `matches`.
    pub fn matching(&self, matches: impl Fn(&SocketAddr) -> bool) -> Vec<u64> {
        self.map
            .iter()
            .filter(|e| matches(&e.value().addr))
            .map(|e| *e.key())
            .collect()
    }

    /// Closes connection `conn_id` with a Kicked push of `code` and `reason`; returns whether
    /// it was logged in.
    pub fn kick(&self, conn_id: u64, code: ErrorCode, reason: &str) -> bool {
        let Some(info) = self.get(conn_id) else {
            return false;
        };
        self.reasons.insert(conn_id, reason.to_owned());
        info.outbox.control().kick(code);
        true
    }

    /// Keeps `reason` for the Kicked push of a kick about to be made of `conn_id`.
    pub fn note_reason(&self, conn_id: u64, reason: &str) {
        self.reasons.insert(conn_id, reason.to_owned());
    }

    /// The reason given to [`Connections::kick`] for `conn_id`, taken once.
    pub fn take_reason(&self, conn_id: u64) -> Option<String> {
        self.reasons.remove(&conn_id).map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_kicks_and_reasons() {
        let c = Connections::default();
        let (tx, _rx) = Outbox::new(4);
        for id in [3, 1, 2] {
            c.insert(
                id,
                ConnInfo {
                    user: 7,
                    device: "d".into(),
                    addr: SocketAddr::from(([10, 0, 0, id as u8], 1)),
                    since_ms: 0,
                    transport: Transport::Tcp,
                    outbox: tx.clone(),
                },
            );
        }
        let (page, total) = c.page(1, 5);
        assert_eq!(total, 3);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2, 3]);
        assert!(c.kick(2, ErrorCode::KickedByAdmin, "bye"));
        assert!(!c.kick(9, ErrorCode::KickedByAdmin, "bye"));
        assert_eq!(c.take_reason(2).as_deref(), Some("bye"));
        assert_eq!(c.take_reason(2), None);
        assert_eq!(c.matching(|a| a.ip().to_string() == "10.0.0.3"), vec![3]);
        c.remove(3);
        assert_eq!(c.len(), 2);
    }
}
