//! Fuzzes `tcrypto::dkg::round2::Share::decode` (both curves): never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::dkg::{Ed25519, Message, P256, round2::Share};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Share::<P256>::decode(data) {
        assert_eq!(Message::encode(&v), data, "decode/encode round trip");
    }
    if let Ok(v) = Share::<Ed25519>::decode(data) {
        assert_eq!(Message::encode(&v), data, "decode/encode round trip");
    }
});
