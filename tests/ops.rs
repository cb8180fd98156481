//! The operations endpoints over HTTP: `/metrics` moves with traffic, `/healthz`, the admin
//! status, the log ring and the online backup, and their refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use feige_protocol::{pb, RequestKind, ResponseResult};
use feige_tests::ops_http::{get, request};
use feige_tests::sdk::{connect, login, messages, register, PASSWORD};
use feige_tests::{Raw, TestServer};
use serde_json::json;

const ADMIN: &str = "admin-token-0123456789abcdef";

async fn server() -> TestServer {
    // The log ring is process-wide: the first test to get here installs it (quietly).
    feige_server::logs::install(tracing::Level::INFO, 10_000, 8 << 20, false);
    TestServer::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await
}

/// `/metrics` parsed: series (name with labels) → value. Panics on a malformed line.
async fn scrape(http: &str) -> HashMap<String, f64> {
    let r = get(http, "/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut out = HashMap::new();
    for line in r.body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(
            out.insert(series.to_owned(), v).is_none(),
            "twice: {series}"
        );
    }
    out
}

fn delta(a: &HashMap<String, f64>, b: &HashMap<String, f64>, series: &str) -> f64 {
    let v = |m: &HashMap<String, f64>| *m.get(series).unwrap_or_else(|| panic!("no {series}"));
    v(b) - v(a)
}

#[tokio::test]
async fn metrics_move_with_logins_and_messages() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let before = scrape(&http).await;
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _a) = login(&addr, "alice", "a").await;
    let (_bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (stranger, _s) = connect(&addr, "x").await;
    assert!(stranger.login("alice", "not the password").await.is_err());
    for i in 0..10 {
        alice.send_text(bob_id, &format!("m{i}")).await.unwrap();
    }
    assert_eq!(messages(&mut bob_ev, 10).await.len(), 10);
    let after = scrape(&http).await;
    assert_eq!(
        delta(&before, &after, "feige_logins_total{result=\"ok\"}"),
        2.0
    );
    assert_eq!(
        delta(&before, &after, "feige_logins_total{result=\"failed\"}"),
        1.0
    );
    assert_eq!(delta(&before, &after, "feige_messages_stored_total"), 10.0);
    assert_eq!(
        delta(&before, &after, "feige_messages_delivered_total"),
        10.0
    );
    assert_eq!(delta(&before, &after, "feige_acks_total"), 10.0);
    assert!(after["feige_connections{transport=\"tcp\"}"] >= 3.0);
    assert_eq!(after["feige_users_online"], 2.0);
    assert!(delta(&before, &after, "feige_commits_total") >= 1.0);
    assert!(delta(&before, &after, "feige_commit_duration_seconds_count") >= 1.0);
    assert!(delta(&before, &after, "feige_commit_batch_ops_count") >= 1.0);
    assert!(after["feige_db_bytes"] > 0.0);
    // SendMessage is in the message family (ten sends; Sync may add more).
    let sends = "feige_request_duration_seconds_count{family=\"message\"}";
    assert!(delta(&before, &after, sends) >= 10.0);
    let inf = "feige_request_duration_seconds_bucket{family=\"message\",le=\"+Inf\"}";
    assert_eq!(after[inf], after[sends]);
    assert_eq!(after["feige_queue_depth{queue=\"router\"}"], 0.0);
}

#[tokio::test]
async fn healthz_and_a_metrics_token() {
    let s = server().await;
    let r = get(&s.http_addr(), "/healthz", None).await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let token = "metrics-token-0123456789";
    let t = TestServer::start_with(|c| c.metrics_token = Some(token.into())).await;
    let http = t.http_addr();
    assert_eq!(get(&http, "/metrics", None).await.status, 401);
    assert_eq!(
        get(&http, "/metrics", Some("wrong-token-0123456789"))
            .await
            .status,
        401
    );
    let r = get(&http, "/metrics", Some(token)).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("feige_uptime_seconds "));
    assert_eq!(
        get(&http, "/healthz", None).await.status,
        200,
        "health stays open"
    );
}

#[tokio::test]
async fn status_reports_the_server() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (carol, _c) = login(&addr, "carol", "c").await;
    let (_bob, _b) = login(&addr, "bob", "b").await;
    for i in 0..40 {
        carol.send_text(bob_id, &format!("s{i}")).await.unwrap();
    }
    let _browser = feige_tests::ws::Ws::connect(&http).await;
    // The rate is sampled once a second.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get(&http, "/admin/api/status", Some(ADMIN)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["code"].clone(), v["msg"].clone()),
        (json!(200), json!("Success"))
    );
    let d = &v["data"];
    assert!(d["uptime_s"].as_u64().unwrap() >= 2);
    assert_eq!(d["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(d["connections"]["tcp"], 2);
    assert_eq!(d["connections"]["ws"], 1);
    assert_eq!(d["users_online"], 2);
    let rate = d["messages_per_s"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 40.0, "{rate}");
    for q in ["writer", "router", "files_bytes", "speech"] {
        assert_eq!(d["queues"][q], 0, "{q}");
    }
    assert!(d["db_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn logs_hold_a_failed_login() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let (c, _e) = connect(&addr, "x").await;
    assert!(c.login("nobody-1f3a9c", PASSWORD).await.is_err());
    let r = get(&http, "/admin/api/logs?level=info&limit=2000", Some(ADMIN)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lines = r.json()["data"]["lines"].as_array().unwrap().clone();
    let line = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("nobody-1f3a9c"))
        .unwrap_or_else(|| panic!("no failed login in {lines:?}"));
    assert_eq!(line["level"], "info");
    assert!(line["message"]
        .as_str()
        .unwrap()
        .starts_with("failed login"));
    assert!(line["target"].as_str().unwrap().starts_with("feige_server"));
    assert!(line["ts_ms"].as_i64().unwrap() > 0);
    // Newest last; a level above info leaves it out; limit caps the count.
    let ts: Vec<i64> = lines.iter().map(|l| l["ts_ms"].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    let warn = get(&http, "/admin/api/logs?level=warn", Some(ADMIN))
        .await
        .json();
    let warn = warn["data"]["lines"].as_array().unwrap().clone();
    assert!(warn
        .iter()
        .all(|l| l["level"] == "warn" || l["level"] == "error"));
    assert!(!warn
        .iter()
        .any(|l| l["message"].as_str().unwrap().contains("nobody-1f3a9c")));
    let one = get(&http, "/admin/api/logs?limit=1", Some(ADMIN))
        .await
        .json();
    assert_eq!(one["data"]["lines"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_endpoints_refuse_bad_callers_and_parameters() {
    let s = server().await;
    let http = s.http_addr();
    for (method, path) in [
        ("GET", "/admin/api/status"),
        ("GET", "/admin/api/logs"),
        ("POST", "/admin/api/backup"),
    ] {
        let none = request(&http, method, path, None, None).await;
        assert_eq!(none.status, 401, "{path} without a token");
        assert_eq!(none.json()["code"], 401);
        let wrong = request(&http, method, path, Some("not-the-admin-token-00"), None).await;
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
    }
    for q in [
        "level=loud",
        "level=WARN",
        "limit=0",
        "limit=2001",
        "limit=x",
    ] {
        let r = get(&http, &format!("/admin/api/logs?{q}"), Some(ADMIN)).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["code"], 400);
    }
    for body in [
        json!({"path": "../escape"}),
        json!({"path": 7}),
        json!({"other": 1}),
    ] {
        let r = request(&http, "POST", "/admin/api/backup", Some(ADMIN), Some(&body)).await;
        assert_eq!(r.status, 400, "{body}");
    }
    let live = s.dir.path().to_str().unwrap().to_owned();
    let body = json!({ "path": live });
    let r = request(&http, "POST", "/admin/api/backup", Some(ADMIN), Some(&body)).await;
    assert_eq!(r.status, 500, "never over the live files");
    assert!(s.dir.path().join("feige.db").exists());
}

#[tokio::test]
async fn backup_over_http() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    register(&addr, "dora").await;
    let r = request(&http, "POST", "/admin/api/backup", Some(ADMIN), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json()["data"].clone();
    let dir = std::path::PathBuf::from(d["path"].as_str().unwrap());
    assert!(dir.starts_with(s.dir.path().join("backups")), "{dir:?}");
    assert_eq!(d["databases"], json!(["feige-search.db", "feige.db"]));
    let on_disk: u64 = ["feige-search.db", "feige.db"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    assert_eq!(d["bytes"].as_u64().unwrap(), on_disk);
    let copy = rusqlite::Connection::open(dir.join("feige.db")).unwrap();
    let n: i64 = copy
        .query_row(
            "SELECT count(*) FROM users WHERE username = 'dora'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    let named = request(
        &http,
        "POST",
        "/admin/api/backup",
        Some(ADMIN),
        Some(&json!({"path": "named"})),
    )
    .await;
    assert_eq!(named.status, 200, "{}", named.body);
    assert!(s.dir.path().join("backups/named/feige.db").exists());
}

/// A connection that never reads is dropped once its output reaches `outbox_bytes`, and the
/// drop is counted.
#[tokio::test]
async fn a_slow_consumer_is_counted() {
    feige_server::logs::install(tracing::Level::INFO, 10_000, 8 << 20, false);
    let s = TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.max_frame_len = 64 * 1024;
        c.max_text_len = 16 * 1024;
        c.outbox_bytes = 256 * 1024;
    })
    .await;
    let (addr, http) = (s.addr(), s.http_addr());
    register(&addr, "sender").await;
    let to = register(&addr, "stalled").await;
    let (sender, _e) = login(&addr, "sender", "s").await;
    // A small receive buffer, and nothing read after the login.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut stalled = Raw::from_stream(sock.connect(addr.parse().unwrap()).await.unwrap());
    stalled.hello().await;
    let login = stalled
        .call(RequestKind::Login(pb::Login {
            username: "stalled".into(),
            password: PASSWORD.into(),
            device: "d".into(),
        }))
        .await;
    assert!(matches!(login, ResponseResult::Session(_)), "{login:?}");
    let before = scrape(&http).await;
    let text = "x".repeat(16 * 1024 - 16);
    // 6 MiB: past the outbox and whatever the kernel's socket buffers take.
    for _ in 0..400 {
        sender.send_text(to, &text).await.unwrap();
    }
    stalled.expect_closed().await;
    let after = scrape(&http).await;
    assert_eq!(
        delta(&before, &after, "feige_slow_consumer_disconnects_total"),
        1.0
    );
}
