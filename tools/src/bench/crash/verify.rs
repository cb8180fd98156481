//! The crash loop's checks after a restart: every acked message stored exactly once at its
//! acked seq, in send order, seqs gapless, and Sync from seq 0 agreeing with History.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use feige_protocol::{pb, RequestKind, ResponseResult};

use super::sender::{violation, Sender};
use crate::bench::wire::{feige_call, feige_resume};

/// Every message of the 1:1 conversation of `s.me` and `s.to`, ascending by seq.
async fn history(addr: SocketAddr, s: &Sender) -> anyhow::Result<Vec<pb::Message>> {
    let (mut sock, mut buf) = feige_resume(addr, None, &s.token)
        .await
        .context("resume for the check")?;
    let mut all = Vec::new();
    let mut before = 0;
    let mut rid = 10;
    loop {
        rid += 1;
        let r = feige_call(
            &mut sock,
            &mut buf,
            rid,
            RequestKind::History(pb::History {
                peer_user: s.to,
                limit: 200,
                before_seq: before,
                ..Default::default()
            }),
        )
        .await
        .context("History")?;
        let ResponseResult::History(page) = r else {
            bail!("unexpected answer to History: {r:?}");
        };
        let Some(last) = page.messages.last() else {
            break;
        };
        before = last.seq;
        all.extend(page.messages);
        if before <= 1 {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

/// Checks what the store holds for sender `s`. With `complete`, every message it ever sent must
/// be there. Returns how many of its messages are stored.
pub(super) async fn verify(addr: SocketAddr, s: &Sender, complete: bool) -> anyhow::Result<usize> {
    let stored = history(addr, s).await?;
    let mine = check(&stored, s, complete)?;
    if let Some(first) = stored.first() {
        let synced = sync(addr, s, first.conversation_id).await?;
        let key = |m: &pb::Message| (m.seq, m.from_user, m.client_msg_id);
        if synced.len() != stored.len() || !synced.iter().map(key).eq(stored.iter().map(key)) {
            return Err(violation(format!(
                "conversation {} of users {} and {}: Sync from seq 0 gives {} messages, History \
                 {}, or they differ",
                first.conversation_id,
                s.me,
                s.to,
                synced.len(),
                stored.len()
            )));
        }
    }
    Ok(mine)
}

/// Every message of `conversation` through Sync from seq 0, page by page, ascending.
async fn sync(addr: SocketAddr, s: &Sender, conversation: u64) -> anyhow::Result<Vec<pb::Message>> {
    let (mut sock, mut buf) = feige_resume(addr, None, &s.token)
        .await
        .context("resume for the check")?;
    // The device never acks, so Sync also pages through the user's other conversation from
    // seq 0: every conversation seen is listed with its position.
    let mut positions: BTreeMap<u64, u64> = BTreeMap::from([(conversation, 0)]);
    let mut out = Vec::new();
    for rid in 10.. {
        let r = feige_call(
            &mut sock,
            &mut buf,
            rid,
            RequestKind::Sync(pb::Sync {
                positions: positions
                    .iter()
                    .map(|(&conversation_id, &seq)| pb::ConversationPosition {
                        conversation_id,
                        seq,
                    })
                    .collect(),
                limit: 1000,
            }),
        )
        .await
        .context("Sync")?;
        let ResponseResult::Sync(page) = r else {
            bail!("unexpected answer to Sync: {r:?}");
        };
        for m in page.messages {
            let at = positions.entry(m.conversation_id).or_insert(0);
            *at = (*at).max(m.seq);
            if m.conversation_id == conversation {
                out.push(m);
            }
        }
        if !page.has_more {
            break;
        }
    }
    Ok(out)
}

/// The checks of [`verify`] on a conversation's messages (ascending by seq).
fn check(stored: &[pb::Message], s: &Sender, complete: bool) -> anyhow::Result<usize> {
    let me = s.me;
    for (i, m) in stored.iter().enumerate() {
        if m.seq != i as u64 + 1 {
            return Err(violation(format!(
                "conversation of users {me} and {}: seq {} at position {} (seqs not gapless: {:?})",
                s.to,
                m.seq,
                i + 1,
                stored.iter().map(|m| m.seq).take(i + 2).collect::<Vec<_>>()
            )));
        }
    }
    let mine: Vec<&pb::Message> = stored.iter().filter(|m| m.from_user == me).collect();
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut last_cmid = 0;
    for m in &mine {
        let cmid = m.client_msg_id;
        if let Some(seq) = seen.insert(cmid, m.seq) {
            return Err(violation(format!(
                "user {me} message {cmid} stored twice: seqs {seq} and {}",
                m.seq
            )));
        }
        if cmid == 0 || cmid > s.last_cmid {
            return Err(violation(format!(
                "user {me}: stored message {cmid} was never sent (last sent {})",
                s.last_cmid
            )));
        }
        if cmid <= last_cmid {
            return Err(violation(format!(
                "user {me}: message {cmid} stored at seq {} after message {last_cmid}: \
                 not in send order",
                m.seq
            )));
        }
        last_cmid = cmid;
    }
    for (cmid, (conv, seq)) in &s.acked {
        match stored.get((*seq as usize).wrapping_sub(1)) {
            Some(m)
                if m.client_msg_id == *cmid && m.from_user == me && m.conversation_id == *conv => {}
            other => {
                return Err(violation(format!(
                    "user {me} message {cmid} was acked as seq {seq} of conversation {conv} but \
                     the store holds {}",
                    other.map_or("nothing there".to_owned(), |m| format!(
                        "message {} of user {} in conversation {}",
                        m.client_msg_id, m.from_user, m.conversation_id
                    ))
                )));
            }
        }
    }
    if complete && (mine.len() as u64 != s.last_cmid || !s.pending.is_empty()) {
        return Err(violation(format!(
            "user {me}: sent {} messages, {} stored, {} never acked",
            s.last_cmid,
            mine.len(),
            s.pending.len()
        )));
    }
    Ok(mine.len())
}

/// [`verify`] for every sender; returns how many messages of theirs are stored.
pub(super) async fn verify_all(
    addr: SocketAddr,
    senders: &[Sender],
    complete: bool,
) -> anyhow::Result<u64> {
    let mut stored = 0;
    for s in senders {
        stored += verify(addr, s, complete).await? as u64;
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, from: u64, cmid: u64) -> pb::Message {
        pb::Message {
            conversation_id: 9,
            seq,
            from_user: from,
            client_msg_id: cmid,
            ..Default::default()
        }
    }

    /// User 1 sent 1..=4 to user 2; 1..=3 acked at seqs 1..=3 (seq 2 is user 2's message).
    fn sender() -> Sender {
        let mut s = Sender {
            me: 1,
            to: 2,
            last_cmid: 4,
            ..Default::default()
        };
        s.pending.insert(4);
        s.acked.insert(1, (9, 1));
        s.acked.insert(2, (9, 3));
        s.acked.insert(3, (9, 4));
        s
    }

    fn good() -> Vec<pb::Message> {
        vec![msg(1, 1, 1), msg(2, 2, 1), msg(3, 1, 2), msg(4, 1, 3)]
    }

    fn fails(stored: &[pb::Message], complete: bool, what: &str) {
        let e = check(stored, &sender(), complete).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }

    #[test]
    fn a_consistent_store_passes() {
        assert_eq!(check(&good(), &sender(), false).unwrap(), 3);
        let mut all = good();
        all.push(msg(5, 1, 4));
        let mut s = sender();
        s.pending.clear();
        s.acked.insert(4, (9, 5));
        assert_eq!(check(&all, &s, true).unwrap(), 4);
    }

    #[test]
    fn every_violation_is_caught() {
        let mut gap = good();
        gap[3].seq = 5;
        fails(&gap, false, "not gapless");
        let mut lost = good();
        lost.pop();
        fails(&lost, false, "acked as seq 4");
        let mut twice = good();
        twice.push(msg(5, 1, 3));
        fails(&twice, false, "stored twice");
        let mut reordered = good();
        reordered[2].client_msg_id = 3;
        reordered[3].client_msg_id = 2;
        fails(&reordered, false, "not in send order");
        let mut unknown = good();
        unknown.push(msg(5, 1, 77));
        fails(&unknown, false, "never sent");
        // Complete: message 4 was never stored or acked.
        fails(&good(), true, "never acked");
    }
}
