//! The client's error type.

use feige_protocol::{pb, ErrorCode};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket failed (connect, read or write).
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// No response within the configured request timeout.
    #[error("request timed out")]
    Timeout,
    /// The server answered with an error response.
    #[error("{message} ({}){}", code_name(*code), retry_text(*retry_after_ms))]
    Server {
        /// The wire error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
        /// With `RATE_LIMITED`, `CODE_COOLDOWN`, `CODE_RATE_LIMITED`: how long to wait before
        /// trying again, in ms; else 0.
        retry_after_ms: u64,
        /// With `SECOND_FACTOR_REQUIRED`: the challenge to answer with
        /// [`crate::Client::login_totp`]; else empty.
        challenge: String,
    },
    /// The connection is gone (closed by the server, by [`crate::Client::close`], or lost
    /// while the request was in flight).
    #[error("connection closed")]
    Closed,
    /// The server sent something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS could not be set up: a bad CA file or server name, or a failed handshake (the
    /// server's certificate is not trusted or is for another name, or it does not speak TLS).
    #[error("TLS error: {0}")]
    Tls(String),
    /// The caller cancelled the call (a file transfer's cancellation token).
    #[error("cancelled")]
    Cancelled,
    /// The call's own arguments cannot work: a download range past the file's end, a path
    /// that is not a file.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl ClientError {
    /// The server error code, when this is a server error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The challenge of a `SECOND_FACTOR_REQUIRED` answer to a login, if this is one.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            ClientError::Server { challenge, .. } if !challenge.is_empty() => Some(challenge),
            _ => None,
        }
    }

    /// How long the server asked to wait before trying again (`RATE_LIMITED`), if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ClientError::Server { retry_after_ms, .. } if *retry_after_ms > 0 => {
                Some(std::time::Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }
}

/// The wait appended to a server error's text, when there is one.
fn retry_text(retry_after_ms: u64) -> String {
    match retry_after_ms {
        0 => String::new(),
        ms => format!("; retry in {:.1} s", ms as f64 / 1000.0),
    }
}

// Not `#[from]`: that would also make the io::Error the `source`, and error reports that
// walk the chain would print its text twice.
impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<pb::Error> for ClientError {
    fn from(e: pb::Error) -> Self {
        let code = ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Unspecified);
        let message = if e.message.is_empty() {
            code.describe().to_owned()
        } else {
            e.message
        };
        ClientError::Server {
            code,
            message,
            retry_after_ms: e.retry_after_ms,
            challenge: e.challenge,
        }
    }
}

/// The short name of an error code as in the .proto file without its prefix, e.g.
/// `NOT_LOGGED_IN`.
pub fn code_name(code: ErrorCode) -> &'static str {
    let name = code.as_str_name();
    name.strip_prefix("ERROR_CODE_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        assert_eq!(code_name(ErrorCode::NotLoggedIn), "NOT_LOGGED_IN");
        let e = ClientError::from(pb::Error {
            code: ErrorCode::BadCredentials as i32,
            message: String::new(),
            retry_after_ms: 0,
            challenge: String::new(),
        });
        assert_eq!(e.code(), Some(ErrorCode::BadCredentials));
        assert_eq!(e.retry_after(), None);
        let limited = ClientError::from(pb::Error {
            code: ErrorCode::RateLimited as i32,
            message: "too many failed logins".into(),
            retry_after_ms: 2500,
            challenge: String::new(),
        });
        assert_eq!(
            limited.retry_after(),
            Some(std::time::Duration::from_millis(2500))
        );
        assert_eq!(
            limited.to_string(),
            "too many failed logins (RATE_LIMITED); retry in 2.5 s"
        );
        assert_eq!(
            e.to_string(),
            "wrong username or password (BAD_CREDENTIALS)"
        );
    }
}
