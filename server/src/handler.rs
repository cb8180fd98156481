//! One task per connection: reads frames, hands each request to [`request::dispatch`], and
//! writes the answers and the outbox.
//!
//! The task owns its wire: a socket, or a WebSocket (`http::ws_link`). It waits for readability
//! before reserving a read buffer, so an idle connection holds no buffer. Responses produced
//! inline go to `wbuf`; acks, pushes and replies of requests served elsewhere (storage reads,
//! commits) arrive through the bounded outbox. Every wake-up writes everything pending with one
//! `write` call (a WebSocket: one flush).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use feige_protocol::frame::{self, FrameError};
use feige_protocol::{Envelope, ErrorCode};
use tokio::time::Instant;

use crate::connections::Transport;
use crate::error::RequestError;
use crate::http::ws_link::{Taken, WsLink};
use crate::request;
use crate::request::caller::{Conn, Flow, State};
use crate::session::{Outbox, OutboxReader};
use crate::socket::Socket;
use crate::Shared;

/// Read buffer reserved when the socket is readable.
const READ_CHUNK: usize = 8 * 1024;
/// A read of at least this many bytes that left more waiting is bulk: the thread then
/// yields its CPU before serving it (as the file workers do between their steps).
const BULK_READ: usize = 32 * 1024;
/// Bytes gathered from the outbox before a write.
const WRITE_BATCH: usize = 64 * 1024;
/// A write that makes no progress for this long drops the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the goodbye (the kicked push, a WebSocket's close frame) may wait for the peer.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// The connection task's state: the wire and read buffer, and the [`Conn`] that requests
/// work on (state, outbox, write buffer).
pub(crate) struct Handler {
    conn: Conn,
    wire: Wire,
    /// A socket's bytes read and not served yet (a WebSocket's requests wait in its link).
    rbuf: BytesMut,
    /// Whether requests are read, and since when a frame is unfinished (8 bytes: this is
    /// part of every idle connection's task).
    intake: Intake,
}

/// Where a connection's requests come from and its answers go.
enum Wire {
    /// Protobuf frames both ways. Shared with the outbox, which writes to it directly when
    /// the task holds nothing.
    Socket(Arc<Socket>),
    /// JSON text frames both ways: requests in, answers and pushes out.
    Ws(Box<WsLink>),
}

impl Wire {
    /// Ready when the wire may have something to read.
    fn poll_read_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Wire::Socket(s) => s.poll_read_ready(cx),
            Wire::Ws(link) => link.poll_read_ready(cx),
        }
    }
}

/// What the connection task does with incoming bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intake {
    /// Reading requests; `rbuf` holds no unfinished frame.
    Open,
    /// Reading requests; an unfinished frame began this many milliseconds after the
    /// connection's `last_frame`.
    Partial(u32),
    /// The output reached the low-water mark ([`OutboxReader::backlogged`]): no request is
    /// read or handled until it drains; whole frames may wait in `rbuf` meanwhile.
    Paused,
    /// Shutting down: no further request is read.
    Stopped,
}

/// Serves one connection until it ends, then drops `guards` (the slots it holds).
///
/// Not an `async fn`: the handler is built first and captured by the returned future, which
/// keeps it in place. An `async fn` would hold its arguments and the handler built from them
/// side by side for the connection's whole life (so would an `async` block around this
/// future), and every idle connection's task would carry both.
pub(crate) fn serve<G: Send + 'static>(
    shared: Arc<Shared>,
    stream: Socket,
    conn_id: u64,
    peer_addr: SocketAddr,
    guards: G,
) -> impl Future<Output = ()> + Send + 'static {
    let (tx, rx) = Outbox::bounded(shared.config.outbox_capacity, shared.config.outbox_bytes);
    let stream = Arc::new(stream);
    rx.attach(stream.clone());
    let conn = Conn::new(shared, conn_id, peer_addr, tx, rx);
    serve_wire(conn, Wire::Socket(stream), guards)
}

/// [`serve`] for a WebSocket connection: requests read from `link`, answers and pushes
/// written to it, a close frame at the end.
pub(crate) fn serve_ws<G: Send + 'static>(
    shared: Arc<Shared>,
    link: Box<WsLink>,
    (conn_id, peer_addr): (u64, SocketAddr),
    guards: G,
) -> impl Future<Output = ()> + Send + 'static {
    let (tx, rx) = Outbox::bounded(shared.config.outbox_capacity, shared.config.outbox_bytes);
    let mut conn = Conn::new(shared, conn_id, peer_addr, tx, rx);
    conn.transport = Transport::Ws;
    serve_wire(conn, Wire::Ws(link), guards)
}

fn serve_wire<G: Send + 'static>(
    conn: Conn,
    wire: Wire,
    guards: G,
) -> impl Future<Output = ()> + Send + 'static {
    let mut h = Handler {
        conn,
        wire,
        rbuf: BytesMut::new(),
        intake: Intake::Open,
    };
    async move {
        let end = h.run().await;
        h.conn.leave_sessions();
        if let Wire::Ws(link) = &mut h.wire {
            let _ = tokio::time::timeout(GOODBYE_WAIT, link.close()).await;
        }
        match end {
            Ok(why) => tracing::debug!(why, "connection closed"),
            Err(e) => tracing::info!(error = %e, "connection dropped"),
        }
        drop(guards);
    }
}

impl Handler {
    async fn run(&mut self) -> std::io::Result<&'static str> {
        // Few locals: they live in every idle connection's task. `last_frame` is when the last
        // whole frame arrived while logged in (before the first login: the connect time); the
        // idle and login deadlines count from it.
        let mut last_frame = Instant::now();
        let sleep = tokio::time::sleep_until(self.deadline(last_frame));
        tokio::pin!(sleep);
        if self.queued() > 0 && Box::pin(self.serve_buffered(&mut last_frame)).await? == Flow::Close
        {
            // A WebSocket's first request, the gateway's Hello.
            return Ok("closed after error");
        }
        loop {
            if self.intake == Intake::Paused && !self.conn.rx.backlogged() {
                // The output drained below the mark: serve the frames that waited.
                self.intake = Intake::Open;
                if Box::pin(self.serve_buffered(&mut last_frame)).await? == Flow::Close {
                    return Ok("closed after error");
                }
            }
            tokio::select! {
                biased;
                code = self.conn.rx.control().kicked() => {
                    if code == ErrorCode::SlowConsumer {
                        self.conn.shared.metrics.slow_consumer();
                    }
                    Box::pin(self.say_goodbye(code)).await;
                    return Ok("kicked");
                }
                // One shutdown token at a time (`stop_reading` is a child of `close`).
                _ = if self.intake != Intake::Stopped { self.conn.shared.stop_reading.cancelled() } else { self.conn.shared.close.cancelled() } => {
                    if self.conn.shared.close.is_cancelled() {
                        self.conn.rx.drain_into(&mut self.conn.wbuf, usize::MAX);
                        Box::pin(self.say_goodbye(ErrorCode::ShuttingDown)).await;
                        return Ok("server shutdown");
                    }
                    self.intake = Intake::Stopped;
                }
                () = self.conn.rx.ready() => {
                    self.flush().await?;
                }
                // `poll_read_ready` keeps the waker in the socket's registration: no waiter
                // node in this task's state.
                r = std::future::poll_fn(|cx| self.wire.poll_read_ready(cx)), if matches!(self.intake, Intake::Open | Intake::Partial(_)) => {
                    r?;
                    if self.conn.rx.backlogged() {
                        // Backpressure: read nothing more until the output drains.
                        self.intake = Intake::Paused;
                        continue;
                    }
                    if let Some(why) = self.read(&mut last_frame).await? {
                        return Ok(why);
                    }
                    // A login, or a frame left unfinished, may bring the deadline
                    // forward; a later one is taken up when the sleep fires.
                    let due = self.deadline(last_frame);
                    if due < sleep.deadline() {
                        sleep.as_mut().reset(due);
                    }
                }
                () = &mut sleep => {
                    let now = Instant::now();
                    let config = &self.conn.shared.config;
                    let timeout = |ms: u64| Duration::from_millis(ms);
                    if self.frame_due(last_frame).is_some_and(|t| t <= now) {
                        Box::pin(self.say_goodbye(ErrorCode::FrameTimeout)).await;
                        return Ok("frame timeout");
                    }
                    if !self.conn.logged_in() {
                        if last_frame + timeout(config.login_timeout_ms) <= now {
                            Box::pin(self.say_goodbye(ErrorCode::LoginTimeout)).await;
                            return Ok("login timeout");
                        }
                    } else if last_frame + config.idle_timeout() <= now {
                        Box::pin(self.say_goodbye(ErrorCode::IdleTimeout)).await;
                        return Ok("idle timeout");
                    }
                    sleep.as_mut().reset(self.deadline(last_frame));
                }
            }
        }
    }

    /// Reads what the wire has and serves the whole frames; `Some` says why the connection
    /// ends.
    async fn read(&mut self, last_frame: &mut Instant) -> std::io::Result<Option<&'static str>> {
        let max = self.max_frame_len();
        let stream = match &mut self.wire {
            Wire::Socket(s) => s,
            Wire::Ws(link) => {
                let taken = link.take_in().await;
                if taken == Taken::Closed {
                    return Ok(Some("frame too large"));
                }
                if Box::pin(self.serve_buffered(last_frame)).await? == Flow::Close {
                    return Ok(Some("closed after error"));
                }
                return Ok((taken == Taken::ClientDone).then_some("peer closed"));
            }
        };
        if let Some(missing) = frame::missing_large(&self.rbuf, max) {
            self.rbuf.reserve(missing);
        } else if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(READ_CHUNK);
        }
        match stream.try_read_drained(&mut self.rbuf) {
            Ok((0, _)) => {
                if self.rbuf.is_empty() {
                    return Ok(Some("peer closed"));
                }
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "peer closed mid-frame",
                ))
            }
            Ok((n, drained)) => {
                if !drained && n >= BULK_READ {
                    // A transfer streams in and this thread would read on for its whole
                    // scheduler slice: a thread a chat message waits on (the writer, the
                    // router, the other reactor thread) that woke on this CPU runs first.
                    // Returns at once when nothing else is runnable here.
                    std::thread::yield_now();
                }
                // A full buffer keeps the readiness: the task reads again at once, into the
                // same buffer (one allocation per burst). A short read drained the socket:
                // once its frames are served, hold no buffer while waiting for the next one,
                // unless it holds part of a frame.
                if Box::pin(self.serve_buffered(last_frame)).await? == Flow::Close {
                    return Ok(Some("closed after error"));
                }
                if drained && self.rbuf.is_empty() {
                    self.rbuf = BytesMut::new();
                }
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Nothing more for now (a burst that filled the buffer exactly ends here):
                // hold no buffer while waiting for the next frame, unless it holds part of one.
                if self.rbuf.is_empty() {
                    self.rbuf = BytesMut::new();
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Requests read and not served: a socket's bytes, or a WebSocket's requests.
    fn queued(&self) -> usize {
        match &self.wire {
            Wire::Socket(_) => self.rbuf.len(),
            Wire::Ws(link) => link.queued(),
        }
    }

    /// The next whole request read, if any.
    fn next_frame(&mut self, max: usize) -> Result<Option<Envelope>, FrameError> {
        match &mut self.wire {
            Wire::Socket(_) => frame::decode(&mut self.rbuf, max),
            Wire::Ws(link) => link.next_request(max),
        }
    }

    /// The longest frame taken now: `max_frame_len`, or before login
    /// `max_prelogin_frame_len`.
    fn max_frame_len(&self) -> usize {
        let config = &self.conn.shared.config;
        if self.conn.logged_in() {
            config.max_frame_len
        } else {
            config.max_prelogin_frame_len
        }
    }

    /// When the connection is next due to be closed unless a frame arrives: the login or idle
    /// deadline, or the unfinished frame's.
    fn deadline(&self, last_frame: Instant) -> Instant {
        let config = &self.conn.shared.config;
        let state = if self.conn.logged_in() {
            last_frame + config.idle_timeout()
        } else {
            last_frame + Duration::from_millis(config.login_timeout_ms)
        };
        match self.frame_due(last_frame) {
            Some(t) => state.min(t),
            None => state,
        }
    }

    /// When the unfinished frame in `rbuf`, if any, is due to be complete.
    fn frame_due(&self, last_frame: Instant) -> Option<Instant> {
        match self.intake {
            Intake::Partial(ms) => Some(
                last_frame
                    + Duration::from_millis(
                        u64::from(ms) + self.conn.shared.config.frame_timeout_ms,
                    ),
            ),
            _ => None,
        }
    }

    /// Handles the whole frames in `rbuf` (until the output reaches the low-water mark) and
    /// writes the answers; notes when the last whole frame and the unfinished one arrived.
    /// Boxed by the caller: the request futures are large, and an idle connection's task
    /// should not carry their space.
    async fn serve_buffered(&mut self, last_frame: &mut Instant) -> std::io::Result<Flow> {
        let before = self.queued();
        let was_logged_in = self.conn.logged_in();
        // Responses go to `wbuf` first; `flush` releases.
        self.conn.rx.hold();
        let flow = self.process_frames().await;
        let now = Instant::now();
        if self.queued() < before {
            // Idle means no whole frame: bytes trickling into one do not count.
            if was_logged_in || self.conn.logged_in() {
                *last_frame = now;
            }
            if self.intake != Intake::Paused {
                self.intake = Intake::Open;
            }
        }
        if self.intake == Intake::Open && !self.rbuf.is_empty() {
            // A frame begins; its start is kept relative to `last_frame` (never later).
            let ms = now.saturating_duration_since(*last_frame).as_millis();
            self.intake = Intake::Partial(u32::try_from(ms).unwrap_or(u32::MAX));
        }
        self.flush().await?;
        Ok(flow)
    }

    /// Decodes and handles the whole frames in the read buffer; stops early, leaving them
    /// there, when a reply's reservation brought the output to the low-water mark. Before
    /// login a frame may be at most `max_prelogin_frame_len`.
    async fn process_frames(&mut self) -> Flow {
        loop {
            if self.intake == Intake::Paused {
                return Flow::Continue;
            }
            match self.next_frame(self.max_frame_len()) {
                Ok(Some(env)) => match request::dispatch(&mut self.conn, env).await {
                    Flow::Continue => {}
                    Flow::Pause => self.intake = Intake::Paused,
                    Flow::Close => return Flow::Close,
                },
                Ok(None) => return Flow::Continue,
                Err(e @ FrameError::TooLarge { .. }) => {
                    self.conn
                        .push_kicked(ErrorCode::FrameTooLarge, e.to_string());
                    return Flow::Close;
                }
                Err(e @ FrameError::Malformed(_)) => {
                    let e = RequestError::new(ErrorCode::Malformed, e.to_string());
                    self.conn.respond(0, Err(e));
                    if matches!(self.conn.state, State::Fresh) {
                        return Flow::Close;
                    }
                }
            }
        }
    }

    /// Sends a Kicked push (after anything already pending) and gives up quickly if the peer
    /// does not read.
    async fn say_goodbye(&mut self, code: ErrorCode) {
        self.conn.rx.hold();
        let reason = self.conn.shared.connections.take_reason(self.conn.conn_id);
        let reason = reason.unwrap_or_else(|| code.describe().to_owned());
        self.conn.push_kicked(code, reason);
        match &mut self.wire {
            Wire::Socket(stream) => {
                let _ = tokio::time::timeout(GOODBYE_WAIT, async {
                    let _ = write_all(stream, &self.conn.wbuf).await;
                    let _ = stream.shutdown_write();
                })
                .await;
            }
            Wire::Ws(link) => {
                let _ = tokio::time::timeout(GOODBYE_WAIT, link.send(&mut self.conn.wbuf)).await;
            }
        }
        self.conn.wbuf.clear();
    }

    /// Writes the write buffer plus whatever the outbox holds, in as few writes as possible.
    async fn flush(&mut self) -> std::io::Result<()> {
        let stream = match &mut self.wire {
            Wire::Socket(s) => s,
            Wire::Ws(link) => return flush_ws(&mut self.conn, link).await,
        };
        if self.conn.wbuf.is_empty() {
            // Fast path, with no response of its own pending: gather the queued frames in this
            // thread's scratch buffer and write them now. Only what the socket does not take
            // is copied into the connection's own buffer, to wait for writability; so a busy
            // connection allocates no write buffer per batch, and an idle one holds none.
            let (rx, wbuf) = (&self.conn.rx, &mut self.conn.wbuf);
            let drained = with_scratch(|scratch| write_drained(stream, rx, scratch, wbuf))?;
            if !drained || self.conn.wbuf.is_empty() {
                // Nothing queued, or all of it written. Frames queued meanwhile keep the task
                // busy, and ready to flush again.
                self.conn.rx.release();
                return Ok(());
            }
            // The socket is full: wait for it below, with the rest in `wbuf`.
        }
        self.conn.rx.drain_into(&mut self.conn.wbuf, WRITE_BATCH);
        if self.conn.wbuf.is_empty() {
            self.conn.rx.release();
            return Ok(());
        }
        let write = write_all(stream, &self.conn.wbuf);
        written(&self.conn.rx, &self.conn.shared, write).await?;
        self.conn.wbuf.clear();
        if self.conn.rx.release() {
            // Likely idle next: hold no buffer.
            self.conn.wbuf = BytesMut::new();
        }
        Ok(())
    }
}

/// [`Handler::flush`] for a WebSocket: the write buffer and a batch of the outbox become
/// text frames, sent and flushed at once.
async fn flush_ws(conn: &mut Conn, link: &mut WsLink) -> std::io::Result<()> {
    conn.rx.drain_into(&mut conn.wbuf, WRITE_BATCH);
    if !conn.wbuf.is_empty() || link.has_replies() {
        let write = link.send(&mut conn.wbuf);
        written(&conn.rx, &conn.shared, write).await?;
    }
    conn.wbuf.clear();
    if conn.rx.release() {
        // Likely idle next: hold no buffer.
        conn.wbuf = BytesMut::new();
    }
    Ok(())
}

/// Waits for `write` for at most [`WRITE_TIMEOUT`], or until the connection is kicked.
async fn written(
    rx: &OutboxReader,
    shared: &Shared,
    write: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    tokio::select! {
        r = tokio::time::timeout(WRITE_TIMEOUT, write) => {
            r.map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))?
        }
        code = rx.control().kicked() => {
            if code == ErrorCode::SlowConsumer {
                shared.metrics.slow_consumer();
            }
            Err(std::io::Error::other(format!("kicked while writing: {code:?}")))
        }
    }
}

thread_local! {
    /// The write scratch buffer of this runtime thread (see [`Handler::flush`]).
    static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// A scratch buffer larger than this (after a very large frame) is given back after use.
const SCRATCH_KEEP: usize = 4 * WRITE_BATCH;

/// Runs `f` with this thread's scratch buffer, then bounds what the buffer keeps.
fn with_scratch<R>(f: impl FnOnce(&mut BytesMut) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let r = f(&mut scratch);
        scratch.clear();
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = BytesMut::new();
        }
        r
    })
}

/// Drains queued frames into the empty `scratch` and writes them without waiting; what the
/// socket does not take goes into `rest`. Returns whether any frame was drained.
fn write_drained(
    stream: &Socket,
    rx: &OutboxReader,
    scratch: &mut BytesMut,
    rest: &mut BytesMut,
) -> std::io::Result<bool> {
    rx.drain_into(scratch, WRITE_BATCH);
    if scratch.is_empty() {
        return Ok(false);
    }
    let mut done = 0;
    while done < scratch.len() {
        match stream.try_write(&scratch[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    rest.extend_from_slice(&scratch[done..]);
    Ok(true)
}

/// Writes all of `buf` through a shared reference (the outbox may write to the same socket
/// between two of these calls, never during one). Waits through `poll_write_ready`, which keeps
/// the waker in the socket's registration: this future is part of every connection task's
/// state, and a `writable()` future would add a waiter node to it.
fn write_all<'a>(
    stream: &'a Socket,
    mut buf: &'a [u8],
) -> impl Future<Output = std::io::Result<()>> + 'a {
    std::future::poll_fn(move |cx| {
        while !buf.is_empty() {
            std::task::ready!(stream.poll_write_ready(cx))?;
            match stream.try_write(buf) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => buf = &buf[n..],
                // The failed try cleared the readiness: the next poll waits for it.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-thread write buffer is reused empty between batches, and one grown past
    /// `SCRATCH_KEEP` by a very large frame is given back, so a thread keeps at most that.
    #[test]
    fn the_scratch_buffer_is_reused_and_bounded() {
        with_scratch(|s| s.extend_from_slice(&[7; 1000]));
        let kept = with_scratch(|s| (s.len(), s.capacity()));
        assert_eq!(kept.0, 0, "handed over empty");
        assert!(kept.1 >= 1000, "its storage is reused");
        with_scratch(|s| s.extend_from_slice(&vec![7; SCRATCH_KEEP + 1]));
        assert_eq!(
            with_scratch(|s| s.capacity()),
            0,
            "a grown buffer is given back"
        );
    }
}
