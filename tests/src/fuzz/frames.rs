//! The frame target: the codec over arbitrary byte streams, and its seeds.

use super::inputs::default_kinds;
use bytes::{BufMut, BytesMut};
use feige_protocol::{frame, pb, Envelope, PushKind, RequestKind, ResponseResult};
use prost::Message;

/// What decoding a stream produced, frame by frame.
#[derive(Debug, PartialEq)]
enum Outcome {
    Frame(Box<Envelope>),
    Malformed(usize),
    TooLarge(usize),
}

/// Decodes everything `check` says is complete, asserting that `check` and `decode` agree.
/// Returns true when the stream hit an oversized header (it cannot be trusted further).
fn drain(buf: &mut BytesMut, max: usize, out: &mut Vec<Outcome>) -> bool {
    loop {
        let before = buf.len();
        let checked = frame::check(buf, max);
        let payload = match checked {
            Ok(Some(total)) if total <= before => Some(buf[frame::HEADER_LEN..total].to_vec()),
            _ => None,
        };
        let decoded = frame::decode(buf, max);
        match checked {
            Err(frame::FrameError::TooLarge { len, max: m }) => {
                assert!(len > max && m == max, "TooLarge {len} with max {max}");
                assert!(buf.len() >= frame::HEADER_LEN);
                assert_eq!(
                    len,
                    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
                );
                assert!(
                    matches!(decoded, Err(frame::FrameError::TooLarge { len: l, .. }) if l == len),
                    "check said TooLarge, decode said {decoded:?}"
                );
                assert_eq!(buf.len(), before, "TooLarge must consume nothing");
                out.push(Outcome::TooLarge(len));
                return true;
            }
            Err(e) => panic!("check returned {e:?}"),
            Ok(None) => {
                assert!(
                    matches!(decoded, Ok(None)),
                    "check: partial; decode: {decoded:?}"
                );
                assert_eq!(buf.len(), before, "a partial frame must consume nothing");
                if buf.len() >= frame::HEADER_LEN {
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    assert!(len <= max && buf.len() < frame::HEADER_LEN + len);
                }
                return false;
            }
            Ok(Some(total)) => {
                let payload = payload.expect("check's length is within the buffer");
                assert_eq!(total, frame::HEADER_LEN + payload.len());
                assert!(payload.len() <= max);
                assert_eq!(
                    buf.len(),
                    before - total,
                    "decode must consume the whole frame"
                );
                match decoded {
                    Ok(Some(env)) => {
                        check_round_trip(&env, &payload);
                        out.push(Outcome::Frame(Box::new(env)));
                    }
                    Err(frame::FrameError::Malformed(_)) => {
                        assert!(Envelope::decode(&payload[..]).is_err());
                        out.push(Outcome::Malformed(total));
                    }
                    other => panic!("check said complete, decode said {other:?}"),
                }
            }
        }
    }
}

/// A decoded envelope re-encodes to a canonical frame that decodes to the same envelope and
/// re-encodes to the same bytes; a payload that was canonical comes back byte for byte.
fn check_round_trip(env: &Envelope, payload: &[u8]) {
    let once = frame::encode_to_bytes(env);
    let len = u32::from_be_bytes([once[0], once[1], once[2], once[3]]) as usize;
    assert_eq!(
        len,
        once.len() - frame::HEADER_LEN,
        "header length of a re-encoded frame"
    );
    let mut buf = BytesMut::from(&once[..]);
    let back = frame::decode(&mut buf, usize::MAX)
        .expect("re-encoded frame decodes")
        .expect("re-encoded frame is whole");
    assert!(buf.is_empty());
    assert_eq!(&back, env, "decode(encode(env)) != env");
    assert_eq!(
        frame::encode_to_bytes(&back),
        once,
        "encoding is not a fixed point"
    );
    // Protobuf allows several encodings of one value (field order, non-minimal varints,
    // unknown fields, explicit defaults); a payload in prost's own encoding comes back as is.
    if Envelope::decode(payload).is_ok_and(|e| e.encode_to_vec() == payload) {
        assert_eq!(&once[frame::HEADER_LEN..], payload);
    }
}

/// Splits `stream` into chunks whose sizes come from `sizes` (cycled, 1..=64 bytes each).
fn feed(stream: &[u8], max: usize, sizes: &[u8]) -> (Vec<Outcome>, usize) {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let n = match sizes.get(i % sizes.len().max(1)) {
            Some(&s) => (s as usize % 64) + 1,
            None => stream.len(),
        };
        i += 1;
        let end = (at + n).min(stream.len());
        buf.put_slice(&stream[at..end]);
        at = end;
        if drain(&mut buf, max, &mut out) {
            // Refused: what was buffered behind the header depends on the chunking.
            return (out, 0);
        }
    }
    (out, buf.len())
}

/// Fuzz target: the frame codec. The first two bytes pick the maximum frame length (so the
/// oversized path is reachable), the rest is a stream of frames. Fed whole, one byte at a time
/// and in input-chosen chunks, the stream must decode to the same frames, malformed frames and
/// refusals, `check` and `decode` must agree at every step, and each decoded envelope must
/// survive a re-encode. Panics on a violation.
pub fn frame(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let max = u16::from_be_bytes([data[0], data[1]]) as usize;
    let stream = &data[2..];
    let whole = feed(stream, max, &[]);
    let bytewise = feed(stream, max, &[0]);
    assert_eq!(whole, bytewise, "whole vs byte-at-a-time");
    let chunked = feed(stream, max, stream);
    assert_eq!(whole, chunked, "whole vs chunked");
}

/// Seeds for the frame target: the first two bytes are the maximum frame length.
pub fn frame_seeds() -> Vec<(String, Vec<u8>)> {
    let with_max = |max: u16, stream: &[u8]| {
        let mut v = max.to_be_bytes().to_vec();
        v.extend_from_slice(stream);
        v
    };
    let mut all = BytesMut::new();
    for (i, kind) in default_kinds().into_iter().enumerate() {
        frame::encode(&Envelope::request(i as u64 + 1, kind), &mut all);
    }
    let mut out = vec![
        ("every-request-kind".into(), with_max(4096, &all)),
        (
            "oversized-header".into(),
            with_max(16, &[0, 0, 0, 17, 1, 2]),
        ),
        (
            "partial-frame".into(),
            with_max(4096, &all[..all.len() - 1]),
        ),
        ("malformed-then-ping".into(), {
            let mut b = BytesMut::from(&[0u8, 0, 0, 3, 0xff, 0xff, 0xff][..]);
            frame::encode(
                &Envelope::request(9, RequestKind::Ping(pb::Ping { nonce: 9 })),
                &mut b,
            );
            with_max(4096, &b)
        }),
        (
            "empty-frames".into(),
            with_max(0, &[0, 0, 0, 0, 0, 0, 0, 0]),
        ),
    ];
    let responses = [
        Envelope::error(5, pb::ErrorCode::RateLimited, "slow down"),
        Envelope::push(PushKind::Kicked(pb::Kicked {
            code: pb::ErrorCode::SlowConsumer as i32,
            reason: "slow".into(),
        })),
        Envelope::response(6, ResponseResult::Pong(pb::Pong { nonce: u64::MAX })),
    ];
    let mut b = BytesMut::new();
    for env in &responses {
        frame::encode(env, &mut b);
    }
    out.push(("responses-and-pushes".into(), with_max(1024, &b)));
    out
}
