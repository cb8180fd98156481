//! The WebSocket gateway's JSON: a text frame `{"seq","cmd","data"}` becomes a request of the
//! shared method table (`feige_protocol::json`), its answer
//! `{"seq","cmd","response":{"code","codeMsg","data"}}`, a push
//! `{"cmd":"push","response":{"code":200,"codeMsg":"Ok","data":{"type",...}}}`.
//! `login` (by password or token) and `heartbeat` are the gateway's own commands.

use feige_protocol::json::{self as table, render, ParamError, Params, Serve};
use feige_protocol::{pb, ErrorCode, PushKind, RequestKind, ResponseResult};
use serde_json::{json, Value};

/// The device name of a WebSocket login that names none.
pub(crate) const DEFAULT_DEVICE: &str = "web";

/// What a request is waiting for: its `seq` and `cmd`, and how to read its answer.
pub(crate) struct Pending {
    seq: Value,
    cmd: String,
    read: Read,
}

enum Read {
    /// A row of the method table.
    Table(table::method::Answer),
    /// The gateway's `login`: the session, and the heartbeat interval to keep.
    Login(u64),
    /// The gateway's `heartbeat`.
    Heartbeat,
    /// The gateway's own Hello, sent at connect: nothing to answer.
    Hello,
}

impl Pending {
    /// The Hello the gateway sends at connect.
    pub(crate) fn hello() -> (RequestKind, Pending) {
        let hello = pb::Hello {
            major: feige_protocol::PROTOCOL_MAJOR,
            minor: feige_protocol::PROTOCOL_MINOR,
            client: "websocket".into(),
            auth: None,
        };
        let pending = Pending {
            seq: Value::Null,
            cmd: String::new(),
            read: Read::Hello,
        };
        (RequestKind::Hello(hello), pending)
    }
}

/// What to do with a text frame.
pub(crate) enum Inbound {
    /// Send this request; its answer is read by the pending entry.
    Request(RequestKind, Pending),
    /// Answer at once (the frame was refused).
    Reply(String),
}

/// Reads one text frame. `heartbeat_ms` goes into `login`'s answer.
pub(crate) fn inbound(text: &str, heartbeat_ms: u64) -> Inbound {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("not JSON: {e}");
            return Inbound::Reply(error(&Value::Null, "", ErrorCode::Malformed, &msg));
        }
    };
    let seq = v.get("seq").cloned().unwrap_or(Value::Null);
    let Some(cmd) = v.get("cmd").and_then(Value::as_str) else {
        let msg = "a request is {\"seq\",\"cmd\",\"data\"} with a string \"cmd\"";
        return Inbound::Reply(error(&seq, "", ErrorCode::Malformed, msg));
    };
    let params = match Params::from_value(v.get("data").cloned().unwrap_or(Value::Null)) {
        Ok(p) => p,
        Err(e) => {
            return Inbound::Reply(error(&seq, cmd, ErrorCode::InvalidArgument, &e.to_string()))
        }
    };
    let pending = |read| Pending {
        seq: seq.clone(),
        cmd: cmd.to_owned(),
        read,
    };
    let built = match cmd {
        "login" => login(&params).map(|r| (r, pending(Read::Login(heartbeat_ms)))),
        // As `login`'s answer: the session and the heartbeat interval.
        "login_totp" => table::login_totp_request(&params).map(|r| {
            (
                RequestKind::LoginTotp(r),
                pending(Read::Login(heartbeat_ms)),
            )
        }),
        "heartbeat" => Ok((
            RequestKind::Ping(pb::Ping { nonce: 0 }),
            pending(Read::Heartbeat),
        )),
        _ => match table::find(cmd).map(|m| m.serve) {
            Some(Serve::Request(build)) => build(&params).map(|p| {
                // A code login is answered as `login`, with the heartbeat.
                let read = match cmd {
                    "login_code" => Read::Login(heartbeat_ms),
                    _ => Read::Table(p.answer),
                };
                (p.request, pending(read))
            }),
            Some(Serve::Local(why)) => {
                let msg = format!("{cmd} is not available over WebSocket: {why}");
                return Inbound::Reply(reply(
                    &seq,
                    cmd,
                    501,
                    &code_msg(ErrorCode::UnknownRequest, &msg),
                    json!({}),
                ));
            }
            None => {
                let msg = format!("unknown cmd \"{cmd}\"");
                return Inbound::Reply(error(&seq, cmd, ErrorCode::UnknownRequest, &msg));
            }
        },
    };
    match built {
        Ok((request, pending)) => Inbound::Request(request, pending),
        Err(e) => Inbound::Reply(error(&seq, cmd, ErrorCode::InvalidArgument, &e.to_string())),
    }
}

/// `login`: `{"username","password","device"?}` or `{"token","device"?}`.
fn login(p: &Params) -> Result<RequestKind, ParamError> {
    let device = p
        .opt_string("device")?
        .unwrap_or_else(|| DEFAULT_DEVICE.to_owned());
    match p.opt_string("token")? {
        Some(token) => {
            let token = table::params::unhex(&token).ok_or_else(|| {
                ParamError::params("\"token\" must be the hex string that login returned")
            })?;
            Ok(RequestKind::Resume(pb::Resume {
                token: token.into(),
                device,
            }))
        }
        None => Ok(RequestKind::Login(pb::Login {
            username: p.string("username")?,
            password: p.string("password")?,
            device,
        })),
    }
}

/// The answer frame of `pending`'s request; `None` for the gateway's Hello when it went well.
pub(crate) fn answer(pending: Pending, result: Option<ResponseResult>) -> Option<String> {
    let Pending { seq, cmd, read } = pending;
    if let Some(ResponseResult::Error(e)) = &result {
        let code = ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Internal);
        let mut data = json!({});
        if e.retry_after_ms > 0 {
            data["retry_after_ms"] = e.retry_after_ms.into();
        }
        // SECOND_FACTOR_REQUIRED: what `login_totp` answers.
        if !e.challenge.is_empty() {
            data["challenge"] = e.challenge.clone().into();
        }
        let status = render::http_status(code);
        return Some(reply(&seq, &cmd, status, &code_msg(code, &e.message), data));
    }
    let data = match (read, result) {
        (Read::Hello, _) => return None,
        (Read::Table(read), Some(r)) => read(r),
        (
            Read::Login(heartbeat_ms),
            Some(
                ResponseResult::Session(s)
                | ResponseResult::LoginCode(s)
                | ResponseResult::LoginTotp(s),
            ),
        ) => {
            let mut v = render::session(&s);
            v["heartbeat_ms"] = heartbeat_ms.into();
            Some(v)
        }
        (Read::Heartbeat, Some(ResponseResult::Pong(_))) => Some(json!({})),
        _ => None,
    };
    Some(match data {
        Some(data) => reply(&seq, &cmd, 200, "Ok", data),
        None => {
            let msg = format!("unexpected answer to {cmd}");
            error(&seq, &cmd, ErrorCode::Internal, &msg)
        }
    })
}

/// The push frame of a push, or `None` for a kind not mapped (as the C SDK).
pub(crate) fn push(kind: &PushKind) -> Option<String> {
    let data = table::event(kind)?;
    Some(
        json!({ "cmd": "push", "response": { "code": 200, "codeMsg": "Ok", "data": data } })
            .to_string(),
    )
}

/// An error answer: the code's HTTP-like status, `codeMsg` "NAME: text".
pub(crate) fn error(seq: &Value, cmd: &str, code: ErrorCode, message: &str) -> String {
    reply(
        seq,
        cmd,
        render::http_status(code),
        &code_msg(code, message),
        json!({}),
    )
}

/// `codeMsg` of an error: `NOT_FRIENDS: you are not friends`.
fn code_msg(code: ErrorCode, message: &str) -> String {
    format!("{}: {message}", render::code_name(code))
}

fn reply(seq: &Value, cmd: &str, code: u16, code_msg: &str, data: Value) -> String {
    json!({
        "seq": seq,
        "cmd": cmd,
        "response": { "code": code, "codeMsg": code_msg, "data": data },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(text: &str) -> Value {
        match inbound(text, 30_000) {
            Inbound::Reply(r) => serde_json::from_str(&r).unwrap_or_default(),
            Inbound::Request(..) => Value::Null,
        }
    }

    #[test]
    fn refusals_are_answers() {
        let v = reply_of("{not json");
        assert_eq!(v["response"]["code"], 400);
        assert!(v["response"]["codeMsg"]
            .as_str()
            .unwrap_or_default()
            .starts_with("MALFORMED: "));
        let v = reply_of(r#"{"seq":"7","cmd":"no_such","data":{}}"#);
        assert_eq!(v["seq"], "7");
        assert_eq!(v["cmd"], "no_such");
        assert!(v["response"]["codeMsg"]
            .as_str()
            .unwrap_or_default()
            .starts_with("UNKNOWN_REQUEST: "));
        let v = reply_of(r#"{"seq":"8","cmd":"send_message","data":{"text":"x"}}"#);
        assert_eq!(v["response"]["code"], 400);
        assert!(v["response"]["codeMsg"]
            .as_str()
            .unwrap_or_default()
            .starts_with("INVALID_ARGUMENT: "));
        assert!(matches!(
            inbound(r#"{"seq":"9","cmd":"login","data":{"token":"00ff"}}"#, 1),
            Inbound::Request(RequestKind::Resume(_), _)
        ));
    }

    #[test]
    fn errors_carry_the_code_name_and_an_http_status() {
        let p = Pending {
            seq: json!("1-2"),
            cmd: "send_message".into(),
            read: Read::Heartbeat,
        };
        let e = pb::Error {
            code: ErrorCode::NotFriends as i32,
            message: "you are not friends".into(),
            retry_after_ms: 0,
            challenge: String::new(),
        };
        let v: Value =
            serde_json::from_str(&answer(p, Some(ResponseResult::Error(e))).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(v["seq"], "1-2");
        assert_eq!(v["response"]["code"], 403);
        assert_eq!(v["response"]["codeMsg"], "NOT_FRIENDS: you are not friends");
    }
}
