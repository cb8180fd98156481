//! System notifications: notices from the admin API to one user, a group and everyone,
//! pushed to those online, listed with per-user read state; marking read; refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::{Event, Events};
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_tests::http::post;
use feige_tests::sdk::{befriend, code, login, next_event, register, uid};
use feige_tests::{error_code, login_raw, TestServer};
use serde_json::json;

const ADMIN: &str = "admin-token-for-the-tests-01";

async fn server() -> TestServer {
    TestServer::start_with(|c| c.admin_token = Some(ADMIN.into())).await
}

async fn pushed(events: &mut Events) -> pb::Notification {
    next_event(events, |e| match e {
        Event::Notification(n) => Some(n),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn notices_to_a_user_a_group_and_everyone() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, mut aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;

    // To one user.
    let body = json!({ "to": "user", "id": alice_id, "title": "Hi", "body": "just you" });
    let one = post(&http, "/admin/api/notices", Some(ADMIN), &body).await;
    assert_eq!(one.data()["recipients"], 1);
    let n = pushed(&mut aev).await;
    assert_eq!(
        (n.title.as_str(), n.body.as_str(), n.from),
        ("Hi", "just you", 0)
    );
    assert_eq!(n.id, one.data()["notice_id"]);

    // To a group's members.
    befriend(&alice, &bob).await;
    let group = alice.group_create("team", &[bob_id], false).await.unwrap();
    let body = json!({ "to": "group", "id": group.group_id, "title": "", "body": "team notice" });
    let to_group = post(&http, "/admin/api/notices", Some(ADMIN), &body).await;
    assert_eq!(to_group.data()["recipients"], 2);
    assert_eq!(pushed(&mut aev).await.body, "team notice");
    let bobs = pushed(&mut bev).await;
    assert_eq!(bobs.body, "team notice");

    // To everyone: one stored row; carol, offline now, finds it later.
    let body = json!({ "to": "all", "title": "Maintenance", "body": "tonight at 10" });
    let all = post(&http, "/admin/api/notices", Some(ADMIN), &body).await;
    assert_eq!(all.data()["recipients"], 3);
    assert_eq!(pushed(&mut aev).await.title, "Maintenance");
    assert_eq!(pushed(&mut bev).await.title, "Maintenance");
    let (carol, _cev) = login(&addr, "carol", "c").await;
    let list = carol.notifications(0, 0).await.unwrap();
    assert_eq!((list.notifications.len(), list.unread), (1, 1));
    assert_eq!(list.notifications[0].body, "tonight at 10");
    // A user registered after it does not see it.
    register(&addr, "dave").await;
    let (dave, _dev) = login(&addr, "dave", "d").await;
    assert!(dave
        .notifications(0, 0)
        .await
        .unwrap()
        .notifications
        .is_empty());

    // Read state is per user: alice reads one, then all; bob's stay unread.
    let list = alice.notifications(0, 0).await.unwrap();
    assert_eq!((list.notifications.len(), list.unread), (3, 3));
    let first = list.notifications[0].id;
    let ok = alice.mark_notification_read(first).await.unwrap();
    assert_eq!((ok.marked, ok.unread), (1, 2));
    assert_eq!(alice.mark_notification_read(first).await.unwrap().marked, 0);
    let list = alice.notifications(0, 0).await.unwrap();
    assert!(list.notifications[0].read && !list.notifications[1].read);
    // Paging: after the first id, one at a time.
    let page = alice.notifications(first, 1).await.unwrap();
    assert_eq!(page.notifications.len(), 1);
    assert!(page.has_more);
    let ok = alice.mark_notification_read(0).await.unwrap();
    assert_eq!((ok.marked, ok.unread), (2, 0));
    assert!(alice
        .notifications(0, 0)
        .await
        .unwrap()
        .notifications
        .iter()
        .all(|n| n.read));
    assert_eq!(bob.notifications(0, 0).await.unwrap().unread, 2);
    // Another user's notice is not the caller's.
    assert_eq!(
        code(
            carol
                .mark_notification_read(one.data()["notice_id"].as_u64().unwrap())
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(uid(&bob), bob_id);
    for c in [alice, bob, carol, dave] {
        c.close().await;
    }
}

#[tokio::test]
async fn refusals() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let alice_id = register(&addr, "alice").await;
    for (body, status) in [
        (json!({ "to": "user", "id": 987654, "body": "x" }), 404),
        (json!({ "to": "group", "id": 987654, "body": "x" }), 404),
        (json!({ "to": "user", "body": "x" }), 400),
        (json!({ "to": "room", "body": "x" }), 400),
        (json!({ "body": "x" }), 400),
        (json!({ "to": "user", "id": alice_id }), 400),
        (json!({ "to": "user", "id": alice_id, "body": "   " }), 400),
        (
            json!({ "to": "all", "title": "t".repeat(129), "body": "x" }),
            400,
        ),
    ] {
        let answer = post(&http, "/admin/api/notices", Some(ADMIN), &body).await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.body);
    }
    let (mut raw, _) = login_raw(&addr, "alice", "r").await;
    let neither = raw
        .call(RequestKind::NotificationRead(pb::MarkNotificationRead {
            id: 0,
            all: false,
        }))
        .await;
    assert_eq!(error_code(&neither), Some(ErrorCode::InvalidArgument));
    let unknown = raw
        .call(RequestKind::NotificationRead(pb::MarkNotificationRead {
            id: 42,
            all: false,
        }))
        .await;
    assert_eq!(error_code(&unknown), Some(ErrorCode::NotFound));
    let too_big = raw
        .call(RequestKind::Notifications(pb::ListNotifications {
            after_id: u64::MAX,
            limit: 0,
        }))
        .await;
    assert_eq!(error_code(&too_big), Some(ErrorCode::InvalidArgument));
    let mut fresh = feige_tests::Raw::greeted(&addr).await;
    let before_login = fresh
        .call(RequestKind::Notifications(pb::ListNotifications::default()))
        .await;
    assert_eq!(error_code(&before_login), Some(ErrorCode::NotLoggedIn));
}

/// Over the WebSocket gateway: the `notification` push, the `notifications` and
/// `notification_read` commands, the connection listed as `ws`, and an admin's kick.
#[tokio::test]
async fn over_the_websocket_gateway() {
    use feige_tests::http::get;
    use feige_tests::ws::Ws;
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let alice_id = register(&addr, "alice").await;
    let (mut ws, _) = Ws::login(&http, "alice", feige_tests::sdk::PASSWORD).await;
    let conns = get(&http, "/admin/api/connections", Some(ADMIN)).await;
    assert_eq!(conns.data()["connections"][0]["transport"], "ws");
    assert_eq!(conns.data()["connections"][0]["user_id"], alice_id);

    let body = json!({ "to": "user", "id": alice_id, "title": "T", "body": "over ws" });
    post(&http, "/admin/api/notices", Some(ADMIN), &body)
        .await
        .data();
    let push = ws.push().await;
    assert_eq!(
        (push["type"].as_str(), push["body"].as_str()),
        (Some("notification"), Some("over ws"))
    );
    let list = ws.call("notifications", json!({})).await;
    let data = &list["response"]["data"];
    assert_eq!(data["unread"], 1);
    assert_eq!(data["notifications"][0]["title"], "T");
    let id = data["notifications"][0]["id"].as_str().unwrap().to_owned();
    let read = ws.call("notification_read", json!({ "id": id })).await;
    assert_eq!(read["response"]["data"]["marked"], 1);
    let refused = ws.call("notification_read", json!({})).await;
    assert_eq!(refused["response"]["code"], 400);

    let conn_id = conns.data()["connections"][0]["conn_id"].clone();
    let kick = json!({ "conn_id": conn_id, "reason": "bye" });
    assert_eq!(
        post(&http, "/admin/api/kick", Some(ADMIN), &kick)
            .await
            .data()["kicked"],
        1
    );
    let kicked = ws.push().await;
    assert_eq!(kicked["type"], "kicked");
    assert_eq!(
        (kicked["code"].as_str(), kicked["reason"].as_str()),
        (Some("KICKED_BY_ADMIN"), Some("bye"))
    );
    ws.closed().await;
}
