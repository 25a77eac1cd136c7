//! Fuzzes `tcrypto::ed25519::KeyShare::decode` and `PublicKeySet::decode`: never panics, and whatever decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::ed25519::{KeyShare, PublicKeySet};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = KeyShare::decode(data) {
        assert_eq!(&v.encode()[..], data, "decode/encode round trip");
    }
    if let Ok(v) = PublicKeySet::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
    }
});
