//! A pool of worker threads for blocking work that must not run on the reactor threads (file
//! writes and hashing, speech decoding): a fixed number of threads, each with its own state
//! (a speech decoder, say), and a queue bounded both in jobs and in the bytes the jobs hold,
//! so a burst of uploads cannot grow the server. A full queue is refused at once with
//! [`PoolError::Busy`] instead of waiting: the client gets `BUSY` and retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Why a job did not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// The queue is full (in jobs or in bytes).
    #[error("the {0} workers are busy; retry later")]
    Busy(&'static str),
    /// The worker threads are gone (the server is stopping, or a job panicked).
    #[error("the {0} workers stopped")]
    Gone(&'static str),
}

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// The sizes of a [`Pool`].
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Jobs waiting at most (at least 1).
    pub queue: usize,
    /// Bytes the waiting and running jobs may hold together (see [`Pool::run`]).
    pub queue_bytes: usize,
}

/// Worker threads with per-thread state `S`; see the module docs.
pub struct Pool<S> {
    name: &'static str,
    tx: SyncSender<Job<S>>,
    /// Bytes held by queued and running jobs.
    held: Arc<AtomicUsize>,
    /// Jobs queued and running.
    jobs: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl<S> std::fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("held", &self.held.load(Ordering::Relaxed))
            .finish()
    }
}

impl<S: 'static> Pool<S> {
    /// Starts `size.threads` threads named `name`; each first makes its state with
    /// `init(thread_index)`. Returns once every thread has made its state, or with the first
    /// error (the threads already started then end).
    ///
    /// # Errors
    /// `init`'s error, or the thread could not be spawned (as `E::from(io::Error)`).
    pub fn start<E, F>(name: &'static str, size: PoolSize, init: F) -> Result<Pool<S>, E>
    where
        E: From<std::io::Error> + Send + 'static,
        F: Fn(usize) -> Result<S, E> + Send + Sync + 'static,
    {
        let (tx, rx) = sync_channel::<Job<S>>(size.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let init = Arc::new(init);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), E>>();
        for i in 0..size.threads.max(1) {
            let rx = rx.clone();
            let init = init.clone();
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    // Pools do bulk work: the kernel's default slice, not the reactor's.
                    crate::sched::default_slice();
                    match init(i) {
                        Ok(state) => {
                            let _ = ready.send(Ok(()));
                            drop(ready);
                            work(&rx, state);
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                })?;
        }
        drop(ready_tx);
        for _ in 0..size.threads.max(1) {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(E::from(std::io::Error::other(format!(
                        "a {name} worker ended while starting"
                    ))))
                }
            }
        }
        Ok(Pool {
            name,
            tx,
            held: Arc::new(AtomicUsize::new(0)),
            jobs: Arc::new(AtomicUsize::new(0)),
            max_bytes: size.queue_bytes.max(1),
        })
    }

    /// Runs `job` on a worker thread with that thread's state and returns its result.
    /// `bytes` is what the job holds (a chunk's data, say) until it ends; a job is refused
    /// when the jobs queued and running would hold more than `queue_bytes` together, unless
    /// nothing else is held (so one large job always runs).
    ///
    /// # Errors
    /// [`PoolError::Busy`] when the queue is full; [`PoolError::Gone`] when the workers
    /// stopped or the job panicked.
    pub async fn run<T, F>(&self, bytes: usize, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let before = self.held.fetch_add(bytes, Ordering::AcqRel);
        self.jobs.fetch_add(1, Ordering::Relaxed);
        let release = Release {
            held: self.held.clone(),
            jobs: self.jobs.clone(),
            bytes,
        };
        if before > 0 && before + bytes > self.max_bytes {
            return Err(PoolError::Busy(self.name));
        }
        let (done_tx, done_rx) = oneshot::channel();
        let boxed: Job<S> = Box::new(move |state: &mut S| {
            let out = job(state);
            drop(release);
            let _ = done_tx.send(out);
        });
        match self.tx.try_send(boxed) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PoolError::Busy(self.name)),
            Err(TrySendError::Disconnected(_)) => return Err(PoolError::Gone(self.name)),
        }
        done_rx.await.map_err(|_| PoolError::Gone(self.name))
    }

    /// Bytes held by the jobs queued and running now.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Jobs queued and running now.
    pub fn jobs(&self) -> usize {
        self.jobs.load(Ordering::Relaxed)
    }
}

/// Raises the calling thread's niceness by `by` (Linux: niceness is per thread), so that
/// when the CPU is short it yields to the server's other threads; a failure is only logged.
pub(crate) fn lower_priority(by: i32) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::nice(by) {
        tracing::debug!(error = %e, "cannot lower a worker thread's priority");
    }
}

/// Gives a job's bytes back when the job ends, runs or not.
struct Release {
    held: Arc<AtomicUsize>,
    jobs: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.jobs.fetch_sub(1, Ordering::Relaxed);
        self.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A worker's loop: takes jobs until the pool is dropped. A panicking job ends only itself
/// (its caller sees [`PoolError::Gone`]); the thread goes on with the next job.
fn work<S>(rx: &Mutex<Receiver<Job<S>>>, mut state: S) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let run = std::panic::AssertUnwindSafe(|| job(&mut state));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a worker job panicked");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn size(threads: usize, queue: usize, queue_bytes: usize) -> PoolSize {
        PoolSize {
            threads,
            queue,
            queue_bytes,
        }
    }

    #[tokio::test]
    async fn jobs_run_with_their_threads_state() {
        let pool: Pool<usize> =
            Pool::start::<std::io::Error, _>("t", size(2, 8, 1 << 20), |i| Ok(i * 100)).unwrap();
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.push(pool.run(1, |s: &mut usize| *s).await.unwrap());
        }
        assert!(seen.iter().all(|s| *s == 0 || *s == 100), "{seen:?}");
        assert_eq!(pool.held_bytes(), 0);
    }

    #[tokio::test]
    async fn a_failing_init_fails_the_start() {
        let r: Result<Pool<()>, std::io::Error> = Pool::start("t", size(3, 1, 1), |i| {
            if i == 1 {
                Err(std::io::Error::other("no model"))
            } else {
                Ok(())
            }
        });
        assert_eq!(r.unwrap_err().to_string(), "no model");
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_in_jobs_and_in_bytes() {
        let pool: Pool<()> =
            Pool::start::<std::io::Error, _>("t", size(1, 1, 100), |_| Ok(())).unwrap();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        // One job runs (blocked on the gate) holding 60 bytes.
        let g = gate.clone();
        let pool = Arc::new(pool);
        let p = pool.clone();
        let running = tokio::spawn(async move {
            p.run(60, move |_| {
                let _ = g.lock().unwrap().recv();
            })
            .await
        });
        while pool.held_bytes() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.jobs(), 1);
        // 60 + 50 > 100: refused by bytes.
        assert_eq!(pool.run(50, |_| ()).await, Err(PoolError::Busy("t")));
        assert_eq!(pool.jobs(), 1, "a refused job is not counted");
        gate_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(pool.held_bytes(), 0);
        assert_eq!(pool.jobs(), 0);
        // A job larger than the whole bound runs when nothing else is held.
        assert_eq!(pool.run(500, |_| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_panicking_job_leaves_the_worker_serving() {
        let pool: Pool<()> =
            Pool::start::<std::io::Error, _>("t", size(1, 4, 1 << 20), |_| Ok(())).unwrap();
        let r: Result<(), _> = pool.run(1, |_| panic!("boom")).await;
        assert_eq!(r, Err(PoolError::Gone("t")));
        assert_eq!(pool.run(1, |_| 5).await, Ok(5));
    }
}
