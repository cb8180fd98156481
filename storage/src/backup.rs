//! Online backup: copies each database of a data directory with SQLite's backup API while
//! the server keeps writing. Blocking: run it off the reactor.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::files::private_files;
use crate::indexer::SEARCH_DB;
use crate::StorageError;

/// The databases of a data directory, in the order they are copied: the search index before
/// the messages, so a restored index never names a message the restored messages lack (the
/// indexer catches up on what it misses).
pub const DATABASES: [&str; 2] = [SEARCH_DB, "feige.db"];

/// What [`backup`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The directory holding the copies.
    pub dir: PathBuf,
    /// Bytes written, all copies together.
    pub bytes: u64,
    /// The file names copied.
    pub databases: Vec<String>,
}

/// Copies every database of `data_dir` that exists into `out` (created 0700, files 0600; a
/// file of the same name there is replaced). Each copy is one consistent snapshot, taken in
/// one step of the backup API, so a writer's commits during the copy do not restart it; every
/// transaction committed before the call is in it. The copies are self-contained (no WAL).
///
/// # Errors
/// [`StorageError::Io`] (`NotFound`) when `data_dir` holds no `feige.db`; an I/O or SQLite
/// error.
pub fn backup(data_dir: &Path, out: &Path) -> Result<BackupReport, StorageError> {
    if !data_dir.join("feige.db").is_file() {
        return Err(StorageError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no feige.db in {}", data_dir.display()),
        )));
    }
    if same_dir(data_dir, out) {
        return Err(StorageError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a backup cannot go into the data directory itself",
        )));
    }
    let present: Vec<&str> = DATABASES
        .into_iter()
        .filter(|name| data_dir.join(name).is_file())
        .collect();
    let targets: Vec<PathBuf> = present.iter().map(|name| out.join(name)).collect();
    for t in &targets {
        remove_copy(t)?;
    }
    let refs: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
    private_files(out, &refs).map_err(StorageError::Io)?;
    let mut bytes = 0;
    for (name, target) in present.iter().zip(&targets) {
        let src = Connection::open_with_flags(
            data_dir.join(name),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        src.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut dst = Connection::open(target)?;
        copy_all(&src, &mut dst)?;
        dst.execute_batch("PRAGMA journal_mode=DELETE;")?;
        drop(dst);
        bytes += std::fs::metadata(target).map_err(StorageError::Io)?.len();
    }
    Ok(BackupReport {
        dir: out.to_owned(),
        bytes,
        databases: present.into_iter().map(str::to_owned).collect(),
    })
}

/// Copies every page in one step: one read transaction, so a snapshot that concurrent commits
/// (which would restart a copy made in several steps) leave alone; in WAL mode it does not
/// hold up the writer. A busy source is retried for a few seconds.
fn copy_all(src: &Connection, dst: &mut Connection) -> Result<(), StorageError> {
    let copy = Backup::new(src, dst)?;
    for _ in 0..500 {
        match copy.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    Err(StorageError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the database stayed busy during the backup".into()),
    )))
}

/// Whether `out` is `data_dir` (a copy there would replace the live databases).
fn same_dir(data_dir: &Path, out: &Path) -> bool {
    match (data_dir.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Removes an earlier copy at `path` and its journal files, if any.
fn remove_copy(path: &Path) -> Result<(), StorageError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StorageError::Io(e)),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy holds the rows committed before it began, stands alone (no WAL beside it), and
    /// a data directory without a message database is refused.
    #[test]
    fn copies_each_database_as_a_snapshot() {
        let data = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let out = out.path().join("b");
        assert!(matches!(
            backup(data.path(), &out),
            Err(StorageError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
        let live = Connection::open(data.path().join("feige.db")).unwrap();
        assert!(
            backup(data.path(), data.path()).is_err(),
            "never over the live files"
        );
        live.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
        let report = backup(data.path(), &out).unwrap();
        assert_eq!(report.databases, vec!["feige.db".to_owned()]);
        assert!(report.bytes > 0);
        assert!(!out.join("feige.db-wal").exists());
        live.execute("INSERT INTO t VALUES (3)", []).unwrap();
        let copy = Connection::open(out.join("feige.db")).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        drop(copy);
        // Again into the same directory: replaced, now with the third row.
        backup(data.path(), &out).unwrap();
        let copy = Connection::open(out.join("feige.db")).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }
}
