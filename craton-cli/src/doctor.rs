//! `craton-hsm doctor`: a host against the deployment page (`docs/deployment.md`), check by
//! check, each with a fix. Every file it reads is under `root` (normally `/`), so tests run
//! it against fixture trees; live-only facts (this process's core-dump limit, whether
//! `getrandom` would block) are read only when `root` is `/`.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// As the page asks.
    Pass,
    /// Weaker than the page asks, or not checkable here.
    Warn,
    /// Against the page.
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (empty when it passed).
    pub fix: String,
}

fn check(name: impl Into<String>, status: Status, detail: impl Into<String>, fix: &str) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: if status == Status::Pass {
            String::new()
        } else {
            fix.to_owned()
        },
    }
}

/// The paths, owners and modes of the deployment page.
pub const PERMISSIONS: &[(&str, &str, &str, u32)] = &[
    (
        "/opt/craton-hsm/lib/libcraton_hsm.so",
        "root",
        "craton",
        0o555,
    ),
    (
        "/opt/craton-hsm/lib/libcraton_hsm.hmac",
        "root",
        "craton",
        0o444,
    ),
    ("/etc/craton-hsm/craton_hsm.toml", "root", "craton", 0o640),
    ("/var/lib/craton-hsm", "craton", "craton", 0o700),
    ("/var/lib/craton-hsm/state.redb", "craton", "craton", 0o600),
    ("/var/log/craton-hsm/audit.log", "craton", "craton", 0o640),
    (
        "/var/log/craton-hsm/audit.log.journal",
        "craton",
        "craton",
        0o640,
    ),
    ("/etc/craton-hsm/tls", "root", "craton", 0o750),
];

/// Paths of [`PERMISSIONS`] the service creates itself: on a host where it never ran they are
/// missing, which is a warning, not a failure.
const CREATED_AT_START: [&str; 3] = [
    "/var/lib/craton-hsm/state.redb",
    "/var/log/craton-hsm/audit.log",
    "/var/log/craton-hsm/audit.log.journal",
];

/// The sandboxing directives the unit must carry, with their values.
pub const UNIT_DIRECTIVES: &[(&str, &str)] = &[
    ("User", "craton"),
    ("Group", "craton"),
    ("Type", "notify"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "true"),
    ("PrivateTmp", "true"),
    ("PrivateDevices", "true"),
    ("ProtectKernelTunables", "true"),
    ("ProtectKernelModules", "true"),
    ("ProtectKernelLogs", "true"),
    ("ProtectControlGroups", "true"),
    ("ProtectClock", "true"),
    ("ProtectHostname", "true"),
    ("ProtectProc", "invisible"),
    ("MemoryDenyWriteExecute", "true"),
    ("NoNewPrivileges", "true"),
    ("CapabilityBoundingSet", "CAP_IPC_LOCK"),
    ("AmbientCapabilities", "CAP_IPC_LOCK"),
    ("LockPersonality", "true"),
    ("RestrictNamespaces", "true"),
    ("RestrictRealtime", "true"),
    ("RestrictSUIDSGID", "true"),
    ("IPAddressDeny", "any"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("LimitCORE", "0"),
];

const ACCOUNT: &str = "craton";

/// Runs every check against the tree at `root`.
pub fn run(root: &Path) -> Vec<Check> {
    let live = root == Path::new("/");
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let users = id_table(&at("/etc/passwd"));
    let groups = id_table(&at("/etc/group"));
    let mounts = mount_table(&at("/proc/mounts"));
    let mut out = vec![account(&at("/etc/passwd"))];
    out.extend(
        PERMISSIONS
            .iter()
            .map(|(p, u, g, m)| permission(&at(p), p, u, g, *m, &users, &groups)),
    );
    out.push(owns_nothing_else(root, &users));
    out.push(mount_options(
        "state directory mount",
        &mounts,
        "/var/lib/craton-hsm",
        &["nosuid", "nodev"],
        "mount /var/lib/craton-hsm (an encrypted volume: LUKS) with nosuid,nodev",
    ));
    for tmp in ["/tmp", "/var/tmp"] {
        out.push(mount_options(
            &format!("{tmp} mount"),
            &mounts,
            tmp,
            &["noexec", "nosuid"],
            "mount it noexec,nosuid (fstab, or tmp.mount with Options=)",
        ));
    }
    out.push(unit(root));
    out.push(core_dumps(live));
    out.push(sysctl_at_least(
        &at("/proc/sys/kernel/yama/ptrace_scope"),
        "kernel.yama.ptrace_scope",
        2,
        "set kernel.yama.ptrace_scope = 3 (deploy/sysctl.d/60-craton-hsm.conf)",
    ));
    out.push(swap(&at("/proc/sys/vm/swappiness"), &at("/proc/swaps")));
    out.push(entropy(root, live));
    out.push(mac(root));
    out.push(integrity(&at("/opt/craton-hsm/lib/libcraton_hsm.so")));
    match std::fs::read_to_string(at(CONFIG))
        .map_err(|e| e.to_string())
        .and_then(|t| craton_store::Config::from_toml(&t, CONFIG).map_err(|e| e.to_string()))
    {
        Ok(config) => {
            out.extend(tls(&config, &at, &groups));
            out.push(audit_chain(&config, &at));
        }
        Err(why) => out.push(check(
            "configuration",
            Status::Fail,
            why,
            "fix /etc/craton-hsm/craton_hsm.toml (docs/configuration.md)",
        )),
    }
    out
}

const CONFIG: &str = "/etc/craton-hsm/craton_hsm.toml";

/// Where `craton-hsm audit export-public-key` output is kept for daily verification.
pub const AUDIT_PUBLIC_KEY: &str = "/etc/craton-hsm/audit-public-key.hex";

/// The daemon's TLS settings and files: listen address, client authentication, key and
/// certificate modes, certificate expiry, CRL freshness.
fn tls(
    config: &craton_store::Config,
    at: &dyn Fn(&str) -> PathBuf,
    groups: &HashMap<String, u32>,
) -> Vec<Check> {
    use craton_daemon::{der, tls};
    let d = &config.daemon;
    let path_at = |p: &Path| at(&p.to_string_lossy());
    let mut out = Vec::new();

    let name = "daemon listen address is private";
    let addr = d.listen_addr;
    out.push(if tls::is_private(addr.ip()) {
        check(name, Status::Pass, addr.to_string(), "")
    } else if d.allow_public_bind {
        check(
            name,
            Status::Warn,
            format!("{addr} is public (allow_public_bind = true)"),
            "bind an internal address (daemon.listen_addr) and firewall the port",
        )
    } else {
        check(
            name,
            Status::Fail,
            format!("{addr} is public; the daemon will refuse it"),
            "bind an internal address (daemon.listen_addr)",
        )
    });

    let name = "daemon requires client certificates";
    let fix =
        "set daemon.client_ca to the bundle of the private CA that issues client certificates";
    out.push(match &d.client_ca {
        Some(ca) if path_at(ca).is_file() => {
            let mut detail = format!("CA bundle {}", ca.display());
            if !d.client_fingerprints.is_empty() {
                detail += &format!(", {} allowed fingerprints", d.client_fingerprints.len());
            }
            check(name, Status::Pass, detail, fix)
        }
        Some(ca) => check(
            name,
            Status::Fail,
            format!("{} is missing", ca.display()),
            fix,
        ),
        None if d.loopback_without_client_auth && addr.ip().is_loopback() => check(
            name,
            Status::Warn,
            "no client CA: loopback clients connect without certificates",
            fix,
        ),
        None => check(name, Status::Fail, "daemon.client_ca is not set", fix),
    });

    let name = "TLS key and certificate files";
    let fix = "chown root:craton the files; chmod 0640 keys, 0644 or tighter certificates";
    let craton = groups.get(ACCOUNT).copied();
    let mut problems = Vec::new();
    for id in &d.server_identities {
        for (file, is_key) in [(&id.key, true), (&id.cert, false)] {
            match std::fs::metadata(path_at(file)) {
                Err(_) => problems.push(format!("{} missing", file.display())),
                Ok(m) => {
                    let mode = m.mode() & 0o7777;
                    let loose = if is_key {
                        mode & 0o137 != 0
                    } else {
                        mode & 0o133 != 0
                    };
                    if m.uid() != 0 || Some(m.gid()) != craton || loose {
                        problems.push(format!(
                            "{} is {}:{} {mode:04o}",
                            file.display(),
                            m.uid(),
                            m.gid()
                        ));
                    }
                }
            }
        }
    }
    out.push(if d.server_identities.is_empty() {
        check(
            name,
            Status::Fail,
            "daemon.server_identities is empty",
            "configure a server certificate and key (docs/daemon.md)",
        )
    } else if problems.is_empty() {
        check(
            name,
            Status::Pass,
            format!(
                "{} identities, keys root:craton 0640 or tighter",
                d.server_identities.len()
            ),
            fix,
        )
    } else {
        check(name, Status::Fail, problems.join("; "), fix)
    });

    let name = "server certificates valid for 30 more days";
    let fix = "issue and deploy the next certificate beside the current one, then reload";
    let now = der::now();
    let mut soonest: Option<(i64, String)> = None;
    let mut unreadable = Vec::new();
    for id in &d.server_identities {
        match tls::load_certs(&path_at(&id.cert))
            .ok()
            .and_then(|c| c.first().and_then(|c| der::certificate(c)))
        {
            Some(info) => {
                let days = (info.not_after - now).div_euclid(86_400);
                if soonest.as_ref().is_none_or(|(d, _)| days < *d) {
                    soonest = Some((days, id.cert.display().to_string()));
                }
            }
            None => unreadable.push(id.cert.display().to_string()),
        }
    }
    out.push(match (soonest, unreadable.is_empty()) {
        (_, false) => check(
            name,
            Status::Fail,
            format!("cannot read {}", unreadable.join(", ")),
            fix,
        ),
        (Some((days, cert)), true) if days < 0 => {
            check(name, Status::Fail, format!("{cert} has expired"), fix)
        }
        (Some((days, cert)), true) if days < 30 => check(
            name,
            Status::Fail,
            format!("{cert} expires in {days} days"),
            fix,
        ),
        (Some((days, cert)), true) => check(
            name,
            Status::Pass,
            format!("soonest: {cert}, {days} days left"),
            fix,
        ),
        (None, true) => check(name, Status::Fail, "no server certificate", fix),
    });

    let name = "CRLs fresh";
    let fix = "publish a new CRL from the client CA and install it (daemon.crls); refresh daily";
    out.push(if d.crls.is_empty() {
        check(
            name,
            Status::Warn,
            "no CRLs configured: client revocation is not checked",
            fix,
        )
    } else {
        let mapped: Vec<PathBuf> = d.crls.iter().map(|p| path_at(p)).collect();
        let verdicts = tls::read_crls(&mapped, d.crl_max_age_secs, now);
        let stale: Vec<String> = verdicts.iter().filter_map(|v| v.problem.clone()).collect();
        if !stale.is_empty() {
            check(name, Status::Fail, stale.join("; "), fix)
        } else if d.crl_reload_secs > 86_400 {
            check(
                name,
                Status::Warn,
                format!("re-read every {} s, less than daily", d.crl_reload_secs),
                "set daemon.crl_reload_secs to 86400 or less",
            )
        } else {
            let lists: usize = verdicts.iter().map(|v| v.fresh.len()).sum();
            check(name, Status::Pass, format!("{lists} fresh lists"), fix)
        }
    });
    out
}

/// The audit log's chain and seals, against the exported public key.
fn audit_chain(config: &craton_store::Config, at: &dyn Fn(&str) -> PathBuf) -> Check {
    let name = "audit log chain verifies";
    let key_file = at(AUDIT_PUBLIC_KEY);
    let fix = format!(
        "craton-hsm audit export-public-key > {AUDIT_PUBLIC_KEY}, then investigate any break \
         (docs/audit.md)"
    );
    let Ok(text) = std::fs::read_to_string(&key_file) else {
        return check(
            name,
            Status::Warn,
            format!("no exported audit public key at {AUDIT_PUBLIC_KEY}"),
            &fix,
        );
    };
    let Ok(key) = hex::decode(text.trim()) else {
        return check(
            name,
            Status::Fail,
            format!("{AUDIT_PUBLIC_KEY} is not hex"),
            &fix,
        );
    };
    let live = at(&config.audit_path().to_string_lossy());
    let files = craton_store::audit::log_files(&live);
    if files.is_empty() {
        return check(
            name,
            Status::Warn,
            format!("no audit log at {}", config.audit_path().display()),
            &fix,
        );
    }
    match craton_store::audit::verify(&files, &key) {
        Ok(r) => check(
            name,
            Status::Pass,
            format!(
                "{} entries, {} seals, {} file(s)",
                r.entries,
                r.seals,
                files.len()
            ),
            &fix,
        ),
        Err(e) => check(
            name,
            Status::Fail,
            format!("{}:{}: {}", e.file.display(), e.line, e.why),
            &fix,
        ),
    }
}

/// `name → id` from a passwd or group file.
fn id_table(path: &Path) -> HashMap<String, u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Mount point → options.
fn mount_table(path: &Path) -> HashMap<String, Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(1)?.to_string(),
                f.get(3)?.split(',').map(str::to_owned).collect(),
            ))
        })
        .collect()
}

fn account(passwd: &Path) -> Check {
    let name = "service account";
    let fix = "create it with deploy/sysusers.d/craton-hsm.conf (systemd-sysusers)";
    let text = std::fs::read_to_string(passwd).unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.split(':').next() == Some(ACCOUNT)) else {
        return check(name, Status::Fail, format!("no user '{ACCOUNT}'"), fix);
    };
    let shell = line.split(':').nth(6).unwrap_or("");
    if shell.ends_with("nologin") || shell.ends_with("/false") {
        check(
            name,
            Status::Pass,
            format!("'{ACCOUNT}' exists, shell {shell}"),
            fix,
        )
    } else {
        check(
            name,
            Status::Fail,
            format!("'{ACCOUNT}' has the login shell '{shell}'"),
            "usermod -s /usr/sbin/nologin craton",
        )
    }
}

fn permission(
    path: &Path,
    shown: &str,
    user: &str,
    group: &str,
    mode: u32,
    users: &HashMap<String, u32>,
    groups: &HashMap<String, u32>,
) -> Check {
    let name = format!("permissions of {shown}");
    let fix = format!(
        "chown {user}:{group} {shown} && chmod {mode:04o} {shown} (deploy/tmpfiles.d/craton-hsm.conf)"
    );
    let Ok(m) = std::fs::metadata(path) else {
        if CREATED_AT_START.contains(&shown) {
            return check(
                name,
                Status::Warn,
                "not there yet: the service creates it at its first start",
                "start the service once (systemctl start craton-hsm), then run doctor again",
            );
        }
        return check(name, Status::Fail, "missing", &fix);
    };
    let (want_uid, want_gid) = (users.get(user), groups.get(group));
    let found = format!("{}:{} {:04o}", m.uid(), m.gid(), m.mode() & 0o7777);
    let ok = Some(&m.uid()) == want_uid && Some(&m.gid()) == want_gid && m.mode() & 0o7777 == mode;
    if ok {
        check(
            name,
            Status::Pass,
            format!("{user}:{group} {mode:04o}"),
            &fix,
        )
    } else {
        check(
            name,
            Status::Fail,
            format!("found uid:gid {found}, want {user}:{group} {mode:04o}"),
            &fix,
        )
    }
}

fn owns_nothing_else(root: &Path, users: &HashMap<String, u32>) -> Check {
    let name = "service account owns only the HSM paths";
    let Some(uid) = users.get(ACCOUNT) else {
        return check(name, Status::Warn, "no service account to check", "");
    };
    let allowed = ["var/lib/craton-hsm", "var/log/craton-hsm"];
    let skip = ["proc", "sys", "dev", "run"];
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0usize;
    let mut stray = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > 500_000 {
                return check(name, Status::Warn, "stopped after 500 000 files", "");
            }
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel_s = rel.to_string_lossy();
            if allowed.iter().any(|a| rel_s.starts_with(a))
                || (dir == root && skip.contains(&rel_s.as_ref()))
            {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.uid() == *uid {
                stray.push(format!("/{rel_s}"));
            }
            if m.is_dir() && !m.file_type().is_symlink() {
                stack.push(path);
            }
        }
    }
    if stray.is_empty() {
        check(
            name,
            Status::Pass,
            "nothing outside /var/lib/craton-hsm and /var/log/craton-hsm",
            "",
        )
    } else {
        stray.sort();
        check(
            name,
            Status::Fail,
            format!(
                "also owns {}",
                stray.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
            "chown those files to root (or remove them)",
        )
    }
}

fn mount_options(
    name: &str,
    mounts: &HashMap<String, Vec<String>>,
    path: &str,
    wanted: &[&str],
    fix: &str,
) -> Check {
    // The mount that holds `path`: the longest mount point that prefixes it.
    let holder = mounts
        .keys()
        .filter(|m| {
            path == m.as_str()
                || path.starts_with(&format!("{}/", m.trim_end_matches('/')))
                || m.as_str() == "/"
        })
        .max_by_key(|m| m.len());
    let Some(holder) = holder else {
        return check(name, Status::Warn, "no mount table to read", fix);
    };
    let opts = &mounts[holder];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !opts.iter().any(|o| o == w))
        .collect();
    if missing.is_empty() {
        check(
            name,
            Status::Pass,
            format!("{holder} has {}", wanted.join(",")),
            fix,
        )
    } else {
        check(
            name,
            Status::Fail,
            format!("{path} is on {holder} without {}", missing.join(",")),
            fix,
        )
    }
}

/// The unit's `Key=value` lines (later ones win, as in systemd, except for lists).
fn unit_settings(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn unit(root: &Path) -> Check {
    let name = "systemd unit sandboxing";
    let fix = "install deploy/systemd/craton-hsm.service as /etc/systemd/system/craton-hsm.service";
    let candidates = [
        "etc/systemd/system/craton-hsm.service",
        "lib/systemd/system/craton-hsm.service",
        "usr/lib/systemd/system/craton-hsm.service",
    ];
    let Some(text) = candidates
        .iter()
        .find_map(|c| std::fs::read_to_string(root.join(c)).ok())
    else {
        return check(name, Status::Fail, "no craton-hsm.service found", fix);
    };
    let settings = unit_settings(&text);
    let wrong: Vec<String> = UNIT_DIRECTIVES
        .iter()
        .filter(|(k, v)| settings.get(*k).map(String::as_str) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if wrong.is_empty() {
        check(
            name,
            Status::Pass,
            format!("all {} directives present", UNIT_DIRECTIVES.len()),
            fix,
        )
    } else {
        check(
            name,
            Status::Fail,
            format!("missing or different: {}", wrong.join(" ")),
            "set them in the unit (see deploy/systemd/craton-hsm.service), then systemctl daemon-reload",
        )
    }
}

fn core_dumps(live: bool) -> Check {
    let name = "core dumps off (ulimit -c)";
    if !live {
        return check(
            name,
            Status::Pass,
            "not checked on a fixture root (the unit's LimitCORE=0 is)",
            "",
        );
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
    if limit.current == Some(0) {
        check(name, Status::Pass, "0 for this shell", "")
    } else {
        check(
            name,
            Status::Warn,
            format!(
                "{:?} for this shell (the unit's LimitCORE=0 covers the daemon)",
                limit.current
            ),
            "ulimit -c 0 in interactive shells (/etc/security/limits.conf: * hard core 0)",
        )
    }
}

fn read_number(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn sysctl_at_least(path: &Path, key: &str, min: i64, fix: &str) -> Check {
    match read_number(path) {
        Some(v) if v >= min => check(key, Status::Pass, format!("{v}"), fix),
        Some(v) => check(key, Status::Fail, format!("{v}, want {min} or more"), fix),
        None => check(key, Status::Warn, "not available (no Yama?)", fix),
    }
}

fn swap(swappiness: &Path, swaps: &Path) -> Check {
    let name = "swap";
    let fix = "set vm.swappiness = 1 (deploy/sysctl.d/60-craton-hsm.conf) or turn swap off";
    let active = std::fs::read_to_string(swaps)
        .map(|t| t.lines().skip(1).any(|l| !l.trim().is_empty()))
        .unwrap_or(false);
    match (active, read_number(swappiness)) {
        (false, _) => check(name, Status::Pass, "no swap", fix),
        (true, Some(v)) if v <= 1 => check(name, Status::Pass, format!("vm.swappiness = {v}"), fix),
        (true, Some(v)) => check(
            name,
            Status::Fail,
            format!("swap on, vm.swappiness = {v}"),
            fix,
        ),
        (true, None) => check(name, Status::Warn, "swap on, swappiness unknown", fix),
    }
}

fn entropy(root: &Path, live: bool) -> Check {
    let name = "entropy";
    let fix = "attach a virtio-rng device to the virtual machine";
    if live {
        let mut b = [0u8; 16];
        let ready = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::NONBLOCK).is_ok();
        if !ready {
            return check(
                name,
                Status::Fail,
                "getrandom would block: the pool is not initialised",
                fix,
            );
        }
    }
    let vendor =
        std::fs::read_to_string(root.join("sys/class/dmi/id/sys_vendor")).unwrap_or_default();
    let product =
        std::fs::read_to_string(root.join("sys/class/dmi/id/product_name")).unwrap_or_default();
    let vm = [
        "QEMU",
        "KVM",
        "VMware",
        "Microsoft",
        "Xen",
        "Amazon",
        "Google",
        "innotek",
    ]
    .iter()
    .any(|v| vendor.contains(v) || product.contains(v));
    let rng = std::fs::read_to_string(root.join("sys/class/misc/hw_random/rng_available"))
        .unwrap_or_default();
    match (vm, rng.contains("virtio")) {
        (false, _) => check(name, Status::Pass, "ready; not a virtual machine", fix),
        (true, true) => check(name, Status::Pass, "ready; virtio-rng present", fix),
        (true, false) => check(
            name,
            Status::Warn,
            "virtual machine without virtio-rng",
            fix,
        ),
    }
}

fn mac(root: &Path) -> Check {
    let name = "AppArmor or SELinux";
    let fix = "load deploy/apparmor/opt.craton-hsm.bin.craton-hsm-daemon (apparmor_parser -r), or the SELinux module in deploy/selinux";
    let profiles = std::fs::read_to_string(root.join("sys/kernel/security/apparmor/profiles"))
        .unwrap_or_default();
    if let Some(line) = profiles
        .lines()
        .find(|l| l.starts_with("craton-hsm-daemon "))
    {
        return if line.contains("(enforce)") {
            check(
                name,
                Status::Pass,
                "AppArmor profile craton-hsm-daemon enforcing",
                fix,
            )
        } else {
            check(
                name,
                Status::Fail,
                format!("AppArmor profile loaded but not enforcing: {line}"),
                "aa-enforce craton-hsm-daemon",
            )
        };
    }
    match read_number(&root.join("sys/fs/selinux/enforce")) {
        Some(1) => check(name, Status::Pass, "SELinux enforcing", fix),
        Some(_) => check(
            name,
            Status::Fail,
            "SELinux permissive",
            "setenforce 1 (and SELINUX=enforcing in /etc/selinux/config)",
        ),
        None => check(
            name,
            Status::Fail,
            "no AppArmor profile for the daemon and no SELinux",
            fix,
        ),
    }
}

fn integrity(module: &Path) -> Check {
    let name = "libcraton_hsm.hmac matches libcraton_hsm.so";
    match craton_store::integrity::verify_module(module) {
        Ok(()) => check(name, Status::Pass, module.display().to_string(), ""),
        Err(why) => check(
            name,
            Status::Fail,
            why,
            "reinstall the library with the sidecar of the same build (cargo xtask sidecar writes it)",
        ),
    }
}

/// The report as a table and as JSON; the boolean says whether anything failed.
pub fn report(checks: &[Check]) -> (String, Value, bool) {
    let mut text = String::new();
    for c in checks {
        text += &format!("{:<5} {:<48} {}\n", c.status.word(), c.name, c.detail);
        if !c.fix.is_empty() {
            text += &format!("      {:<48} fix: {}\n", "", c.fix);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    text += &format!(
        "{} checks: {failed} failed, {warned} warnings\n",
        checks.len()
    );
    let json = Value::Array(
        checks
            .iter()
            .map(|c| json!({"check": c.name, "status": c.status.word().to_lowercase(), "detail": c.detail, "fix": c.fix}))
            .collect(),
    );
    (text, json, failed > 0)
}

/// The root a fixture names, or `/`.
pub fn root_or_slash(root: Option<PathBuf>) -> PathBuf {
    root.unwrap_or_else(|| PathBuf::from("/"))
}
