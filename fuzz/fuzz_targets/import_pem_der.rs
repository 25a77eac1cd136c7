//! Fuzzes the PEM and DER private-key readers of `tcrypto::import` (`parse`, `parse_pem`, `parse_der`): never
//! panic; what parses has a public key in both encodings, and the guessing entry point agrees with the explicit one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::import;

fuzz_target!(|data: &[u8]| {
    let explicit = match core::str::from_utf8(data) {
        Ok(text) if text.contains("-----BEGIN ") => import::parse_pem(text),
        _ => import::parse_der(data),
    };
    let guessed = import::parse(data);
    if let Ok(key) = explicit {
        let dnskey = key.dnskey_public_key();
        assert!(!dnskey.is_empty());
        assert!(key.public_key_spki_der().is_ok(), "a parsed key has an SPKI encoding");
        if !data.starts_with(b"Private-key-format:") {
            let again = guessed.expect("parse() reads what parse_pem/parse_der read");
            assert_eq!(again.dnskey_public_key(), dnskey);
        }
    }
});
