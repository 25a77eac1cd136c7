//! The module's state lock is not held while the backend works: two sessions are inside `Backend::sign` at the
//! same time. The backend here is a test double (one local Ed25519 key) that waits until both callers have
//! arrived; if the module serialised signing, the first caller would time out.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cryptoki_sys::*;
use ed25519_dalek::Signer as _;
use pkcs11_provider::backend::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
    UndeletedShare,
};
use pkcs11_provider::config::Config;
use pkcs11_provider::mechanism::{MechParam, Mechanism};
use pkcs11_provider::object::{Template, encode_bool};
use pkcs11_provider::{Error, Module};

/// Signs with one local key, but only once two callers are inside `sign` together.
struct Rendezvous {
    key: ed25519_dalek::SigningKey,
    inside: Mutex<usize>,
    arrived: Condvar,
}

impl Backend for Rendezvous {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ed25519: true,
            ..Capabilities::default()
        }
    }
    fn generate(&self, _: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        Ok((
            PublicKey::Ed25519 {
                point: self.key.verifying_key().to_bytes(),
            },
            KeyRef(b"k".to_vec()),
        ))
    }
    fn import(&self, _: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        Err(BackendError::Unsupported("test double"))
    }
    fn sign(&self, _: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        let SignRequest::Ed25519 { message } = request else {
            return Err(BackendError::Unsupported("x"));
        };
        let mut n = self.inside.lock().unwrap();
        *n += 1;
        self.arrived.notify_all();
        let (n, timeout) = self
            .arrived
            .wait_timeout_while(n, Duration::from_secs(10), |n| *n < 2)
            .unwrap();
        drop(n);
        if timeout.timed_out() {
            return Err(BackendError::Cluster(
                "the other signer never arrived: signing is serialised".into(),
            ));
        }
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
    fn destroy(&self, _: &KeyRef) -> Result<Vec<UndeletedShare>, BackendError> {
        Ok(Vec::new())
    }
}

#[test]
fn two_sessions_are_inside_the_backend_at_the_same_time() {
    let dir = common::scratch_dir("rendezvous");
    let config = Config::parse(
        "store = \"s.sqlite\"\nbackend = \"embedded\"\n[[tokens]]\nlabel = \"t\"\n\
         [embedded]\ndir = \"nodes\"\nthreshold = 2\nparties = 3\n",
        &dir,
    )
    .unwrap();
    let backend = Arc::new(Rendezvous {
        key: ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]),
        inside: Mutex::new(0),
        arrived: Condvar::new(),
    });
    let module = Module::new();
    module
        .initialize_with(|| Ok((config, backend as Arc<dyn Backend>)))
        .unwrap();
    assert!(matches!(
        module.initialize_with(|| unreachable!()),
        Err(Error::AlreadyInitialized)
    ));
    let so = common::user_session(&module);
    let keygen = Mechanism {
        ty: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        param: MechParam::None,
    };
    let (public, private) = module
        .generate_key_pair(
            so,
            &keygen,
            &Template::default(),
            &Template(vec![(CKA_TOKEN, encode_bool(false))]),
        )
        .unwrap();
    let eddsa = Mechanism {
        ty: CKM_EDDSA,
        param: MechParam::None,
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2u8)
            .map(|i| {
                let module = &module;
                let eddsa = eddsa.clone();
                scope.spawn(move || {
                    let s = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
                    module.sign_init(s, &eddsa, private).unwrap();
                    let mut sig = [0u8; 64];
                    // The length query is answered without the backend.
                    assert_eq!(module.sign(s, &[], None).unwrap(), 64);
                    let n = module.sign(s, &[i], Some(&mut sig)).unwrap();
                    assert_eq!(n, 64);
                    module.verify_init(s, &eddsa, public).unwrap();
                    module.verify(s, &[i], &sig).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    module.finalize().unwrap();
    assert!(matches!(module.finalize(), Err(Error::NotInitialized)));
}
