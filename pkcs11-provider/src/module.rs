//! The module's state and every PKCS#11 function as safe Rust (PKCS#11 v3.0 §5): library initialisation,
//! slots and tokens, sessions, login, objects, cryptographic operations and key unwrapping (in the `objects`,
//! `crypto` and `unwrap` submodules).
//!
//! One [`Module`] value holds everything behind one mutex; the C ABI uses a single static instance and tests
//! create their own. The lock is only held for bookkeeping: key generation and signing call the [`Backend`]
//! after releasing it, so sessions sign concurrently. No thread and no runtime is ever created.
//!
//! Fork: the state remembers the process id that initialised it. In a child process every function answers
//! `CKR_CRYPTOKI_NOT_INITIALIZED` until the child calls `C_Initialize`, which then succeeds; the parent's state
//! (SQLite connection, sessions) is abandoned in the child without being touched.

mod crypto;
mod objects;
mod unwrap;

pub use crypto::Operation;
pub use objects::AttrRequest;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::backend::{Backend, KeyRef, UndeletedShare};
use crate::config::{BackendKind, Config};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::pin;
use crate::store::{Store, TokenRecord};

/// Maximum PIN length in bytes.
pub const MAX_PIN_LEN: usize = 255;
/// Handles of session objects start here, so they never collide with token objects (SQLite row ids).
const SESSION_OBJECT_BASE: CK_OBJECT_HANDLE = 0x4000_0000;

/// Manufacturer reported in `CK_INFO` and `CK_TOKEN_INFO`.
pub const MANUFACTURER: &str = "distributed-hsm";

/// The whole module: `None` until `C_Initialize`.
#[derive(Default)]
pub struct Module {
    state: Mutex<Option<Box<Instance>>>,
}

/// State between `C_Initialize` and `C_Finalize`.
struct Instance {
    pid: u32,
    config: Config,
    store: Store,
    backend: Arc<dyn Backend>,
    sessions: HashMap<CK_SESSION_HANDLE, Session>,
    next_session: CK_SESSION_HANDLE,
    /// Who is logged in on each slot (login state is per token, shared by the application's sessions).
    logins: HashMap<CK_SLOT_ID, CK_USER_TYPE>,
    session_objects: HashMap<CK_OBJECT_HANDLE, SessionObject>,
    next_object: CK_OBJECT_HANDLE,
    /// Seeds from `C_SeedRandom`, mixed into `C_GenerateRandom`.
    seeds: crate::random::SeedPool,
}

struct SessionObject {
    session: CK_SESSION_HANDLE,
    slot: CK_SLOT_ID,
    object: Object,
}

/// One open session.
#[derive(Default)]
struct Session {
    slot: CK_SLOT_ID,
    rw: bool,
    find: Option<Vec<CK_OBJECT_HANDLE>>,
    digest: Option<crypto::DigestOp>,
    sign: Option<crypto::SignOp>,
    verify: Option<crypto::VerifyOp>,
    /// `ulDeviceError` of `C_GetSessionInfo`: the number of key shares the session's last `C_DestroyObject` left
    /// pending deletion.
    device_error: CK_ULONG,
}

impl Module {
    /// A module that is not initialised.
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Box<Instance>>> {
        // A panic caught by the ABI guard may have poisoned the lock; the state is still structurally sound.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the initialised state of this process.
    fn with<T>(&self, f: impl FnOnce(&mut Instance) -> Result<T>) -> Result<T> {
        let mut guard = self.lock();
        match guard.as_deref_mut() {
            Some(inst) if inst.pid == std::process::id() => f(inst),
            _ => Err(Error::NotInitialized),
        }
    }

    /// `C_Initialize` from the configuration named by the environment (its `log_file` receives the module's log).
    pub fn initialize(&self) -> Result<()> {
        self.initialize_with(|| {
            let config = Config::load_from_env()?;
            install_log(&config);
            let backend = backend_for(&config)?;
            Ok((config, backend))
        })
    }

    /// `C_Initialize` with an explicit configuration and backend source (tests).
    pub fn initialize_with(&self, load: impl FnOnce() -> Result<(Config, Arc<dyn Backend>)>) -> Result<()> {
        let mut guard = self.lock();
        let pid = std::process::id();
        if let Some(old) = guard.take() {
            if old.pid == pid {
                *guard = Some(old);
                return Err(Error::AlreadyInitialized);
            }
            // Forked child: the parent's connection and sessions must not be touched here.
            std::mem::forget(old);
        }
        let (config, backend) = load().inspect_err(report_init_failure)?;
        let store = Store::open(&config.store)
            .map_err(|e| Error::Config(format!("object store {}: {e}", config.store.display())))
            .inspect_err(report_init_failure)?;
        for t in &config.tokens {
            store.ensure_token(&t.label)?;
        }
        *guard = Some(Box::new(Instance {
            pid,
            config,
            store,
            backend,
            sessions: HashMap::new(),
            next_session: 1,
            logins: HashMap::new(),
            session_objects: HashMap::new(),
            next_object: SESSION_OBJECT_BASE,
            seeds: crate::random::SeedPool::default(),
        }));
        drop(guard);
        // Shares of keys destroyed while their nodes were down (by this or an earlier process). A backend locked
        // until C_Login (the cluster's sealed coordinator identity) retries them at login.
        if let Err(e) = self.retry_pending_deletions_if_unlocked() {
            tracing::warn!(error = %e, "could not retry pending share deletions");
        }
        Ok(())
    }

    /// Destroys keys whose last object went away (the objects are already gone). A share that a node could not
    /// delete (the node is down) is recorded in the store as a pending deletion, logged, and returned; it is
    /// retried by [`Module::retry_pending_deletions`].
    fn destroy_keys(&self, backend: &dyn Backend, keys: Vec<KeyRef>) -> Vec<UndeletedShare> {
        let mut left = Vec::new();
        for k in keys {
            match backend.destroy(&k) {
                Ok(undeleted) => left.extend(undeleted.into_iter().map(|u| (k.clone(), u))),
                Err(e) => tracing::warn!(error = %e, "could not destroy key shares"),
            }
        }
        if left.is_empty() {
            return Vec::new();
        }
        for (_, u) in &left {
            tracing::error!(node = %u.node, reason = %u.reason, "key share left on a node; deletion pending");
        }
        let recorded = self.with(|i| {
            for (k, u) in &left {
                i.store.add_pending_deletion(k, &u.node, &u.reason)?;
            }
            Ok(())
        });
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record pending share deletions");
        }
        left.into_iter().map(|(_, u)| u).collect()
    }

    fn retry_pending_deletions_if_unlocked(&self) -> Result<usize> {
        if self.with(|i| Ok(i.backend.locked()))? {
            return Ok(0);
        }
        self.retry_pending_deletions()
    }

    /// Retries every pending share deletion in the store (`C_Initialize`, or the user's first `C_Login` when the
    /// backend is locked until then, and `C_DestroyObject` call it); a node
    /// that confirms is struck off, one that fails again has its attempt counted. Returns how many remain.
    pub fn retry_pending_deletions(&self) -> Result<usize> {
        let (backend, pending) = self.with(|i| Ok((i.backend.clone(), i.store.pending_deletions()?)))?;
        if pending.is_empty() {
            return Ok(0);
        }
        let outcomes: Vec<_> = pending
            .into_iter()
            .map(|p| {
                let r = backend.destroy_share(&p.key, &p.node);
                (p, r)
            })
            .collect();
        self.with(|i| {
            let mut remaining = 0;
            for (p, r) in &outcomes {
                match r {
                    Ok(()) => {
                        tracing::info!(node = %p.node, attempts = p.attempts, "pending key share deleted");
                        i.store.remove_pending_deletion(&p.key, &p.node)?;
                    }
                    Err(e) => {
                        tracing::warn!(node = %p.node, attempts = p.attempts + 1, error = %e, "key share still pending deletion");
                        i.store.add_pending_deletion(&p.key, &p.node, &e.to_string())?;
                        remaining += 1;
                    }
                }
            }
            // A destroyed object stays until every node deleted its share of the key: now it goes.
            let mut keys: Vec<&KeyRef> = outcomes.iter().map(|(p, _)| &p.key).collect();
            keys.dedup();
            for k in keys {
                if !i.store.deletion_pending(k)? {
                    let gone = i.store.delete_objects_of_key(k)?;
                    i.session_objects.retain(|_, o| o.object.key.as_ref() != Some(k));
                    tracing::info!(objects = ?gone, "every share deleted; the destroyed key's objects are gone");
                }
            }
            Ok(remaining)
        })
    }

    /// Fails with `NotInitialized` unless `C_Initialize` ran in this process.
    pub fn check_initialized(&self) -> Result<()> {
        self.with(|_| Ok(()))
    }

    /// `C_WaitForSlotEvent`. The module's slots are fixed by its configuration and their tokens are never
    /// inserted or removed, so there is never an event: `CKF_DONT_BLOCK` gets `CKR_NO_EVENT`. A blocking wait
    /// would never return (the module has no thread to end it at `C_Finalize`), so it is
    /// `CKR_FUNCTION_NOT_SUPPORTED`.
    pub fn wait_for_slot_event(&self, flags: CK_FLAGS) -> Result<()> {
        self.check_initialized()?;
        if flags & CKF_DONT_BLOCK == 0 {
            return Err(Error::FunctionNotSupported);
        }
        Err(Error::NoEvent)
    }

    /// `C_Finalize`.
    pub fn finalize(&self) -> Result<()> {
        let mut guard = self.lock();
        match guard.take() {
            Some(inst) if inst.pid == std::process::id() => Ok(()),
            Some(inst) => {
                std::mem::forget(inst);
                Err(Error::NotInitialized)
            }
            None => Err(Error::NotInitialized),
        }
    }

    /// `C_GetInfo`.
    pub fn info(&self) -> Result<CK_INFO> {
        self.with(|_| {
            Ok(CK_INFO {
                cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
                manufacturerID: padded(MANUFACTURER),
                flags: 0,
                libraryDescription: padded("threshold PKCS#11 module"),
                libraryVersion: CK_VERSION { major: 0, minor: 1 },
            })
        })
    }

    /// `C_GetSlotList`: every configured token is present.
    pub fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>> {
        self.with(|i| Ok((0..i.config.tokens.len() as CK_SLOT_ID).collect()))
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&self, slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        self.with(|i| {
            i.token_name(slot)?;
            Ok(CK_SLOT_INFO {
                slotDescription: padded("threshold cluster slot"),
                manufacturerID: padded(MANUFACTURER),
                flags: CKF_TOKEN_PRESENT,
                hardwareVersion: CK_VERSION { major: 0, minor: 1 },
                firmwareVersion: CK_VERSION { major: 0, minor: 1 },
            })
        })
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        self.with(|i| {
            let rec = i.token(slot)?;
            let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
            if rec.initialized {
                flags |= CKF_TOKEN_INITIALIZED;
            }
            if rec.user_pin.is_some() {
                flags |= CKF_USER_PIN_INITIALIZED;
            }
            let max = i.config.pin_max_tries;
            let pin_flags = |failures: u32, low: CK_FLAGS, last: CK_FLAGS, locked: CK_FLAGS| match failures {
                0 => 0,
                _ if max == 0 => low,
                f if f >= max => locked,
                f if f + 1 == max => low | last,
                _ => low,
            };
            flags |= pin_flags(
                rec.user_pin_failures,
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            );
            flags |= pin_flags(
                rec.so_pin_failures,
                CKF_SO_PIN_COUNT_LOW,
                CKF_SO_PIN_FINAL_TRY,
                CKF_SO_PIN_LOCKED,
            );
            let sessions = i.sessions.values().filter(|s| s.slot == slot);
            let count = sessions.clone().count() as CK_ULONG;
            let rw = sessions.filter(|s| s.rw).count() as CK_ULONG;
            let mut serial = [b' '; 16];
            for (d, s) in serial.iter_mut().zip(rec.serial.bytes()) {
                *d = s;
            }
            Ok(CK_TOKEN_INFO {
                label: padded(&rec.label),
                manufacturerID: padded(MANUFACTURER),
                model: padded("threshold"),
                serialNumber: serial,
                flags,
                ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
                ulSessionCount: count,
                ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
                ulRwSessionCount: rw,
                ulMaxPinLen: MAX_PIN_LEN as CK_ULONG,
                ulMinPinLen: i.config.min_pin_len as CK_ULONG,
                ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
                ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
                ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
                ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
                hardwareVersion: CK_VERSION { major: 0, minor: 1 },
                firmwareVersion: CK_VERSION { major: 0, minor: 1 },
                utcTime: [b' '; 16],
            })
        })
    }

    /// `C_GetMechanismList`.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.with(|i| {
            i.token_name(slot)?;
            Ok(crate::mechanism::mechanism_list(&i.backend.capabilities()))
        })
    }

    /// `C_GetMechanismInfo`.
    pub fn mechanism_info(&self, slot: CK_SLOT_ID, ty: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
        self.with(|i| {
            i.token_name(slot)?;
            crate::mechanism::mechanism_info(&i.backend.capabilities(), ty)
        })
    }

    /// `C_InitToken`: (re)initialises the token, destroying its objects and their keys.
    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        let (backend, destroyed) = self.with(|i| {
            let name = i.token_name(slot)?.to_string();
            check_pin_len(so_pin, i.config.min_pin_len)?;
            if i.sessions.values().any(|s| s.slot == slot) {
                return Err(Error::SessionExists);
            }
            let rec = i.token(slot)?;
            if let (true, Some(h)) = (rec.initialized, rec.so_pin.as_deref()) {
                i.check_pin(&name, true, rec.so_pin_failures, h, so_pin)?;
            }
            let label = String::from_utf8_lossy(label)
                .trim_end_matches([' ', '\0'])
                .to_string();
            let hash = pin::hash_pin(so_pin)?;
            let mut destroyed = i.store.init_token(&name, &label, &hash)?;
            i.session_objects.retain(|_, o| {
                if o.slot == slot {
                    destroyed.extend(o.object.key.clone());
                }
                o.slot != slot
            });
            i.logins.remove(&slot);
            Ok((i.backend.clone(), destroyed))
        })?;
        self.destroy_keys(backend.as_ref(), destroyed);
        Ok(())
    }

    /// `C_InitPIN`: the SO sets the user PIN.
    pub fn init_pin(&self, h: CK_SESSION_HANDLE, new_pin: &[u8]) -> Result<()> {
        let backend = self.with(|i| {
            let s = i.session(h)?;
            let slot = s.slot;
            if !(s.rw && i.logins.get(&slot) == Some(&CKU_SO)) {
                return Err(Error::UserNotLoggedIn);
            }
            check_pin_len(new_pin, i.config.min_pin_len)?;
            Ok(i.backend.clone())
        })?;
        // The cluster backend takes only a PIN that opens its sealed coordinator identity (no lock held: Argon2id).
        backend.accepts_user_pin(new_pin)?;
        self.with(|i| {
            let slot = i.session(h)?.slot;
            let name = i.token_name(slot)?.to_string();
            i.store.set_user_pin(&name, &pin::hash_pin(new_pin)?)
        })
    }

    /// `C_SetPIN`: changes the PIN of whoever is logged in (the user's in a public session).
    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let (so, name, backend) = self.with(|i| {
            let s = i.session(h)?;
            let slot = s.slot;
            if !s.rw {
                return Err(Error::SessionReadOnly);
            }
            check_pin_len(new, i.config.min_pin_len)?;
            let name = i.token_name(slot)?.to_string();
            let rec = i.token(slot)?;
            let so = i.logins.get(&slot) == Some(&CKU_SO);
            let (current, failures) = if so {
                (rec.so_pin, rec.so_pin_failures)
            } else {
                (rec.user_pin, rec.user_pin_failures)
            };
            let current = current.ok_or(Error::UserPinNotInitialized)?;
            i.check_pin(&name, so, failures, &current, old)?;
            Ok((so, name, i.backend.clone()))
        })?;
        // The user PIN seals the cluster backend's coordinator identity: re-seal it first (no lock held).
        if !so {
            backend.change_user_pin(old, new)?;
        }
        let hash = pin::hash_pin(new)?;
        self.with(|i| {
            if so {
                i.store.set_so_pin(&name, &hash)
            } else {
                i.store.set_user_pin(&name, &hash)
            }
        })
    }

    /// `C_OpenSession`.
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        self.with(|i| {
            i.token_name(slot)?;
            if flags & CKF_SERIAL_SESSION == 0 {
                return Err(Error::SessionParallelNotSupported);
            }
            let rw = flags & CKF_RW_SESSION != 0;
            if !rw && i.logins.get(&slot) == Some(&CKU_SO) {
                return Err(Error::SessionReadWriteSoExists);
            }
            let h = i.next_session;
            i.next_session += 1;
            i.sessions.insert(
                h,
                Session {
                    slot,
                    rw,
                    ..Session::default()
                },
            );
            Ok(h)
        })
    }

    /// `C_CloseSession`.
    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (backend, keys) = self.with(|i| {
            i.session(h)?;
            Ok((i.backend.clone(), i.close(h)))
        })?;
        self.destroy_keys(backend.as_ref(), keys);
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        let (backend, keys) = self.with(|i| {
            i.token_name(slot)?;
            let handles: Vec<_> = i
                .sessions
                .iter()
                .filter(|(_, s)| s.slot == slot)
                .map(|(h, _)| *h)
                .collect();
            let keys = handles.into_iter().flat_map(|h| i.close(h)).collect::<Vec<_>>();
            Ok((i.backend.clone(), keys))
        })?;
        self.destroy_keys(backend.as_ref(), keys);
        Ok(())
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        self.with(|i| {
            let s = i.session(h)?;
            let state = match (i.logins.get(&s.slot).copied(), s.rw) {
                (Some(CKU_SO), _) => CKS_RW_SO_FUNCTIONS,
                (Some(_), true) => CKS_RW_USER_FUNCTIONS,
                (Some(_), false) => CKS_RO_USER_FUNCTIONS,
                (None, true) => CKS_RW_PUBLIC_SESSION,
                (None, false) => CKS_RO_PUBLIC_SESSION,
            };
            let flags = CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 };
            Ok(CK_SESSION_INFO {
                slotID: s.slot,
                state,
                flags,
                ulDeviceError: s.device_error,
            })
        })
    }

    /// `C_Login`.
    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        let checked = self.with(|i| {
            let slot = i.session(h)?.slot;
            if user != CKU_SO && user != CKU_USER {
                return Err(if user == CKU_CONTEXT_SPECIFIC {
                    Error::OperationNotInitialized
                } else {
                    Error::UserTypeInvalid
                });
            }
            match i.logins.get(&slot) {
                Some(u) if *u == user => return Err(Error::UserAlreadyLoggedIn),
                Some(_) => return Err(Error::UserAnotherAlreadyLoggedIn),
                None => {}
            }
            if user == CKU_SO && i.sessions.values().any(|s| s.slot == slot && !s.rw) {
                return Err(Error::SessionReadOnlyExists);
            }
            let rec = i.token(slot)?;
            let (stored, failures) = if user == CKU_SO {
                (rec.so_pin.ok_or(Error::TokenNotInitialized)?, rec.so_pin_failures)
            } else {
                (
                    rec.user_pin.ok_or(Error::UserPinNotInitialized)?,
                    rec.user_pin_failures,
                )
            };
            let name = i.token_name(slot)?.to_string();
            i.check_pin(&name, user == CKU_SO, failures, &stored, pin)?;
            Ok((slot, i.backend.clone()))
        })?;
        let (slot, backend) = checked;
        // The user PIN unlocks the backend (the cluster's sealed coordinator identity; it connects then), without
        // the lock held. The login counts only once that succeeded.
        let unlocked_now = user == CKU_USER && backend.locked();
        if user == CKU_USER {
            backend.unlock(pin)?;
        }
        self.with(|i| {
            match i.logins.get(&slot) {
                Some(u) if *u == user => return Err(Error::UserAlreadyLoggedIn),
                Some(_) => return Err(Error::UserAnotherAlreadyLoggedIn),
                None => {}
            }
            i.logins.insert(slot, user);
            Ok(())
        })?;
        if unlocked_now && let Err(e) = self.retry_pending_deletions() {
            tracing::warn!(error = %e, "could not retry pending share deletions");
        }
        Ok(())
    }

    /// `C_Logout`.
    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.with(|i| {
            let slot = i.session(h)?.slot;
            i.logins.remove(&slot).map(|_| ()).ok_or(Error::UserNotLoggedIn)
        })
    }

    /// `C_GenerateRandom`: the operating system's CSPRNG with the seeds of `C_SeedRandom` mixed in (see
    /// [`crate::random`]); the bytes are made outside the module lock.
    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        let stream = self.with(|i| {
            i.session(h)?;
            Ok(i.seeds.next_stream())
        })?;
        stream.fill(out, getrandom::fill).map_err(|_| Error::Random)
    }

    /// `C_SeedRandom`: mixes the seed into the module's pool (it adds to the operating system's CSPRNG, never
    /// replaces it).
    pub fn seed_random(&self, h: CK_SESSION_HANDLE, seed: &[u8]) -> Result<()> {
        self.with(|i| {
            i.session(h)?;
            i.seeds.seed(seed);
            Ok(())
        })
    }
}

impl Instance {
    /// Checks `pin` against `stored` under the retry counter of token `name` (the SO's when `so`; `failures` is the
    /// count just read): refused as locked once `pin_max_tries` wrong PINs in a row were counted, counted when
    /// wrong, reset when right. The count lives in the store, so every process sharing it sees the same.
    fn check_pin(&self, name: &str, so: bool, failures: u32, stored: &str, pin: &[u8]) -> Result<()> {
        let max = self.config.pin_max_tries;
        if max != 0 && failures >= max {
            return Err(Error::PinLocked);
        }
        if pin::verify_pin(stored, &Zeroizing::new(pin.to_vec())) {
            if failures != 0 {
                self.store.pin_succeeded(name, so)?;
            }
            Ok(())
        } else {
            let now = self.store.pin_failed(name, so)?;
            tracing::warn!(token = name, so, failures = now, "wrong PIN");
            Err(Error::PinIncorrect)
        }
    }

    fn token_name(&self, slot: CK_SLOT_ID) -> Result<&str> {
        usize::try_from(slot)
            .ok()
            .and_then(|s| self.config.tokens.get(s))
            .map(|t| t.label.as_str())
            .ok_or(Error::SlotIdInvalid)
    }

    fn token(&self, slot: CK_SLOT_ID) -> Result<TokenRecord> {
        let name = self.token_name(slot)?;
        self.store
            .token(name)?
            .ok_or(Error::Internal("configured token missing from the store"))
    }

    fn session(&self, h: CK_SESSION_HANDLE) -> Result<&Session> {
        self.sessions.get(&h).ok_or(Error::SessionHandleInvalid)
    }

    fn session_mut(&mut self, h: CK_SESSION_HANDLE) -> Result<&mut Session> {
        self.sessions.get_mut(&h).ok_or(Error::SessionHandleInvalid)
    }

    fn user_logged_in(&self, slot: CK_SLOT_ID) -> bool {
        self.logins.get(&slot) == Some(&CKU_USER)
    }

    /// Closes a session; returns keys that only its session objects referenced.
    fn close(&mut self, h: CK_SESSION_HANDLE) -> Vec<KeyRef> {
        let Some(s) = self.sessions.remove(&h) else {
            return Vec::new();
        };
        let mut dropped = Vec::new();
        self.session_objects.retain(|_, o| {
            if o.session == h {
                dropped.extend(o.object.key.clone());
            }
            o.session != h
        });
        if !self.sessions.values().any(|x| x.slot == s.slot) {
            self.logins.remove(&s.slot);
        }
        dropped.retain(|k| !self.key_in_use(k).unwrap_or(true));
        dropped
    }

    /// Whether an object other than `h` (token or session) refers to the key.
    fn key_in_use_except(&self, k: &KeyRef, h: CK_OBJECT_HANDLE) -> Result<bool> {
        Ok(self
            .session_objects
            .iter()
            .any(|(oh, o)| *oh != h && o.object.key.as_ref() == Some(k))
            || self.store.key_in_use_except(k, h)?)
    }

    /// Removes a session or token object.
    fn remove_object(&mut self, h: CK_OBJECT_HANDLE) -> Result<()> {
        if self.session_objects.remove(&h).is_none() {
            self.store.delete_object(h)?;
        }
        Ok(())
    }

    /// Whether any remaining object (token or session) refers to the key.
    fn key_in_use(&self, k: &KeyRef) -> Result<bool> {
        Ok(self
            .session_objects
            .values()
            .any(|o| o.object.key.as_ref() == Some(k))
            || self.store.key_in_use(k)?)
    }
}

fn backend_for(config: &Config) -> Result<Arc<dyn Backend>> {
    match config.backend {
        BackendKind::Embedded => {
            let e = config
                .embedded
                .as_ref()
                .ok_or_else(|| Error::Config("backend = \"embedded\" needs an [embedded] table".into()))?;
            Ok(Arc::new(crate::backend::embedded::EmbeddedBackend::new(e)?))
        }
        BackendKind::Cluster => {
            let c = config
                .cluster
                .as_ref()
                .ok_or_else(|| Error::Config("backend = \"cluster\" needs a [cluster] table".into()))?;
            Ok(Arc::new(crate::backend::cluster::ClusterBackend::new(c)?))
        }
    }
}

fn report_init_failure(e: &Error) {
    tracing::error!(error = %e, "C_Initialize failed");
    eprintln!("tchsm-pkcs11: C_Initialize failed: {e}");
}

fn check_pin_len(pin: &[u8], min: usize) -> Result<()> {
    if pin.len() < min || pin.len() > MAX_PIN_LEN {
        Err(Error::PinLenRange)
    } else {
        Ok(())
    }
}

/// A blank-padded fixed-size field of a PKCS#11 info structure (truncated at a character boundary).
pub fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

/// Sends the module's `tracing` events to the configuration's `log_file` (once per process, and only if the host has
/// not installed a subscriber of its own). The writer is a locked file: no thread is created.
fn install_log(config: &Config) {
    let Some(path) = &config.log_file else { return };
    let file = match tcrypto_net::node::store::private_file_options()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            report_init_failure(&Error::Config(format!("log_file {}: {e}", path.display())));
            return;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(config.log_level.as_deref().unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .finish();
    // A host (or an earlier C_Initialize) that already set one keeps it.
    let _ = tracing::subscriber::set_global_default(subscriber);
}
