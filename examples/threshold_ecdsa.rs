//! Threshold ECDSA P-256 end to end, with every party in this process: a distributed key generation among `n`
//! parties (nobody ever holds the key), presigning, one-round signing of FILE by a quorum of `k`, and files that
//! `openssl` checks:
//!
//! ```text
//! cargo run --example threshold_ecdsa -- -k 3 -n 5 --out /tmp/sig FILE
//! openssl dgst -sha256 -verify /tmp/sig/public.pem -signature /tmp/sig/signature.der FILE
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Parser;
use p256::pkcs8::EncodePublicKey as _;
use sha2::Digest as _;
use tcrypto::dkg::{self, P256};
use tcrypto::ecdsa::{self, KeyShare, SignRequest};
use tcrypto::{SessionId, SignerId};

type Error = Box<dyn std::error::Error>;

/// What party `me` receives of a broadcast round: every other party's message.
fn pick<M: Clone>(all: &BTreeMap<SignerId, M>, me: SignerId) -> BTreeMap<SignerId, M> {
    all.iter()
        .filter(|(j, _)| **j != me)
        .map(|(j, m)| (*j, m.clone()))
        .collect()
}

/// Runs the four DKG rounds among `n` in-process parties, routing every message, and converts each party's
/// result into an ECDSA key share.
fn distributed_key_generation(
    k: u16,
    n: u16,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<KeyShare>, Error> {
    // Refuse unsupported (k, n) before running the DKG (which accepts any 1 <= k <= n).
    if u32::from(n) + 1 < 2 * u32::from(k) || k < 2 {
        return Err(ecdsa::Error::UnsupportedParameters(
            "honest majority required: n >= 2t + 1, i.e. k = t + 1 <= (n + 1) / 2",
        )
        .into());
    }
    let ids: Vec<SignerId> = (1..=n).filter_map(SignerId::new).collect();
    let params = dkg::Parameters::new(SessionId::random(rng), k, ids.iter().copied())?;

    let mut s1 = BTreeMap::new();
    let mut b1 = BTreeMap::new();
    for &me in &ids {
        let (st, b) = dkg::round1::commit::<P256>(params.clone(), me, rng)?;
        s1.insert(me, st);
        b1.insert(me, b);
    }
    let mut s2 = BTreeMap::new();
    let mut b2 = BTreeMap::new();
    let mut shares: BTreeMap<SignerId, BTreeMap<SignerId, _>> = BTreeMap::new();
    for (me, st) in s1 {
        let (st, b, out) = dkg::round2::reveal(st, &pick(&b1, me))?;
        s2.insert(me, st);
        b2.insert(me, b);
        for (to, share) in out {
            shares.entry(to).or_default().insert(me, share);
        }
    }
    let mut s3 = BTreeMap::new();
    let mut b3 = BTreeMap::new();
    for (me, st) in s2 {
        let (st, b) = dkg::round3::verify(st, &pick(&b2, me), shares.remove(&me).unwrap_or_default())?;
        s3.insert(me, st);
        b3.insert(me, b);
    }
    let mut keys = Vec::new();
    for (me, st) in s3 {
        let share = dkg::round4::finish(st, &pick(&b3, me))?;
        let public = share.public();
        keys.push(KeyShare::new(
            me,
            public.threshold(),
            public.parties(),
            *share.secret(),
            public.public_key(),
            public.public_shares().clone(),
        )?);
    }
    Ok(keys)
}

/// Threshold ECDSA P-256 demo: key generation, presigning, one-round signing.
#[derive(Parser)]
struct Args {
    /// Quorum k = t + 1 (any k parties sign; needs n >= 2k - 1).
    #[arg(short = 'k', default_value_t = 3)]
    k: u16,
    /// Number of parties n.
    #[arg(short = 'n', default_value_t = 5)]
    n: u16,
    /// Directory for public.pem and signature.der.
    #[arg(long)]
    out: PathBuf,
    /// The file to sign.
    file: PathBuf,
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let mut rng = rand::rng();
    let data = std::fs::read(&args.file)?;

    // Distributed key generation: each party ends with its Shamir share of x and everyone's public shares.
    let keys = distributed_key_generation(args.k, args.n, &mut rng)?;
    println!(
        "distributed key generation among {} parties (quorum {}): done",
        args.n, args.k
    );

    // Presigning by all n parties (at least 2t + 1 = 2k - 1 are needed), message-independent.
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let mut presigs = ecdsa::presign::run_in_process(&refs, SessionId::random(&mut rng), 1, &mut rng)?;

    // Online signing: the last k parties each return one share; the combiner interpolates and verifies.
    let digest = sha2::Sha256::digest(&data).to_vec();
    let signers: Vec<SignerId> = keys
        .iter()
        .rev()
        .take(usize::from(args.k))
        .map(|k| k.id())
        .collect();
    let first = presigs
        .get(&signers[0])
        .and_then(|v| v.first())
        .ok_or("no presignature")?;
    let public = first.public().clone();
    let req = SignRequest {
        session: SessionId::random(&mut rng),
        presignature: public.id,
        digest,
    };
    let mut shares = BTreeMap::new();
    for id in &signers {
        let key = keys.iter().find(|k| k.id() == *id).ok_or("missing key")?;
        let presig = presigs
            .get_mut(id)
            .and_then(|v| v.pop())
            .ok_or("missing presignature")?;
        let mut spent = BTreeSet::new();
        shares.insert(*id, ecdsa::sign_share(key, presig, &req, &mut spent)?);
    }
    let vk = keys[0].verifying_key()?;
    let combined = ecdsa::combine(&public, &vk, &req, &shares)?;

    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("public.pem"),
        vk.to_public_key_pem(Default::default())?,
    )?;
    std::fs::write(args.out.join("signature.der"), combined.to_der())?;
    println!(
        "signed {} by parties {:?}; wrote {}/public.pem and {}/signature.der",
        args.file.display(),
        signers.iter().map(|s| s.get()).collect::<Vec<_>>(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
