//! Feige storage: the SQLite schema, one group-commit writer thread, and a pool of readers.
//!
//! Writes go through [`Writer`]: a bounded queue drained by one named OS thread that commits
//! many operations per transaction. Reads run on a small r2d2 pool from tokio's blocking threads.
//! Nothing here runs on the reactor.

pub mod account;
pub mod admin;
pub mod backup;
pub mod blobs;
pub mod closing;
pub mod contacts;
mod db;
mod error;
mod files;
pub mod group;
pub mod indexer;
mod int;
pub mod message;
pub mod notifications;
mod options;
mod pairs;
pub mod receipts;
mod recent;
pub mod red_packet;
pub mod rooms;
mod row;
mod schema;
pub mod search;
mod sequence;
pub mod social;
pub mod stats;
mod store;
mod text;
pub mod transcript;
pub mod twofactor;
pub mod verified;
pub mod wallet;
mod writer;

pub use account::{SessionRecord, UserRecord};
pub use blobs::{FileRecord, FileRef};
pub use error::StorageError;
pub use message::{ConversationPosition, HistoryPage, HistoryQuery, StoredMessage, SyncPage};
pub use options::{DirectPolicy, Durability, StoreOptions};
pub use store::Store;
pub use writer::{
    Attached, Attachment, CommitSink, Committed, Delivered, GroupMembers, Members, Mentions,
    NewMessage, Target, Writer, WriterStats,
};

pub(crate) use db::{configure, in_transaction, move_rows};

/// A user id (SQLite rowid of `users`).
pub type UserId = u64;
/// A conversation id.
pub type ConversationId = u64;

/// Maps and sets keyed by ids the server assigns, looked up on the writer's per-message path:
/// foldhash's fast hasher instead of SipHash (there is no hash flooding to guard against).
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
/// See [`IdMap`].
pub(crate) type IdSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
