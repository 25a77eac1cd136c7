//! Signatures per second through `C_Sign` from several threads, for any PKCS#11 module.
//!
//! ```text
//! cargo run --release -p pkcs11-provider --example sign_rate -- <module.so> [threads] [seconds] [rsa|p256|ed25519]
//! ```
//!
//! Initialises the first slot's token (SO PIN `so-pin-1234`, user PIN `user-pin-5678`), creates a key pair
//! (RSA-2048, P-256 or Ed25519), signs (`CKM_SHA256_RSA_PKCS`, `CKM_ECDSA` over a SHA-256 hash, `CKM_EDDSA`) from `threads`
//! sessions for `seconds`, verifies one signature with the token's `C_Verify` and one RSA signature with the
//! `rsa` crate, and prints the rate per second and per minute, with this process's CPU time per signature. For
//! this module, point `TCHSM_PKCS11_CONFIG` at a configuration: the embedded 3-of-5 cluster with
//! `rsa_test_primes`, or `backend = "cluster"` with running `tcrypto-node` daemons (for example started by
//! `tcrypto-net/scripts/local-cluster.sh`); for SoftHSM2 set `SOFTHSM2_CONF`.
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
    let kind = args.get(4).map_or("rsa", String::as_str);
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
    let (keygen, public_template) = match kind {
        "p256" => (
            Mechanism::EccKeyPairGen,
            vec![
                Attribute::Token(true),
                Attribute::EcParams(vec![6, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 3, 1, 7]),
            ],
        ),
        "ed25519" => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![
                Attribute::Token(true),
                Attribute::EcParams(b"\x13\x0cedwards25519".to_vec()),
            ],
        ),
        _ => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
        ),
    };
    let private_template = [
        Attribute::Token(true),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
    ];
    let (public, private) = session
        .generate_key_pair(&keygen, &public_template, &private_template)
        .unwrap();
    let mechanism = mechanism_for(kind);
    let sig = session
        .sign(&mechanism, private, &data_for(kind, b"check"))
        .unwrap();
    session
        .verify(&mechanism, public, &data_for(kind, b"check"), &sig)
        .unwrap();
    if kind == "rsa" {
        // And with an independent verifier.
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
        pk.verify(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(b"check"),
            &sig,
        )
        .unwrap();
    }
    measure(&p11, slot, private, threads, seconds, module, kind);
}

fn mechanism_for(kind: &str) -> Mechanism<'static> {
    match kind {
        // CKM_ECDSA over a SHA-256 hash the caller computes (as OpenSSL's provider, libp11 and BIND do; SoftHSM2
        // 2.6 has no CKM_ECDSA_SHA256).
        "p256" => Mechanism::Ecdsa,
        "ed25519" => Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
            cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
        )),
        _ => Mechanism::Sha256RsaPkcs,
    }
}

/// What is passed to `C_Sign`: the message, or for `CKM_ECDSA` its SHA-256 hash.
fn data_for(kind: &str, msg: &[u8]) -> Vec<u8> {
    match kind {
        "p256" => sha2::Sha256::digest(msg).to_vec(),
        _ => msg.to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(
    p11: &Pkcs11,
    slot: cryptoki::slot::Slot,
    private: cryptoki::object::ObjectHandle,
    threads: usize,
    seconds: u64,
    module: &str,
    kind: &str,
) {
    let done = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let cpu_start = process_cpu();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let done = &done;
            scope.spawn(move || {
                let s = p11.open_ro_session(slot).unwrap();
                let mechanism = mechanism_for(kind);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let msg = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    s.sign(&mechanism, private, &data_for(kind, &msg)).unwrap();
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_start;
    let total = done.load(Ordering::Relaxed);
    println!(
        "{module}: {kind}, {threads} threads, {total} signatures in {elapsed:.1} s = {:.1}/s ({:.0}/min); \
         this process's CPU time {:.3} ms per signature ({:.0} signatures per CPU-minute)",
        total as f64 / elapsed,
        total as f64 / elapsed * 60.0,
        cpu * 1e3 / total.max(1) as f64,
        total as f64 / cpu.max(f64::MIN_POSITIVE) * 60.0
    );
}

/// CPU time of this whole process (all threads) in seconds: on a shared machine the wall-clock rate depends on the
/// load, the CPU time per signature much less. With the embedded backend it covers the whole threshold
/// computation; with the cluster backend only the coordinator side (the nodes are other processes).
fn process_cpu() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
