//! Per-user read positions in conversations.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::sequence::View;
use crate::{ConversationId, StorageError, UserId};

/// A user's read position in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPositionRecord {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Read up to and including this seq.
    pub seq: u64,
    /// Messages from others after `seq`.
    pub unread: u64,
}

/// Moves `user`'s read position in `conversation` forward to `seq` (0 or past the end = the
/// newest message); it never moves back. Runs on the writer ([`crate::Writer::mark_read`]).
///
/// # Errors
/// [`StorageError::Forbidden`] when `user` is not a member; database errors.
pub(crate) fn mark_read(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
) -> Result<ReadPositionRecord, StorageError> {
    let member = c
        .prepare_cached(
            "SELECT 1 FROM conversation_members WHERE user_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![Uint(user), Uint(conversation)], |_| Ok(()))
        .optional()?
        .is_some();
    if !member {
        if crate::group::is_group(c, conversation)? {
            return Err(StorageError::NotAMember(
                "you are not a member of this group",
            ));
        }
        return Err(StorageError::Forbidden);
    }
    let newest = view.last_seq(c, conversation)?;
    let target = if seq == 0 { newest } else { seq.min(newest) };
    c.prepare_cached(
        "INSERT INTO read_positions(user_id, conversation_id, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?
    .execute(params![Uint(user), Uint(conversation), Uint(target)])?;
    let now_at = c
        .prepare_cached(
            "SELECT seq FROM read_positions WHERE user_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![Uint(user), Uint(conversation)], |r| get_u64(r, 0))?;
    Ok(ReadPositionRecord {
        conversation_id: conversation,
        seq: now_at,
        unread: view.count_from_others(c, conversation, now_at, user)?,
    })
}
