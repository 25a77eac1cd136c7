//! Signing round 3 (DKLs23's three-round signing protocol, round 3): the checks (openings, echoes, the
//! multiplication check of every VOLE, and DKLs23's key/nonce consistency check), then the partial signature
//! `(u_i, w_i)` for the combiner.

use std::collections::BTreeMap;

use p256::elliptic_curve::group::GroupEncoding as _;
use p256::elliptic_curve::ops::LinearCombination as _;
use p256::{ProjectivePoint, Scalar};
use zeroize::Zeroizing;

use super::prg::{self, Hash};
use super::round1::commitment;
use super::round2::{Round2Msg, Round2State};
use super::{Error, Fault, tag};
use crate::codec::{Reader, Writer};
use crate::ecdsa::group::{self, get_point, get_scalar, put_point, put_scalar};
use crate::ecdsa::sign::{MAX_DIGEST_LEN, MIN_DIGEST_LEN};
use crate::id::{SessionId, SignerId};

/// `P_i`'s round-3 output, sent to the combiner only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialSignature {
    /// The session id (cross-checked).
    pub session: SessionId,
    /// `R = Σ_j R_j` as `P_i` computed it (the combiner checks that all signers agree).
    pub big_r: ProjectivePoint,
    /// `u_i`, an additive share of `φ·k`.
    pub u: Scalar,
    /// `w_i = m·φ_i + r·v_i`, an additive share of `φ·(m + r·x)`.
    pub w: Scalar,
}

/// The weight that folds the two consistency checks of one peer into one.
fn fold_weight(session: &SessionId, j: SignerId, m: &Round2Msg) -> Scalar {
    let digest = Hash::new("sign/consistency")
        .raw(session.as_bytes())
        .raw(&j.get().to_be_bytes())
        .raw(&m.big_r.to_bytes())
        .raw(&m.gamma_u.to_bytes())
        .raw(&m.gamma_v.to_bytes())
        .finish();
    let mut rho = [Scalar::ZERO];
    prg::scalars(&digest, &mut rho);
    rho[0]
}

impl Round2State {
    /// Round 3, on the round-2 messages of every other signer and the digest to sign (`16..=64` bytes; `m` is
    /// its leftmost 256 bits): checks everything, naming every peer that failed a check, then computes the
    /// partial signature.
    pub fn round3(
        self,
        inbox: &BTreeMap<SignerId, Round2Msg>,
        digest: &[u8],
    ) -> Result<PartialSignature, Error> {
        if !(MIN_DIGEST_LEN..=MAX_DIGEST_LEN).contains(&digest.len()) {
            return Err(Error::Misuse("digest length must be 16..=64 bytes"));
        }
        self.ctx.check_inbox(inbox)?;
        let session = self.ctx.session;
        let me = self.ctx.me;
        let mut culprits = Vec::new();
        for (j, m) in inbox {
            if m.session != session || !m.echo.keys().eq(self.ctx.signers.iter()) {
                culprits.push((*j, Fault::Malformed));
                continue;
            }
            if commitment(&session, *j, &m.big_r, &m.salt) != self.commitments[j] {
                culprits.push((*j, Fault::WrongCommitment));
                continue;
            }
            for (l, echoed) in &m.echo {
                if *echoed != self.commitments[l] {
                    // Our own commitment misreported: first-hand, the echoer lies. Anyone else's: that party
                    // sent two versions (or the echoer lies; either way the run aborts).
                    let who = if *l == me { *j } else { *l };
                    culprits.push((who, Fault::Equivocation));
                }
            }
        }
        super::check_culprits(culprits.clone())?;
        let Round2State {
            ctx,
            r: r_i,
            phi,
            mut big_r,
            commitments: _,
            alice_out,
            bobs,
        } = self;
        let mut sum_u = Zeroizing::new(*r_i * *phi);
        let mut sum_v = Zeroizing::new(*ctx.sk * *phi);
        for (j, bob) in bobs {
            let m = &inbox[&j];
            let chi = bob.chi;
            let Some(d) = bob.finish(&m.vole) else {
                culprits.push((j, Fault::MultiplicationCheck));
                continue;
            };
            // DKLs23's consistency check, both equations folded with a public weight ρ into one constant-time
            // linear combination (χ and d are secret):
            // Γ^u + ρ·Γ^v − χ·R_j − χρλ_j·X_j + (d^u + ρ·d^v)·G = O.
            let rho = fold_weight(&session, j, m);
            let (x_j, lambda_j) = ctx.pk[&j];
            let check = ProjectivePoint::lincomb(&[
                (m.gamma_u, Scalar::ONE),
                (m.gamma_v, rho),
                (m.big_r, -chi),
                (x_j, -(chi * rho * lambda_j)),
                (ProjectivePoint::GENERATOR, d[0] + rho * d[1]),
            ]);
            if check != ProjectivePoint::IDENTITY {
                culprits.push((j, Fault::InconsistentInput));
                continue;
            }
            let c = &alice_out[&j];
            *sum_u += c[0] + *r_i * m.psi + d[0];
            *sum_v += c[1] + *ctx.sk * m.psi + d[1];
            big_r += m.big_r;
        }
        super::check_culprits(culprits)?;
        if big_r == ProjectivePoint::IDENTITY {
            return Err(Error::Degenerate("R is the identity"));
        }
        let r = group::x_coordinate_scalar(&big_r);
        let msg = group::message_scalar(digest);
        let w = msg * *phi + r * *sum_v;
        Ok(PartialSignature {
            session,
            big_r,
            u: *sum_u,
            w,
        })
    }
}

impl PartialSignature {
    /// Encodes (tag 0x55): session, `R`, `u_i`, `w_i`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(tag::PARTIAL_SIGNATURE, 2 + 32 + 33 + 64);
        self.session.encode(&mut w);
        put_point(&mut w, &self.big_r);
        put_scalar(&mut w, &self.u);
        put_scalar(&mut w, &self.w);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::PARTIAL_SIGNATURE)?;
        let out = Self {
            session: SessionId::decode(&mut r)?,
            big_r: get_point(&mut r)?,
            u: get_scalar(&mut r)?,
            w: get_scalar(&mut r)?,
        };
        r.finish()?;
        Ok(out)
    }
}
