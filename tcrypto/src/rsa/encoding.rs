//! Message representatives (RFC 8017): EMSA-PKCS1-v1_5 (§9.2) and EMSA-PSS (§9.1.1) with MGF1 (§B.2.1).
//!
//! A signer is asked to sign a [`MessageEncoding`] (a mechanism and a digest) and builds the encoded message `EM`
//! itself, so no node is ever a raw RSA oracle. PSS salts are chosen by the coordinator and carried in the request,
//! so every signer derives the same `EM`. MGF1 uses the message hash.

use der::Reader as _;

use super::{Error, tag};
use crate::HashAlg;
use crate::codec::{DecodeError, Reader, Writer};

/// Largest PSS salt accepted (bytes).
pub const MAX_SALT_LEN: usize = 1024;

/// Largest caller-supplied DigestInfo accepted (bytes).
pub const MAX_DIGEST_INFO_LEN: usize = 1024;

/// What a signer is asked to sign: the mechanism and the digest (never a raw integer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageEncoding {
    /// EMSA-PKCS1-v1_5 over `digest`; the DigestInfo for `hash` is built by the signer.
    Pkcs1v15 {
        /// Hash function that produced `digest`.
        hash: HashAlg,
        /// The message digest, `hash.output_len()` bytes.
        digest: Vec<u8>,
    },
    /// EMSA-PKCS1-v1_5 with a caller-supplied DER `DigestInfo` (PKCS#11 `CKM_RSA_PKCS`); it must parse as one.
    Pkcs1v15DigestInfo {
        /// A DER `DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }`.
        digest_info: Vec<u8>,
    },
    /// EMSA-PSS with MGF1 over the same hash and a salt chosen by the coordinator.
    Pss {
        /// Hash function of the digest, of `M'` and of MGF1.
        hash: HashAlg,
        /// The message digest `mHash`.
        digest: Vec<u8>,
        /// The salt (any length the modulus leaves room for; usually `hash.output_len()`).
        salt: Vec<u8>,
    },
}

impl MessageEncoding {
    /// PKCS#1 v1.5 over the digest of `message`.
    pub fn pkcs1v15_of(hash: HashAlg, message: &[u8]) -> Self {
        Self::Pkcs1v15 {
            hash,
            digest: hash.digest(message),
        }
    }

    /// PSS over the digest of `message` with `salt`.
    pub fn pss_of(hash: HashAlg, message: &[u8], salt: Vec<u8>) -> Self {
        Self::Pss {
            hash,
            digest: hash.digest(message),
            salt,
        }
    }

    /// Checks the fields: digest lengths, salt length, that a DigestInfo is one.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Pkcs1v15 { hash, digest } | Self::Pss { hash, digest, .. }
                if digest.len() != hash.output_len() =>
            {
                Err(Error::Encoding("digest length does not match the hash"))
            }
            Self::Pss { salt, .. } if salt.len() > MAX_SALT_LEN => Err(Error::Encoding("salt too long")),
            Self::Pkcs1v15DigestInfo { digest_info } => check_digest_info(digest_info),
            _ => Ok(()),
        }
    }

    /// The encoded message `EM` for a modulus of `modulus_bits` bits, left-padded with zeros to the signature length
    /// `ceil(modulus_bits / 8)`; as an integer it is always below the modulus.
    pub fn encoded_message(&self, modulus_bits: usize) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let k = modulus_bits.div_ceil(8);
        match self {
            Self::Pkcs1v15 { hash, digest } => {
                let mut t = digest_info_prefix(*hash).to_vec();
                t.extend_from_slice(digest);
                emsa_pkcs1_v15(&t, k)
            }
            Self::Pkcs1v15DigestInfo { digest_info } => emsa_pkcs1_v15(digest_info, k),
            Self::Pss { hash, digest, salt } => {
                let em_bits = modulus_bits
                    .checked_sub(1)
                    .ok_or(Error::Encoding("modulus too small"))?;
                let em = emsa_pss(*hash, digest, salt, em_bits)?;
                let mut out = vec![0u8; k - em.len()];
                out.extend_from_slice(&em);
                Ok(out)
            }
        }
    }

    /// The strict binary encoding (tag [`tag::MESSAGE_ENCODING`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::MESSAGE_ENCODING);
        self.write(&mut w);
        w.finish()
    }

    /// Appends the fields without a header (for embedding in other messages and hashes).
    pub fn write(&self, w: &mut Writer) {
        match self {
            Self::Pkcs1v15 { hash, digest } => {
                w.u8(1);
                hash.encode(w);
                w.bytes(digest);
            }
            Self::Pkcs1v15DigestInfo { digest_info } => {
                w.u8(2);
                w.bytes(digest_info);
            }
            Self::Pss { hash, digest, salt } => {
                w.u8(3);
                hash.encode(w);
                w.bytes(digest);
                w.bytes(salt);
            }
        }
    }

    /// Reads what [`Self::write`] wrote, validated.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let msg = match r.u8()? {
            1 => Self::Pkcs1v15 {
                hash: HashAlg::decode(r)?,
                digest: r.bytes()?.to_vec(),
            },
            2 => {
                let digest_info = r.bytes()?;
                if digest_info.len() > MAX_DIGEST_INFO_LEN {
                    return Err(Error::Encoding("DigestInfo too long"));
                }
                Self::Pkcs1v15DigestInfo {
                    digest_info: digest_info.to_vec(),
                }
            }
            3 => Self::Pss {
                hash: HashAlg::decode(r)?,
                digest: r.bytes()?.to_vec(),
                salt: r.bytes()?.to_vec(),
            },
            _ => return Err(Error::Decode(DecodeError::Invalid("unknown message encoding"))),
        };
        msg.validate()?;
        Ok(msg)
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::MESSAGE_ENCODING)?;
        let msg = Self::read(&mut r)?;
        r.finish()?;
        Ok(msg)
    }
}

/// The DER prefix of `DigestInfo` for `hash` (RFC 8017 §9.2, note 1), followed by the digest.
pub fn digest_info_prefix(hash: HashAlg) -> &'static [u8] {
    match hash {
        HashAlg::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
        ],
        HashAlg::Sha224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05,
            0x00, 0x04, 0x1c,
        ],
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
            0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
            0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
            0x00, 0x04, 0x40,
        ],
    }
}

/// Checks that `bytes` is exactly one DER `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier,
/// digest OCTET STRING }`; when the algorithm is one of ours the digest length must match.
pub fn check_digest_info(bytes: &[u8]) -> Result<(), Error> {
    let not_one = Error::Encoding("not a DER DigestInfo");
    let mut reader = der::SliceReader::new(bytes).map_err(|_| not_one.clone())?;
    let (oid, digest_len) = reader
        .sequence(|r| {
            let alg: spki::AlgorithmIdentifierRef<'_> = r.decode()?;
            let digest: &der::asn1::OctetStringRef = r.decode()?;
            Ok((alg.oid, digest.as_bytes().len()))
        })
        .map_err(|_: der::Error| not_one.clone())?;
    reader.finish().map_err(|_| not_one)?;
    for hash in HashAlg::ALL {
        let prefix = digest_info_prefix(hash);
        // The OID of `hash` sits in the prefix after the two SEQUENCE headers and the OID header.
        let oid_bytes = &prefix[6..6 + usize::from(prefix[5])];
        if oid.as_bytes() == oid_bytes && digest_len != hash.output_len() {
            return Err(Error::Encoding(
                "DigestInfo digest length does not match its algorithm",
            ));
        }
    }
    Ok(())
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2 steps 3–5): `0x00 || 0x01 || PS (0xff…) || 0x00 || T`, `k` bytes, `|PS| >= 8`.
fn emsa_pkcs1_v15(t: &[u8], k: usize) -> Result<Vec<u8>, Error> {
    if k < t.len() + 11 {
        return Err(Error::Encoding("modulus too short for this DigestInfo"));
    }
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(k - t.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(t);
    Ok(em)
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with a given salt; `emLen = ceil(emBits / 8)` bytes.
fn emsa_pss(hash: HashAlg, m_hash: &[u8], salt: &[u8], em_bits: usize) -> Result<Vec<u8>, Error> {
    let h_len = hash.output_len();
    let em_len = em_bits.div_ceil(8);
    if em_len < h_len + salt.len() + 2 {
        return Err(Error::Encoding("modulus too short for this digest and salt"));
    }
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(m_hash);
    m_prime.extend_from_slice(salt);
    let h = hash.digest(&m_prime);
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len - salt.len() - 1];
    db.push(0x01);
    db.extend_from_slice(salt);
    let mask = mgf1(hash, &h, db_len);
    for (d, m) in db.iter_mut().zip(mask) {
        *d ^= m;
    }
    let unused = 8 * em_len - em_bits;
    db[0] &= 0xff >> unused;
    let mut em = db;
    em.extend_from_slice(&h);
    em.push(0xbc);
    Ok(em)
}

/// MGF1 (RFC 8017 §B.2.1).
fn mgf1(hash: HashAlg, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut input = seed.to_vec();
    input.extend_from_slice(&[0; 4]);
    let mut counter: u32 = 0;
    while out.len() < len {
        let at = input.len() - 4;
        input[at..].copy_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&hash.digest(&input));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_prefixes_parse_as_digest_info() {
        for hash in HashAlg::ALL {
            let mut di = digest_info_prefix(hash).to_vec();
            di.extend(hash.digest(b"x"));
            MessageEncoding::Pkcs1v15DigestInfo { digest_info: di }
                .validate()
                .unwrap();
        }
    }

    #[test]
    fn caller_digest_info_must_be_a_digest_info() {
        let bad = [
            vec![],
            vec![0x04, 0x02, 1, 2],
            {
                let mut di = digest_info_prefix(HashAlg::Sha256).to_vec();
                di.extend([0u8; 32]);
                di.push(0);
                di
            },
            {
                // SHA-256 OID with a 20-byte digest.
                let mut di = digest_info_prefix(HashAlg::Sha256).to_vec();
                di[1] = 0x25;
                di[18] = 0x14;
                di.extend([0u8; 20]);
                di
            },
        ];
        for b in bad {
            assert!(
                MessageEncoding::Pkcs1v15DigestInfo { digest_info: b }
                    .validate()
                    .is_err()
            );
        }
    }

    #[test]
    fn pkcs1_encoded_message_has_the_rfc_layout() {
        let em = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"abc")
            .encoded_message(1024)
            .unwrap();
        assert_eq!(em.len(), 128);
        assert_eq!(&em[..2], &[0, 1]);
        assert!(em[2..128 - 52].iter().all(|&b| b == 0xff));
        assert_eq!(em[128 - 52], 0);
        assert_eq!(&em[128 - 32..], HashAlg::Sha256.digest(b"abc").as_slice());
    }

    #[test]
    fn pss_clears_the_top_bit_and_ends_with_bc() {
        for bits in [1024usize, 1025, 1031, 1032] {
            let em = MessageEncoding::pss_of(HashAlg::Sha256, b"abc", vec![7; 32])
                .encoded_message(bits)
                .unwrap();
            assert_eq!(em.len(), bits.div_ceil(8));
            assert_eq!(*em.last().unwrap(), 0xbc);
            let value_bits = em.len() * 8
                - em.iter().position(|&b| b != 0).unwrap() * 8
                - em.iter().find(|&&b| b != 0).unwrap().leading_zeros() as usize;
            assert!(value_bits < bits);
        }
    }

    #[test]
    fn too_small_modulus_is_an_error() {
        assert!(
            MessageEncoding::pkcs1v15_of(HashAlg::Sha512, b"abc")
                .encoded_message(512)
                .is_err()
        );
        assert!(
            MessageEncoding::pss_of(HashAlg::Sha512, b"abc", vec![0; 64])
                .encoded_message(1024)
                .is_err()
        );
    }

    #[test]
    fn encoding_round_trips_and_rejects_wrong_digest_length() {
        for m in [
            MessageEncoding::pkcs1v15_of(HashAlg::Sha384, b"m"),
            MessageEncoding::pss_of(HashAlg::Sha512, b"m", vec![1, 2, 3]),
            MessageEncoding::Pkcs1v15DigestInfo {
                digest_info: [digest_info_prefix(HashAlg::Sha1), &[9u8; 20][..]].concat(),
            },
        ] {
            assert_eq!(MessageEncoding::decode(&m.encode()).unwrap(), m);
        }
        let bad = MessageEncoding::Pkcs1v15 {
            hash: HashAlg::Sha256,
            digest: vec![0; 31],
        };
        assert!(MessageEncoding::decode(&bad.encode()).is_err());
    }
}
