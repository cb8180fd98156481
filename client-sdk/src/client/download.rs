//! Downloading a file, or a range of it, into a local file: ranged requests of at most
//! 256 KiB, a few in flight, written in order into `<path>.part`, which is renamed to `path`
//! at the end. A lost connection continues on the next one from the bytes written; a
//! `.part` left by an interrupted download is continued too. A whole-file download is checked
//! against the file's SHA-256.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use feige_protocol::{pb, RequestKind, ResponseResult};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::upload::{RECONNECT_WAIT, TRANSFER_RECONNECTS};
use super::Client;
use crate::link::{unexpected, Inner, Purpose};
use crate::transfer::{self, Progress, Reporter};
use crate::ClientError;

/// Most bytes one Download answer carries.
pub(crate) const DOWNLOAD_PIECE: u64 = 256 * 1024;
/// Download requests in flight at once (1 MiB of answers): the server stops reading a
/// connection's requests while its output and reserved answers pass half its outbox (2 MiB
/// by default), so more would only queue there, in front of the chat on this connection.
const PIECES_IN_FLIGHT: usize = 4;

/// A Download request in flight.
type PieceTask = JoinHandle<Result<pb::FileData, ClientError>>;

/// A finished download.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    /// The file, as the server describes it.
    pub file: pb::FileInfo,
    /// Bytes written to `path` (the file's size for a whole download).
    pub size: u64,
    /// Where they are.
    pub path: PathBuf,
}

/// The local side of a download: the `.part` file, its hash so far, and how much it holds.
struct Sink {
    file: File,
    hash: Option<ring::digest::Context>,
    written: u64,
}

impl Client {
    /// Downloads `length` bytes of file `file_id` from `offset` (`length` 0: to the end) into
    /// `path`, through `<path>.part` (continued if an earlier download left one), renamed to
    /// `path` when complete. Four requests of 256 KiB are in flight at once; a lost
    /// connection continues on the next one. A whole-file download is checked against the
    /// file's SHA-256. `progress` gets the bytes written, at most every 100 ms; `cancel`
    /// stops the download promptly and keeps the `.part` for a later one.
    ///
    /// # Errors
    /// [`ClientError::Cancelled`], [`ClientError::Io`] writing, [`ClientError::Invalid`] for a
    /// range past the file's end, [`ClientError::Protocol`] when the bytes do not match the
    /// SHA-256 (the `.part` is removed); server errors (`NOT_FOUND`, `FORBIDDEN`,
    /// `OFFER_NOT_ACCEPTED`).
    pub async fn download_file(
        &self,
        file_id: u64,
        path: impl AsRef<Path>,
        offset: u64,
        length: u64,
        progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<Downloaded, ClientError> {
        let path = path.as_ref().to_owned();
        let info = self
            .file_info(&[file_id])
            .await?
            .into_iter()
            .find(|f| f.file_id == file_id)
            .ok_or_else(|| ClientError::Protocol(format!("no metadata for file {file_id}")))?;
        if offset > info.size {
            return Err(ClientError::Invalid(format!(
                "offset {offset} is past the end of file {file_id} ({} bytes)",
                info.size
            )));
        }
        let end = match length {
            0 => info.size,
            n => offset.saturating_add(n).min(info.size),
        };
        let whole = offset == 0 && end == info.size;
        let total = end - offset;
        let part = part_path(&path);
        let mut sink = open_part(part.clone(), total, whole).await?;
        let mut reporter = Reporter::new(progress, total);
        let mut reconnects = 0;
        while sink.written < total {
            reporter.report(sink.written);
            let from = offset + sink.written;
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(ClientError::Cancelled),
                r = self.fetch_range(file_id, from, end, &mut sink, &mut reporter, offset) => r,
            };
            match attempt {
                Ok(()) => {}
                Err(ClientError::Closed) if reconnects < TRANSFER_RECONNECTS => {
                    reconnects += 1;
                    self.inner
                        .wait_up(Instant::now() + RECONNECT_WAIT, cancel)
                        .await?;
                }
                // The server is going away: resume on the next connection.
                Err(e) if transfer::server_going_away(&e) && reconnects < TRANSFER_RECONNECTS => {
                    reconnects += 1;
                    transfer::pause_for_shutdown(cancel).await?;
                    self.inner
                        .wait_up(Instant::now() + RECONNECT_WAIT, cancel)
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        reporter.report(total);
        let expected = whole.then(|| info.sha256.clone());
        let target = path.clone();
        transfer::blocking(move || {
            let Sink { file, hash, .. } = sink;
            file.sync_all()?;
            drop(file);
            if let (Some(want), Some(ctx)) = (expected, hash) {
                if ctx.finish().as_ref() != want.as_ref() {
                    let _ = std::fs::remove_file(&part);
                    return Err(ClientError::Protocol(
                        "the downloaded bytes do not match the file's SHA-256".to_owned(),
                    ));
                }
            }
            std::fs::rename(&part, &target)?;
            Ok(())
        })
        .await?;
        Ok(Downloaded {
            file: info,
            size: total,
            path,
        })
    }

    /// Fetches `[from, end)` with a few requests in flight, writing each answer in order.
    /// Returns when done or on the first error (what was written stays written).
    async fn fetch_range(
        &self,
        file_id: u64,
        from: u64,
        end: u64,
        sink: &mut Sink,
        reporter: &mut Reporter<impl FnMut(Progress)>,
        base: u64,
    ) -> Result<(), ClientError> {
        let mut next = from;
        let mut in_flight: VecDeque<(u64, u32, PieceTask)> = VecDeque::new();
        let result = loop {
            while in_flight.len() < PIECES_IN_FLIGHT && next < end {
                let len = (end - next).min(DOWNLOAD_PIECE) as u32;
                let task = tokio::spawn(piece(self.inner.clone(), file_id, next, len));
                in_flight.push_back((next, len, task));
                next += u64::from(len);
            }
            let Some((at, len, task)) = in_flight.pop_front() else {
                break Ok(());
            };
            let data = match task.await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => break Err(e),
                Err(e) => break Err(ClientError::Protocol(format!("download task: {e}"))),
            };
            if data.offset != at || data.data.is_empty() || data.data.len() > len as usize {
                break Err(ClientError::Protocol(format!(
                    "asked for {len} bytes at {at}, got {} at {}",
                    data.data.len(),
                    data.offset
                )));
            }
            let got = data.data.len() as u64;
            write_piece(sink, data.data).await?;
            reporter.report(sink.written);
            if got < u64::from(len) {
                // A short answer: ask again from where it ended.
                for (_, _, t) in in_flight.drain(..) {
                    t.abort();
                }
                next = base + sink.written;
            }
        };
        for (_, _, t) in in_flight {
            t.abort();
        }
        result
    }
}

/// One Download request.
async fn piece(
    inner: Arc<Inner>,
    file_id: u64,
    offset: u64,
    length: u32,
) -> Result<pb::FileData, ClientError> {
    let req = pb::Download {
        file_id,
        offset,
        length,
        thumbnail: false,
    };
    match inner
        .call(RequestKind::Download(req), Purpose::Plain)
        .await?
    {
        ResponseResult::Download(d) => Ok(d),
        other => Err(unexpected("Download", &other)),
    }
}

/// `<path>.part`, next to `path`.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Opens (or continues) the `.part` file: what it holds counts as written when it is no
/// longer than `total`, and is hashed again for a whole-file download.
async fn open_part(part: PathBuf, total: u64, whole: bool) -> Result<Sink, ClientError> {
    transfer::blocking(move || {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(|e| ClientError::Invalid(format!("cannot write {}: {e}", part.display())))?;
        let mut held = file.metadata()?.len();
        if held > total {
            file.set_len(0)?;
            held = 0;
        }
        let mut hash = whole.then(|| ring::digest::Context::new(&ring::digest::SHA256));
        if let Some(ctx) = hash.as_mut() {
            let mut reader = std::io::BufReader::with_capacity(1 << 20, &file);
            let mut left = held;
            while left > 0 {
                let buf = std::io::BufRead::fill_buf(&mut reader)?;
                if buf.is_empty() {
                    break;
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                ctx.update(&buf[..n]);
                std::io::BufRead::consume(&mut reader, n);
                left -= n as u64;
            }
        }
        file.seek(SeekFrom::Start(held))?;
        Ok(Sink {
            file,
            hash,
            written: held,
        })
    })
    .await
}

/// Appends `data` to the sink on a blocking thread (and hashes it).
async fn write_piece(sink: &mut Sink, data: bytes::Bytes) -> Result<(), ClientError> {
    let file = sink.file.try_clone()?;
    let hash = sink.hash.take();
    let (hash, n) = transfer::blocking(move || {
        let mut file = file;
        let mut hash = hash;
        file.write_all(&data)?;
        if let Some(ctx) = hash.as_mut() {
            ctx.update(&data);
        }
        Ok((hash, data.len() as u64))
    })
    .await?;
    sink.hash = hash;
    sink.written += n;
    Ok(())
}
