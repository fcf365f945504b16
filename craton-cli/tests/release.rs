//! Signed releases: a release directory signed with a fresh key verifies, through our verifier
//! and through minisign itself, and each kind of tampering is caught.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use craton_cli::release::{self, SigningKey};
use std::path::{Path, PathBuf};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("craton-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dist(dir: &Path) -> (SigningKey, String) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, body) in [
        ("libcraton_hsm.so", &b"\x7fELF module"[..]),
        ("libcraton_hsm.hmac", b"00ff\n"),
        ("craton-hsm", b"\x7fELF cli"),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let (key, _) = SigningKey::generate().unwrap();
    let sums = release::sums(
        dir,
        &["libcraton_hsm.so", "libcraton_hsm.hmac", "craton-hsm"],
    )
    .unwrap();
    std::fs::write(dir.join(release::SUMS), &sums).unwrap();
    let sig = key.sign(sums.as_bytes(), "craton-hsm 0.1.0 test").unwrap();
    std::fs::write(dir.join(release::SIGNATURE), sig).unwrap();
    let public = key.public_key_file();
    std::fs::write(dir.join("craton-release.pub"), &public).unwrap();
    (key, public)
}

#[test]
fn a_signed_release_verifies_and_tampering_is_caught() {
    let scratch = Scratch::new("release");
    let dir = scratch.path().join("dist");
    let (_, public) = dist(&dir);
    let v = release::verify_dist(&dir, &public).unwrap();
    assert_eq!(v.comment, "craton-hsm 0.1.0 test");
    assert_eq!(v.files.len(), 3);

    // Standard tooling agrees (CI installs minisign; elsewhere it may be missing).
    match std::process::Command::new("minisign")
        .args(["-V", "-m"])
        .arg(dir.join(release::SUMS))
        .arg("-p")
        .arg(dir.join("craton-release.pub"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "minisign -V: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("minisign not installed: the standard-tool check is skipped here");
        }
        Err(e) => panic!("CI must have minisign (cargo xtask ci installs it): {e}"),
    }

    // A changed file, a changed list, an added file, a removed file, another key.
    type Tamper = fn(&Path);
    let cases: &[(&str, Tamper)] = &[
        ("file", |d| {
            std::fs::write(d.join("craton-hsm"), b"\x7fELF clj").unwrap();
        }),
        ("sums", |d| {
            let p = d.join(release::SUMS);
            let t = std::fs::read_to_string(&p).unwrap().replacen('0', "1", 1);
            std::fs::write(p, t).unwrap();
        }),
        ("extra", |d| {
            std::fs::write(d.join("backdoor.so"), b"surprise").unwrap();
        }),
        ("missing", |d| {
            std::fs::remove_file(d.join("libcraton_hsm.hmac")).unwrap();
        }),
        ("comment", |d| {
            let p = d.join(release::SIGNATURE);
            let t = std::fs::read_to_string(&p)
                .unwrap()
                .replace("0.1.0 test", "0.1.1 test");
            std::fs::write(p, t).unwrap();
        }),
    ];
    for (name, tamper) in cases {
        let dir = scratch.path().join(name);
        let (_, public) = dist(&dir);
        tamper(&dir);
        assert!(
            release::verify_dist(&dir, &public).is_err(),
            "{name} tampering was not caught"
        );
    }
    let dir = scratch.path().join("other-key");
    dist(&dir);
    let (stranger, _) = SigningKey::generate().unwrap();
    assert!(release::verify_dist(&dir, &stranger.public_key_file()).is_err());
}
