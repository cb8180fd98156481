//! The migration of two-factor login ([`super`]) and closed accounts ([`crate::closing`]).

/// The SQL of the migration adding two-factor login and closed accounts.
pub(crate) const MIGRATION: &str = "
    ALTER TABLE users ADD COLUMN closed_at_ms INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX users_closed ON users(closed_at_ms) WHERE closed_at_ms > 0;
    -- enabled = 0: set up, waiting for the first code (TotpEnable).
    CREATE TABLE totp (
        user_id   INTEGER PRIMARY KEY,
        secret    BLOB NOT NULL,
        enabled   INTEGER NOT NULL DEFAULT 0,
        last_step INTEGER NOT NULL DEFAULT 0
    );
    -- SHA-256 of each recovery code; used_at_ms 0 = not used yet.
    CREATE TABLE totp_recovery (
        user_id    INTEGER NOT NULL,
        code_hash  BLOB NOT NULL,
        used_at_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, code_hash)
    ) WITHOUT ROWID;";
