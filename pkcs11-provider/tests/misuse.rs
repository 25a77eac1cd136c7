//! Misuse through the raw C ABI: NULL pointers, short buffers, wrong handles, calls out of order. Every call must
//! return the right `CKR_*` and nothing may crash. Runs in its own process so the module starts uninitialised.
#![allow(clippy::unwrap_used)] // integration-test helpers outside #[test] functions
#![allow(unsafe_code)] // calling a C ABI with deliberately bad pointers

mod common;

use std::ptr::{null, null_mut};

use cryptoki_sys::*;

struct Lib(cryptoki_sys::Pkcs11);

macro_rules! call {
    ($lib:expr, $f:ident($($arg:expr),*)) => {
        // SAFETY: the module under test was built from this crate; arguments are valid or deliberately NULL/short,
        // which the PKCS#11 contract of the module says it must reject without touching them.
        unsafe { ($lib.0.$f.as_ref().expect(stringify!($f)))($($arg),*) }
    };
}

fn pin(s: &str) -> (*mut u8, CK_ULONG) {
    (s.as_ptr() as *mut u8, s.len() as CK_ULONG)
}

#[test]
fn misuse_returns_the_right_error_codes_and_never_crashes() {
    let dir = common::scratch_dir("misuse");
    // SAFETY: a single test in this process; the module reads the variable only inside C_Initialize.
    let lib = Lib(unsafe { cryptoki_sys::Pkcs11::new(common::module_path()) }.unwrap());

    // Before C_Initialize.
    let mut count: CK_ULONG = 0;
    assert_eq!(
        call!(lib, C_GetSlotList(CK_TRUE, null_mut(), &mut count)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut h: CK_SESSION_HANDLE = 0;
    assert_eq!(
        call!(
            lib,
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        ),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_Finalize(null_mut())), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(
        call!(lib, C_EncryptInit(1, null_mut(), 1)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_GetFunctionList(null_mut())), CKR_ARGUMENTS_BAD);

    // A missing configuration fails C_Initialize cleanly, then a good one works.
    // SAFETY: see above.
    unsafe { std::env::set_var("TCHSM_PKCS11_CONFIG", dir.join("missing.toml")) };
    assert_eq!(call!(lib, C_Initialize(null_mut())), CKR_GENERAL_ERROR);
    std::fs::write(dir.join("bad.toml"), "store = 3").unwrap();
    // SAFETY: see above.
    unsafe { std::env::set_var("TCHSM_PKCS11_CONFIG", dir.join("bad.toml")) };
    assert_eq!(call!(lib, C_Initialize(null_mut())), CKR_GENERAL_ERROR);
    let cfg = common::write_config(&dir);
    // SAFETY: see above.
    unsafe { std::env::set_var("TCHSM_PKCS11_CONFIG", &cfg) };
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: std::ptr::dangling_mut(),
    };
    assert_eq!(
        call!(lib, C_Initialize(&raw mut args as *mut _)),
        CKR_ARGUMENTS_BAD
    );
    args.pReserved = null_mut();
    assert_eq!(call!(lib, C_Initialize(&raw mut args as *mut _)), CKR_OK);
    assert_eq!(
        call!(lib, C_Initialize(null_mut())),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );

    // NULL output pointers.
    assert_eq!(call!(lib, C_GetInfo(null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(lib, C_GetSlotList(CK_TRUE, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(lib, C_GetTokenInfo(0, null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(
            lib,
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );

    // Short list buffers report the needed count.
    let mut slots = [0 as CK_SLOT_ID; 2];
    let mut n: CK_ULONG = 2;
    assert_eq!(
        call!(lib, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, common::TOKENS as CK_ULONG);
    let mut mechs = [0 as CK_MECHANISM_TYPE; 1];
    let mut n: CK_ULONG = 1;
    assert_eq!(
        call!(lib, C_GetMechanismList(0, mechs.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    assert!(n > 1);

    // Sessions: serial flag required, wrong handles.
    assert_eq!(
        call!(lib, C_OpenSession(0, 0, null_mut(), None, &mut h)),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            lib,
            C_OpenSession(99, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        ),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(call!(lib, C_CloseSession(12345)), CKR_SESSION_HANDLE_INVALID);

    // Initialise token 0 and its user PIN.
    let label = [b' '; 32];
    let (so, so_len) = pin(common::SO_PIN);
    let (user, user_len) = pin(common::USER_PIN);
    let (short, short_len) = pin("12");
    assert_eq!(
        call!(lib, C_InitToken(0, short, short_len, label.as_ptr() as *mut _)),
        CKR_PIN_LEN_RANGE
    );
    assert_eq!(
        call!(lib, C_InitToken(0, so, so_len, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_InitToken(0, so, so_len, label.as_ptr() as *mut _)),
        CKR_OK
    );
    assert_eq!(
        call!(
            lib,
            C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, null_mut(), None, &mut h)
        ),
        CKR_OK
    );
    assert_eq!(call!(lib, C_InitPIN(h, user, user_len)), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(call!(lib, C_Login(h, 7, so, so_len)), CKR_USER_TYPE_INVALID);
    assert_eq!(
        call!(lib, C_Login(h, CKU_USER, user, user_len)),
        CKR_USER_PIN_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_Login(h, CKU_SO, null_mut(), 4)), CKR_ARGUMENTS_BAD);
    assert_eq!(call!(lib, C_Login(h, CKU_SO, so, so_len)), CKR_OK);
    // With the SO logged in, no read-only session may open (pkcs11test SOSessionFail).
    let mut ro: CK_SESSION_HANDLE = 0;
    assert_eq!(
        call!(
            lib,
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut ro)
        ),
        CKR_SESSION_READ_WRITE_SO_EXISTS
    );
    assert_eq!(call!(lib, C_InitPIN(h, user, user_len)), CKR_OK);
    assert_eq!(call!(lib, C_Logout(h)), CKR_OK);
    assert_eq!(call!(lib, C_Login(h, CKU_USER, user, user_len)), CKR_OK);
    assert_eq!(
        call!(lib, C_Login(h, CKU_USER, user, user_len)),
        CKR_USER_ALREADY_LOGGED_IN
    );

    // Digest with a short buffer: the needed length comes back and the operation stays active.
    let mut mech = CK_MECHANISM {
        mechanism: CKM_SHA256,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 0;
    assert_eq!(
        call!(
            lib,
            C_Digest(h, b"abc".as_ptr() as *mut _, 3, null_mut(), &mut len)
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_DigestInit(h, null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OPERATION_ACTIVE);
    assert_eq!(
        call!(
            lib,
            C_Digest(h, b"abc".as_ptr() as *mut _, 3, null_mut(), &mut len)
        ),
        CKR_OK
    );
    assert_eq!(len, 32);
    len = 10;
    assert_eq!(
        call!(
            lib,
            C_Digest(h, b"abc".as_ptr() as *mut _, 3, out.as_mut_ptr(), &mut len)
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 32);
    // Any other error ends the operation (§5.12), the C ABI's own argument checks included.
    assert_eq!(
        call!(lib, C_Digest(h, null_mut(), 3, out.as_mut_ptr(), &mut len)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            lib,
            C_Digest(h, b"abc".as_ptr() as *mut _, 3, out.as_mut_ptr(), &mut len)
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    len = 64;
    assert_eq!(
        call!(
            lib,
            C_Digest(h, b"abc".as_ptr() as *mut _, 3, out.as_mut_ptr(), &mut len)
        ),
        CKR_OK
    );
    assert_eq!(len, 32);
    assert_eq!(
        hex(&out[..32]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let mut bad_mech = CK_MECHANISM {
        mechanism: 0x7fff_0000,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(call!(lib, C_DigestInit(h, &mut bad_mech)), CKR_MECHANISM_INVALID);

    // Objects: wrong handles, NULL templates, partial-failure C_GetAttributeValue.
    let class = CKO_DATA.to_ne_bytes();
    let yes = [CK_TRUE];
    let value = b"hello";
    let mut tmpl = [
        attr(CKA_CLASS, class.as_ptr(), class.len()),
        attr(CKA_TOKEN, yes.as_ptr(), 1),
        attr(CKA_VALUE, value.as_ptr(), value.len()),
    ];
    let mut obj: CK_OBJECT_HANDLE = 0;
    assert_eq!(
        call!(lib, C_CreateObject(h, null_mut(), 3, &mut obj)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_CreateObject(h, tmpl.as_mut_ptr(), 3, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_CreateObject(h, tmpl.as_mut_ptr(), 3, &mut obj)),
        CKR_OK
    );
    let mut small = [0u8; 2];
    let mut big = [0u8; 16];
    let mut get = [
        attr(CKA_VALUE, big.as_mut_ptr(), big.len()),
        attr(0x7777_0000, big.as_mut_ptr(), 16),
        attr(CKA_LABEL, null::<u8>(), 0),
        attr(CKA_VALUE, small.as_mut_ptr(), small.len()),
    ];
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, obj, get.as_mut_ptr(), 4)),
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    assert_eq!(get[0].ulValueLen, 5);
    assert_eq!(&big[..5], b"hello");
    assert_eq!(get[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(get[2].ulValueLen, 0);
    assert_eq!(get[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    let mut only_small = [attr(CKA_VALUE, small.as_mut_ptr(), small.len())];
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, obj, only_small.as_mut_ptr(), 1)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, obj + 1000, get.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_GetAttributeValue(999, obj, get.as_mut_ptr(), 1)),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, obj, null_mut(), 1)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_DestroyObject(h, obj + 1000)),
        CKR_OBJECT_HANDLE_INVALID
    );
    let mut size: CK_ULONG = 0;
    assert_eq!(call!(lib, C_GetObjectSize(h, obj, null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(call!(lib, C_GetObjectSize(h, obj, &mut size)), CKR_OK);
    assert!(size > 0);

    objects_change_only_where_the_standard_allows(&lib, h, obj);
    aes_key_protections_only_tighten(&lib, h);

    // Find: NULL arrays, operation order.
    let mut found = [0 as CK_OBJECT_HANDLE; 4];
    let mut nfound: CK_ULONG = 0;
    assert_eq!(
        call!(lib, C_FindObjects(h, found.as_mut_ptr(), 4, &mut nfound)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_FindObjectsInit(h, tmpl.as_mut_ptr(), 1)), CKR_OK);
    assert_eq!(
        call!(lib, C_FindObjectsInit(h, tmpl.as_mut_ptr(), 1)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(lib, C_FindObjects(h, null_mut(), 4, &mut nfound)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_FindObjects(h, found.as_mut_ptr(), 4, &mut nfound)),
        CKR_OK
    );
    assert_eq!((nfound, found[0]), (1, obj));
    assert_eq!(call!(lib, C_FindObjectsFinal(h)), CKR_OK);
    assert_eq!(call!(lib, C_FindObjectsFinal(h)), CKR_OPERATION_NOT_INITIALIZED);

    // Signing: wrong key handles, missing login, NULL mechanism.
    let mut sign_mech = CK_MECHANISM {
        mechanism: CKM_SHA256_RSA_PKCS,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(call!(lib, C_SignInit(h, null_mut(), obj)), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(lib, C_SignInit(h, &mut sign_mech, obj)),
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_SignInit(h, &mut sign_mech, obj + 1000)),
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_Sign(h, b"x".as_ptr() as *mut _, 1, null_mut(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    let mut rnd = [0u8; 8];
    assert_eq!(call!(lib, C_GenerateRandom(h, null_mut(), 8)), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(lib, C_GenerateRandom(77, rnd.as_mut_ptr(), 8)),
        CKR_SESSION_HANDLE_INVALID
    );

    // C_GenerateKey: a bad session, NULL arguments, then an invalid mechanism, in that order (Google's pkcs11test
    // GenerateKeyInvalid); AES keys (to unwrap with) need CKA_VALUE_LEN of 16, 24 or 32 and stay in the session.
    let mut aes_gen = CK_MECHANISM {
        mechanism: CKM_AES_KEY_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut des_gen = CK_MECHANISM {
        mechanism: CKM_DES3_KEY_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut secret: CK_OBJECT_HANDLE = 0;
    let mut one_attr = [attr(CKA_ENCRYPT, yes.as_ptr(), 1)];
    assert_eq!(
        call!(
            lib,
            C_GenerateKey(99_999, &mut aes_gen, one_attr.as_mut_ptr(), 1, &mut secret)
        ),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_GenerateKey(h, &mut aes_gen, null_mut(), 1, &mut secret)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            lib,
            C_GenerateKey(h, &mut aes_gen, one_attr.as_mut_ptr(), 1, null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            lib,
            C_GenerateKey(h, &mut des_gen, one_attr.as_mut_ptr(), 1, &mut secret)
        ),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        call!(
            lib,
            C_GenerateKey(h, &mut aes_gen, one_attr.as_mut_ptr(), 1, &mut secret)
        ),
        CKR_TEMPLATE_INCOMPLETE
    );
    let len20 = (20 as CK_ULONG).to_ne_bytes();
    let len16 = (16 as CK_ULONG).to_ne_bytes();
    let mut aes_t = [attr(CKA_VALUE_LEN, len20.as_ptr(), len20.len())];
    assert_eq!(
        call!(
            lib,
            C_GenerateKey(h, &mut aes_gen, aes_t.as_mut_ptr(), 1, &mut secret)
        ),
        CKR_KEY_SIZE_RANGE
    );
    let mut aes_t = [
        attr(CKA_VALUE_LEN, len16.as_ptr(), len16.len()),
        attr(CKA_TOKEN, yes.as_ptr(), 1),
    ];
    assert_eq!(
        call!(
            lib,
            C_GenerateKey(h, &mut aes_gen, aes_t.as_mut_ptr(), 2, &mut secret)
        ),
        CKR_TEMPLATE_INCONSISTENT
    );

    unwrap_key_misuse_and_an_ed25519_key_wrapped_here(&lib, h, obj);

    // A real key: C_Sign length query, short buffer (needed length reported, operation kept), then the signature.
    let bits: CK_ULONG = 1024;
    let bits = bits.to_ne_bytes();
    let mut pub_t = [attr(CKA_MODULUS_BITS, bits.as_ptr(), bits.len())];
    let mut priv_t = [attr(CKA_SIGN, yes.as_ptr(), 1)];
    let mut gen_mech = CK_MECHANISM {
        mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (mut pubk, mut privk): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
    assert_eq!(
        call!(
            lib,
            C_GenerateKeyPair(
                h,
                &mut gen_mech,
                pub_t.as_mut_ptr(),
                1,
                priv_t.as_mut_ptr(),
                1,
                &mut pubk,
                null_mut()
            )
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            lib,
            C_GenerateKeyPair(
                h,
                &mut gen_mech,
                null_mut(),
                0,
                priv_t.as_mut_ptr(),
                1,
                &mut pubk,
                &mut privk
            )
        ),
        CKR_TEMPLATE_INCOMPLETE
    );
    assert_eq!(
        call!(
            lib,
            C_GenerateKeyPair(
                h,
                &mut gen_mech,
                pub_t.as_mut_ptr(),
                1,
                priv_t.as_mut_ptr(),
                1,
                &mut pubk,
                &mut privk
            )
        ),
        CKR_OK
    );
    assert_eq!(
        call!(lib, C_SignInit(h, &mut sign_mech, pubk)),
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(call!(lib, C_SignInit(h, &mut sign_mech, privk)), CKR_OK);
    assert_eq!(
        call!(lib, C_SignInit(h, &mut sign_mech, privk)),
        CKR_OPERATION_ACTIVE
    );
    let mut sig = [0u8; 256];
    let mut sig_len: CK_ULONG = 0;
    assert_eq!(
        call!(lib, C_Sign(h, b"m".as_ptr() as *mut _, 1, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    // That error ended the operation (§5.13).
    assert_eq!(
        call!(
            lib,
            C_Sign(h, b"m".as_ptr() as *mut _, 1, null_mut(), &mut sig_len)
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_SignInit(h, &mut sign_mech, privk)), CKR_OK);
    assert_eq!(
        call!(
            lib,
            C_Sign(h, b"m".as_ptr() as *mut _, 1, null_mut(), &mut sig_len)
        ),
        CKR_OK
    );
    assert_eq!(sig_len, 128);
    sig_len = 100;
    assert_eq!(
        call!(
            lib,
            C_Sign(h, b"m".as_ptr() as *mut _, 1, sig.as_mut_ptr(), &mut sig_len)
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(sig_len, 128);
    sig_len = 256;
    assert_eq!(
        call!(
            lib,
            C_Sign(h, b"m".as_ptr() as *mut _, 1, sig.as_mut_ptr(), &mut sig_len)
        ),
        CKR_OK
    );
    assert_eq!(sig_len, 128);
    assert_eq!(
        call!(
            lib,
            C_Sign(h, b"m".as_ptr() as *mut _, 1, sig.as_mut_ptr(), &mut sig_len)
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_VerifyInit(h, &mut sign_mech, pubk)), CKR_OK);
    assert_eq!(
        call!(
            lib,
            C_Verify(h, b"m".as_ptr() as *mut _, 1, sig.as_mut_ptr(), 128)
        ),
        CKR_OK
    );
    assert_eq!(call!(lib, C_VerifyInit(h, &mut sign_mech, pubk)), CKR_OK);
    assert_eq!(
        call!(
            lib,
            C_Verify(h, b"n".as_ptr() as *mut _, 1, sig.as_mut_ptr(), 128)
        ),
        CKR_SIGNATURE_INVALID
    );
    assert_eq!(call!(lib, C_VerifyInit(h, &mut sign_mech, pubk)), CKR_OK);
    assert_eq!(
        call!(
            lib,
            C_Verify(h, b"m".as_ptr() as *mut _, 1, sig.as_mut_ptr(), 127)
        ),
        CKR_SIGNATURE_LEN_RANGE
    );
    single_and_multi_part_calls_do_not_mix(&lib, h, &mut sign_mech, privk, pubk);
    // Sensitive attributes of the private key: CKR_ATTRIBUTE_SENSITIVE with CK_UNAVAILABLE_INFORMATION.
    let mut get = [
        attr(CKA_PRIVATE_EXPONENT, big.as_mut_ptr(), 16),
        attr(CKA_MODULUS, null::<u8>(), 0),
    ];
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, privk, get.as_mut_ptr(), 2)),
        CKR_ATTRIBUTE_SENSITIVE
    );
    assert_eq!(get[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(get[1].ulValueLen, 128);

    // Unsupported functions answer, they do not crash.
    assert_eq!(
        call!(lib, C_EncryptInit(h, &mut mech, obj)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(lib, C_GetOperationState(h, null_mut(), null_mut())),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    // Slots never change: a non-blocking wait has no event, a blocking one (which would never return) is not
    // offered (pkcs11test WaitForSlotEvent).
    let mut slot: CK_SLOT_ID = 99;
    assert_eq!(
        call!(lib, C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut())),
        CKR_NO_EVENT
    );
    assert_eq!(
        call!(lib, C_WaitForSlotEvent(CKF_DONT_BLOCK, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_WaitForSlotEvent(0, &mut slot, null_mut())),
        CKR_FUNCTION_NOT_SUPPORTED
    );

    assert_eq!(call!(lib, C_Logout(h)), CKR_OK);
    assert_eq!(call!(lib, C_Logout(h)), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(call!(lib, C_CloseAllSessions(0)), CKR_OK);
    assert_eq!(call!(lib, C_CloseSession(h)), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(
        call!(lib, C_Finalize(std::ptr::dangling_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(lib, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(
        call!(lib, C_GetSlotList(CK_TRUE, null_mut(), &mut count)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    // The module creates no threads, so a host that forbids them gets CKR_OK (pkcs11test InitNoThreads).
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_LIBRARY_CANT_CREATE_OS_THREADS,
        pReserved: null_mut(),
    };
    assert_eq!(call!(lib, C_Initialize(&raw mut args as *mut _)), CKR_OK);
    assert_eq!(call!(lib, C_Finalize(null_mut())), CKR_OK);
}

#[test]
fn interfaces_offer_pkcs11_3_0_and_2_40_lists() {
    // SAFETY: loading the module under test.
    let lib = Lib(unsafe { cryptoki_sys::Pkcs11::new(common::module_path()) }.unwrap());
    let mut n: CK_ULONG = 0;
    assert_eq!(call!(lib, C_GetInterfaceList(null_mut(), &mut n)), CKR_OK);
    assert_eq!(n, 2);
    let mut list = [CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    }; 2];
    assert_eq!(call!(lib, C_GetInterfaceList(list.as_mut_ptr(), &mut n)), CKR_OK);
    let mut versions = Vec::new();
    for i in list {
        // SAFETY: the module returned pointers to its static function lists, which start with a CK_VERSION.
        let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
        versions.push((v.major, v.minor));
    }
    assert_eq!(versions, vec![(3, 0), (2, 40)]);
    let mut iface: *mut CK_INTERFACE = null_mut();
    let mut v240 = CK_VERSION { major: 2, minor: 40 };
    assert_eq!(
        call!(lib, C_GetInterface(null_mut(), &mut v240, &mut iface, 0)),
        CKR_OK
    );
    assert!(!iface.is_null());
    assert_eq!(
        call!(
            lib,
            C_GetInterface(c"nope".as_ptr() as *mut _, null_mut(), &mut iface, 0)
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_GetInterface(null_mut(), null_mut(), null_mut(), 0)),
        CKR_ARGUMENTS_BAD
    );
    let mut fl: *mut CK_FUNCTION_LIST = null_mut();
    assert_eq!(call!(lib, C_GetFunctionList(&mut fl)), CKR_OK);
    // SAFETY: a non-NULL pointer to the module's static 2.40 function list.
    assert_eq!(unsafe { (*fl).version.minor }, 40);
}

/// `C_UnwrapKey` with bad arguments, handles and data (each its `CKR_*`, nothing crashes, nothing is created),
/// then an Ed25519 PKCS#8 key wrapped here with the RustCrypto `aes-kw` crate (RFC 5649) under an AES key written
/// with `C_CreateObject`: unwrapped, it signs, and `ed25519-dalek` verifies under the key's public key. `not_a_key`
/// is a data object.
fn unwrap_key_misuse_and_an_ed25519_key_wrapped_here(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    not_a_key: CK_OBJECT_HANDLE,
) {
    use aes_kw::KeyInit as _;
    let kek_value = [0x42u8; 16];
    let seed = [7u8; 32];
    let pkcs8 = [
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ][..],
        &seed,
    ]
    .concat();
    let mut wrapped = vec![0u8; pkcs8.len() + 16];
    let n = aes_kw::KwpAes128::new_from_slice(&kek_value)
        .unwrap()
        .wrap_key(&pkcs8, &mut wrapped)
        .unwrap()
        .len();
    wrapped.truncate(n);

    let (yes, no) = ([CK_TRUE], [CK_FALSE]);
    let (secret, aes) = (CKO_SECRET_KEY.to_ne_bytes(), CKK_AES.to_ne_bytes());
    let kek_t = |unwrap: &[u8; 1]| {
        [
            attr(CKA_CLASS, secret.as_ptr(), secret.len()),
            attr(CKA_KEY_TYPE, aes.as_ptr(), aes.len()),
            attr(CKA_VALUE, kek_value.as_ptr(), kek_value.len()),
            attr(CKA_UNWRAP, unwrap.as_ptr(), 1),
        ]
    };
    let (mut kek, mut no_unwrap): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
    assert_eq!(
        call!(lib, C_CreateObject(h, kek_t(&yes).as_mut_ptr(), 4, &mut kek)),
        CKR_OK
    );
    assert_eq!(
        call!(lib, C_CreateObject(h, kek_t(&no).as_mut_ptr(), 4, &mut no_unwrap)),
        CKR_OK
    );
    // The value of a sensitive secret key is not revealed.
    let mut buf = [0u8; 16];
    let mut get = [attr(CKA_VALUE, buf.as_mut_ptr(), 16)];
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, kek, get.as_mut_ptr(), 1)),
        CKR_ATTRIBUTE_SENSITIVE
    );

    let mech = |ty: CK_MECHANISM_TYPE| CK_MECHANISM {
        mechanism: ty,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut kwp = mech(CKM_AES_KEY_WRAP_PAD);
    let wp = wrapped.as_ptr() as *mut u8;
    let wl = wrapped.len() as CK_ULONG;
    let mut created = Vec::new();
    let mut unwrap = |m: &mut CK_MECHANISM, key: CK_OBJECT_HANDLE, p: *mut u8, len: CK_ULONG| {
        let mut new_key: CK_OBJECT_HANDLE = 0;
        let rv = call!(lib, C_UnwrapKey(h, m, key, p, len, null_mut(), 0, &mut new_key));
        if rv == CKR_OK {
            created.push(new_key);
        }
        rv
    };
    assert_eq!(unwrap(&mut kwp, kek, null_mut(), wl), CKR_ARGUMENTS_BAD);
    assert_eq!(
        unwrap(&mut mech(CKM_RSA_PKCS), kek, wp, wl),
        CKR_MECHANISM_INVALID
    );
    let mut bad_iv = [0u8; 4];
    let mut with_iv = CK_MECHANISM {
        mechanism: CKM_AES_KEY_WRAP_PAD,
        pParameter: bad_iv.as_mut_ptr() as *mut _,
        ulParameterLen: 4,
    };
    assert_eq!(unwrap(&mut with_iv, kek, wp, wl), CKR_MECHANISM_PARAM_INVALID);
    assert_eq!(
        unwrap(&mut kwp, kek + 1000, wp, wl),
        CKR_UNWRAPPING_KEY_HANDLE_INVALID
    );
    assert_eq!(
        unwrap(&mut kwp, not_a_key, wp, wl),
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        unwrap(&mut kwp, no_unwrap, wp, wl),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(unwrap(&mut kwp, kek, wp, 7), CKR_WRAPPED_KEY_LEN_RANGE);
    let mut noise = [0x5au8; 64];
    assert_eq!(
        unwrap(&mut kwp, kek, noise.as_mut_ptr(), 64),
        CKR_WRAPPED_KEY_INVALID
    );
    // RFC 3394 over data that RFC 5649 wrapped: its integrity check fails.
    assert_eq!(
        unwrap(&mut mech(CKM_AES_KEY_WRAP), kek, wp, wl),
        CKR_WRAPPED_KEY_INVALID
    );
    // The good one (CKM_AES_KEY_WRAP_KWP is the same RFC 5649 wrapping under its PKCS#11 3.0 name).
    assert_eq!(unwrap(&mut mech(CKM_AES_KEY_WRAP_KWP), kek, wp, wl), CKR_OK);
    let [new_key] = created[..] else {
        panic!("only the good unwrap creates a key: {created:?}")
    };
    let mut eddsa = mech(CKM_EDDSA);
    assert_eq!(call!(lib, C_SignInit(h, &mut eddsa, new_key)), CKR_OK);
    let msg = b"unwrapped in the token";
    let mut sig = [0u8; 64];
    let mut sig_len: CK_ULONG = 64;
    assert_eq!(
        call!(
            lib,
            C_Sign(
                h,
                msg.as_ptr() as *mut _,
                msg.len() as CK_ULONG,
                sig.as_mut_ptr(),
                &mut sig_len
            )
        ),
        CKR_OK
    );
    let vk = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
    for o in [new_key, kek, no_unwrap] {
        assert_eq!(call!(lib, C_DestroyObject(h, o)), CKR_OK);
    }
}

fn attr<T>(ty: CK_ATTRIBUTE_TYPE, p: *const T, len: usize) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: p as *mut _,
        ulValueLen: len as CK_ULONG,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Operation states of digest, sign and verify, as pkcs11test's `DigestIntersperse`, `DigestFinalIntersperse`,
/// `DigestInvalid` and `DigestFinalInvalid` check them (PKCS#11 v3.0 §5.12–5.14): the single-part call after an
/// update, or the update/final call after a single-part length query, is `CKR_OPERATION_ACTIVE`; that, and any
/// other error but `CKR_BUFFER_TOO_SMALL` (a NULL length pointer included), ends the operation. Multi-part
/// digest, signature and verification give the single-part results.
fn single_and_multi_part_calls_do_not_mix(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    sign_mech: &mut CK_MECHANISM,
    privk: CK_OBJECT_HANDLE,
    pubk: CK_OBJECT_HANDLE,
) {
    let mut mech = CK_MECHANISM {
        mechanism: CKM_SHA256,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let abc = b"abc".as_ptr() as *mut u8;
    let mut out = [0u8; 256];
    let mut len: CK_ULONG;
    let not_initialized = |lib: &Lib| {
        let mut len: CK_ULONG = 64;
        let mut out = [0u8; 64];
        call!(lib, C_DigestFinal(h, out.as_mut_ptr(), &mut len))
    };

    // Update, then the single-part call: refused, and the operation is gone.
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(call!(lib, C_DigestUpdate(h, abc, 1)), CKR_OK);
    len = 64;
    assert_eq!(
        call!(lib, C_Digest(h, abc, 3, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(not_initialized(lib), CKR_OPERATION_NOT_INITIALIZED);
    // A single-part length query, then the final call: refused the same way.
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(call!(lib, C_Digest(h, abc, 3, null_mut(), &mut len)), CKR_OK);
    assert_eq!(len, 32);
    len = 64;
    assert_eq!(
        call!(lib, C_DigestFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(lib, C_Digest(h, abc, 3, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // NULL length pointers and NULL data end the operation too.
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(
        call!(lib, C_Digest(h, abc, 3, out.as_mut_ptr(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(not_initialized(lib), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(
        call!(lib, C_DigestFinal(h, out.as_mut_ptr(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(not_initialized(lib), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(call!(lib, C_DigestUpdate(h, null_mut(), 3)), CKR_ARGUMENTS_BAD);
    assert_eq!(not_initialized(lib), CKR_OPERATION_NOT_INITIALIZED);
    // Multi-part: a final length query keeps the operation, a short buffer too, then the digest of "abc".
    assert_eq!(call!(lib, C_DigestInit(h, &mut mech)), CKR_OK);
    assert_eq!(call!(lib, C_DigestUpdate(h, abc, 1)), CKR_OK);
    // "bc": the last two bytes of "abc".
    assert_eq!(call!(lib, C_DigestUpdate(h, abc.wrapping_add(1), 2)), CKR_OK);
    assert_eq!(call!(lib, C_DigestFinal(h, null_mut(), &mut len)), CKR_OK);
    assert_eq!(len, 32);
    len = 31;
    assert_eq!(
        call!(lib, C_DigestFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_BUFFER_TOO_SMALL
    );
    len = 64;
    assert_eq!(call!(lib, C_DigestFinal(h, out.as_mut_ptr(), &mut len)), CKR_OK);
    assert_eq!(
        hex(&out[..32]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    // Signing: update then C_Sign, and C_Sign's length query then update, are refused and end the operation.
    let m = b"m".as_ptr() as *mut u8;
    assert_eq!(call!(lib, C_SignInit(h, sign_mech, privk)), CKR_OK);
    assert_eq!(call!(lib, C_SignUpdate(h, m, 1)), CKR_OK);
    len = 256;
    assert_eq!(
        call!(lib, C_Sign(h, m, 1, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(lib, C_SignFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_SignInit(h, sign_mech, privk)), CKR_OK);
    assert_eq!(call!(lib, C_Sign(h, m, 1, null_mut(), &mut len)), CKR_OK);
    assert_eq!(call!(lib, C_SignUpdate(h, m, 1)), CKR_OPERATION_ACTIVE);
    assert_eq!(
        call!(lib, C_Sign(h, m, 1, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_SignInit(h, sign_mech, privk)), CKR_OK);
    assert_eq!(
        call!(lib, C_SignFinal(h, out.as_mut_ptr(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_SignFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Multi-part signing of "mm" gives a signature that multi-part verification accepts.
    assert_eq!(call!(lib, C_SignInit(h, sign_mech, privk)), CKR_OK);
    assert_eq!(call!(lib, C_SignUpdate(h, m, 1)), CKR_OK);
    assert_eq!(call!(lib, C_SignUpdate(h, m, 1)), CKR_OK);
    len = 256;
    assert_eq!(call!(lib, C_SignFinal(h, out.as_mut_ptr(), &mut len)), CKR_OK);
    assert_eq!(len, 128);
    assert_eq!(call!(lib, C_VerifyInit(h, sign_mech, pubk)), CKR_OK);
    assert_eq!(call!(lib, C_VerifyUpdate(h, m, 1)), CKR_OK);
    assert_eq!(call!(lib, C_VerifyUpdate(h, m, 1)), CKR_OK);
    assert_eq!(call!(lib, C_VerifyFinal(h, out.as_mut_ptr(), len)), CKR_OK);
    // Verification: update then C_Verify is refused and ends the operation; so does a NULL signature.
    assert_eq!(call!(lib, C_VerifyInit(h, sign_mech, pubk)), CKR_OK);
    assert_eq!(call!(lib, C_VerifyUpdate(h, m, 1)), CKR_OK);
    assert_eq!(
        call!(lib, C_Verify(h, m, 1, out.as_mut_ptr(), len)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(lib, C_VerifyFinal(h, out.as_mut_ptr(), len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(lib, C_VerifyInit(h, sign_mech, pubk)), CKR_OK);
    assert_eq!(call!(lib, C_Verify(h, m, 1, null_mut(), len)), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(lib, C_VerifyFinal(h, out.as_mut_ptr(), len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

/// What pkcs11test's `DataObjectTest`, `CreateCopyDestroyObject`, `InvalidSessionInfo` and `CloseSessionInvalid`
/// check on a data object and a session: class and value are fixed once the object exists (only attributes the
/// standard marks modifiable change: `CKA_LABEL` here), on `C_SetAttributeValue` and on `C_CopyObject`
/// alike (`CKR_ATTRIBUTE_READ_ONLY`; pkcs11test expects a data object's `CKA_VALUE` to change on copy, which
/// PKCS#11 v3.0 table 27 does not mark modifiable, and SoftHSM2 refuses it as we do); NULL templates and
/// output handles are `CKR_ARGUMENTS_BAD`; the legacy parallel functions are `CKR_FUNCTION_NOT_PARALLEL`.
fn objects_change_only_where_the_standard_allows(lib: &Lib, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) {
    let public_class = CKO_PUBLIC_KEY.to_ne_bytes();
    let new_value = [0xfa, 0xce, 0xfe, 0xed];
    let new_label = b"NewLabel";
    let mut class = [attr(CKA_CLASS, public_class.as_ptr(), public_class.len())];
    let mut value = [attr(CKA_VALUE, new_value.as_ptr(), new_value.len())];
    let mut label = [attr(CKA_LABEL, new_label.as_ptr(), new_label.len())];
    let mut copy: CK_OBJECT_HANDLE = 0;
    assert_eq!(
        call!(lib, C_SetAttributeValue(h, obj, class.as_mut_ptr(), 1)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        call!(lib, C_SetAttributeValue(h, obj, value.as_mut_ptr(), 1)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        call!(lib, C_SetAttributeValue(999, obj, label.as_mut_ptr(), 1)),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_SetAttributeValue(h, obj + 1000, label.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(
        call!(lib, C_CopyObject(h, obj, class.as_mut_ptr(), 1, &mut copy)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        call!(lib, C_CopyObject(h, obj, value.as_mut_ptr(), 1, &mut copy)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        call!(lib, C_CopyObject(h, obj, null_mut(), 1, &mut copy)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(lib, C_CopyObject(h, obj, label.as_mut_ptr(), 1, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    // The label changes on a copy and leaves the original alone.
    assert_eq!(
        call!(lib, C_CopyObject(h, obj, label.as_mut_ptr(), 1, &mut copy)),
        CKR_OK
    );
    let mut buf = [0u8; 16];
    let mut get = [attr(CKA_LABEL, buf.as_mut_ptr(), buf.len())];
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, copy, get.as_mut_ptr(), 1)),
        CKR_OK
    );
    assert_eq!(&buf[..get[0].ulValueLen as usize], new_label);
    get[0].ulValueLen = buf.len() as CK_ULONG;
    assert_eq!(
        call!(lib, C_GetAttributeValue(h, obj, get.as_mut_ptr(), 1)),
        CKR_OK
    );
    assert_eq!(get[0].ulValueLen, 0);
    assert_eq!(call!(lib, C_DestroyObject(h, copy)), CKR_OK);

    assert_eq!(call!(lib, C_GetSessionInfo(h, null_mut())), CKR_ARGUMENTS_BAD);
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    assert_eq!(
        call!(lib, C_GetSessionInfo(999, &mut info)),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(call!(lib, C_GetFunctionStatus(h)), CKR_FUNCTION_NOT_PARALLEL);
    assert_eq!(call!(lib, C_CancelFunction(h)), CKR_FUNCTION_NOT_PARALLEL);
}

/// pkcs11test's `SetLatchingAttribute` and `TookanAttackA3`–`A5b` on an AES key from `CKM_AES_KEY_GEN` (the
/// suite makes DES keys, which we do not offer; with AES keys patched in, those tests pass): a sensitive or
/// non-extractable key's value is `CKR_ATTRIBUTE_SENSITIVE`; `CKA_SENSITIVE` may go from false to true only and
/// `CKA_EXTRACTABLE` from true to false only (`CKR_ATTRIBUTE_READ_ONLY`, the attribute unchanged).
fn aes_key_protections_only_tighten(lib: &Lib, h: CK_SESSION_HANDLE) {
    let (yes, no) = ([CK_TRUE], [CK_FALSE]);
    let len: CK_ULONG = 16;
    let len = len.to_ne_bytes();
    let generate = |sensitive: &[u8; 1], extractable: &[u8; 1]| {
        let mut m = CK_MECHANISM {
            mechanism: CKM_AES_KEY_GEN,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut t = [
            attr(CKA_VALUE_LEN, len.as_ptr(), len.len()),
            attr(CKA_SENSITIVE, sensitive.as_ptr(), 1),
            attr(CKA_EXTRACTABLE, extractable.as_ptr(), 1),
        ];
        let mut key: CK_OBJECT_HANDLE = 0;
        assert_eq!(
            call!(lib, C_GenerateKey(h, &mut m, t.as_mut_ptr(), 3, &mut key)),
            CKR_OK
        );
        key
    };
    let flag = |key, ty| {
        let mut b = [0xffu8];
        let mut get = [attr(ty, b.as_mut_ptr(), 1)];
        assert_eq!(
            call!(lib, C_GetAttributeValue(h, key, get.as_mut_ptr(), 1)),
            CKR_OK
        );
        b[0]
    };
    let set = |key, ty, v: &[u8; 1]| {
        let mut t = [attr(ty, v.as_ptr(), 1)];
        call!(lib, C_SetAttributeValue(h, key, t.as_mut_ptr(), 1))
    };
    let value = |key| {
        let mut buf = [0u8; 64];
        let mut get = [attr(CKA_VALUE, buf.as_mut_ptr(), buf.len())];
        let rv = call!(lib, C_GetAttributeValue(h, key, get.as_mut_ptr(), 1));
        (rv, get[0].ulValueLen)
    };

    // Sensitive (A3), and non-extractable though not sensitive (A4): the value does not come out.
    let sensitive = generate(&yes, &yes);
    assert_eq!(
        value(sensitive),
        (CKR_ATTRIBUTE_SENSITIVE, CK_UNAVAILABLE_INFORMATION)
    );
    // A5a: sensitive stays sensitive.
    assert_eq!(set(sensitive, CKA_SENSITIVE, &no), CKR_ATTRIBUTE_READ_ONLY);
    assert_eq!(flag(sensitive, CKA_SENSITIVE), CK_TRUE);
    let kept = generate(&no, &no);
    assert_eq!(value(kept), (CKR_ATTRIBUTE_SENSITIVE, CK_UNAVAILABLE_INFORMATION));
    // A5b: non-extractable stays so.
    assert_eq!(set(kept, CKA_EXTRACTABLE, &yes), CKR_ATTRIBUTE_READ_ONLY);
    assert_eq!(flag(kept, CKA_EXTRACTABLE), CK_FALSE);
    // SetLatchingAttribute: false to true is allowed, and then latched.
    assert_eq!(set(kept, CKA_SENSITIVE, &yes), CKR_OK);
    assert_eq!(flag(kept, CKA_SENSITIVE), CK_TRUE);
    assert_eq!(set(kept, CKA_SENSITIVE, &no), CKR_ATTRIBUTE_READ_ONLY);
    assert_eq!(flag(kept, CKA_SENSITIVE), CK_TRUE);
    for key in [sensitive, kept] {
        assert_eq!(call!(lib, C_DestroyObject(h, key)), CKR_OK);
    }
}
