//! The group-commit writer: one named OS thread that owns the only write connection.
//!
//! Operations queue on a bounded channel. The thread takes everything queued (up to
//! `max_batch`), runs it in one transaction, commits, and only then reports the results: message
//! results go to the [`CommitSink`] in commit order, other operations' replies go to their
//! callers. So an ack can never precede its commit, and one fsync covers a whole batch.
//! After each commit it tells the search indexer how far messages go ([`crate::indexer`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

mod checkpoint;

pub(crate) use checkpoint::{run_cached, Checkpointer, WAL_SIZE_LIMIT};
use checkpoint::{CHECKPOINT_EVERY, CHECKPOINT_EVERY_OPS, CHECKPOINT_MIN_INTERVAL};

use crate::indexer::Indexer;
use crate::message::{message_row, pair_of, StoredMessage, MESSAGE_COLUMNS};
use crate::recent::{Recent, Slot, Snapshot};
use crate::sequence::View;
use crate::social::{DirectPolicy, Gate};
use crate::{now_ms, ConversationId, IdMap as HashMap, StorageError, StoreOptions, UserId};

/// Where a new message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The 1:1 conversation with this user (created on first message).
    Direct(UserId),
    /// An existing conversation the sender is a member of.
    Conversation(ConversationId),
}

/// A message to store; `ctx` travels with it to the [`CommitSink`] (e.g. where to send the ack).
#[derive(Debug)]
pub struct NewMessage<C> {
    /// Caller's context, handed back with the result.
    pub ctx: C,
    /// Sender.
    pub sender: UserId,
    /// Destination.
    pub target: Target,
    /// Sender-chosen id for idempotent resends; 0 = none.
    pub client_msg_id: u64,
    /// Message kind (protocol enum number).
    pub kind: i32,
    /// Body text.
    pub text: String,
}

/// A committed (or refused) message and who should hear of it.
#[derive(Debug)]
pub struct Delivered {
    /// The stored message (the original one for a duplicate).
    pub message: StoredMessage,
    /// True when the client id was already stored; nothing new was written.
    pub duplicate: bool,
    /// Members of the conversation.
    pub members: Members,
}

/// A conversation's members, sorted by id. A direct conversation's are its pair, held inline:
/// no allocation per conversation and no shared count touched per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// A direct conversation: the pair, smaller id first.
    Pair([UserId; 2]),
    /// Any other conversation.
    Group(Arc<[UserId]>),
}

impl Members {
    /// The members, sorted.
    pub fn as_slice(&self) -> &[UserId] {
        match self {
            Members::Pair(p) => p,
            Members::Group(g) => g,
        }
    }

    /// The direct conversation's pair, smaller id first; None for other kinds.
    pub fn pair(&self) -> Option<(UserId, UserId)> {
        match self {
            Members::Pair([a, b]) => Some((*a, *b)),
            Members::Group(_) => None,
        }
    }

    fn direct(a: UserId, b: UserId) -> Self {
        Members::Pair([a.min(b), a.max(b)])
    }
}

/// One message's outcome, reported after its transaction committed.
#[derive(Debug)]
pub struct Committed<C> {
    /// The context given in [`NewMessage::ctx`].
    pub ctx: C,
    /// The stored message, or why it was refused.
    pub result: Result<Delivered, StorageError>,
}

/// Receives message outcomes on the writer thread, in commit order, right after each commit.
/// It must not block: hand work to queues.
pub trait CommitSink<C>: Send {
    /// Called once per committed batch; drain `batch`.
    fn committed(&mut self, batch: &mut Vec<Committed<C>>);
}

/// Counters for benchmarks and logs.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Operations committed.
    pub ops: AtomicU64,
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A queued call: run on the batch's connection, or, given `None`, dropped unrun because the
/// batch failed first. Returns the reply to send after the commit, and `Err` when the batch's
/// transaction can no longer be trusted (a savepoint statement failed), so the batch must fail.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (Reply, Result<(), String>) + Send>;

/// Wraps `f` as a [`Job`] whose outcome (after the commit) arrives on the receiver.
fn job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T, StorageError>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
{
    let (reply_tx, reply_rx) = oneshot::channel::<Result<T, StorageError>>();
    let job: Job = Box::new(move |conn: Option<&Connection>| {
        let (result, intact) = match conn {
            Some(conn) => in_savepoint(conn, f),
            None => (Err(StorageError::CommitFailed("not run".into())), Ok(())),
        };
        let reply: Reply = Box::new(move |commit: Result<(), String>| {
            let out = match (commit, result) {
                (Ok(()), r) => r,
                (Err(e), _) => Err(StorageError::CommitFailed(e)),
            };
            let _ = reply_tx.send(out);
        });
        (reply, intact)
    });
    (job, reply_rx)
}

enum Op<C> {
    Message(NewMessage<C>),
    /// A job; `true` when it may change friendships or blocks (drops the [`Gate`] cache).
    Call(Job, bool),
    Shutdown,
}

/// Handle to the writer thread. Cheap to clone.
pub struct Writer<C> {
    tx: mpsc::Sender<Op<C>>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    stats: Arc<WriterStats>,
    /// The newest part of the sequence index, for jobs that read it.
    recent: Arc<Recent>,
}

impl<C> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
            thread: self.thread.clone(),
            stats: self.stats.clone(),
            recent: self.recent.clone(),
        }
    }
}

impl<C> std::fmt::Debug for Writer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats)
            .finish()
    }
}

impl<C: Send + 'static> Writer<C> {
    pub(crate) fn start(
        conn: Connection,
        opts: &StoreOptions,
        sink: Box<dyn CommitSink<C>>,
        checkpointer: Checkpointer,
        indexer: Indexer,
        recent: Arc<Recent>,
    ) -> Result<Self, StorageError> {
        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let state = State::load(
            &conn,
            opts.direct_policy,
            opts.conversation_cache,
            recent.clone(),
            opts.index_batch,
        )?;
        let mut worker = Worker {
            lookups: Vec::new(),
            conn,
            rx,
            sink,
            state,
            max_batch: opts.max_batch.max(1),
            stats: stats.clone(),
            checkpointer,
            indexer,
            since_poke: 0,
            ops_since_poke: 0,
            last_poke: std::time::Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("feige-writer".into())
            .spawn(move || worker.run())
            .map_err(StorageError::Io)?;
        Ok(Writer {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
            stats,
            recent,
        })
    }

    /// Queues a message, waiting while the queue is full. Its outcome reaches the sink.
    ///
    /// # Errors
    /// [`StorageError::WorkerGone`] once the writer has shut down.
    pub async fn send_message(&self, msg: NewMessage<C>) -> Result<(), StorageError> {
        self.tx
            .send(Op::Message(msg))
            .await
            .map_err(|_| StorageError::WorkerGone)
    }

    /// Runs `f` inside the next batch's transaction (in its own savepoint, so a failure undoes
    /// only `f`'s writes) and returns its result after the batch has committed.
    ///
    /// # Errors
    /// `f`'s error, [`StorageError::CommitFailed`], or [`StorageError::WorkerGone`].
    pub async fn call<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        self.run_job(f, false).await
    }

    /// Moves `user`'s read position in `conversation` forward to `seq` (0 or past the end =
    /// the newest message; it never moves back); returns it with the messages from others
    /// still unread.
    ///
    /// # Errors
    /// [`StorageError::Forbidden`] when `user` is not a member; as [`Writer::call`].
    pub async fn mark_read(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<crate::social::ReadPositionRecord, StorageError> {
        let recent = self.recent.clone();
        self.call(move |c| {
            // The writer's own transaction: every committed entry is in memory, none of this
            // batch's yet (as none of its messages were in the index before the commit).
            let view = View {
                recent: &recent,
                snap: Snapshot::read(c)?,
            };
            crate::social::mark_read(c, &view, user, conversation, seq)
        })
        .await
    }

    /// Stores `user`'s `device` cursors (`Ack`): each moves forward only, and no further than
    /// its conversation's newest message; positions in conversations `user` is not in are
    /// ignored.
    ///
    /// # Errors
    /// As [`Writer::call`].
    pub async fn ack(
        &self,
        user: UserId,
        device: String,
        positions: Vec<crate::ConversationPosition>,
    ) -> Result<(), StorageError> {
        let recent = self.recent.clone();
        self.call(move |c| {
            // As in `mark_read`: the writer's own transaction sees every committed entry.
            let view = View {
                recent: &recent,
                snap: Snapshot::read(c)?,
            };
            crate::message::set_cursors(c, &view, user, &device, &positions)
        })
        .await
    }

    /// Like [`Writer::call`], for jobs that change friendships or blocks (see
    /// [`crate::social`]): messages queued after it are judged by the new graph.
    ///
    /// # Errors
    /// As [`Writer::call`].
    pub async fn call_graph<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        self.run_job(f, true).await
    }

    async fn run_job<T, F>(&self, f: F, graph: bool) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let (job, reply_rx) = job(f);
        self.tx
            .send(Op::Call(job, graph))
            .await
            .map_err(|_| StorageError::WorkerGone)?;
        reply_rx.await.map_err(|_| StorageError::WorkerGone)?
    }

    /// Commits everything queued so far, stops the thread and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Op::Shutdown).await;
        let handle = self.thread.lock().take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Commit counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// Runs `f` in a savepoint: released if `f` succeeds, rolled back to if it fails. Returns
/// `f`'s result, and `Err` when a savepoint statement failed: the transaction then holds an
/// unknown part of `f`'s writes (or was rolled back by a failed `INSERT OR ROLLBACK`), and
/// only failing the whole batch keeps the replies true.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> (Result<T, StorageError>, Result<(), String>) {
    if let Err(e) = conn.execute_batch("SAVEPOINT op") {
        let e = e.to_string();
        return (Err(StorageError::CommitFailed(e.clone())), Err(e));
    }
    let r = f(conn);
    let end = if r.is_ok() {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    match conn.execute_batch(end) {
        Ok(()) => (r, Ok(())),
        Err(e) => (
            Err(StorageError::CommitFailed(e.to_string())),
            Err(e.to_string()),
        ),
    }
}

/// Cached facts about a conversation, owned by the writer thread (32 bytes for a direct one).
struct Conv {
    last_seq: u64,
    members: Members,
}

/// In-memory state that only the writer changes: the id clock and conversation caches.
struct State {
    last_id: u64,
    direct: Generations<(UserId, UserId), ConversationId>,
    /// `direct` was loaded with every direct conversation; while it has lost none since, a
    /// pair it lacks has no conversation, and a new pair needs no lookup in the index.
    direct_all: bool,
    convs: Generations<ConversationId, Conv>,
    gate: Gate,
    /// Every direct conversation above the pair index's mark (see [`crate::pairs`]), by pair:
    /// a pair missing here and from the index has no conversation yet.
    tail: HashMap<(UserId, UserId), ConversationId>,
    /// The newest conversation id the writer knows of; a job that opened conversations
    /// (a friend request) moves it, and [`State::after_job`] adds them to `tail`.
    seen: ConversationId,
    /// When the tail was last moved into the index.
    indexed_at: std::time::Instant,
    /// `tail` may lack a conversation a job opened (reading them failed): look pairs up in
    /// the database, tail included, until the next move into the index.
    stale: bool,
    /// The committed sequence-index entries not yet in `message_seq` (see [`crate::recent`]).
    recent: Arc<Recent>,
    /// [`PAIRS_INDEX_AT`] (smaller in tests) and [`StoreOptions::index_batch`]: entries held
    /// in memory past which the writer moves them into `message_seq`. A move writes most
    /// pages of `message_seq` once, so larger moves put more messages on each page.
    pairs_index_at: usize,
    seq_index_at: usize,
    /// This batch's sequence-index entries: published to `recent` after the commit.
    pending: Vec<(ConversationId, Slot)>,
    /// When a move last failed: the next waits [`MOVE_RETRY`].
    move_failed_at: Option<std::time::Instant>,
}

/// Direct pairs in the tail past which the writer moves them into the index (between batches,
/// in its own transaction). Larger moves put more pairs on each index page they write; readers scan the
/// tail, so it stays bounded.
const PAIRS_INDEX_AT: usize = 16_384;
/// A smaller tail is moved once it is this old, so that a quiet server's tail is short.
const PAIRS_INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// After a failed move into `message_seq`, the writer tries again after this long (and
/// meanwhile the entries stay in memory, where readers find them).
const MOVE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A map bounded to two generations of `cap` entries: when the young one is full it becomes
/// the old one (dropping the previous old one), and a hit in the old one moves back to the
/// young one. So the recently used entries survive a turnover, unlike a cache that is cleared
/// when full and then misses on every busy conversation at once.
struct Generations<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    cap: usize,
    /// A turnover has dropped entries: a miss no longer means the key was never inserted.
    lost: bool,
}

impl<K: std::hash::Hash + Eq + Copy, V> Generations<K, V> {
    fn new(cap: usize) -> Self {
        Generations {
            young: HashMap::default(),
            old: HashMap::default(),
            cap: cap.max(1),
            lost: false,
        }
    }

    fn insert(&mut self, k: K, v: V) {
        if self.young.len() >= self.cap && !self.young.contains_key(&k) {
            // The dropped generation's table becomes the new young one: already as large as
            // a full generation needs and in memory, so the new one never grows by copying
            // (growing 200k-entry maps by doubling, with fresh pages each time, was 8 % of
            // the writer at C=1000). The first generation grows as entries come, so a small
            // server's caches stay small.
            let mut recycled = std::mem::take(&mut self.old);
            self.lost |= !recycled.is_empty();
            recycled.clear();
            self.old = std::mem::replace(&mut self.young, recycled);
        }
        self.young.insert(k, v);
    }

    /// The entry for `k`, without moving it between generations.
    fn peek(&self, k: &K) -> Option<&V> {
        self.young.get(k).or_else(|| self.old.get(k))
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        if !self.young.contains_key(k) {
            let v = self.old.remove(k)?;
            self.insert(*k, v);
        }
        self.young.get_mut(k)
    }
}

impl State {
    fn load(
        conn: &Connection,
        policy: DirectPolicy,
        cache: usize,
        recent: Arc<Recent>,
        index_batch: usize,
    ) -> Result<Self, StorageError> {
        // Past the mark too: a message at or below it would be taken as moved into the index.
        let last_id: i64 = conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM messages), 0),
                        (SELECT value FROM meta WHERE key = 'seq_indexed_upto'))",
            [],
            |r| r.get(0),
        )?;
        // The newest direct conversations, so that a message to an existing one needs no
        // lookup; a pair missing here is created (or found) by `direct_conv`.
        let mut direct = Generations::new(cache);
        let mut st = conn.prepare(
            "SELECT id, user_a, user_b FROM conversations WHERE kind = 1 ORDER BY id DESC LIMIT ?1",
        )?;
        let mut rows = st.query([cache as i64])?;
        let mut loaded = 0;
        while let Some(r) = rows.next()? {
            loaded += 1;
            let (id, a, b): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            direct.insert((a as UserId, b as UserId), id as ConversationId);
        }
        let tail = crate::pairs::tail_after(conn, crate::pairs::mark(conn)?)?
            .into_iter()
            .collect();
        Ok(State {
            last_id: last_id as u64,
            direct,
            direct_all: loaded < cache,
            convs: Generations::new(cache),
            gate: Gate::new(policy),
            tail,
            seen: crate::pairs::newest(conn)?,
            indexed_at: std::time::Instant::now(),
            stale: false,
            recent,
            pairs_index_at: PAIRS_INDEX_AT,
            seq_index_at: index_batch.max(1),
            pending: Vec::new(),
            move_failed_at: None,
        })
    }

    /// After a job: conversations it opened join the tail, so that a message to the pair
    /// finds them instead of opening a second one.
    fn after_job(&mut self, c: &Connection) -> Result<(), StorageError> {
        let newest = crate::pairs::newest(c)?;
        if newest > self.seen {
            for (pair, id) in crate::pairs::tail_after(c, self.seen)? {
                self.tail.insert(pair, id);
                self.direct.insert(pair, id);
            }
            self.seen = newest;
        }
        Ok(())
    }

    /// Reads the cache entry a message will use, for the next [`WARM_AHEAD`] messages at once:
    /// the caches hold up to a million entries, far beyond the CPU's caches, and a miss met
    /// while a message runs waits alone, behind SQLite work; met in a row of lookups that do
    /// not depend on each other, the misses overlap. At C=1000 they were a tenth of the
    /// writer's time.
    /// Returns a value read from the entry, for `black_box`.
    fn warm(&self, lookup: Lookup) -> u64 {
        let id = match lookup {
            Lookup::Pair(a, b) => self.direct.peek(&(a, b)).copied(),
            Lookup::Conv(id) => Some(id),
            Lookup::Nothing => None,
        };
        id.and_then(|id| self.convs.peek(&id))
            .map_or(0, |conv| conv.last_seq)
    }

    /// Between batches (outside a transaction): the bulk moves that are due.
    fn index(&mut self, c: &Connection) {
        self.index_pairs(c);
        self.index_seqs(c);
    }

    /// After the batch committed: its index entries join the others in memory. Before the
    /// commit is reported, so that a reader that sees a pushed message sees its entry.
    fn committed(&mut self) {
        self.recent.publish(&self.pending);
        self.pending.clear();
    }

    /// After the batch failed: nothing of it is in the database, so none of it is published.
    fn rolled_back(&mut self) {
        self.pending.clear();
    }

    /// Moves the tail into the pair index when it is long or old (see [`crate::pairs`]).
    fn index_pairs(&mut self, c: &Connection) {
        if !self.stale
            && (self.tail.is_empty()
                || (self.tail.len() < self.pairs_index_at
                    && self.indexed_at.elapsed() < PAIRS_INDEX_EVERY))
        {
            return;
        }
        // The tail in memory is all of it unless a job's pairs could not be read back; then
        // it is read again from the database first.
        if self.stale {
            let reread = crate::pairs::mark(c).and_then(|m| crate::pairs::tail_after(c, m));
            match reread {
                Ok(tail) => self.tail = tail.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the direct pairs' tail");
                    return;
                }
            }
        }
        match crate::pairs::index_pairs(c, &self.tail) {
            Ok(upto) => {
                self.tail.clear();
                self.seen = self.seen.max(upto);
                self.stale = false;
                self.indexed_at = std::time::Instant::now();
            }
            Err(e) => tracing::warn!(error = %e, "indexing direct pairs failed"),
        }
    }

    /// Between batches (outside a transaction): moves the entries in memory into
    /// `message_seq` when there are many (see [`crate::recent`]).
    fn index_seqs(&mut self, c: &Connection) {
        if self.recent.len() < self.seq_index_at
            || self
                .move_failed_at
                .is_some_and(|t| t.elapsed() < MOVE_RETRY)
        {
            return;
        }
        let entries = self.recent.sorted();
        // Every committed message's id is at most the newest id handed out.
        let mark = self.last_id;
        let started = std::time::Instant::now();
        match crate::sequence::move_into_index(c, &entries, mark) {
            Ok(()) => {
                self.recent.moved(mark);
                self.move_failed_at = None;
                tracing::debug!(
                    entries = entries.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "moved the sequence index into the database"
                );
            }
            Err(e) => {
                self.move_failed_at = Some(std::time::Instant::now());
                tracing::warn!(error = %e, "moving the sequence index into the database failed");
            }
        }
    }

    /// Next server id: milliseconds since the epoch in the high bits, a counter in the low 16;
    /// strictly increasing even if the clock steps back.
    fn next_id(&mut self, now: i64) -> u64 {
        let candidate = (now.max(0) as u64) << 16;
        self.last_id = candidate.max(self.last_id + 1);
        self.last_id
    }

    fn conv(&mut self, c: &Connection, id: ConversationId) -> Result<&mut Conv, StorageError> {
        if self.convs.get_mut(&id).is_none() {
            let (kind, a, b, last_seq): (i64, Option<i64>, Option<i64>, i64) = c
                .prepare_cached(&format!(
                    "SELECT kind, user_a, user_b, {} FROM conversations WHERE id = ?1",
                    crate::sequence::INDEXED_LAST_SEQ
                ))?
                .query_row([id as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?
                .ok_or(StorageError::UnknownConversation)?;
            // Newer entries are in memory, this batch's in `pending` (a conversation dropped
            // from the cache within one batch: only with a batch far beyond the cache's size).
            let last_seq = self
                .pending
                .iter()
                .filter(|e| e.0 == id)
                .map(|e| e.1.seq)
                .chain(self.recent.newest_seq(id))
                .fold(last_seq as u64, u64::max);
            // A direct conversation's members are its pair, always.
            let members = match pair_of(kind, a, b) {
                Some((a, b)) => Members::direct(a, b),
                None => Members::Group(
                    c.prepare_cached(
                        "SELECT user_id FROM members WHERE conversation_id = ?1 ORDER BY user_id",
                    )?
                    .query_map([id as i64], |r| r.get::<_, i64>(0).map(|v| v as u64))?
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
                ),
            };
            self.convs.insert(id, Conv { last_seq, members });
        }
        self.convs
            .get_mut(&id)
            .ok_or(StorageError::UnknownConversation)
    }

    fn direct_conv(
        &mut self,
        c: &Connection,
        sender: UserId,
        to: UserId,
        now: i64,
    ) -> Result<ConversationId, StorageError> {
        if sender == to {
            return Err(StorageError::SelfMessage);
        }
        let key = (sender.min(to), sender.max(to));
        if let Some(id) = self.direct.get_mut(&key) {
            return Ok(*id);
        }
        // The gate has checked that `to` exists. A conversation older than the cached ones is
        // in the tail (all of which is in memory) or in the index.
        let found = match self.tail.get(&key) {
            Some(id) => Some(*id),
            None if self.stale => crate::pairs::direct_conversation(c, key.0, key.1)?,
            None if self.direct_all && !self.direct.lost => None,
            None => crate::pairs::indexed(c, key.0, key.1)?,
        };
        let (id, created) = match found {
            Some(id) => (id, false),
            None => (crate::pairs::insert(c, key.0, key.1, now)?, true),
        };
        if created {
            self.tail.insert(key, id);
            self.seen = self.seen.max(id);
            self.convs.insert(
                id,
                Conv {
                    last_seq: 0,
                    members: Members::direct(key.0, key.1),
                },
            );
        }
        self.direct.insert(key, id);
        Ok(id)
    }

    /// The stored message `m` resends (same sender and client id), as a duplicate result.
    fn original<C>(
        &mut self,
        c: &Connection,
        m: &NewMessage<C>,
    ) -> Result<Option<Delivered>, StorageError> {
        if m.client_msg_id == 0 {
            return Ok(None);
        }
        let found = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.sender_id = ?1 AND m.client_msg_id = ?2"
            ))?
            .query_row(params![m.sender as i64, m.client_msg_id as i64], |r| {
                message_row(r, None)
            })
            .optional()?;
        let Some(mut original) = found else {
            return Ok(None);
        };
        let conv = self.conv(c, original.conversation_id)?;
        if let Some((a, b)) = conv.members.pair() {
            original.to_user = if original.from_user == a { b } else { a };
        }
        Ok(Some(Delivered {
            message: original,
            duplicate: true,
            members: conv.members.clone(),
        }))
    }

    fn insert<C>(
        &mut self,
        c: &Connection,
        m: &mut NewMessage<C>,
        now: i64,
    ) -> Result<Delivered, StorageError> {
        // A resend of an already stored message gets its original ack even where the send
        // would now be refused (the recipient has since blocked the sender, say).
        let conv_id = match m.target {
            Target::Direct(to) => {
                if let Err(e) = self.gate.check(c, m.sender, to) {
                    return self.original(c, m)?.ok_or(e);
                }
                self.direct_conv(c, m.sender, to, now)?
            }
            Target::Conversation(id) => {
                if let Some((a, b)) = self.conv(c, id)?.members.pair() {
                    if m.sender == a || m.sender == b {
                        let peer = if m.sender == a { b } else { a };
                        if let Err(e) = self.gate.check(c, m.sender, peer) {
                            return self.original(c, m)?.ok_or(e);
                        }
                    }
                }
                id
            }
        };
        let id = self.next_id(now);
        let conv = self.conv(c, conv_id)?;
        if conv.members.as_slice().binary_search(&m.sender).is_err() {
            // A resend of a message stored before the sender left is still a duplicate.
            return match self.original(c, m)? {
                Some(d) => Ok(d),
                None => Err(StorageError::Forbidden),
            };
        }
        let seq = conv.last_seq + 1;
        let client_id = (m.client_msg_id != 0).then_some(m.client_msg_id as i64);
        // The unique (sender, client_msg_id) index finds resends: a conflict inserts nothing,
        // and only then is the original looked up (one index probe per message, not two).
        let inserted = c
            .prepare_cached(
                "INSERT INTO messages(id, conversation_id, seq, sender_id, client_msg_id, kind, body, sent_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(sender_id, client_msg_id) DO NOTHING",
            )?
            .execute(params![
                id as i64,
                conv_id as i64,
                seq as i64,
                m.sender as i64,
                client_id,
                m.kind,
                m.text,
                now
            ])?;
        if inserted == 0 {
            return self
                .original(c, m)?
                .ok_or_else(|| StorageError::CommitFailed("dedupe conflict without a row".into()));
        }
        conv.last_seq = seq;
        let to_user = match conv.members.pair() {
            Some((a, b)) => {
                if m.sender == a {
                    b
                } else {
                    a
                }
            }
            None => 0,
        };
        let members = conv.members.clone();
        self.pending.push((
            conv_id,
            Slot {
                seq,
                id,
                sender: m.sender,
            },
        ));
        Ok(Delivered {
            message: StoredMessage {
                id,
                conversation_id: conv_id,
                seq,
                from_user: m.sender,
                to_user,
                client_msg_id: m.client_msg_id,
                kind: m.kind,
                text: std::mem::take(&mut m.text),
                sent_at_ms: now,
            },
            duplicate: false,
            members,
        })
    }
}

/// The cache entry an op will look up first (see [`State::warm`]).
#[derive(Clone, Copy)]
enum Lookup {
    Pair(UserId, UserId),
    Conv(ConversationId),
    Nothing,
}

impl Lookup {
    fn of<C>(op: &Op<C>) -> Self {
        match op {
            Op::Message(m) => match m.target {
                Target::Direct(to) => Lookup::Pair(m.sender.min(to), m.sender.max(to)),
                Target::Conversation(id) => Lookup::Conv(id),
            },
            _ => Lookup::Nothing,
        }
    }
}

/// How many messages' cache entries the writer reads at once, before running them: enough
/// to overlap the misses, few enough that the entries are still in the CPU's caches when
/// their message runs (read before a whole batch of hundreds, many were not).
const WARM_AHEAD: usize = 16;

struct Worker<C> {
    conn: Connection,
    /// The batch's [`Lookup`]s (kept for its allocation).
    lookups: Vec<Lookup>,
    rx: mpsc::Receiver<Op<C>>,
    sink: Box<dyn CommitSink<C>>,
    state: State,
    max_batch: usize,
    stats: Arc<WriterStats>,
    checkpointer: Checkpointer,
    /// Told the newest message id after each commit; stops with the writer.
    indexer: Indexer,
    /// Commits since the checkpointer was last asked to run, and when that was.
    since_poke: u64,
    ops_since_poke: u64,
    last_poke: std::time::Instant,
}

impl<C: Send + 'static> Worker<C> {
    fn run(&mut self) {
        let mut ops: Vec<Op<C>> = Vec::with_capacity(self.max_batch);
        let mut results: Vec<Committed<C>> = Vec::with_capacity(256);
        let mut replies: Vec<Reply> = Vec::new();
        let mut stopping = false;
        loop {
            if ops.is_empty() {
                match self.rx.blocking_recv() {
                    Some(op) => ops.push(op),
                    None => break,
                }
            }
            while ops.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            self.run_batch(&mut ops, &mut results, &mut replies, &mut stopping);
            self.checkpointer.help_restart(&self.conn);
            if stopping {
                // Commit whatever was queued before the channel closed, then stop.
                self.rx.close();
                while let Ok(op) = self.rx.try_recv() {
                    ops.push(op);
                }
                if !ops.is_empty() {
                    self.run_batch(&mut ops, &mut results, &mut replies, &mut stopping);
                }
                break;
            }
        }
        tracing::info!(
            batches = self.stats.batches.load(Ordering::Relaxed),
            ops = self.stats.ops.load(Ordering::Relaxed),
            "writer stopped"
        );
    }

    fn run_batch(
        &mut self,
        ops: &mut Vec<Op<C>>,
        results: &mut Vec<Committed<C>>,
        replies: &mut Vec<Reply>,
        stopping: &mut bool,
    ) {
        let n = ops.len() as u64;
        let mut stored = 0;
        let now = now_ms();
        self.lookups.clear();
        self.lookups.extend(ops.iter().map(Lookup::of));
        let mut touched = 0u64;
        // Once set, the batch fails as a whole: the ops not yet run are not run (outside a
        // transaction each would commit on its own, and be reported failed).
        let mut failed = match run_cached(&self.conn, "BEGIN IMMEDIATE") {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a transaction; batch refused");
                Some(e.to_string())
            }
        };
        let begun = failed.is_none();
        for (i, op) in ops.drain(..).enumerate() {
            if let Some(e) = &failed {
                match op {
                    Op::Message(m) => results.push(Committed {
                        ctx: m.ctx,
                        result: Err(StorageError::CommitFailed(e.clone())),
                    }),
                    Op::Call(job, _) => replies.push(job(None).0),
                    Op::Shutdown => *stopping = true,
                }
                continue;
            }
            if i % WARM_AHEAD == 0 {
                for l in self.lookups.iter().skip(i).take(WARM_AHEAD) {
                    touched ^= self.state.warm(*l);
                }
            }
            match op {
                Op::Message(mut m) => {
                    let result = self.state.insert(&self.conn, &mut m, now);
                    if matches!(&result, Ok(d) if !d.duplicate) {
                        stored += 1;
                    }
                    results.push(Committed { ctx: m.ctx, result });
                }
                Op::Call(job, graph) => {
                    if graph {
                        self.state.gate.clear();
                    }
                    let (reply, intact) = job(Some(&self.conn));
                    replies.push(reply);
                    if let Err(e) = intact {
                        tracing::error!(error = %e, "a savepoint failed; batch rolled back");
                        failed = Some(e);
                        continue;
                    }
                    if let Err(e) = self.state.after_job(&self.conn) {
                        tracing::error!(error = %e, "cannot read the conversations a job opened");
                        // Neither the tail nor the pair cache may know all pairs now.
                        self.state.stale = true;
                        self.state.direct_all = false;
                    }
                }
                Op::Shutdown => *stopping = true,
            }
        }
        std::hint::black_box(touched);
        let commit = match failed {
            Some(e) => Err(e),
            None => run_cached(&self.conn, "COMMIT").map_err(|e| e.to_string()),
        };
        match &commit {
            Ok(()) => {
                self.state.committed();
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.checkpointer.committed();
                self.indexer.committed(self.state.last_id, stored);
                self.since_poke += 1;
                self.ops_since_poke += n;
                if (self.since_poke >= CHECKPOINT_EVERY
                    || self.ops_since_poke >= CHECKPOINT_EVERY_OPS)
                    && self.last_poke.elapsed() >= CHECKPOINT_MIN_INTERVAL
                {
                    self.since_poke = 0;
                    self.ops_since_poke = 0;
                    self.last_poke = std::time::Instant::now();
                    self.checkpointer.poke();
                }
                self.stats.ops.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                if begun {
                    tracing::error!(error = %e, "batch failed; rolled back");
                }
                // Also when BEGIN failed: a connection still inside an earlier transaction
                // refuses every BEGIN until that one is rolled back.
                if !self.conn.is_autocommit() {
                    if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %e, "cannot roll back");
                    }
                }
                self.state.rolled_back();
                for r in results.iter_mut() {
                    r.result = Err(StorageError::CommitFailed(e.clone()));
                }
                // Caches may name rows that were rolled back: rebuild from disk. When BEGIN
                // failed nothing ran, and they are as they were.
                if begun {
                    if let Ok(state) = State::load(
                        &self.conn,
                        self.state.gate.policy,
                        self.state.convs.cap,
                        self.state.recent.clone(),
                        self.state.seq_index_at,
                    ) {
                        self.state = state;
                    }
                }
            }
        }
        if !results.is_empty() {
            self.sink.committed(results);
            results.clear();
        }
        for reply in replies.drain(..) {
            reply(commit.clone());
        }
        // After the batch's acks are out: a move takes a while.
        if commit.is_ok() {
            self.state.index(&self.conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        job, Checkpointer, CommitSink, Committed, Generations, NewMessage, Op, State, Target,
        Worker,
    };
    use crate::recent::{Recent, Snapshot};
    use crate::sequence::View;
    use crate::social::DirectPolicy;
    use rusqlite::Connection;
    use std::sync::Arc;

    /// An in-memory store with users 1 to 6, and their 15 pairs.
    fn six_users() -> (Connection, Vec<(u64, u64)>) {
        let c = crate::schema::migrated_in_memory();
        for i in 1..=6 {
            crate::account::insert_user(&c, &format!("u{i}"), "n", b"s", b"h").unwrap();
        }
        let pairs = (1..=6u64)
            .flat_map(|a| (a + 1..=6).map(move |b| (a, b)))
            .collect();
        (c, pairs)
    }

    /// Six users, their pairs, and the writer's state on them with small move thresholds:
    /// the pairs' tail moved past 4, the sequence entries past 100.
    fn small_moves() -> (Connection, Vec<(u64, u64)>, State) {
        let (c, pairs) = six_users();
        let mut st = load(&c, 1000);
        st.pairs_index_at = 4;
        st.seq_index_at = 100;
        (c, pairs, st)
    }

    /// The writer's state as it starts on `c`, with a conversation cache of `cache`.
    fn load(c: &Connection, cache: usize) -> State {
        let recent = Arc::new(Recent::load(c).unwrap());
        State::load(c, DirectPolicy::Anyone, cache, recent, 1 << 20).unwrap()
    }

    /// Each conversation's seqs as a reader reads them, oldest first, against the number of
    /// its messages.
    fn readable(c: &Connection, st: &State) -> Vec<(Vec<u64>, u64)> {
        let view = View {
            recent: &st.recent,
            snap: Snapshot::read(c).unwrap(),
        };
        let convs: Vec<(u64, u64)> = c
            .prepare("SELECT conversation_id, count(*) FROM messages GROUP BY 1 ORDER BY 1")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        convs
            .into_iter()
            .map(|(conv, n)| {
                let q = crate::sequence::Query {
                    conversation: conv,
                    range: crate::recent::Range {
                        newest_first: false,
                        ..crate::recent::Range::ALL
                    },
                    since_ms: i64::MIN,
                    until_ms: i64::MAX,
                };
                let seqs = crate::sequence::read_by_seq(c, &view, &q, None)
                    .unwrap()
                    .iter()
                    .map(|m| m.seq)
                    .collect();
                (seqs, n)
            })
            .collect()
    }

    /// Runs one batch as the writer does: each `(from, to)` a text message, then the batch's
    /// end and the commit. Returns the messages' outcomes.
    fn run_batch(
        c: &Connection,
        st: &mut State,
        messages: impl IntoIterator<Item = (u64, u64)>,
    ) -> Vec<super::Delivered> {
        c.execute_batch("BEGIN").unwrap();
        let done = messages
            .into_iter()
            .map(|(from, to)| {
                let mut m = NewMessage {
                    ctx: (),
                    sender: from,
                    target: Target::Direct(to),
                    client_msg_id: 0,
                    kind: 1,
                    text: "x".into(),
                };
                st.insert(c, &mut m, crate::now_ms()).unwrap()
            })
            .collect();
        c.execute_batch("COMMIT").unwrap();
        st.committed();
        st.index(c);
        done
    }

    /// What the writer reported for each message: its context, and (conversation, seq).
    type Outcomes = Arc<std::sync::Mutex<Vec<(u32, Result<(u64, u64), String>)>>>;

    struct Collect(Outcomes);

    impl CommitSink<u32> for Collect {
        fn committed(&mut self, batch: &mut Vec<Committed<u32>>) {
            let mut out = self.0.lock().unwrap();
            for c in batch.drain(..) {
                let at = c
                    .result
                    .map(|d| (d.message.conversation_id, d.message.seq))
                    .map_err(|e| e.to_string());
                out.push((c.ctx, at));
            }
        }
    }

    /// The writer's worker as `Store::open` builds it, on a database in `dir` with users 1 to
    /// 3 who may all message each other, but without its thread: tests run its batches.
    fn worker(dir: &std::path::Path) -> (Worker<u32>, Outcomes) {
        let opts = crate::StoreOptions {
            direct_policy: DirectPolicy::Anyone,
            ..Default::default()
        };
        let (path, index) = crate::indexer::paths(dir);
        let mut conn = Connection::open(&path).unwrap();
        crate::configure(&conn, &opts).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for i in 1..=3 {
            crate::account::insert_user(&conn, &format!("u{i}"), "n", b"s", b"h").unwrap();
        }
        crate::indexer::prepare(&index).unwrap();
        let checkpointer = Checkpointer::start(&path, &opts).unwrap();
        let indexer = crate::indexer::Indexer::start(&path, &index).unwrap();
        let recent = Arc::new(Recent::load(&conn).unwrap());
        let state = State::load(&conn, opts.direct_policy, 1000, recent, 1 << 20).unwrap();
        let (_, rx) = tokio::sync::mpsc::channel(1);
        let out = Outcomes::default();
        let w = Worker {
            conn,
            lookups: Vec::new(),
            rx,
            sink: Box::new(Collect(out.clone())),
            state,
            max_batch: 100,
            stats: Arc::default(),
            checkpointer,
            indexer,
            since_poke: 0,
            ops_since_poke: 0,
            last_poke: std::time::Instant::now(),
        };
        (w, out)
    }

    /// A text message from `from` to `to`, reported with `ctx`.
    fn message(ctx: u32, from: u64, to: u64) -> Op<u32> {
        Op::Message(NewMessage {
            ctx,
            sender: from,
            target: Target::Direct(to),
            client_msg_id: 0,
            kind: 0,
            text: "x".into(),
        })
    }

    /// Runs `ops` as one batch through the writer's own batch function.
    fn run(w: &mut Worker<u32>, ops: Vec<Op<u32>>) {
        let mut ops = ops;
        let (mut results, mut replies, mut stopping) = (Vec::new(), Vec::new(), false);
        w.run_batch(&mut ops, &mut results, &mut replies, &mut stopping);
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// `BEGIN IMMEDIATE` fails (another connection holds the write lock, and the writer waits
    /// for no lock): nothing of the batch runs, not even a job that would release that lock
    /// (after which each op would commit on its own), every op gets the failure, and the
    /// caches stay as they were: the pair's first message, sent next, gets seq 1.
    #[test]
    fn a_batch_whose_begin_fails_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, out) = worker(dir.path());
        w.conn.busy_timeout(std::time::Duration::ZERO).unwrap();
        let holder = Arc::new(std::sync::Mutex::new(
            Connection::open(dir.path().join("feige.db")).unwrap(),
        ));
        holder
            .lock()
            .unwrap()
            .execute_batch("BEGIN IMMEDIATE")
            .unwrap();
        let h = holder.clone();
        let (release, mut released) = job(move |_| {
            h.lock().unwrap().execute_batch("ROLLBACK")?;
            Ok(())
        });
        let (insert, mut inserted) =
            job(|c| crate::account::insert_user(c, "late", "n", b"s", b"h").map(|u| u.id));
        run(
            &mut w,
            vec![
                Op::Call(release, false),
                message(1, 1, 2),
                message(2, 2, 1),
                Op::Call(insert, true),
            ],
        );
        let reported = std::mem::take(&mut *out.lock().unwrap());
        assert_eq!(reported.len(), 2);
        assert!(reported.iter().all(|(_, r)| r.is_err()), "{reported:?}");
        assert!(released.try_recv().unwrap().is_err());
        assert!(inserted.try_recv().unwrap().is_err());
        let holder = holder.lock().unwrap();
        assert!(!holder.is_autocommit(), "the job ran and released the lock");
        holder.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count(&w.conn, "messages"), 0);
        assert_eq!(count(&w.conn, "users"), 3);
        run(&mut w, vec![message(3, 1, 2), message(4, 2, 1)]);
        let reported = std::mem::take(&mut *out.lock().unwrap());
        let seqs: Vec<_> = reported
            .iter()
            .map(|(k, r)| (*k, r.clone().unwrap().1))
            .collect();
        assert_eq!(seqs, [(3, 1), (4, 2)]);
        assert_eq!(count(&w.conn, "messages"), 2);
    }

    /// A job's savepoint cannot be released (the job released it itself, so its writes are
    /// part of the batch's transaction): the batch fails as a whole and is rolled back; the
    /// messages before and after it are not stored, and later batches carry on.
    #[test]
    fn a_failed_savepoint_fails_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, out) = worker(dir.path());
        let (broken, mut reply) = job(|c| {
            crate::account::insert_user(c, "inside", "n", b"s", b"h")?;
            c.execute_batch("RELEASE op")?;
            Ok(())
        });
        run(
            &mut w,
            vec![message(1, 1, 2), Op::Call(broken, false), message(2, 2, 1)],
        );
        let reported = std::mem::take(&mut *out.lock().unwrap());
        assert!(reported.iter().all(|(_, r)| r.is_err()), "{reported:?}");
        assert!(reply.try_recv().unwrap().is_err());
        assert_eq!(count(&w.conn, "messages"), 0);
        assert_eq!(count(&w.conn, "users"), 3);
        assert!(w.conn.is_autocommit());
        run(&mut w, vec![message(3, 1, 2)]);
        let reported = std::mem::take(&mut *out.lock().unwrap());
        assert_eq!(reported[0].1.as_ref().map(|r| r.1), Ok(&1).copied());
    }

    /// A job opened a conversation that the writer then failed to read back (`after_job`
    /// failed, so the tail in memory lacks it): until the next move, pairs are looked up in
    /// the database, tail included, so messages to that pair find its conversation instead
    /// of opening a second one. The move reads the tail again, and a restart finds the pair
    /// in the index.
    #[test]
    fn a_stale_tail_looks_pairs_up_in_the_database_until_the_next_move() {
        let (c, _) = six_users();
        let mut st = load(&c, 1000);
        // What a job does (an accepted friend request opens the pair's conversation)...
        let opened = crate::pairs::insert(&c, 2, 5, crate::now_ms()).unwrap();
        // ...and what the writer does when it cannot read the job's conversations back.
        st.stale = true;
        st.direct_all = false;
        let done = run_batch(&c, &mut st, [(5, 2), (2, 5), (1, 3)]);
        let at = |d: &super::Delivered| (d.message.conversation_id, d.message.seq);
        assert_eq!(at(&done[0]), (opened, 1));
        assert_eq!(at(&done[1]), (opened, 2));
        assert_ne!(done[2].message.conversation_id, opened);
        let pair_convs: i64 = c
            .query_row(
                "SELECT count(*) FROM conversations WHERE kind = 1 AND user_a = 2 AND user_b = 5",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pair_convs, 1, "a second conversation for one pair");
        // The move at the batch's end read the tail again and cleared the flag.
        assert!(!st.stale);
        assert!(st.tail.is_empty());
        assert!(crate::pairs::mark(&c).unwrap() >= done[2].message.conversation_id);
        let mut restarted = load(&c, 1000);
        let again = run_batch(&c, &mut restarted, [(2, 5)]);
        assert_eq!(at(&again[0]), (opened, 3));
    }

    /// Batches as the writer runs them, with small move thresholds: the pairs' tail and the
    /// sequence entries in memory are moved when they reach them, so both stay bounded, and
    /// every message keeps exactly one index entry with gapless seqs, across a restart too.
    #[test]
    fn bulk_moves_keep_the_tail_and_the_entries_in_memory_bounded() {
        let (c, pairs, mut st) = small_moves();
        let batch = |st: &mut State, n: usize, from: usize| {
            run_batch(&c, st, (from..from + n).map(|i| pairs[i % pairs.len()]));
            (st.tail.len(), st.recent.len())
        };
        let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        // 15 new pairs in the first batch: past 4, moved at once. 70 entries wait in memory;
        // the next 70 pass 100 and all are moved, with the mark at the newest message.
        assert_eq!(batch(&mut st, 70, 0), (0, 70));
        assert_eq!(q("SELECT count(*) FROM message_seq"), 0);
        assert_eq!(batch(&mut st, 70, 70), (0, 0));
        assert_eq!(q("SELECT count(*) FROM message_seq"), 140);
        assert_eq!(
            crate::recent::mark(&c).unwrap() as i64,
            q("SELECT max(id) FROM messages")
        );
        assert_eq!(batch(&mut st, 3, 140), (0, 3));
        assert_eq!(batch(&mut st, 70, 0), (0, 73));
        assert_eq!(q("SELECT count(*) FROM direct_pairs"), 30);
        assert_eq!(q("SELECT count(*) FROM conversations"), 15);
        assert_eq!(q("SELECT count(*) FROM message_seq"), 140);
        let all_there = |st: &State| {
            let convs = readable(&c, st);
            assert_eq!(convs.len(), 15);
            for (seqs, n) in convs {
                assert_eq!(seqs, (1..=n).collect::<Vec<u64>>());
            }
        };
        all_there(&st);
        // A restart reads the 73 entries above the mark back from the messages.
        let st = load(&c, 1000);
        assert_eq!(st.recent.len(), 73);
        all_there(&st);
    }

    /// A conversation cache far smaller than the conversations in use (two entries per
    /// generation, fifteen pairs): every miss finds the pair's conversation and its last seq
    /// in the database, within a batch and across a restart, so no pair gets a second
    /// conversation and seqs stay gapless.
    #[test]
    fn a_cache_smaller_than_the_conversations_in_use_loses_nothing() {
        let (c, pairs) = six_users();
        let mut seqs = std::collections::HashMap::new();
        for restart in 0..2 {
            let mut st = load(&c, 2);
            st.pairs_index_at = 4;
            for batch in 0..3 {
                // Both directions, and a stride that revisits pairs out of cache order.
                let sends: Vec<(u64, u64)> = (0..40)
                    .map(|i| {
                        let (a, b) = pairs[(i * 7 + batch) % pairs.len()];
                        if i % 2 == 0 {
                            (a, b)
                        } else {
                            (b, a)
                        }
                    })
                    .collect();
                for (d, &(from, to)) in run_batch(&c, &mut st, sends.clone()).iter().zip(&sends) {
                    assert_eq!(d.members.as_slice(), &[from.min(to), from.max(to)]);
                    assert_eq!(d.message.to_user, to);
                    let last = seqs.entry(d.message.conversation_id).or_insert(0);
                    assert_eq!(d.message.seq, *last + 1, "restart {restart} batch {batch}");
                    *last = d.message.seq;
                }
            }
            assert!(st.convs.lost && st.direct.lost, "the caches turned over");
        }
        let convs: i64 = c
            .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(convs, 15);
        assert_eq!(seqs.len(), 15);
    }

    /// Moves that keep failing (a fault injected with triggers on both index tables) leave the
    /// batches committing, with every message readable by seq and every pair found, from the
    /// tail and memory; once the fault clears, the next move takes everything.
    #[test]
    fn failing_moves_keep_messages_flowing_and_resume_once_the_fault_clears() {
        let (c, pairs, mut st) = small_moves();
        let batch = |st: &mut State, n: usize| {
            run_batch(&c, st, (0..n).map(|i| pairs[i % pairs.len()]));
        };
        c.execute_batch(
            "CREATE TEMP TRIGGER fault_pairs BEFORE INSERT ON main.direct_pairs
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;
             CREATE TEMP TRIGGER fault_seq BEFORE INSERT ON main.message_seq
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
        )
        .unwrap();
        for _ in 0..3 {
            batch(&mut st, 70);
            // Let the next batch try again at once (the writer waits a second).
            st.move_failed_at = None;
        }
        // Past both thresholds, nothing moved, nothing lost.
        assert_eq!((st.tail.len(), st.recent.len()), (15, 3 * 70));
        let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(q("SELECT count(*) FROM direct_pairs"), 0);
        assert_eq!(q("SELECT count(*) FROM message_seq"), 0);
        assert_eq!(crate::recent::mark(&c).unwrap(), 0);
        assert_eq!(q("SELECT count(*) FROM conversations"), 15);
        for (k, &(a, b)) in pairs.iter().enumerate() {
            let id = crate::pairs::direct_conversation(&c, a, b)
                .unwrap()
                .unwrap();
            let q = crate::HistoryQuery {
                conversation: id,
                before_seq: None,
                since_ms: None,
                until_ms: None,
                limit: 100,
            };
            let view = View {
                recent: &st.recent,
                snap: Snapshot::read(&c).unwrap(),
            };
            let seqs: Vec<u64> = crate::message::history(&c, &view, a, &q, usize::MAX)
                .unwrap()
                .messages
                .iter()
                .map(|m| m.seq)
                .collect();
            // Each batch sends 70 over the 15 pairs in turn, from the first.
            let n = 3 * (70 / pairs.len() + usize::from(k < 70 % pairs.len())) as u64;
            assert_eq!(seqs, (1..=n).rev().collect::<Vec<u64>>(), "pair ({a}, {b})");
        }
        c.execute_batch("DROP TRIGGER temp.fault_pairs; DROP TRIGGER temp.fault_seq;")
            .unwrap();
        batch(&mut st, 3);
        assert_eq!((st.tail.len(), st.recent.len()), (0, 0));
        assert_eq!(q("SELECT count(*) FROM direct_pairs"), 30);
        assert_eq!(q("SELECT count(*) FROM message_seq"), 3 * 70 + 3);
    }

    /// A failed commit publishes nothing of its batch; the entries of earlier batches stay.
    #[test]
    fn a_rolled_back_batch_leaves_no_entries() {
        let (c, pairs) = six_users();
        let mut st = load(&c, 1000);
        run_batch(&c, &mut st, pairs.iter().copied().take(3));
        c.execute_batch("BEGIN").unwrap();
        let mut m = NewMessage {
            ctx: (),
            sender: 1,
            target: Target::Direct(2),
            client_msg_id: 0,
            kind: 1,
            text: "x".into(),
        };
        st.insert(&c, &mut m, crate::now_ms()).unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        st.rolled_back();
        assert_eq!(st.recent.len(), 3);
        assert!(st.pending.is_empty());
    }

    #[test]
    fn direct_members_are_the_sorted_pair() {
        let m = super::Members::direct(9, 4);
        assert_eq!(m.as_slice(), &[4, 9]);
        assert_eq!(m.pair(), Some((4, 9)));
        assert_eq!(super::Members::Group(vec![1, 2, 3].into()).pair(), None);
    }

    #[test]
    fn generations_keep_recent_entries_across_a_turnover() {
        let mut g = Generations::new(2);
        g.insert(1, "a");
        g.insert(2, "b");
        // Full: 1 and 2 become the old generation.
        g.insert(3, "c");
        assert!(!g.lost, "nothing dropped yet");
        // A hit in the old generation moves back to the young one...
        assert_eq!(g.get_mut(&1).copied(), Some("a"));
        // ...so the next turnover drops 2 (unused), and keeps 1 and 3 reachable.
        g.insert(4, "d");
        assert_eq!(g.get_mut(&2), None);
        assert!(g.lost);
        assert_eq!(g.get_mut(&1).copied(), Some("a"));
        assert_eq!(g.get_mut(&3).copied(), Some("c"));
        assert_eq!(g.get_mut(&4).copied(), Some("d"));
        assert!(g.young.len() + g.old.len() <= 4);
    }
}
