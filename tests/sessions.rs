//! Session tokens: listing (current, online), revoking (the other device is kicked, its
//! token dead; another user's id is NOT_FOUND), expiry and the sliding lifetime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use feige_tests::sdk::{code, login, register};
use feige_tests::{error_code, has_code, login_raw, register_raw, Raw, TestServer};

const DAY_MS: u64 = 86_400_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn resume_raw(addr: &str, token: &[u8]) -> (Raw, ResponseResult) {
    let mut r = Raw::greeted(addr).await;
    let res = r
        .call(RequestKind::Resume(pb::Resume {
            token: token.to_vec().into(),
            device: String::new(),
        }))
        .await;
    (r, res)
}

async fn list(r: &mut Raw) -> Vec<pb::SessionInfo> {
    match r.call(RequestKind::Sessions(pb::ListSessions {})).await {
        ResponseResult::Sessions(l) => l.sessions,
        other => panic!("ListSessions failed: {other:?}"),
    }
}

/// Login answers carry the session's id and its expiry (30 days by default).
#[tokio::test]
async fn a_login_names_its_session_and_its_expiry() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let before = now_ms();
    let (_r, a) = login_raw(&addr, "alice", "phone").await;
    let (_r2, b) = login_raw(&addr, "alice", "laptop").await;
    assert!(a.session_id > 0 && b.session_id > 0);
    assert_ne!(a.session_id, b.session_id);
    assert!(a.expires_at_ms >= before + 30 * DAY_MS);
    assert!(a.expires_at_ms <= now_ms() + 30 * DAY_MS);
    s.handle.shutdown().await;
}

/// Two devices: each lists both, with `current` on its own, both online, with device names
/// and addresses; one that disconnected is listed offline.
#[tokio::test]
async fn the_list_shows_each_device_with_current_and_online() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let (phone, _pe) = login(&addr, "alice", "phone").await;
    let (laptop, _le) = login(&addr, "alice", "laptop").await;
    let phone_id = phone.session().unwrap().session_id;
    let laptop_id = laptop.session().unwrap().session_id;

    let listed = phone.sessions().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].session_id, laptop_id, "most recently seen first");
    for s in &listed {
        assert_eq!(s.current, s.session_id == phone_id);
        assert!(s.online);
        assert!(s.address.starts_with("127.0.0.1:"), "{}", s.address);
        assert!(s.expires_at_ms > now_ms() + 29 * DAY_MS);
        assert!(s.last_seen_ms >= s.created_at_ms);
    }
    let devices: Vec<&str> = listed.iter().map(|s| s.device.as_str()).collect();
    assert_eq!(devices, ["laptop", "phone"]);
    let from_laptop = laptop.sessions().await.unwrap();
    assert!(from_laptop
        .iter()
        .all(|s| s.current == (s.session_id == laptop_id)));

    // A session whose connection is gone stays listed, offline.
    let (tablet, tablet_session) = login_raw(&addr, "alice", "tablet").await;
    drop(tablet);
    let mut offline = false;
    for _ in 0..200 {
        let l = phone.sessions().await.unwrap();
        let t = l.iter().find(|s| s.session_id == tablet_session.session_id);
        if !t.expect("the tablet's session is listed").online {
            offline = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(offline, "a closed connection's session is listed offline");
    phone.close().await;
    laptop.close().await;
    s.handle.shutdown().await;
}

/// Revoking the other device's session kicks its connection with INVALID_TOKEN, and its
/// token no longer resumes; the revoking device goes on.
#[tokio::test]
async fn revoking_another_session_kicks_it_and_kills_its_token() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (mut phone, _) = login_raw(&addr, "alice", "phone").await;
    let (mut laptop, laptop_session) = login_raw(&addr, "alice", "laptop").await;
    let res = phone
        .call(RequestKind::RevokeSession(pb::RevokeSession {
            session_id: laptop_session.session_id,
        }))
        .await;
    assert!(matches!(res, ResponseResult::RevokeSession(_)), "{res:?}");
    let frames = laptop.expect_closed().await;
    assert!(has_code(&frames, ErrorCode::InvalidToken), "{frames:?}");
    let (_r, res) = resume_raw(&addr, &laptop_session.token).await;
    assert_eq!(error_code(&res), Some(ErrorCode::InvalidToken));
    let left = list(&mut phone).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].current);
    // Revoked twice: gone.
    let res = phone
        .call(RequestKind::RevokeSession(pb::RevokeSession {
            session_id: laptop_session.session_id,
        }))
        .await;
    assert_eq!(error_code(&res), Some(ErrorCode::NotFound));
    s.handle.shutdown().await;
}

/// Another user's session id is NOT_FOUND, and that session lives on.
#[tokio::test]
async fn revoking_someone_elses_session_is_not_found() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (alice, _) = login(&addr, "alice", "phone").await;
    let (bob, _) = login(&addr, "bob", "phone").await;
    let bobs = bob.session().unwrap();
    assert_eq!(
        code(alice.revoke_session(bobs.session_id).await),
        ErrorCode::NotFound
    );
    assert_eq!(code(alice.revoke_session(0).await), ErrorCode::NotFound);
    let (_r, res) = resume_raw(&addr, &bobs.token).await;
    assert!(matches!(res, ResponseResult::Session(_)), "{res:?}");
    assert_eq!(bob.sessions().await.unwrap().len(), 1);
    alice.close().await;
    bob.close().await;
    s.handle.shutdown().await;
}

/// Revoking one's own session logs this connection out, like Logout.
#[tokio::test]
async fn revoking_ones_own_session_logs_out() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (mut phone, session) = login_raw(&addr, "alice", "phone").await;
    let res = phone
        .call(RequestKind::RevokeSession(pb::RevokeSession {
            session_id: session.session_id,
        }))
        .await;
    assert!(matches!(res, ResponseResult::RevokeSession(_)), "{res:?}");
    let res = phone.call(RequestKind::Whoami(pb::WhoAmI {})).await;
    assert_eq!(error_code(&res), Some(ErrorCode::NotLoggedIn));
    let (_r, res) = resume_raw(&addr, &session.token).await;
    assert_eq!(error_code(&res), Some(ErrorCode::InvalidToken));
    s.handle.shutdown().await;
}

/// With a lifetime of a quarter second, a token unused for longer (its connection gone) is
/// refused as expired, and no longer listed.
#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = TestServer::start_with(|c| c.session_ttl_days = 250.0 / DAY_MS as f64).await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (old, session) = login_raw(&addr, "alice", "phone").await;
    assert!(session.expires_at_ms <= now_ms() + 250);
    drop(old);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_r, res) = resume_raw(&addr, &session.token).await;
    assert_eq!(error_code(&res), Some(ErrorCode::InvalidToken));
    let ResponseResult::Error(e) = res else {
        unreachable!()
    };
    assert!(e.message.contains("expired"), "{}", e.message);
    let (mut fresh, _) = login_raw(&addr, "alice", "laptop").await;
    let listed = list(&mut fresh).await;
    assert_eq!(listed.len(), 1, "the expired session is not listed");
    s.handle.shutdown().await;
}

/// A resume slides the expiry and records the new address; the id stays.
#[tokio::test]
async fn a_resume_slides_the_expiry() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (_phone, first) = login_raw(&addr, "alice", "phone").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut again, res) = resume_raw(&addr, &first.token).await;
    let ResponseResult::Session(resumed) = res else {
        panic!("resume failed: {res:?}");
    };
    assert_eq!(resumed.session_id, first.session_id);
    assert!(
        resumed.expires_at_ms > first.expires_at_ms,
        "{} vs {}",
        resumed.expires_at_ms,
        first.expires_at_ms
    );
    let listed = list(&mut again).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].expires_at_ms, resumed.expires_at_ms);
    assert!(listed[0].last_seen_ms > listed[0].created_at_ms);
    let local = again.stream.local_addr().unwrap().to_string();
    assert_eq!(listed[0].address, local, "the address of the last resume");
    s.handle.shutdown().await;
}

/// Being logged in slides the expiry: with a lifetime of one second, a token whose
/// connection stays logged in still resumes after three, and expires once it is gone.
#[tokio::test]
async fn staying_logged_in_keeps_the_token_alive() {
    let s = TestServer::start_with(|c| c.session_ttl_days = 1000.0 / DAY_MS as f64).await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (online, session) = login_raw(&addr, "alice", "phone").await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (again, res) = resume_raw(&addr, &session.token).await;
    let ResponseResult::Session(resumed) = res else {
        panic!("the token of a logged-in connection expired: {res:?}");
    };
    assert!(resumed.expires_at_ms > session.expires_at_ms + 2000);
    drop(online);
    drop(again);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_r, res) = resume_raw(&addr, &session.token).await;
    assert_eq!(error_code(&res), Some(ErrorCode::InvalidToken));
    s.handle.shutdown().await;
}
