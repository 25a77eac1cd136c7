//! Fuzzes `pkcs11_provider::config::Config::parse`: arbitrary text never panics, and an accepted configuration
//! has at least one token and a sane threshold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkcs11_provider::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(cfg) = Config::parse(text, std::path::Path::new("/base"))
    {
        assert!(!cfg.tokens.is_empty());
        if let Some(e) = cfg.embedded {
            assert!(e.threshold >= 1 && e.threshold <= e.parties);
        }
    }
});
