//! A user's positions in a conversation, and a direct conversation's other member.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::message::pair_of;
use crate::{ConversationId, StorageError, UserId};

/// The other member of a direct conversation `user` is in; None for other kinds.
pub(super) fn direct_peer(
    c: &Connection,
    conversation: ConversationId,
    user: UserId,
) -> Result<Option<UserId>, StorageError> {
    let pair = c
        .prepare_cached("SELECT kind, user_a, user_b FROM conversations WHERE id = ?1")?
        .query_row([Uint(conversation)], |r| {
            Ok(pair_of(r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
        .flatten();
    Ok(match pair {
        Some((a, b)) if a == user => Some(b),
        Some((a, b)) if b == user => Some(a),
        _ => None,
    })
}

/// `user`'s read position in `conversation` (0 = none).
pub(super) fn read_seq(
    c: &Connection,
    user: UserId,
    conversation: ConversationId,
) -> Result<u64, StorageError> {
    position(c, "read_positions", user, conversation)
}

/// The highest seq any device of `user` acked in `conversation` (0 = none).
pub(super) fn delivered_seq(
    c: &Connection,
    user: UserId,
    conversation: ConversationId,
) -> Result<u64, StorageError> {
    position(c, "delivered_positions", user, conversation)
}

fn position(
    c: &Connection,
    table: &str,
    user: UserId,
    conversation: ConversationId,
) -> Result<u64, StorageError> {
    let seq = c
        .prepare_cached(&format!(
            "SELECT seq FROM {table} WHERE user_id = ?1 AND conversation_id = ?2"
        ))?
        .query_row(params![Uint(user), Uint(conversation)], |r| get_u64(r, 0))
        .optional()?;
    Ok(seq.unwrap_or(0))
}
