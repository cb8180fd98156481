//! What the closed-loop workloads (`im-1to1`, `fanout`) share about a measured window: its
//! settings and phases, waiting it out while every client runs, and reporting what it cost
//! (CPU, memory, the delivery timeline's stalls).

use serde_json::{Map, Value};

use super::{procstat, r3, timeline};

/// The measured window's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// Measured seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Longest wait after sending stops for every message to arrive, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Connections opened at once during setup.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Write the delivery timeline (deliveries per 50 ms window of the measured phase) to
    /// this CSV file.
    #[arg(long)]
    pub timeline: Option<std::path::PathBuf>,
}

/// Where a run is: clients send, then wait for what is in flight, then stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sending (warm-up and the measured window).
    Run,
    /// Sending stopped; waiting for every message to arrive.
    Drain,
    /// Every client stops.
    Done,
}

/// Sleeps for `d`; returns early with `false` when a task of `tasks` has ended.
pub async fn sleep_while_running<T>(
    d: std::time::Duration,
    tasks: &[tokio::task::JoinHandle<T>],
) -> bool {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        if tasks.iter().any(|t| t.is_finished()) {
            return false;
        }
        let step = end.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(step.min(std::time::Duration::from_millis(20))).await;
    }
    !tasks.iter().any(|t| t.is_finished())
}

/// What a measured window cost: the server's CPU and peak RSS, the generator's CPU, both
/// per delivered message (`per_s` a second; steadier than msgs/s when other work shares the
/// cores), and the delivery timeline's stalls (`windows`, also written to `csv` if given,
/// with the measured phase's start in ms since the epoch).
///
/// # Errors
/// The CSV cannot be written.
pub fn report_costs(
    r: &mut Map<String, Value>,
    server_cpu: Option<f64>,
    peak: Option<&procstat::PeakRss>,
    gen_cpu: f64,
    per_s: f64,
    windows: &[u64],
    csv: Option<(&std::path::Path, u64)>,
) -> anyhow::Result<()> {
    r.insert("server_cpu_pct".into(), server_cpu.map_or(Value::Null, r3));
    r.insert(
        "server_peak_rss_mb".into(),
        peak.map_or(Value::Null, |p| r3(p.peak() as f64 / 1048576.0)),
    );
    r.insert("generator_cpu_pct".into(), r3(gen_cpu));
    let per_msg = |pct: f64| r3(pct / 100.0 * 1e6 / per_s.max(1e-9));
    r.insert(
        "server_cpu_us_per_msg".into(),
        server_cpu.map_or(Value::Null, per_msg),
    );
    r.insert("generator_cpu_us_per_msg".into(), per_msg(gen_cpu));
    timeline::stalls(windows).report(r);
    if let Some((path, start_unix_ms)) = csv {
        timeline::write_csv(path, windows, start_unix_ms)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    }
    Ok(())
}
