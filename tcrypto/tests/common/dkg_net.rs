//! An in-process network for DKG tests: every message is encoded by its sender and decoded by its recipient, and
//! hooks may tamper with the bytes or the values of any (sender, recipient) copy — which is how a party
//! equivocates, sends a wrong share or an identity point.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::type_complexity)]

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tcrypto::SignerId;
use tcrypto::dkg::{
    self, Curve, Error, KeyShare, Message, Parameters, resolve, round1, round2, round3, round4,
};

/// A seeded RNG that prints its seed, so a failure can be replayed.
pub fn seeded_rng(label: &str) -> StdRng {
    let seed: u64 = std::env::var("TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{label}: TEST_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

pub fn id(i: u16) -> SignerId {
    SignerId::new(i).unwrap()
}

pub fn ids(n: u16) -> Vec<SignerId> {
    (1..=n).map(id).collect()
}

/// Tampering hooks, each called on the copy from `from` to `to`.
pub struct Hooks<C: Curve> {
    pub round1: Box<dyn FnMut(SignerId, SignerId, &mut round1::Broadcast<C>)>,
    pub round2: Box<dyn FnMut(SignerId, SignerId, &mut round2::Broadcast<C>)>,
    pub share: Box<dyn FnMut(SignerId, SignerId, &mut round2::Share<C>)>,
    /// Called on encoded share bytes (after `share`).
    pub share_bytes: Box<dyn FnMut(SignerId, SignerId, &mut Vec<u8>)>,
    /// Called on encoded round-2 broadcast bytes (after `round2`).
    pub round2_bytes: Box<dyn FnMut(SignerId, SignerId, &mut Vec<u8>)>,
    pub round3: Box<dyn FnMut(SignerId, SignerId, &mut round3::Broadcast<C>)>,
    /// Called on the resolution broadcast; returning `false` withholds that copy (a silent dealer).
    pub resolve: Box<dyn FnMut(SignerId, SignerId, &mut resolve::Broadcast<C>) -> bool>,
    /// Called on the resolution confirmation (the echo of the resolution broadcasts).
    pub confirm: Box<dyn FnMut(SignerId, SignerId, &mut resolve::Confirmation<C>)>,
}

impl<C: Curve> Default for Hooks<C> {
    fn default() -> Self {
        Self {
            round1: Box::new(|_, _, _| {}),
            round2: Box::new(|_, _, _| {}),
            share: Box::new(|_, _, _| {}),
            share_bytes: Box::new(|_, _, _| {}),
            round2_bytes: Box::new(|_, _, _| {}),
            round3: Box::new(|_, _, _| {}),
            resolve: Box::new(|_, _, _| true),
            confirm: Box::new(|_, _, _| {}),
        }
    }
}

/// Outcome per party: its key share or the error that stopped it.
pub type Outcome<C> = BTreeMap<SignerId, Result<KeyShare<C>, Error>>;

fn deliver<M: Message>(from: SignerId, bytes: Vec<u8>) -> Result<M, Error> {
    dkg::decode_from::<M>(from, &bytes)
}

/// Runs a whole DKG among `participants` with threshold `k` (round 4 without complaint resolution).
pub fn run<C: Curve>(
    k: u16,
    participants: &[SignerId],
    rng: &mut StdRng,
    hooks: &mut Hooks<C>,
) -> Outcome<C> {
    let (mut out, st3, b3) = run_to_round3(k, participants, rng, hooks);
    for (p, s) in st3 {
        let inbox = round3_inbox(p, &b3, hooks);
        out.insert(p, round4::finish(s, &inbox));
    }
    out
}

/// Outcome per party of a run through the complaint-resolution round.
pub type Resolution<C> = BTreeMap<SignerId, Result<resolve::Resolved<C>, Error>>;

/// Runs a whole DKG with the complaint-resolution round after round 3 (always, so that an honest run shows it
/// gives the same key as round 4).
pub fn run_resolving<C: Curve>(
    k: u16,
    participants: &[SignerId],
    rng: &mut StdRng,
    hooks: &mut Hooks<C>,
) -> Resolution<C> {
    let (early, st3, b3) = run_to_round3(k, participants, rng, hooks);
    let mut out: Resolution<C> = early
        .into_iter()
        .filter_map(|(p, r)| r.err().map(|e| (p, Err(e))))
        .collect();
    let mut st = BTreeMap::new();
    let mut answers = BTreeMap::new();
    for (p, s) in st3 {
        let inbox = round3_inbox(p, &b3, hooks);
        match resolve::answer(s, &inbox) {
            Ok((s, b)) => {
                st.insert(p, s);
                answers.insert(p, b);
            }
            Err(e) => {
                out.insert(p, Err(e));
            }
        }
    }
    let mut st5 = BTreeMap::new();
    let mut confirmations = BTreeMap::new();
    for (p, s) in st {
        let mut inbox = BTreeMap::new();
        for (&q, b) in &answers {
            if q == p {
                continue;
            }
            let mut copy = b.clone();
            if (hooks.resolve)(q, p, &mut copy) {
                inbox.insert(q, deliver::<resolve::Broadcast<C>>(q, copy.encode()).unwrap());
            }
        }
        match resolve::finish(s, &inbox) {
            Ok((s, c)) => {
                st5.insert(p, s);
                confirmations.insert(p, c);
            }
            Err(e) => {
                out.insert(p, Err(e));
            }
        }
    }
    for (p, s) in st5 {
        let mut inbox = BTreeMap::new();
        for (&q, c) in &confirmations {
            if q == p {
                continue;
            }
            let mut copy = c.clone();
            (hooks.confirm)(q, p, &mut copy);
            inbox.insert(q, deliver::<resolve::Confirmation<C>>(q, copy.encode()).unwrap());
        }
        out.insert(p, resolve::confirm(s, &inbox));
    }
    out
}

fn round3_inbox<C: Curve>(
    p: SignerId,
    b3: &BTreeMap<SignerId, round3::Broadcast<C>>,
    hooks: &mut Hooks<C>,
) -> BTreeMap<SignerId, round3::Broadcast<C>> {
    let mut inbox = BTreeMap::new();
    for (&q, b) in b3 {
        if q == p {
            continue;
        }
        let mut copy = b.clone();
        (hooks.round3)(q, p, &mut copy);
        inbox.insert(q, deliver::<round3::Broadcast<C>>(q, copy.encode()).unwrap());
    }
    inbox
}

/// Rounds 1 to 3: the parties that failed early, the round-3 states and broadcasts of the others.
fn run_to_round3<C: Curve>(
    k: u16,
    participants: &[SignerId],
    rng: &mut StdRng,
    hooks: &mut Hooks<C>,
) -> (
    Outcome<C>,
    BTreeMap<SignerId, round3::State<C>>,
    BTreeMap<SignerId, round3::Broadcast<C>>,
) {
    let session = tcrypto::SessionId::random(rng);
    let params = Parameters::new(session, k, participants.iter().copied()).unwrap();
    let mut out: Outcome<C> = BTreeMap::new();

    // Round 1.
    let mut st1 = BTreeMap::new();
    let mut b1 = BTreeMap::new();
    for &p in participants {
        let (s, b) = round1::commit::<C>(params.clone(), p, rng).unwrap();
        st1.insert(p, s);
        b1.insert(p, b);
    }
    // Round 2.
    let mut st2 = BTreeMap::new();
    let mut b2 = BTreeMap::new();
    let mut sh2 = BTreeMap::new();
    for (p, s) in st1 {
        let mut inbox = BTreeMap::new();
        let mut failed = None;
        for (&q, b) in &b1 {
            if q == p {
                continue;
            }
            let mut copy = b.clone();
            (hooks.round1)(q, p, &mut copy);
            match deliver::<round1::Broadcast<C>>(q, copy.encode()) {
                Ok(m) => {
                    inbox.insert(q, m);
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            out.insert(p, Err(e));
            continue;
        }
        match round2::reveal(s, &inbox) {
            Ok((s, b, shares)) => {
                st2.insert(p, s);
                b2.insert(p, b);
                sh2.insert(p, shares);
            }
            Err(e) => {
                out.insert(p, Err(e));
            }
        }
    }
    // Round 3.
    let mut st3 = BTreeMap::new();
    let mut b3 = BTreeMap::new();
    for (p, s) in st2 {
        let mut inbox = BTreeMap::new();
        let mut shares = BTreeMap::new();
        let mut failed = None;
        for (&q, b) in &b2 {
            if q == p {
                continue;
            }
            let mut copy = b.clone();
            (hooks.round2)(q, p, &mut copy);
            let mut bytes = copy.encode();
            (hooks.round2_bytes)(q, p, &mut bytes);
            match deliver::<round2::Broadcast<C>>(q, bytes) {
                Ok(m) => {
                    inbox.insert(q, m);
                }
                Err(e) => failed = Some(e),
            }
            if let Some(share) = sh2.get(&q).and_then(|m| m.get(&p)) {
                let mut copy = share.clone();
                (hooks.share)(q, p, &mut copy);
                let mut bytes = Message::encode(&copy);
                (hooks.share_bytes)(q, p, &mut bytes);
                match deliver::<round2::Share<C>>(q, bytes) {
                    Ok(m) => {
                        shares.insert(q, m);
                    }
                    Err(e) => failed = Some(e),
                }
            }
        }
        if let Some(e) = failed {
            out.insert(p, Err(e));
            continue;
        }
        match round3::verify(s, &inbox, shares) {
            Ok((s, b)) => {
                st3.insert(p, s);
                b3.insert(p, b);
            }
            Err(e) => {
                out.insert(p, Err(e));
            }
        }
    }
    (out, st3, b3)
}

/// Runs an honest DKG and returns every share (panics on failure).
pub fn honest<C: Curve>(k: u16, n: u16, rng: &mut StdRng) -> Vec<KeyShare<C>> {
    run::<C>(k, &ids(n), rng, &mut Hooks::default())
        .into_values()
        .map(|r| r.unwrap())
        .collect()
}
