//! The client's public value types: its [`ClientConfig`], the [`Event`]s it emits, and the
//! [`ConnState`]s it reports.

use std::path::PathBuf;
use std::time::Duration;

use feige_protocol::{pb, ErrorCode, PushKind};

#[cfg(doc)]
use crate::Client;

/// How to reach the server and how the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Server address, "host:port".
    pub server: String,
    /// Device name sent with login and resume; the server keeps sync positions per device.
    pub device: String,
    /// Client software name sent in Hello, for the server's logs.
    pub client_name: String,
    /// Longest wait for any single response (default 10 s).
    pub request_timeout: Duration,
    /// Reconnect and resume after a lost connection while logged in (default true).
    pub auto_reconnect: bool,
    /// Largest frame accepted from the server, in bytes (default 64 MiB).
    pub max_frame_len: usize,
    /// Sync after login/reconnect and on gaps, and ack delivered messages (default true).
    /// Without it the client only syncs and acks when [`Client::sync`] is called, so a
    /// short-lived client (a CLI command) leaves the device's unread messages unread.
    pub auto_sync: bool,
    /// Speak TLS to the server (default false), verifying its certificate against
    /// `ca_file`.
    pub tls: bool,
    /// PEM file of the certificate authorities trusted for TLS (required with `tls`).
    pub ca_file: Option<PathBuf>,
    /// Name the server's certificate must carry; default: the host part of `server`.
    pub tls_server_name: Option<String>,
    /// Reconnect delays (default: 100 ms doubling up to 5 s, no jitter).
    pub backoff: crate::BackoffPolicy,
}

impl ClientConfig {
    /// Defaults for a server at `server` ("host:port"), device "rust-client".
    pub fn new(server: impl Into<String>) -> Self {
        ClientConfig {
            server: server.into(),
            device: "rust-client".to_owned(),
            client_name: concat!("feige-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            request_timeout: Duration::from_secs(10),
            auto_reconnect: true,
            max_frame_len: 64 * 1024 * 1024,
            auto_sync: true,
            tls: false,
            ca_file: None,
            tls_server_name: None,
            backoff: crate::BackoffPolicy::default(),
        }
    }
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A message, delivered exactly once and in `seq` order per conversation.
    Message(pb::Message),
    /// The server closed the connection for this reason. After `INVALID_TOKEN` the session is
    /// gone and the client stops reconnecting; otherwise it reconnects.
    Kicked {
        /// Why.
        code: ErrorCode,
        /// The server's explanation.
        reason: String,
    },
    /// The connection changed state.
    State(ConnState),
    /// Someone asked to be the user's friend (answer with
    /// [`Client::respond_friend_request`]); or the user asked someone on another device
    /// (`from` is then the user).
    FriendRequest(pb::FriendRequest),
    /// A friend request the user sent was accepted or rejected.
    FriendResponse(pb::FriendResponse),
    /// A friendship of the user began: their request was accepted, or they accepted one on
    /// another device.
    FriendAdded(pb::Friend),
    /// `user_id` is no longer the user's friend (deleted or blocked, by either side or on
    /// another device of the user).
    FriendRemoved {
        /// The former friend.
        user_id: u64,
    },
    /// A friend came online (first device) or went offline (last device gone).
    Presence {
        /// The friend.
        user_id: u64,
        /// Online now.
        online: bool,
    },
    /// The user moved a read position on another device.
    ReadPosition(pb::ReadPosition),
    /// The user answered a friend request on another device (`user` is the requester); on
    /// accepting, [`Event::FriendAdded`] follows.
    FriendRequestAnswered(pb::FriendResponse),
    /// The user set a remark for a friend on another device: the friend as it is now.
    FriendUpdated(pb::Friend),
    /// The user blocked (`blocked`) or unblocked someone on another device.
    BlockChanged {
        /// Who was blocked or unblocked.
        user: pb::PublicProfile,
        /// Blocked now (else unblocked).
        blocked: bool,
    },
    /// The user's own profile changed on another device (also reflected in
    /// [`Client::session`]).
    ProfileUpdated(pb::Profile),
    /// A friend changed their nickname, signature or avatar: their public profile now.
    UserUpdated(pb::PublicProfile),
    /// A group of the user changed (profile, announcement, owner, members, mute), or the
    /// user joined one: its profile now, with the user's role.
    GroupUpdated(pb::GroupInfo),
    /// The user is no longer in a group: left (on another device), removed, or dismissed.
    GroupRemoved(pb::GroupRemoved),
    /// An invitation waits for approval: one of the user (who may decline it), or one the
    /// user may approve as the group's owner or admin.
    GroupInvitation(pb::GroupInvitation),
    /// A message in a world room this connection has joined (sent by someone else, or by
    /// the user on another connection). Rooms keep no delivery state: what arrives while
    /// disconnected is read with [`Client::room_history`].
    RoomMessage(pb::RoomMessage),
    /// Someone took a share of a red packet the user sent.
    RedPacketGrabbed(pb::RedPacketGrabbed),
    /// 1:1: the peer received (on some device) or read further; both positions as now.
    ReadReceipt(pb::ReadReceipt),
    /// A message of one of the user's conversations was recalled: show it as recalled (its
    /// text is gone from the server).
    MessageRecalled(pb::MessageRecalled),
    /// A voice message of one of the user's conversations was transcribed: its text (once
    /// per message; history and sync carry it in `Message.transcript` from then on).
    Transcribed(pb::Transcript),
    /// A file offer in one of the user's conversations was accepted or declined.
    FileOfferAnswered(pb::FileOffer),
    /// A system notification for the user (an admin's notice, or one sent by the HTTP API);
    /// [`Client::notifications`] lists them with their read state.
    Notification(pb::Notification),
}

impl Event {
    /// The event for a social push; `None` for kinds handled elsewhere or unknown.
    pub(crate) fn from_push(kind: PushKind) -> Option<Event> {
        Some(match kind {
            PushKind::FriendRequest(r) => Event::FriendRequest(r),
            PushKind::FriendResponse(r) => Event::FriendResponse(r),
            PushKind::FriendAdded(f) => Event::FriendAdded(f),
            PushKind::FriendRemoved(r) => Event::FriendRemoved { user_id: r.user_id },
            PushKind::Presence(p) => Event::Presence {
                user_id: p.user_id,
                online: p.online,
            },
            PushKind::ReadPosition(p) => Event::ReadPosition(p),
            PushKind::FriendRequestAnswered(r) => Event::FriendRequestAnswered(r),
            PushKind::FriendUpdated(f) => Event::FriendUpdated(f),
            PushKind::BlockChanged(b) => Event::BlockChanged {
                user: b.user.unwrap_or_default(),
                blocked: b.blocked,
            },
            PushKind::ProfileUpdated(p) => Event::ProfileUpdated(p),
            PushKind::UserUpdated(u) => Event::UserUpdated(u),
            PushKind::GroupUpdated(g) => Event::GroupUpdated(g),
            PushKind::GroupRemoved(g) => Event::GroupRemoved(g),
            PushKind::GroupInvitation(i) => Event::GroupInvitation(i),
            PushKind::RoomMessage(m) => Event::RoomMessage(m),
            PushKind::RedPacketGrabbed(g) => Event::RedPacketGrabbed(g),
            PushKind::ReadReceipt(r) => Event::ReadReceipt(r),
            PushKind::MessageRecalled(r) => Event::MessageRecalled(r),
            PushKind::Transcribed(t) => Event::Transcribed(t),
            PushKind::FileOfferAnswered(o) => Event::FileOfferAnswered(o),
            PushKind::Notification(n) => Event::Notification(n),
            PushKind::Message(_) | PushKind::Kicked(_) => return None,
        })
    }
}

/// Connection states reported through [`Event::State`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnState {
    /// Opening a connection.
    Connecting,
    /// Connected (and resumed, on a reconnect).
    Connected,
    /// The connection is gone; the next attempt starts after `retry_in`.
    Disconnected {
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// Fetching what was missed after a login or reconnect.
    Syncing,
    /// Caught up.
    Synced,
}
