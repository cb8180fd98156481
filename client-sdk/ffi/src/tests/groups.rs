//! The group methods and events of `feige_call`, end to end against a real server.

use serde_json::{json, Value};

use super::{creds, wait_for, DmPolicy, Server, C};

fn id(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_owned()
}

fn befriend(a: &C, b: &C, b_id: &str) {
    let sent = a.ok("friend_request", json!({ "to_user": b_id }));
    b.ok(
        "friend_respond",
        json!({ "request_id": id(&sent, "request_id"), "accept": true }),
    );
}

#[test]
fn group_methods_end_to_end() {
    let server = Server::start_with(DmPolicy::Friends);
    let addr = server.addr();
    let (alice, bob, carol) = (C::connect(&addr), C::connect(&addr), C::connect(&addr));
    let a = id(&alice.ok("register", creds("alice")), "user_id");
    let b = id(&bob.ok("register", creds("bob")), "user_id");
    let c = id(&carol.ok("register", creds("carol")), "user_id");
    for (client, name) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        client.ok("login", creds(name));
    }
    befriend(&alice, &bob, &b);
    befriend(&alice, &carol, &c);

    alice.fails(
        "group_create",
        json!({ "name": "" , "members": [b] }),
        "INVALID_ARGUMENT",
    );
    let made = alice.ok("group_create", json!({ "name": "Team", "members": [b] }));
    let g = id(&made, "group_id");
    assert_eq!(made["conversation_id"], g.as_str());
    let updated = bob.push_of("group_updated");
    assert_eq!(
        (updated["group_id"].as_str(), updated["my_role"].as_str()),
        (Some(g.as_str()), Some("member"))
    );
    let info = alice.ok("group_info", json!({ "group_id": g }));
    assert_eq!(
        (info["name"].as_str(), info["owner"].as_str()),
        (Some("Team"), Some(a.as_str()))
    );
    assert_eq!(
        (info["member_count"].as_u64(), info["my_role"].as_str()),
        (Some(2), Some("owner"))
    );
    carol.fails("group_info", json!({ "group_id": g }), "NOT_A_MEMBER");

    // A message with a mention; the notice and the message are message pushes.
    let sent = alice.ok(
        "send_message",
        json!({ "conversation_id": g, "text": "hi @bob", "mentions": [b] }),
    );
    assert_eq!(sent["seq"], "2");
    let m = bob.push_of("message");
    assert_eq!(
        (m["kind"].as_str(), m["seq"].as_str()),
        (Some("text"), Some("2"))
    );
    assert_eq!(m["mentions"], json!([b]));
    let list = bob.ok("conversations", json!({}));
    let entry = &list["conversations"][0];
    assert_eq!(
        (
            entry["group"]["name"].as_str(),
            entry["mentioned"].as_bool()
        ),
        (Some("Team"), Some(true))
    );
    bob.fails(
        "send_message",
        json!({ "conversation_id": g, "text": "@all", "mention_all": true }),
        "FORBIDDEN",
    );

    let added = alice.ok("group_invite", json!({ "group_id": g, "users": [c] }));
    assert_eq!(added, json!({ "added": [c], "pending": [] }));
    alice.ok(
        "group_update",
        json!({ "group_id": g, "announcement": "hello all" }),
    );
    assert_eq!(carol.push_of("group_updated")["group_id"], g.as_str());
    carol.ok("group_set_card", json!({ "group_id": g, "card": "C" }));
    alice.ok(
        "group_set_role",
        json!({ "group_id": g, "user": b, "role": "admin" }),
    );
    // Bad params are refused by feige_call itself.
    let king = json!({ "group_id": g, "user": b, "role": "king" });
    assert!(alice.call("group_set_role", &king).is_err());
    bob.ok(
        "group_mute",
        json!({ "group_id": g, "user": c, "seconds": 60 }),
    );
    let (status, err) = carol.run("send_message", json!({ "conversation_id": g, "text": "x" }));
    assert_ne!(status, 0);
    assert_eq!(err["error"]["code"], "MUTED", "{err}");
    bob.ok(
        "group_mute",
        json!({ "group_id": g, "user": c, "seconds": 0 }),
    );
    alice.ok("group_mute_all", json!({ "group_id": g, "mute": true }));
    alice.ok("group_mute_all", json!({ "group_id": g, "mute": false }));
    let page = alice.ok("group_members", json!({ "group_id": g, "limit": 2 }));
    assert_eq!(page["has_more"], true);
    let rest = alice.ok(
        "group_members",
        json!({ "group_id": g, "after": page["members"][1]["user_id"] }),
    );
    let carol_row = &rest["members"][0];
    assert_eq!(
        (carol_row["card"].as_str(), carol_row["role"].as_str()),
        (Some("C"), Some("member"))
    );
    assert_eq!(carol_row["online"], true);
    assert_eq!(page["members"][1]["role"], "admin");
    assert_eq!(
        alice.ok("groups", json!({}))["groups"][0]["group_id"],
        g.as_str()
    );
    assert_eq!(
        alice.ok("group_invites", json!({})),
        json!({ "invites": [] })
    );
    alice.fails(
        "group_answer_invite",
        json!({ "group_id": g, "user": c, "accept": true }),
        "NOT_FOUND",
    );

    bob.ok("group_remove", json!({ "group_id": g, "user": c }));
    let notice = wait_for(&carol, &mut Vec::new(), |j| {
        j["text"] == "bob removed carol"
    });
    assert_eq!(notice["kind"], "system");
    let gone = carol.push_of("group_removed");
    assert_eq!(
        (gone["reason"].as_str(), gone["by_user"].as_str()),
        (Some("removed"), Some(b.as_str()))
    );
    alice.ok("group_transfer", json!({ "group_id": g, "user": b }));
    alice.ok("group_leave", json!({ "group_id": g }));
    bob.ok("group_dismiss", json!({ "group_id": g }));
    assert_eq!(bob.ok("groups", json!({})), json!({ "groups": [] }));
}
