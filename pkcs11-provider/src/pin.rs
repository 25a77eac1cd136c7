//! PIN storage: Argon2id (RFC 9106) PHC strings; the PIN itself is never stored.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

/// Hashes a PIN with Argon2id (default parameters: 19 MiB, 2 passes) and a fresh random salt.
pub fn hash_pin(pin: &[u8]) -> Result<String> {
    Argon2::default()
        .hash_password(pin)
        .map(|h| h.to_string())
        .map_err(|_| Error::Random)
}

/// Checks a PIN against a stored PHC string; a malformed stored string counts as a mismatch.
pub fn verify_pin(stored: &str, pin: &[u8]) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default().verify_password(pin, &h).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_hash_is_argon2id_and_verifies_only_the_right_pin() {
        let h = hash_pin(b"1234").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("1234"));
        assert!(verify_pin(&h, b"1234"));
        assert!(!verify_pin(&h, b"1235"));
        assert!(!verify_pin("garbage", b"1234"));
    }
}
