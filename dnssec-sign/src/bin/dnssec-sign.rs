//! `dnssec-sign`: sign, verify and digest DNS zones; generate keys; print DS records.
//!
//! Flags follow `ldns-signzone` and `dnssec-signzone` where they can: `-o` origin, `-f` output,
//! `-n` NSEC3, `-t` iterations, `-s` salt, `-p`/`-A` opt-out, `-z` ZONEMD, `-i`/`-e` inception
//! and expiration, `-j` jitter, `-N` serial policy, `-K` key directory.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dnssec_sign::denial::Denial;
use dnssec_sign::keys::{Algorithm, DsDigest, LocalKey, ZoneSigningKey, ds_rdata};
use dnssec_sign::rdata::{Nsec3Param, format_time, parse_time, rtype};
use dnssec_sign::sign::{SerialPolicy, SignOptions, Strictness, sign_zone};
use dnssec_sign::verify::{VerifyOptions, verify_zone};
use dnssec_sign::zone::Record;
use dnssec_sign::zonemd::{self, ZonemdHash, ZonemdStatus};
use dnssec_sign::{Name, read_zone_file, write_zone_file};

#[derive(Parser)]
#[command(
    name = "dnssec-sign",
    version,
    about = "DNSSEC zone signer: NSEC, NSEC3, ZONEMD"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Serial {
    Keep,
    Increment,
    Unixtime,
    Date,
}

#[derive(Clone, Copy, ValueEnum)]
enum Hash {
    Sha384,
    Sha512,
}

#[derive(Clone, Copy, ValueEnum)]
enum DsHash {
    Sha256,
    Sha384,
}

/// Keys in a PKCS#11 token (found by label). The PIN comes from DNSSEC_SIGN_PKCS11_PIN.
#[derive(clap::Args)]
struct Pkcs11Args {
    /// PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long = "pkcs11-module", id = "pkcs11_module")]
    module: Option<PathBuf>,
    /// Token label.
    #[arg(long = "pkcs11-token", id = "pkcs11_token")]
    token: Option<String>,
    /// Label of a key-signing key in the token (sign), or of the key to generate (keygen).
    #[arg(long = "pkcs11-ksk", id = "pkcs11_ksk")]
    ksk: Vec<String>,
    /// Label of a zone-signing key in the token.
    #[arg(long = "pkcs11-zsk", id = "pkcs11_zsk")]
    zsk: Vec<String>,
    /// Sessions per key (requests in flight).
    #[arg(long = "pkcs11-sessions", id = "pkcs11_sessions", default_value_t = 4)]
    sessions: usize,
}

impl Pkcs11Args {
    fn token(&self) -> Res<Option<dnssec_sign::pkcs11::Token>> {
        let Some(module) = &self.module else {
            return Ok(None);
        };
        let label = self
            .token
            .as_deref()
            .ok_or("--pkcs11-token is required with --pkcs11-module")?;
        let pin = std::env::var("DNSSEC_SIGN_PKCS11_PIN")
            .map_err(|_| "set the token PIN in DNSSEC_SIGN_PKCS11_PIN")?;
        Ok(Some(dnssec_sign::pkcs11::Token::open(module, label, &pin)?))
    }
}

/// Threshold keys in the cluster (`tcrypto-net`), reached through a coordinator configuration.
#[derive(clap::Args)]
struct ClusterArgs {
    /// Coordinator configuration file (as `tcrypto-node` and the PKCS#11 module read it).
    ///
    /// Any `k` of the `n` nodes sign, for every algorithm: a 3-of-5 key keeps signing with two nodes down. ECDSA
    /// P-256 (algorithm 13) uses presignatures while `2k - 1` nodes are up and the `k`-online protocol DKLs23
    /// otherwise (and for keys with `k > (n + 1) / 2`), without an error.
    #[arg(long = "cluster", id = "cluster_config")]
    config: Option<PathBuf>,
    /// A key-signing key in the cluster: key id (hex), unique id prefix (8+ hex digits) or key tag.
    #[arg(long = "cluster-ksk", id = "cluster_ksk")]
    ksk: Vec<String>,
    /// A zone-signing key in the cluster (same forms as --cluster-ksk).
    #[arg(long = "cluster-zsk", id = "cluster_zsk")]
    zsk: Vec<String>,
    /// DNSSEC algorithm of cluster RSA keys: 8 (RSASHA256) or 10 (RSASHA512).
    #[arg(
        long = "cluster-rsa-algorithm",
        id = "cluster_rsa_algorithm",
        default_value = "8"
    )]
    rsa_algorithm: String,
    /// Signature requests in flight per signing thread and key (a deeper window only queues requests at the
    /// nodes and measured slower; see `dnssec_sign::cluster::DEFAULT_IN_FLIGHT`).
    #[arg(
        long = "cluster-in-flight",
        id = "cluster_in_flight",
        default_value_t = dnssec_sign::cluster::DEFAULT_IN_FLIGHT
    )]
    in_flight: usize,
    /// Seconds to wait for the nodes to connect.
    #[arg(long = "cluster-timeout", id = "cluster_timeout", default_value_t = 10)]
    timeout: u64,
}

impl ClusterArgs {
    fn keys(
        &self,
        owner: &Name,
    ) -> Res<Vec<dnssec_sign::cluster::ClusterKey<tcrypto_net::client::blocking::BlockingEngine>>> {
        use dnssec_sign::cluster::{ClusterKey, ClusterKeyOptions, ClusterKeyRef};
        let Some(config) = &self.config else {
            if self.ksk.is_empty() && self.zsk.is_empty() {
                return Ok(Vec::new());
            }
            return Err("--cluster <coordinator config> is required with --cluster-ksk/--cluster-zsk".into());
        };
        let cluster = dnssec_sign::cluster::connect(config, std::time::Duration::from_secs(self.timeout))?;
        let rsa_algorithm = Algorithm::parse(&self.rsa_algorithm)?;
        let mut keys = Vec::new();
        for (refs, ksk) in [(&self.ksk, true), (&self.zsk, false)] {
            for r in refs {
                let opts = ClusterKeyOptions {
                    ksk,
                    rsa_algorithm,
                    in_flight: self.in_flight,
                };
                keys.push(ClusterKey::find(
                    cluster.clone(),
                    &ClusterKeyRef::parse(r)?,
                    owner,
                    opts,
                )?);
            }
        }
        if keys.is_empty() {
            return Err("--cluster needs at least one --cluster-ksk or --cluster-zsk".into());
        }
        Ok(keys)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Sign a zone file with key files `K<name>+<alg>+<tag>` (as ldns-signzone).
    Sign {
        /// Zone file to sign.
        zonefile: PathBuf,
        /// Key files (base name, `.key` or `.private`); KSKs have flags 257.
        keys: Vec<PathBuf>,
        /// Zone origin (default: $ORIGIN or the SOA owner).
        #[arg(short = 'o', long)]
        origin: Option<String>,
        /// Output file (default: <zonefile>.signed).
        #[arg(short = 'f', long)]
        output: Option<PathBuf>,
        /// Use NSEC3 instead of NSEC.
        #[arg(short = 'n', long = "nsec3")]
        nsec3: bool,
        /// NSEC3 additional iterations (RFC 9276: 0).
        #[arg(short = 't', long, default_value_t = 0)]
        iterations: u16,
        /// NSEC3 salt in hex, `-` for none (RFC 9276: none).
        #[arg(short = 's', long, default_value = "-")]
        salt: String,
        /// NSEC3 opt-out: insecure delegations get no NSEC3.
        #[arg(short = 'p', long = "opt-out", alias = "A")]
        opt_out: bool,
        /// Add a ZONEMD record (repeatable): sha384 or sha512.
        #[arg(short = 'z', long = "zonemd", value_enum)]
        zonemd: Vec<Hash>,
        /// Inception: YYYYMMDDHHmmSS or seconds since the epoch (default now - 1h).
        #[arg(short = 'i', long)]
        inception: Option<String>,
        /// Expiration: YYYYMMDDHHmmSS or seconds since the epoch (default inception + validity).
        #[arg(short = 'e', long)]
        expiration: Option<String>,
        /// Validity in seconds when -e is not given.
        #[arg(long, default_value_t = 30 * 86400)]
        validity: u32,
        /// Spread expirations over this many seconds.
        #[arg(short = 'j', long, default_value_t = 0)]
        jitter: u32,
        /// SOA serial policy.
        #[arg(short = 'N', long, value_enum, default_value = "keep")]
        serial: Serial,
        /// Publish CDS and CDNSKEY for the KSKs.
        #[arg(long)]
        cds: bool,
        /// Keep apex DNSKEYs of the input that belong to no given key (pre-published keys of a
        /// rollover); by default they are removed.
        #[arg(long = "keep-dnskeys")]
        keep_dnskeys: bool,
        /// Accept an expiration time that is already past.
        #[arg(long = "allow-expired")]
        allow_expired: bool,
        /// Refuse, naming file and line, what BIND or Knot only warn about and the signer by
        /// default warns about and goes on: out-of-zone data (dropped), an RRset with differing
        /// TTLs (set to the lowest), NSEC3 iterations or salt (RFC 9276), signatures expiring
        /// sooner than the largest TTL.
        #[arg(long, conflicts_with = "lenient")]
        strict: bool,
        /// Besides the default warnings, set a TTL above 2^31-1 to 0 with a warning, as BIND
        /// does (refused by default).
        #[arg(long)]
        lenient: bool,
        /// Incremental signing: the previous signed version of the zone (it may be the input itself, as
        /// dnssec-signzone accepts a signed input). Its RRSIGs are kept where the RRset is unchanged, the key
        /// still signs, and the signature stays valid for --refresh more seconds; only the rest is signed.
        /// Prints `RRSIGs: kept K, made M, dropped D`.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// With --previous: an RRSIG expiring within this many seconds is made anew (default 7 days).
        #[arg(long, default_value_t = 7 * 86400)]
        refresh: u32,
        /// With --previous: keep previous RRSIGs without checking them against their key (faster; only for
        /// a previous file this tool wrote and nobody changed).
        #[arg(long = "trust-previous")]
        trust_previous: bool,
        /// Pretend the time is this (seconds since the epoch); for reproducible output.
        #[arg(long)]
        now: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Write this run's metrics (Prometheus text format: records, RRSIGs made, kept and dropped, times, the
        /// time of success; with --cluster the coordinator's node metrics too) to this file, replaced whole (for
        /// node_exporter's textfile collector).
        #[arg(long)]
        metrics: Option<PathBuf>,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
        #[command(flatten)]
        cluster: Box<ClusterArgs>,
    },
    /// Verify a signed zone: RRSIGs, NSEC/NSEC3 chain, bitmaps, ZONEMD.
    Verify {
        /// Signed zone file.
        zonefile: PathBuf,
        /// Zone origin.
        #[arg(short = 'o', long)]
        origin: Option<String>,
        /// Check validity periods at this time (default now).
        #[arg(long)]
        now: Option<u64>,
        /// Do not check validity periods.
        #[arg(long)]
        no_time: bool,
        /// Require a valid ZONEMD.
        #[arg(short = 'Z', long)]
        zonemd: bool,
    },
    /// Add (or with --check, verify) ZONEMD on a zone without re-signing it.
    Digest {
        /// Zone file.
        zonefile: PathBuf,
        /// Zone origin.
        #[arg(short = 'o', long)]
        origin: Option<String>,
        /// Only verify the ZONEMD present.
        #[arg(long)]
        check: bool,
        /// Hash to add.
        #[arg(short = 'z', long = "zonemd", value_enum, default_value = "sha384")]
        hash: Vec<Hash>,
        /// Output file (default: <zonefile>.zonemd).
        #[arg(short = 'f', long)]
        output: Option<PathBuf>,
    },
    /// Generate a local key pair as K<name>+<alg>+<tag>.key/.private.
    Keygen {
        /// Zone name.
        name: String,
        /// Algorithm: 8, 10, 13, 15 or a mnemonic.
        #[arg(short = 'a', long, default_value = "13")]
        algorithm: String,
        /// RSA modulus size.
        #[arg(short = 'b', long, default_value_t = 2048)]
        bits: usize,
        /// Key-signing key (flags 257, SEP).
        #[arg(short = 'k', long = "ksk", alias = "f")]
        ksk: bool,
        /// Directory for the files.
        #[arg(short = 'K', long, default_value = ".")]
        directory: PathBuf,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
    },
    /// Key management: sign under a policy with automatic rollovers, confirm DS changes, show the state.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print DS records for key files.
    Ds {
        /// Key files.
        #[arg(required = true)]
        keys: Vec<PathBuf>,
        /// Digest type (repeatable).
        #[arg(short = 'd', long = "digest", value_enum, default_value = "sha256")]
        digest: Vec<DsHash>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Sign a zone under a key policy: make keys when needed, move rollovers on by the clock, sign with the
    /// keys the state says, and print what the operator must do next and when. Writes the signed zone, then the
    /// state file `dnssec-state.toml` of the key directory.
    Sign {
        /// Zone file to sign (unsigned).
        zonefile: PathBuf,
        /// Policy file (TOML; see the README's "Key rollovers").
        #[arg(long)]
        policy: PathBuf,
        /// Key directory: local key files and the state file.
        #[arg(short = 'K', long = "key-dir")]
        key_dir: PathBuf,
        /// Zone origin (default: $ORIGIN or the SOA owner).
        #[arg(short = 'o', long)]
        origin: Option<String>,
        /// Output file (default: <zonefile>.signed).
        #[arg(short = 'f', long)]
        output: Option<PathBuf>,
        /// NSEC (default: NSEC3 with RFC 9276 parameters).
        #[arg(long)]
        nsec: bool,
        /// Add a ZONEMD record (repeatable): sha384 or sha512.
        #[arg(short = 'z', long = "zonemd", value_enum)]
        zonemd: Vec<Hash>,
        /// SOA serial policy.
        #[arg(short = 'N', long, value_enum, default_value = "unixtime")]
        serial: Serial,
        /// The previous signed zone (usually the last output): its signatures are kept where they still hold.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// The time (seconds since the epoch); default now.
        #[arg(long)]
        now: Option<u64>,
        /// Threshold of keys the cluster makes (ECDSA P-256, Ed25519) when the policy's key-source is cluster.
        #[arg(long = "cluster-threshold", default_value_t = 2)]
        cluster_threshold: u16,
        /// Write this run's metrics to this file, replaced whole (as `dnssec-sign sign --metrics`).
        #[arg(long)]
        metrics: Option<PathBuf>,
        #[command(flatten)]
        pkcs11: Box<Pkcs11Args>,
        #[command(flatten)]
        cluster: Box<ClusterArgs>,
    },
    /// Confirm that the parent publishes the DS set the zone waits for (after adding or removing a DS there).
    DsSeen {
        /// Zone name.
        zone: String,
        /// Key directory.
        #[arg(short = 'K', long = "key-dir")]
        key_dir: PathBuf,
        /// The parent's DS records (zone-file form, e.g. from `dig +noall +answer DS <zone>`): checked to hold the
        /// expected DS (and not the DS being removed) before the confirmation is recorded.
        #[arg(long = "parent-ds")]
        parent_ds: Option<PathBuf>,
        /// The time (seconds since the epoch); default now.
        #[arg(long)]
        now: Option<u64>,
    },
    /// Show keys, their states, the rollover in progress, the next step and when, and (with --signed) the
    /// signatures that expire soonest.
    Status {
        /// Zone name.
        zone: String,
        /// Policy file.
        #[arg(long)]
        policy: PathBuf,
        /// Key directory.
        #[arg(short = 'K', long = "key-dir")]
        key_dir: PathBuf,
        /// The signed zone: list the RRSIGs that expire soonest.
        #[arg(long)]
        signed: Option<PathBuf>,
        /// How many RRSIGs to list.
        #[arg(long, default_value_t = 5)]
        soonest: usize,
        /// The time (seconds since the epoch); default now.
        #[arg(long)]
        now: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let interactive = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(interactive)
        .init();
    match run(cli, interactive) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dnssec-sign: error: {e}");
            ExitCode::from(2)
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn origin_arg(o: Option<&str>) -> Res<Option<Name>> {
    Ok(match o {
        Some(o) => Some(Name::parse(
            if o.ends_with('.') {
                o.to_string()
            } else {
                format!("{o}.")
            }
            .as_str(),
            None,
        )?),
        None => None,
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes a run's metrics file (`--metrics`), the coordinator's after them when cluster keys signed.
fn write_metrics(
    file: &std::path::Path,
    zone: &Name,
    stats: &dnssec_sign::sign::SignStats,
    coordinator: Option<String>,
) -> Res<()> {
    let run = dnssec_sign::metrics::run_metrics(&zone.to_string(), stats, now_secs());
    dnssec_sign::metrics::write_textfile(file, &dnssec_sign::metrics::with_coordinator(run, coordinator))
        .map_err(|e| format!("{}: {e}", file.display()).into())
}

fn time_arg(s: Option<&str>) -> Res<Option<u32>> {
    match s {
        None => Ok(None),
        Some(s) => Ok(Some(parse_time(s).ok_or_else(|| format!("bad time {s:?}"))?)),
    }
}

fn zonemd_hash(h: Hash) -> ZonemdHash {
    match h {
        Hash::Sha384 => ZonemdHash::Sha384,
        Hash::Sha512 => ZonemdHash::Sha512,
    }
}

fn run(cli: Cli, interactive: bool) -> Res<ExitCode> {
    match cli.command {
        Command::Sign {
            zonefile,
            keys,
            origin,
            output,
            nsec3,
            iterations,
            salt,
            opt_out,
            zonemd,
            inception,
            expiration,
            validity,
            jitter,
            serial,
            cds,
            keep_dnskeys,
            allow_expired,
            strict,
            lenient,
            previous,
            refresh,
            trust_previous,
            now,
            threads,
            metrics,
            pkcs11,
            cluster,
        } => {
            if let Some(t) = threads {
                rayon::ThreadPoolBuilder::new().num_threads(t).build_global()?;
            }
            let origin = origin_arg(origin.as_deref())?;
            let zone = read_zone_file(&zonefile, origin.as_ref())?;
            let local: Vec<LocalKey> = keys
                .iter()
                .map(|k| LocalKey::read_files(k))
                .collect::<Result<_, _>>()?;
            let mut token_keys = Vec::new();
            if let Some(token) = pkcs11.token()? {
                let owner = zone.origin.clone();
                for (labels, ksk) in [(&pkcs11.ksk, true), (&pkcs11.zsk, false)] {
                    for l in labels {
                        token_keys.push(token.key(l, &owner, ksk, false, pkcs11.sessions)?);
                    }
                }
            }
            let cluster_keys = cluster.keys(&zone.origin)?;
            let keyrefs: Vec<&dyn ZoneSigningKey> = local
                .iter()
                .map(|k| k as &dyn ZoneSigningKey)
                .chain(token_keys.iter().map(|k| k as &dyn ZoneSigningKey))
                .chain(cluster_keys.iter().map(|k| k as &dyn ZoneSigningKey))
                .collect();
            let mut opts = SignOptions::new(now.unwrap_or_else(now_secs));
            opts.inception = time_arg(inception.as_deref())?;
            opts.expiration = time_arg(expiration.as_deref())?;
            if opts.expiration.is_none()
                && let Some(inc) = opts.inception
            {
                opts.expiration = Some(inc.wrapping_add(validity));
            }
            opts.validity = validity;
            opts.jitter = jitter;
            opts.serial = match serial {
                Serial::Keep => SerialPolicy::Keep,
                Serial::Increment => SerialPolicy::Increment,
                Serial::Unixtime => SerialPolicy::UnixTime,
                Serial::Date => SerialPolicy::Date,
            };
            opts.cds = cds;
            opts.keep_dnskeys = keep_dnskeys;
            opts.allow_expired = allow_expired;
            opts.strictness = if strict {
                Strictness::Strict
            } else if lenient {
                Strictness::Lenient
            } else {
                Strictness::Standard
            };
            opts.zonemd = zonemd.into_iter().map(zonemd_hash).collect();
            if let Some(prev) = &previous {
                let old = read_zone_file(prev, Some(&zone.origin))?;
                opts.previous = Some(std::sync::Arc::new(dnssec_sign::sign::Previous::new(old)));
            }
            opts.refresh = refresh;
            opts.verify_previous = !trust_previous;
            opts.denial = if nsec3 {
                let salt = if salt == "-" {
                    Vec::new()
                } else {
                    hex::decode(&salt)?
                };
                Denial::Nsec3 {
                    params: Nsec3Param {
                        hash_algorithm: 1,
                        flags: 0,
                        iterations,
                        salt,
                    },
                    opt_out,
                }
            } else {
                Denial::Nsec
            };
            let records = zone.records.len() as u64;
            let bar = interactive.then(|| {
                let b = indicatif::ProgressBar::new(records);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{spinner} signing [{bar:40}] {pos}/{len} RRsets {per_sec} ETA {eta}",
                ) {
                    b.set_style(style);
                }
                b
            });
            let tick = |n: usize, total: usize| {
                if let Some(b) = &bar {
                    b.set_length(total as u64);
                    b.inc(n as u64);
                }
            };
            tracing::info!(zone = %zone.origin, records, keys = keyrefs.len(), "signing");
            let (signed, stats) = sign_zone(zone, &keyrefs, &opts, Some(&tick))?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let out = output.unwrap_or_else(|| {
                let mut p = zonefile.clone().into_os_string();
                p.push(".signed");
                PathBuf::from(p)
            });
            write_zone_file(&out, &signed.origin, &signed.records)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            if previous.is_some() {
                println!(
                    "RRSIGs: kept {}, made {}, dropped {}",
                    stats.kept, stats.rrsigs, stats.dropped
                );
            }
            if let Some(file) = &metrics {
                let coordinator = cluster_keys
                    .first()
                    .map(|k| tcrypto_net::metrics::coordinator_metrics(k.cluster()));
                write_metrics(file, &signed.origin, &stats, coordinator)?;
            }
            tracing::info!(
                output = %out.display(),
                rrsigs = stats.rrsigs,
                denial = stats.denial_records,
                signing_seconds = stats.signing_seconds,
                rrsigs_per_second = (stats.rrsigs as f64 / stats.signing_seconds.max(1e-9)) as u64,
                total_seconds = stats.total_seconds,
                "signed"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            zonefile,
            origin,
            now,
            no_time,
            zonemd,
        } => {
            let origin = origin_arg(origin.as_deref())?;
            let zone = read_zone_file(&zonefile, origin.as_ref())?;
            let opts = VerifyOptions {
                now: if no_time {
                    None
                } else {
                    Some(now.unwrap_or_else(now_secs))
                },
                require_zonemd: zonemd,
            };
            let problems = verify_zone(&zone, &opts)?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!(
                    "{}: zone verified ({} records)",
                    zonefile.display(),
                    zone.records.len()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{}: {} problem(s)", zonefile.display(), problems.len());
                Ok(ExitCode::from(1))
            }
        }
        Command::Digest {
            zonefile,
            origin,
            check,
            hash,
            output,
        } => {
            let origin = origin_arg(origin.as_deref())?;
            let mut zone = read_zone_file(&zonefile, origin.as_ref())?;
            if check {
                return match zonemd::verify(&zone)? {
                    ZonemdStatus::Valid => {
                        println!("{}: ZONEMD verified", zonefile.display());
                        Ok(ExitCode::SUCCESS)
                    }
                    other => {
                        println!("{}: ZONEMD {:?}", zonefile.display(), other);
                        Ok(ExitCode::from(1))
                    }
                };
            }
            zone.canonicalize();
            let apex = zone.origin.clone();
            if zone.records.iter().any(|r| r.rtype == rtype::RRSIG) {
                tracing::warn!("zone is signed; the new ZONEMD RRset will not be; use `sign -z` instead");
            }
            zone.records
                .retain(|r| !(r.owner == apex && r.rtype == rtype::ZONEMD));
            let soa = zone.soa().ok_or("no SOA at the apex")?.clone();
            let (serial, _) = dnssec_sign::zone::soa_serial_minimum(&soa.rdata).ok_or("bad SOA")?;
            for h in hash {
                let h = zonemd_hash(h);
                let z = dnssec_sign::rdata::Zonemd {
                    serial,
                    scheme: 1,
                    hash_algorithm: h.number(),
                    digest: vec![0; h.len()],
                };
                zone.records.push(Record {
                    owner: apex.clone(),
                    rtype: rtype::ZONEMD,
                    class: 1,
                    ttl: soa.ttl,
                    rdata: z.to_wire().into(),
                });
            }
            zone.canonicalize();
            zonemd::fill_placeholders(&mut zone)?;
            let out = output.unwrap_or_else(|| {
                let mut p = zonefile.clone().into_os_string();
                p.push(".zonemd");
                PathBuf::from(p)
            });
            write_zone_file(&out, &zone.origin, &zone.records)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen {
            name,
            algorithm,
            bits,
            ksk,
            directory,
            pkcs11,
        } => {
            let owner = origin_arg(Some(&name))?.ok_or("no name")?;
            let alg = Algorithm::parse(&algorithm)?;
            if let Some(token) = pkcs11.token()? {
                let label = pkcs11
                    .ksk
                    .first()
                    .ok_or("--pkcs11-ksk <label> names the key to generate")?;
                token.generate(label, alg, bits as u64)?;
                let key = token.key(label, &owner, ksk, false, 1)?;
                println!("{label}: {} key tag {}", alg.mnemonic(), key.dnskey().key_tag());
                return Ok(ExitCode::SUCCESS);
            }
            let key = LocalKey::generate(&owner, alg, ksk, bits, &mut rand::rng())?;
            let base = key.write_files(&directory)?;
            println!(
                "{}",
                base.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { command } => keys_command(command),
        Command::Ds { keys, digest } => {
            for k in keys {
                let key = read_public_key(&k)?;
                for d in &digest {
                    let d = match d {
                        DsHash::Sha256 => DsDigest::Sha256,
                        DsHash::Sha384 => DsDigest::Sha384,
                    };
                    let rd = ds_rdata(&key.0, &key.1, d);
                    println!(
                        "{}\tIN\tDS\t{}",
                        key.0,
                        dnssec_sign::rdata::present(rtype::DS, &rd)
                    );
                }
            }
            let _ = format_time(0);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keys_command(command: KeysCommand) -> Res<ExitCode> {
    use dnssec_sign::rollover::{self, KeyState, Policy, Sources};
    match command {
        KeysCommand::Sign {
            zonefile,
            policy,
            key_dir,
            origin,
            output,
            nsec,
            zonemd,
            serial,
            previous,
            now,
            cluster_threshold,
            metrics,
            pkcs11,
            cluster,
        } => {
            let policy = Policy::read(&policy)?;
            let origin = origin_arg(origin.as_deref())?;
            let zone = read_zone_file(&zonefile, origin.as_ref())?;
            let now = now.unwrap_or_else(now_secs);
            // private keys and the state live there: 0700 when this run makes it
            tcrypto_net::node::store::create_private_dir(&key_dir)
                .map_err(|e| format!("{}: {e}", key_dir.display()))?;
            let mut sources = Sources::local(&key_dir, policy.rsa_bits);
            sources.kind = policy.key_source.clone();
            sources.token = pkcs11.token()?;
            sources.pkcs11_sessions = pkcs11.sessions;
            sources.cluster_threshold = cluster_threshold;
            if let Some(config) = &cluster.config {
                sources.cluster = Some(dnssec_sign::cluster::connect(
                    config,
                    std::time::Duration::from_secs(cluster.timeout),
                )?);
            }
            let mut opts = SignOptions::new(now);
            opts.serial = match serial {
                Serial::Keep => SerialPolicy::Keep,
                Serial::Increment => SerialPolicy::Increment,
                Serial::Unixtime => SerialPolicy::UnixTime,
                Serial::Date => SerialPolicy::Date,
            };
            opts.zonemd = zonemd.into_iter().map(zonemd_hash).collect();
            if nsec {
                opts.denial = Denial::Nsec;
            }
            if let Some(prev) = &previous {
                let old = read_zone_file(prev, Some(&zone.origin))?;
                opts.previous = Some(std::sync::Arc::new(dnssec_sign::sign::Previous::new(old)));
            }
            let (signed, stats, plan, state) = rollover::sign_managed(&policy, zone, &mut sources, opts)?;
            let out = output.unwrap_or_else(|| {
                let mut p = zonefile.clone().into_os_string();
                p.push(".signed");
                PathBuf::from(p)
            });
            // the zone first, the state after: a crash in between repeats the step, never counts a wait from a
            // zone that was not written
            write_zone_file(&out, &signed.origin, &signed.records)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            state.write(&key_dir)?;
            print!("{}", plan.report());
            if previous.is_some() {
                println!(
                    "RRSIGs: kept {}, made {}, dropped {}",
                    stats.kept, stats.rrsigs, stats.dropped
                );
            }
            if let Some(file) = &metrics {
                let coordinator = sources
                    .cluster
                    .as_ref()
                    .map(|c| tcrypto_net::metrics::coordinator_metrics(c));
                write_metrics(file, &signed.origin, &stats, coordinator)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::DsSeen {
            zone,
            key_dir,
            parent_ds,
            now,
        } => {
            let zone = origin_arg(Some(&zone))?.ok_or("no zone")?;
            let mut state = KeyState::load(&key_dir, &zone)?;
            let parent = match &parent_ds {
                Some(f) => Some(rollover::read_parent_ds(f, &zone)?),
                None => None,
            };
            let what = rollover::ds_seen(&mut state, &zone, now.unwrap_or_else(now_secs), parent.as_deref())?;
            state.write(&key_dir)?;
            println!("{what}");
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Status {
            zone,
            policy,
            key_dir,
            signed,
            soonest,
            now,
        } => {
            let policy = Policy::read(&policy)?;
            let zone = origin_arg(Some(&zone))?.ok_or("no zone")?;
            let state = KeyState::load(&key_dir, &zone)?;
            let now = now.unwrap_or_else(now_secs);
            print!("{}", rollover::status(&policy, &state, &zone, now)?);
            if let Some(f) = signed {
                let z = read_zone_file(&f, Some(&zone))?;
                let mut sigs: Vec<(u32, String)> = z
                    .records
                    .iter()
                    .filter(|r| r.rtype == rtype::RRSIG)
                    .filter_map(|r| {
                        let s = dnssec_sign::rdata::Rrsig::from_wire(&r.rdata).ok()?;
                        Some((
                            s.expiration,
                            format!(
                                "{} {} key {}",
                                r.owner,
                                dnssec_sign::rdata::type_name(s.type_covered),
                                s.key_tag
                            ),
                        ))
                    })
                    .collect();
                // serial arithmetic from now (RFC 4034 §3.1.5)
                sigs.sort_by_key(|(e, _)| e.wrapping_sub(now as u32));
                println!("signatures expiring soonest ({}):", f.display());
                for (e, what) in sigs.iter().take(soonest) {
                    println!("  {} {what}", format_time(*e));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads the DNSKEY of a `.key` file (the private part is not needed for DS).
fn read_public_key(path: &Path) -> Res<(Name, dnssec_sign::rdata::Dnskey)> {
    let s = path.to_string_lossy();
    let base = s
        .strip_suffix(".key")
        .or_else(|| s.strip_suffix(".private"))
        .unwrap_or(&s);
    let key_path = PathBuf::from(format!("{base}.key"));
    let text = std::fs::read_to_string(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    // BIND writes .key files without a TTL
    let zone = dnssec_sign::parse_zone(format!("$TTL 3600\n{text}"), &key_path, Some(&Name::root()))?;
    let rec = zone
        .records
        .iter()
        .find(|r| r.rtype == rtype::DNSKEY)
        .ok_or_else(|| format!("{}: no DNSKEY", key_path.display()))?;
    Ok((
        rec.owner.clone(),
        dnssec_sign::rdata::Dnskey::from_wire(&rec.rdata)?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
