//! SHA-256 of uploads as their chunks are written, so that `UploadFinish` need not read and
//! hash the whole file again after the last chunk.
//!
//! An upload's hash takes chunks in order from chunk 0: a chunk written out of order waits in
//! `ahead` until the ones before it are hashed, then is read back from the partial file (the
//! page cache, in practice); an upload resumed after a restart never sees its chunk 0 again. A chunk written twice (two racing writes of
//! the same index) drops the running hash: the bytes on disk are what count, and the finish
//! hashes them. So does anything unexpected, and a restart: the finish then hashes the file,
//! as it always could. At most [`MAX_RUNNING`] uploads are hashed this way at once.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ring::digest;

/// Uploads hashed as they go, at most; later ones are hashed at their finish.
const MAX_RUNNING: usize = 1024;

/// One upload's hash so far.
struct Running {
    ctx: digest::Context,
    /// The next chunk to hash.
    next: u64,
    /// Chunks written, not hashed yet (after a gap).
    ahead: BTreeSet<u64>,
}

/// The uploads being hashed, by upload id.
#[derive(Default)]
pub(crate) struct RunningHashes {
    uploads: Mutex<HashMap<u64, Arc<Mutex<Option<Running>>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunningHashes {
    /// Takes chunk `index` of upload `id`, just written to `path` with `data` (chunks of
    /// `chunk_size` bytes). Blocking (it may read chunks back): on the file pool.
    pub(crate) fn chunk_written(
        &self,
        id: u64,
        index: u64,
        data: &[u8],
        path: &Path,
        chunk_size: u64,
    ) {
        let entry = {
            let mut map = lock(&self.uploads);
            match map.get(&id) {
                Some(e) => e.clone(),
                None if map.len() < MAX_RUNNING => {
                    let e = Arc::new(Mutex::new(Some(Running {
                        ctx: digest::Context::new(&digest::SHA256),
                        next: 0,
                        ahead: BTreeSet::new(),
                    })));
                    map.insert(id, e.clone());
                    e
                }
                None => return,
            }
        };
        let mut slot = lock(&entry);
        let Some(run) = slot.as_mut() else { return };
        if index < run.next || run.ahead.contains(&index) {
            // Written again: the running hash may not be of the bytes on disk.
            *slot = None;
            return;
        }
        if index > run.next {
            run.ahead.insert(index);
            return;
        }
        hash_in_steps(&mut run.ctx, data);
        run.next += 1;
        while run.ahead.remove(&run.next) {
            let offset = run.next * chunk_size;
            match super::disk::read_range(path, offset, chunk_size as usize) {
                Ok(bytes) => {
                    hash_in_steps(&mut run.ctx, &bytes);
                    run.next += 1;
                }
                Err(_) => {
                    *slot = None;
                    return;
                }
            }
        }
    }

    /// The SHA-256 of upload `id`'s `chunk_count` chunks, if every one was hashed as it was
    /// written; forgets the upload either way.
    pub(crate) fn finish(&self, id: u64, chunk_count: u64) -> Option<Vec<u8>> {
        let entry = lock(&self.uploads).remove(&id)?;
        let run = lock(&entry).take()?;
        (run.next == chunk_count && run.ahead.is_empty())
            .then(|| run.ctx.finish().as_ref().to_vec())
    }

    /// Forgets upload `id` (aborted, expired, discarded).
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.uploads).remove(&id);
    }
}

/// Adds `data` to `ctx`, yielding the CPU between pieces (see [`super::disk::in_steps`]).
fn hash_in_steps(ctx: &mut digest::Context, data: &[u8]) {
    let _ = super::disk::in_steps(data, |_, piece| {
        ctx.update(piece);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::RunningHashes;

    fn sha(b: &[u8]) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, b)
            .as_ref()
            .to_vec()
    }

    #[test]
    fn chunks_in_any_order_hash_as_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1");
        let whole: Vec<u8> = (0..10u8).collect();
        let h = RunningHashes::default();
        // Chunks of 4 bytes, written 0, 2, 1 (2 waits for 1, then is read back).
        let chunk = |i: usize| &whole[i * 4..(i * 4 + 4).min(whole.len())];
        for i in [0usize, 2, 1] {
            crate::files::disk::write_chunk(&path, i as u64 * 4, chunk(i), false).unwrap();
            h.chunk_written(1, i as u64, chunk(i), &path, 4);
        }
        assert_eq!(h.finish(1, 3), Some(sha(&whole)));
        assert_eq!(h.finish(1, 3), None, "forgotten after the finish");
    }

    #[test]
    fn a_chunk_written_twice_or_a_missing_start_leaves_the_hash_to_the_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2");
        let h = RunningHashes::default();
        h.chunk_written(2, 0, b"abcd", &path, 4);
        h.chunk_written(2, 0, b"xxxx", &path, 4);
        h.chunk_written(2, 1, b"ef", &path, 4);
        assert_eq!(h.finish(2, 2), None);
        // No chunk 0 (an upload resumed after a restart): no hash.
        h.chunk_written(3, 1, b"ef", &path, 4);
        assert_eq!(h.finish(3, 2), None);
        // Incomplete.
        h.chunk_written(4, 0, b"abcd", &path, 4);
        assert_eq!(h.finish(4, 2), None);
        h.chunk_written(5, 0, b"abcd", &path, 4);
        h.forget(5);
        assert_eq!(h.finish(5, 1), None);
    }
}
