//! Threshold Ed25519 (FROST via frost-ed25519, wrapped): every signature verified by ed25519-dalek's
//! `verify_strict` (and by openssl in `ed25519_openssl.rs`), RFC 9591 known answers, misbehaviour in both rounds.

#![allow(clippy::unwrap_used)]

#[path = "common/dkg_net.rs"]
mod net;

use std::collections::BTreeMap;

use net::{honest, id, ids, seeded_rng};
use proptest::prelude::*;
use rand::rngs::StdRng;
use tcrypto::dkg::{self, Curve, Ed25519};
use tcrypto::ed25519::{self, Error, KeyShare, PublicKeySet, Signature, SigningPackage, round1, round2};
use tcrypto::{SessionId, SignerId};

/// A DKG among `n` parties, converted to FROST key shares.
fn dkg_shares(k: u16, n: u16, rng: &mut StdRng) -> Vec<KeyShare> {
    honest::<Ed25519>(k, n, rng)
        .into_iter()
        .map(|s| KeyShare::from_dkg(s).unwrap())
        .collect()
}

/// Checks a signature with an independent verifier: ed25519-dalek's strict verification.
fn dalek_verify(public: &PublicKeySet, msg: &[u8], sig: &Signature) {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public.public_key_bytes()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&sig.to_bytes());
    vk.verify_strict(msg, &sig)
        .expect("ed25519-dalek verify_strict rejected the signature");
}

/// Runs both rounds with the signers `signers` (indexes into `shares`) and aggregates.
fn sign_with(
    shares: &[KeyShare],
    signers: &[usize],
    msg: &[u8],
    rng: &mut StdRng,
) -> Result<Signature, Error> {
    let session = SessionId::random(rng);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let (n, c) = round1::commit(&shares[i], session, rng)?;
        // Through the wire encoding.
        let c: round1::Commitment = ed25519::decode_from(shares[i].id(), &c.encode())?;
        nonces.insert(shares[i].id(), n);
        commitments.insert(shares[i].id(), c);
    }
    let package = SigningPackage::new(session, msg.to_vec(), commitments)?;
    let package = SigningPackage::decode(&package.encode()).unwrap();
    let mut sig_shares = BTreeMap::new();
    for &i in signers {
        let n = nonces.remove(&shares[i].id()).unwrap();
        let z = round2::sign(&shares[i], n, &package)?;
        let z: round2::SignatureShare = ed25519::decode_from(shares[i].id(), &z.encode())?;
        sig_shares.insert(shares[i].id(), z);
    }
    ed25519::aggregate(shares[0].public(), &package, &sig_shares)
}

#[test]
fn dkg_key_signs_3_of_5_and_ed25519_dalek_verifies_strictly() {
    let mut rng = seeded_rng("ed25519_3_of_5");
    let shares = dkg_shares(3, 5, &mut rng);
    for signers in [[0, 1, 2], [2, 3, 4], [0, 2, 4], [1, 3, 4]] {
        let msg = format!("message signed by {signers:?}");
        let sig = sign_with(&shares, &signers, msg.as_bytes(), &mut rng).unwrap();
        dalek_verify(shares[0].public(), msg.as_bytes(), &sig);
        shares[0].public().verify(msg.as_bytes(), &sig).unwrap();
        assert!(shares[0].public().verify(b"another message", &sig).is_err());
    }
    // More than k signers work too.
    let sig = sign_with(&shares, &[0, 1, 2, 3, 4], b"all five", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"all five", &sig);
}

#[test]
fn one_of_one_and_one_of_three_keys_sign() {
    let mut rng = seeded_rng("ed25519_k1");
    let shares = dkg_shares(1, 1, &mut rng);
    let sig = sign_with(&shares, &[0], b"solo", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"solo", &sig);
    let shares = dkg_shares(1, 3, &mut rng);
    let sig = sign_with(&shares, &[2], b"any one", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"any one", &sig);
}

#[test]
fn fewer_than_k_signers_are_refused() {
    let mut rng = seeded_rng("ed25519_too_few");
    let shares = dkg_shares(3, 4, &mut rng);
    let err = sign_with(&shares, &[0, 1], b"m", &mut rng).unwrap_err();
    assert!(
        matches!(err, Error::NotEnoughSigners { got: 2, threshold: 3 }),
        "{err:?}"
    );
}

// ----- RFC 9591 known answers -----

/// Replays fixed bytes as "randomness", as the RFC's vectors do for the nonce randomness.
struct Replay(Vec<u8>);

impl rand::TryRng for Replay {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert!(self.0.len() >= dst.len(), "replay RNG exhausted");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

impl rand::TryCryptoRng for Replay {}

fn h(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn scalar(v: &serde_json::Value) -> <Ed25519 as Curve>::Scalar {
    Ed25519::scalar_from_bytes(&h(v).try_into().unwrap()).unwrap()
}

#[test]
fn rfc9591_frost_ed25519_sha512_vectors_pass_through_the_wrapper() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/rfc9591_frost_ed25519_sha512.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let inputs = &v["inputs"];
    let k: u16 = v["config"]["MIN_PARTICIPANTS"].as_str().unwrap().parse().unwrap();
    let n: u16 = v["config"]["MAX_PARTICIPANTS"].as_str().unwrap().parse().unwrap();
    let a0 = scalar(&inputs["group_secret_key"]);
    let coeffs: Vec<_> = std::iter::once(a0)
        .chain(
            inputs["share_polynomial_coefficients"]
                .as_array()
                .unwrap()
                .iter()
                .map(scalar),
        )
        .collect();
    let commitments = coeffs.iter().map(Ed25519::mul_base).collect();
    let parties = ids(n).into_iter().collect();
    let public = dkg::PublicKeySet::<Ed25519>::new(k, &parties, commitments).unwrap();
    assert_eq!(public.public_key_bytes(), h(&inputs["verifying_key_key"]));

    let mut shares = BTreeMap::new();
    for p in inputs["participant_shares"].as_array().unwrap() {
        let i = id(p["identifier"].as_u64().unwrap() as u16);
        let x = scalar(&p["participant_share"]);
        let share = dkg::KeyShare::from_parts(i, x, public.clone()).unwrap();
        shares.insert(i, KeyShare::from_dkg(share).unwrap());
    }
    let message = h(&inputs["message"]);
    let session = SessionId([7; 32]);

    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for o in v["round_one_outputs"]["outputs"].as_array().unwrap() {
        let i = id(o["identifier"].as_u64().unwrap() as u16);
        let mut randomness = h(&o["hiding_nonce_randomness"]);
        randomness.extend(h(&o["binding_nonce_randomness"]));
        let (nonce, c) = round1::commit(&shares[&i], session, &mut Replay(randomness)).unwrap();
        assert_eq!(
            Ed25519::point_to_bytes(&c.hiding),
            h(&o["hiding_nonce_commitment"])
        );
        assert_eq!(
            Ed25519::point_to_bytes(&c.binding),
            h(&o["binding_nonce_commitment"])
        );
        nonces.insert(i, nonce);
        commitments.insert(i, c);
    }
    let listed: Vec<SignerId> = inputs["participant_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| id(x.as_u64().unwrap() as u16))
        .collect();
    assert_eq!(listed, commitments.keys().copied().collect::<Vec<_>>());
    let package = SigningPackage::new(session, message.clone(), commitments).unwrap();

    let mut sig_shares = BTreeMap::new();
    for o in v["round_two_outputs"]["outputs"].as_array().unwrap() {
        let i = id(o["identifier"].as_u64().unwrap() as u16);
        let z = round2::sign(&shares[&i], nonces.remove(&i).unwrap(), &package).unwrap();
        assert_eq!(z.z.to_bytes().to_vec(), h(&o["sig_share"]));
        sig_shares.insert(i, z);
    }
    let sig = ed25519::aggregate(shares[&id(1)].public(), &package, &sig_shares).unwrap();
    assert_eq!(sig.to_bytes().to_vec(), h(&v["final_output"]["sig"]));
    dalek_verify(shares[&id(1)].public(), &message, &sig);
}

// ----- misbehaviour -----

/// Round 1 and the package for `signers`, with a hook on each signer's share.
fn run_tampered(
    shares: &[KeyShare],
    signers: &[usize],
    msg: &[u8],
    rng: &mut StdRng,
    mut tamper: impl FnMut(SignerId, &SigningPackage, &mut round2::SignatureShare, &mut StdRng),
) -> Result<Signature, Error> {
    let session = SessionId::random(rng);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let (n, c) = round1::commit(&shares[i], session, rng).unwrap();
        nonces.insert(shares[i].id(), n);
        commitments.insert(shares[i].id(), c);
    }
    let package = SigningPackage::new(session, msg.to_vec(), commitments).unwrap();
    let mut sig_shares = BTreeMap::new();
    for &i in signers {
        let mut z = round2::sign(&shares[i], nonces.remove(&shares[i].id()).unwrap(), &package).unwrap();
        tamper(shares[i].id(), &package, &mut z, rng);
        sig_shares.insert(shares[i].id(), z);
    }
    ed25519::aggregate(shares[0].public(), &package, &sig_shares)
}

#[test]
fn round2_wrong_signature_share_names_the_signer_and_honest_signers_still_sign() {
    let mut rng = seeded_rng("ed25519_wrong_share");
    let shares = dkg_shares(3, 5, &mut rng);
    let err = run_tampered(&shares, &[0, 1, 2, 3], b"msg", &mut rng, |who, _, z, _| {
        if who == id(2) {
            z.z += curve25519_dalek::Scalar::ONE;
        }
    })
    .unwrap_err();
    assert_eq!(
        err,
        Error::Culprits {
            culprits: vec![id(2)]
        }
    );
    // Retry without the culprit: the remaining honest signers are enough.
    let sig = sign_with(&shares, &[0, 2, 3], b"msg", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"msg", &sig);
}

#[test]
fn round2_two_cheaters_are_both_named() {
    let mut rng = seeded_rng("ed25519_two_cheaters");
    let shares = dkg_shares(2, 5, &mut rng);
    let err = run_tampered(&shares, &[0, 1, 3, 4], b"msg", &mut rng, |who, _, z, _| {
        if who == id(1) || who == id(5) {
            z.z = curve25519_dalek::Scalar::from(99u8);
        }
    })
    .unwrap_err();
    assert_eq!(err.culprits(), vec![id(1), id(5)]);
    let sig = sign_with(&shares, &[1, 2], b"msg", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"msg", &sig);
}

#[test]
fn round1_signer_using_other_nonces_than_committed_is_named() {
    // Signer 4 commits (D, E) to the coordinator but signs with other nonces (a wrong commitment).
    let mut rng = seeded_rng("ed25519_wrong_commitment");
    let shares = dkg_shares(3, 5, &mut rng);
    let cheater = &shares[3];
    let err = run_tampered(&shares, &[1, 2, 3], b"msg", &mut rng, |who, package, z, rng| {
        if who == id(4) {
            let (other, c) = round1::commit(cheater, package.session, rng).unwrap();
            let mut p = package.clone();
            p.commitments.insert(who, c);
            *z = round2::sign(cheater, other, &p).unwrap();
        }
    })
    .unwrap_err();
    assert_eq!(err.culprits(), vec![id(4)]);
    let sig = sign_with(&shares, &[0, 1, 2], b"msg", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"msg", &sig);
}

#[test]
fn round2_signer_that_signed_an_equivocated_package_is_named() {
    // The package seen by signer 1 differs (another message): an equivocated broadcast of the package.
    let mut rng = seeded_rng("ed25519_equivocated_package");
    let shares = dkg_shares(2, 3, &mut rng);
    let victim = &shares[0];
    let err = run_tampered(&shares, &[0, 1, 2], b"msg", &mut rng, |who, package, z, rng| {
        if who == id(1) {
            let (n, c) = round1::commit(victim, package.session, rng).unwrap();
            let mut p = package.clone();
            p.message = b"msg'".to_vec();
            p.commitments.insert(who, c);
            *z = round2::sign(victim, n, &p).unwrap();
        }
    })
    .unwrap_err();
    assert_eq!(err.culprits(), vec![id(1)]);
}

#[test]
fn signer_refuses_package_without_its_commitment_or_of_another_session() {
    let mut rng = seeded_rng("ed25519_package_checks");
    let shares = dkg_shares(2, 3, &mut rng);
    let s = SessionId::random(&mut rng);
    let (n1, c1) = round1::commit(&shares[0], s, &mut rng).unwrap();
    let (_, c2) = round1::commit(&shares[1], s, &mut rng).unwrap();
    let (_, other) = round1::commit(&shares[0], s, &mut rng).unwrap();
    let package =
        SigningPackage::new(s, b"m".to_vec(), BTreeMap::from([(id(1), other), (id(2), c2)])).unwrap();
    assert_eq!(
        round2::sign(&shares[0], n1, &package).unwrap_err(),
        Error::CommitmentMismatch
    );
    let (n1, c1b) = round1::commit(&shares[0], s, &mut rng).unwrap();
    let t = SessionId::random(&mut rng);
    let (_, c2t) = round1::commit(&shares[1], t, &mut rng).unwrap();
    let mut c1t = c1b;
    c1t.session = t;
    let package =
        SigningPackage::new(t, b"m".to_vec(), BTreeMap::from([(id(1), c1t), (id(2), c2t)])).unwrap();
    assert_eq!(
        round2::sign(&shares[0], n1, &package).unwrap_err(),
        Error::PackageSession
    );
    // A commitment of another session cannot enter a package; its signer is named.
    let err = SigningPackage::new(s, b"m".to_vec(), BTreeMap::from([(id(1), c1), (id(2), c2t)])).unwrap_err();
    assert_eq!(err, Error::SessionMismatch { culprit: id(2) });
}

#[test]
fn rejects_commitment_and_share_from_unknown_signer() {
    let mut rng = seeded_rng("ed25519_unknown_signer");
    let shares = dkg_shares(2, 3, &mut rng);
    let s = SessionId::random(&mut rng);
    let (n1, c1) = round1::commit(&shares[0], s, &mut rng).unwrap();
    let (n2, c2) = round1::commit(&shares[1], s, &mut rng).unwrap();
    let (_, c9) = round1::commit(&shares[2], s, &mut rng).unwrap();
    let bad = SigningPackage::new(
        s,
        b"m".to_vec(),
        BTreeMap::from([(id(1), c1), (id(2), c2), (id(9), c9)]),
    )
    .unwrap();
    assert_eq!(
        round2::sign(&shares[0], n1, &bad).unwrap_err(),
        Error::UnknownSigner { culprit: id(9) }
    );
    // A share from a signer that is not in the package.
    let (n1, c1) = round1::commit(&shares[0], s, &mut rng).unwrap();
    let package = SigningPackage::new(s, b"m".to_vec(), BTreeMap::from([(id(1), c1), (id(2), c2)])).unwrap();
    let z1 = round2::sign(&shares[0], n1, &package).unwrap();
    let z2 = round2::sign(&shares[1], n2, &package).unwrap();
    let all = BTreeMap::from([(id(1), z1), (id(2), z2), (id(3), z2)]);
    assert_eq!(
        ed25519::aggregate(shares[0].public(), &package, &all).unwrap_err(),
        Error::UnexpectedSigner { culprit: id(3) }
    );
    let missing = BTreeMap::from([(id(1), z1)]);
    assert_eq!(
        ed25519::aggregate(shares[0].public(), &package, &missing).unwrap_err(),
        Error::MissingShares {
            culprits: vec![id(2)]
        }
    );
    let both = BTreeMap::from([(id(1), z1), (id(2), z2)]);
    let sig = ed25519::aggregate(shares[0].public(), &package, &both).unwrap();
    dalek_verify(shares[0].public(), b"m", &sig);
}

#[test]
fn signing_package_with_duplicate_signer_ids_does_not_decode() {
    let mut rng = seeded_rng("ed25519_dup");
    let shares = dkg_shares(2, 2, &mut rng);
    let s = SessionId::random(&mut rng);
    let (_, c1) = round1::commit(&shares[0], s, &mut rng).unwrap();
    let (_, c2) = round1::commit(&shares[1], s, &mut rng).unwrap();
    let p = SigningPackage::new(s, b"m".to_vec(), BTreeMap::from([(id(1), c1), (id(2), c2)])).unwrap();
    let mut bytes = p.encode();
    assert!(SigningPackage::decode(&bytes).is_ok());
    // header 2 + session 32 + message (4 + 1) + count 4 + (id 2 + 64), then the second id.
    let at = 2 + 32 + 5 + 4 + 66;
    bytes[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
    assert!(SigningPackage::decode(&bytes).is_err());
}

#[test]
fn identity_and_non_canonical_points_in_commitments_are_refused_and_the_sender_named() {
    let mut rng = seeded_rng("ed25519_bad_points");
    let shares = dkg_shares(2, 2, &mut rng);
    let (_, c) = round1::commit(&shares[0], SessionId::random(&mut rng), &mut rng).unwrap();
    let good = c.encode();
    // Identity (0, 1): y = 1.
    let mut identity = good.clone();
    let mut y1 = [0u8; 32];
    y1[0] = 1;
    identity[34..66].copy_from_slice(&y1);
    let err = ed25519::decode_from::<round1::Commitment>(id(2), &identity).unwrap_err();
    assert!(matches!(err, Error::Malformed { culprit, .. } if culprit == id(2)));
    // Non-canonical: y = p + 1.
    let mut noncanon = good.clone();
    let mut y = [0xffu8; 32];
    y[0] = 0xee;
    y[31] = 0x7f;
    noncanon[66..98].copy_from_slice(&y);
    assert!(round1::Commitment::decode(&noncanon).is_err());
    // A point of order 8 (torsion only).
    let mut small = good.clone();
    let order8 = hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a").unwrap();
    small[34..66].copy_from_slice(&order8);
    assert!(round1::Commitment::decode(&small).is_err());
    assert!(round1::Commitment::decode(&good).is_ok());
}

#[test]
fn every_non_canonical_commitment_encoding_is_refused() {
    // The commitment decoder relies on the prime-order check to refuse non-canonical encodings: all
    // 19 values y = p + j (j < 19, p = 2^255 - 19), with either sign bit, must be refused.
    let mut rng = seeded_rng("ed25519_noncanonical_all");
    let shares = dkg_shares(2, 2, &mut rng);
    let (_, c) = round1::commit(&shares[0], SessionId::random(&mut rng), &mut rng).unwrap();
    let good = c.encode();
    for j in 0u8..19 {
        // p + j in little-endian: p = 0x7fff..ffed.
        let mut y = [0xffu8; 32];
        y[31] = 0x7f;
        y[0] = 0xed + j;
        for sign in [0u8, 0x80] {
            let mut enc = y;
            enc[31] |= sign;
            for at in [34, 66] {
                let mut bad = good.clone();
                bad[at..at + 32].copy_from_slice(&enc);
                assert!(
                    round1::Commitment::decode(&bad).is_err(),
                    "y = p + {j}, sign {sign:#x}, at {at}"
                );
            }
        }
    }
}

#[test]
fn commitments_encode_their_points_whether_kept_from_decoding_or_changed_since() {
    let mut rng = seeded_rng("ed25519_commitment_encoding");
    let shares = dkg_shares(2, 2, &mut rng);
    let session = SessionId::random(&mut rng);
    let (_, made) = round1::commit(&shares[0], session, &mut rng).unwrap();
    let (_, other) = round1::commit(&shares[1], session, &mut rng).unwrap();
    let fresh = |c: &round1::Commitment| {
        let mut b = made.encode()[..2 + 32].to_vec();
        b.extend_from_slice(c.hiding.compress().as_bytes());
        b.extend_from_slice(c.binding.compress().as_bytes());
        b
    };
    // The encoding kept from commit and from decoding is the points' own.
    assert_eq!(made.encode(), fresh(&made));
    let decoded = round1::Commitment::decode(&made.encode()).unwrap();
    assert_eq!(decoded.encode(), fresh(&made));
    // A commitment whose public points were replaced encodes the new points, not the kept bytes.
    let mut changed = decoded;
    changed.binding = other.binding;
    assert_eq!(changed.encode(), fresh(&changed));
    assert_ne!(changed.encode(), made.encode());
    let mut changed = made;
    changed.hiding = other.hiding;
    assert_eq!(round1::Commitment::decode(&changed.encode()).unwrap(), changed);
}

#[test]
fn a_commitment_decoded_without_the_subgroup_check_is_checked_on_demand() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    let mut rng = seeded_rng("ed25519_deferred_subgroup_check");
    let shares = dkg_shares(2, 2, &mut rng);
    let session = SessionId::random(&mut rng);
    let (_, made) = round1::commit(&shares[0], session, &mut rng).unwrap();
    // A good commitment decodes both ways to the same value and passes the check.
    let deferred = round1::Commitment::decode_deferring_subgroup_check(&made.encode()).unwrap();
    assert_eq!(deferred, made);
    assert_eq!(deferred.encode(), made.encode());
    assert!(deferred.check_subgroup().is_ok());
    assert!(made.check_subgroup().is_ok());
    // A point with a torsion component: only the strict decoder refuses it; the check names it afterwards.
    for torsion in &EIGHT_TORSION[1..] {
        let mut mixed = made;
        mixed.binding += torsion;
        let bytes = mixed.encode();
        assert!(round1::Commitment::decode(&bytes).is_err());
        let deferred = round1::Commitment::decode_deferring_subgroup_check(&bytes).unwrap();
        assert!(deferred.check_subgroup().is_err());
        assert!(mixed.check_subgroup().is_err());
    }
    // Both refuse the identity and bytes that are no point; the deferred decoder takes a small-order point, which
    // the check then refuses.
    let with = |hiding: &[u8]| {
        let mut b = made.encode();
        b[2 + 32..2 + 64].copy_from_slice(hiding);
        b
    };
    let identity = curve25519_dalek::EdwardsPoint::default().compress().to_bytes();
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(
        curve25519_dalek::edwards::CompressedEdwardsY(not_a_point)
            .decompress()
            .is_none()
    );
    for bad in [identity, not_a_point] {
        assert!(round1::Commitment::decode(&with(&bad)).is_err());
        assert!(round1::Commitment::decode_deferring_subgroup_check(&with(&bad)).is_err());
    }
    let small = EIGHT_TORSION[2].compress().to_bytes();
    assert!(round1::Commitment::decode(&with(&small)).is_err());
    let deferred = round1::Commitment::decode_deferring_subgroup_check(&with(&small)).unwrap();
    assert!(deferred.check_subgroup().is_err());
}

#[test]
fn decoding_with_the_signers_own_commitment_still_checks_every_other_point() {
    let mut rng = seeded_rng("ed25519_decode_with_own");
    let shares = dkg_shares(3, 3, &mut rng);
    let session = SessionId::random(&mut rng);
    let made: Vec<_> = shares
        .iter()
        .map(|s| round1::commit(s, session, &mut rng).unwrap())
        .collect();
    let commitments: BTreeMap<SignerId, round1::Commitment> =
        shares.iter().zip(&made).map(|(s, (_, c))| (s.id(), *c)).collect();
    let package = SigningPackage::new(session, b"msg".to_vec(), commitments).unwrap();
    let bytes = package.encode();
    let own = *made[0].0.commitment();
    let own = &own;
    assert_eq!(SigningPackage::peek_session(&bytes).unwrap(), session);
    assert_eq!(
        SigningPackage::decode_with_own(&bytes, Some(own)).unwrap(),
        package
    );
    // The result signs and verifies like the strictly decoded package.
    let decoded = SigningPackage::decode_with_own(&bytes, Some(own)).unwrap();
    let z = round2::sign(&shares[0], made.into_iter().next().unwrap().0, &decoded).unwrap();
    assert_eq!(z.session, session);
    // Layout: header 2 + session 32 + message (4 + 3) + count 4, then per signer id 2 + D 32 + E 32.
    let first = 2 + 32 + 7 + 4 + 2;
    let order8 = hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a").unwrap();
    // A small-order point in another signer's slot, or in our own slot in place of our point, is refused.
    for at in [first, first + 32, first + 66, first + 66 + 32, first + 132] {
        let mut bad = bytes.clone();
        bad[at..at + 32].copy_from_slice(&order8);
        assert!(
            SigningPackage::decode_with_own(&bad, Some(own)).is_err(),
            "at {at}"
        );
        assert!(SigningPackage::decode(&bad).is_err(), "at {at}");
    }
}

#[test]
fn non_canonical_signature_share_scalar_is_refused_and_the_sender_named() {
    let z = round2::SignatureShare {
        session: SessionId([1; 32]),
        z: curve25519_dalek::Scalar::from(5u8),
    };
    let mut bytes = z.encode();
    assert_eq!(round2::SignatureShare::decode(&bytes).unwrap(), z);
    let l = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").unwrap();
    bytes[34..66].copy_from_slice(&l);
    let err = ed25519::decode_from::<round2::SignatureShare>(id(3), &bytes).unwrap_err();
    assert!(matches!(err, Error::Malformed { culprit, .. } if culprit == id(3)));
}

// ----- key material -----

#[test]
fn key_share_round_trips_and_debug_is_redacted() {
    let mut rng = seeded_rng("ed25519_key_share");
    let shares = dkg_shares(2, 3, &mut rng);
    for s in &shares {
        let bytes = s.encode();
        let back = KeyShare::decode(&bytes).unwrap();
        assert_eq!(back.id(), s.id());
        assert_eq!(back.public(), s.public());
        assert!(format!("{s:?}").contains("<redacted>"));
        let pk = PublicKeySet::decode(&s.public().encode()).unwrap();
        assert_eq!(&pk, s.public());
    }
    // Decoded shares still sign.
    let decoded: Vec<KeyShare> = shares
        .iter()
        .map(|s| KeyShare::decode(&s.encode()).unwrap())
        .collect();
    let sig = sign_with(&decoded, &[0, 2], b"after storage", &mut rng).unwrap();
    dalek_verify(shares[0].public(), b"after storage", &sig);
    let (n, _) = round1::commit(&shares[0], SessionId([0; 32]), &mut rng).unwrap();
    assert!(format!("{n:?}").contains("<redacted>"));
}

#[cfg(feature = "dealer")]
#[test]
fn split_of_an_existing_seed_and_pkcs8_key_keeps_its_public_key() {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let mut rng = seeded_rng("ed25519_split");
    let seed = [42u8; 32];
    let original = ed25519_dalek::SigningKey::from_bytes(&seed);
    let (public, shares) = ed25519::split_seed(&seed, 2, ids(3), &mut rng).unwrap();
    assert_eq!(public.public_key_bytes(), original.verifying_key().to_bytes());
    let sig = sign_with(&shares, &[0, 2], b"imported", &mut rng).unwrap();
    original
        .verifying_key()
        .verify_strict(
            b"imported",
            &ed25519_dalek::Signature::from_bytes(&sig.to_bytes()),
        )
        .unwrap();
    let der = original.to_pkcs8_der().unwrap();
    let (public2, shares2) = ed25519::split_pkcs8_der(der.as_bytes(), 3, ids(4), &mut rng).unwrap();
    assert_eq!(public2.public_key_bytes(), original.verifying_key().to_bytes());
    let sig = sign_with(&shares2, &[1, 2, 3], b"imported pkcs8", &mut rng).unwrap();
    dalek_verify(&public2, b"imported pkcs8", &sig);
    assert!(ed25519::split_pkcs8_der(b"not a key", 2, ids(3), &mut rng).is_err());
    let (dealt_public, dealt) = ed25519::deal(2, ids(3), &mut rng).unwrap();
    let sig = sign_with(&dealt, &[0, 1], b"dealt", &mut rng).unwrap();
    dalek_verify(&dealt_public, b"dealt", &sig);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]

    #[test]
    fn any_quorum_signs_any_message(n in 1u16..6, k_off in 0u16..6, pick in any::<u64>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        let k = 1 + k_off % n;
        let mut rng = seeded_rng("prop_ed25519");
        let shares = dkg_shares(k, n, &mut rng);
        // A pseudo-random subset of at least k signers.
        let mut chosen: Vec<usize> = (0..usize::from(n)).filter(|i| (pick >> i) & 1 == 1).collect();
        for i in 0..usize::from(n) {
            if chosen.len() >= usize::from(k) { break; }
            if !chosen.contains(&i) { chosen.push(i); }
        }
        chosen.sort();
        let sig = sign_with(&shares, &chosen, &msg, &mut rng).unwrap();
        dalek_verify(shares[0].public(), &msg, &sig);
    }

    #[test]
    fn ed25519_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = round1::Commitment::decode(&bytes);
        let _ = round2::SignatureShare::decode(&bytes);
        let _ = SigningPackage::decode(&bytes);
        let _ = KeyShare::decode(&bytes);
        let _ = PublicKeySet::decode(&bytes);
    }
}

#[test]
fn dkg_error_converts_and_keeps_culprits() {
    let e: Error = dkg::Error::UnexpectedSender { culprit: id(4) }.into();
    assert_eq!(e.culprits(), vec![id(4)]);
}
