//! World rooms through the Rust client SDK: join, members with the count, broadcast, the
//! kept history, leaving (by request and by closing), and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::Event;
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_tests::sdk::{code, login, next_event, no_event_within, register, uid};
use feige_tests::{error_code, Raw, TestServer};

fn room_message(room: u64) -> impl FnMut(Event) -> Option<pb::RoomMessage> {
    move |e| match e {
        Event::RoomMessage(m) if m.room == room => Some(m),
        _ => None,
    }
}

#[tokio::test]
async fn members_hear_each_other_and_read_the_history() {
    let s = TestServer::start().await;
    let addr = s.addr();
    for name in ["alice", "bob", "carol"] {
        register(&addr, name).await;
    }
    let (alice, mut aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    let (bob2, mut bev2) = login(&addr, "bob", "b2").await;
    let (carol, mut cev) = login(&addr, "carol", "c").await;
    // Room ids are the client's: any u64 but 0.
    let room = u64::MAX - 7;
    assert_eq!(alice.room_join(room).await.unwrap().member_count, 1);
    assert_eq!(bob.room_join(room).await.unwrap().member_count, 2);
    // A second connection of a user counts once; joining again is a no-op.
    assert_eq!(bob2.room_join(room).await.unwrap().member_count, 2);
    assert_eq!(bob2.room_join(room).await.unwrap().member_count, 2);
    let list = carol.room_join(room).await.unwrap();
    assert_eq!((list.room, list.member_count), (room, 3));
    let members = alice.room_members(room, 0).await.unwrap();
    assert_eq!(members.count, 3);
    let names: Vec<_> = members
        .members
        .iter()
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(alice.room_members(room, 2).await.unwrap().members.len(), 2);

    let ack = alice.room_send(room, "大家好").await.unwrap();
    assert!(!ack.duplicate);
    for ev in [&mut bev, &mut bev2, &mut cev] {
        let m = next_event(ev, room_message(room)).await;
        assert_eq!(
            (m.message_id, m.from_user, m.text.as_str()),
            (ack.message_id, uid(&alice), "大家好")
        );
        assert_eq!(m.sent_at_ms, ack.sent_at_ms);
    }
    // The sending connection gets the ack, not the push; the user's other connection (bob2
    // for bob) gets it.
    bob.room_send(room, "hi").await.unwrap();
    assert_eq!(next_event(&mut bev2, room_message(room)).await.text, "hi");
    assert_eq!(next_event(&mut aev, room_message(room)).await.text, "hi");
    assert_eq!(next_event(&mut cev, room_message(room)).await.text, "hi");
    no_event_within(&mut bev, 200, room_message(room)).await;

    let page = carol.room_history(room, 0, 0).await.unwrap();
    let texts: Vec<_> = page.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hi", "大家好"]);
    assert!(!page.has_more);

    // Leaving: no more pushes, and the room's requests are refused.
    carol.room_leave(room).await.unwrap();
    carol.room_leave(room).await.unwrap();
    alice.room_send(room, "after").await.unwrap();
    no_event_within(&mut cev, 200, room_message(room)).await;
    assert_eq!(
        code(carol.room_history(room, 0, 0).await),
        ErrorCode::NotInRoom
    );
    assert_eq!(
        code(carol.room_members(room, 0).await),
        ErrorCode::NotInRoom
    );
    assert_eq!(code(carol.room_send(room, "x").await), ErrorCode::NotInRoom);
    assert_eq!(alice.room_members(room, 0).await.unwrap().count, 2);

    // A connection that closes leaves its rooms; bob is still in on his other connection.
    bob2.close().await;
    assert_eq!(alice.room_members(room, 0).await.unwrap().count, 2);
    bob.close().await;
    assert_eq!(count_becomes(&alice, room, 1).await, 1);
}

#[tokio::test]
async fn the_history_keeps_the_newest_pages_back_and_deduplicates() {
    let s = TestServer::start_with(|c| c.room_history = 5).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    alice.room_join(9).await.unwrap();
    bob.room_join(9).await.unwrap();
    alice.room_join(10).await.unwrap();
    alice.room_send(10, "elsewhere").await.unwrap();
    for i in 1..=8 {
        alice.room_send(9, &format!("m{i}")).await.unwrap();
    }
    let first = bob.room_history(9, 3, 0).await.unwrap();
    let texts: Vec<_> = first.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m8", "m7", "m6"]);
    assert!(first.has_more);
    let before = first.messages[2].message_id;
    let rest = bob.room_history(9, 10, before).await.unwrap();
    let texts: Vec<_> = rest.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m5", "m4"], "only the newest 5 are kept");
    assert!(!rest.has_more);

    // A resend with the same client id is the original, pushed to no one again.
    for _ in 0..8 {
        next_event(&mut bev, room_message(9)).await;
    }
    let msg = pb::RoomSend {
        room: 9,
        client_msg_id: 4242,
        text: "once".into(),
    };
    let ack = alice.room_send_with(msg.clone()).await.unwrap();
    assert!(!ack.duplicate);
    assert_eq!(next_event(&mut bev, room_message(9)).await.text, "once");
    let again = alice.room_send_with(msg).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message_id, ack.message_id);
    no_event_within(&mut bev, 200, room_message(9)).await;
    assert_eq!(bob.room_history(9, 0, 0).await.unwrap().messages.len(), 5);
}

#[tokio::test]
async fn refusals_name_the_rule() {
    let s = TestServer::start_with(|c| {
        c.max_rooms_per_connection = 2;
        c.max_room_connections = 2;
        c.max_text_len = 8;
    })
    .await;
    let addr = s.addr();
    for name in ["alice", "bob", "carol"] {
        register(&addr, name).await;
    }
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "b").await;
    let (carol, _cev) = login(&addr, "carol", "c").await;
    assert_eq!(code(alice.room_join(0).await), ErrorCode::InvalidArgument);
    assert_eq!(code(alice.room_send(1, "x").await), ErrorCode::NotInRoom);
    assert_eq!(
        code(alice.room_history(1, 0, 0).await),
        ErrorCode::NotInRoom
    );
    assert_eq!(code(alice.room_members(1, 0).await), ErrorCode::NotInRoom);
    alice.room_join(1).await.unwrap();
    alice.room_join(2).await.unwrap();
    assert_eq!(code(alice.room_join(3).await), ErrorCode::TooManyRooms);
    // Rejoining a room it is in is not a new room.
    alice.room_join(2).await.unwrap();
    bob.room_join(1).await.unwrap();
    assert_eq!(code(carol.room_join(1).await), ErrorCode::RoomFull);
    // After a leave there is room again.
    alice.room_leave(2).await.unwrap();
    alice.room_join(3).await.unwrap();
    assert_eq!(
        code(alice.room_send(1, "   ").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(alice.room_send(1, "too long!").await),
        ErrorCode::TooLarge
    );
    assert_eq!(
        code(alice.room_send(1, "a\u{7}").await),
        ErrorCode::InvalidArgument
    );

    // Before login, on the wire.
    let mut raw = Raw::greeted(&addr).await;
    let r = raw
        .call(RequestKind::RoomJoin(pb::RoomJoin { room: 1 }))
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::NotLoggedIn));
    let r = raw
        .call(RequestKind::RoomSend(pb::RoomSend {
            room: 1,
            client_msg_id: 0,
            text: "x".into(),
        }))
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::NotLoggedIn));
}

#[tokio::test]
async fn logging_out_leaves_the_rooms() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "b").await;
    alice.room_join(5).await.unwrap();
    bob.room_join(5).await.unwrap();
    bob.logout().await.unwrap();
    // Logged out, the connection is in no room and may not send to one.
    assert_eq!(alice.room_members(5, 0).await.unwrap().count, 1);
    assert_eq!(code(bob.room_send(5, "x").await), ErrorCode::NotLoggedIn);
}

/// A raw connection with a tiny receive buffer that never reads.
async fn stalled(addr: &str, name: &str) -> Raw {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr.parse().unwrap()).await.unwrap();
    let mut r = Raw::from_stream(stream);
    let hello = r
        .call(RequestKind::Hello(pb::Hello {
            major: 1,
            ..Default::default()
        }))
        .await;
    assert!(error_code(&hello).is_none(), "{hello:?}");
    let login = r
        .call(RequestKind::Login(pb::Login {
            username: name.into(),
            password: feige_tests::sdk::PASSWORD.into(),
            device: "stalled".into(),
        }))
        .await;
    assert!(error_code(&login).is_none(), "{login:?}");
    r
}

/// A member that never reads is dropped as a slow consumer once its output is full; the
/// sender and the other members go on, and the dropped connection leaves the room.
#[tokio::test]
async fn a_member_that_never_reads_is_dropped_and_nobody_waits() {
    let s = TestServer::start_with(|c| {
        c.max_frame_len = 64 * 1024;
        c.max_text_len = 16 * 1024;
        c.outbox_bytes = 256 * 1024;
    })
    .await;
    let addr = s.addr();
    for name in ["alice", "bob", "slow"] {
        register(&addr, name).await;
    }
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    let mut slow = stalled(&addr, "slow").await;
    let joined = slow
        .call(RequestKind::RoomJoin(pb::RoomJoin { room: 3 }))
        .await;
    assert!(error_code(&joined).is_none(), "{joined:?}");
    alice.room_join(3).await.unwrap();
    bob.room_join(3).await.unwrap();
    assert_eq!(alice.room_members(3, 0).await.unwrap().count, 3);
    let text = "x".repeat(16 * 1024 - 16);
    for i in 0..200 {
        alice.room_send(3, &format!("{i:05}{text}")).await.unwrap();
    }
    for i in 0..200 {
        let m = next_event(&mut bev, room_message(3)).await;
        assert!(m.text.starts_with(&format!("{i:05}")));
    }
    let frames = slow.expect_closed().await;
    let pushed = frames
        .iter()
        .filter(|f| {
            matches!(
                &f.body,
                Some(feige_protocol::Body::Push(pb::Push {
                    kind: Some(feige_protocol::PushKind::RoomMessage(_))
                }))
            )
        })
        .count();
    assert!(
        pushed < 200,
        "the stalled member was fed all {pushed} pushes"
    );
    assert_eq!(count_becomes(&alice, 3, 2).await, 2);
}

/// The room's user count once it is `want`, or what it is after a second.
async fn count_becomes(c: &feige_client::Client, room: u64, want: u32) -> u32 {
    let mut count = 0;
    for _ in 0..50 {
        count = c.room_members(room, 0).await.unwrap().count;
        if count == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    count
}
