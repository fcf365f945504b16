//! `cargo xtask bench`: criterion benchmarks of craton-core next to raw aws-lc-rs, and of the
//! `Hsm` engine next to craton-core; then libcraton_hsm.so next to SoftHSMv2 and raw
//! aws-lc-rs through the PKCS#11 C ABI (`craton-pkcs11/benches/pkcs11.rs`); then the daemon
//! over mutual TLS with 1, 8 and 64 clients (a connection each, and 64 sharing one) next to
//! in-process signing
//! (`craton-daemon/benches/daemon.rs`).
//!
//! Criterion results land in `target/criterion/`; the PKCS#11 table prints to the terminal.
//! The ratios we publish are recorded by hand, with the date and machine, in
//! `docs/benchmarks.md`. Extra arguments go to criterion (a filter); `--pkcs11` runs only the
//! PKCS#11 table, `--no-pkcs11` skips it; the daemon table runs unless `--pkcs11` is given.

use crate::util::{cargo, run as exec, target_dir};

/// (package, bench target): craton-core against aws-lc-rs, then the engine against the core.
const BENCHES: [(&str, &str); 2] = [("craton-core", "core"), ("craton-store", "hsm")];

pub fn run(args: &[String]) -> Result<(), String> {
    // `cargo xtask bench -- --flag` hands us the separator too; criterion must not see it.
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    let only_pkcs11 = args.iter().any(|a| a == "--pkcs11");
    let no_pkcs11 = args.iter().any(|a| a == "--no-pkcs11");
    let args: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--pkcs11" && *a != "--no-pkcs11")
        .collect();
    if !only_pkcs11 {
        criterion(&args)?;
    }
    if !no_pkcs11 {
        pkcs11()?;
    }
    if !only_pkcs11 {
        daemon()?;
    }
    Ok(())
}

/// Signatures per second through the daemon (1, 8 and 64 clients over mutual TLS, a connection
/// each, and 64 sharing one) next to the same signature in-process (`craton-daemon/benches/daemon.rs`).
fn daemon() -> Result<(), String> {
    crate::util::ensure_tool("openssl", &["openssl"])?;
    let mut bench = cargo();
    bench.args([
        "bench",
        "--locked",
        "-p",
        "craton-daemon",
        "--bench",
        "daemon",
    ]);
    exec(bench)
}

/// The PKCS#11 table: the module built in the bench profile, with its sidecar, loaded next
/// to SoftHSMv2 (installed from Debian when missing).
fn pkcs11() -> Result<(), String> {
    crate::util::ensure_packages(
        "test -e /usr/lib/softhsm/libsofthsm2.so",
        "SoftHSMv2",
        &["softhsm2"],
    )?;
    let bench_args = ["--locked", "-p", "craton-pkcs11", "--bench", "pkcs11"];
    // The module itself, in the bench profile (release code, symbols kept), so it shares
    // every dependency build with the benchmark binary.
    let mut build = cargo();
    build.args([
        "build",
        "--locked",
        "--profile",
        "bench",
        "-p",
        "craton-pkcs11",
        "--lib",
    ]);
    exec(build)?;
    // The build leaves the cdylib in target/release; copy it away with a sidecar so a later
    // build cannot swap the file under the benchmark.
    let built = target_dir().join("release/libcraton_hsm.so");
    let dir = target_dir().join("bench-module");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let module = dir.join("libcraton_hsm.so");
    std::fs::copy(&built, &module).map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
    // The release profile ships stripped; strip the copy the same way, so C_Initialize's
    // integrity check hashes a file of the size users load.
    let mut strip = std::process::Command::new("strip");
    strip.arg("--strip-all").arg(&module);
    exec(strip)?;
    crate::sidecar::write(&module)?;
    let mut bench = cargo();
    bench
        .arg("bench")
        .args(bench_args)
        .env("CRATON_BENCH_MODULE", &module);
    exec(bench)
}

fn criterion(args: &[&String]) -> Result<(), String> {
    for (package, target) in BENCHES {
        let mut bench = cargo();
        bench.args([
            "bench",
            "--locked",
            "--package",
            package,
            "--bench",
            target,
            "--",
        ]);
        bench.args(args);
        exec(bench)?;
    }
    Ok(())
}
