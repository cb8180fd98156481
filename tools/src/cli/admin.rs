//! `feige admin ...`: the admin API over HTTP (docs/http-api.md) with the admin token.

use anyhow::Context;
use feige_tools::Failure;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::args::AdminCmd;
use super::Ctx;

/// The HTTP listener's default port.
const HTTP_PORT: u16 = 7901;
/// Most bytes of an answer read.
const MAX_ANSWER: u64 = 16 << 20;

/// Runs one admin command against `http` (default: the server's host, port 7901).
pub(crate) async fn admin(
    ctx: &Ctx,
    http: Option<&str>,
    token: Option<&str>,
    cmd: &AdminCmd,
) -> anyhow::Result<()> {
    let token = token
        .map(str::to_owned)
        .or_else(|| std::env::var("FEIGE_ADMIN_TOKEN").ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Failure::new(
                "INVALID_ARGUMENT",
                "admin needs --token or FEIGE_ADMIN_TOKEN",
            )
        })?;
    let http = match http {
        Some(h) => h.to_owned(),
        None => {
            let server = ctx.server(None);
            let host = server.rsplit_once(':').map_or(server.as_str(), |(h, _)| h);
            format!("{host}:{HTTP_PORT}")
        }
    };
    let (method, path, body) = route(cmd);
    let data = call(&http, &token, method, &path, &body).await?;
    ctx.print(&data, || {
        serde_json::to_string_pretty(&data).unwrap_or_default()
    });
    Ok(())
}

/// The method, path and JSON body of `cmd` (the admin API reads a GET's body too).
fn route(cmd: &AdminCmd) -> (&'static str, String, Value) {
    match cmd {
        AdminCmd::Connections { offset, limit } => (
            "GET",
            "/admin/api/connections".into(),
            json!({ "offset": offset, "limit": limit }),
        ),
        AdminCmd::Kick {
            user_id: user,
            conn_id: conn,
            reason,
        } => {
            let mut body = json!({ "reason": reason.clone().unwrap_or_default() });
            if let Some(u) = user {
                body["user_id"] = json!(u);
            }
            if let Some(c) = conn {
                body["conn_id"] = json!(c);
            }
            ("POST", "/admin/api/kick".into(), body)
        }
        AdminCmd::Users {
            query,
            offset,
            limit,
        } => (
            "GET",
            "/admin/api/users".into(),
            json!({ "query": query.clone().unwrap_or_default(), "offset": offset, "limit": limit }),
        ),
        AdminCmd::Disable { user_id } => user_action("disable", *user_id),
        AdminCmd::Enable { user_id } => user_action("enable", *user_id),
        AdminCmd::Approve { user_id } => user_action("approve", *user_id),
        AdminCmd::Notice {
            to,
            id,
            title,
            body,
        } => {
            let mut notice = json!({
                "to": to,
                "title": title.clone().unwrap_or_default(),
                "body": body.join(" "),
            });
            if let Some(id) = id {
                notice["id"] = json!(id);
            }
            ("POST", "/admin/api/notices".into(), notice)
        }
        AdminCmd::Bans => ("GET", "/admin/api/bans".into(), json!({})),
        AdminCmd::Ban { cidr, reason } => {
            let body = json!({ "cidr": cidr, "reason": reason.clone().unwrap_or_default() });
            ("POST", "/admin/api/bans".into(), body)
        }
        AdminCmd::Unban { cidr } => ("DELETE", "/admin/api/bans".into(), json!({ "cidr": cidr })),
    }
}

fn user_action(what: &str, user: u64) -> (&'static str, String, Value) {
    (
        "POST",
        format!("/admin/api/users/{what}"),
        json!({ "user_id": user }),
    )
}

/// One HTTP/1.1 request (`Connection: close`); the answer's `data`, or a failure named
/// `HTTP_<status>` with the server's `msg`.
async fn call(
    http: &str,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(body)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(http)
        .await
        .with_context(|| format!("cannot reach the HTTP listener at {http}"))?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut raw = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Failure::new("PROTOCOL", "not an HTTP answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::new("PROTOCOL", "an HTTP answer without a status"))?;
    let answer: Value = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    if status != 200 {
        let msg = answer["msg"].as_str().map_or_else(
            || String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
            str::to_owned,
        );
        return Err(Failure::new(&format!("HTTP_{status}"), msg).into());
    }
    Ok(answer["data"].clone())
}
