//! Fuzzes what the module builds from a caller's `C_CreateObject`/`C_SetAttributeValue` template: never panics;
//! an object that is created matches the attributes it was created with (except those the module derives), and a
//! private key is never made extractable or non-sensitive; an AES key (`C_CreateObject` of a secret key) is never a
//! token object and reveals its value only when the template made it non-sensitive and extractable.
#![no_main]

use cryptoki_sys::*;
use libfuzzer_sys::fuzz_target;
use pkcs11_provider::object::{self, Lookup, Template};

/// Reads `(type: u8 index into a small table, len: u8, value)` records.
fn template(mut data: &[u8]) -> Template {
    const TYPES: [CK_ATTRIBUTE_TYPE; 16] = [
        CKA_CLASS, CKA_KEY_TYPE, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_ID, CKA_MODULUS, CKA_PUBLIC_EXPONENT,
        CKA_EC_PARAMS, CKA_EC_POINT, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_VALUE, CKA_SIGN, CKA_VERIFY, 0x8000_0001,
    ];
    let mut out = Vec::new();
    while let [t, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        out.push((TYPES[usize::from(*t) % TYPES.len()], rest[..n].to_vec()));
        data = &rest[n..];
    }
    Template(out)
}

fuzz_target!(|data: &[u8]| {
    let t = template(data);
    for built in [object::public_key_object(&t), object::data_object(&t)] {
        if let Ok(mut o) = built {
            for ty in [CKA_LABEL, CKA_ID] {
                if let Some(v) = t.get(ty) {
                    assert_eq!(o.lookup(ty), Lookup::Value(v), "last value of a repeated attribute wins");
                }
            }
            let _ = object::modify(&mut o, &t, false);
            let _ = object::modify(&mut o, &t, true);
        }
    }
    if let Some(v) = t.get(CKA_VALUE)
        && let Ok(o) = object::aes_key_object(zeroize::Zeroizing::new(v.to_vec()), CK_UNAVAILABLE_INFORMATION, &t)
    {
        assert!(!o.is_token());
        let readable = !o.flag(CKA_SENSITIVE, true) && o.flag(CKA_EXTRACTABLE, false);
        assert_eq!(o.lookup(CKA_VALUE) == Lookup::Value(v), readable);
    }
    let mut private = object::Object::default();
    private.set(CKA_CLASS, object::encode_ulong(CKO_PRIVATE_KEY));
    if object::apply_key_template(&mut private, &t).is_ok() {
        assert!(private.flag(CKA_SENSITIVE, true) && !private.flag(CKA_EXTRACTABLE, false));
        assert_eq!(private.lookup(CKA_VALUE), Lookup::Sensitive);
    }
});
