//! CPU time and memory of a process, read from `/proc` (Linux). Where `/proc` is missing the
//! figures read as zero, so a report still prints.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Which process to read: `None` means this one.
#[derive(Debug, Clone, Copy)]
pub struct Proc(pub Option<u32>);

impl Proc {
    fn path(&self, file: &str) -> String {
        match self.0 {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(self.path("stat")) else {
            return 0.0;
        };
        // Fields after the command name (which may contain spaces) start at field 3 (state);
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / TICKS_PER_SEC
    }

    /// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
    pub fn status_kb(&self, key: &str) -> u64 {
        let Ok(status) = std::fs::read_to_string(self.path("status")) else {
            return 0;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Resident set size now, in bytes.
    pub fn rss(&self) -> u64 {
        self.status_kb("VmRSS")
    }

    /// Whether the process exists.
    pub fn alive(&self) -> bool {
        std::path::Path::new(&self.path("stat")).exists()
    }
}

/// Samples a process's RSS every 100 ms on a thread and keeps the peak.
#[derive(Debug)]
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl PeakRss {
    /// Starts sampling `p`.
    pub fn start(p: Proc) -> Self {
        let peak = Arc::new(AtomicU64::new(p.rss()));
        let stop = Arc::new(AtomicBool::new(false));
        let (pk, st) = (peak.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("bench-rss".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    pk.fetch_max(p.rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        PeakRss { peak, stop }
    }

    /// Highest RSS seen so far, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// CPU use of the server (if known) and of this generator over a window.
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    server: Option<Proc>,
    t0: std::time::Instant,
    server0: f64,
    me0: f64,
}

impl CpuWindow {
    /// Starts a window now.
    pub fn start(server: Option<Proc>) -> Self {
        CpuWindow {
            server,
            t0: std::time::Instant::now(),
            server0: server.map_or(0.0, |p| p.cpu_seconds()),
            me0: Proc(None).cpu_seconds(),
        }
    }

    /// (server CPU %, generator CPU %) of one core since the start; server is None when unknown.
    pub fn percent(&self) -> (Option<f64>, f64) {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-9);
        let server = self
            .server
            .map(|p| (p.cpu_seconds() - self.server0) / secs * 100.0);
        let me = (Proc(None).cpu_seconds() - self.me0) / secs * 100.0;
        (server, me)
    }
}
