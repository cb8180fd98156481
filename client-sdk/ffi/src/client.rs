//! The client behind a `FeigeClient *`: its own tokio runtime, a connection task that keeps a
//! [`feige_client::Client`] connected, the requests in flight, and the event queue.
//!
//! Every accepted request gets exactly one completion: the request's task completes it, unless
//! shutdown took it first. Both go through [`Shared::complete`] / [`Shared::shutdown_requests`]
//! under one lock, and whichever removes the request id from `live` queues the completion.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use feige_client::{Client, ClientConfig, ClientError, ConnState, Event};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::json::{self, Params, Refusal};
use crate::methods;
use crate::queue::{EventQueue, FeigeEvent, Wake};
use crate::status::FeigeStatus;

/// Requests accepted and not yet completed; more are refused with `FEIGE_ERR_BUSY`.
pub(crate) const MAX_LIVE_REQUESTS: usize = 16_384;
/// First delay before reconnecting a client that lost its connection while logged out, or
/// could not connect; doubles up to [`BACKOFF_MAX`]. (While logged in, the Rust client
/// reconnects and resumes by itself.)
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connection that lived this long restarts the backoff.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// How long the runtime may take to stop its threads in `feige_client_free`.
const RUNTIME_STOP: Duration = Duration::from_secs(2);

/// What a method's future yields: its result JSON, or why it failed.
pub(crate) type Reply = Result<Value, ClientError>;
/// A method call, ready to run on the SDK's runtime.
pub(crate) type Call = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The accepted requests.
#[derive(Default)]
struct Requests {
    shut_down: bool,
    next_id: u64,
    live: HashMap<u64, Option<AbortHandle>>,
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

/// A handle for method calls: waits for the connection, then hands out the client.
#[derive(Clone)]
pub(crate) struct Conn(Arc<Shared>);

impl Conn {
    /// The connected client, once there is one. The wait has no bound of its own: the whole
    /// call is bounded by [`Shared::bounded`].
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the client shuts down first.
    pub(crate) async fn client(&self) -> Result<Client, ClientError> {
        let mut rx = self.0.current.subscribe();
        let client = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|c| c.clone());
        client.ok_or(ClientError::Closed)
    }
}

impl Shared {
    /// Runs `call` until `deadline`: one bound for the wait for a connection and the request
    /// together. Past it the call fails with DISCONNECTED when there is no connection at that
    /// moment, else with TIMEOUT (the SDK's own request timeout started later, so this comes
    /// first).
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
        let shared = Arc::new(Shared {
            config,
            queue,
            requests: Mutex::new(Requests {
                next_id: 1,
                ..Requests::default()
            }),
            current: watch::Sender::new(None),
            cancel: CancellationToken::new(),
            rt: runtime.handle().clone(),
        });
        runtime.spawn(run_connection(shared.clone()));
        Ok(FeigeClient {
            runtime: Some(runtime),
            shared,
        })
    }

    /// Accepts a request: parses its params now, runs it on the SDK's runtime, and returns its
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
        let call = method(&params, Conn(self.shared.clone())).map_err(|e| Refusal {
            message: format!("{name}: {}", e.message),
            ..e
        })?;
        let runtime = self
            .runtime
            .as_ref()
            .ok_or(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN))?;
        let mut reqs = lock(&self.shared.requests);
        if reqs.shut_down {
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN));
        }
        if reqs.live.len() >= MAX_LIVE_REQUESTS {
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_BUSY));
        }
        let id = reqs.next_id;
        reqs.next_id += 1;
        reqs.live.insert(id, None);
        // Spawned under the lock, so the task cannot complete before its entry holds its
        // abort handle (completing needs the lock).
        let done = Completion {
            shared: self.shared.clone(),
            id,
            done: false,
        };
        let shared = self.shared.clone();
        let task = runtime.spawn(async move {
            let reply = shared.bounded(call, deadline).await;
            done.finish(reply);
        });
        reqs.live.insert(id, Some(task.abort_handle()));
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

async fn connection_loop(shared: &Shared) {
    let mut delay = BACKOFF_MIN;
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
                if since.elapsed() >= BACKOFF_RESET {
                    delay = BACKOFF_MIN;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                failure = Some(e.to_string());
            }
        }
        // Why the connection could not be made (a refused TLS handshake, say), for the
        // application to show.
        let mut state = json::state(ConnState::Disconnected { retry_in: delay });
        if let Some(why) = failure.take() {
            state["error"] = why.into();
        }
        shared.queue.push(FeigeEvent::state(&state));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
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
