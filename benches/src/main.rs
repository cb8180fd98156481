//! `feige-e2e-bench`: end-to-end 1:1 throughput with persistence.
//!
//! Starts a Feige server in-process on a temporary data directory (or uses `--server`),
//! registers and logs in C clients over the wire protocol, and has each send 100-byte text
//! messages to random other clients with at most W unacked, for a fixed window after a warm-up.
//! Every message is acked only after its commit and pushed to its online recipient; the bench
//! counts acked messages, delivered pushes and end-to-end latency (send → push received), and
//! checks that every acked message was delivered exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::BytesMut;
use clap::Parser;
use feige_protocol::{frame, pb, Body, Envelope, PushKind, RequestKind, ResponseResult};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Debug, Parser)]
#[command(
    about = "Feige end-to-end 1:1 throughput benchmark (messages persisted, acked after commit)"
)]
struct Args {
    /// Connected clients.
    #[arg(short = 'c', long, default_value_t = 100)]
    clients: usize,
    /// Most unacked messages per client.
    #[arg(short = 'w', long, default_value_t = 16)]
    window: usize,
    /// Measured seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Use a running server instead of starting one in-process.
    #[arg(long)]
    server: Option<String>,
    /// Storage durability of the in-process server: process or fsync.
    #[arg(long, default_value = "process")]
    durability: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    next: u64,
}

impl Conn {
    async fn connect(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            stream,
            buf: BytesMut::new(),
            next: 1,
        };
        c.call(RequestKind::Hello(pb::Hello {
            major: 1,
            client: "feige-e2e-bench".into(),
            ..Default::default()
        }))
        .await?;
        Ok(c)
    }

    async fn call(&mut self, kind: RequestKind) -> anyhow::Result<ResponseResult> {
        let id = self.next;
        self.next += 1;
        self.stream
            .write_all(&frame::encode_to_bytes(&Envelope::request(id, kind)))
            .await?;
        loop {
            if let Some(env) = frame::decode(&mut self.buf, usize::MAX)? {
                if let (rid, Some(Body::Response(r))) = (env.request_id, env.body) {
                    if rid == id {
                        match r.result {
                            Some(ResponseResult::Error(e)) => bail!("server error: {e:?}"),
                            Some(r) => return Ok(r),
                            None => bail!("empty response"),
                        }
                    }
                }
                continue;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }
}

/// Per-run shared counters.
#[derive(Default)]
struct Stats {
    measuring: AtomicBool,
    stop: AtomicBool,
    drained: AtomicBool,
    writers_done: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    out_of_order: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients < 2 {
        bail!("need at least 2 clients");
    }
    let mut _dir = None;
    let mut server = None;
    let addr = match &args.server {
        Some(a) => a.clone(),
        None => {
            let dir = tempfile::tempdir()?;
            let config = feige_server::Config {
                listen: "127.0.0.1:0".parse()?,
                data_dir: dir.path().to_owned(),
                log: "warn".into(),
                durability: args.durability.clone(),
                ..feige_server::Config::default()
            };
            let s = feige_server::Server::bind(config).await?;
            let h = s.spawn();
            let a = h.addr().to_string();
            server = Some(h);
            _dir = Some(dir);
            a
        }
    };
    let run_id = std::process::id();
    eprintln!("setting up {} clients on {addr} ...", args.clients);
    let setup = Instant::now();
    let sem = Arc::new(Semaphore::new(8));
    let mut joins = Vec::new();
    for i in 0..args.clients {
        let addr = addr.clone();
        let sem = sem.clone();
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            let name = format!("b{run_id}x{i}");
            let mut c = Conn::connect(&addr).await?;
            let ResponseResult::Register(r) = c
                .call(RequestKind::Register(pb::Register {
                    username: name.clone(),
                    password: "bench-password".into(),
                    nickname: name.clone(),
                }))
                .await?
            else {
                bail!("unexpected register response");
            };
            c.call(RequestKind::Login(pb::Login {
                username: name,
                password: "bench-password".into(),
                device: "bench".into(),
            }))
            .await?;
            anyhow::Ok((r.user_id, c))
        }));
    }
    let mut conns = Vec::new();
    for j in joins {
        conns.push(j.await??);
    }
    eprintln!("setup took {:.1}s", setup.elapsed().as_secs_f64());
    let ids: Arc<Vec<u64>> = Arc::new(conns.iter().map(|(id, _)| *id).collect());
    let stats = Arc::new(Stats::default());
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for (idx, (_, conn)) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(client_loop(
            idx,
            conn,
            ids.clone(),
            stats.clone(),
            hist.clone(),
            args.window,
            epoch,
        )));
    }
    let cpu0 = process_cpu();
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let (a0, d0) = (
        stats.acked.load(Ordering::Relaxed),
        stats.delivered.load(Ordering::Relaxed),
    );
    stats.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let cpu_m0 = process_cpu();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_m1 = process_cpu();
    let (a1, d1) = (
        stats.acked.load(Ordering::Relaxed),
        stats.delivered.load(Ordering::Relaxed),
    );
    stats.measuring.store(false, Ordering::Relaxed);
    stats.stop.store(true, Ordering::Relaxed);
    // Let every writer stop and every sent message be acked; pushes leave with their acks, so
    // a short pause then lets them land. Then compare acks with deliveries.
    let drain_start = Instant::now();
    while (stats.writers_done.load(Ordering::Relaxed) < args.clients as u64
        || stats.acked.load(Ordering::Relaxed) < stats.sent.load(Ordering::Relaxed))
        && drain_start.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stats.drained.store(true, Ordering::Relaxed);
    let mut tails = Vec::new();
    for t in tasks {
        tails.push(t.await??);
    }
    let _ = cpu0;
    let mut lost = 0u64;
    let mut expected = HashSet::new();
    let mut got = HashSet::new();
    for (acked_ids, delivered_ids) in tails {
        expected.extend(acked_ids);
        got.extend(delivered_ids);
    }
    for id in &expected {
        if !got.contains(id) {
            lost += 1;
        }
    }
    let h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let acked_rate = (a1 - a0) as f64 / secs;
    let delivered_rate = (d1 - d0) as f64 / secs;
    let cpu_pct = (cpu_m1 - cpu_m0) / secs * 100.0;
    let dup = stats.duplicates.load(Ordering::Relaxed);
    let ooo = stats.out_of_order.load(Ordering::Relaxed);
    let (p50, p99, p999) = (
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
    );
    if args.json {
        println!(
            "{{\"workload\":\"im-1to1\",\"clients\":{},\"window\":{},\"seconds\":{secs:.2},\"acked_per_s\":{acked_rate:.0},\"delivered_per_s\":{delivered_rate:.0},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"p999_ms\":{p999:.3},\"lost\":{lost},\"duplicated\":{dup},\"out_of_order\":{ooo},\"process_cpu_pct\":{cpu_pct:.0},\"durability\":\"{}\"}}",
            args.clients, args.window, args.durability
        );
    } else {
        println!(
            "workload   im-1to1 (persisted, acked after commit, durability={})",
            args.durability
        );
        println!(
            "clients    {}  window {}  measured {secs:.1}s",
            args.clients, args.window
        );
        println!("acked      {acked_rate:.0} msgs/s");
        println!("delivered  {delivered_rate:.0} msgs/s");
        println!("latency    p50 {p50:.3} ms  p99 {p99:.3} ms  p99.9 {p999:.3} ms  (send -> push received)");
        println!("checks     lost {lost}  duplicated {dup}  out of order {ooo}");
        println!("cpu        {cpu_pct:.0}% of one core (server and generator share this process)");
    }
    if let Some(h) = server {
        h.shutdown().await;
    }
    if lost > 0 || dup > 0 || ooo > 0 {
        bail!("lost {lost}, duplicated {dup}, out of order {ooo}");
    }
    Ok(())
}

/// CPU seconds used by this process so far (from /proc), 0 where unavailable.
fn process_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
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
    // utime and stime are fields 14 and 15 of the stat line (11 and 12 after the command).
    (ticks(11) + ticks(12)) / 100.0
}

/// One client: a writer keeping `window` messages unacked and a reader counting acks and
/// pushes. Returns the ids it got acked and the ids it received.
async fn client_loop(
    idx: usize,
    conn: Conn,
    ids: Arc<Vec<u64>>,
    stats: Arc<Stats>,
    hist: Arc<Mutex<Histogram<u64>>>,
    window: usize,
    epoch: Instant,
) -> anyhow::Result<(Vec<u64>, Vec<u64>)> {
    let Conn {
        stream,
        mut buf,
        mut next,
    } = conn;
    let (mut rd, mut wr) = stream.into_split();
    let permits = Arc::new(Semaphore::new(window));
    let writer_permits = permits.clone();
    let writer_stats = stats.clone();
    let n = ids.len();
    let me = ids[idx];
    let writer = tokio::spawn(async move {
        let mut rng = (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut out = BytesMut::new();
        let mut client_id = 1u64;
        while !writer_stats.stop.load(Ordering::Relaxed) {
            let Ok(p) = writer_permits.acquire().await else {
                break;
            };
            p.forget();
            if writer_stats.stop.load(Ordering::Relaxed) {
                break;
            }
            // Fill the window in one write.
            let mut batch = 1;
            while let Ok(p) = writer_permits.try_acquire() {
                p.forget();
                batch += 1;
            }
            for _ in 0..batch {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut to = ids[(rng % n as u64) as usize];
                if to == me {
                    to = ids[(idx + 1) % n];
                }
                let sent_us = epoch.elapsed().as_micros() as u64;
                // 100-byte body: the send time, then padding.
                let text = format!("{sent_us:020}{}", "x".repeat(80));
                let env = Envelope::request(
                    next,
                    RequestKind::SendMessage(pb::SendMessage {
                        to_user: to,
                        client_msg_id: client_id,
                        text,
                        ..Default::default()
                    }),
                );
                next += 1;
                client_id += 1;
                frame::encode(&env, &mut out);
                writer_stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            wr.write_all(&out).await?;
            out.clear();
        }
        writer_stats.writers_done.fetch_add(1, Ordering::Relaxed);
        // Hand the write half back: dropping it would half-close the socket.
        anyhow::Ok(wr)
    });
    let mut acked_ids = Vec::new();
    let mut delivered = Vec::new();
    let mut last_seq: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    loop {
        while let Some(env) = frame::decode(&mut buf, usize::MAX)? {
            match env.body {
                Some(Body::Response(r)) => match r.result {
                    Some(ResponseResult::Send(ok)) => {
                        permits.add_permits(1);
                        stats.acked.fetch_add(1, Ordering::Relaxed);
                        acked_ids.push(ok.message_id);
                    }
                    Some(ResponseResult::Error(e)) => bail!("send failed: {e:?}"),
                    _ => {}
                },
                Some(Body::Push(pb::Push {
                    kind: Some(PushKind::Kicked(k)),
                })) => bail!("client {idx} kicked: {k:?}"),
                Some(Body::Push(pb::Push {
                    kind: Some(PushKind::Message(m)),
                })) => {
                    let now_us = epoch.elapsed().as_micros() as u64;
                    if let Ok(sent) = m.text.get(..20).unwrap_or("").parse::<u64>() {
                        if stats.measuring.load(Ordering::Relaxed) {
                            if let Ok(mut h) = hist.lock() {
                                let _ = h.record(now_us.saturating_sub(sent).max(1));
                            }
                        }
                    }
                    // Own sends take seqs in the same conversation too, so gaps are normal;
                    // a repeat is a duplicate and a step back is disorder.
                    let last = last_seq.entry(m.conversation_id).or_insert(0);
                    if m.seq == *last {
                        stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    } else if m.seq < *last {
                        stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                    }
                    *last = (*last).max(m.seq);
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    delivered.push(m.message_id);
                }
                _ => {}
            }
        }
        if stats.drained.load(Ordering::Relaxed) {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) => bail!("client {idx}: server closed the connection"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e).context("read"),
            Err(_) => {}
        }
    }
    let wr = writer.await??;
    drop(wr);
    Ok((acked_ids, delivered))
}
