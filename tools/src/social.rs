//! Output of the social commands (`profile`, `search-users`, `friends`, `chats`) and of the
//! social events `listen` prints: each as a JSON object (ids as decimal strings, like the
//! messages) and as a line of text.

use feige_client::{pb, Event};
use serde_json::{json, Value};

use crate::format_time;

/// A user named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// A user id.
    Id(u64),
    /// A username.
    Name(String),
}

impl UserRef {
    /// Digits are a user id; anything else, or `@name`, is a username.
    pub fn parse(s: &str) -> UserRef {
        if let Some(name) = s.strip_prefix('@') {
            return UserRef::Name(name.to_owned());
        }
        match s.parse() {
            Ok(id) => UserRef::Id(id),
            Err(_) => UserRef::Name(s.to_owned()),
        }
    }
}

/// Something printable as JSON or text.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    /// The JSON object.
    pub json: Value,
    /// The line of text.
    pub text: String,
}

fn named(nickname: &str, username: &str, id: u64) -> String {
    format!("{nickname} (@{username}, user {id})")
}

fn public_or_default(p: Option<&pb::PublicProfile>) -> pb::PublicProfile {
    p.cloned().unwrap_or_default()
}

/// One's own profile.
pub fn profile(p: &pb::Profile) -> Out {
    let mut text = format!(
        "{} (user {}), nickname {}",
        p.username, p.user_id, p.nickname
    );
    let verified = |v: bool| if v { " (verified)" } else { "" };
    for (label, v, mark) in [
        ("signature", &p.signature, ""),
        ("avatar", &p.avatar, ""),
        ("phone", &p.phone, verified(p.phone_verified)),
        ("email", &p.email, verified(p.email_verified)),
    ] {
        if !v.is_empty() {
            text.push_str(&format!(", {label} {v}{mark}"));
        }
    }
    Out {
        json: json!({
            "type": "profile",
            "user_id": p.user_id.to_string(),
            "username": p.username,
            "nickname": p.nickname,
            "created_at": p.created_at_ms.to_string(),
            "signature": p.signature,
            "avatar": p.avatar,
            "phone": p.phone,
            "email": p.email,
            "phone_verified": p.phone_verified,
            "email_verified": p.email_verified,
        }),
        text,
    }
}

/// Another user's public profile.
pub fn user(u: &pb::PublicProfile) -> Out {
    let mut text = named(&u.nickname, &u.username, u.user_id);
    if !u.signature.is_empty() {
        text.push_str(&format!(": {}", u.signature));
    }
    Out {
        json: json!({
            "type": "user",
            "user_id": u.user_id.to_string(),
            "username": u.username,
            "nickname": u.nickname,
            "signature": u.signature,
            "avatar": u.avatar,
        }),
        text,
    }
}

/// A friend with remark and online state.
pub fn friend(f: &pb::Friend) -> Out {
    let u = public_or_default(f.user.as_ref());
    let shown = if f.remark.is_empty() {
        named(&u.nickname, &u.username, u.user_id)
    } else {
        format!(
            "{} [{}]",
            f.remark,
            named(&u.nickname, &u.username, u.user_id)
        )
    };
    Out {
        json: json!({
            "type": "friend",
            "user_id": u.user_id.to_string(),
            "username": u.username,
            "nickname": u.nickname,
            "remark": f.remark,
            "online": f.online,
            "since": f.since_ms.to_string(),
            "conversation_id": f.conversation_id.to_string(),
            "group": f.group,
        }),
        text: format!("{} {shown}", if f.online { "online " } else { "offline" }),
    }
}

/// A pending friend request; `direction` is "incoming" or "outgoing".
pub fn friend_request(r: &pb::FriendRequest, direction: &str) -> Out {
    let from = public_or_default(r.from.as_ref());
    let to = public_or_default(r.to.as_ref());
    let who = if direction == "outgoing" {
        format!("to {}", named(&to.nickname, &to.username, to.user_id))
    } else {
        format!(
            "from {}",
            named(&from.nickname, &from.username, from.user_id)
        )
    };
    let note = if r.message.is_empty() {
        String::new()
    } else {
        format!(": {}", r.message)
    };
    Out {
        json: json!({
            "type": "friend_request",
            "direction": direction,
            "request_id": r.request_id.to_string(),
            "from_user": from.user_id.to_string(),
            "from_username": from.username,
            "to_user": to.user_id.to_string(),
            "to_username": to.username,
            "message": r.message,
            "created_at": r.created_at_ms.to_string(),
        }),
        text: format!(
            "request #{} {who}, {}{note}",
            r.request_id,
            format_time(r.created_at_ms)
        ),
    }
}

/// The answer to a friend request (`user` is the other party).
pub fn friend_response(r: &pb::FriendResponse) -> Out {
    let u = public_or_default(r.user.as_ref());
    let verdict = if r.accepted { "accepted" } else { "rejected" };
    Out {
        json: json!({
            "type": "friend_response",
            "request_id": r.request_id.to_string(),
            "accepted": r.accepted,
            "user_id": u.user_id.to_string(),
            "username": u.username,
            "conversation_id": r.friend.as_ref().map_or(0, |f| f.conversation_id).to_string(),
        }),
        text: format!(
            "request #{} {verdict}: {}",
            r.request_id,
            named(&u.nickname, &u.username, u.user_id)
        ),
    }
}

/// A conversation list entry.
pub fn conversation(c: &pb::Conversation) -> Out {
    let peer = public_or_default(c.peer.as_ref());
    let title = match (c.peer.is_some(), c.remark.is_empty()) {
        (false, _) => format!("conversation {}", c.conversation_id),
        (true, true) => named(&peer.nickname, &peer.username, peer.user_id),
        (true, false) => format!("{} (@{})", c.remark, peer.username),
    };
    let last = match &c.last_message {
        Some(m) => format!(
            "{} user {}: {}",
            format_time(m.sent_at_ms),
            m.from_user,
            m.text
        ),
        None => "no messages yet".to_owned(),
    };
    let unread = if c.unread > 0 {
        format!(" ({} unread)", c.unread)
    } else {
        String::new()
    };
    Out {
        json: json!({
            "type": "conversation",
            "conversation_id": c.conversation_id.to_string(),
            "peer_user": peer.user_id.to_string(),
            "peer_username": peer.username,
            "peer_nickname": peer.nickname,
            "remark": c.remark,
            "unread": c.unread.to_string(),
            "read_seq": c.read_seq.to_string(),
            "last_active": c.last_active_ms.to_string(),
            "last_seq": c.last_message.as_ref().map_or(0, |m| m.seq).to_string(),
            "last_from_user": c.last_message.as_ref().map_or(0, |m| m.from_user).to_string(),
            "last_text": c.last_message.as_ref().map_or("", |m| m.text.as_str()),
        }),
        text: format!("[conv {}] {title}{unread} — {last}", c.conversation_id),
    }
}

/// The line after a page of `chats` when more follow: the cursor of the next page.
pub fn more_conversations(last: &pb::Conversation, limit: u32) -> Out {
    let cursor = format!("{}:{}", last.last_active_ms, last.conversation_id);
    Out {
        json: json!({ "type": "more", "before": cursor }),
        text: format!("more: feige chats --limit {limit} --before {cursor}"),
    }
}

/// A read position.
pub fn read_position(p: &pb::ReadPosition) -> Out {
    Out {
        json: json!({
            "type": "read_position",
            "conversation_id": p.conversation_id.to_string(),
            "seq": p.seq.to_string(),
            "unread": p.unread.to_string(),
        }),
        text: format!(
            "conversation {} read up to #{} ({} unread)",
            p.conversation_id, p.seq, p.unread
        ),
    }
}

/// Whether a user is online.
pub fn presence(user_id: u64, online: bool) -> Out {
    Out {
        json: json!({
            "type": "presence",
            "user_id": user_id.to_string(),
            "online": online,
        }),
        text: format!(
            "user {user_id} is {}",
            if online { "online" } else { "offline" }
        ),
    }
}

/// A social event for `listen`, as seen by user `me`; `None` for messages and connection events.
pub fn event(e: &Event, me: u64) -> Option<Out> {
    Some(match e {
        // A request `me` sent comes back as an echo on `me`'s other devices.
        Event::FriendRequest(r) => {
            let sent_by_me = r.from.as_ref().is_some_and(|f| f.user_id == me);
            friend_request(r, if sent_by_me { "outgoing" } else { "incoming" })
        }
        Event::FriendResponse(r) => friend_response(r),
        Event::FriendAdded(f) => {
            let u = public_or_default(f.user.as_ref());
            let mut json = friend(f).json;
            json["type"] = Value::from("friend_added");
            Out {
                json,
                text: format!("new friend: {}", named(&u.nickname, &u.username, u.user_id)),
            }
        }
        Event::FriendRemoved { user_id } => Out {
            json: json!({ "type": "friend_removed", "user_id": user_id.to_string() }),
            text: format!("user {user_id} is no longer your friend"),
        },
        Event::Presence { user_id, online } => presence(*user_id, *online),
        Event::ReadPosition(p) => read_position(p),
        Event::FriendRequestAnswered(r) => {
            let u = public_or_default(r.user.as_ref());
            let mut json = friend_response(r).json;
            json["type"] = Value::from("friend_request_answered");
            let verdict = if r.accepted { "accepted" } else { "rejected" };
            Out {
                json,
                text: format!(
                    "you {verdict} request #{} from {} on another device",
                    r.request_id,
                    named(&u.nickname, &u.username, u.user_id)
                ),
            }
        }
        Event::FriendUpdated(f) => {
            let u = public_or_default(f.user.as_ref());
            let mut json = friend(f).json;
            json["type"] = Value::from("friend_updated");
            let remark = if f.remark.is_empty() {
                "no remark".to_owned()
            } else {
                format!("remark {}", f.remark)
            };
            Out {
                json,
                text: format!(
                    "friend {} now has {remark}",
                    named(&u.nickname, &u.username, u.user_id)
                ),
            }
        }
        Event::BlockChanged { user: u, blocked } => {
            let mut json = user(u).json;
            json["type"] = Value::from("block_changed");
            json["blocked"] = Value::from(*blocked);
            Out {
                json,
                text: format!(
                    "{} {}",
                    if *blocked { "blocked" } else { "unblocked" },
                    named(&u.nickname, &u.username, u.user_id)
                ),
            }
        }
        Event::ProfileUpdated(p) => {
            let o = profile(p);
            let mut json = o.json;
            json["type"] = Value::from("profile_updated");
            Out {
                json,
                text: format!("your profile changed: {}", o.text),
            }
        }
        Event::UserUpdated(u) => {
            let o = user(u);
            let mut json = o.json;
            json["type"] = Value::from("user_updated");
            Out {
                json,
                text: format!("friend updated their profile: {}", o.text),
            }
        }
        Event::Message(_) | Event::Kicked { .. } | Event::State(_) => return None,
        // An event kind newer than this tool is not shown.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_refs() {
        assert_eq!(UserRef::parse("42"), UserRef::Id(42));
        assert_eq!(UserRef::parse("alice"), UserRef::Name("alice".into()));
        assert_eq!(UserRef::parse("@123"), UserRef::Name("123".into()));
    }

    #[test]
    fn formats() {
        let f = pb::Friend {
            user: Some(pb::PublicProfile {
                user_id: 2,
                username: "bob".into(),
                nickname: "Bob".into(),
                ..Default::default()
            }),
            remark: "老王".into(),
            online: true,
            since_ms: 0,
            conversation_id: 9,
            group: String::new(),
        };
        let o = friend(&f);
        assert_eq!(o.text, "online  老王 [Bob (@bob, user 2)]");
        assert_eq!(o.json["user_id"], "2");
        assert_eq!(o.json["online"], true);
        let c = pb::Conversation {
            conversation_id: 9,
            peer: f.user.clone(),
            unread: 3,
            ..Default::default()
        };
        let o = conversation(&c);
        assert!(o.text.contains("(3 unread)"), "{}", o.text);
        assert_eq!(o.json["unread"], "3");
        assert!(event(
            &Event::Presence {
                user_id: 2,
                online: false
            },
            1
        )
        .is_some());
    }

    #[test]
    fn a_request_echoed_to_the_senders_other_device_is_outgoing() {
        let user = |id: u64, name: &str| pb::PublicProfile {
            user_id: id,
            username: name.into(),
            ..Default::default()
        };
        let r = pb::FriendRequest {
            request_id: 7,
            from: Some(user(1, "alice")),
            to: Some(user(2, "bob")),
            ..Default::default()
        };
        let e = Event::FriendRequest(r);
        let alice = event(&e, 1).unwrap();
        assert_eq!(alice.json["direction"], "outgoing");
        assert!(alice.text.contains("to  (@bob"), "{}", alice.text);
        let bob = event(&e, 2).unwrap();
        assert_eq!(bob.json["direction"], "incoming");
        assert!(bob.text.contains("from  (@alice"), "{}", bob.text);
    }
}
