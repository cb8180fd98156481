//! The sequence index: which message has sequence number `seq` in a conversation.
//!
//! An index of `messages` on `(conversation_id, seq)` would take a random-keyed B-tree insert
//! per message, and once it outgrew a commit every message would write one more page to the
//! WAL. So the index has two halves with the same key: `message_seq` in the database holds every
//! message up to a mark, and the newest ones wait in memory ([`crate::recent`]) until the
//! writer moves many at once ([`move_into_index`]), in key order, so that each page of
//! `message_seq` the move writes takes many messages.
//!
//! A conversation's entries in memory are newer than all of its entries in `message_seq`: a
//! reader going backwards from the newest reads memory first and then `message_seq`, one going
//! forwards the other way round ([`read_by_seq`]). Both come from one read transaction, so
//! each message is in exactly one of them.

use rusqlite::{params, Connection};

use crate::int::{get_u64, Bound, Uint};
use crate::recent::{Range, Recent, Slot, Snapshot};
use crate::row::{message_row, DirectPair, StoredMessage, MESSAGE_COLUMNS};
use crate::{ConversationId, StorageError, UserId};

/// Writes `entries` (in key order) into `message_seq` and raises the mark to `mark`, in a
/// transaction of its own ([`crate::move_rows`]): the caller must not be in one. The writer
/// moves in slices instead (its index module); tests build the index with this.
///
/// # Errors
/// Database errors; nothing of the move is then in `message_seq`.
#[cfg(test)]
pub(crate) fn move_into_index(
    c: &Connection,
    entries: &[crate::recent::Entry],
    mark: u64,
) -> Result<(), StorageError> {
    crate::in_transaction(c, |c| {
        crate::move_rows(c, "message_seq(conversation_id, seq, id)", entries)?;
        c.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'seq_indexed_upto'")?
            .execute([Uint(mark)])?;
        Ok(())
    })
}

/// SQL for the conversation's newest sequence number in `message_seq` (0 when none), its id
/// bound to `?1`.
pub(crate) const INDEXED_LAST_SEQ: &str =
    "COALESCE((SELECT MAX(seq) FROM message_seq WHERE conversation_id = ?1), 0)";

/// The index as one read transaction sees it: `message_seq` through the connection, the
/// newer entries through `recent`, cut at the snapshot's mark and newest message.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub recent: &'a Recent,
    pub snap: Snapshot,
}

impl View<'_> {
    /// The conversation's entries in memory within `range`.
    ///
    /// # Errors
    /// [`StorageError::SnapshotMoved`]: read again in a new transaction.
    pub(crate) fn recent(
        &self,
        conv: ConversationId,
        range: Range,
    ) -> Result<Vec<Slot>, StorageError> {
        self.recent.view(conv, self.snap, range)
    }

    /// The conversation's newest seq (0 when it has no messages).
    ///
    /// # Errors
    /// Database errors, [`StorageError::SnapshotMoved`].
    pub(crate) fn last_seq(
        &self,
        c: &Connection,
        conv: ConversationId,
    ) -> Result<u64, StorageError> {
        if let Some(s) = self.recent(conv, Range::NEWEST)?.first() {
            return Ok(s.seq);
        }
        let seq = c
            .prepare_cached(&format!("SELECT {INDEXED_LAST_SEQ}"))?
            .query_row([Uint(conv)], |r| get_u64(r, 0))?;
        Ok(seq)
    }

    /// Messages after `seq` in the conversation that `user` did not send.
    ///
    /// # Errors
    /// Database errors, [`StorageError::SnapshotMoved`].
    pub(crate) fn count_from_others(
        &self,
        c: &Connection,
        conv: ConversationId,
        seq: u64,
        user: UserId,
    ) -> Result<u64, StorageError> {
        let range = Range {
            after: seq,
            ..Range::ALL
        };
        let recent = self
            .recent(conv, range)?
            .iter()
            .filter(|s| s.sender != user)
            .count();
        let recent = u64::try_from(recent).unwrap_or(u64::MAX);
        let indexed = c
            .prepare_cached(
                "SELECT COUNT(*) FROM message_seq x JOIN messages m ON m.id = x.id
                 WHERE x.conversation_id = ?1 AND x.seq > ?2 AND m.sender_id != ?3",
            )?
            .query_row(params![Uint(conv), Uint(seq), Uint(user)], |r| {
                get_u64(r, 0)
            })?;
        Ok(recent + indexed)
    }
}

/// Which messages [`read_by_seq`] reads: seqs in `range`, sent within `[since_ms, until_ms)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query {
    pub conversation: ConversationId,
    pub range: Range,
    pub since_ms: i64,
    pub until_ms: i64,
}

/// One conversation's messages in `seq` order (descending when newest first), at most
/// `q.range.limit`. Reads the half of the index that comes first in that order, then the
/// other only if the page is not full: plain index seeks, no merge or sort.
///
/// # Errors
/// Database errors, [`StorageError::SnapshotMoved`].
pub(crate) fn read_by_seq(
    c: &Connection,
    view: &View<'_>,
    q: &Query,
    pair: DirectPair,
) -> Result<Vec<StoredMessage>, StorageError> {
    read_by_seq_within(c, view, q, pair, &mut Budget::new(usize::MAX))
}

/// An upper bound of a stored message's protobuf encoding besides its text: eight varint
/// fields of at most 11 bytes each, the text's tag and length, and its own as a repeated field.
const MESSAGE_OVERHEAD: usize = 128;

/// A page's byte budget, shared by the reads that fill one page: a message is taken while
/// its encoding fits in what is left, and the first one always, so a page is never empty for
/// want of room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    left: usize,
    started: bool,
    /// A message was left out for want of room: more follow.
    pub hit: bool,
}

impl Budget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Budget {
        Budget {
            left: bytes,
            started: false,
            hit: false,
        }
    }

    /// Takes `m` into the page if it fits; false when the page is full.
    fn take(&mut self, m: &StoredMessage) -> bool {
        let cost = m.text.len() + MESSAGE_OVERHEAD;
        if self.started && cost > self.left {
            self.hit = true;
            return false;
        }
        self.started = true;
        self.left = self.left.saturating_sub(cost);
        true
    }
}

/// [`read_by_seq`] that stops, setting [`Budget::hit`], at the first message that does not fit
/// in `budget`. Rows are read one at a time, so a page cut short reads no further.
pub(crate) fn read_by_seq_within(
    c: &Connection,
    view: &View<'_>,
    q: &Query,
    pair: DirectPair,
    budget: &mut Budget,
) -> Result<Vec<StoredMessage>, StorageError> {
    let limit = q.range.limit;
    let mut out = Vec::new();
    let timed = q.since_ms != i64::MIN || q.until_ms != i64::MAX;
    let from_memory =
        |out: &mut Vec<StoredMessage>, budget: &mut Budget| -> Result<(), StorageError> {
            // With a time filter some entries may not qualify: take all in range, then filter.
            let range = Range {
                limit: if timed { usize::MAX } else { limit - out.len() },
                ..q.range
            };
            let slots = view.recent(q.conversation, range)?;
            if slots.is_empty() {
                return Ok(());
            }
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.id = ?1 AND m.sent_at_ms >= ?2 AND m.sent_at_ms < ?3"
            ))?;
            for s in slots {
                if out.len() == limit || budget.hit {
                    break;
                }
                let row = st.query_map(params![Uint(s.id), q.since_ms, q.until_ms], |r| {
                    message_row(r, pair)
                })?;
                for m in row {
                    let m = m?;
                    if !budget.take(&m) {
                        break;
                    }
                    out.push(m);
                }
            }
            Ok(())
        };
    let from_index =
        |out: &mut Vec<StoredMessage>, budget: &mut Budget| -> Result<(), StorageError> {
            let room = limit - out.len();
            if room == 0 || budget.hit {
                return Ok(());
            }
            let dir = if q.range.newest_first { "DESC" } else { "ASC" };
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM message_seq x JOIN messages m ON m.id = x.id
             WHERE x.conversation_id = ?1 AND x.seq > ?2 AND x.seq < ?3
               AND m.sent_at_ms >= ?4 AND m.sent_at_ms < ?5
             ORDER BY x.seq {dir} LIMIT ?6"
            ))?;
            let rows = st.query_map(
                params![
                    Uint(q.conversation),
                    Bound(q.range.after),
                    Bound(q.range.before),
                    q.since_ms,
                    q.until_ms,
                    Bound::from_usize(room)
                ],
                |r| message_row(r, pair),
            )?;
            for m in rows {
                let m = m?;
                if !budget.take(&m) {
                    break;
                }
                out.push(m);
            }
            Ok(())
        };
    if q.range.newest_first {
        from_memory(&mut out, budget)?;
        from_index(&mut out, budget)?;
    } else {
        from_index(&mut out, budget)?;
        from_memory(&mut out, budget)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OptionalExtension;

    /// Adds messages `seqs` of conversation `conv` (ids growing from 1 across conversations,
    /// as the writer's do; sent at their id) and their entries in memory, as committed
    /// batches do.
    fn add(c: &Connection, recent: &Recent, conv: u64, seqs: std::ops::RangeInclusive<u64>) {
        for seq in seqs {
            let id: i64 = c
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM messages", [], |r| {
                    r.get(0)
                })
                .unwrap();
            let id = id as u64;
            c.execute(
                "INSERT INTO messages(id, conversation_id, seq, sender_id, kind, body, sent_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 1, 'x', ?1)",
                params![id as i64, conv as i64, seq as i64, (seq % 2) as i64],
            )
            .unwrap();
            recent.publish(&[(
                conv,
                Slot {
                    seq,
                    id,
                    sender: seq % 2,
                },
            )]);
        }
    }

    /// Moves everything in memory into `message_seq`, as the writer does.
    fn move_all(c: &Connection, recent: &Recent) {
        let entries = recent.sorted();
        let mark = entries.iter().map(|e| e.2).max().unwrap_or(0);
        move_into_index(c, &entries, mark).unwrap();
        recent.moved(mark);
    }

    fn seqs(c: &Connection, recent: &Recent, conv: u64, range: Range) -> Vec<u64> {
        let view = View {
            recent,
            snap: Snapshot::read(c).unwrap(),
        };
        let q = Query {
            conversation: conv,
            range,
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        };
        read_by_seq(c, &view, &q, None)
            .unwrap()
            .into_iter()
            .map(|m| m.seq)
            .collect()
    }

    fn range(after: u64, before: u64, newest_first: bool, limit: usize) -> Range {
        Range {
            after,
            before,
            newest_first,
            limit,
        }
    }

    #[test]
    fn reads_span_both_halves_in_order() {
        let c = crate::schema::migrated_in_memory();
        let recent = Recent::new(0);
        add(&c, &recent, 7, 1..=5);
        add(&c, &recent, 8, 1..=2);
        move_all(&c, &recent);
        assert_eq!(recent.len(), 0);
        add(&c, &recent, 7, 6..=8);
        assert_eq!(recent.len(), 3);
        let v = View {
            recent: &recent,
            snap: Snapshot::read(&c).unwrap(),
        };
        let last = |conv| v.last_seq(&c, conv).unwrap();
        assert_eq!((last(7), last(8), last(9)), (8, 2, 0));
        // Odd seqs were sent by user 1: after seq 3, user 0 has 5 and 7 unread.
        assert_eq!(v.count_from_others(&c, 7, 3, 0).unwrap(), 2);
        assert_eq!(v.count_from_others(&c, 7, 3, 1).unwrap(), 3);
        let max = u64::MAX;
        assert_eq!(seqs(&c, &recent, 7, range(0, max, true, 4)), [8, 7, 6, 5]);
        assert_eq!(seqs(&c, &recent, 7, range(0, max, false, 4)), [1, 2, 3, 4]);
        assert_eq!(seqs(&c, &recent, 7, range(0, 7, true, 3)), [6, 5, 4]);
        assert_eq!(seqs(&c, &recent, 7, range(4, max, false, 10)), [5, 6, 7, 8]);
        assert_eq!(seqs(&c, &recent, 8, range(0, max, true, 10)), [2, 1]);
        // A move keeps every entry once.
        move_all(&c, &recent);
        assert_eq!(
            seqs(&c, &recent, 7, range(0, max, false, 100)),
            (1..=8).collect::<Vec<_>>()
        );
        let dup: Option<i64> = c
            .query_row(
                "SELECT 1 FROM message_seq GROUP BY conversation_id, seq HAVING count(*) > 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(dup, None);
        assert_eq!(crate::recent::mark(&c).unwrap(), 10);
    }

    /// A time filter applies to the entries in memory as to those in the database.
    #[test]
    fn a_time_window_filters_both_halves() {
        let c = crate::schema::migrated_in_memory();
        let recent = Recent::new(0);
        add(&c, &recent, 7, 1..=3);
        move_all(&c, &recent);
        add(&c, &recent, 7, 4..=6);
        let v = View {
            recent: &recent,
            snap: Snapshot::read(&c).unwrap(),
        };
        // Sent at their ids, which are their seqs here.
        let q = Query {
            conversation: 7,
            range: range(0, u64::MAX, true, 10),
            since_ms: 2,
            until_ms: 6,
        };
        let got: Vec<u64> = read_by_seq(&c, &v, &q, None)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(got, [5, 4, 3, 2]);
        let q = Query {
            range: range(0, u64::MAX, true, 2),
            since_ms: 2,
            until_ms: 5,
            ..q
        };
        let got: Vec<u64> = read_by_seq(&c, &v, &q, None)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(got, [4, 3]);
    }

    /// A page of history must seek the index, not sort a conversation.
    #[test]
    fn a_page_seeks_the_index() {
        let c = crate::schema::migrated_in_memory();
        let plan: Vec<String> = c
            .prepare(
                "EXPLAIN QUERY PLAN SELECT m.id FROM message_seq x JOIN messages m ON m.id = x.id
                 WHERE x.conversation_id = 7 AND x.seq > 0 AND x.seq < 100
                 ORDER BY x.seq DESC LIMIT 50",
            )
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            [
                "SEARCH x USING PRIMARY KEY (conversation_id=? AND seq>? AND seq<?)",
                "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"
            ]
        );
    }
}
