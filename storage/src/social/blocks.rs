//! Blocks: who blocked whom, blocking and unblocking.

use rusqlite::{params, Connection, OptionalExtension};

use super::friends::unfriend;
use super::profile::{public_row, required_user, PublicUser, PUBLIC_COLUMNS};
use crate::int::Uint;
use crate::{now_ms, StorageError, UserId};

/// Whether `user` blocked `other`.
///
/// # Errors
/// Database errors.
pub fn blocks(c: &Connection, user: UserId, other: UserId) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM blocks WHERE user_id = ?1 AND blocked_id = ?2")?
            .query_row(params![Uint(user), Uint(other)], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// The users `user` has blocked, by user id.
///
/// # Errors
/// Database errors.
pub fn blocked(c: &Connection, user: UserId) -> Result<Vec<PublicUser>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM blocks b JOIN users u ON u.id = b.blocked_id
         WHERE b.user_id = ?1 ORDER BY b.blocked_id"
    ))?;
    let rows = st.query_map([Uint(user)], |r| public_row(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `user` blocks `other`: ends their friendship and withdraws pending requests between them.
/// Blocking twice is not an error. Returns `other`'s public profile and whether they were
/// friends. Run through [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::SelfTarget`], [`StorageError::UnknownUser`]; database errors.
pub fn block(
    c: &Connection,
    user: UserId,
    other: UserId,
) -> Result<(PublicUser, bool), StorageError> {
    if user == other {
        return Err(StorageError::SelfTarget);
    }
    let blocked = required_user(c, other)?;
    let now = now_ms();
    c.prepare_cached(
        "INSERT INTO blocks(user_id, blocked_id, since_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![Uint(user), Uint(other), now])?;
    c.prepare_cached(
        "UPDATE friend_requests SET status = 3, answered_at_ms = ?3
         WHERE status = 0 AND ((from_user = ?1 AND to_user = ?2) OR (from_user = ?2 AND to_user = ?1))",
    )?
    .execute(params![Uint(user), Uint(other), now])?;
    Ok((blocked, unfriend(c, user, other)?))
}

/// `user` unblocks `other`; returns `other`'s public profile. Run through
/// [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::NotBlocked`]; database errors.
pub fn unblock(c: &Connection, user: UserId, other: UserId) -> Result<PublicUser, StorageError> {
    let n = c
        .prepare_cached("DELETE FROM blocks WHERE user_id = ?1 AND blocked_id = ?2")?
        .execute(params![Uint(user), Uint(other)])?;
    if n == 0 {
        return Err(StorageError::NotBlocked);
    }
    required_user(c, other)
}
