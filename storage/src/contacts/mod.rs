//! Friend groups (好友分组: the owner's named groups of their friends, a column of the
//! owner's `friends` row) and friend suggestions (people who share friends or groups with
//! the user). Reads take any connection ([`crate::Store::read`]); a friend's group is set
//! through [`crate::Writer::call`].

mod groups;
mod suggestions;
#[cfg(test)]
mod tests;

pub use groups::{friend_groups, set_friend_group, FriendGroup};
pub use suggestions::{suggestions, Suggestion};
