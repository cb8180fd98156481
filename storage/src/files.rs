//! The data directory and database files: private to the server's user.

use std::path::Path;

/// Creates `dir` private to its owner (0700), or tightens an existing one, and makes the
/// database files `dbs` and their `-wal` and `-shm` files 0600, creating the databases empty
/// before SQLite opens them: SQLite gives the `-wal` and `-shm` files it creates later the
/// database file's mode. They hold every message and password hash.
///
/// # Errors
/// The directory or a file cannot be created, or its mode read or set.
#[cfg(unix)]
pub(crate) fn private_files(dir: &Path, dbs: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            // The mode given to mkdir is masked by the umask; this one is not.
            set_mode(dir, 0o700)?;
        }
        Err(e) => return Err(e),
        Ok(m) => tighten(dir, &m, 0o700)?,
    }
    for db in dbs {
        if !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(db)?;
            set_mode(db, 0o600)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = db.as_os_str().to_owned();
            file.push(suffix);
            let file = Path::new(&file);
            match std::fs::metadata(file) {
                Ok(m) => tighten(file, &m, 0o600)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn private_files(dir: &Path, _dbs: &[&Path]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Sets `path` to `mode` when its group or others may access it, with a warning. A shared
/// directory (sticky bit, like /tmp) is left alone, with a warning.
#[cfg(unix)]
fn tighten(path: &Path, meta: &std::fs::Metadata, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let was = meta.permissions().mode() & 0o7777;
    if was & 0o077 == 0 {
        return Ok(());
    }
    if meta.is_dir() && was & 0o1000 != 0 {
        tracing::warn!(path = ?path, mode = format!("{was:o}"), "the data directory is shared with other users; use a directory of its own");
        return Ok(());
    }
    set_mode(path, mode)?;
    tracing::warn!(path = ?path, was = format!("{was:o}"), now = format!("{mode:o}"), "other users could read the server's data; permissions tightened");
    Ok(())
}
