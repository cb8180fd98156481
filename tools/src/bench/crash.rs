//! `crash-loop`: runs the real `feige-server` binary under `im-1to1`-style load (C senders,
//! each pipelining W sends to the next client, every `client_msg_id` recorded), SIGKILLs it at a
//! random moment, restarts it on the same data directory and checks through History that every
//! acked message is stored exactly once, with the seq it was acked with, in send order, that
//! each conversation's seqs are gapless, and that Sync from seq 0 gives the same messages. Then
//! every unacked message is resent with its same `client_msg_id` along with new ones. After the
//! last round the unacked ones are resent until acked, and every message ever sent must be
//! stored exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use feige_protocol::{frame, pb, Body, Envelope, RequestKind, ResponseResult};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::accounts::{self, Account};
use super::wire::{feige_call, feige_resume};

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

/// The server process and its address.
struct Proc {
    child: Child,
    addr: SocketAddr,
}

async fn start(a: &CrashArgs, bin: &Path, dir: &Path) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--log",
        "warn",
        "--dm-policy",
        "anyone",
    ])
    .arg("--data-dir")
    .arg(dir)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .kill_on_drop(true);
    // Every client comes from loopback and sends as fast as it is acked: exempt it from the
    // abuse limits (connections per address, registrations, send rate) unless told otherwise.
    if std::env::var_os("FEIGE_TRUSTED_ADDRS").is_none() {
        cmd.env("FEIGE_TRUSTED_ADDRS", "127.0.0.1");
    }
    if let Some(c) = &a.server_config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let mut lines = BufReader::new(child.stdout.take().context("server stdout")?).lines();
    // Log lines (a warning, say) may come before the address.
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                return addr.parse().context("the server's address");
            }
            eprintln!("server: {line}");
        }
        bail!("the server exited before printing its address")
    })
    .await
    .context("the server did not print its address within 60 s")??;
    // Keep reading, so that the server never blocks on a full stdout pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("server: {line}");
        }
    });
    Ok(Proc { child, addr })
}

/// One sender's record, kept across rounds.
#[derive(Debug, Default)]
struct Sender {
    /// Its user id and the recipient's.
    me: u64,
    to: u64,
    token: Vec<u8>,
    /// The last client_msg_id used (ids start at 1: 0 turns deduplication off).
    last_cmid: u64,
    /// Sent, never acked, in send order.
    pending: BTreeSet<u64>,
    /// Acked: client_msg_id -> (conversation, seq).
    acked: HashMap<u64, (u64, u64)>,
    /// Resends written (pending messages sent again after a restart).
    resent: u64,
}

/// A broken promise: the run fails with this text.
#[derive(Debug)]
struct Violation(String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

fn violation(text: String) -> anyhow::Error {
    Violation(text).into()
}

impl Sender {
    /// Records the ack of `cmid`; an ack that contradicts an earlier one is a violation.
    fn ack(&mut self, cmid: u64, ok: &pb::SendOk) -> anyhow::Result<()> {
        self.pending.remove(&cmid);
        let now = (ok.conversation_id, ok.seq);
        if let Some(was) = self.acked.insert(cmid, now) {
            if was != now {
                return Err(violation(format!(
                    "user {} message {cmid}: acked as (conversation, seq) {was:?}, then {now:?}",
                    self.me
                )));
            }
        }
        Ok(())
    }
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

/// Every message of the 1:1 conversation of `s.me` and `s.to`, ascending by seq.
async fn history(addr: SocketAddr, s: &Sender) -> anyhow::Result<Vec<pb::Message>> {
    let (mut sock, mut buf) = feige_resume(addr, None, &s.token)
        .await
        .context("resume for the check")?;
    let mut all = Vec::new();
    let mut before = 0;
    let mut rid = 10;
    loop {
        rid += 1;
        let r = feige_call(
            &mut sock,
            &mut buf,
            rid,
            RequestKind::History(pb::History {
                peer_user: s.to,
                limit: 200,
                before_seq: before,
                ..Default::default()
            }),
        )
        .await
        .context("History")?;
        let ResponseResult::History(page) = r else {
            bail!("unexpected answer to History: {r:?}");
        };
        let Some(last) = page.messages.last() else {
            break;
        };
        before = last.seq;
        all.extend(page.messages);
        if before <= 1 {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

/// Checks what the store holds for sender `s`. With `complete`, every message it ever sent must
/// be there. Returns how many of its messages are stored.
async fn verify(addr: SocketAddr, s: &Sender, complete: bool) -> anyhow::Result<usize> {
    let stored = history(addr, s).await?;
    let mine = check(&stored, s, complete)?;
    if let Some(first) = stored.first() {
        let synced = sync(addr, s, first.conversation_id).await?;
        let key = |m: &pb::Message| (m.seq, m.from_user, m.client_msg_id);
        if synced.len() != stored.len() || !synced.iter().map(key).eq(stored.iter().map(key)) {
            return Err(violation(format!(
                "conversation {} of users {} and {}: Sync from seq 0 gives {} messages, History \
                 {}, or they differ",
                first.conversation_id,
                s.me,
                s.to,
                synced.len(),
                stored.len()
            )));
        }
    }
    Ok(mine)
}

/// Every message of `conversation` through Sync from seq 0, page by page, ascending.
async fn sync(addr: SocketAddr, s: &Sender, conversation: u64) -> anyhow::Result<Vec<pb::Message>> {
    let (mut sock, mut buf) = feige_resume(addr, None, &s.token)
        .await
        .context("resume for the check")?;
    // The device never acks, so Sync also pages through the user's other conversation from
    // seq 0: every conversation seen is listed with its position.
    let mut positions: BTreeMap<u64, u64> = BTreeMap::from([(conversation, 0)]);
    let mut out = Vec::new();
    for rid in 10.. {
        let r = feige_call(
            &mut sock,
            &mut buf,
            rid,
            RequestKind::Sync(pb::Sync {
                positions: positions
                    .iter()
                    .map(|(&conversation_id, &seq)| pb::ConversationPosition {
                        conversation_id,
                        seq,
                    })
                    .collect(),
                limit: 1000,
            }),
        )
        .await
        .context("Sync")?;
        let ResponseResult::Sync(page) = r else {
            bail!("unexpected answer to Sync: {r:?}");
        };
        for m in page.messages {
            let at = positions.entry(m.conversation_id).or_insert(0);
            *at = (*at).max(m.seq);
            if m.conversation_id == conversation {
                out.push(m);
            }
        }
        if !page.has_more {
            break;
        }
    }
    Ok(out)
}

/// The checks of [`verify`] on a conversation's messages (ascending by seq).
fn check(stored: &[pb::Message], s: &Sender, complete: bool) -> anyhow::Result<usize> {
    let me = s.me;
    for (i, m) in stored.iter().enumerate() {
        if m.seq != i as u64 + 1 {
            return Err(violation(format!(
                "conversation of users {me} and {}: seq {} at position {} (seqs not gapless: {:?})",
                s.to,
                m.seq,
                i + 1,
                stored.iter().map(|m| m.seq).take(i + 2).collect::<Vec<_>>()
            )));
        }
    }
    let mine: Vec<&pb::Message> = stored.iter().filter(|m| m.from_user == me).collect();
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut last_cmid = 0;
    for m in &mine {
        let cmid = m.client_msg_id;
        if let Some(seq) = seen.insert(cmid, m.seq) {
            return Err(violation(format!(
                "user {me} message {cmid} stored twice: seqs {seq} and {}",
                m.seq
            )));
        }
        if cmid == 0 || cmid > s.last_cmid {
            return Err(violation(format!(
                "user {me}: stored message {cmid} was never sent (last sent {})",
                s.last_cmid
            )));
        }
        if cmid <= last_cmid {
            return Err(violation(format!(
                "user {me}: message {cmid} stored at seq {} after message {last_cmid}: \
                 not in send order",
                m.seq
            )));
        }
        last_cmid = cmid;
    }
    for (cmid, (conv, seq)) in &s.acked {
        match stored.get((*seq as usize).wrapping_sub(1)) {
            Some(m)
                if m.client_msg_id == *cmid && m.from_user == me && m.conversation_id == *conv => {}
            other => {
                return Err(violation(format!(
                    "user {me} message {cmid} was acked as seq {seq} of conversation {conv} but \
                     the store holds {}",
                    other.map_or("nothing there".to_owned(), |m| format!(
                        "message {} of user {} in conversation {}",
                        m.client_msg_id, m.from_user, m.conversation_id
                    ))
                )));
            }
        }
    }
    if complete && (mine.len() as u64 != s.last_cmid || !s.pending.is_empty()) {
        return Err(violation(format!(
            "user {me}: sent {} messages, {} stored, {} never acked",
            s.last_cmid,
            mine.len(),
            s.pending.len()
        )));
    }
    Ok(mine.len())
}

async fn verify_all(addr: SocketAddr, senders: &[Sender], complete: bool) -> anyhow::Result<u64> {
    let mut stored = 0;
    for s in senders {
        stored += verify(addr, s, complete).await? as u64;
    }
    Ok(stored)
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
    let mut p = start(a, bin, dir).await?;
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
        p = start(a, bin, dir).await?;
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

/// A temporary data directory under the system's, removed on drop (kept after a failure).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let d = std::env::temp_dir().join(format!("feige-crash-loop-{}", std::process::id()));
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        Ok(TempDir(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, from: u64, cmid: u64) -> pb::Message {
        pb::Message {
            conversation_id: 9,
            seq,
            from_user: from,
            client_msg_id: cmid,
            ..Default::default()
        }
    }

    /// User 1 sent 1..=4 to user 2; 1..=3 acked at seqs 1..=3 (seq 2 is user 2's message).
    fn sender() -> Sender {
        let mut s = Sender {
            me: 1,
            to: 2,
            last_cmid: 4,
            ..Default::default()
        };
        s.pending.insert(4);
        s.acked.insert(1, (9, 1));
        s.acked.insert(2, (9, 3));
        s.acked.insert(3, (9, 4));
        s
    }

    fn good() -> Vec<pb::Message> {
        vec![msg(1, 1, 1), msg(2, 2, 1), msg(3, 1, 2), msg(4, 1, 3)]
    }

    fn fails(stored: &[pb::Message], complete: bool, what: &str) {
        let e = check(stored, &sender(), complete).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }

    #[test]
    fn a_consistent_store_passes() {
        assert_eq!(check(&good(), &sender(), false).unwrap(), 3);
        let mut all = good();
        all.push(msg(5, 1, 4));
        let mut s = sender();
        s.pending.clear();
        s.acked.insert(4, (9, 5));
        assert_eq!(check(&all, &s, true).unwrap(), 4);
    }

    #[test]
    fn every_violation_is_caught() {
        let mut gap = good();
        gap[3].seq = 5;
        fails(&gap, false, "not gapless");
        let mut lost = good();
        lost.pop();
        fails(&lost, false, "acked as seq 4");
        let mut twice = good();
        twice.push(msg(5, 1, 3));
        fails(&twice, false, "stored twice");
        let mut reordered = good();
        reordered[2].client_msg_id = 3;
        reordered[3].client_msg_id = 2;
        fails(&reordered, false, "not in send order");
        let mut unknown = good();
        unknown.push(msg(5, 1, 77));
        fails(&unknown, false, "never sent");
        // Complete: message 4 was never stored or acked.
        fails(&good(), true, "never acked");
    }

    #[test]
    fn a_contradicting_ack_is_caught() {
        let mut s = sender();
        let ok = pb::SendOk {
            conversation_id: 9,
            seq: 7,
            ..Default::default()
        };
        assert!(s.ack(3, &ok).is_err());
        assert!(s.ack(4, &ok).is_ok());
        assert!(s.pending.is_empty());
    }
}
