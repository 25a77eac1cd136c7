//! Distributed key generation across the nodes (`tcrypto::dkg`, four rounds), one party per node.
//!
//! The dealers are the parties online when the run starts (at least `k`). Round by round the coordinator relays:
//!
//! | request | this node does | answers |
//! |---|---|---|
//! | `DkgStart` | `round1::commit` | round-1 broadcast (hash commitment) |
//! | `DkgRound 2` | `round2::reveal` | round-2 broadcast (echo, Feldman commitments, proof), a sealed share to every other dealer, and a sealed share to every party that is offline |
//! | `DkgRound 3` | `round3::verify` | round-3 broadcast (complaints naming culprits, transcript hash) |
//! | `DkgRound 4` | `round4::finish`, store the share encrypted | `KeyCreated` with the public key set |
//!
//! When a round-3 broadcast carries a complaint about a private share, round 4 is the resolution round of
//! `tcrypto::dkg::resolve` instead, and the run takes two more relayed rounds:
//!
//! | request | this node does | answers |
//! |---|---|---|
//! | `DkgRound 4` | `resolve::answer` | resolution broadcast: the disputed shares this dealer sent, opened |
//! | `DkgRound 5` | `resolve::finish` | confirmation broadcast (echo of every resolution broadcast) |
//! | `DkgRound 6` | `resolve::confirm`, store the share encrypted | `KeyResolved`: the key of the qualified dealers and who was named |
//!
//! A false complaint names its accuser; a true one (or an unanswered one) disqualifies the dealer, and the key is
//! the sum of the qualified dealers' contributions.
//!
//! Equivocation is caught by the DKG itself: the round-2 broadcast echoes every round-1 broadcast and round 3
//! confirms a hash of the whole public transcript; the coordinator registers the key only when every dealer
//! answers the same public key set. A party that was offline receives, when it returns (`DkgDeliver`), every
//! dealer's signed round-2 broadcast and the share each dealer sealed to it; it checks each share against that
//! dealer's Feldman commitments (naming a dealer whose share does not match), sums them, and checks that the
//! commitments give the key id the coordinator claims.
//!
//! **Nothing a key needs lives only in the coordinator.** A dealer keeps, with its share, what the offline
//! parties need from it (its signed round-2 broadcast and the shares it sealed to them, a
//! [`crate::transport::wire::KeptDelivery`]), so any later coordinator can gather them from the dealers
//! ([`crate::transport::wire::RequestBody::DkgPending`]) and deliver; a delivered party is confirmed to the dealers
//! ([`crate::transport::wire::RequestBody::DkgDelivered`]), who then drop it. And a dealer stores its share *tentatively*:
//! it serves the key only once the coordinator's [`crate::transport::wire::RequestBody::DkgCommit`] reaches it, which the
//! coordinator sends when every dealer reported the same key (see `crate::coordinator` for the rollback rule).

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use tcrypto::dkg::{
    self, Curve, Ed25519, Message as _, P256, Parameters, resolve, round1, round2, round3, round4,
};
use tcrypto::{KeyId, SignerId};

use super::{Failure, Roster, require_all};
use crate::algo::{EcdsaPublicKey, ecdsa_bundles, ed25519_bundles};
use crate::transport::bundle::ShareBundle;
use crate::transport::identity::NodeIdentity;
use std::sync::Mutex;

use crate::algo::Refusal;
use crate::node::store::SecretStore;
use crate::transport::wire::{Algorithm, DkgSetup, ErrorCode, KeptDelivery, ResponseBody};

/// A curve whose DKG results this node can hold.
pub(crate) trait HeldCurve: Curve {
    /// Wraps a run of this curve.
    fn wrap(run: DkgRun<Self>) -> AnyDkg;
    /// Converts a result into the stored bundle.
    fn bundle(share: dkg::KeyShare<Self>) -> Result<ShareBundle, String>;
}

impl HeldCurve for P256 {
    fn wrap(run: DkgRun<Self>) -> AnyDkg {
        AnyDkg::P256(Box::new(run))
    }

    fn bundle(share: dkg::KeyShare<Self>) -> Result<ShareBundle, String> {
        let ecdsa = share.to_ecdsa().map_err(|e| e.to_string())?;
        let pk = EcdsaPublicKey::new(share.public().clone())?;
        ecdsa_bundles(&pk, &[ecdsa])
            .pop()
            .ok_or_else(|| "no bundle".to_string())
    }
}

impl HeldCurve for Ed25519 {
    fn wrap(run: DkgRun<Self>) -> AnyDkg {
        AnyDkg::Ed25519(Box::new(run))
    }

    fn bundle(share: dkg::KeyShare<Self>) -> Result<ShareBundle, String> {
        let ed = tcrypto::ed25519::KeyShare::from_dkg(share).map_err(|e| e.to_string())?;
        ed25519_bundles(&ed.public().clone(), &[ed])
            .pop()
            .ok_or_else(|| "no bundle".to_string())
    }
}

enum State<C: Curve> {
    Committed(round1::State<C>),
    Revealed(round2::State<C>),
    Verified(round3::State<C>),
    /// Resolving complaints: this dealer's answers are out.
    Answered(resolve::State<C>),
    /// Resolving complaints: this party's confirmation is out.
    Confirming(resolve::ConfirmState<C>),
}

/// A run in progress at this node.
pub(crate) struct DkgRun<C: Curve> {
    setup: DkgSetup,
    roster: Roster,
    dealers: BTreeSet<SignerId>,
    state: State<C>,
    /// This dealer's round-2 broadcast and the shares it sealed to the parties that are offline.
    for_absent: Vec<Vec<u8>>,
}

/// A run of either curve.
pub(crate) enum AnyDkg {
    /// ECDSA P-256 key.
    P256(Box<DkgRun<P256>>),
    /// Ed25519 key.
    Ed25519(Box<DkgRun<Ed25519>>),
}

/// What a round produced.
pub(crate) enum Step {
    /// Envelopes to relay; the run continues.
    Continue(AnyDkg, Vec<Vec<u8>>),
    /// The run ended with this node's share, and what it keeps for the offline parties (if any).
    Created(ShareBundle, Option<KeptDelivery>),
    /// The run ended, after the resolution round, with this node's share; the parties named, the dealers
    /// disqualified, and what it keeps for the offline parties (if any).
    Resolved(ShareBundle, Vec<SignerId>, Vec<SignerId>, Option<KeptDelivery>),
}

/// What the dealer of `run` keeps for the parties that did not deal, once the key is known.
fn kept_for_absent(
    (setup, roster, dealers): (&DkgSetup, &Roster, &BTreeSet<SignerId>),
    for_absent: Vec<Vec<u8>>,
    key: KeyId,
    qualified: &BTreeSet<SignerId>,
) -> Option<KeptDelivery> {
    let absent: Vec<SignerId> = roster.ids().difference(dealers).copied().collect();
    if absent.is_empty() || !qualified.contains(&roster.me) {
        return None;
    }
    Some(KeptDelivery {
        key,
        setup: DkgSetup {
            me: roster.me,
            dealers: qualified.iter().copied().collect(),
            ..setup.clone()
        },
        absent,
        envelopes: for_absent,
    })
}

fn aborted(e: &dkg::Error) -> Failure {
    match e {
        dkg::Error::InvalidParameters(_) | dkg::Error::InvalidResult(_) => {
            Failure::Aborted(Vec::new(), e.to_string())
        }
        _ => Failure::Aborted(e.culprits(), e.to_string()),
    }
}

fn other_dealers(dealers: &BTreeSet<SignerId>, me: SignerId) -> BTreeSet<SignerId> {
    dealers.iter().copied().filter(|d| *d != me).collect()
}

fn decode_each<M: dkg::Message>(
    messages: &BTreeMap<SignerId, Vec<u8>>,
) -> Result<BTreeMap<SignerId, M>, Failure> {
    messages
        .iter()
        .map(|(id, b)| {
            dkg::decode_from::<M>(*id, b)
                .map(|m| (*id, m))
                .map_err(|e| aborted(&e))
        })
        .collect()
}

/// Starts a run as dealer `setup.me`.
pub(crate) fn start(
    setup: DkgSetup,
    roster: Roster,
    own: &NodeIdentity,
    rng: &mut impl CryptoRng,
) -> Result<(AnyDkg, Vec<Vec<u8>>), Failure> {
    match setup.algorithm {
        Algorithm::EcdsaP256 => start_on::<P256>(setup, roster, own, rng),
        Algorithm::Ed25519 => start_on::<Ed25519>(setup, roster, own, rng),
        other => Err(Failure::refused(
            ErrorCode::Unsupported,
            format!("no DKG for {}", other.name()),
        )),
    }
}

fn start_on<C: HeldCurve>(
    setup: DkgSetup,
    roster: Roster,
    own: &NodeIdentity,
    rng: &mut impl CryptoRng,
) -> Result<(AnyDkg, Vec<Vec<u8>>), Failure> {
    let dealers: BTreeSet<SignerId> = setup.dealers.iter().copied().collect();
    if !dealers.contains(&setup.me) {
        return Err(Failure::refused(
            ErrorCode::Malformed,
            "this node is not a dealer of the run",
        ));
    }
    let params = Parameters::new(setup.run, setup.threshold, dealers.iter().copied())
        .map_err(|e| Failure::refused(ErrorCode::Malformed, e.to_string()))?;
    let (state, b1) = round1::commit::<C>(params, setup.me, rng).map_err(|e| aborted(&e))?;
    let out = vec![roster.broadcast(own, setup.run, 1, &b1.encode())?];
    Ok((
        C::wrap(DkgRun {
            setup,
            roster,
            dealers,
            state: State::Committed(state),
            for_absent: Vec::new(),
        }),
        out,
    ))
}

impl AnyDkg {
    /// Runs round `round` with the relayed envelopes.
    pub(crate) fn advance(
        self,
        round: u8,
        envelopes: &[Vec<u8>],
        own: &NodeIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<Step, Failure> {
        match self {
            AnyDkg::P256(run) => run.advance(round, envelopes, own, rng),
            AnyDkg::Ed25519(run) => run.advance(round, envelopes, own, rng),
        }
    }
}

impl<C: HeldCurve> DkgRun<C> {
    fn advance(
        self,
        round: u8,
        envelopes: &[Vec<u8>],
        own: &NodeIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<Step, Failure> {
        let DkgRun {
            setup,
            roster,
            dealers,
            state,
            mut for_absent,
        } = self;
        let run = setup.run;
        let others = other_dealers(&dealers, roster.me);
        let previous = round
            .checked_sub(1)
            .ok_or_else(|| Failure::refused(ErrorCode::Malformed, "DKG round 0"))?;
        let inbox = roster.open(own, run, previous, &others, envelopes)?;
        require_all(&inbox.broadcasts, &others, "broadcasts")?;
        match (round, state) {
            (2, State::Committed(st)) => {
                let received = decode_each::<round1::Broadcast<C>>(&inbox.broadcasts)?;
                let mut out = Vec::new();
                for absent in roster.ids().difference(&dealers) {
                    let share = st.share_for_non_dealer(*absent).map_err(|e| aborted(&e))?;
                    out.push(roster.seal(own, run, 2, *absent, &share.encode(), rng)?);
                }
                let (st, b2, shares) = round2::reveal(st, &received).map_err(|e| aborted(&e))?;
                out.push(roster.broadcast(own, run, 2, &b2.encode())?);
                for_absent.clone_from(&out);
                for (to, share) in shares {
                    out.push(roster.seal(own, run, 2, to, &share.encode(), rng)?);
                }
                Ok(Step::Continue(
                    C::wrap(DkgRun {
                        setup,
                        roster,
                        dealers,
                        state: State::Revealed(st),
                        for_absent,
                    }),
                    out,
                ))
            }
            (3, State::Revealed(st)) => {
                require_all(&inbox.direct, &others, "private shares")?;
                let broadcasts = decode_each::<round2::Broadcast<C>>(&inbox.broadcasts)?;
                let shares = decode_each::<round2::Share<C>>(&inbox.direct)?;
                let (st, b3) = round3::verify(st, &broadcasts, shares).map_err(|e| aborted(&e))?;
                let out = vec![roster.broadcast(own, run, 3, &b3.encode())?];
                Ok(Step::Continue(
                    C::wrap(DkgRun {
                        setup,
                        roster,
                        dealers,
                        state: State::Verified(st),
                        for_absent,
                    }),
                    out,
                ))
            }
            (4, State::Verified(st)) => {
                let broadcasts = decode_each::<round3::Broadcast<C>>(&inbox.broadcasts)?;
                if st.needs_resolution(&broadcasts) {
                    let (st, answers) = resolve::answer(st, &broadcasts).map_err(|e| aborted(&e))?;
                    let out = vec![roster.broadcast(own, run, 4, &answers.encode())?];
                    return Ok(Step::Continue(
                        C::wrap(DkgRun {
                            setup,
                            roster,
                            dealers,
                            state: State::Answered(st),
                            for_absent,
                        }),
                        out,
                    ));
                }
                let share = round4::finish(st, &broadcasts).map_err(|e| aborted(&e))?;
                let bundle = full_bundle::<C>(&setup, &roster, share)?;
                let parts = (&setup, &roster, &dealers);
                let kept = kept_for_absent(parts, for_absent, bundle.info.key, &dealers);
                Ok(Step::Created(bundle, kept))
            }
            (5, State::Answered(st)) => {
                let answers = decode_each::<resolve::Broadcast<C>>(&inbox.broadcasts)?;
                let (st, confirmation) = resolve::finish(st, &answers).map_err(|e| aborted(&e))?;
                let out = vec![roster.broadcast(own, run, 5, &confirmation.encode())?];
                Ok(Step::Continue(
                    C::wrap(DkgRun {
                        setup,
                        roster,
                        dealers,
                        state: State::Confirming(st),
                        for_absent,
                    }),
                    out,
                ))
            }
            (6, State::Confirming(st)) => {
                let confirmations = decode_each::<resolve::Confirmation<C>>(&inbox.broadcasts)?;
                let resolved = resolve::confirm(st, &confirmations).map_err(|e| aborted(&e))?;
                let culprits = resolved.culprits.keys().copied().collect();
                let disqualified = dealers.difference(&resolved.qualified).copied().collect();
                let bundle = full_bundle::<C>(&setup, &roster, resolved.share)?;
                let parts = (&setup, &roster, &dealers);
                let kept = kept_for_absent(parts, for_absent, bundle.info.key, &resolved.qualified);
                Ok(Step::Resolved(bundle, culprits, disqualified, kept))
            }
            _ => Err(Failure::refused(
                ErrorCode::Malformed,
                format!("DKG round {round} out of order"),
            )),
        }
    }
}

/// This party's share of a finished run as a bundle, with the public shares of every party of the key (dealers
/// and parties that were offline alike).
fn full_bundle<C: HeldCurve>(
    setup: &DkgSetup,
    roster: &Roster,
    share: dkg::KeyShare<C>,
) -> Result<ShareBundle, Failure> {
    let full = dkg::PublicKeySet::<C>::new(
        setup.threshold,
        &roster.ids(),
        share.public().commitments().to_vec(),
    )
    .map_err(|e| aborted(&e))?;
    let share = dkg::KeyShare::from_parts(roster.me, *share.secret(), full).map_err(|e| aborted(&e))?;
    C::bundle(share).map_err(|e| Failure::Aborted(Vec::new(), e))
}

/// Builds this node's share from a run it missed (see the module docs).
pub(crate) fn deliver(
    setup: &DkgSetup,
    roster: &Roster,
    key: KeyId,
    envelopes: &[Vec<u8>],
    own: &NodeIdentity,
) -> Result<ShareBundle, Failure> {
    let bundle = match setup.algorithm {
        Algorithm::EcdsaP256 => deliver_on::<P256>(setup, roster, envelopes, own)?,
        Algorithm::Ed25519 => deliver_on::<Ed25519>(setup, roster, envelopes, own)?,
        other => {
            return Err(Failure::refused(
                ErrorCode::Unsupported,
                format!("no DKG for {}", other.name()),
            ));
        }
    };
    if bundle.info.key != key {
        return Err(Failure::refused(
            ErrorCode::BadBundle,
            "the dealers' commitments give another key than the one delivered",
        ));
    }
    Ok(bundle)
}

fn deliver_on<C: HeldCurve>(
    setup: &DkgSetup,
    roster: &Roster,
    envelopes: &[Vec<u8>],
    own: &NodeIdentity,
) -> Result<ShareBundle, Failure> {
    let dealers: BTreeSet<SignerId> = setup.dealers.iter().copied().collect();
    if dealers.contains(&roster.me) {
        return Err(Failure::refused(
            ErrorCode::Malformed,
            "a dealer is not delivered its share",
        ));
    }
    let inbox = roster.open(own, setup.run, 2, &dealers, envelopes)?;
    require_all(&inbox.broadcasts, &dealers, "dealer broadcasts")?;
    require_all(&inbox.direct, &dealers, "sealed shares")?;
    let broadcasts = decode_each::<round2::Broadcast<C>>(&inbox.broadcasts)?;
    let shares = decode_each::<round2::Share<C>>(&inbox.direct)?;
    let k = usize::from(setup.threshold);
    let x = C::scalar_from_u16(roster.me.get());
    let mut group = vec![C::identity(); k];
    let mut secret = zeroize::Zeroizing::new(C::zero());
    for (dealer, b) in &broadcasts {
        if b.commitments.len() != k {
            return Err(Failure::blame(*dealer, "wrong number of Feldman commitments"));
        }
        let expected = b
            .commitments
            .iter()
            .rev()
            .fold(C::identity(), |acc, &a| acc * x + a);
        let share = shares
            .get(dealer)
            .ok_or_else(|| Failure::blame(*dealer, "no sealed share"))?;
        if C::mul_base(&share.value) != expected {
            return Err(Failure::blame(
                *dealer,
                format!("share from dealer {dealer} does not match its Feldman commitments"),
            ));
        }
        for (acc, p) in group.iter_mut().zip(&b.commitments) {
            *acc = *acc + *p;
        }
        *secret = *secret + *share.value;
    }
    let full = dkg::PublicKeySet::<C>::new(setup.threshold, &roster.ids(), group).map_err(|e| aborted(&e))?;
    let share = dkg::KeyShare::from_parts(roster.me, *secret, full).map_err(|e| aborted(&e))?;
    C::bundle(share).map_err(|e| Failure::Aborted(Vec::new(), e))
}

/// Most DKG runs a node keeps open at once (the oldest is dropped beyond).
pub(crate) const MAX_RUNS: usize = 16;

/// Store-name prefix of a share stored at the end of a DKG, before the coordinator's commit.
const TENTATIVE_PREFIX: &str = "dkgtentative-";
/// Store-name prefix of what a dealer keeps for the offline parties of a key.
const KEPT_PREFIX: &str = "dkgkept-";
/// Store-name prefix of the record that a settling coordinator gave a key creation up
/// ([`crate::transport::wire::RequestBody::DkgAbandon`]).
const ABANDONED_PREFIX: &str = "dkgabandoned-";

/// A node's DKG state that outlives a run: tentative shares (stored, not served until committed) and the
/// deliveries it keeps as a dealer. Both are written to the node's encrypted store before they are answered.
///
/// A tentative record holds the share, when it was stored and what this dealer keeps for the offline parties,
/// in one file: a crash leaves either all of it or nothing. The commit writes the key, then the kept deliveries,
/// and removes the tentative record last, so a crash in between is repaired by the next commit (idempotent).
#[derive(Default)]
pub(crate) struct Keeping {
    tentative: Mutex<BTreeMap<KeyId, Tentative>>,
    kept: Mutex<BTreeMap<KeyId, KeptDelivery>>,
    /// Key creations a settling coordinator gave up here: their commit and any late tentative share are refused
    /// until [`Keeping::forget`] (the deletion that ends the roll-back) or a commit of a served key.
    abandoned: Mutex<BTreeSet<KeyId>>,
}

/// A share stored at the end of a DKG, waiting for the commit.
struct Tentative {
    bundle: ShareBundle,
    /// When it was stored (node clock, ms).
    at: u64,
    kept: Option<KeptDelivery>,
}

impl Tentative {
    fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let bundle = self.bundle.encode();
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(12 + bundle.len()));
        out.extend_from_slice(&self.at.to_be_bytes());
        out.extend_from_slice(&u32::try_from(bundle.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&bundle);
        if let Some(k) = &self.kept {
            out.extend_from_slice(&k.encode());
        }
        out
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let (at, rest) = b.split_at_checked(8)?;
        let (len, rest) = rest.split_at_checked(4)?;
        let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
        let (bundle, kept) = rest.split_at_checked(len)?;
        Some(Self {
            bundle: ShareBundle::decode(bundle).ok()?,
            at: u64::from_be_bytes(at.try_into().ok()?),
            kept: if kept.is_empty() {
                None
            } else {
                Some(KeptDelivery::decode(kept).ok()?)
            },
        })
    }
}

fn storage(e: impl std::fmt::Display) -> Refusal {
    (ErrorCode::Storage, e.to_string())
}

fn poisoned() -> Refusal {
    (ErrorCode::Internal, "DKG state lock poisoned".to_string())
}

impl Keeping {
    /// Reads the tentative shares and kept deliveries of `store`. A record that does not open or decode is moved
    /// to the store's quarantine and named in the returned list (the others load); only a store that cannot be
    /// listed is an error.
    pub(crate) fn load(&self, store: &SecretStore) -> Result<Vec<String>, String> {
        let mut tentative = BTreeMap::new();
        let mut kept = BTreeMap::new();
        let mut abandoned = BTreeSet::new();
        let mut damaged = Vec::new();
        for name in store.list().map_err(|e| e.to_string())? {
            // The record's name carries the key; its content is the key again (a damaged one is still a
            // refusal to commit: when in doubt, the creation stays abandoned).
            if let Some(key) = name.strip_prefix(ABANDONED_PREFIX) {
                match hex::decode(key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                    Some(key) => {
                        abandoned.insert(KeyId(key));
                    }
                    None => damaged.push(format!(
                        "{}: not named after a key id",
                        store.path_of(&name).display()
                    )),
                }
                continue;
            }
            let is_tentative = name.starts_with(TENTATIVE_PREFIX);
            if !is_tentative && !name.starts_with(KEPT_PREFIX) {
                continue;
            }
            let opened = match store.get(&name) {
                Ok(Some(pt)) if is_tentative => Tentative::decode(&pt)
                    .map(|t| {
                        tentative.insert(t.bundle.info.key, t);
                    })
                    .ok_or_else(|| "undecodable".to_string()),
                Ok(Some(pt)) => KeptDelivery::decode(&pt)
                    .map(|k| {
                        kept.insert(k.key, k);
                    })
                    .map_err(|e| e.to_string()),
                Ok(None) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = opened {
                let path = store.path_of(&name);
                damaged.push(match store.quarantine(&name) {
                    Ok(to) => format!("{}: {why}; moved to {}", path.display(), to.display()),
                    Err(e) => format!("{}: {why}; could not be moved aside: {e}", path.display()),
                });
            }
        }
        *self.tentative.lock().map_err(|_| "DKG state lock poisoned")? = tentative;
        *self.kept.lock().map_err(|_| "DKG state lock poisoned")? = kept;
        *self.abandoned.lock().map_err(|_| "DKG state lock poisoned")? = abandoned;
        Ok(damaged)
    }

    /// Stores a share made by a DKG tentatively (crash-safe) with what this dealer keeps for offline parties.
    pub(crate) fn hold(
        &self,
        store: Option<&SecretStore>,
        bundle: ShareBundle,
        kept: Option<KeptDelivery>,
        now_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        let key = bundle.info.key;
        let t = Tentative {
            bundle,
            at: now_ms,
            kept,
        };
        if let Some(store) = store {
            store
                .put(&format!("{TENTATIVE_PREFIX}{key}"), &t.encode(), rng)
                .map_err(storage)?;
        }
        self.tentative.lock().map_err(|_| poisoned())?.insert(key, t);
        Ok(())
    }

    /// Whether a settling coordinator gave the creation of `key` up here.
    pub(crate) fn is_abandoned(&self, key: &KeyId) -> bool {
        // A poisoned lock is a refusal too.
        self.abandoned.lock().map(|a| a.contains(key)).unwrap_or(true)
    }

    /// The abandoned creations, locked: a commit and an abandonment of the same key each run whole under it
    /// (lock order: this, then the node's key table).
    pub(crate) fn lock_abandoned(&self) -> Result<std::sync::MutexGuard<'_, BTreeSet<KeyId>>, Refusal> {
        self.abandoned.lock().map_err(|_| poisoned())
    }

    /// Records, crash-safely and before it is answered, that the creation of `key` is abandoned here.
    pub(crate) fn abandon(
        store: Option<&SecretStore>,
        abandoned: &mut BTreeSet<KeyId>,
        key: &KeyId,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        if let Some(store) = store {
            store
                .put(&format!("{ABANDONED_PREFIX}{key}"), key.as_bytes(), rng)
                .map_err(storage)?;
        }
        abandoned.insert(*key);
        Ok(())
    }

    /// Clears the abandonment record of `key`.
    pub(crate) fn unabandon(
        store: Option<&SecretStore>,
        abandoned: &mut BTreeSet<KeyId>,
        key: &KeyId,
    ) -> Result<(), Refusal> {
        if abandoned.contains(key) {
            if let Some(store) = store {
                store
                    .delete(&format!("{ABANDONED_PREFIX}{key}"))
                    .map_err(storage)?;
            }
            abandoned.remove(key);
        }
        Ok(())
    }

    /// The tentative share of `key`, if there is one (to be committed).
    pub(crate) fn tentative(&self, key: &KeyId) -> Option<ShareBundle> {
        let t = self.tentative.lock().ok()?;
        t.get(key).map(|t| ShareBundle {
            info: t.bundle.info.clone(),
            share: t.bundle.share.clone(),
        })
    }

    /// The tentative share of `key` is now a served key: its kept deliveries are written on their own and the
    /// tentative record goes (last).
    pub(crate) fn committed(
        &self,
        store: Option<&SecretStore>,
        key: &KeyId,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        let kept = match self.tentative.lock().map_err(|_| poisoned())?.get(key) {
            Some(t) => t.kept.clone(),
            None => return Ok(()),
        };
        if let Some(k) = kept {
            if let Some(store) = store {
                store
                    .put(&format!("{KEPT_PREFIX}{key}"), &k.encode(), rng)
                    .map_err(storage)?;
            }
            self.kept.lock().map_err(|_| poisoned())?.insert(*key, k);
        }
        if let Some(store) = store {
            store
                .delete(&format!("{TENTATIVE_PREFIX}{key}"))
                .map_err(storage)?;
        }
        self.tentative.lock().map_err(|_| poisoned())?.remove(key);
        Ok(())
    }

    /// Drops everything about `key` (rolled back or deleted); whether there was a tentative share.
    pub(crate) fn forget(&self, store: Option<&SecretStore>, key: &KeyId) -> Result<bool, Refusal> {
        if let Some(store) = store {
            store.delete(&format!("{KEPT_PREFIX}{key}")).map_err(storage)?;
            store
                .delete(&format!("{TENTATIVE_PREFIX}{key}"))
                .map_err(storage)?;
        }
        self.kept.lock().map_err(|_| poisoned())?.remove(key);
        // The abandonment record goes last: a crash before leaves the creation abandoned, never committable.
        Self::unabandon(store, &mut *self.lock_abandoned()?, key)?;
        Ok(self
            .tentative
            .lock()
            .map_err(|_| poisoned())?
            .remove(key)
            .is_some())
    }

    /// Party `party` got its share of `key`: it is dropped from what this dealer keeps.
    pub(crate) fn delivered(
        &self,
        store: Option<&SecretStore>,
        key: &KeyId,
        party: SignerId,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        let mut kept = self.kept.lock().map_err(|_| poisoned())?;
        let Some(k) = kept.get_mut(key) else { return Ok(()) };
        k.absent.retain(|p| *p != party);
        let name = format!("{KEPT_PREFIX}{key}");
        if k.absent.is_empty() {
            if let Some(store) = store {
                store.delete(&name).map_err(storage)?;
            }
            kept.remove(key);
        } else if let Some(store) = store {
            store.put(&name, &k.encode(), rng).map_err(storage)?;
        }
        Ok(())
    }

    /// The answer to [`crate::transport::wire::RequestBody::DkgPending`]: `held` (the committed keys), the tentative shares
    /// with their age, and the kept deliveries, of committed and tentative shares (the coordinator delivers only
    /// keys that some node serves).
    pub(crate) fn report(&self, held: Vec<KeyId>, now_ms: u64) -> ResponseBody {
        let mut kept: Vec<KeptDelivery> = self
            .kept
            .lock()
            .map(|k| k.values().cloned().collect())
            .unwrap_or_default();
        let mut tentative = Vec::new();
        if let Ok(t) = self.tentative.lock() {
            for (key, t) in t.iter() {
                tentative.push((*key, now_ms.saturating_sub(t.at)));
                kept.extend(t.kept.iter().cloned());
            }
        }
        ResponseBody::DkgPending {
            held,
            tentative,
            kept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sealed::{Envelope, Route};
    use tcrypto::SessionId;

    fn id(n: u16) -> SignerId {
        SignerId::new(n).unwrap()
    }

    /// Three dealers run the relayed DKG in this process; `corrupt` may rewrite what party 2 sends in round 2.
    /// Each result is the party's share and the parties its resolution round named.
    type Outcome = Result<(ShareBundle, Vec<SignerId>), Failure>;

    fn run(corrupt: bool) -> Vec<Outcome> {
        let mut rng = rand::rng();
        let ids: Vec<NodeIdentity> = (1..=3)
            .map(|i| NodeIdentity::generate(&format!("n{i}"), &mut rng).unwrap())
            .collect();
        let publics: Vec<_> = ids.iter().map(NodeIdentity::public).collect();
        let keys: Vec<[u8; 32]> = publics.iter().map(|p| p.identity_key).collect();
        let setup = |me: u16| DkgSetup {
            run: SessionId([7; 32]),
            algorithm: Algorithm::Ed25519,
            threshold: 2,
            me: id(me),
            parties: keys.clone(),
            dealers: vec![id(1), id(2), id(3)],
        };
        let mut states = Vec::new();
        let mut outbox: Vec<Vec<Vec<u8>>> = Vec::new();
        for (i, own) in ids.iter().enumerate() {
            let me = u16::try_from(i + 1).unwrap();
            let roster = Roster::resolve(&keys, id(me), own, &publics).unwrap();
            let (s, out) = start(setup(me), roster, own, &mut rng).unwrap();
            states.push(s);
            outbox.push(out);
        }
        let mut results: Vec<Option<Outcome>> = (0..3).map(|_| None).collect();
        for round in 2..=6u8 {
            let mut next_states = Vec::new();
            let mut next_outbox = Vec::new();
            for (i, state) in states.into_iter().enumerate() {
                let me = id(u16::try_from(i + 1).unwrap());
                let inbox: Vec<Vec<u8>> = outbox
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, envs)| envs.clone())
                    .filter(|b| {
                        let to = Envelope::decode(b).unwrap().route.to;
                        to.is_none() || to == Some(me)
                    })
                    .collect();
                match state.advance(round, &inbox, &ids[i], &mut rng) {
                    Ok(Step::Continue(s, mut out)) => {
                        if corrupt && round == 2 && i == 1 {
                            // Party 2 sends party 1 a share that is not on its committed polynomial, properly
                            // sealed and signed (a Byzantine dealer, not a forging relay).
                            for b in &mut out {
                                let env = Envelope::decode(b).unwrap();
                                if env.route.to == Some(id(1)) {
                                    let bad = round2::Share::<Ed25519> {
                                        value: zeroize::Zeroizing::new(Ed25519::scalar_from_u16(42)),
                                    };
                                    let route = Route { ..env.route };
                                    *b = Envelope::seal(
                                        route,
                                        &bad.encode(),
                                        &ids[0].hpke_public,
                                        &ids[1].signing,
                                        &mut rng,
                                    )
                                    .unwrap()
                                    .encode();
                                }
                            }
                        }
                        next_states.push(s);
                        next_outbox.push(out);
                    }
                    Ok(Step::Created(b, _)) => results[i] = Some(Ok((b, Vec::new()))),
                    Ok(Step::Resolved(b, named, _, _)) => results[i] = Some(Ok((b, named))),
                    Err(f) => results[i] = Some(Err(f)),
                }
            }
            if next_states.len() < 3 {
                break;
            }
            states = next_states;
            outbox = next_outbox;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Failure::Aborted(Vec::new(), "stopped".into()))))
            .collect()
    }

    #[test]
    fn relayed_dkg_gives_every_dealer_a_share_of_one_key() {
        let out = run(false);
        let infos: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().ok().unwrap().0.info.clone())
            .collect();
        assert!(
            infos
                .iter()
                .all(|i| i.key == infos[0].key && i.public == infos[0].public)
        );
    }

    #[test]
    fn a_complaint_about_a_private_share_is_settled_by_the_resolution_round() {
        // Party 2 seals party 1 a share off its commitments; party 1 complains in round 3; party 2's node then
        // reveals the share it computed, which opens its commitments: every party ends with the same key, made
        // from all three dealers, and names the accuser whose complaint the public answer refuted.
        let out = run(true);
        let done: Vec<_> = out.iter().map(|r| r.as_ref().ok().unwrap()).collect();
        assert!(
            done.iter()
                .all(|(b, named)| b.info.key == done[0].0.info.key && *named == vec![id(1)])
        );
    }
}
