//! Objects and their attributes (PKCS#11 v3.0 §4): templates from callers, the stored form, visibility,
//! sensitivity, and the attribute sets of the key objects this module creates.
//!
//! Values are kept in their PKCS#11 in-memory encoding (`CK_BBOOL` one byte, `CK_ULONG` native-endian), so a
//! stored value is returned to `C_GetAttributeValue` as is and templates match byte for byte.

use std::collections::BTreeMap;

use cryptoki_sys::*;

use crate::backend::{KeyRef, PublicKey};
use crate::error::{Error, Result};

/// DER of the P-256 named curve OID (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of P-256 keys.
pub const P256_EC_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the Ed25519 OID (1.3.101.112), the `CKA_EC_PARAMS` of Ed25519 keys (PKCS#11 3.0 also allows it).
pub const ED25519_EC_PARAMS_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", the other accepted `CKA_EC_PARAMS` for Ed25519.
pub const ED25519_EC_PARAMS_NAME: &[u8] = b"\x13\x0cedwards25519";

/// Attributes of a private key that exist but are never revealed.
const SENSITIVE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
];

/// A caller's template: attribute types with values, in the caller's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template(pub Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

impl Template {
    /// The value of `ty`, if present (the last one wins if repeated).
    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(t, _)| *t == ty)
            .map(|(_, v)| v.as_slice())
    }

    /// A `CK_BBOOL` attribute.
    pub fn bool(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
        self.get(ty).map(decode_bool).transpose()
    }

    /// A `CK_ULONG` attribute.
    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        self.get(ty).map(decode_ulong).transpose()
    }
}

/// Encodes a `CK_BBOOL`.
pub fn encode_bool(b: bool) -> Vec<u8> {
    vec![if b { CK_TRUE } else { CK_FALSE }]
}

/// Encodes a `CK_ULONG` (native byte order, as the caller's memory holds it).
pub fn encode_ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Decodes a `CK_BBOOL`; any length other than 1 is invalid.
pub fn decode_bool(v: &[u8]) -> Result<bool> {
    match v {
        [b] => Ok(*b != CK_FALSE),
        _ => Err(Error::AttributeValueInvalid("CK_BBOOL must be one byte")),
    }
}

/// Decodes a `CK_ULONG`.
pub fn decode_ulong(v: &[u8]) -> Result<CK_ULONG> {
    let a: [u8; size_of::<CK_ULONG>()] = v
        .try_into()
        .map_err(|_| Error::AttributeValueInvalid("CK_ULONG has the wrong size"))?;
    Ok(CK_ULONG::from_ne_bytes(a))
}

/// What `C_GetAttributeValue` finds for one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The value.
    Value(&'a [u8]),
    /// The attribute exists but may not be revealed.
    Sensitive,
    /// The object has no such attribute.
    Invalid,
}

/// An object: its attributes and, for private keys, the backend's key reference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object {
    /// Attribute values by type.
    pub attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
    /// For private keys: where the shares are.
    pub key: Option<KeyRef>,
    /// For secret keys: the key's `CKA_VALUE` (session objects only; never written to the store).
    pub secret: Option<SecretValue>,
}

/// The value of a secret key: zeroized on drop, `<redacted>` in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub zeroize::Zeroizing<Vec<u8>>);

impl core::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl Object {
    /// Sets an attribute.
    pub fn set(&mut self, ty: CK_ATTRIBUTE_TYPE, v: Vec<u8>) {
        self.attrs.insert(ty, v);
    }

    /// A boolean attribute; absent or malformed counts as `default`.
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
        self.attrs
            .get(&ty)
            .and_then(|v| decode_bool(v).ok())
            .unwrap_or(default)
    }

    /// A `CK_ULONG` attribute.
    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.attrs.get(&ty).and_then(|v| decode_ulong(v).ok())
    }

    /// `CKA_CLASS`.
    pub fn class(&self) -> Option<CK_OBJECT_CLASS> {
        self.ulong(CKA_CLASS)
    }

    /// `CKA_KEY_TYPE`.
    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.ulong(CKA_KEY_TYPE)
    }

    /// `CKA_TOKEN`.
    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN, false)
    }

    /// `CKA_PRIVATE`: only visible to a logged-in user.
    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE, false)
    }

    /// One attribute for `C_GetAttributeValue`.
    pub fn lookup(&self, ty: CK_ATTRIBUTE_TYPE) -> Lookup<'_> {
        if self.class() == Some(CKO_PRIVATE_KEY) && SENSITIVE.contains(&ty) {
            return Lookup::Sensitive;
        }
        if self.class() == Some(CKO_SECRET_KEY) && ty == CKA_VALUE {
            // Readable only when the caller made the key non-sensitive and extractable.
            return match &self.secret {
                Some(v) if !self.flag(CKA_SENSITIVE, true) && self.flag(CKA_EXTRACTABLE, false) => {
                    Lookup::Value(&v.0)
                }
                _ => Lookup::Sensitive,
            };
        }
        match self.attrs.get(&ty) {
            Some(v) => Lookup::Value(v),
            None => Lookup::Invalid,
        }
    }

    /// Whether every attribute of `template` is present with exactly that value.
    pub fn matches(&self, template: &Template) -> bool {
        template
            .0
            .iter()
            .all(|(t, v)| self.lookup(*t) == Lookup::Value(v))
    }

    /// The approximate storage size for `C_GetObjectSize`.
    pub fn size(&self) -> usize {
        self.attrs.values().map(|v| v.len() + 16).sum()
    }

    /// The public key described by the object's attributes (for verification and signature lengths).
    pub fn public_key(&self) -> Result<PublicKey> {
        let get = |t| self.attrs.get(&t).ok_or(Error::KeyHandleInvalid);
        match self.key_type() {
            Some(CKK_RSA) => Ok(PublicKey::Rsa {
                modulus: get(CKA_MODULUS)?.clone(),
                public_exponent: get(CKA_PUBLIC_EXPONENT)?.clone(),
            }),
            Some(CKK_EC) => {
                if get(CKA_EC_PARAMS)?.as_slice() != P256_EC_PARAMS {
                    return Err(Error::CurveNotSupported);
                }
                let point = unwrap_octet_string(get(CKA_EC_POINT)?)?;
                Ok(PublicKey::P256 {
                    sec1_uncompressed: point,
                })
            }
            Some(CKK_EC_EDWARDS) => {
                let point = unwrap_octet_string(get(CKA_EC_POINT)?)?;
                let point: [u8; 32] = point
                    .try_into()
                    .map_err(|_| Error::AttributeValueInvalid("Ed25519 point"))?;
                Ok(PublicKey::Ed25519 { point })
            }
            _ => Err(Error::KeyTypeInconsistent),
        }
    }
}

/// Encodes a point as the DER OCTET STRING that `CKA_EC_POINT` holds.
pub fn octet_string(bytes: &[u8]) -> Result<Vec<u8>> {
    use der::Encode as _;
    der::asn1::OctetString::new(bytes)
        .and_then(|o| o.to_der())
        .map_err(|_| Error::Internal("DER encoding of an EC point"))
}

/// Decodes a `CKA_EC_POINT` DER OCTET STRING; a raw point (as some callers pass) is accepted too.
pub fn unwrap_octet_string(v: &[u8]) -> Result<Vec<u8>> {
    use der::Decode as _;
    match der::asn1::OctetString::from_der(v) {
        Ok(o) => Ok(o.as_bytes().to_vec()),
        Err(_) => Ok(v.to_vec()),
    }
}

/// Attributes every key object gets, then the caller's allowed attributes on top.
fn key_common(class: CK_OBJECT_CLASS, key_type: CK_KEY_TYPE, gen_mech: CK_MECHANISM_TYPE) -> Object {
    let mut o = Object::default();
    o.set(CKA_CLASS, encode_ulong(class));
    o.set(CKA_KEY_TYPE, encode_ulong(key_type));
    o.set(CKA_TOKEN, encode_bool(false));
    o.set(CKA_PRIVATE, encode_bool(class == CKO_PRIVATE_KEY));
    o.set(CKA_MODIFIABLE, encode_bool(true));
    o.set(CKA_COPYABLE, encode_bool(true));
    o.set(CKA_DESTROYABLE, encode_bool(true));
    o.set(CKA_LABEL, Vec::new());
    o.set(CKA_ID, Vec::new());
    if class != CKO_SECRET_KEY {
        o.set(CKA_SUBJECT, Vec::new());
    }
    o.set(CKA_START_DATE, Vec::new());
    o.set(CKA_END_DATE, Vec::new());
    o.set(CKA_DERIVE, encode_bool(false));
    o.set(CKA_LOCAL, encode_bool(gen_mech != CK_UNAVAILABLE_INFORMATION));
    o.set(CKA_KEY_GEN_MECHANISM, encode_ulong(gen_mech));
    if class == CKO_PRIVATE_KEY {
        o.set(CKA_SIGN, encode_bool(true));
        o.set(CKA_SIGN_RECOVER, encode_bool(false));
        o.set(CKA_DECRYPT, encode_bool(false));
        o.set(CKA_UNWRAP, encode_bool(false));
        o.set(CKA_SENSITIVE, encode_bool(true));
        o.set(
            CKA_ALWAYS_SENSITIVE,
            encode_bool(gen_mech != CK_UNAVAILABLE_INFORMATION),
        );
        o.set(CKA_EXTRACTABLE, encode_bool(false));
        o.set(
            CKA_NEVER_EXTRACTABLE,
            encode_bool(gen_mech != CK_UNAVAILABLE_INFORMATION),
        );
        o.set(CKA_WRAP_WITH_TRUSTED, encode_bool(false));
        o.set(CKA_ALWAYS_AUTHENTICATE, encode_bool(false));
    } else if class == CKO_SECRET_KEY {
        // Only unwrapping is offered for secret keys.
        for ty in [
            CKA_ENCRYPT,
            CKA_DECRYPT,
            CKA_SIGN,
            CKA_VERIFY,
            CKA_WRAP,
            CKA_TRUSTED,
            CKA_WRAP_WITH_TRUSTED,
        ] {
            o.set(ty, encode_bool(false));
        }
        o.set(CKA_UNWRAP, encode_bool(true));
        o.set(CKA_SENSITIVE, encode_bool(true));
        o.set(CKA_EXTRACTABLE, encode_bool(false));
    } else {
        o.set(CKA_VERIFY, encode_bool(true));
        o.set(CKA_VERIFY_RECOVER, encode_bool(false));
        o.set(CKA_ENCRYPT, encode_bool(false));
        o.set(CKA_WRAP, encode_bool(false));
        o.set(CKA_TRUSTED, encode_bool(false));
    }
    o
}

/// Attributes a caller may set in a key template, on creation or with `C_SetAttributeValue`.
const CALLER_SETTABLE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_LABEL,
    CKA_ID,
    CKA_SUBJECT,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_DERIVE,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_DECRYPT,
    CKA_UNWRAP,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_ENCRYPT,
    CKA_WRAP,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
];

/// Attributes that are consumed by key generation/creation rather than stored from the template.
const GENERATION_INPUTS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_EC_PARAMS,
];

/// Applies a caller's template to a fresh key object: settable attributes are stored, generation inputs were
/// already checked by the caller of this function, anything else is refused. Dishonest requests (an extractable
/// or non-sensitive private key) are refused: the module cannot ever reveal the key.
pub fn apply_key_template(o: &mut Object, t: &Template) -> Result<()> {
    for (ty, v) in &t.0 {
        if GENERATION_INPUTS.contains(ty) {
            continue;
        }
        if !CALLER_SETTABLE.contains(ty) {
            return Err(Error::AttributeTypeInvalid);
        }
        check_value(*ty, v)?;
        o.set(*ty, v.clone());
    }
    check_honest(o)
}

fn check_value(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Result<()> {
    match ty {
        CKA_LABEL | CKA_ID | CKA_SUBJECT | CKA_START_DATE | CKA_END_DATE => Ok(()),
        _ => decode_bool(v).map(|_| ()),
    }
}

fn check_honest(o: &Object) -> Result<()> {
    if o.class() == Some(CKO_PRIVATE_KEY) && (!o.flag(CKA_SENSITIVE, true) || o.flag(CKA_EXTRACTABLE, false))
    {
        return Err(Error::TemplateInconsistent(
            "threshold keys are always sensitive and never extractable",
        ));
    }
    Ok(())
}

/// `C_SetAttributeValue`/`C_CopyObject` changes: checks each attribute may change and applies them.
pub fn modify(o: &mut Object, t: &Template, copying: bool) -> Result<()> {
    for (ty, v) in &t.0 {
        if !CALLER_SETTABLE.contains(ty) {
            return Err(match o.lookup(*ty) {
                Lookup::Invalid => Error::AttributeTypeInvalid,
                _ => Error::AttributeReadOnly,
            });
        }
        let new = match *ty {
            CKA_LABEL | CKA_ID | CKA_SUBJECT | CKA_START_DATE | CKA_END_DATE => None,
            _ => Some(decode_bool(v)?),
        };
        match (*ty, new) {
            // CKA_TOKEN and CKA_PRIVATE may only change on copy (§4.4.1 table 10 footnote 4 style rules).
            (CKA_TOKEN | CKA_PRIVATE, _) if !copying => return Err(Error::AttributeReadOnly),
            (CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE, _) if !copying => {
                return Err(Error::AttributeReadOnly);
            }
            // CKA_SENSITIVE can only become true, CKA_EXTRACTABLE only false (both already are, for private keys).
            (CKA_SENSITIVE, Some(false)) if o.flag(CKA_SENSITIVE, false) => {
                return Err(Error::AttributeReadOnly);
            }
            (CKA_EXTRACTABLE, Some(true)) if !o.flag(CKA_EXTRACTABLE, true) => {
                return Err(Error::AttributeReadOnly);
            }
            _ => {}
        }
        o.set(*ty, v.clone());
    }
    check_honest(o)
}

/// The public and private objects of a freshly generated or imported key pair.
pub fn key_pair_objects(
    public: &PublicKey,
    gen_mech: CK_MECHANISM_TYPE,
    key: KeyRef,
) -> Result<(Object, Object)> {
    let (key_type, attrs): (CK_KEY_TYPE, Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>) = match public {
        PublicKey::Rsa {
            modulus,
            public_exponent,
        } => {
            let bits = modulus_bits(modulus);
            (
                CKK_RSA,
                vec![
                    (CKA_MODULUS, modulus.clone()),
                    (CKA_PUBLIC_EXPONENT, public_exponent.clone()),
                    (CKA_MODULUS_BITS, encode_ulong(bits as CK_ULONG)),
                ],
            )
        }
        PublicKey::P256 { sec1_uncompressed } => (
            CKK_EC,
            vec![
                (CKA_EC_PARAMS, P256_EC_PARAMS.to_vec()),
                (CKA_EC_POINT, octet_string(sec1_uncompressed)?),
            ],
        ),
        PublicKey::Ed25519 { point } => (
            CKK_EC_EDWARDS,
            vec![
                (CKA_EC_PARAMS, ED25519_EC_PARAMS_NAME.to_vec()),
                (CKA_EC_POINT, octet_string(point)?),
            ],
        ),
    };
    let spki = crate::mechanism::public_key_info(public)?;
    let mut publ = key_common(CKO_PUBLIC_KEY, key_type, gen_mech);
    let mut private = key_common(CKO_PRIVATE_KEY, key_type, gen_mech);
    for (t, v) in attrs {
        publ.set(t, v.clone());
        private.set(t, v);
    }
    publ.set(CKA_PUBLIC_KEY_INFO, spki.clone());
    private.set(CKA_PUBLIC_KEY_INFO, spki);
    private.key = Some(key);
    Ok((publ, private))
}

/// A public-key object from `C_CreateObject` (no backend involved).
pub fn public_key_object(t: &Template) -> Result<Object> {
    let key_type = t
        .ulong(CKA_KEY_TYPE)?
        .ok_or(Error::TemplateIncomplete("CKA_KEY_TYPE"))?;
    let mut o = key_common(CKO_PUBLIC_KEY, key_type, CK_UNAVAILABLE_INFORMATION);
    let need = |ty, what| {
        t.get(ty)
            .map(<[u8]>::to_vec)
            .ok_or(Error::TemplateIncomplete(what))
    };
    match key_type {
        CKK_RSA => {
            let n = need(CKA_MODULUS, "CKA_MODULUS")?;
            o.set(CKA_MODULUS_BITS, encode_ulong(modulus_bits(&n) as CK_ULONG));
            o.set(CKA_MODULUS, n);
            o.set(
                CKA_PUBLIC_EXPONENT,
                need(CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?,
            );
        }
        CKK_EC | CKK_EC_EDWARDS => {
            o.set(CKA_EC_PARAMS, need(CKA_EC_PARAMS, "CKA_EC_PARAMS")?);
            o.set(CKA_EC_POINT, need(CKA_EC_POINT, "CKA_EC_POINT")?);
        }
        _ => return Err(Error::AttributeValueInvalid("unsupported CKA_KEY_TYPE")),
    }
    let pk = o.public_key()?;
    o.set(CKA_PUBLIC_KEY_INFO, crate::mechanism::public_key_info(&pk)?);
    let rest = Template(
        t.0.iter()
            .filter(|(ty, _)| ![CKA_MODULUS, CKA_EC_POINT, CKA_PUBLIC_KEY_INFO].contains(ty))
            .cloned()
            .collect(),
    );
    apply_key_template(&mut o, &rest)?;
    Ok(o)
}

/// The AES key lengths this module accepts (bytes).
pub const AES_KEY_LENGTHS: [usize; 3] = [16, 24, 32];

/// An AES secret key object (`CKO_SECRET_KEY`, `CKK_AES`) from `C_CreateObject` (`gen_mech` =
/// `CK_UNAVAILABLE_INFORMATION`) or `C_GenerateKey` (`CKM_AES_KEY_GEN`), with the caller's template applied. Such a
/// key only unwraps (`CKA_UNWRAP`, true unless the template says otherwise); it stays in the session that made it
/// (`CKA_TOKEN = true` is refused: the module never writes a secret key to its store) and never reaches the
/// cluster. Sensitive and not extractable unless the template says otherwise.
pub fn aes_key_object(
    value: zeroize::Zeroizing<Vec<u8>>,
    gen_mech: CK_MECHANISM_TYPE,
    t: &Template,
) -> Result<Object> {
    if !AES_KEY_LENGTHS.contains(&value.len()) {
        return Err(Error::AttributeValueInvalid("AES keys are 16, 24 or 32 bytes"));
    }
    if let Some(kt) = t.ulong(CKA_KEY_TYPE)?
        && kt != CKK_AES
    {
        return Err(Error::TemplateInconsistent("only AES secret keys are supported"));
    }
    if let Some(c) = t.ulong(CKA_CLASS)?
        && c != CKO_SECRET_KEY
    {
        return Err(Error::TemplateInconsistent("CKA_CLASS"));
    }
    if t.bool(CKA_TOKEN)? == Some(true) {
        return Err(Error::TemplateInconsistent(
            "secret keys are session objects only (the module never stores them)",
        ));
    }
    let generated = gen_mech != CK_UNAVAILABLE_INFORMATION;
    let mut o = key_common(CKO_SECRET_KEY, CKK_AES, gen_mech);
    o.set(CKA_VALUE_LEN, encode_ulong(value.len() as CK_ULONG));
    for (ty, v) in &t.0 {
        match *ty {
            CKA_CLASS | CKA_KEY_TYPE | CKA_VALUE => {}
            CKA_VALUE_LEN => {
                if decode_ulong(v)? != value.len() as CK_ULONG {
                    return Err(Error::TemplateInconsistent("CKA_VALUE_LEN"));
                }
            }
            _ if CALLER_SETTABLE.contains(ty) => {
                check_value(*ty, v)?;
                o.set(*ty, v.clone());
            }
            _ => return Err(Error::AttributeTypeInvalid),
        }
    }
    o.set(
        CKA_ALWAYS_SENSITIVE,
        encode_bool(generated && o.flag(CKA_SENSITIVE, true)),
    );
    o.set(
        CKA_NEVER_EXTRACTABLE,
        encode_bool(generated && !o.flag(CKA_EXTRACTABLE, false)),
    );
    o.secret = Some(SecretValue(value));
    Ok(o)
}

/// A data object (`CKO_DATA`) from `C_CreateObject`.
pub fn data_object(t: &Template) -> Result<Object> {
    let mut o = Object::default();
    o.set(CKA_CLASS, encode_ulong(CKO_DATA));
    o.set(CKA_TOKEN, encode_bool(false));
    o.set(CKA_PRIVATE, encode_bool(true));
    o.set(CKA_MODIFIABLE, encode_bool(true));
    o.set(CKA_COPYABLE, encode_bool(true));
    o.set(CKA_DESTROYABLE, encode_bool(true));
    o.set(CKA_LABEL, Vec::new());
    o.set(CKA_APPLICATION, Vec::new());
    o.set(CKA_OBJECT_ID, Vec::new());
    o.set(CKA_VALUE, Vec::new());
    for (ty, v) in &t.0 {
        match *ty {
            CKA_CLASS => {}
            CKA_TOKEN | CKA_PRIVATE | CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE => {
                decode_bool(v)?;
                o.set(*ty, v.clone());
            }
            CKA_LABEL | CKA_APPLICATION | CKA_OBJECT_ID | CKA_VALUE => o.set(*ty, v.clone()),
            _ => return Err(Error::AttributeTypeInvalid),
        }
    }
    Ok(o)
}

/// Bit length of a big-endian integer.
pub fn modulus_bits(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_pair() -> (Object, Object) {
        let mut n = vec![0xc5u8; 256];
        n[255] |= 1;
        let pk = PublicKey::Rsa {
            modulus: n,
            public_exponent: vec![1, 0, 1],
        };
        key_pair_objects(&pk, CKM_RSA_PKCS_KEY_PAIR_GEN, KeyRef(b"k".to_vec())).unwrap()
    }

    #[test]
    fn private_key_secret_attributes_are_sensitive_and_public_ones_readable() {
        let (_, private) = rsa_pair();
        assert_eq!(private.lookup(CKA_VALUE), Lookup::Sensitive);
        assert_eq!(private.lookup(CKA_PRIVATE_EXPONENT), Lookup::Sensitive);
        assert_eq!(
            private.lookup(CKA_MODULUS_BITS),
            Lookup::Value(&encode_ulong(2048))
        );
        assert_eq!(private.lookup(CKA_EXTRACTABLE), Lookup::Value(&[CK_FALSE]));
        assert_eq!(private.lookup(CKA_SENSITIVE), Lookup::Value(&[CK_TRUE]));
        assert_eq!(private.lookup(0x7777_0000), Lookup::Invalid);
    }

    #[test]
    fn extractable_or_non_sensitive_private_keys_are_refused() {
        let (_, mut private) = rsa_pair();
        let t = Template(vec![(CKA_EXTRACTABLE, encode_bool(true))]);
        assert!(matches!(
            apply_key_template(&mut private.clone(), &t),
            Err(Error::TemplateInconsistent(_))
        ));
        let t = Template(vec![(CKA_SENSITIVE, encode_bool(false))]);
        assert!(matches!(
            modify(&mut private, &t, false),
            Err(Error::AttributeReadOnly)
        ));
    }

    #[test]
    fn read_only_attributes_cannot_be_set() {
        let (mut publ, _) = rsa_pair();
        let t = Template(vec![(CKA_MODULUS, vec![1])]);
        assert!(matches!(
            modify(&mut publ, &t, false),
            Err(Error::AttributeReadOnly)
        ));
        let t = Template(vec![(CKA_LABEL, b"new".to_vec())]);
        modify(&mut publ, &t, false).unwrap();
        assert_eq!(publ.lookup(CKA_LABEL), Lookup::Value(b"new"));
    }

    #[test]
    fn templates_match_byte_for_byte_and_never_on_sensitive_values() {
        let (publ, private) = rsa_pair();
        assert!(publ.matches(&Template(vec![(CKA_CLASS, encode_ulong(CKO_PUBLIC_KEY))])));
        assert!(!publ.matches(&Template(vec![(CKA_CLASS, encode_ulong(CKO_PRIVATE_KEY))])));
        assert!(!private.matches(&Template(vec![(CKA_VALUE, vec![])])));
    }

    #[test]
    fn ec_point_is_a_der_octet_string() {
        let p = vec![4u8; 65];
        let der = octet_string(&p).unwrap();
        assert_eq!(&der[..2], &[0x04, 65]);
        assert_eq!(unwrap_octet_string(&der).unwrap(), p);
        assert_eq!(modulus_bits(&[0, 0x01, 0xff]), 9);
    }
}
