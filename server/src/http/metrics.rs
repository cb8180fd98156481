//! `GET /metrics` (the Prometheus text format; open, or behind `metrics_token`) and
//! `GET /healthz` (the store answers a read).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::auth::tokens_equal;
use super::reply::HttpError;
use crate::metrics::text::CONTENT_TYPE as METRICS_TYPE;
use crate::{status, Shared};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
}

/// Serves `GET /metrics`.
async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(expected) = shared.config.metrics_token.as_deref() {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            Some(t) if tokens_equal(t, expected) => {}
            Some(_) => return HttpError::unauthorized("wrong metrics token").into_response(),
            None => {
                return HttpError::unauthorized("missing Authorization: Bearer <metrics_token>")
                    .into_response()
            }
        }
    }
    let text = status::metrics_text(&shared).await;
    ([(CONTENT_TYPE, METRICS_TYPE)], text).into_response()
}

/// Serves `GET /healthz`.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if status::healthy(&shared).await {
        (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
    } else {
        let body = Json(json!({ "status": "unavailable" }));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}
