//! Abuse limits over TCP: failed-login back-off, equal cost of unknown names, registrations
//! per address, friend-request cool-down and pruning, the send rate, connection caps. Each
//! server clears the harness's `trusted_addrs` (loopback) and sets small limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use feige_protocol::{pb, Body, Envelope, ErrorCode, RequestKind, ResponseResult};
use feige_server::Config;
use feige_tests::{error_code, has_code, login_raw, register_raw, Got, Raw, TestServer};

const PASSWORD: &str = "password123";

/// A server with the abuse limits applied to loopback, after `tweak`.
async fn limited(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.trusted_addrs.clear();
        tweak(c);
    })
    .await
}

/// The code and `retry_after_ms` of an error response.
fn error(r: &ResponseResult) -> (ErrorCode, u64) {
    match r {
        ResponseResult::Error(e) => (ErrorCode::try_from(e.code).unwrap(), e.retry_after_ms),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn login(r: &mut Raw, name: &str, password: &str) -> ResponseResult {
    r.call(RequestKind::Login(pb::Login {
        username: name.into(),
        password: password.into(),
        device: "d".into(),
    }))
    .await
}

async fn register(r: &mut Raw, name: &str) -> ResponseResult {
    r.call(RequestKind::Register(pb::Register {
        username: name.into(),
        password: PASSWORD.into(),
        nickname: name.into(),
        ..Default::default()
    }))
    .await
}

/// A connection to `server` from the loopback address `from` (Linux routes all of
/// 127.0.0.0/8 to loopback), so one test can play two hosts.
async fn connect_from(from: [u8; 4], server: &str) -> Raw {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    Raw::from_stream(socket.connect(server.parse().unwrap()).await.unwrap())
}

/// The account locks after its free failures; while locked even the right password is refused
/// with RATE_LIMITED and the wait; after the wait it works, and a success resets the count.
#[tokio::test]
async fn failed_logins_lock_the_account_until_the_wait_is_over() {
    let s = limited(|c| {
        c.login_free_failures = 2;
        c.login_backoff_base_ms = 400;
        c.login_backoff_max_ms = 1000;
    })
    .await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let mut r = Raw::greeted(&addr).await;
    for _ in 0..3 {
        let res = login(&mut r, "alice", "wrong-password").await;
        assert_eq!(error(&res).0, ErrorCode::BadCredentials);
    }
    let (code, wait) = error(&login(&mut r, "alice", PASSWORD).await);
    assert_eq!(
        code,
        ErrorCode::RateLimited,
        "locked: the password is not checked"
    );
    assert!(wait > 0 && wait <= 400, "retry_after_ms {wait}");
    // Another connection (same address, same account) is locked too.
    let mut other = Raw::greeted(&addr).await;
    assert_eq!(
        error(&login(&mut other, "ALICE", PASSWORD).await).0,
        ErrorCode::RateLimited
    );
    tokio::time::sleep(Duration::from_millis(wait + 20)).await;
    assert!(matches!(
        login(&mut r, "alice", PASSWORD).await,
        ResponseResult::Session(_)
    ));
    // The success reset the count: two failures are free again, and the right password works.
    for _ in 0..2 {
        let res = login(&mut other, "alice", "wrong-password").await;
        assert_eq!(error(&res).0, ErrorCode::BadCredentials);
    }
    assert!(matches!(
        login(&mut other, "alice", PASSWORD).await,
        ResponseResult::Session(_)
    ));
    s.handle.shutdown().await;
}

/// Failures against any names, known or not, count against the address: past its free
/// failures every login from it waits, while another address logs in.
#[tokio::test]
async fn failed_logins_from_one_address_lock_every_name_from_it() {
    let s = limited(|c| {
        c.login_free_failures = 100;
        c.login_free_failures_per_addr = 3;
        c.login_backoff_base_ms = 60_000;
    })
    .await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let mut r = connect_from([127, 0, 0, 1], &addr).await;
    r.hello().await;
    for name in ["nobody1", "nobody2", "nobody3", "alice"] {
        let res = login(&mut r, name, "wrong-password").await;
        assert_eq!(error(&res).0, ErrorCode::BadCredentials);
    }
    let (code, wait) = error(&login(&mut r, "alice", PASSWORD).await);
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(wait > 50_000 && wait <= 60_000, "retry_after_ms {wait}");
    let mut elsewhere = connect_from([127, 0, 0, 2], &addr).await;
    elsewhere.hello().await;
    assert!(matches!(
        login(&mut elsewhere, "alice", PASSWORD).await,
        ResponseResult::Session(_)
    ));
    s.handle.shutdown().await;
}

/// A login for an unknown name runs a password verification too: with 1M PBKDF2 iterations a
/// verification dominates a login, and without the dummy hash an unknown name answered in
/// about a millisecond. The band (a quarter) is wide enough for a loaded machine.
#[tokio::test]
async fn unknown_names_cost_a_password_verification() {
    let s = TestServer::start_with(|c| c.pbkdf2_iterations = 1_000_000).await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let mut r = Raw::greeted(&addr).await;
    let (mut known, mut unknown) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        let t = Instant::now();
        let res = login(&mut r, "alice", "wrong-password").await;
        known = known.min(t.elapsed());
        assert_eq!(error(&res).0, ErrorCode::BadCredentials);
        let t = Instant::now();
        let res = login(&mut r, "nobody", "wrong-password").await;
        unknown = unknown.min(t.elapsed());
        assert_eq!(error(&res).0, ErrorCode::BadCredentials);
    }
    assert!(
        unknown * 4 >= known,
        "unknown name {unknown:?} vs known name {known:?}: no verification for unknown names"
    );
    s.handle.shutdown().await;
}

/// Registrations are a token bucket per address: past it RATE_LIMITED with the wait until the
/// next token; another address still registers.
#[tokio::test]
async fn registrations_are_limited_per_address() {
    let s = limited(|c| c.registrations_per_hour = 2).await;
    let addr = s.addr();
    let mut r = Raw::greeted(&addr).await;
    assert!(matches!(
        register(&mut r, "alice").await,
        ResponseResult::Register(_)
    ));
    assert!(matches!(
        register(&mut r, "bob").await,
        ResponseResult::Register(_)
    ));
    let (code, wait) = error(&register(&mut r, "carol").await);
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(
        (1_700_000..=1_800_001).contains(&wait),
        "one token every 30 minutes: {wait}"
    );
    let mut again = Raw::greeted(&addr).await;
    assert_eq!(
        error(&register(&mut again, "carol").await).0,
        ErrorCode::RateLimited,
        "per address, not per connection"
    );
    let mut elsewhere = connect_from([127, 0, 0, 2], &addr).await;
    elsewhere.hello().await;
    assert!(matches!(
        register(&mut elsewhere, "carol").await,
        ResponseResult::Register(_)
    ));
    s.handle.shutdown().await;
}

async fn friend_request(r: &mut Raw, to: u64) -> ResponseResult {
    r.call(RequestKind::FriendRequest(pb::SendFriendRequest {
        to_user: to,
        message: "hi".into(),
    }))
    .await
}

async fn respond(r: &mut Raw, request_id: u64, accept: bool) {
    let res = r
        .call(RequestKind::FriendRespond(pb::RespondFriendRequest {
            request_id,
            accept,
        }))
        .await;
    assert!(matches!(res, ResponseResult::FriendRespond(_)), "{res:?}");
}

fn request_id(r: &ResponseResult) -> u64 {
    match r {
        ResponseResult::FriendRequest(sent) => sent.request_id,
        other => panic!("friend request failed: {other:?}"),
    }
}

/// After a rejection the sender may not ask the same user again until the cool-down is over.
#[tokio::test]
async fn a_rejected_friend_request_cools_down_before_the_next() {
    let s = limited(|c| c.friend_request_cooldown_ms = 1500).await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "d").await;
    let (mut b, _) = login_raw(&addr, "bob", "d").await;
    let id = request_id(&friend_request(&mut a, bob).await);
    respond(&mut b, id, false).await;
    let (code, wait) = error(&friend_request(&mut a, bob).await);
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(wait > 0 && wait <= 1500, "retry_after_ms {wait}");
    tokio::time::sleep(Duration::from_millis(wait + 20)).await;
    let again = request_id(&friend_request(&mut a, bob).await);
    assert_ne!(again, id);
    s.handle.shutdown().await;
}

/// Answered friend requests are deleted after the retention period; pending ones stay.
#[tokio::test]
async fn answered_friend_requests_are_pruned_after_the_retention() {
    let s = limited(|c| {
        c.friend_request_retention_ms = 200;
        c.friend_request_cooldown_ms = 0;
    })
    .await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    register_raw(&addr, "carol").await;
    let (mut a, _) = login_raw(&addr, "alice", "d").await;
    let (mut b, _) = login_raw(&addr, "bob", "d").await;
    let (mut c, _) = login_raw(&addr, "carol", "d").await;
    let id = request_id(&friend_request(&mut a, bob).await);
    respond(&mut b, id, false).await;
    request_id(&friend_request(&mut c, bob).await);
    let db = rusqlite::Connection::open_with_flags(
        s.dir.path().join("feige.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let count = |status: &str| -> i64 {
        db.query_row(
            &format!("SELECT COUNT(*) FROM friend_requests WHERE status {status}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("<> 0") > 0 {
        assert!(
            Instant::now() < deadline,
            "the answered request was not pruned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count("= 0"), 1, "the pending request stays");
    s.handle.shutdown().await;
}

async fn send(r: &mut Raw, to: u64, text: &str) -> u64 {
    r.send(RequestKind::SendMessage(pb::SendMessage {
        to_user: to,
        text: text.into(),
        kind: pb::MessageKind::Text as i32,
        ..Default::default()
    }))
    .await
}

/// Reads until every request of `ids` is answered (a refusal is answered at once, an ack after
/// the commit: in any order).
async fn answers(r: &mut Raw, ids: &[u64]) -> HashMap<u64, ResponseResult> {
    let mut out = HashMap::new();
    while out.len() < ids.len() {
        if let Got::Frame(Envelope {
            request_id,
            body: Some(Body::Response(r)),
        }) = r.read().await
        {
            out.insert(request_id, r.result.unwrap());
        }
    }
    out
}

/// Past the burst, a user's messages get RATE_LIMITED with the wait and are not stored; the
/// bucket is the user's, shared by their connections; after the wait messages go through.
/// (All six sends are read within the second a token takes to come back.)
#[tokio::test]
async fn the_send_rate_is_limited_per_user() {
    let s = limited(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.send_rate = 1;
        c.send_burst = 3;
    })
    .await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a1, _) = login_raw(&addr, "alice", "one").await;
    let (mut a2, _) = login_raw(&addr, "alice", "two").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(send(&mut a1, bob, &format!("m{i}")).await);
    }
    let other = send(&mut a2, bob, "other device").await;
    let mut all: Vec<ResponseResult> = answers(&mut a1, &ids).await.into_values().collect();
    all.extend(answers(&mut a2, &[other]).await.into_values());
    let mut conversation = 0;
    let mut waits = Vec::new();
    for a in &all {
        match a {
            ResponseResult::Send(ok) => conversation = ok.conversation_id,
            refused => {
                let (code, wait) = error(refused);
                assert_eq!(code, ErrorCode::RateLimited);
                assert!(wait > 0 && wait <= 1000, "retry_after_ms {wait}");
                waits.push(wait);
            }
        }
    }
    assert_eq!(
        waits.len(),
        3,
        "a burst of 3 for both connections together: {all:?}"
    );
    let history = a1
        .call(RequestKind::History(pb::History {
            conversation_id: conversation,
            ..Default::default()
        }))
        .await;
    match history {
        ResponseResult::History(m) => assert_eq!(m.messages.len(), 3, "nothing more stored"),
        other => panic!("history failed: {other:?}"),
    }
    let longest = waits.iter().max().copied().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(longest + 20)).await;
    let id = send(&mut a2, bob, "later").await;
    assert!(matches!(a2.response(id).await, ResponseResult::Send(_)));
    s.handle.shutdown().await;
}

/// One address holds at most `max_connections_per_addr` connections: the next one gets a
/// Kicked{TOO_MANY_CONNECTIONS} push and is closed at once; another address still connects,
/// and a closed connection frees its place.
#[tokio::test]
async fn connections_are_capped_per_address() {
    let s = limited(|c| c.max_connections_per_addr = 3).await;
    let addr = s.addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(Raw::greeted(&addr).await);
    }
    let mut refused = Raw::connect(&addr).await;
    let frames = refused.expect_closed().await;
    assert!(
        has_code(&frames, ErrorCode::TooManyConnections),
        "{frames:?}"
    );
    let mut elsewhere = connect_from([127, 0, 0, 2], &addr).await;
    elsewhere.hello().await;
    drop(held.pop());
    // The server notices the close when it reads it; then the place is free.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A refusal comes at once; an accepted connection says nothing before Hello.
        let mut r = Raw::connect(&addr).await;
        match tokio::time::timeout(Duration::from_millis(300), r.read()).await {
            Ok(Got::Frame(f)) => {
                assert!(has_code(&[f], ErrorCode::TooManyConnections));
                assert!(Instant::now() < deadline, "the place was not given back");
            }
            Ok(Got::Closed) => panic!("closed without a frame"),
            Err(_) => {
                r.hello().await;
                break;
            }
        }
    }
    s.handle.shutdown().await;
}

/// A user holds at most `max_connections_per_user` logged-in connections: a further login, or
/// resume, is answered TOO_MANY_CONNECTIONS and the connection closed.
#[tokio::test]
async fn logged_in_connections_are_capped_per_user() {
    let s = limited(|c| c.max_connections_per_user = 2).await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    register_raw(&addr, "bob").await;
    let (_one, session) = login_raw(&addr, "alice", "one").await;
    let (_two, _) = login_raw(&addr, "alice", "two").await;
    let mut third = Raw::greeted(&addr).await;
    let res = login(&mut third, "alice", PASSWORD).await;
    assert_eq!(error_code(&res), Some(ErrorCode::TooManyConnections));
    third.expect_closed().await;
    let mut resumed = Raw::greeted(&addr).await;
    let res = resumed
        .call(RequestKind::Resume(pb::Resume {
            token: session.token.clone(),
            device: String::new(),
        }))
        .await;
    assert_eq!(error_code(&res), Some(ErrorCode::TooManyConnections));
    resumed.expect_closed().await;
    // Other users are not affected.
    login_raw(&addr, "bob", "one").await;
    s.handle.shutdown().await;
}
