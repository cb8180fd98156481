//! The socket a connection handler owns: a TCP stream, or for a TLS connection the local end
//! of the Unix socket pair whose other end the TLS terminator (`tls.rs`) relays.
//!
//! Only the non-blocking calls the handler and the outbox use, through a shared reference:
//! the outbox writes to the socket from other threads (see ARCHITECTURE.md "Push").

use std::io;
use std::task::{Context, Poll};

use bytes::{BufMut, BytesMut};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// A connection's byte stream.
#[derive(Debug)]
pub enum Socket {
    /// A plain TCP connection.
    Tcp(TcpStream),
    /// The handler's end of a TLS connection's relay. Boxed, so the enum fits in a niche of
    /// `TcpStream` and is no larger (it is part of every connection's outbox).
    Unix(Box<UnixStream>),
}

impl Socket {
    /// Waits (through the socket's registration) until the socket may be readable.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::Tcp(s) => s.poll_read_ready(cx),
            Socket::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Waits (through the socket's registration) until the socket may be writable.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::Tcp(s) => s.poll_write_ready(cx),
            Socket::Unix(s) => s.poll_write_ready(cx),
        }
    }

    /// Reads what is there into `buf` without waiting; `WouldBlock` clears the readiness.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
        }
    }

    /// Reads what is there into `buf` without waiting, and says whether the socket is drained.
    /// A read that fills less than the buffer's room took everything the kernel held (the
    /// sockets are edge-triggered), so it clears the readiness as a read that would block
    /// does, and as tokio's own `poll_read` does: the burst ends without a read that finds
    /// nothing. The readiness cleared is the one seen before the read; bytes that arrive
    /// after it set it again.
    pub fn try_read_drained(&self, buf: &mut BytesMut) -> io::Result<(usize, bool)> {
        let room = buf.chunk_mut().len();
        let mut got = 0;
        // Run inside `try_io`, whose readiness is cleared when this returns `WouldBlock`.
        let mut read = || {
            got = self.try_read_buf(buf)?;
            if got > 0 && got < room {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            } else {
                Ok(())
            }
        };
        let result = match self {
            Socket::Tcp(s) => s.try_io(Interest::READABLE, &mut read),
            Socket::Unix(s) => s.try_io(Interest::READABLE, &mut read),
        };
        match result {
            Ok(()) => Ok((got, false)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok((got, true)),
            Err(e) => Err(e),
        }
    }

    /// Writes what the socket takes without waiting; `WouldBlock` clears the readiness.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(buf),
            Socket::Unix(s) => s.try_write(buf),
        }
    }

    /// Shuts down the writing side (the peer reads end of stream) through a shared reference.
    ///
    /// # Errors
    /// The socket is no longer connected.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
            Socket::Unix(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each outbox holds an `Arc<Socket>`: a plain idle connection costs what it did with
    /// an `Arc<TcpStream>`.
    #[test]
    fn a_socket_costs_no_more_than_a_tcp_stream() {
        assert_eq!(
            std::mem::size_of::<Socket>(),
            std::mem::size_of::<TcpStream>()
        );
    }

    /// Whether the socket's read readiness is set now.
    async fn read_ready_now(s: &Socket) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(s.poll_read_ready(cx).is_ready())).await
    }

    #[tokio::test]
    async fn a_short_read_clears_the_readiness_and_new_bytes_set_it_again() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let s = Socket::Unix(Box::new(a));
        tokio::io::AsyncWriteExt::write_all(&mut b, b"0123456789")
            .await
            .unwrap();
        std::future::poll_fn(|cx| s.poll_read_ready(cx))
            .await
            .unwrap();
        // Exactly the buffer's room: not known to be drained, readiness kept.
        let mut buf = BytesMut::with_capacity(4);
        let room = buf.chunk_mut().len();
        let (n, drained) = s.try_read_drained(&mut buf).unwrap();
        assert_eq!((n, drained), (room, false));
        assert!(read_ready_now(&s).await);
        // Less than the room: drained, and the readiness is cleared without a read that
        // finds nothing.
        let mut buf = BytesMut::with_capacity(64);
        let (n, drained) = s.try_read_drained(&mut buf).unwrap();
        assert_eq!((n, drained), (10 - room, true));
        assert!(!read_ready_now(&s).await);
        tokio::io::AsyncWriteExt::write_all(&mut b, b"more")
            .await
            .unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            std::future::poll_fn(|cx| s.poll_read_ready(cx)),
        )
        .await
        .expect("new bytes make the socket readable again")
        .unwrap();
        buf.clear();
        assert_eq!(s.try_read_drained(&mut buf).unwrap(), (4, true));
        assert_eq!(&buf[..], b"more");
    }

    #[tokio::test]
    async fn both_kinds_read_write_and_shut_down() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let s = Socket::Unix(Box::new(a));
        std::future::poll_fn(|cx| s.poll_write_ready(cx))
            .await
            .unwrap();
        assert_eq!(s.try_write(b"ping").unwrap(), 4);
        s.shutdown_write().unwrap();
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
            .await
            .unwrap();
        assert_eq!(got, b"ping");
        tokio::io::AsyncWriteExt::write_all(&mut b, b"pong")
            .await
            .unwrap();
        let mut buf = bytes::BytesMut::with_capacity(16);
        loop {
            std::future::poll_fn(|cx| s.poll_read_ready(cx))
                .await
                .unwrap();
            match s.try_read_buf(&mut buf) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(&buf[..], b"pong");
    }
}
