//! The persistent outbox (config `outbox_file`): `send_message` calls, kept in a file so that
//! they survive a restart of the application, sent one after another in call order, each
//! with the `client_msg_id` it got when it was queued, until the server acks it, refuses it,
//! or the application cancels it (`cancel_send`).
//!
//! The file is append-only JSON lines: `{"add":"<id>","params":{...}}` when a message is
//! queued (written and `fsync`ed inside `feige_call`, before it returns), `{"done":"<id>"}`
//! when it left the outbox. Opening it keeps the adds without a done, in file order (a torn
//! last line, from a crash mid-write, is dropped: its call never returned), and rewrites the
//! file with just those. When the outbox empties, the file is truncated.
//!
//! One message at a time: the next goes out when the previous is acked, so the server
//! stores them in outbox order whatever happens to connections in between (a resend of a
//! stored one is answered as a duplicate). Events: `{"type":"outbox","state":"sending"}` at
//! each attempt, `"sent"` with the ack, `"failed"` with the error; each with the
//! `client_msg_id`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feige_client::{Client, ClientError};
use feige_protocol::json::send_message_request;
use feige_protocol::ErrorCode;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::shared::{lock, Shared};
use crate::json::{self, Params, Refusal};
use crate::queue::FeigeEvent;
use crate::status::FeigeStatus;

/// Most messages the outbox holds; more are refused with `FEIGE_ERR_BUSY`.
pub(crate) const MAX_MESSAGES: usize = 10_000;
/// Most bytes of params the outbox holds.
pub(crate) const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Pause before another attempt after a transient failure (no connection, `BUSY`).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often the sender looks again for a logged-in client while there is none.
const LOGIN_POLL: Duration = Duration::from_millis(50);

/// One queued message.
struct Item {
    id: u64,
    /// The params of `send_message`, `client_msg_id` included.
    params: Value,
    bytes: usize,
    cancel: CancellationToken,
}

struct Inner {
    file: File,
    items: VecDeque<Item>,
    bytes: usize,
    /// The largest client_msg_id given out or found in the file.
    last_id: u64,
    /// The random low 20 bits of fresh ids.
    salt: u64,
}

/// The outbox of one client.
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    path: PathBuf,
    /// Wakes the sender when a message is queued or cancelled.
    wake: Notify,
}

/// A line of the file.
fn line(v: &Value) -> Vec<u8> {
    let mut bytes = v.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

fn id_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key)?.as_str()?.parse().ok()
}

impl Outbox {
    /// Opens (or creates) the outbox file at `path` and loads the messages still queued.
    ///
    /// # Errors
    /// The file cannot be read, rewritten or opened for appending.
    pub(crate) fn open(path: &Path) -> std::io::Result<Outbox> {
        let mut adds: Vec<(u64, Value)> = Vec::new();
        let mut last_id = 0;
        if let Ok(f) = File::open(path) {
            for l in BufReader::new(f).lines() {
                let Ok(v) = serde_json::from_str::<Value>(&l?) else {
                    continue;
                };
                if let (Some(id), Some(params)) = (id_of(&v, "add"), v.get("params")) {
                    last_id = last_id.max(id);
                    adds.push((id, params.clone()));
                } else if let Some(id) = id_of(&v, "done") {
                    adds.retain(|(a, _)| *a != id);
                }
            }
        }
        // Compact: only what is still queued, written aside and renamed over.
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            for (id, params) in &adds {
                f.write_all(&line(&json!({ "add": id.to_string(), "params": params })))?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        let file = OpenOptions::new().append(true).open(path)?;
        let items: VecDeque<Item> = adds
            .into_iter()
            .map(|(id, params)| Item {
                id,
                bytes: params.to_string().len(),
                params,
                cancel: CancellationToken::new(),
            })
            .collect();
        let salt = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            & 0xF_FFFF;
        Ok(Outbox {
            inner: Mutex::new(Inner {
                file,
                bytes: items.iter().map(|i| i.bytes).sum(),
                items,
                last_id,
                salt,
            }),
            path: path.to_owned(),
            wake: Notify::new(),
        })
    }

    /// Queues a `send_message` call: checks its params, gives it a `client_msg_id` (unless
    /// it has one), appends it to the file and syncs it. Returns the id.
    ///
    /// # Errors
    /// Bad params (`FEIGE_ERR_JSON`/`_PARAMS`), a full outbox (`FEIGE_ERR_BUSY`), the file
    /// cannot be written (`FEIGE_ERR_IO`).
    pub(crate) fn enqueue(&self, params: Option<&str>) -> Result<u64, Refusal> {
        let p = Params::parse(params)?;
        let request = send_message_request(&p)?;
        let mut value: Value = match params {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Refusal::params(format!("send_message: {e}")))?,
            None => json!({}),
        };
        let mut inner = lock(&self.inner);
        if inner.items.len() >= MAX_MESSAGES || inner.bytes >= MAX_BYTES {
            return Err(Refusal {
                status: FeigeStatus::FEIGE_ERR_BUSY,
                message: format!(
                    "the outbox is full ({MAX_MESSAGES} messages or {MAX_BYTES} bytes)"
                ),
            });
        }
        // Fresh ids grow with the clock (unix ms << 20 | salt) and past every earlier one.
        let id = match request.client_msg_id {
            0 => {
                let now = (unix_ms() << 20) | inner.salt;
                now.max(inner.last_id + 1)
            }
            given => given,
        };
        inner.last_id = inner.last_id.max(id);
        value["client_msg_id"] = id.to_string().into();
        let record = line(&json!({ "add": id.to_string(), "params": value }));
        let io = |e: std::io::Error| Refusal {
            status: FeigeStatus::FEIGE_ERR_IO,
            message: format!("outbox {}: {e}", self.path.display()),
        };
        inner.file.write_all(&record).map_err(io)?;
        inner.file.sync_data().map_err(io)?;
        let bytes = record.len();
        inner.bytes += bytes;
        inner.items.push_back(Item {
            id,
            params: value,
            bytes,
            cancel: CancellationToken::new(),
        });
        drop(inner);
        self.wake.notify_one();
        Ok(id)
    }

    /// Cancels queued message `id`: it leaves the outbox now (reported `failed` with
    /// `CANCELLED`) and is not sent (again); an attempt in flight is abandoned. False when
    /// the outbox does not hold it (sent, failed, or never queued).
    pub(crate) fn cancel(&self, shared: &Shared, id: u64) -> bool {
        let Some(event) = self.cancel_quiet(id) else {
            return false;
        };
        shared.queue.push(FeigeEvent::push(&event));
        true
    }

    /// [`Outbox::cancel`] without queuing the event: returns it.
    fn cancel_quiet(&self, id: u64) -> Option<Value> {
        let token = {
            let inner = lock(&self.inner);
            inner.items.iter().find(|i| i.id == id)?.cancel.clone()
        };
        token.cancel();
        let event = self.remove(id, &cancelled_json());
        self.wake.notify_one();
        event
    }

    /// The ids of the messages queued, in order.
    #[cfg(test)]
    pub(crate) fn ids(&self) -> Vec<u64> {
        lock(&self.inner).items.iter().map(|i| i.id).collect()
    }

    /// The first message not cancelled, removing (and reporting) the cancelled ones before it.
    fn head(&self, shared: &Shared) -> Option<(u64, Value, CancellationToken)> {
        loop {
            let (id, params, cancel) = {
                let inner = lock(&self.inner);
                let item = inner.items.front()?;
                (item.id, item.params.clone(), item.cancel.clone())
            };
            if !cancel.is_cancelled() {
                return Some((id, params, cancel));
            }
            self.finish(shared, id, &cancelled_json());
        }
    }

    /// Removes message `id` from the outbox (a done line, synced; the file truncated when the
    /// outbox is empty), then queues its final event `fields`.
    fn finish(&self, shared: &Shared, id: u64, fields: &Value) {
        if let Some(event) = self.remove(id, fields) {
            shared.queue.push(FeigeEvent::push(&event));
        }
    }

    /// Removes message `id` from the outbox and returns its final event `fields`; `None` when
    /// it was no longer there.
    fn remove(&self, id: u64, fields: &Value) -> Option<Value> {
        {
            let mut inner = lock(&self.inner);
            let at = inner.items.iter().position(|i| i.id == id)?;
            if let Some(item) = inner.items.remove(at) {
                inner.bytes -= item.bytes;
            }
            let result = if inner.items.is_empty() {
                inner.bytes = 0;
                inner.file.set_len(0).and_then(|()| inner.file.sync_data())
            } else {
                let record = line(&json!({ "done": id.to_string() }));
                inner
                    .file
                    .write_all(&record)
                    .and_then(|()| inner.file.sync_data())
            };
            if let Err(e) = result {
                // Worst case it is sent again after a restart: the server dedupes it.
                tracing::warn!(error = %e, path = %self.path.display(), "outbox write failed");
            }
        }
        Some(event(id, fields))
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `{"type":"outbox","client_msg_id", ...fields}`.
fn event(id: u64, fields: &Value) -> Value {
    let mut v = json!({ "type": "outbox", "client_msg_id": id.to_string() });
    if let (Some(map), Some(extra)) = (v.as_object_mut(), fields.as_object()) {
        map.extend(extra.clone());
    }
    v
}

fn cancelled_json() -> Value {
    let mut v = json!({ "state": "failed" });
    v["error"] = json::error("CANCELLED", "cancelled with cancel_send")["error"].clone();
    v
}

/// Whether a failed send is worth another attempt: no connection or session, a timeout, the
/// server busy or limiting the rate. Anything else the server said is final.
fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Server { code, .. } => matches!(
            code,
            ErrorCode::Busy | ErrorCode::RateLimited | ErrorCode::NotLoggedIn | ErrorCode::Internal
        ),
        ClientError::Protocol(_) | ClientError::Invalid(_) => false,
        _ => true,
    }
}

/// The connected client once it is logged in (or resumed).
async fn logged_in(shared: &Shared) -> Client {
    let mut current = shared.current.subscribe();
    loop {
        let client = current.borrow_and_update().clone();
        if let Some(c) = client.filter(|c| c.session().is_some()) {
            return c;
        }
        tokio::select! {
            _ = current.changed() => {}
            () = tokio::time::sleep(LOGIN_POLL) => {}
        }
    }
}

/// Sends the outbox's messages one at a time, in order, until shutdown.
pub(super) async fn run_outbox(shared: Arc<Shared>, outbox: Arc<Outbox>) {
    tokio::select! {
        () = send_all(&shared, &outbox) => {}
        () = shared.cancel.cancelled() => {}
    }
}

async fn send_all(shared: &Arc<Shared>, outbox: &Arc<Outbox>) {
    loop {
        let Some((id, params, cancel)) = blocking_head(shared, outbox).await else {
            outbox.wake.notified().await;
            continue;
        };
        let request = match Params::of("params", &params).and_then(|p| send_message_request(&p)) {
            Ok(r) => r,
            Err(e) => {
                let err = json::error("INVALID_ARGUMENT", &format!("{e:?}"));
                finish(
                    shared,
                    outbox,
                    id,
                    json!({ "state": "failed", "error": err["error"] }),
                )
                .await;
                continue;
            }
        };
        let client = tokio::select! {
            c = logged_in(shared) => c,
            () = cancel.cancelled() => continue,
        };
        shared
            .queue
            .push(FeigeEvent::push(&event(id, &json!({ "state": "sending" }))));
        let result = tokio::select! {
            r = client.send(request) => r,
            () = cancel.cancelled() => continue,
        };
        match result {
            Ok(ok) => {
                let mut fields = json::send_ok(&ok);
                fields["state"] = "sent".into();
                finish(shared, outbox, id, fields).await;
            }
            Err(e) if transient(&e) => {
                tracing::debug!(error = %e, id, "outbox send will be retried");
                tokio::select! {
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                    () = cancel.cancelled() => {}
                }
            }
            Err(e) => {
                let mut fields = json::client_error(&e);
                fields["state"] = "failed".into();
                finish(shared, outbox, id, fields).await;
            }
        }
    }
}

/// [`Outbox::head`] off the runtime's threads (it may write the file).
async fn blocking_head(
    shared: &Arc<Shared>,
    outbox: &Arc<Outbox>,
) -> Option<(u64, Value, CancellationToken)> {
    let (s, o) = (shared.clone(), outbox.clone());
    tokio::task::spawn_blocking(move || o.head(&s))
        .await
        .ok()
        .flatten()
}

/// [`Outbox::finish`] off the runtime's threads.
async fn finish(shared: &Arc<Shared>, outbox: &Arc<Outbox>, id: u64, fields: Value) {
    let (s, o) = (shared.clone(), outbox.clone());
    let _ = tokio::task::spawn_blocking(move || o.finish(&s, id, &fields)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_what_was_not_done_in_order_and_ids_grow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        let o = Outbox::open(&path).unwrap();
        let a = o.enqueue(Some(r#"{"to_user":"2","text":"a"}"#)).unwrap();
        let b = o.enqueue(Some(r#"{"to_user":"2","text":"b"}"#)).unwrap();
        let c = o
            .enqueue(Some(r#"{"conversation_id":"9","text":"c"}"#))
            .unwrap();
        assert!(a < b && b < c, "ids grow: {a} {b} {c}");
        assert_eq!(
            o.enqueue(Some(r#"{"text":"no recipient"}"#))
                .map_err(|e| e.status),
            Err(FeigeStatus::FEIGE_ERR_PARAMS)
        );
        {
            // b done, as the sender records it; then a torn line from a crash.
            let mut inner = lock(&o.inner);
            let done = line(&json!({ "done": b.to_string() }));
            inner.file.write_all(&done).unwrap();
            inner.file.write_all(b"{\"add\":\"7\",\"par").unwrap();
        }
        drop(o);
        let o = Outbox::open(&path).unwrap();
        assert_eq!(o.ids(), vec![a, c]);
        let d = o.enqueue(Some(r#"{"to_user":"2","text":"d"}"#)).unwrap();
        assert!(d > c);
        let ev = o.cancel_quiet(a).unwrap();
        assert_eq!(
            (ev["type"].clone(), ev["state"].clone()),
            (json!("outbox"), json!("failed"))
        );
        assert_eq!(ev["error"]["code"], "CANCELLED");
        assert_eq!(ev["client_msg_id"], a.to_string());
        assert!(o.cancel_quiet(a).is_none(), "gone after the first cancel");
        assert!(o.cancel_quiet(b).is_none());
        assert_eq!(o.ids(), vec![c, d]);
        let given = o
            .enqueue(Some(r#"{"to_user":"2","text":"e","client_msg_id":"5"}"#))
            .unwrap();
        assert_eq!(given, 5);
        // Compacted on open (a, c), then d, a done, e.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        drop(o);
        assert_eq!(Outbox::open(&path).unwrap().ids(), vec![c, d, 5]);
    }
}
