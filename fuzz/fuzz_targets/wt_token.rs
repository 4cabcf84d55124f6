#![no_main]
// Properties asserted: see napi_h3::fuzz_checks::wt_token.
libfuzzer_sys::fuzz_target!(|data: &[u8]| napi_h3::fuzz_checks::wt_token(data));
