//! The delivery timeline of `im-1to1`: deliveries counted in 50 ms windows of the measured
//! phase, by the time the generator read them. A server that stops delivering for a moment
//! (a bulk index move, a checkpoint) hides in a throughput figure over seconds but shows here
//! as a run of near-empty windows: a message that hangs, as a user sees it.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use super::r3;

/// Length of one window.
pub const WINDOW_MS: u64 = 50;
/// A window is a stall when it holds fewer deliveries than this fraction of the median window.
pub const STALL_FRACTION: f64 = 0.1;

/// Delivery counters, one per window, shared by the client tasks.
#[derive(Debug)]
pub struct Timeline {
    counts: Box<[AtomicU64]>,
}

impl Timeline {
    /// Counters for a measured phase of about `seconds` (plus a second of slack: the phase
    /// ends on a timer that may fire late).
    pub fn new(seconds: f64) -> Self {
        let windows = ((seconds.max(0.0) + 1.0) * 1000.0 / WINDOW_MS as f64).ceil() as usize;
        Timeline {
            counts: (0..windows).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts `n` deliveries read `since_start_us` after the measured phase began; later
    /// than the counters reach is dropped.
    pub fn record(&self, since_start_us: u64, n: u64) {
        let i = (since_start_us / (WINDOW_MS * 1000)) as usize;
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The counts of the whole windows within a measured phase of `seconds`.
    pub fn windows(&self, seconds: f64) -> Vec<u64> {
        let whole = (seconds.max(0.0) * 1000.0 / WINDOW_MS as f64).floor() as usize;
        self.counts
            .iter()
            .take(whole)
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// Milliseconds since the Unix epoch of the moment `since_us` microseconds after `epoch`
/// (a time the generator took on its monotonic clock), to write beside the windows.
pub fn wall_ms(epoch: std::time::Instant, since_us: u64) -> u64 {
    let ago = epoch
        .elapsed()
        .saturating_sub(std::time::Duration::from_micros(since_us));
    std::time::SystemTime::now()
        .checked_sub(ago)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a timeline says about stalls.
#[derive(Debug, Clone, PartialEq)]
pub struct Stalls {
    /// Windows looked at.
    pub windows: usize,
    /// Deliveries in the median window.
    pub median: f64,
    /// Windows below [`STALL_FRACTION`] of the median.
    pub stall_windows: usize,
    /// The longest run of such windows, in milliseconds.
    pub longest_stall_ms: u64,
    /// The emptiest window ÷ the median window (`None` without deliveries).
    pub min_ratio: Option<f64>,
}

/// Finds the stalls in `counts` (deliveries per [`WINDOW_MS`] window, in time order).
pub fn stalls(counts: &[u64]) -> Stalls {
    let median = median(counts);
    let threshold = median * STALL_FRACTION;
    let (mut run, mut longest, mut below) = (0usize, 0usize, 0usize);
    for &c in counts {
        if (c as f64) < threshold {
            below += 1;
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let min = counts.iter().copied().min();
    Stalls {
        windows: counts.len(),
        median,
        stall_windows: below,
        longest_stall_ms: longest as u64 * WINDOW_MS,
        min_ratio: min.filter(|_| median > 0.0).map(|m| m as f64 / median),
    }
}

fn median(counts: &[u64]) -> f64 {
    let mut v = counts.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
    }
}

impl Stalls {
    /// Adds the figures to a report.
    pub fn report(&self, r: &mut Map<String, Value>) {
        r.insert("timeline_window_ms".into(), WINDOW_MS.into());
        r.insert("longest_stall_ms".into(), self.longest_stall_ms.into());
        r.insert("stall_windows".into(), self.stall_windows.into());
        r.insert(
            "min_window_ratio".into(),
            self.min_ratio.map_or(Value::Null, r3),
        );
    }
}

/// Writes the windows as CSV: `start_ms,deliveries,per_s,unix_ms`, a header line first;
/// `unix_ms` is the window's start on the wall clock (the measured phase began at
/// `start_unix_ms`), to line the windows up with the server's log.
///
/// # Errors
/// The file cannot be written.
pub fn write_csv(path: &Path, counts: &[u64], start_unix_ms: u64) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(counts.len() * 32 + 40);
    writeln!(out, "start_ms,deliveries,per_s,unix_ms")?;
    for (i, c) in counts.iter().enumerate() {
        let at = i as u64 * WINDOW_MS;
        writeln!(
            out,
            "{at},{c},{},{}",
            c * 1000 / WINDOW_MS,
            start_unix_ms + at
        )?;
    }
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_timeline_has_no_stall() {
        let s = stalls(&[100, 98, 102, 100, 95]);
        assert_eq!(s.stall_windows, 0);
        assert_eq!(s.longest_stall_ms, 0);
        assert_eq!(s.median, 100.0);
        assert_eq!(s.min_ratio, Some(0.95));
    }

    #[test]
    fn the_longest_run_below_a_tenth_of_the_median_is_the_stall() {
        // Median 100; below 10: the runs of 2 and 5 windows (9 is below, 10 is not).
        let c = [
            100, 0, 3, 100, 100, 10, 100, 9, 0, 0, 1, 2, 100, 100, 100, 100, 100, 100,
        ];
        let s = stalls(&c);
        assert_eq!(s.median, 100.0);
        assert_eq!(s.stall_windows, 7);
        assert_eq!(s.longest_stall_ms, 5 * WINDOW_MS);
        assert_eq!(s.min_ratio, Some(0.0));
    }

    #[test]
    fn a_stall_at_either_end_counts_and_an_even_median_averages() {
        let s = stalls(&[0, 0, 50, 60, 70, 80, 0]);
        // Sorted 0 0 0 50 60 70 80: median 50, threshold 5.
        assert_eq!(s.stall_windows, 3);
        assert_eq!(s.longest_stall_ms, 2 * WINDOW_MS);
        assert_eq!(stalls(&[10, 20]).median, 15.0);
    }

    #[test]
    fn no_deliveries_give_no_ratio() {
        let s = stalls(&[0, 0, 0]);
        assert_eq!(s.min_ratio, None);
        assert_eq!(s.stall_windows, 0);
        assert_eq!(stalls(&[]).windows, 0);
    }

    #[test]
    fn counters_keep_whole_windows_only() {
        let t = Timeline::new(0.2);
        t.record(0, 3);
        t.record(49_999, 1);
        t.record(50_000, 2);
        t.record(199_999, 5);
        t.record(220_000, 7);
        t.record(u64::MAX, 1);
        assert_eq!(t.windows(0.2), vec![4, 2, 0, 5]);
        assert_eq!(t.windows(0.26), vec![4, 2, 0, 5, 7]);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.csv");
        write_csv(&f, &t.windows(0.1), 1_000).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "start_ms,deliveries,per_s,unix_ms\n0,4,80,1000\n50,2,40,1050\n"
        );
    }
}
