//! What every family of `feige_call` methods is made of: a method's handler type, the call
//! it returns, and the way to its client. A family file uses these through `super::base`
//! (not `super`), so that `mod.rs`, which names each family's table, is not imported back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use feige_client::{CancellationToken, Client, ClientError, Progress};
use serde_json::Value;

use crate::json::{Params, Refusal};

/// What a method's future yields: its result JSON, or why it failed.
pub(crate) type Reply = Result<Value, ClientError>;
/// A method call, ready to run on the SDK's runtime.
pub(crate) type Call = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// What the client behind a `FeigeClient *` does for a running call: queue its progress
/// events, and cancel a request by id. (Implemented by the client's shared state, so this
/// file never imports it.)
pub(crate) trait Host: Send + Sync {
    /// Queues `{"type":"progress","request_id","done","total"}` for request `id`, unless it
    /// has completed.
    fn progress(&self, id: u64, done: u64, total: u64);
    /// Cancels request `id`; false when it is not in flight.
    fn cancel(&self, id: u64) -> bool;
}

/// Where the dispatcher puts what a call learns when it is issued.
#[derive(Default)]
pub(crate) struct Slot {
    /// The connected client the call runs on.
    pub(crate) client: OnceLock<Client>,
    /// The call's own request id.
    pub(crate) id: OnceLock<u64>,
}

/// A method call's way to its client, its request id, its cancellation and its progress
/// events: the dispatcher fills the slot before the call first runs.
#[derive(Clone)]
pub(crate) struct Conn {
    slot: Arc<Slot>,
    host: Arc<dyn Host>,
    cancel: CancellationToken,
}

impl Conn {
    /// The way to the client the dispatcher will put in `slot`; `cancel` is the request's.
    pub(crate) fn new(slot: Arc<Slot>, host: Arc<dyn Host>, cancel: CancellationToken) -> Self {
        Conn { slot, host, cancel }
    }

    /// The connected client the dispatcher chose for this call. (Async so that methods read
    /// as any other client call.)
    ///
    /// # Errors
    /// [`ClientError::Closed`] if there is none (the call ran outside the dispatcher).
    pub(crate) async fn client(&self) -> Result<Client, ClientError> {
        self.slot.client.get().cloned().ok_or(ClientError::Closed)
    }

    /// The request's cancellation (`cancel`), for a transfer to stop promptly.
    pub(crate) fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// A transfer's progress callback: queues progress events of this request.
    pub(crate) fn progress(&self) -> impl FnMut(Progress) + Send + 'static {
        let host = self.host.clone();
        let id = self.slot.id.get().copied().unwrap_or(0);
        move |p: Progress| host.progress(id, p.done, p.total)
    }

    /// Cancels another request of this client; false when it is not in flight.
    pub(crate) fn cancel_request(&self, id: u64) -> bool {
        self.host.cancel(id)
    }
}

/// A method handler: params → the call to run.
pub(crate) type Method = fn(&Params, Conn) -> Result<Call, Refusal>;

/// Boxes a call's future.
pub(crate) fn call(
    f: impl std::future::Future<Output = Reply> + Send + 'static,
) -> Result<Call, Refusal> {
    Ok(Box::pin(f))
}
