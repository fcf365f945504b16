//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.
//!
//! `.ci/run` calls exactly this, so a green local run means a green CI run. Test and clippy
//! builds share one profile (`dev`, with optimised dependencies), so each crate is compiled
//! once for tests.

use crate::util::{cargo, run as exec};

pub fn run(extra_test_args: &[String]) -> Result<(), String> {
    crate::tidy::run()?;
    ensure_component("rustfmt")?;
    ensure_component("clippy")?;

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    exec(fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    exec(clippy)?;
    // The fuzz driver is behind a feature the workspace build leaves off; lint it too.
    let mut clippy_fuzz = cargo();
    clippy_fuzz.args([
        "clippy",
        "--locked",
        "-p",
        "craton-pkcs11",
        "--features",
        "fuzzing",
        "--",
        "-D",
        "warnings",
    ]);
    exec(clippy_fuzz)?;

    // Real peers the tests use: openssl s_client against the daemon, minisign on a signed
    // release.
    crate::util::ensure_tool("openssl", &["openssl"])?;
    crate::util::ensure_tool("minisign", &["minisign"])?;
    let mut test = cargo();
    test.args(["test", "--workspace", "--locked", "--all-targets"]);
    test.args(extra_test_args);
    exec(test)?;

    // Doctests are not part of --all-targets; they document the public API, so run them too.
    let mut doc = cargo();
    doc.args(["test", "--workspace", "--locked", "--doc"]);
    exec(doc)?;

    // The deployment files, through the tools a server reads them with.
    crate::deploy_check::run(&[])?;

    // The main job, through a client we did not write (pkcs11-tool), with the integrity
    // check enforced: it must keep working after every change.
    crate::demo::run(&[])?;

    // Clients we did not write, each next to SoftHSMv2.
    crate::interop::run(&[])?;

    // The C ABI under the fuzzer, for a bounded time (CRATON_FUZZ_SECONDS, default 60).
    crate::fuzz::run(&[])?;

    Ok(())
}

/// rustfmt and clippy come with rustup's default profile, but a minimal profile lacks them.
fn ensure_component(name: &str) -> Result<(), String> {
    let probe = cargo().args([name, "--version"]).output();
    if matches!(probe, Ok(ref out) if out.status.success()) {
        return Ok(());
    }
    let mut add = std::process::Command::new("rustup");
    add.args(["component", "add", name]);
    exec(add)
}
