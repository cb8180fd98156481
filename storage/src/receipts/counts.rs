//! Receipts of one message, counted from the members' positions when asked.

use rusqlite::{params, Connection};

use super::positions::{delivered_seq, read_seq};
use super::recall::{member, message_at};
use crate::int::{get_u64, Uint};
use crate::sequence::View;
use crate::social::{public_user, PublicUser};
use crate::{ConversationId, StorageError, Store, UserId};

/// Most readers listed by [`receipts`] (the counts count all).
pub const MAX_READERS: usize = 500;

/// Who has read one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCounts {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The message's seq.
    pub seq: u64,
    /// Members other than the sender (in a group, those who joined before it) who read it.
    pub read_count: u32,
    /// ...and who have not.
    pub unread_count: u32,
    /// Who read it, by id; at most [`MAX_READERS`].
    pub readers: Vec<PublicUser>,
    /// 1:1: the caller's peer's read position (0 in groups).
    pub peer_read_seq: u64,
    /// 1:1: the highest seq any device of the peer acked, at least `peer_read_seq`.
    pub peer_delivered_seq: u64,
    /// A direct conversation (the `peer_*` fields apply).
    pub direct: bool,
}

impl Store {
    /// The receipts of message `seq` in `conversation`, for `user`: in 1:1 either member may
    /// ask, in a group the sender and the group's admins and owner.
    ///
    /// # Errors
    /// [`StorageError::Forbidden`], [`StorageError::UnknownMessage`]; database errors.
    pub async fn receipts(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<ReceiptCounts, StorageError> {
        self.read_view(move |c, view| receipts(c, view, user, conversation, seq))
            .await
    }
}

/// See [`Store::receipts`].
///
/// # Errors
/// As [`Store::receipts`].
pub(crate) fn receipts(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
) -> Result<ReceiptCounts, StorageError> {
    let Some((pair, role)) = member(c, user, conversation)? else {
        return Err(StorageError::Forbidden);
    };
    let m = message_at(c, view, conversation, seq, pair)?.ok_or(StorageError::UnknownMessage)?;
    let mut out = ReceiptCounts {
        conversation_id: conversation,
        seq,
        read_count: 0,
        unread_count: 0,
        readers: Vec::new(),
        peer_read_seq: 0,
        peer_delivered_seq: 0,
        direct: pair.is_some(),
    };
    let mut reader_ids = Vec::new();
    if let Some((a, b)) = pair {
        let peer = if user == a { b } else { a };
        out.peer_read_seq = read_seq(c, peer, conversation)?;
        out.peer_delivered_seq = delivered_seq(c, peer, conversation)?.max(out.peer_read_seq);
        let recipient = if m.from_user == a { b } else { a };
        if read_seq(c, recipient, conversation)? >= seq {
            out.read_count = 1;
            reader_ids.push(recipient);
        } else {
            out.unread_count = 1;
        }
    } else {
        if m.from_user != user && role < 1 {
            return Err(StorageError::Forbidden);
        }
        let mut st = c.prepare_cached(
            "SELECT mb.user_id, COALESCE(r.seq, 0) >= ?3 FROM members mb
             LEFT JOIN read_positions r
               ON r.user_id = mb.user_id AND r.conversation_id = mb.conversation_id
             WHERE mb.conversation_id = ?1 AND mb.user_id <> ?2 AND mb.joined_seq < ?3
             ORDER BY mb.user_id",
        )?;
        let rows = st.query_map(
            params![Uint(conversation), Uint(m.from_user), Uint(seq)],
            |r| Ok((get_u64(r, 0)?, r.get::<_, bool>(1)?)),
        )?;
        for row in rows {
            let (id, read) = row?;
            if read {
                out.read_count += 1;
                if reader_ids.len() < MAX_READERS {
                    reader_ids.push(id);
                }
            } else {
                out.unread_count += 1;
            }
        }
    }
    for id in reader_ids {
        if let Some(u) = public_user(c, id)? {
            out.readers.push(u);
        }
    }
    Ok(out)
}
