//! What one signing run did, in the Prometheus text format (`prometheus-client`), for node_exporter's textfile
//! collector or any scraper of files: `dnssec-sign sign --metrics FILE` and `dnssec-sign keys sign --metrics FILE`.
//!
//! | metric | what |
//! |---|---|
//! | `dnssec_sign_records` | records in the input after canonicalization |
//! | `dnssec_sign_rrsigs_made` | RRSIGs the keys were asked for |
//! | `dnssec_sign_rrsigs_kept`, `dnssec_sign_rrsigs_dropped` | RRSIGs of `--previous` kept and not kept |
//! | `dnssec_sign_denial_records` | NSEC or NSEC3 records made |
//! | `dnssec_sign_signing_seconds`, `dnssec_sign_run_seconds` | time making RRSIGs, and for the whole run |
//! | `dnssec_sign_last_success_timestamp_seconds` | when the run ended (alert when it grows old) |
//!
//! Every metric carries the label `zone`. With cluster keys the coordinator's metrics follow
//! ([`tcrypto_net::metrics::coordinator_metrics`]: nodes connected, excluded, latency, failures).

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::sign::SignStats;

/// The zone label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneLabels {
    zone: String,
}

/// The run's metrics for `zone`, ended at `finished` (seconds since the epoch), without the closing `# EOF`
/// (see [`with_coordinator`]).
pub fn run_metrics(zone: &str, stats: &SignStats, finished: u64) -> String {
    let mut registry = Registry::with_prefix("dnssec_sign");
    let labels = ZoneLabels {
        zone: zone.to_string(),
    };
    let counts: [(&str, &str, usize); 5] = [
        (
            "records",
            "Records in the input after canonicalization",
            stats.input_records,
        ),
        ("rrsigs_made", "RRSIGs the keys were asked for", stats.rrsigs),
        (
            "rrsigs_kept",
            "RRSIGs of the previous signed zone kept",
            stats.kept,
        ),
        (
            "rrsigs_dropped",
            "RRSIGs of the previous signed zone not kept",
            stats.dropped,
        ),
        (
            "denial_records",
            "NSEC or NSEC3 records made",
            stats.denial_records,
        ),
    ];
    for (name, help, value) in counts {
        let family = Family::<ZoneLabels, Gauge>::default();
        family
            .get_or_create(&labels)
            .set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, family);
    }
    let seconds: [(&str, &str, f64); 3] = [
        (
            "signing_seconds",
            "Seconds spent making RRSIGs",
            stats.signing_seconds,
        ),
        (
            "run_seconds",
            "Seconds for the whole signing pipeline",
            stats.total_seconds,
        ),
        (
            "last_success_timestamp_seconds",
            "When the last successful run ended (seconds since the epoch)",
            finished as f64,
        ),
    ];
    for (name, help, value) in seconds {
        let family = Family::<ZoneLabels, Gauge<f64, AtomicU64>>::default();
        family.get_or_create(&labels).set(value);
        registry.register(name, help, family);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    out
}

/// Writes `text` to `path` as a whole or not at all (a file beside it, then renamed over it), so a scraper never
/// reads half a file.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The run's metrics followed by the coordinator's when cluster keys signed (`coordinator`: its text, which ends the
/// exposition), else closed by `# EOF`.
pub fn with_coordinator(run: String, coordinator: Option<String>) -> String {
    run + coordinator.as_deref().unwrap_or("# EOF\n")
}
