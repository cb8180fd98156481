//! libFuzzer target: the frame codec (`feige_tests::fuzz::frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feige_tests::fuzz::frame(data));
