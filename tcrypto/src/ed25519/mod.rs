//! Threshold Ed25519: FROST(Ed25519, SHA-512) of RFC 9591, computed by the ZF `frost-ed25519` crate and wrapped in
//! this crate's key-share and message types and strict encodings.
//!
//! The signatures are ordinary RFC 8032 Ed25519 signatures (DNSSEC algorithm 15): any Ed25519 verifier accepts them.
//!
//! | step | who | function | message |
//! |---|---|---|---|
//! | keys | every party | [`KeyShare::from_dkg`] (or [`deal`]/[`split_seed`]/[`split_pkcs8_der`] with `dealer`) | — |
//! | 1 | each signer | [`round1::commit`] | [`round1::Commitment`] `(D_i, E_i)` to the coordinator |
//! | — | coordinator | [`SigningPackage::new`] | [`SigningPackage`] (session, message, commitments) to the signers |
//! | 2 | each signer | [`round2::sign`] | [`round2::SignatureShare`] `z_i` to the coordinator |
//! | 3 | coordinator | [`aggregate`] | the 64-byte [`Signature`] |
//!
//! The nonces of round 1 are consumed by value in round 2, so they cannot sign twice. [`aggregate`] combines
//! optimistically and verifies the result; only when that fails does it check each share (RFC 9591 section 5.4)
//! and name every culprit in [`Error::Culprits`]; the coordinator then restarts with other signers.
//!
//! RFC 9591 fixes FROST's hashes, so the session id cannot enter them without breaking compatibility; it is bound
//! by the wrapper instead: nonces, commitments, the package and every signature share carry it, and a step refuses
//! inputs of another session.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use frost_ed25519 as frost;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{self, Curve as _, Ed25519};
use crate::id::{SessionId, SignerId};

mod rng;
pub mod round1;
pub mod round2;

/// Type tags of the Ed25519 encodings (0x40..0x4f).
pub(crate) mod tag {
    pub(crate) const KEY_SHARE: u8 = 0x40;
    pub(crate) const PUBLIC_KEY_SET: u8 = 0x41;
    pub(crate) const COMMITMENT: u8 = 0x42;
    pub(crate) const SIGNING_PACKAGE: u8 = 0x43;
    pub(crate) const SIGNATURE_SHARE: u8 = 0x44;
}

/// Why a threshold Ed25519 step failed. Variants that blame signers name them; see [`Error::culprits`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller asked for something impossible (caller misuse).
    #[error("invalid parameters: {0}")]
    InvalidParameters(&'static str),
    /// A signer id is not a party of the key.
    #[error("{culprit} is not a party of this key")]
    UnknownSigner {
        /// The unknown id.
        culprit: SignerId,
    },
    /// A signature share came from a signer that is not in the signing package.
    #[error("signature share from {culprit}, which is not in the signing package")]
    UnexpectedSigner {
        /// The sender.
        culprit: SignerId,
    },
    /// Signers of the package sent no signature share.
    #[error("missing signature shares from {culprits:?}")]
    MissingShares {
        /// Who is missing.
        culprits: Vec<SignerId>,
    },
    /// A commitment or share belongs to another session than the package.
    #[error("message from {culprit} belongs to another session")]
    SessionMismatch {
        /// The sender.
        culprit: SignerId,
    },
    /// Signature shares failed verification: the signers who sent invalid shares.
    #[error("invalid signature shares from {culprits:?}")]
    Culprits {
        /// Every signer whose share is invalid.
        culprits: Vec<SignerId>,
    },
    /// The signing package belongs to another session than our nonces.
    #[error("the signing package belongs to another session")]
    PackageSession,
    /// The package does not contain this signer's commitment as made in round 1.
    #[error("the signing package does not carry our round-1 commitment")]
    CommitmentMismatch,
    /// Fewer signers than the threshold.
    #[error("{got} signers, the threshold is {threshold}")]
    NotEnoughSigners {
        /// Signers in the package.
        got: usize,
        /// `k`.
        threshold: u16,
    },
    /// The key material was refused (for example a PKCS#8 document that is not an Ed25519 key).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A signer's message could not be decoded.
    #[error("malformed message from {culprit}: {error}")]
    Malformed {
        /// The sender.
        culprit: SignerId,
        /// Why decoding failed.
        error: DecodeError,
    },
    /// The distributed key generation or dealer failed.
    #[error(transparent)]
    Dkg(#[from] dkg::Error),
    /// `frost-ed25519` refused an input (should not happen for validated inputs).
    #[error("FROST: {0}")]
    Frost(frost::Error),
}

impl Error {
    /// The signers this error blames (empty for caller misuse).
    pub fn culprits(&self) -> Vec<SignerId> {
        match self {
            Error::UnknownSigner { culprit }
            | Error::UnexpectedSigner { culprit }
            | Error::SessionMismatch { culprit }
            | Error::Malformed { culprit, .. } => vec![*culprit],
            Error::MissingShares { culprits } | Error::Culprits { culprits } => culprits.clone(),
            Error::Dkg(e) => e.culprits(),
            _ => Vec::new(),
        }
    }
}

pub(crate) fn frost_id(id: SignerId) -> Result<frost::Identifier, Error> {
    frost::Identifier::try_from(id.get()).map_err(Error::Frost)
}

/// Decodes a signer's message (a [`round1::Commitment`] or [`round2::SignatureShare`]) received from `sender`,
/// blaming the sender if it does not decode.
pub fn decode_from<M: dkg::Message>(sender: SignerId, bytes: &[u8]) -> Result<M, Error> {
    M::decode(bytes).map_err(|error| Error::Malformed {
        culprit: sender,
        error,
    })
}

/// The public side of a threshold Ed25519 key: the group key `Y`, the Feldman commitments and every party's public
/// share, in both our form and `frost-ed25519`'s `PublicKeyPackage`.
#[derive(Clone)]
pub struct PublicKeySet {
    inner: dkg::PublicKeySet<Ed25519>,
    package: frost::keys::PublicKeyPackage,
}

impl fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ed25519::PublicKeySet").field(&self.inner).finish()
    }
}

impl PartialEq for PublicKeySet {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl PublicKeySet {
    /// Wraps a DKG (or dealer) public result.
    pub fn from_dkg(inner: dkg::PublicKeySet<Ed25519>) -> Result<Self, Error> {
        let mut shares = BTreeMap::new();
        for (id, y) in inner.public_shares() {
            let share = frost::keys::VerifyingShare::deserialize(&Ed25519::point_to_bytes(y))
                .map_err(Error::Frost)?;
            shares.insert(frost_id(*id)?, share);
        }
        let key = frost::VerifyingKey::deserialize(&inner.public_key_bytes()).map_err(Error::Frost)?;
        let package = frost::keys::PublicKeyPackage::new(shares, key, Some(inner.threshold()));
        Ok(Self { inner, package })
    }

    /// `k`: signers needed.
    pub fn threshold(&self) -> u16 {
        self.inner.threshold()
    }

    /// `n`.
    pub fn parties(&self) -> u16 {
        self.inner.parties()
    }

    /// The ids of the parties.
    pub fn party_ids(&self) -> BTreeSet<SignerId> {
        self.inner.public_shares().keys().copied().collect()
    }

    /// The 32-byte RFC 8032 public key.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        Ed25519::point_to_bytes(&self.inner.public_key())
            .try_into()
            .unwrap_or([0; 32])
    }

    /// The generic DKG form.
    pub fn as_dkg(&self) -> &dkg::PublicKeySet<Ed25519> {
        &self.inner
    }

    /// The `frost-ed25519` form.
    pub fn frost_package(&self) -> &frost::keys::PublicKeyPackage {
        &self.package
    }

    /// The public key as a DER SubjectPublicKeyInfo (RFC 8410).
    pub fn to_public_key_der(&self) -> Result<Vec<u8>, Error> {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.public_key_bytes())
            .map_err(|_| Error::InvalidKey("public key does not decode"))?;
        vk.to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|_| Error::InvalidKey("public key does not encode"))
    }

    /// The public key as a PEM `PUBLIC KEY` (what `openssl pkeyutl -pubin` reads).
    pub fn to_public_key_pem(&self) -> Result<String, Error> {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.public_key_bytes())
            .map_err(|_| Error::InvalidKey("public key does not decode"))?;
        vk.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|_| Error::InvalidKey("public key does not encode"))
    }

    /// Verifies an Ed25519 signature on `message` under the group key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        let sig = frost::Signature::deserialize(&signature.0).map_err(Error::Frost)?;
        self.package
            .verifying_key()
            .verify(message, &sig)
            .map_err(Error::Frost)
    }

    /// Strict encoding (tag 0x41): threshold, party ids, Feldman commitments.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::PUBLIC_KEY_SET);
        self.inner.encode_body(&mut w);
        w.finish()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::PUBLIC_KEY_SET)?;
        let inner = dkg::PublicKeySet::decode_body(&mut r)?;
        r.finish()?;
        Self::from_dkg(inner).map_err(|_| DecodeError::Invalid("public key set refused by FROST"))
    }
}

/// One party's threshold Ed25519 key share: its id, its secret share (zeroized on drop, printed `<redacted>`) and
/// the public key set, with `frost-ed25519`'s `KeyPackage` built from them.
pub struct KeyShare {
    inner: dkg::KeyShare<Ed25519>,
    key_package: frost::keys::KeyPackage,
    public: PublicKeySet,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ed25519::KeyShare")
            .field("id", &self.inner.id())
            .field("secret", &"<redacted>")
            .field("public", &self.public)
            .finish()
    }
}

impl KeyShare {
    /// Converts a DKG (or dealer) result into a FROST signing key.
    pub fn from_dkg(inner: dkg::KeyShare<Ed25519>) -> Result<Self, Error> {
        let public = PublicKeySet::from_dkg(inner.public().clone())?;
        let id = frost_id(inner.id())?;
        let secret = Zeroizing::new(Ed25519::scalar_to_bytes(inner.secret()));
        let signing_share = frost::keys::SigningShare::deserialize(&secret[..]).map_err(Error::Frost)?;
        let verifying_share = *public
            .package
            .verifying_shares()
            .get(&id)
            .ok_or(Error::UnknownSigner { culprit: inner.id() })?;
        let key_package = frost::keys::KeyPackage::new(
            id,
            signing_share,
            verifying_share,
            *public.package.verifying_key(),
            inner.threshold(),
        );
        Ok(Self {
            inner,
            key_package,
            public,
        })
    }

    /// This party's id.
    pub fn id(&self) -> SignerId {
        self.inner.id()
    }

    /// `k`.
    pub fn threshold(&self) -> u16 {
        self.inner.threshold()
    }

    /// The public key set.
    pub fn public(&self) -> &PublicKeySet {
        &self.public
    }

    /// The generic DKG form of the share (crate-internal: the reshare dealer reads its secret).
    pub(crate) fn as_dkg(&self) -> &dkg::KeyShare<Ed25519> {
        &self.inner
    }

    /// The `frost-ed25519` key package (secret).
    pub fn frost_key_package(&self) -> &frost::keys::KeyPackage {
        &self.key_package
    }

    /// Strict encoding (tag 0x40): id, public key set, 32-byte secret share; zeroized on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(tag::KEY_SHARE);
        self.inner.id().encode(&mut w);
        self.inner.public().encode_body(&mut w);
        let secret = Zeroizing::new(Ed25519::scalar_to_bytes(self.inner.secret()));
        w.raw(&secret[..]);
        Zeroizing::new(w.finish())
    }

    /// Strict decoding; checks the secret against the party's public share.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::KEY_SHARE)?;
        let id = SignerId::decode(&mut r)?;
        let public = dkg::PublicKeySet::decode_body(&mut r)?;
        let secret = Zeroizing::new(dkg::read_scalar::<Ed25519>(&mut r)?);
        r.finish()?;
        let inner = dkg::KeyShare::from_parts(id, *secret, public)
            .map_err(|_| DecodeError::Invalid("secret share does not match the public share"))?;
        Self::from_dkg(inner).map_err(|_| DecodeError::Invalid("key share refused by FROST"))
    }
}

impl TryFrom<dkg::KeyShare<Ed25519>> for KeyShare {
    type Error = Error;
    fn try_from(inner: dkg::KeyShare<Ed25519>) -> Result<Self, Error> {
        Self::from_dkg(inner)
    }
}

/// What the coordinator sends every chosen signer in round 2: the session, the message and the commitments of
/// exactly the chosen signers (RFC 9591 section 5.2, `commitment_list`).
#[derive(Debug, Clone, PartialEq)]
pub struct SigningPackage {
    /// The session id of this signing run.
    pub session: SessionId,
    /// The message `msg` to sign.
    pub message: Vec<u8>,
    /// `(D_i, E_i)` of every chosen signer `i`.
    pub commitments: BTreeMap<SignerId, round1::Commitment>,
}

impl SigningPackage {
    /// Builds a package, refusing an empty set of signers and commitments made for another session.
    pub fn new(
        session: SessionId,
        message: Vec<u8>,
        commitments: BTreeMap<SignerId, round1::Commitment>,
    ) -> Result<Self, Error> {
        if commitments.is_empty() {
            return Err(Error::InvalidParameters("no signers"));
        }
        if let Some((id, _)) = commitments.iter().find(|(_, c)| c.session != session) {
            return Err(Error::SessionMismatch { culprit: *id });
        }
        Ok(Self {
            session,
            message,
            commitments,
        })
    }

    /// Checks the package against the public key set and converts it for `frost-ed25519`.
    fn to_frost(&self, public: &PublicKeySet) -> Result<frost::SigningPackage, Error> {
        if self.commitments.len() < usize::from(public.threshold()) {
            return Err(Error::NotEnoughSigners {
                got: self.commitments.len(),
                threshold: public.threshold(),
            });
        }
        let mut map = BTreeMap::new();
        for (id, c) in &self.commitments {
            if !public.inner.public_shares().contains_key(id) {
                return Err(Error::UnknownSigner { culprit: *id });
            }
            if c.session != self.session {
                return Err(Error::SessionMismatch { culprit: *id });
            }
            map.insert(frost_id(*id)?, c.to_frost()?);
        }
        Ok(frost::SigningPackage::new(map, &self.message))
    }

    /// Strict encoding (tag 0x43): session, message, then `(id, D_i, E_i)` in increasing id order.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SIGNING_PACKAGE);
        self.session.encode(&mut w);
        w.bytes(&self.message);
        w.u32(self.commitments.len() as u32);
        for (id, c) in &self.commitments {
            id.encode(&mut w);
            c.encode_points(&mut w);
        }
        w.finish()
    }

    /// Strict decoding; refuses duplicate or unsorted ids, identity, small-order and non-canonical points.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_own(bytes, None)
    }

    /// [`SigningPackage::decode`] for a signer that holds the nonces of `own` (its round-1 commitment, from
    /// [`round1::commit`] or [`round1::SigningNonces::commitment`]): points encoded exactly as `own`'s are
    /// taken from it instead of being checked a second time (each check is a scalar multiplication); every
    /// other point is checked in full, so the result is the same as [`SigningPackage::decode`]'s.
    pub fn decode_with_own(bytes: &[u8], own: Option<&round1::Commitment>) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::SIGNING_PACKAGE)?;
        let session = SessionId::decode(&mut r)?;
        let message = r.bytes()?.to_vec();
        let commitments = SignerId::decode_map(&mut r, 64, |r| {
            round1::Commitment::decode_points_known(session, r, own)
        })?;
        r.finish()?;
        Self::new(session, message, commitments).map_err(|_| DecodeError::Invalid("empty signing package"))
    }

    /// The session id of an encoded package, read without decoding the rest (e.g. to find the signer's nonces
    /// before [`SigningPackage::decode_with_own`]).
    pub fn peek_session(bytes: &[u8]) -> Result<SessionId, DecodeError> {
        let mut r = Reader::new(bytes, tag::SIGNING_PACKAGE)?;
        SessionId::decode(&mut r)
    }
}

/// A 64-byte RFC 8032 Ed25519 signature `R || S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The raw 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }
}

/// Combines the signature shares of every signer of `package` into a signature (RFC 9591 section 5.3).
///
/// The result is verified under the group key; if that fails each share is checked and every signer with an
/// invalid share is named in [`Error::Culprits`]. Shares from signers outside the package, missing shares and
/// shares of another session are refused with the signer named.
pub fn aggregate(
    public: &PublicKeySet,
    package: &SigningPackage,
    shares: &BTreeMap<SignerId, round2::SignatureShare>,
) -> Result<Signature, Error> {
    if let Some(id) = shares.keys().find(|id| !package.commitments.contains_key(id)) {
        return Err(Error::UnexpectedSigner { culprit: *id });
    }
    let missing: Vec<SignerId> = package
        .commitments
        .keys()
        .filter(|id| !shares.contains_key(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingShares { culprits: missing });
    }
    let bad_session: Vec<SignerId> = shares
        .iter()
        .filter(|(_, s)| s.session != package.session)
        .map(|(id, _)| *id)
        .collect();
    if !bad_session.is_empty() {
        return Err(Error::Culprits {
            culprits: bad_session,
        });
    }
    let signing_package = package.to_frost(public)?;
    let mut frost_shares = BTreeMap::new();
    let mut by_frost_id = BTreeMap::new();
    for (id, s) in shares {
        let fid = frost_id(*id)?;
        frost_shares.insert(fid, s.to_frost()?);
        by_frost_id.insert(fid, *id);
    }
    match frost::aggregate_custom(
        &signing_package,
        &frost_shares,
        &public.package,
        frost::CheaterDetection::AllCheaters,
    ) {
        Ok(sig) => {
            let bytes = sig.serialize().map_err(Error::Frost)?;
            let arr: [u8; 64] = bytes
                .try_into()
                .map_err(|_| Error::InvalidParameters("signature is not 64 bytes"))?;
            Ok(Signature(arr))
        }
        Err(e) => {
            let culprits: Vec<SignerId> = e
                .culprits()
                .iter()
                .filter_map(|fid| by_frost_id.get(fid).copied())
                .collect();
            if culprits.is_empty() {
                Err(Error::Frost(e))
            } else {
                Err(Error::Culprits { culprits })
            }
        }
    }
}

/// Deals a fresh key with a trusted dealer (single point of failure: prefer the DKG).
#[cfg(feature = "dealer")]
pub fn deal(
    threshold: u16,
    participants: impl IntoIterator<Item = SignerId>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    let (public, shares) = dkg::dealer::deal::<Ed25519>(threshold, participants, rng)?;
    wrap(public, shares)
}

/// Splits an existing RFC 8032 private key (the 32-byte seed) into shares (key import). The group public key is
/// the key's usual public key, so existing DS records and trust anchors stay valid.
#[cfg(feature = "dealer")]
pub fn split_seed(
    seed: &[u8; 32],
    threshold: u16,
    participants: impl IntoIterator<Item = SignerId>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    let sk = ed25519_dalek::SigningKey::from_bytes(seed);
    // The signing scalar: SHA-512(seed)[..32], clamped (RFC 8032 section 5.1.5), reduced modulo l.
    let bytes = Zeroizing::new(sk.to_scalar().to_bytes());
    let secret = Zeroizing::new(
        Ed25519::scalar_from_bytes(&bytes).ok_or(Error::InvalidKey("expanded scalar not canonical"))?,
    );
    let (public, shares) = dkg::dealer::split::<Ed25519>(&secret, threshold, participants, rng)?;
    if public.public_key_bytes() != sk.verifying_key().to_bytes() {
        return Err(Error::InvalidKey(
            "split key does not match the original public key",
        ));
    }
    wrap(public, shares)
}

/// Splits an existing Ed25519 private key given as a PKCS#8 DER document (RFC 8410) into shares.
#[cfg(feature = "dealer")]
pub fn split_pkcs8_der(
    der: &[u8],
    threshold: u16,
    participants: impl IntoIterator<Item = SignerId>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let sk = ed25519_dalek::SigningKey::from_pkcs8_der(der)
        .map_err(|_| Error::InvalidKey("not a PKCS#8 Ed25519 private key"))?;
    let seed = Zeroizing::new(sk.to_bytes());
    split_seed(&seed, threshold, participants, rng)
}

#[cfg(feature = "dealer")]
fn wrap(
    public: dkg::PublicKeySet<Ed25519>,
    shares: Vec<dkg::KeyShare<Ed25519>>,
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    let public = PublicKeySet::from_dkg(public)?;
    let shares = shares
        .into_iter()
        .map(KeyShare::from_dkg)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((public, shares))
}
