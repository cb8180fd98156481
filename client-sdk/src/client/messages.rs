//! Messaging: sending (with resends across reconnects), sync, acks, history, search and
//! the conversation list.

use std::time::Duration;

use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use tokio::time::Instant;

use super::{Client, SEND_RETRY_WINDOW};
use crate::link::{lock, unexpected, Purpose, SEND_ATTEMPTS};
use crate::ClientError;

impl Client {
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
}
