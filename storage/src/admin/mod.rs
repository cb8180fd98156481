//! Admin operations on accounts (disable, enable, approve, reset a password, list) and the
//! address bans. Migration 20 (with the notifications' tables) is in [`migration`].
//! Writes run through [`crate::Writer::call`].

pub(crate) mod migration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::account::{user_row, UserRecord, USER_COLUMNS};
use crate::int::{get_u64, Uint};
use crate::{now_ms, StorageError, UserId};

/// A change of an account's state by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// No login or resume until enabled; the caller ends the user's sessions.
    Disable,
    /// Undoes [`AccountChange::Disable`].
    Enable,
    /// Lets a pending account log in.
    Approve,
}

/// Applies `change` to `user`; returns the account as it is now.
///
/// # Errors
/// [`StorageError::UnknownUser`], database errors.
pub fn change_account(
    c: &Connection,
    user: UserId,
    change: AccountChange,
) -> Result<UserRecord, StorageError> {
    let sql = match change {
        AccountChange::Disable => "UPDATE users SET disabled = 1 WHERE id = ?1",
        AccountChange::Enable => "UPDATE users SET disabled = 0 WHERE id = ?1",
        AccountChange::Approve => "UPDATE users SET pending = 0 WHERE id = ?1",
    };
    if c.prepare_cached(sql)?.execute([Uint(user)])? == 0 {
        return Err(StorageError::UnknownUser);
    }
    user_by_id(c, user)
}

/// Sets `user`'s password hash and deletes all of the user's sessions; returns how many.
///
/// # Errors
/// [`StorageError::UnknownUser`], database errors.
pub fn reset_password(
    c: &Connection,
    user: UserId,
    salt: &[u8],
    password_hash: &[u8],
) -> Result<usize, StorageError> {
    let changed = c
        .prepare_cached("UPDATE users SET salt = ?2, password_hash = ?3 WHERE id = ?1")?
        .execute(params![Uint(user), salt, password_hash])?;
    if changed == 0 {
        return Err(StorageError::UnknownUser);
    }
    Ok(c.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute([Uint(user)])?)
}

fn user_by_id(c: &Connection, user: UserId) -> Result<UserRecord, StorageError> {
    c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([Uint(user)], user_row)
        .optional()?
        .ok_or(StorageError::UnknownUser)
}

/// How many users there are.
///
/// # Errors
/// Database errors.
pub fn count_users(c: &Connection) -> Result<u64, StorageError> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM users")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The ids of the disabled users.
///
/// # Errors
/// Database errors.
pub fn disabled_users(c: &Connection) -> Result<Vec<UserId>, StorageError> {
    Ok(c.prepare_cached("SELECT id FROM users WHERE disabled = 1")?
        .query_map([], |r| get_u64(r, 0))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// A page of users whose username or nickname contains `query` (case-insensitively on the
/// normalized names; empty: everyone), by id, and how many match in all.
///
/// # Errors
/// Database errors.
pub fn list_users(
    c: &Connection,
    query: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<UserRecord>, u64), StorageError> {
    let key = crate::text::search_key(query);
    let pattern = format!(
        "%{}%",
        key.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let filter =
        "(?1 = '' OR username_key LIKE ?2 ESCAPE '\\' OR nickname_key LIKE ?2 ESCAPE '\\')";
    let total: i64 = c
        .prepare_cached(&format!("SELECT COUNT(*) FROM users WHERE {filter}"))?
        .query_row(params![key, pattern], |r| r.get(0))?;
    let users = c
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY id LIMIT ?3 OFFSET ?4"
        ))?
        .query_map(
            params![
                key,
                pattern,
                Uint::from_usize(limit),
                Uint::from_usize(offset)
            ],
            user_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((users, u64::try_from(total).unwrap_or(0)))
}

/// The ids of the members of group `group`, or `None` when there is no such live group.
///
/// # Errors
/// Database errors.
pub fn group_member_ids(c: &Connection, group: u64) -> Result<Option<Vec<UserId>>, StorageError> {
    let live = c
        .prepare_cached(
            "SELECT 1 FROM groups WHERE conversation_id = ?1 AND dismissed_at_ms IS NULL",
        )?
        .query_row([Uint(group)], |_| Ok(()))
        .optional()?;
    if live.is_none() {
        return Ok(None);
    }
    let ids = c
        .prepare_cached("SELECT user_id FROM members WHERE conversation_id = ?1 ORDER BY user_id")?
        .query_map([Uint(group)], |r| get_u64(r, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ids))
}

/// A banned address range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    /// The range as an admin gave it, normalized by the server (`10.0.0.0/8`, `::1/128`).
    pub cidr: String,
    /// Why, for the admin's list.
    pub reason: String,
    /// When it was added (unix ms).
    pub created_at_ms: i64,
}

/// Adds (or replaces the reason of) a ban.
///
/// # Errors
/// Database errors.
pub fn add_ban(c: &Connection, cidr: &str, reason: &str) -> Result<BanRecord, StorageError> {
    let now = now_ms();
    c.prepare_cached(
        "INSERT INTO address_bans(cidr, reason, created_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(cidr) DO UPDATE SET reason = excluded.reason",
    )?
    .execute(params![cidr, reason, now])?;
    Ok(
        c.prepare_cached("SELECT cidr, reason, created_at_ms FROM address_bans WHERE cidr = ?1")?
            .query_row([cidr], ban_row)?,
    )
}

/// Removes a ban; returns whether there was one.
///
/// # Errors
/// Database errors.
pub fn remove_ban(c: &Connection, cidr: &str) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("DELETE FROM address_bans WHERE cidr = ?1")?
            .execute([cidr])?
            > 0,
    )
}

/// Every ban, oldest first.
///
/// # Errors
/// Database errors.
pub fn list_bans(c: &Connection) -> Result<Vec<BanRecord>, StorageError> {
    Ok(c.prepare_cached(
        "SELECT cidr, reason, created_at_ms FROM address_bans ORDER BY created_at_ms, cidr",
    )?
    .query_map([], ban_row)?
    .collect::<Result<Vec<_>, _>>()?)
}

fn ban_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BanRecord> {
    Ok(BanRecord {
        cidr: r.get(0)?,
        reason: r.get(1)?,
        created_at_ms: r.get(2)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::account::insert_user;

    #[test]
    fn disable_approve_and_search() {
        let c = crate::schema::migrated_in_memory();
        let a = insert_user(&c, "alice", "Alice", b"s", b"h").unwrap();
        insert_user(&c, "bob", "Bobby_x", b"s", b"h").unwrap();
        assert!(
            change_account(&c, a.id, AccountChange::Disable)
                .unwrap()
                .disabled
        );
        assert!(
            !change_account(&c, a.id, AccountChange::Enable)
                .unwrap()
                .disabled
        );
        assert!(matches!(
            change_account(&c, 999, AccountChange::Approve),
            Err(StorageError::UnknownUser)
        ));
        assert_eq!(list_users(&c, "", 0, 10).unwrap().1, 2);
        let (found, total) = list_users(&c, "BY_", 0, 10).unwrap();
        assert_eq!((found.len(), total), (1, 1));
        assert_eq!(list_users(&c, "%", 0, 10).unwrap().1, 0);
    }

    #[test]
    fn bans_add_replace_remove() {
        let c = crate::schema::migrated_in_memory();
        add_ban(&c, "10.0.0.0/8", "spam").unwrap();
        assert_eq!(add_ban(&c, "10.0.0.0/8", "abuse").unwrap().reason, "abuse");
        assert_eq!(list_bans(&c).unwrap().len(), 1);
        assert!(remove_ban(&c, "10.0.0.0/8").unwrap());
        assert!(!remove_ban(&c, "10.0.0.0/8").unwrap());
    }
}
