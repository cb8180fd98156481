//! Messages per second over the last few seconds, from samples of the stored-messages counter
//! taken once a second.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::Mutex;

/// Samples kept: the rate spans up to this many seconds.
const SAMPLES: usize = 6;

/// Recent samples of a counter; see the module docs.
#[derive(Debug, Default)]
pub struct Rate {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Rate {
    /// Records the counter's value at `at` (once a second; not on any request's path).
    pub fn sample(&self, at: Instant, value: u64) {
        let mut s = self.samples.lock();
        if s.len() == SAMPLES {
            s.pop_front();
        }
        s.push_back((at, value));
    }

    /// The counter's growth per second between the oldest and the newest sample; 0 before
    /// two samples.
    pub fn per_second(&self) -> f64 {
        let s = self.samples.lock();
        match (s.front(), s.back()) {
            (Some(&(t0, v0)), Some(&(t1, v1))) if t1 > t0 => {
                v1.saturating_sub(v0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The rate spans the samples kept, and forgets the oldest.
    #[test]
    fn rate_over_the_kept_samples() {
        let r = Rate::default();
        let t = Instant::now();
        assert_eq!(r.per_second(), 0.0);
        r.sample(t, 0);
        r.sample(t + Duration::from_secs(2), 100);
        assert!((r.per_second() - 50.0).abs() < 1e-9);
        for i in 3..=8 {
            r.sample(t + Duration::from_secs(i), 100);
        }
        assert_eq!(r.per_second(), 0.0);
    }
}
