//! The migration of verified contacts ([`super`]): the two flags, and one account per
//! verified contact.

/// The migration: the two flags, and one account per verified contact. Contacts are stored
/// as the server normalizes them (a lower-case e-mail, a phone's `+` and digits), so the
/// plain column is the key.
pub(crate) const MIGRATION: &str = "
    ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN phone_verified INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX users_by_verified_email ON users(email) WHERE email_verified = 1;
    CREATE UNIQUE INDEX users_by_verified_phone ON users(phone) WHERE phone_verified = 1;";
