//! Feige's benchmarks. The load harness is the `feige-bench` binary of `feige-tools`
//! (`tools/src/bench/`); the scripts that start the servers and run it are in
//! `benches/scripts/`; this crate holds the criterion micro-benchmarks (`benches/benches/`).
