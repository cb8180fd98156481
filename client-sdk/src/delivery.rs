//! Exactly-once, in-order delivery: per conversation, the highest contiguous sequence number
//! delivered to the application, plus the messages that arrived ahead of a gap.
//!
//! Everything that can move a position goes through [`Tracker`]: pushes, sync pages, and the
//! acks of this client's own sends (which the server does not push back to the sending
//! connection, so they would otherwise look like gaps). The tracker is pure state; the reader
//! task feeds it frames in the order they arrive and emits what it returns.

use std::collections::{BTreeMap, HashMap, HashSet};

use feige_protocol::pb;

/// Most out-of-order messages kept per conversation; beyond that they are dropped and
/// fetched again by the sync that the gap triggers.
const MAX_PENDING: usize = 10_000;

/// What feeding the tracker produced.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Messages to hand to the application, in order.
    pub delivered: Vec<pb::Message>,
    /// A gap or an unknown conversation was seen: a sync should fetch what is missing.
    pub need_sync: bool,
    /// Some position moved (there is something new to ack).
    pub advanced: bool,
}

/// One conversation's state.
#[derive(Debug, Default)]
struct Conv {
    /// Highest contiguous seq delivered; `None` until a baseline is known.
    pos: Option<u64>,
    /// Entries above a gap: a message to deliver, or `None` for one of our own sends.
    pending: BTreeMap<u64, Option<pb::Message>>,
}

/// Delivery positions of one login session.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Bumped by [`Tracker::reset`]; sync pages requested under an older epoch are ignored.
    epoch: u64,
    /// A full sync finished since the last login or reconnect.
    synced: bool,
    /// The logged-in user (0 = none).
    me: u64,
    convs: HashMap<u64, Conv>,
    /// client_msg_ids of this client's sends that have no ack yet.
    own: HashSet<u64>,
    /// Positions moved since the last ack to the server.
    dirty: HashMap<u64, u64>,
}

impl Tracker {
    /// The current epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Forgets everything (logout, revoked session).
    pub(crate) fn reset(&mut self) {
        *self = Tracker {
            epoch: self.epoch + 1,
            ..Tracker::default()
        };
    }

    /// Records the logged-in user; a different user than before starts from scratch.
    pub(crate) fn set_user(&mut self, me: u64) {
        if self.me != 0 && self.me != me {
            self.reset();
        }
        self.me = me;
    }

    /// Whether a full sync finished since the last login or reconnect.
    pub(crate) fn synced(&self) -> bool {
        self.synced
    }

    /// Marks whether a full sync finished.
    pub(crate) fn set_synced(&mut self, synced: bool) {
        self.synced = synced;
    }

    /// A send with this client_msg_id is about to go out.
    pub(crate) fn begin_send(&mut self, client_msg_id: u64) {
        self.own.insert(client_msg_id);
    }

    /// The send with this client_msg_id has a definite outcome.
    pub(crate) fn end_send(&mut self, client_msg_id: u64) {
        self.own.remove(&client_msg_id);
    }

    /// The positions of every conversation with a baseline, for a Sync request.
    pub(crate) fn positions(&self) -> Vec<pb::ConversationPosition> {
        let mut v: Vec<_> = self
            .convs
            .iter()
            .filter_map(|(&conversation_id, c)| {
                c.pos.map(|seq| pb::ConversationPosition {
                    conversation_id,
                    seq,
                })
            })
            .collect();
        v.sort_unstable_by_key(|p| p.conversation_id);
        v
    }

    /// Takes the positions that moved since the last call, for an Ack request.
    pub(crate) fn take_dirty(&mut self) -> Vec<pb::ConversationPosition> {
        let mut v: Vec<_> = self
            .dirty
            .drain()
            .map(|(conversation_id, seq)| pb::ConversationPosition {
                conversation_id,
                seq,
            })
            .collect();
        v.sort_unstable_by_key(|p| p.conversation_id);
        v
    }

    /// Puts back positions whose ack failed.
    pub(crate) fn restore_dirty(&mut self, positions: Vec<pb::ConversationPosition>) {
        for p in positions {
            let e = self.dirty.entry(p.conversation_id).or_insert(p.seq);
            *e = (*e).max(p.seq);
        }
    }

    /// A pushed message. A conversation without a baseline accepts seq 1 once a sync has
    /// finished; anything else unknown waits for a sync.
    pub(crate) fn on_push(&mut self, m: pb::Message) -> Applied {
        let mut out = Applied::default();
        let establish = self.synced && m.seq == 1;
        let conv = m.conversation_id;
        self.offer(conv, m.seq, Some(m), establish, &mut out);
        self.check_gaps([conv], &mut out);
        out
    }

    /// The ack of one of our own sends: the position moves past it, nothing is delivered.
    pub(crate) fn on_own(&mut self, conversation_id: u64, seq: u64) -> Applied {
        let mut out = Applied::default();
        self.offer(conversation_id, seq, None, seq == 1, &mut out);
        self.check_gaps([conversation_id], &mut out);
        out
    }

    /// A page of a Sync (oldest first per conversation). For a conversation without a
    /// baseline the server answered from its stored cursor, so its first message sets it.
    pub(crate) fn on_sync_page(&mut self, messages: Vec<pb::Message>) -> Applied {
        let mut out = Applied::default();
        let mut touched = HashSet::new();
        for m in messages {
            if touched.insert(m.conversation_id) {
                self.skip_to(m.conversation_id, m.seq);
            }
            self.offer(m.conversation_id, m.seq, Some(m), true, &mut out);
        }
        self.check_gaps(touched, &mut out);
        out
    }

    /// A sync answers each conversation from the position asked, without gaps, except where
    /// the user may not read: a group member reads only what follows their joining. So a
    /// page whose first message of a conversation lies past the position moves it there.
    fn skip_to(&mut self, conversation_id: u64, seq: u64) {
        if let Some(conv) = self.convs.get_mut(&conversation_id) {
            if let Some(pos) = conv.pos.filter(|p| seq > p + 1) {
                conv.pos = Some(seq - 1);
                conv.pending.retain(|k, _| *k >= seq);
                tracing::debug!(
                    conversation_id,
                    from = pos,
                    to = seq - 1,
                    "sync skipped ahead"
                );
            }
        }
    }

    /// Forgets a conversation the user is no longer in (left a group, removed, dismissed):
    /// should they join again, its position starts from what the server sends then.
    pub(crate) fn forget(&mut self, conversation_id: u64) {
        self.convs.remove(&conversation_id);
        self.dirty.remove(&conversation_id);
    }

    /// Asks for a sync while any of `convs` still holds messages above a gap.
    fn check_gaps(&self, convs: impl IntoIterator<Item = u64>, out: &mut Applied) {
        if convs
            .into_iter()
            .any(|c| self.convs.get(&c).is_some_and(|c| !c.pending.is_empty()))
        {
            out.need_sync = true;
        }
    }

    fn offer(
        &mut self,
        conversation_id: u64,
        seq: u64,
        mut item: Option<pb::Message>,
        establish: bool,
        out: &mut Applied,
    ) {
        if seq == 0 {
            return;
        }
        // Our own send coming back (through a sync, or pushed to a new connection after the
        // one that sent it died) moves the position but is not delivered.
        if let Some(m) = &item {
            if self.me != 0
                && m.from_user == self.me
                && m.client_msg_id != 0
                && self.own.remove(&m.client_msg_id)
            {
                item = None;
            }
        }
        let conv = self.convs.entry(conversation_id).or_default();
        let pos = match conv.pos {
            Some(p) => p,
            None if establish => seq - 1,
            None => {
                if !buffer(conv, seq, item) {
                    out.need_sync = true;
                }
                return;
            }
        };
        if seq <= pos {
            return;
        }
        if seq > pos + 1 {
            if !buffer(conv, seq, item) {
                out.need_sync = true;
            }
            return;
        }
        let mut pos = seq;
        out.delivered.extend(item);
        while let Some(entry) = conv.pending.first_entry() {
            let k = *entry.key();
            if k <= pos {
                entry.remove();
            } else if k == pos + 1 {
                out.delivered.extend(entry.remove());
                pos = k;
            } else {
                break;
            }
        }
        conv.pos = Some(pos);
        self.dirty.insert(conversation_id, pos);
        out.advanced = true;
    }
}

/// Keeps an entry above a gap; false when the buffer is full (a sync fetches it again).
fn buffer(conv: &mut Conv, seq: u64, item: Option<pb::Message>) -> bool {
    if conv.pending.len() < MAX_PENDING || conv.pending.contains_key(&seq) {
        conv.pending.insert(seq, item);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u64 = 1;
    const PEER: u64 = 2;

    fn msg(conv: u64, seq: u64) -> pb::Message {
        pb::Message {
            message_id: conv * 1000 + seq,
            conversation_id: conv,
            seq,
            from_user: PEER,
            to_user: ME,
            text: format!("{conv}/{seq}"),
            ..Default::default()
        }
    }

    fn seqs(a: &Applied) -> Vec<u64> {
        a.delivered.iter().map(|m| m.seq).collect()
    }

    fn tracker() -> Tracker {
        let mut t = Tracker::default();
        t.set_user(ME);
        t
    }

    #[test]
    fn in_order_pushes_after_sync() {
        let mut t = tracker();
        t.set_synced(true);
        let mut got = Vec::new();
        for s in 1..=5 {
            let a = t.on_push(msg(7, s));
            assert!(!a.need_sync && a.advanced);
            got.extend(seqs(&a));
        }
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(t.positions()[0].seq, 5);
        // A duplicate push is dropped.
        let a = t.on_push(msg(7, 3));
        assert!(a.delivered.is_empty() && !a.need_sync && !a.advanced);
    }

    #[test]
    fn unknown_conversation_before_first_sync_waits_for_it() {
        let mut t = tracker();
        let a = t.on_push(msg(3, 1));
        assert!(a.delivered.is_empty() && a.need_sync);
        assert!(t.positions().is_empty());
        let a = t.on_push(msg(3, 2));
        assert!(a.delivered.is_empty() && a.need_sync);
        // The sync (from the server's cursor) returns both; each is delivered once, plus the
        // buffered third that arrived meanwhile.
        t.on_push(msg(3, 4));
        let a = t.on_sync_page(vec![msg(3, 1), msg(3, 2), msg(3, 3)]);
        assert_eq!(seqs(&a), vec![1, 2, 3, 4]);
        assert!(!a.need_sync);
    }

    #[test]
    fn gap_buffers_and_sync_fills_it() {
        let mut t = tracker();
        t.set_synced(true);
        t.on_push(msg(1, 1));
        t.on_push(msg(1, 2));
        let a = t.on_push(msg(1, 5));
        assert!(a.delivered.is_empty() && a.need_sync);
        assert_eq!(t.positions()[0].seq, 2);
        let a = t.on_sync_page(vec![msg(1, 3), msg(1, 4), msg(1, 5), msg(1, 6)]);
        assert_eq!(seqs(&a), vec![3, 4, 5, 6]);
        let a = t.on_push(msg(1, 6));
        assert!(a.delivered.is_empty());
        assert_eq!(seqs(&t.on_push(msg(1, 7))), vec![7]);
    }

    #[test]
    fn unknown_conversation_mid_stream_after_sync() {
        let mut t = tracker();
        t.set_synced(true);
        // Seq 5 of a conversation this client never saw: maybe 1..4 are unread.
        let a = t.on_push(msg(9, 5));
        assert!(a.delivered.is_empty() && a.need_sync);
        // The server's cursor for this device was 3.
        let a = t.on_sync_page(vec![msg(9, 4), msg(9, 5)]);
        assert_eq!(seqs(&a), vec![4, 5]);
    }

    #[test]
    fn own_sends_move_the_position_without_delivery() {
        let mut t = tracker();
        t.set_synced(true);
        let a = t.on_own(4, 1);
        assert!(a.delivered.is_empty() && a.advanced && !a.need_sync);
        assert_eq!(seqs(&t.on_push(msg(4, 2))), vec![2]);
        t.on_own(4, 3);
        assert_eq!(seqs(&t.on_push(msg(4, 4))), vec![4]);
        assert_eq!(t.positions()[0].seq, 4);
        // A late ack of an old send changes nothing.
        let a = t.on_own(4, 3);
        assert!(!a.advanced);
    }

    #[test]
    fn own_send_seen_through_sync_is_not_delivered() {
        let mut t = tracker();
        t.set_synced(true);
        t.on_push(msg(4, 1));
        t.begin_send(77);
        // Its ack was lost with the connection; a later push shows the gap.
        let a = t.on_push(msg(4, 3));
        assert!(a.need_sync);
        let mine = pb::Message {
            from_user: ME,
            client_msg_id: 77,
            ..msg(4, 2)
        };
        let a = t.on_sync_page(vec![mine, msg(4, 3)]);
        assert_eq!(seqs(&a), vec![3]);
        // The resend's ack (duplicate) is a no-op.
        assert!(!t.on_own(4, 2).advanced);
    }

    #[test]
    fn own_message_pushed_from_another_device_is_delivered() {
        let mut t = tracker();
        t.set_synced(true);
        t.on_own(4, 1);
        let other = pb::Message {
            from_user: ME,
            client_msg_id: 5,
            ..msg(4, 2)
        };
        assert_eq!(seqs(&t.on_push(other)), vec![2]);
    }

    #[test]
    fn dirty_positions_and_reset() {
        let mut t = tracker();
        t.set_synced(true);
        t.on_push(msg(1, 1));
        t.on_push(msg(2, 1));
        t.on_push(msg(2, 2));
        let d = t.take_dirty();
        assert_eq!(
            d.iter()
                .map(|p| (p.conversation_id, p.seq))
                .collect::<Vec<_>>(),
            vec![(1, 1), (2, 2)]
        );
        assert!(t.take_dirty().is_empty());
        t.on_push(msg(2, 3));
        t.restore_dirty(d);
        let d = t.take_dirty();
        assert_eq!(d[1].seq, 3);
        let epoch = t.epoch();
        t.reset();
        assert_ne!(t.epoch(), epoch);
        assert!(t.positions().is_empty() && !t.synced());
    }

    #[test]
    fn a_sync_that_starts_past_the_position_moves_it_there() {
        let mut t = tracker();
        t.on_sync_page(vec![msg(9, 1), msg(9, 2)]);
        // Left the group and joined again at seq 7: pushes from 8 wait for a sync...
        let a = t.on_push(msg(9, 8));
        assert!(a.need_sync && a.delivered.is_empty());
        // ...which answers from the joining on: delivered in order, the gap skipped.
        let a = t.on_sync_page(vec![msg(9, 7), msg(9, 8), msg(9, 9)]);
        assert_eq!(seqs(&a), vec![7, 8, 9]);
        assert!(!a.need_sync);
        // A group left is forgotten: a push after joining again waits for a sync.
        t.forget(9);
        assert!(t.on_push(msg(9, 20)).need_sync);
    }

    #[test]
    fn sync_page_over_many_conversations_in_one_pass() {
        let mut t = tracker();
        let page: Vec<_> = (1..=3)
            .flat_map(|c| (1..=3).map(move |s| msg(c, s)))
            .collect();
        let a = t.on_sync_page(page);
        assert_eq!(a.delivered.len(), 9);
        assert_eq!(t.positions().len(), 3);
        // The same page again (a racing sync) delivers nothing.
        let page: Vec<_> = (1..=3)
            .flat_map(|c| (1..=3).map(move |s| msg(c, s)))
            .collect();
        assert!(t.on_sync_page(page).delivered.is_empty());
    }
}
