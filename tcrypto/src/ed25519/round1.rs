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
    /// The encoding `D_i || E_i` these points came from (or were serialized to).
    encoded: [u8; 64],
    /// Whether the points are known to be in the prime-order subgroup (false only after
    /// [`Commitment::decode_deferring_subgroup_check`], until [`Commitment::check_subgroup`]).
    subgroup_checked: bool,
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

    /// Writes `D_i || E_i`: the encoding the points were decoded from or serialized to when it is still theirs
    /// (compressing a point costs a field inversion), else freshly compressed.
    pub(super) fn encode_points(&self, w: &mut Writer) {
        match self.frost {
            Some(f) if f.hiding == self.hiding && f.binding == self.binding => {
                w.raw(&f.encoded);
            }
            _ => {
                w.raw(&Ed25519::point_to_bytes(&self.hiding))
                    .raw(&Ed25519::point_to_bytes(&self.binding));
            }
        }
    }

    /// Reads `D_i`, `E_i` with the checks of `frost-ed25519`'s decoder, keeping both forms. That decoder refuses
    /// the identity and points outside the prime-order subgroup, and with them every non-canonical encoding (all
    /// 19 encodings with `y >= p` decode to the identity, small-order or mixed-order points; Chalkias et al.,
    /// "Taming the many EdDSAs", ePrint 2020/1244). Each point is decompressed once and never re-compressed (a
    /// field inversion per point): `frost-core`'s `internals` give its form from our point.
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
        Self::read_points(session, encoded, true)
    }

    /// Decodes `D_i`, `E_i` from `encoded`, refusing what `frost-ed25519`'s decoder refuses (RFC 9591 section 6.5
    /// `DeserializeElement`: an encoding that does not decompress, the identity and, when `subgroup`, points
    /// outside the prime-order subgroup), each point decompressed once.
    fn read_points(session: SessionId, encoded: [u8; 64], subgroup: bool) -> Result<Self, DecodeError> {
        let (hiding_bytes, binding_bytes) = split_encoding(&encoded);
        let (hiding, binding) = (
            read_point(hiding_bytes, subgroup)?,
            read_point(binding_bytes, subgroup)?,
        );
        let commitments = frost::round1::SigningCommitments::new(
            frost::round1::NonceCommitment::new(hiding),
            frost::round1::NonceCommitment::new(binding),
        );
        Ok(Self {
            session,
            hiding,
            binding,
            frost: Some(FrostForm {
                hiding,
                binding,
                commitments,
                encoded,
                subgroup_checked: subgroup,
            }),
        })
    }

    /// [`Commitment::decode`] without the prime-order subgroup check of the two points (a full scalar
    /// multiplication each), for a coordinator: it only relays the commitment in signing packages, every signer
    /// decodes those strictly and refuses the package, and the coordinator then runs
    /// [`Commitment::check_subgroup`] to name the commitment's maker. Encodings that do not decompress and the
    /// identity are refused here already. Non-canonical encodings decompress to points of small or mixed order
    /// (Chalkias et al., "Taming the many EdDSAs", ePrint 2020/1244), which the subgroup check refuses.
    pub fn decode_deferring_subgroup_check(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::COMMITMENT)?;
        let session = SessionId::decode(&mut r)?;
        let encoded = r.array::<64>()?;
        r.finish()?;
        Self::read_points(session, encoded, false)
    }

    /// Whether both points are in the prime-order subgroup, as [`Commitment::decode`] requires (always true of a
    /// commitment made by [`commit`] or decoded strictly).
    pub fn check_subgroup(&self) -> Result<(), DecodeError> {
        let checked = self
            .frost
            .is_some_and(|f| f.subgroup_checked && f.hiding == self.hiding && f.binding == self.binding);
        if checked || (self.hiding.is_torsion_free() && self.binding.is_torsion_free()) {
            Ok(())
        } else {
            Err(DecodeError::Invalid(
                "point not canonical, not in the prime-order group, or the identity",
            ))
        }
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
        // identity), taken as they are, without the strict decoder's torsion check.
        let point = |n: &frost::round1::NonceCommitment| -> Result<([u8; 32], EdwardsPoint), Error> {
            let bytes: [u8; 32] = n
                .serialize()
                .map_err(Error::Frost)?
                .try_into()
                .map_err(|_| Error::InvalidParameters("nonce commitment is not 32 bytes"))?;
            Ok((bytes, n.value()))
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
                subgroup_checked: true,
            }),
        })
    }
}

/// One point of a commitment; see [`Commitment::read_points`].
fn read_point(bytes: [u8; 32], subgroup: bool) -> Result<EdwardsPoint, DecodeError> {
    use curve25519_dalek::traits::IsIdentity as _;
    let invalid = DecodeError::Invalid("point not canonical, not in the prime-order group, or the identity");
    let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
        .decompress()
        .ok_or_else(|| invalid.clone())?;
    if point.is_identity() || (subgroup && !point.is_torsion_free()) {
        return Err(invalid);
    }
    Ok(point)
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
