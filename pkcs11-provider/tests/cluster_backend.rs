//! The module's cluster backend against five real `tcrypto-node` processes on 127.0.0.x with mutual TLS, loaded
//! through `cryptoki` as a host loads it: RSA key generation (dealt from committed test primes), signing with
//! PKCS#1 v1.5 and PSS checked by the `rsa` crate, signing with two of five nodes killed, destroy deleting the
//! shares on the nodes, and destroy with two nodes down leaving their shares as pending deletions that the next
//! `C_Initialize` carries out.
#![allow(clippy::unwrap_used)]
// The only unsafe here: setting the configuration variable before the module is loaded.
#![allow(unsafe_code)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{SO_PIN, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::Digest as _;
use tcrypto_net::blocking::BlockingCluster;
use tcrypto_net::config::decode_public;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::identity::{NodePublic, TlsIdentity};
use tcrypto_net::wire::{RequestBody, ResponseBody};

const PASS: &str = "cluster-backend-test-passphrase";

/// The `tcrypto-node` binary of this workspace, built (or found up to date) by cargo in this target directory.
fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => "dev".to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "tcrypto-net",
            "--bin",
            "tcrypto-node",
            // Same features as `cargo test --workspace --all-features`: this build replaces the binary that
            // tcrypto-net's own tests run, so it must keep every subcommand (the key ceremony is behind `dealer`).
            "--all-features",
            "--profile",
            &profile,
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of tcrypto-node failed");
    let bin = profile_dir.join("tcrypto-node");
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

struct Node {
    bin: PathBuf,
    config: PathBuf,
    data: PathBuf,
    addr: SocketAddr,
    public: NodePublic,
    child: Option<Child>,
}

impl Node {
    fn create(bin: &Path, dir: &Path, i: usize, coordinator: &TlsIdentity) -> Self {
        let ip = format!("127.0.0.{}", 20 + i);
        let port = TcpListener::bind((ip.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let data = dir.join(format!("node{}", i + 1));
        let config = dir.join(format!("node{}.toml", i + 1));
        std::fs::write(
            &config,
            format!(
                "name = \"node{}\"\nlisten = \"{addr}\"\ndata_dir = \"{}\"\n\n[[coordinators]]\nname = \"p11\"\nspki_sha256 = \"{}\"\n",
                i + 1,
                data.display(),
                coordinator.fingerprint()
            ),
        )
        .unwrap();
        let out = Command::new(bin)
            .args([
                "init",
                "--config",
                config.to_str().unwrap(),
                "--insecure-fast-kdf",
            ])
            .env("TCRYPTO_NODE_PASSPHRASE", PASS)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let public = decode_public(&std::fs::read_to_string(data.join("node.pub")).unwrap()).unwrap();
        Self {
            bin: bin.to_path_buf(),
            config,
            data,
            addr,
            public,
            child: None,
        }
    }

    fn start(&mut self) {
        let mut child = Command::new(&self.bin)
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .env("TCRYPTO_NODE_PASSPHRASE", PASS)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("node did not start");
        assert!(line.contains("listening on"), "{line}");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

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

fn rsa_public(session: &cryptoki::session::Session, h: cryptoki::object::ObjectHandle) -> rsa::PublicKey {
    let attrs = session
        .get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
        .unwrap();
    let (Attribute::Modulus(n), Attribute::PublicExponent(e)) = (&attrs[0], &attrs[1]) else {
        panic!("{attrs:?}")
    };
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice(n, (n.len() * 8) as u32).unwrap(),
        rsa::BoxedUint::from_be_slice(e, (e.len() * 8) as u32).unwrap(),
    )
    .unwrap()
}

#[test]
fn cluster_backend_generates_signs_survives_two_dead_nodes_and_destroys_shares_on_the_nodes() {
    let bin = node_binary();
    let dir = common::scratch_dir("cluster-backend");
    let coordinator = TlsIdentity::generate("p11-coordinator").unwrap();
    let mut nodes: Vec<Node> = (0..5)
        .map(|i| Node::create(&bin, &dir, i, &coordinator))
        .collect();
    for n in &mut nodes {
        n.start();
    }

    // The coordinator file in tcrypto-net's own format, and the module configuration pointing at it.
    std::fs::write(dir.join("coordinator.id"), &*coordinator.to_secret_bytes()).unwrap();
    // (tcrypto-net reads `identity` relative to the working directory: give it absolute.)
    let mut coord = format!(
        "identity = \"{}\"\nrequest_timeout_ms = 3000\n",
        dir.join("coordinator.id").display()
    );
    for n in &nodes {
        coord.push_str(&format!(
            "[[nodes]]\naddress = \"{}\"\npublic = \"{}\"\n",
            n.addr,
            std::fs::read_to_string(n.data.join("node.pub")).unwrap().trim()
        ));
    }
    std::fs::write(dir.join("coordinator.toml"), coord).unwrap();
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

    // EC key generation is refused, not faked.
    assert!(
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(vec![
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
                ])],
                &[Attribute::Sign(true)],
            )
            .is_err()
    );

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

    let sign_all = |tag: &[u8]| {
        let msg = [b"cluster backend ".as_slice(), tag].concat();
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

    nodes[0].kill();
    nodes[3].kill();
    sign_all(b"two of five down");

    // Back up, then destroy: every node drops its share.
    nodes[0].start();
    nodes[3].start();
    keys_on_all_nodes(&observer, 5);
    // The module's driver reconnects (back-off at most 2 s) while callers drive it.
    for i in 0u8..12 {
        session.sign(&Mechanism::Sha256RsaPkcs, private, &[i]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    session.destroy_object(private).unwrap();
    session.destroy_object(public).unwrap();
    for (i, keys) in keys_on_all_nodes(&observer, 5).iter().enumerate() {
        assert!(!keys.contains(&key), "node {i} still holds the destroyed key");
    }

    // Destroy while two nodes are down: the object goes and the three live nodes drop their shares, but the call
    // says CKR_DEVICE_ERROR (ulDeviceError = 2) and the store keeps a pending deletion for each down node.
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
    assert!(
        session
            .find_objects(&[
                Attribute::Id(b"c2".to_vec()),
                Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY)
            ])
            .unwrap()
            .is_empty()
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

    // The nodes come back still holding their shares (nothing was dropped silently); the next C_Initialize (as in
    // a new process) deletes them and clears the records.
    nodes[1].start();
    nodes[4].start();
    let back = keys_on_all_nodes(&observer, 5);
    assert_eq!((&back[1][..], &back[4][..]), (&[key2][..], &[key2][..]));
    let p11 = Pkcs11::new(common::module_path()).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    for (i, keys) in keys_on_all_nodes(&observer, 5).iter().enumerate() {
        assert!(keys.is_empty(), "node {i} still holds {keys:?}");
    }
    p11.finalize().unwrap();
    assert!(pending_nodes().is_empty());
}
