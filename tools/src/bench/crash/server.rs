//! The `feige-server` process under test: started on a data directory, its address read from
//! its output; and the temporary data directory of a run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The server process and its address.
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
}

/// Starts `bin` on `dir` at a port of its choosing (with `--config config` when given), and
/// reads the address it listens on from its first line of output.
pub(super) async fn start(bin: &Path, dir: &Path, config: Option<&Path>) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "off",
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
    if let Some(c) = config {
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

/// A temporary data directory under the system's, removed on drop (kept after a failure).
pub(super) struct TempDir(pub(super) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TempDir {
    pub(super) fn new() -> anyhow::Result<TempDir> {
        let d = std::env::temp_dir().join(format!("feige-crash-loop-{}", std::process::id()));
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        Ok(TempDir(d))
    }
}
