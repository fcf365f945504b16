//! `cargo xtask fuzz [seconds]`: runs the `c_abi` cargo-fuzz target (`fuzz/`) over
//! libcraton_hsm's C ABI for a bounded time (default 60 s, or `CRATON_FUZZ_SECONDS`).
//!
//! cargo-fuzz is installed from crates.io when missing. The target is built without a
//! sanitizer (`-s none`), which works on the stable toolchain: coverage guidance comes from
//! SanitizerCoverage, and the harness itself turns any panic or `CKR_GENERAL_ERROR` into a
//! crash. Findings land in `fuzz/artifacts/c_abi/`; the corpus grows in `fuzz/corpus/c_abi/`.

use crate::util::{cargo, run as exec, workspace_root};

pub fn run(args: &[String]) -> Result<(), String> {
    let seconds: u64 = match args {
        [] => std::env::var("CRATON_FUZZ_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
        [s] => s
            .parse()
            .map_err(|_| format!("`{s}` is not a number of seconds"))?,
        _ => return Err("usage: cargo xtask fuzz [seconds]".into()),
    };
    ensure_cargo_fuzz()?;
    let mut fuzz = cargo();
    fuzz.current_dir(workspace_root().join("fuzz")).args([
        "fuzz",
        "run",
        "-s",
        "none",
        "c_abi",
        "--",
        &format!("-max_total_time={seconds}"),
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]);
    exec(fuzz)
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    exec(install)
}
