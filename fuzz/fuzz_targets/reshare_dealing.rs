//! Fuzzes `tcrypto::reshare::round1::Dealing::decode` (both curves): never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::dkg::{Ed25519, Message as _, P256};
use tcrypto::reshare::round1::Dealing;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Dealing::<P256>::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
    if let Ok(v) = Dealing::<Ed25519>::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
