//! The writer thread's in-memory state: the id clock and the conversation caches.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::generations::Generations;
use super::index::{Next, SeqMove};
use super::op::{Attachment, Delivered, Members, NewMessage, Op, Target};
use super::pairs::PairMove;
use crate::int::{get_u64, Uint};
use crate::message::{message_row, pair_of, StoredMessage, MESSAGE_COLUMNS};
use crate::recent::{Recent, Slot};
use crate::row::encode_mentions;
use crate::social::{DirectPolicy, Gate};
use crate::{ConversationId, IdMap as HashMap, StorageError, UserId};

/// Cached facts about a conversation, owned by the writer thread (32 bytes for a direct one).
pub(super) struct Conv {
    pub(super) last_seq: u64,
    pub(super) members: Members,
}

/// In-memory state that only the writer changes: the id clock and conversation caches.
pub(super) struct State {
    pub(super) last_id: u64,
    pub(super) direct: Generations<(UserId, UserId), ConversationId>,
    /// `direct` was loaded with every direct conversation; while it has lost none since, a
    /// pair it lacks has no conversation, and a new pair needs no lookup in the index.
    pub(super) direct_all: bool,
    pub(super) convs: Generations<ConversationId, Conv>,
    pub(super) gate: Gate,
    /// Every direct conversation above the pair index's mark (see [`crate::pairs`]), by pair:
    /// a pair missing here and from the index has no conversation yet.
    pub(super) tail: HashMap<(UserId, UserId), ConversationId>,
    /// The newest conversation id the writer knows of; a job that opened conversations
    /// (a friend request) moves it, and [`State::after_job`] adds them to `tail`.
    pub(super) seen: ConversationId,
    /// When the last move of the tail into the index started.
    pub(super) indexed_at: std::time::Instant,
    /// `tail` may lack a conversation a job opened (reading them failed): look pairs up in
    /// the database, tail included, until the tail is read again (before the next move).
    pub(super) stale: bool,
    /// The move of the tail into `direct_pairs` (see [`super::pairs`]).
    pub(super) pairs: PairMove,
    /// The committed sequence-index entries not yet in `message_seq` (see [`crate::recent`]).
    pub(super) recent: Arc<Recent>,
    /// Direct pairs in the tail past which it is moved: [`PAIRS_INDEX_AT`] (smaller in tests).
    /// Larger moves put more pairs on each index page.
    pub(super) pairs_index_at: usize,
    /// The move of the sequence index into `message_seq` (see [`super::index`]).
    pub(super) seqs: SeqMove,
    /// This batch's sequence-index entries: published to `recent` after the commit.
    pub(super) pending: Vec<(ConversationId, Slot)>,
    /// `convs.drops` when `pending` was last empty.
    pub(super) pending_since: u64,
}

/// Direct pairs in the tail past which the writer moves them into the index (between batches,
/// in slices). Larger moves put more pairs on each index page they write; readers scan the
/// tail, so it stays bounded.
pub(super) const PAIRS_INDEX_AT: usize = 16_384;
/// A smaller tail is moved once it is this old, so that a quiet server's tail is short.
pub(super) const PAIRS_INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl State {
    pub(super) fn load(
        conn: &Connection,
        policy: DirectPolicy,
        cache: usize,
        recent: Arc<Recent>,
        index_batch: usize,
    ) -> Result<Self, StorageError> {
        // Past the marks too: a message at or below one would be taken as moved into the
        // index.
        let last_id = conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM messages), 0),
                        (SELECT value FROM meta WHERE key = 'seq_indexed_upto'),
                        (SELECT value FROM meta WHERE key = 'seq_moving_upto'))",
            [],
            |r| get_u64(r, 0),
        )?;
        // The newest direct conversations, so that a message to an existing one needs no
        // lookup; a pair missing here is created (or found) by `direct_conv`.
        let mut direct = Generations::new(cache);
        let mut st = conn.prepare(
            "SELECT id, user_a, user_b FROM conversations WHERE kind = 1 ORDER BY id DESC LIMIT ?1",
        )?;
        let mut rows = st.query([Uint::from_usize(cache)])?;
        let mut loaded = 0;
        while let Some(r) = rows.next()? {
            loaded += 1;
            let (id, a, b) = (get_u64(r, 0)?, get_u64(r, 1)?, get_u64(r, 2)?);
            direct.insert((a, b), id);
        }
        let tail = crate::pairs::tail_after(conn, crate::pairs::mark(conn)?)?
            .into_iter()
            .collect();
        let pairs = PairMove::load(conn, &tail)?;
        let seqs = SeqMove::load(conn, &recent, index_batch)?;
        Ok(State {
            last_id,
            direct,
            direct_all: loaded < cache,
            convs: Generations::new(cache),
            gate: Gate::new(policy),
            tail,
            seen: crate::pairs::newest(conn)?,
            indexed_at: std::time::Instant::now(),
            stale: false,
            pairs,
            recent,
            pairs_index_at: PAIRS_INDEX_AT,
            seqs,
            pending: Vec::new(),
            pending_since: 0,
        })
    }

    /// After a job: conversations it opened join the tail, so that a message to the pair
    /// finds them instead of opening a second one.
    pub(super) fn after_job(&mut self, c: &Connection) -> Result<(), StorageError> {
        let newest = crate::pairs::newest(c)?;
        if newest > self.seen {
            for (pair, id) in crate::pairs::tail_after(c, self.seen)? {
                self.tail.insert(pair, id);
                self.direct.insert(pair, id);
            }
            self.seen = newest;
        }
        Ok(())
    }

    /// Reads the cache entry a message will use, for the next [`super::WARM_AHEAD`] messages at once:
    /// the caches hold up to a million entries, far beyond the CPU's caches, and a miss met
    /// while a message runs waits alone, behind SQLite work; met in a row of lookups that do
    /// not depend on each other, the misses overlap.
    /// Returns a value read from the entry, for `black_box`.
    pub(super) fn warm(&self, lookup: Lookup) -> u64 {
        let id = match lookup {
            Lookup::Pair(a, b) => self.direct.peek(&(a, b)).copied(),
            Lookup::Conv(id) => Some(id),
            Lookup::Nothing => None,
        };
        id.and_then(|id| self.convs.peek(&id))
            .map_or(0, |conv| conv.last_seq)
    }

    /// Between batches (outside a transaction): the moves that are due, a step each; says
    /// whether more steps wait.
    pub(super) fn index(&mut self, c: &Connection) -> Next {
        // One slice per call: the sequence index waits while the pairs move.
        let pairs = self.index_pairs(c);
        if pairs == Next::Work {
            return pairs;
        }
        pairs.max(self.seqs.step(c, &self.recent, self.last_id))
    }

    /// After the batch committed: its index entries join the others in memory. Before the
    /// commit is reported, so that a reader that sees a pushed message sees its entry.
    pub(super) fn committed(&mut self) {
        self.recent.publish(&self.pending);
        self.seqs.committed(&self.pending);
        self.pending.clear();
        self.pending_since = self.convs.drops;
    }

    /// After the batch failed: nothing of it is in the database, so none of it is published.
    pub(super) fn rolled_back(&mut self) {
        self.pending.clear();
        self.pending_since = self.convs.drops;
    }

    /// Moves the tail into the pair index when it is long or old (see [`crate::pairs`]): a
    /// slice of the move under way, or a new move.
    pub(super) fn index_pairs(&mut self, c: &Connection) -> Next {
        if self.pairs.busy() {
            return self.pairs.step(c, &mut self.tail, &mut self.seen);
        }
        if !self.stale
            && (self.tail.is_empty()
                || (self.tail.len() < self.pairs_index_at
                    && self.indexed_at.elapsed() < PAIRS_INDEX_EVERY))
        {
            return Next::Idle;
        }
        // The tail in memory is all of it unless a job's pairs could not be read back; then
        // it is read again from the database first.
        if self.stale {
            let reread = crate::pairs::mark(c).and_then(|m| crate::pairs::tail_after(c, m));
            match reread {
                Ok(tail) => {
                    self.tail = tail.into_iter().collect();
                    self.stale = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the direct pairs' tail");
                    return Next::Idle;
                }
            }
        }
        self.indexed_at = std::time::Instant::now();
        if self.tail.is_empty() {
            return Next::Idle;
        }
        if let Err(e) = self.pairs.start(c, &self.tail) {
            tracing::warn!(error = %e, "cannot start indexing direct pairs");
            return Next::Idle;
        }
        self.pairs.step(c, &mut self.tail, &mut self.seen)
    }

    /// Next server id: milliseconds since the epoch in the high bits, a counter in the low 16;
    /// strictly increasing even if the clock steps back.
    pub(super) fn next_id(&mut self, now: i64) -> u64 {
        let candidate = u64::try_from(now).unwrap_or(0) << 16;
        self.last_id = candidate.max(self.last_id + 1);
        self.last_id
    }

    pub(super) fn conv(
        &mut self,
        c: &Connection,
        id: ConversationId,
    ) -> Result<&mut Conv, StorageError> {
        if self.convs.get_mut(&id).is_none() {
            let (kind, a, b, last_seq): (i64, Option<i64>, Option<i64>, u64) = c
                .prepare_cached(&format!(
                    "SELECT kind, user_a, user_b, {} FROM conversations WHERE id = ?1",
                    crate::sequence::INDEXED_LAST_SEQ
                ))?
                .query_row([Uint(id)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, get_u64(r, 3)?))
                })
                .optional()?
                .ok_or(StorageError::UnknownConversation)?;
            // Newer entries are in memory, this batch's in `pending`: only for a conversation
            // dropped from the cache within this batch (a group change, or a turnover in a
            // batch far beyond the cache's size), so the batch is scanned only after a drop.
            let batch = if self.convs.drops == self.pending_since {
                &[][..]
            } else {
                &self.pending[..]
            };
            let last_seq = batch
                .iter()
                .filter(|e| e.0 == id)
                .map(|e| e.1.seq)
                .chain(self.recent.newest_seq(id))
                .fold(last_seq, u64::max);
            // A direct conversation's members are its pair, always.
            let members = match pair_of(kind, a, b) {
                Some((a, b)) => Members::direct(a, b),
                None => super::rules::load_members(c, id)?,
            };
            self.convs.insert(id, Conv { last_seq, members });
        }
        self.convs
            .get_mut(&id)
            .ok_or(StorageError::UnknownConversation)
    }

    pub(super) fn direct_conv(
        &mut self,
        c: &Connection,
        sender: UserId,
        to: UserId,
        now: i64,
    ) -> Result<ConversationId, StorageError> {
        if sender == to {
            return Err(StorageError::SelfMessage);
        }
        let key = (sender.min(to), sender.max(to));
        if let Some(id) = self.direct.get_mut(&key) {
            return Ok(*id);
        }
        // The gate has checked that `to` exists. A conversation older than the cached ones is
        // in the tail (all of which is in memory) or in the index.
        let found = match self.tail.get(&key) {
            Some(id) => Some(*id),
            None if self.stale => crate::pairs::direct_conversation(c, key.0, key.1)?,
            None if self.direct_all && !self.direct.lost => None,
            None => crate::pairs::indexed(c, key.0, key.1)?,
        };
        let (id, created) = match found {
            Some(id) => (id, false),
            None => (crate::pairs::insert(c, key.0, key.1, now)?, true),
        };
        if created {
            self.tail.insert(key, id);
            self.seen = self.seen.max(id);
            self.convs.insert(
                id,
                Conv {
                    last_seq: 0,
                    members: Members::direct(key.0, key.1),
                },
            );
        }
        self.direct.insert(key, id);
        Ok(id)
    }

    /// The stored message `m` resends (same sender and client id), as a duplicate result.
    pub(super) fn original<C>(
        &mut self,
        c: &Connection,
        m: &NewMessage<C>,
    ) -> Result<Option<Delivered>, StorageError> {
        if m.client_msg_id == 0 {
            return Ok(None);
        }
        let found = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.sender_id = ?1 AND m.client_msg_id = ?2"
            ))?
            .query_row(params![Uint(m.sender), m.client_msg_id.cast_signed()], |r| {
                message_row(r, None)
            })
            .optional()?;
        let Some(mut original) = found else {
            return Ok(None);
        };
        let conv = self.conv(c, original.conversation_id)?;
        if let Some((a, b)) = conv.members.pair() {
            original.to_user = if original.from_user == a { b } else { a };
        }
        Ok(Some(Delivered {
            message: original,
            duplicate: true,
            members: conv.members.clone(),
        }))
    }

    pub(super) fn insert<C>(
        &mut self,
        c: &Connection,
        m: &mut NewMessage<C>,
        now: i64,
    ) -> Result<Delivered, StorageError> {
        self.insert_with(c, m, None, now)
    }

    /// [`State::insert`], running `attach` in the message's transaction before its row is
    /// inserted ([`Attachment`]); without one, the plain path.
    pub(super) fn insert_with<C>(
        &mut self,
        c: &Connection,
        m: &mut NewMessage<C>,
        attach: Option<Attachment>,
        now: i64,
    ) -> Result<Delivered, StorageError> {
        // A resend of an already stored message gets its original ack even where the send
        // would now be refused (the recipient has since blocked the sender, say).
        let conv_id = match m.target {
            Target::Direct(to) => {
                if let Err(e) = self.gate.check(c, m.sender, to) {
                    return self.original(c, m)?.ok_or(e);
                }
                self.direct_conv(c, m.sender, to, now)?
            }
            Target::Conversation(id) => {
                if let Some((a, b)) = self.conv(c, id)?.members.pair() {
                    if m.sender == a || m.sender == b {
                        let peer = if m.sender == a { b } else { a };
                        if let Err(e) = self.gate.check(c, m.sender, peer) {
                            return self.original(c, m)?.ok_or(e);
                        }
                    }
                }
                id
            }
        };
        let id = self.next_id(now);
        if let Some(attach) = attach {
            return self.attached(c, m, attach, conv_id, id, now);
        }
        self.store(c, m, conv_id, id, now)
    }

    /// Inserts the message's row as `id`, the next seq of `conv_id`, once the sender is
    /// found to be a member; a resend of a stored client id returns the original.
    pub(super) fn store<C>(
        &mut self,
        c: &Connection,
        m: &mut NewMessage<C>,
        conv_id: ConversationId,
        id: u64,
        now: i64,
    ) -> Result<Delivered, StorageError> {
        let conv = self.conv(c, conv_id)?;
        // Not a member, muted, bad mentions (`rules::refusal`).
        if let Some(e) = super::rules::refusal(&conv.members, m, now) {
            // A resend of a message stored before the sender left is still a duplicate.
            return match self.original(c, m)? {
                Some(d) => Ok(d),
                None => Err(e),
            };
        }
        let seq = conv.last_seq + 1;
        let attachment = match &m.file {
            None => None,
            Some(f) => Some(super::rules::file_attachment(c, f)?),
        };
        // Stored by its bits, so ids past i64::MAX stay distinct (`row.rs` reads them back).
        let client_id = (m.client_msg_id != 0).then_some(m.client_msg_id.cast_signed());
        // The unique (sender, client_msg_id) index finds resends: a conflict inserts nothing,
        // and only then is the original looked up (one index probe per message, not two).
        let inserted = c
            .prepare_cached(
                "INSERT INTO messages(id, conversation_id, seq, sender_id, client_msg_id, kind, body, sent_at_ms, mentions, attachment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(sender_id, client_msg_id) DO NOTHING",
            )?
            .execute(params![
                Uint(id),
                Uint(conv_id),
                Uint(seq),
                Uint(m.sender),
                client_id,
                m.kind,
                m.text,
                now,
                m.mentions
                    .as_deref()
                    .and_then(|mn| encode_mentions(&mn.users, mn.all)),
                attachment
            ])?;
        if inserted == 0 {
            return self
                .original(c, m)?
                .ok_or_else(|| StorageError::CommitFailed("dedupe conflict without a row".into()));
        }
        // Its mentions, in the same transaction; should they fail, the message goes too, so
        // that its seq is used by the next one.
        let mentioned = match &m.mentions {
            None => None,
            Some(mn) => match super::rules::record_mentions(c, m.sender, mn, conv_id, seq) {
                Ok(()) => Some(mn),
                Err(e) => {
                    super::rules::unstore(c, id, conv_id, seq);
                    return Err(e);
                }
            },
        };
        if let Some(f) = &m.file {
            if let Err(e) = super::rules::record_file_use(c, f, conv_id, seq, id, m.sender) {
                super::rules::unstore(c, id, conv_id, seq);
                return Err(e);
            }
        }
        conv.last_seq = seq;
        let to_user = match conv.members.pair() {
            Some((a, b)) => {
                if m.sender == a {
                    b
                } else {
                    a
                }
            }
            None => 0,
        };
        let members = conv.members.clone();
        self.pending.push((
            conv_id,
            Slot {
                seq,
                id,
                sender: m.sender,
            },
        ));
        let mut message = StoredMessage {
            id,
            conversation_id: conv_id,
            seq,
            from_user: m.sender,
            to_user,
            client_msg_id: m.client_msg_id,
            kind: m.kind,
            text: std::mem::take(&mut m.text),
            sent_at_ms: now,
            mentions: Vec::new(),
            mention_all: false,
            recalled_by: 0,
            file: m.file.take(),
            transcript: None,
        };
        if let Some(mn) = mentioned {
            message.mentions.clone_from(&mn.users);
            message.mention_all = mn.all;
        }
        Ok(Delivered {
            message,
            duplicate: false,
            members,
        })
    }
}

/// The cache entry an op will look up first (see [`State::warm`]).
#[derive(Clone, Copy)]
pub(super) enum Lookup {
    Pair(UserId, UserId),
    Conv(ConversationId),
    Nothing,
}

impl Lookup {
    pub(super) fn of<C>(op: &Op<C>) -> Self {
        match op {
            Op::Message(m) | Op::Attached(m, _) => match m.target {
                Target::Direct(to) => Lookup::Pair(m.sender.min(to), m.sender.max(to)),
                Target::Conversation(id) => Lookup::Conv(id),
            },
            _ => Lookup::Nothing,
        }
    }
}
