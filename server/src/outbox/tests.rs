//! The outbox's tests: bounds, reservations, wake-ups and direct writes.

use super::*;
use tokio::net::TcpStream;

/// `body` as one frame: its length, then the body.
fn f(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// The frames' bodies, concatenated, from bytes holding whole frames.
fn bodies(mut buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        out.extend_from_slice(&buf[4..4 + len]);
        buf = &buf[4 + len..];
    }
    out
}
#[test]
fn outbox_is_bounded_and_gives_its_storage_back_when_drained() {
    let (tx, rx) = Outbox::new(3);
    assert_eq!(tx.shared.lock().bytes.capacity(), 0);
    for body in [&b"ab"[..], b"cd", b"ef"] {
        tx.push(&f(body)).unwrap();
    }
    assert_eq!(tx.push(&f(b"gh")), Err(PushError::Full));
    // A limit stops the drain after the whole frame that reaches it.
    let mut buf = BytesMut::new();
    rx.drain_into(&mut buf, 7);
    assert_eq!(bodies(&buf), b"abcd");
    assert!(!rx.is_empty());
    assert!(tx.shared.lock().bytes.capacity() > 0);
    // Drained frames no longer count against the bound.
    tx.push(&f(b"gh")).unwrap();
    tx.push(&f(b"ij")).unwrap();
    assert_eq!(tx.push(&f(b"kl")), Err(PushError::Full));
    rx.drain_into(&mut buf, usize::MAX);
    assert_eq!(bodies(&buf), b"abcdefghij");
    assert!(rx.is_empty());
    assert_eq!(tx.shared.lock().bytes.capacity(), 0);
    drop(rx);
    assert_eq!(tx.push(&f(b"mn")), Err(PushError::Closed));
}

/// A connection that keeps up but never drains its queue empty: the bound counts only what
/// is queued, and the buffer keeps only about that much, not everything ever written.
#[test]
fn a_queue_never_drained_empty_stays_bounded() {
    let (tx, rx) = Outbox::new(64);
    let body = [7u8; 1000];
    let mut buf = BytesMut::new();
    tx.push(&f(&body)).unwrap();
    let mut pushed = 1;
    let mut drained = 0;
    for _ in 0..1000 {
        for _ in 0..8 {
            tx.push(&f(&body)).unwrap();
            pushed += 1;
        }
        buf.clear();
        // Eight frames' worth: one stays behind every time.
        rx.drain_into(&mut buf, 8 * 1004 - 1);
        drained += buf.len() / 1004;
        assert!(!rx.is_empty());
        assert!(tx.shared.lock().bytes.len() <= 2 * COMPACT_AT + 64 * 1004);
    }
    assert_eq!(tx.shared.lock().frames as usize, pushed - drained);
    rx.drain_into(&mut buf, usize::MAX);
    assert!(rx.is_empty());
}

/// The byte bound counts what is queued and what the task drained but has not written.
#[test]
fn output_is_bounded_in_bytes_including_what_the_task_holds() {
    let (tx, rx) = Outbox::bounded(1000, 100);
    let frame = f(&[1; 20]);
    for _ in 0..4 {
        tx.push(&frame).unwrap();
    }
    assert_eq!(tx.output_bytes(), 96);
    assert_eq!(tx.push(&frame), Err(PushError::Full));
    let mut buf = BytesMut::new();
    rx.drain_into(&mut buf, 48);
    assert_eq!(buf.len(), 48);
    assert_eq!(
        tx.output_bytes(),
        96,
        "drained bytes are held until written"
    );
    assert_eq!(tx.push(&frame), Err(PushError::Full));
    assert!(!rx.release());
    assert_eq!(tx.output_bytes(), 48);
    tx.push(&frame).unwrap();
    tx.push(&frame).unwrap();
    assert_eq!(tx.push(&frame), Err(PushError::Full));
    buf.clear();
    rx.drain_into(&mut buf, usize::MAX);
    assert!(rx.release());
    assert_eq!(tx.output_bytes(), 0);
}

/// Reservations count towards the low-water mark (half the bound), not against pushes;
/// a reply is queued even past the bound, and its reservation is returned.
#[test]
fn replies_reserve_room_and_are_never_refused() {
    let (tx, rx) = Outbox::bounded(1000, 100);
    assert!(!rx.backlogged());
    let reply = tx.reserve(40);
    assert!(!rx.backlogged());
    let other = tx.reserve(10);
    assert!(rx.backlogged(), "40 + 10 reserved reach half of 100");
    for _ in 0..3 {
        tx.push(&f(&[1; 20])).unwrap();
    }
    reply.deliver(&f(&[2; 50]));
    assert_eq!(tx.output_bytes(), 72 + 54, "a reply goes past the bound");
    assert_eq!(tx.push(&f(&[1; 20])), Err(PushError::Full));
    assert!(rx.backlogged());
    let mut buf = BytesMut::new();
    rx.drain_into(&mut buf, usize::MAX);
    assert!(rx.release());
    // Only the undelivered reservation is left: 10 of the 50 bytes of the mark.
    assert!(!rx.backlogged());
    drop(other);
    assert_eq!(tx.shared.lock().reserved, 0);
}

/// A reservation dropped without a reply (its task died) wakes the waiting connection
/// task, which may be paused on it.
#[tokio::test]
async fn an_unused_reservation_wakes_the_task() {
    let (tx, rx) = Outbox::bounded(1000, 100);
    let r = tx.reserve(80);
    assert!(rx.backlogged());
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(r);
    });
    rx.ready().await;
    t.join().unwrap();
    assert!(!rx.backlogged());
    assert!(rx.is_empty());
}

#[tokio::test]
async fn outbox_ready_wakes_on_a_push_from_another_thread() {
    let (tx, rx) = Outbox::new(16);
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        tx.push(&f(b"x")).unwrap();
        tx
    });
    rx.ready().await;
    let tx = pusher.join().unwrap();
    let mut buf = BytesMut::new();
    rx.drain_into(&mut buf, usize::MAX);
    assert_eq!(&buf[..], f(b"x"));
    // Drained empty, it is not ready again until the next push.
    tokio::select! {
        biased;
        () = rx.ready() => panic!("an empty outbox looked ready"),
        () = std::future::ready(()) => {}
    }
    tx.push(&f(b"y")).unwrap();
    rx.ready().await;
}

/// A connected pair of loopback sockets: (the server's end, the peer's end).
async fn socket_pair() -> (Arc<Socket>, TcpStream) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (server, _) = l.accept().await.unwrap();
    // Direct writes need the reactor to have seen the socket writable once.
    server.writable().await.unwrap();
    (Arc::new(Socket::Tcp(server)), peer)
}

#[tokio::test]
async fn push_now_writes_to_an_idle_socket_but_never_past_held_bytes() {
    use tokio::io::AsyncReadExt;
    let (server, mut peer) = socket_pair().await;
    let (tx, rx) = Outbox::new(16);
    rx.attach(server.clone());
    tx.push_now(&f(b"a")).unwrap();
    assert!(rx.is_empty(), "an idle connection's frame was queued");
    // The task holds unwritten bytes: the frame must wait behind them.
    rx.hold();
    tx.push_now(&f(b"b")).unwrap();
    assert!(!rx.is_empty());
    let mut buf = BytesMut::new();
    rx.drain_into(&mut buf, usize::MAX);
    tx.push_now(&f(b"c")).unwrap();
    assert!(!rx.is_empty(), "a frame overtook drained bytes");
    write_all_for_test(&server, &buf).await;
    buf.clear();
    // Not released while something is queued.
    assert!(!rx.release());
    rx.drain_into(&mut buf, usize::MAX);
    write_all_for_test(&server, &buf).await;
    assert!(rx.release());
    tx.push_now(&f(b"d")).unwrap();
    assert!(rx.is_empty());
    // Behind held bytes a direct push queues, and the queue's bound still holds.
    let (small, small_rx) = Outbox::new(1);
    small_rx.attach(server.clone());
    small_rx.hold();
    small.push_now(&f(b"e")).unwrap();
    assert_eq!(small.push_now(&f(b"f")), Err(PushError::Full));
    let mut got = [0u8; 20];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(bodies(&got), b"abcd");
}

/// A peer that stops reading fills its socket: what does not fit is queued, partial frame
/// first, and the bytes arrive whole and in order once the task writes the queue.
#[tokio::test]
async fn push_now_queues_what_a_full_socket_does_not_take() {
    let (server, peer) = socket_pair().await;
    let (tx, rx) = Outbox::new(1 << 20);
    rx.attach(server.clone());
    let frame = |i: u32| f(&[(i % 251) as u8; 9_996]);
    let mut sent = 0;
    while rx.is_empty() {
        tx.push_now(&frame(sent)).unwrap();
        sent += 1;
        assert!(sent < 100_000, "the socket never filled");
    }
    for i in sent..sent + 10 {
        tx.push_now(&frame(i)).unwrap();
    }
    sent += 10;
    write_queue_and_check(&server, &rx, peer, sent, 10_000).await;
}

/// Has the task's part written (the queue, drained until empty) while `peer` reads: `sent`
/// frames of `len` bytes, frame `i` filled with `i % 251`, must arrive whole and in order.
async fn write_queue_and_check(
    server: &Socket,
    rx: &OutboxReader,
    mut peer: TcpStream,
    sent: u32,
    len: usize,
) {
    use tokio::io::AsyncReadExt;
    let reader = tokio::spawn(async move {
        let mut all = vec![0u8; sent as usize * len];
        peer.read_exact(&mut all).await.unwrap();
        all
    });
    loop {
        let mut buf = BytesMut::new();
        rx.drain_into(&mut buf, usize::MAX);
        write_all_for_test(server, &buf).await;
        if rx.release() {
            break;
        }
    }
    let all = reader.await.unwrap();
    for (i, chunk) in all.chunks(len).enumerate() {
        assert_eq!(
            chunk[..4],
            (len as u32 - 4).to_be_bytes(),
            "frame {i}'s header"
        );
        assert!(
            chunk[4..].iter().all(|&b| b == (i % 251) as u8),
            "frame {i} garbled"
        );
    }
}

async fn write_all_for_test(s: &Socket, mut buf: &[u8]) {
    while !buf.is_empty() {
        std::future::poll_fn(|cx| s.poll_write_ready(cx))
            .await
            .unwrap();
        if let Ok(n) = s.try_write(buf) {
            buf = &buf[n..];
        }
    }
}

/// Every connection holds one outbox allocation: its contents, with the `Arc`'s two counts,
/// stay within 136 bytes (glibc's 144-byte chunk; 8 bytes more take the 160-byte one).
#[test]
fn an_outbox_fits_its_malloc_size_class() {
    assert!(std::mem::size_of::<OutboxShared>() + 16 <= 136);
}

#[test]
fn a_huge_frame_bound_is_clamped_not_wrapped() {
    let (tx, _rx) = Outbox::bounded(usize::MAX, usize::MAX);
    assert_eq!(tx.shared.capacity, u32::MAX);
    assert_eq!(tx.shared.max_bytes as usize, MAX_OUTBOX_BYTES);
    assert_eq!(tx.push(&f(b"x")), Ok(()));
}

/// Several frames go in at once, all or none against the bound, and drain as frames.
#[test]
fn push_many_queues_whole_frames_all_or_none() {
    let (tx, rx) = Outbox::bounded(4, 1_000);
    let two = [f(b"ab"), f(b"c")].concat();
    tx.push_many(&two, 2).unwrap();
    // Three more would make five frames: refused whole, nothing of them queued.
    let three = [f(b"d"), f(b"e"), f(b"f")].concat();
    assert_eq!(tx.push_many(&three, 3), Err(PushError::Full));
    tx.push_many(&three[..10], 2).unwrap();
    // And the byte bound counts all of them.
    let (small, _small_rx) = Outbox::bounded(100, 10);
    assert_eq!(small.push_many(&two, 2), Err(PushError::Full));
    small.push_many(&f(b"abcdef"), 1).unwrap();
    let mut buf = BytesMut::new();
    rx.drain_into(&mut buf, 6);
    assert_eq!(bodies(&buf), b"ab", "drained frame by frame");
    rx.drain_into(&mut buf, usize::MAX);
    assert_eq!(bodies(&buf), b"abcde");
    assert!(rx.is_empty());
}

#[test]
fn a_cut_in_frames_counts_the_whole_ones_and_what_is_left() {
    let frames = [f(b"abc"), f(b"de"), f(b"")].concat();
    // 7 + 6 + 4 bytes.
    assert_eq!(cut(&frames, 0), (0, 0));
    assert_eq!(cut(&frames, 3), (0, 4));
    assert_eq!(cut(&frames, 7), (1, 0));
    assert_eq!(cut(&frames, 8), (1, 5));
    assert_eq!(cut(&frames, 13), (2, 0));
    assert_eq!(cut(&frames, 15), (2, 2));
}

/// Direct writes of several frames: an idle socket takes them all; once it is full, the
/// rest is queued from the cut frame on, and everything arrives whole and in order.
#[tokio::test]
async fn push_many_now_writes_what_the_socket_takes_and_queues_the_rest() {
    let (server, peer) = socket_pair().await;
    let (tx, rx) = Outbox::new(1 << 20);
    rx.attach(server.clone());
    let frame = |i: u32| f(&[(i % 251) as u8; 2_496]);
    let three = |i: u32| [frame(i), frame(i + 1), frame(i + 2)].concat();
    tx.push_many_now(&three(0), 3).unwrap();
    assert!(rx.is_empty(), "an idle connection's frames were queued");
    let mut sent = 3;
    while rx.is_empty() {
        tx.push_many_now(&three(sent), 3).unwrap();
        sent += 3;
        assert!(sent < 1_000_000, "the socket never filled");
    }
    tx.push_many_now(&three(sent), 3).unwrap();
    sent += 3;
    write_queue_and_check(&server, &rx, peer, sent, 2_500).await;
}
