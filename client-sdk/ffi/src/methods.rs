//! The methods of `feige_call`: one table from name to handler.
//!
//! A handler reads its params synchronously — so bad params are refused by `feige_call` itself,
//! before a request id is handed out — and returns the future that performs the call on the
//! SDK's runtime and yields the result JSON. To add a method: write a handler below (its doc
//! comment gives params → result, as `docs/sdk.md` does), add one row to [`METHODS`], and
//! document it in `docs/sdk.md`. Names and result fields, once released, are never changed;
//! fields may be added.

use feige_client::pb;
use serde_json::json;

use crate::client::{Call, Conn, Reply};
use crate::json::{self, Params, Refusal};

/// A method handler: params → the call to run.
pub(crate) type Method = fn(&Params, Conn) -> Result<Call, Refusal>;

/// Every method of `feige_call`, by name.
pub(crate) const METHODS: &[(&str, Method)] = &[
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
];

/// The handler of `name`.
pub(crate) fn find(name: &str) -> Option<Method> {
    METHODS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

/// Boxes a call's future.
fn call(f: impl std::future::Future<Output = Reply> + Send + 'static) -> Result<Call, Refusal> {
    Ok(Box::pin(f))
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
    let token = json::unhex(&p.string("token")?)
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

/// `send_message`: `{"to_user" | "conversation_id", "text", "client_msg_id"?, "kind"?}` →
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
    let msg = pb::SendMessage {
        to_user,
        conversation_id,
        client_msg_id: p.opt_id("client_msg_id")?.unwrap_or(0),
        kind: kind as i32,
        text: p.string("text")?,
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
/// → `{"messages":[...]}`, newest first.
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
        let got = conn.client().await?.history(req).await?;
        Ok(json::messages(&got))
    })
}

/// `search`: `{"query","limit"?,"before_id"?,"conversation_id"?}` → `{"messages":[...]}`,
/// newest first.
fn search(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let req = pb::Search {
        query: p.string("query")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
        before_id: p.opt_id("before_id")?.unwrap_or(0),
        conversation_id: p.opt_id("conversation_id")?.unwrap_or(0),
    };
    call(async move {
        let got = conn.client().await?.search(req).await?;
        Ok(json::messages(&got))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
        assert!(find("login").is_some());
        assert!(find("Login").is_none());
    }
}
