//! `im-1to1 --ws HOST:PORT`: `im-1to1` over the WebSocket gateway. C clients, one account
//! each, resume their session on `ws://HOST:PORT/ws` and each keep W messages in flight (sent,
//! not yet received) to random other clients; the same closed loop as over TCP, so the two
//! figures stand side by side. Messages carry their send time and sender in the text.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::costs::Phase;
use super::procstat::CpuWindow;
use super::{accounts, r3, TargetArgs};

#[derive(Debug, Default)]
struct Credit {
    n: AtomicI64,
    notify: Notify,
}

#[derive(Debug)]
struct Shared {
    credit: Vec<Credit>,
    ids: Vec<u64>,
    epoch: Instant,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
}

/// Runs `im-1to1` over WebSocket at `http` and returns its report.
///
/// # Errors
/// Setup fails, or a client is refused or closed.
pub async fn run(
    t: &TargetArgs,
    a: &super::im::ImArgs,
    http: std::net::SocketAddr,
) -> anyhow::Result<Map<String, Value>> {
    let n = a.clients;
    if n < 2 {
        bail!("need at least 2 clients");
    }
    let accounts = accounts::ensure(t.addr(), &t.user_prefix, n, t.accounts.as_deref()).await?;
    eprintln!("connecting {n} WebSocket clients to {http} ...");
    let sem = Arc::new(Semaphore::new(a.run.connect_concurrency.max(1)));
    let mut joins = Vec::with_capacity(n);
    for acc in &accounts {
        let (sem, token) = (sem.clone(), hex(&acc.token));
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            connect(http, &token).await
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for (i, j) in joins.into_iter().enumerate() {
        conns.push(j.await?.with_context(|| format!("client {i}"))?);
    }
    let shared = Arc::new(Shared {
        credit: (0..n)
            .map(|_| Credit {
                n: AtomicI64::new(a.window as i64),
                notify: Notify::new(),
            })
            .collect(),
        ids: accounts.iter().map(|a| a.user_id).collect(),
        epoch: Instant::now(),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let (hist_tx, mut hist_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for (idx, ws) in conns.into_iter().enumerate() {
        let (shared, phase, hist) = (shared.clone(), phase_rx.clone(), hist_tx.clone());
        tasks.push(tokio::spawn(client(idx, ws, shared, phase, hist)));
    }
    drop(hist_tx);
    tokio::time::sleep(Duration::from_secs_f64(a.run.warmup)).await;
    let start_us = shared.epoch.elapsed().as_micros() as u64;
    let d0 = shared.delivered.load(Ordering::Relaxed);
    let cpu = CpuWindow::start(t.server_proc());
    let m0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.run.duration)).await;
    let secs = m0.elapsed().as_secs_f64();
    let delivered = shared.delivered.load(Ordering::Relaxed) - d0;
    let end_us = shared.epoch.elapsed().as_micros() as u64;
    let (server_cpu, _) = cpu.percent();
    let _ = phase_tx.send(Phase::Drain);
    let drain0 = Instant::now();
    while drain0.elapsed() < Duration::from_secs_f64(a.run.drain)
        && shared.delivered.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = phase_tx.send(Phase::Done);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        task.await??;
    }
    while let Some((sent_us, lat)) = hist_rx.recv().await {
        if (start_us..end_us).contains(&sent_us) {
            hist.record(lat.max(1))?;
        }
    }
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let mut r = t.report("im-1to1");
    r.insert("target".into(), "feige-ws".into());
    if t.label.is_none() {
        r.insert("label".into(), "feige-ws".into());
    }
    r.insert("transport".into(), "websocket".into());
    r.insert("clients".into(), n.into());
    r.insert("window".into(), a.window.into());
    r.insert("delivered_per_s".into(), r3(delivered as f64 / secs));
    r.insert("latency_p50_ms".into(), r3(q(0.5)));
    r.insert("latency_p99_ms".into(), r3(q(0.99)));
    let sent = shared.sent.load(Ordering::Relaxed);
    r.insert("sent".into(), sent.into());
    let acked = shared.acked.load(Ordering::Relaxed);
    r.insert("acked".into(), acked.into());
    r.insert("unacked".into(), sent.saturating_sub(acked).into());
    let lost = sent.saturating_sub(shared.delivered.load(Ordering::Relaxed));
    r.insert("lost".into(), lost.into());
    r.insert("server_cpu_pct".into(), server_cpu.map_or(Value::Null, r3));
    Ok(r)
}

/// `idle --ws`: N WebSocket connections, one account each, logged in and then silent but
/// for a heartbeat every 10 s; the server's RSS per connection as `idle` computes it.
/// `hold` is in seconds; `concurrency` connections are opened at once.
pub(super) async fn idle(
    t: &TargetArgs,
    (n, hold, concurrency): (usize, f64, usize),
    http: std::net::SocketAddr,
    accounts: Vec<accounts::Account>,
) -> anyhow::Result<Map<String, Value>> {
    let server = t.server_proc();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = server.map(|p| p.rss());
    eprintln!("opening {n} idle WebSocket connections to {http} ...");
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t0 = Instant::now();
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let acc = accounts
            .get(i % accounts.len().max(1))
            .context("no accounts")?;
        let (sem, token, mut stop) = (sem.clone(), hex(&acc.token), stop_rx.clone());
        let (up_tx, up_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let ws = {
                let _p = sem.acquire().await?;
                connect(http, &token).await?
            };
            let _ = up_tx.send(());
            let (mut sink, mut stream) = ws.split();
            let mut beat = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        let hb = json!({ "seq": "hb", "cmd": "heartbeat" });
                        sink.send(Message::text(hb.to_string())).await?;
                    }
                    msg = stream.next() => match msg {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => bail!("closed by the server"),
                    },
                    _ = stop.changed() => return Ok(()),
                }
            }
        });
        joins.push((up_rx, task));
    }
    let mut tasks = Vec::with_capacity(n);
    for (i, (up, task)) in joins.into_iter().enumerate() {
        if up.await.is_err() {
            let e = task
                .await?
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("ended"));
            return Err(e.context(format!("connection {i}")));
        }
        tasks.push(task);
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    eprintln!("{n} connected in {connect_secs:.1}s; holding {hold:.0}s");
    let hold_end = Instant::now() + Duration::from_secs_f64(hold.max(1.0));
    let mut peak = 0u64;
    while Instant::now() < hold_end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(p) = server {
            peak = peak.max(p.rss());
        }
        if let Some(done) = tasks.iter().position(tokio::task::JoinHandle::is_finished) {
            let e = tasks.swap_remove(done).await?.err();
            let e = e.unwrap_or_else(|| anyhow::anyhow!("ended"));
            return Err(e.context("a connection ended while held"));
        }
    }
    let rss1 = server.map(|p| p.rss());
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let mut r = t.report("idle");
    r.insert("transport".into(), "websocket".into());
    r.insert("connections".into(), n.into());
    r.insert("users".into(), accounts.len().into());
    r.insert("connect_seconds".into(), r3(connect_secs));
    super::rss_report(&mut r, rss0, rss1.map(|e| e.max(peak)), n);
    Ok(r)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A WebSocket logged in with `token`.
async fn connect(http: std::net::SocketAddr, token: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws")).await?;
    let login =
        json!({ "seq": "login", "cmd": "login", "data": { "token": token, "device": "bench-ws" } });
    ws.send(Message::text(login.to_string())).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(t) = msg? {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["seq"] == "login" {
                if v["response"]["code"] != 200 {
                    bail!("login refused: {v}");
                }
                return Ok(ws);
            }
        }
    }
    bail!("closed before the login answer")
}

/// One client: sends while it has credit and the run is on, reads answers and pushes.
async fn client(
    idx: usize,
    ws: Ws,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    hist: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = ws.split();
    let n = shared.ids.len();
    let mut rng = (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut seq = 0u64;
    let mut last_heartbeat = Instant::now();
    loop {
        let credit = &shared.credit[idx];
        while *phase.borrow() == Phase::Run && credit.n.load(Ordering::Relaxed) > 0 {
            credit.n.fetch_sub(1, Ordering::Relaxed);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut to = (rng % n as u64) as usize;
            if to == idx {
                to = (to + 1) % n;
            }
            seq += 1;
            let now = shared.epoch.elapsed().as_micros();
            let mut text = format!("{now}:{idx}:{seq}:");
            text.extend(std::iter::repeat_n(
                'x',
                100usize.saturating_sub(text.len()),
            ));
            let req = json!({
                "seq": seq.to_string(),
                "cmd": "send_message",
                "data": { "to_user": shared.ids[to].to_string(), "text": text },
            });
            sink.feed(Message::text(req.to_string())).await?;
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
        if last_heartbeat.elapsed() > Duration::from_secs(10) {
            last_heartbeat = Instant::now();
            let hb = json!({ "seq": "hb", "cmd": "heartbeat" });
            sink.feed(Message::text(hb.to_string())).await?;
        }
        sink.flush().await?;
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { bail!("client {idx}: closed") };
                let Message::Text(t) = msg? else { continue };
                let v: Value = serde_json::from_str(t.as_str())?;
                if v["cmd"] == "push" {
                    let data = &v["response"]["data"];
                    if data["type"] != "message" {
                        continue;
                    }
                    let text = data["text"].as_str().unwrap_or_default();
                    let mut parts = text.split(':');
                    let sent_us: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                    let from: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(usize::MAX);
                    let now = shared.epoch.elapsed().as_micros() as u64;
                    let _ = hist.send((sent_us, now.saturating_sub(sent_us)));
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    if let Some(c) = shared.credit.get(from) {
                        c.n.fetch_add(1, Ordering::Relaxed);
                        c.notify.notify_one();
                    }
                } else if v["seq"] == "hb" {
                    continue;
                } else if v["response"]["code"] == 200 {
                    shared.acked.fetch_add(1, Ordering::Relaxed);
                } else {
                    bail!("client {idx}: refused: {v}");
                }
            }
            () = credit.notify.notified(), if *phase.borrow() == Phase::Run => {}
            r = phase.changed() => {
                if r.is_err() || *phase.borrow() == Phase::Done {
                    return Ok(());
                }
            }
        }
    }
}
