//! Remote mode on its own terms: what happens when the daemon goes away or was never there,
//! and many application threads sharing one connection, with and without the module's own
//! runtime threads. (The conformance and crypto tests run in remote mode too, through
//! [`both`].) Each test runs its daemon inside its child process, so it can stop it.

use crate::*;
use craton_hsm::ffi::sign::*;
use std::time::{Duration, Instant};

/// Starts a daemon in this (child) process and points the module at it.
fn daemon_for_module(name: &str, timeout_secs: u64) -> (InProcessDaemon, PathBuf) {
    let dir = std::env::temp_dir().join(format!("craton-remote-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut daemon = daemon_in(&dir, "");
    daemon.client.timeout_secs = timeout_secs;
    let config = module_config(&dir, &daemon);
    // SAFETY: the child runs this one test on one thread; nothing reads the environment
    // concurrently.
    unsafe { std::env::set_var("CRATON_HSM_CONFIG", &config) };
    (daemon, dir)
}

fn sign_and_verify(h: CK_SESSION_HANDLE, public: CK_OBJECT_HANDLE, private: CK_OBJECT_HANDLE) {
    let mut m = mech(CKM_ECDSA_SHA256);
    let mut data = *b"remote data";
    let mut sig = [0u8; 64];
    let mut len = sig.len() as CK_ULONG;
    ok(c!(C_SignInit(h, &mut m, private)));
    ok(c!(C_Sign(
        h,
        data.as_mut_ptr(),
        data.len() as CK_ULONG,
        sig.as_mut_ptr(),
        &mut len
    )));
    assert_eq!(len, 64);
    ok(c!(C_VerifyInit(h, &mut m, public)));
    ok(c!(C_Verify(
        h,
        data.as_mut_ptr(),
        data.len() as CK_ULONG,
        sig.as_mut_ptr(),
        len
    )));
}

#[test]
fn a_daemon_that_goes_away_is_a_removed_device_not_a_hang() {
    isolated(
        "remote::a_daemon_that_goes_away_is_a_removed_device_not_a_hang",
        "",
        || {
            let (daemon, dir) = daemon_for_module("gone", 3);
            let h = user_session();
            let (public, private) = ec_pair(h, false);
            sign_and_verify(h, public, private);
            drop(daemon);
            let started = Instant::now();
            let mut info = CK_SESSION_INFO::default();
            let rv = c!(C_GetSessionInfo(h, &mut info));
            assert!(
                rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_ERROR,
                "a call to a stopped daemon gave {rv:#x}"
            );
            let mut m = mech(CKM_ECDSA_SHA256);
            assert_eq!(c!(C_SignInit(h, &mut m, private)), CKR_DEVICE_REMOVED);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "two calls to a stopped daemon took {:?}",
                started.elapsed()
            );
            ok(c!(C_Finalize(std::ptr::null_mut())));
            // Nobody listens there now: C_Initialize fails at once, with the reason on stderr.
            let started = Instant::now();
            assert_eq!(c!(C_Initialize(std::ptr::null_mut())), CKR_FUNCTION_FAILED);
            assert!(started.elapsed() < Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(&dir);
        },
    );
}

/// Eight threads, each with its own session, sign and verify through one connection.
fn threads_share_the_connection() {
    let h = {
        init_token(0);
        let h = open(0, true);
        let mut pin = USER_PIN.to_vec();
        ok(c!(C_Login(
            h,
            CKU_USER,
            pin.as_mut_ptr(),
            pin.len() as CK_ULONG
        )));
        h
    };
    let (public, private) = ec_pair(h, true);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(move || {
                let mine = open(0, false);
                for _ in 0..10 {
                    sign_and_verify(mine, public, private);
                }
                ok(c!(C_CloseSession(mine)));
            });
        }
    });
    ok(c!(C_Finalize(std::ptr::null_mut())));
}

#[test]
fn many_threads_share_one_connection_with_runtime_threads() {
    isolated(
        "remote::many_threads_share_one_connection_with_runtime_threads",
        "",
        || {
            let (_daemon, dir) = daemon_for_module("threads", 30);
            ok(c!(C_Initialize(std::ptr::null_mut())));
            threads_share_the_connection();
            let _ = std::fs::remove_dir_all(&dir);
        },
    );
}

#[test]
fn many_threads_share_one_connection_without_module_threads() {
    isolated(
        "remote::many_threads_share_one_connection_without_module_threads",
        "",
        || {
            let (_daemon, dir) = daemon_for_module("no-threads", 30);
            let mut args = CK_C_INITIALIZE_ARGS {
                flags: CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK,
                ..Default::default()
            };
            ok(c!(C_Initialize(
                (&mut args as *mut CK_C_INITIALIZE_ARGS).cast()
            )));
            threads_share_the_connection();
            let _ = std::fs::remove_dir_all(&dir);
        },
    );
}
