//! The WebSocket gateway: `GET /ws` (and `/acc`) upgrades to a WebSocket whose text frames
//! are JSON requests (see `ws_json` and docs/websocket.md).
//!
//! A WebSocket connection is served by the ordinary connection handler: the gateway makes an
//! in-process pipe (`pipe.rs`), runs [`handler::serve`] on one end, and relays the other end —
//! JSON text frames turned into protobuf frames one way, and back the other. So the login
//! deadline, the limits, the byte-bounded outbox, ack after commit, idempotent resend and
//! sync are the TCP ones. The relay holds at most `INBOUND_BATCH` bytes of requests (plus
//! one) and what it read from the pipe, which holds `PIPE_BYTES` per direction: a client that
//! does not read stops the relay, its outbox fills, and the handler drops it as a slow
//! consumer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::BytesMut;
use feige_protocol::{frame, pb, Body, Envelope, ErrorCode, PushKind};
use futures_util::{SinkExt, StreamExt};
use tracing::Instrument;

use super::reply::HttpError;
use super::ws_json::{self, Inbound, Pending};
use crate::connections::Transport;
use crate::pipe::{self, PipeEnd};
use crate::socket::Socket;
use crate::{handler, Shared};

/// How long the relay may still pass frames to the client once its handler has ended.
const FLUSH_GRACE: Duration = Duration::from_secs(1);
/// Bytes the pipe between the relay and the handler holds per direction, as a socket
/// buffer would.
const PIPE_BYTES: usize = 64 * 1024;
/// The WebSocket's read buffer to begin with (tungstenite's default, 128 KiB, would be held by
/// every idle connection); it grows for a larger message.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes of frames the WebSocket gathers before it writes them (each batch is flushed anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;
/// Bytes of request frames the relay gathers from the client before it stops reading until
/// the pipe takes them (plus at most one frame).
const INBOUND_BATCH: usize = 16 * 1024;
/// Room the relay takes for the JSON of a burst of frames to the client.
const JSON_BUFFER: usize = 4 * 1024;
/// WebSocket close code of a message over the size limit (RFC 6455 "message too big").
const CLOSE_TOO_BIG: u16 = 1009;

/// The gateway's routes.
pub(crate) fn routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/ws", get(upgrade))
        .route("/acc", get(upgrade))
}

/// Counts a WebSocket connection in `Shared::ws_connections` while it lives.
struct WsCount(Arc<Shared>);

impl Drop for WsCount {
    fn drop(&mut self) {
        self.0.ws_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes the connection's slots (the server's and its address's), then upgrades.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    if shared.bans.is_banned(peer.ip()) {
        tracing::info!(%peer, "WebSocket refused: the address is banned");
        let msg = "ADDRESS_BANNED: connections from this address are banned";
        return HttpError::forbidden(msg).into_response();
    }
    let Ok(permit) = shared.conn_slots.clone().try_acquire_owned() else {
        let msg = "the server is at max_connections";
        return HttpError::new(StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    };
    let Some(slot) = shared.limits.connect(peer.ip()) else {
        tracing::info!(%peer, "WebSocket refused: too many connections from this address");
        let msg = "TOO_MANY_CONNECTIONS: too many connections from this address";
        return HttpError::new(StatusCode::TOO_MANY_REQUESTS, msg).into_response();
    };
    // Our own limit closes with a clear reason (see `inbound`); tungstenite's, above it,
    // only bounds what one frame may make us buffer.
    let limit = shared.config.max_frame_len;
    ws.max_message_size(limit * 2)
        .max_frame_size(limit * 2)
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            shared.ws_connections.fetch_add(1, Ordering::Relaxed);
            let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("ws", id, %peer);
            let count = WsCount(shared.clone());
            let tracker = shared.tracker.clone();
            tracker.spawn(serve(shared, socket, id, peer, (slot, permit, count)).instrument(span));
            std::future::ready(())
        })
}

/// Requests sent to the handler and not answered yet, by request id.
type PendingMap = HashMap<u64, Pending>;

/// Serves one WebSocket: the handler on one end of a pipe, the relay on the other.
async fn serve<G: Send + 'static>(
    shared: Arc<Shared>,
    socket: WebSocket,
    conn_id: u64,
    peer: SocketAddr,
    guards: G,
) {
    let (relay_end, handler_end) = pipe::pair(PIPE_BYTES);
    let mut pending = PendingMap::new();
    // The gateway greets for the client: the connection starts in Greeted, and its first
    // command is `login` (or `register`).
    let (hello, greeting) = Pending::hello();
    pending.insert(1, greeting);
    let first = frame::encode_to_bytes(&Envelope::request(1, hello));
    if relay_end.write_all(&first).await.is_err() {
        return;
    }
    let limits = Limits {
        max_text: shared.config.max_frame_len,
        heartbeat_ms: shared.config.heartbeat_ms,
    };
    let relay = Relay {
        ws: socket,
        pipe: relay_end,
        pending,
        limits,
        kicked: None,
        json: BytesMut::new(),
    };
    let handler = handler::serve_as(
        shared,
        Socket::Pipe(Box::new(handler_end)),
        (conn_id, peer, Transport::Ws),
        guards,
    );
    let relay = relay.run();
    tokio::pin!(relay, handler);
    tokio::select! {
        // The relay is over and its end of the pipe dropped: the handler reads end of stream.
        () = &mut relay => handler.await,
        () = &mut handler => {
            let _ = tokio::time::timeout(FLUSH_GRACE, relay).await;
        }
    }
}

/// What the inbound relay enforces.
#[derive(Clone, Copy)]
struct Limits {
    /// Largest text frame, in bytes (`max_frame_len`).
    max_text: usize,
    /// Told to the client in `login`'s answer.
    heartbeat_ms: u64,
}

/// The relay between the WebSocket and the handler's pipe, both ways in one loop: the
/// WebSocket is not split (no lock between two halves), and the requests waiting for their
/// answers are the loop's own.
struct Relay {
    ws: WebSocket,
    pipe: PipeEnd,
    pending: PendingMap,
    limits: Limits,
    /// The code of the handler's last `kicked` push: the close frame names it.
    kicked: Option<ErrorCode>,
    /// The JSON of the frames being relayed to the client, each split off in turn.
    json: BytesMut,
}

/// How a step of the relay ends.
enum Step {
    /// Go on.
    Go,
    /// The client is gone or broke a rule (a close frame is sent already if it needs one):
    /// the handler reads end of stream; what it still writes is passed on for a moment.
    ClientDone,
    /// The WebSocket cannot be written to: stop.
    Stop,
}

impl Relay {
    /// Relays until the handler closes (its last frames and the close are sent), the client
    /// cannot be written to, or a moment after the client closed.
    async fn run(mut self) {
        // Empty while idle: `read_buf` takes room for a burst, given back once it is relayed.
        let mut out = BytesMut::new();
        // Request frames the pipe has not taken yet: those of the client's frames that were
        // read at once go to the pipe in one write (one wake-up of the handler), and no more
        // are read while `INBOUND_BATCH` bytes wait (the handler reads no requests while its
        // output is backlogged).
        let mut inb = BytesMut::new();
        // Id 1 was the Hello.
        let mut next_id: u64 = 2;
        let mut client_open = true;
        // The pipe's way in is shut (the client is done and its last requests are written).
        let mut shut = false;
        let grace = tokio::time::sleep(FLUSH_GRACE);
        tokio::pin!(grace);
        loop {
            let step = tokio::select! {
                // Output first: what the handler wrote goes out before more requests come in.
                biased;
                read = self.pipe.read_buf(&mut out) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => self.outbound(&mut out).await,
                },
                msg = self.ws.next(), if client_open && inb.len() < INBOUND_BATCH => {
                    self.inbound(msg, &mut inb, &mut next_id).await
                }
                // Polled once the client has nothing more to read now (or the batch is full).
                ready = std::future::poll_fn(|cx| self.pipe.poll_write_ready(cx)), if !inb.is_empty() => {
                    match ready.and_then(|()| self.pipe.try_write(&inb)) {
                        Ok(n) => {
                            let _ = inb.split_to(n);
                            if inb.is_empty() {
                                // Likely idle next: hold no buffer.
                                inb = BytesMut::new();
                            }
                            Step::Go
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Step::Go,
                        Err(_) => {
                            // The handler is gone.
                            inb = BytesMut::new();
                            Step::ClientDone
                        }
                    }
                }
                () = &mut grace, if !client_open => return,
            };
            match step {
                Step::Go => {}
                Step::ClientDone => {
                    if client_open {
                        client_open = false;
                        let until = tokio::time::Instant::now() + FLUSH_GRACE;
                        grace.as_mut().reset(until);
                    }
                }
                Step::Stop => return,
            }
            // The requests read before the client closed still reach the handler, as over
            // TCP; then it reads the end of the stream.
            if !client_open && inb.is_empty() && !shut {
                shut = true;
                self.pipe.shutdown_write();
            }
        }
        let (code, reason) = match self.kicked {
            None => (1000, String::new()),
            Some(ErrorCode::ShuttingDown) => (1001, "SHUTTING_DOWN".to_owned()),
            Some(ErrorCode::FrameTooLarge) => (CLOSE_TOO_BIG, "FRAME_TOO_LARGE".to_owned()),
            Some(code) => (
                1008,
                feige_protocol::json::render::code_name(code).to_owned(),
            ),
        };
        let close = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.ws.send(Message::Close(Some(close))).await;
    }

    /// Client → handler: a text frame becomes one request frame in `inb` (written to the
    /// pipe with the others read at once), or an answer at once.
    async fn inbound(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
        inb: &mut BytesMut,
        next_id: &mut u64,
    ) -> Step {
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                let msg = "binary frames are not accepted: send JSON text frames";
                let reply = ws_json::error(&serde_json::Value::Null, "", ErrorCode::Malformed, msg);
                return self.send(Message::Text(reply.into())).await;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Go,
            Some(Ok(Message::Close(_))) | None => return Step::ClientDone,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket read failed");
                return Step::ClientDone;
            }
        };
        if text.len() > self.limits.max_text {
            let reason = format!(
                "FRAME_TOO_LARGE: a frame of {} bytes exceeds the limit of {}",
                text.len(),
                self.limits.max_text
            );
            let close = CloseFrame {
                code: CLOSE_TOO_BIG,
                reason: reason.into(),
            };
            let _ = self.ws.send(Message::Close(Some(close))).await;
            return Step::Stop;
        }
        match ws_json::inbound(text.as_str(), self.limits.heartbeat_ms) {
            Inbound::Reply(reply) => self.send(Message::Text(reply.into())).await,
            Inbound::Request(request, waiting) => {
                let id = *next_id;
                *next_id += 1;
                self.pending.insert(id, waiting);
                frame::encode(&Envelope::request(id, request), inb);
                Step::Go
            }
        }
    }

    /// Sends one message at once.
    async fn send(&mut self, msg: Message) -> Step {
        match self.ws.send(msg).await {
            Ok(()) => Step::Go,
            Err(_) => Step::Stop,
        }
    }

    /// Handler → client: the whole frames in `out` become JSON text frames, then one flush.
    async fn outbound(&mut self, out: &mut BytesMut) -> Step {
        loop {
            match frame::decode(out, self.limits.max_text.saturating_mul(2)) {
                Ok(Some(env)) => {
                    if self.json.capacity() - self.json.len() < 512 {
                        self.json.reserve(JSON_BUFFER);
                    }
                    if !frame_json(env, &mut self.pending, &mut self.kicked, &mut self.json) {
                        continue;
                    }
                    // Shares the buffer; tungstenite copies the text out and drops it at once,
                    // so the buffer's room is taken again for the next frame.
                    let json = self.json.split().freeze();
                    let Ok(text) = Utf8Bytes::try_from(json) else {
                        continue;
                    };
                    if self.ws.feed(Message::Text(text)).await.is_err() {
                        return Step::Stop;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from the handler");
                    return Step::Stop;
                }
            }
        }
        if self.ws.flush().await.is_err() {
            return Step::Stop;
        }
        if out.is_empty() {
            *out = BytesMut::new();
        }
        // Likely idle next: hold no buffer.
        self.json = BytesMut::new();
        Step::Go
    }
}

/// Appends the JSON text of a frame from the handler to `out`, if it shows the client
/// anything (false: nothing written).
fn frame_json(
    env: Envelope,
    pending: &mut PendingMap,
    kicked: &mut Option<ErrorCode>,
    out: &mut BytesMut,
) -> bool {
    let Some(body) = env.body else {
        return false;
    };
    match body {
        Body::Response(r) => {
            let waiting = pending.remove(&env.request_id);
            match waiting {
                Some(p) => ws_json::answer_into(p, r.result, out),
                // An answer to no request (MALFORMED with request id 0).
                None => {
                    let (code, message) = match r.result {
                        Some(feige_protocol::ResponseResult::Error(e)) => (
                            ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Internal),
                            e.message,
                        ),
                        _ => (ErrorCode::Internal, "unexpected answer".to_owned()),
                    };
                    ws_json::error_into(out, &serde_json::Value::Null, "", code, &message);
                    true
                }
            }
        }
        Body::Push(pb::Push { kind: Some(kind) }) => {
            if let PushKind::Kicked(k) = &kind {
                *kicked = Some(ErrorCode::try_from(k.code).unwrap_or(ErrorCode::Internal));
            }
            ws_json::push_into(&kind, out)
        }
        _ => false,
    }
}
