//! Share bundles: how a key share travels from a dealer or an offline key ceremony to its node.
//!
//! A [`ShareBundle`] is the public description of the key ([`KeyInfo`]: algorithm, signer id, `k`, `n`, public key
//! material) plus the node's secret share in the algorithm's encoding. It is sealed with HPKE (RFC 9180 base mode,
//! DHKEM(X25519, HKDF-SHA256), ChaCha20-Poly1305) to the node's HPKE key, with the key id, signer id and
//! recipient key as associated data, so only that node can open it and a bundle cannot be replayed to another node.
//! The same plaintext is what the node keeps (encrypted) in its [`crate::node::store`].

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use tcrypto::codec::{DecodeError, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::transport::identity::{HpkeKem, NodeIdentity, NodePublic, hpke_bytes};
use crate::transport::wire::{KeyInfo, TAG_BUNDLE_PLAINTEXT, TAG_SHARE_BUNDLE};

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;
const INFO: &[u8] = b"tcrypto-net share bundle v1";

/// Errors sealing or opening a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Bytes do not decode.
    #[error("bundle encoding: {0}")]
    Decode(#[from] DecodeError),
    /// The bundle is sealed to another node.
    #[error("bundle is sealed to another node")]
    WrongRecipient,
    /// HPKE failed (tampered or wrong key).
    #[error("bundle does not open: {0}")]
    Hpke(String),
}

/// A node's share of one key, with the key's public description.
pub struct ShareBundle {
    /// Public description; `info.signer` is the share's signer id.
    pub info: KeyInfo,
    /// The algorithm's encoding of the secret share.
    pub share: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ShareBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareBundle")
            .field("info", &self.info)
            .field("share", &"<redacted>")
            .finish()
    }
}

impl ShareBundle {
    /// The plaintext encoding (secret).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(TAG_BUNDLE_PLAINTEXT);
        self.info.encode(&mut w);
        w.bytes(&self.share);
        Zeroizing::new(w.finish())
    }

    /// Strictly decodes the plaintext.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_BUNDLE_PLAINTEXT)?;
        let info = KeyInfo::decode(&mut r)?;
        let share = Zeroizing::new(r.bytes()?.to_vec());
        r.finish()?;
        Ok(Self { info, share })
    }

    fn aad(info: &KeyInfo, recipient: &[u8; 32]) -> Vec<u8> {
        let mut w = Writer::bare();
        info.key.encode(&mut w);
        info.signer.encode(&mut w);
        w.raw(recipient);
        w.finish()
    }

    /// Seals the bundle to `node`.
    pub fn seal(&self, node: &NodePublic, rng: &mut impl CryptoRng) -> Result<SealedBundle, BundleError> {
        let pk = node.hpke_public()?;
        let (encapped, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, HpkeKem>(
            &OpModeS::Base,
            &pk,
            INFO,
            &self.encode(),
            &Self::aad(&self.info, &node.hpke_key),
            rng,
        )
        .map_err(|e| BundleError::Hpke(e.to_string()))?;
        Ok(SealedBundle {
            info: self.info.clone(),
            recipient: node.hpke_key,
            encapped: encapped.to_bytes().to_vec(),
            ciphertext: ct,
        })
    }
}

/// A [`ShareBundle`] sealed to one node. The public [`KeyInfo`] travels in the clear too (it is checked against the
/// sealed copy on opening).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBundle {
    /// Public description of the key.
    pub info: KeyInfo,
    /// The recipient's HPKE public key.
    pub recipient: [u8; 32],
    /// HPKE encapsulated key.
    pub encapped: Vec<u8>,
    /// HPKE ciphertext of the [`ShareBundle`] encoding.
    pub ciphertext: Vec<u8>,
}

impl SealedBundle {
    /// The strict encoding (what a key ceremony writes to a file and `ImportShare` carries).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_SHARE_BUNDLE);
        self.info.encode(&mut w);
        w.raw(&self.recipient)
            .bytes(&self.encapped)
            .bytes(&self.ciphertext);
        w.finish()
    }

    /// Strictly decodes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_SHARE_BUNDLE)?;
        let info = KeyInfo::decode(&mut r)?;
        let recipient = r.array()?;
        let encapped = r.bytes()?.to_vec();
        let ciphertext = r.bytes()?.to_vec();
        r.finish()?;
        Ok(Self {
            info,
            recipient,
            encapped,
            ciphertext,
        })
    }

    /// Opens the bundle with the node's identity.
    pub fn open(&self, node: &NodeIdentity) -> Result<ShareBundle, BundleError> {
        if self.recipient != hpke_bytes(&node.hpke_public) {
            return Err(BundleError::WrongRecipient);
        }
        let encapped = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&self.encapped)
            .map_err(|e| BundleError::Hpke(e.to_string()))?;
        let pt = Zeroizing::new(
            hpke::single_shot_open::<Aead, Kdf, HpkeKem>(
                &OpModeR::Base,
                &node.hpke_secret,
                &encapped,
                INFO,
                &self.ciphertext,
                &ShareBundle::aad(&self.info, &self.recipient),
            )
            .map_err(|e| BundleError::Hpke(e.to_string()))?,
        );
        let bundle = ShareBundle::decode(&pt)?;
        if bundle.info != self.info {
            return Err(BundleError::Hpke(
                "sealed and clear key descriptions differ".into(),
            ));
        }
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::wire::Algorithm;
    use tcrypto::{KeyId, SignerId};

    fn bundle() -> ShareBundle {
        ShareBundle {
            info: KeyInfo {
                key: KeyId([4; 32]),
                algorithm: Algorithm::Rsa,
                signer: SignerId::new(2).unwrap(),
                threshold: 2,
                parties: 3,
                public: vec![1, 2, 3],
            },
            share: Zeroizing::new(b"the share".to_vec()),
        }
    }

    #[test]
    fn only_the_recipient_opens_a_bundle() {
        let mut rng = rand::rng();
        let a = NodeIdentity::generate("a", &mut rng).unwrap();
        let b = NodeIdentity::generate("b", &mut rng).unwrap();
        let sealed = bundle().seal(&a.public(), &mut rng).unwrap();
        let decoded = SealedBundle::decode(&sealed.encode()).unwrap();
        let opened = decoded.open(&a).unwrap();
        assert_eq!(opened.share.as_slice(), b"the share");
        assert_eq!(opened.info, bundle().info);
        assert_eq!(decoded.open(&b).unwrap_err(), BundleError::WrongRecipient);
        let mut retargeted = decoded.clone();
        retargeted.recipient = b.public().hpke_key;
        assert!(retargeted.open(&b).is_err());
    }

    #[test]
    fn altering_the_clear_description_breaks_the_bundle() {
        let mut rng = rand::rng();
        let a = NodeIdentity::generate("a", &mut rng).unwrap();
        let mut sealed = bundle().seal(&a.public(), &mut rng).unwrap();
        sealed.info.signer = SignerId::new(3).unwrap();
        assert!(sealed.open(&a).is_err());
    }
}
