//! Migration 20: disabled and pending accounts, system notifications and their read state
//! ([`crate::notifications`]), address bans ([`super`]).

/// Migration 20: account states, system notifications with their read state, address bans.
pub(crate) const MIGRATION: &str = "
    ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    -- recipient NULL: a notice to everyone (one row, whatever the number of users).
    CREATE TABLE notifications (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient     INTEGER,
        sender_id     INTEGER NOT NULL DEFAULT 0,
        title         TEXT NOT NULL,
        body          TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX notifications_by_recipient ON notifications(recipient, id);
    -- Everything up to read_up_to is read for the user; above it, the rows of notification_marks.
    CREATE TABLE notification_cursors (
        user_id    INTEGER PRIMARY KEY,
        read_up_to INTEGER NOT NULL
    );
    CREATE TABLE notification_marks (
        user_id         INTEGER NOT NULL,
        notification_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, notification_id)
    ) WITHOUT ROWID;
    CREATE TABLE address_bans (
        cidr          TEXT PRIMARY KEY,
        reason        TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;";
