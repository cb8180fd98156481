//! The conversation list through the Rust client SDK: exact unread counts synced across
//! devices, pages newest first, and snapshots combined with pushes by `last_seq`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::Event;
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_tests::sdk::{befriend, code, login, messages, next_event, register, uid};
use feige_tests::{login_raw, TestServer};

#[tokio::test]
async fn conversation_list_counts_unread_exactly_and_syncs_reads_across_devices() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let carol_id = register(&addr, "carol").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "setup").await;
    let conv = befriend(&alice, &bob).await;
    bob.close().await;
    // bob is offline while alice writes.
    for i in 1..=5 {
        alice.send_text(bob_id, &format!("m{i}")).await.unwrap();
    }
    let (phone, _pev) = login(&addr, "bob", "phone").await;
    let (laptop, mut laptop_ev) = login(&addr, "bob", "laptop").await;
    let list = phone.conversations().await.unwrap();
    assert_eq!(list.len(), 1);
    let c = &list[0];
    assert_eq!(c.conversation_id, conv);
    assert_eq!(c.peer.as_ref().unwrap().username, "alice");
    assert_eq!(c.unread, 5);
    assert_eq!(c.read_seq, 0);
    let last = c.last_message.as_ref().unwrap();
    assert_eq!((last.text.as_str(), last.seq), ("m5", 5));
    assert_eq!(c.last_active_ms, last.sent_at_ms);

    // Read on the phone: the laptop hears of it and lists the same count.
    let pos = phone.mark_read(conv, 3).await.unwrap();
    assert_eq!((pos.seq, pos.unread), (3, 2));
    let synced = next_event(&mut laptop_ev, |e| match e {
        Event::ReadPosition(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(synced, pos);
    assert_eq!(laptop.conversations().await.unwrap()[0].unread, 2);

    // Own messages never count as unread.
    laptop
        .send_text(alice.session().unwrap().user_id, "reply")
        .await
        .unwrap();
    assert_eq!(phone.conversations().await.unwrap()[0].unread, 2);
    assert_eq!(alice.conversations().await.unwrap()[0].unread, 1);

    // Never backwards; 0 = everything; past the end = the end.
    assert_eq!(phone.mark_read(conv, 1).await.unwrap().seq, 3);
    let all = phone.mark_read(conv, 0).await.unwrap();
    assert_eq!((all.seq, all.unread), (6, 0));
    assert_eq!(phone.mark_read(conv, 100).await.unwrap().seq, 6);

    // Offline again: the count is exact at the next login.
    phone.close().await;
    laptop.close().await;
    alice.send_text(bob_id, "m7").await.unwrap();
    alice.send_text(bob_id, "m8").await.unwrap();
    let (bob2, _e) = login(&addr, "bob", "tablet").await;
    let c = &bob2.conversations().await.unwrap()[0];
    assert_eq!((c.unread, c.read_seq), (2, 6));
    assert_eq!(c.last_message.as_ref().unwrap().text, "m8");

    // Most recently active first.
    let (carol, _c) = login(&addr, "carol", "c").await;
    let carol_conv = befriend(&carol, &bob2).await;
    carol.send_text(bob_id, "newest").await.unwrap();
    let list = bob2.conversations().await.unwrap();
    assert_eq!(
        list.iter().map(|c| c.conversation_id).collect::<Vec<_>>(),
        [carol_conv, conv]
    );
    assert_eq!(list[0].peer.as_ref().unwrap().user_id, carol_id);

    assert_eq!(code(carol.mark_read(conv, 0).await), ErrorCode::Forbidden);
    assert_eq!(
        code(carol.mark_read(0, 0).await),
        ErrorCode::InvalidArgument
    );
    s.handle.shutdown().await;
}

/// Requests that need a session are refused before login, like the others.
#[tokio::test]
async fn conversation_list_comes_in_pages_newest_first() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let names = ["bob", "carol", "dave", "erin", "frank"];
    let mut peers = Vec::new();
    for name in names {
        register(&addr, name).await;
        peers.push(login(&addr, name, "d").await);
    }
    let (alice, _ev) = login(&addr, "alice", "a").await;
    let mut convs = Vec::new();
    for (peer, _) in &peers {
        convs.push(befriend(&alice, peer).await);
    }
    // Activity, newest first: carol's message, alice's to bob, then the conversations without
    // messages by when they were opened (frank, erin, dave).
    tokio::time::sleep(Duration::from_millis(5)).await;
    alice.send_text(uid(&peers[0].0), "to bob").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    peers[1]
        .0
        .send_text(uid(&alice), "from carol")
        .await
        .unwrap();
    let all = alice.conversations().await.unwrap();
    let order: Vec<u64> = all.iter().map(|c| c.conversation_id).collect();
    assert_eq!(order, [convs[1], convs[0], convs[4], convs[3], convs[2]]);
    assert_eq!(all[0].last_message.as_ref().unwrap().text, "from carol");

    // Pages of 2 walk the same list, each once.
    let mut paged = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = alice.conversations_page(2, before).await.unwrap();
        pages += 1;
        assert!(page.conversations.len() <= 2);
        paged.extend(page.conversations.iter().map(|c| c.conversation_id));
        let last = page.conversations.last().unwrap();
        before = Some((last.last_active_ms, last.conversation_id));
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, order);
    // The old request (no paging fields) still answers everything at once.
    let (mut raw, _) = login_raw(&addr, "alice", "raw").await;
    match raw
        .call(RequestKind::Conversations(pb::ListConversations::default()))
        .await
    {
        feige_protocol::ResponseResult::Conversations(l) => {
            assert_eq!(l.conversations.len(), 5);
            assert!(!l.has_more);
        }
        other => panic!("{other:?}"),
    }
    // A page with an exact fit says no more follow.
    let page = alice.conversations_page(5, None).await.unwrap();
    assert_eq!((page.conversations.len(), page.has_more), (5, false));
    // A cursor id without its time is refused.
    let r = raw
        .call(RequestKind::Conversations(pb::ListConversations {
            limit: 2,
            before_active_ms: 0,
            before_id: convs[0],
        }))
        .await;
    assert_eq!(
        feige_tests::error_code(&r),
        Some(ErrorCode::InvalidArgument)
    );
    s.handle.shutdown().await;
}

/// A `conversations` snapshot taken while messages arrive, combined with the message pushes
/// by its `last_seq` (a push with a greater seq adds one), gives the exact unread count.
#[tokio::test]
async fn conversation_snapshot_and_pushes_combine_by_last_seq() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    alice.send_text(bob_id, "first").await.unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..60 {
            alice.send_text(bob_id, &format!("m{i}")).await.unwrap();
        }
        alice
    });
    // Snapshots taken while the sends go on; each must combine with the pushes to 61.
    let mut snapshots = Vec::new();
    for _ in 0..4 {
        let list = bob.conversations().await.unwrap();
        snapshots.push((list[0].unread, list[0].last_seq));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let pushes = messages(&mut bob_ev, 61).await;
    let alice = sender.await.unwrap();
    for (unread, last_seq) in snapshots {
        assert_eq!(unread, last_seq, "every message is from alice, none read");
        let later = u64::try_from(pushes.iter().filter(|m| m.seq > last_seq).count()).unwrap();
        assert_eq!(unread + later, 61, "snapshot at {last_seq}");
    }
    let list = bob.conversations().await.unwrap();
    assert_eq!((list[0].unread, list[0].last_seq), (61, 61));
    // Bob's own message is in last_seq but not in unread.
    bob.send_text(alice_id, "hi").await.unwrap();
    let list = bob.conversations().await.unwrap();
    assert_eq!((list[0].unread, list[0].last_seq), (61, 62));
    alice.close().await;
    bob.close().await;
    s.handle.shutdown().await;
}
