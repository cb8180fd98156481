//! The reconnect backoff policy shared by the Rust client and the C SDK.

use std::time::Duration;

/// Delays between reconnect attempts: the first is [`Backoff::MIN`], each next one doubles up
/// to [`Backoff::MAX`], and a connection that lived [`Backoff::RESET`] or longer starts the
/// sequence over; one that died sooner (e.g. kicked again right away) keeps doubling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// First reconnect delay.
    pub const MIN: Duration = Duration::from_millis(100);
    /// Longest reconnect delay.
    pub const MAX: Duration = Duration::from_secs(5);
    /// A connection that lived this long restarts the backoff at [`Backoff::MIN`].
    pub const RESET: Duration = Duration::from_secs(10);

    /// A fresh policy: the next delay is [`Backoff::MIN`].
    pub fn new() -> Self {
        Backoff { next: Self::MIN }
    }

    /// The delay before the next attempt; the one after it doubles, up to [`Backoff::MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(Self::MAX);
        wait
    }

    /// A connection that was up for `lived` ended: start over if it lived long enough.
    pub fn connection_ended(&mut self, lived: Duration) {
        if lived >= Self::RESET {
            self.next = Self::MIN;
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
}
