//! The HTTP answers' JSON shape: `{"code":200,"msg":"Success","data":{...}}`, and for errors
//! the HTTP status in `code` with an empty `data`.
// The route modules that plug into `http/mod.rs` (api, admin, metrics, pages) use these.
#![allow(dead_code)]

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// `{"code":200,"msg":"Success","data":data}` with status 200.
pub(crate) fn ok(data: impl Serialize) -> Response {
    let body = serde_json::json!({ "code": 200, "msg": "Success", "data": data });
    (StatusCode::OK, Json(body)).into_response()
}

/// An error answer: `{"code":<status>,"msg":...,"data":{}}` with that HTTP status.
#[derive(Debug, Clone)]
pub(crate) struct HttpError {
    /// HTTP status, also written as `code`.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub msg: String,
}

impl HttpError {
    /// An error with `status` and `msg`.
    pub(crate) fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        HttpError {
            status,
            msg: msg.into(),
        }
    }

    /// 400: a parameter is missing or invalid.
    pub(crate) fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    /// 401: no token, or a wrong one.
    pub(crate) fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, msg)
    }

    /// 403: a valid caller without the right.
    pub(crate) fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }

    /// 500: the server failed (the store, say).
    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": self.status.as_u16(),
            "msg": self.msg,
            "data": {},
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<feige_storage::StorageError> for HttpError {
    fn from(e: feige_storage::StorageError) -> Self {
        tracing::warn!(error = %e, "HTTP request failed in the store");
        HttpError::internal("storage error")
    }
}
