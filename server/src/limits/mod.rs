//! Abuse limits: failed-login back-off per account and per address, token buckets for
//! registrations (per address) and messages (per user), and connection counts per address.
//!
//! Every table is keyed by something an attacker can vary (names, addresses), so each is
//! swept by time (`Limits::sweep`, run every few seconds by `Server::run`) and capped in
//! size: an entry that is back to its resting state (a full bucket, a forgotten failure count,
//! no connection) is dropped, and a full table takes no new key until a sweep frees room.
//! Times come from `tokio::time::Instant`, so unit tests drive them with `time::pause()`.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use dashmap::DashMap;
use feige_storage::UserId;
use tokio::time::Instant;

use crate::Config;

/// Most entries one table holds; a full table takes no new key until a sweep frees room.
const MAX_ENTRIES: usize = 100_000;
/// Longest username kept as a key (usernames have at most 32 bytes).
const MAX_NAME_KEY: usize = 64;

/// The key of a source address: an IPv4 address, or the /64 network of an IPv6 address (one
/// host usually holds a whole /64); an IPv4-mapped IPv6 address counts as its IPv4 address.
///
/// Two `u64`s rather than a `u128`: an [`AddrSlot`] is part of every connection's task, and a
/// `u128` would align the whole task future to 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddrKey(u64, u64);

impl AddrKey {
    pub(crate) fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey(0, u64::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(0, u64::from(u32::from(v4))),
                // The /64 network, with a tag bit no IPv4 key has.
                None => AddrKey(1, (u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `per_sec`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How fast a bucket refills and how much it holds; a rate of 0 means unlimited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    pub(crate) fn new(per_sec: f64, burst: u32) -> Rate {
        Rate {
            per_sec,
            burst: f64::from(burst.max(1)),
        }
    }

    fn unlimited(&self) -> bool {
        self.per_sec <= 0.0
    }

    /// How long an empty bucket takes to fill up again.
    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(self.burst / self.per_sec)
    }
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }

    /// Whether the bucket is full again by `now` (and may be forgotten).
    fn refilled(&self, rate: Rate, now: Instant) -> bool {
        self.at + rate.refill_time() <= now
    }
}

/// Token buckets by key.
struct Buckets<K> {
    rate: Rate,
    map: DashMap<K, Bucket>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(rate: Rate) -> Self {
        Buckets {
            rate,
            map: DashMap::new(),
        }
    }

    /// Takes a token from `key`'s bucket, or says how long until one is there. No allocation
    /// once the key has a bucket; a full table lets a new key through untracked.
    fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.unlimited() {
            return Ok(());
        }
        if let Some(mut b) = self.map.get_mut(key) {
            return b.take(self.rate, now);
        }
        let mut fresh = Bucket::full(self.rate, now);
        let r = fresh.take(self.rate, now);
        if self.map.len() < MAX_ENTRIES {
            self.map.entry(key.clone()).or_insert(fresh);
        }
        r
    }

    fn sweep(&self, now: Instant) {
        let rate = self.rate;
        self.map.retain(|_, b| !b.refilled(rate, now));
    }
}

/// Failed-login back-off: `free` failures, then each further one locks for twice as long as
/// the last, from `base` up to `max`; a count is forgotten after `window` without failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackoffRule {
    pub free: u32,
    pub base: Duration,
    pub max: Duration,
    pub window: Duration,
}

impl BackoffRule {
    /// The lock after the `failures`-th failure.
    fn delay(&self, failures: u32) -> Duration {
        if failures <= self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free - 1).min(32);
        self.base
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max)
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Instant,
}

/// Failure counts by key.
struct Backoff<K> {
    rule: BackoffRule,
    map: DashMap<K, Failures>,
}

impl<K: Eq + Hash + Clone> Backoff<K> {
    fn new(rule: BackoffRule) -> Self {
        Backoff {
            rule,
            map: DashMap::new(),
        }
    }

    /// How long `key` is still locked, if it is.
    fn locked(&self, key: &K, now: Instant) -> Option<Duration> {
        let f = self.map.get(key)?;
        (f.locked_until > now).then(|| f.locked_until - now)
    }

    fn fail(&self, key: K, now: Instant) {
        let rule = self.rule;
        let record = |f: &mut Failures| {
            if f.last + rule.window <= now {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            f.locked_until = now + rule.delay(f.count);
        };
        if let Some(mut f) = self.map.get_mut(&key) {
            record(&mut f);
            return;
        }
        if self.map.len() >= MAX_ENTRIES {
            return;
        }
        let mut f = Failures {
            count: 0,
            last: now,
            locked_until: now,
        };
        record(&mut f);
        self.map.insert(key, f);
    }

    fn reset(&self, key: &K) {
        self.map.remove(key);
    }

    fn sweep(&self, now: Instant) {
        let window = self.rule.window;
        self.map
            .retain(|_, f| f.locked_until > now || f.last + window > now);
    }
}

/// Whether a request may go on, or how long the client must wait.
pub(crate) type Verdict = Result<(), Duration>;

/// The server's abuse limits (one per server, in `Shared`).
pub(crate) struct Limits {
    trusted: Vec<AddrKey>,
    login_accounts: Backoff<String>,
    login_addrs: Backoff<AddrKey>,
    registrations: Buckets<AddrKey>,
    sends: Buckets<UserId>,
    conns: DashMap<AddrKey, usize>,
    per_addr: usize,
    per_user: usize,
}

impl Limits {
    pub(crate) fn new(c: &Config) -> Limits {
        let rule = |free| BackoffRule {
            free,
            base: Duration::from_millis(c.login_backoff_base_ms),
            max: Duration::from_millis(c.login_backoff_max_ms),
            window: Duration::from_millis(c.login_failure_window_ms),
        };
        Limits {
            trusted: c.trusted_addrs.iter().map(|ip| AddrKey::of(*ip)).collect(),
            login_accounts: Backoff::new(rule(c.login_free_failures)),
            login_addrs: Backoff::new(rule(c.login_free_failures_per_addr)),
            registrations: Buckets::new(Rate::new(
                f64::from(c.registrations_per_hour) / 3600.0,
                c.registrations_per_hour,
            )),
            sends: Buckets::new(Rate::new(f64::from(c.send_rate), c.send_burst)),
            conns: DashMap::new(),
            per_addr: c.max_connections_per_addr,
            per_user: c.max_connections_per_user,
        }
    }

    /// Whether `ip` is exempt from every limit here (`trusted_addrs`).
    pub(crate) fn trusted(&self, ip: IpAddr) -> bool {
        !self.trusted.is_empty() && self.trusted.contains(&AddrKey::of(ip))
    }

    /// Whether a login for `username` from `ip` may check a password now; while the account
    /// or the address is locked, the longer wait.
    pub(crate) fn login_allowed(&self, username: &str, ip: IpAddr, now: Instant) -> Verdict {
        if self.trusted(ip) {
            return Ok(());
        }
        let account = self.login_accounts.locked(&name_key(username), now);
        let addr = self.login_addrs.locked(&AddrKey::of(ip), now);
        match account.max(addr) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a wrong password (or unknown name) against the account and the address.
    pub(crate) fn login_failed(&self, username: &str, ip: IpAddr, now: Instant) {
        if self.trusted(ip) {
            return;
        }
        self.login_accounts.fail(name_key(username), now);
        self.login_addrs.fail(AddrKey::of(ip), now);
    }

    /// A successful login clears the account's failures (not the address's: a client with one
    /// valid account must not be able to reset its address between guesses at others).
    pub(crate) fn login_succeeded(&self, username: &str) {
        self.login_accounts.reset(&name_key(username));
    }

    /// Takes a registration token of `ip`'s bucket.
    pub(crate) fn register(&self, ip: IpAddr, now: Instant) -> Verdict {
        if self.trusted(ip) {
            return Ok(());
        }
        self.registrations.take(&AddrKey::of(ip), now)
    }

    /// Takes a message token of `user`'s bucket (shared by all of the user's connections).
    pub(crate) fn send(&self, user: UserId, ip: IpAddr, now: Instant) -> Verdict {
        if self.sends.rate.unlimited() || self.trusted(ip) {
            return Ok(());
        }
        self.sends.take(&user, now)
    }

    /// Whether `user`, holding `current` logged-in connections, may open one more from `ip`.
    pub(crate) fn user_connection_allowed(&self, ip: IpAddr, current: usize) -> bool {
        self.per_user == 0 || current < self.per_user || self.trusted(ip)
    }

    /// Counts a new connection from `ip`; `None` when the address is at its cap. The returned
    /// slot gives the place back when dropped.
    pub(crate) fn connect(self: &std::sync::Arc<Self>, ip: IpAddr) -> Option<AddrSlot> {
        if self.per_addr == 0 || self.trusted(ip) {
            return Some(AddrSlot(None));
        }
        let key = AddrKey::of(ip);
        let mut n = self.conns.entry(key).or_insert(0);
        if *n >= self.per_addr {
            return None;
        }
        *n += 1;
        Some(AddrSlot(Some((self.clone(), key))))
    }

    /// Drops entries back at rest: refilled buckets, forgotten failure counts.
    pub(crate) fn sweep(&self, now: Instant) {
        self.login_accounts.sweep(now);
        self.login_addrs.sweep(now);
        self.registrations.sweep(now);
        self.sends.sweep(now);
        self.conns.retain(|_, n| *n > 0);
    }
}

/// A connection counted against its address (see [`Limits::connect`]).
pub(crate) struct AddrSlot(Option<(std::sync::Arc<Limits>, AddrKey)>);

impl Drop for AddrSlot {
    fn drop(&mut self) {
        if let Some((limits, key)) = self.0.take() {
            if let dashmap::Entry::Occupied(mut e) = limits.conns.entry(key) {
                *e.get_mut() = e.get().saturating_sub(1);
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }
}

/// The key of a username: as login looks it up (trimmed, case-folded), bounded in length.
fn name_key(username: &str) -> String {
    let mut k = username.trim().to_lowercase();
    if k.len() > MAX_NAME_KEY {
        let mut end = MAX_NAME_KEY;
        while !k.is_char_boundary(end) {
            end -= 1;
        }
        k.truncate(end);
    }
    k
}

/// File descriptors kept back from `max_connections` for the databases (7 connections, with
/// their WAL and shared-memory files), listeners, the runtime and blocking threads.
pub const FD_HEADROOM: u64 = 256;

/// The `max_connections` the open-file limit `nofile` allows: all of it but [`FD_HEADROOM`],
/// and at least 16.
pub fn connections_for_fd_limit(nofile: u64) -> usize {
    usize::try_from(nofile.saturating_sub(FD_HEADROOM).max(16)).unwrap_or(usize::MAX)
}

/// Raises the soft open-file limit to the hard limit where allowed; returns the soft limit in
/// force afterwards (`None` when it is unlimited or cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => lim = getrlimit(Resource::Nofile),
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    lim.current
}

#[cfg(test)]
mod tests;
