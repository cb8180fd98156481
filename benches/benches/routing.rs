//! The routing path after a commit: for each committed message, encode the ack and the push,
//! look the members up in the session map and queue the frames in the connections' outboxes
//! (`router::route`, which the `feige-router` thread runs per batch). Measured per message on
//! the calling thread; building the batch and emptying the outboxes are not measured.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use feige_server::router::{route, ReplyTo};
use feige_server::session::{Outbox, Peer, Sessions};
use feige_storage::{Committed, Delivered, Members, StoredMessage};

const USERS: u64 = 1000;
const BATCH: usize = 512;

fn routing(c: &mut Criterion) {
    let sessions = Sessions::default();
    let mut inboxes = Vec::new();
    let mut outboxes = Vec::new();
    for u in 0..USERS {
        let (tx, rx) = Outbox::new(4096);
        sessions.add(
            u,
            Peer {
                conn_id: u,
                token_tag: 0,
                outbox: tx.clone(),
            },
        );
        inboxes.push(rx);
        outboxes.push(tx);
    }
    let mut g = c.benchmark_group("route");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut seq = 0u64;
    g.bench_function("ack + push, 512-message batch, 1000 users online", |b| {
        b.iter_batched(
            || {
                let mut drained = BytesMut::new();
                for rx in inboxes.iter() {
                    rx.drain_into(&mut drained, usize::MAX);
                    drained.clear();
                }
                let mut batch = Vec::with_capacity(BATCH);
                for i in 0..BATCH as u64 {
                    seq += 1;
                    let from = (seq * 7919) % USERS;
                    let to = (from + 1 + i % (USERS - 1)) % USERS;
                    let outbox = outboxes[from as usize].clone();
                    batch.push(Committed {
                        ctx: ReplyTo {
                            request_id: seq,
                            conn_id: from,
                            outbox,
                        },
                        result: Ok(Delivered {
                            message: StoredMessage {
                                id: seq,
                                conversation_id: from.min(to) * USERS + from.max(to),
                                seq,
                                from_user: from,
                                to_user: to,
                                client_msg_id: seq,
                                kind: 0,
                                text: "x".repeat(100),
                                sent_at_ms: 1_764_000_000_000,
                                mentions: Vec::new(),
                                mention_all: false,
                                recalled_by: 0,
                                file: None,
                                transcript: None,
                            },
                            duplicate: false,
                            members: Members::Pair([from.min(to), from.max(to)]),
                        }),
                    });
                }
                batch
            },
            |mut batch| route(&sessions, &mut batch, false),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
