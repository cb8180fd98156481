//! The vocabulary of `feige_call` methods, shared by every family's file: a method's
//! handler type, the call it returns, and the way to its client.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use feige_client::{Client, ClientError};
use serde_json::Value;

use crate::json::{Params, Refusal};

/// What a method's future yields: its result JSON, or why it failed.
pub(crate) type Reply = Result<Value, ClientError>;
/// A method call, ready to run on the SDK's runtime.
pub(crate) type Call = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// A method call's way to its client: the dispatcher sets it before the call first runs.
#[derive(Clone)]
pub(crate) struct Conn(Arc<OnceLock<Client>>);

impl Conn {
    /// The way to the client the dispatcher will put in `client`.
    pub(crate) fn new(client: Arc<OnceLock<Client>>) -> Self {
        Conn(client)
    }

    /// The connected client the dispatcher chose for this call. (Async so that methods read
    /// as any other client call.)
    ///
    /// # Errors
    /// [`ClientError::Closed`] if there is none (the call ran outside the dispatcher).
    pub(crate) async fn client(&self) -> Result<Client, ClientError> {
        self.0.get().cloned().ok_or(ClientError::Closed)
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
