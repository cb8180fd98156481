//! `feige-bench summary`: medians of repeated runs and Feige-to-peer ratios, as Markdown.
//!
//! Runs are grouped by workload, label (with the store state, fresh or warm, when the report
//! names one) and shape (clients, window, rate, connections...). For each group the median of
//! every figure is shown; then, within one workload and shape, each Feige label is compared to
//! each peer label: the ratio of the medians, and the median and range of the per-round ratios
//! (a round is one A B A B pass of the script, so both ran at nearly the same time on this
//! noisy machine), of the headline figure and of the server CPU per message.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Map, Value};

/// Fields that name a run's shape.
const SHAPE: &[&str] = &[
    "clients",
    "senders",
    "members",
    "window",
    "rate",
    "mode",
    "connections",
    "messages",
    "conversations",
    "size_mb",
    "busy_mb",
];

/// Figures shown per workload: (field, heading).
fn columns(workload: &str) -> &'static [(&'static str, &'static str)] {
    match workload {
        "im-1to1" => &[
            ("delivered_per_s", "delivered msgs/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("p999_ms", "p99.9 ms"),
            ("send_lag_p99_ms", "send lag p99 ms"),
            ("server_cpu_pct", "server CPU %"),
            ("server_peak_rss_mb", "server peak RSS MB"),
            ("server_cpu_us_per_msg", "server CPU µs/msg"),
            ("generator_cpu_pct", "generator CPU %"),
            ("generator_cpu_us_per_msg", "generator CPU µs/msg"),
            ("longest_stall_ms", "longest stall ms"),
            ("stall_windows", "stall windows"),
            ("min_window_ratio", "min window ÷ median"),
            ("loadavg", "load avg"),
            ("lost", "lost"),
            ("duplicated", "dup"),
            ("out_of_order", "ooo"),
        ],
        "fanout" => &[
            ("delivered_per_s", "deliveries/s"),
            ("messages_per_s", "group msgs/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("server_cpu_pct", "server CPU %"),
            ("server_cpu_us_per_msg", "server CPU µs/delivery"),
            ("generator_cpu_pct", "generator CPU %"),
            ("longest_stall_ms", "longest stall ms"),
            ("lost", "lost"),
            ("duplicated", "dup"),
            ("out_of_order", "ooo"),
        ],
        "idle" => &[
            ("rss_per_conn_bytes", "server RSS/conn B"),
            ("server_rss_mb", "server RSS MB"),
            ("connects_per_s", "connects/s"),
            ("generator_rss_per_conn_bytes", "generator RSS/conn B"),
        ],
        "sync" => &[("sync_ms", "sync ms"), ("messages_per_s", "msgs/s")],
        "history" => &[
            ("page_p50_ms", "page p50 ms"),
            ("page_p99_ms", "page p99 ms"),
            ("search_p50_ms", "search p50 ms"),
            ("search_p99_ms", "search p99 ms"),
        ],
        "login" => &[("logins_per_s", "logins/s"), ("resumes_per_s", "resumes/s")],
        "files" => &[
            ("upload_mb_s", "upload MB/s"),
            ("download_mb_s", "download MB/s"),
            ("socat_mb_s", "socat MB/s"),
            ("upload_ratio", "upload ÷ socat"),
            ("download_ratio", "download ÷ socat"),
            ("idle_p50_ms", "chat p50 idle ms"),
            ("idle_p99_ms", "chat p99 idle ms"),
            ("busy_p50_ms", "chat p50 busy ms"),
            ("busy_p99_ms", "chat p99 busy ms"),
            ("p99_ratio", "p99 busy ÷ idle"),
            ("busy_upload_mb_s", "busy upload MB/s"),
            ("upload_client_cpu_s", "upload client CPU s"),
            ("upload_server_cpu_s", "upload server CPU s"),
            ("download_client_cpu_s", "download client CPU s"),
            ("download_server_cpu_s", "download server CPU s"),
        ],
        _ => &[],
    }
}

/// The figure a ratio is taken of, and whether higher is better.
fn headline(workload: &str) -> Option<(&'static str, bool)> {
    match workload {
        "im-1to1" | "fanout" => Some(("delivered_per_s", true)),
        "idle" => Some(("rss_per_conn_bytes", false)),
        _ => None,
    }
}

/// label -> its runs.
type Labels<'a> = BTreeMap<String, Vec<&'a Map<String, Value>>>;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Feige ÷ peer of `key` in each round both ran (paired by the report's `round`).
fn per_round(feige: &[&Map<String, Value>], peer: &[&Map<String, Value>], key: &str) -> Vec<f64> {
    let num = |r: &Map<String, Value>| r.get(key).and_then(Value::as_f64);
    feige
        .iter()
        .filter_map(|fr| {
            let pr = peer.iter().find(|pr| pr.get("round") == fr.get("round"))?;
            let (a, b) = (num(fr)?, num(pr)?);
            (b != 0.0).then(|| a / b)
        })
        .collect()
}

fn shape_of(r: &Map<String, Value>) -> String {
    SHAPE
        .iter()
        .filter_map(|k| match r.get(*k) {
            Some(Value::Null) | None => None,
            Some(v) => Some(format!("{k}={}", v.to_string().trim_matches('"'))),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// Markdown tables for the reports (one JSON object per line in `text`).
pub fn summarize(text: &str) -> String {
    let reports: Vec<Map<String, Value>> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter_map(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect();
    // workload -> shape -> label -> runs
    let mut groups: BTreeMap<String, BTreeMap<String, Labels<'_>>> = BTreeMap::new();
    for r in &reports {
        let w = r.get("workload").and_then(Value::as_str).unwrap_or("?");
        let l = r.get("label").and_then(Value::as_str).unwrap_or("?");
        let l = match r.get("store").and_then(Value::as_str) {
            Some(store) => format!("{l} ({store})"),
            None => l.to_owned(),
        };
        groups
            .entry(w.into())
            .or_default()
            .entry(shape_of(r))
            .or_default()
            .entry(l)
            .or_default()
            .push(r);
    }
    let mut out = String::new();
    let num = |r: &Map<String, Value>, k: &str| r.get(k).and_then(Value::as_f64);
    for (workload, shapes) in &groups {
        let cols = columns(workload);
        for (shape, labels) in shapes {
            let _ = writeln!(out, "\n### {workload} {shape}\n");
            let _ = write!(out, "| label | runs |");
            for (_, h) in cols {
                let _ = write!(out, " {h} |");
            }
            let _ = write!(out, "\n|---|---|");
            for _ in cols.iter() {
                let _ = write!(out, "---|");
            }
            let _ = writeln!(out);
            for (label, runs) in labels {
                let _ = write!(out, "| {label} | {} |", runs.len());
                for (k, _) in cols {
                    let m = median(runs.iter().filter_map(|r| num(r, k)).collect());
                    let _ = write!(out, " {} |", fmt(m));
                }
                let _ = writeln!(out);
            }
            let Some((key, higher)) = headline(workload) else {
                continue;
            };
            let feige: Vec<&String> = labels.keys().filter(|l| l.starts_with("feige")).collect();
            let peers: Vec<&String> = labels.keys().filter(|l| !l.starts_with("feige")).collect();
            if feige.is_empty() || peers.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\nFeige ÷ peer, {key} ({}); server CPU per message (below 1 means Feige uses \
                 less):\n\n| Feige | peer | rounds | ratio of medians | median of per-round \
                 ratios | per-round range | CPU µs/msg, median of per-round ratios |\n\
                 |---|---|---|---|---|---|---|",
                if higher {
                    "above 1 means Feige is better"
                } else {
                    "below 1 means Feige is better"
                }
            );
            for f in &feige {
                for p in &peers {
                    let (fr, pr) = (&labels[*f], &labels[*p]);
                    let fm = median(fr.iter().filter_map(|r| num(r, key)).collect());
                    let pm = median(pr.iter().filter_map(|r| num(r, key)).collect());
                    let ratio = match (fm, pm) {
                        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                        _ => None,
                    };
                    let rounds = per_round(fr, pr, key);
                    let range = match (
                        rounds.iter().copied().reduce(f64::min),
                        rounds.iter().copied().reduce(f64::max),
                    ) {
                        (Some(lo), Some(hi)) => format!("{lo:.2}–{hi:.2}"),
                        _ => "–".into(),
                    };
                    let n = rounds.len();
                    let cpu = median(per_round(fr, pr, "server_cpu_us_per_msg"));
                    let x = |v: Option<f64>| v.map_or("–".into(), |r| format!("{r:.2}×"));
                    let _ = writeln!(
                        out,
                        "| {f} | {p} | {n} | {} | {} | {range} | {} |",
                        x(ratio),
                        x(median(rounds)),
                        x(cpu)
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        let text = r#"{"workload":"im-1to1","label":"feige","round":1,"clients":10,"delivered_per_s":100.0}
{"workload":"im-1to1","label":"nats","round":1,"clients":10,"delivered_per_s":50.0}
{"workload":"im-1to1","label":"feige","round":2,"clients":10,"delivered_per_s":300.0}
{"workload":"im-1to1","label":"nats","round":2,"clients":10,"delivered_per_s":100.0}
{"workload":"im-1to1","label":"feige","round":3,"clients":10,"delivered_per_s":200.0}
{"workload":"im-1to1","label":"nats","round":3,"clients":10,"delivered_per_s":200.0}"#;
        let md = summarize(text);
        assert!(md.contains("| feige | 3 | 200 |"), "{md}");
        // Medians 200 / 100; per-round ratios 2, 3, 1 -> median 2, range 1–3.
        assert!(
            md.contains("| feige | nats | 3 | 2.00× | 2.00× | 1.00–3.00 | – |"),
            "{md}"
        );
    }

    #[test]
    fn store_states_are_labelled_and_cpu_ratios_paired() {
        let text = r#"{"workload":"im-1to1","label":"feige","store":"fresh","round":1,"clients":10,"delivered_per_s":80.0,"server_cpu_us_per_msg":20.0}
{"workload":"im-1to1","label":"feige","store":"warm","round":1,"clients":10,"delivered_per_s":120.0,"server_cpu_us_per_msg":12.0}
{"workload":"im-1to1","label":"mqtt-qos0","round":1,"clients":10,"delivered_per_s":100.0,"server_cpu_us_per_msg":10.0}"#;
        let md = summarize(text);
        assert!(md.contains("| feige (fresh) | 1 | 80 |"), "{md}");
        assert!(
            md.contains("| feige (fresh) | mqtt-qos0 | 1 | 0.80× | 0.80× | 0.80–0.80 | 2.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| feige (warm) | mqtt-qos0 | 1 | 1.20× | 1.20× | 1.20–1.20 | 1.20× |"),
            "{md}"
        );
    }
}
