//! The method table's rows of groups, world rooms, red packets and the wallet.

use serde_json::{json, Value};

use super::method::{answer, Method, Prepared, Serve};
use super::params::{ParamError, Params};
use super::render;
use crate::{pb, RequestKind as K};

const fn row(name: &'static str, f: fn(&Params) -> Result<Prepared, ParamError>) -> Method {
    Method {
        name,
        serve: Serve::Request(f),
    }
}

/// This family's rows.
pub(super) const METHODS: &[Method] = &[
    row("group_create", group_create),
    row("group_info", group_info),
    row("group_update", group_update),
    row("group_invite", group_invite),
    row("group_remove", group_remove),
    row("group_leave", group_leave),
    row("group_dismiss", group_dismiss),
    row("group_transfer", group_transfer),
    row("group_set_role", group_set_role),
    row("group_members", group_members),
    row("group_set_card", group_set_card),
    row("group_mute", group_mute),
    row("group_mute_all", group_mute_all),
    row("groups", groups),
    row("group_invites", group_invites),
    row("group_answer_invite", group_answer_invite),
    row("room_join", room_join),
    row("room_leave", room_leave),
    row("room_members", room_members),
    row("room_send", room_send),
    row("room_history", room_history),
    row("red_packet_send", red_packet_send),
    row("red_packet_grab", red_packet_grab),
    row("red_packet_info", red_packet_info),
    row("wallet", wallet),
    row("wallet_top_up", wallet_top_up),
];

/// `group_create`: `{"name","members":[user...],"join_approval"?}` →
/// `{"group_id","conversation_id"}`.
fn group_create(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::CreateGroup {
        name: p.string("name")?,
        members: p.ids("members")?,
        join_approval: p.opt_bool("join_approval")?.unwrap_or(false),
    };
    Ok(answer!(K::GroupCreate(r), GroupCreate(g) => json!({
        "group_id": g.group_id.to_string(),
        "conversation_id": g.conversation_id.to_string(),
    })))
}

/// `group_info`: `{"group_id"}` → the group's profile.
fn group_info(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::GetGroup {
        group_id: p.id("group_id")?,
    };
    Ok(answer!(K::GroupInfo(r), GroupInfo(g) => render::group(&g)))
}

/// `group_update`: `{"group_id","name"?,"avatar"?,"announcement"?,"join_approval"?}` → the
/// group's profile.
fn group_update(p: &Params) -> Result<Prepared, ParamError> {
    let u = pb::UpdateGroup {
        group_id: p.id("group_id")?,
        name: p.opt_string("name")?,
        avatar: p.opt_string("avatar")?,
        announcement: p.opt_string("announcement")?,
        join_approval: p.opt_bool("join_approval")?,
    };
    Ok(answer!(K::GroupUpdate(u), GroupUpdate(g) => render::group(&g)))
}

/// `group_invite`: `{"group_id","users":[user...]}` → `{"added":[...],"pending":[...]}`.
fn group_invite(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::InviteToGroup {
        group_id: p.id("group_id")?,
        users: p.ids("users")?,
    };
    Ok(answer!(K::GroupInvite(r), GroupInvite(r) =>
        json!({ "added": render::ids(&r.added), "pending": render::ids(&r.pending) })))
}

/// `group_remove`: `{"group_id","user"}` → `{}`.
fn group_remove(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RemoveFromGroup {
        group_id: p.id("group_id")?,
        user_id: p.id("user")?,
    };
    Ok(answer!(K::GroupRemove(r), GroupRemove(_) => json!({})))
}

/// `group_leave`: `{"group_id"}` → `{}`.
fn group_leave(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::LeaveGroup {
        group_id: p.id("group_id")?,
    };
    Ok(answer!(K::GroupLeave(r), GroupLeave(_) => json!({})))
}

/// `group_dismiss`: `{"group_id"}` → `{}`.
fn group_dismiss(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::DismissGroup {
        group_id: p.id("group_id")?,
    };
    Ok(answer!(K::GroupDismiss(r), GroupDismiss(_) => json!({})))
}

/// `group_transfer`: `{"group_id","user"}` → `{}`.
fn group_transfer(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::TransferGroup {
        group_id: p.id("group_id")?,
        user_id: p.id("user")?,
    };
    Ok(answer!(K::GroupTransfer(r), GroupTransfer(_) => json!({})))
}

/// `group_set_role`: `{"group_id","user","role":"admin"|"member"}` → `{}`.
fn group_set_role(p: &Params) -> Result<Prepared, ParamError> {
    let (group_id, user_id) = (p.id("group_id")?, p.id("user")?);
    let role = match p.string("role")?.as_str() {
        "admin" => pb::GroupRole::Admin,
        "member" => pb::GroupRole::Member,
        _ => {
            return Err(ParamError::params(
                "\"role\" must be \"admin\" or \"member\"",
            ))
        }
    };
    let r = pb::SetGroupRole {
        group_id,
        user_id,
        role: role as i32,
    };
    Ok(answer!(K::GroupSetRole(r), GroupSetRole(_) => json!({})))
}

/// `group_members`: `{"group_id","limit"?,"after"?}` → `{"members":[...],"has_more"}`.
fn group_members(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::ListGroupMembers {
        group_id: p.id("group_id")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
        after_user: p.opt_id("after")?.unwrap_or(0),
    };
    Ok(answer!(K::GroupMembers(r), GroupMembers(page) => {
        let members: Vec<Value> = page
            .members
            .iter()
            .map(|m| {
                json!({
                    "user_id": m.user_id.to_string(),
                    "nickname": m.nickname,
                    "role": render::role_name(m.role),
                    "card": m.card,
                    "online": m.online,
                    "muted_until": m.muted_until_ms,
                    "joined_at": m.joined_at_ms,
                })
            })
            .collect();
        json!({ "members": members, "has_more": page.has_more })
    }))
}

/// `group_set_card`: `{"group_id","card"}` → `{}`.
fn group_set_card(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::SetGroupCard {
        group_id: p.id("group_id")?,
        card: p.string("card")?,
    };
    Ok(answer!(K::GroupSetCard(r), GroupSetCard(_) => json!({})))
}

/// `group_mute`: `{"group_id","user","seconds"}` (0 lifts the mute) → `{}`.
fn group_mute(p: &Params) -> Result<Prepared, ParamError> {
    let (group_id, user_id) = (p.id("group_id")?, p.id("user")?);
    let seconds = p
        .opt_u32("seconds")?
        .ok_or_else(|| ParamError::params("missing \"seconds\""))?;
    let r = pb::MuteGroupMember {
        group_id,
        user_id,
        seconds: u64::from(seconds),
    };
    Ok(answer!(K::GroupMute(r), GroupMute(_) => json!({})))
}

/// `group_mute_all`: `{"group_id","mute"}` → `{}`.
fn group_mute_all(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::MuteGroup {
        group_id: p.id("group_id")?,
        mute: p.bool("mute")?,
    };
    Ok(answer!(K::GroupMuteAll(r), GroupMuteAll(_) => json!({})))
}

/// `groups`: `{}` → `{"groups":[...]}`.
fn groups(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Groups(pb::ListGroups {}), Groups(l) => {
        let groups: Vec<Value> = l.groups.iter().map(render::group).collect();
        json!({ "groups": groups })
    }))
}

/// `group_invites`: `{}` → `{"invites":[...]}`.
fn group_invites(_: &Params) -> Result<Prepared, ParamError> {
    Ok(
        answer!(K::GroupInvites(pb::ListGroupInvites {}), GroupInvites(l) => {
            let invites: Vec<Value> = l.invites.iter().map(render::group_invitation).collect();
            json!({ "invites": invites })
        }),
    )
}

/// `group_answer_invite`: `{"group_id","user","accept"}` → `{}`.
fn group_answer_invite(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::AnswerGroupInvite {
        group_id: p.id("group_id")?,
        user_id: p.id("user")?,
        accept: p.bool("accept")?,
    };
    Ok(answer!(K::GroupAnswerInvite(r), GroupAnswerInvite(_) => json!({})))
}

/// `room_join`: `{"room"}` → `{"room","member_count"}`.
fn room_join(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RoomJoin {
        room: p.id("room")?,
    };
    Ok(answer!(K::RoomJoin(r), RoomJoin(j) =>
        json!({ "room": j.room.to_string(), "member_count": j.member_count })))
}

/// `room_leave`: `{"room"}` → `{}`.
fn room_leave(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RoomLeave {
        room: p.id("room")?,
    };
    Ok(answer!(K::RoomLeave(r), RoomLeave(_) => json!({})))
}

/// `room_members`: `{"room","limit"?}` → `{"members":[user...],"count"}`.
fn room_members(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RoomMembers {
        room: p.id("room")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
    };
    Ok(answer!(K::RoomMembers(r), RoomMembers(l) => {
        let members: Vec<_> = l.members.iter().map(render::user).collect();
        json!({ "members": members, "count": l.count })
    }))
}

/// `room_send`: `{"room","text","client_msg_id"?}` → `{"message_id","sent_at","duplicate"}`.
fn room_send(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RoomSend {
        room: p.id("room")?,
        text: p.string("text")?,
        client_msg_id: p.opt_id("client_msg_id")?.unwrap_or(0),
    };
    Ok(answer!(K::RoomSend(r), RoomSend(ok) => render::room_sent(&ok)))
}

/// `room_history`: `{"room","limit"?,"before_id"?}` → `{"messages":[...],"has_more"}`.
fn room_history(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RoomHistory {
        room: p.id("room")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
        before_id: p.opt_id("before_id")?.unwrap_or(0),
    };
    Ok(answer!(K::RoomHistory(r), RoomHistory(page) => {
        let list: Vec<_> = page.messages.iter().map(render::room_message).collect();
        json!({ "messages": list, "has_more": page.has_more })
    }))
}

/// A required amount in cents: a non-negative integer (or a decimal string).
fn cents(p: &Params, key: &str) -> Result<u64, ParamError> {
    p.id(key)
        .map_err(|_| ParamError::params(format!("\"{key}\" must be a whole number of cents")))
}

/// The `SendRedPacket` of `red_packet_send`'s params: `{"conversation_id","total_cents",
/// "count","mode"?:"random"|"equal","greeting"?,"client_msg_id"?}`.
///
/// # Errors
/// A missing or bad field.
pub fn red_packet_request(p: &Params) -> Result<pb::SendRedPacket, ParamError> {
    let mode = match p.opt_string("mode")?.as_deref() {
        None | Some("random") => pb::RedPacketMode::Random,
        Some("equal") => pb::RedPacketMode::Equal,
        Some(other) => {
            return Err(ParamError::params(format!(
                "\"mode\" must be \"random\" or \"equal\", not \"{other}\""
            )))
        }
    };
    Ok(pb::SendRedPacket {
        conversation_id: p.id("conversation_id")?,
        total_cents: cents(p, "total_cents")?,
        count: p
            .opt_u32("count")?
            .ok_or_else(|| ParamError::params("missing \"count\""))?,
        mode: mode as i32,
        greeting: p.opt_string("greeting")?.unwrap_or_default(),
        client_msg_id: p.opt_id("client_msg_id")?.unwrap_or(0),
    })
}

/// `red_packet_send`: see [`red_packet_request`] → `{"packet_id","message_id","seq",
/// "sent_at","duplicate"}`.
fn red_packet_send(p: &Params) -> Result<Prepared, ParamError> {
    let r = red_packet_request(p)?;
    Ok(answer!(K::RedPacketSend(r), Send(ok) => render::red_packet_sent(&ok)))
}

/// `red_packet_grab`: `{"packet_id"}` → `{"packet_id","amount_cents"}`.
fn red_packet_grab(p: &Params) -> Result<Prepared, ParamError> {
    let packet_id = p.id("packet_id")?;
    let r = pb::GrabRedPacket { packet_id };
    Ok(answer!(K::RedPacketGrab(r), RedPacketGrab(g) =>
        json!({ "packet_id": packet_id.to_string(), "amount_cents": g.amount_cents })))
}

/// `red_packet_info`: `{"packet_id"}` → the packet with its grabs.
fn red_packet_info(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::GetRedPacket {
        packet_id: p.id("packet_id")?,
    };
    Ok(answer!(K::RedPacketInfo(r), RedPacketInfo(r) => render::red_packet(&r)))
}

/// `wallet`: `{}` → `{"balance_cents"}`.
fn wallet(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Wallet(pb::GetWallet {}), Wallet(w) =>
        json!({ "balance_cents": w.balance_cents })))
}

/// `wallet_top_up`: `{"user","amount_cents"}` → `{"user_id","balance_cents"}` (admins only).
fn wallet_top_up(p: &Params) -> Result<Prepared, ParamError> {
    let user_id = p.id("user")?;
    let r = pb::TopUp {
        user_id,
        amount_cents: cents(p, "amount_cents")?,
    };
    Ok(answer!(K::WalletTopUp(r), WalletTopUp(w) =>
        json!({ "user_id": user_id.to_string(), "balance_cents": w.balance_cents })))
}
