//! `feige group ...` and `feige send --group --mention` against a real server on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::feige_json as feige;
use feige_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commands() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    let mut ids = Vec::new();
    for name in ["alice", "bob"] {
        let r = feige(&addr, st, None, &["register", name]).await.unwrap();
        ids.push(r[0]["user_id"].as_str().unwrap().to_owned());
        feige(&addr, st, Some(name), &["login"]).await.unwrap();
    }
    let asked = feige(&addr, st, Some("alice"), &["friends", "add", "bob"])
        .await
        .unwrap();
    let rid = asked[0]["request_id"].as_str().unwrap().to_owned();
    feige(&addr, st, Some("bob"), &["friends", "accept", &rid])
        .await
        .unwrap();

    let made = feige(
        &addr,
        st,
        Some("alice"),
        &["group", "create", "Team", "bob"],
    )
    .await
    .unwrap();
    assert_eq!(made[0]["type"], "group");
    assert_eq!(made[0]["member_count"], 2);
    let g = made[0]["group_id"].as_str().unwrap().to_owned();

    let sent = feige(
        &addr,
        st,
        Some("alice"),
        &["send", "--group", &g, "hi", "bob", "--mention", "bob"],
    )
    .await
    .unwrap();
    assert_eq!(sent[0]["seq"], "2");
    let h = feige(&addr, st, Some("bob"), &["history", "--group", &g])
        .await
        .unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[0]["text"],
        "alice created the group \"Team\" and added bob"
    );
    assert_eq!(h[1]["text"], "hi bob");
    assert_eq!(h[1]["mentions"][0], ids[1].as_str());
    // Mentions are for groups.
    let bad = feige(
        &addr,
        st,
        Some("alice"),
        &["send", "bob", "hi", "--mention", "bob"],
    )
    .await;
    assert!(bad.is_err());
    assert_eq!(
        feige(
            &addr,
            st,
            Some("bob"),
            &["send", "--group", &g, "@all", "--mention-all"]
        )
        .await,
        Err("FORBIDDEN".to_owned())
    );

    feige(&addr, st, Some("alice"), &["group", "card", &g, "Boss"])
        .await
        .unwrap();
    let members = feige(&addr, st, Some("bob"), &["group", "members", &g])
        .await
        .unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        (members[0]["role"].as_str(), members[0]["card"].as_str()),
        (Some("owner"), Some("Boss"))
    );
    feige(
        &addr,
        st,
        Some("alice"),
        &["group", "update", &g, "--announcement", "hello"],
    )
    .await
    .unwrap();
    let info = feige(&addr, st, Some("bob"), &["group", "info", &g])
        .await
        .unwrap();
    assert_eq!(info[0]["announcement"], "hello");
    feige(
        &addr,
        st,
        Some("alice"),
        &["group", "mute", &g, "bob", "60"],
    )
    .await
    .unwrap();
    assert_eq!(
        feige(&addr, st, Some("bob"), &["send", "--group", &g, "x"]).await,
        Err("MUTED".to_owned())
    );
    feige(&addr, st, Some("alice"), &["group", "mute", &g, "bob", "0"])
        .await
        .unwrap();
    feige(&addr, st, Some("alice"), &["group", "mute-all", &g, "on"])
        .await
        .unwrap();
    feige(&addr, st, Some("alice"), &["group", "mute-all", &g, "off"])
        .await
        .unwrap();
    feige(
        &addr,
        st,
        Some("alice"),
        &["group", "role", &g, "bob", "admin"],
    )
    .await
    .unwrap();
    assert!(feige(&addr, st, Some("alice"), &["group", "invites"])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        feige(&addr, st, Some("alice"), &["group", "leave", &g]).await,
        Err("FORBIDDEN".to_owned())
    );
    feige(&addr, st, Some("alice"), &["group", "transfer", &g, "bob"])
        .await
        .unwrap();
    feige(&addr, st, Some("alice"), &["group", "leave", &g])
        .await
        .unwrap();
    assert!(feige(&addr, st, Some("alice"), &["group", "list"])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        feige(&addr, st, Some("bob"), &["group"])
            .await
            .unwrap()
            .len(),
        1
    );
    feige(&addr, st, Some("bob"), &["group", "dismiss", &g])
        .await
        .unwrap();
    assert_eq!(
        feige(&addr, st, Some("bob"), &["group", "info", &g]).await,
        Err("NOT_FOUND".to_owned())
    );
}
