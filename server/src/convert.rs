//! Storage records to wire messages.

use feige_protocol::pb;
use feige_storage::{StoredMessage, UserRecord};

pub(crate) fn message(m: &StoredMessage) -> pb::Message {
    pb::Message {
        message_id: m.id,
        conversation_id: m.conversation_id,
        seq: m.seq,
        from_user: m.from_user,
        client_msg_id: m.client_msg_id,
        kind: m.kind,
        text: m.text.clone(),
        sent_at_ms: m.sent_at_ms,
        to_user: m.to_user,
    }
}

pub(crate) fn profile(u: &UserRecord) -> pb::Profile {
    pb::Profile {
        user_id: u.id,
        username: u.username.clone(),
        nickname: u.nickname.clone(),
        created_at_ms: u.created_at_ms,
    }
}
