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
    /// Recent batches' running time per op, in nanoseconds (a moving average), which sizes
    /// the next batch to [`BATCH_BUDGET`].
    pub(super) op_ns: u64,
    /// Time the writer spent since the last batch's report on work of its own (index steps,
    /// the WAL restart), which the next batch's budget gives up.
    pub(super) spent: Duration,
}

/// How long the writer should go between two batches' reports (acks and pushes): the next
/// batch's ops, and the writer's own work before it. Nothing of a batch is acked or pushed
/// before its commit, so a batch of everything queued under full load (thousands of
/// messages, while the cores are shared with the connections' threads) would leave the
/// recipients without a delivery for as long as it runs: up to ~100 ms, seen as a message
/// that hangs. Batches are cut to fit instead, from the time recent ops took. Shorter
/// batches cost throughput: each connection then gets its acks and pushes in more, smaller
/// writes.
pub(super) const BATCH_BUDGET: Duration = Duration::from_millis(40);
/// The fewest ops a batch is cut to (a commit's own cost stays spread over many).
const MIN_BATCH: usize = 256;

/// The fewest ops a batch has for its time per op to count in [`Worker::op_ns`].
const SAMPLE_BATCH: u64 = 64;

/// How many ops fit in `budget` at `op_ns` nanoseconds each, within
/// [`MIN_BATCH`]`..=max_batch`.
pub(super) fn batch_cap(op_ns: u64, budget: Duration, max_batch: usize) -> usize {
    let fit = budget.as_nanos() as u64 / op_ns.max(1);
    usize::try_from(fit)
        .unwrap_or(usize::MAX)
        .clamp(MIN_BATCH.min(max_batch), max_batch)
}

/// `avg` moved an eighth of the way to `sample`.
fn moving_average(avg: u64, sample: u64) -> u64 {
    if avg == 0 {
        sample
    } else {
        avg - avg / 8 + sample / 8
    }
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
            let budget = BATCH_BUDGET.saturating_sub(std::mem::take(&mut self.spent));
            let cap = batch_cap(self.op_ns, budget, self.max_batch);
            while ops.len() < cap {
                if self.rx.try_take(&mut ops).is_err() {
                    break;
                }
            }
            self.run_batch(&mut ops, &mut results, &mut replies, &mut stopping);
            let started = Instant::now();
            if self.checkpointer.help_restart(&self.conn) {
                self.spent += started.elapsed();
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
        // A batch of a few ops is mostly its BEGIN: it says little of what an op costs.
        if n >= SAMPLE_BATCH {
            let per_op = u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX) / n;
            self.op_ns = moving_average(self.op_ns, per_op);
        }
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
        self.spent = started.elapsed() - reported;
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

#[cfg(test)]
mod tests {
    use super::{batch_cap, moving_average, BATCH_BUDGET, MIN_BATCH};
    use std::time::Duration;

    #[test]
    fn batches_are_cut_to_the_budget_from_the_time_an_op_takes() {
        let b = BATCH_BUDGET;
        let ns = b.as_nanos() as u64;
        // Nothing measured yet: everything queued, up to max_batch.
        assert_eq!(batch_cap(0, b, 16384), 16384);
        // 5 µs an op: as many as fit in the budget, fewer in what is left of it.
        assert_eq!(batch_cap(5_000, b, 16384), (ns / 5_000) as usize);
        assert_eq!(batch_cap(5_000, b / 2, 16384), (ns / 10_000) as usize);
        // Slow ops, or a budget used up, still make batches of a few hundred; max_batch
        // stays the bound.
        assert_eq!(batch_cap(ns, b, 16384), MIN_BATCH);
        assert_eq!(batch_cap(5_000, Duration::ZERO, 16384), MIN_BATCH);
        assert_eq!(batch_cap(1, b, 100), 100);
        assert_eq!(batch_cap(ns, b, 100), 100);
    }

    #[test]
    fn the_time_per_op_follows_recent_batches() {
        assert_eq!(moving_average(0, 8_000), 8_000);
        let mut avg = 8_000;
        for _ in 0..40 {
            avg = moving_average(avg, 4_000);
        }
        assert!((4_000..4_100).contains(&avg), "{avg}");
    }
}
