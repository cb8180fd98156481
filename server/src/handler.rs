//! One task per connection: reads frames, dispatches requests, and writes the outbox.
//!
//! The task owns the socket. It waits for readability before reserving a read buffer, so an idle
//! connection holds no buffer. Responses produced inline go to `wbuf`; acks, pushes and replies of
//! requests served elsewhere (storage reads, commits) arrive through the bounded outbox. Every
//! wake-up writes everything pending with one `write` call.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use feige_protocol::frame::{self, FrameError};
use feige_protocol::{pb, Body, Envelope, ErrorCode, PushKind, RequestKind, ResponseResult};
use feige_storage::UserId;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::RequestError;
use crate::session::{Outbox, OutboxReader, Peer};
use crate::socket::Socket;
use crate::Shared;

/// Requests served off the connection task (reads) that one connection may have in flight.
const MAX_INFLIGHT: usize = 32;
/// Read buffer reserved when the socket is readable.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes gathered from the outbox before a write.
const WRITE_BATCH: usize = 64 * 1024;
/// Outbox room reserved for a reply known to be small (WhoAmI, Ack).
const SMALL_REPLY: usize = 4 * 1024;
/// A write that makes no progress for this long drops the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum State {
    /// Connected; waiting for Hello.
    Fresh,
    /// Hello done; not logged in.
    Greeted,
    /// Logged in.
    LoggedIn(Login),
}

/// The session a connection is logged in as.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub user: UserId,
    pub device: String,
    pub token_hash: Vec<u8>,
}

/// Whether to keep the connection after a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

pub(crate) struct Handler {
    pub shared: Arc<Shared>,
    pub conn_id: u64,
    /// The peer's address, for per-address limits and the session list.
    pub peer_addr: SocketAddr,
    /// Shared with the outbox, which writes to it directly when the task holds nothing.
    stream: Arc<Socket>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    pub tx: Outbox,
    rx: OutboxReader,
    pub state: State,
    inflight: Option<Arc<Semaphore>>,
    /// Whether requests are read, and since when a frame is unfinished (8 bytes: this is
    /// part of every idle connection's task).
    intake: Intake,
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
    let mut h = Handler {
        shared,
        conn_id,
        peer_addr,
        stream,
        rbuf: BytesMut::new(),
        wbuf: BytesMut::new(),
        tx,
        rx,
        state: State::Fresh,
        inflight: None,
        intake: Intake::Open,
    };
    async move {
        let end = h.run().await;
        h.leave_sessions();
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
        loop {
            if self.intake == Intake::Paused && !self.rx.backlogged() {
                // The output drained below the mark: serve the frames that waited.
                self.intake = Intake::Open;
                if Box::pin(self.serve_buffered(&mut last_frame)).await? == Flow::Close {
                    return Ok("closed after error");
                }
            }
            tokio::select! {
                biased;
                code = self.rx.control().kicked() => {
                    Box::pin(self.say_goodbye(code)).await;
                    return Ok("kicked");
                }
                // One shutdown token at a time (`stop_reading` is a child of `close`).
                _ = if self.intake != Intake::Stopped { self.shared.stop_reading.cancelled() } else { self.shared.close.cancelled() } => {
                    if self.shared.close.is_cancelled() {
                        self.rx.drain_into(&mut self.wbuf, usize::MAX);
                        Box::pin(self.say_goodbye(ErrorCode::ShuttingDown)).await;
                        return Ok("server shutdown");
                    }
                    self.intake = Intake::Stopped;
                }
                () = self.rx.ready() => {
                    self.flush().await?;
                }
                // `poll_read_ready` keeps the waker in the socket's registration: no waiter
                // node in this task's state.
                r = std::future::poll_fn(|cx| self.stream.poll_read_ready(cx)), if matches!(self.intake, Intake::Open | Intake::Partial(_)) => {
                    r?;
                    if self.rx.backlogged() {
                        // Backpressure: read nothing more until the output drains.
                        self.intake = Intake::Paused;
                        continue;
                    }
                    if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                        self.rbuf.reserve(READ_CHUNK);
                    }
                    match self.stream.try_read_buf(&mut self.rbuf) {
                        Ok(0) => {
                            if self.rbuf.is_empty() {
                                return Ok("peer closed");
                            }
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "peer closed mid-frame",
                            ));
                        }
                        Ok(_) => {
                            // The buffer is kept for the read that follows: readiness stays
                            // set until a read would block, so the task reads again at once,
                            // and that read gives the buffer back if it finds nothing (one
                            // allocation per burst instead of two).
                            if Box::pin(self.serve_buffered(&mut last_frame)).await? == Flow::Close {
                                return Ok("closed after error");
                            }
                            // A login, or a frame left unfinished, may bring the deadline
                            // forward; a later one is taken up when the sleep fires.
                            let due = self.deadline(last_frame);
                            if due < sleep.deadline() {
                                sleep.as_mut().reset(due);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            // Nothing more for now (readiness is only cleared by a read that
                            // would block, so every burst ends here): hold no buffer while
                            // waiting for the next frame, unless it holds part of one.
                            if self.rbuf.is_empty() {
                                self.rbuf = BytesMut::new();
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                () = &mut sleep => {
                    let now = Instant::now();
                    let config = &self.shared.config;
                    let timeout = |ms: u64| Duration::from_millis(ms);
                    if self.frame_due(last_frame).is_some_and(|t| t <= now) {
                        Box::pin(self.say_goodbye(ErrorCode::FrameTimeout)).await;
                        return Ok("frame timeout");
                    }
                    if !matches!(self.state, State::LoggedIn(_)) {
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

    /// When the connection is next due to be closed unless a frame arrives: the login or idle
    /// deadline, or the unfinished frame's.
    fn deadline(&self, last_frame: Instant) -> Instant {
        let config = &self.shared.config;
        let state = if matches!(self.state, State::LoggedIn(_)) {
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
                    + Duration::from_millis(u64::from(ms) + self.shared.config.frame_timeout_ms),
            ),
            _ => None,
        }
    }

    /// Handles the whole frames in `rbuf` (until the output reaches the low-water mark) and
    /// writes the answers; notes when the last whole frame and the unfinished one arrived.
    /// Boxed by the caller: the request futures are large, and an idle connection's task
    /// should not carry their space.
    async fn serve_buffered(&mut self, last_frame: &mut Instant) -> std::io::Result<Flow> {
        let before = self.rbuf.len();
        let was_logged_in = matches!(self.state, State::LoggedIn(_));
        // Responses go to `wbuf` first; `flush` releases.
        self.rx.hold();
        let flow = self.process_frames().await;
        let now = Instant::now();
        if self.rbuf.len() < before {
            // Idle means no whole frame: bytes trickling into one do not count.
            if was_logged_in || matches!(self.state, State::LoggedIn(_)) {
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
            let config = &self.shared.config;
            let max = if matches!(self.state, State::LoggedIn(_)) {
                config.max_frame_len
            } else {
                config.max_prelogin_frame_len
            };
            match frame::decode(&mut self.rbuf, max) {
                Ok(Some(env)) => {
                    if self.handle(env).await == Flow::Close {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e @ FrameError::TooLarge { .. }) => {
                    self.push_kicked(ErrorCode::FrameTooLarge, e.to_string());
                    return Flow::Close;
                }
                Err(e @ FrameError::Malformed(_)) => {
                    self.respond(
                        0,
                        Err(RequestError::new(ErrorCode::Malformed, e.to_string())),
                    );
                    if matches!(self.state, State::Fresh) {
                        return Flow::Close;
                    }
                }
            }
        }
    }

    /// Dispatches one envelope.
    async fn handle(&mut self, env: Envelope) -> Flow {
        let rid = env.request_id;
        let kind = match env.body {
            Some(Body::Request(pb::Request { kind: Some(kind) })) => kind,
            _ => {
                let fresh = matches!(self.state, State::Fresh);
                self.respond(
                    rid,
                    Err(RequestError::new(
                        ErrorCode::UnknownRequest,
                        "unknown request kind (or not a request)",
                    )),
                );
                return if fresh { Flow::Close } else { Flow::Continue };
            }
        };
        match (&self.state, kind) {
            (State::Fresh, RequestKind::Hello(h)) => return self.hello(rid, h).await,
            (State::Fresh, _) => {
                self.respond(
                    rid,
                    Err(RequestError::new(
                        ErrorCode::HelloRequired,
                        "the first request must be Hello",
                    )),
                );
                return Flow::Close;
            }
            (_, RequestKind::Hello(_)) => {
                let e = RequestError::new(
                    ErrorCode::AlreadyLoggedIn,
                    "Hello was already sent on this connection",
                );
                self.respond(rid, Err(e));
            }
            (_, RequestKind::Ping(p)) => {
                self.respond(rid, Ok(ResponseResult::Pong(pb::Pong { nonce: p.nonce })));
            }
            (_, RequestKind::Register(r)) => {
                let result = self.register(r).await;
                self.respond(rid, result);
            }
            (State::Greeted, RequestKind::Login(l)) => {
                let result = self.login(l).await;
                return self.answer_session(rid, result.map(ResponseResult::Session));
            }
            (State::Greeted, RequestKind::Resume(r)) => {
                let result = self.resume(r).await;
                return self.answer_session(rid, result.map(ResponseResult::Session));
            }
            (State::LoggedIn(_), RequestKind::Login(_) | RequestKind::Resume(_)) => {
                let e = RequestError::new(
                    ErrorCode::AlreadyLoggedIn,
                    "this connection is already logged in",
                );
                self.respond(rid, Err(e));
            }
            (State::Greeted, _) => {
                self.respond(
                    rid,
                    Err(RequestError::new(ErrorCode::NotLoggedIn, "not logged in")),
                );
            }
            // The hot path: a message needs only the sender's id, not a copy of the login.
            (State::LoggedIn(login), RequestKind::SendMessage(m)) => {
                let sender = login.user;
                let now = Instant::now();
                if let Err(wait) = self.shared.limits.send(sender, self.peer_addr.ip(), now) {
                    let e = RequestError::rate_limited("sending too fast", wait);
                    self.respond(rid, Err(e));
                } else if let Err(e) = self.send_message(rid, sender, m).await {
                    self.respond(rid, Err(e));
                }
            }
            (State::LoggedIn(login), kind) => {
                let login = login.clone();
                return self.logged_in(rid, login, kind).await;
            }
        }
        Flow::Continue
    }

    /// Requests that need a session.
    async fn logged_in(&mut self, rid: u64, login: Login, kind: RequestKind) -> Flow {
        match kind {
            RequestKind::Logout(_) => {
                let result = self.logout(&login).await;
                self.respond(rid, result);
            }
            RequestKind::Whoami(_) => {
                let store = self.shared.store.clone();
                self.spawn_reply_within(rid, SMALL_REPLY, async move {
                    match store.user_by_id(login.user).await? {
                        Some(u) => Ok(ResponseResult::Profile(crate::convert::profile(&u))),
                        None => Err(RequestError::new(
                            ErrorCode::NotFound,
                            "user no longer exists",
                        )),
                    }
                })
                .await;
            }
            RequestKind::Sync(s) => {
                let fut = crate::request::message::sync(self.shared.clone(), login, s);
                self.spawn_reply(rid, fut).await;
            }
            RequestKind::Ack(a) => {
                let fut = crate::request::message::ack(self.shared.clone(), login, a);
                self.spawn_reply_within(rid, SMALL_REPLY, fut).await;
            }
            RequestKind::History(q) => {
                let fut = crate::request::message::history(self.shared.clone(), login, q);
                self.spawn_reply(rid, fut).await;
            }
            RequestKind::Search(q) => {
                let fut = crate::request::message::search(self.shared.clone(), login, q);
                self.spawn_reply(rid, fut).await;
            }
            // Handled before a session is needed, or above (SendMessage).
            RequestKind::SendMessage(_)
            | RequestKind::Hello(_)
            | RequestKind::Register(_)
            | RequestKind::Login(_)
            | RequestKind::Resume(_)
            | RequestKind::Ping(_) => {}
            // Profiles, friends, presence, conversation list: request/profile.rs, social.rs.
            other => self.social(rid, login, other).await,
        }
        Flow::Continue
    }

    /// Serves a request on another task (at most [`MAX_INFLIGHT`] per connection); its reply
    /// goes through the outbox, in room reserved for a reply page
    /// ([`crate::Config::reply_page_bytes`]).
    pub(crate) async fn spawn_reply<F>(&mut self, rid: u64, fut: F)
    where
        F: std::future::Future<Output = Result<ResponseResult, RequestError>> + Send + 'static,
    {
        let room = self.shared.config.reply_page_bytes();
        self.spawn_reply_within(rid, room, fut).await;
    }

    /// [`Handler::spawn_reply`] for a reply of at most about `room` bytes. The room is
    /// reserved in the outbox first; once the reservations and the output reach the low-water
    /// mark, no further request is handled until they drain, so a client that sends requests
    /// and never reads cannot make the server build unbounded replies.
    pub(crate) async fn spawn_reply_within<F>(&mut self, rid: u64, room: usize, fut: F)
    where
        F: std::future::Future<Output = Result<ResponseResult, RequestError>> + Send + 'static,
    {
        let sem = self
            .inflight
            .get_or_insert_with(|| Arc::new(Semaphore::new(MAX_INFLIGHT)))
            .clone();
        let Ok(permit) = sem.acquire_owned().await else {
            return;
        };
        let reservation = self.tx.reserve(room);
        if self.rx.backlogged() {
            self.intake = Intake::Paused;
        }
        tokio::spawn(async move {
            let result = fut.await;
            reservation.deliver(&frame::encode_to_bytes(&to_envelope(rid, result)));
            drop(permit);
        });
    }

    /// This connection as a routing target.
    pub(crate) fn peer(&self, token_tag: u64) -> Peer {
        Peer {
            conn_id: self.conn_id,
            token_tag,
            outbox: self.tx.clone(),
        }
    }

    /// Writes a response into the write buffer (sent at the end of this read).
    pub(crate) fn respond(&mut self, rid: u64, result: Result<ResponseResult, RequestError>) {
        frame::encode(&to_envelope(rid, result), &mut self.wbuf);
    }

    fn push_kicked(&mut self, code: ErrorCode, reason: String) {
        let env = Envelope::push(PushKind::Kicked(pb::Kicked {
            code: code as i32,
            reason,
        }));
        frame::encode(&env, &mut self.wbuf);
    }

    /// Sends a Kicked push (after anything already pending) and gives up quickly if the peer
    /// does not read.
    async fn say_goodbye(&mut self, code: ErrorCode) {
        self.rx.hold();
        self.push_kicked(code, code.describe().to_owned());
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = write_all(&self.stream, &self.wbuf).await;
            let _ = self.stream.shutdown_write();
        })
        .await;
        self.wbuf.clear();
    }

    /// Writes the write buffer plus whatever the outbox holds, in as few writes as possible.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            // Fast path, with no response of its own pending: gather the queued frames in this
            // thread's scratch buffer and write them now. Only what the socket does not take
            // is copied into the connection's own buffer, to wait for writability; so a busy
            // connection allocates no write buffer per batch, and an idle one holds none.
            let (stream, rx, wbuf) = (&self.stream, &self.rx, &mut self.wbuf);
            let drained = with_scratch(|scratch| write_drained(stream, rx, scratch, wbuf))?;
            if !drained || self.wbuf.is_empty() {
                // Nothing queued, or all of it written. Frames queued meanwhile keep the task
                // busy, and ready to flush again.
                self.rx.release();
                return Ok(());
            }
            // The socket is full: wait for it below, with the rest in `wbuf`.
        }
        self.rx.drain_into(&mut self.wbuf, WRITE_BATCH);
        if self.wbuf.is_empty() {
            self.rx.release();
            return Ok(());
        }
        let control = self.rx.control();
        tokio::select! {
            r = tokio::time::timeout(WRITE_TIMEOUT, write_all(&self.stream, &self.wbuf)) => {
                r.map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))??;
            }
            code = control.kicked() => {
                return Err(std::io::Error::other(format!("kicked while writing: {code:?}")));
            }
        }
        self.wbuf.clear();
        if self.rx.release() {
            // Likely idle next: hold no buffer.
            self.wbuf = BytesMut::new();
        }
        Ok(())
    }

    /// Removes this connection from the session map; the user's friends hear when it was the
    /// user's last.
    pub(crate) fn leave_sessions(&mut self) {
        if let State::LoggedIn(login) = &self.state {
            if self.shared.sessions.remove(login.user, self.conn_id) {
                crate::presence::changed(&self.shared, login.user);
            }
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

/// A response envelope for a result.
pub(crate) fn to_envelope(rid: u64, result: Result<ResponseResult, RequestError>) -> Envelope {
    match result {
        Ok(r) => Envelope::response(rid, r),
        Err(e) => {
            let mut env = Envelope::error(rid, e.code, e.message);
            if let Some(Body::Response(pb::Response {
                result: Some(ResponseResult::Error(err)),
            })) = &mut env.body
            {
                err.retry_after_ms = e.retry_after_ms;
            }
            env
        }
    }
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
