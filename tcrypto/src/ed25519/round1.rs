//! FROST round 1 (RFC 9591 section 5.1): each signer draws two nonces `(d_i, e_i)` hedged with its secret share
//! and publishes the commitments `(D_i, E_i) = (d_i·G, e_i·G)`.

use core::fmt;

use curve25519_dalek::EdwardsPoint;
use frost_ed25519 as frost;
use rand_core::CryptoRng;

use super::{Error, KeyShare, rng::Rng06, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{self, Curve as _, Ed25519};
use crate::id::{SessionId, SignerId};

/// A signer's round-1 message: its nonce commitments for one signing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment {
    /// The session these nonces are for.
    pub session: SessionId,
    /// `D_i = d_i·G`, the hiding nonce commitment.
    pub hiding: EdwardsPoint,
    /// `E_i = e_i·G`, the binding nonce commitment.
    pub binding: EdwardsPoint,
}

impl Commitment {
    /// Strict encoding (tag 0x42): session, `D_i`, `E_i`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::COMMITMENT);
        self.session.encode(&mut w);
        self.encode_points(&mut w);
        w.finish()
    }

    /// Strict decoding: refuses the identity, points of small order and non-canonical encodings.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::COMMITMENT)?;
        let session = SessionId::decode(&mut r)?;
        let c = Self::decode_points(session, &mut r)?;
        r.finish()?;
        Ok(c)
    }

    pub(super) fn encode_points(&self, w: &mut Writer) {
        w.raw(&Ed25519::point_to_bytes(&self.hiding))
            .raw(&Ed25519::point_to_bytes(&self.binding));
    }

    pub(super) fn decode_points(session: SessionId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            session,
            hiding: dkg::read_point::<Ed25519>(r)?,
            binding: dkg::read_point::<Ed25519>(r)?,
        })
    }

    pub(super) fn to_frost(self) -> Result<frost::round1::SigningCommitments, Error> {
        let d = frost::round1::NonceCommitment::deserialize(&Ed25519::point_to_bytes(&self.hiding))
            .map_err(Error::Frost)?;
        let e = frost::round1::NonceCommitment::deserialize(&Ed25519::point_to_bytes(&self.binding))
            .map_err(Error::Frost)?;
        Ok(frost::round1::SigningCommitments::new(d, e))
    }

    fn from_frost(session: SessionId, c: &frost::round1::SigningCommitments) -> Result<Self, Error> {
        // Our own freshly computed `d_i·G`, `e_i·G`: prime order by construction (frost refuses to serialize the
        // identity), so only decompressed, without the strict decoder's torsion check.
        let point = |n: &frost::round1::NonceCommitment| -> Result<EdwardsPoint, Error> {
            let bytes: [u8; 32] = n
                .serialize()
                .map_err(Error::Frost)?
                .try_into()
                .map_err(|_| Error::InvalidParameters("nonce commitment is not 32 bytes"))?;
            curve25519_dalek::edwards::CompressedEdwardsY(bytes)
                .decompress()
                .ok_or(Error::InvalidParameters("nonce commitment does not decompress"))
        };
        Ok(Self {
            session,
            hiding: point(c.hiding())?,
            binding: point(c.binding())?,
        })
    }
}

/// A signer's secret nonces `(d_i, e_i)` for one session. Consumed by [`super::round2::sign`], so they sign at
/// most once; zeroized on drop; never printed. Do not persist them: a signer that restarts commits afresh.
pub struct SigningNonces {
    pub(super) session: SessionId,
    pub(super) id: SignerId,
    pub(super) commitment: Commitment,
    pub(super) inner: frost::round1::SigningNonces,
}

impl fmt::Debug for SigningNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningNonces")
            .field("session", &self.session)
            .field("id", &self.id)
            .field("nonces", &"<redacted>")
            .finish()
    }
}

/// Round 1 for the holder of `share` in session `session`: the secret nonces (kept) and the commitment (sent to
/// the coordinator).
pub fn commit(
    share: &KeyShare,
    session: SessionId,
    rng: &mut impl CryptoRng,
) -> Result<(SigningNonces, Commitment), Error> {
    let (inner, commitments) = frost::round1::commit(share.key_package.signing_share(), &mut Rng06(rng));
    let commitment = Commitment::from_frost(session, &commitments)?;
    Ok((
        SigningNonces {
            session,
            id: share.id(),
            commitment,
            inner,
        },
        commitment,
    ))
}

impl dkg::Message for Commitment {
    fn encode(&self) -> Vec<u8> {
        Commitment::encode(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Commitment::decode(bytes)
    }
}
