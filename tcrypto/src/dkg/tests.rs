//! Tests that need to reach inside a round's state: a dealer whose proof of knowledge is wrong but consistently
//! committed to.

use std::collections::BTreeMap;

use super::*;

fn id(i: u16) -> SignerId {
    SignerId::new(i).unwrap()
}

/// Runs a DKG where `cheat` may rewrite any party's round-1 state (re-committing consistently).
fn run_with<C: Curve>(
    k: u16,
    n: u16,
    cheat: impl Fn(SignerId, &mut round1::State<C>),
) -> BTreeMap<SignerId, Result<KeyShare<C>, Error>> {
    let mut rng = rand::rng();
    let params = Parameters::new(SessionId::random(&mut rng), k, (1..=n).map(id)).unwrap();
    let mut st1 = BTreeMap::new();
    let mut b1 = BTreeMap::new();
    for p in params.participants().clone() {
        let (mut s, _) = round1::commit::<C>(params.clone(), p, &mut rng).unwrap();
        cheat(p, &mut s);
        s.own = reveal_commitment::<C>(&s.params, p, &s.commitments, &s.proof);
        b1.insert(p, round1::Broadcast::<C>::new(s.own));
        st1.insert(p, s);
    }
    let mut st2 = BTreeMap::new();
    let mut b2 = BTreeMap::new();
    let mut sh = BTreeMap::new();
    for (p, s) in st1 {
        let inbox: BTreeMap<_, _> = b1
            .iter()
            .filter(|(q, _)| **q != p)
            .map(|(q, v)| (*q, v.clone()))
            .collect();
        let (s, b, shares) = round2::reveal(s, &inbox).unwrap();
        st2.insert(p, s);
        b2.insert(p, b);
        sh.insert(p, shares);
    }
    let mut st3 = BTreeMap::new();
    let mut b3 = BTreeMap::new();
    for (p, s) in st2 {
        let inbox: BTreeMap<_, _> = b2
            .iter()
            .filter(|(q, _)| **q != p)
            .map(|(q, v)| (*q, v.clone()))
            .collect();
        let shares: BTreeMap<_, _> = sh
            .iter()
            .filter(|(q, _)| **q != p)
            .map(|(q, m)| (*q, m[&p].clone()))
            .collect();
        let (s, b) = round3::verify(s, &inbox, shares).unwrap();
        st3.insert(p, s);
        b3.insert(p, b);
    }
    st3.into_iter()
        .map(|(p, s)| {
            let inbox: BTreeMap<_, _> = b3
                .iter()
                .filter(|(q, _)| **q != p)
                .map(|(q, v)| (*q, v.clone()))
                .collect();
            (p, round4::finish(s, &inbox))
        })
        .collect()
}

#[test]
fn invalid_proof_of_knowledge_is_detected_and_the_dealer_named() {
    let out = run_with::<P256>(2, 3, |p, s| {
        if p == id(2) {
            s.proof.mu += P256::scalar_from_u16(1);
        }
    });
    for honest in [1, 3] {
        match &out[&id(honest)] {
            Err(Error::Complaints { culprits, complaints }) => {
                assert_eq!(culprits.iter().copied().collect::<Vec<_>>(), vec![id(2)]);
                assert!(complaints.iter().any(|c| c.fault == Fault::InvalidProof));
            }
            other => panic!("expected complaints, got {other:?}"),
        }
    }
}

#[test]
fn rogue_key_without_knowledge_of_its_constant_term_is_refused() {
    // Party 3 tries to cancel party 1's key by committing to φ_30 = Z - φ_10 without knowing its discrete log:
    // it cannot produce a proof for it, so any proof it sends is rejected.
    let out = run_with::<Ed25519>(1, 3, |p, s| {
        if p == id(3) {
            s.commitments[0] = Ed25519::generator() + s.commitments[0];
        }
    });
    for honest in [1, 2] {
        assert_eq!(out[&id(honest)].as_ref().unwrap_err().culprits(), vec![id(3)]);
    }
}

#[test]
fn honest_run_through_the_internal_driver_succeeds() {
    let out = run_with::<Ed25519>(2, 3, |_, _| {});
    assert!(out.values().all(Result::is_ok));
}
