//! A WebSocket as the connection handler's wire (`handler::Wire::Ws`): text frames in become
//! requests ([`WsLink::next_request`]), the answer and push frames the handler writes become
//! text frames out ([`WsLink::send`]). The handler serves the WebSocket itself, so requests
//! and answers cross no pipe and no second protobuf encoding on the way in.
//!
//! The link holds the text frames read and not served yet (at most `INBOUND_BATCH` bytes,
//! plus one frame: the handler reads no more until it has served them, and reads
//! nothing while its output is backlogged), and, while the handler writes, the JSON of one
//! batch of its output.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::task::{Context, Poll};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::{Buf, BytesMut};
use feige_protocol::frame::{self, FrameError};
use feige_protocol::json::peek::{peek, Peeked};
use feige_protocol::{pb, Body, Envelope, ErrorCode, PushKind, ResponseResult};
use futures_util::{FutureExt, SinkExt, StreamExt};
use prost::Message as _;

use super::ws_json::{self, Inbound, Pending};

/// Bytes of text frames the link reads at once before the handler serves them.
const INBOUND_BATCH: usize = 16 * 1024;
/// Room the link takes for the JSON of a burst of frames to the client.
const JSON_BUFFER: usize = 4 * 1024;
/// WebSocket close code of a message over the size limit (RFC 6455 "message too big").
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// What the link enforces and tells.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// Largest text frame, in bytes (`max_frame_len`).
    pub max_text: usize,
    /// Told to the client in `login`'s answer.
    pub heartbeat_ms: u64,
}

/// How a read of the WebSocket ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Requests (or nothing) to serve; go on reading.
    Go,
    /// The client closed or is gone: serve what was read, then end.
    ClientDone,
    /// The client broke a rule and the WebSocket is closed already: end now.
    Closed,
}

/// One WebSocket connection's side of the handler.
pub(crate) struct WsLink {
    ws: WebSocket,
    limits: Limits,
    /// A message polled by [`WsLink::poll_read_ready`] and not taken yet (`None` inside: the
    /// stream ended).
    arrived: Option<Option<Result<Message, axum::Error>>>,
    /// The gateway's Hello, until the handler takes it as the first request.
    hello: Option<Envelope>,
    /// Text frames read and not handed to the handler yet (read into requests as it takes
    /// them: a queue of small handles rather than of large requests).
    texts: VecDeque<Utf8Bytes>,
    /// Requests handed to the handler and not answered yet, by request id.
    pending: HashMap<u64, Pending>,
    next_id: u64,
    /// Answers made by the link itself (a refused frame), sent with the next batch.
    replies: Vec<String>,
    /// The code of the handler's last `kicked` push: the close frame names it.
    kicked: Option<ErrorCode>,
    /// The JSON of the frames being sent, each split off in turn.
    json: BytesMut,
    /// A close frame was sent.
    closed: bool,
}

impl WsLink {
    /// A link over `ws` whose first request is the gateway's Hello: the connection starts
    /// in Greeted, and the client's first command is `login` (or `register`).
    pub(crate) fn new(ws: WebSocket, limits: Limits) -> WsLink {
        let (hello, greeting) = Pending::hello();
        let mut pending = HashMap::new();
        pending.insert(1, greeting);
        WsLink {
            ws,
            limits,
            arrived: None,
            hello: Some(Envelope::request(1, hello)),
            texts: VecDeque::new(),
            pending,
            next_id: 2,
            replies: Vec::new(),
            kicked: None,
            json: BytesMut::new(),
            closed: false,
        }
    }

    /// Ready when a message (or the end of the stream) has arrived.
    pub(crate) fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.arrived.is_none() {
            let msg = std::task::ready!(self.ws.poll_next_unpin(cx));
            self.arrived = Some(msg);
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the message that arrived, and those already there (up to `INBOUND_BATCH`
    /// bytes), for [`WsLink::next_request`].
    pub(crate) async fn take_in(&mut self) -> Taken {
        let mut read = 0;
        loop {
            let msg = match self.arrived.take() {
                Some(msg) => msg,
                None => match self.ws.next().now_or_never() {
                    Some(msg) => msg,
                    None => return Taken::Go,
                },
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Binary(_))) => {
                    let msg = "binary frames are not accepted: send JSON text frames";
                    let null = serde_json::Value::Null;
                    let reply = ws_json::error(&null, "", ErrorCode::Malformed, msg);
                    self.replies.push(reply);
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => return Taken::ClientDone,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket read failed");
                    return Taken::ClientDone;
                }
            };
            if text.len() > self.limits.max_text {
                let reason = format!(
                    "FRAME_TOO_LARGE: a frame of {} bytes exceeds the limit of {}",
                    text.len(),
                    self.limits.max_text
                );
                self.close_with(CLOSE_TOO_BIG, reason).await;
                return Taken::Closed;
            }
            read += text.len();
            self.texts.push_back(text);
            if read >= INBOUND_BATCH {
                return Taken::Go;
            }
        }
    }

    /// How many frames wait to be served.
    pub(crate) fn queued(&self) -> usize {
        self.texts.len() + usize::from(self.hello.is_some())
    }

    /// The next request to serve; refused as a frame over `max` bytes would be (its
    /// protobuf size is what a TCP client's frame of it would declare).
    ///
    /// # Errors
    /// [`FrameError::TooLarge`]: the request is over `max` bytes; the handler closes.
    pub(crate) fn next_request(&mut self, max: usize) -> Result<Option<Envelope>, FrameError> {
        let env = match self.hello.take() {
            Some(hello) => hello,
            None => loop {
                let Some(text) = self.texts.pop_front() else {
                    if self.texts.capacity() > 0 {
                        // Likely idle next: hold no buffer.
                        self.texts = VecDeque::new();
                    }
                    return Ok(None);
                };
                match ws_json::inbound(text.as_str(), self.limits.heartbeat_ms) {
                    // A refused frame is answered with the next batch.
                    Inbound::Reply(reply) => self.replies.push(reply),
                    Inbound::Request(request, waiting) => {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.pending.insert(id, waiting);
                        break Envelope::request(id, request);
                    }
                }
            },
        };
        let len = env.encoded_len();
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        Ok(Some(env))
    }

    /// Whether the link has answers of its own to send.
    pub(crate) fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }

    /// Sends the link's own answers, then the whole protobuf frames in `frames` (answers and
    /// pushes from the handler) as JSON text frames, then flushes. `frames` is left empty.
    /// `send_message`'s answer and a plain message's push are read from their bytes
    /// (`json::peek`), other frames decoded.
    ///
    /// # Errors
    /// The WebSocket cannot be written to, or a frame does not decode.
    pub(crate) async fn send(&mut self, frames: &mut BytesMut) -> io::Result<()> {
        for reply in std::mem::take(&mut self.replies) {
            self.ws
                .feed(Message::Text(reply.into()))
                .await
                .map_err(io::Error::other)?;
        }
        loop {
            let total = match frame::check(frames, usize::MAX) {
                Ok(Some(total)) => total,
                Ok(None) => break,
                Err(e) => return Err(io::Error::other(e)),
            };
            if self.json.capacity() - self.json.len() < 512 {
                self.json.reserve(JSON_BUFFER);
            }
            let payload = &frames[frame::HEADER_LEN..total];
            let wrote = match peek(payload) {
                Some(Peeked::Message(m)) if ws_json::plain_push_into(&m, &mut self.json) => true,
                Some(Peeked::SendOk(rid, ok)) if self.pending.contains_key(&rid) => {
                    let result = Some(ResponseResult::Send(ok));
                    self.pending
                        .remove(&rid)
                        .is_some_and(|p| ws_json::answer_into(p, result, &mut self.json))
                }
                _ => {
                    let env = Envelope::decode(payload).map_err(io::Error::other)?;
                    frame_json(env, &mut self.pending, &mut self.kicked, &mut self.json)
                }
            };
            frames.advance(total);
            if !wrote {
                continue;
            }
            // Shares the buffer; tungstenite copies the text out and drops it at once, so the
            // buffer's room is taken again for the next frame.
            let json = self.json.split().freeze();
            let Ok(text) = Utf8Bytes::try_from(json) else {
                continue;
            };
            self.ws
                .feed(Message::Text(text))
                .await
                .map_err(io::Error::other)?;
        }
        // Likely idle next: hold no buffer.
        self.json = BytesMut::new();
        self.ws.flush().await.map_err(io::Error::other)
    }

    /// Closes the WebSocket, naming the code of the handler's `kicked` push if it sent one
    /// (1000 otherwise); nothing if a close frame was sent already.
    pub(crate) async fn close(&mut self) {
        let (code, reason) = match self.kicked {
            None => (1000, String::new()),
            Some(ErrorCode::ShuttingDown) => (1001, "SHUTTING_DOWN".to_owned()),
            Some(ErrorCode::FrameTooLarge) => (CLOSE_TOO_BIG, "FRAME_TOO_LARGE".to_owned()),
            Some(code) => (
                1008,
                feige_protocol::json::render::code_name(code).to_owned(),
            ),
        };
        self.close_with(code, reason).await;
    }

    async fn close_with(&mut self, code: u16, reason: String) {
        if self.closed {
            return;
        }
        self.closed = true;
        let close = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.ws.send(Message::Close(Some(close))).await;
    }
}

/// Appends the JSON text of a frame from the handler to `out`, if it shows the client
/// anything (false: nothing written).
fn frame_json(
    env: Envelope,
    pending: &mut HashMap<u64, Pending>,
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
