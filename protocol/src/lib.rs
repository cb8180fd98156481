//! The Feige wire protocol: the protobuf messages of `proto/feige.proto` and the frame codec.
//!
//! A frame is a 4-byte big-endian length N followed by N bytes of one [`Envelope`].
//! See `docs/protocol.md` for the reference.

pub mod frame;
#[cfg(feature = "json")]
pub mod json;

/// Messages generated from `proto/feige.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/feige.v1.rs"));
}

pub use pb::{
    envelope::Body, push::Kind as PushKind, request::Kind as RequestKind,
    response::Result as ResponseResult, Envelope, ErrorCode, Push, Request, Response,
};

/// The protocol's major version; a Hello with another major version is refused.
pub const PROTOCOL_MAJOR: u32 = 1;
/// The protocol's minor version; grows when messages or fields are added.
pub const PROTOCOL_MINOR: u32 = 7;
/// Default maximum frame length (the payload after the 4-byte length prefix).
pub const DEFAULT_MAX_FRAME_LEN: usize = 1024 * 1024;

impl Envelope {
    /// A request envelope.
    pub fn request(request_id: u64, kind: RequestKind) -> Self {
        Envelope {
            request_id,
            body: Some(Body::Request(Request { kind: Some(kind) })),
        }
    }

    /// A successful response envelope.
    pub fn response(request_id: u64, result: ResponseResult) -> Self {
        Envelope {
            request_id,
            body: Some(Body::Response(Response {
                result: Some(result),
            })),
        }
    }

    /// An error response envelope.
    pub fn error(request_id: u64, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::response(
            request_id,
            ResponseResult::Error(pb::Error {
                code: code as i32,
                message: message.into(),
                retry_after_ms: 0,
                challenge: String::new(),
            }),
        )
    }

    /// A push envelope (request id 0).
    pub fn push(kind: PushKind) -> Self {
        Envelope {
            request_id: 0,
            body: Some(Body::Push(Push { kind: Some(kind) })),
        }
    }
}

impl ErrorCode {
    /// Short English text for the code, used when no more specific message exists.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorCode::Unspecified => "unspecified error",
            ErrorCode::Malformed => "malformed frame",
            ErrorCode::FrameTooLarge => "frame too large",
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::HelloRequired => "the first request must be Hello",
            ErrorCode::NotLoggedIn => "not logged in",
            ErrorCode::UnknownRequest => "unknown request",
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::UsernameTaken => "username already taken",
            ErrorCode::BadCredentials => "wrong username or password",
            ErrorCode::InvalidToken => "invalid or revoked session token",
            ErrorCode::NotFound => "not found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooLarge => "too large",
            ErrorCode::Busy => "server busy, retry later",
            ErrorCode::Internal => "internal server error",
            ErrorCode::LoginTimeout => "no login within the login deadline",
            ErrorCode::ShuttingDown => "server shutting down",
            ErrorCode::AlreadyLoggedIn => "already logged in",
            ErrorCode::IdleTimeout => "connection idle for too long",
            ErrorCode::SlowConsumer => "client too slow to read its frames",
            ErrorCode::NotFriends => "not friends",
            ErrorCode::Blocked => "blocked",
            ErrorCode::AlreadyFriends => "already friends",
            ErrorCode::RequestPending => "a friend request is already pending",
            ErrorCode::RateLimited => "too many attempts, retry later",
            ErrorCode::TooManyConnections => "too many connections",
            ErrorCode::FrameTimeout => "a frame did not complete in time",
            ErrorCode::NotAMember => "not a member of the group",
            ErrorCode::Muted => "muted in this group",
            ErrorCode::GroupFull => "the group is full",
            ErrorCode::RedPacketEmpty => "every share of the red packet has been taken",
            ErrorCode::AlreadyGrabbed => "already took a share of this red packet",
            ErrorCode::InsufficientFunds => "insufficient funds",
            ErrorCode::RedPacketExpired => "the red packet has expired",
            ErrorCode::NotInRoom => "not in this room",
            ErrorCode::TooManyRooms => "in too many rooms",
            ErrorCode::RoomFull => "the room is full",
            ErrorCode::RecallExpired => "too old to recall",
            ErrorCode::AlreadyRecalled => "already recalled",
            ErrorCode::HashMismatch => "the file's SHA-256 does not match",
            ErrorCode::QuotaExceeded => "storage quota exceeded",
            ErrorCode::FileTooLarge => "file too large",
            ErrorCode::UploadIncomplete => "the upload is missing chunks",
            ErrorCode::OfferNotAccepted => "the file offer has not been accepted",
            ErrorCode::SpeechUnavailable => "speech-to-text is not available",
            ErrorCode::TranscriptionFailed => "the audio could not be transcribed",
            ErrorCode::AccountDisabled => "the account is disabled",
            ErrorCode::PendingApproval => "the account waits for an admin's approval",
            ErrorCode::AddressBanned => "connections from this address are banned",
            ErrorCode::KickedByAdmin => "closed by an admin",
            ErrorCode::CodeInvalid => "wrong or unknown verification code",
            ErrorCode::CodeExpired => "the verification code has expired",
            ErrorCode::CodeAttemptsExceeded => "too many wrong tries of this verification code",
            ErrorCode::CodeCooldown => "a code was sent moments ago, retry later",
            ErrorCode::CodeRateLimited => "too many verification codes, retry later",
            ErrorCode::SenderFailed => "the e-mail or SMS could not be sent",
            ErrorCode::ContactTaken => "another account verified this e-mail or phone",
            ErrorCode::VerificationRequired => "a verified e-mail or phone is required",
            ErrorCode::SecondFactorRequired => "a second factor (TOTP) is required",
            ErrorCode::TotpInvalid => "wrong or used two-factor code",
            ErrorCode::AccountClosed => "the account was closed",
            ErrorCode::ChallengeInvalid => "unknown or expired two-factor challenge",
        }
    }
}
