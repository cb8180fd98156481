//! Profiles and password changes, user search, presence (including dropped and silent
//! connections) and what a request before login gets, through the Rust client SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::Event;
use feige_protocol::{pb, Body, ErrorCode, RequestKind};
use feige_tests::sdk::{
    befriend, code, connect, is_presence, login, next_event, next_presence, no_event_within,
    register, uid, PASSWORD,
};
use feige_tests::{login_raw, TestServer};

/// Sends `kind` on a raw connection and returns the payload bytes of its response frame.
async fn raw_response_bytes(r: &mut feige_tests::Raw, kind: RequestKind) -> Vec<u8> {
    let id = r.send(kind).await;
    r.frame_bytes(|env| env.request_id == id && matches!(env.body, Some(Body::Response(_))))
        .await
}

#[tokio::test]
async fn profiles_update_view_and_never_leak_private_fields() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (alice, _ev) = login(&addr, "alice", "laptop").await;
    let p = alice
        .update_profile(pb::UpdateProfile {
            nickname: Some(" 爱丽丝 ".into()),
            signature: Some("飞鸽传书 / carrier pigeon".into()),
            avatar: Some("file-42".into()),
            phone: Some("+86 138-0013-8000".into()),
            email: Some("alice@example.com".into()),
        })
        .await
        .unwrap();
    assert_eq!(p.nickname, "爱丽丝");
    assert_eq!(p.signature, "飞鸽传书 / carrier pigeon");
    assert_eq!(p.avatar, "file-42");
    assert_eq!(p.phone, "+86 138-0013-8000");
    assert_eq!(p.email, "alice@example.com");
    assert_eq!(alice.whoami().await.unwrap(), p);
    // Unset fields stay; "" clears.
    let p2 = alice
        .update_profile(pb::UpdateProfile {
            signature: Some("busy".into()),
            phone: Some(String::new()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (
            p2.nickname.as_str(),
            p2.signature.as_str(),
            p2.phone.as_str()
        ),
        ("爱丽丝", "busy", "")
    );
    assert_eq!(p2.email, "alice@example.com");
    for bad in [
        pb::UpdateProfile {
            nickname: Some("  ".into()),
            ..Default::default()
        },
        pb::UpdateProfile {
            email: Some("not-an-address".into()),
            ..Default::default()
        },
        pb::UpdateProfile {
            phone: Some("call me".into()),
            ..Default::default()
        },
        pb::UpdateProfile {
            signature: Some("x".repeat(257)),
            ..Default::default()
        },
        pb::UpdateProfile {
            avatar: Some("has spaces".into()),
            ..Default::default()
        },
    ] {
        assert_eq!(
            code(alice.update_profile(bad).await),
            ErrorCode::InvalidArgument
        );
    }
    assert_eq!(
        alice.whoami().await.unwrap(),
        p2,
        "refused updates change nothing"
    );
    // A new login sees the stored profile.
    let (again, _e) = login(&addr, "alice", "phone").await;
    assert_eq!(again.session().unwrap().profile.unwrap(), p2);

    // bob sees the public part only.
    let (bob, _bev) = login(&addr, "bob", "desk").await;
    let public = bob.user(alice_id).await.unwrap();
    assert_eq!(public.nickname, "爱丽丝");
    assert_eq!(public.signature, "busy");
    assert_eq!(public.avatar, "file-42");
    assert_eq!(bob.user_by_name("ALICE").await.unwrap(), public);
    assert_eq!(code(bob.user(999_999).await), ErrorCode::NotFound);
    assert_eq!(code(bob.user_by_name("nobody").await), ErrorCode::NotFound);

    // On the wire: nothing private in the bytes bob receives.
    alice
        .update_profile(pb::UpdateProfile {
            phone: Some("13800138000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (mut raw, _) = login_raw(&addr, "bob", "raw").await;
    for kind in [
        RequestKind::GetUser(pb::GetUser {
            user_id: alice_id,
            ..Default::default()
        }),
        RequestKind::SearchUsers(pb::SearchUsers {
            query: "爱丽".into(),
            ..Default::default()
        }),
    ] {
        let bytes = raw_response_bytes(&mut raw, kind).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("爱丽丝"), "the answer is about alice");
        assert!(!text.contains("alice@example.com"), "e-mail leaked: {text}");
        assert!(!text.contains("13800138000"), "phone leaked: {text}");
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn changing_the_password_revokes_the_other_sessions() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let (laptop, _lev) = login(&addr, "alice", "laptop").await;
    let (phone, mut phone_ev) = login(&addr, "alice", "phone").await;
    let phone_token = phone.session().unwrap().token;
    assert_eq!(
        code(
            laptop
                .change_password("wrong password", "brand new pw")
                .await
        ),
        ErrorCode::BadCredentials
    );
    assert_eq!(
        code(laptop.change_password(PASSWORD, "short").await),
        ErrorCode::InvalidArgument
    );
    let revoked = laptop
        .change_password(PASSWORD, "brand new pw")
        .await
        .unwrap();
    assert_eq!(revoked, 1, "the phone's token");
    let kicked = next_event(&mut phone_ev, |e| match e {
        Event::Kicked { code, .. } => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(kicked, ErrorCode::InvalidToken);
    let (c, _e) = connect(&addr, "phone").await;
    assert_eq!(code(c.resume(&phone_token).await), ErrorCode::InvalidToken);
    assert_eq!(
        code(c.login("alice", PASSWORD).await),
        ErrorCode::BadCredentials
    );
    c.login("alice", "brand new pw").await.unwrap();
    // The session that changed it goes on.
    assert_eq!(laptop.whoami().await.unwrap().username, "alice");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn user_search_is_fuzzy_in_chinese_and_english_and_paged() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let (setup, _e) = connect(&addr, "setup").await;
    for (name, nick) in [
        ("zhang_wei", "张伟"),
        ("zhangsan", "张三"),
        ("lisi", "李四"),
        ("wei_lee", "Wei Lee"),
        ("xiaowei", "小伟"),
        ("searcher", "Searcher"),
    ] {
        setup.register(name, PASSWORD, nick).await.unwrap();
    }
    let (me, _ev) = login(&addr, "searcher", "d").await;
    let names =
        |l: &pb::UserList| -> Vec<String> { l.users.iter().map(|u| u.username.clone()).collect() };
    // Prefix, shorter usernames first.
    let r = me.search_users("zhang", 0, 0).await.unwrap();
    assert_eq!(names(&r), ["zhangsan", "zhang_wei"]);
    // Chinese prefix and substring.
    assert_eq!(
        names(&me.search_users("张", 0, 0).await.unwrap()),
        ["zhangsan", "zhang_wei"]
    );
    let r = me.search_users("伟", 0, 0).await.unwrap();
    assert_eq!(names(&r), ["xiaowei", "zhang_wei"]);
    // Case-insensitive; the username prefix ranks above substrings.
    let r = me.search_users("WEI", 0, 0).await.unwrap();
    assert_eq!(names(&r), ["wei_lee", "xiaowei", "zhang_wei"]);
    // An exact match first.
    assert_eq!(
        names(&me.search_users("lisi", 0, 0).await.unwrap()),
        ["lisi"]
    );
    assert!(me
        .search_users("nobody", 0, 0)
        .await
        .unwrap()
        .users
        .is_empty());
    // Pages of 2 cover every match once.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = me.search_users("i", 2, offset).await.unwrap();
        assert!(page.users.len() <= 2);
        offset += page.users.len() as u32;
        seen.extend(names(&page));
        if !page.has_more {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no duplicates across pages");
    assert_eq!(sorted, ["lisi", "wei_lee", "xiaowei", "zhang_wei"]);
    assert_eq!(
        code(me.search_users("  ", 0, 0).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(me.search_users(&"x".repeat(65), 0, 0).await),
        ErrorCode::InvalidArgument
    );
    // Someone who blocked the searcher is not found.
    let (lisi, _l) = login(&addr, "lisi", "d").await;
    lisi.block(uid(&me)).await.unwrap();
    assert!(me
        .search_users("lisi", 0, 0)
        .await
        .unwrap()
        .users
        .is_empty());
    s.handle.shutdown().await;
}

#[tokio::test]
async fn presence_follows_first_and_last_device_and_dropped_connections() {
    // Idle timeout = 1.5 x 1 s; the SDK pings every 500 ms, a raw connection does not. (At
    // 300 ms a loaded machine could stall the SDK's own pings past the timeout, and the
    // test lost bob's connection and the presence pushes on it.)
    let s = TestServer::start_with(|c| c.heartbeat_ms = 1000).await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (a1, _e) = login(&addr, "alice", "setup").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (carol, mut carol_ev) = login(&addr, "carol", "c").await;
    befriend(&a1, &bob).await;
    a1.close().await;
    assert!(!next_presence(&mut bob_ev, alice_id).await);
    assert!(!bob.presence(alice_id).await.unwrap());
    assert_eq!(code(carol.presence(alice_id).await), ErrorCode::Forbidden);
    assert!(bob.presence(uid(&bob)).await.unwrap(), "oneself");

    // First device: online; second device: nothing new; last one gone: offline.
    let (laptop, _l) = login(&addr, "alice", "laptop").await;
    assert!(next_presence(&mut bob_ev, alice_id).await);
    assert!(bob.presence(alice_id).await.unwrap());
    let (phone, _p) = login(&addr, "alice", "phone").await;
    no_event_within(&mut bob_ev, 300, is_presence(alice_id)).await;
    laptop.close().await;
    no_event_within(&mut bob_ev, 300, is_presence(alice_id)).await;
    assert!(bob.presence(alice_id).await.unwrap());
    phone.close().await;
    assert!(!next_presence(&mut bob_ev, alice_id).await);

    // A connection that is simply dropped (no logout, socket closed).
    let (raw, _) = login_raw(&addr, "alice", "raw").await;
    assert!(next_presence(&mut bob_ev, alice_id).await);
    drop(raw);
    assert!(!next_presence(&mut bob_ev, alice_id).await);

    // A connection that goes silent: dropped after the heartbeat timeout.
    let (silent, _) = login_raw(&addr, "alice", "silent").await;
    assert!(next_presence(&mut bob_ev, alice_id).await);
    let went = tokio::time::Instant::now();
    assert!(!next_presence(&mut bob_ev, alice_id).await);
    assert!(
        went.elapsed() >= Duration::from_millis(1000),
        "after the timeout"
    );
    assert!(!bob.presence(alice_id).await.unwrap());
    drop(silent);

    // carol, not a friend, heard nothing of it.
    no_event_within(&mut carol_ev, 100, is_presence(alice_id)).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn social_requests_need_a_login() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut r = feige_tests::Raw::greeted(&addr).await;
    for kind in [
        RequestKind::Friends(pb::ListFriends {}),
        RequestKind::SearchUsers(pb::SearchUsers {
            query: "a".into(),
            ..Default::default()
        }),
        RequestKind::Conversations(pb::ListConversations::default()),
    ] {
        let res = r.call(kind).await;
        assert_eq!(
            feige_tests::error_code(&res),
            Some(ErrorCode::NotLoggedIn),
            "{res:?}"
        );
    }
    s.handle.shutdown().await;
}

/// Reads frames from a raw connection until `pick` accepts one; returns its payload bytes.
#[tokio::test]
async fn profile_changes_reach_friends_and_own_devices_but_never_private_fields() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (a1, mut a1_ev) = login(&addr, "alice", "a1").await;
    let (a2, mut a2_ev) = login(&addr, "alice", "a2").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (_carol, mut carol_ev) = login(&addr, "carol", "c").await;
    befriend(&bob, &a1).await;
    let (mut bob_raw, _) = login_raw(&addr, "bob", "raw").await;
    let user_updated = |e| match e {
        Event::UserUpdated(u) => Some(u),
        _ => None,
    };
    let profile_updated = |e| match e {
        Event::ProfileUpdated(p) => Some(p),
        _ => None,
    };

    let phone = "+49 170 5551234";
    let mine = a1
        .update_profile(pb::UpdateProfile {
            nickname: Some("Änne".into()),
            signature: Some("im Urlaub".into()),
            avatar: Some("file-7".into()),
            phone: Some(phone.into()),
            email: Some("anne@example.org".into()),
        })
        .await
        .unwrap();
    // The other device gets the whole profile, and its session follows.
    assert_eq!(next_event(&mut a2_ev, profile_updated).await, mine);
    assert_eq!(a2.session().unwrap().profile.unwrap(), mine);
    // The friend gets the public part.
    let public = next_event(&mut bob_ev, user_updated).await;
    assert_eq!(
        public,
        pb::PublicProfile {
            user_id: alice_id,
            username: "alice".into(),
            nickname: "Änne".into(),
            signature: "im Urlaub".into(),
            avatar: "file-7".into(),
            closed: false,
        }
    );
    // On the wire too: the push to the friend carries no phone or e-mail.
    let bytes = bob_raw
        .frame_bytes(|env| {
            matches!(
                &env.body,
                Some(Body::Push(pb::Push {
                    kind: Some(feige_protocol::PushKind::UserUpdated(_))
                }))
            )
        })
        .await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("im Urlaub"), "the frame is the update");
    assert!(!text.contains("5551234") && !text.contains("anne@"));
    // Strangers and the acting device get nothing.
    no_event_within(&mut carol_ev, 200, user_updated).await;
    no_event_within(&mut a1_ev, 100, profile_updated).await;

    // A change of a private field reaches the user's own devices only.
    a1.update_profile(pb::UpdateProfile {
        phone: Some(String::new()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(next_event(&mut a2_ev, profile_updated).await.phone, "");
    no_event_within(&mut bob_ev, 200, user_updated).await;
    // Setting what is already there pushes nothing.
    a1.update_profile(pb::UpdateProfile {
        nickname: Some("Änne".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    no_event_within(&mut a2_ev, 200, profile_updated).await;
    no_event_within(&mut bob_ev, 100, user_updated).await;
    // A friend's chat list shows the new name without polling: and on asking, too.
    let convs = bob.conversations().await.unwrap();
    assert_eq!(convs[0].peer.as_ref().unwrap().nickname, "Änne");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn user_search_folds_case_beyond_ascii() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let (setup, _e) = connect(&addr, "setup").await;
    for (name, nick) in [
        ("anne", "änne"),
        ("oedipus", "ΟΔΟΣ"),
        ("ivan", "ИВАН"),
        ("searcher", "Searcher"),
    ] {
        setup.register(name, PASSWORD, nick).await.unwrap();
    }
    let (me, _ev) = login(&addr, "searcher", "d").await;
    let names =
        |l: pb::UserList| -> Vec<String> { l.users.into_iter().map(|u| u.username).collect() };
    assert_eq!(
        names(me.search_users("ÄNNE", 0, 0).await.unwrap()),
        ["anne"]
    );
    assert_eq!(names(me.search_users("Änn", 0, 0).await.unwrap()), ["anne"]);
    // Full-width letters (a CJK input method) and a decomposed Ä: NFKC makes them the same.
    assert_eq!(
        names(me.search_users("ＡＮＮＥ", 0, 0).await.unwrap()),
        ["anne"]
    );
    assert_eq!(
        names(me.search_users("A\u{308}NNE", 0, 0).await.unwrap()),
        ["anne"]
    );
    assert_eq!(
        names(me.search_users("иван", 0, 0).await.unwrap()),
        ["ivan"]
    );
    assert_eq!(
        names(me.search_users("οδος", 0, 0).await.unwrap()),
        ["oedipus"]
    );
    // A prefix of the nickname; diacritics are kept ("an" finds anne by the username only).
    assert_eq!(names(me.search_users("ÄN", 0, 0).await.unwrap()), ["anne"]);
    assert_eq!(
        names(me.search_users("ANNE", 0, 0).await.unwrap()),
        ["anne"]
    );
    // A changed nickname is found by its new key.
    let (anne, _a) = login(&addr, "anne", "d").await;
    anne.update_profile(pb::UpdateProfile {
        nickname: Some("ÉLODIE".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        names(me.search_users("élodie", 0, 0).await.unwrap()),
        ["anne"]
    );
    assert!(me
        .search_users("änne", 0, 0)
        .await
        .unwrap()
        .users
        .is_empty());
    s.handle.shutdown().await;
}
