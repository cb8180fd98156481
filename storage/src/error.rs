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
    /// The database was written by a newer Feige.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
}
