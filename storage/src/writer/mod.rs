//! The group-commit writer: one named OS thread that owns the only write connection.
//!
//! Operations queue on a bounded channel. The thread takes everything queued (up to
//! `max_batch`), runs it in one transaction, commits, and only then reports the results: message
//! results go to the [`CommitSink`] in commit order, other operations' replies go to their
//! callers. So an ack can never precede its commit, and one fsync covers a whole batch.
//! After each commit it tells the search indexer how far messages go ([`crate::indexer`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

mod batch;
mod checkpoint;
mod state;

use batch::Worker;
pub(crate) use checkpoint::{Checkpointer, WAL_SIZE_LIMIT};
use state::State;

use crate::indexer::Indexer;
use crate::message::StoredMessage;
use crate::recent::{Recent, Snapshot};
use crate::sequence::View;
use crate::{ConversationId, StorageError, StoreOptions, UserId};

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

#[cfg(test)]
mod tests {
    #[test]
    fn direct_members_are_the_sorted_pair() {
        let m = super::Members::direct(9, 4);
        assert_eq!(m.as_slice(), &[4, 9]);
        assert_eq!(m.pair(), Some((4, 9)));
        assert_eq!(super::Members::Group(vec![1, 2, 3].into()).pair(), None);
    }
}
