//! Cryptographic functions (PKCS#11 v3.0 §5.10–5.14, 5.15): digests, signing, verification, key-pair generation.
//!
//! Signing takes the operation out of the session under the lock, then calls the backend with the lock
//! released, then verifies the signature with an independent implementation before releasing it. The length of
//! a signature is known from the public key, so a size query never reaches the backend.

use cryptoki_sys::*;

use super::Module;
use crate::backend::{KeyKind, KeyRef, PublicKey};
use crate::error::{Error, Result};
use crate::mechanism::{self, Hasher, KeyFamily, Mechanism, SignScheme};
use crate::object::{self, Object, Template};

/// An active digest operation.
pub(super) struct DigestOp {
    hasher: Hasher,
    parts: Parts,
}

/// An active signing operation.
pub(super) struct SignOp {
    scheme: SignScheme,
    public: PublicKey,
    key: KeyRef,
    data: Vec<u8>,
    parts: Parts,
}

/// An active verification operation.
pub(super) struct VerifyOp {
    scheme: SignScheme,
    public: PublicKey,
    data: Vec<u8>,
    parts: Parts,
}

/// The active operation of a session that a call continues (see [`Module::ending_on_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `C_DigestInit` … `C_Digest`/`C_DigestFinal`.
    Digest,
    /// `C_SignInit` … `C_Sign`/`C_SignFinal`.
    Sign,
    /// `C_VerifyInit` … `C_Verify`/`C_VerifyFinal`.
    Verify,
}

/// Whether an operation has become single-part or multi-part. The single-part call (`C_Digest`, `C_Sign`,
/// `C_Verify`) "cannot be used to terminate a multi-part operation, and must be called after `C_…Init` without
/// intervening `C_…Update` calls" (§5.12–5.14); once a single-part length query was answered, the update and
/// final calls are refused the same way. Either refusal is `CKR_OPERATION_ACTIVE` and ends the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Parts {
    /// Only the init call so far.
    #[default]
    Undecided,
    /// A single-part length query was answered.
    Single,
    /// An update call was made.
    Multi,
}

impl Parts {
    /// Moves to `to`, or refuses a call of the other kind.
    fn enter(&mut self, to: Parts) -> Result<()> {
        match (*self, to) {
            (Parts::Single, Parts::Multi) | (Parts::Multi, Parts::Single) => Err(Error::OperationActive),
            _ => {
                *self = to;
                Ok(())
            }
        }
    }
}

/// Writes `value` into the caller's output buffer with the PKCS#11 length conventions.
fn output(value: &[u8], out: Option<&mut [u8]>) -> Result<usize> {
    match out {
        None => Ok(value.len()),
        Some(buf) if buf.len() < value.len() => Err(Error::BufferTooSmall { needed: value.len() }),
        Some(buf) => {
            buf[..value.len()].copy_from_slice(value);
            Ok(value.len())
        }
    }
}

impl Module {
    /// Runs `f`, one call that continues the session's active `op`. Any error but `CKR_BUFFER_TOO_SMALL` ends
    /// the operation (PKCS#11 v3.0 §5.12–5.14: "A call to `C_Digest` always terminates the active digest
    /// operation unless it returns `CKR_BUFFER_TOO_SMALL` or is a successful call … to determine the length of
    /// the buffer needed", and an update call "which results in an error terminates the current … operation"),
    /// including the C ABI's own argument errors, so a caller never continues an operation in an unknown state.
    pub fn ending_on_error<T>(
        &self,
        sh: CK_SESSION_HANDLE,
        op: Operation,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let r = f();
        if matches!(&r, Err(e) if !matches!(e, Error::BufferTooSmall { .. })) {
            // A session or module that is gone has no operation left to end.
            let _ = self.with(|i| {
                let s = i.session_mut(sh)?;
                match op {
                    Operation::Digest => s.digest = None,
                    Operation::Sign => s.sign = None,
                    Operation::Verify => s.verify = None,
                }
                Ok(())
            });
        }
        r
    }

    /// `C_DigestInit`.
    pub fn digest_init(&self, sh: CK_SESSION_HANDLE, m: &Mechanism) -> Result<()> {
        self.with(|i| {
            let s = i.session_mut(sh)?;
            if s.digest.is_some() {
                return Err(Error::OperationActive);
            }
            s.digest = Some(DigestOp {
                hasher: Hasher::new(m)?,
                parts: Parts::Undecided,
            });
            Ok(())
        })
    }

    /// `C_Digest`: single part. `out = None` asks for the length; a short buffer keeps the operation active.
    pub fn digest(&self, sh: CK_SESSION_HANDLE, data: &[u8], out: Option<&mut [u8]>) -> Result<usize> {
        self.ending_on_error(sh, Operation::Digest, || self.digest_once(sh, data, out))
    }

    fn digest_once(&self, sh: CK_SESSION_HANDLE, data: &[u8], out: Option<&mut [u8]>) -> Result<usize> {
        self.with(|i| {
            let s = i.session_mut(sh)?;
            let op = s.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
            op.parts.enter(Parts::Single)?;
            let needed = op.hasher.output_len();
            match &out {
                None => return Ok(needed),
                Some(b) if b.len() < needed => return Err(Error::BufferTooSmall { needed }),
                Some(_) => {}
            }
            let mut h = s.digest.take().ok_or(Error::OperationNotInitialized)?.hasher;
            h.update(data);
            output(&h.finalize(), out)
        })
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&self, sh: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.ending_on_error(sh, Operation::Digest, || {
            self.with(|i| {
                let s = i.session_mut(sh)?;
                let op = s.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
                op.parts.enter(Parts::Multi)?;
                op.hasher.update(data);
                Ok(())
            })
        })
    }

    /// `C_DigestFinal`.
    pub fn digest_final(&self, sh: CK_SESSION_HANDLE, out: Option<&mut [u8]>) -> Result<usize> {
        self.ending_on_error(sh, Operation::Digest, || {
            self.with(|i| {
                let s = i.session_mut(sh)?;
                let op = s.digest.as_mut().ok_or(Error::OperationNotInitialized)?;
                op.parts.enter(Parts::Multi)?;
                let needed = op.hasher.output_len();
                match &out {
                    None => return Ok(needed),
                    Some(b) if b.len() < needed => return Err(Error::BufferTooSmall { needed }),
                    Some(_) => {}
                }
                let h = s.digest.take().ok_or(Error::OperationNotInitialized)?.hasher;
                output(&h.finalize(), out)
            })
        })
    }

    /// `C_SignInit`.
    pub fn sign_init(&self, sh: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
        self.with(|i| {
            let slot = i.session(sh)?.slot;
            if i.session(sh)?.sign.is_some() {
                return Err(Error::OperationActive);
            }
            let scheme = SignScheme::from_mechanism(m)?;
            // Which mechanism a host signs with decides whether the nodes see the data (and their policy holds)
            // or only a digest: logged so an operator can tell for their host.
            tracing::info!(
                mechanism = format_args!("{:#x}", m.ty),
                data = scheme.sends_data(),
                "C_SignInit"
            );
            let o = i.visible(sh, key).map_err(|e| match e {
                Error::ObjectHandleInvalid if !i.user_logged_in(slot) => Error::UserNotLoggedIn,
                Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
                other => other,
            })?;
            if o.class() != Some(CKO_PRIVATE_KEY) {
                return Err(Error::KeyHandleInvalid);
            }
            let public = o.public_key()?;
            if mechanism::family_of(&public) != scheme.family() {
                return Err(Error::KeyTypeInconsistent);
            }
            if !o.flag(CKA_SIGN, false) {
                return Err(Error::KeyFunctionNotPermitted);
            }
            let key = o.key.clone().ok_or(Error::KeyHandleInvalid)?;
            if i.store.deletion_pending(&key)? {
                // Destroyed; the object only waits for nodes that were down to delete their shares.
                return Err(Error::KeyFunctionNotPermitted);
            }
            i.session_mut(sh)?.sign = Some(SignOp {
                scheme,
                public,
                key,
                data: Vec::new(),
                parts: Parts::Undecided,
            });
            Ok(())
        })
    }

    /// `C_Sign`: single part.
    pub fn sign(&self, sh: CK_SESSION_HANDLE, data: &[u8], out: Option<&mut [u8]>) -> Result<usize> {
        self.ending_on_error(sh, Operation::Sign, || self.sign_with(sh, Some(data), out))
    }

    /// `C_SignUpdate`.
    pub fn sign_update(&self, sh: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.ending_on_error(sh, Operation::Sign, || {
            self.with(|i| {
                let s = i.session_mut(sh)?;
                let op = s.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
                op.parts.enter(Parts::Multi)?;
                op.data.extend_from_slice(data);
                Ok(())
            })
        })
    }

    /// `C_SignFinal`.
    pub fn sign_final(&self, sh: CK_SESSION_HANDLE, out: Option<&mut [u8]>) -> Result<usize> {
        self.ending_on_error(sh, Operation::Sign, || self.sign_with(sh, None, out))
    }

    fn sign_with(&self, sh: CK_SESSION_HANDLE, data: Option<&[u8]>, out: Option<&mut [u8]>) -> Result<usize> {
        // Under the lock: length answers stay local; otherwise the operation leaves the session.
        let op = self.with(|i| {
            let s = i.session_mut(sh)?;
            let op = s.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
            op.parts.enter(if data.is_some() {
                Parts::Single
            } else {
                Parts::Multi
            })?;
            let needed = mechanism::signature_len(&op.public);
            match &out {
                None => return Ok(Err(needed)),
                Some(b) if b.len() < needed => return Err(Error::BufferTooSmall { needed }),
                Some(_) => {}
            }
            let mut op = s.sign.take().ok_or(Error::OperationNotInitialized)?;
            if let Some(d) = data {
                op.data.extend_from_slice(d);
            }
            Ok(Ok(op))
        })?;
        let op = match op {
            Ok(op) => op,
            Err(needed) => return Ok(needed),
        };
        let request = op.scheme.request(&op.data, &op.public)?;
        let backend = self.backend()?;
        let signature = backend.sign(&op.key, &request)?;
        // Never release a signature that does not verify (PSS checks the salt length it asked for).
        mechanism::verify(&op.scheme, &op.public, &op.data, &signature).map_err(|e| {
            tracing::error!(error = %e, "backend returned a signature that does not verify");
            Error::Backend(crate::backend::BackendError::Cluster(
                "invalid signature from the cluster".into(),
            ))
        })?;
        output(&signature, out)
    }

    /// `C_VerifyInit`: with a public key object (or a private key object, whose public attributes are used).
    pub fn verify_init(&self, sh: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
        self.with(|i| {
            if i.session(sh)?.verify.is_some() {
                return Err(Error::OperationActive);
            }
            let scheme = SignScheme::from_mechanism(m)?;
            let o = i.visible(sh, key).map_err(|e| match e {
                Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
                other => other,
            })?;
            let public = match o.class() {
                Some(CKO_PUBLIC_KEY) if o.flag(CKA_VERIFY, false) => o.public_key()?,
                Some(CKO_PUBLIC_KEY) => return Err(Error::KeyFunctionNotPermitted),
                Some(CKO_PRIVATE_KEY) => o.public_key()?,
                _ => return Err(Error::KeyHandleInvalid),
            };
            if mechanism::family_of(&public) != scheme.family() {
                return Err(Error::KeyTypeInconsistent);
            }
            i.session_mut(sh)?.verify = Some(VerifyOp {
                scheme,
                public,
                data: Vec::new(),
                parts: Parts::Undecided,
            });
            Ok(())
        })
    }

    /// `C_Verify`.
    pub fn verify(&self, sh: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        let mut op = self.with(|i| {
            i.session_mut(sh)?
                .verify
                .take()
                .ok_or(Error::OperationNotInitialized)
        })?;
        op.parts.enter(Parts::Single)?;
        mechanism::verify(&op.scheme, &op.public, data, signature)
    }

    /// `C_VerifyUpdate`.
    pub fn verify_update(&self, sh: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.ending_on_error(sh, Operation::Verify, || {
            self.with(|i| {
                let op = i
                    .session_mut(sh)?
                    .verify
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                op.parts.enter(Parts::Multi)?;
                op.data.extend_from_slice(data);
                Ok(())
            })
        })
    }

    /// `C_VerifyFinal`.
    pub fn verify_final(&self, sh: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        let op = self.with(|i| {
            i.session_mut(sh)?
                .verify
                .take()
                .ok_or(Error::OperationNotInitialized)
        })?;
        mechanism::verify(&op.scheme, &op.public, &op.data, signature)
    }

    /// `C_GenerateKey`: `CKM_AES_KEY_GEN` only, an AES key (`CKA_VALUE_LEN` 16, 24 or 32) from the operating
    /// system's CSPRNG, held in the session to unwrap keys with (see [`crate::object::aes_key_object`]).
    pub fn generate_key(
        &self,
        sh: CK_SESSION_HANDLE,
        m: &Mechanism,
        t: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.with(|i| i.session(sh).map(|_| ()))?;
        if m.ty != CKM_AES_KEY_GEN {
            return Err(Error::MechanismInvalid);
        }
        if m.param != mechanism::MechParam::None {
            return Err(Error::MechanismParamInvalid("CKM_AES_KEY_GEN takes no parameter"));
        }
        let len = t
            .ulong(CKA_VALUE_LEN)?
            .ok_or(Error::TemplateIncomplete("CKA_VALUE_LEN"))?;
        let len = usize::try_from(len).map_err(|_| Error::KeySizeRange)?;
        if !object::AES_KEY_LENGTHS.contains(&len) {
            return Err(Error::KeySizeRange);
        }
        if t.get(CKA_VALUE).is_some() {
            return Err(Error::TemplateInconsistent("CKA_VALUE of a key to generate"));
        }
        let mut value = zeroize::Zeroizing::new(vec![0u8; len]);
        getrandom::fill(&mut value).map_err(|_| Error::Random)?;
        let o = object::aes_key_object(value, CKM_AES_KEY_GEN, t)?;
        self.with(|i| {
            i.check_write(sh, o.is_token(), o.is_private())?;
            i.insert(sh, o)
        })
    }

    /// `C_GenerateKeyPair`: the backend creates the key (lock released); the module stores the two objects.
    pub fn generate_key_pair(
        &self,
        sh: CK_SESSION_HANDLE,
        m: &Mechanism,
        public_t: &Template,
        private_t: &Template,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        if m.param != mechanism::MechParam::None {
            return Err(Error::MechanismParamInvalid(
                "key-pair generation takes no parameter",
            ));
        }
        let (kind, family) = key_kind(m.ty, public_t)?;
        for t in [public_t, private_t] {
            if let Some(c) = t.ulong(CKA_CLASS)?
                && c != CKO_PUBLIC_KEY
                && c != CKO_PRIVATE_KEY
            {
                return Err(Error::TemplateInconsistent("CKA_CLASS"));
            }
            if let Some(kt) = t.ulong(CKA_KEY_TYPE)?
                && kt != key_type_of(family)
            {
                return Err(Error::TemplateInconsistent("CKA_KEY_TYPE"));
            }
        }
        // Check both templates before any key exists.
        let mut probe_pub = Object::default();
        let mut probe_priv = Object::default();
        probe_priv.set(CKA_CLASS, object::encode_ulong(CKO_PRIVATE_KEY));
        object::apply_key_template(&mut probe_pub, public_t)?;
        object::apply_key_template(&mut probe_priv, private_t)?;
        let token = public_t.bool(CKA_TOKEN)?.unwrap_or(false) || private_t.bool(CKA_TOKEN)?.unwrap_or(false);
        let private =
            private_t.bool(CKA_PRIVATE)?.unwrap_or(true) || public_t.bool(CKA_PRIVATE)?.unwrap_or(false);
        let backend = self.with(|i| {
            i.check_write(sh, token, private)?;
            supports(&i.backend.capabilities(), family, kind)?;
            Ok(i.backend.clone())
        })?;
        let (public, key) = self.fresh_key(sh, backend.as_ref(), kind)?;
        let stored = (|| {
            let (mut po, mut ko) = object::key_pair_objects(&public, m.ty, key.clone())?;
            if let Some(p) = public_t.get(CKA_EC_PARAMS) {
                po.set(CKA_EC_PARAMS, p.to_vec());
                ko.set(CKA_EC_PARAMS, p.to_vec());
            }
            object::apply_key_template(&mut po, public_t)?;
            object::apply_key_template(&mut ko, private_t)?;
            self.with(|i| {
                let ph = i.insert(sh, po)?;
                match i.insert(sh, ko) {
                    Ok(kh) => Ok((ph, kh)),
                    Err(e) => {
                        let _ = i.session_objects.remove(&ph).is_some() || i.store.delete_object(ph).is_ok();
                        Err(e)
                    }
                }
            })
        })();
        if stored.is_err() {
            self.destroy_keys(backend.as_ref(), vec![key]);
        }
        stored
    }
}

/// How many times key-pair generation asks the backend again for a key whose public part no object of the token
/// holds yet.
const FRESH_KEY_ATTEMPTS: usize = 8;

impl Module {
    /// A generated key whose public key is not already on the session's token (or among its session objects):
    /// two key objects with one public key would confuse every consumer that tells keys apart by their public part
    /// (DNSSEC key tags, certificates). Real key generation never repeats; a backend dealing from a few committed
    /// test primes does, so a repeat is destroyed and generation asked again, up to [`FRESH_KEY_ATTEMPTS`] times.
    fn fresh_key(
        &self,
        sh: CK_SESSION_HANDLE,
        backend: &dyn crate::backend::Backend,
        kind: KeyKind,
    ) -> Result<(PublicKey, KeyRef)> {
        let mut attempts = 0;
        loop {
            let (public, key) = backend.generate(kind)?;
            attempts += 1;
            let taken = self.with(|i| {
                let slot = i.session(sh)?.slot;
                let mut holders = i.store.object_handles(i.token_name(slot)?)?.into_iter();
                let on_token = holders.any(|h| {
                    matches!(i.store.object(h), Ok(Some((_, o))) if o.public_key().ok().as_ref() == Some(&public))
                });
                Ok(on_token
                    || i
                        .session_objects
                        .values()
                        .any(|so| so.slot == slot && so.object.public_key().ok().as_ref() == Some(&public)))
            })?;
            if !taken {
                return Ok((public, key));
            }
            self.destroy_keys(backend, vec![key]);
            if attempts >= FRESH_KEY_ATTEMPTS {
                return Err(Error::Internal(
                    "key-pair generation keeps returning a key the token already holds",
                ));
            }
        }
    }
}

/// Whether the backend makes this key: `CKR_MECHANISM_INVALID` for a family it does not make at all,
/// `CKR_KEY_SIZE_RANGE` for an RSA size outside what it makes (the range `C_GetMechanismInfo` reports), whichever
/// side of the range.
fn supports(caps: &crate::backend::Capabilities, f: KeyFamily, kind: KeyKind) -> Result<()> {
    let ok = match (f, kind) {
        (KeyFamily::Rsa, KeyKind::Rsa { bits }) => {
            if caps.rsa && !(caps.rsa_bits.0..=caps.rsa_bits.1).contains(&bits) {
                return Err(Error::KeySizeRange);
            }
            caps.rsa
        }
        (KeyFamily::P256, _) => caps.p256,
        (KeyFamily::Ed25519, _) => caps.ed25519,
        _ => false,
    };
    if ok { Ok(()) } else { Err(Error::MechanismInvalid) }
}

fn key_type_of(f: KeyFamily) -> CK_KEY_TYPE {
    match f {
        KeyFamily::Rsa => CKK_RSA,
        KeyFamily::P256 => CKK_EC,
        KeyFamily::Ed25519 => CKK_EC_EDWARDS,
    }
}

/// The key kind a generation mechanism and public template ask for.
fn key_kind(mech: CK_MECHANISM_TYPE, t: &Template) -> Result<(KeyKind, KeyFamily)> {
    match mech {
        CKM_RSA_PKCS_KEY_PAIR_GEN => {
            let bits = t
                .ulong(CKA_MODULUS_BITS)?
                .ok_or(Error::TemplateIncomplete("CKA_MODULUS_BITS"))?;
            let bits = usize::try_from(bits).map_err(|_| Error::KeySizeRange)?;
            if let Some(e) = t.get(CKA_PUBLIC_EXPONENT) {
                let trimmed: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
                if trimmed != [1, 0, 1] {
                    return Err(Error::TemplateInconsistent(
                        "only public exponent 65537 is supported",
                    ));
                }
            }
            Ok((KeyKind::Rsa { bits }, KeyFamily::Rsa))
        }
        CKM_EC_KEY_PAIR_GEN => {
            let p = t
                .get(CKA_EC_PARAMS)
                .ok_or(Error::TemplateIncomplete("CKA_EC_PARAMS"))?;
            if p != object::P256_EC_PARAMS && p != b"\x13\x0aprime256v1" {
                return Err(Error::CurveNotSupported);
            }
            Ok((KeyKind::P256, KeyFamily::P256))
        }
        // GnuTLS 3.7 (Knot's `keymgr generate algorithm=ed25519`) asks for an Ed25519 key pair with the signing
        // mechanism CKM_EDDSA: taken as CKM_EC_EDWARDS_KEY_PAIR_GEN, since nothing else can be meant.
        CKM_EC_EDWARDS_KEY_PAIR_GEN | CKM_EDDSA => match t.get(CKA_EC_PARAMS) {
            None => Ok((KeyKind::Ed25519, KeyFamily::Ed25519)),
            Some(p) if p == object::ED25519_EC_PARAMS_OID || p == object::ED25519_EC_PARAMS_NAME => {
                Ok((KeyKind::Ed25519, KeyFamily::Ed25519))
            }
            Some(_) => Err(Error::CurveNotSupported),
        },
        _ => Err(Error::MechanismInvalid),
    }
}
