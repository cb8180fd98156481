//! Profiles: what anyone may see of a user, the user's own record, and the changes a user
//! makes to it (profile fields, password).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::account::{user_row, UserRecord, USER_COLUMNS};
use crate::int::{get_u64, Uint};
use crate::text::search_key;
use crate::{StorageError, UserId};

/// What anyone may see of a user: no phone, e-mail, password hash or token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUser {
    /// User id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Display name.
    pub nickname: String,
    /// Status line.
    pub signature: String,
    /// Avatar file id; empty = none.
    pub avatar: String,
    /// The user closed the account.
    pub closed: bool,
}

/// The [`PublicUser`] columns of `users u`, as [`public_row`] reads them.
pub(super) const PUBLIC_COLUMNS: &str =
    "u.id, u.username, u.nickname, u.signature, u.avatar, u.closed_at_ms <> 0";

/// Reads a [`PublicUser`] from the six columns of [`PUBLIC_COLUMNS`] starting at `at`.
pub(super) fn public_row(r: &Row<'_>, at: usize) -> rusqlite::Result<PublicUser> {
    Ok(PublicUser {
        id: get_u64(r, at)?,
        username: r.get(at + 1)?,
        nickname: r.get(at + 2)?,
        signature: r.get(at + 3)?,
        avatar: r.get(at + 4)?,
        closed: r.get(at + 5)?,
    })
}

impl From<&UserRecord> for PublicUser {
    fn from(u: &UserRecord) -> Self {
        PublicUser {
            id: u.id,
            username: u.username.clone(),
            nickname: u.nickname.clone(),
            signature: u.signature.clone(),
            avatar: u.avatar.clone(),
            closed: u.closed,
        }
    }
}

/// Changes to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// New nickname.
    pub nickname: Option<String>,
    /// New signature.
    pub signature: Option<String>,
    /// New avatar file id.
    pub avatar: Option<String>,
    /// New phone number.
    pub phone: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
}

/// A user's public profile.
///
/// # Errors
/// Database errors.
pub fn public_user(c: &Connection, id: UserId) -> Result<Option<PublicUser>, StorageError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM users u WHERE u.id = ?1"
    ))?
    .query_row([Uint(id)], |r| public_row(r, 0))
    .optional()?)
}

/// A user's whole record, for the user themself (their profile with phone and e-mail).
///
/// # Errors
/// Database errors.
pub fn own_profile(c: &Connection, id: UserId) -> Result<Option<UserRecord>, StorageError> {
    crate::account::user_by_id(c, id)
}

/// A user's public profile, or [`StorageError::UnknownUser`].
pub(super) fn required_user(c: &Connection, id: UserId) -> Result<PublicUser, StorageError> {
    public_user(c, id)?.ok_or(StorageError::UnknownUser)
}

/// Applies `update` to `user`'s profile (and the nickname's search key); returns the record
/// before and after. Run through [`crate::Writer::call`].
///
/// # Errors
/// [`StorageError::UnknownUser`]; database errors.
pub fn update_profile(
    c: &Connection,
    user: UserId,
    update: &ProfileUpdate,
) -> Result<(UserRecord, UserRecord), StorageError> {
    let read = |c: &Connection| -> Result<UserRecord, StorageError> {
        c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([Uint(user)], user_row)
            .optional()?
            .ok_or(StorageError::UnknownUser)
    };
    let before = read(c)?;
    if let Some(n) = &update.nickname {
        c.prepare_cached("UPDATE users SET nickname_key = ?1 WHERE id = ?2")?
            .execute(params![search_key(n), Uint(user)])?;
    }
    let fields = [
        ("nickname", &update.nickname),
        ("signature", &update.signature),
        ("avatar", &update.avatar),
        ("phone", &update.phone),
        ("email", &update.email),
    ];
    for (column, value) in fields {
        if let Some(v) = value {
            c.execute(
                &format!("UPDATE users SET {column} = ?1 WHERE id = ?2"),
                params![v, Uint(user)],
            )?;
        }
    }
    Ok((before, read(c)?))
}

/// Stores a new password hash for `user` and revokes every session token except `keep`;
/// returns how many were revoked. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn set_password(
    c: &Connection,
    user: UserId,
    salt: &[u8],
    hash: &[u8],
    keep: &[u8],
) -> Result<u32, StorageError> {
    let n = c.execute(
        "UPDATE users SET salt = ?1, password_hash = ?2 WHERE id = ?3",
        params![salt, hash, Uint(user)],
    )?;
    if n == 0 {
        return Err(StorageError::UnknownUser);
    }
    let revoked = c.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2",
        params![Uint(user), keep],
    )?;
    Ok(u32::try_from(revoked).unwrap_or(u32::MAX))
}
