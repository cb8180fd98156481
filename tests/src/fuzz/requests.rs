//! The dispatch target: one request of any kind, in any connection state, against a real
//! in-process server, and its seeds.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use feige_protocol::{frame, pb, Body, Envelope, PushKind, RequestKind, ResponseResult};
use feige_server::{Config, Server, ServerHandle};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Panics seen anywhere in the process (server tasks and threads included) since start.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The in-process server every dispatch input runs against.
struct Harness {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    _handle: ServerHandle,
    _dir: tempfile::TempDir,
    /// Current fuzz account (name, session token); replaced when the token gets revoked.
    account: tokio::sync::Mutex<(String, Vec<u8>)>,
    /// Accounts made so far, to name the next one.
    made: Mutex<u32>,
}

/// Longest wait for one answer; a server that takes longer is wedged.
const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "fuzz-password-1";

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            prev(info);
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fuzz runtime");
        // Under target/, not the system's temp directory: a static is never dropped, so the
        // directory outlives the process, and `cargo clean` removes it.
        let parent = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-data");
        std::fs::create_dir_all(&parent).expect("create target/fuzz-data");
        let dir = tempfile::Builder::new()
            .prefix("server-")
            .tempdir_in(&parent)
            .expect("temp dir");
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_owned(),
            dm_policy: crate::DmPolicy::Anyone,
            shutdown_grace_ms: 1000,
            ..Config::default()
        };
        let handle = rt.block_on(async {
            Server::bind(config)
                .await
                .expect("start the fuzz server")
                .spawn()
        });
        let addr = handle.addr();
        let account = rt.block_on(async {
            // A peer to write to: user ids 1 and 2 are the fuzz users.
            register(addr, "fuzzpeer").await.expect("register fuzzpeer");
            register(addr, "fuzz0").await.expect("register fuzz0");
            let token = login(addr, "fuzz0").await.expect("login fuzz0");
            ("fuzz0".to_owned(), token)
        });
        Harness {
            rt,
            addr,
            _handle: handle,
            _dir: dir,
            account: tokio::sync::Mutex::new(account),
            made: Mutex::new(1),
        }
    })
}

/// A connection speaking whole frames, with a deadline on every read.
struct Conn {
    s: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// A connection from 127.0.0.1, as every input's.
    async fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr)
            .await
            .expect("connect to the fuzz server");
        Conn {
            s,
            buf: BytesMut::new(),
        }
    }

    /// A connection from 127.0.0.2, for the harness's own registrations and password logins:
    /// limits per source address that inputs run into (failed logins) do not lock it out.
    async fn open_harness(addr: SocketAddr) -> Conn {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        let s = match sock.bind(SocketAddr::from(([127, 0, 0, 2], 0))) {
            Ok(()) => sock.connect(addr).await,
            Err(_) => TcpStream::connect(addr).await,
        }
        .expect("connect to the fuzz server");
        Conn {
            s,
            buf: BytesMut::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        self.s.write_all(bytes).await.is_ok()
    }

    /// The response to `rid` (or an error response to request 0: a malformed frame), or None
    /// when the server closed the connection; pushes are skipped. Panics when neither comes
    /// within [`WAIT`].
    async fn answer(&mut self, rid: u64, what: &str) -> Option<ResponseResult> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match frame::decode(&mut self.buf, usize::MAX) {
                Ok(Some(env)) => {
                    if let Some(Body::Response(r)) = env.body {
                        let result = r.result.expect("a response carries a result");
                        let malformed =
                            env.request_id == 0 && matches!(result, ResponseResult::Error(_));
                        if env.request_id == rid || malformed {
                            return Some(result);
                        }
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => panic!("server sent an undecodable frame after {what}: {e}"),
            }
            match tokio::time::timeout_at(deadline, self.s.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("no response and no close within {WAIT:?} after {what}"),
            }
        }
    }

    /// Reads until the server closes; panics when it does not within [`WAIT`].
    async fn until_closed(&mut self, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.buf.clear();
            match tokio::time::timeout_at(deadline, self.s.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("connection not closed within {WAIT:?} after {what}"),
            }
        }
    }

    async fn call(&mut self, rid: u64, kind: RequestKind) -> Option<ResponseResult> {
        let bytes = frame::encode_to_bytes(&Envelope::request(rid, kind));
        if !self.write(&bytes).await {
            return None;
        }
        self.answer(rid, "a harness request").await
    }

    async fn hello(&mut self, auth: Option<pb::hello::Auth>) -> Option<ResponseResult> {
        let hello = pb::Hello {
            major: feige_protocol::PROTOCOL_MAJOR,
            client: "feige-fuzz".into(),
            auth,
            ..Default::default()
        };
        self.call(1, RequestKind::Hello(hello)).await
    }
}

async fn register(addr: SocketAddr, name: &str) -> Option<()> {
    let mut c = Conn::open_harness(addr).await;
    c.hello(None).await?;
    let r = c
        .call(
            2,
            RequestKind::Register(pb::Register {
                username: name.into(),
                password: PASSWORD.into(),
                nickname: name.into(),
            }),
        )
        .await?;
    matches!(r, ResponseResult::Register(_)).then_some(())
}

async fn login(addr: SocketAddr, name: &str) -> Option<Vec<u8>> {
    let mut c = Conn::open_harness(addr).await;
    c.hello(None).await?;
    let r = c
        .call(
            2,
            RequestKind::Login(pb::Login {
                username: name.into(),
                password: PASSWORD.into(),
                device: "fuzz".into(),
            }),
        )
        .await?;
    match r {
        ResponseResult::Session(s) => Some(s.token.to_vec()),
        _ => None,
    }
}

impl Harness {
    /// A connection logged in as the fuzz user. Inputs may revoke its token (Logout,
    /// RevokeSession) or change its password: then it logs in again, or makes a new account.
    async fn logged_in(&self) -> Conn {
        let mut account = self.account.lock().await;
        for _ in 0..3 {
            let mut c = Conn::open(self.addr).await;
            let resume = pb::hello::Auth::Resume(pb::Resume {
                token: account.1.clone().into(),
                device: "fuzz".into(),
            });
            if let Some(ResponseResult::Hello(h)) = c.hello(Some(resume)).await {
                if h.session.is_some() {
                    return c;
                }
            }
            if let Some(token) = login(self.addr, &account.0).await {
                account.1 = token;
                continue;
            }
            let name = {
                let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
                *made += 1;
                format!("fuzz{made}")
            };
            if register(self.addr, &name).await.is_some() {
                if let Some(token) = login(self.addr, &name).await {
                    *account = (name, token);
                }
            }
        }
        panic!(
            "the fuzz harness cannot log in any more (account {})",
            account.0
        );
    }

    /// Fails when the server stopped answering: a Ping on a fresh connection must get its Pong.
    async fn alive(&self, what: &str) {
        let mut c = Conn::open(self.addr).await;
        let r = c.hello(None).await;
        assert!(
            matches!(r, Some(ResponseResult::Hello(_))),
            "Hello on a fresh connection after {what}: {r:?}"
        );
        let r = c.call(2, RequestKind::Ping(pb::Ping { nonce: 77 })).await;
        assert!(
            matches!(r, Some(ResponseResult::Pong(pb::Pong { nonce: 77 }))),
            "Ping on a fresh connection after {what}: {r:?}"
        );
    }
}

/// Request kinds in `Request.kind` order: the input's first byte picks one.
macro_rules! request_kinds {
    ($($variant:ident($msg:ty) = $field:literal),* $(,)?) => {
        /// How many request kinds there are.
        pub const REQUEST_KINDS: usize = [$($field),*].len();

        /// Decodes `bytes` as the message of request kind `idx`: (kind name, its `Request`
        /// field number, the decoded request, or the decode error).
        fn request_kind(
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
}

/// Selector values past the request kinds: a garbage payload in a well-formed frame, or raw
/// bytes with no framing at all.
const GARBAGE_FRAME: usize = REQUEST_KINDS;
const GARBAGE_RAW: usize = REQUEST_KINDS + 1;
/// Selector values per connection state (four states fill the selector byte; more request
/// kinds than 62 will need a second selector byte).
const SELECTORS: usize = 64;
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
const RID: u64 = 7;

/// Builds a dispatch input: `kind` (an index into the request kinds, or past them for
/// garbage) in `state`, followed by `body`.
pub fn dispatch_input(kind: usize, state: ConnState, body: &[u8]) -> Vec<u8> {
    let state = match state {
        ConnState::LoggedIn => 0,
        ConnState::Greeted => 2,
        ConnState::Fresh => 3,
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

/// Fuzz target: the server's request dispatch. The first byte picks the connection state
/// (logged in, greeted, fresh) and the request kind, or a garbage frame / raw bytes; the rest
/// is decoded as that kind's message (bytes prost refuses go out as they are, a malformed
/// frame). The request must get its response or a clean close, the server must not panic,
/// and afterwards it must answer a Ping on a fresh connection. Panics on a violation.
pub fn dispatch(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let h = harness();
    let before = PANICS.load(Ordering::SeqCst);
    let state = match (selector as usize / SELECTORS) % 4 {
        0 | 1 => ConnState::LoggedIn,
        2 => ConnState::Greeted,
        _ => ConnState::Fresh,
    };
    let idx = selector as usize % SELECTORS;
    h.rt.block_on(async {
        let mut c = match state {
            ConnState::LoggedIn => h.logged_in().await,
            ConnState::Greeted => {
                let mut c = Conn::open(h.addr).await;
                let r = c.hello(None).await;
                assert!(matches!(r, Some(ResponseResult::Hello(_))), "Hello: {r:?}");
                c
            }
            ConnState::Fresh => Conn::open(h.addr).await,
        };
        let what;
        if idx >= REQUEST_KINDS {
            let mut bytes = BytesMut::new();
            if idx == GARBAGE_FRAME {
                what = "a garbage frame".to_owned();
                bytes.put_u32(body.len() as u32);
            } else {
                what = "raw bytes".to_owned();
            }
            bytes.put_slice(body);
            // Half-close: the server must answer what it can and close, whatever it got.
            if c.write(&bytes).await {
                let _ = c.s.shutdown().await;
                c.until_closed(&what).await;
            }
        } else {
            let (name, field, decoded) = request_kind(idx, body);
            what = format!("{name} ({state:?})");
            let bytes = match decoded {
                Ok(kind) => frame::encode_to_bytes(&Envelope::request(RID, kind)).to_vec(),
                Err(_) => raw_request(RID, field, body),
            };
            if c.write(&bytes).await {
                let _ = c.answer(RID, &what).await;
            }
        }
        drop(c);
        h.alive(&what).await;
    });
    let after = PANICS.load(Ordering::SeqCst);
    assert_eq!(
        before, after,
        "a panic in the server while handling the input"
    );
}

/// A frame of `Envelope { request_id, Request { <field>: body } }` with `body` as it is.
fn raw_request(rid: u64, field: u32, body: &[u8]) -> Vec<u8> {
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
