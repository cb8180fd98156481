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

use rusqlite::{params, Connection};

use crate::{ConversationId, StorageError};

/// Adds a new message to the index (in the writer's transaction).
pub(crate) fn record(
    c: &Connection,
    conversation: ConversationId,
    seq: u64,
    id: u64,
) -> Result<(), StorageError> {
    c.prepare_cached("INSERT INTO recent_seq(conversation_id, seq, id) VALUES (?1, ?2, ?3)")?
        .execute(params![conversation as i64, seq as i64, id as i64])?;
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

/// SQL that selects `columns` (of `messages m`, joined with the index as `x`) of one
/// conversation's messages matching `filter` (which names `x.conversation_id`), ordered by
/// `seq` (descending when `newest_first`), at most `limit` (a parameter such as `?5`). The
/// columns' third must be `m.seq`.
pub(crate) fn by_seq(columns: &str, filter: &str, newest_first: bool, limit: &str) -> String {
    let dir = if newest_first { "DESC" } else { "ASC" };
    let arm = |table: &str| {
        format!(
            "SELECT * FROM (SELECT {columns} FROM {table} x JOIN messages m ON m.id = x.id
             WHERE {filter} ORDER BY x.seq {dir} LIMIT {limit})"
        )
    };
    // The newer half first, for readers going backwards, then the other.
    let (first, second) = if newest_first {
        (arm("recent_seq"), arm("message_seq"))
    } else {
        (arm("message_seq"), arm("recent_seq"))
    };
    format!("{first} UNION ALL {second} ORDER BY 3 {dir} LIMIT {limit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OptionalExtension;

    fn store() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut c).unwrap();
        c
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
            record(c, conv, seq, id).unwrap();
        }
    }

    fn seqs(c: &Connection, filter: &str, newest_first: bool, limit: i64) -> Vec<i64> {
        c.prepare(&by_seq(
            "m.id, m.conversation_id, m.seq",
            filter,
            newest_first,
            "?1",
        ))
        .unwrap()
        .query_map([limit], |r| r.get(2))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn last(c: &Connection, conv: u64) -> i64 {
        c.query_row(&format!("SELECT {LAST_SEQ}"), [conv as i64], |r| r.get(0))
            .unwrap()
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
        // A move keeps every entry once.
        index_recent(&c).unwrap();
        assert_eq!(seqs(&c, conv7, false, 100), (1..=8).collect::<Vec<_>>());
        assert_eq!(last(&c, 7), 8);
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

    /// A page of history must seek both halves of the index, not sort a conversation.
    #[test]
    fn a_page_seeks_both_halves() {
        let c = store();
        let plan: Vec<String> = c
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                by_seq(
                    "m.id, m.conversation_id, m.seq",
                    "x.conversation_id = 7 AND x.seq < 100",
                    true,
                    "50"
                )
            ))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        let count = |s: &str| plan.matches(s).count();
        assert_eq!(
            count("SEARCH x USING PRIMARY KEY (conversation_id=? AND seq<?)"),
            2,
            "{plan}"
        );
        assert_eq!(
            count("SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"),
            2,
            "{plan}"
        );
        // Only the two arms' pages (at most `limit` rows each) are scanned and sorted.
        assert_eq!(count("SCAN"), count("SCAN (subquery-"), "{plan}");
    }
}
