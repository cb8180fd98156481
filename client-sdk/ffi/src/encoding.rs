//! Bytes as text: hex (session tokens, SHA-256 sums) and base64 (file data in JSON), from the
//! shared `feige_protocol::json` (which the WebSocket gateway renders with too).

pub(crate) use feige_protocol::json::params::{hex, unhex};

/// Base64 of file data (what `download_many` answers), for tests that check it.
#[cfg(test)]
pub(crate) use feige_protocol::json::params::base64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001ABff").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn base64_of_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
