//! What the module adds to a signature: the embedded cluster's `Backend::sign` called directly, next to the same
//! operation through the module's `C_SignInit` + `C_Sign` (session and object lookup, mechanism mapping, local
//! verification of the result before release). Ed25519 is the cheapest scheme, so it shows the overhead best;
//! RSA-1024 (test primes) and P-256 are measured too.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use cryptoki_sys::*;
use pkcs11_provider::Module;
use pkcs11_provider::backend::embedded::EmbeddedBackend;
use pkcs11_provider::backend::{Backend, KeyKind, SignRequest};
use pkcs11_provider::config::Config;
use pkcs11_provider::mechanism::{MechParam, Mechanism};
use pkcs11_provider::object::{Template, encode_bool, encode_ulong};

fn setup() -> (Module, Arc<EmbeddedBackend>, CK_SESSION_HANDLE) {
    let dir = std::env::temp_dir().join(format!("p11-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let primes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa-test-primes.txt");
    let text = format!(
        "store = \"s.sqlite\"\nbackend = \"embedded\"\n[[tokens]]\nlabel = \"b\"\n[embedded]\ndir = \"nodes\"\n\
         threshold = 3\nparties = 5\nrsa_test_primes = \"{}\"\n",
        primes.display()
    );
    let config = Config::parse(&text, &dir).unwrap();
    let backend = Arc::new(EmbeddedBackend::new(config.embedded.as_ref().unwrap()).unwrap());
    let module = Module::new();
    let b: Arc<dyn Backend> = backend.clone();
    module.initialize_with(|| Ok((config, b))).unwrap();
    module.init_token(0, b"so-pin", &[b' '; 32]).unwrap();
    let s = module
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    module.login(s, CKU_SO, b"so-pin").unwrap();
    module.init_pin(s, b"user-pin").unwrap();
    module.logout(s).unwrap();
    module.login(s, CKU_USER, b"user-pin").unwrap();
    (module, backend, s)
}

fn bench(c: &mut Criterion) {
    let (module, backend, s) = setup();
    let none = Template::default();
    let cases = [
        (
            "ed25519",
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            none.clone(),
            KeyKind::Ed25519,
            CKM_EDDSA,
        ),
        (
            "p256",
            CKM_EC_KEY_PAIR_GEN,
            Template(vec![(
                CKA_EC_PARAMS,
                pkcs11_provider::object::P256_EC_PARAMS.to_vec(),
            )]),
            KeyKind::P256,
            CKM_ECDSA,
        ),
        (
            "rsa1024",
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            Template(vec![(CKA_MODULUS_BITS, encode_ulong(1024))]),
            KeyKind::Rsa { bits: 1024 },
            CKM_SHA256_RSA_PKCS,
        ),
    ];
    let digest = [7u8; 32];
    for (name, keygen, public_t, kind, mech) in cases {
        let m = Mechanism {
            ty: keygen,
            param: MechParam::None,
        };
        let (_, private) = module
            .generate_key_pair(s, &m, &public_t, &Template(vec![(CKA_TOKEN, encode_bool(true))]))
            .unwrap();
        let (_, key) = backend.generate(kind).unwrap();
        let request = match kind {
            KeyKind::Ed25519 => SignRequest::Ed25519 {
                message: digest.to_vec(),
            },
            KeyKind::P256 => SignRequest::Ecdsa {
                prehash: digest.to_vec(),
            },
            _ => SignRequest::RsaPkcs1 {
                hash: tcrypto::HashAlg::Sha256,
                digest: digest.to_vec(),
            },
        };
        let mut g = c.benchmark_group(format!("sign_3_of_5_{name}"));
        g.sample_size(10);
        g.bench_function("backend_direct", |b| {
            b.iter(|| backend.sign(&key, &request).unwrap())
        });
        let mech = Mechanism {
            ty: mech,
            param: MechParam::None,
        };
        g.bench_function("through_c_sign", |b| {
            b.iter(|| {
                module.sign_init(s, &mech, private).unwrap();
                let mut sig = [0u8; 128];
                module.sign(s, &digest, Some(&mut sig)).unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
