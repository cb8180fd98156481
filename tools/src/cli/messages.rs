//! Message commands: send, listen, history and search.

use anyhow::Context;
use feige_client::{code_name, pb, ClientError, ErrorCode, Event};
use feige_tools::social as out;
use feige_tools::{terminal_safe, Failure};
use serde::Serialize;

use super::{user_id, with_client, Ctx};

/// `feige send`: sends a text message to a user.
pub(crate) async fn send(ctx: &Ctx, who: &str, text: &str) -> anyhow::Result<()> {
    let (to_user, ok) = with_client(ctx, |client| async move {
        let to_user = user_id(&client, who).await?;
        Ok((to_user, client.send_text(to_user, text).await?))
    })
    .await?;
    ctx.print(
        &Sent {
            kind: "sent",
            message_id: ok.message_id.to_string(),
            conversation_id: ok.conversation_id.to_string(),
            seq: ok.seq.to_string(),
            sent_at: ok.sent_at_ms.to_string(),
            duplicate: ok.duplicate,
        },
        || {
            format!(
                "sent to user {to_user}: [conv {} #{}] message {}",
                ok.conversation_id, ok.seq, ok.message_id
            )
        },
    );
    Ok(())
}

/// `feige listen`: prints missed messages, then new messages and social events as they
/// arrive, until Ctrl-C or `count` messages.
pub(crate) async fn listen(ctx: &Ctx, count: Option<u64>) -> anyhow::Result<()> {
    let (client, mut events, saved) = ctx.resume(true).await?;
    if count == Some(0) {
        client.close().await;
        return Ok(());
    }
    if !ctx.cli.json {
        eprintln!(
            "listening as {} (user {}); Ctrl-C to stop",
            saved.username, saved.user_id
        );
    }
    let mut seen = 0;
    let result = loop {
        let event = tokio::select! {
            e = events.recv() => e,
            r = tokio::signal::ctrl_c() => {
                break r.context("cannot wait for Ctrl-C");
            }
        };
        match event {
            Some(
                e @ (Event::FriendRequest(_)
                | Event::FriendResponse(_)
                | Event::FriendAdded(_)
                | Event::FriendRemoved { .. }
                | Event::Presence { .. }
                | Event::ReadPosition(_)
                | Event::FriendRequestAnswered(_)
                | Event::FriendUpdated(_)
                | Event::BlockChanged { .. }
                | Event::ProfileUpdated(_)
                | Event::UserUpdated(_)),
            ) => {
                if let Some(o) = out::event(&e, saved.user_id) {
                    ctx.out(&o);
                }
            }
            Some(Event::RedPacketGrabbed(g)) => ctx.out(&super::red_packets::grabbed(&g)),
            Some(e @ Event::Notification(_)) => {
                if let Some(o) = super::notifications::event(&e) {
                    ctx.out(&o);
                }
            }
            Some(e @ (Event::ReadReceipt(_) | Event::MessageRecalled(_))) => {
                if let Some(o) = super::receipts::event(&e) {
                    ctx.out(&o);
                }
            }
            Some(
                e @ (Event::GroupUpdated(_) | Event::GroupRemoved(_) | Event::GroupInvitation(_)),
            ) => {
                if let Some(o) = super::groups::event(&e) {
                    ctx.out(&o);
                }
            }
            Some(Event::Message(m)) => {
                ctx.print_message(&m);
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    break Ok(());
                }
            }
            Some(Event::Kicked { code, reason }) => {
                if code == ErrorCode::InvalidToken {
                    break Err(Failure::new(
                        code_name(code),
                        format!("session revoked: {reason}; run `feige login`"),
                    )
                    .into());
                }
                if !ctx.cli.json {
                    let reason = terminal_safe(&reason);
                    eprintln!("disconnected by the server: {reason}; reconnecting");
                }
            }
            // Connection states, and event kinds newer than this tool, are not shown.
            Some(_) => {}
            None => break Err(ClientError::Closed.into()),
        }
    };
    client.close().await;
    result
}

/// Which page `feige history` shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    /// Most messages.
    pub limit: u32,
    /// Only messages before this seq (paging back from the newest).
    pub before: Option<u64>,
    /// Only messages after this seq (paging forward).
    pub after: Option<u64>,
}

/// `feige history`: one page of the conversation with a user (or of a group), oldest first:
/// the newest messages (before `--before`), or with `--after` the oldest after that seq.
pub(crate) async fn history(ctx: &Ctx, who: &str, group: bool, page: Page) -> anyhow::Result<()> {
    let forward = page.after.is_some();
    let messages = with_client(ctx, |client| async move {
        let mut req = pb::History {
            limit: page.limit,
            before_seq: page.before.unwrap_or(0),
            after_seq: page.after.unwrap_or(0),
            ..Default::default()
        };
        if group {
            req.conversation_id = who.parse().context("with --group, give the group id")?;
        } else {
            req.peer_user = user_id(&client, who).await?;
        }
        Ok(client.history(req).await?)
    })
    .await?;
    // The server answers newest first (oldest first with after_seq); show a chat log.
    if forward {
        messages.iter().for_each(|m| ctx.print_message(m));
    } else {
        messages.iter().rev().for_each(|m| ctx.print_message(m));
    }
    Ok(())
}

/// `feige search`: full-text search over the user's conversations, newest first.
pub(crate) async fn search(ctx: &Ctx, query: &str, limit: Option<u32>) -> anyhow::Result<()> {
    let (client, _events, _) = ctx.resume(false).await?;
    let result = client
        .search(pb::Search {
            query: query.to_owned(),
            limit: limit.unwrap_or(0),
            ..Default::default()
        })
        .await;
    client.close().await;
    for m in &result? {
        ctx.print_message(m);
    }
    Ok(())
}

/// What `feige send --json` prints.
#[derive(Serialize)]
struct Sent {
    #[serde(rename = "type")]
    kind: &'static str,
    message_id: String,
    conversation_id: String,
    seq: String,
    sent_at: String,
    duplicate: bool,
}
