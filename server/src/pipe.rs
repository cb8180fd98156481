//! An in-process byte stream between a connection handler and a relay in the same process
//! (the WebSocket gateway): two bounded byte queues, one per direction, with the readiness
//! calls of a socket, so the handler serves it exactly as it serves a TCP stream, without a
//! socket pair's file descriptors and system calls.
//!
//! Each direction holds at most its capacity in bytes: a writer that finds it full gets
//! `WouldBlock` and waits for room, as with a full socket buffer. An emptied queue gives its
//! buffer back, so an idle pipe holds no buffer. One task waits for each readiness of each
//! end (the handler's task, or one relay task), as with a tokio socket's registration: a
//! second waiter replaces the first.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use futures_util::task::AtomicWaker;

/// One direction: bytes written and not read yet.
#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    /// The reading end's task, waiting for bytes or the end of the stream.
    readable: AtomicWaker,
    /// The writing end's task, waiting for room.
    writable: AtomicWaker,
    cap: usize,
}

#[derive(Debug, Default)]
struct State {
    bytes: BytesMut,
    /// The writer shut down or dropped its end: the reader reads the end of the stream once
    /// the bytes are gone.
    write_closed: bool,
    /// The reader dropped its end: writes fail.
    read_closed: bool,
}

/// An emptied queue keeps a buffer up to this size; a larger one is given back.
const KEEP: usize = 4 * 1024;

impl Queue {
    fn new(cap: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::default(),
            readable: AtomicWaker::new(),
            writable: AtomicWaker::new(),
            cap: cap.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One end of a pipe: reads what the other end writes, and the other way round.
#[derive(Debug)]
pub struct PipeEnd {
    rx: Arc<Queue>,
    tx: Arc<Queue>,
}

/// Two connected ends; each direction holds at most `cap` bytes.
pub fn pair(cap: usize) -> (PipeEnd, PipeEnd) {
    let (a, b) = (Queue::new(cap), Queue::new(cap));
    (
        PipeEnd {
            rx: a.clone(),
            tx: b.clone(),
        },
        PipeEnd { rx: b, tx: a },
    )
}

impl PipeEnd {
    /// Ready when there are bytes to read, or the other end will write no more.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.readable_now() {
            return Poll::Ready(Ok(()));
        }
        self.rx.readable.register(cx.waker());
        // Bytes written between the check and the registration woke nobody: look again.
        if self.readable_now() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    fn readable_now(&self) -> bool {
        let s = self.rx.lock();
        !s.bytes.is_empty() || s.write_closed
    }

    /// Ready when a write would take at least one byte, or fail (the reader is gone).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.writable_now() {
            return Poll::Ready(Ok(()));
        }
        self.tx.writable.register(cx.waker());
        if self.writable_now() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    fn writable_now(&self) -> bool {
        let s = self.tx.lock();
        s.bytes.len() < self.tx.cap || s.read_closed || s.write_closed
    }

    /// Moves what is there into `buf`, as much as its spare capacity takes; 0 at the end of
    /// the stream; `WouldBlock` when there is nothing yet. Also says whether that emptied the
    /// queue.
    pub fn try_read_drained(&self, buf: &mut BytesMut) -> io::Result<(usize, bool)> {
        let mut s = self.rx.lock();
        if s.bytes.is_empty() {
            return if s.write_closed {
                Ok((0, true))
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let room = buf.chunk_mut().len();
        let n = s.bytes.len().min(room);
        buf.put_slice(s.bytes.get(..n).unwrap_or_default());
        s.bytes.advance(n);
        let drained = s.bytes.is_empty();
        if drained && s.bytes.capacity() > KEEP {
            s.bytes = BytesMut::new();
        }
        drop(s);
        self.rx.writable.wake();
        Ok((n, drained))
    }

    /// As [`Self::try_read_drained`], without the flag.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        self.try_read_drained(buf).map(|(n, _)| n)
    }

    /// Queues as much of `data` as there is room for; `WouldBlock` when there is none,
    /// `BrokenPipe` when the reader is gone or this end was shut down.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let mut s = self.tx.lock();
        if s.read_closed || s.write_closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = self.tx.cap.saturating_sub(s.bytes.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(room);
        s.bytes.extend_from_slice(data.get(..n).unwrap_or_default());
        drop(s);
        if n > 0 {
            self.tx.readable.wake();
        }
        Ok(n)
    }

    /// The other end reads the end of the stream once it has read what was written.
    pub fn shutdown_write(&self) {
        self.tx.lock().write_closed = true;
        self.tx.readable.wake();
    }

    /// Waits for bytes and moves them into `buf`; 0 at the end of the stream.
    ///
    /// # Errors
    /// None today; the signature is a socket's.
    pub async fn read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        std::future::poll_fn(|cx| loop {
            std::task::ready!(self.poll_read_ready(cx))?;
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(8 * 1024);
            }
            match self.try_read_buf(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        })
        .await
    }

    /// Writes all of `data`, waiting for room.
    ///
    /// # Errors
    /// `BrokenPipe`: the other end is gone.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            while !data.is_empty() {
                std::task::ready!(self.poll_write_ready(cx))?;
                match self.try_write(data) {
                    Ok(n) => data = data.get(n..).unwrap_or_default(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.shutdown_write();
        let mut s = self.rx.lock();
        s.read_closed = true;
        s.bytes = BytesMut::new();
        drop(s);
        self.rx.writable.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_pass_both_ways_and_a_full_queue_waits_for_the_reader() {
        let (a, b) = pair(8);
        assert_eq!(
            a.try_write(b"0123456789").unwrap(),
            8,
            "only the room is taken"
        );
        assert_eq!(
            a.try_write(b"x").unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let writer = tokio::spawn(async move {
            a.write_all(b"89abc").await.unwrap();
            a
        });
        let mut got = BytesMut::new();
        while got.len() < 13 {
            b.read_buf(&mut got).await.unwrap();
        }
        assert_eq!(&got[..], b"0123456789abc");
        let a = writer.await.unwrap();
        b.try_write(b"back").unwrap();
        let mut back = BytesMut::new();
        assert_eq!(a.read_buf(&mut back).await.unwrap(), 4);
        assert_eq!(&back[..], b"back");
    }

    #[tokio::test]
    async fn shutdown_and_drop_end_the_stream() {
        let (a, b) = pair(64);
        a.try_write(b"last").unwrap();
        a.shutdown_write();
        assert_eq!(
            a.try_write(b"more").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let mut buf = BytesMut::with_capacity(64);
        assert_eq!(b.try_read_drained(&mut buf).unwrap(), (4, true));
        assert_eq!(b.read_buf(&mut buf).await.unwrap(), 0, "end of stream");
        drop(a);
        assert_eq!(
            b.try_write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe,
            "the reader is gone"
        );
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_write() {
        let (a, b) = pair(64);
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::new();
            b.read_buf(&mut buf).await.unwrap();
            buf
        });
        tokio::task::yield_now().await;
        a.write_all(b"hello").await.unwrap();
        assert_eq!(&reader.await.unwrap()[..], b"hello");
    }

    #[test]
    fn an_emptied_queue_gives_its_large_buffer_back() {
        let (a, b) = pair(1 << 20);
        a.try_write(&[1; 100_000]).unwrap();
        let mut buf = BytesMut::with_capacity(200_000);
        assert_eq!(b.try_read_drained(&mut buf).unwrap(), (100_000, true));
        assert_eq!(a.tx.lock().bytes.capacity(), 0);
    }
}
