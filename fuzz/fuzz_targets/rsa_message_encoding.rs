//! Fuzzes `tcrypto::rsa::MessageEncoding::decode`: never panics, whatever decodes re-encodes to the same bytes, and
//! building its encoded message for any modulus size never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto::rsa::MessageEncoding;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = MessageEncoding::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode round trip");
        for bits in [256, 767, 1024, 2048, 4096] {
            if let Ok(em) = v.encoded_message(bits) {
                assert_eq!(em.len(), bits.div_ceil(8));
            }
        }
    }
});
