//! `feige`: the Feige command-line client.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use feige_client::{code_name, pb, Client, ClientConfig, ClientError, ErrorCode, Event, Events};
use feige_tools::{
    check_username, current_user, default_state_dir, error_json, hex_decode, hex_encode,
    load_session, message_json, message_line, remove_session, save_session, Failure, SavedSession,
    DEFAULT_DEVICE, DEFAULT_SERVER,
};
use serde::Serialize;

/// Feige (飞鸽) command-line client.
#[derive(Debug, Parser)]
#[command(name = "feige", version, about)]
struct Cli {
    /// Server address, host:port [default: the saved session's server, else 127.0.0.1:7900].
    #[arg(long, global = true, env = "FEIGE_SERVER")]
    server: Option<String>,
    /// Act as this user [default: the user of the last `feige login`].
    #[arg(long, global = true)]
    user: Option<String>,
    /// Print one JSON object per line (ids as decimal strings).
    #[arg(long, global = true)]
    json: bool,
    /// Where session files live [default: $HOME/.feige, or ./.feige].
    #[arg(long, global = true, env = "FEIGE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Device name for login [default: the saved session's device, else "cli"].
    #[arg(long, global = true)]
    device: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an account (password from FEIGE_PASSWORD, else read from stdin).
    Register {
        /// The new username.
        username: String,
        /// Display name [default: the username].
        #[arg(long)]
        nickname: Option<String>,
    },
    /// Log in as --user and save the session (password as for register).
    Login,
    /// Show the logged-in user.
    Whoami,
    /// Revoke the saved session and delete it.
    Logout,
    /// Send a text message to a user.
    Send {
        /// Recipient's user id.
        user_id: u64,
        /// The text (several words are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Print missed messages, then new ones as they arrive, until Ctrl-C.
    Listen {
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Show the conversation with a user, oldest first.
    History {
        /// The other user's id.
        user_id: u64,
        /// Most messages to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only messages before this sequence number (to page back).
        #[arg(long)]
        before: Option<u64>,
    },
    /// Full-text search over your conversations, newest first.
    Search {
        /// Words to look for.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
        /// Most results.
        #[arg(long)]
        limit: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(json, &anyhow::Error::from(e)),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(json, &e),
    }
}

/// Prints an error to stderr, as text or JSON; returns the failure exit code.
fn report(json: bool, e: &anyhow::Error) -> ExitCode {
    let (code, message) = describe(e);
    if json {
        eprintln!("{}", error_json(&code, &message));
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::FAILURE
}

/// The code and text of an error chain.
fn describe(e: &anyhow::Error) -> (String, String) {
    let text = format!("{e:#}");
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return (f.code.clone(), text);
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            let code = match c {
                ClientError::Server { code, .. } => code_name(*code),
                ClientError::Io(_) => "IO",
                ClientError::Timeout => "TIMEOUT",
                ClientError::Closed => "CLOSED",
                ClientError::Protocol(_) => "PROTOCOL",
            };
            return (code.to_owned(), text);
        }
    }
    ("ERROR".to_owned(), text)
}

/// Resolved global settings.
struct Ctx {
    cli: Cli,
    state_dir: PathBuf,
}

impl Ctx {
    fn server(&self, saved: Option<&SavedSession>) -> String {
        self.cli
            .server
            .clone()
            .or_else(|| saved.map(|s| s.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
    }

    /// The user commands act as: --user, else the current one.
    fn username(&self) -> anyhow::Result<String> {
        let user = match &self.cli.user {
            Some(u) => u.clone(),
            None => current_user(&self.state_dir).ok_or_else(|| {
                Failure::new(
                    "NOT_LOGGED_IN",
                    "not logged in: run `feige login --user NAME` or pass --user",
                )
            })?,
        };
        check_username(&user)?;
        Ok(user)
    }

    fn config(&self, server: String, device: String, auto_sync: bool) -> ClientConfig {
        ClientConfig {
            device,
            client_name: concat!("feige-cli/", env!("CARGO_PKG_VERSION")).to_owned(),
            auto_sync,
            ..ClientConfig::new(server)
        }
    }

    fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        let line = if self.cli.json {
            serde_json::to_string(value).unwrap_or_default()
        } else {
            human()
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn print_message(&self, m: &pb::Message) {
        let line = if self.cli.json {
            message_json(m)
        } else {
            message_line(m)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Connects and resumes the saved session. With `auto_sync` off the client neither syncs
    /// nor acks, so one-shot commands leave unread messages for `listen`.
    async fn resume(&self, auto_sync: bool) -> anyhow::Result<(Client, Events, SavedSession)> {
        let username = self.username()?;
        let saved = load_session(&self.state_dir, &username)
            .with_context(|| format!("cannot read the session of {username}"))?
            .ok_or_else(|| {
                Failure::new(
                    "NOT_LOGGED_IN",
                    format!("no saved session for {username}: run `feige login --user {username}`"),
                )
            })?;
        let token = hex_decode(&saved.token)
            .ok_or_else(|| Failure::new("INVALID_TOKEN", "the saved session token is corrupt"))?;
        let device = self
            .cli
            .device
            .clone()
            .unwrap_or_else(|| saved.device.clone());
        let server = self.server(Some(&saved));
        let (client, events) = Client::connect(self.config(server.clone(), device, auto_sync))
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        match client.resume(&token).await {
            Ok(_) => Ok((client, events, saved)),
            Err(e) if e.code() == Some(ErrorCode::InvalidToken) => {
                client.close().await;
                Err(anyhow::Error::new(e).context(format!(
                    "the session of {username} has expired: run `feige login --user {username}`"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The password from FEIGE_PASSWORD, else one line of stdin.
fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("FEIGE_PASSWORD") {
        return Ok(p);
    }
    eprint!("password: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password")?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err(Failure::new("INVALID_ARGUMENT", "no password given").into());
    }
    Ok(p)
}

#[derive(Serialize)]
struct Registered {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: String,
    username: String,
}

#[derive(Serialize)]
struct LoggedIn {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: String,
    username: String,
    device: String,
    server: String,
}

#[derive(Serialize)]
struct ProfileJson {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: String,
    username: String,
    nickname: String,
    created_at: String,
}

#[derive(Serialize)]
struct Sent {
    #[serde(rename = "type")]
    kind: &'static str,
    message_id: String,
    conversation_id: String,
    seq: String,
    sent_at: String,
    duplicate: bool,
}

#[derive(Serialize)]
struct LoggedOut {
    #[serde(rename = "type")]
    kind: &'static str,
    username: String,
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let state_dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
    let ctx = Ctx { cli, state_dir };
    match &ctx.cli.command {
        Command::Register { username, nickname } => register(&ctx, username, nickname).await,
        Command::Login => login(&ctx).await,
        Command::Whoami => whoami(&ctx).await,
        Command::Logout => logout(&ctx).await,
        Command::Send { user_id, text } => send(&ctx, *user_id, &text.join(" ")).await,
        Command::Listen { count } => listen(&ctx, *count).await,
        Command::History {
            user_id,
            limit,
            before,
        } => history(&ctx, *user_id, *limit, *before).await,
        Command::Search { words, limit } => search(&ctx, &words.join(" "), *limit).await,
    }
}

async fn register(ctx: &Ctx, username: &str, nickname: &Option<String>) -> anyhow::Result<()> {
    let password = password()?;
    let server = ctx.server(None);
    let device = ctx
        .cli
        .device
        .clone()
        .unwrap_or_else(|| DEFAULT_DEVICE.into());
    let (client, _events) = Client::connect(ctx.config(server.clone(), device, false))
        .await
        .with_context(|| format!("cannot connect to {server}"))?;
    let nickname = nickname.as_deref().unwrap_or(username);
    let result = client.register(username, &password, nickname).await;
    client.close().await;
    let user_id = result?;
    ctx.print(
        &Registered {
            kind: "registered",
            user_id: user_id.to_string(),
            username: username.to_owned(),
        },
        || format!("registered {username} as user {user_id}"),
    );
    Ok(())
}

async fn login(ctx: &Ctx) -> anyhow::Result<()> {
    let username = ctx
        .cli
        .user
        .clone()
        .ok_or_else(|| Failure::new("INVALID_ARGUMENT", "login needs --user NAME"))?;
    check_username(&username)?;
    let password = password()?;
    let server = ctx.server(None);
    let device = ctx
        .cli
        .device
        .clone()
        .unwrap_or_else(|| DEFAULT_DEVICE.into());
    let (client, _events) = Client::connect(ctx.config(server.clone(), device, false))
        .await
        .with_context(|| format!("cannot connect to {server}"))?;
    let result = client.login(&username, &password).await;
    client.close().await;
    let session = result?;
    let saved = SavedSession {
        server: server.clone(),
        username: username.clone(),
        user_id: session.user_id,
        token: hex_encode(&session.token),
        device: session.device.clone(),
    };
    save_session(&ctx.state_dir, &saved)
        .with_context(|| format!("cannot save the session in {}", ctx.state_dir.display()))?;
    ctx.print(
        &LoggedIn {
            kind: "session",
            user_id: session.user_id.to_string(),
            username: username.clone(),
            device: session.device.clone(),
            server,
        },
        || {
            format!(
                "logged in as {username} (user {}) on device {}",
                session.user_id, session.device
            )
        },
    );
    Ok(())
}

async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let (client, _events, _) = ctx.resume(false).await?;
    let result = client.whoami().await;
    client.close().await;
    let p = result?;
    ctx.print(
        &ProfileJson {
            kind: "profile",
            user_id: p.user_id.to_string(),
            username: p.username.clone(),
            nickname: p.nickname.clone(),
            created_at: p.created_at_ms.to_string(),
        },
        || {
            format!(
                "{} (user {}), nickname {}",
                p.username, p.user_id, p.nickname
            )
        },
    );
    Ok(())
}

async fn logout(ctx: &Ctx) -> anyhow::Result<()> {
    let username = ctx.username()?;
    match ctx.resume(false).await {
        Ok((client, _events, _)) => {
            let result = client.logout().await;
            client.close().await;
            result?;
        }
        // Already revoked on the server: forgetting it locally is all that is left.
        Err(e) if describe(&e).0 == code_name(ErrorCode::InvalidToken) => {}
        Err(e) => return Err(e),
    }
    remove_session(&ctx.state_dir, &username)
        .with_context(|| format!("cannot remove the session of {username}"))?;
    ctx.print(
        &LoggedOut {
            kind: "logged_out",
            username: username.clone(),
        },
        || format!("logged out {username}"),
    );
    Ok(())
}

async fn send(ctx: &Ctx, to_user: u64, text: &str) -> anyhow::Result<()> {
    let (client, _events, _) = ctx.resume(false).await?;
    let result = client.send_text(to_user, text).await;
    client.close().await;
    let ok = result?;
    ctx.print(
        &Sent {
            kind: "sent",
            message_id: ok.message_id.to_string(),
            conversation_id: ok.conversation_id.to_string(),
            seq: ok.seq.to_string(),
            sent_at: ok.sent_at_ms.to_string(),
            duplicate: ok.duplicate,
        },
        || {
            format!(
                "sent to user {to_user}: [conv {} #{}] message {}",
                ok.conversation_id, ok.seq, ok.message_id
            )
        },
    );
    Ok(())
}

async fn listen(ctx: &Ctx, count: Option<u64>) -> anyhow::Result<()> {
    let (client, mut events, saved) = ctx.resume(true).await?;
    if count == Some(0) {
        client.close().await;
        return Ok(());
    }
    if !ctx.cli.json {
        eprintln!(
            "listening as {} (user {}); Ctrl-C to stop",
            saved.username, saved.user_id
        );
    }
    let mut seen = 0;
    let result = loop {
        let event = tokio::select! {
            e = events.recv() => e,
            r = tokio::signal::ctrl_c() => {
                break r.context("cannot wait for Ctrl-C");
            }
        };
        match event {
            Some(Event::Message(m)) => {
                ctx.print_message(&m);
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    break Ok(());
                }
            }
            Some(Event::Kicked { code, reason }) => {
                if code == ErrorCode::InvalidToken {
                    break Err(Failure::new(
                        code_name(code),
                        format!("session revoked: {reason}; run `feige login`"),
                    )
                    .into());
                }
                if !ctx.cli.json {
                    eprintln!("disconnected by the server: {reason}; reconnecting");
                }
            }
            Some(_) => {}
            None => break Err(ClientError::Closed.into()),
        }
    };
    client.close().await;
    result
}

async fn history(ctx: &Ctx, peer: u64, limit: u32, before: Option<u64>) -> anyhow::Result<()> {
    let (client, _events, _) = ctx.resume(false).await?;
    let result = client
        .history(pb::History {
            peer_user: peer,
            limit,
            before_seq: before.unwrap_or(0),
            ..Default::default()
        })
        .await;
    client.close().await;
    // The server answers newest first; show the page as a chat log.
    for m in result?.iter().rev() {
        ctx.print_message(m);
    }
    Ok(())
}

async fn search(ctx: &Ctx, query: &str, limit: Option<u32>) -> anyhow::Result<()> {
    let (client, _events, _) = ctx.resume(false).await?;
    let result = client
        .search(pb::Search {
            query: query.to_owned(),
            limit: limit.unwrap_or(0),
            ..Default::default()
        })
        .await;
    client.close().await;
    for m in &result? {
        ctx.print_message(m);
    }
    Ok(())
}
