//! Request families: the label of the request-latency histograms, one per `request/` file
//! group.

/// The group a request kind belongs to (its label in `feige_request_duration_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Family {
    /// Hello, Ping, Register, Login, Resume, Logout, sessions.
    Account,
    /// SendMessage, Sync, Ack, History, Search.
    Message,
    /// One's profile and user lookups.
    Profile,
    /// Friends, requests, blocks, presence, the conversation list.
    Social,
    /// Groups.
    Groups,
    /// World rooms.
    Rooms,
    /// Red packets and wallets.
    RedPacket,
    /// MarkRead, receipts, recall.
    Receipts,
    /// Friend groups and suggestions.
    Contacts,
    /// Uploads, downloads, stickers, file offers.
    Files,
    /// Transcribe.
    Speech,
}

impl Family {
    /// Every family, in label order (index = `family as usize`).
    pub const ALL: [Family; 11] = [
        Family::Account,
        Family::Message,
        Family::Profile,
        Family::Social,
        Family::Groups,
        Family::Rooms,
        Family::RedPacket,
        Family::Receipts,
        Family::Contacts,
        Family::Files,
        Family::Speech,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Family::Account => "account",
            Family::Message => "message",
            Family::Profile => "profile",
            Family::Social => "social",
            Family::Groups => "groups",
            Family::Rooms => "rooms",
            Family::RedPacket => "red_packet",
            Family::Receipts => "receipts",
            Family::Contacts => "contacts",
            Family::Files => "files",
            Family::Speech => "speech",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` is indexed by the discriminant, so a histogram slot is found without a search.
    #[test]
    fn all_is_in_discriminant_order() {
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "{}", f.name());
        }
    }
}
