//! The records of files and uploads, and a message's file as stored with it.

use crate::UserId;

/// The chunk size of every upload but its last chunk (256 KiB).
pub const CHUNK_SIZE: u64 = 256 * 1024;

/// A stored file (one upload of a blob), as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The file's id.
    pub id: u64,
    /// The blob holding its bytes.
    pub blob_id: u64,
    /// Who uploaded it.
    pub owner: UserId,
    /// The name given at upload (metadata only).
    pub name: String,
    /// Its MIME type (sniffed for images).
    pub mime: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes (32 bytes).
    pub sha256: Vec<u8>,
    /// Images: pixels.
    pub width: u32,
    /// Images: pixels.
    pub height: u32,
    /// Voice and video: milliseconds.
    pub duration_ms: u32,
    /// Images: the thumbnail's file id; 0 when none.
    pub thumbnail_id: u64,
    /// Upload time (unix ms).
    pub created_at_ms: i64,
}

/// A message's file as stored with it (`messages.attachment`): the file's metadata at sending,
/// and whether it was sent as an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The file as it was when the message was sent.
    pub file: FileRecord,
    /// Sent as an offer: recipients answer before they may download it.
    pub offer: bool,
}

impl FileRef {
    /// The compact text stored in `messages.attachment`: space-separated numbers, the hex
    /// sha256 and the MIME type (neither has spaces), then the name after a newline (names
    /// hold no control characters).
    pub(crate) fn encode(&self) -> String {
        let f = &self.file;
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {}\n{}",
            f.id,
            f.blob_id,
            f.owner,
            f.size,
            f.width,
            f.height,
            f.duration_ms,
            f.thumbnail_id,
            f.created_at_ms,
            u8::from(self.offer),
            hex(&f.sha256),
            f.mime,
            f.name
        )
    }

    /// Reads [`FileRef::encode`]'s text back; `None` for anything else.
    pub(crate) fn decode(s: &str) -> Option<FileRef> {
        let (head, name) = s.split_once('\n')?;
        let mut it = head.split(' ');
        let mut num = || it.next()?.parse::<u64>().ok();
        let id = num()?;
        let blob_id = num()?;
        let owner = num()?;
        let size = num()?;
        let width = u32::try_from(num()?).ok()?;
        let height = u32::try_from(num()?).ok()?;
        let duration_ms = u32::try_from(num()?).ok()?;
        let thumbnail_id = num()?;
        let created_at_ms = i64::try_from(num()?).ok()?;
        let offer = num()? == 1;
        let sha256 = unhex(it.next()?)?;
        let mime = it.next()?.to_owned();
        Some(FileRef {
            file: FileRecord {
                id,
                blob_id,
                owner,
                name: name.to_owned(),
                mime,
                size,
                sha256,
                width,
                height,
                duration_ms,
                thumbnail_id,
                created_at_ms,
            },
            offer,
        })
    }
}

/// An unfinished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The upload's id (also its partial file's name on disk).
    pub id: u64,
    /// Who uploads.
    pub owner: UserId,
    /// The SHA-256 the bytes must have.
    pub sha256: Vec<u8>,
    /// Bytes.
    pub size: u64,
    /// The name to give the file.
    pub name: String,
    /// The MIME type given.
    pub mime: String,
    /// The duration the client measured (ms).
    pub duration_ms: u32,
    /// Bit i (byte i/8, bit i%8 from the lowest) set = chunk i is held.
    pub chunks: Vec<u8>,
    /// Start time (unix ms).
    pub created_at_ms: i64,
}

impl UploadRecord {
    /// How many chunks the file has.
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(CHUNK_SIZE)
    }

    /// The length of chunk `index` (the last one is shorter).
    pub fn chunk_len(&self, index: u64) -> u64 {
        let start = index * CHUNK_SIZE;
        self.size.saturating_sub(start).min(CHUNK_SIZE)
    }

    /// Whether chunk `index` is held.
    pub fn has_chunk(&self, index: u64) -> bool {
        let byte = usize::try_from(index / 8).unwrap_or(usize::MAX);
        self.chunks
            .get(byte)
            .is_some_and(|b| b & (1 << (index % 8)) != 0)
    }

    /// How many chunks are held: the bitmap's set bits below `chunk_count`, counted a byte at
    /// a time (it is asked after every chunk, 4,096 of them in a 1 GiB upload).
    fn held_chunks(&self) -> u64 {
        let n = self.chunk_count();
        let whole = usize::try_from(n / 8).unwrap_or(usize::MAX);
        let mut held: u64 = self
            .chunks
            .iter()
            .take(whole)
            .map(|b| u64::from(b.count_ones()))
            .sum();
        let rest = n % 8;
        if let Some(b) = self.chunks.get(whole).filter(|_| rest > 0) {
            held += u64::from((b & ((1u8 << rest) - 1)).count_ones());
        }
        held
    }

    /// The bytes of the chunks held.
    pub fn received_bytes(&self) -> u64 {
        let held = self.held_chunks();
        let n = self.chunk_count();
        // Every chunk is CHUNK_SIZE long but the last.
        if n > 0 && self.has_chunk(n - 1) {
            (held - 1) * CHUNK_SIZE + self.chunk_len(n - 1)
        } else {
            held * CHUNK_SIZE
        }
    }

    /// Every chunk is held.
    pub fn complete(&self) -> bool {
        self.held_chunks() == self.chunk_count()
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
