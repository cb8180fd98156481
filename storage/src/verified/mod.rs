//! Verified e-mail addresses and phone numbers: the account found by one, an account created
//! with one, a verified contact changed, the guard of profile updates. A verified contact
//! belongs to one account (a unique index over the verified rows only; an unverified one, set
//! through the profile, may repeat). Writes run through [`crate::Writer::call`]. The migration
//! is in [`migration`].

pub(crate) mod migration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::account::{insert_user_with, user_row, UserRecord, USER_COLUMNS};
use crate::int::Uint;
use crate::{StorageError, UserId};

/// Which contact of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    /// The e-mail address.
    Email,
    /// The phone number.
    Phone,
}

impl ContactKind {
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            ContactKind::Email => ("email", "email_verified"),
            ContactKind::Phone => ("phone", "phone_verified"),
        }
    }
}

/// The account that verified `value` (normalized) as its `kind`.
///
/// # Errors
/// Database errors.
pub fn user_by_contact(
    c: &Connection,
    kind: ContactKind,
    value: &str,
) -> Result<Option<UserRecord>, StorageError> {
    let (column, flag) = kind.columns();
    let mut st = c.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1 AND {flag} = 1"
    ))?;
    Ok(st.query_row([value], user_row).optional()?)
}

/// Sets `user`'s `kind` to `value`, verified; returns the account as it is now.
///
/// # Errors
/// [`StorageError::ContactTaken`] when another account verified it, [`StorageError::UnknownUser`],
/// database errors.
pub fn set_contact(
    c: &Connection,
    user: UserId,
    kind: ContactKind,
    value: &str,
) -> Result<UserRecord, StorageError> {
    let (column, flag) = kind.columns();
    let res = c.execute(
        &format!("UPDATE users SET {column} = ?1, {flag} = 1 WHERE id = ?2"),
        params![value, Uint(user)],
    );
    match res {
        Ok(0) => return Err(StorageError::UnknownUser),
        Ok(_) => {}
        Err(e) => return Err(taken_or(e)),
    }
    crate::account::user_by_id(c, user)?.ok_or(StorageError::UnknownUser)
}

/// Inserts a new user whose `contact` is verified, as [`insert_user_with`]; an empty salt and
/// hash make an account without a password (a phone login's), which no password opens.
///
/// # Errors
/// [`StorageError::UsernameTaken`], [`StorageError::ContactTaken`], database errors.
pub fn insert_verified_user(
    c: &Connection,
    username: &str,
    nickname: &str,
    password: (&[u8], &[u8]),
    pending: bool,
    (kind, value): (ContactKind, &str),
) -> Result<UserRecord, StorageError> {
    if user_by_contact(c, kind, value)?.is_some() {
        return Err(StorageError::ContactTaken);
    }
    let user = insert_user_with(c, username, nickname, password, pending)?;
    set_contact(c, user.id, kind, value)
}

/// Refuses a profile update that would replace a verified phone or e-mail (`Some` new value
/// different from a verified stored one): that takes a code ([`set_contact`]).
///
/// # Errors
/// [`StorageError::VerificationRequired`], [`StorageError::UnknownUser`], database errors.
pub fn check_profile_contacts(
    c: &Connection,
    user: UserId,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<(), StorageError> {
    let u = crate::account::user_by_id(c, user)?.ok_or(StorageError::UnknownUser)?;
    let replaces =
        |new: Option<&str>, old: &str, verified: bool| verified && new.is_some_and(|n| n != old);
    if replaces(phone, &u.phone, u.phone_verified) || replaces(email, &u.email, u.email_verified) {
        return Err(StorageError::VerificationRequired);
    }
    Ok(())
}

fn taken_or(e: rusqlite::Error) -> StorageError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StorageError::ContactTaken
        }
        e => e.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::migrated_in_memory;

    #[test]
    fn a_verified_contact_belongs_to_one_account() {
        let c = migrated_in_memory();
        let a = insert_verified_user(
            &c,
            "a1",
            "A",
            (&[], &[]),
            false,
            (ContactKind::Phone, "+1555"),
        )
        .unwrap();
        assert!(a.phone_verified && a.phone == "+1555" && a.password_hash.is_empty());
        let found = user_by_contact(&c, ContactKind::Phone, "+1555")
            .unwrap()
            .unwrap();
        assert_eq!(found.id, a.id);
        assert!(user_by_contact(&c, ContactKind::Email, "+1555")
            .unwrap()
            .is_none());
        let again = insert_verified_user(
            &c,
            "b1",
            "B",
            (&[], &[]),
            false,
            (ContactKind::Phone, "+1555"),
        );
        assert!(matches!(again, Err(StorageError::ContactTaken)));
        let b = insert_user_with(&c, "b1", "B", (&[1], &[2]), false).unwrap();
        assert!(matches!(
            set_contact(&c, b.id, ContactKind::Phone, "+1555"),
            Err(StorageError::ContactTaken)
        ));
        let b = set_contact(&c, b.id, ContactKind::Email, "b@x.org").unwrap();
        assert!(b.email_verified && !b.phone_verified);
        // An unverified copy of a verified e-mail is no conflict.
        let d = insert_user_with(&c, "d1", "D", (&[1], &[2]), false).unwrap();
        c.execute(
            "UPDATE users SET email = 'b@x.org' WHERE id = ?1",
            [Uint(d.id)],
        )
        .unwrap();
        assert_eq!(
            user_by_contact(&c, ContactKind::Email, "b@x.org")
                .unwrap()
                .unwrap()
                .id,
            b.id
        );
    }

    #[test]
    fn a_verified_contact_is_not_replaced_by_a_profile_update() {
        let c = migrated_in_memory();
        let u = insert_verified_user(
            &c,
            "a1",
            "A",
            (&[], &[]),
            false,
            (ContactKind::Email, "a@x.org"),
        )
        .unwrap();
        assert!(check_profile_contacts(&c, u.id, Some("+1"), Some("a@x.org")).is_ok());
        assert!(matches!(
            check_profile_contacts(&c, u.id, None, Some("b@x.org")),
            Err(StorageError::VerificationRequired)
        ));
        assert!(matches!(
            check_profile_contacts(&c, u.id, None, Some("")),
            Err(StorageError::VerificationRequired)
        ));
    }
}
