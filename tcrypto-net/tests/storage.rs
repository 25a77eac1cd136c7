//! Storage at rest: crash safety of share writes, and clear errors at start.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use tcrypto_net::node::store::{KdfCost, SecretStore, StoreError, StoreKeySource};
use zeroize::Zeroizing;

const CHILD_ENV: &str = "TCRYPTO_NET_STORAGE_CHILD_DIR";
const SIZE: usize = 256 * 1024;

fn pass() -> StoreKeySource {
    StoreKeySource::Passphrase(Zeroizing::new("crash test".into()))
}

fn content(v: u8) -> Vec<u8> {
    vec![v; SIZE]
}

/// Run as a child process: rewrites the secret `share` forever with alternating contents.
#[test]
fn child_writer_loop() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = SecretStore::open(std::path::Path::new(&dir), &pass()).unwrap();
    let mut rng = rand::rng();
    println!("ready");
    for i in 0u64.. {
        store.put("share", &content((i % 2) as u8 + 1), &mut rng).unwrap();
    }
}

#[test]
fn a_share_file_written_while_the_process_is_killed_is_old_or_new_never_torn() {
    let dir = common::scratch("crash");
    let store = SecretStore::create(&dir, &pass(), KdfCost::TESTING, &mut rand::rng()).unwrap();
    store.put("share", &content(1), &mut rand::rng()).unwrap();
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writer_loop", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 37 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let got = store.get("share").unwrap().expect("share vanished");
        assert!(
            got.as_slice() == content(1) || got.as_slice() == content(2),
            "round {round}: torn share file"
        );
    }
    // Temporary files left by the kills are recognised and cleaned.
    store.remove_stale_temporaries().unwrap();
    assert_eq!(store.list().unwrap(), vec!["share".to_string()]);
}

#[test]
fn wrong_passphrase_gives_a_clear_error() {
    let dir = common::scratch("wrongpw");
    SecretStore::create(&dir, &pass(), KdfCost::TESTING, &mut rand::rng()).unwrap();
    let err =
        SecretStore::open(&dir, &StoreKeySource::Passphrase(Zeroizing::new("nope".into()))).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey(_)));
    assert!(
        err.to_string().starts_with("wrong passphrase or key file"),
        "{err}"
    );
}

#[test]
fn unwritable_data_directory_gives_a_clear_error_at_start() {
    let dir = common::scratch("ro");
    // A regular file where the data directory should be: no privilege lets us create files inside it.
    let not_a_dir = dir.join("data");
    std::fs::write(&not_a_dir, b"file").unwrap();
    let err = SecretStore::open(&not_a_dir, &pass()).unwrap_err();
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err}");
    assert!(err.to_string().contains("is not writable"), "{err}");
}
