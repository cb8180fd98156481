//! Writing files' metadata, on the writer ([`crate::Writer::call`]): uploads and their chunks,
//! stored files, stickers, offers' answers, and the sweep of unused files.

use rusqlite::{params, Connection, OptionalExtension};

use super::read::{file, upload, FILE_COLUMNS};
use super::record::{FileRecord, UploadRecord};
use crate::int::{get_u64, Uint};
use crate::{ConversationId, StorageError, UserId};

/// Starts an upload of `owner`'s; `chunks` starts empty.
///
/// # Errors
/// Database errors.
#[allow(clippy::too_many_arguments)]
pub fn begin_upload(
    c: &Connection,
    owner: UserId,
    sha256: &[u8],
    size: u64,
    name: &str,
    mime: &str,
    duration_ms: u32,
    now: i64,
) -> Result<UploadRecord, StorageError> {
    let chunks = vec![
        0u8;
        usize::try_from(size.div_ceil(super::record::CHUNK_SIZE).div_ceil(8))
            .unwrap_or(0)
    ];
    c.prepare_cached(
        "INSERT INTO uploads(owner, sha256, size, name, mime, duration_ms, chunks, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        Uint(owner),
        sha256,
        Uint(size),
        name,
        mime,
        duration_ms,
        chunks,
        now
    ])?;
    Ok(UploadRecord {
        id: crate::int::last_id(c)?,
        owner,
        sha256: sha256.to_vec(),
        size,
        name: name.to_owned(),
        mime: mime.to_owned(),
        duration_ms,
        chunks,
        created_at_ms: now,
    })
}

/// Marks chunk `index` of `owner`'s upload `id` as held; returns the upload.
///
/// # Errors
/// [`StorageError::UnknownUpload`]; database errors.
pub fn record_chunk(
    c: &Connection,
    owner: UserId,
    id: u64,
    index: u64,
) -> Result<UploadRecord, StorageError> {
    let mut up = upload(c, owner, id)?.ok_or(StorageError::UnknownUpload)?;
    if up.has_chunk(index) {
        return Ok(up);
    }
    let byte = usize::try_from(index / 8).map_err(|_| StorageError::UnknownUpload)?;
    let Some(b) = up.chunks.get_mut(byte) else {
        return Err(StorageError::Invalid("chunk index out of range".into()));
    };
    *b |= 1 << (index % 8);
    c.prepare_cached("UPDATE uploads SET chunks = ?2 WHERE id = ?1")?
        .execute(params![Uint(id), up.chunks])?;
    Ok(up)
}

/// Deletes `owner`'s upload `id`; false when there was none.
///
/// # Errors
/// Database errors.
pub fn discard_upload(c: &Connection, owner: UserId, id: u64) -> Result<bool, StorageError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(false);
    };
    Ok(
        c.prepare_cached("DELETE FROM uploads WHERE id = ?1 AND owner = ?2")?
            .execute(params![id, Uint(owner)])?
            > 0,
    )
}

/// The content of a finished upload, as the server found it on disk.
#[derive(Debug, Clone, Default)]
pub struct NewBlob {
    /// SHA-256 (checked).
    pub sha256: Vec<u8>,
    /// Bytes.
    pub size: u64,
    /// Images: pixels (0 otherwise).
    pub width: u32,
    /// Images: pixels.
    pub height: u32,
    /// The MIME type found by sniffing the content ("" when none was found).
    pub sniffed_mime: String,
    /// Measured duration (WAV), replacing the client's.
    pub duration_ms: Option<u32>,
    /// Images: the thumbnail's (sha256, size, width, height), stored on disk already.
    pub thumbnail: Option<(Vec<u8>, u64, u32, u32)>,
}

/// A stored upload.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The new file.
    pub file: FileRecord,
}

/// The blob with these bytes, made if missing (metadata from `b`); its `refs` grows by one.
fn blob(c: &Connection, b: &NewBlob, now: i64) -> Result<u64, StorageError> {
    c.prepare_cached(
        "INSERT INTO blobs(sha256, size, width, height, sniffed_mime, refs, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT(sha256, size) DO UPDATE SET refs = refs + 1",
    )?
    .execute(params![
        b.sha256,
        Uint(b.size),
        b.width,
        b.height,
        b.sniffed_mime,
        now
    ])?;
    Ok(
        c.prepare_cached("SELECT id FROM blobs WHERE sha256 = ?1 AND size = ?2")?
            .query_row(params![b.sha256, Uint(b.size)], |r| get_u64(r, 0))?,
    )
}

/// Stores `owner`'s upload `id` as a file with the content `b` (and its thumbnail), and
/// deletes the upload.
///
/// # Errors
/// [`StorageError::UnknownUpload`]; database errors.
pub fn finish_upload(
    c: &Connection,
    owner: UserId,
    id: u64,
    b: &NewBlob,
    now: i64,
) -> Result<Finished, StorageError> {
    let up = upload(c, owner, id)?.ok_or(StorageError::UnknownUpload)?;
    let thumbnail_id = match &b.thumbnail {
        None => 0,
        Some((sha, size, w, h)) => {
            let tb = NewBlob {
                sha256: sha.clone(),
                size: *size,
                width: *w,
                height: *h,
                sniffed_mime: "image/png".into(),
                ..NewBlob::default()
            };
            let blob_id = blob(c, &tb, now)?;
            // Held by its image: one reference.
            insert_file(
                c,
                blob_id,
                owner,
                "thumbnail.png",
                "image/png",
                0,
                0,
                true,
                1,
                now,
            )?
        }
    };
    let blob_id = blob(c, b, now)?;
    let mime = if b.sniffed_mime.is_empty() {
        &up.mime
    } else {
        &b.sniffed_mime
    };
    let duration = b.duration_ms.unwrap_or(up.duration_ms);
    let file_id = insert_file(
        c,
        blob_id,
        owner,
        &up.name,
        mime,
        duration,
        thumbnail_id,
        false,
        0,
        now,
    )?;
    c.prepare_cached("DELETE FROM uploads WHERE id = ?1")?
        .execute([Uint(id)])?;
    let file = file(c, file_id)?.ok_or(StorageError::UnknownFile)?;
    Ok(Finished { file })
}

#[allow(clippy::too_many_arguments)]
fn insert_file(
    c: &Connection,
    blob_id: u64,
    owner: UserId,
    name: &str,
    mime: &str,
    duration_ms: u32,
    thumbnail_id: u64,
    is_thumbnail: bool,
    refs: i64,
    now: i64,
) -> Result<u64, StorageError> {
    c.prepare_cached(
        "INSERT INTO files(blob_id, owner, name, mime, duration_ms, thumbnail_id, is_thumbnail,
                           created_at_ms, refs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        Uint(blob_id),
        Uint(owner),
        name,
        mime,
        duration_ms,
        Uint(thumbnail_id),
        is_thumbnail,
        now,
        refs
    ])?;
    Ok(crate::int::last_id(c)?)
}

/// A new file of `owner`'s named `name` with the bytes of the stored file `like` (same blob,
/// same thumbnail): a deduplicated upload. `None` when `like` is gone.
///
/// # Errors
/// Database errors.
pub fn dedup_file(
    c: &Connection,
    owner: UserId,
    like: u64,
    name: &str,
    mime: &str,
    duration_ms: u32,
    now: i64,
) -> Result<Option<FileRecord>, StorageError> {
    let Some(src) = file(c, like)? else {
        return Ok(None);
    };
    c.prepare_cached("UPDATE blobs SET refs = refs + 1 WHERE id = ?1")?
        .execute([Uint(src.blob_id)])?;
    if src.thumbnail_id != 0 {
        c.prepare_cached("UPDATE files SET refs = refs + 1, unused_since_ms = NULL WHERE id = ?1")?
            .execute([Uint(src.thumbnail_id)])?;
    }
    // An image keeps its sniffed type; other files take the type this upload gives.
    let mime = if src.width > 0 {
        src.mime.as_str()
    } else {
        mime
    };
    let duration = if src.duration_ms > 0 {
        src.duration_ms
    } else {
        duration_ms
    };
    let id = insert_file(
        c,
        src.blob_id,
        owner,
        name,
        mime,
        duration,
        src.thumbnail_id,
        false,
        0,
        now,
    )?;
    file(c, id)
}

/// Adds file `file_id` to `user`'s stickers (at most `cap`); adding one again moves it first.
///
/// # Errors
/// [`StorageError::Invalid`] past `cap`; database errors.
pub fn add_sticker(
    c: &Connection,
    user: UserId,
    file_id: u64,
    cap: usize,
    now: i64,
) -> Result<(), StorageError> {
    let moved = c
        .prepare_cached("UPDATE stickers SET added_at_ms = ?3 WHERE user_id = ?1 AND file_id = ?2")?
        .execute(params![Uint(user), Uint(file_id), now])?;
    if moved > 0 {
        return Ok(());
    }
    let count: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM stickers WHERE user_id = ?1")?
        .query_row([Uint(user)], |r| r.get(0))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= cap {
        return Err(StorageError::Invalid(format!(
            "you have {cap} stickers, the most allowed; remove one first"
        )));
    }
    c.prepare_cached("INSERT INTO stickers(user_id, file_id, added_at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![Uint(user), Uint(file_id), now])?;
    Ok(())
}

/// Removes file `file_id` from `user`'s stickers; false when it was not one.
///
/// # Errors
/// Database errors.
pub fn remove_sticker(c: &Connection, user: UserId, file_id: u64) -> Result<bool, StorageError> {
    Ok(
        c.prepare_cached("DELETE FROM stickers WHERE user_id = ?1 AND file_id = ?2")?
            .execute(params![Uint(user), Uint(file_id)])?
            > 0,
    )
}

/// Records `user`'s answer to the file offer at (`conversation`, `seq`); returns the
/// conversation's members (to push the answer to).
///
/// # Errors
/// [`StorageError::Forbidden`] (not a member, or the caller sent the offer),
/// [`StorageError::UnknownMessage`] (no offer there); database errors.
pub fn answer_offer(
    c: &Connection,
    user: UserId,
    conversation: ConversationId,
    seq: u64,
    state: i64,
    now: i64,
) -> Result<Vec<UserId>, StorageError> {
    let sender: Option<u64> = c
        .prepare_cached(
            "SELECT sender_id FROM file_uses WHERE conversation_id = ?1 AND seq = ?2 AND offer = 1",
        )?
        .query_row(params![Uint(conversation), Uint(seq)], |r| get_u64(r, 0))
        .optional()?;
    let Some(sender) = sender else {
        return Err(StorageError::UnknownMessage);
    };
    let members: Vec<UserId> = c
        .prepare_cached(
            "SELECT user_id FROM conversation_members WHERE conversation_id = ?1 ORDER BY user_id",
        )?
        .query_map([Uint(conversation)], |r| get_u64(r, 0))?
        .collect::<Result<_, _>>()?;
    if sender == user || members.binary_search(&user).is_err() {
        return Err(StorageError::Forbidden);
    }
    let joined = crate::group::joined_seq(c, conversation, user)?.unwrap_or(0);
    if seq <= joined {
        return Err(StorageError::UnknownMessage);
    }
    c.prepare_cached(
        "INSERT INTO file_offers(conversation_id, seq, user_id, state, answered_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(conversation_id, seq, user_id) DO UPDATE SET state = ?4, answered_at_ms = ?5",
    )?
    .execute(params![
        Uint(conversation),
        Uint(seq),
        Uint(user),
        state,
        now
    ])?;
    Ok(members)
}

/// What a sweep deleted: the blobs whose bytes are to be removed from disk, and the
/// unfinished uploads whose partial files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// (sha256, size) of each deleted blob.
    pub blobs: Vec<(Vec<u8>, u64)>,
    /// Ids of deleted uploads.
    pub uploads: Vec<u64>,
}

/// Deletes up to `limit` files that nothing has used for `grace_ms` (or, never used, since
/// their upload `upload_ttl_ms` ago), the blobs no file holds any more, and uploads
/// started more than `upload_ttl_ms` ago.
///
/// # Errors
/// Database errors.
pub fn sweep(
    c: &Connection,
    now: i64,
    grace_ms: i64,
    upload_ttl_ms: i64,
    limit: usize,
) -> Result<Swept, StorageError> {
    let mut out = Swept::default();
    let mut select = c.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files f JOIN blobs b ON b.id = f.blob_id
         WHERE f.refs = 0
           AND COALESCE(f.unused_since_ms + ?1, f.created_at_ms + ?2) <= ?3
         LIMIT ?4"
    ))?;
    // A deleted image frees its thumbnail, which a second pass may take.
    for _ in 0..2 {
        let gone: Vec<FileRecord> = select
            .query_map(
                params![grace_ms, upload_ttl_ms, now, Uint::from_usize(limit)],
                super::read::file_row,
            )?
            .collect::<Result<_, _>>()?;
        if gone.is_empty() {
            break;
        }
        for f in gone {
            c.prepare_cached("DELETE FROM files WHERE id = ?1")?
                .execute([Uint(f.id)])?;
            if f.thumbnail_id != 0 {
                c.prepare_cached(
                    "UPDATE files SET refs = refs - 1,
                         unused_since_ms = CASE WHEN refs = 1 THEN ?2 END
                     WHERE id = ?1 AND refs > 0",
                )?
                .execute(params![Uint(f.thumbnail_id), now])?;
            }
            let left: Option<i64> = c
                .prepare_cached("UPDATE blobs SET refs = refs - 1 WHERE id = ?1 RETURNING refs")?
                .query_row([Uint(f.blob_id)], |r| r.get(0))
                .optional()?;
            if left.is_some_and(|n| n <= 0) {
                c.prepare_cached("DELETE FROM blobs WHERE id = ?1")?
                    .execute([Uint(f.blob_id)])?;
                out.blobs.push((f.sha256, f.size));
            }
        }
    }
    let mut old = c.prepare_cached(
        "DELETE FROM uploads WHERE id IN
            (SELECT id FROM uploads WHERE created_at_ms <= ?1 ORDER BY created_at_ms LIMIT ?2)
         RETURNING id",
    )?;
    out.uploads = old
        .query_map(
            params![now.saturating_sub(upload_ttl_ms), Uint::from_usize(limit)],
            |r| get_u64(r, 0),
        )?
        .collect::<Result<_, _>>()?;
    Ok(out)
}
