//! The admin's operations endpoints: `GET /admin/api/status`, `GET /admin/api/logs`,
//! `POST /admin/api/backup` (docs/admin.md).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::auth::AdminCaller;
use super::reply::{ok, HttpError};
use crate::logs::{self, LogLine};
use crate::status::{self, BackupError};
use crate::Shared;

/// Lines `GET /admin/api/logs` returns without `limit`.
const DEFAULT_LIMIT: usize = 200;
/// Most lines one call returns.
const MAX_LIMIT: usize = 2000;

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/api/status", get(status))
        .route("/admin/api/logs", get(logs))
        .route("/admin/api/backup", post(backup))
}

/// Serves `GET /admin/api/status`.
async fn status(_admin: AdminCaller, State(shared): State<Arc<Shared>>) -> Response {
    ok(status::status(&shared).await)
}

/// The parameters of `GET /admin/api/logs`, checked by hand so that a bad one gets the JSON
/// error shape.
#[derive(Debug, Deserialize)]
struct LogsQuery {
    level: Option<String>,
    limit: Option<String>,
}

/// Serves `GET /admin/api/logs?level=warn&limit=200`.
async fn logs(_admin: AdminCaller, Query(q): Query<LogsQuery>) -> Result<Response, HttpError> {
    let level = match q.level.as_deref() {
        None => tracing::Level::INFO,
        Some(l) => logs::parse_level(l).ok_or_else(|| {
            HttpError::bad_request("level: one of error, warn, info, debug, trace")
        })?,
    };
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| HttpError::bad_request("limit: a number from 1 to 2000"))?,
    };
    let lines: Vec<serde_json::Value> = logs::global()
        .map(|ring| ring.recent(level, limit))
        .unwrap_or_default()
        .iter()
        .map(line_json)
        .collect();
    Ok(ok(json!({ "lines": lines })))
}

fn line_json(l: &LogLine) -> serde_json::Value {
    json!({
        "ts_ms": l.ts_ms,
        "level": logs::level_name(l.level),
        "target": l.target,
        "message": l.message,
    })
}

/// The body of `POST /admin/api/backup`: empty, `{}` or `{"path": "..."}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    path: Option<String>,
}

/// Serves `POST /admin/api/backup`.
async fn backup(
    admin: AdminCaller,
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let body: BackupBody = if body.iter().all(u8::is_ascii_whitespace) {
        BackupBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| HttpError::bad_request(format!("body: {e}")))?
    };
    let report = status::backup(&shared, body.path.as_deref())
        .await
        .map_err(|e| match e {
            BackupError::Running => HttpError::new(StatusCode::CONFLICT, e.to_string()),
            BackupError::BadPath(_) => HttpError::bad_request(e.to_string()),
            BackupError::Failed(_) => {
                tracing::warn!(error = %e, "backup failed");
                HttpError::internal(e.to_string())
            }
        })?;
    tracing::info!(?admin, dir = %report.dir.display(), bytes = report.bytes, "backup made");
    Ok(ok(json!({
        "path": report.dir.display().to_string(),
        "bytes": report.bytes,
        "databases": report.databases,
    })))
}
