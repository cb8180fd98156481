//! System notifications: stored once per recipient, or once for everyone (`recipient` NULL,
//! seen by the users who existed when it was posted); read state is a per-user cursor plus
//! marks above it, so a notice to everyone writes one row. Writes run through
//! [`crate::Writer::call`].

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::{now_ms, StorageError, UserId};

/// One notification as its recipient sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Time-ordered id.
    pub id: u64,
    /// Short heading; may be empty.
    pub title: String,
    /// The text.
    pub body: String,
    /// 0: the system or an admin; else the user named by the HTTP API.
    pub from: UserId,
    /// When it was posted (unix ms).
    pub created_at_ms: i64,
    /// Read by the recipient.
    pub read: bool,
}

/// Who a notice is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// These users (one row each).
    Users(Vec<UserId>),
    /// Every user that exists now (one row).
    Everyone,
}

/// Stores a notice; returns it (unread; its id is the first row's) and, for
/// [`Audience::Users`], each recipient's own row id. Unknown users are refused as a whole.
///
/// # Errors
/// [`StorageError::UnknownUser`], database errors.
pub fn post(
    c: &Connection,
    audience: &Audience,
    from: UserId,
    title: &str,
    body: &str,
) -> Result<(NotificationRecord, Vec<(UserId, u64)>), StorageError> {
    let now = now_ms();
    let mut insert = c.prepare_cached(
        "INSERT INTO notifications(recipient, sender_id, title, body, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut rows = Vec::new();
    let first = match audience {
        Audience::Everyone => {
            insert.execute(params![None::<i64>, Uint(from), title, body, now])?;
            rowid(c)
        }
        Audience::Users(users) => {
            let mut exists = c.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?;
            for &u in users {
                if exists
                    .query_row([Uint(u)], |_| Ok(()))
                    .optional()?
                    .is_none()
                {
                    return Err(StorageError::UnknownUser);
                }
            }
            for &u in users {
                insert.execute(params![Uint(u), Uint(from), title, body, now])?;
                rows.push((u, rowid(c)));
            }
            rows.first().map_or(0, |r| r.1)
        }
    };
    let record = NotificationRecord {
        id: first,
        title: title.to_owned(),
        body: body.to_owned(),
        from,
        created_at_ms: now,
        read: false,
    };
    Ok((record, rows))
}

fn rowid(c: &Connection) -> u64 {
    u64::try_from(c.last_insert_rowid()).unwrap_or(0)
}

/// The notifications `user` sees: their own rows, and notices to everyone posted since
/// they registered.
const VISIBLE: &str = "(n.recipient = ?1 OR (n.recipient IS NULL AND n.created_at_ms >= ?2))";
/// Whether the row is read for `user` (?1), whose cursor is ?3.
const READ: &str = "(n.id <= ?3 OR EXISTS (SELECT 1 FROM notification_marks k
                     WHERE k.user_id = ?1 AND k.notification_id = n.id))";

/// The user's registration time and read cursor.
fn reader(c: &Connection, user: UserId) -> Result<(i64, i64), StorageError> {
    let created: i64 = c
        .prepare_cached("SELECT created_at_ms FROM users WHERE id = ?1")?
        .query_row([Uint(user)], |r| r.get(0))
        .optional()?
        .ok_or(StorageError::UnknownUser)?;
    let cursor: i64 = c
        .prepare_cached("SELECT read_up_to FROM notification_cursors WHERE user_id = ?1")?
        .query_row([Uint(user)], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok((created, cursor))
}

/// Up to `limit` of `user`'s notifications with ids above `after_id`, oldest first, whether
/// more follow, and how many are unread in all.
///
/// # Errors
/// [`StorageError::UnknownUser`], database errors.
pub fn list(
    c: &Connection,
    user: UserId,
    after_id: u64,
    limit: usize,
) -> Result<(Vec<NotificationRecord>, bool, u64), StorageError> {
    let (created, cursor) = reader(c, user)?;
    let mut list = c
        .prepare_cached(&format!(
            "SELECT n.id, n.title, n.body, n.sender_id, n.created_at_ms, {READ}
             FROM notifications n WHERE {VISIBLE} AND n.id > ?4 ORDER BY n.id LIMIT ?5"
        ))?
        .query_map(
            params![
                Uint(user),
                created,
                cursor,
                Uint(after_id),
                Uint::from_usize(limit + 1)
            ],
            |r| {
                Ok(NotificationRecord {
                    id: get_u64(r, 0)?,
                    title: r.get(1)?,
                    body: r.get(2)?,
                    from: get_u64(r, 3)?,
                    created_at_ms: r.get(4)?,
                    read: r.get(5)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let more = list.len() > limit;
    list.truncate(limit);
    Ok((list, more, unread_of(c, user, created, cursor)?))
}

fn unread_of(c: &Connection, user: UserId, created: i64, cursor: i64) -> Result<u64, StorageError> {
    let n: i64 = c
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM notifications n WHERE {VISIBLE} AND n.id > ?3 AND NOT {READ}"
        ))?
        .query_row(params![Uint(user), created, cursor], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// `user`'s unread notifications.
///
/// # Errors
/// [`StorageError::UnknownUser`], database errors.
pub fn unread(c: &Connection, user: UserId) -> Result<u64, StorageError> {
    let (created, cursor) = reader(c, user)?;
    unread_of(c, user, created, cursor)
}

/// Marks notification `id` of `user` read, or with `id` 0 every one; returns how many were
/// unread and now are read, and how many unread are left.
///
/// # Errors
/// [`StorageError::UnknownMessage`] for an id the user does not see; database errors.
pub fn mark_read(c: &Connection, user: UserId, id: u64) -> Result<(u64, u64), StorageError> {
    let (created, cursor) = reader(c, user)?;
    let before = unread_of(c, user, created, cursor)?;
    if id == 0 {
        let newest: Option<i64> = c
            .prepare_cached(&format!(
                "SELECT MAX(n.id) FROM notifications n WHERE {VISIBLE}"
            ))?
            .query_row(params![Uint(user), created], |r| r.get(0))?;
        let newest = newest.unwrap_or(0).max(cursor);
        c.prepare_cached(
            "INSERT INTO notification_cursors(user_id, read_up_to) VALUES (?1, ?2)
             ON CONFLICT(user_id) DO UPDATE SET read_up_to = excluded.read_up_to",
        )?
        .execute(params![Uint(user), newest])?;
        c.prepare_cached(
            "DELETE FROM notification_marks WHERE user_id = ?1 AND notification_id <= ?2",
        )?
        .execute(params![Uint(user), newest])?;
        return Ok((before, 0));
    }
    let seen = c
        .prepare_cached(&format!(
            "SELECT 1 FROM notifications n WHERE n.id = ?3 AND {VISIBLE}"
        ))?
        .query_row(params![Uint(user), created, Uint(id)], |_| Ok(()))
        .optional()?;
    if seen.is_none() {
        return Err(StorageError::UnknownMessage);
    }
    if i64::try_from(id).unwrap_or(i64::MAX) > cursor {
        c.prepare_cached(
            "INSERT OR IGNORE INTO notification_marks(user_id, notification_id) VALUES (?1, ?2)",
        )?
        .execute(params![Uint(user), Uint(id)])?;
    }
    let after = unread_of(c, user, created, cursor)?;
    Ok((before - after.min(before), after))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::account::insert_user;

    #[test]
    fn one_row_for_everyone_with_read_state_per_user() {
        let c = crate::schema::migrated_in_memory();
        let a = insert_user(&c, "alice", "Alice", b"s", b"h").unwrap().id;
        let b = insert_user(&c, "bob", "Bob", b"s", b"h").unwrap().id;
        let (all, _) = post(&c, &Audience::Everyone, 0, "t", "hello all").unwrap();
        post(&c, &Audience::Users(vec![a]), 0, "", "just alice").unwrap();
        let rows: i64 = c
            .query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(list(&c, a, 0, 10).unwrap().2, 2);
        assert_eq!(list(&c, b, 0, 10).unwrap().2, 1);
        assert_eq!(mark_read(&c, a, all.id).unwrap(), (1, 1));
        assert_eq!(mark_read(&c, a, all.id).unwrap(), (0, 1));
        let (page, more, left) = list(&c, a, 0, 1).unwrap();
        assert!(page[0].read && more && left == 1);
        assert_eq!(unread(&c, b).unwrap(), 1);
        assert_eq!(mark_read(&c, b, 0).unwrap(), (1, 0));
        assert!(matches!(
            mark_read(&c, b, all.id + 1),
            Err(StorageError::UnknownMessage)
        ));
        assert!(matches!(
            post(&c, &Audience::Users(vec![a, 999]), 0, "", "x"),
            Err(StorageError::UnknownUser)
        ));
    }
}
