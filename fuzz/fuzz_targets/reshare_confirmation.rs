//! Fuzzes `tcrypto::reshare::round4::Confirmation::decode` (both curves): never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::dkg::{Ed25519, Message as _, P256};
use tcrypto::reshare::round4::Confirmation;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Confirmation::<P256>::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
    if let Ok(v) = Confirmation::<Ed25519>::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
