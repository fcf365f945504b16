//! `cargo xtask <job>`: the project's automation, one module per job.
//!
//! Every job a builder, release manager or CI runs lives here, so the README, CI and people
//! all run the same thing. Jobs shell out to `cargo` and system tools; they never hold secrets.

mod bench;
mod ci;
mod cli_docs;
mod demo;
mod deploy_check;
mod fuzz;
mod interop;
mod native;
mod release;
mod remote;
mod sidecar;
mod tidy;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <job>

jobs:
  demo    build libcraton_hsm.so and its sidecar, then keys, signatures and encryption
          through the module with pkcs11-tool in a scratch token, then the same through
          craton-hsm-daemon over mutual TLS
  ci      the whole test suite: tidy, rustfmt check, clippy -D warnings, every test, the
          demo, the interop job and a bounded fuzz run
  fuzz    run the cargo-fuzz target over the PKCS#11 C ABI, starting from the committed
          seeds (args: seconds, default 60; or `pack` to minimise the corpus into the seeds)
  interop libcraton_hsm.so and SoftHSMv2 side by side under pkcs11-tool, p11tool, OpenSSL,
          Java SunPKCS11, PyKCS11 and the cryptoki crate (installs what is missing)
  sidecar build libcraton_hsm.so and write its libcraton_hsm.hmac (args: --release,
          or a library file to write the sidecar of)
  bench   criterion benchmarks of craton-core next to raw aws-lc-rs (args: a filter)
  cli-docs  the man pages and bash/zsh/fish completions of craton-hsm (args: output
          directory, default target/cli-docs)
  deploy-check  the files in deploy/ through systemd-analyze, apparmor_parser, nft and
          checkmodule (installs what is missing)
  release-key  a new release signing key (args: --out DIR): craton-release.key (secret,
          0600) and craton-release.pub (minisign format)
  sign-release  locked release build into dist/ (or --out DIR) with the sidecars,
          SHA256SUMS and its minisign signature (args: --key K)
  verify-release  a release directory against a public key (args: --public-key P
          [--dist DIR]); `minisign -V -m SHA256SUMS -p P` checks the signature too
  install the signed release files and deploy/ into a root (args: --dest-root D
          [--prefix P] [--from DIR]) with the owners and modes of docs/deployment.md
  tidy    fail on stray files at the repository root
  help    this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("interop") => interop::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some(native::JOB) => native::run(&args[1..]),
        Some("sidecar") => sidecar::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("cli-docs") => cli_docs::run(&args[1..]),
        Some("deploy-check") => deploy_check::run(&args[1..]),
        Some("release-key") => release::release_key(&args[1..]),
        Some("sign-release") => release::sign_release(&args[1..]),
        Some("verify-release") => release::verify_release(&args[1..]),
        Some("install") => release::install(&args[1..]),
        Some("tidy") => tidy::run(),
        Some("help" | "-h" | "--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown job `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
