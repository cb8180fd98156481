//! The red packets' and wallet's methods of `feige_call`, and the JSON of a
//! `red_packet_grabbed` event. Amounts are integer cents, as JSON numbers.

use feige_client::pb;
use serde_json::{json, Value};

use super::base::{call, Call, Conn, Method};
use crate::json::{Params, Refusal};

/// The methods of red packets and wallets, by name.
pub(super) const METHODS: &[(&str, Method)] = &[
    ("red_packet_send", red_packet_send),
    ("red_packet_grab", red_packet_grab),
    ("red_packet_info", red_packet_info),
    ("wallet", wallet),
    ("wallet_top_up", wallet_top_up),
];

/// A grab the sender hears of: `{"packet_id","conversation_id","user_id","amount_cents",
/// "remaining_count","remaining_cents"}`.
pub(crate) fn grabbed(g: &pb::RedPacketGrabbed) -> Value {
    json!({
        "packet_id": g.packet_id.to_string(),
        "conversation_id": g.conversation_id.to_string(),
        "user_id": g.user_id.to_string(),
        "amount_cents": g.amount_cents,
        "remaining_count": g.remaining_count,
        "remaining_cents": g.remaining_cents,
    })
}

/// A required amount in cents: a non-negative integer (or a decimal string).
fn cents(p: &Params, key: &str) -> Result<u64, Refusal> {
    p.id(key)
        .map_err(|_| Refusal::params(format!("\"{key}\" must be a whole number of cents")))
}

/// `red_packet_send`: `{"conversation_id","total_cents","count","mode":"random"|"equal",
/// "greeting"?,"client_msg_id"?}` → `{"packet_id","message_id","seq","sent_at","duplicate"}`,
/// once the packet's message is stored and paid for.
fn red_packet_send(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let mode = match p.opt_string("mode")?.as_deref() {
        None | Some("random") => pb::RedPacketMode::Random,
        Some("equal") => pb::RedPacketMode::Equal,
        Some(other) => {
            return Err(Refusal::params(format!(
                "\"mode\" must be \"random\" or \"equal\", not \"{other}\""
            )))
        }
    };
    let packet = pb::SendRedPacket {
        conversation_id: p.id("conversation_id")?,
        total_cents: cents(p, "total_cents")?,
        count: p
            .opt_u32("count")?
            .ok_or_else(|| Refusal::params("missing \"count\""))?,
        mode: mode as i32,
        greeting: p.opt_string("greeting")?.unwrap_or_default(),
        client_msg_id: p.opt_id("client_msg_id")?.unwrap_or(0),
    };
    call(async move {
        let ok = conn.client().await?.red_packet_send(packet).await?;
        Ok(json!({
            "packet_id": ok.message_id.to_string(),
            "message_id": ok.message_id.to_string(),
            "seq": ok.seq.to_string(),
            "sent_at": ok.sent_at_ms,
            "duplicate": ok.duplicate,
        }))
    })
}

/// `red_packet_grab`: `{"packet_id"}` → `{"amount_cents"}`.
fn red_packet_grab(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let id = p.id("packet_id")?;
    call(async move {
        let g = conn.client().await?.red_packet_grab(id).await?;
        Ok(json!({ "packet_id": id.to_string(), "amount_cents": g.amount_cents }))
    })
}

/// `red_packet_info`: `{"packet_id"}` → `{"packet_id","conversation_id","sender_id",
/// "total_cents","count","mode","greeting","grabs":[{"user_id","amount_cents","grabbed_at"}],
/// "remaining_cents","remaining_count","expires_at","expired","refunded_cents"}`.
fn red_packet_info(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let id = p.id("packet_id")?;
    call(async move {
        let r = conn.client().await?.red_packet_info(id).await?;
        let grabs: Vec<_> = r
            .grabs
            .iter()
            .map(|g| {
                json!({
                    "user_id": g.user_id.to_string(),
                    "amount_cents": g.amount_cents,
                    "grabbed_at": g.grabbed_at_ms,
                })
            })
            .collect();
        let mode = if r.mode == pb::RedPacketMode::Equal as i32 {
            "equal"
        } else {
            "random"
        };
        Ok(json!({
            "packet_id": r.packet_id.to_string(),
            "conversation_id": r.conversation_id.to_string(),
            "sender_id": r.sender_id.to_string(),
            "total_cents": r.total_cents,
            "count": r.count,
            "mode": mode,
            "greeting": r.greeting,
            "grabs": grabs,
            "remaining_cents": r.remaining_cents,
            "remaining_count": r.remaining_count,
            "created_at": r.created_at_ms,
            "expires_at": r.expires_at_ms,
            "expired": r.expired,
            "refunded_cents": r.refunded_cents,
        }))
    })
}

/// `wallet`: `{}` → `{"balance_cents"}`.
fn wallet(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let balance = conn.client().await?.wallet().await?;
        Ok(json!({ "balance_cents": balance }))
    })
}

/// `wallet_top_up`: `{"user","amount_cents"}` → `{"user_id","balance_cents"}` (admins only).
fn wallet_top_up(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let user = p.id("user")?;
    let amount = cents(p, "amount_cents")?;
    call(async move {
        let balance = conn.client().await?.wallet_top_up(user, amount).await?;
        Ok(json!({ "user_id": user.to_string(), "balance_cents": balance }))
    })
}
