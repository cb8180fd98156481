//! Conversations and messages: the read side (history, sync) and the per-device cursors.
//! Message inserts happen in the writer ([`crate::Writer`]), which owns sequence assignment.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::recent::Range;
pub use crate::row::StoredMessage;
pub(crate) use crate::row::{message_row, pair_of, DirectPair, MESSAGE_COLUMNS};
use crate::sequence::{Budget, Query, View};
use crate::{ConversationId, StorageError, UserId};

/// A device's position in one conversation: the highest contiguous sequence it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationPosition {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Highest contiguous sequence received.
    pub seq: u64,
}

/// One page of a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncPage {
    /// Missed messages, oldest first within each conversation.
    pub messages: Vec<StoredMessage>,
    /// More messages wait after this page.
    pub has_more: bool,
}

/// One page of a conversation's history.
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    /// Messages, newest first (oldest first when the query has `after_seq`).
    pub messages: Vec<StoredMessage>,
    /// More messages may follow: the page holds `limit` messages or was cut at its byte budget.
    pub has_more: bool,
}

/// Which part of a conversation's history to read.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Conversation to read.
    pub conversation: ConversationId,
    /// Only messages with a smaller sequence number.
    pub before_seq: Option<u64>,
    /// Only messages with a greater sequence number, and then oldest first (paging forward).
    pub after_seq: Option<u64>,
    /// Only messages sent at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Only messages sent before this time (unix ms).
    pub until_ms: Option<i64>,
    /// Most messages returned.
    pub limit: usize,
}

/// The conversation's kind and direct pair if `user` is a member.
fn membership(
    c: &Connection,
    user: UserId,
    conversation: ConversationId,
) -> Result<Option<Option<(u64, u64)>>, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT c.kind, c.user_a, c.user_b FROM conversation_members mb JOIN conversations c ON c.id = mb.conversation_id
         WHERE mb.user_id = ?1 AND mb.conversation_id = ?2",
    )?;
    Ok(st
        .query_row(params![Uint(user), Uint(conversation)], |r| {
            Ok(pair_of(r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

pub(crate) fn history(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    q: &HistoryQuery,
    max_bytes: usize,
) -> Result<HistoryPage, StorageError> {
    let Some(pair) = membership(c, user, q.conversation)? else {
        if crate::group::is_group(c, q.conversation)? {
            return Err(StorageError::NotAMember(
                "you are not a member of this group",
            ));
        }
        return Err(StorageError::Forbidden);
    };
    // A group member reads only what follows their joining.
    let joined = match pair {
        Some(_) => 0,
        None => crate::group::joined_seq(c, q.conversation, user)?.unwrap_or(0),
    };
    let query = Query {
        conversation: q.conversation,
        range: Range {
            after: joined.max(q.after_seq.unwrap_or(0)),
            before: q.before_seq.unwrap_or(u64::MAX),
            newest_first: q.after_seq.is_none(),
            limit: q.limit,
        },
        since_ms: q.since_ms.unwrap_or(i64::MIN),
        until_ms: q.until_ms.unwrap_or(i64::MAX),
    };
    let mut budget = Budget::new(max_bytes);
    let messages = crate::sequence::read_by_seq_within(c, view, &query, pair, &mut budget)?;
    Ok(HistoryPage {
        has_more: budget.hit || messages.len() == q.limit,
        messages,
    })
}

pub(crate) fn sync(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    device: &str,
    positions: &[ConversationPosition],
    limit: usize,
    max_bytes: usize,
) -> Result<SyncPage, StorageError> {
    let mut convs = c.prepare_cached(
        "SELECT mb.conversation_id, c.kind, c.user_a, c.user_b, COALESCE(dc.seq, 0),
                COALESCE(g.joined_seq, 0)
         FROM memberships mb JOIN conversations c ON c.id = mb.conversation_id
         LEFT JOIN device_cursors dc
           ON dc.user_id = mb.user_id AND dc.device = ?2 AND dc.conversation_id = mb.conversation_id
         LEFT JOIN members g ON g.user_id = mb.user_id AND g.conversation_id = mb.conversation_id
         WHERE mb.user_id = ?1 ORDER BY mb.conversation_id",
    )?;
    // A group's cursor starts at the member's joining (they read only what follows).
    let convs: Vec<(u64, DirectPair, u64, u64)> = convs
        .query_map(params![Uint(user), device], |r| {
            Ok((
                get_u64(r, 0)?,
                pair_of(r.get(1)?, r.get(2)?, r.get(3)?),
                get_u64(r, 4)?,
                get_u64(r, 5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut page = SyncPage::default();
    let mut budget = Budget::new(max_bytes);
    for (conv, pair, cursor, joined) in convs {
        let after = positions
            .iter()
            .find(|p| p.conversation_id == conv)
            .map_or(cursor, |p| p.seq)
            .max(joined);
        let room = limit - page.messages.len();
        let before = page.messages.len();
        let query = Query {
            conversation: conv,
            range: Range {
                after,
                before: u64::MAX,
                newest_first: false,
                limit: room + 1,
            },
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        };
        let rows = crate::sequence::read_by_seq_within(c, view, &query, pair, &mut budget)?;
        page.messages.extend(rows);
        if budget.hit {
            // Cut at the byte budget: the next page goes on from here.
            page.has_more = true;
            break;
        }
        if page.messages.len() - before > room {
            page.messages.pop();
            page.has_more = true;
            break;
        }
        if page.messages.len() == limit {
            // Full page: there may be more in later conversations.
            page.has_more = true;
            break;
        }
    }
    Ok(page)
}

/// Records what `user`'s `device` has received; positions never move backwards, nor past the
/// conversation's newest message. Runs on the writer ([`crate::Writer::ack`]).
///
/// # Errors
/// Database errors.
pub(crate) fn set_cursors(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    device: &str,
    positions: &[ConversationPosition],
) -> Result<(), StorageError> {
    let mut member = c.prepare_cached(
        "SELECT 1 FROM conversation_members WHERE user_id = ?1 AND conversation_id = ?2",
    )?;
    let mut st = c.prepare_cached(
        "INSERT INTO device_cursors(user_id, device, conversation_id, seq) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id, device, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?;
    for p in positions {
        // Ids from the client: one past i64 names no conversation.
        let Ok(conv) = i64::try_from(p.conversation_id) else {
            continue;
        };
        if member
            .query_row(params![Uint(user), conv], |_| Ok(()))
            .optional()?
            .is_none()
        {
            continue;
        }
        let seq = p.seq.min(view.last_seq(c, p.conversation_id)?);
        st.execute(params![Uint(user), device, conv, Uint(seq)])?;
    }
    Ok(())
}
