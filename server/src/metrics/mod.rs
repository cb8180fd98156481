//! The server's metrics: counters and gauges kept as relaxed atomics where the work happens
//! (a connection, a login, a request, a routed batch), plus what the writer, the router and
//! the worker pools already count. [`text::render`] writes them in the Prometheus text format;
//! [`Rate`] turns the stored-messages counter into messages per second for the status.
//!
//! Nothing here takes a lock or allocates on the message path: a request's latency is three
//! atomic adds into its family's histogram, a routed batch adds its frame count once.

mod family;
mod rate;
pub mod text;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use feige_storage::stats::{Histogram, MICROS_BOUNDS};

pub use family::Family;
pub use rate::Rate;

use crate::router::RouterStats;

/// The server's own counters; the writer's are in [`feige_storage::WriterStats`].
#[derive(Debug)]
pub struct Metrics {
    /// When the server started.
    pub started: Instant,
    /// TCP connections accepted (and not turned away at their address's cap).
    pub tcp_accepted: AtomicU64,
    /// Logins and resumes that succeeded.
    pub logins_ok: AtomicU64,
    /// Logins and resumes refused (bad credentials, locked, a disabled account).
    pub logins_failed: AtomicU64,
    /// Connections dropped because their output outgrew `outbox_bytes` or `outbox_capacity`.
    pub slow_consumers: AtomicU64,
    /// Acks and pushes routed after commits (shared with the router thread).
    pub router: Arc<RouterStats>,
    /// Request latencies by family, in microseconds.
    requests: Box<[Histogram]>,
    /// Stored messages over the last seconds.
    pub rate: Rate,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            tcp_accepted: AtomicU64::new(0),
            logins_ok: AtomicU64::new(0),
            logins_failed: AtomicU64::new(0),
            slow_consumers: AtomicU64::new(0),
            router: Arc::new(RouterStats::default()),
            requests: Family::ALL
                .iter()
                .map(|_| Histogram::new(MICROS_BOUNDS))
                .collect(),
            rate: Rate::default(),
        }
    }
}

impl Metrics {
    /// Counts a login or resume: `ok` or refused.
    pub fn login(&self, ok: bool) {
        let c = if ok {
            &self.logins_ok
        } else {
            &self.logins_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection dropped as a slow consumer.
    pub fn slow_consumer(&self) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long a request of `family` took.
    pub fn request_done(&self, family: Family, took: Duration) {
        if let Some(h) = self.requests.get(family as usize) {
            h.observe(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// The latency histogram of `family`.
    pub fn requests(&self, family: Family) -> Option<&Histogram> {
        self.requests.get(family as usize)
    }
}

/// When a request began and its family, carried to where it ends.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The request's family.
    pub family: Family,
    /// When the request was taken from the frame.
    pub started: Instant,
}

impl Timing {
    /// A request of `family` starting now.
    pub fn start(family: Family) -> Timing {
        Timing {
            family,
            started: Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request lands in its family's histogram only; logins by result.
    #[test]
    fn logins_and_requests_are_counted() {
        let m = Metrics::default();
        m.request_done(Family::Message, Duration::from_micros(70));
        let snap = m.requests(Family::Message).map(Histogram::snapshot);
        assert_eq!(snap.map(|s| (s.count, s.sum)), Some((1, 70)));
        let other = m.requests(Family::Account).map(Histogram::snapshot);
        assert_eq!(other.map(|s| s.count), Some(0));
        m.login(true);
        m.login(false);
        m.login(false);
        assert_eq!(m.logins_ok.load(Ordering::Relaxed), 1);
        assert_eq!(m.logins_failed.load(Ordering::Relaxed), 2);
    }
}
