//! Tests of the writer's batches and bulk moves, run through `run_batch` and the state.

use super::batch::Worker;
use super::index::Next;
use super::op::{job, CommitSink, Committed, NewMessage, Op, Target};
use super::state::State;
use super::Checkpointer;
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
    st.seqs.index_at = 100;
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
/// end and the commit, and the index steps due. Returns the messages' outcomes.
fn run_batch(
    c: &Connection,
    st: &mut State,
    messages: impl IntoIterator<Item = (u64, u64)>,
) -> Vec<super::Delivered> {
    let done = commit_batch(c, st, messages);
    settle(c, st);
    done
}

/// [`run_batch`] without the index steps.
fn commit_batch(
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
                mentions: None,
                file: None,
            };
            st.insert(c, &mut m, crate::now_ms()).unwrap()
        })
        .collect();
    c.execute_batch("COMMIT").unwrap();
    st.committed();
    done
}

/// Runs index steps as an idle writer does, until none is due (or the last one failed).
fn settle(c: &Connection, st: &mut State) {
    loop {
        match st.index(c) {
            Next::Idle => return,
            Next::Work => {}
            Next::Waiting if st.seqs.failed_at.is_some() || st.pairs.failed_at.is_some() => return,
            Next::Waiting => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

/// What the writer reported for each message: its context, and (conversation, seq).
type Outcomes = Arc<std::sync::Mutex<Vec<(u32, Result<(u64, u64), String>)>>>;

struct Collect(Outcomes);

impl CommitSink<u32> for Collect {
    fn committed(&mut self, batch: &mut Vec<Committed<u32>>, _idle: bool) {
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
        rx: super::queue::Inbox::new(rx, Arc::new(tokio::sync::Semaphore::new(1))),
        sink: Box::new(Collect(out.clone())),
        state,
        max_batch: 100,
        stats: Arc::default(),
        checkpointer,
        indexer,
        since_poke: 0,
        ops_since_poke: 0,
        last_poke: std::time::Instant::now(),
        next: super::index::Next::Idle,
        op_ns: 0,
        spent: std::time::Duration::ZERO,
    };
    (w, out)
}

/// A writer that has seen ops take a whole budget each cuts what is queued into batches of
/// the fewest ops, each committed and reported on its own, in order.
#[test]
fn the_writer_cuts_what_is_queued_into_batches_that_fit_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, out) = worker(dir.path());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    w.rx = super::queue::Inbox::new(rx, Arc::new(tokio::sync::Semaphore::new(1)));
    w.max_batch = 16384;
    w.op_ns = super::batch::BATCH_BUDGET.as_nanos() as u64;
    let n = 1000u32;
    for i in 0..n {
        tx.try_send(message(i, 1 + u64::from(i % 2), 2 - u64::from(i % 2)).into())
            .unwrap();
    }
    drop(tx);
    w.run();
    let out = out.lock().unwrap();
    assert_eq!(out.len(), n as usize);
    assert!(out
        .iter()
        .enumerate()
        .all(|(i, (ctx, r))| *ctx == i as u32 && r.is_ok()));
    // 256 ops a batch: the measured time per op comes down an eighth a batch, still far
    // above what fits more than one op in the budget after four.
    let batches = w.stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(batches, 4, "batches for {n} ops");
    assert!(
        w.op_ns < super::batch::BATCH_BUDGET.as_nanos() as u64,
        "the time per op follows the batches run"
    );
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
        mentions: None,
        file: None,
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
/// tail and memory; once the fault clears, the failed move completes.
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
        st.seqs.failed_at = None;
        st.pairs.failed_at = None;
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
            after_seq: None,
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
    // The move that failed (the first 140 entries) completes; the 73 sent since wait for
    // the next one.
    assert_eq!((st.tail.len(), st.recent.len()), (0, 73));
    assert_eq!(q("SELECT count(*) FROM direct_pairs"), 30);
    assert_eq!(q("SELECT count(*) FROM message_seq"), 140);
    assert_eq!(st.seqs.waiting(), 73);
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
        mentions: None,
        file: None,
    };
    st.insert(&c, &mut m, crate::now_ms()).unwrap();
    c.execute_batch("ROLLBACK").unwrap();
    st.rolled_back();
    assert_eq!(st.recent.len(), 3);
    assert!(st.pending.is_empty());
}

/// Every conversation reads each of its messages exactly once, in seq order both ways.
fn each_once(c: &Connection, st: &State) {
    for (seqs, n) in readable(c, st) {
        assert_eq!(seqs, (1..=n).collect::<Vec<u64>>());
    }
    let view = View {
        recent: &st.recent,
        snap: Snapshot::read(c).unwrap(),
    };
    let ids: Vec<i64> = c
        .prepare("SELECT DISTINCT conversation_id FROM messages")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for conv in ids {
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM messages WHERE conversation_id = ?1",
                [conv],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(view.last_seq(c, conv as u64).unwrap(), n as u64);
        let q = crate::sequence::Query {
            conversation: conv as u64,
            range: crate::recent::Range::ALL,
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        };
        let newest_first: Vec<u64> = crate::sequence::read_by_seq(c, &view, &q, None)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(newest_first, (1..=n as u64).rev().collect::<Vec<u64>>());
    }
}

/// The move's progress in `meta`: (mark, moving mark, last key's conversation and seq).
fn move_meta(c: &Connection) -> [i64; 4] {
    [
        "seq_indexed_upto",
        "seq_moving_upto",
        "seq_moved_conv",
        "seq_moved_seq",
    ]
    .map(|k| {
        c.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .unwrap()
    })
}

/// Six users, and the writer's state with a move due at 300 entries, one step per slice.
fn sliced_moves(c: &Connection) -> State {
    let mut st = load(c, 1000);
    st.pairs_index_at = 4;
    st.seqs.index_at = 300;
    st.seqs.budget = std::time::Duration::ZERO;
    st
}

/// Runs index steps until the move has started (few entries: sorted, and the first slice
/// committed).
fn start_move(c: &Connection, st: &mut State) {
    while st.index(c) != Next::Work {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A move runs as several short transactions while messages keep coming, into the same
/// conversations too: after every slice, reads see each message exactly once and in order;
/// a snapshot older than the move's end must read again once moved entries leave memory;
/// and a state reloaded between the move's end and the drop (after a failed batch) drops
/// them itself.
#[test]
fn a_move_in_slices_keeps_each_message_readable_exactly_once() {
    let (c, pairs) = six_users();
    let mut st = sliced_moves(&c);
    for b in 0..3 {
        commit_batch(
            &c,
            &mut st,
            (0..100).map(|i| pairs[(b * 100 + i) % pairs.len()]),
        );
    }
    let upto = st.last_id as i64;
    start_move(&c, &mut st);
    let mut slices = 1;
    let mut old = None;
    let mut sent = 0;
    while move_meta(&c)[0] != upto {
        each_once(&c, &st);
        old = Some(Snapshot::read(&c).unwrap());
        commit_batch(&c, &mut st, (0..7).map(|i| pairs[(sent + i) % pairs.len()]));
        sent += 7;
        assert_eq!(st.index(&c), Next::Work);
        slices += 1;
        let [mark, moving, _, _] = move_meta(&c);
        assert!(moving == upto || (moving == 0 && mark == upto));
    }
    // 300 entries, 64 a slice.
    assert_eq!(slices, 5);
    each_once(&c, &st);
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(q("SELECT count(*) FROM message_seq"), 300);
    assert_eq!(move_meta(&c), [upto, 0, 0, 0]);
    // The moved entries are still in memory: a reload drops them.
    assert_eq!(st.recent.len(), 300 + sent);
    let recent = st.recent.clone();
    let mut st = State::load(&c, DirectPolicy::Anyone, 1000, recent, 300).unwrap();
    assert_eq!(st.recent.len(), sent);
    assert!(matches!(
        st.recent.view(1, old.unwrap(), crate::recent::Range::ALL),
        Err(crate::StorageError::SnapshotMoved)
    ));
    each_once(&c, &st);
    settle(&c, &mut st);
    assert_eq!(st.seqs.waiting(), sent);
    each_once(&c, &st);
}

/// A restart in the middle of a move (some slices committed) resumes it after the last key
/// moved: reads before and after see each message once, new messages get ids above the
/// move's mark, and the move ends with every entry in `message_seq` once.
#[test]
fn a_restart_in_the_middle_of_a_move_resumes_it() {
    let (c, pairs) = six_users();
    let mut st = sliced_moves(&c);
    for b in 0..3 {
        commit_batch(
            &c,
            &mut st,
            (0..100).map(|i| pairs[(b * 100 + i) % pairs.len()]),
        );
    }
    let upto = st.last_id;
    start_move(&c, &mut st);
    assert_eq!(st.index(&c), Next::Work);
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(q("SELECT count(*) FROM message_seq"), 128);
    let [mark, moving, conv, seq] = move_meta(&c);
    assert_eq!((mark, moving), (0, upto as i64));
    assert!(conv > 0 && seq > 0);
    // The process dies: nothing of the writer's memory survives.
    drop(st);
    let mut st = sliced_moves(&c);
    assert_eq!(
        st.recent.len(),
        300,
        "every entry above the mark is loaded again"
    );
    each_once(&c, &st);
    let fresh = commit_batch(&c, &mut st, pairs.iter().copied().take(10));
    assert!(fresh.iter().all(|d| d.message.id > upto));
    each_once(&c, &st);
    settle(&c, &mut st);
    assert_eq!(q("SELECT count(*) FROM message_seq"), 300);
    assert_eq!(move_meta(&c), [upto as i64, 0, 0, 0]);
    assert_eq!(st.recent.len(), 10);
    each_once(&c, &st);
    assert_eq!(sliced_moves(&c).recent.len(), 10);
}

/// Each user's conversations as `memberships` lists them, against the conversations table;
/// and every pair found in both orders.
fn memberships_once(c: &Connection) {
    let list = |sql: &str| -> Vec<(i64, i64)> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        list("SELECT user_id, conversation_id FROM memberships ORDER BY 1, 2"),
        list(
            "SELECT user_a, id FROM conversations UNION ALL SELECT user_b, id FROM conversations
             ORDER BY 1, 2"
        )
    );
    for (a, b, id) in c
        .prepare("SELECT user_a, user_b, id FROM conversations")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<(i64, i64, i64)>>()
    {
        let found = |x: i64, y: i64| crate::pairs::direct_conversation(c, x as u64, y as u64);
        assert_eq!(found(a, b).unwrap(), Some(id as u64));
        assert_eq!(found(b, a).unwrap(), Some(id as u64));
    }
}

/// The pairs' tail moves in slices: during the move and after a restart in its middle, each
/// membership is listed once and every pair is found; the restarted writer resumes the move
/// after its last key, and at its end the index holds both directions of every pair once.
#[test]
fn a_pairs_move_in_slices_lists_each_membership_once_across_a_restart() {
    let c = crate::schema::migrated_in_memory();
    for i in 1..=30 {
        crate::account::insert_user(&c, &format!("u{i}"), "n", b"s", b"h").unwrap();
    }
    let pairs: Vec<(u64, u64)> = (1..=30u64)
        .flat_map(|a| (a + 1..=30).map(move |b| (a, b)))
        .collect();
    let setup = |c: &Connection| {
        let mut st = load(c, 100_000);
        st.pairs_index_at = 400;
        st.pairs.budget = std::time::Duration::ZERO;
        st
    };
    let mut st = setup(&c);
    commit_batch(&c, &mut st, pairs.iter().copied());
    assert_eq!(st.tail.len(), 435);
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    for slices in 1..=3 {
        assert_eq!(st.index(&c), Next::Work);
        assert_eq!(q("SELECT count(*) FROM direct_pairs"), 64 * slices);
        memberships_once(&c);
    }
    assert!(q("SELECT value FROM meta WHERE key = 'pairs_moving_upto'") > 0);
    drop(st);
    let mut st = setup(&c);
    assert!(st.pairs.busy());
    memberships_once(&c);
    // A pair opened during the move stays in the tail after it.
    let extra = crate::account::insert_user(&c, "late", "n", b"s", b"h")
        .unwrap()
        .id;
    commit_batch(&c, &mut st, [(extra, 1)]);
    settle(&c, &mut st);
    assert_eq!(q("SELECT count(*) FROM direct_pairs"), 870);
    assert_eq!(st.tail.len(), 1);
    assert_eq!(
        q("SELECT value FROM meta WHERE key = 'pairs_indexed_upto'"),
        435
    );
    assert_eq!(
        q("SELECT value FROM meta WHERE key = 'pairs_moving_upto'"),
        0
    );
    memberships_once(&c);
}

/// A message to conversation `group` from `from`, reported with `ctx`.
fn group_message(ctx: u32, from: u64, group: u64) -> Op<u32> {
    Op::Message(NewMessage {
        ctx,
        sender: from,
        target: Target::Conversation(group),
        client_msg_id: 0,
        kind: 0,
        text: "x".into(),
        mentions: None,
        file: None,
    })
}

/// A group of users 1 (owner), 2 and 3, made directly in the database; its id.
fn group_of_three(c: &Connection) -> u64 {
    c.execute_batch(
        "INSERT INTO conversations(kind, created_at_ms) VALUES (2, 0);
         INSERT INTO groups(conversation_id, name, owner_id, created_at_ms)
             VALUES (last_insert_rowid(), 'g', 1, 0);
         INSERT INTO members(user_id, conversation_id, joined_at_ms, role)
             SELECT 1, MAX(id), 0, 2 FROM conversations;
         INSERT INTO members(user_id, conversation_id, joined_at_ms, role)
             SELECT 2, MAX(id), 0, 0 FROM conversations;
         INSERT INTO members(user_id, conversation_id, joined_at_ms, role)
             SELECT 3, MAX(id), 0, 0 FROM conversations;",
    )
    .unwrap();
    c.query_row("SELECT MAX(id) FROM conversations", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

/// A group change takes its place in its batch: a message before it is judged by the
/// members before, one after by the members after, and its notice gets the seq between.
#[test]
fn a_group_change_is_ordered_with_the_messages_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, out) = worker(dir.path());
    let g = group_of_three(&w.conn);
    let (leave, mut left) =
        super::groups::group_job(20, 3, Some(g), move |c, _, _| crate::group::leave(c, 3, g));
    run(
        &mut w,
        vec![
            group_message(10, 3, g),
            Op::Group(leave),
            group_message(30, 3, g),
            group_message(40, 2, g),
        ],
    );
    assert!(left.try_recv().unwrap().is_ok());
    let got = std::mem::take(&mut *out.lock().unwrap());
    assert_eq!(
        got,
        vec![
            (10, Ok((g, 1))),
            (20, Ok((g, 2))),
            (30, Err("you are not a member of this group".to_owned())),
            (40, Ok((g, 3))),
        ]
    );
    // A change that fails leaves everything as it was: no notice, 3 still speaks.
    let (refused, mut answer) = super::groups::group_job(50, 2, Some(g), move |c, _, _| {
        crate::group::remove(c, 2, g, 1)
    });
    run(&mut w, vec![Op::Group(refused), group_message(60, 1, g)]);
    assert!(matches!(
        answer.try_recv().unwrap(),
        Err(crate::StorageError::NotAllowed(_))
    ));
    assert_eq!(*out.lock().unwrap(), vec![(60, Ok((g, 4)))]);
}
