//! `feige`: the Feige command-line client. This file parses the arguments and picks the
//! command; the commands live in [`cli`].

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::args::{
    AdminCmd, DownloadArgs, GroupCmd, MessageAt, RedPacketCmd, RoomCmd, SendFileArgs, StickerCmd,
    TranscribeArgs, UploadArgs, WalletCmd,
};
use cli::codes::{ContactArgs, Purpose, VerifyArgs};
use cli::output::report;
use cli::{
    account, chats, codes, files, friends, groups, messages, notifications, receipts, red_packets,
    rooms, Ctx,
};

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
    /// Create an account (password from FEIGE_PASSWORD, else read from stdin); with --email
    /// or --phone and --code (from `feige code --purpose register`) the contact is verified.
    Register {
        /// The new username.
        username: String,
        /// Display name [default: the username].
        #[arg(long)]
        nickname: Option<String>,
        #[command(flatten)]
        verify: VerifyArgs,
    },
    /// Log in as --user and save the session (password as for register); or with --email or
    /// --phone and --code (from `feige code --purpose login`), no password. With two-factor
    /// login on, a password login's code comes from --totp, else FEIGE_TOTP, else the next
    /// stdin line.
    Login {
        #[command(flatten)]
        verify: VerifyArgs,
        /// A TOTP code or a recovery code, for an account with two-factor login on.
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
    },
    /// Ask the server to send a verification code to --email or --phone.
    Code {
        #[command(flatten)]
        to: ContactArgs,
        /// What the code is for.
        #[arg(long, value_enum)]
        purpose: Purpose,
    },
    /// Set a new password with a code (`feige code --purpose reset`); the new password from
    /// FEIGE_NEW_PASSWORD, else stdin. Every session of the account ends.
    ResetPassword {
        #[command(flatten)]
        to: ContactArgs,
        /// The code sent to the e-mail or phone.
        #[arg(long)]
        code: String,
    },
    /// Change the verified e-mail or phone to --email or --phone, with the code
    /// `feige code --purpose change` sent there.
    ChangeContact {
        #[command(flatten)]
        to: ContactArgs,
        /// The code sent to the new e-mail or phone.
        #[arg(long)]
        code: String,
    },
    /// Two-factor login (TOTP): set up, enable, disable.
    #[command(name = "2fa")]
    TwoFactor {
        #[command(subcommand)]
        action: TwoFactorCmd,
    },
    /// Close your account (password as for register): your sessions end, friends see you as
    /// closed, your username is freed after the server's retention period.
    CloseAccount {
        /// A TOTP or recovery code, required while two-factor login is on.
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
    },
    /// Show the logged-in user.
    Whoami,
    /// Revoke the saved session and delete it.
    Logout,
    /// Send a text message to a user, or with --group to a group.
    Send {
        /// Recipient: a user id or a username (`@name` for a username made of digits); with
        /// --group, the group id.
        #[arg(value_name = "USER")]
        who: String,
        /// The text (several words are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// USER is a group id.
        #[arg(long)]
        group: bool,
        /// Mention (@) this member in a group message (repeatable).
        #[arg(long, value_name = "USER")]
        mention: Vec<String>,
        /// Mention everyone (@all) in a group message (owner and admins).
        #[arg(long)]
        mention_all: bool,
    },
    /// Print missed messages, then new ones as they arrive, until Ctrl-C.
    Listen {
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Show the conversation with a user (or with --group a group), oldest first.
    History {
        /// The other user: a user id or a username (`@name` for a username made of digits);
        /// with --group, the group id.
        #[arg(value_name = "USER")]
        who: String,
        /// USER is a group id.
        #[arg(long)]
        group: bool,
        /// Most messages to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only messages before this sequence number (to page back).
        #[arg(long)]
        before: Option<u64>,
        /// Only messages after this sequence number, the oldest of them first (to page
        /// forward, e.g. from the read position to the first unread).
        #[arg(long)]
        after: Option<u64>,
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
    /// World rooms: join, leave, members, send, history, listen.
    Room {
        #[command(subcommand)]
        action: RoomCmd,
    },
    /// Red packets: send one into a conversation, grab a share, show one.
    #[command(name = "redpacket")]
    RedPacket {
        #[command(subcommand)]
        action: RedPacketCmd,
    },
    /// The wallet's balance, or (admins) a top-up of a user's wallet.
    Wallet {
        #[command(subcommand)]
        action: Option<WalletCmd>,
    },
    /// Recall one of your messages (or, as a group admin, a member's) within the server's
    /// recall window.
    Recall {
        #[command(flatten)]
        at: MessageAt,
    },
    /// Who received and read a message.
    Receipts {
        #[command(flatten)]
        at: MessageAt,
    },
    /// Messages recalled in your conversations, oldest first (what `listen` missed).
    Recalls {
        /// Only recalls after this recall id (the last one printed).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Most recalls [default: 100].
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Admin operations through the HTTP admin API (connections, kicks, users, notices,
    /// bans), with --token or FEIGE_ADMIN_TOKEN.
    Admin {
        /// The HTTP listener, host:port [default: the server's host, port 7901].
        #[arg(long)]
        http: Option<String>,
        /// The admin token (or an admin user's session token, hex).
        #[arg(long)]
        token: Option<String>,
        #[command(subcommand)]
        action: AdminCmd,
    },
    /// Your system notifications (notices from the admins), oldest first; `*` marks unread.
    Notifications {
        /// Only notifications after this id (the last one printed).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Most notifications [default: 50].
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Marks a notification read, or all of them.
    NotificationRead {
        /// The notification's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<u64>,
        /// Every notification.
        #[arg(long)]
        all: bool,
    },
    /// Groups [default: list yours]. USER is a user id or a username; GROUP a group id.
    Group {
        #[command(subcommand)]
        action: Option<GroupCmd>,
    },
    /// Upload a file (resumed where an interrupted upload of the same file stopped); prints
    /// its file id.
    Upload(UploadArgs),
    /// Download a file, or a range of it, by its file id.
    Download(DownloadArgs),
    /// Upload a file and send it to a user, or with --group to a group.
    SendFile(SendFileArgs),
    /// Upload an image and make it your avatar.
    Avatar {
        /// The image.
        path: PathBuf,
    },
    /// Turn a voice message (or with --file an uploaded audio file) into text.
    Transcribe(TranscribeArgs),
    /// Your stickers: list, add, remove, send [default: list them].
    Stickers {
        #[command(subcommand)]
        action: Option<StickerCmd>,
    },
    /// Accept (or with --decline refuse) a file offered to you (`send-file --offer`).
    Offer {
        #[command(flatten)]
        at: MessageAt,
        /// Decline instead of accepting.
        #[arg(long)]
        decline: bool,
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
enum TwoFactorCmd {
    /// Make a new secret: prints the otpauth:// URI as a QR code to scan.
    Setup,
    /// Turn two-factor login on with a first code; prints ten one-time recovery codes.
    Enable {
        /// The code the authenticator app shows.
        code: String,
    },
    /// Turn two-factor login off with a TOTP or recovery code.
    Disable {
        /// A TOTP or recovery code.
        code: String,
    },
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
    #[command(flatten)]
    Contacts(ContactsCmd),
}

/// Friend groups and suggestions (`feige friends ...`).
#[derive(Debug, Subcommand)]
enum ContactsCmd {
    /// Your friends by friend group.
    Groups,
    /// Move a friend into a friend group ("" = the default group).
    GroupSet {
        /// The friend.
        #[arg(value_name = "USER")]
        who: String,
        /// The group's name.
        group: String,
    },
    /// People you may know: who shares friends or groups with you.
    Suggest {
        /// Most suggestions [default: 20].
        #[arg(long)]
        limit: Option<u32>,
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx::new(cli);
    match ctx.command() {
        Command::Register {
            username,
            nickname,
            verify,
        } if verify.given() => codes::register(&ctx, username, nickname, verify).await,
        Command::Register {
            username, nickname, ..
        } => account::register(&ctx, username, nickname).await,
        Command::Login { verify, .. } if verify.given() => codes::login(&ctx, verify).await,
        Command::Login { totp, .. } => account::login(&ctx, totp.as_deref()).await,
        Command::Code { to, purpose } => codes::request(&ctx, to, *purpose).await,
        Command::ResetPassword { to, code } => codes::reset_password(&ctx, to, code).await,
        Command::ChangeContact { to, code } => codes::change_contact(&ctx, to, code).await,
        Command::TwoFactor { action } => cli::twofactor::two_factor(&ctx, action).await,
        Command::CloseAccount { totp } => {
            cli::twofactor::close_account(&ctx, totp.as_deref()).await
        }
        Command::Whoami => account::whoami(&ctx).await,
        Command::Logout => account::logout(&ctx).await,
        Command::Send {
            who,
            text,
            group: false,
            mention,
            mention_all: false,
        } if mention.is_empty() => messages::send(&ctx, who, &text.join(" ")).await,
        Command::Send {
            who,
            text,
            group,
            mention,
            mention_all,
        } => groups::send(&ctx, who, *group, &text.join(" "), mention, *mention_all).await,
        Command::Listen { count } => messages::listen(&ctx, *count).await,
        Command::History {
            who,
            group,
            limit,
            before,
            after,
        } => {
            let page = messages::Page {
                limit: *limit,
                before: *before,
                after: *after,
            };
            messages::history(&ctx, who, *group, page).await
        }
        Command::Search { words, limit } => messages::search(&ctx, &words.join(" "), *limit).await,
        Command::Profile { action } => account::profile(&ctx, action.as_ref()).await,
        Command::SearchUsers {
            query,
            limit,
            offset,
        } => friends::search_users(&ctx, &query.join(" "), *limit, *offset).await,
        Command::Friends { action } => friends::friends(&ctx, action.as_ref()).await,
        Command::Chats { page, action } => chats::chats(&ctx, page, action.as_ref()).await,
        Command::Sessions { action } => account::sessions(&ctx, action.as_ref()).await,
        Command::Room { action } => rooms::room(&ctx, action).await,
        Command::RedPacket { action } => red_packets::red_packet(&ctx, action).await,
        Command::Wallet { action } => red_packets::wallet(&ctx, action.as_ref()).await,
        Command::Recall { at } => receipts::recall(&ctx, at).await,
        Command::Receipts { at } => receipts::receipts(&ctx, at).await,
        Command::Recalls { after, limit } => receipts::recalls(&ctx, *after, *limit).await,
        Command::Group { action } => groups::group(&ctx, action.as_ref()).await,
        Command::Upload(a) => files::upload(&ctx, a).await,
        Command::Download(a) => files::download(&ctx, a).await,
        Command::SendFile(a) => files::send_file(&ctx, a).await,
        Command::Avatar { path } => files::avatar(&ctx, path).await,
        Command::Transcribe(a) => files::transcribe(&ctx, a).await,
        Command::Stickers { action } => files::stickers(&ctx, action.as_ref()).await,
        Command::Offer { at, decline } => files::offer(&ctx, at, !*decline).await,
        Command::Admin {
            http,
            token,
            action,
        } => cli::admin::admin(&ctx, http.as_deref(), token.as_deref(), action).await,
        Command::Notifications { after, limit } => notifications::list(&ctx, *after, *limit).await,
        Command::NotificationRead { id, all: _ } => notifications::read(&ctx, *id).await,
    }
}
