//! Closing an account through the Rust client SDK: the refusals, the sessions ended, friends
//! and history seeing the user as closed, login and resume refused, the username freed after
//! the retention period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::Event;
use feige_protocol::{pb, ErrorCode};
use feige_tests::sdk::{
    befriend, code, connect, login, next_event, next_message, register, PASSWORD,
};
use feige_tests::totp::{code as totp, fresh_step};
use feige_tests::TestServer;

#[tokio::test]
async fn closing_ends_sessions_and_friends_and_history_see_it() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (a, _) = login(&addr, "alice", "laptop").await;
    let (a2, mut a2_ev) = login(&addr, "alice", "phone").await;
    let (b, mut b_ev) = login(&addr, "bob", "desk").await;
    let conv = befriend(&a, &b).await;
    a.send_text(uid(&b), "hello before closing").await.unwrap();
    assert!(!next_message(&mut b_ev).await.sender_closed);
    let token = a.session().unwrap().token;

    assert_eq!(
        code(a.close_account("wrong-password", None).await),
        ErrorCode::BadCredentials
    );
    a.close_account(PASSWORD, None).await.unwrap();
    // Every connection of the user is closed with ACCOUNT_CLOSED.
    let kicked = next_event(&mut a2_ev, |e| match e {
        Event::Kicked { code, .. } => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(kicked, ErrorCode::AccountClosed);
    // The friend hears, and sees the user as closed from now on.
    let updated = next_event(&mut b_ev, |e| match e {
        Event::UserUpdated(u) => Some(u),
        _ => None,
    })
    .await;
    assert_eq!(updated.user_id, alice_id);
    assert!(updated.closed);
    let friends = b.friends().await.unwrap();
    assert!(friends[0].user.as_ref().unwrap().closed);
    assert!(b.user(alice_id).await.unwrap().closed);
    // The messages stay in the friend's history, marked.
    let history = b
        .history(pb::History {
            conversation_id: conv,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].text, "hello before closing");
    assert!(history[0].sender_closed);
    // Login and resume are refused; the name is not free yet.
    let (c, _) = connect(&addr, "other").await;
    assert_eq!(
        code(c.login("alice", PASSWORD).await),
        ErrorCode::AccountClosed
    );
    assert_eq!(code(c.resume(&token).await), ErrorCode::AccountClosed);
    assert_eq!(
        code(c.register("alice", PASSWORD, "Alice").await),
        ErrorCode::UsernameTaken
    );
    for client in [a, a2, b, c] {
        client.close().await;
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn closing_with_two_factor_login_needs_a_code() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let (a, _) = login(&addr, "alice", "laptop").await;
    let step = fresh_step().await;
    let secret = a.totp_setup().await.unwrap().secret;
    a.totp_enable(&totp(&secret, step)).await.unwrap();
    assert_eq!(
        code(a.close_account(PASSWORD, None).await),
        ErrorCode::TotpInvalid
    );
    assert_eq!(
        code(a.close_account(PASSWORD, Some("123456")).await),
        ErrorCode::TotpInvalid
    );
    assert_eq!(
        code(
            a.close_account("wrong-password", Some(&totp(&secret, step + 1)))
                .await
        ),
        ErrorCode::BadCredentials
    );
    a.close_account(PASSWORD, Some(&totp(&secret, step + 1)))
        .await
        .unwrap();
    let (c, _) = connect(&addr, "other").await;
    assert_eq!(
        code(c.login("alice", PASSWORD).await),
        ErrorCode::AccountClosed
    );
    a.close().await;
    c.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn the_username_is_freed_after_the_retention_period() {
    let s = TestServer::start_with(|c| c.closed_username_retention_ms = 300).await;
    let addr = s.addr();
    let old = register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (a, _) = login(&addr, "alice", "laptop").await;
    a.close_account(PASSWORD, None).await.unwrap();
    let (c, _) = connect(&addr, "other").await;
    let mut taken = None;
    for _ in 0..100 {
        match c.register("alice", PASSWORD, "Alice again").await {
            Ok(id) => {
                taken = Some(id);
                break;
            }
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::UsernameTaken)),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new = taken.expect("the name was freed");
    assert_ne!(new, old);
    // The closed account's rows stay, renamed; the new one logs in as usual.
    let (b, _) = login(&addr, "bob", "desk").await;
    let closed = b.user(old).await.unwrap();
    assert!(closed.closed);
    assert_eq!(closed.username, format!("closed#{old}"));
    let (n, _) = login(&addr, "alice", "laptop").await;
    assert_eq!(n.session().unwrap().user_id, new);
    for client in [a, b, c, n] {
        client.close().await;
    }
    s.handle.shutdown().await;
}

fn uid(c: &feige_client::Client) -> u64 {
    c.session().unwrap().user_id
}
