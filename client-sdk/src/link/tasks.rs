//! The tasks of one live connection: the writer, which batches frames and pings when idle,
//! and the reader, which completes requests and delivers pushes in arrival order.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use feige_protocol::{
    pb, Body, Envelope, ErrorCode, PushKind, RequestKind, ResponseResult, DEFAULT_MAX_FRAME_LEN,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{lock, Inner, LinkStatus, Purpose, ReadEnd};
use crate::connection::{Connection, FrameReader, FrameWriter};
use crate::delivery::Applied;
use crate::types::Event;
use crate::ClientError;

/// Bytes gathered before one write.
const WRITE_BATCH: usize = 64 * 1024;
/// A write that makes no progress for this long drops the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Heartbeat used when the server announces none.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// Makes a greeted connection the live one: spawns its reader and writer tasks.
pub(crate) fn start_link(
    inner: &Arc<Inner>,
    conn: Connection,
    hello: &pb::HelloOk,
) -> (JoinHandle<ReadEnd>, u64) {
    let (reader, writer) = conn.into_split();
    // Unbounded: every frame in it holds an in-flight permit, except pings and the resends
    // below, which held one on their first connection.
    let (tx, rx) = mpsc::unbounded_channel();
    let conn_cancel = inner.cancel.child_token();
    let heartbeat = match hello.heartbeat_ms {
        0 => DEFAULT_HEARTBEAT,
        ms => Duration::from_millis(ms.into()),
    };
    let gen = {
        let mut link = lock(&inner.link);
        link.gen += 1;
        if !link.dead {
            // Sends that outlived the last connection go first, in issue order.
            for p in link.pending.values() {
                if let Some(f) = &p.resend {
                    let _ = tx.send(f.clone());
                }
            }
            link.up = true;
            link.writer = Some(tx);
            link.server_max_frame = match hello.max_frame_len {
                0 => DEFAULT_MAX_FRAME_LEN,
                n => n as usize,
            };
            link.conn_cancel = Some(conn_cancel.clone());
            inner.status.send_replace(LinkStatus::Up(link.gen));
        } else {
            conn_cancel.cancel();
        }
        link.gen
    };
    tokio::spawn(write_loop(
        inner.clone(),
        writer,
        rx,
        heartbeat / 2,
        conn_cancel.clone(),
    ));
    let events = lock(&inner.events).clone();
    // The server pongs our pings, so a live server is never silent this long.
    let read_timeout = (heartbeat * 2).max(Duration::from_secs(2));
    let reader = tokio::spawn(read_loop(
        inner.clone(),
        reader,
        events,
        read_timeout,
        conn_cancel,
    ));
    (reader, gen)
}

/// Writes queued frames in batches; pings when nothing was written for `ping_every`.
async fn write_loop(
    inner: Arc<Inner>,
    mut w: FrameWriter,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    ping_every: Duration,
    cancel: CancellationToken,
) {
    let idle = tokio::time::sleep(ping_every);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // Whatever is already queued (e.g. a last Ack before close) still goes out.
                while let Ok(f) = rx.try_recv() {
                    w.queue(&f);
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = w.flush().await;
                    let _ = w.shutdown().await;
                })
                .await;
                return;
            }
            f = rx.recv() => {
                let Some(f) = f else { return };
                w.queue(&f);
                while w.queued() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(f) => w.queue(&f),
                        Err(_) => break,
                    }
                }
            }
            () = &mut idle => {
                let nonce = inner.next_request_id();
                w.queue_envelope(&Envelope::request(nonce, RequestKind::Ping(pb::Ping { nonce })));
            }
        }
        match tokio::time::timeout(WRITE_TIMEOUT, w.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                cancel.cancel();
                return;
            }
            Err(_) => {
                tracing::debug!("write timed out");
                cancel.cancel();
                return;
            }
        }
        idle.as_mut().reset(Instant::now() + ping_every);
    }
}

/// Reads frames in order: completes calls, feeds the tracker, emits events.
async fn read_loop(
    inner: Arc<Inner>,
    mut r: FrameReader,
    events: Option<mpsc::Sender<Event>>,
    read_timeout: Duration,
    cancel: CancellationToken,
) -> ReadEnd {
    let mut end = ReadEnd::default();
    // Waiting for room in the event queue stops only when the whole client closes: the tracker
    // already counts these messages as delivered, so they must reach the application even if
    // this connection has died meanwhile.
    let out = Emitter {
        events,
        cancel: inner.cancel.clone(),
    };
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => break,
            n = tokio::time::timeout(read_timeout, r.read_frame()) => n,
        };
        let env = match next {
            Ok(Ok(Some(env))) => env,
            Ok(Ok(None)) => {
                tracing::debug!("server closed the connection");
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "read failed");
                break;
            }
            Err(_) => {
                tracing::debug!("server silent for too long");
                break;
            }
        };
        match env.body {
            Some(Body::Response(resp)) => {
                on_response(&inner, &out, env.request_id, resp.result).await;
            }
            Some(Body::Push(pb::Push {
                kind: Some(PushKind::Message(m)),
            })) => {
                let applied = lock(&inner.tracker).on_push(m);
                out.deliver(&inner, applied).await;
            }
            Some(Body::Push(pb::Push {
                kind: Some(PushKind::Kicked(k)),
            })) => {
                let code = ErrorCode::try_from(k.code).unwrap_or(ErrorCode::Unspecified);
                tracing::debug!(?code, reason = %k.reason, "kicked");
                end.kicked = Some(code);
                out.send(Event::Kicked {
                    code,
                    reason: k.reason,
                })
                .await;
            }
            Some(Body::Push(pb::Push { kind: Some(other) })) => {
                if let PushKind::ProfileUpdated(p) = &other {
                    inner.set_profile(p);
                }
                if let PushKind::GroupRemoved(r) = &other {
                    lock(&inner.tracker).forget(r.group_id);
                }
                if let Some(event) = Event::from_push(other) {
                    out.send(event).await;
                }
            }
            _ => {}
        }
    }
    cancel.cancel();
    end
}

/// The reader's way out to the application.
struct Emitter {
    events: Option<mpsc::Sender<Event>>,
    cancel: CancellationToken,
}

impl Emitter {
    async fn send(&self, event: Event) {
        if let Some(tx) = &self.events {
            tokio::select! {
                _ = tx.send(event) => {}
                () = self.cancel.cancelled() => {}
            }
        }
    }

    async fn deliver(&self, inner: &Arc<Inner>, applied: Applied) {
        for m in applied.delivered {
            self.send(Event::Message(m)).await;
        }
        if applied.advanced {
            inner.ack_notify.notify_one();
        }
        if applied.need_sync {
            inner.trigger_sync();
        }
    }
}

async fn on_response(inner: &Arc<Inner>, out: &Emitter, id: u64, result: Option<ResponseResult>) {
    let pending = lock(&inner.link).pending.remove(&id);
    let result = match result {
        None => Err(ClientError::Protocol("empty response".to_owned())),
        Some(ResponseResult::Send(ok)) => {
            // Our own message: not pushed back to this connection, so move past it here,
            // before any later push of the same conversation is read.
            let applied = lock(&inner.tracker).on_own(ok.conversation_id, ok.seq);
            out.deliver(inner, applied).await;
            Ok(ResponseResult::Send(ok))
        }
        Some(ResponseResult::Sync(page)) => match pending.as_ref().map(|p| p.purpose) {
            Some(Purpose::Sync { epoch }) => {
                let applied = {
                    let mut t = lock(&inner.tracker);
                    if t.epoch() == epoch {
                        t.on_sync_page(page.messages)
                    } else {
                        Applied::default()
                    }
                };
                let messages = applied.delivered.clone();
                out.deliver(inner, applied).await;
                Ok(ResponseResult::Sync(pb::SyncPage {
                    messages,
                    has_more: page.has_more,
                }))
            }
            _ => Ok(ResponseResult::Sync(page)),
        },
        Some(other) => Ok(other),
    };
    if let Some(p) = pending {
        let _ = p.tx.send(result);
    }
}
