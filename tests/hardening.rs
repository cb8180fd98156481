//! Bad input a careless or hostile client sends, over TCP against a real server: message kinds
//! only the server may use, ids and cursors past 2^63, text fields with control characters or
//! bidirectional overrides, a user search for nothing; and the data directory's permissions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use feige_tests::sdk::{self, code};
use feige_tests::{error_code, login_raw, register_raw, Raw, TestServer};

/// A text message to `to_user` of `kind`.
fn message(to_user: u64, kind: i32, text: &str) -> RequestKind {
    RequestKind::SendMessage(pb::SendMessage {
        to_user,
        kind,
        text: text.into(),
        ..Default::default()
    })
}

/// Sends a message and returns its ack.
async fn send(r: &mut Raw, to_user: u64, text: &str) -> pb::SendOk {
    match r.call(message(to_user, 0, text)).await {
        ResponseResult::Send(ok) => ok,
        other => panic!("send failed: {other:?}"),
    }
}

/// The seqs a `Sync` without positions returns to `r`'s device.
async fn synced(r: &mut Raw) -> Vec<u64> {
    match r.call(RequestKind::Sync(pb::Sync::default())).await {
        ResponseResult::Sync(page) => page.messages.iter().map(|m| m.seq).collect(),
        other => panic!("sync failed: {other:?}"),
    }
}

/// The ids of the messages a search for "hardening" finds before `before_id`.
async fn search(r: &mut Raw, before_id: u64) -> Vec<u64> {
    let res = r
        .call(RequestKind::Search(pb::Search {
            query: "hardening".into(),
            before_id,
            ..Default::default()
        }))
        .await;
    match res {
        ResponseResult::Search(m) => m.messages.iter().map(|m| m.message_id).collect(),
        other => panic!("search failed: {other:?}"),
    }
}

fn invalid(r: &ResponseResult) -> bool {
    error_code(r) == Some(ErrorCode::InvalidArgument)
}

/// System notices come from the server only: a client's message of kind SYSTEM is refused,
/// as is a kind number the protocol does not define.
#[tokio::test]
async fn clients_cannot_send_system_messages() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    let system = pb::MessageKind::System as i32;
    assert!(invalid(&a.call(message(bob, system, "you won")).await));
    assert!(invalid(&a.call(message(bob, 99, "what")).await));
    assert_eq!(send(&mut a, bob, "a text").await.seq, 1);
}

/// A search `before_id` of 2^64 − 1 (past every id) finds what a search from the newest
/// finds, instead of nothing.
#[tokio::test]
async fn search_before_the_largest_id_starts_from_the_newest() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    let sent = send(&mut a, bob, "hardening the server").await;
    // The indexer runs every 100 ms.
    let mut newest = Vec::new();
    for _ in 0..100 {
        newest = search(&mut a, 0).await;
        if !newest.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(newest, [sent.message_id]);
    assert_eq!(search(&mut a, u64::MAX).await, newest);
    assert_eq!(search(&mut a, 1 << 63).await, newest);
}

/// A device cursor never moves back and never past the conversation's newest message: after
/// `Ack` of 2^64 − 1 and then of 2, the device has everything up to seq 3 and is still sent
/// seq 4 when it comes.
#[tokio::test]
async fn an_ack_past_the_end_stops_at_the_newest_message_and_never_moves_back() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    let mut conv = 0;
    for i in 1..=3 {
        conv = send(&mut a, bob, &format!("m{i}")).await.conversation_id;
    }
    let (mut b, _) = login_raw(&addr, "bob", "phone").await;
    assert_eq!(synced(&mut b).await, [1, 2, 3]);
    for seq in [u64::MAX, 2] {
        let ack = b
            .call(RequestKind::Ack(pb::Ack {
                positions: vec![pb::ConversationPosition {
                    conversation_id: conv,
                    seq,
                }],
            }))
            .await;
        assert!(matches!(ack, ResponseResult::Ack(_)), "{ack:?}");
    }
    assert_eq!(synced(&mut b).await, Vec::<u64>::new());
    send(&mut a, bob, "m4").await;
    let (mut b2, _) = login_raw(&addr, "bob", "phone").await;
    assert_eq!(synced(&mut b2).await, [4]);
}

/// A `client_msg_id` is the client's own 64-bit value: one past 2^63 is stored and handed
/// back as sent, and a resend of it is found as a duplicate.
#[tokio::test]
async fn a_client_msg_id_past_2_63_round_trips_and_dedupes() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    let resend = || {
        RequestKind::SendMessage(pb::SendMessage {
            to_user: bob,
            client_msg_id: u64::MAX,
            text: "once".into(),
            ..Default::default()
        })
    };
    let ResponseResult::Send(first) = a.call(resend()).await else {
        panic!("send failed")
    };
    let ResponseResult::Send(again) = a.call(resend()).await else {
        panic!("resend failed")
    };
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.message_id, first.message_id);
    let (mut b, _) = login_raw(&addr, "bob", "phone").await;
    let ResponseResult::Sync(page) = b.call(RequestKind::Sync(pb::Sync::default())).await else {
        panic!("sync failed")
    };
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].client_msg_id, u64::MAX);
}

/// Ids past 2^63 name nothing the server handed out and are refused, not wrapped.
#[tokio::test]
async fn ids_past_2_63_are_refused() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    assert!(invalid(&a.call(message(u64::MAX, 0, "hi")).await));
    let history = a
        .call(RequestKind::History(pb::History {
            conversation_id: 1 << 63,
            ..Default::default()
        }))
        .await;
    assert!(invalid(&history));
    let presence = a
        .call(RequestKind::Presence(pb::GetPresence { user_id: u64::MAX }))
        .await;
    assert!(invalid(&presence));
}

/// A user search for text that normalises to nothing would list every user: refused.
#[tokio::test]
async fn a_user_search_for_nothing_is_refused() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    for query in ["\0", " \u{1} ", "\u{1b}", "\u{3000}"] {
        let res = a
            .call(RequestKind::SearchUsers(pb::SearchUsers {
                query: query.into(),
                ..Default::default()
            }))
            .await;
        assert!(invalid(&res), "{query:?}: {res:?}");
    }
    let res = a
        .call(RequestKind::SearchUsers(pb::SearchUsers {
            query: "bob".into(),
            ..Default::default()
        }))
        .await;
    assert!(matches!(res, ResponseResult::SearchUsers(l) if l.users.len() == 1));
}

/// Nicknames, device names and friend-request notes follow the same rules wherever they are
/// set: no NUL, no ESC, and no right-to-left override in names.
#[tokio::test]
async fn text_fields_refuse_control_characters_and_bidi_overrides() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let bad_names = ["ni\0ck", "ni\u{1b}[31mck", "evil\u{202E}gpj.exe"];
    let mut r = Raw::greeted(&addr).await;
    for (i, nickname) in bad_names.iter().enumerate() {
        let res = r
            .call(RequestKind::Register(pb::Register {
                username: format!("user{i}"),
                password: "password123".into(),
                nickname: (*nickname).into(),
                ..Default::default()
            }))
            .await;
        assert!(invalid(&res), "register {nickname:?}: {res:?}");
    }
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    for nickname in bad_names {
        let res = r
            .call(RequestKind::Login(pb::Login {
                username: "alice".into(),
                password: "password123".into(),
                device: nickname.into(),
            }))
            .await;
        assert!(invalid(&res), "device {nickname:?}: {res:?}");
    }
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    for nickname in bad_names {
        let res = a
            .call(RequestKind::UpdateProfile(pb::UpdateProfile {
                nickname: Some(nickname.into()),
                ..Default::default()
            }))
            .await;
        assert!(invalid(&res), "update {nickname:?}: {res:?}");
    }
    for note in ["hi\0there", "hi\u{1b}]0;owned\u{7}"] {
        let res = a
            .call(RequestKind::FriendRequest(pb::SendFriendRequest {
                to_user: bob,
                message: note.into(),
            }))
            .await;
        assert!(invalid(&res), "note {note:?}: {res:?}");
    }
    let res = a
        .call(RequestKind::FriendRequest(pb::SendFriendRequest {
            to_user: bob,
            message: "hi, it's alice".into(),
        }))
        .await;
    assert!(matches!(res, ResponseResult::FriendRequest(_)), "{res:?}");
}

/// Registering without a nickname (the SDK's nickname is optional) uses the username.
#[tokio::test]
async fn register_without_a_nickname_uses_the_username() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let (c, _) = sdk::connect(&addr, "laptop").await;
    c.register("carol", sdk::PASSWORD, "").await.unwrap();
    c.register("dave", sdk::PASSWORD, "  ").await.unwrap();
    assert_eq!(
        code(c.register("erin", sdk::PASSWORD, "\0").await),
        ErrorCode::InvalidArgument
    );
    let session = c.login("carol", sdk::PASSWORD).await.unwrap();
    assert_eq!(session.profile.unwrap().nickname, "carol");
    assert_eq!(c.user_by_name("dave").await.unwrap().nickname, "dave");
    c.close().await;
}

/// A fresh data directory is 0700 and the database files in it, with their WAL and
/// shared-memory files, are 0600, whatever the umask: they hold every message and password
/// hash.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start_with(|c| c.data_dir = c.data_dir.join("data")).await;
    let addr = s.addr();
    register_raw(&addr, "alice").await;
    let bob = register_raw(&addr, "bob").await;
    let (mut a, _) = login_raw(&addr, "alice", "laptop").await;
    let _ = a.call(message(bob, 0, "hi")).await;
    let data = s.dir.path().join("data");
    let mode = |name: &str| {
        let p = if name.is_empty() {
            data.clone()
        } else {
            data.join(name)
        };
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for f in [
        "feige.db",
        "feige.db-wal",
        "feige.db-shm",
        "feige-search.db",
    ] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    for f in ["feige-search.db-wal", "feige-search.db-shm"] {
        if data.join(f).exists() {
            assert_eq!(mode(f), 0o600, "{f}");
        }
    }
}
