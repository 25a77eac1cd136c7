//! Fuzzes `tcrypto::rsa::reshare::Verdict::decode`: never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::rsa::reshare::Verdict;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Verdict::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
