//! The in-memory log ring: a `tracing` layer that keeps the newest log lines (bounded in
//! lines and in bytes) beside the normal output (standard output), for `GET /admin/api/logs`.
//!
//! [`install`] sets the process's global subscriber (standard output plus the ring) once; the server
//! reads the ring through [`global`]. Logging is not on the message path, so the ring is one
//! mutex-guarded queue.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Longest message kept of one line, in bytes; the rest is cut.
const MAX_LINE: usize = 4096;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Its level.
    pub level: Level,
    /// The module that logged it.
    pub target: String,
    /// The message and its fields (`message key=value ...`).
    pub message: String,
}

impl LogLine {
    fn bytes(&self) -> usize {
        self.target.len() + self.message.len() + 32
    }
}

/// The newest lines, at most `max_lines` and about `max_bytes`.
#[derive(Debug)]
pub struct LogRing {
    lines: Mutex<(VecDeque<LogLine>, usize)>,
    max_lines: usize,
    max_bytes: usize,
}

impl LogRing {
    /// An empty ring.
    pub fn new(max_lines: usize, max_bytes: usize) -> LogRing {
        LogRing {
            lines: Mutex::new((VecDeque::new(), 0)),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Adds a line, dropping the oldest ones past the bounds. Threads stamp their lines before they
    /// take the lock, so a line stamped earlier can arrive later: its time is raised to the newest
    /// line's, which keeps the ring in time order (a reader pages it by time).
    pub fn push(&self, mut line: LogLine) {
        let mut guard = self.lines.lock();
        let (lines, bytes) = &mut *guard;
        if let Some(last) = lines.back() {
            line.ts_ms = line.ts_ms.max(last.ts_ms);
        }
        *bytes += line.bytes();
        lines.push_back(line);
        while lines.len() > self.max_lines || (*bytes > self.max_bytes && lines.len() > 1) {
            match lines.pop_front() {
                Some(old) => *bytes -= old.bytes(),
                None => break,
            }
        }
    }

    /// The newest `limit` lines at `level` or more severe, oldest first.
    pub fn recent(&self, level: Level, limit: usize) -> Vec<LogLine> {
        let guard = self.lines.lock();
        let mut out: Vec<LogLine> = guard
            .0
            .iter()
            .rev()
            .filter(|l| l.level <= level)
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

/// The layer that copies events into a [`LogRing`].
#[derive(Debug, Clone)]
pub struct RingLayer(pub Arc<LogRing>);

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut text = Text(String::new());
        event.record(&mut text);
        let mut message = text.0;
        if message.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        self.0.push(LogLine {
            ts_ms: feige_storage::now_ms(),
            level: *meta.level(),
            target: meta.target().to_owned(),
            message,
        });
    }
}

/// Writes an event's message, then its other fields as ` key=value`.
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

static GLOBAL: OnceLock<Arc<LogRing>> = OnceLock::new();

/// Sets the global subscriber: lines at `level` and more severe are written to standard
/// output (when `print`) and into a ring of `max_lines` lines and about `max_bytes`. Only the
/// first call in a process installs anything; later calls return the ring already installed.
pub fn install(level: Level, max_lines: usize, max_bytes: usize, print: bool) -> Arc<LogRing> {
    let ring = GLOBAL.get_or_init(|| {
        let ring = Arc::new(LogRing::new(max_lines, max_bytes));
        let fmt = print.then(|| tracing_subscriber::fmt::layer().with_target(false));
        let installed = tracing_subscriber::registry()
            .with(fmt)
            .with(RingLayer(ring.clone()))
            .with(tracing_subscriber::filter::LevelFilter::from_level(level))
            .try_init();
        if installed.is_err() {
            eprintln!("feige: a tracing subscriber was already set; the log ring stays empty");
        }
        ring
    });
    ring.clone()
}

/// The ring [`install`] set up, if any.
pub fn global() -> Option<Arc<LogRing>> {
    GLOBAL.get().cloned()
}

/// A level by its lowercase name (`error`, `warn`, `info`, `debug`, `trace`).
pub fn parse_level(s: &str) -> Option<Level> {
    match s {
        "error" => Some(Level::ERROR),
        "warn" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}

/// The lowercase name of a level.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, message: &str) -> LogLine {
        LogLine {
            ts_ms: 0,
            level,
            target: "t".into(),
            message: message.into(),
        }
    }

    /// The ring keeps the newest lines within both bounds and filters by severity.
    #[test]
    fn keeps_the_newest_within_bounds() {
        let ring = LogRing::new(3, 1 << 20);
        for i in 0..5 {
            ring.push(line(
                if i % 2 == 0 { Level::WARN } else { Level::INFO },
                &i.to_string(),
            ));
        }
        let all: Vec<String> = ring
            .recent(Level::TRACE, 10)
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(all, ["2", "3", "4"]);
        let warn: Vec<String> = ring
            .recent(Level::WARN, 10)
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(warn, ["2", "4"]);
        assert_eq!(ring.recent(Level::TRACE, 1)[0].message, "4");
        let small = LogRing::new(100, 200);
        for i in 0..10 {
            small.push(line(Level::ERROR, &format!("{i:0>50}")));
        }
        let kept = small.recent(Level::TRACE, 100);
        assert!(kept.len() < 10 && !kept.is_empty());
        assert!(kept.last().is_some_and(|l| l.message.ends_with('9')));
    }

    /// A line stamped before the newest one (it lost the race for the lock) keeps the ring in time
    /// order.
    #[test]
    fn a_late_line_keeps_the_ring_in_time_order() {
        let ring = LogRing::new(10, 1 << 20);
        for ts_ms in [5, 9, 7, 12] {
            ring.push(LogLine {
                ts_ms,
                ..line(Level::INFO, "x")
            });
        }
        let ts: Vec<i64> = ring
            .recent(Level::TRACE, 10)
            .iter()
            .map(|l| l.ts_ms)
            .collect();
        assert_eq!(ts, [5, 9, 9, 12]);
    }

    /// The layer records the message first, then the fields, with the level and target.
    #[test]
    fn layer_formats_events() {
        let ring = Arc::new(LogRing::new(10, 1 << 20));
        let sub = tracing_subscriber::registry().with(RingLayer(ring.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(user = 7, name = "bob", "failed login");
        });
        let got = ring.recent(Level::TRACE, 10);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].level, Level::WARN);
        assert_eq!(got[0].message, "failed login user=7 name=bob");
        assert!(got[0].target.contains("logs"));
        assert_eq!(parse_level("warn"), Some(Level::WARN));
        assert_eq!(parse_level("WARN"), None);
        assert_eq!(level_name(Level::DEBUG), "debug");
    }
}
