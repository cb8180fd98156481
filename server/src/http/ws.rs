//! The WebSocket gateway: `GET /ws` (and `/acc`) upgrades to a WebSocket whose text frames
//! are JSON requests (see `ws_json` and docs/websocket.md).
//!
//! A WebSocket connection is served by the ordinary connection handler ([`handler::serve_ws`])
//! with the WebSocket as its wire (`ws_link.rs`): each text frame becomes a request that the
//! handler dispatches as it would a TCP client's, and the answer and push frames it writes
//! become text frames. So the login deadline, the limits, the byte-bounded outbox, ack after
//! commit, idempotent resend and sync are the TCP ones. A client that does not read blocks
//! the handler's write, its outbox fills, and it is dropped as a slow consumer.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::Instrument;

use super::reply::HttpError;
use super::ws_link::{Limits, WsLink};
use crate::{handler, Shared};

/// The WebSocket's read buffer to begin with (tungstenite's default, 128 KiB, would be held by
/// every idle connection); it grows for a larger message.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes of frames the WebSocket gathers before it writes them (each batch is flushed anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;

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
    // Our own limit closes with a clear reason (`WsLink::take_in`); tungstenite's, above it,
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

/// Serves one WebSocket: the connection handler reads its requests and writes its answers
/// through a [`WsLink`].
fn serve<G: Send + 'static>(
    shared: Arc<Shared>,
    socket: WebSocket,
    conn_id: u64,
    peer: SocketAddr,
    guards: G,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let limits = Limits {
        max_text: shared.config.max_frame_len,
        heartbeat_ms: shared.config.heartbeat_ms,
    };
    let link = WsLink::new(socket, limits);
    handler::serve_ws(shared, Box::new(link), (conn_id, peer), guards)
}
