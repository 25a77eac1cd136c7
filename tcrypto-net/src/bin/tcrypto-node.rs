//! `tcrypto-node`: the signer node daemon of the distributed HSM.
//!
//! - `init`: creates the encrypted key store and the node identity, prints what coordinators must pin;
//! - `serve`: answers pinned coordinators over mutual TLS;
//! - `status`: what the node holds and whether it is listening;
//! - `import`: imports a sealed share bundle written by a key ceremony;
//! - `coordinator-init`: creates a coordinator TLS identity and prints the fingerprint nodes pin;
//! - `ceremony` (feature `dealer`): an offline RSA key ceremony writing one sealed share bundle per node.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tcrypto_net::audit::AuditLog;
use tcrypto_net::bundle::SealedBundle;
use tcrypto_net::config::NodeConfig;
use tcrypto_net::identity::{NodeIdentity, TlsIdentity};
use tcrypto_net::node::SignerNode;
use tcrypto_net::replay::ReplayGuard;
use tcrypto_net::store::{KdfCost, SecretStore};

/// Name of the node identity inside the key store.
const IDENTITY: &str = "identity";

#[derive(Parser)]
#[command(name = "tcrypto-node", version, about = "Signer node of the distributed HSM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the key store and node identity; print what the coordinator must pin.
    Init {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Use cheap Argon2id parameters (tests only).
        #[arg(long, hide = true)]
        insecure_fast_kdf: bool,
    },
    /// Serve coordinators.
    Serve {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show identity, keys held and whether the daemon is listening.
    Status {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Import a sealed share bundle (from an offline key ceremony).
    Import {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The bundle file.
        bundle: PathBuf,
    },
    /// Offline RSA key ceremony: deal a key and write one share bundle per node, sealed to that node's HPKE key
    /// (import each with `tcrypto-node import`). The dealer sees the whole key while dealing: run it on an offline
    /// machine; nothing secret is written but the sealed bundles.
    #[cfg(feature = "dealer")]
    Ceremony {
        /// Shares needed to sign.
        #[arg(long, short)]
        threshold: u16,
        /// Modulus size in bits.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// The nodes' `node.pub` files, in signer order (signer id 1 first).
        #[arg(long = "node", required = true)]
        nodes: Vec<PathBuf>,
        /// Output directory (bundles, public key).
        #[arg(long)]
        out: PathBuf,
        /// Deal from these safe primes (hex, one per line, the first two used) instead of generating them.
        #[arg(long)]
        primes: Option<PathBuf>,
    },
    /// Create a coordinator TLS identity file and print its fingerprint.
    CoordinatorInit {
        /// Output file (created with mode 0600; refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        /// Name in the certificate.
        #[arg(long, default_value = "coordinator")]
        name: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            config,
            insecure_fast_kdf,
        } => init(&config, insecure_fast_kdf),
        Command::Serve { config } => serve(&config),
        Command::Status { config } => status(&config),
        Command::Import { config, bundle } => import(&config, &bundle),
        Command::CoordinatorInit { out, name } => coordinator_init(&out, &name),
        #[cfg(feature = "dealer")]
        Command::Ceremony {
            threshold,
            bits,
            nodes,
            out,
            primes,
        } => ceremony(threshold, bits, &nodes, &out, primes.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcrypto-node: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn open_store(cfg: &NodeConfig) -> Result<(SecretStore, NodeIdentity)> {
    let store = SecretStore::open(&cfg.data_dir, &cfg.store_key()?)?;
    let id = store
        .get(IDENTITY)?
        .ok_or_else(|| format!("no node identity in {} (run init)", cfg.data_dir.display()))?;
    let identity = NodeIdentity::from_secret_bytes(&id)?;
    Ok((store, identity))
}

fn init(config: &Path, fast: bool) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let mut rng = rand::rng();
    let cost = if fast { KdfCost::TESTING } else { KdfCost::DEFAULT };
    let store = SecretStore::create(&cfg.data_dir, &cfg.store_key()?, cost, &mut rng)?;
    let identity = NodeIdentity::generate(&cfg.name, &mut rng)?;
    store.put(IDENTITY, &identity.to_secret_bytes(), &mut rng)?;
    // The audit log exists from the start, 0600 (it names every key and requester).
    drop(AuditLog::open(&cfg.audit_log()).map_err(|e| format!("{}: {e}", cfg.audit_log().display()))?);
    let public = identity.public();
    let public_hex = hex::encode(public.encode());
    std::fs::write(cfg.data_dir.join("node.pub"), format!("{public_hex}\n"))?;
    println!("node {} initialised in {}", cfg.name, cfg.data_dir.display());
    println!("tls_spki_sha256 = \"{}\"", public.tls_spki);
    println!("identity_key = \"{}\"", hex::encode(public.identity_key));
    println!("hpke_key = \"{}\"", hex::encode(public.hpke_key));
    println!("# for the coordinator configuration:");
    println!(
        "[[nodes]]\naddress = \"{}\"\npublic = \"{public_hex}\"",
        cfg.listen
    );
    Ok(())
}

fn serve(config: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let pins = cfg.pinned_coordinators()?;
    if pins.is_empty() {
        return Err(format!("{}: no coordinator pinned", config.display()).into());
    }
    #[cfg(feature = "test-support")]
    if let Some(modes) = tcrypto_net::misbehave::install_from_env()? {
        tracing::warn!(?modes, "test build: this node MISBEHAVES on purpose");
    }
    let (store, identity) = open_store(&cfg)?;
    let removed = store.remove_stale_temporaries()?;
    if removed > 0 {
        tracing::warn!(removed, "removed temporary files left by an interrupted write");
    }
    let tls = tcrypto_net::tls::server_config(&identity.tls, pins)?;
    let audit = Arc::new(
        AuditLog::open(&cfg.audit_log()).map_err(|e| format!("{}: {e}", cfg.audit_log().display()))?,
    );
    let node = Arc::new(SignerNode::with_witness(
        Arc::new(identity),
        Some(Arc::new(store)),
        audit.clone(),
        ReplayGuard::new(cfg.max_clock_skew_ms, ReplayGuard::DEFAULT_MAX_ENTRIES),
        Some(&cfg.witness()),
    ));
    node.set_peers(cfg.peer_publics()?);
    let keys = node.load_keys()?;
    // What is damaged is said on stderr (each case was logged when found) and kept for `tcrypto-node status`.
    let health = node.health();
    for line in &health {
        eprintln!("tcrypto-node: warning: {line}");
    }
    write_health(&cfg, &health)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        println!(
            "tcrypto-node {} listening on {} with {keys} keys",
            node.name(),
            cfg.listen
        );
        let _ = std::io::stdout().flush();
        let syncer = audit.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = syncer.sync() {
                    tracing::error!(error = %e, "audit log sync failed");
                }
            }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            () = tcrypto_net::server::serve(listener, tls, node) => {}
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
            _ = term.recv() => tracing::info!("terminated; shutting down"),
        }
        audit.sync()?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// Writes the health file (0600, crash-safe): one problem per line, empty when all is well.
fn write_health(cfg: &NodeConfig, lines: &[String]) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    tcrypto_net::store::write_atomic(&cfg.data_dir, "health", text.as_bytes(), 0)?;
    Ok(())
}

fn status(config: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    println!("node {}", cfg.name);
    match std::fs::read_to_string(cfg.data_dir.join("node.pub")) {
        Ok(p) => println!("public {}", p.trim()),
        Err(_) => println!("not initialised (no {}/node.pub)", cfg.data_dir.display()),
    }
    let secrets = cfg.data_dir.join("secrets");
    let mut keys: Vec<String> = std::fs::read_dir(&secrets)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter_map(|n| {
                    n.strip_prefix("key-")
                        .and_then(|n| n.strip_suffix(".sealed"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    println!("keys {}", keys.len());
    for k in keys {
        println!("  key {k}");
    }
    let audited = std::fs::read_to_string(cfg.audit_log())
        .map(|s| s.lines().count())
        .unwrap_or(0);
    println!("audit records {audited}");
    // Damage found by the last start of the daemon, and files moved aside.
    let health = std::fs::read_to_string(cfg.health_file()).unwrap_or_default();
    let problems: Vec<&str> = health.lines().filter(|l| !l.trim().is_empty()).collect();
    println!("problems {}", problems.len());
    for p in problems {
        println!("  problem {p}");
    }
    let mut quarantined: Vec<String> =
        std::fs::read_dir(cfg.data_dir.join(tcrypto_net::store::QUARANTINE_DIR))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
    quarantined.sort();
    println!("quarantined files {}", quarantined.len());
    for q in quarantined {
        println!("  quarantined {q}");
    }
    let listening = TcpStream::connect_timeout(&cfg.listen, Duration::from_secs(1)).is_ok();
    println!(
        "listening on {}: {}",
        cfg.listen,
        if listening { "yes" } else { "no" }
    );
    Ok(())
}

fn import(config: &Path, bundle: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let (store, identity) = open_store(&cfg)?;
    let sealed = SealedBundle::decode(&std::fs::read(bundle)?)?;
    let opened = sealed.open(&identity)?;
    let node = SignerNode::new(
        Arc::new(identity),
        None,
        Arc::new(tcrypto_net::audit::MemoryAudit::default()),
        ReplayGuard::default(),
    );
    node.check_bundle(&opened)?;
    let name = format!("key-{}", opened.info.key);
    if store.get(&name)?.is_some() {
        return Err(format!("key {} is already held", opened.info.key).into());
    }
    store.put(&name, &opened.encode(), &mut rand::rng())?;
    let audit = AuditLog::open(&cfg.audit_log())?;
    use tcrypto_net::audit::AuditSink as _;
    audit.record(&tcrypto_net::audit::AuditRecord {
        time_ms: tcrypto_net::server::unix_ms_now(),
        requester: None,
        request: 0,
        session: tcrypto::SessionId([0; 32]),
        operation: "import-bundle",
        key: Some(opened.info.key),
        mechanism: None,
        payload: None,
        outcome: Ok(()),
    })?;
    audit.sync()?;
    println!(
        "imported {} share {} of key {} ({}-of-{})",
        opened.info.algorithm.name(),
        opened.info.signer,
        opened.info.key,
        opened.info.threshold,
        opened.info.parties
    );
    Ok(())
}

fn coordinator_init(out: &Path, name: &str) -> Result<()> {
    let id = TlsIdentity::generate(name)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    f.write_all(&id.to_secret_bytes())?;
    f.sync_all()?;
    println!("coordinator identity written to {}", out.display());
    println!("# for each node configuration:");
    println!(
        "[[coordinators]]\nname = \"{name}\"\nspki_sha256 = \"{}\"",
        id.fingerprint()
    );
    Ok(())
}

#[cfg(feature = "dealer")]
fn ceremony(threshold: u16, bits: usize, nodes: &[PathBuf], out: &Path, primes: Option<&Path>) -> Result<()> {
    use tcrypto::rsa::{SafePrime, deal, deal_with_primes};
    let publics = nodes
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            tcrypto_net::config::decode_public(&text).map_err(|e| format!("{}: {e}", p.display()).into())
        })
        .collect::<Result<Vec<_>>>()?;
    let parties = u16::try_from(publics.len())?;
    let mut rng = rand::rng();
    let (pk, shares) = match primes {
        Some(file) => {
            let text = std::fs::read_to_string(file)?;
            let ps: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            let [p, q, ..] = ps.as_slice() else {
                return Err(format!("{}: need two primes", file.display()).into());
            };
            let parse = |h: &str| {
                let h = if h.len() % 2 == 1 {
                    format!("0{h}")
                } else {
                    h.to_string()
                };
                hex::decode(h)
                    .map_err(|e| e.to_string())
                    .and_then(|b| SafePrime::from_be_bytes(&b).map_err(|e| e.to_string()))
            };
            deal_with_primes(&parse(p)?, &parse(q)?, 65537, threshold, parties, &mut rng)?
        }
        None => deal(bits, threshold, parties, &mut rng)?,
    };
    std::fs::create_dir_all(out)?;
    for (bundle, public) in tcrypto_net::algo::rsa_bundles(&pk, &shares).iter().zip(&publics) {
        let sealed = bundle.seal(public, &mut rng)?;
        let path = out.join(format!("{}.bundle", public.name));
        std::fs::write(&path, sealed.encode())?;
        println!(
            "share {} sealed to {} in {}",
            bundle.info.signer,
            public.name,
            path.display()
        );
    }
    drop(shares);
    std::fs::write(out.join("public.pem"), pk.to_spki_pem()?)?;
    std::fs::write(out.join("key-id"), format!("{}\n", pk.key_id()))?;
    println!(
        "RSA-{} {threshold}-of-{parties} key {}",
        pk.modulus_bits(),
        pk.key_id()
    );
    Ok(())
}
