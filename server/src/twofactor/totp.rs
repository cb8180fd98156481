//! TOTP codes (RFC 6238 over RFC 4226's HOTP: HMAC-SHA1, 30-second steps, 6 digits), the
//! base32 of a secret and its `otpauth://` URI, and recovery codes.

use ring::hmac;

/// Seconds per time step.
pub(crate) const STEP_S: u64 = 30;
/// Digits of a code.
pub(crate) const DIGITS: u32 = 6;
/// Steps before and after the current one whose codes are accepted too (clock drift).
const WINDOW: u64 = 1;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub(crate) const SECRET_LEN: usize = 20;
/// Recovery codes made when two-factor login is turned on.
pub(crate) const RECOVERY_CODES: usize = 10;
/// RFC 4648 base32.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The HOTP value of `secret` at counter `step`, with `digits` digits.
pub(crate) fn code_at(secret: &[u8], step: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    // RFC 4226 §5.3, dynamic truncation.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The time step of unix time `unix_s`.
pub(crate) fn step_of(unix_s: u64) -> u64 {
    unix_s / STEP_S
}

/// The step (within one of `now_step`) whose 6-digit code is `code`, if it is later than
/// `after_step` (a code is accepted once).
pub(crate) fn matching_step(
    secret: &[u8],
    code: &str,
    now_step: u64,
    after_step: i64,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    (now_step.saturating_sub(WINDOW)..=now_step + WINDOW)
        .filter(|&s| i64::try_from(s).is_ok_and(|s| s > after_step))
        .find(|&s| constant_eq(code_at(secret, s, DIGITS), wanted))
}

/// Compares two codes by their difference (no early exit on the first differing digit).
fn constant_eq(a: u32, b: u32) -> bool {
    a ^ b == 0
}

/// Whether `code` looks like a TOTP code (six digits) rather than a recovery code.
pub(crate) fn is_totp_code(code: &str) -> bool {
    let code = code.trim();
    code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 4648 base32 of `bytes`, without padding.
pub(crate) fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app reads (issuer Feige, account `username`).
/// Usernames are `[A-Za-z0-9_.-]`, which need no escaping.
pub(crate) fn otpauth_uri(username: &str, secret_b32: &str) -> String {
    format!(
        "otpauth://totp/Feige:{username}?secret={secret_b32}&issuer=Feige&algorithm=SHA1&digits={DIGITS}&period={STEP_S}"
    )
}

/// A recovery code from 7 random bytes: ten lower-case base32 characters as `xxxxx-xxxxx`.
pub(crate) fn recovery_code(random: &[u8; 7]) -> String {
    let s = base32(random).to_ascii_lowercase();
    format!("{}-{}", &s[..5], &s[5..10])
}

/// The stored hash of a recovery code as typed: case, spaces and dashes do not matter. The
/// codes are random (50 bits), so a plain SHA-256 is enough.
pub(crate) fn recovery_hash(code: &str) -> Vec<u8> {
    let norm: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    ring::digest::digest(&ring::digest::SHA256, norm.as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, the SHA-1 rows (8 digits), and their 6-digit forms.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        let rows: [(u64, u32); 6] = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (t, expected) in rows {
            assert_eq!(code_at(secret, step_of(t), 8), expected, "T = {t}");
            assert_eq!(code_at(secret, step_of(t), 6), expected % 1_000_000);
        }
    }

    #[test]
    fn a_code_matches_within_one_step_and_only_after_the_last_used() {
        let secret = b"12345678901234567890";
        let now = step_of(1_111_111_111);
        let code = |s: u64| format!("{:06}", code_at(secret, s, DIGITS));
        assert_eq!(matching_step(secret, &code(now), now, 0), Some(now));
        assert_eq!(matching_step(secret, &code(now - 1), now, 0), Some(now - 1));
        assert_eq!(matching_step(secret, &code(now + 1), now, 0), Some(now + 1));
        assert_eq!(matching_step(secret, &code(now + 2), now, 0), None);
        assert_eq!(matching_step(secret, &code(now - 2), now, 0), None);
        let last = i64::try_from(now).unwrap_or(0);
        assert_eq!(matching_step(secret, &code(now), now, last), None, "replay");
        assert_eq!(matching_step(secret, "12345", now, 0), None);
        assert_eq!(matching_step(secret, "abcdef", now, 0), None);
    }

    #[test]
    fn base32_and_uri() {
        // RFC 4648 §10.
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        let uri = otpauth_uri("alice", "MZXW6YTBOI");
        assert_eq!(
            uri,
            "otpauth://totp/Feige:alice?secret=MZXW6YTBOI&issuer=Feige&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_hash_as_typed() {
        let code = recovery_code(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(code.len(), 11);
        assert!(!is_totp_code(&code));
        assert_eq!(
            recovery_hash(&code),
            recovery_hash(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_hash(&code), recovery_hash("aaaaa-aaaaa"));
    }
}
