//! `feige`: the Feige command-line client.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use feige_client::{code_name, pb, Client, ClientConfig, ClientError, ErrorCode, Event, Events};
use feige_tools::social::{self as out, Out, UserRef};
use feige_tools::{
    check_username, current_user, default_state_dir, error_json, hex_decode, hex_encode,
    load_session, message_json, message_line, remove_session, save_session, terminal_safe, Failure,
    SavedSession, DEFAULT_DEVICE, DEFAULT_SERVER,
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
    /// Speak TLS to the server, verifying its certificate with --ca-file.
    #[arg(long, global = true)]
    tls: bool,
    /// PEM file of the certificate authority that signed the server's certificate (for --tls).
    #[arg(long, global = true, env = "FEIGE_CA_FILE")]
    ca_file: Option<PathBuf>,
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
        /// Recipient: a user id or a username (`@name` for a username made of digits).
        #[arg(value_name = "USER")]
        who: String,
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
        /// The other user: a user id or a username (`@name` for a username made of digits).
        #[arg(value_name = "USER")]
        who: String,
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
    /// Show or change your profile, or show another user's [default: show yours].
    Profile {
        #[command(subcommand)]
        action: Option<ProfileCmd>,
    },
    /// Find users by username or nickname (prefix or substring, any script).
    SearchUsers {
        /// What to look for.
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// Most results [default: 20].
        #[arg(long)]
        limit: Option<u32>,
        /// Skip this many results (paging).
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Friends and friend requests [default: list your friends]. USER is a user id or a
    /// username (`@name` for a username made of digits).
    Friends {
        #[command(subcommand)]
        action: Option<FriendsCmd>,
    },
    /// Your conversations with their last message and unread count [default: list them].
    #[command(args_conflicts_with_subcommands = true)]
    Chats {
        #[command(flatten)]
        page: ChatsPage,
        #[command(subcommand)]
        action: Option<ChatsCmd>,
    },
    /// Your sessions (logins on each device) [default: list them].
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsCmd>,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsCmd {
    /// List your sessions, most recently seen first.
    List,
    /// Revoke a session: its token stops working and its connections are closed.
    Revoke {
        /// The session id (from `feige sessions`).
        session_id: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCmd {
    /// Show your own profile.
    Show,
    /// Change fields of your profile; an empty value clears a field.
    Set {
        /// Display name (1 to 64 characters).
        #[arg(long)]
        nickname: Option<String>,
        /// Status line (at most 256 characters).
        #[arg(long)]
        signature: Option<String>,
        /// Avatar file id.
        #[arg(long)]
        avatar: Option<String>,
        /// Phone number (only you see it).
        #[arg(long)]
        phone: Option<String>,
        /// E-mail address (only you see it).
        #[arg(long)]
        email: Option<String>,
    },
    /// Show another user's public profile.
    User {
        /// User id or username.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Change your password: the old one from FEIGE_PASSWORD (else the first stdin line), the
    /// new one from FEIGE_NEW_PASSWORD (else the next line). Your other sessions are revoked.
    Password,
}

#[derive(Debug, Subcommand)]
enum FriendsCmd {
    /// List your friends with remark and online state.
    List,
    /// Send a friend request.
    Add {
        /// Who to ask.
        #[arg(value_name = "USER")]
        who: String,
        /// A short note to go with it.
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Pending friend requests, received and sent.
    Requests,
    /// Accept a received friend request.
    Accept {
        /// The request id (see `feige friends requests`).
        request_id: u64,
    },
    /// Reject a received friend request.
    Reject {
        /// The request id.
        request_id: u64,
    },
    /// Set your private alias for a friend (empty clears it).
    Remark {
        /// The friend.
        #[arg(value_name = "USER")]
        who: String,
        /// The alias.
        #[arg(default_value = "")]
        remark: String,
    },
    /// End a friendship (on both sides).
    Delete {
        /// The friend.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Block a user: no more messages or friend requests either way.
    Block {
        /// Who to block.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Unblock a user.
    Unblock {
        /// Who to unblock.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// The users you have blocked.
    Blocked,
    /// Whether a friend is online.
    Presence {
        /// The friend.
        #[arg(value_name = "USER")]
        who: String,
    },
}

/// Which conversations `feige chats` lists.
#[derive(Debug, Clone, Default, clap::Args)]
struct ChatsPage {
    /// Most conversations to show (at most 500) [default: all].
    #[arg(long)]
    limit: Option<u32>,
    /// Only conversations after this cursor, `LAST_ACTIVE:CONVERSATION_ID` of the previous
    /// page's last entry (printed after a page when more follow).
    #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
    before: Option<(i64, u64)>,
}

/// A conversation-list cursor, `LAST_ACTIVE_MS:CONVERSATION_ID`.
fn parse_cursor(s: &str) -> Result<(i64, u64), String> {
    let bad =
        || format!("{s:?} is not a cursor LAST_ACTIVE:CONVERSATION_ID, e.g. 1764064000000:12");
    let (ms, id) = s.split_once(':').ok_or_else(bad)?;
    Ok((
        ms.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

#[derive(Debug, Subcommand)]
enum ChatsCmd {
    /// List your conversations, most recent first.
    List(ChatsPage),
    /// Mark a conversation as read (on all your devices).
    Read {
        /// The conversation id (see `feige chats`).
        conversation_id: u64,
        /// Read up to this sequence number; 0 = everything.
        #[arg(long, default_value_t = 0)]
        seq: u64,
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
        eprintln!("error: {}", terminal_safe(&message));
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
                ClientError::Tls(_) => "TLS",
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
            tls: self.cli.tls,
            ca_file: self.cli.ca_file.clone(),
            ..ClientConfig::new(server)
        }
    }

    fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        // Human lines carry other users' text: escaped, so it cannot drive the terminal.
        let line = if self.cli.json {
            serde_json::to_string(value).unwrap_or_default()
        } else {
            terminal_safe(&human()).into_owned()
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn out(&self, o: &Out) {
        self.print(&o.json, || o.text.clone());
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

    /// Connects without a session (for register and login), with neither sync nor acks;
    /// returns the client, its events (keep them while the client is used) and the server
    /// address.
    async fn connect_fresh(&self) -> anyhow::Result<(Client, Events, String)> {
        let server = self.server(None);
        let device = self
            .cli
            .device
            .clone()
            .unwrap_or_else(|| DEFAULT_DEVICE.into());
        let (client, events) = Client::connect(self.config(server.clone(), device, false))
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        Ok((client, events, server))
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
    secret("FEIGE_PASSWORD", "password")
}

/// `var` from the environment, else one line of stdin after a `what: ` prompt on stderr.
fn secret(var: &str, what: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    eprint!("{what}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what}"))?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err(Failure::new("INVALID_ARGUMENT", format!("no {what} given")).into());
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
        Command::Send { who, text } => send(&ctx, who, &text.join(" ")).await,
        Command::Listen { count } => listen(&ctx, *count).await,
        Command::History { who, limit, before } => history(&ctx, who, *limit, *before).await,
        Command::Search { words, limit } => search(&ctx, &words.join(" "), *limit).await,
        Command::Profile { action } => profile(&ctx, action.as_ref()).await,
        Command::SearchUsers {
            query,
            limit,
            offset,
        } => search_users(&ctx, &query.join(" "), *limit, *offset).await,
        Command::Friends { action } => friends(&ctx, action.as_ref()).await,
        Command::Chats { page, action } => chats(&ctx, page, action.as_ref()).await,
        Command::Sessions { action } => sessions(&ctx, action.as_ref()).await,
    }
}

async fn register(ctx: &Ctx, username: &str, nickname: &Option<String>) -> anyhow::Result<()> {
    let password = password()?;
    let (client, _events, _) = ctx.connect_fresh().await?;
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
    let (client, _events, server) = ctx.connect_fresh().await?;
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
    ctx.out(&out::profile(&result?));
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

async fn send(ctx: &Ctx, who: &str, text: &str) -> anyhow::Result<()> {
    let (to_user, ok) = with_client(ctx, |client| async move {
        let to_user = user_id(&client, who).await?;
        Ok((to_user, client.send_text(to_user, text).await?))
    })
    .await?;
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
            Some(
                e @ (Event::FriendRequest(_)
                | Event::FriendResponse(_)
                | Event::FriendAdded(_)
                | Event::FriendRemoved { .. }
                | Event::Presence { .. }
                | Event::ReadPosition(_)
                | Event::FriendRequestAnswered(_)
                | Event::FriendUpdated(_)
                | Event::BlockChanged { .. }
                | Event::ProfileUpdated(_)
                | Event::UserUpdated(_)),
            ) => {
                if let Some(o) = out::event(&e, saved.user_id) {
                    ctx.out(&o);
                }
            }
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
                    let reason = terminal_safe(&reason);
                    eprintln!("disconnected by the server: {reason}; reconnecting");
                }
            }
            // Connection states, and event kinds newer than this tool, are not shown.
            Some(_) => {}
            None => break Err(ClientError::Closed.into()),
        }
    };
    client.close().await;
    result
}

async fn history(ctx: &Ctx, who: &str, limit: u32, before: Option<u64>) -> anyhow::Result<()> {
    let messages = with_client(ctx, |client| async move {
        let peer_user = user_id(&client, who).await?;
        let req = pb::History {
            peer_user,
            limit,
            before_seq: before.unwrap_or(0),
            ..Default::default()
        };
        Ok(client.history(req).await?)
    })
    .await?;
    // The server answers newest first; show the page as a chat log.
    for m in messages.iter().rev() {
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

/// The id of the user `s` names (a user id, or a username looked up on the server).
async fn user_id(client: &Client, s: &str) -> anyhow::Result<u64> {
    match UserRef::parse(s) {
        UserRef::Id(id) => Ok(id),
        UserRef::Name(name) => Ok(client
            .user_by_name(&name)
            .await
            .with_context(|| format!("cannot find user {name:?}"))?
            .user_id),
    }
}

/// Runs `f` on a resumed session (without syncing), then closes it.
async fn with_client<T, F, Fut>(ctx: &Ctx, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let (client, _events, _) = ctx.resume(false).await?;
    let result = f(client.clone()).await;
    client.close().await;
    result
}

/// The new password for `profile password`: FEIGE_NEW_PASSWORD, else a line of stdin.
fn new_password() -> anyhow::Result<String> {
    secret("FEIGE_NEW_PASSWORD", "new password")
}

async fn profile(ctx: &Ctx, action: Option<&ProfileCmd>) -> anyhow::Result<()> {
    match action.unwrap_or(&ProfileCmd::Show) {
        ProfileCmd::Show => whoami(ctx).await,
        ProfileCmd::Set {
            nickname,
            signature,
            avatar,
            phone,
            email,
        } => {
            let update = pb::UpdateProfile {
                nickname: nickname.clone(),
                signature: signature.clone(),
                avatar: avatar.clone(),
                phone: phone.clone(),
                email: email.clone(),
            };
            if update == pb::UpdateProfile::default() {
                return Err(Failure::new(
                    "INVALID_ARGUMENT",
                    "nothing to change: give --nickname, --signature, --avatar, --phone or --email",
                )
                .into());
            }
            let p =
                with_client(ctx, |c| async move { Ok(c.update_profile(update).await?) }).await?;
            ctx.out(&out::profile(&p));
            Ok(())
        }
        ProfileCmd::User { who } => {
            let u = with_client(ctx, |c| async move {
                let id = user_id(&c, who).await?;
                Ok(c.user(id).await?)
            })
            .await?;
            ctx.out(&out::user(&u));
            Ok(())
        }
        ProfileCmd::Password => {
            let old = password()?;
            let new = new_password()?;
            let revoked = with_client(
                ctx,
                |c| async move { Ok(c.change_password(&old, &new).await?) },
            )
            .await?;
            ctx.print(
                &serde_json::json!({
                    "type": "password_changed",
                    "sessions_revoked": revoked.to_string(),
                }),
                || format!("password changed; {revoked} other session(s) revoked"),
            );
            Ok(())
        }
    }
}

async fn search_users(
    ctx: &Ctx,
    query: &str,
    limit: Option<u32>,
    offset: u32,
) -> anyhow::Result<()> {
    let page = with_client(ctx, |c| async move {
        Ok(c.search_users(query, limit.unwrap_or(0), offset).await?)
    })
    .await?;
    for u in &page.users {
        ctx.out(&out::user(u));
    }
    if page.has_more && !ctx.cli.json {
        eprintln!(
            "more results: --offset {}",
            offset as usize + page.users.len()
        );
    }
    Ok(())
}

async fn friends(ctx: &Ctx, action: Option<&FriendsCmd>) -> anyhow::Result<()> {
    let action = action.unwrap_or(&FriendsCmd::List);
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            FriendsCmd::List => c.friends().await?.iter().map(out::friend).collect(),
            FriendsCmd::Add { who, message } => {
                let id = user_id(&c, who).await?;
                let sent = c.friend_request(id, message).await?;
                let text = if sent.became_friends {
                    format!("user {id} had asked you too: you are friends now")
                } else {
                    format!("friend request #{} sent to user {id}", sent.request_id)
                };
                vec![Out {
                    json: serde_json::json!({
                        "type": "friend_request_sent",
                        "request_id": sent.request_id.to_string(),
                        "user_id": id.to_string(),
                        "became_friends": sent.became_friends,
                    }),
                    text,
                }]
            }
            FriendsCmd::Requests => {
                let l = c.friend_requests().await?;
                let incoming = l
                    .incoming
                    .iter()
                    .map(|r| out::friend_request(r, "incoming"));
                let outgoing = l
                    .outgoing
                    .iter()
                    .map(|r| out::friend_request(r, "outgoing"));
                incoming.chain(outgoing).collect()
            }
            FriendsCmd::Accept { request_id } => {
                vec![out::friend_response(
                    &c.respond_friend_request(*request_id, true).await?,
                )]
            }
            FriendsCmd::Reject { request_id } => {
                vec![out::friend_response(
                    &c.respond_friend_request(*request_id, false).await?,
                )]
            }
            FriendsCmd::Remark { who, remark } => {
                let id = user_id(&c, who).await?;
                vec![out::friend(&c.set_remark(id, remark).await?)]
            }
            FriendsCmd::Delete { who } => {
                let id = user_id(&c, who).await?;
                c.delete_friend(id).await?;
                vec![done(
                    "friend_deleted",
                    id,
                    format!("user {id} is no longer your friend"),
                )]
            }
            FriendsCmd::Block { who } => {
                let id = user_id(&c, who).await?;
                c.block(id).await?;
                vec![done("blocked", id, format!("blocked user {id}"))]
            }
            FriendsCmd::Unblock { who } => {
                let id = user_id(&c, who).await?;
                c.unblock(id).await?;
                vec![done("unblocked", id, format!("unblocked user {id}"))]
            }
            FriendsCmd::Blocked => c.blocked().await?.iter().map(out::user).collect(),
            FriendsCmd::Presence { who } => {
                let id = user_id(&c, who).await?;
                vec![out::presence(id, c.presence(id).await?)]
            }
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

/// A success line for an action on a user.
fn done(kind: &str, user_id: u64, text: String) -> Out {
    Out {
        json: serde_json::json!({ "type": kind, "user_id": user_id.to_string() }),
        text,
    }
}

async fn chats(ctx: &Ctx, page: &ChatsPage, action: Option<&ChatsCmd>) -> anyhow::Result<()> {
    let page = match action {
        Some(ChatsCmd::List(p)) => p,
        _ => page,
    };
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            None | Some(ChatsCmd::List(_)) => {
                let list = c
                    .conversations_page(page.limit.unwrap_or(0), page.before)
                    .await?;
                let mut outs: Vec<Out> = list.conversations.iter().map(out::conversation).collect();
                if let (true, Some(last)) = (list.has_more, list.conversations.last()) {
                    outs.push(out::more_conversations(last, page.limit.unwrap_or(0)));
                }
                outs
            }
            Some(ChatsCmd::Read {
                conversation_id,
                seq,
            }) => vec![out::read_position(
                &c.mark_read(*conversation_id, *seq).await?,
            )],
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

async fn sessions(ctx: &Ctx, action: Option<&SessionsCmd>) -> anyhow::Result<()> {
    let action = action.unwrap_or(&SessionsCmd::List);
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            SessionsCmd::List => c.sessions().await?.iter().map(session_out).collect(),
            SessionsCmd::Revoke { session_id } => {
                c.revoke_session(*session_id).await?;
                vec![Out {
                    json: serde_json::json!({
                        "type": "session_revoked",
                        "session_id": session_id.to_string(),
                    }),
                    text: format!("session #{session_id} revoked"),
                }]
            }
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

/// One session: `#3 phone  last seen 2026-11-24T04:30:00Z from 10.0.0.5:51234, expires
/// 2026-12-24T04:30:00Z (this one, online)`.
fn session_out(s: &pb::SessionInfo) -> Out {
    let time = |ms: u64| feige_tools::format_time(i64::try_from(ms).unwrap_or(i64::MAX));
    let mut marks = Vec::new();
    if s.current {
        marks.push("this one");
    }
    if s.online {
        marks.push("online");
    }
    let marks = if marks.is_empty() {
        String::new()
    } else {
        format!(" ({})", marks.join(", "))
    };
    Out {
        json: serde_json::json!({
            "type": "session",
            "session_id": s.session_id.to_string(),
            "device": s.device,
            "created_at": s.created_at_ms.to_string(),
            "last_seen": s.last_seen_ms.to_string(),
            "address": s.address,
            "expires_at": s.expires_at_ms.to_string(),
            "current": s.current,
            "online": s.online,
        }),
        text: format!(
            "#{} {}  last seen {} from {}, expires {}{marks}",
            s.session_id,
            s.device.escape_debug(),
            time(s.last_seen_ms),
            s.address,
            time(s.expires_at_ms)
        ),
    }
}
