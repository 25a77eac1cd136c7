//! Node and coordinator identities.
//!
//! A node has three keys, made by `tcrypto-node init`:
//! - a TLS key with a self-signed certificate (ECDSA P-256, from `rcgen`); peers pin the SHA-256 of its
//!   SubjectPublicKeyInfo, so no certificate authority is involved;
//! - an Ed25519 identity key that signs every node-to-node message it sends through the coordinator;
//! - an X25519 HPKE key (RFC 9180) to which node-to-node messages and share bundles are sealed.
//!
//! [`NodePublic`] is what the coordinator pins; a coordinator's own identity is only its TLS key ([`TlsIdentity`]).
//!
//! A coordinator's identity file is what every node trusts to ask for signatures, so it is kept sealed with a
//! passphrase ([`SealedTlsIdentity`]): Argon2id (RFC 9106) derives a key from the passphrase and a random salt, and
//! ChaCha20-Poly1305 (RFC 8439) seals the TLS key and certificate under it, the header (salt, cost, nonce and the
//! certificate's fingerprint) bound as associated data: the same construction as the node's key store
//! ([`crate::node::store`]), with the Argon2id cost bounded before use.

use std::fmt;

use argon2::{Algorithm as ArgonAlg, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use ed25519_dalek::SigningKey;
use hpke::{Deserializable, Kem as _, Serializable};
use rand_core::CryptoRng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tcrypto::codec::{DecodeError, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::node::store::KdfCost;
use crate::transport::wire::{MAX_TEXT_LEN, TAG_NODE_PUBLIC, TAG_SEALED_IDENTITY};

/// The HPKE KEM used for sealing: DHKEM(X25519, HKDF-SHA256).
pub type HpkeKem = hpke::kem::X25519HkdfSha256;

/// Errors building or reading identities.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// A certificate could not be parsed.
    #[error("certificate is not a valid X.509 certificate: {0}")]
    BadCertificate(String),
    /// Stored identity bytes do not decode.
    #[error("identity encoding: {0}")]
    Decode(#[from] DecodeError),
    /// A hex fingerprint or key in a configuration is malformed.
    #[error("bad hex value for {what}: {detail}")]
    BadHex {
        /// Which value.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The passphrase does not open a sealed identity (or the file was altered).
    #[error("wrong passphrase for the sealed coordinator identity, or the file was altered")]
    WrongPassphrase,
    /// An empty passphrase was given.
    #[error("empty passphrase refused")]
    EmptyPassphrase,
    /// The Argon2id cost recorded in a sealed identity is outside the accepted bounds (damaged file).
    #[error("Argon2id cost out of bounds ({0}); the file is damaged")]
    KdfBounds(String),
    /// Argon2id failed.
    #[error("Argon2id: {0}")]
    Kdf(String),
}

/// SHA-256 of a certificate's DER SubjectPublicKeyInfo: what peers pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpkiFingerprint(pub [u8; 32]);

impl SpkiFingerprint {
    /// The fingerprint of the public key in `cert`.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, IdentityError> {
        let ee = webpki::EndEntityCert::try_from(cert)
            .map_err(|e| IdentityError::BadCertificate(format!("{e:?}")))?;
        let spki = ee.subject_public_key_info();
        Ok(Self(Sha256::digest(spki.as_ref()).into()))
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, IdentityError> {
        Ok(Self(parse_hex32(s, "SPKI fingerprint")?))
    }
}

impl fmt::Display for SpkiFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SpkiFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiFingerprint({})", &hex::encode(self.0)[..16])
    }
}

pub(crate) fn parse_hex32(s: &str, what: &'static str) -> Result<[u8; 32], IdentityError> {
    let v = hex::decode(s.trim()).map_err(|e| IdentityError::BadHex {
        what,
        detail: e.to_string(),
    })?;
    <[u8; 32]>::try_from(v.as_slice()).map_err(|_| IdentityError::BadHex {
        what,
        detail: format!("{} bytes, expected 32", v.len()),
    })
}

/// A TLS key and its self-signed certificate.
pub struct TlsIdentity {
    cert: CertificateDer<'static>,
    key_pkcs8: Zeroizing<Vec<u8>>,
}

impl TlsIdentity {
    /// Generates a fresh P-256 key and a self-signed certificate naming `name`.
    pub fn generate(name: &str) -> Result<Self, IdentityError> {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_string()])
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Self {
            cert: ck.cert.der().clone(),
            key_pkcs8: Zeroizing::new(ck.signing_key.serialize_der()),
        })
    }

    /// Rebuilds from stored DER.
    pub fn from_der(cert: Vec<u8>, key_pkcs8: Vec<u8>) -> Result<Self, IdentityError> {
        let cert = CertificateDer::from(cert);
        SpkiFingerprint::of_certificate(&cert)?;
        Ok(Self {
            cert,
            key_pkcs8: Zeroizing::new(key_pkcs8),
        })
    }

    /// The certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The private key, for rustls.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.to_vec()))
    }

    /// What peers pin.
    pub fn fingerprint(&self) -> SpkiFingerprint {
        // The certificate was checked to parse when this value was made.
        SpkiFingerprint::of_certificate(&self.cert).unwrap_or(SpkiFingerprint([0; 32]))
    }

    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.cert).bytes(&self.key_pkcs8);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, IdentityError> {
        let cert = r.bytes()?.to_vec();
        let key = r.bytes()?.to_vec();
        Self::from_der(cert, key)
    }

    /// The stored encoding (secret: contains the private key).
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::bare();
        self.encode(&mut w);
        Zeroizing::new(w.finish())
    }

    /// Reads [`TlsIdentity::to_secret_bytes`].
    pub fn from_secret_bytes(b: &[u8]) -> Result<Self, IdentityError> {
        let mut r = Reader::bare(b);
        let id = Self::decode(&mut r)?;
        r.finish()?;
        Ok(id)
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The Argon2id cost a sealed identity may ask for: at most 1 GiB of memory, 16 passes and 8 lanes, at least
/// what [`KdfCost::TESTING`] uses. A damaged cost field is refused before any work is done.
pub const MAX_IDENTITY_KDF: KdfCost = KdfCost {
    m_kib: 1 << 20,
    t: 16,
    p: 8,
};

/// A coordinator identity file: sealed with a passphrase, or (legacy) the bare secret encoding.
#[derive(Debug)]
pub enum IdentityFile {
    /// Sealed with a passphrase; open with [`SealedTlsIdentity::open`].
    Sealed(SealedTlsIdentity),
    /// The bare [`TlsIdentity::to_secret_bytes`] encoding written by earlier versions: anyone who can read the
    /// file can sign with every key of the cluster.
    Unsealed(TlsIdentity),
}

impl IdentityFile {
    /// Decodes a coordinator identity file (either form). A sealed file starts with the format version and
    /// [`TAG_SEALED_IDENTITY`]; a bare one with the certificate's length, whose first byte is 0.
    pub fn decode(b: &[u8]) -> Result<Self, IdentityError> {
        match b.first() {
            Some(&tcrypto::codec::VERSION) => Ok(Self::Sealed(SealedTlsIdentity::decode(b)?)),
            _ => Ok(Self::Unsealed(TlsIdentity::from_secret_bytes(b)?)),
        }
    }

    /// The fingerprint nodes pin (readable without the passphrase).
    pub fn fingerprint(&self) -> SpkiFingerprint {
        match self {
            Self::Sealed(s) => s.fingerprint,
            Self::Unsealed(id) => id.fingerprint(),
        }
    }
}

/// A [`TlsIdentity`] sealed with a passphrase (Argon2id, then ChaCha20-Poly1305; header as associated data).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTlsIdentity {
    /// Fingerprint of the sealed certificate's key (what nodes pin), authenticated when the file is opened.
    pub fingerprint: SpkiFingerprint,
    salt: [u8; 16],
    cost: KdfCost,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedTlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedTlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

fn identity_key(passphrase: &str, salt: &[u8; 16], cost: KdfCost) -> Result<ChaCha20Poly1305, IdentityError> {
    if passphrase.is_empty() {
        return Err(IdentityError::EmptyPassphrase);
    }
    let bounds = MAX_IDENTITY_KDF;
    let low = KdfCost::TESTING;
    if !(low.m_kib..=bounds.m_kib).contains(&cost.m_kib)
        || !(1..=bounds.t).contains(&cost.t)
        || !(1..=bounds.p).contains(&cost.p)
    {
        return Err(IdentityError::KdfBounds(format!(
            "memory {} KiB, {} passes, {} lanes",
            cost.m_kib, cost.t, cost.p
        )));
    }
    let params =
        Params::new(cost.m_kib, cost.t, cost.p, Some(32)).map_err(|e| IdentityError::Kdf(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(ArgonAlg::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| IdentityError::Kdf(e.to_string()))?;
    Ok(ChaCha20Poly1305::new(&(*key).into()))
}

impl SealedTlsIdentity {
    /// Seals `identity` under `passphrase` (refused when empty) with Argon2id of cost `cost`.
    pub fn seal(
        identity: &TlsIdentity,
        passphrase: &str,
        cost: KdfCost,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, IdentityError> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut sealed = Self {
            fingerprint: identity.fingerprint(),
            salt,
            cost,
            nonce,
            ciphertext: Vec::new(),
        };
        let cipher = identity_key(passphrase, &salt, cost)?;
        sealed.ciphertext = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &identity.to_secret_bytes(),
                    aad: &sealed.header(),
                },
            )
            .map_err(|_| IdentityError::Kdf("sealing failed".into()))?;
        Ok(sealed)
    }

    /// Opens with `passphrase`: [`IdentityError::WrongPassphrase`] when it does not fit or the file was altered.
    pub fn open(&self, passphrase: &str) -> Result<TlsIdentity, IdentityError> {
        let cipher = identity_key(passphrase, &self.salt, self.cost)?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &self.nonce.into(),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &self.header(),
                    },
                )
                .map_err(|_| IdentityError::WrongPassphrase)?,
        );
        let id = TlsIdentity::from_secret_bytes(&plain)?;
        if id.fingerprint() != self.fingerprint {
            return Err(IdentityError::WrongPassphrase);
        }
        Ok(id)
    }

    /// The Argon2id cost the file was sealed with (checked against [`MAX_IDENTITY_KDF`] when it is opened).
    pub fn cost(&self) -> KdfCost {
        self.cost
    }

    fn header(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_SEALED_IDENTITY);
        w.raw(&self.fingerprint.0)
            .raw(&self.salt)
            .u32(self.cost.m_kib)
            .u32(self.cost.t)
            .u32(self.cost.p)
            .raw(&self.nonce);
        w.finish()
    }

    /// The file encoding: the header, then the ciphertext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        let mut w = Writer::bare();
        w.bytes(&self.ciphertext);
        out.extend_from_slice(&w.finish());
        out
    }

    /// Strictly decodes [`SealedTlsIdentity::encode`] (the cost is checked when the file is opened).
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_SEALED_IDENTITY)?;
        let fingerprint = SpkiFingerprint(r.array()?);
        let salt = r.array()?;
        let cost = KdfCost {
            m_kib: r.u32()?,
            t: r.u32()?,
            p: r.u32()?,
        };
        let nonce = r.array()?;
        let ciphertext = r.bytes()?.to_vec();
        r.finish()?;
        Ok(Self {
            fingerprint,
            salt,
            cost,
            nonce,
            ciphertext,
        })
    }
}

/// The complete secret identity of a node.
pub struct NodeIdentity {
    /// The node's name (also the certificate's subject alternative name).
    pub name: String,
    /// TLS key and certificate.
    pub tls: TlsIdentity,
    /// Ed25519 key signing node-to-node messages.
    pub signing: SigningKey,
    /// HPKE private key for messages and bundles sealed to this node.
    pub hpke_secret: <HpkeKem as hpke::Kem>::PrivateKey,
    /// HPKE public key.
    pub hpke_public: <HpkeKem as hpke::Kem>::PublicKey,
}

impl NodeIdentity {
    /// Generates every key of a new node.
    pub fn generate(name: &str, rng: &mut impl CryptoRng) -> Result<Self, IdentityError> {
        let tls = TlsIdentity::generate(name)?;
        let signing = SigningKey::generate(rng);
        let (hpke_secret, hpke_public) = HpkeKem::gen_keypair_with_rng(rng);
        Ok(Self {
            name: name.to_string(),
            tls,
            signing,
            hpke_secret,
            hpke_public,
        })
    }

    /// The public identity to pin.
    pub fn public(&self) -> NodePublic {
        NodePublic {
            name: self.name.clone(),
            tls_spki: self.tls.fingerprint(),
            identity_key: self.signing.verifying_key().to_bytes(),
            hpke_key: hpke_bytes(&self.hpke_public),
        }
    }

    /// The stored encoding (secret).
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::bare();
        w.bytes(self.name.as_bytes());
        self.tls.encode(&mut w);
        w.raw(self.signing.as_bytes());
        w.raw(&self.hpke_secret.to_bytes());
        Zeroizing::new(w.finish())
    }

    /// Reads [`NodeIdentity::to_secret_bytes`].
    pub fn from_secret_bytes(b: &[u8]) -> Result<Self, IdentityError> {
        let mut r = Reader::bare(b);
        let name = String::from_utf8(r.bytes()?.to_vec())
            .map_err(|_| DecodeError::Invalid("node name is not UTF-8"))?;
        let tls = TlsIdentity::decode(&mut r)?;
        let seed = Zeroizing::new(r.array::<32>()?);
        let signing = SigningKey::from_bytes(&seed);
        let hpke_secret = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(r.raw(32)?)
            .map_err(|_| DecodeError::Invalid("HPKE private key"))?;
        r.finish()?;
        let hpke_public = <HpkeKem as hpke::Kem>::sk_to_pk(&hpke_secret);
        Ok(Self {
            name,
            tls,
            signing,
            hpke_secret,
            hpke_public,
        })
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("public", &self.public())
            .field("secrets", &"<redacted>")
            .finish()
    }
}

pub(crate) fn hpke_bytes(pk: &<HpkeKem as hpke::Kem>::PublicKey) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&pk.to_bytes());
    out
}

/// The public identity of a node: what a coordinator and the other nodes pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePublic {
    /// The node's name.
    pub name: String,
    /// SHA-256 of the TLS certificate's SubjectPublicKeyInfo.
    pub tls_spki: SpkiFingerprint,
    /// Ed25519 identity key (32 bytes).
    pub identity_key: [u8; 32],
    /// X25519 HPKE public key (32 bytes).
    pub hpke_key: [u8; 32],
}

impl NodePublic {
    /// The strict encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_NODE_PUBLIC);
        w.bytes(self.name.as_bytes())
            .raw(&self.tls_spki.0)
            .raw(&self.identity_key)
            .raw(&self.hpke_key);
        w.finish()
    }

    /// Strictly decodes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_NODE_PUBLIC)?;
        let name = r.bytes()?;
        if name.len() > MAX_TEXT_LEN {
            return Err(DecodeError::TooLong(name.len()));
        }
        let name =
            String::from_utf8(name.to_vec()).map_err(|_| DecodeError::Invalid("node name is not UTF-8"))?;
        let tls_spki = SpkiFingerprint(r.array()?);
        let identity_key = r.array()?;
        let hpke_key = r.array()?;
        r.finish()?;
        Ok(Self {
            name,
            tls_spki,
            identity_key,
            hpke_key,
        })
    }

    /// The Ed25519 verifying key; an error if the bytes are not a valid point.
    pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, DecodeError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.identity_key)
            .map_err(|_| DecodeError::Invalid("Ed25519 identity key"))
    }

    /// The HPKE public key.
    pub fn hpke_public(&self) -> Result<<HpkeKem as hpke::Kem>::PublicKey, DecodeError> {
        <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&self.hpke_key)
            .map_err(|_| DecodeError::Invalid("HPKE public key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity_round_trips_through_its_secret_encoding() {
        let id = NodeIdentity::generate("node-1", &mut rand::rng()).unwrap();
        let back = NodeIdentity::from_secret_bytes(&id.to_secret_bytes()).unwrap();
        assert_eq!(back.public(), id.public());
        let public = id.public();
        assert_eq!(NodePublic::decode(&public.encode()).unwrap(), public);
        public.verifying_key().unwrap();
        public.hpke_public().unwrap();
    }

    #[test]
    fn fingerprint_is_sha256_of_the_spki_and_differs_per_key() {
        let a = TlsIdentity::generate("a").unwrap();
        let b = TlsIdentity::generate("a").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            SpkiFingerprint::from_hex(&a.fingerprint().to_string()).unwrap(),
            a.fingerprint()
        );
        assert!(SpkiFingerprint::from_hex("abcd").is_err());
    }

    #[test]
    fn a_sealed_coordinator_identity_opens_only_with_its_passphrase() {
        let id = TlsIdentity::generate("coordinator").unwrap();
        let sealed =
            SealedTlsIdentity::seal(&id, "correct horse", KdfCost::TESTING, &mut rand::rng()).unwrap();
        let bytes = sealed.encode();
        let IdentityFile::Sealed(back) = IdentityFile::decode(&bytes).unwrap() else {
            panic!("not recognised as sealed")
        };
        assert_eq!(back.fingerprint, id.fingerprint());
        assert_eq!(
            back.open("correct horse").unwrap().fingerprint(),
            id.fingerprint()
        );
        assert!(matches!(
            back.open("wrong horse"),
            Err(IdentityError::WrongPassphrase)
        ));
        assert!(matches!(back.open(""), Err(IdentityError::EmptyPassphrase)));
        // The key never appears in the file.
        let key = id.private_key();
        assert!(
            !bytes
                .windows(32)
                .any(|w| key.secret_der().windows(32).any(|k| k == w))
        );
        // A flipped bit anywhere (header or ciphertext) stops the file from opening or decoding.
        for i in [2, 40, 60, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            if let Ok(s) = SealedTlsIdentity::decode(&bad) {
                assert!(s.open("correct horse").is_err(), "flip at {i} opened");
            }
        }
        // Trailing bytes are refused.
        assert!(SealedTlsIdentity::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
    }

    #[test]
    fn a_damaged_kdf_cost_is_refused_before_any_work() {
        let id = TlsIdentity::generate("coordinator").unwrap();
        let mut sealed = SealedTlsIdentity::seal(&id, "pass", KdfCost::TESTING, &mut rand::rng()).unwrap();
        sealed.cost.m_kib = u32::MAX;
        let back = SealedTlsIdentity::decode(&sealed.encode()).unwrap();
        assert!(matches!(back.open("pass"), Err(IdentityError::KdfBounds(_))));
        sealed.cost = KdfCost {
            m_kib: 64,
            t: 0,
            p: 1,
        };
        assert!(matches!(sealed.open("pass"), Err(IdentityError::KdfBounds(_))));
    }

    #[test]
    fn a_legacy_unsealed_identity_file_is_recognised_as_such() {
        let id = TlsIdentity::generate("coordinator").unwrap();
        let file = IdentityFile::decode(&id.to_secret_bytes()).unwrap();
        assert!(matches!(file, IdentityFile::Unsealed(_)));
        assert_eq!(file.fingerprint(), id.fingerprint());
    }

    #[test]
    fn secret_debug_output_is_redacted() {
        let id = NodeIdentity::generate("n", &mut rand::rng()).unwrap();
        let s = format!("{id:?}");
        assert!(s.contains("<redacted>"));
        assert!(!s.contains(&hex::encode(id.signing.as_bytes())));
    }
}
