//! The method table's social rows: users, friends, blocks, presence, receipts, recalls,
//! friend groups and suggestions.

use serde_json::{json, Value};

use super::method::{answer, Method, Prepared, Serve};
use super::params::{ParamError, Params};
use super::render;
use crate::{pb, RequestKind as K};

const fn row(name: &'static str, f: fn(&Params) -> Result<Prepared, ParamError>) -> Method {
    Method {
        name,
        serve: Serve::Request(f),
    }
}

/// Users, friends, blocks and presence.
pub(super) const PEOPLE: &[Method] = &[
    row("get_user", get_user),
    row("search_users", search_users),
    row("friend_request", friend_request),
    row("friend_requests", friend_requests),
    row("friend_respond", friend_respond),
    row("friends", friends),
    row("set_remark", set_remark),
    row("friend_delete", friend_delete),
    row("block", block),
    row("unblock", unblock),
    row("blocked", blocked),
    row("presence", presence),
];

/// Receipts, recalls, friend groups and suggestions.
pub(super) const RECEIPTS: &[Method] = &[
    row("receipts", receipts),
    row("recall", recall),
    row("recalls", recalls),
    row("friend_groups", friend_groups),
    row("friend_group_set", friend_group_set),
    row("friend_suggestions", friend_suggestions),
    row("notifications", notifications),
    row("notification_read", notification_read),
];

/// `get_user`: `{"user" | "username"}` → the public profile.
fn get_user(p: &Params) -> Result<Prepared, ParamError> {
    let q = match (p.opt_id("user")?, p.opt_string("username")?) {
        (Some(user_id), None) => pb::GetUser {
            user_id,
            ..Default::default()
        },
        (None, Some(username)) => pb::GetUser {
            username,
            ..Default::default()
        },
        _ => {
            return Err(ParamError::params(
                "give exactly one of \"user\" and \"username\"",
            ))
        }
    };
    Ok(answer!(K::GetUser(q), GetUser(u) => render::user(&u)))
}

/// `search_users`: `{"query","limit"?,"offset"?}` → `{"users":[...],"has_more"}`.
fn search_users(p: &Params) -> Result<Prepared, ParamError> {
    let q = pb::SearchUsers {
        query: p.string("query")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
        offset: p.opt_u32("offset")?.unwrap_or(0),
    };
    Ok(answer!(K::SearchUsers(q), SearchUsers(l) => render::users(&l)))
}

/// `friend_request`: `{"to_user","message"?}` → `{"request_id","became_friends","friend"}`.
fn friend_request(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::SendFriendRequest {
        to_user: p.id("to_user")?,
        message: p.opt_string("message")?.unwrap_or_default(),
    };
    Ok(answer!(K::FriendRequest(r), FriendRequest(sent) => json!({
        "request_id": sent.request_id.to_string(),
        "became_friends": sent.became_friends,
        "friend": sent.friend.as_ref().map(render::friend),
    })))
}

/// `friend_requests`: `{}` → `{"incoming":[...],"outgoing":[...]}`.
fn friend_requests(_: &Params) -> Result<Prepared, ParamError> {
    Ok(
        answer!(K::FriendRequests(pb::ListFriendRequests {}), FriendRequests(l) => {
            let incoming: Vec<_> = l.incoming.iter().map(render::friend_request).collect();
            let outgoing: Vec<_> = l.outgoing.iter().map(render::friend_request).collect();
            json!({ "incoming": incoming, "outgoing": outgoing })
        }),
    )
}

/// `friend_respond`: `{"request_id","accept"}` → `{"request_id","accepted","user","friend"}`.
fn friend_respond(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RespondFriendRequest {
        request_id: p.id("request_id")?,
        accept: p.bool("accept")?,
    };
    Ok(answer!(K::FriendRespond(r), FriendRespond(r) => render::friend_response(&r)))
}

/// `friends`: `{}` → `{"friends":[...]}`.
fn friends(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Friends(pb::ListFriends {}), Friends(l) => {
        let list: Vec<_> = l.friends.iter().map(render::friend).collect();
        json!({ "friends": list })
    }))
}

/// `set_remark`: `{"user","remark"}` → the friend.
fn set_remark(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::SetRemark {
        user_id: p.id("user")?,
        remark: p.string("remark")?,
    };
    Ok(answer!(K::SetRemark(r), SetRemark(f) => render::friend(&f)))
}

/// `friend_delete`: `{"user"}` → `{}`.
fn friend_delete(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::DeleteFriend {
        user_id: p.id("user")?,
    };
    Ok(answer!(K::DeleteFriend(r), DeleteFriend(_) => json!({})))
}

/// `block`: `{"user"}` → `{}`.
fn block(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::Block {
        user_id: p.id("user")?,
    };
    Ok(answer!(K::Block(r), Block(_) => json!({})))
}

/// `unblock`: `{"user"}` → `{}`.
fn unblock(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::Unblock {
        user_id: p.id("user")?,
    };
    Ok(answer!(K::Unblock(r), Unblock(_) => json!({})))
}

/// `blocked`: `{}` → `{"users":[...]}`.
fn blocked(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Blocked(pb::ListBlocked {}), Blocked(l) => {
        let list: Vec<_> = l.users.iter().map(render::user).collect();
        json!({ "users": list })
    }))
}

/// `presence`: `{"user"}` → `{"user_id","online"}`.
fn presence(p: &Params) -> Result<Prepared, ParamError> {
    let user_id = p.id("user")?;
    let r = pb::GetPresence { user_id };
    Ok(answer!(K::Presence(r), Presence(pr) => render::presence(user_id, pr.online)))
}

/// `receipts`: `{"conversation_id","seq"}` → `{"read_count","unread_count","readers","direct"}`
/// (in 1:1 also `"peer_read_seq"`, `"peer_delivered_seq"`).
fn receipts(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::GetReceipts {
        conversation_id: p.id("conversation_id")?,
        seq: p.id("seq")?,
    };
    Ok(answer!(K::Receipts(r), Receipts(r) => {
        let readers: Vec<Value> = r.readers.iter().map(render::user).collect();
        let mut v = json!({
            "conversation_id": r.conversation_id.to_string(),
            "seq": r.seq.to_string(),
            "read_count": r.read_count,
            "unread_count": r.unread_count,
            "readers": readers,
            "direct": r.direct,
        });
        if r.direct {
            v["peer_read_seq"] = r.peer_read_seq.to_string().into();
            v["peer_delivered_seq"] = r.peer_delivered_seq.to_string().into();
        }
        v
    }))
}

/// `recall`: `{"conversation_id","seq"}` → `{}`.
fn recall(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RecallMessage {
        conversation_id: p.id("conversation_id")?,
        seq: p.id("seq")?,
    };
    Ok(answer!(K::Recall(r), Recall(_) => json!({})))
}

/// `recalls`: `{"after"?,"limit"?}` → `{"recalls":[...],"has_more"}`, oldest first.
fn recalls(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::ListRecalls {
        after_recall_id: p.opt_id("after")?.unwrap_or(0),
        limit: p.opt_u32("limit")?.unwrap_or(0),
    };
    Ok(answer!(K::Recalls(r), Recalls(l) => {
        let list: Vec<Value> = l.recalls.iter().map(render::message_recalled).collect();
        json!({ "recalls": list, "has_more": l.has_more })
    }))
}

/// `friend_groups`: `{}` → `{"groups":[{"name","users":[...],"friends":[...]}]}`.
fn friend_groups(_: &Params) -> Result<Prepared, ParamError> {
    Ok(
        answer!(K::FriendGroups(pb::ListFriendGroups {}), FriendGroups(l) => {
            let groups: Vec<Value> = l
                .groups
                .iter()
                .map(|g| {
                    let users: Vec<Value> = g
                        .friends
                        .iter()
                        .filter_map(|f| f.user.as_ref().map(render::user))
                        .collect();
                    let friends: Vec<Value> = g.friends.iter().map(render::friend).collect();
                    json!({ "name": g.name, "users": users, "friends": friends })
                })
                .collect();
            json!({ "groups": groups })
        }),
    )
}

/// `friend_group_set`: `{"user","group"}` → `{}`.
fn friend_group_set(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::SetFriendGroup {
        user_id: p.id("user")?,
        group: p.string("group")?,
    };
    Ok(answer!(K::FriendGroupSet(r), FriendGroupSet(_) => json!({})))
}

/// `friend_suggestions`: `{"limit"?}` → `{"users":[{"user_id","mutual_friends",
/// "mutual_groups","user"}]}`.
fn friend_suggestions(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::GetFriendSuggestions {
        limit: p.opt_u32("limit")?.unwrap_or(0),
    };
    Ok(answer!(K::FriendSuggestions(r), FriendSuggestions(l) => {
        let users: Vec<Value> = l
            .suggestions
            .iter()
            .map(|s| {
                let id = s.user.as_ref().map_or(0, |u| u.user_id);
                json!({
                    "user_id": id.to_string(),
                    "mutual_friends": s.mutual_friends,
                    "mutual_groups": s.mutual_groups,
                    "user": s.user.as_ref().map(render::user),
                })
            })
            .collect();
        json!({ "users": users })
    }))
}

/// `notifications`: `{"after"?,"limit"?}` → `{"notifications":[notification...],"has_more",
/// "unread"}`.
fn notifications(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::ListNotifications {
        after_id: p.opt_id("after")?.unwrap_or(0),
        limit: p.opt_u32("limit")?.unwrap_or(0),
    };
    Ok(answer!(K::Notifications(r), Notifications(l) => {
        let list: Vec<Value> = l.notifications.iter().map(render::notification).collect();
        json!({ "notifications": list, "has_more": l.has_more, "unread": l.unread })
    }))
}

/// `notification_read`: `{"id"}` or `{"all":true}` → `{"marked","unread"}`.
fn notification_read(p: &Params) -> Result<Prepared, ParamError> {
    let all = p.opt_bool("all")?.unwrap_or(false);
    let id = p.opt_id("id")?;
    let r = match (id, all) {
        (Some(id), false) => pb::MarkNotificationRead { id, all: false },
        (None, true) => pb::MarkNotificationRead { id: 0, all: true },
        _ => {
            return Err(ParamError::params(
                "give exactly one of \"id\" and \"all\": true",
            ))
        }
    };
    Ok(answer!(K::NotificationRead(r), NotificationRead(ok) => {
        json!({ "marked": ok.marked, "unread": ok.unread })
    }))
}
