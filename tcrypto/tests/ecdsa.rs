//! Threshold ECDSA P-256: end-to-end runs checked by `p256`'s verifier and by `openssl`, misbehaviour in every
//! round, single use of presignatures, parameter limits, strict decoders.
#![cfg(feature = "dealer")]
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::{BTreeMap, BTreeSet};

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::elliptic_curve::group::Group as _;
use p256::elliptic_curve::sec1::ToSec1Point as _;
use p256::{ProjectivePoint, Scalar};
use rand::SeedableRng as _;
use sha2::Digest as _;
use tcrypto::ecdsa::presign::{
    self, BlameReveal, Finished, PresignParams, Round1Broadcast, Round1Direct, Round2Broadcast, Round2Direct,
    Round3Broadcast,
};
use tcrypto::ecdsa::{
    self, Error, Fault, KeyShare, Presignature, PresignaturePublic, SignRequest, SignatureShare,
};
use tcrypto::{SessionId, SignerId};

type Rng = rand::rngs::StdRng;

fn rng(seed: u64) -> Rng {
    eprintln!("rng seed {seed}");
    Rng::seed_from_u64(seed)
}

fn id(j: u16) -> SignerId {
    SignerId::new(j).unwrap()
}

/// Messages in flight: broadcasts and directs, per (sender, receiver).
struct Pipe<B, D> {
    b: BTreeMap<(SignerId, SignerId), B>,
    d: BTreeMap<(SignerId, SignerId), D>,
}

impl<B: Clone, D> Pipe<B, D> {
    fn new(parties: &[SignerId], out: Vec<(SignerId, B, BTreeMap<SignerId, D>)>) -> Self {
        let mut b = BTreeMap::new();
        let mut d = BTreeMap::new();
        for (from, bc, directs) in out {
            for to in parties.iter().filter(|to| **to != from) {
                b.insert((from, *to), bc.clone());
            }
            for (to, msg) in directs {
                d.insert((from, to), msg);
            }
        }
        Self { b, d }
    }

    fn inbox(&mut self, to: SignerId) -> (BTreeMap<SignerId, B>, BTreeMap<SignerId, D>) {
        let b = self
            .b
            .iter()
            .filter(|((_, t), _)| *t == to)
            .map(|((f, _), m)| (*f, m.clone()))
            .collect();
        let keys: Vec<_> = self.d.keys().filter(|(_, t)| *t == to).copied().collect();
        let d = keys
            .into_iter()
            .map(|k| (k.0, self.d.remove(&k).unwrap()))
            .collect();
        (b, d)
    }

    /// Changes what `from` broadcast, for every receiver.
    fn edit_broadcast(&mut self, from: SignerId, f: impl Fn(&mut B)) {
        for ((fr, _), m) in self.b.iter_mut() {
            if *fr == from {
                f(m);
            }
        }
    }
}

/// Where a test corrupts the run.
enum Hook<'a> {
    R1(&'a mut Pipe<Round1Broadcast, Round1Direct>),
    R2(&'a mut Pipe<Round2Broadcast, Round2Direct>),
    R3(&'a mut Pipe<Round3Broadcast, ()>),
}

/// Runs presigning among `keys` (every key is a member of `P`), letting `tamper` corrupt messages in flight;
/// a failed run goes through the blame step. Returns each party's outcome.
fn drive(
    keys: &[&KeyShare],
    batch: u32,
    rng: &mut Rng,
    mut tamper: impl FnMut(Hook<'_>),
) -> BTreeMap<SignerId, Result<Vec<Presignature>, Error>> {
    let ids: Vec<SignerId> = keys.iter().map(|k| k.id()).collect();
    let params = PresignParams {
        session: SessionId::random(rng),
        parties: ids.iter().copied().collect(),
        batch,
    };
    let mut result = BTreeMap::new();
    let mut s1 = BTreeMap::new();
    let mut out = Vec::new();
    for k in keys {
        let (st, b, d) = presign::round1(k, params.clone(), rng).unwrap();
        s1.insert(k.id(), st);
        out.push((k.id(), b, d));
    }
    let mut pipe = Pipe::new(&ids, out);
    tamper(Hook::R1(&mut pipe));
    let mut s2 = BTreeMap::new();
    let mut out = Vec::new();
    for (j, st) in s1 {
        let (b, d) = pipe.inbox(j);
        match st.round2(&b, &d, rng) {
            Ok((st, b, d)) => {
                s2.insert(j, st);
                out.push((j, b, d));
            }
            Err(e) => {
                result.insert(j, Err(e));
            }
        }
    }
    let mut pipe = Pipe::new(&ids, out);
    tamper(Hook::R2(&mut pipe));
    let mut s3 = BTreeMap::new();
    let mut out = Vec::new();
    for (j, st) in s2 {
        let (b, d) = pipe.inbox(j);
        match st.round3(&b, &d, rng) {
            Ok((st, b)) => {
                s3.insert(j, st);
                out.push((j, b, BTreeMap::new()));
            }
            Err(e) => {
                result.insert(j, Err(e));
            }
        }
    }
    let mut pipe: Pipe<Round3Broadcast, ()> = Pipe::new(&ids, out);
    tamper(Hook::R3(&mut pipe));
    let mut blame = BTreeMap::new();
    let mut reveals: BTreeMap<SignerId, BlameReveal> = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    for (j, st) in s3 {
        let (b, _) = pipe.inbox(j);
        match st.finish(&b, rng) {
            Ok(Finished::Presignatures(p)) => {
                outputs.insert(j, p);
            }
            Ok(Finished::Blame(state, reveal)) => {
                // Round-trip the reveal through its encoding, as a node would.
                reveals.insert(j, BlameReveal::decode(&reveal.encode()).unwrap());
                blame.insert(j, state);
            }
            Err(e) => {
                result.insert(j, Err(e));
            }
        }
    }
    // If any member failed its checks, everybody discards the run and opens its polynomials.
    for (j, out) in outputs {
        if blame.is_empty() {
            result.insert(j, Ok(out.into_presignatures()));
        } else {
            let (state, reveal) = out.abort_and_reveal();
            reveals.insert(j, reveal);
            blame.insert(j, state);
        }
    }
    for (j, state) in blame {
        let others: BTreeMap<SignerId, BlameReveal> = reveals
            .iter()
            .filter(|(i, _)| **i != j)
            .map(|(i, r)| (*i, BlameReveal::decode(&r.encode()).unwrap()))
            .collect();
        result.insert(j, Err(state.conclude(&others)));
    }
    result
}

fn digest(msg: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(msg).to_vec()
}

/// Signs `msg` with the given signers' presignatures (index `b`); returns the combined result.
fn sign_with(
    keys: &[KeyShare],
    presigs: &mut BTreeMap<SignerId, Vec<Option<Presignature>>>,
    b: usize,
    signers: &[SignerId],
    msg: &[u8],
    corrupt: impl Fn(SignerId, &mut SignatureShare),
) -> (PresignaturePublic, SignRequest, Result<ecdsa::Combined, Error>) {
    let public = presigs[&signers[0]][b].as_ref().unwrap().public().clone();
    let req = SignRequest {
        session: SessionId([b as u8; 32]),
        presignature: public.id,
        digest: digest(msg),
    };
    let mut shares = BTreeMap::new();
    for s in signers {
        let p = presigs.get_mut(s).unwrap()[b].take().unwrap();
        let key = keys.iter().find(|k| k.id() == *s).unwrap();
        let mut spent = BTreeSet::new();
        let mut share = ecdsa::sign_share(key, p, &req, &mut spent).unwrap();
        // Every share travels encoded.
        share = SignatureShare::decode(&share.encode()).unwrap();
        corrupt(*s, &mut share);
        shares.insert(*s, share);
    }
    let vk = keys[0].verifying_key().unwrap();
    let out = ecdsa::combine(&public, &vk, &req, &shares);
    // The prepared key's faster verification reaches the same result.
    let prepared = ecdsa::PreparedKey::new(&vk);
    assert_eq!(ecdsa::combine_with(&public, &prepared, &req, &shares), out);
    (public, req, out)
}

fn presign_all(
    keys: &[KeyShare],
    batch: u32,
    rng: &mut Rng,
) -> BTreeMap<SignerId, Vec<Option<Presignature>>> {
    let refs: Vec<&KeyShare> = keys.iter().collect();
    drive(&refs, batch, rng, |_| {})
        .into_iter()
        .map(|(j, r)| (j, r.unwrap().into_iter().map(Some).collect()))
        .collect()
}

fn assert_culprit(result: &Result<Vec<Presignature>, Error>, who: SignerId, fault: Fault) {
    match result {
        Err(Error::Culprits { culprits }) => {
            assert!(
                culprits.iter().any(|c| c.id == who && c.fault == fault),
                "expected {who:?} {fault:?}, got {culprits:?}"
            );
            assert!(
                culprits.iter().all(|c| c.id == who),
                "honest party blamed: {culprits:?}"
            );
        }
        other => panic!("expected culprits, got {other:?}"),
    }
}

/// Asserts every honest party (all but `who`) ends with an error naming `who` for `fault`.
fn assert_honest_name(
    results: &BTreeMap<SignerId, Result<Vec<Presignature>, Error>>,
    who: SignerId,
    fault: Fault,
) {
    let mut seen = 0;
    for (j, r) in results {
        if *j != who {
            assert_culprit(r, who, fault);
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

#[test]
fn every_three_of_five_subset_signs_and_p256_verifies() {
    let mut rng = rng(1);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 10, &mut rng);
    let vk = keys[0].verifying_key().unwrap();
    let mut b = 0;
    for a in 1..=5u16 {
        for c in a + 1..=5 {
            for d in c + 1..=5 {
                let signers = [id(a), id(c), id(d)];
                let msg = format!("subset {a}{c}{d}");
                let (_, req, out) = sign_with(&keys, &mut presigs, b, &signers, msg.as_bytes(), |_, _| {});
                let out = out.unwrap();
                assert!(out.culprits.is_empty());
                vk.verify_prehash(&req.digest, &out.signature).unwrap();
                // Also through the DER encoding and the message-level API.
                let der = p256::ecdsa::DerSignature::try_from(out.to_der().as_slice()).unwrap();
                vk.verify_prehash(&req.digest, &der).unwrap();
                b += 1;
            }
        }
    }
    assert_eq!(b, 10);
}

#[test]
fn presigning_by_a_subset_of_2t_plus_1_leaves_others_out() {
    let mut rng = rng(2);
    let keys = ecdsa::deal(2, 5, &mut rng).unwrap();
    let chosen: Vec<&KeyShare> = keys
        .iter()
        .filter(|k| [1, 3, 4].contains(&k.id().get()))
        .collect();
    let results = drive(&chosen, 2, &mut rng, |_| {});
    let mut presigs: BTreeMap<_, _> = results
        .into_iter()
        .map(|(j, r)| (j, r.unwrap().into_iter().map(Some).collect::<Vec<_>>()))
        .collect();
    assert_eq!(presigs.len(), 3);
    let (_, req, out) = sign_with(
        &keys,
        &mut presigs,
        0,
        &[id(3), id(4)],
        b"subset presign",
        |_, _| {},
    );
    keys[0]
        .verifying_key()
        .unwrap()
        .verify_prehash(&req.digest, &out.unwrap().signature)
        .unwrap();
}

#[test]
fn presigning_with_fewer_than_2t_plus_1_parties_is_refused() {
    let mut rng = rng(3);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let params = PresignParams {
        session: SessionId::random(&mut rng),
        parties: [id(1), id(2), id(3), id(4)].into_iter().collect(),
        batch: 1,
    };
    assert!(matches!(
        presign::round1(&keys[0], params, &mut rng),
        Err(Error::UnsupportedParameters(_))
    ));
}

#[test]
fn dishonest_majority_parameters_are_refused() {
    let mut rng = rng(4);
    for (k, n) in [(3, 4), (1, 3), (4, 6), (2, 2)] {
        assert!(
            matches!(ecdsa::deal(k, n, &mut rng), Err(Error::UnsupportedParameters(_))),
            "({k}, {n})"
        );
    }
    assert!(ecdsa::deal(2, 3, &mut rng).is_ok());
}

// ---- Misbehaviour, round 1 ----

#[test]
fn round1_wrong_private_share_is_named_by_the_receivers_complaint() {
    let mut rng = rng(10);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 2, &mut rng, |h| {
        if let Hook::R1(p) = h {
            p.d.get_mut(&(id(2), id(4))).unwrap().k_shares[1] += Scalar::ONE;
        }
    });
    assert_honest_name(&results, id(2), Fault::WrongShare);
}

#[test]
fn round1_equivocating_broadcast_is_caught_by_the_echo() {
    let mut rng = rng(11);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R1(p) = h {
            p.b.get_mut(&(id(1), id(3))).unwrap().r_commitment[0] ^= 1;
        }
    });
    assert_culprit(&results[&id(2)], id(1), Fault::Equivocation);
    assert_culprit(&results[&id(3)], id(1), Fault::Equivocation);
}

#[test]
fn round1_message_from_an_unknown_sender_is_named() {
    let mut rng = rng(12);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let (st, b, _) = presign::round1(
        &keys[0],
        PresignParams {
            session: SessionId([1; 32]),
            parties: [id(1), id(2), id(3)].into_iter().collect(),
            batch: 1,
        },
        &mut rng,
    )
    .unwrap();
    let bc: BTreeMap<_, _> = [(id(2), b.clone()), (id(3), b.clone()), (id(9), b)]
        .into_iter()
        .collect();
    let err = st.round2(&bc, &BTreeMap::new(), &mut rng).unwrap_err();
    assert_eq!(err.culprits(), vec![id(9)]);
}

#[test]
fn round1_missing_messages_are_reported_without_blame() {
    let mut rng = rng(13);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let (st, b, _) = presign::round1(
        &keys[0],
        PresignParams {
            session: SessionId([1; 32]),
            parties: [id(1), id(2), id(3)].into_iter().collect(),
            batch: 1,
        },
        &mut rng,
    )
    .unwrap();
    let bc: BTreeMap<_, _> = [(id(2), b)].into_iter().collect();
    assert_eq!(
        st.round2(&bc, &BTreeMap::new(), &mut rng).unwrap_err(),
        Error::MissingMessages(vec![id(3)])
    );
}

// ---- Misbehaviour, round 2 ----

#[test]
fn round2_revealed_nonce_not_matching_its_commitment_is_named() {
    let mut rng = rng(20);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R2(p) = h {
            p.edit_broadcast(id(3), |m| m.r_points[0] = m.r_points[0].double());
        }
    });
    assert_honest_name(&results, id(3), Fault::WrongCommitment);
}

#[test]
fn round2_wrong_resharing_of_w_is_named_by_the_receivers_complaint() {
    let mut rng = rng(21);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R2(p) = h {
            p.d.get_mut(&(id(5), id(1))).unwrap().u_shares[0] += Scalar::ONE;
        }
    });
    assert_honest_name(&results, id(5), Fault::WrongShare);
}

#[test]
fn round2_wrong_resharing_of_ax_is_caught_by_the_feldman_check() {
    let mut rng = rng(22);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 2, &mut rng, |h| {
        if let Hook::R2(p) = h {
            p.d.get_mut(&(id(2), id(3))).unwrap().v_shares[1] += Scalar::ONE;
        }
    });
    assert_honest_name(&results, id(2), Fault::WrongShare);
}

#[test]
fn round2_consistent_resharing_of_a_wrong_product_is_found_by_blame() {
    // Party 3 reshares v_3 + e to everybody, with a matching Feldman vector: every share check passes, the
    // final check over the dual code fails, and the blame step names 4.
    let mut rng = rng(23);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let e = Scalar::from(7u64);
    let results = drive(&refs, 1, &mut rng, |h| match h {
        Hook::R2(p) => {
            p.edit_broadcast(id(3), |m| m.v_commitments[0][0] += ProjectivePoint::GENERATOR * e);
            for ((f, _), d) in p.d.iter_mut() {
                if *f == id(3) {
                    d.v_shares[0] += e;
                }
            }
        }
        // A consistent cheater: party 3 echoes the broadcast it actually sent (the honest parties' view), and
        // its own program sees the echoes it expects.
        Hook::R3(p) => {
            let honest_view = p.b[&(id(1), id(2))].echo.clone();
            let own_view = p.b[&(id(3), id(1))].echo.clone();
            p.edit_broadcast(id(3), |m| m.echo = honest_view.clone());
            for j in [id(1), id(2)] {
                p.b.get_mut(&(j, id(3))).unwrap().echo = own_view.clone();
            }
        }
        Hook::R1(_) => {}
    });
    for j in [id(1), id(2)] {
        assert_culprit(&results[&j], id(3), Fault::WrongShare);
    }
}

#[test]
fn round2_identity_point_is_named() {
    let mut rng = rng(24);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R2(p) = h {
            p.edit_broadcast(id(2), |m| m.v_commitments[0][1] = ProjectivePoint::IDENTITY);
        }
    });
    assert_honest_name(&results, id(2), Fault::IdentityPoint);
}

#[test]
fn round2_equivocating_broadcast_is_caught_by_the_echo() {
    let mut rng = rng(25);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R2(p) = h {
            // To party 3 only, party 1 claims a complaint-free but different commitment list.
            p.b.get_mut(&(id(1), id(3))).unwrap().u_share_commitments[0][5] ^= 1;
        }
    });
    assert_culprit(&results[&id(2)], id(1), Fault::Equivocation);
    assert_culprit(&results[&id(3)], id(1), Fault::Equivocation);
}

// ---- Misbehaviour, round 3 ----

#[test]
fn round3_wrong_opening_of_w_is_found_by_blame() {
    let mut rng = rng(30);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 2, &mut rng, |h| {
        if let Hook::R3(p) = h {
            p.edit_broadcast(id(4), |m| m.w_shares[1] += Scalar::ONE);
        }
    });
    assert_honest_name(&results, id(4), Fault::WrongOpening);
}

#[test]
fn round3_wrong_commitment_point_is_found_by_blame() {
    let mut rng = rng(31);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    for field in 0..4 {
        let results = drive(&refs, 1, &mut rng, |h| {
            if let Hook::R3(p) = h {
                p.edit_broadcast(id(2), |m| {
                    let v = match field {
                        0 => &mut m.a_r,
                        1 => &mut m.a_x,
                        2 => &mut m.a_g,
                        _ => &mut m.vx,
                    };
                    v[0] += ProjectivePoint::GENERATOR;
                });
            }
        });
        assert_honest_name(&results, id(2), Fault::WrongOpening);
    }
}

#[test]
fn round3_wrong_commitment_point_late_in_a_batch_is_found_by_blame() {
    // The batch check combines the presignatures with random weights: a wrong point in the last one of a batch
    // is caught as well, whichever of the four opened points it is.
    let mut rng = rng(33);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    for field in 0..4 {
        let results = drive(&refs, 3, &mut rng, |h| {
            if let Hook::R3(p) = h {
                p.edit_broadcast(id(3), |m| {
                    let v = match field {
                        0 => &mut m.a_r,
                        1 => &mut m.a_x,
                        2 => &mut m.a_g,
                        _ => &mut m.vx,
                    };
                    v[2] += ProjectivePoint::GENERATOR;
                });
            }
        });
        assert_honest_name(&results, id(3), Fault::WrongOpening);
    }
}

#[test]
fn round3_identity_point_is_named() {
    let mut rng = rng(32);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R3(p) = h {
            p.edit_broadcast(id(1), |m| m.vx[0] = ProjectivePoint::IDENTITY);
        }
    });
    assert_honest_name(&results, id(1), Fault::IdentityPoint);
}

#[test]
fn round3_equivocating_broadcast_is_caught() {
    // A different w-share to one receiver only: that receiver's opening fails and blame names the sender.
    let mut rng = rng(33);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 1, &mut rng, |h| {
        if let Hook::R3(p) = h {
            p.b.get_mut(&(id(2), id(3))).unwrap().w_shares[0] += Scalar::ONE;
        }
    });
    assert_culprit(&results[&id(3)], id(2), Fault::WrongOpening);
}

// ---- Misbehaviour, online round ----

#[test]
fn wrong_signature_share_is_named_and_the_signature_comes_from_honest_shares() {
    let mut rng = rng(40);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let signers = [id(1), id(2), id(3), id(5)];
    let (_, req, out) = sign_with(&keys, &mut presigs, 0, &signers, b"blame", |j, s| {
        if j == id(2) {
            s.s += Scalar::ONE;
        }
    });
    let out = out.unwrap();
    assert_eq!(
        out.culprits.iter().map(|c| (c.id, c.fault)).collect::<Vec<_>>(),
        vec![(id(2), Fault::WrongShare)]
    );
    keys[0]
        .verifying_key()
        .unwrap()
        .verify_prehash(&req.digest, &out.signature)
        .unwrap();
}

#[test]
fn share_with_a_wrong_r_is_named_and_the_signature_comes_from_honest_shares() {
    let mut rng = rng(44);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let signers = [id(1), id(3), id(4), id(5)];
    // Party 3 claims another r (and makes its s consistent with nothing): the optimistic path cannot use the
    // first three shares, the blame step recomputes r and names party 3.
    let (_, req, out) = sign_with(&keys, &mut presigs, 0, &signers, b"wrong r", |j, s| {
        if j == id(3) {
            s.r += Scalar::ONE;
        }
    });
    let out = out.unwrap();
    assert_eq!(
        out.culprits.iter().map(|c| (c.id, c.fault)).collect::<Vec<_>>(),
        vec![(id(3), Fault::WrongShare)]
    );
    keys[0]
        .verifying_key()
        .unwrap()
        .verify_prehash(&req.digest, &out.signature)
        .unwrap();
}

#[test]
fn prepared_key_verifies_exactly_what_p256_verifies() {
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    let mut rng = rng(45);
    let random_key = |rng: &mut Rng| {
        let mut b = [0u8; 32];
        rand::Rng::fill_bytes(rng, &mut b);
        p256::ecdsa::SigningKey::from_bytes(&p256::FieldBytes::from(b)).unwrap()
    };
    for _ in 0..8 {
        let sk = random_key(&mut rng);
        let vk = *sk.verifying_key();
        let prepared = ecdsa::PreparedKey::new(&vk);
        for len in [16usize, 32, 48, 64] {
            let mut d = vec![0u8; len];
            rand::Rng::fill_bytes(&mut rng, &mut d);
            let sig: p256::ecdsa::Signature = sk.sign_prehash(&d).unwrap();
            assert!(prepared.verify_prehash(&d, &sig));
            assert!(vk.verify_prehash(&d, &sig).is_ok());
            // A different digest, r or s, or key: both refuse.
            let mut other = d.clone();
            other[0] ^= 1;
            assert!(!prepared.verify_prehash(&other, &sig));
            assert!(vk.verify_prehash(&other, &sig).is_err());
            let (r, s) = sig.split_scalars();
            for bad in [
                p256::ecdsa::Signature::from_scalars(r.to_bytes(), (*s + Scalar::ONE).to_bytes()).unwrap(),
                p256::ecdsa::Signature::from_scalars((*r + Scalar::ONE).to_bytes(), s.to_bytes()).unwrap(),
                p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap(),
            ] {
                assert_eq!(
                    prepared.verify_prehash(&d, &bad),
                    vk.verify_prehash(&d, &bad).is_ok(),
                    "verdicts differ"
                );
            }
            let other_key = ecdsa::PreparedKey::new(random_key(&mut rng).verifying_key());
            assert!(!other_key.verify_prehash(&d, &sig));
        }
    }
}

#[test]
fn too_few_honest_shares_is_an_error_naming_the_culprit() {
    let mut rng = rng(41);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let (_, _, out) = sign_with(&keys, &mut presigs, 0, &[id(1), id(2), id(3)], b"x", |j, s| {
        if j == id(3) {
            s.s = Scalar::ZERO;
        }
    });
    match out {
        Err(Error::NotEnoughShares {
            valid,
            needed,
            culprits,
        }) => {
            assert_eq!((valid, needed), (2, 3));
            assert_eq!(culprits[0].id, id(3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn share_from_an_unknown_or_duplicated_id_is_named() {
    let mut rng = rng(42);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let public = presigs[&id(1)][0].as_ref().unwrap().public().clone();
    let req = SignRequest {
        session: SessionId([3; 32]),
        presignature: public.id,
        digest: digest(b"dup"),
    };
    let mut shares = BTreeMap::new();
    for j in [id(1), id(2)] {
        let p = presigs.get_mut(&j).unwrap()[0].take().unwrap();
        let key = &keys[usize::from(j.get()) - 1];
        shares.insert(j, ecdsa::sign_share(key, p, &req, &mut BTreeSet::new()).unwrap());
    }
    // Party 3 replays party 1's share (a duplicate under another channel id); id 7 is not a member at all.
    shares.insert(id(3), shares[&id(1)].clone());
    shares.insert(id(7), shares[&id(2)].clone());
    let vk = keys[0].verifying_key().unwrap();
    let out = ecdsa::combine(&public, &vk, &req, &shares).unwrap();
    let named: Vec<_> = out.culprits.iter().map(|c| (c.id, c.fault)).collect();
    assert!(named.contains(&(id(3), Fault::Malformed)), "{named:?}");
    assert!(named.contains(&(id(7), Fault::UnknownSender)), "{named:?}");
    vk.verify_prehash(&req.digest, &out.signature).unwrap();
}

#[test]
fn restored_presignature_is_refused_once_spent() {
    let mut rng = rng(43);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let p = presigs.get_mut(&id(1)).unwrap()[0].take().unwrap();
    let stored = p.encode();
    let req = SignRequest {
        session: SessionId([4; 32]),
        presignature: p.id(),
        digest: digest(b"once"),
    };
    let mut spent = BTreeSet::new();
    ecdsa::sign_share(&keys[0], p, &req, &mut spent).unwrap();
    assert!(spent.contains(&req.presignature));
    // The node restarts from storage that still holds the presignature, with its spent record.
    let restored = Presignature::decode(&stored).unwrap();
    let again = SignRequest {
        digest: digest(b"another message"),
        ..req.clone()
    };
    assert_eq!(
        ecdsa::sign_share(&keys[0], restored, &again, &mut spent).unwrap_err(),
        Error::PresignatureSpent(req.presignature)
    );
}

#[test]
fn a_spent_log_that_cannot_record_stops_the_share() {
    struct Broken;
    impl ecdsa::SpentPresignatures for Broken {
        fn mark_spent(&mut self, _: &ecdsa::PresignatureId) -> Result<bool, String> {
            Err("disk full".into())
        }
    }
    let mut rng = rng(44);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let p = presigs.get_mut(&id(2)).unwrap()[0].take().unwrap();
    let req = SignRequest {
        session: SessionId([4; 32]),
        presignature: p.id(),
        digest: digest(b"x"),
    };
    assert!(matches!(
        ecdsa::sign_share(&keys[1], p, &req, &mut Broken),
        Err(Error::SpentLog(_))
    ));
}

// ---- Encodings ----

#[test]
fn non_canonical_scalars_and_points_are_refused() {
    let share = SignatureShare {
        id: id(1),
        presignature: ecdsa::PresignatureId {
            session: SessionId([0; 32]),
            index: 0,
        },
        r: Scalar::ONE,
        s: Scalar::ONE,
    };
    let mut bytes = share.encode();
    let n = bytes.len();
    // s = n (the group order) is non-canonical.
    bytes[n - 32..].copy_from_slice(
        &hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap(),
    );
    assert!(matches!(SignatureShare::decode(&bytes), Err(Error::Decode(_))));
    bytes[n - 32..].copy_from_slice(&[0xff; 32]);
    assert!(matches!(SignatureShare::decode(&bytes), Err(Error::Decode(_))));

    // Points in a round-3 broadcast travel uncompressed (x || y): the identity (all zero), x >= p, y >= p, a
    // point off the curve and a compressed point are refused.
    let good = Round3Broadcast {
        w_shares: vec![Scalar::ONE],
        a_r: vec![ProjectivePoint::GENERATOR],
        a_x: vec![ProjectivePoint::GENERATOR],
        a_g: vec![ProjectivePoint::GENERATOR],
        vx: vec![ProjectivePoint::GENERATOR],
        complaints: vec![],
        echo: vec![],
    };
    let enc = good.encode();
    assert_eq!(Round3Broadcast::decode(&enc).unwrap(), good);
    let at = 2 + 4 + 32 + 4; // header, w count, w, a_r count
    use p256::elliptic_curve::group::GroupEncoding as _;
    use p256::elliptic_curve::point::AffineCoordinates as _;
    let g = p256::AffinePoint::GENERATOR;
    let mut g_xy = [0u8; 64];
    g_xy[..32].copy_from_slice(&g.x());
    g_xy[32..].copy_from_slice(&g.y());
    assert_eq!(&enc[at..at + 64], &g_xy[..]);
    let mut off_curve = g_xy;
    off_curve[63] ^= 1;
    let mut x_too_big = off_curve;
    x_too_big[..32].copy_from_slice(&[0xff; 32]);
    let mut y_too_big = off_curve;
    y_too_big[32..].copy_from_slice(&[0xff; 32]);
    for bad in [[0u8; 64], off_curve, x_too_big, y_too_big] {
        let mut e = enc.clone();
        e[at..at + 64].copy_from_slice(&bad);
        assert!(matches!(Round3Broadcast::decode(&e), Err(Error::Decode(_))));
    }
    // A compressed point where an uncompressed one belongs does not decode either.
    let mut short = enc[..at].to_vec();
    short.extend_from_slice(&g.to_bytes()[..]);
    short.extend_from_slice(&enc[at + 64..]);
    assert!(Round3Broadcast::decode(&short).is_err());
}

#[test]
fn compressed_points_with_a_compact_or_unknown_prefix_are_refused() {
    // Presignatures keep compressed points; only the 02/03 prefixes are canonical (05 is SEC1's compact form).
    let mut rng = rng(51);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let p = presigs.get_mut(&id(1)).unwrap()[0].take().unwrap();
    let enc = p.encode();
    let again = ecdsa::Presignature::decode(&enc).unwrap();
    assert_eq!(again.encode(), enc);
    // The first point is R, after the signer, rho, sigma, the presignature id, the key id and the threshold.
    let r = p.public().r_point.to_affine().to_sec1_point(true);
    let at = enc.windows(33).position(|w| w == r.as_bytes()).unwrap();
    assert!(enc[at] == 2 || enc[at] == 3);
    for prefix in [0u8, 1, 4, 5, 6, 7, 0xff] {
        let mut e = enc.clone();
        e[at] = prefix;
        assert!(ecdsa::Presignature::decode(&e).is_err(), "prefix {prefix}");
    }
}

#[test]
fn every_message_round_trips_through_its_encoding() {
    let mut rng = rng(50);
    let keys = ecdsa::deal(2, 3, &mut rng).unwrap();
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let results = drive(&refs, 2, &mut rng, |h| match h {
        Hook::R1(p) => {
            for m in p.b.values() {
                assert_eq!(&Round1Broadcast::decode(&m.encode()).unwrap(), m);
            }
            for m in p.d.values() {
                assert_eq!(&Round1Direct::decode(&m.encode()).unwrap(), m);
            }
        }
        Hook::R2(p) => {
            for m in p.b.values() {
                assert_eq!(&Round2Broadcast::decode(&m.encode()).unwrap(), m);
            }
            for m in p.d.values() {
                assert_eq!(&Round2Direct::decode(&m.encode()).unwrap(), m);
            }
        }
        Hook::R3(p) => {
            for m in p.b.values() {
                assert_eq!(&Round3Broadcast::decode(&m.encode()).unwrap(), m);
            }
        }
    });
    for r in results.into_values() {
        for p in r.unwrap() {
            let enc = p.encode();
            assert_eq!(Presignature::decode(&enc).unwrap().encode(), enc);
            let pe = p.public().encode();
            assert_eq!(PresignaturePublic::decode(&pe).unwrap(), *p.public());
        }
    }
    for k in &keys {
        assert_eq!(KeyShare::decode(&k.encode()).unwrap().encode(), k.encode());
        assert!(format!("{k:?}").contains("<redacted>"));
    }
    let params = PresignParams {
        session: SessionId([5; 32]),
        parties: [id(1), id(3)].into_iter().collect(),
        batch: 9,
    };
    assert_eq!(PresignParams::decode(&params.encode()).unwrap(), params);
    let req = SignRequest {
        session: SessionId([1; 32]),
        presignature: ecdsa::PresignatureId {
            session: SessionId([2; 32]),
            index: 3,
        },
        digest: vec![7; 32],
    };
    assert_eq!(SignRequest::decode(&req.encode()).unwrap(), req);
}

// ---- Dealer and key import ----

#[test]
fn split_of_an_imported_sec1_or_pkcs8_key_signs_under_the_original_public_key() {
    use p256::pkcs8::EncodePrivateKey as _;
    let mut rng = rng(60);
    let sk = p256::SecretKey::from_bytes(&Scalar::from(123_456_789u64).to_bytes()).unwrap();
    let vk_orig = p256::ecdsa::VerifyingKey::from(&p256::ecdsa::SigningKey::from(&sk));
    let sec1 = sk.to_sec1_der().unwrap();
    let pkcs8 = sk.to_pkcs8_der().unwrap();
    for der in [sec1.as_slice(), pkcs8.as_bytes()] {
        let keys = ecdsa::split(der, 2, 3, &mut rng).unwrap();
        assert_eq!(keys[0].verifying_key().unwrap(), vk_orig);
        let mut presigs = presign_all(&keys, 1, &mut rng);
        let (_, req, out) = sign_with(&keys, &mut presigs, 0, &[id(2), id(3)], b"imported", |_, _| {});
        vk_orig
            .verify_prehash(&req.digest, &out.unwrap().signature)
            .unwrap();
    }
    assert!(matches!(
        ecdsa::split(b"not a key", 2, 3, &mut rng),
        Err(Error::InvalidKeyShare(_))
    ));
}

// ---- openssl ----

#[test]
fn openssl_verifies_a_threshold_signature() {
    use p256::pkcs8::EncodePublicKey as _;
    let mut rng = rng(70);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let mut presigs = presign_all(&keys, 1, &mut rng);
    let msg = b"threshold ECDSA checked by openssl\n";
    let (_, _, out) = sign_with(&keys, &mut presigs, 0, &[id(2), id(4), id(5)], msg, |_, _| {});
    let dir = std::env::temp_dir().join(format!("tcrypto-ecdsa-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = keys[0]
        .verifying_key()
        .unwrap()
        .to_public_key_pem(Default::default())
        .unwrap();
    std::fs::write(dir.join("public.pem"), pem).unwrap();
    std::fs::write(dir.join("signature.der"), out.unwrap().to_der()).unwrap();
    std::fs::write(dir.join("msg"), msg).unwrap();
    let run = |sig: &str| {
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(dir.join("public.pem"))
            .arg("-signature")
            .arg(dir.join(sig))
            .arg(dir.join("msg"))
            .output()
            .expect("the openssl CLI must be installed (CI installs it)")
    };
    let ok = run("signature.der");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Verified OK"));
    // A flipped message byte must fail.
    std::fs::write(dir.join("msg"), b"threshold ECDSA checked by openssl!").unwrap();
    assert!(!run("signature.der").status.success());
    std::fs::remove_dir_all(&dir).ok();
}

// ---- Property tests ----

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn any_quorum_of_any_presigning_set_signs_any_message(
            (k, n) in prop::sample::select(vec![(2u16, 3u16), (2, 4), (3, 5), (3, 6), (4, 7)]),
            seed in any::<u64>(),
            msg in prop::collection::vec(any::<u8>(), 0..200),
            extra in 0usize..3,
        ) {
            let mut rng = rng(seed);
            let keys = ecdsa::deal(k, n, &mut rng).unwrap();
            let t = usize::from(k) - 1;
            // A random presigning set of 2t + 1 + extra members, and a random quorum of it.
            let mut ids: Vec<u16> = (1..=n).collect();
            ids.sort_by_key(|j| (u64::from(*j) * 0x9e37_79b9).wrapping_mul(seed | 1));
            let p_size = (2 * t + 1 + extra).min(usize::from(n));
            let p_ids: Vec<u16> = ids[..p_size].to_vec();
            let refs: Vec<&KeyShare> = keys.iter().filter(|kk| p_ids.contains(&kk.id().get())).collect();
            let mut presigs: BTreeMap<_, _> = drive(&refs, 1, &mut rng, |_| {})
                .into_iter()
                .map(|(j, r)| (j, r.unwrap().into_iter().map(Some).collect::<Vec<_>>()))
                .collect();
            let q = usize::from(k) + (seed as usize % (p_size - usize::from(k) + 1));
            let signers: Vec<SignerId> = p_ids[p_size - q..].iter().map(|j| id(*j)).collect();
            let mut signers = signers;
            signers.sort();
            let (_, req, out) = sign_with(&keys, &mut presigs, 0, &signers, &msg, |_, _| {});
            let out = out.unwrap();
            prop_assert!(out.culprits.is_empty());
            prop_assert!(keys[0].verifying_key().unwrap().verify_prehash(&req.digest, &out.signature).is_ok());
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), tag in 0x20u8..0x2c) {
            let mut b = bytes;
            if b.len() >= 2 { b[0] = 1; b[1] = tag; }
            let _ = KeyShare::decode(&b);
            let _ = Round1Broadcast::decode(&b);
            let _ = Round1Direct::decode(&b);
            let _ = Round2Broadcast::decode(&b);
            let _ = Round2Direct::decode(&b);
            let _ = Round3Broadcast::decode(&b);
            let _ = BlameReveal::decode(&b);
            let _ = Presignature::decode(&b);
            let _ = PresignaturePublic::decode(&b);
            let _ = PresignParams::decode(&b);
            let _ = SignRequest::decode(&b);
            let _ = SignatureShare::decode(&b);
        }
    }
}
