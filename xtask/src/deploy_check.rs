//! `cargo xtask deploy-check`: the files in `deploy/` pass the tools that will read them on
//! a server, installed from Debian when missing:
//!
//! - the systemd unit: `systemd-analyze verify` (on a copy whose `ExecStart` names a stub, as
//!   the daemon is not installed on the build host) and `systemd-analyze security
//!   --offline=yes`, which must rate it "OK" or better;
//! - the AppArmor profile: `apparmor_parser -Q -K` (parse only, nothing loaded);
//! - the nftables snippet: `nft -c -f` (checked, not applied);
//! - the SELinux module: `checkmodule -M -m` compiles it;
//! - the tmpfiles.d table: every path of the operator page's permission table, with its
//!   owner and mode.

use crate::util::{ensure_tool, workspace_root};
use std::path::Path;
use std::process::Command;

pub fn run(_args: &[String]) -> Result<(), String> {
    let deploy = workspace_root().join("deploy");
    systemd_unit(&deploy)?;
    ensure_tool("apparmor_parser", &["apparmor"])?;
    check(
        Command::new("apparmor_parser")
            .args(["-Q", "-K"])
            .arg(deploy.join("apparmor/opt.craton-hsm.bin.craton-hsm-daemon")),
        "apparmor_parser",
    )?;
    eprintln!("deploy-check: AppArmor profile parses");
    ensure_tool("nft", &["nftables"])?;
    check(
        Command::new("nft")
            .args(["-c", "-f"])
            .arg(deploy.join("nftables/craton-hsm.nft")),
        "nft -c",
    )?;
    eprintln!("deploy-check: nftables rules parse");
    ensure_tool("checkmodule", &["checkpolicy"])?;
    // checkmodule wants the output named after the module.
    let dir = std::env::temp_dir().join(format!("craton-selinux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let module = dir.join("craton_hsm.mod");
    let compiled = check(
        Command::new("checkmodule")
            .args(["-M", "-m", "-o"])
            .arg(&module)
            .arg(deploy.join("selinux/craton_hsm.te")),
        "checkmodule",
    );
    let _ = std::fs::remove_dir_all(&dir);
    compiled?;
    eprintln!("deploy-check: SELinux module compiles");
    permission_table(&deploy)?;
    eprintln!("deploy-check: tmpfiles.d carries the permission table");
    Ok(())
}

fn check(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("{what} refused it:\n{text}"));
    }
    Ok(text)
}

fn systemd_unit(deploy: &Path) -> Result<(), String> {
    ensure_tool("systemd-analyze", &["systemd"])?;
    let unit = deploy.join("systemd/craton-hsm.service");
    let text = std::fs::read_to_string(&unit)
        .map_err(|e| format!("cannot read {}: {e}", unit.display()))?;
    let scratch = std::env::temp_dir().join(format!("craton-unit-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let stub = scratch.join("craton-hsm-daemon");
    std::fs::write(&stub, "#!/bin/sh\nexit 0\n").map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let copy = scratch.join("craton-hsm.service");
    let replaced = text.replace(
        "/opt/craton-hsm/bin/craton-hsm-daemon",
        &stub.display().to_string(),
    );
    std::fs::write(&copy, replaced).map_err(|e| e.to_string())?;
    let verified = check(
        Command::new("systemd-analyze").arg("verify").arg(&copy),
        "systemd-analyze verify",
    );
    let _ = std::fs::remove_dir_all(&scratch);
    let verify_text = verified?;
    if !verify_text.trim().is_empty() {
        return Err(format!("systemd-analyze verify complained:\n{verify_text}"));
    }
    let report = check(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&unit),
        "systemd-analyze security",
    )?;
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .ok_or("systemd-analyze security printed no overall level")?;
    if !(overall.contains(" OK") || overall.contains(" SAFE")) {
        return Err(format!("the unit is rated worse than OK: {overall}"));
    }
    eprintln!("deploy-check: unit verifies; {}", overall.trim());
    Ok(())
}

fn permission_table(deploy: &Path) -> Result<(), String> {
    let path = deploy.join("tmpfiles.d/craton-hsm.conf");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // The same table `craton-hsm doctor` checks hosts against.
    for (p, user, group, mode) in craton_cli::doctor::PERMISSIONS {
        let mode = format!("{mode:04o}");
        let line = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(1) == Some(p))
            .ok_or_else(|| format!("{} has no line for {p}", path.display()))?;
        if line.get(2..5) != Some(&[mode.as_str(), user, group][..]) {
            return Err(format!(
                "{}: {p} should be {user}:{group} {mode}, is {:?}",
                path.display(),
                line
            ));
        }
    }
    Ok(())
}
