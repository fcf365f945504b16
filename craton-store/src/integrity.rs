//! The integrity check of `libcraton_hsm.so` against its sidecar, shared by the module
//! (at `C_Initialize`), `craton-hsm self-test` and `craton-hsm doctor`. The tag itself is
//! craton-core's ([`craton_core::post::verify_integrity`]); this module reads the files.

use std::path::Path;

/// The sidecar of a module file: same directory and stem, extension `.hmac`.
pub fn sidecar_path(module: &Path) -> std::path::PathBuf {
    module.with_extension("hmac")
}

/// Checks a module file against its sidecar (`libcraton_hsm.so` → `libcraton_hsm.hmac`,
/// 64 hex digits of the HMAC-SHA-256 tag `cargo xtask sidecar` writes). The error says
/// which file is missing, malformed or different.
pub fn verify_module(module: &Path) -> Result<(), String> {
    let sidecar = sidecar_path(module);
    let text = std::fs::read_to_string(&sidecar)
        .map_err(|e| format!("cannot read sidecar {}: {e}", sidecar.display()))?;
    let tag = parse_hex(text.trim())
        .ok_or_else(|| format!("sidecar {} is not 64 hex digits", sidecar.display()))?;
    // In pieces through one buffer: the module is several megabytes, and reading it whole
    // would allocate (and have the kernel clear) that much memory at every C_Initialize.
    let unreadable = |e: std::io::Error| format!("cannot read {}: {e}", module.display());
    let mut file = std::fs::File::open(module).map_err(unreadable)?;
    let mut hmac = craton_core::post::IntegrityTag::new()
        .map_err(|e| format!("cannot compute the integrity tag: {e}"))?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match std::io::Read::read(&mut file, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(e)),
        };
        hmac.update(&buf[..n])
            .map_err(|e| format!("cannot compute the integrity tag: {e}"))?;
    }
    hmac.verify(&tag)
        .map_err(|_| format!("{} does not match {}", module.display(), sidecar.display()))
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_sits_beside_the_module() {
        assert_eq!(
            sidecar_path(Path::new("/usr/lib/libcraton_hsm.so")),
            Path::new("/usr/lib/libcraton_hsm.hmac")
        );
    }

    #[test]
    fn verify_module_detects_missing_malformed_and_wrong_sidecars() {
        let dir = std::env::temp_dir().join(format!("craton-integrity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let module = dir.join("libcraton_hsm.so");
        std::fs::write(&module, b"not really an ELF file").expect("write");
        assert!(
            verify_module(&module)
                .expect_err("missing")
                .contains("cannot read sidecar")
        );
        std::fs::write(sidecar_path(&module), "xyz").expect("write");
        assert!(
            verify_module(&module)
                .expect_err("bad")
                .contains("64 hex digits")
        );
        let tag = craton_core::post::integrity_tag(b"not really an ELF file").expect("tag");
        std::fs::write(sidecar_path(&module), format!("{}\n", hex::encode(tag))).expect("w");
        assert_eq!(verify_module(&module), Ok(()));
        std::fs::write(&module, b"not really an ELF filf").expect("write");
        assert!(
            verify_module(&module)
                .expect_err("mismatch")
                .contains("does not match")
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
