//! A connection's bounded output: [`Outbox`] for those who push frames, [`OutboxReader`] for
//! the connection task that drains them, [`Reservation`] for replies built off the task.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use bytes::BytesMut;
use feige_protocol::frame;

use crate::control::{lock, register, Control};
use crate::socket::Socket;

/// A connection's bounded queue of encoded frames: anyone may push (the router, reply tasks),
/// its connection task drains it. The frames are copied into one byte buffer, back to back,
/// so a push allocates nothing of its own (the buffer grows by doubling); the buffer is given
/// back whenever the task drains it empty, so an idle connection's outbox holds none.
///
/// The bound is in bytes (and frames), checked on every push: the connection's output is what
/// is queued plus what its task drained and has not written yet ([`OutboxReader::drain_into`]
/// until [`OutboxReader::release`]). Replies of requests served off the task are not refused:
/// each reserves room before it is built ([`Outbox::reserve`]), and the task reads no further
/// request while the output and the reservations reach half the bound
/// ([`OutboxReader::backlogged`]), so replies stay bounded while pushes keep the other half.
///
/// [`Outbox::push_now`] writes the frame to the socket itself when nothing is queued or being
/// written, which saves waking the connection task (at light load, most of a message's
/// hand-offs between threads).
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<OutboxShared>,
}

struct OutboxShared {
    queue: Mutex<Queue>,
    /// Most frames queued. `u32`, like `max_bytes`: with the reference counts the allocation
    /// stays within 136 bytes, one malloc size class below what two `usize`s would take.
    capacity: u32,
    /// Most bytes of output (queued and held by the task) before a push is refused (at most
    /// [`MAX_OUTBOX_BYTES`]).
    max_bytes: u32,
    /// The connection's kick switch, in the same allocation (one per connection, not two).
    control: Control,
}

#[derive(Default)]
struct Queue {
    /// Queued frames from `head` on, each whole (a frame carries its length, so the drain can
    /// tell where one ends), except that the first `partial` bytes are the rest of a frame a
    /// direct write sent in part. Bytes before `head` are drained already.
    bytes: Vec<u8>,
    /// `u32`, like the counts below (they are part of every idle connection): the buffer is
    /// bounded by `max_bytes` (at most 1 GiB) plus the replies reserved within it.
    head: u32,
    /// At most one frame's length (`max_frame` is far below 4 GiB).
    partial: u32,
    /// Frames queued, a partly written one included.
    frames: u32,
    /// Bytes the task drained and has not written yet.
    held: u32,
    /// Bytes reserved for replies being built ([`Outbox::reserve`]).
    reserved: u32,
    /// The connection task, while it waits for a frame.
    waker: Option<Waker>,
    /// The connection task is gone: frames are dropped.
    closed: bool,
    /// The connection task holds bytes it has not written yet (responses, drained frames):
    /// a direct write now would overtake them.
    busy: bool,
    /// The connection's socket, for [`Outbox::push_now`]; dropped with the reader.
    socket: Option<Arc<Socket>>,
    /// A reservation was given back unused: the waiting task should look at the backlog.
    nudged: bool,
}

/// The first push into an empty outbox reserves this much (a window of 16 pushes is ~2.5 KB).
const FIRST_RESERVE: usize = 4096;

/// A drained prefix of at least this many bytes is dropped from an outbox that is not empty
/// (when it is also at least half of the buffer), so a connection that never drains its queue
/// empty does not keep what it wrote.
const COMPACT_AT: usize = 64 * 1024;

impl Queue {
    /// Where the frame that starts at `at` ends. A frame is `[u32 length, big-endian][body]`;
    /// a malformed one (only a bug could queue it) ends at the end of the queue.
    fn frame_end(&self, at: usize) -> usize {
        match frame::check(self.bytes.get(at..).unwrap_or_default(), usize::MAX) {
            Ok(Some(len)) => at + len,
            _ => self.bytes.len(),
        }
    }

    /// Forgets everything queued, storage included.
    fn clear(&mut self) {
        self.bytes = Vec::new();
        self.head = 0;
        self.partial = 0;
        self.frames = 0;
    }

    /// Bytes queued and not yet drained.
    fn queued(&self) -> usize {
        self.bytes.len() - self.head as usize
    }

    /// The connection's output: queued, plus drained and not written yet.
    fn output(&self) -> usize {
        self.queued() + self.held as usize
    }
}

/// How many whole frames `bytes` holds, if it is nothing but whole frames (debug checks).
fn whole_frames(mut bytes: &[u8]) -> Option<u32> {
    let mut n = 0;
    while !bytes.is_empty() {
        let len = frame::check(bytes, usize::MAX).ok().flatten()?;
        bytes = &bytes[len..];
        n += 1;
    }
    Some(n)
}

/// Of whole frames back to back in `frames`, of which the first `n` bytes were written: how
/// many were written whole, and how many bytes are left of the one cut (0 when `n` falls
/// between two frames).
fn cut(frames: &[u8], n: usize) -> (u32, u32) {
    let mut at = 0;
    let mut whole = 0;
    while at < frames.len() {
        let end = match frame::check(&frames[at..], usize::MAX) {
            Ok(Some(len)) => at + len,
            _ => frames.len(),
        };
        if end > n {
            return (whole, if at < n { to_u32(end - n) } else { 0 });
        }
        whole += 1;
        at = end;
    }
    (whole, 0)
}

/// Saturates at `u32::MAX` (the counts are bounded far below it by configuration).
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Why [`Outbox::push`] did not queue a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The frame would take the output past its bound (bytes or frames).
    Full,
    /// The connection has ended.
    Closed,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("capacity", &self.shared.capacity)
            .field("max_bytes", &self.shared.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// A new, empty outbox holding at most `capacity` frames (bytes bounded only by
    /// [`MAX_OUTBOX_BYTES`]), and its reading end.
    pub fn new(capacity: usize) -> (Outbox, OutboxReader) {
        Self::bounded(capacity, MAX_OUTBOX_BYTES)
    }

    /// A new, empty outbox whose output is at most `capacity` frames and `max_bytes` bytes
    /// (at most [`MAX_OUTBOX_BYTES`]), and its reading end.
    pub fn bounded(capacity: usize, max_bytes: usize) -> (Outbox, OutboxReader) {
        let shared = Arc::new(OutboxShared {
            queue: Mutex::new(Queue::default()),
            capacity: to_u32(capacity.max(1)),
            max_bytes: to_u32(max_bytes.clamp(1, MAX_OUTBOX_BYTES)),
            control: Control::default(),
        });
        (
            Outbox {
                shared: shared.clone(),
            },
            OutboxReader { shared },
        )
    }

    /// The connection's kick switch.
    pub fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Queues a copy of `frame`, one whole encoded frame (length header included), without
    /// waiting.
    ///
    /// # Errors
    /// The outbox is full, or its connection has ended (the frame is dropped either way).
    pub fn push(&self, frame: &[u8]) -> Result<(), PushError> {
        self.push_inner(frame, false)
    }

    /// Like [`Outbox::push`], but when nothing is queued and the connection task holds no
    /// unwritten bytes, first tries to write `frame` to the socket on the calling thread (one
    /// non-blocking write; what the socket does not take is queued for the task). For callers
    /// that deliver a few frames at a time: many small writes cost more than the task's
    /// batched ones.
    ///
    /// # Errors
    /// As [`Outbox::push`].
    pub fn push_now(&self, frame: &[u8]) -> Result<(), PushError> {
        self.push_inner(frame, true)
    }

    /// Reserves `bytes` of output for a reply about to be built; the reply goes in through
    /// [`Reservation::deliver`], which is never refused for want of room. The reservation
    /// counts towards [`OutboxReader::backlogged`] until then.
    pub fn reserve(&self, bytes: usize) -> Reservation {
        let bytes = to_u32(bytes);
        let mut q = self.shared.lock();
        q.reserved = q.reserved.saturating_add(bytes);
        Reservation {
            outbox: self.clone(),
            bytes,
        }
    }

    /// Bytes of output: queued, and held unwritten by the connection task.
    pub fn output_bytes(&self) -> usize {
        self.shared.lock().output()
    }

    /// Queues copies of `count` whole frames that lie back to back in `frames`, all or none,
    /// under one lock and with at most one wake-up of the connection task: a batch of pushes
    /// of one conversation goes to each member's connection this way, and its task then
    /// writes them in one go.
    ///
    /// # Errors
    /// As [`Outbox::push`]; the bound is checked for all of them together.
    pub fn push_many(&self, frames: &[u8], count: u32) -> Result<(), PushError> {
        self.push_frames(frames, count, false, None)
    }

    /// [`Outbox::push_many`] that first tries to write them to the socket on the calling
    /// thread, as [`Outbox::push_now`] does for one frame.
    ///
    /// # Errors
    /// As [`Outbox::push_many`].
    pub fn push_many_now(&self, frames: &[u8], count: u32) -> Result<(), PushError> {
        self.push_frames(frames, count, true, None)
    }

    fn push_inner(&self, frame: &[u8], direct: bool) -> Result<(), PushError> {
        self.push_frames(frame, 1, direct, None)
    }

    /// Queues `frame`; a reply (`reserved` is its reservation) is never refused for room.
    fn push_frame(
        &self,
        frame: &[u8],
        direct: bool,
        reserved: Option<u32>,
    ) -> Result<(), PushError> {
        self.push_frames(frame, 1, direct, reserved)
    }

    /// Queues `count` whole frames lying back to back in `frames`, or with `direct` first
    /// writes what the socket takes of them.
    fn push_frames(
        &self,
        frames: &[u8],
        count: u32,
        direct: bool,
        reserved: Option<u32>,
    ) -> Result<(), PushError> {
        debug_assert_eq!(
            whole_frames(frames),
            Some(count),
            "not {count} whole frames"
        );
        let waiting = {
            let mut q = self.shared.lock();
            if q.closed {
                return Err(PushError::Closed);
            }
            if let Some(r) = reserved {
                q.reserved = q.reserved.saturating_sub(r);
            } else if q.frames.saturating_add(count) > self.shared.capacity
                || q.output() + frames.len() > self.shared.max_bytes as usize
            {
                return Err(PushError::Full);
            }
            let mut rest = frames;
            let mut queued = count;
            if direct && q.frames == 0 && !q.busy {
                if let Some(socket) = &q.socket {
                    // Under the lock, so the task cannot start a write of its own meanwhile.
                    match socket.try_write(frames) {
                        Ok(n) if n == frames.len() => return Ok(()),
                        Ok(n) => {
                            // The frames written whole are gone; of the one cut, `partial`
                            // bytes are left.
                            let (written, partial) = cut(frames, n);
                            rest = &frames[n..];
                            queued = count.saturating_sub(written);
                            q.partial = partial;
                        }
                        // Would block, or failed: the task writes it, or meets the error.
                        Err(_) => {}
                    }
                }
            }
            if q.bytes.capacity() == 0 {
                // Room for a burst at once, rather than growing through 150, 300, 600... bytes.
                q.bytes.reserve(FIRST_RESERVE.max(rest.len()));
            }
            q.bytes.extend_from_slice(rest);
            q.frames = q.frames.saturating_add(queued);
            // Set only while the task waits on an empty queue: one wake-up per batch.
            q.waker.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }
}

impl OutboxShared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }
}

/// The largest output bound an outbox takes (its counts are `u32`).
pub const MAX_OUTBOX_BYTES: usize = 1 << 30;

/// Room reserved in an outbox for one reply ([`Outbox::reserve`]); given back when dropped
/// undelivered.
#[derive(Debug)]
pub struct Reservation {
    outbox: Outbox,
    bytes: u32,
}

impl Reservation {
    /// Queues the reply `frame` in place of the reservation, even past the outbox's bound.
    /// A closed outbox drops it.
    pub fn deliver(mut self, frame: &[u8]) {
        let bytes = std::mem::take(&mut self.bytes);
        let _ = self.outbox.push_frame(frame, false, Some(bytes));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let waiting = {
            let mut q = self.outbox.shared.lock();
            q.reserved = q.reserved.saturating_sub(self.bytes);
            q.nudged = true;
            q.waker.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
    }
}

/// The connection task's end of an [`Outbox`]. Dropping it closes the outbox.
pub struct OutboxReader {
    shared: Arc<OutboxShared>,
}

impl std::fmt::Debug for OutboxReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxReader").finish_non_exhaustive()
    }
}

impl OutboxReader {
    /// Waits until a frame is queued (or a reservation was given back unused). Cancel safe.
    pub fn ready(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            // Looked at and registered under the lock that `push` takes.
            let mut q = self.shared.lock();
            if q.frames == 0 && !q.nudged {
                register(&mut q.waker, cx);
                Poll::Pending
            } else {
                q.nudged = false;
                Poll::Ready(())
            }
        })
    }

    /// Whether the output and the replies reserved reach half the outbox's byte bound: the
    /// connection task reads no further request until they drain below it.
    pub fn backlogged(&self) -> bool {
        let q = self.shared.lock();
        q.output() + q.reserved as usize >= self.shared.max_bytes as usize / 2
    }

    /// The connection's kick switch (the task waits on it).
    pub fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Lets [`Outbox::push_now`] write to `socket` while the task holds nothing unwritten.
    pub fn attach(&self, socket: Arc<Socket>) {
        self.shared.lock().socket = Some(socket);
    }

    /// Marks the task as holding unwritten bytes (it is about to produce some): direct writes
    /// queue instead, until [`OutboxReader::release`].
    pub fn hold(&self) {
        self.shared.lock().busy = true;
    }

    /// The task has written everything it held. Returns whether the queue is empty; if it is
    /// not, the task stays marked as busy (it will drain and write again).
    pub fn release(&self) -> bool {
        let mut q = self.shared.lock();
        q.held = 0;
        q.busy = q.frames != 0;
        !q.busy
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().frames == 0
    }

    /// Moves queued frames into `buf`, whole, until it holds at least `limit` bytes or the
    /// queue is empty; an emptied queue gives its storage back. Marks the task as busy, as
    /// [`OutboxReader::hold`] does: it is about to write `buf`; `buf`'s bytes count as held
    /// output until [`OutboxReader::release`].
    pub fn drain_into(&self, buf: &mut BytesMut, limit: usize) {
        let mut q = self.shared.lock();
        q.busy = true;
        if q.frames == 0 {
            return;
        }
        let start = q.head as usize;
        let mut end = start;
        let mut taken = 0;
        if q.partial > 0 {
            end += q.partial as usize;
            q.partial = 0;
            taken += 1;
        }
        let room = limit.saturating_sub(buf.len());
        while end < q.bytes.len() && end - start < room {
            end = q.frame_end(end);
            taken += 1;
        }
        buf.extend_from_slice(&q.bytes[start..end]);
        q.held = to_u32(buf.len());
        if end >= q.bytes.len() {
            q.clear();
            return;
        }
        q.head = to_u32(end);
        q.frames = q.frames.saturating_sub(taken).max(1);
        if end >= COMPACT_AT && end * 2 >= q.bytes.len() {
            q.bytes.drain(..end);
            q.head = 0;
        }
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.closed = true;
        q.clear();
        q.held = 0;
        q.waker = None;
        q.socket = None;
    }
}

#[cfg(test)]
mod tests;
