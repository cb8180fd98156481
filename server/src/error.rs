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
    /// With `RATE_LIMITED`: milliseconds until a retry can succeed (`Error.retry_after_ms`).
    pub retry_after_ms: u64,
    /// With `SECOND_FACTOR_REQUIRED`: the challenge to answer with LoginTotp (`Error.challenge`).
    pub challenge: String,
}

impl RequestError {
    /// An error with a specific message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RequestError {
            code,
            message: message.into(),
            retry_after_ms: 0,
            challenge: String::new(),
        }
    }

    /// A RATE_LIMITED error: retry after `wait` (rounded up to whole milliseconds, at least 1).
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
        RequestError {
            retry_after_ms: u64::try_from(ms).unwrap_or(u64::MAX),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    /// The error response to request `rid`, with `retry_after_ms` when set.
    pub fn into_envelope(self, rid: u64) -> feige_protocol::Envelope {
        use feige_protocol::{pb, Body, ResponseResult};
        let mut env = feige_protocol::Envelope::error(rid, self.code, self.message);
        if let Some(Body::Response(pb::Response {
            result: Some(ResponseResult::Error(err)),
        })) = &mut env.body
        {
            err.retry_after_ms = self.retry_after_ms;
            err.challenge = self.challenge;
        }
        env
    }

    /// An INVALID_ARGUMENT error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<crate::workers::PoolError> for RequestError {
    fn from(e: crate::workers::PoolError) -> Self {
        let code = match e {
            crate::workers::PoolError::Busy(_) => ErrorCode::Busy,
            crate::workers::PoolError::Gone(_) => ErrorCode::Internal,
        };
        RequestError::new(code, e.to_string())
    }
}

impl From<crate::speech::SpeechError> for RequestError {
    fn from(e: crate::speech::SpeechError) -> Self {
        use crate::speech::{AudioError, SpeechError};
        let e = match e {
            SpeechError::Pool(p) => return RequestError::from(p),
            e => e,
        };
        let code = match &e {
            SpeechError::Unavailable(_) => ErrorCode::SpeechUnavailable,
            SpeechError::Pool(_) => ErrorCode::Busy,
            SpeechError::Audio(AudioError::TooLong { .. } | AudioError::FileTooLarge { .. }) => {
                ErrorCode::TooLarge
            }
            SpeechError::Audio(_) | SpeechError::Engine { .. } => ErrorCode::TranscriptionFailed,
            SpeechError::Read(_) | SpeechError::Start { .. } => {
                tracing::error!(error = %e, "speech failure");
                return RequestError::new(ErrorCode::Internal, "internal speech error");
            }
        };
        RequestError::new(code, e.to_string())
    }
}

impl From<crate::verify::VerifyError> for RequestError {
    fn from(e: crate::verify::VerifyError) -> Self {
        use crate::verify::VerifyError as V;
        let wait = |code, d: std::time::Duration| RequestError {
            retry_after_ms: u64::try_from(d.as_millis().max(1)).unwrap_or(u64::MAX),
            ..RequestError::new(code, e.to_string())
        };
        let code = match &e {
            V::Invalid(_) => ErrorCode::CodeInvalid,
            V::Expired => ErrorCode::CodeExpired,
            V::AttemptsExceeded => ErrorCode::CodeAttemptsExceeded,
            V::Cooldown(d) => return wait(ErrorCode::CodeCooldown, *d),
            V::RateLimited(d) => return wait(ErrorCode::CodeRateLimited, *d),
            V::SendFailed(_) => {
                // The sender's detail is logged; the client learns only that it failed.
                return RequestError::new(
                    ErrorCode::SenderFailed,
                    "the code could not be sent; nothing was charged, try again later",
                );
            }
            V::Busy => ErrorCode::Busy,
            V::Internal => ErrorCode::Internal,
        };
        RequestError::new(code, e.to_string())
    }
}

impl From<StorageError> for RequestError {
    fn from(e: StorageError) -> Self {
        if let StorageError::CoolingDown { retry_after_ms } = e {
            return RequestError::rate_limited(
                e.to_string(),
                std::time::Duration::from_millis(retry_after_ms),
            );
        }
        if let StorageError::Muted { retry_after_ms } = e {
            return RequestError {
                retry_after_ms,
                ..RequestError::new(ErrorCode::Muted, e.to_string())
            };
        }
        let code = match &e {
            StorageError::UsernameTaken => ErrorCode::UsernameTaken,
            StorageError::ContactTaken => ErrorCode::ContactTaken,
            StorageError::VerificationRequired => ErrorCode::VerificationRequired,
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
            StorageError::CoolingDown { .. } => ErrorCode::RateLimited,
            StorageError::UnknownRequest | StorageError::NotBlocked => ErrorCode::NotFound,
            StorageError::NotAMember(_) => ErrorCode::NotAMember,
            StorageError::Muted { .. } => ErrorCode::Muted,
            StorageError::GroupFull(_) => ErrorCode::GroupFull,
            StorageError::NotAllowed(_) => ErrorCode::Forbidden,
            StorageError::Invalid(_) => ErrorCode::InvalidArgument,
            StorageError::UnknownRedPacket => ErrorCode::NotFound,
            StorageError::RedPacketEmpty => ErrorCode::RedPacketEmpty,
            StorageError::AlreadyGrabbed => ErrorCode::AlreadyGrabbed,
            StorageError::RedPacketExpired => ErrorCode::RedPacketExpired,
            StorageError::InsufficientFunds { .. } => ErrorCode::InsufficientFunds,
            StorageError::UnknownMessage => ErrorCode::NotFound,
            StorageError::UnknownFile | StorageError::UnknownUpload => ErrorCode::NotFound,
            StorageError::RecallExpired { .. } => ErrorCode::RecallExpired,
            StorageError::AlreadyRecalled => ErrorCode::AlreadyRecalled,
            StorageError::Sqlite(_)
            | StorageError::Pool(_)
            | StorageError::Io(_)
            | StorageError::CommitFailed(_)
            | StorageError::SnapshotMoved
            | StorageError::SchemaTooNew { .. }
            | StorageError::SchemaUnknown { .. } => {
                tracing::error!(error = %e, "storage failure");
                return RequestError::new(ErrorCode::Internal, "internal storage error");
            }
        };
        RequestError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use feige_protocol::ErrorCode;

    use super::RequestError;
    use crate::speech::{AudioError, SpeechError};
    use crate::workers::PoolError;

    #[test]
    fn speech_failures_map_to_their_codes() {
        let code = |e: SpeechError| RequestError::from(e).code;
        assert_eq!(
            code(SpeechError::Unavailable("zh".into())),
            ErrorCode::SpeechUnavailable
        );
        assert_eq!(
            code(SpeechError::Pool(PoolError::Busy("s"))),
            ErrorCode::Busy
        );
        assert_eq!(
            code(SpeechError::Pool(PoolError::Gone("s"))),
            ErrorCode::Internal
        );
        assert_eq!(
            code(AudioError::Empty.into()),
            ErrorCode::TranscriptionFailed
        );
        assert_eq!(
            code(SpeechError::engine("cloud", "error 3301")),
            ErrorCode::TranscriptionFailed
        );
        let long = AudioError::TooLong {
            seconds: 61,
            max_seconds: 60,
        };
        assert_eq!(code(long.into()), ErrorCode::TooLarge);
        let unreadable = SpeechError::Read(std::io::Error::other("gone"));
        assert_eq!(code(unreadable), ErrorCode::Internal);
    }
}
