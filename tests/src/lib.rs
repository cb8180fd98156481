//! Test harness: a real server on port 0 with a temporary data directory, and a raw framed
//! connection for byte-level tests. Panicking on a failed setup is the harness's job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod codes;
pub mod files;
pub mod fuzz;
pub mod http;
pub mod ops_http;
pub mod sdk;
pub mod tls;
pub mod totp;
pub mod ws;

/// Who may send 1:1 messages, for tests that set `dm_policy`.
pub use feige_server::config::DmPolicy;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use feige_protocol::{frame, pb, Body, Envelope, ErrorCode, PushKind, RequestKind, ResponseResult};
use feige_server::{Config, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running test server and its data directory (deleted on drop).
pub struct TestServer {
    /// The server.
    pub handle: ServerHandle,
    /// Its data directory.
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with default settings on 127.0.0.1:0.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server where any two users may message each other (`dm_policy = "anyone"`),
    /// for tests about messaging rather than friendship.
    pub async fn start_open() -> TestServer {
        Self::start_with(|c| c.dm_policy = DmPolicy::Anyone).await
    }

    /// Starts a server after `tweak` adjusts its config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_in(tempfile::tempdir().unwrap(), tweak).await
    }

    /// Stops the server and starts a new one on the same data directory (a new port).
    pub async fn restart_with(self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let TestServer { handle, dir } = self;
        handle.shutdown().await;
        Self::start_in(dir, tweak).await
    }

    /// Stops the server and hands back its data directory (for [`TestServer::start_in`]).
    pub async fn stop(self) -> tempfile::TempDir {
        self.handle.shutdown().await;
        self.dir
    }

    /// Starts a server on the data directory `dir` after `tweak` adjusts its config.
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: dir.path().to_owned(),
            shutdown_grace_ms: 3000,
            // Tests register and send far beyond the abuse limits from one address; the tests
            // of those limits (tests/abuse.rs) clear this.
            trusted_addrs: vec![[127, 0, 0, 1].into()],
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::bind(config).await.unwrap();
        TestServer {
            handle: server.spawn(),
            dir,
        }
    }

    /// "host:port" of the HTTP listener (WebSocket gateway, HTTP API).
    pub fn http_addr(&self) -> String {
        self.handle
            .http_addr()
            .expect("the test server's HTTP listener is on")
            .to_string()
    }

    /// "host:port" of the server.
    pub fn addr(&self) -> String {
        self.handle.addr().to_string()
    }
}

/// A raw framed connection.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    next_id: u64,
}

/// What a raw read produced.
#[derive(Debug)]
// An Envelope is a few hundred bytes (its largest response kinds inline); boxing it would only
// make the tests' patterns noisier.
#[allow(clippy::large_enum_variant)]
pub enum Got {
    /// A decoded envelope.
    Frame(Envelope),
    /// The server closed the connection.
    Closed,
}

impl Raw {
    /// Connects without sending anything.
    pub async fn connect(addr: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            next_id: 1,
        }
    }

    /// Wraps a connected socket set up by the test (bound to a chosen source address, or with
    /// a small receive buffer).
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: BytesMut::new(),
            next_id: 1,
        }
    }

    /// Connects and sends Hello (version 1).
    pub async fn greeted(addr: &str) -> Raw {
        let mut r = Self::connect(addr).await;
        r.hello().await;
        r
    }

    /// Sends Hello (version 1) and expects its answer.
    pub async fn hello(&mut self) {
        let res = self
            .call(RequestKind::Hello(pb::Hello {
                major: 1,
                ..Default::default()
            }))
            .await;
        assert!(matches!(res, ResponseResult::Hello(_)), "{res:?}");
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Sends a request; returns its id.
    pub async fn send(&mut self, kind: RequestKind) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = frame::encode_to_bytes(&Envelope::request(id, kind));
        self.write(&bytes).await;
        id
    }

    /// Reads the next frame, or Closed; panics after 10 s.
    pub async fn read(&mut self) -> Got {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(env) = frame::decode(&mut self.buf, usize::MAX).unwrap() {
                    return Got::Frame(env);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return Got::Closed,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("no frame within 10 s")
    }

    /// Reads frames until one that `pick` accepts and returns its encoded payload (the bytes
    /// after the length prefix), for tests of what is on the wire; panics after 10 s or when
    /// the connection closes first.
    pub async fn frame_bytes(&mut self, pick: impl Fn(&Envelope) -> bool) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                while self.buf.len() >= 4 {
                    let n =
                        u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                    let end = 4 + n as usize;
                    if self.buf.len() < end {
                        break;
                    }
                    let payload = self.buf.split_to(end).split_off(4).to_vec();
                    let env: Envelope = prost::Message::decode(&payload[..]).unwrap();
                    if pick(&env) {
                        return payload;
                    }
                }
                let n = self.stream.read_buf(&mut self.buf).await.unwrap();
                assert!(n > 0, "closed before the frame");
            }
        })
        .await
        .expect("no such frame within 10 s")
    }

    /// Reads frames until the response to `id` (skipping pushes).
    pub async fn response(&mut self, id: u64) -> ResponseResult {
        loop {
            match self.read().await {
                Got::Frame(Envelope {
                    request_id,
                    body: Some(Body::Response(r)),
                }) if request_id == id => return r.result.unwrap(),
                Got::Frame(_) => continue,
                Got::Closed => panic!("closed before the response to {id}"),
            }
        }
    }

    /// Sends a request and waits for its response.
    pub async fn call(&mut self, kind: RequestKind) -> ResponseResult {
        let id = self.send(kind).await;
        self.response(id).await
    }

    /// Expects the connection to be closed (after any frames).
    pub async fn expect_closed(&mut self) -> Vec<Envelope> {
        let mut frames = Vec::new();
        loop {
            match self.read().await {
                Got::Frame(f) => frames.push(f),
                Got::Closed => return frames,
            }
        }
    }
}

/// The error code of a response, or None when it succeeded.
pub fn error_code(r: &ResponseResult) -> Option<ErrorCode> {
    match r {
        ResponseResult::Error(e) => Some(ErrorCode::try_from(e.code).unwrap()),
        _ => None,
    }
}

/// Whether `frames` hold an error response or Kicked push with `code`.
pub fn has_code(frames: &[Envelope], code: ErrorCode) -> bool {
    frames.iter().any(|f| match &f.body {
        Some(Body::Response(r)) => {
            matches!(&r.result, Some(ResponseResult::Error(e)) if e.code == code as i32)
        }
        Some(Body::Push(p)) => {
            matches!(&p.kind, Some(PushKind::Kicked(k)) if k.code == code as i32)
        }
        _ => false,
    })
}

/// Registers `name` with password "password123" over a raw connection; returns the user id.
pub async fn register_raw(addr: &str, name: &str) -> u64 {
    let mut r = Raw::greeted(addr).await;
    match r
        .call(RequestKind::Register(pb::Register {
            username: name.into(),
            password: "password123".into(),
            nickname: name.into(),
            ..Default::default()
        }))
        .await
    {
        ResponseResult::Register(ok) => ok.user_id,
        other => panic!("register failed: {other:?}"),
    }
}

/// A raw connection logged in as `name`.
pub async fn login_raw(addr: &str, name: &str, device: &str) -> (Raw, pb::Session) {
    let mut r = Raw::greeted(addr).await;
    match r
        .call(RequestKind::Login(pb::Login {
            username: name.into(),
            password: "password123".into(),
            device: device.into(),
        }))
        .await
    {
        ResponseResult::Session(s) => (r, s),
        other => panic!("login failed: {other:?}"),
    }
}
