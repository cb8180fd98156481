//! The group-commit writer: one named OS thread that owns the only write connection.
//!
//! Operations queue on a bounded channel. The thread takes everything queued (up to
//! `max_batch`), runs it in one transaction, commits, and only then reports the results: message
//! results go to the [`CommitSink`] in commit order, other operations' replies go to their
//! callers. So an ack can never precede its commit, and one fsync covers a whole batch.
//! After each commit it tells the search indexer how far messages go ([`crate::indexer`]).

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{mpsc, Semaphore};

mod attach;
mod batch;
mod checkpoint;
mod generations;
mod groups;
mod index;
mod op;
mod pairs;
mod queue;
mod rules;
mod state;
#[cfg(test)]
mod tests;

use batch::Worker;
pub(crate) use checkpoint::{Checkpointer, WAL_SIZE_LIMIT};
use op::{job, Op};
pub use op::{
    Attached, Attachment, CommitSink, Committed, Delivered, GroupMembers, Members, Mentions,
    NewMessage, Target, WriterStats,
};
use queue::{Inbox, Queued};
use state::State;

use crate::indexer::Indexer;
use crate::recent::{Recent, Snapshot};
use crate::sequence::View;
use crate::{ConversationId, StorageError, StoreOptions, UserId};

/// Handle to the writer thread. Cheap to clone.
pub struct Writer<C> {
    tx: mpsc::Sender<Queued<C>>,
    /// Room for the second and later messages of a [`Queued::Messages`] entry.
    extra: Arc<Semaphore>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    stats: Arc<WriterStats>,
    /// The newest part of the sequence index, for jobs that read it.
    recent: Arc<Recent>,
}

impl<C> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
            extra: self.extra.clone(),
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
        let extra = Arc::new(Semaphore::new(opts.queue_capacity.max(1)));
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
            rx: Inbox::new(rx, extra.clone()),
            sink,
            state,
            max_batch: opts.max_batch.max(1),
            stats: stats.clone(),
            checkpointer,
            indexer,
            since_poke: 0,
            ops_since_poke: 0,
            last_poke: std::time::Instant::now(),
            next: index::Next::Idle,
            op_ns: 0,
            spent: std::time::Duration::ZERO,
        };
        let on_start = opts.on_writer_start;
        let thread = std::thread::Builder::new()
            .name("feige-writer".into())
            .spawn(move || {
                on_start();
                worker.run()
            })
            .map_err(StorageError::Io)?;
        Ok(Writer {
            tx,
            extra,
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
            .send(Op::Message(msg).into())
            .await
            .map_err(|_| StorageError::WorkerGone)
    }

    /// Queues the messages `msgs` holds, in order, as one entry, so the writer takes them
    /// together: the messages of one read reach the same batch. Waits while the queue is
    /// full. On success `msgs` is empty; on error it holds the messages not queued.
    ///
    /// # Errors
    /// [`StorageError::WorkerGone`] once the writer has shut down.
    pub async fn send_messages(&self, msgs: &mut Vec<NewMessage<C>>) -> Result<(), StorageError> {
        while !msgs.is_empty() {
            // At most the semaphore's permits, so that the wait can end.
            let n = msgs.len().min(self.tx.max_capacity() + 1);
            let permits = u32::try_from(n - 1).map_err(|_| StorageError::WorkerGone)?;
            let room = self
                .extra
                .acquire_many(permits)
                .await
                .map_err(|_| StorageError::WorkerGone)?;
            let batch = if n == msgs.len() {
                std::mem::take(msgs)
            } else {
                msgs.drain(..n).collect()
            };
            match self.tx.send(Queued::Messages(batch)).await {
                // The writer gives the room back when it takes the entry.
                Ok(()) => room.forget(),
                Err(mpsc::error::SendError(q)) => {
                    if let Queued::Messages(back) = q {
                        msgs.splice(0..0, back);
                    }
                    return Err(StorageError::WorkerGone);
                }
            }
        }
        Ok(())
    }

    /// Queues a message with work to run in its transaction before its row is inserted
    /// (a red packet's debit, say): `attach` failing refuses the message and undoes its
    /// writes; a resend of a stored client id returns the original without running it.
    /// The outcome reaches the sink, as for [`Writer::send_message`].
    ///
    /// # Errors
    /// [`StorageError::WorkerGone`] once the writer has shut down.
    pub async fn send_attached(
        &self,
        msg: NewMessage<C>,
        attach: Attachment,
    ) -> Result<(), StorageError> {
        self.tx
            .send(Op::Attached(msg, attach).into())
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

    /// Like [`Writer::call`], for jobs that read the sequence index: `f` gets the writer's
    /// view of it (every committed entry, none of this batch's messages).
    ///
    /// # Errors
    /// As [`Writer::call`].
    pub(crate) async fn call_view<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &View<'_>) -> Result<T, StorageError> + Send + 'static,
    {
        let recent = self.recent.clone();
        self.call(move |c| {
            let view = View {
                recent: &recent,
                snap: Snapshot::read(c)?,
            };
            f(c, &view)
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
            .send(Op::Call(job, graph).into())
            .await
            .map_err(|_| StorageError::WorkerGone)?;
        reply_rx.await.map_err(|_| StorageError::WorkerGone)?
    }

    /// Commits everything queued so far, stops the thread and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Op::Shutdown.into()).await;
        let handle = self.thread.lock().take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Commit counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Operations waiting in the writer's queue.
    pub fn queue_len(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }
}
