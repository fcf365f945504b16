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
    let out = run(&config, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run on the HSM host"));

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
