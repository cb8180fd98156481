//! The receipts family's `feige_call` methods and events against a real server.

use feige_tests::DmPolicy;
use serde_json::json;

use super::{creds, Server, C};

#[test]
fn receipts_recall_friend_groups_and_suggestions() {
    let server = Server::start_with(DmPolicy::Friends);
    let addr = server.addr();
    let alice = C::connect(&addr);
    let bob = C::connect(&addr);
    let carol = C::connect(&addr);
    let mut ids = Vec::new();
    for (c, name) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        let id = c.ok("register", creds(name))["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        ids.push(id);
        c.ok("login", creds(name));
    }
    let (a_id, b_id, c_id) = (&ids[0], &ids[1], &ids[2]);
    for (asker, other, other_id) in [(&alice, &bob, b_id), (&carol, &bob, b_id)] {
        let sent = asker.ok("friend_request", json!({ "to_user": other_id }));
        other.ok(
            "friend_respond",
            json!({ "request_id": sent["request_id"], "accept": true }),
        );
    }
    let sent = alice.ok("send_message", json!({ "to_user": b_id, "text": "hello" }));
    let conv = sent["conversation_id"].as_str().unwrap().to_owned();
    let seq = sent["seq"].as_str().unwrap().to_owned();

    // bob's SDK receives and acks: alice hears it was delivered; then bob reads it.
    let delivered = alice.push_of("read_receipt");
    assert_eq!(delivered["conversation_id"], conv.as_str());
    assert_eq!(delivered["user_id"], b_id.as_str());
    assert_eq!(delivered["delivered_seq"], seq.as_str());
    bob.ok("mark_read", json!({ "conversation_id": conv, "seq": seq }));
    let read = alice.push_of("read_receipt");
    assert_eq!(read["read_seq"], seq.as_str());
    let r = alice.ok("receipts", json!({ "conversation_id": conv, "seq": seq }));
    assert_eq!(r["read_count"], 1);
    assert_eq!(r["unread_count"], 0);
    assert_eq!(r["readers"][0]["user_id"], b_id.as_str());
    assert_eq!(r["peer_read_seq"], seq.as_str());
    assert_eq!(r["peer_delivered_seq"], seq.as_str());
    carol.fails(
        "receipts",
        json!({ "conversation_id": conv, "seq": seq }),
        "FORBIDDEN",
    );

    // Recall: bob hears of it; history shows it as recalled.
    bob.fails(
        "recall",
        json!({ "conversation_id": conv, "seq": seq }),
        "FORBIDDEN",
    );
    assert_eq!(
        alice.ok("recall", json!({ "conversation_id": conv, "seq": seq })),
        json!({})
    );
    let pushed = bob.push_of("message_recalled");
    assert_eq!(pushed["seq"], seq.as_str());
    assert_eq!(pushed["recalled_by"], a_id.as_str());
    let listed = bob.ok("recalls", json!({}));
    assert_eq!(listed["has_more"], false);
    assert_eq!(listed["recalls"][0]["recall_id"], pushed["recall_id"]);
    assert_eq!(listed["recalls"][0]["message_id"], pushed["message_id"]);
    let after = pushed["recall_id"].clone();
    let none = bob.ok("recalls", json!({ "after": after, "limit": 10 }));
    assert_eq!(none["recalls"], json!([]));
    alice.fails(
        "recall",
        json!({ "conversation_id": conv, "seq": seq }),
        "ALREADY_RECALLED",
    );
    let h = bob.ok("history", json!({ "conversation_id": conv }));
    assert_eq!(h["messages"][0]["kind"], "recalled");
    assert_eq!(h["messages"][0]["text"], "");
    assert_eq!(h["messages"][0]["recalled_by"], a_id.as_str());

    // Friend groups.
    assert_eq!(
        bob.ok("friend_group_set", json!({ "user": a_id, "group": "同学" })),
        json!({})
    );
    let g = bob.ok("friend_groups", json!({}));
    assert_eq!(g["groups"][0]["name"], "");
    assert_eq!(g["groups"][0]["users"][0]["user_id"], c_id.as_str());
    assert_eq!(g["groups"][1]["name"], "同学");
    assert_eq!(g["groups"][1]["users"][0]["user_id"], a_id.as_str());
    assert_eq!(g["groups"][1]["friends"][0]["group"], "同学");
    carol.fails(
        "friend_group_set",
        json!({ "user": a_id, "group": "x" }),
        "NOT_FRIENDS",
    );

    // Suggestions: alice and carol share bob.
    let s = alice.ok("friend_suggestions", json!({}));
    assert_eq!(s["users"][0]["user_id"], c_id.as_str());
    assert_eq!(s["users"][0]["mutual_friends"], 1);
    assert_eq!(s["users"][0]["mutual_groups"], 0);
    assert_eq!(s["users"].as_array().unwrap().len(), 1);
    let s = alice.ok("friend_suggestions", json!({ "limit": 0 }));
    assert_eq!(s["users"].as_array().unwrap().len(), 1);
}
