use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use super::Store;
use crate::files::private_files;
use crate::{account, pairs};
use crate::{
    CommitSink, Committed, ConversationPosition, Delivered, DirectPolicy, HistoryQuery, NewMessage,
    StorageError, StoreOptions, StoredMessage, Target, UserId, Writer,
};

struct ChannelSink(std_mpsc::Sender<(u32, Result<Delivered, StorageError>)>);
impl CommitSink<u32> for ChannelSink {
    fn committed(&mut self, batch: &mut Vec<Committed<u32>>, _idle: bool) {
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
fn open_store_with(dir: &std::path::Path, index_batch: usize) -> (Store, Writer<u32>, Outcomes) {
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
        mentions: None,
        file: None,
    }
}

/// An existing data directory and database files that others may read are tightened to
/// 0700 and 0600, the WAL and shared-memory files included; a shared directory (sticky
/// bit) is left as it is.
#[cfg(unix)]
#[tokio::test]
async fn loose_permissions_are_tightened_at_open() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
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
        after_seq: None,
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
        after_seq: None,
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
                after_seq: None,
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
                    after_seq: None,
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

/// Messages queued together reach the writer as one entry and commit in one batch, in
/// order; a list longer than the queue's room is queued in parts and all of it commits.
#[tokio::test]
async fn messages_queued_together_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std_mpsc::channel();
    let opts = StoreOptions {
        direct_policy: DirectPolicy::Anyone,
        queue_capacity: 4,
        ..StoreOptions::default()
    };
    let (_store, w) = Store::open(dir.path(), opts, Box::new(ChannelSink(tx))).unwrap();
    let a = user(&w, "alice").await;
    let b = user(&w, "bob").await;
    settled(&w).await;
    let round = |first: u32, n: u32| {
        let msgs: Vec<NewMessage<u32>> = (first..first + n)
            .map(|i| msg(i, a, b, u64::from(i)))
            .collect();
        msgs
    };
    let before = w.stats().batches.load(Ordering::Relaxed);
    let mut msgs = round(1, 5);
    w.send_messages(&mut msgs).await.unwrap();
    assert!(msgs.is_empty());
    let got: Vec<(u32, u64)> = (0..5)
        .map(|_| {
            let (ctx, r) = rx.recv().unwrap();
            (ctx, r.unwrap().message.seq)
        })
        .collect();
    assert_eq!(got, [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
    assert_eq!(w.stats().batches.load(Ordering::Relaxed), before + 1);
    // Twelve with room for five per entry: three entries, every message once, in order.
    let mut msgs = round(6, 12);
    w.send_messages(&mut msgs).await.unwrap();
    let ctxs: Vec<u32> = (0..12).map(|_| rx.recv().unwrap().0).collect();
    assert_eq!(ctxs, (6..18).collect::<Vec<u32>>());
    // The room taken by the lists came back: another full list still fits.
    let mut msgs = round(18, 5);
    w.send_messages(&mut msgs).await.unwrap();
    let ctxs: Vec<u32> = (0..5).map(|_| rx.recv().unwrap().0).collect();
    assert_eq!(ctxs, (18..23).collect::<Vec<u32>>());
}

/// Once the writer has stopped, queueing messages fails and leaves every one of them with the
/// caller, a single one included, so each can be answered with the error.
#[tokio::test]
async fn messages_the_writer_cannot_take_stay_with_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, w, _rx) = open_store(dir.path());
    let a = user(&w, "alice").await;
    let b = user(&w, "bob").await;
    w.shutdown().await;
    for n in [1u32, 3] {
        let mut msgs: Vec<NewMessage<u32>> = (1..=n).map(|i| msg(i, a, b, u64::from(i))).collect();
        assert!(matches!(
            w.send_messages(&mut msgs).await,
            Err(StorageError::WorkerGone)
        ));
        let ctxs: Vec<u32> = msgs.iter().map(|m| m.ctx).collect();
        assert_eq!(ctxs, (1..=n).collect::<Vec<u32>>());
    }
}
