//! The writer's gate for 1:1 messages: who may message whom, decided mostly from memory.

use rusqlite::{Connection, OptionalExtension};

use super::blocks::blocks;
use super::friends::is_friend;
use crate::int::{get_u64, Uint};
use crate::options::DirectPolicy;
use crate::{IdSet as HashSet, StorageError, UserId};

/// Most friend pairs, blocks or known users the gate holds; past this it drops them (friends,
/// users) or asks the database each time (blocks).
const MAX_GATE_CACHE: usize = 500_000;

/// Decides on the writer thread whether `sender` may send a 1:1 message to `peer`, mostly
/// from memory: it holds every block (few, and changed only through
/// [`crate::Writer::call_graph`], which calls [`Gate::clear`]), the users known to exist
/// (accounts are never deleted) and, under [`DirectPolicy::FriendsOnly`], the pairs found to be
/// friends. So the first message between two strangers costs no query either.
pub(crate) struct Gate {
    pub(crate) policy: DirectPolicy,
    /// Pairs `(lower id, higher id)` known to be friends.
    friends: HashSet<(UserId, UserId)>,
    /// Every `(user, blocked)` row, once loaded; None when there are too many to hold.
    blocks: Option<HashSet<(UserId, UserId)>>,
    blocks_loaded: bool,
    /// Users known to exist.
    users: HashSet<UserId>,
}

impl Gate {
    pub(crate) fn new(policy: DirectPolicy) -> Self {
        Gate {
            policy,
            friends: HashSet::default(),
            blocks: None,
            blocks_loaded: false,
            users: HashSet::default(),
        }
    }

    /// Forgets friendships and blocks: a graph job may have changed them.
    pub(crate) fn clear(&mut self) {
        self.friends.clear();
        self.blocks = None;
        self.blocks_loaded = false;
    }

    fn load_blocks(&mut self, c: &Connection) -> Result<(), StorageError> {
        let count: i64 = c
            .prepare_cached("SELECT COUNT(*) FROM blocks")?
            .query_row([], |r| r.get(0))?;
        self.blocks = if usize::try_from(count).is_ok_and(|n| n <= MAX_GATE_CACHE) {
            let rows = c
                .prepare_cached("SELECT user_id, blocked_id FROM blocks")?
                .query_map([], |r| Ok((get_u64(r, 0)?, get_u64(r, 1)?)))?
                .collect::<Result<HashSet<_>, _>>()?;
            Some(rows)
        } else {
            None
        };
        self.blocks_loaded = true;
        Ok(())
    }

    fn blocked(&self, c: &Connection, user: UserId, other: UserId) -> Result<bool, StorageError> {
        match &self.blocks {
            Some(set) => Ok(set.contains(&(user, other))),
            None => blocks(c, user, other),
        }
    }

    /// Ok when `sender` may message `peer` directly.
    pub(crate) fn check(
        &mut self,
        c: &Connection,
        sender: UserId,
        peer: UserId,
    ) -> Result<(), StorageError> {
        if sender == peer {
            return Err(StorageError::SelfMessage);
        }
        if !self.blocks_loaded {
            self.load_blocks(c)?;
        }
        if self.blocked(c, peer, sender)? {
            return Err(StorageError::BlockedByPeer);
        }
        if self.blocked(c, sender, peer)? {
            return Err(StorageError::PeerBlocked);
        }
        if !self.users.contains(&peer) {
            if !user_exists(c, peer)? {
                return Err(StorageError::UnknownUser);
            }
            if self.users.len() >= MAX_GATE_CACHE {
                self.users.clear();
            }
            self.users.insert(peer);
        }
        if self.policy == DirectPolicy::FriendsOnly {
            let key = (sender.min(peer), sender.max(peer));
            if !self.friends.contains(&key) {
                if !is_friend(c, sender, peer)? {
                    return Err(StorageError::NotFriends);
                }
                if self.friends.len() >= MAX_GATE_CACHE {
                    self.friends.clear();
                }
                self.friends.insert(key);
            }
        }
        Ok(())
    }
}

/// Whether a user with this id exists.
fn user_exists(c: &Connection, id: UserId) -> Result<bool, StorageError> {
    Ok(c.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .query_row([Uint(id)], |_| Ok(()))
        .optional()?
        .is_some())
}
