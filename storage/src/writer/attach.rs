//! Messages with work attached ([`Attachment`]): a write that must commit with the message or not at all (a
//! red packet's debit and its row). The work runs in a savepoint with the message's insert,
//! after the sender is found to be a member, so a refusal of either undoes both. Plain
//! messages never come here.

use rusqlite::Connection;

use super::op::{Attached, Attachment, Delivered, NewMessage};
use super::state::State;
use crate::{ConversationId, StorageError};

impl State {
    /// Runs `attach` and stores `m` as `id` in one savepoint; a resend of a stored client id
    /// returns the original without running `attach`.
    pub(super) fn attached<C>(
        &mut self,
        c: &Connection,
        m: &mut NewMessage<C>,
        attach: Attachment,
        conv_id: ConversationId,
        id: u64,
        now: i64,
    ) -> Result<Delivered, StorageError> {
        if let Some(original) = self.original(c, m)? {
            return Ok(original);
        }
        let members = self.conv(c, conv_id)?.members.clone();
        if members.as_slice().binary_search(&m.sender).is_err() {
            return Err(StorageError::Forbidden);
        }
        c.execute_batch("SAVEPOINT attach")?;
        let info = Attached {
            message_id: id,
            conversation_id: conv_id,
            sender: m.sender,
            members: &members,
            now_ms: now,
        };
        let result = attach(c, &info).and_then(|()| self.store(c, m, conv_id, id, now));
        match result {
            Ok(d) => match c.execute_batch("RELEASE attach") {
                Ok(()) => Ok(d),
                Err(e) => {
                    // The row is not kept after all: the conversation's seq and the pending
                    // index entry go back.
                    if let Some(conv) = self.convs.get_mut(&conv_id) {
                        conv.last_seq -= 1;
                    }
                    self.pending.pop();
                    Err(self.undo(c, e.into()))
                }
            },
            Err(e) => Err(self.undo(c, e)),
        }
    }

    /// Rolls the savepoint back; returns `e` (or why the rollback failed).
    fn undo(&self, c: &Connection, e: StorageError) -> StorageError {
        match c.execute_batch("ROLLBACK TO attach; RELEASE attach") {
            Ok(()) => e,
            Err(undo) => {
                tracing::error!(error = %undo, "cannot roll back an attached message");
                StorageError::CommitFailed(undo.to_string())
            }
        }
    }
}
