//! Session state events (`logged_in` / `logged_out` and the `logged_in` field), the
//! configured backoff and `reconnect_now`, and `send_message`'s `client_msg_id`, against a
//! real server.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{creds, silent, wait_for, Server, C};
use crate::status::FeigeStatus;

/// The state events among `seen` and up to `want`.
fn states(c: &C, want: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let last = wait_for(c, &mut seen, |j| j["state"] == want);
    seen.push(last);
    seen.into_iter()
        .filter(|j| j.get("state").is_some())
        .collect()
}

#[test]
fn states_say_whether_the_session_is_logged_in() {
    let server = Server::start();
    let addr = server.addr();
    let c = C::connect(&addr);
    let connected = states(&c, "connected");
    assert_eq!(connected.last().unwrap()["logged_in"], false);
    let user = c.ok("register", creds("lena"))["user_id"].clone();
    // The state comes before the login's completion.
    let id = c.call("login", &creds("lena")).unwrap();
    let mut others = Vec::new();
    let done = c.response(id, &mut others);
    assert_eq!(done.status, 0);
    let state = others
        .iter()
        .find(|e| e.json["state"] == "logged_in")
        .expect("logged_in before the completion");
    assert_eq!(state.json["user_id"], user);
    assert_eq!(state.json["logged_in"], true);
    // The states after it (syncing, synced: they may overtake the completion) say so too.
    let mut later: Vec<Value> = others
        .iter()
        .map(|e| e.json.clone())
        .skip_while(|j| j["state"] != "logged_in")
        .collect();
    while let Ok(e) = c.wait(300) {
        later.push(e.json);
    }
    let later: Vec<&Value> = later.iter().filter(|j| j.get("state").is_some()).collect();
    assert!(later.iter().any(|s| s["state"] == "synced"), "{later:?}");
    assert!(later.iter().all(|s| s["logged_in"] == true), "{later:?}");
    let token = done.json["token"].clone();

    // The send's result carries the client_msg_id the SDK chose; ids grow.
    let peer = c.ok("register", creds("otto"))["user_id"].clone();
    let a = c.ok("send_message", json!({ "to_user": peer, "text": "one" }));
    let b = c.ok("send_message", json!({ "to_user": peer, "text": "two" }));
    let id_of = |v: &Value| v["client_msg_id"].as_str().unwrap().parse::<u64>().unwrap();
    assert!(id_of(&a) > 0 && id_of(&b) > id_of(&a), "{a} {b}");
    let given = c.ok(
        "send_message",
        json!({ "to_user": peer, "text": "three", "client_msg_id": "77" }),
    );
    assert_eq!(given["client_msg_id"], "77");

    // logout: logged_out with its reason; a resume logs in again.
    let mut others = Vec::new();
    let id = c.call("logout", &json!({})).unwrap();
    assert_eq!(c.response(id, &mut others).status, 0);
    let out = others
        .iter()
        .map(|e| e.json.clone())
        .find(|j| j["state"] == "logged_out")
        .expect("logged_out before the logout's completion");
    assert_eq!(out["reason"], "logout");
    assert_eq!(out["logged_in"], false);
    let (status, err) = c.run("resume", json!({ "token": token }));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32, "{err}");
    let mut others = Vec::new();
    let id = c.call("login", &creds("lena")).unwrap();
    let second = c.response(id, &mut others).json;
    assert!(others.iter().any(|e| e.json["state"] == "logged_in"));

    // Revoked from another device: a kicked push with INVALID_TOKEN, then logged_out.
    let other = C::connect(&addr);
    other.ok("login", creds("lena"));
    other.ok(
        "revoke_session",
        json!({ "session_id": second["session_id"] }),
    );
    let kicked = c.push_of("kicked");
    assert_eq!(kicked["code"], "INVALID_TOKEN");
    let out = wait_for(&c, &mut Vec::new(), |j| j["state"] == "logged_out");
    assert_eq!(
        (out["reason"].clone(), out["code"].clone()),
        (json!("kicked"), json!("INVALID_TOKEN"))
    );
}

#[test]
fn configured_backoff_and_reconnect_now() {
    // Nobody listens: every attempt fails at once, then waits the configured delay.
    let addr = silent().1;
    let c = C::new(&json!({
        "server": addr,
        "backoff_initial_ms": 20_000,
        "backoff_max_ms": 60_000,
    }));
    let first = wait_for(&c, &mut Vec::new(), |j| j["state"] == "disconnected");
    assert_eq!(first["retry_in_ms"], 20_000);
    // Without reconnect_now the next attempt would come in 20 s.
    let asked = Instant::now();
    let mut seen = Vec::new();
    let id = c.call("reconnect_now", &json!({})).unwrap();
    let done = c.response(id, &mut seen);
    assert_eq!(done.json, json!({}));
    // The next attempt may come before the completion.
    let mut seen: Vec<Value> = seen.into_iter().map(|e| e.json).collect();
    let again = match seen.iter().find(|j| j["state"] == "disconnected") {
        Some(j) => j.clone(),
        None => wait_for(&c, &mut seen, |j| j["state"] == "disconnected"),
    };
    assert!(seen.iter().any(|j| j["state"] == "connecting"), "{seen:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the wait was cut short"
    );
    assert_eq!(again["retry_in_ms"], 40_000, "the delay doubles");
}

#[test]
fn cancel_send_needs_an_outbox() {
    let addr = silent().1;
    let c = C::new(&json!({ "server": addr }));
    assert_eq!(
        c.call("cancel_send", &json!({ "client_msg_id": "1" })),
        Err(FeigeStatus::FEIGE_ERR_PARAMS as i32)
    );
}

#[test]
fn outbox_sends_complete_at_once_offline_and_not_after_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outbox");
    let addr = silent().1;
    let c = C::new(&json!({ "server": addr, "outbox_file": file }));
    // No server: the completion comes at once, from the outbox.
    let r = c.ok("send_message", json!({ "to_user": "2", "text": "x" }));
    assert_eq!(r["queued"], true);
    assert!(r["client_msg_id"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(
        c.call("send_message", &json!({ "text": "no recipient" })),
        Err(FeigeStatus::FEIGE_ERR_PARAMS as i32)
    );
    assert_eq!(c.shutdown(0), 0);
    assert_eq!(
        c.call("send_message", &json!({ "to_user": "2", "text": "y" })),
        Err(FeigeStatus::FEIGE_ERR_SHUT_DOWN as i32)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"text\":\"x\""));
}
