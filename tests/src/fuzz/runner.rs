//! The stable runner: corpus replay plus bounded-time mutations, no nightly toolchain.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A xorshift64* generator: deterministic per seed, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Mutates corpus entries: bit flips, byte sets, interesting values, inserts, deletions,
/// truncation, duplication and splicing with another entry. Keeps inputs under `max_len`.
#[derive(Debug)]
pub struct Mutator {
    /// Its random source.
    pub rng: Rng,
    /// Longest input produced.
    pub max_len: usize,
}

impl Mutator {
    /// One to four mutations of `base`, splicing from `corpus` sometimes.
    pub fn mutate(&mut self, base: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
        let mut v = base.to_vec();
        let rounds = 1 + self.rng.below(4);
        for _ in 0..rounds {
            let len = v.len();
            match self.rng.below(9) {
                0 if len > 0 => {
                    let i = self.rng.below(len);
                    v[i] ^= 1 << self.rng.below(8);
                }
                1 if len > 0 => {
                    let i = self.rng.below(len);
                    v[i] = self.rng.next_u64() as u8;
                }
                2 if len > 0 => {
                    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08];
                    let i = self.rng.below(len);
                    v[i] = INTERESTING[self.rng.below(INTERESTING.len())];
                }
                3 => {
                    let i = self.rng.below(len + 1);
                    let n = 1 + self.rng.below(8);
                    let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                    v.splice(i..i, bytes);
                }
                4 if len > 1 => {
                    let i = self.rng.below(len);
                    let n = 1 + self.rng.below((len - i).min(16));
                    v.drain(i..i + n);
                }
                5 if len > 1 => v.truncate(self.rng.below(len)),
                6 if len > 0 => {
                    let i = self.rng.below(len);
                    let n = 1 + self.rng.below((len - i).min(64));
                    let at = self.rng.below(len + 1);
                    let copy = v[i..i + n].to_vec();
                    v.splice(at..at, copy);
                }
                7 if !corpus.is_empty() => {
                    let other = &corpus[self.rng.below(corpus.len())];
                    let cut = self.rng.below(len + 1);
                    let from = self.rng.below(other.len() + 1);
                    v.truncate(cut);
                    v.extend_from_slice(&other[from..]);
                }
                _ if len > 4 => {
                    // A length-looking big-endian u32 somewhere: the framing's edge cases.
                    let i = self.rng.below(len - 3);
                    let n = match self.rng.below(4) {
                        0 => 0u32,
                        1 => self.rng.below(64) as u32,
                        2 => u32::MAX,
                        _ => (len - i) as u32,
                    };
                    v[i..i + 4].copy_from_slice(&n.to_be_bytes());
                }
                _ => v.push(self.rng.next_u64() as u8),
            }
        }
        v.truncate(self.max_len);
        v
    }
}

/// The committed corpus of `target`: `tests/fuzz/corpus/<target>/`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// What a stable run did.
#[derive(Debug)]
pub struct RunStats {
    /// Corpus files replayed.
    pub corpus: usize,
    /// Inputs run in all (corpus and mutations).
    pub execs: u64,
}

/// Replays every file of `dir`, then runs mutations of them until `secs` have passed. An input
/// that makes `target` panic is written to `target/fuzz-failures/` and printed in hex before the
/// panic goes on.
///
/// # Panics
/// When `target` panics on an input, or `dir` holds no file.
pub fn run_stable(name: &str, dir: &Path, secs: f64, seed: u64, target: fn(&[u8])) -> RunStats {
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for p in &entries {
        corpus.push(std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())));
    }
    assert!(!corpus.is_empty(), "empty corpus in {}", dir.display());
    let run_one = |input: &[u8], origin: &str| {
        if let Err(panic) = std::panic::catch_unwind(|| target(input)) {
            let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&out);
            let file = out.join(format!("{name}-{:016x}", fnv(input)));
            let _ = std::fs::write(&file, input);
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!(
                "fuzz {name}: failing input ({origin}, seed {seed}) saved as {}: {hex}",
                file.display()
            );
            std::panic::resume_unwind(panic);
        }
    };
    for (p, input) in entries.iter().zip(&corpus) {
        run_one(input, &p.display().to_string());
    }
    let mut execs = corpus.len() as u64;
    let mut m = Mutator {
        rng: Rng::new(seed),
        max_len: 4096,
    };
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        let base = &corpus[m.rng.below(corpus.len())];
        let input = m.mutate(base, &corpus);
        run_one(&input, "mutation");
        execs += 1;
    }
    RunStats {
        corpus: corpus.len(),
        execs,
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutator_stays_bounded() {
        let mut m = Mutator {
            rng: Rng::new(1),
            max_len: 64,
        };
        let corpus = vec![vec![1u8; 40], vec![]];
        for _ in 0..10_000 {
            assert!(m.mutate(&corpus[0], &corpus).len() <= 64);
            let _ = m.mutate(&corpus[1], &corpus);
        }
    }
}
