//! Node and coordinator identities.
//!
//! A node has three keys, made by `tcrypto-node init`:
//! - a TLS key with a self-signed certificate (ECDSA P-256, from `rcgen`); peers pin the SHA-256 of its
//!   SubjectPublicKeyInfo, so no certificate authority is involved;
//! - an Ed25519 identity key that signs every node-to-node message it sends through the coordinator;
//! - an X25519 HPKE key (RFC 9180) to which node-to-node messages and share bundles are sealed.
//!
//! [`NodePublic`] is what the coordinator pins; a coordinator's own identity is only its TLS key ([`TlsIdentity`]).

use std::fmt;

use ed25519_dalek::SigningKey;
use hpke::{Deserializable, Kem as _, Serializable};
use rand_core::CryptoRng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tcrypto::codec::{DecodeError, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::wire::{MAX_TEXT_LEN, TAG_NODE_PUBLIC};

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
    fn secret_debug_output_is_redacted() {
        let id = NodeIdentity::generate("n", &mut rand::rng()).unwrap();
        let s = format!("{id:?}");
        assert!(s.contains("<redacted>"));
        assert!(!s.contains(&hex::encode(id.signing.as_bytes())));
    }
}
