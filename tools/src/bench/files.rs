//! `files`: file transfer throughput and chat latency under a transfer.
//!
//! Throughput: one client (the Rust SDK, SHA-256 included: hashing before the upload,
//! checking after the download) uploads a file of `--size-mb` MB of fresh bytes, then
//! downloads it; the same bytes are then copied over loopback by two `socat` processes (a
//! plain copy, file to socket to file), the ceiling. Latency: a second and third client chat
//! (one message every 1/`--chat-rate` s, sender to receiver, end to end) first with nothing
//! else running, then while the first client uploads `--busy-mb` MB on its own connection:
//! from the server's answer to its `UploadBegin` (the SDK hashes the file before it, which is
//! the uploading machine's work, not a transfer) to the end of the upload.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use feige_client::{CancellationToken, Client, ClientConfig, Event, Events};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::procstat::Proc;
use super::{accounts, r3, TargetArgs};

/// Settings of `files`.
#[derive(Debug, Clone, clap::Args)]
pub struct FilesArgs {
    /// Size of the file uploaded and downloaded for throughput, in MB (10^6 bytes).
    #[arg(long, default_value_t = 100)]
    pub size_mb: u64,
    /// Size of the file uploaded while chat latency is measured, in MB; 0 skips latency.
    #[arg(long, default_value_t = 1000)]
    pub busy_mb: u64,
    /// Chat messages per second while latency is measured (200: ~350 messages during a
    /// 1 GB upload, so that its p99 is not just the slowest one or two).
    #[arg(long, default_value_t = 200)]
    pub chat_rate: u32,
    /// Seconds of chat measured with no transfer running.
    #[arg(long, default_value_t = 5.0)]
    pub idle_secs: f64,
    /// The socat program for the ceiling; when it cannot run, the ratios are left out.
    #[arg(long, default_value = "socat")]
    pub socat: String,
    /// Directory for the files [default: a temporary one].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run the chat's clients on the bench's runtime, beside the uploader, instead of on a
    /// thread and runtime of their own.
    #[arg(long)]
    pub shared_runtime: bool,
    /// Write each chat message's latency to this CSV (`phase,index,ms`; phase `idle` or
    /// `busy`, index in send order), to see when in the transfer the slow ones fall.
    #[arg(long)]
    pub latencies: Option<PathBuf>,
}

/// Bytes of one MB.
const MB: u64 = 1_000_000;

/// Runs `files` and returns its report.
///
/// # Errors
/// Setup, a transfer, or the socat copy fails.
pub async fn run(t: &TargetArgs, a: &FilesArgs) -> anyhow::Result<Map<String, Value>> {
    let addr = t.addr();
    let accounts = accounts::ensure(addr, &t.user_prefix, 3, t.accounts.as_deref()).await?;
    let tmp = match &a.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let mut r = t.report("files");
    r.insert("size_mb".into(), a.size_mb.into());
    r.insert("busy_mb".into(), a.busy_mb.into());

    let (mover, _mover_events) = connect(t, &accounts[0].token).await?;
    let src = tmp.path().join("payload.bin");
    let size = a.size_mb * MB;
    make_file(&src, size).await?;

    let server = t.server_proc();
    let me = Proc(None);
    let cpu = |p: &Option<Proc>| p.as_ref().map(Proc::cpu_seconds);
    let (s0, c0) = (cpu(&server), me.cpu_seconds());
    let t0 = Instant::now();
    let cancel = CancellationToken::new();
    let up = mover
        .upload_file(
            &src,
            Some("application/octet-stream"),
            None,
            |_| {},
            &cancel,
        )
        .await
        .context("upload")?;
    let up_s = t0.elapsed().as_secs_f64();
    if up.deduplicated {
        bail!("the server already held these bytes; the upload measured nothing");
    }
    let (s1, c1) = (cpu(&server), me.cpu_seconds());
    let dst = tmp.path().join("downloaded.bin");
    let t0 = Instant::now();
    let got = mover
        .download_file(up.file.file_id, &dst, 0, 0, |_| {}, &cancel)
        .await
        .context("download")?;
    let down_s = t0.elapsed().as_secs_f64();
    let (s2, c2) = (cpu(&server), me.cpu_seconds());
    // Where the time went: CPU seconds of the client (this process) and of the server.
    r.insert("upload_client_cpu_s".into(), r3(c1 - c0));
    r.insert("download_client_cpu_s".into(), r3(c2 - c1));
    if let (Some(s0), Some(s1), Some(s2)) = (s0, s1, s2) {
        r.insert("upload_server_cpu_s".into(), r3(s1 - s0));
        r.insert("download_server_cpu_s".into(), r3(s2 - s1));
    }
    if got.size != size {
        bail!("downloaded {} bytes of {size}", got.size);
    }
    std::fs::remove_file(&dst)?;
    let mb = size as f64 / MB as f64;
    let (up_rate, down_rate) = (mb / up_s, mb / down_s);
    r.insert("upload_mb_s".into(), r3(up_rate));
    r.insert("download_mb_s".into(), r3(down_rate));
    match socat_copy(&a.socat, &src, &dst, size).await {
        Ok(secs) => {
            let ceiling = mb / secs;
            r.insert("socat_mb_s".into(), r3(ceiling));
            r.insert("upload_ratio".into(), r3(up_rate / ceiling));
            r.insert("download_ratio".into(), r3(down_rate / ceiling));
        }
        Err(e) => eprintln!("files: no socat ceiling ({e:#}); ratios left out"),
    }
    let _ = std::fs::remove_file(&dst);
    let _ = std::fs::remove_file(&src);

    if a.busy_mb > 0 {
        latency(t, a, &accounts, &mover, tmp.path(), &mut r).await?;
    }
    mover.close().await;
    Ok(r)
}

/// A client resumed with `token` (syncing, so pushes are delivered as events).
async fn connect(t: &TargetArgs, token: &[u8]) -> anyhow::Result<(Client, Events)> {
    let mut config = ClientConfig::new(t.addr().to_string());
    config.device = "bench-files".into();
    config.request_timeout = Duration::from_secs(30);
    let (client, events) = Client::connect(config).await?;
    client.resume(token).await.context("resume")?;
    Ok((client, events))
}

/// Writes `size` fresh pseudo-random bytes to `path` (fresh each run, so the server cannot
/// deduplicate them) and syncs them.
async fn make_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let mut x = (seed ^ u64::from(std::process::id()) << 32) | 1;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        let mut block = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            for word in block.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes());
            }
            let n = left.min(block.len() as u64) as usize;
            out.write_all(&block[..n])?;
            left -= n as u64;
        }
        // On disk before anything is measured: the kernel's writeback of the bench's own
        // file would otherwise run during the measurement, on the same cores and disk.
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    })
    .await?
}

/// Copies `src` to `dst` through a loopback TCP connection between two socat processes;
/// returns the seconds from starting the sender to both having exited.
async fn socat_copy(socat: &str, src: &Path, dst: &Path, size: u64) -> anyhow::Result<f64> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut receiver = tokio::process::Command::new(socat)
        .arg("-u")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"))
        .arg(format!("CREATE:{}", dst.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {socat}"))?;
    // The sender retries until the receiver listens; give it a moment first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let sender = tokio::process::Command::new(socat)
        .arg("-u")
        .arg(format!("OPEN:{},rdonly", src.display()))
        .arg(format!("TCP:127.0.0.1:{port},retry=100,interval=0.02"))
        .stdout(Stdio::null())
        .status()
        .await?;
    let received = tokio::time::timeout(Duration::from_secs(120), receiver.wait()).await??;
    let secs = t0.elapsed().as_secs_f64();
    if !sender.success() || !received.success() {
        bail!("socat failed (sender {sender}, receiver {received})");
    }
    let copied = std::fs::metadata(dst)?.len();
    if copied != size {
        bail!("socat copied {copied} bytes of {size}");
    }
    Ok(secs)
}

/// Chat latency idle, then while `mover` uploads `--busy-mb` MB; adds the percentiles and
/// their ratio to `r`. The chat's two clients run on their own single-threaded runtime (an
/// OS thread of their own) unless `--shared-runtime`: the uploader stands for another
/// machine, so its framing and hashing should not delay the chat's tasks inside this process.
async fn latency(
    t: &TargetArgs,
    a: &FilesArgs,
    accounts: &[accounts::Account],
    mover: &Client,
    dir: &Path,
    r: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    // The busy upload's file is made (and synced) first, so that neither window has its
    // writeback running.
    let big = dir.join("busy.bin");
    let busy_size = a.busy_mb * MB;
    make_file(&big, busy_size).await?;
    let chat_rt = ChatRuntime::start(a.shared_runtime)?;
    let (t2, sender_token, receiver_token) = (
        t.clone(),
        accounts[1].token.clone(),
        accounts[2].token.clone(),
    );
    let mut pair = chat_rt
        .run(async move {
            let (sender, sender_events) = connect(&t2, &sender_token).await?;
            let (receiver, inbox) = connect(&t2, &receiver_token).await?;
            anyhow::Ok(ChatPair {
                sender,
                _sender_events: sender_events,
                receiver,
                inbox,
            })
        })
        .await?;
    let to = accounts[2].user_id;
    let every = Duration::from_secs_f64(1.0 / f64::from(a.chat_rate.max(1)));
    let idle_until = Instant::now() + Duration::from_secs_f64(a.idle_secs);
    let idle;
    (idle, pair) = chat_rt
        .run(async move {
            let v = chat(&pair.sender, &mut pair.inbox, to, every, async move {
                tokio::time::sleep_until(idle_until).await;
            })
            .await?;
            anyhow::Ok((v, pair))
        })
        .await?;

    let (mover2, path) = (mover.clone(), big.clone());
    // The first progress report comes with the answer to UploadBegin, after the SDK's hashing.
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
    let mut begun_tx = Some(begun_tx);
    let transfer = tokio::spawn(async move {
        let t0 = Instant::now();
        let cancel = CancellationToken::new();
        let begun = move |_| {
            if let Some(tx) = begun_tx.take() {
                let _ = tx.send(());
            }
        };
        mover2
            .upload_file(&path, None, None, begun, &cancel)
            .await
            .map(|_| t0.elapsed().as_secs_f64())
    });
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let busy_chat = chat_rt.run(async move {
        // An upload that fails before it begins ends the run below; its chat is then empty.
        let _ = begun_rx.await;
        let v = chat(&pair.sender, &mut pair.inbox, to, every, async move {
            let _ = done_rx.await;
        })
        .await?;
        anyhow::Ok((v, pair))
    });
    let watcher = async move {
        let r = transfer.await;
        let _ = done_tx.send(());
        r
    };
    let (busy, upload) = tokio::join!(busy_chat, watcher);
    let (busy, pair) = busy?;
    let busy_secs = upload?.context("upload during chat")?;
    let _ = std::fs::remove_file(&big);
    chat_rt
        .run(async move {
            pair.sender.close().await;
            pair.receiver.close().await;
            anyhow::Ok(())
        })
        .await?;

    if let Some(path) = &a.latencies {
        let mut csv = String::from("phase,index,ms\n");
        for (phase, v) in [("idle", &idle), ("busy", &busy)] {
            for (i, ms) in v.iter().enumerate() {
                csv.push_str(&format!("{phase},{i},{ms:.3}\n"));
            }
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    let (ip50, ip99) = (pct(&idle, 0.50), pct(&idle, 0.99));
    let (bp50, bp99) = (pct(&busy, 0.50), pct(&busy, 0.99));
    r.insert("chat_messages_idle".into(), idle.len().into());
    r.insert("chat_messages_busy".into(), busy.len().into());
    r.insert("idle_p50_ms".into(), r3(ip50));
    r.insert("idle_p99_ms".into(), r3(ip99));
    r.insert("busy_p50_ms".into(), r3(bp50));
    r.insert("busy_p99_ms".into(), r3(bp99));
    r.insert(
        "busy_upload_mb_s".into(),
        r3(busy_size as f64 / MB as f64 / busy_secs),
    );
    r.insert(
        "p99_ratio".into(),
        if ip99 > 0.0 {
            r3(bp99 / ip99)
        } else {
            Value::Null
        },
    );
    r.insert("chat_runtime".into(), chat_rt.kind().into());
    Ok(())
}

/// The chat's two clients: the sender, and the receiver with its events.
struct ChatPair {
    sender: Client,
    _sender_events: Events,
    receiver: Client,
    inbox: Events,
}

/// Where the chat's tasks run: the bench's own runtime, or a single-threaded runtime on an
/// OS thread of its own (stopped when this is dropped).
struct ChatRuntime {
    own: Option<(
        tokio::runtime::Handle,
        Option<tokio::sync::oneshot::Sender<()>>,
    )>,
}

impl ChatRuntime {
    /// The bench's runtime when `shared`, else a new thread with its own runtime.
    fn start(shared: bool) -> anyhow::Result<ChatRuntime> {
        if shared {
            return Ok(ChatRuntime { own: None });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("bench-chat".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
            })?;
        Ok(ChatRuntime {
            own: Some((handle, Some(stop_tx))),
        })
    }

    /// Runs `fut` on the chat's runtime and waits for it.
    async fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        match &self.own {
            Some((handle, _)) => handle.spawn(fut).await?,
            None => fut.await,
        }
    }

    /// "own" or "shared", for the report.
    fn kind(&self) -> &'static str {
        if self.own.is_some() {
            "own"
        } else {
            "shared"
        }
    }
}

impl Drop for ChatRuntime {
    fn drop(&mut self) {
        if let Some((_, stop)) = &mut self.own {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

/// Sends a message every `every` from `sender` to user `to` until `stop` completes, and
/// returns each one's latency (sent → received by `inbox`) in ms, once all have arrived.
async fn chat(
    sender: &Client,
    inbox: &mut Events,
    to: u64,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Vec<f64>> {
    let tag = format!("lat-{}-", std::process::id());
    let mut sent: Vec<Instant> = Vec::new();
    let mut got: Vec<Option<f64>> = Vec::new();
    let mut arrived = 0usize;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let mut stopped = false;
    let mut grace = Instant::now() + Duration::from_secs(3600);
    loop {
        if stopped && arrived == sent.len() {
            break;
        }
        tokio::select! {
            () = &mut stop, if !stopped => {
                stopped = true;
                grace = Instant::now() + Duration::from_secs(10);
            }
            _ = tick.tick(), if !stopped => {
                let text = format!("{tag}{}", sent.len());
                sent.push(Instant::now());
                got.push(None);
                let c = sender.clone();
                tokio::spawn(async move { c.send_text(to, &text).await });
            }
            ev = inbox.recv() => {
                let Some(ev) = ev else { bail!("the receiving client closed") };
                if let Event::Message(m) = ev {
                    let i = m.text.strip_prefix(&tag).and_then(|n| n.parse::<usize>().ok());
                    if let Some(i) = i.filter(|&i| i < sent.len() && got[i].is_none()) {
                        got[i] = Some(sent[i].elapsed().as_secs_f64() * 1000.0);
                        arrived += 1;
                    }
                }
            }
            () = tokio::time::sleep_until(grace), if stopped => {
                bail!("{} of {} chat messages did not arrive", sent.len() - arrived, sent.len());
            }
        }
    }
    Ok(got.into_iter().flatten().collect())
}

/// The `q` quantile of `v` (nearest rank), 0 for none.
fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::pct;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), 50.0);
        assert_eq!(pct(&v, 0.99), 99.0);
        assert_eq!(pct(&[3.0], 0.99), 3.0);
        assert_eq!(pct(&[], 0.5), 0.0);
    }
}
