//! `feige_call` methods of receipts, recall, friend groups and friend suggestions.

use serde_json::{json, Value};

use super::base::{call, Call, Conn, Method};
use crate::json::{self, Params, Refusal};

/// This family's methods, by name.
pub(super) const METHODS: &[(&str, Method)] = &[
    ("receipts", receipts),
    ("recall", recall),
    ("recalls", recalls),
    ("friend_groups", friend_groups),
    ("friend_group_set", friend_group_set),
    ("friend_suggestions", friend_suggestions),
];

/// `receipts`: `{"conversation_id","seq"}` → `{"read_count","unread_count","readers":[user...],
/// "direct"}`; in 1:1 also `"peer_read_seq"` and `"peer_delivered_seq"`.
fn receipts(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let conversation_id = p.id("conversation_id")?;
    let seq = p.id("seq")?;
    call(async move {
        let r = conn.client().await?.receipts(conversation_id, seq).await?;
        let readers: Vec<Value> = r.readers.iter().map(json::user).collect();
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
        Ok(v)
    })
}

/// `recall`: `{"conversation_id","seq"}` → `{}`.
fn recall(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let conversation_id = p.id("conversation_id")?;
    let seq = p.id("seq")?;
    call(async move {
        conn.client().await?.recall(conversation_id, seq).await?;
        Ok(json!({}))
    })
}

/// `recalls`: `{"after"?,"limit"?}` → `{"recalls":[{"conversation_id","seq","message_id",
/// "recalled_by","recall_id","recalled_at"}],"has_more"}`, oldest first; `after` is the
/// `recall_id` of the last recall seen.
fn recalls(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let after = p.opt_id("after")?.unwrap_or(0);
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    call(async move {
        let l = conn.client().await?.recalls(after, limit).await?;
        let list: Vec<Value> = l.recalls.iter().map(json::message_recalled).collect();
        Ok(json!({ "recalls": list, "has_more": l.has_more }))
    })
}

/// `friend_groups`: `{}` → `{"groups":[{"name","users":[user...],"friends":[friend...]}]}`,
/// the default group (`""`) first, then by name.
fn friend_groups(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let groups = conn.client().await?.friend_groups().await?;
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                let users: Vec<Value> = g
                    .friends
                    .iter()
                    .filter_map(|f| f.user.as_ref().map(json::user))
                    .collect();
                let friends: Vec<Value> = g.friends.iter().map(json::friend).collect();
                json!({ "name": g.name, "users": users, "friends": friends })
            })
            .collect();
        Ok(json!({ "groups": groups }))
    })
}

/// `friend_group_set`: `{"user","group"}` → `{}` (`"group": ""` = the default group).
fn friend_group_set(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    let group = p.string("group")?;
    call(async move {
        conn.client().await?.set_friend_group(user, &group).await?;
        Ok(json!({}))
    })
}

/// `friend_suggestions`: `{"limit"?}` → `{"users":[{"user_id","mutual_friends",
/// "mutual_groups","user"}]}`, most shared first.
fn friend_suggestions(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    call(async move {
        let list = conn.client().await?.friend_suggestions(limit).await?;
        let users: Vec<Value> = list
            .iter()
            .map(|s| {
                let id = s.user.as_ref().map_or(0, |u| u.user_id);
                json!({
                    "user_id": id.to_string(),
                    "mutual_friends": s.mutual_friends,
                    "mutual_groups": s.mutual_groups,
                    "user": s.user.as_ref().map(json::user),
                })
            })
            .collect();
        Ok(json!({ "users": users }))
    })
}
