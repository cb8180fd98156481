//! The dispatcher: issues the accepted requests in id order on the connected client, holding
//! them while there is none.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use feige_client::{Client, ClientError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::shared::{lock, Queued, Shared};
use crate::methods::Call;

/// Shortest pause between two scans for expired requests while there is no connection.
const EXPIRY_SCAN: Duration = Duration::from_millis(10);

/// Issues the accepted requests in id order until shutdown.
pub(super) async fn run_dispatcher(
    shared: Arc<Shared>,
    from_calls: mpsc::UnboundedReceiver<Queued>,
) {
    tokio::select! {
        () = dispatch(&shared, from_calls) => {}
        () = shared.cancel.cancelled() => {}
    }
}

/// Takes requests in order; while there is a connected client issues each, else holds them
/// (failing those whose deadline passes with DISCONNECTED, as [`Shared::bounded`] does).
async fn dispatch(shared: &Arc<Shared>, mut from_calls: mpsc::UnboundedReceiver<Queued>) {
    let mut current = shared.current.subscribe();
    let mut waiting: VecDeque<Queued> = VecDeque::new();
    // The earliest deadline among `waiting`, if any.
    let mut first_deadline: Option<Instant> = None;
    loop {
        while let Ok(q) = from_calls.try_recv() {
            hold(&mut waiting, &mut first_deadline, q);
        }
        let client = current.borrow_and_update().clone();
        if let Some(client) = client {
            while let Some(q) = waiting.pop_front() {
                issue(shared, q, &client).await;
            }
            first_deadline = None;
            match from_calls.recv().await {
                Some(q) => hold(&mut waiting, &mut first_deadline, q),
                None => return,
            }
            continue;
        }
        let now = Instant::now();
        if first_deadline.is_some_and(|d| d <= now) {
            let (expired, kept): (VecDeque<_>, VecDeque<_>) =
                waiting.drain(..).partition(|q| q.deadline <= now);
            waiting = kept;
            first_deadline = waiting.iter().map(|q| q.deadline).min();
            for q in expired {
                q.done.finish(Err(ClientError::Closed));
            }
        }
        let scan_at = first_deadline.map(|d| d.max(now + EXPIRY_SCAN));
        tokio::select! {
            q = from_calls.recv() => match q {
                Some(q) => hold(&mut waiting, &mut first_deadline, q),
                None => return,
            },
            changed = current.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until_some(scan_at) => {}
        }
    }
}

/// Adds `q` to the requests waiting for a client, keeping `first` their earliest deadline.
fn hold(waiting: &mut VecDeque<Queued>, first: &mut Option<Instant>, q: Queued) {
    *first = Some(first.map_or(q.deadline, |d| d.min(q.deadline)));
    waiting.push_back(q);
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Issues one request on `client`: runs its call up to its first wait (by then its frame is
/// queued for the Rust client's writer, in order), then lets a task of its own finish it.
async fn issue(shared: &Arc<Shared>, q: Queued, client: &Client) {
    let Queued {
        method,
        call,
        deadline,
        unbounded,
        slot,
        cancel,
        done,
    } = q;
    let _ = slot.client.set(client.clone());
    let _ = slot.id.set(done.id);
    let bounded = shared.clone();
    let limit = (!unbounded).then_some(deadline);
    let mut fut: Call = Box::pin(async move { bounded.bounded(call, limit, cancel).await });
    let first = std::future::poll_fn(|cx| {
        Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
            fut.as_mut().poll(cx)
        })))
    })
    .await;
    // A login, resume, logout or revoked session shows in the session state, queued before
    // the completion.
    let ran_on = client.clone();
    match first {
        Ok(Poll::Ready(reply)) => {
            shared.session_of(&ran_on, &method);
            done.finish(reply);
        }
        Ok(Poll::Pending) => {
            let id = done.id;
            let session = shared.clone();
            let task = shared.rt.spawn(async move {
                let reply = fut.await;
                session.session_of(&ran_on, &method);
                done.finish(reply);
            });
            // Kept for shutdown unless the request completed (or was cancelled) meanwhile.
            if let Some(live) = lock(&shared.requests).live.get_mut(&id) {
                live.abort = Some(task.abort_handle());
            }
        }
        Err(_) => done.panicked(),
    }
}
