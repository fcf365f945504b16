//! Integration tests of the PKCS#11 module through its C ABI: each test calls the exported
//! functions with the pointers, lengths and mistakes a C application would pass.
//!
//! The module is a process-wide singleton, so every test runs in a fresh child process of
//! this binary ([`isolated`]) with its own state directory and configuration: tests can
//! initialise, finalise and fork without seeing each other.

#![allow(clippy::expect_used, clippy::unwrap_used)]
// The exports are `unsafe extern "C" fn`s: calling them is what these tests are for.
#![allow(unsafe_code)]
// The arguments of `c!` are test expressions (pointers to locals), not hidden unsafe code.
#![allow(clippy::macro_metavars_in_unsafe)]

/// Calls an exported function.
#[macro_export]
macro_rules! c {
    ($f:ident($($a:expr),* $(,)?)) => {{
        // SAFETY: every pointer argument points to a live local of the calling test, valid
        // for the length passed beside it (or is null where the test checks the refusal).
        #[allow(unused_unsafe)]
        unsafe {
            $f($($a),*)
        }
    }};
}

mod abi_rules;
mod client_expectations;
mod conformance;
mod crypto_calls;
mod integrity_and_fork;
mod remote;
mod unload;
mod v3_2;

use craton_daemon::devpki::InProcessDaemon;
use craton_hsm::ffi::{
    general::*,
    keys::{C_GenerateKey, C_GenerateKeyPair},
    object::*,
    session::*,
    slot::*,
};
use cryptoki_sys::*;
use std::path::PathBuf;
use std::process::Command;

pub const SO_PIN: &[u8] = b"so-pin-0000";
pub const USER_PIN: &[u8] = b"user-pin-0000";

const CHILD: &str = "CRATON_PKCS11_IT_CHILD";

/// Runs `body` in a child process of this test binary, with `CRATON_HSM_CONFIG` naming a
/// fresh configuration (development build: the test binary has no sidecar; cheap PBKDF2).
/// `overrides` are dotted-key lines (`audit.level = "none"`) that replace or add to it.
pub fn isolated(test: &str, overrides: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let dir = scratch(test, "local");
    let config = dir.join("craton_hsm.toml");
    std::fs::write(&config, engine_config(&dir, overrides)).unwrap();
    run_child(test, &config);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `body` twice, each time in a child process: on a local token as [`isolated`] does,
/// then in remote mode against a daemon (in this process, on loopback, mutual TLS) whose
/// engine has the same configuration. The same calls must give the same answers.
pub fn both(test: &str, overrides: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    isolated(test, overrides, || {});
    let dir = scratch(test, "remote");
    let daemon = daemon_in(&dir, overrides);
    let config = module_config(&dir, &daemon);
    run_child(test, &config);
    assert!(
        daemon.connections() > 0,
        "{test} in remote mode never reached the daemon"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon inside this process, its files in `dir`, its engine configured as [`isolated`]
/// configures a local one (with `overrides`), and no PIN throttle: the conformance tests lock
/// PINs on purpose, and the throttle would get there first.
pub fn daemon_in(dir: &std::path::Path, overrides: &str) -> InProcessDaemon {
    let mut engine =
        craton_store::Config::from_toml(&engine_config(dir, overrides), "test").unwrap();
    engine.daemon.pin_attempts_per_minute = 0;
    InProcessDaemon::start(dir, engine).unwrap()
}

/// `dir/module.toml`: the module in remote mode against `daemon` (a development build: the
/// test binary has no sidecar).
pub fn module_config(dir: &std::path::Path, daemon: &InProcessDaemon) -> PathBuf {
    let config = dir.join("module.toml");
    std::fs::write(
        &config,
        format!(
            "{}[security]\ndevelopment_build = true\n",
            daemon.client_toml()
        ),
    )
    .unwrap();
    config
}

/// Whether this child runs the module in remote mode.
pub fn remote() -> bool {
    std::env::var("CRATON_HSM_CONFIG").is_ok_and(|c| c.ends_with("module.toml"))
}

fn scratch(test: &str, mode: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "craton-pkcs11-it-{}-{}-{mode}",
        std::process::id(),
        test.replace("::", "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The engine's configuration for a test in `dir`, with `overrides` applied.
fn engine_config(dir: &std::path::Path, overrides: &str) -> String {
    let mut lines = vec![
        ("token.slots".to_owned(), "2".to_owned()),
        (
            "token.state_dir".to_owned(),
            format!("{:?}", dir.join("state")),
        ),
        ("security.development_build".to_owned(), "true".to_owned()),
        ("security.pbkdf2_iterations".to_owned(), "1000".to_owned()),
        ("security.max_failed_logins".to_owned(), "3".to_owned()),
        (
            "audit.path".to_owned(),
            format!("{:?}", dir.join("audit.log")),
        ),
    ];
    for line in overrides.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once('=').unwrap();
        let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
        match lines.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => lines.push((key, value)),
        }
    }
    lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

fn run_child(test: &str, config: &std::path::Path) {
    let test = test.strip_prefix("it::").unwrap_or(test);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("CRATON_HSM_CONFIG", config)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child for {test} ({}) failed:\n{}\n{}",
        config.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory of the running child's state (for tests that look at files).
pub fn audit_path() -> PathBuf {
    let config = std::env::var("CRATON_HSM_CONFIG").unwrap();
    PathBuf::from(config).with_file_name("audit.log")
}

/// Asserts a return value, naming the call.
#[track_caller]
pub fn ok(rv: CK_RV) {
    assert_eq!(rv, CKR_OK, "expected CKR_OK, got {rv:#x}");
}

/// `c!(C_Initialize(NULL))`, then token 0 initialised with a user PIN; returns a logged-in R/W
/// user session.
pub fn user_session() -> CK_SESSION_HANDLE {
    ok(c!(C_Initialize(std::ptr::null_mut())));
    init_token(0);
    let h = open(0, true);
    let mut pin = USER_PIN.to_vec();
    ok(c!(C_Login(
        h,
        CKU_USER,
        pin.as_mut_ptr(),
        pin.len() as CK_ULONG,
    )));
    h
}

/// Initialises the token in `slot` and sets its user PIN.
pub fn init_token(slot: CK_SLOT_ID) {
    let mut so = SO_PIN.to_vec();
    let mut label = [b' '; 32];
    label[..4].copy_from_slice(b"test");
    ok(c!(C_InitToken(
        slot,
        so.as_mut_ptr(),
        so.len() as CK_ULONG,
        label.as_mut_ptr(),
    )));
    let h = open(slot, true);
    ok(c!(C_Login(
        h,
        CKU_SO,
        so.as_mut_ptr(),
        so.len() as CK_ULONG
    )));
    let mut pin = USER_PIN.to_vec();
    ok(c!(C_InitPIN(h, pin.as_mut_ptr(), pin.len() as CK_ULONG)));
    ok(c!(C_CloseSession(h)));
}

/// Opens a session.
pub fn open(slot: CK_SLOT_ID, rw: bool) -> CK_SESSION_HANDLE {
    let mut h = 0;
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    ok(c!(C_OpenSession(
        slot,
        flags,
        std::ptr::null_mut(),
        None,
        &mut h,
    )));
    h
}

/// An attribute pointing at `value` (which must outlive the call).
pub fn attr<T>(t: CK_ATTRIBUTE_TYPE, value: &mut T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: (value as *mut T).cast(),
        ulValueLen: size_of::<T>() as CK_ULONG,
    }
}

/// An attribute pointing at a byte string.
pub fn attr_bytes(t: CK_ATTRIBUTE_TYPE, value: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: value.as_mut_ptr().cast(),
        ulValueLen: value.len() as CK_ULONG,
    }
}

/// Reads one attribute's bytes with the two-call convention.
pub fn read_attr(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, t: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    let mut a = CK_ATTRIBUTE {
        type_: t,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    ok(c!(C_GetAttributeValue(h, o, &mut a, 1)));
    let mut buf = vec![0u8; a.ulValueLen as usize];
    a.pValue = buf.as_mut_ptr().cast();
    ok(c!(C_GetAttributeValue(h, o, &mut a, 1)));
    buf.truncate(a.ulValueLen as usize);
    buf
}

/// A mechanism without parameters.
pub fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// Generates a P-256 key pair (session objects unless `token`), returning (public, private).
pub fn ec_pair(h: CK_SESSION_HANDLE, token: bool) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut params = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut tok: CK_BBOOL = token.into();
    let mut yes: CK_BBOOL = CK_TRUE;
    let mut public = [
        attr_bytes(CKA_EC_PARAMS, &mut params),
        attr(CKA_TOKEN, &mut tok),
        attr(CKA_VERIFY, &mut yes),
    ];
    let mut tok2: CK_BBOOL = token.into();
    let mut yes2: CK_BBOOL = CK_TRUE;
    let mut private = [attr(CKA_TOKEN, &mut tok2), attr(CKA_SIGN, &mut yes2)];
    let mut m = mech(CKM_EC_KEY_PAIR_GEN);
    let (mut pubh, mut privh) = (0, 0);
    ok(c!(C_GenerateKeyPair(
        h,
        &mut m,
        public.as_mut_ptr(),
        public.len() as CK_ULONG,
        private.as_mut_ptr(),
        private.len() as CK_ULONG,
        &mut pubh,
        &mut privh,
    )));
    (pubh, privh)
}

/// The objects a search over `template` finds.
pub fn find(h: CK_SESSION_HANDLE, template: &mut [CK_ATTRIBUTE]) -> Vec<CK_OBJECT_HANDLE> {
    ok(c!(C_FindObjectsInit(
        h,
        template.as_mut_ptr(),
        template.len() as CK_ULONG,
    )));
    let mut out = vec![0; 64];
    let mut n = 0;
    ok(c!(C_FindObjects(h, out.as_mut_ptr(), 64, &mut n)));
    ok(c!(C_FindObjectsFinal(h)));
    out.truncate(n as usize);
    out
}

/// An AES-256 session key with the given usage flags on.
pub fn aes_with(
    h: CK_SESSION_HANDLE,
    usage: &[CK_ATTRIBUTE_TYPE],
    extra: &[(CK_ATTRIBUTE_TYPE, bool)],
) -> CK_OBJECT_HANDLE {
    let mut len: CK_ULONG = 32;
    let mut values: Vec<CK_BBOOL> = usage
        .iter()
        .map(|_| CK_TRUE)
        .chain(extra.iter().map(|(_, v)| CK_BBOOL::from(*v)))
        .collect();
    let types: Vec<CK_ATTRIBUTE_TYPE> = usage
        .iter()
        .copied()
        .chain(extra.iter().map(|(t, _)| *t))
        .collect();
    let mut t = vec![attr(CKA_VALUE_LEN, &mut len)];
    for (ty, v) in types.iter().zip(values.iter_mut()) {
        t.push(attr(*ty, v));
    }
    let mut m = mech(CKM_AES_KEY_GEN);
    let mut k = 0;
    ok(c!(C_GenerateKey(
        h,
        &mut m,
        t.as_mut_ptr(),
        t.len() as CK_ULONG,
        &mut k
    )));
    k
}
