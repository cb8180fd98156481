//! The public client: [`Client`] and the [`Events`] it emits. This file holds the handle,
//! connect, the session (register, login, resume, logout, password, sessions) and the raw
//! [`Client::request`]; `messages`, `social` and the other files add the other requests to the
//! same handle (`upload`, `download` and `files`: file transfers and the file requests;
//! `twofactor`: two-factor login and closing the account).

pub(crate) mod codes;
mod contacts;
pub(crate) mod download;
pub(crate) mod files;
mod groups;
mod messages;
mod notifications;
mod receipts;
mod red_packets;
mod rooms;
mod social;
mod twofactor;
pub(crate) mod upload;

use std::sync::Arc;
use std::time::Duration;

use feige_protocol::{pb, RequestKind, ResponseResult};
use tokio::sync::mpsc;

use crate::link::{self, unexpected, Inner, Purpose};
use crate::types::{ClientConfig, ConnState, Event};
use crate::ClientError;

/// Events buffered for the application before the reader waits (backpressure).
const EVENTS_CAPACITY: usize = 65_536;
/// How long [`Client::send`] keeps retrying across reconnects: this, or the request timeout
/// if that is longer.
pub const SEND_RETRY_WINDOW: Duration = Duration::from_secs(30);
/// Longest `close` waits for a last Ack.
const CLOSE_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The stream of [`Event`]s of one client. It ends when the client is closed for good.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// Closes the client when the last handle is dropped (the tasks only hold [`Inner`]).
struct CloseOnDrop(Arc<Inner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// A connection to a Feige server. Cheap to clone; every clone drives the same connection,
/// and calls from many tasks run concurrently (pipelined on the one connection).
///
/// Order: a call's request is issued when its future is first polled (an `async fn` does
/// nothing before), and requests go out in issue order. So calls awaited one after another,
/// or futures created in order and polled together by `join!` (which polls in argument
/// order), reach the server in that order; the server handles one connection's sends in the
/// order it reads them. Futures polled first from different tasks go out in whichever order
/// those polls happen.
///
/// Requests fail with [`ClientError::Closed`] while there is no connection, and when the
/// connection is lost while they are in flight — except [`Client::send`], which is queued
/// while offline and resent on the next connection with the same `client_msg_id` (the server
/// deduplicates), still in issue order.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    _close: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.config.server)
            .field("device", &self.inner.config.device)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects and says Hello, without logging in.
    ///
    /// # Errors
    /// The server cannot be reached or refuses the Hello.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        let (tx, rx) = mpsc::channel(EVENTS_CAPACITY);
        let inner = Arc::new(Inner::new(config, tx));
        inner.emit_state(ConnState::Connecting);
        let (conn, hello) = link::open(&inner, None).await?;
        let (reader, gen) = link::tasks::start_link(&inner, conn, &hello);
        inner.emit_state(ConnState::Connected);
        tokio::spawn(link::supervisor::supervise(inner.clone(), reader, gen));
        tokio::spawn(link::acks::ack_loop(inner.clone()));
        let client = Client {
            inner: inner.clone(),
            _close: Arc::new(CloseOnDrop(inner)),
        };
        Ok((client, Events { rx }))
    }

    /// Creates an account; returns its user id.
    ///
    /// # Errors
    /// `USERNAME_TAKEN`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        nickname: &str,
    ) -> Result<u64, ClientError> {
        Ok(self
            .create_account(username, password, nickname)
            .await?
            .user_id)
    }

    /// Creates an account; returns its user id and whether it waits for an admin's approval
    /// (a server with `registration = "approval"`; login answers `PENDING_APPROVAL` until then).
    ///
    /// # Errors
    /// `USERNAME_TAKEN`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn create_account(
        &self,
        username: &str,
        password: &str,
        nickname: &str,
    ) -> Result<pb::RegisterOk, ClientError> {
        let r = pb::Register {
            username: username.to_owned(),
            password: password.to_owned(),
            nickname: nickname.to_owned(),
            ..Default::default()
        };
        match self.call(RequestKind::Register(r)).await? {
            ResponseResult::Register(ok) => Ok(ok),
            other => Err(unexpected("Register", &other)),
        }
    }

    /// Logs in as this config's device, then syncs in the background (see [`Event`]).
    ///
    /// # Errors
    /// `BAD_CREDENTIALS`, `ALREADY_LOGGED_IN`, or a connection error.
    pub async fn login(&self, username: &str, password: &str) -> Result<pb::Session, ClientError> {
        self.login_with(pb::Login {
            username: username.to_owned(),
            password: password.to_owned(),
            device: self.inner.config.device.clone(),
        })
        .await
    }

    async fn login_with(&self, l: pb::Login) -> Result<pb::Session, ClientError> {
        match self.call(RequestKind::Login(l)).await? {
            ResponseResult::Session(s) => {
                self.inner.on_logged_in(s.clone());
                Ok(s)
            }
            other => Err(unexpected("Login", &other)),
        }
    }

    /// Resumes a session with the token of an earlier login, then syncs in the background.
    ///
    /// # Errors
    /// `INVALID_TOKEN`, `ALREADY_LOGGED_IN`, or a connection error.
    pub async fn resume(&self, token: &[u8]) -> Result<pb::Session, ClientError> {
        self.resume_with(pb::Resume {
            token: bytes::Bytes::copy_from_slice(token),
            device: self.inner.config.device.clone(),
        })
        .await
    }

    async fn resume_with(&self, r: pb::Resume) -> Result<pb::Session, ClientError> {
        match self.call(RequestKind::Resume(r)).await? {
            ResponseResult::Session(s) => {
                self.inner.on_logged_in(s.clone());
                Ok(s)
            }
            other => Err(unexpected("Resume", &other)),
        }
    }

    /// Reports the delivered positions, then revokes the session token. The connection stays
    /// open, logged out.
    ///
    /// # Errors
    /// `NOT_LOGGED_IN`, or a connection error.
    pub async fn logout(&self) -> Result<(), ClientError> {
        if self.inner.config.auto_sync && self.inner.logged_in() {
            let _ = self.inner.flush_acks().await;
        }
        match self.call(RequestKind::Logout(pb::Logout {})).await? {
            ResponseResult::Logout(_) => {
                self.inner.forget_session();
                Ok(())
            }
            other => Err(unexpected("Logout", &other)),
        }
    }

    /// The logged-in user's profile.
    ///
    /// # Errors
    /// `NOT_LOGGED_IN`, or a connection error.
    pub async fn whoami(&self) -> Result<pb::Profile, ClientError> {
        match self.call(RequestKind::Whoami(pb::WhoAmI {})).await? {
            ResponseResult::Profile(p) => Ok(p),
            other => Err(unexpected("WhoAmI", &other)),
        }
    }

    /// A round trip to the server.
    ///
    /// # Errors
    /// A connection error.
    pub async fn ping(&self) -> Result<(), ClientError> {
        let nonce = self.inner.next_request_id();
        match self.call(RequestKind::Ping(pb::Ping { nonce })).await? {
            ResponseResult::Pong(p) if p.nonce == nonce => Ok(()),
            other => Err(unexpected("Ping", &other)),
        }
    }

    /// Changes the password; every other session of the user is revoked (their connections
    /// get `Kicked{INVALID_TOKEN}`). Returns how many sessions were revoked.
    ///
    /// # Errors
    /// `BAD_CREDENTIALS` (wrong old password), `INVALID_ARGUMENT` (new one too short), or a
    /// connection error.
    pub async fn change_password(&self, old: &str, new: &str) -> Result<u32, ClientError> {
        let r = pb::ChangePassword {
            old_password: old.to_owned(),
            new_password: new.to_owned(),
        };
        match self.call(RequestKind::ChangePassword(r)).await? {
            ResponseResult::ChangePassword(ok) => Ok(ok.sessions_revoked),
            other => Err(unexpected("ChangePassword", &other)),
        }
    }

    /// The user's sessions (logins) that have not expired, most recently seen first; the one
    /// of this connection has `current` set.
    ///
    /// # Errors
    /// A connection error.
    pub async fn sessions(&self) -> Result<Vec<pb::SessionInfo>, ClientError> {
        match self
            .call(RequestKind::Sessions(pb::ListSessions {}))
            .await?
        {
            ResponseResult::Sessions(l) => Ok(l.sessions),
            other => Err(unexpected("ListSessions", &other)),
        }
    }

    /// Revokes one of the user's sessions by its `session_id`: its token stops working and
    /// its connections are closed. Revoking this client's own session logs it out.
    ///
    /// # Errors
    /// `NOT_FOUND` (no such session of this user), or a connection error.
    pub async fn revoke_session(&self, session_id: u64) -> Result<(), ClientError> {
        let r = pb::RevokeSession { session_id };
        match self.call(RequestKind::RevokeSession(r)).await? {
            ResponseResult::RevokeSession(_) => {
                if self.session().is_some_and(|s| s.session_id == session_id) {
                    self.inner.forget_session();
                }
                Ok(())
            }
            other => Err(unexpected("RevokeSession", &other)),
        }
    }

    /// Sends any request and returns its response; error responses become
    /// [`ClientError::Server`]. Login, Resume, Logout and SendMessage go through the same paths
    /// as their methods (session, sync and resend handling; LoginCode and LoginTotp as Login);
    /// Sync is raw: its page does not
    /// move the client's positions and is not emitted as events.
    ///
    /// # Errors
    /// A server error, or a connection error.
    pub async fn request(&self, kind: RequestKind) -> Result<ResponseResult, ClientError> {
        match kind {
            RequestKind::Login(l) => self.login_with(l).await.map(ResponseResult::Session),
            RequestKind::Resume(r) => self.resume_with(r).await.map(ResponseResult::Session),
            RequestKind::LoginCode(l) => {
                self.login_code_with(l).await.map(ResponseResult::LoginCode)
            }
            RequestKind::LoginTotp(r) => {
                self.login_totp_with(r).await.map(ResponseResult::LoginTotp)
            }
            RequestKind::Logout(_) => self
                .logout()
                .await
                .map(|()| ResponseResult::Logout(pb::LogoutOk {})),
            RequestKind::SendMessage(m) => self.send(m).await.map(ResponseResult::Send),
            kind => self.call(kind).await,
        }
    }

    /// A fresh `client_msg_id` for [`Client::send`]: `unix_ms << 20 | salt`, growing within
    /// this client (a resend must reuse the id; a new message must never reuse an old one:
    /// the server keeps every id it stored and answers a reuse as a duplicate).
    pub fn new_client_msg_id(&self) -> u64 {
        self.inner.next_client_msg_id()
    }

    /// Ends a reconnect backoff now (e.g. the network came back): the next attempt starts at
    /// once. Called while no backoff runs, it ends the next one.
    pub fn reconnect_now(&self) {
        self.inner.reconnect.notify_one();
    }

    /// The current session (user id, token, profile, device), if logged in.
    pub fn session(&self) -> Option<pb::Session> {
        self.inner.session()
    }

    /// Stops reconnecting and closes the connection, after a last Ack of the delivered
    /// positions (bounded to 2 s). Pending and later requests fail with
    /// [`ClientError::Closed`]; the event stream ends.
    pub async fn close(&self) {
        if self.inner.cancel.is_cancelled() {
            return;
        }
        if self.inner.config.auto_sync && self.inner.logged_in() && self.inner.is_up() {
            let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, self.inner.flush_acks()).await;
        }
        self.inner.shutdown();
    }

    async fn call(&self, kind: RequestKind) -> Result<ResponseResult, ClientError> {
        self.inner.call(kind, Purpose::Plain).await
    }
}
