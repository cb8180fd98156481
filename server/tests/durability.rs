//! Acked means durable: run the real `feige-server` binary, SIGKILL it right after acks arrive,
//! restart it on the same data directory, and check that every acked message is there with
//! gapless sequences — and that resending the unacked ones (same client ids) leaves each
//! message stored exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use feige_protocol::{frame, pb, Body, Envelope, RequestKind, ResponseResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Proc {
    child: Child,
    addr: String,
}

fn start(dir: &std::path::Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feige-server"))
        // The test resends hundreds of messages as fast as they are acked: exempt loopback
        // from the send rate limit.
        .env("FEIGE_TRUSTED_ADDRS", "127.0.0.1")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--log",
            "warn",
            "--dm-policy",
            "anyone",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start feige-server");
    let stdout = child.stdout.take().expect("stdout");
    // Log lines (a warning about the data directory's permissions, say) may come first.
    let mut reader = BufReader::new(stdout);
    let addr = loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "feige-server exited before listening");
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    Proc { child, addr }
}

struct Conn {
    s: TcpStream,
    buf: BytesMut,
    next: u64,
}

impl Conn {
    async fn open(addr: &str) -> Conn {
        let mut c = Conn {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            next: 1,
        };
        let r = c
            .call(RequestKind::Hello(pb::Hello {
                major: 1,
                ..Default::default()
            }))
            .await;
        assert!(matches!(r, Some(ResponseResult::Hello(_))));
        c
    }
    async fn send(&mut self, kind: RequestKind) -> u64 {
        let id = self.next;
        self.next += 1;
        self.s
            .write_all(&frame::encode_to_bytes(&Envelope::request(id, kind)))
            .await
            .unwrap();
        id
    }
    /// Next response (request id, result); None when the connection died.
    async fn next_response(&mut self) -> Option<(u64, ResponseResult)> {
        loop {
            if let Some(env) = frame::decode(&mut self.buf, usize::MAX).unwrap() {
                if let Some(Body::Response(r)) = env.body {
                    return Some((env.request_id, r.result.unwrap()));
                }
                continue;
            }
            match tokio::time::timeout(Duration::from_secs(10), self.s.read_buf(&mut self.buf))
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }
    async fn call(&mut self, kind: RequestKind) -> Option<ResponseResult> {
        let id = self.send(kind).await;
        loop {
            let (rid, r) = self.next_response().await?;
            if rid == id {
                return Some(r);
            }
        }
    }
    async fn login(addr: &str, name: &str, register: bool) -> Conn {
        let mut c = Conn::open(addr).await;
        if register {
            let r = c
                .call(RequestKind::Register(pb::Register {
                    username: name.into(),
                    password: "password123".into(),
                    nickname: name.into(),
                    ..Default::default()
                }))
                .await;
            assert!(matches!(r, Some(ResponseResult::Register(_))), "{r:?}");
        }
        let r = c
            .call(RequestKind::Login(pb::Login {
                username: name.into(),
                password: "password123".into(),
                device: "d".into(),
            }))
            .await;
        assert!(matches!(r, Some(ResponseResult::Session(_))), "{r:?}");
        c
    }
}

fn send_req(to: u64, client_msg_id: u64) -> RequestKind {
    RequestKind::SendMessage(pb::SendMessage {
        to_user: to,
        client_msg_id,
        text: format!("message {client_msg_id}"),
        ..Default::default()
    })
}

/// All messages of alice's chat with bob, ascending by seq.
async fn all_messages(addr: &str, bob_id: u64) -> Vec<pb::Message> {
    let mut c = Conn::login(addr, "alice", false).await;
    let mut out = Vec::new();
    let mut before = 0;
    loop {
        let r = c
            .call(RequestKind::History(pb::History {
                peer_user: bob_id,
                limit: 200,
                before_seq: before,
                ..Default::default()
            }))
            .await;
        let Some(ResponseResult::History(page)) = r else {
            panic!("history failed: {r:?}")
        };
        if page.messages.is_empty() {
            break;
        }
        before = page.messages.last().unwrap().seq;
        out.extend(page.messages);
    }
    out.reverse();
    out
}

#[tokio::test]
async fn acked_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start(dir.path());
    let bob_id = {
        let mut c = Conn::open(&p.addr).await;
        let r = c
            .call(RequestKind::Register(pb::Register {
                username: "bob".into(),
                password: "password123".into(),
                nickname: "Bob".into(),
                ..Default::default()
            }))
            .await;
        let Some(ResponseResult::Register(ok)) = r else {
            panic!("{r:?}")
        };
        ok.user_id
    };
    drop(Conn::login(&p.addr, "alice", true).await);

    // client id -> seq of every acked message.
    let mut acked: HashMap<u64, u64> = HashMap::new();
    let mut next_client_id = 1_000u64;
    for round in 0..4u64 {
        let mut c = Conn::login(&p.addr, "alice", false).await;
        // Pipeline 60 sends; kill the server as soon as 10 + round*7 acks are in.
        let mut by_request: HashMap<u64, u64> = HashMap::new();
        for _ in 0..60 {
            next_client_id += 1;
            let rid = c.send(send_req(bob_id, next_client_id)).await;
            by_request.insert(rid, next_client_id);
        }
        let want = 10 + round as usize * 7;
        let mut got = 0;
        while got < want {
            let (rid, r) = c.next_response().await.expect("server alive");
            if let ResponseResult::Send(ok) = r {
                acked.insert(by_request[&rid], ok.seq);
                got += 1;
            }
        }
        p.child.kill().unwrap(); // SIGKILL: no graceful anything
        p.child.wait().unwrap();
        // Acks that were already in the socket buffer count as acked too.
        while let Some((rid, r)) = c.next_response().await {
            if let ResponseResult::Send(ok) = r {
                acked.insert(by_request[&rid], ok.seq);
            }
        }
        p = start(dir.path());
        let stored = all_messages(&p.addr, bob_id).await;
        let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=stored.len() as u64).collect::<Vec<_>>(),
            "gapless after round {round}"
        );
        let by_client: BTreeMap<u64, u64> =
            stored.iter().map(|m| (m.client_msg_id, m.seq)).collect();
        assert_eq!(by_client.len(), stored.len(), "no duplicates");
        for (cid, seq) in &acked {
            assert_eq!(
                by_client.get(cid),
                Some(seq),
                "acked message {cid} lost or moved"
            );
        }
    }

    // Resend every client id once more: all are duplicates or new, nothing stored twice.
    let mut c = Conn::login(&p.addr, "alice", false).await;
    for cid in 1_001..=next_client_id {
        let r = c.call(send_req(bob_id, cid)).await;
        let Some(ResponseResult::Send(ok)) = r else {
            panic!("{r:?}")
        };
        if let Some(seq) = acked.get(&cid) {
            assert!(ok.duplicate);
            assert_eq!(ok.seq, *seq);
        }
    }
    let stored = all_messages(&p.addr, bob_id).await;
    assert_eq!(stored.len() as u64, next_client_id - 1_000);
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
    p.child.kill().unwrap();
    let _ = p.child.wait();
}
