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
#[derive(Clone, Copy)]
pub struct Commitment {
    /// The session these nonces are for.
    pub session: SessionId,
    /// `D_i = d_i·G`, the hiding nonce commitment.
    pub hiding: EdwardsPoint,
    /// `E_i = e_i·G`, the binding nonce commitment.
    pub binding: EdwardsPoint,
    /// The same commitments in `frost-ed25519`'s form, kept from when they were made or decoded (both already
    /// checked), so that signing and aggregation do not decode them again: `frost-ed25519`'s decoder runs a full
    /// scalar multiplication per point for its prime-order check.
    frost: Option<FrostForm>,
}

/// `frost-ed25519`'s form of `(hiding, binding)`; used only while the public fields still hold those points.
#[derive(Clone, Copy)]
struct FrostForm {
    hiding: EdwardsPoint,
    binding: EdwardsPoint,
    commitments: frost::round1::SigningCommitments,
    /// The encoding `D_i || E_i` these checked points came from (or were serialized to).
    encoded: [u8; 64],
}

impl PartialEq for Commitment {
    fn eq(&self, other: &Self) -> bool {
        self.session == other.session && self.hiding == other.hiding && self.binding == other.binding
    }
}

impl Eq for Commitment {}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commitment")
            .field("session", &self.session)
            .field("hiding", &self.hiding)
            .field("binding", &self.binding)
            .finish()
    }
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

    /// Reads `D_i`, `E_i` with `frost-ed25519`'s decoder, keeping both forms. That decoder refuses the identity
    /// and points outside the prime-order subgroup, and with them every non-canonical encoding (all 19 encodings
    /// with `y >= p` decode to the identity, small-order or mixed-order points; Chalkias et al., "Taming the many
    /// EdDSAs", ePrint 2020/1244); the point is then decompressed once more for our form, without re-compressing
    /// it (a field inversion per point).
    pub(super) fn decode_points(session: SessionId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode_points_known(session, r, None)
    }

    /// [`Commitment::decode_points`], except that when the 64 bytes are exactly the encoding of `known` (a
    /// commitment this party made itself with [`commit`], or one it already decoded), its checked points are
    /// taken instead of being checked again. Any other bytes are fully checked.
    pub(super) fn decode_points_known(
        session: SessionId,
        r: &mut Reader<'_>,
        known: Option<&Commitment>,
    ) -> Result<Self, DecodeError> {
        let encoded = r.array::<64>()?;
        if let Some(k) = known
            && let Some(f) = k.frost
            && f.encoded == encoded
            && f.hiding == k.hiding
            && f.binding == k.binding
        {
            return Ok(Self { session, ..*k });
        }
        let read = |bytes: [u8; 32]| -> Result<(EdwardsPoint, frost::round1::NonceCommitment), DecodeError> {
            let invalid =
                DecodeError::Invalid("point not canonical, not in the prime-order group, or the identity");
            let commitment =
                frost::round1::NonceCommitment::deserialize(&bytes).map_err(|_| invalid.clone())?;
            let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
                .decompress()
                .ok_or(invalid)?;
            Ok((point, commitment))
        };
        let (hiding_bytes, binding_bytes) = split_encoding(&encoded);
        let (hiding, d) = read(hiding_bytes)?;
        let (binding, e) = read(binding_bytes)?;
        Ok(Self {
            session,
            hiding,
            binding,
            frost: Some(FrostForm {
                hiding,
                binding,
                commitments: frost::round1::SigningCommitments::new(d, e),
                encoded,
            }),
        })
    }

    pub(super) fn to_frost(self) -> Result<frost::round1::SigningCommitments, Error> {
        if let Some(f) = self.frost
            && f.hiding == self.hiding
            && f.binding == self.binding
        {
            return Ok(f.commitments);
        }
        let d = frost::round1::NonceCommitment::deserialize(&Ed25519::point_to_bytes(&self.hiding))
            .map_err(Error::Frost)?;
        let e = frost::round1::NonceCommitment::deserialize(&Ed25519::point_to_bytes(&self.binding))
            .map_err(Error::Frost)?;
        Ok(frost::round1::SigningCommitments::new(d, e))
    }

    fn from_frost(session: SessionId, c: &frost::round1::SigningCommitments) -> Result<Self, Error> {
        // Our own freshly computed `d_i·G`, `e_i·G`: prime order by construction (frost refuses to serialize the
        // identity), so only decompressed, without the strict decoder's torsion check.
        let point = |n: &frost::round1::NonceCommitment| -> Result<([u8; 32], EdwardsPoint), Error> {
            let bytes: [u8; 32] = n
                .serialize()
                .map_err(Error::Frost)?
                .try_into()
                .map_err(|_| Error::InvalidParameters("nonce commitment is not 32 bytes"))?;
            let p = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
                .decompress()
                .ok_or(Error::InvalidParameters("nonce commitment does not decompress"))?;
            Ok((bytes, p))
        };
        let ((hiding_bytes, hiding), (binding_bytes, binding)) = (point(c.hiding())?, point(c.binding())?);
        let mut encoded = [0u8; 64];
        encoded[..32].copy_from_slice(&hiding_bytes);
        encoded[32..].copy_from_slice(&binding_bytes);
        Ok(Self {
            session,
            hiding,
            binding,
            frost: Some(FrostForm {
                hiding,
                binding,
                commitments: *c,
                encoded,
            }),
        })
    }
}

/// `D_i`'s and `E_i`'s 32-byte encodings out of `D_i || E_i`.
fn split_encoding(encoded: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut hiding = [0u8; 32];
    let mut binding = [0u8; 32];
    hiding.copy_from_slice(&encoded[..32]);
    binding.copy_from_slice(&encoded[32..]);
    (hiding, binding)
}

/// A signer's secret nonces `(d_i, e_i)` for one session. Consumed by [`super::round2::sign`], so they sign at
/// most once; zeroized on drop; never printed. Do not persist them: a signer that restarts commits afresh.
pub struct SigningNonces {
    pub(super) session: SessionId,
    pub(super) id: SignerId,
    pub(super) commitment: Commitment,
    pub(super) inner: frost::round1::SigningNonces,
}

impl SigningNonces {
    /// The public commitment `(D_i, E_i)` to these nonces, as sent in round 1.
    pub fn commitment(&self) -> &Commitment {
        &self.commitment
    }
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
