//! The connection supervisor: notices a lost connection and reconnects and resumes with
//! [`Backoff`], or closes the client for good.

use std::sync::Arc;

use feige_protocol::{pb, ErrorCode};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::tasks::start_link;
use super::{open, Inner, LinkStatus, ReadEnd};
use crate::backoff::Backoff;
use crate::types::{ConnState, Event};
use crate::ClientError;

/// Watches the live connection; when it drops, reconnects (if the client is logged in and
/// allowed to) or closes the client for good.
pub(crate) async fn supervise(inner: Arc<Inner>, mut reader: JoinHandle<ReadEnd>, mut gen: u64) {
    let mut backoff = Backoff::with(inner.config.backoff);
    let mut up_since = Instant::now();
    loop {
        let end = tokio::select! {
            r = &mut reader => r.unwrap_or_default(),
            () = inner.cancel.cancelled() => return,
        };
        inner.link_down(gen);
        if inner.cancel.is_cancelled() {
            return;
        }
        // A revoked token, a disabled or closed account, a banned address: reconnecting cannot
        // help.
        if matches!(
            end.kicked,
            Some(
                ErrorCode::InvalidToken
                    | ErrorCode::AccountDisabled
                    | ErrorCode::AccountClosed
                    | ErrorCode::AddressBanned
            )
        ) {
            inner.forget_session();
        }
        if !inner.config.auto_reconnect || !inner.logged_in() {
            tracing::debug!("connection lost; not reconnecting");
            inner.set_dead();
            return;
        }
        backoff.connection_ended(up_since.elapsed());
        match reconnect(&inner, &mut backoff).await {
            Some((r, g)) => {
                reader = r;
                gen = g;
                up_since = Instant::now();
            }
            None => {
                inner.set_dead();
                return;
            }
        }
    }
}

/// Reconnects with the delays of `backoff` (which keeps its place for the next time) and
/// resumes the session; `None` when giving up (closed, or the token was
/// refused).
async fn reconnect(
    inner: &Arc<Inner>,
    backoff: &mut Backoff,
) -> Option<(JoinHandle<ReadEnd>, u64)> {
    loop {
        let wait = backoff.next_delay();
        inner.emit_state(ConnState::Disconnected { retry_in: wait });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = inner.reconnect.notified() => {}
            () = inner.cancel.cancelled() => return None,
        }
        let token = inner.session()?.token;
        inner.emit_state(ConnState::Connecting);
        let auth = pb::hello::Auth::Resume(pb::Resume {
            token,
            device: inner.config.device.clone(),
        });
        let attempt = tokio::select! {
            r = open(inner, Some(auth)) => r,
            () = inner.cancel.cancelled() => return None,
        };
        match attempt {
            Ok((conn, hello)) => match hello.session.clone() {
                Some(session) => {
                    let (reader, gen) = start_link(inner, conn, &hello);
                    inner.emit_state(ConnState::Connected);
                    inner.on_logged_in(session);
                    return Some((reader, gen));
                }
                None => tracing::debug!("resume answered without a session"),
            },
            Err(ClientError::Server {
                code:
                    code @ (ErrorCode::InvalidToken
                    | ErrorCode::AccountDisabled
                    | ErrorCode::AccountClosed
                    | ErrorCode::AddressBanned),
                message,
                ..
            }) => {
                inner.forget_session();
                inner
                    .emit(Event::Kicked {
                        code,
                        reason: message,
                    })
                    .await;
                return None;
            }
            Err(e) => tracing::debug!(error = %e, "reconnect failed"),
        }
    }
}

impl Inner {
    /// Waits until a connection is live: at most until `until`, and not past `cancel`.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the client closed for good or no connection came in time,
    /// [`ClientError::Cancelled`].
    pub(crate) async fn wait_up(
        &self,
        until: Instant,
        cancel: &CancellationToken,
    ) -> Result<(), ClientError> {
        let mut status = self.status.subscribe();
        loop {
            match *status.borrow_and_update() {
                LinkStatus::Up(_) => return Ok(()),
                LinkStatus::Dead => return Err(ClientError::Closed),
                LinkStatus::Down => {}
            }
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        return Err(ClientError::Closed);
                    }
                }
                () = tokio::time::sleep_until(until) => return Err(ClientError::Closed),
                () = cancel.cancelled() => return Err(ClientError::Cancelled),
            }
        }
    }
}
