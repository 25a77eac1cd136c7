//! Signatures per second through `C_Sign` from several threads, for any PKCS#11 module.
//!
//! ```text
//! cargo run --release -p pkcs11-provider --example sign_rate -- <module.so> [threads] [seconds]
//! ```
//!
//! Initialises the first slot's token (SO PIN `so-pin-1234`, user PIN `user-pin-5678`), creates an RSA-2048 key
//! pair, signs `CKM_SHA256_RSA_PKCS` from `threads` sessions for `seconds`, verifies one signature with the
//! `rsa` crate, and prints the rate. For this module, point `TCHSM_PKCS11_CONFIG` at a configuration (for example
//! the embedded 3-of-5 cluster with `rsa_test_primes`); for SoftHSM2 set `SOFTHSM2_CONF`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::Digest as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let module = args
        .get(1)
        .expect("usage: sign_rate <module.so> [threads] [seconds]");
    let threads: usize = args.get(2).map_or(8, |s| s.parse().unwrap());
    let seconds: u64 = args.get(3).map_or(10, |s| s.parse().unwrap());
    let p11 = Pkcs11::new(module).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11.get_slots_with_token().unwrap()[0];
    let so_pin = AuthPin::new("so-pin-1234".into());
    let user_pin = AuthPin::new("user-pin-5678".into());
    p11.init_token(slot, &so_pin, "bench").unwrap();
    let so = p11.open_rw_session(slot).unwrap();
    so.login(UserType::So, Some(&so_pin)).unwrap();
    so.init_pin(&user_pin).unwrap();
    so.close().unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&user_pin)).unwrap();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
            ],
        )
        .unwrap();
    let attrs = session
        .get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])
        .unwrap();
    let (Attribute::Modulus(n), Attribute::PublicExponent(e)) = (&attrs[0], &attrs[1]) else {
        panic!()
    };
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice(n, (n.len() * 8) as u32).unwrap(),
        rsa::BoxedUint::from_be_slice(e, (e.len() * 8) as u32).unwrap(),
    )
    .unwrap();
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, b"check")
        .unwrap();
    pk.verify(
        rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        &sha2::Sha256::digest(b"check"),
        &sig,
    )
    .unwrap();

    let done = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (p11, done) = (&p11, &done);
            scope.spawn(move || {
                let s = p11.open_ro_session(slot).unwrap();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let msg = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    s.sign(&Mechanism::Sha256RsaPkcs, private, &msg).unwrap();
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    println!(
        "{module}: RSA-2048 SHA256-RSA-PKCS, {threads} threads, {total} signatures in {elapsed:.1} s = {:.1}/s ({:.0}/min)",
        total as f64 / elapsed,
        total as f64 / elapsed * 60.0
    );
}
