//! Error types. Each says whose fault it is: a bad zone file (with file and line), a bad key
//! file, a key source that failed, or an I/O fault.

use std::path::PathBuf;

/// A problem with zone data (names, record data, zone structure).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// A domain name could not be parsed or is malformed.
    #[error("bad domain name: {0}")]
    BadName(String),
    /// Record data could not be parsed or is malformed.
    #[error("bad record data: {0}")]
    BadRdata(String),
    /// A zone file line could not be parsed.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file (or `<input>`).
        file: PathBuf,
        /// 1-based line number where the entry starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading a zone file failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The zone has no SOA at its apex, or more than one.
    #[error("zone structure: {0}")]
    Structure(String),
    /// The zone breaks rules validators enforce (each with file, line, owner and rule).
    #[error("{}", violations(.0))]
    Invalid(Vec<crate::rules::Violation>),
}

fn violations(v: &[crate::rules::Violation]) -> String {
    let shown: Vec<String> = v.iter().take(20).map(ToString::to_string).collect();
    let more = if v.len() > 20 {
        format!("\n... and {} more", v.len() - 20)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join("\n"))
}

/// A problem with a key: its file, its parameters, or the key source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file is malformed.
    #[error("{file}: {message}")]
    BadKeyFile {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The algorithm is not supported by this key source.
    #[error("unsupported DNSSEC algorithm {0}")]
    UnsupportedAlgorithm(u8),
    /// The key source failed to sign.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The key source returned a different number of signatures than requested (its bug).
    #[error("key source returned {got} signatures for {want} requests")]
    BatchMismatch {
        /// Requests sent.
        want: usize,
        /// Signatures received.
        got: usize,
    },
    /// The threshold cluster failed or has no such key.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generation(String),
    /// I/O on a key file failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Any failure of the signing pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The zone is bad.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// A key is bad or failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The options are inconsistent (caller's misuse).
    #[error("invalid signing options: {0}")]
    Options(String),
    /// Writing the output failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
