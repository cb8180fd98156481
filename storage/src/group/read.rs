//! Reads of groups, on the reader pool: a group's profile, its members page by page, the
//! user's groups and the invitations the user can act on.

use rusqlite::{params, Connection};

use super::records::{record, GroupRecord, InviteRecord, MemberRecord, Role};
use crate::int::{get_u64, Uint};
use crate::{ConversationId, StorageError, UserId};

/// The group's profile as `user` (a member) sees it.
///
/// # Errors
/// `UnknownConversation`, `NotAMember`, database errors.
pub fn group_info(
    c: &Connection,
    user: UserId,
    group: ConversationId,
) -> Result<GroupRecord, StorageError> {
    record(c, group, user)
}

/// The groups `user` is in, by id.
///
/// # Errors
/// Database errors.
pub fn groups(c: &Connection, user: UserId) -> Result<Vec<GroupRecord>, StorageError> {
    let ids: Vec<u64> = c
        .prepare_cached(
            "SELECT m.conversation_id FROM members m JOIN groups g
               ON g.conversation_id = m.conversation_id
             WHERE m.user_id = ?1 AND g.dismissed_at_ms IS NULL ORDER BY m.conversation_id",
        )?
        .query_map([Uint(user)], |r| get_u64(r, 0))?
        .collect::<Result<_, _>>()?;
    ids.into_iter().map(|g| record(c, g, user)).collect()
}

/// Which members to list.
#[derive(Debug, Clone, Copy)]
pub struct MemberPage {
    /// Only members with a larger id.
    pub after: UserId,
    /// Most members.
    pub limit: usize,
}

/// One page of the group's members by id, for `user` (a member), and whether more follow.
///
/// # Errors
/// `UnknownConversation`, `NotAMember`, database errors.
pub fn members(
    c: &Connection,
    user: UserId,
    group: ConversationId,
    page: MemberPage,
) -> Result<(Vec<MemberRecord>, bool), StorageError> {
    record(c, group, user)?;
    let mut st = c.prepare_cached(
        "SELECT m.user_id, COALESCE(u.nickname, ''), m.role, m.card, m.muted_until_ms,
                m.joined_at_ms
         FROM members m LEFT JOIN users u ON u.id = m.user_id
         WHERE m.conversation_id = ?1 AND m.user_id > ?2 ORDER BY m.user_id LIMIT ?3",
    )?;
    let mut list: Vec<MemberRecord> = st
        .query_map(
            params![
                Uint(group),
                Uint(page.after),
                Uint::from_usize(page.limit + 1)
            ],
            |r| {
                Ok(MemberRecord {
                    user_id: get_u64(r, 0)?,
                    nickname: r.get(1)?,
                    role: Role::from_i64(r.get(2)?),
                    card: r.get(3)?,
                    muted_until_ms: r.get(4)?,
                    joined_at_ms: r.get(5)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    let more = list.len() > page.limit;
    list.truncate(page.limit);
    Ok((list, more))
}

/// Pending invitations `user` can act on: those to `user`, and those waiting in groups
/// `user` owns or administers; oldest first.
///
/// # Errors
/// Database errors.
pub fn invites(c: &Connection, user: UserId) -> Result<Vec<InviteRecord>, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT i.group_id, g.name, i.user_id, i.inviter_id, i.created_at_ms
         FROM group_invites i JOIN groups g ON g.conversation_id = i.group_id
         WHERE g.dismissed_at_ms IS NULL AND (i.user_id = ?1 OR EXISTS (
             SELECT 1 FROM members m WHERE m.conversation_id = i.group_id
                                        AND m.user_id = ?1 AND m.role >= 1))
         ORDER BY i.created_at_ms, i.group_id, i.user_id",
    )?;
    let rows = st.query_map([Uint(user)], |r| {
        Ok(InviteRecord {
            group_id: get_u64(r, 0)?,
            group_name: r.get(1)?,
            user_id: get_u64(r, 2)?,
            inviter: get_u64(r, 3)?,
            created_at_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
