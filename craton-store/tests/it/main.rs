//! Integration tests of craton-store: the engine's PKCS#11 rules, persistence, attacks it
//! resists, concurrency and crash safety. One binary, one module per behaviour.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod audit_crash;
mod audit_log;
mod backup_restore;
mod concurrency;
mod crash_safety;
mod format_fixture;
mod gcm_limit;
mod key_management_attacks;
mod login_lockout;
mod objects;
mod operation_state;
mod output_buffers;
mod session_rules;
mod store_files;
mod v3_2;
mod wrapping;

use craton_core::attribute::{AttrValue, AttributeType as A};
use craton_store::{Config, Event, EventSink, Hsm, SessionHandle, UserType};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const SO_PIN: &[u8] = b"so-pin-0000";
pub const USER_PIN: &[u8] = b"user-pin-0000";

/// A deterministic xorshift generator: the crash tests' random counts and moments.
#[derive(Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn draw(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A child process running this test binary's ignored test `test` with `env` set to `dir`,
/// and its standard output line by line (a thread reads it until the child ends).
#[derive(Debug)]
pub struct Child {
    pub process: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
}

impl Child {
    pub fn spawn(test: &str, env: &str, dir: &Path) -> Child {
        use std::io::BufRead;
        let mut process = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--ignored", "--nocapture", "-q"])
            .env(env, dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Child {
            process,
            lines,
            reader,
        }
    }

    /// Kills the child (SIGKILL) and returns the lines it wrote that were not yet received.
    pub fn kill(mut self) -> Vec<String> {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
        self.reader.join().unwrap();
        self.lines.try_iter().collect()
    }
}

/// A scratch state directory, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("craton-store-it-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fast configuration (low PBKDF2 count, lockout after 3) on `dir`.
pub fn config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.token.state_dir = Some(dir.to_owned());
    c.token.slots = 2;
    c.security.pbkdf2_iterations = 1000;
    c.security.max_failed_logins = 3;
    // Frequent seals so the audit tests see several in a short workload.
    c.audit.seal_every = 5;
    c
}

/// Collects events for assertions.
#[derive(Debug, Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn record(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

/// An initialised token in slot 0 with the user PIN set.
pub fn ready(dir: &Path) -> Hsm {
    let hsm = Hsm::open(config(dir)).expect("open");
    init(&hsm);
    hsm
}

pub fn init(hsm: &Hsm) {
    hsm.init_token(0, SO_PIN, "test").unwrap();
    let so = hsm.open_session(0, true).unwrap();
    hsm.login(so, UserType::So, SO_PIN).unwrap();
    hsm.init_pin(so, USER_PIN).unwrap();
    hsm.close_session(so).unwrap();
}

/// A read/write session with the user logged in.
pub fn user_session(hsm: &Hsm) -> SessionHandle {
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    s
}

pub fn b(v: bool) -> AttrValue {
    AttrValue::Bool(v)
}

pub fn label(l: &str) -> (A, AttrValue) {
    (A::LABEL, AttrValue::Bytes(l.as_bytes().to_vec()))
}

pub fn recorder() -> Arc<Recorder> {
    Arc::new(Recorder::default())
}

/// A small tmpfs mounted on a directory (to run out of space on purpose), unmounted on drop.
/// Mounting needs root (CAP_SYS_ADMIN). CI runs as root and must not skip; elsewhere the test
/// says loudly that it did not run instead of passing silently.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "the {test} test must run in CI: mounting a tmpfs failed (run as root)"
            );
            eprintln!("SKIPPED {test} test: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
