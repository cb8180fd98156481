//! The rooms', red packets' and wallet's methods of `feige_call` against a real server, and
//! their events (`room_message`, `red_packet_grabbed`).

use serde_json::{json, Value};

use super::{creds, Server, C};
use crate::FeigeStatus;

/// A server where strangers may message each other, wallets start with 1,000 cents, and
/// "alice" is an admin.
fn server() -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(feige_tests::TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.wallet_initial_cents = 1_000;
        c.admins = vec!["alice".into()];
    }));
    Server {
        rt,
        server: Some(server),
    }
}

fn id_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_owned()
}

#[test]
fn rooms_red_packets_and_wallets_end_to_end() {
    let server = server();
    let addr = server.addr();
    let alice = C::connect(&addr);
    let bob = C::connect(&addr);
    alice.ok("register", creds("alice"));
    let b_id = id_of(&bob.ok("register", creds("bob")), "user_id");
    alice.ok("login", creds("alice"));
    bob.ok("login", creds("bob"));

    // Rooms: ids are decimal strings.
    alice.fails(
        "room_send",
        json!({ "room": "7", "text": "x" }),
        "NOT_IN_ROOM",
    );
    let joined = alice.ok("room_join", json!({ "room": "7" }));
    assert_eq!(joined, json!({ "room": "7", "member_count": 1 }));
    assert_eq!(bob.ok("room_join", json!({ "room": 7 }))["member_count"], 2);
    let members = alice.ok("room_members", json!({ "room": "7", "limit": 10 }));
    assert_eq!(members["count"], 2);
    assert_eq!(members["members"][1]["username"], "bob");
    let sent = alice.ok("room_send", json!({ "room": "7", "text": "大家好" }));
    let message_id = id_of(&sent, "message_id");
    let pushed = bob.push_of("room_message");
    assert_eq!(pushed["room"], "7");
    assert_eq!(pushed["message_id"], message_id.as_str());
    assert_eq!(pushed["text"], "大家好");
    let page = bob.ok("room_history", json!({ "room": "7", "limit": 5 }));
    assert_eq!(page["messages"][0]["message_id"], message_id.as_str());
    assert_eq!(page["has_more"], false);
    assert_eq!(bob.ok("room_leave", json!({ "room": "7" })), json!({}));
    bob.fails("room_history", json!({ "room": "7" }), "NOT_IN_ROOM");

    // Wallets and a red packet in the 1:1 conversation.
    assert_eq!(
        alice.ok("wallet", json!({})),
        json!({ "balance_cents": 1000 })
    );
    let dm = alice.ok("send_message", json!({ "to_user": b_id, "text": "hi" }));
    let conv = id_of(&dm, "conversation_id");
    bob.push_of("message");
    alice.fails(
        "red_packet_send",
        json!({ "conversation_id": conv, "total_cents": 5000, "count": 1 }),
        "INSUFFICIENT_FUNDS",
    );
    // Bad params are refused by feige_call itself.
    let bad = json!({ "conversation_id": conv, "total_cents": 10, "count": 1, "mode": "lucky" });
    let refused = alice.call("red_packet_send", &bad);
    assert_eq!(refused, Err(FeigeStatus::FEIGE_ERR_PARAMS as i32));
    let no_count = json!({ "conversation_id": conv, "total_cents": 10 });
    let refused = alice.call("red_packet_send", &no_count);
    assert_eq!(refused, Err(FeigeStatus::FEIGE_ERR_PARAMS as i32));
    let sent = alice.ok(
        "red_packet_send",
        json!({ "conversation_id": conv, "total_cents": 300, "count": 1, "mode": "equal",
                "greeting": "恭喜" }),
    );
    let packet = id_of(&sent, "packet_id");
    let m = bob.push_of("message");
    assert_eq!(m["kind"], "red_packet");
    assert_eq!(m["red_packet_id"], packet.as_str());
    assert_eq!(m["text"], "恭喜");
    let got = bob.ok("red_packet_grab", json!({ "packet_id": packet }));
    assert_eq!(got["amount_cents"], 300);
    let heard = alice.push_of("red_packet_grabbed");
    assert_eq!(heard["user_id"], b_id.as_str());
    assert_eq!(heard["amount_cents"], 300);
    bob.fails(
        "red_packet_grab",
        json!({ "packet_id": packet }),
        "ALREADY_GRABBED",
    );
    let info = alice.ok("red_packet_info", json!({ "packet_id": packet }));
    assert_eq!(info["total_cents"], 300);
    assert_eq!(info["count"], 1);
    assert_eq!(info["mode"], "equal");
    assert_eq!(
        info["grabs"],
        json!([{ "user_id": b_id, "amount_cents": 300,
        "grabbed_at": info["grabs"][0]["grabbed_at"] }])
    );
    assert_eq!(info["remaining_cents"], 0);
    assert_eq!(info["expired"], false);
    assert_eq!(bob.ok("wallet", json!({}))["balance_cents"], 1300);

    // Top-ups: admins only.
    bob.fails(
        "wallet_top_up",
        json!({ "user": b_id, "amount_cents": 1 }),
        "FORBIDDEN",
    );
    let topped = alice.ok(
        "wallet_top_up",
        json!({ "user": b_id, "amount_cents": 200 }),
    );
    assert_eq!(topped, json!({ "user_id": b_id, "balance_cents": 1500 }));
}
