//! Delivery and read receipts and recall through the Rust client SDK: 1:1 receipts pushed
//! when the peer's devices receive and read, group receipts counted from the members' read
//! positions, recall by the sender or a group admin within the window, and recalled messages
//! in history, sync, search and the search index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::{Client, ClientConfig, Event, Events};
use feige_protocol::{pb, ErrorCode};
use feige_tests::sdk::{
    befriend, code, login, next_event, next_message, no_event_within, register, uid, PASSWORD,
};
use feige_tests::TestServer;

fn receipt(conv: u64) -> impl FnMut(Event) -> Option<pb::ReadReceipt> {
    move |e| match e {
        Event::ReadReceipt(r) if r.conversation_id == conv => Some(r),
        _ => None,
    }
}

fn recalled(e: Event) -> Option<pb::MessageRecalled> {
    match e {
        Event::MessageRecalled(r) => Some(r),
        _ => None,
    }
}

/// A client of `name` on `device` that neither syncs nor acks by itself.
async fn manual(addr: &str, name: &str, device: &str) -> (Client, Events) {
    let config = ClientConfig {
        device: device.to_owned(),
        auto_sync: false,
        ..ClientConfig::new(addr)
    };
    let (c, e) = Client::connect(config).await.unwrap();
    c.login(name, PASSWORD).await.unwrap();
    (c, e)
}

fn text_to_conv(conversation_id: u64, text: &str) -> pb::SendMessage {
    pb::SendMessage {
        conversation_id,
        text: text.to_owned(),
        kind: pb::MessageKind::Text as i32,
        ..Default::default()
    }
}

fn at(conversation_id: u64, seq: u64) -> pb::ConversationPosition {
    pb::ConversationPosition {
        conversation_id,
        seq,
    }
}

#[tokio::test]
async fn direct_receipts_follow_the_peers_devices_and_reads() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = manual(&addr, "bob", "phone").await;
    let (bob2, _bob2_ev) = manual(&addr, "bob", "laptop").await;
    let (carol, _) = login(&addr, "carol", "c").await;
    let conv = befriend(&alice, &bob).await;
    for t in ["one", "two", "three"] {
        alice.send_text(bob_id, t).await.unwrap();
    }

    // Sent, not yet delivered.
    let r = alice.receipts(conv, 2).await.unwrap();
    assert!(r.direct);
    assert_eq!((r.read_count, r.unread_count), (0, 1));
    assert_eq!((r.peer_read_seq, r.peer_delivered_seq), (0, 0));

    // One Ack naming the conversation twice: one push, at the highest seq.
    bob.ack(vec![at(conv, 1), at(conv, 2)]).await.unwrap();
    let got = next_event(&mut alice_ev, receipt(conv)).await;
    assert_eq!(
        (got.user_id, got.read_seq, got.delivered_seq),
        (bob_id, 0, 2)
    );
    no_event_within(&mut alice_ev, 200, receipt(conv)).await;
    // Another device of bob at or below the user's delivered position moves nothing.
    bob2.ack(vec![at(conv, 2)]).await.unwrap();
    bob.ack(vec![at(conv, 1)]).await.unwrap();
    no_event_within(&mut alice_ev, 200, receipt(conv)).await;
    // ...further, it does.
    bob2.ack(vec![at(conv, 3)]).await.unwrap();
    let got = next_event(&mut alice_ev, receipt(conv)).await;
    assert_eq!((got.read_seq, got.delivered_seq), (0, 3));

    // Reading: a push with both positions; reading again at the same place pushes nothing.
    bob.mark_read(conv, 2).await.unwrap();
    let got = next_event(&mut alice_ev, receipt(conv)).await;
    assert_eq!((got.read_seq, got.delivered_seq), (2, 3));
    bob.mark_read(conv, 1).await.unwrap();
    no_event_within(&mut alice_ev, 200, receipt(conv)).await;

    let r = alice.receipts(conv, 2).await.unwrap();
    assert_eq!((r.read_count, r.unread_count), (1, 0));
    assert_eq!(
        r.readers.iter().map(|u| u.user_id).collect::<Vec<_>>(),
        [bob_id]
    );
    assert_eq!((r.peer_read_seq, r.peer_delivered_seq), (2, 3));
    let r = alice.receipts(conv, 3).await.unwrap();
    assert_eq!((r.read_count, r.unread_count), (0, 1));
    // Bob sees alice's side: her devices hold her own messages, she has read nothing.
    let r = bob.receipts(conv, 3).await.unwrap();
    assert_eq!(r.peer_read_seq, 0);
    assert_eq!(
        r.read_count, 0,
        "the message was alice's: bob has not read seq 3"
    );
    // Alice's devices acking her own messages moved nothing bob needs to hear of.
    no_event_within(&mut bob_ev, 200, receipt(conv)).await;

    // Refusals.
    assert_eq!(code(carol.receipts(conv, 1).await), ErrorCode::Forbidden);
    assert_eq!(code(alice.receipts(conv, 9).await), ErrorCode::NotFound);
    assert_eq!(
        code(alice.receipts(conv, 0).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(code(alice.receipts(0, 1).await), ErrorCode::InvalidArgument);
    assert_eq!(code(alice.receipts(1 << 62, 1).await), ErrorCode::Forbidden);
}

#[tokio::test]
async fn the_sdk_acks_on_its_own_so_the_sender_sees_delivered() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let conv = befriend(&alice, &bob).await;
    alice.send_text(bob_id, "hi").await.unwrap();
    next_message(&mut bob_ev).await;
    let got = next_event(&mut alice_ev, receipt(conv)).await;
    assert_eq!((got.read_seq, got.delivered_seq), (0, 1));
}

/// Makes conversation 424242 a group of `members` (user, role), as the groups requests
/// would, writing the server's database beside it.
fn make_group(s: &TestServer, members: &[(u64, i64)]) -> u64 {
    let db = rusqlite::Connection::open(s.dir.path().join("feige.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "INSERT INTO conversations(id, kind, created_at_ms) VALUES (424242, 2, 0);
         INSERT INTO groups(conversation_id, name, owner_id, created_at_ms)
             VALUES (424242, 'team', 0, 0);",
    )
    .unwrap();
    for (user, role) in members {
        db.execute(
            "INSERT INTO members(user_id, conversation_id, joined_at_ms, role)
             VALUES (?1, 424242, 0, ?2)",
            rusqlite::params![*user as i64, role],
        )
        .unwrap();
    }
    424242
}

#[tokio::test]
async fn group_receipts_count_readers_for_the_sender_and_admins() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let owner = register(&addr, "owner").await;
    let admin = register(&addr, "admin").await;
    let m1 = register(&addr, "mem1").await;
    let m2 = register(&addr, "mem2").await;
    let g = make_group(&s, &[(owner, 2), (admin, 1), (m1, 0), (m2, 0)]);
    let (o, _) = login(&addr, "owner", "d").await;
    let (a, _) = login(&addr, "admin", "d").await;
    let (c1, _) = login(&addr, "mem1", "d").await;
    let (c2, mut c2_ev) = login(&addr, "mem2", "d").await;
    let sent = c1.send(text_to_conv(g, "from m1")).await.unwrap();
    assert_eq!(sent.seq, 1);
    o.send(text_to_conv(g, "from the owner")).await.unwrap();
    a.mark_read(g, 1).await.unwrap();
    c2.mark_read(g, 2).await.unwrap();
    // No per-reader push in groups.
    no_event_within(&mut c2_ev, 200, |e| match e {
        Event::ReadReceipt(r) => Some(r),
        _ => None,
    })
    .await;

    // Seq 1 (m1's): read by the admin and m2, not by the owner.
    for asker in [&c1, &o, &a] {
        let r = asker.receipts(g, 1).await.unwrap();
        assert!(!r.direct);
        assert_eq!((r.read_count, r.unread_count), (2, 1));
        let mut readers: Vec<u64> = r.readers.iter().map(|u| u.user_id).collect();
        readers.sort_unstable();
        assert_eq!(readers, [admin, m2]);
    }
    // A plain member may not ask about another's message; the owner's own: m2 read it.
    assert_eq!(code(c2.receipts(g, 1).await), ErrorCode::Forbidden);
    let r = o.receipts(g, 2).await.unwrap();
    assert_eq!((r.read_count, r.unread_count), (1, 2));
    assert_eq!(r.readers[0].user_id, m2);
    assert_eq!(uid(&c2), m2);
}

#[tokio::test]
async fn recall_in_a_direct_chat_reaches_both_and_rewrites_history() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    let (alice2, mut alice2_ev) = login(&addr, "alice", "a2").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (carol, _) = login(&addr, "carol", "c").await;
    let conv = befriend(&alice, &bob).await;
    let sent = alice.send_text(bob_id, "secret plan").await.unwrap();
    alice.send_text(bob_id, "keep this").await.unwrap();
    next_message(&mut bob_ev).await;

    // Only the sender, in the conversation, for a message that exists.
    assert_eq!(code(bob.recall(conv, sent.seq).await), ErrorCode::Forbidden);
    assert_eq!(
        code(carol.recall(conv, sent.seq).await),
        ErrorCode::Forbidden
    );
    assert_eq!(code(alice.recall(conv, 99).await), ErrorCode::NotFound);
    assert_eq!(
        code(alice.recall(conv, 0).await),
        ErrorCode::InvalidArgument
    );

    alice.recall(conv, sent.seq).await.unwrap();
    for ev in [&mut bob_ev, &mut alice2_ev] {
        let r = next_event(ev, recalled).await;
        assert_eq!(
            (r.conversation_id, r.seq, r.message_id, r.recalled_by),
            (conv, sent.seq, sent.message_id, alice_id)
        );
    }
    // The recalling connection hears the answer, not a push.
    no_event_within(&mut alice_ev, 200, recalled).await;
    assert_eq!(
        code(alice.recall(conv, sent.seq).await),
        ErrorCode::AlreadyRecalled
    );

    let history = bob
        .history(pb::History {
            conversation_id: conv,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    let (kept, gone) = (&history[0], &history[1]);
    assert_eq!(kept.text, "keep this");
    assert_eq!(gone.kind, pb::MessageKind::Recalled as i32);
    assert_eq!((gone.text.as_str(), gone.recalled_by), ("", alice_id));
    assert_eq!(gone.seq, sent.seq);
    // A new device syncs it as recalled too.
    let (_bob3, mut bob3_ev) = login(&addr, "bob", "new-device").await;
    let first = next_message(&mut bob3_ev).await;
    assert_eq!(
        (first.seq, first.kind),
        (sent.seq, pb::MessageKind::Recalled as i32)
    );
    assert!(first.text.is_empty());
    // Clients cannot send the kind themselves.
    let fake = pb::SendMessage {
        to_user: bob_id,
        kind: pb::MessageKind::Recalled as i32,
        text: "x".into(),
        ..Default::default()
    };
    assert_eq!(code(alice2.send(fake).await), ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn recall_after_the_window_is_refused() {
    let s = TestServer::start_with(|c| c.recall_window_s = 0).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let (bob, _) = login(&addr, "bob", "b").await;
    let conv = befriend(&alice, &bob).await;
    let sent = alice.send_text(bob_id, "too late").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        code(alice.recall(conv, sent.seq).await),
        ErrorCode::RecallExpired
    );
}

#[tokio::test]
async fn a_group_admin_recalls_a_members_message_and_every_member_hears() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let owner = register(&addr, "owner").await;
    let admin = register(&addr, "admin").await;
    let m1 = register(&addr, "mem1").await;
    let m2 = register(&addr, "mem2").await;
    let g = make_group(&s, &[(owner, 2), (admin, 1), (m1, 0), (m2, 0)]);
    let (o, mut o_ev) = login(&addr, "owner", "d").await;
    let (a, _) = login(&addr, "admin", "d").await;
    let (c1, mut c1_ev) = login(&addr, "mem1", "d").await;
    let (c2, mut c2_ev) = login(&addr, "mem2", "d").await;
    let by_m1 = c1.send(text_to_conv(g, "oops")).await.unwrap();
    let by_owner = o.send(text_to_conv(g, "owner speaking")).await.unwrap();
    // A plain member may not recall another's message.
    assert_eq!(code(c2.recall(g, by_m1.seq).await), ErrorCode::Forbidden);
    assert_eq!(code(c1.recall(g, by_owner.seq).await), ErrorCode::Forbidden);
    a.recall(g, by_m1.seq).await.unwrap();
    for ev in [&mut o_ev, &mut c1_ev, &mut c2_ev] {
        let r = next_event(ev, recalled).await;
        assert_eq!((r.seq, r.recalled_by), (by_m1.seq, admin));
    }
    // The owner recalls their own.
    o.recall(g, by_owner.seq).await.unwrap();
    let r = next_event(&mut c2_ev, recalled).await;
    assert_eq!((r.seq, r.recalled_by), (by_owner.seq, owner));
    let history = c2
        .history(pb::History {
            conversation_id: g,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(history
        .iter()
        .all(|m| m.kind == pb::MessageKind::Recalled as i32 && m.text.is_empty()));
    assert_eq!(uid(&c1), m1);
}

/// The ids in the server's search index matching `word`, once the indexer has passed
/// message `id` and taken `recalls` recalls (read from the index's own database).
async fn indexed_matches(s: &TestServer, id: u64, recalls: i64, word: &str) -> Vec<i64> {
    let path = s.dir.path().join("feige-search.db");
    for _ in 0..200 {
        let c = rusqlite::Connection::open(&path).unwrap();
        let mark: i64 = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'indexed_upto'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let recalls_done: bool = c
            .query_row(
                "SELECT value >= ?1 FROM meta WHERE key = 'recalls_upto'",
                [recalls],
                |r| r.get(0),
            )
            .unwrap();
        if mark >= id as i64 && recalls_done {
            let mut st = c
                .prepare("SELECT rowid FROM message_fts WHERE message_fts MATCH ?1")
                .unwrap();
            return st
                .query_map([word], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the indexer did not catch up");
}

#[tokio::test]
async fn a_recalled_message_leaves_search_and_the_index() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let (bob, _) = login(&addr, "bob", "b").await;
    let conv = befriend(&alice, &bob).await;
    let search = |q: &str| pb::Search {
        query: q.into(),
        ..Default::default()
    };
    // Indexed first, then recalled.
    let first = alice.send_text(bob_id, "zebra crossing").await.unwrap();
    let mut found = Vec::new();
    for _ in 0..200 {
        found = bob.search(search("zebra")).await.unwrap();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(found.len(), 1, "indexed");
    alice.recall(conv, first.seq).await.unwrap();
    assert!(bob.search(search("zebra")).await.unwrap().is_empty());
    // Recalled at once, most likely before the indexer's next beat.
    let second = alice.send_text(bob_id, "yak shaving").await.unwrap();
    alice.recall(conv, second.seq).await.unwrap();
    assert!(indexed_matches(&s, second.message_id, 2, "zebra")
        .await
        .is_empty());
    assert!(indexed_matches(&s, second.message_id, 2, "yak")
        .await
        .is_empty());
    assert!(bob.search(search("yak")).await.unwrap().is_empty());
    // Other messages are still found.
    let third = alice.send_text(bob_id, "zebra again").await.unwrap();
    assert_eq!(
        indexed_matches(&s, third.message_id, 2, "zebra").await,
        [third.message_id as i64]
    );
}

#[tokio::test]
async fn recalls_missed_while_offline_are_listed_after_a_cursor() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, _) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (carol, _) = login(&addr, "carol", "c").await;
    let conv = befriend(&alice, &bob).await;
    let one = alice.send_text(bob_id, "one").await.unwrap();
    let two = alice.send_text(bob_id, "two").await.unwrap();
    alice.recall(conv, one.seq).await.unwrap();
    let pushed = next_event(&mut bob_ev, recalled).await;
    // bob's other device was offline: it asks for what it missed.
    let (bob2, _) = login(&addr, "bob", "b2").await;
    alice.recall(conv, two.seq).await.unwrap();
    let all = bob2.recalls(0, 0).await.unwrap();
    assert!(!all.has_more);
    assert_eq!(all.recalls.len(), 2);
    assert_eq!(all.recalls[0], pushed, "the push carries the same recall");
    assert_eq!(
        (all.recalls[1].seq, all.recalls[1].recalled_by),
        (two.seq, alice_id)
    );
    assert!(all.recalls[1].recall_id > all.recalls[0].recall_id);
    assert!(all.recalls[0].recalled_at_ms > 0);
    // Paging by the cursor.
    let first = bob2.recalls(0, 1).await.unwrap();
    assert!(first.has_more);
    assert_eq!(first.recalls, all.recalls[..1]);
    let rest = bob2.recalls(first.recalls[0].recall_id, 1).await.unwrap();
    assert!(!rest.has_more);
    assert_eq!(rest.recalls, all.recalls[1..]);
    // Only one's own conversations.
    assert!(carol.recalls(0, 0).await.unwrap().recalls.is_empty());
    assert_eq!(
        code(carol.recalls(u64::MAX, 0).await),
        ErrorCode::InvalidArgument
    );
}
