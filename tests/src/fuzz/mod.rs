//! Fuzz targets, shared by the libFuzzer binaries in `tests/fuzz/` and the stable runner
//! `tests/fuzz_smoke.rs` (corpus replay plus [`Mutator`] mutations for a bounded time).
//!
//! - [`frame`]: `frame::check` / `frame::decode` over arbitrary byte streams.
//! - [`dispatch`]: one request of any kind, in any connection state, against a real in-process
//!   server; afterwards the server must still answer a Ping on a fresh connection.

mod frames;
mod inputs;
mod requests;
mod runner;

pub use frames::{frame, frame_seeds};
pub use inputs::{dispatch_input, dispatch_seeds, ConnState};
pub use requests::dispatch;
pub use runner::{corpus_dir, run_stable, Mutator, Rng, RunStats};
