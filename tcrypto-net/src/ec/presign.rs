//! ECDSA presigning at the node (`tcrypto::ecdsa::presign`, three rounds relayed by the coordinator) and the
//! node's stock of presignatures.
//!
//! | request | this node does | answers |
//! |---|---|---|
//! | `PresignStart` | `presign::round1` | round-1 broadcast and a sealed direct message to every other member |
//! | `PresignRound 2` | `Round1State::round2` | round-2 broadcast and sealed direct messages |
//! | `PresignRound 3` | `Round2State::round3` | round-3 broadcast |
//! | `PresignRound 4` | `Round3State::finish` | the batch's public parts (kept pending, not yet usable) |
//! | `PresignRound 5` | store the batch encrypted, crash-safely | `Done`: the batch is usable |
//! | `PresignRound 6` | `Output::abort_and_reveal` (another member's check failed) | its `BlameReveal` broadcast |
//! | `PresignRound 7` | `BlameState::conclude` over the other members' reveals | `Aborted` naming the culprits |
//!
//! Step 5 comes only when every member reported success in step 4 (as `tcrypto::ecdsa` requires). When a
//! member's check fails in step 4 it answers its `BlameReveal` (a round-6 broadcast) instead of the public
//! parts; the coordinator then asks the other members for theirs (step 6, which destroys their presignatures)
//! and relays every reveal to every member (step 7), which recomputes what each member should have sent and
//! names who did not. A batch is one encrypted file of the secret store. Before a signature share made with a
//! presignature leaves the node, the presignature's id is appended to the spent log and the log is fsynced
//! ([`SpentLog`], group commit: one `fdatasync` covers every mark waiting at that moment); on start the log is
//! read back and spent presignatures are never loaded.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::{Condvar, Mutex};

use rand_core::CryptoRng;
use tcrypto::codec::{Reader, Writer};
use tcrypto::ecdsa::presign::{
    self, BlameReveal, BlameState, Finished, Output, PresignParams, Round1Broadcast, Round1Direct,
    Round1State, Round2Broadcast, Round2Direct, Round2State, Round3Broadcast, Round3State,
};
use tcrypto::ecdsa::{self, Presignature, PresignatureId, SignRequest, SpentPresignatures};
use tcrypto::{KeyId, SessionId, SignerId};

use super::{Failure, Roster, require_all};
use crate::identity::NodeIdentity;
use crate::store::SecretStore;
use crate::wire::ErrorCode;

/// Most presigning runs a node keeps open at once.
pub(crate) const MAX_RUNS: usize = 16;

enum State {
    Round1(Box<Round1State>),
    Round2(Box<Round2State>),
    Round3(Box<Round3State>),
    /// Checks passed; waiting for every member's success before the batch is stored.
    Finished(Box<Output>),
    /// A check failed (here or at another member): waiting for the other members' reveals.
    Blame(Box<BlameState>),
}

/// The round whose broadcasts are the blame step's reveals.
const REVEAL_ROUND: u8 = 6;

/// A presigning run in progress at this node.
pub(crate) struct PresignRun {
    key: KeyId,
    roster: Roster,
    state: State,
}

fn blame(e: &ecdsa::Error) -> Failure {
    Failure::Aborted(e.culprits(), e.to_string())
}

fn decode_each<M>(
    messages: &BTreeMap<SignerId, Vec<u8>>,
    decode: impl Fn(&[u8]) -> Result<M, ecdsa::Error>,
) -> Result<BTreeMap<SignerId, M>, Failure> {
    messages
        .iter()
        .map(|(id, b)| {
            decode(b)
                .map(|m| (*id, m))
                .map_err(|e| Failure::blame(*id, format!("malformed message from {id}: {e}")))
        })
        .collect()
}

/// Starts a run: this node's round 1.
pub(crate) fn start(
    key: KeyId,
    share: &ecdsa::KeyShare,
    roster: Roster,
    run: SessionId,
    batch: u32,
    own: &NodeIdentity,
    rng: &mut impl CryptoRng,
) -> Result<(PresignRun, Vec<Vec<u8>>), Failure> {
    let params = PresignParams {
        session: run,
        parties: roster.ids(),
        batch,
    };
    let (state, b1, directs) = presign::round1(share, params, rng)
        .map_err(|e| Failure::refused(ErrorCode::BadEncoding, e.to_string()))?;
    let mut out = vec![roster.broadcast(own, run, 1, &b1.encode())?];
    for (to, d) in directs {
        out.push(roster.seal(own, run, 1, to, &d.encode(), rng)?);
    }
    Ok((
        PresignRun {
            key,
            roster,
            state: State::Round1(Box::new(state)),
        },
        out,
    ))
}

/// What a step produced.
pub(crate) enum Step {
    /// Envelopes to relay; the run continues.
    Envelopes(PresignRun, Vec<Vec<u8>>),
    /// The checks passed: the batch's public parts; the run waits for the commit.
    Checked(PresignRun, Vec<Vec<u8>>),
    /// The batch, to be stored and used.
    Commit(KeyId, Vec<Presignature>),
}

impl PresignRun {
    /// The key of the run.
    pub(crate) fn key(&self) -> KeyId {
        self.key
    }

    /// Runs step `round` (2..=7) with the relayed envelopes.
    pub(crate) fn advance(
        self,
        run: SessionId,
        round: u8,
        envelopes: &[Vec<u8>],
        own: &NodeIdentity,
        rng: &mut impl CryptoRng,
    ) -> Result<Step, Failure> {
        let PresignRun { key, roster, state } = self;
        let others: BTreeSet<SignerId> = roster.ids().into_iter().filter(|id| *id != roster.me).collect();
        let state = match (round, state) {
            (5, State::Finished(out)) => return Ok(Step::Commit(key, out.into_presignatures())),
            (REVEAL_ROUND, State::Finished(out)) => {
                let (blame, reveal) = out.abort_and_reveal();
                return reveal_step(key, roster, blame, &reveal, run, own);
            }
            (7, State::Blame(blame)) => {
                // A reveal that is missing or malformed is left out; `conclude` names its sender.
                let inbox = roster.open(own, run, REVEAL_ROUND, &others, envelopes)?;
                let reveals: BTreeMap<SignerId, BlameReveal> = inbox
                    .broadcasts
                    .iter()
                    .filter_map(|(id, b)| Some((*id, BlameReveal::decode(b).ok()?)))
                    .collect();
                let e = blame.conclude(&reveals);
                return Err(Failure::Aborted(
                    e.culprits(),
                    format!("presigning blame step: {e}"),
                ));
            }
            (_, state) => state,
        };
        let previous = round
            .checked_sub(1)
            .ok_or_else(|| Failure::refused(ErrorCode::Malformed, "presigning round 0"))?;
        let inbox = roster.open(own, run, previous, &others, envelopes)?;
        require_all(&inbox.broadcasts, &others, "broadcasts")?;
        match (round, state) {
            (2, State::Round1(st)) => {
                require_all(&inbox.direct, &others, "direct messages")?;
                let b = decode_each(&inbox.broadcasts, Round1Broadcast::decode)?;
                let d = decode_each(&inbox.direct, Round1Direct::decode)?;
                let (st, b2, directs) = st.round2(&b, &d, rng).map_err(|e| blame(&e))?;
                let mut out = vec![roster.broadcast(own, run, 2, &b2.encode())?];
                for (to, d) in directs {
                    out.push(roster.seal(own, run, 2, to, &d.encode(), rng)?);
                }
                Ok(Step::Envelopes(
                    PresignRun {
                        key,
                        roster,
                        state: State::Round2(Box::new(st)),
                    },
                    out,
                ))
            }
            (3, State::Round2(st)) => {
                require_all(&inbox.direct, &others, "direct messages")?;
                let b = decode_each(&inbox.broadcasts, Round2Broadcast::decode)?;
                let d = decode_each(&inbox.direct, Round2Direct::decode)?;
                let (st, b3) = st.round3(&b, &d, rng).map_err(|e| blame(&e))?;
                let out = vec![roster.broadcast(own, run, 3, &b3.encode())?];
                Ok(Step::Envelopes(
                    PresignRun {
                        key,
                        roster,
                        state: State::Round3(Box::new(st)),
                    },
                    out,
                ))
            }
            (4, State::Round3(st)) => {
                let b = decode_each(&inbox.broadcasts, Round3Broadcast::decode)?;
                match st.finish(&b, rng).map_err(|e| blame(&e))? {
                    Finished::Presignatures(output) => {
                        let publics = output.public_parts().map(|x| x.encode()).collect();
                        Ok(Step::Checked(
                            PresignRun {
                                key,
                                roster,
                                state: State::Finished(Box::new(output)),
                            },
                            publics,
                        ))
                    }
                    Finished::Blame(blame, reveal) => reveal_step(key, roster, blame, &reveal, run, own),
                }
            }
            _ => Err(Failure::refused(
                ErrorCode::Malformed,
                format!("presigning round {round} out of order"),
            )),
        }
    }
}

/// This member's reveal for the blame step, as a round-6 broadcast; the run waits for the others'.
fn reveal_step(
    key: KeyId,
    roster: Roster,
    blame: Box<BlameState>,
    reveal: &BlameReveal,
    run: SessionId,
    own: &NodeIdentity,
) -> Result<Step, Failure> {
    let out = vec![roster.broadcast(own, run, REVEAL_ROUND, &reveal.encode())?];
    Ok(Step::Envelopes(
        PresignRun {
            key,
            roster,
            state: State::Blame(blame),
        },
        out,
    ))
}

/// Store name of a batch.
pub(crate) const BATCH_PREFIX: &str = "presig-";

fn batch_name(run: &SessionId) -> String {
    format!("{BATCH_PREFIX}{run}")
}

/// The durable record of spent presignature ids: an append-only file of 36-byte records (run session, index),
/// fsynced before a mark is reported durable, with group commit.
pub(crate) struct SpentLog {
    state: Mutex<SpentState>,
    synced: Condvar,
    file: Option<Mutex<File>>,
}

#[derive(Default)]
struct SpentState {
    spent: HashSet<PresignatureId>,
    buffer: Vec<u8>,
    appended: u64,
    durable: u64,
    syncing: bool,
    failed: Option<String>,
}

const RECORD_LEN: usize = 36;

impl SpentLog {
    /// A log kept in memory only (nodes without a store).
    pub(crate) fn in_memory() -> Self {
        Self {
            state: Mutex::new(SpentState::default()),
            synced: Condvar::new(),
            file: None,
        }
    }

    /// A log that refuses every mark (the file could not be opened): no ECDSA share is released.
    pub(crate) fn broken(why: String) -> Self {
        Self {
            state: Mutex::new(SpentState {
                failed: Some(why),
                ..SpentState::default()
            }),
            synced: Condvar::new(),
            file: None,
        }
    }

    /// Opens (creating) the log at `path` and reads the marks in it. A torn last record (a crash during its
    /// write, before its fsync completed, so no share was released for it) is ignored.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut spent = HashSet::new();
        for rec in bytes.chunks_exact(RECORD_LEN) {
            let mut session = [0u8; 32];
            session.copy_from_slice(&rec[..32]);
            let mut index = [0u8; 4];
            index.copy_from_slice(&rec[32..]);
            spent.insert(PresignatureId {
                session: SessionId(session),
                index: u32::from_be_bytes(index),
            });
        }
        if bytes.len() % RECORD_LEN != 0 {
            // Drop the torn tail so later records stay aligned.
            file.set_len((bytes.len() - bytes.len() % RECORD_LEN) as u64)?;
        }
        Ok(Self {
            state: Mutex::new(SpentState {
                spent,
                ..SpentState::default()
            }),
            synced: Condvar::new(),
            file: Some(Mutex::new(file)),
        })
    }

    /// Whether `id` is recorded as spent.
    pub(crate) fn is_spent(&self, id: &PresignatureId) -> bool {
        self.state.lock().map(|s| s.spent.contains(id)).unwrap_or(true)
    }

    /// Records `id`; returns once the record is durable (`Ok(false)` if it was spent already).
    pub(crate) fn mark(&self, id: &PresignatureId) -> Result<bool, String> {
        let poisoned = |_| "spent log lock poisoned".to_string();
        let mut g = self.state.lock().map_err(poisoned)?;
        if let Some(e) = &g.failed {
            return Err(e.clone());
        }
        if !g.spent.insert(*id) {
            return Ok(false);
        }
        let Some(file) = &self.file else { return Ok(true) };
        g.buffer.extend_from_slice(id.session.as_bytes());
        g.buffer.extend_from_slice(&id.index.to_be_bytes());
        g.appended += 1;
        let mine = g.appended;
        loop {
            if let Some(e) = &g.failed {
                return Err(e.clone());
            }
            if g.durable >= mine {
                return Ok(true);
            }
            if g.syncing {
                g = self.synced.wait(g).map_err(poisoned)?;
                continue;
            }
            g.syncing = true;
            let batch = std::mem::take(&mut g.buffer);
            let upto = g.appended;
            drop(g);
            let written = file
                .lock()
                .map_err(|_| "spent log file lock poisoned".to_string())
                .and_then(|mut f| {
                    f.write_all(&batch)
                        .and_then(|()| f.sync_data())
                        .map_err(|e| format!("spent log: {e}"))
                });
            g = self.state.lock().map_err(poisoned)?;
            g.syncing = false;
            match written {
                Ok(()) => g.durable = upto,
                Err(e) => g.failed = Some(e),
            }
            self.synced.notify_all();
        }
    }
}

struct Marker<'a>(&'a SpentLog);

impl SpentPresignatures for Marker<'_> {
    fn mark_spent(&mut self, id: &PresignatureId) -> Result<bool, String> {
        self.0.mark(id)
    }
}

/// The node's usable presignatures, by id, with the batch bookkeeping for deleting fully spent batch files.
pub(crate) struct Stock {
    available: Mutex<HashMap<PresignatureId, (KeyId, Presignature)>>,
    batches: Mutex<HashMap<SessionId, usize>>,
    answered: Mutex<Answered>,
    pub(crate) spent: SpentLog,
}

/// Most answered requests remembered (the oldest are forgotten: a presignature asked again after that is
/// refused, which is always safe).
const MAX_ANSWERED: usize = 65_536;

/// The request each recently spent presignature answered and the share it gave, so that the coordinator can ask
/// the same request again (it then gets the same share) while any other request is refused: two shares of one
/// presignature for different requests would reveal this member's secret share.
#[derive(Default)]
struct Answered {
    by_id: HashMap<PresignatureId, (KeyId, SignRequest, Vec<u8>)>,
    order: VecDeque<PresignatureId>,
}

impl Stock {
    pub(crate) fn new(spent: SpentLog) -> Self {
        Self {
            available: Mutex::new(HashMap::new()),
            batches: Mutex::new(HashMap::new()),
            answered: Mutex::new(Answered::default()),
            spent,
        }
    }

    fn add(&self, key: KeyId, run: SessionId, presignatures: Vec<Presignature>) {
        let fresh: Vec<Presignature> = presignatures
            .into_iter()
            .filter(|p| !self.spent.is_spent(&p.id()))
            .collect();
        if let Ok(mut b) = self.batches.lock() {
            b.insert(run, fresh.len());
        }
        if let Ok(mut a) = self.available.lock() {
            for p in fresh {
                a.insert(p.id(), (key, p));
            }
        }
    }

    /// Stores a committed batch encrypted (crash-safe write) and makes it usable.
    pub(crate) fn commit(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        run: SessionId,
        presignatures: Vec<Presignature>,
        rng: &mut impl CryptoRng,
    ) -> Result<usize, (ErrorCode, String)> {
        if let Some(store) = store {
            let mut w = Writer::bare();
            key.encode(&mut w);
            w.u32(u32::try_from(presignatures.len()).unwrap_or(u32::MAX));
            for p in &presignatures {
                w.bytes(&p.encode());
            }
            let plain = zeroize::Zeroizing::new(w.finish());
            store
                .put(&batch_name(&run), &plain, rng)
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
        }
        let n = presignatures.len();
        self.add(key, run, presignatures);
        Ok(n)
    }

    /// Loads every stored batch, leaving out spent presignatures; deletes batches with nothing left.
    pub(crate) fn load(&self, store: &SecretStore) -> Result<usize, String> {
        let mut loaded = 0;
        for name in store.list().map_err(|e| e.to_string())? {
            let Some(run_hex) = name.strip_prefix(BATCH_PREFIX) else {
                continue;
            };
            let Some(plain) = store.get(&name).map_err(|e| e.to_string())? else {
                continue;
            };
            let mut r = Reader::bare(&plain);
            let key = KeyId::decode(&mut r).map_err(|e| format!("{name}: {e}"))?;
            let n = r.count(4).map_err(|e| format!("{name}: {e}"))?;
            let mut batch = Vec::with_capacity(n);
            for _ in 0..n {
                let bytes = r.bytes().map_err(|e| format!("{name}: {e}"))?;
                batch.push(Presignature::decode(bytes).map_err(|e| format!("{name}: {e}"))?);
            }
            r.finish().map_err(|e| format!("{name}: {e}"))?;
            let Some(run) = batch.first().map(|p| p.id().session) else {
                continue;
            };
            if run.to_string() != run_hex {
                return Err(format!("{name}: file name does not match its batch"));
            }
            let before = self.available.lock().map(|a| a.len()).unwrap_or(0);
            self.add(key, run, batch);
            let after = self.available.lock().map(|a| a.len()).unwrap_or(0);
            if after == before {
                let _ = store.delete(&name);
            }
            loaded += after - before;
        }
        Ok(loaded)
    }

    /// Presignatures available for `key`.
    pub(crate) fn count(&self, key: &KeyId) -> usize {
        self.available
            .lock()
            .map(|a| a.values().filter(|(k, _)| k == key).count())
            .unwrap_or(0)
    }

    /// Signs `digest` with presignature `id` of `key` under `session`: marks it spent on disk first (inside
    /// `sign_share`), then computes the share. The presignature leaves the stock before anything else, so it is
    /// never used twice. A presignature spent in this process is answered again only for the identical request
    /// (key, session, digest), with the share it gave; any other request for it is refused.
    pub(crate) fn sign(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        share: &ecdsa::KeyShare,
        id: PresignatureId,
        session: SessionId,
        digest: &[u8],
    ) -> Result<Vec<u8>, (ErrorCode, String)> {
        let taken = self
            .available
            .lock()
            .map_err(|_| {
                (
                    ErrorCode::Internal,
                    "presignature stock lock poisoned".to_string(),
                )
            })?
            .remove(&id);
        let request = SignRequest {
            session,
            presignature: id,
            digest: digest.to_vec(),
        };
        let Some((owner, presignature)) = taken else {
            return self.answer_again(key, &request);
        };
        if owner != key {
            return Err((
                ErrorCode::BadEncoding,
                "presignature belongs to another key".into(),
            ));
        }
        let out = ecdsa::sign_share(share, presignature, &request, &mut Marker(&self.spent))
            .map(|s| s.encode())
            .map_err(|e| match e {
                ecdsa::Error::SpentLog(_) => (ErrorCode::Storage, e.to_string()),
                ecdsa::Error::PresignatureSpent(_) => (ErrorCode::Replayed, e.to_string()),
                _ => (ErrorCode::BadEncoding, e.to_string()),
            });
        if let (Ok(bytes), Ok(mut a)) = (&out, self.answered.lock()) {
            a.by_id.insert(id, (key, request, bytes.clone()));
            a.order.push_back(id);
            while a.order.len() > MAX_ANSWERED {
                if let Some(old) = a.order.pop_front() {
                    a.by_id.remove(&old);
                }
            }
        }
        let emptied = self
            .batches
            .lock()
            .ok()
            .and_then(|mut b| {
                let left = b.get_mut(&id.session)?;
                *left = left.saturating_sub(1);
                (*left == 0).then(|| b.remove(&id.session))
            })
            .is_some();
        if emptied && let Some(store) = store {
            let _ = store.delete(&batch_name(&id.session));
        }
        out
    }

    /// The answer to a request for a presignature that is not in the stock: the same share if it was spent for
    /// this very request, a refusal otherwise.
    fn answer_again(&self, key: KeyId, request: &SignRequest) -> Result<Vec<u8>, (ErrorCode, String)> {
        let id = request.presignature;
        let answered = self
            .answered
            .lock()
            .map_err(|_| (ErrorCode::Internal, "answered-request lock poisoned".to_string()))?;
        match answered.by_id.get(&id) {
            Some((k, r, share)) if *k == key && r == request => Ok(share.clone()),
            Some(_) => Err((
                ErrorCode::Replayed,
                format!(
                    "presignature {}:{} was spent for another request; refused",
                    id.session, id.index
                ),
            )),
            None if self.spent.is_spent(&id) => Err((
                ErrorCode::Replayed,
                format!("presignature {}:{} is spent", id.session, id.index),
            )),
            None => Err((
                ErrorCode::UnknownKey,
                format!("no unused presignature {}:{}", id.session, id.index),
            )),
        }
    }

    /// Forgets the presignatures of a deleted key.
    pub(crate) fn forget(&self, key: &KeyId) {
        if let Ok(mut a) = self.available.lock() {
            a.retain(|_, (k, _)| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_spent_presignature_answers_only_the_identical_request_again() {
        let mut rng = rand::rng();
        let keys = ecdsa::dealer::deal(2, 3, &mut rng).unwrap();
        let run = SessionId::random(&mut rng);
        let refs: Vec<&ecdsa::KeyShare> = keys.iter().collect();
        let mut made = presign::run_in_process(&refs, run, 2, &mut rng).unwrap();
        let share = &keys[0];
        let key = share.key_id();
        let stock = Stock::new(SpentLog::in_memory());
        let mine = made.remove(&share.id()).unwrap();
        stock.commit(None, key, run, mine, &mut rng).unwrap();
        let id = PresignatureId {
            session: run,
            index: 0,
        };
        let session = SessionId::random(&mut rng);
        let first = stock.sign(None, key, share, id, session, &[1; 32]).unwrap();
        // The identical request gets the identical share (no second share of this presignature exists).
        assert_eq!(
            stock.sign(None, key, share, id, session, &[1; 32]).unwrap(),
            first
        );
        // Another digest, or the same digest under another session (another δ), is refused.
        let other_digest = stock.sign(None, key, share, id, session, &[2; 32]).unwrap_err();
        assert_eq!(other_digest.0, ErrorCode::Replayed, "{}", other_digest.1);
        let other_session = SessionId::random(&mut rng);
        let again = stock
            .sign(None, key, share, id, other_session, &[1; 32])
            .unwrap_err();
        assert_eq!(again.0, ErrorCode::Replayed, "{}", again.1);
        // The other presignature of the batch is untouched.
        let next = PresignatureId {
            session: run,
            index: 1,
        };
        assert!(
            stock
                .sign(None, key, share, next, other_session, &[2; 32])
                .is_ok()
        );
    }
}
