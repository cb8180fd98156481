//! `feige-server`: runs the Feige IM server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use feige_server::config::{DmPolicy, Durability, LogLevel};
use feige_server::{Config, Server};

/// Feige (飞鸽) instant-messaging server: framed protobuf over TCP, SQLite storage.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on [default: 0.0.0.0:7900].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the HTTP listener (WebSocket, HTTP API, admin, metrics); "off" or ""
    /// disables it [default: 0.0.0.0:7901].
    #[arg(long, env = "FEIGE_HTTP_LISTEN", value_parser = http_listen)]
    http_listen: Option<HttpListen>,
    /// Directory for the SQLite database; created if missing [default: ./feige-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML config file; any key of the config (see README). Flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, value_enum)]
    log: Option<LogLevel>,
    /// Commit durability: "process" (survives a server crash) or "fsync" (survives power loss)
    /// [default: process].
    #[arg(long, value_enum)]
    durability: Option<Durability>,
    /// Who may send 1:1 messages: "friends" (only friends) or "anyone" [default: friends].
    #[arg(long, value_enum)]
    dm_policy: Option<DmPolicy>,
    /// Addresses exempt from the abuse limits, comma-separated (replaces `trusted_addrs`).
    #[arg(long, env = "FEIGE_TRUSTED_ADDRS", value_delimiter = ',')]
    trusted_addrs: Option<Vec<std::net::IpAddr>>,
    /// Scheduler slice, in microseconds, that the threads chat messages wait on (the reactor,
    /// the storage writer, the router) ask Linux 6.12+ for, so that they preempt bulk work
    /// when they wake; 0 leaves the kernel's default.
    #[arg(long, env = "FEIGE_LATENCY_SLICE_US", default_value_t = 100)]
    latency_slice_us: u64,
}

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
enum Command {
    /// Copies the databases of a data directory (the server may be running on it) with
    /// SQLite's online backup API into a directory; see docs/admin.md for the restore.
    Backup {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Where the copies go (created 0700; files of the same names there are replaced).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The `--http-listen` value: an address, or none.
#[derive(Debug, Clone)]
struct HttpListen(Option<SocketAddr>);

fn http_listen(value: &str) -> Result<HttpListen, String> {
    feige_server::config::parse_http_listen(value).map(HttpListen)
}

/// Threads for blocking work: SQLite reads, which share a pool of 4 reader connections, and
/// password hashing, which is CPU-bound. More threads would only wait; with tokio's default of
/// 512 a burst of logins started hundreds of them, each holding its stack.
const MAX_BLOCKING_THREADS: usize = 16;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Backup { data_dir, out }) = &args.command {
        let report = feige_storage::backup::backup(data_dir, out)?;
        println!(
            "backed up {} ({} bytes) into {}",
            report.databases.join(", "),
            report.bytes,
            report.dir.display()
        );
        return Ok(());
    }
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.http_listen {
        config.http_listen = v.0;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.log {
        config.log = v;
    }
    if let Some(v) = args.durability {
        config.durability = v;
    }
    if let Some(v) = args.dm_policy {
        config.dm_policy = v;
    }
    if let Some(v) = args.trusted_addrs {
        config.trusted_addrs = v;
    }
    config.validate()?;
    let level = tracing::Level::from(config.log);
    feige_server::logs::install(level, config.log_ring_lines, config.log_ring_bytes, true);
    // Common server practice: use the whole open-file limit the system grants (the hard
    // limit); `max_connections` = 0 then follows it.
    let nofile = feige_server::limits::raise_fd_limit();
    tracing::info!(?nofile, "open-file limit");
    feige_server::sched::set_latency_slice(std::time::Duration::from_micros(args.latency_slice_us));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("feige-io")
        .on_thread_start(feige_server::sched::prefer_latency)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, "feige-server listening");
        // Scripts and tests read this line to learn the port when listening on port 0.
        println!("listening on {addr}");
        if let Some(http) = server.http_addr() {
            tracing::info!(%http, "HTTP listener (WebSocket at /ws)");
            // After the line above, so scripts that read only the first line keep working.
            println!("http listening on {http}");
        }
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
