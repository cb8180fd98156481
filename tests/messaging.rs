//! Reliable 1:1 messaging through the Rust client SDK: pushes in order, several devices,
//! offline sync, idempotent resends, history, search, access control and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use feige_protocol::{pb, Body, ErrorCode, PushKind, RequestKind, ResponseResult};
use feige_tests::sdk::{code, login, messages, next_message, no_message_within, register};
use feige_tests::{error_code, login_raw, TestServer};

/// The seqs of one history page of `conversation`: at most `limit`, below `before_seq`
/// (0 = from the newest), newest first.
async fn history_seqs(
    client: &feige_client::Client,
    conversation: u64,
    limit: u32,
    before_seq: u64,
) -> Vec<u64> {
    client
        .history(pb::History {
            conversation_id: conversation,
            limit,
            before_seq,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect()
}

fn text(to_user: u64, text: &str) -> pb::SendMessage {
    pb::SendMessage {
        to_user,
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn two_users_chat_both_ways_in_order() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let a = alice.clone();
    let from_alice = tokio::spawn(async move {
        let mut acks = Vec::new();
        for i in 0..30 {
            acks.push(a.send_text(bob_id, &format!("a{i}")).await.unwrap());
        }
        acks
    });
    let b = bob.clone();
    let from_bob = tokio::spawn(async move {
        for i in 0..30 {
            b.send_text(alice_id, &format!("b{i}")).await.unwrap();
        }
    });
    let acks = from_alice.await.unwrap();
    from_bob.await.unwrap();
    let to_bob = messages(&mut bob_ev, 30).await;
    let to_alice = messages(&mut alice_ev, 30).await;
    let texts: Vec<String> = to_bob.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, (0..30).map(|i| format!("a{i}")).collect::<Vec<_>>());
    let texts: Vec<String> = to_alice.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, (0..30).map(|i| format!("b{i}")).collect::<Vec<_>>());
    // One conversation, one gapless sequence shared by both directions.
    let mut seqs: Vec<u64> = to_bob.iter().chain(&to_alice).map(|m| m.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
    for (m, ack) in to_bob.iter().zip(&acks) {
        assert_eq!((m.message_id, m.seq), (ack.message_id, ack.seq));
        assert_eq!((m.from_user, m.to_user), (alice_id, bob_id));
    }
    alice.close().await;
    bob.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn every_device_gets_it_and_order_holds_under_concurrent_senders() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice1, mut alice1_ev) = login(&addr, "alice", "laptop").await;
    let (alice2, mut alice2_ev) = login(&addr, "alice", "phone").await;
    let (_bob1, mut bob1_ev) = login(&addr, "bob", "laptop").await;
    let (_bob2, mut bob2_ev) = login(&addr, "bob", "phone").await;
    // Both of alice's devices send concurrently, each with many requests in flight.
    let mut tasks = Vec::new();
    for (dev, c) in [("l", alice1.clone()), ("p", alice2.clone())] {
        for i in 0..25 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.send_text(bob_id, &format!("{dev}{i}")).await.unwrap()
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Each of bob's devices gets all 50, in sequence order, no gaps, no duplicates.
    for ev in [&mut bob1_ev, &mut bob2_ev] {
        let got = messages(ev, 50).await;
        let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
        no_message_within(ev, 200).await;
    }
    // Each of alice's devices gets the 25 the other device sent (not its own).
    let from_phone = messages(&mut alice1_ev, 25).await;
    assert!(from_phone.iter().all(|m| m.text.starts_with('p')));
    let from_laptop = messages(&mut alice2_ev, 25).await;
    assert!(from_laptop.iter().all(|m| m.text.starts_with('l')));
    no_message_within(&mut alice1_ev, 200).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn offline_recipient_syncs_a_thousand_messages_exactly_once() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let mut tasks = Vec::new();
    for chunk in 0..10 {
        let a = alice.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                a.send_text(bob_id, &format!("m{}", chunk * 100 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The server serves the missed messages in pages: raw Sync with a small limit.
    let (mut raw, _) = login_raw(&addr, "bob", "pager").await;
    let mut pos: Option<pb::ConversationPosition> = None;
    let mut pages = 0;
    let mut seqs = Vec::new();
    loop {
        let res = raw
            .call(RequestKind::Sync(pb::Sync {
                positions: pos.iter().cloned().collect(),
                limit: 300,
            }))
            .await;
        let ResponseResult::Sync(page) = res else {
            panic!("{res:?}")
        };
        pages += 1;
        for m in &page.messages {
            seqs.push(m.seq);
            pos = Some(pb::ConversationPosition {
                conversation_id: m.conversation_id,
                seq: m.seq,
            });
        }
        if !page.has_more {
            break;
        }
    }
    assert!(pages >= 4, "{pages} pages");
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());

    // Bob's SDK client logs in and syncs automatically: all 1000, in order, once.
    let (bob, mut bob_ev) = login(&addr, "bob", "desk").await;
    let got = messages(&mut bob_ev, 1000).await;
    let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());
    let ids: HashSet<u64> = got.iter().map(|m| m.message_id).collect();
    assert_eq!(ids.len(), 1000);
    no_message_within(&mut bob_ev, 300).await;
    // The device acked its position: the next login on the same device has nothing to sync,
    // and new messages still arrive.
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (bob, mut bob_ev) = login(&addr, "bob", "desk").await;
    alice.send_text(bob_id, "after").await.unwrap();
    let m = next_message(&mut bob_ev).await;
    assert_eq!((m.seq, m.text.as_str()), (1001, "after"));
    bob.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn resend_with_the_same_client_id_is_idempotent() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let (_bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let msg = pb::SendMessage {
        client_msg_id: 77,
        ..text(bob_id, "once")
    };
    let first = alice.send(msg.clone()).await.unwrap();
    let second = alice.send(msg).await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(
        (first.message_id, first.seq, first.conversation_id),
        (second.message_id, second.seq, second.conversation_id)
    );
    assert_eq!(next_message(&mut bob_ev).await.text, "once");
    no_message_within(&mut bob_ev, 300).await;
    let h = alice
        .history(pb::History {
            peer_user: bob_id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(h.len(), 1);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn history_pages_and_time_ranges() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let mut acks = Vec::new();
    for i in 1..=30 {
        acks.push(alice.send_text(bob_id, &format!("h{i}")).await.unwrap());
        // Apart in time, so that the range below (messages 5 to 9) is never one millisecond.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let conv = acks[0].conversation_id;
    let last10 = alice
        .history(pb::History {
            peer_user: bob_id,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        last10.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (21..=30).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        history_seqs(&alice, conv, 5, 21).await,
        vec![20, 19, 18, 17, 16]
    );
    let (from, until) = (acks[4].sent_at_ms, acks[9].sent_at_ms);
    let range = alice
        .history(pb::History {
            conversation_id: conv,
            limit: 100,
            since_ms: from,
            until_ms: until,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!range.is_empty());
    assert!(range
        .iter()
        .all(|m| m.sent_at_ms >= from && m.sent_at_ms < until));
    assert!(range.iter().any(|m| m.seq == 5));

    // Forward from a read position: oldest first, paged with after_seq = the last seq.
    let forward = |after_seq, before_seq, limit| {
        alice.history_page(pb::History {
            conversation_id: conv,
            limit,
            after_seq,
            before_seq,
            ..Default::default()
        })
    };
    let page = forward(12, 0, 5).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![13, 14, 15, 16, 17]);
    assert_eq!(page.messages[0].text, "h13");
    assert!(page.has_more);
    let mut seen = seqs;
    let mut after = 17;
    loop {
        let page = forward(after, 0, 5).await.unwrap();
        seen.extend(page.messages.iter().map(|m| m.seq));
        after = page.messages.last().map_or(after, |m| m.seq);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, (13..=30).collect::<Vec<_>>());
    assert!(forward(30, 0, 5).await.unwrap().messages.is_empty());
    // Between two seqs, ascending.
    let window = forward(3, 8, 100).await.unwrap();
    assert_eq!(
        window.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert!(!window.has_more);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn search_english_and_chinese_newest_first() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    for t in [
        "hello world",
        "你好世界",
        "nothing here",
        "the world is big",
        "世界和平",
    ] {
        alice.send_text(bob_id, t).await.unwrap();
    }
    let (bob, _) = login(&addr, "bob", "b").await;
    let search = |q: &str| pb::Search {
        query: q.into(),
        ..Default::default()
    };
    // The index follows the log shortly after the ack, possibly in more than one step: wait
    // until it holds all five messages (the last one is the second "世界").
    let mut found = Vec::new();
    for _ in 0..100 {
        found = bob.search(search("world")).await.unwrap();
        if found.len() == 2 && bob.search(search("世界")).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<&str> = found.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["the world is big", "hello world"]);
    let zh = bob.search(search("你好")).await.unwrap();
    assert_eq!(
        zh.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        vec!["你好世界"]
    );
    let zh = bob.search(search("世界")).await.unwrap();
    assert_eq!(zh.len(), 2);
    // Paging: one at a time, newest first.
    let first = bob
        .search(pb::Search {
            limit: 1,
            ..search("世界")
        })
        .await
        .unwrap();
    let next = bob
        .search(pb::Search {
            limit: 1,
            before_id: first[0].message_id,
            ..search("世界")
        })
        .await
        .unwrap();
    assert_eq!(
        (first[0].text.as_str(), next[0].text.as_str()),
        ("世界和平", "你好世界")
    );
    // Another user's search never sees them.
    let (carol, _) = login(&addr, "carol", "c").await;
    assert!(carol.search(search("world")).await.unwrap().is_empty());
    assert_eq!(
        code(bob.search(search("  !! ")).await),
        ErrorCode::InvalidArgument
    );
    s.handle.shutdown().await;
}

#[tokio::test]
async fn non_members_cannot_read_a_conversation() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let ack = alice.send_text(bob_id, "private").await.unwrap();
    let (carol, _) = login(&addr, "carol", "c").await;
    let r = carol
        .history(pb::History {
            conversation_id: ack.conversation_id,
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), ErrorCode::Forbidden);
    // Nor write to it.
    let r = carol
        .send(pb::SendMessage {
            conversation_id: ack.conversation_id,
            text: "let me in".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), ErrorCode::Forbidden);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn bad_messages_get_clear_errors() {
    let s = TestServer::start_with(|c| {
        c.max_text_len = 2048;
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    assert_eq!(
        code(alice.send_text(999_999, "hi").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(alice.send_text(bob_id, "").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(alice.send_text(bob_id, "   ").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(alice.send_text(bob_id, &"x".repeat(2049)).await),
        ErrorCode::TooLarge
    );
    assert_eq!(
        code(alice.send_text(alice_id, "me").await),
        ErrorCode::InvalidArgument
    );
    let none = pb::SendMessage {
        text: "x".into(),
        ..Default::default()
    };
    assert_eq!(
        code(alice.send(none.clone()).await),
        ErrorCode::InvalidArgument
    );
    let both = pb::SendMessage {
        to_user: bob_id,
        conversation_id: 1,
        ..none.clone()
    };
    assert_eq!(code(alice.send(both).await), ErrorCode::InvalidArgument);
    let missing = pb::SendMessage {
        conversation_id: 424_242,
        ..none.clone()
    };
    assert_eq!(code(alice.send(missing).await), ErrorCode::NotFound);
    let kind = pb::SendMessage {
        to_user: bob_id,
        kind: 99,
        ..none
    };
    assert_eq!(code(alice.send(kind).await), ErrorCode::InvalidArgument);
    let r = alice.history(pb::History::default()).await;
    assert_eq!(code(r), ErrorCode::InvalidArgument);
    let r = alice
        .history(pb::History {
            peer_user: 999_999,
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), ErrorCode::NotFound);
    // Nothing was stored by any of it; a good message still goes through as seq 1.
    assert_eq!(alice.send_text(bob_id, "fine").await.unwrap().seq, 1);
    let _ = error_code(&ResponseResult::Ack(pb::AckOk {}));
    s.handle.shutdown().await;
}

/// A recipient that stops reading is dropped once its socket and outbox are full; the frames
/// it did get are whole and in order (what the socket did not take of a batch was kept and
/// sent first), the sender's messages are all acked meanwhile, and on reconnecting the
/// recipient syncs every one of them.
#[tokio::test]
async fn a_recipient_that_stops_reading_is_dropped_and_later_syncs_everything() {
    let s = TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.outbox_capacity = 16;
    })
    .await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let (mut stalled, _) = login_raw(&addr, "bob", "stalled").await;
    // 2,000 messages of 16 KiB: 32 MiB, far more than loopback sockets buffer.
    let text = "x".repeat(16 * 1024 - 8);
    let mut tasks = Vec::new();
    for chunk in 0..8u32 {
        let (a, text) = (alice.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..250u32 {
                a.send_text(bob_id, &format!("{:07}{text}", chunk * 250 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Only now does bob read: whole frames, seqs 1, 2, 3... with no gap, then the close.
    let frames = stalled.expect_closed().await;
    let seqs: Vec<u64> = frames
        .iter()
        .filter_map(|f| match &f.body {
            Some(Body::Push(pb::Push {
                kind: Some(PushKind::Message(m)),
            })) => Some(m.seq),
            _ => None,
        })
        .collect();
    assert!(
        !seqs.is_empty(),
        "some messages reached bob before he stalled"
    );
    assert!(
        seqs.len() < 2000,
        "a stalled reader is dropped, not fed forever"
    );
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // The server went on; bob, back on another device, syncs all 2,000 exactly once.
    let (_bob, mut events) = login(&addr, "bob", "back").await;
    let synced: Vec<u64> = messages(&mut events, 2000)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(synced, (1..=2000).collect::<Vec<_>>());
    no_message_within(&mut events, 200).await;
    s.handle.shutdown().await;
}

/// With the sequence index moved into the database every 7 messages (the default holds
/// 262,144 in memory), every read sees each message once, wherever its index entry is:
/// history pages, the offline recipient's sync, the chat list's last message and unread
/// count, and read marks.
#[tokio::test]
async fn reads_span_the_index_in_memory_and_in_the_database() {
    let s = TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.index_batch = 7;
    })
    .await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let mut conv = 0;
    for i in 1..=100 {
        conv = alice
            .send_text(bob_id, &format!("m{i}"))
            .await
            .unwrap()
            .conversation_id;
    }
    assert_eq!(
        history_seqs(&alice, conv, 500, 0).await,
        (1..=100).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        history_seqs(&alice, conv, 10, 95).await,
        (85..=94).rev().collect::<Vec<_>>()
    );
    // Forward across the part in memory and the part in the database.
    let forward = alice
        .history(pb::History {
            conversation_id: conv,
            limit: 200,
            after_seq: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        forward.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (4..=100).collect::<Vec<_>>()
    );
    let (bob, mut bob_ev) = login(&addr, "bob", "desk").await;
    let got = messages(&mut bob_ev, 100).await;
    assert_eq!(
        got.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    assert_eq!(got[99].text, "m100");
    let list = bob.conversations().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].unread, list[0].read_seq), (100, 0));
    assert_eq!(list[0].last_seq, 100);
    assert_eq!(list[0].last_message.as_ref().map(|m| m.seq), Some(100));
    let read = bob.mark_read(conv, 40).await.unwrap();
    assert_eq!((read.seq, read.unread), (40, 60));
    let read = bob.mark_read(conv, 0).await.unwrap();
    assert_eq!((read.seq, read.unread), (100, 0));
    bob.close().await;
    s.handle.shutdown().await;
}
