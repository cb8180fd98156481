//! `login`: new connections per second that log in with a password (Hello, then Login: one
//! PBKDF2 verification each) and that resume with a session token (Hello carrying Resume),
//! each by `--concurrency` clients in a closed loop for `--duration` seconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bytes::BytesMut;
use feige_protocol::{pb, RequestKind, ResponseResult};
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::wire::{feige_call, feige_resume, tcp_connect, Kind};
use super::{accounts, r3, TargetArgs};

/// Settings of `login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Seconds of each of the two phases.
    #[arg(short = 'd', long, default_value_t = 5.0)]
    pub duration: f64,
    /// Clients logging in at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

async fn password_login(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<()> {
    let mut s = tcp_connect(addr, None).await?;
    let mut buf = BytesMut::new();
    let hello = pb::Hello {
        major: feige_protocol::PROTOCOL_MAJOR,
        client: "feige-bench".into(),
        ..Default::default()
    };
    feige_call(&mut s, &mut buf, 1, RequestKind::Hello(hello)).await?;
    let login = pb::Login {
        username: name.into(),
        password: accounts::PASSWORD.into(),
        device: "bench-login".into(),
    };
    match feige_call(&mut s, &mut buf, 2, RequestKind::Login(login)).await? {
        ResponseResult::Session(_) => Ok(()),
        other => bail!("unexpected answer to Login: {other:?}"),
    }
}

/// One phase: `concurrency` loops of `attempt` for `secs`; (per second, latency histogram).
async fn phase<F, Fut>(
    concurrency: usize,
    secs: f64,
    attempt: F,
) -> anyhow::Result<(f64, Histogram<u64>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let attempt = Arc::new(attempt);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut joins = Vec::new();
    for c in 0..concurrency {
        let (attempt, stop) = (attempt.clone(), stop.clone());
        joins.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                attempt(c + k * concurrency).await?;
                let _ = h.record((t.elapsed().as_micros() as u64).max(1));
                k += 1;
            }
            anyhow::Ok(h)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for j in joins {
        all.add(j.await??)?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    Ok((all.len() as f64 / elapsed, all))
}

/// Runs `login` and returns its report.
///
/// # Errors
/// Setup fails or a login fails.
pub async fn run(t: &TargetArgs, a: &LoginArgs) -> anyhow::Result<Map<String, Value>> {
    if t.target != Kind::Feige {
        bail!("login is a Feige workload");
    }
    let addr = t.addr();
    let prefix = format!("{}l", t.user_prefix);
    let n = a.concurrency.max(1) * 4;
    let accs = Arc::new(accounts::ensure(addr, &prefix, n, t.accounts.as_deref()).await?);
    eprintln!("[login] password logins for {:.0}s ...", a.duration);
    let p = prefix.clone();
    let (logins, lh) = phase(a.concurrency, a.duration, move |i| {
        let name = format!("{p}{}", i % n);
        async move { password_login(addr, &name).await }
    })
    .await?;
    eprintln!("[login] token resumes for {:.0}s ...", a.duration);
    let (resumes, rh) = phase(a.concurrency, a.duration, move |i| {
        let accs = accs.clone();
        async move {
            feige_resume(addr, None, &accs[i % accs.len()].token).await?;
            Ok(())
        }
    })
    .await?;
    let ms = |h: &Histogram<u64>, q: f64| r3(h.value_at_quantile(q) as f64 / 1000.0);
    let mut r = t.report("login");
    r.insert("concurrency".into(), a.concurrency.into());
    r.insert("logins_per_s".into(), r3(logins));
    r.insert("login_p50_ms".into(), ms(&lh, 0.5));
    r.insert("login_p99_ms".into(), ms(&lh, 0.99));
    r.insert("resumes_per_s".into(), r3(resumes));
    r.insert("resume_p50_ms".into(), ms(&rh, 0.5));
    r.insert("resume_p99_ms".into(), ms(&rh, 0.99));
    Ok(r)
}
