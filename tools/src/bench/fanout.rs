//! `fanout`: S senders post 100-byte messages to one group of G receivers, each of whom gets
//! every message: a Feige group (persisted, acked after commit), an MQTT topic `g/0` or a NATS
//! subject `g.0` with G subscribers.
//!
//! Closed loop: each sender keeps at most W messages in flight, where a message leaves flight
//! when all G receivers have it. Every delivery is checked per receiver against its sender's
//! sequence (lost, duplicated, out of order); deliveries are counted per 50 ms window
//! ([`super::timeline`]) for the longest stall.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
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
use super::wire::{parse_payload, payload, Dest, Event, Kind, Subscription, Wire};
use super::{accounts, connect_subscribed, group, r3, TargetArgs};

/// Settings of `fanout`.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub run: super::costs::WindowArgs,
    /// Receivers: the group's members besides the senders (G).
    #[arg(short = 'g', long, default_value_t = 100)]
    pub members: usize,
    /// Senders (S), each also a member of the Feige group.
    #[arg(short = 's', long, default_value_t = 1)]
    pub senders: usize,
    /// Most messages per sender in flight (sent, not yet received by every receiver).
    #[arg(short = 'w', long, default_value_t = 16)]
    pub window: usize,
}

#[derive(Debug)]
struct Sender {
    credit: AtomicI64,
    notify: Notify,
    /// Receivers that have message `seq`, at slot `seq % window`: at most `window` messages of
    /// a sender are in flight, so the slots of those in flight are distinct.
    arrived: Vec<AtomicU32>,
}

#[derive(Debug)]
struct Shared {
    senders: Vec<Sender>,
    receivers: u32,
    epoch: Instant,
    start_us: AtomicU64,
    end_us: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    unique: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
    timeline: Timeline,
}

impl Shared {
    fn order(&self) -> super::OrderCounters<'_> {
        super::OrderCounters {
            unique: &self.unique,
            duplicated: &self.duplicated,
            out_of_order: &self.out_of_order,
        }
    }

    /// Receiver side: one more receiver has `seq` of sender `from`; the last one returns the
    /// sender's credit.
    fn arrived(&self, from: usize, seq: u64) {
        let s = &self.senders[from];
        let slot = &s.arrived[(seq % s.arrived.len() as u64) as usize];
        if slot.fetch_add(1, Ordering::AcqRel) + 1 == self.receivers {
            slot.store(0, Ordering::Release);
            s.credit.fetch_add(1, Ordering::AcqRel);
            s.notify.notify_one();
        }
    }
}

/// Runs `fanout` and returns its report.
///
/// # Errors
/// Setup fails, a client is kicked or sees a protocol error.
pub async fn run(t: &TargetArgs, a: &FanoutArgs) -> anyhow::Result<Map<String, Value>> {
    let (s_count, g_count) = (a.senders.max(1), a.members.max(1));
    let n = s_count + g_count;
    let run_id = std::process::id();
    let addr = t.addr();
    let accounts = if t.target == Kind::Feige {
        accounts::ensure(addr, &t.user_prefix, n, t.accounts.as_deref()).await?
    } else {
        Vec::new()
    };
    let ids = Arc::new(accounts.iter().map(|a| a.user_id).collect::<Vec<_>>());
    let conv = if t.target == Kind::Feige {
        eprintln!("making a group of {n} members ...");
        group::make(addr, &accounts).await?
    } else {
        0
    };
    let server = t.server_proc();
    let peak = server.map(PeakRss::start);
    eprintln!(
        "connecting {s_count} senders and {g_count} receivers to {} at {addr} ...",
        t.target_name()
    );
    let sem = Arc::new(Semaphore::new(a.run.connect_concurrency.max(1)));
    let accounts = Arc::new(accounts);
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let (t, sem, accounts, ids) = (t.clone(), sem.clone(), accounts.clone(), ids.clone());
        let sub = if i < s_count {
            Subscription::Own
        } else {
            Subscription::Group
        };
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            connect_subscribed(&t, i, &accounts, &ids, run_id, sub)
                .await
                .with_context(|| format!("client {i}"))
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for j in joins {
        conns.push(j.await??);
    }
    let window = a.window.max(1);
    let shared = Arc::new(Shared {
        senders: (0..s_count)
            .map(|_| Sender {
                credit: AtomicI64::new(window as i64),
                notify: Notify::new(),
                arrived: (0..window).map(|_| AtomicU32::new(0)).collect(),
            })
            .collect(),
        receivers: u32::try_from(g_count).context("too many receivers")?,
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
    let id_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
        << 8;
    let mut tasks = Vec::with_capacity(n);
    for (idx, (s, buf, wire)) in conns.into_iter().enumerate() {
        let (sh, ph) = (shared.clone(), phase_rx.clone());
        tasks.push(if idx < s_count {
            tokio::spawn(sender(idx, s, buf, wire, sh, ph, conv, id_base))
        } else {
            tokio::spawn(receiver(s, buf, wire, sh, ph))
        });
    }
    let expect_acks = t.target == Kind::Feige || (t.target == Kind::Mqtt && t.qos > 0);
    let g = u64::from(shared.receivers);
    let run_result = async {
        if !super::costs::sleep_while_running(Duration::from_secs_f64(a.run.warmup), &tasks).await {
            return Ok(None);
        }
        let us = shared.epoch.elapsed().as_micros() as u64;
        shared.start_us.store(us, Ordering::Relaxed);
        let d0 = shared.delivered.load(Ordering::Relaxed);
        let cpu = CpuWindow::start(server);
        let m0 = Instant::now();
        if !super::costs::sleep_while_running(Duration::from_secs_f64(a.run.duration), &tasks).await
        {
            return Ok(None);
        }
        let secs = m0.elapsed().as_secs_f64();
        let d1 = shared.delivered.load(Ordering::Relaxed);
        let (server_cpu, gen_cpu) = cpu.percent();
        let end = shared.epoch.elapsed().as_micros() as u64;
        shared.end_us.store(end, Ordering::Relaxed);
        let _ = phase_tx.send(Phase::Drain);
        let drain0 = Instant::now();
        while drain0.elapsed() < Duration::from_secs_f64(a.run.drain) {
            let sent = shared.sent.load(Ordering::Relaxed);
            if shared.unique.load(Ordering::Relaxed) >= sent * g
                && (!expect_acks || shared.acked.load(Ordering::Relaxed) >= sent)
            {
                break;
            }
            if tasks.iter().any(|t| t.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(Some((secs, d1 - d0, server_cpu, gen_cpu)))
    }
    .await;
    let _ = phase_tx.send(Phase::Done);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut first_err = None;
    for task in tasks {
        match task.await {
            Ok(Ok(h)) => hist.add(&h)?,
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("client task failed: {e}"));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let Some((secs, delivered, server_cpu, gen_cpu)) = run_result? else {
        bail!("a client stopped before the run ended");
    };
    let sent = shared.sent.load(Ordering::Relaxed);
    let q = |p: f64| r3(hist.value_at_quantile(p) as f64 / 1000.0);
    let mut r = t.report("fanout");
    r.insert("senders".into(), s_count.into());
    r.insert("members".into(), g_count.into());
    r.insert("window".into(), window.into());
    r.insert("seconds".into(), r3(secs));
    let per_s = delivered as f64 / secs;
    r.insert("delivered_per_s".into(), r3(per_s));
    r.insert("messages_per_s".into(), r3(per_s / g as f64));
    r.insert("p50_ms".into(), q(0.5));
    r.insert("p99_ms".into(), q(0.99));
    r.insert("p999_ms".into(), q(0.999));
    r.insert("max_ms".into(), r3(hist.max() as f64 / 1000.0));
    r.insert("sent".into(), sent.into());
    let unique = shared.unique.load(Ordering::Relaxed);
    r.insert("lost".into(), (sent * g).saturating_sub(unique).into());
    let count = |c: &AtomicU64| Value::from(c.load(Ordering::Relaxed));
    r.insert("duplicated".into(), count(&shared.duplicated));
    r.insert("out_of_order".into(), count(&shared.out_of_order));
    let acked = shared.acked.load(Ordering::Relaxed);
    r.insert(
        "unacked".into(),
        if expect_acks {
            sent.saturating_sub(acked).into()
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
        per_s,
        &windows,
        csv,
    )?;
    Ok(r)
}

/// A sender: posts to the group while it has credit, counts its acks.
#[allow(clippy::too_many_arguments)]
async fn sender(
    idx: usize,
    mut s: TcpStream,
    mut buf: BytesMut,
    mut wire: Wire,
    sh: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    conv: u64,
    id_base: u64,
) -> anyhow::Result<Histogram<u64>> {
    let me = &sh.senders[idx];
    let (mut out, mut pay, mut seq) = (BytesMut::with_capacity(4096), Vec::new(), 0u64);
    loop {
        let ph = *phase.borrow_and_update();
        if ph == Phase::Done {
            break;
        }
        if ph == Phase::Run {
            let mut k = 0;
            while me.credit.load(Ordering::Acquire) > 0 {
                me.credit.fetch_sub(1, Ordering::AcqRel);
                seq += 1;
                payload(sh.epoch.elapsed().as_micros() as u64, idx, seq, &mut pay);
                wire.encode_to(Dest::Group(conv), id_base + seq, &pay, &mut out);
                k += 1;
            }
            sh.sent.fetch_add(k, Ordering::Relaxed);
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        buf.reserve(4096);
        tokio::select! {
            biased;
            r = s.read_buf(&mut buf) => {
                if r? == 0 {
                    bail!("sender {idx}: server closed the connection");
                }
                while let Some(ev) = wire.decode(&mut buf, &mut out)? {
                    if matches!(ev, Event::Acked) {
                        sh.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = me.notify.notified(), if ph == Phase::Run => {}
            r = phase.changed() => if r.is_err() { break; },
        }
    }
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// A receiver: checks every delivery against its sender's sequence, records its latency.
async fn receiver(
    mut s: TcpStream,
    mut buf: BytesMut,
    mut wire: Wire,
    sh: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut last = vec![0u64; sh.senders.len()];
    let mut out = BytesMut::new();
    loop {
        if *phase.borrow_and_update() == Phase::Done {
            break;
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        buf.reserve(16 * 1024);
        tokio::select! {
            biased;
            r = s.read_buf(&mut buf) => {
                if r? == 0 {
                    bail!("receiver: server closed the connection");
                }
                let (start, end) = (sh.start_us.load(Ordering::Relaxed), sh.end_us.load(Ordering::Relaxed));
                let now = sh.epoch.elapsed().as_micros() as u64;
                let mut got = 0;
                while let Some(ev) = wire.decode(&mut buf, &mut out)? {
                    let Event::Delivered(p) = ev else { continue };
                    let Some((ts, from, sq)) = parse_payload(&p) else {
                        bail!("receiver: unexpected message {:?}", String::from_utf8_lossy(&p));
                    };
                    if from >= last.len() {
                        bail!("receiver: message from unknown sender {from}");
                    }
                    sh.delivered.fetch_add(1, Ordering::Relaxed);
                    got += 1;
                    if sh.order().count(&mut last[from], sq) {
                        sh.arrived(from, sq);
                    }
                    if ts >= start && ts < end {
                        let _ = hist.record(now.saturating_sub(ts).max(1));
                    }
                }
                if got > 0 && now >= start && now < end {
                    sh.timeline.record(now - start, got);
                }
            }
            r = phase.changed() => if r.is_err() { break; },
        }
    }
    Ok(hist)
}
