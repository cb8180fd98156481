//! The accept loop: takes a connection slot before accepting, backs off on accept errors,
//! turns away an address over its connection cap, and starts one handler task per connection
//! inside a tracing span.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use feige_protocol::{frame, pb, Envelope, ErrorCode, PushKind};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::socket::Socket;
use crate::{handler, tls, Shared};

/// What the accept loop tells about the connection slots (`Shared::conn_slots`): a
/// connection holds one for its life, and the accept loop one while it waits for the next
/// connection. Counting open connections from them costs a connection nothing.
#[derive(Debug)]
pub(crate) struct AcceptSlot {
    max: usize,
    /// Set while the accept loop holds a slot it has not handed to a connection yet.
    holds: AtomicBool,
}

impl AcceptSlot {
    /// For `max` slots (at least 1).
    pub(crate) fn new(max: usize) -> AcceptSlot {
        AcceptSlot {
            max: max.max(1),
            holds: AtomicBool::new(false),
        }
    }

    /// TCP connections open now (TLS handshakes included): the slots held, less the accept
    /// loop's and the `ws` WebSocket connections'.
    pub(crate) fn tcp_open(&self, slots: &tokio::sync::Semaphore, ws: usize) -> usize {
        let held = self.max.saturating_sub(slots.available_permits());
        held.saturating_sub(usize::from(self.holds.load(Ordering::Relaxed)))
            .saturating_sub(ws)
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let (limit, holds) = (shared.conn_slots.clone(), &shared.accept.holds);
    let mut backoff = Duration::from_millis(5);
    loop {
        holds.store(false, Ordering::Relaxed);
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        holds.store(true, Ordering::Relaxed);
        let accepted = tokio::select! {
            _ = stop.cancelled() => {
                holds.store(false, Ordering::Relaxed);
                return;
            }
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                if shared.bans.is_banned(peer.ip()) {
                    refuse(&stream, peer, ErrorCode::AddressBanned);
                    continue;
                }
                let Some(slot) = shared.limits.connect(peer.ip()) else {
                    refuse(&stream, peer, ErrorCode::TooManyConnections);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
                shared.metrics.tcp_accepted.fetch_add(1, Ordering::Relaxed);
                let span = tracing::info_span!("conn", id, %peer);
                let shared = shared.clone();
                // The task is the handler's own future, nothing around it (see
                // `handler::serve`); a TLS connection's is boxed, so that a plain one's task
                // does not carry the TLS relay's space. A span that no subscriber records
                // (log level above info) is left out: it would add 40 bytes to every task.
                if shared.tls.is_some() {
                    tracker.spawn(
                        Box::pin(tls::serve(shared, stream, id, peer, (slot, permit)))
                            .instrument(span),
                    );
                } else {
                    let serve =
                        handler::serve(shared, Socket::Tcp(stream), id, peer, (slot, permit));
                    if span.is_disabled() {
                        tracker.spawn(serve);
                    } else {
                        tracker.spawn(serve.instrument(span));
                    }
                }
            }
            Err(e) => {
                // Typically EMFILE: wait for connections to go away instead of spinning.
                tracing::warn!(error = %e, ?backoff, "accept failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Turns away a connection from a banned address or one at its cap: a `Kicked{code}` push
/// written without waiting (a new socket's send buffer takes it), then the socket is dropped.
fn refuse(stream: &tokio::net::TcpStream, peer: std::net::SocketAddr, code: ErrorCode) {
    let reason = match code {
        ErrorCode::AddressBanned => "connections from this address are banned",
        _ => "too many connections from this address",
    };
    tracing::info!(%peer, "connection refused: {reason}");
    let env = Envelope::push(PushKind::Kicked(pb::Kicked {
        code: code as i32,
        reason: reason.into(),
    }));
    let _ = stream.try_write(&frame::encode_to_bytes(&env));
    let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
}
