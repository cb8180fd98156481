//! `crash-loop`: runs the real `feige-server` binary under `im-1to1`-style load (C senders,
//! each pipelining W sends to the next client, every `client_msg_id` recorded), SIGKILLs it at a
//! random moment, restarts it on the same data directory and checks through History that every
//! acked message is stored exactly once, with the seq it was acked with, in send order, that
//! each conversation's seqs are gapless, and that Sync from seq 0 gives the same messages. Then
//! every unacked message is resent with its same `client_msg_id` along with new ones. After the
//! last round the unacked ones are resent until acked, and every message ever sent must be
//! stored exactly once.

mod sender;
mod server;
mod verify;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use feige_protocol::{frame, pb, Body, Envelope, RequestKind, ResponseResult};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::accounts::{self, Account};
use super::wire::feige_resume;
use sender::Sender;
use server::{start, TempDir};
use verify::verify_all;

/// Settings of `crash-loop`.
#[derive(Debug, Clone, clap::Args)]
pub struct CrashArgs {
    /// The `feige-server` binary [default: `feige-server` next to this program].
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Data directory, kept afterwards [default: a temporary directory, removed on success].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// TOML config file for the server (`--config`); `--dm-policy anyone` is always passed.
    #[arg(long)]
    pub server_config: Option<PathBuf>,
    /// SIGKILLs (and restarts).
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
    /// Sending clients; client i sends to client i+1.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub clients: usize,
    /// Sends per client in flight (written, not yet acked).
    #[arg(short = 'w', long, default_value_t = 32)]
    pub window: usize,
    /// Shortest load before a kill, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub min_ms: u64,
    /// Longest load before a kill, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub max_ms: u64,
    /// Seed of the kill times [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One sender's connection for one round: resends its pending messages in order, then (when
/// `fresh`) new ones, W in flight, until the server dies; without `fresh`, until every pending
/// message is acked. Returns the record, updated.
async fn send_round(
    addr: SocketAddr,
    mut s: Sender,
    window: usize,
    fresh: bool,
) -> anyhow::Result<Sender> {
    let (mut sock, mut buf) = match feige_resume(addr, None, &s.token).await {
        Ok(c) => c,
        // Under load the server may be killed before this client connected.
        Err(_) if fresh => return Ok(s),
        Err(e) => return Err(e.context(format!("user {} resumes", s.me))),
    };
    let mut queue: VecDeque<u64> = s.pending.iter().copied().collect();
    let resends = queue.len() as u64;
    let mut in_flight: HashMap<u64, u64> = HashMap::new();
    let mut next_rid = 100u64;
    let mut out = BytesMut::new();
    let mut written = 0u64;
    loop {
        while in_flight.len() < window {
            let cmid = match queue.pop_front() {
                Some(c) => c,
                None if fresh => {
                    s.last_cmid += 1;
                    s.pending.insert(s.last_cmid);
                    s.last_cmid
                }
                None => break,
            };
            written += 1;
            in_flight.insert(next_rid, cmid);
            let env = Envelope::request(
                next_rid,
                RequestKind::SendMessage(pb::SendMessage {
                    to_user: s.to,
                    client_msg_id: cmid,
                    text: format!("crash-loop {} {cmid}", s.me),
                    ..Default::default()
                }),
            );
            next_rid += 1;
            frame::encode(&env, &mut out);
        }
        if in_flight.is_empty() {
            break;
        }
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
        // Read until at least one ack frees a slot (pushes from the previous client are skipped).
        let before = in_flight.len();
        let mut dead = false;
        while in_flight.len() == before {
            match frame::decode(&mut buf, usize::MAX)? {
                Some(env) => {
                    let Some(Body::Response(r)) = env.body else {
                        continue;
                    };
                    let Some(cmid) = in_flight.remove(&env.request_id) else {
                        continue;
                    };
                    match r.result {
                        Some(ResponseResult::Send(ok)) => s.ack(cmid, &ok)?,
                        Some(ResponseResult::Error(e)) => bail!(
                            "the server refused message {cmid} of user {}: {} {} (give it a \
                             config that allows this load with --server-config)",
                            s.me,
                            pb::ErrorCode::try_from(e.code).map_or("UNKNOWN", |c| c.as_str_name()),
                            e.message
                        ),
                        other => bail!("unexpected answer to a send: {other:?}"),
                    }
                }
                None => match sock.read_buf(&mut buf).await {
                    Ok(n) if n > 0 => {}
                    _ => {
                        dead = true;
                        break;
                    }
                },
            }
        }
        if dead {
            break;
        }
    }
    s.resent += resends.min(written);
    Ok(s)
}

/// Starts one load phase: a task per sender.
fn load(
    addr: SocketAddr,
    senders: Vec<Sender>,
    window: usize,
    fresh: bool,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Sender>>> {
    senders
        .into_iter()
        .map(|s| tokio::spawn(send_round(addr, s, window, fresh)))
        .collect()
}

async fn join(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Sender>>>,
) -> anyhow::Result<Vec<Sender>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.context("sender task")??);
    }
    Ok(out)
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// Runs the crash loop and returns its report.
///
/// # Errors
/// A violation (lost, duplicated, reordered or moved message, a gap in seqs), the server
/// refusing a send, exiting on its own, or not starting.
pub async fn run(a: &CrashArgs) -> anyhow::Result<Map<String, Value>> {
    if a.clients < 2 {
        bail!("need at least 2 clients");
    }
    let bin = match &a.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the program's directory")?
            .join("feige-server"),
    };
    match &a.data_dir {
        Some(d) => run_in(a, &bin, d).await,
        None => {
            let tmp = TempDir::new()?;
            // Created by the server, with the permissions it wants.
            let result = run_in(a, &bin, &tmp.0.join("data")).await;
            if result.is_err() {
                eprintln!("crash-loop: data directory kept: {}", tmp.0.display());
                std::mem::forget(tmp);
            }
            result
        }
    }
}

async fn run_in(a: &CrashArgs, bin: &Path, dir: &Path) -> anyhow::Result<Map<String, Value>> {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    let mut rng = seed;
    eprintln!(
        "crash-loop: {} kills, {} clients, window {}, seed {seed}, data in {}",
        a.rounds,
        a.clients,
        a.window,
        dir.display()
    );
    let mut p = start(bin, dir, a.server_config.as_deref()).await?;
    let accounts: Vec<Account> = accounts::ensure(p.addr, "crash", a.clients, None).await?;
    let n = accounts.len();
    let mut senders: Vec<Sender> = (0..n)
        .map(|i| Sender {
            me: accounts[i].user_id,
            to: accounts[(i + 1) % n].user_id,
            token: accounts[i].token.clone(),
            ..Default::default()
        })
        .collect();
    let t0 = Instant::now();
    let mut kills = Vec::new();
    for round in 1..=a.rounds {
        let span = a.max_ms.saturating_sub(a.min_ms) + 1;
        let after = Duration::from_millis(a.min_ms + xorshift(&mut rng) % span);
        let tasks = load(p.addr, senders, a.window, true);
        tokio::time::sleep(after).await;
        if let Some(status) = p.child.try_wait()? {
            bail!("the server exited on its own during round {round}: {status}");
        }
        p.child.start_kill().context("SIGKILL the server")?;
        p.child.wait().await?;
        senders = join(tasks).await?;
        p = start(bin, dir, a.server_config.as_deref()).await?;
        let stored = verify_all(p.addr, &senders, false).await?;
        let pending: usize = senders.iter().map(|s| s.pending.len()).sum();
        let acked: usize = senders.iter().map(|s| s.acked.len()).sum();
        eprintln!(
            "round {round}/{}: killed after {} ms; {stored} stored, {acked} acked, {pending} \
             unacked to resend: ok",
            a.rounds,
            after.as_millis()
        );
        kills.push(after.as_millis() as u64);
    }
    // Resend whatever is still unacked, until every message is acked; then all must be stored.
    senders = join(load(p.addr, senders, a.window, false)).await?;
    let stored = verify_all(p.addr, &senders, true).await?;
    p.child.start_kill()?;
    p.child.wait().await?;
    let sent: u64 = senders.iter().map(|s| s.last_cmid).sum();
    let resent: u64 = senders.iter().map(|s| s.resent).sum();
    eprintln!("crash-loop: {sent} messages sent, {resent} resends, all stored exactly once");
    let mut r = Map::new();
    r.insert("workload".into(), "crash-loop".into());
    r.insert("kills".into(), a.rounds.into());
    r.insert("clients".into(), n.into());
    r.insert("window".into(), a.window.into());
    r.insert("seed".into(), seed.into());
    r.insert("sent".into(), sent.into());
    r.insert("resent".into(), resent.into());
    r.insert("stored".into(), stored.into());
    r.insert("seconds".into(), super::r3(t0.elapsed().as_secs_f64()));
    Ok(r)
}
