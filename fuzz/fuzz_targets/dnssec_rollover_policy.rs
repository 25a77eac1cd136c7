//! Rollover policy of dnssec-sign (`dnssec_sign::rollover::Policy::parse`, the `--policy` TOML): never panics on
//! any octets, and a policy that parses writes out (TOML) and parses back to the same policy.
#![no_main]

use std::path::Path;

use dnssec_sign::rollover::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("fuzz-policy.toml");
    let Ok(policy) = Policy::parse(&text, file) else {
        return;
    };
    let out = policy.to_toml().expect("a parsed policy serialises");
    let back =
        Policy::parse(&out, file).unwrap_or_else(|e| panic!("our own output does not parse: {e}\n{out}"));
    assert_eq!(back, policy, "{out}");
});
