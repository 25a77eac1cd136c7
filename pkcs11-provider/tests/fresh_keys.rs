//! Key-pair generation never hands out a public key that an object of the token already holds: a backend that
//! repeats itself (as the embedded backend does when it deals RSA keys from the few committed test primes) is asked
//! again, and the repeated key's shares are destroyed. The backend is a test double that repeats on purpose.
//! The same directly driven module with `pin_max_tries = 3` shows the PIN limit is the configuration's.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;
use pkcs11_provider::backend::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
    UndeletedShare,
};
use pkcs11_provider::config::Config;
use pkcs11_provider::mechanism::{MechParam, Mechanism};
use pkcs11_provider::module::{AttrRequest, Module};
use pkcs11_provider::object::{Template, encode_bool};

/// Generates Ed25519 keys from a scripted list of seeds (repeats included); records which keys it still holds.
struct Repeating {
    seeds: Mutex<VecDeque<u8>>,
    held: Mutex<BTreeSet<Vec<u8>>>,
    made: Mutex<u8>,
}

impl Backend for Repeating {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ed25519: true,
            ..Capabilities::default()
        }
    }
    fn generate(&self, _: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        let seed = self
            .seeds
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(BackendError::Unsupported("script exhausted"))?;
        let mut made = self.made.lock().unwrap();
        *made += 1;
        let key = vec![seed, *made];
        self.held.lock().unwrap().insert(key.clone());
        let point = ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes();
        Ok((PublicKey::Ed25519 { point }, KeyRef(key)))
    }
    fn import(&self, _: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        Err(BackendError::Unsupported("test double"))
    }
    fn sign(&self, _: &KeyRef, _: &SignRequest) -> Result<Vec<u8>, BackendError> {
        Err(BackendError::Unsupported("test double"))
    }
    fn destroy(&self, key: &KeyRef) -> Result<Vec<UndeletedShare>, BackendError> {
        self.held.lock().unwrap().remove(&key.0);
        Ok(Vec::new())
    }
}

/// A module over a [`Repeating`] backend with `seeds`, in its own scratch directory `name` (tests run in parallel
/// threads of one process, and the scratch directory is per process and name).
fn module_with(name: &str, seeds: &[u8]) -> (Module, Arc<Repeating>, CK_SESSION_HANDLE) {
    let dir = common::scratch_dir(name);
    let backend = Arc::new(Repeating {
        seeds: Mutex::new(seeds.iter().copied().collect()),
        held: Mutex::default(),
        made: Mutex::default(),
    });
    let config = Config::parse(
        "store = \"s.sqlite\"\nbackend = \"embedded\"\n[[tokens]]\nlabel = \"t\"\n\
         [embedded]\ndir = \"nodes\"\nthreshold = 2\nparties = 3\n",
        &dir,
    )
    .unwrap();
    let module = Module::new();
    let dyn_backend = backend.clone() as Arc<dyn Backend>;
    module.initialize_with(|| Ok((config, dyn_backend))).unwrap();
    let s = common::user_session(&module);
    (module, backend, s)
}

fn keypair(
    module: &Module,
    s: CK_SESSION_HANDLE,
    token: bool,
) -> pkcs11_provider::error::Result<CK_OBJECT_HANDLE> {
    let keygen = Mechanism {
        ty: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        param: MechParam::None,
    };
    let t = Template(vec![(CKA_TOKEN, encode_bool(token))]);
    module
        .generate_key_pair(s, &keygen, &t, &t)
        .map(|(public, _)| public)
}

fn point(module: &Module, s: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut reqs = [AttrRequest {
        ty: CKA_EC_POINT,
        buf: Some(&mut buf),
        len: 0,
    }];
    module.get_attribute_value(s, h, &mut reqs).unwrap();
    let len = reqs[0].len as usize;
    buf[..len].to_vec()
}

#[test]
fn a_repeated_public_key_is_destroyed_and_generation_asked_again() {
    // Token key 1, then 1 again twice (destroyed) before 2; then a session key repeating 2 before 3.
    let (module, backend, s) = module_with("fresh-keys-repeat", &[1, 1, 1, 2, 2, 3]);
    let first = keypair(&module, s, true).unwrap();
    let second = keypair(&module, s, true).unwrap();
    let third = keypair(&module, s, false).unwrap();
    let points: BTreeSet<Vec<u8>> = [first, second, third]
        .iter()
        .map(|&h| point(&module, s, h))
        .collect();
    assert_eq!(points.len(), 3, "three distinct public keys");
    // Only the keys behind objects are still held: the repeats' shares were destroyed.
    let held: Vec<Vec<u8>> = backend.held.lock().unwrap().iter().cloned().collect();
    assert_eq!(held, vec![vec![1, 1], vec![2, 4], vec![3, 6]]);
}

#[test]
fn a_backend_that_only_repeats_gets_an_error_and_leaves_nothing_behind() {
    let (module, backend, s) = module_with("fresh-keys-only-repeats", &[7; 9]);
    keypair(&module, s, true).unwrap();
    let err = keypair(&module, s, true).unwrap_err();
    assert_eq!(err.rv(), CKR_GENERAL_ERROR, "{err:?}");
    assert_eq!(backend.held.lock().unwrap().len(), 1, "every repeat destroyed");
}

/// `pin_max_tries` is the operator's: with 3, the token flags count down from the first wrong PIN, the third locks
/// the user PIN (even the right PIN is then refused) and the SO unlocks it by setting a new one.
#[test]
fn a_configured_pin_limit_of_three_locks_the_user_pin_at_the_third_wrong_pin() {
    let dir = common::scratch_dir("pin-limit-three");
    let backend = Arc::new(Repeating {
        seeds: Mutex::default(),
        held: Mutex::default(),
        made: Mutex::default(),
    });
    let config = Config::parse(
        "store = \"s.sqlite\"\nbackend = \"embedded\"\npin_max_tries = 3\n[[tokens]]\nlabel = \"t\"\n\
         [embedded]\ndir = \"nodes\"\nthreshold = 2\nparties = 3\n",
        &dir,
    )
    .unwrap();
    let module = Module::new();
    module
        .initialize_with(|| Ok((config, backend as Arc<dyn Backend>)))
        .unwrap();
    let s = common::user_session(&module);
    module.logout(s).unwrap();
    let flags = |m: &Module| m.token_info(0).unwrap().flags;
    for (attempt, want) in [
        (1, CKF_USER_PIN_COUNT_LOW),
        (2, CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY),
    ] {
        assert!(module.login(s, CKU_USER, b"wrong").is_err(), "attempt {attempt}");
        let f = flags(&module);
        let pin_flags = f & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED);
        assert_eq!(pin_flags, want, "after {attempt} wrong PINs");
    }
    assert_eq!(
        module.login(s, CKU_USER, b"wrong").unwrap_err().rv(),
        CKR_PIN_INCORRECT
    );
    assert_ne!(flags(&module) & CKF_USER_PIN_LOCKED, 0);
    assert_eq!(
        module.login(s, CKU_USER, b"user-pin").unwrap_err().rv(),
        CKR_PIN_LOCKED
    );
    module.login(s, CKU_SO, b"so-pin").unwrap();
    module.init_pin(s, b"new-user-pin").unwrap();
    module.logout(s).unwrap();
    assert_eq!(flags(&module) & CKF_USER_PIN_LOCKED, 0);
    module.login(s, CKU_USER, b"new-user-pin").unwrap();
}
