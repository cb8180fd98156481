//! `feige notifications` and `feige notification-read` against a real server on port 0, with
//! notices posted through the admin API, in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::feige_json as feige;
use feige_tests::http::post;
use feige_tests::TestServer;
use serde_json::json;

const ADMIN: &str = "admin-token-for-the-tests-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_mark_read() {
    let s = TestServer::start_with(|c| c.admin_token = Some(ADMIN.into())).await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let r = feige(&addr, st, None, &["register", "alice"])
        .await
        .unwrap();
    let alice = r[0]["user_id"].as_str().unwrap().parse::<u64>().unwrap();
    feige(&addr, st, Some("alice"), &["login"]).await.unwrap();
    for body in ["first", "second"] {
        let notice = json!({ "to": "user", "id": alice, "title": "T", "body": body });
        let answer = post(&s.http_addr(), "/admin/api/notices", Some(ADMIN), &notice).await;
        assert_eq!(answer.data()["recipients"], 1);
    }
    let list = feige(&addr, st, Some("alice"), &["notifications"])
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(
        (list[0]["body"].as_str(), list[0]["read"].as_bool()),
        (Some("first"), Some(false))
    );
    assert_eq!(list[2]["unread"], 2);
    let first = list[0]["id"].as_str().unwrap().to_owned();
    let page = feige(
        &addr,
        st,
        Some("alice"),
        &["notifications", "--after", &first],
    )
    .await
    .unwrap();
    assert_eq!(page[0]["body"], "second");
    let one = feige(&addr, st, Some("alice"), &["notification-read", &first])
        .await
        .unwrap();
    assert_eq!(
        (one[0]["marked"].as_u64(), one[0]["unread"].as_u64()),
        (Some(1), Some(1))
    );
    let all = feige(&addr, st, Some("alice"), &["notification-read", "--all"])
        .await
        .unwrap();
    assert_eq!(all[0]["unread"], 0);
    let err = feige(&addr, st, Some("alice"), &["notification-read", "987654"]).await;
    assert_eq!(err.unwrap_err(), "NOT_FOUND");
    let list = feige(&addr, st, Some("alice"), &["notifications"])
        .await
        .unwrap();
    assert!(list[..2].iter().all(|n| n["read"] == true));
}
