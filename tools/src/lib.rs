//! Pieces of the `feige` CLI that are worth testing on their own: the saved session file,
//! hex, timestamps and the output formats; and [`mod@bench`], the `feige-bench` load harness.

pub mod bench;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod social;

use feige_client::pb;
use serde::{Deserialize, Serialize};

/// Server used when neither `--server`, `FEIGE_SERVER` nor a saved session names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7900";
/// Device name used when neither `--device` nor a saved session names one.
pub const DEFAULT_DEVICE: &str = "cli";

/// A failure with a machine-readable code, printed as `error: ...` or as JSON.
#[derive(Debug)]
pub struct Failure {
    /// Short code, e.g. `NOT_LOGGED_IN`.
    pub code: String,
    /// Human-readable text.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Failure {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// What `feige login` stores in `<state-dir>/session-<username>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSession {
    /// Server address the session belongs to.
    pub server: String,
    /// Username as logged in.
    pub username: String,
    /// The user's id.
    pub user_id: u64,
    /// Session token, lowercase hex.
    pub token: String,
    /// Device name fixed at login.
    pub device: String,
}

/// The default state directory: `$HOME/.feige`, or `./.feige` without a home directory.
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".feige"),
        _ => PathBuf::from(".feige"),
    }
}

/// Checks that `username` is safe as part of a file name (the server's username alphabet).
///
/// # Errors
/// A [`Failure`] with code `INVALID_ARGUMENT`.
pub fn check_username(username: &str) -> Result<(), Failure> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !username.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            "INVALID_ARGUMENT",
            format!("invalid username {username:?}"),
        ))
    }
}

/// The session file of `username` (usernames are case-insensitive, file names lowercase).
pub fn session_path(state_dir: &Path, username: &str) -> PathBuf {
    state_dir.join(format!("session-{}.json", username.to_ascii_lowercase()))
}

/// The file naming the user that commands without `--user` act as.
pub fn current_path(state_dir: &Path) -> PathBuf {
    state_dir.join("current")
}

/// Writes `content` to `path` readable only by the owner (it may hold a token).
fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

/// Saves `session` and makes its user the current one.
///
/// # Errors
/// The state directory or files cannot be written.
pub fn save_session(state_dir: &Path, session: &SavedSession) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(state_dir)?;
    let json = serde_json::to_vec_pretty(session).map_err(std::io::Error::other)?;
    write_private(&session_path(state_dir, &session.username), &json)?;
    write_private(
        &current_path(state_dir),
        format!("{}\n", session.username).as_bytes(),
    )
}

/// The username in the `current` file, if any.
pub fn current_user(state_dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(current_path(state_dir)).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Loads the saved session of `username`, `None` if there is none.
///
/// # Errors
/// The file exists but cannot be read or parsed.
pub fn load_session(state_dir: &Path, username: &str) -> std::io::Result<Option<SavedSession>> {
    match std::fs::read(session_path(state_dir, username)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes the saved session of `username`, and the `current` file if it names them.
///
/// # Errors
/// A file exists but cannot be removed.
pub fn remove_session(state_dir: &Path, username: &str) -> std::io::Result<()> {
    let ignore_missing = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    ignore_missing(std::fs::remove_file(session_path(state_dir, username)))?;
    if current_user(state_dir).is_some_and(|u| u.eq_ignore_ascii_case(username)) {
        ignore_missing(std::fs::remove_file(current_path(state_dir)))?;
    }
    Ok(())
}

/// Lowercase hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Bytes of a hex string (either case); `None` if it is not hex.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Unix milliseconds as RFC 3339 UTC, second precision: `2026-11-24T04:30:00Z`.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Whether `c` must not reach a terminal as it is: C0 controls (newline and tab too, as every
/// line the CLI prints is one listing), DEL, C1 controls (including the 8-bit CSI), and the
/// bidi controls that reorder what follows them.
fn unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` made safe to print on a terminal: text from other users cannot move the cursor, clear
/// the screen, set the title (ESC and OSC sequences), start a fake line, or reverse the text
/// that follows. Newline, carriage return and tab become `\n`, `\r`, `\t`; other controls
/// `\x1b`-style below U+0080 and `\u{9b}`-style above; a backslash stays as it is.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !s.chars().any(unsafe_for_terminal) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_for_terminal(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_for_terminal(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One message as a line of text: `[conv 3 #12] 2026-11-24T04:30:00Z user 5: hello`.
/// A red packet reads `... user 5: [red packet 123] 恭喜发财` (grab it with its id).
pub fn message_line(m: &pb::Message) -> String {
    let packet = if m.red_packet_id != 0 {
        format!("[red packet {}] ", m.red_packet_id)
    } else if let Some(f) = &m.file {
        format!("[file {}: {}, {} bytes] ", f.file_id, f.name, f.size)
    } else {
        String::new()
    };
    if m.kind == pb::MessageKind::Recalled as i32 {
        return format!(
            "[conv {} #{}] {} user {}: (recalled by user {})",
            m.conversation_id,
            m.seq,
            format_time(m.sent_at_ms),
            m.from_user,
            m.recalled_by
        );
    }
    if m.kind == pb::MessageKind::System as i32 {
        // A group's notice ("alice added bob"): from the server, about the acting user.
        return format!(
            "[conv {} #{}] {} * {}",
            m.conversation_id,
            m.seq,
            format_time(m.sent_at_ms),
            terminal_safe(&m.text)
        );
    }
    format!(
        "[conv {} #{}] {} user {}: {packet}{}",
        m.conversation_id,
        m.seq,
        format_time(m.sent_at_ms),
        m.from_user,
        terminal_safe(&m.text)
    )
}

/// One message as JSON, ids as decimal strings.
#[derive(Debug, Serialize)]
pub struct MessageJson<'a> {
    /// Always "message".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Server message id.
    pub message_id: String,
    /// Conversation id.
    pub conversation_id: String,
    /// Sequence number in the conversation.
    pub seq: String,
    /// Sender's user id.
    pub from_user: String,
    /// Recipient's user id (1:1), "0" in groups.
    pub to_user: String,
    /// The text.
    pub text: &'a str,
    /// Sent at, unix milliseconds.
    pub sent_at: String,
    /// A red packet's id (grab it with `feige redpacket grab`); absent for other messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub red_packet_id: Option<String>,
    /// Who recalled it (only on a recalled message, whose text is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recalled_by: Option<String>,
    /// Groups: the users mentioned (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// Groups: everyone was mentioned (absent when not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mention_all: bool,
    /// The file a message of kind image, file, voice, video or sticker carries (absent
    /// otherwise): download it with `feige download FILE_ID PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileJson<'a>>,
    /// A transcribed voice message's text (absent when none).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub transcript: &'a str,
}

/// A message's file as JSON.
#[derive(Debug, Serialize)]
pub struct FileJson<'a> {
    /// Its id.
    pub file_id: String,
    /// Its name.
    pub name: &'a str,
    /// Bytes.
    pub size: u64,
    /// Mime type.
    pub mime: &'a str,
}

impl<'a> From<&'a pb::Message> for MessageJson<'a> {
    fn from(m: &'a pb::Message) -> Self {
        MessageJson {
            kind: "message",
            message_id: m.message_id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            seq: m.seq.to_string(),
            from_user: m.from_user.to_string(),
            to_user: m.to_user.to_string(),
            text: &m.text,
            sent_at: m.sent_at_ms.to_string(),
            red_packet_id: (m.red_packet_id != 0).then(|| m.red_packet_id.to_string()),
            recalled_by: (m.recalled_by != 0).then(|| m.recalled_by.to_string()),
            mentions: m.mentions.iter().map(u64::to_string).collect(),
            mention_all: m.mention_all,
            file: m.file.as_ref().map(|f| FileJson {
                file_id: f.file_id.to_string(),
                name: &f.name,
                size: f.size,
                mime: &f.mime,
            }),
            transcript: &m.transcript,
        }
    }
}

/// A message as one JSON line.
pub fn message_json(m: &pb::Message) -> String {
    serde_json::to_string(&MessageJson::from(m)).unwrap_or_default()
}

/// An error as one JSON line: `{"error":{"code":"NOT_LOGGED_IN","message":"..."}}`.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let s = hex_encode(&bytes);
        assert_eq!(&s[..8], "00010203");
        assert_eq!(hex_decode(&s).unwrap(), bytes);
        assert_eq!(hex_decode("ABcd").unwrap(), vec![0xab, 0xcd]);
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_795_494_600_999), "2026-11-24T04:30:00Z");
        assert_eq!(format_time(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn terminal_safe_escapes_controls_and_bidi() {
        assert_eq!(terminal_safe("plain 中文 ok\\"), "plain 中文 ok\\");
        assert_eq!(terminal_safe("\x1b[2Jgone"), "\\x1b[2Jgone");
        assert_eq!(terminal_safe("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(terminal_safe("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(terminal_safe("\u{9b}2J \u{7f}"), "\\u{9b}2J \\x7f");
        assert_eq!(terminal_safe("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal_safe("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }

    #[test]
    fn message_formats() {
        let m = pb::Message {
            message_id: 99,
            conversation_id: 3,
            seq: 12,
            from_user: 5,
            to_user: 6,
            text: "hello \"you\"".into(),
            sent_at_ms: 1_795_494_600_000,
            ..Default::default()
        };
        assert_eq!(
            message_line(&m),
            "[conv 3 #12] 2026-11-24T04:30:00Z user 5: hello \"you\""
        );
        let v: serde_json::Value = serde_json::from_str(&message_json(&m)).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["message_id"], "99");
        assert_eq!(v["seq"], "12");
        assert_eq!(v["text"], "hello \"you\"");
        assert_eq!(v["sent_at"], "1795494600000");
        let e: serde_json::Value =
            serde_json::from_str(&error_json("NOT_LOGGED_IN", "no")).unwrap();
        assert_eq!(e["error"]["code"], "NOT_LOGGED_IN");
    }

    #[test]
    fn session_files() {
        let dir = std::env::temp_dir().join(format!("feige-tools-test-{}", std::process::id()));
        let s = SavedSession {
            server: "127.0.0.1:1".into(),
            username: "Alice".into(),
            user_id: 7,
            token: hex_encode(&[1, 2, 3]),
            device: "cli".into(),
        };
        save_session(&dir, &s).unwrap();
        assert_eq!(current_user(&dir).as_deref(), Some("Alice"));
        assert_eq!(load_session(&dir, "alice").unwrap(), Some(s));
        remove_session(&dir, "ALICE").unwrap();
        assert!(load_session(&dir, "alice").unwrap().is_none());
        assert!(current_user(&dir).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(check_username("bob.smith-2").is_ok());
        assert!(check_username("../x").is_err());
    }
}
