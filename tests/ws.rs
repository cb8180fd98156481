//! The WebSocket gateway: JSON commands of the shared method table over `/ws`, with the TCP
//! connection's guarantees (login, ack after commit, idempotent resend, sync, limits).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_tests::sdk::{self, PASSWORD};
use feige_tests::ws::{Ws, WsGot, TOO_BIG};
use feige_tests::TestServer;
use futures_util::SinkExt;
use serde_json::{json, Value};

fn code_msg(r: &Value) -> &str {
    r["response"]["codeMsg"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn login_by_password_and_by_token() {
    let s = TestServer::start().await;
    let alice = sdk::register(&s.addr(), "alice").await;
    let (mut ws, session) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    assert_eq!(session["user_id"], alice.to_string());
    assert_eq!(session["device"], "web");
    assert_eq!(session["heartbeat_ms"], 30_000);
    let token = session["token"].as_str().unwrap().to_owned();
    let me = ws.call("whoami", json!({})).await;
    assert_eq!(me["response"]["code"], 200);
    assert_eq!(me["response"]["codeMsg"], "Ok");
    assert_eq!(me["response"]["data"]["username"], "alice");
    assert_eq!(s.handle.ws_connections(), 1);

    // The same session on another WebSocket, by its token (and `/acc`, the other path).
    let mut again = Ws::connect_path(&s.http_addr(), "/acc").await;
    let r = again.call("login", json!({ "token": token })).await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    assert_eq!(r["response"]["data"]["user_id"], alice.to_string());

    // Wrong password, unknown token, malformed token.
    let mut other = Ws::connect(&s.http_addr()).await;
    let r = other
        .call(
            "login",
            json!({ "username": "alice", "password": "nope-nope" }),
        )
        .await;
    assert_eq!(r["response"]["code"], 401);
    assert!(code_msg(&r).starts_with("BAD_CREDENTIALS: "), "{r}");
    let r = other
        .call("login", json!({ "token": "00".repeat(32) }))
        .await;
    assert_eq!(r["response"]["code"], 401);
    assert!(code_msg(&r).starts_with("INVALID_TOKEN: "), "{r}");
    let r = other.call("login", json!({ "token": "xyz" })).await;
    assert_eq!(r["response"]["code"], 400);
    assert!(code_msg(&r).starts_with("INVALID_ARGUMENT: "), "{r}");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn requests_before_login_are_refused_and_the_login_deadline_applies() {
    let s = TestServer::start_with(|c| c.login_timeout_ms = 500).await;
    let mut ws = Ws::connect(&s.http_addr()).await;
    let r = ws.call("whoami", json!({})).await;
    assert_eq!(r["response"]["code"], 401);
    assert!(code_msg(&r).starts_with("NOT_LOGGED_IN: "), "{r}");
    // No login within the deadline: the kicked push, then the close.
    let kicked = ws.push().await;
    assert_eq!(kicked["type"], "kicked");
    assert_eq!(kicked["code"], "LOGIN_TIMEOUT");
    let (code, reason) = ws.closed().await.expect("a close frame");
    assert_eq!((code, reason.as_str()), (1008, "LOGIN_TIMEOUT"));
    s.handle.shutdown().await;
}

#[tokio::test]
async fn messages_flow_between_websocket_and_tcp_acked_after_commit() {
    let s = TestServer::start_open().await;
    let alice = sdk::register(&s.addr(), "alice").await;
    let bob = sdk::register(&s.addr(), "bob").await;
    let (mut ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    let (tcp, mut bob_events) = sdk::login(&s.addr(), "bob", "desktop").await;

    // WebSocket → TCP: the answer comes once stored, with the stored position.
    let r = ws
        .call(
            "send_message",
            json!({ "to_user": bob.to_string(), "text": "hi from the web", "client_msg_id": "77" }),
        )
        .await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    let sent = r["response"]["data"].clone();
    assert_eq!(sent["seq"], "1");
    assert_eq!(sent["duplicate"], false);
    let got = sdk::next_message(&mut bob_events).await;
    assert_eq!(got.text, "hi from the web");
    assert_eq!(got.from_user, alice);
    assert_eq!(got.message_id.to_string(), sent["message_id"]);
    let history = tcp
        .history(feige_protocol::pb::History {
            peer_user: alice,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "committed before the answer");

    // A resend with the same client_msg_id answers the same message, stored once.
    let r = ws
        .call(
            "send_message",
            json!({ "to_user": bob.to_string(), "text": "hi from the web", "client_msg_id": "77" }),
        )
        .await;
    assert_eq!(r["response"]["data"]["message_id"], sent["message_id"]);
    assert_eq!(r["response"]["data"]["duplicate"], true);

    // TCP → WebSocket: a push.
    tcp.send_text(alice, "hello browser").await.unwrap();
    // Bob's client acked the first message: a read receipt may come first.
    let mut push = ws.push().await;
    while push["type"] == "read_receipt" {
        push = ws.push().await;
    }
    assert_eq!(push["type"], "message");
    assert_eq!(push["text"], "hello browser");
    assert_eq!(push["from_user"], bob.to_string());
    assert_eq!(push["seq"], "2");
    tcp.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn sync_after_reconnect_returns_exactly_what_was_missed() {
    let s = TestServer::start_open().await;
    let alice = sdk::register(&s.addr(), "alice").await;
    sdk::register(&s.addr(), "bob").await;
    let (bob, _) = sdk::login(&s.addr(), "bob", "desktop").await;
    let (mut ws, session) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    let token = session["token"].as_str().unwrap().to_owned();
    for text in ["one", "two"] {
        bob.send_text(alice, text).await.unwrap();
    }
    let mut last = Value::Null;
    for text in ["one", "two"] {
        last = ws.push().await;
        assert_eq!(last["text"], text);
    }
    let ack = json!({ "positions": [{ "conversation_id": last["conversation_id"], "seq": last["seq"] }] });
    assert_eq!(ws.call("ack", ack).await["response"]["code"], 200);
    drop(ws);

    for text in ["three", "four", "five"] {
        bob.send_text(alice, text).await.unwrap();
    }
    let mut ws = Ws::connect(&s.http_addr()).await;
    let r = ws.call("login", json!({ "token": token })).await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    let r = ws.call("sync", json!({})).await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    let texts: Vec<&str> = r["response"]["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["three", "four", "five"]);
    assert_eq!(r["response"]["data"]["has_more"], false);
    bob.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn bad_frames_are_refused_without_closing() {
    let s = TestServer::start().await;
    sdk::register(&s.addr(), "alice").await;
    let (mut ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    ws.send_text("{not json").await;
    let r = match ws.read().await {
        WsGot::Json(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(r["response"]["code"], 400);
    assert!(code_msg(&r).starts_with("MALFORMED: "), "{r}");
    let r = ws.call("no_such_cmd", json!({})).await;
    assert_eq!(r["cmd"], "no_such_cmd");
    assert!(code_msg(&r).starts_with("UNKNOWN_REQUEST: "), "{r}");
    let r = ws
        .call("send_message", json!({ "text": "to nobody" }))
        .await;
    assert_eq!(r["response"]["code"], 400);
    assert!(code_msg(&r).starts_with("INVALID_ARGUMENT: "), "{r}");
    let r = ws.call("get_user", json!({ "user": "424242" })).await;
    assert_eq!(r["response"]["code"], 404);
    assert!(code_msg(&r).starts_with("NOT_FOUND: "), "{r}");
    // Still served.
    let r = ws.call("heartbeat", json!({})).await;
    assert_eq!(r["response"]["code"], 200);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_with_message_too_big() {
    let s = TestServer::start_with(|c| {
        c.max_frame_len = 64 * 1024;
        c.max_text_len = 16 * 1024;
        c.outbox_bytes = 256 * 1024;
    })
    .await;
    sdk::register(&s.addr(), "alice").await;
    let (mut ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    let text = "x".repeat(64 * 1024);
    ws.send("send_message", json!({ "to_user": "1", "text": text }))
        .await;
    let (code, reason) = ws.closed().await.expect("a close frame");
    assert_eq!(code, TOO_BIG);
    assert!(reason.starts_with("FRAME_TOO_LARGE"), "{reason}");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn a_websocket_client_that_never_reads_is_dropped_with_bounded_output() {
    let outbox = 256 * 1024;
    let s = TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.max_frame_len = 64 * 1024;
        c.max_text_len = 60_000;
        c.outbox_bytes = outbox;
    })
    .await;
    let alice = sdk::register(&s.addr(), "alice").await;
    sdk::register(&s.addr(), "bob").await;
    let (ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    let (bob, _) = sdk::login(&s.addr(), "bob", "desktop").await;
    let text = "y".repeat(60_000);
    let mut sent = 0;
    // Socket buffers take some megabytes first; then the outbox fills and the handler drops
    // the connection as a slow consumer.
    while s.handle.ws_connections() > 0 {
        assert!(
            sent < 2000,
            "the WebSocket was not dropped after {sent} messages"
        );
        bob.send_text(alice, &text).await.unwrap();
        sent += 1;
        assert!(
            s.handle.output_bytes() <= outbox,
            "output {} over the bound",
            s.handle.output_bytes()
        );
        if sent % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ws);
    bob.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn every_method_of_the_table_is_a_command() {
    let s = TestServer::start().await;
    sdk::register(&s.addr(), "alice").await;
    let (mut ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    for m in feige_protocol::json::methods() {
        // Empty params: most are refused as invalid, none as unknown; a method the SDK
        // serves itself (a transfer of local files, `cancel`) is refused as not available.
        let r = ws.call(m.name, json!({})).await;
        if let feige_protocol::json::Serve::Local(_) = m.serve {
            assert_eq!(r["response"]["code"], 501, "{}: {r}", m.name);
            assert!(
                code_msg(&r).contains("is not available over WebSocket"),
                "{}: {r}",
                m.name
            );
            continue;
        }
        assert!(
            !code_msg(&r).starts_with("UNKNOWN_REQUEST"),
            "{}: {r}",
            m.name
        );
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn the_http_listener_answers_json_and_counts_websockets_apart() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start().await;
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: feige\r\nConnection: close\r\n\r\n").into_bytes()
    };
    let mut c = tokio::net::TcpStream::connect(s.http_addr()).await.unwrap();
    c.write_all(&get("/no/such/page")).await.unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        v,
        json!({ "code": 404, "msg": "no such endpoint", "data": {} })
    );
    // /ws without the upgrade headers is refused, not upgraded.
    let mut c = tokio::net::TcpStream::connect(s.http_addr()).await.unwrap();
    c.write_all(&get("/ws")).await.unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert_eq!(s.handle.ws_connections(), 0);
    // A TCP client is not counted as a WebSocket; a WebSocket is, until it closes.
    sdk::register(&s.addr(), "alice").await;
    let (tcp, _) = sdk::login(&s.addr(), "alice", "desktop").await;
    let (ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    assert_eq!(s.handle.ws_connections(), 1);
    drop(ws);
    for _ in 0..100 {
        if s.handle.ws_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.handle.ws_connections(), 0);
    tcp.close().await;
    s.handle.shutdown().await;
}

/// Requests the client sent just before its close are served, as a TCP connection's requests
/// before its FIN are: a burst of sends and the close in one go, and the peer gets them all.
#[tokio::test]
async fn requests_sent_right_before_the_close_are_served() {
    let s = TestServer::start_open().await;
    sdk::register(&s.addr(), "alice").await;
    let bob = sdk::register(&s.addr(), "bob").await;
    let (mut ws, _) = Ws::login(&s.http_addr(), "alice", PASSWORD).await;
    let (tcp, mut bob_events) = sdk::login(&s.addr(), "bob", "desktop").await;
    for i in 0..20 {
        let req = json!({ "seq": i.to_string(), "cmd": "send_message",
            "data": { "to_user": bob.to_string(), "text": format!("last words {i}") } });
        ws.ws
            .feed(tokio_tungstenite::tungstenite::Message::text(
                req.to_string(),
            ))
            .await
            .unwrap();
    }
    ws.ws.close(None).await.unwrap();
    for i in 0..20 {
        let got = sdk::next_message(&mut bob_events).await;
        assert_eq!(got.text, format!("last words {i}"));
    }
    tcp.close().await;
    s.handle.shutdown().await;
}
