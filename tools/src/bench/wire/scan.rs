//! Reading a Feige delivery's text straight out of its frame, without decoding the rest.

use std::ops::Range;

/// Where the text of a `Push{Message}` envelope lies in `env`, found by walking the fields
/// without decoding the rest; `None` for any other envelope (or one it cannot walk).
pub(super) fn pushed_text(env: &[u8]) -> Option<Range<usize>> {
    // Envelope.push = 4, Push.message = 1, Message.text = 7.
    let push = len_field(env, 4)?;
    let message = offset(len_field(&env[push.clone()], 1)?, push.start);
    let text = len_field(&env[message.clone()], 7).unwrap_or(0..0);
    Some(offset(text, message.start))
}

fn offset(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

/// The bytes of the first length-delimited field `want` of the protobuf message `msg`.
pub(super) fn len_field(mut msg: &[u8], want: u64) -> Option<Range<usize>> {
    let total = msg.len();
    while !msg.is_empty() {
        let key = prost::encoding::decode_varint(&mut msg).ok()?;
        match key & 7 {
            0 => {
                prost::encoding::decode_varint(&mut msg).ok()?;
            }
            1 => msg = msg.get(8..)?,
            2 => {
                let len = usize::try_from(prost::encoding::decode_varint(&mut msg).ok()?).ok()?;
                let start = total - msg.len();
                if len > msg.len() {
                    return None;
                }
                if key >> 3 == want {
                    return Some(start..start + len);
                }
                msg = &msg[len..];
            }
            5 => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    None
}
