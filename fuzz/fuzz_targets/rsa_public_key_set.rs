//! Fuzzes `tcrypto::rsa::PublicKeySet::decode`: never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::rsa::PublicKeySet;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = PublicKeySet::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
