//! Reading files' metadata: a file, who may read it, quotas, uploads, stickers, offers.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::record::{FileRecord, UploadRecord};
use crate::int::{get_u64, Uint};
use crate::message::StoredMessage;
use crate::sequence::View;
use crate::{ConversationId, StorageError, UserId};

/// The columns [`file_row`] reads, from `files f JOIN blobs b`.
pub(super) const FILE_COLUMNS: &str =
    "f.id, f.blob_id, f.owner, f.name, f.mime, b.size, b.sha256, \
     b.width, b.height, f.duration_ms, f.thumbnail_id, f.created_at_ms";

pub(super) fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: get_u64(r, 0)?,
        blob_id: get_u64(r, 1)?,
        owner: get_u64(r, 2)?,
        name: r.get(3)?,
        mime: r.get(4)?,
        size: get_u64(r, 5)?,
        sha256: r.get(6)?,
        width: r.get(7)?,
        height: r.get(8)?,
        duration_ms: r.get(9)?,
        thumbnail_id: get_u64(r, 10)?,
        created_at_ms: r.get(11)?,
    })
}

/// The file `id`, if it exists.
///
/// # Errors
/// Database errors.
pub fn file(c: &Connection, id: u64) -> Result<Option<FileRecord>, StorageError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    Ok(c.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files f JOIN blobs b ON b.id = f.blob_id WHERE f.id = ?1"
    ))?
    .query_row([id], file_row)
    .optional()?)
}

/// Whether a user may read a file (see [`access`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Yes: the file.
    Readable(FileRecord),
    /// It reached the user only as a file offer they have not accepted.
    OfferNotAccepted,
    /// It exists, and nothing lets the user read it.
    Forbidden,
    /// No such file.
    NotFound,
}

/// Whether `user` may read file `id`: its uploader; anyone for an avatar (a user's or a
/// group's); the members of a conversation with a message using it (a group's only from
/// their joining on; an offer only once accepted, or by its sender); the user's own
/// stickers; and a thumbnail wherever its image is readable.
///
/// # Errors
/// Database errors.
pub fn access(c: &Connection, user: UserId, id: u64) -> Result<Access, StorageError> {
    let Some(f) = file(c, id)? else {
        return Ok(Access::NotFound);
    };
    let access = direct_access(c, user, &f)?;
    if access != Access::Forbidden {
        return Ok(access);
    }
    // A thumbnail is readable wherever one of its images is.
    let parents: Vec<u64> = c
        .prepare_cached(
            "SELECT id FROM files WHERE thumbnail_id = ?1 AND thumbnail_id <> 0 LIMIT 16",
        )?
        .query_map([Uint(id)], |r| get_u64(r, 0))?
        .collect::<Result<_, _>>()?;
    for p in parents {
        if let Some(parent) = file(c, p)? {
            if matches!(direct_access(c, user, &parent)?, Access::Readable(_)) {
                return Ok(Access::Readable(f));
            }
        }
    }
    Ok(Access::Forbidden)
}

fn direct_access(c: &Connection, user: UserId, f: &FileRecord) -> Result<Access, StorageError> {
    if f.owner == user {
        return Ok(Access::Readable(f.clone()));
    }
    let (public, sticker): (i64, bool) = c
        .prepare_cached(
            "SELECT public, EXISTS (SELECT 1 FROM stickers WHERE user_id = ?2 AND file_id = ?1)
             FROM files WHERE id = ?1",
        )?
        .query_row(params![Uint(f.id), Uint(user)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if public > 0 || sticker {
        return Ok(Access::Readable(f.clone()));
    }
    let mut st = c.prepare_cached(
        "SELECT u.offer, u.sender_id, COALESCE(o.state, 1)
         FROM file_uses u
         JOIN conversation_members mb ON mb.conversation_id = u.conversation_id AND mb.user_id = ?2
         LEFT JOIN members g ON g.conversation_id = u.conversation_id AND g.user_id = ?2
         LEFT JOIN file_offers o
           ON o.conversation_id = u.conversation_id AND o.seq = u.seq AND o.user_id = ?2
         WHERE u.file_id = ?1 AND u.seq > COALESCE(g.joined_seq, 0)",
    )?;
    let uses: Vec<(bool, u64, i64)> = st
        .query_map(params![Uint(f.id), Uint(user)], |r| {
            Ok((r.get(0)?, get_u64(r, 1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    if uses
        .iter()
        .any(|&(offer, sender, state)| !offer || sender == user || state == OFFER_ACCEPTED)
    {
        return Ok(Access::Readable(f.clone()));
    }
    if uses.is_empty() {
        Ok(Access::Forbidden)
    } else {
        Ok(Access::OfferNotAccepted)
    }
}

/// The protocol's `FILE_OFFER_STATE_PENDING`.
pub const OFFER_PENDING: i64 = 1;
/// The protocol's `FILE_OFFER_STATE_ACCEPTED`.
pub const OFFER_ACCEPTED: i64 = 2;
/// The protocol's `FILE_OFFER_STATE_DECLINED`.
pub const OFFER_DECLINED: i64 = 3;

/// The bytes counted against `user`'s quota: the files they uploaded (a deduplicated upload
/// counts too; thumbnails do not) and their unfinished uploads.
///
/// # Errors
/// Database errors.
pub fn files_owned_bytes(c: &Connection, user: UserId) -> Result<u64, StorageError> {
    let stored: i64 = c
        .prepare_cached(
            "SELECT COALESCE(SUM(b.size), 0) FROM files f JOIN blobs b ON b.id = f.blob_id
             WHERE f.owner = ?1 AND f.is_thumbnail = 0",
        )?
        .query_row([Uint(user)], |r| r.get(0))?;
    let pending: i64 = c
        .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM uploads WHERE owner = ?1")?
        .query_row([Uint(user)], |r| r.get(0))?;
    Ok(u64::try_from(stored.saturating_add(pending)).unwrap_or(0))
}

/// A stored file with these bytes (the first upload's, a non-thumbnail first), if any.
///
/// # Errors
/// Database errors.
pub fn find_blob(
    c: &Connection,
    sha256: &[u8],
    size: u64,
) -> Result<Option<FileRecord>, StorageError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM blobs b JOIN files f ON f.blob_id = b.id
         WHERE b.sha256 = ?1 AND b.size = ?2 ORDER BY f.is_thumbnail, f.id LIMIT 1"
    ))?
    .query_row(params![sha256, Uint(size)], file_row)
    .optional()?)
}

const UPLOAD_COLUMNS: &str =
    "id, owner, sha256, size, name, mime, duration_ms, chunks, created_at_ms";

pub(super) fn upload_row(r: &Row<'_>) -> rusqlite::Result<UploadRecord> {
    Ok(UploadRecord {
        id: get_u64(r, 0)?,
        owner: get_u64(r, 1)?,
        sha256: r.get(2)?,
        size: get_u64(r, 3)?,
        name: r.get(4)?,
        mime: r.get(5)?,
        duration_ms: r.get(6)?,
        chunks: r.get(7)?,
        created_at_ms: r.get(8)?,
    })
}

/// `owner`'s unfinished upload of these bytes, if any.
///
/// # Errors
/// Database errors.
pub fn find_upload(
    c: &Connection,
    owner: UserId,
    sha256: &[u8],
    size: u64,
) -> Result<Option<UploadRecord>, StorageError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE owner = ?1 AND sha256 = ?2 AND size = ?3
         ORDER BY id LIMIT 1"
    ))?
    .query_row(params![Uint(owner), sha256, Uint(size)], upload_row)
    .optional()?)
}

/// The upload `id` if `owner` started it.
///
/// # Errors
/// Database errors.
pub fn upload(
    c: &Connection,
    owner: UserId,
    id: u64,
) -> Result<Option<UploadRecord>, StorageError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    Ok(c.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1 AND owner = ?2"
    ))?
    .query_row(params![id, Uint(owner)], upload_row)
    .optional()?)
}

/// Which of `ids` name an unfinished upload, sorted.
///
/// # Errors
/// Database errors.
pub fn live_uploads(c: &Connection, ids: &[u64]) -> Result<Vec<u64>, StorageError> {
    let mut st = c.prepare_cached("SELECT 1 FROM uploads WHERE id = ?1")?;
    let mut live = Vec::new();
    for &id in ids {
        if st.query_row([Uint(id)], |_| Ok(())).optional()?.is_some() {
            live.push(id);
        }
    }
    live.sort_unstable();
    Ok(live)
}

/// `user`'s stickers, newest first.
///
/// # Errors
/// Database errors.
pub fn stickers(c: &Connection, user: UserId) -> Result<Vec<FileRecord>, StorageError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM stickers s JOIN files f ON f.id = s.file_id
         JOIN blobs b ON b.id = f.blob_id
         WHERE s.user_id = ?1 ORDER BY s.added_at_ms DESC, s.file_id DESC"
    ))?;
    let rows = st.query_map([Uint(user)], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether file `file_id` is one of `user`'s stickers.
///
/// # Errors
/// Database errors.
pub fn is_sticker(c: &Connection, user: UserId, file_id: u64) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM stickers WHERE user_id = ?1 AND file_id = ?2")?
            .query_row(params![Uint(user), Uint(file_id)], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// `user`'s answer to the file offer at (`conversation`, `seq`): [`OFFER_PENDING`] until
/// they answer. In a direct conversation the sender reads the recipient's answer.
///
/// # Errors
/// Database errors.
pub fn offer_state(
    c: &Connection,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
) -> Result<i64, StorageError> {
    let state: Option<i64> = c
        .prepare_cached(
            "SELECT o.state FROM file_offers o
             WHERE o.conversation_id = ?1 AND o.seq = ?2
               AND (o.user_id = ?3 OR (EXISTS (SELECT 1 FROM conversations c
                       WHERE c.id = ?1 AND c.kind = 1)
                   AND EXISTS (SELECT 1 FROM file_uses u WHERE u.conversation_id = ?1
                       AND u.seq = ?2 AND u.sender_id = ?3)))
             ORDER BY o.user_id = ?3 DESC LIMIT 1",
        )?
        .query_row(params![Uint(conversation), Uint(seq), Uint(user)], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(state.unwrap_or(OFFER_PENDING))
}

/// [`offer_state`] of each (conversation, seq) of `offers`, in order.
///
/// # Errors
/// Database errors.
pub fn offer_states(
    c: &Connection,
    user: UserId,
    offers: &[(ConversationId, u64)],
) -> Result<Vec<i64>, StorageError> {
    offers
        .iter()
        .map(|&(conv, seq)| offer_state(c, user, conv, seq))
        .collect()
}

/// The message `seq` of `conversation` if `user` may read it (a member; in a group, sent
/// after their joining); `None` when there is no such message or it precedes their joining.
///
/// # Errors
/// [`StorageError::Forbidden`] when `user` is not a member; database errors.
pub(crate) fn message_for(
    c: &Connection,
    view: &View<'_>,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
) -> Result<Option<StoredMessage>, StorageError> {
    let Some((pair, _)) = crate::receipts::member(c, user, conversation)? else {
        return Err(StorageError::Forbidden);
    };
    if pair.is_none() {
        let joined = crate::group::joined_seq(c, conversation, user)?.unwrap_or(0);
        if seq <= joined {
            return Ok(None);
        }
    }
    crate::receipts::message_at(c, view, conversation, seq, pair)
}
