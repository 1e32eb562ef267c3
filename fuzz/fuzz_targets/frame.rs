//! Frame decoder + request validation on arbitrary bytes. Run: `cargo +nightly fuzz run frame`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ltx_protocol::decode_and_validate(data);
});
