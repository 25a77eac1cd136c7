//! PEM (RFC 7468) and DER private keys: PKCS#8 (RFC 5208/5958, RFC 8410 for Ed25519), PKCS#1 (RFC 8017 A.1.2) and
//! SEC1 (RFC 5915). Decoding is done by the RustCrypto `der`, `pkcs1`, `pkcs8`, `sec1` (through `p256`) and
//! `pem-rfc7468` (through `der`) crates; this file only dispatches and checks.

use der::Decode as _;
use pkcs8::AssociatedOid as _;
use pkcs8::DecodePrivateKey as _;
use zeroize::Zeroizing;

use super::{Ed25519PrivateKey, ImportError, P256PrivateKey, PrivateKey, RsaPrivateKey};

/// `id-ecPublicKey` (RFC 5480).
const EC_PUBLIC_KEY_OID: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `id-Ed25519` (RFC 8410).
const ED25519_OID: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");
/// `prime256v1` / `secp256r1` as an `EC PARAMETERS` body (a DER OBJECT IDENTIFIER).
const P256_PARAMETERS_DER: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Parses a PEM file holding one private key: `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` (optionally
/// preceded or followed by an `EC PARAMETERS` block naming P-256). Blank lines between blocks are allowed; any
/// other text, a second key, another label or an encrypted key is an error naming the line.
pub fn parse_pem(text: &str) -> Result<PrivateKey, ImportError> {
    let mut key: Option<PrivateKey> = None;
    // (line number, byte offset of the line, the line without its line ending)
    let mut lines = Vec::new();
    let mut offset = 0usize;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        lines.push((i + 1, offset, line.strip_suffix('\r').unwrap_or(line)));
        offset += raw.len();
    }
    let mut saw_block = false;
    let mut at = 0usize;
    while at < lines.len() {
        let (line_no, start, line) = lines[at];
        at += 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            return Err(ImportError::Syntax {
                line: line_no,
                reason: "text outside a PEM block",
            });
        };
        let end_line = format!("-----END {label}-----");
        let Some(end) = lines[at..].iter().position(|(_, _, l)| *l == end_line) else {
            return Err(ImportError::Syntax {
                line: line_no,
                reason: "PEM block without its END line",
            });
        };
        at += end + 1;
        let stop = lines.get(at).map_or(text.len(), |(_, o, _)| *o);
        saw_block = true;
        let block = &text[start..stop];
        let (found, body) = der::pem::decode_vec(block.as_bytes()).map_err(|_| ImportError::Syntax {
            line: line_no,
            reason: "malformed PEM block (RFC 7468)",
        })?;
        let body = Zeroizing::new(body);
        if found != label {
            return Err(ImportError::Syntax {
                line: line_no,
                reason: "PEM label does not match its BEGIN line",
            });
        }
        let parsed = match label {
            "EC PARAMETERS" => {
                if body.as_slice() != P256_PARAMETERS_DER {
                    return Err(ImportError::UnsupportedKey("EC parameters other than P-256"));
                }
                continue;
            }
            "ENCRYPTED PRIVATE KEY" => return Err(ImportError::Encrypted),
            "PRIVATE KEY" => from_pkcs8(&body)?,
            "RSA PRIVATE KEY" => from_pkcs1(&body)?,
            "EC PRIVATE KEY" => from_sec1(&body)?,
            _ => {
                return Err(ImportError::Syntax {
                    line: line_no,
                    reason: "unexpected PEM label (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
                });
            }
        };
        if key.replace(parsed).is_some() {
            return Err(ImportError::Syntax {
                line: line_no,
                reason: "a second private key in the same file",
            });
        }
    }
    key.ok_or(if saw_block {
        ImportError::Der("no private key block (only EC PARAMETERS)")
    } else {
        ImportError::Syntax {
            line: 1,
            reason: "no PEM block",
        }
    })
}

/// Parses a DER private key: PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey`, else PKCS#1 `RSAPrivateKey`, else SEC1
/// `ECPrivateKey` (P-256).
pub fn parse_der(der: &[u8]) -> Result<PrivateKey, ImportError> {
    if pkcs8::PrivateKeyInfoRef::from_der(der).is_ok() {
        return from_pkcs8(der);
    }
    if pkcs1::RsaPrivateKey::<der::asn1::UintRef<'_>>::from_der(der).is_ok() {
        return from_pkcs1(der);
    }
    if sec1::EcPrivateKey::from_der(der).is_ok() {
        return from_sec1(der);
    }
    Err(ImportError::Der("neither PKCS#8, PKCS#1 nor SEC1 DER"))
}

fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, ImportError> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|_| ImportError::Der("not a PKCS#8 PrivateKeyInfo"))?;
    let oid = info.algorithm.oid;
    if oid == pkcs1::ALGORITHM_OID {
        from_pkcs1(info.private_key.as_bytes())
    } else if oid == EC_PUBLIC_KEY_OID {
        let sk = p256::SecretKey::from_pkcs8_der(der)
            .map_err(|_| ImportError::UnsupportedKey("PKCS#8 EC key not on P-256, or malformed"))?;
        Ok(PrivateKey::P256(P256PrivateKey(sk)))
    } else if oid == ED25519_OID {
        let sk = ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|_| ImportError::Der("malformed PKCS#8 Ed25519 key"))?;
        let seed = Zeroizing::new(sk.to_bytes());
        Ok(PrivateKey::Ed25519(Ed25519PrivateKey::from_seed(
            seed.as_slice(),
        )?))
    } else {
        Err(ImportError::UnsupportedKey(
            "PKCS#8 key algorithm is not RSA, EC P-256 or Ed25519",
        ))
    }
}

fn from_pkcs1(der: &[u8]) -> Result<PrivateKey, ImportError> {
    let key = pkcs1::RsaPrivateKey::<der::asn1::UintRef<'_>>::from_der(der)
        .map_err(|_| ImportError::Der("not a PKCS#1 RSAPrivateKey"))?;
    if key.other_prime_infos.is_some() {
        return Err(ImportError::UnsupportedKey("multi-prime RSA keys"));
    }
    Ok(PrivateKey::Rsa(RsaPrivateKey::from_parts(
        key.modulus.as_bytes(),
        key.public_exponent.as_bytes(),
        key.prime1.as_bytes(),
        key.prime2.as_bytes(),
    )?))
}

fn from_sec1(der: &[u8]) -> Result<PrivateKey, ImportError> {
    let parsed =
        sec1::EcPrivateKey::from_der(der).map_err(|_| ImportError::Der("not a SEC1 ECPrivateKey"))?;
    if parsed
        .parameters
        .is_some_and(|params| params.named_curve() != Some(p256::NistP256::OID))
    {
        return Err(ImportError::UnsupportedKey("SEC1 EC key not on P-256"));
    }
    let sk = P256PrivateKey::from_scalar_bytes(parsed.private_key)?;
    if parsed
        .public_key
        .is_some_and(|public| public != sk.public_key_sec1().as_slice())
    {
        return Err(ImportError::Inconsistent(
            "the SEC1 public key does not match the private key",
        ));
    }
    Ok(PrivateKey::P256(sk))
}
