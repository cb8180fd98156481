//! Row mapping shared by the message readers: the stored message, the columns they select
//! and the function that turns such a row into a [`StoredMessage`].

use rusqlite::Row;

use crate::{ConversationId, UserId};

/// A stored message, as pushed, synced and read from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Server id: time-ordered, unique.
    pub id: u64,
    /// Conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Gapless sequence number within the conversation, from 1.
    pub seq: u64,
    /// Sender.
    pub from_user: UserId,
    /// For 1:1 conversations the other member; 0 otherwise.
    pub to_user: UserId,
    /// The sender's id for deduplication; 0 when none.
    pub client_msg_id: u64,
    /// Message kind (text, image...), as the protocol's enum number.
    pub kind: i32,
    /// Text body.
    pub text: String,
    /// Commit time (unix ms).
    pub sent_at_ms: i64,
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.kind, m.body, m.sent_at_ms";

/// Reads a row of [`MESSAGE_COLUMNS`]; `pair` is the direct conversation's two members.
pub(crate) fn message_row(
    r: &Row<'_>,
    pair: Option<(u64, u64)>,
) -> rusqlite::Result<StoredMessage> {
    let from_user = r.get::<_, i64>(3)? as u64;
    let to_user = match pair {
        Some((a, b)) if from_user == a => b,
        Some((a, b)) if from_user == b => a,
        _ => 0,
    };
    Ok(StoredMessage {
        id: r.get::<_, i64>(0)? as u64,
        conversation_id: r.get::<_, i64>(1)? as u64,
        seq: r.get::<_, i64>(2)? as u64,
        from_user,
        to_user,
        client_msg_id: r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64,
        kind: r.get(5)?,
        text: r.get(6)?,
        sent_at_ms: r.get(7)?,
    })
}

/// A direct conversation's two members (None for other kinds).
pub(crate) type DirectPair = Option<(u64, u64)>;

/// The two members of a direct conversation, or None for other kinds.
pub(crate) fn pair_of(kind: i64, a: Option<i64>, b: Option<i64>) -> Option<(u64, u64)> {
    match (kind, a, b) {
        (1, Some(a), Some(b)) => Some((a as u64, b as u64)),
        _ => None,
    }
}
