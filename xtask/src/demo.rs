//! `cargo xtask demo`: the main job, end to end on a fresh machine.
//!
//! Builds `libcraton_hsm.so`, writes its sidecar, and then, through the real module and
//! OpenSC's `pkcs11-tool` (installed from Debian when missing), initialises a token in a
//! scratch state directory, generates RSA, EC, Ed25519, ML-DSA and AES keys, signs and verifies,
//! encrypts and decrypts, runs an ML-KEM exchange through the PKCS#11 3.2 functions; then
//! starts `craton-hsm-daemon` on loopback behind mutual TLS (certificates from a private CA
//! made for the run) and runs the same steps again through the same module in remote mode,
//! which forwards every call to the daemon; and prints a short summary. No configuration
//! file is needed for the local part: the module runs on its embedded default, with its state
//! under the scratch directory (`XDG_DATA_HOME`).

use crate::util::{ensure_tool, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

const SO_PIN: &str = "demo-so-pin";
const USER_PIN: &str = "demo-user-pin";

struct Demo {
    module: PathBuf,
    scratch: PathBuf,
    rows: Vec<(String, String)>,
    /// The module's configuration in remote mode (none: the embedded default, local).
    config: Option<PathBuf>,
}

impl Demo {
    /// Runs pkcs11-tool with the module and `args`; returns its standard output.
    fn tool(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.arg("--module")
            .arg(&self.module)
            .args(args)
            .current_dir(&self.scratch);
        self.environment(&mut cmd);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run pkcs11-tool: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "pkcs11-tool {} failed:\n{stdout}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout)
    }

    fn user(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["--login", "--pin", USER_PIN];
        all.extend_from_slice(args);
        self.tool(&all)
    }

    /// Local: the embedded default with state under the scratch directory. Remote: the
    /// `[client]` configuration.
    fn environment(&self, cmd: &mut Command) {
        cmd.env("XDG_DATA_HOME", self.scratch.join("data"));
        match &self.config {
            Some(c) => cmd.env("CRATON_HSM_CONFIG", c),
            None => cmd.env_remove("CRATON_HSM_CONFIG"),
        };
    }

    fn step(&mut self, what: &str, result: &str) {
        let what = match self.config {
            Some(_) => format!("[remote] {what}"),
            None => what.to_owned(),
        };
        eprintln!("demo: {what}: {result}");
        self.rows.push((what, result.to_owned()));
    }

    /// Runs one of the `cryptoki`-crate clients (`crate::native`) on the demo token and
    /// returns its one-line summary.
    fn cryptoki_client(&self, client: &str, what: &str) -> Result<String, String> {
        let mut cmd = crate::native::command(client, &self.module, "demo", USER_PIN)?;
        self.environment(&mut cmd);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run the {what} client: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{what} through the cryptoki crate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn keypair(&mut self, key_type: &str, label: &str, id: &str) -> Result<(), String> {
        self.user(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id,
        ])?;
        self.step(&format!("generate {label} key pair"), "ok");
        Ok(())
    }

    /// Signs `data.txt` with the key `id` and verifies the signature through the module.
    fn sign_verify(&mut self, id: &str, mechanism: &str) -> Result<(), String> {
        let sig = format!("{id}.sig");
        self.user(&[
            "--sign", "--id", id, "-m", mechanism, "-i", "data.txt", "-o", &sig,
        ])?;
        let out = self.user(&[
            "--verify",
            "--id",
            id,
            "-m",
            mechanism,
            "-i",
            "data.txt",
            "--signature-file",
            &sig,
        ])?;
        if !out.contains("Signature is valid") {
            return Err(format!("{mechanism} signature did not verify:\n{out}"));
        }
        let len = std::fs::metadata(self.scratch.join(&sig)).map_or(0, |m| m.len());
        self.step(
            &format!("{mechanism} sign + verify"),
            &format!("valid ({len}-byte signature)"),
        );
        Ok(())
    }
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask demo".into());
    }
    ensure_tool("pkcs11-tool", &["opensc"])?;
    let module = crate::sidecar::build(false)?;
    let scratch = target_dir().join("demo");
    fresh_dir(&scratch)?;
    let message = "Craton HSM demo: keys stay inside, results come out.\n";
    std::fs::write(scratch.join("data.txt"), message).map_err(|e| e.to_string())?;
    let mut d = Demo {
        module,
        scratch,
        rows: Vec::new(),
        config: None,
    };
    token_steps(&mut d, message)?;

    // The same steps through the same module in remote mode: the daemon on loopback behind
    // mutual TLS, with certificates from a private CA made for this run.
    let remote = crate::remote::start(&d.scratch.join("daemon"), "")?;
    let status = craton_daemon::client::RemoteHsm::connect(&remote.client)
        .and_then(|r| {
            r.status()
                .map_err(|e| craton_daemon::client::ClientError::Transport(e.to_string()))
        })
        .map_err(|e| format!("the demo daemon: {e}"))?;
    d.step(
        "start craton-hsm-daemon (POST, integrity, mTLS)",
        &format!(
            "{}, daemon {} POST {}",
            remote.client.endpoint, status.version, status.post
        ),
    );
    let config = d.scratch.join("daemon").join("module.toml");
    std::fs::write(&config, craton_daemon::devpki::client_toml(&remote.client))
        .map_err(|e| e.to_string())?;
    d.config = Some(config);
    let through_daemon = token_steps(&mut d, message);
    d.config = None;
    let log = remote.daemon.log();
    let clean = remote.daemon.stop()?;
    through_daemon.map_err(|e| format!("{e}\n\nthe daemon's log:\n{log}"))?;
    if !clean {
        return Err(format!("the daemon did not stop cleanly:\n{log}"));
    }
    d.step(
        "stop the daemon (SIGTERM, audit sealed)",
        &format!("clean exit; state in {}", remote.state.display()),
    );

    println!();
    println!("Craton HSM demo — through {}", d.module.display());
    println!("state: {}", d.scratch.join("data/craton-hsm").display());
    for (what, result) in &d.rows {
        println!("  {what:<56} {result}");
    }
    println!("every step passed");
    Ok(())
}

/// Everything the demo does with a token, through `pkcs11-tool` and the `cryptoki` crate on
/// the module as `d` configures it.
fn token_steps(d: &mut Demo, message: &str) -> Result<(), String> {
    let info = d.tool(&["--show-info"])?;
    let library = info
        .lines()
        .find(|l| l.starts_with("Library"))
        .unwrap_or("Library ?")
        .to_owned();
    d.step("load module, POST, integrity check", library.trim());
    d.tool(&["--init-token", "--label", "demo", "--so-pin", SO_PIN])?;
    d.tool(&[
        "--init-pin",
        "--login",
        "--so-pin",
        SO_PIN,
        "--pin",
        USER_PIN,
    ])?;
    d.step("initialise token 'demo' and user PIN", "ok");

    d.keypair("rsa:2048", "rsa", "01")?;
    d.keypair("EC:prime256v1", "ec", "02")?;
    d.keypair("EC:edwards25519", "ed25519", "03")?;
    d.user(&[
        "--keygen",
        "--key-type",
        "AES:32",
        "--label",
        "aes",
        "--id",
        "04",
    ])?;
    d.step("generate AES-256 key", "ok");

    d.sign_verify("01", "SHA256-RSA-PKCS-PSS")?;
    d.sign_verify("02", "ECDSA-SHA256")?;
    d.sign_verify("03", "EDDSA")?;

    // pkcs11-tool cannot set CKA_PARAMETER_SET, so ML-DSA goes through the cryptoki crate.
    let summary = d.cryptoki_client("ml-dsa", "ML-DSA-65")?;
    d.step("generate ML-DSA-65 key pair (cryptoki crate)", "ok");
    d.step("ML-DSA-65 sign + verify", &summary);
    // ML-KEM needs the PKCS#11 3.2 functions, which pkcs11-tool does not call.
    let summary = d.cryptoki_client("kem", "ML-KEM-768 (PKCS#11 3.2)")?;
    d.step("ML-KEM-768 encapsulate + decapsulate (3.2)", &summary);

    let iv = "000102030405060708090a0b0c0d0e0f";
    d.user(&[
        "--encrypt",
        "--id",
        "04",
        "-m",
        "AES-CBC-PAD",
        "--iv",
        iv,
        "-i",
        "data.txt",
        "-o",
        "data.enc",
    ])?;
    let plain = d.user(&[
        "--decrypt",
        "--id",
        "04",
        "-m",
        "AES-CBC-PAD",
        "--iv",
        iv,
        "-i",
        "data.enc",
    ])?;
    if !plain.contains(message.trim_end()) {
        return Err(format!("AES-CBC-PAD round trip lost the message:\n{plain}"));
    }
    d.step("AES-256-CBC-PAD encrypt + decrypt", "round trip ok");

    let objects = d.user(&["--list-objects"])?;
    let count = objects
        .lines()
        .filter(|l| l.ends_with("Object; RSA") || l.contains(" Object; "))
        .count();
    d.step("objects on the token", &count.to_string());
    Ok(())
}
