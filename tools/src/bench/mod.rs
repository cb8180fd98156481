//! `feige-bench`: a load generator for Feige and, for comparison in the same run, an MQTT
//! broker (mosquitto) and a core NATS server (nats-server). See BENCHMARKS.md.
//!
//! Each workload connects its clients, runs for a bounded time, checks every message (lost,
//! duplicated, out of order) and returns a flat JSON report; [`summary`] turns many reports
//! into medians and ratios.

pub mod accounts;
pub mod costs;
pub mod crash;
pub mod fanout;
pub mod files;
pub mod group;
pub mod history;
pub mod idle;
pub mod im;
pub mod login;
pub mod procstat;
pub mod summary;
pub mod sync;
pub mod timeline;
pub mod wire;
pub mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use serde_json::{Map, Value};
use tokio::net::TcpStream;

use wire::{Kind, Subscription, Wire};

/// Which server to drive and how to watch it; shared by every workload.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Server kind.
    #[arg(long, value_enum, default_value = "feige")]
    pub target: Kind,
    /// Server address [default: 127.0.0.1:7900 for feige, :1883 for mqtt, :4222 for nats].
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// MQTT QoS for publishes and subscriptions (0 or 1).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Server process id, to report its CPU and RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// File caching the Feige bench accounts' session tokens (tie it to the data directory).
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Username prefix of the Feige bench accounts.
    #[arg(long, default_value = "bench")]
    pub user_prefix: String,
    /// Spread client connections over this many source addresses 127.0.0.1, .2, ...
    #[arg(long, default_value_t = 1)]
    pub sources: u8,
    /// Free-form label copied into the report (e.g. "feige-process").
    #[arg(long)]
    pub label: Option<String>,
    /// The state of the Feige store at the start, copied into the report: `fresh` (a copy of
    /// the seed: the bench accounts, no messages) or `warm` (after an earlier run).
    #[arg(long, value_enum)]
    pub store: Option<Store>,
    /// Round number copied into the report (pairs runs of an interleaved script).
    #[arg(long, default_value_t = 0)]
    pub round: u32,
    /// Hard limit on the whole run, setup included, in seconds.
    #[arg(long, default_value_t = 300.0)]
    pub time_limit: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The state of a Feige store when a run starts (see `--store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    /// A copy of the seed: the bench accounts, no messages.
    Fresh,
    /// A store that has carried an earlier run: its conversations exist.
    Warm,
}

impl Store {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Store::Fresh => "fresh",
            Store::Warm => "warm",
        }
    }
}

impl TargetArgs {
    /// The server address, defaulted by kind.
    pub fn addr(&self) -> SocketAddr {
        self.addr.unwrap_or_else(|| {
            let port = match self.target {
                Kind::Feige => 7900,
                Kind::Mqtt => 1883,
                Kind::Nats => 4222,
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }

    /// Name of the target in reports: "feige", "mqtt-qos0", "nats".
    pub fn target_name(&self) -> String {
        match self.target {
            Kind::Feige => "feige".into(),
            Kind::Mqtt => format!("mqtt-qos{}", self.qos),
            Kind::Nats => "nats".into(),
        }
    }

    /// Source address of connection `idx`.
    pub fn source(&self, idx: usize) -> Option<IpAddr> {
        (self.sources > 1 && self.addr().ip().is_loopback()).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (idx % self.sources as usize) as u8,
            ))
        })
    }

    /// The server's process, when its pid was given.
    pub fn server_proc(&self) -> Option<procstat::Proc> {
        self.server_pid.map(|p| procstat::Proc(Some(p)))
    }

    /// A report with the fields every workload shares.
    pub fn report(&self, workload: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("workload".into(), workload.into());
        m.insert("target".into(), self.target_name().into());
        m.insert(
            "label".into(),
            self.label
                .clone()
                .unwrap_or_else(|| self.target_name())
                .into(),
        );
        m.insert(
            "store".into(),
            self.store.map_or(Value::Null, |s| s.name().into()),
        );
        m.insert("round".into(), self.round.into());
        // The machine's 1-minute load average: how much else wanted the cores.
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
        m.insert("loadavg".into(), load.map_or(Value::Null, r3));
        m
    }
}

/// Opens client `idx`'s connection, logged in / subscribed to its own address, and its
/// protocol state.
///
/// # Errors
/// The connection or its handshake fails.
pub async fn connect_client(
    t: &TargetArgs,
    idx: usize,
    accounts: &[accounts::Account],
    ids: &Arc<Vec<u64>>,
    run_id: u32,
) -> anyhow::Result<(TcpStream, BytesMut, Wire)> {
    connect_subscribed(t, idx, accounts, ids, run_id, Subscription::Own).await
}

/// Opens client `idx`'s connection, logged in / subscribed to `sub`, and its protocol state.
/// (A Feige client receives what its user receives, whatever `sub` says.)
///
/// # Errors
/// The connection or its handshake fails.
pub async fn connect_subscribed(
    t: &TargetArgs,
    idx: usize,
    accounts: &[accounts::Account],
    ids: &Arc<Vec<u64>>,
    run_id: u32,
    sub: Subscription,
) -> anyhow::Result<(TcpStream, BytesMut, Wire)> {
    let addr = t.addr();
    let src = t.source(idx);
    Ok(match t.target {
        Kind::Feige => {
            let acc = &accounts[idx % accounts.len().max(1)];
            let (s, b) = wire::feige_resume(addr, src, &acc.token).await?;
            (
                s,
                b,
                Wire::Feige {
                    ids: ids.clone(),
                    next_rid: 100,
                },
            )
        }
        Kind::Mqtt => {
            let (s, b) = wire::mqtt_connect(addr, src, idx, sub, t.qos, run_id).await?;
            (
                s,
                b,
                Wire::Mqtt {
                    qos: t.qos,
                    next_pid: 1,
                },
            )
        }
        Kind::Nats => {
            let (s, b) = wire::nats_connect(addr, src, idx, sub).await?;
            (s, b, Wire::Nats)
        }
    })
}

/// Prints a report as a two-column table, or as one JSON line.
pub fn print_report(report: &Map<String, Value>, json: bool) {
    if json {
        println!("{}", Value::Object(report.clone()));
        return;
    }
    for (k, v) in report {
        let shown = match v {
            Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("{k:<24} {shown}");
    }
}

/// Adds an idle run's server RSS before (`base`) and with (`end`) its `n` connections, and
/// the RSS per connection, to `r` (null when the server's RSS could not be read).
pub(crate) fn rss_report(
    r: &mut Map<String, Value>,
    base: Option<u64>,
    end: Option<u64>,
    n: usize,
) {
    match (base, end) {
        (Some(b), Some(e)) => {
            r.insert("server_rss_base_mb".into(), r3(b as f64 / 1048576.0));
            r.insert("server_rss_mb".into(), r3(e as f64 / 1048576.0));
            r.insert(
                "rss_per_conn_bytes".into(),
                r3(e.saturating_sub(b) as f64 / n.max(1) as f64),
            );
        }
        _ => {
            r.insert("rss_per_conn_bytes".into(), Value::Null);
        }
    }
}

/// Rounds to 3 decimals for the report.
/// Delivery-order counters: every delivery of a sender's message is new, a duplicate or out
/// of order.
pub(crate) struct OrderCounters<'a> {
    pub unique: &'a AtomicU64,
    pub duplicated: &'a AtomicU64,
    pub out_of_order: &'a AtomicU64,
}

impl OrderCounters<'_> {
    /// Counts sequence number `sq` of a sender whose newest seen so far is `last` (moved on
    /// when `sq` is new); true when it is new.
    pub(crate) fn count(&self, last: &mut u64, sq: u64) -> bool {
        if sq > *last {
            *last = sq;
            self.unique.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            let c = if sq == *last {
                self.duplicated
            } else {
                self.out_of_order
            };
            c.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

pub fn r3(v: f64) -> Value {
    ((v * 1000.0).round() / 1000.0).into()
}

#[cfg(test)]
mod order_tests {
    use super::*;

    /// New, repeated and late sequence numbers land in their own counters.
    #[test]
    fn deliveries_are_counted_new_duplicated_or_out_of_order() {
        let (u, d, o) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let order = OrderCounters {
            unique: &u,
            duplicated: &d,
            out_of_order: &o,
        };
        let mut last = 0;
        let new: Vec<bool> = [1, 2, 2, 1, 3]
            .iter()
            .map(|&sq| order.count(&mut last, sq))
            .collect();
        assert_eq!(new, [true, true, false, false, true]);
        assert_eq!(last, 3);
        let got = [&u, &d, &o].map(|c| c.load(Ordering::Relaxed));
        assert_eq!(got, [3, 1, 1]);
    }
}
