//! Row mapping shared by the message readers: the stored message, the columns they select
//! and the function that turns such a row into a [`StoredMessage`].

use rusqlite::Row;

use crate::int::get_u64;
use crate::FileRef;
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
    /// Groups: the members mentioned (@).
    pub mentions: Vec<UserId>,
    /// Groups: everyone was mentioned (@all).
    pub mention_all: bool,
    /// Who recalled it (kind RECALLED, text empty); 0 when it was not recalled.
    pub recalled_by: UserId,
    /// Kinds IMAGE, FILE, VOICE, VIDEO, STICKER: the file it carries, as at sending (boxed:
    /// most messages have none).
    pub file: Option<Box<FileRef>>,
    /// VOICE: the text of a transcription, once one was stored (`messages.transcript`).
    pub transcript: Option<String>,
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.kind, m.body, m.sent_at_ms, \
     m.mentions, m.recalled_by, m.attachment, m.transcript";
/// How many columns [`MESSAGE_COLUMNS`] has: a query's own columns follow them.
pub(crate) const MESSAGE_COLUMN_COUNT: usize = 12;

/// A message's mentions as stored in `messages.mentions`: "*" first for @all, then the ids,
/// comma-separated; `None` when there are none.
pub(crate) fn encode_mentions(users: &[UserId], all: bool) -> Option<String> {
    if users.is_empty() && !all {
        return None;
    }
    let mut parts: Vec<String> = Vec::with_capacity(users.len() + 1);
    if all {
        parts.push("*".to_owned());
    }
    parts.extend(users.iter().map(u64::to_string));
    Some(parts.join(","))
}

/// Reads `messages.mentions` back (see [`encode_mentions`]); parts that are not ids are
/// skipped.
pub(crate) fn decode_mentions(s: Option<&str>) -> (Vec<UserId>, bool) {
    let Some(s) = s else {
        return (Vec::new(), false);
    };
    let mut all = false;
    let mut users = Vec::new();
    for part in s.split(',') {
        if part == "*" {
            all = true;
        } else if let Ok(id) = part.parse() {
            users.push(id);
        }
    }
    (users, all)
}

/// Reads a row of [`MESSAGE_COLUMNS`]; `pair` is the direct conversation's two members.
pub(crate) fn message_row(
    r: &Row<'_>,
    pair: Option<(u64, u64)>,
) -> rusqlite::Result<StoredMessage> {
    let from_user = get_u64(r, 3)?;
    let to_user = match pair {
        Some((a, b)) if from_user == a => b,
        Some((a, b)) if from_user == b => a,
        _ => 0,
    };
    let (mentions, mention_all) = decode_mentions(r.get::<_, Option<String>>(8)?.as_deref());
    Ok(StoredMessage {
        mentions,
        mention_all,
        id: get_u64(r, 0)?,
        conversation_id: get_u64(r, 1)?,
        seq: get_u64(r, 2)?,
        from_user,
        to_user,
        // The writer stores a client's id by its bits: ids past i64::MAX are negative here.
        client_msg_id: r.get::<_, Option<i64>>(4)?.map_or(0, i64::cast_unsigned),
        kind: r.get(5)?,
        text: r.get(6)?,
        sent_at_ms: r.get(7)?,
        recalled_by: get_u64(r, 9)?,
        file: r
            .get::<_, Option<String>>(10)?
            .and_then(|a| FileRef::decode(&a).map(Box::new)),
        transcript: r.get(11)?,
    })
}

/// A direct conversation's two members (None for other kinds).
pub(crate) type DirectPair = Option<(u64, u64)>;

/// The two members of a direct conversation, or None for other kinds.
pub(crate) fn pair_of(kind: i64, a: Option<i64>, b: Option<i64>) -> Option<(u64, u64)> {
    match (kind, a, b) {
        (1, Some(a), Some(b)) => Some((u64::try_from(a).ok()?, u64::try_from(b).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_mentions, encode_mentions};

    #[test]
    fn mentions_round_trip() {
        assert_eq!(encode_mentions(&[], false), None);
        assert_eq!(decode_mentions(None), (vec![], false));
        let s = encode_mentions(&[3, 12], true).unwrap();
        assert_eq!(s, "*,3,12");
        assert_eq!(decode_mentions(Some(&s)), (vec![3, 12], true));
        assert_eq!(decode_mentions(Some("7")), (vec![7], false));
    }
}
