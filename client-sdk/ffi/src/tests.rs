//! The C ABI driven from Rust against a real server: every method, the queue's wakeups, and
//! the exactly-one-completion rule. (The C example in `tests/c_example.rs` covers the same
//! ground from C, under valgrind.)
#![cfg(unix)]

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use feige_tests::{DmPolicy, TestServer};
use serde_json::{json, Value};

use super::*;

mod codes;
mod files;
mod groups;
mod receipts;
mod rooms_red_packets;
mod session;
mod twofactor;

/// A server on its own runtime, so the test thread can block in `feige_wait_event`.
struct Server {
    rt: tokio::runtime::Runtime,
    server: Option<TestServer>,
}

impl Server {
    /// A server where strangers may message each other (`dm_policy = "anyone"`).
    fn start() -> Server {
        Self::start_with(DmPolicy::Anyone)
    }

    /// A server with the given `dm_policy`.
    fn start_with(dm_policy: DmPolicy) -> Server {
        Self::start_small(dm_policy, false)
    }

    /// A server with the given `dm_policy`; if `small`, with 64 KiB frames (so reply pages of
    /// at most 63 KiB).
    fn start_small(dm_policy: DmPolicy, small: bool) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(TestServer::start_with(|c| {
            c.dm_policy = dm_policy;
            if small {
                c.max_frame_len = 64 * 1024;
                c.outbox_bytes = 256 * 1024;
            }
        }));
        Server {
            rt,
            server: Some(server),
        }
    }

    fn addr(&self) -> String {
        self.server.as_ref().unwrap().addr()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        drop(self.server.take());
    }
}

/// A completion or other event, decoded.
#[derive(Debug)]
struct Ev {
    kind: i32,
    request_id: u64,
    status: i32,
    json: Value,
}

/// A `FeigeClient *` owned by a test.
struct C(*mut FeigeClient);

impl C {
    fn new(config: &Value) -> C {
        let config = CString::new(config.to_string()).unwrap();
        let mut out = std::ptr::null_mut();
        // SAFETY: a valid C string and a writable out-pointer.
        let rc = unsafe { feige_client_new(config.as_ptr(), &mut out) };
        assert_eq!(rc, 0);
        C(out)
    }

    fn connect(addr: &str) -> C {
        C::new(&json!({ "server": addr, "device": "test" }))
    }

    fn call(&self, method: &str, params: &Value) -> Result<u64, i32> {
        let method = CString::new(method).unwrap();
        let params = CString::new(params.to_string()).unwrap();
        let mut id = 0;
        // SAFETY: a live client, valid C strings, a writable out-pointer.
        let rc = unsafe { feige_call(self.0, method.as_ptr(), params.as_ptr(), &mut id) };
        if rc == 0 {
            Ok(id)
        } else {
            Err(rc)
        }
    }

    /// The next event within `ms`, or the status that said why not.
    fn wait(&self, ms: i32) -> Result<Ev, i32> {
        let mut ev = std::ptr::null_mut();
        // SAFETY: a live client and a writable out-pointer.
        let rc = unsafe { feige_wait_event(self.0, ms, &mut ev) };
        if rc != 0 {
            return Err(rc);
        }
        Ok(take(ev))
    }

    fn poll(&self) -> Result<Ev, i32> {
        let mut ev = std::ptr::null_mut();
        // SAFETY: a live client and a writable out-pointer.
        let rc = unsafe { feige_poll_event(self.0, &mut ev) };
        if rc != 0 {
            return Err(rc);
        }
        Ok(take(ev))
    }

    /// Waits for request `id`'s completion, keeping the other events.
    fn response(&self, id: u64, others: &mut Vec<Ev>) -> Ev {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.wait(100) {
                Ok(e) if e.kind == 1 && e.request_id == id => return e,
                Ok(e) => others.push(e),
                Err(1) => {}
                Err(rc) => panic!("wait_event: {rc}"),
            }
        }
        panic!("no completion for request {id}");
    }

    /// Runs a call; returns its completion's status and JSON.
    fn run(&self, method: &str, params: Value) -> (i32, Value) {
        let id = self.call(method, &params).unwrap();
        let e = self.response(id, &mut Vec::new());
        (e.status, e.json)
    }

    /// Runs a call that must succeed.
    fn ok(&self, method: &str, params: Value) -> Value {
        let (status, json) = self.run(method, params);
        assert_eq!(status, 0, "{method}: {json}");
        json
    }

    fn shutdown(&self, ms: i32) -> i32 {
        // SAFETY: a live client.
        unsafe { feige_client_shutdown(self.0, ms) }
    }

    /// Every event until the queue reports shut down (after `shutdown`).
    fn drain_closed(&self) -> Vec<Ev> {
        let mut all = Vec::new();
        loop {
            match self.poll() {
                Ok(e) => all.push(e),
                Err(rc) => {
                    assert_eq!(rc, FeigeStatus::FEIGE_ERR_SHUT_DOWN as i32);
                    return all;
                }
            }
        }
    }

    /// A duplicate of the wakeup descriptor, for peeking at its readability. (Wrapped as a
    /// `TcpStream` only for its stable `peek`, a `recv(MSG_PEEK)` that works on any socket.)
    fn wakeup_socket(&self) -> TcpStream {
        use std::os::fd::{BorrowedFd, OwnedFd};
        let mut fd = -1;
        // SAFETY: a live client and a writable out-pointer.
        assert_eq!(unsafe { feige_client_wakeup_fd(self.0, &mut fd) }, 0);
        // SAFETY: the descriptor stays open while the client lives; we only duplicate it.
        let owned: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .unwrap();
        TcpStream::from(owned)
    }
}

impl Drop for C {
    fn drop(&mut self) {
        // SAFETY: the handle came from feige_client_new and is freed once.
        unsafe { feige_client_free(self.0) };
    }
}

/// Decodes and frees an event.
fn take(ev: *mut FeigeEvent) -> Ev {
    let mut ptr = std::ptr::null();
    let mut len = 0;
    // SAFETY: `ev` is a live event; the out-pointers are writable; the view is copied out
    // before the event is freed.
    unsafe {
        assert_eq!(feige_event_json(ev, &mut ptr, &mut len), 0);
        let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
        assert_eq!(*ptr.add(len), 0, "NUL-terminated");
        let e = Ev {
            kind: feige_event_kind(ev),
            request_id: feige_event_request_id(ev),
            status: feige_event_status(ev),
            json: serde_json::from_slice(bytes).unwrap(),
        };
        feige_event_free(ev);
        e
    }
}

/// Whether the wakeup descriptor is readable.
fn readable(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.peek(&mut b) {
        Ok(n) => n > 0,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("peek: {e}"),
    }
}

/// `feige_last_error()` as a String.
fn last_error() -> String {
    // SAFETY: feige_last_error returns a NUL-terminated string valid until the next call.
    unsafe { CStr::from_ptr(feige_last_error()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn creds(name: &str) -> Value {
    json!({ "username": name, "password": "password123", "nickname": name })
}

#[test]
fn every_method_end_to_end() {
    let server = Server::start();
    let addr = server.addr();
    let alice = C::connect(&addr);
    let bob = C::connect(&addr);

    let a_id = alice.ok("register", creds("alice"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_id = bob.ok("register", creds("bob"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, err) = bob.run("register", creds("bob"));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32);
    assert_eq!(err["error"]["code"], "USERNAME_TAKEN");

    let session = alice.ok("login", creds("alice"));
    assert_eq!(session["user_id"], a_id.as_str());
    assert_eq!(session["profile"]["username"], "alice");
    let token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(alice.ok("whoami", json!({}))["nickname"], "alice");
    alice.ok("ping", json!({}));

    // Sent before bob logs in: bob gets it from the automatic sync, as a push event.
    let sent = alice.ok(
        "send_message",
        json!({ "to_user": b_id, "text": "hello bob", "client_msg_id": "777" }),
    );
    assert_eq!(sent["seq"], "1");
    assert_eq!(sent["duplicate"], false);
    let conv = sent["conversation_id"].as_str().unwrap().to_owned();
    // A resend with the same client_msg_id is recognised, not stored twice.
    let again = alice.ok(
        "send_message",
        json!({ "to_user": b_id.parse::<u64>().unwrap(), "text": "hello bob", "client_msg_id": 777 }),
    );
    assert_eq!(again["message_id"], sent["message_id"]);
    assert_eq!(again["duplicate"], true);
    alice.ok(
        "send_message",
        json!({ "conversation_id": conv, "text": "second" }),
    );

    let mut events = Vec::new();
    let id = bob.call("login", &creds("bob")).unwrap();
    assert_eq!(bob.response(id, &mut events).status, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && events
            .iter()
            .filter(|e| e.json["type"] == "message")
            .count()
            < 2
    {
        if let Ok(e) = bob.wait(100) {
            events.push(e);
        }
    }
    let pushed: Vec<&Ev> = events.iter().filter(|e| e.kind == 2).collect();
    assert_eq!(pushed.len(), 2, "{events:?}");
    assert_eq!(pushed[0].json["text"], "hello bob");
    assert_eq!(pushed[0].json["from_user"], a_id.as_str());
    assert_eq!(pushed[0].json["seq"], "1");
    assert_eq!(pushed[1].json["text"], "second");
    let states: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == 3)
        .filter_map(|e| e.json["state"].as_str())
        .collect();
    assert!(states.contains(&"syncing"), "{states:?}");

    // Nothing is missed any more; acking what was delivered is accepted.
    assert_eq!(bob.ok("sync", json!({}))["messages"], json!([]));
    bob.ok(
        "ack",
        json!({ "positions": [{ "conversation_id": conv, "seq": "2" }] }),
    );

    let page = bob.ok("history", json!({ "peer_user": a_id, "limit": 10 }));
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["second", "hello bob"], "newest first");
    let older = bob.ok(
        "history",
        json!({ "conversation_id": conv, "before_seq": "2" }),
    );
    assert_eq!(older["messages"].as_array().unwrap().len(), 1);

    // The search index follows the commits by up to ~100 ms: ask until it has the message.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let found = loop {
        let found = alice.ok("search", json!({ "query": "hello" }));
        if !found["messages"][0].is_null() || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(found["messages"][0]["text"], "hello bob");

    // The token resumes the session on another connection; after logout it is refused.
    drop(alice);
    let alice2 = C::connect(&addr);
    let resumed = alice2.ok("resume", json!({ "token": token }));
    assert_eq!(resumed["user_id"], a_id.as_str());
    alice2.ok("logout", json!({}));
    let (status, err) = alice2.run("whoami", json!({}));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32);
    assert_eq!(err["error"]["code"], "NOT_LOGGED_IN");
    let alice3 = C::connect(&addr);
    let (status, err) = alice3.run("resume", json!({ "token": token }));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32, "{err}");
    assert_eq!(err["error"]["code"], "INVALID_TOKEN");
}

/// Waits up to 20 s for an event matching `want`, keeping the others.
fn wait_for(c: &C, seen: &mut Vec<Value>, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(e) = c.wait(100) {
            if want(&e.json) {
                return e.json;
            }
            seen.push(e.json);
        }
    }
    panic!("no such event; saw {seen:?}");
}

#[test]
fn server_restart_kicks_then_resumes_the_session() {
    let mut server = Server::start();
    let addr = server.addr();
    let c = C::connect(&addr);
    c.ok("register", creds("dora"));
    let session = c.ok("login", creds("dora"));
    let mut seen = Vec::new();
    wait_for(&c, &mut seen, |j| j["state"] == "synced");

    // A graceful server shutdown kicks the client, which then retries with backoff.
    let TestServer { handle, dir } = server.server.take().unwrap();
    server.rt.block_on(handle.shutdown());
    let kicked = wait_for(&c, &mut seen, |j| j["type"] == "kicked");
    assert_eq!(kicked["code"], "SHUTTING_DOWN");
    assert!(kicked["reason"].is_string());
    let down = wait_for(&c, &mut seen, |j| j["state"] == "disconnected");
    assert!(down["retry_in_ms"].as_u64().unwrap() > 0);

    // The same server comes back on the same address and data: the session is resumed.
    let listen: std::net::SocketAddr = addr.parse().unwrap();
    let data_dir = dir.path().to_owned();
    server.server = Some(server.rt.block_on(TestServer::start_with(|config| {
        config.listen = listen;
        config.data_dir = data_dir;
    })));
    wait_for(&c, &mut seen, |j| j["state"] == "connected");
    wait_for(&c, &mut seen, |j| j["state"] == "synced");
    assert_eq!(c.ok("whoami", json!({}))["user_id"], session["user_id"]);
    drop(c);
    drop(server);
    drop(dir);
}

impl C {
    /// Waits for a push of type `kind` (skipping other events).
    fn push_of(&self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.wait(100) {
                Ok(e) if e.kind == 2 && e.json["type"] == kind => return e.json,
                Ok(_) | Err(1) => {}
                Err(rc) => panic!("wait_event: {rc}"),
            }
        }
        panic!("no {kind} push");
    }

    /// Runs a call that must fail with the server error `code`.
    fn fails(&self, method: &str, params: Value, code: &str) {
        let (status, json) = self.run(method, params);
        assert_eq!(
            status,
            FeigeStatus::FEIGE_ERR_SERVER as i32,
            "{method}: {json}"
        );
        assert_eq!(json["error"]["code"], code, "{method}");
    }
}

#[test]
fn social_methods_end_to_end() {
    let server = Server::start_with(DmPolicy::Friends);
    let addr = server.addr();
    let alice = C::connect(&addr);
    let bob = C::connect(&addr);
    let bob2 = C::new(&json!({ "server": addr, "device": "second" }));
    let carol = C::connect(&addr);
    let a_id = alice.ok("register", creds("alice"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_id = bob.ok("register", creds("bob"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    carol.ok("register", creds("carol"));
    alice.ok("login", creds("alice"));
    bob.ok("login", creds("bob"));
    bob2.ok("login", creds("bob"));
    carol.ok("login", creds("carol"));

    // Profiles: one's own has everything, others see the public part.
    let me = alice.ok(
        "update_profile",
        json!({ "nickname": "爱丽丝", "signature": "hi", "email": "a@example.com" }),
    );
    assert_eq!(me["nickname"], "爱丽丝");
    assert_eq!(me["email"], "a@example.com");
    assert_eq!(alice.ok("whoami", json!({}))["signature"], "hi");
    alice.fails(
        "update_profile",
        json!({ "email": "nope" }),
        "INVALID_ARGUMENT",
    );
    let seen = bob.ok("get_user", json!({ "user": a_id }));
    assert_eq!(seen["nickname"], "爱丽丝");
    assert!(seen.get("email").is_none(), "{seen}");
    assert_eq!(
        bob.ok("get_user", json!({ "username": "alice" }))["user_id"],
        a_id.as_str()
    );
    bob.fails("get_user", json!({ "user": "999999" }), "NOT_FOUND");
    let found = bob.ok("search_users", json!({ "query": "爱" }));
    assert_eq!(found["users"][0]["username"], "alice");
    assert_eq!(found["has_more"], false);

    // Friends only: a stranger's message is refused; presence is hidden.
    alice.fails(
        "send_message",
        json!({ "to_user": b_id, "text": "hi" }),
        "NOT_FRIENDS",
    );
    alice.fails("presence", json!({ "user": b_id }), "FORBIDDEN");
    let sent = alice.ok(
        "friend_request",
        json!({ "to_user": b_id, "message": "hi bob" }),
    );
    assert_eq!(sent["became_friends"], false);
    let request_id = sent["request_id"].as_str().unwrap().to_owned();
    alice.fails(
        "friend_request",
        json!({ "to_user": b_id }),
        "REQUEST_PENDING",
    );
    let pushed = bob.push_of("friend_request");
    assert_eq!(pushed["request_id"], request_id.as_str());
    assert_eq!(pushed["from"]["user_id"], a_id.as_str());
    assert_eq!(pushed["message"], "hi bob");
    let pending = bob.ok("friend_requests", json!({}));
    assert_eq!(pending["incoming"][0]["request_id"], request_id.as_str());
    assert_eq!(pending["outgoing"], json!([]));
    let answer = bob.ok(
        "friend_respond",
        json!({ "request_id": request_id, "accept": true }),
    );
    assert_eq!(answer["accepted"], true);
    assert_eq!(answer["friend"]["user"]["user_id"], a_id.as_str());
    let told = alice.push_of("friend_response");
    assert_eq!(told["accepted"], true);
    assert_eq!(told["friend"]["online"], true);
    let added = alice.push_of("friend_added");
    assert_eq!(added["user"]["user_id"], b_id.as_str());
    // bob's other device learns of the answer, then of the friend.
    let answered = bob2.push_of("friend_request_answered");
    assert_eq!(answered["request_id"], request_id.as_str());
    assert_eq!(answered["accepted"], true);
    assert_eq!(answered["user"]["user_id"], a_id.as_str());
    assert_eq!(
        bob2.push_of("friend_added")["user"]["user_id"],
        a_id.as_str()
    );
    // A remark set on one device reaches the other.
    bob.ok("set_remark", json!({ "user": a_id, "remark": "Ali" }));
    let updated = bob2.push_of("friend_updated");
    assert_eq!(updated["remark"], "Ali");
    assert_eq!(updated["user"]["user_id"], a_id.as_str());
    // A profile change reaches friends (public fields only).
    alice.ok("update_profile", json!({ "signature": "on holiday" }));
    for device in [&bob, &bob2] {
        let u = device.push_of("user_updated");
        assert_eq!(u["user_id"], a_id.as_str());
        assert_eq!(u["signature"], "on holiday");
        assert!(u.get("email").is_none() && u.get("phone").is_none(), "{u}");
    }

    let list = alice.ok("friends", json!({}));
    assert_eq!(list["friends"][0]["user"]["username"], "bob");
    assert_eq!(list["friends"][0]["online"], true);
    let f = alice.ok("set_remark", json!({ "user": b_id, "remark": "Bobby" }));
    assert_eq!(f["remark"], "Bobby");
    assert_eq!(
        alice.ok("presence", json!({ "user": b_id })),
        json!({ "user_id": b_id, "online": true })
    );

    // Conversations, unread, and mark_read synced to the other device.
    for text in ["one", "two", "three"] {
        alice.ok("send_message", json!({ "to_user": b_id, "text": text }));
    }
    let convs = bob.ok("conversations", json!({}));
    assert_eq!(convs["has_more"], false);
    let c = &convs["conversations"][0];
    assert_eq!(c["peer"]["user_id"], a_id.as_str());
    assert_eq!(c["unread"], 3);
    assert_eq!(c["last_message"]["text"], "three");
    let conv = c["conversation_id"].as_str().unwrap().to_owned();
    let pos = bob.ok("mark_read", json!({ "conversation_id": conv, "seq": "2" }));
    assert_eq!(
        pos,
        json!({ "conversation_id": conv, "seq": "2", "unread": 1 })
    );
    let synced = bob2.push_of("read_position");
    assert_eq!(synced["seq"], "2");
    assert_eq!(synced["unread"], 1);
    assert_eq!(
        bob.ok("mark_read", json!({ "conversation_id": conv }))["unread"],
        0
    );
    carol.fails("mark_read", json!({ "conversation_id": conv }), "FORBIDDEN");
    // Paged: one page of one, then nothing after its cursor.
    let page = bob.ok("conversations", json!({ "limit": 1 }));
    assert_eq!(page["conversations"][0]["conversation_id"], conv.as_str());
    assert_eq!(page["has_more"], false);
    let last_active = page["conversations"][0]["last_active"].clone();
    let rest = bob.ok(
        "conversations",
        json!({ "limit": 1, "before_active": last_active, "before_id": conv }),
    );
    assert_eq!(rest, json!({ "conversations": [], "has_more": false }));

    // Presence pushes: bob's last device going away.
    bob2.shutdown(1000);
    drop(bob2);
    assert_eq!(bob.shutdown(1000), 0);
    drop(bob);
    let went = alice.push_of("presence");
    assert_eq!(
        went,
        json!({ "type": "presence", "user_id": b_id, "online": false })
    );
    let bob = C::connect(&addr);
    bob.ok("login", creds("bob"));
    assert_eq!(alice.push_of("presence")["online"], true);

    // Delete, block, unblock.
    alice.ok("friend_delete", json!({ "user": b_id }));
    assert_eq!(
        bob.push_of("friend_removed"),
        json!({ "type": "friend_removed", "user_id": a_id })
    );
    alice.fails("friend_delete", json!({ "user": b_id }), "NOT_FRIENDS");
    bob.ok("block", json!({ "user": a_id }));
    assert_eq!(
        bob.ok("blocked", json!({}))["users"][0]["user_id"],
        a_id.as_str()
    );
    alice.fails("friend_request", json!({ "to_user": b_id }), "BLOCKED");
    alice.fails(
        "send_message",
        json!({ "to_user": b_id, "text": "?" }),
        "BLOCKED",
    );
    bob.ok("unblock", json!({ "user": a_id }));
    bob.fails("unblock", json!({ "user": a_id }), "NOT_FOUND");
    assert_eq!(bob.ok("blocked", json!({}))["users"], json!([]));

    // Password change revokes the other sessions.
    alice.fails(
        "change_password",
        json!({ "old_password": "wrong-password", "new_password": "new password 1" }),
        "BAD_CREDENTIALS",
    );
    let changed = alice.ok(
        "change_password",
        json!({ "old_password": "password123", "new_password": "new password 1" }),
    );
    assert_eq!(changed["sessions_revoked"], 0);

    // Params are checked before anything is sent.
    for (method, params) in [
        ("friend_respond", json!({ "request_id": "1" })),
        ("get_user", json!({ "user": "1", "username": "x" })),
        ("presence", json!({})),
        ("friend_request", json!({ "message": "no target" })),
        ("mark_read", json!({ "conversation_id": "x" })),
        ("conversations", json!({ "before_id": "1" })),
        ("conversations", json!({ "limit": -1 })),
    ] {
        assert_eq!(
            alice.call(method, &params),
            Err(FeigeStatus::FEIGE_ERR_PARAMS as i32),
            "{method}"
        );
    }
}

/// `history` and `search` say `has_more` on a page cut by the server's byte budget (63 KiB
/// here) well before `limit`; paging on with the last message's cursor yields every message
/// once, newest first, and the last page says there is no more.
#[test]
fn history_and_search_pages_cut_by_the_byte_budget_say_has_more() {
    let server = Server::start_small(DmPolicy::Anyone, true);
    let c = C::connect(&server.addr());
    c.ok("register", creds("kim"));
    let peer = c.ok("register", creds("lou"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok("login", creds("kim"));
    // 30 messages of about 10 KB: 300 KB, about five pages.
    for i in 0..30 {
        let text = format!("needle {i:02} {}", "m".repeat(10_000));
        c.ok("send_message", json!({ "to_user": peer, "text": text }));
    }

    let mut seqs: Vec<u64> = Vec::new();
    let mut pages = 0;
    loop {
        let mut params = json!({ "peer_user": peer, "limit": 200 });
        if let Some(seq) = seqs.last() {
            params["before_seq"] = json!(seq.to_string());
        }
        let page = c.ok("history", params);
        pages += 1;
        let list = page["messages"].as_array().unwrap();
        assert!(!list.is_empty(), "{page}");
        seqs.extend(list.iter().map(|m| num(m, "seq")));
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        assert!(pages < 100, "history pages make no progress");
    }
    assert!(pages >= 5, "only {pages} history pages");
    assert_eq!(seqs, (1..=30).rev().collect::<Vec<u64>>());

    // The search index follows the store shortly after the commit: wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.ok("search", json!({ "query": "needle 29" }))["messages"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the index never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut texts = Vec::new();
    let mut pages = 0;
    let mut before_id: Option<String> = None;
    loop {
        let mut params = json!({ "query": "needle", "limit": 100 });
        if let Some(id) = &before_id {
            params["before_id"] = json!(id);
        }
        let page = c.ok("search", params);
        pages += 1;
        let list = page["messages"].as_array().unwrap();
        let last = list.last().unwrap();
        before_id = Some(last["message_id"].as_str().unwrap().to_owned());
        texts.extend(
            list.iter()
                .map(|m| m["text"].as_str().unwrap()[7..9].to_owned()),
        );
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        assert!(pages < 100, "search pages make no progress");
    }
    assert!(pages >= 5, "only {pages} search pages");
    let want: Vec<String> = (0..30).rev().map(|i| format!("{i:02}")).collect();
    assert_eq!(texts, want);
}

#[test]
fn refused_calls_and_params() {
    let server = Server::start();
    let c = C::connect(&server.addr());
    let refused = |method: &str, params: Value| c.call(method, &params).unwrap_err();
    use FeigeStatus::*;
    assert_eq!(refused("nope", json!({})), FEIGE_ERR_UNKNOWN_METHOD as i32);
    assert_eq!(
        refused("register", json!({ "username": "x" })),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused("send_message", json!({ "text": "no recipient" })),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused(
            "send_message",
            json!({ "to_user": "1", "conversation_id": "2", "text": "t" })
        ),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused(
            "send_message",
            json!({ "to_user": "1", "text": "t", "kind": "gif" })
        ),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused("resume", json!({ "token": "xyz" })),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused("history", json!({ "limit": -1 })),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused("ack", json!({ "positions": [1] })),
        FEIGE_ERR_PARAMS as i32
    );
    assert_eq!(
        refused("search", json!({ "query": 5 })),
        FEIGE_ERR_PARAMS as i32
    );

    // NULL params mean {}; a server-side refusal is a completion, not a refused call.
    let method = CString::new("whoami").unwrap();
    let mut id = 0;
    // SAFETY: a live client, a valid C string, NULL params (allowed), a writable id.
    let rc = unsafe { feige_call(c.0, method.as_ptr(), std::ptr::null(), &mut id) };
    assert_eq!(rc, 0);
    assert_eq!(last_error(), "", "cleared by a call that was accepted");
    let e = c.response(id, &mut Vec::new());
    assert_eq!(e.status, FEIGE_ERR_SERVER as i32);
    assert_eq!(e.json["error"]["code"], "NOT_LOGGED_IN");
}

/// A listener that accepts (in the kernel's backlog) and never answers.
fn silent() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

#[test]
fn unreachable_server_backs_off_and_requests_fail_disconnected() {
    // A port nobody listens on: connecting fails at once.
    let addr = silent().1;
    let c = C::new(&json!({ "server": addr, "request_timeout_ms": 700 }));
    let id = c.call("whoami", &json!({})).unwrap();
    let mut events = Vec::new();
    let done = c.response(id, &mut events);
    assert_eq!(done.status, FeigeStatus::FEIGE_ERR_DISCONNECTED as i32);
    assert_eq!(done.json["error"]["code"], "DISCONNECTED");
    let mut states: Vec<Value> = events.into_iter().map(|e| e.json).collect();
    for s in &mut states {
        if let Some(why) = s.as_object_mut().and_then(|o| o.remove("error")) {
            assert!(why.as_str().unwrap().contains("refused"), "{why}");
        }
    }
    assert_eq!(
        states[0],
        json!({ "state": "connecting", "logged_in": false })
    );
    assert_eq!(
        states[1],
        json!({ "state": "disconnected", "retry_in_ms": 100, "logged_in": false })
    );
    assert_eq!(
        states[2],
        json!({ "state": "connecting", "logged_in": false })
    );
    assert_eq!(
        states[3],
        json!({ "state": "disconnected", "retry_in_ms": 200, "logged_in": false }),
        "the delay doubles"
    );
}

/// TLS from the config JSON: a client trusting the server's CA works (and lists its
/// session); one expecting another name never connects, its state events say why, and its
/// calls fail DISCONNECTED.
#[test]
fn tls_from_the_config() {
    let pki = feige_tests::tls::TestPki::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(TestServer::start_with(|c| pki.serve(c)));
    let port = server.handle.addr().port();
    let c = C::new(&json!({
        "server": format!("localhost:{port}"),
        "tls": true,
        "ca_file": pki.ca.to_str().unwrap(),
    }));
    c.ok("register", creds("tess"));
    let session = c.ok("login", creds("tess"));
    let listed = c.ok("sessions", json!({}));
    let only = &listed["sessions"][0];
    assert_eq!(only["session_id"], session["session_id"]);
    assert_eq!(only["current"], true);
    assert_eq!(only["online"], true);
    let (status, err) = c.run("revoke_session", json!({ "session_id": "999999" }));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32);
    assert_eq!(err["error"]["code"], "NOT_FOUND");
    drop(c);

    let wrong = C::new(&json!({
        "server": server.addr(),
        "tls": true,
        "ca_file": pki.ca.to_str().unwrap(),
        "tls_server_name": "chat.example.com",
        "request_timeout_ms": 700,
    }));
    let id = wrong.call("whoami", &json!({})).unwrap();
    let mut events = Vec::new();
    let done = wrong.response(id, &mut events);
    assert_eq!(done.status, FeigeStatus::FEIGE_ERR_DISCONNECTED as i32);
    let why = events
        .iter()
        .find_map(|e| e.json["error"].as_str())
        .expect("a disconnected event with the reason");
    assert!(
        why.contains("TLS") && why.contains("chat.example.com"),
        "{why}"
    );
    drop(wrong);
    let _guard = rt.enter();
    drop(server);
}

/// A server that lets a new connection wait `delay`, then answers its Hello, and then never
/// answers anything else (it reads and drops it until the client goes away).
fn late_server(delay: Duration) -> String {
    use feige_protocol::{frame, pb, Envelope, ResponseResult};
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let (mut s, _) = l.accept().unwrap();
        let mut buf = bytes::BytesMut::new();
        let mut chunk = [0u8; 4096];
        let hello = loop {
            if let Some(env) = frame::decode(&mut buf, usize::MAX).unwrap() {
                break env;
            }
            match s.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let ok = pb::HelloOk {
            major: 1,
            heartbeat_ms: 60_000,
            max_frame_len: 1 << 20,
            ..Default::default()
        };
        let reply = Envelope::response(hello.request_id, ResponseResult::Hello(ok));
        s.write_all(&frame::encode_to_bytes(&reply)).unwrap();
        while matches!(s.read(&mut chunk), Ok(n) if n > 0) {}
    });
    addr
}

#[test]
fn one_deadline_bounds_the_wait_for_a_connection_and_the_request_together() {
    // The connection comes up after ~1 s; the ping is never answered. With a 1.5 s request
    // timeout the call must end 1.5 s after it was made, not 1.5 s after the connection.
    let addr = late_server(Duration::from_millis(1000));
    let c = C::new(&json!({ "server": addr, "request_timeout_ms": 1500 }));
    let started = Instant::now();
    let id = c.call("ping", &json!({})).unwrap();
    let mut events = Vec::new();
    let done = c.response(id, &mut events);
    let took = started.elapsed();
    assert_eq!(
        done.status,
        FeigeStatus::FEIGE_ERR_TIMEOUT as i32,
        "{done:?}"
    );
    assert_eq!(done.json["error"]["code"], "TIMEOUT");
    assert!(
        events.iter().any(|e| e.json["state"] == "connected"),
        "it did connect: {events:?}"
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2300),
        "took {took:?}; waiting for the connection and then a full timeout takes 2.5 s"
    );
}

static WAKEUPS: AtomicUsize = AtomicUsize::new(0);
static WAKEUPS_OFF_SDK_THREADS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_wakeup(user_data: *mut c_void) {
    if !user_data.is_null() || std::thread::current().name() != Some("feige-sdk") {
        WAKEUPS_OFF_SDK_THREADS.fetch_add(1, Ordering::SeqCst);
    }
    WAKEUPS.fetch_add(1, Ordering::SeqCst);
}

/// Waits up to 10 s for the wakeup count to reach `n`.
fn wakeups_reach(n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while WAKEUPS.load(Ordering::SeqCst) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // A little longer, to catch a wakeup too many.
    std::thread::sleep(Duration::from_millis(50));
    WAKEUPS.load(Ordering::SeqCst)
}

#[test]
fn wakeup_fd_and_callback_follow_the_queue() {
    let (_listener, addr) = silent();
    let c = C::new(&json!({ "server": addr, "request_timeout_ms": 60_000 }));
    let fd = c.wakeup_socket();
    // The first event ("connecting") makes the descriptor readable.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !readable(&fd) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(readable(&fd));
    // Setting the callback while events wait calls it soon, from an SDK thread.
    // SAFETY: a live client; the callback may run on any thread and ignores user_data.
    let rc = unsafe { feige_client_set_wakeup(c.0, Some(count_wakeup), std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    assert_eq!(wakeups_reach(1), 1);
    let first = c.poll().unwrap();
    assert_eq!(
        first.json,
        json!({ "state": "connecting", "logged_in": false })
    );
    assert_eq!(c.poll().unwrap_err(), FeigeStatus::FEIGE_NO_EVENT as i32);
    assert!(!readable(&fd), "drained: not readable");

    let t0 = Instant::now();
    assert_eq!(c.wait(50).unwrap_err(), FeigeStatus::FEIGE_NO_EVENT as i32);
    assert!(t0.elapsed() >= Duration::from_millis(50));

    // Requests wait for the connection; shutdown cancels them, in order, each once.
    let ids: Vec<u64> = (0..3)
        .map(|_| c.call("ping", &json!({})).unwrap())
        .collect();
    assert_eq!(c.shutdown(1000), 0);
    assert!(readable(&fd));
    assert_eq!(wakeups_reach(2), 2, "one wakeup per empty -> non-empty");
    assert_eq!(WAKEUPS_OFF_SDK_THREADS.load(Ordering::SeqCst), 0);
    let events = c.drain_closed();
    let cancelled: Vec<u64> = events
        .iter()
        .filter(|e| e.status == FeigeStatus::FEIGE_ERR_CANCELLED as i32)
        .map(|e| e.request_id)
        .collect();
    assert_eq!(cancelled, ids);
    assert_eq!(events.last().unwrap().json, json!({ "state": "closed" }));
    assert!(!readable(&fd));
    assert_eq!(
        c.call("ping", &json!({})).unwrap_err(),
        FeigeStatus::FEIGE_ERR_SHUT_DOWN as i32
    );
}

#[test]
fn too_many_waiting_requests_are_refused() {
    let (_listener, addr) = silent();
    let c = C::new(&json!({ "server": addr, "request_timeout_ms": 60_000 }));
    for _ in 0..client::MAX_LIVE_REQUESTS {
        c.call("ping", &json!({})).unwrap();
    }
    assert_eq!(
        c.call("ping", &json!({})).unwrap_err(),
        FeigeStatus::FEIGE_ERR_BUSY as i32
    );
    assert_eq!(c.shutdown(0), 0);
    let responses = c.drain_closed().iter().filter(|e| e.kind == 1).count();
    assert_eq!(responses, client::MAX_LIVE_REQUESTS);
}

#[test]
fn shutdown_races_completions_yet_each_request_completes_once() {
    let server = Server::start();
    let c = C::connect(&server.addr());
    c.ok("register", creds("carol"));
    c.ok("login", creds("carol"));
    let ids: Vec<u64> = (0..300)
        .map(|_| c.call("whoami", &json!({})).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    c.shutdown(0);
    let mut seen: HashMap<u64, i32> = HashMap::new();
    for e in c.drain_closed().into_iter().filter(|e| e.kind == 1) {
        assert!(
            seen.insert(e.request_id, e.status).is_none(),
            "twice: {e:?}"
        );
        assert!(
            e.status == 0 || e.status == FeigeStatus::FEIGE_ERR_CANCELLED as i32,
            "{e:?}"
        );
    }
    let mut got: Vec<u64> = seen.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, ids);
}

#[test]
fn null_and_bad_arguments() {
    use FeigeStatus::*;
    let mut out = std::ptr::null_mut();
    let bad = b"{\"server\":\"\xff\"}\0";
    // SAFETY: every pointer is NULL or valid; the functions must refuse, not crash.
    unsafe {
        assert_eq!(
            feige_client_new(std::ptr::null(), &mut out),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(
            feige_client_new(bad.as_ptr().cast(), &mut out),
            FEIGE_ERR_UTF8 as i32
        );
        assert!(out.is_null());
        assert_eq!(
            feige_call(
                std::ptr::null_mut(),
                c"ping".as_ptr(),
                std::ptr::null(),
                &mut 0
            ),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(
            feige_poll_event(std::ptr::null_mut(), &mut std::ptr::null_mut()),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(
            feige_wait_event(std::ptr::null_mut(), 0, &mut std::ptr::null_mut()),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(
            feige_client_shutdown(std::ptr::null_mut(), 0),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(
            feige_client_set_wakeup(std::ptr::null_mut(), None, std::ptr::null_mut()),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(
            feige_client_wakeup_fd(std::ptr::null(), &mut 0),
            FEIGE_ERR_NULL as i32
        );
        assert_eq!(feige_event_kind(std::ptr::null()), FEIGE_ERR_NULL as i32);
        assert_eq!(feige_event_status(std::ptr::null()), FEIGE_ERR_NULL as i32);
        assert_eq!(feige_event_request_id(std::ptr::null()), 0);
        assert_eq!(
            feige_event_json(
                std::ptr::null(),
                &mut std::ptr::null(),
                std::ptr::null_mut()
            ),
            FEIGE_ERR_NULL as i32
        );
        feige_client_free(std::ptr::null_mut());
        feige_event_free(std::ptr::null_mut());
        let text = std::ffi::CStr::from_ptr(feige_status_str(FEIGE_ERR_CANCELLED as i32));
        assert_eq!(
            text.to_str().unwrap(),
            "the request was cancelled by shutdown"
        );
        let unknown = std::ffi::CStr::from_ptr(feige_status_str(i32::MIN));
        assert_eq!(unknown.to_str().unwrap(), "unknown status");
        assert_eq!(feige_abi_version(), FEIGE_ABI_VERSION);
    }
}

#[test]
fn version_constants_match_the_package() {
    assert_eq!(FEIGE_VERSION, env!("CARGO_PKG_VERSION"));
    let parts: Vec<u32> = FEIGE_VERSION
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        parts,
        [
            FEIGE_VERSION_MAJOR,
            FEIGE_VERSION_MINOR,
            FEIGE_VERSION_PATCH
        ]
    );
    // SAFETY: feige_version returns a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(feige_version()) };
    assert_eq!(v.to_str().unwrap(), FEIGE_VERSION);
}

/// The completions of `ids`, in `ids`' order, each checked to be a success.
fn completions(c: &C, ids: &[u64]) -> Vec<Value> {
    let mut done: HashMap<u64, Ev> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < ids.len() && Instant::now() < deadline {
        match c.wait(100) {
            Ok(e) if e.kind == 1 => {
                done.insert(e.request_id, e);
            }
            Ok(_) | Err(1) => {}
            Err(rc) => panic!("wait_event: {rc}"),
        }
    }
    ids.iter()
        .map(|id| {
            let e = done.remove(id).expect("a completion for every call");
            assert_eq!(e.status, 0, "{e:?}");
            e.json
        })
        .collect()
}

/// The number in a completion's string field `key`.
fn num(v: &Value, key: &str) -> u64 {
    v[key].as_str().unwrap().parse().unwrap()
}

/// Places where a later call got a smaller value than an earlier one.
fn inversions(seqs: &[u64]) -> Vec<(usize, u64, u64)> {
    seqs.windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] >= w[1])
        .map(|(i, w)| (i, w[0], w[1]))
        .collect()
}

#[test]
fn pipelined_sends_are_stored_in_call_order() {
    let server = Server::start();
    let c = C::connect(&server.addr());
    c.ok("register", creds("ivy"));
    let peer = c.ok("register", creds("jim"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok("login", creds("ivy"));
    // 1,000 sends, at most 64 in flight: a new one as soon as one completes.
    let mut ids = Vec::new();
    let mut done: HashMap<u64, Ev> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < 1000 && Instant::now() < deadline {
        while ids.len() < 1000 && ids.len() - done.len() < 64 {
            let text = format!("m{}", ids.len());
            ids.push(
                c.call("send_message", &json!({ "to_user": peer, "text": text }))
                    .unwrap(),
            );
        }
        match c.wait(100) {
            Ok(e) if e.kind == 1 => {
                done.insert(e.request_id, e);
            }
            Ok(_) | Err(1) => {}
            Err(rc) => panic!("wait_event: {rc}"),
        }
    }
    let seqs: Vec<u64> = ids
        .iter()
        .map(|id| {
            let e = &done[id];
            assert_eq!(e.status, 0, "{e:?}");
            num(&e.json, "seq")
        })
        .collect();
    assert_eq!(inversions(&seqs), vec![], "seqs must follow call order");
    assert_eq!(seqs, (1..=1000).collect::<Vec<u64>>());
}

#[test]
fn sends_queued_while_the_server_is_down_go_out_in_call_order() {
    let mut server = Server::start();
    let addr = server.addr();
    let c = C::connect(&addr);
    c.ok("register", creds("kim"));
    let peer = c.ok("register", creds("lou"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok("login", creds("kim"));
    let mut seen = Vec::new();
    wait_for(&c, &mut seen, |j| j["state"] == "synced");

    let TestServer { handle, dir } = server.server.take().unwrap();
    server.rt.block_on(handle.shutdown());
    wait_for(&c, &mut seen, |j| j["state"] == "disconnected");
    let ids: Vec<u64> = (0..100)
        .map(|i| {
            let text = format!("offline {i}");
            c.call("send_message", &json!({ "to_user": peer, "text": text }))
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let listen: std::net::SocketAddr = addr.parse().unwrap();
    let data_dir = dir.path().to_owned();
    server.server = Some(server.rt.block_on(TestServer::start_with(|config| {
        config.listen = listen;
        config.data_dir = data_dir;
        config.dm_policy = DmPolicy::Anyone;
    })));
    let seqs: Vec<u64> = completions(&c, &ids)
        .iter()
        .map(|v| num(v, "seq"))
        .collect();
    assert_eq!(inversions(&seqs), vec![], "seqs must follow call order");
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
    drop(c);
    drop(server);
    drop(dir);
}

#[test]
fn back_to_back_registers_get_ids_in_call_order() {
    let server = Server::start();
    let c = C::connect(&server.addr());
    for round in 0..5 {
        let first = c
            .call("register", &creds(&format!("first{round}")))
            .unwrap();
        let second = c
            .call("register", &creds(&format!("second{round}")))
            .unwrap();
        let got = completions(&c, &[first, second]);
        let (a, b) = (num(&got[0], "user_id"), num(&got[1], "user_id"));
        assert!(
            a < b,
            "round {round}: the first register got {a}, the second {b}"
        );
    }
}
