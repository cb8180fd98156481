//! Accounts through the Rust client SDK: register, login, resume, logout, several devices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_protocol::ErrorCode;
use feige_tests::sdk::{code, connect, login, register, PASSWORD};
use feige_tests::TestServer;

#[tokio::test]
async fn register_and_duplicate_username() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let (c, _) = connect(&addr, "d").await;
    let alice = c.register("alice", PASSWORD, "Alice").await.unwrap();
    let bob = c.register("bob", PASSWORD, "Bob").await.unwrap();
    assert_ne!(alice, bob);
    assert_eq!(
        code(c.register("alice", PASSWORD, "Other").await),
        ErrorCode::UsernameTaken
    );
    assert_eq!(
        code(c.register("ALICE", PASSWORD, "Other").await),
        ErrorCode::UsernameTaken
    );
    assert_eq!(
        code(c.register("carol", "short", "Carol").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(c.register("a b", PASSWORD, "x").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(c.register("dave", PASSWORD, "da\u{1b}ve").await),
        ErrorCode::InvalidArgument
    );
    c.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn login_wrong_password_and_whoami() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let id = register(&addr, "alice").await;
    let (c, _) = connect(&addr, "laptop").await;
    assert_eq!(
        code(c.login("alice", "wrong-password").await),
        ErrorCode::BadCredentials
    );
    assert_eq!(
        code(c.login("nobody", PASSWORD).await),
        ErrorCode::BadCredentials
    );
    assert_eq!(code(c.whoami().await), ErrorCode::NotLoggedIn);
    let session = c.login("alice", PASSWORD).await.unwrap();
    assert_eq!(session.user_id, id);
    assert_eq!(session.token.len(), 32);
    assert_eq!(session.device, "laptop");
    let profile = session.profile.unwrap();
    assert_eq!(profile.username, "alice");
    assert_eq!(profile.nickname, "alice");
    assert_eq!(c.whoami().await.unwrap().user_id, id);
    assert_eq!(
        code(c.login("alice", PASSWORD).await),
        ErrorCode::AlreadyLoggedIn
    );
    c.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn resume_then_logout_revokes_the_token() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let id = register(&addr, "alice").await;
    let (first, _) = login(&addr, "alice", "phone").await;
    let token = first.session().unwrap().token.to_vec();

    // Resume on a new connection.
    let (second, _) = connect(&addr, "phone").await;
    let resumed = second.resume(&token).await.unwrap();
    assert_eq!(resumed.user_id, id);
    assert_eq!(resumed.device, "phone");
    assert_eq!(second.whoami().await.unwrap().username, "alice");

    // Logout on the first connection revokes the token for everyone.
    first.logout().await.unwrap();
    assert_eq!(code(first.whoami().await), ErrorCode::NotLoggedIn);
    let (third, _) = connect(&addr, "phone").await;
    assert_eq!(code(third.resume(&token).await), ErrorCode::InvalidToken);
    // The second connection, which used the same token, was closed by the server.
    let mut still_works = true;
    for _ in 0..50 {
        if second.whoami().await.is_err() {
            still_works = false;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!still_works, "a connection on a revoked token kept working");
    for c in [first, second, third] {
        c.close().await;
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn two_devices_of_one_user_at_once() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let id = register(&addr, "alice").await;
    let (laptop, _) = login(&addr, "alice", "laptop").await;
    let (phone, _) = login(&addr, "alice", "phone").await;
    assert_ne!(
        laptop.session().unwrap().token,
        phone.session().unwrap().token
    );
    assert_eq!(laptop.whoami().await.unwrap().user_id, id);
    assert_eq!(phone.whoami().await.unwrap().user_id, id);
    // Logging out one device leaves the other logged in.
    phone.logout().await.unwrap();
    assert_eq!(laptop.whoami().await.unwrap().user_id, id);
    laptop.close().await;
    phone.close().await;
    s.handle.shutdown().await;
}
