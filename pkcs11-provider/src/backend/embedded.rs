//! The embedded backend: an in-process threshold cluster for tests and the quickstart.
//!
//! `n` simulated nodes each keep their key shares in their own directory (`<dir>/node-<i>/`); a signature is
//! computed from `k` shares, one node after the other on the caller's thread (no thread is created), and
//! combined exactly as the networked coordinator does (optimistic combine, then blame). A node whose share is
//! missing or unreadable is skipped while `k` others answer. It is genuinely threshold (no file holds a whole
//! key; RSA keys come from the trusted dealer of `tcrypto::rsa`), but every share sits on this machine and
//! share files are not encrypted: it protects nothing against a compromise of this machine. Use the cluster
//! backend in production.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand_core::UnwrapErr;
use tcrypto::rsa::{self, MessageEncoding};
use tcrypto::{SessionId, SignerId};

use super::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
    UndeletedShare,
};
use crate::config::EmbeddedConfig;
use crate::error::{Error, Result};

/// First byte of a [`KeyRef`] of an RSA key; the rest is the `tcrypto` key id.
const TAG_RSA: u8 = 0x01;
/// First byte of a [`KeyRef`] of a P-256 key; the rest is the `tcrypto` key id.
const TAG_P256: u8 = 0x02;
/// First byte of a [`KeyRef`] of an Ed25519 key; the rest is the group public key.
const TAG_ED25519: u8 = 0x03;

/// The in-process threshold cluster.
#[derive(Debug)]
pub struct EmbeddedBackend {
    dir: PathBuf,
    threshold: u16,
    parties: u16,
    /// TEST ONLY: committed safe primes by bit length.
    test_primes: Option<BTreeMap<u32, Vec<Vec<u8>>>>,
}

/// The operating system's CSPRNG as a `rand_core` generator (a failure of the OS source panics, which the ABI
/// guard turns into `CKR_GENERAL_ERROR`).
fn os_rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

fn protocol(e: impl core::fmt::Display) -> BackendError {
    BackendError::Protocol(e.to_string())
}

impl EmbeddedBackend {
    /// Opens (creating the node directories if needed) the embedded cluster described by `cfg`.
    pub fn new(cfg: &EmbeddedConfig) -> Result<Self> {
        for d in (1..=cfg.parties)
            .map(|i| node_dir(&cfg.dir, i))
            .chain([cfg.dir.join("public")])
        {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::Config(format!("embedded node directory {}: {e}", d.display())))?;
        }
        let test_primes = cfg.rsa_test_primes.as_deref().map(load_primes).transpose()?;
        Ok(Self {
            dir: cfg.dir.clone(),
            threshold: cfg.threshold,
            parties: cfg.parties,
            test_primes,
        })
    }

    fn share_path(&self, node: u16, key: &KeyRef) -> PathBuf {
        node_dir(&self.dir, node).join(hex(&key.0))
    }

    fn public_path(&self, key: &KeyRef) -> PathBuf {
        self.dir.join("public").join(hex(&key.0))
    }

    fn rsa_generate(&self, bits: usize) -> Result<(PublicKey, KeyRef), BackendError> {
        let mut rng = os_rng();
        let (k, n) = (self.threshold, self.parties);
        let dealt = deal_rsa(bits, k, n, self.test_primes.as_ref(), &mut rng);
        let (public, shares) = dealt?;
        self.store_rsa(&public, shares)
    }

    fn store_rsa(
        &self,
        public: &rsa::PublicKeySet,
        shares: Vec<rsa::KeyShare>,
    ) -> Result<(PublicKey, KeyRef), BackendError> {
        let mut id = vec![TAG_RSA];
        id.extend_from_slice(public.key_id().as_bytes());
        let key = KeyRef(id);
        write_atomic(&self.public_path(&key), &public.encode())?;
        for s in shares {
            write_atomic(&self.share_path(s.id().get(), &key), &s.encode())?;
        }
        Ok((rsa_public(public), key))
    }

    fn rsa_sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        let msg = match request {
            SignRequest::RsaPkcs1 { hash, digest } => MessageEncoding::Pkcs1v15 {
                hash: *hash,
                digest: digest.clone(),
            },
            SignRequest::RsaPkcs1DigestInfo { digest_info } => MessageEncoding::Pkcs1v15DigestInfo {
                digest_info: digest_info.clone(),
            },
            SignRequest::RsaPss { hash, digest, salt } => MessageEncoding::Pss {
                hash: *hash,
                digest: digest.clone(),
                salt: salt.clone(),
            },
            _ => return Err(BackendError::Unsupported("mechanism does not fit an RSA key")),
        };
        let public = match std::fs::read(self.public_path(key)) {
            Ok(b) => rsa::PublicKeySet::decode(&b).map_err(protocol)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackendError::UnknownKey),
            Err(e) => return Err(e.into()),
        };
        let mut rng = os_rng();
        let session = SessionId::random(&mut rng);
        let mut shares = BTreeMap::new();
        for node in 1..=self.parties {
            if shares.len() == usize::from(self.threshold) {
                break;
            }
            // Each node: load its share, check it belongs to this key, sign its share with a proof.
            let answer = std::fs::read(self.share_path(node, key))
                .map_err(protocol)
                .and_then(|b| rsa::KeyShare::decode(&b).map_err(protocol))
                .and_then(|s| s.check_against(&public).map(|()| s).map_err(protocol))
                .and_then(|s| s.sign_share(&session, &msg, &mut rng).map_err(protocol));
            match (answer, SignerId::new(node)) {
                (Ok(share), Some(id)) => {
                    shares.insert(id, share);
                }
                (Err(e), _) => tracing::warn!(node, error = %e, "embedded node did not answer"),
                (_, None) => {}
            }
        }
        if shares.len() < usize::from(self.threshold) {
            return Err(BackendError::Cluster(format!(
                "only {} of the {} nodes needed answered",
                shares.len(),
                self.threshold
            )));
        }
        let combined = rsa::combine(&public, &session, &msg, &shares).map_err(protocol)?;
        if !combined.culprits.is_empty() {
            tracing::warn!(culprits = ?combined.culprits, "misbehaving nodes excluded");
        }
        Ok(combined.signature)
    }
}

impl EmbeddedBackend {
    /// ECDSA presigning needs `2t + 1 = 2k - 1` parties (honest majority).
    fn ecdsa_possible(&self) -> bool {
        self.threshold >= 2 && self.parties >= 2 * self.threshold - 1
    }

    /// Runs the distributed key generation of `tcrypto::dkg` among all `n` nodes, each node in turn; returns
    /// every node's share.
    fn run_dkg<C: tcrypto::dkg::Curve>(&self) -> Result<Vec<tcrypto::dkg::KeyShare<C>>, BackendError> {
        use tcrypto::dkg::{self, round1, round2, round3, round4};
        let mut rng = os_rng();
        let ids: Vec<SignerId> = (1..=self.parties).filter_map(SignerId::new).collect();
        let params = dkg::Parameters::new(SessionId::random(&mut rng), self.threshold, ids.iter().copied())
            .map_err(protocol)?;
        let mut st1 = BTreeMap::new();
        let mut b1 = BTreeMap::new();
        for &p in &ids {
            let (s, b) = round1::commit::<C>(params.clone(), p, &mut rng).map_err(protocol)?;
            st1.insert(p, s);
            b1.insert(p, b);
        }
        let mut st2 = BTreeMap::new();
        let mut b2 = BTreeMap::new();
        let mut shares2 = BTreeMap::new();
        for (p, s) in st1 {
            let (s, b, sh) = round2::reveal(s, &others(&b1, p)).map_err(protocol)?;
            st2.insert(p, s);
            b2.insert(p, b);
            shares2.insert(p, sh);
        }
        let mut st3 = BTreeMap::new();
        let mut b3 = BTreeMap::new();
        for (p, s) in st2 {
            let (s, b) = round3::verify(s, &others(&b2, p), directs_to(&mut shares2, p)).map_err(protocol)?;
            st3.insert(p, s);
            b3.insert(p, b);
        }
        let mut out = Vec::new();
        for (p, s) in st3 {
            out.push(round4::finish(s, &others(&b3, p)).map_err(protocol)?);
        }
        Ok(out)
    }

    /// P-256 key generation by the DKG; each share becomes a `tcrypto::ecdsa` key share.
    fn p256_generate(&self) -> Result<(PublicKey, KeyRef), BackendError> {
        let mut key = None;
        for share in self.run_dkg::<tcrypto::dkg::P256>()? {
            let p = share.id();
            let public = share.public();
            let ecdsa_share = tcrypto::ecdsa::KeyShare::new(
                share.id(),
                share.threshold(),
                public.parties(),
                *share.secret(),
                public.public_key(),
                public.public_shares().clone(),
            )
            .map_err(protocol)?;
            let k = key.get_or_insert_with(|| {
                let mut id = vec![TAG_P256];
                id.extend_from_slice(ecdsa_share.key_id().as_bytes());
                KeyRef(id)
            });
            write_atomic(&self.share_path(p.get(), k), &ecdsa_share.encode())?;
            if p.get() == 1 {
                let vk = ecdsa_share.verifying_key().map_err(protocol)?;
                write_atomic(&self.public_path(k), &vk.to_sec1_bytes())?;
            }
        }
        let key = key.ok_or(BackendError::Protocol("no party finished the DKG".into()))?;
        let point = self.p256_public(&key)?.to_sec1_point(false).as_bytes().to_vec();
        Ok((
            PublicKey::P256 {
                sec1_uncompressed: point,
            },
            key,
        ))
    }

    /// Ed25519 key generation by the DKG; each share becomes a FROST key share.
    fn ed25519_generate(&self) -> Result<(PublicKey, KeyRef), BackendError> {
        use tcrypto::ed25519;
        let mut key = None;
        let mut point = [0u8; 32];
        for share in self.run_dkg::<tcrypto::dkg::Ed25519>()? {
            let frost_share = ed25519::KeyShare::from_dkg(share).map_err(protocol)?;
            point = frost_share.public().public_key_bytes();
            let k = key.get_or_insert_with(|| {
                let mut id = vec![TAG_ED25519];
                id.extend_from_slice(&point);
                KeyRef(id)
            });
            write_atomic(&self.share_path(frost_share.id().get(), k), &frost_share.encode())?;
            write_atomic(&self.public_path(k), &frost_share.public().encode())?;
        }
        let key = key.ok_or(BackendError::Protocol("no party finished the DKG".into()))?;
        Ok((PublicKey::Ed25519 { point }, key))
    }

    /// FROST (RFC 9591): `k` nodes commit to nonces, each signs the package, the shares are aggregated (with
    /// blame on failure).
    fn ed25519_sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        use tcrypto::ed25519::{self, round1, round2};
        let SignRequest::Ed25519 { message } = request else {
            return Err(BackendError::Unsupported("mechanism does not fit an Ed25519 key"));
        };
        let public = match std::fs::read(self.public_path(key)) {
            Ok(b) => ed25519::PublicKeySet::decode(&b).map_err(protocol)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackendError::UnknownKey),
            Err(e) => return Err(e.into()),
        };
        let mut rng = os_rng();
        let session = SessionId::random(&mut rng);
        let mut signers = BTreeMap::new();
        for node in 1..=self.parties {
            if signers.len() == usize::from(self.threshold) {
                break;
            }
            let answer = std::fs::read(self.share_path(node, key))
                .map_err(protocol)
                .and_then(|b| ed25519::KeyShare::decode(&b).map_err(protocol))
                .and_then(|s| {
                    if s.public().public_key_bytes() == public.public_key_bytes() {
                        Ok(s)
                    } else {
                        Err(protocol("share of another key"))
                    }
                })
                .and_then(|s| {
                    round1::commit(&s, session, &mut rng)
                        .map(|c| (s, c))
                        .map_err(protocol)
                });
            match answer {
                Ok((s, (nonces, commitment))) => {
                    signers.insert(s.id(), (s, nonces, commitment));
                }
                Err(e) => tracing::warn!(node, error = %e, "embedded node did not answer"),
            }
        }
        if signers.len() < usize::from(self.threshold) {
            return Err(BackendError::Cluster(format!(
                "only {} of the {} nodes needed answered",
                signers.len(),
                self.threshold
            )));
        }
        let commitments = signers.iter().map(|(id, (_, _, c))| (*id, *c)).collect();
        let package =
            ed25519::SigningPackage::new(session, message.clone(), commitments).map_err(protocol)?;
        let mut shares = BTreeMap::new();
        for (id, (s, nonces, _)) in signers {
            shares.insert(id, round2::sign(&s, nonces, &package).map_err(protocol)?);
        }
        let signature = ed25519::aggregate(&public, &package, &shares).map_err(protocol)?;
        Ok(signature.to_bytes().to_vec())
    }

    fn p256_public(&self, key: &KeyRef) -> Result<p256::ecdsa::VerifyingKey, BackendError> {
        match std::fs::read(self.public_path(key)) {
            Ok(b) => p256::ecdsa::VerifyingKey::from_sec1_bytes(&b).map_err(protocol),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BackendError::UnknownKey),
            Err(e) => Err(e.into()),
        }
    }

    /// ECDSA: a fresh presignature by `2k - 1` nodes (three rounds, each node in turn), then one-round signing by
    /// `k` of them and the combine with blame. Presignatures are not stored, so none can be used twice.
    fn p256_sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        use tcrypto::ecdsa::{self, presign};
        let SignRequest::Ecdsa { prehash } = request else {
            return Err(BackendError::Unsupported("mechanism does not fit a P-256 key"));
        };
        let vk = self.p256_public(key)?;
        let needed = usize::from(2 * self.threshold - 1);
        let mut keys = BTreeMap::new();
        for node in 1..=self.parties {
            if keys.len() == needed {
                break;
            }
            let share = std::fs::read(self.share_path(node, key))
                .map_err(protocol)
                .and_then(|b| ecdsa::KeyShare::decode(&b).map_err(protocol))
                .and_then(|s| {
                    let ok = s.verifying_key().map_err(protocol)? == vk;
                    if ok {
                        Ok(s)
                    } else {
                        Err(protocol("share of another key"))
                    }
                });
            match share {
                Ok(s) => {
                    keys.insert(s.id(), s);
                }
                Err(e) => tracing::warn!(node, error = %e, "embedded node did not answer"),
            }
        }
        if keys.len() < needed {
            return Err(BackendError::Cluster(format!(
                "presigning needs {needed} nodes, only {} answered",
                keys.len()
            )));
        }
        let mut rng = os_rng();
        let params = presign::PresignParams {
            session: SessionId::random(&mut rng),
            parties: keys.keys().copied().collect(),
            batch: 1,
        };
        let mut s1 = BTreeMap::new();
        let mut b1 = BTreeMap::new();
        let mut d1 = BTreeMap::new();
        for (id, k) in &keys {
            let (st, b, d) = presign::round1(k, params.clone(), &mut rng).map_err(protocol)?;
            s1.insert(*id, st);
            b1.insert(*id, b);
            d1.insert(*id, d);
        }
        let mut s2 = BTreeMap::new();
        let mut b2 = BTreeMap::new();
        let mut d2 = BTreeMap::new();
        for (id, st) in s1 {
            let (st, b, d) = st
                .round2(&others(&b1, id), &directs_to(&mut d1, id), &mut rng)
                .map_err(protocol)?;
            s2.insert(id, st);
            b2.insert(id, b);
            d2.insert(id, d);
        }
        let mut s3 = BTreeMap::new();
        let mut b3 = BTreeMap::new();
        for (id, st) in s2 {
            let (st, b) = st
                .round3(&others(&b2, id), &directs_to(&mut d2, id), &mut rng)
                .map_err(protocol)?;
            s3.insert(id, st);
            b3.insert(id, b);
        }
        let mut presigs = BTreeMap::new();
        for (id, st) in s3 {
            match st.finish(&others(&b3, id), &mut rng).map_err(protocol)? {
                presign::Finished::Presignatures(out) => {
                    let p = out
                        .into_presignatures()
                        .into_iter()
                        .next()
                        .ok_or(protocol("empty presignature batch"))?;
                    presigs.insert(id, p);
                }
                presign::Finished::Blame(..) => {
                    return Err(BackendError::Cluster(
                        "presigning failed its checks; blame step needed".into(),
                    ));
                }
            }
        }
        let public = presigs
            .values()
            .next()
            .ok_or(protocol("no presignature"))?
            .public()
            .clone();
        let req = ecdsa::SignRequest {
            session: SessionId::random(&mut rng),
            presignature: public.id,
            digest: prehash.clone(),
        };
        let mut shares = BTreeMap::new();
        for (id, p) in presigs.into_iter().take(usize::from(self.threshold)) {
            let key_share = keys.get(&id).ok_or(protocol("presignature without key"))?;
            let mut spent = std::collections::BTreeSet::new();
            shares.insert(
                id,
                ecdsa::sign_share(key_share, p, &req, &mut spent).map_err(protocol)?,
            );
        }
        let combined = ecdsa::combine(&public, &vk, &req, &shares).map_err(protocol)?;
        if !combined.culprits.is_empty() {
            tracing::warn!(culprits = ?combined.culprits, "misbehaving nodes excluded");
        }
        Ok(combined.signature.to_bytes().to_vec())
    }
}

/// Everyone's broadcast except `me`'s.
fn others<M: Clone>(all: &BTreeMap<SignerId, M>, me: SignerId) -> BTreeMap<SignerId, M> {
    all.iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, m)| (*id, m.clone()))
        .collect()
}

/// The direct messages addressed to `me`, taken out of every sender's outbox.
fn directs_to<M>(
    outboxes: &mut BTreeMap<SignerId, BTreeMap<SignerId, M>>,
    me: SignerId,
) -> BTreeMap<SignerId, M> {
    outboxes
        .iter_mut()
        .filter_map(|(from, out)| out.remove(&me).map(|m| (*from, m)))
        .collect()
}

impl Backend for EmbeddedBackend {
    fn capabilities(&self) -> Capabilities {
        let rsa_bits = rsa_bits(self.test_primes.as_ref());
        Capabilities {
            rsa: rsa_bits.1 > 0,
            p256: self.ecdsa_possible(),
            ed25519: true,
            rsa_bits,
        }
    }

    fn generate(&self, kind: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        match kind {
            KeyKind::Rsa { bits } => self.rsa_generate(bits),
            KeyKind::P256 if self.ecdsa_possible() => self.p256_generate(),
            KeyKind::P256 => Err(BackendError::Unsupported(
                "threshold ECDSA needs parties >= 2 * threshold - 1",
            )),
            KeyKind::Ed25519 => self.ed25519_generate(),
        }
    }

    fn import(&self, key: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        use tcrypto::import::SplitKey;
        match key.split(self.threshold, self.parties)? {
            SplitKey::Rsa { public, shares } => self.store_rsa(&public, shares),
            SplitKey::P256 { shares, .. } => {
                let first = shares.first().ok_or(BackendError::Protocol("no shares".into()))?;
                let mut id = vec![TAG_P256];
                id.extend_from_slice(first.key_id().as_bytes());
                let key = KeyRef(id);
                let vk = first.verifying_key().map_err(protocol)?;
                for share in &shares {
                    write_atomic(&self.share_path(share.id().get(), &key), &share.encode())?;
                }
                write_atomic(&self.public_path(&key), &vk.to_sec1_bytes())?;
                let sec1_uncompressed = vk.to_sec1_point(false).as_bytes().to_vec();
                Ok((PublicKey::P256 { sec1_uncompressed }, key))
            }
            SplitKey::Ed25519 { public, shares } => {
                let point = public.public_key_bytes();
                let mut id = vec![TAG_ED25519];
                id.extend_from_slice(&point);
                let key = KeyRef(id);
                for share in &shares {
                    write_atomic(&self.share_path(share.id().get(), &key), &share.encode())?;
                }
                write_atomic(&self.public_path(&key), &public.encode())?;
                Ok((PublicKey::Ed25519 { point }, key))
            }
            _ => Err(BackendError::Unsupported("key kind")),
        }
    }

    fn sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        // The embedded signers have no policy: they sign the digest form.
        let request = request.digest_form();
        match key.0.first() {
            Some(&TAG_RSA) => self.rsa_sign(key, request),
            Some(&TAG_P256) => self.p256_sign(key, request),
            Some(&TAG_ED25519) => self.ed25519_sign(key, request),
            _ => Err(BackendError::UnknownKey),
        }
    }

    fn destroy(&self, key: &KeyRef) -> Result<Vec<UndeletedShare>, BackendError> {
        for path in (1..=self.parties)
            .map(|i| self.share_path(i, key))
            .chain([self.public_path(key)])
        {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Every share is a local file: none can be left behind on an unreachable node.
        Ok(Vec::new())
    }
}

/// Deals a fresh RSA key of `bits` bits into `n` shares with threshold `k`: from two distinct committed safe
/// primes of `test_primes` when given (TEST ONLY), else from newly generated safe primes.
pub(crate) fn deal_rsa(
    bits: usize,
    k: u16,
    n: u16,
    test_primes: Option<&BTreeMap<u32, Vec<Vec<u8>>>>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(rsa::PublicKeySet, Vec<rsa::KeyShare>), BackendError> {
    match test_primes {
        Some(by_size) => {
            let half = u32::try_from(bits / 2).map_err(|_| BackendError::KeySize)?;
            let primes = by_size
                .get(&half)
                .filter(|p| p.len() >= 2)
                .ok_or(BackendError::KeySize)?;
            let mut pick = [0u8; 2];
            getrandom::fill(&mut pick).map_err(|e| BackendError::Protocol(e.to_string()))?;
            let i = usize::from(pick[0]) % primes.len();
            let j = (i + 1 + usize::from(pick[1]) % (primes.len() - 1)) % primes.len();
            let p = rsa::SafePrime::from_be_bytes(&primes[i]).map_err(protocol)?;
            let q = rsa::SafePrime::from_be_bytes(&primes[j]).map_err(protocol)?;
            rsa::deal_with_primes(&p, &q, 65537, k, n, rng).map_err(protocol)
        }
        None => rsa::deal(bits, k, n, rng).map_err(protocol),
    }
}

/// The RSA sizes a backend can make: from the test primes when given, else 2048..=4096 bits.
pub(crate) fn rsa_bits(test_primes: Option<&BTreeMap<u32, Vec<Vec<u8>>>>) -> (usize, usize) {
    match test_primes {
        Some(by_size) => {
            let sizes: Vec<usize> = by_size
                .iter()
                .filter(|(_, v)| v.len() >= 2)
                .map(|(b, _)| *b as usize * 2)
                .collect();
            (
                sizes.first().copied().unwrap_or(0),
                sizes.last().copied().unwrap_or(0),
            )
        }
        None => (2048, 4096), // the dealer generates 2048 bits and more
    }
}

/// The public key as the module reports it.
pub(crate) fn rsa_public(public: &rsa::PublicKeySet) -> PublicKey {
    let e = public.public_exponent().to_be_bytes();
    let start = e.iter().position(|b| *b != 0).unwrap_or(e.len() - 1);
    PublicKey::Rsa {
        modulus: public.modulus_bytes(),
        public_exponent: e[start..].to_vec(),
    }
}

fn node_dir(dir: &Path, i: u16) -> PathBuf {
    dir.join(format!("node-{i}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a file so that readers see the old or the new content, never a torn one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Reads a file of hexadecimal safe primes, one per line (`#` comments), grouped by bit length.
pub(crate) fn load_primes(path: &Path) -> Result<BTreeMap<u32, Vec<Vec<u8>>>> {
    let bad = |m: String| Error::Config(format!("rsa_test_primes {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut out: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let digits = if line.len() % 2 == 1 {
            format!("0{line}")
        } else {
            line.to_string()
        };
        let bytes = (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
            .collect::<core::result::Result<Vec<u8>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let bits = crate::object::modulus_bits(&bytes) as u32;
        out.entry(bits).or_default().push(bytes);
    }
    Ok(out)
}
