//! A user's conversation list, most recently active first.

use rusqlite::{params, Connection, OptionalExtension};

use super::profile::{public_user, PublicUser};
use crate::int::{get_u64, Uint};
use crate::recent::Range;
use crate::row::{pair_of, StoredMessage};
use crate::sequence::{Query, View};
use crate::{ConversationId, StorageError, UserId};

/// One entry of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    /// Conversation id.
    pub id: ConversationId,
    /// For a 1:1 conversation, the other member.
    pub peer: Option<PublicUser>,
    /// The user's alias for the peer, if they are friends.
    pub remark: String,
    /// The newest message.
    pub last_message: Option<StoredMessage>,
    /// Messages from others after `read_seq`.
    pub unread: u64,
    /// The user's read position.
    pub read_seq: u64,
    /// Time of the newest message, else when the conversation was opened.
    pub last_active_ms: i64,
    /// A group's profile.
    pub group: Option<crate::group::GroupRecord>,
    /// Groups: a message after `read_seq` mentions the user or everyone.
    pub mentioned: bool,
    /// The conversation's newest seq in the snapshot `unread` was counted in.
    pub last_seq: u64,
}

/// Which part of a conversation list to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationPage {
    /// Most entries; 0 = all.
    pub limit: usize,
    /// Only entries after this one in the list's order: (`last_active_ms`, conversation id).
    /// An id of 0 means every entry active before that time.
    pub before: Option<(i64, ConversationId)>,
}

/// One page of `user`'s conversations, most recently active first (ties: higher id first),
/// each with its newest message and the exact number of messages from others after the
/// user's read position; and whether more follow. Only the page's entries are looked up in
/// full.
///
/// # Errors
/// Database errors.
pub(crate) fn conversations(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    page: ConversationPage,
) -> Result<(Vec<ConversationRecord>, bool), StorageError> {
    // Each conversation's last activity: its newest message (in memory, else in
    // `message_seq`), or its creation.
    let mut st = c.prepare_cached(
        "SELECT c.id, c.kind, c.user_a, c.user_b, c.created_at_ms,
            max(COALESCE(rp.seq, 0), COALESCE(g.joined_seq, 0)),
            COALESCE(
                (SELECT m.sent_at_ms FROM message_seq x JOIN messages m ON m.id = x.id
                 WHERE x.conversation_id = c.id ORDER BY x.seq DESC LIMIT 1),
                c.created_at_ms)
         FROM memberships mb JOIN conversations c ON c.id = mb.conversation_id
         LEFT JOIN read_positions rp
           ON rp.user_id = mb.user_id AND rp.conversation_id = mb.conversation_id
         LEFT JOIN members g ON g.user_id = mb.user_id AND g.conversation_id = mb.conversation_id
         WHERE mb.user_id = ?1",
    )?;
    type Row0 = (u64, Option<(u64, u64)>, i64, u64, i64);
    let rows: Vec<Row0> = st
        .query_map(params![Uint(user)], |r| {
            Ok((
                get_u64(r, 0)?,
                pair_of(r.get(1)?, r.get(2)?, r.get(3)?),
                r.get(4)?,
                get_u64(r, 5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut sent_at = c.prepare_cached("SELECT sent_at_ms FROM messages WHERE id = ?1")?;
    let mut convs = Vec::with_capacity(rows.len());
    for (id, pair, created, read_seq, indexed_active) in rows {
        let active = match view.recent(id, Range::NEWEST)?.first() {
            Some(s) => sent_at.query_row([Uint(s.id)], |r| r.get(0))?,
            None => indexed_active,
        };
        let after_cursor = match page.before {
            None => true,
            Some((ms, before_id)) => active < ms || (active == ms && id < before_id),
        };
        if after_cursor {
            convs.push((active, id, pair, created, read_seq));
        }
    }
    // Most recently active first, ties by higher id.
    convs.sort_unstable_by_key(|c| std::cmp::Reverse((c.0, c.1)));
    let more = page.limit != 0 && convs.len() > page.limit;
    if more {
        convs.truncate(page.limit);
    }
    let mut out = Vec::with_capacity(convs.len());
    for (_, id, pair, created, read_seq) in convs {
        let newest = Query {
            conversation: id,
            range: Range::NEWEST,
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        };
        let last_message = crate::sequence::read_by_seq(c, view, &newest, pair)?.pop();
        let (group, mentioned) = match pair {
            Some(_) => (None, false),
            None => (
                Some(crate::group::group_info(c, user, id)?),
                mentioned(c, id, user, read_seq)?,
            ),
        };
        let (peer, remark) = match pair {
            Some((a, b)) => {
                let other = if a == user { b } else { a };
                let remark = c
                    .prepare_cached(
                        "SELECT remark FROM friends WHERE user_id = ?1 AND friend_id = ?2",
                    )?
                    .query_row(params![Uint(user), Uint(other)], |r| r.get(0))
                    .optional()?
                    .unwrap_or_default();
                (public_user(c, other)?, remark)
            }
            None => (None, String::new()),
        };
        out.push(ConversationRecord {
            id,
            peer,
            remark,
            unread: view.count_from_others(c, id, read_seq, user)?,
            last_seq: view.last_seq(c, id)?,
            read_seq,
            last_active_ms: last_message.as_ref().map_or(created, |m| m.sent_at_ms),
            last_message,
            group,
            mentioned,
        });
    }
    Ok((out, more))
}

/// Whether a message after `read_seq` in the group mentions `user` or everyone (and was not
/// sent by `user`).
fn mentioned(
    c: &Connection,
    group: ConversationId,
    user: UserId,
    read_seq: u64,
) -> Result<bool, StorageError> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM mentions WHERE conversation_id = ?1 AND user_id IN (?2, 0)
             AND seq > ?3 AND sender_id != ?2 LIMIT 1",
    )?
    .query_row(params![Uint(group), Uint(user), Uint(read_seq)], |_| Ok(()))
    .optional()?
    .is_some())
}
