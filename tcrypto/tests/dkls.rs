//! DKLs23 (`tcrypto::ecdsa::dkls`): signatures from DKG keys with any `k` (checked by `p256`'s verifier),
//! misbehaviour in every message (no invalid signature, culprit named where the protocol allows), and strict
//! decoding of every message.
//!
//! Every message crosses an encode/decode boundary between parties. Pair states (base OTs) are set up once per
//! test binary for five parties and shared by every test (they do not depend on the key).

#![allow(clippy::unwrap_used, clippy::type_complexity)]

#[path = "common/fuzz_seeds.rs"]
mod fuzz_seeds;
#[path = "common/dkg_net.rs"]
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use net::{id, seeded_rng};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::elliptic_curve::Group as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tcrypto::SessionId;
use tcrypto::SignerId;
use tcrypto::dkg::P256;
use tcrypto::ecdsa::dkls::{
    self, Error, Fault, PairState, PartialSignature, Round1Msg, Round2Msg, SignParams, setup,
};
use tcrypto::ecdsa::{self, KeyShare};

/// Pair states of parties 1..=5: `PAIRS[i][j]` is `P_i`'s state for peer `P_j`.
fn pairs() -> &'static BTreeMap<SignerId, BTreeMap<SignerId, PairState>> {
    static PAIRS: OnceLock<BTreeMap<SignerId, BTreeMap<SignerId, PairState>>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0xd1c5);
        let mut out: BTreeMap<SignerId, BTreeMap<SignerId, PairState>> = BTreeMap::new();
        for i in 1..=5u16 {
            for j in i + 1..=5 {
                let (a, b) = setup::run_pair(SessionId::random(&mut rng), id(i), id(j), &mut rng).unwrap();
                out.entry(id(i)).or_default().insert(id(j), a);
                out.entry(id(j)).or_default().insert(id(i), b);
            }
        }
        out
    })
}

/// ECDSA key shares of a `k`-of-`n` P-256 key made by the DKG.
fn dkg_keys(k: u16, n: u16, rng: &mut StdRng) -> Vec<KeyShare> {
    net::honest::<P256>(k, n, rng)
        .iter()
        .map(|s| s.to_ecdsa().unwrap())
        .collect()
}

/// Tampering hooks on each copy `(from, to)`; returning `false` withholds it.
struct Hooks {
    round1: Box<dyn FnMut(SignerId, SignerId, &mut Round1Msg) -> bool>,
    round2: Box<dyn FnMut(SignerId, SignerId, &mut Round2Msg) -> bool>,
    partial: Box<dyn FnMut(SignerId, &mut PartialSignature) -> bool>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            round1: Box::new(|_, _, _| true),
            round2: Box::new(|_, _, _| true),
            partial: Box::new(|_, _| true),
        }
    }
}

impl Hooks {
    /// Tampers with (or, returning `false`, withholds) the round-1 messages of `who`, per recipient.
    fn round1(who: u16, mut f: impl FnMut(SignerId, &mut Round1Msg) -> bool + 'static) -> Self {
        Self {
            round1: Box::new(move |from, to, m| from != id(who) || f(to, m)),
            ..Self::default()
        }
    }

    /// Tampers with (or withholds) the round-2 messages of `who`, per recipient.
    fn round2(who: u16, mut f: impl FnMut(SignerId, &mut Round2Msg) -> bool + 'static) -> Self {
        Self {
            round2: Box::new(move |from, to, m| from != id(who) || f(to, m)),
            ..Self::default()
        }
    }

    /// Tampers with (or withholds) the partial signature of `who`.
    fn partial(who: u16, mut f: impl FnMut(&mut PartialSignature) -> bool + 'static) -> Self {
        Self {
            partial: Box::new(move |from, p| from != id(who) || f(p)),
            ..Self::default()
        }
    }
}

/// What a run gave: each signer's error (if it stopped), and the combiner's result.
struct Outcome {
    errors: BTreeMap<SignerId, Error>,
    combined: Option<Result<ecdsa::Combined, Error>>,
}

/// Runs DKLs23 signing among `signers` over encoded messages, then combines whatever partials arrived.
fn run(keys: &[KeyShare], signers: &[u16], digest: &[u8], hooks: &mut Hooks, rng: &mut StdRng) -> Outcome {
    let params = SignParams {
        session: SessionId::random(rng),
        signers: signers.iter().map(|i| id(*i)).collect(),
    };
    let key = |i: SignerId| keys.iter().find(|k| k.id() == i).unwrap();
    let mut errors = BTreeMap::new();
    let mut states1 = BTreeMap::new();
    let mut inbox1: BTreeMap<SignerId, BTreeMap<SignerId, Round1Msg>> = BTreeMap::new();
    for &i in &params.signers {
        let (state, out) = dkls::round1(key(i), &pairs()[&i], params.clone(), rng).unwrap();
        states1.insert(i, state);
        for (to, mut m) in out {
            if (hooks.round1)(i, to, &mut m) {
                let m = Round1Msg::decode(&m.encode()).unwrap();
                inbox1.entry(to).or_default().insert(i, m);
            }
        }
    }
    let mut states2 = BTreeMap::new();
    let mut inbox2: BTreeMap<SignerId, BTreeMap<SignerId, Round2Msg>> = BTreeMap::new();
    for (i, state) in states1 {
        match state.round2(&pairs()[&i], &inbox1.remove(&i).unwrap_or_default(), rng) {
            Ok((state, out)) => {
                states2.insert(i, state);
                for (to, mut m) in out {
                    if (hooks.round2)(i, to, &mut m) {
                        let m = Round2Msg::decode(&m.encode()).unwrap();
                        inbox2.entry(to).or_default().insert(i, m);
                    }
                }
            }
            Err(e) => {
                errors.insert(i, e);
            }
        }
    }
    let mut partials = BTreeMap::new();
    for (i, state) in states2 {
        match state.round3(&inbox2.remove(&i).unwrap_or_default(), digest) {
            Ok(mut p) => {
                if (hooks.partial)(i, &mut p) {
                    partials.insert(i, PartialSignature::decode(&p.encode()).unwrap());
                }
            }
            Err(e) => {
                errors.insert(i, e);
            }
        }
    }
    let combined = errors
        .is_empty()
        .then(|| dkls::combine(&keys[0].verifying_key().unwrap(), &params, digest, &partials));
    Outcome { errors, combined }
}

fn digest(rng: &mut StdRng) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    rng.fill(&mut d[..]);
    d
}

/// The signature verifies under the key with `p256`'s own verifier (prehash and DER forms).
fn assert_verifies(keys: &[KeyShare], digest: &[u8], combined: &ecdsa::Combined) {
    let vk = keys[0].verifying_key().unwrap();
    vk.verify_prehash(digest, &combined.signature).unwrap();
    let der = p256::ecdsa::DerSignature::try_from(combined.to_der().as_slice()).unwrap();
    vk.verify_prehash(digest, &der).unwrap();
}

fn sign_ok(keys: &[KeyShare], signers: &[u16], rng: &mut StdRng) {
    let d = digest(rng);
    let out = run(keys, signers, &d, &mut Hooks::default(), rng);
    assert!(out.errors.is_empty(), "{signers:?}: {:?}", out.errors);
    let combined = out
        .combined
        .unwrap()
        .unwrap_or_else(|e| panic!("{signers:?}: {e}"));
    assert_verifies(keys, &d, &combined);
}

// ----- Honest runs on DKG keys -----

#[test]
fn two_of_three_dkg_key_signs_with_every_pair_and_all_three() {
    let mut rng = seeded_rng("two_of_three");
    let keys = dkg_keys(2, 3, &mut rng);
    for set in [&[1, 2][..], &[1, 3], &[2, 3], &[1, 2, 3]] {
        sign_ok(&keys, set, &mut rng);
    }
}

#[test]
fn three_of_five_dkg_key_signs_with_every_three_subset() {
    let mut rng = seeded_rng("three_of_five");
    let keys = dkg_keys(3, 5, &mut rng);
    for a in 1..=5u16 {
        for b in a + 1..=5 {
            for c in b + 1..=5 {
                sign_ok(&keys, &[a, b, c], &mut rng);
            }
        }
    }
}

#[test]
fn four_of_five_dkg_key_signs_and_cannot_presign() {
    let mut rng = seeded_rng("four_of_five");
    let keys = dkg_keys(4, 5, &mut rng);
    sign_ok(&keys, &[1, 2, 3, 4], &mut rng);
    sign_ok(&keys, &[2, 3, 4, 5], &mut rng);
    sign_ok(&keys, &[1, 2, 3, 4, 5], &mut rng);
    let params = ecdsa::presign::PresignParams {
        session: SessionId::random(&mut rng),
        parties: (1..=5).map(id).collect(),
        batch: 1,
    };
    assert!(matches!(
        ecdsa::presign::round1(&keys[0], params, &mut rng),
        Err(ecdsa::Error::UnsupportedParameters(_))
    ));
}

#[test]
fn five_of_five_and_one_of_three_dkg_keys_sign() {
    let mut rng = seeded_rng("five_of_five");
    let keys = dkg_keys(5, 5, &mut rng);
    sign_ok(&keys, &[1, 2, 3, 4, 5], &mut rng);
    let keys = dkg_keys(1, 3, &mut rng);
    sign_ok(&keys, &[2], &mut rng);
    sign_ok(&keys, &[1, 3], &mut rng);
}

#[test]
fn a_set_smaller_than_k_or_without_pair_states_is_refused() {
    let mut rng = seeded_rng("refusals");
    let keys = dkg_keys(3, 5, &mut rng);
    let params = |s: &[u16]| SignParams {
        session: SessionId([7; 32]),
        signers: s.iter().map(|i| id(*i)).collect(),
    };
    assert!(matches!(
        dkls::round1(&keys[0], &pairs()[&id(1)], params(&[1, 2]), &mut rng),
        Err(Error::UnsupportedParameters(_))
    ));
    assert!(matches!(
        dkls::round1(&keys[0], &pairs()[&id(1)], params(&[2, 3, 4]), &mut rng),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(
        dkls::round1(&keys[0], &BTreeMap::new(), params(&[1, 2, 3]), &mut rng),
        Err(Error::Misuse(_))
    ));
    // Pair states of another party (P_2's) are not P_1's.
    assert!(matches!(
        dkls::round1(&keys[0], &pairs()[&id(2)], params(&[1, 2, 3]), &mut rng),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(
        dkls::round1(&keys[0], &pairs()[&id(1)], params(&[1, 2, 9]), &mut rng),
        Err(Error::Misuse(_))
    ));
}

// ----- Misbehaviour -----

/// Every honest signer that stopped names exactly `culprit` with `fault`, at least one did, and nothing was
/// combined.
fn assert_named(out: &Outcome, culprit: u16, fault: Fault) {
    assert!(
        out.combined.is_none(),
        "a run with culprits must not reach the combiner"
    );
    assert!(!out.errors.is_empty(), "nobody noticed");
    let mut named = false;
    for (who, e) in &out.errors {
        if who.get() == culprit {
            continue;
        }
        match e {
            Error::Culprits { culprits } => {
                assert_eq!(culprits.len(), 1, "{who}: {e}");
                assert_eq!(
                    (culprits[0].id.get(), culprits[0].fault),
                    (culprit, fault),
                    "{who}: {e}"
                );
                named = true;
            }
            other => panic!("{who}: expected culprits, got {other}"),
        }
    }
    assert!(named);
}

fn keys_3_of_5(label: &str) -> (Vec<KeyShare>, StdRng) {
    let mut rng = seeded_rng(label);
    let keys = dkg_keys(3, 5, &mut rng);
    (keys, rng)
}

#[test]
fn round1_equivocated_commitment_names_the_equivocator() {
    let (keys, mut rng) = keys_3_of_5("r1_equivocation");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round1(2, |to, m| {
        if to == id(3) {
            m.commitment[0] ^= 1;
        }
        true
    });
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    // P_3 sees a wrong opening, P_1 sees P_3's echo disagree with what P_2 sent it: both name P_2.
    assert_eq!(out.errors[&id(3)].culprits(), vec![id(2)]);
    assert_eq!(out.errors[&id(1)].culprits(), vec![id(2)]);
    assert!(out.combined.is_none());
}

#[test]
fn round1_inconsistent_ot_extension_is_named_by_alice() {
    for (label, tamper) in [
        (
            "check_t",
            (|m: &mut Round1Msg| m.vole.ote.check_t ^= 1 << 5) as fn(&mut Round1Msg),
        ),
        ("check_x", |m: &mut Round1Msg| m.vole.ote.check_x ^= 1 << 77),
        ("column", |m: &mut Round1Msg| m.vole.ote.u[9][40] ^= 0x10),
        ("nonce", |m: &mut Round1Msg| m.vole.nonce[3] ^= 1),
    ] {
        let (keys, mut rng) = keys_3_of_5(label);
        let d = digest(&mut rng);
        let mut hooks = Hooks::round1(1, move |_, m| {
            tamper(m);
            true
        });
        let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
        assert_named(&out, 1, Fault::OtExtensionCheck);
    }
}

#[test]
fn round1_message_of_another_session_is_malformed() {
    let (keys, mut rng) = keys_3_of_5("r1_session");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round1(5, |_, m| {
        m.session = SessionId([3; 32]);
        true
    });
    let out = run(&keys, &[1, 4, 5], &d, &mut hooks, &mut rng);
    assert_named(&out, 5, Fault::Malformed);
}

#[test]
fn round1_silence_is_reported_as_missing() {
    let (keys, mut rng) = keys_3_of_5("r1_silence");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round1(3, |to, _| to != id(1));
    let out = run(&keys, &[1, 3, 5], &d, &mut hooks, &mut rng);
    assert_eq!(out.errors[&id(1)], Error::MissingMessages(vec![id(3)]));
    assert!(out.combined.is_none());
}

#[test]
fn round2_wrong_opening_is_named() {
    let (keys, mut rng) = keys_3_of_5("r2_opening");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round2(2, |_, m| {
        m.big_r = m.big_r.double();
        true
    });
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    assert_named(&out, 2, Fault::WrongCommitment);
}

#[test]
fn round2_echo_misreporting_our_commitment_names_the_echoer() {
    let (keys, mut rng) = keys_3_of_5("r2_echo");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round2(2, |to, m| {
        if to == id(1) {
            m.echo.get_mut(&id(1)).unwrap()[5] ^= 0x40;
        }
        true
    });
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(
        out.errors[&id(1)],
        Error::Culprits {
            culprits: vec![dkls::Culprit {
                id: id(2),
                fault: Fault::Equivocation
            }]
        }
    );
}

#[test]
fn round2_wrong_vole_message_fails_the_multiplication_check() {
    for (label, tamper) in [
        (
            "tau",
            (|m: &mut Round2Msg| m.vole.tau[17][1] += p256::Scalar::ONE) as fn(&mut Round2Msg),
        ),
        ("mu", |m: &mut Round2Msg| m.vole.mu += p256::Scalar::ONE),
        ("digest", |m: &mut Round2Msg| m.vole.check[31] ^= 1),
        ("nonce", |m: &mut Round2Msg| m.vole.nonce[0] ^= 1),
    ] {
        let (keys, mut rng) = keys_3_of_5(label);
        let d = digest(&mut rng);
        let mut hooks = Hooks::round2(3, move |_, m| {
            tamper(m);
            true
        });
        let out = run(&keys, &[1, 3, 4], &d, &mut hooks, &mut rng);
        assert_named(&out, 3, Fault::MultiplicationCheck);
    }
}

#[test]
fn round2_wrong_gamma_fails_the_consistency_check() {
    for which in [0, 1] {
        let (keys, mut rng) = keys_3_of_5("gamma");
        let d = digest(&mut rng);
        let mut hooks = Hooks::round2(4, move |_, m| {
            let g = if which == 0 {
                &mut m.gamma_u
            } else {
                &mut m.gamma_v
            };
            *g += p256::ProjectivePoint::GENERATOR;
            true
        });
        let out = run(&keys, &[2, 4, 5], &d, &mut hooks, &mut rng);
        assert_named(&out, 4, Fault::InconsistentInput);
    }
}

#[test]
fn round2_wrong_psi_only_aborts_and_releases_nothing() {
    let (keys, mut rng) = keys_3_of_5("psi");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round2(1, |_, m| {
        m.psi += p256::Scalar::ONE;
        true
    });
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    assert!(out.errors.is_empty());
    assert!(matches!(out.combined, Some(Err(Error::InvalidSignature(_)))));
}

#[test]
fn round2_silence_is_reported_as_missing() {
    let (keys, mut rng) = keys_3_of_5("r2_silence");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round2(5, |_, _| false);
    let out = run(&keys, &[1, 3, 5], &d, &mut hooks, &mut rng);
    assert_eq!(out.errors[&id(1)], Error::MissingMessages(vec![id(5)]));
    assert_eq!(out.errors[&id(3)], Error::MissingMessages(vec![id(5)]));
}

#[test]
fn round2_message_of_another_session_is_malformed() {
    let (keys, mut rng) = keys_3_of_5("r2_session");
    let d = digest(&mut rng);
    let mut hooks = Hooks::round2(2, |_, m| {
        m.session = SessionId([1; 32]);
        true
    });
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    assert_named(&out, 2, Fault::Malformed);
}

#[test]
fn round3_wrong_share_or_r_only_aborts_and_releases_nothing() {
    for tamper in [
        (|p: &mut PartialSignature| p.u += p256::Scalar::ONE) as fn(&mut PartialSignature),
        |p: &mut PartialSignature| p.w += p256::Scalar::ONE,
        |p: &mut PartialSignature| p.big_r = p.big_r.double(),
    ] {
        let (keys, mut rng) = keys_3_of_5("r3");
        let d = digest(&mut rng);
        let mut hooks = Hooks::partial(2, move |p| {
            tamper(p);
            true
        });
        let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
        assert!(out.errors.is_empty());
        assert!(matches!(out.combined, Some(Err(Error::InvalidSignature(_)))));
    }
}

#[test]
fn round3_silence_and_foreign_partials_are_refused_by_the_combiner() {
    let (keys, mut rng) = keys_3_of_5("r3_silence");
    let d = digest(&mut rng);
    let mut hooks = Hooks::partial(3, |_| false);
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    assert_eq!(
        out.combined.unwrap().unwrap_err(),
        Error::MissingMessages(vec![id(3)])
    );
    let mut hooks = Hooks::partial(3, |p| {
        p.session = SessionId([2; 32]);
        true
    });
    let out = run(&keys, &[1, 2, 3], &d, &mut hooks, &mut rng);
    assert_eq!(out.combined.unwrap().unwrap_err().culprits(), vec![id(3)]);
}

#[test]
fn messages_from_outside_the_set_are_refused() {
    let (keys, mut rng) = keys_3_of_5("outsider");
    let params = SignParams {
        session: SessionId::random(&mut rng),
        signers: [1, 2, 3].map(id).into_iter().collect::<BTreeSet<_>>(),
    };
    let (s1, _) = dkls::round1(&keys[0], &pairs()[&id(1)], params.clone(), &mut rng).unwrap();
    let (_, out4) = dkls::round1(
        &keys[3],
        &pairs()[&id(4)],
        SignParams {
            signers: [1, 2, 4].map(id).into_iter().collect(),
            ..params
        },
        &mut rng,
    )
    .unwrap();
    let inbox = BTreeMap::from([(id(4), out4[&id(1)].clone())]);
    assert_eq!(
        s1.round2(&pairs()[&id(1)], &inbox, &mut rng)
            .unwrap_err()
            .culprits(),
        vec![id(4)]
    );
}

// ----- Strict decoding -----

/// One valid encoding of every DKLs23 message, from a real run.
fn sample_messages() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let keys = dkg_keys(2, 3, &mut rng);
    let session = SessionId::random(&mut rng);
    let (s1, m1) = setup::round1(session, id(1), id(2), &mut rng).unwrap();
    let (s2, m2) = setup::round1(session, id(2), id(1), &mut rng).unwrap();
    let (_, n1) = s1.round2(&m2, &mut rng).unwrap();
    drop(s2);
    let params = SignParams {
        session: SessionId::random(&mut rng),
        signers: [1, 2].map(id).into_iter().collect(),
    };
    let (a1, r1a) = dkls::round1(&keys[0], &pairs()[&id(1)], params.clone(), &mut rng).unwrap();
    let (a2, r1b) = dkls::round1(&keys[1], &pairs()[&id(2)], params, &mut rng).unwrap();
    let (a1, r2a) = a1
        .round2(
            &pairs()[&id(1)],
            &BTreeMap::from([(id(2), r1b[&id(1)].clone())]),
            &mut rng,
        )
        .unwrap();
    let (_, r2b) = a2
        .round2(
            &pairs()[&id(2)],
            &BTreeMap::from([(id(1), r1a[&id(2)].clone())]),
            &mut rng,
        )
        .unwrap();
    let partial = a1
        .round3(&BTreeMap::from([(id(2), r2b[&id(1)].clone())]), &[9u8; 32])
        .unwrap();
    (
        m1.encode(),
        n1.encode(),
        pairs()[&id(1)][&id(2)].encode(),
        r1a[&id(2)].encode(),
        r2a[&id(2)].encode(),
        partial.encode(),
    )
}

type Decoder = fn(&[u8]) -> Option<Vec<u8>>;

fn decoders() -> [(&'static str, Decoder); 6] {
    [
        ("dkls_setup_round1", |b| {
            setup::SetupRound1::decode(b).ok().map(|m| m.encode())
        }),
        ("dkls_setup_round2", |b| {
            setup::SetupRound2::decode(b).ok().map(|m| m.encode())
        }),
        ("dkls_pair_state", |b| {
            PairState::decode(b).ok().map(|m| m.encode())
        }),
        ("dkls_round1", |b| Round1Msg::decode(b).ok().map(|m| m.encode())),
        ("dkls_round2", |b| Round2Msg::decode(b).ok().map(|m| m.encode())),
        ("dkls_partial_signature", |b| {
            PartialSignature::decode(b).ok().map(|m| m.encode())
        }),
    ]
}

fn samples() -> [Vec<u8>; 6] {
    let (a, b, c, d, e, f) = sample_messages();
    [a, b, c, d, e, f]
}

#[test]
fn every_message_round_trips_and_rejects_trailing_bytes_truncation_versions_and_tags() {
    for ((name, decode), bytes) in decoders().into_iter().zip(samples()) {
        assert_eq!(decode(&bytes).as_ref(), Some(&bytes), "{name}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).is_none(), "{name}: trailing byte");
        assert!(decode(&bytes[..bytes.len() - 1]).is_none(), "{name}: truncated");
        let mut v = bytes.clone();
        v[0] = 2;
        assert!(decode(&v).is_none(), "{name}: version 2");
        let mut t = bytes.clone();
        t[1] ^= 0x0f;
        assert!(decode(&t).is_none(), "{name}: other tag");
    }
}

#[test]
fn bad_points_and_non_canonical_scalars_are_refused() {
    let [s1, _, _, _, r2, partial] = samples();
    // SetupRound1: A at offset 2; refused: x = 0xff..ff and x = p (not below p), an uncompressed prefix, the
    // compressed identity-like all-zero encoding.
    let p_bytes = hex::decode("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff").unwrap();
    let mut x_is_p = [2u8; 33];
    x_is_p[1..].copy_from_slice(&p_bytes);
    let mut uncompressed = [0u8; 33];
    uncompressed[0] = 4;
    for bad in [[0xffu8; 33], x_is_p, uncompressed, [0u8; 33]] {
        let mut m = s1.clone();
        m[2..35].copy_from_slice(&bad);
        assert!(setup::SetupRound1::decode(&m).is_err(), "{}", hex::encode(bad));
    }
    // PartialSignature: u (offset 2 + 32 + 33) set to q (non-canonical), R set to all zeros.
    let mut m = partial.clone();
    m[67..99].copy_from_slice(
        &hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap(),
    );
    assert!(PartialSignature::decode(&m).is_err());
    let mut m = partial;
    m[34..67].copy_from_slice(&[0u8; 33]);
    assert!(PartialSignature::decode(&m).is_err());
    // Round2Msg: an echo with a repeated id (the second entry's id set to the first's).
    let mut m = r2.clone();
    let echo_at = 2 + 32 + 33 + 32;
    let first = [m[echo_at + 4], m[echo_at + 5]];
    m[echo_at + 4 + 34] = first[0];
    m[echo_at + 4 + 35] = first[1];
    assert!(Round2Msg::decode(&m).is_err());
}

/// Regenerates `fuzz/seeds/dkls_*`: `cargo test -p tcrypto --all-features --test dkls -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand to regenerate the fuzz seeds"]
fn write_fuzz_seeds() {
    for ((name, _), bytes) in decoders().into_iter().zip(samples()) {
        fuzz_seeds::write_seeds(name, &[bytes]);
    }
}

/// The committed seeds decode and re-encode to themselves (the fuzz targets' property); truncations do not.
#[test]
fn committed_fuzz_seeds_round_trip() {
    for (name, decode) in decoders() {
        let dir = fuzz_seeds::seeds_dir(name);
        let valid = std::fs::read(dir.join("valid-0")).unwrap();
        assert_eq!(decode(&valid).as_ref(), Some(&valid), "{name}");
        let truncated = std::fs::read(dir.join("truncated-0")).unwrap();
        assert!(decode(&truncated).is_none(), "{name}");
    }
}

#[test]
fn bytes_per_signature_are_as_documented() {
    let [_, _, _, r1, r2, partial] = samples();
    // 2-of-3: one peer. Round 1 ≈ 10 KiB, round 2 ≈ 40 KiB per peer, partial 131 bytes.
    assert_eq!(r1.len(), 2 + 32 + 32 + 32 + 128 * 78 + 32);
    assert_eq!(
        r2.len(),
        2 + 32 + 33 + 32 + 4 + 2 * 34 + 32 + (32 + 416 * 96 + 64) + 66
    );
    assert_eq!(partial.len(), 2 + 32 + 33 + 64);
}

#[test]
fn combine_with_a_prepared_key_gives_the_same_result_and_refuses_the_same_forgeries() {
    let mut rng = seeded_rng("combine_with");
    let keys = dkg_keys(2, 3, &mut rng);
    let d = digest(&mut rng);
    let params = SignParams {
        session: SessionId::random(&mut rng),
        signers: [1, 3].map(id).into_iter().collect(),
    };
    let (s1, m1) = dkls::round1(&keys[0], &pairs()[&id(1)], params.clone(), &mut rng).unwrap();
    let (s3, m3) = dkls::round1(&keys[2], &pairs()[&id(3)], params.clone(), &mut rng).unwrap();
    let in1 = BTreeMap::from([(id(3), m3[&id(1)].clone())]);
    let in3 = BTreeMap::from([(id(1), m1[&id(3)].clone())]);
    let (s1, n1) = s1.round2(&pairs()[&id(1)], &in1, &mut rng).unwrap();
    let (s3, n3) = s3.round2(&pairs()[&id(3)], &in3, &mut rng).unwrap();
    let p1 = s1
        .round3(&BTreeMap::from([(id(3), n3[&id(1)].clone())]), &d)
        .unwrap();
    let p3 = s3
        .round3(&BTreeMap::from([(id(1), n1[&id(3)].clone())]), &d)
        .unwrap();
    let mut partials = BTreeMap::from([(id(1), p1), (id(3), p3)]);
    let vk = keys[0].verifying_key().unwrap();
    let prepared = ecdsa::PreparedKey::new(&vk);
    let a = dkls::combine(&vk, &params, &d, &partials).unwrap();
    let b = dkls::combine_with(&prepared, &params, &d, &partials).unwrap();
    assert_eq!(a, b);
    assert_verifies(&keys, &d, &a);
    partials.get_mut(&id(3)).unwrap().w += p256::Scalar::ONE;
    assert!(matches!(
        dkls::combine_with(&prepared, &params, &d, &partials),
        Err(Error::InvalidSignature(_))
    ));
}

#[test]
fn setup_with_a_wrong_base_ot_proof_or_another_session_names_the_sender() {
    let mut rng = seeded_rng("setup_proof");
    let session = SessionId::random(&mut rng);
    let (_, mut m1) = setup::round1(session, id(1), id(2), &mut rng).unwrap();
    let (s2, _) = setup::round1(session, id(2), id(1), &mut rng).unwrap();
    m1.ot.proof_response += p256::Scalar::ONE;
    let m1 = setup::SetupRound1::decode(&m1.encode()).unwrap();
    assert_eq!(
        s2.round2(&m1, &mut rng).unwrap_err(),
        Error::Culprits {
            culprits: vec![dkls::Culprit {
                id: id(1),
                fault: Fault::BaseOtProof
            }]
        }
    );
    // A setup under two different session ids (a replayed first message) fails the proof as well.
    let (_, m1) = setup::round1(SessionId::random(&mut rng), id(1), id(2), &mut rng).unwrap();
    let (s2, _) = setup::round1(session, id(2), id(1), &mut rng).unwrap();
    assert_eq!(s2.round2(&m1, &mut rng).unwrap_err().culprits(), vec![id(1)]);
}
