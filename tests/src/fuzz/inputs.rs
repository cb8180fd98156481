//! The dispatch target's inputs: the table of request kinds that the input's first byte picks
//! from (with the connection state), the raw encodings of a request, and the seeds.

use bytes::{BufMut, BytesMut};
use feige_protocol::{frame, pb, Envelope, PushKind, RequestKind};
use prost::Message;

/// Request kinds in `Request.kind` order: the input's first byte picks one.
macro_rules! request_kinds {
    ($($variant:ident($msg:ty) = $field:literal),* $(,)?) => {
        /// How many request kinds there are.
        pub const REQUEST_KINDS: usize = [$($field),*].len();

        /// Decodes `bytes` as the message of request kind `idx`: (kind name, its `Request`
        /// field number, the decoded request, or the decode error).
        pub(super) fn request_kind(
            idx: usize,
            bytes: &[u8],
        ) -> (&'static str, u32, Result<RequestKind, prost::DecodeError>) {
            let mut i = 0;
            $(
                if i == idx {
                    return (
                        stringify!($variant),
                        $field,
                        <$msg>::decode(bytes).map(RequestKind::$variant),
                    );
                }
                i += 1;
            )*
            let _ = i;
            unreachable!("request kind index {idx} out of range")
        }

        /// An example request of each kind with empty fields, as seeds.
        pub(super) fn default_kinds() -> Vec<RequestKind> {
            vec![$(RequestKind::$variant(<$msg>::default())),*]
        }
    };
}

request_kinds! {
    Hello(pb::Hello) = 1,
    Register(pb::Register) = 2,
    Login(pb::Login) = 3,
    Resume(pb::Resume) = 4,
    Logout(pb::Logout) = 5,
    Ping(pb::Ping) = 6,
    Whoami(pb::WhoAmI) = 7,
    SendMessage(pb::SendMessage) = 10,
    Sync(pb::Sync) = 11,
    Ack(pb::Ack) = 12,
    History(pb::History) = 13,
    Search(pb::Search) = 14,
    UpdateProfile(pb::UpdateProfile) = 20,
    ChangePassword(pb::ChangePassword) = 21,
    GetUser(pb::GetUser) = 22,
    SearchUsers(pb::SearchUsers) = 23,
    FriendRequest(pb::SendFriendRequest) = 24,
    FriendRequests(pb::ListFriendRequests) = 25,
    FriendRespond(pb::RespondFriendRequest) = 26,
    Friends(pb::ListFriends) = 27,
    SetRemark(pb::SetRemark) = 28,
    DeleteFriend(pb::DeleteFriend) = 29,
    Block(pb::Block) = 30,
    Unblock(pb::Unblock) = 31,
    Blocked(pb::ListBlocked) = 32,
    Presence(pb::GetPresence) = 33,
    Conversations(pb::ListConversations) = 34,
    MarkRead(pb::MarkRead) = 35,
    Sessions(pb::ListSessions) = 36,
    RevokeSession(pb::RevokeSession) = 37,
    GroupCreate(pb::CreateGroup) = 40,
    GroupInfo(pb::GetGroup) = 41,
    GroupUpdate(pb::UpdateGroup) = 42,
    GroupInvite(pb::InviteToGroup) = 43,
    GroupRemove(pb::RemoveFromGroup) = 44,
    GroupLeave(pb::LeaveGroup) = 45,
    GroupDismiss(pb::DismissGroup) = 46,
    GroupTransfer(pb::TransferGroup) = 47,
    GroupSetRole(pb::SetGroupRole) = 48,
    GroupMembers(pb::ListGroupMembers) = 49,
    GroupSetCard(pb::SetGroupCard) = 50,
    GroupMute(pb::MuteGroupMember) = 51,
    GroupMuteAll(pb::MuteGroup) = 52,
    Groups(pb::ListGroups) = 53,
    GroupInvites(pb::ListGroupInvites) = 54,
    GroupAnswerInvite(pb::AnswerGroupInvite) = 55,
    Receipts(pb::GetReceipts) = 60,
    Recall(pb::RecallMessage) = 61,
    FriendGroups(pb::ListFriendGroups) = 62,
    FriendGroupSet(pb::SetFriendGroup) = 63,
    FriendSuggestions(pb::GetFriendSuggestions) = 64,
    Recalls(pb::ListRecalls) = 65,
    RoomJoin(pb::RoomJoin) = 70,
    RoomLeave(pb::RoomLeave) = 71,
    RoomMembers(pb::RoomMembers) = 72,
    RoomSend(pb::RoomSend) = 73,
    RoomHistory(pb::RoomHistory) = 74,
    RedPacketSend(pb::SendRedPacket) = 75,
    RedPacketGrab(pb::GrabRedPacket) = 76,
    RedPacketInfo(pb::GetRedPacket) = 77,
    Wallet(pb::GetWallet) = 78,
    WalletTopUp(pb::TopUp) = 79,
    UploadBegin(pb::UploadBegin) = 80,
    UploadChunk(pb::UploadChunk) = 81,
    UploadFinish(pb::UploadFinish) = 82,
    Download(pb::Download) = 83,
    FileInfo(pb::GetFiles) = 84,
    DownloadMany(pb::DownloadMany) = 85,
    UploadAbort(pb::UploadAbort) = 86,
    Transcribe(pb::Transcribe) = 87,
    StickerAdd(pb::AddSticker) = 88,
    StickerRemove(pb::RemoveSticker) = 89,
    Stickers(pb::ListStickers) = 90,
    FileOfferAnswer(pb::AnswerFileOffer) = 91,
}

/// Selector values past the request kinds: a garbage payload in a well-formed frame, or raw
/// bytes with no framing at all.
pub(super) const GARBAGE_FRAME: usize = REQUEST_KINDS;
pub(super) const GARBAGE_RAW: usize = REQUEST_KINDS + 1;
/// Selector values per connection state: three states fill the selector byte (255, past
/// them, counts as the last state); more request kinds than 83 will need a second selector
/// byte.
pub(super) const SELECTORS: usize = 85;
const _: () = assert!(GARBAGE_RAW < SELECTORS);

/// The connection state a dispatch input runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Logged in as the fuzz user.
    LoggedIn,
    /// Hello sent, not logged in.
    Greeted,
    /// Nothing sent yet.
    Fresh,
}

/// The request id every dispatch input uses.
pub(super) const RID: u64 = 7;

/// Builds a dispatch input: `kind` (an index into the request kinds, or past them for
/// garbage) in `state`, followed by `body`.
pub fn dispatch_input(kind: usize, state: ConnState, body: &[u8]) -> Vec<u8> {
    let state = match state {
        ConnState::LoggedIn => 0,
        ConnState::Greeted => 1,
        ConnState::Fresh => 2,
    };
    let mut v = vec![(state * SELECTORS + kind) as u8];
    v.extend_from_slice(body);
    v
}

/// Seeds for the dispatch target: every request kind with empty and with plausible fields, in
/// every connection state, and both kinds of garbage.
pub fn dispatch_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let plausible: Vec<RequestKind> = vec![
        RequestKind::Hello(pb::Hello {
            major: 1,
            minor: 3,
            client: "seed".into(),
            auth: Some(pb::hello::Auth::Login(pb::Login {
                username: "nobody".into(),
                password: "wrong-password".into(),
                device: "d".into(),
            })),
        }),
        RequestKind::Register(pb::Register {
            username: "seeduser".into(),
            password: "password123".into(),
            nickname: "Seed".into(),
            ..Default::default()
        }),
        RequestKind::Login(pb::Login {
            username: "nobody".into(),
            password: "wrong-password".into(),
            device: "dev\u{1b}[31m".into(),
        }),
        RequestKind::Resume(pb::Resume {
            token: vec![0u8; 32].into(),
            device: "d".into(),
        }),
        RequestKind::SendMessage(pb::SendMessage {
            to_user: 1,
            client_msg_id: 42,
            text: "hello".into(),
            ..Default::default()
        }),
        RequestKind::SendMessage(pb::SendMessage {
            conversation_id: 1,
            kind: pb::MessageKind::System as i32,
            text: "system?".into(),
            ..Default::default()
        }),
        RequestKind::Sync(pb::Sync {
            positions: vec![pb::ConversationPosition {
                conversation_id: 1,
                seq: u64::MAX,
            }],
            limit: 1000,
        }),
        RequestKind::Ack(pb::Ack {
            positions: vec![pb::ConversationPosition {
                conversation_id: 1,
                seq: u64::MAX,
            }],
        }),
        RequestKind::History(pb::History {
            peer_user: 1,
            limit: 200,
            before_seq: u64::MAX,
            since_ms: i64::MIN,
            until_ms: i64::MAX,
            ..Default::default()
        }),
        RequestKind::Search(pb::Search {
            query: "hello".into(),
            limit: 100,
            before_id: u64::MAX,
            conversation_id: 0,
        }),
        RequestKind::SearchUsers(pb::SearchUsers {
            query: "\0".into(),
            ..Default::default()
        }),
        RequestKind::FriendRequest(pb::SendFriendRequest {
            to_user: 1,
            message: "hi\u{202e}".into(),
        }),
        RequestKind::ChangePassword(pb::ChangePassword {
            old_password: "wrong-password".into(),
            new_password: "another-password".into(),
        }),
        RequestKind::GetUser(pb::GetUser {
            user_id: 1,
            ..Default::default()
        }),
        RequestKind::Block(pb::Block { user_id: 1 }),
        RequestKind::MarkRead(pb::MarkRead {
            conversation_id: 1,
            seq: u64::MAX,
        }),
        RequestKind::GroupCreate(pb::CreateGroup {
            name: "g".into(),
            members: vec![1, 2, u64::MAX],
            join_approval: true,
        }),
        RequestKind::SendMessage(pb::SendMessage {
            conversation_id: 1,
            text: "@all".into(),
            mentions: vec![1, 1, 0],
            mention_all: true,
            ..Default::default()
        }),
        RequestKind::GroupMute(pb::MuteGroupMember {
            group_id: 1,
            user_id: 2,
            seconds: u64::MAX,
        }),
        RequestKind::RevokeSession(pb::RevokeSession {
            session_id: u64::MAX,
        }),
        RequestKind::Recall(pb::RecallMessage {
            conversation_id: 1,
            seq: u64::MAX,
        }),
        RequestKind::FriendGroupSet(pb::SetFriendGroup {
            user_id: 2,
            group: "../\0同学".into(),
        }),
        RequestKind::RoomSend(pb::RoomSend {
            room: u64::MAX,
            client_msg_id: 1,
            text: "hi".into(),
        }),
        RequestKind::RedPacketSend(pb::SendRedPacket {
            conversation_id: 1,
            total_cents: u64::MAX,
            count: u32::MAX,
            mode: 7,
            greeting: "x".repeat(200),
            client_msg_id: 1,
        }),
        RequestKind::WalletTopUp(pb::TopUp {
            user_id: 1,
            amount_cents: u64::MAX,
        }),
        RequestKind::UploadBegin(pb::UploadBegin {
            name: "../../etc/passwd\0".into(),
            size: u64::MAX,
            sha256: vec![7; 32].into(),
            mime: "image/png".into(),
            duration_ms: u32::MAX,
        }),
        RequestKind::UploadChunk(pb::UploadChunk {
            upload_id: 1,
            index: u32::MAX,
            data: vec![1; 64].into(),
        }),
        RequestKind::Download(pb::Download {
            file_id: 1,
            offset: u64::MAX,
            length: u32::MAX,
            thumbnail: true,
        }),
        RequestKind::DownloadMany(pb::DownloadMany {
            items: vec![pb::Download::default(); 65],
        }),
        RequestKind::Transcribe(pb::Transcribe {
            conversation_id: 1,
            seq: u64::MAX,
            file_id: 1,
            language: "zz".into(),
        }),
        RequestKind::FileOfferAnswer(pb::AnswerFileOffer {
            conversation_id: u64::MAX,
            seq: 1,
            accept: true,
        }),
    ];
    let kinds = default_kinds();
    for state in [ConnState::LoggedIn, ConnState::Greeted, ConnState::Fresh] {
        for (idx, kind) in kinds.iter().enumerate() {
            // Empty fields everywhere before login; after login, all kinds.
            if state != ConnState::LoggedIn && idx > 6 {
                continue;
            }
            let name = request_kind(idx, &[]).0;
            out.push((
                format!("{state:?}-{name}-empty").to_lowercase(),
                dispatch_input(idx, state, &message_bytes(kind)),
            ));
        }
    }
    for (n, kind) in plausible.iter().enumerate() {
        let idx = kinds
            .iter()
            .position(|k| std::mem::discriminant(k) == std::mem::discriminant(kind))
            .unwrap_or(0);
        let name = request_kind(idx, &[]).0;
        out.push((
            format!("loggedin-{name}-fields{n}").to_lowercase(),
            dispatch_input(idx, ConnState::LoggedIn, &message_bytes(kind)),
        ));
    }
    let mut frames = BytesMut::new();
    frame::encode(
        &Envelope::request(3, RequestKind::Ping(pb::Ping { nonce: 1 })),
        &mut frames,
    );
    frames.put_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
    frame::encode(
        &Envelope::push(PushKind::Kicked(pb::Kicked::default())),
        &mut frames,
    );
    out.push((
        "loggedin-garbage-frame".into(),
        dispatch_input(GARBAGE_FRAME, ConnState::LoggedIn, &[0x0a, 0x02, 0x08]),
    ));
    out.push((
        "loggedin-raw-frames".into(),
        dispatch_input(GARBAGE_RAW, ConnState::LoggedIn, &frames),
    ));
    out.push((
        "fresh-raw-oversized".into(),
        dispatch_input(
            GARBAGE_RAW,
            ConnState::Fresh,
            &[0xff, 0xff, 0xff, 0xff, 1, 2],
        ),
    ));
    out
}

/// The bytes of a request kind's own message (what follows the selector byte).
fn message_bytes(kind: &RequestKind) -> Vec<u8> {
    // Encode a Request and strip the oneof's tag and length: that is the inner message.
    let req = pb::Request {
        kind: Some(kind.clone()),
    };
    let bytes = req.encode_to_vec();
    let mut rest = &bytes[..];
    let _tag = prost::encoding::decode_varint(&mut rest);
    let _len = prost::encoding::decode_varint(&mut rest);
    rest.to_vec()
}

/// A frame of `Envelope { request_id, Request { <field>: body } }` with `body` as it is.
pub(super) fn raw_request(rid: u64, field: u32, body: &[u8]) -> Vec<u8> {
    let mut req = Vec::new();
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, &mut req);
    prost::encoding::encode_varint(body.len() as u64, &mut req);
    req.extend_from_slice(body);
    let mut env = Vec::new();
    prost::encoding::uint64::encode(1, &rid, &mut env);
    prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut env);
    prost::encoding::encode_varint(req.len() as u64, &mut env);
    env.extend_from_slice(&req);
    let mut out = (env.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&env);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bytes_round_trip_every_kind() {
        for (idx, kind) in default_kinds().iter().enumerate() {
            let (_, _, back) = request_kind(idx, &message_bytes(kind));
            assert_eq!(&back.unwrap(), kind);
        }
    }

    #[test]
    fn raw_request_equals_prost_encoding() {
        let kind = RequestKind::Ping(pb::Ping { nonce: 5 });
        let body = message_bytes(&kind);
        assert_eq!(
            raw_request(RID, 6, &body),
            frame::encode_to_bytes(&Envelope::request(RID, kind)).to_vec()
        );
    }
}
