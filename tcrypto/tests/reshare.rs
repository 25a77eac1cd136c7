//! Reshare and refresh of P-256 and Ed25519 keys (`tcrypto::reshare`): chains of reshares with a signature after
//! every step (checked by `p256` and `ed25519-dalek` under the public key of the first DKG), old and new shares
//! that never combine, one Byzantine old holder per way of cheating (named, excluded, the run completes; or a
//! typed failure with too few honest dealers), and strict decoders with their fuzz seeds.
//!
//! Every message crosses an encode/decode boundary between parties.
#![cfg(feature = "dealer")]
#![allow(
    clippy::unwrap_used,
    clippy::type_complexity,
    clippy::assign_op_pattern,
    clippy::field_reassign_with_default
)]

#[path = "common/fuzz_seeds.rs"]
mod fuzz_seeds;
#[path = "common/dkg_net.rs"]
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use net::{id, ids, seeded_rng};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tcrypto::dkg::{self, Curve, Ed25519, Message, P256};
use tcrypto::ecdsa::{self, dkls};
use tcrypto::ed25519;
use tcrypto::reshare::{
    self, Error, Fault, OldShare, Parameters, Party, Reshared, round1, round2, round3, round4,
};
use tcrypto::{SessionId, SignerId};

// ----- An in-process network for reshares -----

/// Tampering hooks on each copy `(from, to)`.
struct Hooks<C: Curve> {
    /// Dealer → new holder: the dealing and the sub-share; returning `false` withholds both.
    dealing: Box<dyn FnMut(SignerId, SignerId, &mut round1::Dealing<C>, &mut round1::SubShare<C>) -> bool>,
    /// New holder → new holder.
    verdict: Box<dyn FnMut(SignerId, SignerId, &mut round2::Verdict<C>)>,
    /// Dealer → new holder; returning `false` withholds it.
    answer: Box<dyn FnMut(SignerId, SignerId, &mut round3::Answer<C>) -> bool>,
}

impl<C: Curve> Default for Hooks<C> {
    fn default() -> Self {
        Self {
            dealing: Box::new(|_, _, _, _| true),
            verdict: Box::new(|_, _, _| {}),
            answer: Box::new(|_, _, _| true),
        }
    }
}

impl<C: Curve> Hooks<C> {
    /// Tampers with (or withholds) the dealing and sub-share of dealer `who`, per new holder.
    fn dealer(
        who: u16,
        mut f: impl FnMut(SignerId, &mut round1::Dealing<C>, &mut round1::SubShare<C>) -> bool + 'static,
    ) -> Self {
        Self {
            dealing: Box::new(move |from, to, d, s| from != id(who) || f(to, d, s)),
            ..Self::default()
        }
    }
}

type Outcome<C> = BTreeMap<SignerId, Result<Reshared<C>, Error>>;

fn through<M: Message>(from: Party, m: &M) -> M {
    reshare::decode_from::<M>(from, &m.encode()).unwrap()
}

/// Runs a whole reshare: the dealers of `params` deal from `old` (keyed by old id), every new holder receives,
/// accused dealers answer (only when someone complained), every new holder judges and confirms.
fn run<C: Curve, S: OldShare<C>>(
    params: &Parameters<C>,
    old: &BTreeMap<SignerId, &S>,
    hooks: &mut Hooks<C>,
    rng: &mut StdRng,
) -> Outcome<C> {
    let mut dealers = BTreeMap::new();
    let mut dealings = BTreeMap::new();
    let mut subs = BTreeMap::new();
    for i in params.dealers() {
        let (st, d, s) = round1::deal(params.clone(), old[i], rng).unwrap();
        dealers.insert(*i, st);
        dealings.insert(*i, d);
        subs.insert(*i, s);
    }
    let mut receivers = BTreeMap::new();
    let mut verdicts = BTreeMap::new();
    for &j in params.receivers() {
        let mut inbox = BTreeMap::new();
        let mut shares = BTreeMap::new();
        for (&i, d) in &dealings {
            let mut d = d.clone();
            let mut s = subs[&i][&j].clone();
            if (hooks.dealing)(i, j, &mut d, &mut s) {
                inbox.insert(i, through(Party::Old(i), &d));
                let s: round1::SubShare<C> = reshare::decode_from(Party::Old(i), &s.encode()).unwrap();
                shares.insert(i, s);
            }
        }
        let (st, v) = round2::receive(params.clone(), j, &inbox, shares).unwrap();
        receivers.insert(j, st);
        verdicts.insert(j, v);
    }
    let mut answers = BTreeMap::new();
    if verdicts.values().any(|v| !v.complaints.is_empty()) {
        for (i, st) in dealers {
            let inbox = verdicts
                .iter()
                .map(|(j, v)| (*j, through(Party::New(*j), v)))
                .collect();
            answers.insert(i, st.answer(&inbox).unwrap());
        }
    }
    let mut out = BTreeMap::new();
    let mut judged = BTreeMap::new();
    let mut confirmations = BTreeMap::new();
    for (j, st) in receivers {
        let mut vs = BTreeMap::new();
        for (&m, v) in &verdicts {
            if m != j {
                let mut v = v.clone();
                (hooks.verdict)(m, j, &mut v);
                vs.insert(m, through(Party::New(m), &v));
            }
        }
        let mut ans = BTreeMap::new();
        for (&i, a) in &answers {
            let mut a = a.clone();
            if (hooks.answer)(i, j, &mut a) {
                ans.insert(i, through(Party::Old(i), &a));
            }
        }
        match st.judge(&vs, &ans) {
            Ok((st, c)) => {
                judged.insert(j, st);
                confirmations.insert(j, c);
            }
            Err(e) => {
                out.insert(j, Err(e));
            }
        }
    }
    for (j, st) in judged {
        let inbox: BTreeMap<SignerId, round4::Confirmation<C>> = confirmations
            .iter()
            .filter(|(m, _)| **m != j)
            .map(|(m, c)| (*m, through(Party::New(*m), c)))
            .collect();
        out.insert(j, st.confirm(&inbox));
    }
    out
}

/// Every new holder succeeded, with the same public key set; returns the new DKG-form shares.
fn all_ok<C: Curve>(outcome: Outcome<C>) -> Vec<Reshared<C>> {
    let done: Vec<Reshared<C>> = outcome
        .into_iter()
        .map(|(j, r)| r.unwrap_or_else(|e| panic!("new holder {j}: {e}")))
        .collect();
    for r in &done {
        assert!(r.share.public() == done[0].share.public(), "new holders disagree");
        assert_eq!(r.qualified, done[0].qualified);
        assert_eq!(r.culprits, done[0].culprits);
    }
    done
}

fn session(rng: &mut StdRng) -> SessionId {
    SessionId::random(rng)
}

// ----- Signing with each scheme, verified by someone else's code -----

/// Pair states (DKLs23 base OTs) of ids 1..=7, made once: they do not depend on the key.
fn pairs() -> &'static BTreeMap<SignerId, BTreeMap<SignerId, dkls::PairState>> {
    static PAIRS: OnceLock<BTreeMap<SignerId, BTreeMap<SignerId, dkls::PairState>>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0x5e5a);
        let mut out: BTreeMap<SignerId, BTreeMap<SignerId, dkls::PairState>> = BTreeMap::new();
        for i in 1..=5u16 {
            for j in i + 1..=5 {
                let (a, b) =
                    dkls::setup::run_pair(SessionId::random(&mut rng), id(i), id(j), &mut rng).unwrap();
                out.entry(id(i)).or_default().insert(id(j), a);
                out.entry(id(j)).or_default().insert(id(i), b);
            }
        }
        out
    })
}

fn digest(rng: &mut StdRng) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    rng.fill(&mut d[..]);
    d
}

/// Signs a random digest with `k` of the keys through honest-majority presigning (all `n` presign, the last `k`
/// sign) and checks it with `p256` under `public` (the SEC1 key of the first DKG).
fn ecdsa_sign_presign(keys: &[ecdsa::KeyShare], public: &[u8], rng: &mut StdRng) {
    let refs: Vec<&ecdsa::KeyShare> = keys.iter().collect();
    let mut presigs = ecdsa::presign::run_in_process(&refs, session(rng), 1, rng).unwrap();
    let k = usize::from(keys[0].threshold());
    let signers: Vec<&ecdsa::KeyShare> = keys.iter().rev().take(k).collect();
    let pre_public = presigs[&signers[0].id()][0].public().clone();
    let req = ecdsa::SignRequest {
        session: session(rng),
        presignature: pre_public.id,
        digest: digest(rng),
    };
    let mut shares = BTreeMap::new();
    for key in signers {
        let p = presigs.get_mut(&key.id()).unwrap().remove(0);
        let share = ecdsa::sign_share(key, p, &req, &mut BTreeSet::new()).unwrap();
        shares.insert(key.id(), ecdsa::SignatureShare::decode(&share.encode()).unwrap());
    }
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).unwrap();
    let combined = ecdsa::combine(&pre_public, &vk, &req, &shares).unwrap();
    vk.verify_prehash(&req.digest, &combined.signature).unwrap();
}

/// Signs a random digest with DKLs23 among the signers `set` and checks it with `p256` under `public`.
fn ecdsa_sign_dkls(keys: &[ecdsa::KeyShare], set: &[u16], public: &[u8], rng: &mut StdRng) {
    let params = dkls::SignParams {
        session: session(rng),
        signers: set.iter().map(|i| id(*i)).collect(),
    };
    let key = |i: SignerId| keys.iter().find(|k| k.id() == i).unwrap();
    let d = digest(rng);
    let mut states1 = BTreeMap::new();
    let mut inbox1: BTreeMap<SignerId, BTreeMap<SignerId, dkls::Round1Msg>> = BTreeMap::new();
    for &i in &params.signers {
        let (st, out) = dkls::round1(key(i), &pairs()[&i], params.clone(), rng).unwrap();
        states1.insert(i, st);
        for (to, m) in out {
            inbox1
                .entry(to)
                .or_default()
                .insert(i, dkls::Round1Msg::decode(&m.encode()).unwrap());
        }
    }
    let mut states2 = BTreeMap::new();
    let mut inbox2: BTreeMap<SignerId, BTreeMap<SignerId, dkls::Round2Msg>> = BTreeMap::new();
    for (i, st) in states1 {
        let (st, out) = st
            .round2(&pairs()[&i], &inbox1.remove(&i).unwrap_or_default(), rng)
            .unwrap();
        states2.insert(i, st);
        for (to, m) in out {
            inbox2
                .entry(to)
                .or_default()
                .insert(i, dkls::Round2Msg::decode(&m.encode()).unwrap());
        }
    }
    let mut partials = BTreeMap::new();
    for (i, st) in states2 {
        let p = st.round3(&inbox2.remove(&i).unwrap_or_default(), &d).unwrap();
        partials.insert(i, dkls::PartialSignature::decode(&p.encode()).unwrap());
    }
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).unwrap();
    let combined = dkls::combine(&vk, &params, &d, &partials).unwrap();
    vk.verify_prehash(&d, &combined.signature).unwrap();
}

/// FROST among the shares `signers` (indexes); returns the aggregate result.
fn frost_sign(
    shares: &[&ed25519::KeyShare],
    public: &ed25519::PublicKeySet,
    msg: &[u8],
    rng: &mut StdRng,
) -> Result<ed25519::Signature, ed25519::Error> {
    let session = session(rng);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for s in shares {
        let (n, c) = ed25519::round1::commit(s, session, rng)?;
        commitments.insert(s.id(), ed25519::decode_from(s.id(), &c.encode())?);
        nonces.insert(s.id(), n);
    }
    let package = ed25519::SigningPackage::new(session, msg.to_vec(), commitments)?;
    let mut sig_shares = BTreeMap::new();
    for s in shares {
        let z = ed25519::round2::sign(s, nonces.remove(&s.id()).unwrap(), &package)?;
        sig_shares.insert(s.id(), ed25519::decode_from(s.id(), &z.encode())?);
    }
    ed25519::aggregate(public, &package, &sig_shares)
}

/// Signs with the first `k` shares and checks the signature with `ed25519-dalek` (strict) under `public`.
fn ed25519_sign(shares: &[ed25519::KeyShare], public: &[u8; 32], rng: &mut StdRng) {
    let k = usize::from(shares[0].threshold());
    let signers: Vec<&ed25519::KeyShare> = shares.iter().take(k).collect();
    let msg = digest(rng);
    let sig = frost_sign(&signers, shares[0].public(), &msg, rng).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(public).unwrap();
    vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig.to_bytes()))
        .unwrap();
}

// ----- Chains of reshares -----

/// `(k', n')` of each step after the first 3-of-5 DKG; `None` marks a refresh.
const CHAIN: [Option<(u16, u16)>; 6] = [Some((4, 7)), Some((2, 3)), None, None, None, Some((3, 5))];

/// Parameters of one step: the last `k` old holders deal (any `k` will do) or, for a refresh, all of them.
fn step_params<C: Curve>(
    old: dkg::PublicKeySet<C>,
    step: Option<(u16, u16)>,
    rng: &mut StdRng,
) -> Parameters<C> {
    match step {
        None => Parameters::refresh(session(rng), old).unwrap(),
        Some((k, n)) => {
            let dealers: Vec<SignerId> = old
                .public_shares()
                .keys()
                .rev()
                .take(usize::from(old.threshold()))
                .copied()
                .collect();
            Parameters::new(session(rng), old, dealers, k, ids(n)).unwrap()
        }
    }
}

/// A 3-of-5 ECDSA key from the DKG, and its SEC1 public key.
fn ecdsa_dkg(rng: &mut StdRng) -> (Vec<ecdsa::KeyShare>, Vec<u8>) {
    let keys: Vec<ecdsa::KeyShare> = net::honest::<P256>(3, 5, rng)
        .iter()
        .map(|s| s.to_ecdsa().unwrap())
        .collect();
    let public = sec1(&keys[0]);
    (keys, public)
}

fn sec1(key: &ecdsa::KeyShare) -> Vec<u8> {
    key.verifying_key()
        .unwrap()
        .to_sec1_point(true)
        .as_bytes()
        .to_vec()
}

/// One honest reshare step of ECDSA key shares (the dealers deal from their ECDSA shares; the old public key set
/// is rebuilt from them): the new shares, checked to keep the public key with new verification shares.
fn ecdsa_step(keys: &[ecdsa::KeyShare], step: Option<(u16, u16)>, rng: &mut StdRng) -> Vec<ecdsa::KeyShare> {
    let old = reshare::old_public(&keys[0]).unwrap();
    let params = step_params(old, step, rng);
    let by_id: BTreeMap<SignerId, &ecdsa::KeyShare> = keys.iter().map(|k| (k.id(), k)).collect();
    let new = all_ok(run(&params, &by_id, &mut Hooks::default(), rng));
    assert!(new.iter().all(|r| r.culprits.is_empty()));
    let next: Vec<ecdsa::KeyShare> = new.iter().map(|r| r.share.to_ecdsa().unwrap()).collect();
    assert_eq!(next.len(), params.receivers().len());
    assert_eq!(next[0].threshold(), params.threshold());
    assert_eq!(sec1(&next[0]), sec1(&keys[0]), "the public key changed");
    assert_ne!(
        next[0].public_shares(),
        keys[0].public_shares(),
        "verification shares must be new"
    );
    next
}

#[test]
fn p256_chain_of_reshares_keeps_the_public_key_and_signs_after_every_step() {
    let mut rng = seeded_rng("p256_chain");
    let (mut keys, public) = ecdsa_dkg(&mut rng);
    ecdsa_sign_presign(&keys, &public, &mut rng);
    for step in CHAIN {
        keys = ecdsa_step(&keys, step, &mut rng);
        ecdsa_sign_presign(&keys, &public, &mut rng);
    }
}

#[test]
fn p256_reshare_to_a_quorum_without_honest_majority_signs_with_dkls() {
    let mut rng = seeded_rng("p256_dkls_chain");
    let (mut keys, public) = ecdsa_dkg(&mut rng);
    // 3-of-5 -> 4-of-5 -> refresh -> 5-of-5 -> 3-of-4 (n' < 2k' - 1 in every step), each signed by DKLs23.
    for (step, set) in [
        (Some((4, 5)), &[1u16, 3, 4, 5][..]),
        (None, &[2, 3, 4, 5]),
        (Some((5, 5)), &[1, 2, 3, 4, 5]),
        (Some((3, 4)), &[2, 3, 4]),
    ] {
        keys = ecdsa_step(&keys, step, &mut rng);
        ecdsa_sign_dkls(&keys, set, &public, &mut rng);
    }
}

#[test]
fn ed25519_chain_of_reshares_keeps_the_public_key_and_signs_after_every_step() {
    let mut rng = seeded_rng("ed25519_chain");
    let mut shares: Vec<ed25519::KeyShare> = net::honest::<Ed25519>(3, 5, &mut rng)
        .into_iter()
        .map(|s| ed25519::KeyShare::from_dkg(s).unwrap())
        .collect();
    let public = shares[0].public().public_key_bytes();
    ed25519_sign(&shares, &public, &mut rng);
    for step in CHAIN {
        let old = reshare::old_public(&shares[0]).unwrap();
        let params = step_params(old, step, &mut rng);
        let by_id: BTreeMap<SignerId, &ed25519::KeyShare> = shares.iter().map(|k| (k.id(), k)).collect();
        let new = all_ok(run(&params, &by_id, &mut Hooks::default(), &mut rng));
        let next: Vec<ed25519::KeyShare> = new
            .into_iter()
            .map(|r| ed25519::KeyShare::from_dkg(r.share).unwrap())
            .collect();
        assert_eq!(
            next[0].public().public_key_bytes(),
            public,
            "the public key changed"
        );
        assert_eq!(next[0].public().parties(), params.receivers().len() as u16);
        ed25519_sign(&next, &public, &mut rng);
        shares = next;
    }
}

// ----- Old and new shares never combine -----

/// `Σ λ_i·s_i` over the given `(id, share)` points, as a group element.
fn interpolate<C: Curve>(points: &[(u16, C::Scalar)]) -> C::Point {
    let ids: Vec<u16> = points.iter().map(|p| p.0).collect();
    let mut acc = C::zero();
    for &(i, s) in points {
        // λ_i = Π_{j≠i} j / (j - i)
        let mut num = C::scalar_from_u16(1);
        let mut den = C::scalar_from_u16(1);
        for &j in &ids {
            if j != i {
                num = num * C::scalar_from_u16(j);
                den = den * (C::scalar_from_u16(j) - C::scalar_from_u16(i));
            }
        }
        acc = acc + s * num * C::invert_vartime(&den).unwrap();
    }
    C::mul_base(&acc)
}

fn old_and_new_shares_never_combine<C: Curve>(label: &str) {
    let mut rng = seeded_rng(label);
    let old = net::honest::<C>(3, 5, &mut rng);
    let x = old[0].public().public_key();
    // Drop holder 5: 3-of-5 -> 3-of-4 from dealers 1..=4.
    let params = Parameters::new(session(&mut rng), old[0].public().clone(), ids(4), 3, ids(4)).unwrap();
    let by_id: BTreeMap<SignerId, &dkg::KeyShare<C>> = old.iter().map(|k| (k.id(), k)).collect();
    let new: Vec<dkg::KeyShare<C>> = all_ok(run(&params, &by_id, &mut Hooks::default(), &mut rng))
        .into_iter()
        .map(|r| r.share)
        .collect();
    let pt = |s: &dkg::KeyShare<C>| (s.id().get(), *s.secret());
    // Sanity: three new shares, and three old ones, give the key.
    assert!(interpolate::<C>(&[pt(&new[0]), pt(&new[1]), pt(&new[2])]) == x);
    assert!(interpolate::<C>(&[pt(&old[0]), pt(&old[2]), pt(&old[4])]) == x);
    // The dropped node's old share with any two new ones gives nothing.
    for (a, b) in [(0, 1), (0, 3), (2, 3)] {
        assert!(interpolate::<C>(&[pt(&new[a]), pt(&new[b]), pt(&old[4])]) != x);
    }
    // Two old shares and one new (of another id) give nothing either.
    assert!(interpolate::<C>(&[pt(&old[0]), pt(&old[1]), pt(&new[2])]) != x);
    assert!(interpolate::<C>(&[pt(&old[3]), pt(&old[4]), pt(&new[0])]) != x);
    // A refresh to the same ids: an old share in place of the new one of the same id gives nothing.
    let params = Parameters::refresh(session(&mut rng), new[0].public().clone()).unwrap();
    let by_id: BTreeMap<SignerId, &dkg::KeyShare<C>> = new.iter().map(|k| (k.id(), k)).collect();
    let fresh: Vec<dkg::KeyShare<C>> = all_ok(run(&params, &by_id, &mut Hooks::default(), &mut rng))
        .into_iter()
        .map(|r| r.share)
        .collect();
    assert!(interpolate::<C>(&[pt(&fresh[0]), pt(&fresh[1]), pt(&fresh[2])]) == x);
    assert!(interpolate::<C>(&[pt(&fresh[0]), pt(&fresh[1]), pt(&new[2])]) != x);
    assert!(fresh[2].public().public_shares() != new[2].public().public_shares());
}

#[test]
fn p256_old_and_new_shares_never_combine() {
    old_and_new_shares_never_combine::<P256>("p256_never_combine");
}

#[test]
fn ed25519_old_and_new_shares_never_combine() {
    old_and_new_shares_never_combine::<Ed25519>("ed25519_never_combine");
}

#[test]
fn frost_refuses_an_old_share_among_refreshed_ones() {
    let mut rng = seeded_rng("frost_old_among_new");
    let old: Vec<dkg::KeyShare<Ed25519>> = net::honest::<Ed25519>(3, 5, &mut rng);
    let params = Parameters::refresh(session(&mut rng), old[0].public().clone()).unwrap();
    let by_id: BTreeMap<SignerId, &dkg::KeyShare<Ed25519>> = old.iter().map(|k| (k.id(), k)).collect();
    let new: Vec<ed25519::KeyShare> = all_ok(run(&params, &by_id, &mut Hooks::default(), &mut rng))
        .into_iter()
        .map(|r| ed25519::KeyShare::from_dkg(r.share).unwrap())
        .collect();
    let stale = ed25519::KeyShare::from_dkg(old.into_iter().nth(2).unwrap()).unwrap();
    let err = frost_sign(&[&new[0], &new[1], &stale], new[0].public(), b"mixed", &mut rng).unwrap_err();
    assert_eq!(err.culprits(), vec![id(3)], "{err}");
    frost_sign(&[&new[0], &new[1], &new[2]], new[0].public(), b"fresh", &mut rng).unwrap();
}

// ----- One Byzantine old holder -----

/// A 3-of-5 key; dealers `dealers` reshare to 3-of-4 with `hooks`; returns the outcome and the old public key.
fn byzantine_run<C: Curve>(
    label: &str,
    dealers: &[u16],
    mut hooks: Hooks<C>,
) -> (Outcome<C>, C::Point, StdRng) {
    let mut rng = seeded_rng(label);
    let old = net::honest::<C>(3, 5, &mut rng);
    let x = old[0].public().public_key();
    let params = Parameters::new(
        session(&mut rng),
        old[0].public().clone(),
        dealers.iter().map(|i| id(*i)),
        3,
        ids(4),
    )
    .unwrap();
    let by_id: BTreeMap<SignerId, &dkg::KeyShare<C>> = old.iter().map(|k| (k.id(), k)).collect();
    (run(&params, &by_id, &mut hooks, &mut rng), x, rng)
}

/// Every new holder completed without dealer 2, named for `fault`, and the new shares reconstruct the key.
fn assert_excluded<C: Curve>(outcome: Outcome<C>, x: C::Point, fault: Fault) {
    let done = all_ok(outcome);
    let r = &done[0];
    assert!(!r.qualified.contains(&id(2)), "dealer 2 still qualified");
    assert_eq!(r.qualified.len(), 4);
    let named: Vec<(Party, Fault)> = r.culprits.iter().map(|c| (c.party, c.fault)).collect();
    assert_eq!(named, vec![(Party::Old(id(2)), fault)], "{:?}", r.culprits);
    assert!(r.share.public().public_key() == x);
    let pts: Vec<(u16, C::Scalar)> = done
        .iter()
        .take(3)
        .map(|r| (r.share.id().get(), *r.share.secret()))
        .collect();
    assert!(interpolate::<C>(&pts) == x);
}

/// Dealer 2 sends new holder 3 a wrong sub-share and answers the complaint with `answer` (`None`: silence).
fn wrong_sub_share<C: Curve>(label: &str, answer_right: Option<bool>) -> (Outcome<C>, C::Point, StdRng) {
    let mut hooks = Hooks::<C>::dealer(2, |to, _, s| {
        if to == id(3) {
            *s.value = *s.value + C::scalar_from_u16(1);
        }
        true
    });
    hooks.answer = Box::new(move |from, _, a| {
        if from != id(2) {
            return true;
        }
        match answer_right {
            None => false,
            Some(true) => true,
            Some(false) => {
                for v in a.answers.values_mut() {
                    *v = *v + C::scalar_from_u16(1);
                }
                true
            }
        }
    });
    byzantine_run::<C>(label, &[1, 2, 3, 4, 5], hooks)
}

fn byzantine_dealers_are_excluded<C: Curve>(label: &str) {
    // A wrong sub-share, defended with the same wrong value: InvalidShare.
    let (out, x, _) = wrong_sub_share::<C>(&format!("{label}/sub-share"), Some(false));
    assert_excluded(out, x, Fault::InvalidShare);
    // A wrong sub-share, complaint unanswered: NoAnswer.
    let (out, x, _) = wrong_sub_share::<C>(&format!("{label}/no-answer"), None);
    assert_excluded(out, x, Fault::NoAnswer);
    // A consistent dealing of another constant (commitments and sub-shares agree, C_0 != X_2): WrongCommitment.
    let hooks = Hooks::<C>::dealer(2, |_, d, s| {
        d.commitments[0] = d.commitments[0] + C::generator();
        *s.value = *s.value + C::scalar_from_u16(1);
        true
    });
    let (out, x, _) = byzantine_run::<C>(&format!("{label}/commitment"), &[1, 2, 3, 4, 5], hooks);
    assert_excluded(out, x, Fault::WrongCommitment);
    // Equivocation: new holder 4 gets another (self-consistent) dealing than the others.
    let hooks = Hooks::<C>::dealer(2, |to, d, s| {
        if to == id(4) {
            d.commitments[1] = d.commitments[1] + C::generator();
            *s.value = *s.value + C::scalar_from_u16(4);
        }
        true
    });
    let (out, x, _) = byzantine_run::<C>(&format!("{label}/equivocation"), &[1, 2, 3, 4, 5], hooks);
    assert_excluded(out, x, Fault::Equivocation);
    // Silence towards everyone.
    let hooks = Hooks::<C>::dealer(2, |_, _, _| false);
    let (out, x, _) = byzantine_run::<C>(&format!("{label}/silence"), &[1, 2, 3, 4, 5], hooks);
    assert_excluded(out, x, Fault::Silent);
    // Silence towards some is equivocation.
    let hooks = Hooks::<C>::dealer(2, |to, _, _| to != id(1));
    let (out, x, _) = byzantine_run::<C>(&format!("{label}/partial-silence"), &[1, 2, 3, 4, 5], hooks);
    assert_excluded(out, x, Fault::Equivocation);
}

#[test]
fn p256_byzantine_dealer_is_named_and_excluded_and_the_reshare_completes() {
    byzantine_dealers_are_excluded::<P256>("p256_byzantine");
}

#[test]
fn ed25519_byzantine_dealer_is_named_and_excluded_and_the_reshare_completes() {
    byzantine_dealers_are_excluded::<Ed25519>("ed25519_byzantine");
}

#[test]
fn excluded_dealer_leaves_a_sharing_that_signs() {
    let (out, _, mut rng) = wrong_sub_share::<Ed25519>("excluded_then_sign", None);
    let shares: Vec<ed25519::KeyShare> = all_ok(out)
        .into_iter()
        .map(|r| ed25519::KeyShare::from_dkg(r.share).unwrap())
        .collect();
    let public = shares[0].public().public_key_bytes();
    ed25519_sign(&shares, &public, &mut rng);
    ed25519_sign(&shares[1..], &public, &mut rng);
}

#[test]
fn too_few_honest_dealers_fail_with_a_typed_error_naming_the_culprit() {
    for fault in ["sub-share", "silence", "commitment"] {
        let mut hooks = Hooks::<P256>::dealer(2, move |to, d, s| match fault {
            "sub-share" => {
                if to == id(1) {
                    *s.value = *s.value + P256::scalar_from_u16(1);
                }
                true
            }
            "silence" => false,
            _ => {
                d.commitments[0] = d.commitments[0] + P256::generator();
                true
            }
        });
        // A complaint about the sub-share goes unanswered.
        hooks.answer = Box::new(|from, _, _| from != id(2));
        // Exactly k = 3 dealers, one of them cheating.
        let (out, _, _) = byzantine_run::<P256>(&format!("too_few/{fault}"), &[1, 2, 3], hooks);
        assert_eq!(out.len(), 4);
        for (j, r) in out {
            match r {
                Err(Error::NotEnoughDealers {
                    qualified,
                    needed,
                    culprits,
                }) => {
                    assert_eq!((qualified, needed), (2, 3), "new holder {j}");
                    assert!(
                        culprits.iter().any(|c| c.party == Party::Old(id(2))),
                        "{culprits:?}"
                    );
                    assert!(
                        culprits.iter().all(|c| c.party == Party::Old(id(2))),
                        "{culprits:?}"
                    );
                }
                other => panic!("new holder {j} ({fault}): expected NotEnoughDealers, got {other:?}"),
            }
        }
    }
}

#[test]
fn a_false_complaint_names_the_accuser_and_the_reshare_completes() {
    // New holder 3 receives a damaged sub-share from dealer 1 (damaged in transit, say) and complains; dealer 1
    // answers with the right value, so for everyone else the complaint is false: holder 3 is named, dealer 1
    // stays qualified, and holder 3 uses the revealed sub-share.
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.dealing = Box::new(|from, to, _, s| {
        if from == id(1) && to == id(3) {
            *s.value = *s.value + Ed25519::scalar_from_u16(1);
        }
        true
    });
    let (out, x, _) = byzantine_run::<Ed25519>("false_complaint", &[1, 2, 3, 4, 5], hooks);
    let done = all_ok(out);
    assert_eq!(done[0].qualified.len(), 5);
    let named: Vec<(Party, Fault)> = done[0].culprits.iter().map(|c| (c.party, c.fault)).collect();
    assert_eq!(named, vec![(Party::New(id(3)), Fault::FalseComplaint)]);
    let pts: Vec<(u16, _)> = done
        .iter()
        .skip(1)
        .map(|r| (r.share.id().get(), *r.share.secret()))
        .collect();
    assert!(
        interpolate::<Ed25519>(&pts) == x,
        "holder 3's share (from the revealed value) is on the polynomial"
    );
}

#[test]
fn a_new_holder_equivocating_its_verdict_aborts_the_run_naming_it() {
    let mut hooks = Hooks::<P256>::default();
    // New holder 2 tells holder 4 that it never received dealer 5's dealing.
    hooks.verdict = Box::new(|from, to, v| {
        if from == id(2) && to == id(4) {
            v.echo.insert(id(5), None);
        }
    });
    let (out, _, _) = byzantine_run::<P256>("verdict_equivocation", &[1, 2, 3, 4, 5], hooks);
    for j in [1u16, 3, 4] {
        match &out[&id(j)] {
            Err(e @ Error::Inconsistent { .. }) => {
                assert!(e.culprits().contains(&Party::New(id(2))), "{e}");
            }
            other => panic!("new holder {j}: expected Inconsistent, got {other:?}"),
        }
    }
}

#[test]
fn a_dealer_equivocating_its_answer_aborts_the_run_naming_it() {
    let (out, _, _) = {
        let mut hooks = Hooks::<P256>::dealer(2, |to, _, s| {
            if to == id(3) {
                *s.value = *s.value + P256::scalar_from_u16(1);
            }
            true
        });
        // The right sub-share to some new holders, a wrong one to others.
        hooks.answer = Box::new(|from, to, a| {
            if from == id(2) && to == id(1) {
                for v in a.answers.values_mut() {
                    *v = *v + P256::scalar_from_u16(1);
                }
            }
            true
        });
        byzantine_run::<P256>("answer_equivocation", &[1, 2, 3, 4, 5], hooks)
    };
    for (j, r) in out {
        match r {
            Err(e @ Error::Inconsistent { .. }) => {
                assert!(e.culprits().contains(&Party::Old(id(2))), "{j}: {e}")
            }
            other => panic!("new holder {j}: expected Inconsistent, got {other:?}"),
        }
    }
}

// ----- Parameters and misuse -----

#[test]
fn parameters_refuse_too_few_dealers_strangers_and_bad_thresholds() {
    let mut rng = seeded_rng("reshare_params");
    let old = net::honest::<P256>(3, 5, &mut rng);
    let public = old[0].public().clone();
    let s = session(&mut rng);
    let bad = |r: Result<Parameters<P256>, Error>| matches!(r, Err(Error::InvalidParameters(_)));
    assert!(bad(Parameters::new(s, public.clone(), ids(2), 2, ids(3))));
    assert!(bad(Parameters::new(
        s,
        public.clone(),
        [id(1), id(2), id(6)],
        2,
        ids(3)
    )));
    assert!(bad(Parameters::new(s, public.clone(), ids(3), 0, ids(3))));
    assert!(bad(Parameters::new(s, public.clone(), ids(3), 4, ids(3))));
    assert!(bad(Parameters::new(s, public.clone(), ids(3), 1, Vec::new())));
    assert!(bad(Parameters::new(
        s,
        public.clone(),
        [id(1), id(1), id(2), id(3)],
        2,
        ids(3)
    )));
    // A share of another key, or of a holder that does not deal, is refused by the dealer.
    let params = Parameters::new(s, public.clone(), ids(3), 2, ids(3)).unwrap();
    assert!(matches!(
        round1::deal(params.clone(), &old[3], &mut rng),
        Err(Error::InvalidParameters(_))
    ));
    let other = net::honest::<P256>(3, 5, &mut rng);
    assert!(matches!(
        round1::deal(params.clone(), &other[0], &mut rng),
        Err(Error::InvalidParameters(_))
    ));
    // A message from a stranger is refused naming it.
    let (_, d, subs) = round1::deal(params.clone(), &old[0], &mut rng).unwrap();
    let err = round2::receive(
        params.clone(),
        id(1),
        &BTreeMap::from([(id(4), d)]),
        subs.into_iter()
            .filter(|(j, _)| *j == id(1))
            .map(|(_, s)| (id(1), s))
            .collect(),
    )
    .unwrap_err();
    assert_eq!(err.culprits(), vec![Party::Old(id(4))]);
    // ECDSA new ids must be 1..=n'.
    let params = Parameters::new(s, public, ids(3), 2, [id(2), id(3), id(5)]).unwrap();
    let by_id: BTreeMap<SignerId, &dkg::KeyShare<P256>> = old.iter().map(|k| (k.id(), k)).collect();
    let new = all_ok(run(&params, &by_id, &mut Hooks::default(), &mut rng));
    assert!(new[0].share.to_ecdsa().is_err());
}

#[test]
fn ecdsa_old_public_key_set_is_rebuilt_from_the_verification_shares() {
    let mut rng = seeded_rng("rebuild_public");
    for (k, n) in [(1, 1), (2, 3), (3, 5), (4, 7)] {
        let dkg_shares = net::honest::<P256>(k, n, &mut rng);
        let key = dkg_shares[0].to_ecdsa().unwrap();
        let rebuilt = reshare::old_public(&key).unwrap();
        assert!(&rebuilt == dkg_shares[0].public(), "({k}, {n})");
    }
    let dkg_shares = net::honest::<P256>(3, 5, &mut rng);
    let mut shares = dkg_shares[0].public().public_shares().clone();
    let five = id(5);
    shares.insert(five, shares[&five] + P256::generator());
    assert!(reshare::public_key_set_from_shares::<P256>(3, &shares).is_err());
}

// ----- Encodings -----

fn round_trip<M: Message>(bytes: &[u8]) -> Option<Vec<u8>> {
    M::decode(bytes).ok().map(|m| m.encode())
}

/// Fixed, valid messages of every type (both curves), with their fuzz target names.
fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>, [fn(&[u8]) -> Option<Vec<u8>>; 2])> {
    let g = |c: u16| P256::mul_base(&P256::scalar_from_u16(c));
    let e = |c: u16| Ed25519::mul_base(&Ed25519::scalar_from_u16(c));
    let dealing = round1::Dealing::<P256> {
        commitments: vec![g(1), g(2), g(3)],
    };
    let dealing_ed = round1::Dealing::<Ed25519> {
        commitments: vec![e(7)],
    };
    let sub = round1::SubShare::<P256> {
        value: zeroize::Zeroizing::new(P256::scalar_from_u16(42)),
    };
    let sub_ed = round1::SubShare::<Ed25519> {
        value: zeroize::Zeroizing::new(Ed25519::scalar_from_u16(43)),
    };
    let verdict = round2::Verdict::<P256>::new(
        BTreeMap::from([
            (id(1), Some([0x11; 32])),
            (id(2), None),
            (id(5), Some([0x55; 32])),
        ]),
        BTreeSet::from([id(5)]),
    );
    let verdict_ed = round2::Verdict::<Ed25519>::new(BTreeMap::from([(id(3), None)]), BTreeSet::new());
    let answer = round3::Answer::<P256> {
        answers: BTreeMap::from([
            (id(2), P256::scalar_from_u16(9)),
            (id(4), -P256::scalar_from_u16(1)),
        ]),
    };
    let answer_ed = round3::Answer::<Ed25519> {
        answers: BTreeMap::new(),
    };
    let confirmation = round4::Confirmation::<P256>::new(
        BTreeMap::from([(id(1), [1; 32]), (id(3), [3; 32])]),
        BTreeMap::from([(id(2), [2; 32])]),
    );
    let confirmation_ed =
        round4::Confirmation::<Ed25519>::new(BTreeMap::new(), BTreeMap::from([(id(9), [9; 32])]));
    vec![
        (
            "reshare_dealing",
            vec![dealing.encode(), dealing_ed.encode()],
            [
                round_trip::<round1::Dealing<P256>>,
                round_trip::<round1::Dealing<Ed25519>>,
            ],
        ),
        (
            "reshare_sub_share",
            vec![Message::encode(&sub), Message::encode(&sub_ed)],
            [
                round_trip::<round1::SubShare<P256>>,
                round_trip::<round1::SubShare<Ed25519>>,
            ],
        ),
        (
            "reshare_verdict",
            vec![verdict.encode(), verdict_ed.encode()],
            [
                round_trip::<round2::Verdict<P256>>,
                round_trip::<round2::Verdict<Ed25519>>,
            ],
        ),
        (
            "reshare_answer",
            vec![answer.encode(), answer_ed.encode()],
            [
                round_trip::<round3::Answer<P256>>,
                round_trip::<round3::Answer<Ed25519>>,
            ],
        ),
        (
            "reshare_confirmation",
            vec![confirmation.encode(), confirmation_ed.encode()],
            [
                round_trip::<round4::Confirmation<P256>>,
                round_trip::<round4::Confirmation<Ed25519>>,
            ],
        ),
    ]
}

#[test]
fn encodings_are_strict_and_pinned() {
    for (name, encodings, rts) in seeds() {
        for bytes in &encodings {
            assert!(
                rts.iter().any(|rt| rt(bytes).as_ref() == Some(bytes)),
                "{name} does not round-trip"
            );
            // Trailing bytes, truncation, another version, another tag, another curve: refused.
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(
                rts.iter().all(|rt| rt(&longer).is_none()),
                "{name}: trailing byte accepted"
            );
            for cut in 0..bytes.len() {
                assert!(
                    rts.iter().all(|rt| rt(&bytes[..cut]).is_none()),
                    "{name}: truncation at {cut}"
                );
            }
            for (at, v) in [(0, 2u8), (1, 0x6f), (2, 9)] {
                let mut b = bytes.clone();
                b[at] = v;
                assert!(
                    rts.iter().all(|rt| rt(&b).is_none()),
                    "{name}: byte {at} = {v} accepted"
                );
            }
        }
    }
    // Pinned bytes: the P-256 answer (version 1, tag 0x63, curve 1, two entries).
    let answer = &seeds()[3].1[0];
    assert_eq!(&answer[..7], &[1, 0x63, 1, 0, 0, 0, 2]);
    // Non-canonical values are refused: a verdict echo flag of 2, unsorted ids, a scalar >= the order.
    let verdict = &seeds()[2].1[0];
    let mut b = verdict.clone();
    b[9] = 2; // the flag of the first echo entry
    assert!(round_trip::<round2::Verdict<P256>>(&b).is_none());
    let mut b = answer.clone();
    b[7..9].copy_from_slice(&[0, 5]); // first id 5 > second id 4
    assert!(round_trip::<round3::Answer<P256>>(&b).is_none());
    let mut b = answer.clone();
    b[9..41].fill(0xff);
    assert!(round_trip::<round3::Answer<P256>>(&b).is_none());
}

/// Regenerates the committed fuzz seeds `fuzz/seeds/reshare_*`:
/// `cargo test -p tcrypto --all-features --test reshare -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand to regenerate the fuzz seeds"]
fn write_fuzz_seeds() {
    for (target, seeds, _) in seeds() {
        fuzz_seeds::write_seeds(target, &seeds);
    }
}

/// The committed seeds are what [`write_fuzz_seeds`] writes and pass the fuzz targets' property.
#[test]
fn committed_fuzz_seeds_round_trip() {
    for (target, seeds, rts) in seeds() {
        let dir = fuzz_seeds::seeds_dir(target);
        for (i, seed) in seeds.iter().enumerate() {
            let committed = std::fs::read(dir.join(format!("valid-{i}"))).unwrap();
            assert_eq!(&committed, seed, "{target}/valid-{i} is stale");
            let truncated = std::fs::read(dir.join(format!("truncated-{i}"))).unwrap();
            assert!(
                rts.iter().all(|rt| rt(&truncated).is_none()),
                "{target}/truncated-{i} decodes"
            );
        }
    }
}

proptest::proptest! {
    /// Every decoder of this module, on arbitrary bytes behind a valid header: never panics, and whatever decodes
    /// re-encodes to the same bytes.
    #[test]
    fn decoders_never_panic_and_round_trip(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        tag in 0x60u8..0x65,
        curve in 1u8..3,
    ) {
        let mut b = bytes;
        if b.len() >= 3 {
            b[0] = 1;
            b[1] = tag;
            b[2] = curve;
        }
        for (_, _, rts) in seeds() {
            for rt in rts {
                if let Some(again) = rt(&b) {
                    proptest::prop_assert_eq!(&again, &b);
                }
            }
        }
    }
}
