//! TLS termination in front of the connection handler.
//!
//! The handler and the outbox write to their socket with non-blocking calls from several
//! threads, which a TLS session cannot take. So a TLS connection's task does the handshake,
//! makes a Unix socket pair, relays bytes between the TLS stream and one end, and runs the
//! ordinary handler on the other end (see ARCHITECTURE.md "Accept").

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::ConfigError;
use crate::socket::Socket;
use crate::{handler, Shared};

/// How long the relay may still pass bytes to the client once its handler has ended.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// Builds the acceptor from a PEM certificate chain and a PEM private key.
///
/// # Errors
/// A file cannot be read, holds no certificate or key, or the key does not fit the certificate.
pub(crate) async fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ConfigError> {
    let invalid = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        ConfigError::Invalid(format!("{what}: {}: {e}", path.display()))
    };
    let cert_pem = tokio::fs::read(cert)
        .await
        .map_err(|e| invalid("tls_cert", cert, &e))?;
    let key_pem = tokio::fs::read(key)
        .await
        .map_err(|e| invalid("tls_key", key, &e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls_cert", cert, &e))?;
    if chain.is_empty() {
        return Err(invalid("tls_cert", cert, &"no PEM certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        invalid(
            "tls_key",
            key,
            &format!("no usable PEM private key in the file ({e})"),
        )
    })?;
    // ring, not aws-lc-rs (cmake, nasm); rustls deprecates it for lacking post-quantum key
    // exchange, which a LAN server can do without.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| invalid("tls_key", key, &format!("does not fit tls_cert ({e})")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves one TLS connection: the handshake (within the login timeout), then the handler on
/// one end of a Unix socket pair while this task relays the other end to the TLS stream.
pub(crate) async fn serve<G: Send + 'static>(
    shared: Arc<Shared>,
    tcp: TcpStream,
    conn_id: u64,
    peer_addr: SocketAddr,
    guards: G,
) {
    let Some(acceptor) = shared.tls.clone() else {
        return;
    };
    let deadline = Duration::from_millis(shared.config.login_timeout_ms);
    let mut tls = match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            return;
        }
    };
    let (mut relay_end, handler_end) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a socket pair for a TLS connection");
            return;
        }
    };
    let relay = async move {
        // The handler's close (or write shutdown) becomes a TLS close_notify, the client's
        // close an end of stream for the handler. Bounded: 8 KiB per direction.
        if let Err(e) = tokio::io::copy_bidirectional(&mut tls, &mut relay_end).await {
            tracing::debug!(error = %e, "TLS relay ended");
        }
    };
    let handler = handler::serve(
        shared,
        Socket::Unix(Box::new(handler_end)),
        conn_id,
        peer_addr,
        guards,
    );
    tokio::pin!(relay, handler);
    tokio::select! {
        // The client is gone: the handler reads end of stream and finishes.
        _ = &mut relay => handler.await,
        // The handler is done: pass on what it wrote last, but do not wait on a client that
        // keeps the connection open.
        _ = &mut handler => {
            let _ = tokio::time::timeout(FLUSH_GRACE, relay).await;
        }
    }
}
