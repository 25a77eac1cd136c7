//! `tcrypto-ctl`: the operator's tool on the coordinator side of the distributed HSM.
//!
//! It reads a coordinator configuration (`coordinator.toml`: the sealed coordinator identity, its passphrase source,
//! the nodes and their pins; see `tcrypto_net::config`), connects to the nodes over mutual TLS with the thread-free
//! driver, learns the keys that at least `k` nodes agree on, and runs one subcommand, in the style of `knotc` and
//! `keymgr`:
//!
//! - `list`: keys with algorithm, threshold, DNSSEC key tag and holders;
//! - `create`: a P-256 or Ed25519 key born by distributed key generation among the nodes;
//! - `import`: the sealed bundles of an offline RSA key ceremony (`tcrypto-node ceremony`), each sent to the node
//!   it is sealed to (this process never sees a share and never deals a key);
//! - `export`: a public key as PEM (SPKI) or as a DNSKEY resource record;
//! - `sign`: a file or a digest with an existing key and a chosen mechanism;
//! - `delete`: a key on every node;
//! - `reshare`: move a key to other nodes or another threshold without changing its public key (add, remove or
//!   replace nodes, change `k`); `refresh`: new shares for the same nodes; `settle`: finish or roll back an
//!   interrupted reshare;
//! - `health`: the nodes' state.
//!
//! It is a separate binary from `tcrypto-node` because it runs where the coordinator identity lives (a signer host,
//! an operator's machine), not on the nodes, and needs the coordinator's passphrase rather than a node's.
//!
//! Output: a human form by default, `--tsv` for stable tab-separated lines (no header) and `--json` for one JSON
//! document. Exit codes: 0 success, 1 failure (the message names the file, key or node), 2 usage; `health`: 0 all
//! nodes up, 3 some node down but every key can still sign, 4 a key has fewer than `k` reachable holders.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tcrypto::{HashAlg, KeyId};
use tcrypto_net::algo::PublicKey;
use tcrypto_net::client::Engine as _;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::transport::bundle::SealedBundle;
use tcrypto_net::transport::wire::{Algorithm, Mechanism, RequestBody, ResponseBody};

/// Exit code of `health` when a node is down but every key still has `k` reachable holders.
const EXIT_DEGRADED: u8 = 3;
/// Exit code of `health` when some key has fewer than `k` reachable holders (it cannot sign).
const EXIT_CRITICAL: u8 = 4;

#[derive(Parser)]
#[command(
    name = "tcrypto-ctl",
    version,
    about = "Operator tool of the distributed HSM (coordinator side)"
)]
struct Cli {
    /// Coordinator configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// Print one JSON document instead of the human form.
    #[arg(long, global = true, conflicts_with = "tsv")]
    json: bool,
    /// Print stable tab-separated lines (no header) instead of the human form.
    #[arg(long, global = true)]
    tsv: bool,
    /// Seconds to wait for the nodes to connect.
    #[arg(long, default_value_t = 5, global = true)]
    wait: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the keys the nodes hold (those at least `k` nodes agree on).
    List,
    /// Create a key by distributed key generation among the nodes (RSA keys come from an offline ceremony: see
    /// `import`).
    Create {
        /// Key algorithm.
        #[arg(long, short)]
        algorithm: KeyAlgorithm,
        /// Shares needed to sign (`k`); every node gets one share.
        #[arg(long, short)]
        threshold: u16,
    },
    /// Send the sealed bundles of an offline key ceremony to the nodes they are sealed to, then list the key.
    Import {
        /// Bundle files, or directories whose `*.bundle` files are taken.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Export a public key.
    Export {
        /// Key id, or a unique prefix of it (at least 8 hex digits).
        key: String,
        /// Output form.
        #[arg(long, default_value = "pem")]
        format: ExportFormat,
        /// DNSKEY owner name.
        #[arg(long, default_value = ".")]
        owner: String,
        /// DNSKEY flags: 257 for a key-signing key, 256 for a zone-signing key.
        #[arg(long, default_value_t = 257)]
        flags: u16,
        /// DNSSEC algorithm number (RSA: 8 RSASHA256 or 10 RSASHA512; P-256 is 13, Ed25519 15).
        #[arg(long)]
        dnssec_algorithm: Option<u8>,
        /// DNSKEY TTL.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Sign a file (hashed here, or given whole to Ed25519) or a digest with an existing key.
    Sign {
        /// Key id, or a unique prefix of it (at least 8 hex digits).
        key: String,
        /// Mechanism.
        #[arg(long, short)]
        mechanism: SignMechanism,
        /// File to sign.
        #[arg(
            long = "in",
            short = 'i',
            conflicts_with = "digest",
            required_unless_present = "digest"
        )]
        input: Option<PathBuf>,
        /// A digest to sign instead of a file (hex; RSA and ECDSA mechanisms).
        #[arg(long)]
        digest: Option<String>,
        /// Signature file.
        #[arg(long, short)]
        out: PathBuf,
        /// ECDSA output: DER (what OpenSSL verifies) or raw r || s (PKCS#11, DNSSEC, JOSE).
        #[arg(long, default_value = "der")]
        ecdsa_format: EcdsaFormat,
    },
    /// Delete a key on every node.
    Delete {
        /// Key id, or a unique prefix of it (at least 8 hex digits).
        key: String,
    },
    /// Show the nodes' state (exit 0 all up, 3 degraded, 4 a key cannot sign).
    Health,
    /// Reshare a key (same public key, same key id) to another set of nodes or another threshold: the new
    /// holders are the current ones (in signer order) with `--remove`, `--replace` and `--add` applied, or the
    /// `--nodes` list. Old holders not in the new set delete their shares once the new sharing has signed.
    Reshare {
        /// Key id, or a unique prefix of it (at least 8 hex digits).
        key: String,
        /// The new holders, by node name, in new signer order (instead of editing the current holders).
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["add", "remove", "replace"])]
        nodes: Vec<String>,
        /// Add this node (a configured, pinned node) to the holders.
        #[arg(long)]
        add: Vec<String>,
        /// Remove this node from the holders (e.g. a dead one).
        #[arg(long)]
        remove: Vec<String>,
        /// Replace node OLD by node NEW (`OLD=NEW`; NEW takes OLD's signer id).
        #[arg(long)]
        replace: Vec<String>,
        /// The new threshold `k'` (default: the current `k`).
        #[arg(long, short)]
        threshold: Option<u16>,
    },
    /// Refresh a key: new shares for the same nodes and threshold (the old shares become useless).
    Refresh {
        /// Key id, or a unique prefix of it (at least 8 hex digits).
        key: String,
    },
    /// Finish or roll back what an interrupted reshare of a key left on the nodes.
    Settle {
        /// Key id (in full, or a unique prefix of a listed key).
        key: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyAlgorithm {
    /// ECDSA P-256 (threshold ECDSA with presignatures).
    P256,
    /// Ed25519 (FROST).
    Ed25519,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// SubjectPublicKeyInfo PEM.
    Pem,
    /// A DNSKEY resource record in presentation format.
    Dnskey,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EcdsaFormat {
    /// DER SEQUENCE { r, s }.
    Der,
    /// r || s, 32 bytes each.
    Raw,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SignMechanism {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt.
    RsaPssSha512,
    /// ECDSA P-256 over SHA-256.
    EcdsaSha256,
    /// Pure Ed25519 over the whole file.
    Ed25519,
}

/// A failure with the exit code it maps to.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

type Result<T> = std::result::Result<T, Failure>;

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Failure(msg.into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Human,
    Tsv,
    Json,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let out = if cli.json {
        Output::Json
    } else if cli.tsv {
        Output::Tsv
    } else {
        Output::Human
    };
    match run(&cli, out) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg)) => {
            eprintln!("tcrypto-ctl: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, out: Output) -> Result<u8> {
    let cluster = BlockingCluster::from_config_file(&cli.config)
        .map_err(|e| Failure(format!("{}: {e}", cli.config.display())))?;
    let connected = cluster.connect(Duration::from_secs(cli.wait));
    if connected < cluster.nodes().len() && !matches!(cli.command, Command::Health) {
        let down: Vec<String> = cluster
            .health()
            .into_iter()
            .filter(|h| !h.connected)
            .map(|h| h.name)
            .collect();
        eprintln!(
            "tcrypto-ctl: warning: node(s) {} not reachable; keys fewer than k reachable nodes hold are not listed",
            down.join(", ")
        );
    }
    if let Err(e) = cluster.refresh_keys() {
        tracing::warn!(error = %e, "listing the nodes' keys failed");
    }
    match &cli.command {
        Command::List => list(&cluster, out),
        Command::Create { algorithm, threshold } => create(&cluster, *algorithm, *threshold, out),
        Command::Import { bundles } => import(&cluster, bundles, out),
        Command::Export {
            key,
            format,
            owner,
            flags,
            dnssec_algorithm,
            ttl,
            out: file,
        } => {
            let key = find_key(&cluster, key)?;
            let public = public_of(&cluster, &key)?;
            let text = match format {
                ExportFormat::Pem => pem(&public)?,
                ExportFormat::Dnskey => {
                    let alg = dnssec_algorithm.unwrap_or_else(|| default_dnssec_algorithm(&public));
                    let rdata = dnskey_public_key(&public, alg)?;
                    let owner = if owner.ends_with('.') {
                        owner.clone()
                    } else {
                        format!("{owner}.")
                    };
                    format!(
                        "{owner} {ttl} IN DNSKEY {flags} 3 {alg} {} ; key tag {}\n",
                        base64(&rdata),
                        tcrypto_net::node::policy::key_tag(*flags, alg, &rdata)
                    )
                }
            };
            match file {
                Some(f) => write_file(f, text.as_bytes())?,
                None => print!("{text}"),
            }
            Ok(0)
        }
        Command::Sign {
            key,
            mechanism,
            input,
            digest,
            out: file,
            ecdsa_format,
        } => {
            let key = find_key(&cluster, key)?;
            let mech = sign_request(*mechanism, input.as_deref(), digest.as_deref())?;
            let sig = cluster
                .sign(key, mech)
                .map_err(|e| Failure(format!("key {key}: {e}")))?;
            for c in &sig.culprits {
                eprintln!("tcrypto-ctl: warning: node {c} sent a bad share and was excluded");
            }
            let bytes = match (*mechanism, ecdsa_format) {
                (SignMechanism::EcdsaSha256, EcdsaFormat::Raw) => {
                    p256::ecdsa::Signature::from_der(&sig.bytes)
                        .map(|s| s.to_bytes().to_vec())
                        .map_err(|e| Failure(format!("key {key}: ECDSA signature: {e}")))?
                }
                _ => sig.bytes,
            };
            write_file(file, &bytes)?;
            report(
                out,
                &format!("signature by key {key} written to {}", file.display()),
                &format!("{key}\t{}", file.display()),
                json!({"key": key.to_string(), "signature": file.display().to_string(), "bytes": bytes.len()}),
            );
            Ok(0)
        }
        Command::Delete { key } => {
            let key = find_key(&cluster, key)?;
            cluster
                .delete(key)
                .map_err(|e| Failure(format!("key {key}: {e}")))?;
            report(
                out,
                &format!("key {key} deleted on every holder"),
                &key.to_string(),
                json!({"deleted": key.to_string()}),
            );
            Ok(0)
        }
        Command::Health => health(&cluster, out),
        Command::Reshare {
            key,
            nodes,
            add,
            remove,
            replace,
            threshold,
        } => {
            let key = find_key(&cluster, key)?;
            let plan = NewHolders {
                nodes,
                add,
                remove,
                replace,
            };
            let (new_nodes, k) = plan.resolve(&cluster, &key, *threshold)?;
            let outcome = cluster
                .reshare(key, &new_nodes, k)
                .map_err(|e| Failure(format!("key {key}: {e}")))?;
            reshared(&cluster, key, &outcome, out)
        }
        Command::Refresh { key } => {
            let key = find_key(&cluster, key)?;
            let outcome = cluster
                .refresh(key)
                .map_err(|e| Failure(format!("key {key}: {e}")))?;
            reshared(&cluster, key, &outcome, out)
        }
        Command::Settle { key } => {
            let key = match find_key(&cluster, key) {
                Ok(k) => k,
                Err(e) => full_key_id(key).ok_or(e)?,
            };
            let outcome = cluster
                .settle_reshare(key)
                .map_err(|e| Failure(format!("key {key}: {e}")))?;
            for line in &outcome.settled {
                eprintln!("tcrypto-ctl: {line}");
            }
            reshared(&cluster, key, &outcome, out)
        }
    }
}

/// A key id in full (64 hex digits).
fn full_key_id(text: &str) -> Option<KeyId> {
    let bytes = hex::decode(text.trim()).ok()?;
    Some(KeyId(bytes.try_into().ok()?))
}

/// How `reshare` names the new holders.
struct NewHolders<'a> {
    nodes: &'a [String],
    add: &'a [String],
    remove: &'a [String],
    replace: &'a [String],
}

impl NewHolders<'_> {
    /// The new holders (node indexes, in new signer order) and threshold.
    fn resolve(
        &self,
        cluster: &BlockingCluster,
        key: &KeyId,
        threshold: Option<u16>,
    ) -> Result<(Vec<usize>, u16)> {
        let index = |name: &str| -> Result<usize> {
            cluster
                .nodes()
                .iter()
                .position(|n| n.name == name)
                .ok_or_else(|| Failure(format!("no node named {name:?} in the configuration")))
        };
        let current: Vec<usize> = cluster.engine().submit(|c, _, _| {
            c.keys()
                .into_iter()
                .find(|k| k.0 == *key)
                .map(|k| k.2.values().copied().collect())
                .unwrap_or_default()
        });
        let (k, _) = threshold_of(&public_of(cluster, key)?);
        let mut nodes: Vec<usize> = if self.nodes.is_empty() {
            current
        } else {
            self.nodes.iter().map(|n| index(n)).collect::<Result<_>>()?
        };
        // A dead holder is not among the holders the coordinator reached: removing or replacing it needs no
        // change of the list beyond adding its replacement.
        for r in self.remove {
            let i = index(r)?;
            nodes.retain(|n| *n != i);
        }
        for pair in self.replace {
            let (old, new) = pair
                .split_once('=')
                .ok_or_else(|| Failure(format!("--replace {pair:?}: expected OLD=NEW")))?;
            let (old, new) = (index(old)?, index(new)?);
            if nodes.contains(&new) {
                return fail(format!("key {key}: node {pair} already holds a share"));
            }
            match nodes.iter_mut().find(|n| **n == old) {
                Some(slot) => *slot = new,
                None => nodes.push(new),
            }
        }
        for a in self.add {
            let i = index(a)?;
            if nodes.contains(&i) {
                return fail(format!("key {key}: node {a} already holds a share"));
            }
            nodes.push(i);
        }
        Ok((nodes, threshold.unwrap_or(k)))
    }
}

/// Reports a finished reshare, refresh or settle.
fn reshared(
    cluster: &BlockingCluster,
    key: KeyId,
    outcome: &tcrypto_net::coordinator::reshare::Outcome,
    out: Output,
) -> Result<u8> {
    let holders: Vec<String> = outcome
        .holders
        .values()
        .map(|n| {
            cluster
                .nodes()
                .get(*n)
                .map(|p| p.name.clone())
                .unwrap_or_default()
        })
        .collect();
    let k = outcome.info.as_ref().map_or(0, |i| i.threshold);
    for node in &outcome.culprits {
        eprintln!(
            "tcrypto-ctl: warning: key {key}: node {node} misbehaved in the reshare and was left out of the new sharing"
        );
    }
    for line in &outcome.not_retired {
        eprintln!(
            "tcrypto-ctl: warning: not retired yet (run `tcrypto-ctl settle {key}` when it is up): {line}"
        );
    }
    report(
        out,
        &format!(
            "key {key}: epoch {}, {k}-of-{} on {}",
            outcome.epoch,
            holders.len(),
            holders.join(", ")
        ),
        &format!("{key}\t{}\t{k}\t{}", outcome.epoch, holders.join(",")),
        json!({"key": key.to_string(), "epoch": outcome.epoch, "threshold": k, "holders": holders,
               "not_retired": outcome.not_retired, "culprits": outcome.culprits,
               "disqualified": outcome.disqualified}),
    );
    Ok(if outcome.not_retired.is_empty() {
        0
    } else {
        EXIT_DEGRADED
    })
}

/// Prints one result in the chosen form.
fn report(out: Output, human: &str, tsv: &str, json: serde_json::Value) {
    match out {
        Output::Human => println!("{human}"),
        Output::Tsv => println!("{tsv}"),
        Output::Json => println!("{json}"),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

/// A key id given in full or as a unique prefix of at least 8 hex digits.
fn find_key(cluster: &BlockingCluster, text: &str) -> Result<KeyId> {
    let text = text.trim().to_ascii_lowercase();
    if text.len() < 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fail(format!(
            "key {text:?}: give the key id or at least its first 8 hex digits"
        ));
    }
    let matching: Vec<KeyId> = cluster
        .list()
        .into_iter()
        .filter(|k| k.to_string().starts_with(&text))
        .collect();
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => fail(format!(
            "key {text}: no such key on the nodes ({} keys known; see `tcrypto-ctl list`)",
            cluster.list().len()
        )),
        many => fail(format!("key {text}: {} keys start with it", many.len())),
    }
}

fn public_of(cluster: &BlockingCluster, key: &KeyId) -> Result<PublicKey> {
    cluster
        .public_key(key)
        .ok_or_else(|| Failure(format!("key {key}: public key unknown")))
}

fn threshold_of(public: &PublicKey) -> (u16, u16) {
    match public {
        PublicKey::Rsa(pk) => (pk.threshold(), pk.parties()),
        PublicKey::Ecdsa(pk) => (pk.set.threshold(), pk.set.parties()),
        PublicKey::Ed25519(pk) => (pk.threshold(), pk.parties()),
        _ => (0, 0),
    }
}

fn list(cluster: &BlockingCluster, out: Output) -> Result<u8> {
    let holders: BTreeMap<KeyId, usize> = cluster
        .engine()
        .submit(|c, _, _| c.keys().into_iter().map(|(k, _, h)| (k, h.len())).collect());
    let mut rows = Vec::new();
    for key in cluster.list() {
        let public = public_of(cluster, &key)?;
        let (k, n) = threshold_of(&public);
        let alg = default_dnssec_algorithm(&public);
        let tag = dnskey_public_key(&public, alg)
            .map(|rdata| tcrypto_net::node::policy::key_tag(257, alg, &rdata))
            .ok();
        let bits = match &public {
            PublicKey::Rsa(pk) => pk.modulus_bits(),
            _ => 256,
        };
        rows.push((
            key,
            public.algorithm(),
            bits,
            k,
            n,
            tag,
            holders.get(&key).copied().unwrap_or(0),
        ));
    }
    match out {
        Output::Json => {
            let keys: Vec<_> = rows
                .iter()
                .map(|(key, alg, bits, k, n, tag, held)| {
                    json!({"key": key.to_string(), "algorithm": alg.name(), "bits": bits, "threshold": k,
                           "parties": n, "holders": held, "key_tag_ksk": tag})
                })
                .collect();
            println!("{}", json!({ "keys": keys }));
        }
        Output::Tsv => {
            for (key, alg, bits, k, n, tag, held) in &rows {
                let tag = tag.map(|t| t.to_string()).unwrap_or_default();
                println!("{key}\t{}\t{bits}\t{k}\t{n}\t{tag}\t{held}", alg.name());
            }
        }
        Output::Human => {
            println!("{} keys", rows.len());
            for (key, alg, bits, k, n, tag, held) in &rows {
                let tag = tag.map(|t| format!(", key tag {t} as KSK")).unwrap_or_default();
                println!(
                    "  {key}  {} {bits} bits, {k}-of-{n}, {held} holders{tag}",
                    alg.name()
                );
            }
        }
    }
    Ok(0)
}

fn create(cluster: &BlockingCluster, algorithm: KeyAlgorithm, threshold: u16, out: Output) -> Result<u8> {
    let algorithm = match algorithm {
        KeyAlgorithm::P256 => Algorithm::EcdsaP256,
        KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
    };
    let key = cluster
        .create_key(algorithm, threshold)
        .map_err(|e| Failure(format!("creating a {} key: {e}", algorithm.name())))?;
    let n = cluster.nodes().len();
    report(
        out,
        &format!("{} {threshold}-of-{n} key {key} created", algorithm.name()),
        &key.to_string(),
        json!({"key": key.to_string(), "algorithm": algorithm.name(), "threshold": threshold, "parties": n}),
    );
    Ok(0)
}

/// The bundle files named on the command line (directories contribute their `*.bundle` files, sorted).
fn bundle_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Failure(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "bundle"))
                .collect();
            if found.is_empty() {
                return fail(format!("{}: no *.bundle files", p.display()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn import(cluster: &BlockingCluster, paths: &[PathBuf], out: Output) -> Result<u8> {
    let mut keys = Vec::new();
    let mut failures = Vec::new();
    for file in bundle_files(paths)? {
        let bytes = std::fs::read(&file).map_err(|e| Failure(format!("{}: {e}", file.display())))?;
        let sealed = SealedBundle::decode(&bytes).map_err(|e| Failure(format!("{}: {e}", file.display())))?;
        let Some(node) = cluster
            .nodes()
            .iter()
            .position(|n| n.hpke_key == sealed.recipient)
        else {
            failures.push(format!(
                "{}: sealed to no node of {}",
                file.display(),
                "this configuration"
            ));
            continue;
        };
        let name = cluster.nodes()[node].name.clone();
        match cluster.request(node, RequestBody::ImportShare { bundle: bytes }) {
            Ok(ResponseBody::Done) => {
                if !keys.contains(&sealed.info.key) {
                    keys.push(sealed.info.key);
                }
                if out == Output::Human {
                    println!(
                        "{}: share {} of key {} imported on {name}",
                        file.display(),
                        sealed.info.signer,
                        sealed.info.key
                    );
                }
            }
            Ok(other) => failures.push(format!(
                "{}: node {name}: unexpected answer {other:?}",
                file.display()
            )),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
    }
    cluster.refresh_keys()?;
    let known = cluster.list();
    for key in &keys {
        if !known.contains(key) {
            failures.push(format!("key {key}: fewer than k nodes hold it"));
        }
    }
    for key in &keys {
        report(
            out,
            &format!("key {key} imported"),
            &key.to_string(),
            json!({"key": key.to_string(), "imported": known.contains(key)}),
        );
    }
    if failures.is_empty() {
        Ok(0)
    } else {
        fail(failures.join("; "))
    }
}

fn health(cluster: &BlockingCluster, out: Output) -> Result<u8> {
    let nodes = cluster.health();
    let usable: Vec<bool> = nodes
        .iter()
        .map(|h| h.connected && h.excluded.is_none())
        .collect();
    // What the reachable nodes hold, from their own lists: a key that fewer than `k` nodes list is not even
    // registered with the coordinator, and is exactly the one that cannot sign.
    let mut held: BTreeMap<KeyId, (u16, usize)> = BTreeMap::new();
    for (i, up) in usable.iter().enumerate() {
        if !up {
            continue;
        }
        if let Ok(ResponseBody::Keys(infos)) = cluster.request(i, RequestBody::ListKeys) {
            for info in infos {
                let entry = held.entry(info.key).or_insert((info.threshold, 0));
                entry.1 += 1;
            }
        }
    }
    let mut cannot_sign: Vec<String> = held
        .iter()
        .filter(|(_, (k, up))| *up < usize::from(*k))
        .map(|(key, (k, up))| format!("{key} ({up} of {k} needed holders up)"))
        .collect();
    if !usable.iter().any(|u| *u) {
        cannot_sign.push("every key (no node reachable)".into());
    }
    let code = if !cannot_sign.is_empty() {
        EXIT_CRITICAL
    } else if usable.iter().any(|u| !u) {
        EXIT_DEGRADED
    } else {
        0
    };
    match out {
        Output::Json => {
            let list: Vec<_> = nodes
                .iter()
                .map(|h| {
                    json!({"node": h.name, "connected": h.connected, "excluded": h.excluded,
                           "answered": h.answered, "failed": h.failed, "in_flight": h.in_flight,
                           "latency_ms": h.latency.as_secs_f64() * 1000.0})
                })
                .collect();
            println!(
                "{}",
                json!({"nodes": list, "keys_unable_to_sign": cannot_sign, "status": code})
            );
        }
        Output::Tsv => {
            for h in &nodes {
                let state = match (h.connected, &h.excluded) {
                    (_, Some(_)) => "excluded",
                    (true, None) => "up",
                    (false, None) => "down",
                };
                println!(
                    "{}\t{state}\t{}\t{}\t{:.1}",
                    h.name,
                    h.answered,
                    h.failed,
                    h.latency.as_secs_f64() * 1000.0
                );
            }
        }
        Output::Human => {
            for h in &nodes {
                let state = match (h.connected, &h.excluded) {
                    (_, Some(why)) => format!("excluded: {why}"),
                    (true, None) => "up".into(),
                    (false, None) => "down".into(),
                };
                println!(
                    "node {}: {state}, {} answered, {} failed, latency {:.1?}",
                    h.name, h.answered, h.failed, h.latency
                );
            }
            for k in &cannot_sign {
                println!("key {k} cannot sign");
            }
        }
    }
    let _ = std::io::stdout().flush();
    Ok(code)
}

/// The request for `mechanism` over a file (hashed here; Ed25519 signs it whole) or a hex digest.
fn sign_request(mechanism: SignMechanism, file: Option<&Path>, digest: Option<&str>) -> Result<Mechanism> {
    let hash = match mechanism {
        SignMechanism::RsaPkcs1Sha256 | SignMechanism::RsaPssSha256 | SignMechanism::EcdsaSha256 => {
            HashAlg::Sha256
        }
        SignMechanism::RsaPkcs1Sha384 | SignMechanism::RsaPssSha384 => HashAlg::Sha384,
        SignMechanism::RsaPkcs1Sha512 | SignMechanism::RsaPssSha512 => HashAlg::Sha512,
        SignMechanism::Ed25519 => {
            let Some(file) = file else {
                return fail("ed25519 signs the whole message (pure EdDSA): give --in FILE, not --digest");
            };
            let message = std::fs::read(file).map_err(|e| Failure(format!("{}: {e}", file.display())))?;
            return Ok(Mechanism::Ed25519 { message });
        }
    };
    let digest = match (file, digest) {
        (Some(f), _) => hash.digest(&std::fs::read(f).map_err(|e| Failure(format!("{}: {e}", f.display())))?),
        (None, Some(hex_digest)) => {
            let d = hex::decode(hex_digest.trim()).map_err(|e| Failure(format!("--digest: {e}")))?;
            if d.len() != hash.output_len() {
                return fail(format!(
                    "--digest: {} bytes, but this mechanism's hash makes {}",
                    d.len(),
                    hash.output_len()
                ));
            }
            d
        }
        (None, None) => return fail("give --in FILE or --digest HEX"),
    };
    Ok(match mechanism {
        SignMechanism::RsaPkcs1Sha256 | SignMechanism::RsaPkcs1Sha384 | SignMechanism::RsaPkcs1Sha512 => {
            Mechanism::RsaPkcs1v15 { hash, digest }
        }
        SignMechanism::EcdsaSha256 => Mechanism::Ecdsa { digest },
        _ => {
            let salt: Vec<u8> = (0..hash.output_len()).map(|_| rand::random::<u8>()).collect();
            Mechanism::RsaPss { hash, digest, salt }
        }
    })
}

fn pem(public: &PublicKey) -> Result<String> {
    let der = public.to_spki_der().map_err(Failure)?;
    let body = base64(&der);
    let mut text = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    text.push_str("-----END PUBLIC KEY-----\n");
    Ok(text)
}

fn base64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

/// The DNSSEC algorithm a key is exported as by default: RSASHA256 (8), ECDSAP256SHA256 (13), ED25519 (15).
fn default_dnssec_algorithm(public: &PublicKey) -> u8 {
    match public {
        PublicKey::Rsa(_) => 8,
        PublicKey::Ecdsa(_) => 13,
        PublicKey::Ed25519(_) => 15,
        _ => 0,
    }
}

/// The DNSKEY public key field ([`tcrypto_net::node::policy::dnskey_public_key`]).
fn dnskey_public_key(public: &PublicKey, algorithm: u8) -> Result<Vec<u8>> {
    tcrypto_net::node::policy::dnskey_public_key(public, algorithm).map_err(Failure)
}
