//! Spec conformance, function by function: each `CKR_*` a function can return is provoked
//! here at least once — uninitialised module, bad handles, null pointers, short buffers,
//! wrong session state, wrong key type or usage, bad templates, operations not initialised
//! or already active. Happy paths live in the other files; this one is about refusals, and
//! where a refusal must change nothing, it checks that too.

use crate::*;
use craton_hsm::ffi::crypt::*;
use craton_hsm::ffi::digest::*;
use craton_hsm::ffi::keys::*;
use craton_hsm::ffi::message::*;
use craton_hsm::ffi::sign::*;
use cryptoki_sys::*;
use std::ptr::null_mut;

/// Asserts that a call returns `want`, naming the function when it does not.
macro_rules! rv {
    ($want:expr, $f:ident($($a:expr),* $(,)?)) => {{
        let got = c!($f($($a),*));
        assert_eq!(
            got,
            $want,
            "{} returned {:#x}, expected {:#x}",
            stringify!($f),
            got,
            $want
        );
    }};
}

/// Calls every function that takes a session handle with `h` and otherwise valid
/// arguments, and expects `want` from each.
fn every_session_function(h: CK_SESSION_HANDLE, want: CK_RV) {
    // Each init gets a mechanism offered for it, so only the handle is wrong.
    let mut m = mech(CKM_SHA256);
    let mut ecb = mech(CKM_AES_ECB);
    let mut ecdsa = mech(CKM_ECDSA);
    let mut rsa = mech(CKM_RSA_PKCS);
    let mut aes_gen = mech(CKM_AES_KEY_GEN);
    let mut ec_gen = mech(CKM_EC_KEY_PAIR_GEN);
    let mut kw = mech(CKM_AES_KEY_WRAP);
    let mut gcm = mech(CKM_AES_GCM);
    let mut kem = mech(CKM_ML_KEM);
    let mut flags: CK_FLAGS = 0;
    let mut name = *b"C_Sign\0";
    let np = name.as_mut_ptr();
    let mut async_data = CK_ASYNC_DATA::default();
    let mut point = [4u8; 65];
    let mut ecdh_params = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: null_mut(),
        ulPublicDataLen: 65,
        pPublicData: point.as_mut_ptr(),
    };
    let mut ecdh = CK_MECHANISM {
        mechanism: CKM_ECDH1_DERIVE,
        pParameter: (&mut ecdh_params as *mut CK_ECDH1_DERIVE_PARAMS).cast(),
        ulParameterLen: size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
    };
    let mut buf = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let mut obj: CK_OBJECT_HANDLE = 0;
    let mut info = CK_SESSION_INFO::default();
    let mut pin = USER_PIN.to_vec();
    let p = buf.as_mut_ptr();
    let pl = pin.as_mut_ptr();
    let pn = pin.len() as CK_ULONG;
    let mut class: CK_OBJECT_CLASS = CKO_DATA;
    let mut t = [attr(CKA_CLASS, &mut class)];
    let tp = t.as_mut_ptr();
    let mut found: CK_ULONG = 0;
    let mut objs = [0 as CK_OBJECT_HANDLE; 4];
    let mut size: CK_ULONG = 0;
    let v = null_mut();
    let mut iv = [0u8; 12];
    let mut tag = [0u8; 16];
    let mut gcm_message = CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvFixedBits: 0,
        ivGenerator: CKG_GENERATE_RANDOM,
        pTag: tag.as_mut_ptr(),
        ulTagBits: 128,
    };
    let gp: *mut std::ffi::c_void = (&mut gcm_message as *mut CK_GCM_MESSAGE_PARAMS).cast();
    let gl = size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
    let mut gcm_wrap = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: gp,
        ulParameterLen: gl,
    };
    macro_rules! each {
        ($($f:ident($($a:expr),* $(,)?);)*) => { $( rv!(want, $f($($a),*)); )* };
    }
    each! {
        C_CloseSession(h);
        C_GetSessionInfo(h, &mut info);
        C_SessionCancel(h, CKF_ENCRYPT);
        C_GetOperationState(h, p, &mut len);
        C_SetOperationState(h, p, 8, 0, 0);
        C_Login(h, CKU_USER, pl, pn);
        C_LoginUser(h, CKU_USER, pl, pn, null_mut(), 0);
        C_Logout(h);
        C_InitPIN(h, pl, pn);
        C_SetPIN(h, pl, pn, pl, pn);
        C_CreateObject(h, tp, 1, &mut obj);
        C_CopyObject(h, 1, tp, 1, &mut obj);
        C_DestroyObject(h, 1);
        C_GetObjectSize(h, 1, &mut size);
        C_GetAttributeValue(h, 1, tp, 1);
        C_SetAttributeValue(h, 1, tp, 1);
        C_FindObjectsInit(h, tp, 1);
        C_FindObjects(h, objs.as_mut_ptr(), 4, &mut found);
        C_FindObjectsFinal(h);
        C_EncryptInit(h, &mut ecb, 1);
        C_Encrypt(h, p, 16, p, &mut len);
        C_EncryptUpdate(h, p, 16, p, &mut len);
        C_EncryptFinal(h, p, &mut len);
        C_DecryptInit(h, &mut ecb, 1);
        C_Decrypt(h, p, 16, p, &mut len);
        C_DecryptUpdate(h, p, 16, p, &mut len);
        C_DecryptFinal(h, p, &mut len);
        C_DigestInit(h, &mut m);
        C_Digest(h, p, 16, p, &mut len);
        C_DigestUpdate(h, p, 16);
        C_DigestKey(h, 1);
        C_DigestFinal(h, p, &mut len);
        C_SignInit(h, &mut ecdsa, 1);
        C_Sign(h, p, 16, p, &mut len);
        C_SignUpdate(h, p, 16);
        C_SignFinal(h, p, &mut len);
        C_SignRecoverInit(h, &mut rsa, 1);
        C_SignRecover(h, p, 16, p, &mut len);
        C_VerifyInit(h, &mut ecdsa, 1);
        C_Verify(h, p, 16, p, 16);
        C_VerifyUpdate(h, p, 16);
        C_VerifyFinal(h, p, 16);
        C_VerifyRecoverInit(h, &mut rsa, 1);
        C_VerifyRecover(h, p, 16, p, &mut len);
        C_DigestEncryptUpdate(h, p, 16, p, &mut len);
        C_DecryptDigestUpdate(h, p, 16, p, &mut len);
        C_SignEncryptUpdate(h, p, 16, p, &mut len);
        C_DecryptVerifyUpdate(h, p, 16, p, &mut len);
        C_GenerateKey(h, &mut aes_gen, tp, 1, &mut obj);
        C_GenerateKeyPair(h, &mut ec_gen, tp, 1, tp, 1, &mut obj, &mut size);
        C_WrapKey(h, &mut kw, 1, 2, p, &mut len);
        C_UnwrapKey(h, &mut kw, 1, p, 16, tp, 1, &mut obj);
        C_DeriveKey(h, &mut ecdh, 1, tp, 1, &mut obj);
        C_SeedRandom(h, p, 16);
        C_GenerateRandom(h, p, 16);
        C_MessageEncryptInit(h, &mut gcm, 1);
        C_EncryptMessage(h, gp, gl, p, 0, p, 16, p, &mut len);
        C_EncryptMessageBegin(h, gp, gl, p, 0);
        C_EncryptMessageNext(h, gp, gl, p, 16, p, &mut len, 0);
        C_MessageEncryptFinal(h);
        C_MessageDecryptInit(h, &mut gcm, 1);
        C_DecryptMessage(h, gp, gl, p, 0, p, 16, p, &mut len);
        C_DecryptMessageBegin(h, gp, gl, p, 0);
        C_DecryptMessageNext(h, gp, gl, p, 16, p, &mut len, 0);
        C_MessageDecryptFinal(h);
        C_MessageSignInit(h, &mut ecdsa, 1);
        C_SignMessage(h, v, 0, p, 16, p, &mut len);
        C_SignMessageBegin(h, v, 0);
        C_SignMessageNext(h, v, 0, p, 16, p, &mut len);
        C_MessageSignFinal(h);
        C_MessageVerifyInit(h, &mut ecdsa, 1);
        C_VerifyMessage(h, v, 0, p, 16, p, 16);
        C_VerifyMessageBegin(h, v, 0);
        C_VerifyMessageNext(h, v, 0, p, 16, p, 16);
        C_MessageVerifyFinal(h);
        C_EncapsulateKey(h, &mut kem, 1, tp, 1, p, &mut len, &mut obj);
        C_DecapsulateKey(h, &mut kem, 1, tp, 1, p, 16, &mut obj);
        C_VerifySignatureInit(h, &mut ecdsa, 1, p, 16);
        C_VerifySignature(h, p, 16);
        C_VerifySignatureUpdate(h, p, 16);
        C_VerifySignatureFinal(h);
        C_GetSessionValidationFlags(h, CKS_LAST_VALIDATION_OK, &mut flags);
        C_AsyncComplete(h, np, &mut async_data);
        C_AsyncGetID(h, np, &mut size);
        C_AsyncJoin(h, np, 1, p, 16);
        C_WrapKeyAuthenticated(h, &mut gcm_wrap, 1, 2, p, 0, p, &mut len);
        C_UnwrapKeyAuthenticated(h, &mut gcm_wrap, 1, p, 16, tp, 1, p, 0, &mut obj);
    }
}

/// Calls every function that takes a slot id with `slot` and otherwise valid arguments.
fn every_slot_function(slot: CK_SLOT_ID, want: CK_RV) {
    let mut slot_info = CK_SLOT_INFO::default();
    let mut token_info = CK_TOKEN_INFO::default();
    let mut mechs = [0 as CK_MECHANISM_TYPE; 128];
    let mut n: CK_ULONG = 128;
    let mut mech_info = CK_MECHANISM_INFO::default();
    let mut so = SO_PIN.to_vec();
    let mut label = [b' '; 32];
    let mut h: CK_SESSION_HANDLE = 0;
    rv!(want, C_GetSlotInfo(slot, &mut slot_info));
    rv!(want, C_GetTokenInfo(slot, &mut token_info));
    rv!(want, C_GetMechanismList(slot, mechs.as_mut_ptr(), &mut n));
    rv!(want, C_GetMechanismInfo(slot, CKM_SHA256, &mut mech_info));
    rv!(
        want,
        C_InitToken(
            slot,
            so.as_mut_ptr(),
            so.len() as CK_ULONG,
            label.as_mut_ptr()
        )
    );
    rv!(
        want,
        C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
    );
    rv!(want, C_CloseAllSessions(slot));
}

#[test]
fn before_c_initialize_every_function_says_not_initialized() {
    isolated(
        "conformance::before_c_initialize_every_function_says_not_initialized",
        "",
        || {
            every_session_function(1, CKR_CRYPTOKI_NOT_INITIALIZED);
            every_slot_function(0, CKR_CRYPTOKI_NOT_INITIALIZED);
            let mut info = CK_INFO::default();
            rv!(CKR_CRYPTOKI_NOT_INITIALIZED, C_GetInfo(&mut info));
            let mut n: CK_ULONG = 0;
            rv!(
                CKR_CRYPTOKI_NOT_INITIALIZED,
                C_GetSlotList(CK_FALSE, null_mut(), &mut n)
            );
            let mut slot: CK_SLOT_ID = 0;
            rv!(
                CKR_CRYPTOKI_NOT_INITIALIZED,
                C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut())
            );
            rv!(CKR_CRYPTOKI_NOT_INITIALIZED, C_Finalize(null_mut()));
            // The function list is the one thing available before initialisation.
            let mut list: *mut CK_FUNCTION_LIST = null_mut();
            ok(c!(C_GetFunctionList(&mut list)));
            rv!(CKR_ARGUMENTS_BAD, C_GetFunctionList(null_mut()));
        },
    );
}

#[test]
fn unknown_session_handles_and_slots_are_invalid_everywhere() {
    both(
        "conformance::unknown_session_handles_and_slots_are_invalid_everywhere",
        "",
        || {
            ok(c!(C_Initialize(null_mut())));
            every_session_function(0xdead, CKR_SESSION_HANDLE_INVALID);
            every_session_function(CK_INVALID_HANDLE, CKR_SESSION_HANDLE_INVALID);
            every_slot_function(99, CKR_SLOT_ID_INVALID);
            // A closed session's handle is invalid too.
            init_token(0);
            let h = open(0, true);
            ok(c!(C_CloseSession(h)));
            every_session_function(h, CKR_SESSION_HANDLE_INVALID);
        },
    );
}

#[test]
fn general_and_slot_functions_refuse_bad_arguments() {
    both(
        "conformance::general_and_slot_functions_refuse_bad_arguments",
        "",
        || {
            ok(c!(C_Initialize(null_mut())));
            rv!(CKR_ARGUMENTS_BAD, C_GetInfo(null_mut()));
            rv!(
                CKR_ARGUMENTS_BAD,
                C_GetSlotList(CK_FALSE, null_mut(), null_mut())
            );
            let mut slots = [0 as CK_SLOT_ID; 1];
            let mut n: CK_ULONG = 1;
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut n)
            );
            assert_eq!(n, 2, "the count needed");
            rv!(CKR_ARGUMENTS_BAD, C_GetSlotInfo(0, null_mut()));
            rv!(CKR_ARGUMENTS_BAD, C_GetTokenInfo(0, null_mut()));
            // An uninitialised token has no mechanisms to refuse, but is not usable.
            let mut token = CK_TOKEN_INFO::default();
            ok(c!(C_GetTokenInfo(0, &mut token)));
            assert_eq!(token.flags & CKF_TOKEN_INITIALIZED, 0);
            let mut h = 0;
            rv!(
                CKR_TOKEN_NOT_RECOGNIZED,
                C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
            );
            rv!(
                CKR_ARGUMENTS_BAD,
                C_GetMechanismList(0, null_mut(), null_mut())
            );
            let mut one = [0 as CK_MECHANISM_TYPE; 1];
            let mut n: CK_ULONG = 1;
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_GetMechanismList(0, one.as_mut_ptr(), &mut n)
            );
            assert!(n > 1);
            let mut info = CK_MECHANISM_INFO::default();
            rv!(
                CKR_MECHANISM_INVALID,
                C_GetMechanismInfo(0, 0x8000_1234, &mut info)
            );
            rv!(
                CKR_ARGUMENTS_BAD,
                C_GetMechanismInfo(0, CKM_SHA256, null_mut())
            );
            let mut slot: CK_SLOT_ID = 0;
            rv!(
                CKR_NO_EVENT,
                C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut())
            );
            rv!(
                CKR_ARGUMENTS_BAD,
                C_WaitForSlotEvent(CKF_DONT_BLOCK, null_mut(), null_mut())
            );
            let mut junk = 0u8;
            rv!(
                CKR_ARGUMENTS_BAD,
                C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, (&mut junk as *mut u8).cast())
            );
        },
    );
}

#[test]
fn token_and_pin_management_refusals() {
    both("conformance::token_and_pin_management_refusals", "", || {
        ok(c!(C_Initialize(null_mut())));
        let mut so = SO_PIN.to_vec();
        let sl = so.len() as CK_ULONG;
        let mut label = [b' '; 32];
        let mut short = *b"abc";
        rv!(
            CKR_ARGUMENTS_BAD,
            C_InitToken(0, so.as_mut_ptr(), sl, null_mut())
        );
        rv!(
            CKR_ARGUMENTS_BAD,
            C_InitToken(0, null_mut(), sl, label.as_mut_ptr())
        );
        rv!(
            CKR_PIN_LEN_RANGE,
            C_InitToken(0, short.as_mut_ptr(), 3, label.as_mut_ptr())
        );
        init_token(0);
        // Re-initialising needs the SO PIN, and no session may be open.
        let mut wrong = *b"not-the-so-pin";
        rv!(
            CKR_PIN_INCORRECT,
            C_InitToken(0, wrong.as_mut_ptr(), 14, label.as_mut_ptr())
        );
        let ro = open(0, false);
        rv!(
            CKR_SESSION_EXISTS,
            C_InitToken(0, so.as_mut_ptr(), sl, label.as_mut_ptr())
        );

        let mut pin = USER_PIN.to_vec();
        let pl = pin.len() as CK_ULONG;
        // C_InitPIN needs the SO, who is never logged in while a read-only session is open.
        rv!(CKR_USER_NOT_LOGGED_IN, C_InitPIN(ro, pin.as_mut_ptr(), pl));
        let rw = open(0, true);
        rv!(CKR_USER_NOT_LOGGED_IN, C_InitPIN(rw, pin.as_mut_ptr(), pl));
        // The SO may not log in while a read-only session is open.
        rv!(
            CKR_SESSION_READ_ONLY_EXISTS,
            C_Login(rw, CKU_SO, so.as_mut_ptr(), sl)
        );
        ok(c!(C_CloseSession(ro)));
        ok(c!(C_Login(rw, CKU_SO, so.as_mut_ptr(), sl)));
        rv!(CKR_PIN_LEN_RANGE, C_InitPIN(rw, short.as_mut_ptr(), 3));
        let mut h = 0;
        rv!(
            CKR_SESSION_READ_WRITE_SO_EXISTS,
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        );
        rv!(
            CKR_USER_ALREADY_LOGGED_IN,
            C_Login(rw, CKU_SO, so.as_mut_ptr(), sl)
        );
        rv!(
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            C_Login(rw, CKU_USER, pin.as_mut_ptr(), pl)
        );
        ok(c!(C_Logout(rw)));
        rv!(CKR_USER_NOT_LOGGED_IN, C_Logout(rw));

        // C_SetPIN: the old PIN must be right, the new one in range, the session R/W.
        let mut new = *b"new-user-pin";
        ok(c!(C_Login(rw, CKU_USER, pin.as_mut_ptr(), pl)));
        rv!(
            CKR_PIN_INCORRECT,
            C_SetPIN(rw, wrong.as_mut_ptr(), 14, new.as_mut_ptr(), 12)
        );
        rv!(
            CKR_PIN_LEN_RANGE,
            C_SetPIN(rw, pin.as_mut_ptr(), pl, short.as_mut_ptr(), 3)
        );
        let ro = open(0, false);
        rv!(
            CKR_SESSION_READ_ONLY,
            C_SetPIN(ro, pin.as_mut_ptr(), pl, new.as_mut_ptr(), 12)
        );
        rv!(
            CKR_ARGUMENTS_BAD,
            C_SetPIN(rw, null_mut(), pl, new.as_mut_ptr(), 12)
        );
        ok(c!(C_Logout(rw)));
        rv!(CKR_USER_TYPE_INVALID, C_Login(rw, 7, pin.as_mut_ptr(), pl));
        rv!(CKR_ARGUMENTS_BAD, C_Login(rw, CKU_USER, null_mut(), pl));
        rv!(
            CKR_USER_NOT_LOGGED_IN,
            C_Login(rw, CKU_CONTEXT_SPECIFIC, pin.as_mut_ptr(), pl)
        );
    });
}

#[test]
fn wrong_pins_lock_the_user_out() {
    both("conformance::wrong_pins_lock_the_user_out", "", || {
        ok(c!(C_Initialize(null_mut())));
        // A token whose user PIN was never set.
        let mut so = SO_PIN.to_vec();
        let mut label = [b' '; 32];
        ok(c!(C_InitToken(
            1,
            so.as_mut_ptr(),
            so.len() as CK_ULONG,
            label.as_mut_ptr()
        )));
        let fresh = open(1, true);
        let mut pin = USER_PIN.to_vec();
        let pl = pin.len() as CK_ULONG;
        rv!(
            CKR_USER_PIN_NOT_INITIALIZED,
            C_Login(fresh, CKU_USER, pin.as_mut_ptr(), pl)
        );

        init_token(0);
        let h = open(0, false);
        let mut wrong = *b"wrong-pin-1";
        // max_failed_logins = 3 in the test configuration.
        for _ in 0..3 {
            rv!(
                CKR_PIN_INCORRECT,
                C_Login(h, CKU_USER, wrong.as_mut_ptr(), 11)
            );
        }
        rv!(CKR_PIN_LOCKED, C_Login(h, CKU_USER, pin.as_mut_ptr(), pl));
        let mut info = CK_TOKEN_INFO::default();
        ok(c!(C_GetTokenInfo(0, &mut info)));
        assert_ne!(info.flags & CKF_USER_PIN_LOCKED, 0);
    });
}

#[test]
fn session_state_and_parallel_functions() {
    both(
        "conformance::session_state_and_parallel_functions",
        "",
        || {
            ok(c!(C_Initialize(null_mut())));
            init_token(0);
            let mut h = 0;
            rv!(
                CKR_SESSION_PARALLEL_NOT_SUPPORTED,
                C_OpenSession(0, 0, null_mut(), None, &mut h)
            );
            rv!(
                CKR_ARGUMENTS_BAD,
                C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, null_mut())
            );
            let h = open(0, true);
            rv!(CKR_ARGUMENTS_BAD, C_GetSessionInfo(h, null_mut()));
            rv!(CKR_FUNCTION_NOT_PARALLEL, C_GetFunctionStatus(h));
            rv!(CKR_FUNCTION_NOT_PARALLEL, C_CancelFunction(h));
            // Nothing to save, and garbage to restore.
            let mut len: CK_ULONG = 0;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_GetOperationState(h, null_mut(), &mut len)
            );
            let mut junk = [0x5au8; 40];
            rv!(
                CKR_SAVED_STATE_INVALID,
                C_SetOperationState(h, junk.as_mut_ptr(), 40, 0, 0)
            );
            rv!(
                CKR_ARGUMENTS_BAD,
                C_SetOperationState(h, null_mut(), 40, 0, 0)
            );
            // A digest state saves; the short buffer is reported with the size needed.
            let mut m = mech(CKM_SHA256);
            ok(c!(C_DigestInit(h, &mut m)));
            let mut data = *b"half";
            ok(c!(C_DigestUpdate(h, data.as_mut_ptr(), 4)));
            ok(c!(C_GetOperationState(h, null_mut(), &mut len)));
            let mut state = vec![0u8; len as usize];
            let mut short: CK_ULONG = 1;
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_GetOperationState(h, state.as_mut_ptr(), &mut short)
            );
            assert_eq!(short, len);
            rv!(
                CKR_ARGUMENTS_BAD,
                C_SessionCancel(h, CKF_ENCRYPT | 0x8000_0000)
            );
            ok(c!(C_SessionCancel(h, CKF_DIGEST)));
            let mut out = [0u8; 32];
            let mut n: CK_ULONG = 32;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_DigestFinal(h, out.as_mut_ptr(), &mut n)
            );
        },
    );
}

#[test]
fn object_functions_refuse_bad_templates_and_handles() {
    both(
        "conformance::object_functions_refuse_bad_templates_and_handles",
        "",
        || {
            let h = user_session();
            let ro = open(0, false);
            let mut k = 0;
            let mut class: CK_OBJECT_CLASS = CKO_DATA;
            let mut value = *b"data";
            let mut yes: CK_BBOOL = CK_TRUE;
            // No class at all.
            let mut t = [attr_bytes(CKA_VALUE, &mut value)];
            rv!(
                CKR_TEMPLATE_INCOMPLETE,
                C_CreateObject(h, t.as_mut_ptr(), 1, &mut k)
            );
            // A class of the wrong size.
            let mut short_class = 1u8;
            let mut t = [attr(CKA_CLASS, &mut short_class)];
            rv!(
                CKR_ATTRIBUTE_VALUE_INVALID,
                C_CreateObject(h, t.as_mut_ptr(), 1, &mut k)
            );
            // An attribute no object has.
            let mut t = [attr(CKA_CLASS, &mut class), attr(0x7fff_0001, &mut yes)];
            rv!(
                CKR_ATTRIBUTE_TYPE_INVALID,
                C_CreateObject(h, t.as_mut_ptr(), 2, &mut k)
            );
            // The same attribute twice with different values.
            let mut no: CK_BBOOL = CK_FALSE;
            let mut t = [
                attr(CKA_CLASS, &mut class),
                attr(CKA_TOKEN, &mut yes),
                attr(CKA_TOKEN, &mut no),
            ];
            rv!(
                CKR_TEMPLATE_INCONSISTENT,
                C_CreateObject(h, t.as_mut_ptr(), 3, &mut k)
            );
            // A token object needs a read/write session.
            let mut t = [attr(CKA_CLASS, &mut class), attr(CKA_TOKEN, &mut yes)];
            rv!(
                CKR_SESSION_READ_ONLY,
                C_CreateObject(ro, t.as_mut_ptr(), 2, &mut k)
            );
            rv!(CKR_ARGUMENTS_BAD, C_CreateObject(h, null_mut(), 2, &mut k));
            rv!(
                CKR_ARGUMENTS_BAD,
                C_CreateObject(h, t.as_mut_ptr(), 2, null_mut())
            );
            // Read-only attributes cannot be set on creation.
            let mut local: CK_BBOOL = CK_TRUE;
            let mut secret: CK_OBJECT_CLASS = CKO_SECRET_KEY;
            let mut kt: CK_KEY_TYPE = CKK_AES;
            let mut key = [7u8; 16];
            let mut t = [
                attr(CKA_CLASS, &mut secret),
                attr(CKA_KEY_TYPE, &mut kt),
                attr_bytes(CKA_VALUE, &mut key),
                attr(CKA_LOCAL, &mut local),
            ];
            rv!(
                CKR_ATTRIBUTE_READ_ONLY,
                C_CreateObject(h, t.as_mut_ptr(), 4, &mut k)
            );

            let fixed = aes_with(
                h,
                &[CKA_ENCRYPT],
                &[
                    (CKA_COPYABLE, false),
                    (CKA_DESTROYABLE, false),
                    (CKA_MODIFIABLE, false),
                ],
            );
            let mut t: [CK_ATTRIBUTE; 0] = [];
            rv!(
                CKR_ACTION_PROHIBITED,
                C_CopyObject(h, fixed, t.as_mut_ptr(), 0, &mut k)
            );
            rv!(CKR_ACTION_PROHIBITED, C_DestroyObject(h, fixed));
            let mut label = *b"new";
            let mut t = [attr_bytes(CKA_LABEL, &mut label)];
            rv!(
                CKR_ACTION_PROHIBITED,
                C_SetAttributeValue(h, fixed, t.as_mut_ptr(), 1)
            );
            rv!(CKR_OBJECT_HANDLE_INVALID, C_DestroyObject(h, 0xdead));
            rv!(
                CKR_OBJECT_HANDLE_INVALID,
                C_CopyObject(h, 0xdead, t.as_mut_ptr(), 0, &mut k)
            );
            let mut size: CK_ULONG = 0;
            rv!(
                CKR_OBJECT_HANDLE_INVALID,
                C_GetObjectSize(h, 0xdead, &mut size)
            );
            rv!(CKR_ARGUMENTS_BAD, C_GetObjectSize(h, fixed, null_mut()));

            // Attribute reads: sensitive, unknown, and too small, each marked in place.
            let key = aes_with(h, &[CKA_ENCRYPT], &[]);
            let mut v = [0u8; 32];
            let mut cls: CK_OBJECT_CLASS = 0;
            let mut t = [attr_bytes(CKA_VALUE, &mut v), attr(CKA_CLASS, &mut cls)];
            rv!(
                CKR_ATTRIBUTE_SENSITIVE,
                C_GetAttributeValue(h, key, t.as_mut_ptr(), 2)
            );
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert_eq!(
                cls, CKO_SECRET_KEY,
                "the readable attribute is still returned"
            );
            let mut t = [attr(0x7fff_0001, &mut cls)];
            rv!(
                CKR_ATTRIBUTE_TYPE_INVALID,
                C_GetAttributeValue(h, key, t.as_mut_ptr(), 1)
            );
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            let mut tiny = 0u8;
            let mut t = [CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: (&mut tiny as *mut u8).cast(),
                ulValueLen: 1,
            }];
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_GetAttributeValue(h, key, t.as_mut_ptr(), 1)
            );
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            rv!(
                CKR_ARGUMENTS_BAD,
                C_GetAttributeValue(h, key, null_mut(), 1)
            );

            // Attribute writes: read-only, one-way rules.
            let mut other: CK_OBJECT_CLASS = CKO_DATA;
            let mut t = [attr(CKA_CLASS, &mut other)];
            rv!(
                CKR_ATTRIBUTE_READ_ONLY,
                C_SetAttributeValue(h, key, t.as_mut_ptr(), 1)
            );
            let mut no: CK_BBOOL = CK_FALSE;
            let mut t = [attr(CKA_SENSITIVE, &mut no)];
            rv!(
                CKR_ATTRIBUTE_READ_ONLY,
                C_SetAttributeValue(h, key, t.as_mut_ptr(), 1)
            );
            let mut wide: CK_ULONG = 1;
            let mut t = [attr(CKA_SENSITIVE, &mut wide)];
            rv!(
                CKR_ATTRIBUTE_VALUE_INVALID,
                C_SetAttributeValue(h, key, t.as_mut_ptr(), 1)
            );

            // Search: one at a time.
            let mut t: [CK_ATTRIBUTE; 0] = [];
            let mut found = [0 as CK_OBJECT_HANDLE; 4];
            let mut n: CK_ULONG = 0;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_FindObjects(h, found.as_mut_ptr(), 4, &mut n)
            );
            rv!(CKR_OPERATION_NOT_INITIALIZED, C_FindObjectsFinal(h));
            ok(c!(C_FindObjectsInit(h, t.as_mut_ptr(), 0)));
            rv!(
                CKR_OPERATION_ACTIVE,
                C_FindObjectsInit(h, t.as_mut_ptr(), 0)
            );
            rv!(CKR_ARGUMENTS_BAD, C_FindObjects(h, null_mut(), 4, &mut n));
            rv!(
                CKR_ARGUMENTS_BAD,
                C_FindObjects(h, found.as_mut_ptr(), 4, null_mut())
            );
            ok(c!(C_FindObjectsFinal(h)));
        },
    );
}

#[test]
fn private_objects_need_the_user() {
    both("conformance::private_objects_need_the_user", "", || {
        ok(c!(C_Initialize(null_mut())));
        init_token(0);
        let h = open(0, true);
        let mut class: CK_OBJECT_CLASS = CKO_DATA;
        let mut yes: CK_BBOOL = CK_TRUE;
        let mut t = [attr(CKA_CLASS, &mut class), attr(CKA_PRIVATE, &mut yes)];
        let mut k = 0;
        rv!(
            CKR_USER_NOT_LOGGED_IN,
            C_CreateObject(h, t.as_mut_ptr(), 2, &mut k)
        );
        let mut len: CK_ULONG = 32;
        let mut t = [attr(CKA_VALUE_LEN, &mut len)];
        let mut m = mech(CKM_AES_KEY_GEN);
        rv!(
            CKR_USER_NOT_LOGGED_IN,
            C_GenerateKey(h, &mut m, t.as_mut_ptr(), 1, &mut k)
        );
    });
}

#[test]
fn cipher_functions_refuse_what_the_spec_says() {
    both(
        "conformance::cipher_functions_refuse_what_the_spec_says",
        "",
        || {
            let h = user_session();
            let aes = aes_with(h, &[CKA_ENCRYPT, CKA_DECRYPT], &[]);
            let sign_only = aes_with(h, &[CKA_SIGN], &[]);
            let (ec_pub, _) = ec_pair(h, false);
            let mut iv = [0u8; 16];
            let mut cbc = CK_MECHANISM {
                mechanism: CKM_AES_CBC,
                pParameter: iv.as_mut_ptr().cast(),
                ulParameterLen: 16,
            };
            let mut bad_iv = CK_MECHANISM {
                mechanism: CKM_AES_CBC,
                pParameter: iv.as_mut_ptr().cast(),
                ulParameterLen: 7,
            };
            let mut unknown = mech(0x8000_4321);
            rv!(CKR_MECHANISM_INVALID, C_EncryptInit(h, &mut unknown, aes));
            rv!(
                CKR_MECHANISM_PARAM_INVALID,
                C_EncryptInit(h, &mut bad_iv, aes)
            );
            rv!(CKR_KEY_HANDLE_INVALID, C_EncryptInit(h, &mut cbc, 0xdead));
            rv!(
                CKR_KEY_TYPE_INCONSISTENT,
                C_EncryptInit(h, &mut cbc, ec_pub)
            );
            rv!(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                C_EncryptInit(h, &mut cbc, sign_only)
            );
            // A null mechanism ends whatever encryption runs (3.0 §5.8): nothing runs here.
            rv!(CKR_OK, C_EncryptInit(h, null_mut(), aes));
            rv!(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                C_DecryptInit(h, &mut cbc, sign_only)
            );

            let mut data = [0u8; 64];
            let mut out = [0u8; 80];
            let mut n: CK_ULONG = 80;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Encrypt(h, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_EncryptUpdate(h, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_EncryptFinal(h, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Decrypt(h, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_DecryptUpdate(h, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_DecryptFinal(h, out.as_mut_ptr(), &mut n)
            );

            // CBC without padding takes whole blocks only; the refusal ends the operation.
            ok(c!(C_EncryptInit(h, &mut cbc, aes)));
            rv!(CKR_OPERATION_ACTIVE, C_EncryptInit(h, &mut cbc, aes));
            rv!(
                CKR_DATA_LEN_RANGE,
                C_Encrypt(h, data.as_mut_ptr(), 15, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Encrypt(h, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut n)
            );
            ok(c!(C_EncryptInit(h, &mut cbc, aes)));
            let mut short: CK_ULONG = 8;
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_Encrypt(h, data.as_mut_ptr(), 32, out.as_mut_ptr(), &mut short)
            );
            assert_eq!(short, 32);
            rv!(
                CKR_ARGUMENTS_BAD,
                C_Encrypt(h, null_mut(), 32, out.as_mut_ptr(), &mut n)
            );
            ok(c!(C_DecryptInit(h, &mut cbc, aes)));
            rv!(
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                C_Decrypt(h, data.as_mut_ptr(), 17, out.as_mut_ptr(), &mut n)
            );

            // GCM: a changed tag is invalid ciphertext, and nothing is released.
            let mut gcm_iv = [1u8; 12];
            let mut params = CK_GCM_PARAMS {
                pIv: gcm_iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: null_mut(),
                ulAADLen: 0,
                ulTagBits: 128,
            };
            let mut gcm = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: (&mut params as *mut CK_GCM_PARAMS).cast(),
                ulParameterLen: size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            };
            ok(c!(C_EncryptInit(h, &mut gcm, aes)));
            let mut sealed = [0u8; 48];
            let mut sn: CK_ULONG = 48;
            ok(c!(C_Encrypt(
                h,
                data.as_mut_ptr(),
                32,
                sealed.as_mut_ptr(),
                &mut sn
            )));
            sealed[40] ^= 1;
            ok(c!(C_DecryptInit(h, &mut gcm, aes)));
            let mut plain = [0xeeu8; 48];
            let mut pn: CK_ULONG = 48;
            rv!(
                CKR_ENCRYPTED_DATA_INVALID,
                C_Decrypt(h, sealed.as_mut_ptr(), sn, plain.as_mut_ptr(), &mut pn)
            );
            assert!(
                plain.iter().all(|b| *b == 0xee),
                "no plaintext on a bad tag"
            );
            let mut tag_bits = params;
            tag_bits.ulTagBits = 129;
            let mut bad_gcm = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: (&mut tag_bits as *mut CK_GCM_PARAMS).cast(),
                ulParameterLen: size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            };
            rv!(
                CKR_MECHANISM_PARAM_INVALID,
                C_EncryptInit(h, &mut bad_gcm, aes)
            );
        },
    );
}

#[test]
fn digest_functions_refuse_what_the_spec_says() {
    both(
        "conformance::digest_functions_refuse_what_the_spec_says",
        "",
        || {
            let h = user_session();
            let key = aes_with(h, &[CKA_ENCRYPT], &[(CKA_SENSITIVE, false)]);
            let mut data = *b"digest me";
            let mut out = [0u8; 32];
            let mut n: CK_ULONG = 32;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Digest(h, data.as_mut_ptr(), 9, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_DigestUpdate(h, data.as_mut_ptr(), 9)
            );
            rv!(CKR_OPERATION_NOT_INITIALIZED, C_DigestKey(h, key));
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_DigestFinal(h, out.as_mut_ptr(), &mut n)
            );
            let mut unknown = mech(CKM_AES_CBC);
            rv!(CKR_MECHANISM_INVALID, C_DigestInit(h, &mut unknown));
            let mut m = mech(CKM_SHA256);
            ok(c!(C_DigestInit(h, &mut m)));
            rv!(CKR_OPERATION_ACTIVE, C_DigestInit(h, &mut m));
            rv!(CKR_KEY_HANDLE_INVALID, C_DigestKey(h, 0xdead));
        },
    );
}

#[test]
fn digest_key_refuses_keys_it_cannot_digest() {
    both(
        "conformance::digest_key_refuses_keys_it_cannot_digest",
        "",
        || {
            let h = user_session();
            let (ec_pub, _) = ec_pair(h, false);
            let mut m = mech(CKM_SHA256);
            ok(c!(C_DigestInit(h, &mut m)));
            rv!(CKR_KEY_INDIGESTIBLE, C_DigestKey(h, ec_pub));
        },
    );
}

#[test]
fn sign_and_verify_functions_refuse_what_the_spec_says() {
    both(
        "conformance::sign_and_verify_functions_refuse_what_the_spec_says",
        "",
        || {
            let h = user_session();
            let (ec_pub, ec_priv) = ec_pair(h, false);
            let aes = aes_with(h, &[CKA_ENCRYPT], &[]);
            let mut ecdsa = mech(CKM_ECDSA_SHA256);
            let mut data = *b"signed data";
            let mut sig = [0u8; 64];
            let mut n: CK_ULONG = 64;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Sign(h, data.as_mut_ptr(), 11, sig.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_SignUpdate(h, data.as_mut_ptr(), 11)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_SignFinal(h, sig.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Verify(h, data.as_mut_ptr(), 11, sig.as_mut_ptr(), 64)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_VerifyUpdate(h, data.as_mut_ptr(), 11)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_VerifyFinal(h, sig.as_mut_ptr(), 64)
            );
            rv!(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                C_SignInit(h, &mut ecdsa, ec_pub)
            );
            rv!(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                C_VerifyInit(h, &mut ecdsa, ec_priv)
            );
            rv!(CKR_KEY_TYPE_INCONSISTENT, C_SignInit(h, &mut ecdsa, aes));
            rv!(CKR_KEY_HANDLE_INVALID, C_SignInit(h, &mut ecdsa, 0xdead));
            // ECDSA recovers nothing.
            rv!(
                CKR_MECHANISM_INVALID,
                C_SignRecoverInit(h, &mut ecdsa, ec_priv)
            );
            rv!(
                CKR_MECHANISM_INVALID,
                C_VerifyRecoverInit(h, &mut ecdsa, ec_pub)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_SignRecover(h, data.as_mut_ptr(), 11, sig.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_VerifyRecover(h, sig.as_mut_ptr(), 64, data.as_mut_ptr(), &mut n)
            );

            // Raw ECDSA works in one part only: an update is refused and ends the operation.
            let mut raw = mech(CKM_ECDSA);
            ok(c!(C_SignInit(h, &mut raw, ec_priv)));
            rv!(
                CKR_MECHANISM_INVALID,
                C_SignUpdate(h, data.as_mut_ptr(), 11)
            );
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_Sign(h, data.as_mut_ptr(), 11, sig.as_mut_ptr(), &mut n)
            );
            // A single-part call cannot finish a multi-part operation.
            ok(c!(C_SignInit(h, &mut ecdsa, ec_priv)));
            ok(c!(C_SignUpdate(h, data.as_mut_ptr(), 11)));
            rv!(
                CKR_OPERATION_ACTIVE,
                C_Sign(h, data.as_mut_ptr(), 11, sig.as_mut_ptr(), &mut n)
            );
            ok(c!(C_SignInit(h, &mut ecdsa, ec_priv)));
            rv!(CKR_OPERATION_ACTIVE, C_SignInit(h, &mut ecdsa, ec_priv));
            ok(c!(C_Sign(
                h,
                data.as_mut_ptr(),
                11,
                sig.as_mut_ptr(),
                &mut n
            )));
            // A wrong signature, and one of the wrong length.
            ok(c!(C_VerifyInit(h, &mut ecdsa, ec_pub)));
            rv!(CKR_OPERATION_ACTIVE, C_VerifyInit(h, &mut ecdsa, ec_pub));
            let mut other = *b"signed date";
            rv!(
                CKR_SIGNATURE_INVALID,
                C_Verify(h, other.as_mut_ptr(), 11, sig.as_mut_ptr(), 64)
            );
            ok(c!(C_VerifyInit(h, &mut ecdsa, ec_pub)));
            rv!(
                CKR_SIGNATURE_LEN_RANGE,
                C_Verify(h, data.as_mut_ptr(), 11, sig.as_mut_ptr(), 63)
            );
            ok(c!(C_VerifyInit(h, &mut ecdsa, ec_pub)));
            ok(c!(C_VerifyUpdate(h, data.as_mut_ptr(), 11)));
            sig[5] ^= 1;
            rv!(
                CKR_SIGNATURE_INVALID,
                C_VerifyFinal(h, sig.as_mut_ptr(), 64)
            );
        },
    );
}

#[test]
fn key_management_functions_refuse_what_the_spec_says() {
    both(
        "conformance::key_management_functions_refuse_what_the_spec_says",
        "",
        || {
            let h = user_session();
            let ro = open(0, false);
            let mut k = 0;
            let (mut pubh, mut privh) = (0, 0);
            // C_GenerateKey: wrong mechanism kind, missing or bad length, token in RO.
            let mut pair_gen = mech(CKM_EC_KEY_PAIR_GEN);
            let mut t: [CK_ATTRIBUTE; 0] = [];
            rv!(
                CKR_MECHANISM_INVALID,
                C_GenerateKey(h, &mut pair_gen, t.as_mut_ptr(), 0, &mut k)
            );
            let mut aes_gen = mech(CKM_AES_KEY_GEN);
            rv!(
                CKR_TEMPLATE_INCOMPLETE,
                C_GenerateKey(h, &mut aes_gen, t.as_mut_ptr(), 0, &mut k)
            );
            let mut seven: CK_ULONG = 7;
            let mut t7 = [attr(CKA_VALUE_LEN, &mut seven)];
            rv!(
                CKR_KEY_SIZE_RANGE,
                C_GenerateKey(h, &mut aes_gen, t7.as_mut_ptr(), 1, &mut k)
            );
            let mut len: CK_ULONG = 32;
            let mut yes: CK_BBOOL = CK_TRUE;
            let mut tok = [attr(CKA_VALUE_LEN, &mut len), attr(CKA_TOKEN, &mut yes)];
            rv!(
                CKR_SESSION_READ_ONLY,
                C_GenerateKey(ro, &mut aes_gen, tok.as_mut_ptr(), 2, &mut k)
            );
            rv!(
                CKR_ARGUMENTS_BAD,
                C_GenerateKey(h, &mut aes_gen, tok.as_mut_ptr(), 2, null_mut())
            );
            // C_GenerateKeyPair: no curve, an unknown curve, a refused RSA size.
            rv!(
                CKR_TEMPLATE_INCOMPLETE,
                C_GenerateKeyPair(
                    h,
                    &mut pair_gen,
                    t.as_mut_ptr(),
                    0,
                    t.as_mut_ptr(),
                    0,
                    &mut pubh,
                    &mut privh
                )
            );
            // OID 1.2.3.4, no curve of ours.
            let mut odd = [0x06, 0x03, 0x2a, 0x03, 0x04];
            let mut tc = [attr_bytes(CKA_EC_PARAMS, &mut odd)];
            rv!(
                CKR_CURVE_NOT_SUPPORTED,
                C_GenerateKeyPair(
                    h,
                    &mut pair_gen,
                    tc.as_mut_ptr(),
                    1,
                    t.as_mut_ptr(),
                    0,
                    &mut pubh,
                    &mut privh
                )
            );
            // Ed448 (1.3.101.113) is a well-formed Edwards curve this token does not offer.
            let mut ed448 = [0x06, 0x03, 0x2b, 0x65, 0x71];
            let mut te = [attr_bytes(CKA_EC_PARAMS, &mut ed448)];
            let mut ed_gen = mech(CKM_EC_EDWARDS_KEY_PAIR_GEN);
            rv!(
                CKR_CURVE_NOT_SUPPORTED,
                C_GenerateKeyPair(
                    h,
                    &mut ed_gen,
                    te.as_mut_ptr(),
                    1,
                    t.as_mut_ptr(),
                    0,
                    &mut pubh,
                    &mut privh
                )
            );
            // Bytes that are no curve name at all.
            let mut junk = [0x30, 0x01];
            let mut tj = [attr_bytes(CKA_EC_PARAMS, &mut junk)];
            rv!(
                CKR_ATTRIBUTE_VALUE_INVALID,
                C_GenerateKeyPair(
                    h,
                    &mut pair_gen,
                    tj.as_mut_ptr(),
                    1,
                    t.as_mut_ptr(),
                    0,
                    &mut pubh,
                    &mut privh
                )
            );
            let mut rsa_gen = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
            let mut bits: CK_ULONG = 1024;
            let mut tb = [attr(CKA_MODULUS_BITS, &mut bits)];
            rv!(
                CKR_KEY_SIZE_RANGE,
                C_GenerateKeyPair(
                    h,
                    &mut rsa_gen,
                    tb.as_mut_ptr(),
                    1,
                    t.as_mut_ptr(),
                    0,
                    &mut pubh,
                    &mut privh
                )
            );

            // Wrap and unwrap.
            let kek = aes_with(h, &[CKA_WRAP, CKA_UNWRAP], &[]);
            let no_wrap = aes_with(h, &[CKA_ENCRYPT], &[]);
            let stuck = aes_with(h, &[CKA_ENCRYPT], &[(CKA_EXTRACTABLE, false)]);
            let free = aes_with(h, &[CKA_ENCRYPT], &[(CKA_EXTRACTABLE, true)]);
            let mut kw = mech(CKM_AES_KEY_WRAP);
            let mut out = [0u8; 64];
            let mut n: CK_ULONG = 64;
            rv!(
                CKR_WRAPPING_KEY_HANDLE_INVALID,
                C_WrapKey(h, &mut kw, 0xdead, free, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_KEY_HANDLE_INVALID,
                C_WrapKey(h, &mut kw, kek, 0xdead, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                C_WrapKey(h, &mut kw, no_wrap, free, out.as_mut_ptr(), &mut n)
            );
            rv!(
                CKR_KEY_UNEXTRACTABLE,
                C_WrapKey(h, &mut kw, kek, stuck, out.as_mut_ptr(), &mut n)
            );
            let (ec_pub, _) = ec_pair(h, false);
            rv!(
                CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
                C_WrapKey(h, &mut kw, ec_pub, free, out.as_mut_ptr(), &mut n)
            );
            let mut short: CK_ULONG = 8;
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_WrapKey(h, &mut kw, kek, free, out.as_mut_ptr(), &mut short)
            );
            assert_eq!(short, 40);
            ok(c!(C_WrapKey(
                h,
                &mut kw,
                kek,
                free,
                out.as_mut_ptr(),
                &mut n
            )));
            let mut class: CK_OBJECT_CLASS = CKO_SECRET_KEY;
            let mut kt: CK_KEY_TYPE = CKK_AES;
            let mut ut = [attr(CKA_CLASS, &mut class), attr(CKA_KEY_TYPE, &mut kt)];
            rv!(
                CKR_UNWRAPPING_KEY_HANDLE_INVALID,
                C_UnwrapKey(
                    h,
                    &mut kw,
                    0xdead,
                    out.as_mut_ptr(),
                    n,
                    ut.as_mut_ptr(),
                    2,
                    &mut k
                )
            );
            rv!(
                CKR_WRAPPED_KEY_LEN_RANGE,
                C_UnwrapKey(
                    h,
                    &mut kw,
                    kek,
                    out.as_mut_ptr(),
                    39,
                    ut.as_mut_ptr(),
                    2,
                    &mut k
                )
            );
            let mut tampered = out;
            tampered[3] ^= 1;
            rv!(
                CKR_WRAPPED_KEY_INVALID,
                C_UnwrapKey(
                    h,
                    &mut kw,
                    kek,
                    tampered.as_mut_ptr(),
                    n,
                    ut.as_mut_ptr(),
                    2,
                    &mut k
                )
            );
            let mut no: CK_BBOOL = CK_FALSE;
            let mut readable = [
                attr(CKA_CLASS, &mut class),
                attr(CKA_KEY_TYPE, &mut kt),
                attr(CKA_SENSITIVE, &mut no),
            ];
            rv!(
                CKR_TEMPLATE_INCONSISTENT,
                C_UnwrapKey(
                    h,
                    &mut kw,
                    kek,
                    out.as_mut_ptr(),
                    n,
                    readable.as_mut_ptr(),
                    3,
                    &mut k
                )
            );
            rv!(
                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
                C_UnwrapKey(
                    h,
                    &mut kw,
                    ec_pub,
                    out.as_mut_ptr(),
                    n,
                    ut.as_mut_ptr(),
                    2,
                    &mut k
                )
            );

            // Derive: ECDH needs its parameters, and an EC base key.
            let mut ecdh = mech(CKM_ECDH1_DERIVE);
            let mut point = [4u8; 65];
            let mut ecdh_params = CK_ECDH1_DERIVE_PARAMS {
                kdf: CKD_NULL,
                ulSharedDataLen: 0,
                pSharedData: null_mut(),
                ulPublicDataLen: 65,
                pPublicData: point.as_mut_ptr(),
            };
            let mut ecdh_with = CK_MECHANISM {
                mechanism: CKM_ECDH1_DERIVE,
                pParameter: (&mut ecdh_params as *mut CK_ECDH1_DERIVE_PARAMS).cast(),
                ulParameterLen: size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
            };
            rv!(
                CKR_MECHANISM_PARAM_INVALID,
                C_DeriveKey(h, &mut ecdh, ec_pub, ut.as_mut_ptr(), 2, &mut k)
            );
            rv!(
                CKR_KEY_HANDLE_INVALID,
                C_DeriveKey(h, &mut ecdh_with, 0xdead, ut.as_mut_ptr(), 2, &mut k)
            );

            // Random: a null buffer with a length is bad; an empty request is fine.
            rv!(CKR_ARGUMENTS_BAD, C_GenerateRandom(h, null_mut(), 16));
            ok(c!(C_GenerateRandom(h, null_mut(), 0)));
            rv!(CKR_ARGUMENTS_BAD, C_SeedRandom(h, null_mut(), 16));
            // A seed is accepted (mixed into a reseed, locally or in the daemon), and random
            // bytes keep coming, different ones each call.
            let mut seed = [0x42u8; 32];
            ok(c!(C_SeedRandom(h, seed.as_mut_ptr(), 32)));
            let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
            ok(c!(C_GenerateRandom(h, a.as_mut_ptr(), 32)));
            ok(c!(C_GenerateRandom(h, b.as_mut_ptr(), 32)));
            assert_ne!(a, b);
            assert_ne!(a, [0u8; 32]);
        },
    );
}

#[test]
fn message_functions_refuse_what_the_spec_says() {
    both(
        "conformance::message_functions_refuse_what_the_spec_says",
        "",
        || {
            let h = user_session();
            let aes = aes_with(h, &[CKA_ENCRYPT, CKA_DECRYPT], &[]);
            let (ec_pub, ec_priv) = ec_pair(h, false);
            let mut cbc = mech(CKM_AES_CBC);
            let mut gcm = mech(CKM_AES_GCM);
            rv!(
                CKR_MECHANISM_INVALID,
                C_MessageEncryptInit(h, &mut cbc, aes)
            );
            rv!(
                CKR_KEY_TYPE_INCONSISTENT,
                C_MessageEncryptInit(h, &mut gcm, ec_pub)
            );
            let mut data = [0u8; 32];
            let mut out = [0u8; 48];
            let mut n: CK_ULONG = 48;
            let v = null_mut();
            let mut iv = [0u8; 12];
            let mut tag = [0u8; 16];
            let mut p = CK_GCM_MESSAGE_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvFixedBits: 0,
                ivGenerator: CKG_GENERATE_RANDOM,
                pTag: tag.as_mut_ptr(),
                ulTagBits: 128,
            };
            let pp: *mut std::ffi::c_void = (&mut p as *mut CK_GCM_MESSAGE_PARAMS).cast();
            let size = size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_EncryptMessage(
                    h,
                    pp,
                    size,
                    data.as_mut_ptr(),
                    0,
                    data.as_mut_ptr(),
                    32,
                    out.as_mut_ptr(),
                    &mut n
                )
            );
            rv!(CKR_OPERATION_NOT_INITIALIZED, C_MessageEncryptFinal(h));
            rv!(CKR_OPERATION_NOT_INITIALIZED, C_MessageDecryptFinal(h));
            rv!(CKR_OPERATION_NOT_INITIALIZED, C_MessageSignFinal(h));
            rv!(CKR_OPERATION_NOT_INITIALIZED, C_MessageVerifyFinal(h));
            ok(c!(C_MessageEncryptInit(h, &mut gcm, aes)));
            rv!(CKR_OPERATION_ACTIVE, C_MessageEncryptInit(h, &mut gcm, aes));
            // Parameters of the wrong size, and a caller-chosen IV (the module must choose).
            rv!(
                CKR_MECHANISM_PARAM_INVALID,
                C_EncryptMessage(
                    h,
                    pp,
                    3,
                    data.as_mut_ptr(),
                    0,
                    data.as_mut_ptr(),
                    32,
                    out.as_mut_ptr(),
                    &mut n
                )
            );
            let mut fixed_iv = p;
            fixed_iv.ivGenerator = CKG_NO_GENERATE;
            let pp: *mut std::ffi::c_void = (&mut fixed_iv as *mut CK_GCM_MESSAGE_PARAMS).cast();
            rv!(
                CKR_MECHANISM_PARAM_INVALID,
                C_EncryptMessage(
                    h,
                    pp,
                    size,
                    data.as_mut_ptr(),
                    0,
                    data.as_mut_ptr(),
                    32,
                    out.as_mut_ptr(),
                    &mut n
                )
            );
            ok(c!(C_MessageEncryptFinal(h)));

            let mut ecdsa = mech(CKM_ECDSA_SHA256);
            rv!(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                C_MessageSignInit(h, &mut ecdsa, ec_pub)
            );
            ok(c!(C_MessageSignInit(h, &mut ecdsa, ec_priv)));
            rv!(
                CKR_OPERATION_ACTIVE,
                C_MessageSignInit(h, &mut ecdsa, ec_priv)
            );
            let mut sig = [0u8; 64];
            let mut sn: CK_ULONG = 2;
            rv!(
                CKR_BUFFER_TOO_SMALL,
                C_SignMessage(h, v, 0, data.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut sn)
            );
            assert_eq!(sn, 64);
            rv!(
                CKR_OPERATION_NOT_INITIALIZED,
                C_SignMessageNext(h, v, 0, data.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut sn)
            );
            ok(c!(C_MessageSignFinal(h)));
            ok(c!(C_MessageVerifyInit(h, &mut ecdsa, ec_pub)));
            rv!(
                CKR_SIGNATURE_INVALID,
                C_VerifyMessage(h, v, 0, data.as_mut_ptr(), 32, sig.as_mut_ptr(), 64)
            );
            ok(c!(C_MessageVerifyFinal(h)));
        },
    );
}
