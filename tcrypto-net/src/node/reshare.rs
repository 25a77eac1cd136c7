//! The node's side of a reshare (issue 14): the run of `tcrypto::reshare` (P-256, Ed25519) or
//! `tcrypto::rsa::reshare` (Shoup RSA) relayed through the coordinator, and the node's durable part of the
//! two-phase commit.
//!
//! **The run.** The coordinator names the nodes taking part by their identity keys (routing parties `1..`), which
//! of them deal (old holders, with their old signer ids) and which receive (new holders `1..=n'`). Every message
//! is a [`crate::transport::sealed::Envelope`]: dealings, verdicts, answers and confirmations are signed broadcasts,
//! sub-shares are sealed to their new holder. A node that is both dealer and new holder hands its own messages to
//! itself. Request round 1 ([`crate::transport::wire::RequestBody::ReshareStart`]) deals; rounds 2 to 5
//! ([`crate::transport::wire::RequestBody::ReshareRound`]) take the previous round's envelopes: 2 verdicts, 3 answers, 4
//! confirmations, 5 the new share, which is **stored pending** before the node answers.
//!
//! **The commit, on the nodes.** Each node keeps one sealed record per reshared key (`reshare-<key>`): the epoch
//! of the sharing it serves (0 before any reshare), whether its share was retired, and a pending share with its
//! epoch. The served share stays in its key file (`key-<key>`) until the commit:
//!
//! - a pending share is never served under the key's name; it answers only under its *pending id*
//!   ([`pending_id`]), which the coordinator uses for the test signature of the two-phase commit;
//! - [`crate::transport::wire::RequestBody::ReshareCommit`] first writes the record with `active epoch = pending epoch`
//!   (the node's durable decision), then replaces the key file, then drops the pending copy; a node restarted in
//!   between finishes the switch when it loads its records;
//! - [`crate::transport::wire::RequestBody::ReshareAbort`] deletes a pending share; [`crate::transport::wire::RequestBody::ReshareRetire`]
//!   records the retirement, then deletes the key file.
//!
//! A sharing of epoch `E` is **committed** once any node records `active epoch = E`; a coordinator that finds
//! pending shares of an epoch no node committed rolls them back, and one that finds a committed epoch commits its
//! pending holders and retires the holders of older epochs (`crate::coordinator::reshare`). So no state a reshare
//! needs lives only in a coordinator.
//!
//! **One reshare of a key at a time (`Claims`).** Two coordinators (two operators running `tcrypto-ctl reshare`)
//! must not reshare one key at once: both runs would pick the same new epoch and the nodes would hold pending
//! shares of two sharings under one epoch, and the second coordinator's settling step would roll back the first
//! one's pending shares under it. A node taking part in a run therefore **claims** the key for that run when the
//! run starts ([`crate::transport::wire::RequestBody::ReshareStart`]), in memory, with the run's epoch, the SPKI fingerprint
//! of the coordinator that started it (from its TLS certificate) and the time of the run's last step at this node.
//! While the claim is live the node refuses, with [`crate::transport::wire::ResponseBody::ResharePending`] (naming the key,
//! the epoch, the coordinator and when the claim expires):
//!
//! - a `ReshareStart` of any other run of the key (from any coordinator, the same one included);
//! - a `ReshareAbort` of the claimed epoch from another coordinator (what a second coordinator's settling step
//!   would send).
//!
//! Commits, retirements and status requests are never refused (rolling a committed epoch forward is what the
//! claimant wants too). The claim ends when its epoch is committed, aborted (by the claimant) or retired here, or
//! **expires** `Claims::DEFAULT_TTL` (2 minutes; `reshare_claim_secs` in the node configuration) after the
//! run's last step at this node (a live run steps every few seconds at most: rounds, the test signature, the
//! commits): a coordinator that died mid-run blocks the key for at most that long, after which any coordinator's
//! settle rolls its pending shares back. The same coordinator (say `tcrypto-ctl` run again after a crash) may
//! abort its own epoch at once: its settling step (`tcrypto-ctl settle`, or the next `reshare`) aborts every epoch
//! that left a pending share on every node; a run that died before any new holder stored its share leaves no trace
//! but the claims, and the key waits for them to expire. A claim lives in memory only, so a restarted node holds
//! none (what the run left on its disk is settled as before). Two processes sharing one coordinator identity are
//! one coordinator for the abort rule; a second `ReshareStart` is refused to them all the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};
use tcrypto::codec::{DecodeError, Reader, Writer};
use tcrypto::dkg::{self, Curve, Ed25519, Message as _, P256};
use tcrypto::reshare::{self as ec_reshare, Party};
use tcrypto::rsa::reshare as rsa_reshare;
use tcrypto::{KeyId, SessionId, SignerId, rsa};
use zeroize::Zeroizing;

use crate::algo::{EcdsaPublicKey, HeldShare, Refusal, ecdsa_bundles, ed25519_bundles};
use crate::node::ec::{Failure, Roster};
use crate::node::store::SecretStore;
use crate::transport::bundle::ShareBundle;
use crate::transport::identity::{NodeIdentity, NodePublic};
use crate::transport::wire::{
    Algorithm, ErrorCode, KeyInfo, ReshareClaim, ReshareSetup, ReshareState, TAG_RESHARE_RECORD,
};

/// Most reshare runs a node keeps open at once.
pub(crate) const MAX_RUNS: usize = 16;

/// Prefix of the store names of reshare records.
pub(crate) const RECORD_PREFIX: &str = "reshare-";

/// The id under which the pending share of `key` at `epoch` answers signing requests (the test signature of the
/// commit): SHA-256 of a label, the key and the epoch. It is never a key's name.
pub fn pending_id(key: &KeyId, epoch: u64) -> KeyId {
    let mut h = Sha256::new();
    h.update(b"tcrypto-net pending reshare v1");
    h.update(key.0);
    h.update(epoch.to_be_bytes());
    KeyId(h.finalize().into())
}

// ----- One reshare of a key at a time -----

/// The reshare runs this node takes part in, one per key (see the module documentation).
pub(crate) struct Claims {
    claims: Mutex<BTreeMap<KeyId, Claim>>,
    ttl_ms: std::sync::atomic::AtomicU64,
}

struct Claim {
    run: SessionId,
    epoch: u64,
    coordinator: Option<[u8; 32]>,
    last_ms: u64,
}

impl Default for Claims {
    fn default() -> Self {
        Self {
            claims: Mutex::new(BTreeMap::new()),
            ttl_ms: std::sync::atomic::AtomicU64::new(Self::DEFAULT_TTL.as_millis() as u64),
        }
    }
}

impl Claims {
    /// How long a claim outlives the last step of its run at this node.
    pub(crate) const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(120);

    /// Sets the expiry of claims.
    pub(crate) fn set_ttl(&self, ttl: std::time::Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.ttl_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn ttl(&self) -> u64 {
        self.ttl_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn describe(&self, key: KeyId, c: &Claim, now_ms: u64) -> ReshareClaim {
        let idle = now_ms.saturating_sub(c.last_ms);
        ReshareClaim {
            key,
            epoch: c.epoch,
            coordinator: c.coordinator,
            idle_ms: idle,
            expires_in_ms: self.ttl().saturating_sub(idle),
        }
    }

    fn live<'a>(&self, map: &'a BTreeMap<KeyId, Claim>, key: &KeyId, now_ms: u64) -> Option<&'a Claim> {
        map.get(key)
            .filter(|c| now_ms.saturating_sub(c.last_ms) < self.ttl())
    }

    /// Claims `key` for `run` (a `ReshareStart`), unless another run holds a live claim.
    pub(crate) fn claim(
        &self,
        setup: &ReshareSetup,
        coordinator: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<(), ReshareClaim> {
        let Ok(mut map) = self.claims.lock() else {
            return Ok(());
        };
        if let Some(c) = self.live(&map, &setup.key, now_ms)
            && c.run != setup.run
        {
            return Err(self.describe(setup.key, c, now_ms));
        }
        map.insert(
            setup.key,
            Claim {
                run: setup.run,
                epoch: setup.epoch,
                coordinator,
                last_ms: now_ms,
            },
        );
        Ok(())
    }

    /// A step of `run` of `key` (a `ReshareRound`, the test signature): the claim lives on.
    pub(crate) fn touch(&self, key: &KeyId, run: &SessionId, now_ms: u64) {
        if let Ok(mut map) = self.claims.lock()
            && let Some(c) = map.get_mut(key)
            && c.run == *run
        {
            c.last_ms = now_ms;
        }
    }

    /// Whether `coordinator` may abort `epoch` of `key`: refused while another coordinator's live claim is on
    /// that epoch. An accepted abort of the claimed epoch ends the claim.
    pub(crate) fn abort(
        &self,
        key: &KeyId,
        epoch: u64,
        coordinator: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<(), ReshareClaim> {
        let Ok(mut map) = self.claims.lock() else {
            return Ok(());
        };
        if let Some(c) = self.live(&map, key, now_ms)
            && c.epoch == epoch
            && c.coordinator != coordinator
        {
            return Err(self.describe(*key, c, now_ms));
        }
        if map.get(key).is_some_and(|c| c.epoch == epoch) {
            map.remove(key);
        }
        Ok(())
    }

    /// `epoch` of `key` was committed or retired here: a claim on it (or on an older epoch) ends.
    pub(crate) fn end(&self, key: &KeyId, epoch: u64) {
        if let Ok(mut map) = self.claims.lock()
            && map.get(key).is_some_and(|c| c.epoch <= epoch)
        {
            map.remove(key);
        }
    }
}

// ----- The durable record -----

/// A node's reshare record of one key.
pub(crate) struct Record {
    /// Epoch of the served sharing (or of the retirement).
    pub(crate) active_epoch: u64,
    /// The node's share was retired at `active_epoch`.
    pub(crate) retired: bool,
    /// A new share and its epoch. When its epoch equals `active_epoch`, the commit was decided and the key file
    /// may still hold the old share (the switch is finished on load).
    pub(crate) pending: Option<(u64, ShareBundle)>,
}

impl Record {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(TAG_RESHARE_RECORD);
        w.u64(self.active_epoch).u8(u8::from(self.retired));
        match &self.pending {
            None => {
                w.u8(0);
            }
            Some((epoch, bundle)) => {
                w.u8(1).u64(*epoch).bytes(&bundle.encode());
            }
        }
        Zeroizing::new(w.finish())
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, TAG_RESHARE_RECORD)?;
        let active_epoch = r.u64()?;
        let retired = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Invalid("bad flag")),
        };
        let pending = match r.u8()? {
            0 => None,
            1 => Some((r.u64()?, ShareBundle::decode(r.bytes()?)?)),
            _ => return Err(DecodeError::Invalid("bad flag")),
        };
        r.finish()?;
        Ok(Self {
            active_epoch,
            retired,
            pending,
        })
    }
}

/// Decodes a stored reshare record strictly and encodes it again (the `net_messages` fuzz target checks that
/// whatever decodes re-encodes to the same bytes).
#[doc(hidden)]
pub fn record_round_trip(bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    Record::decode(bytes).map(|r| r.encode())
}

/// The reshare records of a node, mirrored in memory.
#[derive(Default)]
pub(crate) struct Records {
    records: Mutex<BTreeMap<KeyId, Record>>,
}

fn record_name(key: &KeyId) -> String {
    format!("{RECORD_PREFIX}{key}")
}

fn storage(e: impl std::fmt::Display) -> Refusal {
    (ErrorCode::Storage, e.to_string())
}

/// What loading found: keys whose commit must be finished (the key file gets the pending share), damage.
pub(crate) struct Loaded {
    pub(crate) finish: Vec<(KeyId, ShareBundle)>,
    pub(crate) retired: Vec<KeyId>,
    pub(crate) damaged: Vec<String>,
}

impl Records {
    /// Loads every record of `store`; a record that does not open or decode is quarantined (its key keeps the
    /// share in its key file, and a pending share is lost: the coordinator rolls that reshare back).
    pub(crate) fn load(&self, store: &SecretStore) -> Loaded {
        let mut out = Loaded {
            finish: Vec::new(),
            retired: Vec::new(),
            damaged: Vec::new(),
        };
        let mut map = BTreeMap::new();
        for name in store.list().unwrap_or_default() {
            let Some(hex) = name.strip_prefix(RECORD_PREFIX) else {
                continue;
            };
            let opened = store
                .get(&name)
                .map_err(|e| e.to_string())
                .and_then(|b| b.ok_or_else(|| "vanished".to_string()))
                .and_then(|b| Record::decode(&b).map_err(|e| e.to_string()))
                .and_then(|r| {
                    hex::decode(hex)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .map(|k| (KeyId(k), r))
                        .ok_or_else(|| "bad name".to_string())
                });
            match opened {
                Ok((key, record)) => {
                    if let Some((epoch, bundle)) = &record.pending
                        && *epoch == record.active_epoch
                    {
                        out.finish.push((key, copy(bundle)));
                    }
                    if record.retired {
                        out.retired.push(key);
                    }
                    map.insert(key, record);
                }
                Err(why) => {
                    let path = store.path_of(&name);
                    let _ = store.quarantine(&name);
                    out.damaged.push(format!("{}: {why}", path.display()));
                }
            }
        }
        if let Ok(mut r) = self.records.lock() {
            *r = map;
        }
        out
    }

    fn put(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        record: Record,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        if let Some(store) = store {
            store
                .put(&record_name(&key), &record.encode(), rng)
                .map_err(storage)?;
        }
        if let Ok(mut r) = self.records.lock() {
            r.insert(key, record);
        }
        Ok(())
    }

    /// The epoch of the served sharing of `key` (0 when never reshared) and the retirement flag.
    pub(crate) fn active(&self, key: &KeyId) -> (u64, bool) {
        self.records
            .lock()
            .ok()
            .and_then(|r| r.get(key).map(|r| (r.active_epoch, r.retired)))
            .unwrap_or((0, false))
    }

    /// The pending share of `key` (epoch, copy), when one waits for its commit.
    pub(crate) fn pending(&self, key: &KeyId) -> Option<(u64, ShareBundle)> {
        let r = self.records.lock().ok()?;
        let rec = r.get(key)?;
        rec.pending
            .as_ref()
            .filter(|(e, _)| *e > rec.active_epoch)
            .map(|(e, b)| (*e, copy(b)))
    }

    /// Every pending share (by pending id), for the test signature.
    pub(crate) fn pending_by_id(&self, id: &KeyId) -> Option<ShareBundle> {
        let r = self.records.lock().ok()?;
        r.iter().find_map(|(key, rec)| {
            rec.pending
                .as_ref()
                .filter(|(e, _)| *e > rec.active_epoch && pending_id(key, *e) == *id)
                .map(|(_, b)| copy(b))
        })
    }

    /// The key that pending id `id` stands for (a pending sharing's, or one committed under it), if any: a
    /// request under a pending id is judged by the signing policy of the key it names.
    pub(crate) fn name_of(&self, id: &KeyId) -> Option<KeyId> {
        let r = self.records.lock().ok()?;
        r.iter()
            .find(|(key, rec)| {
                rec.pending
                    .as_ref()
                    .is_some_and(|(e, _)| pending_id(key, *e) == *id)
                    || (rec.active_epoch > 0 && pending_id(key, rec.active_epoch) == *id)
            })
            .map(|(key, _)| *key)
    }

    /// The key whose served sharing was committed under the pending id `id` (signing runs of the commit's test
    /// signature still in flight when the commit lands finish with the served share, the same sharing).
    pub(crate) fn committed_alias(&self, id: &KeyId) -> Option<KeyId> {
        let r = self.records.lock().ok()?;
        r.iter()
            .find(|(key, rec)| {
                !rec.retired && rec.active_epoch > 0 && pending_id(key, rec.active_epoch) == *id
            })
            .map(|(key, _)| *key)
    }

    /// Stores a new share of `key` as pending at `epoch`. Refused when the epoch is not above the served one.
    pub(crate) fn hold_pending(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        epoch: u64,
        bundle: ShareBundle,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        let (active_epoch, retired) = self.active(&key);
        if epoch <= active_epoch {
            return Err((
                ErrorCode::Malformed,
                format!("reshare epoch {epoch} of key {key} is not above the served epoch {active_epoch}"),
            ));
        }
        self.put(
            store,
            key,
            Record {
                active_epoch,
                retired,
                pending: Some((epoch, bundle)),
            },
            rng,
        )
    }

    /// Step 1 of a commit: the durable decision (`active epoch = epoch`, the new share kept beside it). Returns
    /// the new share to install in the key file, or `None` when `epoch` is already the served one.
    pub(crate) fn decide(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        epoch: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<ShareBundle>, Refusal> {
        let (active_epoch, _) = self.active(&key);
        let pending = self.records.lock().ok().and_then(|r| {
            r.get(&key)
                .and_then(|rec| rec.pending.as_ref().map(|(e, b)| (*e, copy(b))))
        });
        match pending {
            Some((e, bundle)) if e == epoch => {
                if active_epoch != epoch {
                    self.put(
                        store,
                        key,
                        Record {
                            active_epoch: epoch,
                            retired: false,
                            pending: Some((epoch, copy(&bundle))),
                        },
                        rng,
                    )?;
                }
                Ok(Some(bundle))
            }
            _ if active_epoch == epoch => Ok(None),
            _ => Err((
                ErrorCode::UnknownKey,
                format!("no pending share of key {key} at epoch {epoch} (rolled back?)"),
            )),
        }
    }

    /// Step 3 of a commit: the key file holds the new share; the pending copy goes.
    pub(crate) fn installed(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        epoch: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        self.put(
            store,
            key,
            Record {
                active_epoch: epoch,
                retired: false,
                pending: None,
            },
            rng,
        )
    }

    /// Rolls back the pending share of `epoch` (idempotent; a pending share of another epoch stays).
    pub(crate) fn abort(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        epoch: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        let (active_epoch, retired) = self.active(&key);
        if self.pending(&key).is_some_and(|(e, _)| e == epoch) {
            self.put(
                store,
                key,
                Record {
                    active_epoch,
                    retired,
                    pending: None,
                },
                rng,
            )?;
        }
        Ok(())
    }

    /// Records that the node's share of `key` is retired by the committed `epoch` (before the key file goes).
    pub(crate) fn retire(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        epoch: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(), Refusal> {
        let (active_epoch, retired) = self.active(&key);
        if retired && active_epoch >= epoch {
            return Ok(());
        }
        if active_epoch >= epoch {
            return Err((
                ErrorCode::Malformed,
                format!("key {key} is served at epoch {active_epoch}; epoch {epoch} does not retire it"),
            ));
        }
        self.put(
            store,
            key,
            Record {
                active_epoch: epoch,
                retired: true,
                pending: None,
            },
            rng,
        )
    }

    /// The node's answer to a status request.
    pub(crate) fn state(&self, key: &KeyId, served: Option<KeyInfo>) -> ReshareState {
        let (active_epoch, retired) = self.active(key);
        ReshareState {
            active: served.map(|i| (active_epoch, i)),
            retired: retired.then_some(active_epoch),
            pending: self.pending(key).map(|(e, b)| (e, b.info)),
        }
    }

    /// Forgets everything about `key` (the key was deleted).
    pub(crate) fn forget(&self, store: Option<&SecretStore>, key: &KeyId) {
        let had = self.records.lock().ok().and_then(|mut r| r.remove(key)).is_some();
        if let (true, Some(store)) = (had, store) {
            let _ = store.delete(&record_name(key));
        }
    }
}

fn copy(b: &ShareBundle) -> ShareBundle {
    ShareBundle {
        info: b.info.clone(),
        share: b.share.clone(),
    }
}

// ----- The run -----

/// One reshare run at this node: its roles and the state of each.
pub(crate) struct Run {
    setup: ReshareSetup,
    roster: Roster,
    /// Routing party -> old signer id of every dealer.
    dealers: BTreeMap<SignerId, SignerId>,
    /// Routing party -> new signer id of every new holder.
    receivers: BTreeMap<SignerId, SignerId>,
    scheme: AnyRun,
    next_round: u8,
}

enum AnyRun {
    Rsa(Box<Roles<RsaScheme>>),
    P256(Box<Roles<EcScheme<P256>>>),
    Ed25519(Box<Roles<EcScheme<Ed25519>>>),
}

/// What a step yields.
pub(crate) enum Step {
    /// Envelopes to relay; the run goes on.
    Continue(Box<Run>, Vec<Vec<u8>>),
    /// A new holder's new share, to be stored pending (key, epoch, bundle), the routing parties the run
    /// named as culprits (dealers excluded from the new sharing, false accusers), and the routing parties of the
    /// dealers left out of the new sharing (not in `Q`).
    Pending(KeyId, u64, ShareBundle, Vec<SignerId>, Vec<SignerId>),
    /// A dealer-only node is done.
    Done,
}

/// Starts a run (request round 1). `held` is this node's served share of the key, when it has one.
pub(crate) fn start(
    setup: ReshareSetup,
    held: Option<(&KeyInfo, &HeldShare)>,
    own: &NodeIdentity,
    peers: &[NodePublic],
    rng: &mut impl CryptoRng,
) -> Result<(Run, Vec<Vec<u8>>), Failure> {
    let own_key = own.signing.verifying_key().to_bytes();
    let me = setup
        .parties
        .iter()
        .position(|p| *p == own_key)
        .and_then(|i| u16::try_from(i + 1).ok())
        .and_then(SignerId::new)
        .ok_or_else(|| {
            Failure::refused(
                ErrorCode::Malformed,
                "this node does not take part in the reshare",
            )
        })?;
    let roster = Roster::resolve(&setup.parties, me, own, peers)?;
    let dealers: BTreeMap<SignerId, SignerId> = setup.dealers.iter().copied().collect();
    let receivers: BTreeMap<SignerId, SignerId> = setup
        .receivers
        .iter()
        .enumerate()
        .filter_map(|(j, p)| Some((*p, SignerId::new(u16::try_from(j + 1).ok()?)?)))
        .collect();
    let old_id = dealers.get(&me).copied();
    let new_id = receivers.get(&me).copied();
    if old_id.is_none() && new_id.is_none() {
        return Err(Failure::refused(
            ErrorCode::Malformed,
            "this node neither deals nor receives",
        ));
    }
    let refused = |d: String| Failure::refused(ErrorCode::Malformed, d);
    let dealing_share = match old_id {
        None => None,
        Some(old_id) => {
            let (info, share) = held.ok_or_else(|| {
                Failure::refused(
                    ErrorCode::UnknownKey,
                    format!("no share of key {} to deal", setup.key),
                )
            })?;
            if info.signer != old_id
                || info.public != setup.old.public
                || info.algorithm != setup.old.algorithm
            {
                return Err(refused(format!(
                    "the run's old sharing of key {} is not the one this node serves",
                    setup.key
                )));
            }
            Some(share)
        }
    };
    let old_ids: Vec<SignerId> = setup.dealers.iter().map(|(_, o)| *o).collect();
    let n_new = u16::try_from(setup.receivers.len()).map_err(|_| refused("too many new holders".into()))?;
    let session = setup.run;
    let (scheme, out) = match setup.old.algorithm {
        Algorithm::Rsa => {
            let old = rsa::PublicKeySet::decode(&setup.old.public).map_err(|e| refused(e.to_string()))?;
            let params = rsa_reshare::Parameters::new(
                session,
                old,
                old_ids,
                setup.threshold,
                n_new,
                rsa_reshare::MIN_KAPPA,
            )
            .map_err(|e| refused(e.to_string()))?;
            let (roles, out) = Roles::<RsaScheme>::start(params, old_id, new_id, dealing_share, rng)?;
            (AnyRun::Rsa(Box::new(roles)), out)
        }
        Algorithm::EcdsaP256 => {
            let pk = EcdsaPublicKey::decode(&setup.old.public).map_err(refused)?;
            let params = ec_params(session, pk.set, old_ids, &setup)?;
            let (roles, out) = Roles::<EcScheme<P256>>::start(params, old_id, new_id, dealing_share, rng)?;
            (AnyRun::P256(Box::new(roles)), out)
        }
        Algorithm::Ed25519 => {
            let pk = tcrypto::ed25519::PublicKeySet::decode(&setup.old.public)
                .map_err(|e| refused(e.to_string()))?;
            let params = ec_params(session, pk.as_dkg().clone(), old_ids, &setup)?;
            let (roles, out) = Roles::<EcScheme<Ed25519>>::start(params, old_id, new_id, dealing_share, rng)?;
            (AnyRun::Ed25519(Box::new(roles)), out)
        }
    };
    let run = Run {
        setup,
        roster,
        dealers,
        receivers,
        scheme,
        next_round: 2,
    };
    let out = run.envelopes(1, out, own, rng)?;
    Ok((run, out))
}

fn ec_params<C: Curve>(
    session: SessionId,
    old: dkg::PublicKeySet<C>,
    old_ids: Vec<SignerId>,
    setup: &ReshareSetup,
) -> Result<ec_reshare::Parameters<C>, Failure> {
    let receivers = (1..=setup.receivers.len()).filter_map(|j| SignerId::new(u16::try_from(j).ok()?));
    ec_reshare::Parameters::new(session, old, old_ids, setup.threshold, receivers)
        .map_err(|e| Failure::refused(ErrorCode::Malformed, e.to_string()))
}

/// Messages a role sends in one round: broadcast bytes and point-to-point bytes by new holder id.
#[derive(Default)]
struct Out {
    broadcast: Option<Vec<u8>>,
    /// A second, different broadcast of the same round: only a test-only equivocating node sends one.
    second_broadcast: Option<Vec<u8>>,
    direct: BTreeMap<SignerId, Zeroizing<Vec<u8>>>,
}

impl Run {
    /// The key.
    pub(crate) fn key(&self) -> KeyId {
        self.setup.key
    }

    fn envelopes(
        &self,
        round: u8,
        out: Out,
        own: &NodeIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Vec<u8>>, Failure> {
        let mut envs = Vec::new();
        for b in out.broadcast.iter().chain(&out.second_broadcast) {
            envs.push(self.roster.broadcast(own, self.setup.run, round, b)?);
        }
        for (j, bytes) in out.direct {
            let Some((party, _)) = self.receivers.iter().find(|(_, id)| **id == j) else {
                continue;
            };
            if *party == self.roster.me {
                continue;
            }
            envs.push(
                self.roster
                    .seal(own, self.setup.run, round, *party, &bytes, rng)?,
            );
        }
        Ok(envs)
    }

    /// Advances the run with request round `round` and the relayed envelopes of the previous round.
    pub(crate) fn advance(
        mut self,
        round: u8,
        inbox: &[Vec<u8>],
        own: &NodeIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<Step, Failure> {
        if round != self.next_round {
            return Err(Failure::refused(
                ErrorCode::Malformed,
                format!("reshare round {round} out of turn (expected {})", self.next_round),
            ));
        }
        self.next_round += 1;
        let senders: BTreeSet<SignerId> = match round {
            2 | 4 => self.dealers.keys().copied().collect(),
            _ => self.receivers.keys().copied().collect(),
        };
        let opened = self
            .roster
            .open(own, self.setup.run, round - 1, &senders, inbox)?;
        let ids = Ids {
            dealers: &self.dealers,
            receivers: &self.receivers,
        };
        let result = match &mut self.scheme {
            AnyRun::Rsa(r) => r.advance(round, &opened, &ids)?,
            AnyRun::P256(r) => r.advance(round, &opened, &ids)?,
            AnyRun::Ed25519(r) => r.advance(round, &opened, &ids)?,
        };
        match result {
            Advanced::Out(out) => {
                let envs = self.envelopes(round, out, own, rng)?;
                if round == 5 {
                    return Ok(Step::Done);
                }
                Ok(Step::Continue(Box::new(self), envs))
            }
            Advanced::Share(mut bundle, culprits, qualified) => {
                bundle.info.key = self.setup.key;
                let parties = ids.parties(&culprits);
                let disqualified = self
                    .dealers
                    .iter()
                    .filter(|(_, old)| !qualified.contains(old))
                    .map(|(p, _)| *p)
                    .collect();
                Ok(Step::Pending(
                    self.setup.key,
                    self.setup.epoch,
                    bundle,
                    parties,
                    disqualified,
                ))
            }
        }
    }
}

struct Ids<'a> {
    dealers: &'a BTreeMap<SignerId, SignerId>,
    receivers: &'a BTreeMap<SignerId, SignerId>,
}

impl Ids<'_> {
    /// Re-keys messages from routing parties by the parties' ids in `map`.
    fn by(
        map: &BTreeMap<SignerId, SignerId>,
        msgs: &BTreeMap<SignerId, Vec<u8>>,
    ) -> BTreeMap<SignerId, Vec<u8>> {
        msgs.iter()
            .filter_map(|(p, m)| map.get(p).map(|id| (*id, m.clone())))
            .collect()
    }

    /// The routing parties of `culprits` (old or new holders), each once.
    fn parties(&self, culprits: &[Party]) -> Vec<SignerId> {
        let parties: BTreeSet<SignerId> = culprits
            .iter()
            .filter_map(|c| {
                let (map, id) = match *c {
                    Party::Old(i) => (self.dealers, i),
                    Party::New(j) => (self.receivers, j),
                };
                map.iter().find(|(_, v)| **v == id).map(|(p, _)| *p)
            })
            .collect();
        parties.into_iter().collect()
    }

    /// The routing parties a reshare error blames.
    fn blame(&self, e: &ec_reshare::Error) -> Failure {
        Failure::Aborted(self.parties(&e.culprits()), e.to_string())
    }
}

enum Advanced {
    Out(Out),
    /// The new share, the parties the run named and `Q` (the old ids of the qualified dealers).
    Share(ShareBundle, Vec<Party>, BTreeSet<SignerId>),
}

/// A new holder's end of a run: the new share, the parties named, `Q` (old ids).
type Confirmed = (ShareBundle, Vec<Party>, BTreeSet<SignerId>);

/// One algorithm's reshare steps over encoded messages.
trait Scheme {
    /// The key algorithm.
    const ALGORITHM: Algorithm;
    type Params: Clone;
    type Dealer;
    type Receiver;
    type Judged;
    #[allow(clippy::type_complexity)]
    fn deal(
        params: Self::Params,
        share: &HeldShare,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self::Dealer, Vec<u8>, BTreeMap<SignerId, Zeroizing<Vec<u8>>>), ec_reshare::Error>;
    fn receive(
        params: Self::Params,
        me: SignerId,
        dealings: &BTreeMap<SignerId, Vec<u8>>,
        subs: &BTreeMap<SignerId, Zeroizing<Vec<u8>>>,
    ) -> Result<(Self::Receiver, Vec<u8>), ec_reshare::Error>;
    fn answer(
        dealer: Self::Dealer,
        verdicts: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Vec<u8>, ec_reshare::Error>;
    fn judge(
        receiver: Self::Receiver,
        verdicts: &BTreeMap<SignerId, Vec<u8>>,
        answers: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<(Self::Judged, Vec<u8>), ec_reshare::Error>;
    /// The new share, the parties the run named (excluded dealers, false accusers) and the qualified dealers.
    fn confirm(
        judged: Self::Judged,
        confirmations: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Confirmed, ec_reshare::Error>;
}

/// A test-only misbehaving node rewrites (or, `None`, withholds) its own reshare message before it is sealed or
/// signed (`crate::node::misbehave`, modes `reshare-*`).
#[cfg(feature = "test-support")]
fn tamper(what: Tampered, algorithm: Algorithm, message: Vec<u8>) -> Option<Vec<u8>> {
    crate::node::misbehave::reshare(what, algorithm, message)
}

#[cfg(not(feature = "test-support"))]
fn tamper(_what: Tampered, _algorithm: Algorithm, message: Vec<u8>) -> Option<Vec<u8>> {
    Some(message)
}

/// Whether a test-only misbehaving node deals twice, one dealing kept and another broadcast.
#[cfg(feature = "test-support")]
fn equivocates() -> bool {
    crate::node::misbehave::reshare_equivocates()
}

#[cfg(not(feature = "test-support"))]
fn equivocates() -> bool {
    false
}

#[cfg(feature = "test-support")]
use crate::node::misbehave::ReshareMessage as Tampered;

/// What a misbehaving node may rewrite (nothing in a build without `test-support`).
#[cfg(not(feature = "test-support"))]
#[derive(Clone, Copy)]
enum Tampered {
    Dealing,
    SubShare,
    Answer,
}

/// The state of each role a node plays in one run.
struct Roles<S: Scheme> {
    params: S::Params,
    old_id: Option<SignerId>,
    new_id: Option<SignerId>,
    dealer: Option<S::Dealer>,
    /// Our own dealing and sub-share, when we deal to ourselves.
    own_dealing: Option<(SignerId, Vec<u8>, Zeroizing<Vec<u8>>)>,
    receiver: Option<S::Receiver>,
    own_verdict: Option<Vec<u8>>,
    verdicts: BTreeMap<SignerId, Vec<u8>>,
    own_answer: Option<(SignerId, Vec<u8>)>,
    judged: Option<S::Judged>,
}

impl<S: Scheme> Roles<S> {
    fn start(
        params: S::Params,
        old_id: Option<SignerId>,
        new_id: Option<SignerId>,
        share: Option<&HeldShare>,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Out), Failure> {
        let mut roles = Self {
            params: params.clone(),
            old_id,
            new_id,
            dealer: None,
            own_dealing: None,
            receiver: None,
            own_verdict: None,
            verdicts: BTreeMap::new(),
            own_answer: None,
            judged: None,
        };
        let mut out = Out::default();
        if let (Some(old_id), Some(share)) = (old_id, share) {
            let refused = |e: ec_reshare::Error| Failure::refused(ErrorCode::Malformed, e.to_string());
            let (dealer, dealing, mut subs) = S::deal(params.clone(), share, rng).map_err(refused)?;
            let dealing = tamper(Tampered::Dealing, S::ALGORITHM, dealing);
            if let Some(j) = new_id
                && let Some(own) = subs.remove(&j)
                && let Some(dealing) = &dealing
            {
                roles.own_dealing = Some((old_id, dealing.clone(), own));
            }
            // A test-only equivocating node keeps the dealing above and deals another to everyone else; one that
            // does not receive signs two dealings and broadcasts both (the relay catches it).
            let (dealer, dealing, subs) = if equivocates() && roles.own_dealing.is_some() {
                let (dealer, other, mut subs) = S::deal(params, share, rng).map_err(refused)?;
                if let Some(j) = new_id {
                    subs.remove(&j);
                }
                (dealer, Some(other), subs)
            } else {
                if equivocates() {
                    let (_, other, _) = S::deal(params, share, rng).map_err(refused)?;
                    out.second_broadcast = Some(other);
                }
                (dealer, dealing, subs)
            };
            let subs = subs
                .into_iter()
                .filter_map(|(j, b)| {
                    let b = tamper(Tampered::SubShare, S::ALGORITHM, b.to_vec())?;
                    Some((j, Zeroizing::new(b)))
                })
                .collect();
            roles.dealer = Some(dealer);
            out.broadcast = dealing;
            out.direct = subs;
        }
        Ok((roles, out))
    }

    fn advance(
        &mut self,
        round: u8,
        inbox: &crate::node::ec::Inbox,
        ids: &Ids<'_>,
    ) -> Result<Advanced, Failure> {
        let mut out = Out::default();
        match round {
            2 => {
                if let Some(me) = self.new_id {
                    let mut dealings = Ids::by(ids.dealers, &inbox.broadcasts);
                    let mut subs: BTreeMap<SignerId, Zeroizing<Vec<u8>>> =
                        Ids::by(ids.dealers, &inbox.direct)
                            .into_iter()
                            .map(|(i, b)| (i, Zeroizing::new(b)))
                            .collect();
                    if let Some((i, d, s)) = self.own_dealing.take() {
                        dealings.insert(i, d);
                        subs.insert(i, s);
                    }
                    let (receiver, verdict) =
                        S::receive(self.params.clone(), me, &dealings, &subs).map_err(|e| ids.blame(&e))?;
                    self.receiver = Some(receiver);
                    self.own_verdict = Some(verdict.clone());
                    out.broadcast = Some(verdict);
                }
            }
            3 => {
                self.verdicts = Ids::by(ids.receivers, &inbox.broadcasts);
                if let Some(dealer) = self.dealer.take() {
                    let mut all = self.verdicts.clone();
                    if let (Some(me), Some(v)) = (self.new_id, &self.own_verdict) {
                        all.insert(me, v.clone());
                    }
                    let answer = S::answer(dealer, &all).map_err(|e| ids.blame(&e))?;
                    if let Some(answer) = tamper(Tampered::Answer, S::ALGORITHM, answer) {
                        out.broadcast = Some(answer.clone());
                        if let Some(i) = self.old_id {
                            self.own_answer = Some((i, answer));
                        }
                    }
                }
            }
            4 => {
                if let Some(receiver) = self.receiver.take() {
                    let mut answers = Ids::by(ids.dealers, &inbox.broadcasts);
                    if let Some((i, a)) = self.own_answer.take() {
                        answers.insert(i, a);
                    }
                    let (judged, confirmation) =
                        S::judge(receiver, &self.verdicts, &answers).map_err(|e| ids.blame(&e))?;
                    self.judged = Some(judged);
                    out.broadcast = Some(confirmation);
                }
            }
            5 => {
                if let Some(judged) = self.judged.take() {
                    let confirmations = Ids::by(ids.receivers, &inbox.broadcasts);
                    let (bundle, culprits, qualified) =
                        S::confirm(judged, &confirmations).map_err(|e| ids.blame(&e))?;
                    return Ok(Advanced::Share(bundle, culprits, qualified));
                }
            }
            _ => {
                return Err(Failure::refused(
                    ErrorCode::Malformed,
                    format!("no reshare round {round}"),
                ));
            }
        }
        Ok(Advanced::Out(out))
    }
}

fn decode<M: dkg::Message>(sender: Party, bytes: &[u8]) -> Result<M, ec_reshare::Error> {
    ec_reshare::decode_from::<M>(sender, bytes)
}

fn decode_all<M: dkg::Message>(
    msgs: &BTreeMap<SignerId, Vec<u8>>,
    party: fn(SignerId) -> Party,
) -> Result<BTreeMap<SignerId, M>, ec_reshare::Error> {
    msgs.iter()
        .map(|(i, b)| Ok((*i, decode::<M>(party(*i), b)?)))
        .collect()
}

/// The dealers' messages that decode. A dealer whose sub-share does not decode is treated as one whose sub-share
/// does not match its commitments: the new holder complains and the dealer, unless it reveals a matching
/// sub-share, is excluded by every new holder (one garbled message must not abort the whole run). A dealing that
/// does not decode counts as not received: the echoes exclude its dealer (silent to all, or seen by some only).
fn decodable<M, B: AsRef<[u8]>>(
    msgs: &BTreeMap<SignerId, B>,
    decode: impl Fn(&[u8]) -> Option<M>,
) -> BTreeMap<SignerId, M> {
    msgs.iter()
        .filter_map(|(i, b)| {
            let m = decode(b.as_ref());
            if m.is_none() {
                tracing::warn!(dealer = %i, "reshare: a message of old holder {i} does not decode");
            }
            Some((*i, m?))
        })
        .collect()
}

/// P-256 and Ed25519 (`tcrypto::reshare`).
struct EcScheme<C>(std::marker::PhantomData<C>);

/// Converts a reshared EC share into the stored bundle.
trait EcBundle: Curve {
    const ALGORITHM: Algorithm;
    #[allow(clippy::type_complexity)]
    fn deal(
        params: ec_reshare::Parameters<Self>,
        share: &HeldShare,
        rng: &mut impl CryptoRng,
    ) -> Result<
        (
            ec_reshare::round1::DealerState<Self>,
            ec_reshare::round1::Dealing<Self>,
            BTreeMap<SignerId, ec_reshare::round1::SubShare<Self>>,
        ),
        ec_reshare::Error,
    >;
    fn bundle(share: dkg::KeyShare<Self>) -> Result<ShareBundle, String>;
}

impl EcBundle for P256 {
    const ALGORITHM: Algorithm = Algorithm::EcdsaP256;
    fn deal(
        params: ec_reshare::Parameters<Self>,
        share: &HeldShare,
        rng: &mut impl CryptoRng,
    ) -> Result<
        (
            ec_reshare::round1::DealerState<Self>,
            ec_reshare::round1::Dealing<Self>,
            BTreeMap<SignerId, ec_reshare::round1::SubShare<Self>>,
        ),
        ec_reshare::Error,
    > {
        let old = share
            .as_ecdsa()
            .ok_or(ec_reshare::Error::InvalidParameters("not a P-256 share"))?;
        ec_reshare::round1::deal(params, old, rng)
    }
    fn bundle(share: dkg::KeyShare<Self>) -> Result<ShareBundle, String> {
        let ecdsa = share.to_ecdsa().map_err(|e| e.to_string())?;
        let pk = EcdsaPublicKey::new(share.public().clone())?;
        ecdsa_bundles(&pk, &[ecdsa])
            .pop()
            .ok_or_else(|| "no bundle".to_string())
    }
}

impl EcBundle for Ed25519 {
    const ALGORITHM: Algorithm = Algorithm::Ed25519;
    fn deal(
        params: ec_reshare::Parameters<Self>,
        share: &HeldShare,
        rng: &mut impl CryptoRng,
    ) -> Result<
        (
            ec_reshare::round1::DealerState<Self>,
            ec_reshare::round1::Dealing<Self>,
            BTreeMap<SignerId, ec_reshare::round1::SubShare<Self>>,
        ),
        ec_reshare::Error,
    > {
        let old = share
            .as_ed25519()
            .ok_or(ec_reshare::Error::InvalidParameters("not an Ed25519 share"))?;
        ec_reshare::round1::deal(params, old, rng)
    }
    fn bundle(share: dkg::KeyShare<Self>) -> Result<ShareBundle, String> {
        let ed = tcrypto::ed25519::KeyShare::from_dkg(share).map_err(|e| e.to_string())?;
        ed25519_bundles(&ed.public().clone(), &[ed])
            .pop()
            .ok_or_else(|| "no bundle".to_string())
    }
}

impl<C: EcBundle> Scheme for EcScheme<C> {
    const ALGORITHM: Algorithm = C::ALGORITHM;
    type Params = ec_reshare::Parameters<C>;
    type Dealer = ec_reshare::round1::DealerState<C>;
    type Receiver = ec_reshare::round2::ReceiverState<C>;
    type Judged = ec_reshare::round4::JudgedState<C>;

    fn deal(
        params: Self::Params,
        share: &HeldShare,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self::Dealer, Vec<u8>, BTreeMap<SignerId, Zeroizing<Vec<u8>>>), ec_reshare::Error> {
        let (st, d, subs) = C::deal(params, share, rng)?;
        Ok((
            st,
            d.encode(),
            subs.into_iter().map(|(j, s)| (j, s.encode())).collect(),
        ))
    }

    fn receive(
        params: Self::Params,
        me: SignerId,
        dealings: &BTreeMap<SignerId, Vec<u8>>,
        subs: &BTreeMap<SignerId, Zeroizing<Vec<u8>>>,
    ) -> Result<(Self::Receiver, Vec<u8>), ec_reshare::Error> {
        let dealings = decodable(dealings, |b| dkg::Message::decode(b).ok());
        let subs = decodable(subs, |b| dkg::Message::decode(b).ok());
        let (st, v) = ec_reshare::round2::receive(params, me, &dealings, subs)?;
        Ok((st, v.encode()))
    }

    fn answer(
        dealer: Self::Dealer,
        verdicts: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Vec<u8>, ec_reshare::Error> {
        let verdicts = decode_all(verdicts, Party::New)?;
        Ok(dealer.answer(&verdicts)?.encode())
    }

    fn judge(
        receiver: Self::Receiver,
        verdicts: &BTreeMap<SignerId, Vec<u8>>,
        answers: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<(Self::Judged, Vec<u8>), ec_reshare::Error> {
        let verdicts = decode_all(verdicts, Party::New)?;
        let answers = decode_all(answers, Party::Old)?;
        let (st, c) = receiver.judge(&verdicts, &answers)?;
        Ok((st, c.encode()))
    }

    fn confirm(
        judged: Self::Judged,
        confirmations: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Confirmed, ec_reshare::Error> {
        let confirmations = decode_all(confirmations, Party::New)?;
        let done = judged.confirm(&confirmations)?;
        let culprits = done.culprits.iter().map(|c| c.party).collect();
        let bundle = C::bundle(done.share)
            .map_err(|_| ec_reshare::Error::InvalidResult("the new share does not make a bundle"))?;
        Ok((bundle, culprits, done.qualified))
    }
}

/// Shoup RSA (`tcrypto::rsa::reshare`).
struct RsaScheme;

fn rsa_decode<M>(
    msgs: &BTreeMap<SignerId, Vec<u8>>,
    party: fn(SignerId) -> Party,
    f: fn(&[u8]) -> Result<M, DecodeError>,
) -> Result<BTreeMap<SignerId, M>, ec_reshare::Error> {
    msgs.iter()
        .map(|(i, b)| {
            f(b).map(|m| (*i, m))
                .map_err(|error| ec_reshare::Error::Malformed {
                    culprit: party(*i),
                    error,
                })
        })
        .collect()
}

impl Scheme for RsaScheme {
    const ALGORITHM: Algorithm = Algorithm::Rsa;
    type Params = rsa_reshare::Parameters;
    type Dealer = rsa_reshare::DealerState;
    type Receiver = rsa_reshare::ReceiverState;
    type Judged = rsa_reshare::JudgedState;

    fn deal(
        params: Self::Params,
        share: &HeldShare,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self::Dealer, Vec<u8>, BTreeMap<SignerId, Zeroizing<Vec<u8>>>), ec_reshare::Error> {
        let old = share
            .as_rsa()
            .ok_or(ec_reshare::Error::InvalidParameters("not an RSA share"))?;
        let (st, d, subs) = rsa_reshare::deal(params, old, rng)?;
        Ok((
            st,
            d.encode(),
            subs.into_iter().map(|(j, s)| (j, s.encode())).collect(),
        ))
    }

    fn receive(
        params: Self::Params,
        me: SignerId,
        dealings: &BTreeMap<SignerId, Vec<u8>>,
        subs: &BTreeMap<SignerId, Zeroizing<Vec<u8>>>,
    ) -> Result<(Self::Receiver, Vec<u8>), ec_reshare::Error> {
        let dealings = decodable(dealings, |b| rsa_reshare::Dealing::decode(b).ok());
        let subs = decodable(subs, |b| rsa_reshare::SubShare::decode(b).ok());
        let (st, v) = rsa_reshare::receive(params, me, &dealings, &subs)?;
        Ok((st, v.encode()))
    }

    fn answer(
        dealer: Self::Dealer,
        verdicts: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Vec<u8>, ec_reshare::Error> {
        let verdicts = rsa_decode(verdicts, Party::New, rsa_reshare::Verdict::decode)?;
        Ok(dealer.answer(&verdicts)?.encode())
    }

    fn judge(
        receiver: Self::Receiver,
        verdicts: &BTreeMap<SignerId, Vec<u8>>,
        answers: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<(Self::Judged, Vec<u8>), ec_reshare::Error> {
        let verdicts = rsa_decode(verdicts, Party::New, rsa_reshare::Verdict::decode)?;
        let answers = rsa_decode(answers, Party::Old, rsa_reshare::Answer::decode)?;
        let (st, c) = receiver.judge(&verdicts, &answers)?;
        Ok((st, c.encode()))
    }

    fn confirm(
        judged: Self::Judged,
        confirmations: &BTreeMap<SignerId, Vec<u8>>,
    ) -> Result<Confirmed, ec_reshare::Error> {
        let confirmations = rsa_decode(confirmations, Party::New, rsa_reshare::Confirmation::decode)?;
        let done = judged.confirm(&confirmations)?;
        let culprits = done.culprits.iter().map(|c| c.party).collect();
        let pk = done.share.public_key_set().clone();
        let bundle = ShareBundle {
            info: KeyInfo {
                key: pk.key_id(),
                algorithm: Algorithm::Rsa,
                signer: done.share.id(),
                threshold: pk.threshold(),
                parties: pk.parties(),
                public: pk.encode(),
            },
            share: done.share.encode(),
        };
        Ok((bundle, culprits, done.qualified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(run: u8, epoch: u64) -> ReshareSetup {
        let info = KeyInfo {
            key: KeyId([4; 32]),
            algorithm: Algorithm::Ed25519,
            signer: SignerId::new(1).unwrap(),
            threshold: 2,
            parties: 3,
            public: vec![1, 2, 3],
        };
        ReshareSetup {
            key: info.key,
            epoch,
            run: SessionId([run; 32]),
            old: info,
            parties: vec![[1; 32], [2; 32]],
            dealers: vec![(SignerId::new(1).unwrap(), SignerId::new(1).unwrap())],
            receivers: vec![SignerId::new(2).unwrap()],
            threshold: 1,
        }
    }

    /// A key claimed by one run refuses another run's start and another coordinator's abort of the claimed
    /// epoch, naming the epoch, the coordinator and the time left; steps of the run keep the claim alive; it
    /// expires after the TTL without a step, and ends when its epoch is committed or aborted by its coordinator.
    #[test]
    fn one_reshare_of_a_key_at_a_time_until_the_claim_ends_or_expires() {
        let claims = Claims::default();
        claims.set_ttl(std::time::Duration::from_secs(10));
        let (a, b) = (Some([0xa; 32]), Some([0xb; 32]));
        let key = KeyId([4; 32]);
        claims.claim(&setup(1, 3), a, 1_000).unwrap();
        // The same run again (a retried start) is no conflict.
        claims.claim(&setup(1, 3), a, 1_500).unwrap();
        let refused = claims.claim(&setup(2, 3), b, 3_000).unwrap_err();
        assert_eq!(
            (
                refused.epoch,
                refused.coordinator,
                refused.idle_ms,
                refused.expires_in_ms
            ),
            (3, a, 1_500, 8_500)
        );
        assert!(refused.to_string().contains("epoch 3"), "{refused}");
        // The same coordinator identity starting another run is refused too.
        assert!(claims.claim(&setup(2, 3), a, 3_000).is_err());
        assert_eq!(claims.abort(&key, 3, b, 3_000).unwrap_err().epoch, 3);
        // Another epoch's abort (a stale pending share of an older run) is no business of the claim.
        claims.abort(&key, 2, b, 3_000).unwrap();
        // A step keeps the claim alive past the first start's expiry.
        claims.touch(&key, &SessionId([1; 32]), 9_000);
        assert!(claims.claim(&setup(2, 4), b, 18_000).is_err());
        // Expired 10 s after the last step: another coordinator takes the key.
        claims.claim(&setup(2, 4), b, 19_000).unwrap();
        // Its own coordinator aborts it: the key is free at once.
        assert!(claims.claim(&setup(3, 5), a, 19_001).is_err());
        claims.abort(&key, 4, b, 19_002).unwrap();
        claims.claim(&setup(3, 5), a, 19_003).unwrap();
        // A commit (or retirement) of the claimed epoch ends it.
        claims.end(&key, 5);
        claims.claim(&setup(4, 6), b, 19_004).unwrap();
    }

    /// Stored records round-trip, refuse trailing bytes and are seeds of the `net_messages` fuzz target.
    #[test]
    fn records_round_trip_and_are_fuzz_seeds() {
        let bundle = ShareBundle {
            info: KeyInfo {
                key: KeyId([4; 32]),
                algorithm: Algorithm::Ed25519,
                signer: SignerId::new(2).unwrap(),
                threshold: 2,
                parties: 3,
                public: vec![1, 2, 3],
            },
            share: Zeroizing::new(b"the share".to_vec()),
        };
        let records = [
            Record {
                active_epoch: 3,
                retired: false,
                pending: None,
            },
            Record {
                active_epoch: 5,
                retired: true,
                pending: None,
            },
            Record {
                active_epoch: 4,
                retired: false,
                pending: Some((5, bundle)),
            },
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/net_messages");
        for (i, record) in records.iter().enumerate() {
            let bytes = record.encode();
            assert_eq!(record_round_trip(&bytes).unwrap(), bytes);
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(Record::decode(&longer).is_err());
            assert!(Record::decode(&bytes[..bytes.len() - 1]).is_err());
            std::fs::write(dir.join(format!("reshare-record-{i}")), &bytes[..]).unwrap();
        }
    }
}
