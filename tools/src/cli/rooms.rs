//! `feige room`: world rooms. Membership belongs to a connection, and each command is a
//! connection of its own, so every command but `join`/`leave` joins the room first (and
//! `listen` stays in it until stopped).

use anyhow::Context;
use feige_client::{pb, Client, ClientError, Event};
use feige_tools::social::Out;
use feige_tools::{format_time, terminal_safe};
use serde_json::json;

use super::args::RoomCmd;
use super::{with_client, Ctx};

fn message(m: &pb::RoomMessage) -> Out {
    Out {
        json: json!({
            "type": "room_message",
            "room": m.room.to_string(),
            "message_id": m.message_id.to_string(),
            "from_user": m.from_user.to_string(),
            "text": m.text,
            "sent_at": m.sent_at_ms.to_string(),
        }),
        text: format!(
            "[room {} #{}] {} user {}: {}",
            m.room,
            m.message_id,
            format_time(m.sent_at_ms),
            m.from_user,
            terminal_safe(&m.text)
        ),
    }
}

async fn join(c: &Client, room: u64) -> anyhow::Result<u32> {
    let j = c
        .room_join(room)
        .await
        .with_context(|| format!("cannot join room {room}"))?;
    Ok(j.member_count)
}

/// `feige room ...`.
pub(crate) async fn room(ctx: &Ctx, action: &RoomCmd) -> anyhow::Result<()> {
    if let RoomCmd::Listen { room, count } = action {
        return listen(ctx, *room, *count).await;
    }
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            RoomCmd::Join { room } => {
                let n = join(&c, *room).await?;
                vec![Out {
                    json: json!({ "type": "room_joined", "room": room.to_string(), "member_count": n }),
                    text: format!(
                        "joined room {room}: {n} user(s) in it (this command's connection leaves \
                         it when it ends; `feige room listen {room}` stays)"
                    ),
                }]
            }
            RoomCmd::Leave { room } => {
                c.room_leave(*room).await?;
                vec![Out {
                    json: json!({ "type": "room_left", "room": room.to_string() }),
                    text: format!("left room {room}"),
                }]
            }
            RoomCmd::Members { room, limit } => {
                join(&c, *room).await?;
                let l = c.room_members(*room, limit.unwrap_or(0)).await?;
                let mut outs: Vec<Out> = l.members.iter().map(feige_tools::social::user).collect();
                outs.push(Out {
                    json: json!({ "type": "room_count", "room": room.to_string(), "count": l.count }),
                    text: format!("{} user(s) in room {room}", l.count),
                });
                outs
            }
            RoomCmd::Send { room, text } => {
                join(&c, *room).await?;
                let ok = c.room_send(*room, &text.join(" ")).await?;
                vec![Out {
                    json: json!({
                        "type": "room_sent",
                        "room": room.to_string(),
                        "message_id": ok.message_id.to_string(),
                        "sent_at": ok.sent_at_ms.to_string(),
                    }),
                    text: format!("sent to room {room} (message {})", ok.message_id),
                }]
            }
            RoomCmd::History {
                room,
                limit,
                before,
            } => {
                join(&c, *room).await?;
                let page = c.room_history(*room, *limit, before.unwrap_or(0)).await?;
                let mut outs: Vec<Out> = page.messages.iter().rev().map(message).collect();
                if page.has_more {
                    if let Some(oldest) = page.messages.last() {
                        outs.push(Out {
                            json: json!({ "type": "more", "before": oldest.message_id.to_string() }),
                            text: format!("older messages: --before {}", oldest.message_id),
                        });
                    }
                }
                outs
            }
            RoomCmd::Listen { .. } => Vec::new(),
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

/// `feige room listen`: joins and prints the room's messages until Ctrl-C (or `count`).
async fn listen(ctx: &Ctx, room: u64, count: Option<u64>) -> anyhow::Result<()> {
    let (client, mut events, _) = ctx.resume(false).await?;
    let result = async {
        let n = join(&client, room).await?;
        if !ctx.cli.json {
            eprintln!("in room {room} with {n} user(s); Ctrl-C to stop");
        }
        let mut seen = 0;
        loop {
            if count.is_some_and(|n| seen >= n) {
                return Ok(());
            }
            let event = tokio::select! {
                e = events.recv() => e,
                r = tokio::signal::ctrl_c() => {
                    return r.context("cannot wait for Ctrl-C");
                }
            };
            match event {
                Some(Event::RoomMessage(m)) if m.room == room => {
                    ctx.out(&message(&m));
                    seen += 1;
                }
                // Back after a reconnect: the new connection is in no room yet.
                Some(Event::State(feige_client::ConnState::Connected)) => {
                    join(&client, room).await?;
                }
                Some(_) => {}
                None => return Err(ClientError::Closed.into()),
            }
        }
    }
    .await;
    client.close().await;
    result
}
