//! Zone file parser of dnssec-sign: never panics; whatever parses writes out and parses back
//! to the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = dnssec_sign::Name::parse("example.", None).unwrap();
    let path = std::path::Path::new("/nonexistent/fuzz.zone");
    let Ok(mut zone) = dnssec_sign::parse_zone(text, path, Some(&origin)) else { return };
    zone.canonicalize();
    let mut out = Vec::new();
    dnssec_sign::zonefile::write_records(&mut out, &zone.origin, &zone.records).unwrap();
    let text2 = String::from_utf8(out).unwrap();
    let mut back = dnssec_sign::parse_zone(&text2, path, Some(&origin)).expect("our own output parses");
    back.canonicalize();
    assert_eq!(back.records, zone.records);
});
