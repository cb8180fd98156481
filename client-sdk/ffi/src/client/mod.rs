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
//!
//! This file holds the handle (start, accept a request, shut down); `shared` the state the
//! handle and the tasks share, `dispatch` the dispatcher task, `connection` the connection
//! task.

mod connection;
mod dispatch;
mod outbox;
mod shared;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use feige_client::{BackoffPolicy, ClientConfig};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::connection::run_connection;
use self::dispatch::run_dispatcher;
use self::outbox::{run_outbox, Outbox};
use self::shared::{lock, Completion, Live, Queued, Requests, Shared};
use crate::json::{Params, Refusal};
use crate::methods::{self, Conn, Host, Slot};
use crate::queue::{EventQueue, FeigeEvent};
use crate::status::FeigeStatus;

/// Requests accepted and not yet completed; more are refused with `FEIGE_ERR_BUSY`.
pub(crate) const MAX_LIVE_REQUESTS: usize = 16_384;
/// How long the runtime may take to stop its threads in `feige_client_free`.
const RUNTIME_STOP: Duration = Duration::from_secs(2);

/// The object behind `FeigeClient *`.
pub struct FeigeClient {
    runtime: Option<Runtime>,
    pub(crate) shared: Arc<Shared>,
    /// The persistent outbox, with `outbox_file`.
    outbox: Option<Arc<Outbox>>,
}

/// The parsed `config_json` of `feige_client_new`, and its `outbox_file`.
fn parse_config(text: &str) -> Result<(ClientConfig, Option<PathBuf>), Refusal> {
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
    let ms = |key| -> Result<Option<Duration>, Refusal> {
        Ok(p.opt_u32(key)?.map(|ms| Duration::from_millis(ms.into())))
    };
    let defaults = BackoffPolicy::default();
    config.backoff = BackoffPolicy {
        initial: ms("backoff_initial_ms")?.unwrap_or(defaults.initial),
        max: ms("backoff_max_ms")?.unwrap_or(defaults.max),
        jitter: match p.opt_u32("backoff_jitter_percent")? {
            None => defaults.jitter,
            Some(pct) if pct <= 100 => f64::from(pct) / 100.0,
            Some(_) => {
                return Err(Refusal::params(
                    "\"backoff_jitter_percent\" must be 0 to 100",
                ))
            }
        },
    };
    let outbox = p.opt_string("outbox_file")?.map(PathBuf::from);
    Ok((config, outbox))
}

impl FeigeClient {
    /// Starts a client: its runtime and its connection task. Returns at once; the connection
    /// comes up in the background (state events tell how it goes).
    ///
    /// # Errors
    /// `FEIGE_ERR_JSON`/`FEIGE_ERR_PARAMS` for a bad config, `FEIGE_ERR_IO` when the threads or
    /// the wakeup socket pair cannot be created.
    pub(crate) fn start(config_json: &str) -> Result<FeigeClient, Refusal> {
        let (config, outbox_file) = parse_config(config_json)?;
        let io = |e: std::io::Error| Refusal {
            status: FeigeStatus::FEIGE_ERR_IO,
            message: e.to_string(),
        };
        let outbox = match outbox_file {
            Some(path) => Some(Arc::new(Outbox::open(&path).map_err(|e| Refusal {
                status: FeigeStatus::FEIGE_ERR_IO,
                message: format!("outbox_file {}: {e}", path.display()),
            })?)),
            None => None,
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
            logged_in: AtomicBool::new(false),
            reconnect: tokio::sync::Notify::new(),
        });
        runtime.spawn(run_connection(shared.clone()));
        runtime.spawn(run_dispatcher(shared.clone(), from_calls));
        if let Some(outbox) = &outbox {
            runtime.spawn(run_outbox(shared.clone(), outbox.clone()));
        }
        Ok(FeigeClient {
            runtime: Some(runtime),
            shared,
            outbox,
        })
    }

    /// Accepts a request: parses its params now, queues it for the dispatcher, and returns its
    /// request id. Its completion is queued later.
    ///
    /// # Errors
    /// `FEIGE_ERR_UNKNOWN_METHOD`, `FEIGE_ERR_JSON`, `FEIGE_ERR_PARAMS`,
    /// `FEIGE_ERR_SHUT_DOWN`, `FEIGE_ERR_BUSY`.
    pub(crate) fn call(&self, name: &str, params: Option<&str>) -> Result<u64, Refusal> {
        let unknown = || Refusal {
            status: FeigeStatus::FEIGE_ERR_UNKNOWN_METHOD,
            message: format!("unknown method \"{name}\""),
        };
        if !methods::exists(name) {
            return Err(unknown());
        }
        if let Some(result) = self.immediate(name, params) {
            let result = result.map_err(|e| Refusal {
                message: format!("{name}: {}", e.message),
                ..e
            })?;
            return self.complete_now(&result);
        }
        let params = Params::parse(params)?;
        let deadline = tokio::time::Instant::now()
            + methods::time_limit(name, self.shared.config.request_timeout);
        let slot = Arc::new(Slot::default());
        let cancel = CancellationToken::new();
        let host: Arc<dyn Host> = self.shared.clone();
        let conn = Conn::new(slot.clone(), host, cancel.clone());
        let call = methods::prepare(name, &params, conn)
            .ok_or_else(unknown)?
            .map_err(|e| Refusal {
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
            method: name.to_owned(),
            call,
            deadline,
            unbounded: methods::unbounded(name),
            slot,
            cancel: cancel.clone(),
            done,
        };
        if let Err(mpsc::error::SendError(mut q)) = reqs.queue.send(queued) {
            // Never accepted: no completion (which would also need the lock held here).
            q.done.done = true;
            return Err(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN));
        }
        reqs.live.insert(
            id,
            Live {
                abort: None,
                cancel,
            },
        );
        Ok(id)
    }

    /// The methods served inside `feige_call`, needing no connection: `send_message` with an
    /// outbox (queued in its file), `cancel_send`, `reconnect_now`. `None` for the others.
    fn immediate(&self, name: &str, params: Option<&str>) -> Option<Result<Value, Refusal>> {
        let outbox = self.outbox.as_ref();
        let served_here = match name {
            "send_message" => outbox.is_some(),
            "cancel_send" | "reconnect_now" => true,
            _ => false,
        };
        if !served_here {
            return None;
        }
        if self.runtime.is_none() || lock(&self.shared.requests).shut_down {
            // Refused by `complete_now`, before anything is queued.
            return Some(Ok(Value::Null));
        }
        match name {
            "send_message" => {
                let outbox = outbox?;
                Some(
                    outbox
                        .enqueue(params)
                        .map(|id| json!({ "client_msg_id": id.to_string(), "queued": true })),
                )
            }
            "cancel_send" => Some((|| {
                let id = Params::parse(params)?.id("client_msg_id")?;
                let outbox = outbox.ok_or_else(|| {
                    Refusal::params("there is no outbox: set \"outbox_file\" in the config")
                })?;
                Ok(json!({ "cancelled": outbox.cancel(&self.shared, id) }))
            })()),
            "reconnect_now" => {
                self.shared.reconnect_now();
                Some(Ok(json!({})))
            }
            _ => None,
        }
    }

    /// Accepts a request that is already answered: its completion is queued at once.
    ///
    /// # Errors
    /// `FEIGE_ERR_SHUT_DOWN`.
    fn complete_now(&self, result: &Value) -> Result<u64, Refusal> {
        let wake = {
            let mut reqs = lock(&self.shared.requests);
            if reqs.shut_down || self.runtime.is_none() {
                return Err(Refusal::status(FeigeStatus::FEIGE_ERR_SHUT_DOWN));
            }
            let id = reqs.next_id;
            reqs.next_id += 1;
            let event = FeigeEvent::response(id, FeigeStatus::FEIGE_OK, result);
            (id, self.shared.queue.push_quiet(event, false))
        };
        self.shared.queue.wake(wake.1);
        Ok(wake.0)
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
        let (c, outbox) =
            parse_config(r#"{"server":"h:1","device":"pc","request_timeout_ms":500}"#).unwrap();
        assert_eq!(outbox, None);
        assert_eq!(c.backoff, BackoffPolicy::default());
        assert_eq!(c.server, "h:1");
        assert_eq!(c.device, "pc");
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert!(!c.tls);
        let (c, _) = parse_config(
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
        let (c, outbox) = parse_config(
            r#"{"server":"h:1","outbox_file":"/tmp/o","backoff_initial_ms":50,
                "backoff_max_ms":800,"backoff_jitter_percent":25}"#,
        )
        .unwrap();
        assert_eq!(outbox, Some(PathBuf::from("/tmp/o")));
        assert_eq!(
            c.backoff,
            BackoffPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(800),
                jitter: 0.25
            }
        );
        assert!(parse_config(r#"{"server":"h:1","backoff_jitter_percent":101}"#).is_err());
    }
}
