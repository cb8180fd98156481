//! Versioned schema migrations, applied in order at start-up inside one transaction each.
//! `PRAGMA user_version` holds the number of migrations applied.

use rusqlite::Connection;

use crate::text::fill_search_keys;
use crate::StorageError;

/// Each entry migrates from version `i` to `i + 1`: its SQL, then, in the same transaction,
/// the Rust step at the same index of [`FILLS`], if any. Append only; never edit a shipped
/// step.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, sessions, conversations, messages, per-device cursors, search index.
    "CREATE TABLE users (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
        nickname      TEXT NOT NULL,
        salt          BLOB NOT NULL,
        password_hash BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash    BLOB PRIMARY KEY,
        user_id       INTEGER NOT NULL REFERENCES users(id),
        device        TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions(user_id);
    -- kind 1 = direct (user_a < user_b), 2 = group (later).
    CREATE TABLE conversations (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        kind          INTEGER NOT NULL,
        user_a        INTEGER,
        user_b        INTEGER,
        created_at_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX conversations_direct ON conversations(user_a, user_b) WHERE kind = 1;
    CREATE TABLE members (
        user_id         INTEGER NOT NULL REFERENCES users(id),
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        joined_at_ms    INTEGER NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_conversation ON members(conversation_id, user_id);
    -- One row per message per conversation; id is the time-ordered server id.
    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        sender_id       INTEGER NOT NULL,
        client_msg_id   INTEGER,
        kind            INTEGER NOT NULL,
        body            TEXT NOT NULL,
        sent_at_ms      INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_seq ON messages(conversation_id, seq);
    -- Clients choose growing client ids, so this index is appended to per sender.
    CREATE UNIQUE INDEX messages_dedupe ON messages(sender_id, client_msg_id);
    CREATE TABLE device_cursors (
        user_id         INTEGER NOT NULL,
        device          TEXT NOT NULL,
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        PRIMARY KEY (user_id, device, conversation_id)
    ) WITHOUT ROWID;
    -- Contentless full-text index over messages.body, rowid = messages.id, fed by the indexer.
    CREATE VIRTUAL TABLE message_fts USING fts5(body, content='', tokenize='unicode61 remove_diacritics 2');
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta(key, value) VALUES ('fts_indexed_upto', 0);",
    // 2: profiles, friends, friend requests, blocks, per-user read positions.
    "ALTER TABLE users ADD COLUMN signature TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN avatar TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
    -- One row per direction: (a, b) and (b, a); remark is a's alias for b.
    CREATE TABLE friends (
        user_id   INTEGER NOT NULL,
        friend_id INTEGER NOT NULL,
        remark    TEXT NOT NULL DEFAULT '',
        since_ms  INTEGER NOT NULL,
        PRIMARY KEY (user_id, friend_id)
    ) WITHOUT ROWID;
    -- status: 0 pending, 1 accepted, 2 rejected, 3 withdrawn (by a block).
    CREATE TABLE friend_requests (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        from_user      INTEGER NOT NULL,
        to_user        INTEGER NOT NULL,
        message        TEXT NOT NULL,
        status         INTEGER NOT NULL DEFAULT 0,
        created_at_ms  INTEGER NOT NULL,
        answered_at_ms INTEGER
    );
    CREATE UNIQUE INDEX friend_requests_pending ON friend_requests(from_user, to_user) WHERE status = 0;
    CREATE INDEX friend_requests_to ON friend_requests(to_user, status);
    CREATE TABLE blocks (
        user_id    INTEGER NOT NULL,
        blocked_id INTEGER NOT NULL,
        since_ms   INTEGER NOT NULL,
        PRIMARY KEY (user_id, blocked_id)
    ) WITHOUT ROWID;
    CREATE INDEX blocks_by_blocked ON blocks(blocked_id, user_id);
    -- What the user has read, shared by all their devices (device_cursors is what a device holds).
    CREATE TABLE read_positions (
        user_id         INTEGER NOT NULL,
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    ) WITHOUT ROWID;",
    // 3: search keys (lower-cased in Rust by text::search_key, so user search is
    // case-insensitive beyond ASCII); filled by fill_search_keys.
    "ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN nickname_key TEXT NOT NULL DEFAULT '';",
    // 4: a direct conversation's members are its pair, so it keeps no `members` rows (opening
    // one, on a first message, writes none); `memberships` lists every (user,
    // conversation) and is what reads use.
    "CREATE INDEX conversations_direct_b ON conversations(user_b) WHERE kind = 1;
    DELETE FROM members WHERE conversation_id IN (SELECT id FROM conversations WHERE kind = 1);
    CREATE VIEW memberships(user_id, conversation_id) AS
        SELECT user_id, conversation_id FROM members
        UNION ALL SELECT user_a, id FROM conversations WHERE kind = 1
        UNION ALL SELECT user_b, id FROM conversations WHERE kind = 1;",
    // 5: the search index moved to its own database file (`indexer::SEARCH_DB`), rebuilt
    // there from the messages by the indexer thread.
    "DROP TABLE IF EXISTS message_fts;
    DELETE FROM meta WHERE key = 'fts_indexed_upto';",
    // 6: the dedupe index leads with client_msg_id. Clients choose growing ids (the SDK's are
    // the time), so new entries land at the index's right edge: a commit dirties a page or
    // two of it, where (sender_id, client_msg_id) dirtied one page per sender in the batch.
    // The same pairs are unique, and a lookup by both columns is served either way.
    "DROP INDEX messages_dedupe;
    CREATE UNIQUE INDEX messages_dedupe ON messages(client_msg_id, sender_id);",
    // 7: search keys are NFKC-normalized before lower-casing (`text::search_key`); the
    // stored keys are computed again by fill_search_keys.
    "",
    // 8: direct pairs are indexed in bulk, off the per-message path (`pairs` module). The two
    // random-keyed pair indexes cost a B-tree page each per new pair; `direct_pairs` holds
    // both directions of every pair up to `meta.pairs_indexed_upto` and is filled by the
    // writer many pairs at a time, sorted, so a page takes many of them. Conversations above
    // the mark (the tail) are found by a scan of `conversations` from the mark.
    "CREATE TABLE direct_pairs (
        user_id         INTEGER NOT NULL,
        peer_id         INTEGER NOT NULL,
        conversation_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, peer_id)
    ) WITHOUT ROWID;
    INSERT INTO direct_pairs(user_id, peer_id, conversation_id)
        SELECT user_a, user_b, id FROM conversations WHERE kind = 1
        UNION ALL SELECT user_b, user_a, id FROM conversations WHERE kind = 1
        ORDER BY 1, 2;
    INSERT INTO meta(key, value)
        VALUES ('pairs_indexed_upto', (SELECT COALESCE(MAX(id), 0) FROM conversations));
    DROP VIEW memberships;
    DROP INDEX conversations_direct;
    DROP INDEX conversations_direct_b;
    CREATE VIEW direct_tail(user_a, user_b, conversation_id) AS
        SELECT user_a, user_b, id FROM conversations
        WHERE id > (SELECT value FROM meta WHERE key = 'pairs_indexed_upto') AND kind = 1;
    -- Every (user, conversation), for a lookup by user (a user's conversations)...
    CREATE VIEW memberships(user_id, conversation_id) AS
        SELECT user_id, conversation_id FROM members
        UNION ALL SELECT user_id, conversation_id FROM direct_pairs
        UNION ALL SELECT user_a, conversation_id FROM direct_tail
        UNION ALL SELECT user_b, conversation_id FROM direct_tail;
    -- ...and the same rows for a lookup by conversation (is this user a member?), which
    -- reads a direct conversation's pair by its rowid.
    CREATE VIEW conversation_members(user_id, conversation_id) AS
        SELECT user_id, conversation_id FROM members
        UNION ALL SELECT user_a, id FROM conversations WHERE kind = 1
        UNION ALL SELECT user_b, id FROM conversations WHERE kind = 1;",
    // 9: the sequence index is built in bulk too (`sequence` module): new messages go to the
    // small `recent_seq`, which the writer moves into `message_seq` many at a time.
    "CREATE TABLE message_seq (
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        id              INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE recent_seq (
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        id              INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO message_seq(conversation_id, seq, id)
        SELECT conversation_id, seq, id FROM messages ORDER BY conversation_id, seq;
    DROP INDEX messages_by_seq;",
    // 10: the newest sequence-index entries wait in memory instead of `recent_seq`
    // (`recent` module); `seq_indexed_upto` marks the messages whose entries are in
    // `message_seq`: all of them, once `recent_seq` is folded in.
    "INSERT INTO message_seq(conversation_id, seq, id)
        SELECT conversation_id, seq, id FROM recent_seq ORDER BY conversation_id, seq;
    DROP TABLE recent_seq;
    INSERT INTO meta(key, value)
        VALUES ('seq_indexed_upto', (SELECT COALESCE(MAX(id), 0) FROM messages));",
    // 11: answered friend requests are deleted after a retention period
    // (`social::prune_requests`), found by the time of their answer.
    "CREATE INDEX friend_requests_answered ON friend_requests(answered_at_ms) WHERE status <> 0;",
    // 12: sessions get an id (for listing and revoking), when and from where they were last
    // used, and an expiry that each use slides. Tokens issued before get the default 30 days
    // from now.
    "CREATE TABLE sessions_v12 (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash    BLOB NOT NULL UNIQUE,
        user_id       INTEGER NOT NULL REFERENCES users(id),
        device        TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL,
        address       TEXT NOT NULL DEFAULT '',
        expires_at_ms INTEGER NOT NULL
    );
    INSERT INTO sessions_v12(token_hash, user_id, device, created_at_ms, last_seen_ms,
                             expires_at_ms)
        SELECT token_hash, user_id, device, created_at_ms, created_at_ms,
               CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + 2592000000
        FROM sessions ORDER BY created_at_ms;
    DROP TABLE sessions;
    ALTER TABLE sessions_v12 RENAME TO sessions;
    CREATE INDEX sessions_by_user ON sessions(user_id);
    CREATE INDEX sessions_by_expiry ON sessions(expires_at_ms);",
    // 13: the writer moves the sequence index in slices (`writer::index`): the mark of the
    // move under way (0 = none) and the last (conversation, seq) it has moved.
    "INSERT INTO meta(key, value)
        VALUES ('seq_moving_upto', 0), ('seq_moved_conv', 0), ('seq_moved_seq', 0);",
    // 14: the writer moves the direct pairs' tail in slices too (`writer::pairs`): the mark of
    // the move under way (0 = none) and the last (user, peer) it has moved. `memberships`
    // skips a tail row that the move has already put in `direct_pairs`.
    "INSERT INTO meta(key, value)
        VALUES ('pairs_moving_upto', 0), ('pairs_moved_user', 0), ('pairs_moved_peer', 0);
    DROP VIEW memberships;
    CREATE VIEW memberships(user_id, conversation_id) AS
        SELECT user_id, conversation_id FROM members
        UNION ALL SELECT user_id, conversation_id FROM direct_pairs
        UNION ALL SELECT user_a, conversation_id FROM direct_tail
            WHERE NOT (conversation_id <= (SELECT value FROM meta WHERE key = 'pairs_moving_upto')
                AND (user_a, user_b) <= ((SELECT value FROM meta WHERE key = 'pairs_moved_user'),
                                         (SELECT value FROM meta WHERE key = 'pairs_moved_peer')))
        UNION ALL SELECT user_b, conversation_id FROM direct_tail
            WHERE NOT (conversation_id <= (SELECT value FROM meta WHERE key = 'pairs_moving_upto')
                AND (user_b, user_a) <= ((SELECT value FROM meta WHERE key = 'pairs_moved_user'),
                                         (SELECT value FROM meta WHERE key = 'pairs_moved_peer')));",
    // 15: groups. A group is a conversation of kind 2 and its id is the conversation's; its
    // members are `members` rows with a role (0 member, 1 admin, 2 owner), a card name (群名片),
    // a mute deadline and the last seq sent before they joined (they read only what follows).
    // An invitation that waits for approval is a `group_invites` row.
    "CREATE TABLE groups (
        conversation_id INTEGER PRIMARY KEY,
        name            TEXT NOT NULL,
        avatar          TEXT NOT NULL DEFAULT '',
        announcement    TEXT NOT NULL DEFAULT '',
        owner_id        INTEGER NOT NULL,
        mute_all        INTEGER NOT NULL DEFAULT 0,
        join_approval   INTEGER NOT NULL DEFAULT 0,
        created_at_ms   INTEGER NOT NULL,
        dismissed_at_ms INTEGER
    );
    ALTER TABLE members ADD COLUMN role INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE members ADD COLUMN card TEXT NOT NULL DEFAULT '';
    ALTER TABLE members ADD COLUMN muted_until_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE group_invites (
        group_id      INTEGER NOT NULL,
        user_id       INTEGER NOT NULL,
        inviter_id    INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (group_id, user_id)
    ) WITHOUT ROWID;",
    // 16: @mentions: stored with the message ("*" first for @all, then the ids; NULL for
    // none) and per user mentioned (0 = all) for the conversation list's `mentioned` flag.
    "ALTER TABLE messages ADD COLUMN mentions TEXT;
    CREATE TABLE mentions (conversation_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
        seq INTEGER NOT NULL, sender_id INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, user_id, seq)) WITHOUT ROWID;
    CREATE INDEX group_invites_by_user ON group_invites(user_id);",
    // 17: world rooms' kept history, wallets with their ledger, and red packets.
    crate::red_packet::migration::MIGRATION,
    // 18: recall, receipts and friend groups. A recalled message keeps its row (kind 5, RECALLED,
    // with an empty body) and says who recalled it; `recalls` logs each recall in order, for
    // the search indexer to delete the message from the index (`receipts::recall`).
    // `delivered_positions` is the highest seq any device of a user has acked (the max of
    // its `device_cursors`), kept by Ack. A friend's row gets the owner's friend group.
    "ALTER TABLE messages ADD COLUMN recalled_by INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE recalls (
        id             INTEGER PRIMARY KEY,
        message_id     INTEGER NOT NULL,
        recalled_at_ms INTEGER NOT NULL
    );
    CREATE TABLE delivered_positions (
        user_id         INTEGER NOT NULL,
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    ) WITHOUT ROWID;
    INSERT INTO delivered_positions(user_id, conversation_id, seq)
        SELECT user_id, conversation_id, MAX(seq) FROM device_cursors GROUP BY 1, 2;
    ALTER TABLE friends ADD COLUMN group_name TEXT NOT NULL DEFAULT '';
    CREATE INDEX friends_by_group ON friends(user_id, group_name);",
    // 19: files, uploads, their uses and reference counts, stickers, file offers; a
    // message's file (`attachment`) and transcript (`blobs::migration`).
    crate::blobs::migration::MIGRATION,
    // 20: disabled and pending accounts, system notifications and their read state, address
    // bans (`admin`).
    crate::admin::migration::MIGRATION,
    // Verified e-mail addresses and phone numbers, one account each (`verified`).
    crate::verified::migration::MIGRATION,
    // Two-factor login (TOTP secrets, recovery codes) and closed accounts
    // (`twofactor`, `closing`).
    crate::twofactor::migration::MIGRATION,
];

/// A migration step that needs Rust (SQLite's `lower()` folds ASCII only).
type Fill = fn(&Connection) -> Result<(), StorageError>;

/// `(version, step)`: runs after the SQL of the migration to `version`, in its transaction.
const FILLS: &[(usize, Fill)] = &[(3, fill_search_keys), (7, fill_search_keys)];

/// Applies every migration newer than the database's `user_version`.
///
/// # Errors
/// A migration fails, or the database is newer than this build or has a negative version.
pub fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StorageError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let Ok(applied) = usize::try_from(current) else {
        return Err(StorageError::SchemaUnknown { found: current });
    };
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        for (_, fill) in FILLS.iter().filter(|(v, _)| *v == i + 1) {
            fill(&tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

/// A fresh in-memory database at the current schema, for the crate's unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn migrated_in_memory() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    migrate(&mut c).unwrap();
    c
}

#[cfg(test)]
mod tests;
