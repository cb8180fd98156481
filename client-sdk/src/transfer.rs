//! What file transfers share: progress and its throttle, the chunk plan an upload's bitmap
//! leaves, reading and hashing a file off the async threads, and the mime type and message
//! kind of a file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use feige_protocol::pb;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ClientError;

/// Shortest time between two progress reports of one transfer.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Bytes read per step while hashing a file (cancellation is checked between steps).
const HASH_BLOCK: usize = 1024 * 1024;

/// How far a transfer is: `done` of `total` bytes (an upload counts what the server holds,
/// so a resumed upload starts past 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred (held by the server, or written to disk).
    pub done: u64,
    /// Bytes the transfer moves in all.
    pub total: u64,
}

/// Lets a report through when none went out for `every` (the first at once).
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Throttle { every, last: None }
    }

    /// Whether a report at `now` may go out; if so it counts as the last one.
    pub(crate) fn ready(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// A transfer's progress callback behind its [`Throttle`].
pub(crate) struct Reporter<F> {
    report: F,
    throttle: Throttle,
    total: u64,
    last_done: Option<u64>,
}

impl<F: FnMut(Progress)> Reporter<F> {
    pub(crate) fn new(report: F, total: u64) -> Self {
        Reporter {
            report,
            throttle: Throttle::new(PROGRESS_INTERVAL),
            total,
            last_done: None,
        }
    }

    /// Reports `done` bytes, unless a report went out less than [`PROGRESS_INTERVAL`] ago or
    /// nothing moved since the last one.
    pub(crate) fn report(&mut self, done: u64) {
        self.report_at(done, Instant::now());
    }

    fn report_at(&mut self, done: u64, now: Instant) {
        if self.last_done == Some(done) || !self.throttle.ready(now) {
            return;
        }
        self.last_done = Some(done);
        (self.report)(Progress {
            done,
            total: self.total,
        });
    }
}

/// How an upload's bytes fall into chunks, as the server's UploadState says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkPlan {
    size: u64,
    chunk_size: u64,
    count: u32,
}

impl ChunkPlan {
    /// The plan of a `size`-byte file in the server's chunks.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] when the chunk size and count do not cover `size` exactly.
    pub(crate) fn new(size: u64, chunk_size: u32, count: u32) -> Result<Self, ClientError> {
        let chunk_size = u64::from(chunk_size);
        if chunk_size == 0 || size.div_ceil(chunk_size) != u64::from(count) {
            return Err(ClientError::Protocol(format!(
                "upload of {size} bytes announced as {count} chunks of {chunk_size} bytes"
            )));
        }
        Ok(ChunkPlan {
            size,
            chunk_size,
            count,
        })
    }

    /// Chunk `index`'s offset and length.
    pub(crate) fn range(&self, index: u32) -> (u64, usize) {
        let offset = u64::from(index) * self.chunk_size;
        let len = self.chunk_size.min(self.size.saturating_sub(offset));
        (offset, usize::try_from(len).unwrap_or(0))
    }

    /// The chunks the server lacks, in order: those whose bit in `received` is clear (bit i
    /// is byte i/8, bit i%8 from the lowest; a short bitmap lacks the rest).
    pub(crate) fn missing(&self, received: &[u8]) -> Vec<u32> {
        (0..self.count)
            .filter(|&i| {
                let byte = received.get((i / 8) as usize).copied().unwrap_or(0);
                byte & (1 << (i % 8)) == 0
            })
            .collect()
    }
}

/// Opens `path` for reading (off the async threads); returns it and its size.
///
/// # Errors
/// [`ClientError::Invalid`] when it cannot be opened or is not a regular file.
/// A transfer answered `SHUTTING_DOWN` waits this long for the server to close the
/// connection before it waits for the next one (and resumes there).
const SHUTDOWN_PAUSE: Duration = Duration::from_millis(200);

/// Waits [`SHUTDOWN_PAUSE`], or until `cancel`.
///
/// # Errors
/// [`ClientError::Cancelled`].
pub(crate) async fn pause_for_shutdown(cancel: &CancellationToken) -> Result<(), ClientError> {
    tokio::select! {
        () = tokio::time::sleep(SHUTDOWN_PAUSE) => Ok(()),
        () = cancel.cancelled() => Err(ClientError::Cancelled),
    }
}

/// Whether `e` says the server is going away (its connection closes next).
pub(crate) fn server_going_away(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Server {
            code: feige_protocol::ErrorCode::ShuttingDown,
            ..
        }
    )
}

pub(crate) async fn open_file(path: &Path) -> Result<(Arc<File>, u64), ClientError> {
    let path = path.to_owned();
    blocking(move || {
        let file = File::open(&path)
            .map_err(|e| ClientError::Invalid(format!("cannot open {}: {e}", path.display())))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(ClientError::Invalid(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        Ok((Arc::new(file), meta.len()))
    })
    .await
}

/// The SHA-256 of the first `size` bytes of `file`, computed on a blocking thread, stopping
/// within one 1 MiB block of `cancel`.
///
/// # Errors
/// [`ClientError::Cancelled`], [`ClientError::Io`] (also when the file is shorter than `size`).
pub(crate) async fn sha256_file(
    file: Arc<File>,
    size: u64,
    cancel: &CancellationToken,
) -> Result<[u8; 32], ClientError> {
    let stop = cancel.clone();
    blocking(move || {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; HASH_BLOCK];
        let mut offset = 0u64;
        while offset < size {
            if stop.is_cancelled() {
                return Err(ClientError::Cancelled);
            }
            let want = usize::try_from((size - offset).min(HASH_BLOCK as u64)).unwrap_or(0);
            let chunk = &mut buf[..want];
            file.read_exact_at(chunk, offset)?;
            ctx.update(chunk);
            offset += want as u64;
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Ok(out)
    })
    .await
}

/// Reads `len` bytes at `offset` of `file` on a blocking thread.
///
/// # Errors
/// [`ClientError::Io`] (also when the file has become shorter).
pub(crate) async fn read_at(
    file: Arc<File>,
    offset: u64,
    len: usize,
) -> Result<Bytes, ClientError> {
    blocking(move || {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    })
    .await
}

/// Runs blocking file work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ClientError::Io(std::io::Error::other(e.to_string()))))
}

/// The mime type of a file by its extension (`application/octet-stream` when unknown; the
/// server sniffs images itself).
pub fn mime_for_path(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "wav" => "audio/wav",
        "raw" | "pcm" => "audio/L16",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "m4a" | "aac" => "audio/aac",
        "amr" => "audio/amr",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "txt" | "log" | "md" => "text/plain",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The message kind that carries a file of this mime type: images, audio (voice), video, or
/// a plain file.
pub fn kind_for_mime(mime: &str) -> pb::MessageKind {
    let top = mime.split('/').next().unwrap_or("").to_ascii_lowercase();
    match top.as_str() {
        "image" => pb::MessageKind::Image,
        "audio" => pb::MessageKind::Voice,
        "video" => pb::MessageKind::Video,
        _ => pb::MessageKind::File,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_the_file_and_skips_held_chunks() {
        let plan = ChunkPlan::new(600 * 1024, 256 * 1024, 3).unwrap();
        assert_eq!(plan.range(0), (0, 256 * 1024));
        assert_eq!(plan.range(2), (512 * 1024, 88 * 1024));
        assert_eq!(plan.missing(&[]), vec![0, 1, 2]);
        assert_eq!(plan.missing(&[0b101]), vec![1]);
        assert_eq!(plan.missing(&[0b111]), Vec::<u32>::new());
        // Bits past the count mean nothing.
        assert_eq!(plan.missing(&[0b1111_1010]), vec![0, 2]);
        let big = ChunkPlan::new(20 * 1024, 1024, 20).unwrap();
        assert_eq!(big.missing(&[0xff, 0xfe, 0x0f]), vec![8]);
        assert_eq!(big.missing(&[0xff, 0xfe, 0x07]), vec![8, 19]);
        assert_eq!(big.missing(&[0xff, 0xff]), vec![16, 17, 18, 19]);
    }

    #[test]
    fn plan_refuses_a_wrong_chunk_count() {
        assert!(ChunkPlan::new(100, 0, 1).is_err());
        assert!(ChunkPlan::new(600, 256, 2).is_err());
        assert!(ChunkPlan::new(512, 256, 3).is_err());
        assert!(ChunkPlan::new(512, 256, 2).is_ok());
    }

    #[test]
    fn progress_is_throttled() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut seen = Vec::new();
        {
            let mut r = Reporter::new(|p: Progress| seen.push((p.done, p.total)), 10);
            r.report_at(1, ms(0)); // the first goes out at once
            r.report_at(2, ms(1)); // too soon
            r.report_at(3, ms(60)); // still too soon
            r.report_at(4, ms(100));
            r.report_at(4, ms(250)); // nothing moved
            r.report_at(10, ms(251));
            r.report_at(10, ms(400));
        }
        assert_eq!(seen, vec![(1, 10), (4, 10), (10, 10)]);
    }

    #[test]
    fn mime_and_kind() {
        assert_eq!(mime_for_path(Path::new("a/b.PNG")), "image/png");
        assert_eq!(mime_for_path(Path::new("note.wav")), "audio/wav");
        assert_eq!(
            mime_for_path(Path::new("noext")),
            "application/octet-stream"
        );
        assert_eq!(kind_for_mime("image/png"), pb::MessageKind::Image);
        assert_eq!(kind_for_mime("audio/L16"), pb::MessageKind::Voice);
        assert_eq!(kind_for_mime("video/mp4"), pb::MessageKind::Video);
        assert_eq!(kind_for_mime("application/pdf"), pb::MessageKind::File);
    }

    #[tokio::test]
    async fn hashes_and_stops_when_cancelled() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, b"abc").unwrap();
        let (file, size) = open_file(f.path()).await.unwrap();
        assert_eq!(size, 3);
        let cancel = CancellationToken::new();
        let sum = sha256_file(file.clone(), size, &cancel).await.unwrap();
        assert_eq!(
            sum[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") begins ba7816bf"
        );
        cancel.cancel();
        assert!(matches!(
            sha256_file(file, size, &cancel).await,
            Err(ClientError::Cancelled)
        ));
    }
}
