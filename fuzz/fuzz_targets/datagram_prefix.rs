#![no_main]
// Properties asserted: see napi_h3::fuzz_checks::datagram_prefix.
libfuzzer_sys::fuzz_target!(|data: &[u8]| napi_h3::fuzz_checks::datagram_prefix(data));
