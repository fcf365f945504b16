//! Behaviour real PKCS#11 clients depend on and software tokens commonly get wrong.

use crate::*;
use craton_hsm::ffi::keys::*;
use craton_hsm::ffi::sign::*;
use cryptoki_sys::*;

#[test]
fn read_only_sessions_may_create_session_objects_only() {
    both(
        "client_expectations::read_only_sessions_may_create_session_objects_only",
        "",
        || {
            let rw = user_session();
            let ro = open(0, false);
            let (_pubh, privh) = ec_pair(ro, false);
            assert_ne!(privh, 0);
            // Token objects need a read/write session.
            let mut params = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
            let mut yes: CK_BBOOL = CK_TRUE;
            let mut public = [
                attr_bytes(CKA_EC_PARAMS, &mut params),
                attr(CKA_TOKEN, &mut yes),
            ];
            let mut m = mech(CKM_EC_KEY_PAIR_GEN);
            let (mut a, mut b) = (0, 0);
            assert_eq!(
                c!(C_GenerateKeyPair(
                    ro,
                    &mut m,
                    public.as_mut_ptr(),
                    2,
                    std::ptr::null_mut(),
                    0,
                    &mut a,
                    &mut b
                )),
                CKR_SESSION_READ_ONLY
            );
            ok(c!(C_CloseSession(rw)));
        },
    );
}

#[test]
fn init_token_with_an_open_session_is_refused() {
    both(
        "client_expectations::init_token_with_an_open_session_is_refused",
        "",
        || {
            let h = user_session();
            let mut so = SO_PIN.to_vec();
            let mut label = [b' '; 32];
            assert_eq!(
                c!(C_InitToken(
                    0,
                    so.as_mut_ptr(),
                    so.len() as CK_ULONG,
                    label.as_mut_ptr()
                )),
                CKR_SESSION_EXISTS
            );
            ok(c!(C_CloseSession(h)));
            ok(c!(C_InitToken(
                0,
                so.as_mut_ptr(),
                so.len() as CK_ULONG,
                label.as_mut_ptr(),
            )));
        },
    );
}

#[test]
fn ecdsa_signatures_are_raw_r_s_and_points_are_der_octet_strings() {
    both(
        "client_expectations::ecdsa_signatures_are_raw_r_s_and_points_are_der_octet_strings",
        "",
        || {
            let h = user_session();
            let (pubh, privh) = ec_pair(h, false);
            let point = read_attr(h, pubh, CKA_EC_POINT);
            assert_eq!(
                &point[..3],
                &[0x04, 0x41, 0x04],
                "DER OCTET STRING of 04‖X‖Y"
            );
            assert_eq!(point.len(), 67);
            let mut m = mech(CKM_ECDSA);
            ok(c!(C_SignInit(h, &mut m, privh)));
            let mut digest = [0x5au8; 32];
            let mut sig = [0u8; 128];
            let mut len = sig.len() as CK_ULONG;
            ok(c!(C_Sign(
                h,
                digest.as_mut_ptr(),
                32,
                sig.as_mut_ptr(),
                &mut len,
            )));
            assert_eq!(len, 64, "r‖s, 32 bytes each");
            ok(c!(C_VerifyInit(h, &mut m, pubh)));
            ok(c!(C_Verify(
                h,
                digest.as_mut_ptr(),
                32,
                sig.as_mut_ptr(),
                len
            )));
            sig[10] ^= 1;
            ok(c!(C_VerifyInit(h, &mut m, pubh)));
            assert_eq!(
                c!(C_Verify(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), len)),
                CKR_SIGNATURE_INVALID
            );
        },
    );
}

#[test]
fn public_token_objects_are_visible_without_login() {
    both(
        "client_expectations::public_token_objects_are_visible_without_login",
        "",
        || {
            let h = user_session();
            ec_pair(h, true);
            ok(c!(C_Logout(h)));
            let mut class = CKO_PUBLIC_KEY;
            assert_eq!(find(h, &mut [attr(CKA_CLASS, &mut class)]).len(), 1);
            let mut private = CKO_PRIVATE_KEY;
            assert!(find(h, &mut [attr(CKA_CLASS, &mut private)]).is_empty());
        },
    );
}

#[test]
fn the_mechanism_list_is_truthful() {
    both(
        "client_expectations::the_mechanism_list_is_truthful",
        "",
        || {
            ok(c!(C_Initialize(std::ptr::null_mut())));
            let mut n = 0;
            ok(c!(C_GetMechanismList(0, std::ptr::null_mut(), &mut n)));
            let mut list = vec![0; n as usize];
            ok(c!(C_GetMechanismList(0, list.as_mut_ptr(), &mut n)));
            for m in [
                CKM_RSA_PKCS,
                CKM_RSA_X_509,
                CKM_RSA_PKCS_OAEP,
                CKM_ECDSA,
                CKM_EDDSA,
                CKM_AES_GCM,
                CKM_ML_KEM,
            ] {
                assert!(list.contains(&m), "{m:#x} missing");
            }
            for m in &list {
                let mut info = CK_MECHANISM_INFO::default();
                ok(c!(C_GetMechanismInfo(0, *m, &mut info)));
                assert_ne!(info.flags, 0, "{m:#x} has no flags");
                assert!(info.ulMinKeySize <= info.ulMaxKeySize);
            }
            let mut info = CK_MECHANISM_INFO::default();
            ok(c!(C_GetMechanismInfo(0, CKM_ECDSA, &mut info)));
            assert_ne!(info.flags & CKF_EC_NAMEDCURVE, 0);
            assert_eq!(info.flags & CKF_ENCRYPT, 0);
            // The KEM is offered through the 3.2 functions, and says so in its flags.
            ok(c!(C_GetMechanismInfo(0, CKM_ML_KEM, &mut info)));
            assert_eq!(info.flags, CKF_ENCAPSULATE | CKF_DECAPSULATE);
            assert_eq!(
                c!(C_GetMechanismInfo(0, 0x7fff_fff0, &mut info)),
                CKR_MECHANISM_INVALID
            );
        },
    );
}
