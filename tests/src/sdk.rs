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

/// The next event `pick` maps to `Some`, skipping the others; panics after 10 s.
pub async fn next_event<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(e) => {
                    if let Some(t) = pick(e) {
                        return t;
                    }
                }
                None => panic!("event stream ended"),
            }
        }
    })
    .await
    .expect("no matching event within 10 s")
}

/// Asserts that no event `pick` maps to `Some` arrives within `ms` milliseconds.
pub async fn no_event_within<T: std::fmt::Debug>(
    events: &mut Events,
    ms: u64,
    mut pick: impl FnMut(Event) -> Option<T>,
) {
    let r = tokio::time::timeout(Duration::from_millis(ms), async {
        loop {
            match events.recv().await {
                Some(e) => {
                    if let Some(t) = pick(e) {
                        return t;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(r.is_err(), "unexpected event {r:?}");
}

/// The next presence event about `user`: whether they are online.
pub async fn next_presence(events: &mut Events, user: u64) -> bool {
    next_event(events, |e| match e {
        Event::Presence { user_id, online } if user_id == user => Some(online),
        _ => None,
    })
    .await
}

/// Makes the users of `a` and `b` friends: `a` asks, `b` accepts. Returns their conversation.
pub async fn befriend(a: &Client, b: &Client) -> u64 {
    let b_id = b.session().unwrap().user_id;
    let sent = a.friend_request(b_id, "").await.unwrap();
    let answer = b
        .respond_friend_request(sent.request_id, true)
        .await
        .unwrap();
    answer.friend.unwrap().conversation_id
}

/// The user id `c` is logged in as.
pub fn uid(c: &Client) -> u64 {
    c.session().unwrap().user_id
}

/// An event filter for [`next_event`]: `user`'s presence changes, as online or not.
pub fn is_presence(user: u64) -> impl FnMut(Event) -> Option<bool> {
    move |e| match e {
        Event::Presence { user_id, online } if user_id == user => Some(online),
        _ => None,
    }
}
