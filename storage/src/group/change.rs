//! Changes to groups, run on the writer inside [`crate::Writer::group`]: each checks the
//! actor's role, writes, and says which system notice to post and who else must hear it.

use rusqlite::{params, Connection, OptionalExtension};

use super::records::{
    record, role_of, Change, GroupRecord, GroupUpdate, Invited, Mute, NewGroup, Role, GROUP_KIND,
};
use crate::int::Uint;
use crate::{ConversationId, StorageError, UserId};

/// Whether `b` is a friend of `a`.
fn is_friend(c: &Connection, a: UserId, b: UserId) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM friends WHERE user_id = ?1 AND friend_id = ?2")?
            .query_row(params![Uint(a), Uint(b)], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// The user's nickname, for notices.
fn name(c: &Connection, user: UserId) -> Result<String, StorageError> {
    Ok(
        c.prepare_cached("SELECT nickname FROM users WHERE id = ?1")?
            .query_row([Uint(user)], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| format!("user {user}")),
    )
}

/// The first [`NAMES_SHOWN`] users' nicknames, and how many more: a notice of a large
/// invitation stays a line.
fn names(c: &Connection, users: &[UserId]) -> Result<String, StorageError> {
    let mut out = Vec::with_capacity(users.len().min(NAMES_SHOWN));
    for &u in users.iter().take(NAMES_SHOWN) {
        out.push(name(c, u)?);
    }
    let mut text = out.join(", ");
    if users.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} others", users.len() - NAMES_SHOWN));
    }
    Ok(text)
}

/// Most users a notice names.
const NAMES_SHOWN: usize = 10;

/// The actor's role; a live group and membership are required.
fn actor_role(c: &Connection, group: ConversationId, actor: UserId) -> Result<Role, StorageError> {
    Ok(record(c, group, actor)?.my_role)
}

/// A member other than the actor, with their role.
fn target_role(
    c: &Connection,
    group: ConversationId,
    actor: UserId,
    user: UserId,
) -> Result<Role, StorageError> {
    if user == actor {
        return Err(StorageError::SelfTarget);
    }
    role_of(c, group, user)?.ok_or(StorageError::NotAMember(
        "that user is not a member of this group",
    ))
}

fn member_count(c: &Connection, group: ConversationId) -> Result<usize, StorageError> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM members WHERE conversation_id = ?1")?
        .query_row([Uint(group)], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn add_member(
    c: &Connection,
    group: ConversationId,
    user: UserId,
    role: Role,
    joined_seq: u64,
    now: i64,
) -> Result<(), StorageError> {
    c.prepare_cached(
        "INSERT INTO members(user_id, conversation_id, joined_at_ms, role, joined_seq)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        Uint(user),
        Uint(group),
        now,
        role as i64,
        Uint(joined_seq)
    ])?;
    c.prepare_cached("DELETE FROM group_invites WHERE group_id = ?1 AND user_id = ?2")?
        .execute(params![Uint(group), Uint(user)])?;
    Ok(())
}

fn must_exist(c: &Connection, user: UserId) -> Result<(), StorageError> {
    c.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .query_row([Uint(user)], |_| Ok(()))
        .optional()?
        .ok_or(StorageError::UnknownUser)
}

/// Creates a group owned by `owner` with `g.members` (each a friend of the owner).
///
/// # Errors
/// `NotAFriend`, `UnknownUser`, `GroupFull`, database errors.
pub fn create(
    c: &Connection,
    owner: UserId,
    g: &NewGroup,
    now: i64,
) -> Result<Change<GroupRecord>, StorageError> {
    let mut members: Vec<UserId> = g.members.iter().copied().filter(|&m| m != owner).collect();
    members.sort_unstable();
    members.dedup();
    if members.len() + 1 > g.max_members {
        return Err(StorageError::GroupFull(g.max_members));
    }
    for &m in &members {
        must_exist(c, m)?;
        if !is_friend(c, owner, m)? {
            return Err(StorageError::NotAFriend);
        }
    }
    c.prepare_cached("INSERT INTO conversations(kind, created_at_ms) VALUES (?1, ?2)")?
        .execute(params![GROUP_KIND, now])?;
    let id = u64::try_from(c.last_insert_rowid()).unwrap_or(0);
    c.prepare_cached(
        "INSERT INTO groups(conversation_id, name, owner_id, join_approval, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![Uint(id), g.name, Uint(owner), g.join_approval, now])?;
    add_member(c, id, owner, Role::Owner, 0, now)?;
    for &m in &members {
        add_member(c, id, m, Role::Member, 0, now)?;
    }
    let mut text = format!("{} created the group \"{}\"", name(c, owner)?, g.name);
    if !members.is_empty() {
        text.push_str(&format!(" and added {}", names(c, &members)?));
    }
    Ok(Change::new(id, Some(text), record(c, id, owner)?))
}

/// Adds `users` (friends of the actor, a member) to the group, or, when the group requires
/// approval and the actor is a plain member, records them as pending invitations. Users who
/// are members already are skipped.
///
/// # Errors
/// `NotAMember`, `NotAFriend`, `UnknownUser`, `GroupFull`, `UnknownConversation`.
pub fn invite(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    users: &[UserId],
    max_members: usize,
    last_seq: u64,
    now: i64,
) -> Result<Change<Invited>, StorageError> {
    let info = record(c, group, actor)?;
    let mut fresh = Vec::new();
    for &u in users {
        if u == actor || fresh.contains(&u) || role_of(c, group, u)?.is_some() {
            continue;
        }
        must_exist(c, u)?;
        if !is_friend(c, actor, u)? {
            return Err(StorageError::NotAFriend);
        }
        fresh.push(u);
    }
    let mut out = Invited::default();
    if info.join_approval && !info.my_role.manages() {
        for u in fresh {
            c.prepare_cached(
                "INSERT OR IGNORE INTO group_invites(group_id, user_id, inviter_id, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![Uint(group), Uint(u), Uint(actor), now])?;
            out.pending.push(u);
        }
        return Ok(Change::new(group, None, out));
    }
    if member_count(c, group)? + fresh.len() > max_members {
        return Err(StorageError::GroupFull(max_members));
    }
    for &u in &fresh {
        add_member(c, group, u, Role::Member, last_seq, now)?;
    }
    let notice = (!fresh.is_empty())
        .then(|| Ok::<_, StorageError>(format!("{} added {}", name(c, actor)?, names(c, &fresh)?)))
        .transpose()?;
    out.added = fresh;
    Ok(Change::new(group, notice, out))
}

/// Answers a pending invitation of `user`: the invitee declines, or an owner or admin
/// approves (the invitee joins) or rejects it. Returns whether the invitee joined.
///
/// # Errors
/// `UnknownRequest` (no such invitation), `NotAllowed`, `GroupFull`.
#[allow(clippy::too_many_arguments)]
pub fn answer_invite(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    user: UserId,
    accept: bool,
    max_members: usize,
    last_seq: u64,
    now: i64,
) -> Result<Change<bool>, StorageError> {
    let inviter: Option<u64> = c
        .prepare_cached(
            "SELECT inviter_id FROM group_invites WHERE group_id = ?1 AND user_id = ?2",
        )?
        .query_row(params![Uint(group), Uint(user)], |r| {
            crate::int::get_u64(r, 0)
        })
        .optional()?;
    let Some(inviter) = inviter else {
        return Err(StorageError::UnknownRequest);
    };
    let manages = role_of(c, group, actor)?.is_some_and(Role::manages);
    if actor == user && !accept {
        c.prepare_cached("DELETE FROM group_invites WHERE group_id = ?1 AND user_id = ?2")?
            .execute(params![Uint(group), Uint(user)])?;
        return Ok(Change::new(group, None, false));
    }
    if !manages {
        return Err(StorageError::NotAllowed(
            "only the group's owner or an admin approves invitations (the invitee may decline)",
        ));
    }
    if !accept {
        c.prepare_cached("DELETE FROM group_invites WHERE group_id = ?1 AND user_id = ?2")?
            .execute(params![Uint(group), Uint(user)])?;
        return Ok(Change::new(group, None, false));
    }
    if member_count(c, group)? + 1 > max_members {
        return Err(StorageError::GroupFull(max_members));
    }
    add_member(c, group, user, Role::Member, last_seq, now)?;
    let text = format!(
        "{} added {} (invited by {})",
        name(c, actor)?,
        name(c, user)?,
        name(c, inviter)?
    );
    Ok(Change::new(group, Some(text), true))
}

fn delete_member(c: &Connection, group: ConversationId, user: UserId) -> Result<(), StorageError> {
    c.prepare_cached("DELETE FROM members WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute(params![Uint(group), Uint(user)])?;
    Ok(())
}

/// Removes `user`: the owner removes anyone, an admin plain members.
///
/// # Errors
/// `NotAllowed`, `NotAMember`, `SelfTarget`.
pub fn remove(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    user: UserId,
) -> Result<Change<()>, StorageError> {
    let mine = actor_role(c, group, actor)?;
    let theirs = target_role(c, group, actor, user)?;
    if !mine.manages() || theirs >= mine {
        return Err(StorageError::NotAllowed(
            "only the owner removes admins, and owner or admins remove members",
        ));
    }
    let text = format!("{} removed {}", name(c, actor)?, name(c, user)?);
    delete_member(c, group, user)?;
    let mut change = Change::new(group, Some(text), ());
    change.departed.push(user);
    Ok(change)
}

/// The actor leaves; the owner must transfer or dismiss the group instead.
///
/// # Errors
/// `NotAllowed` (the owner), `NotAMember`.
pub fn leave(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
) -> Result<Change<()>, StorageError> {
    if actor_role(c, group, actor)? == Role::Owner {
        return Err(StorageError::NotAllowed(
            "the owner cannot leave: transfer the group or dismiss it",
        ));
    }
    let text = format!("{} left the group", name(c, actor)?);
    delete_member(c, group, actor)?;
    let mut change = Change::new(group, Some(text), ());
    change.departed.push(actor);
    Ok(change)
}

/// Ends the group (the owner only): every member is removed and hears the notice.
///
/// # Errors
/// `NotAllowed`, `NotAMember`.
pub fn dismiss(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    now: i64,
) -> Result<Change<Vec<UserId>>, StorageError> {
    if actor_role(c, group, actor)? != Role::Owner {
        return Err(StorageError::NotAllowed(
            "only the owner dismisses the group",
        ));
    }
    let members: Vec<UserId> = super::records::member_roles(c, group)?
        .into_iter()
        .map(|m| m.0)
        .collect();
    let text = format!("{} dismissed the group", name(c, actor)?);
    c.prepare_cached("DELETE FROM members WHERE conversation_id = ?1")?
        .execute([Uint(group)])?;
    c.prepare_cached("DELETE FROM group_invites WHERE group_id = ?1")?
        .execute([Uint(group)])?;
    c.prepare_cached("UPDATE groups SET dismissed_at_ms = ?2 WHERE conversation_id = ?1")?
        .execute(params![Uint(group), now])?;
    let mut change = Change::new(group, Some(text), members.clone());
    change.departed = members;
    Ok(change)
}

/// Makes `user` (a member) the owner; the actor (the owner) becomes a plain member.
///
/// # Errors
/// `NotAllowed`, `NotAMember`, `SelfTarget`.
pub fn transfer(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    user: UserId,
) -> Result<Change<()>, StorageError> {
    if actor_role(c, group, actor)? != Role::Owner {
        return Err(StorageError::NotAllowed(
            "only the owner transfers the group",
        ));
    }
    target_role(c, group, actor, user)?;
    let set = "UPDATE members SET role = ?3 WHERE conversation_id = ?1 AND user_id = ?2";
    c.prepare_cached(set)?
        .execute(params![Uint(group), Uint(user), Role::Owner as i64])?;
    c.prepare_cached(set)?
        .execute(params![Uint(group), Uint(actor), Role::Member as i64])?;
    c.prepare_cached("UPDATE groups SET owner_id = ?2 WHERE conversation_id = ?1")?
        .execute(params![Uint(group), Uint(user)])?;
    let text = format!(
        "{} made {} the group owner",
        name(c, actor)?,
        name(c, user)?
    );
    Ok(Change::new(group, Some(text), ()))
}

/// Makes `user` an admin or a plain member again (the owner only).
///
/// # Errors
/// `NotAllowed`, `NotAMember`, `SelfTarget`, `Invalid` (role Owner: use transfer).
pub fn set_role(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    user: UserId,
    role: Role,
) -> Result<Change<()>, StorageError> {
    if role == Role::Owner {
        return Err(StorageError::Invalid(
            "the role must be admin or member; transfer the group to change its owner".into(),
        ));
    }
    if actor_role(c, group, actor)? != Role::Owner {
        return Err(StorageError::NotAllowed("only the owner appoints admins"));
    }
    let before = target_role(c, group, actor, user)?;
    if before == role {
        return Ok(Change::new(group, None, ()));
    }
    c.prepare_cached("UPDATE members SET role = ?3 WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute(params![Uint(group), Uint(user), role as i64])?;
    let text = match role {
        Role::Admin => format!("{} made {} an admin", name(c, actor)?, name(c, user)?),
        _ => format!("{} removed {} as admin", name(c, actor)?, name(c, user)?),
    };
    Ok(Change::new(group, Some(text), ()))
}

/// Sets the actor's card name in the group (no notice: it shows in the member list).
///
/// # Errors
/// `NotAMember`, `UnknownConversation`.
pub fn set_card(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    card: &str,
) -> Result<Change<()>, StorageError> {
    actor_role(c, group, actor)?;
    c.prepare_cached("UPDATE members SET card = ?3 WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute(params![Uint(group), Uint(actor), card])?;
    Ok(Change::new(group, None, ()))
}

/// Human-readable length of a mute.
fn duration_text(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}

/// Mutes a member for a while, or lifts it: the owner mutes anyone else, an admin plain
/// members.
///
/// # Errors
/// `NotAllowed`, `NotAMember`, `SelfTarget`.
pub fn mute(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    m: Mute,
    now: i64,
) -> Result<Change<()>, StorageError> {
    let mine = actor_role(c, group, actor)?;
    let theirs = target_role(c, group, actor, m.user)?;
    if !mine.manages() || theirs >= mine {
        return Err(StorageError::NotAllowed(
            "only the owner mutes admins, and owner or admins mute members",
        ));
    }
    let until = if m.duration_ms > 0 {
        now.saturating_add(m.duration_ms)
    } else {
        0
    };
    c.prepare_cached(
        "UPDATE members SET muted_until_ms = ?3 WHERE conversation_id = ?1 AND user_id = ?2",
    )?
    .execute(params![Uint(group), Uint(m.user), until])?;
    let text = if until == 0 {
        format!("{} unmuted {}", name(c, actor)?, name(c, m.user)?)
    } else {
        format!(
            "{} muted {} for {}",
            name(c, actor)?,
            name(c, m.user)?,
            duration_text(m.duration_ms)
        )
    };
    Ok(Change::new(group, Some(text), ()))
}

/// Mutes every plain member, or lifts it (owner and admins).
///
/// # Errors
/// `NotAllowed`, `NotAMember`.
pub fn mute_all(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    on: bool,
) -> Result<Change<GroupRecord>, StorageError> {
    let info = record(c, group, actor)?;
    if !info.my_role.manages() {
        return Err(StorageError::NotAllowed(
            "only the owner or an admin mutes the group",
        ));
    }
    if info.mute_all == on {
        return Ok(Change::new(group, None, info));
    }
    c.prepare_cached("UPDATE groups SET mute_all = ?2 WHERE conversation_id = ?1")?
        .execute(params![Uint(group), on])?;
    let text = if on {
        format!(
            "{} muted everyone (only the owner and admins can speak)",
            name(c, actor)?
        )
    } else {
        format!("{} lifted the group mute", name(c, actor)?)
    };
    Ok(Change::new(group, Some(text), record(c, group, actor)?))
}

/// Changes the group's profile (owner and admins; `join_approval` the owner only).
///
/// # Errors
/// `NotAllowed`, `NotAMember`.
pub fn update(
    c: &Connection,
    actor: UserId,
    group: ConversationId,
    u: &GroupUpdate,
) -> Result<Change<GroupRecord>, StorageError> {
    let info = record(c, group, actor)?;
    if !info.my_role.manages() {
        return Err(StorageError::NotAllowed(
            "only the owner or an admin edits the group",
        ));
    }
    if u.join_approval.is_some() && info.my_role != Role::Owner {
        return Err(StorageError::NotAllowed(
            "only the owner sets join approval",
        ));
    }
    let who = name(c, actor)?;
    let mut said = Vec::new();
    if let Some(n) = u.name.as_ref().filter(|n| **n != info.name) {
        c.prepare_cached("UPDATE groups SET name = ?2 WHERE conversation_id = ?1")?
            .execute(params![Uint(group), n])?;
        said.push(format!("{who} renamed the group to \"{n}\""));
    }
    if let Some(a) = u.avatar.as_ref().filter(|a| **a != info.avatar) {
        c.prepare_cached("UPDATE groups SET avatar = ?2 WHERE conversation_id = ?1")?
            .execute(params![Uint(group), a])?;
        said.push(format!("{who} changed the group avatar"));
    }
    if let Some(a) = u.announcement.as_ref().filter(|a| **a != info.announcement) {
        c.prepare_cached("UPDATE groups SET announcement = ?2 WHERE conversation_id = ?1")?
            .execute(params![Uint(group), a])?;
        said.push(if a.is_empty() {
            format!("{who} cleared the announcement")
        } else {
            format!("{who} posted an announcement: {a}")
        });
    }
    if let Some(on) = u.join_approval.filter(|on| *on != info.join_approval) {
        c.prepare_cached("UPDATE groups SET join_approval = ?2 WHERE conversation_id = ?1")?
            .execute(params![Uint(group), on])?;
        said.push(if on {
            format!("{who} now approves new members")
        } else {
            format!("{who} no longer requires approval of new members")
        });
    }
    let notice = (!said.is_empty()).then(|| said.join("; "));
    Ok(Change::new(group, notice, record(c, group, actor)?))
}
