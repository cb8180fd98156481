//! The server-to-server HTTP API (`Authorization: Bearer <api_token>`): who is in a world
//! room, whether a user is, a system notice to one user, a message to everyone in a room.
//! Every route takes GET or POST, its parameters from the query string or a form or JSON
//! body (docs/http-api.md).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use feige_protocol::{frame, Envelope, PushKind};
use feige_storage::{now_ms, rooms as store_rooms, social, UserId};
use serde_json::json;

use super::auth::ApiCaller;
use super::params::Params;
use super::reply::{ok, HttpError};
use crate::notices::{self, NoticeTo};
use crate::request::rooms::room_message;
use crate::{validate, Shared};

/// Most users `/user/list` names (`userCount` counts them all).
const LIST_MAX: usize = 1000;

/// The API's routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/user/list", get(list).post(list))
        .route("/user/online", get(online).post(online))
        .route("/user/sendMessage", get(send_message).post(send_message))
        .route(
            "/user/sendMessageAll",
            get(send_message_all).post(send_message_all),
        )
}

/// `appId`: a world room that has a connection in it.
fn room(shared: &Shared, p: &Params) -> Result<u64, HttpError> {
    let room = p.id("appId")?;
    if shared.rooms.exists(room) {
        Ok(room)
    } else {
        Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("unknown room {room}: nobody is in it"),
        ))
    }
}

/// Checks that `user` exists.
async fn known_user(shared: &Shared, user: UserId) -> Result<(), HttpError> {
    match shared.store.user_by_id(user).await? {
        Some(_) => Ok(()),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("unknown user {user}"),
        )),
    }
}

/// `/user/list?appId=`: the users in the room.
async fn list(
    _: ApiCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let room = room(&shared, &p)?;
    let (ids, count) = shared.rooms.members(room, LIST_MAX);
    let users = shared
        .store
        .read(move |c| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = social::public_user(c, id)? {
                    out.push(json!({
                        "userId": u.id,
                        "username": u.username,
                        "nickname": u.nickname,
                    }));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(ok(json!({ "userCount": count, "userList": users })))
}

/// `/user/online?appId=&userId=`: whether the user has a connection in the room.
async fn online(
    _: ApiCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let room = room(&shared, &p)?;
    let user = p.id("userId")?;
    known_user(&shared, user).await?;
    let online = shared.rooms.has_user(room, user);
    Ok(ok(json!({ "online": online, "userId": user })))
}

/// `/user/sendMessage` (`appId`, `userId`, `message`): a system notification to one user,
/// stored and pushed.
async fn send_message(
    _: ApiCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    p.id("appId")?;
    let user = p.id("userId")?;
    let message = p.required("message")?;
    known_user(&shared, user).await?;
    notices::post(&shared, NoticeTo::User(user), 0, "", message).await?;
    Ok(ok(json!({ "sendResults": true })))
}

/// `/user/sendMessageAll` (`appId`, `userId`, `msgId`, `message`): a room message from
/// `userId` (0 or absent: the system) to everyone in the room; a `msgId` the sender used in
/// the room before (and still kept) is not sent again.
async fn send_message_all(
    _: ApiCaller,
    State(shared): State<Arc<Shared>>,
    p: Params,
) -> Result<Response, HttpError> {
    let room = room(&shared, &p)?;
    let sender = p.number("userId", 0)?;
    let msg_id = p.id("msgId")?;
    let message = p.required("message")?.to_owned();
    validate::message_text(&message, shared.config.max_text_len)?;
    if sender != 0 {
        validate::id("userId", sender)?;
        known_user(&shared, sender).await?;
    }
    let keep = shared.config.room_history;
    let (m, duplicate) = shared
        .writer
        .call(move |c| store_rooms::store(c, room, sender, msg_id, &message, keep, now_ms()))
        .await?;
    if !duplicate {
        let push = Envelope::push(PushKind::RoomMessage(room_message(m)));
        shared
            .rooms
            .broadcast(room, 0, &frame::encode_to_bytes(&push));
    }
    Ok(ok(json!({ "sendResults": true, "duplicate": duplicate })))
}
