//! SQLite helpers shared by the storage files: connection setup, cached statements, the
//! writer's bulk moves and transactions of their own.

use rusqlite::Connection;

use crate::int::Uint;
use crate::options::{Durability, StoreOptions};
use crate::StorageError;

/// Runs a statement without parameters or rows through the statement cache: under light load
/// every message is its own transaction, so `BEGIN` and `COMMIT` are not parsed anew each time.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 128;

/// Sets up a new connection, the writer's or a reader's: WAL, `opts`' durability and page
/// cache, foreign keys, a busy timeout and a statement cache large enough for every cached
/// statement of the storage modules.
///
/// # Errors
/// Database errors.
pub(crate) fn configure(conn: &Connection, opts: &StoreOptions) -> rusqlite::Result<()> {
    // rusqlite keeps 16 statements by default; the writer's hot path alone needs about that
    // many, so with the default any other job would evict some of them.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let sync = match opts.durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=10000; PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY;",
        opts.cache_kib
    ))
}

/// Rows per multi-row INSERT in [`move_rows`].
const ROWS_PER_INSERT: usize = 64;

/// Inserts rows of three integers into `into` (a table and its three columns), in the given
/// order, 64 rows per statement, in the caller's transaction: the writer's bulk moves.
///
/// The statements are `INSERT OR ROLLBACK`, which needs no statement journal. A statement
/// that may fail half-way inside a transaction keeps a copy of every page it changes until it
/// ends (inside a savepoint, until the savepoint ends), and for a large random-keyed index
/// those copies reach gigabytes per move. Here a conflict (only a bug could cause one) or an
/// I/O error rolls back the whole transaction, which therefore must hold nothing but the move
/// ([`in_transaction`]).
///
/// # Errors
/// Database errors; the transaction is then rolled back, or must be.
pub(crate) fn move_rows(
    c: &Connection,
    into: &str,
    rows: &[(u64, u64, u64)],
) -> Result<(), StorageError> {
    let values = |n: usize| vec!["(?, ?, ?)"; n].join(", ");
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut st = c.prepare_cached(&format!(
            "INSERT OR ROLLBACK INTO {into} VALUES {}",
            values(ROWS_PER_INSERT)
        ))?;
        for chunk in chunks.by_ref() {
            st.execute(rusqlite::params_from_iter(
                chunk
                    .iter()
                    .flat_map(|&(a, b, c)| [Uint(a), Uint(b), Uint(c)]),
            ))?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "INSERT OR ROLLBACK INTO {into} VALUES {}",
            values(1)
        ))?;
        for &(a, b, c) in rest {
            st.execute([Uint(a), Uint(b), Uint(c)])?;
        }
    }
    Ok(())
}

/// Runs `f` in a write transaction of its own (the caller must not be in one): committed if
/// `f` succeeds, else rolled back (unless a failed `INSERT OR ROLLBACK` did so already).
///
/// # Errors
/// `f`'s error, or the database's.
pub(crate) fn in_transaction<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let r = f(c).and_then(|v| {
        c.prepare_cached("COMMIT")?.execute([])?;
        Ok(v)
    });
    if r.is_err() && !c.is_autocommit() {
        let _ = c.execute_batch("ROLLBACK");
    }
    r
}
