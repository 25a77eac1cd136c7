//! Fuzzes `tcrypto::rsa::SignatureShare::decode`: never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::rsa::SignatureShare;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = SignatureShare::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
