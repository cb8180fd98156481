//! Delivery and read receipts, and recall.
//!
//! A user's receipts in a conversation are two positions shared by all their devices: how far
//! any device has received (`delivered_positions`, the max of `device_cursors`, moved by Ack)
//! and how far they have read (`read_positions`, moved by MarkRead). Both are kept by writer
//! jobs that say whether the value moved, so the server pushes a receipt only then. A group's
//! receipts are counted from its members' read positions when asked ([`receipts`]): no write
//! per member per message.
//!
//! A recall ([`Writer::recall`]) runs on the writer, ordered with sends: the message keeps its
//! row and seq, becomes kind RECALLED with an empty body, and is logged in `recalls`, which
//! the search indexer follows to delete it from the index ([`crate::search::index_step`]).

mod counts;
mod positions;
mod recall;
#[cfg(test)]
mod tests;

use rusqlite::{params, Connection, OptionalExtension};

pub use counts::{ReceiptCounts, MAX_READERS};
pub(crate) use recall::{member, message_at};
pub use recall::{recalls, Recalled, RECALLED};

use positions::{delivered_seq, direct_peer, read_seq};

use crate::int::{get_u64, Uint};
use crate::recent::Range;
use crate::sequence::View;
use crate::social::ReadPositionRecord;
use crate::{ConversationId, ConversationPosition, IdSet, StorageError, UserId, Writer};

/// A user's receipts in a direct conversation moved: what to push to the other member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptMove {
    /// The direct conversation.
    pub conversation_id: ConversationId,
    /// Whose receipts moved.
    pub user: UserId,
    /// The other member, who is told.
    pub peer: UserId,
    /// `user`'s read position now.
    pub read_seq: u64,
    /// The highest seq any device of `user` has acked now (at least `read_seq`).
    pub delivered_seq: u64,
}

impl<C: Send + 'static> Writer<C> {
    /// Stores `user`'s `device` cursors as [`Writer::ack`] does, and returns the direct
    /// conversations whose user-level delivered position (the max over the user's devices)
    /// moved over messages of the peer, at most one entry per conversation.
    ///
    /// # Errors
    /// As [`Writer::call`].
    pub async fn ack_receipts(
        &self,
        user: UserId,
        device: String,
        positions: Vec<ConversationPosition>,
    ) -> Result<Vec<ReceiptMove>, StorageError> {
        self.call_view(move |c, view| ack(c, view, user, &device, &positions))
            .await
    }

    /// [`Writer::mark_read`], and the receipt to push when it moved the user's read position
    /// in a direct conversation over messages of the peer.
    ///
    /// # Errors
    /// As [`Writer::mark_read`].
    pub async fn mark_read_receipt(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<(ReadPositionRecord, Option<ReceiptMove>), StorageError> {
        self.call_view(move |c, view| {
            let before = read_seq(c, user, conversation)?;
            let pos = crate::social::mark_read(c, view, user, conversation, seq)?;
            if pos.seq <= before {
                return Ok((pos, None));
            }
            let Some(peer) = direct_peer(c, conversation, user)? else {
                return Ok((pos, None));
            };
            if !news_for_peer(c, view, conversation, user, before, pos.seq)? {
                return Ok((pos, None));
            }
            let moved = ReceiptMove {
                conversation_id: conversation,
                user,
                peer,
                read_seq: pos.seq,
                // Read implies received, though no device may have acked it yet.
                delivered_seq: delivered_seq(c, user, conversation)?.max(pos.seq),
            };
            Ok((pos, Some(moved)))
        })
        .await
    }
}

/// The Ack job: device cursors, then each conversation's delivered position.
fn ack(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    device: &str,
    positions: &[ConversationPosition],
) -> Result<Vec<ReceiptMove>, StorageError> {
    crate::message::set_cursors(c, view, user, device, positions)?;
    let mut cursor = c.prepare_cached(
        "SELECT seq FROM device_cursors WHERE user_id = ?1 AND device = ?2 AND conversation_id = ?3",
    )?;
    let mut raise = c.prepare_cached(
        "INSERT INTO delivered_positions(user_id, conversation_id, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id, conversation_id) DO UPDATE SET seq = excluded.seq
         WHERE excluded.seq > delivered_positions.seq",
    )?;
    let mut moved: Vec<ReceiptMove> = Vec::new();
    let mut seen = IdSet::default();
    for p in positions {
        let conv = p.conversation_id;
        if !seen.insert(conv) {
            continue;
        }
        // No cursor: not a member (set_cursors skipped it).
        let Some(seq) = cursor
            .query_row(params![Uint(user), device, Uint(conv)], |r| get_u64(r, 0))
            .optional()?
        else {
            continue;
        };
        let before = delivered_seq(c, user, conv)?;
        if seq <= before || raise.execute(params![Uint(user), Uint(conv), Uint(seq)])? == 0 {
            continue;
        }
        let Some(peer) = direct_peer(c, conv, user)? else {
            continue;
        };
        if news_for_peer(c, view, conv, user, before, seq)? {
            moved.push(ReceiptMove {
                conversation_id: conv,
                user,
                peer,
                read_seq: read_seq(c, user, conv)?,
                delivered_seq: seq,
            });
        }
    }
    Ok(moved)
}

/// Whether the peer sent any of the messages `(before, now]` of `conversation`: if `user` only
/// received their own messages (acked by their other devices, or read), the peer's
/// messages' receipts did not change and no push is worth sending.
///
/// Looks in memory, then in the index, and stops at the first such message, so a long
/// stretch of history costs nothing when the peer wrote any of it.
fn news_for_peer(
    c: &Connection,
    view: &View<'_>,
    conversation: ConversationId,
    user: UserId,
    before: u64,
    now: u64,
) -> Result<bool, StorageError> {
    let range = Range {
        after: before,
        before: now.saturating_add(1),
        newest_first: true,
        limit: usize::MAX,
    };
    if view
        .recent(conversation, range)?
        .iter()
        .any(|s| s.sender != user)
    {
        return Ok(true);
    }
    let found: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM message_seq x JOIN messages m ON m.id = x.id
                 WHERE x.conversation_id = ?1 AND x.seq > ?2 AND x.seq <= ?3
                   AND m.sender_id <> ?4)",
        )?
        .query_row(
            params![Uint(conversation), Uint(before), Uint(now), Uint(user)],
            |r| r.get(0),
        )?;
    Ok(found)
}
