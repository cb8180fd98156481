//! The writer thread's loop and `run_batch`, the one function that runs a batch in one
//! transaction (the worker and the tests both call it).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::time::{Duration, Instant};

use super::queue::Inbox;
use rusqlite::Connection;
use tokio::sync::mpsc::error::TryRecvError;

use super::checkpoint::{
    Checkpointer, CHECKPOINT_EVERY, CHECKPOINT_EVERY_OPS, CHECKPOINT_MIN_INTERVAL,
};
use super::index::Next;
use super::op::{CommitSink, Committed, Op, Reply, WriterStats};
use super::state::{Lookup, State};
use crate::db::run_cached;
use crate::indexer::Indexer;
use crate::{now_ms, StorageError};

/// How many messages' cache entries the writer reads at once, before running them: enough
/// to overlap the misses, few enough that the entries are still in the CPU's caches when
/// their message runs (read for a whole batch of hundreds at once, many would not be).
pub(super) const WARM_AHEAD: usize = 16;

pub(super) struct Worker<C> {
    pub(super) conn: Connection,
    /// The batch's [`Lookup`]s (kept for its allocation).
    pub(super) lookups: Vec<Lookup>,
    pub(super) rx: Inbox<C>,
    pub(super) sink: Box<dyn CommitSink<C>>,
    pub(super) state: State,
    pub(super) max_batch: usize,
    pub(super) stats: Arc<WriterStats>,
    pub(super) checkpointer: Checkpointer,
    /// Told the newest message id after each commit; stops with the writer.
    pub(super) indexer: Indexer,
    /// Commits since the checkpointer was last asked to run, and when that was.
    pub(super) since_poke: u64,
    pub(super) ops_since_poke: u64,
    pub(super) last_poke: std::time::Instant,
    /// What the last index step left: while it is [`Next::Work`], the writer runs more
    /// steps whenever nothing is queued.
    pub(super) next: Next,
}

/// A batch that holds the writer longer than this is logged (debug) with where its time
/// went, to find what delays deliveries.
const SLOW_BATCH: Duration = Duration::from_millis(20);

impl<C: Send + 'static> Worker<C> {
    pub(super) fn run(&mut self) {
        let mut ops: Vec<Op<C>> = Vec::with_capacity(self.max_batch);
        let mut results: Vec<Committed<C>> = Vec::with_capacity(256);
        let mut replies: Vec<Reply> = Vec::new();
        let mut stopping = false;
        loop {
            if ops.is_empty() {
                // Nothing queued: move the index on while nothing comes.
                while self.next == Next::Work {
                    match self.rx.try_take(&mut ops) {
                        Ok(()) => break,
                        Err(TryRecvError::Empty) => self.next = self.state.index(&self.conn),
                        Err(TryRecvError::Disconnected) => break,
                    }
                }
                if ops.is_empty() && !self.rx.blocking_take(&mut ops) {
                    break;
                }
            }
            while ops.len() < self.max_batch {
                if self.rx.try_take(&mut ops).is_err() {
                    break;
                }
            }
            self.run_batch(&mut ops, &mut results, &mut replies, &mut stopping);
            let started = Instant::now();
            if self.checkpointer.help_restart(&self.conn) {
                tracing::debug!(
                    ms = started.elapsed().as_millis() as u64,
                    "writer helped restart the WAL"
                );
            }
            if stopping {
                // Commit whatever was queued before the channel closed, then stop.
                self.rx.close();
                while self.rx.try_take(&mut ops).is_ok() {}
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

    pub(super) fn run_batch(
        &mut self,
        ops: &mut Vec<Op<C>>,
        results: &mut Vec<Committed<C>>,
        replies: &mut Vec<Reply>,
        stopping: &mut bool,
    ) {
        let n = ops.len() as u64;
        let started = Instant::now();
        let mut stored = 0;
        let now = now_ms();
        self.lookups.clear();
        self.lookups.extend(ops.iter().map(Lookup::of));
        let mut touched = 0u64;
        // Group notices in `results`: on a failed batch they are dropped, not reported (their
        // job's own reply tells the caller).
        let mut notices = 0usize;
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
                    Op::Message(m) | Op::Attached(m, _) => results.push(Committed {
                        ctx: m.ctx,
                        result: Err(StorageError::CommitFailed(e.clone())),
                    }),
                    Op::Call(job, _) => replies.push(job(None).0),
                    Op::Group(job) => replies.push(job(None).0),
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
                Op::Attached(mut m, attach) => {
                    let result = self
                        .state
                        .insert_with(&self.conn, &mut m, Some(attach), now);
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
                Op::Group(job) => {
                    let (reply, intact, notice) = job(Some((&self.conn, &mut self.state, now)));
                    replies.push(reply);
                    if let Err(e) = intact {
                        tracing::error!(error = %e, "a savepoint failed; batch rolled back");
                        failed = Some(e);
                        continue;
                    }
                    if let Some(n) = notice {
                        stored += 1;
                        notices += 1;
                        results.push(n);
                    }
                }
                Op::Shutdown => *stopping = true,
            }
        }
        std::hint::black_box(touched);
        let ran = started.elapsed();
        let commit = match failed {
            Some(e) => Err(e),
            None => run_cached(&self.conn, "COMMIT").map_err(|e| e.to_string()),
        };
        let committed = started.elapsed();
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
                self.stats.messages.fetch_add(stored, Ordering::Relaxed);
                self.stats.batch_ops.observe(n);
                self.stats
                    .commit_us
                    .observe(u64::try_from(committed.as_micros()).unwrap_or(u64::MAX));
            }
            Err(e) => {
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
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
                if notices > 0 {
                    results.retain(|r| {
                        !matches!(&r.result, Ok(d) if d.message.kind == crate::group::SYSTEM_KIND)
                    });
                }
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
                        self.state.seqs.index_at,
                    ) {
                        self.state = state;
                    }
                }
            }
        }
        if !results.is_empty() {
            let idle = self.rx.is_empty();
            self.sink.committed(results, idle);
            results.clear();
        }
        for reply in replies.drain(..) {
            reply(commit.clone());
        }
        let reported = started.elapsed();
        // After the batch's acks are out: one step of each move that is due.
        if commit.is_ok() {
            self.next = self.state.index(&self.conn);
        }
        if started.elapsed() >= SLOW_BATCH {
            tracing::debug!(
                ops = n,
                run_ms = ran.as_millis() as u64,
                commit_ms = (committed - ran).as_millis() as u64,
                report_ms = (reported - committed).as_millis() as u64,
                index_ms = (started.elapsed() - reported).as_millis() as u64,
                "slow batch"
            );
        }
    }
}
