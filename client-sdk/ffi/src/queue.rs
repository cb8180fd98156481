//! The event queue of one client: completions, pushes and state changes, drained by the
//! application from its own thread.
//!
//! Two ways to learn that the queue is no longer empty, both level-friendly for a GUI loop:
//! - the wakeup callback, called each time the queue goes from empty to non-empty;
//! - on Unix, a file descriptor that is readable exactly while the queue holds events (one
//!   byte sits in a socket pair while the queue is non-empty; the SDK writes and drains it
//!   under the queue lock, so the application never reads it).

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::status::{FeigeEventKind, FeigeStatus};

/// Server pushes queued before the SDK stops reading from the server (completions and state
/// changes are always queued: each request has exactly one, and they are few).
pub(crate) const PUSH_CAPACITY: usize = 65_536;

/// One event taken from a client's queue. Owned by the application after
/// `feige_poll_event` / `feige_wait_event`, released with `feige_event_free`.
pub struct FeigeEvent {
    pub(crate) kind: FeigeEventKind,
    pub(crate) request_id: u64,
    pub(crate) status: FeigeStatus,
    /// UTF-8 JSON followed by one NUL byte (not counted in the length handed out).
    pub(crate) json: Box<[u8]>,
    /// A push's place in the bounded part of the queue, given back when it is taken.
    slot: Option<OwnedSemaphorePermit>,
}

impl FeigeEvent {
    fn new(kind: FeigeEventKind, request_id: u64, status: FeigeStatus, json: &Value) -> Self {
        let mut bytes = json.to_string().into_bytes();
        bytes.push(0);
        FeigeEvent {
            kind,
            request_id,
            status,
            json: bytes.into_boxed_slice(),
            slot: None,
        }
    }

    /// A completion.
    pub(crate) fn response(request_id: u64, status: FeigeStatus, json: &Value) -> Self {
        Self::new(
            FeigeEventKind::FEIGE_EVENT_RESPONSE,
            request_id,
            status,
            json,
        )
    }

    /// A server push.
    pub(crate) fn push(json: &Value) -> Self {
        Self::new(
            FeigeEventKind::FEIGE_EVENT_PUSH,
            0,
            FeigeStatus::FEIGE_OK,
            json,
        )
    }

    /// A connection state change.
    pub(crate) fn state(json: &Value) -> Self {
        Self::new(
            FeigeEventKind::FEIGE_EVENT_STATE,
            0,
            FeigeStatus::FEIGE_OK,
            json,
        )
    }

    /// The JSON without its NUL terminator.
    pub(crate) fn json_len(&self) -> usize {
        self.json.len().saturating_sub(1)
    }
}

/// Whether a push must call the wakeup callback (the queue was empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wake(bool);

impl std::ops::BitOr for Wake {
    type Output = Wake;
    fn bitor(self, other: Wake) -> Wake {
        Wake(self.0 || other.0)
    }
}

/// The application's wakeup callback and its argument.
#[derive(Clone, Copy)]
pub(crate) struct Wakeup {
    pub(crate) cb: unsafe extern "C" fn(*mut c_void),
    pub(crate) user_data: *mut c_void,
}

// SAFETY: the header requires the callback to be callable from any thread with this
// `user_data`; the SDK never dereferences `user_data` itself.
unsafe impl Send for Wakeup {}

struct State {
    events: VecDeque<FeigeEvent>,
    /// Set once the last event (`{"state":"closed"}`) is queued; nothing is added after it.
    closed: bool,
}

/// The queue. Shared by the SDK's threads (producers) and the application (consumer).
pub(crate) struct EventQueue {
    state: Mutex<State>,
    ready: Condvar,
    /// Held while the callback runs, so that replacing it waits for a running call.
    wakeup: Mutex<Option<Wakeup>>,
    push_slots: Arc<Semaphore>,
    #[cfg(unix)]
    signal: Signal,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventQueue {
    /// An empty queue.
    ///
    /// # Errors
    /// The socket pair for the wakeup descriptor could not be created.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(EventQueue {
            state: Mutex::new(State {
                events: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            wakeup: Mutex::new(None),
            push_slots: Arc::new(Semaphore::new(PUSH_CAPACITY)),
            #[cfg(unix)]
            signal: Signal::new()?,
        })
    }

    /// Adds an event (dropped if the queue is closed) and wakes the application if the queue
    /// was empty.
    pub(crate) fn push(&self, event: FeigeEvent) {
        let wake = self.push_quiet(event, false);
        self.wake(wake);
    }

    /// Adds an event (and closes the queue after it, if `last`) without calling the wakeup
    /// callback; returns whether it must be called, which the caller does through
    /// [`EventQueue::wake`] once it holds no lock of its own.
    #[must_use]
    pub(crate) fn push_quiet(&self, event: FeigeEvent, last: bool) -> Wake {
        let was_empty = {
            let mut st = lock(&self.state);
            if st.closed {
                return Wake(false);
            }
            let was_empty = st.events.is_empty();
            st.events.push_back(event);
            st.closed = last;
            if was_empty {
                #[cfg(unix)]
                self.signal.raise();
            }
            was_empty
        };
        self.ready.notify_all();
        Wake(was_empty)
    }

    /// Calls the wakeup callback if `wake` says so. Only on the SDK's threads: the header
    /// promises the callback never runs on a thread of the application.
    pub(crate) fn wake(&self, wake: Wake) {
        if wake.0 {
            self.call_wakeup();
        }
    }

    /// Adds a server push, first waiting for room in the bounded part of the queue.
    pub(crate) async fn push_bounded(&self, mut event: FeigeEvent) {
        // The semaphore is never closed, so acquiring only fails if it were.
        if let Ok(slot) = self.push_slots.clone().acquire_owned().await {
            event.slot = Some(slot);
        }
        self.push(event);
    }

    /// Queues `last` and closes the queue: later pushes are dropped, and once the queue is
    /// drained the event functions report `FEIGE_ERR_SHUT_DOWN`.
    #[must_use]
    pub(crate) fn close_with(&self, last: FeigeEvent) -> Wake {
        self.push_quiet(last, true)
    }

    /// Takes the oldest event: `Ok(None)` when empty, `Err(SHUT_DOWN)` when closed and drained.
    pub(crate) fn pop(&self) -> Result<Option<FeigeEvent>, FeigeStatus> {
        let mut st = lock(&self.state);
        Self::take(&mut st, self)
    }

    fn take(st: &mut State, q: &EventQueue) -> Result<Option<FeigeEvent>, FeigeStatus> {
        match st.events.pop_front() {
            Some(mut e) => {
                if st.events.is_empty() {
                    #[cfg(unix)]
                    q.signal.clear();
                }
                drop(e.slot.take());
                Ok(Some(e))
            }
            None if st.closed => Err(FeigeStatus::FEIGE_ERR_SHUT_DOWN),
            None => Ok(None),
        }
    }

    /// Like [`EventQueue::pop`], waiting up to `timeout` (forever if `None`) for an event.
    pub(crate) fn wait(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<FeigeEvent>, FeigeStatus> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = lock(&self.state);
        loop {
            let got = Self::take(&mut st, self)?;
            if got.is_some() {
                return Ok(got);
            }
            st = match deadline {
                None => self.ready.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    self.ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Replaces the wakeup callback, after any running call of the old one has returned;
    /// returns whether events are already waiting (so the new one should be called).
    #[must_use]
    pub(crate) fn set_wakeup(&self, wakeup: Option<Wakeup>) -> Wake {
        let mut slot = lock(&self.wakeup);
        *slot = wakeup;
        Wake(wakeup.is_some() && !lock(&self.state).events.is_empty())
    }

    fn call_wakeup(&self) {
        let slot = lock(&self.wakeup);
        if let Some(w) = *slot {
            // SAFETY: the application registered `cb` to be called from any thread with
            // `user_data` until it replaces it, which waits for this lock.
            unsafe { (w.cb)(w.user_data) };
        }
    }

    /// The descriptor that is readable while events are waiting.
    #[cfg(unix)]
    pub(crate) fn fd(&self) -> std::os::raw::c_int {
        self.signal.fd()
    }
}

/// The wakeup descriptor: a non-blocking socket pair holding one byte while events wait.
#[cfg(unix)]
struct Signal {
    read: std::os::unix::net::UnixStream,
    write: std::os::unix::net::UnixStream,
}

#[cfg(unix)]
impl Signal {
    fn new() -> std::io::Result<Self> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Signal { read, write })
    }

    /// Makes the descriptor readable (called when the queue becomes non-empty).
    fn raise(&self) {
        use std::io::Write;
        // A full buffer or a failure only loses a wakeup the byte already present gives.
        let _ = (&self.write).write(&[1]);
    }

    /// Makes it unreadable again (called when the queue becomes empty).
    fn clear(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.read).read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }

    fn fd(&self) -> std::os::raw::c_int {
        use std::os::fd::AsRawFd;
        self.read.as_raw_fd()
    }
}
