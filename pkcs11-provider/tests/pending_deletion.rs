//! Shares that a down node could not delete are not forgotten: `C_DestroyObject` fails with `CKR_DEVICE_ERROR`,
//! the store keeps a pending deletion per node, and the object stays (refusing to sign) until every node deleted
//! its share; later calls (`C_DestroyObject` again, any `C_DestroyObject`, `C_Initialize` in a new process) retry
//! until the node confirms, and then the object goes. The backend is a test double whose node "n2" can
//! be taken down; the multi-process version with real `tcrypto-node` daemons is in `cluster_backend.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;
use pkcs11_provider::backend::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
    UndeletedShare,
};
use pkcs11_provider::config::Config;
use pkcs11_provider::error::Error;
use pkcs11_provider::mechanism::{MechParam, Mechanism};
use pkcs11_provider::module::Module;
use pkcs11_provider::object::{Template, encode_bool};
use pkcs11_provider::store::Store;

/// Two "nodes", n1 and n2, each holding a share of every generated key; n2 can be down.
#[derive(Default)]
struct TwoNodes {
    n2_down: AtomicBool,
    /// (node, key) pairs still held.
    held: Mutex<BTreeSet<(String, Vec<u8>)>>,
    next: Mutex<u8>,
}

impl Backend for TwoNodes {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ed25519: true,
            ..Capabilities::default()
        }
    }
    fn generate(&self, _: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let key = vec![0xee, *next];
        let mut held = self.held.lock().unwrap();
        held.insert(("n1".into(), key.clone()));
        held.insert(("n2".into(), key.clone()));
        let point = ed25519_dalek::SigningKey::from_bytes(&[*next; 32])
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
        let mut left = Vec::new();
        for node in ["n1", "n2"] {
            match self.destroy_share(key, node) {
                Ok(()) => {}
                Err(e) => left.push(UndeletedShare {
                    node: node.into(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(left)
    }
    fn destroy_share(&self, key: &KeyRef, node: &str) -> Result<(), BackendError> {
        if node == "n2" && self.n2_down.load(Ordering::SeqCst) {
            return Err(BackendError::Cluster("node not connected".into()));
        }
        self.held
            .lock()
            .unwrap()
            .remove(&(node.to_string(), key.0.clone()));
        Ok(())
    }
}

impl TwoNodes {
    fn holds(&self, node: &str, key: &[u8]) -> bool {
        self.held
            .lock()
            .unwrap()
            .contains(&(node.to_string(), key.to_vec()))
    }
}

fn start(module: &Module, dir: &Path, backend: &Arc<TwoNodes>) {
    let config = Config::parse(
        "store = \"s.sqlite\"\nbackend = \"embedded\"\n[[tokens]]\nlabel = \"t\"\n\
         [embedded]\ndir = \"nodes\"\nthreshold = 2\nparties = 3\n",
        dir,
    )
    .unwrap();
    let backend = backend.clone() as Arc<dyn Backend>;
    module.initialize_with(|| Ok((config, backend))).unwrap();
}

/// Generates a token key pair; returns (public, private) handles.
fn keypair(module: &Module, s: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let keygen = Mechanism {
        ty: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        param: MechParam::None,
    };
    let token = Template(vec![(CKA_TOKEN, encode_bool(true))]);
    module.generate_key_pair(s, &keygen, &token, &token).unwrap()
}

#[test]
fn shares_on_a_down_node_stay_pending_until_a_later_call_deletes_them() {
    let dir = common::scratch_dir("pending-deletion");
    let backend = Arc::new(TwoNodes::default());
    let module = Module::new();
    start(&module, &dir, &backend);
    let s = common::user_session(&module);
    let (public, private) = keypair(&module, s);
    let (_, other) = keypair(&module, s);
    let key = vec![0xee, 1];

    // n2 down: the share on n1 goes, the share on n2 is recorded and reported, the object stays but cannot sign.
    backend.n2_down.store(true, Ordering::SeqCst);
    module.destroy_object(s, public).unwrap();
    let err = module.destroy_object(s, private).unwrap_err();
    assert!(
        matches!(&err, Error::SharesPendingDeletion { nodes } if nodes == &["n2".to_string()]),
        "{err:?}"
    );
    assert_eq!(err.rv(), CKR_DEVICE_ERROR);
    assert_eq!(module.session_info(s).unwrap().ulDeviceError, 1);
    assert!(!backend.holds("n1", &key) && backend.holds("n2", &key));
    module.object_size(s, private).unwrap();
    let eddsa = Mechanism {
        ty: CKM_EDDSA,
        param: MechParam::None,
    };
    assert!(matches!(
        module.sign_init(s, &eddsa, private),
        Err(Error::KeyFunctionNotPermitted)
    ));
    let store = Store::open(&dir.join("s.sqlite")).unwrap();
    let pending = store.pending_deletions().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].key.0.as_slice(), pending[0].node.as_str()),
        (key.as_slice(), "n2")
    );
    assert_eq!(pending[0].attempts, 1);
    assert!(pending[0].last_error.contains("not connected"), "{pending:?}");

    // Still down: each retry (explicit, or the one every C_DestroyObject starts with) counts an attempt and keeps
    // the record.
    assert_eq!(module.retry_pending_deletions().unwrap(), 1);
    assert_eq!(store.pending_deletions().unwrap()[0].attempts, 2);
    assert!(matches!(
        module.destroy_object(s, private),
        Err(Error::SharesPendingDeletion { nodes }) if nodes == ["n2".to_string()]
    ));
    assert_eq!(store.pending_deletions().unwrap()[0].attempts, 3);
    module.object_size(s, private).unwrap();

    // A new process (C_Finalize, C_Initialize) with n2 back: C_Initialize deletes the share, the record and the
    // object.
    module.finalize().unwrap();
    backend.n2_down.store(false, Ordering::SeqCst);
    start(&module, &dir, &backend);
    assert!(!backend.holds("n2", &key), "C_Initialize retried the deletion");
    assert!(store.pending_deletions().unwrap().is_empty());
    let s = module
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    module.login(s, CKU_USER, b"user-pin").unwrap();
    assert!(matches!(
        module.object_size(s, private),
        Err(Error::ObjectHandleInvalid)
    ));

    // And without a restart: the next C_DestroyObject of any object retries first.
    backend.n2_down.store(true, Ordering::SeqCst);
    assert_eq!(
        module.destroy_object(s, other).unwrap_err().rv(),
        CKR_DEVICE_ERROR
    );
    let other_key = vec![0xee, 2];
    assert!(backend.holds("n2", &other_key));
    backend.n2_down.store(false, Ordering::SeqCst);
    let (public3, _) = keypair(&module, s);
    module.destroy_object(s, public3).unwrap();
    assert!(!backend.holds("n2", &other_key));
    assert!(store.pending_deletions().unwrap().is_empty());
    assert_eq!(module.session_info(s).unwrap().ulDeviceError, 0);
    assert!(matches!(
        module.object_size(s, other),
        Err(Error::ObjectHandleInvalid)
    ));

    // The caller's own retry: C_DestroyObject again on the same object succeeds once the node is back.
    let (_, fourth) = keypair(&module, s);
    backend.n2_down.store(true, Ordering::SeqCst);
    assert_eq!(
        module.destroy_object(s, fourth).unwrap_err().rv(),
        CKR_DEVICE_ERROR
    );
    backend.n2_down.store(false, Ordering::SeqCst);
    module.destroy_object(s, fourth).unwrap();
    assert!(matches!(
        module.object_size(s, fourth),
        Err(Error::ObjectHandleInvalid)
    ));
    assert!(store.pending_deletions().unwrap().is_empty());
    module.finalize().unwrap();
}
