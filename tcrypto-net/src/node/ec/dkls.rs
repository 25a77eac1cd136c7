//! DKLs23 at the node (`tcrypto::ecdsa::dkls`, `k`-online threshold ECDSA on P-256): the per-pair setup, the
//! pair states at rest, and the three signing rounds, all relayed by the coordinator in sealed, signed envelopes.
//!
//! | request | this node does | answers |
//! |---|---|---|
//! | `DklsPairStart` | `setup::round1` for the peer | one envelope sealed to the peer (setup round 1) |
//! | `DklsPairRound 2` | `SetupState1::round2` on the peer's message | one envelope sealed to the peer |
//! | `DklsPairRound 3` | `SetupState2::finish`; the pair state is sealed and stored | `Done` |
//! | `DklsSign` | `dkls::round1` (digest fixed here, audited with the request) | one envelope to each other member |
//! | `DklsRound 2` | `Round1State::round2` on the members' round-1 messages | one envelope to each other member |
//! | `DklsRound 3` | `Round2State::round3` | the partial signature (`Share`, to the coordinator only) |
//!
//! **Pair states** (one per peer node, independent of keys) are secrets of the store, `secrets/dkls-pair-<peer
//! identity key in hex>.sealed`: sealed under the store key, written crash-safely, 0600, listed in the store
//! manifest. They are long-lived and reusable (each signature binds fresh nonces into every OT expansion, see
//! `tcrypto::ecdsa::dkls::rvole`), so nothing per signature is ever persisted: a run lives in memory only,
//! at most [`MAX_RUNS`] at once, and expires after [`RUN_TTL_MS`]; a crashed run is simply lost. A pair state
//! that is damaged on disk is moved to `quarantine/` at start; one whose peer failed our OT-extension check is
//! deleted (KOS15's selective failure may have taught the peer a bit of our `Δ`). Either way the node then
//! answers [`ResponseBody::PairsMissing`] for that peer, and the coordinator runs the setup again.
//!
//! **Both sides must hold the same setup.** A pair set up twice concurrently, or restored on one side only,
//! would make honest nodes fail each other's checks. Each round-1 message therefore travels with the setup
//! session of the sender's pair state, and a receiver whose own pair state for that peer has another session
//! answers [`ResponseBody::PairsMissing`] (the pair is set up again) instead of blaming the peer.
//!
//! [`ResponseBody::PairsMissing`]: crate::transport::wire::ResponseBody::PairsMissing

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use rand_core::CryptoRng;
use tcrypto::ecdsa::dkls::{
    self, Fault, PairState, PartialSignature, Round1Msg, Round1State, Round2Msg, Round2State, SignParams,
    setup,
};
use tcrypto::{KeyId, SessionId, SignerId};
use zeroize::Zeroizing;

use super::{Failure, Roster, require_all};
use crate::node::store::SecretStore;
use crate::transport::identity::{NodeIdentity, NodePublic};
use crate::transport::wire::ErrorCode;

/// Most DKLs23 runs (pair setups and signatures, each) a node keeps open at once; beyond, the oldest is dropped.
pub(crate) const MAX_RUNS: usize = 256;

/// A run not advanced for this long is dropped (its one-time secrets with it).
pub(crate) const RUN_TTL_MS: u64 = 60_000;

/// Store name prefix of pair states.
pub(crate) const PAIR_PREFIX: &str = "dkls-pair-";

fn pair_name(peer_key: &[u8; 32]) -> String {
    format!("{PAIR_PREFIX}{}", hex::encode(peer_key))
}

/// What a stage of the protocol a test-only misbehaving node may tamper with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The setup's first message (base-OT sender message with its proof).
    Setup1,
    /// Signing round 1 (commitment and Bob's VOLE message), per recipient.
    Round1,
    /// Signing round 2 (opening, echo, Alice's VOLE message, `Γ`), per recipient.
    Round2,
    /// The partial signature.
    Partial,
}

/// A test-only misbehaving node rewrites (or, `None`, withholds) its own message before it is sealed; `last`:
/// the message goes to the highest-numbered recipient of the round (the one singled out by equivocation and
/// selective silence).
#[cfg(feature = "test-support")]
fn tamper(stage: Stage, last: bool, message: Vec<u8>) -> Option<Vec<u8>> {
    crate::node::misbehave::dkls(stage, last, message)
}

#[cfg(not(feature = "test-support"))]
fn tamper(_stage: Stage, _last: bool, message: Vec<u8>) -> Option<Vec<u8>> {
    Some(message)
}

/// An encoded [`PairState`] (secret: zeroized on drop).
type EncodedPair = Arc<Zeroizing<Vec<u8>>>;

/// The node's pair states, by the peer's identity key (encoded, decoded per run: a [`PairState`] is not `Clone`).
pub(crate) struct Pairs {
    store: Option<Arc<SecretStore>>,
    by_peer: RwLock<HashMap<[u8; 32], EncodedPair>>,
}

impl Pairs {
    /// Pair states kept in `store` (in memory only without one).
    pub(crate) fn new(store: Option<Arc<SecretStore>>) -> Self {
        Self {
            store,
            by_peer: RwLock::new(HashMap::new()),
        }
    }

    /// Loads every pair state of the store. A file that does not open or decode is moved to `quarantine/`; the
    /// returned lines name each such file (the pair is set up again when next needed).
    pub(crate) fn load(&self) -> Vec<String> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let names = match store.list() {
            Ok(n) => n,
            Err(e) => return vec![format!("pair states not listed: {e}")],
        };
        let mut loaded = HashMap::new();
        let mut damaged = Vec::new();
        for name in names {
            let Some(hex_key) = name.strip_prefix(PAIR_PREFIX) else {
                continue;
            };
            let opened = match store.get(&name) {
                Ok(Some(pt)) => PairState::decode(&pt).map_err(|e| e.to_string()).and_then(|_| {
                    let key: [u8; 32] = hex::decode(hex_key)
                        .ok()
                        .and_then(|k| k.try_into().ok())
                        .ok_or_else(|| "file name is not a peer identity key".to_string())?;
                    Ok((key, pt))
                }),
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            match opened {
                Ok((key, pt)) => {
                    loaded.insert(key, Arc::new(pt));
                }
                Err(why) => {
                    let path = store.path_of(&name);
                    damaged.push(match store.quarantine(&name) {
                        Ok(to) => format!(
                            "{}: {why}; moved to {} (the pair is set up again when needed)",
                            path.display(),
                            to.display()
                        ),
                        Err(e) => format!("{}: {why}; could not be moved aside: {e}", path.display()),
                    });
                    // The manifest would report it missing at every start: it is replaced by a new setup.
                    let _ = store.forget(&name);
                }
            }
        }
        if let Ok(mut m) = self.by_peer.write() {
            *m = loaded;
        }
        damaged
    }

    /// The pair state set up with the node `peer_key`, labelled with a key's ids `(me, peer)`: the base OTs of
    /// two nodes serve every key they share, whatever ids a reshare gave them ([`PairState::relabel`]).
    fn get(&self, peer_key: &[u8; 32], me: SignerId, peer: SignerId) -> Option<PairState> {
        let bytes = self.by_peer.read().ok()?.get(peer_key).cloned()?;
        PairState::decode(&bytes).ok()?.relabel(me, peer).ok()
    }

    /// Stores a new pair state (sealed, crash-safely) before it is used.
    fn put(&self, peer_key: &[u8; 32], state: &PairState, rng: &mut impl CryptoRng) -> Result<(), String> {
        let bytes = Zeroizing::new(state.encode());
        if let Some(store) = &self.store {
            store
                .put(&pair_name(peer_key), &bytes, rng)
                .map_err(|e| format!("pair state not stored: {e}"))?;
        }
        if let Ok(mut m) = self.by_peer.write() {
            m.insert(*peer_key, Arc::new(bytes));
        }
        Ok(())
    }

    /// Forgets the pair state for `peer_key` (memory and store).
    fn discard(&self, peer_key: &[u8; 32]) {
        if let Ok(mut m) = self.by_peer.write() {
            m.remove(peer_key);
        }
        if let Some(store) = &self.store
            && let Err(e) = store.delete(&pair_name(peer_key))
        {
            tracing::warn!(error = %e, "pair state not deleted");
        }
    }

    /// Number of pair states held.
    pub(crate) fn len(&self) -> usize {
        self.by_peer.read().map(|m| m.len()).unwrap_or(0)
    }
}

/// The parties of a run resolved against the pinned peers, with their identity keys.
fn resolve(
    listed: &[(SignerId, [u8; 32])],
    me: SignerId,
    own: &NodeIdentity,
    peers: &[NodePublic],
) -> Result<(Roster, BTreeMap<SignerId, [u8; 32]>), Failure> {
    let roster = Roster::resolve_pairs(listed, me, own, peers)?;
    Ok((roster, listed.iter().copied().collect()))
}

fn one_envelope(
    roster: &Roster,
    own: &NodeIdentity,
    run: SessionId,
    round: u8,
    inbox: &[Vec<u8>],
) -> Result<(SignerId, Vec<u8>), Failure> {
    let others: BTreeSet<SignerId> = roster.ids().into_iter().filter(|id| *id != roster.me).collect();
    let got = roster.open(own, run, round, &others, inbox)?;
    require_all(&got.direct, &others, "pair setup message")?;
    got.direct
        .into_iter()
        .next()
        .ok_or_else(|| Failure::refused(ErrorCode::Malformed, "no pair setup message"))
}

enum SetupStep {
    One(Box<setup::SetupState1>),
    Two(Box<setup::SetupState2>),
}

/// A pair setup in progress at this node.
pub(crate) struct SetupRun {
    roster: Roster,
    peer: SignerId,
    peer_key: [u8; 32],
    started_ms: u64,
    step: SetupStep,
}

/// Starts a pair setup with `peer` (round 1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn setup_start(
    run: SessionId,
    me: SignerId,
    peer: SignerId,
    peer_key: [u8; 32],
    own: &NodeIdentity,
    peers: &[NodePublic],
    now_ms: u64,
    rng: &mut impl CryptoRng,
) -> Result<(SetupRun, Vec<Vec<u8>>), Failure> {
    let own_key = own.signing.verifying_key().to_bytes();
    let (roster, _) = resolve(&[(me, own_key), (peer, peer_key)], me, own, peers)?;
    let (state, msg) = setup::round1(run, me, peer, rng)
        .map_err(|e| Failure::refused(ErrorCode::Malformed, e.to_string()))?;
    let Some(bytes) = tamper(Stage::Setup1, true, msg.encode()) else {
        return Err(Failure::refused(ErrorCode::Internal, "withheld"));
    };
    let out = vec![roster.seal(own, run, 1, peer, &bytes, rng)?];
    Ok((
        SetupRun {
            roster,
            peer,
            peer_key,
            started_ms: now_ms,
            step: SetupStep::One(Box::new(state)),
        },
        out,
    ))
}

/// What a setup step produced.
pub(crate) enum SetupOut {
    /// Envelopes to relay; the setup continues.
    Envelopes(SetupRun, Vec<Vec<u8>>),
    /// The pair state is stored.
    Stored,
}

impl SetupRun {
    /// Whether the run is past its time.
    pub(crate) fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.started_ms) > RUN_TTL_MS
    }

    /// Setup round 2 (answer the peer's base-OT sender message) or 3 (finish and store).
    pub(crate) fn advance(
        self,
        run: SessionId,
        round: u8,
        inbox: &[Vec<u8>],
        own: &NodeIdentity,
        pairs: &Pairs,
        rng: &mut impl CryptoRng,
    ) -> Result<SetupOut, Failure> {
        let blame = |e: dkls::Error| Failure::Aborted(e.culprits(), format!("pair setup: {e}"));
        let previous = round
            .checked_sub(1)
            .ok_or_else(|| Failure::refused(ErrorCode::Malformed, "pair setup round 0"))?;
        let (from, message) = one_envelope(&self.roster, own, run, previous, inbox)?;
        if from != self.peer {
            return Err(Failure::refused(
                ErrorCode::Malformed,
                "setup message from another party",
            ));
        }
        match (round, self.step) {
            (2, SetupStep::One(state)) => {
                let m = setup::SetupRound1::decode(&message)
                    .map_err(|e| Failure::blame(from, format!("malformed setup message from {from}: {e}")))?;
                let (state, reply) = state.round2(&m, rng).map_err(blame)?;
                let out = vec![self.roster.seal(own, run, 2, self.peer, &reply.encode(), rng)?];
                Ok(SetupOut::Envelopes(
                    SetupRun {
                        step: SetupStep::Two(Box::new(state)),
                        ..self
                    },
                    out,
                ))
            }
            (3, SetupStep::Two(state)) => {
                let m = setup::SetupRound2::decode(&message)
                    .map_err(|e| Failure::blame(from, format!("malformed setup message from {from}: {e}")))?;
                let pair = state.finish(&m).map_err(blame)?;
                pairs
                    .put(&self.peer_key, &pair, rng)
                    .map_err(|e| Failure::refused(ErrorCode::Storage, e))?;
                Ok(SetupOut::Stored)
            }
            _ => Err(Failure::refused(
                ErrorCode::Malformed,
                format!("pair setup round {round} out of order"),
            )),
        }
    }
}

enum SignStep {
    One(Box<Round1State>),
    Two(Box<Round2State>),
}

/// A DKLs23 signature in progress at this node.
pub(crate) struct SignRun {
    key: KeyId,
    roster: Roster,
    keys: BTreeMap<SignerId, [u8; 32]>,
    pairs: BTreeMap<SignerId, PairState>,
    digest: Vec<u8>,
    started_ms: u64,
    step: SignStep,
}

/// What a signing step produced.
pub(crate) enum SignOut {
    /// Envelopes to relay; the run continues.
    Envelopes(SignRun, Vec<Vec<u8>>),
    /// The partial signature for the coordinator.
    Partial(Vec<u8>),
    /// No usable pair state with these members: the run is over, the pairs need a setup.
    PairsMissing(Vec<SignerId>),
}

/// Length of the setup session that precedes each round-1 message.
const SESSION_LEN: usize = 32;

/// Starts a signature: round 1 among `signers` for `digest`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_start(
    key: KeyId,
    share: &tcrypto::ecdsa::KeyShare,
    signers: &[(SignerId, [u8; 32])],
    digest: &[u8],
    run: SessionId,
    own: &NodeIdentity,
    peers: &[NodePublic],
    pairs: &Pairs,
    now_ms: u64,
    rng: &mut impl CryptoRng,
) -> Result<SignOut, Failure> {
    let me = share.id();
    let (roster, keys) = resolve(signers, me, own, peers)?;
    let mut states = BTreeMap::new();
    let mut missing = Vec::new();
    for (id, peer_key) in keys.iter().filter(|(id, _)| **id != me) {
        match pairs.get(peer_key, me, *id) {
            Some(p) => {
                states.insert(*id, p);
            }
            None => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        return Ok(SignOut::PairsMissing(missing));
    }
    let params = SignParams {
        session: run,
        signers: keys.keys().copied().collect(),
    };
    let (state, msgs) = dkls::round1(share, &states, params, rng)
        .map_err(|e| Failure::refused(ErrorCode::BadEncoding, e.to_string()))?;
    let mut out = Vec::with_capacity(msgs.len());
    let last = msgs.keys().next_back().copied();
    for (to, m) in msgs {
        let Some(pair) = states.get(&to) else { continue };
        let mut bytes = Vec::with_capacity(SESSION_LEN + 10_200);
        bytes.extend_from_slice(pair.session().as_bytes());
        bytes.extend_from_slice(&m.encode());
        if let Some(bytes) = tamper(Stage::Round1, Some(to) == last, bytes) {
            out.push(roster.seal(own, run, 1, to, &bytes, rng)?);
        }
    }
    Ok(SignOut::Envelopes(
        SignRun {
            key,
            roster,
            keys,
            pairs: states,
            digest: digest.to_vec(),
            started_ms: now_ms,
            step: SignStep::One(Box::new(state)),
        },
        out,
    ))
}

fn culprits_of(e: &dkls::Error, what: &str) -> Failure {
    match e {
        dkls::Error::MissingMessages(ids) => Failure::Aborted(ids.clone(), format!("{what}: {e}")),
        _ => Failure::Aborted(e.culprits(), format!("{what}: {e}")),
    }
}

impl SignRun {
    /// The key of the run.
    pub(crate) fn key(&self) -> KeyId {
        self.key
    }

    /// Whether the run is past its time.
    pub(crate) fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.started_ms) > RUN_TTL_MS
    }

    /// Round 2 (on the round-1 messages) or 3 (on the round-2 messages).
    pub(crate) fn advance(
        self,
        run: SessionId,
        round: u8,
        inbox: &[Vec<u8>],
        own: &NodeIdentity,
        pairs: &Pairs,
        rng: &mut impl CryptoRng,
    ) -> Result<SignOut, Failure> {
        let me = self.roster.me;
        let others: BTreeSet<SignerId> = self.keys.keys().copied().filter(|id| *id != me).collect();
        let previous = round
            .checked_sub(1)
            .ok_or_else(|| Failure::refused(ErrorCode::Malformed, "DKLs round 0"))?;
        let got = self.roster.open(own, run, previous, &others, inbox)?;
        require_all(&got.direct, &others, "DKLs messages")?;
        match (round, self.step) {
            (2, SignStep::One(state)) => {
                let mut msgs = BTreeMap::new();
                let mut mismatched = Vec::new();
                for (from, bytes) in &got.direct {
                    let (session, body) = bytes
                        .split_at_checked(SESSION_LEN)
                        .ok_or_else(|| Failure::blame(*from, format!("short round-1 message from {from}")))?;
                    if self
                        .pairs
                        .get(from)
                        .map(|p| p.session().0)
                        .as_ref()
                        .map(<[u8; 32]>::as_slice)
                        != Some(session)
                    {
                        mismatched.push(*from);
                        continue;
                    }
                    let m = Round1Msg::decode(body).map_err(|e| {
                        Failure::blame(*from, format!("malformed round-1 message from {from}: {e}"))
                    })?;
                    msgs.insert(*from, m);
                }
                if !mismatched.is_empty() {
                    // The peer holds another setup than ours (set up twice, or restored on one side): redo it.
                    for id in &mismatched {
                        if let Some(k) = self.keys.get(id) {
                            pairs.discard(k);
                        }
                    }
                    return Ok(SignOut::PairsMissing(mismatched));
                }
                match state.round2(&self.pairs, &msgs, rng) {
                    Ok((state, replies)) => {
                        let mut out = Vec::with_capacity(replies.len());
                        let last = replies.keys().next_back().copied();
                        for (to, m) in replies {
                            if let Some(bytes) = tamper(Stage::Round2, Some(to) == last, m.encode()) {
                                out.push(self.roster.seal(own, run, 2, to, &bytes, rng)?);
                            }
                        }
                        Ok(SignOut::Envelopes(
                            SignRun {
                                step: SignStep::Two(Box::new(state)),
                                ..self
                            },
                            out,
                        ))
                    }
                    Err(e) => {
                        // A peer that failed our OT-extension check may have learnt a bit of our Δ: that pair
                        // state is never used again.
                        if let dkls::Error::Culprits { culprits } = &e {
                            for c in culprits.iter().filter(|c| c.fault == Fault::OtExtensionCheck) {
                                if let Some(k) = self.keys.get(&c.id) {
                                    pairs.discard(k);
                                }
                            }
                        }
                        Err(culprits_of(&e, "DKLs round 2"))
                    }
                }
            }
            (3, SignStep::Two(state)) => {
                let msgs = got
                    .direct
                    .iter()
                    .map(|(from, b)| {
                        Round2Msg::decode(b).map(|m| (*from, m)).map_err(|e| {
                            Failure::blame(*from, format!("malformed round-2 message from {from}: {e}"))
                        })
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()?;
                let partial: PartialSignature = state
                    .round3(&msgs, &self.digest)
                    .map_err(|e| culprits_of(&e, "DKLs round 3"))?;
                match tamper(Stage::Partial, true, partial.encode()) {
                    Some(bytes) => Ok(SignOut::Partial(bytes)),
                    None => Err(Failure::refused(ErrorCode::Internal, "withheld")),
                }
            }
            _ => Err(Failure::refused(
                ErrorCode::Malformed,
                format!("DKLs round {round} out of order"),
            )),
        }
    }
}
