//! A scheduler hint for the threads a chat message waits on: the reactor (tokio's threads),
//! the storage writer and the router ask Linux (6.12 or later, EEVDF) for a short time slice.
//!
//! Why: on a machine whose cores are busy (a 1 GB upload next to the chat: the file workers
//! hashing and copying, the uploader itself), a thread that wakes for a chat message waits
//! until the running thread's slice ends (1.4 ms on 2 cores by default), at every hop of the
//! message. A thread with a shorter slice than the running one preempts it at once on
//! wake-up. The slice gives no larger share of the CPU; it only makes the thread run sooner
//! and in shorter turns. Kernels before 6.12 accept and ignore it; other systems have none.
//!
//! `sched_setattr` has no wrapper in libc, rustix or a well-kept crate, so this module makes
//! the system call itself: its one `unsafe` block is the server's only one outside the
//! PocketSphinx FFI.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The slice latency-sensitive threads ask for unless [`set_latency_slice`] says otherwise.
pub const DEFAULT_LATENCY_SLICE: Duration = Duration::from_micros(100);

/// The slice in nanoseconds; 0 leaves the kernel's default.
static SLICE_NS: AtomicU64 = AtomicU64::new(DEFAULT_LATENCY_SLICE.as_nanos() as u64);

/// Sets the slice the threads started after this call ask for; zero leaves the kernel's
/// default (the binary's `--latency-slice-us`).
pub fn set_latency_slice(slice: Duration) {
    let ns = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    SLICE_NS.store(ns, Ordering::Relaxed);
}

/// Asks for the latency slice for the calling thread; a refusal is only logged, since the
/// server works the same without it, only with longer waits when the CPU is short.
pub fn prefer_latency() {
    let ns = SLICE_NS.load(Ordering::Relaxed);
    if ns == 0 {
        return;
    }
    if let Err(e) = set_slice(ns) {
        tracing::debug!(error = %e, "the kernel refused a shorter scheduler slice");
    }
}

/// Gives the calling thread the kernel's default slice back: for bulk work (file, speech and
/// other worker pools, the storage's background threads), which would otherwise inherit a
/// short slice from the thread that started it and run in shorter turns for nothing.
pub fn default_slice() {
    if SLICE_NS.load(Ordering::Relaxed) == 0 {
        return;
    }
    if let Err(e) = set_slice(0) {
        tracing::debug!(error = %e, "the kernel refused the default scheduler slice");
    }
}

/// The kernel's `struct sched_attr` as of its first version (`SCHED_ATTR_SIZE_VER0`).
#[cfg(target_os = "linux")]
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// `SCHED_FLAG_KEEP_POLICY`: leave the thread's policy (normal, batch, idle) as it is.
#[cfg(target_os = "linux")]
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;

/// Sets the calling thread's slice to `ns` (the kernel clamps it to 0.1–100 ms; 0 is its
/// default), keeping its policy and its niceness (`sched_setattr` sets both, so the current niceness is passed).
#[cfg(target_os = "linux")]
fn set_slice(ns: u64) -> std::io::Result<()> {
    // On Linux PRIO_PROCESS with id 0 is the calling thread.
    let nice = rustix::process::getpriority_process(None)?;
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: 0,
        flags: SCHED_FLAG_KEEP_POLICY,
        nice,
        priority: 0,
        runtime: ns,
        deadline: 0,
        period: 0,
    };
    // SAFETY: sched_setattr(2) reads `size` bytes from the pointer, which points to a live,
    // initialised `SchedAttr` of exactly that size for the length of the call; pid 0 is the
    // calling thread and flags 0 is the only value the call accepts.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_slice(_ns: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The slice the kernel reports for the calling thread (`se.slice` in its sched file),
    /// when it reports one.
    fn slice_of_this_thread() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = text.lines().find(|l| l.starts_with("se.slice"))?;
        line.split(':').nth(1)?.trim().parse().ok()
    }

    /// Whether the kernel is 6.12 or later (custom slices for normal threads).
    fn kernel_has_custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 12)
    }

    #[test]
    fn a_thread_gets_the_slice_and_keeps_its_niceness() {
        if !kernel_has_custom_slices() || slice_of_this_thread().is_none() {
            return; // older kernels accept and ignore the slice; nothing to observe
        }
        std::thread::spawn(|| {
            rustix::process::nice(3).unwrap();
            let before = rustix::process::getpriority_process(None).unwrap();
            set_slice(300_000).unwrap();
            assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
            assert_eq!(slice_of_this_thread(), Some(300_000));
            let spawned = std::thread::spawn(slice_of_this_thread).join().unwrap();
            assert_eq!(spawned, Some(300_000), "a thread inherits the slice");
            set_slice(0).unwrap();
            assert_ne!(slice_of_this_thread(), Some(300_000));
        })
        .join()
        .unwrap();
    }
}
