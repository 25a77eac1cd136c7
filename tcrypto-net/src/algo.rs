//! The bridge between the wire protocol and the threshold schemes of `tcrypto`: what a node does with a share to
//! answer a [`Mechanism`], and how a coordinator turns shares into a verified signature.
//!
//! Each algorithm appears here once; the node and coordinator state machines only see `HeldShare` and
//! [`PublicKey`]. A node only signs encodings it builds itself from the mechanism's fields (an RSA
//! [`tcrypto::rsa::MessageEncoding`], never a raw integer).

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};
use tcrypto::dkg::{self, P256};
use tcrypto::{KeyId, SessionId, SignerId};
use tcrypto::{ecdsa, ed25519, rsa};

use crate::transport::bundle::ShareBundle;
use crate::transport::wire::{Algorithm, ErrorCode, KeyInfo, Mechanism};

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
    Ecdsa(Box<ecdsa::KeyShare>),
    Ed25519(Box<ed25519::KeyShare>),
}

impl HeldShare {
    /// Validates a bundle's share against its public description.
    pub(crate) fn from_bundle(bundle: &ShareBundle) -> Result<Self, Refusal> {
        let bad = |d: String| (ErrorCode::BadBundle, d);
        let info = &bundle.info;
        match info.algorithm {
            Algorithm::Rsa => {
                let pk = rsa::PublicKeySet::decode(&info.public).map_err(|e| bad(e.to_string()))?;
                check_info(info, rsa_name(info, &pk), pk.threshold(), pk.parties()).map_err(bad)?;
                let share = rsa::KeyShare::decode(&bundle.share).map_err(|e| bad(e.to_string()))?;
                if share.id() != info.signer {
                    return Err(bad("share's signer id differs from the bundle's".into()));
                }
                share.check_against(&pk).map_err(|e| bad(e.to_string()))?;
                Ok(HeldShare::Rsa(Box::new(share)))
            }
            Algorithm::EcdsaP256 => {
                let pk = EcdsaPublicKey::decode(&info.public).map_err(bad)?;
                check_info(info, pk.key_id(), pk.set.threshold(), pk.set.parties()).map_err(bad)?;
                let share = ecdsa::KeyShare::decode(&bundle.share).map_err(|e| bad(e.to_string()))?;
                if share.id() != info.signer {
                    return Err(bad("share's signer id differs from the bundle's".into()));
                }
                if share.key_id() != pk.key_id() || share.public_shares() != pk.set.public_shares() {
                    return Err(bad("share does not match the public key set".into()));
                }
                Ok(HeldShare::Ecdsa(Box::new(share)))
            }
            Algorithm::Ed25519 => {
                let pk = ed25519::PublicKeySet::decode(&info.public).map_err(|e| bad(e.to_string()))?;
                check_info(info, ed25519_key_id(&pk), pk.threshold(), pk.parties()).map_err(bad)?;
                let share = ed25519::KeyShare::decode(&bundle.share).map_err(|e| bad(e.to_string()))?;
                if share.id() != info.signer {
                    return Err(bad("share's signer id differs from the bundle's".into()));
                }
                if *share.public() != pk {
                    return Err(bad("share does not match the public key set".into()));
                }
                Ok(HeldShare::Ed25519(Box::new(share)))
            }
        }
    }

    /// The Shoup share, for RSA keys.
    pub(crate) fn as_rsa(&self) -> Option<&rsa::KeyShare> {
        match self {
            HeldShare::Rsa(s) => Some(s),
            _ => None,
        }
    }

    /// The threshold ECDSA share, for ECDSA keys.
    pub(crate) fn as_ecdsa(&self) -> Option<&ecdsa::KeyShare> {
        match self {
            HeldShare::Ecdsa(s) => Some(s),
            _ => None,
        }
    }

    /// The FROST share, for Ed25519 keys.
    pub(crate) fn as_ed25519(&self) -> Option<&ed25519::KeyShare> {
        match self {
            HeldShare::Ed25519(s) => Some(s),
            _ => None,
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
            HeldShare::Ecdsa(_) => Err((
                ErrorCode::Unsupported,
                "ECDSA shares sign with presignatures (presign-*, ecdsa-sign)".into(),
            )),
            HeldShare::Ed25519(_) => Err((
                ErrorCode::Unsupported,
                "Ed25519 shares sign in FROST sessions (frost-commit, frost-sign)".into(),
            )),
        }
    }
}

/// The key id of an Ed25519 key: SHA-256 of its 32-byte RFC 8032 public key (as ECDSA keys use SHA-256 of the
/// compressed SEC1 point).
pub fn ed25519_key_id(pk: &ed25519::PublicKeySet) -> KeyId {
    KeyId(Sha256::digest(pk.public_key_bytes()).into())
}

/// The public part of a threshold P-256 key: the Feldman commitments of the sharing (so every party's public share
/// follows) and the `p256` verifying key.
#[derive(Debug, Clone)]
pub struct EcdsaPublicKey {
    /// The public key set (`tcrypto::dkg` encoding, tag 0x35).
    pub set: dkg::PublicKeySet<P256>,
    /// The group public key as a `p256` verifying key.
    pub verifying: p256::ecdsa::VerifyingKey,
}

impl EcdsaPublicKey {
    /// Wraps a public key set (refuses one whose group key is not a valid verifying key).
    pub fn new(set: dkg::PublicKeySet<P256>) -> Result<Self, String> {
        let verifying = p256::ecdsa::VerifyingKey::from_affine(set.public_key().to_affine())
            .map_err(|e| e.to_string())?;
        Ok(Self { set, verifying })
    }

    /// Strictly decodes the public key set.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        Self::new(dkg::PublicKeySet::<P256>::decode(bytes).map_err(|e| e.to_string())?)
    }

    /// SHA-256 of the compressed SEC1 public key, as `tcrypto::ecdsa::KeyShare::key_id`.
    pub fn key_id(&self) -> KeyId {
        KeyId(Sha256::digest(self.set.public_key_bytes()).into())
    }
}

/// The name an RSA key must carry: the key id of its public key set for a dealt sharing. A reshared sharing
/// (`tcrypto::rsa::reshare`: new verification keys, scale `c != 1`) keeps the name of the key's birth, which its
/// set no longer hashes to: the name is then the one the description carries (the nodes that hold the key agree
/// on it, and `N` and `e`, which every signature is verified with, never change across a reshare).
pub fn rsa_name(info: &KeyInfo, pk: &rsa::PublicKeySet) -> KeyId {
    if pk.scale_bytes() == [1] {
        pk.key_id()
    } else {
        info.key
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
    /// Threshold ECDSA P-256.
    Ecdsa(Box<EcdsaPublicKey>),
    /// FROST Ed25519.
    Ed25519(Box<ed25519::PublicKeySet>),
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
    /// An ordinary-modulus RSA key ([`rsa::ordinary`]): no `k` of the shares combine and their senders cannot be
    /// told apart (the shares carry no proofs). Keep the shares, ask one more holder and combine all of them. The
    /// signers listed sent shares that failed the structural checks (out of range, undecodable …): culprits.
    Unattributable(Vec<SignerId>),
    /// The request itself cannot be signed with this key (bad encoding); nobody misbehaved.
    BadRequest(String),
}

impl PublicKey {
    /// Parses the public part of a [`KeyInfo`].
    pub fn from_info(info: &KeyInfo) -> Result<Self, String> {
        match info.algorithm {
            Algorithm::Rsa => {
                let pk = rsa::PublicKeySet::decode(&info.public).map_err(|e| e.to_string())?;
                check_info(info, rsa_name(info, &pk), pk.threshold(), pk.parties())?;
                Ok(PublicKey::Rsa(Box::new(pk)))
            }
            Algorithm::EcdsaP256 => {
                let pk = EcdsaPublicKey::decode(&info.public)?;
                check_info(info, pk.key_id(), pk.set.threshold(), pk.set.parties())?;
                Ok(PublicKey::Ecdsa(Box::new(pk)))
            }
            Algorithm::Ed25519 => {
                let pk = ed25519::PublicKeySet::decode(&info.public).map_err(|e| e.to_string())?;
                check_info(info, ed25519_key_id(&pk), pk.threshold(), pk.parties())?;
                Ok(PublicKey::Ed25519(Box::new(pk)))
            }
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa(_) => Algorithm::Rsa,
            PublicKey::Ecdsa(_) => Algorithm::EcdsaP256,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The RSA public key set, for RSA keys.
    pub fn as_rsa(&self) -> Option<&rsa::PublicKeySet> {
        match self {
            PublicKey::Rsa(pk) => Some(pk),
            _ => None,
        }
    }

    /// The P-256 public key, for ECDSA keys.
    pub fn as_ecdsa(&self) -> Option<&EcdsaPublicKey> {
        match self {
            PublicKey::Ecdsa(pk) => Some(pk),
            _ => None,
        }
    }

    /// The Ed25519 public key set, for Ed25519 keys.
    pub fn as_ed25519(&self) -> Option<&ed25519::PublicKeySet> {
        match self {
            PublicKey::Ed25519(pk) => Some(pk),
            _ => None,
        }
    }

    /// The public key as DER SubjectPublicKeyInfo (what `openssl` and PKCS#11 `CKA_PUBLIC_KEY_INFO` take).
    pub fn to_spki_der(&self) -> Result<Vec<u8>, String> {
        match self {
            PublicKey::Rsa(pk) => pk.to_spki_der().map_err(|e| e.to_string()),
            PublicKey::Ecdsa(pk) => {
                use p256::pkcs8::EncodePublicKey as _;
                pk.verifying
                    .to_public_key_der()
                    .map(|d| d.as_bytes().to_vec())
                    .map_err(|e| e.to_string())
            }
            PublicKey::Ed25519(pk) => pk.to_public_key_der().map_err(|e| e.to_string()),
        }
    }

    /// Checks a mechanism can be used with this key before any node is asked.
    pub fn check_mechanism(&self, mechanism: &Mechanism) -> Result<(), String> {
        match (self, mechanism) {
            (PublicKey::Rsa(pk), _) => checked_rsa_encoding(pk, mechanism).map(|_| ()),
            (PublicKey::Ecdsa(_), Mechanism::Ecdsa { digest }) => {
                if (ecdsa::sign::MIN_DIGEST_LEN..=ecdsa::sign::MAX_DIGEST_LEN).contains(&digest.len()) {
                    Ok(())
                } else {
                    Err(format!(
                        "ECDSA digest must be {}..={} bytes",
                        ecdsa::sign::MIN_DIGEST_LEN,
                        ecdsa::sign::MAX_DIGEST_LEN
                    ))
                }
            }
            (PublicKey::Ed25519(_), Mechanism::Ed25519 { .. }) => Ok(()),
            (pk, m) => Err(format!(
                "mechanism {} does not apply to a {} key",
                m.name(),
                pk.algorithm().name()
            )),
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
                    Err(rsa::Error::Unattributable { faults, .. }) => {
                        Err(CombineFailure::Unattributable(faults.into_keys().collect()))
                    }
                    Err(e) => Err(CombineFailure::BadRequest(e.to_string())),
                }
            }
            PublicKey::Ecdsa(_) | PublicKey::Ed25519(_) => Err(CombineFailure::BadRequest(
                "EC signatures are combined by their own signing operations".into(),
            )),
        }
    }
}

/// One bundle per share: the key's public description with each share's signer id.
fn bundles_of<'a>(
    key: KeyId,
    algorithm: Algorithm,
    (threshold, parties): (u16, u16),
    public: &[u8],
    shares: impl Iterator<Item = (SignerId, zeroize::Zeroizing<Vec<u8>>)> + 'a,
) -> Vec<ShareBundle> {
    shares
        .map(|(signer, share)| ShareBundle {
            info: KeyInfo {
                key,
                algorithm,
                signer,
                threshold,
                parties,
                public: public.to_vec(),
            },
            share,
        })
        .collect()
}

/// One bundle per share of a threshold P-256 key (dealer, `split`, or a DKG result), in the shares' order.
pub fn ecdsa_bundles(pk: &EcdsaPublicKey, shares: &[ecdsa::KeyShare]) -> Vec<ShareBundle> {
    bundles_of(
        pk.key_id(),
        Algorithm::EcdsaP256,
        (pk.set.threshold(), pk.set.parties()),
        &pk.set.encode(),
        shares
            .iter()
            .map(|s| (s.id(), zeroize::Zeroizing::new(s.encode()))),
    )
}

/// One bundle per share of a FROST Ed25519 key, in the shares' order.
pub fn ed25519_bundles(pk: &ed25519::PublicKeySet, shares: &[ed25519::KeyShare]) -> Vec<ShareBundle> {
    bundles_of(
        ed25519_key_id(pk),
        Algorithm::Ed25519,
        (pk.threshold(), pk.parties()),
        &pk.encode(),
        shares.iter().map(|s| (s.id(), s.encode())),
    )
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
