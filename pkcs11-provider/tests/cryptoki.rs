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

use common::{SO_PIN, USER_PIN, rsa_public};
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
    let ti = ctx().get_token_info(slots[2]).unwrap(); // token 2 is never re-initialised by a test
    assert_eq!(ti.label(), "test-2");
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
    // A seed is accepted and mixed in; the output stays fresh.
    session.seed_random(b"seed").unwrap();
    let c = session.generate_random_vec(48).unwrap();
    let d = session.generate_random_vec(48).unwrap();
    assert_ne!(c, d);
    assert_ne!(c[..32], a[..]);
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

/// Generates a 1024-bit threshold RSA key pair (from the committed test primes) on token `i`.
fn rsa_key_pair(
    session: &Session,
    id: &[u8],
) -> (cryptoki::object::ObjectHandle, cryptoki::object::ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(1024.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Id(id.to_vec()),
                Attribute::Label(b"rsa".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Id(id.to_vec()),
                Attribute::Label(b"rsa".to_vec()),
                Attribute::Sign(true),
            ],
        )
        .unwrap()
}

#[test]
fn rsa_keys_sign_with_every_rsa_mechanism_and_rsa_crate_verifies() {
    use sha2::Digest as _;
    let session = user_session(5);
    let (public, private) = rsa_key_pair(&session, b"r1");
    let pk = rsa_public(&session, public);
    let msg = b"threshold RSA through cryptoki";
    let digest = sha2::Sha256::digest(msg);

    let sig = session.sign(&Mechanism::Sha256RsaPkcs, private, msg).unwrap();
    assert_eq!(sig.len(), 128);
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
        .unwrap();
    assert!(
        pk.verify(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(b"x"),
            &sig
        )
        .is_err()
    );

    let sig = session.sign(&Mechanism::Sha512RsaPkcs, private, msg).unwrap();
    pk.verify(
        rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        &sha2::Sha512::digest(msg),
        &sig,
    )
    .unwrap();
    let sig = session.sign(&Mechanism::Sha1RsaPkcs, private, msg).unwrap();
    pk.verify(
        rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
        &sha1::Sha1::digest(msg),
        &sig,
    )
    .unwrap();

    // CKM_RSA_PKCS over a DigestInfo.
    let mut di = hex_bytes("3031300d060960864801650304020105000420");
    di.extend_from_slice(&digest);
    let sig = session.sign(&Mechanism::RsaPkcs, private, &di).unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
        .unwrap();
    // Something that is not a DigestInfo is refused as such, not signed raw (and not a device error).
    assert_eq!(
        rv(session
            .sign(&Mechanism::RsaPkcs, private, &[0u8; 40])
            .unwrap_err()),
        RvError::DataInvalid
    );
    // Sizes outside what the token makes are CKR_KEY_SIZE_RANGE on both sides of the range.
    for bits in [512u64, 8192] {
        let err = session
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::ModulusBits(bits.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ],
                &[Attribute::Sign(true)],
            )
            .unwrap_err();
        assert_eq!(rv(err), RvError::KeySizeRange, "{bits} bits");
    }

    // PSS, with the hash in the mechanism and over a given digest.
    use cryptoki::mechanism::MechanismType;
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
    let params = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcsPss(params), private, msg)
        .unwrap();
    pk.verify(rsa::Pss::<sha2::Sha256>::new_with_salt(32), &digest, &sig)
        .unwrap();
    let sig = session
        .sign(&Mechanism::RsaPkcsPss(params), private, &digest)
        .unwrap();
    pk.verify(rsa::Pss::<sha2::Sha256>::new_with_salt(32), &digest, &sig)
        .unwrap();
    let bad = PkcsPssParams {
        hash_alg: MechanismType::SHA384,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    assert_eq!(
        rv(session
            .sign(&Mechanism::Sha256RsaPkcsPss(bad), private, msg)
            .unwrap_err()),
        RvError::MechanismParamInvalid
    );

    // Multi-part signing, and C_Verify of our own signature.
    session.sign_init(&Mechanism::Sha256RsaPkcs, private).unwrap();
    session.sign_update(&msg[..10]).unwrap();
    session.sign_update(&msg[10..]).unwrap();
    let sig = session.sign_final().unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
        .unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, msg, &sig)
        .unwrap();

    // A key of the wrong family for the mechanism.
    assert_eq!(
        rv(session.sign(&Mechanism::EcdsaSha256, private, msg).unwrap_err()),
        RvError::KeyTypeInconsistent
    );
}

#[test]
fn rsa_key_attributes_are_honest_and_destroy_removes_the_shares() {
    let session = user_session(6);
    let (public, private) = rsa_key_pair(&session, b"r2");
    let attrs = session
        .get_attributes(
            private,
            &[
                AttributeType::ModulusBits,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::KeyType,
                AttributeType::Id,
            ],
        )
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::ModulusBits(1024.into()),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Id(b"r2".to_vec()),
        ]
    );
    // Secret parts are never available (cryptoki skips sensitive attributes in its result).
    let secret = session
        .get_attributes(private, &[AttributeType::PrivateExponent, AttributeType::Value])
        .unwrap();
    assert!(secret.is_empty(), "{secret:?}");
    // Attributes that would make the key extractable are refused.
    assert!(
        session
            .update_attributes(private, &[Attribute::Extractable(true)])
            .is_err()
    );
    assert!(
        session
            .update_attributes(private, &[Attribute::Sensitive(false)])
            .is_err()
    );
    // Find by class and id.
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(b"r2".to_vec()),
        ])
        .unwrap();
    assert_eq!(found, vec![private]);
    // A copy refers to the same key: destroying the original keeps the copy usable.
    let copy = session
        .copy_object(private, &[Attribute::Label(b"copy".to_vec())])
        .unwrap();
    session.destroy_object(private).unwrap();
    let sig = session.sign(&Mechanism::Sha256RsaPkcs, copy, b"m").unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, b"m", &sig)
        .unwrap();
    // Destroying the last object deletes the shares on every node.
    let dir = std::path::PathBuf::from(std::env::var("TCHSM_PKCS11_CONFIG").unwrap());
    let nodes = dir.parent().unwrap().join("nodes");
    let before = share_files(&nodes);
    session.destroy_object(copy).unwrap();
    // Other tests add keys (and one removes single shares) concurrently: exactly one key vanished entirely.
    assert!(
        whole_key_gone(&before, &share_files(&nodes)),
        "the shares and public key set are gone"
    );
    assert_eq!(
        rv(session.sign(&Mechanism::Sha256RsaPkcs, copy, b"m").unwrap_err()),
        RvError::KeyHandleInvalid
    );

    // A session key pair: its shares are deleted when its session closes.
    let temp = ctx().open_rw_session(slot(6)).unwrap();
    temp.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[Attribute::ModulusBits(1024.into())],
        &[Attribute::Token(false), Attribute::Sign(true)],
    )
    .unwrap();
    let during = share_files(&nodes);
    temp.close().unwrap();
    assert!(
        whole_key_gone(&during, &share_files(&nodes)),
        "session key shares survived the session"
    );
}

/// Whether exactly one key's public key set and all its node shares (3 nodes) disappeared between two listings.
fn whole_key_gone(
    before: &std::collections::BTreeSet<(String, String)>,
    after: &std::collections::BTreeSet<(String, String)>,
) -> bool {
    let gone: Vec<_> = before.difference(after).cloned().collect();
    let keys: Vec<&String> = gone
        .iter()
        .filter(|(d, _)| d == "public")
        .map(|(_, f)| f)
        .collect();
    keys.len() == 1 && gone.iter().filter(|(_, f)| f == keys[0]).count() == 4
}

#[test]
fn several_threads_sign_at_once_and_every_signature_verifies() {
    use sha2::Digest as _;
    let s = slot(0);
    let session = user_session(0);
    let (public, private) = rsa_key_pair(&session, b"r0");
    let pk = rsa_public(&session, public);
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let pk = &pk;
            scope.spawn(move || {
                let mine = ctx().open_ro_session(s).unwrap();
                for i in 0..4u8 {
                    let msg = [t, i, 42];
                    let sig = mine.sign(&Mechanism::Sha256RsaPkcs, private, &msg).unwrap();
                    pk.verify(
                        rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                        &sha2::Sha256::digest(msg),
                        &sig,
                    )
                    .unwrap();
                }
            });
        }
    });
    // Without login the private key cannot be used.
    let other = ctx().open_ro_session(s).unwrap();
    session.logout().unwrap();
    assert_eq!(
        rv(other.sign(&Mechanism::Sha256RsaPkcs, private, b"m").unwrap_err()),
        RvError::UserNotLoggedIn
    );
}

/// (node directory, file name) of every share file.
fn share_files(dir: &std::path::Path) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for node in std::fs::read_dir(dir).unwrap() {
        let node = node.unwrap();
        for f in std::fs::read_dir(node.path()).unwrap() {
            let f = f.unwrap();
            out.insert((
                node.file_name().into_string().unwrap(),
                f.file_name().into_string().unwrap(),
            ));
        }
    }
    out
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn imported_rsa_private_key_is_split_across_nodes_and_signs() {
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
    use sha2::Digest as _;
    let session = user_session(7);
    // A key over two committed safe primes (the dealer's split needs safe primes).
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa-test-primes.txt"),
    )
    .unwrap();
    let primes: Vec<_> = fixture
        .lines()
        .filter(|l| !l.starts_with('#') && l.len() == 128)
        .map(|l| rsa::BoxedUint::from_be_slice(&hex_bytes(l), 512).unwrap())
        .collect();
    let key = rsa::PrivateKey::from_p_q(
        primes[0].clone(),
        primes[1].clone(),
        rsa::BoxedUint::from_be_slice(&[1, 0, 1], 24).unwrap(),
    )
    .unwrap();
    let be = |x: &rsa::BoxedUint| x.to_be_bytes_trimmed_vartime().to_vec();
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Id(b"imp".to_vec()),
            Attribute::Modulus(be(key.n())),
            Attribute::PublicExponent(be(key.e())),
            Attribute::PrivateExponent(be(key.d())),
            Attribute::Prime1(be(&key.primes()[0])),
            Attribute::Prime2(be(&key.primes()[1])),
        ])
        .unwrap();
    let attrs = session
        .get_attributes(
            private,
            &[
                AttributeType::Local,
                AttributeType::NeverExtractable,
                AttributeType::Modulus,
            ],
        )
        .unwrap();
    assert_eq!(
        &attrs[..2],
        &[Attribute::Local(false), Attribute::NeverExtractable(false)]
    );
    assert_eq!(attrs[2], Attribute::Modulus(be(key.n())));
    // The private exponent was not stored.
    assert!(
        session
            .get_attributes(private, &[AttributeType::PrivateExponent])
            .unwrap()
            .is_empty()
    );
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, b"imported")
        .unwrap();
    rsa::PublicKey::from(&key)
        .verify(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(b"imported"),
            &sig,
        )
        .unwrap();
}

#[test]
fn p256_keys_from_the_dkg_sign_ecdsa_that_p256_verifies() {
    let session = user_session(8);
    let (public, private, vk) = common::p256_key_pair(&session, b"ec");
    common::p256_signs_with_every_ecdsa_mechanism(&session, public, private, &vk, b"embedded");
    let msg = b"threshold ECDSA through cryptoki";
    // An RSA mechanism on an EC key.
    assert_eq!(
        rv(session.sign(&Mechanism::Sha256RsaPkcs, private, msg).unwrap_err()),
        RvError::KeyTypeInconsistent
    );
    // An unsupported curve.
    let secp384 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    let err = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(secp384)],
            &[Attribute::Sign(true)],
        )
        .unwrap_err();
    assert_eq!(rv(err), RvError::CurveNotSupported);
}

#[test]
fn ed25519_keys_from_the_dkg_sign_with_frost_that_dalek_verifies() {
    let session = user_session(9);
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(b"\x13\x0cedwards25519".to_vec()),
            ],
            &[Attribute::Token(true), Attribute::Sign(true)],
        )
        .unwrap();
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint, AttributeType::KeyType])
        .unwrap();
    let Attribute::EcPoint(point) = &attrs[0] else {
        panic!()
    };
    assert_eq!(attrs[1], Attribute::KeyType(KeyType::EC_EDWARDS));
    assert_eq!(&point[..2], &[0x04, 32]);
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&point[2..].try_into().unwrap()).unwrap();
    let eddsa = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
        cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
    ));
    let msg = b"threshold Ed25519 through cryptoki";
    let sig = session.sign(&eddsa, private, msg).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
    vk.verify_strict(msg, &sig).unwrap();
    assert!(vk.verify_strict(b"other", &sig).is_err());
    session.verify(&eddsa, public, msg, &sig.to_bytes()).unwrap();
}

#[test]
fn a_node_without_its_share_is_skipped_while_k_nodes_answer() {
    let session = user_session(10);
    let nodes = std::path::PathBuf::from(std::env::var("TCHSM_PKCS11_CONFIG").unwrap())
        .parent()
        .unwrap()
        .join("nodes");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::Token(true)],
            &[Attribute::Token(true), Attribute::Sign(true)],
        )
        .unwrap();
    // The embedded cluster names an Ed25519 key's share files after its group public key.
    let Attribute::EcPoint(point) = &session.get_attributes(public, &[AttributeType::EcPoint]).unwrap()[0]
    else {
        panic!()
    };
    let name = format!(
        "03{}",
        point[2..].iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let eddsa = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
        cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
    ));
    std::fs::remove_file(nodes.join("node-1").join(&name)).unwrap();
    // 2-of-3: nodes 2 and 3 still answer, so the caller sees a valid signature.
    let sig = session.sign(&eddsa, private, b"m").unwrap();
    session.verify(&eddsa, public, b"m", &sig).unwrap();
    // With a second node gone, signing fails cleanly (CKR_DEVICE_ERROR), never with a bad signature.
    std::fs::remove_file(nodes.join("node-2").join(&name)).unwrap();
    assert_eq!(
        rv(session.sign(&eddsa, private, b"m").unwrap_err()),
        RvError::DeviceError
    );
}

#[test]
fn wrong_pins_count_down_lock_the_pin_and_the_so_unlocks_the_user_pin() {
    // Token 11 is this test's alone (its SO PIN ends locked); the configured limit is the default, 10.
    let s = slot(11);
    let session = user_session(11);
    session.logout().unwrap();
    let user = AuthPin::new(USER_PIN.into());
    let wrong = AuthPin::new("wrong-pin".into());
    let login = |pin: &AuthPin| session.login(UserType::User, Some(pin)).map_err(rv);
    // A right PIN starts the count again.
    for _ in 0..3 {
        assert_eq!(login(&wrong), Err(RvError::PinIncorrect));
    }
    assert!(ctx().get_token_info(s).unwrap().user_pin_count_low());
    login(&user).unwrap();
    session.logout().unwrap();
    let ti = ctx().get_token_info(s).unwrap();
    assert!(!ti.user_pin_count_low() && !ti.user_pin_final_try() && !ti.user_pin_locked());
    // Nine wrong: the next is the last try.
    for _ in 0..9 {
        assert_eq!(login(&wrong), Err(RvError::PinIncorrect));
    }
    let ti = ctx().get_token_info(s).unwrap();
    assert!(ti.user_pin_count_low() && ti.user_pin_final_try() && !ti.user_pin_locked());
    assert_eq!(login(&wrong), Err(RvError::PinIncorrect));
    // Locked: even the right PIN is refused, and C_SetPIN too.
    assert!(ctx().get_token_info(s).unwrap().user_pin_locked());
    assert_eq!(login(&user), Err(RvError::PinLocked));
    assert_eq!(
        rv(session
            .set_pin(&user, &AuthPin::new("another-pin".into()))
            .unwrap_err()),
        RvError::PinLocked
    );
    // The SO sets a new user PIN: unlocked.
    let so_pin = AuthPin::new(SO_PIN.into());
    session.login(UserType::So, Some(&so_pin)).unwrap();
    let fresh = AuthPin::new("fresh-user-pin".into());
    session.init_pin(&fresh).unwrap();
    session.logout().unwrap();
    assert!(!ctx().get_token_info(s).unwrap().user_pin_locked());
    login(&fresh).unwrap();
    session.logout().unwrap();
    // The SO PIN locks the same way, and then nothing opens it (not even C_InitToken, which it guards).
    for _ in 0..10 {
        assert_eq!(
            rv(session.login(UserType::So, Some(&wrong)).unwrap_err()),
            RvError::PinIncorrect
        );
    }
    assert!(ctx().get_token_info(s).unwrap().so_pin_locked());
    assert_eq!(
        rv(session.login(UserType::So, Some(&so_pin)).unwrap_err()),
        RvError::PinLocked
    );
    session.close().unwrap();
    assert_eq!(
        rv(ctx().init_token(s, &so_pin, "x").unwrap_err()),
        RvError::PinLocked
    );
    // Each wrong PIN is in the module's log (the configuration's log_file), as plain text.
    let cfg = std::path::PathBuf::from(std::env::var_os("TCHSM_PKCS11_CONFIG").unwrap());
    let log = std::fs::read_to_string(cfg.with_file_name("module.log")).unwrap();
    let wrong = log
        .lines()
        .filter(|l| l.contains("wrong PIN") && l.contains("test-11"));
    assert!(wrong.count() >= 23, "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the log");
}

#[test]
fn imported_p256_and_ed25519_private_keys_sign_under_their_original_public_keys() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use sha2::Digest as _;
    let session = user_session(12);
    let imported = |key_type, params: &[u8], value: Vec<u8>, id: &[u8]| {
        let h = session
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(key_type),
                Attribute::Token(true),
                Attribute::Id(id.to_vec()),
                Attribute::EcParams(params.to_vec()),
                Attribute::Value(value),
            ])
            .unwrap();
        // Imported, not born in the token.
        let flags = session
            .get_attributes(
                h,
                &[
                    AttributeType::Local,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Value,
                ],
            )
            .unwrap();
        assert_eq!(
            flags,
            [
                Attribute::Local(false),
                Attribute::AlwaysSensitive(false),
                Attribute::NeverExtractable(false)
            ],
            "the private value must not be readable"
        );
        h
    };

    // Ed25519: the RFC 8032 section 7.1 TEST 1 secret key; signatures verify under its public key.
    let seed = hex_bytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let rfc_public = hex_bytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let ed = imported(KeyType::EC_EDWARDS, b"\x13\x0cedwards25519", seed, b"ed");
    let eddsa = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
        cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
    ));
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&rfc_public.try_into().unwrap()).unwrap();
    let msg = b"an imported Ed25519 key";
    let sig = session.sign(&eddsa, ed, msg).unwrap();
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_slice(&sig).unwrap())
        .unwrap();

    // P-256: the RFC 6979 appendix A.2.5 private key; signatures verify under its public key.
    let scalar = hex_bytes("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
    let sk = p256::SecretKey::from_slice(&scalar).unwrap();
    let p256_params = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let ec = imported(KeyType::EC, &p256_params, scalar, b"ec");
    let digest = sha2::Sha256::digest(b"an imported P-256 key");
    let sig = session.sign(&Mechanism::Ecdsa, ec, &digest).unwrap();
    p256::ecdsa::VerifyingKey::from(sk.public_key())
        .verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&sig).unwrap())
        .unwrap();

    // Other curves are refused as such, nothing stored.
    let secp384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    let err = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(secp384.to_vec()),
            Attribute::Value(vec![7; 48]),
        ])
        .unwrap_err();
    assert_eq!(rv(err), RvError::CurveNotSupported);
}
