//! The rules a group message is checked against on the writer: the cached members with
//! their roles and mutes, who may speak, and who may be mentioned; and a message's file.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::op::{GroupMembers, Members, Mentions, NewMessage};
use crate::int::{get_u64, Uint};
use crate::FileRef;
use crate::{ConversationId, StorageError, UserId};

/// A group's members as the writer caches them (read at a cache miss and after each change).
pub(super) fn load_members(c: &Connection, id: ConversationId) -> Result<Members, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT user_id, role, muted_until_ms FROM members WHERE conversation_id = ?1
         ORDER BY user_id",
    )?;
    let mut ids = Vec::new();
    let mut rules = Vec::new();
    let mut rows = st.query([Uint(id)])?;
    while let Some(r) = rows.next()? {
        ids.push(get_u64(r, 0)?);
        rules.push((u8::try_from(r.get::<_, i64>(1)?).unwrap_or(0), r.get(2)?));
    }
    let mute_all = c
        .prepare_cached("SELECT mute_all FROM groups WHERE conversation_id = ?1")?
        .query_row([Uint(id)], |r| r.get(0))
        .unwrap_or(false);
    Ok(Members::Group(Arc::new(GroupMembers {
        ids: ids.into(),
        rules: rules.into(),
        mute_all,
    })))
}

/// Why `m` may not be sent to a conversation with these members, if it may not: not a
/// member, muted, or mentions that break the rules (only in groups; @all by owner and admins
/// only; every user mentioned a member).
pub(super) fn refusal<C>(members: &Members, m: &NewMessage<C>, now: i64) -> Option<StorageError> {
    let i = match members.as_slice().binary_search(&m.sender) {
        Ok(i) => i,
        Err(_) => {
            return Some(match members {
                Members::Pair(_) => StorageError::Forbidden,
                Members::Group(_) => StorageError::NotAMember("you are not a member of this group"),
            })
        }
    };
    let Members::Group(g) = members else {
        return m
            .mentions
            .as_ref()
            .map(|_| StorageError::Invalid("mentions are for group messages".into()));
    };
    let (role, muted_until) = g.rules.get(i).copied().unwrap_or((0, 0));
    // A member's own mute holds whatever their role (the owner mutes admins); muting the
    // whole group leaves the owner and admins their voice.
    if muted_until > now {
        let left = u64::try_from(muted_until - now).unwrap_or(0);
        return Some(StorageError::Muted {
            retry_after_ms: left,
        });
    }
    if g.mute_all && role == 0 {
        return Some(StorageError::Muted { retry_after_ms: 0 });
    }
    if let Some(mn) = &m.mentions {
        if mn.all && role == 0 {
            return Some(StorageError::NotAllowed(
                "only the owner and admins may mention everyone",
            ));
        }
        if let Some(u) = mn.users.iter().find(|u| g.ids.binary_search(u).is_err()) {
            return Some(StorageError::Invalid(format!(
                "mentioned user {u} is not a member of this group"
            )));
        }
    }
    None
}

/// Records the mentions of a stored group message: one row per user, 0 for @all.
pub(super) fn record_mentions(
    c: &Connection,
    sender: UserId,
    mn: &Mentions,
    conv: ConversationId,
    seq: u64,
) -> Result<(), StorageError> {
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO mentions(conversation_id, user_id, seq, sender_id)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for &u in mn.users.iter().chain(mn.all.then_some(&0)) {
        st.execute(params![Uint(conv), Uint(u), Uint(seq), Uint(sender)])?;
    }
    Ok(())
}

/// Takes back a message whose mentions could not be stored (best effort: the statements
/// fail only when the database does, and then so does the batch's commit).
pub(super) fn unstore(c: &Connection, id: u64, conv: ConversationId, seq: u64) {
    let undo = c
        .prepare_cached("DELETE FROM messages WHERE id = ?1")
        .and_then(|mut st| st.execute([Uint(id)]))
        .and_then(|_| {
            c.prepare_cached("DELETE FROM mentions WHERE conversation_id = ?1 AND seq = ?2")?
                .execute(params![Uint(conv), Uint(seq)])
        });
    if let Err(e) = undo {
        tracing::error!(error = %e, "cannot take back a message whose mentions failed");
    }
}

/// The `messages.attachment` text of a message's file, once the file is found to exist
/// still (a sweep may have taken it since the sender's request was checked).
pub(super) fn file_attachment(c: &Connection, f: &FileRef) -> Result<String, StorageError> {
    c.prepare_cached("SELECT 1 FROM files WHERE id = ?1")?
        .query_row([Uint(f.file.id)], |_| Ok(()))
        .optional()?
        .ok_or(StorageError::UnknownFile)?;
    Ok(f.encode())
}

/// Records that message `id` uses its file (a trigger counts the reference).
pub(super) fn record_file_use(
    c: &Connection,
    f: &FileRef,
    conv: ConversationId,
    seq: u64,
    id: u64,
    sender: UserId,
) -> Result<(), StorageError> {
    c.prepare_cached(
        "INSERT INTO file_uses(file_id, conversation_id, seq, message_id, sender_id, offer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        Uint(f.file.id),
        Uint(conv),
        Uint(seq),
        Uint(id),
        Uint(sender),
        f.offer
    ])?;
    Ok(())
}
