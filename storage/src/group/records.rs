//! The group vocabulary shared by its changes and reads: roles, the records read back, the
//! parameters and outcome of a change, and the lookups every one of them starts with.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, Uint};
use crate::{ConversationId, StorageError, UserId};

/// `conversations.kind` of a group.
pub(crate) const GROUP_KIND: i64 = 2;
/// The protocol's `MESSAGE_KIND_SYSTEM`: the kind of the notices the server posts.
pub const SYSTEM_KIND: i32 = 4;

/// A member's place in a group (stored as `members.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A plain member.
    Member = 0,
    /// Removes plain members, mutes them, edits the profile, approves invitations.
    Admin = 1,
    /// Everything an admin does, and dismisses, transfers and appoints admins.
    Owner = 2,
}

impl Role {
    /// The role stored as `n` (unknown values read as a plain member).
    pub fn from_i64(n: i64) -> Role {
        match n {
            2 => Role::Owner,
            1 => Role::Admin,
            _ => Role::Member,
        }
    }

    /// Owner or admin.
    pub fn manages(self) -> bool {
        self >= Role::Admin
    }
}

/// A group's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group's (and its conversation's) id.
    pub id: ConversationId,
    /// Name.
    pub name: String,
    /// Avatar file id; empty = none.
    pub avatar: String,
    /// Announcement; empty = none.
    pub announcement: String,
    /// The owner.
    pub owner: UserId,
    /// Members, the owner included.
    pub member_count: u32,
    /// Only the owner and admins may speak.
    pub mute_all: bool,
    /// Invitations by plain members wait for approval.
    pub join_approval: bool,
    /// Creation time (unix ms).
    pub created_at_ms: i64,
    /// The role of the user it was read for.
    pub my_role: Role,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member.
    pub user_id: UserId,
    /// The member's nickname.
    pub nickname: String,
    /// Role.
    pub role: Role,
    /// Card name in this group; empty = none.
    pub card: String,
    /// Muted until this time (unix ms); 0 = not muted.
    pub muted_until_ms: i64,
    /// When they joined (unix ms).
    pub joined_at_ms: i64,
}

/// An invitation waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// The group.
    pub group_id: ConversationId,
    /// Its name.
    pub group_name: String,
    /// The invitee.
    pub user_id: UserId,
    /// Who invited them.
    pub inviter: UserId,
    /// When (unix ms).
    pub created_at_ms: i64,
}

/// The group's profile as `user` sees it: [`StorageError::UnknownConversation`] when there is
/// no such (live) group, [`StorageError::NotAMember`] when `user` is not in it.
pub(crate) fn record(
    c: &Connection,
    group: ConversationId,
    user: UserId,
) -> Result<GroupRecord, StorageError> {
    let row = c
        .prepare_cached(
            "SELECT g.name, g.avatar, g.announcement, g.owner_id, g.mute_all, g.join_approval,
                    g.created_at_ms,
                    (SELECT COUNT(*) FROM members WHERE conversation_id = g.conversation_id),
                    (SELECT role FROM members WHERE conversation_id = g.conversation_id
                                                AND user_id = ?2)
             FROM groups g WHERE g.conversation_id = ?1 AND g.dismissed_at_ms IS NULL",
        )?
        .query_row(params![Uint(group), Uint(user)], |r| {
            Ok((
                GroupRecord {
                    id: group,
                    name: r.get(0)?,
                    avatar: r.get(1)?,
                    announcement: r.get(2)?,
                    owner: get_u64(r, 3)?,
                    mute_all: r.get(4)?,
                    join_approval: r.get(5)?,
                    created_at_ms: r.get(6)?,
                    member_count: r.get(7)?,
                    my_role: Role::Member,
                },
                r.get::<_, Option<i64>>(8)?,
            ))
        })
        .optional()?;
    match row {
        None => Err(StorageError::UnknownConversation),
        Some((_, None)) => Err(StorageError::NotAMember(
            "you are not a member of this group",
        )),
        Some((mut g, Some(role))) => {
            g.my_role = Role::from_i64(role);
            Ok(g)
        }
    }
}

/// `user`'s role in `group`, `None` when not a member.
pub(crate) fn role_of(
    c: &Connection,
    group: ConversationId,
    user: UserId,
) -> Result<Option<Role>, StorageError> {
    Ok(
        c.prepare_cached("SELECT role FROM members WHERE conversation_id = ?1 AND user_id = ?2")?
            .query_row(params![Uint(group), Uint(user)], |r| r.get::<_, i64>(0))
            .optional()?
            .map(Role::from_i64),
    )
}

/// The last seq before `user` joined `group` (what they may not read), or `None` when the
/// conversation is not a group `user` is in.
pub(crate) fn joined_seq(
    c: &Connection,
    group: ConversationId,
    user: UserId,
) -> Result<Option<u64>, StorageError> {
    Ok(c.prepare_cached(
        "SELECT joined_seq FROM members WHERE conversation_id = ?1 AND user_id = ?2",
    )?
    .query_row(params![Uint(group), Uint(user)], |r| get_u64(r, 0))
    .optional()?)
}

/// Whether `id` is a group (live or dismissed).
pub(crate) fn is_group(c: &Connection, id: ConversationId) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM groups WHERE conversation_id = ?1")?
            .query_row([Uint(id)], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// The members of `group` with their roles, by id.
pub fn member_roles(
    c: &Connection,
    group: ConversationId,
) -> Result<Vec<(UserId, Role)>, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT user_id, role FROM members WHERE conversation_id = ?1 ORDER BY user_id",
    )?;
    let rows = st.query_map([Uint(group)], |r| {
        Ok((get_u64(r, 0)?, Role::from_i64(r.get(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What a change did: the group, the notice to post there (from the actor), the users who
/// are no longer members but hear it (left, removed, dismissed), and the caller's result.
#[derive(Debug)]
pub struct Change<T> {
    /// The group changed.
    pub group: ConversationId,
    /// The system notice's text; `None` posts nothing.
    pub notice: Option<String>,
    /// Former members who get the notice too.
    pub departed: Vec<UserId>,
    /// The result for the caller.
    pub value: T,
}

impl<T> Change<T> {
    pub(crate) fn new(group: ConversationId, notice: Option<String>, value: T) -> Self {
        Change {
            group,
            notice,
            departed: Vec::new(),
            value,
        }
    }
}

/// A new group's settings.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Its name.
    pub name: String,
    /// Initial members (friends of the owner), the owner not included.
    pub members: Vec<UserId>,
    /// Invitations by plain members wait for approval.
    pub join_approval: bool,
    /// The member limit.
    pub max_members: usize,
}

/// Profile fields to change; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct GroupUpdate {
    /// New name.
    pub name: Option<String>,
    /// New avatar file id.
    pub avatar: Option<String>,
    /// New announcement.
    pub announcement: Option<String>,
    /// Invitations by plain members wait for approval (owner only).
    pub join_approval: Option<bool>,
}

/// The outcome of an invitation: who joined, who waits for approval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invited {
    /// Now members.
    pub added: Vec<UserId>,
    /// Waiting for an owner's or admin's approval.
    pub pending: Vec<UserId>,
}

/// A mute of one member.
#[derive(Debug, Clone, Copy)]
pub struct Mute {
    /// The member.
    pub user: UserId,
    /// How long (ms); 0 lifts the mute.
    pub duration_ms: i64,
}
