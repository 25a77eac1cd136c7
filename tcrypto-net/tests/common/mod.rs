//! Shared test helpers: RSA keys dealt from the committed safe-prime fixtures of `tcrypto`, and the `rsa` crate as
//! independent verifier.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use tcrypto_net::transport::identity::{NodePublic, TlsIdentity};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::BoxedUint;
use rsa::pkcs8::DecodePublicKey;
use tcrypto::HashAlg;
use tcrypto::rsa::{KeyShare, PublicKeySet, SafePrime, deal_with_primes};
use tcrypto_net::transport::wire::Mechanism;

/// Safe primes of `bits` bits committed in `tcrypto/tests/data/`.
pub fn safe_primes(bits: u32) -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../tcrypto/tests/data/safe_primes_{bits}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            hex::decode(if l.len() % 2 == 1 {
                format!("0{l}")
            } else {
                l.to_string()
            })
            .unwrap()
        })
        .collect()
}

/// A seeded RNG; the seed is printed so a failure can be replayed.
pub fn rng(seed: u64) -> StdRng {
    eprintln!("rng seed: {seed}");
    StdRng::seed_from_u64(seed)
}

/// A `k`-of-`n` RSA key whose modulus has `2 * prime_bits` bits, dealt from fixture primes.
pub fn rsa_key(prime_bits: u32, k: u16, n: u16, seed: u64) -> (PublicKeySet, Vec<KeyShare>) {
    let primes = safe_primes(prime_bits);
    let p = SafePrime::from_be_bytes(&primes[0]).unwrap();
    let q = SafePrime::from_be_bytes(&primes[1]).unwrap();
    deal_with_primes(&p, &q, 65537, k, n, &mut rng(seed)).unwrap()
}

fn rsa_public(pk: &PublicKeySet) -> rsa::PublicKey {
    if pk.modulus_bits() >= 1024 {
        rsa::PublicKey::from_public_key_der(&pk.to_spki_der().unwrap()).unwrap()
    } else {
        rsa::PublicKey::new_unchecked(
            BoxedUint::from_be_slice_vartime(&pk.modulus_bytes()),
            BoxedUint::from(pk.public_exponent()),
        )
    }
}

/// Verifies an RSA signature with the `rsa` crate (SHA-256 mechanisms and raw DigestInfo).
pub fn rsa_crate_verifies(pk: &PublicKeySet, mech: &Mechanism, sig: &[u8]) -> Result<(), String> {
    let key = rsa_public(pk);
    let r = match mech {
        Mechanism::RsaPkcs1v15 {
            hash: HashAlg::Sha256,
            digest,
        } => key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest, sig),
        Mechanism::RsaPkcs1v15DigestInfo { digest_info } => {
            key.verify(rsa::Pkcs1v15Sign::new_unprefixed(), digest_info, sig)
        }
        Mechanism::RsaPss {
            hash: HashAlg::Sha256,
            digest,
            salt,
        } => key.verify(
            rsa::pss::Pss::<sha2::Sha256>::new_with_salt(salt.len()),
            digest,
            sig,
        ),
        other => return Err(format!("no independent verifier wired for {other:?}")),
    };
    r.map_err(|e| e.to_string())
}

/// Verifies an ECDSA P-256 (DER, with `p256`) or Ed25519 (with `ed25519-dalek` `verify_strict`) cluster signature
/// against the cluster's public key of the signing key.
pub fn ec_verifies(
    public: &tcrypto_net::algo::PublicKey,
    mech: &Mechanism,
    sig: &[u8],
) -> Result<(), String> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use tcrypto_net::algo::PublicKey;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match (public, mech) {
        (PublicKey::Ecdsa(pk), Mechanism::Ecdsa { digest }) => {
            let vk =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&pk.set.public_key_bytes()).map_err(|x| e(&x))?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|x| e(&x))?;
            vk.verify_prehash(digest, &sig).map_err(|x| e(&x))
        }
        (PublicKey::Ed25519(pk), Mechanism::Ed25519 { message }) => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.public_key_bytes()).map_err(|x| e(&x))?;
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|x| e(&x))?;
            vk.verify_strict(message, &sig).map_err(|x| e(&x))
        }
        (_, other) => Err(format!(
            "no independent verifier wired for {other:?} with this key"
        )),
    }
}

/// The mechanism that signs `message` with a key of `algorithm`: PKCS#1 v1.5 SHA-256, ECDSA over its SHA-256
/// digest, or Ed25519 over the message itself.
pub fn mechanism(algorithm: tcrypto_net::transport::wire::Algorithm, message: &[u8]) -> Mechanism {
    use tcrypto_net::transport::wire::Algorithm;
    match algorithm {
        Algorithm::Rsa => pkcs1_sha256(message),
        Algorithm::EcdsaP256 => Mechanism::Ecdsa {
            digest: HashAlg::Sha256.digest(message),
        },
        Algorithm::Ed25519 => Mechanism::Ed25519 {
            message: message.to_vec(),
        },
        other => panic!("{other:?}"),
    }
}

/// Signs `message` with `key` of `algorithm` through `cluster` and checks the signature with the independent
/// verifier of the algorithm (`rsa`, `p256`, `ed25519-dalek`) under the key's public key, which it returns.
pub fn sign_verified<E: tcrypto_net::client::Engine>(
    cluster: &tcrypto_net::client::Cluster<E>,
    key: tcrypto::KeyId,
    algorithm: tcrypto_net::transport::wire::Algorithm,
    message: &[u8],
) -> tcrypto_net::algo::PublicKey {
    let mech = mechanism(algorithm, message);
    let sig = cluster
        .sign(key, mech.clone())
        .unwrap_or_else(|e| panic!("{algorithm:?} sign: {e}"));
    let public = cluster.public_key(&key).unwrap();
    let checked = match &public {
        tcrypto_net::algo::PublicKey::Rsa(pk) => rsa_crate_verifies(pk, &mech, &sig.bytes),
        other => ec_verifies(other, &mech, &sig.bytes),
    };
    checked.unwrap_or_else(|e| panic!("{algorithm:?}: released signature does not verify: {e}"));
    public
}

/// PKCS#1 v1.5 SHA-256 over `msg`.
pub fn pkcs1_sha256(msg: &[u8]) -> Mechanism {
    Mechanism::RsaPkcs1v15 {
        hash: HashAlg::Sha256,
        digest: HashAlg::Sha256.digest(msg),
    }
}

/// Share bundles of a `k`-of-`n` key of `algorithm`, dealt here (RSA from the committed 384-bit safe primes), each
/// with the node index (`signer - 1`) it goes to: for tests that import a key instead of waiting for a keygen.
pub fn dealt_bundles(
    algorithm: tcrypto_net::transport::wire::Algorithm,
    k: u16,
    n: u16,
    seed: u64,
) -> Vec<(usize, tcrypto_net::transport::bundle::ShareBundle)> {
    use tcrypto::SignerId;
    use tcrypto_net::algo::{self, EcdsaPublicKey};
    use tcrypto_net::transport::wire::Algorithm;
    let mut rng = rng(seed);
    let ids: Vec<SignerId> = (1..=n).filter_map(SignerId::new).collect();
    let bundles = match algorithm {
        Algorithm::Rsa => {
            let (pk, shares) = rsa_key(384, k, n, seed);
            algo::rsa_bundles(&pk, &shares)
        }
        Algorithm::EcdsaP256 => {
            let (set, shares) = tcrypto::dkg::dealer::deal::<tcrypto::dkg::P256>(k, ids, &mut rng).unwrap();
            let shares: Vec<_> = shares.iter().map(|s| s.to_ecdsa().unwrap()).collect();
            algo::ecdsa_bundles(&EcdsaPublicKey::new(set).unwrap(), &shares)
        }
        Algorithm::Ed25519 => {
            let (set, shares) =
                tcrypto::dkg::dealer::deal::<tcrypto::dkg::Ed25519>(k, ids, &mut rng).unwrap();
            let shares: Vec<_> = shares
                .into_iter()
                .map(|s| tcrypto::ed25519::KeyShare::from_dkg(s).unwrap())
                .collect();
            let pk = tcrypto::ed25519::PublicKeySet::from_dkg(set).unwrap();
            algo::ed25519_bundles(&pk, &shares)
        }
        other => panic!("{other:?}"),
    };
    bundles
        .into_iter()
        .map(|b| (usize::from(b.info.signer.get()) - 1, b))
        .collect()
}

/// A scratch directory.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tcrypto-net-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const BIN: &str = env!("CARGO_BIN_EXE_tcrypto-node");
const PASS: &str = "multi-process test passphrase";

#[path = "../../src/testing.rs"]
pub mod testing;
pub use testing::NodeProc;

/// Initialises node `i + 1` under `dir` on `127.0.0.{2 + i}` (see [`NodeProc::create`]).
pub fn node_proc(dir: &std::path::Path, i: usize, coordinator: &TlsIdentity) -> NodeProc {
    NodeProc::create(std::path::Path::new(BIN), PASS, dir, i, 2, coordinator)
}

/// `n` started node processes that pin each other as peers (as DKG needs), in a scratch directory named after
/// `tag`, and a blocking coordinator with `cfg` connected to all of them.
pub fn pinned_cluster(
    tag: &str,
    n: usize,
    cfg: tcrypto_net::coordinator::CoordinatorConfig,
) -> (
    Vec<NodeProc>,
    tcrypto_net::client::blocking::BlockingCluster,
    TlsIdentity,
) {
    let dir = scratch(tag);
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..n).map(|i| node_proc(&dir, i, &coordinator)).collect();
    testing::pin_peers(&nodes);
    for node in &mut nodes {
        node.start();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cluster =
        tcrypto_net::client::blocking::BlockingCluster::connect_tls(&coordinator, &addrs, cfg).unwrap();
    assert_eq!(cluster.connect(std::time::Duration::from_secs(20)), n);
    (nodes, cluster, coordinator)
}

/// `n` started `tcrypto-node serve` processes (in a scratch directory named after `tag`) accepting `coordinator`,
/// and their addresses and identities for a coordinator.
pub fn start_node_processes(
    tag: &str,
    n: usize,
    coordinator: &TlsIdentity,
) -> (Vec<NodeProc>, Vec<(SocketAddr, NodePublic)>) {
    let dir = scratch(tag);
    let mut nodes: Vec<NodeProc> = (0..n).map(|i| node_proc(&dir, i, coordinator)).collect();
    for node in &mut nodes {
        node.start();
    }
    let addrs = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    (nodes, addrs)
}

/// `n` in-memory signer nodes `node1..` (no disk store), each pinning the others as peers, with their public
/// identities.
pub fn memory_nodes(
    n: usize,
) -> (
    Vec<std::sync::Arc<tcrypto_net::node::SignerNode>>,
    Vec<NodePublic>,
) {
    let (nodes, publics, _) = memory_nodes_with_identities(n);
    (nodes, publics)
}

/// [`memory_nodes`] and the nodes' secret identities (to restart a node with the same identity).
#[allow(clippy::type_complexity)]
pub fn memory_nodes_with_identities(
    n: usize,
) -> (
    Vec<std::sync::Arc<tcrypto_net::node::SignerNode>>,
    Vec<NodePublic>,
    Vec<std::sync::Arc<tcrypto_net::transport::identity::NodeIdentity>>,
) {
    use std::sync::Arc;
    let mut nodes = Vec::new();
    let mut publics = Vec::new();
    let mut identities = Vec::new();
    for i in 1..=n {
        let id = Arc::new(
            tcrypto_net::transport::identity::NodeIdentity::generate(&format!("node{i}"), &mut rand::rng())
                .unwrap(),
        );
        identities.push(id.clone());
        publics.push(id.public());
        nodes.push(Arc::new(tcrypto_net::node::SignerNode::new(
            id,
            None,
            Arc::new(tcrypto_net::node::audit::MemoryAudit::default()),
            tcrypto_net::node::replay::ReplayGuard::default(),
        )));
    }
    for node in &nodes {
        node.set_peers(publics.clone());
    }
    (nodes, publics, identities)
}

/// Signs with the first round of requests sent to the nodes in `first`: every other node is held back (excluded)
/// while the signature starts and readmitted right after, so it still serves as a replacement. Byzantine tests use
/// it so that the tampering node is asked whatever the health-based choice would have been.
pub fn sign_asking_first<E: tcrypto_net::client::Engine>(
    c: &tcrypto_net::client::Cluster<E>,
    key: tcrypto::KeyId,
    mechanism: Mechanism,
    first: &[usize],
) -> Result<tcrypto_net::coordinator::Signature, tcrypto_net::client::ClusterError> {
    let op = c.engine().submit(|co, now, unix| {
        let health = co.health();
        let held: Vec<usize> = (0..health.len())
            .filter(|i| !first.contains(i) && health[*i].excluded.is_none())
            .collect();
        for &i in &held {
            co.exclude(i, "held back by the test");
        }
        let op = co.start_sign(key, mechanism, now, unix, &mut rand::rng());
        for &i in &held {
            co.readmit(i);
        }
        op
    });
    c.wait_signature(op)
}

/// A fresh `openssl genrsa BITS` key (PKCS#8 PEM, ordinary primes) at `dir/NAME.pem` and its public key at
/// `dir/NAME.pub.pem`: the kind of key operators bring. Takes well under a second for 2048 bits.
pub fn openssl_genrsa(dir: &std::path::Path, name: &str, bits: u32) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    run_ok(
        std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg(bits.to_string()),
    );
    run_ok(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
    );
    (key, public)
}

/// Runs `cmd`, panicking with its output unless it exits 0.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `openssl dgst -sha256 -verify PUBLIC -signature SIG MESSAGE`, with files written under `dir`.
pub fn openssl_verifies_sha256(dir: &std::path::Path, public: &std::path::Path, message: &[u8], sig: &[u8]) {
    let m = dir.join("openssl-message");
    let s = dir.join("openssl-signature");
    std::fs::write(&m, message).unwrap();
    std::fs::write(&s, sig).unwrap();
    run_ok(
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(public)
            .arg("-signature")
            .arg(&s)
            .arg(&m),
    );
}
