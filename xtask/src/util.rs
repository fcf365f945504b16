//! Small helpers shared by the jobs: locating the workspace and running commands loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file-system error as a message that names the path.
pub fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The cargo that invoked us, so a rustup override or `CARGO` wrapper is honoured.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs a command, echoing it first, and turns a non-zero exit into an error naming it.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Installs Debian packages when `probe` (a command) is missing. Needs root, as on CI and a
/// fresh machine; elsewhere it says what to install.
pub fn ensure_tool(probe: &str, packages: &[&str]) -> Result<(), String> {
    ensure_packages(&format!("command -v {probe}"), probe, packages)
}

/// Installs Debian packages when the shell command `check` fails; `what` names the missing
/// piece in the message for a user who is not root.
pub fn ensure_packages(check: &str, what: &str, packages: &[&str]) -> Result<(), String> {
    let found = Command::new("sh")
        .args(["-c", &format!("{check} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        return Err(format!(
            "{what} is missing; install it with: sudo apt-get install {}",
            packages.join(" ")
        ));
    }
    // One package-list refresh per run, however many tools are missing.
    static UPDATED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    UPDATED
        .get_or_init(|| {
            let mut update = Command::new("apt-get");
            update.args(["update", "-qq"]);
            run(update)
        })
        .clone()?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install)
}
