//! How much one grab takes: the equal split, or the double-mean random split. Each grab
//! takes at least one cent and leaves at least one cent for every share still to come, and
//! the last share takes what is left, so the shares always sum to the total.

use ring::rand::SecureRandom;

/// How a packet's total is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Double-mean: each grab takes a uniform amount in [1, 2 × the mean of what is left].
    Random,
    /// Equal shares: what is left divided by the shares left (so they differ by a cent at
    /// most).
    Equal,
}

impl Mode {
    /// The stored (and wire) number: 0 random, 1 equal.
    pub fn code(self) -> i64 {
        match self {
            Mode::Random => 0,
            Mode::Equal => 1,
        }
    }

    /// The mode of a stored number (unknown numbers read as random).
    pub fn from_code(code: i64) -> Mode {
        if code == 1 {
            Mode::Equal
        } else {
            Mode::Random
        }
    }
}

/// The next share of a packet holding `left` cents for `shares` shares (`left >= shares >=
/// 1`); `uniform(n)` returns a uniform number in `[0, n)`.
pub fn next_share(mode: Mode, left: u64, shares: u64, uniform: impl FnOnce(u64) -> u64) -> u64 {
    if shares <= 1 {
        return left;
    }
    // Every later share needs one cent.
    let most = left.saturating_sub(shares - 1).max(1);
    match mode {
        Mode::Equal => (left / shares).clamp(1, most),
        Mode::Random => {
            let double_mean = (left / shares).saturating_mul(2).clamp(1, most);
            1 + uniform(double_mean).min(double_mean - 1)
        }
    }
}

/// A uniform number in `[0, n)` from the system's secure generator (rejection sampling, so no
/// value is favoured); 0 when `n <= 1` or the generator fails.
pub fn uniform(rng: &dyn SecureRandom, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let mut b = [0u8; 8];
        if rng.fill(&mut b).is_err() {
            return 0;
        }
        let v = u64::from_le_bytes(b);
        if v < zone {
            return v % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mode: Mode, total: u64, count: u64) -> Vec<u64> {
        let rng = ring::rand::SystemRandom::new();
        let (mut left, mut out) = (total, Vec::new());
        for k in (1..=count).rev() {
            let s = next_share(mode, left, k, |n| uniform(&rng, n));
            out.push(s);
            left -= s;
        }
        out
    }

    #[test]
    fn shares_sum_to_the_total_and_are_at_least_a_cent() {
        for (total, count) in [
            (100, 100),
            (101, 100),
            (1000, 3),
            (1, 1),
            (7, 2),
            (1_000_000, 1000),
        ] {
            for mode in [Mode::Random, Mode::Equal] {
                let s = split(mode, total, count);
                assert_eq!(s.len() as u64, count);
                assert_eq!(s.iter().sum::<u64>(), total, "{mode:?} {total}/{count}");
                assert!(s.iter().all(|&x| x >= 1), "{mode:?} {s:?}");
            }
        }
        assert_eq!(split(Mode::Equal, 100, 3), vec![33, 33, 34]);
    }

    #[test]
    fn random_shares_stay_within_twice_the_mean_and_vary() {
        let s = split(Mode::Random, 10_000, 10);
        // The first grab's bound: twice the mean of the whole.
        assert!(s[0] <= 2_000);
        let mut distinct = s.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 1,
            "a random split of 10,000 into 10 varies: {s:?}"
        );
        // The extremes of the uniform draw.
        assert_eq!(next_share(Mode::Random, 100, 10, |_| 0), 1);
        assert_eq!(next_share(Mode::Random, 100, 10, |n| n - 1), 20);
        assert_eq!(
            next_share(Mode::Random, 10, 10, |n| n - 1),
            1,
            "one cent each"
        );
    }

    #[test]
    fn uniform_covers_its_range() {
        let rng = ring::rand::SystemRandom::new();
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[uniform(&rng, 4) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(uniform(&rng, 1), 0);
    }
}
