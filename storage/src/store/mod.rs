//! The open store: the reader pool, [`Store::open`], which starts the writer, and the reads'
//! plumbing. The read API is in `read`.

mod read;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::db::configure;
use crate::files::private_files;
use crate::options::StoreOptions;
use crate::{indexer, recent, schema, sequence, writer};
use crate::{CommitSink, StorageError, Writer};

/// The open store: a reader pool plus the writer's queue.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: Arc<PathBuf>,
    /// The newest part of the sequence index, shared with the writer.
    recent: Arc<recent::Recent>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database `feige.db` in `dir`, applies migrations and
    /// starts the writer thread, which reports committed messages to `sink`.
    ///
    /// # Errors
    /// The directory or database cannot be opened, or a migration fails.
    pub fn open<C: Send + 'static>(
        dir: &Path,
        opts: StoreOptions,
        sink: Box<dyn CommitSink<C>>,
    ) -> Result<(Store, Writer<C>), StorageError> {
        let (path, index) = indexer::paths(dir);
        private_files(dir, &[&path, &index]).map_err(StorageError::Io)?;
        let mut conn = Connection::open(&path)?;
        configure(&conn, &opts)?;
        schema::migrate(&mut conn)?;
        indexer::prepare(&index)?;
        let init_opts = opts.clone();
        let init_index = index.clone();
        let manager = SqliteConnectionManager::file(&path).with_init(move |c| {
            configure(c, &init_opts)?;
            indexer::attach(c, &init_index, "search")
        });
        let pool = r2d2::Pool::builder()
            .max_size(opts.readers.max(1))
            .min_idle(Some(1))
            .build(manager)?;
        // The writer never checkpoints on its commit path; a checkpointer thread does it.
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit={};",
            writer::WAL_SIZE_LIMIT
        ))?;
        let checkpointer = writer::Checkpointer::start(&path, &opts)?;
        // After the migrations (one moves the search index into its own file), before the
        // writer's first commit.
        let indexer = indexer::Indexer::start(&path, &index)?;
        let recent = Arc::new(recent::Recent::load(&conn)?);
        let writer = Writer::start(conn, &opts, sink, checkpointer, indexer, recent.clone())?;
        Ok((
            Store {
                pool,
                path: Arc::new(path),
                recent,
            },
            writer,
        ))
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled reader connection on tokio's blocking threads.
    ///
    /// # Errors
    /// Whatever `f` returns, or a pool error.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|_| StorageError::WorkerGone)?
    }

    /// Runs `f` on a pooled reader connection on the calling thread, which must be one that
    /// may block (a worker pool's, never a reactor thread): a job already off the reactor
    /// reads without a second hop to tokio's blocking threads.
    ///
    /// # Errors
    /// Whatever `f` returns, or a pool error.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let conn = self.pool.get()?;
        f(&conn)
    }

    /// Runs `f` in a read transaction on a pooled reader, with the sequence index as that
    /// transaction sees it (see [`recent`]); again, in a new transaction, if a move of the
    /// index overtook it.
    pub(crate) async fn read_view<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(&Connection, &sequence::View<'_>) -> Result<T, StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let recent = self.recent.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            // A move takes over a second of steady load to gather, so a second try suffices
            // in practice; the bound only keeps a pathological case from spinning.
            let mut tries = 0;
            loop {
                let tx = conn.transaction()?;
                let view = sequence::View {
                    recent: &recent,
                    snap: recent::Snapshot::read(&tx)?,
                };
                match f(&tx, &view) {
                    Err(StorageError::SnapshotMoved) if tries < 8 => tries += 1,
                    r => return r,
                }
            }
        })
        .await
        .map_err(|_| StorageError::WorkerGone)?
    }
}
