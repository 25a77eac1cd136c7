//! Fuzzes the BIND / ldns `.private` reader (`tcrypto::import::parse_bind_private`): never panics; what parses is
//! one of the four algorithms with the matching key type, and `parse` reads it the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::import::{self, KeyAlgorithm};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = import::parse_bind_private(text) {
        let expected = match parsed.algorithm {
            8 | 10 => KeyAlgorithm::Rsa,
            13 => KeyAlgorithm::P256,
            15 => KeyAlgorithm::Ed25519,
            other => panic!("algorithm {other} accepted"),
        };
        assert_eq!(parsed.key.algorithm(), expected);
        assert!(matches!(parsed.format, (1, 2) | (1, 3)));
        if data.starts_with(b"Private-key-format:") {
            let again = import::parse(data).expect("parse() reads a .private file");
            assert_eq!(again.dnskey_public_key(), parsed.key.dnskey_public_key());
        }
    }
});
