//! `craton-hsm --remote` against a daemon: the daemon's service runs in this test process on
//! a loopback port behind mutual TLS (certificates from a throwaway CA), and the real
//! `craton-hsm` binary drives it with a `[client]` configuration.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use craton_daemon::devpki::{DevPki, Usage};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

struct Daemon {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the service on a free loopback port; returns it and the client configuration.
fn daemon(dir: &Path) -> (Daemon, PathBuf) {
    let pki = DevPki::create(&dir.join("pki"), "remote-ca").unwrap();
    let server = pki.issue("daemon", Usage::Server, 30).unwrap();
    let client = pki.issue("operator", Usage::Client, 30).unwrap();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = craton_store::Config::default();
    config.token.state_dir = Some(state);
    config.security.pbkdf2_iterations = 1000;
    config.daemon.listen_addr = listener.local_addr().unwrap();
    config.daemon.server_identities = vec![craton_store::config::ServerIdentity {
        cert: server.cert,
        key: server.key,
    }];
    config.daemon.client_ca = Some(pki.ca_cert());
    let hsm = Arc::new(craton_store::Hsm::open(config.clone()).unwrap());
    let service = Arc::new(craton_daemon::service::Service::new(hsm, 0, 1 << 20));
    let server = Arc::new(craton_daemon::server::Server::new(service, config.daemon).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    listener.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            server
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
    });
    let client_config = dir.join("client.toml");
    std::fs::write(
        &client_config,
        format!(
            "[client]\nendpoint = \"https://localhost:{port}\"\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            pki.ca_cert(),
            client.cert,
            client.key
        ),
    )
    .unwrap();
    (
        Daemon {
            stop: Some(tx),
            thread: Some(thread),
        },
        client_config,
    )
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
