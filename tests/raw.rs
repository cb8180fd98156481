//! Byte-level abuse: every bad input gets its clear error or a clean close, and the server keeps
//! serving another client throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use feige_protocol::{frame, pb, Body, Envelope, ErrorCode, RequestKind, ResponseResult};
use feige_tests::{error_code, has_code, login_raw, register_raw, Got, Raw, TestServer};

/// A logged-in bystander that must keep working.
async fn bystander(addr: &str) -> Raw {
    register_raw(addr, "bystander").await;
    login_raw(addr, "bystander", "desk").await.0
}

async fn still_serving(by: &mut Raw) {
    let r = by.call(RequestKind::Whoami(pb::WhoAmI {})).await;
    assert!(
        matches!(&r, ResponseResult::Profile(p) if p.username == "bystander"),
        "{r:?}"
    );
}

#[tokio::test]
async fn garbage_bytes_get_an_error_and_a_close() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut by = bystander(&addr).await;

    // An HTTP request reads as a ~1.2 GB length: refused from the header alone.
    let mut r = Raw::connect(&addr).await;
    r.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let frames = r.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::FrameTooLarge), "{frames:?}");
    still_serving(&mut by).await;

    // Small garbage that frames correctly but is not protobuf, as the first frame.
    let mut r = Raw::connect(&addr).await;
    r.write(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
    let frames = r.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::Malformed), "{frames:?}");
    still_serving(&mut by).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn oversized_length_is_refused_before_the_body() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut by = bystander(&addr).await;
    let mut r = Raw::greeted(&addr).await;
    // Declare 1 MiB + 1 and send no body: the server must answer without waiting for it.
    let len: u32 = 1024 * 1024 + 1;
    r.write(&len.to_be_bytes()).await;
    let frames = r.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::FrameTooLarge), "{frames:?}");
    still_serving(&mut by).await;

    // Exactly the maximum is fine once logged in (it is then just a malformed payload);
    // before login the limit is `max_prelogin_frame_len`.
    register_raw(&addr, "maxframe").await;
    let (mut r, _) = login_raw(&addr, "maxframe", "d").await;
    let mut buf = BytesMut::new();
    buf.put_u32(1024 * 1024);
    buf.put_bytes(0xff, 1024 * 1024);
    r.write(&buf).await;
    match r.read().await {
        Got::Frame(f) => assert!(has_code(&[f], ErrorCode::Malformed)),
        Got::Closed => panic!("closed on a frame of exactly the maximum"),
    }
    assert!(matches!(
        r.call(RequestKind::Ping(pb::Ping { nonce: 1 })).await,
        ResponseResult::Pong(_)
    ));
    s.handle.shutdown().await;
}

#[tokio::test]
async fn malformed_protobuf_after_hello_keeps_the_connection() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut r = Raw::greeted(&addr).await;
    r.write(&[0, 0, 0, 3, 0x0a, 0xff, 0x01]).await;
    match r.read().await {
        Got::Frame(f) => assert!(has_code(&[f], ErrorCode::Malformed)),
        Got::Closed => panic!("closed"),
    }
    let pong = r.call(RequestKind::Ping(pb::Ping { nonce: 42 })).await;
    assert!(matches!(pong, ResponseResult::Pong(p) if p.nonce == 42));
    s.handle.shutdown().await;
}

#[tokio::test]
async fn unknown_request_kind_is_named() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut r = Raw::greeted(&addr).await;
    // Envelope{request_id: 5, request: Request{field 99: 1}}: a request kind from the future.
    let payload = [0x08, 0x05, 0x12, 0x03, 0x98, 0x06, 0x01];
    let mut buf = BytesMut::new();
    buf.put_u32(payload.len() as u32);
    buf.put_slice(&payload);
    r.write(&buf).await;
    let res = r.response(5).await;
    assert_eq!(error_code(&res), Some(ErrorCode::UnknownRequest));
    // A response sent by a client is not a request either.
    let env = Envelope::response(6, ResponseResult::Pong(pb::Pong { nonce: 1 }));
    r.write(&frame::encode_to_bytes(&env)).await;
    assert_eq!(
        error_code(&r.response(6).await),
        Some(ErrorCode::UnknownRequest)
    );
    s.handle.shutdown().await;
}

#[tokio::test]
async fn requests_before_hello_and_before_login() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut by = bystander(&addr).await;

    let mut r = Raw::connect(&addr).await;
    r.send(RequestKind::Whoami(pb::WhoAmI {})).await;
    let frames = r.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::HelloRequired), "{frames:?}");

    let mut r = Raw::greeted(&addr).await;
    for kind in [
        RequestKind::Whoami(pb::WhoAmI {}),
        RequestKind::SendMessage(pb::SendMessage {
            to_user: 1,
            text: "hi".into(),
            ..Default::default()
        }),
        RequestKind::History(pb::History {
            peer_user: 1,
            ..Default::default()
        }),
        RequestKind::Logout(pb::Logout {}),
    ] {
        assert_eq!(
            error_code(&r.call(kind).await),
            Some(ErrorCode::NotLoggedIn)
        );
    }
    // Nothing was stored: the bystander has no conversation with anyone.
    let h = by.call(RequestKind::Sync(pb::Sync::default())).await;
    assert!(matches!(h, ResponseResult::Sync(p) if p.messages.is_empty()));
    still_serving(&mut by).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut by = bystander(&addr).await;
    let mut r = Raw::greeted(&addr).await;
    for token in [vec![7u8; 32], vec![1, 2, 3], vec![]] {
        let res = r
            .call(RequestKind::Resume(pb::Resume {
                token: token.into(),
                device: "x".into(),
            }))
            .await;
        assert_eq!(error_code(&res), Some(ErrorCode::InvalidToken));
    }
    // Still logged out.
    assert_eq!(
        error_code(&r.call(RequestKind::Whoami(pb::WhoAmI {})).await),
        Some(ErrorCode::NotLoggedIn)
    );
    still_serving(&mut by).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn wrong_protocol_version_is_refused_and_closed() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut r = Raw::connect(&addr).await;
    r.send(RequestKind::Hello(pb::Hello {
        major: 2,
        ..Default::default()
    }))
    .await;
    let frames = r.expect_closed().await;
    assert!(
        has_code(&frames, ErrorCode::UnsupportedVersion),
        "{frames:?}"
    );
    s.handle.shutdown().await;
}

#[tokio::test]
async fn login_deadline_and_idle_timeout_close_the_connection() {
    let s = TestServer::start_with(|c| {
        c.login_timeout_ms = 300;
        c.heartbeat_ms = 300;
    })
    .await;
    let addr = s.addr();
    // Greeted but never logged in.
    let mut r = Raw::greeted(&addr).await;
    let frames = r.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::LoginTimeout), "{frames:?}");

    register_raw(&addr, "sleepy").await;
    let (mut quiet, _) = login_raw(&addr, "sleepy", "a").await;
    let (mut chatty, _) = login_raw(&addr, "sleepy", "b").await;
    // chatty pings every 150 ms (half the heartbeat) and survives; quiet is dropped after 450 ms.
    let pinger = tokio::spawn(async move {
        for i in 0..8 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let r = chatty.call(RequestKind::Ping(pb::Ping { nonce: i })).await;
            assert!(matches!(r, ResponseResult::Pong(_)));
        }
    });
    let frames = quiet.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::IdleTimeout), "{frames:?}");
    pinger.await.unwrap();
    s.handle.shutdown().await;
}

#[tokio::test]
async fn hello_can_carry_the_login() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register_raw(&addr, "eager").await;
    let mut r = Raw::connect(&addr).await;
    let res = r
        .call(RequestKind::Hello(pb::Hello {
            major: 1,
            client: "raw-test".into(),
            auth: Some(pb::hello::Auth::Login(pb::Login {
                username: "eager".into(),
                password: "password123".into(),
                device: "d".into(),
            })),
            ..Default::default()
        }))
        .await;
    let ResponseResult::Hello(ok) = res else {
        panic!("{res:?}")
    };
    assert_eq!(ok.heartbeat_ms, 30_000);
    assert_eq!(ok.max_frame_len, 1024 * 1024);
    let session = ok.session.unwrap();
    assert_eq!(session.token.len(), 32);
    assert!(matches!(
        r.call(RequestKind::Whoami(pb::WhoAmI {})).await,
        ResponseResult::Profile(p) if p.username == "eager"
    ));
    // A second Hello is refused without closing.
    let again = r
        .call(RequestKind::Hello(pb::Hello {
            major: 1,
            ..Default::default()
        }))
        .await;
    assert_eq!(error_code(&again), Some(ErrorCode::AlreadyLoggedIn));
    // Pushes are told apart from responses: request id 0 and a Push body.
    let _ = Body::Push(pb::Push::default());
    s.handle.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_commits_acks_and_says_goodbye() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let bob = register_raw(&addr, "bob").await;
    register_raw(&addr, "alice").await;
    let (mut alice, _) = login_raw(&addr, "alice", "desk").await;
    for i in 1..=300u64 {
        alice
            .send(RequestKind::SendMessage(pb::SendMessage {
                to_user: bob,
                client_msg_id: i,
                text: format!("m{i}"),
                ..Default::default()
            }))
            .await;
    }
    let TestServer { handle, dir } = s;
    let stopping = tokio::spawn(handle.shutdown());
    let frames = alice.expect_closed().await;
    stopping.await.unwrap();
    assert!(
        has_code(&frames, ErrorCode::ShuttingDown),
        "goodbye missing"
    );
    let acked: Vec<pb::SendOk> = frames
        .into_iter()
        .filter_map(|f| match f.body {
            Some(Body::Response(pb::Response {
                result: Some(ResponseResult::Send(ok)),
            })) => Some(ok),
            _ => None,
        })
        .collect();
    assert!(!acked.is_empty());
    // Reopen the store: every acked message is there.
    struct Drop0;
    impl feige_storage::CommitSink<()> for Drop0 {
        fn committed(&mut self, b: &mut Vec<feige_storage::Committed<()>>, _idle: bool) {
            b.clear();
        }
    }
    let (store, writer) =
        feige_storage::Store::open(dir.path(), Default::default(), Box::new(Drop0)).unwrap();
    let conv = acked[0].conversation_id;
    let stored = store
        .history(
            bob,
            feige_storage::HistoryQuery {
                conversation: conv,
                before_seq: None,
                after_seq: None,
                since_ms: None,
                until_ms: None,
                limit: 1000,
            },
        )
        .await
        .unwrap();
    for ok in &acked {
        assert!(stored
            .iter()
            .any(|m| m.id == ok.message_id && m.seq == ok.seq));
    }
    writer.shutdown().await;
}
