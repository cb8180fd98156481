//! Friend commands: finding users, friends and friend requests, blocks and presence.

use feige_tools::social::{self as out, Out};

use super::{user_id, with_client, Ctx};
use crate::FriendsCmd;

/// `feige search-users`: one page of the users matching `query`.
pub(crate) async fn search_users(
    ctx: &Ctx,
    query: &str,
    limit: Option<u32>,
    offset: u32,
) -> anyhow::Result<()> {
    let page = with_client(ctx, |c| async move {
        Ok(c.search_users(query, limit.unwrap_or(0), offset).await?)
    })
    .await?;
    for u in &page.users {
        ctx.out(&out::user(u));
    }
    if page.has_more && !ctx.cli.json {
        eprintln!(
            "more results: --offset {}",
            offset as usize + page.users.len()
        );
    }
    Ok(())
}

/// `feige friends`: lists friends, or acts on a friend, a friend request or a block.
pub(crate) async fn friends(ctx: &Ctx, action: Option<&FriendsCmd>) -> anyhow::Result<()> {
    let action = action.unwrap_or(&FriendsCmd::List);
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            FriendsCmd::List => c.friends().await?.iter().map(out::friend).collect(),
            FriendsCmd::Add { who, message } => {
                let id = user_id(&c, who).await?;
                let sent = c.friend_request(id, message).await?;
                let text = if sent.became_friends {
                    format!("user {id} had asked you too: you are friends now")
                } else {
                    format!("friend request #{} sent to user {id}", sent.request_id)
                };
                vec![Out {
                    json: serde_json::json!({
                        "type": "friend_request_sent",
                        "request_id": sent.request_id.to_string(),
                        "user_id": id.to_string(),
                        "became_friends": sent.became_friends,
                    }),
                    text,
                }]
            }
            FriendsCmd::Requests => {
                let l = c.friend_requests().await?;
                let incoming = l
                    .incoming
                    .iter()
                    .map(|r| out::friend_request(r, "incoming"));
                let outgoing = l
                    .outgoing
                    .iter()
                    .map(|r| out::friend_request(r, "outgoing"));
                incoming.chain(outgoing).collect()
            }
            FriendsCmd::Accept { request_id } => {
                vec![out::friend_response(
                    &c.respond_friend_request(*request_id, true).await?,
                )]
            }
            FriendsCmd::Reject { request_id } => {
                vec![out::friend_response(
                    &c.respond_friend_request(*request_id, false).await?,
                )]
            }
            FriendsCmd::Remark { who, remark } => {
                let id = user_id(&c, who).await?;
                vec![out::friend(&c.set_remark(id, remark).await?)]
            }
            FriendsCmd::Delete { who } => {
                let id = user_id(&c, who).await?;
                c.delete_friend(id).await?;
                vec![done(
                    "friend_deleted",
                    id,
                    format!("user {id} is no longer your friend"),
                )]
            }
            FriendsCmd::Block { who } => {
                let id = user_id(&c, who).await?;
                c.block(id).await?;
                vec![done("blocked", id, format!("blocked user {id}"))]
            }
            FriendsCmd::Unblock { who } => {
                let id = user_id(&c, who).await?;
                c.unblock(id).await?;
                vec![done("unblocked", id, format!("unblocked user {id}"))]
            }
            FriendsCmd::Blocked => c.blocked().await?.iter().map(out::user).collect(),
            FriendsCmd::Presence { who } => {
                let id = user_id(&c, who).await?;
                vec![out::presence(id, c.presence(id).await?)]
            }
            FriendsCmd::Contacts(cmd) => super::contacts::run(&c, cmd).await?,
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

/// A success line for an action on a user.
fn done(kind: &str, user_id: u64, text: String) -> Out {
    Out {
        json: serde_json::json!({ "type": kind, "user_id": user_id.to_string() }),
        text,
    }
}
