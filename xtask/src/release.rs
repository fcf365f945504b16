//! Release jobs:
//!
//! - `release-key --out DIR`: a new signing key (`craton-release.key`, 0600) and its public
//!   key in minisign's format (`craton-release.pub`).
//! - `sign-release --key K [--out DIR]`: a locked release build; `DIR` (default
//!   `dist/` in the workspace) gets the library and its `.hmac`, the daemon and its `.hmac`, the CLI,
//!   `SHA256SUMS`, `SHA256SUMS.minisig` and the public key; then verifies what it wrote.
//! - `verify-release --public-key P [--dist DIR]`: the signature, every checksum, and no
//!   unlisted file (`minisign -V` checks the signature too).
//! - `install --prefix P --dest-root D`: lays out the files of a host as the deployment page
//!   says (owners and modes included when run as root), for `craton-hsm doctor` to pass.
//!
//! Key handling is described in `docs/release.md`.

use crate::util::{cargo, io, run as exec, target_dir, workspace_root};
use craton_cli::release::{self, SigningKey};
use std::path::{Path, PathBuf};

/// The files of a release, in `SHA256SUMS` order.
const FILES: [&str; 5] = [
    "libcraton_hsm.so",
    "libcraton_hsm.hmac",
    "craton-hsm-daemon",
    "craton-hsm-daemon.hmac",
    "craton-hsm",
];

fn flag(args: &[String], name: &str) -> Option<PathBuf> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

pub fn release_key(args: &[String]) -> Result<(), String> {
    let out = flag(args, "--out").ok_or("usage: cargo xtask release-key --out DIR")?;
    std::fs::create_dir_all(&out).map_err(|e| io(&out, e))?;
    let (key, secret) = SigningKey::generate()?;
    let secret_path = out.join("craton-release.key");
    release::write_private(&secret_path, &secret)?;
    let public_path = out.join("craton-release.pub");
    std::fs::write(&public_path, key.public_key_file()).map_err(|e| io(&public_path, e))?;
    println!(
        "wrote {} (secret, 0600) and {} (publish this)",
        secret_path.display(),
        public_path.display()
    );
    Ok(())
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

pub fn sign_release(args: &[String]) -> Result<(), String> {
    let key_path =
        flag(args, "--key").ok_or("usage: cargo xtask sign-release --key K [--out DIR]")?;
    let text = std::fs::read_to_string(&key_path).map_err(|e| io(&key_path, e))?;
    let key = SigningKey::from_file_text(&text)?;
    let out = flag(args, "--out").unwrap_or_else(|| workspace_root().join("dist"));

    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "craton-pkcs11",
        "-p",
        "craton-daemon",
        "-p",
        "craton-cli",
    ]);
    exec(build)?;
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| io(&out, e))?;
    let built = target_dir().join("release");
    for name in ["libcraton_hsm.so", "craton-hsm-daemon", "craton-hsm"] {
        std::fs::copy(built.join(name), out.join(name)).map_err(|e| io(&built.join(name), e))?;
    }
    crate::sidecar::write(&out.join("libcraton_hsm.so"))?;
    crate::sidecar::write(&out.join("craton-hsm-daemon"))?;
    let sums = release::sums(&out, &FILES)?;
    std::fs::write(out.join(release::SUMS), &sums).map_err(|e| io(&out, e))?;
    let comment = format!(
        "craton-hsm {} commit {} signed {}",
        env!("CARGO_PKG_VERSION"),
        git_commit(),
        craton_store::clock::rfc3339_now()
    );
    let sig = key.sign(sums.as_bytes(), &comment)?;
    std::fs::write(out.join(release::SIGNATURE), sig).map_err(|e| io(&out, e))?;
    let public = key.public_key_file();
    std::fs::write(out.join("craton-release.pub"), &public).map_err(|e| io(&out, e))?;
    let v = release::verify_dist(&out, &public)?;
    println!(
        "signed {} files in {} ({})",
        v.files.len(),
        out.display(),
        v.comment
    );
    Ok(())
}

pub fn verify_release(args: &[String]) -> Result<(), String> {
    let public_path = flag(args, "--public-key")
        .ok_or("usage: cargo xtask verify-release --public-key P [--dist DIR]")?;
    let dist = flag(args, "--dist").unwrap_or_else(|| workspace_root().join("dist"));
    let public = std::fs::read_to_string(&public_path).map_err(|e| io(&public_path, e))?;
    let v = release::verify_dist(&dist, &public)?;
    // Sidecars are listed, so they are authentic; each must also match its binary.
    for name in ["libcraton_hsm.so", "craton-hsm-daemon"] {
        craton_store::integrity::verify_module(&dist.join(name))?;
    }
    println!(
        "release in {} verified: {} files, sidecars match ({})",
        dist.display(),
        v.files.len(),
        v.comment
    );
    Ok(())
}

/// (path under the root, owner, group, mode, source in the release directory).
const LAYOUT: [(&str, &str, &str, u32, Option<&str>); 10] = [
    ("opt/craton-hsm/bin", "root", "root", 0o755, None),
    ("opt/craton-hsm/lib", "root", "root", 0o755, None),
    (
        "opt/craton-hsm/lib/libcraton_hsm.so",
        "root",
        "craton",
        0o555,
        Some("libcraton_hsm.so"),
    ),
    (
        "opt/craton-hsm/lib/libcraton_hsm.hmac",
        "root",
        "craton",
        0o444,
        Some("libcraton_hsm.hmac"),
    ),
    (
        "opt/craton-hsm/bin/craton-hsm-daemon",
        "root",
        "craton",
        0o555,
        Some("craton-hsm-daemon"),
    ),
    (
        "opt/craton-hsm/bin/craton-hsm-daemon.hmac",
        "root",
        "craton",
        0o444,
        Some("craton-hsm-daemon.hmac"),
    ),
    (
        "opt/craton-hsm/bin/craton-hsm",
        "root",
        "root",
        0o555,
        Some("craton-hsm"),
    ),
    ("etc/craton-hsm/tls", "root", "craton", 0o750, None),
    ("var/lib/craton-hsm", "craton", "craton", 0o700, None),
    ("var/log/craton-hsm", "craton", "craton", 0o750, None),
];

fn id_of(root: &Path, file: &str, name: &str) -> Option<u32> {
    std::fs::read_to_string(root.join(file))
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
        })
}

pub fn install(args: &[String]) -> Result<(), String> {
    let usage = "usage: cargo xtask install --dest-root D [--prefix P] [--from DIR]";
    let root = flag(args, "--dest-root").ok_or(usage)?;
    let prefix = flag(args, "--prefix").unwrap_or_else(|| PathBuf::from("/"));
    let from = flag(args, "--from").unwrap_or_else(|| workspace_root().join("dist"));
    for name in FILES {
        if !from.join(name).is_file() {
            return Err(format!(
                "{} is missing: run cargo xtask sign-release first (or pass --from)",
                from.join(name).display()
            ));
        }
    }
    for name in ["libcraton_hsm.so", "craton-hsm-daemon"] {
        craton_store::integrity::verify_module(&from.join(name))?;
    }
    let base = root.join(prefix.strip_prefix("/").unwrap_or(&prefix));
    let chown = rustix::process::geteuid().is_root();
    let conf = base.join("etc/craton-hsm/craton_hsm.toml");
    for (path, user, group, mode, source) in LAYOUT {
        let dest = base.join(path);
        match source {
            None => std::fs::create_dir_all(&dest).map_err(|e| io(&dest, e))?,
            Some(src) => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                let _ = std::fs::remove_file(&dest);
                std::fs::copy(from.join(src), &dest).map_err(|e| io(&dest, e))?;
            }
        }
        set_owner_mode(&root, &dest, user, group, mode, chown)?;
    }
    if !conf.exists() {
        std::fs::write(
            &conf,
            "# Craton HSM configuration: docs/configuration.md, docs/daemon.md.\n\
             [token]\nstate_dir = \"/var/lib/craton-hsm\"\n\
             [audit]\npath = \"/var/log/craton-hsm/audit.log\"\n",
        )
        .map_err(|e| io(&conf, e))?;
    }
    set_owner_mode(&root, &conf, "root", "craton", 0o640, chown)?;
    for (src, dest) in [
        (
            "deploy/systemd/craton-hsm.service",
            "etc/systemd/system/craton-hsm.service",
        ),
        (
            "deploy/sysusers.d/craton-hsm.conf",
            "usr/lib/sysusers.d/craton-hsm.conf",
        ),
        (
            "deploy/tmpfiles.d/craton-hsm.conf",
            "usr/lib/tmpfiles.d/craton-hsm.conf",
        ),
        (
            "deploy/sysctl.d/60-craton-hsm.conf",
            "etc/sysctl.d/60-craton-hsm.conf",
        ),
        (
            "deploy/apparmor/opt.craton-hsm.bin.craton-hsm-daemon",
            "etc/apparmor.d/opt.craton-hsm.bin.craton-hsm-daemon",
        ),
        (
            "deploy/p11-kit/craton-hsm.module",
            "usr/share/p11-kit/modules/craton-hsm.module",
        ),
    ] {
        let to = base.join(dest);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let from_file = workspace_root().join(src);
        std::fs::copy(&from_file, &to).map_err(|e| io(&from_file, e))?;
        set_owner_mode(&root, &to, "root", "root", 0o644, chown)?;
    }
    println!(
        "installed into {}{}",
        base.display(),
        if chown {
            " with the owners and modes of docs/deployment.md"
        } else {
            " (modes only: not root, so owners are left as they are)"
        }
    );
    Ok(())
}

fn set_owner_mode(
    root: &Path,
    path: &Path,
    user: &str,
    group: &str,
    mode: u32,
    chown: bool,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if chown {
        // Names resolve in the destination's own account files, falling back to this host's.
        let uid =
            id_of(root, "etc/passwd", user).or_else(|| id_of(Path::new("/"), "etc/passwd", user));
        let gid =
            id_of(root, "etc/group", group).or_else(|| id_of(Path::new("/"), "etc/group", group));
        let (Some(uid), Some(gid)) = (uid, gid) else {
            return Err(format!(
                "no account {user}:{group} in {}/etc/passwd or /etc/passwd: create it first \
                 (systemd-sysusers deploy/sysusers.d/craton-hsm.conf)",
                root.display()
            ));
        };
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| io(path, e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use craton_cli::doctor::{self, PERMISSIONS, Status};

    /// `install` into a scratch root lays out every path of the deployment page's table
    /// with its owner and mode, as `doctor` reads them (needs root to chown, as CI has).
    #[test]
    fn install_lays_out_what_doctor_checks() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("install sets owners, which needs root; skipped");
            return;
        }
        let scratch = std::env::temp_dir().join(format!("craton-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let (from, root) = (scratch.join("dist"), scratch.join("root"));
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        for name in super::FILES {
            if !name.ends_with(".hmac") {
                std::fs::write(from.join(name), format!("image of {name}")).unwrap();
            }
        }
        for name in ["libcraton_hsm.so", "craton-hsm-daemon"] {
            crate::sidecar::write(&from.join(name)).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ncraton:x:4243:4243::/var/lib/craton-hsm:/usr/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\ncraton:x:4243:\n").unwrap();
        let args: Vec<String> = [
            "--dest-root",
            root.to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        super::install(&args).unwrap();

        let checks = doctor::run(&root);
        for (path, ..) in PERMISSIONS {
            let c = checks
                .iter()
                .find(|c| c.name == format!("permissions of {path}"))
                .unwrap();
            let expected = if path.ends_with("state.redb")
                || path.ends_with("audit.log")
                || path.ends_with("audit.log.journal")
            {
                // Created by the service at its first start.
                Status::Warn
            } else {
                Status::Pass
            };
            assert_eq!(c.status, expected, "{path}: {}", c.detail);
        }
        for name in [
            "service account",
            "libcraton_hsm.hmac matches libcraton_hsm.so",
        ] {
            let c = checks.iter().find(|c| c.name == name).unwrap();
            assert_eq!(c.status, Status::Pass, "{name}: {}", c.detail);
        }
        // The unit and the daemon's sidecar went in too.
        assert!(root.join("etc/systemd/system/craton-hsm.service").is_file());
        craton_store::integrity::verify_module(&root.join("opt/craton-hsm/bin/craton-hsm-daemon"))
            .unwrap();
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
