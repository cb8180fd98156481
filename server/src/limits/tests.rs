//! The abuse limits' tests: connection slots, per-address keys, rates and delays.

use super::*;
use std::sync::Arc;

fn config() -> Config {
    Config {
        login_free_failures: 2,
        login_free_failures_per_addr: 4,
        login_backoff_base_ms: 1000,
        login_backoff_max_ms: 4000,
        login_failure_window_ms: 60_000,
        registrations_per_hour: 2,
        send_rate: 10,
        send_burst: 3,
        max_connections_per_addr: 2,
        max_connections_per_user: 1,
        ..Config::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn login_backoff_grows_caps_and_resets_on_success() {
    let l = Limits::new(&config());
    let a = ip("10.0.0.1");
    let now = Instant::now;
    for _ in 0..2 {
        assert!(l.login_allowed("Alice", a, now()).is_ok());
        l.login_failed("alice", a, now());
    }
    assert!(l.login_allowed("alice", a, now()).is_ok(), "2 are free");
    l.login_failed("alice", a, now());
    assert_eq!(
        l.login_allowed(" ALICE ", a, now()),
        Err(Duration::from_secs(1))
    );
    assert!(l.login_allowed("bob", ip("10.0.0.2"), now()).is_ok());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(l.login_allowed("alice", a, now()).is_ok());
    l.login_failed("alice", a, now());
    assert_eq!(
        l.login_allowed("alice", a, now()),
        Err(Duration::from_secs(2))
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    // The address has had 4 free failures; the 5th locks it too, for any name.
    l.login_failed("alice", a, now());
    assert_eq!(
        l.login_allowed("alice", a, now()),
        Err(Duration::from_secs(4))
    );
    assert_eq!(
        l.login_allowed("carol", a, now()),
        Err(Duration::from_secs(1))
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    l.login_failed("alice", a, now());
    assert_eq!(
        l.login_allowed("alice", a, now()),
        Err(Duration::from_secs(4)),
        "capped at the maximum"
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    l.login_succeeded("alice");
    assert!(l.login_allowed("alice", ip("10.0.0.3"), now()).is_ok());
    l.login_failed("alice", ip("10.0.0.3"), now());
    assert!(
        l.login_allowed("alice", ip("10.0.0.3"), now()).is_ok(),
        "the count started again"
    );
}

#[tokio::test(start_paused = true)]
async fn failure_counts_are_forgotten_and_swept() {
    let l = Limits::new(&config());
    let a = ip("10.0.0.1");
    for i in 0..50 {
        l.login_failed(&format!("user{i}"), a, Instant::now());
    }
    assert_eq!(l.login_accounts.map.len(), 50);
    tokio::time::advance(Duration::from_secs(59)).await;
    l.sweep(Instant::now());
    assert_eq!(l.login_accounts.map.len(), 50, "still within the window");
    tokio::time::advance(Duration::from_secs(5)).await;
    l.sweep(Instant::now());
    assert_eq!(l.login_accounts.map.len(), 0);
    assert_eq!(l.login_addrs.map.len(), 0);
    // An old count does not carry into a failure after the window.
    l.login_failed("x", a, Instant::now());
    l.login_failed("x", a, Instant::now());
    tokio::time::advance(Duration::from_secs(61)).await;
    l.login_failed("x", a, Instant::now());
    assert!(l.login_allowed("x", a, Instant::now()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn buckets_refill_and_are_swept_when_full() {
    let l = Limits::new(&config());
    let a = ip("10.0.0.1");
    let now = Instant::now;
    assert!(l.register(a, now()).is_ok());
    assert!(l.register(a, now()).is_ok());
    let wait = l.register(a, now()).unwrap_err().as_secs_f64();
    assert!((wait - 1800.0).abs() < 0.001, "{wait}");
    assert!(l.register(ip("10.0.0.2"), now()).is_ok());
    tokio::time::advance(Duration::from_secs(1800)).await;
    assert!(l.register(a, now()).is_ok());
    assert!(l.register(a, now()).is_err());

    for _ in 0..3 {
        assert!(l.send(7, a, now()).is_ok());
    }
    assert_eq!(l.send(7, a, now()), Err(Duration::from_millis(100)));
    assert!(l.send(8, a, now()).is_ok(), "per user");
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(l.send(7, a, now()).is_ok());
    tokio::time::advance(Duration::from_secs(3600)).await;
    l.sweep(now());
    assert_eq!(l.registrations.map.len(), 0);
    assert_eq!(l.sends.map.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_table_takes_no_new_keys() {
    let l = Limits::new(&config());
    let now = Instant::now();
    for i in 0..MAX_ENTRIES as u64 + 10 {
        let _ = l.send(i, ip("10.0.0.1"), now);
    }
    assert_eq!(l.sends.map.len(), MAX_ENTRIES);
}

#[test]
fn trusted_addresses_are_exempt() {
    let c = Config {
        trusted_addrs: vec![ip("127.0.0.1")],
        ..config()
    };
    let l = Arc::new(Limits::new(&c));
    let now = Instant::now();
    for _ in 0..10 {
        l.login_failed("a", ip("127.0.0.1"), now);
        assert!(l.register(ip("::ffff:127.0.0.1"), now).is_ok());
        assert!(l.send(1, ip("127.0.0.1"), now).is_ok());
    }
    assert!(l.login_allowed("a", ip("127.0.0.1"), now).is_ok());
    let slots: Vec<_> = (0..10).map(|_| l.connect(ip("127.0.0.1"))).collect();
    assert!(slots.iter().all(Option::is_some));
    assert!(l.user_connection_allowed(ip("127.0.0.1"), 5));
    assert!(!l.user_connection_allowed(ip("127.0.0.2"), 1));
}

#[test]
fn connections_per_address_are_counted_and_given_back() {
    let l = Arc::new(Limits::new(&config()));
    let a = ip("2001:db8::1");
    let s1 = l.connect(a).unwrap();
    let _s2 = l.connect(ip("2001:db8::2")).unwrap();
    assert!(l.connect(a).is_none(), "the same /64");
    assert!(l.connect(ip("2001:db8:0:1::1")).is_some());
    drop(s1);
    assert!(l.connect(a).is_some());
}

#[test]
fn address_keys_tell_v4_from_v6_networks() {
    assert_eq!(
        AddrKey::of(ip("10.0.0.1")),
        AddrKey::of(ip("::ffff:10.0.0.1"))
    );
    assert_ne!(AddrKey::of(ip("10.0.0.1")), AddrKey::of(ip("10.0.0.2")));
    assert_eq!(
        AddrKey::of(ip("2001:db8::1")),
        AddrKey::of(ip("2001:db8::ffff"))
    );
    assert_ne!(
        AddrKey::of(ip("2001:db8::1")),
        AddrKey::of(ip("2001:db8:0:1::1"))
    );
    // An IPv6 network whose upper 64 bits equal an IPv4 address's key stays apart.
    assert_ne!(AddrKey::of(ip("0:0:a00:1::")), AddrKey::of(ip("10.0.0.1")));
}

/// A slot is part of every connection's task: no wider than two words and a pointer, and
/// aligned like a pointer (a 16-byte alignment would pad the whole task).
#[test]
fn a_connection_slot_is_small() {
    assert_eq!(std::mem::size_of::<AddrSlot>(), 24);
    assert_eq!(std::mem::align_of::<AddrSlot>(), 8);
}

#[test]
fn max_connections_follows_the_fd_limit() {
    assert_eq!(connections_for_fd_limit(1024), 768);
    assert_eq!(connections_for_fd_limit(1_048_576), 1_048_320);
    assert_eq!(connections_for_fd_limit(100), 16);
}

#[test]
fn backoff_delays_double_up_to_the_cap() {
    let r = BackoffRule {
        free: 5,
        base: Duration::from_secs(1),
        max: Duration::from_secs(300),
        window: Duration::from_secs(3600),
    };
    let d: Vec<u64> = (1..=16).map(|n| r.delay(n).as_secs()).collect();
    assert_eq!(
        d,
        [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    );
    assert_eq!(r.delay(u32::MAX), Duration::from_secs(300));
}
