//! The move of the direct pairs' tail into `direct_pairs`, in short slices.
//!
//! The tail (every direct conversation above `meta.pairs_indexed_upto`, see [`crate::pairs`])
//! is held by the writer; a move takes all of it, up to the newest conversation (its mark),
//! both directions of each pair sorted by key, and inserts them between batches a slice at a
//! time like the sequence index ([`super::index::slice`]). Each slice records the move's mark
//! and the last key it moved (`pairs_moving_upto`, `pairs_moved_user`, `pairs_moved_peer`);
//! the last raises `pairs_indexed_upto` instead. The `memberships` view skips a tail row that
//! the running move has already put in `direct_pairs`, so each membership is listed once;
//! a lookup by pair tries `direct_pairs` and then the whole tail, so it finds the pair
//! whichever half holds it. The writer keeps the moved pairs in its tail until the move ends.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::index::{slice, Cost, Next, MOVE_RETRY, SLICE_BUDGET};
use crate::int::{get_u64, Uint};
use crate::recent::Entry;
use crate::{ConversationId, IdMap as HashMap, StorageError, UserId};

/// Pairs a move takes at most (sorting their rows takes a few milliseconds).
const MOVE_AT_MOST: usize = 16_384;

/// A move under way: `rows[..next]` are in `direct_pairs`.
struct Moving {
    upto: ConversationId,
    rows: Vec<Entry>,
    next: usize,
}

/// The writer's side of the pairs move (see the module doc).
pub(super) struct PairMove {
    moving: Option<Moving>,
    /// When a slice last failed: the next waits [`MOVE_RETRY`].
    pub(super) failed_at: Option<Instant>,
    cost: Cost,
    /// [`SLICE_BUDGET`] (zero in tests: one step per slice).
    pub(super) budget: Duration,
    /// The running move's start, slice count and longest slice, for its log line.
    started: Instant,
    slices: u32,
    longest: Duration,
}

/// Both directions of each pair in `tail` with a conversation up to `upto`, in key order.
fn rows(tail: &HashMap<(UserId, UserId), ConversationId>, upto: ConversationId) -> Vec<Entry> {
    let mut rows: Vec<Entry> = Vec::with_capacity(tail.len() * 2);
    for (&(a, b), &id) in tail {
        if id <= upto {
            rows.push((a, b, id));
            rows.push((b, a, id));
        }
    }
    rows.sort_unstable();
    rows
}

impl PairMove {
    /// The move as the database left it: one under way resumes after its last key. `tail`
    /// is every direct conversation above the mark.
    ///
    /// # Errors
    /// Database errors.
    pub(super) fn load(
        c: &Connection,
        tail: &HashMap<(UserId, UserId), ConversationId>,
    ) -> Result<PairMove, StorageError> {
        let meta = |key: &str| -> Result<u64, StorageError> {
            let v = c
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| get_u64(r, 0))?;
            Ok(v)
        };
        let upto = meta("pairs_moving_upto")?;
        let moved = (meta("pairs_moved_user")?, meta("pairs_moved_peer")?);
        let moving = (upto > 0).then(|| {
            let rows = rows(tail, upto);
            let next = rows.partition_point(|r| (r.0, r.1) <= moved);
            Moving { upto, rows, next }
        });
        Ok(PairMove {
            moving,
            failed_at: None,
            cost: Cost::default(),
            budget: SLICE_BUDGET,
            started: Instant::now(),
            slices: 0,
            longest: Duration::ZERO,
        })
    }

    /// Whether a move is under way.
    pub(super) fn busy(&self) -> bool {
        self.moving.is_some()
    }

    /// Starts a move of the tail (the caller holds all of it): all of it up to the newest
    /// conversation, or, when it holds more than [`MOVE_AT_MOST`] pairs, its oldest ones, so
    /// that sorting a move's rows stays short.
    ///
    /// # Errors
    /// Database errors.
    pub(super) fn start(
        &mut self,
        c: &Connection,
        tail: &HashMap<(UserId, UserId), ConversationId>,
    ) -> Result<(), StorageError> {
        let upto = if tail.len() > MOVE_AT_MOST {
            let mut ids: Vec<ConversationId> = tail.values().copied().collect();
            *ids.select_nth_unstable(MOVE_AT_MOST - 1).1
        } else {
            crate::pairs::newest(c)?
        };
        self.moving = Some(Moving {
            upto,
            rows: rows(tail, upto),
            next: 0,
        });
        self.started = Instant::now();
        self.slices = 0;
        self.longest = Duration::ZERO;
        Ok(())
    }

    /// Between batches: one slice of the move under way. When it ends, the moved pairs
    /// leave `tail` and `seen` is at least the move's mark.
    pub(super) fn step(
        &mut self,
        c: &Connection,
        tail: &mut HashMap<(UserId, UserId), ConversationId>,
        seen: &mut ConversationId,
    ) -> Next {
        let Some(m) = self.moving.as_mut() else {
            return Next::Idle;
        };
        if self.failed_at.is_some_and(|t| t.elapsed() < MOVE_RETRY) {
            return Next::Waiting;
        }
        let started = Instant::now();
        let rest = &m.rows[m.next..];
        let upto = m.upto;
        let moved = slice(
            c,
            "direct_pairs(user_id, peer_id, conversation_id)",
            rest,
            self.budget,
            &mut self.cost,
            |c, n| match rest.get(n.wrapping_sub(1)) {
                Some(last) if n < rest.len() => set_meta(c, None, upto, last.0, last.1),
                _ => set_meta(c, Some(upto), 0, 0, 0),
            },
        );
        match moved {
            Ok(n) => {
                self.failed_at = None;
                self.slices += 1;
                self.longest = self.longest.max(started.elapsed());
                m.next += n;
                if m.next < m.rows.len() {
                    return Next::Work;
                }
                tracing::debug!(
                    rows = m.rows.len(),
                    slices = self.slices,
                    longest_us = self.longest.as_micros() as u64,
                    ms = self.started.elapsed().as_millis() as u64,
                    "moved the direct pairs' tail into the index"
                );
                tail.retain(|_, id| *id > upto);
                *seen = (*seen).max(upto);
                self.moving = None;
                Next::Idle
            }
            Err(e) => {
                self.failed_at = Some(Instant::now());
                tracing::warn!(error = %e, "indexing direct pairs failed");
                Next::Waiting
            }
        }
    }
}

/// Records a slice's progress: the mark when the move ends (else unchanged), the running
/// move's mark (0 = none), and the last key it moved.
fn set_meta(
    c: &Connection,
    indexed: Option<ConversationId>,
    moving: ConversationId,
    user: UserId,
    peer: UserId,
) -> Result<(), StorageError> {
    if let Some(mark) = indexed {
        c.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'pairs_indexed_upto'")?
            .execute([Uint(mark)])?;
    }
    c.prepare_cached(
        "UPDATE meta SET value = CASE key WHEN 'pairs_moving_upto' THEN ?1
                                          WHEN 'pairs_moved_user' THEN ?2 ELSE ?3 END
         WHERE key IN ('pairs_moving_upto', 'pairs_moved_user', 'pairs_moved_peer')",
    )?
    .execute([Uint(moving), Uint(user), Uint(peer)])?;
    Ok(())
}
