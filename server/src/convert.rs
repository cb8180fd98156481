//! Storage records to wire messages.

use feige_protocol::pb;
use feige_storage::group::{GroupRecord, InviteRecord, MemberRecord, Role};
use feige_storage::social::{
    ConversationRecord, FriendRecord, FriendRequestRecord, PublicUser, ReadPositionRecord,
};
use feige_storage::{FileRecord, StoredMessage, UserRecord};

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
        mentions: m.mentions,
        mention_all: m.mention_all,
        // A red packet's id is its message's.
        red_packet_id: if m.kind == pb::MessageKind::RedPacket as i32 {
            m.id
        } else {
            0
        },
        recalled_by: m.recalled_by,
        offer: match &m.file {
            Some(f) if f.offer => pb::FileOfferState::Pending as i32,
            _ => 0,
        },
        file: m.file.map(|f| file_info(&f.file)),
        transcript: m.transcript.unwrap_or_default(),
        // Set by the readers that know the closed accounts (`twofactor::mark_closed`).
        sender_closed: false,
    }
}

/// A stored file as clients see it.
pub(crate) fn file_info(f: &FileRecord) -> pb::FileInfo {
    pb::FileInfo {
        file_id: f.id,
        name: f.name.clone(),
        size: f.size,
        mime: f.mime.clone(),
        sha256: f.sha256.clone().into(),
        width: f.width,
        height: f.height,
        duration_ms: f.duration_ms,
        thumbnail_id: f.thumbnail_id,
        created_at_ms: f.created_at_ms,
        owner: f.owner,
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
        email_verified: u.email_verified,
        phone_verified: u.phone_verified,
        totp_enabled: u.totp_enabled,
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
        closed: u.closed,
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
        group: c.group.as_ref().map(group),
        mentioned: c.mentioned,
        last_seq: c.last_seq,
    }
}

/// A group's role on the wire.
pub(crate) fn role(r: Role) -> pb::GroupRole {
    match r {
        Role::Member => pb::GroupRole::Member,
        Role::Admin => pb::GroupRole::Admin,
        Role::Owner => pb::GroupRole::Owner,
    }
}

/// A group's profile, with the role of the user it was read for.
pub(crate) fn group(g: &GroupRecord) -> pb::GroupInfo {
    pb::GroupInfo {
        group_id: g.id,
        conversation_id: g.id,
        name: g.name.clone(),
        avatar: g.avatar.clone(),
        announcement: g.announcement.clone(),
        owner: g.owner,
        member_count: g.member_count,
        mute_all: g.mute_all,
        join_approval: g.join_approval,
        created_at_ms: g.created_at_ms,
        my_role: role(g.my_role) as i32,
    }
}

pub(crate) fn member(m: &MemberRecord, online: bool) -> pb::GroupMember {
    pb::GroupMember {
        user_id: m.user_id,
        role: role(m.role) as i32,
        card: m.card.clone(),
        online,
        muted_until_ms: m.muted_until_ms,
        joined_at_ms: m.joined_at_ms,
        nickname: m.nickname.clone(),
    }
}

pub(crate) fn invitation(i: &InviteRecord) -> pb::GroupInvitation {
    pb::GroupInvitation {
        group_id: i.group_id,
        group_name: i.group_name.clone(),
        user_id: i.user_id,
        inviter: i.inviter,
        created_at_ms: i.created_at_ms,
    }
}
