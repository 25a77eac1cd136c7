//! Smoke test: a 3-of-5 threshold signature made by the dealer, presigning and one-round signing verifies.
#![cfg(feature = "dealer")]
use std::collections::{BTreeMap, BTreeSet};

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rand::SeedableRng as _;
use sha2::Digest as _;
use tcrypto::ecdsa::{self, SignRequest};
use tcrypto::{SessionId, SignerId};

#[test]
fn three_of_five_signature_verifies_with_p256() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let keys = ecdsa::deal(3, 5, &mut rng).unwrap();
    let refs: Vec<&ecdsa::KeyShare> = keys.iter().collect();
    let _ = ecdsa::presign::run_in_process(&refs, SessionId::random(&mut rng), 1, &mut rng).unwrap();
    let t0 = std::time::Instant::now();
    let mut presigs =
        ecdsa::presign::run_in_process(&refs, SessionId::random(&mut rng), 4, &mut rng).unwrap();
    eprintln!("presign 5 parties x4: {:?}", t0.elapsed());
    let vk = keys[0].verifying_key().unwrap();
    for b in 0..4 {
        let digest = sha2::Sha256::digest(format!("message {b}")).to_vec();
        let signers = [1u16, 3, 5];
        let mut shares = BTreeMap::new();
        let mut public = None;
        for s in signers {
            let id = SignerId::new(s).unwrap();
            let p = presigs.get_mut(&id).unwrap().remove(0);
            public.get_or_insert_with(|| p.public().clone());
            let req = SignRequest {
                session: SessionId([9; 32]),
                presignature: p.id(),
                digest: digest.clone(),
            };
            let mut spent = BTreeSet::new();
            let share = ecdsa::sign_share(&keys[usize::from(s) - 1], p, &req, &mut spent).unwrap();
            shares.insert(id, share);
        }
        let public = public.unwrap();
        let req = SignRequest {
            session: SessionId([9; 32]),
            presignature: public.id,
            digest: digest.clone(),
        };
        let out = ecdsa::combine(&public, &vk, &req, &shares).unwrap();
        vk.verify_prehash(&digest, &out.signature).unwrap();
        assert!(out.culprits.is_empty());
    }
}
