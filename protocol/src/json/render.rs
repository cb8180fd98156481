//! The JSON of the protocol's messages, as `feige_call` results and events show them.
//!
//! Every 64-bit id (user, message, conversation, seq, client_msg_id) is written as a decimal
//! string, because a JSON number is a double in many readers (Qt's `QJsonDocument` among them)
//! and loses precision above 2^53. Times are unix milliseconds as numbers.

use serde_json::{json, Map, Value};

use super::params::hex;
pub use super::render_files::{
    file, file_data, file_offer, files, message_fields, offer_state, transcript,
};
use crate::pb;

/// The name of a message kind: `text`, `image`, `file`, `voice`, `video`, `sticker`,
/// `system`, `recalled`, `red_packet`.
pub fn kind_name(kind: i32) -> &'static str {
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
pub fn kind_of(name: &str) -> Option<pb::MessageKind> {
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
pub fn message(m: &pb::Message) -> Map<String, Value> {
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
    // Only when the sender closed their account.
    if m.sender_closed {
        v["sender_closed"] = true.into();
    }
    // A file message's file, a voice message's transcript, a file offer's state.
    message_fields(m, &mut v);
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
pub fn messages(ms: &[pb::Message]) -> Value {
    let list: Vec<Value> = ms.iter().map(|m| Value::Object(message(m))).collect();
    json!({ "messages": list })
}

/// A page of messages (History, Search) with whether more follow.
pub fn message_page(page: &pb::Messages) -> Value {
    let list: Vec<Value> = page
        .messages
        .iter()
        .map(|m| Value::Object(message(m)))
        .collect();
    json!({ "messages": list, "has_more": page.has_more })
}

/// One's own profile.
pub fn profile(p: &pb::Profile) -> Value {
    json!({
        "user_id": p.user_id.to_string(),
        "username": p.username,
        "nickname": p.nickname,
        "created_at": p.created_at_ms,
        "signature": p.signature,
        "avatar": p.avatar,
        "phone": p.phone,
        "email": p.email,
        "phone_verified": p.phone_verified,
        "email_verified": p.email_verified,
        "totp_enabled": p.totp_enabled,
    })
}

/// Another user's public profile.
pub fn user(u: &pb::PublicProfile) -> Value {
    json!({
        "user_id": u.user_id.to_string(),
        "username": u.username,
        "nickname": u.nickname,
        "signature": u.signature,
        "avatar": u.avatar,
        "closed": u.closed,
    })
}

/// A new TOTP secret: `{"otpauth_uri","secret"}`.
pub fn totp_secret(s: &pb::TotpSecret) -> Value {
    json!({ "otpauth_uri": s.otpauth_uri, "secret": s.secret })
}

/// `{"recovery_codes":[...]}`.
pub fn recovery_codes(c: &pb::RecoveryCodes) -> Value {
    json!({ "recovery_codes": c.codes })
}

/// `{"users":[...]}` plus `has_more`.
pub fn users(l: &pb::UserList) -> Value {
    let list: Vec<Value> = l.users.iter().map(user).collect();
    json!({ "users": list, "has_more": l.has_more })
}

/// A friend.
pub fn friend(f: &pb::Friend) -> Value {
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
pub fn friend_request(r: &pb::FriendRequest) -> Value {
    json!({
        "request_id": r.request_id.to_string(),
        "from": r.from.as_ref().map(user),
        "to": r.to.as_ref().map(user),
        "message": r.message,
        "created_at": r.created_at_ms,
    })
}

/// The outcome of a friend request (without `"type"`).
pub fn friend_response(r: &pb::FriendResponse) -> Value {
    json!({
        "request_id": r.request_id.to_string(),
        "accepted": r.accepted,
        "user": r.user.as_ref().map(user),
        "friend": r.friend.as_ref().map(friend),
    })
}

/// A read position (without `"type"`).
pub fn read_position(p: &pb::ReadPosition) -> Value {
    json!({
        "conversation_id": p.conversation_id.to_string(),
        "seq": p.seq.to_string(),
        "unread": p.unread,
    })
}

/// A conversation list entry.
pub fn conversation(c: &pb::Conversation) -> Value {
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
        "last_seq": c.last_seq.to_string(),
    })
}

/// Ids as a JSON array of decimal strings.
pub fn ids(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|i| Value::from(i.to_string())).collect())
}

/// A group role's name: "owner", "admin" or "member".
pub fn role_name(role: i32) -> &'static str {
    match pb::GroupRole::try_from(role) {
        Ok(pb::GroupRole::Owner) => "owner",
        Ok(pb::GroupRole::Admin) => "admin",
        _ => "member",
    }
}

/// A group's profile (`group_info`, the `group_updated` event).
pub fn group(g: &pb::GroupInfo) -> Value {
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
pub fn group_invitation(i: &pb::GroupInvitation) -> Value {
    json!({
        "group_id": i.group_id.to_string(),
        "group_name": i.group_name,
        "user": i.user_id.to_string(),
        "inviter": i.inviter.to_string(),
        "created_at": i.created_at_ms,
    })
}

/// A 1:1 receipt push (without `"type"`).
pub fn read_receipt(r: &pb::ReadReceipt) -> Value {
    json!({
        "conversation_id": r.conversation_id.to_string(),
        "user_id": r.user_id.to_string(),
        "read_seq": r.read_seq.to_string(),
        "delivered_seq": r.delivered_seq.to_string(),
    })
}

/// A recall push (without `"type"`).
pub fn message_recalled(r: &pb::MessageRecalled) -> Value {
    json!({
        "conversation_id": r.conversation_id.to_string(),
        "seq": r.seq.to_string(),
        "message_id": r.message_id.to_string(),
        "recalled_by": r.recalled_by.to_string(),
        "recall_id": r.recall_id.to_string(),
        "recalled_at": r.recalled_at_ms,
    })
}

/// A system notification (the `notification` push and the `notifications` list).
pub fn notification(n: &pb::Notification) -> Value {
    json!({
        "id": n.id.to_string(),
        "title": n.title,
        "body": n.body,
        "from": n.from.to_string(),
        "created_at": n.created_at_ms,
        "read": n.read,
    })
}

/// `value` with `"type": kind` added (for push events).
pub fn typed(kind: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::from(kind));
    if let Value::Object(fields) = value {
        map.extend(fields);
    }
    Value::Object(map)
}

/// A session (the result of `login` and `resume`).
pub fn session(s: &pb::Session) -> Value {
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
pub fn session_info(s: &pb::SessionInfo) -> Value {
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
pub fn message_push(m: &pb::Message) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::from("message"));
    map.extend(message(m));
    Value::Object(map)
}

/// A stored message's answer: `{"message_id","conversation_id","seq","sent_at","duplicate"}`.
pub fn send_ok(ok: &pb::SendOk) -> Value {
    json!({
        "message_id": ok.message_id.to_string(),
        "conversation_id": ok.conversation_id.to_string(),
        "seq": ok.seq.to_string(),
        "sent_at": ok.sent_at_ms,
        "duplicate": ok.duplicate,
    })
}

/// A room message's answer: `{"message_id","sent_at","duplicate"}`.
pub fn room_sent(ok: &pb::RoomSent) -> Value {
    json!({
        "message_id": ok.message_id.to_string(),
        "sent_at": ok.sent_at_ms,
        "duplicate": ok.duplicate,
    })
}

/// A red packet's answer: `{"packet_id","message_id","seq","sent_at","duplicate"}`.
pub fn red_packet_sent(ok: &pb::SendOk) -> Value {
    json!({
        "packet_id": ok.message_id.to_string(),
        "message_id": ok.message_id.to_string(),
        "seq": ok.seq.to_string(),
        "sent_at": ok.sent_at_ms,
        "duplicate": ok.duplicate,
    })
}

/// A red packet with its grabs (`red_packet_info`).
pub fn red_packet(r: &pb::RedPacket) -> Value {
    let grabs: Vec<_> = r
        .grabs
        .iter()
        .map(|g| {
            json!({
                "user_id": g.user_id.to_string(),
                "amount_cents": g.amount_cents,
                "grabbed_at": g.grabbed_at_ms,
            })
        })
        .collect();
    let mode = if r.mode == pb::RedPacketMode::Equal as i32 {
        "equal"
    } else {
        "random"
    };
    json!({
        "packet_id": r.packet_id.to_string(),
        "conversation_id": r.conversation_id.to_string(),
        "sender_id": r.sender_id.to_string(),
        "total_cents": r.total_cents,
        "count": r.count,
        "mode": mode,
        "greeting": r.greeting,
        "grabs": grabs,
        "remaining_cents": r.remaining_cents,
        "remaining_count": r.remaining_count,
        "created_at": r.created_at_ms,
        "expires_at": r.expires_at_ms,
        "expired": r.expired,
        "refunded_cents": r.refunded_cents,
    })
}

/// A world room's message: `{"room","message_id","from_user","client_msg_id","text","sent_at"}`.
pub fn room_message(m: &pb::RoomMessage) -> Value {
    json!({
        "room": m.room.to_string(),
        "message_id": m.message_id.to_string(),
        "from_user": m.from_user.to_string(),
        "client_msg_id": m.client_msg_id.to_string(),
        "text": m.text,
        "sent_at": m.sent_at_ms,
    })
}

/// A grab the sender hears of: `{"packet_id","conversation_id","user_id","amount_cents",
/// "remaining_count","remaining_cents"}`.
pub fn grabbed(g: &pb::RedPacketGrabbed) -> Value {
    json!({
        "packet_id": g.packet_id.to_string(),
        "conversation_id": g.conversation_id.to_string(),
        "user_id": g.user_id.to_string(),
        "amount_cents": g.amount_cents,
        "remaining_count": g.remaining_count,
        "remaining_cents": g.remaining_cents,
    })
}

/// The `kicked` event: `{"type":"kicked","code","reason"}`.
pub fn kicked(code: crate::ErrorCode, reason: &str) -> Value {
    json!({ "type": "kicked", "code": code_name(code), "reason": reason })
}

/// The short name of an error code, as in the .proto file without its prefix
/// (`NOT_LOGGED_IN`).
pub fn code_name(code: crate::ErrorCode) -> &'static str {
    let name = code.as_str_name();
    name.strip_prefix("ERROR_CODE_").unwrap_or(name)
}

/// The HTTP-like status of an error code (the WebSocket answers' `code`): 400 bad input,
/// 401 not logged in or bad credentials, 403 not allowed, 404 not found, 409 conflicts with
/// the current state, 413 too large, 429 too many, 500 server fault, 503 unavailable.
pub fn http_status(code: crate::ErrorCode) -> u16 {
    use crate::ErrorCode as E;
    match code {
        E::NotLoggedIn
        | E::BadCredentials
        | E::InvalidToken
        | E::HelloRequired
        | E::SecondFactorRequired
        | E::TotpInvalid
        | E::ChallengeInvalid => 401,
        E::Forbidden
        | E::NotFriends
        | E::Blocked
        | E::NotAMember
        | E::Muted
        | E::NotInRoom
        | E::AccountDisabled
        | E::PendingApproval
        | E::AddressBanned
        | E::KickedByAdmin
        | E::VerificationRequired
        | E::AccountClosed => 403,
        E::NotFound => 404,
        E::UsernameTaken
        | E::AlreadyLoggedIn
        | E::AlreadyFriends
        | E::RequestPending
        | E::RecallExpired
        | E::AlreadyRecalled
        | E::RedPacketEmpty
        | E::AlreadyGrabbed
        | E::InsufficientFunds
        | E::RedPacketExpired
        | E::GroupFull
        | E::RoomFull
        | E::TooManyRooms
        | E::HashMismatch
        | E::UploadIncomplete
        | E::OfferNotAccepted
        | E::ContactTaken => 409,
        E::FrameTooLarge | E::TooLarge | E::FileTooLarge | E::QuotaExceeded => 413,
        E::RateLimited | E::TooManyConnections | E::CodeCooldown | E::CodeRateLimited => 429,
        E::Internal | E::TranscriptionFailed => 500,
        E::Busy | E::ShuttingDown | E::SpeechUnavailable | E::SenderFailed => 503,
        E::LoginTimeout | E::IdleTimeout | E::FrameTimeout | E::SlowConsumer => 408,
        E::Unspecified
        | E::Malformed
        | E::UnsupportedVersion
        | E::UnknownRequest
        | E::InvalidArgument
        | E::CodeInvalid
        | E::CodeExpired
        | E::CodeAttemptsExceeded => 400,
    }
}

/// The fields of a `friend_removed` event.
pub fn friend_removed(user_id: u64) -> Value {
    json!({ "user_id": user_id.to_string() })
}

/// The fields of a `presence` event (and the `presence` result).
pub fn presence(user_id: u64, online: bool) -> Value {
    json!({ "user_id": user_id.to_string(), "online": online })
}

/// The fields of a `block_changed` event.
pub fn block_changed(user: &pb::PublicProfile, blocked: bool) -> Value {
    json!({ "user": self::user(user), "blocked": blocked })
}

/// The fields of a `group_removed` event.
pub fn group_removed(r: &pb::GroupRemoved) -> Value {
    let reason = match pb::GroupRemovedReason::try_from(r.reason) {
        Ok(pb::GroupRemovedReason::Removed) => "removed",
        Ok(pb::GroupRemovedReason::Dismissed) => "dismissed",
        _ => "left",
    };
    json!({
        "group_id": r.group_id.to_string(),
        "reason": reason,
        "by_user": r.by_user.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_file_message_carries_its_file_transcript_and_offer() {
        let m = pb::Message {
            kind: pb::MessageKind::Voice as i32,
            file: Some(pb::FileInfo {
                file_id: 9,
                ..Default::default()
            }),
            transcript: "hello".into(),
            offer: pb::FileOfferState::Pending as i32,
            ..Default::default()
        };
        let v = message_push(&m);
        assert_eq!(v["file"]["file_id"], "9");
        assert_eq!(v["transcript"], "hello");
        assert_eq!(v["offer"], "pending");
        assert!(message_push(&pb::Message::default()).get("file").is_none());
    }
}
