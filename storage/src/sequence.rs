//! The sequence index: which message has sequence number `seq` in a conversation.
//!
//! An index of `messages` on `(conversation_id, seq)` took a random-keyed B-tree insert per
//! message, and once it outgrew a commit every message wrote one more 4 KiB page to the WAL.
//! Now the index is two tables with the same key: `recent_seq`, small, takes each new message
//! in its commit (so a commit writes the few pages it has, however many messages it holds),
//! and the writer moves all of it into `message_seq` now and then ([`index_recent`]), in key
//! order, so each page of the large index that a move writes takes many messages.
//!
//! A conversation's entries in `recent_seq` were all added after the move before, so they are
//! its newest: a reader going backwards from the newest reads `recent_seq` first and then
//! `message_seq`, one going forwards the other way round ([`by_seq`]). A move is one
//! transaction, so a message is in exactly one of them.

use rusqlite::Connection;

use crate::{ConversationId, StorageError};

/// A new message's index entry: (conversation, seq, message id).
pub(crate) type Entry = (ConversationId, u64, u64);

/// Adds a batch's new messages to the index, in key order and many rows per statement, in
/// the writer's transaction; empties `entries`. They go into `recent_seq`, or, when `straight`
/// (the caller's choice for a small batch while `recent_seq` is empty, so no conversation has
/// newer entries there), into `message_seq` at once: a small batch gains nothing from a later
/// bulk move, which at light load only gathers a second's worth of page writes into one stall.
///
/// # Errors
/// Database errors; some entries may then be in, so the transaction must not commit.
pub(crate) fn record_all(
    c: &Connection,
    entries: &mut Vec<Entry>,
    straight: bool,
) -> Result<(), StorageError> {
    entries.sort_unstable();
    let into = if straight {
        "message_seq(conversation_id, seq, id)"
    } else {
        "recent_seq(conversation_id, seq, id)"
    };
    crate::insert_rows(c, into, entries)?;
    entries.clear();
    Ok(())
}

/// Moves every entry of `recent_seq` into `message_seq`, in key order, in the caller's
/// transaction; returns how many.
///
/// # Errors
/// Database errors; the caller's transaction then holds part of the work and must not commit
/// it as is (the writer runs this in a savepoint).
pub(crate) fn index_recent(c: &Connection) -> Result<usize, StorageError> {
    let moved = c
        .prepare_cached(
            "INSERT INTO message_seq(conversation_id, seq, id)
             SELECT conversation_id, seq, id FROM recent_seq ORDER BY conversation_id, seq",
        )?
        .execute([])?;
    c.prepare_cached("DELETE FROM recent_seq")?.execute([])?;
    Ok(moved)
}

/// Entries waiting in `recent_seq`.
pub(crate) fn recent_len(c: &Connection) -> Result<usize, StorageError> {
    let n: i64 = c
        .prepare_cached("SELECT count(*) FROM recent_seq")?
        .query_row([], |r| r.get(0))?;
    Ok(n as usize)
}

/// SQL for the conversation's newest sequence number (0 when empty), its id bound to `?1`.
pub(crate) const LAST_SEQ: &str = "COALESCE(
    (SELECT MAX(seq) FROM recent_seq WHERE conversation_id = ?1),
    (SELECT MAX(seq) FROM message_seq WHERE conversation_id = ?1), 0)";

/// One conversation's messages in `seq` order (descending when `newest_first`), at most
/// `limit`, as `row` makes them: the rows of `messages m` joined with the index as `x` that
/// match `filter` (which names `x.conversation_id` and the parameters `params`). Reads the half
/// of the index that comes first in that order, then the other only if the page is not full:
/// two plain index seeks, no merge or sort.
///
/// # Errors
/// Database errors.
pub(crate) fn read_by_seq<T>(
    c: &Connection,
    columns: &str,
    filter: &str,
    newest_first: bool,
    params: &[&dyn rusqlite::ToSql],
    limit: usize,
    mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StorageError> {
    let dir = if newest_first { "DESC" } else { "ASC" };
    let halves = if newest_first {
        ["recent_seq", "message_seq"]
    } else {
        ["message_seq", "recent_seq"]
    };
    let limit_param = params.len() + 1;
    let mut out = Vec::new();
    for table in halves {
        let room = limit - out.len();
        if room == 0 {
            break;
        }
        let mut st = c.prepare_cached(&format!(
            "SELECT {columns} FROM {table} x JOIN messages m ON m.id = x.id
             WHERE {filter} ORDER BY x.seq {dir} LIMIT ?{limit_param}"
        ))?;
        let room = room as i64;
        let mut bound: Vec<&dyn rusqlite::ToSql> = params.to_vec();
        bound.push(&room);
        let rows = st.query_map(bound.as_slice(), &mut row)?;
        for r in rows {
            out.push(r?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params, OptionalExtension};

    fn store() -> Connection {
        crate::schema::migrated_in_memory()
    }

    /// Adds messages `seqs` of conversation `conv` (ids `conv * 1000 + seq`).
    fn add(c: &Connection, conv: u64, seqs: std::ops::RangeInclusive<u64>) {
        for seq in seqs {
            let id = conv * 1000 + seq;
            c.execute(
                "INSERT INTO messages(id, conversation_id, seq, sender_id, kind, body, sent_at_ms)
                 VALUES (?1, ?2, ?3, 1, 1, 'x', ?1)",
                params![id as i64, conv as i64, seq as i64],
            )
            .unwrap();
            record_all(c, &mut vec![(conv, seq, id)], false).unwrap();
        }
    }

    fn seqs(c: &Connection, filter: &str, newest_first: bool, limit: usize) -> Vec<i64> {
        read_by_seq(
            c,
            "m.id, m.conversation_id, m.seq",
            filter,
            newest_first,
            &[],
            limit,
            |r| r.get(2),
        )
        .unwrap()
    }

    fn last(c: &Connection, conv: u64) -> i64 {
        c.query_row(&format!("SELECT {LAST_SEQ}"), [conv as i64], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_batch_is_recorded_in_full_chunks_and_the_rest() {
        let c = store();
        // Two full statements and a remainder, out of order as a batch comes.
        let mut entries: Vec<Entry> = (1..=150).rev().map(|s| (s % 3, s, s + 1000)).collect();
        record_all(&c, &mut entries, false).unwrap();
        assert!(entries.is_empty());
        assert_eq!(recent_len(&c).unwrap(), 150);
        let (n, sum): (i64, i64) = c
            .query_row("SELECT count(*), sum(id - seq) FROM recent_seq", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, sum), (150, 150 * 1000));
    }

    #[test]
    fn reads_span_both_halves_in_order() {
        let c = store();
        add(&c, 7, 1..=5);
        add(&c, 8, 1..=2);
        assert_eq!(index_recent(&c).unwrap(), 7);
        assert_eq!(recent_len(&c).unwrap(), 0);
        add(&c, 7, 6..=8);
        assert_eq!(recent_len(&c).unwrap(), 3);
        assert_eq!((last(&c, 7), last(&c, 8), last(&c, 9)), (8, 2, 0));
        let conv7 = "x.conversation_id = 7";
        assert_eq!(seqs(&c, conv7, true, 4), vec![8, 7, 6, 5]);
        assert_eq!(seqs(&c, conv7, false, 4), vec![1, 2, 3, 4]);
        assert_eq!(
            seqs(&c, "x.conversation_id = 7 AND x.seq < 7", true, 3),
            vec![6, 5, 4]
        );
        assert_eq!(
            seqs(&c, "x.conversation_id = 7 AND x.seq > 4", false, 10),
            vec![5, 6, 7, 8]
        );
        assert_eq!(seqs(&c, "x.conversation_id = 8", true, 10), vec![2, 1]);
        // Straight into the large half only while the small one is empty.
        index_recent(&c).unwrap();
        c.execute(
            "INSERT INTO messages(id, conversation_id, seq, sender_id, kind, body, sent_at_ms)
             VALUES (7009, 7, 9, 1, 1, 'x', 0)",
            [],
        )
        .unwrap();
        record_all(&c, &mut vec![(7, 9, 7009)], true).unwrap();
        assert_eq!(recent_len(&c).unwrap(), 0);
        assert_eq!(seqs(&c, conv7, true, 2), vec![9, 8]);
        // A move keeps every entry once.
        index_recent(&c).unwrap();
        assert_eq!(seqs(&c, conv7, false, 100), (1..=9).collect::<Vec<_>>());
        assert_eq!(last(&c, 7), 9);
        let dup: Option<i64> = c
            .query_row(
                "SELECT 1 FROM message_seq GROUP BY conversation_id, seq HAVING count(*) > 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(dup, None);
    }

    /// A page of history must seek each half of the index, not sort a conversation.
    #[test]
    fn a_page_seeks_the_index() {
        let c = store();
        for table in ["recent_seq", "message_seq"] {
            let plan: Vec<String> = c
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT m.id FROM {table} x JOIN messages m ON m.id = x.id
                     WHERE x.conversation_id = 7 AND x.seq < 100 ORDER BY x.seq DESC LIMIT 50"
                ))
                .unwrap()
                .query_map([], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                plan,
                [
                    "SEARCH x USING PRIMARY KEY (conversation_id=? AND seq<?)",
                    "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"
                ],
                "{table}"
            );
        }
    }
}
