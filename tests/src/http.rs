//! A tiny HTTP/1.1 client for the HTTP API and admin tests: one request per connection
//! (`Connection: close`), the answer read to the end; JSON bodies in and out.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP answer: status, and the body (as JSON when it parses, else a JSON string).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The `data` of a `{"code":200,"msg":"Success","data":{...}}` answer; panics on anything
    /// else.
    pub fn data(&self) -> &Value {
        assert_eq!(self.status, 200, "answer: {:?}", self.body);
        assert_eq!(self.body["code"], 200, "answer: {:?}", self.body);
        assert_eq!(self.body["msg"], "Success");
        &self.body["data"]
    }
}

/// A request's body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// None.
    Empty,
    /// `application/json`.
    Json(&'a Value),
    /// `application/x-www-form-urlencoded`, already encoded.
    Form(&'a str),
}

/// Sends `method path` to `addr` ("host:port") with `Authorization: Bearer token` when given.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Body<'_>,
) -> Answer {
    let (kind, bytes) = match body {
        Body::Empty => (None, Vec::new()),
        Body::Json(v) => (Some("application/json"), serde_json::to_vec(v).unwrap()),
        Body::Form(f) => (
            Some("application/x-www-form-urlencoded"),
            f.as_bytes().to_vec(),
        ),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(k) = kind {
        head.push_str(&format!("Content-Type: {k}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut raw),
    )
    .await
    .expect("HTTP answer within 10 s")
    .unwrap();
    parse(&raw)
}

/// GET with a token.
pub async fn get(addr: &str, path: &str, token: Option<&str>) -> Answer {
    request(addr, "GET", path, token, Body::Empty).await
}

/// POST of a JSON body with a token.
pub async fn post(addr: &str, path: &str, token: Option<&str>, body: &Value) -> Answer {
    request(addr, "POST", path, token, Body::Json(body)).await
}

fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Answer { status, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&rest[..eol]).unwrap().trim();
        let size = usize::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}
