//! The newest part of the sequence index, held in memory.
//!
//! The sequence index (which message has `seq` in a conversation) is keyed at random in a
//! busy server: every message lands on its own page of `message_seq`. Written per batch, it
//! would cost a page write per message; gathered in a small table and moved in bulk, that
//! table's pages on every commit. So a batch writes no index entries at all: the messages' own
//! rows (which hold their conversation and seq) are the durable record, and
//! their entries wait here until the writer moves many at once into `message_seq`
//! ([`crate::sequence::move_into_index`]), so each page that move writes takes many.
//!
//! `meta.seq_indexed_upto` is the mark, raised in each move's transaction: every message with
//! an id up to it is in `message_seq`, every newer one is here (rebuilt from `messages` at
//! startup, a range scan of the newest rows). A reader takes the mark and the newest message
//! id from its own read transaction ([`Snapshot`]) and asks for the entries between them, so
//! it sees the index as of its snapshot: each message in exactly one of the two halves.
//! Entries are published after their commit and before the commit is reported, so a push
//! never overtakes them. A move drops the moved entries only after its commit; a reader
//! whose snapshot is older than that gets [`StorageError::SnapshotMoved`] and reads again.
//!
//! A move runs in short slices, each its own transaction, in key order (`crate::writer`'s
//! index module): while one is under way, `meta.seq_moving_upto` is its mark and
//! `seq_moved_conv`/`seq_moved_seq` the last key moved, so an entry here at or below both is
//! already in `message_seq` for a snapshot that sees them, and is skipped.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use rusqlite::Connection;

use crate::int::{get_u64, Uint};
use crate::{ConversationId, IdMap, StorageError, UserId};

/// A message's index entry: (conversation, seq, message id).
pub(crate) type Entry = (ConversationId, u64, u64);

/// One message's entry: its seq, id and sender (the unread counts need the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub seq: u64,
    pub id: u64,
    pub sender: UserId,
}

/// The entries above the mark, shared by the writer (which adds and moves them) and the
/// readers.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The mark of the last move: every entry above it is here once committed.
    floor: u64,
    /// Each conversation's entries, in seq order (seqs grow with ids in a conversation).
    convs: IdMap<ConversationId, Slots>,
    len: usize,
}

/// A conversation's entries. In a busy server most conversations have one between two moves
/// (a move comes every `index_batch` messages, spread over all of them), so one is held
/// inline: a `Vec` each would cost an allocation per message when published and a free when
/// moved.
#[derive(Debug)]
enum Slots {
    One(Slot),
    Many(Vec<Slot>),
}

impl Slots {
    fn push(&mut self, slot: Slot) {
        match self {
            Slots::One(first) => *self = Slots::Many(vec![*first, slot]),
            Slots::Many(v) => v.push(slot),
        }
    }

    fn as_slice(&self) -> &[Slot] {
        match self {
            Slots::One(slot) => std::slice::from_ref(slot),
            Slots::Many(v) => v,
        }
    }

    /// Keeps the entries `keep` accepts; returns whether any are left.
    fn retain(&mut self, keep: impl Fn(&Slot) -> bool) -> bool {
        match self {
            Slots::One(slot) => keep(slot),
            Slots::Many(v) => {
                v.retain(|s| keep(s));
                !v.is_empty()
            }
        }
    }
}

/// What a reader's transaction sees: the mark and the newest committed message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    mark: u64,
    newest: u64,
    /// The mark of the move under way (0 = none), and the last key it has moved.
    moving: u64,
    moved: (ConversationId, u64),
}

impl Snapshot {
    /// Reads the mark and the newest message id in `c`'s current transaction (the caller
    /// holds one, so that its later reads see the same state).
    ///
    /// # Errors
    /// Database errors.
    pub(crate) fn read(c: &Connection) -> Result<Snapshot, StorageError> {
        let snap = c
            .prepare_cached(
                "SELECT (SELECT value FROM meta WHERE key = 'seq_indexed_upto'),
                        (SELECT COALESCE(MAX(id), 0) FROM messages),
                        (SELECT value FROM meta WHERE key = 'seq_moving_upto'),
                        (SELECT value FROM meta WHERE key = 'seq_moved_conv'),
                        (SELECT value FROM meta WHERE key = 'seq_moved_seq')",
            )?
            .query_row([], |r| {
                Ok(Snapshot {
                    mark: get_u64(r, 0)?,
                    newest: get_u64(r, 1)?,
                    moving: get_u64(r, 2)?,
                    moved: (get_u64(r, 3)?, get_u64(r, 4)?),
                })
            })?;
        Ok(snap)
    }
}

/// Which entries of a conversation to read: seqs strictly between `after` and `before`, at
/// most `limit`, newest first or oldest first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub after: u64,
    pub before: u64,
    pub newest_first: bool,
    pub limit: usize,
}

impl Range {
    /// Every entry, newest first.
    pub(crate) const ALL: Range = Range {
        after: 0,
        before: u64::MAX,
        newest_first: true,
        limit: usize::MAX,
    };
    /// The newest entry.
    pub(crate) const NEWEST: Range = Range {
        limit: 1,
        ..Range::ALL
    };
}

impl Recent {
    /// An empty set above `mark`.
    pub(crate) fn new(mark: u64) -> Recent {
        Recent {
            inner: RwLock::new(Inner {
                floor: mark,
                ..Inner::default()
            }),
        }
    }

    /// Loads the entries of the messages above the mark, as the writer starts.
    ///
    /// # Errors
    /// Database errors.
    pub(crate) fn load(c: &Connection) -> Result<Recent, StorageError> {
        let mark = mark(c)?;
        let recent = Recent::new(mark);
        let mut st = c.prepare(
            "SELECT conversation_id, seq, id, sender_id FROM messages WHERE id > ?1 ORDER BY id",
        )?;
        let rows = st.query_map([Uint(mark)], |r| {
            Ok((
                get_u64(r, 0)?,
                Slot {
                    seq: get_u64(r, 1)?,
                    id: get_u64(r, 2)?,
                    sender: get_u64(r, 3)?,
                },
            ))
        })?;
        let entries = rows.collect::<Result<Vec<_>, _>>()?;
        recent.publish(&entries);
        Ok(recent)
    }

    // parking_lot locks do not poison: the data stays consistent if a holder panicked,
    // since every update is a push or a clear.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write()
    }

    /// Adds committed entries, each conversation's in seq order.
    pub(crate) fn publish(&self, entries: &[(ConversationId, Slot)]) {
        if entries.is_empty() {
            return;
        }
        let mut g = self.write();
        for &(conv, slot) in entries {
            match g.convs.entry(conv) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(slot),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Slots::One(slot));
                }
            }
        }
        g.len += entries.len();
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.read().len
    }

    /// A conversation's newest seq here, as the writer sees it (everything committed).
    pub(crate) fn newest_seq(&self, conv: ConversationId) -> Option<u64> {
        self.read()
            .convs
            .get(&conv)
            .and_then(|v| v.as_slice().last())
            .map(|s| s.seq)
    }

    /// Every entry, as `(conversation, seq, id)` in key order, for a move into the index.
    pub(crate) fn sorted(&self) -> Vec<Entry> {
        let g = self.read();
        let mut all: Vec<_> = g
            .convs
            .iter()
            .flat_map(|(&conv, v)| v.as_slice().iter().map(move |s| (conv, s.seq, s.id)))
            .collect();
        drop(g);
        all.sort_unstable();
        all
    }

    /// After a move up to `mark` committed: drops the moved entries of `convs` (a part of
    /// the move's entries, so that the lock is held briefly). A snapshot older than the move
    /// gets [`StorageError::SnapshotMoved`] from the first call on.
    pub(crate) fn drop_moved(&self, convs: impl IntoIterator<Item = ConversationId>, mark: u64) {
        let mut g = self.write();
        g.floor = g.floor.max(mark);
        let mut dropped = 0;
        for conv in convs {
            if let std::collections::hash_map::Entry::Occupied(mut e) = g.convs.entry(conv) {
                let before = e.get().as_slice().len();
                let left = e.get_mut().retain(|s| s.id > mark);
                dropped += before - if left { e.get().as_slice().len() } else { 0 };
                if !left {
                    e.remove();
                }
            }
        }
        g.len -= dropped;
        // Give back the space of a map that held a burst.
        if g.convs.is_empty() {
            g.convs = IdMap::default();
        }
    }

    /// After a move up to `mark` committed: drops the moved entries.
    #[cfg(test)]
    pub(crate) fn moved(&self, mark: u64) {
        let mut g = self.write();
        g.floor = g.floor.max(mark);
        g.convs.retain(|_, v| v.retain(|s| s.id > mark));
        // Give back the space of a map that held a burst.
        if g.convs.is_empty() {
            g.convs = IdMap::default();
        }
        g.len = g.convs.values().map(|v| v.as_slice().len()).sum();
    }

    /// The conversation's entries in `range` that `snap` sees (above its mark, up to its
    /// newest message).
    ///
    /// # Errors
    /// [`StorageError::SnapshotMoved`] when a move committed after the snapshot was taken has
    /// already dropped entries it needs; the caller reads again in a new transaction.
    pub(crate) fn view(
        &self,
        conv: ConversationId,
        snap: Snapshot,
        range: Range,
    ) -> Result<Vec<Slot>, StorageError> {
        let g = self.read();
        if g.floor > snap.mark {
            return Err(StorageError::SnapshotMoved);
        }
        let Some(v) = g.convs.get(&conv).map(Slots::as_slice) else {
            return Ok(Vec::new());
        };
        // Seqs are in order: the range is a slice, found by binary search (a page deep in a
        // busy group's entries skips nothing one by one).
        let from = v.partition_point(|s| s.seq <= range.after);
        let to = v.partition_point(|s| s.seq < range.before).max(from);
        let in_range = &v[from..to];
        let visible = |s: &&Slot| {
            s.id > snap.mark
                && s.id <= snap.newest
                && !(s.id <= snap.moving && (conv, s.seq) <= snap.moved)
        };
        Ok(if range.newest_first {
            in_range
                .iter()
                .rev()
                .filter(visible)
                .take(range.limit)
                .copied()
                .collect()
        } else {
            in_range
                .iter()
                .filter(visible)
                .take(range.limit)
                .copied()
                .collect()
        })
    }
}

/// The mark: every message up to this id is in `message_seq`.
///
/// # Errors
/// Database errors.
pub(crate) fn mark(c: &Connection) -> Result<u64, StorageError> {
    let v = c
        .prepare_cached("SELECT value FROM meta WHERE key = 'seq_indexed_upto'")?
        .query_row([], |r| get_u64(r, 0))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(seq: u64, id: u64) -> Slot {
        Slot { seq, id, sender: 1 }
    }

    fn seqs(v: Vec<Slot>) -> Vec<u64> {
        v.into_iter().map(|s| s.seq).collect()
    }

    const ALL: Range = Range::ALL;

    #[test]
    fn a_view_holds_what_its_snapshot_sees() {
        let r = Recent::new(10);
        r.publish(&[(7, slot(3, 11)), (8, slot(1, 12)), (7, slot(4, 13))]);
        assert_eq!(r.len(), 3);
        assert_eq!(r.newest_seq(7), Some(4));
        assert_eq!(r.newest_seq(9), None);
        let snap = |mark, newest| Snapshot {
            mark,
            newest,
            moving: 0,
            moved: (0, 0),
        };
        // Message 13 is not committed in an older snapshot.
        assert_eq!(seqs(r.view(7, snap(10, 12), ALL).unwrap()), [3]);
        assert_eq!(seqs(r.view(7, snap(10, 13), ALL).unwrap()), [4, 3]);
        let oldest = Range {
            newest_first: false,
            limit: 1,
            ..ALL
        };
        assert_eq!(seqs(r.view(7, snap(10, 13), oldest).unwrap()), [3]);
        let below4 = Range { before: 4, ..ALL };
        assert_eq!(seqs(r.view(7, snap(10, 13), below4).unwrap()), [3]);
        let above3 = Range { after: 3, ..ALL };
        assert_eq!(seqs(r.view(7, snap(10, 13), above3).unwrap()), [4]);
        let empty = Range {
            after: 4,
            before: 3,
            ..ALL
        };
        assert_eq!(r.view(7, snap(10, 13), empty).unwrap(), []);
        assert_eq!(r.sorted(), [(7, 3, 11), (7, 4, 13), (8, 1, 12)]);
        // A move up to 12: a snapshot that sees it reads only 13 here; an older one cannot
        // be served and must read again.
        r.moved(12);
        assert_eq!(r.len(), 1);
        assert_eq!(seqs(r.view(7, snap(12, 13), ALL).unwrap()), [4]);
        assert!(matches!(
            r.view(7, snap(10, 13), ALL),
            Err(StorageError::SnapshotMoved)
        ));
        assert_eq!(r.view(8, snap(12, 13), ALL).unwrap(), []);
        r.moved(13);
        assert_eq!(r.len(), 0);
        assert_eq!(r.newest_seq(7), None);
    }

    /// A snapshot taken after a move committed but before the writer dropped the moved
    /// entries skips them: they are in `message_seq` for it.
    #[test]
    fn entries_below_the_snapshots_mark_are_skipped() {
        let r = Recent::new(0);
        r.publish(&[(7, slot(1, 5)), (7, slot(2, 6))]);
        let snap = Snapshot {
            mark: 5,
            newest: 6,
            moving: 0,
            moved: (0, 0),
        };
        assert_eq!(seqs(r.view(7, snap, ALL).unwrap()), [2]);
    }
}
