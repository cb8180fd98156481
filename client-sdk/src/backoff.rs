//! The reconnect backoff policy shared by the Rust client and the C SDK.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The reconnect delays a client uses (`ClientConfig::backoff`): from `initial`, doubling up
/// to `max`, each shortened by a random part of up to `jitter` (0.0 to 1.0) of itself, so
/// that many clients dropped at once do not come back in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The largest fraction taken off a delay at random (0.0 = none).
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Backoff::MIN,
            max: Backoff::MAX,
            jitter: 0.0,
        }
    }
}

/// Delays between reconnect attempts: the first is the policy's `initial` ([`Backoff::MIN`]
/// by default), each next one doubles up to its `max` ([`Backoff::MAX`]), and a connection
/// that lived [`Backoff::RESET`] or longer starts the sequence over; one that died sooner
/// (e.g. kicked again right away) keeps doubling it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    next: Duration,
    policy: BackoffPolicy,
}

impl Backoff {
    /// First reconnect delay.
    pub const MIN: Duration = Duration::from_millis(100);
    /// Longest reconnect delay.
    pub const MAX: Duration = Duration::from_secs(5);
    /// A connection that lived this long restarts the backoff at [`Backoff::MIN`].
    pub const RESET: Duration = Duration::from_secs(10);

    /// The default delays: the next is [`Backoff::MIN`].
    pub fn new() -> Self {
        Self::with(BackoffPolicy::default())
    }

    /// The delays of `policy` (a `max` below `initial` counts as `initial`; `jitter` is
    /// clamped to 0.0..=1.0).
    pub fn with(policy: BackoffPolicy) -> Self {
        let policy = BackoffPolicy {
            max: policy.max.max(policy.initial),
            jitter: if policy.jitter.is_finite() {
                policy.jitter.clamp(0.0, 1.0)
            } else {
                0.0
            },
            ..policy
        };
        Backoff {
            next: policy.initial,
            policy,
        }
    }

    /// The delay before the next attempt; the one after it doubles, up to the max.
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(self.policy.max);
        if self.policy.jitter > 0.0 {
            // A uniform fraction in [0, 1) from the std hasher's random keys.
            let bits = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            #[allow(clippy::cast_precision_loss)]
            let r = (bits >> 11) as f64 / (1u64 << 53) as f64;
            return wait.mul_f64(1.0 - self.policy.jitter * r);
        }
        wait
    }

    /// A connection that was up for `lived` ended: start over if it lived long enough.
    pub fn connection_ended(&mut self, lived: Duration) {
        if lived >= Self::RESET {
            self.next = self.policy.initial;
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_and_resets_after_a_long_connection() {
        let mut b = Backoff::new();
        let first: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            first,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(5000),
                ms(5000)
            ]
        );
        // A short-lived connection keeps the delay growing.
        b.connection_ended(Backoff::RESET - ms(1));
        assert_eq!(b.next_delay(), Backoff::MAX);
        // A long-lived one starts over.
        b.connection_ended(Backoff::RESET);
        assert_eq!(b.next_delay(), Backoff::MIN);
        assert_eq!(b.next_delay(), ms(200));
    }

    #[test]
    fn a_policy_sets_the_delays_and_jitter_only_shortens_them() {
        let ms = |n| Duration::from_millis(n);
        let mut b = Backoff::with(BackoffPolicy {
            initial: ms(30),
            max: ms(100),
            jitter: 0.0,
        });
        let got: Vec<Duration> = (0..4).map(|_| b.next_delay()).collect();
        assert_eq!(got, [ms(30), ms(60), ms(100), ms(100)]);
        let mut b = Backoff::with(BackoffPolicy {
            initial: ms(1000),
            max: ms(1000),
            jitter: 0.5,
        });
        let got: Vec<Duration> = (0..50).map(|_| b.next_delay()).collect();
        assert!(
            got.iter().all(|d| *d > ms(500) && *d <= ms(1000)),
            "{got:?}"
        );
        assert!(got.iter().any(|d| *d != got[0]), "jitter varies: {got:?}");
    }
}
