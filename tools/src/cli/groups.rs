//! Group commands (`feige group ...`) and group messages (`feige send --group`, `--mention`).

use anyhow::bail;
use feige_client::{pb, Client, Event};
use feige_tools::social::Out;
use serde_json::{json, Value};

use super::args::GroupCmd;
use super::{user_id, with_client, Ctx};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn role_name(role: i32) -> &'static str {
    match pb::GroupRole::try_from(role) {
        Ok(pb::GroupRole::Owner) => "owner",
        Ok(pb::GroupRole::Admin) => "admin",
        _ => "member",
    }
}

/// A group's profile as a result line.
fn info(g: &pb::GroupInfo) -> Out {
    let mut text = format!(
        "group {}: {} ({} members, owner user {}, you are {})",
        g.group_id,
        g.name,
        g.member_count,
        g.owner,
        role_name(g.my_role)
    );
    if g.mute_all {
        text.push_str(", everyone muted");
    }
    if g.join_approval {
        text.push_str(", invitations need approval");
    }
    if !g.announcement.is_empty() {
        text.push_str(&format!("\n  announcement: {}", g.announcement));
    }
    Out {
        json: json!({
            "type": "group",
            "group_id": g.group_id.to_string(),
            "conversation_id": g.conversation_id.to_string(),
            "name": g.name,
            "avatar": g.avatar,
            "announcement": g.announcement,
            "owner": g.owner.to_string(),
            "member_count": g.member_count,
            "mute_all": g.mute_all,
            "join_approval": g.join_approval,
            "my_role": role_name(g.my_role),
        }),
        text,
    }
}

fn member(m: &pb::GroupMember) -> Out {
    let card = if m.card.is_empty() {
        String::new()
    } else {
        format!(" \"{}\"", m.card)
    };
    let muted = if m.muted_until_ms > now_ms() {
        " (muted)"
    } else {
        ""
    };
    Out {
        json: json!({
            "type": "group_member",
            "user_id": m.user_id.to_string(),
            "nickname": m.nickname,
            "role": role_name(m.role),
            "card": m.card,
            "online": m.online,
            "muted_until": m.muted_until_ms,
        }),
        text: format!(
            "{} (user {}){card}: {}{}{muted}",
            m.nickname,
            m.user_id,
            role_name(m.role),
            if m.online { ", online" } else { "" }
        ),
    }
}

fn invitation(i: &pb::GroupInvitation) -> Out {
    Out {
        json: json!({
            "type": "group_invitation",
            "group_id": i.group_id.to_string(),
            "group_name": i.group_name,
            "user": i.user_id.to_string(),
            "inviter": i.inviter.to_string(),
        }),
        text: format!(
            "user {} invited user {} to group {} ({}): waiting for approval",
            i.inviter, i.user_id, i.group_id, i.group_name
        ),
    }
}

fn done(what: &str, group: u64) -> Out {
    Out {
        json: json!({ "type": "done", "group_id": group.to_string() }),
        text: what.to_owned(),
    }
}

/// The line `feige listen` prints for a group event; `None` for other events.
pub(crate) fn event(e: &Event) -> Option<Out> {
    Some(match e {
        Event::GroupUpdated(g) => {
            let mut o = info(g);
            o.json["type"] = Value::from("group_updated");
            o.text = format!("group changed: {}", o.text);
            o
        }
        Event::GroupRemoved(r) => {
            let why = match pb::GroupRemovedReason::try_from(r.reason) {
                Ok(pb::GroupRemovedReason::Removed) => "removed",
                Ok(pb::GroupRemovedReason::Dismissed) => "dismissed",
                _ => "left",
            };
            Out {
                json: json!({
                    "type": "group_removed",
                    "group_id": r.group_id.to_string(),
                    "reason": why,
                    "by_user": r.by_user.to_string(),
                }),
                text: format!("you are no longer in group {} ({why})", r.group_id),
            }
        }
        Event::GroupInvitation(i) => invitation(i),
        _ => return None,
    })
}

async fn ids(c: &Client, users: &[String]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(user_id(c, u).await?);
    }
    Ok(out)
}

/// `feige send --group` / `--mention`: a message to a group, with mentions.
pub(crate) async fn send(
    ctx: &Ctx,
    who: &str,
    group: bool,
    text: &str,
    mention: &[String],
    mention_all: bool,
) -> anyhow::Result<()> {
    if !group {
        bail!("--mention and --mention-all are for group messages: add --group");
    }
    let Ok(group) = who.parse::<u64>() else {
        bail!("with --group, the recipient must be a group id");
    };
    let ok = with_client(ctx, |c| async move {
        let mentions = ids(&c, mention).await?;
        Ok(c.send_group_text(group, text, &mentions, mention_all)
            .await?)
    })
    .await?;
    ctx.out(&Out {
        json: json!({
            "type": "sent",
            "message_id": ok.message_id.to_string(),
            "conversation_id": ok.conversation_id.to_string(),
            "seq": ok.seq.to_string(),
            "sent_at": ok.sent_at_ms.to_string(),
            "duplicate": ok.duplicate,
        }),
        text: format!(
            "sent to group {group}: [conv {} #{}] message {}",
            ok.conversation_id, ok.seq, ok.message_id
        ),
    });
    Ok(())
}

/// `feige group`: lists the user's groups, or runs a group command.
pub(crate) async fn group(ctx: &Ctx, action: Option<&GroupCmd>) -> anyhow::Result<()> {
    let action = action.unwrap_or(&GroupCmd::List);
    let outs: Vec<Out> = with_client(ctx, |c| async move { run(&c, action).await }).await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

async fn run(c: &Client, action: &GroupCmd) -> anyhow::Result<Vec<Out>> {
    Ok(match action {
        GroupCmd::List => c.groups().await?.iter().map(info).collect(),
        GroupCmd::Create {
            name,
            members,
            approval,
        } => {
            let members = ids(c, members).await?;
            vec![info(&c.group_create(name, &members, *approval).await?)]
        }
        GroupCmd::Info { group } => vec![info(&c.group_info(*group).await?)],
        GroupCmd::Update {
            group,
            name,
            avatar,
            announcement,
            approval,
        } => {
            let u = pb::UpdateGroup {
                group_id: *group,
                name: name.clone(),
                avatar: avatar.clone(),
                announcement: announcement.clone(),
                join_approval: *approval,
            };
            vec![info(&c.group_update(u).await?)]
        }
        GroupCmd::Invite { group, users } => {
            let users = ids(c, users).await?;
            let r = c.group_invite(*group, &users).await?;
            let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>();
            vec![Out {
                json: json!({
                    "type": "group_invited",
                    "group_id": group.to_string(),
                    "added": list(&r.added),
                    "pending": list(&r.pending),
                }),
                text: format!(
                    "added: [{}]; waiting for approval: [{}]",
                    list(&r.added).join(", "),
                    list(&r.pending).join(", ")
                ),
            }]
        }
        GroupCmd::Remove { group, member } => {
            let user = user_id(c, member).await?;
            c.group_remove(*group, user).await?;
            vec![done(
                &format!("removed user {user} from group {group}"),
                *group,
            )]
        }
        GroupCmd::Leave { group } => {
            c.group_leave(*group).await?;
            vec![done(&format!("left group {group}"), *group)]
        }
        GroupCmd::Dismiss { group } => {
            c.group_dismiss(*group).await?;
            vec![done(&format!("dismissed group {group}"), *group)]
        }
        GroupCmd::Transfer { group, member } => {
            let user = user_id(c, member).await?;
            c.group_transfer(*group, user).await?;
            vec![done(&format!("user {user} owns group {group} now"), *group)]
        }
        GroupCmd::Role {
            group,
            member,
            role,
        } => {
            let r = match role.as_str() {
                "admin" => pb::GroupRole::Admin,
                "member" => pb::GroupRole::Member,
                _ => bail!("the role must be \"admin\" or \"member\""),
            };
            let user = user_id(c, member).await?;
            c.group_set_role(*group, user, r).await?;
            vec![done(
                &format!("user {user} is {role} of group {group}"),
                *group,
            )]
        }
        GroupCmd::Members {
            group,
            limit,
            after,
        } => {
            let page = c.group_members(*group, limit.unwrap_or(0), *after).await?;
            let mut outs: Vec<Out> = page.members.iter().map(member).collect();
            if page.has_more {
                let last = page.members.last().map_or(0, |m| m.user_id);
                outs.push(Out {
                    json: json!({ "type": "more", "after": last.to_string() }),
                    text: format!("more members: --after {last}"),
                });
            }
            outs
        }
        GroupCmd::Card { group, card } => {
            c.group_set_card(*group, card).await?;
            vec![done(
                &format!("your card in group {group} is \"{card}\""),
                *group,
            )]
        }
        GroupCmd::Mute {
            group,
            member,
            seconds,
        } => {
            let user = user_id(c, member).await?;
            c.group_mute(*group, user, *seconds).await?;
            let what = if *seconds == 0 {
                format!("unmuted user {user}")
            } else {
                format!("muted user {user} for {seconds} s")
            };
            vec![done(&what, *group)]
        }
        GroupCmd::MuteAll { group, state } => {
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                _ => bail!("say \"on\" or \"off\""),
            };
            c.group_mute_all(*group, on).await?;
            vec![done(
                &format!("group {group}: everyone muted: {state}"),
                *group,
            )]
        }
        GroupCmd::Invites => c.group_invites().await?.iter().map(invitation).collect(),
        GroupCmd::Answer {
            group,
            member,
            reject,
        } => {
            let user = user_id(c, member).await?;
            c.group_answer_invite(*group, user, !reject).await?;
            let what = if *reject { "refused" } else { "approved" };
            vec![done(
                &format!("{what} the invitation of user {user}"),
                *group,
            )]
        }
    })
}
