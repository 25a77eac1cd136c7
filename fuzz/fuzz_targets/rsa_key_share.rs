//! Fuzzes `tcrypto::rsa::KeyShare::decode` (which also checks `v^{s_i} = v_i`): never panics, and whatever decodes
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::rsa::KeyShare;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = KeyShare::decode(data) {
        assert_eq!(v.encode().as_slice(), data, "decode/encode round trip");
    }
});
