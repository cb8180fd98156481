//! JSON in and out of the C ABI: reading params, writing results and events.
//!
//! Every 64-bit id (user, message, conversation, seq, client_msg_id) is written as a decimal
//! string, because a JSON number is a double in many readers (Qt's `QJsonDocument` among them)
//! and loses precision above 2^53. Params accept an id as a decimal string or as a
//! non-negative integer. Times are unix milliseconds as numbers.

use feige_client::pb;
use feige_client::{ClientError, ConnState};
use serde_json::{json, Map, Value};

use crate::encoding::hex;
use crate::files_json;
use crate::status::FeigeStatus;

/// Why a call was refused: its status, and text for `feige_last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: FeigeStatus,
    pub(crate) message: String,
}

impl Refusal {
    /// A refusal with the status's own text.
    pub(crate) fn status(status: FeigeStatus) -> Self {
        Refusal {
            status,
            message: status.text().to_string_lossy().into_owned(),
        }
    }

    /// A `FEIGE_ERR_PARAMS` refusal.
    pub(crate) fn params(message: impl Into<String>) -> Self {
        Refusal {
            status: FeigeStatus::FEIGE_ERR_PARAMS,
            message: message.into(),
        }
    }
}

/// A params object.
#[derive(Debug, Default)]
pub(crate) struct Params(Map<String, Value>);

impl Params {
    /// Parses a JSON object (`None` = no params, as `{}`).
    ///
    /// # Errors
    /// `FEIGE_ERR_JSON` when not well-formed, `FEIGE_ERR_PARAMS` when not an object.
    pub(crate) fn parse(text: Option<&str>) -> Result<Params, Refusal> {
        let Some(text) = text else {
            return Ok(Params::default());
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Params(map)),
            Ok(Value::Null) => Ok(Params::default()),
            Ok(_) => Err(Refusal::params("params must be a JSON object".to_owned())),
            Err(e) => Err(Refusal {
                status: FeigeStatus::FEIGE_ERR_JSON,
                message: e.to_string(),
            }),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    pub(crate) fn string(&self, key: &str) -> Result<String, Refusal> {
        self.opt_string(key)?
            .ok_or_else(|| Refusal::params(format!("missing \"{key}\"")))
    }

    /// An optional string.
    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, Refusal> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Refusal::params(format!("\"{key}\" must be a string"))),
        }
    }

    /// A required id.
    pub(crate) fn id(&self, key: &str) -> Result<u64, Refusal> {
        self.opt_id(key)?
            .ok_or_else(|| Refusal::params(format!("missing \"{key}\"")))
    }

    /// An optional id (0 when absent).
    pub(crate) fn opt_id(&self, key: &str) -> Result<Option<u64>, Refusal> {
        self.get(key).map(|v| id_of(key, v)).transpose()
    }

    /// An optional unsigned 32-bit number (a count or limit).
    pub(crate) fn opt_u32(&self, key: &str) -> Result<Option<u32>, Refusal> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    Refusal::params(format!("\"{key}\" must be a number from 0 to 2^32-1"))
                }),
        }
    }

    /// An optional signed 64-bit number (a time in unix ms).
    pub(crate) fn opt_i64(&self, key: &str) -> Result<Option<i64>, Refusal> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Refusal::params(format!("\"{key}\" must be an integer"))),
        }
    }

    /// An optional array.
    pub(crate) fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, Refusal> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(Refusal::params(format!("\"{key}\" must be an array"))),
        }
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, Refusal> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Refusal::params(format!("\"{key}\" must be true or false"))),
        }
    }

    /// An optional array of ids (empty when absent).
    pub(crate) fn ids(&self, key: &str) -> Result<Vec<u64>, Refusal> {
        self.opt_array(key)?
            .into_iter()
            .flatten()
            .map(|v| id_of(key, v))
            .collect()
    }

    /// Params of one element of an array param.
    pub(crate) fn of(key: &str, v: &Value) -> Result<Params, Refusal> {
        match v {
            Value::Object(map) => Ok(Params(map.clone())),
            _ => Err(Refusal::params(format!(
                "the elements of \"{key}\" must be objects"
            ))),
        }
    }
}

/// An id: a decimal string or a non-negative integer.
fn id_of(key: &str, v: &Value) -> Result<u64, Refusal> {
    let parsed = match v {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Refusal::params(format!(
            "\"{key}\" must be an id: a decimal string such as \"42\""
        ))
    })
}

/// The name of a message kind: `text`, `image`, `file`, `voice`, `video`, `sticker`,
/// `system`, `recalled`, `red_packet`.
fn kind_name(kind: i32) -> &'static str {
    match pb::MessageKind::try_from(kind) {
        Ok(pb::MessageKind::Text) => "text",
        Ok(pb::MessageKind::Image) => "image",
        Ok(pb::MessageKind::File) => "file",
        Ok(pb::MessageKind::Voice) => "voice",
        Ok(pb::MessageKind::Video) => "video",
        Ok(pb::MessageKind::Sticker) => "sticker",
        Ok(pb::MessageKind::System) => "system",
        Ok(pb::MessageKind::RedPacket) => "red_packet",
        Ok(pb::MessageKind::Recalled) => "recalled",
        Err(_) => "unknown",
    }
}

/// The kind named `name` (see [`kind_name`]).
pub(crate) fn kind_of(name: &str) -> Option<pb::MessageKind> {
    match name {
        "text" => Some(pb::MessageKind::Text),
        "image" => Some(pb::MessageKind::Image),
        "file" => Some(pb::MessageKind::File),
        "voice" => Some(pb::MessageKind::Voice),
        "video" => Some(pb::MessageKind::Video),
        "sticker" => Some(pb::MessageKind::Sticker),
        "system" => Some(pb::MessageKind::System),
        _ => None,
    }
}

/// A message's fields (without `"type"`).
pub(crate) fn message(m: &pb::Message) -> Map<String, Value> {
    let mut v = json!({
        "message_id": m.message_id.to_string(),
        "conversation_id": m.conversation_id.to_string(),
        "seq": m.seq.to_string(),
        "from_user": m.from_user.to_string(),
        "to_user": m.to_user.to_string(),
        "client_msg_id": m.client_msg_id.to_string(),
        "kind": kind_name(m.kind),
        "text": m.text,
        "sent_at": m.sent_at_ms,
        "mentions": ids(&m.mentions),
        "mention_all": m.mention_all,
    });
    // Only on a recalled message (kind `recalled`).
    if m.recalled_by != 0 {
        v["recalled_by"] = m.recalled_by.to_string().into();
    }
    files_json::message_fields(m, &mut v);
    match v {
        // A red packet's message names its packet (for red_packet_grab / red_packet_info).
        Value::Object(mut map) if m.red_packet_id != 0 => {
            map.insert("red_packet_id".into(), m.red_packet_id.to_string().into());
            map
        }
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `{"messages":[...]}`.
pub(crate) fn messages(ms: &[pb::Message]) -> Value {
    let list: Vec<Value> = ms.iter().map(|m| Value::Object(message(m))).collect();
    json!({ "messages": list })
}

/// A page of messages (History, Search) with whether more follow.
pub(crate) fn message_page(page: &pb::Messages) -> Value {
    let list: Vec<Value> = page
        .messages
        .iter()
        .map(|m| Value::Object(message(m)))
        .collect();
    json!({ "messages": list, "has_more": page.has_more })
}

/// One's own profile.
pub(crate) fn profile(p: &pb::Profile) -> Value {
    json!({
        "user_id": p.user_id.to_string(),
        "username": p.username,
        "nickname": p.nickname,
        "created_at": p.created_at_ms,
        "signature": p.signature,
        "avatar": p.avatar,
        "phone": p.phone,
        "email": p.email,
    })
}

/// Another user's public profile.
pub(crate) fn user(u: &pb::PublicProfile) -> Value {
    json!({
        "user_id": u.user_id.to_string(),
        "username": u.username,
        "nickname": u.nickname,
        "signature": u.signature,
        "avatar": u.avatar,
    })
}

/// `{"users":[...]}` plus `has_more`.
pub(crate) fn users(l: &pb::UserList) -> Value {
    let list: Vec<Value> = l.users.iter().map(user).collect();
    json!({ "users": list, "has_more": l.has_more })
}

/// A friend.
pub(crate) fn friend(f: &pb::Friend) -> Value {
    json!({
        "user": f.user.as_ref().map(user),
        "remark": f.remark,
        "online": f.online,
        "since": f.since_ms,
        "conversation_id": f.conversation_id.to_string(),
        "group": f.group,
    })
}

/// A friend request's fields (without `"type"`).
pub(crate) fn friend_request(r: &pb::FriendRequest) -> Value {
    json!({
        "request_id": r.request_id.to_string(),
        "from": r.from.as_ref().map(user),
        "to": r.to.as_ref().map(user),
        "message": r.message,
        "created_at": r.created_at_ms,
    })
}

/// The outcome of a friend request (without `"type"`).
pub(crate) fn friend_response(r: &pb::FriendResponse) -> Value {
    json!({
        "request_id": r.request_id.to_string(),
        "accepted": r.accepted,
        "user": r.user.as_ref().map(user),
        "friend": r.friend.as_ref().map(friend),
    })
}

/// A read position (without `"type"`).
pub(crate) fn read_position(p: &pb::ReadPosition) -> Value {
    json!({
        "conversation_id": p.conversation_id.to_string(),
        "seq": p.seq.to_string(),
        "unread": p.unread,
    })
}

/// A conversation list entry.
pub(crate) fn conversation(c: &pb::Conversation) -> Value {
    json!({
        "conversation_id": c.conversation_id.to_string(),
        "peer": c.peer.as_ref().map(user),
        "remark": c.remark,
        "last_message": c.last_message.as_ref().map(|m| Value::Object(message(m))),
        "unread": c.unread,
        "read_seq": c.read_seq.to_string(),
        "last_active": c.last_active_ms,
        "group": c.group.as_ref().map(group),
        "mentioned": c.mentioned,
    })
}

/// Ids as a JSON array of decimal strings.
pub(crate) fn ids(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|i| Value::from(i.to_string())).collect())
}

/// A group role's name: "owner", "admin" or "member".
pub(crate) fn role_name(role: i32) -> &'static str {
    match pb::GroupRole::try_from(role) {
        Ok(pb::GroupRole::Owner) => "owner",
        Ok(pb::GroupRole::Admin) => "admin",
        _ => "member",
    }
}

/// A group's profile (`group_info`, the `group_updated` event).
pub(crate) fn group(g: &pb::GroupInfo) -> Value {
    json!({
        "group_id": g.group_id.to_string(),
        "conversation_id": g.conversation_id.to_string(),
        "name": g.name,
        "avatar": g.avatar,
        "announcement": g.announcement,
        "owner": g.owner.to_string(),
        "member_count": g.member_count,
        "mute_all": g.mute_all,
        "join_approval": g.join_approval,
        "created_at": g.created_at_ms,
        "my_role": role_name(g.my_role),
    })
}

/// A pending group invitation (`group_invites`, the `group_invitation` event).
pub(crate) fn group_invitation(i: &pb::GroupInvitation) -> Value {
    json!({
        "group_id": i.group_id.to_string(),
        "group_name": i.group_name,
        "user": i.user_id.to_string(),
        "inviter": i.inviter.to_string(),
        "created_at": i.created_at_ms,
    })
}

/// A 1:1 receipt push (without `"type"`).
pub(crate) fn read_receipt(r: &pb::ReadReceipt) -> Value {
    json!({
        "conversation_id": r.conversation_id.to_string(),
        "user_id": r.user_id.to_string(),
        "read_seq": r.read_seq.to_string(),
        "delivered_seq": r.delivered_seq.to_string(),
    })
}

/// A recall push (without `"type"`).
pub(crate) fn message_recalled(r: &pb::MessageRecalled) -> Value {
    json!({
        "conversation_id": r.conversation_id.to_string(),
        "seq": r.seq.to_string(),
        "message_id": r.message_id.to_string(),
        "recalled_by": r.recalled_by.to_string(),
        "recall_id": r.recall_id.to_string(),
        "recalled_at": r.recalled_at_ms,
    })
}

/// `value` with `"type": kind` added (for push events).
pub(crate) fn typed(kind: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::from(kind));
    if let Value::Object(fields) = value {
        map.extend(fields);
    }
    Value::Object(map)
}

/// A session (the result of `login` and `resume`).
pub(crate) fn session(s: &pb::Session) -> Value {
    json!({
        "user_id": s.user_id.to_string(),
        "token": hex(&s.token),
        "device": s.device,
        "profile": s.profile.as_ref().map(profile),
        "session_id": s.session_id.to_string(),
        "expires_at": s.expires_at_ms,
    })
}

/// One entry of the `sessions` result.
pub(crate) fn session_info(s: &pb::SessionInfo) -> Value {
    json!({
        "session_id": s.session_id.to_string(),
        "device": s.device,
        "created_at": s.created_at_ms,
        "last_seen": s.last_seen_ms,
        "address": s.address,
        "expires_at": s.expires_at_ms,
        "current": s.current,
        "online": s.online,
    })
}

/// The push event of a message.
pub(crate) fn message_push(m: &pb::Message) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::from("message"));
    map.extend(message(m));
    Value::Object(map)
}

/// The state event of a connection state.
pub(crate) fn state(s: ConnState) -> Value {
    match s {
        ConnState::Connecting => json!({ "state": "connecting" }),
        ConnState::Connected => json!({ "state": "connected" }),
        ConnState::Disconnected { retry_in } => json!({
            "state": "disconnected",
            "retry_in_ms": u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
        }),
        ConnState::Syncing => json!({ "state": "syncing" }),
        ConnState::Synced => json!({ "state": "synced" }),
        // A state the C SDK does not map yet.
        _ => json!({ "state": "unknown" }),
    }
}

/// The JSON of a failed completion: `{"error":{"code","message"}}`.
pub(crate) fn error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

/// The JSON of a failed client call; a server error that asks to wait (`RATE_LIMITED`) also
/// carries `"retry_after_ms"`.
pub(crate) fn client_error(e: &ClientError) -> Value {
    let message = match e {
        ClientError::Server { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let mut v = error(FeigeStatus::error_code(e), &message);
    if let (Some(wait), Some(obj)) = (e.retry_after(), v["error"].as_object_mut()) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        obj.insert("retry_after_ms".into(), ms.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_error_carries_its_wait() {
        let limited = ClientError::from(feige_protocol::pb::Error {
            code: feige_protocol::ErrorCode::RateLimited as i32,
            message: "slow down".into(),
            retry_after_ms: 1500,
        });
        let v = client_error(&limited);
        assert_eq!(v["error"]["code"], "RATE_LIMITED");
        assert_eq!(v["error"]["message"], "slow down");
        assert_eq!(v["error"]["retry_after_ms"], 1500);
        let plain = client_error(&ClientError::Timeout);
        assert!(plain["error"].get("retry_after_ms").is_none());
    }

    #[test]
    fn ids_accept_strings_and_integers() {
        let p = Params::parse(Some(
            r#"{"a":"18446744073709551615","b":7,"c":-1,"d":"x","e":1.5}"#,
        ))
        .unwrap_or_default();
        assert_eq!(p.id("a"), Ok(u64::MAX));
        assert_eq!(p.id("b"), Ok(7));
        for bad in ["c", "d", "e"] {
            assert_eq!(
                p.id(bad).map_err(|e| e.status),
                Err(FeigeStatus::FEIGE_ERR_PARAMS)
            );
        }
        assert_eq!(p.opt_id("missing"), Ok(None));
    }

    #[test]
    fn malformed_and_non_object_params() {
        let e = Params::parse(Some("{")).map(|_| ()).map_err(|e| e.status);
        assert_eq!(e, Err(FeigeStatus::FEIGE_ERR_JSON));
        let e = Params::parse(Some("[1]")).map(|_| ()).map_err(|e| e.status);
        assert_eq!(e, Err(FeigeStatus::FEIGE_ERR_PARAMS));
        assert!(Params::parse(None).is_ok());
    }

    #[test]
    fn message_ids_are_strings() {
        let m = pb::Message {
            message_id: u64::MAX,
            conversation_id: 3,
            seq: 1,
            from_user: 1,
            to_user: 2,
            text: "hi".to_owned(),
            sent_at_ms: 1_700_000_000_000,
            ..Default::default()
        };
        let v = message_push(&m);
        assert_eq!(v["type"], "message");
        assert_eq!(v["message_id"], "18446744073709551615");
        assert_eq!(v["seq"], "1");
        assert_eq!(v["kind"], "text");
        assert_eq!(v["sent_at"], 1_700_000_000_000_i64);
    }
}
