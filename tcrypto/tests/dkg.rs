//! Distributed key generation: honest runs on both curves, the result check, and misbehaviour in every round.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    clippy::collapsible_if,
    clippy::assign_op_pattern
)]

#[path = "common/dkg_net.rs"]
mod net;

use std::collections::{BTreeMap, BTreeSet};

use net::{Hooks, Outcome, Resolution, honest, id, ids, run, run_resolving, seeded_rng};
use proptest::prelude::*;
use tcrypto::SignerId;
use tcrypto::dkg::{
    self, Curve, Ed25519, Error, Fault, KeyShare, Message, P256, PublicKeySet, resolve, round2, round3,
};

/// Every party that finished holds the same public key set, and its share matches its public share.
fn assert_agreement<C: Curve>(shares: &[KeyShare<C>]) {
    let first = shares[0].public();
    for s in shares {
        assert!(s.public() == first, "parties disagree on the public result");
        assert!(C::mul_base(s.secret()) == first.public_shares()[&s.id()]);
    }
}

/// Every honest party failed, and the complaints raised by honest parties blame exactly `culprits` (a cheater may
/// add false complaints of its own; they are recorded with their accuser).
fn assert_blamed<C: Curve>(outcome: &Outcome<C>, honest: &[u16], culprits: &[u16]) {
    let want: BTreeSet<SignerId> = culprits.iter().map(|&i| id(i)).collect();
    let honest_ids: BTreeSet<SignerId> = honest.iter().map(|&i| id(i)).collect();
    for &h in honest {
        match &outcome[&id(h)] {
            Ok(_) => panic!("party {h} accepted a DKG with a cheater"),
            Err(Error::Complaints { culprits, complaints }) => {
                let by_honest: BTreeSet<SignerId> = complaints
                    .iter()
                    .filter(|c| honest_ids.contains(&c.accuser))
                    .map(|c| c.accused)
                    .collect();
                assert_eq!(
                    by_honest, want,
                    "party {h}: honest parties blamed the wrong parties"
                );
                assert!(want.is_subset(culprits), "party {h} does not name every culprit");
            }
            Err(e) => {
                let got: BTreeSet<SignerId> = e.culprits().into_iter().collect();
                assert_eq!(got, want, "party {h} blamed the wrong parties: {e}");
            }
        }
    }
}

fn complaints_fault<C: Curve>(outcome: &Outcome<C>, party: u16) -> Vec<Fault> {
    match &outcome[&id(party)] {
        Err(Error::Complaints { complaints, .. }) => complaints.iter().map(|c| c.fault).collect(),
        other => panic!("expected complaints, got {other:?}"),
    }
}

#[cfg(feature = "dealer")]
fn reconstruct<C: Curve>(shares: Vec<KeyShare<C>>) -> C::Scalar {
    *dkg::dealer::reconstruct(&shares).unwrap()
}

#[test]
fn p256_dkg_3_of_5_gives_every_party_the_same_key() {
    let mut rng = seeded_rng("p256_dkg_3_of_5");
    let shares = honest::<P256>(3, 5, &mut rng);
    assert_eq!(shares.len(), 5);
    assert_agreement(&shares);
    assert_eq!(shares[0].public().threshold(), 3);
    assert_eq!(shares[0].public().parties(), 5);
}

#[test]
fn ed25519_dkg_3_of_5_gives_every_party_the_same_key() {
    let mut rng = seeded_rng("ed25519_dkg_3_of_5");
    let shares = honest::<Ed25519>(3, 5, &mut rng);
    assert_agreement(&shares);
}

#[cfg(feature = "dealer")]
#[test]
fn p256_dkg_key_signs_and_p256_verifies() {
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    let mut rng = seeded_rng("p256_dkg_key_signs");
    let shares = honest::<P256>(2, 3, &mut rng);
    let public = shares[0].public().public_key_bytes();
    // Any two shares reconstruct the same key (test only: reconstruction is the dealer feature's business).
    let mut it = shares.into_iter();
    let (a, b, c) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let pub_a = a.public().clone();
    let x_ab = reconstruct(vec![a, b]);
    let enc = dkg::KeyShare::<P256>::decode(&c.encode()).unwrap();
    let x_c_only = dkg::dealer::reconstruct(&[enc]);
    assert!(x_c_only.is_err(), "one share must not reconstruct a 2-of-3 key");
    let sk = p256::ecdsa::SigningKey::from_bytes(&x_ab.to_bytes()).unwrap();
    assert_eq!(sk.verifying_key().to_sec1_point(true).as_bytes(), &public[..]);
    let sig: p256::ecdsa::Signature = sk.sign(b"dkg result");
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
    vk.verify(b"dkg result", &sig).unwrap();
    assert!(P256::mul_base(&x_ab) == pub_a.public_key());
}

#[test]
fn one_of_one_and_n_of_n_work() {
    let mut rng = seeded_rng("edge_thresholds");
    assert_agreement(&honest::<Ed25519>(1, 1, &mut rng));
    assert_agreement(&honest::<Ed25519>(4, 4, &mut rng));
    assert_agreement(&honest::<P256>(1, 3, &mut rng));
}

#[test]
fn parameters_refuse_zero_threshold_threshold_above_n_and_duplicates() {
    let s = tcrypto::SessionId([1; 32]);
    assert!(dkg::Parameters::new(s, 0, ids(3)).is_err());
    assert!(dkg::Parameters::new(s, 4, ids(3)).is_err());
    assert!(dkg::Parameters::new(s, 1, Vec::new()).is_err());
    assert!(dkg::Parameters::new(s, 2, vec![id(1), id(1), id(2)]).is_err());
    assert!(dkg::Parameters::new(s, 2, ids(3)).is_ok());
}

// ----- misbehaviour, round by round -----

#[test]
fn round1_equivocating_broadcast_names_the_equivocator() {
    let mut rng = seeded_rng("round1_equivocation");
    let mut hooks = Hooks::<Ed25519>::default();
    // Party 2 sends party 4 a different hash commitment than everybody else.
    hooks.round1 = Box::new(|from, to, b| {
        if from == id(2) && to == id(4) {
            b.commitment[0] ^= 1;
        }
    });
    let out = run(3, &ids(5), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 3, 4, 5], &[2]);
    assert!(complaints_fault(&out, 1).contains(&Fault::Equivocation));
}

#[test]
fn round2_echo_misreporting_our_broadcast_names_the_liar() {
    let mut rng = seeded_rng("round2_echo_lie");
    let mut hooks = Hooks::<P256>::default();
    // Party 3 tells party 1 that party 1's own commitment was something else.
    hooks.round2 = Box::new(|from, to, b| {
        if from == id(3) && to == id(1) {
            if let Some(h) = b.echo.get_mut(&id(1)) {
                h[5] ^= 0x40;
            }
        }
    });
    let out = run(2, &ids(4), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 2, 4], &[3]);
}

#[test]
fn round2_wrong_commitment_is_detected_and_named() {
    let mut rng = seeded_rng("round2_wrong_commitment");
    let mut hooks = Hooks::<P256>::default();
    // Party 3 reveals Feldman commitments that differ from what it committed to in round 1.
    hooks.round2 = Box::new(|from, _to, b| {
        if from == id(3) {
            b.commitments[1] = b.commitments[1] + P256::generator();
        }
    });
    let out = run(3, &ids(5), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 2, 4, 5], &[3]);
    assert!(complaints_fault(&out, 2).contains(&Fault::WrongCommitment));
}

#[test]
fn round2_equivocating_reveal_is_caught_by_the_hash_commitment() {
    let mut rng = seeded_rng("round2_equivocating_reveal");
    let mut hooks = Hooks::<Ed25519>::default();
    // Party 5 reveals different commitments to party 2 only.
    hooks.round2 = Box::new(|from, to, b| {
        if from == id(5) && to == id(2) {
            b.commitments[0] = b.commitments[0] + Ed25519::generator();
        }
    });
    let out = run(3, &ids(5), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 2, 3, 4], &[5]);
}

#[test]
fn round2_wrong_share_is_detected_and_the_dealer_named() {
    let mut rng = seeded_rng("round2_wrong_share");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.share = Box::new(|from, to, s| {
        if from == id(4) && to == id(1) {
            *s.value = *s.value + Ed25519::scalar_from_u16(1);
        }
    });
    let out = run(3, &ids(5), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 2, 3, 5], &[4]);
    assert!(complaints_fault(&out, 1).contains(&Fault::InvalidShare));
}

#[test]
fn round2_wrong_share_on_p256_is_detected_and_the_dealer_named() {
    let mut rng = seeded_rng("round2_wrong_share_p256");
    let mut hooks = Hooks::<P256>::default();
    hooks.share = Box::new(|from, to, s| {
        if from == id(2) && to == id(3) {
            *s.value = P256::scalar_from_u16(7);
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 3], &[2]);
}

#[test]
fn round2_identity_point_in_commitments_is_refused_and_the_sender_named() {
    let mut rng = seeded_rng("round2_identity_point");
    let mut hooks = Hooks::<P256>::default();
    // Party 2's first commitment replaced by the encoding of the point at infinity (33 zero bytes) for party 1.
    hooks.round2_bytes = Box::new(|from, to, bytes| {
        if from == id(2) && to == id(1) {
            // header(2) + curve(1) + echo count(4) + 3 * (2 + 32) + commitment count(4)
            let at = 2 + 1 + 4 + 3 * 34 + 4;
            bytes[at..at + 33].fill(0);
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    match &out[&id(1)] {
        Err(Error::Malformed { culprit, .. }) => assert_eq!(*culprit, id(2)),
        other => panic!("expected a malformed-message error naming 2, got {other:?}"),
    }
}

#[test]
fn round2_non_canonical_share_scalar_is_refused_and_the_sender_named() {
    let mut rng = seeded_rng("round2_noncanonical_scalar");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.share_bytes = Box::new(|from, to, bytes| {
        if from == id(3) && to == id(2) {
            // The group order l itself (little-endian): not a canonical scalar.
            let l = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").unwrap();
            bytes[3..35].copy_from_slice(&l);
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    match &out[&id(2)] {
        Err(Error::Malformed { culprit, .. }) => assert_eq!(*culprit, id(3)),
        other => panic!("expected a malformed-message error naming 3, got {other:?}"),
    }
}

#[test]
fn round2_non_canonical_point_encoding_is_refused_and_the_sender_named() {
    let mut rng = seeded_rng("round2_noncanonical_point");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.round2_bytes = Box::new(|from, to, bytes| {
        if from == id(1) && to == id(3) {
            // Replace the proof's R by y = p + 1 (a non-canonical encoding of y = 1).
            let at = bytes.len() - 64;
            let mut y = [0xffu8; 32];
            y[0] = 0xee;
            y[31] = 0x7f;
            bytes[at..at + 32].copy_from_slice(&y);
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    match &out[&id(3)] {
        Err(Error::Malformed { culprit, .. }) => assert_eq!(*culprit, id(1)),
        other => panic!("expected a malformed-message error naming 1, got {other:?}"),
    }
}

#[test]
fn round2_commitment_vector_of_wrong_length_is_malformed() {
    let mut rng = seeded_rng("round2_wrong_length");
    let mut hooks = Hooks::<P256>::default();
    hooks.round2 = Box::new(|from, _to, b| {
        if from == id(1) {
            b.commitments.pop();
        }
    });
    let out = run(3, &ids(4), &mut rng, &mut hooks);
    assert_blamed(&out, &[2, 3, 4], &[1]);
    assert!(complaints_fault(&out, 2).contains(&Fault::Malformed));
}

#[test]
fn round3_equivocating_confirmation_names_the_equivocator() {
    let mut rng = seeded_rng("round3_equivocation");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.round3 = Box::new(|from, to, b| {
        if from == id(2) && to == id(3) {
            b.confirmation[0] ^= 1;
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    assert_blamed(&out, &[3], &[2]);
    assert!(complaints_fault(&out, 3).contains(&Fault::InconsistentTranscript));
}

#[test]
fn round3_false_complaint_names_both_sides_and_blocks_the_key() {
    let mut rng = seeded_rng("round3_false_complaint");
    let mut hooks = Hooks::<P256>::default();
    hooks.round3 = Box::new(|from, _to, b| {
        if from == id(1) {
            b.complaints.insert(id(2), Fault::InvalidShare);
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    // The accusation is recorded with its accuser, so a repeated false accuser is visible.
    match &out[&id(3)] {
        Err(Error::Complaints { complaints, .. }) => {
            assert!(
                complaints
                    .iter()
                    .any(|c| c.accuser == id(1) && c.accused == id(2))
            );
        }
        other => panic!("expected complaints, got {other:?}"),
    }
}

#[test]
fn round3_complaint_against_a_non_participant_blames_the_accuser() {
    let mut rng = seeded_rng("round3_bogus_complaint");
    let mut hooks = Hooks::<P256>::default();
    hooks.round3 = Box::new(|from, _to, b| {
        if from == id(3) {
            b.complaints.insert(id(9), Fault::InvalidShare);
        }
    });
    let out = run(2, &ids(3), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 2], &[3]);
}

#[test]
fn rejects_message_from_unknown_sender() {
    let mut rng = seeded_rng("unknown_sender");
    let s = tcrypto::SessionId::random(&mut rng);
    let params = dkg::Parameters::new(s, 2, ids(3)).unwrap();
    let (st, _) = dkg::round1::commit::<P256>(params.clone(), id(1), &mut rng).unwrap();
    let (_, b2) = dkg::round1::commit::<P256>(params.clone(), id(2), &mut rng).unwrap();
    let (_, b3) = dkg::round1::commit::<P256>(params.clone(), id(3), &mut rng).unwrap();
    let inbox = BTreeMap::from([(id(2), b2.clone()), (id(3), b3), (id(7), b2)]);
    let err = dkg::round2::reveal(st, &inbox).unwrap_err();
    assert_eq!(err, Error::UnexpectedSender { culprit: id(7) });
}

#[test]
fn rejects_message_from_own_id_and_reports_missing_senders() {
    let mut rng = seeded_rng("own_id");
    let s = tcrypto::SessionId::random(&mut rng);
    let params = dkg::Parameters::new(s, 2, ids(3)).unwrap();
    let (st, b1) = dkg::round1::commit::<Ed25519>(params.clone(), id(1), &mut rng).unwrap();
    let err = dkg::round2::reveal(st, &BTreeMap::from([(id(1), b1)])).unwrap_err();
    assert_eq!(err, Error::UnexpectedSender { culprit: id(1) });
    let (st, _) = dkg::round1::commit::<Ed25519>(params, id(1), &mut rng).unwrap();
    let err = dkg::round2::reveal(st, &BTreeMap::new()).unwrap_err();
    assert_eq!(err.culprits(), vec![id(2), id(3)]);
}

#[test]
fn rejects_duplicate_message_from_the_same_sender() {
    let err = dkg::collect([(id(2), 1u8), (id(3), 2), (id(2), 3)]).unwrap_err();
    assert_eq!(err, Error::DuplicateSender { culprit: id(2) });
}

#[test]
fn echo_with_duplicate_ids_does_not_decode() {
    let mut rng = seeded_rng("echo_dup");
    let shares = honest::<P256>(2, 2, &mut rng);
    drop(shares);
    let b = round2::Broadcast::<P256> {
        echo: BTreeMap::from([(id(1), [1; 32]), (id(2), [2; 32])]),
        commitments: vec![P256::generator(), P256::generator()],
        proof: dkg::Proof {
            r: P256::generator(),
            mu: P256::scalar_from_u16(3),
        },
    };
    let mut bytes = b.encode();
    assert!(round2::Broadcast::<P256>::decode(&bytes).is_ok());
    // Rewrite the second echo id (offset 2 + 1 + 4 + 34) to 1.
    bytes[2 + 1 + 4 + 34 + 1] = 1;
    assert!(round2::Broadcast::<P256>::decode(&bytes).is_err());
}

#[test]
fn messages_for_another_curve_are_refused() {
    let b = round3::Broadcast::<P256>::new(BTreeMap::new(), [0; 32]);
    assert!(round3::Broadcast::<Ed25519>::decode(&b.encode()).is_err());
    assert!(round3::Broadcast::<P256>::decode(&b.encode()).is_ok());
}

// ----- complaint resolution -----

/// Every honest party finished with the same key from the qualified dealers `qualified`, and named exactly
/// `culprits` (with their faults); `k` shares of the honest parties reconstruct the key.
fn assert_resolved<C: Curve>(
    outcome: &Resolution<C>,
    honest: &[u16],
    qualified: &[u16],
    culprits: &[(u16, Fault)],
    k: usize,
) {
    let want_q: BTreeSet<SignerId> = qualified.iter().map(|&i| id(i)).collect();
    let want_c: BTreeMap<SignerId, Fault> = culprits.iter().map(|&(i, f)| (id(i), f)).collect();
    let mut shares = Vec::new();
    for &h in honest {
        match &outcome[&id(h)] {
            Ok(r) => {
                assert_eq!(r.qualified, want_q, "party {h}: qualified set");
                assert_eq!(r.culprits, want_c, "party {h}: culprits");
                shares.push(dkg::KeyShare::<C>::decode(&r.share.encode()).unwrap());
            }
            Err(e) => panic!("party {h} failed: {e}"),
        }
    }
    assert_agreement(&shares);
    #[cfg(feature = "dealer")]
    assert_key_reconstructs(shares, k);
    #[cfg(not(feature = "dealer"))]
    let _ = (shares, k);
}

/// The group key is the sum of the qualified dealers' constant-term commitments: checked by reconstructing the
/// secret from `k` honest shares.
#[cfg(feature = "dealer")]
fn assert_key_reconstructs<C: Curve>(shares: Vec<KeyShare<C>>, k: usize) {
    let public = shares[0].public().public_key();
    let x = reconstruct(shares.into_iter().take(k).collect());
    assert!(
        C::mul_base(&x) == public,
        "shares do not reconstruct the group key"
    );
}

#[test]
fn resolution_round_without_complaints_gives_every_party_the_same_key() {
    let mut rng = seeded_rng("resolve_honest");
    let out = run_resolving::<P256>(3, &ids(5), &mut rng, &mut Hooks::default());
    assert_resolved(&out, &[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5], &[], 3);
}

#[test]
fn true_share_complaint_disqualifies_the_dealer_and_the_key_forms_from_the_others() {
    let mut rng = seeded_rng("resolve_true_complaint");
    let mut hooks = Hooks::<Ed25519>::default();
    // Dealer 4 sends party 1 a wrong share and stands by it when answering the complaint.
    hooks.share = Box::new(|from, to, s| {
        if from == id(4) && to == id(1) {
            *s.value = *s.value + Ed25519::scalar_from_u16(1);
        }
    });
    hooks.resolve = Box::new(|from, _to, b| {
        if from == id(4) {
            let v = b.answers.get_mut(&id(1)).unwrap();
            *v = *v + Ed25519::scalar_from_u16(1);
        }
        true
    });
    let out = run_resolving(3, &ids(5), &mut rng, &mut hooks);
    // The key leaves dealer 4's polynomial out, and the honest shares still reconstruct it.
    assert_resolved(&out, &[1, 2, 3, 5], &[1, 2, 3, 5], &[(4, Fault::InvalidShare)], 3);
}

/// Party 1 accuses dealer 2, whose share to it was correct.
fn false_accuser() -> Hooks<P256> {
    let mut hooks = Hooks::<P256>::default();
    hooks.round3 = Box::new(|from, _to, b| {
        if from == id(1) {
            b.complaints.insert(id(2), Fault::InvalidShare);
        }
    });
    hooks
}

#[test]
fn false_share_complaint_names_the_accuser_and_the_key_still_forms() {
    let mut rng = seeded_rng("resolve_false_complaint");
    let out = run_resolving(2, &ids(3), &mut rng, &mut false_accuser());
    assert_resolved(&out, &[2, 3], &[1, 2, 3], &[(1, Fault::FalseComplaint)], 2);
    // Without resolution the same false complaint blocks the run (round 4 accepts no complaint at all).
    let blocked = run(2, &ids(3), &mut rng, &mut false_accuser());
    assert!(blocked[&id(3)].is_err());
}

#[test]
fn silent_accused_dealer_is_disqualified() {
    let mut rng = seeded_rng("resolve_silent_dealer");
    let mut hooks = Hooks::<P256>::default();
    hooks.share = Box::new(|from, to, s| {
        if from == id(3) && to == id(2) {
            *s.value = P256::scalar_from_u16(5);
        }
    });
    // Dealer 3 never answers.
    hooks.resolve = Box::new(|from, _to, _b| from != id(3));
    let out = run_resolving(3, &ids(5), &mut rng, &mut hooks);
    assert_resolved(&out, &[1, 2, 4, 5], &[1, 2, 4, 5], &[(3, Fault::NoAnswer)], 3);
}

#[test]
fn answer_with_an_unrequested_share_disqualifies_nobody_but_names_the_dealer() {
    let mut rng = seeded_rng("resolve_unrequested_answer");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.resolve = Box::new(|from, _to, b| {
        if from == id(2) {
            b.answers.insert(id(1), Ed25519::scalar_from_u16(9));
        }
        true
    });
    let out = run_resolving(2, &ids(3), &mut rng, &mut hooks);
    assert_resolved(&out, &[1, 3], &[1, 2, 3], &[(2, Fault::Malformed)], 2);
}

#[test]
fn too_few_qualified_dealers_abort_the_run() {
    let mut rng = seeded_rng("resolve_too_few_qualified");
    let mut hooks = Hooks::<P256>::default();
    // Dealers 1 and 2 each send party 3 a wrong share and stay silent: 2 qualified dealers for k = 3.
    hooks.share = Box::new(|from, to, s| {
        if (from == id(1) || from == id(2)) && to == id(3) {
            *s.value = P256::scalar_from_u16(1);
        }
    });
    hooks.resolve = Box::new(|from, _to, _b| from != id(1) && from != id(2));
    let out = run_resolving(3, &ids(4), &mut rng, &mut hooks);
    for h in [3, 4] {
        match &out[&id(h)] {
            Err(Error::Complaints { culprits, .. }) => {
                assert_eq!(culprits, &BTreeSet::from([id(1), id(2)]));
            }
            other => panic!("party {h}: expected an abort naming 1 and 2, got {other:?}"),
        }
    }
}

#[test]
fn broadcast_faults_are_not_resolved_and_abort_the_run() {
    let mut rng = seeded_rng("resolve_broadcast_fault");
    let mut hooks = Hooks::<P256>::default();
    hooks.round2 = Box::new(|from, _to, b| {
        if from == id(1) {
            b.commitments.pop();
        }
    });
    let out = run_resolving(3, &ids(4), &mut rng, &mut hooks);
    for h in [2, 3, 4] {
        let err = out[&id(h)].as_ref().unwrap_err();
        assert_eq!(err.culprits(), vec![id(1)], "party {h}");
    }
}

/// Dealer 4 sends party 1 a wrong share, then shows its (correct) answer to parties 1 and 2 only: to the others
/// it shows a wrong answer (`withhold == false`) or nothing (`withhold == true`). Without the echo, parties 1 and
/// 2 would keep dealer 4 and parties 3 and 5 would disqualify it: two different keys.
fn equivocating_dealer(withhold: bool) -> Hooks<P256> {
    let mut hooks = Hooks::<P256>::default();
    hooks.share = Box::new(|from, to, s| {
        if from == id(4) && to == id(1) {
            *s.value = *s.value + P256::scalar_from_u16(1);
        }
    });
    hooks.resolve = Box::new(move |from, to, b| {
        if from != id(4) || to == id(1) || to == id(2) {
            return true;
        }
        let v = b.answers.get_mut(&id(1)).unwrap();
        *v = *v + P256::scalar_from_u16(1);
        !withhold
    });
    hooks
}

/// Every honest party aborts, naming exactly the equivocating dealer 4.
fn assert_equivocator_named(out: &Resolution<P256>) {
    for h in [1, 2, 3, 5] {
        match &out[&id(h)] {
            Err(Error::Complaints { culprits, complaints }) => {
                assert_eq!(culprits, &BTreeSet::from([id(4)]), "party {h}");
                assert!(
                    complaints.iter().all(|c| c.fault == Fault::Equivocation),
                    "party {h}: {complaints:?}"
                );
            }
            other => panic!("party {h}: expected an abort naming dealer 4, got {other:?}"),
        }
    }
}

#[test]
fn dealer_showing_different_answers_to_different_parties_is_named_as_equivocator() {
    let mut rng = seeded_rng("resolve_equivocating_answer");
    let out = run_resolving(3, &ids(5), &mut rng, &mut equivocating_dealer(false));
    assert_equivocator_named(&out);
}

#[test]
fn dealer_answering_only_some_parties_is_named_as_equivocator() {
    let mut rng = seeded_rng("resolve_partial_answer");
    let out = run_resolving(3, &ids(5), &mut rng, &mut equivocating_dealer(true));
    assert_equivocator_named(&out);
}

#[test]
fn resolution_echo_misreporting_our_broadcast_names_the_liar() {
    let mut rng = seeded_rng("resolve_echo_lie");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.confirm = Box::new(|from, to, c| {
        if from == id(2) && to == id(1) {
            c.echo.get_mut(&id(1)).unwrap()[0] ^= 1;
        }
    });
    let out = run_resolving(2, &ids(3), &mut rng, &mut hooks);
    assert_eq!(out[&id(1)].as_ref().unwrap_err().culprits(), vec![id(2)]);
    // The others saw consistent echoes and agree on the key.
    assert_resolved(&out, &[2, 3], &[1, 2, 3], &[], 2);
}

#[test]
fn resolution_echo_of_the_wrong_parties_is_malformed() {
    let mut rng = seeded_rng("resolve_echo_malformed");
    let mut hooks = Hooks::<P256>::default();
    hooks.confirm = Box::new(|from, to, c| {
        if from == id(3) && to == id(1) {
            c.echo.insert(id(3), [0; 32]);
        }
    });
    let out = run_resolving(2, &ids(3), &mut rng, &mut hooks);
    match &out[&id(1)] {
        Err(Error::Complaints { complaints, .. }) => {
            assert_eq!(complaints.len(), 1);
            assert_eq!(
                (complaints[0].accused, complaints[0].fault),
                (id(3), Fault::Malformed)
            );
        }
        other => panic!("expected party 3 named, got {other:?}"),
    }
}

#[test]
fn resolution_confirmation_round_trips_and_refuses_duplicate_ids_and_trailing_bytes() {
    let c = resolve::Confirmation::<P256>::new(BTreeMap::from([(id(2), [7; 32]), (id(5), [9; 32])]));
    let bytes = c.encode();
    assert!(resolve::Confirmation::<P256>::decode(&bytes).unwrap() == c);
    assert!(resolve::Confirmation::<Ed25519>::decode(&bytes).is_err());
    assert!(resolve::Broadcast::<P256>::decode(&bytes).is_err());
    // header(2) + curve(1) + count(4) + (id 2 + 32) + id: rewrite the second id to 2.
    let mut dup = bytes.clone();
    dup[2 + 1 + 4 + 34 + 1] = 2;
    assert!(resolve::Confirmation::<P256>::decode(&dup).is_err());
    let mut trailing = bytes;
    trailing.push(0);
    assert!(resolve::Confirmation::<P256>::decode(&trailing).is_err());
}

#[test]
fn resolution_broadcast_round_trips_and_refuses_duplicate_ids_and_non_canonical_scalars() {
    let b = resolve::Broadcast::<P256> {
        answers: BTreeMap::from([
            (id(2), P256::scalar_from_u16(7)),
            (id(5), P256::scalar_from_u16(9)),
        ]),
    };
    let bytes = b.encode();
    assert!(resolve::Broadcast::<P256>::decode(&bytes).unwrap() == b);
    assert!(resolve::Broadcast::<Ed25519>::decode(&bytes).is_err());
    // header(2) + curve(1) + count(4) + (id 2 + 32) + id: rewrite the second id to 2.
    let mut dup = bytes.clone();
    dup[2 + 1 + 4 + 34 + 1] = 2;
    assert!(resolve::Broadcast::<P256>::decode(&dup).is_err());
    let mut big = bytes.clone();
    big[2 + 1 + 4 + 2..2 + 1 + 4 + 34].fill(0xff);
    assert!(resolve::Broadcast::<P256>::decode(&big).is_err());
    let mut trailing = bytes;
    trailing.push(0);
    assert!(resolve::Broadcast::<P256>::decode(&trailing).is_err());
    let empty = resolve::Broadcast::<Ed25519> {
        answers: BTreeMap::new(),
    };
    assert!(resolve::Broadcast::<Ed25519>::decode(&empty.encode()).unwrap() == empty);
}

// ----- encodings -----

#[test]
fn key_share_and_public_key_set_round_trip_and_secrets_are_redacted() {
    let mut rng = seeded_rng("key_share_round_trip");
    for share in honest::<Ed25519>(2, 3, &mut rng) {
        let bytes = share.encode();
        let back = KeyShare::<Ed25519>::decode(&bytes).unwrap();
        assert_eq!(back.id(), share.id());
        assert!(back.public() == share.public());
        let pk = PublicKeySet::<Ed25519>::decode(&share.public().encode()).unwrap();
        assert!(&pk == share.public());
        let dbg = format!("{share:?}");
        assert!(dbg.contains("<redacted>"));
        let secret_hex = hex::encode(Ed25519::scalar_to_bytes(share.secret()));
        assert!(!dbg.contains(&secret_hex));
        // A share whose secret does not match its public share is refused.
        let mut bad = bytes.to_vec();
        let last = bad.len() - 32;
        bad[last] ^= 1;
        assert!(KeyShare::<Ed25519>::decode(&bad).is_err());
        // Trailing bytes are refused.
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(KeyShare::<Ed25519>::decode(&long).is_err());
    }
}

#[test]
fn key_share_encoding_is_pinned() {
    // Header, tag, curve code, id, threshold, ids — the layout other components store.
    let mut rng = seeded_rng("pinned");
    let share = &honest::<P256>(1, 1, &mut rng)[0];
    let bytes = share.encode();
    assert_eq!(&bytes[..12], &[1, 0x34, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0]);
    assert_eq!(bytes.len(), 2 + 1 + 2 + 2 + 4 + 2 + 33 + 32);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn dkg_agrees_for_any_threshold_and_party_count(n in 1u16..6, k_off in 0u16..6, first in 1u16..500) {
        let k = 1 + k_off % n;
        let mut rng = seeded_rng("prop_dkg");
        let parties: Vec<SignerId> = (0..n).map(|i| id(first + 3 * i)).collect();
        let out = run::<Ed25519>(k, &parties, &mut rng, &mut Hooks::default());
        let shares: Vec<_> = out.into_values().map(|r| r.unwrap()).collect();
        assert_agreement(&shares);
        let out = run::<P256>(k, &parties, &mut rng, &mut Hooks::default());
        let shares: Vec<_> = out.into_values().map(|r| r.unwrap()).collect();
        assert_agreement(&shares);
    }

    #[test]
    fn dkg_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = dkg::round1::Broadcast::<P256>::decode(&bytes);
        let _ = round2::Broadcast::<P256>::decode(&bytes);
        let _ = round2::Broadcast::<Ed25519>::decode(&bytes);
        let _ = round2::Share::<P256>::decode(&bytes);
        let _ = round2::Share::<Ed25519>::decode(&bytes);
        let _ = round3::Broadcast::<Ed25519>::decode(&bytes);
        let _ = KeyShare::<P256>::decode(&bytes);
        let _ = KeyShare::<Ed25519>::decode(&bytes);
        let _ = PublicKeySet::<P256>::decode(&bytes);
        let _ = PublicKeySet::<Ed25519>::decode(&bytes);
    }
}

#[cfg(feature = "dealer")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 8, .. ProptestConfig::default() })]

    #[test]
    fn any_k_shares_reconstruct_the_key_and_fewer_do_not(n in 2u16..6, k_off in 0u16..5, pick in any::<u64>()) {
        let k = 1 + k_off % n;
        let mut rng = seeded_rng("prop_subsets");
        let shares = honest::<P256>(k, n, &mut rng);
        let public = shares[0].public().clone();
        // A pseudo-random subset of size k.
        let mut chosen: Vec<KeyShare<P256>> = Vec::new();
        let mut pool: Vec<_> = shares.into_iter().collect();
        let mut p = pick;
        while chosen.len() < usize::from(k) {
            let i = (p % pool.len() as u64) as usize;
            p = p.rotate_left(7) ^ 0x9e37_79b9;
            chosen.push(pool.remove(i));
        }
        let x = reconstruct(chosen);
        prop_assert!(P256::mul_base(&x) == public.public_key());
    }
}

#[cfg(feature = "dealer")]
#[test]
fn dealer_and_split_produce_dkg_shaped_shares() {
    let mut rng = seeded_rng("dealer");
    let (public, shares) = dkg::dealer::deal::<Ed25519>(3, ids(5), &mut rng).unwrap();
    assert_eq!(shares.len(), 5);
    assert_agreement(&shares);
    let secret = Ed25519::scalar_from_u16(12345);
    let (public2, shares2) = dkg::dealer::split::<Ed25519>(&secret, 2, ids(3), &mut rng).unwrap();
    assert!(public2.public_key() == Ed25519::mul_base(&secret));
    assert!(reconstruct(shares2) == secret);
    assert!(public.public_key() != public2.public_key());
    assert!(dkg::dealer::split::<P256>(&P256::zero(), 2, ids(3), &mut rng).is_err());
}

#[test]
fn p256_dkg_key_signs_with_threshold_ecdsa_and_p256_verifies() {
    use p256::ecdsa::signature::Verifier as _;
    use sha2::Digest as _;
    use tcrypto::ecdsa;
    let mut rng = seeded_rng("p256_dkg_ecdsa");
    // 3-of-5: n >= 2k - 1 as the honest-majority ECDSA requires.
    let params = dkg::Parameters::new(tcrypto::SessionId::random(&mut rng), 3, ids(5)).unwrap();
    let shares = dkg::run_in_process::<P256>(&params, &mut rng).unwrap();
    let public = shares[0].public().public_key_bytes();
    let keys: Vec<ecdsa::KeyShare> = shares.iter().map(|s| s.to_ecdsa().unwrap()).collect();
    let refs: Vec<&ecdsa::KeyShare> = keys.iter().collect();
    let mut presigs =
        ecdsa::presign::run_in_process(&refs, tcrypto::SessionId::random(&mut rng), 1, &mut rng).unwrap();
    let msg = b"a P-256 key nobody ever held";
    let signers = [id(1), id(3), id(5)];
    let first = presigs[&signers[0]].first().unwrap();
    let req = ecdsa::SignRequest {
        session: tcrypto::SessionId::random(&mut rng),
        presignature: first.public().id,
        digest: sha2::Sha256::digest(msg).to_vec(),
    };
    let presig_public = first.public().clone();
    let mut sig_shares = BTreeMap::new();
    for s in signers {
        let key = keys.iter().find(|k| k.id() == s).unwrap();
        let presig = presigs.get_mut(&s).unwrap().pop().unwrap();
        let mut spent = BTreeSet::new();
        sig_shares.insert(s, ecdsa::sign_share(key, presig, &req, &mut spent).unwrap());
    }
    let vk = keys[0].verifying_key().unwrap();
    let combined = ecdsa::combine(&presig_public, &vk, &req, &sig_shares).unwrap();
    let independent = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&combined.to_der()).unwrap();
    independent
        .verify(msg, &sig)
        .expect("p256 rejected a signature made with a DKG key");
}

#[test]
fn p256_dkg_key_with_too_few_parties_for_presigning_converts_but_cannot_presign() {
    let mut rng = seeded_rng("p256_dkg_ecdsa_params");
    // 3-of-4 violates n >= 2k - 1: the key converts (it signs with the k-online protocol, tests/dkls.rs), but
    // honest-majority presigning refuses it.
    let shares = honest::<P256>(3, 4, &mut rng);
    let key = shares[0].to_ecdsa().unwrap();
    let params = tcrypto::ecdsa::presign::PresignParams {
        session: tcrypto::SessionId::random(&mut rng),
        parties: (1..=4).map(id).collect(),
        batch: 1,
    };
    assert!(matches!(
        tcrypto::ecdsa::presign::round1(&key, params, &mut rng),
        Err(tcrypto::ecdsa::Error::UnsupportedParameters(_))
    ));
}

#[test]
fn after_a_cheater_is_named_the_honest_parties_rerun_and_get_a_working_key() {
    let mut rng = seeded_rng("rerun_without_culprit");
    let mut hooks = Hooks::<Ed25519>::default();
    hooks.share = Box::new(|from, to, s| {
        if from == id(4) && to == id(2) {
            *s.value = Ed25519::scalar_from_u16(1);
        }
    });
    let out = run(3, &ids(5), &mut rng, &mut hooks);
    assert_blamed(&out, &[1, 2, 3, 5], &[4]);
    let culprits = out[&id(1)].as_ref().unwrap_err().culprits();
    let remaining: Vec<SignerId> = ids(5).into_iter().filter(|i| !culprits.contains(i)).collect();
    let out = run::<Ed25519>(3, &remaining, &mut rng, &mut Hooks::default());
    let shares: Vec<_> = out.into_values().map(|r| r.unwrap()).collect();
    assert_eq!(shares.len(), 4);
    assert_agreement(&shares);
    // The new key signs (FROST), checked by ed25519-dalek.
    let keys: Vec<tcrypto::ed25519::KeyShare> = shares
        .into_iter()
        .map(|s| tcrypto::ed25519::KeyShare::from_dkg(s).unwrap())
        .collect();
    let session = tcrypto::SessionId::random(&mut rng);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for k in &keys[1..] {
        let (n, c) = tcrypto::ed25519::round1::commit(k, session, &mut rng).unwrap();
        nonces.insert(k.id(), n);
        commitments.insert(k.id(), c);
    }
    let package = tcrypto::ed25519::SigningPackage::new(session, b"rerun".to_vec(), commitments).unwrap();
    let mut z = BTreeMap::new();
    for k in &keys[1..] {
        z.insert(
            k.id(),
            tcrypto::ed25519::round2::sign(k, nonces.remove(&k.id()).unwrap(), &package).unwrap(),
        );
    }
    let sig = tcrypto::ed25519::aggregate(keys[0].public(), &package, &z).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&keys[0].public().public_key_bytes()).unwrap();
    vk.verify_strict(b"rerun", &ed25519_dalek::Signature::from_bytes(&sig.to_bytes()))
        .unwrap();
}

// ----- fuzz seeds -----

#[path = "common/fuzz_seeds.rs"]
mod fuzz_seeds;

/// Decodes with either curve and re-encodes (the fuzz targets' round-trip property).
type RoundTrip = fn(&[u8]) -> Option<Vec<u8>>;

/// A fuzz target's name, its valid seeds, and its round trips.
type SeedSet = (&'static str, Vec<Vec<u8>>, [RoundTrip; 2]);

fn round_trip<M: Message>(b: &[u8]) -> Option<Vec<u8>> {
    M::decode(b).ok().map(|m| m.encode())
}

/// Valid encodings of the complaint-handling messages, for the fuzz targets' seed corpora, with the targets'
/// round trips.
fn complaint_seeds() -> [SeedSet; 3] {
    let answers = resolve::Broadcast::<P256> {
        answers: BTreeMap::from([
            (id(1), P256::scalar_from_u16(3)),
            (id(4), -P256::scalar_from_u16(1)),
        ]),
    };
    let one = resolve::Broadcast::<Ed25519> {
        answers: BTreeMap::from([(id(2), Ed25519::scalar_from_u16(11))]),
    };
    let none = resolve::Broadcast::<Ed25519> {
        answers: BTreeMap::new(),
    };
    let complaints = round3::Broadcast::<P256>::new(
        BTreeMap::from([
            (id(2), Fault::InvalidShare),
            (id(3), Fault::NoAnswer),
            (id(7), Fault::FalseComplaint),
        ]),
        [0; 32],
    );
    let confirmed = round3::Broadcast::<Ed25519>::new(BTreeMap::new(), [0x5a; 32]);
    let echo = resolve::Confirmation::<P256>::new(BTreeMap::from([(id(1), [0x11; 32]), (id(3), [0xa5; 32])]));
    let lone = resolve::Confirmation::<Ed25519>::new(BTreeMap::from([(id(2), [0; 32])]));
    [
        (
            "dkg_resolve_broadcast",
            vec![answers.encode(), one.encode(), none.encode()],
            [
                round_trip::<resolve::Broadcast<P256>>,
                round_trip::<resolve::Broadcast<Ed25519>>,
            ],
        ),
        (
            "dkg_round3_broadcast",
            vec![complaints.encode(), confirmed.encode()],
            [
                round_trip::<round3::Broadcast<P256>>,
                round_trip::<round3::Broadcast<Ed25519>>,
            ],
        ),
        (
            "dkg_resolve_confirmation",
            vec![echo.encode(), lone.encode()],
            [
                round_trip::<resolve::Confirmation<P256>>,
                round_trip::<resolve::Confirmation<Ed25519>>,
            ],
        ),
    ]
}

/// Regenerates the committed fuzz seeds under `fuzz/seeds/dkg_{resolve,round3}_broadcast` and
/// `fuzz/seeds/dkg_resolve_confirmation`:
/// `cargo test -p tcrypto --all-features --test dkg -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand to regenerate the fuzz seeds"]
fn write_fuzz_seeds() {
    for (target, seeds, _) in complaint_seeds() {
        fuzz_seeds::write_seeds(target, &seeds);
    }
}

/// The committed seeds are what [`write_fuzz_seeds`] writes, and they pass the fuzz targets' property (decode →
/// encode gives the input back; truncations do not decode) on stable Rust.
#[test]
fn committed_complaint_fuzz_seeds_round_trip() {
    for (target, seeds, round_trips) in complaint_seeds() {
        let dir = fuzz_seeds::seeds_dir(target);
        for (i, seed) in seeds.iter().enumerate() {
            let committed = std::fs::read(dir.join(format!("valid-{i}"))).unwrap();
            assert_eq!(&committed, seed, "{target}/valid-{i} is stale");
            assert!(
                round_trips.iter().any(|rt| rt(seed).as_ref() == Some(seed)),
                "{target}/valid-{i}"
            );
            let truncated = std::fs::read(dir.join(format!("truncated-{i}"))).unwrap();
            assert!(
                round_trips.iter().all(|rt| rt(&truncated).is_none()),
                "{target}/truncated-{i} decodes"
            );
        }
    }
}
