//! A WebSocket client of the gateway for tests: JSON commands in, answers and pushes out.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket connection to the gateway.
pub struct Ws {
    /// The socket.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_seq: u64,
    /// Pushes read while waiting for an answer.
    pub pushes: Vec<Value>,
}

/// What a read produced.
#[derive(Debug)]
pub enum WsGot {
    /// A JSON text frame.
    Json(Value),
    /// A close frame (code, reason), or the end of the stream (`None`).
    Closed(Option<(u16, String)>),
}

impl Ws {
    /// Connects to `ws://{http_addr}{path}`.
    pub async fn connect_path(http_addr: &str, path: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{http_addr}{path}"))
            .await
            .unwrap();
        Ws {
            ws,
            next_seq: 1,
            pushes: Vec::new(),
        }
    }

    /// Connects to `/ws`.
    pub async fn connect(http_addr: &str) -> Ws {
        Self::connect_path(http_addr, "/ws").await
    }

    /// Connects and logs in by password; returns the login answer's `data`.
    pub async fn login(http_addr: &str, username: &str, password: &str) -> (Ws, Value) {
        let mut ws = Self::connect(http_addr).await;
        let r = ws
            .call(
                "login",
                json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(r["response"]["code"], 200, "{r}");
        let data = r["response"]["data"].clone();
        (ws, data)
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    /// Sends `{"seq","cmd","data"}`; returns the seq.
    pub async fn send(&mut self, cmd: &str, data: Value) -> String {
        let seq = format!("1565336219141-{}", self.next_seq);
        self.next_seq += 1;
        let req = json!({ "seq": seq, "cmd": cmd, "data": data });
        self.send_text(req.to_string()).await;
        seq
    }

    /// The next frame, within 10 s.
    pub async fn read(&mut self) -> WsGot {
        let next = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return WsGot::Json(serde_json::from_str(t.as_str()).unwrap())
                    }
                    Some(Ok(Message::Close(c))) => {
                        return WsGot::Closed(
                            c.map(|c| (u16::from(c.code), c.reason.as_str().to_owned())),
                        )
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return WsGot::Closed(None),
                }
            }
        });
        next.await.expect("no WebSocket frame within 10 s")
    }

    /// The answer to `seq`; pushes before it are kept in `pushes`.
    pub async fn answer(&mut self, seq: &str) -> Value {
        loop {
            match self.read().await {
                WsGot::Json(v) if v["cmd"] == "push" => self.pushes.push(v),
                WsGot::Json(v) if v["seq"] == seq => return v,
                WsGot::Json(v) => panic!("an answer to another request: {v}"),
                WsGot::Closed(c) => panic!("closed while waiting for {seq}: {c:?}"),
            }
        }
    }

    /// Sends a command and waits for its answer.
    pub async fn call(&mut self, cmd: &str, data: Value) -> Value {
        let seq = self.send(cmd, data).await;
        self.answer(&seq).await
    }

    /// The next push's `data` (kept ones first).
    pub async fn push(&mut self) -> Value {
        if !self.pushes.is_empty() {
            return self.pushes.remove(0)["response"]["data"].clone();
        }
        match self.read().await {
            WsGot::Json(v) if v["cmd"] == "push" => v["response"]["data"].clone(),
            other => panic!("expected a push, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            if let WsGot::Closed(c) = self.read().await {
                return c;
            }
        }
    }
}

/// The close code for "message too big".
pub const TOO_BIG: u16 = 1009;
