//! Fuzzes what an operator's tools read from files that may have been tampered with: a backup archive's header
//! (`tcrypto_net::node::backup::Archive::decode`, before anything is decrypted) and an audit log (`audit::verify`, with
//! the input as the log file). Nothing panics; a decoded archive's parts lie within the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tcrypto_net::node::audit;
use tcrypto_net::node::backup::Archive;

fn log_path() -> &'static std::path::PathBuf {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fuzz-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir.join("audit.log")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Archive::decode(data) {
        assert!(a.meta.len() <= data.len());
    }
    static KEY: OnceLock<tcrypto_net::transport::identity::NodePublic> = OnceLock::new();
    let public = KEY.get_or_init(|| {
        tcrypto_net::transport::identity::NodeIdentity::generate("fuzz", &mut rand::rng())
            .expect("identity")
            .public()
    });
    let key = public.verifying_key().expect("own key decodes");
    std::fs::write(log_path(), data).expect("write");
    let report = audit::verify(log_path(), &key).expect("verify reads its file");
    assert!(report.entries as usize <= data.len());
});
