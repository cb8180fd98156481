//! Frames over a TCP stream: a [`Connection`] for the handshake, then split into a
//! [`FrameReader`] (with a `BytesMut` read buffer) and a [`FrameWriter`] (batched writes).

use bytes::{Bytes, BytesMut};
use feige_protocol::frame::{self, FrameError};
use feige_protocol::Envelope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::ClientError;

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// A framed TCP connection before it is split between the reader and writer tasks.
pub(crate) struct Connection {
    stream: TcpStream,
    rbuf: BytesMut,
    max_frame_len: usize,
}

impl Connection {
    /// Connects to `addr` ("host:port").
    pub(crate) async fn connect(addr: &str, max_frame_len: usize) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            max_frame_len,
        })
    }

    /// Writes one frame.
    pub(crate) async fn write_frame(&mut self, env: &Envelope) -> std::io::Result<()> {
        let bytes = frame::encode_to_bytes(env);
        self.stream.write_all(&bytes).await
    }

    /// Reads the next frame; `Ok(None)` on a clean close.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Envelope>, ClientError> {
        read_frame(&mut self.stream, &mut self.rbuf, self.max_frame_len).await
    }

    /// Splits into reader and writer; bytes already buffered stay with the reader.
    pub(crate) fn into_split(self) -> (FrameReader, FrameWriter) {
        let (r, w) = self.stream.into_split();
        (
            FrameReader {
                half: r,
                buf: self.rbuf,
                max_frame_len: self.max_frame_len,
            },
            FrameWriter {
                half: w,
                buf: BytesMut::new(),
            },
        )
    }
}

/// The reading half of a connection.
pub(crate) struct FrameReader {
    half: OwnedReadHalf,
    buf: BytesMut,
    max_frame_len: usize,
}

impl FrameReader {
    /// Reads the next frame; `Ok(None)` on a clean close, an error on a close mid-frame.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Envelope>, ClientError> {
        read_frame(&mut self.half, &mut self.buf, self.max_frame_len).await
    }
}

async fn read_frame<R: AsyncReadExt + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Envelope>, ClientError> {
    loop {
        match frame::decode(buf, max) {
            Ok(Some(env)) => return Ok(Some(env)),
            Ok(None) => {}
            Err(e @ FrameError::TooLarge { .. }) => {
                return Err(ClientError::Protocol(e.to_string()))
            }
            Err(e @ FrameError::Malformed(_)) => {
                // The frame was consumed; the stream is still in step.
                tracing::warn!(error = %e, "skipping a malformed frame");
                continue;
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if src.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed mid-frame",
            )));
        }
    }
}

/// The writing half of a connection: frames are gathered in a buffer and written together.
pub(crate) struct FrameWriter {
    half: OwnedWriteHalf,
    buf: BytesMut,
}

impl FrameWriter {
    /// Queues an encoded frame.
    pub(crate) fn queue(&mut self, frame: &Bytes) {
        self.buf.extend_from_slice(frame);
    }

    /// Queues an envelope.
    pub(crate) fn queue_envelope(&mut self, env: &Envelope) {
        frame::encode(env, &mut self.buf);
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.buf.len()
    }

    /// Writes everything queued with as few syscalls as possible.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.half.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Closes the writing side (the server sees end of stream).
    pub(crate) async fn shutdown(&mut self) -> std::io::Result<()> {
        self.half.shutdown().await
    }
}
