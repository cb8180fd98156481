//! SQLite helpers shared by the storage files.

use rusqlite::Connection;

/// Runs a statement without parameters or rows through the statement cache: under light load
/// every message is its own transaction, so `BEGIN` and `COMMIT` are not parsed anew each time.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
