//! The methods of `feige_call`: one table from name to handler.
//!
//! A handler reads its params synchronously — so bad params are refused by `feige_call` itself,
//! before a request id is handed out — and returns the future that performs the call on the
//! SDK's runtime and yields the result JSON. To add a method: write a handler (its doc
//! comment gives params → result, as `docs/sdk.md` does) in the file of its family, add one
//! row to that family's `METHODS` (a new family's table joins [`FAMILIES`]), and document it
//! in `docs/sdk.md`. Names and result fields, once released, are never changed;
//! fields may be added. A family's file takes what a method is (`Call`, `Conn`, `Method`,
//! `call`) from `base`, not from this file, so no import cycle forms.

use std::time::Duration;

use feige_client::pb;
use serde_json::json;

use crate::json::{self, Params, Refusal};

mod base;
pub(crate) mod files;
mod groups;
mod receipts;
pub(crate) mod red_packets;
pub(crate) mod rooms;

use base::call;
pub(crate) use base::{Call, Conn, Host, Method, Reply, Slot};

/// Every family's table of methods: this file's (accounts, messages, the social graph), then
/// one per file of this module.
const FAMILIES: &[&[(&str, Method)]] = &[
    METHODS,
    groups::METHODS,
    receipts::METHODS,
    rooms::METHODS,
    red_packets::METHODS,
    files::METHODS,
];

/// The methods of accounts, messages and the social graph, by name.
const METHODS: &[(&str, Method)] = &[
    ("register", register),
    ("login", login),
    ("resume", resume),
    ("logout", logout),
    ("whoami", whoami),
    ("ping", ping),
    ("send_message", send_message),
    ("sync", sync),
    ("ack", ack),
    ("history", history),
    ("search", search),
    ("update_profile", update_profile),
    ("change_password", change_password),
    ("get_user", get_user),
    ("search_users", search_users),
    ("friend_request", friend_request),
    ("friend_requests", friend_requests),
    ("friend_respond", friend_respond),
    ("friends", friends),
    ("set_remark", set_remark),
    ("friend_delete", friend_delete),
    ("block", block),
    ("unblock", unblock),
    ("blocked", blocked),
    ("presence", presence),
    ("conversations", conversations),
    ("mark_read", mark_read),
    ("sessions", sessions),
    ("revoke_session", revoke_session),
];

/// The handler of `name`.
pub(crate) fn find(name: &str) -> Option<Method> {
    FAMILIES
        .iter()
        .flat_map(|family| family.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

/// How long a call may take from `feige_call`, waiting for a connection included: the request
/// timeout, except for `send_message`, which keeps resending across reconnects for as long as
/// the SDK does ([`feige_client::SEND_RETRY_WINDOW`], or the request timeout if longer).
pub(crate) fn time_limit(name: &str, request_timeout: Duration) -> Duration {
    match name {
        "send_message" => request_timeout.max(feige_client::SEND_RETRY_WINDOW),
        _ => request_timeout,
    }
}

/// Whether `name` is a transfer: its time limit bounds only its wait for a connection, and
/// once issued it runs until done, failed or cancelled (each of its requests has the request
/// timeout).
pub(crate) fn unbounded(name: &str) -> bool {
    files::TRANSFERS.contains(&name)
}

/// `register`: `{"username","password","nickname"?}` → `{"user_id"}`.
fn register(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let username = p.string("username")?;
    let password = p.string("password")?;
    let nickname = p.opt_string("nickname")?.unwrap_or_default();
    call(async move {
        let client = conn.client().await?;
        let id = client.register(&username, &password, &nickname).await?;
        Ok(json!({ "user_id": id.to_string() }))
    })
}

/// `login`: `{"username","password"}` → the session `{"user_id","token","device","profile"}`.
fn login(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let username = p.string("username")?;
    let password = p.string("password")?;
    call(async move {
        let session = conn.client().await?.login(&username, &password).await?;
        Ok(json::session(&session))
    })
}

/// `resume`: `{"token"}` (hex, from `login`) → the session, as `login`.
fn resume(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let token = crate::encoding::unhex(&p.string("token")?)
        .ok_or_else(|| Refusal::params("\"token\" must be the hex string that login returned"))?;
    call(async move {
        let session = conn.client().await?.resume(&token).await?;
        Ok(json::session(&session))
    })
}

/// `logout`: `{}` → `{}`. Revokes the session token; the connection stays, logged out.
fn logout(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        conn.client().await?.logout().await?;
        Ok(json!({}))
    })
}

/// `whoami`: `{}` → the profile `{"user_id","username","nickname","created_at"}`.
fn whoami(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let profile = conn.client().await?.whoami().await?;
        Ok(json::profile(&profile))
    })
}

/// `ping`: `{}` → `{}` after a round trip to the server.
fn ping(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        conn.client().await?.ping().await?;
        Ok(json!({}))
    })
}

/// `send_message`: `{"to_user" | "conversation_id", "text", "client_msg_id"?, "kind"?,
/// "mentions"?: [user...], "mention_all"?, "file_id"?, "offer"?}` (with a `file_id`, `text` is
/// an optional caption) →
/// `{"message_id","conversation_id","seq","sent_at","duplicate"}`, once stored.
fn send_message(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let to_user = p.opt_id("to_user")?.unwrap_or(0);
    let conversation_id = p.opt_id("conversation_id")?.unwrap_or(0);
    if (to_user == 0) == (conversation_id == 0) {
        return Err(Refusal::params(
            "give exactly one of \"to_user\" and \"conversation_id\"",
        ));
    }
    let kind = match p.opt_string("kind")? {
        None => pb::MessageKind::Text,
        Some(k) => json::kind_of(&k)
            .ok_or_else(|| Refusal::params(format!("unknown message kind \"{k}\"")))?,
    };
    let file_id = p.opt_id("file_id")?.unwrap_or(0);
    let text = match file_id {
        0 => p.string("text")?,
        _ => p.opt_string("text")?.unwrap_or_default(),
    };
    let msg = pb::SendMessage {
        to_user,
        conversation_id,
        client_msg_id: p.opt_id("client_msg_id")?.unwrap_or(0),
        kind: kind as i32,
        text,
        mentions: p.ids("mentions")?,
        mention_all: p.opt_bool("mention_all")?.unwrap_or(false),
        file_id,
        offer: p.opt_bool("offer")?.unwrap_or(false),
    };
    call(async move {
        let ok = conn.client().await?.send(msg).await?;
        Ok(json!({
            "message_id": ok.message_id.to_string(),
            "conversation_id": ok.conversation_id.to_string(),
            "seq": ok.seq.to_string(),
            "sent_at": ok.sent_at_ms,
            "duplicate": ok.duplicate,
        }))
    })
}

/// `sync`: `{}` → `{"messages":[...]}`: what was missed, also delivered as message pushes.
fn sync(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let got = conn.client().await?.sync().await?;
        Ok(json::messages(&got))
    })
}

/// `ack`: `{"positions":[{"conversation_id","seq"}]}` → `{}`.
fn ack(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let mut positions = Vec::new();
    for v in p.opt_array("positions")?.into_iter().flatten() {
        let pos = Params::of("positions", v)?;
        positions.push(pb::ConversationPosition {
            conversation_id: pos.id("conversation_id")?,
            seq: pos.id("seq")?,
        });
    }
    call(async move {
        conn.client().await?.ack(positions).await?;
        Ok(json!({}))
    })
}

/// `history`: `{"conversation_id" | "peer_user", "limit"?, "before_seq"?, "since"?, "until"?}`
/// → `{"messages":[...],"has_more"}`, newest first; while `has_more`, ask again with
/// `before_seq` = the last message's `seq`.
fn history(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let req = pb::History {
        conversation_id: p.opt_id("conversation_id")?.unwrap_or(0),
        peer_user: p.opt_id("peer_user")?.unwrap_or(0),
        limit: p.opt_u32("limit")?.unwrap_or(0),
        before_seq: p.opt_id("before_seq")?.unwrap_or(0),
        since_ms: p.opt_i64("since")?.unwrap_or(0),
        until_ms: p.opt_i64("until")?.unwrap_or(0),
    };
    call(async move {
        let page = conn.client().await?.history_page(req).await?;
        Ok(json::message_page(&page))
    })
}

/// `search`: `{"query","limit"?,"before_id"?,"conversation_id"?}` →
/// `{"messages":[...],"has_more"}`, newest first; while `has_more`, ask again with
/// `before_id` = the last message's `message_id`.
fn search(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let req = pb::Search {
        query: p.string("query")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
        before_id: p.opt_id("before_id")?.unwrap_or(0),
        conversation_id: p.opt_id("conversation_id")?.unwrap_or(0),
    };
    call(async move {
        let page = conn.client().await?.search_page(req).await?;
        Ok(json::message_page(&page))
    })
}

/// `update_profile`: `{"nickname"?,"signature"?,"avatar"?,"phone"?,"email"?}` → the new
/// profile, as `whoami`. Absent fields stay; `""` clears one.
fn update_profile(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let update = pb::UpdateProfile {
        nickname: p.opt_string("nickname")?,
        signature: p.opt_string("signature")?,
        avatar: p.opt_string("avatar")?,
        phone: p.opt_string("phone")?,
        email: p.opt_string("email")?,
    };
    call(async move {
        let profile = conn.client().await?.update_profile(update).await?;
        Ok(json::profile(&profile))
    })
}

/// `change_password`: `{"old_password","new_password"}` → `{"sessions_revoked"}`.
fn change_password(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let old = p.string("old_password")?;
    let new = p.string("new_password")?;
    call(async move {
        let n = conn.client().await?.change_password(&old, &new).await?;
        Ok(json!({ "sessions_revoked": n }))
    })
}

/// `get_user`: `{"user" | "username"}` → the public profile
/// `{"user_id","username","nickname","signature","avatar"}`.
fn get_user(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let id = p.opt_id("user")?;
    let name = p.opt_string("username")?;
    match (id, name) {
        (Some(id), None) => {
            call(async move { Ok(json::user(&conn.client().await?.user(id).await?)) })
        }
        (None, Some(name)) => {
            call(async move { Ok(json::user(&conn.client().await?.user_by_name(&name).await?)) })
        }
        _ => Err(Refusal::params(
            "give exactly one of \"user\" and \"username\"",
        )),
    }
}

/// `search_users`: `{"query","limit"?,"offset"?}` → `{"users":[...],"has_more"}`.
fn search_users(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let query = p.string("query")?;
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    let offset = p.opt_u32("offset")?.unwrap_or(0);
    call(async move {
        let found = conn
            .client()
            .await?
            .search_users(&query, limit, offset)
            .await?;
        Ok(json::users(&found))
    })
}

/// `friend_request`: `{"to_user","message"?}` → `{"request_id","became_friends","friend"}`.
fn friend_request(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let to_user = p.id("to_user")?;
    let message = p.opt_string("message")?.unwrap_or_default();
    call(async move {
        let sent = conn
            .client()
            .await?
            .friend_request(to_user, &message)
            .await?;
        Ok(json!({
            "request_id": sent.request_id.to_string(),
            "became_friends": sent.became_friends,
            "friend": sent.friend.as_ref().map(json::friend),
        }))
    })
}

/// `friend_requests`: `{}` → `{"incoming":[...],"outgoing":[...]}`, pending, oldest first.
fn friend_requests(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let l = conn.client().await?.friend_requests().await?;
        let incoming: Vec<_> = l.incoming.iter().map(json::friend_request).collect();
        let outgoing: Vec<_> = l.outgoing.iter().map(json::friend_request).collect();
        Ok(json!({ "incoming": incoming, "outgoing": outgoing }))
    })
}

/// `friend_respond`: `{"request_id","accept"}` → `{"request_id","accepted","user","friend"}`.
fn friend_respond(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let request_id = p.id("request_id")?;
    let accept = p
        .opt_bool("accept")?
        .ok_or_else(|| Refusal::params("missing \"accept\""))?;
    call(async move {
        let r = conn
            .client()
            .await?
            .respond_friend_request(request_id, accept)
            .await?;
        Ok(json::friend_response(&r))
    })
}

/// `friends`: `{}` → `{"friends":[{"user","remark","online","since","conversation_id"}]}`.
fn friends(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let list = conn.client().await?.friends().await?;
        let list: Vec<_> = list.iter().map(json::friend).collect();
        Ok(json!({ "friends": list }))
    })
}

/// `set_remark`: `{"user","remark"}` → the friend.
fn set_remark(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    let remark = p.string("remark")?;
    call(async move {
        let f = conn.client().await?.set_remark(user, &remark).await?;
        Ok(json::friend(&f))
    })
}

/// `friend_delete`: `{"user"}` → `{}`.
fn friend_delete(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    call(async move {
        conn.client().await?.delete_friend(user).await?;
        Ok(json!({}))
    })
}

/// `block`: `{"user"}` → `{}`.
fn block(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    call(async move {
        conn.client().await?.block(user).await?;
        Ok(json!({}))
    })
}

/// `unblock`: `{"user"}` → `{}`.
fn unblock(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    call(async move {
        conn.client().await?.unblock(user).await?;
        Ok(json!({}))
    })
}

/// `blocked`: `{}` → `{"users":[...]}`.
fn blocked(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let list = conn.client().await?.blocked().await?;
        let list: Vec<_> = list.iter().map(json::user).collect();
        Ok(json!({ "users": list }))
    })
}

/// `presence`: `{"user"}` → `{"user_id","online"}` (friends and oneself only).
fn presence(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    call(async move {
        let online = conn.client().await?.presence(user).await?;
        Ok(json!({ "user_id": user.to_string(), "online": online }))
    })
}

/// `conversations`: `{"limit"?,"before_active"?,"before_id"?}` →
/// `{"conversations":[...],"has_more"}`, most recently active first; without `limit`, all.
fn conversations(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    let before =
        match (p.opt_i64("before_active")?, p.opt_id("before_id")?) {
            (None, None) => None,
            (Some(ms), id) => Some((ms, id.unwrap_or(0))),
            (None, Some(_)) => return Err(Refusal::params(
                "\"before_id\" needs \"before_active\" (both of the previous page's last entry)",
            )),
        };
    call(async move {
        let page = conn
            .client()
            .await?
            .conversations_page(limit, before)
            .await?;
        let list: Vec<_> = page.conversations.iter().map(json::conversation).collect();
        Ok(json!({ "conversations": list, "has_more": page.has_more }))
    })
}

/// `mark_read`: `{"conversation_id","seq"?}` → `{"conversation_id","seq","unread"}`.
fn mark_read(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let conversation_id = p.id("conversation_id")?;
    let seq = p.opt_id("seq")?.unwrap_or(0);
    call(async move {
        let pos = conn.client().await?.mark_read(conversation_id, seq).await?;
        Ok(json::read_position(&pos))
    })
}

/// `sessions`: `{}` → `{"sessions":[{"session_id","device","created_at","last_seen","address",
/// "expires_at","current","online"}]}`, most recently seen first.
fn sessions(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let list = conn.client().await?.sessions().await?;
        let sessions: Vec<_> = list.iter().map(json::session_info).collect();
        Ok(json!({ "sessions": sessions }))
    })
}

/// `revoke_session`: `{"session_id"}` → `{}`. Its token stops working and its connections are
/// closed; this client's own session logs it out.
fn revoke_session(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let session_id = p.id("session_id")?;
    call(async move {
        conn.client().await?.revoke_session(session_id).await?;
        Ok(json!({}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let all = || FAMILIES.iter().flat_map(|family| family.iter());
        let mut names: Vec<&str> = all().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all().count());
        assert!(find("login").is_some());
        assert!(find("Login").is_none());
    }
}
