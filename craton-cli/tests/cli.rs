//! `craton-hsm` as an operator runs it: the real binary, a configuration file in a scratch
//! directory, PINs from files and the environment, and the exit codes scripts rely on.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Host {
    dir: PathBuf,
}

impl Host {
    fn new(name: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("craton-cli-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "[token]\nslots = 2\nstate_dir = {:?}\n\n[security]\npbkdf2_iterations = 1000\nmax_failed_logins = 3\n\n[audit]\npath = {:?}\n",
            dir.join("state"),
            dir.join("log/audit.log")
        );
        std::fs::write(dir.join("craton_hsm.toml"), config).unwrap();
        for (name, value) in [
            ("so.pin", "so-pin-1234\n"),
            ("user.pin", "user-pin-1234\n"),
            ("new.pin", "user-pin-5678\n"),
            ("wrong.pin", "not-the-pin\n"),
            ("pass", "correct horse battery staple\n"),
            ("wrong.pass", "incorrect horse\n"),
        ] {
            std::fs::write(dir.join(name), value).unwrap();
        }
        Host { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs craton-hsm with this host's configuration and no PIN in the environment.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_craton-hsm"))
            .args(args)
            .env("CRATON_HSM_CONFIG", self.path("craton_hsm.toml"))
            .env_remove("CRATON_HSM_PIN")
            .env_remove("CRATON_HSM_SO_PIN")
            .env_remove("CRATON_HSM_PIN_FILE")
            .env_remove("CRATON_HSM_SO_PIN_FILE")
            .env_remove("CRATON_HSM_NEW_PIN")
            .env_remove("CRATON_HSM_BACKUP_PASSPHRASE")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "craton-hsm {args:?} failed ({:?}):\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "craton-hsm {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// A token in slot 0 labelled `label`, with its user PIN set.
    fn ready(&self, label: &str) {
        let so = self.path("so.pin");
        let user = self.path("user.pin");
        self.ok(&[
            "token",
            "init",
            "--label",
            label,
            "--so-pin-file",
            so.to_str().unwrap(),
        ]);
        self.ok(&[
            "pin",
            "init",
            "--so-pin-file",
            so.to_str().unwrap(),
            "--new-pin-file",
            user.to_str().unwrap(),
        ]);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_token_is_set_up_and_its_keys_managed() {
    let h = Host::new("keys");
    h.ready("payments");
    let tokens = h.json(&["token", "list"]);
    assert_eq!(tokens[0]["label"], "payments");
    assert_eq!(tokens[0]["user_pin_initialized"], true);
    assert_eq!(tokens[1]["initialized"], false);

    let pin = h.path("user.pin");
    let generated = h.json(&[
        "key",
        "generate",
        "--type",
        "ec-p256",
        "--label",
        "signing",
        "--id",
        "0a0b",
        "--pin-file",
        s(&pin),
    ]);
    assert_eq!(
        generated.as_array().unwrap().len(),
        2,
        "a public and a private key"
    );
    h.json(&[
        "key",
        "generate",
        "--type",
        "aes-256",
        "--label",
        "kek",
        "--pin-file",
        s(&pin),
    ]);
    h.json(&[
        "key",
        "generate",
        "--type",
        "ml-dsa-65",
        "--label",
        "pq",
        "--pin-file",
        s(&pin),
    ]);

    let keys = h.json(&["key", "list", "--pin-file", s(&pin)]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 5);
    let private = keys
        .iter()
        .find(|k| k["class"] == "PRIVATE_KEY" && k["label"] == "signing")
        .unwrap();
    assert_eq!(private["key_type"], "EC");
    assert_eq!(private["id"], "0a0b");
    assert_eq!(private["sensitive"], true);
    assert_eq!(private["extractable"], false);
    assert!(private.get("value").is_none(), "no secret is ever shown");
    let text = h.ok(&["key", "list", "--pin-file", s(&pin)]);
    assert!(text.contains("kek") && text.contains("ML_DSA"), "{text}");

    let shown = h.json(&["key", "show", "kek", "--pin-file", s(&pin)]);
    assert_eq!(shown[0]["value_len"], 32);

    // The public half as PEM, which OpenSSL reads back to the same DER.
    let pem_file = h.path("signing.pem");
    h.ok(&[
        "key",
        "export-public",
        "signing",
        "--out",
        s(&pem_file),
        "--pin-file",
        s(&pin),
    ]);
    let pem = std::fs::read_to_string(&pem_file).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    if let Ok(out) = Command::new("openssl")
        .args(["pkey", "-pubin", "-in", s(&pem_file), "-pubout"])
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            pem,
            "OpenSSL re-encodes it identically"
        );
    }
    let pq = h.json(&["key", "export-public", "pq", "--pin-file", s(&pin)]);
    assert!(
        pq["pem"].as_str().unwrap().len() > 2600,
        "ML-DSA-65: 1952-byte key"
    );
    h.fails(1, &["key", "export-public", "kek", "--pin-file", s(&pin)]);

    // Destruction needs --yes, then takes every object with the label.
    h.fails(2, &["key", "destroy", "signing", "--pin-file", s(&pin)]);
    let gone = h.json(&["key", "destroy", "signing", "--yes", "--pin-file", s(&pin)]);
    assert_eq!(gone["destroyed"].as_array().unwrap().len(), 2);
    assert_eq!(
        h.json(&["key", "list", "--pin-file", s(&pin)])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    h.fails(1, &["key", "show", "signing", "--pin-file", s(&pin)]);
}

#[test]
fn pins_come_from_files_or_the_environment_and_failures_say_which_class() {
    let h = Host::new("pins");
    h.ready("t");
    let wrong = h.path("wrong.pin");
    // A wrong PIN is an authentication failure (exit 4), counted against the token.
    let err = h.fails(4, &["key", "list", "--pin-file", s(&wrong)]);
    assert!(err.contains("PIN"), "{err}");
    let status = h.json(&["pin", "unlock-status"]);
    assert_eq!(status["user_pin"]["failures"], 1);
    assert_eq!(status["max_failed_logins"], 3);
    // No PIN and no terminal: exit 2, naming where a PIN may come from.
    let err = h.fails(2, &["key", "list"]);
    assert!(
        err.contains("--pin-file") && err.contains("CRATON_HSM_PIN"),
        "{err}"
    );
    // A PIN on the command line needs the explicit flag.
    h.fails(2, &["key", "list", "--pin", "user-pin-1234"]);
    h.ok(&[
        "key",
        "list",
        "--insecure-pin-arg",
        "--pin",
        "user-pin-1234",
    ]);
    // The environment works too.
    let out = Command::new(env!("CARGO_BIN_EXE_craton-hsm"))
        .args(["key", "list"])
        .env("CRATON_HSM_CONFIG", h.path("craton_hsm.toml"))
        .env("CRATON_HSM_PIN", "user-pin-1234")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Changing the PIN: the old one stops working.
    let (old, new) = (h.path("user.pin"), h.path("new.pin"));
    h.ok(&[
        "pin",
        "change",
        "--pin-file",
        s(&old),
        "--new-pin-file",
        s(&new),
    ]);
    h.fails(4, &["key", "list", "--pin-file", s(&old)]);
    h.ok(&["key", "list", "--pin-file", s(&new)]);
    // Re-initialising needs --wipe.
    h.fails(
        2,
        &[
            "token",
            "init",
            "--label",
            "x",
            "--so-pin-file",
            s(&h.path("so.pin")),
        ],
    );
    // Remote mode without a [client] section is a configuration problem, named as such.
    let err = h.fails(3, &["--remote", "status"]);
    assert!(err.contains("needs a [client] section"), "{err}");
}

#[test]
fn the_audit_log_verifies_until_someone_edits_it() {
    let h = Host::new("audit");
    h.ready("t");
    let key = h.json(&["audit", "export-public-key"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 64);
    let report = h.json(&["audit", "verify", "--public-key", &key]);
    assert_eq!(report["valid"], true);
    assert!(report["entries"].as_u64().unwrap() > 5);
    let tail = h.json(&["audit", "tail", "-n", "3"]);
    assert_eq!(tail.as_array().unwrap().len(), 3);

    // Rotation keeps the chain verifiable across both files.
    h.json(&["audit", "rotate"]);
    assert_eq!(
        h.json(&["audit", "verify", "--public-key", &key])["valid"],
        true
    );

    // Edit one entry of the live file: exit 5, naming the file and line.
    let log = h.path("log/audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let edited = text.replacen("\"token_init\"", "\"token_Init\"", 1);
    let edited = if edited == text {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[1] = lines[1].replacen('1', "2", 1);
        lines.join("\n") + "\n"
    } else {
        edited
    };
    std::fs::write(&log, edited).unwrap();
    let err = h.fails(5, &["audit", "verify", "--public-key", &key]);
    assert!(
        err.contains("NOT intact") && err.contains("audit.log"),
        "{err}"
    );
}

#[test]
fn a_backup_restores_onto_a_fresh_host_and_refuses_the_wrong_passphrase() {
    let h = Host::new("backup");
    h.ready("vault");
    let pin = h.path("user.pin");
    h.json(&[
        "key",
        "generate",
        "--type",
        "aes-256",
        "--label",
        "kek",
        "--pin-file",
        s(&pin),
    ]);
    let file = h.path("vault.cbk");
    let (so, pass) = (h.path("so.pin"), h.path("pass"));
    // The SO must log in to take a backup.
    h.fails(
        4,
        &[
            "backup",
            "create",
            "--out",
            s(&file),
            "--so-pin-file",
            s(&pin),
            "--passphrase-file",
            s(&pass),
        ],
    );
    let made = h.json(&[
        "backup",
        "create",
        "--out",
        s(&file),
        "--so-pin-file",
        s(&so),
        "--passphrase-file",
        s(&pass),
    ]);
    assert_eq!(made["tokens"], 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        h.json(&["backup", "inspect", s(&file)])["protected_by"],
        "passphrase"
    );

    let fresh = Host::new("backup-fresh");
    let copy = fresh.path("vault.cbk");
    std::fs::copy(&file, &copy).unwrap();
    fresh.fails(
        5,
        &[
            "backup",
            "restore",
            s(&copy),
            "--passphrase-file",
            s(&fresh.path("wrong.pass")),
        ],
    );
    assert!(
        !fresh.path("state").join("state.redb").exists(),
        "nothing written"
    );
    fresh.json(&[
        "backup",
        "restore",
        s(&copy),
        "--passphrase-file",
        s(&fresh.path("pass")),
    ]);
    assert_eq!(fresh.json(&["token", "list"])[0]["label"], "vault");
    let keys = fresh.json(&["key", "list", "--pin-file", s(&fresh.path("user.pin"))]);
    assert_eq!(keys[0]["label"], "kek");
}

#[test]
fn self_test_runs_every_kat_and_checks_the_module_file() {
    let h = Host::new("self-test");
    let module = h.path("libcraton_hsm.so");
    std::fs::write(&module, b"a module image").unwrap();
    let tag = craton_core::post::integrity_tag(b"a module image").unwrap();
    std::fs::write(h.path("libcraton_hsm.hmac"), hex::encode(tag)).unwrap();
    let report = h.json(&["self-test", "--module", s(&module)]);
    assert_eq!(report["post"]["passed"], true);
    assert!(report["post"]["kats"].as_array().unwrap().len() > 10);
    assert_eq!(report["integrity"]["passed"], true);
    std::fs::write(&module, b"a module imagf").unwrap();
    h.fails(5, &["self-test", "--module", s(&module)]);

    let status = h.json(&["status"]);
    assert_eq!(status["self_test"], "passed");
    assert_eq!(status["tokens"].as_array().unwrap().len(), 2);
}

#[test]
fn keys_are_imported_from_raw_bytes_and_pkcs8() {
    let h = Host::new("import");
    h.ready("t");
    let pin = h.path("user.pin");
    let aes = h.path("kek.hex");
    std::fs::write(
        &aes,
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .unwrap();
    let made = h.json(&[
        "key",
        "import",
        "--type",
        "aes",
        "--label",
        "kek",
        s(&aes),
        "--pin-file",
        s(&pin),
    ]);
    assert_eq!(made[0]["value_len"], 32);
    assert_eq!(made[0]["sensitive"], true);
    assert_eq!(
        made[0]["always_sensitive"], false,
        "it existed outside the token"
    );
    assert_eq!(made[0]["encrypt"], true);
    let short = h.path("short.bin");
    std::fs::write(&short, [7u8; 20]).unwrap();
    h.fails(
        2,
        &[
            "key",
            "import",
            "--type",
            "aes",
            "--label",
            "x",
            s(&short),
            "--pin-file",
            s(&pin),
        ],
    );

    // A PKCS#8 EC key made by OpenSSL: its public half exports exactly as OpenSSL derives it.
    let pem = h.path("ec.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            s(&pem),
        ])
        .output();
    let Ok(made) = made else { return };
    assert!(made.status.success());
    let pair = h.json(&[
        "key",
        "import",
        "--type",
        "pkcs8",
        "--label",
        "legacy",
        s(&pem),
        "--pin-file",
        s(&pin),
    ]);
    assert_eq!(pair.as_array().unwrap().len(), 2);
    assert_eq!(pair[1]["class"], "PRIVATE_KEY");
    assert_eq!(pair[1]["sign"], true);
    assert_eq!(pair[0]["verify"], true);
    let ours = h.json(&["key", "export-public", "legacy", "--pin-file", s(&pin)]);
    let theirs = Command::new("openssl")
        .args(["pkey", "-in", s(&pem), "-pubout"])
        .output()
        .unwrap();
    assert_eq!(
        ours["pem"].as_str().unwrap(),
        String::from_utf8_lossy(&theirs.stdout)
    );
    h.fails(
        2,
        &[
            "key",
            "import",
            "--type",
            "pkcs8",
            "--label",
            "x",
            s(&aes),
            "--pin-file",
            s(&pin),
        ],
    );
}

#[test]
fn a_release_verifies_until_a_file_changes() {
    use craton_cli::release::{self, SigningKey};
    let host = Host::new("release");
    let dist = host.path("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("libcraton_hsm.so"), b"module image").unwrap();
    let tag = craton_core::post::integrity_tag(b"module image").unwrap();
    std::fs::write(dist.join("libcraton_hsm.hmac"), hex::encode(tag)).unwrap();
    std::fs::write(dist.join("craton-hsm"), b"cli image").unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let sums = release::sums(
        &dist,
        &["libcraton_hsm.so", "libcraton_hsm.hmac", "craton-hsm"],
    )
    .unwrap();
    std::fs::write(dist.join(release::SUMS), &sums).unwrap();
    std::fs::write(
        dist.join(release::SIGNATURE),
        key.sign(sums.as_bytes(), "craton-hsm test release")
            .unwrap(),
    )
    .unwrap();
    let public = host.path("release.pub");
    std::fs::write(&public, key.public_key_file()).unwrap();

    let j = host.json(&["verify-release", "--public-key", s(&public), s(&dist)]);
    assert_eq!(j["verified"], true);
    assert_eq!(j["comment"], "craton-hsm test release");
    assert_eq!(
        j["sidecars_checked"],
        serde_json::json!(["libcraton_hsm.so"])
    );

    std::fs::write(dist.join("craton-hsm"), b"cli imagf").unwrap();
    let err = host.fails(5, &["verify-release", "--public-key", s(&public), s(&dist)]);
    assert!(
        err.contains("craton-hsm does not match its checksum"),
        "{err}"
    );
}
