//! `idle`: N logged-in (MQTT: subscribed) connections that do nothing; the server's RSS per
//! connection is (RSS with them − RSS before) / N. Connections are spread over `--sources`
//! loopback source addresses so a machine with a higher open-file limit can go past one
//! address's ephemeral ports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::procstat::Proc;
use super::wire::{Kind, Wire};
use super::{accounts, connect_client, r3, TargetArgs};

/// Settings of `idle`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Idle connections to open.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub connections: usize,
    /// Feige accounts the connections log in as (connection i resumes account i mod users)
    /// [default: one account per connection].
    #[arg(long)]
    pub users: Option<usize>,
    /// Seconds to hold the connections after the last one is up.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Feige only: open WebSocket connections to the gateway at this HTTP address
    /// (`ws://ADDR/ws`, logged in with each account's token) instead of TCP ones.
    #[arg(long)]
    pub ws: Option<std::net::SocketAddr>,
}

/// Runs `idle` and returns its report.
///
/// # Errors
/// Setup fails or the server closes connections.
pub async fn run(t: &TargetArgs, a: &IdleArgs) -> anyhow::Result<Map<String, Value>> {
    let n = a.connections;
    let addr = t.addr();
    let accounts = if t.target == Kind::Feige {
        accounts::ensure(
            addr,
            &t.user_prefix,
            a.users.unwrap_or(n).clamp(1, n.max(1)),
            t.accounts.as_deref(),
        )
        .await?
    } else {
        Vec::new()
    };
    if let Some(http) = a.ws {
        let shape = (n, a.hold, a.connect_concurrency);
        return super::ws::idle(t, shape, http, accounts).await;
    }
    let server = t.server_proc();
    // Let the server settle (allocator caches after account setup) before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = server.map(|p| p.rss());
    let gen0 = Proc(None).rss();
    eprintln!(
        "opening {n} idle connections to {} at {addr} from {} source address(es) ...",
        t.target_name(),
        t.sources.max(1)
    );
    let run_id = std::process::id();
    let ids = Arc::new(accounts.iter().map(|a| a.user_id).collect::<Vec<_>>());
    let accounts = Arc::new(accounts);
    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let t0 = Instant::now();
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let (t, sem, accounts, ids) = (t.clone(), sem.clone(), accounts.clone(), ids.clone());
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            connect_client(&t, i, &accounts, &ids, run_id)
                .await
                .with_context(|| format!("connection {i}"))
        }));
    }
    let mut conns = Vec::with_capacity(n);
    let mut out = BytesMut::new();
    let mut next_beat = Instant::now() + Duration::from_secs(10);
    for (i, j) in joins.into_iter().enumerate() {
        conns.push(j.await??);
        // On a loaded machine connecting can outlast the server's idle timeout: keep the
        // connections already open alive (heartbeats, NATS pings) while the rest connect.
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + Duration::from_secs(10);
            for (k, (s, buf, wire)) in conns.iter_mut().enumerate() {
                service(s, buf, wire, &mut out, true).with_context(|| format!("connection {k}"))?;
            }
        }
        if (i + 1) % 2000 == 0 {
            eprintln!(
                "  {} / {n} connected ({:.1}s)",
                i + 1,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{n} connected in {connect_secs:.1}s; holding {:.0}s",
        a.hold
    );
    // Hold: answer NATS pings, send Feige heartbeats, notice closed connections.
    let hold_end = Instant::now() + Duration::from_secs_f64(a.hold.max(1.0));
    let mut peak = 0u64;
    next_beat = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(p) = server {
            peak = peak.max(p.rss());
        }
        let beat = Instant::now() >= next_beat;
        if beat {
            next_beat += Duration::from_secs(10);
        }
        for (i, (s, buf, wire)) in conns.iter_mut().enumerate() {
            service(s, buf, wire, &mut out, beat).with_context(|| format!("connection {i}"))?;
        }
        if Instant::now() >= hold_end {
            break;
        }
    }
    let rss1 = server.map(|p| p.rss());
    let gen1 = Proc(None).rss();
    drop(conns);
    let mut r = t.report("idle");
    r.insert("connections".into(), n.into());
    if t.target == Kind::Feige {
        r.insert("users".into(), accounts.len().into());
    }
    r.insert("sources".into(), t.sources.max(1).into());
    r.insert("connect_seconds".into(), r3(connect_secs));
    r.insert("connects_per_s".into(), r3(n as f64 / connect_secs));
    super::rss_report(&mut r, rss0, rss1.map(|e| e.max(peak)), n);
    r.insert(
        "generator_rss_per_conn_bytes".into(),
        r3(gen1.saturating_sub(gen0) as f64 / n.max(1) as f64),
    );
    Ok(r)
}

/// Reads whatever arrived without blocking and writes heartbeats/replies.
fn service(
    s: &tokio::net::TcpStream,
    buf: &mut BytesMut,
    wire: &mut Wire,
    out: &mut BytesMut,
    beat: bool,
) -> anyhow::Result<()> {
    out.clear();
    let mut chunk = [0u8; 4096];
    loop {
        match s.try_read(&mut chunk) {
            Ok(0) => bail!("closed by the server"),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e.into()),
        }
    }
    while wire.decode(buf, out)?.is_some() {}
    if buf.is_empty() {
        *buf = BytesMut::new();
    }
    if beat {
        wire.heartbeat(out);
    }
    if !out.is_empty() {
        // A few bytes into an idle socket's empty send buffer: never blocks in practice.
        let k = s.try_write(out)?;
        if k < out.len() {
            bail!("heartbeat did not fit the send buffer");
        }
    }
    Ok(())
}
