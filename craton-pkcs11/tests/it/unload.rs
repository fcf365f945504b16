//! The shared object as applications really load it: `dlopen`, use, `C_Finalize`,
//! `dlclose`, a `fork` after the unload (the fork handler must not point into unmapped
//! code), loading it again, and a process exit with the module still initialised.

use crate::*;
use cryptoki_sys::*;
use std::ffi::CString;

/// The `libcraton_hsm.so` cargo built with this test: beside the test binary in
/// `target/<profile>/deps/` (a test build does not copy it up to `target/<profile>/`, a plain
/// `cargo build` does). The one in `deps/` is always the one built from this source.
fn module_path() -> CString {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let so = deps.join("libcraton_hsm.so");
    assert!(so.exists(), "{} was not built with the tests", so.display());
    CString::new(so.to_str().unwrap()).unwrap()
}

/// Loads the module and returns its handle and function list.
fn load(path: &CString) -> (*mut std::ffi::c_void, &'static CK_FUNCTION_LIST) {
    // SAFETY: a valid NUL-terminated path; the flags are plain dlopen flags.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen failed");
    // SAFETY: a handle from dlopen and a NUL-terminated symbol name.
    let sym = unsafe { libc::dlsym(handle, c"C_GetFunctionList".as_ptr()) };
    assert!(!sym.is_null());
    // SAFETY: the module exports C_GetFunctionList with the PKCS#11 signature.
    let get: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV =
        unsafe { std::mem::transmute(sym) };
    let mut list = std::ptr::null_mut();
    // SAFETY: `list` is a writable pointer.
    ok(unsafe { get(&mut list) });
    // SAFETY: the module's function table lives as long as the module stays loaded, which
    // the caller ensures by not using it after dlclose.
    (handle, unsafe { &*list })
}

#[test]
fn the_module_unloads_forks_reloads_and_exits_cleanly() {
    isolated(
        "unload::the_module_unloads_forks_reloads_and_exits_cleanly",
        "",
        || {
            let path = module_path();
            let (handle, f) = load(&path);
            // SAFETY: the function pointers come from the loaded module's own table.
            unsafe {
                ok(f.C_Initialize.unwrap()(std::ptr::null_mut()));
                let mut info = CK_INFO::default();
                ok(f.C_GetInfo.unwrap()(&mut info));
                ok(f.C_Finalize.unwrap()(std::ptr::null_mut()));
                assert_eq!(libc::dlclose(handle), 0);
                // A fork after the unload runs whatever fork handlers remain registered.
                match libc::fork() {
                    0 => libc::_exit(0),
                    pid => {
                        let mut status = 0;
                        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
                        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
                    }
                }
            }
            // Loaded again, initialised, and left initialised when the process exits.
            let (_handle, f) = load(&path);
            // SAFETY: as above.
            unsafe {
                ok(f.C_Initialize.unwrap()(std::ptr::null_mut()));
                let mut slots = [0; 4];
                let mut n: CK_ULONG = 4;
                ok(f.C_GetSlotList.unwrap()(
                    CK_FALSE,
                    slots.as_mut_ptr(),
                    &mut n,
                ));
                assert_eq!(n, 2);
            }
        },
    );
}
