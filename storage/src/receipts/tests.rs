use std::path::Path;

use rusqlite::Connection;

use super::recall::recall;
use crate::recent::{Recent, Snapshot};
use crate::sequence::View;
use crate::{indexer, search, StorageError};

/// Users 1..=4; group 10 (1 owner, 2 admin, 3 member, 4 joined after seq 1); messages 1
/// (from 3, "hello world") and 2 (from 1, "second note") sent at `sent_at`.
fn group_db(c: &Connection, sent_at: i64) {
    for name in ["owner", "admin", "member", "late"] {
        crate::account::insert_user(c, name, name, b"s", b"h").unwrap();
    }
    c.execute_batch(&format!(
        "INSERT INTO conversations(id, kind, created_at_ms) VALUES (10, 2, 0);
         INSERT INTO groups(conversation_id, name, owner_id, created_at_ms) VALUES (10, 'g', 1, 0);
         INSERT INTO members(user_id, conversation_id, joined_at_ms, role, joined_seq)
             VALUES (1, 10, 0, 2, 0), (2, 10, 0, 1, 0), (3, 10, 0, 0, 0), (4, 10, 0, 0, 1);
         INSERT INTO messages(id, conversation_id, seq, sender_id, kind, body, sent_at_ms)
             VALUES (100, 10, 1, 3, 0, 'hello world', {sent_at}),
                    (101, 10, 2, 1, 0, 'second note', {sent_at});
         INSERT INTO read_positions(user_id, conversation_id, seq) VALUES (2, 10, 2), (3, 10, 1);"
    ))
    .unwrap();
}

#[test]
fn group_receipts_count_the_members_read_positions() {
    let c = crate::schema::migrated_in_memory();
    group_db(&c, 0);
    let recent = Recent::load(&c).unwrap();
    let view = View {
        recent: &recent,
        snap: Snapshot::read(&c).unwrap(),
    };
    // Seq 1, from 3: the owner (unread) and the admin (read); 4 joined after it.
    let r = super::counts::receipts(&c, &view, 1, 10, 1).unwrap();
    assert_eq!((r.read_count, r.unread_count), (1, 1));
    assert_eq!(r.readers.iter().map(|u| u.id).collect::<Vec<_>>(), [2]);
    assert_eq!((r.peer_read_seq, r.peer_delivered_seq), (0, 0));
    // The sender may ask too; a plain member may not, nor a stranger.
    assert_eq!(super::counts::receipts(&c, &view, 3, 10, 1).unwrap(), r);
    assert!(matches!(
        super::counts::receipts(&c, &view, 4, 10, 1),
        Err(StorageError::Forbidden)
    ));
    // Seq 2, from the owner: 2 read it, 3 and 4 did not.
    let r = super::counts::receipts(&c, &view, 2, 10, 2).unwrap();
    assert_eq!((r.read_count, r.unread_count), (1, 2));
    assert!(matches!(
        super::counts::receipts(&c, &view, 1, 10, 3),
        Err(StorageError::UnknownMessage)
    ));
    assert!(matches!(
        super::counts::receipts(&c, &view, 1, 11, 1),
        Err(StorageError::Forbidden)
    ));
}

#[test]
fn recall_in_a_group_by_sender_or_admin_within_the_window() {
    let c = crate::schema::migrated_in_memory();
    group_db(&c, 1_000);
    let recent = Recent::load(&c).unwrap();
    let view = View {
        recent: &recent,
        snap: Snapshot::read(&c).unwrap(),
    };
    let window: u64 = 120_000;
    let w = 120_000_i64;
    let at = |user, seq, now| recall(&c, &view, user, 10, seq, window, now);
    // A plain member cannot recall the owner's message; the window counts from sending.
    assert!(matches!(at(3, 2, 2_000), Err(StorageError::Forbidden)));
    assert!(matches!(at(4, 1, 2_000), Err(StorageError::Forbidden)));
    assert!(matches!(
        at(1, 2, 1_000 + w + 1),
        Err(StorageError::RecallExpired { window_s: 120 })
    ));
    assert!(matches!(at(1, 9, 2_000), Err(StorageError::UnknownMessage)));
    // The admin recalls a member's message; all four members hear of it.
    let done = at(2, 1, 1_000 + w).unwrap();
    assert_eq!((done.message_id, done.recalled_by), (100, 2));
    assert_eq!(done.members, [1, 2, 3, 4]);
    assert!(matches!(
        at(3, 1, 2_000),
        Err(StorageError::AlreadyRecalled)
    ));
    let row: (i32, String, i64) = c
        .query_row(
            "SELECT kind, body, recalled_by FROM messages WHERE id = 100",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(row, (super::RECALLED, String::new(), 2));
    let logged: i64 = c
        .query_row("SELECT message_id FROM recalls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 100);
    // The sender recalls their own.
    assert_eq!(at(1, 2, 2_000).unwrap().message_id, 101);
}

/// A message database at the current schema in `dir`, its search database prepared, and the
/// indexer's connection over both.
fn indexer_setup(dir: &Path) -> (Connection, Connection) {
    let (db, index) = indexer::paths(dir);
    let mut m = Connection::open(&db).unwrap();
    crate::schema::migrate(&mut m).unwrap();
    group_db(&m, 0);
    indexer::prepare(&index).unwrap();
    let ix = Connection::open(&index).unwrap();
    indexer::attach(&ix, &db, "src").unwrap();
    (m, ix)
}

fn recall_now(m: &Connection, user: u64, seq: u64) {
    let recent = Recent::load(m).unwrap();
    let view = View {
        recent: &recent,
        snap: Snapshot::read(m).unwrap(),
    };
    recall(m, &view, user, 10, seq, u64::MAX, 0).unwrap();
}

fn find(ix: &Connection, q: &str) -> Vec<i64> {
    search::tests::matching(ix, &search::fts_query(q).unwrap())
}

#[test]
fn a_message_recalled_after_indexing_leaves_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (m, ix) = indexer_setup(dir.path());
    assert_eq!(search::index_step(&ix, 0, 100).unwrap(), (101, 2));
    assert_eq!(find(&ix, "hello"), [100]);
    recall_now(&m, 3, 1);
    assert!(search::recalls_waiting(&ix).unwrap());
    // No new message: the step only takes the recall.
    assert_eq!(search::index_step(&ix, 101, 100).unwrap(), (101, 0));
    assert!(!search::recalls_waiting(&ix).unwrap());
    assert!(find(&ix, "hello").is_empty());
    assert_eq!(find(&ix, "second"), [101], "the other message stays");
    ix.execute_batch("INSERT INTO message_fts(message_fts) VALUES ('integrity-check')")
        .unwrap();
}

#[test]
fn a_message_recalled_before_indexing_is_never_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let (m, ix) = indexer_setup(dir.path());
    // Message 100 indexed, 101 not yet; both recalled.
    assert_eq!(search::index_step(&ix, 0, 1).unwrap(), (100, 1));
    recall_now(&m, 3, 1);
    recall_now(&m, 1, 2);
    assert_eq!(search::index_step(&ix, 100, 100).unwrap(), (101, 1));
    assert!(find(&ix, "hello").is_empty());
    assert!(find(&ix, "second").is_empty());
    let rows: i64 = ix
        .query_row("SELECT COUNT(*) FROM message_fts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "nothing left, nothing deleted that was not there");
    ix.execute_batch("INSERT INTO message_fts(message_fts) VALUES ('integrity-check')")
        .unwrap();
}

#[test]
fn a_version_1_search_database_is_rebuilt_with_row_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, index) = indexer::paths(dir.path());
    let c = Connection::open(&index).unwrap();
    c.execute_batch(
        "CREATE VIRTUAL TABLE message_fts USING fts5(body, content='');
         CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
         INSERT INTO meta(key, value) VALUES ('indexed_upto', 7);
         INSERT INTO message_fts(rowid, body) VALUES (7, 'old');
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);
    indexer::prepare(&index).unwrap();
    let c = Connection::open(&index).unwrap();
    let marks: Vec<(String, i64)> = c
        .prepare("SELECT key, value FROM meta ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        marks,
        [
            ("indexed_upto".to_owned(), 0),
            ("recalls_upto".to_owned(), 0)
        ]
    );
    c.execute("DELETE FROM message_fts WHERE rowid = 7", [])
        .unwrap();
}

/// Whether the peer wrote any of a range, from either half of the sequence index.
#[test]
fn news_for_the_peer_is_found_in_memory_and_in_the_index() {
    for indexed in [false, true] {
        let c = crate::schema::migrated_in_memory();
        c.execute_batch(
            "INSERT INTO conversations(id, kind, user_a, user_b, created_at_ms) VALUES (7, 1, 1, 2, 0);
             INSERT INTO messages(id, conversation_id, seq, sender_id, kind, body, sent_at_ms)
                 VALUES (10, 7, 1, 1, 0, 'a', 0), (11, 7, 2, 2, 0, 'b', 0),
                        (12, 7, 3, 1, 0, 'c', 0), (13, 7, 4, 1, 0, 'd', 0);",
        )
        .unwrap();
        if indexed {
            c.execute_batch(
                "INSERT INTO message_seq(conversation_id, seq, id)
                     SELECT conversation_id, seq, id FROM messages;
                 UPDATE meta SET value = 13 WHERE key = 'seq_indexed_upto';",
            )
            .unwrap();
        }
        let recent = Recent::load(&c).unwrap();
        let view = View {
            recent: &recent,
            snap: Snapshot::read(&c).unwrap(),
        };
        let in_memory = view.recent(7, crate::recent::Range::ALL).unwrap().len();
        assert_eq!(in_memory, if indexed { 0 } else { 4 });
        let news = |user, before, now| super::news_for_peer(&c, &view, 7, user, before, now);
        assert!(news(1, 0, 4).unwrap(), "indexed: {indexed}");
        assert!(news(1, 1, 2).unwrap());
        assert!(!news(1, 2, 4).unwrap(), "only 1's own after seq 2");
        assert!(news(2, 2, 3).unwrap());
        assert!(!news(2, 1, 2).unwrap());
    }
}
