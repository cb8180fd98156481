//! Friend requests: sending (with the cool-down after a rejection), answering, listing and
//! pruning.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::blocks::blocks;
use super::friends::{befriend, friend, is_friend, FriendRecord};
use super::profile::{public_row, required_user, PublicUser};
use crate::int::{get_u64, last_id, Uint};
use crate::{now_ms, StorageError, UserId};

/// A pending friend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequestRecord {
    /// Request id.
    pub id: u64,
    /// Who asked.
    pub from: PublicUser,
    /// Who was asked.
    pub to: PublicUser,
    /// The requester's note.
    pub message: String,
    /// When it was sent (unix ms).
    pub created_at_ms: i64,
}

/// What a friend request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Stored as pending.
    Sent(FriendRequestRecord),
    /// The other user had already asked: their request was accepted instead.
    Accepted {
        /// Their request, now accepted.
        request: FriendRequestRecord,
        /// The new friend as the caller sees them.
        friend: FriendRecord,
    },
}

/// An answered friend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responded {
    /// The request.
    pub request: FriendRequestRecord,
    /// Accepted (else rejected).
    pub accepted: bool,
    /// When accepted: the requester as the responder's friend.
    pub friend: Option<FriendRecord>,
}

const REQUEST_SELECT: &str = "SELECT r.id, r.message, r.created_at_ms,
        a.id, a.username, a.nickname, a.signature, a.avatar, a.closed_at_ms <> 0,
        b.id, b.username, b.nickname, b.signature, b.avatar, b.closed_at_ms <> 0
     FROM friend_requests r JOIN users a ON a.id = r.from_user JOIN users b ON b.id = r.to_user";

fn request_row(r: &Row<'_>) -> rusqlite::Result<FriendRequestRecord> {
    Ok(FriendRequestRecord {
        id: get_u64(r, 0)?,
        message: r.get(1)?,
        created_at_ms: r.get(2)?,
        from: public_row(r, 3)?,
        to: public_row(r, 9)?,
    })
}

fn request_by_id(c: &Connection, id: u64) -> Result<Option<FriendRequestRecord>, StorageError> {
    Ok(
        c.prepare_cached(&format!("{REQUEST_SELECT} WHERE r.id = ?1"))?
            .query_row([Uint(id)], request_row)
            .optional()?,
    )
}

/// `user`'s pending friend requests: (received, sent), oldest first.
///
/// # Errors
/// Database errors.
pub fn friend_requests(
    c: &Connection,
    user: UserId,
) -> Result<(Vec<FriendRequestRecord>, Vec<FriendRequestRecord>), StorageError> {
    let incoming = c
        .prepare_cached(&format!(
            "{REQUEST_SELECT} WHERE r.to_user = ?1 AND r.status = 0 ORDER BY r.id"
        ))?
        .query_map([Uint(user)], request_row)?
        .collect::<Result<_, _>>()?;
    let outgoing = c
        .prepare_cached(&format!(
            "{REQUEST_SELECT} WHERE r.from_user = ?1 AND r.status = 0 ORDER BY r.id"
        ))?
        .query_map([Uint(user)], request_row)?
        .collect::<Result<_, _>>()?;
    Ok((incoming, outgoing))
}

fn set_status(c: &Connection, request: u64, status: i64, now: i64) -> Result<(), StorageError> {
    c.prepare_cached("UPDATE friend_requests SET status = ?1, answered_at_ms = ?2 WHERE id = ?3")?
        .execute(params![status, now, Uint(request)])?;
    Ok(())
}

/// `from` asks `to` to be friends. If `to` had already asked `from`, that request is accepted
/// instead. Within `cooldown_ms` of `to` rejecting `from`'s last request, a new one is refused.
/// Run through [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::UnknownUser`], [`StorageError::SelfTarget`],
/// [`StorageError::BlockedByPeer`], [`StorageError::PeerBlocked`],
/// [`StorageError::AlreadyFriends`], [`StorageError::RequestPending`],
/// [`StorageError::CoolingDown`]; database errors.
pub fn send_request(
    c: &Connection,
    from: UserId,
    to: UserId,
    message: &str,
    cooldown_ms: u64,
) -> Result<RequestOutcome, StorageError> {
    if from == to {
        return Err(StorageError::SelfTarget);
    }
    required_user(c, to)?;
    if blocks(c, to, from)? {
        return Err(StorageError::BlockedByPeer);
    }
    if blocks(c, from, to)? {
        return Err(StorageError::PeerBlocked);
    }
    if is_friend(c, from, to)? {
        return Err(StorageError::AlreadyFriends);
    }
    let pending = |a: UserId, b: UserId| -> Result<Option<u64>, StorageError> {
        Ok(c.prepare_cached(
            "SELECT id FROM friend_requests WHERE from_user = ?1 AND to_user = ?2 AND status = 0",
        )?
        .query_row(params![Uint(a), Uint(b)], |r| get_u64(r, 0))
        .optional()?)
    };
    if pending(from, to)?.is_some() {
        return Err(StorageError::RequestPending);
    }
    let now = now_ms();
    if let Some(theirs) = pending(to, from)? {
        set_status(c, theirs, 1, now)?;
        befriend(c, from, to, now)?;
        let request = request_by_id(c, theirs)?.ok_or(StorageError::UnknownRequest)?;
        let friend = friend(c, from, to)?.ok_or(StorageError::NotAFriend)?;
        return Ok(RequestOutcome::Accepted { request, friend });
    }
    let rejected_at: Option<i64> = c
        .prepare_cached(
            "SELECT MAX(answered_at_ms) FROM friend_requests
             WHERE to_user = ?2 AND status = 2 AND from_user = ?1",
        )?
        .query_row(params![Uint(from), Uint(to)], |r| r.get(0))?;
    if let Some(at) = rejected_at {
        let until = at.saturating_add(i64::try_from(cooldown_ms).unwrap_or(i64::MAX));
        if until > now {
            return Err(StorageError::CoolingDown {
                retry_after_ms: (until - now).unsigned_abs(),
            });
        }
    }
    c.prepare_cached(
        "INSERT INTO friend_requests(from_user, to_user, message, status, created_at_ms)
         VALUES (?1, ?2, ?3, 0, ?4)",
    )?
    .execute(params![Uint(from), Uint(to), message, now])?;
    let id = last_id(c)?;
    Ok(RequestOutcome::Sent(
        request_by_id(c, id)?.ok_or(StorageError::UnknownRequest)?,
    ))
}

/// Deletes friend requests answered (accepted, rejected, withdrawn) more than `retention_ms`
/// ago, but keeps a rejection while it still holds back a new request (`cooldown_ms`). Returns
/// how many were deleted. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn prune_requests(
    c: &Connection,
    retention_ms: u64,
    cooldown_ms: u64,
) -> Result<usize, StorageError> {
    let now = now_ms();
    let ago = |ms: u64| now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX));
    let answered_before = ago(retention_ms);
    let rejected_before = answered_before.min(ago(cooldown_ms));
    Ok(c.prepare_cached(
        "DELETE FROM friend_requests
         WHERE status <> 0 AND answered_at_ms < ?1 AND (status <> 2 OR answered_at_ms < ?2)",
    )?
    .execute(params![answered_before, rejected_before])?)
}

/// `user` accepts or rejects the pending request `request` addressed to them. Run through
/// [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::UnknownRequest`] when there is no such pending request to `user`;
/// database errors.
pub fn respond_request(
    c: &Connection,
    user: UserId,
    request: u64,
    accept: bool,
) -> Result<Responded, StorageError> {
    let found: Option<u64> = c
        .prepare_cached(
            "SELECT from_user FROM friend_requests WHERE id = ?1 AND to_user = ?2 AND status = 0",
        )?
        .query_row(params![Uint(request), Uint(user)], |r| get_u64(r, 0))
        .optional()?;
    let Some(from) = found else {
        return Err(StorageError::UnknownRequest);
    };
    let now = now_ms();
    set_status(c, request, if accept { 1 } else { 2 }, now)?;
    let friend = if accept {
        befriend(c, from, user, now)?;
        friend(c, user, from)?
    } else {
        None
    };
    Ok(Responded {
        request: request_by_id(c, request)?.ok_or(StorageError::UnknownRequest)?,
        accepted: accept,
        friend,
    })
}
