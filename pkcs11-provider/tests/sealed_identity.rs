//! The cluster backend's coordinator identity is sealed with the token's user PIN: `C_Initialize` neither reads it
//! nor connects (it works with the identity file absent), `C_InitPIN` refuses a user PIN that does not open it,
//! `C_Login` of the user opens it and connects, key operations before that are refused, and `C_SetPIN` re-seals the
//! file with the new PIN. Three real `tcrypto-node` daemons; the module is driven through its Rust API.
#![allow(clippy::unwrap_used)]

mod common;

use cryptoki_sys::*;
use pkcs11_provider::backend::Backend;
use pkcs11_provider::backend::cluster::ClusterBackend;
use pkcs11_provider::config::Config;
use pkcs11_provider::error::Error;
use pkcs11_provider::mechanism::{MechParam, Mechanism};
use pkcs11_provider::module::Module;
use pkcs11_provider::object::{Template, encode_bool};
use tcrypto_net::node::store::KdfCost;
use tcrypto_net::testing::{NodeProc, pin_peers, write_coordinator_config};
use tcrypto_net::transport::identity::{IdentityError, SealedTlsIdentity, TlsIdentity};

const PASS: &str = "sealed-identity-test-passphrase";

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

#[test]
fn the_user_pin_unlocks_the_sealed_coordinator_identity_and_nothing_connects_before_login() {
    let bin = common::node_binary();
    let dir = common::scratch_dir("sealed-identity");
    let coordinator = TlsIdentity::generate("p11").unwrap();
    let mut nodes: Vec<NodeProc> = (0..3)
        .map(|i| NodeProc::create(&bin, PASS, &dir, i, 40, &coordinator))
        .collect();
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    // The coordinator file names `coordinator.id`; the sealed identity is written only after C_Initialize.
    write_coordinator_config(&dir, &coordinator, &nodes, 10_000);
    let identity = dir.join("coordinator.id");
    std::fs::remove_file(&identity).unwrap();
    let config = Config::parse(
        "store = \"s.sqlite\"\nbackend = \"cluster\"\n[[tokens]]\nlabel = \"t\"\n\
         [cluster]\ncoordinator = \"coordinator.toml\"\nthreshold = 2\n",
        &dir,
    )
    .unwrap();
    let backend: std::sync::Arc<dyn Backend> =
        std::sync::Arc::new(ClusterBackend::new(config.cluster.as_ref().unwrap()).unwrap());
    assert!(backend.locked());
    let module = Module::new();
    let b = backend.clone();
    module.initialize_with(|| Ok((config, b))).unwrap();

    let sealed = SealedTlsIdentity::seal(&coordinator, "user-pin", KdfCost::TESTING, &mut rng()).unwrap();
    std::fs::write(&identity, sealed.encode()).unwrap();
    module.init_token(0, b"so-pin", &[b' '; 32]).unwrap();
    let s = module
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    module.login(s, CKU_SO, b"so-pin").unwrap();
    // A user PIN that does not open the identity is refused.
    assert_eq!(
        module.init_pin(s, b"other-pin").unwrap_err().rv(),
        CKR_PIN_INVALID
    );
    module.init_pin(s, b"user-pin").unwrap();
    module.logout(s).unwrap();
    assert!(backend.locked(), "nothing unlocked before the user's login");

    module.login(s, CKU_USER, b"user-pin").unwrap();
    assert!(!backend.locked());
    let keygen = Mechanism {
        ty: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        param: MechParam::None,
    };
    let token = Template(vec![(CKA_TOKEN, encode_bool(true))]);
    let (_, private) = module.generate_key_pair(s, &keygen, &token, &token).unwrap();
    let eddsa = Mechanism {
        ty: CKM_EDDSA,
        param: MechParam::None,
    };
    module.sign_init(s, &eddsa, private).unwrap();
    let mut sig = [0u8; 64];
    assert_eq!(module.sign(s, b"sealed", Some(&mut sig)).unwrap(), 64);

    // C_SetPIN re-seals the identity: the old PIN no longer opens it, the new one does.
    module.set_pin(s, b"user-pin", b"new-user-pin").unwrap();
    let resealed = SealedTlsIdentity::decode(&std::fs::read(&identity).unwrap()).unwrap();
    assert!(matches!(
        resealed.open("user-pin"),
        Err(IdentityError::WrongPassphrase)
    ));
    assert_eq!(
        resealed.open("new-user-pin").unwrap().fingerprint(),
        coordinator.fingerprint()
    );
    assert!(matches!(
        module.set_pin(s, b"user-pin", b"x-pin-long"),
        Err(Error::PinIncorrect)
    ));
}

#[test]
fn a_locked_cluster_backend_refuses_key_operations_with_user_not_logged_in() {
    let dir = common::scratch_dir("sealed-identity-locked");
    let node = tcrypto_net::transport::identity::NodeIdentity::generate("n1", &mut rng()).unwrap();
    std::fs::write(
        dir.join("coordinator.toml"),
        format!(
            "identity = \"missing.identity\"\n[[nodes]]\naddress = \"127.0.0.1:9\"\npublic = \"{}\"\n",
            node.public()
                .encode()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let config = Config::parse(
        "store = \"s.sqlite\"\nbackend = \"cluster\"\n[[tokens]]\nlabel = \"t\"\n\
         [cluster]\ncoordinator = \"coordinator.toml\"\nthreshold = 1\n",
        &dir,
    )
    .unwrap();
    // The identity file is not read at construction: it may be absent until the first login.
    let backend = ClusterBackend::new(config.cluster.as_ref().unwrap()).unwrap();
    let err = backend
        .generate(pkcs11_provider::backend::KeyKind::Ed25519)
        .unwrap_err();
    assert_eq!(err.rv(), CKR_USER_NOT_LOGGED_IN);
    // Unlocking names the missing file.
    let err = backend.unlock(b"any-pin").unwrap_err().to_string();
    assert!(err.contains("missing.identity"), "{err}");
}
