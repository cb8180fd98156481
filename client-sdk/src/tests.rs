//! Client behaviour against a scripted fake server: resend after a lost connection, gap
//! filling, heartbeats.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use feige_protocol::{frame, pb, Body, Envelope, PushKind, RequestKind, ResponseResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{Client, ClientConfig, ConnState, Event, Events};

mod transfer;

const TOKEN: [u8; 32] = [7; 32];

/// One accepted connection of the fake server.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    async fn accept(l: &TcpListener) -> Peer {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .unwrap()
            .unwrap();
        Peer {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The next request (skipping pings, which are answered).
    async fn request(&mut self) -> (u64, RequestKind) {
        loop {
            let env = self.read().await;
            let Some(Body::Request(pb::Request { kind: Some(kind) })) = env.body else {
                panic!("not a request: {env:?}");
            };
            if let RequestKind::Ping(p) = kind {
                self.respond(
                    env.request_id,
                    ResponseResult::Pong(pb::Pong { nonce: p.nonce }),
                )
                .await;
                continue;
            }
            return (env.request_id, kind);
        }
    }

    async fn read(&mut self) -> Envelope {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(env) = frame::decode(&mut self.buf, usize::MAX).unwrap() {
                    return env;
                }
                assert_ne!(self.stream.read_buf(&mut self.buf).await.unwrap(), 0, "eof");
            }
        })
        .await
        .unwrap()
    }

    async fn send(&mut self, env: Envelope) {
        self.stream
            .write_all(&frame::encode_to_bytes(&env))
            .await
            .unwrap();
    }

    async fn respond(&mut self, id: u64, r: ResponseResult) {
        self.send(Envelope::response(id, r)).await;
    }

    async fn push(&mut self, m: pb::Message) {
        self.send(Envelope::push(PushKind::Message(m))).await;
    }

    /// Answers the Hello; expects a resume when `resume` is set.
    async fn hello(&mut self, heartbeat_ms: u32, resume: bool) {
        let (id, kind) = self.request().await;
        let RequestKind::Hello(h) = kind else {
            panic!("{kind:?}")
        };
        let session = match h.auth {
            Some(pb::hello::Auth::Resume(r)) => {
                assert!(resume);
                assert_eq!(&r.token[..], &TOKEN[..]);
                Some(session())
            }
            None => {
                assert!(!resume);
                None
            }
            other => panic!("{other:?}"),
        };
        let ok = pb::HelloOk {
            major: 1,
            heartbeat_ms,
            max_frame_len: 1 << 20,
            session,
            ..Default::default()
        };
        self.respond(id, ResponseResult::Hello(ok)).await;
    }

    /// Answers a Login.
    async fn login(&mut self) {
        let (id, kind) = self.request().await;
        assert!(matches!(kind, RequestKind::Login(_)), "{kind:?}");
        self.respond(id, ResponseResult::Session(session())).await;
    }

    /// Answers Syncs (empty) and Acks until a SendMessage comes.
    async fn until_send(&mut self) -> (u64, pb::SendMessage) {
        loop {
            let (id, kind) = self.request().await;
            match kind {
                RequestKind::Sync(_) => {
                    let page = pb::SyncPage::default();
                    self.respond(id, ResponseResult::Sync(page)).await;
                }
                RequestKind::Ack(_) => {
                    self.respond(id, ResponseResult::Ack(pb::AckOk {})).await;
                }
                RequestKind::SendMessage(m) => return (id, m),
                other => panic!("expected SendMessage, got {other:?}"),
            }
        }
    }

    /// Answers a Sync with `messages`; returns its positions.
    async fn sync(&mut self, messages: Vec<pb::Message>) -> Vec<(u64, u64)> {
        loop {
            let (id, kind) = self.request().await;
            match kind {
                RequestKind::Sync(s) => {
                    let page = pb::SyncPage {
                        messages,
                        has_more: false,
                    };
                    self.respond(id, ResponseResult::Sync(page)).await;
                    return s
                        .positions
                        .iter()
                        .map(|p| (p.conversation_id, p.seq))
                        .collect();
                }
                RequestKind::Ack(_) => {
                    self.respond(id, ResponseResult::Ack(pb::AckOk {})).await;
                }
                other => panic!("expected Sync, got {other:?}"),
            }
        }
    }
}

fn session() -> pb::Session {
    pb::Session {
        user_id: 2,
        token: Bytes::from_static(&TOKEN),
        profile: None,
        device: "d".into(),
        session_id: 1,
        expires_at_ms: 0,
    }
}

fn msg(seq: u64) -> pb::Message {
    pb::Message {
        message_id: 100 + seq,
        conversation_id: 1,
        seq,
        from_user: 1,
        to_user: 2,
        text: format!("m{seq}"),
        ..Default::default()
    }
}

async fn start() -> (TcpListener, ClientConfig) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ClientConfig {
        device: "d".into(),
        ..ClientConfig::new(l.local_addr().unwrap().to_string())
    };
    (l, config)
}

async fn next_message(ev: &mut Events) -> pb::Message {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Event::Message(m)) = ev.recv().await {
                return m;
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn send_is_resent_with_the_same_id_after_a_lost_connection() {
    let (l, config) = start().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.hello(30_000, false).await;
        p.login().await;
        let (_, first) = p.until_send().await;
        // Drop the connection without answering.
        drop(p);
        let mut p = Peer::accept(&l).await;
        p.hello(30_000, true).await;
        let (id, again) = p.until_send().await;
        assert_eq!(again.client_msg_id, first.client_msg_id);
        assert_ne!(first.client_msg_id, 0);
        let ok = pb::SendOk {
            message_id: 9,
            conversation_id: 1,
            seq: 1,
            sent_at_ms: 1,
            duplicate: true,
        };
        p.respond(id, ResponseResult::Send(ok)).await;
        p
    });
    let (client, _ev) = Client::connect(config).await.unwrap();
    client.login("u", "p").await.unwrap();
    let ok = client.send_text(1, "hi").await.unwrap();
    assert!(ok.duplicate);
    let _p = server.await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn a_gap_in_pushes_is_filled_by_a_sync_in_order() {
    let (l, config) = start().await;
    let (connected, mut p) = tokio::join!(Client::connect(config), async {
        let mut p = Peer::accept(&l).await;
        p.hello(30_000, false).await;
        p
    });
    let (client, mut ev) = connected.unwrap();
    let login = tokio::spawn({
        let c = client.clone();
        async move { c.login("u", "p").await.unwrap() }
    });
    p.login().await;
    login.await.unwrap();
    assert!(p.sync(vec![]).await.is_empty());
    // Seq 1 of an unknown conversation is taken as is only after the first sync.
    tokio::time::timeout(Duration::from_secs(10), async {
        while ev.recv().await != Some(Event::State(crate::ConnState::Synced)) {}
    })
    .await
    .unwrap();
    p.push(msg(1)).await;
    assert_eq!(next_message(&mut ev).await.seq, 1);
    p.push(msg(4)).await;
    // The gap makes the client sync from its position; 4 was buffered and comes once.
    let positions = p.sync(vec![msg(2), msg(3), msg(4)]).await;
    assert_eq!(positions, vec![(1, 1)]);
    for want in 2..=4 {
        assert_eq!(next_message(&mut ev).await.seq, want);
    }
    p.push(msg(4)).await;
    p.push(msg(5)).await;
    assert_eq!(next_message(&mut ev).await.seq, 5);
    client.close().await;
}

#[tokio::test]
async fn idle_connection_pings_within_the_heartbeat() {
    let (l, config) = start().await;
    let (connected, mut p) = tokio::join!(Client::connect(config), async {
        let mut p = Peer::accept(&l).await;
        p.hello(200, false).await;
        p
    });
    let (client, _ev) = connected.unwrap();
    let env = tokio::time::timeout(Duration::from_millis(500), p.read())
        .await
        .unwrap();
    assert!(matches!(
        env.body,
        Some(Body::Request(pb::Request {
            kind: Some(RequestKind::Ping(_))
        }))
    ));
    client.close().await;
}

/// The texts of the next `n` SendMessages (answering Syncs and Acks); each is answered with
/// its position as seq when `answer`.
async fn sends(p: &mut Peer, n: usize, answer: bool) -> Vec<String> {
    let mut texts = Vec::new();
    for _ in 0..n {
        let (id, m) = p.until_send().await;
        texts.push(m.text.clone());
        if answer {
            let ok = pb::SendOk {
                message_id: 100 + texts.len() as u64,
                conversation_id: 1,
                seq: texts.len() as u64,
                sent_at_ms: 1,
                duplicate: false,
            };
            p.respond(id, ResponseResult::Send(ok)).await;
        }
    }
    texts
}

#[tokio::test]
async fn sends_keep_issue_order_across_a_lost_connection() {
    let (l, config) = start().await;
    let (reconnect_tx, reconnect_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.hello(30_000, false).await;
        p.login().await;
        // Futures created in order and polled by one join! go out in that order.
        assert_eq!(sends(&mut p, 3, false).await, ["a", "b", "c"]);
        drop(p);
        // Answer the reconnect only after the client queued more sends while offline.
        reconnect_rx.await.unwrap();
        let mut p = Peer::accept(&l).await;
        p.hello(30_000, true).await;
        // The sends in flight first, in their order, then those queued while offline.
        let texts = sends(&mut p, 5, true).await;
        assert_eq!(texts, ["a", "b", "c", "d", "e"]);
        p
    });
    let (client, mut ev) = Client::connect(config).await.unwrap();
    client.login("u", "p").await.unwrap();
    let c = client.clone();
    let first = tokio::spawn(async move {
        let (a, b, c) = tokio::join!(
            c.send_text(1, "a"),
            c.send_text(1, "b"),
            c.send_text(1, "c")
        );
        [a.unwrap().seq, b.unwrap().seq, c.unwrap().seq]
    });
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(
            ev.recv().await,
            Some(Event::State(ConnState::Disconnected { .. }))
        ) {}
    })
    .await
    .unwrap();
    let c = client.clone();
    let second = tokio::spawn(async move {
        let (d, e) = tokio::join!(c.send_text(1, "d"), c.send_text(1, "e"));
        [d.unwrap().seq, e.unwrap().seq]
    });
    // Let both sends be issued (queued) before the server answers again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    reconnect_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap(), [1, 2, 3]);
    assert_eq!(second.await.unwrap(), [4, 5]);
    let _p = server.await.unwrap();
    client.close().await;
}
