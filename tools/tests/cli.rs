//! The `feige` binary against a real server on port 0: the README's walkthrough, JSON output,
//! errors and exit codes, and the password read from stdin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{feige, Run, PASSWORD};
use feige_tests::TestServer;
use serde_json::Value;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_in_json() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();

    let alice = feige(
        &addr,
        st,
        &["--json", "register", "alice", "--nickname", "Alice"],
        None,
    )
    .await;
    assert!(alice.ok, "{}", alice.stderr);
    let alice = alice.one();
    assert_eq!(alice["type"], "registered");
    let alice_id = alice["user_id"].as_str().unwrap().to_owned();
    // The password can come from stdin instead of FEIGE_PASSWORD.
    let bob = feige(
        &addr,
        st,
        &["--json", "register", "bob"],
        Some("password-from-stdin\n"),
    )
    .await;
    assert!(bob.ok, "{}", bob.stderr);
    let bob_id = bob.one()["user_id"].as_str().unwrap().to_owned();
    assert_ne!(alice_id, bob_id);

    let dup = feige(&addr, st, &["--json", "register", "alice"], None).await;
    assert_eq!(dup.error_code(), "USERNAME_TAKEN");

    let wrong = feige(&addr, st, &["--json", "--user", "bob", "login"], None).await;
    assert_eq!(wrong.error_code(), "BAD_CREDENTIALS");

    let login = feige(&addr, st, &["--json", "--user", "alice", "login"], None).await;
    assert!(login.ok, "{}", login.stderr);
    assert_eq!(login.one()["user_id"].as_str(), Some(alice_id.as_str()));

    // whoami resumes the saved token: no password needed.
    let who = feige(&addr, st, &["--json", "whoami"], Some("")).await;
    assert!(who.ok, "{}", who.stderr);
    let who = who.one();
    assert_eq!(who["username"], "alice");
    assert_eq!(who["nickname"], "Alice");

    // 1:1 messages need friendship by default.
    let stranger = feige(&addr, st, &["--json", "send", &bob_id, "hi"], None).await;
    assert_eq!(stranger.error_code(), "NOT_FRIENDS");
    let asked = feige(
        &addr,
        st,
        &[
            "--json",
            "friends",
            "add",
            "bob",
            "--message",
            "hi, alice here",
        ],
        None,
    )
    .await;
    assert!(asked.ok, "{}", asked.stderr);
    let request_id = asked.one()["request_id"].as_str().unwrap().to_owned();
    let bob_login = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "login"],
        Some("password-from-stdin\n"),
    )
    .await;
    assert!(bob_login.ok, "{}", bob_login.stderr);
    let pending = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "friends", "requests"],
        None,
    )
    .await;
    assert!(pending.ok, "{}", pending.stderr);
    let pending = pending.one();
    assert_eq!(pending["direction"], "incoming");
    assert_eq!(pending["message"], "hi, alice here");
    assert_eq!(pending["request_id"].as_str(), Some(request_id.as_str()));
    let accepted = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "friends", "accept", &request_id],
        None,
    )
    .await;
    assert!(accepted.ok, "{}", accepted.stderr);
    assert_eq!(accepted.one()["accepted"], true);

    for text in ["hello bob", "你好 bob"] {
        let sent = feige(
            &addr,
            st,
            &["--json", "--user", "alice", "send", &bob_id, text],
            None,
        )
        .await;
        assert!(sent.ok, "{}", sent.stderr);
    }
    let bad = feige(
        &addr,
        st,
        &["--json", "--user", "alice", "send", "999999", "x"],
        None,
    )
    .await;
    assert_eq!(bad.error_code(), "NOT_FOUND");

    // bob logs in with the password from stdin and gets what he missed.
    let bob_login = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "login"],
        Some("password-from-stdin\n"),
    )
    .await;
    assert!(bob_login.ok, "{}", bob_login.stderr);
    let heard = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "listen", "--count", "2"],
        None,
    )
    .await;
    assert!(heard.ok, "{}", heard.stderr);
    let texts: Vec<Value> = heard
        .json()
        .into_iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec!["hello bob", "你好 bob"]);

    let history = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "history", &alice_id],
        None,
    )
    .await;
    assert!(history.ok, "{}", history.stderr);
    let seqs: Vec<Value> = history
        .json()
        .into_iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(seqs, vec!["1", "2"], "oldest first, ids as strings");
    let after = feige(
        &addr,
        st,
        &[
            "--json", "--user", "bob", "history", &alice_id, "--after", "1",
        ],
        None,
    )
    .await;
    assert!(after.ok, "{}", after.stderr);
    let texts: Vec<Value> = after
        .json()
        .into_iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec!["你好 bob"], "only what follows seq 1");

    // The search index follows the log shortly after the ack.
    let mut found = Vec::new();
    for _ in 0..50 {
        let r = feige(&addr, st, &["--json", "search", "你好"], None).await;
        assert!(r.ok, "{}", r.stderr);
        found = r.json();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["text"], "你好 bob");

    let out = feige(&addr, st, &["--json", "--user", "alice", "logout"], None).await;
    assert!(out.ok, "{}", out.stderr);
    let after = feige(
        &addr,
        st,
        &["--json", "--user", "alice", "whoami"],
        Some(""),
    )
    .await;
    assert!(!after.ok, "whoami after logout must fail");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_output_and_unreachable_server() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let r = feige(&addr, st, &["register", "carol"], None).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("carol"), "{}", r.stdout);
    s.handle.shutdown().await;
    // Nothing listens there any more: a clear error and a failing exit code, no panic.
    let r = feige(&addr, st, &["register", "dave"], None).await;
    assert!(!r.ok);
    assert!(r.stderr.starts_with("error:"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_commands_in_json() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let ok = |r: &Run| assert!(r.ok, "{}", r.stderr);
    for (name, nick) in [("carol", "小红"), ("dave", "Dave")] {
        let r = feige(&addr, st, &["register", name, "--nickname", nick], None).await;
        ok(&r);
        let r = feige(&addr, st, &["--user", name, "login"], None).await;
        ok(&r);
    }
    // Profiles.
    let r = feige(
        &addr,
        st,
        &[
            "--json",
            "--user",
            "carol",
            "profile",
            "set",
            "--signature",
            "飞鸽",
            "--email",
            "carol@example.com",
        ],
        None,
    )
    .await;
    ok(&r);
    let p = r.one();
    assert_eq!(p["signature"], "飞鸽");
    assert_eq!(p["email"], "carol@example.com");
    let r = feige(&addr, st, &["--json", "--user", "carol", "profile"], None).await;
    ok(&r);
    assert_eq!(r.one()["email"], "carol@example.com");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "profile", "user", "carol"],
        None,
    )
    .await;
    ok(&r);
    let u = r.one();
    assert_eq!(u["nickname"], "小红");
    assert!(u.get("email").is_none(), "no private fields: {u}");
    let r = feige(
        &addr,
        st,
        &[
            "--json", "--user", "carol", "profile", "set", "--email", "nope",
        ],
        None,
    )
    .await;
    assert_eq!(r.error_code(), "INVALID_ARGUMENT");

    // Search, friends, presence, remark.
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "search-users", "红"],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.one()["username"], "carol");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "friends", "presence", "carol"],
        None,
    )
    .await;
    assert_eq!(r.error_code(), "FORBIDDEN");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "friends", "add", "carol"],
        None,
    )
    .await;
    ok(&r);
    let id = r.one()["request_id"].as_str().unwrap().to_owned();
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "friends", "add", "carol"],
        None,
    )
    .await;
    assert_eq!(r.error_code(), "REQUEST_PENDING");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "friends", "accept", &id],
        None,
    )
    .await;
    ok(&r);
    let r = feige(
        &addr,
        st,
        &[
            "--json",
            "--user",
            "dave",
            "friends",
            "remark",
            "carol",
            "Little Red",
        ],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.one()["remark"], "Little Red");
    let r = feige(&addr, st, &["--json", "--user", "dave", "friends"], None).await;
    ok(&r);
    let f = r.one();
    assert_eq!(f["username"], "carol");
    assert_eq!(f["online"], false, "carol has no live connection");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "friends", "presence", "carol"],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.one()["online"], false);

    // Chats and unread counts.
    for text in ["one", "two"] {
        // By username, then by id.
        let carol_id = f["user_id"].as_str().unwrap();
        let to = if text == "one" { "@carol" } else { carol_id };
        let r = feige(
            &addr,
            st,
            &["--json", "--user", "dave", "send", to, text],
            None,
        )
        .await;
        ok(&r);
    }
    let r = feige(&addr, st, &["--json", "--user", "carol", "chats"], None).await;
    ok(&r);
    let c = r.one();
    assert_eq!(c["unread"], "2");
    assert_eq!(c["last_text"], "two");
    assert_eq!(c["peer_username"], "dave");
    let conv = c["conversation_id"].as_str().unwrap().to_owned();
    let r = feige(
        &addr,
        st,
        &[
            "--json", "--user", "carol", "chats", "read", &conv, "--seq", "1",
        ],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.one()["unread"], "1");
    let r = feige(&addr, st, &["--user", "carol", "chats"], None).await;
    ok(&r);
    assert!(r.stdout.contains("(1 unread)"), "{}", r.stdout);

    // Block, unblock, delete.
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "friends", "block", "dave"],
        None,
    )
    .await;
    ok(&r);
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "friends", "blocked"],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.one()["username"], "dave");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "dave", "friends", "add", "carol"],
        None,
    )
    .await;
    assert_eq!(r.error_code(), "BLOCKED");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "friends", "unblock", "dave"],
        None,
    )
    .await;
    ok(&r);
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "friends", "delete", "dave"],
        None,
    )
    .await;
    assert_eq!(
        r.error_code(),
        "NOT_FRIENDS",
        "the block ended the friendship"
    );

    // Password change: old and new password from stdin; the new one works for a login.
    let mut cmd_input = String::from(PASSWORD);
    cmd_input.push('\n');
    cmd_input.push_str("a brand new password\n");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "profile", "password"],
        Some(&cmd_input),
    )
    .await;
    ok(&r);
    assert_eq!(r.one()["sessions_revoked"], "0");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "carol", "login"],
        Some("a brand new password\n"),
    )
    .await;
    ok(&r);
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_social_events_with_messages() {
    // Strangers may message: dave can still write after ending the friendship.
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_owned();
    let mut ids = Vec::new();
    for name in ["carol", "dave"] {
        let r = feige(&addr, &st, &["--json", "register", name], None).await;
        assert!(r.ok, "{}", r.stderr);
        ids.push(r.one()["user_id"].as_str().unwrap().to_owned());
        let r = feige(&addr, &st, &["--user", name, "login"], None).await;
        assert!(r.ok, "{}", r.stderr);
    }
    let r = feige(
        &addr,
        &st,
        &["--json", "--user", "dave", "friends", "add", "carol"],
        None,
    )
    .await;
    let id = r.one()["request_id"].as_str().unwrap().to_owned();
    let r = feige(
        &addr,
        &st,
        &["--json", "--user", "carol", "friends", "accept", &id],
        None,
    )
    .await;
    assert_eq!(
        r.one()["user_id"].as_str(),
        Some(ids[1].as_str()),
        "the requester"
    );
    let carol_id = ids[0].clone();

    let (a, s2) = (addr.clone(), st.clone());
    let listen = tokio::spawn(async move {
        feige(
            &a,
            &s2,
            &["--json", "--user", "carol", "listen", "--count", "1"],
            None,
        )
        .await
    });
    // Wait until carol's listener is connected.
    let mut online = false;
    for _ in 0..100 {
        let r = feige(
            &addr,
            &st,
            &["--json", "--user", "dave", "friends", "presence", "carol"],
            None,
        )
        .await;
        if r.one()["online"] == true {
            online = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(online, "carol's listener never came online");
    let r = feige(
        &addr,
        &st,
        &["--json", "--user", "dave", "friends", "delete", "carol"],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let r = feige(
        &addr,
        &st,
        &["--json", "--user", "dave", "send", &carol_id, "bye"],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let heard = listen.await.unwrap();
    assert!(heard.ok, "{}", heard.stderr);
    let lines = heard.json();
    let removed = lines
        .iter()
        .position(|l| l["type"] == "friend_removed")
        .unwrap_or_else(|| panic!("no friend_removed in {lines:?}"));
    let message = lines
        .iter()
        .position(|l| l["type"] == "message")
        .unwrap_or_else(|| panic!("no message in {lines:?}"));
    assert!(removed < message, "{lines:?}");
    assert_eq!(lines[message]["text"], "bye");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "presence" && l["online"] == true),
        "dave's commands come online: {lines:?}"
    );
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_follows_other_devices_and_friends_profiles_and_chats_page() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_owned();
    let mut ids = Vec::new();
    for name in ["carol", "dave", "erin"] {
        let r = feige(&addr, &st, &["--json", "register", name], None).await;
        assert!(r.ok, "{}", r.stderr);
        ids.push(r.one()["user_id"].as_str().unwrap().to_owned());
        let r = feige(&addr, &st, &["--user", name, "login"], None).await;
        assert!(r.ok, "{}", r.stderr);
    }
    // carol befriends dave and erin: two conversations.
    for friend in ["dave", "erin"] {
        let r = feige(
            &addr,
            &st,
            &["--json", "--user", friend, "friends", "add", "carol"],
            None,
        )
        .await;
        let id = r.one()["request_id"].as_str().unwrap().to_owned();
        let r = feige(
            &addr,
            &st,
            &["--json", "--user", "carol", "friends", "accept", &id],
            None,
        )
        .await;
        assert!(r.ok, "{}", r.stderr);
    }
    let r = feige(
        &addr,
        &st,
        &["--json", "--user", "carol", "chats", "--limit", "1"],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let lines = r.json();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["peer_username"], "erin", "newest first");
    assert_eq!(lines[1]["type"], "more");
    let cursor = lines[1]["before"].as_str().unwrap().to_owned();
    let r = feige(
        &addr,
        &st,
        &[
            "--json", "--user", "carol", "chats", "--limit", "1", "--before", &cursor,
        ],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let c = r.one();
    assert_eq!(c["peer_username"], "dave");
    let r = feige(
        &addr,
        &st,
        &["--user", "carol", "chats", "list", "--before", "nonsense"],
        None,
    )
    .await;
    assert!(!r.ok);

    let (a, s2) = (addr.clone(), st.clone());
    let listen = tokio::spawn(async move {
        feige(
            &a,
            &s2,
            &["--json", "--user", "carol", "listen", "--count", "1"],
            None,
        )
        .await
    });
    let mut online = false;
    for _ in 0..100 {
        let r = feige(
            &addr,
            &st,
            &["--json", "--user", "dave", "friends", "presence", "carol"],
            None,
        )
        .await;
        if r.one()["online"] == true {
            online = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(online, "carol's listener never came online");
    // carol acts on another device; dave changes his profile.
    for args in [
        &[
            "--json", "--user", "carol", "friends", "remark", "dave", "D",
        ][..],
        &["--json", "--user", "carol", "friends", "block", "erin"][..],
        &["--json", "--user", "carol", "friends", "unblock", "erin"][..],
        &[
            "--json",
            "--user",
            "dave",
            "profile",
            "set",
            "--nickname",
            "Dåve",
            "--phone",
            "+1 555 0100",
        ][..],
        &["--json", "--user", "dave", "send", &ids[0], "done"][..],
    ] {
        let r = feige(&addr, &st, args, None).await;
        assert!(r.ok, "{args:?}: {}", r.stderr);
    }
    let heard = listen.await.unwrap();
    assert!(heard.ok, "{}", heard.stderr);
    let lines = heard.json();
    let find = |t: &str| {
        lines
            .iter()
            .filter(|l| l["type"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(find("friend_updated")[0]["remark"], "D", "{lines:?}");
    let blocks = find("block_changed");
    assert_eq!(blocks.len(), 2, "{lines:?}");
    assert_eq!(
        (&blocks[0]["username"], &blocks[0]["blocked"]),
        (&Value::from("erin"), &Value::from(true))
    );
    assert_eq!(blocks[1]["blocked"], false);
    let updated = find("user_updated");
    assert_eq!(updated[0]["nickname"], "Dåve", "{lines:?}");
    assert!(updated[0].get("phone").is_none(), "{lines:?}");
    assert_eq!(find("message")[0]["text"], "done");
    s.handle.shutdown().await;
}

/// Registers and logs in `names` (in `st`); returns their user ids.
async fn users(addr: &str, st: &Path, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        let r = feige(addr, st, &["--json", "register", name], None).await;
        assert!(r.ok, "{}", r.stderr);
        ids.push(r.one()["user_id"].as_str().unwrap().to_owned());
        let r = feige(addr, st, &["--user", name, "login"], None).await;
        assert!(r.ok, "{}", r.stderr);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_history_take_a_username() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let ids = users(&addr, st, &["alice", "bob"]).await;
    let r = feige(
        &addr,
        st,
        &["--user", "alice", "send", "bob", "hi", "bob"],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("user {}", ids[1])),
        "{}",
        r.stdout
    );
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "send", "@alice", "yo"],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "bob", "history", "alice"],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let texts: Vec<Value> = r.json().iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, ["hi bob", "yo"]);
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "alice", "history", &ids[1]],
        None,
    )
    .await;
    assert_eq!(r.json().len(), 2, "{}", r.stdout);
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "alice", "send", "nobody", "x"],
        None,
    )
    .await;
    assert_eq!(r.error_code(), "NOT_FOUND");
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "alice", "history", "nobody"],
        None,
    )
    .await;
    assert_eq!(r.error_code(), "NOT_FOUND");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_text_prints_escaped() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    users(&addr, st, &["mallory", "victim"]).await;
    // The server refuses ESC and other control characters in message text (the CLI escapes
    // them too, for a store written before that rule: `terminal_safe`'s unit test); what it
    // allows, a line break, a tab and a right-to-left override, must not reach the terminal
    // raw either.
    let evil = "one line\nanother\t\u{202e}olleh";
    let r = feige(
        &addr,
        st,
        &["--user", "mallory", "send", "victim", evil],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let r = feige(
        &addr,
        st,
        &[
            "--user",
            "mallory",
            "profile",
            "set",
            "--signature",
            "one\ntwo",
        ],
        None,
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let shown = [
        feige(&addr, st, &["--user", "victim", "history", "mallory"], None).await,
        feige(&addr, st, &["--user", "victim", "chats"], None).await,
        feige(
            &addr,
            st,
            &["--user", "victim", "listen", "--count", "1"],
            None,
        )
        .await,
        feige(
            &addr,
            st,
            &["--user", "victim", "profile", "user", "mallory"],
            None,
        )
        .await,
    ];
    for r in &shown {
        assert!(r.ok, "{}", r.stderr);
        assert!(
            !r.stdout.contains(['\x1b', '\x07', '\t', '\u{202e}']),
            "raw controls in {:?}",
            r.stdout
        );
        assert_eq!(r.stdout.lines().count(), 1, "{:?}", r.stdout);
    }
    for r in &shown[..3] {
        assert!(
            r.stdout.contains(r"one line\nanother\t\u{202e}olleh"),
            "{:?}",
            r.stdout
        );
    }
    assert!(
        shown[3].stdout.contains(r"one\ntwo"),
        "{:?}",
        shown[3].stdout
    );
    // JSON output keeps the text as it is (JSON escapes it).
    let r = feige(
        &addr,
        st,
        &["--json", "--user", "victim", "history", "mallory"],
        None,
    )
    .await;
    assert_eq!(r.one()["text"], evil);
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_a_friends_only_server_says_how_to_start_one() {
    // The default dm_policy ("friends") refuses the bench's messages between strangers.
    let s = TestServer::start().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feige-bench"));
    // A run far longer than the 30 s bound below: only stopping at the first refusal ends it.
    cmd.args(["im-1to1", "--addr", &s.addr(), "-c", "2", "-d", "600"])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        cmd.spawn().unwrap().wait_with_output(),
    )
    .await
    .expect("feige-bench did not stop at the refusal")
    .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(stderr.contains("NOT_FRIENDS"), "{stderr}");
    assert!(stderr.contains("--dm-policy anyone"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    s.handle.shutdown().await;
}

/// `--tls --ca-file` reach a TLS server; `sessions` lists the logins with the current one
/// marked, and `sessions revoke` ends another; without `--tls` the CLI cannot talk to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_tls() {
    let pki = feige_tests::tls::TestPki::new();
    let s = TestServer::start_with(|c| pki.serve(c)).await;
    let addr = format!("localhost:{}", s.handle.addr().port());
    let state = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let ca = pki.ca.to_str().unwrap();
    let tls = |args: &[&str]| -> Vec<String> {
        ["--json", "--tls", "--ca-file", ca]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect()
    };
    let run = |dir: &Path, args: Vec<String>| {
        let addr = addr.clone();
        let dir = dir.to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            feige(&addr, &dir, &args, None).await
        }
    };
    let plain = feige(&addr, state.path(), &["--json", "register", "tina"], None).await;
    assert!(!plain.ok, "a plain client cannot talk to a TLS server");
    assert!(run(state.path(), tls(&["register", "tina"])).await.ok);
    let phone = run(
        state.path(),
        tls(&["--user", "tina", "--device", "phone", "login"]),
    )
    .await;
    assert!(phone.ok, "{}", phone.stderr);
    let laptop = run(
        other.path(),
        tls(&["--user", "tina", "--device", "laptop", "login"]),
    )
    .await;
    assert!(laptop.ok, "{}", laptop.stderr);

    let listed = run(state.path(), tls(&["sessions"])).await;
    assert!(listed.ok, "{}", listed.stderr);
    let listed = listed.json();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s["type"] == "session"));
    let laptop_id = listed.iter().find(|s| s["device"] == "laptop").unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = run(state.path(), tls(&["sessions", "revoke", &laptop_id])).await;
    assert_eq!(revoked.one()["type"], "session_revoked");
    let gone = run(other.path(), tls(&["whoami"])).await;
    assert_eq!(gone.error_code(), "INVALID_TOKEN");
    let left = run(state.path(), tls(&["sessions"])).await;
    let left = left.one();
    assert_eq!(left["device"], "phone");
    assert_eq!(left["current"], true);
    s.handle.shutdown().await;
}
