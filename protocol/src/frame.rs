//! The frame codec: a 4-byte big-endian length, then that many bytes of one [`Envelope`].
//!
//! [`check`] looks at a buffer without consuming it and rejects an oversized declared length as
//! soon as the 4 length bytes are in, before any of the body is buffered; [`decode`] then takes
//! one whole frame out of the buffer and parses it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::Envelope;

/// Length of the frame header (the big-endian payload length).
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The declared payload length exceeds the maximum; the stream cannot be trusted further.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The declared length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The payload is not a valid Envelope. The frame was consumed, so the stream stays usable.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] prost::DecodeError),
}

/// Returns the total length (header + payload) of the first frame in `buf` if it is complete,
/// `Ok(None)` if more bytes are needed.
///
/// # Errors
/// [`FrameError::TooLarge`] as soon as the header declares more than `max` bytes.
pub fn check(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if buf.len() < HEADER_LEN + len {
        return Ok(None);
    }
    Ok(Some(HEADER_LEN + len))
}

/// Takes one whole frame out of `buf` and decodes it; `Ok(None)` if the frame is not complete.
///
/// # Errors
/// [`FrameError::TooLarge`] (nothing consumed) or [`FrameError::Malformed`] (frame consumed).
pub fn decode(buf: &mut BytesMut, max: usize) -> Result<Option<Envelope>, FrameError> {
    let Some(total) = check(buf, max)? else {
        return Ok(None);
    };
    if total >= SHARED_FROM {
        // A file chunk or a page of file data: its bytes stay where they were read (the
        // buffer, sized to the frame by `missing_large`, goes with them).
        let mut frame = buf.split_to(total).freeze();
        frame.advance(HEADER_LEN);
        return Ok(Some(Envelope::decode(frame)?));
    }
    // Decode from a slice, not a `Bytes` split off the buffer: `bytes` fields then own a copy
    // (a token is 32 bytes) instead of keeping the whole read buffer alive, and the buffer
    // never needs a shared (reference-counted) representation.
    let env = Envelope::decode(&buf[HEADER_LEN..total]);
    buf.advance(total);
    Ok(Some(env?))
}

/// Frames of at least this many bytes (header included) are decoded from bytes split off the
/// buffer: their `bytes` fields share the memory they were read into instead of a copy.
pub const SHARED_FROM: usize = 64 * 1024;

/// The bytes still missing from the frame that `buf` begins, when that frame is one of at
/// least [`SHARED_FROM`] bytes and at most `max` (as [`check`]) and is not whole yet: a reader
/// reserves them at once, so the frame is read into one buffer of its size (no growing
/// copies) that [`decode`] then hands on whole.
pub fn missing_large(buf: &[u8], max: usize) -> Option<usize> {
    let header: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    let len = u32::from_be_bytes(header) as usize;
    let total = HEADER_LEN + len;
    (len <= max && total >= SHARED_FROM && total > buf.len()).then(|| total - buf.len())
}

/// Appends `env` as one frame to `dst`.
pub fn encode(env: &Envelope, dst: &mut BytesMut) {
    let len = env.encoded_len();
    dst.reserve(HEADER_LEN + len);
    dst.put_u32(len as u32);
    // Cannot fail: capacity was reserved above.
    let _ = env.encode(dst);
}

/// Encodes `env` as one frame into a fresh, exactly sized buffer.
pub fn encode_to_bytes(env: &Envelope) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + env.encoded_len());
    encode(env, &mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pb, ErrorCode, RequestKind};

    fn ping(id: u64) -> Envelope {
        Envelope::request(id, RequestKind::Ping(pb::Ping { nonce: 7 }))
    }

    #[test]
    fn large_frames_share_the_buffer_they_were_read_into() {
        let data = vec![7u8; SHARED_FROM];
        let env = Envelope::request(
            9,
            RequestKind::UploadChunk(pb::UploadChunk {
                upload_id: 1,
                index: 2,
                data: data.clone().into(),
            }),
        );
        let bytes = encode_to_bytes(&env);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&bytes[..10]);
        let missing = missing_large(&buf, usize::MAX).unwrap();
        assert_eq!(missing, bytes.len() - 10);
        assert_eq!(
            missing_large(&buf, 100),
            None,
            "past the maximum: check refuses it"
        );
        buf.reserve(missing);
        buf.extend_from_slice(&bytes[10..]);
        buf.extend_from_slice(&encode_to_bytes(&ping(1)));
        assert_eq!(missing_large(&buf, usize::MAX), None, "whole");
        let start = buf.as_ptr() as usize;
        let got = decode(&mut buf, usize::MAX).unwrap().unwrap();
        assert_eq!(got, env);
        let Some(crate::Body::Request(req)) = &got.body else {
            panic!("not a request: {got:?}")
        };
        let Some(RequestKind::UploadChunk(chunk)) = &req.kind else {
            panic!("not a chunk: {req:?}")
        };
        let at = chunk.data.as_ptr() as usize;
        assert!(
            at > start && at < start + bytes.len(),
            "the chunk's data is not a copy"
        );
        assert_eq!(decode(&mut buf, usize::MAX).unwrap(), Some(ping(1)));
        assert!(buf.is_empty());
        // A small frame is never "large".
        assert_eq!(
            missing_large(&encode_to_bytes(&ping(2))[..6], usize::MAX),
            None
        );
    }

    #[test]
    fn round_trip_and_partial() {
        let bytes = encode_to_bytes(&ping(42));
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            assert!(decode(&mut buf, 1024).unwrap().is_none(), "byte {i}");
            buf.put_u8(*b);
        }
        let env = decode(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(env, ping(42));
        assert!(buf.is_empty());
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut buf = BytesMut::new();
        encode(&ping(1), &mut buf);
        encode(&ping(2), &mut buf);
        assert_eq!(decode(&mut buf, 1024).unwrap().unwrap().request_id, 1);
        assert_eq!(decode(&mut buf, 1024).unwrap().unwrap().request_id, 2);
        assert!(decode(&mut buf, 1024).unwrap().is_none());
    }

    #[test]
    fn oversized_rejected_from_header_alone() {
        let mut buf = BytesMut::from(&[0x00, 0x10, 0x00, 0x01][..]);
        match decode(&mut buf, 1 << 20) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, (1 << 20) + 1);
                assert_eq!(max, 1 << 20);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn malformed_payload_is_consumed() {
        let mut buf = BytesMut::new();
        buf.put_u32(3);
        buf.put_slice(&[0xff, 0xff, 0xff]);
        encode(&ping(9), &mut buf);
        assert!(matches!(
            decode(&mut buf, 1024),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(decode(&mut buf, 1024).unwrap().unwrap().request_id, 9);
    }

    #[test]
    fn error_envelope_carries_code() {
        let env = Envelope::error(5, ErrorCode::NotLoggedIn, "not logged in");
        let mut buf = BytesMut::new();
        encode(&env, &mut buf);
        let back = decode(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(back, env);
    }
}
