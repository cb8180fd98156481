//! The arguments of the later command families (`group`, `room`, `redpacket`, `wallet`,
//! `recall`/`receipts`, and the file commands `upload`, `download`, `send-file`, `avatar`,
//! `transcribe`), parsed by clap in `main.rs` and run by their files in `cli/`.

use clap::Subcommand;

/// Cents of an amount written `12`, `12.3` or `12.34`.
pub(crate) fn parse_amount(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not an amount such as 8.88");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(frac))
        .ok_or_else(bad)
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoomCmd {
    /// Join a room (this command's connection leaves it when it ends).
    Join { room: u64 },
    /// Leave a room.
    Leave { room: u64 },
    /// The users in a room and their count.
    Members {
        room: u64,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Send a message to everyone in a room.
    Send {
        room: u64,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// A room's kept history, oldest of the page first.
    History {
        room: u64,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only messages older than this message id.
        #[arg(long)]
        before: Option<u64>,
    },
    /// Stay in a room and print its messages until Ctrl-C.
    Listen {
        room: u64,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RedPacketCmd {
    /// Send a red packet: AMOUNT (e.g. 8.88) in COUNT shares, random unless --equal.
    Send {
        conversation_id: u64,
        #[arg(value_parser = parse_amount)]
        amount: u64,
        count: u32,
        #[arg(long)]
        equal: bool,
        #[arg(long)]
        greeting: Option<String>,
    },
    /// Take a share of a red packet.
    Grab { packet_id: u64 },
    /// A red packet's state and who got what.
    Info { packet_id: u64 },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCmd {
    /// Credit a user's wallet with AMOUNT (e.g. 100.00); admins only.
    TopUp {
        #[arg(value_name = "USER")]
        who: String,
        #[arg(value_parser = parse_amount)]
        amount: u64,
    },
}

/// One message: in the conversation with a user, or in a conversation by id.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MessageAt {
    /// The other user (a user id or a username), or with --conversation a conversation id.
    #[arg(value_name = "USER|CONVERSATION")]
    pub(crate) target: String,
    /// The message's sequence number (see `feige history`).
    pub(crate) seq: u64,
    /// TARGET is a conversation id (a group's, say).
    #[arg(long)]
    pub(crate) conversation: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCmd {
    /// List your groups.
    List,
    /// Create a group with friends of yours.
    Create {
        /// The group's name.
        name: String,
        /// Its first members (friends of yours).
        #[arg(value_name = "USER")]
        members: Vec<String>,
        /// Invitations by plain members wait for an owner's or admin's approval.
        #[arg(long)]
        approval: bool,
    },
    /// Show a group's profile.
    Info {
        /// The group id.
        group: u64,
    },
    /// Change a group's profile (owner and admins).
    Update {
        /// The group id.
        group: u64,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New avatar file id ("" clears it).
        #[arg(long)]
        avatar: Option<String>,
        /// New announcement ("" clears it); the members are told.
        #[arg(long)]
        announcement: Option<String>,
        /// Require approval of invitations by plain members: true or false (owner only).
        #[arg(long)]
        approval: Option<bool>,
    },
    /// Invite friends of yours (they join, or wait for approval).
    Invite {
        /// The group id.
        group: u64,
        /// Who to invite.
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
    },
    /// Remove a member.
    Remove {
        /// The group id.
        group: u64,
        /// The member.
        #[arg(value_name = "USER")]
        member: String,
    },
    /// Leave a group.
    Leave {
        /// The group id.
        group: u64,
    },
    /// Dismiss a group (owner only).
    Dismiss {
        /// The group id.
        group: u64,
    },
    /// Make another member the owner (owner only).
    Transfer {
        /// The group id.
        group: u64,
        /// The new owner.
        #[arg(value_name = "USER")]
        member: String,
    },
    /// Make a member an admin, or a plain member again (owner only).
    Role {
        /// The group id.
        group: u64,
        /// The member.
        #[arg(value_name = "USER")]
        member: String,
        /// "admin" or "member".
        role: String,
    },
    /// List a group's members with roles, cards and online state.
    Members {
        /// The group id.
        group: u64,
        /// Most members [default: 100].
        #[arg(long)]
        limit: Option<u32>,
        /// Only members with a larger user id (paging).
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Set your card name in a group ("" clears it).
    Card {
        /// The group id.
        group: u64,
        /// The card name.
        card: String,
    },
    /// Mute a member for SECONDS (0 lifts the mute).
    Mute {
        /// The group id.
        group: u64,
        /// The member.
        #[arg(value_name = "USER")]
        member: String,
        /// How long, in seconds.
        seconds: u64,
    },
    /// Mute every plain member ("on"), or lift it ("off").
    MuteAll {
        /// The group id.
        group: u64,
        /// "on" or "off".
        state: String,
    },
    /// Pending invitations: to you, and those you may approve.
    Invites,
    /// Approve (or, with --reject, refuse) a pending invitation; the invitee declines theirs
    /// with --reject.
    Answer {
        /// The group id.
        group: u64,
        /// The invitee.
        #[arg(value_name = "USER")]
        member: String,
        /// Refuse or decline instead of approving.
        #[arg(long)]
        reject: bool,
    },
}

/// `feige upload`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UploadArgs {
    /// The file to upload.
    pub(crate) path: std::path::PathBuf,
    /// Its mime type [default: from its extension].
    #[arg(long)]
    pub(crate) mime: Option<String>,
    /// The name others see [default: its file name].
    #[arg(long)]
    pub(crate) name: Option<String>,
}

/// `feige download`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The file id.
    pub(crate) file_id: u64,
    /// Where to write it (through PATH.part, continued if an earlier download left one).
    pub(crate) path: std::path::PathBuf,
    /// First byte to download.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u64,
    /// Bytes to download [default: to the end].
    #[arg(long)]
    pub(crate) length: Option<u64>,
}

/// `feige send-file`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SendFileArgs {
    /// Recipient: a user id or a username; with --group, the group id.
    #[arg(value_name = "USER")]
    pub(crate) who: String,
    /// The file to upload and send.
    pub(crate) path: std::path::PathBuf,
    /// USER is a group id.
    #[arg(long)]
    pub(crate) group: bool,
    /// image, file, voice or video [default: from the mime type].
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// Its mime type [default: from its extension].
    #[arg(long)]
    pub(crate) mime: Option<String>,
    /// A caption.
    #[arg(long, default_value = "")]
    pub(crate) caption: String,
    /// Send it as an offer the recipients accept before downloading (file and video).
    #[arg(long)]
    pub(crate) offer: bool,
}

/// `feige transcribe`: a voice message (USER|CONVERSATION SEQ) or an uploaded file (--file).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TranscribeArgs {
    /// The other user (a user id or a username), or with --conversation a conversation id.
    #[arg(
        value_name = "USER|CONVERSATION",
        requires = "seq",
        conflicts_with = "file"
    )]
    pub(crate) target: Option<String>,
    /// The voice message's sequence number.
    pub(crate) seq: Option<u64>,
    /// TARGET is a conversation id (a group's, say).
    #[arg(long)]
    pub(crate) conversation: bool,
    /// Transcribe this uploaded audio file instead of a message.
    #[arg(long, value_name = "FILE_ID", required_unless_present = "target")]
    pub(crate) file: Option<u64>,
    /// "en" or "zh" [default: the server's engine].
    #[arg(long, default_value = "")]
    pub(crate) language: String,
}

/// `feige stickers`.
#[derive(Debug, Subcommand)]
pub(crate) enum StickerCmd {
    /// Your stickers, newest first.
    List,
    /// Save an image (a file id you may read) as a sticker.
    Add {
        /// The image's file id.
        file_id: u64,
    },
    /// Remove one of your stickers.
    Remove {
        /// Its file id.
        file_id: u64,
    },
    /// Send one of your stickers to a user, or with --group to a group.
    Send {
        /// Recipient: a user id or a username; with --group, the group id.
        #[arg(value_name = "USER")]
        who: String,
        /// The sticker's file id.
        file_id: u64,
        /// USER is a group id.
        #[arg(long)]
        group: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_cents() {
        assert_eq!(parse_amount("8.88"), Ok(888));
        assert_eq!(parse_amount("12"), Ok(1200));
        assert_eq!(parse_amount("0.5"), Ok(50));
        for bad in ["", ".5", "1.234", "-1", "1e3", "a", "1.2.3"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }
}

/// `feige admin`: the admin API (docs/http-api.md).
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCmd {
    /// The logged-in connections.
    Connections {
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Close a user's connections (--user-id) or one connection (--conn-id).
    Kick {
        #[arg(long, conflicts_with = "conn_id", required_unless_present = "conn_id")]
        user_id: Option<u64>,
        #[arg(long)]
        conn_id: Option<u64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Users whose username or nickname contains QUERY [default: all].
    Users {
        query: Option<String>,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Disable an account (its connections close; no login until enabled).
    Disable { user_id: u64 },
    /// Enable a disabled account.
    Enable { user_id: u64 },
    /// Approve an account waiting for approval.
    Approve { user_id: u64 },
    /// Post a system notice: --to user|group (with --id) or all.
    Notice {
        #[arg(long, value_parser = ["user", "group", "all"])]
        to: String,
        #[arg(long)]
        id: Option<u64>,
        #[arg(long)]
        title: Option<String>,
        #[arg(required = true)]
        body: Vec<String>,
    },
    /// The address bans.
    Bans,
    /// Ban an address or range (CIDR); its connections close.
    Ban {
        cidr: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a ban.
    Unban { cidr: String },
}
