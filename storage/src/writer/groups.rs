//! The writer's part in groups: the cached members with their roles and mutes, the check of
//! each group message against them, and the group jobs ([`Writer::group`]) that change a
//! group and post its system notice in the same savepoint, so that the cache, the member
//! check and the notice's seq all follow commit order.

use std::sync::Arc;

use rusqlite::{params, Connection};

use super::op::{
    in_savepoint, Committed, Delivered, GroupJob, GroupMembers, Members, NewMessage, Op, Reply,
};
use super::state::State;
use super::Writer;
use crate::group::{Change, SYSTEM_KIND};
use crate::int::{get_u64, Uint};
use crate::recent::Slot;
use crate::row::StoredMessage;
use crate::{ConversationId, StorageError, UserId};

/// A group's members as the writer caches them (read at a cache miss and after each change).
pub(super) fn load_members(c: &Connection, id: ConversationId) -> Result<Members, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT user_id, role, muted_until_ms FROM members WHERE conversation_id = ?1
         ORDER BY user_id",
    )?;
    let mut ids = Vec::new();
    let mut rules = Vec::new();
    let mut rows = st.query([Uint(id)])?;
    while let Some(r) = rows.next()? {
        ids.push(get_u64(r, 0)?);
        rules.push((u8::try_from(r.get::<_, i64>(1)?).unwrap_or(0), r.get(2)?));
    }
    let mute_all = c
        .prepare_cached("SELECT mute_all FROM groups WHERE conversation_id = ?1")?
        .query_row([Uint(id)], |r| r.get(0))
        .unwrap_or(false);
    Ok(Members::Group(Arc::new(GroupMembers {
        ids: ids.into(),
        rules: rules.into(),
        mute_all,
    })))
}

/// Why `m` may not be sent to a conversation with these members, if it may not: not a
/// member, muted, or mentions that break the rules (only in groups; @all by owner and admins
/// only; every user mentioned a member).
pub(super) fn refusal<C>(members: &Members, m: &NewMessage<C>, now: i64) -> Option<StorageError> {
    let i = match members.as_slice().binary_search(&m.sender) {
        Ok(i) => i,
        Err(_) => {
            return Some(match members {
                Members::Pair(_) => StorageError::Forbidden,
                Members::Group(_) => StorageError::NotAMember("you are not a member of this group"),
            })
        }
    };
    let Members::Group(g) = members else {
        return m
            .mentions
            .as_ref()
            .map(|_| StorageError::Invalid("mentions are for group messages".into()));
    };
    let (role, muted_until) = g.rules.get(i).copied().unwrap_or((0, 0));
    if role == 0 {
        if muted_until > now {
            let left = u64::try_from(muted_until - now).unwrap_or(0);
            return Some(StorageError::Muted {
                retry_after_ms: left,
            });
        }
        if g.mute_all {
            return Some(StorageError::Muted { retry_after_ms: 0 });
        }
    }
    if let Some(mn) = &m.mentions {
        if mn.all && role == 0 {
            return Some(StorageError::NotAllowed(
                "only the owner and admins may mention everyone",
            ));
        }
        if let Some(u) = mn.users.iter().find(|u| g.ids.binary_search(u).is_err()) {
            return Some(StorageError::Invalid(format!(
                "mentioned user {u} is not a member of this group"
            )));
        }
    }
    None
}

impl State {
    /// Drops the cached entry of a conversation whose members changed; the next use reads
    /// them again.
    pub(super) fn forget(&mut self, id: ConversationId) {
        self.convs.young.remove(&id);
        self.convs.old.remove(&id);
    }

    /// Records the mentions of a stored group message (one row per user, 0 for @all) and
    /// returns them as the message carries them.
    pub(super) fn record_mentions<C>(
        c: &Connection,
        m: &NewMessage<C>,
        conv: ConversationId,
        seq: u64,
        message: &mut StoredMessage,
    ) -> Result<(), StorageError> {
        let Some(mn) = &m.mentions else {
            return Ok(());
        };
        let mut st = c.prepare_cached(
            "INSERT OR IGNORE INTO mentions(conversation_id, user_id, seq, sender_id)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for &u in mn.users.iter().chain(mn.all.then_some(&0)) {
            st.execute(params![Uint(conv), Uint(u), Uint(seq), Uint(m.sender)])?;
        }
        message.mentions.clone_from(&mn.users);
        message.mention_all = mn.all;
        Ok(())
    }

    /// Stores a system notice from `sender` in `group` with the next seq; it goes to the
    /// members and to `departed` (who just left it).
    pub(super) fn notice(
        &mut self,
        c: &Connection,
        group: ConversationId,
        sender: UserId,
        text: String,
        departed: &[UserId],
        now: i64,
    ) -> Result<Delivered, StorageError> {
        let id = self.next_id(now);
        let conv = self.conv(c, group)?;
        let seq = conv.last_seq + 1;
        c.prepare_cached(
            "INSERT INTO messages(id, conversation_id, seq, sender_id, client_msg_id, kind, body, sent_at_ms)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7)",
        )?
        .execute(params![Uint(id), Uint(group), Uint(seq), Uint(sender), SYSTEM_KIND, text, now])?;
        conv.last_seq = seq;
        let members = if departed.is_empty() {
            conv.members.clone()
        } else {
            let mut all: Vec<UserId> = conv.members.as_slice().to_vec();
            all.extend_from_slice(departed);
            all.sort_unstable();
            all.dedup();
            Members::Group(Arc::new(GroupMembers::plain(all)))
        };
        self.pending.push((group, Slot { seq, id, sender }));
        Ok(Delivered {
            message: StoredMessage {
                id,
                conversation_id: group,
                seq,
                from_user: sender,
                to_user: 0,
                client_msg_id: 0,
                kind: SYSTEM_KIND,
                text,
                sent_at_ms: now,
                mentions: Vec::new(),
                mention_all: false,
                recalled_by: 0,
            },
            duplicate: false,
            members,
        })
    }
}

impl<C: Send + 'static> Writer<C> {
    /// Runs a change of a group in the next batch: `f` gets the batch's connection, the
    /// group's newest seq (0 without `group`, for a new group) and the batch time; then the
    /// writer drops its cached members of the group and stores the change's notice (from
    /// `actor`, with the next seq), all in one savepoint. The notice reaches the
    /// [`super::CommitSink`] with `ctx`, with the batch's messages, and goes to the members
    /// and to those who just left; the caller gets `f`'s value after the commit.
    ///
    /// # Errors
    /// `f`'s error, [`StorageError::UnknownConversation`], as [`Writer::call`].
    pub async fn group<T, F>(
        &self,
        ctx: C,
        actor: UserId,
        group: Option<ConversationId>,
        f: F,
    ) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, u64, i64) -> Result<Change<T>, StorageError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, StorageError>>();
        let job: GroupJob<C> = Box::new(move |run| {
            let Some((c, state, now)) = run else {
                let reply: Reply = Box::new(move |_| {
                    let _ = tx.send(Err(StorageError::CommitFailed("not run".into())));
                });
                return (reply, Ok(()), None);
            };
            let mut notice = None;
            let mut changed = group;
            let (result, intact) = in_savepoint(c, |c| {
                let last_seq = match group {
                    Some(g) => state.conv(c, g)?.last_seq,
                    None => 0,
                };
                let change = f(c, last_seq, now)?;
                changed = Some(change.group);
                state.forget(change.group);
                if let Some(text) = change.notice {
                    let d = state.notice(c, change.group, actor, text, &change.departed, now)?;
                    notice = Some(d);
                }
                Ok(change.value)
            });
            if result.is_err() {
                // Rolled back: the cache may hold members read inside the savepoint.
                if let Some(g) = changed {
                    state.forget(g);
                }
                notice = None;
            }
            let reply: Reply = Box::new(move |commit: Result<(), String>| {
                let out = match (commit, result) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(StorageError::CommitFailed(e)),
                };
                let _ = tx.send(out);
            });
            let committed = notice.map(|d| Committed { ctx, result: Ok(d) });
            (reply, intact, committed)
        });
        self.tx
            .send(Op::Group(job))
            .await
            .map_err(|_| StorageError::WorkerGone)?;
        rx.await.map_err(|_| StorageError::WorkerGone)?
    }
}
