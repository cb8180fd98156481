//! The move of the sequence index from memory into `message_seq`, in short slices.
//!
//! Once [`crate::StoreOptions::index_batch`] entries wait in memory ([`crate::recent`]), a
//! move takes them all, up to the newest message id (its mark): a helper thread sorts them
//! by key, then the writer inserts them between its batches, a slice at a time, each slice
//! a transaction of its own that fits in [`SLICE_BUDGET`] commit included. Each slice
//! records the move's mark and the last key it moved in `meta` (`seq_moving_upto`,
//! `seq_moved_conv`, `seq_moved_seq`); the last one raises `seq_indexed_upto` to the mark
//! instead. So at every commit `message_seq` holds exactly the entries at or below
//! `seq_indexed_upto` and those of the move at or below its last key, and a reader's
//! snapshot skips the latter in memory. A restart reloads the entries above
//! `seq_indexed_upto` and resumes the move after its last key. Moving in key order keeps the
//! bulk move's economy: each page of `message_seq` is written by one slice, with all of the
//! move's entries for it. After the last slice, the moved entries leave memory
//! [`DROP_CHUNK`] at a time, so that readers never wait long on the lock.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::int::{get_u64, Uint};
use crate::recent::{Entry, Recent, Slot};
use crate::{ConversationId, StorageError};

/// Longest a slice may hold the writer, its commit included.
pub(super) const SLICE_BUDGET: Duration = Duration::from_millis(3);
/// Entries dropped from memory at a time after a move.
pub(super) const DROP_CHUNK: usize = 8192;
/// Moves of at most this many entries are sorted on the writer (well under a millisecond).
const SORT_HERE: usize = 16_384;
/// Rows inserted between two looks at the clock (the batched insert's statement size).
const ROWS_PER_STEP: usize = 64;
/// After a failed slice the writer tries again after this long (and meanwhile the entries
/// stay in memory, where readers find them).
pub(super) const MOVE_RETRY: Duration = Duration::from_secs(1);

/// What a slice costs per row, learnt from the slices so far: so that a slice stops
/// inserting while its commit still fits in the budget.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cost {
    /// Nanoseconds of `COMMIT` per row inserted.
    commit_ns: f64,
}

impl Default for Cost {
    fn default() -> Self {
        // A guess on the high side until the first commit is measured.
        Cost { commit_ns: 2000.0 }
    }
}

impl Cost {
    fn learn(&mut self, rows: usize, commit: Duration) {
        if rows == 0 {
            return;
        }
        let ns = commit.as_nanos() as f64 / rows as f64;
        self.commit_ns = 0.75 * self.commit_ns + 0.25 * ns;
    }

    fn commit(&self, rows: usize) -> Duration {
        Duration::from_nanos((self.commit_ns * rows as f64) as u64)
    }
}

/// Inserts a prefix of `rows` (sorted) into `into` in a transaction of its own, as many as
/// fit in `budget` with the commit (at least one step's worth), runs `meta(c, n)` for the
/// `n` rows taken, and commits. Returns `n`.
///
/// # Errors
/// Database errors; nothing of the slice is then stored.
pub(super) fn slice(
    c: &Connection,
    into: &str,
    rows: &[Entry],
    budget: Duration,
    cost: &mut Cost,
    meta: impl FnOnce(&Connection, usize) -> Result<(), StorageError>,
) -> Result<usize, StorageError> {
    let started = Instant::now();
    let mut commit_at = started;
    let n = crate::in_transaction(c, |c| {
        let (mut n, mut steps) = (0, 0u32);
        for step in rows.chunks(ROWS_PER_STEP) {
            crate::move_rows(c, into, step)?;
            n += step.len();
            steps += 1;
            // Stop when one more step and the commit would overrun.
            let spent = started.elapsed();
            if spent + spent / steps + cost.commit(n + ROWS_PER_STEP) >= budget {
                break;
            }
        }
        meta(c, n)?;
        commit_at = Instant::now();
        Ok(n)
    })?;
    let commit = commit_at.elapsed();
    cost.learn(n, commit);
    tracing::trace!(
        into,
        rows = n,
        us = started.elapsed().as_micros() as u64,
        commit_us = commit.as_micros() as u64,
        "index slice"
    );
    Ok(n)
}

/// Where the move of the sequence index stands.
enum Phase {
    /// No move: entries gather in the log.
    Idle,
    /// The helper thread sorts the move's entries.
    Sorting {
        upto: u64,
        sorter: JoinHandle<Vec<Entry>>,
    },
    /// Slices insert `entries[next..]`; those before `next` are in `message_seq`.
    Moving {
        upto: u64,
        entries: Vec<Entry>,
        next: usize,
    },
    /// The move committed; `entries[next..]` are still to be dropped from memory.
    Dropping {
        upto: u64,
        entries: Vec<Entry>,
        next: usize,
    },
}

/// What a call to [`SeqMove::step`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Next {
    /// Nothing to do until more entries come.
    Idle,
    /// Waiting (for the sort, or to retry after a failure).
    Waiting,
    /// More slices or drops to run: worth running while the writer has nothing queued.
    Work,
}

/// The writer's side of the sequence-index move (see the module doc).
pub(super) struct SeqMove {
    /// Committed entries that no move has taken yet.
    log: Vec<Entry>,
    phase: Phase,
    /// `seq_indexed_upto` as committed.
    mark: u64,
    /// Entries in the log past which a move starts.
    pub(super) index_at: usize,
    /// When a slice last failed: the next waits [`MOVE_RETRY`].
    pub(super) failed_at: Option<Instant>,
    cost: Cost,
    /// [`SLICE_BUDGET`] (zero in tests: one step per slice).
    pub(super) budget: Duration,
    /// The running move's slice count and longest slice, for its log line.
    slices: u32,
    longest: Duration,
    started: Instant,
}

impl SeqMove {
    /// The move as the database and `recent` left it: a move under way resumes after its
    /// last key, and entries still in memory that are below the mark are dropped now.
    ///
    /// # Errors
    /// Database errors.
    pub(super) fn load(
        c: &Connection,
        recent: &Recent,
        index_at: usize,
    ) -> Result<SeqMove, StorageError> {
        let meta = |key: &str| -> Result<u64, StorageError> {
            let v = c
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| get_u64(r, 0))?;
            Ok(v)
        };
        let (mark, moving) = (meta("seq_indexed_upto")?, meta("seq_moving_upto")?);
        let moved = (meta("seq_moved_conv")?, meta("seq_moved_seq")?);
        let all = recent.sorted();
        // Only after a failed batch reloads the state mid-drop: a restart loads none.
        let below: Vec<ConversationId> = all.iter().filter(|e| e.2 <= mark).map(|e| e.0).collect();
        if !below.is_empty() {
            recent.drop_moved(below, mark);
        }
        let (gen, log): (Vec<Entry>, Vec<Entry>) = all
            .into_iter()
            .filter(|e| e.2 > mark)
            .partition(|e| e.2 <= moving);
        let phase = if moving > mark {
            let next = gen.partition_point(|e| (e.0, e.1) <= moved);
            Phase::Moving {
                upto: moving,
                entries: gen,
                next,
            }
        } else {
            Phase::Idle
        };
        Ok(SeqMove {
            log,
            phase,
            mark,
            index_at: index_at.max(1),
            failed_at: None,
            cost: Cost::default(),
            budget: SLICE_BUDGET,
            slices: 0,
            longest: Duration::ZERO,
            started: Instant::now(),
        })
    }

    /// After a commit: its entries join the log.
    pub(super) fn committed(&mut self, entries: &[(ConversationId, Slot)]) {
        self.log
            .extend(entries.iter().map(|&(conv, s)| (conv, s.seq, s.id)));
    }

    /// Between batches (outside a transaction): one step of the move, if one is due. `last_id`
    /// is the newest id handed out, which every committed message's id is at most.
    pub(super) fn step(&mut self, c: &Connection, recent: &Recent, last_id: u64) -> Next {
        if self.failed_at.is_some_and(|t| t.elapsed() < MOVE_RETRY) {
            return Next::Waiting;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => {
                if self.log.len() < self.index_at {
                    return Next::Idle;
                }
                let entries = std::mem::take(&mut self.log);
                self.start(c, recent, entries, last_id)
            }
            Phase::Sorting { upto, sorter } => {
                if !sorter.is_finished() {
                    self.phase = Phase::Sorting { upto, sorter };
                    return Next::Waiting;
                }
                let entries = sorter.join().unwrap_or_else(|_| {
                    tracing::error!("the sort thread panicked; sorting on the writer");
                    let mut e = reread(recent, self.mark, upto);
                    e.sort_unstable();
                    e
                });
                tracing::debug!(
                    entries = entries.len(),
                    in_memory = recent.len(),
                    ms = self.started.elapsed().as_millis() as u64,
                    "sequence index sorted for a move"
                );
                self.phase = Phase::Moving {
                    upto,
                    entries,
                    next: 0,
                };
                Next::Work
            }
            Phase::Moving {
                upto,
                mut entries,
                next,
            } => {
                // A retry of a move of which nothing committed takes the newer entries too.
                if self.failed_at.is_some() && next == 0 && !self.log.is_empty() {
                    entries.append(&mut self.log);
                    return self.start(c, recent, entries, last_id);
                }
                self.move_slice(c, upto, entries, next)
            }
            Phase::Dropping {
                upto,
                entries,
                next,
            } => {
                let started = Instant::now();
                let end = (next + DROP_CHUNK).min(entries.len());
                recent.drop_moved(entries[next..end].iter().map(|e| e.0), upto);
                tracing::trace!(
                    entries = end - next,
                    us = started.elapsed().as_micros() as u64,
                    "moved entries dropped from memory"
                );
                if end < entries.len() {
                    self.phase = Phase::Dropping {
                        upto,
                        entries,
                        next: end,
                    };
                    return Next::Work;
                }
                if self.log.len() >= self.index_at {
                    Next::Work
                } else {
                    Next::Idle
                }
            }
        }
    }

    /// Starts a move of `entries` (every entry in memory above the mark, none moved yet) up
    /// to `upto`: sorted here and its first slice run when they are few, else sorted on a
    /// helper thread while the writer carries on.
    fn start(
        &mut self,
        c: &Connection,
        recent: &Recent,
        mut entries: Vec<Entry>,
        upto: u64,
    ) -> Next {
        self.started = Instant::now();
        self.slices = 0;
        self.longest = Duration::ZERO;
        if entries.len() <= SORT_HERE {
            entries.sort_unstable();
            return self.move_slice(c, upto, entries, 0);
        }
        self.phase = match std::thread::Builder::new()
            .name("feige-seq-sort".into())
            .spawn(move || {
                entries.sort_unstable();
                entries
            }) {
            Ok(sorter) => Phase::Sorting { upto, sorter },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the sort thread; moving later");
                // The entries went with the closure; memory still has them.
                self.log = reread(recent, self.mark, upto);
                self.failed_at = Some(Instant::now());
                Phase::Idle
            }
        };
        Next::Waiting
    }

    fn move_slice(&mut self, c: &Connection, upto: u64, entries: Vec<Entry>, next: usize) -> Next {
        let rest = &entries[next..];
        let mark = self.mark;
        let started = Instant::now();
        let moved = slice(
            c,
            "message_seq(conversation_id, seq, id)",
            rest,
            self.budget,
            &mut self.cost,
            |c, n| match rest.get(n.wrapping_sub(1)) {
                // Short of the end: the move's mark and the last key taken.
                Some(last) if n < rest.len() => set_meta(c, mark, upto, last.0, last.1),
                // The last slice ends the move: the mark rises, and no key is pending.
                _ => set_meta(c, upto, 0, 0, 0),
            },
        );
        match moved {
            Ok(n) => {
                self.failed_at = None;
                self.slices += 1;
                self.longest = self.longest.max(started.elapsed());
                let next = next + n;
                if next < entries.len() {
                    self.phase = Phase::Moving {
                        upto,
                        entries,
                        next,
                    };
                    return Next::Work;
                }
                self.mark = upto;
                tracing::debug!(
                    entries = entries.len(),
                    slices = self.slices,
                    longest_us = self.longest.as_micros() as u64,
                    ms = self.started.elapsed().as_millis() as u64,
                    "moved the sequence index into the database"
                );
                self.phase = Phase::Dropping {
                    upto,
                    entries,
                    next: 0,
                };
                Next::Work
            }
            Err(e) => {
                self.failed_at = Some(Instant::now());
                tracing::warn!(error = %e, "moving the sequence index into the database failed");
                self.phase = Phase::Moving {
                    upto,
                    entries,
                    next,
                };
                Next::Waiting
            }
        }
    }

    /// Entries that no move has taken yet.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.log.len()
    }
}

/// Records a slice's progress: the mark, the running move's mark (0 = none), and the last
/// key it moved.
fn set_meta(
    c: &Connection,
    indexed: u64,
    moving: u64,
    conv: ConversationId,
    seq: u64,
) -> Result<(), StorageError> {
    c.prepare_cached(
        "UPDATE meta SET value = CASE key WHEN 'seq_indexed_upto' THEN ?1
                                          WHEN 'seq_moving_upto' THEN ?2
                                          WHEN 'seq_moved_conv' THEN ?3 ELSE ?4 END
         WHERE key IN ('seq_indexed_upto', 'seq_moving_upto', 'seq_moved_conv', 'seq_moved_seq')",
    )?
    .execute([Uint(indexed), Uint(moving), Uint(conv), Uint(seq)])?;
    Ok(())
}

/// The entries in memory above `mark` and at most `upto`, in key order: what a move whose
/// entries were lost (a sort thread that failed) takes again.
fn reread(recent: &Recent, mark: u64, upto: u64) -> Vec<Entry> {
    recent
        .sorted()
        .into_iter()
        .filter(|e| e.2 > mark && e.2 <= upto)
        .collect()
}
