//! Memory is bounded in bytes: per-connection output, reply pages, and unfinished frames.
//! Small limits through the config keep these fast.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_protocol::{pb, Body, Envelope, ErrorCode, PushKind, RequestKind, ResponseResult};
use feige_tests::sdk::{login, messages, no_message_within, register};
use feige_tests::{has_code, login_raw, register_raw, Got, Raw, TestServer};
use tokio::io::AsyncWriteExt;

/// Small frames and outboxes: a reply page is at most 63 KiB, an outbox 256 KiB.
const MAX_FRAME: usize = 64 * 1024;
const OUTBOX: usize = 256 * 1024;

async fn small_server(tweak: impl FnOnce(&mut feige_server::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.max_frame_len = MAX_FRAME;
        c.max_text_len = 16 * 1024;
        c.outbox_bytes = OUTBOX;
        tweak(c);
    })
    .await
}

/// Sends `n` messages of `size` bytes from `from` (a raw connection) to `to`, 32 at a time.
async fn fill(from: &mut Raw, to: u64, n: u64, size: usize) {
    let mut sent = 0;
    while sent < n {
        let batch = (n - sent).min(32);
        let mut ids = Vec::new();
        for i in sent..sent + batch {
            let text = format!("{i:06}{}", "m".repeat(size - 6));
            ids.push(
                from.send(RequestKind::SendMessage(pb::SendMessage {
                    to_user: to,
                    client_msg_id: i + 1,
                    kind: pb::MessageKind::Text as i32,
                    text,
                    ..Default::default()
                }))
                .await,
            );
        }
        for id in ids {
            let r = from.response(id).await;
            assert!(matches!(r, ResponseResult::Send(_)), "{r:?}");
        }
        sent += batch;
    }
}

/// A client that pipelines many Syncs over large messages and never reads: the server stops
/// reading its requests once the replies reach half the outbox, so the output it holds for
/// the client stays within `outbox_bytes`; once the client reads, every reply arrives, each a
/// page within the byte budget, in order.
#[tokio::test]
async fn pipelined_syncs_never_read_stay_bounded_then_all_arrive() {
    let s = small_server(|_| {}).await;
    let addr = s.addr();
    let alice_id = register_raw(&addr, "alice").await;
    register_raw(&addr, "bob").await;
    let (mut bob, _) = login_raw(&addr, "bob", "b").await;
    // 48 messages of 16 KiB: a Sync without a byte budget would answer with 768 KiB.
    fill(&mut bob, alice_id, 48, 16 * 1024).await;
    let mut alice = login_stalled(&addr, "alice", "a").await;
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(
            alice
                .send(RequestKind::Sync(pb::Sync {
                    positions: vec![],
                    limit: 1000,
                }))
                .await,
        );
    }
    // 200 replies of up to 63 KiB would be 12 MiB; the server holds at most the outbox.
    let mut most = 0;
    for _ in 0..150 {
        most = most.max(s.handle.output_bytes());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(most > 0, "the replies were never queued");
    assert!(
        most <= OUTBOX,
        "the server held {most} bytes of output for a client that does not read"
    );
    // Paused, not dropped: reading now, every reply comes (in any order), each one page.
    let mut answered = Vec::new();
    while answered.len() < ids.len() {
        match alice.read().await {
            Got::Frame(Envelope {
                request_id,
                body: Some(Body::Response(r)),
            }) => {
                answered.push(request_id);
                let Some(ResponseResult::Sync(page)) = r.result else {
                    panic!("not a sync page: {r:?}");
                };
                assert!(page.has_more, "48 large messages do not fit in one page");
                assert_eq!(page.messages[0].seq, 1);
                let size = prost::Message::encoded_len(&page);
                assert!(size <= MAX_FRAME - 1024, "a page of {size} bytes");
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }
    answered.sort_unstable();
    assert_eq!(answered, ids);
    let r = alice.call(RequestKind::Ping(pb::Ping { nonce: 7 })).await;
    assert!(matches!(r, ResponseResult::Pong(_)), "{r:?}");
    s.handle.shutdown().await;
}

/// A connection with a small receive buffer, logged in as `name` on `device`, that the test
/// will not read from for a while.
async fn login_stalled(addr: &str, name: &str, device: &str) -> Raw {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr.parse().unwrap()).await.unwrap();
    let mut r = Raw::from_stream(stream);
    let hello = r
        .call(RequestKind::Hello(pb::Hello {
            major: 1,
            ..Default::default()
        }))
        .await;
    assert!(matches!(hello, ResponseResult::Hello(_)), "{hello:?}");
    let session = r
        .call(RequestKind::Login(pb::Login {
            username: name.into(),
            password: "password123".into(),
            device: device.into(),
        }))
        .await;
    assert!(matches!(session, ResponseResult::Session(_)), "{session:?}");
    r
}

/// Three connections of one user never read while a friend sends 400 messages of 16 KiB:
/// each is dropped (as a slow consumer) once its output reaches `outbox_bytes`, and the server
/// holds no more than that per connection meanwhile; the sender, the user's reading device
/// and another user go on, and the user syncs everything on a new device.
#[tokio::test]
async fn connections_that_never_read_are_dropped_and_sync_later() {
    let s = small_server(|_| {}).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let alice_id = register(&addr, "alice2").await;
    let carol_id = register(&addr, "carol").await;
    let (sender, _) = login(&addr, "alice", "send").await;
    let mut stalled = Vec::new();
    for i in 0..3 {
        stalled.push(login_stalled(&addr, "alice2", &format!("stalled{i}")).await);
    }
    let (_reader, mut reading) = login(&addr, "alice2", "reading").await;
    let (_carol, mut carol_events) = login(&addr, "carol", "c").await;

    let text = "x".repeat(16 * 1024 - 8);
    let mut tasks = Vec::new();
    for chunk in 0..4u32 {
        let (a, text) = (sender.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100u32 {
                a.send_text(alice_id, &format!("{:07}{text}", chunk * 100 + i))
                    .await
                    .unwrap();
            }
            a.send_text(carol_id, &format!("hi {chunk}")).await.unwrap();
        }));
    }
    let mut most = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        most = most.max(s.handle.output_bytes());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The reading device and the other user got everything.
    assert_eq!(messages(&mut reading, 400).await.len(), 400);
    assert_eq!(messages(&mut carol_events, 4).await.len(), 4);
    // Three stalled connections at most `outbox_bytes` each, and a little for the others.
    assert!(
        most <= 3 * OUTBOX + 256 * 1024,
        "the server held {most} bytes of output"
    );
    for (i, mut c) in stalled.into_iter().enumerate() {
        let frames = c.expect_closed().await;
        let pushes = frames
            .iter()
            .filter(|f| {
                matches!(
                    &f.body,
                    Some(Body::Push(pb::Push {
                        kind: Some(PushKind::Message(_))
                    }))
                )
            })
            .count();
        assert!(
            pushes < 400,
            "stalled connection {i} was fed all {pushes} pushes"
        );
        // The goodbye is best effort (its socket is full); when it arrives it says why.
        let kicks: Vec<i32> = frames
            .iter()
            .filter_map(|f| match &f.body {
                Some(Body::Push(pb::Push {
                    kind: Some(PushKind::Kicked(k)),
                })) => Some(k.code),
                _ => None,
            })
            .collect();
        assert!(
            kicks.iter().all(|&k| k == ErrorCode::SlowConsumer as i32),
            "{kicks:?}"
        );
    }
    let (_back, mut events) = login(&addr, "alice2", "back").await;
    let synced: Vec<u64> = messages(&mut events, 400)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(synced, (1..=400).collect::<Vec<_>>());
    no_message_within(&mut events, 200).await;
    s.handle.shutdown().await;
}

/// Before login a frame may be at most `max_prelogin_frame_len`: a larger declared length is
/// refused from its header alone. After login the same length is read (and answered).
#[tokio::test]
async fn a_large_frame_before_login_is_refused_from_its_header() {
    let s = small_server(|c| c.max_prelogin_frame_len = 4096).await;
    let addr = s.addr();
    let mut r = Raw::greeted(&addr).await;
    r.write(&20_000u32.to_be_bytes()).await;
    let frames = r.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::FrameTooLarge), "{frames:?}");

    register_raw(&addr, "alice").await;
    let (mut alice, _) = login_raw(&addr, "alice", "a").await;
    let r = alice
        .call(RequestKind::SendMessage(pb::SendMessage {
            to_user: 1,
            client_msg_id: 1,
            kind: pb::MessageKind::Text as i32,
            text: "x".repeat(20_000),
            ..Default::default()
        }))
        .await;
    assert_eq!(feige_tests::error_code(&r), Some(ErrorCode::TooLarge));
    s.handle.shutdown().await;
}

/// A frame begun and not finished within `frame_timeout_ms` closes the connection with
/// FRAME_TIMEOUT, before login and after.
#[tokio::test]
async fn an_unfinished_frame_times_out() {
    let s = small_server(|c| c.frame_timeout_ms = 300).await;
    let addr = s.addr();
    let mut fresh = Raw::connect(&addr).await;
    fresh.write(&1000u32.to_be_bytes()).await;
    fresh.write(&[0; 10]).await;
    let frames = fresh.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::FrameTimeout), "{frames:?}");

    register_raw(&addr, "alice").await;
    let (mut alice, _) = login_raw(&addr, "alice", "a").await;
    alice.write(&1000u32.to_be_bytes()).await;
    alice.write(&[0; 999]).await;
    let frames = alice.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::FrameTimeout), "{frames:?}");

    // A frame of the largest size, whose whole length the server makes room for as soon as
    // its header is in (frame::missing_large), is held to the same deadline.
    let (mut big, _) = login_raw(&addr, "alice", "a").await;
    big.write(&(MAX_FRAME as u32).to_be_bytes()).await;
    big.write(&[0; 1000]).await;
    let frames = big.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::FrameTimeout), "{frames:?}");
    // The server goes on.
    let (mut again, _) = login_raw(&addr, "alice", "a").await;
    let r = again.call(RequestKind::Ping(pb::Ping { nonce: 5 })).await;
    assert!(matches!(r, ResponseResult::Pong(_)), "{r:?}");
    s.handle.shutdown().await;
}

/// A logged-in connection trickling one byte at a time into a frame it never finishes is
/// idle: bytes do not count, whole frames do.
#[tokio::test]
async fn a_trickle_that_never_finishes_a_frame_is_idle() {
    let s = small_server(|c| {
        c.heartbeat_ms = 400;
        c.frame_timeout_ms = 60_000;
    })
    .await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (mut alice, _) = login_raw(&addr, "alice", "a").await;
    alice.write(&60_000u32.to_be_bytes()).await;
    // 600 ms of silence is idle; a byte every 100 ms for up to 5 s must not keep it open.
    for _ in 0..50 {
        if alice.stream.write_all(&[0]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), alice.read()).await {
            Ok(Got::Frame(f)) => {
                assert!(has_code(&[f], ErrorCode::IdleTimeout), "unexpected frame");
                s.handle.shutdown().await;
                return;
            }
            Ok(Got::Closed) => panic!("closed without IDLE_TIMEOUT"),
            Err(_) => {}
        }
    }
    panic!("a trickling connection stayed open");
}

/// Sync and History pages stop at the byte budget (1 KiB under `max_frame_len` here): several
/// pages, each within it, together every message once and in order; the SDK's sync follows
/// the pages too.
#[tokio::test]
async fn sync_and_history_pages_are_bounded_in_bytes() {
    let s = small_server(|_| {}).await;
    let addr = s.addr();
    let alice_id = register_raw(&addr, "alice").await;
    let bob_id = register_raw(&addr, "bob").await;
    let (mut bob, _) = login_raw(&addr, "bob", "b").await;
    // 30 messages of 10 KB: 300 KB, about five pages.
    fill(&mut bob, alice_id, 30, 10_000).await;
    let (mut alice, _) = login_raw(&addr, "alice", "a").await;
    let budget = MAX_FRAME - 1024;

    let mut seqs = Vec::new();
    let mut conversation_id = 0;
    let mut pages = 0;
    loop {
        let positions = match seqs.last() {
            Some(&seq) => vec![pb::ConversationPosition {
                conversation_id,
                seq,
            }],
            None => vec![],
        };
        let ResponseResult::Sync(page) = alice
            .call(RequestKind::Sync(pb::Sync {
                positions,
                limit: 1000,
            }))
            .await
        else {
            panic!("not a sync page");
        };
        pages += 1;
        let size = prost::Message::encoded_len(&page);
        assert!(size <= budget, "a sync page of {size} bytes");
        conversation_id = page.messages[0].conversation_id;
        seqs.extend(page.messages.iter().map(|m| m.seq));
        if !page.has_more {
            break;
        }
        assert!(pages < 100, "sync pages make no progress");
    }
    assert!(pages >= 5, "only {pages} sync pages");
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());

    let mut seqs = Vec::new();
    let mut pages = 0;
    loop {
        let ResponseResult::History(page) = alice
            .call(RequestKind::History(pb::History {
                peer_user: bob_id,
                limit: 200,
                before_seq: seqs.last().copied().unwrap_or(0),
                ..Default::default()
            }))
            .await
        else {
            panic!("not a history page");
        };
        pages += 1;
        let size = prost::Message::encoded_len(&page);
        assert!(size <= budget, "a history page of {size} bytes");
        seqs.extend(page.messages.iter().map(|m| m.seq));
        if !page.has_more {
            break;
        }
        assert!(pages < 100, "history pages make no progress");
    }
    assert!(pages >= 5, "only {pages} history pages");
    assert_eq!(seqs, (1..=30).rev().collect::<Vec<_>>());

    // The Rust SDK pages on by itself after login.
    let (_sdk, mut events) = login(&addr, "alice", "sdk").await;
    let synced: Vec<u64> = messages(&mut events, 30)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(synced, (1..=30).collect::<Vec<_>>());
    no_message_within(&mut events, 200).await;
    s.handle.shutdown().await;
}

/// The Rust SDK's `history_page` and `search_page` report `has_more` on a page cut by the
/// byte budget well before `limit`; paging on with the last message's cursor yields every
/// message once, newest first, and the last page says there is no more.
#[tokio::test]
async fn sdk_pages_cut_by_the_byte_budget_say_has_more() {
    let s = small_server(|_| {}).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _events) = login(&addr, "alice", "a").await;
    // 30 messages of about 10 KB: 300 KB, about five 63 KiB pages.
    for i in 0..30 {
        alice
            .send_text(bob_id, &format!("needle {i:02} {}", "m".repeat(10_000)))
            .await
            .unwrap();
    }

    let mut seqs = Vec::new();
    let mut pages = 0;
    loop {
        let page = alice
            .history_page(pb::History {
                peer_user: bob_id,
                limit: 200,
                before_seq: seqs.last().copied().unwrap_or(0),
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        assert!(!page.messages.is_empty());
        seqs.extend(page.messages.iter().map(|m| m.seq));
        if !page.has_more {
            break;
        }
        assert!(pages < 100, "history pages make no progress");
    }
    assert!(pages >= 5, "only {pages} history pages");
    assert_eq!(seqs, (1..=30).rev().collect::<Vec<_>>());

    // The search index follows the store shortly after the commit: wait for the last one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let last = alice
            .search(pb::Search {
                query: "needle 29".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        if !last.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut texts = Vec::new();
    let mut before_id = 0;
    let mut pages = 0;
    loop {
        let page = alice
            .search_page(pb::Search {
                query: "needle".into(),
                limit: 100,
                before_id,
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        let last = page.messages.last().unwrap();
        before_id = last.message_id;
        texts.extend(page.messages.iter().map(|m| m.text[7..9].to_owned()));
        if !page.has_more {
            break;
        }
        assert!(pages < 100, "search pages make no progress");
    }
    assert!(pages >= 5, "only {pages} search pages");
    let want: Vec<String> = (0..30).rev().map(|i| format!("{i:02}")).collect();
    assert_eq!(texts, want);
    alice.close().await;
    s.handle.shutdown().await;
}
