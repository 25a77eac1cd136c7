//! Fuzzes `tcrypto::rsa::reshare::SubShare::decode`: never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::rsa::reshare::SubShare;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = SubShare::decode(data) {
        assert_eq!(v.encode().to_vec(), data, "decode/encode round trip");
    }
});
