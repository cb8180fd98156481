//! `feige recall`, `feige receipts`, `feige friends groups | group-set | suggest` against a
//! real server on port 0, in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;

use feige_tests::TestServer;
use serde_json::Value;
use tokio::process::Command;

/// Runs `feige --json --user USER ARGS...`; returns whether it succeeded and its JSON lines
/// (or, on failure, the error code).
async fn feige(server: &str, state: &Path, user: &str, args: &[&str]) -> (bool, Vec<Value>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feige"));
    cmd.arg("--json");
    if !user.is_empty() {
        cmd.args(["--user", user]);
    }
    cmd.args(args)
        .env("FEIGE_SERVER", server)
        .env("FEIGE_STATE_DIR", state)
        .env("FEIGE_PASSWORD", "correct horse")
        .env_remove("HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        cmd.spawn().unwrap().wait_with_output(),
    )
    .await
    .expect("feige did not finish within 30 s")
    .unwrap();
    let text = if out.status.success() {
        String::from_utf8(out.stdout).unwrap()
    } else {
        String::from_utf8(out.stderr).unwrap()
    };
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (out.status.success(), lines)
}

/// Runs a command that must succeed.
async fn ok(server: &str, state: &Path, user: &str, args: &[&str]) -> Vec<Value> {
    let (ok, lines) = feige(server, state, user, args).await;
    assert!(ok, "{args:?}: {lines:?}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_receipts_groups_and_suggestions() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let r = ok(&addr, st, "", &["register", name]).await;
        ids.push(r[0]["user_id"].as_str().unwrap().to_owned());
        ok(&addr, st, name, &["login"]).await;
    }
    // alice-bob and bob-carol are friends.
    for (asker, other) in [("alice", "bob"), ("carol", "bob")] {
        let r = ok(&addr, st, asker, &["friends", "add", other]).await;
        let id = r[0]["request_id"].as_str().unwrap().to_owned();
        ok(&addr, st, other, &["friends", "accept", &id]).await;
    }
    ok(&addr, st, "alice", &["send", "bob", "hello", "bob"]).await;
    ok(&addr, st, "alice", &["send", "bob", "take", "this", "back"]).await;

    let r = ok(&addr, st, "alice", &["receipts", "bob", "1"]).await;
    assert_eq!(r[0]["type"], "receipts");
    assert_eq!(r[0]["unread_count"], 1);
    assert_eq!(r[0]["peer_read_seq"], "0");
    ok(
        &addr,
        st,
        "bob",
        &["chats", "read", &conv(&r[0]), "--seq", "1"],
    )
    .await;
    let r = ok(&addr, st, "alice", &["receipts", "bob", "1"]).await;
    assert_eq!(r[0]["read_count"], 1);
    assert_eq!(r[0]["readers"][0], ids[1].as_str());

    let r = ok(&addr, st, "alice", &["recall", "bob", "2"]).await;
    assert_eq!(r[0]["type"], "recalled");
    let (failed, err) = feige(&addr, st, "alice", &["recall", "bob", "2"]).await;
    assert!(!failed);
    assert_eq!(err[0]["error"]["code"], "ALREADY_RECALLED");
    let (failed, err) = feige(
        &addr,
        st,
        "bob",
        &["recall", "--conversation", &conv(&r[0]), "1"],
    )
    .await;
    assert!(!failed);
    assert_eq!(err[0]["error"]["code"], "FORBIDDEN");
    let r = ok(&addr, st, "bob", &["recalls"]).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["type"], "message_recalled");
    assert_eq!(r[0]["seq"], "2");
    let after = r[0]["recall_id"].as_str().unwrap().to_owned();
    assert!(ok(&addr, st, "bob", &["recalls", "--after", &after])
        .await
        .is_empty());
    let history = ok(&addr, st, "bob", &["history", "alice"]).await;
    assert_eq!(history[1]["text"], "");
    assert_eq!(history[1]["recalled_by"], ids[0].as_str());

    let r = ok(&addr, st, "bob", &["friends", "group-set", "alice", "家人"]).await;
    assert_eq!(r[0]["group"], "家人");
    let r = ok(&addr, st, "bob", &["friends", "groups"]).await;
    let groups: Vec<(&str, usize)> = r
        .iter()
        .filter(|v| v["type"] == "friend_group")
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["users"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(groups, [("", 1), ("家人", 1)]);

    let r = ok(&addr, st, "alice", &["friends", "suggest"]).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["user_id"], ids[2].as_str());
    assert_eq!(r[0]["mutual_friends"], 1);

    // `listen` shows a recall between two messages (after the two it syncs first, the
    // second of them recalled).
    let (a, s2) = (addr.clone(), st.to_owned());
    let listen =
        tokio::spawn(async move { feige(&a, &s2, "bob", &["listen", "--count", "4"]).await });
    let mut online = false;
    for _ in 0..100 {
        let r = ok(&addr, st, "alice", &["friends", "presence", "bob"]).await;
        if listen.is_finished() {
            panic!("listen ended: {:?}", listen.await.unwrap());
        }
        if r[0]["online"] == true {
            online = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(online, "bob's listener never came online");
    let sent = ok(&addr, st, "alice", &["send", "bob", "oops"]).await;
    let seq = sent[0]["seq"].as_str().unwrap().to_owned();
    ok(&addr, st, "alice", &["recall", "bob", &seq]).await;
    ok(&addr, st, "alice", &["send", "bob", "sorry"]).await;
    let (heard, lines) = listen.await.unwrap();
    assert!(heard, "{lines:?}");
    let recall = lines
        .iter()
        .find(|l| l["type"] == "message_recalled")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(recall["seq"], seq.as_str());
    assert_eq!(recall["recalled_by"], ids[0].as_str());
    let synced = lines
        .iter()
        .find(|l| l["type"] == "message" && l["seq"] == "2")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(synced["recalled_by"], ids[0].as_str());
    assert_eq!(synced["text"], "");
}

fn conv(v: &Value) -> String {
    v["conversation_id"].as_str().unwrap().to_owned()
}
