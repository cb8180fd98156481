//! Helpers for tests that talk to the server through the Rust client SDK.

use std::time::Duration;

use feige_client::{Client, ClientConfig, ClientError, Event, Events};
use feige_protocol::{pb, ErrorCode};

/// The password every test account uses.
pub const PASSWORD: &str = "password123";

/// A client connected to `addr` as `device`, not logged in.
pub async fn connect(addr: &str, device: &str) -> (Client, Events) {
    let config = ClientConfig {
        device: device.to_owned(),
        ..ClientConfig::new(addr)
    };
    Client::connect(config).await.unwrap()
}

/// Registers `name` and returns its user id.
pub async fn register(addr: &str, name: &str) -> u64 {
    let (c, _) = connect(addr, "setup").await;
    let id = c.register(name, PASSWORD, name).await.unwrap();
    c.close().await;
    id
}

/// A client logged in as `name` on `device`.
pub async fn login(addr: &str, name: &str, device: &str) -> (Client, Events) {
    let (c, e) = connect(addr, device).await;
    c.login(name, PASSWORD).await.unwrap();
    (c, e)
}

/// The server error code of a failed call.
pub fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The next message event, skipping state events; panics after 10 s.
pub async fn next_message(events: &mut Events) -> pb::Message {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(Event::Message(m)) => return m,
                Some(_) => continue,
                None => panic!("event stream ended"),
            }
        }
    })
    .await
    .expect("no message within 10 s")
}

/// The next `n` message events.
pub async fn messages(events: &mut Events, n: usize) -> Vec<pb::Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_message(events).await);
    }
    out
}

/// Asserts no message event arrives within `ms` milliseconds.
pub async fn no_message_within(events: &mut Events, ms: u64) {
    let r = tokio::time::timeout(Duration::from_millis(ms), async {
        loop {
            match events.recv().await {
                Some(Event::Message(m)) => return m,
                Some(_) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(r.is_err(), "unexpected message {r:?}");
}
