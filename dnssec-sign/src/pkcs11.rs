//! Keys in any PKCS#11 token (SoftHSM2, a hardware HSM, our own module), through the `cryptoki`
//! crate, behind the same [`ZoneSigningKey`] interface as local keys.
//!
//! A key is found by its `CKA_LABEL` (private and public object with the same label). The
//! DNSKEY is built from the public object: RSA modulus and exponent (RFC 3110), the P-256
//! point of `CKA_EC_POINT` (RFC 6605), or the Ed25519 point (RFC 8080). Mechanisms:
//! `CKM_SHA256_RSA_PKCS` / `CKM_SHA512_RSA_PKCS` (RFC 5702), `CKM_ECDSA` over our SHA-256
//! digest (the token returns `r‖s`, which is the DNSSEC form), `CKM_EDDSA`.
//!
//! `sign_batch` spreads a batch over a pool of sessions, one thread per session, so a token
//! with several signing engines has several requests in flight.

use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};

use crate::error::KeyError;
use crate::keys::{Algorithm, ZoneSigningKey, dnskey_flags};
use crate::name::Name;
use crate::rdata::Dnskey;

/// DER of the OID 1.2.840.10045.3.1.7 (P-256), as `CKA_EC_PARAMS`.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID 1.3.101.112 (Ed25519), as `CKA_EC_PARAMS`.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

fn p11(e: cryptoki::error::Error) -> KeyError {
    KeyError::Signing(format!("PKCS#11: {e}"))
}

/// A logged-in token of a PKCS#11 module.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("slot", &self.slot)
            .field("pin", &"<redacted>")
            .finish()
    }
}

impl Token {
    /// Loads `module`, finds the token labelled `token_label` and remembers the user PIN.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, KeyError> {
        let ctx = Pkcs11::new(module).map_err(p11)?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(p11(e)),
        }
        let slot = ctx
            .get_slots_with_token()
            .map_err(p11)?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|i| i.label().trim_end() == token_label)
            })
            .ok_or_else(|| KeyError::Signing(format!("PKCS#11: no token labelled {token_label:?}")))?;
        Ok(Self {
            ctx,
            slot,
            pin: AuthPin::new(pin.into()),
        })
    }

    fn session(&self) -> Result<Session, KeyError> {
        let s = self.ctx.open_rw_session(self.slot).map_err(p11)?;
        match s.login(UserType::User, Some(&self.pin)) {
            Ok(()) => Ok(s),
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(e) => Err(p11(e)),
        }
    }

    /// Generates a key pair on the token with `label` (non-extractable, sensitive).
    pub fn generate(&self, label: &str, algorithm: Algorithm, rsa_bits: u64) -> Result<(), KeyError> {
        let s = self.session()?;
        let common_pub = vec![
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(label.into()),
        ];
        let common_priv = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.into()),
        ];
        let (mech, mut pub_t) = match algorithm {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(rsa_bits.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ],
            ),
            Algorithm::EcdsaP256Sha256 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P256_PARAMS.to_vec())],
            ),
            Algorithm::Ed25519 => (
                Mechanism::EccEdwardsKeyPairGen,
                vec![Attribute::EcParams(ED25519_PARAMS.to_vec())],
            ),
        };
        pub_t.extend(common_pub);
        s.generate_key_pair(&mech, &pub_t, &common_priv).map_err(p11)?;
        Ok(())
    }

    /// Opens the key pair labelled `label` as a zone key of `owner`. `ksk` sets the SEP flag;
    /// `rsa_sha512` picks algorithm 10 instead of 8 for RSA keys. `sessions` is the number of
    /// requests kept in flight.
    pub fn key(
        &self,
        label: &str,
        owner: &Name,
        ksk: bool,
        rsa_sha512: bool,
        sessions: usize,
    ) -> Result<Pkcs11Key, KeyError> {
        let s = self.session()?;
        let find = |class: ObjectClass| -> Result<ObjectHandle, KeyError> {
            let found = s
                .find_objects(&[Attribute::Class(class), Attribute::Label(label.into())])
                .map_err(p11)?;
            match found.as_slice() {
                [one] => Ok(*one),
                [] => Err(KeyError::Signing(format!(
                    "PKCS#11: no {class} labelled {label:?}"
                ))),
                _ => Err(KeyError::Signing(format!(
                    "PKCS#11: several {class} objects labelled {label:?}"
                ))),
            }
        };
        let private = find(ObjectClass::PRIVATE_KEY)?;
        let public = find(ObjectClass::PUBLIC_KEY)?;
        let attrs = s
            .get_attributes(
                public,
                &[
                    AttributeType::KeyType,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(p11)?;
        let mut key_type = None;
        let (mut n, mut e, mut params, mut point) = (None, None, None, None);
        for a in attrs {
            match a {
                Attribute::KeyType(k) => key_type = Some(k),
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                Attribute::EcParams(v) => params = Some(v),
                Attribute::EcPoint(v) => point = Some(v),
                _ => {}
            }
        }
        let bad = |m: &str| KeyError::Signing(format!("PKCS#11 key {label:?}: {m}"));
        let (algorithm, public_key) = match key_type {
            Some(KeyType::RSA) => {
                let (n, e) = (
                    n.ok_or_else(|| bad("no modulus"))?,
                    e.ok_or_else(|| bad("no exponent"))?,
                );
                let alg = if rsa_sha512 {
                    Algorithm::RsaSha512
                } else {
                    Algorithm::RsaSha256
                };
                (
                    alg,
                    crate::keys::rsa_dnskey_bytes(strip_zeros(&n), strip_zeros(&e)),
                )
            }
            Some(KeyType::EC) => {
                if params.as_deref() != Some(&P256_PARAMS[..]) {
                    return Err(bad("EC key is not on P-256"));
                }
                let pt = unwrap_octet_string(&point.ok_or_else(|| bad("no EC point"))?);
                match pt.as_slice() {
                    [4, rest @ ..] if rest.len() == 64 => (Algorithm::EcdsaP256Sha256, rest.to_vec()),
                    _ => return Err(bad("EC point is not an uncompressed P-256 point")),
                }
            }
            Some(KeyType::EC_EDWARDS) => {
                let pt = unwrap_octet_string(&point.ok_or_else(|| bad("no EC point"))?);
                if pt.len() != 32 {
                    return Err(bad("Edwards point is not 32 octets (only Ed25519 is supported)"));
                }
                (Algorithm::Ed25519, pt)
            }
            _ => return Err(bad("unsupported key type")),
        };
        let mut pool = vec![Mutex::new(s)];
        for _ in 1..sessions.max(1) {
            pool.push(Mutex::new(self.session()?));
        }
        Ok(Pkcs11Key {
            owner: owner.clone(),
            dnskey: Dnskey {
                flags: dnskey_flags(ksk),
                protocol: 3,
                algorithm: algorithm.number(),
                public_key,
            },
            algorithm,
            private,
            sessions: pool,
        })
    }
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let i = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    &v[i..]
}

/// `CKA_EC_POINT` is a DER OCTET STRING in PKCS#11 2.40+; some tokens return the raw point.
fn unwrap_octet_string(v: &[u8]) -> Vec<u8> {
    match v {
        [0x04, len, rest @ ..] if *len as usize == rest.len() && *len < 0x80 => rest.to_vec(),
        [0x04, 0x81, len, rest @ ..] if *len as usize == rest.len() => rest.to_vec(),
        _ => v.to_vec(),
    }
}

/// A signing key held in a PKCS#11 token.
pub struct Pkcs11Key {
    owner: Name,
    dnskey: Dnskey,
    algorithm: Algorithm,
    private: ObjectHandle,
    sessions: Vec<Mutex<Session>>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("owner", &self.owner)
            .field("key_tag", &self.dnskey.key_tag())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl Pkcs11Key {
    fn sign_one(&self, session: &Session, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self.algorithm {
            Algorithm::RsaSha256 => session.sign(&Mechanism::Sha256RsaPkcs, self.private, msg),
            Algorithm::RsaSha512 => session.sign(&Mechanism::Sha512RsaPkcs, self.private, msg),
            Algorithm::EcdsaP256Sha256 => session.sign(&Mechanism::Ecdsa, self.private, &Sha256::digest(msg)),
            Algorithm::Ed25519 => session.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                self.private,
                msg,
            ),
        }
        .map_err(p11)
    }
}

impl ZoneSigningKey for Pkcs11Key {
    fn owner(&self) -> &Name {
        &self.owner
    }
    fn dnskey(&self) -> &Dnskey {
        &self.dnskey
    }
    fn sign_batch(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, KeyError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let per = messages.len().div_ceil(self.sessions.len());
        let parts: Vec<Result<Vec<Vec<u8>>, KeyError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = messages
                .chunks(per)
                .zip(&self.sessions)
                .map(|(chunk, session)| {
                    scope.spawn(move || {
                        let s = session
                            .lock()
                            .map_err(|_| KeyError::Signing("session lock poisoned".into()))?;
                        chunk
                            .iter()
                            .map(|m| self.sign_one(&s, m))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(KeyError::Signing("signing thread panicked".into())))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(messages.len());
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }
}
