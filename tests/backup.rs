//! Online backup and restore: a backup taken while clients send holds every message acked
//! before it began, and a server started on a restored copy continues each conversation's
//! sequence without a gap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use feige_client::Client;
use feige_protocol::pb;
use feige_tests::sdk::{login, register};
use feige_tests::{DmPolicy, TestServer};
use tokio::sync::Mutex;

/// Senders per user, each sending one message at a time to the user's partner.
const SENDERS: usize = 4;

/// Every message of `conversation`, oldest first, read page by page.
async fn whole_history(client: &Client, conversation: u64) -> Vec<pb::Message> {
    let mut out = Vec::new();
    let mut before_seq = 0;
    loop {
        let page = client
            .history_page(pb::History {
                conversation_id: conversation,
                limit: 200,
                before_seq,
                ..Default::default()
            })
            .await
            .unwrap();
        out.extend(page.messages.iter().cloned());
        match page.messages.last() {
            Some(m) if page.has_more => before_seq = m.seq,
            _ => break,
        }
    }
    out.reverse();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acked_message() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let names = ["ann", "ben", "cat", "dan"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(register(&addr, n).await);
    }
    // ann <-> ben, cat <-> dan, both ways.
    let stop = Arc::new(AtomicBool::new(false));
    // (sender's index, ack)
    let acked: Arc<Mutex<Vec<(usize, pb::SendOk)>>> = Arc::default();
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let (c, _events) = login(&addr, n, "load").await;
        let to = ids[i ^ 1];
        for k in 0..SENDERS {
            let (c, stop, acked) = (c.clone(), stop.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let mut sent = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let ok = c.send_text(to, &format!("{k}-{sent}")).await.unwrap();
                    acked.lock().await.push((i, ok));
                    sent += 1;
                }
            }));
        }
        clients.push(c);
    }
    // Let the load build up, then take what was acked so far and back up.
    while acked.lock().await.len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: Vec<(usize, pb::SendOk)> = acked.lock().await.clone();
    let out = tempfile::tempdir().unwrap();
    let (data_dir, copy_to) = (s.dir.path().to_owned(), out.path().join("copy"));
    let report =
        tokio::task::spawn_blocking(move || feige_storage::backup::backup(&data_dir, &copy_to))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(report.databases, ["feige-search.db", "feige.db"]);
    // The load went on during the backup.
    let during = acked.lock().await.len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let total = acked.lock().await.len();
    assert!(total > during && during >= before.len(), "sends went on");
    for c in clients {
        c.close().await;
    }
    s.handle.shutdown().await;

    // Restore: copy the backup into a fresh data directory and start a server on it.
    let fresh = tempfile::tempdir().unwrap();
    for db in &report.databases {
        std::fs::copy(report.dir.join(db), fresh.path().join(db)).unwrap();
    }
    let restored_dir = fresh.path().to_owned();
    let r = TestServer::start_with(|c| {
        c.data_dir = restored_dir;
        c.dm_policy = DmPolicy::Anyone;
    })
    .await;
    let addr = r.addr();
    let (ann, _) = login(&addr, "ann", "check").await;
    let (cat, _) = login(&addr, "cat", "check").await;
    // conversation -> (ann's pair or cat's, the ids acked before the backup)
    let mut by_conv: BTreeMap<u64, (bool, HashSet<u64>)> = BTreeMap::new();
    for (i, ok) in &before {
        let e = by_conv.entry(ok.conversation_id).or_default();
        e.0 = *i < 2;
        e.1.insert(ok.message_id);
    }
    assert_eq!(by_conv.len(), 2, "two conversations");
    let mut last = BTreeMap::new();
    for (conv, (anns, want)) in &by_conv {
        let msgs = whole_history(if *anns { &ann } else { &cat }, *conv).await;
        let have: HashSet<u64> = msgs.iter().map(|m| m.message_id).collect();
        let missing: Vec<&u64> = want.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "acked before the backup, lost: {missing:?}"
        );
        let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
        let gapless: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, gapless, "conversation {conv}: gapless from 1");
        last.insert(*conv, seqs.len() as u64);
    }
    // New messages continue each sequence where the backup ended.
    let ok = ann.send_text(ids[1], "after restore").await.unwrap();
    assert_eq!(ok.seq, last[&ok.conversation_id] + 1);
    let ok = cat.send_text(ids[3], "after restore").await.unwrap();
    assert_eq!(ok.seq, last[&ok.conversation_id] + 1);
    r.handle.shutdown().await;
}
