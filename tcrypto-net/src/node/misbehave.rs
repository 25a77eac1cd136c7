//! Test-only Byzantine behaviour of a signer node (feature `test-support`, never in a release build).
//!
//! A `tcrypto-node serve` started with `TCRYPTO_NODE_MISBEHAVE` set rewrites its own answers before they leave, so
//! that multi-process tests run real daemons, over the real transport, that lie in the ways a compromised node
//! would. The variable holds a comma-separated list of modes:
//!
//! - `corrupt-shares`: every signature share (RSA, ECDSA, FROST) is altered in its last octet, so it still decodes
//!   in most cases but is wrong (for RSA shares with a proof, the proof no longer holds; an RSA share without a
//!   proof, of an ordinary-modulus key, has its value altered, which only the combiner's subset search catches);
//! - `replay`: every signature share is answered with the share body this node sent for the previous signature
//!   request (an old answer under the new request id);
//! - `late:MS`: every answer is held back for `MS` milliseconds (past the coordinator's request timeout, the
//!   answer arrives for a request the coordinator has given up on);
//! - `forge-keys`: key listings report every EC key with another public key set of the same group key
//!   (threshold 1, every public share equal to the group key);
//! - `steal-signer`: key listings report every key under the next party's signer id, which this node does not
//!   hold, instead of its own; with `forge-keys` too, every key is listed twice, forged under its own id and true
//!   under the stolen one;
//! - `dkls-setup=proof`: the first pair-setup message carries a wrong proof of knowledge (base OT);
//! - `dkls-round1=MODE`, `dkls-round2=MODE`, `dkls-partial=MODE` (DKLs23 signing, `crate::node::ec::dkls`): the node
//!   alters its own message of that round before sealing and signing it, so the coordinator relays a message that
//!   really comes from this node. Round 1: `value` (a wrong KOS15 check value `t̃`), `equivocate` (another
//!   commitment to the highest-numbered other member), `silent` (no message to the highest-numbered other
//!   member). Round 2: `value` (an opening `R_i` that is not the committed one), `proof` (a wrong `Γ^u`, the
//!   consistency-check value), `vole` (a wrong multiplication-check value `μ`), `silent`. Partial signature:
//!   `value` (a wrong `u_i`, which only the combiner's verification catches), `silent` (refused).
//! - `reshare-subshare` (a Byzantine old holder in a reshare, `crate::node::reshare`): every sub-share the node deals to
//!   another new holder is off by one (well-formed, but not on its committed polynomial), and its answers to the
//!   complaints repeat the wrong values (it claims it dealt correctly), so the new holders exclude it
//!   ([`tcrypto::reshare::Fault::InvalidShare`]) and name it.
//! - `reshare-commitment`: the node's dealing does not fit its sub-shares: for P-256 and Ed25519 its constant-term
//!   Feldman commitment is not its old verification share `X_i` (the generator added,
//!   [`tcrypto::reshare::Fault::WrongCommitment`]); for RSA its first commitment `C_i1` is altered in its last
//!   octet, so no sub-share matches it and the node's honest answers to the complaints do not either
//!   ([`tcrypto::reshare::Fault::InvalidShare`]). A node dealing to itself keeps the altered dealing too.
//! - `reshare-equivocate`: the node deals twice, two honest dealings of its share with different polynomials, and
//!   keeps one for itself (as a new holder) while broadcasting the other: the only split a node can make behind an
//!   honest relay, which forwards one signed broadcast to everyone. The echoes in the verdicts disagree and every
//!   new holder excludes it ([`tcrypto::reshare::Fault::Equivocation`]). A node that does not receive signs two
//!   dealings and broadcasts both: the coordinator relays neither (two signed broadcasts of one round prove the
//!   equivocation), names it, and the new holders exclude it as silent ([`tcrypto::reshare::Fault::Silent`]).
//! - `reshare-silent`: the node takes part in every round but never deals: no dealing, no sub-share, no answer
//!   ([`tcrypto::reshare::Fault::Silent`]).
//! - `reshare-garbled`: every sub-share the node deals to another new holder is cut short by one octet (it does
//!   not decode), and its answers to the complaints are off by one as with `reshare-subshare`, so the new holders
//!   complain and exclude it ([`tcrypto::reshare::Fault::InvalidShare`]).
//!
//! The node's real state is untouched: it still refuses what it would refuse, spends what it would spend and audits
//! the request as it arrived.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use p256::{ProjectivePoint, Scalar};
use tcrypto::SignerId;
use tcrypto::dkg::{self, Ed25519, P256};
use tcrypto::ecdsa::dkls::{PartialSignature, Round1Msg, Round2Msg, setup};

use crate::node::ec::dkls::Stage;

use crate::transport::wire::{Algorithm, KeyInfo, Response, ResponseBody};

/// The environment variable that turns misbehaviour on.
pub const ENV: &str = "TCRYPTO_NODE_MISBEHAVE";

/// What a misbehaving node does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Modes {
    /// Alter every signature share.
    pub corrupt_shares: bool,
    /// Answer every signature request with the previous share.
    pub replay: bool,
    /// Hold every answer back this long.
    pub late: Option<Duration>,
    /// Report forged public key sets.
    pub forge_keys: bool,
    /// Report keys under another party's signer id.
    pub steal_signer: bool,
    /// DKLs23 tampering, per stage: `(stage name, mode)`.
    pub dkls: Vec<(String, String)>,
    /// How the node misbehaves as a dealer of a reshare (`reshare-*`).
    pub reshare: Option<Reshare>,
}

/// A Byzantine old holder's behaviour in a reshare (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshare {
    /// `reshare-subshare`: wrong sub-shares, stood by.
    SubShare,
    /// `reshare-commitment`: a dealing whose commitments do not fit.
    Commitment,
    /// `reshare-equivocate`: one dealing kept, another broadcast.
    Equivocate,
    /// `reshare-silent`: never deals.
    Silent,
    /// `reshare-garbled`: sub-shares that do not decode.
    Garbled,
}

impl Modes {
    /// Parses the comma-separated list of [`ENV`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut modes = Self::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "corrupt-shares" => modes.corrupt_shares = true,
                "replay" => modes.replay = true,
                "forge-keys" => modes.forge_keys = true,
                "steal-signer" => modes.steal_signer = true,
                "reshare-subshare" => modes.reshare = Some(Reshare::SubShare),
                "reshare-commitment" => modes.reshare = Some(Reshare::Commitment),
                "reshare-equivocate" => modes.reshare = Some(Reshare::Equivocate),
                "reshare-silent" => modes.reshare = Some(Reshare::Silent),
                "reshare-garbled" => modes.reshare = Some(Reshare::Garbled),
                w if w.starts_with("dkls-") => {
                    let (stage, mode) = w
                        .split_once('=')
                        .ok_or_else(|| format!("{ENV}: {w:?} needs =MODE"))?;
                    let known = match stage {
                        "dkls-setup" => ["proof"].contains(&mode),
                        "dkls-round1" => ["value", "equivocate", "silent"].contains(&mode),
                        "dkls-round2" => ["value", "proof", "vole", "silent"].contains(&mode),
                        "dkls-partial" => ["value", "silent"].contains(&mode),
                        _ => false,
                    };
                    if !known {
                        return Err(format!("{ENV}: unknown misbehaviour {w:?}"));
                    }
                    modes.dkls.push((stage.to_string(), mode.to_string()));
                }
                _ => match word.strip_prefix("late:").map(str::parse::<u64>) {
                    Some(Ok(ms)) => modes.late = Some(Duration::from_millis(ms)),
                    _ => return Err(format!("{ENV}: unknown misbehaviour {word:?}")),
                },
            }
        }
        Ok(modes)
    }
}

struct Active {
    modes: Modes,
    last_share: Mutex<Option<ResponseBody>>,
}

static ACTIVE: OnceLock<Active> = OnceLock::new();

/// Reads [`ENV`] and, when it is set, makes this process misbehave; returns the modes turned on.
pub fn install_from_env() -> Result<Option<Modes>, String> {
    let Ok(text) = std::env::var(ENV) else {
        return Ok(None);
    };
    let modes = Modes::parse(&text)?;
    let _ = ACTIVE.set(Active {
        modes: modes.clone(),
        last_share: Mutex::new(None),
    });
    Ok(Some(modes))
}

/// The DKLs23 tampering mode installed for `stage`, if any.
fn dkls_mode(stage: Stage) -> Option<&'static str> {
    let name = match stage {
        Stage::Setup1 => "dkls-setup",
        Stage::Round1 => "dkls-round1",
        Stage::Round2 => "dkls-round2",
        Stage::Partial => "dkls-partial",
    };
    ACTIVE
        .get()?
        .modes
        .dkls
        .iter()
        .find(|(s, _)| s == name)
        .map(|(_, m)| m.as_str())
}

/// Rewrites (or, `None`, withholds) this node's own DKLs23 message of `stage`, before it is sealed;
/// `last`: `to` is the highest-numbered recipient of the round, the one `equivocate` and `silent` single out.
pub(crate) fn dkls(stage: Stage, last: bool, message: Vec<u8>) -> Option<Vec<u8>> {
    let Some(mode) = dkls_mode(stage) else {
        return Some(message);
    };
    let singled_out = last;
    match (stage, mode) {
        (Stage::Setup1, "proof") => {
            let mut m = setup::SetupRound1::decode(&message).ok()?;
            m.ot.proof_response += Scalar::ONE;
            Some(m.encode())
        }
        (Stage::Round1, "value") => {
            let mut m = message;
            if let Some(b) = m.last_mut() {
                *b ^= 0x01;
            }
            Some(m)
        }
        (Stage::Round1, "equivocate") if singled_out => {
            // The 32-byte pair session, then the round-1 message.
            let (session, body) = message.split_at_checked(32)?;
            let mut r1 = Round1Msg::decode(body).ok()?;
            r1.commitment[0] ^= 0x01;
            let mut out = session.to_vec();
            out.extend_from_slice(&r1.encode());
            Some(out)
        }
        (Stage::Round1 | Stage::Round2, "silent") if singled_out => None,
        (Stage::Round2, "value") => {
            let mut m = Round2Msg::decode(&message).ok()?;
            m.big_r += ProjectivePoint::GENERATOR;
            Some(m.encode())
        }
        (Stage::Round2, "proof") => {
            let mut m = Round2Msg::decode(&message).ok()?;
            m.gamma_u += ProjectivePoint::GENERATOR;
            Some(m.encode())
        }
        (Stage::Round2, "vole") => {
            let mut m = Round2Msg::decode(&message).ok()?;
            m.vole.mu += Scalar::ONE;
            Some(m.encode())
        }
        (Stage::Partial, "value") => {
            let mut m = PartialSignature::decode(&message).ok()?;
            m.u += Scalar::ONE;
            Some(m.encode())
        }
        (Stage::Partial, "silent") => None,
        _ => Some(message),
    }
}

/// A reshare message of this node's, before it is sealed or signed (`crate::node::reshare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReshareMessage {
    /// The dealing (broadcast; also kept when the node deals to itself).
    Dealing,
    /// A sub-share dealt to another new holder.
    SubShare,
    /// The answer to the complaints (the disputed sub-shares, revealed).
    Answer,
}

fn reshare_mode() -> Option<Reshare> {
    ACTIVE.get().and_then(|a| a.modes.reshare)
}

/// Whether this node deals twice and keeps one dealing for itself (`reshare-equivocate`).
pub(crate) fn reshare_equivocates() -> bool {
    reshare_mode() == Some(Reshare::Equivocate)
}

/// Rewrites this node's own reshare message of `algorithm` as the installed `reshare-*` mode says (unchanged
/// otherwise); `None`: the message is withheld.
pub(crate) fn reshare(what: ReshareMessage, algorithm: Algorithm, message: Vec<u8>) -> Option<Vec<u8>> {
    let Some(mode) = reshare_mode() else {
        return Some(message);
    };
    let changed = match (mode, what) {
        (Reshare::Silent, _) => return None,
        (Reshare::SubShare, ReshareMessage::SubShare) => bump_sub_share_of(algorithm, &message),
        (Reshare::SubShare | Reshare::Garbled, ReshareMessage::Answer) => bump_answer_of(algorithm, &message),
        (Reshare::Garbled, ReshareMessage::SubShare) => {
            let mut m = message.clone();
            m.pop();
            Some(m)
        }
        (Reshare::Commitment, ReshareMessage::Dealing) => wrong_commitment(algorithm, &message),
        _ => None,
    };
    Some(changed.unwrap_or(message))
}

fn bump_sub_share_of(algorithm: Algorithm, message: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        Algorithm::EcdsaP256 => bump_sub_share::<P256>(message),
        Algorithm::Ed25519 => bump_sub_share::<Ed25519>(message),
        Algorithm::Rsa => tcrypto::rsa::reshare::SubShare::decode(message)
            .ok()
            .map(|mut s| {
                if let Some(b) = s.value.last_mut() {
                    *b ^= 0x01;
                }
                s.encode().to_vec()
            }),
    }
}

fn bump_answer_of(algorithm: Algorithm, message: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        Algorithm::EcdsaP256 => bump_answer::<P256>(message),
        Algorithm::Ed25519 => bump_answer::<Ed25519>(message),
        Algorithm::Rsa => tcrypto::rsa::reshare::Answer::decode(message).ok().map(|mut a| {
            for v in a.answers.values_mut() {
                if let Some(b) = v.last_mut() {
                    *b ^= 0x01;
                }
            }
            a.encode()
        }),
    }
}

/// The dealing with its constant-term commitment moved by the generator (EC), or its first commitment altered in
/// its last octet (RSA).
fn wrong_commitment(algorithm: Algorithm, message: &[u8]) -> Option<Vec<u8>> {
    fn ec<C: dkg::Curve>(message: &[u8]) -> Option<Vec<u8>> {
        use tcrypto::dkg::Message as _;
        let mut d = tcrypto::reshare::round1::Dealing::<C>::decode(message).ok()?;
        let c0 = d.commitments.first_mut()?;
        *c0 = *c0 + C::generator();
        Some(d.encode())
    }
    match algorithm {
        Algorithm::EcdsaP256 => ec::<P256>(message),
        Algorithm::Ed25519 => ec::<Ed25519>(message),
        Algorithm::Rsa => {
            let mut d = tcrypto::rsa::reshare::Dealing::decode(message).ok()?;
            let b = d.commitments.first_mut()?.last_mut()?;
            *b ^= 0x01;
            Some(d.encode())
        }
    }
}

fn bump_sub_share<C: dkg::Curve>(message: &[u8]) -> Option<Vec<u8>> {
    use tcrypto::dkg::Message as _;
    let mut s = tcrypto::reshare::round1::SubShare::<C>::decode(message).ok()?;
    *s.value = *s.value + C::scalar_from_u16(1);
    Some(s.encode().to_vec())
}

fn bump_answer<C: dkg::Curve>(message: &[u8]) -> Option<Vec<u8>> {
    use tcrypto::dkg::Message as _;
    let mut a = tcrypto::reshare::round3::Answer::<C>::decode(message).ok()?;
    for v in a.answers.values_mut() {
        *v = *v + C::scalar_from_u16(1);
    }
    Some(a.encode())
}

/// Alters a signature share in its last octet; an RSA share without a proof (an ordinary-modulus key) in the
/// last octet of its value instead, so that it still decodes and passes the range checks and only the combiner's
/// subset search can tell it is wrong.
fn corrupt_share(share: &mut Vec<u8>) {
    if let Ok(mut rsa_share) = tcrypto::rsa::SignatureShare::decode(share)
        && rsa_share.proof.is_none()
        && let Some(b) = rsa_share.value.last_mut()
    {
        *b ^= 0x01;
        *share = rsa_share.encode();
    } else if let Some(b) = share.last_mut() {
        *b ^= 0x01;
    }
}

/// Rewrites an answer frame as the installed modes say (unchanged when none are installed).
pub(crate) fn apply(frame: Vec<u8>) -> Vec<u8> {
    let Some(active) = ACTIVE.get() else {
        return frame;
    };
    if let Some(delay) = active.modes.late {
        std::thread::sleep(delay);
    }
    let Ok(mut resp) = Response::decode(&frame) else {
        return frame;
    };
    match &mut resp.body {
        ResponseBody::Share { share, .. } => {
            if active.modes.replay {
                let mut last = active.last_share.lock().unwrap_or_else(|e| e.into_inner());
                let current = resp.body.clone();
                if let Some(previous) = last.replace(current) {
                    resp.body = previous;
                }
            } else if active.modes.corrupt_shares {
                corrupt_share(share);
            }
        }
        ResponseBody::Keys(infos) if active.modes.forge_keys || active.modes.steal_signer => {
            let mut lies = Vec::with_capacity(infos.len() * 2);
            for info in infos.iter() {
                if active.modes.forge_keys
                    && let Some(public) = other_public_set(info)
                {
                    lies.push(KeyInfo {
                        threshold: 1,
                        public,
                        ..info.clone()
                    });
                }
                if active.modes.steal_signer
                    && let Some(other) = SignerId::new(info.signer.get() % info.parties.max(1) + 1)
                {
                    lies.push(KeyInfo {
                        signer: other,
                        ..info.clone()
                    });
                }
            }
            *infos = lies;
        }
        _ => return frame,
    }
    resp.encode()
}

/// Another public key set of the same group key: threshold 1, every party's public share equal to the group key.
fn other_public_set(info: &KeyInfo) -> Option<Vec<u8>> {
    match info.algorithm {
        Algorithm::EcdsaP256 => {
            let set = dkg::PublicKeySet::<P256>::decode(&info.public).ok()?;
            let ids = set.public_shares().keys().copied().collect();
            Some(
                dkg::PublicKeySet::<P256>::new(1, &ids, vec![set.public_key()])
                    .ok()?
                    .encode(),
            )
        }
        Algorithm::Ed25519 => {
            let set = tcrypto::ed25519::PublicKeySet::decode(&info.public).ok()?;
            let inner = set.as_dkg();
            let ids = inner.public_shares().keys().copied().collect();
            let forged = dkg::PublicKeySet::<Ed25519>::new(1, &ids, vec![inner.public_key()]).ok()?;
            Some(tcrypto::ed25519::PublicKeySet::from_dkg(forged).ok()?.encode())
        }
        Algorithm::Rsa => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unknown_modes_are_refused() {
        let m = Modes::parse("corrupt-shares, late:250,forge-keys").unwrap();
        assert!(m.corrupt_shares && m.forge_keys && !m.replay && !m.steal_signer);
        assert_eq!(m.late, Some(Duration::from_millis(250)));
        assert!(Modes::parse("replay").unwrap().replay);
        assert!(Modes::parse("late:soon").is_err());
        assert!(Modes::parse("steal-keys").is_err());
        let m = Modes::parse("dkls-round1=equivocate,dkls-partial=value").unwrap();
        assert_eq!(m.dkls.len(), 2);
        assert!(Modes::parse("dkls-round1=lie").is_err());
        assert!(Modes::parse("dkls-round3=value").is_err());
        assert_eq!(
            Modes::parse("reshare-subshare").unwrap().reshare,
            Some(Reshare::SubShare)
        );
        assert_eq!(
            Modes::parse("reshare-equivocate").unwrap().reshare,
            Some(Reshare::Equivocate)
        );
        assert!(Modes::parse("reshare-lie").is_err());
    }
}
