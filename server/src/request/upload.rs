//! UploadBegin, UploadChunk, UploadFinish and UploadAbort: a file's bytes come in chunks of
//! 256 KiB, in any order, each written on the file pool at its offset and recorded in the
//! upload's chunk bitmap (so an upload resumes after a reconnect or a restart); the finish
//! hashes the bytes, refuses a mismatch and moves the blob into place.

use feige_protocol::{pb, ErrorCode, ResponseResult};
use feige_storage::blobs::{self, NewBlob, UploadRecord, CHUNK_SIZE};
use feige_storage::{FileRecord, StorageError};

use super::caller::{Caller, Conn, Flow, Reply, SMALL_REPLY};
use crate::convert;
use crate::error::RequestError;
use crate::files::{disk, names};

/// What UploadBegin found, decided in one writer job so that two begins cannot both pass
/// the quota.
enum Begun {
    /// The same bytes are stored: a new file of the caller's with them.
    Deduplicated(FileRecord),
    /// The caller's unfinished upload of these bytes, or a new one.
    Upload(UploadRecord),
    /// Past the quota: the bytes the caller holds already.
    OverQuota(u64),
}

/// Serves `UploadBegin`: deduplicates, resumes or starts an upload. A deduplicated upload
/// counts against the caller's quota like any other: it is a file of theirs.
pub(crate) async fn begin(me: Caller, r: pb::UploadBegin) -> Reply {
    let name = names::file_name(&r.name)?;
    let mime = names::mime(&r.mime)?;
    let config = &me.shared.config;
    if r.size == 0 {
        return Err(RequestError::invalid("size must be at least 1 byte"));
    }
    if r.size > config.max_file_size {
        return Err(RequestError::new(
            ErrorCode::FileTooLarge,
            format!(
                "the file has {} bytes; this server takes at most {}",
                r.size, config.max_file_size
            ),
        ));
    }
    if r.sha256.len() != 32 {
        return Err(RequestError::invalid("sha256 must be 32 bytes"));
    }
    let (user, size, quota, duration) = (me.user, r.size, config.file_quota_bytes, r.duration_ms);
    let sha = r.sha256.to_vec();
    let now = feige_storage::now_ms();
    let begun = me
        .shared
        .writer
        .call(move |c| {
            if let Some(up) = blobs::find_upload(c, user, &sha, size)? {
                return Ok(Begun::Upload(up));
            }
            let used = blobs::files_owned_bytes(c, user)?;
            if used.saturating_add(size) > quota {
                return Ok(Begun::OverQuota(used));
            }
            if let Some(like) = blobs::find_blob(c, &sha, size)? {
                if let Some(f) = blobs::dedup_file(c, user, like.id, &name, &mime, duration, now)? {
                    return Ok(Begun::Deduplicated(f));
                }
            }
            let up = blobs::begin_upload(c, user, &sha, size, &name, &mime, duration, now)?;
            Ok(Begun::Upload(up))
        })
        .await?;
    match begun {
        Begun::OverQuota(used) => Err(RequestError::new(
            ErrorCode::QuotaExceeded,
            format!("you hold {used} bytes of files; {size} more would pass your quota of {quota}"),
        )),
        Begun::Deduplicated(f) => {
            let count = u32::try_from(size.div_ceil(CHUNK_SIZE)).unwrap_or(u32::MAX);
            Ok(ResponseResult::UploadBegin(pb::UploadState {
                upload_id: 0,
                complete: true,
                deduplicated: true,
                chunk_size: CHUNK_SIZE as u32,
                chunk_count: count,
                received: Vec::new().into(),
                received_bytes: size,
                file: Some(convert::file_info(&f)),
            }))
        }
        Begun::Upload(up) => Ok(ResponseResult::UploadBegin(state(&up))),
    }
}

/// The room an UploadState or FileInfo answer needs: a small reply and the largest chunk
/// bitmap `max_file_size` allows.
pub(crate) fn reply_room(config: &crate::config::Config) -> usize {
    let bitmap = config.max_file_size.div_ceil(CHUNK_SIZE).div_ceil(8);
    SMALL_REPLY + usize::try_from(bitmap).unwrap_or(usize::MAX / 2)
}

fn state(up: &UploadRecord) -> pb::UploadState {
    pb::UploadState {
        upload_id: up.id,
        complete: false,
        deduplicated: false,
        chunk_size: CHUNK_SIZE as u32,
        chunk_count: u32::try_from(up.chunk_count()).unwrap_or(u32::MAX),
        received: up.chunks.clone().into(),
        received_bytes: up.received_bytes(),
        file: None,
    }
}

/// Serves `UploadChunk` off the connection task, once the connection has room for its bytes
/// (`upload_bytes_per_connection`; `BUSY` otherwise), so chat on the connection goes on
/// while the chunk is written.
pub(crate) async fn chunk(conn: &mut Conn, rid: u64, r: pb::UploadChunk) -> Flow {
    let Some(me) = conn.caller() else {
        return conn.not_logged_in(rid);
    };
    let Some(permit) = conn.transfer_permit(r.data.len()) else {
        let e = RequestError::new(
            ErrorCode::Busy,
            "too many upload bytes in flight on this connection; wait for a ChunkOk",
        );
        conn.respond(rid, Err(e));
        return Flow::Continue;
    };
    conn.spawn_reply(rid, SMALL_REPLY, async move {
        let reply = write_chunk(&me, r).await;
        drop(permit);
        reply
    })
    .await
}

async fn write_chunk(me: &Caller, r: pb::UploadChunk) -> Reply {
    let (user, id, index) = (me.user, r.upload_id, u64::from(r.index));
    // One job on the file pool reads the upload's row and writes the chunk: a hop less per
    // chunk than reading on tokio's blocking threads first.
    let (store, path) = (me.shared.store.clone(), me.shared.files.upload_path(id));
    let shared = me.shared.clone();
    let sync = me.shared.config.durability == crate::config::Durability::Fsync;
    let data = r.data;
    me.shared
        .files
        .pool
        .run(data.len(), move |()| -> Result<(), RequestError> {
            let up = store
                .read_blocking(|c| blobs::upload(c, user, id))?
                .ok_or_else(no_upload)?;
            if index >= up.chunk_count() {
                return Err(RequestError::invalid(format!(
                    "chunk index {index} is out of range: the upload has {} chunks",
                    up.chunk_count()
                )));
            }
            let want = up.chunk_len(index);
            if data.len() as u64 != want {
                return Err(RequestError::invalid(format!(
                    "chunk {index} must have {want} bytes, not {}",
                    data.len()
                )));
            }
            if !up.has_chunk(index) {
                disk::write_chunk(&path, index * CHUNK_SIZE, &data, sync).map_err(io_error)?;
                let running = &shared.files.running;
                running.chunk_written(id, index, &data, &path, CHUNK_SIZE);
            }
            Ok(())
        })
        .await??;
    let up = match me
        .shared
        .writer
        .call(move |c| blobs::record_chunk(c, user, id, index))
        .await
    {
        Ok(up) => up,
        Err(StorageError::UnknownUpload) => {
            // Aborted (or expired) while the chunk was written: its bytes go too.
            let path = me.shared.files.upload_path(id);
            let _ = me
                .shared
                .files
                .pool
                .run(0, move |()| disk::remove(&[path]))
                .await;
            return Err(no_upload());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ResponseResult::UploadChunk(pb::ChunkOk {
        upload_id: id,
        index: r.index,
        received_bytes: up.received_bytes(),
        all_received: up.complete(),
    }))
}

/// Serves `UploadFinish`: checks the SHA-256 on the file pool and stores the file.
pub(crate) async fn finish(me: Caller, r: pb::UploadFinish) -> Reply {
    let (user, id) = (me.user, r.upload_id);
    let up = me
        .shared
        .store
        .read(move |c| blobs::upload(c, user, id))
        .await?
        .ok_or_else(no_upload)?;
    if !up.complete() {
        let missing = (0..up.chunk_count()).filter(|&i| !up.has_chunk(i)).count();
        return Err(RequestError::new(
            ErrorCode::UploadIncomplete,
            format!("{missing} chunks are missing (UploadBegin again to see which)"),
        ));
    }
    let files = &me.shared.files;
    let _place = files.place.read().await;
    let (partial, blob, root) = (
        files.upload_path(id),
        files.blob_path(&up.sha256),
        files.root(),
    );
    let (sha, size) = (up.sha256.clone(), up.size);
    let sync = me.shared.config.durability == crate::config::Durability::Fsync;
    let known = files.running.finish(id, up.chunk_count());
    let stored = files
        .pool
        .run(0, move |()| {
            disk::store(&partial, &blob, &root, &sha, size, sync, known)
        })
        .await?
        .map_err(|e| match e.kind() {
            // Another UploadFinish of it took the bytes first.
            std::io::ErrorKind::NotFound => no_upload(),
            _ => io_error(e),
        })?;
    let (media, thumbnail) = match stored {
        disk::Stored::Mismatch => {
            me.shared
                .writer
                .call(move |c| blobs::discard_upload(c, user, id))
                .await?;
            return Err(RequestError::new(
                ErrorCode::HashMismatch,
                "the bytes received do not have the SHA-256 given in UploadBegin; the upload \
                 is discarded",
            ));
        }
        disk::Stored::Blob(media, thumbnail) => (media, thumbnail),
    };
    // A type that claims an image the bytes are not is not kept.
    let sniffed = if !media.image_mime.is_empty() {
        media.image_mime.to_owned()
    } else if up.mime.starts_with("image/") {
        "application/octet-stream".to_owned()
    } else {
        String::new()
    };
    let blob = NewBlob {
        sha256: up.sha256,
        size: up.size,
        width: media.width,
        height: media.height,
        sniffed_mime: sniffed,
        duration_ms: media.duration_ms,
        thumbnail,
    };
    let now = feige_storage::now_ms();
    let (sha, size) = (blob.sha256.clone(), blob.size);
    let done = me
        .shared
        .writer
        .call(move |c| blobs::finish_upload(c, user, id, &blob, now))
        .await;
    match done {
        Ok(done) => Ok(ResponseResult::UploadFinish(convert::file_info(&done.file))),
        Err(e) => {
            // Aborted or expired meanwhile: bytes in place that no row holds go again.
            let (check, path) = (sha.clone(), files.blob_path(&sha));
            let held = me
                .shared
                .store
                .read(move |c| blobs::find_blob(c, &check, size))
                .await;
            if matches!(held, Ok(None)) {
                let _ = files.pool.run(0, move |()| disk::remove(&[path])).await;
            }
            Err(e.into())
        }
    }
}

/// Serves `UploadAbort`: deletes the upload and its partial file.
pub(crate) async fn abort(me: Caller, r: pb::UploadAbort) -> Reply {
    let (user, id) = (me.user, r.upload_id);
    if !me
        .shared
        .writer
        .call(move |c| blobs::discard_upload(c, user, id))
        .await?
    {
        return Err(no_upload());
    }
    me.shared.files.running.forget(id);
    let path = me.shared.files.upload_path(id);
    if me
        .shared
        .files
        .pool
        .run(0, move |()| disk::remove(&[path]))
        .await
        .is_err()
    {
        // The pool is full: no sweep would find the file later, so remove it here.
        let path = me.shared.files.upload_path(id);
        let _ = tokio::task::spawn_blocking(move || disk::remove(&[path])).await;
    }
    Ok(ResponseResult::UploadAbort(pb::Done {}))
}

fn no_upload() -> RequestError {
    RequestError::new(
        ErrorCode::NotFound,
        "no such upload of yours (finished, aborted or expired?)",
    )
}

/// A file operation that failed on the server's side.
pub(super) fn io_error(e: std::io::Error) -> RequestError {
    tracing::error!(error = %e, "file i/o failed");
    RequestError::new(
        ErrorCode::Internal,
        "the server could not read or write the file",
    )
}
