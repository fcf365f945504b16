//! The daemon for the demo, interop and benchmark jobs: builds `craton-hsm-daemon` with its
//! integrity sidecar, makes a throwaway private CA with a server and a client certificate,
//! writes a configuration for loopback, and starts it (ready when it says `READY=1`).

use crate::util::{cargo, ensure_tool, run as exec, target_dir};
use craton_daemon::devpki::{DevDaemon, DevPki, Usage};
use craton_store::config::ClientConfig;
use std::path::{Path, PathBuf};

/// Builds the daemon and writes `craton-hsm-daemon.hmac` beside it.
pub fn build_daemon() -> Result<PathBuf, String> {
    let mut build = cargo();
    build.args([
        "build",
        "--locked",
        "-p",
        "craton-daemon",
        "--bin",
        "craton-hsm-daemon",
    ]);
    exec(build)?;
    let bin = target_dir().join("debug").join("craton-hsm-daemon");
    crate::sidecar::write(&bin)?;
    Ok(bin)
}

/// A running daemon on loopback and what a client needs to reach it.
pub struct Remote {
    pub daemon: DevDaemon,
    pub client: ClientConfig,
    pub state: PathBuf,
}

/// Starts a daemon whose files all live under `dir`; `extra` is appended to `[daemon]`.
pub fn start(dir: &Path, extra: &str) -> Result<Remote, String> {
    ensure_tool("openssl", &["openssl"])?;
    let bin = build_daemon()?;
    let pki = DevPki::create(&dir.join("pki"), "craton-demo-ca")?;
    let server = pki.issue("daemon", Usage::Server, 30)?;
    let client = pki.issue("client", Usage::Client, 30)?;
    let state = dir.join("state");
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = dir.join("craton_hsm.toml");
    let text = format!(
        "[token]\nstate_dir = {state:?}\n[daemon]\nlisten_addr = \"127.0.0.1:{port}\"\n\
         server_identities = [{{ cert = {:?}, key = {:?} }}]\nclient_ca = {:?}\n{extra}\n",
        server.cert,
        server.key,
        pki.ca_cert()
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let daemon = DevDaemon::start(&bin, &config, &dir.join("daemon.log"))?;
    Ok(Remote {
        daemon,
        client: ClientConfig {
            endpoint: format!("https://localhost:{port}"),
            ca: pki.ca_cert(),
            cert: client.cert,
            key: client.key,
            timeout_secs: 30,
        },
        state,
    })
}
