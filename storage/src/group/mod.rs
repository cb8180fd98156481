//! Groups: a group is a conversation of kind 2 whose id is the group's; its members are
//! `members` rows with a role, a card name, a mute deadline and `joined_seq` (they read only
//! what follows it). Changes run on the writer ([`crate::Writer::group`]), which posts each
//! one's system notice in the group with the next seq; reads run on the reader pool.

mod change;
mod read;
mod records;

pub use change::{
    answer_invite, create, dismiss, invite, leave, mute, mute_all, remove, set_card, set_role,
    transfer, update,
};
pub use read::{group_info, groups, invites, members, MemberPage};
pub(crate) use records::{is_group, joined_seq};
pub use records::{
    member_roles, Change, GroupRecord, GroupUpdate, InviteRecord, Invited, MemberRecord, Mute,
    NewGroup, Role, SYSTEM_KIND,
};

/// The connection a group change runs on ([`crate::Writer::group`]).
pub use rusqlite::Connection;

#[cfg(test)]
mod tests;
