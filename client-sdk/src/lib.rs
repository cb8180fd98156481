//! `feige-client`: an async (tokio) client for the Feige instant-messaging server.
//!
//! [`Client::connect`] opens one TCP connection and returns a cheaply cloneable [`Client`] and
//! an [`Events`] stream. Requests are pipelined on the connection; messages arrive as
//! [`Event::Message`] exactly once and in sequence order per conversation, whether pushed
//! live or fetched by the automatic sync after a login or reconnect. Lost connections are
//! re-established with backoff and the session resumed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), feige_client::ClientError> {
//! use feige_client::{Client, ClientConfig, Event};
//! let (client, mut events) = Client::connect(ClientConfig::new("127.0.0.1:7900")).await?;
//! client.login("alice", "password123").await?;
//! client.send_text(2, "hello").await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(m) = event {
//!         println!("{}: {}", m.from_user, m.text);
//!     }
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod client;
mod connection;
mod delivery;
mod error;
mod link;
mod transfer;
mod types;

pub use backoff::{Backoff, BackoffPolicy};
pub use client::codes::Contact;
pub use client::download::Downloaded;
pub use client::files::{Recipient, TranscribeTarget};
pub use client::upload::Uploaded;
pub use client::{Client, Events, SEND_RETRY_WINDOW};
pub use error::{code_name, ClientError};
pub use feige_protocol::{self as protocol, pb, ErrorCode, RequestKind, ResponseResult};
pub use tokio_util::sync::CancellationToken;
pub use transfer::{kind_for_mime, mime_for_path, Progress, PROGRESS_INTERVAL};
pub use types::{ClientConfig, ConnState, Event};

#[cfg(test)]
mod tests;
