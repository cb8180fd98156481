//! Frames over a TCP stream, or TLS over one: a [`Connection`] for the handshake, then split
//! into a [`FrameReader`] (with a `BytesMut` read buffer) and a [`FrameWriter`] (batched
//! writes).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use feige_protocol::frame::{self, FrameError};
use feige_protocol::Envelope;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::{ClientConfig, ClientError};

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// The byte stream under the frames.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A framed connection before it is split between the reader and writer tasks.
pub(crate) struct Connection {
    stream: Stream,
    rbuf: BytesMut,
    max_frame_len: usize,
}

impl Connection {
    /// Connects to `config.server` ("host:port"), with TLS when `config.tls`.
    ///
    /// # Errors
    /// [`ClientError::Io`] when the TCP connection fails, [`ClientError::Tls`] when TLS cannot
    /// be set up or its handshake fails.
    pub(crate) async fn connect(config: &ClientConfig) -> Result<Self, ClientError> {
        let tls = if config.tls {
            Some(tls_setup(config).await?)
        } else {
            None
        };
        let tcp = TcpStream::connect(&config.server).await?;
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Tcp(tcp),
            Some((connector, name)) => {
                let shown = format!("{name:?}");
                let tls = connector.connect(name, tcp).await.map_err(|e| {
                    ClientError::Tls(format!(
                        "handshake with {} (as {shown}) failed: {e}",
                        config.server
                    ))
                })?;
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Connection {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            max_frame_len: config.max_frame_len,
        })
    }

    /// Writes one frame.
    pub(crate) async fn write_frame(&mut self, env: &Envelope) -> std::io::Result<()> {
        let bytes = frame::encode_to_bytes(env);
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(&bytes).await,
            Stream::Tls(s) => {
                s.write_all(&bytes).await?;
                s.flush().await
            }
        }
    }

    /// Reads the next frame; `Ok(None)` on a clean close.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Envelope>, ClientError> {
        match &mut self.stream {
            Stream::Tcp(s) => read_frame(s, &mut self.rbuf, self.max_frame_len).await,
            Stream::Tls(s) => read_frame(s, &mut self.rbuf, self.max_frame_len).await,
        }
    }

    /// Splits into reader and writer; bytes already buffered stay with the reader.
    pub(crate) fn into_split(self) -> (FrameReader, FrameWriter) {
        let (r, w): (ReadHalf, WriteHalf) = match self.stream {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        };
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

type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The TLS connector trusting `config.ca_file`, and the name the server must prove.
async fn tls_setup(
    config: &ClientConfig,
) -> Result<(TlsConnector, ServerName<'static>), ClientError> {
    let Some(ca_file) = &config.ca_file else {
        return Err(ClientError::Tls(
            "TLS needs a CA file (ca_file) to verify the server".into(),
        ));
    };
    let pem = tokio::fs::read(ca_file)
        .await
        .map_err(|e| ClientError::Tls(format!("cannot read CA file {}: {e}", ca_file.display())))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|e| ClientError::Tls(format!("bad CA file {}: {e}", ca_file.display())))?;
        roots.add(cert).map_err(|e| {
            ClientError::Tls(format!("bad certificate in {}: {e}", ca_file.display()))
        })?;
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(format!(
            "no PEM certificate in CA file {}",
            ca_file.display()
        )));
    }
    let host = match &config.tls_server_name {
        Some(name) => name.clone(),
        None => host_of(&config.server).to_owned(),
    };
    let name = ServerName::try_from(host.clone())
        .map_err(|_| ClientError::Tls(format!("invalid TLS server name {host:?}")))?;
    // ring, not aws-lc-rs (cmake, nasm); rustls deprecates it for lacking post-quantum key
    // exchange, which a LAN deployment can do without.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((TlsConnector::from(Arc::new(tls)), name))
}

/// The host part of "host:port", "[v6]:port" or a bare host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => addr,
    }
}

/// The reading half of a connection.
pub(crate) struct FrameReader {
    half: ReadHalf,
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
        if let Some(missing) = frame::missing_large(buf, max) {
            buf.reserve(missing);
        } else if buf.capacity() - buf.len() < READ_CHUNK / 4 {
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
    half: WriteHalf,
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
            // TLS keeps written bytes in its own buffer until flushed; TCP's flush is a no-op.
            self.half.flush().await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Closes the writing side (the server sees end of stream).
    pub(crate) async fn shutdown(&mut self) -> std::io::Result<()> {
        self.half.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_an_address() {
        assert_eq!(host_of("localhost:7900"), "localhost");
        assert_eq!(host_of("10.0.0.1:7900"), "10.0.0.1");
        assert_eq!(host_of("[::1]:7900"), "::1");
        assert_eq!(host_of("chat.lan"), "chat.lan");
    }
}
