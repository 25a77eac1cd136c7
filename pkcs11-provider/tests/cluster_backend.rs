//! The module's cluster backend against five real `tcrypto-node` processes on 127.0.0.x with mutual TLS, loaded
//! through `cryptoki` as a host loads it: RSA key generation (dealt from committed test primes), signing with
//! PKCS#1 v1.5 and PSS checked by the `rsa` crate, Ed25519 key generation by DKG among the nodes and FROST
//! signatures checked by `ed25519-dalek` and (through `pkcs11-tool`) by `openssl`, P-256 key generation by DKG and
//! threshold ECDSA with every ECDSA mechanism checked by `p256` (also from 8 threads at once) and, through
//! `pkcs11-tool` and `p11tool`, by `openssl` and GnuTLS, signing with two of five nodes killed (P-256 from fresh
//! `pkcs11-tool` processes with the `k`-online protocol, checked by openssl), fresh `pkcs11-tool` processes signing
//! while one node hangs (SIGSTOP), destroy deleting the
//! shares on the nodes, and destroy with two nodes down leaving their shares as pending deletions (the object
//! stays, unable to sign) that the next process carries out at the user's `C_Login`, removing the object. One cluster of five daemons serves the whole file (starting it is the slow part).
#![allow(clippy::unwrap_used)]
// The only unsafe here: setting the configuration variable before the module is loaded.
#![allow(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tool::{Tool, s};
use common::{SO_PIN, USER_PIN, node_binary, rsa_public};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::Digest as _;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::testing::{NodeProc, pin_peers, write_coordinator_config};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{RequestBody, ResponseBody};

const PASS: &str = "cluster-backend-test-passphrase";

/// The keys each node reports holding (`None` for a node that does not answer).
fn keys_on_nodes(cluster: &BlockingCluster, n: usize) -> Vec<Option<Vec<tcrypto::KeyId>>> {
    (0..n)
        .map(|i| match cluster.request(i, RequestBody::ListKeys) {
            Ok(ResponseBody::Keys(keys)) => Some(keys.into_iter().map(|k| k.key).collect()),
            other => {
                eprintln!("node {i}: {other:?}");
                None
            }
        })
        .collect()
}

/// [`keys_on_nodes`] once every node answers (connections to restarted nodes are re-established on demand).
fn keys_on_all_nodes(cluster: &BlockingCluster, n: usize) -> Vec<Vec<tcrypto::KeyId>> {
    for _ in 0..50 {
        let all: Option<Vec<_>> = keys_on_nodes(cluster, n).into_iter().collect();
        if let Some(all) = all {
            return all;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("not every node answered within 10 s");
}

/// The Ed25519 public key of a key pair, from `CKA_EC_POINT` (a DER OCTET STRING of the 32-byte encoding).
fn ed25519_verifier(
    session: &cryptoki::session::Session,
    h: cryptoki::object::ObjectHandle,
) -> ed25519_dalek::VerifyingKey {
    let attrs = session.get_attributes(h, &[AttributeType::EcPoint]).unwrap();
    let Attribute::EcPoint(point) = &attrs[0] else {
        panic!("{attrs:?}")
    };
    assert_eq!(&point[..2], &[0x04, 0x20]);
    ed25519_dalek::VerifyingKey::from_bytes(&point[2..].try_into().unwrap()).unwrap()
}

/// `pkcs11-tool -m EDDSA` with the key of id "e1" (hex 6531), verified by `openssl pkeyutl` against the public key
/// pkcs11-tool reads back from the token.
fn pkcs11_tool_eddsa_verifies_with_openssl(dir: &Path) {
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
            panic!("{program} must be installed (.ci/run installs opensc and openssl): {e}")
        });
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let module = common::module_path();
    let module = module.to_str().unwrap();
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    std::fs::write(
        dir.join("tool-msg"),
        b"signed by pkcs11-tool through the cluster\n",
    )
    .unwrap();
    run(
        "pkcs11-tool",
        &[
            "--module",
            module,
            "--login",
            "--pin",
            USER_PIN,
            "--sign",
            "--id",
            "6531",
            "-m",
            "EDDSA",
            "-i",
            &path("tool-msg"),
            "-o",
            &path("tool-sig"),
        ],
    );
    run(
        "pkcs11-tool",
        &[
            "--module",
            module,
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "6531",
            "-o",
            &path("tool-ed.pem"),
        ],
    );
    run(
        "openssl",
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &path("tool-ed.pem"),
            "-rawin",
            "-in",
            &path("tool-msg"),
            "-sigfile",
            &path("tool-sig"),
        ],
    );
}

/// Every node's operator writes `policy` (the node's `policy_file`, loaded on SIGHUP); returns once every node
/// answers a request for `key` as `refused` says (a policy refusal or not).
fn set_policy(
    nodes: &[NodeProc],
    policy: &str,
    observer: &BlockingCluster,
    key: tcrypto::KeyId,
    refused: bool,
) {
    for n in nodes {
        n.set_policy(policy);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for i in 0..nodes.len() {
        loop {
            let answer = observer.request(
                i,
                RequestBody::Sign {
                    key,
                    // Not an RSA mechanism: without a policy the node refuses it too, and signs nothing.
                    mechanism: tcrypto_net::transport::wire::Mechanism::Ed25519 {
                        message: b"policy loaded?".to_vec(),
                    },
                },
            );
            let is_refused = matches!(&answer, Err(tcrypto_net::client::ClusterError::Node { detail, .. }) if detail.starts_with("PolicyRefused"));
            if is_refused == refused {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node{}: policy not in force: {answer:?}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Nodes whose policy lets the RSA and P-256 keys sign data only: the module forwards the data of
/// CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS and CKM_ECDSA_SHA256 (signed, checked by the `rsa` and `p256` crates
/// and, through `pkcs11-tool -m SHA256-RSA-PKCS` and `-m ECDSA-SHA256`, by openssl), while CKM_RSA_PKCS and
/// CKM_ECDSA (a digest only) are refused with CKR_KEY_FUNCTION_NOT_PERMITTED. The Ed25519 key is an example.com
/// ZSK (`dnssec-rrsig` with a `[key.dnssec]` section): `pkcs11-tool -m EDDSA` signs the RRSIG data of an A record
/// of www.example.com (openssl verifies), and the same consumer is refused (CKR_KEY_FUNCTION_NOT_PERMITTED) for
/// arbitrary bytes and for an RRSIG of example.net, each refusal in the nodes' audit logs with its rule. The nodes'
/// audit logs show the data mechanisms. Then the policy is relaxed again for the rest of the test.
fn hosts_that_send_data_sign_with_policy_bound_keys(
    nodes: &[NodeProc],
    observer: &BlockingCluster,
    tool: &Tool,
    session: &cryptoki::session::Session,
    (rsa_key, rsa_private, pk): (tcrypto::KeyId, cryptoki::object::ObjectHandle, &rsa::PublicKey),
    (ec_key, ec_private, ec_vk): (
        tcrypto::KeyId,
        cryptoki::object::ObjectHandle,
        &p256::ecdsa::VerifyingKey,
    ),
    (ed_key, ed_vk): (tcrypto::KeyId, &ed25519_dalek::VerifyingKey),
) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let everything = "[default]\nmechanisms = [\"rsa-pkcs1v15\", \"rsa-pkcs1v15-digestinfo\", \"rsa-pss\", \"ecdsa\", \
                      \"ed25519\", \"rsa-pkcs1v15-data\", \"rsa-pss-data\", \"ecdsa-data\"]\n";
    let policy = format!(
        "{everything}\n[[key]]\nkey = \"{rsa_key}\"\nmechanisms = [\"rsa-pkcs1v15-data\", \"rsa-pss-data\"]\n\n\
         [[key]]\nkey = \"{ec_key}\"\nmechanisms = [\"ecdsa-data\"]\n\n\
         [[key]]\nkey = \"{ed_key}\"\nmechanisms = [\"dnssec-rrsig\"]\n[key.dnssec]\nzones = [\"example.com.\"]\n\
         role = \"zsk\"\nalgorithm = 15\nmax_validity = \"30d\"\nmax_inception_age = \"2h\"\n\
         max_expiration_ahead = \"31d\"\n"
    );
    set_policy(nodes, &policy, observer, rsa_key, true);
    let msg = b"a document the nodes read before they sign it".to_vec();
    let digest = sha2::Sha256::digest(&msg);
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, rsa_private, &msg)
        .unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
        .unwrap();
    let params = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcsPss(params), rsa_private, &msg)
        .unwrap();
    pk.verify(rsa::Pss::<sha2::Sha256>::new_with_salt(32), &digest, &sig)
        .unwrap();
    let sig = session.sign(&Mechanism::EcdsaSha256, ec_private, &msg).unwrap();
    ec_vk
        .verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&sig).unwrap())
        .unwrap();
    // A digest only: refused by the nodes' policy.
    let mut di = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ];
    di.extend_from_slice(&digest);
    for (mech, key, data) in [
        (Mechanism::RsaPkcs, rsa_private, di.clone()),
        (Mechanism::Ecdsa, ec_private, digest.to_vec()),
    ] {
        match session.sign(&mech, key, &data) {
            Err(cryptoki::error::Error::Pkcs11(rv, _)) => {
                assert_eq!(rv, cryptoki::error::RvError::KeyFunctionNotPermitted, "{mech:?}");
            }
            other => panic!("{mech:?} over a bare digest: {other:?}"),
        }
    }
    // pkcs11-tool, a consumer that hands the module the data: signed, and openssl verifies.
    let data = tool.path("policy-data.txt");
    std::fs::write(&data, &msg).unwrap();
    for (id, mechanism, name, extra) in [
        ("6331", "SHA256-RSA-PKCS", "policy-rsa", &[][..]),
        (
            "7031",
            "ECDSA-SHA256",
            "policy-ec",
            &["--signature-format", "openssl"][..],
        ),
    ] {
        let sig = tool.path(&format!("{name}.sig"));
        tool.sign(id, mechanism, &data, &sig, extra);
        let pem = tool.public_pem(id, name);
        let out = tool.openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            s(&pem),
            "-signature",
            s(&sig),
            s(&data),
        ]);
        assert!(out.contains("Verified OK"), "{mechanism}: {out}");
    }
    let audited = |mechanism: &str| {
        nodes
            .iter()
            .filter(|n| {
                std::fs::read_to_string(n.data.join("audit.log"))
                    .unwrap()
                    .lines()
                    .any(|l| l.contains(&format!("mechanism={mechanism} ")) && l.contains("outcome=ok"))
            })
            .count()
    };
    assert!(audited("rsa-pkcs1v15-data") >= 3 && audited("rsa-pss-data") >= 3 && audited("ecdsa-data") >= 3);
    pkcs11_tool_eddsa_signs_only_what_the_zsk_policy_allows(nodes, tool, ed_vk);
    set_policy(nodes, everything, observer, rsa_key, false);
}

/// `pkcs11-tool -m EDDSA` (the data itself goes to the nodes) with the Ed25519 key of id "e1" (hex 6531), an
/// example.com ZSK by the nodes' policy: the RRSIG data of www.example.com A is signed and openssl verifies it;
/// arbitrary bytes and an RRSIG of example.net are refused with CKR_KEY_FUNCTION_NOT_PERMITTED, and the nodes'
/// audit logs name the rule.
fn pkcs11_tool_eddsa_signs_only_what_the_zsk_policy_allows(
    nodes: &[NodeProc],
    tool: &Tool,
    vk: &ed25519_dalek::VerifyingKey,
) {
    use tcrypto_net::node::policy::{RrsigBuilder, key_tag, rrsig_time};
    // The key tag of the key's DNSKEY as a ZSK (flags 256, algorithm 15), which each node derives too.
    let tag = key_tag(256, 15, vk.as_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rrsig = |zone: &str, owner: &str| {
        RrsigBuilder::new(zone, owner, 1, 15)
            .unwrap()
            .signed(rrsig_time(now, -3600), rrsig_time(now, 14 * 86_400), tag)
            .rdata(&[192, 0, 2, 1])
            .build()
    };
    let allowed = tool.path("policy-ed-rrsig.bin");
    std::fs::write(&allowed, rrsig("example.com.", "www.example.com.")).unwrap();
    let sig = tool.path("policy-ed.sig");
    tool.sign("6531", "EDDSA", &allowed, &sig, &[]);
    // The public key the token reports (CKA_EC_POINT), as openssl reads it.
    let pem = tool.path("policy-ed.pem");
    let text = ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(
        vk,
        ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF,
    )
    .unwrap();
    std::fs::write(&pem, text).unwrap();
    let out = tool.openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&pem),
        "-rawin",
        "-in",
        s(&allowed),
        "-sigfile",
        s(&sig),
    ]);
    assert!(out.contains("Signature Verified Successfully"), "{out}");
    for (name, data, rule) in [
        ("arbitrary", b"pay 1000 to mallory".to_vec(), "malformed-data"),
        (
            "example-net",
            rrsig("example.net.", "www.example.net."),
            "zone-not-allowed",
        ),
    ] {
        let file = tool.path(&format!("policy-ed-{name}.bin"));
        std::fs::write(&file, &data).unwrap();
        let sig = tool.path(&format!("policy-ed-{name}.sig"));
        let args = Tool::sign_args("6531", "EDDSA", &file, &sig, &[]);
        let out = tool.p11_fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.contains("CKR_KEY_FUNCTION_NOT_PERMITTED"), "{name}: {out}");
        let audited = nodes
            .iter()
            .filter(|n| {
                std::fs::read_to_string(n.data.join("audit.log"))
                    .unwrap()
                    .lines()
                    .any(|l| l.contains("outcome=error") && l.contains(&format!(" rule={rule} ")))
            })
            .count();
        assert!(audited >= 1, "{name}: no node audited rule={rule}");
    }
}

/// The one key every node holds besides `known` (the key a key generation just made on all five nodes).
fn only_new_key(cluster: &BlockingCluster, known: &[tcrypto::KeyId]) -> tcrypto::KeyId {
    let held = keys_on_all_nodes(cluster, 5);
    let new: Vec<_> = held[0].iter().filter(|k| !known.contains(k)).copied().collect();
    assert_eq!(new.len(), 1, "{held:?}");
    for (i, keys) in held.iter().enumerate() {
        assert!(keys.contains(&new[0]), "node {i} holds a share of the new key");
    }
    new[0]
}

/// 8 threads, each with its own session, sign with the P-256 key at once; `p256` checks every signature.
fn p256_signs_from_eight_threads_at_once(
    p11: &Pkcs11,
    slot: cryptoki::slot::Slot,
    private: cryptoki::object::ObjectHandle,
    vk: &p256::ecdsa::VerifyingKey,
) {
    use p256::ecdsa::signature::Verifier as _;
    std::thread::scope(|scope| {
        for t in 0..8u8 {
            scope.spawn(move || {
                let mine = p11.open_ro_session(slot).unwrap();
                for i in 0..4u8 {
                    let msg = [b"eight threads".as_slice(), &[t, i]].concat();
                    let sig = mine.sign(&Mechanism::EcdsaSha256, private, &msg).unwrap();
                    vk.verify(&msg, &p256::ecdsa::Signature::from_slice(&sig).unwrap())
                        .unwrap();
                }
            });
        }
    });
}

/// `count` fresh `pkcs11-tool` processes (each its own coordinator, with an empty presignature pool) sign with the
/// P-256 key of id "p1" (hex 7031) while some nodes are down (`what`, also naming the files), so with the
/// `k`-online protocol (DKLs23); openssl verifies each signature against the public key.
fn fresh_pkcs11_tool_processes_sign_p256(
    tool: &Tool,
    vk: &p256::ecdsa::VerifyingKey,
    count: usize,
    what: &str,
) {
    use p256::pkcs8::EncodePublicKey as _;
    let pem = tool.path("p1-public.pem");
    std::fs::write(&pem, vk.to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap()).unwrap();
    let started = std::time::Instant::now();
    for i in 0..count {
        let data = tool.path(&format!("{what}-{i}.txt"));
        std::fs::write(&data, format!("fresh pkcs11-tool process {i}, {what}\n")).unwrap();
        let sig = tool.path(&format!("{what}-{i}.sig"));
        tool.sign(
            "7031",
            "ECDSA-SHA256",
            &data,
            &sig,
            &["--signature-format", "openssl"],
        );
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&pem)
            .arg("-signature")
            .arg(&sig)
            .arg(&data)
            .output()
            .expect("openssl installed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "signature {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "{count} fresh pkcs11-tool processes signed P-256 ({what}), {:?} each on average (PIN key derivation, \
         connection and one signature; debug build)",
        started.elapsed() / u32::try_from(count).unwrap()
    );
}

#[test]
fn cluster_backend_generates_signs_survives_two_dead_nodes_and_destroys_shares_on_the_nodes() {
    let bin = node_binary();
    let dir = common::scratch_dir("cluster-backend");
    let coordinator = TlsIdentity::generate("p11-coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| NodeProc::create(&bin, PASS, &dir, i, 20, &coordinator))
        .collect();
    // Every node pins the others as peers (the DKG's sealed messages travel between them through the coordinator).
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    // The coordinator file in tcrypto-net's own format, and the module configuration pointing at it.
    write_coordinator_config(&dir, &coordinator, &nodes, 10_000);
    let primes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa-test-primes.txt");
    let cfg = dir.join("pkcs11.toml");
    std::fs::write(
        &cfg,
        format!(
            "store = \"objects.sqlite\"\nbackend = \"cluster\"\n[[tokens]]\nlabel = \"cluster\"\n[cluster]\ncoordinator = \"coordinator.toml\"\nthreshold = 3\nrsa_test_primes = \"{}\"\n",
            primes.display()
        ),
    )
    .unwrap();
    // SAFETY: set once before the module is loaded; nothing else in this test process changes it.
    unsafe { std::env::set_var("TCHSM_PKCS11_CONFIG", &cfg) };

    let p11 = Pkcs11::new(common::module_path()).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11.get_slots_with_token().unwrap()[0];
    p11.init_token(slot, &AuthPin::new(SO_PIN.into()), "cluster")
        .unwrap();
    let so = p11.open_rw_session(slot).unwrap();
    so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    so.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    so.close().unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();

    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Id(b"c1".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Id(b"c1".to_vec()),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    let pk = rsa_public(&session, public);
    assert_eq!(rsa::traits::PublicKeyParts::size(&pk), 256);

    // A second coordinator with the same pinned identity to look at the nodes' key lists.
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let observer = BlockingCluster::connect_tls(&coordinator, &addrs, CoordinatorConfig::default()).unwrap();
    assert_eq!(observer.connect(Duration::from_secs(20)), 5);
    let held = keys_on_all_nodes(&observer, 5);
    let key = held[0][0];
    for (i, keys) in held.iter().enumerate() {
        assert_eq!(keys, &[key], "node {i} holds one share of the new key");
    }

    // Ed25519: born by DKG among the five nodes, signed with FROST; every node holds a share.
    let (ed_public, ed_private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(b"\x13\x0cedwards25519".to_vec()),
                Attribute::Id(b"e1".to_vec()),
                Attribute::Label(b"ed".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Id(b"e1".to_vec()),
                Attribute::Label(b"ed".to_vec()),
            ],
        )
        .unwrap();
    let ed_key = *keys_on_all_nodes(&observer, 5)[0]
        .iter()
        .find(|k| **k != key)
        .unwrap();
    for (i, keys) in keys_on_all_nodes(&observer, 5).iter().enumerate() {
        assert!(
            keys.contains(&ed_key),
            "node {i} holds a share of the Ed25519 key"
        );
    }
    let vk = ed25519_verifier(&session, ed_public);
    let eddsa = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));

    let sign_all = |tag: &[u8]| {
        let msg = [b"cluster backend ".as_slice(), tag].concat();
        let sig = session.sign(&eddsa, ed_private, &msg).unwrap();
        vk.verify_strict(&msg, &ed25519_dalek::Signature::from_slice(&sig).unwrap())
            .unwrap();
        assert!(
            vk.verify_strict(b"x", &ed25519_dalek::Signature::from_slice(&sig).unwrap())
                .is_err()
        );
        let digest = sha2::Sha256::digest(&msg);
        let sig = session.sign(&Mechanism::Sha256RsaPkcs, private, &msg).unwrap();
        pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
            .unwrap();
        let params = PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32.into(),
        };
        let sig = session
            .sign(&Mechanism::Sha256RsaPkcsPss(params), private, &msg)
            .unwrap();
        pk.verify(rsa::Pss::<sha2::Sha256>::new_with_salt(32), &digest, &sig)
            .unwrap();
        let mut di = vec![
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
            0x00, 0x04, 0x20,
        ];
        di.extend_from_slice(&digest);
        let sig = session.sign(&Mechanism::RsaPkcs, private, &di).unwrap();
        pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
            .unwrap();
        assert!(
            pk.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(b"x"),
                &sig
            )
            .is_err()
        );
    };
    sign_all(b"all five up");
    // pkcs11-tool (its own process and coordinator connection) signs with the Ed25519 key; openssl verifies.
    pkcs11_tool_eddsa_verifies_with_openssl(&dir);

    // P-256: born by DKG among the five nodes, threshold ECDSA from the coordinator's presignature pool.
    let (ec_public, ec_private, ec_vk) = common::p256_key_pair(&session, b"p1");
    let ec_key = only_new_key(&observer, &[key, ed_key]);
    common::p256_signs_with_every_ecdsa_mechanism(&session, ec_public, ec_private, &ec_vk, b"cluster");
    p256_signs_from_eight_threads_at_once(&p11, slot, ec_private, &ec_vk);

    // The operator refreshes the three keys from another coordinator (as `tcrypto-ctl refresh` does) while the
    // module's session stays open: the same objects sign, under the same public keys, checked against the keys
    // read before; a fresh pkcs11-tool process signs too.
    observer.refresh_keys().unwrap();
    observer.refresh(key).unwrap();
    observer.refresh(ed_key).unwrap();
    observer.refresh(ec_key).unwrap();
    sign_all(b"after a refresh");
    common::p256_signs_with_every_ecdsa_mechanism(&session, ec_public, ec_private, &ec_vk, b"reshared");
    assert_eq!(
        rsa_public(&session, public),
        pk,
        "the module's RSA public key changed"
    );
    pkcs11_tool_eddsa_verifies_with_openssl(&dir);
    // pkcs11-tool generates a second P-256 key (DKG driven from its own process) and signs with it, openssl
    // verifies; p11tool signs and verifies too. Then that key goes, so each node holds the test's keys only.
    let tool = Tool::with_config(dir.clone(), cfg.clone());
    tool.p256_keypairgen_sign_and_verify_with_openssl_and_p11tool("cluster", "7032", "p256-tool");
    let tool_key = only_new_key(&observer, &[key, ed_key, ec_key]);
    for h in session.find_objects(&[Attribute::Id(b"p2".to_vec())]).unwrap() {
        session.destroy_object(h).unwrap();
    }
    for (i, keys) in keys_on_all_nodes(&observer, 5).iter().enumerate() {
        assert!(
            !keys.contains(&tool_key),
            "node {i} still holds the pkcs11-tool key"
        );
    }

    hosts_that_send_data_sign_with_policy_bound_keys(
        &nodes,
        &observer,
        &tool,
        &session,
        (key, private, &pk),
        (ec_key, ec_private, &ec_vk),
        (ed_key, &vk),
    );

    nodes[0].kill();
    nodes[3].kill();
    sign_all(b"two of five down");
    fresh_pkcs11_tool_processes_sign_p256(&tool, &ec_vk, 24, "two-nodes-down");

    // Back up, then destroy: every node drops its share.
    nodes[0].start();
    nodes[3].start();
    keys_on_all_nodes(&observer, 5);
    // A hung node (SIGSTOP: its kernel still takes TCP connections, no TLS handshake completes) does not hold up
    // a fresh process's C_Login and C_Sign: they go on with the four others (request timeout 10 s here).
    nodes[2].freeze(true);
    fresh_pkcs11_tool_processes_sign_p256(&tool, &ec_vk, 2, "node3-hung");
    nodes[2].freeze(false);
    keys_on_all_nodes(&observer, 5);
    // The module's driver reconnects (back-off at most 2 s) while callers drive it.
    for i in 0u8..12 {
        session.sign(&Mechanism::Sha256RsaPkcs, private, &[i]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }

    // Every node killed (kill -9) while the module keeps being asked: requests fail at once (the nodes are down),
    // and once the nodes are back signing resumes by itself, without a new C_Initialize.
    for n in &mut nodes {
        n.kill();
    }
    for i in 0u8..3 {
        session
            .sign(&Mechanism::Sha256RsaPkcs, private, &[b'd', i])
            .unwrap_err();
    }
    // A fresh process (pkcs11-tool) cannot even learn the keys now: the key is out of reach, not gone, so the
    // answer is CKR_DEVICE_ERROR, never CKR_KEY_HANDLE_INVALID.
    std::fs::write(dir.join("down-msg"), b"nodes down").unwrap();
    let out = Command::new("pkcs11-tool")
        .args([
            "--module",
            common::module_path().to_str().unwrap(),
            "--login",
            "--pin",
            USER_PIN,
        ])
        .args(["--sign", "--id", "6531", "-m", "EDDSA", "-i"])
        .arg(dir.join("down-msg"))
        .arg("-o")
        .arg(dir.join("down-sig"))
        .env("TCHSM_PKCS11_CONFIG", &cfg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("CKR_DEVICE_ERROR") && !text.contains("KEY_HANDLE_INVALID"),
        "{text}"
    );
    for n in &mut nodes {
        n.start();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = session.sign(&Mechanism::Sha256RsaPkcs, private, b"back") {
        assert!(
            std::time::Instant::now() < deadline,
            "signing did not resume: {e:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sign_all(b"after every node was down");
    session.destroy_object(private).unwrap();
    session.destroy_object(public).unwrap();
    session.destroy_object(ed_private).unwrap();
    session.destroy_object(ec_private).unwrap();
    session.destroy_object(ec_public).unwrap();
    for (i, keys) in keys_on_all_nodes(&observer, 5).iter().enumerate() {
        assert!(keys.is_empty(), "node {i} still holds destroyed keys {keys:?}");
    }

    // Destroy while two nodes are down: the three live nodes drop their shares, but the call says CKR_DEVICE_ERROR
    // (ulDeviceError = 2), the store keeps a pending deletion for each down node, and the object stays (it can no
    // longer sign) until those nodes have deleted their shares too.
    let (_, private2) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::Token(true), Attribute::ModulusBits(2048.into())],
            &[Attribute::Token(true), Attribute::Id(b"c2".to_vec())],
        )
        .unwrap();
    let key2 = keys_on_all_nodes(&observer, 5)[0][0];
    nodes[1].kill();
    nodes[4].kill();
    let err = session.destroy_object(private2).unwrap_err();
    assert!(
        matches!(
            err,
            cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::DeviceError, _)
        ),
        "{err:?}"
    );
    assert_eq!(session.get_session_info().unwrap().device_error(), 2);
    let c2 = [
        Attribute::Id(b"c2".to_vec()),
        Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
    ];
    assert_eq!(session.find_objects(&c2).unwrap(), [private2]);
    let err = session
        .sign(&Mechanism::Sha256RsaPkcs, private2, b"destroyed")
        .unwrap_err();
    assert!(
        matches!(
            err,
            cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::KeyFunctionNotPermitted, _)
        ),
        "{err:?}"
    );
    let live = keys_on_nodes(&observer, 5);
    for i in [0, 2, 3] {
        assert_eq!(
            live[i].as_deref(),
            Some(&[][..]),
            "live node {i} deleted its share"
        );
    }
    drop(session);
    p11.finalize().unwrap();
    // The store is read only while the module is finalized: the loaded module has its own bundled SQLite, and two
    // SQLite copies in one process must not hold the same database open (their POSIX locks would interfere).
    let pending_nodes = || {
        let store = pkcs11_provider::store::Store::open(&dir.join("objects.sqlite")).unwrap();
        let mut p: Vec<_> = store
            .pending_deletions()
            .unwrap()
            .into_iter()
            .map(|p| {
                assert_eq!(p.key.0[1..], key2.0[..]);
                p.node
            })
            .collect();
        p.sort();
        p
    };
    assert_eq!(
        pending_nodes(),
        [nodes[1].public.name.clone(), nodes[4].public.name.clone()]
    );

    // The nodes come back still holding their shares (nothing was dropped silently); the next process deletes
    // them and clears the records once the user's C_Login has opened the coordinator identity (C_Initialize does
    // not connect).
    nodes[1].start();
    nodes[4].start();
    let back = keys_on_all_nodes(&observer, 5);
    assert_eq!((&back[1][..], &back[4][..]), (&[key2][..], &[key2][..]));
    let p11 = Pkcs11::new(common::module_path()).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11.get_slots_with_token().unwrap()[0];
    let session = p11.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    for (i, keys) in keys_on_all_nodes(&observer, 5).iter().enumerate() {
        assert!(keys.is_empty(), "node {i} still holds {keys:?}");
    }
    assert!(
        session.find_objects(&c2).unwrap().is_empty(),
        "the destroyed object went with its last share"
    );
    drop(session);
    p11.finalize().unwrap();
    assert!(pending_nodes().is_empty());
}
