//! The server-to-server HTTP API: the API token, room lists and presence, a notice to one
//! user, a room message to everyone (once per msgId), and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::Event;
use feige_protocol::pb;
use feige_tests::http::{get, post, request, Body};
use feige_tests::sdk::{login, next_event, no_event_within, register};
use feige_tests::TestServer;
use serde_json::json;

const API: &str = "api-token-for-the-tests-0001";
const ADMIN: &str = "admin-token-for-the-tests-01";

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.api_token = Some(API.into());
        c.admin_token = Some(ADMIN.into());
    })
    .await
}

fn room_message(e: Event) -> Option<pb::RoomMessage> {
    match e {
        Event::RoomMessage(m) => Some(m),
        _ => None,
    }
}

#[tokio::test]
async fn tokens_are_checked_first() {
    let s = server().await;
    let http = s.http_addr();
    for path in [
        "/user/list?appId=101",
        "/user/online?appId=101&userId=1",
        "/user/sendMessage?appId=101&userId=1&message=hi",
        "/user/sendMessageAll?appId=101&msgId=1&message=hi",
    ] {
        let none = get(&http, path, None).await;
        assert_eq!(none.status, 401, "{path}: {:?}", none.body);
        assert_eq!(none.body["code"], 401);
        assert_eq!(
            get(&http, path, Some("wrong-token-0123456789"))
                .await
                .status,
            401
        );
        // The admin token is not the API token.
        assert_eq!(get(&http, path, Some(ADMIN)).await.status, 401);
    }
    let off = TestServer::start().await;
    let answer = get(&off.http_addr(), "/user/list?appId=101", Some(API)).await;
    assert_eq!(
        answer.status, 403,
        "no api_token configured: {:?}",
        answer.body
    );
}

#[tokio::test]
async fn room_lists_and_presence() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let alice_id = register(&addr, "alice").await;
    let bob_id = register(&addr, "bob").await;
    let (alice, _aev) = login(&addr, "alice", "a").await;
    let (bob, _bev) = login(&addr, "bob", "b").await;
    alice.room_join(101).await.unwrap();
    bob.room_join(202).await.unwrap();

    let list = get(&http, "/user/list?appId=101", Some(API)).await;
    let data = list.data();
    assert_eq!(data["userCount"], 1);
    assert_eq!(data["userList"][0]["userId"], alice_id);
    assert_eq!(data["userList"][0]["username"], "alice");
    // POST with a form body, and with a JSON body.
    let form = request(
        &http,
        "POST",
        "/user/list",
        Some(API),
        Body::Form("appId=202"),
    )
    .await;
    assert_eq!(form.data()["userList"][0]["userId"], bob_id);
    let as_json = post(&http, "/user/list", Some(API), &json!({ "appId": 202 })).await;
    assert_eq!(as_json.data()["userCount"], 1);

    let path = format!("/user/online?appId=101&userId={alice_id}");
    let online = get(&http, &path, Some(API)).await;
    assert_eq!(online.data()["online"], true);
    assert_eq!(online.data()["userId"], alice_id);
    let path = format!("/user/online?appId=101&userId={bob_id}");
    assert_eq!(get(&http, &path, Some(API)).await.data()["online"], false);
    alice.room_leave(101).await.unwrap();
    // Nobody is in 101 any more: the room is unknown.
    assert_eq!(
        get(&http, "/user/list?appId=101", Some(API)).await.status,
        404
    );

    // Refusals: bad and missing parameters, unknown rooms and users.
    for (path, status) in [
        ("/user/list", 400),
        ("/user/list?appId=abc", 400),
        ("/user/list?appId=0", 400),
        ("/user/list?appId=9999", 404),
        ("/user/online?appId=202", 400),
        ("/user/online?appId=202&userId=987654", 404),
        ("/user/online?appId=9999&userId=1", 404),
    ] {
        let answer = get(&http, path, Some(API)).await;
        assert_eq!(answer.status, status, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["code"], status);
    }
    let broken = request(&http, "POST", "/user/list", Some(API), Body::Form("%")).await;
    assert_eq!(broken.status, 400);
    let not_object = post(&http, "/user/list", Some(API), &json!([1])).await;
    assert_eq!(not_object.status, 400);
    bob.close().await;
    alice.close().await;
}

#[tokio::test]
async fn send_message_is_a_stored_pushed_notification() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let bob_id = register(&addr, "bob").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    let path = format!("/user/sendMessage?appId=101&userId={bob_id}&message=hello%20bob");
    let sent = get(&http, &path, Some(API)).await;
    assert_eq!(sent.data()["sendResults"], true);
    let pushed = next_event(&mut bev, |e| match e {
        Event::Notification(n) => Some(n),
        _ => None,
    })
    .await;
    assert_eq!(
        (pushed.body.as_str(), pushed.from, pushed.read),
        ("hello bob", 0, false)
    );
    let list = bob.notifications(0, 0).await.unwrap();
    assert_eq!(list.unread, 1);
    assert_eq!(list.notifications[0].id, pushed.id);

    let body = json!({ "appId": "101", "userId": bob_id, "message": "second" });
    let sent = post(&http, "/user/sendMessage", Some(API), &body).await;
    assert_eq!(sent.data()["sendResults"], true);
    assert_eq!(bob.notifications(0, 0).await.unwrap().unread, 2);

    for (body, status) in [
        (
            json!({ "appId": 101, "userId": 987654, "message": "x" }),
            404,
        ),
        (json!({ "appId": 101, "userId": bob_id }), 400),
        (
            json!({ "appId": 101, "userId": bob_id, "message": "  " }),
            400,
        ),
        (json!({ "userId": bob_id, "message": "x" }), 400),
        (
            json!({ "appId": 101, "userId": "bob", "message": "x" }),
            400,
        ),
    ] {
        let answer = post(&http, "/user/sendMessage", Some(API), &body).await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.body);
    }
    bob.close().await;
}

#[tokio::test]
async fn send_message_all_reaches_the_room_once_per_msg_id() {
    let s = server().await;
    let (addr, http) = (s.addr(), s.http_addr());
    let alice_id = register(&addr, "alice").await;
    register(&addr, "bob").await;
    let (alice, mut aev) = login(&addr, "alice", "a").await;
    let (bob, mut bev) = login(&addr, "bob", "b").await;
    alice.room_join(101).await.unwrap();
    bob.room_join(101).await.unwrap();

    let path = "/user/sendMessageAll?appId=101&msgId=77&message=to%20all";
    let first = get(&http, path, Some(API)).await;
    assert_eq!(first.data()["sendResults"], true);
    assert_eq!(first.data()["duplicate"], false);
    for events in [&mut aev, &mut bev] {
        let m = next_event(events, room_message).await;
        assert_eq!((m.room, m.from_user, m.text.as_str()), (101, 0, "to all"));
        assert_eq!(m.client_msg_id, 77);
    }
    let again = get(&http, path, Some(API)).await;
    assert_eq!(again.data()["sendResults"], true);
    assert_eq!(again.data()["duplicate"], true);
    no_event_within(&mut aev, 300, room_message).await;
    // From a user: the same msgId is another message.
    let body = json!({ "appId": 101, "userId": alice_id, "msgId": 77, "message": "from alice" });
    let from_alice = post(&http, "/user/sendMessageAll", Some(API), &body).await;
    assert_eq!(from_alice.data()["duplicate"], false);
    let m = next_event(&mut bev, room_message).await;
    assert_eq!((m.from_user, m.text.as_str()), (alice_id, "from alice"));
    assert_eq!(
        alice.room_history(101, 10, 0).await.unwrap().messages.len(),
        2
    );

    for (body, status) in [
        (json!({ "appId": 9999, "msgId": 1, "message": "x" }), 404),
        (json!({ "appId": 101, "message": "x" }), 400),
        (json!({ "appId": 101, "msgId": 1 }), 400),
        (
            json!({ "appId": 101, "msgId": 1, "userId": 987654, "message": "x" }),
            404,
        ),
    ] {
        let answer = post(&http, "/user/sendMessageAll", Some(API), &body).await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.body);
    }
    alice.close().await;
    bob.close().await;
}
