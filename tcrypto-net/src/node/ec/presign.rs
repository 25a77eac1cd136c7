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
//! names who did not.
//!
//! # The stock at rest, and why it fails closed
//!
//! Two signature shares made with one presignature for different requests reveal this member's secret share, so
//! the node must never use a presignature twice, across restarts, crashes, damaged files and restored backups.
//! Discarding presignatures is always safe (the coordinator asks another member, or presigns again); reusing one
//! never is. Whenever the node cannot prove which presignatures are unspent, it discards all of them.
//!
//! **Files.** Each committed batch is one sealed file of the secret store (`secrets/presig-<run>.sealed`). The
//! sealed **state** (`secrets/presig.state`, AEAD under the store key, crash-safe rewrite) lists the live batches:
//! run id, key, creation time, size, and a bitmap of the presignatures spent as of the start of the current
//! **epoch** (a random 16-byte id chosen at every start). A batch file that the state does not list is never loaded
//! (it is deleted), so an old batch file copied back cannot come back to life. The **spent log**
//! (`spent-presignatures.log`) holds the marks made during the epoch: a header (magic, epoch, HMAC) and 52-byte
//! records (run id, index, a 16-byte HMAC-SHA256 chained over the previous record's tag), keyed from the store key.
//! The **witness** is a file *outside* the data directory (`presignature_witness` in the node configuration,
//! default `<data_dir>.witness`) holding the epoch, this machine's boot id (Linux `boot_id`) and the number of
//! durable records, authenticated with the store key.
//!
//! **Marking.** Before a signature share leaves the node its presignature's record is appended to the log and
//! fsynced, then the witness is rewritten with the new record count ([`SpentLog`], group commit: one sync covers
//! every mark waiting at that moment); a failure of either refuses the share and every later one. The witness is
//! not synced where the boot id is known: a killed process leaves it in the page cache, and after a machine crash
//! the boot id differs, which discards the stock anyway.
//!
//! **Start.** The state, log and witness must agree: same epoch in all three, log header and every record's chain
//! authenticate, at least as many records as the witness counted (a torn record beyond that count is a crash
//! before its sync: no share was released for it), and the witness from this boot. Then the live batches are
//! decrypted, their spent marks (bitmap and log) left out. Otherwise every stored presignature is discarded (all
//! batch files deleted) with a warning naming the file and the reason. This recognises:
//! - a flipped bit anywhere in the log (its chain or header fails), a truncated log or an older copy of it (fewer
//!   records than the witness counted), a deleted log, state or witness, a damaged state or witness;
//! - a **data directory restored from a copy**: the copy's state and log carry an older epoch than the witness,
//!   which lives outside the directory and was rewritten at every start since;
//! - a **whole machine restored from a copy** (the witness restored with it): restoring means booting, and the
//!   witness records the boot id, so a witness from before the current boot is not trusted. The one case left is a
//!   copy taken during the current boot, restored with its witness without rebooting; putting the witness on a
//!   tmpfs (`/run/...`, never in a backup) closes it, at the price that every reboot discards the stock (as it
//!   does anyway through the boot id).
//!
//! A kill -9 or crash keeps every unspent presignature (the log and witness are current up to the last released
//! share). A crash during the few milliseconds of the start-up rewrite leaves the three files in different epochs,
//! and the next start discards the stock: fail closed.
//!
//! **New epoch at every start**: the marks of the log are folded into the state's bitmaps, the state is rewritten
//! with a new epoch, the log restarted empty and the witness rewritten; batch files with nothing left, or no
//! longer listed, are deleted. Start-up therefore reads the state, the marks made since the last start and the
//! live batches only: it does not grow with history.
//!
//! **Abandoned presignatures**: a coordinator's pool dies with its process, leaving the members' shares of it
//! unused. Batches older than [`MAX_BATCH_AGE_MS`] (7 days) are discarded at start and whenever a batch is
//! committed, and each key keeps at most [`MAX_STOCK_PER_KEY`] presignatures (the oldest batches go first). A
//! fully spent batch's file is deleted at once.
//!
//! **Damaged batch files** (not opening under the store key, not decoding, or not matching their state entry) are
//! moved to `quarantine/` with a warning naming the file; the other batches and every key keep serving.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use rand_core::CryptoRng;
use tcrypto::codec::{Reader, Writer};
use tcrypto::ecdsa::presign::{
    self, BlameReveal, BlameState, Finished, Output, PresignParams, Round1Broadcast, Round1Direct,
    Round1State, Round2Broadcast, Round2Direct, Round2State, Round3Broadcast, Round3State,
};
use tcrypto::ecdsa::{self, Presignature, PresignatureId, SignRequest, SpentPresignatures};
use tcrypto::{KeyId, SessionId, SignerId};

use super::{Failure, Roster, require_all};
use crate::node::store::SecretStore;
use crate::transport::identity::NodeIdentity;
use crate::transport::wire::ErrorCode;

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
/// Store name of the sealed presignature state (the live batches and their spent marks at the epoch start).
pub(crate) const STATE_NAME: &str = "presig.state";
/// The spent log's file name in the data directory.
pub(crate) const SPENT_LOG: &str = "spent-presignatures.log";
/// Batches older than this are discarded (abandoned by the coordinator that made them): 7 days.
pub(crate) const MAX_BATCH_AGE_MS: u64 = 7 * 24 * 3600 * 1000;
/// Most presignatures kept per key; beyond this the oldest batches are discarded.
pub(crate) const MAX_STOCK_PER_KEY: usize = 8192;

fn batch_name(run: &SessionId) -> String {
    format!("{BATCH_PREFIX}{run}")
}

const LOG_MAGIC: &[u8; 8] = b"TCSPENT2";
const WITNESS_MAGIC: &[u8; 8] = b"TCWITNS1";
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 8 + 16 + TAG_LEN;
const RECORD_LEN: usize = 36 + TAG_LEN;
const WITNESS_LEN: usize = 8 + 16 + 8 + 16 + TAG_LEN;

type Tag = [u8; TAG_LEN];

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> Tag {
    use hmac::{KeyInit as _, Mac as _};
    let mut tag = [0u8; TAG_LEN];
    if let Ok(mut m) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        for p in parts {
            m.update(p);
        }
        tag.copy_from_slice(&m.finalize().into_bytes()[..TAG_LEN]);
    }
    tag
}

fn header_tag(key: &[u8; 32], epoch: &[u8; 16]) -> Tag {
    mac(key, &[LOG_MAGIC, epoch])
}

fn record_tag(key: &[u8; 32], prev: &Tag, id: &PresignatureId) -> Tag {
    mac(key, &[prev, id.session.as_bytes(), &id.index.to_be_bytes()])
}

/// This boot of the machine (Linux `boot_id`; empty elsewhere): a witness from another boot is not trusted.
fn boot_id() -> [u8; 16] {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let mut out = [0u8; 16];
    if let Ok(b) = hex::decode(text.trim().replace('-', ""))
        && b.len() == 16
    {
        out.copy_from_slice(&b);
    }
    out
}

/// The witness: (epoch, boot, durable record count), authenticated with the store key, in a file outside the data
/// directory, rewritten after every group commit of the spent log.
struct Witness {
    epoch: [u8; 16],
    boot: [u8; 16],
    records: u64,
}

impl Witness {
    fn encode(&self, key: &[u8; 32]) -> [u8; WITNESS_LEN] {
        let mut out = [0u8; WITNESS_LEN];
        out[..8].copy_from_slice(WITNESS_MAGIC);
        out[8..24].copy_from_slice(&self.epoch);
        out[24..40].copy_from_slice(&self.boot);
        out[40..48].copy_from_slice(&self.records.to_be_bytes());
        let tag = mac(key, &[&out[..48]]);
        out[48..].copy_from_slice(&tag);
        out
    }

    fn decode(bytes: &[u8], key: &[u8; 32]) -> Result<Self, String> {
        if bytes.len() != WITNESS_LEN || &bytes[..8] != WITNESS_MAGIC {
            return Err("not a witness file".into());
        }
        if mac(key, &[&bytes[..48]]) != bytes[48..] {
            return Err("authentication failed (damaged, or written under another store key)".into());
        }
        let mut epoch = [0u8; 16];
        epoch.copy_from_slice(&bytes[8..24]);
        let mut boot = [0u8; 16];
        boot.copy_from_slice(&bytes[24..40]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&bytes[40..48]);
        Ok(Self {
            epoch,
            boot,
            records: u64::from_be_bytes(n),
        })
    }
}

/// The durable record of spent presignature ids: an append-only file, a header binding it to the current epoch
/// and a chain of records (batch session, index, truncated HMAC-SHA256 over the previous tag and the record),
/// fsynced, then the witness updated, before a mark is reported durable; group commit: one sync covers every mark
/// waiting at that moment.
pub(crate) struct SpentLog {
    state: Mutex<SpentState>,
    synced: Condvar,
    files: Option<Mutex<LogFiles>>,
}

struct LogFiles {
    log: File,
    witness: File,
    witness_key: zeroize::Zeroizing<[u8; 32]>,
    epoch: [u8; 16],
    boot: [u8; 16],
}

struct SpentState {
    spent: HashSet<PresignatureId>,
    buffer: Vec<u8>,
    appended: u64,
    durable: u64,
    /// Records in the log file once the buffer is written.
    records: u64,
    syncing: bool,
    failed: Option<String>,
    chain: Tag,
    log_key: zeroize::Zeroizing<[u8; 32]>,
}

impl SpentState {
    fn new(spent: HashSet<PresignatureId>) -> Self {
        Self {
            spent,
            buffer: Vec::new(),
            appended: 0,
            durable: 0,
            records: 0,
            syncing: false,
            failed: None,
            chain: [0; TAG_LEN],
            log_key: zeroize::Zeroizing::new([0; 32]),
        }
    }
}

impl SpentLog {
    /// A log kept in memory only (nodes without a store).
    pub(crate) fn in_memory() -> Self {
        Self {
            state: Mutex::new(SpentState::new(HashSet::new())),
            synced: Condvar::new(),
            files: None,
        }
    }

    /// A log that refuses every mark (the state could not be written): no ECDSA share is released.
    pub(crate) fn broken(why: String) -> Self {
        let mut st = SpentState::new(HashSet::new());
        st.failed = Some(why);
        Self {
            state: Mutex::new(st),
            synced: Condvar::new(),
            files: None,
        }
    }

    /// Whether `id` is recorded as spent.
    pub(crate) fn is_spent(&self, id: &PresignatureId) -> bool {
        self.state.lock().map(|s| s.spent.contains(id)).unwrap_or(true)
    }

    /// Records `id`; returns once the record and the witness are durable (`Ok(false)` if it was spent already).
    pub(crate) fn mark(&self, id: &PresignatureId) -> Result<bool, String> {
        let poisoned = |_| "spent log lock poisoned".to_string();
        let mut g = self.state.lock().map_err(poisoned)?;
        if let Some(e) = &g.failed {
            return Err(e.clone());
        }
        if !g.spent.insert(*id) {
            return Ok(false);
        }
        let Some(files) = &self.files else { return Ok(true) };
        let tag = record_tag(&g.log_key, &g.chain, id);
        g.chain = tag;
        g.buffer.extend_from_slice(id.session.as_bytes());
        g.buffer.extend_from_slice(&id.index.to_be_bytes());
        g.buffer.extend_from_slice(&tag);
        g.appended += 1;
        g.records += 1;
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
            let (upto, records) = (g.appended, g.records);
            drop(g);
            let written = files
                .lock()
                .map_err(|_| "spent log file lock poisoned".to_string())
                .and_then(|mut f| f.append(&batch, records));
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

impl LogFiles {
    /// Appends records and syncs, then rewrites the witness with the new count. The witness is synced only where
    /// the boot id is unknown: it needs to survive a crash of the process (the page cache keeps it), not a crash of
    /// the machine, after which the boot id differs and the stock is discarded anyway.
    fn append(&mut self, records_bytes: &[u8], records: u64) -> Result<(), String> {
        self.log
            .write_all(records_bytes)
            .and_then(|()| self.log.sync_data())
            .map_err(|e| format!("spent log: {e}"))?;
        self.write_witness(records, self.boot == [0; 16])
    }

    fn write_witness(&mut self, records: u64, sync: bool) -> Result<(), String> {
        let w = Witness {
            epoch: self.epoch,
            boot: self.boot,
            records,
        };
        let bytes = w.encode(&self.witness_key);
        self.witness
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.witness.write_all(&bytes))
            .and_then(|()| if sync { self.witness.sync_data() } else { Ok(()) })
            .map_err(|e| format!("presignature witness: {e}"))
    }
}

struct Marker<'a>(&'a SpentLog);

impl SpentPresignatures for Marker<'_> {
    fn mark_spent(&mut self, id: &PresignatureId) -> Result<bool, String> {
        self.0.mark(id)
    }
}

/// A live batch: listed in the sealed state.
#[derive(Clone)]
struct BatchInfo {
    key: KeyId,
    created_ms: u64,
    len: u32,
    /// Spent marks at the start of the epoch (one bit per index).
    start_spent: Vec<u8>,
    /// Presignatures of the batch still in the stock.
    left: usize,
}

fn bit(bits: &[u8], i: u32) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// What the stock persists to, when the node has a store.
struct Persist {
    epoch: [u8; 16],
    /// Serialises rewrites of the sealed state.
    writing: Mutex<()>,
}

/// What loading the stock found, for the operator (logged and shown by `tcrypto-node status`).
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadReport {
    /// Presignatures loaded.
    pub(crate) loaded: usize,
    /// Why every stored presignature was discarded, if it was.
    pub(crate) discarded_all: Option<String>,
    /// Damaged batch files moved aside, with the reason.
    pub(crate) quarantined: Vec<String>,
    /// Batches removed as abandoned (too old or over the per-key cap).
    pub(crate) expired: usize,
}

/// The node's usable presignatures, by id, with the batch bookkeeping for deleting fully spent batch files.
pub(crate) struct Stock {
    available: Mutex<HashMap<PresignatureId, (KeyId, Presignature)>>,
    batches: Mutex<BTreeMap<SessionId, BatchInfo>>,
    answered: Mutex<Answered>,
    pub(crate) spent: SpentLog,
    persist: Option<Persist>,
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

/// The sealed state as read back.
struct SavedState {
    epoch: [u8; 16],
    batches: BTreeMap<SessionId, BatchInfo>,
}

fn encode_state(epoch: &[u8; 16], batches: &BTreeMap<SessionId, BatchInfo>) -> Vec<u8> {
    let mut w = Writer::bare();
    w.raw(epoch);
    w.u32(u32::try_from(batches.len()).unwrap_or(u32::MAX));
    for (run, b) in batches {
        w.raw(run.as_bytes());
        b.key.encode(&mut w);
        w.u64(b.created_ms).u32(b.len).bytes(&b.start_spent);
    }
    w.finish()
}

fn decode_state(plain: &[u8]) -> Result<SavedState, tcrypto::codec::DecodeError> {
    let mut r = Reader::bare(plain);
    let epoch = r.array::<16>()?;
    let n = r.count(32 + 32 + 8 + 4 + 4)?;
    let mut batches = BTreeMap::new();
    for _ in 0..n {
        let run = SessionId(r.array::<32>()?);
        let key = KeyId::decode(&mut r)?;
        let created_ms = r.u64()?;
        let len = r.u32()?;
        let start_spent = r.bytes()?.to_vec();
        batches.insert(
            run,
            BatchInfo {
                key,
                created_ms,
                len,
                start_spent,
                left: 0,
            },
        );
    }
    r.finish()?;
    Ok(SavedState { epoch, batches })
}

/// Reads the spent log: its epoch, the marks, the number of whole records and whether the chain verifies.
fn read_log(bytes: &[u8], key: &[u8; 32]) -> Result<([u8; 16], Vec<PresignatureId>), String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != LOG_MAGIC {
        return Err("no valid header".into());
    }
    let mut epoch = [0u8; 16];
    epoch.copy_from_slice(&bytes[8..24]);
    let mut chain = header_tag(key, &epoch);
    if bytes[24..HEADER_LEN] != chain {
        return Err("header authentication failed".into());
    }
    // A torn last record (a crash during its write: its fsync never completed and the witness never counted it,
    // so no share was released for it) is left out.
    let mut ids = Vec::new();
    for (i, rec) in bytes[HEADER_LEN..].chunks_exact(RECORD_LEN).enumerate() {
        let mut session = [0u8; 32];
        session.copy_from_slice(&rec[..32]);
        let mut index = [0u8; 4];
        index.copy_from_slice(&rec[32..36]);
        let id = PresignatureId {
            session: SessionId(session),
            index: u32::from_be_bytes(index),
        };
        let tag = record_tag(key, &chain, &id);
        if rec[36..] != tag {
            return Err(format!("record {i} fails authentication"));
        }
        chain = tag;
        ids.push(id);
    }
    Ok((epoch, ids))
}

impl Stock {
    /// A stock kept in memory only (nodes without a store).
    pub(crate) fn in_memory() -> Self {
        Self::with(SpentLog::in_memory(), None)
    }

    fn with(spent: SpentLog, persist: Option<Persist>) -> Self {
        Self {
            available: Mutex::new(HashMap::new()),
            batches: Mutex::new(BTreeMap::new()),
            answered: Mutex::new(Answered::default()),
            spent,
            persist,
        }
    }

    /// Opens the stock of a store: checks the sealed state, the spent log and the witness against each other,
    /// loads the live batches (or discards every batch when their spent state is in doubt), then starts a new
    /// epoch. Never fails: when the state cannot be written, the stock refuses every signature.
    pub(crate) fn open(store: Arc<SecretStore>, witness_path: &Path, now_ms: u64) -> (Self, LoadReport) {
        let mut report = LoadReport::default();
        let log_key = store.mac_key("spent-presignatures log v2");
        let witness_key = store.mac_key("spent-presignatures witness v1");
        let log_path = store.dir().join(SPENT_LOG);
        let (trusted, spent_in_log) =
            match Self::check(&store, &log_path, witness_path, &log_key, &witness_key) {
                Ok(t) => t,
                Err(why) => {
                    report.discarded_all = Some(why);
                    (None, Vec::new())
                }
            };
        let mut available = HashMap::new();
        let mut live = BTreeMap::new();
        if let Some(saved) = trusted {
            let spent: HashSet<PresignatureId> = spent_in_log.into_iter().collect();
            Self::load_batches(
                &store,
                saved,
                &spent,
                now_ms,
                &mut available,
                &mut live,
                &mut report,
            );
        }
        // Batch files not live (fully spent, expired, discarded, or never committed to the state) are removed.
        let names = store.list().unwrap_or_default();
        for name in names {
            if let Some(run) = name.strip_prefix(BATCH_PREFIX)
                && !live.keys().any(|r: &SessionId| r.to_string() == run)
            {
                let _ = store.delete(&name);
            }
        }
        // The new epoch: state (with the spent marks folded into the bitmaps), an empty log, the witness.
        let mut epoch = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut epoch);
        let boot = boot_id();
        let started = (|| -> Result<LogFiles, String> {
            store
                .put(STATE_NAME, &encode_state(&epoch, &live), &mut rand::rng())
                .map_err(|e| e.to_string())?;
            let mut header = Vec::with_capacity(HEADER_LEN);
            header.extend_from_slice(LOG_MAGIC);
            header.extend_from_slice(&epoch);
            header.extend_from_slice(&header_tag(&log_key, &epoch));
            crate::node::store::write_atomic(store.dir(), SPENT_LOG, &header, 0)
                .map_err(|e| e.to_string())?;
            let log = crate::node::store::private_file_options()
                .append(true)
                .open(&log_path)
                .map_err(|e| format!("{}: {e}", log_path.display()))?;
            if let Some(parent) = witness_path.parent()
                && !parent.as_os_str().is_empty()
            {
                crate::node::store::create_private_dir(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let witness = crate::node::store::private_file_options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(witness_path)
                .map_err(|e| format!("{}: {e}", witness_path.display()))?;
            let mut files = LogFiles {
                log,
                witness,
                witness_key,
                epoch,
                boot,
            };
            files.write_witness(0, true)?;
            files
                .witness
                .set_len(WITNESS_LEN as u64)
                .map_err(|e| e.to_string())?;
            Ok(files)
        })();
        let spent_ids: HashSet<PresignatureId> = live
            .iter()
            .flat_map(|(run, b)| {
                (0..b.len)
                    .filter(|i| bit(&b.start_spent, *i))
                    .map(|index| PresignatureId { session: *run, index })
            })
            .collect();
        let spent = match started {
            Ok(files) => {
                let mut st = SpentState::new(spent_ids);
                st.chain = header_tag(&log_key, &epoch);
                st.log_key = log_key;
                SpentLog {
                    state: Mutex::new(st),
                    synced: Condvar::new(),
                    files: Some(Mutex::new(files)),
                }
            }
            Err(e) => {
                report.discarded_all = Some(format!("cannot start the spent-presignature log: {e}"));
                available.clear();
                live.clear();
                SpentLog::broken(format!("spent-presignature log unavailable: {e}"))
            }
        };
        report.loaded = available.len();
        let stock = Self::with(
            spent,
            Some(Persist {
                epoch,
                writing: Mutex::new(()),
            }),
        );
        if let (Ok(mut a), Ok(mut b)) = (stock.available.lock(), stock.batches.lock()) {
            *a = available;
            *b = live;
        }
        (stock, report)
    }

    /// Checks state, log and witness; returns the trusted state and the marks of the log, or why nothing stored
    /// can be trusted. `Ok((None, _))`: a store that never had presignatures.
    fn check(
        store: &SecretStore,
        log_path: &Path,
        witness_path: &Path,
        log_key: &[u8; 32],
        witness_key: &[u8; 32],
    ) -> Result<(Option<SavedState>, Vec<PresignatureId>), String> {
        let state = match store.get(STATE_NAME) {
            Ok(Some(plain)) => Some(decode_state(&plain).map_err(|e| {
                let path = store.path_of(STATE_NAME);
                let moved = store.quarantine(STATE_NAME).map(|p| p.display().to_string());
                format!(
                    "{} is damaged ({e}); moved to {}",
                    path.display(),
                    moved.unwrap_or_default()
                )
            })?),
            Ok(None) => None,
            Err(e) => {
                let moved = store.quarantine(STATE_NAME).map(|p| p.display().to_string());
                return Err(format!("{e}; moved to {}", moved.unwrap_or_default()));
            }
        };
        let log = match std::fs::read(log_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", log_path.display())),
        };
        let witness = match std::fs::read(witness_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", witness_path.display())),
        };
        let Some(state) = state else {
            let batches = store
                .list()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|n| n.starts_with(BATCH_PREFIX))
                .count();
            if batches == 0 && log.as_ref().is_none_or(|l| l.len() <= HEADER_LEN) {
                return Ok((None, Vec::new()));
            }
            return Err(format!(
                "{} is missing while {batches} presignature batches and a spent log exist (deleted, or a store \
                 from before this format)",
                store.path_of(STATE_NAME).display()
            ));
        };
        let log = log.ok_or_else(|| format!("{} is missing", log_path.display()))?;
        let (epoch, ids) =
            read_log(&log, log_key).map_err(|e| format!("{} is damaged: {e}", log_path.display()))?;
        let witness = witness.ok_or_else(|| {
            format!(
                "{} is missing (deleted, another machine, or a store restored from a copy)",
                witness_path.display()
            )
        })?;
        let witness = Witness::decode(&witness, witness_key)
            .map_err(|e| format!("{} is damaged: {e}", witness_path.display()))?;
        if state.epoch != epoch || witness.epoch != epoch {
            return Err(format!(
                "{}, {} and {} are from different epochs (a store or log restored from a copy, or a crash while \
                 starting)",
                store.path_of(STATE_NAME).display(),
                log_path.display(),
                witness_path.display()
            ));
        }
        if witness.boot != boot_id() {
            return Err(format!(
                "{} was written before the machine last booted (a reboot, or a whole machine restored from a copy)",
                witness_path.display()
            ));
        }
        if (ids.len() as u64) < witness.records {
            return Err(format!(
                "{} holds {} spent marks but {} were made durable (truncated, or an older copy)",
                log_path.display(),
                ids.len(),
                witness.records
            ));
        }
        Ok((Some(state), ids))
    }

    /// Decrypts the live batches of a trusted state, leaving out spent presignatures, quarantining damaged files
    /// and dropping abandoned batches.
    fn load_batches(
        store: &SecretStore,
        saved: SavedState,
        spent: &HashSet<PresignatureId>,
        now_ms: u64,
        available: &mut HashMap<PresignatureId, (KeyId, Presignature)>,
        live: &mut BTreeMap<SessionId, BatchInfo>,
        report: &mut LoadReport,
    ) {
        // Newest first, so the per-key cap drops the oldest.
        let mut order: Vec<(SessionId, BatchInfo)> = saved.batches.into_iter().collect();
        order.sort_by_key(|(_, b)| std::cmp::Reverse(b.created_ms));
        let mut per_key: HashMap<KeyId, usize> = HashMap::new();
        for (run, mut info) in order {
            let held = per_key.entry(info.key).or_default();
            if now_ms.saturating_sub(info.created_ms) > MAX_BATCH_AGE_MS || *held >= MAX_STOCK_PER_KEY {
                report.expired += 1;
                continue;
            }
            let name = batch_name(&run);
            let batch = match read_batch(store, &name, &run, &info) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(why) => {
                    let moved = store.quarantine(&name).map(|p| p.display().to_string());
                    report
                        .quarantined
                        .push(format!("{why}; moved to {}", moved.unwrap_or_default()));
                    continue;
                }
            };
            for id in spent.iter().filter(|id| id.session == run) {
                if let Some(byte) = info.start_spent.get_mut((id.index / 8) as usize) {
                    *byte |= 1 << (id.index % 8);
                }
            }
            let fresh: Vec<Presignature> = batch
                .into_iter()
                .filter(|p| !bit(&info.start_spent, p.id().index))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            *held += fresh.len();
            info.left = fresh.len();
            for p in fresh {
                available.insert(p.id(), (info.key, p));
            }
            live.insert(run, info);
        }
    }

    /// Stores a committed batch encrypted (crash-safe write), lists it in the sealed state, and makes it usable.
    pub(crate) fn commit(
        &self,
        store: Option<&SecretStore>,
        key: KeyId,
        run: SessionId,
        presignatures: Vec<Presignature>,
        now_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<usize, (ErrorCode, String)> {
        let n = presignatures.len();
        let len = u32::try_from(n).map_err(|_| (ErrorCode::BadEncoding, "batch too large".to_string()))?;
        let info = BatchInfo {
            key,
            created_ms: now_ms,
            len,
            start_spent: vec![0; n.div_ceil(8)],
            left: n,
        };
        if let (Some(store), Some(persist)) = (store, &self.persist) {
            let mut w = Writer::bare();
            key.encode(&mut w);
            w.u32(len);
            for p in &presignatures {
                w.bytes(&p.encode());
            }
            let plain = zeroize::Zeroizing::new(w.finish());
            store
                .put(&batch_name(&run), &plain, rng)
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
            let _g = persist.writing.lock().map_err(|_| {
                (
                    ErrorCode::Internal,
                    "presignature state lock poisoned".to_string(),
                )
            })?;
            let (live, dropped) = {
                let mut b = self
                    .batches
                    .lock()
                    .map_err(|_| (ErrorCode::Internal, "batch table lock poisoned".to_string()))?;
                let dropped = expire(&mut b, key, now_ms, n);
                let mut next = b.clone();
                next.insert(run, info.clone());
                (next, dropped)
            };
            store
                .put(STATE_NAME, &encode_state(&persist.epoch, &live), rng)
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
            if let Ok(mut b) = self.batches.lock() {
                *b = live;
            }
            self.drop_batches(store, &dropped);
        } else if let Ok(mut b) = self.batches.lock() {
            let dropped = expire(&mut b, key, now_ms, n);
            b.insert(run, info);
            drop(b);
            if let Ok(mut a) = self.available.lock() {
                a.retain(|id, _| !dropped.contains(&id.session));
            }
        }
        if let Ok(mut a) = self.available.lock() {
            for p in presignatures {
                a.insert(p.id(), (key, p));
            }
        }
        Ok(n)
    }

    fn drop_batches(&self, store: &SecretStore, dropped: &[SessionId]) {
        if dropped.is_empty() {
            return;
        }
        if let Ok(mut a) = self.available.lock() {
            a.retain(|id, _| !dropped.contains(&id.session));
        }
        for run in dropped {
            let _ = store.delete(&batch_name(run));
        }
        tracing::info!(
            batches = dropped.len(),
            "abandoned presignature batches discarded"
        );
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
        let emptied = self.batches.lock().ok().is_some_and(|mut b| {
            b.get_mut(&id.session).is_some_and(|info| {
                info.left = info.left.saturating_sub(1);
                info.left == 0
            })
        });
        // The file goes; the state still lists the batch until its next rewrite, which is harmless (a listed
        // batch without a file has nothing to load).
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

    /// Discards every presignature of `key`, in memory and on disk (a reshare replaced the share they were made
    /// with): the sealed batch list is rewritten without them first, then their files go. Fails closed: if the
    /// list cannot be rewritten the presignatures are still gone from memory and cannot be used by this process.
    pub(crate) fn discard_key(&self, store: Option<&SecretStore>, key: &KeyId, rng: &mut impl CryptoRng) {
        self.forget(key);
        let (Some(persist), Some(store)) = (self.persist.as_ref(), store) else {
            if let Ok(mut b) = self.batches.lock() {
                b.retain(|_, info| info.key != *key);
            }
            return;
        };
        let Ok(_g) = persist.writing.lock() else {
            return;
        };
        let (live, dropped) = match self.batches.lock() {
            Ok(b) => {
                let dropped: Vec<SessionId> =
                    b.iter().filter(|(_, i)| i.key == *key).map(|(r, _)| *r).collect();
                let mut live = b.clone();
                live.retain(|_, i| i.key != *key);
                (live, dropped)
            }
            Err(_) => return,
        };
        if dropped.is_empty() {
            return;
        }
        if let Err(e) = store.put(STATE_NAME, &encode_state(&persist.epoch, &live), rng) {
            tracing::error!(%key, error = %e, "presignature list not rewritten after a reshare");
            return;
        }
        if let Ok(mut b) = self.batches.lock() {
            *b = live;
        }
        self.drop_batches(store, &dropped);
    }

    /// Forgets the presignatures of a deleted key.
    pub(crate) fn forget(&self, key: &KeyId) {
        if let Ok(mut a) = self.available.lock() {
            a.retain(|_, (k, _)| k != key);
        }
    }
}

/// Removes from `batches` those too old, and for `key` the oldest beyond the cap once `adding` more arrive;
/// returns their sessions.
fn expire(
    batches: &mut BTreeMap<SessionId, BatchInfo>,
    key: KeyId,
    now_ms: u64,
    adding: usize,
) -> Vec<SessionId> {
    let mut dropped: Vec<SessionId> = batches
        .iter()
        .filter(|(_, b)| now_ms.saturating_sub(b.created_ms) > MAX_BATCH_AGE_MS)
        .map(|(r, _)| *r)
        .collect();
    let mut mine: Vec<(u64, SessionId, usize)> = batches
        .iter()
        .filter(|(r, b)| b.key == key && !dropped.contains(r))
        .map(|(r, b)| (b.created_ms, *r, b.left))
        .collect();
    mine.sort();
    let mut held: usize = mine.iter().map(|(_, _, l)| l).sum::<usize>() + adding;
    for (_, run, left) in mine {
        if held <= MAX_STOCK_PER_KEY {
            break;
        }
        held -= left;
        dropped.push(run);
    }
    for r in &dropped {
        batches.remove(r);
    }
    dropped
}

/// Reads and checks one batch file against its state entry (`None`: the file is gone).
fn read_batch(
    store: &SecretStore,
    name: &str,
    run: &SessionId,
    info: &BatchInfo,
) -> Result<Option<Vec<Presignature>>, String> {
    let path = store.path_of(name);
    let Some(plain) = store.get(name).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let bad = |e: &dyn std::fmt::Display| format!("{} is damaged: {e}", path.display());
    let mut r = Reader::bare(&plain);
    let key = KeyId::decode(&mut r).map_err(|e| bad(&e))?;
    let n = r.count(4).map_err(|e| bad(&e))?;
    let mut batch = Vec::with_capacity(n);
    for _ in 0..n {
        let bytes = r.bytes().map_err(|e| bad(&e))?;
        batch.push(Presignature::decode(bytes).map_err(|e| bad(&e))?);
    }
    r.finish().map_err(|e| bad(&e))?;
    if key != info.key
        || n != info.len as usize
        || batch
            .iter()
            .enumerate()
            .any(|(i, p)| p.id().session != *run || p.id().index as usize != i)
    {
        return Err(bad(&"it does not match its entry in the presignature state"));
    }
    Ok(Some(batch))
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
        let stock = Stock::in_memory();
        let mine = made.remove(&share.id()).unwrap();
        stock.commit(None, key, run, mine, 0, &mut rng).unwrap();
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

#[cfg(test)]
mod storage_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::node::store::{KdfCost, StoreKeySource};

    struct Fixture {
        dir: std::path::PathBuf,
        witness: std::path::PathBuf,
        store: Arc<SecretStore>,
        share: ecdsa::KeyShare,
        runs: Vec<SessionId>,
    }

    const BATCH: u32 = 8;

    /// A store holding two committed batches of one member, `spend` presignatures of the first one spent.
    fn fixture(tag: &str, spend: u32) -> (Fixture, Vec<PresignatureId>) {
        let mut rng = rand::rng();
        let dir = std::env::temp_dir().join(format!("tcrypto-presig-{tag}-{:x}", rand::random::<u64>()));
        let store = Arc::new(
            SecretStore::create(
                &dir.join("data"),
                &StoreKeySource::Passphrase(zeroize::Zeroizing::new("pw".into())),
                KdfCost::TESTING,
                &mut rng,
            )
            .unwrap(),
        );
        let witness = dir.join("witness");
        let keys = ecdsa::dealer::deal(2, 3, &mut rng).unwrap();
        let (stock, report) = Stock::open(store.clone(), &witness, 1_000);
        assert!(report.discarded_all.is_none(), "{report:?}");
        let mut runs = Vec::new();
        for _ in 0..2 {
            let refs: Vec<&ecdsa::KeyShare> = keys.iter().collect();
            let run = SessionId::random(&mut rng);
            let mut made = presign::run_in_process(&refs, run, BATCH, &mut rng).unwrap();
            let mine = made.remove(&keys[0].id()).unwrap();
            stock
                .commit(Some(&store), keys[0].key_id(), run, mine, 1_000, &mut rng)
                .unwrap();
            runs.push(run);
        }
        let share = keys.into_iter().next().unwrap();
        let mut spent = Vec::new();
        for index in 0..spend {
            let id = PresignatureId {
                session: runs[0],
                index,
            };
            stock
                .sign(
                    Some(&store),
                    share.key_id(),
                    &share,
                    id,
                    SessionId::random(&mut rng),
                    &[1; 32],
                )
                .unwrap();
            spent.push(id);
        }
        (
            Fixture {
                dir,
                witness,
                store,
                share,
                runs,
            },
            spent,
        )
    }

    impl Fixture {
        fn reopen(&self) -> (Stock, LoadReport) {
            Stock::open(self.store.clone(), &self.witness, 2_000)
        }

        fn log(&self) -> std::path::PathBuf {
            self.store.dir().join(SPENT_LOG)
        }

        /// Asks `stock` for every presignature of both batches with a fresh request; returns those it signed.
        fn usable(&self, stock: &Stock) -> Vec<PresignatureId> {
            let mut out = Vec::new();
            for run in &self.runs {
                for index in 0..BATCH {
                    let id = PresignatureId { session: *run, index };
                    let s = SessionId::random(&mut rand::rng());
                    if stock
                        .sign(
                            Some(&self.store),
                            self.share.key_id(),
                            &self.share,
                            id,
                            s,
                            &[2; 32],
                        )
                        .is_ok()
                    {
                        out.push(id);
                    }
                }
            }
            out
        }
    }

    #[test]
    fn a_restart_keeps_exactly_the_unspent_presignatures() {
        let (f, spent) = fixture("clean", 3);
        let (stock, report) = f.reopen();
        assert!(report.discarded_all.is_none(), "{report:?}");
        assert_eq!(report.loaded, 2 * BATCH as usize - 3);
        drop(stock);
        // Twice: the second start reads the marks folded into the state by the first; the log starts empty at each
        // start (start-up reads the state and the live batches, not the history).
        assert_eq!(std::fs::metadata(f.log()).unwrap().len(), HEADER_LEN as u64);
        let (stock, report) = f.reopen();
        assert_eq!(report.loaded, 2 * BATCH as usize - 3);
        let usable = f.usable(&stock);
        assert_eq!(usable.len(), 2 * BATCH as usize - 3);
        assert!(spent.iter().all(|id| !usable.contains(id)));
        // Every presignature spent: the batch files are gone and the next start lists no batch.
        drop(stock);
        assert!(
            !f.store
                .list()
                .unwrap()
                .iter()
                .any(|n| n.starts_with(BATCH_PREFIX))
        );
        let (_, report) = f.reopen();
        assert_eq!(report.loaded, 0);
        let state = decode_state(&f.store.get(STATE_NAME).unwrap().unwrap()).unwrap();
        assert!(state.batches.is_empty());
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    /// After `damage`, the next start discards every stored presignature and names why.
    fn discards_everything_after(tag: &str, damage: impl FnOnce(&Fixture), why: &str) {
        let (f, _) = fixture(tag, 3);
        damage(&f);
        let (stock, report) = f.reopen();
        let reason = report.discarded_all.clone().unwrap_or_default();
        assert!(reason.contains(why), "{tag}: {report:?}");
        assert_eq!(report.loaded, 0, "{tag}");
        assert!(f.usable(&stock).is_empty(), "{tag}: a presignature survived");
        assert!(
            !f.store
                .list()
                .unwrap()
                .iter()
                .any(|n| n.starts_with(BATCH_PREFIX)),
            "{tag}: batch files left"
        );
        drop(stock);
        // The next start is clean again (a new epoch), with nothing to load.
        let (_, report) = f.reopen();
        assert!(report.discarded_all.is_none(), "{tag}: {report:?}");
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[test]
    fn a_flipped_bit_in_the_spent_log_discards_every_presignature() {
        discards_everything_after(
            "flip",
            |f| {
                let mut b = std::fs::read(f.log()).unwrap();
                b[HEADER_LEN + RECORD_LEN + 5] ^= 0x10;
                std::fs::write(f.log(), b).unwrap();
            },
            "fails authentication",
        );
    }

    #[test]
    fn a_truncated_spent_log_discards_every_presignature() {
        discards_everything_after(
            "trunc",
            |f| {
                let len = std::fs::metadata(f.log()).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(f.log())
                    .unwrap()
                    .set_len(len - RECORD_LEN as u64)
                    .unwrap();
            },
            "were made durable",
        );
    }

    #[test]
    fn a_deleted_spent_log_discards_every_presignature() {
        discards_everything_after(
            "deleted",
            |f| std::fs::remove_file(f.log()).unwrap(),
            "is missing",
        );
    }

    #[test]
    fn a_deleted_witness_discards_every_presignature() {
        discards_everything_after(
            "witness",
            |f| std::fs::remove_file(&f.witness).unwrap(),
            "is missing",
        );
    }

    #[test]
    fn an_older_copy_of_the_spent_log_discards_every_presignature() {
        let (f, _) = fixture("older", 1);
        let old = std::fs::read(f.log()).unwrap();
        // More marks after the copy was taken, by the same running stock: reopen, spend, put the copy back.
        let (stock, _) = f.reopen();
        let copy = std::fs::read(f.log()).unwrap();
        assert_ne!(copy, old);
        for index in 1..3 {
            let id = PresignatureId {
                session: f.runs[0],
                index,
            };
            stock
                .sign(
                    Some(&f.store),
                    f.share.key_id(),
                    &f.share,
                    id,
                    SessionId::random(&mut rand::rng()),
                    &[1; 32],
                )
                .unwrap();
        }
        drop(stock);
        std::fs::write(f.log(), copy).unwrap();
        let (stock, report) = f.reopen();
        assert!(report.discarded_all.unwrap().contains("were made durable"));
        assert!(f.usable(&stock).is_empty());
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[test]
    fn a_data_directory_restored_from_a_copy_discards_every_presignature() {
        let (f, _) = fixture("restored", 2);
        let data = f.store.dir().to_path_buf();
        let backup = f.dir.join("backup");
        copy_dir(&data, &backup);
        // The node keeps running and spends more after the backup, then the copy is put back.
        let (stock, _) = f.reopen();
        let used = f.usable(&stock);
        assert!(!used.is_empty());
        drop(stock);
        std::fs::remove_dir_all(&data).unwrap();
        copy_dir(&backup, &data);
        let (stock, report) = f.reopen();
        assert!(report.discarded_all.unwrap().contains("different epochs"));
        assert!(
            f.usable(&stock).is_empty(),
            "a presignature spent after the backup came back"
        );
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[test]
    fn a_damaged_batch_file_is_quarantined_and_the_other_batch_serves() {
        let (f, spent) = fixture("batch", 2);
        let path = f.store.path_of(&batch_name(&f.runs[1]));
        let mut b = std::fs::read(&path).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(&path, b).unwrap();
        let (stock, report) = f.reopen();
        assert!(report.discarded_all.is_none(), "{report:?}");
        assert_eq!(report.quarantined.len(), 1, "{report:?}");
        assert!(
            report.quarantined[0].contains(&path.display().to_string()),
            "{report:?}"
        );
        assert!(!path.exists());
        let usable = f.usable(&stock);
        assert_eq!(usable.len(), BATCH as usize - spent.len());
        assert!(
            usable
                .iter()
                .all(|id| id.session == f.runs[0] && !spent.contains(id))
        );
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[test]
    fn abandoned_batches_are_discarded_by_age() {
        let (f, _) = fixture("age", 0);
        let (stock, report) = Stock::open(f.store.clone(), &f.witness, 1_000 + MAX_BATCH_AGE_MS + 1);
        assert_eq!(report.expired, 2);
        assert_eq!(stock.count(&f.share.key_id()), 0);
        assert!(
            !f.store
                .list()
                .unwrap()
                .iter()
                .any(|n| n.starts_with(BATCH_PREFIX))
        );
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
}
