//! Verification codes: 6-digit codes sent by e-mail or SMS, bound to a purpose and a
//! destination, with a lifetime, a number of tries, a cool-down and hourly limits
//! ([`book`]); the senders ([`send`]); the `[codes]`, `[mail]` and `[sms]` settings
//! ([`config`]); the service in `Shared` ([`service`]). The requests that use them are in `request::codes`.

pub(crate) mod book;
pub mod config;
pub(crate) mod send;
pub(crate) mod service;

use std::time::Duration;

/// What a code is for (the wire's `CodePurpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    Register = 1,
    Login = 2,
    Reset = 3,
    Change = 4,
}

impl Purpose {
    /// The name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::Login => "login",
            Purpose::Reset => "reset",
            Purpose::Change => "change",
        }
    }

    /// What the code allows, in the e-mail's words.
    pub fn describe(self) -> &'static str {
        match self {
            Purpose::Register => "creating your account",
            Purpose::Login => "logging in",
            Purpose::Reset => "setting a new password",
            Purpose::Change => "changing your e-mail or phone",
        }
    }
}

/// How a code travels (the wire's `CodeChannel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Email,
    Sms,
}

/// Why a code was not sent or not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    /// Wrong, spent, for another purpose or address, or none asked for; the tries left.
    #[error("wrong or unknown code ({0} tries left); request a new one if it is spent")]
    Invalid(u32),
    /// The code's lifetime passed.
    #[error("the code has expired; request a new one")]
    Expired,
    /// Too many wrong tries: the code is void.
    #[error("too many wrong tries; request a new code")]
    AttemptsExceeded,
    /// A code went to this destination moments ago.
    #[error("a code was sent to this address moments ago")]
    Cooldown(Duration),
    /// Too many codes for the destination or from the client address in the last hour.
    #[error("too many codes in the last hour")]
    RateLimited(Duration),
    /// The sender failed or timed out; nothing was charged.
    #[error("the code could not be sent: {0}")]
    SendFailed(String),
    /// Too many sends in progress, or the tables are full.
    #[error("too many codes being sent; retry later")]
    Busy,
    /// The random source or a thread failed.
    #[error("internal error")]
    Internal,
}

/// What `RequestCode` answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub cooldown: Duration,
    pub ttl: Duration,
}

/// A phone number as codes and accounts key it: the digits, after a leading `+` if it had
/// one (spaces, dashes and brackets dropped). `None` when it is not a phone number.
pub(crate) fn normalize_phone(p: &str) -> Option<String> {
    let p = p.trim();
    let (plus, body) = match p.strip_prefix('+') {
        Some(b) => ("+", b),
        None => ("", p),
    };
    let ok = p.len() <= 32
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'));
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    (ok && (5..=20).contains(&digits.len())).then(|| format!("{plus}{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalize_to_their_digits() {
        assert_eq!(
            normalize_phone(" +86 (138) 0013-8000 ").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(normalize_phone("555 0100").as_deref(), Some("5550100"));
        assert_eq!(normalize_phone("12"), None);
        assert_eq!(normalize_phone("+1 555 x"), None);
        assert_eq!(normalize_phone(""), None);
    }
}
