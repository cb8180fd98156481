//! The methods this SDK serves itself rather than by the shared table's one request.

use feige_client::pb;
use feige_protocol::json::{red_packet_request, send_message_request};
use serde_json::json;

use super::base::{call, Call, Conn, Method};
use crate::json::{self, Params, Refusal};

/// The custom handlers, by name (each also a row of the shared table).
pub(super) const METHODS: &[(&str, Method)] = &[
    ("login", login),
    ("resume", resume),
    ("ping", ping),
    ("send_message", send_message),
    ("sync", sync),
    ("update_profile", update_profile),
    ("revoke_session", revoke_session),
    ("room_send", room_send),
    ("red_packet_send", red_packet_send),
];

/// `login`: `{"username","password"}` → the session; as this config's device, and kept for
/// reconnects.
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

/// `ping`: `{}` → `{}` after a round trip to the server (its nonce checked).
fn ping(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        conn.client().await?.ping().await?;
        Ok(json!({}))
    })
}

/// `sync`: `{}` → `{"messages":[...]}`: everything missed (all pages), also delivered as
/// message events, the client's positions moved.
fn sync(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let got = conn.client().await?.sync().await?;
        Ok(json::messages(&got))
    })
}

/// `send_message` (without an outbox): as the table's, with the `client_msg_id` the SDK
/// chose (unless the params gave one) in the result.
fn send_message(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let mut msg = send_message_request(p)?;
    call(async move {
        let client = conn.client().await?;
        if msg.client_msg_id == 0 {
            msg.client_msg_id = client.new_client_msg_id();
        }
        let id = msg.client_msg_id;
        let ok = client.send(msg).await?;
        let mut result = json::send_ok(&ok);
        result["client_msg_id"] = id.to_string().into();
        Ok(result)
    })
}

/// `update_profile`: as the table's, and the client's session keeps the new profile.
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

/// `revoke_session`: `{"session_id"}` → `{}`; this client's own session logs it out.
fn revoke_session(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let session_id = p.id("session_id")?;
    call(async move {
        conn.client().await?.revoke_session(session_id).await?;
        Ok(json!({}))
    })
}

/// `room_send`: as the table's; without `client_msg_id` the client makes one.
fn room_send(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let room = p.id("room")?;
    let text = p.string("text")?;
    let client_msg_id = p.opt_id("client_msg_id")?;
    call(async move {
        let client = conn.client().await?;
        let ok = match client_msg_id {
            None | Some(0) => client.room_send(room, &text).await?,
            Some(id) => {
                let msg = pb::RoomSend {
                    room,
                    client_msg_id: id,
                    text,
                };
                client.room_send_with(msg).await?
            }
        };
        Ok(json::room_sent(&ok))
    })
}

/// `red_packet_send`: as the table's; without `client_msg_id` the client makes one and
/// resends across reconnects.
fn red_packet_send(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let packet = red_packet_request(p)?;
    call(async move {
        let ok = conn.client().await?.red_packet_send(packet).await?;
        Ok(json::red_packet_sent(&ok))
    })
}
