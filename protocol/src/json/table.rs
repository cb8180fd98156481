//! The method table: accounts and messages here, the other families in `table_social` and
//! `table_groups`; and the events of pushes. Each row's doc gives params → result, as
//! `docs/sdk.md` does; a test checks that document against [`methods`].

use serde_json::{json, Value};

use super::method::{answer, Method, Prepared, Serve};
use super::params::{unhex, Fields, ParamError, Params};
use super::render;
use super::{table_codes, table_files, table_groups, table_social, table_twofactor};
use crate::{pb, PushKind, RequestKind as K};

/// Every family's rows.
const FAMILIES: &[&[Method]] = &[
    METHODS,
    table_twofactor::METHODS,
    table_social::PEOPLE,
    CONVERSATIONS,
    table_groups::METHODS,
    table_social::RECEIPTS,
    table_files::METHODS,
    table_codes::METHODS,
];

/// Every method, in the order of `docs/sdk.md`'s families.
pub fn methods() -> impl Iterator<Item = &'static Method> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// The method named `name`.
pub fn find(name: &str) -> Option<&'static Method> {
    methods().find(|m| m.name == name)
}

const fn row(name: &'static str, f: fn(&Params) -> Result<Prepared, ParamError>) -> Method {
    Method {
        name,
        serve: Serve::Request(f),
    }
}

const fn local(name: &'static str, why: &'static str) -> Method {
    Method {
        name,
        serve: Serve::Local(why),
    }
}

/// Accounts and messages.
const METHODS: &[Method] = &[
    row("register", register),
    row("login", login),
    row("resume", resume),
    row("logout", logout),
    row("whoami", whoami),
    row("ping", ping),
    local(
        "reconnect_now",
        "it drives the SDK's own connection (a WebSocket reconnects itself)",
    ),
    row("send_message", send_message),
    local(
        "cancel_send",
        "it removes a message from the SDK's own outbox (a WebSocket has none)",
    ),
    row("sync", sync),
    row("ack", ack),
    row("history", history),
    row("search", search),
    row("update_profile", update_profile),
    row("change_password", change_password),
];

/// Conversations and sessions.
const CONVERSATIONS: &[Method] = &[
    row("conversations", conversations),
    row("mark_read", mark_read),
    row("sessions", sessions),
    row("revoke_session", revoke_session),
];

/// `{}`: the result of a request that answers nothing else.
fn empty() -> Value {
    json!({})
}

/// `register`: `{"username","password","nickname"?,"email"?,"phone"?,"code"?}` (an e-mail
/// or phone with the code `request_code` sent it) → `{"user_id","pending"}`.
fn register(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::Register {
        username: p.string("username")?,
        password: p.string("password")?,
        nickname: p.opt_string("nickname")?.unwrap_or_default(),
        email: p.opt_string("email")?.unwrap_or_default(),
        phone: p.opt_string("phone")?.unwrap_or_default(),
        code: p.opt_string("code")?.unwrap_or_default(),
    };
    Ok(answer!(K::Register(r), Register(ok) => {
        json!({ "user_id": ok.user_id.to_string(), "pending": ok.pending })
    }))
}

/// `login`: `{"username","password","device"?}` → the session
/// `{"user_id","token","device","profile","session_id","expires_at"}`.
fn login(p: &Params) -> Result<Prepared, ParamError> {
    let l = pb::Login {
        username: p.string("username")?,
        password: p.string("password")?,
        device: p.opt_string("device")?.unwrap_or_default(),
    };
    Ok(answer!(K::Login(l), Session(s) => render::session(&s)))
}

/// `resume`: `{"token","device"?}` (hex, from `login`) → the session, as `login`.
fn resume(p: &Params) -> Result<Prepared, ParamError> {
    let token = unhex(&p.string("token")?).ok_or_else(|| {
        ParamError::params("\"token\" must be the hex string that login returned")
    })?;
    let r = pb::Resume {
        token: token.into(),
        device: p.opt_string("device")?.unwrap_or_default(),
    };
    Ok(answer!(K::Resume(r), Session(s) => render::session(&s)))
}

/// `logout`: `{}` → `{}`.
fn logout(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Logout(pb::Logout {}), Logout(_) => empty()))
}

/// `whoami`: `{}` → the profile.
fn whoami(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Whoami(pb::WhoAmI {}), Profile(p) => render::profile(&p)))
}

/// `ping`: `{}` → `{}`.
fn ping(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Ping(pb::Ping { nonce: 0 }), Pong(_) => empty()))
}

/// `send_message`: `{"to_user" | "conversation_id", "text", "client_msg_id"?, "kind"?,
/// "mentions"?, "mention_all"?, "file_id"?, "offer"?}` (with a `file_id`, `text` is an
/// optional caption) →
/// `{"message_id","conversation_id","seq","sent_at","duplicate"}`, once stored.
fn send_message(p: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::SendMessage(send_message_request(p)?), Send(ok) => render::send_ok(&ok)))
}

/// The `SendMessage` of `send_message`'s params.
///
/// # Errors
/// Not exactly one of `to_user` and `conversation_id`, an unknown kind, a bad field.
pub fn send_message_request(p: &Params) -> Result<pb::SendMessage, ParamError> {
    send_message_of(p)
}

/// The `SendMessage` of `send_message`'s params, read from `p`: the generic [`Params`] or
/// the typed fast path's struct (`json/direct.rs`), so both map alike.
pub(super) fn send_message_of(p: &impl Fields) -> Result<pb::SendMessage, ParamError> {
    let to_user = p.opt_id("to_user")?.unwrap_or(0);
    let conversation_id = p.opt_id("conversation_id")?.unwrap_or(0);
    if (to_user == 0) == (conversation_id == 0) {
        return Err(ParamError::params(
            "give exactly one of \"to_user\" and \"conversation_id\"",
        ));
    }
    let kind = match p.opt_str("kind")? {
        None => pb::MessageKind::Text,
        Some(k) => render::kind_of(k)
            .ok_or_else(|| ParamError::params(format!("unknown message kind \"{k}\"")))?,
    };
    // With a file, the text is an optional caption.
    let file_id = p.opt_id("file_id")?.unwrap_or(0);
    let text = match (file_id, p.opt_str("text")?) {
        (_, Some(text)) => text.to_owned(),
        (0, None) => return Err(ParamError::params("missing \"text\"")),
        (_, None) => String::new(),
    };
    Ok(pb::SendMessage {
        to_user,
        conversation_id,
        client_msg_id: p.opt_id("client_msg_id")?.unwrap_or(0),
        kind: kind as i32,
        text,
        mentions: p.ids("mentions")?,
        mention_all: p.opt_bool("mention_all")?.unwrap_or(false),
        file_id,
        offer: p.opt_bool("offer")?.unwrap_or(false),
    })
}

/// `{"conversation_id","seq"}` objects of the array `key`.
fn positions(p: &Params, key: &str) -> Result<Vec<pb::ConversationPosition>, ParamError> {
    let mut positions = Vec::new();
    for v in p.opt_array(key)?.into_iter().flatten() {
        let pos = Params::of(key, v)?;
        positions.push(pb::ConversationPosition {
            conversation_id: pos.id("conversation_id")?,
            seq: pos.id("seq")?,
        });
    }
    Ok(positions)
}

/// `sync`: `{"positions"?,"limit"?}` → `{"messages":[...],"has_more"}`: one page of what was
/// missed (the SDK pages through it all, and also delivers it as message events).
fn sync(p: &Params) -> Result<Prepared, ParamError> {
    let s = pb::Sync {
        positions: positions(p, "positions")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
    };
    Ok(
        answer!(K::Sync(s), Sync(page) => render::message_page(&pb::Messages {
            messages: page.messages,
            has_more: page.has_more,
        })),
    )
}

/// `ack`: `{"positions":[{"conversation_id","seq"}]}` → `{}`.
fn ack(p: &Params) -> Result<Prepared, ParamError> {
    let positions = positions(p, "positions")?;
    Ok(answer!(K::Ack(pb::Ack { positions }), Ack(_) => empty()))
}

/// `history`: `{"conversation_id" | "peer_user", "limit"?, "before_seq"?, "after_seq"?,
/// "since"?, "until"?}` → `{"messages":[...],"has_more"}`, newest first; with `after_seq`,
/// oldest first.
fn history(p: &Params) -> Result<Prepared, ParamError> {
    let req = pb::History {
        conversation_id: p.opt_id("conversation_id")?.unwrap_or(0),
        peer_user: p.opt_id("peer_user")?.unwrap_or(0),
        limit: p.opt_u32("limit")?.unwrap_or(0),
        before_seq: p.opt_id("before_seq")?.unwrap_or(0),
        since_ms: p.opt_i64("since")?.unwrap_or(0),
        until_ms: p.opt_i64("until")?.unwrap_or(0),
        after_seq: p.opt_id("after_seq")?.unwrap_or(0),
    };
    Ok(answer!(K::History(req), History(page) => render::message_page(&page)))
}

/// `search`: `{"query","limit"?,"before_id"?,"conversation_id"?}` →
/// `{"messages":[...],"has_more"}`, newest first.
fn search(p: &Params) -> Result<Prepared, ParamError> {
    let req = pb::Search {
        query: p.string("query")?,
        limit: p.opt_u32("limit")?.unwrap_or(0),
        before_id: p.opt_id("before_id")?.unwrap_or(0),
        conversation_id: p.opt_id("conversation_id")?.unwrap_or(0),
    };
    Ok(answer!(K::Search(req), Search(page) => render::message_page(&page)))
}

/// `update_profile`: `{"nickname"?,"signature"?,"avatar"?,"phone"?,"email"?}` → the new
/// profile. Absent fields stay; `""` clears one.
fn update_profile(p: &Params) -> Result<Prepared, ParamError> {
    let update = pb::UpdateProfile {
        nickname: p.opt_string("nickname")?,
        signature: p.opt_string("signature")?,
        avatar: p.opt_string("avatar")?,
        phone: p.opt_string("phone")?,
        email: p.opt_string("email")?,
    };
    Ok(answer!(K::UpdateProfile(update), UpdateProfile(p) => render::profile(&p)))
}

/// `change_password`: `{"old_password","new_password"}` → `{"sessions_revoked"}`.
fn change_password(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::ChangePassword {
        old_password: p.string("old_password")?,
        new_password: p.string("new_password")?,
    };
    Ok(answer!(K::ChangePassword(r), ChangePassword(ok) =>
        json!({ "sessions_revoked": ok.sessions_revoked })))
}

/// `conversations`: `{"limit"?,"before_active"?,"before_id"?}` →
/// `{"conversations":[...],"has_more"}`, most recently active first; without `limit`, all.
fn conversations(p: &Params) -> Result<Prepared, ParamError> {
    let limit = p.opt_u32("limit")?.unwrap_or(0);
    let (before_active_ms, before_id) =
        match (p.opt_i64("before_active")?, p.opt_id("before_id")?) {
            (None, None) => (0, 0),
            (Some(ms), id) => (ms, id.unwrap_or(0)),
            (None, Some(_)) => return Err(ParamError::params(
                "\"before_id\" needs \"before_active\" (both of the previous page's last entry)",
            )),
        };
    let r = pb::ListConversations {
        limit,
        before_active_ms,
        before_id,
    };
    Ok(answer!(K::Conversations(r), Conversations(page) => {
        let list: Vec<_> = page.conversations.iter().map(render::conversation).collect();
        json!({ "conversations": list, "has_more": page.has_more })
    }))
}

/// `mark_read`: `{"conversation_id","seq"?}` → `{"conversation_id","seq","unread"}`.
fn mark_read(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::MarkRead {
        conversation_id: p.id("conversation_id")?,
        seq: p.opt_id("seq")?.unwrap_or(0),
    };
    Ok(answer!(K::MarkRead(r), MarkRead(pos) => render::read_position(&pos)))
}

/// `sessions`: `{}` → `{"sessions":[...]}`, most recently seen first.
fn sessions(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::Sessions(pb::ListSessions {}), Sessions(l) => {
        let list: Vec<_> = l.sessions.iter().map(render::session_info).collect();
        json!({ "sessions": list })
    }))
}

/// `revoke_session`: `{"session_id"}` → `{}`.
fn revoke_session(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::RevokeSession {
        session_id: p.id("session_id")?,
    };
    Ok(answer!(K::RevokeSession(r), RevokeSession(_) => empty()))
}

/// The event JSON of a push (`{"type":...,...}`), or `None` for a kind the SDK does not map.
pub fn event(push: &PushKind) -> Option<Value> {
    let typed = render::typed;
    Some(match push {
        PushKind::Message(m) => render::message_push(m),
        PushKind::Kicked(k) => render::kicked(
            crate::ErrorCode::try_from(k.code).unwrap_or(crate::ErrorCode::Internal),
            &k.reason,
        ),
        PushKind::FriendRequest(r) => typed("friend_request", render::friend_request(r)),
        PushKind::FriendResponse(r) => typed("friend_response", render::friend_response(r)),
        PushKind::FriendRemoved(r) => typed("friend_removed", render::friend_removed(r.user_id)),
        PushKind::Presence(p) => typed("presence", render::presence(p.user_id, p.online)),
        PushKind::ReadPosition(p) => typed("read_position", render::read_position(p)),
        PushKind::FriendAdded(f) => typed("friend_added", render::friend(f)),
        PushKind::FriendRequestAnswered(r) => {
            typed("friend_request_answered", render::friend_response(r))
        }
        PushKind::FriendUpdated(f) => typed("friend_updated", render::friend(f)),
        PushKind::BlockChanged(b) => {
            let user = b.user.clone().unwrap_or_default();
            typed("block_changed", render::block_changed(&user, b.blocked))
        }
        PushKind::ProfileUpdated(p) => typed("profile_updated", render::profile(p)),
        PushKind::UserUpdated(u) => typed("user_updated", render::user(u)),
        PushKind::GroupUpdated(g) => typed("group_updated", render::group(g)),
        PushKind::GroupRemoved(r) => typed("group_removed", render::group_removed(r)),
        PushKind::GroupInvitation(i) => typed("group_invitation", render::group_invitation(i)),
        PushKind::ReadReceipt(r) => typed("read_receipt", render::read_receipt(r)),
        PushKind::MessageRecalled(r) => typed("message_recalled", render::message_recalled(r)),
        PushKind::RoomMessage(m) => typed("room_message", render::room_message(m)),
        PushKind::RedPacketGrabbed(g) => typed("red_packet_grabbed", render::grabbed(g)),
        PushKind::Transcribed(t) => typed("transcribed", render::transcript(t)),
        PushKind::FileOfferAnswered(o) => typed("file_offer_answered", render::file_offer(o)),
        PushKind::Notification(n) => typed("notification", render::notification(n)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = methods().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), methods().count());
        assert!(find("login").is_some());
        assert!(find("Login").is_none());
    }
}
