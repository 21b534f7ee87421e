//! Fuzz target: see `rssl_fuzz::c_config_builder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rssl_fuzz::c_config_builder(data));
