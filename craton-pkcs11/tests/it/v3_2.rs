//! The PKCS#11 3.2 functions through the ABI: the ML-KEM KEM, verification with the
//! signature first, AES-GCM authenticated wrapping, validation flags, the asynchronous calls
//! of a module that runs nothing asynchronously, and the null-mechanism form of `C_*Init`.

use crate::*;
use craton_hsm::ffi::crypt::*;
use craton_hsm::ffi::digest::*;
use craton_hsm::ffi::keys::*;
use craton_hsm::ffi::sign::*;
use cryptoki_sys::*;
use std::ptr::null_mut;

fn kem_pair(h: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut set: CK_ULONG = CKP_ML_KEM_768;
    let mut public = [attr(CKA_PARAMETER_SET, &mut set)];
    let mut m = mech(CKM_ML_KEM_KEY_PAIR_GEN);
    let (mut ek, mut dk) = (0, 0);
    ok(c!(C_GenerateKeyPair(
        h,
        &mut m,
        public.as_mut_ptr(),
        1,
        null_mut(),
        0,
        &mut ek,
        &mut dk
    )));
    (ek, dk)
}

/// A fixed block encrypted under `key` with AES-ECB: equal for equal keys.
fn fingerprint(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> [u8; 16] {
    let mut ecb = mech(CKM_AES_ECB);
    ok(c!(C_EncryptInit(h, &mut ecb, key)));
    let mut block = [0x42u8; 16];
    let mut out = [0u8; 16];
    let mut n: CK_ULONG = 16;
    ok(c!(C_Encrypt(
        h,
        block.as_mut_ptr(),
        16,
        out.as_mut_ptr(),
        &mut n
    )));
    out
}

fn count_objects(h: CK_SESSION_HANDLE) -> usize {
    find(h, &mut []).len()
}

#[test]
fn ml_kem_encapsulates_and_decapsulates_to_the_same_aes_key() {
    both(
        "v3_2::ml_kem_encapsulates_and_decapsulates_to_the_same_aes_key",
        "",
        || {
            let h = user_session();
            let (ek, dk) = kem_pair(h);
            let mut class = CKO_SECRET_KEY;
            let mut key_type = CKK_AES;
            let mut yes: CK_BBOOL = CK_TRUE;
            let mut t = [
                attr(CKA_CLASS, &mut class),
                attr(CKA_KEY_TYPE, &mut key_type),
                attr(CKA_ENCRYPT, &mut yes),
            ];
            let tp = t.as_mut_ptr();
            let mut kem = mech(CKM_ML_KEM);
            let (mut k1, mut k2) = (0, 0);
            // The length query answers 1088 (ML-KEM-768) and makes no key.
            let before = count_objects(h);
            let mut n: CK_ULONG = 0;
            ok(c!(C_EncapsulateKey(
                h,
                &mut kem,
                ek,
                tp,
                3,
                null_mut(),
                &mut n,
                &mut k1
            )));
            assert_eq!(n, 1088);
            let mut ct = vec![0u8; 1088];
            let mut short: CK_ULONG = 100;
            assert_eq!(
                c!(C_EncapsulateKey(
                    h,
                    &mut kem,
                    ek,
                    tp,
                    3,
                    ct.as_mut_ptr(),
                    &mut short,
                    &mut k1
                )),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(short, 1088);
            assert_eq!(
                count_objects(h),
                before,
                "no key from a query or short buffer"
            );
            ok(c!(C_EncapsulateKey(
                h,
                &mut kem,
                ek,
                tp,
                3,
                ct.as_mut_ptr(),
                &mut n,
                &mut k1
            )));
            assert_ne!(k1, 0);
            ok(c!(C_DecapsulateKey(
                h,
                &mut kem,
                dk,
                tp,
                3,
                ct.as_mut_ptr(),
                n,
                &mut k2
            )));
            assert_eq!(fingerprint(h, k1), fingerprint(h, k2));
            assert_eq!(read_attr(h, k2, CKA_ALWAYS_SENSITIVE), [CK_FALSE]);

            // Refusals: wrong length, wrong key, wrong mechanism, no handle pointer.
            let mut k3 = 0;
            assert_eq!(
                c!(C_DecapsulateKey(
                    h,
                    &mut kem,
                    dk,
                    tp,
                    3,
                    ct.as_mut_ptr(),
                    n - 1,
                    &mut k3
                )),
                CKR_WRAPPED_KEY_LEN_RANGE
            );
            assert_eq!(
                c!(C_DecapsulateKey(
                    h,
                    &mut kem,
                    ek,
                    tp,
                    3,
                    ct.as_mut_ptr(),
                    n,
                    &mut k3
                )),
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                "the public key cannot decapsulate"
            );
            let mut rsa = mech(CKM_RSA_PKCS);
            assert_eq!(
                c!(C_EncapsulateKey(
                    h,
                    &mut rsa,
                    ek,
                    tp,
                    3,
                    ct.as_mut_ptr(),
                    &mut n,
                    &mut k3
                )),
                CKR_MECHANISM_INVALID
            );
            assert_eq!(
                c!(C_EncapsulateKey(
                    h,
                    &mut kem,
                    ek,
                    tp,
                    3,
                    ct.as_mut_ptr(),
                    &mut n,
                    null_mut()
                )),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(k3, 0);
        },
    );
}

fn ecdsa_signature(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, data: &mut [u8]) -> Vec<u8> {
    let mut m = mech(CKM_ECDSA_SHA256);
    ok(c!(C_SignInit(h, &mut m, key)));
    let mut sig = vec![0u8; 64];
    let mut n = 64;
    ok(c!(C_Sign(
        h,
        data.as_mut_ptr(),
        data.len() as CK_ULONG,
        sig.as_mut_ptr(),
        &mut n
    )));
    sig
}

#[test]
fn verify_signature_takes_the_signature_first() {
    both(
        "v3_2::verify_signature_takes_the_signature_first",
        "",
        || {
            let h = user_session();
            let (public, private) = ec_pair(h, false);
            let mut data = *b"message in two parts";
            let mut sig = ecdsa_signature(h, private, &mut data);
            let mut m = mech(CKM_ECDSA_SHA256);
            let (sp, dp) = (sig.as_mut_ptr(), data.as_mut_ptr());

            ok(c!(C_VerifySignatureInit(h, &mut m, public, sp, 64)));
            ok(c!(C_VerifySignature(h, dp, 20)));

            ok(c!(C_VerifySignatureInit(h, &mut m, public, sp, 64)));
            ok(c!(C_VerifySignatureUpdate(h, dp, 8)));
            // SAFETY: 8 < 20, inside `data`.
            ok(c!(C_VerifySignatureUpdate(h, unsafe { dp.add(8) }, 12)));
            ok(c!(C_VerifySignatureFinal(h)));
            assert_eq!(c!(C_VerifySignatureFinal(h)), CKR_OPERATION_NOT_INITIALIZED);

            data[0] ^= 1;
            let dp = data.as_mut_ptr();
            ok(c!(C_VerifySignatureInit(h, &mut m, public, sp, 64)));
            assert_eq!(c!(C_VerifySignature(h, dp, 20)), CKR_SIGNATURE_INVALID);

            // The 3.0 calls do not finish a 3.2 verification, and the null mechanism ends it.
            ok(c!(C_VerifySignatureInit(h, &mut m, public, sp, 64)));
            assert_eq!(c!(C_VerifyInit(h, &mut m, public)), CKR_OPERATION_ACTIVE);
            assert_eq!(c!(C_VerifyFinal(h, sp, 64)), CKR_OPERATION_NOT_INITIALIZED);
            ok(c!(C_VerifySignatureInit(h, &mut m, public, sp, 64)));
            ok(c!(C_VerifySignatureInit(h, null_mut(), 0, null_mut(), 0)));
            assert_eq!(
                c!(C_VerifySignature(h, dp, 20)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // A key that may not verify, and a null signature with a length.
            assert_eq!(
                c!(C_VerifySignatureInit(h, &mut m, private, sp, 64)),
                CKR_KEY_FUNCTION_NOT_PERMITTED
            );
            assert_eq!(
                c!(C_VerifySignatureInit(h, &mut m, public, null_mut(), 64)),
                CKR_ARGUMENTS_BAD
            );
        },
    );
}

#[test]
fn authenticated_wrapping_round_trips_with_a_module_iv_and_checks_the_aad() {
    both(
        "v3_2::authenticated_wrapping_round_trips_with_a_module_iv_and_checks_the_aad",
        "",
        || {
            let h = user_session();
            let kek = aes_with(h, &[CKA_WRAP, CKA_UNWRAP], &[]);
            let target = aes_with(h, &[CKA_EXTRACTABLE, CKA_ENCRYPT], &[]);
            let mut iv = [0u8; 12];
            let mut tag = [0u8; 16];
            let mut params = CK_GCM_MESSAGE_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvFixedBits: 0,
                ivGenerator: CKG_GENERATE_RANDOM,
                pTag: tag.as_mut_ptr(),
                ulTagBits: 128,
            };
            let mut m = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast(),
                ulParameterLen: size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG,
            };
            let mut aad = *b"key 42";
            let mut n: CK_ULONG = 0;
            ok(c!(C_WrapKeyAuthenticated(
                h,
                &mut m,
                kek,
                target,
                aad.as_mut_ptr(),
                6,
                null_mut(),
                &mut n
            )));
            assert_eq!(
                n, 32,
                "the wrapped key alone; the tag goes to the parameters"
            );
            let mut wrapped = [0u8; 32];
            ok(c!(C_WrapKeyAuthenticated(
                h,
                &mut m,
                kek,
                target,
                aad.as_mut_ptr(),
                6,
                wrapped.as_mut_ptr(),
                &mut n
            )));
            assert_ne!(iv, [0; 12], "the module wrote its IV");
            assert_ne!(tag, [0; 16], "and the tag");

            let mut class = CKO_SECRET_KEY;
            let mut key_type = CKK_AES;
            let mut yes: CK_BBOOL = CK_TRUE;
            let mut t = [
                attr(CKA_CLASS, &mut class),
                attr(CKA_KEY_TYPE, &mut key_type),
                attr(CKA_ENCRYPT, &mut yes),
            ];
            let mut restored = 0;
            let mut other = *b"key 43";
            assert_eq!(
                c!(C_UnwrapKeyAuthenticated(
                    h,
                    &mut m,
                    kek,
                    wrapped.as_mut_ptr(),
                    32,
                    t.as_mut_ptr(),
                    3,
                    other.as_mut_ptr(),
                    6,
                    &mut restored
                )),
                CKR_WRAPPED_KEY_INVALID
            );
            assert_eq!(restored, 0);
            ok(c!(C_UnwrapKeyAuthenticated(
                h,
                &mut m,
                kek,
                wrapped.as_mut_ptr(),
                32,
                t.as_mut_ptr(),
                3,
                aad.as_mut_ptr(),
                6,
                &mut restored
            )));
            assert_eq!(fingerprint(h, restored), fingerprint(h, target));

            // A caller IV could repeat under the wrapping key: refused.
            params.ivGenerator = CKG_NO_GENERATE;
            m.pParameter = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            assert_eq!(
                c!(C_WrapKeyAuthenticated(
                    h,
                    &mut m,
                    kek,
                    target,
                    null_mut(),
                    0,
                    wrapped.as_mut_ptr(),
                    &mut n
                )),
                CKR_MECHANISM_PARAM_INVALID
            );
            // Only AES-GCM is an authenticated wrap.
            let mut kw = mech(CKM_AES_KEY_WRAP);
            assert_eq!(
                c!(C_WrapKeyAuthenticated(
                    h,
                    &mut kw,
                    kek,
                    target,
                    null_mut(),
                    0,
                    wrapped.as_mut_ptr(),
                    &mut n
                )),
                CKR_MECHANISM_INVALID
            );
        },
    );
}

#[test]
fn validation_flags_and_async_calls_answer_for_a_synchronous_module() {
    both(
        "v3_2::validation_flags_and_async_calls_answer_for_a_synchronous_module",
        "",
        || {
            let h = user_session();
            let mut flags: CK_FLAGS = 0xff;
            ok(c!(C_GetSessionValidationFlags(
                h,
                CKS_LAST_VALIDATION_OK,
                &mut flags
            )));
            assert_eq!(flags, 0, "no validation object, so no validation bit");
            assert_eq!(
                c!(C_GetSessionValidationFlags(h, 99, &mut flags)),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                c!(C_GetSessionValidationFlags(
                    h,
                    CKS_LAST_VALIDATION_OK,
                    null_mut()
                )),
                CKR_ARGUMENTS_BAD
            );

            let mut s = 0;
            assert_eq!(
                c!(C_OpenSession(
                    0,
                    CKF_SERIAL_SESSION | CKF_ASYNC_SESSION,
                    null_mut(),
                    None,
                    &mut s
                )),
                CKR_SESSION_ASYNC_NOT_SUPPORTED
            );
            let mut info = CK_TOKEN_INFO::default();
            ok(c!(C_GetTokenInfo(0, &mut info)));
            assert_eq!(info.flags & CKF_ASYNC_SESSION_SUPPORTED, 0);

            let mut name = *b"C_SignFinal\0";
            let mut result = CK_ASYNC_DATA::default();
            let mut id: CK_ULONG = 0;
            let mut buf = [0u8; 16];
            assert_eq!(
                c!(C_AsyncComplete(h, name.as_mut_ptr(), &mut result)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_eq!(
                c!(C_AsyncGetID(h, name.as_mut_ptr(), &mut id)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_eq!(
                c!(C_AsyncJoin(h, name.as_mut_ptr(), 7, buf.as_mut_ptr(), 16)),
                CKR_SAVED_STATE_INVALID
            );
            assert_eq!(
                c!(C_AsyncComplete(h, null_mut(), &mut result)),
                CKR_ARGUMENTS_BAD
            );
        },
    );
}

#[test]
fn a_null_mechanism_ends_the_running_operation() {
    both(
        "v3_2::a_null_mechanism_ends_the_running_operation",
        "",
        || {
            let h = user_session();
            let key = aes_with(h, &[CKA_ENCRYPT], &[]);
            let mut ecb = mech(CKM_AES_ECB);
            ok(c!(C_EncryptInit(h, &mut ecb, key)));
            ok(c!(C_EncryptInit(h, null_mut(), 0)));
            let mut block = [0u8; 16];
            let mut n: CK_ULONG = 16;
            assert_eq!(
                c!(C_Encrypt(
                    h,
                    block.as_mut_ptr(),
                    16,
                    block.as_mut_ptr(),
                    &mut n
                )),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // And a new one may start at once.
            ok(c!(C_EncryptInit(h, &mut ecb, key)));

            let mut sha = mech(CKM_SHA256);
            ok(c!(C_DigestInit(h, &mut sha)));
            ok(c!(C_DigestInit(h, null_mut())));
            assert_eq!(
                c!(C_DigestUpdate(h, block.as_mut_ptr(), 16)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            let (_, private) = ec_pair(h, false);
            let mut ecdsa = mech(CKM_ECDSA);
            ok(c!(C_SignInit(h, &mut ecdsa, private)));
            ok(c!(C_SignInit(h, null_mut(), 0)));
            ok(c!(C_SignInit(h, &mut ecdsa, private)));
        },
    );
}
