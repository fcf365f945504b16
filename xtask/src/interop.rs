//! `cargo xtask interop`: `libcraton_hsm.so` driven by clients we did not write, each step run
//! against SoftHSMv2 in the same run, so a failure of ours that SoftHSMv2 passes shows as such.
//!
//! Clients: OpenSC's `pkcs11-tool` (its `--test` and key/sign/encrypt/wrap round trips),
//! GnuTLS's `p11tool`, OpenSSL through libp11's engine (a CSR signed by a token key, verified by
//! `openssl`), Java SunPKCS11, PyKCS11 (multi-part operations) and the `cryptoki` crate (a
//! multi-threaded stress and the 3.0 message API). Missing Debian packages are installed.
//! Craton must pass every step; SoftHSMv2's results are reported beside ours for comparison.

use crate::native;
use crate::util::{ensure_packages, ensure_tool, target_dir, workspace_root};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const SO_PIN: &str = "interop-so";
const USER_PIN: &str = "interop-user";
const LABEL: &str = "interop";
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// One PKCS#11 module under test, with its own scratch state.
pub struct Provider {
    pub name: &'static str,
    pub module: PathBuf,
    dir: PathBuf,
    env: Vec<(&'static str, OsString)>,
    /// The slot that holds the `interop` token (found after initialising it).
    slot: u64,
}

impl Provider {
    fn craton(module: &Path) -> Result<Self, String> {
        let dir = fresh(&target_dir().join("interop/craton-hsm"))?;
        let data = dir.join("data").into_os_string();
        Ok(Self {
            name: "craton-hsm",
            module: module.to_owned(),
            env: vec![("XDG_DATA_HOME", data)],
            dir,
            slot: 0,
        })
    }

    /// The same module in remote mode: every call goes to `remote`'s daemon over mutual TLS.
    fn craton_remote(module: &Path, remote: &crate::remote::Remote) -> Result<Self, String> {
        let dir = fresh(&target_dir().join("interop/craton-remote"))?;
        let config = dir.join("module.toml");
        std::fs::write(&config, craton_daemon::devpki::client_toml(&remote.client))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            name: "remote",
            module: module.to_owned(),
            env: vec![("CRATON_HSM_CONFIG", config.into_os_string())],
            dir,
            slot: 0,
        })
    }

    fn softhsm() -> Result<Self, String> {
        let dir = fresh(&target_dir().join("interop/softhsm2"))?;
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(|e| e.to_string())?;
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        Ok(Self {
            name: "softhsm2",
            module: PathBuf::from(SOFTHSM),
            env: vec![("SOFTHSM2_CONF", conf.into_os_string())],
            dir,
            slot: 0,
        })
    }

    /// A command in this provider's scratch directory and environment.
    fn command(&self, program: &str) -> Command {
        self.prepare(Command::new(program))
    }

    /// Puts `cmd` in this provider's scratch directory and environment.
    fn prepare(&self, mut cmd: Command) -> Command {
        cmd.current_dir(&self.dir).env_remove("CRATON_HSM_CONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn pkcs11_tool(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.command("pkcs11-tool");
        cmd.arg("--module").arg(&self.module).args(args);
        output(cmd)
    }

    /// pkcs11-tool on the interop token, logged in as the user.
    fn user(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["--token-label", LABEL, "--login", "--pin", USER_PIN];
        all.extend_from_slice(args);
        self.pkcs11_tool(&all)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Initialises the `interop` token and its user PIN, and finds the token's slot.
    fn init_token(&mut self) -> Result<(), String> {
        self.pkcs11_tool(&[
            "--init-token",
            "--slot-index",
            "0",
            "--label",
            LABEL,
            "--so-pin",
            SO_PIN,
        ])?;
        self.pkcs11_tool(&[
            "--token-label",
            LABEL,
            "--init-pin",
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ])?;
        let slots = self.pkcs11_tool(&["--list-token-slots"])?;
        self.slot = slot_of(&slots, LABEL)
            .ok_or_else(|| format!("{}: no slot holds token {LABEL}:\n{slots}", self.name))?;
        Ok(())
    }
}

/// The slot id in `pkcs11-tool --list-token-slots` output whose token has `label`.
fn slot_of(listing: &str, label: &str) -> Option<u64> {
    let mut current = None;
    for line in listing.lines() {
        if let Some(rest) = line.strip_prefix("Slot ") {
            // "Slot 0 (0x2a): SoftHSM slot ID 0x2a"
            current = rest
                .split_once("(0x")
                .and_then(|(_, r)| r.split_once(')'))
                .and_then(|(hex, _)| u64::from_str_radix(hex, 16).ok());
        } else if let Some((key, value)) = line.split_once(':')
            && key.trim() == "token label"
            && value.trim() == label
        {
            return current;
        }
    }
    None
}

fn fresh(dir: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir.to_owned())
}

/// Runs `cmd`; its standard output on success, everything it said on failure.
fn output(cmd: Command) -> Result<String, String> {
    run_tool(cmd).map(|(stdout, _)| stdout)
}

/// Runs `cmd`; on success, its standard output and standard error.
fn run_tool(mut cmd: Command) -> Result<(String, String), String> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok((stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
    } else {
        Err(format!(
            "`{shown}` failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn expect(haystack: &str, needle: &str, what: &str) -> Result<(), String> {
    if haystack.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: expected `{needle}` in:\n{haystack}"))
    }
}

fn write(p: &Provider, name: &str, data: &[u8]) -> Result<(), String> {
    std::fs::write(p.path(name), data).map_err(|e| format!("cannot write {name}: {e}"))
}

const DATA: &[u8] = b"interop: a message for clients we did not write\n";

/// `pkcs11-tool --test` with an RSA and an EC key on the token.
fn pkcs11_tool_self_test(p: &Provider) -> Result<String, String> {
    p.user(&[
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--id",
        "10",
        "--label",
        "rsa",
    ])?;
    p.user(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "11",
        "--label",
        "ec",
    ])?;
    let out = p.user(&["--test"])?;
    expect(&out, "No errors", "pkcs11-tool --test")?;
    Ok("No errors".into())
}

/// pkcs11-tool round trips: mechanism list, sign/verify (checked by openssl), OAEP
/// decryption of what openssl encrypted, AES wrap/unwrap and CBC-PAD across the two keys.
fn pkcs11_tool_round_trips(p: &Provider) -> Result<String, String> {
    let mechanisms = p.pkcs11_tool(&["--token-label", LABEL, "--list-mechanisms"])?;
    for m in [
        "RSA-PKCS,",
        "RSA-X-509,",
        "ECDSA,",
        "AES-KEY-WRAP",
        "AES-CBC-PAD",
    ] {
        expect(&mechanisms, m, "--list-mechanisms")?;
    }
    let count = mechanisms.lines().filter(|l| l.starts_with("  ")).count();
    write(p, "data.txt", DATA)?;

    // ECDSA over a SHA-256 hash that openssl takes (SoftHSMv2 has no CKM_ECDSA_SHA256).
    // pkcs11-tool asks for the DER form so openssl can check it against the token's public
    // key, which also proves CKA_EC_POINT and the raw r||s from C_Sign are right.
    openssl(
        p,
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            "data.sha256",
            "data.txt",
        ],
    )?;
    p.user(&[
        "--sign",
        "--id",
        "11",
        "-m",
        "ECDSA",
        "--signature-format",
        "openssl",
        "-i",
        "data.sha256",
        "-o",
        "ec.sig",
    ])?;
    p.user(&[
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        "11",
        "-o",
        "ec.pub.der",
    ])?;
    openssl(
        p,
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            "ec.pub.der",
            "-in",
            "data.sha256",
            "-sigfile",
            "ec.sig",
        ],
    )?;

    // RSA: PKCS#1 v1.5 signature verified by openssl; OAEP (SHA-256) from openssl decrypted.
    p.user(&[
        "--sign",
        "--id",
        "10",
        "-m",
        "SHA256-RSA-PKCS",
        "-i",
        "data.txt",
        "-o",
        "rsa.sig",
    ])?;
    p.user(&[
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        "10",
        "-o",
        "rsa.pub.der",
    ])?;
    openssl(
        p,
        &[
            "dgst",
            "-sha256",
            "-keyform",
            "DER",
            "-verify",
            "rsa.pub.der",
            "-signature",
            "rsa.sig",
            "data.txt",
        ],
    )?;
    openssl(
        p,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            "rsa.pub.der",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-in",
            "data.txt",
            "-out",
            "oaep.bin",
        ],
    )?;
    let plain = p.user(&[
        "--decrypt",
        "--id",
        "10",
        "-m",
        "RSA-PKCS-OAEP",
        "--hash-algorithm",
        "SHA256",
        "--mgf",
        "MGF1-SHA256",
        "-i",
        "oaep.bin",
    ])?;
    expect(&plain, "clients we did not write", "OAEP decryption")?;

    // AES: a wrapping key, an extractable data key; wrap, unwrap (as a sensitive key, the
    // only way this token unwraps), then CBC-PAD under the original and back under the copy.
    p.user(&[
        "--keygen",
        "--key-type",
        "AES:32",
        "--id",
        "20",
        "--label",
        "kek",
        "--usage-wrap",
    ])?;
    p.user(&[
        "--keygen",
        "--key-type",
        "AES:32",
        "--id",
        "21",
        "--label",
        "data-key",
        "--extractable",
    ])?;
    p.user(&[
        "--wrap",
        "--id",
        "20",
        "--application-id",
        "21",
        "-m",
        "AES-KEY-WRAP",
        "-o",
        "wrapped.bin",
    ])?;
    p.user(&[
        "--unwrap",
        "--id",
        "20",
        "-m",
        "AES-KEY-WRAP",
        "-i",
        "wrapped.bin",
        "--key-type",
        "AES:",
        "--application-id",
        "22",
        "--label",
        "unwrapped",
        "--sensitive",
    ])?;
    let iv = "0f0e0d0c0b0a09080706050403020100";
    p.user(&[
        "--encrypt",
        "--id",
        "21",
        "-m",
        "AES-CBC-PAD",
        "--iv",
        iv,
        "-i",
        "data.txt",
        "-o",
        "data.enc",
    ])?;
    let back = p.user(&[
        "--decrypt",
        "--id",
        "22",
        "-m",
        "AES-CBC-PAD",
        "--iv",
        iv,
        "-i",
        "data.enc",
    ])?;
    expect(
        &back,
        "clients we did not write",
        "decryption under the unwrapped key",
    )?;
    Ok(format!(
        "{count} mechanisms; ECDSA, RSA, OAEP, AES wrap/unwrap ok"
    ))
}

fn openssl(p: &Provider, args: &[&str]) -> Result<String, String> {
    let mut cmd = p.command("openssl");
    cmd.args(args);
    output(cmd)
}

/// GnuTLS's p11tool lists the token, generates an EC key pair on it and test-signs with it.
fn p11tool(p: &Provider) -> Result<String, String> {
    let tool = |args: &[&str]| {
        let mut cmd = p.command("p11tool");
        cmd.arg("--provider")
            .arg(&p.module)
            .args(args)
            .env("GNUTLS_PIN", USER_PIN)
            .env("GNUTLS_SO_PIN", SO_PIN);
        // p11tool reports its checks on standard error.
        run_tool(cmd).map(|(stdout, stderr)| stdout + &stderr)
    };
    let tokens = tool(&["--list-tokens"])?;
    expect(&tokens, &format!("token={LABEL}"), "p11tool --list-tokens")?;
    let url = format!("pkcs11:token={LABEL}");
    tool(&[
        "--login",
        "--generate-privkey=ecdsa",
        "--curve=secp256r1",
        "--label=p11tool-ec",
        &url,
    ])?;
    let keys = tool(&["--login", "--list-privkeys", &url])?;
    expect(&keys, "p11tool-ec", "p11tool --list-privkeys")?;
    let signed = tool(&[
        "--login",
        "--test-sign",
        &format!("{url};object=p11tool-ec;type=private"),
    ])?;
    expect(
        &signed,
        "Verifying against public key in the token... ok",
        "p11tool --test-sign",
    )?;
    Ok("list, EC generate, test-sign ok".into())
}

/// OpenSSL through libp11's engine: a CSR signed by an RSA and an EC token key, each
/// verified by `openssl req -verify` and tied to the token's public key.
fn openssl_csr(p: &Provider) -> Result<String, String> {
    let engines = output({
        let mut c = p.command("openssl");
        c.args(["version", "-e"]);
        c
    })?;
    let dir = engines
        .split('"')
        .nth(1)
        .ok_or_else(|| format!("cannot read ENGINESDIR from `{engines}`"))?;
    let conf = format!(
        "openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = pkcs11\n\
         [pkcs11]\nengine_id = pkcs11\ndynamic_path = {dir}/pkcs11.so\nMODULE_PATH = {}\n\
         init = 0\n",
        p.module.display()
    );
    write(p, "openssl.cnf", conf.as_bytes())?;
    for (object, id) in [("rsa", "10"), ("ec", "11")] {
        let key = format!("pkcs11:token={LABEL};object={object};type=private;pin-value={USER_PIN}");
        let csr = format!("{object}.csr");
        let mut req = p.command("openssl");
        req.args([
            "req",
            "-new",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &key,
            "-subj",
            "/CN=Craton HSM interop",
            "-sha256",
            "-out",
            &csr,
        ])
        .env("OPENSSL_CONF", p.path("openssl.cnf"));
        output(req)?;
        openssl(p, &["req", "-in", &csr, "-verify", "-noout"])?;
        let from_csr = openssl(p, &["req", "-in", &csr, "-pubkey", "-noout"])?;
        let der = format!("{object}.pub.der");
        p.user(&["--read-object", "--type", "pubkey", "--id", id, "-o", &der])?;
        let from_token = openssl(p, &["pkey", "-pubin", "-inform", "DER", "-in", &der])?;
        if from_csr.trim() != from_token.trim() {
            return Err(format!(
                "the {object} CSR does not carry the token's public key"
            ));
        }
    }
    Ok("RSA and EC CSRs verify, keys match the token".into())
}

/// Java SunPKCS11 loads the module, signs and verifies with EC and RSA, and seals with GCM.
fn java(p: &Provider) -> Result<String, String> {
    let conf = format!(
        "name = CratonInterop\nlibrary = {}\nslot = {}\n",
        p.module.display(),
        p.slot
    );
    write(p, "sunpkcs11.cfg", conf.as_bytes())?;
    let mut cmd = p.command("java");
    cmd.arg(client("Interop.java"))
        .arg(p.path("sunpkcs11.cfg"))
        .arg(USER_PIN);
    let out = output(cmd)?;
    expect(&out, "ok:", "Java SunPKCS11")?;
    Ok(out.trim().trim_start_matches("ok: ").into())
}

/// PyKCS11 drives multi-part digest, encryption, decryption, HMAC, signing and verifying.
fn pykcs11(p: &Provider) -> Result<String, String> {
    let mut cmd = p.command(DEBIAN_PYTHON);
    cmd.arg(client("multipart.py"))
        .arg(&p.module)
        .arg(LABEL)
        .arg(USER_PIN);
    let out = output(cmd)?;
    expect(&out, "ok:", "PyKCS11")?;
    Ok(out.trim().trim_start_matches("ok: ").into())
}

/// Runs one of our `cryptoki` clients in a child process (so it gets the provider's
/// environment and a process of its own, as a real application would).
fn native_client(p: &Provider, client: &str) -> Result<String, String> {
    let cmd = p.prepare(native::command(client, &p.module, LABEL, USER_PIN)?);
    let out = output(cmd)?;
    Ok(out.trim().to_owned())
}

/// Debian's Python, where python3-pykcs11 installs (not a pyenv or venv interpreter).
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

fn client(name: &str) -> PathBuf {
    workspace_root()
        .join("craton-pkcs11/tests/interop")
        .join(name)
}

type Scenario = fn(&Provider) -> Result<String, String>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("pkcs11-tool --test", pkcs11_tool_self_test),
    ("pkcs11-tool round trips", pkcs11_tool_round_trips),
    ("p11tool (GnuTLS)", p11tool),
    ("OpenSSL CSR via libp11", openssl_csr),
    ("Java SunPKCS11", java),
    ("PyKCS11 multi-part", pykcs11),
];

fn ensure_clients() -> Result<(), String> {
    ensure_tool("pkcs11-tool", &["opensc"])?;
    ensure_tool("p11tool", &["gnutls-bin"])?;
    ensure_tool("openssl", &["openssl"])?;
    ensure_packages(&format!("test -e {SOFTHSM}"), "SoftHSMv2", &["softhsm2"])?;
    ensure_packages(
        "test -e \"$(openssl version -e | cut -d'\"' -f2)/pkcs11.so\"",
        "libp11's OpenSSL engine",
        &["libengine-pkcs11-openssl"],
    )?;
    ensure_packages(
        &format!("{DEBIAN_PYTHON} -c 'import PyKCS11'"),
        "PyKCS11",
        &["python3-pykcs11"],
    )?;
    // The single-file source launcher needs the compiler, so a JDK, not a JRE.
    ensure_tool("javac", &["default-jdk-headless"])
}

struct Row {
    scenario: String,
    results: Vec<Result<String, String>>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask interop".into());
    }
    ensure_clients()?;
    let module = crate::sidecar::build(false)?;
    // Remote mode: the same module forwarding to a daemon on loopback (mutual TLS, a CA
    // made for this run).
    let remote = crate::remote::start(&fresh(&target_dir().join("interop-remote"))?, "")?;
    let mut providers = vec![
        Provider::craton(&module)?,
        Provider::craton_remote(&module, &remote)?,
        Provider::softhsm()?,
    ];
    for p in &mut providers {
        p.init_token()?;
    }

    let mut rows = Vec::new();
    for (scenario, f) in SCENARIOS {
        let results = providers
            .iter()
            .map(|p| {
                eprintln!("interop: {scenario} on {}", p.name);
                f(p)
            })
            .collect();
        rows.push(Row {
            scenario: (*scenario).to_owned(),
            results,
        });
    }
    for (scenario, client) in native::SCENARIOS {
        let results = providers
            .iter()
            .map(|p| {
                eprintln!("interop: {scenario} on {}", p.name);
                native_client(p, client)
            })
            .collect();
        rows.push(Row {
            scenario: (*scenario).to_owned(),
            results,
        });
    }
    let log = remote.daemon.log();
    let clean = remote.daemon.stop()?;
    report(&providers, &rows).map_err(|e| format!("{e}\n\nthe daemon's log:\n{log}"))?;
    if !clean {
        return Err(format!(
            "the remote-mode daemon did not stop cleanly:\n{log}"
        ));
    }
    daemon_clients()
}

/// The daemon through a client generated from its proto by another language's toolchain:
/// Python's grpcio (from PyPI, in a virtual environment under the target directory).
fn daemon_clients() -> Result<(), String> {
    let dir = fresh(&target_dir().join("interop-daemon"))?;
    let python = grpc_python()?;
    let remote = crate::remote::start(&dir, "")?;
    let target = remote
        .client
        .endpoint
        .trim_start_matches("https://")
        .replace("localhost", "127.0.0.1");
    let mut cmd = Command::new(&python);
    cmd.arg(workspace_root().join("craton-daemon/tests/interop/grpc_client.py"))
        .arg(workspace_root().join("craton-daemon/proto"))
        .arg(dir.join("python-stubs"))
        .arg(&target)
        .arg(&remote.client.ca)
        .arg(&remote.client.cert)
        .arg(&remote.client.key)
        .arg("interop-so-pin")
        .arg(USER_PIN);
    let result = output(cmd);
    let log = remote.daemon.log();
    let clean = remote.daemon.stop()?;
    let out = result.map_err(|e| format!("{e}\ndaemon log:\n{log}"))?;
    expect(&out, "ok:", "Python grpcio client")?;
    if !clean {
        return Err(format!("the daemon did not stop cleanly:\n{log}"));
    }
    println!();
    println!("interop: craton-hsm-daemon over mutual TLS");
    println!(
        "  {:<28} {}",
        "Python grpcio",
        out.trim().trim_start_matches("ok: ")
    );
    Ok(())
}

/// A Python with grpcio and grpcio-tools from PyPI, in `target/grpc-venv` (made once).
fn grpc_python() -> Result<PathBuf, String> {
    ensure_packages(
        &format!("{DEBIAN_PYTHON} -m venv --help"),
        "Python's venv module",
        &["python3-venv"],
    )?;
    let venv = target_dir().join("grpc-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let mut make = Command::new(DEBIAN_PYTHON);
        make.args(["-m", "venv"]).arg(&venv);
        crate::util::run(make)?;
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "--quiet", "grpcio", "grpcio-tools"]);
        crate::util::run(pip)?;
    }
    Ok(python)
}

/// Prints the table: one column per provider, SoftHSMv2 (the last) as the reference. Any
/// failure on one of ours fails the run; SoftHSMv2's failures are notes.
fn report(providers: &[Provider], rows: &[Row]) -> Result<(), String> {
    let (reference, ours) = providers.split_last().ok_or("interop: no providers")?;
    let names: Vec<&str> = ours.iter().map(|p| p.name).collect();
    println!();
    println!(
        "interop: clients we did not write, on {} and on {}",
        names.join(", "),
        reference.name
    );
    let mut header = format!("  {:<34}", "client / step");
    for p in providers {
        header.push_str(&format!(" {:<11}", p.name));
    }
    println!("{header} detail ({})", ours[0].name);
    let mut failures = Vec::new();
    for row in rows {
        let cell = |r: &Result<String, String>| if r.is_ok() { "pass" } else { "FAIL" };
        let (theirs, mine) = row.results.split_last().ok_or("interop: empty row")?;
        let detail = match mine.iter().find_map(|r| r.as_ref().err()) {
            None => mine[0].clone().unwrap_or_default(),
            Some(_) if theirs.is_ok() => "fails here, SoftHSMv2 passes".into(),
            Some(_) => "fails here and on SoftHSMv2".into(),
        };
        let mut line = format!("  {:<34}", row.scenario);
        for r in &row.results {
            line.push_str(&format!(" {:<11}", cell(r)));
        }
        println!("{line} {detail}");
        for (p, r) in ours.iter().zip(mine) {
            if let Err(e) = r {
                failures.push(format!("{} on {}: {e}", row.scenario, p.name));
            }
        }
    }
    for row in rows {
        if let Some(Err(e)) = row.results.last() {
            // The line that says what went wrong, else the last thing the client said.
            let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
            let telling = lines
                .iter()
                .find(|l| l.contains("error") || l.contains("CKR_") || l.contains("xtask:"))
                .or(lines.last())
                .map_or("", |l| l.trim());
            println!("  note: {} on {}: {telling}", row.scenario, reference.name);
        }
    }
    if failures.is_empty() {
        println!("every client passes on {}", names.join(" and "));
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::slot_of;

    #[test]
    fn finds_the_slot_of_a_labelled_token() {
        let listing = "Available slots:\nSlot 0 (0x1f2e): SoftHSM slot ID 0x1f2e\n  \
                       token label        : interop\nSlot 1 (0x1): SoftHSM slot ID 0x1\n  \
                       token state:   uninitialized\n";
        assert_eq!(slot_of(listing, "interop"), Some(0x1f2e));
        assert_eq!(slot_of(listing, "other"), None);
    }
}
