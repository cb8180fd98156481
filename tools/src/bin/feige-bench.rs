//! `feige-bench`: load harness for Feige, mosquitto and nats-server. See BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use feige_tools::bench::{self, crash, fanout, history, idle, im, login, sync, TargetArgs};

/// Load generator for Feige and, side by side, MQTT (mosquitto) and core NATS (nats-server).
#[derive(Debug, Parser)]
#[command(name = "feige-bench", version, about)]
struct Cli {
    /// Generator threads.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    /// Exit non-zero when a message was lost, duplicated, out of order or unacked.
    #[arg(long, global = true)]
    check: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 1:1 messages between C clients, closed loop (window W) or open loop (--rate).
    #[command(name = "im-1to1")]
    Im1to1 {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        args: im::ImArgs,
    },
    /// S senders post to one group of G receivers (a Feige group, an MQTT topic, a NATS
    /// subject), closed loop (window W).
    Fanout {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        args: fanout::FanoutArgs,
    },
    /// N logged-in idle connections: server RSS per connection.
    Idle {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        args: idle::IdleArgs,
    },
    /// Time for an offline user to sync K messages spread over M conversations.
    Sync {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        args: sync::SyncArgs,
    },
    /// History page and full-text search latency on a large store (filled when needed).
    History {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        args: history::HistoryArgs,
    },
    /// Password logins per second and token resumes per second.
    Login {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        args: login::LoginArgs,
    },
    /// Register and log in N Feige bench accounts and cache their tokens (`--accounts`),
    /// sending nothing: the seed store that benches/scripts/seed.sh keeps.
    Seed {
        #[command(flatten)]
        target: TargetArgs,
        /// Accounts to have (the ones already cached are kept).
        #[arg(short = 'n', long, default_value_t = 1000)]
        users: usize,
    },
    /// SIGKILL a real feige-server under load, restart it, check every acked message is kept.
    #[command(name = "crash-loop")]
    CrashLoop {
        #[command(flatten)]
        args: crash::CrashArgs,
    },
    /// Medians and Feige-to-peer ratios of JSON reports (one per line), as Markdown.
    Summary {
        /// Files of JSON reports.
        files: Vec<PathBuf>,
    },
}

/// A running workload and its report.
type Workload<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = anyhow::Result<serde_json::Map<String, serde_json::Value>>>
            + 'a,
    >,
>;

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain on one line; no backtrace (this is a user's error, not a bug).
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `feige-bench seed`: the bench accounts, created where missing, and a report of them.
async fn seed(
    t: &TargetArgs,
    users: usize,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    if t.target != bench::wire::Kind::Feige {
        bail!("seed makes Feige accounts: --target feige");
    }
    let t0 = std::time::Instant::now();
    let accounts =
        bench::accounts::ensure(t.addr(), &t.user_prefix, users, t.accounts.as_deref()).await?;
    let mut r = t.report("seed");
    r.insert("users".into(), accounts.len().into());
    r.insert("seconds".into(), bench::r3(t0.elapsed().as_secs_f64()));
    Ok(r)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Summary { files } = &cli.command {
        let mut text = String::new();
        for f in files {
            text.push_str(
                &std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?,
            );
            text.push('\n');
        }
        print!("{}", bench::summary::summarize(&text));
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .thread_name("bench-io")
        .enable_all()
        .build()?;
    if let Command::CrashLoop { args } = &cli.command {
        let report = runtime.block_on(crash::run(args))?;
        bench::print_report(&report, args.json);
        runtime.shutdown_timeout(Duration::from_millis(100));
        return Ok(());
    }
    runtime.block_on(async {
        let (target, fut): (&TargetArgs, Workload<'_>) = match &cli.command {
            Command::Im1to1 { target, args } => match args.ws {
                Some(http) => (target, Box::pin(bench::ws::run(target, args, http))),
                None => (target, Box::pin(im::run(target, args))),
            },
            Command::Fanout { target, args } => (target, Box::pin(fanout::run(target, args))),
            Command::Idle { target, args } => (target, Box::pin(idle::run(target, args))),
            Command::Sync { target, args } => (target, Box::pin(sync::run(target, args))),
            Command::History { target, args } => (target, Box::pin(history::run(target, args))),
            Command::Login { target, args } => (target, Box::pin(login::run(target, args))),
            Command::Seed { target, users } => (target, Box::pin(seed(target, *users))),
            Command::Summary { .. } | Command::CrashLoop { .. } => unreachable!("handled above"),
        };
        let report = tokio::time::timeout(Duration::from_secs_f64(target.time_limit), fut)
            .await
            .map_err(|_| anyhow::anyhow!("run exceeded --time-limit {}s", target.time_limit))??;
        bench::print_report(&report, target.json);
        let bad = im::violations(&report);
        if cli.check && bad > 0 {
            bail!("{bad} messages lost, duplicated, out of order or unacked");
        }
        anyhow::Ok(())
    })?;
    // Client tasks may still hold sockets; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
