//! The Feige server: accept → frame → session → route → store → push.
//!
//! See ARCHITECTURE.md for the data flow. [`Server::bind`] opens the store and the listening
//! socket; [`Server::run`] serves until the shutdown future completes, then drains gracefully.

pub mod account;
pub mod bans;
pub mod config;
pub mod connections;
pub mod control;
mod convert;
pub mod error;
mod files;
mod handler;
mod http;
pub mod limits;
mod listener;
pub mod logs;
pub mod metrics;
mod moderation;
mod notices;
pub mod outbox;
mod presence;
mod request;
mod rooms;
pub mod router;
pub mod sched;
pub mod session;
mod socket;
pub mod speech;
mod status;
mod tls;
mod twofactor;
mod validate;
pub mod verify;
pub mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use feige_storage::{Store, StoreOptions, Writer};
use ring::rand::SystemRandom;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
use router::{ReplyTo, Router};
use session::Sessions;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Storage(#[from] feige_storage::StorageError),
    /// The listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The router thread could not be started.
    #[error("cannot start the router thread: {0}")]
    RouterThread(std::io::Error),
    /// A start-up task on the blocking pool panicked or was cancelled.
    #[error("a start-up task failed")]
    StartupTask,
    /// The system's random source failed.
    #[error("random source failed")]
    Random,
    /// A speech-to-text engine could not be started (a missing model, say).
    #[error(transparent)]
    Speech(#[from] speech::SpeechError),
    /// The files' directories or the file worker pool could not be made.
    #[error("cannot set up file storage: {0}")]
    Files(std::io::Error),
}

/// State every connection shares.
pub(crate) struct Shared {
    pub config: Config,
    pub store: Store,
    pub writer: Writer<ReplyTo>,
    pub sessions: Arc<Sessions>,
    /// Orders presence announcements per user.
    pub presence: presence::Presence,
    pub rng: SystemRandom,
    /// World rooms' members (in memory, per connection).
    pub rooms: rooms::Rooms,
    /// Abuse limits: login back-off, rate limits, connection caps.
    pub limits: Arc<limits::Limits>,
    /// (salt, hash) of a random password at the configured iterations: a login for an unknown
    /// name verifies against it, so it costs as long as one for a known name.
    pub dummy_hash: (Vec<u8>, Vec<u8>),
    /// Set when the listener speaks TLS (`tls_cert`, `tls_key`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub next_conn_id: AtomicU64,
    /// Connection slots (`max_connections`), TCP and WebSocket alike.
    pub conn_slots: Arc<tokio::sync::Semaphore>,
    /// WebSocket connections open now (they also count in `conn_slots`).
    pub ws_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Every connection's task, waited for at shutdown.
    pub tracker: TaskTracker,
    /// Cancelled when shutdown begins: connections stop reading requests. A child of `close`,
    /// so a connection waits on one token at a time.
    pub stop_reading: CancellationToken,
    /// Cancelled once pending commits are done: connections flush and close.
    pub close: CancellationToken,
    /// Delivers acks and pushes; ends after the writer.
    pub router_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Files on disk and the file worker pool.
    pub files: files::Files,
    /// Speech-to-text: the engines' worker threads.
    pub speech: speech::Speech,
    /// Whether the accept loop holds a slot (to count open TCP connections).
    pub accept: listener::AcceptSlot,
    /// Counters and histograms for `/metrics` and the status.
    pub metrics: Arc<metrics::Metrics>,
    /// Held while an online backup runs: one at a time.
    pub backup_lock: tokio::sync::Mutex<()>,
    /// The logged-in connections as admins list them, and admins' kick reasons.
    pub connections: connections::Connections,
    /// Banned address ranges (checked at accept and login).
    pub bans: bans::Bans,
    /// Users an admin disabled, mirrored from the store for the login check.
    pub disabled: dashmap::DashSet<feige_storage::UserId>,
    /// Verification codes: the pending codes, their limits and senders.
    pub verify: verify::service::Verify,
    /// Users who closed their accounts, mirrored from the store (login check, `sender_closed`).
    pub closed: dashmap::DashSet<feige_storage::UserId>,
    /// Password logins waiting for their second factor (LoginTotp).
    pub challenges: twofactor::Challenges,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    /// The HTTP listener (`http_listen`), when on.
    http: Option<TcpListener>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("http_addr", &self.http_addr())
            .finish()
    }
}

impl Server {
    /// Validates `config`, opens the store in `config.data_dir` and binds `config.listen`.
    ///
    /// # Errors
    /// Invalid settings, a store that cannot be opened, or an address that cannot be bound.
    pub async fn bind(mut config: Config) -> Result<Server, ServerError> {
        config.validate()?;
        config.max_connections = resolve_max_connections(config.max_connections);
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).await?),
            _ => None,
        };
        let sessions = Arc::new(Sessions::default());
        let opts = StoreOptions {
            durability: config.durability.into(),
            max_batch: config.max_batch,
            conversation_cache: config.conversation_cache,
            index_batch: config.index_batch,
            direct_policy: config.dm_policy.into(),
            on_writer_start: sched::prefer_latency,
            ..StoreOptions::default()
        };
        let dir = config.data_dir.clone();
        let metrics = Arc::new(metrics::Metrics::default());
        let accept = listener::AcceptSlot::new(config.max_connections);
        let (router, router_thread) = Router::start(sessions.clone(), metrics.router.clone())
            .map_err(ServerError::RouterThread)?;
        let (store, writer) = tokio::task::spawn_blocking(move || {
            // The store's background threads (checkpoint, search index) inherit this thread's
            // slice: the default; the writer asks for the short one itself.
            sched::default_slice();
            let opened = Store::open::<ReplyTo>(&dir, opts, Box::new(router));
            sched::prefer_latency();
            opened
        })
        .await
        .map_err(|_| ServerError::StartupTask)??;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let iterations = config.pbkdf2_iterations;
        let dummy_hash = tokio::task::spawn_blocking(move || {
            let rng = SystemRandom::new();
            let password = account::new_token(&rng)?;
            account::hash_password(&rng, iterations, &format!("{password:?}"))
        })
        .await
        .map_err(|_| ServerError::StartupTask)?
        .map_err(|_| ServerError::Random)?;
        let limits = Arc::new(limits::Limits::new(&config));
        // Reads `mail.ca_file`: off the reactor.
        let verify_config = config.clone();
        let verify =
            tokio::task::spawn_blocking(move || verify::service::Verify::new(&verify_config))
                .await
                .map_err(|_| ServerError::StartupTask)?
                .map_err(|e| config::ConfigError::Invalid(format!("mail, sms: {e}")))?;
        let rooms = rooms::Rooms::new(config.max_rooms_per_connection, config.max_room_connections);
        let close = CancellationToken::new();
        let files_config = config.clone();
        let files = tokio::task::spawn_blocking(move || files::Files::start(&files_config))
            .await
            .map_err(|_| ServerError::StartupTask)?
            .map_err(ServerError::Files)?;
        // Loading a model takes a second or two: off the reactor.
        let speech_config = config.speech.clone();
        let speech = tokio::task::spawn_blocking(move || speech::Speech::start(&speech_config))
            .await
            .map_err(|_| ServerError::StartupTask)??;
        let (bans, disabled) = moderation::load(&store).await?;
        let closed = store.read(feige_storage::closing::closed_users).await?;
        let challenges =
            twofactor::Challenges::new(Duration::from_millis(config.second_factor_ttl_ms));
        // Last, so that a setting refused above never takes the port.
        let http = match config.http_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Listen { addr, source })?,
            ),
            None => None,
        };
        let slots = config.max_connections.max(1);
        Ok(Server {
            listener,
            http,
            shared: Arc::new(Shared {
                config,
                store,
                writer,
                sessions,
                presence: presence::Presence::default(),
                rng: SystemRandom::new(),
                rooms,
                limits,
                dummy_hash,
                tls,
                next_conn_id: AtomicU64::new(1),
                conn_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
                ws_connections: Arc::default(),
                tracker: TaskTracker::new(),
                stop_reading: close.child_token(),
                close,
                router_thread: std::sync::Mutex::new(Some(router_thread)),
                files,
                speech,
                accept,
                metrics,
                backup_lock: tokio::sync::Mutex::new(()),
                connections: connections::Connections::default(),
                bans,
                disabled,
                verify,
                closed: closed.into_iter().collect(),
                challenges,
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address the HTTP listener actually bound, when `http_listen` is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then stops accepting, lets connections finish
    /// their requests, commits everything queued, flushes outboxes and closes the store —
    /// all within the configured grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let shared = self.shared;
        let tracker = shared.tracker.clone();
        let accept_stop = CancellationToken::new();
        let accept = tokio::spawn(listener::accept_loop(
            self.listener,
            shared.clone(),
            tracker.clone(),
            accept_stop.clone(),
        ));
        let http = self
            .http
            .map(|l| tokio::spawn(http::serve(l, shared.clone(), accept_stop.clone())));
        let upkeep = tokio::spawn(upkeep(shared.clone()));
        let refunds = tokio::spawn(request::red_packet::refund_expired(shared.clone()));
        let file_sweep = tokio::spawn(files::sweep_unused(shared.clone()));
        let rates = tokio::spawn(status::sample_rates(shared.clone()));
        tokio::spawn(request::sessions::keep_sessions_alive(
            shared.clone(),
            accept_stop.clone(),
        ));
        tokio::spawn(request::closing::release_usernames(
            shared.clone(),
            accept_stop.clone(),
        ));
        shutdown.await;
        tracing::info!("shutting down");
        upkeep.abort();
        refunds.abort();
        file_sweep.abort();
        rates.abort();
        let grace = Duration::from_millis(shared.config.shutdown_grace_ms);
        let deadline = tokio::time::Instant::now() + grace;
        accept_stop.cancel();
        let _ = accept.await;
        if let Some(http) = http {
            // Plain HTTP requests finish; upgraded WebSocket connections are tracked below.
            let _ = tokio::time::timeout_at(deadline, http).await;
        }
        shared.stop_reading.cancel();
        // Let in-flight requests reach the writer, then commit all of it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if tokio::time::timeout_at(deadline, shared.writer.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("writer did not finish within the grace period");
        }
        // The writer is gone, so the router drains its queue and ends: every ack is queued.
        let router = shared.router_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(router) = router {
            let join = tokio::task::spawn_blocking(move || router.join());
            let _ = tokio::time::timeout_at(deadline, join).await;
        }
        shared.close.cancel();
        tracker.close();
        if tokio::time::timeout_at(deadline, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections did not close within the grace period");
        }
        tracing::info!("shutdown complete");
    }

    /// Runs the server on the current runtime in a task; the handle stops it.
    pub fn spawn(self) -> ServerHandle {
        let stop = CancellationToken::new();
        let addr = self.local_addr().ok();
        let http_addr = self.http_addr();
        let token = stop.clone();
        let sessions = self.shared.sessions.clone();
        let ws_connections = self.shared.ws_connections.clone();
        let task = tokio::spawn(async move { self.run(token.cancelled_owned()).await });
        ServerHandle {
            addr,
            http_addr,
            stop,
            task,
            sessions,
            ws_connections,
        }
    }
}

/// `max_connections` as configured, or when 0 what the open-file limit allows; logged.
fn resolve_max_connections(configured: usize) -> usize {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match (configured, nofile) {
        (0, Some(n)) => {
            let max = limits::connections_for_fd_limit(n);
            tracing::info!(
                max_connections = max,
                open_file_limit = n,
                headroom = limits::FD_HEADROOM,
                "max_connections follows the open-file limit, less headroom for databases and threads"
            );
            max
        }
        (0, None) => {
            tracing::info!(
                max_connections = DEFAULT_MAX_CONNECTIONS,
                "open-file limit unlimited or unknown: max_connections set to its fallback"
            );
            DEFAULT_MAX_CONNECTIONS
        }
        (max, Some(n)) if max > limits::connections_for_fd_limit(n) => {
            tracing::warn!(
                max_connections = max,
                open_file_limit = n,
                "max_connections exceeds what the open-file limit allows: accepts will fail with EMFILE"
            );
            max
        }
        (max, _) => max,
    }
}

/// `max_connections` when the open-file limit is unlimited or cannot be read.
const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// How often the limit tables are swept and answered friend requests looked at.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// Background upkeep until shutdown: sweeps the limit tables, and deletes answered friend
/// requests past `friend_request_retention_ms` (on the writer thread), at start and then every
/// [`UPKEEP_EVERY`] or retention period, whichever is shorter.
async fn upkeep(shared: Arc<Shared>) {
    let retention = shared.config.friend_request_retention_ms;
    let cooldown = shared.config.friend_request_cooldown_ms;
    let every = UPKEEP_EVERY.min(Duration::from_millis(retention.max(1)));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        shared.limits.sweep(tokio::time::Instant::now());
        let pruned = shared
            .writer
            .call(move |c| feige_storage::social::prune_requests(c, retention, cooldown))
            .await;
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::debug!(n, "pruned answered friend requests"),
            Err(e) => tracing::warn!(error = %e, "pruning friend requests failed"),
        }
    }
}

/// A running server started with [`Server::spawn`].
#[derive(Debug)]
pub struct ServerHandle {
    addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    sessions: Arc<Sessions>,
    ws_connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address of the HTTP listener, when `http_listen` is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// WebSocket connections open now.
    pub fn ws_connections(&self) -> usize {
        self.ws_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of output the logged-in connections hold: queued in their outboxes, or drained
    /// and not written yet (what `outbox_bytes` bounds).
    pub fn output_bytes(&self) -> usize {
        self.sessions.output_bytes()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0 follows the process's open-file limit; an explicit value wins.
    #[test]
    fn max_connections_defaults_to_the_open_file_limit() {
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let expected = nofile.map_or(DEFAULT_MAX_CONNECTIONS, limits::connections_for_fd_limit);
        assert_eq!(resolve_max_connections(0), expected);
        assert_eq!(resolve_max_connections(5), 5);
    }
}
