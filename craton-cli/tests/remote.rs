//! `craton-hsm --remote` against a daemon: the daemon's service runs in this test process on
//! a loopback port behind mutual TLS (certificates from a throwaway CA), and the real
//! `craton-hsm` binary drives it with a `[client]` configuration.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use craton_daemon::devpki::InProcessDaemon;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Starts the service on a free loopback port; returns it and the client configuration.
fn daemon(dir: &Path) -> (InProcessDaemon, PathBuf) {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut config = craton_store::Config::default();
    config.token.state_dir = Some(state);
    config.security.pbkdf2_iterations = 1000;
    config.daemon.pin_attempts_per_minute = 0;
    let daemon = InProcessDaemon::start(dir, config).unwrap();
    let client_config = dir.join("client.toml");
    std::fs::write(&client_config, daemon.client_toml()).unwrap();
    (daemon, client_config)
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_craton-hsm"))
        .arg("--remote")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("CRATON_HSM_PIN")
        .env_remove("CRATON_HSM_SO_PIN")
        .env_remove("CRATON_HSM_CONFIG")
        .output()
        .unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    let out = run(config, args);
    assert!(
        out.status.success(),
        "craton-hsm --remote {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_administers_a_token_through_the_daemon() {
    let dir = std::env::temp_dir().join(format!("craton-cli-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (daemon, config) = daemon(&dir);
    for (name, pin) in [
        ("so.pin", "so-pin-1234\n"),
        ("user.pin", "user-pin-1234\n"),
        ("bad.pin", "nope-nope\n"),
    ] {
        std::fs::write(dir.join(name), pin).unwrap();
    }
    let p = |n: &str| dir.join(n).display().to_string();

    ok(
        &config,
        &[
            "token",
            "init",
            "--label",
            "remote",
            "--so-pin-file",
            &p("so.pin"),
        ],
    );
    ok(
        &config,
        &[
            "pin",
            "init",
            "--so-pin-file",
            &p("so.pin"),
            "--new-pin-file",
            &p("user.pin"),
        ],
    );
    let made: Value = serde_json::from_str(&ok(
        &config,
        &[
            "--json",
            "key",
            "generate",
            "--type",
            "ec-p256",
            "--label",
            "remote-key",
            "--pin-file",
            &p("user.pin"),
        ],
    ))
    .unwrap();
    assert_eq!(made.as_array().unwrap().len(), 2, "{made}");
    let list: Value = serde_json::from_str(&ok(
        &config,
        &["--json", "key", "list", "--pin-file", &p("user.pin")],
    ))
    .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["label"] == "remote-key" && k["class"] == "PRIVATE_KEY"),
        "{list}"
    );
    let pem = ok(
        &config,
        &[
            "key",
            "export-public",
            "remote-key",
            "--pin-file",
            &p("user.pin"),
        ],
    );
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let status: Value = serde_json::from_str(&ok(&config, &["--json", "status"])).unwrap();
    assert_eq!(status["daemon"]["post"], "passed");
    assert_eq!(status["tokens"][0]["label"], "remote");
    assert_eq!(status["tokens"][0]["max_failed_logins"], 10);

    // A wrong PIN through the daemon is an authentication failure, as it is locally.
    let out = run(&config, &["key", "list", "--pin-file", &p("bad.pin")]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // Host-only commands say so.
    let out = run(&config, &["self-test"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run on the HSM host"));

    // The daemon's audit log, for its SO.
    let so = ["--so-pin-file", &p("so.pin")];
    let key: Value =
        serde_json::from_str(&ok(&config, &["--json", "audit", "export-public-key"])).unwrap();
    let key = key["public_key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 64, "{key}");
    let tail: Value = serde_json::from_str(&ok(
        &config,
        &["--json", "audit", "tail", "--lines", "50", so[0], so[1]],
    ))
    .unwrap();
    let entries = tail.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "key_generated" && e["caller"]["cert_sha256"].is_string()),
        "{tail}"
    );
    let verified: Value = serde_json::from_str(&ok(
        &config,
        &[
            "--json",
            "audit",
            "verify",
            "--public-key",
            &key,
            so[0],
            so[1],
        ],
    ))
    .unwrap();
    assert_eq!(verified["valid"], true, "{verified}");
    // A pinned key the daemon does not hold is a verification failure, before any login.
    let out = run(
        &config,
        &["audit", "verify", "--public-key", &"ab".repeat(32)],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    // The user is not the SO: a wrong SO PIN is an authentication failure.
    let out = run(&config, &["audit", "tail", "--so-pin-file", &p("user.pin")]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // A user session is not enough for the administration calls.
    {
        use craton_store::Engine;
        let remote = craton_daemon::client::RemoteHsm::connect(&daemon.client).unwrap();
        let h = remote.open_session(0, true).unwrap();
        remote
            .login(h, craton_store::UserType::User, b"user-pin-1234")
            .unwrap();
        let refused = remote.audit_tail(h, 5).unwrap_err();
        assert_eq!(
            craton_store::ck::from_hsm(&refused),
            cryptoki_sys::CKR_USER_NOT_LOGGED_IN
        );
        let refused = remote
            .backup(&[h], &craton_store::backup::BackupSecret::Passphrase(b"x"))
            .unwrap_err();
        assert_eq!(
            craton_store::ck::from_hsm(&refused),
            cryptoki_sys::CKR_USER_NOT_LOGGED_IN
        );
    }
    let rotated: Value =
        serde_json::from_str(&ok(&config, &["--json", "audit", "rotate", so[0], so[1]])).unwrap();
    assert!(rotated["rotated_to"].is_string(), "{rotated}");
    let verified: Value =
        serde_json::from_str(&ok(&config, &["--json", "audit", "verify", so[0], so[1]])).unwrap();
    assert_eq!(verified["files"].as_array().unwrap().len(), 2, "{verified}");
    // An entry edited on the daemon host is reported through the daemon, with its file.
    let old = std::path::PathBuf::from(rotated["rotated_to"].as_str().unwrap());
    let text = std::fs::read_to_string(&old).unwrap();
    std::fs::write(&old, text.replacen("\"seq\":1,", "\"seq\":7,", 1)).unwrap();
    let out = run(&config, &["audit", "verify", so[0], so[1]]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("NOT intact") && said.contains(&old.display().to_string()),
        "{said}"
    );
    std::fs::write(&old, text).unwrap();

    // A backup made through the daemon restores onto a fresh local state directory.
    std::fs::write(dir.join("pass"), "correct horse battery staple\n").unwrap();
    let backup = dir.join("remote.cbk");
    ok(
        &config,
        &[
            "backup",
            "create",
            "--out",
            &backup.display().to_string(),
            "--passphrase-file",
            &p("pass"),
            so[0],
            so[1],
        ],
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = run(
        &config,
        &["backup", "restore", &backup.display().to_string()],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "restore is for the HSM host: {out:?}"
    );
    let restored = dir.join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::set_permissions(
        &restored,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let local = dir.join("local.toml");
    std::fs::write(
        &local,
        format!(
            "[token]\nstate_dir = {:?}\n[security]\npbkdf2_iterations = 1000\n[audit]\npath = {:?}\n",
            restored.join("state"),
            restored.join("audit.log")
        ),
    )
    .unwrap();
    let local_run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_craton-hsm"))
            .arg("--config")
            .arg(&local)
            .args(args)
            .env_remove("CRATON_HSM_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    local_run(&[
        "backup",
        "restore",
        &backup.display().to_string(),
        "--passphrase-file",
        &p("pass"),
    ]);
    let list: Value = serde_json::from_str(&local_run(&[
        "--json",
        "key",
        "list",
        "--pin-file",
        &p("user.pin"),
    ]))
    .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["label"] == "remote-key" && k["class"] == "PRIVATE_KEY"),
        "the restored token lacks the key: {list}"
    );

    ok(
        &config,
        &[
            "key",
            "destroy",
            "remote-key",
            "--yes",
            "--pin-file",
            &p("user.pin"),
        ],
    );
    let list: Value = serde_json::from_str(&ok(
        &config,
        &["--json", "key", "list", "--pin-file", &p("user.pin")],
    ))
    .unwrap();
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    drop(daemon);
    std::fs::remove_dir_all(&dir).unwrap();
}
