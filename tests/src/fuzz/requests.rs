//! The dispatch target: one request of any kind, in any connection state, against a real
//! in-process server, and its seeds.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use feige_protocol::{frame, pb, Body, Envelope, RequestKind, ResponseResult};
use feige_server::{Config, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::inputs::{
    raw_request, request_kind, ConnState, GARBAGE_FRAME, REQUEST_KINDS, RID, SELECTORS,
};

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
            http_listen: None,
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
                ..Default::default()
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
    let state = match selector as usize / SELECTORS {
        0 => ConnState::LoggedIn,
        1 => ConnState::Greeted,
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
