//! FROST round 2 (RFC 9591 section 5.2): each chosen signer checks the coordinator's package and computes its
//! signature share `z_i = d_i + e_i·ρ_i + λ_i·s_i·c`.

use curve25519_dalek::Scalar;
use frost_ed25519 as frost;

use super::{Error, KeyShare, SigningPackage, round1, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{self, Curve as _, Ed25519};
use crate::id::SessionId;

/// A signer's round-2 message: its signature share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureShare {
    /// The session of the package it signs.
    pub session: SessionId,
    /// `z_i`.
    pub z: Scalar,
}

impl SignatureShare {
    /// Strict encoding (tag 0x44): session, `z_i` (32 bytes little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SIGNATURE_SHARE);
        self.session.encode(&mut w);
        w.raw(&self.z.to_bytes());
        w.finish()
    }

    /// Strict decoding: refuses a non-canonical scalar.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::SIGNATURE_SHARE)?;
        let session = SessionId::decode(&mut r)?;
        let z = dkg::read_scalar::<Ed25519>(&mut r)?;
        r.finish()?;
        Ok(Self { session, z })
    }

    pub(super) fn to_frost(self) -> Result<frost::round2::SignatureShare, Error> {
        frost::round2::SignatureShare::deserialize(&self.z.to_bytes()).map_err(Error::Frost)
    }
}

/// Round 2 for the holder of `share`: consumes the round-1 `nonces` and signs `package`.
///
/// Refuses a package of another session, one that does not carry this signer's round-1 commitment, one with
/// fewer than `k` signers or with a signer that is not a party of the key.
pub fn sign(
    share: &KeyShare,
    nonces: round1::SigningNonces,
    package: &SigningPackage,
) -> Result<SignatureShare, Error> {
    if nonces.id != share.id() {
        return Err(Error::InvalidParameters("nonces of another signer"));
    }
    if package.session != nonces.session {
        return Err(Error::PackageSession);
    }
    if package.commitments.get(&share.id()) != Some(&nonces.commitment) {
        return Err(Error::CommitmentMismatch);
    }
    let signing_package = package.to_frost(share.public())?;
    let z = frost::round2::sign(&signing_package, &nonces.inner, &share.key_package).map_err(Error::Frost)?;
    let bytes: [u8; 32] = z
        .serialize()
        .try_into()
        .map_err(|_| Error::InvalidParameters("signature share is not 32 bytes"))?;
    let z = Ed25519::scalar_from_bytes(&bytes)
        .ok_or(Error::InvalidParameters("signature share not canonical"))?;
    Ok(SignatureShare {
        session: package.session,
        z,
    })
}

impl dkg::Message for SignatureShare {
    fn encode(&self) -> Vec<u8> {
        SignatureShare::encode(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        SignatureShare::decode(bytes)
    }
}
