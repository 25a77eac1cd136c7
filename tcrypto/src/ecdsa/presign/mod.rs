//! Presigning (DJNPØ's preprocessing phase, with the multiplication `[k^{-1}]·[x]` of the online phase moved
//! offline too): message-independent
//! presignatures, made in batches by a set `P` of at least `2t + 1` parties in three rounds
//! ([`round1()`], [`round2`], [`round3`]) and a local output step ([`Round3State::finish`]).
//!
//! Each round is a sans-io step: it consumes the previous round's state by value, takes the other parties'
//! messages as `BTreeMap<SignerId, Msg>` keyed by the sender id the authenticated channel reports, and returns
//! the next state with the messages to send. Direct (`…Direct`) messages carry secret shares and must travel
//! over confidential, authenticated point-to-point channels; broadcasts go to every member of `P`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use p256::{ProjectivePoint, Scalar};
use zeroize::Zeroize;

use super::group::{self, get_point, get_scalar, put_scalar};
use super::key::KeyShare;
use super::{Error, Fault, check_params, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{KeyId, SessionId, SignerId};

pub mod round1;
pub mod round2;
pub mod round3;

pub use round1::{Round1Broadcast, Round1Direct, Round1State, round1};
pub use round2::{Round2Broadcast, Round2Direct, Round2State};
pub use round3::{BlameReveal, BlameState, Finished, Output, Round3Broadcast, Round3State};

/// Names one presignature: the presigning run's session id and its index in the batch. This is what a signer
/// must durably record as spent before releasing a signature share made with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PresignatureId {
    /// Session id of the presigning run.
    pub session: SessionId,
    /// Index in the batch, `0..batch`.
    pub index: u32,
}

impl PresignatureId {
    /// Appends the id.
    pub fn encode(&self, w: &mut Writer) {
        self.session.encode(w);
        w.u32(self.index);
    }

    /// Reads an id.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            session: SessionId::decode(r)?,
            index: r.u32()?,
        })
    }
}

/// Parameters of one presigning run, agreed by all of `P` (chosen by the coordinator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignParams {
    /// Fresh session id of this run; bound into every commitment, proof and presignature id.
    pub session: SessionId,
    /// The presigning set `P`: at least `2t + 1` of the key's parties, all online for the whole run.
    pub parties: BTreeSet<SignerId>,
    /// Number of presignatures to make, `1..=MAX_BATCH`.
    pub batch: u32,
}

impl PresignParams {
    /// Encodes the parameters (tag 0x2a).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::PRESIGN_PARAMS);
        self.session.encode(&mut w);
        group::put_ids(&mut w, self.parties.iter());
        w.u32(self.batch);
        w.finish()
    }

    /// Decodes parameters (ids strictly increasing; range checks happen in [`round1()`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::PRESIGN_PARAMS)?;
        let session = SessionId::decode(&mut r)?;
        let parties = group::get_ids(&mut r)?.into_iter().collect();
        let batch = r.u32()?;
        r.finish()?;
        Ok(Self {
            session,
            parties,
            batch,
        })
    }
}

/// What every round carries: the run's parameters, this party's key material and the Lagrange coefficients of
/// `P`. The secret key share zeroizes on drop.
pub(crate) struct Context {
    pub(crate) session: SessionId,
    pub(crate) me: SignerId,
    /// Polynomial degree `t = k - 1`.
    pub(crate) t: u16,
    /// The presigning set `P`, sorted.
    pub(crate) parties: Vec<SignerId>,
    /// Lagrange coefficients at 0 over `P`, aligned with `parties` (degree `|P| - 1 >= 2t`).
    pub(crate) lambdas: Vec<Scalar>,
    /// Evaluation points `(0, j for j in P)`.
    pub(crate) alphas0: Vec<Scalar>,
    /// Barycentric weights of `alphas0`.
    pub(crate) weights0: Vec<Scalar>,
    /// Barycentric weights of `P` alone.
    pub(crate) weights: Vec<Scalar>,
    pub(crate) batch: usize,
    pub(crate) key_id: KeyId,
    pub(crate) public_key: ProjectivePoint,
    /// Multiples of `X` for `a_i·X` (shared with the key share).
    pub(crate) x_table: Arc<group::FixedBaseTable>,
    pub(crate) public_shares: BTreeMap<SignerId, ProjectivePoint>,
    pub(crate) x: Scalar,
}

impl Context {
    fn new(key: &KeyShare, params: PresignParams) -> Result<Self, Error> {
        let t = key.threshold() - 1;
        check_params(key.threshold(), key.parties())?;
        let parties: Vec<SignerId> = params.parties.into_iter().collect();
        if parties.len() < 2 * usize::from(t) + 1 {
            return Err(Error::UnsupportedParameters(
                "presigning needs at least 2t + 1 parties online",
            ));
        }
        if parties.iter().any(|j| !key.public_shares().contains_key(j)) {
            return Err(Error::Misuse(
                "presigning set contains an id that is not a party of the key",
            ));
        }
        if !parties.contains(&key.id()) {
            return Err(Error::Misuse("this party is not in the presigning set"));
        }
        if params.batch == 0 || params.batch > super::MAX_BATCH {
            return Err(Error::UnsupportedParameters("batch size must be 1..=1024"));
        }
        let lambdas = group::lagrange_at_zero(&parties);
        let mut alphas0 = vec![Scalar::ZERO];
        alphas0.extend(parties.iter().map(|j| group::scalar_of(*j)));
        let weights0 = group::barycentric_weights(&alphas0);
        let weights = group::barycentric_weights(&alphas0[1..]);
        Ok(Self {
            alphas0,
            weights0,
            weights,
            session: params.session,
            me: key.id(),
            t,
            parties,
            lambdas,
            batch: params.batch as usize,
            key_id: key.key_id(),
            public_key: key.public_key(),
            x_table: key.x_table(),
            public_shares: key.public_shares().clone(),
            x: *key.secret(),
        })
    }

    /// A copy (the secret share is copied into a value that zeroizes on drop).
    pub(crate) fn clone_of(&self) -> Self {
        Self {
            session: self.session,
            me: self.me,
            t: self.t,
            parties: self.parties.clone(),
            lambdas: self.lambdas.clone(),
            alphas0: self.alphas0.clone(),
            weights0: self.weights0.clone(),
            weights: self.weights.clone(),
            batch: self.batch,
            key_id: self.key_id,
            public_key: self.public_key,
            x_table: self.x_table.clone(),
            public_shares: self.public_shares.clone(),
            x: self.x,
        }
    }

    /// The other members of `P`.
    pub(crate) fn others(&self) -> impl Iterator<Item = SignerId> + '_ {
        self.parties.iter().copied().filter(move |j| *j != self.me)
    }

    /// Checks that `senders` is exactly `P \ {me}`: unknown senders are culprits, absent ones are missing.
    pub(crate) fn check_senders<'a>(
        &self,
        senders: impl IntoIterator<Item = &'a SignerId> + Clone,
    ) -> Result<(), Error> {
        let unknown: Vec<(SignerId, Fault)> = senders
            .clone()
            .into_iter()
            .filter(|j| **j == self.me || !self.parties.contains(j))
            .map(|j| (*j, Fault::UnknownSender))
            .collect();
        if !unknown.is_empty() {
            return Err(super::culprits(unknown));
        }
        let got: BTreeSet<SignerId> = senders.into_iter().copied().collect();
        let missing: Vec<SignerId> = self.others().filter(|j| !got.contains(j)).collect();
        if !missing.is_empty() {
            return Err(Error::MissingMessages(missing));
        }
        Ok(())
    }

    /// Index of `j` in `P` (0 if absent; callers only ask for members).
    pub(crate) fn position(&self, j: SignerId) -> usize {
        self.parties.iter().position(|p| *p == j).unwrap_or(0)
    }

    /// Lagrange coefficient at 0 of member `j` over `P`.
    pub(crate) fn lambda(&self, j: SignerId) -> Scalar {
        self.parties
            .iter()
            .position(|p| *p == j)
            .map_or(Scalar::ZERO, |i| self.lambdas[i])
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.x.zeroize();
    }
}

/// The public part of a presignature, identical at every member of `P`: what a combiner needs to check
/// signature shares. `K_j = w^{-1}·A_j` and `KX_j = w^{-1}·VX_j` are the per-party commitments to the shares
/// `ρ_j` of `k^{-1}` and `σ_j` of `k^{-1}·x`.
#[derive(Clone, PartialEq, Eq)]
pub struct PresignaturePublic {
    /// Which presignature this is.
    pub id: PresignatureId,
    /// The key it belongs to.
    pub key_id: KeyId,
    /// Quorum `k = t + 1`.
    pub threshold: u16,
    /// `R = k·G` (before re-randomisation).
    pub r_point: ProjectivePoint,
    /// The opened `w = a·k` (DJNPØ's masked nonce).
    pub w: Scalar,
    /// For every member `j` of `P`: `A_j = a_j·G` and `VX_j = v'_j·G` (so `ρ_j·G = w^{-1}A_j`,
    /// `σ_j·G = w^{-1}VX_j`).
    pub commitments: BTreeMap<SignerId, (ProjectivePoint, ProjectivePoint)>,
}

impl PresignaturePublic {
    /// Writes the public part: its points share one batch conversion to affine (one field inversion for all of
    /// them instead of one per point); the bytes are those of [`group::put_point`].
    fn write(&self, w: &mut Writer) {
        let mut points = Vec::with_capacity(1 + 2 * self.commitments.len());
        points.push(self.r_point);
        for (a, vx) in self.commitments.values() {
            points.push(*a);
            points.push(*vx);
        }
        let mut bytes = group::points_to_bytes(&points).into_iter();
        self.id.encode(w);
        self.key_id.encode(w);
        w.u16(self.threshold);
        if let Some(r) = bytes.next() {
            w.raw(&r);
        }
        put_scalar(w, &self.w);
        group::put_ids(w, self.commitments.keys());
        for b in bytes {
            w.raw(&b);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = PresignatureId::decode(r)?;
        let key_id = KeyId::decode(r)?;
        let threshold = r.u16()?;
        let r_point = get_point(r)?;
        let w = group::get_nonzero_scalar(r)?;
        let ids = group::get_ids(r)?;
        if threshold < 2 || ids.len() + 1 < 2 * usize::from(threshold) {
            return Err(DecodeError::Invalid("presignature parameters"));
        }
        let mut commitments = BTreeMap::new();
        for id in ids {
            let a = get_point(r)?;
            let vx = get_point(r)?;
            commitments.insert(id, (a, vx));
        }
        Ok(Self {
            id,
            key_id,
            threshold,
            r_point,
            w,
            commitments,
        })
    }

    /// Encodes (tag 0x27).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::PRESIGNATURE_PUBLIC);
        self.write(&mut w);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::PRESIGNATURE_PUBLIC)?;
        let out = Self::read(&mut r)?;
        r.finish()?;
        Ok(out)
    }
}

impl fmt::Debug for PresignaturePublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignaturePublic")
            .field("id", &self.id)
            .field("threshold", &self.threshold)
            .field("parties", &self.commitments.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One party's presignature: its shares `ρ_i` of `k^{-1}` and `σ_i` of `k^{-1}·x`, and the public part.
/// Not `Clone`: signing consumes it by value, so one in-memory presignature signs at most once. A presignature
/// restored from storage is refused by [`super::sign_share`] once its id is recorded as spent.
pub struct Presignature {
    pub(crate) signer: SignerId,
    pub(crate) rho: Scalar,
    pub(crate) sigma: Scalar,
    pub(crate) public: PresignaturePublic,
}

impl Presignature {
    /// Its id (what must be recorded as spent before a share made with it is released).
    pub fn id(&self) -> PresignatureId {
        self.public.id
    }

    /// The holder's id.
    pub fn signer(&self) -> SignerId {
        self.signer
    }

    /// The public part (for the combiner).
    pub fn public(&self) -> &PresignaturePublic {
        &self.public
    }

    /// Encodes for storage (tag 0x2c): signer, `ρ_i`, `σ_i`, public part. Contains secrets: store encrypted and
    /// authenticated.
    ///
    /// Tag 0x26, the encoding of earlier versions, also held `2^128·R` (128 doublings per presignature at every
    /// member, to halve the doublings of `δ·R` at the few that sign it); it is refused, so a store written by an
    /// earlier version fails closed (its presignatures are discarded as undecodable, never used).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::PRESIGNATURE);
        self.signer.encode(&mut w);
        put_scalar(&mut w, &self.rho);
        put_scalar(&mut w, &self.sigma);
        self.public.write(&mut w);
        w.finish()
    }

    /// Decodes strictly; the signer must be a member of the presigning set.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::PRESIGNATURE)?;
        let signer = SignerId::decode(&mut r)?;
        let rho = get_scalar(&mut r)?;
        let sigma = get_scalar(&mut r)?;
        let public = PresignaturePublic::read(&mut r)?;
        r.finish()?;
        if !public.commitments.contains_key(&signer) {
            return Err(DecodeError::Invalid("signer not in the presigning set").into());
        }
        Ok(Self {
            signer,
            rho,
            sigma,
            public,
        })
    }
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.rho.zeroize();
        self.sigma.zeroize();
    }
}

impl fmt::Debug for Presignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presignature")
            .field("id", &self.public.id)
            .field("signer", &self.signer)
            .field("shares", &"<redacted>")
            .finish()
    }
}

/// The salt `salt_ij` a dealer uses for receiver `j`: `H(label, sid, dealer, j, seed)`.
pub(crate) fn salt_for(ctx: &Context, label: &'static str, seed: &[u8; 32], j: SignerId) -> [u8; 32] {
    let mut tr = group::Transcript::new("salt");
    tr.bytes(label.as_bytes())
        .bytes(ctx.session.as_bytes())
        .id(j)
        .bytes(seed);
    tr.digest()
}

/// Salted hash commitment to the shares a dealer sends one receiver:
/// `H(label, sid, key id, dealer, receiver, shares…, salt)`.
pub(crate) fn share_commitment(
    ctx: &Context,
    label: &'static str,
    dealer: SignerId,
    receiver: SignerId,
    lists: &[&[Scalar]],
    salt: &[u8; 32],
) -> [u8; 32] {
    let mut w = Writer::bare();
    for l in lists {
        group::put_scalars(&mut w, l);
    }
    let mut tr = group::Transcript::new(label);
    tr.bytes(ctx.session.as_bytes())
        .bytes(ctx.key_id.as_bytes())
        .id(dealer)
        .id(receiver)
        .bytes(w.as_slice())
        .bytes(salt);
    tr.digest()
}

/// Appends a list of 32-byte hashes.
pub(crate) fn put_hashes(w: &mut Writer, v: &[[u8; 32]]) {
    w.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
    for h in v {
        w.raw(h);
    }
}

/// Reads a list of 32-byte hashes.
pub(crate) fn get_hashes(r: &mut Reader<'_>) -> Result<Vec<[u8; 32]>, DecodeError> {
    let n = r.count(32)?;
    (0..n).map(|_| r.array::<32>()).collect()
}

/// Appends `batch` Feldman vectors of `t + 1` points each (the count is checked by the round, not here), the
/// points uncompressed like every point list of the presigning broadcasts.
pub(crate) fn put_vectors(w: &mut Writer, vs: &[Vec<ProjectivePoint>]) {
    w.u32(u32::try_from(vs.len()).unwrap_or(u32::MAX));
    for v in vs {
        group::put_points_wide(w, v);
    }
}

/// Reads a list of point vectors.
pub(crate) fn get_vectors(r: &mut Reader<'_>) -> Result<Vec<Vec<ProjectivePoint>>, DecodeError> {
    let n = r.count(4)?;
    (0..n).map(|_| group::get_points_wide(r)).collect()
}

/// `Err(culprits)` if the list is non-empty.
pub(crate) fn fail_if_any(list: Vec<(SignerId, Fault)>) -> Result<(), Error> {
    if list.is_empty() {
        Ok(())
    } else {
        Err(super::culprits(list))
    }
}

/// Marks a sender's message malformed unless `ok`.
pub(crate) fn malformed_unless(ok: bool, id: SignerId, out: &mut Vec<(SignerId, Fault)>) {
    if !ok {
        out.push((id, Fault::Malformed));
    }
}

/// Runs a whole presigning batch with every party of `P` in this process (tests, examples, benchmarks).
/// All of `keys` take part; returns each party's presignatures.
#[cfg(feature = "dealer")]
pub fn run_in_process(
    keys: &[&KeyShare],
    session: SessionId,
    batch: u32,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<BTreeMap<SignerId, Vec<Presignature>>, Error> {
    let params = PresignParams {
        session,
        parties: keys.iter().map(|k| k.id()).collect(),
        batch,
    };
    let mut s1 = BTreeMap::new();
    let mut b1 = BTreeMap::new();
    let mut d1: BTreeMap<SignerId, BTreeMap<SignerId, Round1Direct>> = BTreeMap::new();
    for key in keys {
        let (st, b, d) = round1(key, params.clone(), rng)?;
        s1.insert(key.id(), st);
        b1.insert(key.id(), b);
        for (to, msg) in d {
            d1.entry(to).or_default().insert(key.id(), msg);
        }
    }
    let mut s2 = BTreeMap::new();
    let mut b2 = BTreeMap::new();
    let mut d2: BTreeMap<SignerId, BTreeMap<SignerId, Round2Direct>> = BTreeMap::new();
    for (id, st) in s1 {
        let others: BTreeMap<_, _> = b1
            .iter()
            .filter(|(j, _)| **j != id)
            .map(|(j, b)| (*j, b.clone()))
            .collect();
        let (st, b, d) = st.round2(&others, &d1.remove(&id).unwrap_or_default(), rng)?;
        s2.insert(id, st);
        b2.insert(id, b);
        for (to, msg) in d {
            d2.entry(to).or_default().insert(id, msg);
        }
    }
    let mut s3 = BTreeMap::new();
    let mut b3 = BTreeMap::new();
    for (id, st) in s2 {
        let others: BTreeMap<_, _> = b2
            .iter()
            .filter(|(j, _)| **j != id)
            .map(|(j, b)| (*j, b.clone()))
            .collect();
        let (st, b) = st.round3(&others, &d2.remove(&id).unwrap_or_default(), rng)?;
        s3.insert(id, st);
        b3.insert(id, b);
    }
    let mut out = BTreeMap::new();
    for (id, st) in s3 {
        let others: BTreeMap<_, _> = b3
            .iter()
            .filter(|(j, _)| **j != id)
            .map(|(j, b)| (*j, b.clone()))
            .collect();
        match st.finish(&others, rng)? {
            Finished::Presignatures(p) => {
                out.insert(id, p.into_presignatures());
            }
            Finished::Blame(state, _reveal) => {
                // In-process runs are honest; a blame step here means a bug.
                drop(state);
                return Err(Error::Degenerate("presigning checks failed in an honest run"));
            }
        }
    }
    Ok(out)
}
