//! The writer's part in groups: the cached members with their roles and mutes, the check of
//! each group message against them, and the group jobs ([`Writer::group`]) that change a
//! group and post its system notice in the same savepoint, so that the cache, the member
//! check and the notice's seq all follow commit order.

use std::sync::Arc;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::op::{
    in_savepoint, Committed, Delivered, GroupJob, GroupMembers, GroupState, Members, Op, Reply,
};
use super::state::State;
use super::Writer;
use crate::group::{Change, SYSTEM_KIND};
use crate::int::Uint;
use crate::recent::Slot;
use crate::row::StoredMessage;
use crate::{ConversationId, StorageError, UserId};

impl GroupState for State {
    fn last_seq(&mut self, c: &Connection, id: ConversationId) -> Result<u64, StorageError> {
        Ok(self.conv(c, id)?.last_seq)
    }

    /// Drops the cached entry of a conversation whose members changed; the next use reads
    /// them again.
    fn forget(&mut self, id: ConversationId) {
        self.convs.remove(&id);
    }

    /// Stores a system notice from `sender` in `group` with the next seq; it goes to the
    /// members and to `departed` (who just left it).
    fn notice(
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
                file: None,
                transcript: None,
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
        let (job, rx) = group_job(ctx, actor, group, f);
        self.tx
            .send(Op::Group(job).into())
            .await
            .map_err(|_| StorageError::WorkerGone)?;
        rx.await.map_err(|_| StorageError::WorkerGone)?
    }
}

/// The job [`Writer::group`] queues, and where its outcome arrives after the commit.
pub(super) fn group_job<C, T, F>(
    ctx: C,
    actor: UserId,
    group: Option<ConversationId>,
    f: F,
) -> (GroupJob<C>, oneshot::Receiver<Result<T, StorageError>>)
where
    C: Send + 'static,
    T: Send + 'static,
    F: FnOnce(&Connection, u64, i64) -> Result<Change<T>, StorageError> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<Result<T, StorageError>>();
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
                Some(g) => state.last_seq(c, g)?,
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
    (job, rx)
}
