//! A voice message's transcript (`messages.transcript`): stored once, by a writer job whose
//! UPDATE changes the row only while it holds no transcript, so of two racing
//! transcriptions exactly one stores its text, and only that one tells the members.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::{ConversationId, StorageError, UserId, Writer};

/// The protocol's `MESSAGE_KIND_VOICE`.
pub const VOICE: i32 = 3;

/// What [`Writer::store_transcript`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptStored {
    /// This text was stored: the members who can read the message, to be told (sorted).
    Stored {
        /// Users who can read the message: a direct conversation's two members; a group's
        /// members who joined before it.
        readers: Vec<UserId>,
    },
    /// The message already had a transcript: this one, and nobody is to be told again.
    Existing(String),
}

impl<C: Send + 'static> Writer<C> {
    /// Stores `text` as the transcript of message `message_id` (the message `seq` of
    /// `conversation`), unless it has one or is no longer a voice message.
    ///
    /// # Errors
    /// [`StorageError::UnknownMessage`] when the message is gone or no longer a voice message
    /// (recalled); as [`Writer::call`].
    pub async fn store_transcript(
        &self,
        conversation: ConversationId,
        seq: u64,
        message_id: u64,
        text: String,
    ) -> Result<TranscriptStored, StorageError> {
        self.call(move |c| store(c, conversation, seq, message_id, &text))
            .await
    }
}

/// The job of [`Writer::store_transcript`].
pub(crate) fn store(
    c: &Connection,
    conversation: ConversationId,
    seq: u64,
    message_id: u64,
    text: &str,
) -> Result<TranscriptStored, StorageError> {
    let changed = c
        .prepare_cached(
            "UPDATE messages SET transcript = ?2
             WHERE id = ?1 AND conversation_id = ?3 AND kind = ?4 AND transcript IS NULL",
        )?
        .execute(params![Uint(message_id), text, Uint(conversation), VOICE])?;
    if changed == 1 {
        return Ok(TranscriptStored::Stored {
            readers: readers(c, conversation, seq)?,
        });
    }
    let existing: Option<Option<String>> = c
        .prepare_cached(
            "SELECT transcript FROM messages WHERE id = ?1 AND conversation_id = ?2 AND kind = ?3",
        )?
        .query_row(params![Uint(message_id), Uint(conversation), VOICE], |r| {
            r.get(0)
        })
        .optional()?;
    match existing {
        Some(Some(text)) => Ok(TranscriptStored::Existing(text)),
        _ => Err(StorageError::UnknownMessage),
    }
}

/// Who can read the message `seq` of `conversation`: both members of a direct conversation;
/// in a group, the members who joined before it (`joined_seq < seq`). Sorted.
fn readers(
    c: &Connection,
    conversation: ConversationId,
    seq: u64,
) -> Result<Vec<UserId>, StorageError> {
    let pair = c
        .prepare_cached("SELECT kind, user_a, user_b FROM conversations WHERE id = ?1")?
        .query_row([Uint(conversation)], |r| {
            Ok(crate::message::pair_of(r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
        .ok_or(StorageError::UnknownConversation)?;
    if let Some((a, b)) = pair {
        let mut both = vec![a, b];
        both.sort_unstable();
        return Ok(both);
    }
    let mut st = c.prepare_cached(
        "SELECT user_id FROM members WHERE conversation_id = ?1 AND joined_seq < ?2
         ORDER BY user_id",
    )?;
    let rows = st.query_map(params![Uint(conversation), Uint(seq)], |r| get_u64(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Users 1..=4; direct conversation 5 (1 and 2) with voice message 50 (seq 1) and text
    /// message 51 (seq 2); group 10 (1, 2, 3; 4 joined after seq 1) with voice message 100.
    fn db() -> Connection {
        let c = crate::schema::migrated_in_memory();
        for name in ["u1", "u2", "u3", "u4"] {
            crate::account::insert_user(&c, name, name, b"s", b"h").unwrap();
        }
        c.execute_batch(
            "INSERT INTO conversations(id, kind, user_a, user_b, created_at_ms)
                 VALUES (5, 1, 1, 2, 0);
             INSERT INTO conversations(id, kind, created_at_ms) VALUES (10, 2, 0);
             INSERT INTO groups(conversation_id, name, owner_id, created_at_ms)
                 VALUES (10, 'g', 1, 0);
             INSERT INTO members(user_id, conversation_id, joined_at_ms, role, joined_seq)
                 VALUES (1, 10, 0, 2, 0), (2, 10, 0, 0, 0), (3, 10, 0, 0, 0), (4, 10, 0, 0, 1);
             INSERT INTO messages(id, conversation_id, seq, sender_id, kind, body, sent_at_ms)
                 VALUES (50, 5, 1, 2, 3, '', 0), (51, 5, 2, 1, 0, 'hi', 0),
                        (100, 10, 1, 3, 3, '', 0);",
        )
        .unwrap();
        c
    }

    #[test]
    fn the_first_text_is_stored_and_later_ones_get_it_back() {
        let c = db();
        assert_eq!(
            store(&c, 5, 1, 50, "go forward").unwrap(),
            TranscriptStored::Stored {
                readers: vec![1, 2]
            }
        );
        assert_eq!(
            store(&c, 5, 1, 50, "go backward").unwrap(),
            TranscriptStored::Existing("go forward".into())
        );
        let kept: String = c
            .query_row("SELECT transcript FROM messages WHERE id = 50", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(kept, "go forward");
    }

    #[test]
    fn group_readers_are_the_members_before_the_message() {
        let c = db();
        assert_eq!(
            store(&c, 10, 1, 100, "hello").unwrap(),
            TranscriptStored::Stored {
                readers: vec![1, 2, 3]
            }
        );
    }

    #[test]
    fn text_recalled_and_foreign_messages_are_refused() {
        let c = db();
        assert!(matches!(
            store(&c, 5, 2, 51, "x"),
            Err(StorageError::UnknownMessage)
        ));
        // The id of another conversation's message.
        assert!(matches!(
            store(&c, 5, 1, 100, "x"),
            Err(StorageError::UnknownMessage)
        ));
        c.execute("UPDATE messages SET kind = 5 WHERE id = 50", [])
            .unwrap();
        assert!(matches!(
            store(&c, 5, 1, 50, "x"),
            Err(StorageError::UnknownMessage)
        ));
    }
}
