//! Key state file of dnssec-sign (`dnssec_sign::rollover::KeyState::parse`, `dnssec-state.toml` in a key
//! directory): never panics on any octets; a state that parses writes out (`KeyState::to_toml`, what
//! `KeyState::write` stores) and parses back to the same state; and the rollover state machine run on it (`status`,
//! `advance` with a key factory that makes fixed keys, then the same round trip) does not panic either.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use dnssec_sign::keys::Algorithm;
use dnssec_sign::rdata::Dnskey;
use dnssec_sign::rollover::{self, KeyFactory, KeyState, Policy, Role};
use dnssec_sign::{KeyError, Name};
use libfuzzer_sys::fuzz_target;

const POLICY: &str = r#"
algorithm = 13
scheme = "ksk-zsk"
ksk-lifetime = "60d"
zsk-lifetime = "30d"
dnskey-ttl = "1h"
ds-ttl = "1d"
propagation-delay = "1h"
parent-propagation-delay = "1h"
signature-validity = "14d"
signature-refresh = "5d"
"#;

/// Makes keys with fixed public keys (the state machine only needs their DNSKEYs).
struct FixedKeys(u8);

impl KeyFactory for FixedKeys {
    fn create(
        &mut self,
        _: &Name,
        role: Role,
        alg: Algorithm,
        _: &[String],
    ) -> Result<(String, Dnskey), KeyError> {
        self.0 = self.0.wrapping_add(1);
        let dk = Dnskey {
            flags: if role.is_sep() { 257 } else { 256 },
            protocol: 3,
            algorithm: alg.number(),
            public_key: vec![self.0; 64],
        };
        Ok((format!("local:fuzz-{}", self.0), dk))
    }
}

fn round_trip(state: &KeyState, file: &Path) {
    let out = state.to_toml().expect("a parsed state serialises");
    let back =
        KeyState::parse(&out, file).unwrap_or_else(|e| panic!("our own output does not parse: {e}\n{out}"));
    assert_eq!(&back, state, "{out}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("dnssec-state.toml");
    let Ok(mut state) = KeyState::parse(&text, file) else {
        return;
    };
    round_trip(&state, file);
    static P: OnceLock<(Policy, Name)> = OnceLock::new();
    let (policy, zone) = P.get_or_init(|| {
        (
            Policy::parse(POLICY, Path::new("policy.toml")).expect("policy"),
            Name::parse("example.", None).expect("zone"),
        )
    });
    let now = 1_796_601_600;
    let _ = rollover::status(policy, &state, zone, now);
    if rollover::advance(policy, &mut state, zone, now, 86400, &mut FixedKeys(0)).is_ok() {
        round_trip(&state, file);
    }
});
