//! Files on disk: content-addressed blobs under `<data_dir>/files/<2 hex>/<64 hex sha256>`,
//! partial uploads under `<data_dir>/files/uploads/<upload id>`, and the file worker pool
//! (`feige-files`) that does every read, write, hash, sniff and thumbnail of their bytes.
//! A name a user gives is metadata only ([`names`]); it never becomes part of a path.

mod access;
pub(crate) mod disk;
pub(crate) mod media;
pub(crate) mod names;
mod running;
mod sweep;

use std::path::PathBuf;

pub(crate) use access::{avatar, message_file, readable_file, ReadableFile};
pub(crate) use sweep::sweep_unused;

use crate::config::Config;
use crate::workers::{Pool, PoolSize};

/// What the file requests share: the root of the files, the worker pool, and the lock that
/// keeps a sweep's unlink from racing a finished upload that brings the same bytes back.
pub(crate) struct Files {
    root: PathBuf,
    /// The file worker pool: every blocking file operation runs here.
    pub pool: Pool<()>,
    /// Held shared while an upload's blob is moved into place and recorded; held exclusive
    /// while the sweep deletes blobs' rows and unlinks their files.
    pub place: tokio::sync::RwLock<()>,
    /// SHA-256 of uploads as their chunks are written.
    pub running: running::RunningHashes,
}

/// Niceness of the file workers' threads.
const FILE_NICENESS: i32 = 5;

impl Files {
    /// Makes the directories under `config.data_dir` and starts the pool.
    ///
    /// # Errors
    /// A directory cannot be made, or a worker thread cannot be spawned.
    pub(crate) fn start(config: &Config) -> std::io::Result<Files> {
        let root = config.data_dir.join("files");
        std::fs::create_dir_all(root.join("uploads"))?;
        let size = PoolSize {
            threads: config.file_workers,
            queue: config.file_workers * 64,
            queue_bytes: config.file_queue_bytes,
        };
        // Bulk transfers yield the CPU to chat (the reactor, the writer) when it is short.
        let pool = Pool::start::<std::io::Error, _>("feige-files", size, |_| {
            crate::workers::lower_priority(FILE_NICENESS);
            Ok(())
        })?;
        Ok(Files {
            root,
            pool,
            place: tokio::sync::RwLock::new(()),
            running: running::RunningHashes::default(),
        })
    }

    /// The root of the files (`<data_dir>/files`).
    pub(crate) fn root(&self) -> PathBuf {
        self.root.clone()
    }

    /// Where the blob with this SHA-256 lives.
    pub(crate) fn blob_path(&self, sha256: &[u8]) -> PathBuf {
        disk::blob_path(&self.root, sha256)
    }

    /// Where the partial file of upload `id` lives.
    pub(crate) fn upload_path(&self, id: u64) -> PathBuf {
        self.uploads_dir().join(id.to_string())
    }

    /// The directory of partial uploads.
    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }
}
