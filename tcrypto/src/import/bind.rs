//! BIND `.private` key files (`dnssec-keygen`), which ldns (`ldns-keygen`) writes in the same format: a strict
//! reader for `Private-key-format: v1.2` and `v1.3` and DNSSEC algorithms 8 (RSASHA256), 10 (RSASHA512),
//! 13 (ECDSAP256SHA256) and 15 (ED25519).
//!
//! The format, as BIND's `dst_parse.c` writes it: one `Name: value` field per line; first `Private-key-format`,
//! then `Algorithm: N (MNEMONIC)`, then the key fields in base64 (RSA: `Modulus`, `PublicExponent`,
//! `PrivateExponent`, `Prime1`, `Prime2`, `Exponent1`, `Exponent2`, `Coefficient`; ECDSA and EdDSA: `PrivateKey`),
//! then in v1.3 the timing metadata (`Created: YYYYMMDDHHMMSS`, `Publish`, `Activate` …). This reader refuses an
//! unknown field, a repeated field, a missing key field, bad base64, a key held in an HSM (`Engine`, `Label`), an
//! algorithm outside the four, a mnemonic that does not match the number, and fields out of order (the format
//! line and the algorithm line come first). Blank lines are skipped. Only `Modulus`, `PublicExponent`, `Prime1`,
//! `Prime2` (checked: `N = p·q`, both prime) and `PrivateKey` are used; the other RSA fields must be present and
//! valid base64 but `d` is recomputed by the dealer from `p`, `q`, `e`.

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding as _};
use zeroize::Zeroizing;

use super::{Ed25519PrivateKey, ImportError, P256PrivateKey, PrivateKey, RsaPrivateKey};

/// Timing metadata fields BIND writes after the key (values `YYYYMMDDHHMMSS`).
const TIMING_FIELDS: &[&str] = &[
    "Created",
    "Publish",
    "Activate",
    "Revoke",
    "Inactive",
    "Delete",
    "DSPublish",
    "SyncPublish",
    "SyncDelete",
    "DSDelete",
    "DSRemoved",
    "PublishCDS",
    "DeleteCDS",
];

/// The RSA key fields, in the order BIND writes them.
const RSA_FIELDS: &[&str] = &[
    "Modulus",
    "PublicExponent",
    "PrivateExponent",
    "Prime1",
    "Prime2",
    "Exponent1",
    "Exponent2",
    "Coefficient",
];

/// A parsed `.private` file.
#[derive(Debug)]
#[non_exhaustive]
pub struct BindPrivateKey {
    /// The format version `(major, minor)`: `(1, 2)` or `(1, 3)`.
    pub format: (u8, u8),
    /// The DNSSEC algorithm number: 8, 10, 13 or 15.
    pub algorithm: u8,
    /// The key.
    pub key: PrivateKey,
}

/// Parses a BIND / ldns `.private` file (see the module documentation for what is accepted).
pub fn parse_bind_private(text: &str) -> Result<BindPrivateKey, ImportError> {
    let mut fields: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let mut format = None;
    let mut algorithm = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let syntax = |reason| ImportError::Syntax {
            line: line_no,
            reason,
        };
        let (name, value) = line.split_once(':').ok_or(syntax("not a `Name: value` line"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(syntax("malformed field name"));
        }
        let value = value.trim();
        if format.is_none() {
            if name != "Private-key-format" {
                return Err(syntax("the first line must be Private-key-format"));
            }
            format = Some(match value {
                "v1.2" => (1, 2),
                "v1.3" => (1, 3),
                _ => return Err(syntax("unsupported Private-key-format (want v1.2 or v1.3)")),
            });
            continue;
        }
        if algorithm.is_none() {
            if name != "Algorithm" {
                return Err(syntax("the second field must be Algorithm"));
            }
            algorithm = Some(parse_algorithm(line_no, value)?);
            continue;
        }
        if matches!(name, "Engine" | "Label") {
            return Err(ImportError::UnsupportedKey(
                "the key is held in an HSM (Engine/Label), not in the file",
            ));
        }
        let known = RSA_FIELDS.contains(&name) || name == "PrivateKey" || TIMING_FIELDS.contains(&name);
        if !known {
            return Err(syntax("unknown field"));
        }
        if TIMING_FIELDS.contains(&name) && (value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(syntax("timing metadata is not YYYYMMDDHHMMSS"));
        }
        if fields.insert(name, (line_no, value)).is_some() {
            return Err(syntax("repeated field"));
        }
    }
    let format = format.ok_or(ImportError::MissingField("Private-key-format"))?;
    let algorithm = algorithm.ok_or(ImportError::MissingField("Algorithm"))?;
    let key = match algorithm {
        8 | 10 => {
            if let Some((line, _)) = fields.get("PrivateKey") {
                return Err(ImportError::Syntax {
                    line: *line,
                    reason: "PrivateKey field in an RSA key file",
                });
            }
            let mut values: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(RSA_FIELDS.len());
            for name in RSA_FIELDS {
                values.push(field(&fields, name)?);
            }
            PrivateKey::Rsa(RsaPrivateKey::from_parts(
                &values[0], &values[1], &values[3], &values[4],
            )?)
        }
        13 | 15 => {
            if let Some((_, (line, _))) = fields.iter().find(|(n, _)| RSA_FIELDS.contains(n)) {
                return Err(ImportError::Syntax {
                    line: *line,
                    reason: "RSA field in an ECDSA/EdDSA key file",
                });
            }
            let secret = field(&fields, "PrivateKey")?;
            if algorithm == 13 {
                PrivateKey::P256(P256PrivateKey::from_scalar_bytes(&secret)?)
            } else {
                PrivateKey::Ed25519(Ed25519PrivateKey::from_seed(&secret)?)
            }
        }
        _ => return Err(ImportError::Internal("algorithm not filtered")),
    };
    Ok(BindPrivateKey {
        format,
        algorithm,
        key,
    })
}

/// `N` or `N (MNEMONIC)` for the four supported algorithms.
fn parse_algorithm(line: usize, value: &str) -> Result<u8, ImportError> {
    let (number, mnemonic) = match value.split_once(' ') {
        Some((n, rest)) => (n, Some(rest.trim())),
        None => (value, None),
    };
    let unsupported = || ImportError::UnsupportedAlgorithm {
        line,
        algorithm: value.to_string(),
    };
    let algorithm: u8 = number.parse().map_err(|_| unsupported())?;
    let expected = match algorithm {
        8 => "(RSASHA256)",
        10 => "(RSASHA512)",
        13 => "(ECDSAP256SHA256)",
        15 => "(ED25519)",
        _ => return Err(unsupported()),
    };
    if mnemonic.is_some_and(|m| m != expected) {
        return Err(ImportError::Syntax {
            line,
            reason: "algorithm mnemonic does not match the number",
        });
    }
    Ok(algorithm)
}

/// The base64 value of a required field, decoded (constant-time decoder), zeroized on drop.
fn field(
    fields: &BTreeMap<&str, (usize, &str)>,
    name: &'static str,
) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    let (line, value) = fields.get(name).ok_or(ImportError::MissingField(name))?;
    let decoded = Base64::decode_vec(value).map_err(|_| ImportError::Syntax {
        line: *line,
        reason: "invalid base64",
    })?;
    Ok(Zeroizing::new(decoded))
}
