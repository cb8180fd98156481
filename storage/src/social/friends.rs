//! Friendships: the friend list and remarks, and making and ending friendships.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::profile::{public_row, PublicUser};
use crate::int::{get_u64, Uint};
use crate::{ConversationId, StorageError, UserId};

/// One of a user's friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRecord {
    /// The friend.
    pub user: PublicUser,
    /// The owner's private alias for the friend.
    pub remark: String,
    /// When they became friends (unix ms).
    pub since_ms: i64,
    /// Their 1:1 conversation (0 if none).
    pub conversation_id: ConversationId,
    /// The owner's friend group for them ("" = the default group).
    pub group: String,
}

/// Whether `a` and `b` are friends.
///
/// # Errors
/// Database errors.
pub fn is_friend(c: &Connection, a: UserId, b: UserId) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM friends WHERE user_id = ?1 AND friend_id = ?2")?
            .query_row(params![Uint(a), Uint(b)], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

const FRIEND_SELECT: &str = "SELECT u.id, u.username, u.nickname, u.signature, u.avatar,
        u.closed_at_ms <> 0, f.remark, f.since_ms,
        COALESCE(
            (SELECT p.conversation_id FROM direct_pairs p
             WHERE p.user_id = f.user_id AND p.peer_id = f.friend_id),
            (SELECT t.conversation_id FROM direct_tail t
             WHERE t.user_a = min(f.user_id, f.friend_id) AND t.user_b = max(f.user_id, f.friend_id)),
            0),
        f.group_name
     FROM friends f JOIN users u ON u.id = f.friend_id";

fn friend_row(r: &Row<'_>) -> rusqlite::Result<FriendRecord> {
    Ok(FriendRecord {
        user: public_row(r, 0)?,
        remark: r.get(6)?,
        since_ms: r.get(7)?,
        conversation_id: get_u64(r, 8)?,
        group: r.get(9)?,
    })
}

/// `user`'s friends, by user id.
///
/// # Errors
/// Database errors.
pub fn friends(c: &Connection, user: UserId) -> Result<Vec<FriendRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "{FRIEND_SELECT} WHERE f.user_id = ?1 ORDER BY f.friend_id"
    ))?;
    let rows = st.query_map([Uint(user)], friend_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `other` as `user`'s friend, if they are friends.
///
/// # Errors
/// Database errors.
pub fn friend(
    c: &Connection,
    user: UserId,
    other: UserId,
) -> Result<Option<FriendRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "{FRIEND_SELECT} WHERE f.user_id = ?1 AND f.friend_id = ?2"
    ))?;
    Ok(st
        .query_row(params![Uint(user), Uint(other)], friend_row)
        .optional()?)
}

/// The ids of `user`'s friends.
///
/// # Errors
/// Database errors.
pub fn friend_ids(c: &Connection, user: UserId) -> Result<Vec<UserId>, StorageError> {
    let mut st = c.prepare_cached("SELECT friend_id FROM friends WHERE user_id = ?1")?;
    let rows = st.query_map([Uint(user)], |r| get_u64(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes `a` and `b` friends and opens their conversation.
pub(super) fn befriend(c: &Connection, a: UserId, b: UserId, now: i64) -> Result<(), StorageError> {
    let mut st = c.prepare_cached(
        "INSERT INTO friends(user_id, friend_id, remark, since_ms) VALUES (?1, ?2, '', ?3)
         ON CONFLICT DO NOTHING",
    )?;
    st.execute(params![Uint(a), Uint(b), now])?;
    st.execute(params![Uint(b), Uint(a), now])?;
    crate::pairs::ensure_direct(c, a, b, now)?;
    Ok(())
}

/// Ends the friendship of `user` and `other` on both sides. Run through
/// [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::NotAFriend`]; database errors.
pub fn delete_friend(c: &Connection, user: UserId, other: UserId) -> Result<(), StorageError> {
    if unfriend(c, user, other)? {
        Ok(())
    } else {
        Err(StorageError::NotAFriend)
    }
}

/// Ends the friendship of `a` and `b` on both sides; whether they were friends.
pub(super) fn unfriend(c: &Connection, a: UserId, b: UserId) -> Result<bool, StorageError> {
    let n = c
        .prepare_cached(
            "DELETE FROM friends WHERE (user_id = ?1 AND friend_id = ?2)
                OR (user_id = ?2 AND friend_id = ?1)",
        )?
        .execute(params![Uint(a), Uint(b)])?;
    Ok(n > 0)
}

/// Sets `user`'s alias for the friend `other`. Run through [`crate::Writer::call`].
///
/// # Errors
/// [`StorageError::NotAFriend`]; database errors.
pub fn set_remark(
    c: &Connection,
    user: UserId,
    other: UserId,
    remark: &str,
) -> Result<FriendRecord, StorageError> {
    c.prepare_cached("UPDATE friends SET remark = ?3 WHERE user_id = ?1 AND friend_id = ?2")?
        .execute(params![Uint(user), Uint(other), remark])?;
    friend(c, user, other)?.ok_or(StorageError::NotAFriend)
}
