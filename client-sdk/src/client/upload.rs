//! Uploading a file: hash it, begin (or resume, or complete at once when the server holds
//! the same bytes), send the chunks the server lacks with a few in flight, finish. A lost
//! connection begins again on the next one and sends only what the server still lacks.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Client;
use crate::link::{unexpected, Inner, Purpose};
use crate::transfer::{self, ChunkPlan, Progress, Reporter};
use crate::ClientError;

/// Upload chunks in flight at once (2 MiB): enough to keep the server's file workers busy
/// (measured: 8 went ~10 % faster than 4 over loopback), half the server's default budget of
/// chunk bytes per connection (`upload_bytes_per_connection`, 4 MiB), and little enough that a
/// chat message on the same connection waits behind a few ms of chunks at most.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 8;
/// Connections an upload or download may be resumed on after the first is lost.
pub(crate) const TRANSFER_RECONNECTS: u32 = 10;
/// Longest wait for a lost connection to come back before a transfer gives up.
pub(crate) const RECONNECT_WAIT: Duration = Duration::from_secs(60);
/// A chunk refused with `BUSY` (the server's file workers are full) is sent again this often.
const BUSY_RETRIES: u32 = 20;

/// A finished upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The stored file.
    pub file: pb::FileInfo,
    /// The server held these bytes already, so nothing was sent ("秒传").
    pub deduplicated: bool,
}

/// What the file being uploaded is.
struct Source {
    file: Arc<File>,
    begin: pb::UploadBegin,
}

impl Client {
    /// Uploads the file at `path`; `mime` defaults to one guessed from its extension
    /// ([`crate::mime_for_path`]), `name` to its file name. The SHA-256 is computed first (on
    /// a blocking thread); a file the server already holds completes at once. Then only the
    /// chunks the server lacks are sent, eight in flight, so other requests on the connection
    /// interleave with them. After a lost connection the upload begins again on the next one
    /// and sends only what the server still lacks. `progress` gets the bytes the server holds,
    /// at most every 100 ms. `cancel` stops the upload promptly (hashing included) and
    /// discards it on the server; an upload that fails otherwise can be resumed by uploading
    /// the same file again.
    ///
    /// # Errors
    /// [`ClientError::Cancelled`], [`ClientError::Io`] reading the file,
    /// [`ClientError::Invalid`] for a path that is not a file; server errors
    /// (`FILE_TOO_LARGE`, `QUOTA_EXCEEDED`, `HASH_MISMATCH` when the file changed meanwhile,
    /// `INVALID_ARGUMENT` for an empty file); [`ClientError::Closed`] when no connection came
    /// back.
    pub async fn upload_file(
        &self,
        path: impl AsRef<Path>,
        mime: Option<&str>,
        name: Option<&str>,
        progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<Uploaded, ClientError> {
        let path = path.as_ref();
        let name = match name {
            Some(n) => n.to_owned(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".to_owned()),
        };
        let mime = mime.map_or_else(|| transfer::mime_for_path(path).to_owned(), str::to_owned);
        let (file, size) = transfer::open_file(path).await?;
        let sha256 = transfer::sha256_file(file.clone(), size, cancel).await?;
        let source = Source {
            file,
            begin: pb::UploadBegin {
                name,
                size,
                sha256: Bytes::copy_from_slice(&sha256),
                mime,
                duration_ms: 0,
            },
        };
        let mut reporter = Reporter::new(progress, size);
        let mut upload_id = 0;
        let mut reconnects = 0;
        loop {
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(ClientError::Cancelled),
                r = self.upload_once(&source, &mut reporter, &mut upload_id) => r,
            };
            match attempt {
                Ok(done) => return Ok(done),
                Err(ClientError::Closed) if reconnects < TRANSFER_RECONNECTS => {
                    reconnects += 1;
                    let until = Instant::now() + RECONNECT_WAIT;
                    self.inner.wait_up(until, cancel).await?;
                }
                // The server is going away: resume on the next connection.
                Err(e) if transfer::server_going_away(&e) && reconnects < TRANSFER_RECONNECTS => {
                    reconnects += 1;
                    transfer::pause_for_shutdown(cancel).await?;
                    let until = Instant::now() + RECONNECT_WAIT;
                    self.inner.wait_up(until, cancel).await?;
                }
                // Chunks lost with a connection: begin again and send what is missing.
                Err(ClientError::Server {
                    code: ErrorCode::UploadIncomplete,
                    ..
                }) if reconnects < TRANSFER_RECONNECTS => reconnects += 1,
                Err(ClientError::Cancelled) => {
                    self.abort_upload(upload_id);
                    return Err(ClientError::Cancelled);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One pass over a connection: begin, send what is missing, finish.
    async fn upload_once(
        &self,
        source: &Source,
        reporter: &mut Reporter<impl FnMut(Progress)>,
        upload_id: &mut u64,
    ) -> Result<Uploaded, ClientError> {
        let begin = RequestKind::UploadBegin(source.begin.clone());
        let state = match self.call(begin).await? {
            ResponseResult::UploadBegin(s) => s,
            other => return Err(unexpected("UploadBegin", &other)),
        };
        let size = source.begin.size;
        if state.complete {
            let file = state.file.ok_or_else(|| {
                ClientError::Protocol("a complete upload without its file".to_owned())
            })?;
            reporter.report(size);
            return Ok(Uploaded {
                file,
                deduplicated: state.deduplicated,
            });
        }
        *upload_id = state.upload_id;
        let plan = ChunkPlan::new(size, state.chunk_size, state.chunk_count)?;
        let mut done = state.received_bytes;
        reporter.report(done);
        let mut missing = plan.missing(&state.received).into_iter();
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.len() < CHUNKS_IN_FLIGHT {
                let Some(index) = missing.next() else { break };
                let (offset, len) = plan.range(index);
                let chunk = Chunk {
                    upload_id: state.upload_id,
                    index,
                    offset,
                    len,
                };
                in_flight.spawn(chunk.send(self.inner.clone(), source.file.clone()));
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let ok = joined.map_err(|e| ClientError::Protocol(format!("chunk task: {e}")))??;
            done = done.max(ok.received_bytes);
            reporter.report(done);
        }
        let finish = pb::UploadFinish {
            upload_id: state.upload_id,
        };
        match self.call(RequestKind::UploadFinish(finish)).await? {
            ResponseResult::UploadFinish(file) => {
                reporter.report(size);
                Ok(Uploaded {
                    file,
                    deduplicated: false,
                })
            }
            other => Err(unexpected("UploadFinish", &other)),
        }
    }

    /// Discards upload `upload_id` on the server, without waiting (best effort: after a
    /// cancellation the caller is not kept waiting for the answer).
    fn abort_upload(&self, upload_id: u64) {
        if upload_id == 0 {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let abort = RequestKind::UploadAbort(pb::UploadAbort { upload_id });
            if let Err(e) = inner.call(abort, Purpose::Plain).await {
                tracing::debug!(error = %e, upload_id, "UploadAbort failed");
            }
        });
    }
}

/// One chunk to send.
struct Chunk {
    upload_id: u64,
    index: u32,
    offset: u64,
    len: usize,
}

impl Chunk {
    /// Reads the chunk (on a blocking thread) and sends it; a `BUSY` answer is retried after
    /// a pause.
    async fn send(self, inner: Arc<Inner>, file: Arc<File>) -> Result<pb::ChunkOk, ClientError> {
        let data = transfer::read_at(file, self.offset, self.len).await?;
        let mut busy = 0;
        loop {
            let chunk = pb::UploadChunk {
                upload_id: self.upload_id,
                index: self.index,
                data: data.clone(),
            };
            match inner
                .call(RequestKind::UploadChunk(chunk), Purpose::Plain)
                .await
            {
                Ok(ResponseResult::UploadChunk(ok)) => return Ok(ok),
                Ok(other) => return Err(unexpected("UploadChunk", &other)),
                Err(ClientError::Server {
                    code: ErrorCode::Busy,
                    ..
                }) if busy < BUSY_RETRIES => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(20) * busy).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
