//! The admin API: who may call it, connections and kicks, users (list, disable, enable,
//! approve, reset a password), registration approval, address bans; every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::{Event, Events};
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_server::config::Registration;
use feige_tests::http::{get, post, request, Body};
use feige_tests::sdk::{code, connect, login, next_event, register, PASSWORD};
use feige_tests::{has_code, Raw, TestServer};
use serde_json::json;

const ADMIN: &str = "admin-token-for-the-tests-01";

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        c.api_token = Some("api-token-for-the-tests-0001".into());
        c.admins = vec!["Root".into()];
    })
    .await
}

/// The next `Kicked` event: its code and reason.
async fn kicked(events: &mut Events) -> (ErrorCode, String) {
    next_event(events, |e| match e {
        Event::Kicked { code, reason } => Some((code, reason)),
        _ => None,
    })
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn only_admins_get_in() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    register(&addr, "root").await;
    register(&addr, "alice").await;
    let (root, _r) = login(&addr, "root", "console").await;
    let (alice, _a) = login(&addr, "alice", "a").await;
    let root_token = hex(&root.session().unwrap().token);
    let alice_token = hex(&alice.session().unwrap().token);
    let routes = [
        ("GET", "/admin/api/connections"),
        ("POST", "/admin/api/kick"),
        ("GET", "/admin/api/users"),
        ("POST", "/admin/api/users/disable"),
        ("POST", "/admin/api/users/enable"),
        ("POST", "/admin/api/users/approve"),
        ("POST", "/admin/api/users/reset_password"),
        ("POST", "/admin/api/notices"),
        ("GET", "/admin/api/bans"),
        ("POST", "/admin/api/bans"),
        ("DELETE", "/admin/api/bans"),
    ];
    let empty = json!({});
    for (method, path) in routes {
        let send = |token| request(&http, method, path, token, Body::Json(&empty));
        assert_eq!(send(None).await.status, 401, "{method} {path}");
        assert_eq!(send(Some("not-the-admin-token-xx")).await.status, 401);
        // The API token is not an admin token; a user who is not an admin is forbidden.
        assert_eq!(send(Some("api-token-for-the-tests-0001")).await.status, 401);
        assert_eq!(
            send(Some(&alice_token)).await.status,
            403,
            "{method} {path}"
        );
    }
    // An admin user's session token, and the admin token.
    let users = get(&http, "/admin/api/users", Some(&root_token)).await;
    assert_eq!(users.data()["total"], 2);
    let users = get(&http, "/admin/api/users?query=ALI", Some(ADMIN)).await;
    assert_eq!(users.data()["total"], 1);
    assert_eq!(users.data()["users"][0]["username"], "alice");
    assert_eq!(users.data()["users"][0]["disabled"], false);
    let page = get(&http, "/admin/api/users?offset=1&limit=1", Some(ADMIN)).await;
    assert_eq!(page.data()["users"].as_array().unwrap().len(), 1);
    assert_eq!(page.data()["users"][0]["username"], "alice");
    let bad = get(&http, "/admin/api/users?limit=x", Some(ADMIN)).await;
    assert_eq!(bad.status, 400);
    root.close().await;
    alice.close().await;
}

#[tokio::test]
async fn connections_are_listed_and_kicked_with_the_reason() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, mut aev) = login(&addr, "alice", "laptop").await;
    let (_alice2, mut aev2) = login(&addr, "alice", "phone").await;
    let (bob, mut bev) = login(&addr, "bob", "desk").await;

    let list = get(&http, "/admin/api/connections", Some(ADMIN)).await;
    let data = list.data();
    assert_eq!(data["total"], 3);
    let conns = data["connections"].as_array().unwrap();
    let laptop = conns.iter().find(|c| c["device"] == "laptop").unwrap();
    assert_eq!(laptop["user_id"], alice_id);
    assert_eq!(laptop["username"], "alice");
    assert_eq!(laptop["transport"], "tcp");
    assert!(laptop["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(laptop["since_ms"].as_i64().unwrap() > 0);
    let page = get(
        &http,
        "/admin/api/connections?offset=2&limit=5",
        Some(ADMIN),
    )
    .await;
    assert_eq!(page.data()["connections"].as_array().unwrap().len(), 1);

    // One connection, by id: only it is closed, and it hears why.
    let body = json!({ "conn_id": laptop["conn_id"], "reason": "maintenance" });
    let kick = post(&http, "/admin/api/kick", Some(ADMIN), &body).await;
    assert_eq!(kick.data()["kicked"], 1);
    assert_eq!(
        kicked(&mut aev).await,
        (ErrorCode::KickedByAdmin, "maintenance".to_owned())
    );
    // The client reconnects after an admin's kick.
    next_event(&mut aev, |e| {
        matches!(e, Event::State(feige_client::ConnState::Connected)).then_some(())
    })
    .await;
    drop(alice);

    // A user: every connection.
    let body = json!({ "user_id": bob_id });
    let kick = post(&http, "/admin/api/kick", Some(ADMIN), &body).await;
    assert_eq!(kick.data()["kicked"], 1);
    let (code, reason) = kicked(&mut bev).await;
    assert_eq!(code, ErrorCode::KickedByAdmin);
    assert!(!reason.is_empty());
    drop(bob);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kicked(&mut aev2))
            .await
            .is_err()
    );

    for body in [
        json!({}),
        json!({ "user_id": 1, "conn_id": 1 }),
        json!({ "user_id": "x" }),
        json!({ "conn_id": 5, "reason": "a\u{1}b" }),
    ] {
        let answer = post(&http, "/admin/api/kick", Some(ADMIN), &body).await;
        assert_eq!(answer.status, 400, "{body}: {:?}", answer.body);
    }
    let nobody = post(
        &http,
        "/admin/api/kick",
        Some(ADMIN),
        &json!({ "conn_id": 999999 }),
    )
    .await;
    assert_eq!(nobody.data()["kicked"], 0);
}

#[tokio::test]
async fn a_disabled_user_is_kicked_and_refused_until_enabled() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let bob_id = register(&addr, "bob").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    let token = bob.session().unwrap().token;

    let body = json!({ "user_id": bob_id });
    let off = post(&http, "/admin/api/users/disable", Some(ADMIN), &body).await;
    assert_eq!(off.data()["user"]["disabled"], true);
    assert_eq!(kicked(&mut bev).await.0, ErrorCode::AccountDisabled);
    let (again, _) = connect(&addr, "b").await;
    assert_eq!(
        code(again.login("bob", PASSWORD).await),
        ErrorCode::AccountDisabled
    );
    // A wrong password still says only that.
    assert_eq!(
        code(again.login("bob", "wrong-password").await),
        ErrorCode::BadCredentials
    );
    let mut raw = Raw::greeted(&addr).await;
    let resumed = raw
        .call(RequestKind::Resume(pb::Resume {
            token: token.clone(),
            device: String::new(),
        }))
        .await;
    assert_eq!(
        feige_tests::error_code(&resumed),
        Some(ErrorCode::AccountDisabled)
    );

    let on = post(&http, "/admin/api/users/enable", Some(ADMIN), &body).await;
    assert_eq!(on.data()["user"]["disabled"], false);
    again.login("bob", PASSWORD).await.unwrap();
    let resumed = raw
        .call(RequestKind::Resume(pb::Resume {
            token,
            device: String::new(),
        }))
        .await;
    assert!(matches!(
        resumed,
        feige_protocol::ResponseResult::Session(_)
    ));

    for (path, body, status) in [
        (
            "/admin/api/users/disable",
            json!({ "user_id": 987654 }),
            404,
        ),
        ("/admin/api/users/enable", json!({ "user_id": 987654 }), 404),
        (
            "/admin/api/users/approve",
            json!({ "user_id": 987654 }),
            404,
        ),
        ("/admin/api/users/disable", json!({}), 400),
        ("/admin/api/users/disable", json!({ "user_id": -3 }), 400),
    ] {
        let answer = post(&http, path, Some(ADMIN), &body).await;
        assert_eq!(answer.status, status, "{path} {body}: {:?}", answer.body);
    }
    again.close().await;
}

#[tokio::test]
async fn approval_mode_keeps_new_accounts_pending() {
    let s = TestServer::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        c.registration = Registration::Approval;
    })
    .await;
    let (addr, http) = (s.addr(), s.http_addr());
    let (c, _) = connect(&addr, "d").await;
    let made = c.create_account("newbie", PASSWORD, "New").await.unwrap();
    assert!(made.pending);
    assert_eq!(
        code(c.login("newbie", PASSWORD).await),
        ErrorCode::PendingApproval
    );
    let users = get(&http, "/admin/api/users?query=newbie", Some(ADMIN)).await;
    assert_eq!(users.data()["users"][0]["pending"], true);
    let body = json!({ "user_id": made.user_id });
    let ok = post(&http, "/admin/api/users/approve", Some(ADMIN), &body).await;
    assert_eq!(ok.data()["user"]["pending"], false);
    c.login("newbie", PASSWORD).await.unwrap();
    c.close().await;
    // Open registration (the default) answers pending = false.
    let open = server().await;
    let (c, _) = connect(&open.addr(), "d").await;
    assert!(
        !c.create_account("someone", PASSWORD, "")
            .await
            .unwrap()
            .pending
    );
}

#[tokio::test]
async fn a_password_reset_ends_every_session() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let bob_id = register(&addr, "bob").await;
    let (_bob, mut bev) = login(&addr, "bob", "b").await;
    let short = json!({ "user_id": bob_id, "new_password": "short" });
    let refused = post(
        &http,
        "/admin/api/users/reset_password",
        Some(ADMIN),
        &short,
    )
    .await;
    assert_eq!(refused.status, 400);
    let unknown = json!({ "user_id": 987654, "new_password": "new-password-1" });
    let refused = post(
        &http,
        "/admin/api/users/reset_password",
        Some(ADMIN),
        &unknown,
    )
    .await;
    assert_eq!(refused.status, 404);
    let body = json!({ "user_id": bob_id, "new_password": "new-password-1" });
    let reset = post(&http, "/admin/api/users/reset_password", Some(ADMIN), &body).await;
    assert_eq!(reset.data()["sessions_ended"], 1);
    assert_eq!(kicked(&mut bev).await.0, ErrorCode::InvalidToken);
    let (c, _) = connect(&addr, "b").await;
    assert_eq!(
        code(c.login("bob", PASSWORD).await),
        ErrorCode::BadCredentials
    );
    c.login("bob", "new-password-1").await.unwrap();
    c.close().await;
}

#[tokio::test]
async fn a_ban_closes_live_connections_and_refuses_new_ones() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    register(&addr, "alice").await;
    let (_alice, mut aev) = login(&addr, "alice", "a").await;
    // A connection that has not logged in yet is refused at its login.
    let mut early = Raw::greeted(&addr).await;

    for body in [
        json!({}),
        json!({ "cidr": "10.0.0.0/33" }),
        json!({ "cidr": "nope" }),
    ] {
        let answer = post(&http, "/admin/api/bans", Some(ADMIN), &body).await;
        assert_eq!(answer.status, 400, "{body}: {:?}", answer.body);
    }
    let body = json!({ "cidr": "127.0.0.0/8", "reason": "flooding" });
    let ban = post(&http, "/admin/api/bans", Some(ADMIN), &body).await;
    assert_eq!(ban.data()["ban"]["cidr"], "127.0.0.0/8");
    assert_eq!(ban.data()["closed"], 1);
    let (code_, reason) = kicked(&mut aev).await;
    assert_eq!(code_, ErrorCode::AddressBanned);
    assert!(reason.contains("flooding"), "{reason}");

    let refused_login = early
        .call(RequestKind::Login(pb::Login {
            username: "alice".into(),
            password: PASSWORD.into(),
            device: String::new(),
        }))
        .await;
    assert_eq!(
        feige_tests::error_code(&refused_login),
        Some(ErrorCode::AddressBanned)
    );
    early.expect_closed().await;
    // New connections get Kicked{ADDRESS_BANNED} and the close.
    let mut refused = Raw::connect(&addr).await;
    assert!(has_code(
        &refused.expect_closed().await,
        ErrorCode::AddressBanned
    ));

    let list = get(&http, "/admin/api/bans", Some(ADMIN)).await;
    assert_eq!(list.data()["bans"][0]["reason"], "flooding");
    let gone = json!({ "cidr": "10.9.9.9" });
    let missing = request(
        &http,
        "DELETE",
        "/admin/api/bans",
        Some(ADMIN),
        Body::Json(&gone),
    )
    .await;
    assert_eq!(missing.status, 404);
    let lift = request(
        &http,
        "DELETE",
        "/admin/api/bans?cidr=127.0.0.1/8",
        Some(ADMIN),
        Body::Empty,
    )
    .await;
    assert_eq!(lift.data()["removed"], true);
    let (c, _) = login(&addr, "alice", "again").await;
    c.close().await;
    assert_eq!(
        get(&http, "/admin/api/bans", Some(ADMIN)).await.data()["bans"],
        json!([])
    );
}
