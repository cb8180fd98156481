//! The social graph through the Rust client SDK: profiles and password changes, user search,
//! friend requests (online and offline), accept/reject, remarks, delete, block, the
//! friends-only rule for 1:1 messages, presence (including dropped and silent connections),
//! and the conversation list with exact unread counts synced across devices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::BytesMut;
use feige_client::{Client, Event};
use feige_protocol::{pb, Body, Envelope, ErrorCode, RequestKind};
use feige_tests::sdk::{
    befriend, code, connect, login, next_event, next_message, next_presence, no_event_within,
    register, PASSWORD,
};
use feige_tests::{login_raw, TestServer};
use tokio::io::AsyncReadExt;

fn uid(c: &Client) -> u64 {
    c.session().unwrap().user_id
}

fn is_presence(user: u64) -> impl FnMut(Event) -> Option<bool> {
    move |e| match e {
        Event::Presence { user_id, online } if user_id == user => Some(online),
        _ => None,
    }
}

/// Sends `kind` on a raw connection and returns the payload bytes of its response frame.
async fn raw_response_bytes(r: &mut feige_tests::Raw, kind: RequestKind) -> Vec<u8> {
    let id = r.send(kind).await;
    let mut buf = BytesMut::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while buf.len() >= 4 {
                let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if buf.len() < 4 + n {
                    break;
                }
                let payload = buf.split_to(4 + n).split_off(4).to_vec();
                let env: Envelope = prost::Message::decode(&payload[..]).unwrap();
                if env.request_id == id && matches!(env.body, Some(Body::Response(_))) {
                    return payload;
                }
            }
            let n = r.stream.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response");
        }
    })
    .await
    .expect("no response within 10 s")
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
async fn friend_request_accepted_online_opens_the_chat() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let carol_id = register(&addr, "carol").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (carol, mut carol_ev) = login(&addr, "carol", "c").await;

    // Friends only by default.
    assert_eq!(
        code(alice.send_text(bob_id, "hi stranger").await),
        ErrorCode::NotFriends
    );
    assert_eq!(
        code(alice.friend_request(alice_id, "me").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(alice.friend_request(999_999, "").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(alice.friend_request(bob_id, &"长".repeat(257)).await),
        ErrorCode::InvalidArgument
    );

    let sent = alice
        .friend_request(bob_id, "hi bob, alice here")
        .await
        .unwrap();
    assert!(!sent.became_friends);
    assert_eq!(
        code(alice.friend_request(bob_id, "again").await),
        ErrorCode::RequestPending
    );
    let pushed = next_event(&mut bob_ev, |e| match e {
        Event::FriendRequest(r) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(pushed.request_id, sent.request_id);
    assert_eq!(pushed.message, "hi bob, alice here");
    assert_eq!(pushed.from.as_ref().unwrap().user_id, alice_id);
    let incoming = bob.friend_requests().await.unwrap();
    assert_eq!(incoming.incoming, vec![pushed.clone()]);
    assert!(incoming.outgoing.is_empty());
    assert_eq!(
        alice.friend_requests().await.unwrap().outgoing,
        vec![pushed]
    );
    // Only the recipient may answer.
    assert_eq!(
        code(carol.respond_friend_request(sent.request_id, true).await),
        ErrorCode::NotFound
    );

    let answer = bob
        .respond_friend_request(sent.request_id, true)
        .await
        .unwrap();
    assert!(answer.accepted);
    let alice_as_friend = answer.friend.unwrap();
    assert_eq!(alice_as_friend.user.as_ref().unwrap().user_id, alice_id);
    assert!(alice_as_friend.online);
    let conv = alice_as_friend.conversation_id;
    assert_ne!(conv, 0, "accepting opens the conversation");
    let told = next_event(&mut alice_ev, |e| match e {
        Event::FriendResponse(r) => Some(r),
        _ => None,
    })
    .await;
    assert!(told.accepted);
    assert_eq!(told.user.as_ref().unwrap().user_id, bob_id);
    let bob_as_friend = told.friend.unwrap();
    assert_eq!(bob_as_friend.user.unwrap().user_id, bob_id);
    assert!(bob_as_friend.online);
    assert_eq!(bob_as_friend.conversation_id, conv);
    assert_eq!(
        code(bob.respond_friend_request(sent.request_id, true).await),
        ErrorCode::NotFound,
        "already answered"
    );
    assert!(bob.friend_requests().await.unwrap().incoming.is_empty());

    // The conversation is listed on both sides before any message.
    for c in [&alice, &bob] {
        let list = c.conversations().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].conversation_id, conv);
        assert!(list[0].last_message.is_none());
        assert_eq!(list[0].unread, 0);
    }
    let ok = alice.send_text(bob_id, "hello friend").await.unwrap();
    assert_eq!(ok.conversation_id, conv);
    assert_eq!(next_message(&mut bob_ev).await.text, "hello friend");

    // Friend lists, remarks (private to their owner), and errors.
    let f = alice.set_remark(bob_id, " Bobby ").await.unwrap();
    assert_eq!(f.remark, "Bobby");
    let list = alice.friends().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].remark, "Bobby");
    assert!(list[0].online);
    assert_eq!(list[0].user.as_ref().unwrap().username, "bob");
    let list = bob.friends().await.unwrap();
    assert_eq!(list[0].remark, "");
    assert_eq!(list[0].user.as_ref().unwrap().user_id, alice_id);
    assert_eq!(
        alice.conversations().await.unwrap()[0].remark,
        "Bobby",
        "the list shows the remark"
    );
    assert_eq!(
        code(alice.set_remark(carol_id, "x").await),
        ErrorCode::NotFriends
    );
    assert_eq!(
        code(alice.friend_request(bob_id, "").await),
        ErrorCode::AlreadyFriends
    );

    // Two requests crossing: the second accepts the first.
    let first = alice.friend_request(carol_id, "").await.unwrap();
    let _ = next_event(&mut carol_ev, |e| match e {
        Event::FriendRequest(r) => Some(r),
        _ => None,
    })
    .await;
    let second = carol.friend_request(alice_id, "").await.unwrap();
    assert!(second.became_friends);
    assert_eq!(second.request_id, first.request_id);
    assert_eq!(
        second.friend.unwrap().user.unwrap().user_id,
        alice_id,
        "carol's new friend"
    );
    let told = next_event(&mut alice_ev, |e| match e {
        Event::FriendResponse(r) => Some(r),
        _ => None,
    })
    .await;
    assert!(told.accepted);
    assert_eq!(told.request_id, first.request_id);
    assert_eq!(alice.friends().await.unwrap().len(), 2);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn friend_request_to_an_offline_user_waits_and_can_be_rejected() {
    // No cool-down after the rejection (tests/abuse.rs covers it).
    let s = TestServer::start_with(|c| c.friend_request_cooldown_ms = 0).await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    // bob is offline.
    let sent = alice.friend_request(bob_id, "remember me?").await.unwrap();
    let (bob, _bev) = login(&addr, "bob", "b").await;
    let pending = bob.friend_requests().await.unwrap();
    assert_eq!(pending.incoming.len(), 1);
    let r = &pending.incoming[0];
    assert_eq!(r.request_id, sent.request_id);
    assert_eq!(r.message, "remember me?");
    assert_eq!(r.from.as_ref().unwrap().user_id, alice_id);
    assert_eq!(r.to.as_ref().unwrap().user_id, bob_id);

    let answer = bob
        .respond_friend_request(sent.request_id, false)
        .await
        .unwrap();
    assert!(!answer.accepted);
    assert!(answer.friend.is_none());
    let told = next_event(&mut alice_ev, |e| match e {
        Event::FriendResponse(r) => Some(r),
        _ => None,
    })
    .await;
    assert!(!told.accepted);
    assert_eq!(told.request_id, sent.request_id);
    assert!(alice.friends().await.unwrap().is_empty());
    assert!(alice.friend_requests().await.unwrap().outgoing.is_empty());
    assert_eq!(
        code(bob.send_text(alice_id, "no").await),
        ErrorCode::NotFriends
    );
    // A rejected request may be sent again once the cool-down is over.
    alice.friend_request(bob_id, "please?").await.unwrap();

    // An accept while the requester is offline: they find the friend at their next login.
    alice.close().await;
    let again = bob.friend_requests().await.unwrap().incoming;
    bob.respond_friend_request(again[0].request_id, true)
        .await
        .unwrap();
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let friends = alice.friends().await.unwrap();
    assert_eq!(friends.len(), 1);
    assert!(friends[0].online, "bob is online");
    alice.send_text(bob_id, "thanks").await.unwrap();
    s.handle.shutdown().await;
}

#[tokio::test]
async fn delete_block_and_unblock() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, mut alice_ev) = login(&addr, "alice", "a").await;
    let (_alice2, mut alice2_ev) = login(&addr, "alice", "a2").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    befriend(&alice, &bob).await;

    alice.delete_friend(bob_id).await.unwrap();
    let removed = |who: u64| {
        move |e| match e {
            Event::FriendRemoved { user_id } if user_id == who => Some(()),
            _ => None,
        }
    };
    next_event(&mut bob_ev, removed(alice_id)).await;
    next_event(&mut alice2_ev, removed(bob_id)).await;
    no_event_within(&mut alice_ev, 200, removed(bob_id)).await;
    assert!(alice.friends().await.unwrap().is_empty());
    assert!(bob.friends().await.unwrap().is_empty());
    assert_eq!(
        code(bob.send_text(alice_id, "still there?").await),
        ErrorCode::NotFriends
    );
    assert_eq!(
        code(alice.delete_friend(bob_id).await),
        ErrorCode::NotFriends
    );
    // History stays readable and the conversation stays listed.
    assert_eq!(alice.conversations().await.unwrap().len(), 1);

    // Friends again, then bob blocks alice.
    befriend(&alice, &bob).await;
    bob.block(alice_id).await.unwrap();
    next_event(&mut alice_ev, removed(bob_id)).await;
    assert!(alice.friends().await.unwrap().is_empty());
    assert_eq!(
        code(alice.friend_request(bob_id, "why?").await),
        ErrorCode::Blocked
    );
    assert_eq!(
        code(alice.send_text(bob_id, "hello?").await),
        ErrorCode::Blocked
    );
    assert_eq!(
        code(bob.send_text(alice_id, "bye").await),
        ErrorCode::Blocked
    );
    assert_eq!(
        code(bob.friend_request(alice_id, "").await),
        ErrorCode::Blocked
    );
    assert_eq!(code(alice.presence(bob_id).await), ErrorCode::Forbidden);
    let blocked = bob.blocked().await.unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].user_id, alice_id);
    bob.block(alice_id).await.unwrap(); // twice is fine
    assert_eq!(code(bob.block(bob_id).await), ErrorCode::InvalidArgument);
    assert_eq!(code(bob.block(999_999).await), ErrorCode::NotFound);

    bob.unblock(alice_id).await.unwrap();
    assert_eq!(code(bob.unblock(alice_id).await), ErrorCode::NotFound);
    assert!(bob.blocked().await.unwrap().is_empty());
    // Unblocking does not restore the friendship; a new request does.
    assert_eq!(
        code(alice.send_text(bob_id, "hi").await),
        ErrorCode::NotFriends
    );
    let sent = alice
        .friend_request(bob_id, "friends again?")
        .await
        .unwrap();
    // A block withdraws pending requests.
    bob.block(alice_id).await.unwrap();
    assert!(bob.friend_requests().await.unwrap().incoming.is_empty());
    assert_eq!(
        code(bob.respond_friend_request(sent.request_id, true).await),
        ErrorCode::NotFound
    );
    s.handle.shutdown().await;
}

#[tokio::test]
async fn friend_events_reach_every_device_of_both_users() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (a1, mut a1_ev) = login(&addr, "alice", "a1").await;
    let (_a2, mut a2_ev) = login(&addr, "alice", "a2").await;
    let (b1, mut b1_ev) = login(&addr, "bob", "b1").await;
    let (_b2, mut b2_ev) = login(&addr, "bob", "b2").await;
    let request = |e| match e {
        Event::FriendRequest(r) => Some(r),
        _ => None,
    };
    let added = |e| match e {
        Event::FriendAdded(f) => Some(f.user.unwrap().user_id),
        _ => None,
    };
    let removed = |e| match e {
        Event::FriendRemoved { user_id } => Some(user_id),
        _ => None,
    };
    let sent = a1.friend_request(bob_id, "hi").await.unwrap();
    for ev in [&mut b1_ev, &mut b2_ev, &mut a2_ev] {
        let r = next_event(ev, request).await;
        assert_eq!(r.request_id, sent.request_id);
        assert_eq!(r.from.unwrap().user_id, alice_id);
    }
    no_event_within(&mut a1_ev, 200, request).await;

    b1.respond_friend_request(sent.request_id, true)
        .await
        .unwrap();
    // The requester hears the answer and gets the friend on each device.
    for ev in [&mut a1_ev, &mut a2_ev] {
        let r = next_event(ev, |e| match e {
            Event::FriendResponse(r) => Some(r),
            _ => None,
        })
        .await;
        assert!(r.accepted);
        assert_eq!(next_event(ev, added).await, bob_id);
    }
    // The accepter's other device gets the friend; the accepting one has its answer.
    assert_eq!(next_event(&mut b2_ev, added).await, alice_id);
    no_event_within(&mut b1_ev, 200, added).await;

    a1.delete_friend(bob_id).await.unwrap();
    assert_eq!(next_event(&mut b1_ev, removed).await, alice_id);
    assert_eq!(next_event(&mut b2_ev, removed).await, alice_id);
    assert_eq!(next_event(&mut a2_ev, removed).await, bob_id);
    no_event_within(&mut a1_ev, 200, removed).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn former_friends_learn_nothing_of_presence() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _a) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    befriend(&alice, &bob).await;
    alice.close().await;
    assert!(
        !next_presence(&mut bob_ev, alice_id).await,
        "a friend hears"
    );
    let (alice, _a) = login(&addr, "alice", "a").await;
    assert!(next_presence(&mut bob_ev, alice_id).await);
    alice.delete_friend(bob_id).await.unwrap();
    alice.close().await;
    let (alice, _a) = login(&addr, "alice", "a").await;
    no_event_within(&mut bob_ev, 300, is_presence(alice_id)).await;
    assert_eq!(code(bob.presence(alice_id).await), ErrorCode::Forbidden);
    assert_eq!(code(alice.presence(bob_id).await), ErrorCode::Forbidden);
    assert!(bob.friends().await.unwrap().is_empty());
    s.handle.shutdown().await;
}

#[tokio::test]
async fn with_dm_policy_anyone_strangers_talk_but_blocks_still_hold() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _a) = login(&addr, "alice", "a").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    alice.send_text(bob_id, "hi stranger").await.unwrap();
    assert_eq!(next_message(&mut bob_ev).await.text, "hi stranger");
    bob.block(alice_id).await.unwrap();
    assert_eq!(
        code(alice.send_text(bob_id, "hello?").await),
        ErrorCode::Blocked
    );
    // Also when addressed by conversation id.
    let conv = bob.conversations().await.unwrap()[0].conversation_id;
    let by_conv = alice
        .send(pb::SendMessage {
            conversation_id: conv,
            text: "by id".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(by_conv), ErrorCode::Blocked);
    bob.unblock(alice_id).await.unwrap();
    alice.send_text(bob_id, "back").await.unwrap();
    assert_eq!(next_message(&mut bob_ev).await.text, "back");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn presence_follows_first_and_last_device_and_dropped_connections() {
    // Idle timeout = 1.5 x 300 ms; the SDK pings every 150 ms, a raw connection does not.
    let s = TestServer::start_with(|c| c.heartbeat_ms = 300).await;
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
        went.elapsed() >= Duration::from_millis(300),
        "after the timeout"
    );
    assert!(!bob.presence(alice_id).await.unwrap());
    drop(silent);

    // carol, not a friend, heard nothing of it.
    no_event_within(&mut carol_ev, 100, is_presence(alice_id)).await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn conversation_list_counts_unread_exactly_and_syncs_reads_across_devices() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let carol_id = register(&addr, "carol").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "setup").await;
    let conv = befriend(&alice, &bob).await;
    bob.close().await;
    // bob is offline while alice writes.
    for i in 1..=5 {
        alice.send_text(bob_id, &format!("m{i}")).await.unwrap();
    }
    let (phone, _pev) = login(&addr, "bob", "phone").await;
    let (laptop, mut laptop_ev) = login(&addr, "bob", "laptop").await;
    let list = phone.conversations().await.unwrap();
    assert_eq!(list.len(), 1);
    let c = &list[0];
    assert_eq!(c.conversation_id, conv);
    assert_eq!(c.peer.as_ref().unwrap().username, "alice");
    assert_eq!(c.unread, 5);
    assert_eq!(c.read_seq, 0);
    let last = c.last_message.as_ref().unwrap();
    assert_eq!((last.text.as_str(), last.seq), ("m5", 5));
    assert_eq!(c.last_active_ms, last.sent_at_ms);

    // Read on the phone: the laptop hears of it and lists the same count.
    let pos = phone.mark_read(conv, 3).await.unwrap();
    assert_eq!((pos.seq, pos.unread), (3, 2));
    let synced = next_event(&mut laptop_ev, |e| match e {
        Event::ReadPosition(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(synced, pos);
    assert_eq!(laptop.conversations().await.unwrap()[0].unread, 2);

    // Own messages never count as unread.
    laptop
        .send_text(alice.session().unwrap().user_id, "reply")
        .await
        .unwrap();
    assert_eq!(phone.conversations().await.unwrap()[0].unread, 2);
    assert_eq!(alice.conversations().await.unwrap()[0].unread, 1);

    // Never backwards; 0 = everything; past the end = the end.
    assert_eq!(phone.mark_read(conv, 1).await.unwrap().seq, 3);
    let all = phone.mark_read(conv, 0).await.unwrap();
    assert_eq!((all.seq, all.unread), (6, 0));
    assert_eq!(phone.mark_read(conv, 100).await.unwrap().seq, 6);

    // Offline again: the count is exact at the next login.
    phone.close().await;
    laptop.close().await;
    alice.send_text(bob_id, "m7").await.unwrap();
    alice.send_text(bob_id, "m8").await.unwrap();
    let (bob2, _e) = login(&addr, "bob", "tablet").await;
    let c = &bob2.conversations().await.unwrap()[0];
    assert_eq!((c.unread, c.read_seq), (2, 6));
    assert_eq!(c.last_message.as_ref().unwrap().text, "m8");

    // Most recently active first.
    let (carol, _c) = login(&addr, "carol", "c").await;
    let carol_conv = befriend(&carol, &bob2).await;
    carol.send_text(bob_id, "newest").await.unwrap();
    let list = bob2.conversations().await.unwrap();
    assert_eq!(
        list.iter().map(|c| c.conversation_id).collect::<Vec<_>>(),
        [carol_conv, conv]
    );
    assert_eq!(list[0].peer.as_ref().unwrap().user_id, carol_id);

    assert_eq!(code(carol.mark_read(conv, 0).await), ErrorCode::Forbidden);
    assert_eq!(
        code(carol.mark_read(0, 0).await),
        ErrorCode::InvalidArgument
    );
    s.handle.shutdown().await;
}

/// Requests that need a session are refused before login, like the others.
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
async fn raw_frame_bytes(r: &mut feige_tests::Raw, pick: impl Fn(&Envelope) -> bool) -> Vec<u8> {
    let mut buf = BytesMut::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while buf.len() >= 4 {
                let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if buf.len() < 4 + n {
                    break;
                }
                let payload = buf.split_to(4 + n).split_off(4).to_vec();
                let env: Envelope = prost::Message::decode(&payload[..]).unwrap();
                if pick(&env) {
                    return payload;
                }
            }
            let n = r.stream.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the frame");
        }
    })
    .await
    .expect("no such frame within 10 s")
}

#[tokio::test]
async fn own_devices_follow_rejects_remarks_deletes_blocks_and_unblocks() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let carol_id = register(&addr, "carol").await;
    let (a1, mut a1_ev) = login(&addr, "alice", "a1").await;
    let (_a2, mut a2_ev) = login(&addr, "alice", "a2").await;
    let (bob, mut bob_ev) = login(&addr, "bob", "b").await;
    let (carol, _carol_ev) = login(&addr, "carol", "c").await;
    let answered = |e| match e {
        Event::FriendRequestAnswered(r) => Some(r),
        _ => None,
    };

    // A rejection on a1: a2 drops the request from its pending list; bob hears the answer.
    let sent = bob.friend_request(alice_id, "hi").await.unwrap();
    a1.respond_friend_request(sent.request_id, false)
        .await
        .unwrap();
    let r = next_event(&mut a2_ev, answered).await;
    assert_eq!(r.request_id, sent.request_id);
    assert!(!r.accepted);
    assert_eq!(r.user.unwrap().user_id, bob_id, "user is the requester");
    assert!(r.friend.is_none());
    let theirs = next_event(&mut bob_ev, |e| match e {
        Event::FriendResponse(r) => Some(r),
        _ => None,
    })
    .await;
    assert!(!theirs.accepted);
    no_event_within(&mut bob_ev, 100, answered).await;

    // An acceptance on a1: a2 gets the answer, then the new friend.
    let sent = carol.friend_request(alice_id, "").await.unwrap();
    a1.respond_friend_request(sent.request_id, true)
        .await
        .unwrap();
    let r = next_event(&mut a2_ev, answered).await;
    assert!(r.accepted);
    assert_eq!(r.user.unwrap().user_id, carol_id);
    assert_eq!(r.friend.unwrap().user.unwrap().user_id, carol_id);
    let added = next_event(&mut a2_ev, |e| match e {
        Event::FriendAdded(f) => Some(f),
        _ => None,
    })
    .await;
    assert_eq!(added.user.unwrap().user_id, carol_id);

    // A remark set on a1 reaches a2, not carol.
    a1.set_remark(carol_id, "小红").await.unwrap();
    let f = next_event(&mut a2_ev, |e| match e {
        Event::FriendUpdated(f) => Some(f),
        _ => None,
    })
    .await;
    assert_eq!(
        (f.remark.as_str(), f.user.unwrap().user_id),
        ("小红", carol_id)
    );

    // Delete on a1: a2 hears it.
    a1.delete_friend(carol_id).await.unwrap();
    let removed = next_event(&mut a2_ev, |e| match e {
        Event::FriendRemoved { user_id } => Some(user_id),
        _ => None,
    })
    .await;
    assert_eq!(removed, carol_id);

    // Block and unblock on a1: a2's blocked list follows.
    let block = |e| match e {
        Event::BlockChanged { user, blocked } => Some((user.user_id, user.username, blocked)),
        _ => None,
    };
    a1.block(bob_id).await.unwrap();
    assert_eq!(
        next_event(&mut a2_ev, block).await,
        (bob_id, "bob".to_owned(), true)
    );
    a1.unblock(bob_id).await.unwrap();
    assert_eq!(
        next_event(&mut a2_ev, block).await,
        (bob_id, "bob".to_owned(), false)
    );
    // The blocked user learns nothing of it.
    no_event_within(&mut bob_ev, 100, block).await;

    // The device that acted got its answers, not pushes about its own actions.
    no_event_within(&mut a1_ev, 200, |e| match e {
        e @ (Event::FriendRequestAnswered(_)
        | Event::FriendUpdated(_)
        | Event::FriendRemoved { .. }
        | Event::BlockChanged { .. }) => Some(e),
        _ => None,
    })
    .await;
    s.handle.shutdown().await;
}

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
        }
    );
    // On the wire too: the push to the friend carries no phone or e-mail.
    let bytes = raw_frame_bytes(&mut bob_raw, |env| {
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
async fn conversation_list_comes_in_pages_newest_first() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let names = ["bob", "carol", "dave", "erin", "frank"];
    let mut peers = Vec::new();
    for name in names {
        register(&addr, name).await;
        peers.push(login(&addr, name, "d").await);
    }
    let (alice, _ev) = login(&addr, "alice", "a").await;
    let mut convs = Vec::new();
    for (peer, _) in &peers {
        convs.push(befriend(&alice, peer).await);
    }
    // Activity, newest first: carol's message, alice's to bob, then the conversations without
    // messages by when they were opened (frank, erin, dave).
    tokio::time::sleep(Duration::from_millis(5)).await;
    alice.send_text(uid(&peers[0].0), "to bob").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    peers[1]
        .0
        .send_text(uid(&alice), "from carol")
        .await
        .unwrap();
    let all = alice.conversations().await.unwrap();
    let order: Vec<u64> = all.iter().map(|c| c.conversation_id).collect();
    assert_eq!(order, [convs[1], convs[0], convs[4], convs[3], convs[2]]);
    assert_eq!(all[0].last_message.as_ref().unwrap().text, "from carol");

    // Pages of 2 walk the same list, each once.
    let mut paged = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = alice.conversations_page(2, before).await.unwrap();
        pages += 1;
        assert!(page.conversations.len() <= 2);
        paged.extend(page.conversations.iter().map(|c| c.conversation_id));
        let last = page.conversations.last().unwrap();
        before = Some((last.last_active_ms, last.conversation_id));
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, order);
    // The old request (no paging fields) still answers everything at once.
    let (mut raw, _) = login_raw(&addr, "alice", "raw").await;
    match raw
        .call(RequestKind::Conversations(pb::ListConversations::default()))
        .await
    {
        feige_protocol::ResponseResult::Conversations(l) => {
            assert_eq!(l.conversations.len(), 5);
            assert!(!l.has_more);
        }
        other => panic!("{other:?}"),
    }
    // A page with an exact fit says no more follow.
    let page = alice.conversations_page(5, None).await.unwrap();
    assert_eq!((page.conversations.len(), page.has_more), (5, false));
    // A cursor id without its time is refused.
    let r = raw
        .call(RequestKind::Conversations(pb::ListConversations {
            limit: 2,
            before_active_ms: 0,
            before_id: convs[0],
        }))
        .await;
    assert_eq!(
        feige_tests::error_code(&r),
        Some(ErrorCode::InvalidArgument)
    );
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
