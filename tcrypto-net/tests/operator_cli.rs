//! `tcrypto-ctl` against real `tcrypto-node` daemons: ceremony bundles imported through the coordinator, signatures
//! checked by the `rsa` crate and `ed25519-dalek`, `health` exit codes as a monitor reads them with nodes killed,
//! SIGHUP that leaves the daemon serving, and errors that name the key or file at fault.
#![cfg(feature = "dealer")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;

use common::{NodeProc, node_proc};
use tcrypto_net::node::store::KdfCost;
use tcrypto_net::transport::identity::{SealedTlsIdentity, TlsIdentity};

const CTL: &str = env!("CARGO_BIN_EXE_tcrypto-ctl");
const NODE: &str = env!("CARGO_BIN_EXE_tcrypto-node");
const COORDINATOR_PASS: &str = "operator test passphrase";

/// Three started daemons pinning each other, and a coordinator configuration with a sealed identity.
fn cluster(tag: &str) -> (PathBuf, Vec<NodeProc>, PathBuf) {
    cluster_of(tag, 3)
}

/// [`cluster`] with `n` daemons.
fn cluster_of(tag: &str, n: usize) -> (PathBuf, Vec<NodeProc>, PathBuf) {
    let dir = common::scratch(tag);
    let coordinator = TlsIdentity::generate("ops").unwrap();
    let mut nodes: Vec<NodeProc> = (0..n).map(|i| node_proc(&dir, i, &coordinator)).collect();
    common::testing::pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let sealed =
        SealedTlsIdentity::seal(&coordinator, COORDINATOR_PASS, KdfCost::TESTING, &mut rand::rng()).unwrap();
    std::fs::write(dir.join("coordinator.identity"), sealed.encode()).unwrap();
    std::fs::write(dir.join("coordinator.pass"), format!("{COORDINATOR_PASS}\n")).unwrap();
    let mut text =
        "identity = \"coordinator.identity\"\npassphrase_file = \"coordinator.pass\"\n".to_string();
    for n in &nodes {
        text.push_str(&format!(
            "[[nodes]]\naddress = \"{}\"\npublic = \"{}\"\n",
            n.addr,
            n.public_hex()
        ));
    }
    let config = dir.join("coordinator.toml");
    std::fs::write(&config, text).unwrap();
    (dir, nodes, config)
}

/// The DER inside a `PUBLIC KEY` PEM document.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    data_encoding::BASE64.decode(body.as_bytes()).unwrap()
}

fn ctl(config: &Path, args: &[&str]) -> Output {
    Command::new(CTL)
        .arg("--config")
        .arg(config)
        .args(["--wait", "3"])
        .args(args)
        .env_remove("TCRYPTO_COORDINATOR_PASSPHRASE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "tcrypto-ctl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ceremony_bundles_imported_through_the_coordinator_sign_and_sighup_keeps_the_daemon_serving() {
    let (dir, nodes, config) = cluster("ctl-import");
    let primes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tcrypto/tests/data/safe_primes_1024.txt");
    let ceremony = dir.join("ceremony");
    let mut cmd = Command::new(NODE);
    cmd.args(["ceremony", "--threshold", "2", "--primes"])
        .arg(&primes);
    for n in &nodes {
        cmd.arg("--node").arg(n.data.join("node.pub"));
    }
    let out = cmd.arg("--out").arg(&ceremony).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = std::fs::read_to_string(ceremony.join("key-id"))
        .unwrap()
        .trim()
        .to_string();

    let imported = ok(ctl(&config, &["--tsv", "import", ceremony.to_str().unwrap()]));
    assert_eq!(imported.trim(), key);
    let listed = ok(ctl(&config, &["--tsv", "list"]));
    assert!(
        listed.starts_with(&format!("{key}\trsa\t2048\t2\t3\t")),
        "{listed}"
    );

    // SIGHUP twice: the daemons reload and go on serving.
    for n in &nodes {
        let pid = n.child.as_ref().unwrap().id().to_string();
        for _ in 0..2 {
            assert!(
                Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    let digest = hex::encode(sha2::Sha256::digest(b"operator"));
    let sig_file = dir.join("rsa.sig");
    ok(ctl(
        &config,
        &[
            "sign",
            &key[..12],
            "--mechanism",
            "rsa-pss-sha256",
            "--digest",
            &digest,
            "--out",
            sig_file.to_str().unwrap(),
        ],
    ));
    let pem = ok(ctl(&config, &["export", &key]));
    use rsa::pkcs8::DecodePublicKey as _;
    let verifier = rsa::PublicKey::from_public_key_der(&pem_der(&pem)).unwrap();
    verifier
        .verify(
            rsa::pss::Pss::<sha2::Sha256>::new(),
            &hex::decode(&digest).unwrap(),
            &std::fs::read(&sig_file).unwrap(),
        )
        .unwrap();
    for mut n in nodes {
        assert!(
            n.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "SIGHUP killed a daemon"
        );
    }
}

#[test]
fn health_exit_codes_tell_a_monitor_whether_keys_can_still_sign() {
    let (dir, mut nodes, config) = cluster("ctl-health");
    let key = ok(ctl(
        &config,
        &["--tsv", "create", "--algorithm", "ed25519", "--threshold", "2"],
    ));
    let key = key.trim();
    let message = dir.join("message");
    std::fs::write(&message, b"monitored").unwrap();
    let sig = dir.join("ed.sig");
    ok(ctl(
        &config,
        &[
            "sign",
            key,
            "-m",
            "ed25519",
            "--in",
            message.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
    ));
    let pem = ok(ctl(&config, &["export", key]));
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let vk = ed25519_dalek::VerifyingKey::from_public_key_der(&pem_der(&pem)).unwrap();
    vk.verify_strict(
        b"monitored",
        &ed25519_dalek::Signature::from_slice(&std::fs::read(&sig).unwrap()).unwrap(),
    )
    .unwrap();

    assert_eq!(ctl(&config, &["health"]).status.code(), Some(0));
    nodes[2].kill();
    let out = ctl(&config, &["--tsv", "health"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("node3\tdown"));
    nodes[1].kill();
    let out = ctl(&config, &["--json", "health"]);
    assert_eq!(out.status.code(), Some(4));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], 4);
    assert!(doc["keys_unable_to_sign"][0].as_str().unwrap().starts_with(key));
}

#[test]
fn errors_name_the_key_or_file_at_fault() {
    let (dir, _nodes, config) = cluster("ctl-errors");
    let out = ctl(&config, &["export", "deadbeef00"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key deadbeef00: no such key"), "{err}");

    // A wrong passphrase names the identity file; no connection is made.
    std::fs::write(dir.join("coordinator.pass"), "not it\n").unwrap();
    let out = ctl(&config, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("coordinator.identity") && err.contains("wrong passphrase"),
        "{err}"
    );
    let missing = dir.join("nope.toml");
    let out = ctl(&missing, &["list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

/// `tcrypto-node ceremony --key-file FILE` for `nodes` (in signer order) into `out`; the command's output.
fn ceremony_import(nodes: &[NodeProc], key_file: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(NODE);
    cmd.args(["ceremony", "--threshold", "3", "--key-file"])
        .arg(key_file);
    for n in nodes {
        cmd.arg("--node").arg(n.data.join("node.pub"));
    }
    cmd.arg("--out").arg(out).args(extra).output().unwrap()
}

/// The ceremony of [`ceremony_import`] into `bundles`, then `tcrypto-ctl import` of the bundles; the key id.
fn split_and_import(nodes: &[NodeProc], config: &Path, key_file: &Path, bundles: &Path) -> String {
    let out = ceremony_import(nodes, key_file, bundles, &[]);
    assert!(
        out.status.success(),
        "{}: {}",
        key_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let key = std::fs::read_to_string(bundles.join("key-id"))
        .unwrap()
        .trim()
        .to_string();
    let imported = ok(ctl(config, &["--tsv", "import", bundles.to_str().unwrap()]));
    assert_eq!(imported.trim(), key);
    key
}

/// `tcrypto-ctl sign KEY --mechanism MECHANISM --in MESSAGE --out SIG`.
fn sign_file(config: &Path, key: &str, mechanism: &str, message: &Path, sig: &Path) {
    let (message, sig) = (message.to_str().unwrap(), sig.to_str().unwrap());
    ok(ctl(
        config,
        &[
            "sign",
            key,
            "--mechanism",
            mechanism,
            "--in",
            message,
            "--out",
            sig,
        ],
    ));
}

/// The DNSKEY record of a BIND / ldns `K*.key` file as `(flags, algorithm, public key base64)`.
fn dnskey_of_key_file(path: &Path) -> (String, String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
        .unwrap_or_else(|| panic!("{}: no DNSKEY", path.display()));
    // ldns appends the key tag as a comment.
    let line = line.split(';').next().unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == "DNSKEY").unwrap();
    (
        fields[at + 1].to_string(),
        fields[at + 3].to_string(),
        fields[at + 4..].concat(),
    )
}

/// Runs a key generator in `dir` and returns the `K*.private` file it wrote (its name is printed on stdout).
fn keygen(dir: &Path, program: &str, args: &[&str]) -> PathBuf {
    let out = common::run_ok(Command::new(program).current_dir(dir).args(args));
    let base = String::from_utf8(out.stdout).unwrap().trim().to_string();
    dir.join(format!("{base}.private"))
}

#[test]
fn existing_keys_split_by_the_ceremony_sign_under_their_original_public_keys() {
    let (dir, nodes, config) = cluster_of("ctl-import-existing", 5);
    let message = dir.join("message.txt");
    std::fs::write(&message, b"signed by an imported key").unwrap();
    let sign_verify = |tag: &str, key_file: &Path, public: &Path, mechanism: &str, algorithm: &str| {
        let bundles = dir.join(format!("ceremony-{tag}"));
        let key = split_and_import(&nodes, &config, key_file, &bundles);
        let listed = ok(ctl(&config, &["--tsv", "list"]));
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(&format!("{key}\t{algorithm}\t")) && l.contains("\t3\t5\t")),
            "{tag}: {listed}"
        );
        let sig = dir.join(format!("{tag}.sig"));
        sign_file(&config, &key, mechanism, &message, &sig);
        // OpenSSL checks the signature against the public key taken from the ORIGINAL key file.
        let verify = if algorithm == "ed25519" {
            Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
                .arg(public)
                .args(["-rawin", "-in"])
                .arg(&message)
                .arg("-sigfile")
                .arg(&sig)
                .output()
                .unwrap()
        } else {
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(public)
                .arg("-signature")
                .arg(&sig)
                .arg(&message)
                .output()
                .unwrap()
        };
        assert!(
            verify.status.success(),
            "{tag}: openssl: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        // The ceremony's public key is the original one.
        assert_eq!(
            pem_der(&std::fs::read_to_string(bundles.join("public.pem")).unwrap()),
            pem_der(&std::fs::read_to_string(public).unwrap()),
            "{tag}"
        );
        key
    };
    let openssl_pub = |key: &Path| {
        let public = key.with_extension("pub.pem");
        common::run_ok(
            Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(key)
                .arg("-out")
                .arg(&public),
        );
        public
    };

    // openssl genrsa 2048 (PKCS#8 PEM, ordinary primes).
    let (rsa_key, rsa_pub) = common::openssl_genrsa(&dir, "genrsa", 2048);
    sign_verify("rsa", &rsa_key, &rsa_pub, "rsa-pkcs1-sha256", "rsa");
    // Another one as PKCS#1 DER ("RSA PRIVATE KEY" without the PEM armour).
    let (rsa_pem, rsa_der_pub) = common::openssl_genrsa(&dir, "genrsa-der", 2048);
    let rsa_der = dir.join("genrsa.der");
    common::run_ok(
        Command::new("openssl")
            .args(["rsa", "-traditional", "-outform", "DER", "-in"])
            .arg(&rsa_pem)
            .arg("-out")
            .arg(&rsa_der),
    );
    sign_verify("rsa-der", &rsa_der, &rsa_der_pub, "rsa-pkcs1-sha256", "rsa");
    // P-256 (SEC1 "EC PRIVATE KEY") and Ed25519 (PKCS#8), as openssl writes them.
    let p256 = dir.join("p256.pem");
    common::run_ok(
        Command::new("openssl")
            .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
            .arg(&p256),
    );
    sign_verify("p256", &p256, &openssl_pub(&p256), "ecdsa-sha256", "ecdsa-p256");
    let ed = dir.join("ed25519.pem");
    common::run_ok(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&ed),
    );
    sign_verify("ed25519", &ed, &openssl_pub(&ed), "ed25519", "ed25519");

    // BIND's dnssec-keygen (RSASHA256) and ldns-keygen (ECDSAP256SHA256, ED25519) key files: the DNSKEY the
    // cluster exports is the original one, same key tag.
    let zone = "example.com";
    for (tag, program, args) in [
        (
            "bind-rsa",
            "dnssec-keygen",
            vec!["-a", "RSASHA256", "-b", "2048", "-f", "KSK", zone],
        ),
        (
            "ldns-p256",
            "ldns-keygen",
            vec!["-a", "ECDSAP256SHA256", "-k", zone],
        ),
        ("ldns-ed25519", "ldns-keygen", vec!["-a", "ED25519", "-k", zone]),
    ] {
        let keydir = dir.join(tag);
        std::fs::create_dir_all(&keydir).unwrap();
        let private = keygen(&keydir, program, &args);
        let key = split_and_import(&nodes, &config, &private, &dir.join(format!("ceremony-{tag}")));
        let (flags, algorithm, public) = dnskey_of_key_file(&private.with_extension("key"));
        let exported = ok(ctl(
            &config,
            &[
                "export",
                &key,
                "--format",
                "dnskey",
                "--owner",
                &format!("{zone}."),
                "--flags",
                &flags,
                "--dnssec-algorithm",
                &algorithm,
            ],
        ));
        let exported = dnskey_of_exported(&exported);
        assert_eq!(
            exported,
            (flags, algorithm, public),
            "{tag}: DNSKEY differs from the original"
        );
        let sig = dir.join(format!("{tag}.sig"));
        let mechanism = match tag {
            "bind-rsa" => "rsa-pkcs1-sha256",
            "ldns-p256" => "ecdsa-sha256",
            _ => "ed25519",
        };
        sign_file(&config, &key, mechanism, &message, &sig);
    }

    // Below 2048 bits the dealer refuses, naming the file and the option; with the option it splits.
    let (small, _) = common::openssl_genrsa(&dir, "small", 1024);
    let out = ceremony_import(&nodes, &small, &dir.join("ceremony-small"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("small.pem") && err.contains("2048") && err.contains("--allow-small-modulus"),
        "{err}"
    );
    assert!(
        !dir.join("ceremony-small").join("key-id").exists(),
        "a refused key left bundles"
    );
    let out = ceremony_import(
        &nodes,
        &small,
        &dir.join("ceremony-small"),
        &["--allow-small-modulus"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A file that is no key is refused naming the file.
    let out = ceremony_import(&nodes, &message, &dir.join("ceremony-bad"), &[]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("message.txt"));
}

/// `(flags, algorithm, public key base64)` of the DNSKEY line `tcrypto-ctl export --format dnskey` prints.
fn dnskey_of_exported(text: &str) -> (String, String, String) {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| *f == "DNSKEY")
        .unwrap_or_else(|| panic!("no DNSKEY in {text}"));
    (
        fields[at + 1].to_string(),
        fields[at + 3].to_string(),
        fields[at + 4..]
            .iter()
            .take_while(|f| !f.starts_with(';'))
            .copied()
            .collect(),
    )
}

/// Fresh `tcrypto-ctl sign` processes with an existing P-256 key (3 of 5), first with all five nodes up, then with
/// two of them killed; every signature is checked by openssl. Prints the wall time of each process (start, sealed
/// identity, connections, key lists, one signature) and, in this process, of a fresh coordinator's first signature
/// alone. Nothing about speed is asserted. The first run of each node set pays for the DKLs23 pair setups of its
/// signing set (pair states are then kept by the nodes); the ones after it show what a fresh process pays.
#[test]
fn fresh_ctl_processes_sign_p256_with_all_nodes_up_and_with_two_down() {
    use std::time::Instant;
    use tcrypto_net::client::blocking::BlockingCluster;
    let (dir, mut nodes, config) = cluster_of("ctl-first-p256", 5);
    let key = ok(ctl(
        &config,
        &["--tsv", "create", "--algorithm", "p256", "--threshold", "3"],
    ))
    .trim()
    .to_string();
    let pem = dir.join("p256.pem");
    std::fs::write(&pem, ok(ctl(&config, &["export", &key]))).unwrap();
    let message = dir.join("message");
    std::fs::write(&message, b"a fresh process's first signature").unwrap();
    let id = tcrypto::KeyId(hex::decode(&key).unwrap().try_into().unwrap());
    let digest = sha2::Sha256::digest(b"in process").to_vec();
    let round = |label: &str| {
        for i in 0..4 {
            let sig = dir.join(format!("{label}-{i}.sig"));
            let started = Instant::now();
            sign_file(&config, &key, "ecdsa-sha256", &message, &sig);
            let took = started.elapsed();
            let verify = Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&pem)
                .arg("-signature")
                .arg(&sig)
                .arg(&message)
                .output()
                .unwrap();
            assert!(
                verify.status.success(),
                "{label} {i}: {}",
                String::from_utf8_lossy(&verify.stderr)
            );
            println!("{label}: tcrypto-ctl sign process {i}: {took:?}");
        }
        let cluster = BlockingCluster::from_config_file(&config).unwrap();
        let started = Instant::now();
        cluster.connect(std::time::Duration::from_secs(3));
        cluster.refresh_keys().unwrap();
        let signing = Instant::now();
        let mech = tcrypto_net::transport::wire::Mechanism::Ecdsa {
            digest: digest.clone(),
        };
        cluster.sign(id, mech).unwrap();
        println!(
            "{label}: fresh coordinator in this process: first signature {:?} (connect and key lists before it {:?})",
            signing.elapsed(),
            signing - started
        );
    };
    round("five nodes up");
    nodes[0].kill();
    nodes[3].kill();
    round("node1 and node4 down");
}
