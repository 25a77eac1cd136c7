//! The bridge between the wire protocol and the threshold schemes of `tcrypto`: what a node does with a share to
//! answer a [`Mechanism`], and how a coordinator turns shares into a verified signature.
//!
//! Each algorithm appears here once; the node and coordinator state machines only see `HeldShare` and
//! [`PublicKey`]. A node only signs encodings it builds itself from the mechanism's fields (an RSA
//! [`tcrypto::rsa::MessageEncoding`], never a raw integer).

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use tcrypto::rsa;
use tcrypto::{SessionId, SignerId};

use crate::bundle::ShareBundle;
use crate::wire::{Algorithm, ErrorCode, KeyInfo, Mechanism};

/// Why a node could not produce a share: the code answered on the wire and a detail.
pub(crate) type Refusal = (ErrorCode, String);

/// The RSA message encoding a mechanism asks for; `None` for non-RSA mechanisms.
pub fn rsa_encoding(mechanism: &Mechanism) -> Option<rsa::MessageEncoding> {
    match mechanism {
        Mechanism::RsaPkcs1v15 { hash, digest } => Some(rsa::MessageEncoding::Pkcs1v15 {
            hash: *hash,
            digest: digest.clone(),
        }),
        Mechanism::RsaPkcs1v15DigestInfo { digest_info } => Some(rsa::MessageEncoding::Pkcs1v15DigestInfo {
            digest_info: digest_info.clone(),
        }),
        Mechanism::RsaPss { hash, digest, salt } => Some(rsa::MessageEncoding::Pss {
            hash: *hash,
            digest: digest.clone(),
            salt: salt.clone(),
        }),
        _ => None,
    }
}

fn checked_rsa_encoding(
    pk: &rsa::PublicKeySet,
    mechanism: &Mechanism,
) -> Result<rsa::MessageEncoding, String> {
    let enc =
        rsa_encoding(mechanism).ok_or_else(|| format!("{} is not an RSA mechanism", mechanism.name()))?;
    enc.validate().map_err(|e| e.to_string())?;
    enc.encoded_message(pk.modulus_bits())
        .map_err(|e| e.to_string())?;
    Ok(enc)
}

/// A secret share held by a node, validated against its public key when loaded.
pub(crate) enum HeldShare {
    Rsa(Box<rsa::KeyShare>),
}

impl HeldShare {
    /// Validates a bundle's share against its public description.
    pub(crate) fn from_bundle(bundle: &ShareBundle) -> Result<Self, Refusal> {
        let bad = |d: String| (ErrorCode::BadBundle, d);
        let info = &bundle.info;
        match info.algorithm {
            Algorithm::Rsa => {
                let pk = rsa::PublicKeySet::decode(&info.public).map_err(|e| bad(e.to_string()))?;
                check_info(info, pk.key_id(), pk.threshold(), pk.parties()).map_err(bad)?;
                let share = rsa::KeyShare::decode(&bundle.share).map_err(|e| bad(e.to_string()))?;
                if share.id() != info.signer {
                    return Err(bad("share's signer id differs from the bundle's".into()));
                }
                share.check_against(&pk).map_err(|e| bad(e.to_string()))?;
                Ok(HeldShare::Rsa(Box::new(share)))
            }
            other => Err((
                ErrorCode::Unsupported,
                format!("algorithm {} not available on this node", other.name()),
            )),
        }
    }

    /// The signature share for `mechanism` in request `session`, in the algorithm's encoding; with its proof of
    /// correctness when `proven` (schemes without separate proofs ignore the flag).
    pub(crate) fn sign(
        &self,
        session: &SessionId,
        mechanism: &Mechanism,
        proven: bool,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, Refusal> {
        match self {
            HeldShare::Rsa(share) => {
                let enc = checked_rsa_encoding(share.public_key_set(), mechanism)
                    .map_err(|d| (ErrorCode::BadEncoding, d))?;
                let s = if proven {
                    share.sign_share(session, &enc, rng)
                } else {
                    share.sign_share_unproven(&enc)
                }
                .map_err(|e| (ErrorCode::BadEncoding, e.to_string()))?;
                Ok(s.encode())
            }
        }
    }
}

fn check_info(info: &KeyInfo, key: tcrypto::KeyId, k: u16, n: u16) -> Result<(), String> {
    if key != info.key {
        return Err("key id does not match the public key".into());
    }
    if k != info.threshold || n != info.parties {
        return Err("threshold or party count does not match the public key".into());
    }
    Ok(())
}

/// Public key material of a threshold key, as a coordinator knows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PublicKey {
    /// Shoup threshold RSA.
    Rsa(Box<rsa::PublicKeySet>),
}

/// A verified signature and the signers found misbehaving on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The signature, in the algorithm's standard format (RSA: `|N|` bytes; ECDSA: DER; Ed25519: 64 bytes).
    pub signature: Vec<u8>,
    /// Signers whose shares were rejected.
    pub culprits: Vec<SignerId>,
}

/// Why shares could not be combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CombineFailure {
    /// These signers sent bad shares; ask others.
    Culprits(Vec<SignerId>),
    /// The request itself cannot be signed with this key (bad encoding); nobody misbehaved.
    BadRequest(String),
}

impl PublicKey {
    /// Parses the public part of a [`KeyInfo`].
    pub fn from_info(info: &KeyInfo) -> Result<Self, String> {
        match info.algorithm {
            Algorithm::Rsa => {
                let pk = rsa::PublicKeySet::decode(&info.public).map_err(|e| e.to_string())?;
                check_info(info, pk.key_id(), pk.threshold(), pk.parties())?;
                Ok(PublicKey::Rsa(Box::new(pk)))
            }
            other => Err(format!("algorithm {} not available", other.name())),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa(_) => Algorithm::Rsa,
        }
    }

    /// The RSA public key set, for RSA keys.
    pub fn as_rsa(&self) -> Option<&rsa::PublicKeySet> {
        match self {
            PublicKey::Rsa(pk) => Some(pk),
        }
    }

    /// Checks a mechanism can be used with this key before any node is asked.
    pub fn check_mechanism(&self, mechanism: &Mechanism) -> Result<(), String> {
        match self {
            PublicKey::Rsa(pk) => checked_rsa_encoding(pk, mechanism).map(|_| ()),
        }
    }

    /// Combines the shares (keyed by the sender's id from the authenticated channel) and verifies the result.
    pub fn combine(
        &self,
        session: &SessionId,
        mechanism: &Mechanism,
        shares: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Combined, CombineFailure> {
        match self {
            PublicKey::Rsa(pk) => {
                let enc = checked_rsa_encoding(pk, mechanism).map_err(CombineFailure::BadRequest)?;
                match rsa::combine_encoded(pk, session, &enc, shares) {
                    Ok(c) => {
                        // Released only because it verifies; check again with the public key for defence in depth.
                        pk.verify(&enc, &c.signature)
                            .map_err(|e| CombineFailure::BadRequest(e.to_string()))?;
                        Ok(Combined {
                            signature: c.signature,
                            culprits: c.culprits,
                        })
                    }
                    Err(rsa::Error::Culprits { culprits, .. }) => Err(CombineFailure::Culprits(culprits)),
                    Err(e) => Err(CombineFailure::BadRequest(e.to_string())),
                }
            }
        }
    }
}

/// One bundle per share of an RSA key dealt by a trusted dealer or a key ceremony, in signer order.
pub fn rsa_bundles(pk: &rsa::PublicKeySet, shares: &[rsa::KeyShare]) -> Vec<ShareBundle> {
    shares
        .iter()
        .map(|s| ShareBundle {
            info: KeyInfo {
                key: pk.key_id(),
                algorithm: Algorithm::Rsa,
                signer: s.id(),
                threshold: pk.threshold(),
                parties: pk.parties(),
                public: pk.encode(),
            },
            share: s.encode(),
        })
        .collect()
}
