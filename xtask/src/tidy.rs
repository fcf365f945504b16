//! `cargo xtask tidy`: the repository root holds manifests, tool configs, crate folders and
//! the top-level docs, nothing else. Scratch files, logs and shell twins of xtask jobs fail.

use crate::util::workspace_root;

/// Every name allowed at the root. Anything else is a stray.
const ALLOWED: &[&str] = &[
    ".cargo",
    ".ci",
    ".git",
    ".gitignore",
    "Cargo.lock",
    "Cargo.toml",
    "README.md",
    "LICENSE",
    "rustfmt.toml",
    "clippy.toml",
    "craton-core",
    "craton-store",
    "craton-pkcs11",
    "craton-daemon",
    "craton-cli",
    "xtask",
    "docs",
    "deploy",
    "testdata",
    "fuzz",
    "target",
    "dist",
];

pub fn run() -> Result<(), String> {
    let root = workspace_root();
    let entries =
        std::fs::read_dir(&root).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
    let mut strays = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", root.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !ALLOWED.contains(&name.as_str()) {
            strays.push(name);
        }
    }
    if strays.is_empty() {
        Ok(())
    } else {
        strays.sort();
        Err(format!(
            "stray entries at the repository root (move them or add them to xtask/src/tidy.rs \
             with a reason): {}",
            strays.join(", ")
        ))
    }
}
