//! Closed accounts. Closing marks the user (`users.closed_at_ms`), turns two-factor login off
//! and releases what only the user held: the avatar, the stickers and unfinished uploads
//! (the reference-count triggers of [`crate::blobs`] leave a file nothing else uses to the
//! sweep; a file a message still carries stays for its readers). The rows stay: messages
//! keep their sender, friends see the user as closed. After the retention period
//! [`release_usernames`] renames the user to `closed#<id>` (a name no registration can take)
//! and deletes the sessions, so the name is free again.

use rusqlite::{params, Connection};

use crate::int::{get_u64, Uint};
use crate::{now_ms, StorageError, UserId};

/// Prefix of a released username; `#` is not allowed in usernames.
pub const RELEASED_PREFIX: &str = "closed#";

/// Closes `user`'s account; returns the user's friends (to tell them), or `None` when it was
/// closed already. The sessions stay until the name is released, so a resume is refused
/// with a clear reason rather than as an unknown token.
///
/// # Errors
/// Database errors.
pub fn close(c: &Connection, user: UserId) -> Result<Option<Vec<UserId>>, StorageError> {
    let n = c.execute(
        "UPDATE users SET closed_at_ms = ?2, avatar = '' WHERE id = ?1 AND closed_at_ms = 0",
        params![Uint(user), now_ms().max(1)],
    )?;
    if n == 0 {
        return Ok(None);
    }
    crate::twofactor::disable(c, user)?;
    c.execute("DELETE FROM stickers WHERE user_id = ?1", [Uint(user)])?;
    c.execute("DELETE FROM uploads WHERE owner = ?1", [Uint(user)])?;
    let friends = c
        .prepare_cached("SELECT friend_id FROM friends WHERE user_id = ?1")?
        .query_map([Uint(user)], |r| get_u64(r, 0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(friends))
}

/// The ids of every closed account (the server keeps them in memory).
///
/// # Errors
/// Database errors.
pub fn closed_users(c: &Connection) -> Result<Vec<UserId>, StorageError> {
    Ok(
        c.prepare_cached("SELECT id FROM users WHERE closed_at_ms > 0")?
            .query_map([], |r| get_u64(r, 0))?
            .collect::<Result<_, _>>()?,
    )
}

/// Frees the usernames of accounts closed at least `retention_ms` ago (at most `limit` of
/// them): each is renamed `closed#<id>` and its sessions are deleted. Returns how many.
///
/// # Errors
/// Database errors.
pub fn release_usernames(
    c: &Connection,
    retention_ms: u64,
    limit: usize,
) -> Result<usize, StorageError> {
    let cutoff = now_ms().saturating_sub(i64::try_from(retention_ms).unwrap_or(i64::MAX));
    let ids: Vec<UserId> = c
        .prepare_cached(
            "SELECT id FROM users WHERE closed_at_ms > 0 AND closed_at_ms <= ?1
               AND substr(username, 1, 7) <> 'closed#' LIMIT ?2",
        )?
        .query_map(params![cutoff, Uint::from_usize(limit)], |r| get_u64(r, 0))?
        .collect::<Result<_, _>>()?;
    for &id in &ids {
        let name = format!("{RELEASED_PREFIX}{id}");
        c.execute(
            "UPDATE users SET username = ?2, username_key = ?3 WHERE id = ?1",
            params![Uint(id), name, crate::text::search_key(&name)],
        )?;
        c.execute("DELETE FROM sessions WHERE user_id = ?1", [Uint(id)])?;
    }
    Ok(ids.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::account::{insert_user, user_by_id, user_by_name};

    #[test]
    fn close_then_release_the_name() {
        let c = crate::schema::migrated_in_memory();
        let alice = insert_user(&c, "alice", "Alice", b"s", b"h").unwrap().id;
        let bob = insert_user(&c, "bob", "Bob", b"s", b"h").unwrap().id;
        c.execute(
            "INSERT INTO friends(user_id, friend_id, since_ms) VALUES (?1, ?2, 0), (?2, ?1, 0)",
            params![Uint(alice), Uint(bob)],
        )
        .unwrap();
        assert_eq!(close(&c, alice).unwrap(), Some(vec![bob]));
        assert_eq!(close(&c, alice).unwrap(), None, "closed once");
        assert_eq!(closed_users(&c).unwrap(), vec![alice]);
        let a = user_by_id(&c, alice).unwrap().unwrap();
        assert!(a.closed);
        assert!(!user_by_id(&c, bob).unwrap().unwrap().closed);
        // Not yet past the retention period.
        assert_eq!(release_usernames(&c, 3_600_000, 10).unwrap(), 0);
        assert!(user_by_name(&c, "alice").unwrap().is_some());
        assert_eq!(release_usernames(&c, 0, 10).unwrap(), 1);
        assert_eq!(release_usernames(&c, 0, 10).unwrap(), 0, "released once");
        assert!(user_by_name(&c, "alice").unwrap().is_none());
        let renamed = user_by_id(&c, alice).unwrap().unwrap();
        assert_eq!(renamed.username, format!("closed#{alice}"));
        let again = insert_user(&c, "alice", "Alice 2", b"s", b"h").unwrap().id;
        assert_ne!(again, alice);
    }

    #[test]
    fn closing_releases_the_avatar_stickers_and_uploads() {
        use crate::blobs::{add_sticker, begin_upload, finish_upload, NewBlob};
        let c = crate::schema::migrated_in_memory();
        let alice = insert_user(&c, "alice", "Alice", b"s", b"h").unwrap().id;
        let stored = |seed: u8| {
            let up = begin_upload(&c, alice, &[seed; 32], 10, "f", "", 0, 0).unwrap();
            let b = NewBlob {
                sha256: vec![seed; 32],
                size: 10,
                ..NewBlob::default()
            };
            finish_upload(&c, alice, up.id, &b, 0).unwrap().file.id
        };
        let (avatar, sticker) = (stored(1), stored(2));
        c.execute(
            "UPDATE users SET avatar = ?2 WHERE id = ?1",
            params![Uint(alice), avatar.to_string()],
        )
        .unwrap();
        add_sticker(&c, alice, sticker, 10, 0).unwrap();
        begin_upload(&c, alice, &[3; 32], 10, "unfinished", "", 0, 0).unwrap();
        let refs = |id: u64| -> i64 {
            c.query_row("SELECT refs FROM files WHERE id = ?1", [Uint(id)], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!((refs(avatar), refs(sticker)), (1, 1));
        close(&c, alice).unwrap();
        // Unused now: the sweep deletes them after the grace period.
        assert_eq!((refs(avatar), refs(sticker)), (0, 0));
        let uploads: i64 = c
            .query_row("SELECT count(*) FROM uploads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(uploads, 0);
        assert_eq!(user_by_id(&c, alice).unwrap().unwrap().avatar, "");
    }
}
