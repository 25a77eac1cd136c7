//! Node-to-node messages relayed through the coordinator (DKG and presigning rounds).
//!
//! A point-to-point message is sealed to the recipient's HPKE key (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20-Poly1305), with the routing header as associated data, and the whole envelope is signed
//! with the sender's Ed25519 identity key. The coordinator that relays it can neither read it (no HPKE key) nor
//! forge or alter it (no identity key), nor redirect it (the header is bound). A broadcast is signed but not
//! sealed; every recipient gets every sender's broadcast and then echoes [`echo_digest`] of all of them, so a
//! sender (or coordinator) that shows different recipients different broadcasts is caught when the echoes differ.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use tcrypto::codec::{DecodeError, Reader, Writer};
use tcrypto::{SessionId, SignerId};
use thiserror::Error;

use crate::transport::identity::HpkeKem;
use crate::transport::wire::TAG_SEALED;

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;

const HPKE_INFO: &[u8] = b"tcrypto-net relay v1";
const SIGN_CONTEXT: &[u8] = b"tcrypto-net relay signature v1";

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The envelope does not decode.
    #[error("envelope encoding: {0}")]
    Decode(#[from] DecodeError),
    /// The sender's signature does not verify.
    #[error("signature of sender {0} does not verify")]
    BadSignature(SignerId),
    /// The envelope is addressed to someone else or belongs to another session or round.
    #[error("envelope is for another recipient, session or round")]
    Misrouted,
    /// HPKE sealing or opening failed.
    #[error("HPKE: {0}")]
    Hpke(String),
    /// The claimed sender is not the party the transport says it came from.
    #[error("envelope claims sender {claimed} but came from {actual}")]
    WrongSender {
        /// Sender in the envelope.
        claimed: SignerId,
        /// Sender expected by the caller.
        actual: SignerId,
    },
}

/// Routing header of an envelope, bound into the signature and the HPKE associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Sender's party id.
    pub from: SignerId,
    /// Recipient's party id; `None` for a broadcast.
    pub to: Option<SignerId>,
    /// The protocol run.
    pub session: SessionId,
    /// Round number within the run.
    pub round: u8,
}

impl Route {
    fn encode(&self, w: &mut Writer) {
        self.from.encode(w);
        w.u16(self.to.map_or(0, SignerId::get));
        self.session.encode(w);
        w.u8(self.round);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let from = SignerId::decode(r)?;
        let to = SignerId::new(r.u16()?);
        let session = SessionId::decode(r)?;
        let round = r.u8()?;
        Ok(Self {
            from,
            to,
            session,
            round,
        })
    }

    fn aad(&self) -> Vec<u8> {
        let mut w = Writer::bare();
        self.encode(&mut w);
        w.finish()
    }
}

/// A signed (and for point-to-point messages, sealed) envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Routing header.
    pub route: Route,
    /// HPKE encapsulated key (empty for a broadcast).
    pub encapped: Vec<u8>,
    /// Ciphertext (point-to-point) or plaintext (broadcast).
    pub body: Vec<u8>,
    /// Sender's Ed25519 signature over everything above.
    pub signature: [u8; 64],
}

impl Envelope {
    fn signed_bytes(route: &Route, encapped: &[u8], body: &[u8]) -> Vec<u8> {
        let mut w = Writer::bare();
        w.raw(SIGN_CONTEXT);
        route.encode(&mut w);
        w.bytes(encapped).bytes(body);
        w.finish()
    }

    /// Seals `plaintext` to `recipient_hpke` and signs it with `sender`.
    pub fn seal(
        route: Route,
        plaintext: &[u8],
        recipient_hpke: &<HpkeKem as hpke::Kem>::PublicKey,
        sender: &SigningKey,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, SealError> {
        if route.to.is_none() {
            return Err(SealError::Misrouted);
        }
        let (encapped, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, HpkeKem>(
            &OpModeS::Base,
            recipient_hpke,
            HPKE_INFO,
            plaintext,
            &route.aad(),
            rng,
        )
        .map_err(|e| SealError::Hpke(e.to_string()))?;
        let encapped = encapped.to_bytes().to_vec();
        let signature = sender
            .sign(&Self::signed_bytes(&route, &encapped, &ct))
            .to_bytes();
        Ok(Self {
            route,
            encapped,
            body: ct,
            signature,
        })
    }

    /// Signs a broadcast.
    pub fn broadcast(route: Route, message: &[u8], sender: &SigningKey) -> Result<Self, SealError> {
        if route.to.is_some() {
            return Err(SealError::Misrouted);
        }
        let signature = sender.sign(&Self::signed_bytes(&route, &[], message)).to_bytes();
        Ok(Self {
            route,
            encapped: Vec::new(),
            body: message.to_vec(),
            signature,
        })
    }

    fn verify_signature(&self, sender: &VerifyingKey) -> Result<(), SealError> {
        let sig = Signature::from_bytes(&self.signature);
        sender
            .verify_strict(&Self::signed_bytes(&self.route, &self.encapped, &self.body), &sig)
            .map_err(|_| SealError::BadSignature(self.route.from))
    }

    /// Whether the envelope carries a valid signature of `sender` (what the relaying coordinator checks).
    pub fn verify(&self, sender: &VerifyingKey) -> bool {
        self.verify_signature(sender).is_ok()
    }

    /// Verifies the sender's signature, checks the route is `expected`, and decrypts with `recipient_secret`.
    pub fn open(
        &self,
        expected: &Route,
        sender: &VerifyingKey,
        recipient_secret: &<HpkeKem as hpke::Kem>::PrivateKey,
    ) -> Result<Vec<u8>, SealError> {
        if self.route.from != expected.from {
            return Err(SealError::WrongSender {
                claimed: self.route.from,
                actual: expected.from,
            });
        }
        self.verify_signature(sender)?;
        if self.route != *expected || expected.to.is_none() {
            return Err(SealError::Misrouted);
        }
        let encapped = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&self.encapped)
            .map_err(|e| SealError::Hpke(e.to_string()))?;
        hpke::single_shot_open::<Aead, Kdf, HpkeKem>(
            &OpModeR::Base,
            recipient_secret,
            &encapped,
            HPKE_INFO,
            &self.body,
            &self.route.aad(),
        )
        .map_err(|e| SealError::Hpke(e.to_string()))
    }

    /// Verifies a broadcast's signature and route and returns its message.
    pub fn open_broadcast(&self, expected: &Route, sender: &VerifyingKey) -> Result<&[u8], SealError> {
        if self.route.from != expected.from {
            return Err(SealError::WrongSender {
                claimed: self.route.from,
                actual: expected.from,
            });
        }
        self.verify_signature(sender)?;
        if self.route != *expected || !self.encapped.is_empty() {
            return Err(SealError::Misrouted);
        }
        Ok(&self.body)
    }

    /// The strict encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_SEALED);
        self.route.encode(&mut w);
        w.bytes(&self.encapped).bytes(&self.body).raw(&self.signature);
        w.finish()
    }

    /// Strictly decodes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_SEALED)?;
        let route = Route::decode(&mut r)?;
        let encapped = r.bytes()?.to_vec();
        let body = r.bytes()?.to_vec();
        let signature = r.array()?;
        r.finish()?;
        Ok(Self {
            route,
            encapped,
            body,
            signature,
        })
    }
}

/// The digest every recipient echoes after a broadcast round: SHA-256 over every sender's signed broadcast, in
/// sender order. Equal digests at all honest recipients mean nobody equivocated.
pub fn echo_digest(broadcasts: &BTreeMap<SignerId, Envelope>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tcrypto-net echo v1");
    for (id, env) in broadcasts {
        h.update(id.get().to_be_bytes());
        let enc = env.encode();
        h.update((enc.len() as u64).to_be_bytes());
        h.update(&enc);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::identity::NodeIdentity;

    fn sid(n: u16) -> SignerId {
        SignerId::new(n).unwrap()
    }

    fn route(from: u16, to: u16) -> Route {
        Route {
            from: sid(from),
            to: SignerId::new(to),
            session: SessionId([5; 32]),
            round: 1,
        }
    }

    #[test]
    fn recipient_opens_what_the_sender_sealed() {
        let mut rng = rand::rng();
        let a = NodeIdentity::generate("a", &mut rng).unwrap();
        let b = NodeIdentity::generate("b", &mut rng).unwrap();
        let env = Envelope::seal(route(1, 2), b"share for 2", &b.hpke_public, &a.signing, &mut rng).unwrap();
        assert!(!env.body.windows(11).any(|w| w == b"share for 2"));
        let decoded = Envelope::decode(&env.encode()).unwrap();
        let pt = decoded
            .open(&route(1, 2), &a.signing.verifying_key(), &b.hpke_secret)
            .unwrap();
        assert_eq!(pt, b"share for 2");
    }

    #[test]
    fn a_relay_cannot_read_alter_or_redirect_a_sealed_message() {
        let mut rng = rand::rng();
        let a = NodeIdentity::generate("a", &mut rng).unwrap();
        let b = NodeIdentity::generate("b", &mut rng).unwrap();
        let c = NodeIdentity::generate("c", &mut rng).unwrap();
        let env = Envelope::seal(route(1, 2), b"secret", &b.hpke_public, &a.signing, &mut rng).unwrap();
        // Another node (or the coordinator with some key) cannot open it.
        assert!(
            env.open(&route(1, 2), &a.signing.verifying_key(), &c.hpke_secret)
                .is_err()
        );
        // A flipped ciphertext bit breaks the signature.
        let mut bad = env.clone();
        bad.body[0] ^= 1;
        assert_eq!(
            bad.open(&route(1, 2), &a.signing.verifying_key(), &b.hpke_secret),
            Err(SealError::BadSignature(sid(1)))
        );
        // Redirected to 3: signed route no longer matches.
        let mut redirected = env.clone();
        redirected.route.to = Some(sid(3));
        assert!(
            redirected
                .open(&route(1, 3), &a.signing.verifying_key(), &c.hpke_secret)
                .is_err()
        );
        // A forgery by someone without a's identity key.
        let forged = Envelope::seal(route(1, 2), b"evil", &b.hpke_public, &c.signing, &mut rng).unwrap();
        assert_eq!(
            forged.open(&route(1, 2), &a.signing.verifying_key(), &b.hpke_secret),
            Err(SealError::BadSignature(sid(1)))
        );
    }

    #[test]
    fn equivocating_broadcasts_give_different_echo_digests() {
        let mut rng = rand::rng();
        let a = NodeIdentity::generate("a", &mut rng).unwrap();
        let r = route(1, 0);
        let m1 = Envelope::broadcast(r, b"commitment A", &a.signing).unwrap();
        let m2 = Envelope::broadcast(r, b"commitment B", &a.signing).unwrap();
        assert_eq!(
            m1.open_broadcast(&r, &a.signing.verifying_key()).unwrap(),
            b"commitment A"
        );
        let seen_by_2 = BTreeMap::from([(sid(1), m1.clone())]);
        let seen_by_3 = BTreeMap::from([(sid(1), m2)]);
        assert_ne!(echo_digest(&seen_by_2), echo_digest(&seen_by_3));
        assert_eq!(
            echo_digest(&seen_by_2),
            echo_digest(&BTreeMap::from([(sid(1), m1)]))
        );
    }

    #[test]
    fn envelope_decoding_is_strict() {
        let mut rng = rand::rng();
        let a = NodeIdentity::generate("a", &mut rng).unwrap();
        let env = Envelope::broadcast(route(1, 0), b"x", &a.signing).unwrap();
        let mut enc = env.encode();
        enc.push(0);
        assert!(Envelope::decode(&enc).is_err());
        let enc = env.encode();
        for cut in 0..enc.len() {
            assert!(Envelope::decode(&enc[..cut]).is_err());
        }
    }
}
