//! The fuzz targets of `tests/fuzz/` on the stable toolchain: replay the committed corpus, then
//! mutate it for `FEIGE_FUZZ_SECS` seconds per target (default 3; CI runs 60). A failing input
//! is saved under `target/fuzz-failures/`. `FEIGE_FUZZ_SEED` repeats a run's mutations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_tests::fuzz;

fn secs() -> f64 {
    std::env::var("FEIGE_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0)
}

fn seed() -> u64 {
    std::env::var("FEIGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn run(name: &str, target: fn(&[u8])) {
    let seed = seed();
    let stats = fuzz::run_stable(name, &fuzz::corpus_dir(name), secs(), seed, target);
    eprintln!(
        "fuzz {name}: {} corpus files, {} execs, seed {seed}, 0 crashes",
        stats.corpus, stats.execs
    );
}

#[test]
fn frame_corpus_and_mutations() {
    run("frame", fuzz::frame);
}

#[test]
fn dispatch_corpus_and_mutations() {
    run("dispatch", fuzz::dispatch);
}

/// The hand-made seeds are in the committed corpus (`FEIGE_FUZZ_WRITE_SEEDS=1` writes them).
#[test]
fn seeds_are_committed() {
    let write = std::env::var_os("FEIGE_FUZZ_WRITE_SEEDS").is_some();
    for (target, seeds) in [
        ("frame", fuzz::frame_seeds()),
        ("dispatch", fuzz::dispatch_seeds()),
    ] {
        let dir = fuzz::corpus_dir(target);
        for (name, bytes) in seeds {
            let path = dir.join(format!("seed-{name}"));
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            let committed = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (FEIGE_FUZZ_WRITE_SEEDS=1)", path.display()));
            assert_eq!(committed, bytes, "{} is stale", path.display());
        }
    }
}
