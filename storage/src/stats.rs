//! Lock-free statistics the server exports as metrics: a histogram of fixed buckets whose
//! observations are three relaxed atomic adds (no lock, no allocation), so it can sit on the
//! writer's per-batch path and the per-request path.

use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram over fixed upper bounds (inclusive), plus an overflow bucket.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, and the last for what exceeds every bound (not cumulative).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// The upper bounds, ascending.
    pub bounds: &'static [u64],
    /// Observations at or below each bound (cumulative, as Prometheus counts buckets).
    pub cumulative: Vec<u64>,
    /// All observations.
    pub count: u64,
    /// Sum of the observed values.
    pub sum: u64,
}

impl Histogram {
    /// A histogram with these ascending upper bounds.
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The counts so far (read without a lock: a concurrent observation may be half counted).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for c in self.counts.iter().take(self.bounds.len()) {
            running += c.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let over = self.counts.last().map_or(0, |c| c.load(Ordering::Relaxed));
        HistogramSnapshot {
            bounds: self.bounds,
            cumulative,
            count: running + over,
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// Bounds for durations in microseconds: 50 µs to 10 s.
pub const MICROS_BOUNDS: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// Bounds for batch sizes: 1 to 16,384 operations.
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value lands in the first bucket whose bound holds it; counts are cumulative and
    /// values past the last bound count only in the total.
    #[test]
    fn buckets_are_inclusive_and_cumulative() {
        static BOUNDS: &[u64] = &[1, 10, 100];
        let h = Histogram::new(BOUNDS);
        for v in [0, 1, 2, 10, 11, 100, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 4, 6]);
        assert_eq!(s.count, 7);
        assert_eq!(s.sum, 1124);
    }
}
