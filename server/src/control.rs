//! A connection's kick switch: anyone may tell its task to close, and why.

use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use feige_protocol::ErrorCode;

/// Lets anyone tell a connection task to close, and why.
///
/// Only the connection task waits on it, so it keeps that task's waker in one slot rather than
/// a waiter node in the task's state (this and [`crate::outbox::OutboxReader::ready`] are part of every idle
/// connection's wait).
#[derive(Debug, Default)]
pub struct Control {
    pub(crate) reason: AtomicI32,
    /// The connection task, while it waits.
    waker: Mutex<Option<Waker>>,
}

/// Locks `m`; a panic while it was held leaves plain data behind, so keep using it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps `cx`'s waker in `slot` (one waiting task per slot).
pub(crate) fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl Control {
    /// Asks the connection to send a Kicked push with `code` and close. The first reason wins.
    pub fn kick(&self, code: ErrorCode) {
        if self
            .reason
            .compare_exchange(0, code as i32, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if let Some(w) = lock(&self.waker).take() {
                w.wake();
            }
        }
    }

    /// Waits until [`Control::kick`] was called; returns the reason. For the connection task
    /// only: a second waiting task would take the first one's wake-up.
    pub fn kicked(&self) -> impl Future<Output = ErrorCode> + '_ {
        std::future::poll_fn(move |cx| {
            // The reason is read under the lock that `kick` takes after setting it, so a kick
            // either is seen here or finds this task's waker.
            let mut waker = lock(&self.waker);
            let code = self.reason.load(Ordering::Acquire);
            if code != 0 {
                return Poll::Ready(ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified));
            }
            register(&mut waker, cx);
            Poll::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_kick_from_another_thread_wakes_the_waiting_task() {
        let c = Arc::new(Control::default());
        let kicker = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            kicker.kick(ErrorCode::InvalidToken);
        });
        assert_eq!(c.kicked().await, ErrorCode::InvalidToken);
        t.join().unwrap();
    }

    #[tokio::test]
    async fn kick_reason_first_wins() {
        let c = Control::default();
        c.kick(ErrorCode::SlowConsumer);
        c.kick(ErrorCode::ShuttingDown);
        assert_eq!(c.kicked().await, ErrorCode::SlowConsumer);
    }
}
