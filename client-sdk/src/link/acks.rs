//! The ack loop: reports the positions delivered pushes moved, debounced.

use std::sync::Arc;
use std::time::Duration;

use super::Inner;

/// Delay between a delivered push and the Ack that reports it.
const ACK_DEBOUNCE: Duration = Duration::from_millis(200);

/// Sends the positions delivered pushes moved, at most once per [`ACK_DEBOUNCE`].
pub(crate) async fn ack_loop(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            () = inner.ack_notify.notified() => {}
            () = inner.cancel.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(ACK_DEBOUNCE) => {}
            () = inner.cancel.cancelled() => return,
        }
        if inner.config.auto_sync && inner.logged_in() && inner.is_up() {
            if let Err(e) = inner.flush_acks().await {
                tracing::debug!(error = %e, "ack failed");
            }
        }
    }
}
