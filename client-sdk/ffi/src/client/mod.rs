//! The client behind a `FeigeClient *`: its own tokio runtime, a connection task that keeps a
//! [`feige_client::Client`] connected, the requests in flight, and the event queue.
//!
//! Every accepted request gets exactly one completion: the request's task completes it, unless
//! shutdown took it first. Both go through [`Shared::complete`] / [`Shared::shutdown_requests`]
//! under one lock, and whichever removes the request id from `live` queues the completion.
//!
//! Order: accepted requests enter one queue in request-id order. One dispatcher task takes
//! them in that order, waits for a connected client, and issues each (polls its call once,
//! which hands its frame to the Rust client) before taking the next; the rest of each call
//! runs as its own task. So requests go out in call order, many in flight.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Poll;
use std::time::Duration;

use feige_client::{Backoff, Client, ClientConfig, ClientError, ConnState, Event};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::json::{self, Params, Refusal};
use crate::methods::{self, Call, Conn, Reply};
use crate::queue::{EventQueue, FeigeEvent, Wake};
use crate::status::FeigeStatus;

/// Requests accepted and not yet completed; more are refused with `FEIGE_ERR_BUSY`.
pub(crate) const MAX_LIVE_REQUESTS: usize = 16_384;
/// How long the runtime may take to stop its threads in `feige_client_free`.
const RUNTIME_STOP: Duration = Duration::from_secs(2);
/// Shortest pause between two scans for expired requests while there is no connection.
const EXPIRY_SCAN: Duration = Duration::from_millis(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The accepted requests.
struct Requests {
    shut_down: bool,
    next_id: u64,
    live: HashMap<u64, Option<AbortHandle>>,
    /// To the dispatcher, in id order.
    queue: mpsc::UnboundedSender<Queued>,
}

/// An accepted request waiting for the dispatcher.
struct Queued {
    call: Call,
    deadline: Instant,
    /// Where the dispatcher puts the client the call runs on.
    client: Arc<OnceLock<Client>>,
    done: Completion,
}

/// State shared by the API functions and the SDK's tasks.
pub(crate) struct Shared {
    config: ClientConfig,
    pub(crate) queue: EventQueue,
    requests: Mutex<Requests>,
    /// The connected client, while there is one.
    current: watch::Sender<Option<Client>>,
    /// Stops the connection task.
    cancel: CancellationToken,
    /// The SDK's runtime, where the wakeup callback is called from.
    rt: tokio::runtime::Handle,
}

impl Shared {
    /// Runs an issued `call` until `deadline`, the deadline the dispatcher already held it to
    /// while it waited for a connection: one bound for both. Past it the call fails with
    /// DISCONNECTED when there is no connection at that moment, else with TIMEOUT (the SDK's
    /// own request timeout started later, so this comes first).
    async fn bounded(&self, call: Call, deadline: tokio::time::Instant) -> Reply {
        match tokio::time::timeout_at(deadline, call).await {
            Ok(reply) => reply,
            Err(_) if self.current.borrow().is_none() => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }
}

/// The object behind `FeigeClient *`.
pub struct FeigeClient {
    runtime: Option<Runtime>,
    pub(crate) shared: Arc<Shared>,
}

/// The parsed `config_json` of `feige_client_new`.
fn parse_config(text: &str) -> Result<ClientConfig, Refusal> {
    let p = Params::parse(Some(text))?;
    let mut config = ClientConfig::new(p.string("server")?);
    config.device = p
        .opt_string("device")?
        .unwrap_or_else(|| "desktop".to_owned());
    config.client_name = p
        .opt_string("client_name")?
        .unwrap_or_else(|| concat!("libfeige/", env!("CARGO_PKG_VERSION")).to_owned());
    if let Some(ms) = p.opt_u32("request_timeout_ms")? {
        config.request_timeout = Duration::from_millis(ms.max(1).into());
    }
    if let Some(auto_sync) = p.opt_bool("auto_sync")? {
        config.auto_sync = auto_sync;
    }
    config.tls = p.opt_bool("tls")?.unwrap_or(false);
    config.ca_file = p.opt_string("ca_file")?.map(PathBuf::from);
    config.tls_server_name = p.opt_string("tls_server_name")?;
    Ok(config)
}

impl FeigeClient {
    /// Starts a client: its runtime and its connection task. Returns at once; the connection
    /// comes up in the background (state events tell how it goes).
    ///
    /// # Errors
    /// `FEIGE_ERR_JSON`/`FEIGE_ERR_PARAMS` for a bad config, `FEIGE_ERR_IO` when the threads or
    /// the wakeup socket pair cannot be created.
    pub(crate) fn start(config_json: &str) -> Result<FeigeClient, Refusal> {
        let config = parse_config(config_json)?;
        let io = |e: std::io::Error| Refusal {
            status: FeigeStatus::FEIGE_ERR_IO,
            message: e.to_string(),
        };
        let queue = EventQueue::new().map_err(io)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("feige-sdk")
            .enable_io()
            .enable_time()
            .build()
            .map_err(io)?;
        let (to_dispatcher, from_calls) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            queue,
            requests: Mutex::new(Requests {
                shut_down: false,
                next_id: 1,
                live: HashMap::new(),
                queue: to_dispatcher,
            }),
            current: watch::Sender::new(None),
            cancel: CancellationToken::new(),
            rt: runtime.handle().clone(),
        });
        runtime.spawn(run_connection(shared.clone()));
        runtime.spawn(run_dispatcher(shared.clone(), from_calls));
        Ok(FeigeClient {
            runtime: Some(runtime),
            shared,
        })
    }

    /// Accepts a request: parses its params now, queues it for the dispatcher, and returns its
    /// request id. Its completion is queued later.
    ///
    /// # Errors
    /// `FEIGE_ERR_UNKNOWN_METHOD`, `FEIGE_ERR_JSON`, `FEIGE_ERR_PARAMS`,
    /// `FEIGE_ERR_SHUT_DOWN`, `FEIGE_ERR_BUSY`.
    pub(crate) fn call(&self, name: &str, params: Option<&str>) -> Result<u64, Refusal> {
        let method = methods::find(name).ok_or_else(|| Refusal {
            status: FeigeStatus::FEIGE_ERR_UNKNOWN_METHOD,
            message: format!("unknown method \"{name}\""),
        })?;
        let params = Params::parse(params)?;
        let deadline = tokio::time::Instant::now()
            + methods::time_limit(name, self.shared.config.request_timeout);
        let client = Arc::new(OnceLock::new());
        let call = method(&params, Conn::new(client.clone())).map_err(|e| Refusal {
            message: format!("{name}: {}", e.message),
            ..e
        })?;
        if self.runtime.is_none() {
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN));
        }
        let mut reqs = lock(&self.shared.requests);
        if reqs.shut_down {
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN));
        }
        if reqs.live.len() >= MAX_LIVE_REQUESTS {
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_BUSY));
        }
        let id = reqs.next_id;
        reqs.next_id += 1;
        let done = Completion {
            shared: self.shared.clone(),
            id,
            done: false,
        };
        // Queued under the lock, so the dispatcher gets requests in id order.
        let queued = Queued {
            call,
            deadline,
            client,
            done,
        };
        if let Err(mpsc::error::SendError(mut q)) = reqs.queue.send(queued) {
            // Never accepted: no completion (which would also need the lock held here).
            q.done.done = true;
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN));
        }
        reqs.live.insert(id, None);
        Ok(id)
    }

    /// Cancels every request in flight (each gets a `FEIGE_ERR_CANCELLED` completion), closes
    /// the connection (after a last ack of delivered messages, within `timeout`), and queues
    /// the final `{"state":"closed"}` event. Idempotent.
    ///
    /// # Errors
    /// `FEIGE_ERR_TIMEOUT` when the graceful close did not finish in time (the client is shut
    /// down anyway).
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), FeigeStatus> {
        let Some((aborts, wake)) = self.shared.shutdown_requests() else {
            return Ok(());
        };
        self.shared.wake_soon(wake);
        for a in aborts {
            a.abort();
        }
        let mut result = Ok(());
        let client = self.shared.current.send_replace(None);
        match (client, &self.runtime) {
            (Some(client), Some(runtime)) if !timeout.is_zero() => {
                let latch = Arc::new(Latch::default());
                let done = latch.clone();
                let cancel = self.shared.cancel.clone();
                runtime.spawn(async move {
                    let _ = tokio::time::timeout(timeout, client.close()).await;
                    cancel.cancel();
                    done.open();
                });
                if !latch.wait(timeout) {
                    result = Err(FeigeStatus::FEIGE_ERR_TIMEOUT);
                }
            }
            // Dropping the last handle closes the connection at once.
            (client, _) => drop(client),
        }
        self.shared.cancel.cancel();
        let closed = FeigeEvent::state(&json!({ "state": "closed" }));
        let wake = self.shared.queue.close_with(closed);
        self.shared.wake_soon(wake);
        result
    }
}

impl Drop for FeigeClient {
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::ZERO);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(RUNTIME_STOP);
        }
    }
}

impl Shared {
    /// Queues the completion of request `id` unless shutdown already did.
    fn complete(&self, id: u64, status: FeigeStatus, json: &Value) {
        let wake = {
            let reqs = &mut *lock(&self.requests);
            if reqs.live.remove(&id).is_none() {
                return;
            }
            // Queued under the lock, so it cannot land after shutdown's final event.
            self.queue
                .push_quiet(FeigeEvent::response(id, status, json), false)
        };
        // The callback runs with no lock held, so it cannot stall `feige_call`.
        self.queue.wake(wake);
    }

    /// Calls the wakeup callback, if `wake` says so, from one of the SDK's threads (for
    /// events queued on an application thread: shutdown, or a new callback).
    pub(crate) fn wake_soon(self: &Arc<Self>, wake: Wake) {
        if wake != Wake::default() {
            let shared = self.clone();
            self.rt.spawn(async move { shared.queue.wake(wake) });
        }
    }

    /// Marks the client shut down and queues a cancelled completion for every request in
    /// flight; returns their abort handles and whether to wake the application, or `None` if
    /// already shut down.
    fn shutdown_requests(&self) -> Option<(Vec<AbortHandle>, Wake)> {
        let mut wake = Wake::default();
        let mut reqs = lock(&self.requests);
        if reqs.shut_down {
            return None;
        }
        reqs.shut_down = true;
        let mut live: Vec<(u64, Option<AbortHandle>)> = reqs.live.drain().collect();
        live.sort_unstable_by_key(|(id, _)| *id);
        let cancelled = json::error(
            FeigeStatus::FEIGE_ERR_CANCELLED.name(),
            "the client was shut down",
        );
        for (id, _) in &live {
            let e = FeigeEvent::response(*id, FeigeStatus::FEIGE_ERR_CANCELLED, &cancelled);
            wake = wake | self.queue.push_quiet(e, false);
        }
        drop(reqs);
        Some((live.into_iter().filter_map(|(_, a)| a).collect(), wake))
    }

    fn push_state(&self, s: ConnState) {
        self.queue.push(FeigeEvent::state(&json::state(s)));
    }
}

/// A one-shot signal from the runtime to a waiting application thread. (A std channel would
/// also do, but it leaves a per-thread handle on the application's thread.)
#[derive(Default)]
struct Latch {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    fn open(&self) {
        *lock(&self.open) = true;
        self.cv.notify_all();
    }

    /// Whether it opened within `timeout`.
    fn wait(&self, timeout: Duration) -> bool {
        let guard = lock(&self.open);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Completes a request when its task ends — normally through [`Completion::finish`]; if the
/// task panics, from `drop` with `FEIGE_ERR_PANIC`; if shutdown aborted it, not at all (shutdown
/// already queued its completion).
struct Completion {
    shared: Arc<Shared>,
    id: u64,
    done: bool,
}

impl Completion {
    fn finish(mut self, reply: Reply) {
        self.done = true;
        let (status, json) = match reply {
            Ok(v) => (FeigeStatus::FEIGE_OK, v),
            Err(e) => (FeigeStatus::of_error(&e), json::client_error(&e)),
        };
        self.shared.complete(self.id, status, &json);
    }
}

impl Completion {
    /// Completes with `FEIGE_ERR_PANIC` (the call panicked where no unwinding reached here).
    fn panicked(mut self) {
        self.done = true;
        let status = FeigeStatus::FEIGE_ERR_PANIC;
        let json = json::error(status.name(), "internal error in the SDK");
        self.shared.complete(self.id, status, &json);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (status, text) = if std::thread::panicking() {
            (FeigeStatus::FEIGE_ERR_PANIC, "internal error in the SDK")
        } else {
            (
                FeigeStatus::FEIGE_ERR_CANCELLED,
                "the request was cancelled",
            )
        };
        self.shared
            .complete(self.id, status, &json::error(status.name(), text));
    }
}

/// Issues the accepted requests in id order until shutdown.
async fn run_dispatcher(shared: Arc<Shared>, from_calls: mpsc::UnboundedReceiver<Queued>) {
    tokio::select! {
        () = dispatch(&shared, from_calls) => {}
        () = shared.cancel.cancelled() => {}
    }
}

/// Takes requests in order; while there is a connected client issues each, else holds them
/// (failing those whose deadline passes with DISCONNECTED, as [`Shared::bounded`] does).
async fn dispatch(shared: &Arc<Shared>, mut from_calls: mpsc::UnboundedReceiver<Queued>) {
    let mut current = shared.current.subscribe();
    let mut waiting: VecDeque<Queued> = VecDeque::new();
    // The earliest deadline among `waiting`, if any.
    let mut first_deadline: Option<Instant> = None;
    loop {
        while let Ok(q) = from_calls.try_recv() {
            hold(&mut waiting, &mut first_deadline, q);
        }
        let client = current.borrow_and_update().clone();
        if let Some(client) = client {
            while let Some(q) = waiting.pop_front() {
                issue(shared, q, &client).await;
            }
            first_deadline = None;
            match from_calls.recv().await {
                Some(q) => hold(&mut waiting, &mut first_deadline, q),
                None => return,
            }
            continue;
        }
        let now = Instant::now();
        if first_deadline.is_some_and(|d| d <= now) {
            let (expired, kept): (VecDeque<_>, VecDeque<_>) =
                waiting.drain(..).partition(|q| q.deadline <= now);
            waiting = kept;
            first_deadline = waiting.iter().map(|q| q.deadline).min();
            for q in expired {
                q.done.finish(Err(ClientError::Closed));
            }
        }
        let scan_at = first_deadline.map(|d| d.max(now + EXPIRY_SCAN));
        tokio::select! {
            q = from_calls.recv() => match q {
                Some(q) => hold(&mut waiting, &mut first_deadline, q),
                None => return,
            },
            changed = current.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until_some(scan_at) => {}
        }
    }
}

/// Adds `q` to the requests waiting for a client, keeping `first` their earliest deadline.
fn hold(waiting: &mut VecDeque<Queued>, first: &mut Option<Instant>, q: Queued) {
    *first = Some(first.map_or(q.deadline, |d| d.min(q.deadline)));
    waiting.push_back(q);
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Issues one request on `client`: runs its call up to its first wait (by then its frame is
/// queued for the Rust client's writer, in order), then lets a task of its own finish it.
async fn issue(shared: &Arc<Shared>, q: Queued, client: &Client) {
    let Queued {
        call,
        deadline,
        client: slot,
        done,
    } = q;
    let _ = slot.set(client.clone());
    let bounded = shared.clone();
    let mut fut: Call = Box::pin(async move { bounded.bounded(call, deadline).await });
    let first = std::future::poll_fn(|cx| {
        Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
            fut.as_mut().poll(cx)
        })))
    })
    .await;
    match first {
        Ok(Poll::Ready(reply)) => done.finish(reply),
        Ok(Poll::Pending) => {
            let id = done.id;
            let task = shared.rt.spawn(async move {
                let reply = fut.await;
                done.finish(reply);
            });
            // Kept for shutdown unless the request completed (or was cancelled) meanwhile.
            if let Some(slot) = lock(&shared.requests).live.get_mut(&id) {
                *slot = Some(task.abort_handle());
            }
        }
        Err(_) => done.panicked(),
    }
}

/// Keeps a client connected until shutdown: connects, forwards its events to the queue, and
/// when it closes for good (lost while logged out, or its session was revoked) connects a new
/// one after a backoff.
async fn run_connection(shared: Arc<Shared>) {
    tokio::select! {
        () = connection_loop(&shared) => {}
        () = shared.cancel.cancelled() => {}
    }
    // A client connected while shutdown was taking the previous one is dropped (and closed)
    // here.
    shared.current.send_replace(None);
}

/// Keeps a Rust client connected, reconnecting with [`Backoff`] a client that lost its
/// connection while logged out, or could not connect. (While logged in, the Rust client
/// reconnects and resumes by itself.)
async fn connection_loop(shared: &Shared) {
    let mut backoff = Backoff::new();
    let mut failure = None;
    loop {
        shared.push_state(ConnState::Connecting);
        match Client::connect(shared.config.clone()).await {
            Ok((client, mut events)) => {
                let since = Instant::now();
                shared.current.send_replace(Some(client));
                let mut first = true;
                while let Some(event) = events.recv().await {
                    // A fresh client's first event repeats the "connecting" queued above.
                    let repeat = first && event == Event::State(ConnState::Connecting);
                    first = false;
                    if !repeat {
                        forward(shared, event).await;
                    }
                }
                shared.current.send_replace(None);
                backoff.connection_ended(since.elapsed());
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                failure = Some(e.to_string());
            }
        }
        let delay = backoff.next_delay();
        // Why the connection could not be made (a refused TLS handshake, say), for the
        // application to show.
        let mut state = json::state(ConnState::Disconnected { retry_in: delay });
        if let Some(why) = failure.take() {
            state["error"] = why.into();
        }
        shared.queue.push(FeigeEvent::state(&state));
        tokio::time::sleep(delay).await;
    }
}

/// Queues one event of the Rust client.
async fn forward(shared: &Shared, event: Event) {
    match event {
        Event::Message(m) => {
            let push = FeigeEvent::push(&json::message_push(&m));
            shared.queue.push_bounded(push).await;
        }
        Event::Kicked { code, reason } => {
            shared.queue.push(FeigeEvent::push(&json!({
                "type": "kicked",
                "code": feige_client::code_name(code),
                "reason": reason,
            })));
        }
        Event::State(s) => shared.push_state(s),
        Event::FriendRequest(r) => social(shared, "friend_request", json::friend_request(&r)).await,
        Event::FriendResponse(r) => {
            social(shared, "friend_response", json::friend_response(&r)).await;
        }
        Event::FriendAdded(f) => social(shared, "friend_added", json::friend(&f)).await,
        Event::FriendRemoved { user_id } => {
            let v = json!({ "user_id": user_id.to_string() });
            social(shared, "friend_removed", v).await;
        }
        Event::Presence { user_id, online } => {
            let v = json!({ "user_id": user_id.to_string(), "online": online });
            social(shared, "presence", v).await;
        }
        Event::ReadPosition(p) => social(shared, "read_position", json::read_position(&p)).await,
        Event::FriendRequestAnswered(r) => {
            social(shared, "friend_request_answered", json::friend_response(&r)).await;
        }
        Event::FriendUpdated(f) => social(shared, "friend_updated", json::friend(&f)).await,
        Event::BlockChanged { user, blocked } => {
            let v = json!({ "user": json::user(&user), "blocked": blocked });
            social(shared, "block_changed", v).await;
        }
        Event::ProfileUpdated(p) => social(shared, "profile_updated", json::profile(&p)).await,
        Event::UserUpdated(u) => social(shared, "user_updated", json::user(&u)).await,
        // An event kind the C SDK does not map yet is not queued.
        _ => {}
    }
}

/// Queues a social push (`{"type": kind, ...}`), waiting for room like a message.
async fn social(shared: &Shared, kind: &str, fields: serde_json::Value) {
    let push = FeigeEvent::push(&json::typed(kind, fields));
    tokio::select! {
        () = shared.queue.push_bounded(push) => {}
        () = shared.cancel.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_needs_a_server() {
        assert_eq!(
            parse_config("{}").map(|_| ()).map_err(|e| e.status),
            Err(FeigeStatus::FEIGE_ERR_PARAMS)
        );
        assert_eq!(
            parse_config("{").map(|_| ()).map_err(|e| e.status),
            Err(FeigeStatus::FEIGE_ERR_JSON)
        );
        let c = parse_config(r#"{"server":"h:1","device":"pc","request_timeout_ms":500}"#).unwrap();
        assert_eq!(c.server, "h:1");
        assert_eq!(c.device, "pc");
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert!(!c.tls);
        let c = parse_config(
            r#"{"server":"h:1","tls":true,"ca_file":"/ca.pem","tls_server_name":"chat.lan"}"#,
        )
        .unwrap();
        assert!(c.tls);
        assert_eq!(c.ca_file.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert_eq!(c.tls_server_name.as_deref(), Some("chat.lan"));
        assert_eq!(
            parse_config(r#"{"server":"h:1","tls":"yes"}"#)
                .map(|_| ())
                .map_err(|e| e.status),
            Err(FeigeStatus::FEIGE_ERR_PARAMS)
        );
    }
}
