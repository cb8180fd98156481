//! Storage records to wire messages.

use feige_protocol::pb;
use feige_storage::social::{
    ConversationRecord, FriendRecord, FriendRequestRecord, PublicUser, ReadPositionRecord,
};
use feige_storage::{StoredMessage, UserRecord};

/// Takes the stored message, so that its text moves instead of being copied (the router
/// pushes every new message through here).
pub(crate) fn message(m: StoredMessage) -> pb::Message {
    pb::Message {
        message_id: m.id,
        conversation_id: m.conversation_id,
        seq: m.seq,
        from_user: m.from_user,
        client_msg_id: m.client_msg_id,
        kind: m.kind,
        text: m.text,
        sent_at_ms: m.sent_at_ms,
        to_user: m.to_user,
        recalled_by: m.recalled_by,
    }
}

/// The user's own, full profile: only ever sent to that user.
pub(crate) fn profile(u: &UserRecord) -> pb::Profile {
    pb::Profile {
        user_id: u.id,
        username: u.username.clone(),
        nickname: u.nickname.clone(),
        created_at_ms: u.created_at_ms,
        signature: u.signature.clone(),
        avatar: u.avatar.clone(),
        phone: u.phone.clone(),
        email: u.email.clone(),
    }
}

/// What anyone may see of a user.
pub(crate) fn public(u: &PublicUser) -> pb::PublicProfile {
    pb::PublicProfile {
        user_id: u.id,
        username: u.username.clone(),
        nickname: u.nickname.clone(),
        signature: u.signature.clone(),
        avatar: u.avatar.clone(),
    }
}

pub(crate) fn friend(f: &FriendRecord, online: bool) -> pb::Friend {
    pb::Friend {
        user: Some(public(&f.user)),
        remark: f.remark.clone(),
        online,
        since_ms: f.since_ms,
        conversation_id: f.conversation_id,
        group: f.group.clone(),
    }
}

pub(crate) fn friend_request(r: &FriendRequestRecord) -> pb::FriendRequest {
    pb::FriendRequest {
        request_id: r.id,
        from: Some(public(&r.from)),
        to: Some(public(&r.to)),
        message: r.message.clone(),
        created_at_ms: r.created_at_ms,
    }
}

pub(crate) fn read_position(r: &ReadPositionRecord) -> pb::ReadPosition {
    pb::ReadPosition {
        conversation_id: r.conversation_id,
        seq: r.seq,
        unread: r.unread,
    }
}

pub(crate) fn conversation(c: &ConversationRecord) -> pb::Conversation {
    pb::Conversation {
        conversation_id: c.id,
        peer: c.peer.as_ref().map(public),
        remark: c.remark.clone(),
        last_message: c.last_message.clone().map(message),
        unread: c.unread,
        read_seq: c.read_seq,
        last_active_ms: c.last_active_ms,
    }
}
