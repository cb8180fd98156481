//! `feige recall` and `feige receipts`: a message named by its conversation (or peer) and seq.

use anyhow::Context;
use feige_client::{pb, Client, Event};
use feige_tools::social::{self as out, Out};
use serde_json::json;

use super::args::MessageAt;
use super::{user_id, with_client, Ctx};

/// The conversation `at` names: its id, or the 1:1 conversation with the user (found through
/// its newest message).
pub(super) async fn conversation(client: &Client, at: &MessageAt) -> anyhow::Result<u64> {
    if at.conversation {
        return at
            .target
            .parse()
            .with_context(|| format!("{:?} is not a conversation id", at.target));
    }
    let peer_user = user_id(client, &at.target).await?;
    let newest = client
        .history(pb::History {
            peer_user,
            limit: 1,
            ..Default::default()
        })
        .await?;
    newest
        .first()
        .map(|m| m.conversation_id)
        .ok_or_else(|| anyhow::anyhow!("no conversation with user {peer_user} yet"))
}

/// `feige recall`: recalls the message.
pub(crate) async fn recall(ctx: &Ctx, at: &MessageAt) -> anyhow::Result<()> {
    let conv = with_client(ctx, |c| async move {
        let conv = conversation(&c, at).await?;
        c.recall(conv, at.seq).await?;
        Ok(conv)
    })
    .await?;
    ctx.out(&Out {
        json: json!({
            "type": "recalled",
            "conversation_id": conv.to_string(),
            "seq": at.seq.to_string(),
        }),
        text: format!("recalled message #{} of conversation {conv}", at.seq),
    });
    Ok(())
}

/// `feige receipts`: the counts, then one line per reader.
pub(crate) async fn receipts(ctx: &Ctx, at: &MessageAt) -> anyhow::Result<()> {
    let r = with_client(ctx, |c| async move {
        let conv = conversation(&c, at).await?;
        Ok(c.receipts(conv, at.seq).await?)
    })
    .await?;
    let mut text = format!(
        "message #{} of conversation {}: read by {}, unread by {}",
        r.seq, r.conversation_id, r.read_count, r.unread_count
    );
    let mut v = json!({
        "type": "receipts",
        "conversation_id": r.conversation_id.to_string(),
        "seq": r.seq.to_string(),
        "read_count": r.read_count,
        "unread_count": r.unread_count,
        "readers": r.readers.iter().map(|u| u.user_id.to_string()).collect::<Vec<_>>(),
    });
    if r.direct {
        text.push_str(&format!(
            "; the peer has received up to #{} and read up to #{}",
            r.peer_delivered_seq, r.peer_read_seq
        ));
        v["peer_read_seq"] = r.peer_read_seq.to_string().into();
        v["peer_delivered_seq"] = r.peer_delivered_seq.to_string().into();
    }
    ctx.out(&Out { json: v, text });
    if !ctx.cli.json {
        for u in &r.readers {
            ctx.out(&out::user(u));
        }
    }
    Ok(())
}

/// `feige recalls`: one line per recall, then how to page on.
pub(crate) async fn recalls(ctx: &Ctx, after: u64, limit: Option<u32>) -> anyhow::Result<()> {
    let page = with_client(ctx, |c| async move {
        Ok(c.recalls(after, limit.unwrap_or(0)).await?)
    })
    .await?;
    for r in &page.recalls {
        if let Some(o) = event(&Event::MessageRecalled(*r)) {
            ctx.out(&o);
        }
    }
    if page.has_more && !ctx.cli.json {
        if let Some(last) = page.recalls.last() {
            eprintln!("more recalls: --after {}", last.recall_id);
        }
    }
    Ok(())
}

/// A receipt or recall event for `listen`; `None` for other events.
pub(crate) fn event(e: &Event) -> Option<Out> {
    Some(match e {
        Event::ReadReceipt(r) => Out {
            json: json!({
                "type": "read_receipt",
                "conversation_id": r.conversation_id.to_string(),
                "user_id": r.user_id.to_string(),
                "read_seq": r.read_seq.to_string(),
                "delivered_seq": r.delivered_seq.to_string(),
            }),
            text: format!(
                "[conv {}] user {} has received up to #{} and read up to #{}",
                r.conversation_id, r.user_id, r.delivered_seq, r.read_seq
            ),
        },
        Event::MessageRecalled(r) => Out {
            json: json!({
                "type": "message_recalled",
                "conversation_id": r.conversation_id.to_string(),
                "seq": r.seq.to_string(),
                "message_id": r.message_id.to_string(),
                "recalled_by": r.recalled_by.to_string(),
                "recall_id": r.recall_id.to_string(),
                "recalled_at": r.recalled_at_ms.to_string(),
            }),
            text: format!(
                "[conv {} #{}] recalled by user {} (recall {})",
                r.conversation_id, r.seq, r.recalled_by, r.recall_id
            ),
        },
        _ => return None,
    })
}
