//! Misbehaving signers: for every kind of bad share the combiner still returns a valid signature when `k` honest
//! shares exist and names exactly the culprits; with fewer than `k` honest shares it returns a typed error.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use std::collections::BTreeMap;

use common::*;
use num_bigint::BigUint;
use tcrypto::rsa::{
    Combined, Error, KeyShare, MessageEncoding, PublicKeySet, ShareFault, SignatureShare, VerifyError,
    combine, combine_encoded, verify_share,
};
use tcrypto::{HashAlg, SessionId, SignerId};

const K: u16 = 3;
const N: u16 = 5;

struct Fixture {
    pk: PublicKeySet,
    shares: Vec<KeyShare>,
    session: SessionId,
    msg: MessageEncoding,
    honest: BTreeMap<SignerId, SignatureShare>,
}

fn fixture() -> Fixture {
    let (pk, shares) = small_key(K, N);
    let session = SessionId([0x42; 32]);
    let msg = MessageEncoding::pss_of(HashAlg::Sha256, b"zone apex DNSKEY", vec![3; 32]);
    let honest = sign_all(&shares, &[1, 2, 3, 4, 5], &session, &msg, 11);
    Fixture {
        pk,
        shares,
        session,
        msg,
        honest,
    }
}

fn modulus(pk: &PublicKeySet) -> BigUint {
    BigUint::from_bytes_be(&pk.modulus_bytes())
}

fn value(share: &SignatureShare) -> BigUint {
    BigUint::from_bytes_be(&share.value)
}

fn canonical(pk: &PublicKeySet, x: &BigUint) -> Vec<u8> {
    let n = modulus(pk);
    let neg = &n - x;
    let smaller = if &neg < x { neg } else { x.clone() };
    smaller.to_bytes_be()
}

fn with_value(share: &SignatureShare, v: Vec<u8>) -> SignatureShare {
    let mut s = share.clone();
    s.value = v;
    s
}

/// Combines `shares`, checks the signature with the `rsa` crate and returns the result.
fn combine_ok(f: &Fixture, shares: &BTreeMap<SignerId, SignatureShare>) -> Combined {
    let combined = combine(&f.pk, &f.session, &f.msg, shares).unwrap();
    rsa_crate_verifies(&f.pk, &f.msg, &combined.signature);
    f.pk.verify(&f.msg, &combined.signature).unwrap();
    combined
}

fn culprits(c: &Combined) -> Vec<u16> {
    c.culprits.iter().map(|s| s.get()).collect()
}

/// Replaces signer 2's share (among the first `k`, so the optimistic combination sees it) and checks that a valid
/// signature still comes out and exactly signer 2 is blamed with `expected`.
fn signer_2_sends(f: &Fixture, bad: SignatureShare, expected: ShareFault) {
    let mut shares = f.honest.clone();
    shares.insert(id(2), bad);
    let combined = combine_ok(f, &shares);
    assert_eq!(culprits(&combined), vec![2]);
    assert_eq!(combined.faults[&id(2)], expected);
}

#[test]
fn random_value_is_blamed() {
    let f = fixture();
    let mut rng = rng(1);
    let mut bytes = vec![0u8; f.pk.signature_len()];
    rand::RngExt::fill(&mut rng, &mut bytes[..]);
    let random = BigUint::from_bytes_be(&bytes) % modulus(&f.pk);
    let bad = with_value(&f.honest[&id(2)], canonical(&f.pk, &random));
    signer_2_sends(&f, bad, ShareFault::InvalidProof);
}

#[test]
fn share_for_another_message_is_blamed() {
    let f = fixture();
    let other = MessageEncoding::pss_of(HashAlg::Sha256, b"another message", vec![3; 32]);
    let bad = f.shares[1].sign_share(&f.session, &other, &mut rng(2)).unwrap();
    signer_2_sends(&f, bad, ShareFault::InvalidProof);
}

#[test]
fn share_for_another_session_is_blamed() {
    let f = fixture();
    let bad = f.shares[1]
        .sign_share(&SessionId([0x43; 32]), &f.msg, &mut rng(3))
        .unwrap();
    // Same x_i, proof bound to another session: the value is right, so the optimistic combination succeeds; the
    // proof check names it.
    let mut shares = f.honest.clone();
    shares.insert(id(2), bad.clone());
    assert!(combine_ok(&f, &shares).culprits.is_empty());
    assert_eq!(
        verify_share(&f.pk, &f.session, &f.msg, id(2), &bad),
        Err(VerifyError::Fault(ShareFault::InvalidProof))
    );
}

#[test]
fn inverse_of_the_share_is_blamed() {
    let f = fixture();
    let n = modulus(&f.pk);
    let x = value(&f.honest[&id(2)]);
    let inverse = x.modinv(&n).unwrap();
    let bad = with_value(&f.honest[&id(2)], canonical(&f.pk, &inverse));
    signer_2_sends(&f, bad, ShareFault::InvalidProof);
}

#[test]
fn share_sharing_a_factor_with_the_modulus_is_blamed_as_not_invertible() {
    // Only someone who knows a factor of N can send this; the optimistic path skips the per-share inversion, so the
    // combination fails and the proof check names the share.
    let f = fixture();
    let p = safe_primes(384)[0].clone();
    assert_eq!(modulus(&f.pk) % BigUint::from_bytes_be(&p), BigUint::from(0u8));
    let bad = with_value(&f.honest[&id(2)], p);
    signer_2_sends(&f, bad.clone(), ShareFault::NotInvertible);
    assert_eq!(
        verify_share(&f.pk, &f.session, &f.msg, id(2), &bad),
        Err(VerifyError::Fault(ShareFault::NotInvertible))
    );
}

#[test]
fn negated_share_is_blamed_as_not_canonical() {
    let f = fixture();
    let negated = modulus(&f.pk) - value(&f.honest[&id(2)]);
    let bad = with_value(&f.honest[&id(2)], negated.to_bytes_be());
    signer_2_sends(&f, bad, ShareFault::NotCanonical);
}

#[test]
fn zero_one_and_values_at_or_above_the_modulus_are_blamed() {
    let f = fixture();
    let n = modulus(&f.pk);
    signer_2_sends(&f, with_value(&f.honest[&id(2)], vec![]), ShareFault::OutOfRange);
    signer_2_sends(
        &f,
        with_value(&f.honest[&id(2)], vec![1]),
        ShareFault::InvalidProof,
    );
    signer_2_sends(
        &f,
        with_value(&f.honest[&id(2)], n.to_bytes_be()),
        ShareFault::OutOfRange,
    );
    signer_2_sends(
        &f,
        with_value(&f.honest[&id(2)], (&n + 5u32).to_bytes_be()),
        ShareFault::OutOfRange,
    );
    signer_2_sends(
        &f,
        with_value(&f.honest[&id(2)], vec![0xff; 300]),
        ShareFault::OutOfRange,
    );
}

#[test]
fn share_claiming_another_signer_id_is_blamed() {
    let f = fixture();
    // Signer 2 forwards signer 4's valid share.
    let bad = f.honest[&id(4)].clone();
    signer_2_sends(&f, bad, ShareFault::SignerMismatch { claimed: id(4) });
}

#[test]
fn duplicate_signer_id_is_blamed_on_the_sender_that_is_not_that_signer() {
    let f = fixture();
    // Signer 4 replays signer 2's share: two shares with id 2 arrive.
    let mut shares = f.honest.clone();
    shares.insert(id(4), f.honest[&id(2)].clone());
    // Drop signer 5 so the replayed share would be needed: honest 1, 2, 3 still suffice.
    shares.remove(&id(5));
    let combined = combine_ok(&f, &shares);
    assert_eq!(culprits(&combined), vec![4]);
    assert_eq!(
        combined.faults[&id(4)],
        ShareFault::SignerMismatch { claimed: id(2) }
    );
}

#[test]
fn signer_id_zero_in_an_encoded_share_is_blamed_on_its_sender() {
    let f = fixture();
    let mut encoded: BTreeMap<SignerId, Vec<u8>> = f.honest.iter().map(|(k, v)| (*k, v.encode())).collect();
    let mut bad = f.honest[&id(2)].encode();
    bad[2] = 0;
    bad[3] = 0; // signer id field = 0
    assert!(SignatureShare::decode(&bad).is_err());
    encoded.insert(id(2), bad);
    let combined = combine_encoded(&f.pk, &f.session, &f.msg, &encoded).unwrap();
    rsa_crate_verifies(&f.pk, &f.msg, &combined.signature);
    assert_eq!(culprits(&combined), vec![2]);
    assert!(matches!(combined.faults[&id(2)], ShareFault::Undecodable(_)));
}

#[test]
fn signer_id_above_n_is_blamed() {
    let f = fixture();
    // A sender that is not a signer of this key (channel id 6 > n = 5).
    let mut shares = f.honest.clone();
    let mut intruder = f.honest[&id(1)].clone();
    intruder.signer = id(6);
    shares.insert(id(6), intruder);
    let combined = combine_ok(&f, &shares);
    assert_eq!(culprits(&combined), vec![6]);
    assert_eq!(combined.faults[&id(6)], ShareFault::UnknownSigner);
    // And a signer whose share claims an id above n.
    let mut bad = f.honest[&id(2)].clone();
    bad.signer = id(9);
    signer_2_sends(&f, bad, ShareFault::SignerMismatch { claimed: id(9) });
}

#[test]
fn proof_taken_from_another_share_is_blamed() {
    let f = fixture();
    // A wrong value (signer 3's x_3) presented with signer 3's valid proof under signer 2's id.
    let mut bad = f.honest[&id(3)].clone();
    bad.signer = id(2);
    signer_2_sends(&f, bad, ShareFault::InvalidProof);
    // A wrong value with signer 2's own proof (proof of the honest share, value of another message).
    let other = MessageEncoding::pss_of(HashAlg::Sha256, b"other", vec![3; 32]);
    let mut bad = f.shares[1].sign_share(&f.session, &other, &mut rng(5)).unwrap();
    bad.proof = f.honest[&id(2)].proof.clone();
    signer_2_sends(&f, bad, ShareFault::InvalidProof);
    // The right value with a proof copied from signer 3: harmless for the signature, caught by verify_share.
    let mut odd = f.honest[&id(2)].clone();
    odd.proof = f.honest[&id(3)].proof.clone();
    assert_eq!(
        verify_share(&f.pk, &f.session, &f.msg, id(2), &odd),
        Err(VerifyError::Fault(ShareFault::InvalidProof))
    );
}

#[test]
fn oversized_proof_is_blamed() {
    let f = fixture();
    let mut bad = with_value(&f.honest[&id(2)], vec![2]);
    if let Some(p) = bad.proof.as_mut() {
        p.z = vec![0xff; 200];
    }
    signer_2_sends(&f, bad, ShareFault::ProofOutOfRange);
}

#[test]
fn every_culprit_is_named_even_beyond_the_first_k() {
    let f = fixture();
    let mut shares = f.honest.clone();
    shares.insert(id(1), with_value(&f.honest[&id(1)], vec![1]));
    shares.insert(id(5), with_value(&f.honest[&id(5)], vec![7]));
    let combined = combine_ok(&f, &shares);
    assert_eq!(culprits(&combined), vec![1, 5]);
}

#[test]
fn fewer_than_k_honest_shares_is_a_typed_error_naming_the_culprits() {
    let f = fixture();
    let mut shares = f.honest.clone();
    shares.insert(id(1), with_value(&f.honest[&id(1)], vec![1]));
    shares.insert(id(3), with_value(&f.honest[&id(3)], vec![]));
    shares.insert(id(4), f.honest[&id(5)].clone());
    match combine(&f.pk, &f.session, &f.msg, &shares) {
        Err(Error::Culprits {
            culprits,
            faults,
            valid,
            needed,
        }) => {
            assert_eq!(culprits, vec![id(1), id(3), id(4)]);
            assert_eq!(faults[&id(1)], ShareFault::InvalidProof);
            assert_eq!(faults[&id(3)], ShareFault::OutOfRange);
            assert_eq!(faults[&id(4)], ShareFault::SignerMismatch { claimed: id(5) });
            assert_eq!((valid, needed), (2, 3));
        }
        other => panic!("expected Culprits, got {other:?}"),
    }
}

#[test]
fn honest_shares_all_pass_verification() {
    let f = fixture();
    for (sender, share) in &f.honest {
        verify_share(&f.pk, &f.session, &f.msg, *sender, share).unwrap();
    }
}

#[test]
fn unproven_shares_combine_but_cannot_clear_themselves_when_someone_cheats() {
    let f = fixture();
    let unproven: BTreeMap<_, _> = f
        .shares
        .iter()
        .map(|ks| (ks.id(), ks.sign_share_unproven(&f.msg).unwrap()))
        .collect();
    let combined = combine_ok(&f, &unproven);
    assert!(combined.culprits.is_empty());
    let mut shares = unproven.clone();
    shares.insert(id(1), with_value(&unproven[&id(1)], vec![5]));
    shares.insert(id(2), f.honest[&id(2)].clone());
    shares.insert(id(3), f.honest[&id(3)].clone());
    shares.insert(id(4), f.honest[&id(4)].clone());
    let combined = combine_ok(&f, &shares);
    // Signer 1 cheated and has no proof; signer 5 is unproven too, so it cannot be cleared.
    assert_eq!(culprits(&combined), vec![1, 5]);
    assert_eq!(combined.faults[&id(5)], ShareFault::MissingProof);
}
