//! The choices [`crate::Store::open`] takes: durability, queue and cache sizes, and who may
//! message whom.

/// How durable a commit is before the writer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the server process (WAL, `synchronous=NORMAL`).
    #[default]
    Process,
    /// Survives power loss (WAL, `synchronous=FULL`: fsync on every commit).
    Fsync,
}

/// Who may start or continue a 1:1 conversation with whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectPolicy {
    /// Only friends may exchange 1:1 messages (the default, as in WeChat-like apps).
    #[default]
    FriendsOnly,
    /// Any two users may, unless one blocked the other.
    Anyone,
}

/// Options for [`crate::Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Commit durability.
    pub durability: Durability,
    /// Most operations committed in one transaction.
    pub max_batch: usize,
    /// Capacity of the writer's queue; senders wait when it is full.
    pub queue_capacity: usize,
    /// Reader connections in the pool.
    pub readers: u32,
    /// SQLite page cache per connection, in KiB.
    pub cache_kib: u32,
    /// Who may send 1:1 messages to whom (enforced by the writer).
    pub direct_policy: DirectPolicy,
    /// Conversations the writer keeps in memory per cache generation (it keeps two): their
    /// last seq and members, and each direct pair's conversation id. A message to one it
    /// lacks costs several index lookups. About 100 bytes per conversation at most.
    pub conversation_cache: usize,
    /// Sequence-index entries the writer holds in memory before it moves them into the
    /// database in one go (see the `recent` module): larger moves write fewer pages per
    /// message; each entry takes about 80 bytes, and a restart reads them back.
    pub index_batch: usize,
    /// Called first on the writer's thread (the server asks the kernel for a short scheduler
    /// slice there, as chat messages wait on this thread).
    pub on_writer_start: fn(),
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Process,
            max_batch: 16384,
            queue_capacity: 16384,
            readers: 4,
            cache_kib: 64 * 1024,
            direct_policy: DirectPolicy::FriendsOnly,
            conversation_cache: 500_000,
            index_batch: 262_144,
            on_writer_start: || {},
        }
    }
}
