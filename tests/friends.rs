//! Friends through the Rust client SDK: friend requests (online and offline), accept/reject,
//! remarks, delete, block, events on every device of both users, and the friends-only rule
//! for 1:1 messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::Event;
use feige_protocol::{pb, ErrorCode};
use feige_tests::sdk::{
    befriend, code, is_presence, login, next_event, next_message, next_presence, no_event_within,
    register,
};
use feige_tests::TestServer;

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
