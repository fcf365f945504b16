//! The general rules of the C ABI: initialisation arguments, the life cycle, interfaces,
//! null pointers and the two-call buffer convention.

use crate::{isolated, ok, open};
use craton_hsm::ffi::general::*;
use craton_hsm::ffi::keys::C_GenerateRandom;
use craton_hsm::ffi::session::*;
use craton_hsm::ffi::slot::*;
use cryptoki_sys::*;
use std::ffi::c_void;

#[test]
fn calls_before_c_initialize_are_refused_but_the_table_is_available() {
    isolated(
        "abi_rules::calls_before_c_initialize_are_refused_but_the_table_is_available",
        "",
        || {
            let mut info = CK_INFO::default();
            assert_eq!(c!(C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
            let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
            ok(c!(C_GetFunctionList(&mut list)));
            assert!(std::ptr::eq(list, &FUNCTIONS_2_40));
            assert_eq!(FUNCTIONS_2_40.version.major, 2);
            assert_eq!(
                c!(C_GetFunctionList(std::ptr::null_mut())),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                c!(C_Finalize(std::ptr::null_mut())),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
        },
    );
}

extern "C" fn create_mutex(_: *mut *mut c_void) -> CK_RV {
    CKR_OK
}
extern "C" fn mutex_op(_: *mut c_void) -> CK_RV {
    CKR_OK
}

#[test]
fn initialize_arguments_are_checked() {
    isolated("abi_rules::initialize_arguments_are_checked", "", || {
        let mut reserved = 0u8;
        let mut args = CK_C_INITIALIZE_ARGS {
            pReserved: (&mut reserved as *mut u8).cast(),
            ..Default::default()
        };
        assert_eq!(
            c!(C_Initialize(
                (&mut args as *mut CK_C_INITIALIZE_ARGS).cast()
            )),
            CKR_ARGUMENTS_BAD
        );
        let mut partial = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create_mutex),
            LockMutex: Some(mutex_op),
            ..Default::default()
        };
        assert_eq!(
            c!(C_Initialize(
                (&mut partial as *mut CK_C_INITIALIZE_ARGS).cast()
            )),
            CKR_ARGUMENTS_BAD
        );
        let mut full = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create_mutex),
            DestroyMutex: Some(mutex_op),
            LockMutex: Some(mutex_op),
            UnlockMutex: Some(mutex_op),
            flags: CKF_OS_LOCKING_OK,
            pReserved: std::ptr::null_mut(),
        };
        ok(c!(C_Initialize(
            (&mut full as *mut CK_C_INITIALIZE_ARGS).cast(),
        )));
        assert_eq!(
            c!(C_Initialize(std::ptr::null_mut())),
            CKR_CRYPTOKI_ALREADY_INITIALIZED
        );
        let mut junk = 0u8;
        assert_eq!(
            c!(C_Finalize((&mut junk as *mut u8).cast())),
            CKR_ARGUMENTS_BAD
        );
        ok(c!(C_Finalize(std::ptr::null_mut())));
        assert_eq!(
            c!(C_Finalize(std::ptr::null_mut())),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
    });
}

#[test]
fn an_application_that_forbids_threads_gets_a_module_that_starts_none() {
    // p11-kit (and so GnuTLS's p11tool) initialises every module with exactly these flags.
    isolated(
        "abi_rules::an_application_that_forbids_threads_gets_a_module_that_starts_none",
        "",
        || {
            let threads = || std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
            let before = threads();
            let mut args = CK_C_INITIALIZE_ARGS {
                flags: CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK,
                ..Default::default()
            };
            ok(c!(C_Initialize(
                (&mut args as *mut CK_C_INITIALIZE_ARGS).cast(),
            )));
            assert_eq!(threads(), before, "the module started a thread");
            crate::init_token(0);
            let s = open(0, false);
            let mut pin = crate::USER_PIN.to_vec();
            ok(c!(C_Login(
                s,
                CKU_USER,
                pin.as_mut_ptr(),
                pin.len() as CK_ULONG
            )));
            let mut random = [0u8; 16];
            ok(c!(C_GenerateRandom(s, random.as_mut_ptr(), 16)));
            // Audit entries are still written (and synced) before each call returns.
            let log = std::fs::read_to_string(crate::audit_path()).unwrap();
            assert!(log.contains("\"event\":\"login\""), "{log}");
            assert_eq!(threads(), before, "the module started a thread");
            ok(c!(C_Finalize(std::ptr::null_mut())));
        },
    );
}

/// How many initialise/finalise cycles the repetition test runs (default 1000).
fn cycles() -> usize {
    std::env::var("CRATON_IT_INIT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn initialize_and_finalize_repeat_without_leaking() {
    isolated(
        "abi_rules::initialize_and_finalize_repeat_without_leaking",
        "",
        || {
            let threads = || {
                std::fs::read_dir("/proc/self/task")
                    .map(|d| d.count())
                    .unwrap_or(0)
            };
            let fds = || {
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count())
                    .unwrap_or(0)
            };
            ok(c!(C_Initialize(std::ptr::null_mut())));
            crate::init_token(0);
            ok(c!(C_Finalize(std::ptr::null_mut())));
            std::thread::sleep(std::time::Duration::from_millis(50));
            let (t0, f0) = (threads(), fds());
            for _ in 0..cycles() {
                ok(c!(C_Initialize(std::ptr::null_mut())));
                let h = open(0, false);
                ok(c!(C_CloseSession(h)));
                ok(c!(C_Finalize(std::ptr::null_mut())));
            }
            // The audit thread of the last engine exits within its flush interval.
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(threads() <= t0 + 1, "threads {t0} -> {}", threads());
            assert!(fds() <= f0 + 1, "file descriptors {f0} -> {}", fds());
        },
    );
}

#[test]
fn interfaces_are_found_by_name_and_version() {
    isolated(
        "abi_rules::interfaces_are_found_by_name_and_version",
        "",
        || {
            let mut n = 0;
            ok(c!(C_GetInterfaceList(std::ptr::null_mut(), &mut n)));
            assert_eq!(n, 3);
            let mut list = [CK_INTERFACE::default(); 3];
            let mut short = 1;
            assert_eq!(
                c!(C_GetInterfaceList(list.as_mut_ptr(), &mut short)),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(short, 3);
            ok(c!(C_GetInterfaceList(list.as_mut_ptr(), &mut n)));
            let table = interface_table();
            assert_eq!(list[0].pFunctionList, table[0].pFunctionList);
            assert!(std::ptr::eq(
                list[0].pFunctionList.cast_const(),
                (&FUNCTIONS_3_2 as *const CK_FUNCTION_LIST_3_2).cast()
            ));
            assert!(std::ptr::eq(
                list[1].pFunctionList.cast_const(),
                (&FUNCTIONS_3_0 as *const CK_FUNCTION_LIST_3_0).cast()
            ));
            // A 3.2 table is complete: clients take every entry as callable.
            let t = &FUNCTIONS_3_2;
            assert_eq!((t.version.major, t.version.minor), (3, 2));
            assert!(
                t.C_EncapsulateKey.is_some()
                    && t.C_DecapsulateKey.is_some()
                    && t.C_VerifySignatureInit.is_some()
                    && t.C_VerifySignature.is_some()
                    && t.C_VerifySignatureUpdate.is_some()
                    && t.C_VerifySignatureFinal.is_some()
                    && t.C_GetSessionValidationFlags.is_some()
                    && t.C_AsyncComplete.is_some()
                    && t.C_AsyncGetID.is_some()
                    && t.C_AsyncJoin.is_some()
                    && t.C_WrapKeyAuthenticated.is_some()
                    && t.C_UnwrapKeyAuthenticated.is_some()
                    && t.C_MessageVerifyFinal.is_some()
            );
            let mut found: *mut CK_INTERFACE = std::ptr::null_mut();
            ok(c!(C_GetInterface(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut found,
                0,
            )));
            // SAFETY: C_GetInterface returned a valid entry.
            let newest = unsafe { *found };
            assert_eq!(newest.pFunctionList, table[0].pFunctionList);
            // OpenSC's pkcs11-spy swaps its own table into the entry it was handed; that must
            // not crash, and the list stays as the module made it.
            // SAFETY: the entry is writable memory owned by the module.
            unsafe { (*found).pFunctionList = std::ptr::null_mut() };
            ok(c!(C_GetInterfaceList(list.as_mut_ptr(), &mut n)));
            assert_eq!(list[0].pFunctionList, table[0].pFunctionList);
            let mut name = *b"PKCS 11\0";
            let mut v240 = CK_VERSION {
                major: 2,
                minor: 40,
            };
            ok(c!(C_GetInterface(
                name.as_mut_ptr(),
                &mut v240,
                &mut found,
                0
            )));
            // SAFETY: C_GetInterface returned a valid entry.
            assert_eq!(unsafe { (*found).pFunctionList }, table[2].pFunctionList);
            let mut v30 = CK_VERSION { major: 3, minor: 0 };
            ok(c!(C_GetInterface(
                name.as_mut_ptr(),
                &mut v30,
                &mut found,
                0
            )));
            // SAFETY: C_GetInterface returned a valid entry.
            assert_eq!(unsafe { (*found).pFunctionList }, table[1].pFunctionList);
            let mut v99 = CK_VERSION { major: 9, minor: 9 };
            assert_eq!(
                c!(C_GetInterface(name.as_mut_ptr(), &mut v99, &mut found, 0)),
                CKR_ARGUMENTS_BAD
            );
            let mut other = *b"Vendor\0";
            assert_eq!(
                c!(C_GetInterface(
                    other.as_mut_ptr(),
                    std::ptr::null_mut(),
                    &mut found,
                    0
                )),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                c!(C_GetInterface(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut found,
                    CKF_INTERFACE_FORK_SAFE
                )),
                CKR_ARGUMENTS_BAD
            );
        },
    );
}

#[test]
fn null_pointers_bad_slots_and_short_buffers_get_their_codes() {
    isolated(
        "abi_rules::null_pointers_bad_slots_and_short_buffers_get_their_codes",
        "",
        || {
            ok(c!(C_Initialize(std::ptr::null_mut())));
            assert_eq!(c!(C_GetInfo(std::ptr::null_mut())), CKR_ARGUMENTS_BAD);
            assert_eq!(
                c!(C_GetSlotList(
                    CK_FALSE,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                )),
                CKR_ARGUMENTS_BAD
            );
            let mut n: CK_ULONG = 0;
            ok(c!(C_GetSlotList(CK_TRUE, std::ptr::null_mut(), &mut n)));
            assert_eq!(n, 2);
            let mut slots = [0 as CK_SLOT_ID; 2];
            let mut short: CK_ULONG = 1;
            assert_eq!(
                c!(C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut short)),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(short, 2);
            let mut info = CK_SLOT_INFO::default();
            assert_eq!(c!(C_GetSlotInfo(7, &mut info)), CKR_SLOT_ID_INVALID);
            let mut h = 0;
            assert_eq!(
                c!(C_OpenSession(
                    0,
                    CKF_RW_SESSION,
                    std::ptr::null_mut(),
                    None,
                    &mut h
                )),
                CKR_SESSION_PARALLEL_NOT_SUPPORTED
            );
            assert_eq!(
                c!(C_OpenSession(
                    0,
                    CKF_SERIAL_SESSION,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null_mut()
                )),
                CKR_ARGUMENTS_BAD
            );
            // A token never initialised cannot be used.
            assert_eq!(
                c!(C_OpenSession(
                    0,
                    CKF_SERIAL_SESSION,
                    std::ptr::null_mut(),
                    None,
                    &mut h
                )),
                CKR_TOKEN_NOT_RECOGNIZED
            );
            assert_eq!(c!(C_CloseSession(12345)), CKR_SESSION_HANDLE_INVALID);
            let mut no_event = 0;
            assert_eq!(
                c!(C_WaitForSlotEvent(
                    CKF_DONT_BLOCK,
                    &mut no_event,
                    std::ptr::null_mut()
                )),
                CKR_NO_EVENT
            );
        },
    );
}

#[test]
fn a_blocking_slot_event_wait_ends_with_c_finalize() {
    isolated(
        "abi_rules::a_blocking_slot_event_wait_ends_with_c_finalize",
        "",
        || {
            ok(c!(C_Initialize(std::ptr::null_mut())));
            let waiter = std::thread::spawn(|| {
                let mut slot = 0;
                c!(C_WaitForSlotEvent(0, &mut slot, std::ptr::null_mut()))
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(!waiter.is_finished(), "no slot event may occur");
            ok(c!(C_Finalize(std::ptr::null_mut())));
            assert_eq!(waiter.join().unwrap(), CKR_CRYPTOKI_NOT_INITIALIZED);
        },
    );
}

#[test]
fn remote_mode_without_its_client_files_never_falls_back_to_a_local_token() {
    isolated(
        "abi_rules::remote_mode_without_its_client_files_never_falls_back_to_a_local_token",
        "client.endpoint = \"https://127.0.0.1:5696\"\nclient.ca = \"/nonexistent/ca.pem\"\n\
         client.cert = \"/nonexistent/c.pem\"\nclient.key = \"/nonexistent/k.pem\"",
        || {
            // A configuration asking for the daemon must not silently run a local token.
            assert_eq!(c!(C_Initialize(std::ptr::null_mut())), CKR_FUNCTION_FAILED);
            let mut info = CK_INFO::default();
            assert_eq!(c!(C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
        },
    );
}
