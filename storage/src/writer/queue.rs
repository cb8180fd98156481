//! The writer's queue: operations one at a time, or the messages one connection read at once
//! as one entry, so that the writer, woken by the first, finds all of them (waking a thread
//! can preempt the waker, so messages queued one by one reach two batches).
//!
//! The channel bounds entries; a list of n messages also takes n - 1 permits of `extra`,
//! given back when the writer takes it, so that the queue holds at most
//! `queue_capacity` single entries plus `queue_capacity` more messages.

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::sync::Semaphore;

use super::op::{NewMessage, Op};

/// One entry of the queue.
pub(super) enum Queued<C> {
    One(Op<C>),
    /// Messages of one connection, in order.
    Messages(Vec<NewMessage<C>>),
}

impl<C> From<Op<C>> for Queued<C> {
    fn from(op: Op<C>) -> Self {
        Queued::One(op)
    }
}

/// The writer's end: unpacks each entry into operations.
pub(super) struct Inbox<C> {
    rx: mpsc::Receiver<Queued<C>>,
    extra: Arc<Semaphore>,
}

impl<C> Inbox<C> {
    pub(super) fn new(rx: mpsc::Receiver<Queued<C>>, extra: Arc<Semaphore>) -> Self {
        Inbox { rx, extra }
    }

    /// Appends the next entry's operations to `ops` without waiting.
    pub(super) fn try_take(&mut self, ops: &mut Vec<Op<C>>) -> Result<(), TryRecvError> {
        let q = self.rx.try_recv()?;
        self.unpack(q, ops);
        Ok(())
    }

    /// Waits for the next entry and appends its operations to `ops`; `false` once the queue
    /// is closed and empty.
    pub(super) fn blocking_take(&mut self, ops: &mut Vec<Op<C>>) -> bool {
        match self.rx.blocking_recv() {
            Some(q) => {
                self.unpack(q, ops);
                true
            }
            None => false,
        }
    }

    /// Whether nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Refuses new entries; those queued can still be taken.
    pub(super) fn close(&mut self) {
        self.rx.close();
    }

    fn unpack(&self, q: Queued<C>, ops: &mut Vec<Op<C>>) {
        match q {
            Queued::One(op) => ops.push(op),
            Queued::Messages(msgs) => {
                self.extra.add_permits(msgs.len().saturating_sub(1));
                ops.extend(msgs.into_iter().map(Op::Message));
            }
        }
    }
}
