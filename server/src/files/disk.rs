//! The blocking file operations, each run as one job on the file pool: writing a chunk,
//! reading a range, checking and storing a finished upload, removing files.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ring::digest;

use super::media::{examine, Media};

/// `<root>/<2 hex>/<64 hex>`: only hex digits of the hash, never anything a client chose.
pub(crate) fn blob_path(root: &Path, sha256: &[u8]) -> PathBuf {
    let hex = feige_storage::blobs::hex(sha256);
    let dir = hex.get(..2).unwrap_or("00");
    root.join(dir).join(&hex)
}

/// Bytes a file worker writes or hashes between two yields of its CPU ([`in_steps`]).
pub(crate) const STEP: usize = 64 * 1024;

/// Calls `f` on `data` in pieces of [`STEP`] bytes (with each piece's offset in `data`),
/// yielding the CPU between two pieces: a chat thread that wakes while the file workers hold
/// both cores runs within a piece's time (~50 µs), not at the end of a whole chunk's
/// scheduler slice. With nothing else runnable a yield returns at once.
///
/// # Errors
/// The first error of `f`.
pub(crate) fn in_steps(
    data: &[u8],
    mut f: impl FnMut(usize, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    for (i, piece) in data.chunks(STEP).enumerate() {
        if i > 0 {
            std::thread::yield_now();
        }
        f(i * STEP, piece)?;
    }
    Ok(())
}

/// Writes `data` at `offset` of the partial file at `path` (made when missing), and with
/// `sync` flushes it to the disk (`durability = "fsync"`: a chunk recorded survives power
/// loss).
///
/// # Errors
/// I/O errors.
pub(crate) fn write_chunk(path: &Path, offset: u64, data: &[u8], sync: bool) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    in_steps(data, |at, piece| f.write_all_at(piece, offset + at as u64))?;
    if sync {
        f.sync_data()?;
    }
    Ok(())
}

/// Reads at most `len` bytes at `offset` of the file at `path` (fewer at its end).
///
/// # Errors
/// I/O errors.
pub(crate) fn read_range(path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut buf = vec![0u8; len];
    let mut n = 0;
    while n < len {
        let Some(rest) = buf.get_mut(n..) else { break };
        match f.read_at(rest, offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// A finished upload's outcome.
#[derive(Debug)]
pub(crate) enum Stored {
    /// The bytes have the expected hash and are in place (synced): what they are, and the
    /// thumbnail's (sha256, size, width, height), stored too.
    Blob(Media, Option<(Vec<u8>, u64, u32, u32)>),
    /// They do not: the partial file is removed.
    Mismatch,
}

/// Checks the partial file `partial` against `sha256` and `size` (its hash taken as `known`
/// when the chunks were hashed as they were written, else read and hashed); if it matches,
/// examines
/// it, stores its thumbnail and moves it to `blob` (a file with the same bytes there already
/// is simply replaced). `root` is the files' root, for the thumbnail. With `sync`
/// (`durability = "fsync"`) both are flushed to the disk first, so they survive power loss;
/// without it they survive a crash of the server, as its messages do.
///
/// # Errors
/// I/O errors (the partial file stays).
pub(crate) fn store(
    partial: &Path,
    blob: &Path,
    root: &Path,
    sha256: &[u8],
    size: u64,
    sync: bool,
    known: Option<Vec<u8>>,
) -> io::Result<Stored> {
    let (hash, len) = match known {
        Some(hash) => (hash, std::fs::metadata(partial)?.len()),
        None => hash_file(partial)?,
    };
    if hash != sha256 || len != size {
        let _ = std::fs::remove_file(partial);
        return Ok(Stored::Mismatch);
    }
    let mut media = examine(partial);
    let thumbnail = match media.thumbnail.take() {
        None => None,
        Some((png, width, height)) => {
            let sha = digest::digest(&digest::SHA256, &png).as_ref().to_vec();
            let tmp = partial.with_extension("thumb");
            std::fs::write(&tmp, &png)?;
            place(&tmp, &blob_path(root, &sha), sync)?;
            Some((sha, png.len() as u64, width, height))
        }
    };
    place(partial, blob, sync)?;
    Ok(Stored::Blob(media, thumbnail))
}

/// SHA-256 and length of the file at `path`.
fn hash_file(path: &Path) -> io::Result<(Vec<u8>, u64)> {
    let mut f = File::open(path)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        in_steps(buf.get(..n).unwrap_or_default(), |_, piece| {
            ctx.update(piece);
            Ok(())
        })?;
        len += n as u64;
    }
    Ok((ctx.finish().as_ref().to_vec(), len))
}

/// Renames `from` to `to` (making its directory); with `sync`, syncs the file first and the
/// directory after, so that once this returns the file is durable under its new name.
fn place(from: &Path, to: &Path, sync: bool) -> io::Result<()> {
    if sync {
        File::open(from)?.sync_all()?;
    }
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    std::fs::rename(from, to)?;
    if sync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes the files at `paths`; one already gone is no error. Returns how many failed.
pub(crate) fn remove(paths: &[PathBuf]) -> usize {
    paths
        .iter()
        .filter(|p| match std::fs::remove_file(p) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "cannot remove a file");
                true
            }
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::{in_steps, read_range, store, write_chunk, Stored, STEP};

    #[test]
    fn a_chunk_is_written_in_steps_at_their_offsets() {
        let data: Vec<u8> = (0..STEP * 2 + 100).map(|i| (i % 251) as u8).collect();
        let mut seen = Vec::new();
        in_steps(&data, |at, piece| {
            seen.push((at, piece.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(0, STEP), (STEP, STEP), (2 * STEP, 100)]);
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("1");
        write_chunk(&partial, 7, &data, false).unwrap();
        assert_eq!(read_range(&partial, 7, data.len()).unwrap(), data);
        let e = in_steps(&data, |at, _| {
            if at > 0 {
                Err(std::io::Error::other("disk full"))
            } else {
                Ok(())
            }
        });
        assert_eq!(e.unwrap_err().to_string(), "disk full");
    }

    #[test]
    fn chunks_in_any_order_make_the_file_and_a_bad_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("1");
        write_chunk(&partial, 5, b"world", false).unwrap();
        write_chunk(&partial, 0, b"hello", true).unwrap();
        assert_eq!(read_range(&partial, 3, 100).unwrap(), b"loworld");
        let sha = ring::digest::digest(&ring::digest::SHA256, b"helloworld");
        let blob = dir.path().join("ab").join("blob");
        let r = store(&partial, &blob, dir.path(), &[0; 32], 10, false, None).unwrap();
        assert!(matches!(r, Stored::Mismatch));
        assert!(!partial.exists());
        write_chunk(&partial, 0, b"helloworld", false).unwrap();
        let r = store(&partial, &blob, dir.path(), sha.as_ref(), 10, true, None).unwrap();
        assert!(matches!(r, Stored::Blob(..)));
        assert_eq!(std::fs::read(&blob).unwrap(), b"helloworld");
        assert!(!partial.exists());
    }
}
