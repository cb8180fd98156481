//! Friend groups and friend suggestions through the Rust client SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::Event;
use feige_protocol::ErrorCode;
use feige_tests::sdk::{befriend, code, login, next_event, register};
use feige_tests::TestServer;

#[tokio::test]
async fn friends_move_between_named_groups() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let bob = register(&addr, "bob").await;
    let carol = register(&addr, "carol").await;
    let dave = register(&addr, "dave").await;
    let (a, _) = login(&addr, "alice", "a").await;
    let (_a2, mut a2_ev) = login(&addr, "alice", "a2").await;
    let (b, _) = login(&addr, "bob", "b").await;
    let (c, _) = login(&addr, "carol", "c").await;
    let (d, _) = login(&addr, "dave", "d").await;
    befriend(&a, &b).await;
    befriend(&a, &c).await;
    befriend(&a, &d).await;

    // All in the default group at first.
    let groups = a.friend_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "");
    assert_eq!(groups[0].friends.len(), 3);

    let f = a.set_friend_group(bob, " 同学 ").await.unwrap();
    assert_eq!((f.user.unwrap().user_id, f.group.as_str()), (bob, "同学"));
    let pushed = next_event(&mut a2_ev, |e| match e {
        Event::FriendUpdated(f) => Some(f),
        _ => None,
    })
    .await;
    assert_eq!(pushed.group, "同学");
    a.set_friend_group(carol, "work").await.unwrap();
    a.set_friend_group(dave, "work").await.unwrap();
    let groups = a.friend_groups().await.unwrap();
    let shape: Vec<(String, Vec<u64>)> = groups
        .iter()
        .map(|g| {
            let ids = g
                .friends
                .iter()
                .map(|f| f.user.as_ref().unwrap().user_id)
                .collect();
            (g.name.clone(), ids)
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("work".to_owned(), vec![carol, dave]),
            ("同学".to_owned(), vec![bob])
        ]
    );
    // The friend list carries the group; the other side's grouping is their own.
    let list = a.friends().await.unwrap();
    assert!(list.iter().any(|f| f.group == "同学"));
    assert!(b
        .friends()
        .await
        .unwrap()
        .iter()
        .all(|f| f.group.is_empty()));
    // Back to the default group.
    a.set_friend_group(dave, "").await.unwrap();
    assert_eq!(a.friend_groups().await.unwrap()[0].name, "");

    // Refusals.
    assert_eq!(
        code(b.set_friend_group(carol, "x").await),
        ErrorCode::NotFriends
    );
    assert_eq!(
        code(a.set_friend_group(bob, &"长".repeat(33)).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(a.set_friend_group(0, "x").await),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn suggestions_are_friends_of_friends_and_group_mates() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let names = ["mee", "ff1", "ff2", "xxx", "yyy", "zzz", "ggg"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(register(&addr, n).await);
    }
    let mut c = Vec::new();
    for n in names {
        c.push(login(&addr, n, "d").await.0);
    }
    let (me, f1, f2, x, y, z, g) = (&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6]);
    befriend(me, f1).await;
    befriend(me, f2).await;
    befriend(f1, x).await;
    befriend(f2, x).await;
    befriend(f1, y).await;
    befriend(f2, z).await;
    // A group of me, y and g, written beside the server as the groups requests would.
    let db = rusqlite::Connection::open(s.dir.path().join("feige.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(&format!(
        "INSERT INTO conversations(id, kind, created_at_ms) VALUES (777, 2, 0);
         INSERT INTO groups(conversation_id, name, owner_id, created_at_ms)
             VALUES (777, 'club', {me}, 0);
         INSERT INTO members(user_id, conversation_id, joined_at_ms)
             VALUES ({me}, 777, 0), ({y}, 777, 0), ({g}, 777, 0);",
        me = ids[0],
        y = ids[4],
        g = ids[6],
    ))
    .unwrap();

    let got = |list: Vec<feige_protocol::pb::FriendSuggestion>| -> Vec<(u64, u32, u32)> {
        list.iter()
            .map(|s| {
                let u = s.user.as_ref().unwrap().user_id;
                (u, s.mutual_friends, s.mutual_groups)
            })
            .collect()
    };
    // x: two mutual friends; y: one and a group; z: one; g: a group. Not me, f1, f2.
    assert_eq!(
        got(me.friend_suggestions(0).await.unwrap()),
        [
            (ids[3], 2, 0),
            (ids[4], 1, 1),
            (ids[5], 1, 0),
            (ids[6], 0, 1)
        ]
    );
    assert_eq!(
        got(me.friend_suggestions(1).await.unwrap()),
        [(ids[3], 2, 0)]
    );
    // Blocked (either way) and new friends drop out.
    me.block(ids[3]).await.unwrap();
    z.block(ids[0]).await.unwrap();
    befriend(me, g).await;
    assert_eq!(
        got(me.friend_suggestions(0).await.unwrap()),
        [(ids[4], 1, 1)]
    );
    // y's side: me (through ff1 and the group), xxx (through ff1), ggg (the group).
    assert_eq!(
        got(y.friend_suggestions(0).await.unwrap()),
        [(ids[0], 1, 1), (ids[3], 1, 0), (ids[6], 0, 1)]
    );
    let _ = (f1, x);
}
