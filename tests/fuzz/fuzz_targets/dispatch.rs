//! libFuzzer target: the server's request dispatch (`feige_tests::fuzz::dispatch`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feige_tests::fuzz::dispatch(data));
