//! Zone file parser of dnssec-sign: never panics on any octets (zone files need not be UTF-8);
//! whatever parses writes out and parses back to the same records, and what is written names
//! no type by a private mnemonic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let origin = dnssec_sign::Name::parse("example.", None).unwrap();
    let path = std::path::Path::new("/nonexistent/fuzz.zone");
    let Ok(mut zone) = dnssec_sign::parse_zone(data, path, Some(&origin)) else { return };
    zone.canonicalize();
    let mut out = Vec::new();
    dnssec_sign::zonefile::write_records(&mut out, &zone.origin, &zone.records).unwrap();
    let text = String::from_utf8(out).expect("our output is ASCII");
    assert!(!text.contains("\tANAME\t") && !text.contains("\tZERO\t"));
    let mut back = dnssec_sign::parse_zone(&text, path, Some(&origin)).expect("our own output parses");
    back.canonicalize();
    assert_eq!(back.records, zone.records);
});
