//! Fuzzes the RRSIG signature data a node with a signing policy parses before it signs
//! (`tcrypto_net::node::policy::RrsigData::parse`, then a policy check): nothing panics, and what parses is an RRset
//! of at least one RR whose owner carries at least the RRSIG's labels; the digest form a node derives from such
//! data (`SignData::digest_form`) exists exactly when the data parses and names algorithm 8, 10, 13 or 15.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tcrypto::KeyId;
use tcrypto_net::node::policy::{Policy, RrsigData};
use tcrypto_net::transport::wire::{DataMechanism, SignData};

const POLICY: &str = r#"
[[key]]
key = "abababab"
mechanisms = ["dnssec-rrsig"]
[key.dnssec]
zones = ["example.com."]
role = "zsk"
algorithm = 13
max_validity = "30d"
max_inception_age = "2h"
max_expiration_ahead = "31d"
"#;

fuzz_target!(|data: &[u8]| {
    let parsed = RrsigData::parse(data);
    if let Ok(d) = &parsed {
        assert!(d.rr_count >= 1);
        assert!(usize::from(d.labels) <= d.owner.label_count());
    }
    let form = SignData {
        mechanism: DataMechanism::DnssecRrsig,
        data: data.to_vec(),
    }
    .digest_form();
    assert_eq!(
        form.is_ok(),
        parsed.is_ok_and(|d| matches!(d.algorithm, 8 | 10 | 13 | 15))
    );
    static P: OnceLock<Policy> = OnceLock::new();
    let policy = P.get_or_init(|| Policy::parse(POLICY, std::path::Path::new("fuzz.toml")).expect("policy"));
    let _ = policy.check(&KeyId([0xab; 32]), "dnssec-rrsig", Some(data), |_| Ok(None), 1_796_601_600);
});
