//! `cargo xtask demo`: the main job, end to end on a fresh machine.
//!
//! Builds `libcraton_hsm.so`, writes its sidecar, and then, through the real module and
//! OpenSC's `pkcs11-tool` (installed from Debian when missing), initialises a token in a
//! scratch state directory, generates RSA, EC, Ed25519, ML-DSA and AES keys, signs and verifies,
//! encrypts and decrypts, runs an ML-KEM exchange through the PKCS#11 3.2 functions; then
//! starts `craton-hsm-daemon` on loopback behind mutual TLS (certificates from a private CA
//! made for the run) and signs, verifies and encrypts through it; and prints a short summary. No configuration file is needed: the
//! module runs on its embedded default, with its state under the scratch directory
//! (`XDG_DATA_HOME`).

use crate::util::{ensure_tool, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

const SO_PIN: &str = "demo-so-pin";
const USER_PIN: &str = "demo-user-pin";

struct Demo {
    module: PathBuf,
    scratch: PathBuf,
    rows: Vec<(String, String)>,
}

impl Demo {
    /// Runs pkcs11-tool with the module and `args`; returns its standard output.
    fn tool(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.arg("--module")
            .arg(&self.module)
            .args(args)
            .env("XDG_DATA_HOME", self.scratch.join("data"))
            .env_remove("CRATON_HSM_CONFIG")
            .current_dir(&self.scratch);
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

    fn step(&mut self, what: &str, result: &str) {
        eprintln!("demo: {what}: {result}");
        self.rows.push((what.to_owned(), result.to_owned()));
    }

    /// Runs one of the `cryptoki`-crate clients (`crate::native`) on the demo token and
    /// returns its one-line summary.
    fn cryptoki_client(&self, client: &str, what: &str) -> Result<String, String> {
        let mut cmd = crate::native::command(client, &self.module, "demo", USER_PIN)?;
        cmd.env("XDG_DATA_HOME", self.scratch.join("data"))
            .env_remove("CRATON_HSM_CONFIG");
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
    };
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

    // The same token engine over the network: the daemon on loopback behind mutual TLS,
    // with certificates from a private CA made for this run.
    let remote = crate::remote::start(&d.scratch.join("daemon"), "")?;
    d.step(
        "start craton-hsm-daemon (POST, integrity, mTLS)",
        &remote.client.endpoint,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rows = runtime.block_on(crate::remote::demo_steps(&remote.client, SO_PIN, USER_PIN))?;
    for (what, result) in rows {
        d.step(&what, &result);
    }
    let log = remote.daemon.log();
    if !remote.daemon.stop()? {
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
        println!("  {what:<48} {result}");
    }
    println!("every step passed");
    Ok(())
}
