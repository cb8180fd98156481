//! `feige redpacket` and `feige wallet`: red packets and the wallet. Amounts are given and
//! shown in yuan with two decimals ("8.88"), and sent as whole cents.

use feige_client::pb;
use feige_tools::social::Out;
use serde_json::json;

use super::args::{RedPacketCmd, WalletCmd};
use super::{user_id, with_client, Ctx};

fn yuan(cents: impl Into<i128>) -> String {
    let c: i128 = cents.into();
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

/// A grab of one of the user's red packets, as `feige listen` prints it.
pub(crate) fn grabbed(g: &pb::RedPacketGrabbed) -> Out {
    Out {
        json: json!({
            "type": "red_packet_grabbed",
            "packet_id": g.packet_id.to_string(),
            "user_id": g.user_id.to_string(),
            "amount_cents": g.amount_cents,
            "remaining_count": g.remaining_count,
            "remaining_cents": g.remaining_cents,
        }),
        text: format!(
            "user {} got {} from your red packet {} ({} share(s), {} left)",
            g.user_id,
            yuan(g.amount_cents),
            g.packet_id,
            g.remaining_count,
            yuan(g.remaining_cents)
        ),
    }
}

/// `feige redpacket ...`.
pub(crate) async fn red_packet(ctx: &Ctx, action: &RedPacketCmd) -> anyhow::Result<()> {
    let out = with_client(ctx, |c| async move {
        Ok(match action {
            RedPacketCmd::Send {
                conversation_id,
                amount,
                count,
                equal,
                greeting,
            } => {
                let mode = if *equal {
                    pb::RedPacketMode::Equal
                } else {
                    pb::RedPacketMode::Random
                };
                let ok = c
                    .red_packet_send(pb::SendRedPacket {
                        conversation_id: *conversation_id,
                        total_cents: *amount,
                        count: *count,
                        mode: mode as i32,
                        greeting: greeting.clone().unwrap_or_default(),
                        client_msg_id: 0,
                    })
                    .await?;
                Out {
                    json: json!({
                        "type": "red_packet_sent",
                        "packet_id": ok.message_id.to_string(),
                        "conversation_id": ok.conversation_id.to_string(),
                        "total_cents": amount,
                        "count": count,
                    }),
                    text: format!(
                        "red packet {} sent: {} in {count} share(s)",
                        ok.message_id,
                        yuan(*amount)
                    ),
                }
            }
            RedPacketCmd::Grab { packet_id } => {
                let g = c.red_packet_grab(*packet_id).await?;
                Out {
                    json: json!({
                        "type": "red_packet_grabbed",
                        "packet_id": packet_id.to_string(),
                        "amount_cents": g.amount_cents,
                    }),
                    text: format!("you got {} from red packet {packet_id}", yuan(g.amount_cents)),
                }
            }
            RedPacketCmd::Info { packet_id } => {
                let p = c.red_packet_info(*packet_id).await?;
                let grabs: Vec<String> = p
                    .grabs
                    .iter()
                    .map(|g| format!("user {} got {}", g.user_id, yuan(g.amount_cents)))
                    .collect();
                let state = if p.refunded_cents > 0 {
                    format!("expired, {} returned", yuan(p.refunded_cents))
                } else if p.expired {
                    "expired".to_owned()
                } else {
                    format!("{} left in {} share(s)", yuan(p.remaining_cents), p.remaining_count)
                };
                let list: Vec<_> = p
                    .grabs
                    .iter()
                    .map(|g| json!({ "user_id": g.user_id.to_string(), "amount_cents": g.amount_cents }))
                    .collect();
                Out {
                    json: json!({
                        "type": "red_packet",
                        "packet_id": p.packet_id.to_string(),
                        "sender_id": p.sender_id.to_string(),
                        "total_cents": p.total_cents,
                        "count": p.count,
                        "greeting": p.greeting,
                        "grabs": list,
                        "remaining_cents": p.remaining_cents,
                        "expired": p.expired,
                        "refunded_cents": p.refunded_cents,
                    }),
                    text: format!(
                        "red packet {} from user {}: {} in {} share(s), \"{}\"; {state}{}{}",
                        p.packet_id,
                        p.sender_id,
                        yuan(p.total_cents),
                        p.count,
                        p.greeting,
                        if grabs.is_empty() { "" } else { "; " },
                        grabs.join(", ")
                    ),
                }
            }
        })
    })
    .await?;
    ctx.out(&out);
    Ok(())
}

/// `feige wallet [top-up USER AMOUNT]`.
pub(crate) async fn wallet(ctx: &Ctx, action: Option<&WalletCmd>) -> anyhow::Result<()> {
    let out = with_client(ctx, |c| async move {
        Ok(match action {
            None => {
                let b = c.wallet().await?;
                Out {
                    json: json!({ "type": "wallet", "balance_cents": b }),
                    text: format!("balance: {}", yuan(b)),
                }
            }
            Some(WalletCmd::TopUp { who, amount }) => {
                let id = user_id(&c, who).await?;
                let b = c.wallet_top_up(id, *amount).await?;
                Out {
                    json: json!({ "type": "wallet", "user_id": id.to_string(), "balance_cents": b }),
                    text: format!("user {id} topped up by {}: balance {}", yuan(*amount), yuan(b)),
                }
            }
        })
    })
    .await?;
    ctx.out(&out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_show_as_yuan() {
        assert_eq!(yuan(888_u64), "8.88");
        assert_eq!(yuan(-5_i64), "-0.05");
    }
}
