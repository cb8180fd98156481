//! Pending second-factor challenges: a password login of a user with two-factor login on gets
//! a random token bound to the user and the device; LoginTotp answers it within the TTL with
//! a few attempts, once. Kept in memory (a restart only makes users type the password again),
//! bounded in number.

use std::collections::HashMap;
use std::time::Duration;

use feige_storage::UserId;
use parking_lot::Mutex;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;

/// Codes tried per challenge; the next try finds the challenge gone.
pub(crate) const ATTEMPTS: u8 = 5;
/// Challenges pending at most (about 200 bytes each); past it, expired ones are dropped and
/// then a new login is refused BUSY.
pub(crate) const MAX_PENDING: usize = 10_000;
/// Random bytes of a challenge token (hex in the Error).
const TOKEN_BYTES: usize = 16;

/// What a challenge is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    pub user: UserId,
    pub device: String,
}

struct Pending {
    bound: Bound,
    expires: Instant,
    attempts_left: u8,
}

/// Why a challenge could not be issued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IssueError {
    /// [`MAX_PENDING`] challenges are live.
    #[error("too many logins waiting for a second factor")]
    Full,
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

/// The pending challenges.
pub(crate) struct Challenges {
    ttl: Duration,
    map: Mutex<HashMap<String, Pending>>,
}

impl Challenges {
    /// No challenges; each issued one lives `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Challenges {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new challenge for `bound`.
    ///
    /// # Errors
    /// [`IssueError::Full`] when [`MAX_PENDING`] live ones wait; a failed random source.
    pub(crate) fn issue(&self, rng: &SystemRandom, bound: Bound) -> Result<String, IssueError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.fill(&mut bytes).map_err(|_| IssueError::Random)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| p.expires > now);
            if map.len() >= MAX_PENDING {
                return Err(IssueError::Full);
            }
        }
        map.insert(
            token.clone(),
            Pending {
                bound,
                expires: now + self.ttl,
                attempts_left: ATTEMPTS,
            },
        );
        Ok(token)
    }

    /// Takes one attempt at `token`: what it is bound to, or `None` when it is unknown,
    /// expired or out of attempts (then it is dropped).
    pub(crate) fn attempt(&self, token: &str) -> Option<Bound> {
        let now = Instant::now();
        let mut map = self.map.lock();
        let pending = map.get_mut(token)?;
        if pending.expires <= now || pending.attempts_left == 0 {
            map.remove(token);
            return None;
        }
        pending.attempts_left -= 1;
        Some(pending.bound.clone())
    }

    /// Spends `token` after a right code: `false` when it is gone meanwhile (expired, or
    /// answered by a racing attempt).
    pub(crate) fn spend(&self, token: &str) -> bool {
        let now = Instant::now();
        self.map
            .lock()
            .remove(token)
            .is_some_and(|p| p.expires > now)
    }

    /// Challenges held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bound() -> Bound {
        Bound {
            user: 7,
            device: "phone".into(),
        }
    }

    #[test]
    fn a_challenge_has_limited_attempts_and_is_spent_once() {
        let (c, rng) = (
            Challenges::new(Duration::from_secs(60)),
            SystemRandom::new(),
        );
        let t = c.issue(&rng, bound()).unwrap();
        assert_eq!(t.len(), 32);
        assert!(c.attempt("unknown").is_none());
        for _ in 0..ATTEMPTS {
            assert_eq!(c.attempt(&t), Some(bound()));
        }
        assert!(c.attempt(&t).is_none(), "out of attempts");
        assert_eq!(c.len(), 0);
        let t = c.issue(&rng, bound()).unwrap();
        assert!(c.attempt(&t).is_some());
        assert!(c.spend(&t));
        assert!(!c.spend(&t));
        assert!(c.attempt(&t).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_challenge_expires_and_the_map_is_bounded() {
        let (c, rng) = (
            Challenges::new(Duration::from_secs(60)),
            SystemRandom::new(),
        );
        let t = c.issue(&rng, bound()).unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(c.attempt(&t).is_none());
        for _ in 0..MAX_PENDING {
            c.issue(&rng, bound()).unwrap();
        }
        assert!(matches!(c.issue(&rng, bound()), Err(IssueError::Full)));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(c.issue(&rng, bound()).is_ok(), "expired ones make room");
        assert_eq!(c.len(), 1);
    }
}
