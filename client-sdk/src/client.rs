//! The public client: [`Client`] and the [`Events`] it emits.

use std::sync::Arc;
use std::time::Duration;

use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::link::{self, lock, unexpected, Inner, Purpose, SEND_ATTEMPTS};
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
        let r = pb::Register {
            username: username.to_owned(),
            password: password.to_owned(),
            nickname: nickname.to_owned(),
        };
        match self.call(RequestKind::Register(r)).await? {
            ResponseResult::Register(ok) => Ok(ok.user_id),
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

    /// Sends a text message to a user (1:1) with a fresh `client_msg_id`; see [`Client::send`].
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn send_text(&self, to_user: u64, text: &str) -> Result<pb::SendOk, ClientError> {
        self.send(pb::SendMessage {
            to_user,
            text: text.to_owned(),
            kind: pb::MessageKind::Text as i32,
            ..Default::default()
        })
        .await
    }

    /// Sends a message; returns the server's ack once it is stored. A `client_msg_id` of 0 is
    /// replaced by a fresh one. Issued while the client is reconnecting, it is queued; if the
    /// connection is lost before the ack, it is resent on the next one with the same
    /// `client_msg_id` (up to 10 connections within max(30 s, request timeout)). Queued and
    /// resent sends go out before any newer request, in their issue order. The server answers
    /// a resend of a stored message with the original ack (`duplicate` set). `BUSY` is retried
    /// after a pause, as a new request (behind those issued meanwhile).
    ///
    /// # Errors
    /// A server error (`NOT_FOUND`, `FORBIDDEN`, `INVALID_ARGUMENT`, `TOO_LARGE`, ...),
    /// [`ClientError::Closed`] when the client gave up reconnecting, [`ClientError::Timeout`].
    pub async fn send(&self, mut msg: pb::SendMessage) -> Result<pb::SendOk, ClientError> {
        if msg.client_msg_id == 0 {
            msg.client_msg_id = self.inner.next_client_msg_id();
        }
        let id = msg.client_msg_id;
        lock(&self.inner.tracker).begin_send(id);
        let result = self.send_with_retries(msg).await;
        // After a timeout or lost connection the message may still be stored; keep the id so
        // it is recognised as ours if a sync brings it back.
        if !matches!(result, Err(ClientError::Timeout | ClientError::Closed)) {
            lock(&self.inner.tracker).end_send(id);
        }
        result
    }

    async fn send_with_retries(&self, msg: pb::SendMessage) -> Result<pb::SendOk, ClientError> {
        let timeout = self.inner.config.request_timeout;
        let deadline = Instant::now() + timeout.max(SEND_RETRY_WINDOW);
        let mut attempt = 1;
        loop {
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout);
            }
            let kind = RequestKind::SendMessage(msg.clone());
            let result = self
                .inner
                .request(kind, Purpose::Plain, Some(deadline))
                .await;
            match result {
                Ok(ResponseResult::Send(ok)) => return Ok(ok),
                Ok(other) => return Err(unexpected("SendMessage", &other)),
                Err(ClientError::Server {
                    code: ErrorCode::Busy,
                    ..
                }) if attempt < SEND_ATTEMPTS => {
                    let pause = Duration::from_millis(100) * attempt;
                    tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
        }
    }

    /// Fetches everything missed since the client's positions (or, for conversations it has
    /// none for, since this device's last ack), following all pages. The messages are also
    /// emitted as [`Event::Message`]; those already delivered are not returned again.
    /// Positions are acked to the server after each page.
    ///
    /// # Errors
    /// `NOT_LOGGED_IN`, or a connection error.
    pub async fn sync(&self) -> Result<Vec<pb::Message>, ClientError> {
        self.inner.run_sync().await
    }

    /// Stores delivery positions for this device on the server (the client does this itself
    /// unless `auto_sync` is off).
    ///
    /// # Errors
    /// `NOT_LOGGED_IN`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn ack(&self, positions: Vec<pb::ConversationPosition>) -> Result<(), ClientError> {
        match self.call(RequestKind::Ack(pb::Ack { positions })).await? {
            ResponseResult::Ack(_) => Ok(()),
            other => Err(unexpected("Ack", &other)),
        }
    }

    /// One page of a conversation's history, newest first. A page may hold fewer than
    /// `limit` messages and still not be the last; [`Client::history_page`] tells.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `NOT_FOUND`, `FORBIDDEN`, or a connection error.
    pub async fn history(&self, req: pb::History) -> Result<Vec<pb::Message>, ClientError> {
        Ok(self.history_page(req).await?.messages)
    }

    /// One page of a conversation's history, newest first, with `has_more`: while it is set,
    /// ask again with `before_seq` = the last message's `seq`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `NOT_FOUND`, `FORBIDDEN`, or a connection error.
    pub async fn history_page(&self, req: pb::History) -> Result<pb::Messages, ClientError> {
        match self.call(RequestKind::History(req)).await? {
            ResponseResult::History(m) => Ok(m),
            other => Err(unexpected("History", &other)),
        }
    }

    /// One page of a full-text search over the user's conversations, newest first. A page
    /// may hold fewer than `limit` messages and still not be the last;
    /// [`Client::search_page`] tells.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, or a connection error.
    pub async fn search(&self, req: pb::Search) -> Result<Vec<pb::Message>, ClientError> {
        Ok(self.search_page(req).await?.messages)
    }

    /// One page of a full-text search, newest first, with `has_more`: while it is set, ask
    /// again with `before_id` = the last message's `message_id`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, or a connection error.
    pub async fn search_page(&self, req: pb::Search) -> Result<pb::Messages, ClientError> {
        match self.call(RequestKind::Search(req)).await? {
            ResponseResult::Search(m) => Ok(m),
            other => Err(unexpected("Search", &other)),
        }
    }

    /// Changes the user's profile: fields left `None` stay, `Some("")` clears (except the
    /// nickname). Returns the new profile.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (a field breaks its rule), or a connection error.
    pub async fn update_profile(
        &self,
        update: pb::UpdateProfile,
    ) -> Result<pb::Profile, ClientError> {
        match self.call(RequestKind::UpdateProfile(update)).await? {
            ResponseResult::UpdateProfile(p) => {
                self.inner.set_profile(&p);
                Ok(p)
            }
            other => Err(unexpected("UpdateProfile", &other)),
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

    /// Another user's public profile, by id.
    ///
    /// # Errors
    /// `NOT_FOUND`, or a connection error.
    pub async fn user(&self, user_id: u64) -> Result<pb::PublicProfile, ClientError> {
        self.get_user(pb::GetUser {
            user_id,
            ..Default::default()
        })
        .await
    }

    /// Another user's public profile, by username.
    ///
    /// # Errors
    /// `NOT_FOUND`, or a connection error.
    pub async fn user_by_name(&self, username: &str) -> Result<pb::PublicProfile, ClientError> {
        self.get_user(pb::GetUser {
            username: username.to_owned(),
            ..Default::default()
        })
        .await
    }

    async fn get_user(&self, q: pb::GetUser) -> Result<pb::PublicProfile, ClientError> {
        match self.call(RequestKind::GetUser(q)).await? {
            ResponseResult::GetUser(p) => Ok(p),
            other => Err(unexpected("GetUser", &other)),
        }
    }

    /// Users whose username or nickname contains `query` (exact matches, then prefixes, then
    /// substrings), `limit` (0 = 20) from `offset`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (empty or too long query), or a connection error.
    pub async fn search_users(
        &self,
        query: &str,
        limit: u32,
        offset: u32,
    ) -> Result<pb::UserList, ClientError> {
        let q = pb::SearchUsers {
            query: query.to_owned(),
            limit,
            offset,
        };
        match self.call(RequestKind::SearchUsers(q)).await? {
            ResponseResult::SearchUsers(l) => Ok(l),
            other => Err(unexpected("SearchUsers", &other)),
        }
    }

    /// Asks `to_user` to be friends. If they had already asked, this accepts their request
    /// (`became_friends` is set).
    ///
    /// # Errors
    /// `ALREADY_FRIENDS`, `REQUEST_PENDING`, `BLOCKED`, `NOT_FOUND`, `INVALID_ARGUMENT`
    /// (oneself, message too long), or a connection error.
    pub async fn friend_request(
        &self,
        to_user: u64,
        message: &str,
    ) -> Result<pb::FriendRequestSent, ClientError> {
        let r = pb::SendFriendRequest {
            to_user,
            message: message.to_owned(),
        };
        match self.call(RequestKind::FriendRequest(r)).await? {
            ResponseResult::FriendRequest(ok) => Ok(ok),
            other => Err(unexpected("SendFriendRequest", &other)),
        }
    }

    /// Pending friend requests, received and sent.
    ///
    /// # Errors
    /// A connection error.
    pub async fn friend_requests(&self) -> Result<pb::FriendRequestList, ClientError> {
        match self
            .call(RequestKind::FriendRequests(pb::ListFriendRequests {}))
            .await?
        {
            ResponseResult::FriendRequests(l) => Ok(l),
            other => Err(unexpected("ListFriendRequests", &other)),
        }
    }

    /// Accepts or rejects a received friend request; the requester is told by a push.
    ///
    /// # Errors
    /// `NOT_FOUND` (no such pending request to this user), or a connection error.
    pub async fn respond_friend_request(
        &self,
        request_id: u64,
        accept: bool,
    ) -> Result<pb::FriendResponse, ClientError> {
        let r = pb::RespondFriendRequest { request_id, accept };
        match self.call(RequestKind::FriendRespond(r)).await? {
            ResponseResult::FriendRespond(ok) => Ok(ok),
            other => Err(unexpected("RespondFriendRequest", &other)),
        }
    }

    /// The user's friends, with remark and online state.
    ///
    /// # Errors
    /// A connection error.
    pub async fn friends(&self) -> Result<Vec<pb::Friend>, ClientError> {
        match self.call(RequestKind::Friends(pb::ListFriends {})).await? {
            ResponseResult::Friends(l) => Ok(l.friends),
            other => Err(unexpected("ListFriends", &other)),
        }
    }

    /// Sets the private alias for a friend ("" clears it).
    ///
    /// # Errors
    /// `NOT_FRIENDS`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn set_remark(&self, user_id: u64, remark: &str) -> Result<pb::Friend, ClientError> {
        let r = pb::SetRemark {
            user_id,
            remark: remark.to_owned(),
        };
        match self.call(RequestKind::SetRemark(r)).await? {
            ResponseResult::SetRemark(f) => Ok(f),
            other => Err(unexpected("SetRemark", &other)),
        }
    }

    /// Ends a friendship on both sides; the other user is told by a push.
    ///
    /// # Errors
    /// `NOT_FRIENDS`, or a connection error.
    pub async fn delete_friend(&self, user_id: u64) -> Result<(), ClientError> {
        match self
            .call(RequestKind::DeleteFriend(pb::DeleteFriend { user_id }))
            .await?
        {
            ResponseResult::DeleteFriend(_) => Ok(()),
            other => Err(unexpected("DeleteFriend", &other)),
        }
    }

    /// Blocks a user: ends any friendship and pending requests; until unblocked neither can
    /// send the other 1:1 messages or friend requests (`BLOCKED`).
    ///
    /// # Errors
    /// `NOT_FOUND`, `INVALID_ARGUMENT` (oneself), or a connection error.
    pub async fn block(&self, user_id: u64) -> Result<(), ClientError> {
        match self.call(RequestKind::Block(pb::Block { user_id })).await? {
            ResponseResult::Block(_) => Ok(()),
            other => Err(unexpected("Block", &other)),
        }
    }

    /// Unblocks a user.
    ///
    /// # Errors
    /// `NOT_FOUND` (not blocked), or a connection error.
    pub async fn unblock(&self, user_id: u64) -> Result<(), ClientError> {
        match self
            .call(RequestKind::Unblock(pb::Unblock { user_id }))
            .await?
        {
            ResponseResult::Unblock(_) => Ok(()),
            other => Err(unexpected("Unblock", &other)),
        }
    }

    /// The users this user has blocked.
    ///
    /// # Errors
    /// A connection error.
    pub async fn blocked(&self) -> Result<Vec<pb::PublicProfile>, ClientError> {
        match self.call(RequestKind::Blocked(pb::ListBlocked {})).await? {
            ResponseResult::Blocked(l) => Ok(l.users),
            other => Err(unexpected("ListBlocked", &other)),
        }
    }

    /// Whether a friend (or oneself) is online.
    ///
    /// # Errors
    /// `FORBIDDEN` (not a friend), or a connection error.
    pub async fn presence(&self, user_id: u64) -> Result<bool, ClientError> {
        match self
            .call(RequestKind::Presence(pb::GetPresence { user_id }))
            .await?
        {
            ResponseResult::Presence(p) => Ok(p.online),
            other => Err(unexpected("GetPresence", &other)),
        }
    }

    /// The user's conversations, most recently active first, with last message and unread
    /// count: all of them in one answer (see [`Client::conversations_page`] for pages).
    ///
    /// # Errors
    /// A connection error.
    pub async fn conversations(&self) -> Result<Vec<pb::Conversation>, ClientError> {
        Ok(self.conversations_page(0, None).await?.conversations)
    }

    /// One page of the user's conversations, most recently active first: at most `limit`
    /// (0 = all, at most 500) entries after `before`, the (`last_active_ms`,
    /// `conversation_id`) of the previous page's last entry (`None` = from the most recent).
    /// While `has_more`, ask again with the last entry's cursor.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, or a connection error.
    pub async fn conversations_page(
        &self,
        limit: u32,
        before: Option<(i64, u64)>,
    ) -> Result<pb::ConversationList, ClientError> {
        let (before_active_ms, before_id) = before.unwrap_or((0, 0));
        let r = pb::ListConversations {
            limit,
            before_active_ms,
            before_id,
        };
        match self.call(RequestKind::Conversations(r)).await? {
            ResponseResult::Conversations(l) => Ok(l),
            other => Err(unexpected("ListConversations", &other)),
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

    /// Marks a conversation read up to `seq` (0 = everything so far); the user's other
    /// devices get [`Event::ReadPosition`].
    ///
    /// # Errors
    /// `FORBIDDEN` (not a member), `INVALID_ARGUMENT`, or a connection error.
    pub async fn mark_read(
        &self,
        conversation_id: u64,
        seq: u64,
    ) -> Result<pb::ReadPosition, ClientError> {
        let r = pb::MarkRead {
            conversation_id,
            seq,
        };
        match self.call(RequestKind::MarkRead(r)).await? {
            ResponseResult::MarkRead(p) => Ok(p),
            other => Err(unexpected("MarkRead", &other)),
        }
    }

    /// Sends any request and returns its response; error responses become
    /// [`ClientError::Server`]. Login, Resume, Logout and SendMessage go through the same paths
    /// as their methods (session, sync and resend handling); Sync is raw: its page does not
    /// move the client's positions and is not emitted as events.
    ///
    /// # Errors
    /// A server error, or a connection error.
    pub async fn request(&self, kind: RequestKind) -> Result<ResponseResult, ClientError> {
        match kind {
            RequestKind::Login(l) => self.login_with(l).await.map(ResponseResult::Session),
            RequestKind::Resume(r) => self.resume_with(r).await.map(ResponseResult::Session),
            RequestKind::Logout(_) => self
                .logout()
                .await
                .map(|()| ResponseResult::Logout(pb::LogoutOk {})),
            RequestKind::SendMessage(m) => self.send(m).await.map(ResponseResult::Send),
            kind => self.call(kind).await,
        }
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
