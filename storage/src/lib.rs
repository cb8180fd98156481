//! Feige storage: the SQLite schema, one group-commit writer thread, and a pool of readers.
//!
//! Writes go through [`Writer`]: a bounded queue drained by one named OS thread that commits
//! many operations per transaction. Reads run on a small r2d2 pool from tokio's blocking threads.
//! Nothing here runs on the reactor.

pub mod account;
mod db;
mod error;
pub mod indexer;
pub mod message;
mod pairs;
mod recent;
mod row;
mod schema;
pub mod search;
mod sequence;
pub mod social;
mod text;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

pub use account::{SessionRecord, UserRecord};
pub use error::StorageError;
pub use message::{ConversationPosition, HistoryPage, HistoryQuery, StoredMessage, SyncPage};
pub use social::DirectPolicy;
pub use writer::{
    CommitSink, Committed, Delivered, Members, NewMessage, Target, Writer, WriterStats,
};

/// A user id (SQLite rowid of `users`).
pub type UserId = u64;
/// A conversation id.
pub type ConversationId = u64;

/// How durable a commit is before the writer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the server process (WAL, `synchronous=NORMAL`).
    #[default]
    Process,
    /// Survives power loss (WAL, `synchronous=FULL`: fsync on every commit).
    Fsync,
}

/// Options for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Commit durability.
    pub durability: Durability,
    /// Most operations committed in one transaction.
    pub max_batch: usize,
    /// Capacity of the writer's queue; senders wait when it is full.
    pub queue_capacity: usize,
    /// Reader connections in the pool.
    pub readers: u32,
    /// SQLite page cache per connection, in KiB.
    pub cache_kib: u32,
    /// Who may send 1:1 messages to whom (enforced by the writer).
    pub direct_policy: DirectPolicy,
    /// Conversations the writer keeps in memory per cache generation (it keeps two): their
    /// last seq and members, and each direct pair's conversation id. A message to one it
    /// lacks costs several index lookups. About 100 bytes per conversation at most.
    pub conversation_cache: usize,
    /// Sequence-index entries the writer holds in memory before it moves them into the
    /// database in one go (see the `recent` module): larger moves write fewer pages per
    /// message; each entry takes about 80 bytes, and a restart reads them back.
    pub index_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Process,
            max_batch: 16384,
            queue_capacity: 16384,
            readers: 4,
            cache_kib: 64 * 1024,
            direct_policy: DirectPolicy::FriendsOnly,
            conversation_cache: 500_000,
            index_batch: 262_144,
        }
    }
}

/// The open store: a reader pool plus the writer's queue.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: Arc<PathBuf>,
    /// The newest part of the sequence index, shared with the writer.
    recent: Arc<recent::Recent>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 128;

pub(crate) fn configure(conn: &Connection, opts: &StoreOptions) -> rusqlite::Result<()> {
    // The storage modules use ~55 cached statements; rusqlite keeps 16 by default, and the
    // writer's hot path alone needs about that many, so any other job evicted some of them.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let sync = match opts.durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=10000; PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY;",
        opts.cache_kib
    ))
}

/// Rows per multi-row INSERT in [`move_rows`].
const ROWS_PER_INSERT: usize = 64;

/// Maps and sets keyed by ids the server assigns, looked up on the writer's per-message path:
/// foldhash's fast hasher instead of SipHash (there is no hash flooding to guard against).
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
/// See [`IdMap`].
pub(crate) type IdSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// Inserts rows of three integers into `into` (a table and its three columns), in the given
/// order, 64 rows per statement, in the caller's transaction: the writer's bulk moves.
///
/// The statements are `INSERT OR ROLLBACK`, which needs no statement journal. A statement
/// that may fail half-way inside a transaction keeps a copy of every page it changes until it
/// ends, and inside a savepoint until the savepoint ends; the moves used to run 64 rows to an
/// `INSERT` in the batch's savepoint, so each page of a large random-keyed index was copied
/// once per statement that touched it, and the copies held: gigabytes per move, a third of
/// the writer's time. Here a conflict (only a bug could cause one) or an I/O error rolls back
/// the whole transaction, which therefore must hold nothing but the move ([`in_transaction`]).
///
/// # Errors
/// Database errors; the transaction is then rolled back, or must be.
pub(crate) fn move_rows(
    c: &Connection,
    into: &str,
    rows: &[(u64, u64, u64)],
) -> Result<(), StorageError> {
    let values = |n: usize| vec!["(?, ?, ?)"; n].join(", ");
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut st = c.prepare_cached(&format!(
            "INSERT OR ROLLBACK INTO {into} VALUES {}",
            values(ROWS_PER_INSERT)
        ))?;
        for chunk in chunks.by_ref() {
            st.execute(rusqlite::params_from_iter(
                chunk
                    .iter()
                    .flat_map(|&(a, b, c)| [a as i64, b as i64, c as i64]),
            ))?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "INSERT OR ROLLBACK INTO {into} VALUES {}",
            values(1)
        ))?;
        for &(a, b, c) in rest {
            st.execute([a as i64, b as i64, c as i64])?;
        }
    }
    Ok(())
}

/// Runs `f` in a write transaction of its own (the caller must not be in one): committed if
/// `f` succeeds, else rolled back (unless a failed `INSERT OR ROLLBACK` did so already).
///
/// # Errors
/// `f`'s error, or the database's.
pub(crate) fn in_transaction<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let r = f(c).and_then(|v| {
        c.prepare_cached("COMMIT")?.execute([])?;
        Ok(v)
    });
    if r.is_err() && !c.is_autocommit() {
        let _ = c.execute_batch("ROLLBACK");
    }
    r
}

/// Creates `dir` private to its owner (0700), or tightens an existing one, and makes the
/// database files `dbs` and their `-wal` and `-shm` files 0600, creating the databases empty
/// before SQLite opens them: SQLite gives the `-wal` and `-shm` files it creates later the
/// database file's mode. They hold every message and password hash.
///
/// # Errors
/// The directory or a file cannot be created, or its mode read or set.
#[cfg(unix)]
fn private_files(dir: &Path, dbs: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            // The mode given to mkdir is masked by the umask; this one is not.
            set_mode(dir, 0o700)?;
        }
        Err(e) => return Err(e),
        Ok(m) => tighten(dir, &m, 0o700)?,
    }
    for db in dbs {
        if !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(db)?;
            set_mode(db, 0o600)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = db.as_os_str().to_owned();
            file.push(suffix);
            let file = Path::new(&file);
            match std::fs::metadata(file) {
                Ok(m) => tighten(file, &m, 0o600)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_files(dir: &Path, _dbs: &[&Path]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Sets `path` to `mode` when its group or others may access it, with a warning. A shared
/// directory (sticky bit, like /tmp) is left alone, with a warning.
#[cfg(unix)]
fn tighten(path: &Path, meta: &std::fs::Metadata, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let was = meta.permissions().mode() & 0o7777;
    if was & 0o077 == 0 {
        return Ok(());
    }
    if meta.is_dir() && was & 0o1000 != 0 {
        tracing::warn!(path = ?path, mode = format!("{was:o}"), "the data directory is shared with other users; use a directory of its own");
        return Ok(());
    }
    set_mode(path, mode)?;
    tracing::warn!(path = ?path, was = format!("{was:o}"), now = format!("{mode:o}"), "other users could read the server's data; permissions tightened");
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database `feige.db` in `dir`, applies migrations and
    /// starts the writer thread, which reports committed messages to `sink`.
    ///
    /// # Errors
    /// The directory or database cannot be opened, or a migration fails.
    pub fn open<C: Send + 'static>(
        dir: &Path,
        opts: StoreOptions,
        sink: Box<dyn CommitSink<C>>,
    ) -> Result<(Store, Writer<C>), StorageError> {
        let (path, index) = indexer::paths(dir);
        private_files(dir, &[&path, &index]).map_err(StorageError::Io)?;
        let mut conn = Connection::open(&path)?;
        configure(&conn, &opts)?;
        schema::migrate(&mut conn)?;
        indexer::prepare(&index)?;
        let init_opts = opts.clone();
        let init_index = index.clone();
        let manager = SqliteConnectionManager::file(&path).with_init(move |c| {
            configure(c, &init_opts)?;
            indexer::attach(c, &init_index, "search")
        });
        let pool = r2d2::Pool::builder()
            .max_size(opts.readers.max(1))
            .min_idle(Some(1))
            .build(manager)?;
        // The writer never checkpoints on its commit path; a checkpointer thread does it.
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit={};",
            writer::WAL_SIZE_LIMIT
        ))?;
        let checkpointer = writer::Checkpointer::start(&path, &opts)?;
        // After the migrations (5 moved the index out), before the writer's first commit.
        let indexer = indexer::Indexer::start(&path, &index)?;
        let recent = Arc::new(recent::Recent::load(&conn)?);
        let writer = Writer::start(conn, &opts, sink, checkpointer, indexer, recent.clone())?;
        Ok((
            Store {
                pool,
                path: Arc::new(path),
                recent,
            },
            writer,
        ))
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled reader connection on tokio's blocking threads.
    ///
    /// # Errors
    /// Whatever `f` returns, or a pool error.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|_| StorageError::WorkerGone)?
    }

    /// Runs `f` in a read transaction on a pooled reader, with the sequence index as that
    /// transaction sees it (see [`recent`]); again, in a new transaction, if a move of the
    /// index overtook it.
    async fn read_view<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&Connection, &sequence::View<'_>) -> Result<T, StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let recent = self.recent.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            // A move takes over a second of steady load to gather, so a second try suffices
            // in practice; the bound only keeps a pathological case from spinning.
            let mut tries = 0;
            loop {
                let tx = conn.transaction()?;
                let view = sequence::View {
                    recent: &recent,
                    snap: recent::Snapshot::read(&tx)?,
                };
                match f(&tx, &view) {
                    Err(StorageError::SnapshotMoved) if tries < 8 => tries += 1,
                    r => return r,
                }
            }
        })
        .await
        .map_err(|_| StorageError::WorkerGone)?
    }

    /// Looks up a user by username (case-insensitive).
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let username = username.to_owned();
        self.read(move |c| account::user_by_name(c, &username))
            .await
    }

    /// Looks up a user by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StorageError> {
        self.read(move |c| account::user_by_id(c, id)).await
    }

    /// Finds the live session whose token hashes to `token_hash`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(
        &self,
        token_hash: Vec<u8>,
    ) -> Result<Option<SessionRecord>, StorageError> {
        self.read(move |c| account::session(c, &token_hash)).await
    }

    /// The 1:1 conversation between two users, if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn direct_conversation(
        &self,
        a: UserId,
        b: UserId,
    ) -> Result<Option<ConversationId>, StorageError> {
        self.read(move |c| pairs::direct_conversation(c, a, b))
            .await
    }

    /// Messages of `query.conversation`, newest first, if `user` is a member.
    ///
    /// # Errors
    /// [`StorageError::Forbidden`] when `user` is not a member; database errors.
    pub async fn history(
        &self,
        user: UserId,
        query: HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        Ok(self.history_page(user, query, usize::MAX).await?.messages)
    }

    /// [`Store::history`] as a page of at most about `max_bytes` of encoded messages (the
    /// first message always), and whether more may follow.
    ///
    /// # Errors
    /// As [`Store::history`].
    pub async fn history_page(
        &self,
        user: UserId,
        query: HistoryQuery,
        max_bytes: usize,
    ) -> Result<message::HistoryPage, StorageError> {
        self.read_view(move |c, v| message::history(c, v, user, &query, max_bytes))
            .await
    }

    /// What `user`'s `device` missed: messages after `positions` (or after the device's acked
    /// cursor for unlisted conversations), oldest first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sync(
        &self,
        user: UserId,
        device: String,
        positions: Vec<ConversationPosition>,
        limit: usize,
    ) -> Result<SyncPage, StorageError> {
        self.sync_within(user, device, positions, limit, usize::MAX)
            .await
    }

    /// [`Store::sync`] with a page of at most about `max_bytes` of encoded messages (the first
    /// message always); a page cut short has `has_more` set.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sync_within(
        &self,
        user: UserId,
        device: String,
        positions: Vec<ConversationPosition>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<SyncPage, StorageError> {
        self.read_view(move |c, v| message::sync(c, v, user, &device, &positions, limit, max_bytes))
            .await
    }

    /// One page of `user`'s conversations, most recently active first (ties: higher id
    /// first), each with its newest message and the exact number of messages from others
    /// after the user's read position; and whether more follow.
    ///
    /// # Errors
    /// Database errors.
    pub async fn conversations(
        &self,
        user: UserId,
        page: social::ConversationPage,
    ) -> Result<(Vec<social::ConversationRecord>, bool), StorageError> {
        self.read_view(move |c, v| social::conversations(c, v, user, page))
            .await
    }

    /// Full-text search over `user`'s conversations, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn search(
        &self,
        user: UserId,
        query: String,
        conversation: Option<ConversationId>,
        before_id: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        self.read(move |c| search::search(c, user, &query, conversation, before_id, limit))
            .await
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc as std_mpsc;

    struct ChannelSink(std_mpsc::Sender<(u32, Result<Delivered, StorageError>)>);
    impl CommitSink<u32> for ChannelSink {
        fn committed(&mut self, batch: &mut Vec<Committed<u32>>) {
            for c in batch.drain(..) {
                let _ = self.0.send((c.ctx, c.result));
            }
        }
    }

    type Outcomes = std_mpsc::Receiver<(u32, Result<Delivered, StorageError>)>;

    /// Opens the store in `dir` with the direct policy `anyone` (the tests' users are
    /// strangers), its message outcomes on the returned channel.
    fn open_store(dir: &std::path::Path) -> (Store, Writer<u32>, Outcomes) {
        open_store_with(dir, StoreOptions::default().index_batch)
    }

    /// [`open_store`], moving the sequence index into the database past `index_batch`.
    fn open_store_with(
        dir: &std::path::Path,
        index_batch: usize,
    ) -> (Store, Writer<u32>, Outcomes) {
        let (tx, rx) = std_mpsc::channel();
        let opts = StoreOptions {
            direct_policy: DirectPolicy::Anyone,
            index_batch,
            ..StoreOptions::default()
        };
        let (store, w) = Store::open(dir, opts, Box::new(ChannelSink(tx))).unwrap();
        (store, w, rx)
    }

    /// Waits for the writer to finish what follows its last batch: the bulk moves run after a
    /// batch's outcomes are reported, before the next batch, which this empty job is.
    async fn settled(w: &Writer<u32>) {
        w.call(|_| Ok(())).await.unwrap();
    }

    async fn user(w: &Writer<u32>, name: &str) -> UserId {
        let name = name.to_owned();
        w.call(move |c| account::insert_user(c, &name, "nick", b"salt", b"hash"))
            .await
            .unwrap()
            .id
    }

    fn msg(ctx: u32, sender: UserId, to: UserId, client: u64) -> NewMessage<u32> {
        NewMessage {
            ctx,
            sender,
            target: Target::Direct(to),
            client_msg_id: client,
            kind: 0,
            text: format!("hello world {ctx}"),
        }
    }

    /// An existing data directory and database files that others may read are tightened to
    /// 0700 and 0600, the WAL and shared-memory files included; a shared directory (sticky
    /// bit) is left as it is.
    #[cfg(unix)]
    #[tokio::test]
    async fn loose_permissions_are_tightened_at_open() {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (_, w, _) = open_store(&data);
        w.send_message(msg(1, 1, 1, 1)).await.unwrap();
        w.shutdown().await;
        drop(w);
        let set = |p: &std::path::Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set(&data, 0o755);
        let files = [
            "feige.db",
            "feige.db-wal",
            "feige.db-shm",
            "feige-search.db",
        ];
        for f in files {
            let p = data.join(f);
            if !p.exists() {
                std::fs::write(&p, b"").unwrap();
            }
            set(&p, 0o644);
        }
        let (_, w, _) = open_store(&data);
        assert_eq!(mode(&data), 0o700);
        for f in files {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
        w.shutdown().await;
        set(dir.path(), 0o1777);
        assert!(private_files(dir.path(), &[]).is_ok());
        assert_eq!(mode(dir.path()), 0o1777);
    }

    /// The writer creates a direct conversation with an insert first; one made meanwhile by
    /// another job (a friend request, say) must be found, not duplicated.
    #[tokio::test]
    async fn direct_conversation_made_by_a_job_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, w, rx) = open_store(dir.path());
        let a = user(&w, "alice").await;
        let b = user(&w, "bob").await;
        let made = w
            .call(move |c| {
                c.execute(
                    "INSERT INTO conversations(kind, user_a, user_b, created_at_ms) VALUES (1, ?1, ?2, 0)",
                    rusqlite::params![a as i64, b as i64],
                )?;
                Ok(c.last_insert_rowid() as u64)
            })
            .await
            .unwrap();
        w.send_message(msg(1, b, a, 1)).await.unwrap();
        w.send_message(msg(2, a, b, 1)).await.unwrap();
        for seq in 1..=2 {
            let d = rx.recv().unwrap().1.unwrap();
            assert_eq!((d.message.conversation_id, d.message.seq), (made, seq));
        }
        assert_eq!(store.direct_conversation(a, b).await.unwrap(), Some(made));
        w.shutdown().await;
    }

    /// Pairs opened by messages stay in the tail until the writer indexes them; either way,
    /// and across a restart with a tail left over, a pair keeps its one conversation.
    #[tokio::test]
    async fn direct_pairs_keep_their_conversation_through_indexing_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let tail_len = |store: &Store| {
            let store = store.clone();
            async move {
                store
                    .read(|c| {
                        let mark = pairs::mark(c)?;
                        Ok(pairs::tail_after(c, mark)?.len())
                    })
                    .await
                    .unwrap()
            }
        };
        let (a, b, c, ab, bc, dave, ad) = {
            let (store, w, rx) = open_store(dir.path());
            let a = user(&w, "alice").await;
            let b = user(&w, "bob").await;
            let c = user(&w, "carol").await;
            w.send_message(msg(1, a, b, 1)).await.unwrap();
            let ab = rx.recv().unwrap().1.unwrap().message.conversation_id;
            assert_eq!(tail_len(&store).await, 1, "a new pair waits in the tail");
            // A job opens a pair too (as a friend accept does).
            let ca = w
                .call(move |conn| Ok(pairs::ensure_direct(conn, c, a, 0)?.0))
                .await
                .unwrap();
            assert_eq!(tail_len(&store).await, 2);
            // A second later the next batch indexes the tail; the pairs are found there.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            w.send_message(msg(2, b, c, 1)).await.unwrap();
            let bc = rx.recv().unwrap().1.unwrap().message.conversation_id;
            settled(&w).await;
            assert_eq!(tail_len(&store).await, 0);
            w.send_message(msg(3, b, a, 2)).await.unwrap();
            let d = rx.recv().unwrap().1.unwrap().message;
            assert_eq!((d.conversation_id, d.seq), (ab, 2));
            // The job's pair, now in the index, then a restart.
            w.send_message(msg(4, c, a, 1)).await.unwrap();
            let d = rx.recv().unwrap().1.unwrap().message;
            assert_eq!((d.conversation_id, d.seq), (ca, 1));
            // A pair left in the tail at the restart.
            let dave = user(&w, "dave").await;
            w.send_message(msg(5, dave, a, 1)).await.unwrap();
            let ad = rx.recv().unwrap().1.unwrap().message.conversation_id;
            w.shutdown().await;
            (a, b, c, ab, bc, dave, ad)
        };
        let (store, w, rx) = open_store(dir.path());
        let ca = store.direct_conversation(a, c).await.unwrap().unwrap();
        assert_eq!(tail_len(&store).await, 1);
        for (ctx, from, to, conv, seq) in [
            (5, a, c, ca, 2),
            (6, c, b, bc, 2),
            (7, a, b, ab, 3),
            (8, a, dave, ad, 2),
        ] {
            w.send_message(msg(ctx, from, to, u64::from(ctx)))
                .await
                .unwrap();
            let d = rx.recv().unwrap().1.unwrap().message;
            assert_eq!((d.conversation_id, d.seq), (conv, seq), "message {ctx}");
        }
        let count: i64 = store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(count, 4, "no pair was opened twice");
        // Alice and Bob's messages are in memory, read back from the messages at the restart.
        let page = |before_seq| HistoryQuery {
            conversation: ab,
            before_seq,
            since_ms: None,
            until_ms: None,
            limit: 2,
        };
        let seqs = |h: Vec<StoredMessage>| h.iter().map(|m| m.seq).collect::<Vec<_>>();
        assert_eq!(seqs(store.history(a, page(None)).await.unwrap()), [3, 2]);
        assert_eq!(seqs(store.history(b, page(Some(2))).await.unwrap()), [1]);
        let synced = store.sync(b, "phone".into(), Vec::new(), 2).await.unwrap();
        assert!(synced.has_more);
        assert_eq!(
            synced
                .messages
                .iter()
                .map(|m| (m.conversation_id, m.seq))
                .collect::<Vec<_>>(),
            [(ab, 1), (ab, 2)]
        );
        w.shutdown().await;
    }

    /// Alice's whole history with Bob, newest first, as seqs.
    async fn all_seqs(store: &Store, a: UserId, b: UserId) -> Vec<u64> {
        let conv = store.direct_conversation(a, b).await.unwrap().unwrap();
        let q = HistoryQuery {
            conversation: conv,
            before_seq: None,
            since_ms: None,
            until_ms: None,
            limit: 10_000,
        };
        store
            .history(a, q)
            .await
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect()
    }

    /// Moves of the sequence index that cannot be written (a fault injected with a trigger
    /// from another connection) fail no batch: every message is acked with its seq and read
    /// back from memory. Once the fault clears, the next move takes them all, and a restart
    /// finds every message.
    #[tokio::test]
    async fn a_move_that_cannot_be_written_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, w, rx) = open_store_with(dir.path(), 10);
        let a = user(&w, "alice").await;
        let b = user(&w, "bob").await;
        let other = rusqlite::Connection::open(dir.path().join("feige.db")).unwrap();
        other
            .busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        other
            .execute_batch(
                "CREATE TRIGGER fault_seq BEFORE INSERT ON message_seq
                     BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
            )
            .unwrap();
        for i in 1..=25u32 {
            w.send_message(msg(i, a, b, i as u64)).await.unwrap();
            assert_eq!(rx.recv().unwrap().1.unwrap().message.seq, i as u64);
        }
        let indexed = |c: &rusqlite::Connection| -> i64 {
            c.query_row("SELECT count(*) FROM message_seq", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(indexed(&other), 0);
        assert_eq!(
            all_seqs(&store, a, b).await,
            (1..=25).rev().collect::<Vec<_>>()
        );
        other.execute_batch("DROP TRIGGER fault_seq;").unwrap();
        // The writer tries again a second after the failure.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        w.send_message(msg(26, a, b, 26)).await.unwrap();
        assert_eq!(rx.recv().unwrap().1.unwrap().message.seq, 26);
        settled(&w).await;
        assert_eq!(indexed(&other), 26);
        assert_eq!(
            all_seqs(&store, a, b).await,
            (1..=26).rev().collect::<Vec<_>>()
        );
        w.shutdown().await;
        drop(store);
        let (store, w, rx) = open_store_with(dir.path(), 10);
        assert_eq!(
            all_seqs(&store, a, b).await,
            (1..=26).rev().collect::<Vec<_>>()
        );
        w.send_message(msg(27, a, b, 27)).await.unwrap();
        assert_eq!(rx.recv().unwrap().1.unwrap().message.seq, 27);
        w.shutdown().await;
    }

    /// Readers racing the writer's moves (one every 8 messages) see every message exactly
    /// once: a page read while entries leave memory for the database has no gap and no
    /// duplicate.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_racing_moves_see_every_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, w, rx) = open_store_with(dir.path(), 8);
        let a = user(&w, "alice").await;
        let b = user(&w, "bob").await;
        w.send_message(msg(0, a, b, 1)).await.unwrap();
        rx.recv().unwrap().1.unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut pages = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let seqs = all_seqs(&store, a, b).await;
                    let top = seqs[0];
                    assert_eq!(seqs, (1..=top).rev().collect::<Vec<_>>());
                    pages += 1;
                }
                pages
            })
        };
        for i in 2..=400u32 {
            w.send_message(msg(i, a, b, i as u64)).await.unwrap();
            assert_eq!(rx.recv().unwrap().1.unwrap().message.seq, i as u64);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.await.unwrap() > 0);
        assert_eq!(
            all_seqs(&store, a, b).await,
            (1..=400).rev().collect::<Vec<_>>()
        );
        w.shutdown().await;
    }

    #[tokio::test]
    async fn group_commit_assigns_gapless_seqs_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, w, rx) = open_store(dir.path());
        let a = user(&w, "alice").await;
        let b = user(&w, "bob").await;
        assert!(matches!(
            w.call(|c| account::insert_user(c, "ALICE", "n", b"s", b"h"))
                .await,
            Err(StorageError::UsernameTaken)
        ));
        for i in 1..=100u32 {
            w.send_message(msg(i, a, b, 1000 + i as u64)).await.unwrap();
        }
        // A resend of client id 1005 and a message to a missing user.
        w.send_message(msg(101, a, b, 1005)).await.unwrap();
        w.send_message(msg(102, a, 999, 1)).await.unwrap();
        w.send_message(msg(103, a, a, 2)).await.unwrap();
        let mut seqs = Vec::new();
        for _ in 0..103 {
            let (ctx, r) = rx.recv().unwrap();
            match ctx {
                101 => {
                    let d = r.unwrap();
                    assert!(d.duplicate);
                    assert_eq!(d.message.seq, 5);
                    assert_eq!(d.message.to_user, b);
                }
                102 => assert!(matches!(r, Err(StorageError::UnknownUser))),
                103 => assert!(matches!(r, Err(StorageError::SelfMessage))),
                _ => {
                    let d = r.unwrap();
                    assert!(!d.duplicate);
                    assert_eq!(d.members.as_slice(), &[a, b]);
                    seqs.push(d.message.seq);
                }
            }
        }
        assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
        assert!(w.stats().batches.load(Ordering::Relaxed) < 100, "batched");
        let conv = store.direct_conversation(b, a).await.unwrap().unwrap();
        let hist = store
            .history(
                b,
                HistoryQuery {
                    conversation: conv,
                    before_seq: Some(51),
                    since_ms: None,
                    until_ms: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            hist.iter().map(|m| m.seq).collect::<Vec<_>>(),
            (41..=50).rev().collect::<Vec<_>>()
        );
        assert!(matches!(
            store
                .history(
                    999,
                    HistoryQuery {
                        conversation: conv,
                        before_seq: None,
                        since_ms: None,
                        until_ms: None,
                        limit: 10
                    }
                )
                .await,
            Err(StorageError::Forbidden)
        ));
        // Sync in pages of 30 from position 10.
        let mut pos = vec![ConversationPosition {
            conversation_id: conv,
            seq: 10,
        }];
        let mut got = Vec::new();
        loop {
            let page = store
                .sync(b, "phone".into(), pos.clone(), 30)
                .await
                .unwrap();
            for m in &page.messages {
                pos[0].seq = m.seq;
                got.push(m.seq);
            }
            if !page.has_more {
                break;
            }
        }
        assert_eq!(got, (11..=100).collect::<Vec<u64>>());
        // Device cursor: unlisted conversations start after the acked position.
        let device_pos = vec![ConversationPosition {
            conversation_id: conv,
            seq: 98,
        }];
        w.ack(b, "phone".into(), device_pos).await.unwrap();
        let page = store.sync(b, "phone".into(), vec![], 30).await.unwrap();
        assert_eq!(
            page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![99, 100]
        );
        // A cursor past the end stops at the newest message, and a lower one leaves it there.
        for seq in [u64::MAX, 2] {
            let at = vec![ConversationPosition {
                conversation_id: conv,
                seq,
            }];
            w.ack(b, "phone".into(), at).await.unwrap();
        }
        let cursor: i64 = store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT seq FROM device_cursors WHERE user_id = ?1 AND device = 'phone'",
                    [b as i64],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(cursor, 100);
        w.shutdown().await;
        assert!(w.send_message(msg(1, a, b, 0)).await.is_err());

        // Reopen: sequences continue, the index catches up, search works.
        let (store, w, rx) = open_store(dir.path());
        w.send_message(msg(200, b, a, 1)).await.unwrap();
        let (_, r) = rx.recv().unwrap();
        assert_eq!(r.unwrap().message.seq, 101);
        let _ = w.call(|_| Ok(())).await;
        let mut found = Vec::new();
        for _ in 0..100 {
            found = store
                .search(a, "world 200".into(), None, None, 10)
                .await
                .unwrap();
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].seq, 101);
        assert!(store
            .search(999, "world".into(), None, None, 10)
            .await
            .unwrap()
            .is_empty());
        w.shutdown().await;
    }
}
