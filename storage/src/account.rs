//! Users and session tokens. Reads take any connection; writes run inside the writer's
//! transaction through [`crate::Writer::call`].

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{now_ms, StorageError, UserId};

/// A stored account.
#[derive(Debug, Clone)]
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
}

/// A live session token, stored by its hash.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Owner of the token.
    pub user_id: UserId,
    /// Device name given at login.
    pub device: String,
    /// When the token was issued (unix ms).
    pub created_at_ms: i64,
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, nickname, salt, password_hash, created_at_ms, signature, avatar, phone, email";

pub(crate) fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get::<_, i64>(0)? as u64,
        username: r.get(1)?,
        nickname: r.get(2)?,
        salt: r.get(3)?,
        password_hash: r.get(4)?,
        created_at_ms: r.get(5)?,
        signature: r.get(6)?,
        avatar: r.get(7)?,
        phone: r.get(8)?,
        email: r.get(9)?,
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
    Ok(st.query_row([id as i64], user_row).optional()?)
}

pub(crate) fn session(
    c: &Connection,
    token_hash: &[u8],
) -> Result<Option<SessionRecord>, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT user_id, device, created_at_ms FROM sessions WHERE token_hash = ?1",
    )?;
    Ok(st
        .query_row([token_hash], |r| {
            Ok(SessionRecord {
                user_id: r.get::<_, i64>(0)? as u64,
                device: r.get(1)?,
                created_at_ms: r.get(2)?,
            })
        })
        .optional()?)
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
    let now = now_ms();
    let res = c.execute(
        "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms,
                           username_key, nickname_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            username,
            nickname,
            salt,
            password_hash,
            now,
            crate::social::search_key(username),
            crate::social::search_key(nickname)
        ],
    );
    match res {
        Ok(_) => Ok(UserRecord {
            id: c.last_insert_rowid() as u64,
            username: username.to_owned(),
            nickname: nickname.to_owned(),
            salt: salt.to_vec(),
            password_hash: password_hash.to_vec(),
            created_at_ms: now,
            signature: String::new(),
            avatar: String::new(),
            phone: String::new(),
            email: String::new(),
        }),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StorageError::UsernameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Stores a new session token hash; to be run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn insert_session(
    c: &Connection,
    token_hash: &[u8],
    user_id: UserId,
    device: &str,
) -> Result<(), StorageError> {
    c.prepare_cached(
        "INSERT INTO sessions(token_hash, user_id, device, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_hash, user_id as i64, device, now_ms()])?;
    Ok(())
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
