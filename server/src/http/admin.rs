//! The admin API (the admin token, or an admin user's session token): connections and kicks,
//! users (list, disable, enable, approve, reset a password). Notices and bans are in
//! [`super::admin_notices`]. Parameters from the query string or a JSON (or form) body;
//! answers `{"code":200,"msg":"Success","data":{...}}` (docs/http-api.md).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use feige_protocol::ErrorCode;
use feige_storage::admin::{self as store_admin, AccountChange};
use feige_storage::{social, UserRecord};
use serde_json::{json, Value};

use super::auth::AdminCaller;
use super::params::Params;
use super::reply::{ok, HttpError};
use crate::{moderation, validate, Shared};

/// Rows per page unless `limit` says otherwise.
const PAGE_DEFAULT: u64 = 50;
/// Most rows per page.
const PAGE_MAX: u64 = 500;

/// The admin API's connection and user routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/api/connections", get(connections))
        .route("/admin/api/kick", post(kick))
        .route("/admin/api/users", get(users))
        .route("/admin/api/users/disable", post(disable))
        .route("/admin/api/users/enable", post(enable))
        .route("/admin/api/users/approve", post(approve))
        .route("/admin/api/users/reset_password", post(reset_password))
}

/// `offset` and `limit` (default 50, at most 500).
pub(super) fn page(p: &Params) -> Result<(usize, usize), HttpError> {
    let offset = p.number("offset", 0)?;
    let limit = p.number("limit", PAGE_DEFAULT)?.clamp(1, PAGE_MAX);
    let offset = usize::try_from(offset).map_err(|_| HttpError::bad_request("offset too large"))?;
    Ok((offset, limit as usize))
}

/// Logs who did what.
pub(super) fn audit(who: &AdminCaller, what: &str) {
    match who {
        AdminCaller::Token => tracing::info!(by = "admin token", "admin: {what}"),
        AdminCaller::User(id, name) => tracing::info!(by = %name, user = id, "admin: {what}"),
    }
}

/// `GET /admin/api/connections?offset=&limit=`: the logged-in connections by id.
async fn connections(
    _: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let (offset, limit) = page(&p)?;
    let (list, total) = shared.connections.page(offset, limit);
    let ids: Vec<u64> = list.iter().map(|(_, c)| c.user).collect();
    let names = shared
        .store
        .read(move |c| {
            let mut names = HashMap::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = social::public_user(c, id)? {
                    names.insert(id, u.username);
                }
            }
            Ok(names)
        })
        .await?;
    let connections: Vec<Value> = list
        .into_iter()
        .map(|(conn_id, c)| {
            json!({
                "conn_id": conn_id,
                "user_id": c.user,
                "username": names.get(&c.user).cloned().unwrap_or_default(),
                "device": c.device,
                "addr": c.addr.to_string(),
                "since_ms": c.since_ms,
                "transport": c.transport.as_str(),
            })
        })
        .collect();
    Ok(ok(json!({ "total": total, "connections": connections })))
}

/// `POST /admin/api/kick` `{"user_id"}` or `{"conn_id"}`, `"reason"`: closes the user's
/// connections, or one; each gets `Kicked{KICKED_BY_ADMIN, reason}`.
async fn kick(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let reason = validate::text(&validate::KICK_REASON, p.text("reason").unwrap_or(""))?;
    let reason = if reason.is_empty() {
        ErrorCode::KickedByAdmin.describe().to_owned()
    } else {
        reason
    };
    let code = ErrorCode::KickedByAdmin;
    let kicked = match (p.text("user_id"), p.text("conn_id")) {
        (Some(_), None) => {
            let user = p.id("user_id")?;
            moderation::kick_user(&shared, user, code, &reason)
        }
        (None, Some(_)) => moderation::kick_conn(&shared, p.id("conn_id")?, code, &reason),
        _ => {
            return Err(HttpError::bad_request(
                "give user_id or conn_id (one of them)",
            ))
        }
    };
    audit(&who, &format!("kicked {kicked} connection(s): {reason}"));
    Ok(ok(json!({ "kicked": kicked })))
}

/// One user as the admin API shows it.
fn user_json(u: &UserRecord) -> Value {
    json!({
        "user_id": u.id,
        "username": u.username,
        "nickname": u.nickname,
        "disabled": u.disabled,
        "pending": u.pending,
        "created_at_ms": u.created_at_ms,
    })
}

/// `GET /admin/api/users?query=&offset=&limit=`: users by id whose username or nickname
/// contains `query`.
async fn users(
    _: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let (offset, limit) = page(&p)?;
    let query = p.text("query").unwrap_or("").trim().to_owned();
    if query.chars().count() > 64 {
        return Err(HttpError::bad_request("query is longer than 64 characters"));
    }
    let (list, total) = shared
        .store
        .read(move |c| store_admin::list_users(c, &query, offset, limit))
        .await?;
    let users: Vec<Value> = list.iter().map(user_json).collect();
    Ok(ok(json!({ "total": total, "users": users })))
}

async fn change(
    who: &AdminCaller,
    shared: &Arc<Shared>,
    p: &Params,
    change: AccountChange,
) -> Result<Response, HttpError> {
    let user = p.id("user_id")?;
    let record = moderation::change_account(shared, user, change)
        .await
        .map_err(|e| match e.code {
            ErrorCode::NotFound => {
                HttpError::new(StatusCode::NOT_FOUND, format!("unknown user {user}"))
            }
            _ => e.into(),
        })?;
    audit(who, &format!("{change:?} user {user}"));
    Ok(ok(json!({ "user": user_json(&record) })))
}

/// `POST /admin/api/users/disable` `{"user_id"}`: no login; the user's connections close.
async fn disable(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    change(&who, &shared, &p, AccountChange::Disable).await
}

/// `POST /admin/api/users/enable` `{"user_id"}`.
async fn enable(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    change(&who, &shared, &p, AccountChange::Enable).await
}

/// `POST /admin/api/users/approve` `{"user_id"}`: a pending account may log in.
async fn approve(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    change(&who, &shared, &p, AccountChange::Approve).await
}

/// `POST /admin/api/users/reset_password` `{"user_id","new_password"}`: every session of the
/// user ends.
async fn reset_password(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let user = p.id("user_id")?;
    let password = p.text("new_password").unwrap_or("").to_owned();
    let ended = moderation::reset_password(&shared, user, password)
        .await
        .map_err(|e| match e.code {
            ErrorCode::NotFound => {
                HttpError::new(StatusCode::NOT_FOUND, format!("unknown user {user}"))
            }
            _ => e.into(),
        })?;
    audit(&who, &format!("reset the password of user {user}"));
    Ok(ok(json!({ "sessions_ended": ended })))
}
