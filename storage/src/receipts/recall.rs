//! Recalling a message: on the writer, ordered with the sends.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::message::{pair_of, DirectPair, StoredMessage};
use crate::recent::Range;
use crate::sequence::{Query, View};
use crate::{ConversationId, StorageError, UserId, Writer};

/// The protocol's `MESSAGE_KIND_RECALLED`.
pub const RECALLED: i32 = crate::search::RECALLED;

/// A recalled message, and who is to hear of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recalled {
    /// The message's id.
    pub message_id: u64,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its seq.
    pub seq: u64,
    /// Who recalled it.
    pub recalled_by: UserId,
    /// The recall's place in the log (`recalls.id`): grows with each recall.
    pub recall_id: u64,
    /// When (unix ms).
    pub recalled_at_ms: i64,
    /// The conversation's members (the recaller included), sorted; empty when listed
    /// ([`recalls`]).
    pub members: Vec<UserId>,
}

impl<C: Send + 'static> Writer<C> {
    /// Recalls the message `seq` of `conversation` for `user`: its sender, or in a group an
    /// admin or the owner (`members.role` ≥ 1), within `window_ms` of its sending. The
    /// message becomes kind [`RECALLED`] with an empty body, and the search index loses it.
    ///
    /// # Errors
    /// [`StorageError::Forbidden`] (not a member, or not allowed),
    /// [`StorageError::UnknownMessage`], [`StorageError::AlreadyRecalled`],
    /// [`StorageError::RecallExpired`]; as [`Writer::call`].
    pub async fn recall(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: u64,
        window_ms: u64,
    ) -> Result<Recalled, StorageError> {
        self.call_view(move |c, view| {
            recall(c, view, user, conversation, seq, window_ms, crate::now_ms())
        })
        .await
    }
}

/// The recall job, at time `now` (unix ms).
pub(super) fn recall(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
    window_ms: u64,
    now: i64,
) -> Result<Recalled, StorageError> {
    let Some((pair, role)) = member(c, user, conversation)? else {
        return Err(StorageError::Forbidden);
    };
    let m = message_at(c, view, conversation, seq, pair)?.ok_or(StorageError::UnknownMessage)?;
    if m.kind == RECALLED {
        return Err(StorageError::AlreadyRecalled);
    }
    if m.from_user != user && (pair.is_some() || role < 1) {
        return Err(StorageError::Forbidden);
    }
    let age = u64::try_from(now.saturating_sub(m.sent_at_ms)).unwrap_or(0);
    if age > window_ms {
        return Err(StorageError::RecallExpired {
            window_s: window_ms / 1000,
        });
    }
    c.prepare_cached(
        "UPDATE messages SET kind = ?2, body = '', recalled_by = ?3, attachment = NULL WHERE id = ?1",
    )?
    .execute(params![Uint(m.id), RECALLED, Uint(user)])?;
    if m.file.is_some() {
        // The message no longer uses its file (a trigger drops the reference).
        c.prepare_cached("DELETE FROM file_uses WHERE message_id = ?1")?
            .execute([Uint(m.id)])?;
    }
    c.prepare_cached("INSERT INTO recalls(message_id, recalled_at_ms) VALUES (?1, ?2)")?
        .execute(params![Uint(m.id), now])?;
    let recall_id = u64::try_from(c.last_insert_rowid()).unwrap_or(0);
    let members = match pair {
        Some((a, b)) => vec![a, b],
        None => c
            .prepare_cached(
                "SELECT user_id FROM members WHERE conversation_id = ?1 ORDER BY user_id",
            )?
            .query_map([Uint(conversation)], |r| get_u64(r, 0))?
            .collect::<Result<_, _>>()?,
    };
    Ok(Recalled {
        message_id: m.id,
        conversation_id: conversation,
        seq,
        recalled_by: user,
        recall_id,
        recalled_at_ms: now,
        members,
    })
}

/// Up to `limit` recalls in `user`'s conversations after the recall `after`, oldest first.
///
/// # Errors
/// Database errors.
pub fn recalls(
    c: &Connection,
    user: UserId,
    after: u64,
    limit: usize,
) -> Result<Vec<Recalled>, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT r.id, r.message_id, m.conversation_id, m.seq, m.recalled_by, r.recalled_at_ms
         FROM recalls r JOIN messages m ON m.id = r.message_id
         WHERE r.id > ?2
           AND EXISTS (SELECT 1 FROM conversation_members mb
                       WHERE mb.user_id = ?1 AND mb.conversation_id = m.conversation_id)
         ORDER BY r.id LIMIT ?3",
    )?;
    let rows = st.query_map(
        params![Uint(user), Uint(after), Uint::from_usize(limit)],
        |r| {
            Ok(Recalled {
                recall_id: get_u64(r, 0)?,
                message_id: get_u64(r, 1)?,
                conversation_id: get_u64(r, 2)?,
                seq: get_u64(r, 3)?,
                recalled_by: get_u64(r, 4)?,
                recalled_at_ms: r.get(5)?,
                members: Vec::new(),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A conversation's direct pair (None for a group) and `user`'s role in it (0 in a direct
/// conversation), if `user` is a member.
pub(crate) fn member(
    c: &Connection,
    user: UserId,
    conversation: ConversationId,
) -> Result<Option<(DirectPair, i64)>, StorageError> {
    let kind = c
        .prepare_cached("SELECT kind, user_a, user_b FROM conversations WHERE id = ?1")?
        .query_row([Uint(conversation)], |r| {
            Ok(pair_of(r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    match kind {
        None => Ok(None),
        Some(Some((a, b))) => Ok((user == a || user == b).then_some((Some((a, b)), 0))),
        Some(None) => {
            let role: Option<i64> = c
                .prepare_cached(
                    "SELECT role FROM members WHERE user_id = ?1 AND conversation_id = ?2",
                )?
                .query_row(params![Uint(user), Uint(conversation)], |r| r.get(0))
                .optional()?;
            Ok(role.map(|r| (None, r)))
        }
    }
}

/// The message `seq` of `conversation`, if there is one.
pub(crate) fn message_at(
    c: &Connection,
    view: &View<'_>,
    conversation: ConversationId,
    seq: u64,
    pair: DirectPair,
) -> Result<Option<StoredMessage>, StorageError> {
    if seq == 0 || seq == u64::MAX {
        return Ok(None);
    }
    let q = Query {
        conversation,
        range: Range {
            after: seq - 1,
            before: seq + 1,
            newest_first: false,
            limit: 1,
        },
        since_ms: i64::MIN,
        until_ms: i64::MAX,
    };
    Ok(crate::sequence::read_by_seq(c, view, &q, pair)?.pop())
}
