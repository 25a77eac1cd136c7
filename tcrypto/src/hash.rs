//! The hash functions that signature mechanisms name, shared by every algorithm.

use sha2::Digest as _;

use crate::codec::{DecodeError, Reader, Writer};

/// A hash function named by a signing mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-1 (legacy; only for verifying or for PKCS#1 v1.5 where a caller insists).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Every supported hash, in wire-code order.
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// Length of the digest in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The one-byte wire code.
    pub const fn code(self) -> u8 {
        match self {
            HashAlg::Sha1 => 1,
            HashAlg::Sha224 => 2,
            HashAlg::Sha256 => 3,
            HashAlg::Sha384 => 4,
            HashAlg::Sha512 => 5,
        }
    }

    /// Parses a wire code.
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        Self::ALL
            .into_iter()
            .find(|h| h.code() == code)
            .ok_or(DecodeError::Invalid("unknown hash algorithm"))
    }

    /// Appends the wire code.
    pub fn encode(self, w: &mut Writer) {
        w.u8(self.code());
    }

    /// Reads a wire code.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::from_code(r.u8()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_lengths_match_digests() {
        for h in HashAlg::ALL {
            assert_eq!(HashAlg::from_code(h.code()).unwrap(), h);
            assert_eq!(h.digest(b"abc").len(), h.output_len());
        }
        assert!(HashAlg::from_code(0).is_err());
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(HashAlg::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
