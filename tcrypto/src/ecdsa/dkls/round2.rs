//! Signing round 2 (DKLs23's three-round signing protocol, round 2): Alice's half of every pairwise `Π_RVOLE`
//! with input `(r_i, sk_i)`, the opening of `R_i`, the correction `ψ_{i,j} = φ_i − χ_{i,j}`, and the values
//! `Γ^u_{i,j}`, `Γ^v_{i,j}` of the consistency check.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::round1::{Context, Round1Msg, Round1State};
use super::rvole::{self, AliceMsg, BobState};
use super::setup::PairState;
use super::{Error, Fault, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::ecdsa::group::{self, get_point, get_scalar, put_point, put_scalar};
use crate::id::{SessionId, SignerId};

/// Round-2 message `P_i → P_j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round2Msg {
    /// The session id (cross-checked).
    pub session: SessionId,
    /// `R_i = r_i·G`, opening `com_i`.
    pub big_r: ProjectivePoint,
    /// The commitment's salt.
    pub salt: [u8; 32],
    /// The round-1 commitment of every signer (including `P_i` and `P_j`) as `P_i` received it.
    pub echo: BTreeMap<SignerId, [u8; 32]>,
    /// `ψ_{i,j} = φ_i − χ_{i,j}`, where `χ_{i,j}` is `P_i`'s random input as Bob in the VOLE (Bob `P_i`,
    /// Alice `P_j`): it turns that VOLE's outputs into shares of `φ_i·(r_j, sk_j)`.
    pub psi: Scalar,
    /// Alice's `Π_RVOLE` message for the pair (Bob `P_j`, Alice `P_i`).
    pub vole: AliceMsg,
    /// `Γ^u_{i,j} = c^u_{i,j}·G` (Alice's output for the input `r_i`).
    pub gamma_u: ProjectivePoint,
    /// `Γ^v_{i,j} = c^v_{i,j}·G` (Alice's output for the input `sk_i`).
    pub gamma_v: ProjectivePoint,
}

/// `P_i`'s secret after round 2. One-time (consumed by [`Round2State::round3`]); never persisted.
pub struct Round2State {
    pub(crate) ctx: Context,
    pub(crate) r: Zeroizing<Scalar>,
    pub(crate) phi: Zeroizing<Scalar>,
    pub(crate) big_r: ProjectivePoint,
    /// Every signer's round-1 commitment as received (ours included).
    pub(crate) commitments: BTreeMap<SignerId, [u8; 32]>,
    /// Alice's outputs `(c^u_{i,j}, c^v_{i,j})` per peer `j`.
    pub(crate) alice_out: BTreeMap<SignerId, Zeroizing<[Scalar; 2]>>,
    pub(crate) bobs: BTreeMap<SignerId, BobState>,
}

impl fmt::Debug for Round2State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round2State")
            .field("session", &self.ctx.session)
            .field("me", &self.ctx.me)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

impl Round1State {
    /// Round 2, on the round-1 messages of every other signer (keyed by the authenticated sender): answers
    /// each VOLE as Alice (a failed KOS15 check names that Bob, [`Fault::OtExtensionCheck`]) and opens `R_i`.
    pub fn round2(
        self,
        pairs: &BTreeMap<SignerId, PairState>,
        inbox: &BTreeMap<SignerId, Round1Msg>,
        rng: &mut impl CryptoRng,
    ) -> Result<(Round2State, BTreeMap<SignerId, Round2Msg>), Error> {
        self.ctx.check_inbox(inbox)?;
        let mut culprits = Vec::new();
        for (j, m) in inbox {
            if m.session != self.ctx.session {
                culprits.push((*j, Fault::Malformed));
            }
            match pairs.get(j) {
                Some(p) if p.me() == self.ctx.me && p.peer() == *j => {}
                _ => {
                    return Err(Error::Misuse(
                        "no pair state (base OTs) for a member of the signing set",
                    ));
                }
            }
        }
        super::check_culprits(culprits.clone())?;
        let Round1State {
            ctx,
            r,
            phi,
            big_r,
            salt,
            commitment,
            bobs,
        } = self;
        let mut commitments: BTreeMap<SignerId, [u8; 32]> =
            inbox.iter().map(|(j, m)| (*j, m.commitment)).collect();
        commitments.insert(ctx.me, commitment);
        let mut alice_out = BTreeMap::new();
        let mut out = BTreeMap::new();
        for (j, m) in inbox {
            let base = ctx.vole_base(*j, ctx.me);
            let Some((c, vole)) = rvole::alice(&pairs[j], &base, [*r, *ctx.sk], &m.vole, rng) else {
                culprits.push((*j, Fault::OtExtensionCheck));
                continue;
            };
            out.insert(
                *j,
                Round2Msg {
                    session: ctx.session,
                    big_r,
                    salt,
                    echo: commitments.clone(),
                    psi: *phi - bobs[j].chi,
                    vole,
                    gamma_u: group::mul_g(&c[0]),
                    gamma_v: group::mul_g(&c[1]),
                },
            );
            alice_out.insert(*j, c);
        }
        super::check_culprits(culprits)?;
        Ok((
            Round2State {
                ctx,
                r,
                phi,
                big_r,
                commitments,
                alice_out,
                bobs,
            },
            out,
        ))
    }
}

impl Round2Msg {
    /// Decodes strictly: canonical non-identity points, canonical scalars, echo ids strictly increasing, the
    /// VOLE message of exactly `ξ` rows, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SIGN_ROUND2)?;
        let session = SessionId::decode(&mut r)?;
        let big_r = get_point(&mut r)?;
        let salt = r.array()?;
        let echo = SignerId::decode_map(&mut r, 32, |r| r.array::<32>())?;
        if echo.is_empty() {
            return Err(DecodeError::Invalid("empty echo").into());
        }
        let psi = get_scalar(&mut r)?;
        let vole = AliceMsg::read(&mut r)?;
        let gamma_u = get_point(&mut r)?;
        let gamma_v = get_point(&mut r)?;
        r.finish()?;
        Ok(Self {
            session,
            big_r,
            salt,
            echo,
            psi,
            vole,
            gamma_u,
            gamma_v,
        })
    }

    /// Encodes (tag 0x54): session, `R_i`, salt, echo (`u32` count, then `(id, commitment)` by increasing id),
    /// `ψ`, Alice's VOLE message (`n_A`, `ξ × 3` scalars `τ`, `μ`, digest), `Γ^u`, `Γ^v`.
    pub fn encode(&self) -> Vec<u8> {
        let len = 2 + 32 + 33 + 32 + 4 + self.echo.len() * 34 + 32 + AliceMsg::LEN + 66;
        let mut w = Writer::with_capacity(tag::SIGN_ROUND2, len);
        self.session.encode(&mut w);
        put_point(&mut w, &self.big_r);
        w.raw(&self.salt);
        w.u32(self.echo.len() as u32);
        for (j, c) in &self.echo {
            j.encode(&mut w);
            w.raw(c);
        }
        put_scalar(&mut w, &self.psi);
        self.vole.write(&mut w);
        put_point(&mut w, &self.gamma_u);
        put_point(&mut w, &self.gamma_v);
        w.finish()
    }
}
