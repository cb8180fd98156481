//! Password hashing and session tokens (ring). Both are CPU work: call them from blocking
//! threads, never on the reactor.

use ring::digest;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use std::num::NonZeroU32;

/// Length of a session token in bytes (256 bits).
pub const TOKEN_LEN: usize = 32;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// Hashes a new password: returns (salt, stored hash). The stored hash is the iteration count
/// (4 bytes, big-endian) followed by PBKDF2-HMAC-SHA256, so the count can grow later without
/// breaking old accounts.
pub fn hash_password(
    rng: &SystemRandom,
    iterations: u32,
    password: &str,
) -> Result<(Vec<u8>, Vec<u8>), ring::error::Unspecified> {
    let mut salt = vec![0u8; SALT_LEN];
    rng.fill(&mut salt)?;
    let iterations = NonZeroU32::new(iterations).ok_or(ring::error::Unspecified)?;
    let mut out = vec![0u8; 4 + HASH_LEN];
    out[..4].copy_from_slice(&iterations.get().to_be_bytes());
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut out[4..],
    );
    Ok((salt, out))
}

/// Whether `password` matches a hash made by [`hash_password`] (constant-time compare).
pub fn verify_password(salt: &[u8], stored: &[u8], password: &str) -> bool {
    if stored.len() != 4 + HASH_LEN {
        return false;
    }
    let iterations = u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let Some(iterations) = NonZeroU32::new(iterations) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &stored[4..],
    )
    .is_ok()
}

/// A fresh random session token.
pub fn new_token(rng: &SystemRandom) -> Result<[u8; TOKEN_LEN], ring::error::Unspecified> {
    let mut t = [0u8; TOKEN_LEN];
    rng.fill(&mut t)?;
    Ok(t)
}

/// What the database keeps of a token: its SHA-256.
pub fn token_hash(token: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, token).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let rng = SystemRandom::new();
        let (salt, hash) = hash_password(&rng, 100_000, "correct horse").unwrap();
        assert!(verify_password(&salt, &hash, "correct horse"));
        assert!(!verify_password(&salt, &hash, "correct horsE"));
        assert!(!verify_password(&salt, &hash[1..], "correct horse"));
        let (salt2, hash2) = hash_password(&rng, 100_000, "correct horse").unwrap();
        assert_ne!(salt, salt2, "per-user salt");
        assert_ne!(hash, hash2);
    }

    #[test]
    fn token_hashes_are_sha256() {
        assert_eq!(token_hash(b"x").len(), 32);
    }
}
