//! `craton-hsm doctor --root` against fixture trees: one host set up as the deployment page
//! says, where every check passes, and the same host with one thing wrong per check, where
//! exactly that check fails.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const CRATON: u32 = 4242;

struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn put(root: &Path, path: &str, content: &str) -> PathBuf {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

fn own(p: &Path, uid: u32, gid: u32, mode: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A host as the deployment page describes it, or `None` when this process may not chown
/// (the tests need root, as CI has).
fn good_host(name: &str) -> Option<Tree> {
    let root = std::env::temp_dir().join(format!("craton-doctor-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let tree = Tree(root.clone());
    let probe = put(&root, "probe", "");
    if std::os::unix::fs::chown(&probe, Some(CRATON), None).is_err() {
        eprintln!("doctor fixtures need root to chown; skipped");
        return None;
    }
    std::fs::remove_file(probe).unwrap();
    put(
        &root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\ncraton:x:4242:4242:Craton HSM:/var/lib/craton-hsm:/usr/sbin/nologin\n",
    );
    put(&root, "/etc/group", "root:x:0:\ncraton:x:4242:\n");
    let module = put(
        &root,
        "/opt/craton-hsm/lib/libcraton_hsm.so",
        "module image",
    );
    let tag = craton_core::post::integrity_tag(b"module image").unwrap();
    let sidecar = put(
        &root,
        "/opt/craton-hsm/lib/libcraton_hsm.hmac",
        &hex::encode(tag),
    );
    own(&module, 0, CRATON, 0o555);
    own(&sidecar, 0, CRATON, 0o444);
    own(
        &put(&root, "/etc/craton-hsm/craton_hsm.toml", GOOD_CONFIG),
        0,
        CRATON,
        0o640,
    );
    std::fs::create_dir_all(root.join("etc/craton-hsm/tls")).unwrap();
    own(&root.join("etc/craton-hsm/tls"), 0, CRATON, 0o750);
    let pki = pki();
    for (from, to, mode) in [
        (&pki.server.cert, "server.pem", 0o644),
        (&pki.server.key, "server.key", 0o640),
        (&pki.ca_cert, "clients-ca.pem", 0o644),
        (&pki.crl, "clients.crl", 0o644),
    ] {
        let dest = root.join("etc/craton-hsm/tls").join(to);
        std::fs::copy(from, &dest).unwrap();
        own(&dest, 0, CRATON, mode);
    }
    own(
        &put(&root, "/var/lib/craton-hsm/state.redb", ""),
        CRATON,
        CRATON,
        0o600,
    );
    own(&root.join("var/lib/craton-hsm"), CRATON, CRATON, 0o700);
    // A real audit log, written and sealed by the engine, and its exported public key.
    let log = root.join("var/log/craton-hsm/audit.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let engine_state = root.with_extension("engine");
    std::fs::create_dir_all(&engine_state).unwrap();
    std::fs::set_permissions(&engine_state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut config = craton_store::Config::default();
    config.token.state_dir = Some(engine_state.clone());
    config.audit.path = Some(log.clone());
    let hsm = craton_store::Hsm::open(config).unwrap();
    let key = hsm.audit().unwrap().public_key_hex();
    drop(hsm);
    std::fs::remove_dir_all(&engine_state).unwrap();
    put(&root, "/etc/craton-hsm/audit-public-key.hex", &key);
    own(&log, CRATON, CRATON, 0o640);
    own(
        &root.join("var/log/craton-hsm/audit.log.journal"),
        CRATON,
        CRATON,
        0o640,
    );
    own(&root.join("var/log/craton-hsm"), CRATON, CRATON, 0o750);
    put(
        &root,
        "/proc/mounts",
        "/dev/sda1 / ext4 rw,relatime 0 0\n/dev/mapper/hsm /var/lib/craton-hsm ext4 rw,nosuid,nodev 0 0\ntmpfs /tmp tmpfs rw,nosuid,nodev,noexec 0 0\ntmpfs /var/tmp tmpfs rw,nosuid,noexec 0 0\n",
    );
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/craton-hsm.service"),
    )
    .unwrap();
    put(&root, "/etc/systemd/system/craton-hsm.service", &unit);
    put(&root, "/proc/sys/kernel/yama/ptrace_scope", "3\n");
    put(&root, "/proc/sys/vm/swappiness", "1\n");
    put(
        &root,
        "/proc/swaps",
        "Filename\tType\tSize\tUsed\tPriority\n",
    );
    put(&root, "/sys/class/dmi/id/sys_vendor", "QEMU\n");
    put(
        &root,
        "/sys/class/misc/hw_random/rng_available",
        "virtio_rng.0\n",
    );
    put(
        &root,
        "/sys/kernel/security/apparmor/profiles",
        "craton-hsm-daemon (enforce)\n",
    );
    Some(tree)
}

const GOOD_CONFIG: &str = r#"[daemon]
listen_addr = "10.0.0.5:8443"
server_identities = [{ cert = "/etc/craton-hsm/tls/server.pem", key = "/etc/craton-hsm/tls/server.key" }]
client_ca = "/etc/craton-hsm/tls/clients-ca.pem"
crls = ["/etc/craton-hsm/tls/clients.crl"]
crl_reload_secs = 3600
[audit]
path = "/var/log/craton-hsm/audit.log"
"#;

/// TLS material made once per test process: a client CA with a fresh CRL, a server
/// certificate valid a year, one valid ten days, and an expired CRL.
struct Pki {
    ca_cert: PathBuf,
    crl: PathBuf,
    stale_crl: PathBuf,
    server: craton_daemon::devpki::Issued,
    short_lived: craton_daemon::devpki::Issued,
}

fn pki() -> &'static Pki {
    use craton_daemon::devpki::{DevPki, Usage};
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        // Under the target directory: the material outlives every test of the process, so
        // no test can remove it, and cargo's scratch directory is the place for that.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("craton-doctor-pki");
        let _ = std::fs::remove_dir_all(&dir);
        let ca = DevPki::create(&dir, "clients-ca").unwrap();
        let crl = dir.join("fresh.crl");
        ca.crl(&crl, None, None).unwrap();
        let stale_crl = dir.join("stale.crl");
        ca.crl(&stale_crl, Some("20250101000000Z"), Some("20250108000000Z"))
            .unwrap();
        Pki {
            ca_cert: ca.ca_cert(),
            server: ca.issue("server", Usage::Server, 365).unwrap(),
            short_lived: ca.issue("short", Usage::Server, 10).unwrap(),
            crl,
            stale_crl,
        }
    })
}

fn doctor(root: &Path) -> (i32, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_craton-hsm"))
        .args(["--json", "doctor", "--root"])
        .arg(root)
        .output()
        .unwrap();
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap(),
        checks.as_array().unwrap().clone(),
    )
}

fn status_of<'a>(checks: &'a [Value], name: &str) -> &'a str {
    checks
        .iter()
        .find(|c| c["check"].as_str().unwrap().contains(name))
        .unwrap_or_else(|| panic!("no check named {name}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn a_host_set_up_as_documented_passes_every_check() {
    let Some(tree) = good_host("good") else {
        return;
    };
    let (code, checks) = doctor(&tree.0);
    let not_passed: Vec<&Value> = checks.iter().filter(|c| c["status"] != "pass").collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(code, 0);
    assert!(checks.len() >= 18);
    // The table for people says the same.
    let out = Command::new(env!("CARGO_BIN_EXE_craton-hsm"))
        .args(["doctor", "--root"])
        .arg(&tree.0)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 failed, 0 warnings"));
}

/// Each breakage, and the check that must catch it (and give a fix).
#[test]
fn each_check_fails_on_its_own_breakage() {
    type Break = fn(&Path);
    let cases: &[(&str, Break, &str)] = &[
        (
            "shell",
            |r| {
                put(
                    r,
                    "/etc/passwd",
                    "root:x:0:0::/root:/bin/bash\ncraton:x:4242:4242::/var/lib/craton-hsm:/bin/bash\n",
                );
            },
            "service account",
        ),
        (
            "mode",
            |r| {
                std::fs::set_permissions(
                    r.join("var/lib/craton-hsm/state.redb"),
                    std::fs::Permissions::from_mode(0o644),
                )
                .unwrap();
            },
            "permissions of /var/lib/craton-hsm/state.redb",
        ),
        (
            "owner",
            |r| {
                // Group root instead of craton: the service could not read its configuration.
                std::os::unix::fs::chown(r.join("etc/craton-hsm/craton_hsm.toml"), None, Some(0))
                    .unwrap();
            },
            "permissions of /etc/craton-hsm/craton_hsm.toml",
        ),
        (
            "stray",
            |r| {
                own(&put(r, "/etc/stray.conf", ""), CRATON, CRATON, 0o600);
            },
            "owns only the HSM paths",
        ),
        (
            "nodev",
            |r| {
                put(
                    r,
                    "/proc/mounts",
                    "/dev/sda1 / ext4 rw 0 0\n/dev/mapper/hsm /var/lib/craton-hsm ext4 rw,nosuid 0 0\ntmpfs /tmp tmpfs rw,nosuid,noexec 0 0\ntmpfs /var/tmp tmpfs rw,nosuid,noexec 0 0\n",
                );
            },
            "state directory mount",
        ),
        (
            "tmp",
            |r| {
                put(
                    r,
                    "/proc/mounts",
                    "/dev/sda1 / ext4 rw 0 0\n/dev/mapper/hsm /var/lib/craton-hsm ext4 rw,nosuid,nodev 0 0\ntmpfs /var/tmp tmpfs rw,nosuid,noexec 0 0\n",
                );
            },
            "/tmp mount",
        ),
        (
            "unit",
            |r| {
                let p = r.join("etc/systemd/system/craton-hsm.service");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("ProtectSystem=strict", "ProtectSystem=full");
                std::fs::write(p, t).unwrap();
            },
            "systemd unit",
        ),
        (
            "ptrace",
            |r| {
                put(r, "/proc/sys/kernel/yama/ptrace_scope", "0\n");
            },
            "ptrace_scope",
        ),
        (
            "swap",
            |r| {
                put(
                    r,
                    "/proc/swaps",
                    "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1024 0 -2\n",
                );
                put(r, "/proc/sys/vm/swappiness", "60\n");
            },
            "swap",
        ),
        (
            "apparmor",
            |r| {
                put(
                    r,
                    "/sys/kernel/security/apparmor/profiles",
                    "craton-hsm-daemon (complain)\n",
                );
            },
            "AppArmor or SELinux",
        ),
        (
            "tls key",
            |r| {
                std::fs::set_permissions(
                    r.join("etc/craton-hsm/tls/server.key"),
                    std::fs::Permissions::from_mode(0o644),
                )
                .unwrap();
            },
            "TLS key and certificate files",
        ),
        (
            "expiry",
            |r| {
                let p = r.join("etc/craton-hsm/tls/server.pem");
                std::fs::copy(&pki().short_lived.cert, &p).unwrap();
            },
            "valid for 30 more days",
        ),
        (
            "crl",
            |r| {
                std::fs::copy(&pki().stale_crl, r.join("etc/craton-hsm/tls/clients.crl")).unwrap();
            },
            "CRLs fresh",
        ),
        (
            "public",
            |r| {
                let p = r.join("etc/craton-hsm/craton_hsm.toml");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("10.0.0.5:8443", "0.0.0.0:8443");
                std::fs::write(p, t).unwrap();
            },
            "listen address is private",
        ),
        (
            "client ca",
            |r| {
                let p = r.join("etc/craton-hsm/craton_hsm.toml");
                let t: String = std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.starts_with("client_ca"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(p, t).unwrap();
            },
            "requires client certificates",
        ),
        (
            "audit",
            |r| {
                let p = r.join("var/log/craton-hsm/audit.log");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("\"seq\":1", "\"seq\":7", 1);
                std::fs::write(p, t).unwrap();
            },
            "audit log chain verifies",
        ),
        (
            "config",
            |r| {
                let p = r.join("etc/craton-hsm/craton_hsm.toml");
                let t = std::fs::read_to_string(&p).unwrap() + "\n[daemon\n";
                std::fs::write(p, t).unwrap();
            },
            "configuration",
        ),
        (
            "integrity",
            |r| {
                let p = r.join("opt/craton-hsm/lib/libcraton_hsm.so");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
                std::fs::write(&p, "module imagf").unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o555)).unwrap();
            },
            "hmac matches",
        ),
    ];
    for (name, breakage, check) in cases {
        let Some(tree) = good_host(name) else { return };
        breakage(&tree.0);
        let (code, checks) = doctor(&tree.0);
        assert_eq!(status_of(&checks, check), "fail", "{name}: {checks:#?}");
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["check"].as_str().unwrap())
            .collect();
        assert_eq!(
            failed.len(),
            1,
            "{name} broke only {check}, yet: {failed:?}"
        );
        let fix = checks.iter().find(|c| c["status"] == "fail").unwrap()["fix"]
            .as_str()
            .unwrap();
        assert!(!fix.is_empty(), "{name}: a failure comes with a fix");
        assert_eq!(code, 5, "{name}");
    }
    // A virtual machine without virtio-rng is a warning, not a failure.
    let Some(tree) = good_host("rng") else { return };
    std::fs::remove_file(tree.0.join("sys/class/misc/hw_random/rng_available")).unwrap();
    let (code, checks) = doctor(&tree.0);
    assert_eq!(status_of(&checks, "entropy"), "warn");
    assert_eq!(code, 0);
}
