//! Friend groups: a name on the owner's row of each friendship.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use crate::int::Uint;
use crate::social::{friend, friends, FriendRecord};
use crate::{StorageError, UserId};

/// One of a user's friend groups and its friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendGroup {
    /// The group's name; "" is the default group.
    pub name: String,
    /// Its friends, by user id.
    pub friends: Vec<FriendRecord>,
}

/// `user`'s friends by group: the default group ("") first, then by name; groups without
/// friends are not listed.
///
/// # Errors
/// Database errors.
pub fn friend_groups(c: &Connection, user: UserId) -> Result<Vec<FriendGroup>, StorageError> {
    let mut by_name: BTreeMap<String, Vec<FriendRecord>> = BTreeMap::new();
    for f in friends(c, user)? {
        by_name.entry(f.group.clone()).or_default().push(f);
    }
    Ok(by_name
        .into_iter()
        .map(|(name, friends)| FriendGroup { name, friends })
        .collect())
}

/// Puts `user`'s friend `other` into the group `group` ("" = the default group); returns
/// the friend as now grouped. Run through [`crate::Writer::call`].
///
/// # Errors
/// [`StorageError::NotAFriend`]; database errors.
pub fn set_friend_group(
    c: &Connection,
    user: UserId,
    other: UserId,
    group: &str,
) -> Result<FriendRecord, StorageError> {
    c.prepare_cached("UPDATE friends SET group_name = ?3 WHERE user_id = ?1 AND friend_id = ?2")?
        .execute(params![Uint(user), Uint(other), group])?;
    friend(c, user, other)?.ok_or(StorageError::NotAFriend)
}
