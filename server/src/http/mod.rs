//! The HTTP listener: one axum router made of each module's `routes()`, with the request
//! limits and the token checks ([`auth`]) they share, and the JSON answer shape ([`reply`]).
//!
//! A module adds its routes with one `mod` line and one `.merge(...)` line in [`router`].

mod admin;
mod admin_notices;
mod api;
pub(crate) mod auth;
mod metrics;
mod ops;
mod pages;
mod params;
pub(crate) mod reply;
mod ws;
mod ws_json;
pub(crate) mod ws_link;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Shared;

/// Largest request body any route reads (form or JSON parameters), in bytes.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The whole HTTP application: every module's routes, the body limit, a JSON 404.
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .merge(metrics::routes())
        .merge(ops::routes())
        .merge(pages::routes())
        .merge(ws::routes())
        .merge(api::routes())
        .merge(admin::routes())
        .merge(admin_notices::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

async fn not_found() -> reply::HttpError {
    reply::HttpError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Serves HTTP on `listener` until `stop` is cancelled; connections being served then end
/// gracefully (WebSocket connections are tracked by the server's connection tracker).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let app = router(shared).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "HTTP listener failed");
    }
}
