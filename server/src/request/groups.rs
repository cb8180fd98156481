//! Groups: create, profile, invitations, members, roles, cards, mutes, dismiss. Each request
//! is served on its own task; changes go through [`feige_storage::Writer::group`], which
//! posts the change's system notice in the group (pushed by the router in commit order) and
//! answers after the commit; then the members get `group_updated`, those who left
//! `group_removed`, and approvers and invitees `group_invitation`.

use feige_protocol::{frame, pb, Envelope, PushKind, ResponseResult};
use feige_storage::group::{
    self, Change, Connection, GroupUpdate, MemberPage, Mute, NewGroup, Role,
};
use feige_storage::{ConversationId, StorageError, UserId};

use super::caller::{Caller, Reply};
use crate::convert;
use crate::error::RequestError;
use crate::router::ReplyTo;
use crate::validate::{self, page_limit, ANNOUNCEMENT, CARD, GROUP_NAME};

const MEMBERS_DEFAULT: u32 = 100;
const MEMBERS_MAX: u32 = 500;
/// Longest mute of one member: 30 days.
const MAX_MUTE_SECONDS: u64 = 30 * 86_400;

/// Runs a change of `group` (None: a new group) on the writer as the caller.
async fn change<T, F>(me: &Caller, group: Option<ConversationId>, f: F) -> Result<T, RequestError>
where
    T: Send + 'static,
    F: FnOnce(&Connection, u64, i64) -> Result<Change<T>, StorageError> + Send + 'static,
{
    let ctx = ReplyTo {
        request_id: 0,
        conn_id: me.conn_id,
        outbox: me.outbox.clone(),
    };
    Ok(me.shared.writer.group(ctx, me.user, group, f).await?)
}

/// Pushes the group's profile to every member (each with their own role), except the
/// calling connection. The change is committed already: a failed read is logged, not
/// reported. Racing changes of one group push in turn (the profile lock's stripe of the
/// group id), each what it reads then, so the last push is the group as it is.
async fn announce(me: &Caller, group: ConversationId) {
    let _order = me.shared.presence.profile_order(group).await;
    let user = me.user;
    let found = me
        .shared
        .store
        .read(move |c| {
            let roles = group::member_roles(c, group)?;
            // Read as a member (the owner always is one) to get the profile.
            let owner = roles
                .iter()
                .find(|r| r.1 == Role::Owner)
                .map_or(user, |r| r.0);
            Ok((group::group_info(c, owner, group)?, roles))
        })
        .await;
    let (mut info, roles) = match found {
        Ok(v) => v,
        // Dismissed meanwhile: nobody to tell.
        Err(StorageError::UnknownConversation | StorageError::NotAMember(_)) => return,
        Err(e) => {
            tracing::warn!(error = %e, group, "cannot read a changed group to push it");
            return;
        }
    };
    for role in [Role::Member, Role::Admin, Role::Owner] {
        info.my_role = role;
        let push = PushKind::GroupUpdated(convert::group(&info));
        let users = roles.iter().filter(|r| r.1 == role).map(|r| r.0);
        push_once(me, users, push);
    }
}

/// Pushes `kind`, encoded once, to every connection of `users` but the calling one.
fn push_once(me: &Caller, users: impl IntoIterator<Item = UserId>, kind: PushKind) {
    let frame = frame::encode_to_bytes(&Envelope::push(kind));
    for u in users {
        me.shared.sessions.for_each(u, |p| {
            if p.conn_id != me.conn_id {
                p.deliver(&frame);
            }
        });
    }
}

fn removed(me: &Caller, group: ConversationId, users: &[UserId], reason: pb::GroupRemovedReason) {
    let push = PushKind::GroupRemoved(pb::GroupRemoved {
        group_id: group,
        reason: reason as i32,
        by_user: me.user,
    });
    push_once(me, users.iter().copied(), push);
}

/// The users a CreateGroup or InviteToGroup names: no more than a group may hold.
fn users(me: &Caller, what: &str, ids: &[u64]) -> Result<Vec<UserId>, RequestError> {
    let max = me.shared.config.max_group_members;
    if ids.len() > max {
        return Err(RequestError::invalid(format!("at most {max} {what}")));
    }
    ids.iter()
        .map(|&u| validate::required_id(what, u))
        .collect()
}

/// Serves `CreateGroup`: a new group with the caller as owner and friends as members.
pub(crate) async fn create(me: Caller, r: pb::CreateGroup) -> Reply {
    let g = NewGroup {
        name: validate::text(&GROUP_NAME, &r.name)?,
        members: users(&me, "members", &r.members)?,
        join_approval: r.join_approval,
        max_members: me.shared.config.max_group_members,
    };
    let owner = me.user;
    let info = change(&me, None, move |c, _, now| group::create(c, owner, &g, now)).await?;
    announce(&me, info.id).await;
    Ok(ResponseResult::GroupCreate(convert::group(&info)))
}

/// Serves `GetGroup`: the profile, for members.
pub(crate) async fn info(me: Caller, r: pb::GetGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let user = me.user;
    let g = me
        .shared
        .store
        .read(move |c| group::group_info(c, user, group))
        .await?;
    Ok(ResponseResult::GroupInfo(convert::group(&g)))
}

/// Serves `UpdateGroup` (owner and admins); the members get `group_updated`.
pub(crate) async fn update(me: Caller, r: pb::UpdateGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let u = GroupUpdate {
        name: r
            .name
            .map(|n| validate::text(&GROUP_NAME, &n))
            .transpose()?,
        avatar: match r.avatar {
            Some(a) => Some(crate::files::avatar(&me.shared, me.user, &a).await?),
            None => None,
        },
        announcement: r
            .announcement
            .map(|a| validate::text(&ANNOUNCEMENT, &a))
            .transpose()?,
        join_approval: r.join_approval,
    };
    let actor = me.user;
    let info = change(&me, Some(group), move |c, _, _| {
        group::update(c, actor, group, &u)
    })
    .await?;
    announce(&me, group).await;
    Ok(ResponseResult::GroupUpdate(convert::group(&info)))
}

/// Serves `InviteToGroup`: friends of the caller join, or wait for approval (then the
/// invitee and the owner and admins get `group_invitation`).
pub(crate) async fn invite(me: Caller, r: pb::InviteToGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let invited = users(&me, "users", &r.users)?;
    let (actor, max) = (me.user, me.shared.config.max_group_members);
    let out = change(&me, Some(group), move |c, last_seq, now| {
        group::invite(c, actor, group, &invited, max, last_seq, now)
    })
    .await?;
    if !out.added.is_empty() {
        announce(&me, group).await;
    }
    if !out.pending.is_empty() {
        invitations(&me, group, &out.pending).await;
    }
    Ok(ResponseResult::GroupInvite(pb::GroupInviteResult {
        added: out.added,
        pending: out.pending,
    }))
}

/// Tells the invitees and the group's owner and admins of invitations waiting for
/// approval. They are committed already: a failed read is logged, not reported.
async fn invitations(me: &Caller, group: ConversationId, pending: &[UserId]) {
    let user = me.user;
    let read = me
        .shared
        .store
        .read(move |c| {
            let info = group::group_info(c, user, group)?;
            Ok((info.name, group::member_roles(c, group)?))
        })
        .await;
    let (name, roles) = match read {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, group, "cannot read a group to push its invitations");
            return;
        }
    };
    let now = feige_storage::now_ms();
    for &u in pending {
        let push = PushKind::GroupInvitation(pb::GroupInvitation {
            group_id: group,
            group_name: name.clone(),
            user_id: u,
            inviter: user,
            created_at_ms: now,
        });
        let managers = roles.iter().filter(|m| m.1.manages()).map(|m| m.0);
        push_once(me, std::iter::once(u).chain(managers), push);
    }
}

/// Serves `AnswerGroupInvite`: the invitee declines, an owner or admin approves or rejects.
pub(crate) async fn answer_invite(me: Caller, r: pb::AnswerGroupInvite) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let user = validate::required_id("user_id", r.user_id)?;
    let (actor, accept, max) = (me.user, r.accept, me.shared.config.max_group_members);
    let joined = change(&me, Some(group), move |c, last_seq, now| {
        group::answer_invite(c, actor, group, user, accept, max, last_seq, now)
    })
    .await?;
    if joined {
        announce(&me, group).await;
    }
    Ok(ResponseResult::GroupAnswerInvite(pb::Done {}))
}

/// Serves `RemoveFromGroup`; the removed member gets `group_removed`.
pub(crate) async fn remove(me: Caller, r: pb::RemoveFromGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let user = validate::required_id("user_id", r.user_id)?;
    let actor = me.user;
    change(&me, Some(group), move |c, _, _| {
        group::remove(c, actor, group, user)
    })
    .await?;
    removed(&me, group, &[user], pb::GroupRemovedReason::Removed);
    announce(&me, group).await;
    Ok(ResponseResult::GroupRemove(pb::Done {}))
}

/// Serves `LeaveGroup`; the caller's other connections get `group_removed`.
pub(crate) async fn leave(me: Caller, r: pb::LeaveGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let actor = me.user;
    change(&me, Some(group), move |c, _, _| {
        group::leave(c, actor, group)
    })
    .await?;
    removed(&me, group, &[actor], pb::GroupRemovedReason::Left);
    announce(&me, group).await;
    Ok(ResponseResult::GroupLeave(pb::Done {}))
}

/// Serves `DismissGroup` (the owner); every member gets `group_removed`.
pub(crate) async fn dismiss(me: Caller, r: pb::DismissGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let actor = me.user;
    let members = change(&me, Some(group), move |c, _, now| {
        group::dismiss(c, actor, group, now)
    })
    .await?;
    removed(&me, group, &members, pb::GroupRemovedReason::Dismissed);
    Ok(ResponseResult::GroupDismiss(pb::Done {}))
}

/// Serves `TransferGroup` (the owner).
pub(crate) async fn transfer(me: Caller, r: pb::TransferGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let user = validate::required_id("user_id", r.user_id)?;
    let actor = me.user;
    change(&me, Some(group), move |c, _, _| {
        group::transfer(c, actor, group, user)
    })
    .await?;
    announce(&me, group).await;
    Ok(ResponseResult::GroupTransfer(pb::Done {}))
}

/// Serves `SetGroupRole` (the owner appoints or dismisses admins).
pub(crate) async fn set_role(me: Caller, r: pb::SetGroupRole) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let user = validate::required_id("user_id", r.user_id)?;
    let role = match pb::GroupRole::try_from(r.role) {
        Ok(pb::GroupRole::Admin) => Role::Admin,
        Ok(pb::GroupRole::Member) => Role::Member,
        _ => {
            return Err(RequestError::invalid(
                "role must be ADMIN or MEMBER (transfer the group to change its owner)",
            ))
        }
    };
    let actor = me.user;
    change(&me, Some(group), move |c, _, _| {
        group::set_role(c, actor, group, user, role)
    })
    .await?;
    announce(&me, group).await;
    Ok(ResponseResult::GroupSetRole(pb::Done {}))
}

/// Serves `ListGroupMembers`: a page by user id, with roles, cards and online state.
pub(crate) async fn members(me: Caller, r: pb::ListGroupMembers) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let page = MemberPage {
        after: validate::id("after_user", r.after_user)?,
        limit: page_limit(r.limit, MEMBERS_DEFAULT, MEMBERS_MAX),
    };
    let user = me.user;
    let (list, has_more) = me
        .shared
        .store
        .read(move |c| group::members(c, user, group, page))
        .await?;
    Ok(ResponseResult::GroupMembers(pb::GroupMemberList {
        members: list
            .iter()
            .map(|m| convert::member(m, me.online(m.user_id)))
            .collect(),
        has_more,
    }))
}

/// Serves `SetGroupCard`: the caller's card name in the group.
pub(crate) async fn set_card(me: Caller, r: pb::SetGroupCard) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let card = validate::text(&CARD, &r.card)?;
    let actor = me.user;
    change(&me, Some(group), move |c, _, _| {
        group::set_card(c, actor, group, &card)
    })
    .await?;
    Ok(ResponseResult::GroupSetCard(pb::Done {}))
}

/// Serves `MuteGroupMember`: mutes a member for a while (0 lifts it).
pub(crate) async fn mute(me: Caller, r: pb::MuteGroupMember) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let user = validate::required_id("user_id", r.user_id)?;
    if r.seconds > MAX_MUTE_SECONDS {
        return Err(RequestError::invalid("seconds: at most 30 days (2592000)"));
    }
    let m = Mute {
        user,
        duration_ms: i64::try_from(r.seconds * 1000).unwrap_or(i64::MAX),
    };
    let actor = me.user;
    change(&me, Some(group), move |c, _, now| {
        group::mute(c, actor, group, m, now)
    })
    .await?;
    Ok(ResponseResult::GroupMute(pb::Done {}))
}

/// Serves `MuteGroup`: mutes every plain member, or lifts it; the members get
/// `group_updated`.
pub(crate) async fn mute_all(me: Caller, r: pb::MuteGroup) -> Reply {
    let group = validate::required_id("group_id", r.group_id)?;
    let (actor, on) = (me.user, r.mute);
    change(&me, Some(group), move |c, _, _| {
        group::mute_all(c, actor, group, on)
    })
    .await?;
    announce(&me, group).await;
    Ok(ResponseResult::GroupMuteAll(pb::Done {}))
}

/// Serves `ListGroups`: the caller's groups.
pub(crate) async fn list(me: Caller) -> Reply {
    let user = me.user;
    let list = me
        .shared
        .store
        .read(move |c| group::groups(c, user))
        .await?;
    Ok(ResponseResult::Groups(pb::GroupList {
        groups: list.iter().map(convert::group).collect(),
    }))
}

/// Serves `ListGroupInvites`: invitations to the caller, and those the caller may approve.
pub(crate) async fn invites(me: Caller) -> Reply {
    let user = me.user;
    let list = me
        .shared
        .store
        .read(move |c| group::invites(c, user))
        .await?;
    Ok(ResponseResult::GroupInvites(pb::GroupInviteList {
        invites: list.iter().map(convert::invitation).collect(),
    }))
}
