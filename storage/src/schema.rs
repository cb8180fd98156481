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
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    /// The rows of a query of two integer columns.
    fn int_pairs(conn: &Connection, sql: &str) -> Vec<(i64, i64)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A database as an older build left it: the first `version` migrations' SQL, then `rows`.
    fn database_at(version: usize, rows: &str) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..version] {
            tx.execute_batch(sql).unwrap();
        }
        tx.execute_batch(&format!("PRAGMA user_version = {version}; {rows}"))
            .unwrap();
        tx.commit().unwrap();
        conn
    }

    #[test]
    fn version_12_keeps_sessions_and_gives_them_ids_and_a_fresh_expiry() {
        let mut conn = database_at(
            11,
            "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms)
             VALUES ('anne', 'Anne', x'00', x'00', 0);
             INSERT INTO sessions(token_hash, user_id, device, created_at_ms)
             VALUES (x'01', 1, 'phone', 5), (x'02', 1, 'laptop', 7);",
        );
        migrate(&mut conn).unwrap();
        let rows = int_pairs(&conn, "SELECT id, last_seen_ms FROM sessions ORDER BY id");
        assert_eq!(rows, [(1, 5), (2, 7)]);
        let expires: i64 = conn
            .query_row("SELECT MIN(expires_at_ms) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert!(
            expires > crate::now_ms() + 29 * 86_400_000,
            "30 days from the upgrade"
        );
    }

    #[test]
    fn version_3_fills_search_keys_of_existing_users() {
        let mut conn = database_at(
            2,
            "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms)
             VALUES ('Anne', 'ÄNNE Müller', x'00', x'00', 0);",
        );
        migrate(&mut conn).unwrap();
        let keys: (String, String) = conn
            .query_row("SELECT username_key, nickname_key FROM users", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(keys, ("anne".to_owned(), "änne müller".to_owned()));
    }

    #[test]
    fn version_4_drops_direct_member_rows_and_keeps_memberships() {
        let mut conn = database_at(
            3,
            "INSERT INTO users(id, username, nickname, salt, password_hash, created_at_ms)
                 VALUES (1, 'a', 'a', x'00', x'00', 0), (2, 'b', 'b', x'00', x'00', 0),
                        (3, 'c', 'c', x'00', x'00', 0);
             INSERT INTO conversations(id, kind, user_a, user_b, created_at_ms)
                 VALUES (7, 1, 1, 2, 0), (8, 2, NULL, NULL, 0);
             INSERT INTO members(user_id, conversation_id, joined_at_ms)
                 VALUES (1, 7, 0), (2, 7, 0), (1, 8, 0), (3, 8, 0);",
        );
        migrate(&mut conn).unwrap();
        let rows = |sql: &str| int_pairs(&conn, sql);
        // Only the other kind keeps its rows; every membership is listed once.
        assert_eq!(
            rows("SELECT user_id, conversation_id FROM members ORDER BY 1, 2"),
            vec![(1, 8), (3, 8)]
        );
        assert_eq!(
            rows("SELECT user_id, conversation_id FROM memberships ORDER BY 1, 2"),
            vec![(1, 7), (1, 8), (2, 7), (3, 8)]
        );
    }

    #[test]
    fn version_5_moves_the_search_index_out() {
        let mut conn = database_at(
            4,
            "INSERT INTO message_fts(rowid, body) VALUES (1, 'hello');
             UPDATE meta SET value = 1 WHERE key = 'fts_indexed_upto';",
        );
        migrate(&mut conn).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'message_fts%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the old index's tables are left");
        let meta: i64 = conn
            .query_row(
                "SELECT count(*) FROM meta WHERE key = 'fts_indexed_upto'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(meta, 0);
    }

    #[test]
    fn version_6_keeps_resends_unique_with_client_id_first() {
        let mut conn = database_at(
            5,
            "INSERT INTO messages(id, conversation_id, seq, sender_id, client_msg_id, kind, body, sent_at_ms)
                 VALUES (1, 7, 1, 1, 500, 1, 'a', 0), (2, 7, 2, 2, 500, 1, 'b', 0);",
        );
        migrate(&mut conn).unwrap();
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info('messages_dedupe') ORDER BY seqno")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(columns, ["client_msg_id", "sender_id"]);
        // The writer's upsert names the columns in the old order: still the same constraint.
        let insert = |id: i64, sender: i64| {
            conn.execute(
                "INSERT INTO messages(id, conversation_id, seq, sender_id, client_msg_id, kind, body, sent_at_ms)
                 VALUES (?1, 7, ?1, ?2, 500, 1, 'c', 0) ON CONFLICT(sender_id, client_msg_id) DO NOTHING",
                rusqlite::params![id, sender],
            )
            .unwrap()
        };
        assert_eq!(insert(3, 1), 0, "a resend of a stored pair");
        assert_eq!(insert(4, 3), 1, "the same client id from another sender");
    }

    #[test]
    fn version_7_normalizes_stored_search_keys() {
        let mut conn = database_at(
            6,
            "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms,
                               username_key, nickname_key)
             VALUES ('wang', 'ＷＡＮＧ', x'00', x'00', 0, 'wang', 'ｗａｎｇ');",
        );
        migrate(&mut conn).unwrap();
        let key: String = conn
            .query_row("SELECT nickname_key FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(key, "wang");
    }

    #[test]
    fn version_8_indexes_the_stored_pairs_in_both_directions() {
        let mut conn = database_at(
            7,
            "INSERT INTO users(id, username, nickname, salt, password_hash, created_at_ms)
                 VALUES (1, 'a', 'a', x'00', x'00', 0), (2, 'b', 'b', x'00', x'00', 0),
                        (3, 'c', 'c', x'00', x'00', 0);
             INSERT INTO conversations(id, kind, user_a, user_b, created_at_ms)
                 VALUES (7, 1, 1, 2, 0), (8, 2, NULL, NULL, 0), (9, 1, 2, 3, 0);
             INSERT INTO members(user_id, conversation_id, joined_at_ms)
                 VALUES (1, 8, 0), (3, 8, 0);",
        );
        migrate(&mut conn).unwrap();
        let rows = |sql: &str| int_pairs(&conn, sql);
        assert_eq!(
            rows("SELECT user_id * 10 + peer_id, conversation_id FROM direct_pairs ORDER BY 1"),
            vec![(12, 7), (21, 7), (23, 9), (32, 9)]
        );
        assert_eq!(
            rows("SELECT value, 0 FROM meta WHERE key = 'pairs_indexed_upto'"),
            vec![(9, 0)]
        );
        assert!(rows("SELECT user_a, conversation_id FROM direct_tail").is_empty());
        // The same memberships as before, each once.
        assert_eq!(
            rows("SELECT user_id, conversation_id FROM memberships ORDER BY 1, 2"),
            vec![(1, 7), (1, 8), (2, 7), (2, 9), (3, 8), (3, 9)]
        );
    }

    /// Three messages in two conversations, as the tests of migrations 9 and 10 store them.
    const THREE_MESSAGES: &str = "INSERT INTO messages(id, conversation_id, seq, sender_id, client_msg_id, kind, body, sent_at_ms)
        VALUES (10, 7, 1, 1, NULL, 1, 'a', 0), (11, 8, 1, 1, NULL, 1, 'b', 0),
               (12, 7, 2, 2, NULL, 1, 'c', 0);";

    /// After migrating: the entries of `message_seq`, and whether `name` is still in the schema.
    fn seq_entries_and(conn: &mut Connection, name: &str) -> (Vec<(i64, i64, i64)>, bool) {
        migrate(conn).unwrap();
        let entries = conn
            .prepare("SELECT conversation_id, seq, id FROM message_seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap();
        (entries, left > 0)
    }

    #[test]
    fn version_9_moves_the_sequence_index_out_of_messages() {
        let mut conn = database_at(8, THREE_MESSAGES);
        let (entries, left) = seq_entries_and(&mut conn, "messages_by_seq");
        assert_eq!(entries, vec![(7, 1, 10), (7, 2, 12), (8, 1, 11)]);
        assert!(!left, "messages keeps no sequence index");
    }

    /// Version 10 folds `recent_seq` into `message_seq` and marks every message as indexed.
    #[test]
    fn version_10_folds_the_recent_entries_in_and_sets_the_mark() {
        let mut conn = database_at(
            9,
            &format!(
                "{THREE_MESSAGES}
                 INSERT INTO message_seq VALUES (7, 1, 10), (8, 1, 11);
                 INSERT INTO recent_seq VALUES (7, 2, 12);"
            ),
        );
        let (entries, left) = seq_entries_and(&mut conn, "recent_seq");
        assert_eq!(entries, vec![(7, 1, 10), (7, 2, 12), (8, 1, 11)]);
        assert!(!left, "recent_seq is gone");
        assert_eq!(
            crate::recent::mark(&conn).unwrap(),
            12,
            "every message is indexed"
        );
    }

    #[test]
    fn refuses_newer_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 999").unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StorageError::SchemaTooNew { found: 999, .. })
        ));
    }

    #[test]
    fn refuses_negative_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = -1").unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StorageError::SchemaUnknown { found: -1 })
        ));
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            tables, 0,
            "nothing applied to a database Feige did not write"
        );
    }
}
