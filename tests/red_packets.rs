//! Red packets and wallets through the Rust client SDK: a packet is a message stored with its
//! debit; members grab shares (atomically, 200 at once for 100 shares); the sender hears of
//! each grab; the rest goes back at expiry; admins top up; the ledger always balances.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use feige_client::{Client, Event, Events};
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_tests::sdk::{befriend, code, login, next_event, next_message, register, uid};
use feige_tests::{error_code, Raw, TestServer};

fn packet(
    conversation_id: u64,
    total_cents: u64,
    count: u32,
    mode: pb::RedPacketMode,
) -> pb::SendRedPacket {
    pb::SendRedPacket {
        conversation_id,
        total_cents,
        count,
        mode: mode as i32,
        ..Default::default()
    }
}

fn grabbed(e: Event) -> Option<pb::RedPacketGrabbed> {
    match e {
        Event::RedPacketGrabbed(g) => Some(g),
        _ => None,
    }
}

fn db(dir: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(dir.join("feige.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Checks the wallets' invariants in the server's database: the ledger sums to zero, every
/// wallet's balance is the sum of its rows, no balance is negative, and what each packet
/// holds is the sum of its account's rows; returns the sum of all wallets.
fn check_ledger(dir: &Path) -> i64 {
    let c = db(dir);
    let total: i64 = c
        .query_row(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM wallet_ledger",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(total, 0, "the ledger sums to zero");
    let wrong: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM wallets w WHERE w.balance_cents < 0 OR w.balance_cents <> (
                 SELECT COALESCE(SUM(amount_cents), 0) FROM wallet_ledger l
                 WHERE l.account_kind = 1 AND l.account_id = w.user_id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(wrong, 0, "every balance is its ledger's sum");
    let wrong: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM red_packets p WHERE p.remaining_cents <> (
                 SELECT COALESCE(SUM(amount_cents), 0) FROM wallet_ledger l
                 WHERE l.account_kind = 2 AND l.account_id = p.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(wrong, 0, "every packet holds its ledger's sum");
    c.query_row(
        "SELECT COALESCE(SUM(balance_cents), 0) FROM wallets",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// A group conversation of `members`, written straight into the server's database (the
/// groups requests are another family's); returns its id.
fn make_group(dir: &Path, members: &[u64]) -> u64 {
    let c = db(dir);
    c.execute(
        "INSERT INTO conversations(kind, created_at_ms) VALUES (2, 0)",
        [],
    )
    .unwrap();
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO groups(conversation_id, name, owner_id, created_at_ms) VALUES (?1, 'g', ?2, 0)",
        rusqlite::params![id, members[0] as i64],
    )
    .unwrap();
    for &m in members {
        c.execute(
            "INSERT INTO members(user_id, conversation_id, joined_at_ms) VALUES (?1, ?2, 0)",
            rusqlite::params![m as i64, id],
        )
        .unwrap();
    }
    id as u64
}

#[tokio::test]
async fn a_direct_packet_is_a_message_paid_for_and_grabbed_once() {
    let s = TestServer::start_with(|c| c.wallet_initial_cents = 10_000).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, mut aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    let (carol, _cev) = login(&addr, "carol", "c").await;
    let conv = befriend(&alice, &bob).await;
    assert_eq!(alice.wallet().await.unwrap(), 10_000, "the initial balance");

    let mut p = packet(conv, 888, 1, pb::RedPacketMode::Random);
    p.greeting = "新年快乐".into();
    let ok = alice.red_packet_send(p).await.unwrap();
    assert_eq!(alice.wallet().await.unwrap(), 10_000 - 888);
    // It arrives as a message naming the packet.
    let m = next_message(&mut bev).await;
    assert_eq!(m.kind, pb::MessageKind::RedPacket as i32);
    assert_eq!(
        (m.message_id, m.red_packet_id, m.seq),
        (ok.message_id, ok.message_id, ok.seq)
    );
    assert_eq!(m.text, "新年快乐");
    let id = m.red_packet_id;

    // The sender cannot take their own 1:1 packet; strangers cannot see it.
    assert_eq!(code(alice.red_packet_grab(id).await), ErrorCode::Forbidden);
    assert_eq!(code(carol.red_packet_grab(id).await), ErrorCode::Forbidden);
    assert_eq!(code(carol.red_packet_info(id).await), ErrorCode::Forbidden);
    assert_eq!(code(bob.red_packet_grab(id + 1).await), ErrorCode::NotFound);
    assert_eq!(
        code(bob.red_packet_grab(0).await),
        ErrorCode::InvalidArgument
    );

    let g = bob.red_packet_grab(id).await.unwrap();
    assert_eq!(
        (g.packet_id, g.user_id, g.amount_cents),
        (id, uid(&bob), 888)
    );
    let heard = next_event(&mut aev, grabbed).await;
    assert_eq!(
        (heard.packet_id, heard.user_id, heard.amount_cents),
        (id, uid(&bob), 888)
    );
    assert_eq!(
        (
            heard.remaining_count,
            heard.remaining_cents,
            heard.conversation_id
        ),
        (0, 0, conv)
    );
    assert_eq!(
        code(bob.red_packet_grab(id).await),
        ErrorCode::AlreadyGrabbed
    );
    assert_eq!(bob.wallet().await.unwrap(), 10_000 + 888);

    let info = alice.red_packet_info(id).await.unwrap();
    assert_eq!(
        (
            info.total_cents,
            info.count,
            info.remaining_cents,
            info.remaining_count
        ),
        (888, 1, 0, 0)
    );
    assert_eq!(info.sender_id, uid(&alice));
    assert_eq!(info.grabs.len(), 1);
    assert_eq!(
        (info.grabs[0].user_id, info.grabs[0].amount_cents),
        (uid(&bob), 888)
    );
    assert!(!info.expired);

    // The message is in the conversation's history, like any other.
    let hist = bob
        .history(pb::History {
            conversation_id: conv,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hist[0].red_packet_id, id);
    // carol's wallet never moved: two were opened.
    assert_eq!(check_ledger(s.dir.path()), 20_000);
}

#[tokio::test]
async fn a_refused_packet_costs_nothing_and_stores_nothing() {
    let s = TestServer::start_with(|c| c.wallet_initial_cents = 500).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    let conv = befriend(&alice, &bob).await;
    let r = alice
        .red_packet_send(packet(conv, 501, 1, pb::RedPacketMode::Equal))
        .await;
    assert_eq!(code(r), ErrorCode::InsufficientFunds);
    assert_eq!(alice.wallet().await.unwrap(), 500);
    let hist = bob
        .history(pb::History {
            conversation_id: conv,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(hist.is_empty(), "no message without its debit");

    // Field rules.
    let bad = [
        packet(conv, 10, 0, pb::RedPacketMode::Equal),
        packet(conv, 10, 11, pb::RedPacketMode::Equal),
        packet(conv, 100_000_001, 1, pb::RedPacketMode::Equal),
        packet(0, 10, 1, pb::RedPacketMode::Equal),
        pb::SendRedPacket {
            mode: 9,
            ..packet(conv, 10, 1, pb::RedPacketMode::Equal)
        },
        pb::SendRedPacket {
            greeting: "x".repeat(129),
            ..packet(conv, 10, 1, pb::RedPacketMode::Equal)
        },
    ];
    for p in bad {
        assert_eq!(
            code(alice.red_packet_send(p).await),
            ErrorCode::InvalidArgument
        );
    }
    // Not a member, or no such conversation.
    let (carol, _cev) = login(&addr, "carol", "c").await;
    let r = carol
        .red_packet_send(packet(conv, 10, 1, pb::RedPacketMode::Equal))
        .await;
    assert_eq!(code(r), ErrorCode::Forbidden);
    let r = carol
        .red_packet_send(packet(conv + 100, 10, 1, pb::RedPacketMode::Equal))
        .await;
    assert_eq!(code(r), ErrorCode::NotFound);
    // A red packet cannot be faked with SendMessage.
    let r = alice
        .send(pb::SendMessage {
            conversation_id: conv,
            kind: pb::MessageKind::RedPacket as i32,
            text: "free money".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), ErrorCode::InvalidArgument);
    assert_eq!(alice.wallet().await.unwrap(), 500);
    assert_eq!(carol.wallet().await.unwrap(), 500);

    // A resend (same client id) is the original: paid once.
    let p = pb::SendRedPacket {
        client_msg_id: 77,
        ..packet(conv, 100, 2, pb::RedPacketMode::Equal)
    };
    let first = alice.red_packet_send(p.clone()).await.unwrap();
    let again = alice.red_packet_send(p).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(alice.wallet().await.unwrap(), 400);
    let m = next_message(&mut bev).await;
    assert_eq!(m.text, "恭喜发财，大吉大利", "the default greeting");
    check_ledger(s.dir.path());
}

#[tokio::test]
async fn two_hundred_grab_a_hundred_shares_at_once() {
    let s = TestServer::start_with(|c| c.wallet_initial_cents = 1_000).await;
    let addr = s.addr();
    register(&addr, "sender").await;
    let (sender, mut sev) = login(&addr, "sender", "s").await;
    // Setting up 200 accounts hashes 400 passwords: a few at a time, so that no request
    // waits past its timeout on a busy machine.
    let setup = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (addr, setup) = (addr.clone(), setup.clone());
        tasks.push(tokio::spawn(async move {
            let _turn = setup.acquire().await.unwrap();
            let name = format!("grabber{i}");
            register(&addr, &name).await;
            login(&addr, &name, "g").await
        }));
    }
    let mut clients: Vec<(Client, Events)> = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let mut ids: Vec<u64> = clients.iter().map(|(c, _)| uid(c)).collect();
    ids.insert(0, uid(&sender));
    let group = make_group(s.dir.path(), &ids);
    let total = 1_000;
    let ok = sender
        .red_packet_send(packet(group, total, 100, pb::RedPacketMode::Random))
        .await
        .unwrap();
    let id = ok.message_id;
    let mut grabs = Vec::new();
    for (c, _) in &clients {
        let c = c.clone();
        grabs.push(tokio::spawn(async move { c.red_packet_grab(id).await }));
    }
    let (mut won, mut sum, mut empty) = (0, 0, 0);
    for g in grabs {
        match g.await.unwrap() {
            Ok(g) => {
                assert!(g.amount_cents >= 1);
                won += 1;
                sum += g.amount_cents;
            }
            Err(e) => {
                assert_eq!(code::<()>(Err(e)), ErrorCode::RedPacketEmpty);
                empty += 1;
            }
        }
    }
    assert_eq!((won, empty, sum), (100, 100, total));
    let info = sender.red_packet_info(id).await.unwrap();
    assert_eq!(info.grabs.len(), 100);
    assert_eq!(
        info.grabs.iter().map(|g| g.amount_cents).sum::<u64>(),
        total
    );
    assert_eq!((info.remaining_cents, info.remaining_count), (0, 0));
    // The sender heard of every grab.
    for _ in 0..100 {
        next_event(&mut sev, grabbed).await;
    }
    // A wallet opens (with its 1,000) at its first movement: the sender's and the 100
    // winners'; money only moved between them.
    assert_eq!(check_ledger(s.dir.path()), 1_000 * 101);
}

#[tokio::test]
async fn the_rest_of_an_expired_packet_goes_back() {
    let s = TestServer::start_with(|c| {
        c.wallet_initial_cents = 1_000;
        // Long enough for the grabs below on a busy machine.
        c.red_packet_expiry_ms = 2_000;
    })
    .await;
    let addr = s.addr();
    for name in ["alice", "bob", "carol", "dave"] {
        register(&addr, name).await;
    }
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "b").await;
    let (carol, _cev) = login(&addr, "carol", "c").await;
    let (dave, _dev) = login(&addr, "dave", "d").await;
    let group = make_group(
        s.dir.path(),
        &[uid(&alice), uid(&bob), uid(&carol), uid(&dave)],
    );
    let a = alice
        .red_packet_send(packet(group, 300, 3, pb::RedPacketMode::Equal))
        .await
        .unwrap()
        .message_id;
    let b = alice
        .red_packet_send(packet(group, 200, 4, pb::RedPacketMode::Random))
        .await
        .unwrap()
        .message_id;
    assert_eq!(bob.red_packet_grab(a).await.unwrap().amount_cents, 100);
    // In a group the sender may take a share too.
    assert_eq!(alice.red_packet_grab(a).await.unwrap().amount_cents, 100);
    assert_eq!(alice.wallet().await.unwrap(), 1_000 - 500 + 100);
    // The upkeep returns the rest of both within a second or so of the expiry.
    let mut balance = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        balance = alice.wallet().await.unwrap();
        if balance == 1_000 - 100 {
            break;
        }
    }
    assert_eq!(
        balance, 900,
        "100 (the rest of a) and 200 (all of b) went back"
    );
    let info = carol.red_packet_info(a).await.unwrap();
    assert!(info.expired);
    assert_eq!(
        (
            info.refunded_cents,
            info.remaining_cents,
            info.remaining_count
        ),
        (100, 0, 1)
    );
    assert_eq!(
        code(carol.red_packet_grab(a).await),
        ErrorCode::RedPacketExpired
    );
    assert_eq!(
        code(dave.red_packet_grab(b).await),
        ErrorCode::RedPacketExpired
    );
    assert_eq!(carol.wallet().await.unwrap(), 1_000);
    // Only alice's and bob's wallets ever moved.
    assert_eq!(check_ledger(s.dir.path()), 2 * 1_000);
}

#[tokio::test]
async fn admins_top_up_wallets() {
    let s = TestServer::start_with(|c| c.admins = vec!["Root".into()]).await;
    let addr = s.addr();
    register(&addr, "root").await;
    let bob_id = register(&addr, "bob").await;
    let (root, _rev) = login(&addr, "root", "r").await;
    let (bob, _bev) = login(&addr, "bob", "b").await;
    assert_eq!(bob.wallet().await.unwrap(), 0);
    assert_eq!(root.wallet_top_up(bob_id, 2_500).await.unwrap(), 2_500);
    assert_eq!(root.wallet_top_up(bob_id, 500).await.unwrap(), 3_000);
    assert_eq!(bob.wallet().await.unwrap(), 3_000);
    assert_eq!(
        code(bob.wallet_top_up(bob_id, 1).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(root.wallet_top_up(bob_id + 100, 1).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(root.wallet_top_up(bob_id, 0).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(root.wallet_top_up(0, 5).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(check_ledger(s.dir.path()), 3_000);
    let c = db(s.dir.path());
    let system: i64 = c
        .query_row(
            "SELECT SUM(amount_cents) FROM wallet_ledger WHERE account_kind = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(system, -3_000, "the system account is the other side");

    // Before login, on the wire.
    let mut raw = Raw::greeted(&addr).await;
    let r = raw.call(RequestKind::Wallet(pb::GetWallet {})).await;
    assert_eq!(error_code(&r), Some(ErrorCode::NotLoggedIn));
}

/// One user grabbing from two devices at once gets one share; the other device is told
/// `ALREADY_GRABBED`.
#[tokio::test]
async fn one_user_on_two_devices_gets_one_share() {
    let s = TestServer::start_with(|c| c.wallet_initial_cents = 1_000).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "phone").await;
    let (bob2, _bev2) = login(&addr, "bob", "laptop").await;
    let (carol, _cev) = login(&addr, "carol", "c").await;
    let group = make_group(s.dir.path(), &[uid(&alice), uid(&bob), uid(&carol)]);
    let id = alice
        .red_packet_send(packet(group, 500, 2, pb::RedPacketMode::Random))
        .await
        .unwrap()
        .message_id;
    let (a, b) = tokio::join!(bob.red_packet_grab(id), bob2.red_packet_grab(id));
    let (won, lost) = match (a, b) {
        (Ok(g), Err(e)) | (Err(e), Ok(g)) => (g, e),
        other => panic!("expected one share and one refusal, got {other:?}"),
    };
    assert_eq!(code::<()>(Err(lost)), ErrorCode::AlreadyGrabbed);
    let last = carol.red_packet_grab(id).await.unwrap();
    assert_eq!(won.amount_cents + last.amount_cents, 500);
    assert_eq!(bob.wallet().await.unwrap(), 1_000 + won.amount_cents as i64);
    check_ledger(s.dir.path());
}
