//! Conversations and messages: the read side (history, sync) and the per-device cursors.
//! Message inserts happen in the writer ([`crate::Writer`]), which owns sequence assignment.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::recent::Range;
use crate::sequence::{Budget, Query, View};
use crate::{ConversationId, StorageError, UserId};

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
    /// Messages, newest first.
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
    /// Only messages sent at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Only messages sent before this time (unix ms).
    pub until_ms: Option<i64>,
    /// Most messages returned.
    pub limit: usize,
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
        .query_row(params![user as i64, conversation as i64], |r| {
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
        return Err(StorageError::Forbidden);
    };
    let query = Query {
        conversation: q.conversation,
        range: Range {
            after: 0,
            before: q.before_seq.unwrap_or(u64::MAX),
            newest_first: true,
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
        "SELECT mb.conversation_id, c.kind, c.user_a, c.user_b, COALESCE(dc.seq, 0)
         FROM memberships mb JOIN conversations c ON c.id = mb.conversation_id
         LEFT JOIN device_cursors dc
           ON dc.user_id = mb.user_id AND dc.device = ?2 AND dc.conversation_id = mb.conversation_id
         WHERE mb.user_id = ?1 ORDER BY mb.conversation_id",
    )?;
    let convs: Vec<(u64, DirectPair, u64)> = convs
        .query_map(params![user as i64, device], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                pair_of(r.get(1)?, r.get(2)?, r.get(3)?),
                r.get::<_, i64>(4)? as u64,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut page = SyncPage::default();
    let mut budget = Budget::new(max_bytes);
    for (conv, pair, cursor) in convs {
        let after = positions
            .iter()
            .find(|p| p.conversation_id == conv)
            .map_or(cursor, |p| p.seq);
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
            .query_row(params![user as i64, conv], |_| Ok(()))
            .optional()?
            .is_none()
        {
            continue;
        }
        let seq = p.seq.min(view.last_seq(c, p.conversation_id)?);
        st.execute(params![user as i64, device, conv, seq as i64])?;
    }
    Ok(())
}
