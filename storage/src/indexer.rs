//! The full-text index's own database file and thread.
//!
//! The index lives in `feige-search.db` next to `feige.db`, so that writing it never takes the
//! message database's write lock: an index transaction (an FTS5 segment flush, sometimes a
//! merge) on the writer's thread or database would make every message queued meanwhile wait
//! for it.
//!
//! The `feige-indexer` thread follows `messages` by id: it reads new messages from the message
//! database (attached as `src`, read only) and indexes them in chunks, recording how far it got
//! in the same transaction, so a crash loses nothing but redone work. It runs at a lower CPU
//! priority than the rest of the server: under load, search catches up later rather than
//! taking a core from message traffic. Under light traffic it indexes on a 100 ms beat, or at
//! once when many messages wait.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::{search, StorageError};

/// File name of the search database, in the data directory.
pub const SEARCH_DB: &str = "feige-search.db";

/// Messages indexed per transaction.
const CHUNK: usize = 512;
/// The writer wakes the indexer early once this many messages wait; fewer wait for the beat,
/// so light traffic does not pay an index transaction (and a new FTS segment) per message.
const EAGER: u64 = 256;
/// How often the indexer looks for new messages: search sees a message at most about this
/// much later under light load.
const TICK: Duration = Duration::from_millis(100);
/// Under load (messages were committed since the indexer last rested), the indexer rests
/// this many times as long as it worked since then: search falls behind during a burst and
/// catches up after it, instead of taking a core from message traffic. Judged over the whole
/// stretch, not per step: under load commits come less often than steps, so most steps see
/// none, and resting only after those that did would barely slow the indexer.
const BUSY_REST: u32 = 9;
/// Pause after a failed step, so a persistent failure does not spin.
const RETRY: Duration = Duration::from_secs(1);
/// Niceness of the indexer thread (Linux threads have their own): 10 gives it about a tenth
/// of the weight of a normal thread when the CPU is contended, all of an idle one.
#[cfg(target_os = "linux")]
const NICENESS: i32 = 10;
/// Page cache of the indexer's connection, in KiB.
const CACHE_KIB: u32 = 16 * 1024;

/// Version of the search database's schema (`PRAGMA user_version`). 2: the index deletes by
/// rowid (`contentless_delete`, for recalled messages) and follows `recalls`; a version 1
/// index (which could only delete with the original text) is rebuilt.
const SCHEMA_VERSION: i64 = 2;

/// The index table of schema version 2.
const CREATE_INDEX: &str = "CREATE VIRTUAL TABLE message_fts USING fts5(body, content='', \
     contentless_delete=1, tokenize='unicode61 remove_diacritics 2');";

/// Creates the search database's schema in `path` if it is new.
///
/// # Errors
/// The file cannot be opened, or it was made by a newer Feige or has a negative schema version.
pub(crate) fn prepare(path: &Path) -> Result<(), StorageError> {
    let mut c = Connection::open(path)?;
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000;")?;
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 0 {
        return Err(StorageError::SchemaUnknown { found: version });
    }
    if version > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        let tx = c.transaction()?;
        tx.execute_batch(&format!(
            "{CREATE_INDEX}
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             INSERT INTO meta(key, value) VALUES ('indexed_upto', 0), ('recalls_upto', 0);
             PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
        tx.commit()?;
    } else if version == 1 {
        // Rebuilt in the background by the indexer, from the first message.
        tracing::info!("search index upgraded to delete recalled messages; rebuilding");
        let tx = c.transaction()?;
        tx.execute_batch(&format!(
            "DROP TABLE message_fts;
             {CREATE_INDEX}
             UPDATE meta SET value = 0 WHERE key = 'indexed_upto';
             INSERT INTO meta(key, value) VALUES ('recalls_upto', 0);
             PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
        tx.commit()?;
    }
    Ok(())
}

/// Attaches the database file at `path` to `c` under `schema` (readers attach the search
/// database as `search`; the indexer attaches the messages as `src`).
pub(crate) fn attach(c: &Connection, path: &Path, schema: &str) -> rusqlite::Result<()> {
    let name = path
        .to_str()
        .ok_or_else(|| rusqlite::Error::InvalidPath(path.to_owned()))?;
    c.execute(&format!("ATTACH DATABASE ?1 AS {schema}"), [name])?;
    Ok(())
}

/// What the writer and the indexer thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Id of the newest committed message (set by the writer).
    last_id: AtomicU64,
    /// Messages committed since start-up (counted by the writer)...
    committed: AtomicU64,
    /// ...and indexed since start-up (counted by the indexer): the difference is how many
    /// wait (ids are clock-based, so their difference is not a count).
    indexed: AtomicU64,
    /// The indexer sleeps until the beat (the writer wakes it only when this is set).
    sleeping: AtomicBool,
    stop: AtomicBool,
}

/// Handle on the `feige-indexer` thread, handed to the writer; dropping it stops the thread.
pub(crate) struct Indexer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Starts the indexer over the message database `db` and the search database `index`
    /// (already [`prepare`]d).
    ///
    /// # Errors
    /// A database cannot be opened, or the thread cannot be started.
    pub(crate) fn start(db: &Path, index: &Path) -> Result<Self, StorageError> {
        let conn = open(db, index)?;
        let last_id: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM src.messages", [], |r| {
                r.get(0)
            })?;
        let last_id = u64::try_from(last_id).unwrap_or(0);
        let shared = Arc::new(Shared::default());
        shared.last_id.store(last_id, Ordering::Relaxed);
        let mut upto = indexed_upto(&conn)?;
        if upto > last_id {
            // The message database is older than the index (restored from a backup, say):
            // the index may name messages that do not exist. Start it over.
            tracing::warn!(
                upto,
                last_id,
                "search index is ahead of the messages; rebuilding"
            );
            search::reset_index(&conn)?;
            upto = 0;
        }
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("feige-indexer".into())
                .spawn(move || run(&conn, &shared, upto))
                .map_err(StorageError::Io)?
        };
        Ok(Indexer {
            shared,
            thread: Some(thread),
        })
    }

    /// Called by the writer after each commit: the newest message id, and how many messages
    /// the commit stored.
    pub(crate) fn committed(&self, last_id: u64, messages: u64) {
        let s = &self.shared;
        s.last_id.store(last_id, Ordering::Release);
        let committed = s.committed.fetch_add(messages, Ordering::Relaxed) + messages;
        if committed.saturating_sub(s.indexed.load(Ordering::Relaxed)) >= EAGER
            && s.sleeping.swap(false, Ordering::AcqRel)
        {
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The indexer's connection: the search database, with the message database attached as
/// `src` for reading.
fn open(db: &Path, index: &Path) -> Result<Connection, StorageError> {
    let c = Connection::open(index)?;
    c.set_prepared_statement_cache_capacity(16);
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;
         PRAGMA cache_size=-{CACHE_KIB}; PRAGMA temp_store=MEMORY;"
    ))?;
    attach(&c, db, "src")?;
    Ok(c)
}

fn indexed_upto(c: &Connection) -> Result<u64, StorageError> {
    let v: Option<i64> = c
        .query_row(
            "SELECT value FROM main.meta WHERE key = 'indexed_upto'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

fn run(conn: &Connection, shared: &Shared, mut upto: u64) {
    lower_priority();
    // Commits counted, and the time, when the indexer last rested or woke.
    let mut before = shared.committed.load(Ordering::Relaxed);
    let mut started = std::time::Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        // A recall writes no message: the beat looks for recalls when nothing else is new.
        let work = shared.last_id.load(Ordering::Acquire) > upto
            || search::recalls_waiting(conn).unwrap_or_else(|e| {
                tracing::error!(error = %e, "search indexer cannot read recalls");
                false
            });
        if work {
            match search::index_step(conn, upto, CHUNK) {
                Ok((mark, n)) => {
                    upto = mark;
                    shared
                        .indexed
                        .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
                    // A full chunk: a backlog, go on; at once if the writer is idle, after a
                    // rest if it is busy. Less: what arrived meanwhile waits for the beat, so
                    // steady light traffic is indexed in few transactions.
                    if n == CHUNK {
                        if shared.committed.load(Ordering::Relaxed) != before {
                            std::thread::park_timeout(started.elapsed() * BUSY_REST);
                            before = shared.committed.load(Ordering::Relaxed);
                            started = std::time::Instant::now();
                        }
                        continue;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "search indexing failed");
                    let _ = conn.execute_batch("ROLLBACK");
                    std::thread::park_timeout(RETRY);
                    continue;
                }
            }
        }
        // Caught up: sleep until the beat, or until the writer sees many messages waiting.
        shared.sleeping.store(true, Ordering::Release);
        if !shared.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(TICK);
        }
        shared.sleeping.store(false, Ordering::Release);
        before = shared.committed.load(Ordering::Relaxed);
        started = std::time::Instant::now();
    }
}

/// Makes the calling thread yield to the server's other threads when the CPU is contended.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::nice(NICENESS) {
        tracing::debug!(error = %e, "cannot lower the indexer's priority");
    }
}

/// Paths of the two databases in a data directory: (messages, search index).
pub(crate) fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("feige.db"), dir.join(SEARCH_DB))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message database holding only what the indexer reads.
    fn messages_db(path: &Path, rows: &[(i64, &str)]) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body TEXT NOT NULL,
                                                  kind INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS recalls (id INTEGER PRIMARY KEY, message_id INTEGER);",
        )
        .unwrap();
        for (id, body) in rows {
            c.execute(
                "INSERT INTO messages(id, body) VALUES (?1, ?2)",
                rusqlite::params![id, body],
            )
            .unwrap();
        }
    }

    /// Waits until the index's mark reaches `upto`; returns the ids matching `term`.
    fn indexed(index: &Path, upto: i64, term: &str) -> Vec<i64> {
        let c = Connection::open(index).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mark: i64 = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'indexed_upto'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if mark == upto {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "mark stuck at {mark}");
            std::thread::sleep(Duration::from_millis(20));
        }
        search::tests::matching(&c, term)
    }

    #[test]
    fn follows_the_messages_and_resumes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (db, index) = paths(dir.path());
        messages_db(&db, &[(1, "alpha one"), (2, "beta two")]);
        prepare(&index).unwrap();
        let ix = Indexer::start(&db, &index).unwrap();
        assert_eq!(indexed(&index, 2, "alpha"), vec![1]);
        messages_db(&db, &[(3, "alpha three")]);
        ix.committed(3, 1);
        assert_eq!(indexed(&index, 3, "alpha"), vec![1, 3]);
        drop(ix);
        // Written while the indexer was stopped: picked up from the recorded mark.
        messages_db(&db, &[(4, "alpha four")]);
        prepare(&index).unwrap();
        let _ix = Indexer::start(&db, &index).unwrap();
        assert_eq!(indexed(&index, 4, "alpha"), vec![1, 3, 4]);
    }

    #[test]
    fn an_index_ahead_of_the_messages_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let (db, index) = paths(dir.path());
        prepare(&index).unwrap();
        {
            // An index of messages this database does not have (restored from a backup).
            let c = Connection::open(&index).unwrap();
            c.execute_batch(
                "INSERT INTO message_fts(rowid, body) VALUES (7, 'ghost'), (9, 'ghost');
                 UPDATE meta SET value = 9 WHERE key = 'indexed_upto';",
            )
            .unwrap();
        }
        messages_db(&db, &[(1, "real ghost"), (2, "real")]);
        let _ix = Indexer::start(&db, &index).unwrap();
        assert_eq!(indexed(&index, 2, "ghost"), vec![1]);
    }

    #[test]
    fn refuses_a_newer_search_database() {
        let dir = tempfile::tempdir().unwrap();
        let (_, index) = paths(dir.path());
        Connection::open(&index)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        assert!(matches!(
            prepare(&index),
            Err(StorageError::SchemaTooNew { found: 99, .. })
        ));
    }

    /// The indexer's connection in miniature: a search database with messages attached.
    fn indexer_conn() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let (db, index) = paths(dir.path());
        let m = Connection::open(&db).unwrap();
        m.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT, kind INTEGER DEFAULT 0);
             CREATE TABLE recalls (id INTEGER PRIMARY KEY, message_id INTEGER);
             INSERT INTO messages(id, body) VALUES (1, '你好世界'), (2, 'hello world'), (3, '世界和平'), (4, 'Worldwide');",
        )
        .unwrap();
        prepare(&index).unwrap();
        let c = Connection::open(&index).unwrap();
        attach(&c, &db, "src").unwrap();
        (dir, c)
    }

    #[test]
    fn index_finds_chinese_and_english() {
        let (_dir, c) = indexer_conn();
        // Steps of `limit` messages; each goes on from the last one's mark.
        assert_eq!(search::index_step(&c, 0, 1).unwrap(), (1, 1));
        assert_eq!(search::index_step(&c, 1, 100).unwrap(), (4, 3));
        assert_eq!(search::index_step(&c, 4, 100).unwrap(), (4, 0));
        let mark: i64 = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'indexed_upto'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(mark, 4);
        let find = |q: &str| search::tests::matching(&c, &search::fts_query(q).unwrap());
        assert_eq!(find("你好"), vec![1]);
        assert_eq!(find("世界"), vec![1, 3]);
        assert_eq!(find("好世"), vec![1]);
        assert_eq!(find("world"), vec![2, 4]);
        assert_eq!(find("hello world"), vec![2]);
        assert!(find("好和").is_empty());
        search::reset_index(&c).unwrap();
        assert!(find("world").is_empty());
        assert_eq!(search::index_step(&c, 0, 100).unwrap(), (4, 4));
        assert_eq!(find("world"), vec![2, 4]);
    }
}
