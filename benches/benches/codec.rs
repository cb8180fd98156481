//! The frame codec on the hot path: encoding a SendMessage and a Push, and taking frames out of
//! a read buffer (`check` then protobuf decode), per frame.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use feige_protocol::{frame, pb, Envelope, PushKind, RequestKind};

fn send(i: u64) -> Envelope {
    Envelope::request(
        i,
        RequestKind::SendMessage(pb::SendMessage {
            to_user: 4242,
            client_msg_id: 1_000_000 + i,
            text: "x".repeat(100),
            ..Default::default()
        }),
    )
}

fn push(i: u64) -> Envelope {
    Envelope::push(PushKind::Message(pb::Message {
        message_id: (1 << 40) + i,
        conversation_id: 77,
        seq: i,
        from_user: 4242,
        client_msg_id: 1_000_000 + i,
        kind: 0,
        text: "x".repeat(100),
        sent_at_ms: 1_764_000_000_000,
        to_user: 4343,
        recalled_by: 0,
    }))
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(1));
    let env = send(7);
    let mut out = BytesMut::with_capacity(1 << 16);
    g.bench_function("encode SendMessage", |b| {
        b.iter(|| {
            out.clear();
            frame::encode(&env, &mut out);
        })
    });
    let p = push(7);
    g.bench_function("encode_to_bytes Push", |b| {
        b.iter(|| frame::encode_to_bytes(&p))
    });
    // 256 frames in one buffer, as one read brings them in.
    let mut many = BytesMut::new();
    for i in 0..256 {
        frame::encode(&send(i), &mut many);
    }
    g.throughput(Throughput::Elements(256));
    g.bench_function("decode 256 SendMessage frames", |b| {
        b.iter_batched(
            || many.clone(),
            |mut buf| {
                let mut n = 0;
                while let Ok(Some(_)) = frame::decode(&mut buf, 1 << 20) {
                    n += 1;
                }
                assert_eq!(n, 256);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
