//! The bridge between the wire protocol and the threshold schemes of `tcrypto`: what a node does with a share to
//! answer a [`Mechanism`], and how a coordinator turns shares into a verified signature.
//!
//! Each algorithm appears here once; the node and coordinator state machines only see `HeldShare` and
//! [`PublicKey`].

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use tcrypto::{SessionId, SignerId};

use crate::bundle::ShareBundle;
use crate::wire::{ErrorCode, KeyInfo, Mechanism};

/// Why a node could not produce a share: the code answered on the wire and a detail.
pub(crate) type Refusal = (ErrorCode, String);

/// A secret share held by a node, validated against its public key when loaded.
pub(crate) enum HeldShare {}

impl HeldShare {
    /// Validates a bundle's share against its public description.
    pub(crate) fn from_bundle(bundle: &ShareBundle) -> Result<Self, Refusal> {
        Err((
            ErrorCode::Unsupported,
            format!(
                "algorithm {} not available on this node",
                bundle.info.algorithm.name()
            ),
        ))
    }

    /// The signature share for `mechanism` in request `session`, in the algorithm's encoding.
    pub(crate) fn sign(
        &self,
        _session: &SessionId,
        _mechanism: &Mechanism,
        _rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, Refusal> {
        match *self {}
    }
}

/// Public key material of a threshold key, as a coordinator knows it.
#[derive(Debug, Clone)]
pub enum PublicKey {}

/// A verified signature and the signers found misbehaving on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The signature, in the algorithm's standard format (RSA: `|N|` bytes; ECDSA: DER; Ed25519: 64 bytes).
    pub signature: Vec<u8>,
    /// Signers whose shares were rejected.
    pub culprits: Vec<SignerId>,
}

/// Why shares could not be combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CombineFailure {
    /// These signers sent bad shares; ask others.
    Culprits(Vec<SignerId>),
    /// The request itself cannot be signed with this key (bad encoding); nobody misbehaved.
    BadRequest(String),
}

impl PublicKey {
    /// Parses the public part of a [`KeyInfo`].
    pub fn from_info(info: &KeyInfo) -> Result<Self, String> {
        Err(format!("algorithm {} not available", info.algorithm.name()))
    }

    /// Checks a mechanism can be used with this key before any node is asked.
    pub fn check_mechanism(&self, _mechanism: &Mechanism) -> Result<(), String> {
        match *self {}
    }

    /// Combines the shares (keyed by the sender's id from the authenticated channel) and verifies the result.
    pub fn combine(
        &self,
        _session: &SessionId,
        _mechanism: &Mechanism,
        _shares: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Combined, CombineFailure> {
        match *self {}
    }
}
