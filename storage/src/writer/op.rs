//! The vocabulary passed between the writer's parts: the operations queued for it, the
//! messages and their outcomes, and the sink that hears of them.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::message::StoredMessage;
use crate::stats::{Histogram, BATCH_BOUNDS, MICROS_BOUNDS};
use crate::FileRef;
use crate::{ConversationId, StorageError, UserId};

/// Where a new message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The 1:1 conversation with this user (created on first message).
    Direct(UserId),
    /// An existing conversation the sender is a member of.
    Conversation(ConversationId),
}

/// A message to store; `ctx` travels with it to the [`CommitSink`] (e.g. where to send the ack).
#[derive(Debug)]
pub struct NewMessage<C> {
    /// Caller's context, handed back with the result.
    pub ctx: C,
    /// Sender.
    pub sender: UserId,
    /// Destination.
    pub target: Target,
    /// Sender-chosen id for idempotent resends; 0 = none.
    pub client_msg_id: u64,
    /// Message kind (protocol enum number).
    pub kind: i32,
    /// Body text.
    pub text: String,
    /// Groups only: who the message mentions (boxed: most messages have none, and the op
    /// stays small).
    pub mentions: Option<Box<Mentions>>,
    /// Kinds with a file: the file (checked readable by the sender) and whether it is sent
    /// as an offer; stored with the message and counted as a use of the file.
    pub file: Option<Box<FileRef>>,
}

/// The @mentions of a group message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    /// Members mentioned.
    pub users: Vec<UserId>,
    /// Everyone (@all): the owner and admins only.
    pub all: bool,
}

/// What attached work learns of its message before the row is inserted.
#[derive(Debug)]
pub struct Attached<'a> {
    /// The id the message will have.
    pub message_id: u64,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its sender, a member of the conversation.
    pub sender: UserId,
    /// The conversation's members.
    pub members: &'a Members,
    /// The commit's clock (unix ms), the message's `sent_at_ms`.
    pub now_ms: i64,
}

/// Work run in a message's transaction (see [`crate::Writer::send_attached`]).
pub type Attachment =
    Box<dyn FnOnce(&Connection, &Attached<'_>) -> Result<(), StorageError> + Send>;

/// A committed (or refused) message and who should hear of it.
#[derive(Debug)]
pub struct Delivered {
    /// The stored message (the original one for a duplicate).
    pub message: StoredMessage,
    /// True when the client id was already stored; nothing new was written.
    pub duplicate: bool,
    /// Members of the conversation.
    pub members: Members,
}

/// A conversation's members, sorted by id. A direct conversation's are its pair, held inline:
/// no allocation per conversation and no shared count touched per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// A direct conversation: the pair, smaller id first.
    Pair([UserId; 2]),
    /// A group: its members with their roles and mutes.
    Group(Arc<GroupMembers>),
}

/// A group's members as the writer checks its messages: sorted ids, and at the same index
/// each one's role and mute deadline.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct GroupMembers {
    /// Member ids, sorted.
    pub ids: Box<[UserId]>,
    /// Per member (same index): role (0 member, 1 admin, 2 owner) and mute deadline (unix ms).
    pub rules: Box<[(u8, i64)]>,
    /// Only the owner and admins may speak.
    pub mute_all: bool,
}

impl GroupMembers {
    /// Plain members without mutes (for tests and for notices to departed users).
    pub fn plain(ids: Vec<UserId>) -> Self {
        let rules = vec![(0, 0); ids.len()].into();
        GroupMembers {
            ids: ids.into(),
            rules,
            mute_all: false,
        }
    }
}

impl Members {
    /// The members, sorted.
    pub fn as_slice(&self) -> &[UserId] {
        match self {
            Members::Pair(p) => p,
            Members::Group(g) => &g.ids,
        }
    }

    /// The direct conversation's pair, smaller id first; None for other kinds.
    pub fn pair(&self) -> Option<(UserId, UserId)> {
        match self {
            Members::Pair([a, b]) => Some((*a, *b)),
            Members::Group(_) => None,
        }
    }

    pub(super) fn direct(a: UserId, b: UserId) -> Self {
        Members::Pair([a.min(b), a.max(b)])
    }
}

/// One message's outcome, reported after its transaction committed.
#[derive(Debug)]
pub struct Committed<C> {
    /// The context given in [`NewMessage::ctx`].
    pub ctx: C,
    /// The stored message, or why it was refused.
    pub result: Result<Delivered, StorageError>,
}

/// Receives message outcomes on the writer thread, in commit order, right after each commit.
/// It must not block: hand work to queues.
pub trait CommitSink<C>: Send {
    /// Called once per committed batch; drain `batch`. `idle`: nothing waits in the
    /// writer's queue, so time the sink spends here delays no commit that could start.
    fn committed(&mut self, batch: &mut Vec<Committed<C>>, idle: bool);
}

/// Counters for benchmarks, logs and the server's metrics.
#[derive(Debug)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Operations committed.
    pub ops: AtomicU64,
    /// Messages stored (resends of a stored message not counted).
    pub messages: AtomicU64,
    /// Batches rolled back (their operations answered `CommitFailed`).
    pub failed_batches: AtomicU64,
    /// Operations per committed batch.
    pub batch_ops: Histogram,
    /// Microseconds from a batch's first operation to its commit.
    pub commit_us: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            batches: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            batch_ops: Histogram::new(BATCH_BOUNDS),
            commit_us: Histogram::new(MICROS_BOUNDS),
        }
    }
}

pub(super) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A queued call: run on the batch's connection, or, given `None`, dropped unrun because the
/// batch failed first. Returns the reply to send after the commit, and `Err` when the batch's
/// transaction can no longer be trusted (a savepoint statement failed), so the batch must fail.
pub(super) type Job = Box<dyn FnOnce(Option<&Connection>) -> (Reply, Result<(), String>) + Send>;

/// Wraps `f` as a [`Job`] whose outcome (after the commit) arrives on the receiver.
pub(super) fn job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T, StorageError>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
{
    let (reply_tx, reply_rx) = oneshot::channel::<Result<T, StorageError>>();
    let job: Job = Box::new(move |conn: Option<&Connection>| {
        let (result, intact) = match conn {
            Some(conn) => in_savepoint(conn, f),
            None => (Err(StorageError::CommitFailed("not run".into())), Ok(())),
        };
        let reply: Reply = Box::new(move |commit: Result<(), String>| {
            let out = match (commit, result) {
                (Ok(()), r) => r,
                (Err(e), _) => Err(StorageError::CommitFailed(e)),
            };
            let _ = reply_tx.send(out);
        });
        (reply, intact)
    });
    (job, reply_rx)
}

/// A group job ([`super::Writer::group`]): run with the batch's connection, the writer's state
/// and the batch time, or, given `None`, dropped unrun. Besides what a [`Job`] returns, it
/// gives the system notice it stored, to report with the batch's messages.
pub(super) type GroupJob<C> = Box<
    dyn FnOnce(
            Option<(&Connection, &mut dyn GroupState, i64)>,
        ) -> (Reply, Result<(), String>, Option<Committed<C>>)
        + Send,
>;

/// What a group job needs of the writer's state (the state implements it in `groups`).
pub(super) trait GroupState {
    /// The conversation's newest seq.
    fn last_seq(&mut self, c: &Connection, id: ConversationId) -> Result<u64, StorageError>;
    /// Drops the conversation's cached members.
    fn forget(&mut self, id: ConversationId);
    /// Stores a system notice with the next seq, for the members and `departed`.
    fn notice(
        &mut self,
        c: &Connection,
        group: ConversationId,
        sender: UserId,
        text: String,
        departed: &[UserId],
        now: i64,
    ) -> Result<Delivered, StorageError>;
}

pub(super) enum Op<C> {
    Message(NewMessage<C>),
    /// A change of a group's members or rules, with its system notice.
    Group(GroupJob<C>),
    /// A message with work to run in its transaction (see [`Attachment`]).
    Attached(NewMessage<C>, Attachment),
    /// A job; `true` when it may change friendships or blocks (drops the [`Gate`] cache).
    Call(Job, bool),
    Shutdown,
}

/// Runs `f` in a savepoint: released if `f` succeeds, rolled back to if it fails. Returns
/// `f`'s result, and `Err` when a savepoint statement failed: the transaction then holds an
/// unknown part of `f`'s writes (or was rolled back by a failed `INSERT OR ROLLBACK`), and
/// only failing the whole batch keeps the replies true.
pub(super) fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> (Result<T, StorageError>, Result<(), String>) {
    if let Err(e) = conn.execute_batch("SAVEPOINT op") {
        let e = e.to_string();
        return (Err(StorageError::CommitFailed(e.clone())), Err(e));
    }
    let r = f(conn);
    let end = if r.is_ok() {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    match conn.execute_batch(end) {
        Ok(()) => (r, Ok(())),
        Err(e) => (
            Err(StorageError::CommitFailed(e.to_string())),
            Err(e.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn direct_members_are_the_sorted_pair() {
        let m = super::Members::direct(9, 4);
        assert_eq!(m.as_slice(), &[4, 9]);
        assert_eq!(m.pair(), Some((4, 9)));
        let g = super::GroupMembers::plain(vec![1, 2, 3]);
        assert_eq!(super::Members::Group(g.into()).pair(), None);
    }
}
