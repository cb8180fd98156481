//! `im-1to1`: C clients each send 100-byte messages to random other clients.
//!
//! Closed loop (default): each client keeps at most W messages in flight, where a message
//! leaves flight when its recipient has received it (the same rule for every target, so acks
//! do not matter to the pacing). Open loop (`--rate`): messages leave on a fixed schedule,
//! whatever the server does; latency is measured from the actual send and the generator's
//! lateness against the schedule is reported as `send_lag_p99_ms`.
//! Every delivery is checked against its sender's sequence: lost, duplicated, out of order.
//! Deliveries are also counted per 50 ms window of the measured phase ([`super::timeline`]),
//! which gives the longest stall.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use super::costs::Phase;
use super::procstat::{CpuWindow, PeakRss};
use super::timeline::Timeline;
use super::wire::{parse_payload, payload, Event, Kind, Wire};
use super::{accounts, connect_client, r3, TargetArgs};

/// Settings of `im-1to1`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImArgs {
    #[command(flatten)]
    pub run: super::costs::WindowArgs,
    /// Connected clients.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub clients: usize,
    /// Most messages per client in flight (sent, not yet received), closed loop.
    #[arg(short = 'w', long, default_value_t = 16)]
    pub window: usize,
    /// Open loop: messages per second over all clients (closed loop when absent).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Feige over its WebSocket gateway at this HTTP address (`http_listen`), closed loop;
    /// accounts are made over TCP at `--addr`.
    #[arg(long)]
    pub ws: Option<std::net::SocketAddr>,
}

#[derive(Debug, Default)]
struct Credit {
    n: AtomicI64,
    notify: Notify,
}

#[derive(Debug)]
struct Shared {
    credit: Vec<Credit>,
    closed: bool,
    epoch: Instant,
    /// Latency is recorded for messages sent in [start, end) (µs since epoch).
    start_us: AtomicU64,
    end_us: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    unique: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
    /// Deliveries per window of the measured phase, by the time they were read.
    timeline: Timeline,
}

/// Runs `im-1to1` and returns its report.
///
/// # Errors
/// Setup fails, a client is kicked or sees a protocol error.
pub async fn run(t: &TargetArgs, a: &ImArgs) -> anyhow::Result<Map<String, Value>> {
    let n = a.clients;
    if n < 2 {
        bail!("need at least 2 clients");
    }
    let run_id = std::process::id();
    let addr = t.addr();
    let accounts = if t.target == Kind::Feige {
        accounts::ensure(addr, &t.user_prefix, n, t.accounts.as_deref()).await?
    } else {
        Vec::new()
    };
    let ids = Arc::new(accounts.iter().map(|a| a.user_id).collect::<Vec<_>>());
    let server = t.server_proc();
    let peak = server.map(PeakRss::start);
    eprintln!(
        "connecting {n} clients to {} at {addr} ...",
        t.target_name()
    );
    let t0 = Instant::now();
    let sem = Arc::new(Semaphore::new(a.run.connect_concurrency.max(1)));
    let accounts = Arc::new(accounts);
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let (t, sem, accounts, ids) = (t.clone(), sem.clone(), accounts.clone(), ids.clone());
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            connect_client(&t, i, &accounts, &ids, run_id)
                .await
                .with_context(|| format!("client {i}"))
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for j in joins {
        conns.push(j.await??);
    }
    eprintln!("connected in {:.1}s", t0.elapsed().as_secs_f64());

    let shared = Arc::new(Shared {
        credit: (0..n)
            .map(|_| Credit {
                n: AtomicI64::new(a.window as i64),
                notify: Notify::new(),
            })
            .collect(),
        closed: a.rate.is_none(),
        epoch: Instant::now(),
        start_us: AtomicU64::new(u64::MAX),
        end_us: AtomicU64::new(u64::MAX),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        unique: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        timeline: Timeline::new(a.run.duration),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let interval = a
        .rate
        .map(|r| Duration::from_secs_f64(n as f64 / r.max(0.001)));
    // Distinct client_msg_ids across runs against the same store.
    let id_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
        << 8;
    let mut tasks = Vec::with_capacity(n);
    for (idx, (s, buf, wire)) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(client(
            idx,
            s,
            buf,
            wire,
            shared.clone(),
            phase_rx.clone(),
            interval,
            id_base,
        )));
    }
    let progress = tokio::spawn(progress(shared.clone(), phase_rx.clone(), t.target_name()));

    let expect_acks = t.target == Kind::Feige || (t.target == Kind::Mqtt && t.qos > 0);
    let run_result = async {
        // A client task ends early only when it failed: stop at once and report it.
        if !super::costs::sleep_while_running(Duration::from_secs_f64(a.run.warmup), &tasks).await {
            return Ok(None);
        }
        let us = shared.epoch.elapsed().as_micros() as u64;
        shared.start_us.store(us, Ordering::Relaxed);
        let d0 = shared.delivered.load(Ordering::Relaxed);
        let a0 = shared.acked.load(Ordering::Relaxed);
        let cpu = CpuWindow::start(server);
        let m0 = Instant::now();
        if !super::costs::sleep_while_running(Duration::from_secs_f64(a.run.duration), &tasks).await
        {
            return Ok(None);
        }
        let secs = m0.elapsed().as_secs_f64();
        let d1 = shared.delivered.load(Ordering::Relaxed);
        let a1 = shared.acked.load(Ordering::Relaxed);
        let (server_cpu, gen_cpu) = cpu.percent();
        shared
            .end_us
            .store(shared.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        let _ = phase_tx.send(Phase::Drain);
        let drain0 = Instant::now();
        while drain0.elapsed() < Duration::from_secs_f64(a.run.drain) {
            let sent = shared.sent.load(Ordering::Relaxed);
            if shared.unique.load(Ordering::Relaxed) >= sent
                && (!expect_acks || shared.acked.load(Ordering::Relaxed) >= sent)
            {
                break;
            }
            if tasks.iter().any(|t| t.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(Some((secs, d1 - d0, a1 - a0, server_cpu, gen_cpu)))
    }
    .await;
    let _ = phase_tx.send(Phase::Done);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut first_err = None;
    for task in tasks {
        match task.await {
            Ok(Ok((h, l))) => {
                hist.add(&h)?;
                lag.add(&l)?;
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("client task failed: {e}"));
            }
        }
    }
    let _ = progress.await;
    if let Some(e) = first_err {
        return Err(e);
    }
    let Some((secs, delivered, acked, server_cpu, gen_cpu)) = run_result? else {
        bail!("a client stopped before the run ended");
    };
    let sent = shared.sent.load(Ordering::Relaxed);
    let unique = shared.unique.load(Ordering::Relaxed);
    let acked_total = shared.acked.load(Ordering::Relaxed);
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let mut r = t.report("im-1to1");
    r.insert("clients".into(), n.into());
    r.insert(
        "mode".into(),
        if a.rate.is_some() { "open" } else { "closed" }.into(),
    );
    r.insert(
        "window".into(),
        if a.rate.is_some() {
            Value::Null
        } else {
            a.window.into()
        },
    );
    r.insert("rate".into(), a.rate.map_or(Value::Null, r3));
    r.insert("seconds".into(), r3(secs));
    r.insert("delivered_per_s".into(), r3(delivered as f64 / secs));
    r.insert(
        "acked_per_s".into(),
        if expect_acks {
            r3(acked as f64 / secs)
        } else {
            Value::Null
        },
    );
    r.insert("p50_ms".into(), r3(q(0.5)));
    r.insert("p99_ms".into(), r3(q(0.99)));
    r.insert("p999_ms".into(), r3(q(0.999)));
    r.insert("max_ms".into(), r3(hist.max() as f64 / 1000.0));
    if a.rate.is_some() {
        r.insert(
            "send_lag_p99_ms".into(),
            r3(lag.value_at_quantile(0.99) as f64 / 1000.0),
        );
    }
    r.insert("sent".into(), sent.into());
    r.insert("lost".into(), sent.saturating_sub(unique).into());
    r.insert(
        "duplicated".into(),
        shared.duplicated.load(Ordering::Relaxed).into(),
    );
    r.insert(
        "out_of_order".into(),
        shared.out_of_order.load(Ordering::Relaxed).into(),
    );
    r.insert(
        "unacked".into(),
        if expect_acks {
            sent.saturating_sub(acked_total).into()
        } else {
            Value::Null
        },
    );
    let windows = shared.timeline.windows(secs);
    let started_ms = super::timeline::wall_ms(
        shared.epoch.into_std(),
        shared.start_us.load(Ordering::Relaxed),
    );
    let csv = a.run.timeline.as_deref().map(|p| (p, started_ms));
    super::costs::report_costs(
        &mut r,
        server_cpu,
        peak.as_ref(),
        gen_cpu,
        delivered as f64 / secs,
        &windows,
        csv,
    )?;
    Ok(r)
}

/// Whether a report broke a promise: anything lost, duplicated, out of order or unacked.
pub fn violations(r: &Map<String, Value>) -> u64 {
    ["lost", "duplicated", "out_of_order", "unacked"]
        .iter()
        .map(|k| r.get(*k).and_then(Value::as_u64).unwrap_or(0))
        .sum()
}

async fn progress(sh: Arc<Shared>, mut phase: watch::Receiver<Phase>, name: String) {
    let t0 = Instant::now();
    let mut last = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            r = phase.changed() => if r.is_err() { return; },
        }
        let p = *phase.borrow();
        if p == Phase::Done {
            return;
        }
        let d = sh.delivered.load(Ordering::Relaxed);
        eprintln!(
            "[{name}] {:>5.1}s {:?}: sent {} delivered {} (+{}) acked {}",
            t0.elapsed().as_secs_f64(),
            p,
            sh.sent.load(Ordering::Relaxed),
            d,
            d - last,
            sh.acked.load(Ordering::Relaxed)
        );
        last = d;
    }
}

#[allow(clippy::too_many_arguments)]
async fn client(
    idx: usize,
    mut s: TcpStream,
    mut buf: BytesMut,
    mut wire: Wire,
    sh: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    interval: Option<Duration>,
    id_base: u64,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let n = sh.credit.len();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut last = vec![0u64; n];
    let mut out = BytesMut::with_capacity(4096);
    let mut pay = Vec::with_capacity(128);
    let mut rng = (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next_rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut seq = 0u64;
    // Open loop: spread the clients' first sends over one interval.
    let mut next_due = interval
        .map(|iv| sh.epoch + iv.mul_f64((next_rand() % 1000) as f64 / 1000.0))
        .unwrap_or_else(|| sh.epoch + Duration::from_secs(3600 * 24));
    let me = &sh.credit[idx];
    loop {
        let ph = *phase.borrow_and_update();
        if ph == Phase::Done {
            break;
        }
        if ph == Phase::Run {
            let mut send = |ts_us: u64, out: &mut BytesMut| {
                seq += 1;
                let mut to = (next_rand() % n as u64) as usize;
                if to == idx {
                    to = (to + 1) % n;
                }
                payload(ts_us, idx, seq, &mut pay);
                wire.encode_send(to, id_base + seq, &pay, out);
            };
            match interval {
                None => {
                    let mut k = 0;
                    while me.n.load(Ordering::Acquire) > 0 {
                        me.n.fetch_sub(1, Ordering::AcqRel);
                        send(sh.epoch.elapsed().as_micros() as u64, &mut out);
                        k += 1;
                    }
                    sh.sent.fetch_add(k, Ordering::Relaxed);
                }
                Some(iv) => {
                    // Latency counts from the actual send; how late the generator sends
                    // against its schedule (tokio's timer has 1 ms steps) is reported apart
                    // as send lag, so a generator that falls behind cannot hide a stall.
                    let now = Instant::now();
                    let now_us = (now - sh.epoch).as_micros() as u64;
                    let mut k = 0;
                    while next_due <= now {
                        if now_us >= sh.start_us.load(Ordering::Relaxed) {
                            let _ = lag.record((now - next_due).as_micros() as u64 + 1);
                        }
                        send(now_us, &mut out);
                        next_due += iv;
                        k += 1;
                    }
                    sh.sent.fetch_add(k, Ordering::Relaxed);
                }
            }
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let sending = ph == Phase::Run;
        tokio::select! {
            biased;
            r = s.read_buf(&mut buf) => {
                if r? == 0 {
                    bail!("client {idx}: server closed the connection");
                }
                let start = sh.start_us.load(Ordering::Relaxed);
                let end = sh.end_us.load(Ordering::Relaxed);
                let mut now_us = None;
                let mut got = 0;
                while let Some(ev) = wire.decode(&mut buf, &mut out)? {
                    match ev {
                        Event::Delivered(p) => {
                            let Some((ts, from, sq)) = parse_payload(&p) else {
                                bail!("client {idx}: unexpected message {:?}", String::from_utf8_lossy(&p));
                            };
                            if from >= n {
                                bail!("client {idx}: message from unknown sender {from}");
                            }
                            sh.delivered.fetch_add(1, Ordering::Relaxed);
                            got += 1;
                            super::OrderCounters {
                                unique: &sh.unique,
                                duplicated: &sh.duplicated,
                                out_of_order: &sh.out_of_order,
                            }
                            .count(&mut last[from], sq);
                            if sh.closed {
                                let c = &sh.credit[from];
                                c.n.fetch_add(1, Ordering::AcqRel);
                                c.notify.notify_one();
                            }
                            if ts >= start && ts < end {
                                let now = *now_us.get_or_insert_with(|| sh.epoch.elapsed().as_micros() as u64);
                                let _ = hist.record(now.saturating_sub(ts).max(1));
                            }
                        }
                        Event::Acked => {
                            sh.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::Other => {}
                    }
                }
                if got > 0 && start != u64::MAX {
                    let now = *now_us.get_or_insert_with(|| sh.epoch.elapsed().as_micros() as u64);
                    if now >= start && now < end {
                        sh.timeline.record(now - start, got);
                    }
                }
            }
            _ = me.notify.notified(), if sending && interval.is_none() => {}
            _ = tokio::time::sleep_until(next_due), if sending && interval.is_some() => {}
            r = phase.changed() => {
                if r.is_err() {
                    break;
                }
            }
        }
    }
    Ok((hist, lag))
}
