//! The hot path without `Value` trees: `send_message`'s params read into a struct that
//! borrows from the request's text, and its answer and the message event serialized
//! straight to text. Each gives what the generic path gives (the tests compare them); what
//! falls outside the common shape gets `None`, and the caller takes the generic path.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::params::Params;
use super::params::{Fields, ParamError};
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
    let plain = m.file.is_none()
        && m.transcript.is_empty()
        && render::offer_state(m.offer).is_none()
        && m.recalled_by == 0
        && m.red_packet_id == 0
        && !m.sender_closed;
    plain.then(|| MessageEvent {
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
        m.mentions = vec![0, 9, 10, 1_000_000_007];
        m.kind = 999;
        let event = message_event(&m).map(text);
        assert_eq!(event, Some(text(render::message_push(&m))));
        let others = [
            pb::Message {
                transcript: "t".into(),
                ..m.clone()
            },
            pb::Message {
                recalled_by: 1,
                ..m.clone()
            },
            pb::Message {
                red_packet_id: 1,
                ..m.clone()
            },
            pb::Message {
                sender_closed: true,
                ..m.clone()
            },
            pb::Message {
                offer: pb::FileOfferState::Pending as i32,
                ..m.clone()
            },
            pb::Message {
                file: Some(pb::FileInfo::default()),
                ..m.clone()
            },
        ];
        for o in &others {
            assert!(message_event(o).is_none(), "{o:?}");
        }
    }
}
