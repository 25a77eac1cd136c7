//! Object functions (PKCS#11 v3.0 §5.7): create, copy, destroy, attributes, size, search.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{Instance, Module, SessionObject};
use crate::backend::{Backend, PrivateKeyMaterial};
use crate::error::{Error, Result};
use crate::object::{self, Lookup, Object, Template};

/// One entry of a `C_GetAttributeValue` template: the type, the caller's buffer (absent for a length query),
/// and the length to report back.
#[derive(Debug)]
pub struct AttrRequest<'a> {
    /// `type`.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// `pValue` as a slice of `ulValueLen` bytes, or `None` when `pValue` is NULL.
    pub buf: Option<&'a mut [u8]>,
    /// The `ulValueLen` to write back.
    pub len: CK_ULONG,
}

impl Instance {
    /// The object `h` as the session sees it (cloned), or `ObjectHandleInvalid`.
    pub(super) fn visible(&self, sh: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) -> Result<Object> {
        let slot = self.session(sh)?.slot;
        let o = if let Some(so) = self.session_objects.get(&h) {
            if so.slot != slot {
                return Err(Error::ObjectHandleInvalid);
            }
            so.object.clone()
        } else {
            let (token, o) = self.store.object(h)?.ok_or(Error::ObjectHandleInvalid)?;
            if token != self.token_name(slot)? {
                return Err(Error::ObjectHandleInvalid);
            }
            o
        };
        if o.is_private() && !self.user_logged_in(slot) {
            return Err(Error::ObjectHandleInvalid);
        }
        Ok(o)
    }

    /// Checks that the session may create or change an object with these token/private flags.
    pub(super) fn check_write(&self, sh: CK_SESSION_HANDLE, token: bool, private: bool) -> Result<()> {
        let s = self.session(sh)?;
        if token && !s.rw {
            return Err(Error::SessionReadOnly);
        }
        if private && !self.user_logged_in(s.slot) {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    /// Stores a new object as a token or session object.
    pub(super) fn insert(&mut self, sh: CK_SESSION_HANDLE, o: Object) -> Result<CK_OBJECT_HANDLE> {
        let slot = self.session(sh)?.slot;
        if o.is_token() && o.secret.is_some() {
            return Err(Error::TemplateInconsistent(
                "secret keys are session objects only (the module never stores them)",
            ));
        }
        if o.is_token() {
            let name = self.token_name(slot)?.to_string();
            self.store.insert_object(&name, &o)
        } else {
            let h = self.next_object;
            self.next_object += 1;
            self.session_objects.insert(
                h,
                SessionObject {
                    session: sh,
                    slot,
                    object: o,
                },
            );
            Ok(h)
        }
    }

    fn replace(&mut self, h: CK_OBJECT_HANDLE, o: Object) -> Result<()> {
        match self.session_objects.get_mut(&h) {
            Some(so) => {
                so.object = o;
                Ok(())
            }
            None => self.store.update_object(h, &o),
        }
    }
}

impl Module {
    /// `C_CreateObject`: data objects, public keys, and private keys (imported: split by the backend and
    /// forgotten; the module keeps only the public part).
    pub fn create_object(&self, sh: CK_SESSION_HANDLE, t: &Template) -> Result<CK_OBJECT_HANDLE> {
        let class = t
            .ulong(CKA_CLASS)?
            .ok_or(Error::TemplateIncomplete("CKA_CLASS"))?;
        let token = t.bool(CKA_TOKEN)?.unwrap_or(false);
        match class {
            CKO_DATA | CKO_PUBLIC_KEY => {
                let o = if class == CKO_DATA {
                    object::data_object(t)?
                } else {
                    object::public_key_object(t)?
                };
                self.with(|i| {
                    i.check_write(sh, o.is_token(), o.is_private())?;
                    i.insert(sh, o)
                })
            }
            CKO_PRIVATE_KEY => {
                let private = t.bool(CKA_PRIVATE)?.unwrap_or(true);
                self.with(|i| i.check_write(sh, token, private))?;
                let material = private_key_from_template(t)?;
                let rest = Template(
                    t.0.iter()
                        .filter(|(ty, _)| {
                            ![
                                CKA_MODULUS,
                                CKA_PRIVATE_EXPONENT,
                                CKA_PRIME_1,
                                CKA_PRIME_2,
                                CKA_EXPONENT_1,
                                CKA_EXPONENT_2,
                                CKA_COEFFICIENT,
                                CKA_VALUE,
                                CKA_EC_PARAMS,
                            ]
                            .contains(ty)
                        })
                        .cloned()
                        .collect(),
                );
                self.import_private_key(sh, material, &rest)
            }
            CKO_SECRET_KEY => {
                let value = t.get(CKA_VALUE).ok_or(Error::TemplateIncomplete("CKA_VALUE"))?;
                let o =
                    object::aes_key_object(Zeroizing::new(value.to_vec()), CK_UNAVAILABLE_INFORMATION, t)?;
                self.with(|i| {
                    i.check_write(sh, o.is_token(), o.is_private())?;
                    i.insert(sh, o)
                })
            }
            _ => Err(Error::AttributeValueInvalid("unsupported CKA_CLASS")),
        }
    }

    /// An existing private key (from `C_CreateObject` or `C_UnwrapKey`) split by the backend and forgotten; the
    /// private-key object gets the caller's template `t` (without the key's own components), and is marked neither
    /// local, always sensitive nor never extractable. The template is checked before the key reaches the backend;
    /// if the object cannot be stored after all, the shares are destroyed again.
    pub(super) fn import_private_key(
        &self,
        sh: CK_SESSION_HANDLE,
        material: PrivateKeyMaterial,
        t: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let token = t.bool(CKA_TOKEN)?.unwrap_or(false);
        let private = t.bool(CKA_PRIVATE)?.unwrap_or(true);
        let backend = self.with(|i| {
            i.check_write(sh, token, private)?;
            Ok(i.backend.clone())
        })?;
        let mut probe = Object::default();
        probe.set(CKA_CLASS, object::encode_ulong(CKO_PRIVATE_KEY));
        object::apply_key_template(&mut probe, t)?;
        let (public, key) = backend.import(material)?;
        let (_, mut private_obj) =
            object::key_pair_objects(&public, CK_UNAVAILABLE_INFORMATION, key.clone())?;
        let stored = object::apply_key_template(&mut private_obj, t)
            .and_then(|()| self.with(|i| i.insert(sh, private_obj)));
        if stored.is_err() {
            self.destroy_keys(backend.as_ref(), vec![key]);
        }
        stored
    }

    /// `C_CopyObject`: the copy refers to the same key; the key's shares are destroyed only with its last object.
    pub fn copy_object(
        &self,
        sh: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
        t: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.with(|i| {
            let mut o = i.visible(sh, h)?;
            if !o.flag(CKA_COPYABLE, true) {
                return Err(Error::ActionProhibited);
            }
            object::modify(&mut o, t, true)?;
            i.check_write(sh, o.is_token(), o.is_private())?;
            i.insert(sh, o)
        })
    }

    /// `C_DestroyObject`: when no other object refers to the key any more, its shares are deleted. Shares on nodes
    /// that do not answer stay pending deletion (recorded in the store, retried here and by `C_Initialize`): the
    /// object is gone, but the call fails with `CKR_DEVICE_ERROR` and the session's `ulDeviceError` counts them.
    pub fn destroy_object(&self, sh: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) -> Result<()> {
        // A destroy that waits for shares (this object's, from an earlier call) ...
        let waiting = self.with(|i| {
            let key = i.visible(sh, h).ok().and_then(|o| o.key);
            Ok(match key {
                Some(k) => i.store.deletion_pending(&k)?,
                None => false,
            })
        })?;
        // ... is finished by the retry, which removes objects whose last pending share is deleted now.
        if let Err(e) = self.retry_pending_deletions() {
            tracing::warn!(error = %e, "could not retry pending share deletions");
        }
        let (backend, key) = self.with(|i| {
            let o = match i.visible(sh, h) {
                Err(Error::ObjectHandleInvalid) if waiting => return Ok((i.backend.clone(), None)),
                other => other?,
            };
            i.check_write(sh, o.is_token(), false)?;
            if !o.flag(CKA_DESTROYABLE, true) {
                return Err(Error::ActionProhibited);
            }
            let key = match o.key {
                Some(k) if !i.key_in_use_except(&k, h)? => Some(k),
                _ => None,
            };
            if key.is_none() {
                i.remove_object(h)?;
            }
            Ok((i.backend.clone(), key))
        })?;
        let Some(key) = key else {
            return self.set_device_error(sh, 0);
        };
        // Shares of a key destroyed before and still pending are retried above; a first destroy asks every node.
        let left = match self.with(|i| i.store.deletion_pending(&key))? {
            true => self.with(|i| {
                Ok(i.store
                    .pending_deletions()?
                    .into_iter()
                    .filter(|p| p.key == key)
                    .map(|p| p.node)
                    .collect::<Vec<_>>())
            })?,
            false => self
                .destroy_keys(backend.as_ref(), vec![key])
                .into_iter()
                .map(|u| u.node)
                .collect(),
        };
        self.set_device_error(sh, left.len())?;
        if left.is_empty() {
            self.with(|i| i.remove_object(h))
        } else {
            // The object stays (it can no longer sign) until every node has deleted its share: a later
            // C_DestroyObject, or any retry (C_Initialize), finishes the job and removes it.
            Err(Error::SharesPendingDeletion { nodes: left })
        }
    }

    /// `ulDeviceError` of the session: the number of key shares its last `C_DestroyObject` left on nodes.
    fn set_device_error(&self, sh: CK_SESSION_HANDLE, shares: usize) -> Result<()> {
        self.with(|i| {
            if let Some(s) = i.sessions.get_mut(&sh) {
                s.device_error = shares as CK_ULONG;
            }
            Ok(())
        })
    }

    /// `C_GetObjectSize`.
    pub fn object_size(&self, sh: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) -> Result<CK_ULONG> {
        self.with(|i| Ok(i.visible(sh, h)?.size() as CK_ULONG))
    }

    /// `C_GetAttributeValue` with the standard partial-failure semantics: every entry is processed; an entry
    /// that is sensitive, unknown, or whose buffer is too small gets `CK_UNAVAILABLE_INFORMATION`, and the
    /// matching error is returned after all entries are filled in.
    pub fn get_attribute_value(
        &self,
        sh: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
        reqs: &mut [AttrRequest<'_>],
    ) -> Result<()> {
        let o = self.with(|i| i.visible(sh, h))?;
        let mut result = Ok(());
        for r in reqs.iter_mut() {
            let outcome = match o.lookup(r.ty) {
                Lookup::Sensitive => Err(Error::AttributeSensitive),
                Lookup::Invalid => Err(Error::AttributeTypeInvalid),
                Lookup::Value(v) => match r.buf.as_deref_mut() {
                    None => Ok(v.len()),
                    Some(buf) if buf.len() >= v.len() => {
                        buf[..v.len()].copy_from_slice(v);
                        Ok(v.len())
                    }
                    Some(_) => Err(Error::BufferTooSmall { needed: v.len() }),
                },
            };
            match outcome {
                Ok(n) => r.len = n as CK_ULONG,
                Err(e) => {
                    r.len = CK_UNAVAILABLE_INFORMATION;
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        result
    }

    /// `C_SetAttributeValue`.
    pub fn set_attribute_value(
        &self,
        sh: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
        t: &Template,
    ) -> Result<()> {
        self.with(|i| {
            let mut o = i.visible(sh, h)?;
            i.check_write(sh, o.is_token(), false)?;
            if !o.flag(CKA_MODIFIABLE, true) {
                return Err(Error::ActionProhibited);
            }
            object::modify(&mut o, t, false)?;
            i.replace(h, o)
        })
    }

    /// `C_FindObjectsInit`: the matching handles are collected now.
    pub fn find_objects_init(&self, sh: CK_SESSION_HANDLE, t: &Template) -> Result<()> {
        self.with(|i| {
            let s = i.session(sh)?;
            if s.find.is_some() {
                return Err(Error::OperationActive);
            }
            let slot = s.slot;
            let mut found = Vec::new();
            for h in i.store.object_handles(i.token_name(slot)?)? {
                if let Ok(o) = i.visible(sh, h)
                    && o.matches(t)
                {
                    found.push(h);
                }
            }
            let mut session_found: Vec<_> = i
                .session_objects
                .iter()
                .filter(|(_, so)| so.slot == slot)
                .filter(|(_, so)| !so.object.is_private() || i.user_logged_in(slot))
                .filter(|(_, so)| so.object.matches(t))
                .map(|(h, _)| *h)
                .collect();
            session_found.sort_unstable();
            found.extend(session_found);
            found.reverse(); // popped from the end, so results come out in handle order
            i.session_mut(sh)?.find = Some(found);
            Ok(())
        })
    }

    /// `C_FindObjects`: up to `max` further handles.
    pub fn find_objects(&self, sh: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.with(|i| {
            let found = i
                .session_mut(sh)?
                .find
                .as_mut()
                .ok_or(Error::OperationNotInitialized)?;
            let n = max.min(found.len());
            Ok((0..n).filter_map(|_| found.pop()).collect())
        })
    }

    /// `C_FindObjectsFinal`.
    pub fn find_objects_final(&self, sh: CK_SESSION_HANDLE) -> Result<()> {
        self.with(|i| {
            i.session_mut(sh)?
                .find
                .take()
                .map(|_| ())
                .ok_or(Error::OperationNotInitialized)
        })
    }

    /// The backend, for operations that call it outside the lock.
    pub(super) fn backend(&self) -> Result<Arc<dyn Backend>> {
        self.with(|i| Ok(i.backend.clone()))
    }
}

/// The private key of a `C_CreateObject` template: RSA (`CKK_RSA`, CRT components), P-256 (`CKK_EC` with the
/// P-256 `CKA_EC_PARAMS` and the scalar in `CKA_VALUE`) or Ed25519 (`CKK_EC_EDWARDS`, the RFC 8032 seed in
/// `CKA_VALUE`). Other curves: `CKR_CURVE_NOT_SUPPORTED`; other key types: `CKR_ATTRIBUTE_VALUE_INVALID`.
fn private_key_from_template(t: &Template) -> Result<PrivateKeyMaterial> {
    let value = || -> Result<Zeroizing<[u8; 32]>> {
        let v = t.get(CKA_VALUE).ok_or(Error::TemplateIncomplete("CKA_VALUE"))?;
        // Some writers (pkcs11-tool from an OpenSSL BIGNUM) drop leading zero bytes of the scalar.
        let mut out = Zeroizing::new([0u8; 32]);
        if v.len() > 32 {
            return Err(Error::AttributeValueInvalid("CKA_VALUE longer than 32 bytes"));
        }
        out[32 - v.len()..].copy_from_slice(v);
        Ok(out)
    };
    match t.ulong(CKA_KEY_TYPE)? {
        Some(CKK_RSA) => rsa_private_key_from_template(t),
        Some(CKK_EC) => {
            let p = t
                .get(CKA_EC_PARAMS)
                .ok_or(Error::TemplateIncomplete("CKA_EC_PARAMS"))?;
            if p != object::P256_EC_PARAMS && p != b"\x13\x0aprime256v1" {
                return Err(Error::CurveNotSupported);
            }
            Ok(PrivateKeyMaterial::P256Scalar(value()?))
        }
        Some(CKK_EC_EDWARDS) => {
            match t.get(CKA_EC_PARAMS) {
                None => {}
                Some(p) if p == object::ED25519_EC_PARAMS_OID || p == object::ED25519_EC_PARAMS_NAME => {}
                Some(_) => return Err(Error::CurveNotSupported),
            }
            if t.get(CKA_VALUE).is_some_and(|v| v.len() != 32) {
                return Err(Error::AttributeValueInvalid(
                    "CKA_VALUE of an Ed25519 key is 32 bytes",
                ));
            }
            Ok(PrivateKeyMaterial::Ed25519Seed(value()?))
        }
        _ => Err(Error::AttributeValueInvalid(
            "only RSA, P-256 and Ed25519 private keys can be imported",
        )),
    }
}

/// Builds a PKCS#1 `RSAPrivateKey` from the CRT components of a `C_CreateObject` template.
fn rsa_private_key_from_template(t: &Template) -> Result<PrivateKeyMaterial> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let big = |ty, what| -> Result<rsa::BoxedUint> {
        let v = t.get(ty).ok_or(Error::TemplateIncomplete(what))?;
        let bits = u32::try_from(v.len().max(1) * 8).map_err(|_| Error::AttributeValueInvalid(what))?;
        rsa::BoxedUint::from_be_slice(v, bits).map_err(|_| Error::AttributeValueInvalid(what))
    };
    let n = big(CKA_MODULUS, "CKA_MODULUS")?;
    let e = big(CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?;
    let d = big(CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?;
    let p = big(CKA_PRIME_1, "CKA_PRIME_1")?;
    let q = big(CKA_PRIME_2, "CKA_PRIME_2")?;
    let key = rsa::PrivateKey::from_components(n, e, d, vec![p, q])
        .map_err(|_| Error::TemplateInconsistent("RSA components do not form a key"))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|_| Error::Internal("PKCS#1 encoding"))?;
    Ok(PrivateKeyMaterial::RsaPkcs1Der(Zeroizing::new(
        der.as_bytes().to_vec(),
    )))
}
