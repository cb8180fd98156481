//! The checkpointer: copies the WAL back into the database file off the writer thread, and
//! flushes the WAL's new pages between commits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::{StorageError, StoreOptions};

/// Copies the WAL back into the database file on its own thread and connection, so the
/// writer's commits never pay for it. A PASSIVE checkpoint does not block the writer.
///
/// Under sustained writes a concurrent checkpoint never catches up with the writer, and SQLite
/// restarts the WAL from its start only once every frame is backfilled; so the WAL would grow
/// without bound (and each commit would append to a growing file). When a checkpoint finds the
/// WAL longer than [`WAL_RESTART_FRAMES`], it raises `wal_large`; the writer then runs one
/// PASSIVE checkpoint itself between two batches, which only has to copy the frames written
/// since the background one, and its next transaction starts the WAL over.
pub(crate) struct Checkpointer {
    poke: std::sync::mpsc::SyncSender<()>,
    thread: Option<JoinHandle<()>>,
    wal_large: Arc<AtomicBool>,
    /// Set by the writer after a commit, cleared by the [`WalFlusher`].
    written: Arc<AtomicBool>,
}

/// How often the checkpointer thread flushes the WAL's new pages to disk when commits were
/// made (process durability). A checkpoint must fsync the WAL before copying it back, and the
/// writer's next append to the WAL's last, partly written page waits for that fsync: with a
/// large backlog to write, long enough to set the light-load p99. Flushed every few
/// milliseconds, each flush is small, so is the checkpoint's, and so is any wait.
const WAL_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest wait between flushes of an idle writer's WAL: the first commits after a quiet
/// spell are flushed at most this late (a latency aid only; they are committed already).
const WAL_FLUSH_IDLE: std::time::Duration = std::time::Duration::from_millis(100);
/// Checkpoint passes, at most, per request: each copies what was committed during the one
/// before...
const CATCH_UP_PASSES: usize = 4;
/// ...until one copies no more than this many frames: then the writer, asked to finish the
/// backfill, has about as few left to copy.
const CATCH_UP_FRAMES: i64 = 256;
/// WAL length (frames) past which the writer is asked to finish the backfill even though
/// the passes did not catch up, so that the WAL stays bounded.
const WAL_HARD_FRAMES: i64 = 4 * WAL_RESTART_FRAMES;
/// A checkpoint runs at least this often even without a poke from the writer.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs checkpoint passes (`pass` returns busy, frames in the WAL, frames backfilled) and
/// returns whether the writer should finish the backfill and so restart the WAL: the WAL is
/// long, and either a pass caught up (copied at most [`CATCH_UP_FRAMES`]) or the WAL is past
/// [`WAL_HARD_FRAMES`]. The writer's pass is one every queued message waits for; each pass
/// here copies only what was committed during the previous one, so once they catch up the
/// writer has little to copy. Under a load they cannot catch up with, the next request
/// tries again, until the hard bound.
fn catch_up(mut pass: impl FnMut() -> rusqlite::Result<(i64, i64, i64)>) -> rusqlite::Result<bool> {
    let mut backfilled = 0;
    let mut log = 0;
    for _ in 0..CATCH_UP_PASSES {
        let (_, frames, done) = pass()?;
        log = frames;
        if log <= WAL_RESTART_FRAMES {
            return Ok(false);
        }
        let copied = done - backfilled;
        backfilled = done;
        if copied <= CATCH_UP_FRAMES {
            return Ok(true);
        }
    }
    Ok(log > WAL_HARD_FRAMES)
}

/// Flushes the WAL file's dirty pages (`fdatasync` on its own descriptor) when the writer has
/// committed since the last flush. Only a latency aid: SQLite's own syncs stay as they are.
struct WalFlusher {
    wal: Flusher,
    written: Arc<AtomicBool>,
}

impl WalFlusher {
    fn new(db: &std::path::Path, written: Arc<AtomicBool>) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        WalFlusher {
            wal: Flusher::new(wal.into()),
            written,
        }
    }

    /// Flushes if the writer committed since the last call; returns how long to wait before
    /// the next call: [`WAL_FLUSH_EVERY`] while commits come, backing off (twice `waited`,
    /// up to [`WAL_FLUSH_IDLE`]) while none do, so an idle server does not wake 200 times a
    /// second.
    fn flush(&mut self, waited: std::time::Duration) -> std::time::Duration {
        if !self.written.swap(false, Ordering::Relaxed) {
            return (waited * 2).min(WAL_FLUSH_IDLE);
        }
        self.wal.flush();
        WAL_FLUSH_EVERY
    }
}

/// Flushes one file's dirty pages (`fdatasync` on a descriptor of its own, opened on first
/// use and again after a failure): the WAL for the [`WalFlusher`], and the database file
/// after a checkpoint pass that left part of the WAL ([`flushed`]). SQLite syncs the database
/// file only after a pass that backfills the whole WAL, and under sustained writes only the
/// writer's pass ([`Checkpointer::help_restart`]) does, so its fsync would write out every
/// page the background passes copied since the last restart while every queued message
/// waits; flushed after each pass, that fsync finds only the pages of its own pass.
struct Flusher {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl Flusher {
    fn new(path: std::path::PathBuf) -> Self {
        Flusher { path, file: None }
    }

    fn flush(&mut self) {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_data() {
                tracing::debug!(error = %e, file = %self.path.display(), "flush failed");
                self.file = None;
            }
        }
    }
}

/// Runs a checkpoint pass (busy, frames in the WAL, frames backfilled) and, when it left
/// part of the WAL, `flush`es the database file ([`Flusher`]).
fn flushed(
    pass: impl FnOnce() -> rusqlite::Result<(i64, i64, i64)>,
    flush: impl FnOnce(),
) -> rusqlite::Result<(i64, i64, i64)> {
    let (busy, log, done) = pass()?;
    if done < log {
        flush();
    }
    Ok((busy, log, done))
}

/// Commits between checkpoint requests...
pub(super) const CHECKPOINT_EVERY: u64 = 64;
/// ...or operations (under heavy load one commit holds thousands, and counting commits alone
/// would leave checkpoints to the checkpointer's 1 s timer)...
pub(super) const CHECKPOINT_EVERY_OPS: u64 = 2048;
/// ...and at least this long: under light load every message is its own commit, and a
/// checkpoint (with its fsync) every 64 of them would keep a core busy for little gain.
pub(super) const CHECKPOINT_MIN_INTERVAL: std::time::Duration =
    std::time::Duration::from_millis(250);
/// WAL length (in frames of one page) past which the writer helps restart the WAL: 64 MiB of
/// 4 KiB pages. The help is a checkpoint with two fsyncs on the writer thread that every
/// message queued meanwhile waits for, so it should come seldom enough to stay out of the
/// light-load p99 latency.
const WAL_RESTART_FRAMES: i64 = 16384;
/// Largest WAL file kept on disk after a restart (`journal_size_limit`).
pub(crate) const WAL_SIZE_LIMIT: i64 = 128 * 1024 * 1024;

/// Runs `PRAGMA wal_checkpoint(mode)`: (busy, frames in the WAL, frames backfilled).
fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

impl Checkpointer {
    pub(crate) fn start(path: &std::path::Path, opts: &StoreOptions) -> Result<Self, StorageError> {
        let conn = Connection::open(path)?;
        crate::configure(&conn, opts)?;
        let (poke, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let wal_large = Arc::new(AtomicBool::new(false));
        let large = wal_large.clone();
        let written = Arc::new(AtomicBool::new(false));
        // Under `fsync` durability every commit already syncs the WAL.
        let mut flusher = (opts.durability == crate::Durability::Process)
            .then(|| WalFlusher::new(path, written.clone()));
        let mut db = Flusher::new(path.to_owned());
        let thread = std::thread::Builder::new()
            .name("feige-checkpoint".into())
            .spawn(move || {
                let mut checkpoint = |mode: &str| {
                    let pass = || flushed(|| wal_checkpoint(&conn, mode), || db.flush());
                    match catch_up(pass) {
                        Ok(long) => large.store(long, Ordering::Relaxed),
                        Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
                    }
                };
                let mut wait = if flusher.is_some() {
                    WAL_FLUSH_EVERY
                } else {
                    CHECKPOINT_IDLE
                };
                let mut last = std::time::Instant::now();
                loop {
                    match rx.recv_timeout(wait) {
                        Ok(()) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            if let Some(f) = flusher.as_mut() {
                                wait = f.flush(wait);
                            }
                            if last.elapsed() < CHECKPOINT_IDLE {
                                continue;
                            }
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    checkpoint("PASSIVE");
                    last = std::time::Instant::now();
                }
                // The writer is gone: fold the whole WAL back and truncate it.
                checkpoint("TRUNCATE");
            })
            .map_err(StorageError::Io)?;
        Ok(Checkpointer {
            poke,
            thread: Some(thread),
            wal_large,
            written,
        })
    }

    /// Called by the writer after each commit.
    pub(super) fn committed(&self) {
        self.written.store(true, Ordering::Relaxed);
    }

    /// Called by the writer between batches: when the WAL has grown long, backfill the rest
    /// of it so that the next transaction restarts it. True when it tried.
    pub(super) fn help_restart(&self, conn: &Connection) -> bool {
        if !self.wal_large.load(Ordering::Relaxed) {
            return false;
        }
        match wal_checkpoint(conn, "PASSIVE") {
            // Done when every frame is backfilled; otherwise a reader held an old snapshot:
            // try again after the next background checkpoint.
            Ok((0, log, done)) if log == done => self.wal_large.store(false, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "writer checkpoint failed"),
        }
        true
    }

    pub(super) fn poke(&self) {
        let _ = self.poke.try_send(());
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Disconnect, then wait for the final checkpoint.
        let (dead, _) = std::sync::mpsc::sync_channel(0);
        self.poke = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        catch_up, flushed, Flusher, WalFlusher, WAL_FLUSH_EVERY, WAL_FLUSH_IDLE, WAL_HARD_FRAMES,
        WAL_RESTART_FRAMES,
    };
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Feeds `catch_up` a scripted run of passes; returns its answer and the passes it ran.
    fn passes(script: &[(i64, i64)]) -> (bool, usize) {
        let mut n = 0;
        let long = catch_up(|| {
            let (log, done) = script[n.min(script.len() - 1)];
            n += 1;
            Ok((0, log, done))
        })
        .unwrap();
        (long, n)
    }

    #[test]
    fn checkpoint_catches_up_before_asking_the_writer_to_restart_the_wal() {
        let big = WAL_RESTART_FRAMES + 10_000;
        // A short WAL: one pass, nothing for the writer.
        assert_eq!(passes(&[(100, 100)]), (false, 1));
        // A long one: passes until one copies little (here the third), then the writer helps.
        assert_eq!(
            passes(&[
                (big, big - 3000),
                (big + 3000, big + 3000),
                (big + 3100, big + 3100)
            ]),
            (true, 3)
        );
        // Under sustained load the passes never converge: four, and the writer is not asked
        // to copy the rest...
        let grow: Vec<_> = (0..8).map(|i| (big + i * 5000, big + i * 5000)).collect();
        assert_eq!(passes(&grow), (false, 4));
        // ...until the WAL passes the hard bound.
        let past = WAL_HARD_FRAMES + 1;
        let grow: Vec<_> = (0..8).map(|i| (past + i * 5000, past + i * 5000)).collect();
        assert_eq!(passes(&grow), (true, 4));
    }

    #[test]
    fn wal_flusher_flushes_the_wal_file_only_after_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let written = Arc::new(AtomicBool::new(false));
        let mut f = WalFlusher::new(&dir.path().join("feige.db"), written.clone());
        // Nothing committed: the file is not even opened, and the next call comes later.
        std::fs::write(dir.path().join("feige.db-wal"), b"frames").unwrap();
        assert_eq!(f.flush(WAL_FLUSH_EVERY), WAL_FLUSH_EVERY * 2);
        assert_eq!(
            f.flush(WAL_FLUSH_IDLE),
            WAL_FLUSH_IDLE,
            "backs off up to a bound"
        );
        assert!(f.wal.file.is_none());
        written.store(true, Ordering::Relaxed);
        assert_eq!(
            f.flush(WAL_FLUSH_IDLE),
            WAL_FLUSH_EVERY,
            "commits: back to the short beat"
        );
        assert!(
            f.wal.file.is_some(),
            "the WAL next to the database is opened and synced"
        );
        assert!(
            !written.load(Ordering::Relaxed),
            "the commit mark is consumed"
        );
    }

    #[test]
    fn a_pass_that_leaves_part_of_the_wal_flushes_the_database_file() {
        let mut flushes = 0;
        // A partial pass (a writer appended meanwhile): SQLite did not sync the file.
        let r = flushed(|| Ok((0, 900, 600)), || flushes += 1).unwrap();
        assert_eq!((r, flushes), ((0, 900, 600), 1));
        // A pass that backfilled everything: SQLite synced the file itself.
        flushed(|| Ok((0, 900, 900)), || flushes += 1).unwrap();
        // A failed pass flushes nothing.
        assert!(flushed(|| Err(rusqlite::Error::InvalidQuery), || flushes += 1).is_err());
        assert_eq!(flushes, 1);
        // The flusher opens the database file and syncs it; a missing file is skipped.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("feige.db");
        let mut f = Flusher::new(db.clone());
        f.flush();
        assert!(f.file.is_none());
        std::fs::write(&db, b"pages").unwrap();
        f.flush();
        assert!(f.file.is_some());
    }
}
