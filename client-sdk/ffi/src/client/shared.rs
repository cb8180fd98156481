//! The state shared by the API functions and the SDK's tasks: the accepted requests, the
//! connected client, the event queue, and the [`Completion`] each request ends with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use feige_client::{Client, ClientConfig, ClientError, ConnState};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::json;
use crate::methods::{Call, Host, Reply, Slot};
use crate::queue::{EventQueue, FeigeEvent, Wake};
use crate::status::FeigeStatus;

/// Locks `m`, taking it over if a panicking holder poisoned it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The accepted requests.
pub(super) struct Requests {
    pub(super) shut_down: bool,
    pub(super) next_id: u64,
    pub(super) live: HashMap<u64, Live>,
    /// To the dispatcher, in id order.
    pub(super) queue: mpsc::UnboundedSender<Queued>,
}

/// A request in flight.
pub(super) struct Live {
    /// Its task, once the dispatcher gave it one (for shutdown).
    pub(super) abort: Option<AbortHandle>,
    /// Its cancellation (the `cancel` method).
    pub(super) cancel: CancellationToken,
}

/// An accepted request waiting for the dispatcher.
pub(super) struct Queued {
    /// Its method (the reason of a `logged_out` state it causes).
    pub(super) method: String,
    pub(super) call: Call,
    /// Until when it may wait for a connection, and (unless `unbounded`) run.
    pub(super) deadline: Instant,
    /// A transfer: bound by `deadline` only while it waits for a connection.
    pub(super) unbounded: bool,
    /// Where the dispatcher puts the client the call runs on, and its request id.
    pub(super) slot: Arc<Slot>,
    pub(super) cancel: CancellationToken,
    pub(super) done: Completion,
}

/// State shared by the API functions and the SDK's tasks.
pub(crate) struct Shared {
    pub(super) config: ClientConfig,
    pub(crate) queue: EventQueue,
    pub(super) requests: Mutex<Requests>,
    /// The connected client, while there is one.
    pub(super) current: watch::Sender<Option<Client>>,
    /// Stops the connection task.
    pub(super) cancel: CancellationToken,
    /// The SDK's runtime, where the wakeup callback is called from.
    pub(super) rt: tokio::runtime::Handle,
    /// Whether the last `logged_in` / `logged_out` state said logged in.
    pub(super) logged_in: AtomicBool,
    /// Cuts the connection task's backoff short (`reconnect_now`).
    pub(super) reconnect: Notify,
}

impl Shared {
    /// Runs an issued `call` until `deadline`, the deadline the dispatcher already held it to
    /// while it waited for a connection: one bound for both. Past it the call fails with
    /// DISCONNECTED when there is no connection at that moment, else with TIMEOUT (the SDK's
    /// own request timeout started later, so this comes first).
    /// A transfer (`deadline` `None`) runs unbounded. Either ends at once with
    /// [`ClientError::Cancelled`] when `cancel` fires.
    pub(super) async fn bounded(
        &self,
        call: Call,
        deadline: Option<Instant>,
        cancel: CancellationToken,
    ) -> Reply {
        let run = async {
            match deadline {
                None => call.await,
                Some(deadline) => match tokio::time::timeout_at(deadline, call).await {
                    Ok(reply) => reply,
                    Err(_) if self.current.borrow().is_none() => Err(ClientError::Closed),
                    Err(_) => Err(ClientError::Timeout),
                },
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ClientError::Cancelled),
            reply = run => reply,
        }
    }

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
    pub(super) fn shutdown_requests(&self) -> Option<(Vec<AbortHandle>, Wake)> {
        let mut wake = Wake::default();
        let mut reqs = lock(&self.requests);
        if reqs.shut_down {
            return None;
        }
        reqs.shut_down = true;
        let mut live: Vec<(u64, Option<AbortHandle>)> =
            reqs.live.drain().map(|(id, l)| (id, l.abort)).collect();
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

    pub(super) fn push_state(&self, s: ConnState) {
        self.push_state_json(json::state(s));
    }

    /// Queues a state event, with `"logged_in"` added.
    pub(super) fn push_state_json(&self, mut state: Value) {
        state["logged_in"] = self.logged_in.load(Ordering::SeqCst).into();
        self.queue.push(FeigeEvent::state(&state));
    }

    /// Queues `{"state":"logged_in","user_id"}` or `{"state":"logged_out","reason"}` (plus
    /// `fields`) when the session's state differs from the last one reported.
    pub(super) fn session_state(&self, session: Option<u64>, reason: &str, fields: Value) {
        let on = session.is_some();
        if self.logged_in.swap(on, Ordering::SeqCst) == on {
            return;
        }
        let mut state = match session {
            Some(user) => json!({ "state": "logged_in", "user_id": user.to_string() }),
            None => json!({ "state": "logged_out", "reason": reason }),
        };
        if let (Some(map), Value::Object(extra)) = (state.as_object_mut(), fields) {
            map.extend(extra);
        }
        self.push_state_json(state);
    }

    /// Reports the session state of `client` after `reason` (a method that completed).
    pub(super) fn session_of(&self, client: &Client, reason: &str) {
        let user = client.session().map(|s| s.user_id);
        self.session_state(user, reason, json!({}));
    }

    /// Ends the backoff of the connection task and of the client's own reconnects now.
    pub(super) fn reconnect_now(&self) {
        self.reconnect.notify_one();
        let client = self.current.borrow().clone();
        if let Some(client) = client {
            client.reconnect_now();
        }
    }
}

impl Host for Shared {
    fn progress(&self, id: u64, done: u64, total: u64) {
        let wake = {
            let reqs = lock(&self.requests);
            if !reqs.live.contains_key(&id) {
                return;
            }
            let json = json::typed(
                "progress",
                serde_json::json!({ "request_id": id.to_string(), "done": done, "total": total }),
            );
            // Under the lock, so it never follows the request's completion.
            self.queue.push_quiet(FeigeEvent::push(&json), false)
        };
        self.queue.wake(wake);
    }

    fn cancel(&self, id: u64) -> bool {
        match lock(&self.requests).live.get(&id) {
            Some(live) => {
                live.cancel.cancel();
                true
            }
            None => false,
        }
    }
}

/// Completes a request when its task ends — normally through [`Completion::finish`]; if the
/// task panics, from `drop` with `FEIGE_ERR_PANIC`; if shutdown aborted it, not at all (shutdown
/// already queued its completion).
pub(super) struct Completion {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u64,
    pub(super) done: bool,
}

impl Completion {
    pub(super) fn finish(mut self, reply: Reply) {
        self.done = true;
        let (status, json) = match reply {
            Ok(v) => (FeigeStatus::FEIGE_OK, v),
            Err(e) => (FeigeStatus::of_error(&e), json::client_error(&e)),
        };
        self.shared.complete(self.id, status, &json);
    }

    /// Completes with `FEIGE_ERR_PANIC` (the call panicked where no unwinding reached here).
    pub(super) fn panicked(mut self) {
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
