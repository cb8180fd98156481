//! The world rooms' methods of `feige_call`, and the JSON of a `room_message` event.

use serde_json::{json, Value};

use super::base::{call, Call, Conn, Method};
use crate::json::{self, Params, Refusal};

/// The methods of world rooms, by name.
pub(super) const METHODS: &[(&str, Method)] = &[
    ("room_join", room_join),
    ("room_leave", room_leave),
    ("room_members", room_members),
    ("room_send", room_send),
    ("room_history", room_history),
];

/// A room message's fields: `{"room","message_id","from_user","client_msg_id","text","sent_at"}`.
pub(crate) fn room_message(m: &feige_client::pb::RoomMessage) -> Value {
    json!({
        "room": m.room.to_string(),
        "message_id": m.message_id.to_string(),
        "from_user": m.from_user.to_string(),
        "client_msg_id": m.client_msg_id.to_string(),
        "text": m.text,
        "sent_at": m.sent_at_ms,
    })
}

/// `room_join`: `{"room"}` → `{"room","member_count"}`. Membership belongs to the connection:
/// after a reconnect, join again.
fn room_join(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let room = p.id("room")?;
    call(async move {
        let j = conn.client().await?.room_join(room).await?;
        Ok(json!({ "room": j.room.to_string(), "member_count": j.member_count }))
    })
}

/// `room_leave`: `{"room"}` → `{}`.
fn room_leave(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let room = p.id("room")?;
    call(async move {
        conn.client().await?.room_leave(room).await?;
        Ok(json!({}))
    })
}

/// `room_members`: `{"room","limit"?}` → `{"members":[user...],"count"}`.
fn room_members(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let room = p.id("room")?;
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    call(async move {
        let l = conn.client().await?.room_members(room, limit).await?;
        let members: Vec<_> = l.members.iter().map(json::user).collect();
        Ok(json!({ "members": members, "count": l.count }))
    })
}

/// `room_send`: `{"room","text","client_msg_id"?}` → `{"message_id","sent_at","duplicate"}`,
/// once stored.
fn room_send(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let room = p.id("room")?;
    let text = p.string("text")?;
    let client_msg_id = p.opt_id("client_msg_id")?;
    call(async move {
        let client = conn.client().await?;
        let ok = match client_msg_id {
            None | Some(0) => client.room_send(room, &text).await?,
            Some(id) => {
                let msg = feige_client::pb::RoomSend {
                    room,
                    client_msg_id: id,
                    text,
                };
                client.room_send_with(msg).await?
            }
        };
        Ok(json!({
            "message_id": ok.message_id.to_string(),
            "sent_at": ok.sent_at_ms,
            "duplicate": ok.duplicate,
        }))
    })
}

/// `room_history`: `{"room","limit"?,"before_id"?}` → `{"messages":[...],"has_more"}`,
/// newest first; while `has_more`, ask again with `before_id` = the last `message_id`.
fn room_history(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let room = p.id("room")?;
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    let before = p.opt_id("before_id")?.unwrap_or(0);
    call(async move {
        let page = conn
            .client()
            .await?
            .room_history(room, limit, before)
            .await?;
        let list: Vec<_> = page.messages.iter().map(room_message).collect();
        Ok(json!({ "messages": list, "has_more": page.has_more }))
    })
}
