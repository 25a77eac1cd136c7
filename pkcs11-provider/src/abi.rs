//! The C ABI: every PKCS#11 entry point, and nothing else.
//!
//! Each `C_*` function converts its raw arguments into safe values (NULL checks included), calls the safe core
//! ([`crate::module::Module`]) inside [`guard`], and writes results back. `guard` catches panics, so no panic
//! crosses into the host, and maps [`Error`] to `CK_RV`. The function lists are immutable statics.
#![allow(unsafe_code)]
// Entry points are `pub` because the host resolves them by name (`#[no_mangle]`), not through Rust paths.
#![allow(non_snake_case, unreachable_pub, clippy::missing_safety_doc)]

use std::os::raw::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::mechanism::{MechParam, Mechanism};
use crate::module::{AttrRequest, Module, Operation};
use crate::object::Template;

/// The module instance the host talks to.
static MODULE: Module = Module::new();

/// Runs the safe core, catching panics, and maps the result to a `CK_RV`.
fn guard(f: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "PKCS#11 call failed");
            e.rv()
        }
        Err(_) => {
            tracing::error!("panic caught at the PKCS#11 boundary");
            CKR_GENERAL_ERROR
        }
    }
}

/// `len` bytes at `p` as a slice; NULL is accepted only for an empty input.
unsafe fn bytes<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::ArgumentsBad("NULL input buffer"));
    }
    let len = usize::try_from(len).map_err(|_| Error::ArgumentsBad("length"))?;
    // SAFETY: the caller passed `len` readable bytes at the non-NULL `p` (PKCS#11 calling convention), and the
    // slice does not outlive the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A writable output argument; NULL is `CKR_ARGUMENTS_BAD`.
unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T> {
    // SAFETY: a non-NULL output pointer points to a writable `T` owned by the caller for the duration of the call.
    unsafe { p.as_mut() }.ok_or(Error::ArgumentsBad("NULL output pointer"))
}

/// Runs `f` with the caller's output buffer (`None` for a length query) and writes the length back, including
/// the needed length on `CKR_BUFFER_TOO_SMALL`.
unsafe fn with_output(
    p: *mut u8,
    plen: *mut CK_ULONG,
    f: impl FnOnce(Option<&mut [u8]>) -> Result<usize>,
) -> Result<()> {
    // SAFETY: see `out`.
    let len = unsafe { out(plen) }?;
    let buf = if p.is_null() {
        None
    } else {
        let n = usize::try_from(*len).map_err(|_| Error::ArgumentsBad("length"))?;
        // SAFETY: a non-NULL output buffer has `*plen` writable bytes (PKCS#11 calling convention).
        Some(unsafe { std::slice::from_raw_parts_mut(p, n) })
    };
    match f(buf) {
        Ok(n) => {
            *len = n as CK_ULONG;
            Ok(())
        }
        Err(Error::BufferTooSmall { needed }) => {
            *len = needed as CK_ULONG;
            Err(Error::BufferTooSmall { needed })
        }
        Err(e) => Err(e),
    }
}

/// Writes a list into a caller's array with the usual length-query conventions.
unsafe fn write_list<T: Copy>(p: *mut T, plen: *mut CK_ULONG, items: &[T]) -> Result<()> {
    // SAFETY: see `out`.
    let len = unsafe { out(plen) }?;
    if p.is_null() {
        *len = items.len() as CK_ULONG;
        return Ok(());
    }
    let room = usize::try_from(*len).map_err(|_| Error::ArgumentsBad("length"))?;
    *len = items.len() as CK_ULONG;
    if room < items.len() {
        return Err(Error::BufferTooSmall { needed: items.len() });
    }
    // SAFETY: the caller's array has room for `*plen` (>= items.len()) elements of `T`.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), p, items.len()) };
    Ok(())
}

/// Copies a caller's template.
unsafe fn template(p: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Template> {
    if count == 0 {
        return Ok(Template::default());
    }
    if p.is_null() {
        return Err(Error::ArgumentsBad("NULL template"));
    }
    let count = usize::try_from(count).map_err(|_| Error::ArgumentsBad("count"))?;
    // SAFETY: a non-NULL template has `count` readable `CK_ATTRIBUTE` entries.
    let attrs = unsafe { std::slice::from_raw_parts(p, count) };
    let mut t = Vec::with_capacity(count);
    for a in attrs {
        // SAFETY: each entry's `pValue` has `ulValueLen` readable bytes.
        let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen) }?;
        t.push((a.type_, v.to_vec()));
    }
    Ok(Template(t))
}

/// Copies a caller's mechanism, decoding the parameter structures this module understands.
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: a non-NULL mechanism pointer points to a readable `CK_MECHANISM`.
    let m = unsafe { p.as_ref() }.ok_or(Error::ArgumentsBad("NULL mechanism"))?;
    let len = usize::try_from(m.ulParameterLen).map_err(|_| Error::ArgumentsBad("length"))?;
    let param = match m.mechanism {
        _ if m.pParameter.is_null() || len == 0 => MechParam::None,
        CKM_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS => {
            if len != size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
                return Err(Error::MechanismParamInvalid("CK_RSA_PKCS_PSS_PARAMS size"));
            }
            // SAFETY: the parameter has exactly the size of the structure; read unaligned to be lenient.
            let pss = unsafe { (m.pParameter as *const CK_RSA_PKCS_PSS_PARAMS).read_unaligned() };
            MechParam::Pss {
                hash_alg: pss.hashAlg,
                mgf: pss.mgf,
                salt_len: pss.sLen,
            }
        }
        CKM_EDDSA => {
            if len != size_of::<CK_EDDSA_PARAMS>() {
                return Err(Error::MechanismParamInvalid("CK_EDDSA_PARAMS size"));
            }
            // SAFETY: as above.
            let ed = unsafe { (m.pParameter as *const CK_EDDSA_PARAMS).read_unaligned() };
            // SAFETY: the context pointer has `ulContextDataLen` readable bytes.
            let context = unsafe { bytes(ed.pContextData, ed.ulContextDataLen) }?.to_vec();
            MechParam::EdDsa {
                prehash: ed.phFlag != CK_FALSE,
                context,
            }
        }
        // SAFETY: the parameter has `ulParameterLen` readable bytes.
        _ => MechParam::Other(unsafe { bytes(m.pParameter as *const u8, m.ulParameterLen) }?.to_vec()),
    };
    Ok(Mechanism {
        ty: m.mechanism,
        param,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// General purpose (§5.4)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Initialize(pInitArgs: *mut c_void) -> CK_RV {
    guard(|| {
        // SAFETY: a non-NULL argument points to a `CK_C_INITIALIZE_ARGS` structure.
        if let Some(args) = unsafe { (pInitArgs as *const CK_C_INITIALIZE_ARGS).as_ref() } {
            if !args.pReserved.is_null() {
                return Err(Error::ArgumentsBad("pReserved must be NULL"));
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return Err(Error::ArgumentsBad("mutex functions must be all or none"));
            }
            // Whatever the flags and functions, the module always uses its own OS locks.
        }
        MODULE.initialize()
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Finalize(pReserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad("pReserved must be NULL"));
        }
        MODULE.finalize()
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInfo(pInfo: *mut CK_INFO) -> CK_RV {
    guard(|| {
        let info = MODULE.info()?;
        // SAFETY: see `out`.
        *unsafe { out(pInfo) }? = info;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        // SAFETY: see `out`. The list is an immutable static; callers only read through the pointer.
        *unsafe { out(ppFunctionList) }? = &raw const FUNCTION_LIST as *mut CK_FUNCTION_LIST;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: *mut CK_INTERFACE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `write_list`.
        unsafe { write_list(pInterfacesList, pulCount, &INTERFACES.0) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: *mut CK_UTF8CHAR,
    pVersion: *mut CK_VERSION,
    ppInterface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `out`.
        let dst = unsafe { out(ppInterface) }?;
        let name = if pInterfaceName.is_null() {
            None
        } else {
            // SAFETY: a non-NULL interface name is a NUL-terminated string.
            Some(unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) }.to_bytes())
        };
        // SAFETY: a non-NULL version points to a readable `CK_VERSION`.
        let version = unsafe { pVersion.as_ref() }.map(|v| (v.major, v.minor));
        if name.is_some_and(|n| n != b"PKCS 11") || flags & !INTERFACE_FLAGS != 0 {
            return Err(Error::ArgumentsBad("no such interface"));
        }
        let i = match version {
            None | Some((3, 0)) => 0,
            Some((2, 40)) => 1,
            _ => return Err(Error::ArgumentsBad("no such interface version")),
        };
        *dst = &raw const INTERFACES.0[i] as *mut CK_INTERFACE;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Slots and tokens (§5.5)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    let _ = tokenPresent; // every slot has its token
    guard(|| {
        let slots = MODULE.slot_list()?;
        // SAFETY: see `write_list`.
        unsafe { write_list(pSlotList, pulCount, &slots) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        let info = MODULE.slot_info(slotID)?;
        // SAFETY: see `out`.
        *unsafe { out(pInfo) }? = info;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let info = MODULE.token_info(slotID)?;
        // SAFETY: see `out`.
        *unsafe { out(pInfo) }? = info;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let list = MODULE.mechanism_list(slotID)?;
        // SAFETY: see `write_list`.
        unsafe { write_list(pMechanismList, pulCount, &list) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        let info = MODULE.mechanism_info(slotID, type_)?;
        // SAFETY: see `out`.
        *unsafe { out(pInfo) }? = info;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `bytes`.
        let pin = unsafe { bytes(pPin, ulPinLen) }?;
        if pLabel.is_null() {
            return Err(Error::ArgumentsBad("NULL label"));
        }
        // SAFETY: the label is a 32-byte blank-padded field.
        let label = unsafe { (pLabel as *const [u8; 32]).read_unaligned() };
        MODULE.init_token(slotID, pin, &label)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    // SAFETY: see `bytes`.
    guard(|| MODULE.init_pin(hSession, unsafe { bytes(pPin, ulPinLen) }?))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: *mut CK_UTF8CHAR,
    ulOldLen: CK_ULONG,
    pNewPin: *mut CK_UTF8CHAR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `bytes`.
        let (old, new) = unsafe { (bytes(pOldPin, ulOldLen)?, bytes(pNewPin, ulNewLen)?) };
        MODULE.set_pin(hSession, old, new)
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions (§5.6)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    pApplication: *mut c_void,
    Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    let _ = (pApplication, Notify); // the module never calls back
    guard(|| {
        // SAFETY: see `out`.
        let dst = unsafe { out(phSession) }?;
        *dst = MODULE.open_session(slotID, flags)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.close_session(hSession))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard(|| MODULE.close_all_sessions(slotID))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSessionInfo(hSession: CK_SESSION_HANDLE, pInfo: *mut CK_SESSION_INFO) -> CK_RV {
    guard(|| {
        let info = MODULE.session_info(hSession)?;
        // SAFETY: see `out`.
        *unsafe { out(pInfo) }? = info;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    // SAFETY: see `bytes`.
    guard(|| MODULE.login(hSession, userType, unsafe { bytes(pPin, ulPinLen) }?))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.logout(hSession))
}

// ---------------------------------------------------------------------------------------------------------------
// Objects (§5.7)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `template` and `out`.
        let (t, dst) = unsafe { (template(pTemplate, ulCount)?, out(phObject)?) };
        *dst = MODULE.create_object(hSession, &t)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phNewObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `template` and `out`.
        let (t, dst) = unsafe { (template(pTemplate, ulCount)?, out(phNewObject)?) };
        *dst = MODULE.copy_object(hSession, hObject, &t)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DestroyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| MODULE.destroy_object(hSession, hObject))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `out`.
        let dst = unsafe { out(pulSize) }?;
        *dst = MODULE.object_size(hSession, hObject)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        if pTemplate.is_null() && ulCount != 0 {
            return Err(Error::ArgumentsBad("NULL template"));
        }
        let count = usize::try_from(ulCount).map_err(|_| Error::ArgumentsBad("count"))?;
        let attrs: &mut [CK_ATTRIBUTE] = if count == 0 {
            &mut []
        } else {
            // SAFETY: a non-NULL template has `ulCount` writable entries.
            unsafe { std::slice::from_raw_parts_mut(pTemplate, count) }
        };
        let mut reqs = Vec::with_capacity(count);
        for a in attrs.iter() {
            let buf = if a.pValue.is_null() {
                None
            } else {
                let n = usize::try_from(a.ulValueLen).map_err(|_| Error::ArgumentsBad("length"))?;
                // SAFETY: a non-NULL `pValue` has `ulValueLen` writable bytes; entries do not overlap.
                Some(unsafe { std::slice::from_raw_parts_mut(a.pValue as *mut u8, n) })
            };
            reqs.push(AttrRequest {
                ty: a.type_,
                buf,
                len: 0,
            });
        }
        let result = MODULE.get_attribute_value(hSession, hObject, &mut reqs);
        if !matches!(
            result,
            Err(Error::SessionHandleInvalid | Error::ObjectHandleInvalid | Error::NotInitialized)
        ) {
            let lens: Vec<CK_ULONG> = reqs.iter().map(|r| r.len).collect();
            drop(reqs);
            for (a, len) in attrs.iter_mut().zip(lens) {
                a.ulValueLen = len;
            }
        }
        result
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `template`.
        let t = unsafe { template(pTemplate, ulCount) }?;
        MODULE.set_attribute_value(hSession, hObject, &t)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `template`.
        let t = unsafe { template(pTemplate, ulCount) }?;
        MODULE.find_objects_init(hSession, &t)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if phObject.is_null() && ulMaxObjectCount != 0 {
            return Err(Error::ArgumentsBad("NULL object array"));
        }
        // SAFETY: see `out`.
        let count = unsafe { out(pulObjectCount) }?;
        let max = usize::try_from(ulMaxObjectCount).map_err(|_| Error::ArgumentsBad("count"))?;
        let found = MODULE.find_objects(hSession, max)?;
        if !found.is_empty() {
            // SAFETY: the array has room for `ulMaxObjectCount` >= found.len() handles.
            unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), phObject, found.len()) };
        }
        *count = found.len() as CK_ULONG;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.find_objects_final(hSession))
}

// ---------------------------------------------------------------------------------------------------------------
// Digests (§5.12)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM) -> CK_RV {
    // SAFETY: see `mechanism`.
    guard(|| MODULE.digest_init(hSession, &unsafe { mechanism(pMechanism) }?))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Digest, || {
            // SAFETY: see `bytes` and `with_output`.
            let data = unsafe { bytes(pData, ulDataLen) }?;
            unsafe { with_output(pDigest, pulDigestLen, |o| MODULE.digest(hSession, data, o)) }
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Digest, || {
            // SAFETY: see `bytes`.
            MODULE.digest_update(hSession, unsafe { bytes(pPart, ulPartLen) }?)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Digest, || {
            // SAFETY: see `with_output`.
            unsafe { with_output(pDigest, pulDigestLen, |o| MODULE.digest_final(hSession, o)) }
        })
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Signing and verification (§5.13, §5.14)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: see `mechanism`.
    guard(|| MODULE.sign_init(hSession, &unsafe { mechanism(pMechanism) }?, hKey))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Sign, || {
            // SAFETY: see `bytes` and `with_output`.
            let data = unsafe { bytes(pData, ulDataLen) }?;
            unsafe { with_output(pSignature, pulSignatureLen, |o| MODULE.sign(hSession, data, o)) }
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Sign, || {
            // SAFETY: see `bytes`.
            MODULE.sign_update(hSession, unsafe { bytes(pPart, ulPartLen) }?)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Sign, || {
            // SAFETY: see `with_output`.
            unsafe { with_output(pSignature, pulSignatureLen, |o| MODULE.sign_final(hSession, o)) }
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: see `mechanism`.
    guard(|| MODULE.verify_init(hSession, &unsafe { mechanism(pMechanism) }?, hKey))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Verify, || {
            // SAFETY: see `bytes`.
            let (data, sig) = unsafe { (bytes(pData, ulDataLen)?, bytes(pSignature, ulSignatureLen)?) };
            MODULE.verify(hSession, data, sig)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Verify, || {
            // SAFETY: see `bytes`.
            MODULE.verify_update(hSession, unsafe { bytes(pPart, ulPartLen) }?)
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        MODULE.ending_on_error(hSession, Operation::Verify, || {
            // SAFETY: see `bytes`.
            MODULE.verify_final(hSession, unsafe { bytes(pSignature, ulSignatureLen) }?)
        })
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and randomness (§5.15, §5.16)

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: *mut CK_OBJECT_HANDLE,
    phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: see `mechanism`, `template` and `out`.
        let (m, pt, kt, ph, kh) = unsafe {
            (
                mechanism(pMechanism)?,
                template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
                out(phPublicKey)?,
                out(phPrivateKey)?,
            )
        };
        let (p, k) = MODULE.generate_key_pair(hSession, &m, &pt, &kt)?;
        *ph = p;
        *kh = k;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    pSeed: *mut CK_BYTE,
    ulSeedLen: CK_ULONG,
) -> CK_RV {
    // SAFETY: see `bytes`.
    guard(|| MODULE.seed_random(hSession, unsafe { bytes(pSeed, ulSeedLen) }?))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let n = usize::try_from(ulRandomLen).map_err(|_| Error::ArgumentsBad("length"))?;
        let buf: &mut [u8] = if n == 0 {
            &mut []
        } else if RandomData.is_null() {
            return Err(Error::ArgumentsBad("NULL output buffer"));
        } else {
            // SAFETY: the output buffer has `ulRandomLen` writable bytes.
            unsafe { std::slice::from_raw_parts_mut(RandomData, n) }
        };
        MODULE.generate_random(hSession, buf)
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Functions the module does not provide: CKR_FUNCTION_NOT_SUPPORTED (after the usual initialisation check).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetOperationState(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetOperationState(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: CK_OBJECT_HANDLE,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Encrypt(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptUpdate(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptFinal(_: CK_SESSION_HANDLE, _: *mut CK_BYTE, _: *mut CK_ULONG) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Decrypt(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptUpdate(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptFinal(_: CK_SESSION_HANDLE, _: *mut CK_BYTE, _: *mut CK_ULONG) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestKey(_: CK_SESSION_HANDLE, _: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignRecoverInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignRecover(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyRecoverInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyRecover(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestEncryptUpdate(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptDigestUpdate(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignEncryptUpdate(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptVerifyUpdate(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        MODULE.check_initialized()?;
        // SAFETY: see `mechanism`, `template` and `out`.
        let (m, t, h) = unsafe { (mechanism(pMechanism)?, template(pTemplate, ulCount)?, out(phKey)?) };
        *h = MODULE.generate_key(hSession, &m, &t)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WrapKey(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
    _: CK_OBJECT_HANDLE,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        MODULE.check_initialized()?;
        // SAFETY: see `mechanism`, `bytes`, `template` and `out`.
        let (m, wrapped, t, h) = unsafe {
            (
                mechanism(pMechanism)?,
                bytes(pWrappedKey, ulWrappedKeyLen)?,
                template(pTemplate, ulAttributeCount)?,
                out(phKey)?,
            )
        };
        *h = MODULE.unwrap_key(hSession, &m, hUnwrappingKey, wrapped, &t)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DeriveKey(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
    _: *mut CK_ATTRIBUTE,
    _: CK_ULONG,
    _: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionStatus(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotParallel)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CancelFunction(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotParallel)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: *mut CK_SLOT_ID,
    pReserved: *mut c_void,
) -> CK_RV {
    guard(|| {
        MODULE.check_initialized()?;
        if pSlot.is_null() || !pReserved.is_null() {
            return Err(Error::ArgumentsBad("pSlot must be set and pReserved NULL"));
        }
        MODULE.wait_for_slot_event(flags)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_LoginUser(
    _: CK_SESSION_HANDLE,
    _: CK_USER_TYPE,
    _: *mut CK_UTF8CHAR,
    _: CK_ULONG,
    _: *mut CK_UTF8CHAR,
    _: CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SessionCancel(_: CK_SESSION_HANDLE, _: CK_FLAGS) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageEncryptInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessage(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessageBegin(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessageNext(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
    _: CK_FLAGS,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageEncryptFinal(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageDecryptInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessage(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessageBegin(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessageNext(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
    _: CK_FLAGS,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageDecryptFinal(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageSignInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessage(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessageBegin(_: CK_SESSION_HANDLE, _: *mut c_void, _: CK_ULONG) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessageNext(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageSignFinal(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageVerifyInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessage(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessageBegin(_: CK_SESSION_HANDLE, _: *mut c_void, _: CK_ULONG) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessageNext(
    _: CK_SESSION_HANDLE,
    _: *mut c_void,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: CK_ULONG,
) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageVerifyFinal(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| MODULE.check_initialized().and(Err(Error::FunctionNotSupported)))
}

// ---------------------------------------------------------------------------------------------------------------
// The function lists and interfaces (immutable statics)

/// A function list struct `$ty` of version `$major.$minor` whose fields are the named entry points.
macro_rules! function_list {
    ($ty:ident, $major:literal, $minor:literal, [$($f:ident),* $(,)?]) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            $($f: Some($f),)*
        }
    };
}

/// Calls `$list!(args, [every PKCS#11 2.40 function, then $extra])`: the 2.40 entries are written once, so the 2.40
/// and 3.0 lists cannot drift apart (a missing or misspelt field fails to compile).
macro_rules! with_2_40_functions {
    ($list:ident!($($args:tt)*) [$($extra:ident),* $(,)?]) => {
        $list!($($args)*, [
            C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,
            C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,
            C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,
            C_SetOperationState, C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject,
            C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects,
            C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit,
            C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,
            C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit, C_SignRecover,
            C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,
            C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate,
            C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom,
            C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent,
            $($extra),*
        ])
    };
}

/// The PKCS#11 2.40 function list.
static FUNCTION_LIST: CK_FUNCTION_LIST = with_2_40_functions!(function_list!(CK_FUNCTION_LIST, 2, 40) []);

/// The PKCS#11 3.0 function list: the 2.40 functions and the 3.0 additions.
static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = with_2_40_functions!(function_list!(CK_FUNCTION_LIST_3_0, 3, 0) [
    C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel, C_MessageEncryptInit, C_EncryptMessage,
    C_EncryptMessageBegin, C_EncryptMessageNext, C_MessageEncryptFinal, C_MessageDecryptInit, C_DecryptMessage,
    C_DecryptMessageBegin, C_DecryptMessageNext, C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage,
    C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit, C_VerifyMessage,
    C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal,
]);

/// Flags of our interfaces: the module is fork-safe in the PKCS#11 3.0 sense.
const INTERFACE_FLAGS: CK_FLAGS = 0;

/// The interface name, NUL-terminated.
static INTERFACE_NAME: &[u8; 8] = b"PKCS 11\0";

/// The interfaces offered by `C_GetInterfaceList`/`C_GetInterface`: 3.0 first (the default), then 2.40.
struct Interfaces([CK_INTERFACE; 2]);

// SAFETY: the raw pointers inside point to immutable statics (the name and the function lists), so sharing them
// between threads is sound; callers only read through them.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &raw const FUNCTION_LIST_3_0 as *mut c_void,
        flags: INTERFACE_FLAGS,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &raw const FUNCTION_LIST as *mut c_void,
        flags: INTERFACE_FLAGS,
    },
]);
