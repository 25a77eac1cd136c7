//! `C_UnwrapKey` (PKCS#11 v3.0 §5.18): an existing private key, wrapped under an AES key the session holds, comes
//! in and takes the path of `C_CreateObject`'s import (split onto the cluster, plaintext zeroized, marked neither
//! local, always sensitive nor never extractable).
//!
//! Wrapping: AES Key Wrap (RFC 3394, `CKM_AES_KEY_WRAP`) and AES Key Wrap with Padding (RFC 5649,
//! `CKM_AES_KEY_WRAP_KWP`, and `CKM_AES_KEY_WRAP_PAD` read as RFC 5649 as SoftHSM2 and OpenSSL-based tokens do; PKCS#11
//! 3.1 deprecates that name because implementations differ), by the RustCrypto `aes-kw` crate, default initial
//! values only. The wrapped key is a PKCS#8 `PrivateKeyInfo` (RFC 5208/5958) of an RSA (`rsaEncryption`), P-256
//! (`id-ecPublicKey` with `prime256v1`) or Ed25519 (RFC 8410) key. The unwrapping key never leaves this process.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::Module;
use crate::backend::PrivateKeyMaterial;
use crate::error::{Error, Result};
use crate::mechanism::{MechParam, Mechanism};
use crate::object::{self, Template};

/// RFC 3394 §2.2.3.1: the default initial value of AES Key Wrap.
const KW_IV: [u8; 8] = [0xa6; 8];
/// RFC 5649 §3: the constant half of the alternative initial value of AES Key Wrap with Padding.
const KWP_AIV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// rsaEncryption (RFC 8017 appendix C).
const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (RFC 5480).
const ID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1 (RFC 5480).
const PRIME256V1: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// id-Ed25519 (RFC 8410).
const ID_ED25519: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");

/// The two AES key-wrap modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrap {
    /// RFC 3394: the wrapped key is a multiple of 8 bytes.
    Kw,
    /// RFC 5649: any length.
    Kwp,
}

impl Module {
    /// `C_UnwrapKey`: unwraps `wrapped` with the AES key `unwrapping_key` and imports the PKCS#8 private key it
    /// holds with the attributes of `t` (whose `CKA_CLASS` and `CKA_KEY_TYPE`, if given, must match the key).
    pub fn unwrap_key(
        &self,
        sh: CK_SESSION_HANDLE,
        m: &Mechanism,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        t: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let wrap = match m.ty {
            CKM_AES_KEY_WRAP => Wrap::Kw,
            CKM_AES_KEY_WRAP_PAD | CKM_AES_KEY_WRAP_KWP => Wrap::Kwp,
            _ => {
                self.with(|i| i.session(sh).map(|_| ()))?;
                return Err(Error::MechanismInvalid);
            }
        };
        match (wrap, &m.param) {
            (_, MechParam::None) => {}
            (Wrap::Kw, MechParam::Other(iv)) if iv[..] == KW_IV => {}
            (Wrap::Kwp, MechParam::Other(iv)) if iv[..] == KWP_AIV => {}
            _ => {
                return Err(Error::MechanismParamInvalid(
                    "only the default initial value of RFC 3394 / RFC 5649",
                ));
            }
        }
        let kek = self.with(|i| {
            let slot = i.session(sh)?.slot;
            let o = i.visible(sh, unwrapping_key).map_err(|e| match e {
                Error::ObjectHandleInvalid if !i.user_logged_in(slot) => Error::UserNotLoggedIn,
                Error::ObjectHandleInvalid => Error::UnwrappingKeyHandleInvalid,
                other => other,
            })?;
            if o.class() != Some(CKO_SECRET_KEY) || o.key_type() != Some(CKK_AES) {
                return Err(Error::UnwrappingKeyTypeInconsistent);
            }
            if !o.flag(CKA_UNWRAP, false) {
                return Err(Error::KeyFunctionNotPermitted);
            }
            o.secret.map(|s| s.0).ok_or(Error::UnwrappingKeyHandleInvalid)
        })?;
        let pkcs8 = unwrap_aes(wrap, &kek, wrapped)?;
        drop(kek);
        let material = private_key_from_pkcs8(&pkcs8, t)?;
        drop(pkcs8);
        self.import_private_key(sh, material, t)
    }
}

/// AES Key Wrap (RFC 3394) or with Padding (RFC 5649) undone with `kek`; the plaintext is zeroized on drop.
fn unwrap_aes(wrap: Wrap, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use aes_kw::KeyInit as _;
    // RFC 3394 wraps at least two semiblocks, RFC 5649 at least one (plus the integrity semiblock).
    let min = if wrap == Wrap::Kw { 24 } else { 16 };
    if !wrapped.len().is_multiple_of(8) || wrapped.len() < min {
        return Err(Error::WrappedKeyLenRange);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    macro_rules! run {
        ($ty:ty) => {
            <$ty>::new_from_slice(kek)
                .map_err(|_| Error::UnwrappingKeyHandleInvalid)?
                .unwrap_key(wrapped, &mut out)
                .map(<[u8]>::len)
        };
    }
    let len = match (wrap, kek.len()) {
        (Wrap::Kw, 16) => run!(aes_kw::KwAes128),
        (Wrap::Kw, 24) => run!(aes_kw::KwAes192),
        (Wrap::Kw, 32) => run!(aes_kw::KwAes256),
        (Wrap::Kwp, 16) => run!(aes_kw::KwpAes128),
        (Wrap::Kwp, 24) => run!(aes_kw::KwpAes192),
        (Wrap::Kwp, 32) => run!(aes_kw::KwpAes256),
        // An AES key object always has one of the three lengths.
        _ => return Err(Error::Internal("AES key of another length")),
    }
    .map_err(|e| match e {
        aes_kw::Error::IntegrityCheckFailed => {
            Error::WrappedKeyInvalid("integrity check failed (another key, or damaged data)")
        }
        aes_kw::Error::InvalidDataSize => Error::WrappedKeyLenRange,
        aes_kw::Error::InvalidOutputSize { .. } => Error::Internal("AES key unwrap output size"),
    })?;
    out.truncate(len);
    Ok(out)
}

/// The private key of a PKCS#8 `PrivateKeyInfo`, checked against the unwrap template's class and key type.
fn private_key_from_pkcs8(der: &[u8], t: &Template) -> Result<PrivateKeyMaterial> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let not_pkcs8 = |_| Error::WrappedKeyInvalid("not a PKCS#8 RSA, P-256 or Ed25519 private key");
    let info = p256::pkcs8::PrivateKeyInfoRef::try_from(der).map_err(not_pkcs8)?;
    let (key_type, material) = match info.algorithm.oid {
        RSA_ENCRYPTION => {
            let key = rsa::PrivateKey::from_pkcs8_der(der)
                .map_err(|_| Error::WrappedKeyInvalid("not a valid RSA private key"))?;
            let pkcs1 = key
                .to_pkcs1_der()
                .map_err(|_| Error::Internal("PKCS#1 encoding"))?;
            let material = PrivateKeyMaterial::RsaPkcs1Der(Zeroizing::new(pkcs1.as_bytes().to_vec()));
            (CKK_RSA, material)
        }
        ID_EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
            if curve != Some(PRIME256V1) {
                return Err(Error::CurveNotSupported);
            }
            let key = p256::SecretKey::from_pkcs8_der(der)
                .map_err(|_| Error::WrappedKeyInvalid("not a valid P-256 private key"))?;
            let scalar = Zeroizing::new(<[u8; 32]>::from(key.to_bytes()));
            (CKK_EC, PrivateKeyMaterial::P256Scalar(scalar))
        }
        ID_ED25519 => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map_err(|_| Error::WrappedKeyInvalid("not a valid Ed25519 private key"))?;
            (
                CKK_EC_EDWARDS,
                PrivateKeyMaterial::Ed25519Seed(Zeroizing::new(key.to_bytes())),
            )
        }
        _ => {
            return Err(Error::WrappedKeyInvalid(
                "only RSA, P-256 and Ed25519 private keys can be unwrapped",
            ));
        }
    };
    if let Some(c) = t.ulong(CKA_CLASS)?
        && c != CKO_PRIVATE_KEY
    {
        return Err(Error::TemplateInconsistent("C_UnwrapKey makes private keys only"));
    }
    if let Some(kt) = t.ulong(CKA_KEY_TYPE)?
        && kt != key_type
    {
        return Err(Error::TemplateInconsistent(
            "CKA_KEY_TYPE does not match the wrapped key",
        ));
    }
    if let Some(p) = t.get(CKA_EC_PARAMS) {
        let ok = match key_type {
            CKK_EC => p == object::P256_EC_PARAMS,
            CKK_EC_EDWARDS => p == object::ED25519_EC_PARAMS_OID || p == object::ED25519_EC_PARAMS_NAME,
            _ => false,
        };
        if !ok {
            return Err(Error::TemplateInconsistent(
                "CKA_EC_PARAMS does not match the wrapped key",
            ));
        }
    }
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5649 §6, the second example: a 7-byte key under a 192-bit KEK.
    #[test]
    fn rfc5649_example_unwraps_and_a_flipped_bit_is_refused() {
        let kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let wrapped = hex("afbeb0f07dfbf5419200f2ccb50bb24f");
        let key = unwrap_aes(Wrap::Kwp, &kek, &wrapped).unwrap();
        assert_eq!(&key[..], &hex("466f7250617369")[..]);
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert!(matches!(
            unwrap_aes(Wrap::Kwp, &kek, &bad),
            Err(Error::WrappedKeyInvalid(_))
        ));
        assert!(matches!(
            unwrap_aes(Wrap::Kwp, &kek, &wrapped[..12]),
            Err(Error::WrappedKeyLenRange)
        ));
    }

    /// RFC 3394 §4.1: 128 bits of key data under a 128-bit KEK.
    #[test]
    fn rfc3394_example_unwraps() {
        let kek = hex("000102030405060708090a0b0c0d0e0f");
        let wrapped = hex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5");
        let key = unwrap_aes(Wrap::Kw, &kek, &wrapped).unwrap();
        assert_eq!(&key[..], &hex("00112233445566778899aabbccddeeff")[..]);
        assert!(matches!(
            unwrap_aes(Wrap::Kw, &kek, &wrapped[..16]),
            Err(Error::WrappedKeyLenRange)
        ));
    }

    #[test]
    fn pkcs8_of_another_algorithm_or_garbage_is_a_wrapped_key_invalid() {
        // X25519 (1.3.101.110): a well-formed PKCS#8 key of a type the cluster does not serve.
        let x25519 = [hex("302e020100300506032b656e04220420"), vec![7u8; 32]].concat();
        for der in [&x25519[..], b"\x30\x03\x02\x01\x00", b"not der at all"] {
            assert!(
                matches!(
                    private_key_from_pkcs8(der, &Template::default()),
                    Err(Error::WrappedKeyInvalid(_))
                ),
                "{der:?}"
            );
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }
}
