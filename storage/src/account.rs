//! Users and session tokens. Reads take any connection; writes run inside the writer's
//! transaction through [`crate::Writer::call`].

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::int::{get_u64, last_id, Uint};
use crate::{now_ms, StorageError, UserId};

/// A stored account. Its `Debug` leaves out the salt and password hash so logs never carry them.
#[derive(Clone)]
pub struct UserRecord {
    /// User id.
    pub id: UserId,
    /// Unique username (case-insensitive).
    pub username: String,
    /// Display name.
    pub nickname: String,
    /// Per-user PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2-HMAC-SHA256 of the password.
    pub password_hash: Vec<u8>,
    /// Registration time (unix ms).
    pub created_at_ms: i64,
    /// Free-text status line.
    pub signature: String,
    /// Avatar file id; empty = none.
    pub avatar: String,
    /// Phone number (private to the user).
    pub phone: String,
    /// E-mail address (private to the user).
    pub email: String,
    /// Disabled by an admin: no login, no resume.
    pub disabled: bool,
    /// Registered in approval mode and not approved yet: no login.
    pub pending: bool,
    /// `email` was verified with a code ([`crate::verified`]).
    pub email_verified: bool,
    /// `phone` was verified with a code ([`crate::verified`]).
    pub phone_verified: bool,
    /// The user closed the account ([`crate::closing`]): no login, no resume.
    pub closed: bool,
    /// Two-factor login (TOTP) is on ([`crate::twofactor`]).
    pub totp_enabled: bool,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("nickname", &self.nickname)
            .field("created_at_ms", &self.created_at_ms)
            .field("signature", &self.signature)
            .field("avatar", &self.avatar)
            .field("phone", &self.phone)
            .field("email", &self.email)
            .field("disabled", &self.disabled)
            .field("pending", &self.pending)
            .field("email_verified", &self.email_verified)
            .field("phone_verified", &self.phone_verified)
            .field("closed", &self.closed)
            .field("totp_enabled", &self.totp_enabled)
            .finish_non_exhaustive()
    }
}

/// A live session token, stored by its hash.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Names the session in lists and revocations (not a secret).
    pub id: u64,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Owner of the token.
    pub user_id: UserId,
    /// Device name given at login.
    pub device: String,
    /// When the token was issued (unix ms).
    pub created_at_ms: i64,
    /// Its last login, resume or recorded use (unix ms).
    pub last_seen_ms: i64,
    /// Remote address of its last login or resume.
    pub address: String,
    /// When it expires unless used again (unix ms).
    pub expires_at_ms: i64,
}

/// What [`resume_session`] found.
#[derive(Debug, Clone)]
pub enum Resumed {
    /// The token is live; its use was recorded and its expiry slid.
    Live(SessionRecord),
    /// The token had expired; it is deleted now.
    Expired,
    /// No such token (never issued, revoked, or expired and deleted).
    Unknown,
}

/// Expired sessions deleted per new login, so the purge stays small.
const PURGE_BATCH: i64 = 64;

const SESSION_COLUMNS: &str =
    "id, token_hash, user_id, device, created_at_ms, last_seen_ms, address, expires_at_ms";

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: get_u64(r, 0)?,
        token_hash: r.get(1)?,
        user_id: get_u64(r, 2)?,
        device: r.get(3)?,
        created_at_ms: r.get(4)?,
        last_seen_ms: r.get(5)?,
        address: r.get(6)?,
        expires_at_ms: r.get(7)?,
    })
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, nickname, salt, password_hash, created_at_ms, signature, avatar, phone, email,
     disabled, pending, email_verified, phone_verified, closed_at_ms <> 0,
     EXISTS (SELECT 1 FROM totp WHERE totp.user_id = users.id AND totp.enabled = 1)";

pub(crate) fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: get_u64(r, 0)?,
        username: r.get(1)?,
        nickname: r.get(2)?,
        salt: r.get(3)?,
        password_hash: r.get(4)?,
        created_at_ms: r.get(5)?,
        signature: r.get(6)?,
        avatar: r.get(7)?,
        phone: r.get(8)?,
        email: r.get(9)?,
        disabled: r.get(10)?,
        pending: r.get(11)?,
        email_verified: r.get(12)?,
        phone_verified: r.get(13)?,
        closed: r.get(14)?,
        totp_enabled: r.get(15)?,
    })
}

pub(crate) fn user_by_name(
    c: &Connection,
    username: &str,
) -> Result<Option<UserRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
    ))?;
    Ok(st.query_row([username], user_row).optional()?)
}

pub(crate) fn user_by_id(c: &Connection, id: UserId) -> Result<Option<UserRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?;
    Ok(st.query_row([Uint(id)], user_row).optional()?)
}

pub(crate) fn session(
    c: &Connection,
    token_hash: &[u8],
) -> Result<Option<SessionRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"
    ))?;
    Ok(st.query_row([token_hash], session_row).optional()?)
}

/// The user's sessions that have not expired, most recently seen first.
///
/// # Errors
/// Database errors.
pub fn list_sessions(c: &Connection, user: UserId) -> Result<Vec<SessionRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 AND expires_at_ms > ?2
         ORDER BY last_seen_ms DESC, id DESC"
    ))?;
    let rows = st.query_map(params![Uint(user), now_ms()], session_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts a new user; to be run through [`crate::Writer::call`].
///
/// # Errors
/// [`StorageError::UsernameTaken`] when the name exists (case-insensitively).
pub fn insert_user(
    c: &Connection,
    username: &str,
    nickname: &str,
    salt: &[u8],
    password_hash: &[u8],
) -> Result<UserRecord, StorageError> {
    insert_user_with(c, username, nickname, (salt, password_hash), false)
}

/// [`insert_user`], `pending` an admin's approval (registration approval mode).
///
/// # Errors
/// [`StorageError::UsernameTaken`] when the name exists (case-insensitively).
pub fn insert_user_with(
    c: &Connection,
    username: &str,
    nickname: &str,
    (salt, password_hash): (&[u8], &[u8]),
    pending: bool,
) -> Result<UserRecord, StorageError> {
    let now = now_ms();
    let res = c.execute(
        "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms,
                           username_key, nickname_key, pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            username,
            nickname,
            salt,
            password_hash,
            now,
            crate::text::search_key(username),
            crate::text::search_key(nickname),
            pending
        ],
    );
    match res {
        Ok(_) => Ok(UserRecord {
            id: last_id(c)?,
            username: username.to_owned(),
            nickname: nickname.to_owned(),
            salt: salt.to_vec(),
            password_hash: password_hash.to_vec(),
            created_at_ms: now,
            signature: String::new(),
            avatar: String::new(),
            phone: String::new(),
            email: String::new(),
            disabled: false,
            pending,
            email_verified: false,
            phone_verified: false,
            closed: false,
            totp_enabled: false,
        }),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StorageError::UsernameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Stores a new session token hash that lives `ttl_ms` past its last use, and deletes a few
/// expired sessions; to be run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn insert_session(
    c: &Connection,
    token_hash: &[u8],
    user_id: UserId,
    device: &str,
    address: &str,
    ttl_ms: i64,
) -> Result<SessionRecord, StorageError> {
    let now = now_ms();
    purge_expired_sessions(c, PURGE_BATCH)?;
    let expires = now.saturating_add(ttl_ms);
    c.prepare_cached(
        "INSERT INTO sessions(token_hash, user_id, device, created_at_ms, last_seen_ms,
                              address, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
    )?
    .execute(params![
        token_hash,
        Uint(user_id),
        device,
        now,
        address,
        expires
    ])?;
    Ok(SessionRecord {
        id: last_id(c)?,
        token_hash: token_hash.to_vec(),
        user_id,
        device: device.to_owned(),
        created_at_ms: now,
        last_seen_ms: now,
        address: address.to_owned(),
        expires_at_ms: expires,
    })
}

/// Checks a token on resume: a live one records the use (time, address) and lives `ttl_ms`
/// from now; an expired one is deleted. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn resume_session(
    c: &Connection,
    token_hash: &[u8],
    address: &str,
    ttl_ms: i64,
) -> Result<Resumed, StorageError> {
    let Some(mut s) = session(c, token_hash)? else {
        return Ok(Resumed::Unknown);
    };
    let now = now_ms();
    if s.expires_at_ms <= now {
        c.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
            .execute([Uint(s.id)])?;
        return Ok(Resumed::Expired);
    }
    s.last_seen_ms = now;
    s.expires_at_ms = now.saturating_add(ttl_ms);
    s.address = address.to_owned();
    c.prepare_cached(
        "UPDATE sessions SET last_seen_ms = ?1, address = ?2, expires_at_ms = ?3 WHERE id = ?4",
    )?
    .execute(params![now, address, s.expires_at_ms, Uint(s.id)])?;
    Ok(Resumed::Live(s))
}

/// Deletes up to `limit` expired sessions; returns how many. Run through
/// [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn purge_expired_sessions(c: &Connection, limit: i64) -> Result<usize, StorageError> {
    Ok(c.prepare_cached(
        "DELETE FROM sessions WHERE id IN
            (SELECT id FROM sessions WHERE expires_at_ms <= ?1 LIMIT ?2)",
    )?
    .execute(params![now_ms(), limit])?)
}

/// Every session that has not expired: (id, user, token hash).
///
/// # Errors
/// Database errors.
pub fn live_sessions(c: &Connection) -> Result<Vec<(u64, UserId, Vec<u8>)>, StorageError> {
    let mut st =
        c.prepare_cached("SELECT id, user_id, token_hash FROM sessions WHERE expires_at_ms > ?1")?;
    let rows = st.query_map([now_ms()], |r| {
        Ok((get_u64(r, 0)?, get_u64(r, 1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a use of the sessions `ids`: they were last seen now and live `ttl_ms` from now.
/// Expired or revoked ones stay as they are. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn touch_sessions(c: &Connection, ids: &[u64], ttl_ms: i64) -> Result<(), StorageError> {
    let now = now_ms();
    let mut st = c.prepare_cached(
        "UPDATE sessions SET last_seen_ms = ?1, expires_at_ms = ?2
         WHERE id = ?3 AND expires_at_ms > ?1",
    )?;
    for &id in ids {
        st.execute(params![now, now.saturating_add(ttl_ms), Uint(id)])?;
    }
    Ok(())
}

/// Revokes the user's session `id`; returns its token hash, or `None` when the user has no
/// such session (another user's id included). Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn revoke_session(
    c: &Connection,
    user: UserId,
    id: u64,
) -> Result<Option<Vec<u8>>, StorageError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    Ok(c.prepare_cached(
        "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2 RETURNING token_hash",
    )?
    .query_row(params![id, Uint(user)], |r| r.get(0))
    .optional()?)
}

/// Revokes a session token; returns whether it existed. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn delete_session(c: &Connection, token_hash: &[u8]) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
            .execute([token_hash])?
            > 0,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_record_debug_hides_secrets() {
        let u = super::UserRecord {
            id: 7,
            username: "alice".into(),
            nickname: "Alice".into(),
            salt: vec![0xAB; 16],
            password_hash: vec![0xCD; 32],
            created_at_ms: 1,
            signature: String::new(),
            avatar: String::new(),
            phone: String::new(),
            email: String::new(),
            disabled: false,
            pending: false,
            email_verified: false,
            phone_verified: false,
            closed: false,
            totp_enabled: false,
        };
        let text = format!("{u:?}");
        assert!(text.contains("alice"));
        assert!(!text.contains("salt") && !text.contains("password_hash"));
        assert!(!text.contains("171") && !text.contains("205"));
    }

    use super::*;
    use crate::schema::migrated_in_memory;

    const DAY: i64 = 86_400_000;

    fn user(c: &Connection, name: &str) -> UserId {
        insert_user(c, name, name, b"s", b"h").unwrap().id
    }

    #[test]
    fn sessions_list_slide_expire_and_revoke_per_user() {
        let c = migrated_in_memory();
        let (alice, bob) = (user(&c, "alice"), user(&c, "bob"));
        let phone = insert_session(&c, b"phone", alice, "phone", "10.0.0.1:1", DAY).unwrap();
        let laptop = insert_session(&c, b"laptop", alice, "laptop", "10.0.0.2:2", DAY).unwrap();
        let bobs = insert_session(&c, b"bob", bob, "pc", "10.0.0.3:3", DAY).unwrap();
        assert!(phone.id < laptop.id);
        assert!(phone.expires_at_ms >= phone.created_at_ms + DAY);
        let ids: Vec<u64> = list_sessions(&c, alice)
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, [laptop.id, phone.id], "newest first, only alice's");

        // A resume records the address and slides the expiry.
        c.execute(
            "UPDATE sessions SET expires_at_ms = expires_at_ms - 1000",
            [],
        )
        .unwrap();
        let Resumed::Live(r) = resume_session(&c, b"phone", "10.0.0.9:9", 2 * DAY).unwrap() else {
            panic!("phone's token is live");
        };
        assert_eq!((r.id, r.address.as_str()), (phone.id, "10.0.0.9:9"));
        assert!(r.expires_at_ms > phone.expires_at_ms);
        assert_eq!(
            session(&c, b"phone").unwrap().unwrap().expires_at_ms,
            r.expires_at_ms
        );

        // Revoking: only one's own ids.
        assert_eq!(revoke_session(&c, alice, bobs.id).unwrap(), None);
        assert_eq!(revoke_session(&c, alice, u64::MAX).unwrap(), None);
        assert_eq!(
            revoke_session(&c, alice, laptop.id).unwrap().as_deref(),
            Some(&b"laptop"[..])
        );
        assert!(matches!(
            resume_session(&c, b"laptop", "x", DAY).unwrap(),
            Resumed::Unknown
        ));

        // A touch records the use and slides the expiry.
        let before = session(&c, b"phone").unwrap().unwrap();
        c.execute(
            "UPDATE sessions SET expires_at_ms = expires_at_ms - 1000",
            [],
        )
        .unwrap();
        touch_sessions(&c, &[before.id], 3 * DAY).unwrap();
        assert!(session(&c, b"phone").unwrap().unwrap().expires_at_ms > before.expires_at_ms);

        // Expiry: refused, deleted, not listed, not revived by a touch.
        c.execute(
            "UPDATE sessions SET expires_at_ms = 1 WHERE token_hash = x'626f62'",
            [],
        )
        .unwrap();
        touch_sessions(&c, &[bobs.id], DAY).unwrap();
        assert!(list_sessions(&c, bob).unwrap().is_empty());
        let live: Vec<u64> = live_sessions(&c).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(live, [phone.id], "bob's expired, laptop revoked");
        assert!(matches!(
            resume_session(&c, b"bob", "x", DAY).unwrap(),
            Resumed::Expired
        ));
        assert!(session(&c, b"bob").unwrap().is_none(), "deleted");
    }

    #[test]
    fn a_new_login_purges_expired_sessions() {
        let c = migrated_in_memory();
        let alice = user(&c, "alice");
        for i in 0..3u8 {
            insert_session(&c, &[i], alice, "d", "a", DAY).unwrap();
        }
        c.execute("UPDATE sessions SET expires_at_ms = 1", [])
            .unwrap();
        insert_session(&c, b"new", alice, "d", "a", DAY).unwrap();
        let count = || -> i64 {
            c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(), 1);
        c.execute("UPDATE sessions SET expires_at_ms = 1", [])
            .unwrap();
        assert_eq!(purge_expired_sessions(&c, 10).unwrap(), 1);
        assert_eq!(count(), 0);
    }
}
