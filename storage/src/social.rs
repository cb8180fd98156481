//! The social graph: profiles, friends, friend requests, blocks, who may message whom, the
//! conversation list and per-user read positions.
//!
//! Reads take any connection (through [`crate::Store::read`]). Writes run in the writer's
//! transaction: those that change friendships or blocks through [`crate::Writer::call_graph`],
//! so the writer's cache of who may message whom (`Gate`) is dropped in the same order as
//! the messages it judges; the others through [`crate::Writer::call`].

use rusqlite::{params, Connection, OptionalExtension, Row};

pub use crate::options::DirectPolicy;

use crate::account::{user_row, UserRecord, USER_COLUMNS};
use crate::recent::Range;
use crate::row::{pair_of, StoredMessage};
use crate::sequence::{Query, View};
use crate::{now_ms, ConversationId, IdSet as HashSet, StorageError, UserId};

/// What anyone may see of a user: no phone, e-mail, password hash or token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUser {
    /// User id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Display name.
    pub nickname: String,
    /// Status line.
    pub signature: String,
    /// Avatar file id; empty = none.
    pub avatar: String,
}

const PUBLIC_COLUMNS: &str = "u.id, u.username, u.nickname, u.signature, u.avatar";

fn public_row(r: &Row<'_>, at: usize) -> rusqlite::Result<PublicUser> {
    Ok(PublicUser {
        id: r.get::<_, i64>(at)? as u64,
        username: r.get(at + 1)?,
        nickname: r.get(at + 2)?,
        signature: r.get(at + 3)?,
        avatar: r.get(at + 4)?,
    })
}

impl From<&UserRecord> for PublicUser {
    fn from(u: &UserRecord) -> Self {
        PublicUser {
            id: u.id,
            username: u.username.clone(),
            nickname: u.nickname.clone(),
            signature: u.signature.clone(),
            avatar: u.avatar.clone(),
        }
    }
}

/// One of a user's friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRecord {
    /// The friend.
    pub user: PublicUser,
    /// The owner's private alias for the friend.
    pub remark: String,
    /// When they became friends (unix ms).
    pub since_ms: i64,
    /// Their 1:1 conversation (0 if none).
    pub conversation_id: ConversationId,
}

/// A pending friend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequestRecord {
    /// Request id.
    pub id: u64,
    /// Who asked.
    pub from: PublicUser,
    /// Who was asked.
    pub to: PublicUser,
    /// The requester's note.
    pub message: String,
    /// When it was sent (unix ms).
    pub created_at_ms: i64,
}

/// What a friend request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Stored as pending.
    Sent(FriendRequestRecord),
    /// The other user had already asked: their request was accepted instead.
    Accepted {
        /// Their request, now accepted.
        request: FriendRequestRecord,
        /// The new friend as the caller sees them.
        friend: FriendRecord,
    },
}

/// An answered friend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responded {
    /// The request.
    pub request: FriendRequestRecord,
    /// Accepted (else rejected).
    pub accepted: bool,
    /// When accepted: the requester as the responder's friend.
    pub friend: Option<FriendRecord>,
}

/// Changes to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// New nickname.
    pub nickname: Option<String>,
    /// New signature.
    pub signature: Option<String>,
    /// New avatar file id.
    pub avatar: Option<String>,
    /// New phone number.
    pub phone: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
}

/// A user's read position in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPositionRecord {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Read up to and including this seq.
    pub seq: u64,
    /// Messages from others after `seq`.
    pub unread: u64,
}

/// One entry of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    /// Conversation id.
    pub id: ConversationId,
    /// For a 1:1 conversation, the other member.
    pub peer: Option<PublicUser>,
    /// The user's alias for the peer, if they are friends.
    pub remark: String,
    /// The newest message.
    pub last_message: Option<StoredMessage>,
    /// Messages from others after `read_seq`.
    pub unread: u64,
    /// The user's read position.
    pub read_seq: u64,
    /// Time of the newest message, else when the conversation was opened.
    pub last_active_ms: i64,
}

// ---------------------------------------------------------------------------------------------
// The writer's gate for 1:1 messages.

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
        self.blocks = if count as usize <= MAX_GATE_CACHE {
            let rows = c
                .prepare_cached("SELECT user_id, blocked_id FROM blocks")?
                .query_map([], |r| {
                    Ok((r.get::<_, i64>(0)? as UserId, r.get::<_, i64>(1)? as UserId))
                })?
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

// ---------------------------------------------------------------------------------------------
// Reads.

fn user_exists(c: &Connection, id: UserId) -> Result<bool, StorageError> {
    Ok(c.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .query_row([id as i64], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether `user` blocked `other`.
///
/// # Errors
/// Database errors.
pub fn blocks(c: &Connection, user: UserId, other: UserId) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM blocks WHERE user_id = ?1 AND blocked_id = ?2")?
            .query_row(params![user as i64, other as i64], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// Whether `a` and `b` are friends.
///
/// # Errors
/// Database errors.
pub fn is_friend(c: &Connection, a: UserId, b: UserId) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM friends WHERE user_id = ?1 AND friend_id = ?2")?
            .query_row(params![a as i64, b as i64], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// A user's public profile.
///
/// # Errors
/// Database errors.
pub fn public_user(c: &Connection, id: UserId) -> Result<Option<PublicUser>, StorageError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM users u WHERE u.id = ?1"
    ))?
    .query_row([id as i64], |r| public_row(r, 0))
    .optional()?)
}

/// A user's whole record, for the user themself (their profile with phone and e-mail).
///
/// # Errors
/// Database errors.
pub fn own_profile(c: &Connection, id: UserId) -> Result<Option<UserRecord>, StorageError> {
    crate::account::user_by_id(c, id)
}

fn required_user(c: &Connection, id: UserId) -> Result<PublicUser, StorageError> {
    public_user(c, id)?.ok_or(StorageError::UnknownUser)
}

const FRIEND_SELECT: &str = "SELECT u.id, u.username, u.nickname, u.signature, u.avatar,
        f.remark, f.since_ms,
        COALESCE(
            (SELECT p.conversation_id FROM direct_pairs p
             WHERE p.user_id = f.user_id AND p.peer_id = f.friend_id),
            (SELECT t.conversation_id FROM direct_tail t
             WHERE t.user_a = min(f.user_id, f.friend_id) AND t.user_b = max(f.user_id, f.friend_id)),
            0)
     FROM friends f JOIN users u ON u.id = f.friend_id";

fn friend_row(r: &Row<'_>) -> rusqlite::Result<FriendRecord> {
    Ok(FriendRecord {
        user: public_row(r, 0)?,
        remark: r.get(5)?,
        since_ms: r.get(6)?,
        conversation_id: r.get::<_, i64>(7)? as u64,
    })
}

/// `user`'s friends, by user id.
///
/// # Errors
/// Database errors.
pub fn friends(c: &Connection, user: UserId) -> Result<Vec<FriendRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "{FRIEND_SELECT} WHERE f.user_id = ?1 ORDER BY f.friend_id"
    ))?;
    let rows = st.query_map([user as i64], friend_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `other` as `user`'s friend, if they are friends.
///
/// # Errors
/// Database errors.
pub fn friend(
    c: &Connection,
    user: UserId,
    other: UserId,
) -> Result<Option<FriendRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "{FRIEND_SELECT} WHERE f.user_id = ?1 AND f.friend_id = ?2"
    ))?;
    Ok(st
        .query_row(params![user as i64, other as i64], friend_row)
        .optional()?)
}

/// The ids of `user`'s friends.
///
/// # Errors
/// Database errors.
pub fn friend_ids(c: &Connection, user: UserId) -> Result<Vec<UserId>, StorageError> {
    let mut st = c.prepare_cached("SELECT friend_id FROM friends WHERE user_id = ?1")?;
    let rows = st.query_map([user as i64], |r| r.get::<_, i64>(0).map(|v| v as u64))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const REQUEST_SELECT: &str = "SELECT r.id, r.message, r.created_at_ms,
        a.id, a.username, a.nickname, a.signature, a.avatar,
        b.id, b.username, b.nickname, b.signature, b.avatar
     FROM friend_requests r JOIN users a ON a.id = r.from_user JOIN users b ON b.id = r.to_user";

fn request_row(r: &Row<'_>) -> rusqlite::Result<FriendRequestRecord> {
    Ok(FriendRequestRecord {
        id: r.get::<_, i64>(0)? as u64,
        message: r.get(1)?,
        created_at_ms: r.get(2)?,
        from: public_row(r, 3)?,
        to: public_row(r, 8)?,
    })
}

fn request_by_id(c: &Connection, id: u64) -> Result<Option<FriendRequestRecord>, StorageError> {
    Ok(
        c.prepare_cached(&format!("{REQUEST_SELECT} WHERE r.id = ?1"))?
            .query_row([id as i64], request_row)
            .optional()?,
    )
}

/// `user`'s pending friend requests: (received, sent), oldest first.
///
/// # Errors
/// Database errors.
pub fn friend_requests(
    c: &Connection,
    user: UserId,
) -> Result<(Vec<FriendRequestRecord>, Vec<FriendRequestRecord>), StorageError> {
    let incoming = c
        .prepare_cached(&format!(
            "{REQUEST_SELECT} WHERE r.to_user = ?1 AND r.status = 0 ORDER BY r.id"
        ))?
        .query_map([user as i64], request_row)?
        .collect::<Result<_, _>>()?;
    let outgoing = c
        .prepare_cached(&format!(
            "{REQUEST_SELECT} WHERE r.from_user = ?1 AND r.status = 0 ORDER BY r.id"
        ))?
        .query_map([user as i64], request_row)?
        .collect::<Result<_, _>>()?;
    Ok((incoming, outgoing))
}

/// The users `user` has blocked, by user id.
///
/// # Errors
/// Database errors.
pub fn blocked(c: &Connection, user: UserId) -> Result<Vec<PublicUser>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM blocks b JOIN users u ON u.id = b.blocked_id
         WHERE b.user_id = ?1 ORDER BY b.blocked_id"
    ))?;
    let rows = st.query_map([user as i64], |r| public_row(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

pub use crate::text::search_key;

/// Users whose username or nickname contains `query`, case-insensitively in any script (by
/// [`search_key`]; Chinese and other scripts without case by substring): exact matches first,
/// then prefixes, then the rest, shorter usernames first. Users who blocked `searcher` are
/// left out. Returns one page and whether more follow. A scan of the user table: fine for the
/// tens of thousands of users of a LAN server.
///
/// # Errors
/// Database errors.
pub fn search_users(
    c: &Connection,
    searcher: UserId,
    query: &str,
    limit: usize,
    offset: usize,
) -> Result<(Vec<PublicUser>, bool), StorageError> {
    let key = search_key(query);
    let escaped = like_escape(&key);
    let prefix = format!("{escaped}%");
    let anywhere = format!("%{escaped}%");
    let mut st = c.prepare_cached(&format!(
        "SELECT {PUBLIC_COLUMNS},
            CASE WHEN u.username_key = ?1 OR u.nickname_key = ?1 THEN 0
                 WHEN u.username_key LIKE ?2 ESCAPE '\\' OR u.nickname_key LIKE ?2 ESCAPE '\\' THEN 1
                 ELSE 2 END AS rank
         FROM users u
         WHERE (u.username_key LIKE ?3 ESCAPE '\\' OR u.nickname_key LIKE ?3 ESCAPE '\\')
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?4)
         ORDER BY rank, length(u.username), u.username
         LIMIT ?5 OFFSET ?6"
    ))?;
    let rows = st.query_map(
        params![
            key,
            prefix,
            anywhere,
            searcher as i64,
            limit as i64 + 1,
            offset as i64
        ],
        |r| public_row(r, 0),
    )?;
    let mut users: Vec<PublicUser> = rows.collect::<Result<_, _>>()?;
    let more = users.len() > limit;
    users.truncate(limit);
    Ok((users, more))
}

/// Which part of a conversation list to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationPage {
    /// Most entries; 0 = all.
    pub limit: usize,
    /// Only entries after this one in the list's order: (`last_active_ms`, conversation id).
    /// An id of 0 means every entry active before that time.
    pub before: Option<(i64, ConversationId)>,
}

/// One page of `user`'s conversations, most recently active first (ties: higher id first),
/// each with its newest message and the exact number of messages from others after the
/// user's read position; and whether more follow. Only the page's entries are looked up in
/// full.
///
/// # Errors
/// Database errors.
pub(crate) fn conversations(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    page: ConversationPage,
) -> Result<(Vec<ConversationRecord>, bool), StorageError> {
    // Each conversation's last activity: its newest message (in memory, else in
    // `message_seq`), or its creation.
    let mut st = c.prepare_cached(
        "SELECT c.id, c.kind, c.user_a, c.user_b, c.created_at_ms, COALESCE(rp.seq, 0),
            COALESCE(
                (SELECT m.sent_at_ms FROM message_seq x JOIN messages m ON m.id = x.id
                 WHERE x.conversation_id = c.id ORDER BY x.seq DESC LIMIT 1),
                c.created_at_ms)
         FROM memberships mb JOIN conversations c ON c.id = mb.conversation_id
         LEFT JOIN read_positions rp
           ON rp.user_id = mb.user_id AND rp.conversation_id = mb.conversation_id
         WHERE mb.user_id = ?1",
    )?;
    type Row0 = (u64, Option<(u64, u64)>, i64, u64, i64);
    let rows: Vec<Row0> = st
        .query_map(params![user as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                pair_of(r.get(1)?, r.get(2)?, r.get(3)?),
                r.get(4)?,
                r.get::<_, i64>(5)? as u64,
                r.get(6)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut sent_at = c.prepare_cached("SELECT sent_at_ms FROM messages WHERE id = ?1")?;
    let mut convs = Vec::with_capacity(rows.len());
    for (id, pair, created, read_seq, indexed_active) in rows {
        let active = match view.recent(id, Range::NEWEST)?.first() {
            Some(s) => sent_at.query_row([s.id as i64], |r| r.get(0))?,
            None => indexed_active,
        };
        let after_cursor = match page.before {
            None => true,
            Some((ms, before_id)) => active < ms || (active == ms && id < before_id),
        };
        if after_cursor {
            convs.push((active, id, pair, created, read_seq));
        }
    }
    // Most recently active first, ties by higher id.
    convs.sort_unstable_by_key(|c| std::cmp::Reverse((c.0, c.1)));
    let more = page.limit != 0 && convs.len() > page.limit;
    if more {
        convs.truncate(page.limit);
    }
    let mut out = Vec::with_capacity(convs.len());
    for (_, id, pair, created, read_seq) in convs {
        let newest = Query {
            conversation: id,
            range: Range::NEWEST,
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        };
        let last_message = crate::sequence::read_by_seq(c, view, &newest, pair)?.pop();
        let (peer, remark) = match pair {
            Some((a, b)) => {
                let other = if a == user { b } else { a };
                let remark = c
                    .prepare_cached(
                        "SELECT remark FROM friends WHERE user_id = ?1 AND friend_id = ?2",
                    )?
                    .query_row(params![user as i64, other as i64], |r| r.get(0))
                    .optional()?
                    .unwrap_or_default();
                (public_user(c, other)?, remark)
            }
            None => (None, String::new()),
        };
        out.push(ConversationRecord {
            id,
            peer,
            remark,
            unread: view.count_from_others(c, id, read_seq, user)?,
            read_seq,
            last_active_ms: last_message.as_ref().map_or(created, |m| m.sent_at_ms),
            last_message,
        });
    }
    Ok((out, more))
}

// ---------------------------------------------------------------------------------------------
// Writes.

/// Applies `update` to `user`'s profile (and the nickname's search key); returns the record
/// before and after. Run through [`crate::Writer::call`].
///
/// # Errors
/// [`StorageError::UnknownUser`]; database errors.
pub fn update_profile(
    c: &Connection,
    user: UserId,
    update: &ProfileUpdate,
) -> Result<(UserRecord, UserRecord), StorageError> {
    let read = |c: &Connection| -> Result<UserRecord, StorageError> {
        c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([user as i64], user_row)
            .optional()?
            .ok_or(StorageError::UnknownUser)
    };
    let before = read(c)?;
    if let Some(n) = &update.nickname {
        c.prepare_cached("UPDATE users SET nickname_key = ?1 WHERE id = ?2")?
            .execute(params![search_key(n), user as i64])?;
    }
    let fields = [
        ("nickname", &update.nickname),
        ("signature", &update.signature),
        ("avatar", &update.avatar),
        ("phone", &update.phone),
        ("email", &update.email),
    ];
    for (column, value) in fields {
        if let Some(v) = value {
            c.execute(
                &format!("UPDATE users SET {column} = ?1 WHERE id = ?2"),
                params![v, user as i64],
            )?;
        }
    }
    Ok((before, read(c)?))
}

/// Stores a new password hash for `user` and revokes every session token except `keep`;
/// returns how many were revoked. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn set_password(
    c: &Connection,
    user: UserId,
    salt: &[u8],
    hash: &[u8],
    keep: &[u8],
) -> Result<u32, StorageError> {
    let n = c.execute(
        "UPDATE users SET salt = ?1, password_hash = ?2 WHERE id = ?3",
        params![salt, hash, user as i64],
    )?;
    if n == 0 {
        return Err(StorageError::UnknownUser);
    }
    let revoked = c.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2",
        params![user as i64, keep],
    )?;
    Ok(revoked as u32)
}

/// Makes `a` and `b` friends and opens their conversation.
fn befriend(c: &Connection, a: UserId, b: UserId, now: i64) -> Result<(), StorageError> {
    let mut st = c.prepare_cached(
        "INSERT INTO friends(user_id, friend_id, remark, since_ms) VALUES (?1, ?2, '', ?3)
         ON CONFLICT DO NOTHING",
    )?;
    st.execute(params![a as i64, b as i64, now])?;
    st.execute(params![b as i64, a as i64, now])?;
    crate::pairs::ensure_direct(c, a, b, now)?;
    Ok(())
}

fn set_status(c: &Connection, request: u64, status: i64, now: i64) -> Result<(), StorageError> {
    c.prepare_cached("UPDATE friend_requests SET status = ?1, answered_at_ms = ?2 WHERE id = ?3")?
        .execute(params![status, now, request as i64])?;
    Ok(())
}

/// `from` asks `to` to be friends. If `to` had already asked `from`, that request is accepted
/// instead. Within `cooldown_ms` of `to` rejecting `from`'s last request, a new one is refused.
/// Run through [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::UnknownUser`], [`StorageError::SelfTarget`],
/// [`StorageError::BlockedByPeer`], [`StorageError::PeerBlocked`],
/// [`StorageError::AlreadyFriends`], [`StorageError::RequestPending`],
/// [`StorageError::CoolingDown`]; database errors.
pub fn send_request(
    c: &Connection,
    from: UserId,
    to: UserId,
    message: &str,
    cooldown_ms: u64,
) -> Result<RequestOutcome, StorageError> {
    if from == to {
        return Err(StorageError::SelfTarget);
    }
    required_user(c, to)?;
    if blocks(c, to, from)? {
        return Err(StorageError::BlockedByPeer);
    }
    if blocks(c, from, to)? {
        return Err(StorageError::PeerBlocked);
    }
    if is_friend(c, from, to)? {
        return Err(StorageError::AlreadyFriends);
    }
    let pending = |a: UserId, b: UserId| -> Result<Option<u64>, StorageError> {
        Ok(c.prepare_cached(
            "SELECT id FROM friend_requests WHERE from_user = ?1 AND to_user = ?2 AND status = 0",
        )?
        .query_row(params![a as i64, b as i64], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|v| v as u64))
    };
    if pending(from, to)?.is_some() {
        return Err(StorageError::RequestPending);
    }
    let now = now_ms();
    if let Some(theirs) = pending(to, from)? {
        set_status(c, theirs, 1, now)?;
        befriend(c, from, to, now)?;
        let request = request_by_id(c, theirs)?.ok_or(StorageError::UnknownRequest)?;
        let friend = friend(c, from, to)?.ok_or(StorageError::NotAFriend)?;
        return Ok(RequestOutcome::Accepted { request, friend });
    }
    let rejected_at: Option<i64> = c
        .prepare_cached(
            "SELECT MAX(answered_at_ms) FROM friend_requests
             WHERE to_user = ?2 AND status = 2 AND from_user = ?1",
        )?
        .query_row(params![from as i64, to as i64], |r| r.get(0))?;
    if let Some(at) = rejected_at {
        let until = at.saturating_add(i64::try_from(cooldown_ms).unwrap_or(i64::MAX));
        if until > now {
            return Err(StorageError::CoolingDown {
                retry_after_ms: (until - now) as u64,
            });
        }
    }
    c.prepare_cached(
        "INSERT INTO friend_requests(from_user, to_user, message, status, created_at_ms)
         VALUES (?1, ?2, ?3, 0, ?4)",
    )?
    .execute(params![from as i64, to as i64, message, now])?;
    let id = c.last_insert_rowid() as u64;
    Ok(RequestOutcome::Sent(
        request_by_id(c, id)?.ok_or(StorageError::UnknownRequest)?,
    ))
}

/// Deletes friend requests answered (accepted, rejected, withdrawn) more than `retention_ms`
/// ago, but keeps a rejection while it still holds back a new request (`cooldown_ms`). Returns
/// how many were deleted. Run through [`crate::Writer::call`].
///
/// # Errors
/// Database errors.
pub fn prune_requests(
    c: &Connection,
    retention_ms: u64,
    cooldown_ms: u64,
) -> Result<usize, StorageError> {
    let now = now_ms();
    let ago = |ms: u64| now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX));
    let answered_before = ago(retention_ms);
    let rejected_before = answered_before.min(ago(cooldown_ms));
    Ok(c.prepare_cached(
        "DELETE FROM friend_requests
         WHERE status <> 0 AND answered_at_ms < ?1 AND (status <> 2 OR answered_at_ms < ?2)",
    )?
    .execute(params![answered_before, rejected_before])?)
}

/// `user` accepts or rejects the pending request `request` addressed to them. Run through
/// [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::UnknownRequest`] when there is no such pending request to `user`;
/// database errors.
pub fn respond_request(
    c: &Connection,
    user: UserId,
    request: u64,
    accept: bool,
) -> Result<Responded, StorageError> {
    let found: Option<u64> = c
        .prepare_cached(
            "SELECT from_user FROM friend_requests WHERE id = ?1 AND to_user = ?2 AND status = 0",
        )?
        .query_row(params![request as i64, user as i64], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|v| v as u64);
    let Some(from) = found else {
        return Err(StorageError::UnknownRequest);
    };
    let now = now_ms();
    set_status(c, request, if accept { 1 } else { 2 }, now)?;
    let friend = if accept {
        befriend(c, from, user, now)?;
        friend(c, user, from)?
    } else {
        None
    };
    Ok(Responded {
        request: request_by_id(c, request)?.ok_or(StorageError::UnknownRequest)?,
        accepted: accept,
        friend,
    })
}

/// Ends the friendship of `user` and `other` on both sides. Run through
/// [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::NotAFriend`]; database errors.
pub fn delete_friend(c: &Connection, user: UserId, other: UserId) -> Result<(), StorageError> {
    if unfriend(c, user, other)? {
        Ok(())
    } else {
        Err(StorageError::NotAFriend)
    }
}

fn unfriend(c: &Connection, a: UserId, b: UserId) -> Result<bool, StorageError> {
    let n = c
        .prepare_cached(
            "DELETE FROM friends WHERE (user_id = ?1 AND friend_id = ?2)
                OR (user_id = ?2 AND friend_id = ?1)",
        )?
        .execute(params![a as i64, b as i64])?;
    Ok(n > 0)
}

/// `user` blocks `other`: ends their friendship and withdraws pending requests between them.
/// Blocking twice is not an error. Returns `other`'s public profile and whether they were
/// friends. Run through [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::SelfTarget`], [`StorageError::UnknownUser`]; database errors.
pub fn block(
    c: &Connection,
    user: UserId,
    other: UserId,
) -> Result<(PublicUser, bool), StorageError> {
    if user == other {
        return Err(StorageError::SelfTarget);
    }
    let blocked = required_user(c, other)?;
    let now = now_ms();
    c.prepare_cached(
        "INSERT INTO blocks(user_id, blocked_id, since_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![user as i64, other as i64, now])?;
    c.prepare_cached(
        "UPDATE friend_requests SET status = 3, answered_at_ms = ?3
         WHERE status = 0 AND ((from_user = ?1 AND to_user = ?2) OR (from_user = ?2 AND to_user = ?1))",
    )?
    .execute(params![user as i64, other as i64, now])?;
    Ok((blocked, unfriend(c, user, other)?))
}

/// `user` unblocks `other`; returns `other`'s public profile. Run through
/// [`crate::Writer::call_graph`].
///
/// # Errors
/// [`StorageError::NotBlocked`]; database errors.
pub fn unblock(c: &Connection, user: UserId, other: UserId) -> Result<PublicUser, StorageError> {
    let n = c
        .prepare_cached("DELETE FROM blocks WHERE user_id = ?1 AND blocked_id = ?2")?
        .execute(params![user as i64, other as i64])?;
    if n == 0 {
        return Err(StorageError::NotBlocked);
    }
    required_user(c, other)
}

/// Sets `user`'s alias for the friend `other`. Run through [`crate::Writer::call`].
///
/// # Errors
/// [`StorageError::NotAFriend`]; database errors.
pub fn set_remark(
    c: &Connection,
    user: UserId,
    other: UserId,
    remark: &str,
) -> Result<FriendRecord, StorageError> {
    c.prepare_cached("UPDATE friends SET remark = ?3 WHERE user_id = ?1 AND friend_id = ?2")?
        .execute(params![user as i64, other as i64, remark])?;
    friend(c, user, other)?.ok_or(StorageError::NotAFriend)
}

/// Moves `user`'s read position in `conversation` forward to `seq` (0 or past the end = the
/// newest message); it never moves back. Runs on the writer ([`crate::Writer::mark_read`]).
///
/// # Errors
/// [`StorageError::Forbidden`] when `user` is not a member; database errors.
pub(crate) fn mark_read(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
) -> Result<ReadPositionRecord, StorageError> {
    let member = c
        .prepare_cached(
            "SELECT 1 FROM conversation_members WHERE user_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![user as i64, conversation as i64], |_| Ok(()))
        .optional()?
        .is_some();
    if !member {
        return Err(StorageError::Forbidden);
    }
    let newest = view.last_seq(c, conversation)?;
    let target = if seq == 0 { newest } else { seq.min(newest) };
    c.prepare_cached(
        "INSERT INTO read_positions(user_id, conversation_id, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?
    .execute(params![user as i64, conversation as i64, target as i64])?;
    let now_at: i64 = c
        .prepare_cached(
            "SELECT seq FROM read_positions WHERE user_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![user as i64, conversation as i64], |r| r.get(0))?;
    let now_at = now_at as u64;
    Ok(ReadPositionRecord {
        conversation_id: conversation,
        seq: now_at,
        unread: view.count_from_others(c, conversation, now_at, user)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = crate::schema::migrated_in_memory();
        for name in ["alice", "bob", "carol", "小明", "xiaoming_zhang"] {
            crate::account::insert_user(&c, name, &format!("{name} nick"), b"s", b"h").unwrap();
        }
        c
    }

    /// A rejection holds back the sender's next request to that user for the cool-down (not
    /// the reverse direction); pruning deletes answered requests past the retention but keeps
    /// a rejection still cooling down.
    #[test]
    fn rejection_cool_down_and_pruning() {
        const DAY: u64 = 86_400_000;
        let c = db();
        let RequestOutcome::Sent(r) = send_request(&c, 1, 2, "hi", DAY).unwrap() else {
            panic!("not sent")
        };
        respond_request(&c, 2, r.id, false).unwrap();
        match send_request(&c, 1, 2, "again", DAY) {
            Err(StorageError::CoolingDown { retry_after_ms }) => {
                assert!(retry_after_ms > DAY - 60_000 && retry_after_ms <= DAY)
            }
            other => panic!("not cooling down: {other:?}"),
        }
        assert!(matches!(
            send_request(&c, 2, 1, "", DAY),
            Ok(RequestOutcome::Sent(_))
        ));
        // Accepted and withdrawn requests, answered long ago; the rejection is recent.
        let RequestOutcome::Sent(a) = send_request(&c, 3, 1, "", DAY).unwrap() else {
            panic!("not sent")
        };
        respond_request(&c, 1, a.id, true).unwrap();
        c.execute(
            "UPDATE friend_requests SET answered_at_ms = answered_at_ms - ?1 WHERE id = ?2",
            params![40 * DAY as i64, a.id as i64],
        )
        .unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM friend_requests", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&c), 3);
        assert_eq!(prune_requests(&c, 30 * DAY, DAY).unwrap(), 1, "the old one");
        assert_eq!(
            prune_requests(&c, 0, DAY).unwrap(),
            0,
            "the rejection cools down"
        );
        assert_eq!(count(&c), 2);
        c.execute_batch("UPDATE friend_requests SET answered_at_ms = answered_at_ms - 1000")
            .unwrap();
        assert_eq!(prune_requests(&c, 0, 0).unwrap(), 1);
        assert_eq!(count(&c), 1, "the pending request stays");
        assert!(matches!(
            send_request(&c, 1, 2, "", DAY),
            Ok(RequestOutcome::Accepted { .. })
        ));
    }

    #[test]
    fn request_accept_and_mutual_request() {
        let c = db();
        let RequestOutcome::Sent(r) = send_request(&c, 1, 2, "hi", 0).unwrap() else {
            panic!("not sent")
        };
        assert!(matches!(
            send_request(&c, 1, 2, "again", 0),
            Err(StorageError::RequestPending)
        ));
        assert!(matches!(
            respond_request(&c, 1, r.id, true),
            Err(StorageError::UnknownRequest)
        ));
        let done = respond_request(&c, 2, r.id, true).unwrap();
        assert!(done.accepted);
        assert_eq!(done.friend.unwrap().user.id, 1);
        assert!(is_friend(&c, 1, 2).unwrap() && is_friend(&c, 2, 1).unwrap());
        assert!(matches!(
            send_request(&c, 2, 1, "", 0),
            Err(StorageError::AlreadyFriends)
        ));
        // Mutual: carol asks alice, then alice asks carol -> friends.
        send_request(&c, 3, 1, "", 0).unwrap();
        let out = send_request(&c, 1, 3, "", 0).unwrap();
        assert!(matches!(out, RequestOutcome::Accepted { .. }));
        assert_eq!(friend_ids(&c, 1).unwrap().len(), 2);
        let f = friends(&c, 1).unwrap();
        assert!(f.iter().all(|f| f.conversation_id != 0));
    }

    #[test]
    fn blocks_withdraw_and_refuse() {
        let c = db();
        send_request(&c, 2, 1, "", 0).unwrap();
        let (blocked, were_friends) = block(&c, 1, 2).unwrap();
        assert_eq!((blocked.id, were_friends), (2, false));
        assert!(friend_requests(&c, 1).unwrap().0.is_empty());
        assert!(matches!(
            send_request(&c, 2, 1, "", 0),
            Err(StorageError::BlockedByPeer)
        ));
        assert!(matches!(
            send_request(&c, 1, 2, "", 0),
            Err(StorageError::PeerBlocked)
        ));
        let mut gate = Gate::new(DirectPolicy::Anyone);
        assert!(matches!(
            gate.check(&c, 2, 1),
            Err(StorageError::BlockedByPeer)
        ));
        assert!(gate.check(&c, 2, 3).is_ok());
        assert_eq!(unblock(&c, 1, 2).unwrap().username, "bob");
        assert!(matches!(unblock(&c, 1, 2), Err(StorageError::NotBlocked)));
        // The writer clears the gate after every graph job.
        assert!(matches!(
            gate.check(&c, 2, 1),
            Err(StorageError::BlockedByPeer)
        ));
        gate.clear();
        assert!(gate.check(&c, 2, 1).is_ok());
        block(&c, 2, 1).unwrap();
        gate.clear();
        assert!(matches!(
            gate.check(&c, 1, 2),
            Err(StorageError::BlockedByPeer)
        ));
        assert!(matches!(
            gate.check(&c, 2, 1),
            Err(StorageError::PeerBlocked)
        ));
        unblock(&c, 2, 1).unwrap();
        gate.clear();
        let mut strict = Gate::new(DirectPolicy::FriendsOnly);
        assert!(matches!(
            strict.check(&c, 2, 1),
            Err(StorageError::NotFriends)
        ));
        assert!(matches!(
            strict.check(&c, 2, 99),
            Err(StorageError::UnknownUser)
        ));
    }

    #[test]
    fn conversation_pages_follow_the_cursor() {
        let c = db();
        for (a, b) in [(1, 2), (1, 3), (1, 4)] {
            befriend(&c, a, b, 1_000).unwrap();
        }
        let recent = crate::recent::Recent::new(0);
        let view = View {
            recent: &recent,
            snap: crate::recent::Snapshot::read(&c).unwrap(),
        };
        let all = |page| conversations(&c, &view, 1, page).unwrap();
        let (full, more) = all(ConversationPage::default());
        assert!(!more);
        assert_eq!(full.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1]);
        let (p1, more) = all(ConversationPage {
            limit: 2,
            before: None,
        });
        assert!(more);
        assert_eq!(p1.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2]);
        let last = &p1[1];
        let (p2, more) = all(ConversationPage {
            limit: 2,
            before: Some((last.last_active_ms, last.id)),
        });
        assert!(!more);
        assert_eq!(p2.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
        let (none, _) = all(ConversationPage {
            limit: 0,
            before: Some((1_000, 0)),
        });
        assert!(none.is_empty());
    }

    #[test]
    fn search_folds_case_beyond_ascii() {
        let c = db();
        crate::account::insert_user(&c, "anne", "änne", b"s", b"h").unwrap();
        crate::account::insert_user(&c, "odos", "ΟΔΟΣ", b"s", b"h").unwrap();
        let (found, _) = search_users(&c, 1, "ÄNNE", 10, 0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].nickname, "änne");
        assert_eq!(search_users(&c, 1, "οδος", 10, 0).unwrap().0.len(), 1);
        let (before, after) = update_profile(
            &c,
            1,
            &ProfileUpdate {
                nickname: Some("ÉCOLE".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (before.nickname.as_str(), after.nickname.as_str()),
            ("alice nick", "ÉCOLE")
        );
        assert_eq!(search_users(&c, 2, "école", 10, 0).unwrap().0[0].id, 1);
    }

    #[test]
    fn search_keys_are_nfkc_normalized() {
        // Full-width letters and digits (CJK input methods), decomposed accents, ligatures.
        assert_eq!(search_key("ＷＡＮＧ　Ｌｅｉ１２３"), "wang lei123");
        assert_eq!(search_key("E\u{301}COLE"), "école");
        assert_eq!(search_key("ﬁsh"), "fish");
        assert_eq!(search_key("王磊"), "王磊");
        let c = db();
        crate::account::insert_user(&c, "wanglei", "ＷａｎｇＬｅｉ", b"s", b"h").unwrap();
        crate::account::insert_user(&c, "cafe", "Cafe\u{301}", b"s", b"h").unwrap();
        let ids = |q: &str| -> Vec<u64> {
            let (found, _) = search_users(&c, 1, q, 10, 0).unwrap();
            found.iter().map(|u| u.id).collect()
        };
        assert_eq!(ids("wanglei"), ids("ＷＡＮＧ"));
        assert_eq!(ids("wanglei").len(), 1);
        assert_eq!(ids("café").len(), 1, "composed query, decomposed name");
    }

    #[test]
    fn search_ranks_and_escapes() {
        let c = db();
        let (found, more) = search_users(&c, 1, "xiao", 10, 0).unwrap();
        assert!(!more);
        assert_eq!(found.len(), 1);
        let (found, _) = search_users(&c, 1, "小", 10, 0).unwrap();
        assert_eq!(found[0].username, "小明");
        let (found, _) = search_users(&c, 1, "ALI", 10, 0).unwrap();
        assert_eq!(found[0].username, "alice");
        // "o" is in bob, carol, xiaoming_zhang: paged.
        let (p1, more) = search_users(&c, 1, "o", 2, 0).unwrap();
        assert!(more);
        let (p2, more) = search_users(&c, 1, "o", 2, 2).unwrap();
        assert!(!more);
        assert_eq!(p1.len() + p2.len(), 3);
        assert!(search_users(&c, 1, "%", 10, 0).unwrap().0.is_empty());
        assert_eq!(search_users(&c, 1, "_", 10, 0).unwrap().0.len(), 1);
        block(&c, 2, 1).unwrap();
        assert!(search_users(&c, 1, "bob", 10, 0).unwrap().0.is_empty());
    }
}
