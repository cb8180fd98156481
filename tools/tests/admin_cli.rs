//! `feige admin ...` against a real server's HTTP admin API, in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::feige_json as feige;
use feige_tests::TestServer;

const ADMIN: &str = "admin-token-for-the-tests-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_notices_kicks_and_bans() {
    let s = TestServer::start_with(|c| c.admin_token = Some(ADMIN.into())).await;
    let (addr, http) = (s.addr(), s.http_addr());
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let r = feige(&addr, st, None, &["register", "alice"])
        .await
        .unwrap();
    let alice = r[0]["user_id"].as_str().unwrap().to_owned();
    assert_eq!(r[0]["pending"], false);
    feige(&addr, st, Some("alice"), &["login"]).await.unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--http", &http, "--token", ADMIN];
        all.extend_from_slice(args);
        all.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| {
        let (addr, st) = (addr.clone(), st.to_owned());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            feige(&addr, &st, None, &args).await
        }
    };
    let users = run(admin(&["users", "ali"])).await.unwrap();
    assert_eq!(users[0]["total"], 1);
    assert_eq!(users[0]["users"][0]["username"], "alice");
    let notice = run(admin(&[
        "notice", "--to", "all", "--title", "T", "hello", "all",
    ]))
    .await
    .unwrap();
    assert_eq!(notice[0]["recipients"], 1);
    let list = feige(&addr, st, Some("alice"), &["notifications"])
        .await
        .unwrap();
    assert_eq!(list[0]["body"], "hello all");
    let off = run(admin(&["disable", &alice])).await.unwrap();
    assert_eq!(off[0]["user"]["disabled"], true);
    run(admin(&["enable", &alice])).await.unwrap();
    let kick = run(admin(&["kick", "--user-id", &alice, "--reason", "bye"]))
        .await
        .unwrap();
    assert_eq!(kick[0]["kicked"], 0);
    let ban = run(admin(&["ban", "10.1.2.3/8", "--reason", "spam"]))
        .await
        .unwrap();
    assert_eq!(ban[0]["ban"]["cidr"], "10.0.0.0/8");
    let bans = run(admin(&["bans"])).await.unwrap();
    assert_eq!(bans[0]["bans"][0]["reason"], "spam");
    run(admin(&["unban", "10.0.0.0/8"])).await.unwrap();
    let err = run(admin(&["unban", "10.0.0.0/8"])).await.unwrap_err();
    assert_eq!(err, "HTTP_404");
    let conns = run(admin(&["connections"])).await.unwrap();
    assert_eq!(conns[0]["total"], 0);
    let wrong = vec![
        "admin",
        "--http",
        &http,
        "--token",
        "wrong-token-0123456789",
        "bans",
    ];
    let err = feige(&addr, st, None, &wrong).await.unwrap_err();
    assert_eq!(err, "HTTP_401");
}
