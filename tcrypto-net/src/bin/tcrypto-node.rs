//! `tcrypto-node`: the signer node daemon of the distributed HSM.
//!
//! - `init`: creates the encrypted key store and the node identity, prints what coordinators must pin;
//! - `serve`: answers pinned coordinators over mutual TLS; writes `DATA_DIR/tcrypto-node.pid`; on SIGHUP it
//!   loads the keys imported since it started and re-reads the configuration's `[[peers]]` (SIGTERM or SIGINT
//!   stop it; the listen address and pinned coordinators need a restart);
//! - `status`: what the node holds and whether it is listening;
//! - `import`: imports a sealed share bundle written by a key ceremony, then sends the running daemon SIGHUP so
//!   it serves the key at once;
//! - `coordinator-init`: creates a coordinator TLS identity sealed with a passphrase and prints the fingerprint
//!   nodes pin; `coordinator-seal` seals an identity file written by an earlier version;
//! - `ceremony` (feature `dealer`): an offline RSA key ceremony writing one sealed share bundle per node; with
//!   `--key-file`, an existing RSA, P-256 or Ed25519 private key (PEM/DER PKCS#1, PKCS#8, SEC1, or a BIND/ldns
//!   `.private` file) is split instead of a fresh key dealt.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tcrypto_net::config::NodeConfig;
use tcrypto_net::node::SignerNode;
use tcrypto_net::node::audit::AuditLog;
use tcrypto_net::node::replay::ReplayGuard;
use tcrypto_net::node::store::{KdfCost, SecretStore};
use tcrypto_net::transport::bundle::SealedBundle;
use tcrypto_net::transport::identity::{IdentityFile, NodeIdentity, SealedTlsIdentity, TlsIdentity};

/// Name of the node identity inside the key store.
const IDENTITY: &str = "identity";
/// The running daemon's process id, in the data directory (`import` signals it).
const PID_FILE: &str = "tcrypto-node.pid";
/// The key ids the running daemon serves, one per line, rewritten after every (re)load (`import` waits for its key
/// to appear there).
const LOADED_FILE: &str = "loaded-keys";
/// How long `import` waits for the running daemon to serve the imported key.
const IMPORT_WAIT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "tcrypto-node",
    version,
    long_version = long_version(),
    about = "Signer node of the distributed HSM"
)]
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
        /// Arithmetic backend to sign on, `pure-rust` or `openssl` (overrides the configuration's `arithmetic`;
        /// default: the build's, see `--version`).
        #[arg(long, value_name = "BACKEND")]
        arithmetic: Option<tcrypto::backend::Backend>,
    },
    /// Show identity, keys held, problems and whether the daemon is listening. Exit 0: listening, no problem;
    /// 3: listening, but problems found at start or files quarantined; 4: not listening (for monitoring).
    Status {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check or read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write an encrypted, integrity-protected archive of the node's state (identity, key shares, DKG state,
    /// audit head; never presignatures or nonces). Opening it needs the store's passphrase or key file. Works
    /// beside a running daemon.
    Backup {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The archive to write (created 0600; refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore an archive of `backup` into the configuration's data directory, which must not exist or be empty
    /// (a new machine, or after the old directory was moved away). The restored node has no presignature.
    Restore {
        /// Node configuration file (its data directory and store passphrase or key file).
        #[arg(long, short)]
        config: PathBuf,
        /// The archive.
        archive: PathBuf,
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
        #[arg(long, conflicts_with = "key_file")]
        primes: Option<PathBuf>,
        /// Split this existing private key instead of dealing a fresh RSA key: PEM or DER (PKCS#1, PKCS#8, SEC1)
        /// or a BIND / ldns `K*.private` file; RSA (any primes, at least 2048 bits), P-256 or Ed25519. The file
        /// is read once, the key zeroized after the split; the file itself is left for the operator to destroy.
        #[arg(long, conflicts_with = "bits")]
        key_file: Option<PathBuf>,
        /// Accept an RSA key below 2048 bits (tests only: such keys are too weak to keep).
        #[arg(long, requires = "key_file")]
        allow_small_modulus: bool,
    },
    /// Create a coordinator TLS identity file, sealed with a passphrase ($TCRYPTO_COORDINATOR_PASSPHRASE or
    /// --passphrase-file), and print the fingerprint nodes pin.
    CoordinatorInit {
        /// Output file (created with mode 0600; refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        /// Name in the certificate.
        #[arg(long, default_value = "coordinator")]
        name: String,
        /// File holding the passphrase (else $TCRYPTO_COORDINATOR_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Use cheap Argon2id parameters (tests only).
        #[arg(long, hide = true)]
        insecure_fast_kdf: bool,
    },
    /// Seal an unsealed coordinator identity file (written by an earlier version) in place with a passphrase
    /// ($TCRYPTO_COORDINATOR_PASSPHRASE or --passphrase-file); the fingerprint nodes pin stays the same.
    CoordinatorSeal {
        /// The identity file.
        #[arg(long)]
        identity: PathBuf,
        /// File holding the passphrase (else $TCRYPTO_COORDINATOR_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Use cheap Argon2id parameters (tests only).
        #[arg(long, hide = true)]
        insecure_fast_kdf: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the chain of every entry (rotated files included), the checkpoint signatures against the node's
    /// `node.pub`, and the head file: exit 0 when intact, 1 naming file and line of each problem. Needs no
    /// passphrase.
    Verify {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the entries (rotated files first) that match every filter given.
    Show {
        /// Node configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only entries of this key (id or unique prefix).
        #[arg(long)]
        key: Option<String>,
        /// Only entries at or after this time (RFC 3339, e.g. 2026-12-07T06:00:00Z, or ms since the epoch).
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this time (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Only entries with this outcome: `ok`, `error`, or an error code such as `UnknownKey`.
        #[arg(long)]
        outcome: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            config,
            insecure_fast_kdf,
        } => init(&config, insecure_fast_kdf),
        Command::Serve { config, arithmetic } => serve(&config, arithmetic),
        Command::Status { config } => match status(&config) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Import { config, bundle } => import(&config, &bundle),
        Command::Backup { config, out } => backup(&config, &out),
        Command::Restore { config, archive } => restore(&config, &archive),
        Command::Audit(AuditCommand::Verify { config }) => match audit_verify(&config) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Audit(AuditCommand::Show {
            config,
            key,
            since,
            until,
            outcome,
        }) => audit_show(
            &config,
            key.as_deref(),
            since.as_deref(),
            until.as_deref(),
            outcome.as_deref(),
        ),
        Command::CoordinatorInit {
            out,
            name,
            passphrase_file,
            insecure_fast_kdf,
        } => coordinator_init(&out, &name, passphrase_file.as_deref(), insecure_fast_kdf),
        Command::CoordinatorSeal {
            identity,
            passphrase_file,
            insecure_fast_kdf,
        } => coordinator_seal(&identity, passphrase_file.as_deref(), insecure_fast_kdf),
        #[cfg(feature = "dealer")]
        Command::Ceremony {
            threshold,
            bits,
            nodes,
            out,
            primes,
            key_file,
            allow_small_modulus,
        } => match key_file {
            Some(key_file) => ceremony_import(threshold, &key_file, allow_small_modulus, &nodes, &out),
            None => ceremony(threshold, bits, &nodes, &out, primes.as_deref()),
        },
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

/// `--version`: the version, and the arithmetic backends of this build (`serve` picks one with the configuration's
/// `arithmetic` or `--arithmetic`).
fn long_version() -> &'static str {
    use tcrypto::backend::Backend;
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let built: Vec<&str> = Backend::ALL
            .into_iter()
            .filter(|b| b.is_built())
            .map(Backend::name)
            .collect();
        format!(
            "{}\narithmetic backends: {} (default: {})",
            env!("CARGO_PKG_VERSION"),
            built.join(", "),
            Backend::DEFAULT
        )
    })
}

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

fn serve(config: &Path, arithmetic: Option<tcrypto::backend::Backend>) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    // The arithmetic backend first: it is fixed for the life of the process by its first use.
    let arithmetic = match arithmetic {
        Some(backend) => {
            tcrypto::backend::install(backend).map_err(|e| format!("--arithmetic {backend}: {e}"))?;
            backend
        }
        None => cfg.install_arithmetic(config)?,
    };
    tracing::info!(%arithmetic, "arithmetic backend");
    let pins = cfg.pinned_coordinators()?;
    if pins.is_empty() {
        return Err(format!("{}: no coordinator pinned", config.display()).into());
    }
    #[cfg(feature = "test-support")]
    if let Some(modes) = tcrypto_net::node::misbehave::install_from_env()? {
        tracing::warn!(?modes, "test build: this node MISBEHAVES on purpose");
    }
    let (store, identity) = open_store(&cfg)?;
    // Before anything is cleaned up or loaded: a second daemon on this directory would share its one-time state.
    let _serving = tcrypto_net::node::store::lock_data_dir(&cfg.data_dir)?;
    let removed = store.remove_stale_temporaries()?;
    if removed > 0 {
        tracing::warn!(removed, "removed temporary files left by an interrupted write");
    }
    let access = tcrypto_net::node::server::Access {
        tls: tcrypto_net::transport::tls::server_config(&identity.tls, pins.iter().copied())?,
        pinned: pins,
    };
    let audit = Arc::new(
        AuditLog::open_with(
            &cfg.audit_log(),
            Some(identity.signing.clone()),
            cfg.audit_rotation(),
        )
        .map_err(|e| format!("{}: {e}", cfg.audit_log().display()))?,
    );
    let identity = Arc::new(identity);
    let node = Arc::new(SignerNode::with_witness(
        identity.clone(),
        Some(Arc::new(store)),
        audit.clone(),
        ReplayGuard::new(cfg.max_clock_skew_ms, ReplayGuard::DEFAULT_MAX_ENTRIES),
        Some(&cfg.witness()),
    ));
    node.set_peers(cfg.peer_publics()?);
    if let Some(secs) = cfg.reshare_claim_secs {
        node.set_reshare_claim_ttl(Duration::from_secs(secs));
    }
    // A policy file that does not load stops the start: the node never signs under less than what it says.
    if let Some(path) = cfg.policy_path(config) {
        let policy = tcrypto_net::node::policy::Policy::load(&path)?;
        println!("signing policy {}", path.display());
        node.set_policy(Some(policy));
    }
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
            "tcrypto-node {} listening on {} with {keys} keys (arithmetic: {arithmetic})",
            node.name(),
            cfg.listen
        );
        if let Some(addr) = cfg.metrics_listen {
            let metrics = Arc::new(tcrypto_net::metrics::NodeMetrics::new());
            node.set_metrics(metrics.clone());
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
            let of = node.clone();
            tokio::spawn(tcrypto_net::metrics::serve_metrics(
                listener,
                Arc::new(move || metrics.render(&of.stock())),
            ));
            println!("metrics on http://{addr}/metrics");
        }
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
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let pid_file = cfg.data_dir.join(PID_FILE);
        write_loaded_keys(&cfg.data_dir, &node);
        tcrypto_net::node::store::write_atomic(
            &cfg.data_dir,
            PID_FILE,
            format!("{}\n", std::process::id()).as_bytes(),
            0,
        )?;
        let (access_tx, access_rx) = tokio::sync::watch::channel(access);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let served = tcrypto_net::node::server::serve_until(listener, access_rx, node.clone(), stop_rx);
        tokio::pin!(served);
        loop {
            tokio::select! {
                () = &mut served => break,
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("interrupted; shutting down");
                    break;
                }
                _ = term.recv() => {
                    tracing::info!("terminated; shutting down");
                    break;
                }
                _ = hup.recv() => {
                    reload(config, &node);
                    write_loaded_keys(&cfg.data_dir, &node);
                    match reload_access(config, &identity) {
                        Ok(a) => {
                            tracing::info!(pinned = a.pinned.len(), "SIGHUP: coordinator pins reloaded");
                            let _ = access_tx.send(a);
                        }
                        Err(e) => tracing::error!(error = %e, "SIGHUP: coordinator pins not reloaded; unchanged"),
                    }
                }
            }
        }
        // Graceful: no new connection or request; what was read is answered, then each connection is closed.
        let _ = stop_tx.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut served).await.is_err() {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
        let _ = std::fs::remove_file(&pid_file);
        audit.sync()?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// How long a stopping daemon waits for the requests it already read.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The coordinator pins of the configuration file, for a running daemon (SIGHUP).
fn reload_access(config: &Path, identity: &NodeIdentity) -> Result<tcrypto_net::node::server::Access> {
    let cfg = NodeConfig::load(config)?;
    let pinned = cfg.pinned_coordinators()?;
    if pinned.is_empty() {
        return Err(format!("{}: no coordinator pinned", config.display()).into());
    }
    Ok(tcrypto_net::node::server::Access {
        tls: tcrypto_net::transport::tls::server_config(&identity.tls, pinned.iter().copied())?,
        pinned,
    })
}

/// `tcrypto-node backup`.
fn backup(config: &Path, out: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let (store, _) = open_store(&cfg)?;
    let summary = tcrypto_net::node::backup::write_backup(
        &store,
        out,
        tcrypto_net::node::server::unix_ms_now(),
        &mut rand::rng(),
    )?;
    println!(
        "backup of node {} written to {}: {} secrets, {} bytes ({} presignature files left out: one-time material)",
        cfg.name,
        out.display(),
        summary.secrets,
        summary.bytes,
        summary.skipped_one_time
    );
    Ok(())
}

/// `tcrypto-node restore`.
fn restore(config: &Path, archive: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let summary = tcrypto_net::node::backup::restore_backup(archive, &cfg.data_dir, &cfg.store_key()?)?;
    println!(
        "restored {} secrets of the backup made at {} ms into {}; the node starts without presignatures",
        summary.secrets,
        summary.created_ms,
        cfg.data_dir.display()
    );
    Ok(())
}

/// `tcrypto-node audit verify`: prints what [`tcrypto_net::node::audit::verify`] found; `Ok(false)` when the log fails.
fn audit_verify(config: &Path) -> Result<bool> {
    let cfg = NodeConfig::load(config)?;
    let public_file = cfg.data_dir.join("node.pub");
    let public = tcrypto_net::config::decode_public(
        &std::fs::read_to_string(&public_file).map_err(|e| format!("{}: {e}", public_file.display()))?,
    )?;
    let key = public
        .verifying_key()
        .map_err(|e| format!("{}: {e}", public_file.display()))?;
    let report = tcrypto_net::node::audit::verify(&cfg.audit_log(), &key)?;
    for note in &report.notes {
        println!("note: {note}");
    }
    for problem in &report.problems {
        println!("PROBLEM: {problem}");
    }
    println!(
        "{} files, {} entries (last {}), {} checkpoints verified, {} entries after the last checkpoint: {}",
        report.files.len(),
        report.entries,
        report.last_seq,
        report.checkpoints,
        report.unsigned_tail,
        if report.ok() {
            "intact"
        } else {
            "TAMPERED OR DAMAGED"
        }
    );
    Ok(report.ok())
}

/// Parses `--since`/`--until`: ms since the epoch or RFC 3339.
fn parse_time_ms(text: &str) -> Result<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{text:?}: not ms since the epoch nor an RFC 3339 time ({e})"))?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("{text:?}: before 1970").into())
}

/// `tcrypto-node audit show`.
fn audit_show(
    config: &Path,
    key: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    outcome: Option<&str>,
) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let since = since.map(parse_time_ms).transpose()?;
    let until = until.map(parse_time_ms).transpose()?;
    let log = cfg.audit_log();
    let mut files: Vec<PathBuf> = tcrypto_net::node::audit::rotated_files(&log)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    files.push(log);
    let field = |line: &str, name: &str| -> Option<String> {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
    };
    let mut out = std::io::stdout().lock();
    for path in files {
        let text = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", path.display()).into()),
        };
        for line in text.lines() {
            if let Some(k) = key
                && !field(line, "key").is_some_and(|v| v.starts_with(&k.to_ascii_lowercase()))
            {
                continue;
            }
            let time = field(line, "time_ms").and_then(|t| t.parse::<u64>().ok());
            if since.is_some_and(|s| time.is_none_or(|t| t < s))
                || until.is_some_and(|u| time.is_none_or(|t| t >= u))
            {
                continue;
            }
            if let Some(o) = outcome {
                let got = field(line, "outcome").unwrap_or_default();
                let matches = match o {
                    "ok" => got == "ok",
                    "error" => got.starts_with("error"),
                    code => got
                        .strip_prefix("error:")
                        .is_some_and(|c| c.eq_ignore_ascii_case(code)),
                };
                if !matches {
                    continue;
                }
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Writes the health file (0600, crash-safe): one problem per line, empty when all is well.
fn write_health(cfg: &NodeConfig, lines: &[String]) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    tcrypto_net::node::store::write_atomic(&cfg.data_dir, "health", text.as_bytes(), 0)?;
    Ok(())
}

/// Rewrites [`LOADED_FILE`] with the keys `node` serves now.
fn write_loaded_keys(data_dir: &Path, node: &SignerNode) {
    let mut ids: Vec<String> = node.key_infos().iter().map(|i| i.key.to_string()).collect();
    ids.sort();
    let text: String = ids.iter().map(|k| format!("{k}\n")).collect();
    if let Err(e) = tcrypto_net::node::store::write_atomic(data_dir, LOADED_FILE, text.as_bytes(), 1) {
        tracing::error!(error = %e, "cannot write the list of loaded keys");
    }
}

/// SIGHUP: loads the keys imported since start and re-reads `[[peers]]`. Problems are logged; the daemon goes on.
fn reload(config: &Path, node: &SignerNode) {
    match node.load_new_keys() {
        Ok((added, failures)) => {
            for key in &added {
                tracing::info!(%key, "SIGHUP: imported key loaded");
            }
            for f in &failures {
                tracing::error!(file = %f, "SIGHUP: stored share not loaded");
            }
            tracing::info!(
                added = added.len(),
                held = node.key_count(),
                "SIGHUP: key store rescanned"
            );
        }
        Err(e) => tracing::error!(error = %e, "SIGHUP: key store rescan failed"),
    }
    match NodeConfig::load(config).and_then(|c| {
        c.peer_publics()
            .map_err(|source| tcrypto_net::config::ConfigError::Identity {
                path: config.to_path_buf(),
                source,
            })
    }) {
        Ok(peers) => node.set_peers(peers),
        Err(e) => tracing::error!(error = %e, "SIGHUP: configuration not reloaded; peers unchanged"),
    }
    // The policy: a file that does not load leaves the previous policy in force (never a looser one by mistake).
    match NodeConfig::load(config).map(|c| c.policy_path(config)) {
        Ok(Some(path)) => match tcrypto_net::node::policy::Policy::load(&path) {
            Ok(p) => {
                tracing::info!(file = %path.display(), "SIGHUP: signing policy reloaded");
                node.set_policy(Some(p));
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: signing policy not reloaded; the previous one stays")
            }
        },
        Ok(None) => {
            if node.policy_summary().is_some() {
                tracing::warn!("SIGHUP: policy_file removed from the configuration; no signing policy now");
            }
            node.set_policy(None);
        }
        Err(_) => {}
    }
}

/// `tcrypto-node status`: its exit code (see the command's help).
fn status(config: &Path) -> Result<u8> {
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
    let mut policy_broken = false;
    match cfg.policy_path(config) {
        None => println!("policy none (every request of a pinned coordinator is signed)"),
        Some(path) => match tcrypto_net::node::policy::Policy::load(&path) {
            Ok(p) => {
                println!("policy {}", path.display());
                for line in p.summary() {
                    println!("  policy {line}");
                }
            }
            Err(e) => {
                println!("policy {} does not load: {e}", path.display());
                policy_broken = true;
            }
        },
    }
    // Damage found by the last start of the daemon, and files moved aside.
    let health = std::fs::read_to_string(cfg.health_file()).unwrap_or_default();
    let problems: Vec<&str> = health.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut troubled = !problems.is_empty() || policy_broken;
    println!("problems {}", problems.len());
    for p in problems {
        println!("  problem {p}");
    }
    let mut quarantined: Vec<String> =
        std::fs::read_dir(cfg.data_dir.join(tcrypto_net::node::store::QUARANTINE_DIR))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
    quarantined.sort();
    troubled |= !quarantined.is_empty();
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
    Ok(match (listening, troubled) {
        (false, _) => 4,
        (true, true) => 3,
        (true, false) => 0,
    })
}

fn import(config: &Path, bundle: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    let (store, identity) = open_store(&cfg)?;
    let sealed = SealedBundle::decode(&std::fs::read(bundle)?)?;
    let opened = sealed.open(&identity)?;
    let signing = identity.signing.clone();
    let node = SignerNode::new(
        Arc::new(identity),
        None,
        Arc::new(tcrypto_net::node::audit::MemoryAudit::default()),
        ReplayGuard::default(),
    );
    node.check_bundle(&opened)?;
    let name = format!("key-{}", opened.info.key);
    if store.get(&name)?.is_some() {
        return Err(format!("key {} is already held", opened.info.key).into());
    }
    store.put(&name, &opened.encode(), &mut rand::rng())?;
    let audit = AuditLog::open_with(&cfg.audit_log(), Some(signing), cfg.audit_rotation())?;
    use tcrypto_net::node::audit::AuditSink as _;
    audit.record(&tcrypto_net::node::audit::AuditRecord {
        time_ms: tcrypto_net::node::server::unix_ms_now(),
        requester: None,
        request: 0,
        session: tcrypto::SessionId([0; 32]),
        operation: "import-bundle",
        key: Some(opened.info.key),
        mechanism: None,
        payload: None,
        outcome: Ok(()),
        rule: None,
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
    let Some(pid) = signal_daemon(&cfg.data_dir)? else {
        println!("node not running: it serves the key from its next start");
        return Ok(());
    };
    let key = opened.info.key.to_string();
    let loaded = cfg.data_dir.join(LOADED_FILE);
    let start = std::time::Instant::now();
    while start.elapsed() < IMPORT_WAIT {
        let serves = std::fs::read_to_string(&loaded).is_ok_and(|t| t.lines().any(|l| l == key));
        if serves {
            println!("running node (pid {pid}) serves key {key} now");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "running node (pid {pid}) was sent SIGHUP but does not list key {key} in {} after {IMPORT_WAIT:?}; see its log",
        loaded.display()
    )
    .into())
}

/// Sends SIGHUP to the daemon serving `data_dir` (its pid file), if it runs; returns its pid.
fn signal_daemon(data_dir: &Path) -> Result<Option<i32>> {
    let pid_file = data_dir.join(PID_FILE);
    let text = match std::fs::read_to_string(&pid_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", pid_file.display()).into()),
    };
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{}: not a process id", pid_file.display()))?;
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return Err(format!("{}: not a process id", pid_file.display()).into());
    };
    // A pid file left by a daemon that died may name another program by now: signal only a tcrypto-node.
    if let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero())) {
        if !String::from_utf8_lossy(&cmdline).contains("tcrypto-node") {
            eprintln!(
                "tcrypto-node: {} names process {pid:?}, which is not a tcrypto-node (stale pid file)",
                pid_file.display()
            );
            return Ok(None);
        }
    } else if std::path::Path::new("/proc/self").exists() {
        return Ok(None);
    }
    match rustix::process::kill_process(pid, rustix::process::Signal::HUP) {
        Ok(()) => Ok(Some(pid.as_raw_nonzero().get())),
        Err(rustix::io::Errno::SRCH) => Ok(None),
        Err(e) => Err(format!("cannot signal pid {pid:?} of {}: {e}", pid_file.display()).into()),
    }
}

/// The coordinator passphrase for `coordinator-init`/`coordinator-seal`: the file, else the environment; never empty.
fn coordinator_passphrase(file: Option<&Path>) -> Result<zeroize::Zeroizing<String>> {
    use tcrypto_net::config::COORDINATOR_PASSPHRASE_ENV;
    let pass =
        match file {
            Some(f) => {
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
                );
                zeroize::Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())
            }
            None => zeroize::Zeroizing::new(std::env::var(COORDINATOR_PASSPHRASE_ENV).map_err(|_| {
                format!("no passphrase: set ${COORDINATOR_PASSPHRASE_ENV} or --passphrase-file")
            })?),
        };
    if pass.is_empty() {
        return Err("empty passphrase refused".into());
    }
    Ok(pass)
}

fn sealed_identity(id: &TlsIdentity, passphrase: Option<&Path>, fast: bool) -> Result<Vec<u8>> {
    let pass = coordinator_passphrase(passphrase)?;
    let cost = if fast { KdfCost::TESTING } else { KdfCost::DEFAULT };
    Ok(SealedTlsIdentity::seal(id, &pass, cost, &mut rand::rng())?.encode())
}

fn coordinator_init(out: &Path, name: &str, passphrase: Option<&Path>, fast: bool) -> Result<()> {
    let id = TlsIdentity::generate(name)?;
    let sealed = sealed_identity(&id, passphrase, fast)?;
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
    f.write_all(&sealed)?;
    f.sync_all()?;
    println!("coordinator identity written to {} (sealed)", out.display());
    println!("# for each node configuration:");
    println!(
        "[[coordinators]]\nname = \"{name}\"\nspki_sha256 = \"{}\"",
        id.fingerprint()
    );
    Ok(())
}

fn coordinator_seal(path: &Path, passphrase: Option<&Path>, fast: bool) -> Result<()> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let id = match IdentityFile::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))? {
        IdentityFile::Sealed(_) => return Err(format!("{} is already sealed", path.display()).into()),
        IdentityFile::Unsealed(id) => id,
    };
    let sealed = sealed_identity(&id, passphrase, fast)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    tcrypto_net::node::store::write_atomic(dir, name, &sealed, 0)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    println!(
        "{} sealed; fingerprint unchanged: {}",
        path.display(),
        id.fingerprint()
    );
    Ok(())
}

/// The nodes' public identities from their `node.pub` files, in signer order.
#[cfg(feature = "dealer")]
fn node_publics(nodes: &[PathBuf]) -> Result<Vec<tcrypto_net::transport::identity::NodePublic>> {
    nodes
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            tcrypto_net::config::decode_public(&text).map_err(|e| format!("{}: {e}", p.display()).into())
        })
        .collect()
}

/// Seals bundle `i` to node `i` and writes it as `OUT/<node name>.bundle`.
#[cfg(feature = "dealer")]
fn write_sealed_bundles(
    bundles: &[tcrypto_net::transport::bundle::ShareBundle],
    publics: &[tcrypto_net::transport::identity::NodePublic],
    out: &Path,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    for (bundle, public) in bundles.iter().zip(publics) {
        let sealed = bundle.seal(public, rng)?;
        let path = out.join(format!("{}.bundle", public.name));
        std::fs::write(&path, sealed.encode())?;
        println!(
            "share {} sealed to {} in {}",
            bundle.info.signer,
            public.name,
            path.display()
        );
    }
    Ok(())
}

/// The ceremony for an existing key: parse it, split it `threshold`-of-(number of nodes), seal each share to its
/// node, and write the original public key (`public.pem`) and the key id. The key is zeroized once split.
#[cfg(feature = "dealer")]
fn ceremony_import(
    threshold: u16,
    key_file: &Path,
    allow_small_modulus: bool,
    nodes: &[PathBuf],
    out: &Path,
) -> Result<()> {
    use tcrypto::import::SplitKey;
    use tcrypto_net::algo::{EcdsaPublicKey, PublicKey, ecdsa_bundles, ed25519_bundles, rsa_bundles};
    let publics = node_publics(nodes)?;
    let parties = u16::try_from(publics.len())?;
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", key_file.display());
    let key = {
        let bytes = zeroize::Zeroizing::new(std::fs::read(key_file).map_err(|e| named(&e))?);
        tcrypto::import::parse(&bytes).map_err(|e| named(&e))?
    };
    let mut options = tcrypto::rsa::SplitOptions::default();
    if allow_small_modulus {
        options = options.allowing_small_modulus();
    }
    let mut rng = rand::rng();
    let split = match tcrypto::import::split(key, threshold, parties, &options, &mut rng) {
        Ok(split) => split,
        Err(e @ tcrypto::import::ImportError::Rsa(tcrypto::rsa::Error::ModulusTooSmall { .. })) => {
            return Err(format!("{} (--allow-small-modulus for tests)", named(&e)).into());
        }
        Err(e) => return Err(named(&e).into()),
    };
    let (bundles, public) = match split {
        SplitKey::Rsa { public, shares } => (rsa_bundles(&public, &shares), PublicKey::Rsa(Box::new(public))),
        SplitKey::P256 { public, shares } => {
            let pk = EcdsaPublicKey::new(public)?;
            (ecdsa_bundles(&pk, &shares), PublicKey::Ecdsa(Box::new(pk)))
        }
        SplitKey::Ed25519 { public, shares } => (
            ed25519_bundles(&public, &shares),
            PublicKey::Ed25519(Box::new(public)),
        ),
        _ => return Err(named(&"unsupported key kind").into()),
    };
    write_sealed_bundles(&bundles, &publics, out, &mut rng)?;
    drop(bundles);
    let key_id = bundles_key_id(&public)?;
    std::fs::write(out.join("public.pem"), public_pem(&public)?)?;
    std::fs::write(out.join("key-id"), format!("{key_id}\n"))?;
    println!(
        "imported {} key {key_id}, {threshold}-of-{parties}, from {}",
        public.algorithm().name(),
        key_file.display()
    );
    Ok(())
}

/// The id the nodes list a key under.
#[cfg(feature = "dealer")]
fn bundles_key_id(public: &tcrypto_net::algo::PublicKey) -> Result<tcrypto::KeyId> {
    use tcrypto_net::algo::PublicKey;
    match public {
        PublicKey::Rsa(pk) => Ok(pk.key_id()),
        PublicKey::Ecdsa(pk) => Ok(pk.key_id()),
        PublicKey::Ed25519(pk) => Ok(tcrypto_net::algo::ed25519_key_id(pk)),
        _ => Err("unsupported key kind".into()),
    }
}

/// SubjectPublicKeyInfo PEM of a key.
#[cfg(feature = "dealer")]
fn public_pem(public: &tcrypto_net::algo::PublicKey) -> Result<String> {
    let body = data_encoding::BASE64.encode(&public.to_spki_der()?);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|l| std::str::from_utf8(l).ok())
        .collect();
    Ok(format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    ))
}

#[cfg(feature = "dealer")]
fn ceremony(threshold: u16, bits: usize, nodes: &[PathBuf], out: &Path, primes: Option<&Path>) -> Result<()> {
    use tcrypto::rsa::{SafePrime, deal, deal_with_primes};
    let publics = node_publics(nodes)?;
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
    write_sealed_bundles(
        &tcrypto_net::algo::rsa_bundles(&pk, &shares),
        &publics,
        out,
        &mut rng,
    )?;
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
