//! Fuzzes `tcrypto::dkg::KeyShare::decode` and `PublicKeySet::decode` (both curves): never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::dkg::{Ed25519, KeyShare, P256, PublicKeySet};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = KeyShare::<P256>::decode(data) {
        assert_eq!(&v.encode()[..], data, "decode/encode round trip");
    }
    if let Ok(v) = KeyShare::<Ed25519>::decode(data) {
        assert_eq!(&v.encode()[..], data, "decode/encode round trip");
    }
    if let Ok(v) = PublicKeySet::<P256>::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
    if let Ok(v) = PublicKeySet::<Ed25519>::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
