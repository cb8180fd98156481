//! The rules for every text a user sets and every id or cursor a client sends, in one place,
//! so that each request family applies the same ones (docs/protocol.md §5, "Field rules").
//!
//! A text is trimmed, then refused when it holds a control character (C0, DEL or C1; multi-line
//! texts may hold `\n` and `\t`), when a name holds a bidirectional override or isolate
//! (U+202A–U+202E, U+2066–U+2069: they make a name display as another), or when it is too long
//! in characters or in bytes.

use feige_protocol::{pb, ErrorCode};
use feige_storage::ConversationPosition;

use crate::error::RequestError;

/// Most positions one Sync or Ack may carry.
const MAX_POSITIONS: usize = 10_000;

/// How a field's text may look.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// Field name, for the error message.
    pub name: &'static str,
    /// Fewest characters after trimming (0 = may be empty).
    pub min_chars: usize,
    /// Most characters after trimming.
    pub max_chars: usize,
    /// Most bytes (UTF-8) after trimming.
    pub max_bytes: usize,
    /// `\n` and `\t` allowed.
    pub multiline: bool,
    /// A name: bidirectional overrides and isolates refused.
    pub name_like: bool,
}

/// Display name: 1–64 characters.
pub(crate) const NICKNAME: Field = Field {
    name: "nickname",
    min_chars: 1,
    max_chars: 64,
    max_bytes: 256,
    multiline: false,
    name_like: true,
};
/// Why an address is banned: up to 256 characters, may be empty.
pub(crate) const BAN_REASON: Field = Field {
    name: "reason",
    min_chars: 0,
    max_chars: 256,
    max_bytes: 1024,
    multiline: false,
    name_like: false,
};
/// A notice's title: up to 128 characters, may be empty.
pub(crate) const NOTICE_TITLE: Field = Field {
    name: "title",
    min_chars: 0,
    max_chars: 128,
    max_bytes: 512,
    multiline: false,
    name_like: false,
};
/// Why an admin closes a connection: up to 256 characters, may be empty.
pub(crate) const KICK_REASON: Field = Field {
    name: "reason",
    min_chars: 0,
    max_chars: 256,
    max_bytes: 1024,
    multiline: false,
    name_like: false,
};
/// Profile signature: up to 256 characters, may span lines.
pub(crate) const SIGNATURE: Field = Field {
    name: "signature",
    min_chars: 0,
    max_chars: 256,
    max_bytes: 1024,
    multiline: true,
    name_like: false,
};
/// A friend's remark (the name the owner gives them): up to 64 characters.
pub(crate) const REMARK: Field = Field {
    name: "remark",
    min_chars: 0,
    max_chars: 64,
    max_bytes: 256,
    multiline: false,
    name_like: true,
};
/// A friend request's note: up to 256 characters on one line.
pub(crate) const REQUEST_NOTE: Field = Field {
    name: "friend request message",
    min_chars: 0,
    max_chars: 256,
    max_bytes: 1024,
    multiline: false,
    name_like: false,
};
/// A group's name: 1–64 characters.
pub(crate) const GROUP_NAME: Field = Field {
    name: "group name",
    min_chars: 1,
    max_chars: 64,
    max_bytes: 256,
    multiline: false,
    name_like: true,
};
/// A group's announcement: up to 1024 characters, may span lines.
pub(crate) const ANNOUNCEMENT: Field = Field {
    name: "announcement",
    min_chars: 0,
    max_chars: 1024,
    max_bytes: 4096,
    multiline: true,
    name_like: false,
};
/// A member's card name in a group: up to 64 characters.
pub(crate) const CARD: Field = Field {
    name: "card",
    min_chars: 0,
    max_chars: 64,
    max_bytes: 256,
    multiline: false,
    name_like: true,
};
/// A device name: up to 64 bytes (empty means "default").
pub(crate) const DEVICE: Field = Field {
    name: "device name",
    min_chars: 0,
    max_chars: 64,
    max_bytes: 64,
    multiline: false,
    name_like: true,
};
/// A user search: 1–64 characters.
pub(crate) const USER_QUERY: Field = Field {
    name: "query",
    min_chars: 1,
    max_chars: 64,
    max_bytes: 256,
    multiline: false,
    name_like: false,
};
/// A message search: up to 256 bytes.
pub(crate) const MESSAGE_QUERY: Field = Field {
    name: "query",
    min_chars: 0,
    max_chars: 256,
    max_bytes: 256,
    multiline: false,
    name_like: false,
};

/// Fewest characters in a password.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Most bytes in a password.
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_AVATAR_BYTES: usize = 128;
const MAX_PHONE_BYTES: usize = 32;
const MAX_EMAIL_BYTES: usize = 254;

/// A control character: C0 (NUL, ESC...), DEL or C1.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// A bidirectional embedding, override or isolate: U+202A–U+202E, U+2066–U+2069.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` trimmed, if it follows `f`'s rules.
///
/// # Errors
/// INVALID_ARGUMENT naming the field and the rule broken.
pub(crate) fn text(f: &Field, s: &str) -> Result<String, RequestError> {
    let s = s.trim();
    let chars = s.chars().count();
    if chars < f.min_chars || chars > f.max_chars || s.len() > f.max_bytes {
        let bytes = if f.max_bytes < f.max_chars * 4 {
            format!(" and {} bytes", f.max_bytes)
        } else {
            String::new()
        };
        return Err(RequestError::invalid(if f.min_chars > 0 {
            format!(
                "{} must have {} to {} characters{bytes}",
                f.name, f.min_chars, f.max_chars
            )
        } else {
            format!(
                "{} must have at most {} characters{bytes}",
                f.name, f.max_chars
            )
        }));
    }
    if s.chars()
        .any(|c| is_control(c) && !(f.multiline && matches!(c, '\n' | '\t')))
    {
        return Err(RequestError::invalid(format!(
            "{} must not contain control characters",
            f.name
        )));
    }
    if f.name_like && s.chars().any(is_bidi_control) {
        return Err(RequestError::invalid(format!(
            "{} must not contain bidirectional overrides or isolates",
            f.name
        )));
    }
    Ok(s.to_owned())
}

/// A username: trimmed, 3–32 bytes of ASCII letters, digits, `_`, `.` and `-`.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn username(name: &str) -> Result<String, RequestError> {
    let name = name.trim();
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(RequestError::invalid(
            "username must be 3 to 32 characters of letters, digits, '_', '.' or '-'",
        ));
    }
    Ok(name.to_owned())
}

/// A new password (`what` names the field): 8 characters to 1,024 bytes, no control
/// characters. Not trimmed: spaces are part of it.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn new_password(what: &str, p: &str) -> Result<(), RequestError> {
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(RequestError::invalid(format!(
            "{what} must have at least 8 characters"
        )));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(RequestError::invalid(format!(
            "{what} longer than 1024 bytes"
        )));
    }
    if p.chars().any(is_control) {
        return Err(RequestError::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

/// A device name at login: [`DEVICE`]'s rules, empty = `"default"`.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn device(d: &str) -> Result<String, RequestError> {
    let d = text(&DEVICE, d)?;
    Ok(if d.is_empty() {
        "default".to_owned()
    } else {
        d
    })
}

/// A user search query: [`USER_QUERY`]'s rules, and something left after the search's
/// normalisation (a query of nothing but ignorable characters would match every user).
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn user_query(q: &str) -> Result<String, RequestError> {
    let q = text(&USER_QUERY, q)?;
    if feige_storage::social::search_key(&q).trim().is_empty() {
        return Err(RequestError::invalid("query has nothing to search for"));
    }
    Ok(q)
}

/// Message text: not blank, at most `max_bytes` bytes (TOO_LARGE), no control characters but
/// `\n` and `\t`. Kept as sent (not trimmed).
///
/// # Errors
/// INVALID_ARGUMENT, or TOO_LARGE when longer than `max_bytes`.
pub(crate) fn message_text(t: &str, max_bytes: usize) -> Result<(), RequestError> {
    if t.trim().is_empty() {
        return Err(RequestError::invalid("message text is empty"));
    }
    if t.len() > max_bytes {
        return Err(RequestError::new(
            ErrorCode::TooLarge,
            format!(
                "message text is {} bytes; the limit is {max_bytes}",
                t.len()
            ),
        ));
    }
    if t.chars()
        .any(|c| is_control(c) && !matches!(c, '\n' | '\t'))
    {
        return Err(RequestError::invalid(
            "message text must not contain control characters but newline and tab",
        ));
    }
    Ok(())
}

/// An avatar file id: at most 128 bytes of printable ASCII.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn avatar(a: &str) -> Result<String, RequestError> {
    let a = a.trim();
    if a.len() > MAX_AVATAR_BYTES || !a.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::invalid(
            "avatar must be a file id of at most 128 printable ASCII characters",
        ));
    }
    Ok(a.to_owned())
}

/// A phone number: empty (clears it), or up to 32 bytes of digits, spaces, '-', '(' and ')'
/// with an optional leading '+', holding at least 3 digits.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn phone(p: &str) -> Result<String, RequestError> {
    let p = p.trim();
    if p.is_empty() {
        return Ok(String::new());
    }
    let body = p.strip_prefix('+').unwrap_or(p);
    let ok = p.len() <= MAX_PHONE_BYTES
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'))
        && body.chars().filter(char::is_ascii_digit).count() >= 3;
    if !ok {
        return Err(RequestError::invalid(
            "phone must be digits (with spaces, '-', '(', ')' and a leading '+'), at most 32 characters",
        ));
    }
    Ok(p.to_owned())
}

/// An e-mail address: empty (clears it), or `local@domain` without spaces, control
/// characters or bidirectional controls, at most 254 bytes.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn email(e: &str) -> Result<String, RequestError> {
    let e = e.trim();
    if e.is_empty() {
        return Ok(String::new());
    }
    let ok = e.len() <= MAX_EMAIL_BYTES
        && !e
            .chars()
            .any(|c| c.is_whitespace() || is_control(c) || is_bidi_control(c))
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if !ok {
        return Err(RequestError::invalid(
            "email must look like name@example.com (at most 254 characters)",
        ));
    }
    Ok(e.to_owned())
}

/// A user, conversation or request id from a client: the server hands out ids below 2^63
/// (they are SQLite integers), so a larger one names nothing and is refused rather than
/// wrapped to a negative number. 0 passes: callers give it its meaning ("none").
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn id(what: &str, id: u64) -> Result<u64, RequestError> {
    if id > i64::MAX as u64 {
        return Err(RequestError::invalid(format!("{what} is out of range")));
    }
    Ok(id)
}

/// An id the request cannot do without: as [`id`], and 0 is refused.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn required_id(what: &str, id: u64) -> Result<u64, RequestError> {
    if id == 0 {
        return Err(RequestError::invalid(format!("{what} is required")));
    }
    self::id(what, id)
}

/// The size of a page a client asks for: 0 means `default`, and more than `max` is `max`.
pub(crate) fn page_limit(asked: u32, default: u32, max: u32) -> usize {
    (if asked == 0 { default } else { asked.min(max) }) as usize
}

/// The read positions of a Sync or Ack: at most 10,000.
///
/// # Errors
/// INVALID_ARGUMENT.
pub(crate) fn positions(
    p: &[pb::ConversationPosition],
) -> Result<Vec<ConversationPosition>, RequestError> {
    if p.len() > MAX_POSITIONS {
        return Err(RequestError::invalid("too many positions (at most 10000)"));
    }
    Ok(p.iter()
        .map(|p| ConversationPosition {
            conversation_id: p.conversation_id,
            seq: p.seq,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(f: &Field, s: &str) -> bool {
        text(f, s).is_ok()
    }

    #[test]
    fn controls_are_refused_but_newline_and_tab_in_multiline_text() {
        for f in [&NICKNAME, &REMARK, &REQUEST_NOTE, &DEVICE, &USER_QUERY] {
            for bad in [
                "a\0b",
                "a\u{1b}[31mb",
                "a\nb",
                "a\tb",
                "a\u{7f}b",
                "a\u{85}b",
                "a\u{9b}b",
            ] {
                assert!(!ok(f, bad), "{} accepted {bad:?}", f.name);
            }
        }
        assert!(ok(&SIGNATURE, "line one\nline\ttwo"));
        assert!(!ok(&SIGNATURE, "a\u{1b}]0;title\u{7}"));
        assert!(!ok(&SIGNATURE, "a\rb"));
        assert!(message_text("hi\n\tthere", 100).is_ok());
        assert!(message_text("hi\u{1b}[2J", 100).is_err());
        assert!(message_text("hi\0", 100).is_err());
    }

    #[test]
    fn bidi_controls_are_refused_in_names_only() {
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            let s = format!("evil{c}gpj.exe");
            assert!(!ok(&NICKNAME, &s));
            assert!(!ok(&REMARK, &s));
            assert!(device(&s).is_err());
            assert!(email(&format!("a{c}@b.cn")).is_err());
            assert!(ok(&SIGNATURE, &s), "not a name");
        }
        // Right-to-left text itself is fine.
        assert_eq!(text(&NICKNAME, " مرحبا ").unwrap(), "مرحبا");
    }

    #[test]
    fn lengths_in_characters_and_bytes() {
        assert_eq!(text(&NICKNAME, "  小明 ").unwrap(), "小明");
        assert!(!ok(&NICKNAME, " "));
        assert!(ok(&NICKNAME, &"字".repeat(64)));
        assert!(!ok(&NICKNAME, &"x".repeat(65)));
        assert!(ok(&SIGNATURE, &"字".repeat(256)));
        assert!(!ok(&SIGNATURE, &"字".repeat(257)));
        assert!(ok(&REMARK, ""));
        assert_eq!(device("").unwrap(), "default");
        assert!(device(&"x".repeat(64)).is_ok());
        // 22 characters, 66 bytes.
        assert!(device(&"字".repeat(22)).is_err());
        assert!(message_text(&"x".repeat(10), 10).is_ok());
        let long = message_text(&"x".repeat(11), 10).unwrap_err();
        assert_eq!(long.code, ErrorCode::TooLarge);
        assert!(message_text(" \n ", 10).is_err());
    }

    #[test]
    fn usernames_and_passwords() {
        assert_eq!(username(" alice_01 ").unwrap(), "alice_01");
        assert!(username("al").is_err());
        assert!(username("ali ce").is_err());
        assert!(username("名字名字").is_err());
        assert!(new_password("password", "correct horse").is_ok());
        assert!(new_password("password", "short").is_err());
        assert!(new_password("password", "long enough\0").is_err());
        assert!(new_password("password", &"x".repeat(1025)).is_err());
    }

    #[test]
    fn user_queries_must_leave_something_to_search_for() {
        assert_eq!(user_query(" bob ").unwrap(), "bob");
        for bad in ["\0", "  ", "\u{1}\u{2}", "", "\u{1b}"] {
            assert!(user_query(bad).is_err(), "{bad:?}");
        }
        // Characters that NFKC-normalise to nothing but spaces.
        assert!(user_query("\u{3000}").is_err());
        assert!(user_query(&"x".repeat(65)).is_err());
    }

    #[test]
    fn profile_fields() {
        assert_eq!(phone("+86 138-0013-8000").unwrap(), "+86 138-0013-8000");
        assert_eq!(phone("").unwrap(), "");
        assert!(phone("12").is_err());
        assert!(phone("call me").is_err());
        assert!(phone("1+2345").is_err());
        assert_eq!(email(" a@b.cn ").unwrap(), "a@b.cn");
        assert!(email("a@b").is_err());
        assert!(email("a b@c.d").is_err());
        assert!(email("a\0@c.d").is_err());
        assert!(email("@c.d").is_err());
        assert!(email("a@@c.d").is_err());
        assert!(avatar("file-123").is_ok());
        assert!(avatar("a b").is_err());
    }

    #[test]
    fn ids_above_i64_are_refused() {
        assert_eq!(id("user_id", 0).unwrap(), 0);
        assert_eq!(id("user_id", i64::MAX as u64).unwrap(), i64::MAX as u64);
        assert!(id("user_id", 1 << 63).is_err());
        assert!(id("user_id", u64::MAX).is_err());
        assert!(required_id("user_id", 0).is_err());
        assert_eq!(required_id("user_id", 7).unwrap(), 7);
        assert!(required_id("user_id", 1 << 63).is_err());
    }

    #[test]
    fn pages_and_positions_are_bounded() {
        assert_eq!(page_limit(0, 20, 100), 20);
        assert_eq!(page_limit(5, 20, 100), 5);
        assert_eq!(page_limit(500, 20, 100), 100);
        let p = pb::ConversationPosition {
            conversation_id: 3,
            seq: 9,
        };
        assert_eq!(
            positions(&vec![p; MAX_POSITIONS]).unwrap().len(),
            MAX_POSITIONS
        );
        assert!(positions(&vec![p; MAX_POSITIONS + 1]).is_err());
    }
}
