//! The conversation list and read positions (`feige chats`).

use feige_tools::social::{self as out, Out};

use super::{with_client, Ctx};
use crate::{ChatsCmd, ChatsPage};

/// `feige chats`: one page of the conversation list, or marks a conversation read.
pub(crate) async fn chats(
    ctx: &Ctx,
    page: &ChatsPage,
    action: Option<&ChatsCmd>,
) -> anyhow::Result<()> {
    let page = match action {
        Some(ChatsCmd::List(p)) => p,
        _ => page,
    };
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            None | Some(ChatsCmd::List(_)) => {
                let list = c
                    .conversations_page(page.limit.unwrap_or(0), page.before)
                    .await?;
                let mut outs: Vec<Out> = list.conversations.iter().map(out::conversation).collect();
                if let (true, Some(last)) = (list.has_more, list.conversations.last()) {
                    outs.push(out::more_conversations(last, page.limit.unwrap_or(0)));
                }
                outs
            }
            Some(ChatsCmd::Read {
                conversation_id,
                seq,
            }) => vec![out::read_position(
                &c.mark_read(*conversation_id, *seq).await?,
            )],
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}
