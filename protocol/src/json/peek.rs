//! The two frames a JSON gateway relays most, read straight from their protobuf bytes:
//! `send_message`'s answer and the push of a plain message, without decoding an `Envelope`
//! (whose message text would be copied into a `String` of its own). Anything else, and any
//! field these shapes do not have, gives `None`: the caller decodes the frame as usual.

use crate::pb;

/// A frame [`peek`] read.
#[derive(Debug, PartialEq)]
pub enum Peeked<'a> {
    /// The `SendOk` answer to request `.0`.
    SendOk(u64, pb::SendOk),
    /// The push of a plain message (see [`super::direct::message_event`]).
    Message(PlainMessage<'a>),
}

/// The fields of a plain message, its text borrowed from the frame.
#[derive(Debug, Default, PartialEq)]
pub struct PlainMessage<'a> {
    /// `Message.message_id`.
    pub message_id: u64,
    /// `Message.conversation_id`.
    pub conversation_id: u64,
    /// `Message.seq`.
    pub seq: u64,
    /// `Message.from_user`.
    pub from_user: u64,
    /// `Message.client_msg_id`.
    pub client_msg_id: u64,
    /// `Message.kind`.
    pub kind: i32,
    /// `Message.text`.
    pub text: &'a str,
    /// `Message.sent_at_ms`.
    pub sent_at_ms: i64,
    /// `Message.to_user`.
    pub to_user: u64,
    /// `Message.mentions`, as packed varints (see [`PlainMessage::mention_ids`]).
    pub mentions: &'a [u8],
    /// `Message.mention_all`.
    pub mention_all: bool,
}

impl PlainMessage<'_> {
    /// The mentioned users' ids; `None` if the packed varints are cut short.
    pub fn mention_ids(&self) -> impl Iterator<Item = Option<u64>> + '_ {
        let mut rest = self.mentions;
        std::iter::from_fn(move || (!rest.is_empty()).then(|| varint(&mut rest)))
    }
}

/// Reads the payload of a frame (the `Envelope`, after the length header) if it is one of
/// the two shapes; `None` otherwise.
pub fn peek(payload: &[u8]) -> Option<Peeked<'_>> {
    let mut buf = payload;
    let mut request_id = 0;
    let mut body = None;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, WIRE_VARINT) => request_id = varint(&mut buf)?,
            (field @ (3 | 4), WIRE_LEN) if body.is_none() => body = Some((field, bytes(&mut buf)?)),
            _ => return None,
        }
    }
    let (field, mut inner) = body?;
    // Envelope.response (3) holding Response.send (10), or Envelope.push (4) holding
    // Push.message (1): exactly one field.
    let (want, bytes_of) = if field == 3 { (10, 0) } else { (1, 1) };
    let (f, wire) = key(&mut inner)?;
    if (f, wire) != (want, WIRE_LEN) {
        return None;
    }
    let message = bytes(&mut inner)?;
    if !inner.is_empty() {
        return None;
    }
    if bytes_of == 0 {
        Some(Peeked::SendOk(request_id, send_ok(message)?))
    } else {
        Some(Peeked::Message(plain_message(message)?))
    }
}

const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;

fn send_ok(mut buf: &[u8]) -> Option<pb::SendOk> {
    let mut ok = pb::SendOk::default();
    while !buf.is_empty() {
        let (field, wire) = key(&mut buf)?;
        if wire != WIRE_VARINT {
            return None;
        }
        let v = varint(&mut buf)?;
        match field {
            1 => ok.message_id = v,
            2 => ok.conversation_id = v,
            3 => ok.seq = v,
            // As prost reads an int64 and a bool.
            4 => ok.sent_at_ms = v as i64,
            5 => ok.duplicate = v != 0,
            _ => return None,
        }
    }
    Some(ok)
}

fn plain_message(mut buf: &[u8]) -> Option<PlainMessage<'_>> {
    let mut m = PlainMessage::default();
    let mut mentions = false;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (7, WIRE_LEN) => m.text = std::str::from_utf8(bytes(&mut buf)?).ok()?,
            (10, WIRE_LEN) if !mentions => {
                m.mentions = bytes(&mut buf)?;
                mentions = true;
            }
            (field, WIRE_VARINT) => {
                let v = varint(&mut buf)?;
                match field {
                    1 => m.message_id = v,
                    2 => m.conversation_id = v,
                    3 => m.seq = v,
                    4 => m.from_user = v,
                    5 => m.client_msg_id = v,
                    // As prost reads an enum, an int64 and a bool.
                    6 => m.kind = v as i32,
                    8 => m.sent_at_ms = v as i64,
                    9 => m.to_user = v,
                    11 => m.mention_all = v != 0,
                    // Recalls, red packets, offers, closed senders: not plain.
                    _ => return None,
                }
            }
            // Files, transcripts, mentions sent unpacked or twice.
            _ => return None,
        }
    }
    Some(m)
}

/// A field's number and wire type.
fn key(buf: &mut &[u8]) -> Option<(u64, u64)> {
    let k = varint(buf)?;
    Some((k >> 3, k & 7))
}

/// A length-delimited field's bytes.
fn bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(buf)?).ok()?;
    if buf.len() < len {
        return None;
    }
    let (field, rest) = buf.split_at(len);
    *buf = rest;
    Some(field)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// One message per field that makes `m` not plain (each left to the generic path): the
/// samples both fast paths' tests check they refuse.
#[cfg(test)]
pub(crate) fn not_plain(m: &pb::Message) -> [pb::Message; 6] {
    [
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
    ]
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::{Body, Envelope, PushKind, ResponseResult};

    fn payload(env: &Envelope) -> Vec<u8> {
        env.encode_to_vec()
    }

    #[test]
    fn the_answer_and_the_push_are_read_as_prost_reads_them() {
        let ok = pb::SendOk {
            message_id: u64::MAX,
            conversation_id: 12,
            seq: 3,
            sent_at_ms: -5,
            duplicate: true,
        };
        let env = Envelope {
            request_id: 1 << 40,
            body: Some(Body::Response(pb::Response {
                result: Some(ResponseResult::Send(ok)),
            })),
        };
        assert_eq!(peek(&payload(&env)), Some(Peeked::SendOk(1 << 40, ok)));
        let zero = Envelope {
            request_id: 0,
            body: Some(Body::Response(pb::Response {
                result: Some(ResponseResult::Send(pb::SendOk::default())),
            })),
        };
        let zero_ok = pb::SendOk::default();
        assert_eq!(peek(&payload(&zero)), Some(Peeked::SendOk(0, zero_ok)));
        let m = pb::Message {
            message_id: 1 << 60,
            conversation_id: 77,
            seq: 5,
            from_user: 10,
            client_msg_id: 99,
            kind: -3,
            text: "hé 😀".into(),
            sent_at_ms: i64::MIN,
            to_user: 11,
            mentions: vec![0, 3, u64::MAX],
            mention_all: true,
            ..Default::default()
        };
        let bytes = payload(&Envelope::push(PushKind::Message(m.clone())));
        let Some(Peeked::Message(p)) = peek(&bytes) else {
            panic!("not read");
        };
        let ids: Option<Vec<u64>> = p.mention_ids().collect();
        assert_eq!(ids, Some(m.mentions.clone()));
        let read = (
            p.message_id,
            p.conversation_id,
            p.seq,
            p.from_user,
            p.client_msg_id,
        );
        assert_eq!(read, (1 << 60, 77, 5, 10, 99));
        assert_eq!((p.kind, p.text, p.sent_at_ms), (-3, "hé 😀", i64::MIN));
        assert_eq!((p.to_user, p.mention_all), (11, true));
        let empty = payload(&Envelope::push(PushKind::Message(pb::Message::default())));
        let Some(Peeked::Message(p)) = peek(&empty) else {
            panic!("not read");
        };
        assert_eq!(p, PlainMessage::default());
    }

    #[test]
    fn other_frames_are_left_to_prost() {
        let m = pb::Message {
            text: "x".into(),
            ..Default::default()
        };
        let others = not_plain(&m);
        for o in others {
            let bytes = payload(&Envelope::push(PushKind::Message(o.clone())));
            assert_eq!(peek(&bytes), None, "{o:?}");
        }
        let kicked = Envelope::push(PushKind::Kicked(pb::Kicked {
            code: 1,
            reason: "r".into(),
        }));
        assert_eq!(peek(&payload(&kicked)), None);
        let pong = Envelope {
            request_id: 3,
            body: Some(Body::Response(pb::Response {
                result: Some(ResponseResult::Pong(pb::Pong::default())),
            })),
        };
        assert_eq!(peek(&payload(&pong)), None);
        // Cut short anywhere: never read.
        let full = payload(&Envelope::push(PushKind::Message(m)));
        for end in 0..full.len() {
            assert!(!matches!(peek(&full[..end]), Some(Peeked::Message(p)) if p.text == "x"));
        }
        assert_eq!(peek(&[0xff; 11]), None);
    }
}
