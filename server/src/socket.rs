//! The socket a connection handler owns: a TCP stream, or for a TLS connection the local end
//! of the Unix socket pair whose other end the TLS terminator (`tls.rs`) relays.
//!
//! Only the non-blocking calls the handler and the outbox use, through a shared reference:
//! the outbox writes to the socket from other threads (see ARCHITECTURE.md "Push").

use std::io;
use std::task::{Context, Poll};

use bytes::BufMut;
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
    pub fn try_read_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
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
