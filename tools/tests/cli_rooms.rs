//! `feige room`, `feige redpacket` and `feige wallet` against a real server on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::command as cmd;
use feige_tests::TestServer;
use serde_json::Value;

/// Runs `feige --json --user USER args...`; returns its JSON lines, or the error code.
async fn feige(
    server: &str,
    state: &Path,
    user: &str,
    args: &[&str],
) -> Result<Vec<Value>, String> {
    common::feige_json(server, state, Some(user), args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_red_packets_and_the_wallet_from_the_command_line() {
    let s = TestServer::start_with(|c| {
        c.admins = vec!["alice".into()];
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    for name in ["alice", "bob"] {
        feige(&addr, st, name, &["register", name]).await.unwrap();
        feige(&addr, st, name, &["login"]).await.unwrap();
    }

    // A room: alice listens for one message while bob talks.
    let listen = cmd(
        &addr,
        st,
        &[
            "--json", "--user", "alice", "room", "listen", "77", "--count", "1",
        ],
    )
    .spawn()
    .unwrap();
    let mut count = 0;
    for _ in 0..200 {
        let out = feige(&addr, st, "bob", &["room", "members", "77"])
            .await
            .unwrap();
        count = out.last().unwrap()["count"].as_u64().unwrap();
        if count == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count, 2, "alice's listen and bob's own command");
    let sent = feige(&addr, st, "bob", &["room", "send", "77", "hello", "room"])
        .await
        .unwrap();
    assert_eq!(sent[0]["type"], "room_sent");
    let heard = tokio::time::timeout(Duration::from_secs(20), listen.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(heard.status.success());
    let heard: Value = serde_json::from_slice(&heard.stdout).unwrap();
    assert_eq!(
        (heard["room"].as_str(), heard["text"].as_str()),
        (Some("77"), Some("hello room"))
    );
    let history = feige(&addr, st, "alice", &["room", "history", "77"])
        .await
        .unwrap();
    assert_eq!(history[0]["text"], "hello room");
    assert_eq!(
        feige(&addr, st, "alice", &["room", "join", "77"])
            .await
            .unwrap()[0]["member_count"],
        1
    );
    feige(&addr, st, "alice", &["room", "leave", "77"])
        .await
        .unwrap();

    // The wallet: an admin tops up; others may not.
    let w = feige(&addr, st, "alice", &["wallet", "top-up", "bob", "10.50"])
        .await
        .unwrap();
    assert_eq!(w[0]["balance_cents"], 1050);
    assert_eq!(
        feige(&addr, st, "bob", &["wallet", "top-up", "alice", "1"]).await,
        Err("FORBIDDEN".into())
    );
    assert_eq!(
        feige(&addr, st, "bob", &["wallet"]).await.unwrap()[0]["balance_cents"],
        1050
    );

    // A red packet in their 1:1 conversation.
    let dm = feige(&addr, st, "alice", &["send", "bob", "hi"])
        .await
        .unwrap();
    let conv = dm[0]["conversation_id"].as_str().unwrap().to_owned();
    let sent = feige(
        &addr,
        st,
        "bob",
        &[
            "redpacket",
            "send",
            &conv,
            "2.00",
            "1",
            "--greeting",
            "新年好",
        ],
    )
    .await
    .unwrap();
    let packet = sent[0]["packet_id"].as_str().unwrap().to_owned();
    assert_eq!(
        feige(&addr, st, "bob", &["redpacket", "send", &conv, "100", "1"]).await,
        Err("INSUFFICIENT_FUNDS".into())
    );
    let got = feige(&addr, st, "alice", &["redpacket", "grab", &packet])
        .await
        .unwrap();
    assert_eq!(got[0]["amount_cents"], 200);
    assert_eq!(
        feige(&addr, st, "alice", &["redpacket", "grab", &packet]).await,
        Err("ALREADY_GRABBED".into())
    );
    let info = feige(&addr, st, "bob", &["redpacket", "info", &packet])
        .await
        .unwrap();
    assert_eq!(
        (
            info[0]["total_cents"].as_u64(),
            info[0]["greeting"].as_str()
        ),
        (Some(200), Some("新年好"))
    );
    assert_eq!(
        feige(&addr, st, "alice", &["wallet"]).await.unwrap()[0]["balance_cents"],
        200
    );
    let hist = feige(&addr, st, "alice", &["history", "bob"])
        .await
        .unwrap();
    assert!(
        hist.iter()
            .any(|m| m["red_packet_id"].as_str() == Some(packet.as_str())),
        "{hist:?}"
    );
}
