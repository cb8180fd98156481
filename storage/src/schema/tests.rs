//! Tests of the migrations: each version's SQL, applied to a database an older build left.

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

/// The migration of recall and receipts (found by what it creates, as its number may change)
/// takes each user's delivered position from the highest cursor of their devices.
#[test]
fn receipts_migration_fills_delivered_positions_from_device_cursors() {
    let at = MIGRATIONS
        .iter()
        .position(|m| m.contains("CREATE TABLE delivered_positions"))
        .unwrap();
    let mut conn = database_at(
        at,
        "INSERT INTO device_cursors(user_id, device, conversation_id, seq)
             VALUES (1, 'phone', 7, 3), (1, 'laptop', 7, 5), (1, 'phone', 8, 2), (2, 'x', 7, 1);",
    );
    migrate(&mut conn).unwrap();
    let rows = int_pairs(
        &conn,
        "SELECT user_id * 100 + conversation_id, seq FROM delivered_positions ORDER BY 1",
    );
    assert_eq!(rows, vec![(107, 5), (108, 2), (207, 1)]);
    let recalled_by: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'recalled_by'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recalled_by, 1);
}
