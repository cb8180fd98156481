//! Two-factor login: each user's TOTP secret, whether it is on, the last time step a code was
//! accepted for (so a code works once), and the hashes of the one-time recovery codes. The
//! server computes and checks the codes; a code is spent here, atomically, in the writer's
//! transaction. The schema migration of this module and of [`crate::closing`] is in
//! [`migration`].

pub(crate) mod migration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::Uint;
use crate::{now_ms, StorageError, UserId};

/// A user's TOTP state.
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    /// The shared secret (20 random bytes).
    pub secret: Vec<u8>,
    /// Confirmed with a first code: logins need a second factor.
    pub enabled: bool,
    /// The last time step a code was accepted for; only later steps are accepted.
    pub last_step: i64,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// `user`'s TOTP state, if one was set up.
///
/// # Errors
/// Database errors.
pub fn totp(c: &Connection, user: UserId) -> Result<Option<Totp>, StorageError> {
    Ok(
        c.prepare_cached("SELECT secret, enabled, last_step FROM totp WHERE user_id = ?1")?
            .query_row([Uint(user)], |r| {
                Ok(Totp {
                    secret: r.get(0)?,
                    enabled: r.get(1)?,
                    last_step: r.get(2)?,
                })
            })
            .optional()?,
    )
}

/// Stores a new secret for `user`, waiting for its first code; `false` (nothing changed)
/// while two-factor login is on.
///
/// # Errors
/// Database errors.
pub fn set_up(c: &Connection, user: UserId, secret: &[u8]) -> Result<bool, StorageError> {
    let n = c.execute(
        "INSERT INTO totp(user_id, secret) VALUES (?1, ?2)
         ON CONFLICT(user_id) DO UPDATE SET secret = excluded.secret, last_step = 0
         WHERE enabled = 0",
        params![Uint(user), secret],
    )?;
    Ok(n == 1)
}

/// Turns two-factor login on with a first code of time `step` for the secret `secret` (the
/// one the code was checked against), and stores the recovery codes' hashes in place of any
/// earlier ones; `false` when the secret changed meanwhile or it is on already.
///
/// # Errors
/// Database errors.
pub fn enable(
    c: &Connection,
    user: UserId,
    secret: &[u8],
    step: i64,
    recovery_hashes: &[Vec<u8>],
) -> Result<bool, StorageError> {
    let n = c.execute(
        "UPDATE totp SET enabled = 1, last_step = ?3
         WHERE user_id = ?1 AND secret = ?2 AND enabled = 0",
        params![Uint(user), secret, step],
    )?;
    if n == 0 {
        return Ok(false);
    }
    c.execute("DELETE FROM totp_recovery WHERE user_id = ?1", [Uint(user)])?;
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO totp_recovery(user_id, code_hash) VALUES (?1, ?2)",
    )?;
    for h in recovery_hashes {
        st.execute(params![Uint(user), h])?;
    }
    Ok(true)
}

/// Spends the TOTP code of time `step`: `false` when a code of this or a later step was
/// accepted already (a replay), or two-factor login is off.
///
/// # Errors
/// Database errors.
pub fn spend_step(c: &Connection, user: UserId, step: i64) -> Result<bool, StorageError> {
    let n = c.execute(
        "UPDATE totp SET last_step = ?2 WHERE user_id = ?1 AND enabled = 1 AND last_step < ?2",
        params![Uint(user), step],
    )?;
    Ok(n == 1)
}

/// Spends the recovery code with this hash: `false` when it is unknown or was used.
///
/// # Errors
/// Database errors.
pub fn spend_recovery(c: &Connection, user: UserId, hash: &[u8]) -> Result<bool, StorageError> {
    let n = c.execute(
        "UPDATE totp_recovery SET used_at_ms = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at_ms = 0
           AND EXISTS (SELECT 1 FROM totp WHERE user_id = ?1 AND enabled = 1)",
        params![Uint(user), hash, now_ms().max(1)],
    )?;
    Ok(n == 1)
}

/// Turns two-factor login off for `user`: the secret and the recovery codes are deleted.
///
/// # Errors
/// Database errors.
pub fn disable(c: &Connection, user: UserId) -> Result<(), StorageError> {
    c.execute("DELETE FROM totp WHERE user_id = ?1", [Uint(user)])?;
    c.execute("DELETE FROM totp_recovery WHERE user_id = ?1", [Uint(user)])?;
    Ok(())
}

/// Recovery codes of `user` not used yet.
///
/// # Errors
/// Database errors.
pub fn recovery_left(c: &Connection, user: UserId) -> Result<u32, StorageError> {
    Ok(c.query_row(
        "SELECT count(*) FROM totp_recovery WHERE user_id = ?1 AND used_at_ms = 0",
        [Uint(user)],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn set_up_enable_spend_and_disable() {
        let c = crate::schema::migrated_in_memory();
        let user = crate::account::insert_user(&c, "alice", "Alice", b"s", b"h")
            .unwrap()
            .id;
        assert!(totp(&c, user).unwrap().is_none());
        assert!(set_up(&c, user, b"one").unwrap());
        assert!(set_up(&c, user, b"two").unwrap());
        assert!(
            !crate::account::user_by_id(&c, user)
                .unwrap()
                .unwrap()
                .totp_enabled
        );
        // A code checked against an older secret does not enable.
        assert!(!enable(&c, user, b"one", 10, &[]).unwrap());
        let hashes = vec![vec![1u8; 32], vec![2u8; 32]];
        assert!(enable(&c, user, b"two", 10, &hashes).unwrap());
        assert!(
            crate::account::user_by_id(&c, user)
                .unwrap()
                .unwrap()
                .totp_enabled
        );
        assert!(!set_up(&c, user, b"three").unwrap(), "on: no new secret");
        assert!(
            !spend_step(&c, user, 10).unwrap(),
            "the enabling code is spent"
        );
        assert!(spend_step(&c, user, 11).unwrap());
        assert!(!spend_step(&c, user, 11).unwrap(), "replay");
        assert!(!spend_step(&c, user, 9).unwrap(), "older step");
        assert_eq!(recovery_left(&c, user).unwrap(), 2);
        assert!(spend_recovery(&c, user, &[1u8; 32]).unwrap());
        assert!(!spend_recovery(&c, user, &[1u8; 32]).unwrap(), "used once");
        assert!(!spend_recovery(&c, user, &[3u8; 32]).unwrap(), "unknown");
        assert_eq!(recovery_left(&c, user).unwrap(), 1);
        disable(&c, user).unwrap();
        assert!(totp(&c, user).unwrap().is_none());
        assert!(!spend_recovery(&c, user, &[2u8; 32]).unwrap());
    }
}
