//! The Prometheus text exposition format (version 0.0.4) of the server's metrics.
//!
//! Hand-written rather than through a metrics crate: the counters already live in the
//! structures that own the work (the writer's [`WriterStats`], the router's, the pools'), and
//! `prometheus-client`'s histogram takes a lock per observation, which the request path
//! must not.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use feige_storage::stats::HistogramSnapshot;
use feige_storage::WriterStats;

use super::{Family, Metrics};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What is read at scrape time rather than counted as it happens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// TCP connections open (TLS handshakes included).
    pub tcp_connections: u64,
    /// WebSocket connections open.
    pub ws_connections: u64,
    /// Users with at least one logged-in connection.
    pub users_online: u64,
    /// Operations waiting in the writer's queue.
    pub writer_queue: u64,
    /// Committed batches waiting for the router thread.
    pub router_queue: u64,
    /// Bytes held by the file workers' queued and running jobs.
    pub files_bytes: u64,
    /// Speech jobs queued and running.
    pub speech_jobs: u64,
    /// Bytes of the data directory's database files (with their WAL).
    pub db_bytes: u64,
}

/// The whole exposition.
pub fn render(m: &Metrics, w: &WriterStats, g: &Gauges) -> String {
    let mut out = String::with_capacity(8192);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let uptime = m.started.elapsed().as_secs_f64();
    metric(
        &mut out,
        "feige_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(out, "feige_uptime_seconds {uptime:.3}");
    metric(
        &mut out,
        "feige_connections",
        "gauge",
        "Connections open, by transport.",
    );
    let _ = writeln!(
        out,
        "feige_connections{{transport=\"tcp\"}} {}",
        g.tcp_connections
    );
    let _ = writeln!(
        out,
        "feige_connections{{transport=\"ws\"}} {}",
        g.ws_connections
    );
    counter(
        &mut out,
        "feige_tcp_connections_accepted_total",
        "TCP connections accepted.",
        load(&m.tcp_accepted),
    );
    gauge(
        &mut out,
        "feige_users_online",
        "Users with a logged-in connection.",
        g.users_online,
    );
    metric(
        &mut out,
        "feige_logins_total",
        "counter",
        "Logins and resumes, by result.",
    );
    let _ = writeln!(
        out,
        "feige_logins_total{{result=\"ok\"}} {}",
        load(&m.logins_ok)
    );
    let _ = writeln!(
        out,
        "feige_logins_total{{result=\"failed\"}} {}",
        load(&m.logins_failed)
    );
    counter(
        &mut out,
        "feige_messages_stored_total",
        "Messages committed (resends of a stored message not counted).",
        load(&w.messages),
    );
    counter(
        &mut out,
        "feige_messages_delivered_total",
        "Message pushes queued to recipients' connections after their commit.",
        load(&m.router.pushes),
    );
    counter(
        &mut out,
        "feige_acks_total",
        "Acks and refusals of sent messages, after their commit.",
        load(&m.router.acks),
    );
    counter(
        &mut out,
        "feige_slow_consumer_disconnects_total",
        "Connections dropped because their output outgrew the outbox bound.",
        load(&m.slow_consumers),
    );
    counter(
        &mut out,
        "feige_commits_total",
        "Transactions committed by the writer.",
        load(&w.batches),
    );
    counter(
        &mut out,
        "feige_commit_failures_total",
        "Writer batches rolled back.",
        load(&w.failed_batches),
    );
    histogram(
        &mut out,
        "feige_commit_batch_ops",
        "Operations per committed batch.",
        "",
        &w.batch_ops.snapshot(),
        1.0,
        true,
    );
    histogram(
        &mut out,
        "feige_commit_duration_seconds",
        "Time from a batch's first operation to its commit.",
        "",
        &w.commit_us.snapshot(),
        1e6,
        true,
    );
    metric(
        &mut out,
        "feige_queue_depth",
        "gauge",
        "Work waiting, by queue (files: bytes).",
    );
    for (queue, v) in [
        ("writer", g.writer_queue),
        ("router", g.router_queue),
        ("files_bytes", g.files_bytes),
        ("speech", g.speech_jobs),
    ] {
        let _ = writeln!(out, "feige_queue_depth{{queue=\"{queue}\"}} {v}");
    }
    gauge(
        &mut out,
        "feige_db_bytes",
        "Bytes of the database files.",
        g.db_bytes,
    );
    let mut head = true;
    for family in Family::ALL {
        if let Some(h) = m.requests(family) {
            let label = format!("family=\"{}\"", family.name());
            histogram(
                &mut out,
                "feige_request_duration_seconds",
                "Time to serve a request, by family (SendMessage: until queued for commit).",
                &label,
                &h.snapshot(),
                1e6,
                head,
            );
            head = false;
        }
    }
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    metric(out, name, "counter", help);
    let _ = writeln!(out, "{name} {v}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    metric(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

/// One histogram's series; dividing by `per_unit` turns the recorded unit into the exported one, `labels`
/// (`k="v"` or empty) go before `le`; `head`: write HELP and TYPE (once per name).
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    labels: &str,
    h: &HistogramSnapshot,
    per_unit: f64,
    head: bool,
) {
    if head {
        metric(out, name, "histogram", help);
    }
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
        let le = *bound as f64 / per_unit;
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum as f64 / per_unit);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line is a comment or `name{labels} value` with a numeric value; histograms end
    /// in `+Inf` equal to their count; each name has one TYPE line.
    #[test]
    fn exposition_is_well_formed() {
        let m = Metrics::default();
        let w = WriterStats::default();
        w.batch_ops.observe(3);
        w.commit_us.observe(1500);
        m.request_done(Family::Files, std::time::Duration::from_millis(2));
        let g = Gauges {
            writer_queue: 5,
            ..Gauges::default()
        };
        let text = render(&m, &w, &g);
        let mut types = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(types.insert(name.to_owned()), "TYPE twice: {name}");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("feige_"), "{line}");
        }
        assert!(text.contains("feige_queue_depth{queue=\"writer\"} 5\n"));
        assert!(text.contains("feige_commit_batch_ops_bucket{le=\"4\"} 1\n"));
        assert!(text.contains("feige_commit_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text
            .contains("feige_request_duration_seconds_bucket{family=\"files\",le=\"0.0025\"} 1\n"));
        assert!(text.contains("feige_request_duration_seconds_count{family=\"files\"} 1\n"));
    }
}
