//! Storage errors.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The reader pool could not hand out a connection.
    #[error("connection pool error: {0}")]
    Pool(#[from] r2d2::Error),
    /// The data directory could not be created or read.
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// The writer thread or a blocking worker is gone (shutting down).
    #[error("storage worker stopped")]
    WorkerGone,
    /// The transaction holding this operation failed to commit; nothing of it was stored.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The username is already registered.
    #[error("username already taken")]
    UsernameTaken,
    /// Another account verified this e-mail address or phone number.
    #[error("another account has verified this e-mail address or phone number")]
    ContactTaken,
    /// A verified e-mail or phone is changed only with a code (ChangeContact).
    #[error(
        "a verified e-mail or phone is changed with a code (change_contact), not in the profile"
    )]
    VerificationRequired,
    /// The user does not exist.
    #[error("no such user")]
    UnknownUser,
    /// The conversation does not exist.
    #[error("no such conversation")]
    UnknownConversation,
    /// The caller is not a member of the conversation.
    #[error("not a member of this conversation")]
    Forbidden,
    /// A 1:1 message to oneself.
    #[error("cannot send a direct message to yourself")]
    SelfMessage,
    /// 1:1 messages need friendship (the direct policy is friends only).
    #[error("you can only send messages to friends")]
    NotFriends,
    /// The request needs a friendship that does not exist (remark, delete).
    #[error("this user is not your friend")]
    NotAFriend,
    /// The other user blocked the caller.
    #[error("this user has blocked you")]
    BlockedByPeer,
    /// The caller blocked the other user.
    #[error("you have blocked this user; unblock them first")]
    PeerBlocked,
    /// A friend request to an existing friend.
    #[error("already friends")]
    AlreadyFriends,
    /// A second friend request while the first is pending.
    #[error("a friend request to this user is already pending")]
    RequestPending,
    /// A friend request to a user who rejected the sender's last one within the cool-down.
    #[error("this user declined your last friend request; try again later")]
    CoolingDown {
        /// Milliseconds until a new request is accepted.
        retry_after_ms: u64,
    },
    /// A friend request, block or the like aimed at oneself.
    #[error("you cannot do this to yourself")]
    SelfTarget,
    /// No pending friend request with this id addressed to the caller.
    #[error("no such pending friend request")]
    UnknownRequest,
    /// Unblock of a user who is not blocked.
    #[error("this user is not blocked")]
    NotBlocked,
    /// The caller (or the user named) is not a member of the group.
    #[error("{0}")]
    NotAMember(&'static str),
    /// The sender is muted in the group: for `retry_after_ms` more (0 = the whole group is
    /// muted until lifted).
    #[error("you are muted in this group")]
    Muted {
        /// Milliseconds until the mute ends; 0 when the whole group is muted.
        retry_after_ms: u64,
    },
    /// The group has reached its member limit.
    #[error("the group is full ({0} members at most)")]
    GroupFull(usize),
    /// The caller's role does not allow this (or the target's role protects them).
    #[error("{0}")]
    NotAllowed(&'static str),
    /// A request that does not make sense for this group or message.
    #[error("{0}")]
    Invalid(String),
    /// No red packet with this id.
    #[error("no such red packet")]
    UnknownRedPacket,
    /// Every share of the red packet has been taken.
    #[error("every share of this red packet has been taken")]
    RedPacketEmpty,
    /// The user already took a share of this red packet.
    #[error("you already took a share of this red packet")]
    AlreadyGrabbed,
    /// The red packet expired; what was left went back to its sender.
    #[error("this red packet has expired")]
    RedPacketExpired,
    /// The wallet holds less than the amount.
    #[error("insufficient funds: the balance is {balance_cents} cents")]
    InsufficientFunds {
        /// The wallet's balance.
        balance_cents: i64,
    },
    /// No message with this seq in the conversation.
    #[error("no such message")]
    UnknownMessage,
    /// No such file (or it was deleted).
    #[error("no such file")]
    UnknownFile,
    /// No such unfinished upload of the caller's.
    #[error("no such upload (finished, aborted, expired or someone else's)")]
    UnknownUpload,
    /// A recall after the recall window.
    #[error("the message is too old to recall (the limit is {window_s} s)")]
    RecallExpired {
        /// The window, in seconds.
        window_s: u64,
    },
    /// A recall of a message already recalled.
    #[error("the message was already recalled")]
    AlreadyRecalled,
    /// A read's snapshot is older than a move of the sequence index that has since dropped
    /// entries it needs from memory (see `recent`); the store reads again, so callers of the
    /// public API do not see this.
    #[error("the sequence index moved under a read; try again")]
    SnapshotMoved,
    /// The database was written by a newer Feige.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database's schema version is negative: no Feige wrote it.
    #[error("database schema version {found} is not one Feige writes")]
    SchemaUnknown {
        /// Version in the file.
        found: i64,
    },
}
