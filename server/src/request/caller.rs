//! What a request handler sees: the connection it arrived on ([`Conn`], with its [`State`]),
//! the logged-in user it is served for ([`Caller`]), and the ways to answer (inline into the
//! write buffer, or from another task through the outbox).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use feige_protocol::{frame, pb, Body, Envelope, ErrorCode, PushKind, ResponseResult};
use feige_storage::UserId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connections::Transport;
use crate::error::RequestError;
use crate::session::{Outbox, OutboxReader, Peer};
use crate::Shared;

/// Requests served off the connection task (reads) that one connection may have in flight.
const MAX_INFLIGHT: usize = 32;
/// Outbox room reserved for a reply known to be small (WhoAmI, Ack).
pub(crate) const SMALL_REPLY: usize = 4 * 1024;

/// What a request handler produces: the response, or the error the client gets.
pub(crate) type Reply = Result<ResponseResult, RequestError>;

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

/// What the connection task does after a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Handle the next request.
    Continue,
    /// The output and the replies reserved reached the low-water mark
    /// ([`OutboxReader::backlogged`]): handle no further request until they drain.
    Pause,
    /// Close the connection (after writing what is pending).
    Close,
}

/// One connection as its requests see it: its state, its outbox, and the write buffer that
/// replies made on the connection task go to. The connection task (`handler::Handler`) owns
/// it and lends it to [`super::dispatch`] for each request; the socket stays with the task.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    pub conn_id: u64,
    /// The peer's address, for per-address limits and the session list.
    pub peer_addr: SocketAddr,
    /// TCP (the default) or WebSocket, for the admin's connection list.
    pub transport: Transport,
    pub state: State,
    /// Responses made on the connection task, written at the end of the read.
    pub wbuf: BytesMut,
    pub tx: Outbox,
    pub rx: OutboxReader,
    /// Bounds the requests served on other tasks; made at the first one.
    inflight: Option<Arc<Semaphore>>,
    /// Bounds the bytes of upload chunks in flight (`upload_bytes_per_connection`); made at
    /// the first chunk.
    transfer: Option<Arc<Semaphore>>,
}

impl Conn {
    /// A fresh connection (waiting for Hello) with an empty write buffer.
    pub(crate) fn new(
        shared: Arc<Shared>,
        conn_id: u64,
        peer_addr: SocketAddr,
        tx: Outbox,
        rx: OutboxReader,
    ) -> Conn {
        Conn {
            shared,
            conn_id,
            peer_addr,
            transport: Transport::Tcp,
            state: State::Fresh,
            wbuf: BytesMut::new(),
            tx,
            rx,
            inflight: None,
            transfer: None,
        }
    }

    /// Whether a login or resume succeeded on this connection.
    pub(crate) fn logged_in(&self) -> bool {
        matches!(self.state, State::LoggedIn(_))
    }

    /// The logged-in user, for a request served on another task; `None` before login.
    pub(crate) fn caller(&self) -> Option<Caller> {
        let State::LoggedIn(login) = &self.state else {
            return None;
        };
        Some(Caller {
            shared: self.shared.clone(),
            user: login.user,
            device: login.device.clone(),
            conn_id: self.conn_id,
            token_hash: login.token_hash.clone(),
            outbox: self.tx.clone(),
        })
    }

    /// Writes a response into the write buffer (sent at the end of this read).
    pub(crate) fn respond(&mut self, rid: u64, result: Reply) {
        frame::encode(&to_envelope(rid, result), &mut self.wbuf);
    }

    /// Answers a request that needs a login on a connection without one.
    pub(crate) fn not_logged_in(&mut self, rid: u64) -> Flow {
        let e = RequestError::new(ErrorCode::NotLoggedIn, "not logged in");
        self.respond(rid, Err(e));
        Flow::Continue
    }

    /// Serves a request that is stored like a message (SendMessage, SendRedPacket): refused
    /// before login and past the sender's message rate (`Limits::send`); otherwise `queue`
    /// validates it and hands it to the writer, whose commit the router answers. Only a
    /// refusal is answered here.
    pub(crate) async fn send_like_message(
        &mut self,
        rid: u64,
        queue: impl AsyncFnOnce(&Conn, UserId) -> Result<(), RequestError>,
    ) -> Flow {
        let State::LoggedIn(login) = &self.state else {
            return self.not_logged_in(rid);
        };
        let sender = login.user;
        let allowed =
            self.shared
                .limits
                .send(sender, self.peer_addr.ip(), tokio::time::Instant::now());
        let result = match allowed {
            Err(wait) => Err(RequestError::rate_limited("sending too fast", wait)),
            Ok(()) => queue(self, sender).await,
        };
        if let Err(e) = result {
            self.respond(rid, Err(e));
        }
        Flow::Continue
    }

    /// Writes a `Kicked` push into the write buffer.
    pub(crate) fn push_kicked(&mut self, code: ErrorCode, reason: String) {
        let env = Envelope::push(PushKind::Kicked(pb::Kicked {
            code: code as i32,
            reason,
        }));
        frame::encode(&env, &mut self.wbuf);
    }

    /// Serves a request on another task (at most [`MAX_INFLIGHT`] per connection); its reply
    /// goes through the outbox, in `room` bytes reserved there first. Once the reservations
    /// and the output reach the low-water mark this returns [`Flow::Pause`], so a client that
    /// sends requests and never reads cannot make the server build unbounded replies.
    pub(crate) async fn spawn_reply<F>(&mut self, rid: u64, room: usize, fut: F) -> Flow
    where
        F: Future<Output = Reply> + Send + 'static,
    {
        let sem = self
            .inflight
            .get_or_insert_with(|| Arc::new(Semaphore::new(MAX_INFLIGHT)))
            .clone();
        let Ok(permit) = sem.acquire_owned().await else {
            return Flow::Continue;
        };
        let reservation = self.tx.reserve(room);
        let flow = if self.rx.backlogged() {
            Flow::Pause
        } else {
            Flow::Continue
        };
        tokio::spawn(async move {
            let result = fut.await;
            reservation.deliver(&frame::encode_to_bytes(&to_envelope(rid, result)));
            drop(permit);
        });
        flow
    }

    /// Room for `bytes` more of upload chunks in flight on this connection, held until the
    /// permit drops; `None` when the connection has `upload_bytes_per_connection` in flight.
    pub(crate) fn transfer_permit(&mut self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let limit = self.shared.config.upload_bytes_per_connection;
        let sem = self
            .transfer
            .get_or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone();
        sem.try_acquire_many_owned(u32::try_from(bytes.max(1)).ok()?)
            .ok()
    }

    /// This connection as a routing target.
    pub(crate) fn peer(&self, token_tag: u64) -> Peer {
        Peer {
            conn_id: self.conn_id,
            token_tag,
            outbox: self.tx.clone(),
        }
    }

    /// Removes this connection from the session map; the user's friends hear when it was the
    /// user's last.
    pub(crate) fn leave_sessions(&mut self) {
        if let State::LoggedIn(login) = &self.state {
            self.shared.rooms.leave_all(self.conn_id);
            let last = self.shared.sessions.remove(login.user, self.conn_id);
            // After the session map: a kick reason noted for this connection is dropped too.
            self.shared.connections.remove(self.conn_id);
            if last {
                crate::presence::changed(&self.shared, login.user);
            }
        }
    }
}

/// Who is asking, for a request served off the connection task: the logged-in user and
/// device, the connection, and the shared state.
#[derive(Clone)]
pub(crate) struct Caller {
    pub shared: Arc<Shared>,
    pub user: UserId,
    pub device: String,
    pub conn_id: u64,
    pub token_hash: Vec<u8>,
    /// The connection's outbox (the context of a group change's notice in the writer).
    pub outbox: Outbox,
}

impl Caller {
    /// Pushes to every connection of `user` except the caller's own.
    pub(crate) fn push(&self, user: UserId, kind: PushKind) {
        let push = frame::encode_to_bytes(&Envelope::push(kind));
        self.shared.sessions.for_each(user, |p| {
            if p.conn_id != self.conn_id {
                p.deliver(&push);
            }
        });
    }

    /// Pushes `kind` to every connection of each of `users` (none of which is the caller).
    pub(crate) fn push_to(&self, users: &[UserId], kind: PushKind) {
        let push = frame::encode_to_bytes(&Envelope::push(kind));
        for &user in users {
            self.shared.sessions.for_each(user, |p| p.deliver(&push));
        }
    }

    /// Whether `user` has a live connection.
    pub(crate) fn online(&self, user: UserId) -> bool {
        self.shared.sessions.is_online(user)
    }
}

/// The first 8 bytes of a token hash, naming the token in the session map.
pub(crate) fn token_tag(hash: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = hash.len().min(8);
    b[..n].copy_from_slice(&hash[..n]);
    u64::from_be_bytes(b)
}

/// A response envelope for a result.
pub(crate) fn to_envelope(rid: u64, result: Reply) -> Envelope {
    match result {
        Ok(r) => Envelope::response(rid, r),
        Err(e) => {
            let mut env = Envelope::error(rid, e.code, e.message);
            if let Some(Body::Response(pb::Response {
                result: Some(ResponseResult::Error(err)),
            })) = &mut env.body
            {
                err.retry_after_ms = e.retry_after_ms;
                err.challenge = e.challenge;
            }
            env
        }
    }
}
