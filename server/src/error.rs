//! The one place where failures become wire error codes.

use feige_protocol::ErrorCode;
use feige_storage::StorageError;

/// A request that failed, with the code and text the client receives.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct RequestError {
    /// Wire error code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

impl RequestError {
    /// An error with a specific message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RequestError {
            code,
            message: message.into(),
        }
    }

    /// An INVALID_ARGUMENT error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<StorageError> for RequestError {
    fn from(e: StorageError) -> Self {
        let code = match &e {
            StorageError::UsernameTaken => ErrorCode::UsernameTaken,
            StorageError::UnknownUser => ErrorCode::NotFound,
            StorageError::UnknownConversation => ErrorCode::NotFound,
            StorageError::Forbidden => ErrorCode::Forbidden,
            StorageError::SelfMessage => ErrorCode::InvalidArgument,
            StorageError::WorkerGone => ErrorCode::ShuttingDown,
            StorageError::NotFriends | StorageError::NotAFriend => ErrorCode::NotFriends,
            StorageError::BlockedByPeer | StorageError::PeerBlocked => ErrorCode::Blocked,
            StorageError::AlreadyFriends => ErrorCode::AlreadyFriends,
            StorageError::RequestPending => ErrorCode::RequestPending,
            StorageError::SelfTarget => ErrorCode::InvalidArgument,
            StorageError::UnknownRequest | StorageError::NotBlocked => ErrorCode::NotFound,
            StorageError::Sqlite(_)
            | StorageError::Pool(_)
            | StorageError::Io(_)
            | StorageError::CommitFailed(_)
            | StorageError::SnapshotMoved
            | StorageError::SchemaTooNew { .. } => {
                tracing::error!(error = %e, "storage failure");
                return RequestError::new(ErrorCode::Internal, "internal storage error");
            }
        };
        RequestError::new(code, e.to_string())
    }
}
