//! The admin API's system notices (to a user, a group's members, or everyone) and address
//! bans (list, add, remove). Auth and answers as in [`super::admin`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use feige_storage::admin::{self as store_admin, BanRecord};
use serde_json::{json, Value};

use super::admin::audit;
use super::auth::AdminCaller;
use super::params::Params;
use super::reply::{ok, HttpError};
use crate::notices::{self, NoticeTo};
use crate::{moderation, Shared};

/// The admin API's notice and ban routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/api/notices", post(notice))
        .route(
            "/admin/api/bans",
            get(list_bans).post(add_ban).delete(remove_ban),
        )
}

/// `POST /admin/api/notices` `{"to":"user"|"group"|"all","id"?,"title","body"}`: stored, and
/// pushed to the recipients online.
async fn notice(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let to = match p.required("to")? {
        "user" => NoticeTo::User(p.id("id")?),
        "group" => NoticeTo::Group(p.id("id")?),
        "all" => NoticeTo::Everyone,
        other => {
            return Err(HttpError::bad_request(format!(
                "to must be user, group or all, not {other:?}"
            )))
        }
    };
    let title = p.text("title").unwrap_or("");
    let text = p.required("body")?;
    let posted = notices::post(&shared, to, 0, title, text)
        .await
        .map_err(|e| match (e.code, to) {
            (feige_protocol::ErrorCode::NotFound, NoticeTo::User(u)) => {
                HttpError::new(StatusCode::NOT_FOUND, format!("unknown user {u}"))
            }
            (feige_protocol::ErrorCode::NotFound, NoticeTo::Group(g)) => {
                HttpError::new(StatusCode::NOT_FOUND, format!("unknown group {g}"))
            }
            _ => e.into(),
        })?;
    audit(&who, &format!("posted notice {} ({to:?})", posted.id));
    Ok(ok(
        json!({ "notice_id": posted.id, "recipients": posted.recipients }),
    ))
}

fn ban_json(b: &BanRecord) -> Value {
    json!({ "cidr": b.cidr, "reason": b.reason, "created_at_ms": b.created_at_ms })
}

/// `GET /admin/api/bans`: every ban.
async fn list_bans(
    _: AdminCaller,
    State(shared): State<Arc<Shared>>,
) -> Result<Response, HttpError> {
    let bans = shared.store.read(store_admin::list_bans).await?;
    let bans: Vec<Value> = bans.iter().map(ban_json).collect();
    Ok(ok(json!({ "bans": bans })))
}

/// `POST /admin/api/bans` `{"cidr","reason"?}`: bans the range and closes its connections.
async fn add_ban(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let cidr = p.required("cidr")?;
    let (ban, closed) = moderation::ban(&shared, cidr, p.text("reason").unwrap_or("")).await?;
    audit(&who, &format!("banned {} ({closed} closed)", ban.cidr));
    Ok(ok(json!({ "ban": ban_json(&ban), "closed": closed })))
}

/// `DELETE /admin/api/bans` `{"cidr"}` (or `?cidr=`): lifts a ban.
async fn remove_ban(
    who: AdminCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let cidr = p.required("cidr")?;
    if !moderation::unban(&shared, cidr).await? {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no ban of {cidr}"),
        ));
    }
    audit(&who, &format!("lifted the ban of {cidr}"));
    Ok(ok(json!({ "removed": true })))
}
