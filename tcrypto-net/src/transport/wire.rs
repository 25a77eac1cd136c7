//! The coordinator ↔ node wire messages.
//!
//! Every message is one [`tcrypto::codec`] object: the format version byte, a type tag from `0x80..=0xff`, then its
//! fields. Decoding is strict: an unknown version, tag, body kind, mechanism, algorithm or error code, a field out of
//! range and trailing bytes are all errors. Every [`Request`] carries a fresh [`SessionId`] (the node refuses one it
//! has seen, see [`crate::node::replay`]), the time it was issued (the node refuses stale ones) and a request id that the
//! [`Response`] echoes, so many requests can be in flight on one connection and answered in any order.

use tcrypto::codec::{DecodeError, Reader, Writer};
use tcrypto::{HashAlg, KeyId, SessionId, SignerId};

/// Type tag of a [`Request`].
pub const TAG_REQUEST: u8 = 0x80;
/// Type tag of a [`Response`].
pub const TAG_RESPONSE: u8 = 0x81;
/// Type tag of a sealed node-to-node envelope ([`crate::transport::sealed`]).
pub const TAG_SEALED: u8 = 0x82;
/// Type tag of an encrypted share file ([`crate::node::store`]).
pub const TAG_STORED_SHARE: u8 = 0x83;
/// Type tag of the key-store header file ([`crate::node::store`]).
pub const TAG_STORE_META: u8 = 0x84;
/// Type tag of a sealed share bundle (dealer or key ceremony output, [`crate::transport::bundle`]).
pub const TAG_SHARE_BUNDLE: u8 = 0x85;
/// Type tag of a node's public identity ([`crate::transport::identity`]).
pub const TAG_NODE_PUBLIC: u8 = 0x86;
/// Type tag of the plaintext inside a share bundle.
pub const TAG_BUNDLE_PLAINTEXT: u8 = 0x87;
/// Type tag of the coordinator's file of pending DKG deliveries ([`crate::coordinator::Coordinator::encode_deliveries`]).
pub const TAG_PENDING_DELIVERIES: u8 = 0x88;
/// Type tag of a coordinator identity file sealed with a passphrase ([`crate::transport::identity::SealedTlsIdentity`]).
pub const TAG_SEALED_IDENTITY: u8 = 0x90;
/// Tag of a dealer's [`KeptDelivery`] in its store.
pub const TAG_KEPT_DELIVERY: u8 = 0x8e;
/// A node's reshare record of one key (stored sealed: epoch, pending share), `crate::node::reshare`.
pub const TAG_RESHARE_RECORD: u8 = 0x8f;

/// Request kind of [`RequestBody::DkgCommit`].
const REQ_DKG_COMMIT: u8 = 40;
/// Request kind of [`RequestBody::DkgPending`].
const REQ_DKG_PENDING: u8 = 41;
/// Request kind of [`RequestBody::DkgDelivered`].
const REQ_DKG_DELIVERED: u8 = 42;
/// Request kind of [`RequestBody::DkgAbandon`].
const REQ_DKG_ABANDON: u8 = 45;
/// Request kind of [`RequestBody::DkgCommitServed`].
const REQ_DKG_COMMIT_SERVED: u8 = 46;
/// Response kind of [`ResponseBody::DkgPending`].
const RESP_DKG_PENDING: u8 = 40;
/// Request kind of [`RequestBody::DklsPairStart`].
const REQ_DKLS_PAIR_START: u8 = 50;
/// Request kind of [`RequestBody::DklsPairRound`].
const REQ_DKLS_PAIR_ROUND: u8 = 51;
/// Request kind of [`RequestBody::DklsSign`].
const REQ_DKLS_SIGN: u8 = 52;
/// Request kind of [`RequestBody::DklsRound`].
const REQ_DKLS_ROUND: u8 = 53;
/// Response kind of [`ResponseBody::PairsMissing`].
const RESP_PAIRS_MISSING: u8 = 50;
/// Request kind of [`RequestBody::ReshareStart`].
const REQ_RESHARE_START: u8 = 60;
/// Request kind of [`RequestBody::ReshareRound`].
const REQ_RESHARE_ROUND: u8 = 61;
/// Request kind of [`RequestBody::ReshareStatus`].
const REQ_RESHARE_STATUS: u8 = 62;
/// Request kind of [`RequestBody::ReshareCommit`].
const REQ_RESHARE_COMMIT: u8 = 63;
/// Request kind of [`RequestBody::ReshareAbort`].
const REQ_RESHARE_ABORT: u8 = 64;
/// Request kind of [`RequestBody::ReshareRetire`].
const REQ_RESHARE_RETIRE: u8 = 65;
/// Response kind of [`ResponseBody::ReshareStatus`].
const RESP_RESHARE_STATUS: u8 = 60;
/// Response kind of [`ResponseBody::ResharePending`].
const RESP_RESHARE_PENDING: u8 = 61;
/// Request kind of [`RequestBody::SignData`].
const REQ_SIGN_DATA: u8 = 70;
/// Request kind of [`RequestBody::SignDataOptimistic`].
const REQ_SIGN_DATA_OPTIMISTIC: u8 = 71;
/// Request kind of [`RequestBody::EcdsaSignData`].
const REQ_ECDSA_SIGN_DATA: u8 = 72;
/// Request kind of [`RequestBody::DklsSignData`].
const REQ_DKLS_SIGN_DATA: u8 = 73;

/// Longest free-text field (error details, node names).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest digest or message a signing request may carry (Ed25519 signs whole messages; the PKCS#11 layer bounds
/// what it passes).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// A coordinator's request id, unique per connection; echoed in the response.
pub type RequestId = u64;

/// A signature algorithm of a threshold key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// Shoup threshold RSA.
    Rsa,
    /// Threshold ECDSA on P-256 with presignatures.
    EcdsaP256,
    /// FROST Ed25519.
    Ed25519,
}

impl Algorithm {
    /// The wire code.
    pub const fn code(self) -> u8 {
        match self {
            Algorithm::Rsa => 1,
            Algorithm::EcdsaP256 => 2,
            Algorithm::Ed25519 => 3,
        }
    }

    /// Parses a wire code.
    pub fn from_code(c: u8) -> Result<Self, DecodeError> {
        match c {
            1 => Ok(Algorithm::Rsa),
            2 => Ok(Algorithm::EcdsaP256),
            3 => Ok(Algorithm::Ed25519),
            _ => Err(DecodeError::Invalid("unknown algorithm")),
        }
    }

    /// A short lower-case name for logs and the audit trail.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

/// What a node is asked to sign. The node builds the signed encoding itself from these fields; it never signs a
/// raw integer handed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// RSASSA-PKCS1-v1_5 over a digest: the node builds the DigestInfo.
    RsaPkcs1v15 {
        /// Hash that made `digest`.
        hash: HashAlg,
        /// The digest (length checked against `hash`).
        digest: Vec<u8>,
    },
    /// RSASSA-PKCS1-v1_5 over a caller-supplied DigestInfo (PKCS#11 `CKM_RSA_PKCS`); the node checks that it is one.
    RsaPkcs1v15DigestInfo {
        /// DER DigestInfo.
        digest_info: Vec<u8>,
    },
    /// RSASSA-PSS with MGF1 over the same hash; the salt is chosen by the coordinator and is the same at every node.
    RsaPss {
        /// Hash that made `digest`, also used by MGF1.
        hash: HashAlg,
        /// The digest.
        digest: Vec<u8>,
        /// The salt.
        salt: Vec<u8>,
    },
    /// ECDSA over a digest (PKCS#11 `CKM_ECDSA`: the digest is given, truncated per SEC 1).
    Ecdsa {
        /// The digest.
        digest: Vec<u8>,
    },
    /// Pure Ed25519 over a whole message (PKCS#11 `CKM_EDDSA`).
    Ed25519 {
        /// The message.
        message: Vec<u8>,
    },
}

impl Mechanism {
    /// The algorithm this mechanism needs.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Mechanism::RsaPkcs1v15 { .. }
            | Mechanism::RsaPkcs1v15DigestInfo { .. }
            | Mechanism::RsaPss { .. } => Algorithm::Rsa,
            Mechanism::Ecdsa { .. } => Algorithm::EcdsaP256,
            Mechanism::Ed25519 { .. } => Algorithm::Ed25519,
        }
    }

    /// A short name for logs and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::RsaPkcs1v15 { .. } => "rsa-pkcs1v15",
            Mechanism::RsaPkcs1v15DigestInfo { .. } => "rsa-pkcs1v15-digestinfo",
            Mechanism::RsaPss { .. } => "rsa-pss",
            Mechanism::Ecdsa { .. } => "ecdsa",
            Mechanism::Ed25519 { .. } => "ed25519",
        }
    }

    /// The bytes the signature covers as given by the caller (digest, DigestInfo or message), for the audit log.
    pub fn payload(&self) -> &[u8] {
        match self {
            Mechanism::RsaPkcs1v15 { digest, .. }
            | Mechanism::RsaPss { digest, .. }
            | Mechanism::Ecdsa { digest } => digest,
            Mechanism::RsaPkcs1v15DigestInfo { digest_info } => digest_info,
            Mechanism::Ed25519 { message } => message,
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Mechanism::RsaPkcs1v15 { hash, digest } => {
                w.u8(1);
                hash.encode(w);
                w.bytes(digest);
            }
            Mechanism::RsaPkcs1v15DigestInfo { digest_info } => {
                w.u8(2).bytes(digest_info);
            }
            Mechanism::RsaPss { hash, digest, salt } => {
                w.u8(3);
                hash.encode(w);
                w.bytes(digest).bytes(salt);
            }
            Mechanism::Ecdsa { digest } => {
                w.u8(4).bytes(digest);
            }
            Mechanism::Ed25519 { message } => {
                w.u8(5).bytes(message);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let digest_for = |r: &mut Reader<'_>, hash: HashAlg| -> Result<Vec<u8>, DecodeError> {
            let d = r.bytes()?;
            if d.len() != hash.output_len() {
                return Err(DecodeError::Invalid("digest length does not match its hash"));
            }
            Ok(d.to_vec())
        };
        Ok(match r.u8()? {
            1 => {
                let hash = HashAlg::decode(r)?;
                let digest = digest_for(r, hash)?;
                Mechanism::RsaPkcs1v15 { hash, digest }
            }
            2 => Mechanism::RsaPkcs1v15DigestInfo {
                digest_info: bounded(r.bytes()?, 256)?.to_vec(),
            },
            3 => {
                let hash = HashAlg::decode(r)?;
                let digest = digest_for(r, hash)?;
                let salt = bounded(r.bytes()?, 512)?.to_vec();
                Mechanism::RsaPss { hash, digest, salt }
            }
            4 => {
                let digest = r.bytes()?;
                if digest.is_empty() || digest.len() > 64 {
                    return Err(DecodeError::Invalid("ECDSA digest must be 1..=64 bytes"));
                }
                Mechanism::Ecdsa {
                    digest: digest.to_vec(),
                }
            }
            5 => Mechanism::Ed25519 {
                message: bounded(r.bytes()?, MAX_MESSAGE_LEN)?.to_vec(),
            },
            _ => return Err(DecodeError::Invalid("unknown mechanism")),
        })
    }
}

/// How a node turns the data of a data-carrying request ([`SignData`]) into what it signs: it hashes the data
/// itself and builds the encoding, so its policy ([`crate::node::policy`]) judges the data, not a digest it cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataMechanism {
    /// A DNSSEC RRSIG: the data is the RRSIG RDATA without the signature, then the RRset in canonical form and
    /// order (RFC 4034 §3.1.8.1), parsed strictly ([`crate::node::policy::RrsigData::parse`]). The RRSIG's algorithm
    /// field chooses the encoding: 8 RSASHA256 and 10 RSASHA512 (PKCS#1 v1.5, RFC 5702), 13 ECDSAP256SHA256
    /// (RFC 6605), 15 Ed25519 (RFC 8080).
    DnssecRrsig,
    /// RSASSA-PKCS1-v1_5 with `hash` over the data (PKCS#11 `CKM_SHA256_RSA_PKCS` and kin).
    RsaPkcs1v15 {
        /// The hash the node applies.
        hash: HashAlg,
    },
    /// RSASSA-PSS with `hash` (and MGF1 of the same hash) over the data, with the caller's salt.
    RsaPss {
        /// The hash the node applies.
        hash: HashAlg,
        /// The salt.
        salt: Vec<u8>,
    },
    /// ECDSA P-256 with `hash` over the data (PKCS#11 `CKM_ECDSA_SHA256` and kin).
    Ecdsa {
        /// The hash the node applies.
        hash: HashAlg,
    },
    /// Pure Ed25519 over the data (the same signature as [`Mechanism::Ed25519`]).
    Ed25519,
}

impl DataMechanism {
    /// The name a policy lists and the audit log shows.
    pub fn name(&self) -> &'static str {
        match self {
            DataMechanism::DnssecRrsig => "dnssec-rrsig",
            DataMechanism::RsaPkcs1v15 { .. } => "rsa-pkcs1v15-data",
            DataMechanism::RsaPss { .. } => "rsa-pss-data",
            DataMechanism::Ecdsa { .. } => "ecdsa-data",
            DataMechanism::Ed25519 => "ed25519",
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            DataMechanism::DnssecRrsig => {
                w.u8(1);
            }
            DataMechanism::RsaPkcs1v15 { hash } => {
                w.u8(2);
                hash.encode(w);
            }
            DataMechanism::RsaPss { hash, salt } => {
                w.u8(3);
                hash.encode(w);
                w.bytes(salt);
            }
            DataMechanism::Ecdsa { hash } => {
                w.u8(4);
                hash.encode(w);
            }
            DataMechanism::Ed25519 => {
                w.u8(5);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => DataMechanism::DnssecRrsig,
            2 => DataMechanism::RsaPkcs1v15 {
                hash: HashAlg::decode(r)?,
            },
            3 => DataMechanism::RsaPss {
                hash: HashAlg::decode(r)?,
                salt: bounded(r.bytes()?, 512)?.to_vec(),
            },
            4 => DataMechanism::Ecdsa {
                hash: HashAlg::decode(r)?,
            },
            5 => DataMechanism::Ed25519,
            _ => return Err(DecodeError::Invalid("unknown data mechanism")),
        })
    }
}

/// The data of a data-carrying signing request and how to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignData {
    /// How the node hashes and encodes the data.
    pub mechanism: DataMechanism,
    /// The data (at most [`MAX_MESSAGE_LEN`] bytes).
    pub data: Vec<u8>,
}

impl SignData {
    /// What is signed: the digest form the node (and the coordinator, to verify the result) derives from the data:
    /// the hash of the data with the mechanism's hash, or, for an RRSIG, the hash its algorithm field names. An
    /// error when RRSIG data does not parse or names an algorithm other than 8, 10, 13 and 15.
    pub fn digest_form(&self) -> Result<Mechanism, String> {
        let data = &self.data;
        Ok(match &self.mechanism {
            DataMechanism::DnssecRrsig => {
                let rrsig =
                    crate::node::policy::RrsigData::parse(data).map_err(|e| format!("RRSIG data: {e}"))?;
                match rrsig.algorithm {
                    8 => Mechanism::RsaPkcs1v15 {
                        hash: HashAlg::Sha256,
                        digest: HashAlg::Sha256.digest(data),
                    },
                    10 => Mechanism::RsaPkcs1v15 {
                        hash: HashAlg::Sha512,
                        digest: HashAlg::Sha512.digest(data),
                    },
                    13 => Mechanism::Ecdsa {
                        digest: HashAlg::Sha256.digest(data),
                    },
                    15 => Mechanism::Ed25519 {
                        message: data.clone(),
                    },
                    a => return Err(format!("RRSIG data names DNSSEC algorithm {a} (8, 10, 13 or 15)")),
                }
            }
            DataMechanism::RsaPkcs1v15 { hash } => Mechanism::RsaPkcs1v15 {
                hash: *hash,
                digest: hash.digest(data),
            },
            DataMechanism::RsaPss { hash, salt } => Mechanism::RsaPss {
                hash: *hash,
                digest: hash.digest(data),
                salt: salt.clone(),
            },
            DataMechanism::Ecdsa { hash } => Mechanism::Ecdsa {
                digest: hash.digest(data),
            },
            DataMechanism::Ed25519 => Mechanism::Ed25519 {
                message: data.clone(),
            },
        })
    }

    fn encode(&self, w: &mut Writer) {
        self.mechanism.encode(w);
        w.bytes(&self.data);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignData {
            mechanism: DataMechanism::decode(r)?,
            data: bounded(r.bytes()?, MAX_MESSAGE_LEN)?.to_vec(),
        })
    }
}

fn bounded(b: &[u8], max: usize) -> Result<&[u8], DecodeError> {
    if b.len() > max {
        Err(DecodeError::TooLong(b.len()))
    } else {
        Ok(b)
    }
}

fn text(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let b = bounded(r.bytes()?, MAX_TEXT_LEN)?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("text is not UTF-8"))
}

/// A request from a coordinator to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the response; unique per connection.
    pub id: RequestId,
    /// Fresh for every request; a node refuses one it has already seen.
    pub session: SessionId,
    /// When the coordinator issued the request, milliseconds since the Unix epoch; a node refuses stale ones.
    pub issued_at_ms: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// The operation a [`Request`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBody {
    /// Liveness and health.
    Ping,
    /// The keys the node holds.
    ListKeys,
    /// A signature share with the node's share of `key`.
    Sign {
        /// The key.
        key: KeyId,
        /// What to sign.
        mechanism: Mechanism,
    },
    /// A signature share without its proof of correctness: cheaper for the node. The coordinator combines such
    /// shares optimistically and, only if the result does not verify, asks again with [`RequestBody::Sign`] (fresh
    /// session) so the proofs name the culprit.
    SignOptimistic {
        /// The key.
        key: KeyId,
        /// What to sign.
        mechanism: Mechanism,
    },
    /// Store a share delivered in a sealed bundle (dealer or key ceremony, [`crate::transport::bundle`]).
    ImportShare {
        /// The encoded sealed bundle.
        bundle: Vec<u8>,
    },
    /// Delete the node's share of `key`.
    DeleteKey {
        /// The key.
        key: KeyId,
    },
    /// Start a distributed key generation run as one of its dealers (the node side is the internal `ec::dkg` module); answered with the
    /// node's round-1 envelopes.
    DkgStart(DkgSetup),
    /// Next DKG round: the envelopes relayed to this node (other dealers' broadcasts of the previous round and the
    /// sealed messages addressed to it). Answered with [`ResponseBody::Envelopes`], after the last round with
    /// [`ResponseBody::KeyCreated`].
    DkgRound {
        /// The run.
        run: SessionId,
        /// Round number, 2..=4.
        round: u8,
        /// Encoded [`crate::transport::sealed::Envelope`]s.
        inbox: Vec<Vec<u8>>,
    },
    /// Deliver a DKG result to a party that was offline during the run: every dealer's signed round-2 broadcast
    /// and the sealed share each dealer made for this node. Answered with [`ResponseBody::KeyCreated`].
    DkgDeliver {
        /// The run's parameters (this node is in `parties`, not in `dealers`).
        setup: DkgSetup,
        /// The key the dealers created (checked by the node against the commitments).
        key: KeyId,
        /// Encoded [`crate::transport::sealed::Envelope`]s.
        inbox: Vec<Vec<u8>>,
    },
    /// FROST round 1 for a batch of future signing sessions: one nonce commitment per session id (kept in
    /// memory by the node, each usable once). Answered with [`ResponseBody::Commitments`].
    FrostCommit {
        /// The Ed25519 key.
        key: KeyId,
        /// The signing sessions.
        sessions: Vec<SessionId>,
    },
    /// FROST round 2: a signature share for a signing package of a session this node committed to.
    FrostSign {
        /// The Ed25519 key.
        key: KeyId,
        /// The `tcrypto::ed25519::SigningPackage` encoding (session, message, commitments of the chosen signers).
        package: Vec<u8>,
    },
    /// Start an ECDSA presigning run among `parties` (at least `2t + 1` holders). Answered with envelopes.
    PresignStart {
        /// The P-256 key.
        key: KeyId,
        /// The run (becomes the session of every presignature id of the batch).
        run: SessionId,
        /// The presigning set, each party with its node's Ed25519 identity key (a pinned peer of the node).
        parties: Vec<(SignerId, [u8; 32])>,
        /// Number of presignatures.
        batch: u32,
    },
    /// Next presigning round (2, 3: envelopes; 4: the output check, answered with [`ResponseBody::Presigned`];
    /// 5: commit, the node stores the batch and answers [`ResponseBody::Done`]).
    PresignRound {
        /// The P-256 key.
        key: KeyId,
        /// The run.
        run: SessionId,
        /// Round number.
        round: u8,
        /// Encoded [`crate::transport::sealed::Envelope`]s.
        inbox: Vec<Vec<u8>>,
    },
    /// One-round ECDSA signing with a stored presignature (marked spent on disk before the share is answered).
    /// The request's session is the signing session bound into the re-randomisation.
    EcdsaSign {
        /// The P-256 key.
        key: KeyId,
        /// Run of the presignature.
        run: SessionId,
        /// Index of the presignature in its batch.
        index: u32,
        /// The digest to sign.
        digest: Vec<u8>,
    },
    /// Ends a key creation: the share this node stored tentatively at the end of the DKG becomes a key it serves
    /// (and its kept deliveries for offline parties become deliverable). Idempotent.
    DkgCommit {
        /// The key created.
        key: KeyId,
    },
    /// A coordinator settling an abandoned key creation (every node reported a tentative share older than its
    /// grace, or none, and none serves the key) asks each node to give the creation up. The node refuses with
    /// [`ErrorCode::KeyExists`] when it already serves the key (the creating coordinator's commit came first);
    /// otherwise it records, crash-safely, that the creation is abandoned (even when it holds nothing of it), and
    /// from then on refuses the creating coordinator's [`RequestBody::DkgCommit`] and any late tentative share of
    /// the key. Per node, the commit and the abandonment are thus ordered: a settling coordinator that got this
    /// acknowledged by every node knows that no node can ever serve the key, and deletes it; one that got
    /// [`ErrorCode::KeyExists`] from some node commits the key everywhere with [`RequestBody::DkgCommitServed`].
    DkgAbandon {
        /// The key whose creation is given up.
        key: KeyId,
    },
    /// Commits the tentative share of a key that some node already serves (a settling coordinator saw it): like
    /// [`RequestBody::DkgCommit`], but also over an abandonment record, which it clears.
    DkgCommitServed {
        /// The key.
        key: KeyId,
    },
    /// What the node holds about key creations: its committed key ids, its tentative (uncommitted) shares and
    /// the deliveries it keeps for parties that were offline (answered with [`ResponseBody::DkgPending`]).
    DkgPending,
    /// Party `party` now holds its share of `key`: the dealer drops what it kept for it.
    DkgDelivered {
        /// The key.
        key: KeyId,
        /// The party delivered.
        party: SignerId,
    },
    /// Start the DKLs23 per-pair setup (base OTs, `tcrypto::ecdsa::dkls::setup`) with one peer, under a fresh
    /// setup session shared by both nodes of the pair. Answered with one envelope sealed to the peer.
    DklsPairStart {
        /// The setup session (the relayed envelopes' run).
        run: SessionId,
        /// This node's party id in the pair state.
        me: SignerId,
        /// The peer's party id.
        peer: SignerId,
        /// The peer node's Ed25519 identity key (a pinned peer of the node).
        peer_key: [u8; 32],
    },
    /// Next step of a pair setup: round 2 answers one envelope; round 3 stores the pair state (sealed,
    /// crash-safely) and answers [`ResponseBody::Done`].
    DklsPairRound {
        /// The setup session.
        run: SessionId,
        /// Round number, 2 or 3.
        round: u8,
        /// Encoded [`crate::transport::sealed::Envelope`]s (the peer's message of the previous round).
        inbox: Vec<Vec<u8>>,
    },
    /// DKLs23 signing round 1 (`k`-online ECDSA) in the signing set `signers`, for `digest`. Answered with one
    /// envelope sealed to each other member, or [`ResponseBody::PairsMissing`].
    DklsSign {
        /// The P-256 key.
        key: KeyId,
        /// The signing session (fresh per attempt; the relayed envelopes' run).
        run: SessionId,
        /// The signing set, each member with its node's Ed25519 identity key (a pinned peer of the node).
        signers: Vec<(SignerId, [u8; 32])>,
        /// The digest to sign (16..=64 bytes), fixed at the start of the run.
        digest: Vec<u8>,
    },
    /// Next DKLs23 signing round: 2 answers envelopes, 3 answers the partial signature as a
    /// [`ResponseBody::Share`] (to the coordinator only).
    DklsRound {
        /// The P-256 key.
        key: KeyId,
        /// The signing session.
        run: SessionId,
        /// Round number, 2 or 3.
        round: u8,
        /// Encoded [`crate::transport::sealed::Envelope`]s.
        inbox: Vec<Vec<u8>>,
    },
    /// [`RequestBody::Sign`] for data the node hashes itself ([`SignData`]), so its policy sees what it signs.
    SignData {
        /// The key.
        key: KeyId,
        /// The data and how to sign it.
        data: SignData,
    },
    /// [`RequestBody::SignOptimistic`] for data the node hashes itself.
    SignDataOptimistic {
        /// The key.
        key: KeyId,
        /// The data and how to sign it.
        data: SignData,
    },
    /// [`RequestBody::EcdsaSign`] for data the node hashes itself.
    EcdsaSignData {
        /// The P-256 key.
        key: KeyId,
        /// Run of the presignature.
        run: SessionId,
        /// Index of the presignature in its batch.
        index: u32,
        /// The data and how to sign it.
        data: SignData,
    },
    /// [`RequestBody::DklsSign`] for data the node hashes itself.
    DklsSignData {
        /// The P-256 key.
        key: KeyId,
        /// The signing session.
        run: SessionId,
        /// The signing set, each member with its node's Ed25519 identity key.
        signers: Vec<(SignerId, [u8; 32])>,
        /// The data and how to sign it.
        data: SignData,
    },
    /// Round 1 of a reshare (`crate::node::reshare`): a dealer deals (answers its dealing broadcast and one sealed
    /// sub-share per new holder), a new holder only records the run (answers no envelope).
    ReshareStart(ReshareSetup),
    /// Rounds 2..=5 of a reshare: 2 verdicts (new holders), 3 answers (dealers), 4 confirmations (new holders),
    /// 5 the new share stored **pending** (new holders answer [`ResponseBody::KeyCreated`] with the pending
    /// sharing's description, or [`ResponseBody::KeyResolved`] with it and the routing parties the run named
    /// when it completed without some (a dealer whose sub-share failed, a false accuser); a dealer only answers
    /// [`ResponseBody::Done`]).
    ReshareRound {
        /// The key.
        key: KeyId,
        /// The run.
        run: SessionId,
        /// Round number, 2..=5.
        round: u8,
        /// Encoded [`crate::transport::sealed::Envelope`]s of the previous round.
        inbox: Vec<Vec<u8>>,
    },
    /// What the node holds of `key` across reshares (answered with [`ResponseBody::ReshareStatus`]).
    ReshareStatus {
        /// The key.
        key: KeyId,
    },
    /// Phase 2 of the two-phase commit: the pending share of `epoch` becomes the served share of `key` (the old
    /// share, its presignatures and FROST nonces are discarded). Idempotent.
    ReshareCommit {
        /// The key.
        key: KeyId,
        /// The epoch of the new sharing.
        epoch: u64,
    },
    /// Roll back: the pending share of `epoch` is deleted (the served share is untouched). Idempotent.
    ReshareAbort {
        /// The key.
        key: KeyId,
        /// The epoch given up.
        epoch: u64,
    },
    /// The sharing of `epoch` is committed elsewhere and this node is not in it: its share of `key` (of an
    /// earlier epoch) is deleted with its presignatures and nonces. Idempotent.
    ReshareRetire {
        /// The key.
        key: KeyId,
        /// The committed epoch.
        epoch: u64,
    },
}

/// Parameters of a reshare run (`crate::node::reshare`), chosen by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareSetup {
    /// The key (its name stays across reshares).
    pub key: KeyId,
    /// The epoch of the new sharing (above every epoch of the key the nodes know).
    pub epoch: u64,
    /// The run's session id (bound into every hash of the reshare and every relayed envelope).
    pub run: SessionId,
    /// The current sharing's public description (`signer` is unused).
    pub old: KeyInfo,
    /// Ed25519 identity keys of the nodes taking part: entry `i` is routing party `i + 1` (each must be a pinned
    /// peer of every node taking part).
    pub parties: Vec<[u8; 32]>,
    /// The dealers: `(routing party, old signer id)`, at least the old `k`, strictly increasing by party.
    pub dealers: Vec<(SignerId, SignerId)>,
    /// The new holders by new signer id: entry `j` (routing party) becomes new holder `j + 1`.
    pub receivers: Vec<SignerId>,
    /// `k'`.
    pub threshold: u16,
}

impl ReshareSetup {
    fn encode(&self, w: &mut Writer) {
        self.key.encode(w);
        w.u64(self.epoch);
        self.run.encode(w);
        self.old.encode(w);
        w.u32(u32::try_from(self.parties.len()).unwrap_or(u32::MAX));
        for p in &self.parties {
            w.raw(p);
        }
        let parties: Vec<SignerId> = self.dealers.iter().map(|(p, _)| *p).collect();
        encode_ids(w, &parties);
        for (_, old) in &self.dealers {
            old.encode(w);
        }
        w.u32(u32::try_from(self.receivers.len()).unwrap_or(u32::MAX));
        for p in &self.receivers {
            p.encode(w);
        }
        w.u16(self.threshold);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = KeyId::decode(r)?;
        let epoch = r.u64()?;
        let run = SessionId::decode(r)?;
        let old = KeyInfo::decode(r)?;
        let n = r.count(32)?;
        if n > usize::from(u8::MAX) {
            return Err(DecodeError::Invalid("more than 255 parties"));
        }
        let parties = (0..n).map(|_| r.array::<32>()).collect::<Result<Vec<_>, _>>()?;
        let dealer_parties = decode_ids(r)?;
        let dealers = dealer_parties
            .into_iter()
            .map(|p| SignerId::decode(r).map(|old| (p, old)))
            .collect::<Result<Vec<_>, _>>()?;
        let m = r.count(2)?;
        if m > usize::from(u8::MAX) {
            return Err(DecodeError::Invalid("more than 255 new holders"));
        }
        let receivers = (0..m)
            .map(|_| SignerId::decode(r))
            .collect::<Result<Vec<_>, _>>()?;
        let threshold = r.u16()?;
        let in_range = |p: &SignerId| usize::from(p.get()) <= n;
        let mut seen = std::collections::BTreeSet::new();
        if old.key != key
            || threshold == 0
            || usize::from(threshold) > receivers.len()
            || !dealers.iter().all(|(p, _)| in_range(p))
            || !receivers.iter().all(|p| in_range(p) && seen.insert(*p))
        {
            return Err(DecodeError::Invalid(
                "reshare key, threshold, parties, dealers and new holders inconsistent",
            ));
        }
        Ok(Self {
            key,
            epoch,
            run,
            old,
            parties,
            dealers,
            receivers,
            threshold,
        })
    }
}

/// What a node holds of one key across reshares ([`ResponseBody::ReshareStatus`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReshareState {
    /// The served share: the epoch of its sharing (0: never reshared) and its description.
    pub active: Option<(u64, KeyInfo)>,
    /// The epoch at which this node's share was retired (it holds none of that key since).
    pub retired: Option<u64>,
    /// A new share stored by a reshare whose commit has not reached this node: its epoch and description.
    pub pending: Option<(u64, KeyInfo)>,
}

impl ReshareState {
    /// Appends the fields (no header).
    pub fn encode(&self, w: &mut Writer) {
        for slot in [&self.active, &self.pending] {
            match slot {
                None => {
                    w.u8(0);
                }
                Some((epoch, info)) => {
                    w.u8(1).u64(*epoch);
                    info.encode(w);
                }
            }
        }
        match self.retired {
            None => w.u8(0),
            Some(e) => w.u8(1).u64(e),
        };
    }

    /// Reads the fields written by [`ReshareState::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let slot = |r: &mut Reader<'_>| -> Result<Option<(u64, KeyInfo)>, DecodeError> {
            match r.u8()? {
                0 => Ok(None),
                1 => Ok(Some((r.u64()?, KeyInfo::decode(r)?))),
                _ => Err(DecodeError::Invalid("bad option flag")),
            }
        };
        let active = slot(r)?;
        let pending = slot(r)?;
        let retired = match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            _ => return Err(DecodeError::Invalid("bad option flag")),
        };
        Ok(Self {
            active,
            retired,
            pending,
        })
    }
}

/// What a dealer keeps, after a DKG, for the parties that were offline: enough for any coordinator to deliver
/// their shares later ([`RequestBody::DkgDeliver`] needs one of these from every qualified dealer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptDelivery {
    /// The key created.
    pub key: KeyId,
    /// The run's setup with `dealers` = the qualified dealers (`me` is the dealer that keeps this).
    pub setup: DkgSetup,
    /// The parties that still wait for their shares.
    pub absent: Vec<SignerId>,
    /// This dealer's signed round-2 broadcast and the shares it sealed to the absent parties.
    pub envelopes: Vec<Vec<u8>>,
}

impl KeptDelivery {
    /// Appends the fields (no header).
    pub fn encode_into(&self, w: &mut Writer) {
        self.key.encode(w);
        self.setup.encode(w);
        encode_ids(w, &self.absent);
        encode_blobs(w, &self.envelopes);
    }

    /// Reads the fields written by [`KeptDelivery::encode_into`].
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key: KeyId::decode(r)?,
            setup: DkgSetup::decode(r)?,
            absent: decode_ids(r)?,
            envelopes: decode_blobs(r)?,
        })
    }

    /// The stored form (tag [`TAG_KEPT_DELIVERY`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_KEPT_DELIVERY);
        self.encode_into(&mut w);
        w.finish()
    }

    /// Strictly decodes the stored form.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input, TAG_KEPT_DELIVERY)?;
        let kept = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(kept)
    }
}

/// Parameters of a distributed key generation run, chosen by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgSetup {
    /// The run's session id (bound into every hash and proof of the DKG).
    pub run: SessionId,
    /// The algorithm of the key (ECDSA P-256 or Ed25519).
    pub algorithm: Algorithm,
    /// `k`.
    pub threshold: u16,
    /// The receiving node's party id.
    pub me: SignerId,
    /// Ed25519 identity keys of the parties: entry `i` is party `i + 1` (each must be a pinned peer of the node).
    pub parties: Vec<[u8; 32]>,
    /// The parties that deal (the ones online; at least `k`). The others receive their shares sealed.
    pub dealers: Vec<SignerId>,
}

impl DkgSetup {
    fn encode(&self, w: &mut Writer) {
        self.run.encode(w);
        w.u8(self.algorithm.code()).u16(self.threshold);
        self.me.encode(w);
        w.u32(u32::try_from(self.parties.len()).unwrap_or(u32::MAX));
        for p in &self.parties {
            w.raw(p);
        }
        encode_ids(w, &self.dealers);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let run = SessionId::decode(r)?;
        let algorithm = Algorithm::from_code(r.u8()?)?;
        let threshold = r.u16()?;
        let me = SignerId::decode(r)?;
        let n = r.count(32)?;
        if n > usize::from(u8::MAX) {
            return Err(DecodeError::Invalid("more than 255 parties"));
        }
        let parties = (0..n).map(|_| r.array::<32>()).collect::<Result<Vec<_>, _>>()?;
        let dealers = decode_ids(r)?;
        if threshold == 0
            || usize::from(threshold) > dealers.len()
            || usize::from(me.get()) > n
            || dealers.last().is_some_and(|d| usize::from(d.get()) > n)
        {
            return Err(DecodeError::Invalid(
                "DKG threshold, parties and dealers inconsistent",
            ));
        }
        Ok(Self {
            run,
            algorithm,
            threshold,
            me,
            parties,
            dealers,
        })
    }
}

/// Writes signer ids (count, then each).
/// A signing set with each member's node identity key (DKLs23 signing requests).
fn encode_signers(w: &mut Writer, signers: &[(SignerId, [u8; 32])]) {
    let ids: Vec<SignerId> = signers.iter().map(|(id, _)| *id).collect();
    encode_ids(w, &ids);
    for (_, key) in signers {
        w.raw(key);
    }
}

fn decode_signers(r: &mut Reader<'_>) -> Result<Vec<(SignerId, [u8; 32])>, DecodeError> {
    let ids = decode_ids(r)?;
    if ids.len() > usize::from(u8::MAX) {
        return Err(DecodeError::Invalid("more than 255 signers"));
    }
    ids.into_iter()
        .map(|id| r.array::<32>().map(|k| (id, k)))
        .collect()
}

fn encode_ids(w: &mut Writer, ids: &[SignerId]) {
    w.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
    for id in ids {
        id.encode(w);
    }
}

/// Reads signer ids, strictly increasing.
fn decode_ids(r: &mut Reader<'_>) -> Result<Vec<SignerId>, DecodeError> {
    let n = r.count(2)?;
    let mut out: Vec<SignerId> = Vec::with_capacity(n);
    for _ in 0..n {
        let id = SignerId::decode(r)?;
        if out.last().is_some_and(|l| *l >= id) {
            return Err(DecodeError::Invalid("signer ids not strictly increasing"));
        }
        out.push(id);
    }
    Ok(out)
}

/// Longest list of relayed envelopes or commitments in one message.
pub const MAX_LIST_LEN: usize = 4096;

fn encode_blobs(w: &mut Writer, blobs: &[Vec<u8>]) {
    w.u32(u32::try_from(blobs.len()).unwrap_or(u32::MAX));
    for b in blobs {
        w.bytes(b);
    }
}

fn decode_blobs(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let n = r.count(4)?;
    if n > MAX_LIST_LEN {
        return Err(DecodeError::TooLong(n));
    }
    (0..n).map(|_| r.bytes().map(<[u8]>::to_vec)).collect()
}

fn encode_sessions(w: &mut Writer, sessions: &[SessionId]) {
    w.u32(u32::try_from(sessions.len()).unwrap_or(u32::MAX));
    for s in sessions {
        s.encode(w);
    }
}

fn decode_sessions(r: &mut Reader<'_>) -> Result<Vec<SessionId>, DecodeError> {
    let n = r.count(32)?;
    if n > MAX_LIST_LEN {
        return Err(DecodeError::TooLong(n));
    }
    (0..n).map(|_| SessionId::decode(r)).collect()
}

impl RequestBody {
    /// A short name for logs and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            RequestBody::Ping => "ping",
            RequestBody::ListKeys => "list-keys",
            RequestBody::Sign { .. } => "sign",
            RequestBody::SignOptimistic { .. } => "sign-optimistic",
            RequestBody::ImportShare { .. } => "import-share",
            RequestBody::DeleteKey { .. } => "delete-key",
            RequestBody::DkgStart(_) => "dkg-start",
            RequestBody::DkgRound { .. } => "dkg-round",
            RequestBody::DkgDeliver { .. } => "dkg-deliver",
            RequestBody::FrostCommit { .. } => "frost-commit",
            RequestBody::FrostSign { .. } => "frost-sign",
            RequestBody::PresignStart { .. } => "presign-start",
            RequestBody::PresignRound { .. } => "presign-round",
            RequestBody::EcdsaSign { .. } => "ecdsa-sign",
            RequestBody::DkgCommit { .. } => "dkg-commit",
            RequestBody::DkgPending => "dkg-pending",
            RequestBody::DkgAbandon { .. } => "dkg-abandon",
            RequestBody::DkgCommitServed { .. } => "dkg-commit-served",
            RequestBody::DkgDelivered { .. } => "dkg-delivered",
            RequestBody::DklsPairStart { .. } => "dkls-pair-start",
            RequestBody::DklsPairRound { .. } => "dkls-pair-round",
            RequestBody::DklsSign { .. } => "dkls-sign",
            RequestBody::DklsRound { .. } => "dkls-round",
            RequestBody::ReshareStart(_) => "reshare-start",
            RequestBody::ReshareRound { .. } => "reshare-round",
            RequestBody::ReshareStatus { .. } => "reshare-status",
            RequestBody::ReshareCommit { .. } => "reshare-commit",
            RequestBody::ReshareAbort { .. } => "reshare-abort",
            RequestBody::ReshareRetire { .. } => "reshare-retire",
            RequestBody::SignData { .. } => "sign-data",
            RequestBody::SignDataOptimistic { .. } => "sign-data-optimistic",
            RequestBody::EcdsaSignData { .. } => "ecdsa-sign-data",
            RequestBody::DklsSignData { .. } => "dkls-sign-data",
        }
    }
}

impl Request {
    /// The strict encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_REQUEST);
        w.u64(self.id);
        self.session.encode(&mut w);
        w.u64(self.issued_at_ms);
        match &self.body {
            RequestBody::Ping => {
                w.u8(1);
            }
            RequestBody::ListKeys => {
                w.u8(2);
            }
            RequestBody::Sign { key, mechanism } => {
                w.u8(3);
                key.encode(&mut w);
                mechanism.encode(&mut w);
            }
            RequestBody::ImportShare { bundle } => {
                w.u8(4).bytes(bundle);
            }
            RequestBody::DeleteKey { key } => {
                w.u8(5);
                key.encode(&mut w);
            }
            RequestBody::SignOptimistic { key, mechanism } => {
                w.u8(6);
                key.encode(&mut w);
                mechanism.encode(&mut w);
            }
            RequestBody::DkgStart(setup) => {
                w.u8(7);
                setup.encode(&mut w);
            }
            RequestBody::DkgRound { run, round, inbox } => {
                w.u8(8);
                run.encode(&mut w);
                w.u8(*round);
                encode_blobs(&mut w, inbox);
            }
            RequestBody::DkgDeliver { setup, key, inbox } => {
                w.u8(9);
                setup.encode(&mut w);
                key.encode(&mut w);
                encode_blobs(&mut w, inbox);
            }
            RequestBody::FrostCommit { key, sessions } => {
                w.u8(10);
                key.encode(&mut w);
                encode_sessions(&mut w, sessions);
            }
            RequestBody::FrostSign { key, package } => {
                w.u8(11);
                key.encode(&mut w);
                w.bytes(package);
            }
            RequestBody::PresignStart {
                key,
                run,
                parties,
                batch,
            } => {
                w.u8(12);
                key.encode(&mut w);
                run.encode(&mut w);
                let ids: Vec<SignerId> = parties.iter().map(|(id, _)| *id).collect();
                encode_ids(&mut w, &ids);
                for (_, key) in parties {
                    w.raw(key);
                }
                w.u32(*batch);
            }
            RequestBody::PresignRound {
                key,
                run,
                round,
                inbox,
            } => {
                w.u8(13);
                key.encode(&mut w);
                run.encode(&mut w);
                w.u8(*round);
                encode_blobs(&mut w, inbox);
            }
            RequestBody::EcdsaSign {
                key,
                run,
                index,
                digest,
            } => {
                w.u8(14);
                key.encode(&mut w);
                run.encode(&mut w);
                w.u32(*index).bytes(digest);
            }
            RequestBody::DkgCommit { key } => {
                w.u8(REQ_DKG_COMMIT);
                key.encode(&mut w);
            }
            RequestBody::DkgPending => {
                w.u8(REQ_DKG_PENDING);
            }
            RequestBody::DkgAbandon { key } => {
                w.u8(REQ_DKG_ABANDON);
                key.encode(&mut w);
            }
            RequestBody::DkgCommitServed { key } => {
                w.u8(REQ_DKG_COMMIT_SERVED);
                key.encode(&mut w);
            }
            RequestBody::DkgDelivered { key, party } => {
                w.u8(REQ_DKG_DELIVERED);
                key.encode(&mut w);
                party.encode(&mut w);
            }
            RequestBody::DklsPairStart {
                run,
                me,
                peer,
                peer_key,
            } => {
                w.u8(REQ_DKLS_PAIR_START);
                run.encode(&mut w);
                me.encode(&mut w);
                peer.encode(&mut w);
                w.raw(peer_key);
            }
            RequestBody::DklsPairRound { run, round, inbox } => {
                w.u8(REQ_DKLS_PAIR_ROUND);
                run.encode(&mut w);
                w.u8(*round);
                encode_blobs(&mut w, inbox);
            }
            RequestBody::DklsSign {
                key,
                run,
                signers,
                digest,
            } => {
                w.u8(REQ_DKLS_SIGN);
                key.encode(&mut w);
                run.encode(&mut w);
                encode_signers(&mut w, signers);
                w.bytes(digest);
            }
            RequestBody::SignData { key, data } => {
                w.u8(REQ_SIGN_DATA);
                key.encode(&mut w);
                data.encode(&mut w);
            }
            RequestBody::SignDataOptimistic { key, data } => {
                w.u8(REQ_SIGN_DATA_OPTIMISTIC);
                key.encode(&mut w);
                data.encode(&mut w);
            }
            RequestBody::EcdsaSignData {
                key,
                run,
                index,
                data,
            } => {
                w.u8(REQ_ECDSA_SIGN_DATA);
                key.encode(&mut w);
                run.encode(&mut w);
                w.u32(*index);
                data.encode(&mut w);
            }
            RequestBody::DklsSignData {
                key,
                run,
                signers,
                data,
            } => {
                w.u8(REQ_DKLS_SIGN_DATA);
                key.encode(&mut w);
                run.encode(&mut w);
                encode_signers(&mut w, signers);
                data.encode(&mut w);
            }
            RequestBody::DklsRound {
                key,
                run,
                round,
                inbox,
            } => {
                w.u8(REQ_DKLS_ROUND);
                key.encode(&mut w);
                run.encode(&mut w);
                w.u8(*round);
                encode_blobs(&mut w, inbox);
            }
            RequestBody::ReshareStart(setup) => {
                w.u8(REQ_RESHARE_START);
                setup.encode(&mut w);
            }
            RequestBody::ReshareRound {
                key,
                run,
                round,
                inbox,
            } => {
                w.u8(REQ_RESHARE_ROUND);
                key.encode(&mut w);
                run.encode(&mut w);
                w.u8(*round);
                encode_blobs(&mut w, inbox);
            }
            RequestBody::ReshareStatus { key } => {
                w.u8(REQ_RESHARE_STATUS);
                key.encode(&mut w);
            }
            RequestBody::ReshareCommit { key, epoch } => {
                w.u8(REQ_RESHARE_COMMIT);
                key.encode(&mut w);
                w.u64(*epoch);
            }
            RequestBody::ReshareAbort { key, epoch } => {
                w.u8(REQ_RESHARE_ABORT);
                key.encode(&mut w);
                w.u64(*epoch);
            }
            RequestBody::ReshareRetire { key, epoch } => {
                w.u8(REQ_RESHARE_RETIRE);
                key.encode(&mut w);
                w.u64(*epoch);
            }
        }
        w.finish()
    }

    /// Decodes a request; the header alone is returned by [`Request::decode_header`] when the body is bad.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input, TAG_REQUEST)?;
        let id = r.u64()?;
        let session = SessionId::decode(&mut r)?;
        let issued_at_ms = r.u64()?;
        let body = match r.u8()? {
            1 => RequestBody::Ping,
            2 => RequestBody::ListKeys,
            3 => RequestBody::Sign {
                key: KeyId::decode(&mut r)?,
                mechanism: Mechanism::decode(&mut r)?,
            },
            4 => RequestBody::ImportShare {
                bundle: r.bytes()?.to_vec(),
            },
            5 => RequestBody::DeleteKey {
                key: KeyId::decode(&mut r)?,
            },
            6 => RequestBody::SignOptimistic {
                key: KeyId::decode(&mut r)?,
                mechanism: Mechanism::decode(&mut r)?,
            },
            7 => RequestBody::DkgStart(DkgSetup::decode(&mut r)?),
            8 => RequestBody::DkgRound {
                run: SessionId::decode(&mut r)?,
                round: r.u8()?,
                inbox: decode_blobs(&mut r)?,
            },
            9 => RequestBody::DkgDeliver {
                setup: DkgSetup::decode(&mut r)?,
                key: KeyId::decode(&mut r)?,
                inbox: decode_blobs(&mut r)?,
            },
            10 => RequestBody::FrostCommit {
                key: KeyId::decode(&mut r)?,
                sessions: decode_sessions(&mut r)?,
            },
            11 => RequestBody::FrostSign {
                key: KeyId::decode(&mut r)?,
                package: bounded(r.bytes()?, MAX_MESSAGE_LEN + 64 * 1024)?.to_vec(),
            },
            12 => RequestBody::PresignStart {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                parties: {
                    let ids = decode_ids(&mut r)?;
                    ids.into_iter()
                        .map(|id| r.array::<32>().map(|k| (id, k)))
                        .collect::<Result<Vec<_>, _>>()?
                },
                batch: r.u32()?,
            },
            13 => RequestBody::PresignRound {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                round: r.u8()?,
                inbox: decode_blobs(&mut r)?,
            },
            14 => RequestBody::EcdsaSign {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                index: r.u32()?,
                digest: {
                    let d = r.bytes()?;
                    if d.is_empty() || d.len() > 64 {
                        return Err(DecodeError::Invalid("ECDSA digest must be 1..=64 bytes"));
                    }
                    d.to_vec()
                },
            },
            REQ_DKG_COMMIT => RequestBody::DkgCommit {
                key: KeyId::decode(&mut r)?,
            },
            REQ_DKG_PENDING => RequestBody::DkgPending,
            REQ_DKG_ABANDON => RequestBody::DkgAbandon {
                key: KeyId::decode(&mut r)?,
            },
            REQ_DKG_COMMIT_SERVED => RequestBody::DkgCommitServed {
                key: KeyId::decode(&mut r)?,
            },
            REQ_DKG_DELIVERED => RequestBody::DkgDelivered {
                key: KeyId::decode(&mut r)?,
                party: SignerId::decode(&mut r)?,
            },
            REQ_DKLS_PAIR_START => {
                let run = SessionId::decode(&mut r)?;
                let me = SignerId::decode(&mut r)?;
                let peer = SignerId::decode(&mut r)?;
                if me == peer {
                    return Err(DecodeError::Invalid("a pair setup with oneself"));
                }
                RequestBody::DklsPairStart {
                    run,
                    me,
                    peer,
                    peer_key: r.array::<32>()?,
                }
            }
            REQ_DKLS_PAIR_ROUND => RequestBody::DklsPairRound {
                run: SessionId::decode(&mut r)?,
                round: r.u8()?,
                inbox: decode_blobs(&mut r)?,
            },
            REQ_DKLS_SIGN => RequestBody::DklsSign {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                signers: decode_signers(&mut r)?,
                digest: {
                    let d = r.bytes()?;
                    if !(16..=64).contains(&d.len()) {
                        return Err(DecodeError::Invalid("DKLs digest must be 16..=64 bytes"));
                    }
                    d.to_vec()
                },
            },
            REQ_SIGN_DATA => RequestBody::SignData {
                key: KeyId::decode(&mut r)?,
                data: SignData::decode(&mut r)?,
            },
            REQ_SIGN_DATA_OPTIMISTIC => RequestBody::SignDataOptimistic {
                key: KeyId::decode(&mut r)?,
                data: SignData::decode(&mut r)?,
            },
            REQ_ECDSA_SIGN_DATA => RequestBody::EcdsaSignData {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                index: r.u32()?,
                data: SignData::decode(&mut r)?,
            },
            REQ_DKLS_SIGN_DATA => RequestBody::DklsSignData {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                signers: decode_signers(&mut r)?,
                data: SignData::decode(&mut r)?,
            },
            REQ_DKLS_ROUND => RequestBody::DklsRound {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                round: r.u8()?,
                inbox: decode_blobs(&mut r)?,
            },
            REQ_RESHARE_START => RequestBody::ReshareStart(ReshareSetup::decode(&mut r)?),
            REQ_RESHARE_ROUND => RequestBody::ReshareRound {
                key: KeyId::decode(&mut r)?,
                run: SessionId::decode(&mut r)?,
                round: r.u8()?,
                inbox: decode_blobs(&mut r)?,
            },
            REQ_RESHARE_STATUS => RequestBody::ReshareStatus {
                key: KeyId::decode(&mut r)?,
            },
            REQ_RESHARE_COMMIT => RequestBody::ReshareCommit {
                key: KeyId::decode(&mut r)?,
                epoch: r.u64()?,
            },
            REQ_RESHARE_ABORT => RequestBody::ReshareAbort {
                key: KeyId::decode(&mut r)?,
                epoch: r.u64()?,
            },
            REQ_RESHARE_RETIRE => RequestBody::ReshareRetire {
                key: KeyId::decode(&mut r)?,
                epoch: r.u64()?,
            },
            _ => return Err(DecodeError::Invalid("unknown request kind")),
        };
        r.finish()?;
        Ok(Self {
            id,
            session,
            issued_at_ms,
            body,
        })
    }

    /// The request id and session of a request whose body may not decode, so the error can be answered to it.
    pub fn decode_header(input: &[u8]) -> Option<(RequestId, SessionId)> {
        let mut r = Reader::new(input, TAG_REQUEST).ok()?;
        let id = r.u64().ok()?;
        let session = SessionId::decode(&mut r).ok()?;
        Some((id, session))
    }
}

/// Public description of a key a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key.
    pub key: KeyId,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The node's signer id for this key.
    pub signer: SignerId,
    /// Shares needed to sign (`k`).
    pub threshold: u16,
    /// Shares dealt (`n`).
    pub parties: u16,
    /// The algorithm's encoding of the public key material (e.g. `tcrypto::rsa::PublicKeySet`).
    pub public: Vec<u8>,
}

impl KeyInfo {
    /// Appends the fields (no header).
    pub fn encode(&self, w: &mut Writer) {
        self.key.encode(w);
        w.u8(self.algorithm.code());
        self.signer.encode(w);
        w.u16(self.threshold).u16(self.parties).bytes(&self.public);
    }

    /// Reads the fields written by [`KeyInfo::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = KeyId::decode(r)?;
        let algorithm = Algorithm::from_code(r.u8()?)?;
        let signer = SignerId::decode(r)?;
        let threshold = r.u16()?;
        let parties = r.u16()?;
        if threshold == 0 || threshold > parties || signer.get() > parties {
            return Err(DecodeError::Invalid(
                "threshold, parties and signer id inconsistent",
            ));
        }
        let public = r.bytes()?.to_vec();
        Ok(Self {
            key,
            algorithm,
            signer,
            threshold,
            parties,
            public,
        })
    }
}

/// Why a node refused a request. Stable wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request could not be decoded.
    Malformed,
    /// The node holds no share of that key.
    UnknownKey,
    /// The mechanism's input is not acceptable (not a DigestInfo, wrong digest length, wrong algorithm for the key).
    BadEncoding,
    /// The session id was already used.
    Replayed,
    /// The request's time is outside the accepted window.
    Stale,
    /// The node cannot do this (yet) for this key or algorithm.
    Unsupported,
    /// Storing or deleting on the node's disk failed.
    Storage,
    /// The node is overloaded; try another.
    Busy,
    /// A share of that key is already held.
    KeyExists,
    /// An import bundle failed to open or verify.
    BadBundle,
    /// The node's own bug.
    Internal,
    /// The node's signing policy refuses the request (the detail starts with the rule's name,
    /// [`crate::node::policy::Rule::name`]); asking another node is pointless.
    PolicyRefused,
}

impl ErrorCode {
    const ALL: [ErrorCode; 12] = [
        ErrorCode::Malformed,
        ErrorCode::UnknownKey,
        ErrorCode::BadEncoding,
        ErrorCode::Replayed,
        ErrorCode::Stale,
        ErrorCode::Unsupported,
        ErrorCode::Storage,
        ErrorCode::Busy,
        ErrorCode::KeyExists,
        ErrorCode::BadBundle,
        ErrorCode::Internal,
        ErrorCode::PolicyRefused,
    ];

    /// The wire code.
    pub const fn code(self) -> u16 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::UnknownKey => 2,
            ErrorCode::BadEncoding => 3,
            ErrorCode::Replayed => 4,
            ErrorCode::Stale => 5,
            ErrorCode::Unsupported => 6,
            ErrorCode::Storage => 7,
            ErrorCode::Busy => 8,
            ErrorCode::KeyExists => 9,
            ErrorCode::BadBundle => 10,
            ErrorCode::Internal => 11,
            ErrorCode::PolicyRefused => 12,
        }
    }

    /// Parses a wire code.
    pub fn from_code(c: u16) -> Result<Self, DecodeError> {
        Self::ALL
            .into_iter()
            .find(|e| e.code() == c)
            .ok_or(DecodeError::Invalid("unknown error code"))
    }
}

/// A node's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request id being answered (0 when the request could not even be parsed that far).
    pub id: RequestId,
    /// The request's session (all zero when unknown).
    pub session: SessionId,
    /// The answer.
    pub body: ResponseBody,
}

/// The content of a [`Response`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseBody {
    /// Answer to [`RequestBody::Ping`].
    Pong {
        /// The node's configured name.
        node: String,
        /// The node's clock, ms since the Unix epoch.
        time_ms: u64,
        /// Number of keys held.
        keys: u32,
    },
    /// Answer to [`RequestBody::ListKeys`].
    Keys(Vec<KeyInfo>),
    /// A signature share.
    Share {
        /// The signer id of the share.
        signer: SignerId,
        /// The algorithm's encoding of the share (e.g. `tcrypto::rsa::SignatureShare`).
        share: Vec<u8>,
    },
    /// The operation was carried out.
    Done,
    /// Envelopes for other nodes (relayed by the coordinator), from a DKG or presigning round.
    Envelopes(Vec<Vec<u8>>),
    /// A DKG run ended: the node stored its share of this key.
    KeyCreated(KeyInfo),
    /// A DKG run ended after its complaint-resolution round: this party's key (made from the qualified dealers
    /// only) and the parties the resolution named: dealers whose answer did not open their commitments (or who
    /// did not answer) and accusers whose complaint was false.
    KeyResolved {
        /// The key created.
        info: KeyInfo,
        /// Parties named by the resolution.
        culprits: Vec<SignerId>,
        /// Dealers left out of the key (the others form `QUAL`).
        disqualified: Vec<SignerId>,
    },
    /// FROST nonce commitments (`tcrypto::ed25519::round1::Commitment` encodings), one per requested session.
    Commitments(Vec<Vec<u8>>),
    /// A presigning run's checks passed at this node: the public parts of the batch
    /// (`tcrypto::ecdsa::PresignaturePublic` encodings), in batch order.
    Presigned(Vec<Vec<u8>>),
    /// A multi-party run (DKG, presigning) failed at this node and must be aborted; the parties it found
    /// misbehaving (by party id; possibly none identified).
    Aborted {
        /// Misbehaving parties.
        culprits: Vec<SignerId>,
        /// What went wrong.
        detail: String,
    },
    /// The request was refused.
    Error {
        /// Why.
        code: ErrorCode,
        /// Human-readable detail.
        detail: String,
    },
    /// Answer to [`RequestBody::DkgPending`].
    DkgPending {
        /// Keys this node holds and serves (committed).
        held: Vec<KeyId>,
        /// Shares stored at the end of a DKG whose commit has not reached this node, with their age in ms.
        tentative: Vec<(KeyId, u64)>,
        /// Deliveries this node keeps, as a dealer, for parties that were offline (of committed and tentative
        /// keys).
        kept: Vec<KeptDelivery>,
    },
    /// Answer to [`RequestBody::DklsSign`] / [`RequestBody::DklsRound`]: this node has no usable DKLs23 pair
    /// state with these members of the signing set (never set up, lost, damaged, discarded after a failed OT
    /// check, or set up in another session than the peer's): the pairs must be set up before they sign.
    PairsMissing(Vec<SignerId>),
    /// Answer to [`RequestBody::ReshareStatus`].
    ReshareStatus(ReshareState),
    /// Refusal of a reshare step ([`RequestBody::ReshareStart`] of another run, [`RequestBody::ReshareAbort`] of
    /// the claimed epoch by another coordinator) while another coordinator's reshare of the key is in progress
    /// at this node (`crate::node::reshare::Claims`).
    ResharePending(ReshareClaim),
}

/// A reshare of one key in progress at a node, as it refuses a second one ([`ResponseBody::ResharePending`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareClaim {
    /// The key.
    pub key: KeyId,
    /// The epoch the pending reshare creates.
    pub epoch: u64,
    /// The SHA-256 fingerprint of the SubjectPublicKeyInfo of the coordinator that started it (from its TLS
    /// certificate; none over a transport without one).
    pub coordinator: Option<[u8; 32]>,
    /// Time since that coordinator's last step of the run at this node, in ms.
    pub idle_ms: u64,
    /// Time left before the claim expires if that coordinator takes no further step, in ms.
    pub expires_in_ms: u64,
}

impl std::fmt::Display for ReshareClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let coordinator = self.coordinator.map_or_else(
            || "an unauthenticated coordinator".to_string(),
            |c| format!("coordinator {}", hex::encode(c)),
        );
        write!(
            f,
            "a reshare of key {} to epoch {} by {coordinator} is in progress (last step {} s ago; it expires in {} s \
             without a step, or when that coordinator commits or aborts it)",
            self.key,
            self.epoch,
            self.idle_ms / 1000,
            self.expires_in_ms.div_ceil(1000)
        )
    }
}

impl Response {
    /// An error answer.
    pub fn error(id: RequestId, session: SessionId, code: ErrorCode, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_TEXT_LEN {
            let mut cut = MAX_TEXT_LEN;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        Self {
            id,
            session,
            body: ResponseBody::Error { code, detail },
        }
    }

    /// The strict encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG_RESPONSE);
        w.u64(self.id);
        self.session.encode(&mut w);
        match &self.body {
            ResponseBody::Pong { node, time_ms, keys } => {
                w.u8(1).bytes(node.as_bytes()).u64(*time_ms).u32(*keys);
            }
            ResponseBody::Keys(keys) => {
                w.u8(2);
                w.u32(u32::try_from(keys.len()).unwrap_or(u32::MAX));
                for k in keys {
                    k.encode(&mut w);
                }
            }
            ResponseBody::Share { signer, share } => {
                w.u8(3);
                signer.encode(&mut w);
                w.bytes(share);
            }
            ResponseBody::Done => {
                w.u8(4);
            }
            ResponseBody::Error { code, detail } => {
                w.u8(5).u16(code.code()).bytes(detail.as_bytes());
            }
            ResponseBody::Envelopes(e) => {
                w.u8(6);
                encode_blobs(&mut w, e);
            }
            ResponseBody::KeyCreated(info) => {
                w.u8(7);
                info.encode(&mut w);
            }
            ResponseBody::Commitments(c) => {
                w.u8(8);
                encode_blobs(&mut w, c);
            }
            ResponseBody::Presigned(p) => {
                w.u8(9);
                encode_blobs(&mut w, p);
            }
            ResponseBody::Aborted { culprits, detail } => {
                w.u8(10);
                encode_ids(&mut w, culprits);
                w.bytes(detail.as_bytes());
            }
            ResponseBody::KeyResolved {
                info,
                culprits,
                disqualified,
            } => {
                w.u8(11);
                info.encode(&mut w);
                encode_ids(&mut w, culprits);
                encode_ids(&mut w, disqualified);
            }
            ResponseBody::PairsMissing(ids) => {
                w.u8(RESP_PAIRS_MISSING);
                encode_ids(&mut w, ids);
            }
            ResponseBody::ReshareStatus(state) => {
                w.u8(RESP_RESHARE_STATUS);
                state.encode(&mut w);
            }
            ResponseBody::ResharePending(claim) => {
                w.u8(RESP_RESHARE_PENDING);
                claim.key.encode(&mut w);
                w.u64(claim.epoch);
                match &claim.coordinator {
                    None => {
                        w.u8(0);
                    }
                    Some(c) => {
                        w.u8(1).raw(c);
                    }
                }
                w.u64(claim.idle_ms).u64(claim.expires_in_ms);
            }
            ResponseBody::DkgPending {
                held,
                tentative,
                kept,
            } => {
                w.u8(RESP_DKG_PENDING);
                w.u32(u32::try_from(held.len()).unwrap_or(u32::MAX));
                for key in held {
                    key.encode(&mut w);
                }
                w.u32(u32::try_from(tentative.len()).unwrap_or(u32::MAX));
                for (key, age) in tentative {
                    key.encode(&mut w);
                    w.u64(*age);
                }
                w.u32(u32::try_from(kept.len()).unwrap_or(u32::MAX));
                for k in kept {
                    k.encode_into(&mut w);
                }
            }
        }
        w.finish()
    }

    /// Strictly decodes a response.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input, TAG_RESPONSE)?;
        let id = r.u64()?;
        let session = SessionId::decode(&mut r)?;
        let body = match r.u8()? {
            1 => ResponseBody::Pong {
                node: text(&mut r)?,
                time_ms: r.u64()?,
                keys: r.u32()?,
            },
            2 => {
                // KeyId + algorithm + signer + k + n + public length.
                let n = r.count(32 + 1 + 2 + 2 + 2 + 4)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(KeyInfo::decode(&mut r)?);
                }
                ResponseBody::Keys(keys)
            }
            3 => ResponseBody::Share {
                signer: SignerId::decode(&mut r)?,
                share: r.bytes()?.to_vec(),
            },
            4 => ResponseBody::Done,
            5 => ResponseBody::Error {
                code: ErrorCode::from_code(r.u16()?)?,
                detail: text(&mut r)?,
            },
            6 => ResponseBody::Envelopes(decode_blobs(&mut r)?),
            7 => ResponseBody::KeyCreated(KeyInfo::decode(&mut r)?),
            8 => ResponseBody::Commitments(decode_blobs(&mut r)?),
            9 => ResponseBody::Presigned(decode_blobs(&mut r)?),
            10 => ResponseBody::Aborted {
                culprits: decode_ids(&mut r)?,
                detail: text(&mut r)?,
            },
            11 => ResponseBody::KeyResolved {
                info: KeyInfo::decode(&mut r)?,
                culprits: decode_ids(&mut r)?,
                disqualified: decode_ids(&mut r)?,
            },
            RESP_PAIRS_MISSING => ResponseBody::PairsMissing(decode_ids(&mut r)?),
            RESP_RESHARE_STATUS => ResponseBody::ReshareStatus(ReshareState::decode(&mut r)?),
            RESP_RESHARE_PENDING => ResponseBody::ResharePending(ReshareClaim {
                key: KeyId::decode(&mut r)?,
                epoch: r.u64()?,
                coordinator: match r.u8()? {
                    0 => None,
                    1 => Some(r.array::<32>()?),
                    _ => return Err(DecodeError::Invalid("bad option flag")),
                },
                idle_ms: r.u64()?,
                expires_in_ms: r.u64()?,
            }),
            RESP_DKG_PENDING => {
                let n = r.count(32)?;
                let held = (0..n)
                    .map(|_| KeyId::decode(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = r.count(40)?;
                let tentative = (0..n)
                    .map(|_| Ok((KeyId::decode(&mut r)?, r.u64()?)))
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                let n = r.count(32 + 32 + 8)?;
                if n > MAX_LIST_LEN {
                    return Err(DecodeError::TooLong(n));
                }
                let kept = (0..n)
                    .map(|_| KeptDelivery::decode_from(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                ResponseBody::DkgPending {
                    held,
                    tentative,
                    kept,
                }
            }
            _ => return Err(DecodeError::Invalid("unknown response kind")),
        };
        r.finish()?;
        Ok(Self { id, session, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcrypto::codec::VERSION;

    fn sid(b: u8) -> SessionId {
        SessionId([b; 32])
    }

    fn sample_requests() -> Vec<Request> {
        let bodies = vec![
            RequestBody::Ping,
            RequestBody::ListKeys,
            RequestBody::Sign {
                key: KeyId([7; 32]),
                mechanism: Mechanism::RsaPkcs1v15 {
                    hash: HashAlg::Sha256,
                    digest: vec![1; 32],
                },
            },
            RequestBody::Sign {
                key: KeyId([7; 32]),
                mechanism: Mechanism::RsaPkcs1v15DigestInfo {
                    digest_info: vec![0x30, 1, 2],
                },
            },
            RequestBody::Sign {
                key: KeyId([7; 32]),
                mechanism: Mechanism::RsaPss {
                    hash: HashAlg::Sha384,
                    digest: vec![2; 48],
                    salt: vec![3; 48],
                },
            },
            RequestBody::Sign {
                key: KeyId([8; 32]),
                mechanism: Mechanism::Ecdsa { digest: vec![4; 32] },
            },
            RequestBody::Sign {
                key: KeyId([9; 32]),
                mechanism: Mechanism::Ed25519 {
                    message: b"hello".to_vec(),
                },
            },
            RequestBody::ImportShare { bundle: vec![5; 10] },
            RequestBody::DeleteKey { key: KeyId([1; 32]) },
            RequestBody::SignOptimistic {
                key: KeyId([7; 32]),
                mechanism: Mechanism::Ecdsa { digest: vec![4; 32] },
            },
            RequestBody::DkgStart(sample_setup()),
            RequestBody::DkgRound {
                run: sid(3),
                round: 2,
                inbox: vec![vec![1, 2], vec![]],
            },
            RequestBody::DkgDeliver {
                setup: sample_setup(),
                key: KeyId([2; 32]),
                inbox: vec![vec![9; 40]],
            },
            RequestBody::FrostCommit {
                key: KeyId([5; 32]),
                sessions: vec![sid(1), sid(2)],
            },
            RequestBody::FrostSign {
                key: KeyId([5; 32]),
                package: vec![7; 100],
            },
            RequestBody::PresignStart {
                key: KeyId([6; 32]),
                run: sid(4),
                parties: vec![
                    (SignerId::new(1).unwrap(), [1; 32]),
                    (SignerId::new(3).unwrap(), [3; 32]),
                ],
                batch: 16,
            },
            RequestBody::PresignRound {
                key: KeyId([6; 32]),
                run: sid(4),
                round: 3,
                inbox: vec![vec![5; 3]],
            },
            RequestBody::EcdsaSign {
                key: KeyId([6; 32]),
                run: sid(4),
                index: 7,
                digest: vec![8; 32],
            },
            RequestBody::DkgCommit { key: KeyId([9; 32]) },
            RequestBody::DkgAbandon { key: KeyId([9; 32]) },
            RequestBody::DkgCommitServed { key: KeyId([9; 32]) },
            RequestBody::DkgPending,
            RequestBody::DkgDelivered {
                key: KeyId([9; 32]),
                party: SignerId::new(4).unwrap(),
            },
            RequestBody::DklsPairStart {
                run: sid(5),
                me: SignerId::new(1).unwrap(),
                peer: SignerId::new(3).unwrap(),
                peer_key: [3; 32],
            },
            RequestBody::DklsPairRound {
                run: sid(5),
                round: 2,
                inbox: vec![vec![1; 9]],
            },
            RequestBody::DklsSign {
                key: KeyId([6; 32]),
                run: sid(6),
                signers: vec![
                    (SignerId::new(1).unwrap(), [1; 32]),
                    (SignerId::new(4).unwrap(), [4; 32]),
                ],
                digest: vec![7; 32],
            },
            RequestBody::DklsRound {
                key: KeyId([6; 32]),
                run: sid(6),
                round: 3,
                inbox: vec![vec![2; 5], vec![3; 6]],
            },
            RequestBody::SignData {
                key: KeyId([7; 32]),
                data: SignData {
                    mechanism: DataMechanism::DnssecRrsig,
                    data: vec![1; 60],
                },
            },
            RequestBody::SignData {
                key: KeyId([7; 32]),
                data: SignData {
                    mechanism: DataMechanism::RsaPss {
                        hash: HashAlg::Sha384,
                        salt: vec![3; 48],
                    },
                    data: b"a document".to_vec(),
                },
            },
            RequestBody::SignDataOptimistic {
                key: KeyId([7; 32]),
                data: SignData {
                    mechanism: DataMechanism::RsaPkcs1v15 {
                        hash: HashAlg::Sha512,
                    },
                    data: vec![],
                },
            },
            RequestBody::EcdsaSignData {
                key: KeyId([8; 32]),
                run: sid(8),
                index: 3,
                data: SignData {
                    mechanism: DataMechanism::Ecdsa {
                        hash: HashAlg::Sha256,
                    },
                    data: vec![4; 10],
                },
            },
            RequestBody::DklsSignData {
                key: KeyId([8; 32]),
                run: sid(9),
                signers: vec![
                    (SignerId::new(2).unwrap(), [2; 32]),
                    (SignerId::new(3).unwrap(), [3; 32]),
                ],
                data: SignData {
                    mechanism: DataMechanism::Ed25519,
                    data: vec![5; 3],
                },
            },
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Request {
                id: i as u64 + 1,
                session: sid(i as u8),
                issued_at_ms: 1_700_000_000_000 + i as u64,
                body,
            })
            .collect()
    }

    fn sample_setup() -> DkgSetup {
        DkgSetup {
            run: sid(9),
            algorithm: Algorithm::Ed25519,
            threshold: 2,
            me: SignerId::new(3).unwrap(),
            parties: vec![[1; 32], [2; 32], [3; 32]],
            dealers: vec![SignerId::new(1).unwrap(), SignerId::new(3).unwrap()],
        }
    }

    #[test]
    fn dkg_setup_with_fewer_dealers_than_the_threshold_is_refused() {
        let mut setup = sample_setup();
        setup.threshold = 3;
        let req = Request {
            id: 1,
            session: sid(1),
            issued_at_ms: 1,
            body: RequestBody::DkgStart(setup),
        };
        assert!(Request::decode(&req.encode()).is_err());
    }

    fn sample_responses() -> Vec<Response> {
        let bodies = vec![
            ResponseBody::Pong {
                node: "n1".into(),
                time_ms: 5,
                keys: 2,
            },
            ResponseBody::Keys(vec![KeyInfo {
                key: KeyId([3; 32]),
                algorithm: Algorithm::Rsa,
                signer: SignerId::new(2).unwrap(),
                threshold: 3,
                parties: 5,
                public: vec![1, 2, 3],
            }]),
            ResponseBody::Keys(vec![]),
            ResponseBody::Share {
                signer: SignerId::new(1).unwrap(),
                share: vec![9; 300],
            },
            ResponseBody::Done,
            ResponseBody::Error {
                code: ErrorCode::UnknownKey,
                detail: "no such key".into(),
            },
            ResponseBody::Envelopes(vec![vec![1; 5], vec![2; 7]]),
            ResponseBody::KeyCreated(KeyInfo {
                key: KeyId([3; 32]),
                algorithm: Algorithm::EcdsaP256,
                signer: SignerId::new(2).unwrap(),
                threshold: 2,
                parties: 3,
                public: vec![4; 10],
            }),
            ResponseBody::Commitments(vec![vec![3; 66]]),
            ResponseBody::Presigned(vec![]),
            ResponseBody::Aborted {
                culprits: vec![SignerId::new(4).unwrap()],
                detail: "bad share".into(),
            },
            ResponseBody::KeyResolved {
                info: KeyInfo {
                    key: KeyId([5; 32]),
                    algorithm: Algorithm::Ed25519,
                    signer: SignerId::new(1).unwrap(),
                    threshold: 2,
                    parties: 3,
                    public: vec![6; 10],
                },
                culprits: vec![SignerId::new(3).unwrap()],
                disqualified: vec![],
            },
            ResponseBody::DkgPending {
                held: vec![KeyId([1; 32])],
                tentative: vec![(KeyId([2; 32]), 1_500)],
                kept: vec![KeptDelivery {
                    key: KeyId([1; 32]),
                    setup: DkgSetup {
                        run: sid(3),
                        algorithm: Algorithm::Ed25519,
                        threshold: 2,
                        me: SignerId::new(1).unwrap(),
                        parties: vec![[1; 32], [2; 32], [3; 32]],
                        dealers: vec![SignerId::new(1).unwrap(), SignerId::new(2).unwrap()],
                    },
                    absent: vec![SignerId::new(3).unwrap()],
                    envelopes: vec![vec![5; 40], vec![6; 90]],
                }],
            },
            ResponseBody::DkgPending {
                held: vec![],
                tentative: vec![],
                kept: vec![],
            },
            ResponseBody::PairsMissing(vec![SignerId::new(2).unwrap(), SignerId::new(5).unwrap()]),
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Response {
                id: i as u64,
                session: sid(i as u8),
                body,
            })
            .collect()
    }

    /// The DKLs23, DKG-settlement, data-carrying and reshare request and response kinds are seeds of the
    /// `net_messages` fuzz target
    /// (`fuzz/seeds/net_messages/`, rewritten here from the fixed samples, so they stay current).
    #[test]
    fn dkls_messages_are_fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/net_messages");
        let mut written = 0;
        for req in sample_requests() {
            let name = req.body.name();
            if let RequestBody::SignData { data, .. }
            | RequestBody::SignDataOptimistic { data, .. }
            | RequestBody::EcdsaSignData { data, .. }
            | RequestBody::DklsSignData { data, .. } = &req.body
            {
                // The data-carrying kinds, one seed per sample (two samples share a kind).
                let bytes = req.encode();
                assert_eq!(Request::decode(&bytes).unwrap(), req);
                let file = format!("request-{name}-{}", data.mechanism.name());
                std::fs::write(dir.join(file), bytes).unwrap();
                written += 1;
            } else if name.starts_with("dkls-") || name == "dkg-abandon" || name == "dkg-commit-served" {
                let bytes = req.encode();
                assert_eq!(Request::decode(&bytes).unwrap(), req);
                std::fs::write(dir.join(format!("request-{name}")), bytes).unwrap();
                written += 1;
            }
        }
        for resp in sample_responses() {
            if let ResponseBody::PairsMissing(_) = resp.body {
                std::fs::write(dir.join("response-pairs-missing"), resp.encode()).unwrap();
                written += 1;
            }
        }
        // The reshare kinds (requests 60-65, response 60).
        let (requests, responses) = reshare_bodies();
        for (i, body) in requests.into_iter().enumerate() {
            let name = body.name();
            let req = Request {
                id: 40 + i as u64,
                session: sid(i as u8),
                issued_at_ms: 1_700_000_000_000,
                body,
            };
            std::fs::write(dir.join(format!("request-{name}")), req.encode()).unwrap();
            written += 1;
        }
        for (i, body) in responses.into_iter().enumerate() {
            let resp = Response {
                id: 40 + i as u64,
                session: sid(i as u8),
                body,
            };
            let name = match resp.body {
                ResponseBody::ResharePending(_) => "pending",
                _ => "status",
            };
            std::fs::write(dir.join(format!("response-reshare-{name}-{i}")), resp.encode()).unwrap();
            written += 1;
        }
        assert_eq!(written, 23);
    }

    fn reshare_bodies() -> (Vec<RequestBody>, Vec<ResponseBody>) {
        let info = KeyInfo {
            key: KeyId([9; 32]),
            algorithm: Algorithm::Ed25519,
            signer: SignerId::new(2).unwrap(),
            threshold: 2,
            parties: 3,
            public: vec![1, 2, 3],
        };
        let id = |i| SignerId::new(i).unwrap();
        let setup = ReshareSetup {
            key: KeyId([9; 32]),
            epoch: 4,
            run: sid(7),
            old: info.clone(),
            parties: vec![[1; 32], [2; 32], [3; 32], [4; 32]],
            dealers: vec![(id(1), id(1)), (id(2), id(3)), (id(3), id(2))],
            receivers: vec![id(4), id(2), id(1)],
            threshold: 2,
        };
        let key = KeyId([9; 32]);
        let requests = vec![
            RequestBody::ReshareStart(setup),
            RequestBody::ReshareRound {
                key,
                run: sid(7),
                round: 3,
                inbox: vec![vec![1, 2], vec![]],
            },
            RequestBody::ReshareStatus { key },
            RequestBody::ReshareCommit { key, epoch: 4 },
            RequestBody::ReshareAbort { key, epoch: 4 },
            RequestBody::ReshareRetire { key, epoch: 4 },
        ];
        let responses = vec![
            ResponseBody::ReshareStatus(ReshareState::default()),
            ResponseBody::ReshareStatus(ReshareState {
                active: Some((3, info.clone())),
                retired: None,
                pending: Some((4, info)),
            }),
            ResponseBody::ReshareStatus(ReshareState {
                active: None,
                retired: Some(2),
                pending: None,
            }),
            ResponseBody::ResharePending(ReshareClaim {
                key,
                epoch: 5,
                coordinator: Some([7; 32]),
                idle_ms: 1500,
                expires_in_ms: 298_500,
            }),
            ResponseBody::ResharePending(ReshareClaim {
                key,
                epoch: 6,
                coordinator: None,
                idle_ms: 0,
                expires_in_ms: 300_000,
            }),
        ];
        (requests, responses)
    }

    #[test]
    fn reshare_messages_round_trip_and_refuse_trailing_bytes() {
        let (requests, responses) = reshare_bodies();
        for body in requests {
            let req = Request {
                id: 3,
                session: sid(1),
                issued_at_ms: 9,
                body,
            };
            let bytes = req.encode();
            assert_eq!(Request::decode(&bytes).unwrap(), req);
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Request::decode(&longer).is_err());
            assert!(Request::decode(&bytes[..bytes.len() - 1]).is_err());
        }
        for body in responses {
            let resp = Response {
                id: 3,
                session: sid(1),
                body,
            };
            let bytes = resp.encode();
            assert_eq!(Response::decode(&bytes).unwrap(), resp);
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Response::decode(&longer).is_err());
        }
    }

    #[test]
    fn reshare_setup_with_a_new_holder_twice_or_a_party_out_of_range_is_refused() {
        let (requests, _) = reshare_bodies();
        let RequestBody::ReshareStart(setup) = &requests[0] else {
            panic!()
        };
        let mut twice = setup.clone();
        twice.receivers = vec![SignerId::new(1).unwrap(), SignerId::new(1).unwrap()];
        let mut out_of_range = setup.clone();
        out_of_range.receivers.push(SignerId::new(5).unwrap());
        let mut other_key = setup.clone();
        other_key.old.key = KeyId([8; 32]);
        for bad in [twice, out_of_range, other_key] {
            let req = Request {
                id: 1,
                session: sid(1),
                issued_at_ms: 1,
                body: RequestBody::ReshareStart(bad),
            };
            assert!(Request::decode(&req.encode()).is_err());
        }
    }

    #[test]
    fn every_request_and_response_round_trips() {
        for req in sample_requests() {
            assert_eq!(Request::decode(&req.encode()).unwrap(), req);
        }
        for resp in sample_responses() {
            assert_eq!(Response::decode(&resp.encode()).unwrap(), resp);
        }
    }

    #[test]
    fn request_encoding_is_pinned() {
        let req = Request {
            id: 0x0102,
            session: sid(0xaa),
            issued_at_ms: 0x0a0b,
            body: RequestBody::Sign {
                key: KeyId([0x11; 32]),
                mechanism: Mechanism::RsaPkcs1v15 {
                    hash: HashAlg::Sha1,
                    digest: vec![0x22; 20],
                },
            },
        };
        let expected = format!(
            "0180{}{}{}03{}0101{}{}",
            "0000000000000102",
            "aa".repeat(32),
            "0000000000000a0b",
            "11".repeat(32),
            "00000014",
            "22".repeat(20)
        );
        assert_eq!(hex::encode(req.encode()), expected);
    }

    #[test]
    fn sign_data_encoding_is_pinned() {
        let req = Request {
            id: 1,
            session: sid(0xaa),
            issued_at_ms: 2,
            body: RequestBody::SignData {
                key: KeyId([0x11; 32]),
                data: SignData {
                    mechanism: DataMechanism::Ecdsa {
                        hash: HashAlg::Sha256,
                    },
                    data: vec![0x22; 3],
                },
            },
        };
        let expected = format!(
            "0180{}{}{}46{}0403{}{}",
            "0000000000000001",
            "aa".repeat(32),
            "0000000000000002",
            "11".repeat(32),
            "00000003",
            "222222"
        );
        assert_eq!(hex::encode(req.encode()), expected);
    }

    #[test]
    fn unknown_data_mechanisms_and_oversized_data_are_refused() {
        let req = |mechanism: DataMechanism, data: Vec<u8>| Request {
            id: 1,
            session: sid(1),
            issued_at_ms: 2,
            body: RequestBody::SignData {
                key: KeyId([1; 32]),
                data: SignData { mechanism, data },
            },
        };
        let mut enc = req(DataMechanism::Ed25519, vec![1]).encode();
        let kind = 2 + 8 + 32 + 8 + 1 + 32;
        assert_eq!(enc[kind], 5);
        enc[kind] = 6;
        assert_eq!(
            Request::decode(&enc),
            Err(DecodeError::Invalid("unknown data mechanism"))
        );
        let big = req(DataMechanism::Ed25519, vec![0; MAX_MESSAGE_LEN + 1]).encode();
        assert!(matches!(Request::decode(&big), Err(DecodeError::TooLong(_))));
    }

    #[test]
    fn the_digest_form_of_data_is_its_hash_and_an_rrsig_names_its_own_hash() {
        let data = SignData {
            mechanism: DataMechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha384,
            },
            data: b"abc".to_vec(),
        };
        assert_eq!(
            data.digest_form().unwrap(),
            Mechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha384,
                digest: HashAlg::Sha384.digest(b"abc"),
            }
        );
        let rrsig = |algorithm: u8| {
            crate::node::policy::RrsigBuilder::new("example.com.", "www.example.com.", 1, algorithm)
                .unwrap()
                .signed(1000, 2000, 7)
                .rdata(&[192, 0, 2, 1])
                .build()
        };
        let form = |algorithm: u8| {
            SignData {
                mechanism: DataMechanism::DnssecRrsig,
                data: rrsig(algorithm),
            }
            .digest_form()
        };
        let d8 = rrsig(8);
        assert_eq!(
            form(8).unwrap(),
            Mechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha256,
                digest: HashAlg::Sha256.digest(&d8),
            }
        );
        assert!(matches!(
            form(10).unwrap(),
            Mechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha512,
                ..
            }
        ));
        assert!(matches!(form(13).unwrap(), Mechanism::Ecdsa { digest } if digest.len() == 32));
        assert!(matches!(form(15).unwrap(), Mechanism::Ed25519 { .. }));
        assert!(form(7).is_err());
        let garbage = SignData {
            mechanism: DataMechanism::DnssecRrsig,
            data: b"pay mallory".to_vec(),
        };
        assert!(garbage.digest_form().is_err());
    }

    #[test]
    fn trailing_bytes_unknown_version_and_unknown_kinds_are_rejected() {
        for req in sample_requests() {
            let mut enc = req.encode();
            enc.push(0);
            assert!(matches!(
                Request::decode(&enc),
                Err(DecodeError::TrailingBytes(1))
            ));
            let mut enc = req.encode();
            enc[0] = VERSION + 1;
            assert!(matches!(
                Request::decode(&enc),
                Err(DecodeError::UnknownVersion(_))
            ));
        }
        let mut enc = sample_requests()[0].encode();
        let kind = 2 + 8 + 32 + 8;
        enc[kind] = 0x7f;
        assert!(Request::decode(&enc).is_err());
        for resp in sample_responses() {
            let mut enc = resp.encode();
            enc.push(0);
            assert!(Response::decode(&enc).is_err());
        }
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error() {
        for req in sample_requests() {
            let enc = req.encode();
            for cut in 0..enc.len() {
                assert!(Request::decode(&enc[..cut]).is_err(), "cut at {cut}");
            }
        }
        for resp in sample_responses() {
            let enc = resp.encode();
            for cut in 0..enc.len() {
                assert!(Response::decode(&enc[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn digest_length_must_match_the_hash() {
        let req = Request {
            id: 1,
            session: sid(1),
            issued_at_ms: 1,
            body: RequestBody::Sign {
                key: KeyId([1; 32]),
                mechanism: Mechanism::RsaPkcs1v15 {
                    hash: HashAlg::Sha256,
                    digest: vec![0; 31],
                },
            },
        };
        assert_eq!(
            Request::decode(&req.encode()).unwrap_err(),
            DecodeError::Invalid("digest length does not match its hash")
        );
    }

    #[test]
    fn header_of_a_request_with_a_bad_body_is_still_readable() {
        let mut enc = sample_requests()[2].encode();
        enc.truncate(enc.len() - 3);
        assert!(Request::decode(&enc).is_err());
        assert_eq!(Request::decode_header(&enc), Some((3, sid(2))));
    }
}
