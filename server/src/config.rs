//! Server settings: defaults, an optional TOML file, then command-line flags on top.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything the server can be told. Unknown keys in the TOML file are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address of the HTTP listener (WebSocket gateway, HTTP API, admin, metrics, pages);
    /// `"off"` or `""` in the file: none.
    #[serde(deserialize_with = "http_listen")]
    pub http_listen: Option<SocketAddr>,
    /// Bearer token of the HTTP API (`Authorization: Bearer <token>`); none: the API refuses.
    pub api_token: Option<String>,
    /// Bearer token of the admin operations (an admin user's session token works too).
    pub admin_token: Option<String>,
    /// PEM certificate chain; with `tls_key`, the listener speaks TLS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Directory holding the SQLite database.
    pub data_dir: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    pub log: LogLevel,
    /// Largest frame payload accepted, in bytes.
    pub max_frame_len: usize,
    /// Largest frame payload accepted before login, in bytes (Hello, Login, Register fit).
    pub max_prelogin_frame_len: usize,
    /// A frame begun must be complete within this many milliseconds.
    pub frame_timeout_ms: u64,
    /// A connection must log in (or resume) within this many milliseconds.
    pub login_timeout_ms: u64,
    /// Heartbeat interval told to clients; silence for 1.5x this drops the connection.
    pub heartbeat_ms: u64,
    /// Longest message text, in bytes.
    pub max_text_len: usize,
    /// Frames queued per connection before it counts as a slow consumer and is dropped.
    pub outbox_capacity: usize,
    /// Bytes of output (queued and being written) per connection before it counts as a slow
    /// consumer and is dropped; at half of it the connection stops reading requests.
    pub outbox_bytes: usize,
    /// Most concurrent connections; further ones wait in the accept backlog. 0: what the
    /// open-file limit allows (see `limits::connections_for_fd_limit`).
    pub max_connections: usize,
    /// Most connections from one address (an IPv6 /64); 0: no cap.
    pub max_connections_per_addr: usize,
    /// Most logged-in connections of one user; 0: no cap.
    pub max_connections_per_user: usize,
    /// Addresses exempt from every abuse limit (connection caps, login back-off, rate limits).
    pub trusted_addrs: Vec<IpAddr>,
    /// Failed logins of one account before each further one locks it.
    pub login_free_failures: u32,
    /// Failed logins from one address before each further one locks it.
    pub login_free_failures_per_addr: u32,
    /// First lock after the free failures, in milliseconds; each further failure doubles it.
    pub login_backoff_base_ms: u64,
    /// Longest lock after failed logins, in milliseconds.
    pub login_backoff_max_ms: u64,
    /// A failure count is forgotten after this many milliseconds without a failure.
    pub login_failure_window_ms: u64,
    /// Registrations per address per hour (token bucket, this many at once); 0: no limit.
    pub registrations_per_hour: u32,
    /// Messages per second per user (token bucket); 0: no limit.
    pub send_rate: u32,
    /// Messages a user may send at once before `send_rate` applies.
    pub send_burst: u32,
    /// After a rejected friend request, the sender may not ask the same user again for this
    /// many milliseconds.
    pub friend_request_cooldown_ms: u64,
    /// Answered friend requests are deleted this many milliseconds after the answer.
    pub friend_request_retention_ms: u64,
    /// A closed account's username is freed this many milliseconds after the closing.
    pub closed_username_retention_ms: u64,
    /// A password login's two-factor challenge must be answered within this many ms.
    pub second_factor_ttl_ms: u64,
    /// Most members of a group, the owner included (`GROUP_FULL` beyond).
    pub max_group_members: usize,
    /// A message may be recalled for this many seconds after it was sent.
    pub recall_window_s: u64,
    /// Longest a graceful shutdown may take, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// "process" (survives a server crash) or "fsync" (survives power loss).
    pub durability: Durability,
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (at least 100,000).
    pub pbkdf2_iterations: u32,
    /// Days a session token lives after its last use (fractions allowed); each use slides it.
    pub session_ttl_days: f64,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Conversations the storage writer keeps in memory, per cache generation (two are kept;
    /// about 100 bytes per conversation at most).
    pub conversation_cache: usize,
    /// Sequence-index entries the storage writer holds in memory before it moves them into
    /// the database in one go (about 80 bytes each; larger moves write fewer pages per
    /// message, and a restart reads the held entries back from the newest messages).
    pub index_batch: usize,
    /// Who may send 1:1 messages: "friends" (only friends; the default) or "anyone" (any two
    /// users, unless one blocked the other).
    pub dm_policy: DmPolicy,
    /// "open" (the default): a new account logs in at once; "approval": it waits for an admin.
    pub registration: Registration,
    /// What registration requires: "none" (the default: a username and a password), "email"
    /// (a verified e-mail) or "phone" (a verified phone); combines with `registration`.
    pub registration_verify: crate::verify::config::RegistrationVerify,
    /// Verification codes (the `[codes]` table): lifetime, tries, cool-down, hourly limits.
    pub codes: crate::verify::config::CodesConfig,
    /// The e-mail channel of the codes (the `[mail]` table): the log or SMTP.
    pub mail: crate::verify::config::MailConfig,
    /// The SMS channel of the codes (the `[sms]` table): the log or an HTTP gateway.
    pub sms: crate::verify::config::SmsConfig,
    /// Messages each world room keeps for its history (the newest; older ones are deleted).
    pub room_history: usize,
    /// Most world rooms one connection may be in at once.
    pub max_rooms_per_connection: usize,
    /// Most connections one world room may hold.
    pub max_room_connections: usize,
    /// A red packet's unclaimed rest goes back to its sender this many ms after it was sent.
    pub red_packet_expiry_ms: u64,
    /// Cents a wallet holds before its first movement (credited from the system account).
    pub wallet_initial_cents: u64,
    /// Usernames allowed to top up wallets (`TopUp`), compared without case.
    pub admins: Vec<String>,
    /// Speech-to-text (the `[speech]` table): engines, workers, limits.
    pub speech: crate::speech::SpeechConfig,
    /// Largest file an upload may have, in bytes (`FILE_TOO_LARGE` beyond).
    pub max_file_size: u64,
    /// Bytes of files (and unfinished uploads) one user may hold (`QUOTA_EXCEEDED` beyond).
    pub file_quota_bytes: u64,
    /// A file nothing uses any more (a recalled message's, a replaced avatar, a removed
    /// sticker) is deleted this many milliseconds later.
    pub file_grace_ms: u64,
    /// An unfinished upload, and a finished file never used, is deleted this many
    /// milliseconds after the upload began.
    pub upload_ttl_ms: u64,
    /// How often unused files and old uploads are swept, in milliseconds.
    pub file_sweep_ms: u64,
    /// Threads of the file worker pool (writes, reads, hashing, thumbnails).
    pub file_workers: usize,
    /// Bytes the file pool's waiting and running jobs may hold together (`BUSY` beyond).
    pub file_queue_bytes: usize,
    /// Bytes of upload chunks one connection may have in flight (`BUSY` beyond).
    pub upload_bytes_per_connection: usize,
    /// Most stickers one user may keep.
    pub max_stickers: usize,
    /// Log lines kept in memory for `GET /admin/api/logs`.
    pub log_ring_lines: usize,
    /// Bytes of log lines kept in memory, at most (about).
    pub log_ring_bytes: usize,
    /// When set, `GET /metrics` needs `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 7900)),
            http_listen: Some(SocketAddr::from(([0, 0, 0, 0], 7901))),
            api_token: None,
            admin_token: None,
            tls_cert: None,
            tls_key: None,
            data_dir: PathBuf::from("./feige-data"),
            log: LogLevel::Info,
            max_frame_len: feige_protocol::DEFAULT_MAX_FRAME_LEN,
            max_prelogin_frame_len: 64 * 1024,
            frame_timeout_ms: 15_000,
            login_timeout_ms: 10_000,
            heartbeat_ms: 30_000,
            max_text_len: 16 * 1024,
            outbox_capacity: 4096,
            outbox_bytes: 4 * 1024 * 1024,
            max_connections: 0,
            max_connections_per_addr: 256,
            max_connections_per_user: 32,
            trusted_addrs: Vec::new(),
            login_free_failures: 5,
            login_free_failures_per_addr: 20,
            login_backoff_base_ms: 1000,
            login_backoff_max_ms: 300_000,
            login_failure_window_ms: 3_600_000,
            registrations_per_hour: 10,
            send_rate: 100,
            send_burst: 200,
            friend_request_cooldown_ms: 24 * 3_600_000,
            friend_request_retention_ms: 30 * 24 * 3_600_000,
            closed_username_retention_ms: 30 * 24 * 3_600_000,
            second_factor_ttl_ms: 300_000,
            max_group_members: 10_000,
            recall_window_s: 120,
            shutdown_grace_ms: 10_000,
            durability: Durability::Process,
            pbkdf2_iterations: 100_000,
            session_ttl_days: 30.0,
            max_batch: 16384,
            conversation_cache: 500_000,
            index_batch: 262_144,
            dm_policy: DmPolicy::Friends,
            registration: Registration::Open,
            registration_verify: crate::verify::config::RegistrationVerify::None,
            codes: crate::verify::config::CodesConfig::default(),
            mail: crate::verify::config::MailConfig::default(),
            sms: crate::verify::config::SmsConfig::default(),
            room_history: 1000,
            max_rooms_per_connection: 16,
            max_room_connections: 100_000,
            red_packet_expiry_ms: 24 * 3_600_000,
            wallet_initial_cents: 0,
            admins: Vec::new(),
            speech: crate::speech::SpeechConfig::default(),
            max_file_size: 2 << 30,
            file_quota_bytes: 10 << 30,
            file_grace_ms: 24 * 3_600_000,
            upload_ttl_ms: 24 * 3_600_000,
            file_sweep_ms: 60_000,
            file_workers: 2,
            file_queue_bytes: 64 << 20,
            upload_bytes_per_connection: 4 << 20,
            max_stickers: 300,
            log_ring_lines: 2000,
            log_ring_bytes: 1 << 20,
            metrics_token: None,
        }
    }
}

/// The `log` setting: the most verbose level written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational lines and above.
    Info,
    /// Debugging detail and above.
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for tracing::Level {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// The `durability` setting: what a committed write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Survives a server crash.
    Process,
    /// Survives power loss.
    Fsync,
}

impl From<Durability> for feige_storage::Durability {
    fn from(d: Durability) -> Self {
        match d {
            Durability::Process => feige_storage::Durability::Process,
            Durability::Fsync => feige_storage::Durability::Fsync,
        }
    }
}

/// The `registration` setting: whether new accounts wait for an admin's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// A new account may log in at once.
    Open,
    /// A new account is pending (`PENDING_APPROVAL`) until an admin approves it.
    Approval,
}

/// The `dm_policy` setting: who may send 1:1 messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// Only friends.
    Friends,
    /// Any two users, unless one blocked the other.
    Anyone,
}

impl From<DmPolicy> for feige_storage::DirectPolicy {
    fn from(p: DmPolicy) -> Self {
        match p {
            DmPolicy::Friends => feige_storage::DirectPolicy::FriendsOnly,
            DmPolicy::Anyone => feige_storage::DirectPolicy::Anyone,
        }
    }
}

/// An `http_listen` value: an address, or `"off"` / `""` for no HTTP listener.
///
/// # Errors
/// Anything else.
pub fn parse_http_listen(value: &str) -> Result<Option<SocketAddr>, String> {
    match value.trim() {
        "" | "off" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|e| format!("http_listen: {v:?} is not an address or \"off\": {e}")),
    }
}

fn http_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let value = String::deserialize(d)?;
    parse_http_listen(&value).map_err(serde::de::Error::custom)
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML file does not parse or has unknown keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid setting {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file over the defaults.
    ///
    /// # Errors
    /// The file is unreadable or invalid.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: &str| Err(ConfigError::Invalid(s.into()));
        if self.max_frame_len < 1024 || self.max_frame_len > 64 * 1024 * 1024 {
            return bad("max_frame_len: must be 1 KiB..64 MiB");
        }
        // Clients are told the interval as a u32.
        if self.heartbeat_ms < 100 || self.heartbeat_ms > u64::from(u32::MAX) {
            return bad("heartbeat_ms: must be 100..4294967295");
        }
        if self.max_batch == 0 || self.conversation_cache == 0 || self.index_batch == 0 {
            return bad("max_batch, conversation_cache, index_batch: must be positive");
        }
        if self.pbkdf2_iterations < 100_000 {
            return bad("pbkdf2_iterations: must be at least 100000");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert, tls_key: give both (TLS) or neither (plain TCP)");
        }
        if !(self.session_ttl_days.is_finite()
            && self.session_ttl_days > 0.0
            && self.session_ttl_days <= 36_500.0)
        {
            return bad("session_ttl_days: must be above 0 and at most 36500");
        }
        if self.log_ring_lines == 0 || self.log_ring_bytes < 4096 {
            return bad("log_ring_lines, log_ring_bytes: at least 1 line and 4096 bytes");
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return bad("metrics_token: at least 16 characters");
        }
        if self.outbox_capacity < 16 {
            return bad("outbox_capacity: must be at least 16");
        }
        if self.outbox_bytes <= self.max_frame_len
            || self.outbox_bytes > crate::session::MAX_OUTBOX_BYTES
        {
            return bad("outbox_bytes: must be more than max_frame_len, and at most 1 GiB");
        }
        if self.max_prelogin_frame_len < 1024 || self.max_prelogin_frame_len > self.max_frame_len {
            return bad("max_prelogin_frame_len: must be 1 KiB..max_frame_len");
        }
        if self.frame_timeout_ms < 100 {
            return bad("frame_timeout_ms: must be at least 100");
        }
        if self.max_text_len == 0 || self.max_text_len + 1024 > self.max_frame_len {
            return bad("max_text_len: must be positive and fit in max_frame_len");
        }
        if self.login_backoff_base_ms == 0 || self.login_backoff_max_ms < self.login_backoff_base_ms
        {
            return bad("login_backoff_base_ms: must be positive and at most login_backoff_max_ms");
        }
        if self.friend_request_retention_ms == 0
            || self.second_factor_ttl_ms == 0
            || self.closed_username_retention_ms == 0
        {
            return bad("friend_request_retention_ms, second_factor_ttl_ms, closed_username_retention_ms: must be positive");
        }
        if !(2..=1_000_000).contains(&self.max_group_members) {
            return bad("max_group_members: must be 2..=1000000");
        }
        if self.room_history == 0
            || self.max_rooms_per_connection == 0
            || self.max_room_connections == 0
        {
            return bad(
                "room_history, max_rooms_per_connection, max_room_connections: must be positive",
            );
        }
        if self.max_file_size == 0 || self.max_file_size > i64::MAX as u64 {
            return bad("max_file_size: must be positive");
        }
        if self.file_workers == 0 || self.file_workers > 256 {
            return bad("file_workers: must be 1..256");
        }
        if self.file_sweep_ms == 0 {
            return bad("file_sweep_ms: must be positive");
        }
        if self.file_queue_bytes < 256 * 1024 || self.upload_bytes_per_connection < 256 * 1024 {
            return bad(
                "file_queue_bytes, upload_bytes_per_connection: must be at least one chunk (262144)",
            );
        }
        if self.red_packet_expiry_ms == 0 || self.red_packet_expiry_ms > i64::MAX as u64 / 2 {
            return bad("red_packet_expiry_ms: must be positive");
        }
        if self.wallet_initial_cents > i64::MAX as u64 / 2 {
            return bad("wallet_initial_cents: out of range");
        }
        for (key, token) in [
            ("api_token", &self.api_token),
            ("admin_token", &self.admin_token),
        ] {
            if token
                .as_ref()
                .is_some_and(|t| t.len() < 16 || t.len() > 1024)
            {
                return Err(ConfigError::Invalid(format!(
                    "{key}: must be 16..1024 bytes"
                )));
            }
        }
        crate::verify::config::validate(&self.codes, &self.mail, &self.sms)
            .map_err(ConfigError::Invalid)?;
        self.speech.validate().map_err(ConfigError::Invalid)
    }

    /// How long a session token lives after its last use, in milliseconds.
    pub(crate) fn session_ttl_ms(&self) -> i64 {
        (self.session_ttl_days * 86_400_000.0) as i64
    }

    /// Silence longer than this drops a logged-in connection.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms * 3 / 2)
    }

    /// The byte budget of one Sync, History or Search page: 1 MiB, and 1 KiB under
    /// `max_frame_len`, so a reply always fits in a frame (a page's first message is taken
    /// whatever its size, and `max_text_len` leaves 1 KiB of `max_frame_len` too).
    pub fn reply_page_bytes(&self) -> usize {
        (1024 * 1024).min(self.max_frame_len - 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_file_and_rejects_unknown_keys() {
        let c: Config = toml::from_str("listen = \"127.0.0.1:1\"\nheartbeat_ms = 500").unwrap();
        assert_eq!(c.heartbeat_ms, 500);
        assert_eq!(c.max_frame_len, 1024 * 1024);
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        assert!(c.validate().is_ok());
        let weak = Config {
            pbkdf2_iterations: 1000,
            ..Config::default()
        };
        assert!(weak.validate().is_err());
        let c: Config = toml::from_str("tls_cert = \"cert.pem\"").unwrap();
        assert!(c.validate().is_err(), "a certificate without a key");
        let c: Config = toml::from_str("session_ttl_days = 0.5").unwrap();
        assert_eq!(c.session_ttl_ms(), 43_200_000);
        let c: Config = toml::from_str("session_ttl_days = 0").unwrap();
        assert!(c.validate().is_err());
    }

    /// The HTTP listener is on by default, off with "off" or "", and tokens must be long.
    #[test]
    fn http_keys_parse() {
        assert_eq!(
            Config::default().http_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 7901)))
        );
        let c: Config = toml::from_str("http_listen = \"127.0.0.1:0\"").unwrap();
        assert_eq!(c.http_listen, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
        for off in ["off", ""] {
            let c: Config = toml::from_str(&format!("http_listen = {off:?}")).unwrap();
            assert_eq!(c.http_listen, None);
        }
        assert!(toml::from_str::<Config>("http_listen = \"nowhere\"").is_err());
        let c: Config = toml::from_str("api_token = \"short\"").unwrap();
        assert!(c.validate().is_err());
        let c: Config = toml::from_str("admin_token = \"0123456789abcdef\"").unwrap();
        assert!(c.validate().is_ok());
    }

    /// Choices parse from their documented strings; anything else is refused at parse time.
    #[test]
    fn choices_parse_from_strings() {
        let c = Config::default();
        assert_eq!(c.log, LogLevel::Info);
        assert_eq!(c.durability, Durability::Process);
        assert_eq!(c.dm_policy, DmPolicy::Friends);
        let c: Config =
            toml::from_str("log = \"debug\"\ndurability = \"fsync\"\ndm_policy = \"anyone\"")
                .unwrap();
        assert_eq!(c.log, LogLevel::Debug);
        assert_eq!(c.durability, Durability::Fsync);
        assert_eq!(c.dm_policy, DmPolicy::Anyone);
        assert_eq!(
            feige_storage::DirectPolicy::from(c.dm_policy),
            feige_storage::DirectPolicy::Anyone
        );
        assert!(toml::from_str::<Config>("durability = \"disk\"").is_err());
        assert!(toml::from_str::<Config>("dm_policy = \"strangers\"").is_err());
        assert_eq!(c.registration, Registration::Open);
        let approval: Config = toml::from_str("registration = \"approval\"").unwrap();
        assert_eq!(approval.registration, Registration::Approval);
        assert!(toml::from_str::<Config>("registration = \"closed\"").is_err());
        assert!(toml::from_str::<Config>("log = \"loud\"").is_err());
        let slow = Config {
            heartbeat_ms: u64::from(u32::MAX) + 1,
            ..Config::default()
        };
        assert!(slow.validate().is_err());
        let no_batch = Config {
            max_batch: 0,
            ..Config::default()
        };
        assert!(no_batch.validate().is_err());
    }

    /// One frame always fits in the output bound, and the pre-login limit is the smaller one.
    #[test]
    fn byte_limits_are_checked() {
        let c = Config::default();
        assert_eq!(c.outbox_bytes, 4 << 20);
        assert_eq!(c.reply_page_bytes(), (1 << 20) - 1024);
        let small_outbox = Config {
            outbox_bytes: c.max_frame_len,
            ..Config::default()
        };
        assert!(small_outbox.validate().is_err());
        let big_prelogin = Config {
            max_prelogin_frame_len: c.max_frame_len + 1,
            ..Config::default()
        };
        assert!(big_prelogin.validate().is_err());
        let small_frames = Config {
            max_frame_len: 64 * 1024,
            max_text_len: 16 * 1024,
            outbox_bytes: 256 * 1024,
            ..Config::default()
        };
        assert!(small_frames.validate().is_ok());
        assert_eq!(small_frames.reply_page_bytes(), 63 * 1024);
    }
}
