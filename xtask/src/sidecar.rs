//! `cargo xtask sidecar [--release]`: builds `libcraton_hsm.so` and writes its integrity
//! sidecar `libcraton_hsm.hmac` beside it. `cargo xtask sidecar LIBRARY` writes the sidecar
//! of a library file built, copied or stripped elsewhere.
//!
//! The sidecar is HMAC-SHA-256 of the exact bytes of the library (craton-core's
//! `post::integrity_tag`), so a later `cargo build` that changes the library leaves a sidecar
//! that no longer matches: `C_Initialize` then fails loudly instead of passing silently.

use crate::util::{cargo, run as exec, target_dir};
use std::path::PathBuf;

/// Builds the module in the given profile and writes its sidecar; returns the library path.
pub fn build(release: bool) -> Result<PathBuf, String> {
    let mut build = cargo();
    build.args(["build", "--locked", "-p", "craton-pkcs11"]);
    if release {
        build.arg("--release");
    }
    exec(build)?;
    let lib = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("libcraton_hsm.so");
    write(&lib)?;
    Ok(lib)
}

/// Writes the sidecar of `lib`.
pub fn write(lib: &std::path::Path) -> Result<(), String> {
    let image = std::fs::read(lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
    let tag = craton_core::post::integrity_tag(&image)
        .map_err(|e| format!("cannot compute the integrity tag: {e}"))?;
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let sidecar = craton_store::integrity::sidecar_path(lib);
    std::fs::write(&sidecar, format!("{hex}\n"))
        .map_err(|e| format!("cannot write {}: {e}", sidecar.display()))?;
    eprintln!("xtask: wrote {}", sidecar.display());
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let release = match args {
        [] => false,
        [flag] if flag == "--release" => true,
        // A library built, copied or stripped elsewhere: its sidecar only.
        [path] if !path.starts_with('-') => return write(std::path::Path::new(path)),
        _ => return Err("usage: cargo xtask sidecar [--release | LIBRARY]".into()),
    };
    build(release).map(|_| ())
}
