//! The `feige_call` methods of groups (`docs/sdk.md`, "Groups"). Group messages are sent
//! with `send_message` and `"conversation_id"` = the group id.

use feige_client::pb;
use serde_json::{json, Value};

use super::base::{call, Call, Conn, Method};
use crate::json::{self, Params, Refusal};

/// The methods of groups, by name.
pub(super) const METHODS: &[(&str, Method)] = &[
    ("group_create", group_create),
    ("group_info", group_info),
    ("group_update", group_update),
    ("group_invite", group_invite),
    ("group_remove", group_remove),
    ("group_leave", group_leave),
    ("group_dismiss", group_dismiss),
    ("group_transfer", group_transfer),
    ("group_set_role", group_set_role),
    ("group_members", group_members),
    ("group_set_card", group_set_card),
    ("group_mute", group_mute),
    ("group_mute_all", group_mute_all),
    ("groups", groups),
    ("group_invites", group_invites),
    ("group_answer_invite", group_answer_invite),
];

/// `group_create`: `{"name","members":[user...],"join_approval"?}` →
/// `{"group_id","conversation_id"}`.
fn group_create(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let name = p.string("name")?;
    let members = p.ids("members")?;
    let approval = p.opt_bool("join_approval")?.unwrap_or(false);
    call(async move {
        let g = conn
            .client()
            .await?
            .group_create(&name, &members, approval)
            .await?;
        Ok(json!({
            "group_id": g.group_id.to_string(),
            "conversation_id": g.conversation_id.to_string(),
        }))
    })
}

/// `group_info`: `{"group_id"}` → the group's profile.
fn group_info(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    call(async move { Ok(json::group(&conn.client().await?.group_info(group).await?)) })
}

/// `group_update`: `{"group_id","name"?,"avatar"?,"announcement"?,"join_approval"?}` → the
/// group's profile.
fn group_update(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let u = pb::UpdateGroup {
        group_id: p.id("group_id")?,
        name: p.opt_string("name")?,
        avatar: p.opt_string("avatar")?,
        announcement: p.opt_string("announcement")?,
        join_approval: p.opt_bool("join_approval")?,
    };
    call(async move { Ok(json::group(&conn.client().await?.group_update(u).await?)) })
}

/// `group_invite`: `{"group_id","users":[user...]}` → `{"added":[user...],"pending":[user...]}`.
fn group_invite(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    let users = p.ids("users")?;
    call(async move {
        let r = conn.client().await?.group_invite(group, &users).await?;
        Ok(json!({ "added": json::ids(&r.added), "pending": json::ids(&r.pending) }))
    })
}

/// `group_remove`: `{"group_id","user"}` → `{}`.
fn group_remove(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let (group, user) = (p.id("group_id")?, p.id("user")?);
    call(async move {
        conn.client().await?.group_remove(group, user).await?;
        Ok(json!({}))
    })
}

/// `group_leave`: `{"group_id"}` → `{}`.
fn group_leave(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    call(async move {
        conn.client().await?.group_leave(group).await?;
        Ok(json!({}))
    })
}

/// `group_dismiss`: `{"group_id"}` → `{}`.
fn group_dismiss(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    call(async move {
        conn.client().await?.group_dismiss(group).await?;
        Ok(json!({}))
    })
}

/// `group_transfer`: `{"group_id","user"}` → `{}`.
fn group_transfer(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let (group, user) = (p.id("group_id")?, p.id("user")?);
    call(async move {
        conn.client().await?.group_transfer(group, user).await?;
        Ok(json!({}))
    })
}

/// `group_set_role`: `{"group_id","user","role":"admin"|"member"}` → `{}`.
fn group_set_role(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let (group, user) = (p.id("group_id")?, p.id("user")?);
    let role = match p.string("role")?.as_str() {
        "admin" => pb::GroupRole::Admin,
        "member" => pb::GroupRole::Member,
        _ => return Err(Refusal::params("\"role\" must be \"admin\" or \"member\"")),
    };
    call(async move {
        conn.client()
            .await?
            .group_set_role(group, user, role)
            .await?;
        Ok(json!({}))
    })
}

/// `group_members`: `{"group_id","limit"?,"after"?}` →
/// `{"members":[{"user_id","role","card","online","muted_until",...}],"has_more"}`.
fn group_members(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    let after = p.opt_id("after")?.unwrap_or(0);
    call(async move {
        let page = conn
            .client()
            .await?
            .group_members(group, limit, after)
            .await?;
        let members: Vec<Value> = page
            .members
            .iter()
            .map(|m| {
                json!({
                    "user_id": m.user_id.to_string(),
                    "nickname": m.nickname,
                    "role": json::role_name(m.role),
                    "card": m.card,
                    "online": m.online,
                    "muted_until": m.muted_until_ms,
                    "joined_at": m.joined_at_ms,
                })
            })
            .collect();
        Ok(json!({ "members": members, "has_more": page.has_more }))
    })
}

/// `group_set_card`: `{"group_id","card"}` → `{}`.
fn group_set_card(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    let card = p.string("card")?;
    call(async move {
        conn.client().await?.group_set_card(group, &card).await?;
        Ok(json!({}))
    })
}

/// `group_mute`: `{"group_id","user","seconds"}` (0 lifts the mute) → `{}`.
fn group_mute(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let (group, user) = (p.id("group_id")?, p.id("user")?);
    let seconds = p
        .opt_u32("seconds")?
        .ok_or_else(|| Refusal::params("missing \"seconds\""))?;
    call(async move {
        conn.client()
            .await?
            .group_mute(group, user, u64::from(seconds))
            .await?;
        Ok(json!({}))
    })
}

/// `group_mute_all`: `{"group_id","mute":bool}` → `{}`.
fn group_mute_all(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let group = p.id("group_id")?;
    let mute = p
        .opt_bool("mute")?
        .ok_or_else(|| Refusal::params("missing \"mute\""))?;
    call(async move {
        conn.client().await?.group_mute_all(group, mute).await?;
        Ok(json!({}))
    })
}

/// `groups`: `{}` → `{"groups":[group info...]}`.
fn groups(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let list = conn.client().await?.groups().await?;
        let groups: Vec<Value> = list.iter().map(json::group).collect();
        Ok(json!({ "groups": groups }))
    })
}

/// `group_invites`: `{}` → `{"invites":[{"group_id","group_name","user","inviter","created_at"}]}`.
fn group_invites(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let list = conn.client().await?.group_invites().await?;
        let invites: Vec<Value> = list.iter().map(json::group_invitation).collect();
        Ok(json!({ "invites": invites }))
    })
}

/// `group_answer_invite`: `{"group_id","user","accept":bool}` → `{}`: the invitee declines,
/// the owner or an admin approves or rejects.
fn group_answer_invite(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let (group, user) = (p.id("group_id")?, p.id("user")?);
    let accept = p
        .opt_bool("accept")?
        .ok_or_else(|| Refusal::params("missing \"accept\""))?;
    call(async move {
        conn.client()
            .await?
            .group_answer_invite(group, user, accept)
            .await?;
        Ok(json!({}))
    })
}
