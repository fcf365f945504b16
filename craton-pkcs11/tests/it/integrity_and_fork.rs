//! `C_Initialize`'s integrity check against the sidecar, through the real entry point, and
//! the module as a forked child sees it.

use crate::*;
use cryptoki_sys::*;

/// The audit entries named `event`.
fn audit_entries(event: &str) -> Vec<String> {
    let needle = format!("\"event\":\"{event}\"");
    std::fs::read_to_string(audit_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_development_build_runs_without_a_sidecar_but_audits_it() {
    isolated(
        "integrity_and_fork::a_development_build_runs_without_a_sidecar_but_audits_it",
        "",
        || {
            ok(c!(C_Initialize(std::ptr::null_mut())));
            let entries = audit_entries("integrity_check");
            assert_eq!(entries.len(), 1, "{entries:?}");
            assert!(
                entries[0].contains("\"result\":\"failed\""),
                "{}",
                entries[0]
            );
            assert!(entries[0].contains("\"enforced\":false"), "{}", entries[0]);
            assert_eq!(audit_entries("frontend_attached").len(), 1);
            ok(c!(C_Finalize(std::ptr::null_mut())));
            assert_eq!(audit_entries("frontend_detached").len(), 1);
        },
    );
}

#[test]
fn a_production_module_needs_a_matching_sidecar_and_audits_the_check() {
    isolated(
        "integrity_and_fork::a_production_module_needs_a_matching_sidecar_and_audits_the_check",
        "security.development_build = false",
        || {
            // The code runs from this test executable, so its sidecar sits beside it. Only
            // this test writes it (the others run as development builds and ignore it), and
            // it checks the missing case first, so no other test can race it.
            let exe = std::env::current_exe().unwrap();
            let sidecar = craton_store::integrity::sidecar_path(&exe);
            let _ = std::fs::remove_file(&sidecar);
            assert_eq!(c!(C_Initialize(std::ptr::null_mut())), CKR_FUNCTION_FAILED);
            let mut info = CK_INFO::default();
            assert_eq!(c!(C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
            let missing = audit_entries("integrity_check");
            assert_eq!(missing.len(), 1, "{missing:?}");
            assert!(
                missing[0].contains("\"result\":\"failed\""),
                "{}",
                missing[0]
            );
            assert!(missing[0].contains("\"enforced\":true"), "{}", missing[0]);
            assert!(audit_entries("frontend_attached").is_empty());

            let tag = craton_core::post::integrity_tag(&std::fs::read(&exe).unwrap()).unwrap();
            std::fs::write(&sidecar, format!("{}\n", hex::encode(tag))).unwrap();
            let first = c!(C_Initialize(std::ptr::null_mut()));
            ok(c!(C_Finalize(std::ptr::null_mut())));
            let mut stale = tag;
            stale[0] ^= 1;
            std::fs::write(&sidecar, hex::encode(stale)).unwrap();
            let second = c!(C_Initialize(std::ptr::null_mut()));
            std::fs::remove_file(&sidecar).unwrap();
            ok(first);
            assert_eq!(second, CKR_FUNCTION_FAILED);
            let entries = audit_entries("integrity_check");
            assert_eq!(entries.len(), 3, "{entries:?}");
            assert!(entries[1].contains("\"result\":\"ok\""), "{}", entries[1]);
            assert!(
                entries[2].contains("\"result\":\"failed\""),
                "{}",
                entries[2]
            );
        },
    );
}

#[test]
fn a_forked_child_sees_the_module_as_not_initialised() {
    isolated(
        "integrity_and_fork::a_forked_child_sees_the_module_as_not_initialised",
        "",
        || {
            ok(c!(C_Initialize(std::ptr::null_mut())));
            // SAFETY: the child only calls C_GetInfo (an atomic load, a read lock and a
            // fixed-size write, no allocation) and _exit, which is safe after fork() in a
            // process with other threads.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let mut info = CK_INFO::default();
                let rv = c!(C_GetInfo(&mut info));
                let code = if rv == CKR_CRYPTOKI_NOT_INITIALIZED {
                    0
                } else {
                    1
                };
                // SAFETY: ends the child at once, running no destructors of the parent's
                // state (its engine belongs to the parent).
                unsafe { libc::_exit(code) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
            let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(waited, pid);
            assert!(libc::WIFEXITED(status), "child did not exit normally");
            assert_eq!(
                libc::WEXITSTATUS(status),
                0,
                "child saw an initialised module"
            );
            // The parent is untouched.
            let mut info = CK_INFO::default();
            ok(c!(C_GetInfo(&mut info)));
            ok(c!(C_Finalize(std::ptr::null_mut())));
        },
    );
}

#[test]
fn a_forked_child_finds_key_memory_wiped() {
    // Pooled (small) and paged (large) secrets both live on pages marked MADV_WIPEONFORK.
    let small = craton_core::secret::SecretBytes::new(&[0xa5; 32]);
    let large = craton_core::secret::SecretBytes::new(&[0x5a; 8192]);
    assert!(small.expose().iter().all(|b| *b == 0xa5));
    // SAFETY: the child only reads memory it already has mapped and calls _exit; no
    // allocation, no locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let wiped =
            small.expose().iter().all(|b| *b == 0) && large.expose().iter().all(|b| *b == 0);
        // SAFETY: ends the child at once, running no destructors.
        unsafe { libc::_exit(if wiped { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit normally");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child saw the parent's key bytes"
    );
    // The parent keeps its keys.
    assert!(small.expose().iter().all(|b| *b == 0xa5));
    assert!(large.expose().iter().all(|b| *b == 0x5a));
}

#[test]
fn a_forked_child_never_repeats_its_parents_random_bytes() {
    // The engine a child initialises has a DRBG of its own; this covers a generator used
    // straight across fork(), as a program embedding craton-store might.
    let rng = craton_core::rng::Rng::from_os().expect("rng");
    let mut warm = [0u8; 32];
    rng.fill(&mut warm).expect("fill");
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child draws from a generator no other thread uses (its locks are free),
    // which allocates nothing, writes to the pipe and calls _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut out = [0u8; 64];
        let ok = rng.fill(&mut out[..32]).is_ok() && rng.fill(&mut out[32..]).is_ok();
        // SAFETY: writes 64 bytes from a live buffer to the pipe's write end.
        let written = unsafe { libc::write(fds[1], out.as_ptr().cast(), out.len()) };
        // SAFETY: ends the child at once, running no destructors.
        unsafe { libc::_exit(if ok && written == 64 { 0 } else { 1 }) };
    }
    // Well past the next few generate requests: an inherited state would hand the child
    // bytes the parent also gets, from its read-ahead or from its next request.
    let parent: Vec<[u8; 32]> = (0..200)
        .map(|_| {
            let mut b = [0u8; 32];
            rng.fill(&mut b).expect("fill");
            b
        })
        .collect();
    let mut child = [0u8; 64];
    // SAFETY: reads at most 64 bytes into a live buffer from the pipe's read end.
    let read = unsafe { libc::read(fds[0], child.as_mut_ptr().cast(), child.len()) };
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    // SAFETY: closes the two descriptors pipe(2) made.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed"
    );
    assert_eq!(read, 64);
    for c in child.chunks(32) {
        assert!(
            !parent.iter().any(|p| p[..] == *c),
            "parent and child drew the same bytes"
        );
    }
}
