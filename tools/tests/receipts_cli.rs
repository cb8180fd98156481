//! `feige recall`, `feige receipts`, `feige friends groups | group-set | suggest` against a
//! real server on port 0, in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::feige_json as feige;
use feige_tests::TestServer;
use serde_json::Value;

/// Runs a command that must succeed.
async fn ok(server: &str, state: &Path, user: &str, args: &[&str]) -> Vec<Value> {
    feige(server, state, Some(user), args)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
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
    let err = feige(&addr, st, Some("alice"), &["recall", "bob", "2"]).await;
    assert_eq!(err.unwrap_err(), "ALREADY_RECALLED");
    let recall_alices = ["recall", "--conversation", &conv(&r[0]), "1"];
    let err = feige(&addr, st, Some("bob"), &recall_alices).await;
    assert_eq!(err.unwrap_err(), "FORBIDDEN");
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
        tokio::spawn(async move { feige(&a, &s2, Some("bob"), &["listen", "--count", "4"]).await });
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
    let lines = listen.await.unwrap().expect("listen succeeds");
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
