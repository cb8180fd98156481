//! TOTP codes computed in the tests from the secret the server hands out (RFC 6238 with
//! HMAC-SHA1, 30 s, 6 digits), independently of the server's code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Decodes RFC 4648 base32 (no padding); panics on a bad character.
pub fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes() {
        let v = alphabet
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("not base32: {c}")) as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The 6-digit code of `secret` (base32) at time step `step`.
pub fn code(secret_b32: &str, step: u64) -> String {
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &base32_decode(secret_b32),
    );
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let o = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[o] & 0x7f, mac[o + 1], mac[o + 2], mac[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// The current time step.
pub fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 30)
        .unwrap_or(0)
}

/// Waits, when less than 10 s of the current step are left, for the next step to begin, so
/// that a test can use the codes of steps `s - 1`, `s` and `s + 1` (the ones the server
/// accepts) without the step moving under it. Returns the step.
pub async fn fresh_step() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let into = now.as_millis() % 30_000;
    if into > 20_000 {
        let wait = 30_000 - into as u64 + 100;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    now_step()
}
