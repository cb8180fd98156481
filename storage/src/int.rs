//! Integers between the server and SQLite: ids, seqs and counts are `u64` in Rust and `i64`
//! in SQLite. These helpers take the place of bare `as` casts, so a value out of range is
//! handled in one documented way wherever it crosses.

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, Row, ToSql};

/// An unsigned id, seq or count as a query parameter.
///
/// A value past `i64::MAX` (only a client can send one) is bound as -1. The ids, seqs and
/// counts SQLite holds are never negative, so such a key names no row and compares below every
/// stored value, as the id itself would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Uint(pub u64);

impl Uint {
    /// A length, limit or offset (`usize` is at most 64 bits on every target Feige builds for).
    pub(crate) fn from_usize(n: usize) -> Uint {
        Uint(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl ToSql for Uint {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(Value::Integer(
            i64::try_from(self.0).unwrap_or(-1),
        )))
    }
}

/// An unsigned upper or lower bound as a query parameter, clamped to `i64::MAX`.
///
/// Unlike [`Uint`], a value past `i64::MAX` stays above every stored value: an open upper
/// bound (`u64::MAX`) keeps every row, a lower bound that high keeps none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound(pub u64);

impl Bound {
    /// A limit (`usize` is at most 64 bits on every target Feige builds for).
    pub(crate) fn from_usize(n: usize) -> Bound {
        Bound(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl ToSql for Bound {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(Value::Integer(
            i64::try_from(self.0).unwrap_or(i64::MAX),
        )))
    }
}

/// Column `idx` of `r`: an id, seq or count the server stored, as `u64`.
///
/// # Errors
/// The column is not an integer, or is negative.
pub(crate) fn get_u64(r: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

/// The rowid of the row `c` inserted last.
///
/// # Errors
/// The rowid is negative (SQLite assigns positive ones).
pub(crate) fn last_id(c: &Connection) -> rusqlite::Result<u64> {
    let v = c.last_insert_rowid();
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_keys_name_no_row() {
        let c = Connection::open_in_memory().unwrap();
        let bound = |v: u64| -> i64 { c.query_row("SELECT ?1", [Uint(v)], |r| r.get(0)).unwrap() };
        assert_eq!(bound(0), 0);
        assert_eq!(bound(i64::MAX as u64), i64::MAX);
        assert_eq!(bound(i64::MAX as u64 + 1), -1);
        assert_eq!(bound(u64::MAX), -1);
        let clamped =
            |v: u64| -> i64 { c.query_row("SELECT ?1", [Bound(v)], |r| r.get(0)).unwrap() };
        assert_eq!(clamped(7), 7);
        assert_eq!(clamped(u64::MAX), i64::MAX);
        let read = |sql: &str| c.query_row(sql, [], |r| get_u64(r, 0));
        assert_eq!(read("SELECT 7").unwrap(), 7);
        assert!(matches!(
            read("SELECT -1"),
            Err(rusqlite::Error::IntegralValueOutOfRange(0, -1))
        ));
    }
}
