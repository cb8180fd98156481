//! The code book: codes waiting to be used, kept in memory as HMAC-SHA256 tags under a key
//! made at start (so neither memory nor a log holds a code, and a restart voids them all), with
//! the cool-down and hourly windows per destination and per client address.
//!
//! A send is [`Book::reserve`]d first (limits checked and charged, the code made), then
//! [`Book::commit`]ted once the sender succeeded or [`Book::cancel`]led when it failed, which
//! takes back the charges: a failed send costs the user nothing.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::{Purpose, VerifyError};
use crate::limits::AddrKey;

/// Keys a table holds at most (as `limits`' tables); past that, expired entries are dropped,
/// and a new key is refused with `BUSY` while every entry is live.
const MAX_KEYS: usize = 100_000;
const HOUR: Duration = Duration::from_secs(3600);

/// What a code is bound to: its purpose, its destination (normalized), and for
/// [`Purpose::Change`] the user who asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CodeKey {
    pub purpose: Purpose,
    pub owner: u64,
    pub destination: String,
}

/// The limits of [`Book`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BookLimits {
    pub ttl: Duration,
    pub max_attempts: u32,
    pub cooldown: Duration,
    pub per_destination: u32,
    pub per_address: u32,
}

struct Pending {
    tag: hmac::Tag,
    expires: Instant,
    wrong: u32,
}

#[derive(Default)]
struct Tables {
    codes: HashMap<CodeKey, Pending>,
    /// Send times of the last hour, oldest first, per destination.
    destinations: HashMap<String, VecDeque<Instant>>,
    /// Send times of the last hour per client address (not for trusted addresses).
    addresses: HashMap<AddrKey, VecDeque<Instant>>,
}

/// The pending codes and the send windows.
pub(crate) struct Book {
    key: hmac::Key,
    rng: SystemRandom,
    limits: BookLimits,
    tables: Mutex<Tables>,
}

/// A send under way: the code to send and what [`Book::cancel`] takes back.
#[derive(Debug)]
pub(crate) struct Reservation {
    pub key: CodeKey,
    pub code: String,
    address: Option<AddrKey>,
    at: Instant,
}

impl Book {
    /// An empty book with a fresh HMAC key.
    ///
    /// # Errors
    /// The random source failed.
    pub fn new(limits: BookLimits) -> Result<Book, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)?;
        Ok(Book {
            key,
            rng,
            limits,
            tables: Mutex::new(Tables::default()),
        })
    }

    /// Checks the cool-down and the hourly limits of `key`'s destination and of `address`
    /// (`None`: exempt), charges them, and makes a code.
    ///
    /// # Errors
    /// [`VerifyError::Cooldown`], [`VerifyError::RateLimited`], [`VerifyError::Busy`] (the
    /// tables are full), [`VerifyError::Internal`] (the random source failed).
    pub fn reserve(
        &self,
        key: CodeKey,
        address: Option<AddrKey>,
        now: Instant,
    ) -> Result<Reservation, VerifyError> {
        let code = self.new_code()?;
        let limits = self.limits;
        let mut t = self.tables.lock();
        if t.destinations.len() >= MAX_KEYS || t.addresses.len() >= MAX_KEYS {
            t.sweep(now);
        }
        let dest = t.destinations.get_mut(&key.destination).map(|w| {
            prune(w, now);
            (w.back().copied(), w.len(), w.front().copied())
        });
        if let Some((Some(last), count, first)) = dest {
            let ready = last + limits.cooldown;
            if ready > now {
                return Err(VerifyError::Cooldown(ready - now));
            }
            if count >= limits.per_destination as usize {
                let first = first.unwrap_or(last);
                return Err(VerifyError::RateLimited(first + HOUR - now));
            }
        }
        if let Some(a) = address {
            if let Some(w) = t.addresses.get_mut(&a) {
                prune(w, now);
                if w.len() >= limits.per_address as usize {
                    let first = w.front().copied().unwrap_or(now);
                    return Err(VerifyError::RateLimited(first + HOUR - now));
                }
            }
        }
        let full = |n: usize, has: bool| !has && n >= MAX_KEYS;
        if full(
            t.destinations.len(),
            t.destinations.contains_key(&key.destination),
        ) || address.is_some_and(|a| full(t.addresses.len(), t.addresses.contains_key(&a)))
        {
            return Err(VerifyError::Busy);
        }
        t.destinations
            .entry(key.destination.clone())
            .or_default()
            .push_back(now);
        if let Some(a) = address {
            t.addresses.entry(a).or_default().push_back(now);
        }
        Ok(Reservation {
            key,
            code,
            address,
            at: now,
        })
    }

    /// Stores the code of a reservation whose send succeeded; it replaces an earlier code for
    /// the same key, and is valid for the TTL from `now`.
    ///
    /// # Errors
    /// [`VerifyError::Busy`] when the table of codes is full of live codes.
    pub fn commit(&self, r: Reservation, now: Instant) -> Result<(), VerifyError> {
        let tag = hmac::sign(&self.key, &message(&r.key, &r.code));
        let mut t = self.tables.lock();
        if t.codes.len() >= MAX_KEYS && !t.codes.contains_key(&r.key) {
            t.sweep(now);
            if t.codes.len() >= MAX_KEYS {
                return Err(VerifyError::Busy);
            }
        }
        let pending = Pending {
            tag,
            expires: now + self.limits.ttl,
            wrong: 0,
        };
        t.codes.insert(r.key, pending);
        Ok(())
    }

    /// Takes back what [`Book::reserve`] charged: the send failed.
    pub fn cancel(&self, r: Reservation) {
        let mut t = self.tables.lock();
        let unsend = |w: Option<&mut VecDeque<Instant>>| {
            if let Some(w) = w {
                if let Some(i) = w.iter().rposition(|at| *at == r.at) {
                    w.remove(i);
                }
            }
        };
        unsend(t.destinations.get_mut(&r.key.destination));
        if let Some(a) = r.address {
            unsend(t.addresses.get_mut(&a));
        }
    }

    /// Uses the code for `key`: right, it is spent; wrong, one try is counted.
    ///
    /// # Errors
    /// [`VerifyError::Invalid`] (wrong, none asked for this key, or spent),
    /// [`VerifyError::Expired`], [`VerifyError::AttemptsExceeded`] (void after
    /// `max_attempts` wrong tries, until it expires).
    pub fn redeem(&self, key: &CodeKey, code: &str, now: Instant) -> Result<(), VerifyError> {
        let mut t = self.tables.lock();
        let Some(p) = t.codes.get_mut(key) else {
            return Err(VerifyError::Invalid(0));
        };
        if p.expires <= now {
            t.codes.remove(key);
            return Err(VerifyError::Expired);
        }
        if p.wrong >= self.limits.max_attempts {
            return Err(VerifyError::AttemptsExceeded);
        }
        if hmac::verify(&self.key, &message(key, code.trim()), p.tag.as_ref()).is_ok() {
            t.codes.remove(key);
            return Ok(());
        }
        p.wrong += 1;
        Err(VerifyError::Invalid(self.limits.max_attempts - p.wrong))
    }

    /// Six random decimal digits, uniformly (rejection sampling over a `u32`).
    fn new_code(&self) -> Result<String, VerifyError> {
        const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b).map_err(|_| VerifyError::Internal)?;
            let v = u32::from_le_bytes(b);
            if v < LIMIT {
                return Ok(format!("{:06}", v % 1_000_000));
            }
        }
    }
}

impl Tables {
    /// Drops expired codes and windows with no send in the last hour.
    fn sweep(&mut self, now: Instant) {
        self.codes.retain(|_, p| p.expires > now);
        self.destinations.retain(|_, w| {
            prune(w, now);
            !w.is_empty()
        });
        self.addresses.retain(|_, w| {
            prune(w, now);
            !w.is_empty()
        });
    }
}

/// Drops the sends older than an hour.
fn prune(w: &mut VecDeque<Instant>, now: Instant) {
    while w.front().is_some_and(|at| *at + HOUR <= now) {
        w.pop_front();
    }
}

/// What is signed: the binding and the code, each field length-prefixed.
fn message(key: &CodeKey, code: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + key.destination.len());
    m.push(key.purpose as u8);
    m.extend_from_slice(&key.owner.to_be_bytes());
    m.extend_from_slice(&(key.destination.len() as u32).to_be_bytes());
    m.extend_from_slice(key.destination.as_bytes());
    m.extend_from_slice(code.as_bytes());
    m
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn book() -> Book {
        Book::new(BookLimits {
            ttl: Duration::from_secs(300),
            max_attempts: 3,
            cooldown: Duration::from_secs(60),
            per_destination: 2,
            per_address: 3,
        })
        .unwrap()
    }

    fn key(purpose: Purpose, to: &str) -> CodeKey {
        CodeKey {
            purpose,
            owner: 0,
            destination: to.into(),
        }
    }

    #[test]
    fn a_code_is_six_digits_spent_once_and_bound_to_its_key() {
        let (b, t0) = (book(), Instant::now());
        let r = b.reserve(key(Purpose::Register, "a@x"), None, t0).unwrap();
        let code = r.code.clone();
        assert!(code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()));
        b.commit(r, t0).unwrap();
        let other = key(Purpose::Reset, "a@x");
        assert!(matches!(
            b.redeem(&other, &code, t0),
            Err(VerifyError::Invalid(_))
        ));
        let to_other = key(Purpose::Register, "b@x");
        assert!(matches!(
            b.redeem(&to_other, &code, t0),
            Err(VerifyError::Invalid(_))
        ));
        let k = key(Purpose::Register, "a@x");
        b.redeem(&k, &code, t0).unwrap();
        assert!(matches!(
            b.redeem(&k, &code, t0),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn wrong_tries_void_a_code_and_time_expires_it() {
        let (b, t0) = (book(), Instant::now());
        let k = key(Purpose::Login, "+1");
        let r = b.reserve(k.clone(), None, t0).unwrap();
        let code = r.code.clone();
        b.commit(r, t0).unwrap();
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for left in [2, 1, 0] {
            assert!(matches!(b.redeem(&k, wrong, t0), Err(VerifyError::Invalid(n)) if n == left));
        }
        assert!(matches!(
            b.redeem(&k, &code, t0),
            Err(VerifyError::AttemptsExceeded)
        ));
        let t1 = t0 + Duration::from_secs(61);
        let r = b.reserve(k.clone(), None, t1).unwrap();
        let code = r.code.clone();
        b.commit(r, t1).unwrap();
        let late = t1 + Duration::from_secs(300);
        assert!(matches!(
            b.redeem(&k, &code, late),
            Err(VerifyError::Expired)
        ));
    }

    #[test]
    fn cooldown_hourly_limits_and_a_cancelled_send_costs_nothing() {
        let (b, t0) = (book(), Instant::now());
        let addr = Some(AddrKey::of([10, 0, 0, 1].into()));
        let k = key(Purpose::Login, "+1");
        let r = b.reserve(k.clone(), addr, t0).unwrap();
        b.cancel(r);
        let r = b.reserve(k.clone(), addr, t0).unwrap();
        b.commit(r, t0).unwrap();
        let soon = t0 + Duration::from_secs(10);
        assert!(
            matches!(b.reserve(k.clone(), addr, soon), Err(VerifyError::Cooldown(d)) if d == Duration::from_secs(50))
        );
        let t1 = t0 + Duration::from_secs(60);
        b.reserve(k.clone(), addr, t1).unwrap();
        let t2 = t0 + Duration::from_secs(120);
        assert!(
            matches!(b.reserve(k.clone(), addr, t2), Err(VerifyError::RateLimited(d)) if d == HOUR - Duration::from_secs(120))
        );
        // The address has one send left; then it is limited whatever the destination.
        b.reserve(key(Purpose::Login, "+2"), addr, t2).unwrap();
        assert!(matches!(
            b.reserve(key(Purpose::Login, "+3"), addr, t2),
            Err(VerifyError::RateLimited(_))
        ));
        assert!(b.reserve(key(Purpose::Login, "+3"), None, t2).is_ok());
        // An hour later the destination may be sent to again.
        assert!(b
            .reserve(k, addr, t0 + HOUR + Duration::from_secs(60))
            .is_ok());
    }
}
