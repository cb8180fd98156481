//! The engine behind [`crate::Client`]: one live connection at a time (a reader and a writer
//! task), the requests in flight, the supervisor that reconnects, sync and debounced acks.
//!
//! Data flow: a call encodes its request, registers a oneshot under its request id and hands
//! the frame to the writer task, which batches frames into few writes and pings when idle. The
//! reader task decodes frames in arrival order: responses complete their oneshot, and pushes,
//! sync pages and send acks go through the delivery [`Tracker`] before their messages are
//! emitted as events — so the reader is the only task that emits messages, in order.
//!
//! Issue order: a request's id is taken and its frame queued for the writer in one step under
//! the link lock, so frames go out in the order their calls reached that step. Sends outlive a
//! lost connection: they stay in the (id-ordered) table, are queued there while offline, and
//! the next connection writes them all, in id order, before any new request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use feige_protocol::frame::{self, HEADER_LEN};
use feige_protocol::{
    pb, Body, Envelope, ErrorCode, PushKind, RequestKind, ResponseResult, DEFAULT_MAX_FRAME_LEN,
    PROTOCOL_MAJOR, PROTOCOL_MINOR,
};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::Connection;
use crate::delivery::Tracker;
use crate::types::{ClientConfig, ConnState, Event};
use crate::ClientError;

pub(crate) mod acks;
pub(crate) mod supervisor;
pub(crate) mod tasks;

/// Most positions in one Ack (the server takes up to 10 000).
const ACK_CHUNK: usize = 5000;
/// Most requests in flight per client; more wait for a slot (first come, first served, so
/// they keep their order). Keeps a burst of responses well inside the server's
/// per-connection outbox, which it would otherwise drop the connection for. It also bounds
/// the writer's queue.
const MAX_IN_FLIGHT: usize = 1024;
/// Most connections one send is written on (the first and the resends after lost ones).
pub(crate) const SEND_ATTEMPTS: u32 = 10;
/// Failed background syncs retried while the connection stays up.
const SYNC_RETRIES: u32 = 3;

/// Locks a mutex, ignoring poisoning (no critical section here leaves data half-updated).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the reader does with a response besides completing its call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// Nothing.
    Plain,
    /// Feed the page to the tracker (if still in this epoch) and answer with what it delivered.
    Sync { epoch: u64 },
}

/// A request waiting for its response.
struct Pending {
    tx: oneshot::Sender<Result<ResponseResult, ClientError>>,
    purpose: Purpose,
    /// The frame, for a request resent on the next connection when this one is lost (a
    /// send: the server deduplicates it by `client_msg_id`).
    resend: Option<Bytes>,
    /// Connections the request was written on (or queued for).
    attempts: u32,
}

/// Whether there is a connection to send on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkStatus {
    /// Connection number `gen` is live (greeted, and logged in if the client is).
    Up(u64),
    /// No connection; the supervisor is reconnecting.
    Down,
    /// Closed for good.
    Dead,
}

/// The current connection.
struct Link {
    gen: u64,
    up: bool,
    dead: bool,
    writer: Option<mpsc::UnboundedSender<Bytes>>,
    /// Keyed by request id, which grows in issue order.
    pending: BTreeMap<u64, Pending>,
    server_max_frame: usize,
    conn_cancel: Option<CancellationToken>,
}

/// Removes a request from the table when its caller stops waiting (answered, failed, or
/// the future was dropped), so it is not resent.
struct Forget<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.inner.link).pending.remove(&self.id);
    }
}

/// How a reader task ended.
#[derive(Debug, Default)]
pub(crate) struct ReadEnd {
    /// The server's Kicked code, if it sent one.
    kicked: Option<ErrorCode>,
}

/// State shared by the client handles and its tasks.
pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    next_id: AtomicU64,
    last_msg_id: AtomicU64,
    msg_id_salt: u64,
    link: Mutex<Link>,
    in_flight: Semaphore,
    status: watch::Sender<LinkStatus>,
    pub(crate) tracker: Mutex<Tracker>,
    session: Mutex<Option<pb::Session>>,
    events: Mutex<Option<mpsc::Sender<Event>>>,
    pub(crate) cancel: CancellationToken,
    sync_running: AtomicBool,
    sync_wanted: AtomicBool,
    ack_notify: Notify,
    pub(crate) reconnect: Notify,
}

impl Inner {
    /// A client state with no connection yet.
    pub(crate) fn new(config: ClientConfig, events: mpsc::Sender<Event>) -> Self {
        Inner {
            config,
            next_id: AtomicU64::new(1),
            last_msg_id: AtomicU64::new(0),
            msg_id_salt: random_u64() & 0xF_FFFF,
            link: Mutex::new(Link {
                gen: 0,
                up: false,
                dead: false,
                writer: None,
                pending: BTreeMap::new(),
                server_max_frame: DEFAULT_MAX_FRAME_LEN,
                conn_cancel: None,
            }),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            status: watch::Sender::new(LinkStatus::Down),
            tracker: Mutex::default(),
            session: Mutex::new(None),
            events: Mutex::new(Some(events)),
            cancel: CancellationToken::new(),
            sync_running: AtomicBool::new(false),
            sync_wanted: AtomicBool::new(false),
            ack_notify: Notify::new(),
            reconnect: Notify::new(),
        }
    }

    /// A fresh request id.
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh client_msg_id: `unix_ms << 20 | salt`, strictly growing within this client.
    /// The random 20-bit salt keeps two clients of one user apart within the same millisecond.
    pub(crate) fn next_client_msg_id(&self) -> u64 {
        let now = (unix_ms() << 20) | self.msg_id_salt;
        let prev = self
            .last_msg_id
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        now.max(prev + 1).max(1)
    }

    /// The current session.
    pub(crate) fn session(&self) -> Option<pb::Session> {
        lock(&self.session).clone()
    }

    /// Keeps the session's profile current after a profile change (here or on another device).
    pub(crate) fn set_profile(&self, profile: &pb::Profile) {
        if let Some(s) = lock(&self.session).as_mut() {
            if s.user_id == profile.user_id {
                s.profile = Some(profile.clone());
            }
        }
    }

    /// Whether the client holds a session.
    pub(crate) fn logged_in(&self) -> bool {
        lock(&self.session).is_some()
    }

    /// Whether a connection is live.
    pub(crate) fn is_up(&self) -> bool {
        lock(&self.link).up
    }

    /// Records a new session (login or resume) and starts the automatic sync.
    pub(crate) fn on_logged_in(self: &Arc<Self>, session: pb::Session) {
        {
            let mut t = lock(&self.tracker);
            t.set_user(session.user_id);
            t.set_synced(false);
        }
        *lock(&self.session) = Some(session);
        self.trigger_sync();
    }

    /// Drops the session and every delivery position (logout, revoked token).
    pub(crate) fn forget_session(&self) {
        *lock(&self.session) = None;
        lock(&self.tracker).reset();
    }

    /// Emits a state change; dropped if the application lags far behind.
    pub(crate) fn emit_state(&self, state: ConnState) {
        if let Some(tx) = lock(&self.events).as_ref() {
            let _ = tx.try_send(Event::State(state));
        }
    }

    /// Emits an event, waiting for room in the queue.
    async fn emit(&self, event: Event) {
        let tx = lock(&self.events).clone();
        if let Some(tx) = tx {
            tokio::select! {
                _ = tx.send(event) => {}
                () = self.cancel.cancelled() => {}
            }
        }
    }

    /// Sends a request on the live connection and waits for its response; error responses
    /// become [`ClientError::Server`].
    pub(crate) async fn call(
        &self,
        kind: RequestKind,
        purpose: Purpose,
    ) -> Result<ResponseResult, ClientError> {
        self.request(kind, purpose, None).await
    }

    /// Issues a request and waits for its response, at most the request timeout on the
    /// connection it went out on. Without `resend_until` it fails with `Closed` when there is
    /// no connection or the connection is lost. With it (sends), the request outlives lost
    /// connections while the client will resume: it is queued while there is none and written
    /// again, in issue order, on the next one — until that deadline, or [`SEND_ATTEMPTS`]
    /// connections.
    pub(crate) async fn request(
        &self,
        kind: RequestKind,
        purpose: Purpose,
        resend_until: Option<Instant>,
    ) -> Result<ResponseResult, ClientError> {
        let timeout = self.config.request_timeout;
        let first_until = Instant::now() + timeout;
        let until = resend_until.map_or(first_until, |d| d.min(first_until));
        let _permit = match tokio::time::timeout_at(until, self.in_flight.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(ClientError::Closed),
            Err(_) => return Err(ClientError::Timeout),
        };
        let can_wait = resend_until.is_some() && self.config.auto_reconnect && self.logged_in();
        let (tx, mut rx) = oneshot::channel();
        // The id is taken and the frame queued under one lock: this fixes the issue order.
        let (id, mut status, written) = {
            let mut link = lock(&self.link);
            let id = self.next_request_id();
            let bytes = frame::encode_to_bytes(&Envelope::request(id, kind));
            let len = bytes.len() - HEADER_LEN;
            if len > link.server_max_frame {
                let max = link.server_max_frame;
                return Err(ClientError::Protocol(format!(
                    "request of {len} bytes exceeds the server's frame limit of {max} bytes"
                )));
            }
            let written = match &link.writer {
                Some(w) if link.up => w.send(bytes.clone()).is_ok(),
                _ => false,
            };
            let queue_offline = can_wait && !link.dead;
            if !written && !queue_offline {
                return Err(ClientError::Closed);
            }
            let pending = Pending {
                tx,
                purpose,
                resend: resend_until.is_some().then_some(bytes),
                attempts: 1,
            };
            link.pending.insert(id, pending);
            (id, self.status.subscribe(), written)
        };
        let _forget = Forget { inner: self, id };
        // The request timeout runs while the request is on a connection; offline, only
        // `resend_until` does.
        let mut attempt_until = match resend_until {
            Some(end) if !written => end,
            _ => first_until,
        };
        let result = loop {
            let until = resend_until.map_or(attempt_until, |d| d.min(attempt_until));
            tokio::select! {
                r = &mut rx => break r.unwrap_or(Err(ClientError::Closed)),
                () = tokio::time::sleep_until(until) => break Err(ClientError::Timeout),
                changed = status.changed(), if resend_until.is_some() => {
                    if changed.is_err() {
                        break Err(ClientError::Closed);
                    }
                    attempt_until = match (*status.borrow_and_update(), resend_until) {
                        (LinkStatus::Up(_), _) | (_, None) => Instant::now() + timeout,
                        (_, Some(end)) => end,
                    };
                }
            }
        };
        match result {
            Ok(ResponseResult::Error(e)) => Err(e.into()),
            other => other,
        }
    }

    /// Marks connection `gen` as gone. Its requests in flight fail with `Closed`, except sends
    /// while the client will resume: those stay, to be written again on the next connection.
    fn link_down(&self, gen: u64) {
        let keep = self.config.auto_reconnect && self.logged_in();
        let failed = {
            let mut link = lock(&self.link);
            if link.gen != gen {
                return;
            }
            link.up = false;
            link.writer = None;
            if let Some(c) = link.conn_cancel.take() {
                c.cancel();
            }
            if !link.dead {
                self.status.send_replace(LinkStatus::Down);
            }
            let mut failed = Vec::new();
            for (id, mut p) in std::mem::take(&mut link.pending) {
                if keep && p.resend.is_some() && p.attempts < SEND_ATTEMPTS && !p.tx.is_closed() {
                    p.attempts += 1;
                    link.pending.insert(id, p);
                } else {
                    failed.push(p);
                }
            }
            failed
        };
        for p in failed {
            let _ = p.tx.send(Err(ClientError::Closed));
        }
    }

    /// Closes for good: no connection, no reconnects, the event stream ends.
    pub(crate) fn set_dead(&self) {
        let pending = {
            let mut link = lock(&self.link);
            link.dead = true;
            link.up = false;
            link.writer = None;
            if let Some(c) = link.conn_cancel.take() {
                c.cancel();
            }
            self.status.send_replace(LinkStatus::Dead);
            std::mem::take(&mut link.pending)
        };
        for (_, p) in pending {
            let _ = p.tx.send(Err(ClientError::Closed));
        }
        lock(&self.events).take();
    }

    /// Stops every task and closes the connection.
    pub(crate) fn shutdown(&self) {
        self.cancel.cancel();
        self.set_dead();
    }

    /// Asks for a background sync (coalesced with one already running), when automatic
    /// syncing is on and the client is logged in.
    pub(crate) fn trigger_sync(self: &Arc<Self>) {
        if !self.config.auto_sync || self.cancel.is_cancelled() || !self.logged_in() {
            return;
        }
        self.sync_wanted.store(true, Ordering::SeqCst);
        if self.sync_running.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move { inner.sync_worker().await });
    }

    async fn sync_worker(self: Arc<Self>) {
        let mut failures = 0;
        loop {
            if self.sync_wanted.swap(false, Ordering::SeqCst) {
                if !self.logged_in() || !self.is_up() || self.cancel.is_cancelled() {
                    // A login or reconnect asks again.
                    continue;
                }
                let announce = !lock(&self.tracker).synced();
                if announce {
                    self.emit_state(ConnState::Syncing);
                }
                match self.run_sync().await {
                    Ok(_) => {
                        failures = 0;
                        if announce && lock(&self.tracker).synced() {
                            self.emit_state(ConnState::Synced);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "background sync failed");
                        // After a lost connection the reconnect syncs again.
                        if self.is_up() && failures < SYNC_RETRIES {
                            failures += 1;
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_millis(500) * failures) => {}
                                () = self.cancel.cancelled() => {}
                            }
                            self.sync_wanted.store(true, Ordering::SeqCst);
                        }
                    }
                }
                continue;
            }
            self.sync_running.store(false, Ordering::SeqCst);
            // A trigger between the check above and the store saw `running` and left: take it.
            if !self.sync_wanted.load(Ordering::SeqCst)
                || self.sync_running.swap(true, Ordering::SeqCst)
            {
                return;
            }
        }
    }

    /// Follows Sync pages from the tracker's positions until the server has no more; returns
    /// the messages delivered (they are emitted as events too). Acks after each page.
    pub(crate) async fn run_sync(&self) -> Result<Vec<pb::Message>, ClientError> {
        let mut out = Vec::new();
        let mut stalls = 0;
        loop {
            let (epoch, positions) = {
                let t = lock(&self.tracker);
                (t.epoch(), t.positions())
            };
            let sync = pb::Sync {
                positions: positions.clone(),
                limit: 0,
            };
            let page = match self
                .call(RequestKind::Sync(sync), Purpose::Sync { epoch })
                .await?
            {
                ResponseResult::Sync(page) => page,
                other => return Err(unexpected("Sync", &other)),
            };
            out.extend(page.messages);
            if let Err(e) = self.flush_acks().await {
                tracing::debug!(error = %e, "ack after sync page failed");
            }
            let mut t = lock(&self.tracker);
            if t.epoch() != epoch {
                return Ok(out);
            }
            if !page.has_more {
                t.set_synced(true);
                return Ok(out);
            }
            if t.positions() == positions {
                stalls += 1;
                if stalls >= 3 {
                    return Err(ClientError::Protocol(
                        "sync pages make no progress".to_owned(),
                    ));
                }
            } else {
                stalls = 0;
            }
        }
    }

    /// Sends an Ack with every position that moved since the last one.
    pub(crate) async fn flush_acks(&self) -> Result<(), ClientError> {
        let (epoch, positions) = {
            let mut t = lock(&self.tracker);
            (t.epoch(), t.take_dirty())
        };
        let mut rest = positions.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(ACK_CHUNK));
            let ack = pb::Ack {
                positions: chunk.to_vec(),
            };
            if let Err(e) = self.call(RequestKind::Ack(ack), Purpose::Plain).await {
                let mut t = lock(&self.tracker);
                if t.epoch() == epoch {
                    t.restore_dirty(rest.to_vec());
                }
                return Err(e);
            }
            rest = tail;
        }
        Ok(())
    }
}

/// Opens a connection and says Hello (with `auth`, if any).
///
/// # Errors
/// Connect or socket failure, [`ClientError::Server`] if the server refuses the Hello or its
/// auth, [`ClientError::Timeout`] after the request timeout.
pub(crate) async fn open(
    inner: &Inner,
    auth: Option<pb::hello::Auth>,
) -> Result<(Connection, pb::HelloOk), ClientError> {
    let config = &inner.config;
    let id = inner.next_request_id();
    let hello = pb::Hello {
        major: PROTOCOL_MAJOR,
        minor: PROTOCOL_MINOR,
        client: config.client_name.clone(),
        auth,
    };
    let handshake = async {
        let mut conn = Connection::connect(config).await?;
        conn.write_frame(&Envelope::request(id, RequestKind::Hello(hello)))
            .await?;
        loop {
            let Some(env) = conn.read_frame().await? else {
                return Err(ClientError::Closed);
            };
            match env.body {
                Some(Body::Response(r)) if env.request_id == id => {
                    return match r.result {
                        Some(ResponseResult::Hello(ok)) => Ok((conn, ok)),
                        Some(ResponseResult::Error(e)) => Err(e.into()),
                        other => Err(ClientError::Protocol(format!(
                            "unexpected answer to Hello: {other:?}"
                        ))),
                    };
                }
                Some(Body::Push(pb::Push {
                    kind: Some(PushKind::Kicked(k)),
                })) => {
                    return Err(ClientError::from(pb::Error {
                        code: k.code,
                        message: k.reason,
                        retry_after_ms: 0,
                        challenge: String::new(),
                    }))
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(config.request_timeout, handshake)
        .await
        .unwrap_or(Err(ClientError::Timeout))
}

/// The error for a response of the wrong kind.
pub(crate) fn unexpected(request: &str, got: &ResponseResult) -> ClientError {
    ClientError::Protocol(format!("unexpected answer to {request}: {got:?}"))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 64 random-enough bits without a dependency: std's per-process random hash keys, mixed with
/// the time and the process id.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}
