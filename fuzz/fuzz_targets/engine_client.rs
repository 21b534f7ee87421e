//! Fuzz target: see `rssl_fuzz::engine_client`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rssl_fuzz::engine_client(data));
