//! Signing round 1 (DKLs23's three-round signing protocol, round 1): nonce share, commitment, and Bob's half of
//! every pairwise `Π_RVOLE`.
//!
//! Every round consumes the previous round's secret state, so a nonce share or a VOLE state cannot be used
//! twice; this does not compile:
//!
//! ```compile_fail
//! # use std::collections::BTreeMap;
//! # use tcrypto::SignerId;
//! # use tcrypto::ecdsa::dkls::{PairState, Round1Msg, Round1State};
//! fn twice(
//!     state: Round1State,
//!     pairs: &BTreeMap<SignerId, PairState>,
//!     inbox: &BTreeMap<SignerId, Round1Msg>,
//!     rng: &mut impl rand_core::CryptoRng,
//! ) {
//!     let _ = state.round2(pairs, inbox, rng);
//!     let _ = state.round2(pairs, inbox, rng); // error[E0382]: use of moved value: `state`
//! }
//! ```
//!
//! while using it once does:
//!
//! ```
//! # use std::collections::BTreeMap;
//! # use tcrypto::SignerId;
//! # use tcrypto::ecdsa::dkls::{PairState, Round1Msg, Round1State};
//! fn once(
//!     state: Round1State,
//!     pairs: &BTreeMap<SignerId, PairState>,
//!     inbox: &BTreeMap<SignerId, Round1Msg>,
//!     rng: &mut impl rand_core::CryptoRng,
//! ) {
//!     let _ = state.round2(pairs, inbox, rng);
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use p256::elliptic_curve::group::GroupEncoding as _;
use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::prg::Hash;
use super::rvole::{self, BobMsg, BobState};
use super::setup::PairState;
use super::{Error, tag};
use crate::codec::{Reader, Writer};
use crate::ecdsa::KeyShare;
use crate::ecdsa::group;
use crate::id::{KeyId, SessionId, SignerId};

/// What the coordinator fixes for one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignParams {
    /// A fresh session id (bound into every hash of the run; a reused one is harmless for the OTs, see
    /// [`super::rvole`], but the coordinator must not reuse it so that runs cannot be confused).
    pub session: SessionId,
    /// The signing set `S` (`k <= |S| <= n`, ids of the key's parties, including this party).
    pub signers: BTreeSet<SignerId>,
}

/// Round-1 message `P_i → P_j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round1Msg {
    /// The session id (cross-checked).
    pub session: SessionId,
    /// `com_i = H(sid, i, R_i, salt_i)` (the same to every `P_j`).
    pub commitment: [u8; 32],
    /// Bob's `Π_RVOLE` message for the pair (Bob `P_i`, Alice `P_j`).
    pub vole: BobMsg,
}

/// What every round knows about the run.
pub(crate) struct Context {
    pub(crate) session: SessionId,
    pub(crate) me: SignerId,
    pub(crate) signers: Vec<SignerId>,
    pub(crate) key_id: KeyId,
    /// `(X_j, λ_j)` for every signer: its public key share and Lagrange coefficient over `S`, so that
    /// `pk_j = λ_j·X_j` (computed only inside the consistency check's linear combination).
    pub(crate) pk: BTreeMap<SignerId, (ProjectivePoint, Scalar)>,
    /// `sk_i = λ_i·x_i`.
    pub(crate) sk: Zeroizing<Scalar>,
}

impl Context {
    /// The context of the `Π_RVOLE` with `bob` and `alice`.
    pub(crate) fn vole_base(&self, bob: SignerId, alice: SignerId) -> [u8; 32] {
        let mut h = Hash::new("sign/vole")
            .raw(self.session.as_bytes())
            .raw(self.key_id.as_bytes())
            .u32(self.signers.len() as u32);
        for j in &self.signers {
            h = h.raw(&j.get().to_be_bytes());
        }
        h.raw(&bob.get().to_be_bytes())
            .raw(&alice.get().to_be_bytes())
            .finish()
    }

    /// The other signers.
    pub(crate) fn others(&self) -> impl Iterator<Item = SignerId> + '_ {
        self.signers.iter().copied().filter(move |j| *j != self.me)
    }

    /// Checks that `inbox` holds exactly one message from each other signer.
    pub(crate) fn check_inbox<M>(&self, inbox: &BTreeMap<SignerId, M>) -> Result<(), Error> {
        let unknown: Vec<_> = inbox
            .keys()
            .filter(|j| **j == self.me || !self.signers.contains(j))
            .map(|j| (*j, super::Fault::UnknownSender))
            .collect();
        super::check_culprits(unknown)?;
        let missing: Vec<SignerId> = self.others().filter(|j| !inbox.contains_key(j)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingMessages(missing))
        }
    }
}

/// `com = H(sid, i, R_i, salt)`.
pub(crate) fn commitment(
    session: &SessionId,
    i: SignerId,
    big_r: &ProjectivePoint,
    salt: &[u8; 32],
) -> [u8; 32] {
    Hash::new("sign/commit")
        .raw(session.as_bytes())
        .raw(&i.get().to_be_bytes())
        .raw(&big_r.to_bytes())
        .raw(salt)
        .finish()
}

/// `P_i`'s secret after round 1. One-time (consumed by [`Round1State::round2`]); never persisted.
pub struct Round1State {
    pub(crate) ctx: Context,
    /// `r_i`, the nonce share.
    pub(crate) r: Zeroizing<Scalar>,
    /// `φ_i`, the inversion mask.
    pub(crate) phi: Zeroizing<Scalar>,
    pub(crate) big_r: ProjectivePoint,
    pub(crate) salt: [u8; 32],
    pub(crate) commitment: [u8; 32],
    /// Bob's state of the VOLE with each other signer.
    pub(crate) bobs: BTreeMap<SignerId, BobState>,
}

impl fmt::Debug for Round1State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round1State")
            .field("session", &self.ctx.session)
            .field("me", &self.ctx.me)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// Checks the parameters and the pair states, and converts the Shamir share to an additive share over `S`.
pub(crate) fn context(
    key: &KeyShare,
    pairs: &BTreeMap<SignerId, PairState>,
    params: SignParams,
) -> Result<Context, Error> {
    let signers: Vec<SignerId> = params.signers.into_iter().collect();
    if signers.len() < usize::from(key.threshold()) {
        return Err(Error::UnsupportedParameters(
            "the signing set has fewer than k parties",
        ));
    }
    if signers.iter().any(|j| !key.public_shares().contains_key(j)) {
        return Err(Error::Misuse(
            "the signing set contains an id that is not a party of the key",
        ));
    }
    if !signers.contains(&key.id()) {
        return Err(Error::Misuse("this party is not in the signing set"));
    }
    for j in signers.iter().filter(|j| **j != key.id()) {
        match pairs.get(j) {
            Some(p) if p.me() == key.id() && p.peer() == *j => {}
            _ => {
                return Err(Error::Misuse(
                    "no pair state (base OTs) for a member of the signing set",
                ));
            }
        }
    }
    let lambdas = group::lagrange_at_zero(&signers);
    let mut sk = Zeroizing::new(Scalar::ZERO);
    let mut pk = BTreeMap::new();
    for (j, l) in signers.iter().zip(&lambdas) {
        if *j == key.id() {
            *sk = *key.secret() * l;
        }
        pk.insert(*j, (key.public_shares()[j], *l));
    }
    Ok(Context {
        session: params.session,
        me: key.id(),
        signers,
        key_id: key.key_id(),
        pk,
        sk,
    })
}

/// Round 1: draws `r_i`, `φ_i`, commits to `R_i = r_i·G`, and starts a `Π_RVOLE` as Bob with every other
/// signer. `pairs` holds this party's [`PairState`] for (at least) every other member of the signing set.
pub fn round1(
    key: &KeyShare,
    pairs: &BTreeMap<SignerId, PairState>,
    params: SignParams,
    rng: &mut impl CryptoRng,
) -> Result<(Round1State, BTreeMap<SignerId, Round1Msg>), Error> {
    let ctx = context(key, pairs, params)?;
    let r = Zeroizing::new(group::random_nonzero_scalar(rng));
    let phi = Zeroizing::new(group::random_nonzero_scalar(rng));
    let big_r = group::mul_g(&r);
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let com = commitment(&ctx.session, ctx.me, &big_r, &salt);
    let mut bobs = BTreeMap::new();
    let mut out = BTreeMap::new();
    for j in ctx.others() {
        let (state, vole) = rvole::bob_start(&pairs[&j], &ctx.vole_base(ctx.me, j), rng);
        bobs.insert(j, state);
        out.insert(
            j,
            Round1Msg {
                session: ctx.session,
                commitment: com,
                vole,
            },
        );
    }
    Ok((
        Round1State {
            ctx,
            r,
            phi,
            big_r,
            salt,
            commitment: com,
            bobs,
        },
        out,
    ))
}

impl Round1Msg {
    /// Encodes (tag 0x53): session, commitment, `n_B`, the `κ` columns `u_l`, `x̃`, `t̃` (10,122 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(tag::SIGN_ROUND1, 2 + 64 + BobMsg::LEN);
        self.session.encode(&mut w);
        w.raw(&self.commitment);
        self.vole.write(&mut w);
        w.finish()
    }

    /// Decodes strictly (exact length, no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SIGN_ROUND1)?;
        let session = SessionId::decode(&mut r)?;
        let commitment = r.array()?;
        let vole = BobMsg::read(&mut r)?;
        r.finish()?;
        Ok(Self {
            session,
            commitment,
            vole,
        })
    }
}
