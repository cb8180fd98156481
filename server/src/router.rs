//! After-commit routing: the storage writer hands each committed batch to the [`Router`],
//! which writes the sender's ack and pushes the message to every other live connection of
//! every member — in commit order, so each conversation's pushes arrive in sequence order.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use feige_protocol::{frame, pb, Envelope, PushKind, ResponseResult};
use feige_storage::group::SYSTEM_KIND;
use feige_storage::{CommitSink, Committed, GroupMembers, Members};

use crate::convert;
use crate::error::RequestError;
use crate::session::{Outbox, Peer, Sessions};

/// Where a message's ack goes: the request it answers and the connection that sent it.
#[derive(Debug)]
pub struct ReplyTo {
    /// The SendMessage request's id.
    pub request_id: u64,
    /// The sending connection, which gets the ack but not the push.
    pub conn_id: u64,
    /// The sending connection's outbox (and kick switch).
    pub outbox: Outbox,
}

/// The [`CommitSink`] that turns commits into acks and pushes. It hands each committed batch
/// to the `feige-router` thread, so encoding and waking connections costs the writer nothing;
/// one thread keeps the commit order. A small batch (light load: often one message), or a
/// larger one while nothing waits in the writer's queue, is routed on the writer thread itself
/// when nothing waits for the router thread (see [`inline`]), which keeps the order and saves
/// the message a hand-over to another thread (a wake-up, on a busy machine a wait for a core).
#[derive(Debug)]
pub struct Router {
    tx: std::sync::mpsc::SyncSender<Vec<Committed<ReplyTo>>>,
    sessions: Arc<Sessions>,
    stats: Arc<RouterStats>,
}

/// What the router counts, for the metrics: added once per routed batch.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Batches handed to the router thread and not yet fully routed.
    pub queued: AtomicUsize,
    /// Acks and refusals written to senders.
    pub acks: AtomicU64,
    /// Message pushes queued to recipients' connections.
    pub pushes: AtomicU64,
}

impl RouterStats {
    fn add(&self, (acks, pushes): (u64, u64)) {
        self.acks.fetch_add(acks, Ordering::Relaxed);
        self.pushes.fetch_add(pushes, Ordering::Relaxed);
    }
}

/// Committed batches queued between the writer and the router thread.
const ROUTER_QUEUE: usize = 64;

/// Largest batch the writer thread routes itself.
const INLINE_MAX: usize = 4;
/// Most members, over the batch's messages, that the writer thread routes to itself. A group
/// message to more goes through the router thread and the members' connection tasks: direct
/// writes would cost the writer a `sendto` per member per message, and each member's task
/// writes the frames that gathered meanwhile in one.
const INLINE_MEMBERS_MAX: usize = 16;

/// Most members, over the batch's messages, that an idle writer thread routes to itself
/// (see [`inline`]): a few milliseconds of writes at most.
const IDLE_INLINE_MEMBERS_MAX: usize = 2048;

/// Most members of a group whose pushes the routing thread writes to idle sockets itself.
/// Each write costs it a `sendto` (a few µs on loopback); waking the member's task instead
/// costs a wake-up and a poll on top, but spreads a large group's writes over the I/O
/// threads, where they do not hold up the next batch.
const DIRECT_MEMBERS_MAX: usize = 256;

impl Router {
    /// A router delivering through `sessions`, and its thread (which ends once the router,
    /// i.e. the writer, is gone and everything queued is delivered).
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(
        sessions: Arc<Sessions>,
        stats: Arc<RouterStats>,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Committed<ReplyTo>>>(ROUTER_QUEUE);
        let thread = {
            let sessions = sessions.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("feige-router".into())
                .spawn(move || {
                    crate::sched::prefer_latency();
                    for mut batch in rx {
                        stats.add(route(&sessions, &mut batch, false));
                        stats.queued.fetch_sub(1, Ordering::Release);
                    }
                })?
        };
        Ok((
            Router {
                tx,
                sessions,
                stats,
            },
            thread,
        ))
    }
}

impl CommitSink<ReplyTo> for Router {
    fn committed(&mut self, batch: &mut Vec<Committed<ReplyTo>>, idle: bool) {
        // Only the writer thread adds to `queued`, so zero here means every earlier batch
        // has been routed: routing this one now keeps the commit order.
        let router_idle = self.stats.queued.load(Ordering::Acquire) == 0;
        if router_idle && inline(batch.len(), members_in(batch), idle) {
            self.stats.add(route(&self.sessions, batch, true));
            return;
        }
        // The next batch is likely of a similar size; do not reserve the largest one.
        let cap = batch.len();
        let full = std::mem::replace(batch, Vec::with_capacity(cap));
        self.stats.queued.fetch_add(1, Ordering::AcqRel);
        // Blocks only when the router thread is far behind: backpressure onto the writer.
        if self.tx.send(full).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Whether the writer thread routes a batch itself (the router thread being idle): a small
/// one always; a larger one when nothing waits in the writer's queue (`writer_idle`), up to
/// [`IDLE_INLINE_MEMBERS_MAX`] members. An idle writer has no commit to delay, and a hand-over
/// costs the batch a wake-up of the router thread (on a busy machine, a wait for a core): a
/// group sender's window of 16 to 100 members makes the round trip of every message.
fn inline(len: usize, members: usize, writer_idle: bool) -> bool {
    (len <= INLINE_MAX && members <= INLINE_MEMBERS_MAX)
        || (writer_idle && members <= IDLE_INLINE_MEMBERS_MAX)
}

/// The members a batch's messages go to, counted with repeats (a refusal goes to its sender).
fn members_in(batch: &[Committed<ReplyTo>]) -> usize {
    batch
        .iter()
        .map(|c| c.result.as_ref().map_or(1, |d| d.members.as_slice().len()))
        .sum()
}

/// Acks each message to its sender and pushes it to the members' other connections, on the
/// calling thread (the `feige-router` thread calls it for each batch; benchmarks call it
/// directly). `direct`: write each frame to an idle connection's socket right away
/// ([`Peer::deliver_now`]) rather than waking its task; for small batches only. Returns the
/// acks (and refusals) and the message pushes delivered.
pub fn route(sessions: &Sessions, batch: &mut Vec<Committed<ReplyTo>>, direct: bool) -> (u64, u64) {
    let mut acks = 0u64;
    let mut pushes = 0u64;
    let deliver = |peer: &Peer, frame: &[u8]| {
        if direct {
            peer.deliver_now(frame);
        } else {
            peer.deliver(frame);
        }
    };
    // Each frame is encoded here and copied into the outboxes: no allocation per frame.
    let mut scratch = BytesMut::new();
    let encode = |scratch: &mut BytesMut, env: &Envelope| {
        scratch.clear();
        frame::encode(env, scratch);
    };
    // Consecutive pushes of one group go out together (see `Run`).
    let mut run = Run::default();
    for done in batch.drain(..) {
        let ctx = done.ctx;
        let reply = Peer {
            conn_id: ctx.conn_id,
            token_tag: 0,
            outbox: ctx.outbox,
        };
        let d = match done.result {
            Ok(d) => d,
            Err(e) => {
                // With retry_after_ms (MUTED says how long the mute lasts).
                let env = RequestError::from(e).into_envelope(ctx.request_id);
                encode(&mut scratch, &env);
                deliver(&reply, &scratch);
                acks += 1;
                continue;
            }
        };
        // A group's system notice has its own answer; every connection of every member (the
        // acting one too) gets the push, so each one's stream of the group stays gapless.
        let notice = d.message.kind == SYSTEM_KIND;
        if !notice {
            let m = &d.message;
            let ack = Envelope::response(
                ctx.request_id,
                ResponseResult::Send(pb::SendOk {
                    message_id: m.id,
                    conversation_id: m.conversation_id,
                    seq: m.seq,
                    sent_at_ms: m.sent_at_ms,
                    duplicate: d.duplicate,
                }),
            );
            encode(&mut scratch, &ack);
            deliver(&reply, &scratch);
            acks += 1;
            if d.duplicate {
                continue;
            }
        }
        let sender = (!notice).then_some(ctx.conn_id);
        let push = Envelope::push(PushKind::Message(convert::message(d.message)));
        match &d.members {
            Members::Group(members) => {
                if !run.continues(members) {
                    pushes += run.flush(sessions);
                }
                run.add(&push, members, sender);
            }
            Members::Pair(pair) => {
                pushes += run.flush(sessions);
                encode(&mut scratch, &push);
                for member in pair {
                    sessions.for_each(*member, |peer| {
                        if Some(peer.conn_id) != sender {
                            deliver(peer, &scratch);
                            pushes += 1;
                        }
                    });
                }
            }
        }
    }
    pushes += run.flush(sessions);
    (acks, pushes)
}

/// Consecutive pushes of one group conversation with the same members (the writer's cached
/// member list, so a membership change starts a new run), gathered so that each member's
/// connection gets them in one outbox push: one lock, at most one wake-up, and then one write
/// of them all by its task, instead of one of each per message. The order within a
/// conversation is kept, and other conversations' pushes wait for nothing: a run is flushed
/// before anything else of the batch is routed.
#[derive(Default)]
struct Run {
    /// The pushes' frames, back to back.
    frames: BytesMut,
    /// Where each frame ends in `frames`, and the connection that sent its message (which
    /// got the ack and gets no push); `None` for a system notice, which every connection gets.
    ends: Vec<(usize, Option<u64>)>,
    members: Option<Arc<GroupMembers>>,
}

impl Run {
    /// Whether a push to `members` may join this run (or start it, when it is empty).
    fn continues(&self, members: &Arc<GroupMembers>) -> bool {
        self.members
            .as_ref()
            .is_none_or(|m| Arc::ptr_eq(m, members))
    }

    fn add(&mut self, push: &Envelope, members: &Arc<GroupMembers>, sender: Option<u64>) {
        frame::encode(push, &mut self.frames);
        self.ends.push((self.frames.len(), sender));
        if self.members.is_none() {
            self.members = Some(members.clone());
        }
    }

    /// Pushes the run to every connection of every member and empties it; returns the pushes
    /// delivered. In a group of up to [`DIRECT_MEMBERS_MAX`], an idle connection's socket is
    /// written on this thread right away (one `sendto` per member per run, no task woken);
    /// in a larger one the members' tasks write, on all the I/O threads at once.
    fn flush(&mut self, sessions: &Sessions) -> u64 {
        let Some(members) = self.members.take() else {
            return 0;
        };
        let direct = members.ids.len() <= DIRECT_MEMBERS_MAX;
        let count = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
        let mut pushes = 0u64;
        for member in members.ids.iter() {
            sessions.for_each(*member, |peer| {
                let own = |s: &Option<u64>| *s == Some(peer.conn_id);
                if !self.ends.iter().any(|(_, s)| own(s)) {
                    if direct {
                        peer.deliver_many_now(&self.frames, count);
                    } else {
                        peer.deliver_many(&self.frames, count);
                    }
                    pushes += u64::from(count);
                    return;
                }
                // A sender's other pushes of the run, one by one, without its own messages.
                let mut start = 0;
                for (end, s) in &self.ends {
                    if !own(s) {
                        peer.deliver(&self.frames[start..*end]);
                        pushes += 1;
                    }
                    start = *end;
                }
            });
        }
        self.frames.clear();
        self.ends.clear();
        pushes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feige_protocol::pb::envelope::Body;
    use feige_protocol::Push;
    use feige_storage::{Delivered, StoredMessage};

    fn committed(seq: u64, outbox: &Outbox) -> Committed<ReplyTo> {
        Committed {
            ctx: ReplyTo {
                request_id: seq,
                conn_id: 1,
                outbox: outbox.clone(),
            },
            result: Ok(Delivered {
                message: StoredMessage {
                    id: seq,
                    conversation_id: 9,
                    seq,
                    from_user: 1,
                    to_user: 2,
                    client_msg_id: seq,
                    kind: 0,
                    text: format!("m{seq}"),
                    sent_at_ms: 0,
                    mentions: Vec::new(),
                    mention_all: false,
                    recalled_by: 0,
                    file: None,
                    transcript: None,
                },
                duplicate: false,
                members: feige_storage::Members::Pair([1, 2]),
            }),
        }
    }

    /// Reads every frame the outbox holds, waiting until `n` have arrived.
    async fn frames(rx: &crate::session::OutboxReader, n: usize) -> Vec<Envelope> {
        let mut out = Vec::new();
        let mut buf = BytesMut::new();
        while out.len() < n {
            rx.ready().await;
            rx.drain_into(&mut buf, usize::MAX);
            while let Some(env) = frame::decode(&mut buf, usize::MAX).unwrap() {
                out.push(env);
            }
        }
        out
    }

    /// A batch's fan-out counts every member of every message; a refusal counts its sender.
    #[test]
    fn fan_out_decides_where_a_batch_is_routed() {
        let (outbox, _rx) = Outbox::new(1000);
        let mut batch = vec![committed(1, &outbox), committed(2, &outbox)];
        assert_eq!(members_in(&batch), 4, "two 1:1 messages");
        assert!(members_in(&batch) <= INLINE_MEMBERS_MAX);
        let mut group = committed(3, &outbox);
        if let Ok(d) = &mut group.result {
            let ids: Vec<u64> = (1..=20).collect();
            d.members =
                feige_storage::Members::Group(Arc::new(feige_storage::GroupMembers::plain(ids)));
        }
        batch.push(group);
        batch.push(Committed {
            ctx: ReplyTo {
                request_id: 4,
                conn_id: 1,
                outbox: outbox.clone(),
            },
            result: Err(feige_storage::StorageError::Forbidden),
        });
        assert_eq!(members_in(&batch), 4 + 20 + 1);
        assert!(
            !inline(batch.len(), members_in(&batch), false),
            "a group of 20 is not inline while the writer has work"
        );
        assert!(inline(batch.len(), members_in(&batch), true));
        assert!(inline(2, 4, false), "two 1:1 messages always are");
        // A window of 16 messages to a group of 101: inline only when the writer is idle.
        assert!(inline(16, 16 * 101, true));
        assert!(!inline(16, 16 * 101, false));
        assert!(
            !inline(16, 16 * 1001, true),
            "a group of 1,000 goes to the router"
        );
    }

    /// Small batches (and larger ones while the writer is idle) are routed on the calling
    /// (writer) thread, the others on the router thread; mixed, acks and pushes still come
    /// out in commit order.
    #[tokio::test]
    async fn small_and_large_batches_keep_commit_order() {
        let sessions = Arc::new(Sessions::default());
        let (to_b, b_rx) = Outbox::new(100_000);
        sessions.add(
            2,
            Peer {
                conn_id: 2,
                token_tag: 0,
                outbox: to_b,
            },
        );
        let (to_a, a_rx) = Outbox::new(100_000);
        let (mut router, thread) = Router::start(sessions, Arc::default()).unwrap();
        let mut seq = 0;
        for round in 0..200 {
            // 1, 2, 3 or 500 messages per batch.
            let size = if round % 4 == 3 { 500 } else { round % 4 + 1 };
            let mut batch: Vec<_> = (0..size)
                .map(|_| {
                    seq += 1;
                    committed(seq, &to_a)
                })
                .collect();
            // Idle or not: batches routed here and on the router thread interleave.
            router.committed(&mut batch, round % 3 == 0);
            assert!(batch.is_empty());
        }
        let pushed: Vec<u64> = frames(&b_rx, seq as usize)
            .await
            .into_iter()
            .map(|env| match env.body {
                Some(Body::Push(Push {
                    kind: Some(PushKind::Message(m)),
                })) => m.seq,
                other => panic!("not a message push: {other:?}"),
            })
            .collect();
        assert_eq!(pushed, (1..=seq).collect::<Vec<_>>());
        let acked: Vec<u64> = frames(&a_rx, seq as usize)
            .await
            .into_iter()
            .map(|env| env.request_id)
            .collect();
        assert_eq!(acked, (1..=seq).collect::<Vec<_>>());
        drop(router);
        thread.join().unwrap();
    }

    /// A group message of `from` on connection `conn`, to `members`.
    fn group_msg(
        seq: u64,
        (from, conn, outbox): (u64, u64, &Outbox),
        members: &Arc<GroupMembers>,
        kind: i32,
    ) -> Committed<ReplyTo> {
        let mut c = committed(seq, outbox);
        c.ctx.conn_id = conn;
        if let Ok(d) = &mut c.result {
            d.message.conversation_id = 50;
            d.message.from_user = from;
            d.message.to_user = 0;
            d.message.kind = kind;
            d.members = Members::Group(members.clone());
        }
        c
    }

    /// What a connection got: `ack N` or `push CONVERSATION:SEQ`.
    fn got(rx: &crate::session::OutboxReader) -> Vec<String> {
        let mut buf = BytesMut::new();
        rx.drain_into(&mut buf, usize::MAX);
        std::iter::from_fn(|| frame::decode(&mut buf, usize::MAX).unwrap())
            .map(|env| match env.body {
                Some(Body::Push(Push {
                    kind: Some(PushKind::Message(m)),
                })) => format!("push {}:{}", m.conversation_id, m.seq),
                _ => format!("ack {}", env.request_id),
            })
            .collect()
    }

    /// Pushes of one group go out together per member, yet every connection sees each
    /// conversation in order, a sender's connection gets its acks and not its own messages,
    /// and a member who joined mid-batch gets only what followed.
    #[test]
    fn a_group_run_keeps_order_membership_and_senders() {
        let sessions = Sessions::default();
        let mut rx = std::collections::BTreeMap::new();
        let mut out = std::collections::BTreeMap::new();
        for (user, conn) in [(1, 11), (1, 12), (2, 21), (3, 31), (4, 41)] {
            let (tx, r) = Outbox::new(1000);
            sessions.add(
                user,
                Peer {
                    conn_id: conn,
                    token_tag: 0,
                    outbox: tx.clone(),
                },
            );
            rx.insert(conn, r);
            out.insert(conn, tx);
        }
        let before = Arc::new(GroupMembers::plain(vec![1, 2, 3]));
        let after = Arc::new(GroupMembers::plain(vec![1, 2, 3, 4]));
        let mut pair = committed(1, &out[&11]);
        pair.ctx.conn_id = 11;
        let mut batch = vec![
            group_msg(1, (1, 11, &out[&11]), &before, 0),
            group_msg(2, (2, 21, &out[&21]), &before, 0),
            // User 4 joins: a notice to every connection, the new list from here on.
            group_msg(3, (1, 11, &out[&11]), &after, SYSTEM_KIND),
            group_msg(4, (4, 41, &out[&41]), &after, 0),
            pair,
            group_msg(5, (1, 11, &out[&11]), &after, 0),
        ];
        let (acks, pushes) = route(&sessions, &mut batch, false);
        let expect = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Acks come at once; a run is pushed when the member list changes (at the notice)
        // and before another conversation's push.
        assert_eq!(
            got(&rx[&11]),
            expect(&[
                "ack 1",
                "push 50:2",
                "ack 1",
                "push 50:3",
                "push 50:4",
                "ack 5"
            ])
        );
        assert_eq!(
            got(&rx[&12]),
            expect(&[
                "push 50:1",
                "push 50:2",
                "push 50:3",
                "push 50:4",
                "push 9:1",
                "push 50:5"
            ])
        );
        assert_eq!(
            got(&rx[&21]),
            expect(&[
                "ack 2",
                "push 50:1",
                "push 50:3",
                "push 50:4",
                "push 9:1",
                "push 50:5"
            ])
        );
        assert_eq!(
            got(&rx[&31]),
            expect(&[
                "push 50:1",
                "push 50:2",
                "push 50:3",
                "push 50:4",
                "push 50:5"
            ])
        );
        assert_eq!(got(&rx[&41]), expect(&["ack 4", "push 50:3", "push 50:5"]));
        assert_eq!((acks, pushes), (5, 3 + 6 + 5 + 5 + 2));
    }
}
