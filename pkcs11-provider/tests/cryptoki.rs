//! The built module loaded as a host loads it: through the `cryptoki` crate (habit 21).
//!
//! One process, one loaded module, one `C_Initialize`; tests run in parallel on it, each on its own token, so
//! the module's thread safety is exercised too.
#![allow(clippy::unwrap_used)]
// integration-test helpers outside #[test] functions

// The only unsafe here: setting the configuration variable before the module is loaded.
#![allow(unsafe_code)]

mod common;

use std::sync::OnceLock;

use common::{SO_PIN, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

fn ctx() -> &'static Pkcs11 {
    static CTX: OnceLock<Pkcs11> = OnceLock::new();
    CTX.get_or_init(|| {
        let dir = common::scratch_dir("cryptoki");
        let cfg = common::write_config(&dir);
        // SAFETY: runs once, before the module reads the variable; no other code of this process changes it.
        unsafe { std::env::set_var("TCHSM_PKCS11_CONFIG", &cfg) };
        let p = Pkcs11::new(common::module_path()).unwrap();
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        p
    })
}

fn slot(i: usize) -> Slot {
    ctx().get_slots_with_token().unwrap()[i]
}

/// Initialises token `i` (SO PIN, user PIN) and returns a logged-in read-write session on it.
fn user_session(i: usize) -> Session {
    let s = slot(i);
    ctx()
        .init_token(s, &AuthPin::new(SO_PIN.into()), &format!("token {i}"))
        .unwrap();
    let so = ctx().open_rw_session(s).unwrap();
    so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    so.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    so.logout().unwrap();
    so.close().unwrap();
    let session = ctx().open_rw_session(s).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    session
}

fn rv(e: Error) -> RvError {
    match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn library_slots_tokens_and_mechanisms_are_reported() {
    let info = ctx().get_library_info().unwrap();
    assert_eq!(info.manufacturer_id(), "distributed-hsm");
    let slots = ctx().get_slots_with_token().unwrap();
    assert_eq!(slots.len(), common::TOKENS);
    let ti = ctx().get_token_info(slots[7]).unwrap();
    assert_eq!(ti.label(), "test-7");
    assert!(ti.rng() && ti.login_required());
    let mechs = ctx().get_mechanism_list(slots[0]).unwrap();
    assert!(
        mechs.contains(&cryptoki::mechanism::MechanismType::SHA256),
        "{mechs:?}"
    );
    let mi = ctx()
        .get_mechanism_info(slots[0], cryptoki::mechanism::MechanismType::SHA256)
        .unwrap();
    assert!(mi.digest());
    let bad = Slot::try_from(99u64).unwrap();
    assert_eq!(rv(ctx().get_token_info(bad).unwrap_err()), RvError::SlotIdInvalid);
}

#[test]
fn so_and_user_roles_pins_and_login_state() {
    let s = slot(1);
    let session = user_session(1);
    let ti = ctx().get_token_info(s).unwrap();
    assert!(ti.token_initialized() && ti.user_pin_initialized());
    assert_eq!(ti.label(), "token 1");
    // A second login of the same user, then the other role.
    let user = AuthPin::new(USER_PIN.into());
    assert_eq!(
        rv(session.login(UserType::User, Some(&user)).unwrap_err()),
        RvError::UserAlreadyLoggedIn
    );
    let so = AuthPin::new(SO_PIN.into());
    assert_eq!(
        rv(session.login(UserType::So, Some(&so)).unwrap_err()),
        RvError::UserAnotherAlreadyLoggedIn
    );
    // Login state is per token: a second session sees it.
    let other = ctx().open_ro_session(s).unwrap();
    assert_eq!(
        other.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoUser
    );
    session.logout().unwrap();
    assert_eq!(rv(session.logout().unwrap_err()), RvError::UserNotLoggedIn);
    assert_eq!(
        rv(session
            .login(UserType::User, Some(&AuthPin::new("wrong-pin".into())))
            .unwrap_err()),
        RvError::PinIncorrect
    );
    // SO login is refused while a read-only session exists.
    assert_eq!(
        rv(session.login(UserType::So, Some(&so)).unwrap_err()),
        RvError::SessionReadOnlyExists
    );
    other.close().unwrap();
    // The user changes the PIN; only the new one works afterwards.
    session.login(UserType::User, Some(&user)).unwrap();
    let new = AuthPin::new("new-user-pin".into());
    session.set_pin(&user, &new).unwrap();
    session.logout().unwrap();
    assert_eq!(
        rv(session.login(UserType::User, Some(&user)).unwrap_err()),
        RvError::PinIncorrect
    );
    session.login(UserType::User, Some(&new)).unwrap();
    // Re-initialising the token needs the SO PIN and no open session.
    assert_eq!(
        rv(ctx().init_token(s, &so, "x").unwrap_err()),
        RvError::SessionExists
    );
    session.close().unwrap();
    assert_eq!(
        rv(ctx()
            .init_token(s, &AuthPin::new("bad-so-pin".into()), "x")
            .unwrap_err()),
        RvError::PinIncorrect
    );
}

#[test]
fn digests_match_sha2_and_random_bytes_differ() {
    use sha2::Digest as _;
    let session = ctx().open_ro_session(slot(2)).unwrap();
    let d = session.digest(&Mechanism::Sha256, b"abc").unwrap();
    assert_eq!(d, sha2::Sha256::digest(b"abc").to_vec());
    session.digest_init(&Mechanism::Sha512).unwrap();
    session.digest_update(b"a").unwrap();
    session.digest_update(b"bc").unwrap();
    assert_eq!(
        session.digest_final().unwrap(),
        sha2::Sha512::digest(b"abc").to_vec()
    );
    let d1 = session.digest(&Mechanism::Sha1, b"").unwrap();
    assert_eq!(d1, sha1::Sha1::digest(b"").to_vec());
    let a = session.generate_random_vec(32).unwrap();
    let b = session.generate_random_vec(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_eq!(
        rv(session.seed_random(b"seed").unwrap_err()),
        RvError::RandomSeedNotSupported
    );
}

#[test]
fn objects_are_created_found_changed_copied_and_destroyed() {
    let s = slot(3);
    let session = user_session(3);
    let template = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(b"record".to_vec()),
        Attribute::Value(b"payload".to_vec()),
    ];
    let h = session.create_object(&template).unwrap();
    let found = session
        .find_objects(&[Attribute::Label(b"record".to_vec())])
        .unwrap();
    assert_eq!(found, vec![h]);
    assert!(
        session
            .find_objects(&[Attribute::Label(b"other".to_vec())])
            .unwrap()
            .is_empty()
    );
    session
        .update_attributes(h, &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    let attrs = session
        .get_attributes(h, &[AttributeType::Label, AttributeType::Value])
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::Label(b"renamed".to_vec()),
            Attribute::Value(b"payload".to_vec())
        ]
    );
    // A token object is visible from a fresh session on the same token, and persists in the store.
    let ro = ctx().open_ro_session(s).unwrap();
    assert_eq!(
        ro.find_objects(&[Attribute::Label(b"renamed".to_vec())]).unwrap(),
        vec![h]
    );
    // Session objects vanish with their session.
    let copy = session
        .copy_object(h, &[Attribute::Token(false), Attribute::Label(b"copy".to_vec())])
        .unwrap();
    assert_eq!(
        ro.find_objects(&[Attribute::Label(b"copy".to_vec())]).unwrap(),
        vec![copy]
    );
    session.destroy_object(h).unwrap();
    assert!(
        ro.find_objects(&[Attribute::Label(b"renamed".to_vec())])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        rv(session.destroy_object(h).unwrap_err()),
        RvError::ObjectHandleInvalid
    );
    // Private objects are invisible without login.
    session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"p".to_vec()),
        ])
        .unwrap();
    assert!(ro.find_objects(&[Attribute::Label(b"p".to_vec())]).unwrap().len() == 1);
    session.logout().unwrap();
    assert!(
        ro.find_objects(&[Attribute::Label(b"p".to_vec())])
            .unwrap()
            .is_empty()
    );
    // Creating a private object needs a login; a token object needs a read-write session.
    let private = [Attribute::Class(ObjectClass::DATA), Attribute::Private(true)];
    assert_eq!(
        rv(session.create_object(&private).unwrap_err()),
        RvError::UserNotLoggedIn
    );
    let token_obj = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
    ];
    assert_eq!(
        rv(ro.create_object(&token_obj).unwrap_err()),
        RvError::SessionReadOnly
    );
}

#[test]
fn imported_public_keys_verify_signatures_made_by_independent_signers() {
    let session = user_session(4);
    // Ed25519 (RFC 8032 key from a fixed seed, signed by ed25519-dalek).
    use ed25519_dalek::Signer as _;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let point = sk.verifying_key().to_bytes();
    let mut ec_point = vec![0x04, 32];
    ec_point.extend_from_slice(&point);
    let ed = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(b"\x13\x0cedwards25519".to_vec()),
            Attribute::EcPoint(ec_point),
            Attribute::Verify(true),
        ])
        .unwrap();
    let sig = sk.sign(b"message").to_bytes();
    session
        .verify(
            &Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
            ed,
            b"message",
            &sig,
        )
        .unwrap();
    let err = session
        .verify(
            &Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
            ed,
            b"messagf",
            &sig,
        )
        .unwrap_err();
    assert_eq!(rv(err), RvError::SignatureInvalid);
    // P-256 ECDSA-SHA256 (signed by the p256 crate).
    let ek = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let point = ek.verifying_key().to_sec1_point(false);
    let mut der = vec![0x04, 65];
    der.extend_from_slice(point.as_bytes());
    let ec = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            Attribute::EcPoint(der),
        ])
        .unwrap();
    let sig: p256::ecdsa::Signature = ek.sign(b"message");
    session
        .verify(&Mechanism::EcdsaSha256, ec, b"message", &sig.to_bytes())
        .unwrap();
    assert_eq!(
        rv(session
            .verify(&Mechanism::EcdsaSha256, ec, b"other", &sig.to_bytes())
            .unwrap_err()),
        RvError::SignatureInvalid
    );
    // The public key info attribute is a DER SPKI that p256 parses back to the same key.
    use p256::pkcs8::DecodePublicKey as _;
    let Attribute::PublicKeyInfo(spki) = &session
        .get_attributes(ec, &[AttributeType::PublicKeyInfo])
        .unwrap()[0]
    else {
        panic!("no public key info")
    };
    assert_eq!(
        p256::PublicKey::from_public_key_der(spki)
            .unwrap()
            .to_sec1_bytes(),
        ek.verifying_key().to_sec1_bytes()
    );
}
