//! What the crash loop remembers of each sender across kills, and the error a broken promise
//! fails the run with.

use std::collections::{BTreeSet, HashMap};

use feige_protocol::pb;

/// One sender's record, kept across rounds.
#[derive(Debug, Default)]
pub(super) struct Sender {
    /// Its user id.
    pub(super) me: u64,
    /// The recipient's user id.
    pub(super) to: u64,
    /// Its session token.
    pub(super) token: Vec<u8>,
    /// The last client_msg_id used (ids start at 1: 0 turns deduplication off).
    pub(super) last_cmid: u64,
    /// Sent, never acked, in send order.
    pub(super) pending: BTreeSet<u64>,
    /// Acked: client_msg_id -> (conversation, seq).
    pub(super) acked: HashMap<u64, (u64, u64)>,
    /// Resends written (pending messages sent again after a restart).
    pub(super) resent: u64,
}

/// A broken promise: the run fails with this text.
#[derive(Debug)]
struct Violation(String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// A [`Violation`] as an error.
pub(super) fn violation(text: String) -> anyhow::Error {
    Violation(text).into()
}

impl Sender {
    /// Records the ack of `cmid`; an ack that contradicts an earlier one is a violation.
    pub(super) fn ack(&mut self, cmid: u64, ok: &pb::SendOk) -> anyhow::Result<()> {
        self.pending.remove(&cmid);
        let now = (ok.conversation_id, ok.seq);
        if let Some(was) = self.acked.insert(cmid, now) {
            if was != now {
                return Err(violation(format!(
                    "user {} message {cmid}: acked as (conversation, seq) {was:?}, then {now:?}",
                    self.me
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contradicting_ack_is_caught() {
        let mut s = Sender {
            me: 1,
            to: 2,
            last_cmid: 4,
            ..Default::default()
        };
        s.pending.insert(4);
        s.acked.insert(3, (9, 4));
        let ok = pb::SendOk {
            conversation_id: 9,
            seq: 7,
            ..Default::default()
        };
        assert!(s.ack(3, &ok).is_err());
        assert!(s.ack(4, &ok).is_ok());
        assert!(s.pending.is_empty());
    }
}
