//! The WebSocket gateway's JSON: a text frame `{"seq","cmd","data"}` becomes a request of the
//! shared method table (`feige_protocol::json`), its answer
//! `{"seq","cmd","response":{"code","codeMsg","data"}}`, a push
//! `{"cmd":"push","response":{"code":200,"codeMsg":"Ok","data":{"type",...}}}`.
//! `login` (by password or token) and `heartbeat` are the gateway's own commands.
//!
//! `send_message`, its answer and the message push take the table's typed fast path
//! (`feige_protocol::json::direct`), without `Value` trees; anything else, and any frame
//! the fast path does not take, goes through the generic path.

use bytes::{BufMut, BytesMut};
use feige_protocol::json::peek::PlainMessage;
use feige_protocol::json::{self as table, direct, render, ParamError, Params, Serve};
use feige_protocol::{pb, ErrorCode, PushKind, RequestKind, ResponseResult};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The device name of a WebSocket login that names none.
pub(crate) const DEFAULT_DEVICE: &str = "web";

/// What a request is waiting for: its `seq` and `cmd`, and how to read its answer.
pub(crate) struct Pending {
    seq: Value,
    cmd: &'static str,
    read: Read,
}

enum Read {
    /// `send_message`, by the fast path.
    Send,
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
            cmd: "",
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

/// A request frame as the fast path reads it.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(default)]
    seq: Value,
    #[serde(borrow)]
    cmd: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The request of a `send_message` frame by the typed fast path; `None` for a frame it does
/// not take (the generic path reads those, and says what is wrong). The frame's `seq` moves
/// into the pending entry when it is taken.
fn send_message(frame: &mut Frame<'_>) -> Option<Inbound> {
    let request = direct::send_message_typed(frame.data.get())?;
    let pending = Pending {
        seq: std::mem::take(&mut frame.seq),
        cmd: "send_message",
        read: Read::Send,
    };
    Some(Inbound::Request(RequestKind::SendMessage(request), pending))
}

/// Reads one text frame. `heartbeat_ms` goes into `login`'s answer.
pub(crate) fn inbound(text: &str, heartbeat_ms: u64) -> Inbound {
    // A well-formed frame is read once: `send_message` by the fast path, anything else (or a
    // `send_message` the fast path does not take) from the same parts.
    if let Ok(mut frame) = serde_json::from_str::<Frame<'_>>(text) {
        if frame.cmd == "send_message" {
            if let Some(fast) = send_message(&mut frame) {
                return fast;
            }
        }
        let params = Params::parse(Some(frame.data.get()));
        return request(&frame.seq, frame.cmd, params, heartbeat_ms);
    }
    // Otherwise as a `Value`, to say what is wrong with it.
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
    let params = Params::from_value(v.get("data").cloned().unwrap_or(Value::Null));
    request(&seq, cmd, params, heartbeat_ms)
}

/// The request of command `cmd` with `params`, or the answer that refuses it.
fn request(
    seq: &Value,
    cmd: &str,
    params: Result<Params, ParamError>,
    heartbeat_ms: u64,
) -> Inbound {
    let params = match params {
        Ok(p) => p,
        Err(e) => {
            return Inbound::Reply(error(seq, cmd, ErrorCode::InvalidArgument, &e.to_string()))
        }
    };
    // `cmd` as the table (or the gateway) names it, which outlives the frame.
    let pending = |cmd, read| Pending {
        seq: seq.clone(),
        cmd,
        read,
    };
    let built = match cmd {
        "login" => login(&params).map(|r| (r, pending("login", Read::Login(heartbeat_ms)))),
        // As `login`'s answer: the session and the heartbeat interval.
        "login_totp" => table::login_totp_request(&params).map(|r| {
            (
                RequestKind::LoginTotp(r),
                pending("login_totp", Read::Login(heartbeat_ms)),
            )
        }),
        "heartbeat" => Ok((
            RequestKind::Ping(pb::Ping { nonce: 0 }),
            pending("heartbeat", Read::Heartbeat),
        )),
        _ => match table::find(cmd).map(|m| (m.name, m.serve)) {
            Some((name, Serve::Request(build))) => build(&params).map(|p| {
                // A code login is answered as `login`, with the heartbeat.
                let read = match cmd {
                    "login_code" => Read::Login(heartbeat_ms),
                    _ => Read::Table(p.answer),
                };
                (p.request, pending(name, read))
            }),
            Some((_, Serve::Local(why))) => {
                let msg = format!("{cmd} is not available over WebSocket: {why}");
                return Inbound::Reply(reply(
                    seq,
                    cmd,
                    501,
                    &code_msg(ErrorCode::UnknownRequest, &msg),
                    json!({}),
                ));
            }
            None => {
                let msg = format!("unknown cmd \"{cmd}\"");
                return Inbound::Reply(error(seq, cmd, ErrorCode::UnknownRequest, &msg));
            }
        },
    };
    match built {
        Ok((request, pending)) => Inbound::Request(request, pending),
        Err(e) => Inbound::Reply(error(seq, cmd, ErrorCode::InvalidArgument, &e.to_string())),
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
#[cfg(test)]
fn answer(pending: Pending, result: Option<ResponseResult>) -> Option<String> {
    let mut out = BytesMut::new();
    answer_into(pending, result, &mut out).then(|| text_of(&out))
}

/// Appends the answer frame of `pending`'s request to `out`; false (nothing written) for the
/// gateway's Hello when it went well.
pub(crate) fn answer_into(
    pending: Pending,
    result: Option<ResponseResult>,
    out: &mut BytesMut,
) -> bool {
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
        reply_into(out, &seq, cmd, status, &code_msg(code, &e.message), data);
        return true;
    }
    let data = match (read, result) {
        (Read::Hello, _) => return false,
        (Read::Send, Some(ResponseResult::Send(ok))) => {
            // As `reply_into` writes `direct::send_ok` (a test compares them).
            out.put_slice(br#"{"cmd":"#);
            direct::write_str(out, cmd);
            out.put_slice(br#","response":{"code":200,"codeMsg":"Ok","data":"#);
            direct::send_ok_into(&ok, out);
            out.put_slice(br#"},"seq":"#);
            write_json(out, &seq);
            out.put_u8(b'}');
            return true;
        }
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
    match data {
        Some(data) => reply_into(out, &seq, cmd, 200, "Ok", data),
        None => {
            let msg = format!("unexpected answer to {cmd}");
            error_into(out, &seq, cmd, ErrorCode::Internal, &msg);
        }
    }
    true
}

/// Appends the push frame of a push to `out`; false (nothing written) for a kind not mapped
/// (as the C SDK).
pub(crate) fn push_into(kind: &PushKind, out: &mut BytesMut) -> bool {
    if let PushKind::Message(m) = kind {
        // As `push_frame_into` writes `direct::message_event` (a test compares them).
        let mark = out.len();
        out.put_slice(PUSH_HEAD);
        if direct::message_event_into(m, out) {
            out.put_slice(b"}}");
            return true;
        }
        out.truncate(mark);
    }
    match table::event(kind) {
        Some(event) => {
            push_frame_into(out, event);
            true
        }
        None => false,
    }
}

/// [`push_into`] for a plain message read from its frame's bytes; false (nothing written)
/// if it does not read.
pub(crate) fn plain_push_into(m: &PlainMessage<'_>, out: &mut BytesMut) -> bool {
    let mark = out.len();
    out.put_slice(PUSH_HEAD);
    if direct::plain_event_into(m, out) {
        out.put_slice(b"}}");
        return true;
    }
    out.truncate(mark);
    false
}

/// What a push frame's JSON begins with, up to its event.
const PUSH_HEAD: &[u8] = br#"{"cmd":"push","response":{"code":200,"codeMsg":"Ok","data":"#;

fn push_frame_into(out: &mut BytesMut, data: impl Serialize) {
    let frame = PushFrame {
        cmd: "push",
        response: Response {
            code: 200,
            code_msg: "Ok",
            data,
        },
    };
    write_json(out, &frame);
}

/// Appends the JSON of `value` to `out`. The gateway's frames are written into one buffer
/// and split off it, so a frame costs no allocation of its own.
fn write_json(out: &mut BytesMut, value: &impl Serialize) {
    // Serializing fails only for a map with keys that are not strings.
    let _ = serde_json::to_writer(out.writer(), value);
}

/// The text of JSON written by [`write_json`].
fn text_of(json: &[u8]) -> String {
    String::from_utf8_lossy(json).into_owned()
}

/// An error answer: the code's HTTP-like status, `codeMsg` "NAME: text".
pub(crate) fn error(seq: &Value, cmd: &str, code: ErrorCode, message: &str) -> String {
    let mut out = BytesMut::new();
    error_into(&mut out, seq, cmd, code, message);
    text_of(&out)
}

/// [`error`], appended to `out`.
pub(crate) fn error_into(
    out: &mut BytesMut,
    seq: &Value,
    cmd: &str,
    code: ErrorCode,
    message: &str,
) {
    let status = render::http_status(code);
    reply_into(out, seq, cmd, status, &code_msg(code, message), json!({}));
}

/// `codeMsg` of an error: `NOT_FRIENDS: you are not friends`.
fn code_msg(code: ErrorCode, message: &str) -> String {
    format!("{}: {message}", render::code_name(code))
}

fn reply(seq: &Value, cmd: &str, code: u16, code_msg: &str, data: impl Serialize) -> String {
    let mut out = BytesMut::new();
    reply_into(&mut out, seq, cmd, code, code_msg, data);
    text_of(&out)
}

fn reply_into(
    out: &mut BytesMut,
    seq: &Value,
    cmd: &str,
    code: u16,
    code_msg: &str,
    data: impl Serialize,
) {
    let frame = Answer {
        cmd,
        response: Response {
            code,
            code_msg,
            data,
        },
        seq,
    };
    write_json(out, &frame);
}

/// An answer frame; its keys in sorted order, as a `Value` tree writes them.
#[derive(Serialize)]
struct Answer<'a, D> {
    cmd: &'a str,
    response: Response<'a, D>,
    seq: &'a Value,
}

/// A push frame.
#[derive(Serialize)]
struct PushFrame<'a, D> {
    cmd: &'static str,
    response: Response<'a, D>,
}

/// An answer's or a push's `response`.
#[derive(Serialize)]
struct Response<'a, D> {
    code: u16,
    #[serde(rename = "codeMsg")]
    code_msg: &'a str,
    data: D,
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
            cmd: "send_message",
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

    #[test]
    fn frames_are_the_value_trees_text() {
        let data = json!({ "b": [1, "2"], "a": { "z": null, "y": "\"" } });
        for seq in [json!("1565336219141-266129"), json!(7), Value::Null] {
            let tree = json!({
                "seq": seq,
                "cmd": "whoami",
                "response": { "code": 200, "codeMsg": "Ok", "data": data },
            });
            assert_eq!(reply(&seq, "whoami", 200, "Ok", &data), tree.to_string());
        }
        let tree =
            json!({ "cmd": "push", "response": { "code": 200, "codeMsg": "Ok", "data": data } });
        let mut out = BytesMut::new();
        push_frame_into(&mut out, &data);
        assert_eq!(text_of(&out), tree.to_string());
    }

    #[test]
    fn send_message_takes_the_fast_path_and_answers_as_the_table_does() {
        let text = r#"{"seq":"1-1","cmd":"send_message","data":{"to_user":"5","text":"hi"}}"#;
        let Inbound::Request(RequestKind::SendMessage(req), pending) = inbound(text, 1) else {
            panic!("not a request");
        };
        assert!(matches!(pending.read, Read::Send));
        assert_eq!((req.to_user, req.text.as_str()), (5, "hi"));
        let ok = pb::SendOk {
            message_id: 9,
            conversation_id: 8,
            seq: 7,
            sent_at_ms: 6,
            duplicate: false,
        };
        let fast = answer(pending, Some(ResponseResult::Send(ok)));
        let Some(Serve::Request(build)) = table::find("send_message").map(|m| m.serve) else {
            panic!("no send_message row");
        };
        let params = Params::parse(Some(r#"{"to_user":"5","text":"hi"}"#)).unwrap_or_default();
        let generic = build(&params).map(|p| Pending {
            seq: json!("1-1"),
            cmd: "send_message",
            read: Read::Table(p.answer),
        });
        let generic = generic
            .ok()
            .and_then(|p| answer(p, Some(ResponseResult::Send(ok))));
        assert!(fast.is_some());
        assert_eq!(fast, generic);
    }

    #[test]
    fn the_message_push_is_written_as_the_table_renders_it() {
        let m = pb::Message {
            message_id: 1 << 60,
            conversation_id: 77,
            seq: 5,
            from_user: 10,
            client_msg_id: 99,
            text: "hi \"there\"\n é".into(),
            sent_at_ms: 1_700_000_000_123,
            to_user: 11,
            mentions: vec![3],
            ..Default::default()
        };
        for m in [
            m.clone(),
            pb::Message {
                recalled_by: 10,
                ..m
            },
        ] {
            let kind = PushKind::Message(m);
            let mut fast = BytesMut::new();
            assert!(push_into(&kind, &mut fast));
            let mut generic = BytesMut::new();
            let event = table::event(&kind).unwrap_or_default();
            push_frame_into(&mut generic, event);
            assert_eq!(text_of(&fast), text_of(&generic));
        }
    }
}
