//! The hot path without `Value` trees: `send_message`'s params read into a struct that
//! borrows from the request's text, and its answer and the message event serialized
//! straight to text. Each gives what the generic path gives (the tests compare them); what
//! falls outside the common shape gets `None`, and the caller takes the generic path.
//!
//! The answer and the event are also written by hand ([`send_ok_into`], [`message_event_into`]):
//! their keys are constants, and a text with nothing to escape is copied whole, where
//! serde_json looks up every byte of every key and value.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::params::Params;
use super::params::{Fields, ParamError};
use super::peek::PlainMessage;
use super::{render, table};
use crate::pb;

/// `send_message`'s request from the JSON text of its params, by the typed fast path.
/// `None` when the text is not an object of well-typed fields, or the params are refused:
/// the generic path ([`table::send_message_request`]) then says why.
pub fn send_message_typed(data: &str) -> Option<pb::SendMessage> {
    // A struct would also be read from an array; params are an object.
    if !data.trim_start().starts_with('{') {
        return None;
    }
    let params: SendParams<'_> = serde_json::from_str(data).ok()?;
    table::send_message_of(&params).ok()
}

/// `send_message`'s params; a null is an absent field, as `Params` reads it.
#[derive(Deserialize)]
struct SendParams<'a> {
    #[serde(default)]
    to_user: Option<Id>,
    #[serde(default)]
    conversation_id: Option<Id>,
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default)]
    client_msg_id: Option<Id>,
    #[serde(default, borrow)]
    kind: Option<Text<'a>>,
    #[serde(default)]
    mentions: Option<Vec<Id>>,
    #[serde(default)]
    mention_all: Option<bool>,
    #[serde(default)]
    file_id: Option<Id>,
    #[serde(default)]
    offer: Option<bool>,
}

impl Fields for SendParams<'_> {
    fn opt_id(&self, key: &str) -> Result<Option<u64>, ParamError> {
        let id = match key {
            "to_user" => self.to_user,
            "conversation_id" => self.conversation_id,
            "client_msg_id" => self.client_msg_id,
            "file_id" => self.file_id,
            _ => return Err(not_typed(key)),
        };
        Ok(id.map(|Id(id)| id))
    }
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ParamError> {
        let s = match key {
            "text" => &self.text,
            "kind" => &self.kind,
            _ => return Err(not_typed(key)),
        };
        Ok(s.as_ref().map(|Text(s)| s.as_ref()))
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        match key {
            "mention_all" => Ok(self.mention_all),
            "offer" => Ok(self.offer),
            _ => Err(not_typed(key)),
        }
    }
    fn ids(&self, key: &str) -> Result<Vec<u64>, ParamError> {
        match key {
            "mentions" => Ok(self.mentions.iter().flatten().map(|&Id(id)| id).collect()),
            _ => Err(not_typed(key)),
        }
    }
}

/// A field the typed struct lacks: the caller falls back to the generic path.
fn not_typed(key: &str) -> ParamError {
    ParamError::params(format!("\"{key}\" is not read by the typed path"))
}

/// An id: a decimal string or a non-negative integer (as `Params::opt_id` reads it).
#[derive(Clone, Copy)]
struct Id(u64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                u64::try_from(v).map(Id).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                v.parse().map(Id).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A string, borrowed from the text when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An id written as a decimal string (see `render`).
struct IdText(u64);

impl Serialize for IdText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Digits written backwards into a stack buffer: no formatting machinery per id.
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut n = self.0;
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        s.serialize_str(std::str::from_utf8(&buf[at..]).unwrap_or_default())
    }
}

/// Ids written as an array of decimal strings.
struct IdsText<'a>(&'a [u64]);

impl Serialize for IdsText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for &id in self.0 {
            seq.serialize_element(&IdText(id))?;
        }
        seq.end()
    }
}

/// `send_message`'s answer, as [`render::send_ok`] renders it (keys in the same order).
#[derive(Serialize)]
struct SendOk {
    conversation_id: IdText,
    duplicate: bool,
    message_id: IdText,
    sent_at: i64,
    seq: IdText,
}

/// `send_message`'s answer, serialized as [`render::send_ok`]'s value is.
pub fn send_ok(ok: &pb::SendOk) -> impl Serialize {
    SendOk {
        conversation_id: IdText(ok.conversation_id),
        duplicate: ok.duplicate,
        message_id: IdText(ok.message_id),
        sent_at: ok.sent_at_ms,
        seq: IdText(ok.seq),
    }
}

/// A message event, as [`render::message_push`] renders it (keys in the same order).
#[derive(Serialize)]
struct MessageEvent<'a> {
    client_msg_id: IdText,
    conversation_id: IdText,
    from_user: IdText,
    kind: &'static str,
    mention_all: bool,
    mentions: IdsText<'a>,
    message_id: IdText,
    sent_at: i64,
    seq: IdText,
    text: &'a str,
    to_user: IdText,
    #[serde(rename = "type")]
    event: &'static str,
}

/// The event of a message push, serialized as [`render::message_push`]'s value is; `None`
/// for a message with more than the plain fields (a file, a transcript, an offer, a recall,
/// a red packet, a closed sender's), which the generic path renders.
pub fn message_event(m: &pb::Message) -> Option<impl Serialize + '_> {
    plain(m).then(|| MessageEvent {
        client_msg_id: IdText(m.client_msg_id),
        conversation_id: IdText(m.conversation_id),
        from_user: IdText(m.from_user),
        kind: render::kind_name(m.kind),
        mention_all: m.mention_all,
        mentions: IdsText(&m.mentions),
        message_id: IdText(m.message_id),
        sent_at: m.sent_at_ms,
        seq: IdText(m.seq),
        text: &m.text,
        to_user: IdText(m.to_user),
        event: "message",
    })
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub fn write_str(out: &mut BytesMut, s: &str) {
    // No short cut in the scan: the loop is vectorized.
    let escape = s
        .bytes()
        .fold(false, |e, b| e | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if escape {
        // Serializing a string cannot fail.
        let _ = serde_json::to_writer(out.writer(), s);
        return;
    }
    out.reserve(s.len() + 2);
    out.put_u8(b'"');
    out.put_slice(s.as_bytes());
    out.put_u8(b'"');
}

/// Appends the decimal digits of `n`.
fn write_u64(out: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&buf[at..]);
}

/// Appends an id as a decimal string (see `render`).
fn write_id(out: &mut BytesMut, id: u64) {
    out.put_u8(b'"');
    write_u64(out, id);
    out.put_u8(b'"');
}

/// Appends a JSON number.
fn write_i64(out: &mut BytesMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

fn write_bool(out: &mut BytesMut, b: bool) {
    out.put_slice(if b { b"true" } else { b"false" });
}

/// Appends `send_message`'s answer as [`send_ok`] serializes it.
pub fn send_ok_into(ok: &pb::SendOk, out: &mut BytesMut) {
    out.put_slice(br#"{"conversation_id":"#);
    write_id(out, ok.conversation_id);
    out.put_slice(br#","duplicate":"#);
    write_bool(out, ok.duplicate);
    out.put_slice(br#","message_id":"#);
    write_id(out, ok.message_id);
    out.put_slice(br#","sent_at":"#);
    write_i64(out, ok.sent_at_ms);
    out.put_slice(br#","seq":"#);
    write_id(out, ok.seq);
    out.put_u8(b'}');
}

/// Appends the event of a message push as [`message_event`] serializes it; false (nothing
/// written) where that gives `None`.
pub fn message_event_into(m: &pb::Message, out: &mut BytesMut) -> bool {
    if !plain(m) {
        return false;
    }
    let fields = PlainMessage {
        message_id: m.message_id,
        conversation_id: m.conversation_id,
        seq: m.seq,
        from_user: m.from_user,
        client_msg_id: m.client_msg_id,
        kind: m.kind,
        text: &m.text,
        sent_at_ms: m.sent_at_ms,
        to_user: m.to_user,
        mentions: &[],
        mention_all: m.mention_all,
    };
    write_event(&fields, m.mentions.iter().copied(), out);
    true
}

/// [`message_event_into`] for a message read by [`super::peek::peek`]; false (nothing
/// written) if its mentions do not read.
pub fn plain_event_into(m: &PlainMessage<'_>, out: &mut BytesMut) -> bool {
    if m.mention_ids().any(|id| id.is_none()) {
        return false;
    }
    write_event(m, m.mention_ids().flatten(), out);
    true
}

/// Writes the event of `m`, whose mentions are `mentions`.
fn write_event(m: &PlainMessage<'_>, mentions: impl Iterator<Item = u64>, out: &mut BytesMut) {
    out.reserve(256 + m.text.len());
    out.put_slice(br#"{"client_msg_id":"#);
    write_id(out, m.client_msg_id);
    out.put_slice(br#","conversation_id":"#);
    write_id(out, m.conversation_id);
    out.put_slice(br#","from_user":"#);
    write_id(out, m.from_user);
    out.put_slice(br#","kind":"#);
    write_str(out, render::kind_name(m.kind));
    out.put_slice(br#","mention_all":"#);
    write_bool(out, m.mention_all);
    out.put_slice(br#","mentions":["#);
    for (i, id) in mentions.enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        write_id(out, id);
    }
    out.put_slice(br#"],"message_id":"#);
    write_id(out, m.message_id);
    out.put_slice(br#","sent_at":"#);
    write_i64(out, m.sent_at_ms);
    out.put_slice(br#","seq":"#);
    write_id(out, m.seq);
    out.put_slice(br#","text":"#);
    write_str(out, m.text);
    out.put_slice(br#","to_user":"#);
    write_id(out, m.to_user);
    out.put_slice(br#","type":"message"}"#);
}

/// Whether a message has only the plain fields (see [`message_event`]).
fn plain(m: &pb::Message) -> bool {
    m.file.is_none()
        && m.transcript.is_empty()
        && render::offer_state(m.offer).is_none()
        && m.recalled_by == 0
        && m.red_packet_id == 0
        && !m.sender_closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(data: &str) -> Result<pb::SendMessage, ParamError> {
        Params::parse(Some(data)).and_then(|p| table::send_message_request(&p))
    }

    #[test]
    fn the_typed_path_reads_what_the_generic_path_reads() {
        let taken = [
            r#"{"to_user":"42","text":"hi"}"#,
            r#"{"to_user":42,"text":"a \"quoted\"\nline é","client_msg_id":"7"}"#,
            r#"{"conversation_id":"9","text":"x","mentions":["1",2],"mention_all":true,"kind":"text"}"#,
            r#"{"to_user":"3","file_id":"5","offer":true,"kind":"file","text":null,"extra":[1]}"#,
            r#"{"to_user":"3","file_id":"5","kind":"image"}"#,
        ];
        for data in taken {
            let typed = send_message_typed(data);
            assert!(typed.is_some(), "{data} takes the typed path");
            assert_eq!(typed, generic(data).ok(), "{data}");
        }
        let refused = [
            r#"{"text":"no peer"}"#,
            r#"{"to_user":"1","conversation_id":"2","text":"both"}"#,
            r#"{"to_user":"1"}"#,
            r#"{"to_user":"x","text":"bad id"}"#,
            r#"{"to_user":-1,"text":"negative"}"#,
            r#"{"to_user":1.5,"text":"fraction"}"#,
            r#"{"to_user":"1","text":5}"#,
            r#"{"to_user":"1","text":"t","kind":"poem"}"#,
            r#"{"to_user":"1","text":"t","mentions":"1"}"#,
            r#"{"to_user":"1","text":"t","offer":"yes"}"#,
            r#"["1","t"]"#,
            r#"{"to_user":"1","text":"t","to_user":"2"}"#,
        ];
        for data in refused {
            assert_eq!(
                send_message_typed(data),
                None,
                "{data} is left to the generic path"
            );
        }
        // The duplicate key is the one the generic path takes (the last one); others refuse.
        for data in &refused[..refused.len() - 1] {
            assert!(generic(data).is_err(), "{data}");
        }
    }

    fn text(v: impl Serialize) -> String {
        serde_json::to_string(&v).unwrap_or_default()
    }

    fn written(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        f(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// The event written from the message, and from its push frame's bytes (the same).
    fn event_written(m: &pb::Message) -> String {
        let direct = written(|o| assert!(message_event_into(m, o)));
        let frame = crate::Envelope::push(crate::PushKind::Message(m.clone()));
        let bytes = prost::Message::encode_to_vec(&frame);
        let Some(super::super::peek::Peeked::Message(p)) = super::super::peek::peek(&bytes) else {
            panic!("not peeked");
        };
        assert_eq!(written(|o| assert!(plain_event_into(&p, o))), direct);
        direct
    }

    #[test]
    fn the_direct_writers_write_what_the_values_render() {
        let ok = pb::SendOk {
            message_id: u64::MAX,
            conversation_id: 12,
            seq: 3,
            sent_at_ms: 1_700_000_000_123,
            duplicate: true,
        };
        assert_eq!(text(send_ok(&ok)), text(render::send_ok(&ok)));
        assert_eq!(written(|o| send_ok_into(&ok, o)), text(send_ok(&ok)));
        let ok = pb::SendOk {
            sent_at_ms: i64::MIN,
            duplicate: false,
            ..ok
        };
        assert_eq!(written(|o| send_ok_into(&ok, o)), text(send_ok(&ok)));
        let mut m = pb::Message {
            message_id: 1 << 60,
            conversation_id: 77,
            seq: 5,
            from_user: 10,
            client_msg_id: 99,
            kind: pb::MessageKind::Sticker as i32,
            text: "a \"quote\", a \\, a\nnew line, \u{1}\u{1f} and é 😀".into(),
            sent_at_ms: -4,
            to_user: 11,
            mentions: vec![3, u64::MAX],
            mention_all: true,
            ..Default::default()
        };
        let event = message_event(&m).map(text);
        assert_eq!(event, Some(text(render::message_push(&m))));
        assert_eq!(Some(event_written(&m)), event);
        m.mentions = vec![0, 9, 10, 1_000_000_007];
        m.kind = 999;
        let event = message_event(&m).map(text);
        assert_eq!(event, Some(text(render::message_push(&m))));
        assert_eq!(Some(event_written(&m)), event);
        for plain_text in ["", "plain text, é 😀 \u{7f}\u{7f}", "tab\tquote\"", "\\"] {
            let m = pb::Message {
                text: plain_text.into(),
                mentions: vec![],
                mention_all: false,
                kind: pb::MessageKind::Text as i32,
                ..m.clone()
            };
            assert_eq!(Some(event_written(&m)), message_event(&m).map(text));
        }
        let others = crate::json::peek::not_plain(&m);
        for o in &others {
            assert!(message_event(o).is_none(), "{o:?}");
            assert!(!message_event_into(o, &mut BytesMut::new()), "{o:?}");
        }
    }
}
