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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::Connection;

    use super::super::op::{Attachment, NewMessage, Target};
    use super::super::state::State;
    use crate::StorageError;

    fn message(from: u64, target: Target, client_msg_id: u64) -> NewMessage<()> {
        NewMessage {
            ctx: (),
            sender: from,
            target,
            client_msg_id,
            kind: 6,
            text: "packet".into(),
            mentions: None,
            file: None,
        }
    }

    /// Records a wallet row for the sender, then fails or not.
    fn attachment(fail: bool) -> Attachment {
        Box::new(move |c: &Connection, m: &super::Attached<'_>| {
            c.execute(
                "INSERT INTO wallets(user_id, balance_cents) VALUES (?1, ?2)",
                [m.sender as i64, m.message_id as i64],
            )?;
            if fail {
                return Err(StorageError::InsufficientFunds { balance_cents: 0 });
            }
            Ok(())
        })
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_work_and_the_message_commit_together_or_not_at_all() {
        let c = crate::schema::migrated_in_memory();
        for i in 1..=3 {
            crate::account::insert_user(&c, &format!("u{i}"), "n", b"s", b"h").unwrap();
        }
        let recent = Arc::new(crate::recent::Recent::load(&c).unwrap());
        let mut st = State::load(
            &c,
            crate::social::DirectPolicy::Anyone,
            100,
            recent,
            1 << 20,
        )
        .unwrap();
        c.execute_batch("BEGIN").unwrap();
        // Failing work: neither its row nor the message stays, and no seq is used.
        let mut m = message(1, Target::Direct(2), 0);
        let r = st.insert_with(&c, &mut m, Some(attachment(true)), 10);
        assert!(matches!(r, Err(StorageError::InsufficientFunds { .. })));
        assert_eq!((count(&c, "wallets"), count(&c, "messages")), (0, 0));
        let mut m = message(1, Target::Direct(2), 9);
        let d = st
            .insert_with(&c, &mut m, Some(attachment(false)), 11)
            .unwrap();
        assert_eq!((d.message.seq, d.duplicate), (1, false));
        let stored: i64 = c
            .query_row(
                "SELECT balance_cents FROM wallets WHERE user_id = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored as u64, d.message.id, "the work saw the message's id");
        // A resend is the original; its work does not run (it would fail).
        let mut again = message(1, Target::Direct(2), 9);
        let dup = st
            .insert_with(&c, &mut again, Some(attachment(true)), 12)
            .unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.message.id, d.message.id);
        // Plain messages go on from the next seq.
        let mut plain = message(2, Target::Direct(1), 0);
        assert_eq!(st.insert(&c, &mut plain, 13).unwrap().message.seq, 2);
        // Not a member: refused before the work runs.
        let conv = d.message.conversation_id;
        let mut stranger = message(3, Target::Conversation(conv), 0);
        let r = st.insert_with(&c, &mut stranger, Some(attachment(false)), 14);
        assert!(matches!(r, Err(StorageError::Forbidden)));
        c.execute_batch("COMMIT").unwrap();
        assert_eq!((count(&c, "wallets"), count(&c, "messages")), (1, 2));
    }
}
