//! Fuzzes `tcrypto::reshare::round1::SubShare::decode` (both curves): never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::dkg::{Ed25519, Message, P256};
use tcrypto::reshare::round1::SubShare;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = SubShare::<P256>::decode(data) {
        assert_eq!(Message::encode(&v), data, "decode/encode round trip");
    }
    if let Ok(v) = SubShare::<Ed25519>::decode(data) {
        assert_eq!(Message::encode(&v), data, "decode/encode round trip");
    }
});
