//! The tamper-evident audit log: JSON lines, each chained to the one before by SHA-256, the
//! chain sealed with an Ed25519 signature at intervals, at rotation and at shutdown.
//!
//! Authentication, key-management and seal entries are on disk (written and `fdatasync`ed)
//! before the call that caused them returns. Concurrent callers share that cost by group
//! commit: whoever finds no flush in progress writes everything queued so far with one write
//! and one sync, and every caller whose entry was in that batch returns. Per-operation entries
//! are copied into the journal (`journal.rs`) before their call returns, which is as safe
//! from a crash of the process as a write and costs no system call; the background flusher
//! writes them to the file within [`FLUSH_INTERVAL`] and syncs them within [`SYNC_INTERVAL`].
//!
//! An entry line is `{"seq":…,"ts":…,"event":…,…,"prev":"<hex>","hash":"<hex>"}` where `hash`
//! is SHA-256 of the line up to (not including) `,"hash"` followed by `}`. A seal entry carries
//! `"sig"`: Ed25519 over `"craton-hsm audit seal\0" ‖ seq (u64 BE) ‖ prev`, so a rewritten
//! chain cannot carry valid seals without the installation's audit key. [`verify`] checks a
//! sequence of files against the exported public key and names the first bad entry.
//!
//! What it cannot see from the files alone: a log cut back to exactly one of its seals. The
//! writer keeps the chain head in the store and, on open, refuses to continue a log whose
//! last entry is not that head (it records the mismatch as its first new entry instead).

use crate::config::{AuditConfig, AuditLevel};
use crate::event::{Event, EventSink, KeyOrigin, UserType};
use craton_core::digest;
use craton_core::edwards::Ed25519Key;
use craton_core::{MechanismType, Registry};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

const SEAL_CONTEXT: &[u8] = b"craton-hsm audit seal\0";
const GENESIS: [u8; 32] = [0; 32];

/// The longest a written entry waits for its sync. Authentication, key-management and seal
/// entries are synced before their call returns; per-operation entries are journaled (or,
/// without a journal, written) before their call returns and synced within this interval.
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// How often the background flusher runs: the longest a journaled (or, with
/// `batch_operation_entries`, a batched) operation entry waits to be written to the file.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

/// A queue of journaled (or batched) entries this large is written by the caller that filled
/// it rather than left to the flusher.
const BATCH_BYTES: usize = 64 << 10;

/// Who made the call an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A local process.
    Local {
        /// Process id.
        pid: u32,
        /// Effective user id.
        uid: u32,
    },
    /// A daemon client, by the SHA-256 fingerprint of its certificate (hex).
    Client(String),
}

impl Caller {
    /// This process.
    pub fn this_process() -> Caller {
        Caller::Local {
            pid: std::process::id(),
            uid: rustix::process::geteuid().as_raw(),
        }
    }

    /// The caller as an entry's `caller` field: serialise it once and hand it to
    /// [`with_caller_json`] for every call made on its behalf.
    pub fn json(&self) -> std::sync::Arc<str> {
        let v = match self {
            Caller::Local { pid, uid } => json!({ "pid": pid, "uid": uid }),
            Caller::Client(fp) => json!({ "cert_sha256": fp }),
        };
        v.to_string().into()
    }
}

thread_local! {
    /// The caller that entries made on this thread are attributed to, when a frontend serves
    /// someone other than this process (the daemon, per request).
    static CURRENT_CALLER: std::cell::RefCell<Option<std::sync::Arc<str>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with every audit entry it causes on this thread attributed to `caller` (the
/// daemon wraps each request in this with the client's certificate fingerprint). Without it,
/// entries name this process.
pub fn with_caller<T>(caller: &Caller, f: impl FnOnce() -> T) -> T {
    with_caller_json(&caller.json(), f)
}

/// [`with_caller`] with the caller already serialised by [`Caller::json`].
pub fn with_caller_json<T>(caller: &std::sync::Arc<str>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<std::sync::Arc<str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT_CALLER.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT_CALLER.with(|c| c.borrow_mut().replace(caller.clone()));
    let _restore = Restore(previous);
    f()
}

/// Why the audit log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An earlier write failed; the log stays broken until the engine is reopened.
    #[error("the audit log failed earlier and no longer records")]
    Failed,
    /// The file or its directory could not be created, read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

struct Chain {
    /// Shared so a flush or sync can use it with the lock released (no dup per write).
    file: std::sync::Arc<File>,
    path: PathBuf,
    next_seq: u64,
    prev: [u8; 32],
    /// Lines formatted and chained but not yet written.
    queued: Vec<u8>,
    /// An empty buffer kept for the next swap with `queued`.
    spare: Vec<u8>,
    /// Every entry with a sequence number below this has been written to the file.
    written_next: u64,
    /// Every entry with a sequence number below this has been synced to disk.
    synced_next: u64,
    /// A sync is in progress (it runs with the lock released; writers carry on).
    syncing: bool,
    /// When the file was last synced.
    last_sync: std::time::Instant,
    /// A flush is in progress (its leader holds no lock while it writes).
    flushing: bool,
    since_seal: u32,
    bytes: u64,
    /// The last entry is a seal (a second seal would add nothing).
    sealed_tail: bool,
    /// Threads waiting on `flushed` (waking nobody costs a system call; skip it).
    waiters: usize,
    /// Where each entry is copied before its call returns, when the log runs with one (see
    /// [`crate::journal`]); the flusher then writes the file in batches.
    journal: Option<crate::journal::Journal>,
}

/// The audit log. Cheap to share; implements [`EventSink`].
pub struct AuditLog {
    chain: Mutex<Chain>,
    flushed: Condvar,
    key: Ed25519Key,
    config: AuditConfig,
    registry: Registry,
    /// The caller, serialised once.
    caller_json: std::sync::Arc<str>,
    /// A write or sync failed: the log is broken and every later record fails loudly.
    broken: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("level", &self.config.level)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// An entry's fields before serialisation: static keys, cheap values. Serialised with keys
/// sorted and no whitespace, which is exactly what `serde_json` produces when the verifier
/// re-serialises a parsed entry (its maps keep keys sorted). Each key carries its first
/// eight bytes as a big-endian number, so sorting mostly compares integers.
#[derive(Default)]
pub(crate) struct Fields(Vec<(u64, &'static str, Field)>);

pub(crate) enum Field {
    U64(u64),
    Bool(bool),
    Str(String),
    Static(&'static str),
    /// Already-canonical JSON (a nested object built once).
    Raw(std::sync::Arc<str>),
    /// Already-canonical JSON built for this entry.
    RawOwned(String),
    /// 32 bytes, written as a lowercase hex string.
    Hex([u8; 32]),
    /// An RFC 3339 timestamp (digits and `-:.TZ`: nothing to escape).
    Time([u8; 24]),
    /// A mechanism, as `{"id":"0x…","name":…}`.
    Mechanism(MechanismType),
    Json(Value),
}

impl Fields {
    pub(crate) fn put(&mut self, key: &'static str, value: Field) {
        let mut prefix = [0u8; 8];
        let n = key.len().min(8);
        prefix[..n].copy_from_slice(&key.as_bytes()[..n]);
        self.0.push((u64::from_be_bytes(prefix), key, value));
    }

    fn write_json(mut self, out: &mut Vec<u8>) {
        // The integer order of the prefixes is the byte order of the keys' first eight
        // bytes (a shorter key's zero padding sorts first, as a prefix does).
        self.0
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        out.push(b'{');
        for (i, (_, k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            match v {
                Field::U64(n) => push_decimal(out, *n),
                Field::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
                Field::Str(s) => write_json_str(out, s),
                // Static strings are this module's own names and words (ASCII identifiers,
                // "ok", …): nothing to escape. The debug check keeps it so.
                Field::Static(s) => {
                    debug_assert!(
                        s.bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
                    );
                    out.push(b'"');
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'"');
                }
                Field::Time(t) => {
                    out.push(b'"');
                    out.extend_from_slice(t);
                    out.push(b'"');
                }
                // Mechanism names are identifiers ([A-Z0-9_]): nothing to escape.
                Field::Mechanism(m) => {
                    out.extend_from_slice(b"{\"id\":\"0x");
                    push_lower_hex(out, m.0);
                    match m.name() {
                        Some(n) => {
                            out.extend_from_slice(b"\",\"name\":\"");
                            out.extend_from_slice(n.as_bytes());
                            out.extend_from_slice(b"\"}");
                        }
                        None => out.extend_from_slice(b"\",\"name\":null}"),
                    }
                }
                Field::Raw(r) => out.extend_from_slice(r.as_bytes()),
                Field::RawOwned(r) => out.extend_from_slice(r.as_bytes()),
                Field::Hex(h) => {
                    out.push(b'"');
                    push_hex(out, h);
                    out.push(b'"');
                }
                Field::Json(v) => out.extend_from_slice(v.to_string().as_bytes()),
            }
        }
        out.push(b'}');
    }
}

/// `n` in decimal, as `serde_json` writes an unsigned number.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    push_radix(out, n, 10);
}

/// `n` in lowercase hex without leading zeros (as `{:x}` writes it).
fn push_lower_hex(out: &mut Vec<u8>, n: u64) {
    push_radix(out, n, 16);
}

fn push_radix(out: &mut Vec<u8>, mut n: u64, radix: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's own escaping, so the verifier's re-serialisation matches byte for byte.
    if let Ok(quoted) = serde_json::to_string(s) {
        out.extend_from_slice(quoted.as_bytes());
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    digest::sha256(data)
}

fn seal_message(seq: u64, prev: &[u8; 32]) -> Vec<u8> {
    let mut m = SEAL_CONTEXT.to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(prev);
    m
}

/// Appends one finished line to `out`: the fields plus `prev`, then `hash` over everything
/// before it. The verifier parses and re-serialises the body and must get the same bytes,
/// so an edit that keeps valid JSON (extra spaces, reordered keys) is still caught.
pub(crate) fn chain_line(mut fields: Fields, prev: &[u8; 32], out: &mut Vec<u8>) -> [u8; 32] {
    fields.put("prev", Field::Hex(*prev));
    let start = out.len();
    fields.write_json(out);
    let hash = sha256(&out[start..]);
    out.pop();
    out.extend_from_slice(b",\"hash\":\"");
    push_hex(out, &hash);
    out.extend_from_slice(b"\"}\n");
    hash
}

/// What [`scan`] found at the end of a log file.
struct Tail {
    /// The last entry's sequence number and hash.
    last: Option<(u64, [u8; 32])>,
    /// Bytes up to and including the last newline.
    complete: u64,
    /// The file's length.
    len: u64,
}

/// Reads a log file (a missing one is empty) for its last entry and whether it ends mid-line.
fn scan(path: &Path) -> Result<Tail, AuditError> {
    let mut t = Tail {
        last: None,
        complete: 0,
        len: 0,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(t),
        Err(e) => return Err(io(path)(e)),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io(path))?;
        if n == 0 {
            break;
        }
        t.len += n as u64;
        if line.last() != Some(&b'\n') {
            break;
        }
        t.complete = t.len;
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&line)
            && let (Some(seq), Some(h)) = (
                m.get("seq").and_then(Value::as_u64),
                m.get("hash").and_then(Value::as_str).and_then(unhex32),
            )
        {
            t.last = Some((seq, h));
        }
    }
    Ok(t)
}

/// What opening the log repaired after an unclean stop, for its `log_opened` entry.
#[derive(Default)]
struct Repair {
    /// The file's last entry afterwards (sequence number and hash).
    last: Option<(u64, [u8; 32])>,
    /// Bytes of a last line cut short by a crash mid-write, removed.
    torn_bytes: u64,
    /// Entries copied from the journal into the file.
    recovered: u64,
    /// Why the journal could not be used, if it could not.
    journal_problem: Option<String>,
}

/// Brings the log file at `path` up to date after an unclean stop: cuts a last line that a
/// crash left unfinished (it was never a whole entry, and the journal holds it whole if its
/// call returned), then appends the entries the journal holds beyond the file's last one and
/// syncs. Leaves the journal alone while another process holds it (that process owns the
/// log).
fn repair(path: &Path) -> Result<Repair, AuditError> {
    let t = scan(path)?;
    let mut r = Repair {
        last: t.last,
        ..Repair::default()
    };
    if t.complete < t.len {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        f.set_len(t.complete).map_err(io(path))?;
        f.sync_data().map_err(io(path))?;
        r.torn_bytes = t.len - t.complete;
    }
    let (next, prev) = match t.last {
        Some((seq, h)) => (seq + 1, h),
        None => (0, GENESIS),
    };
    let jpath = crate::journal::path_for(path);
    let Some(found) = crate::journal::recover(&jpath, next, prev).map_err(io(&jpath))? else {
        return Ok(r);
    };
    r.journal_problem = found.unreadable;
    if found.entries > 0 {
        let mut f = open_log(path)?;
        f.write_all(&found.lines).map_err(io(path))?;
        f.sync_data().map_err(io(path))?;
        r.recovered = found.entries;
        r.last = found.last;
    }
    Ok(r)
}

fn event_name_and_fields(e: &Event, registry: &Registry) -> (&'static str, Fields) {
    let mut m = Fields::default();
    let mut put = |k: &'static str, v: Field| m.put(k, v);
    let user = |u: &UserType| match u {
        UserType::So => "so",
        UserType::User => "user",
        UserType::ContextSpecific => "context-specific",
    };
    let mech = |x: &MechanismType| Field::Mechanism(*x);
    let name = match e {
        Event::TokenInitialized { slot } => {
            put("slot", Field::U64(*slot));
            "token_initialized"
        }
        Event::PinInitialized { slot } => {
            put("slot", Field::U64(*slot));
            "pin_initialized"
        }
        Event::PinChanged { slot, user: u } => {
            put("slot", Field::U64(*slot));
            put("user", Field::Static(user(u)));
            "pin_changed"
        }
        Event::Login {
            slot,
            session,
            user: u,
            success,
            failures,
            threshold,
        } => {
            put("slot", Field::U64(*slot));
            put("session", Field::U64(*session));
            put("user", Field::Static(user(u)));
            put(
                "result",
                Field::Static(if *success { "ok" } else { "pin_incorrect" }),
            );
            put("failures", Field::U64(u64::from(*failures)));
            put("lockout_threshold", Field::U64(u64::from(*threshold)));
            "login"
        }
        Event::PinNearLockout {
            slot,
            user: u,
            remaining,
        } => {
            put("slot", Field::U64(*slot));
            put("user", Field::Static(user(u)));
            put("attempts_left", Field::U64(u64::from(*remaining)));
            "pin_near_lockout"
        }
        Event::PinLocked { slot, user: u } => {
            put("slot", Field::U64(*slot));
            put("user", Field::Static(user(u)));
            "pin_locked"
        }
        Event::Logout { slot } => {
            put("slot", Field::U64(*slot));
            "logout"
        }
        Event::KeyCreated {
            slot,
            handles,
            mechanism,
            origin,
        } => {
            put("slot", Field::U64(*slot));
            put("objects", Field::Json(json!(handles)));
            if let Some(x) = mechanism {
                put("mechanism", mech(x));
                put(
                    "fips_approved",
                    Field::Bool(registry.get(*x).is_some_and(|r| r.fips_approved)),
                );
            }
            match origin {
                KeyOrigin::Generated => "key_generated",
                KeyOrigin::Imported => "key_imported",
                KeyOrigin::Unwrapped => "key_unwrapped",
                KeyOrigin::Derived => "key_derived",
                KeyOrigin::Copied => "key_copied",
            }
        }
        Event::ObjectDestroyed { slot, handle } => {
            put("slot", Field::U64(*slot));
            put("object", Field::U64(*handle));
            "object_destroyed"
        }
        Event::Operation {
            slot,
            session,
            kind,
            mechanism,
            key,
            success,
        } => {
            put("slot", Field::U64(*slot));
            put("session", Field::U64(*session));
            put("operation", Field::Static(kind));
            put("mechanism", mech(mechanism));
            put(
                "fips_approved",
                Field::Bool(registry.get(*mechanism).is_some_and(|r| r.fips_approved)),
            );
            put("object", Field::U64(*key));
            put(
                "result",
                Field::Static(if *success { "ok" } else { "failed" }),
            );
            "operation"
        }
        Event::RecordCorrupt { slot, detail } => {
            put("slot", Field::U64(*slot));
            put("detail", Field::Str(detail.clone()));
            "store_record_corrupt"
        }
        Event::MemoryNotLocked => "memory_not_locked",
        Event::RandomFailure { slot, detail } => {
            put("slot", Field::U64(*slot));
            put("detail", Field::Str(detail.clone()));
            "random_generation_failed"
        }
        Event::Restored { created } => {
            put("backup_created", Field::U64(*created));
            "store_restored"
        }
        Event::BackupCreated {
            tokens,
            objects,
            passphrase,
        } => {
            put("tokens", Field::U64(*tokens as u64));
            put("objects", Field::U64(*objects as u64));
            put(
                "protection",
                Field::Static(if *passphrase { "passphrase" } else { "key" }),
            );
            "backup_created"
        }
        Event::GcmInvocations {
            slot,
            key,
            used,
            limit,
            refused,
        } => {
            put("slot", Field::U64(*slot));
            put("object", Field::U64(*key));
            put("invocations", Field::U64(*used));
            put("limit", Field::U64(*limit));
            if *refused {
                put("result", Field::Static("refused"));
                "gcm_invocation_limit_reached"
            } else {
                "gcm_invocation_warning"
            }
        }
        Event::IntegrityChecked {
            module,
            passed,
            detail,
            enforced,
        } => {
            put("module", Field::Str(module.clone()));
            put(
                "result",
                Field::Static(if *passed { "ok" } else { "failed" }),
            );
            if !*passed {
                put("detail", Field::Str(detail.clone()));
            }
            put("enforced", Field::Bool(*enforced));
            "integrity_check"
        }
        Event::ConnectionRefused { peer, reason } => {
            put("peer", Field::Str(peer.clone()));
            put("detail", Field::Str(reason.clone()));
            put("result", Field::Static("refused"));
            "connection_refused"
        }
        Event::CrlsLoaded { fresh, stale } => {
            put("fresh", Field::U64(*fresh));
            put("stale", Field::RawOwned(json!(stale).to_string()));
            "crls_loaded"
        }
        Event::TlsReloaded { success, detail } => {
            put(
                "result",
                Field::Static(if *success { "ok" } else { "failed" }),
            );
            if !*success {
                put("detail", Field::Str(detail.clone()));
            }
            "tls_reloaded"
        }
        Event::PinAttemptsThrottled => {
            put("result", Field::Static("refused"));
            "pin_attempts_throttled"
        }
        Event::Frontend {
            frontend,
            pid,
            attached,
        } => {
            put("frontend", Field::Static(frontend));
            put("pid", Field::U64(u64::from(*pid)));
            if *attached {
                "frontend_attached"
            } else {
                "frontend_detached"
            }
        }
        Event::ModuleStarted {
            kats,
            post_micros,
            config,
            store,
        } => {
            put("post_kats", Field::U64(*kats as u64));
            put("post_micros", Field::U64(*post_micros));
            put("result", Field::Static("ok"));
            put("config", Field::Str(config.clone()));
            put("store", Field::Str(store.clone()));
            "module_started"
        }
    };
    (name, m)
}

/// Opens a log file for appending, creating it (0640) and its directory (0750) when missing.
fn open_log(path: &Path) -> Result<File, AuditError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(io(dir))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(io(path))
}

/// Appends one entry to the log at `path` without a seal, for events that happen when the
/// audit key is out of reach (the store holding it could not be opened). The entry continues
/// the chain; the next engine start seals it (and notes that the file ran past its head).
pub fn append_unsealed(path: &Path, event: &str, detail: &str) -> Result<(), AuditError> {
    let mut file = open_log(path)?;
    // Entries a crash left only in the journal come first (unless a running process holds
    // the journal: then it owns the log and writes them itself).
    let (seq, prev) = match repair(path)?.last {
        Some((seq, h)) => (seq + 1, h),
        None => (0, GENESIS),
    };
    let mut fields = Fields::default();
    fields.put("seq", Field::U64(seq));
    fields.put("ts", Field::Str(crate::clock::rfc3339_now()));
    fields.put("event", Field::Str(event.to_owned()));
    fields.put("caller", Field::Raw(Caller::this_process().json()));
    fields.put("detail", Field::Str(detail.to_owned()));
    let mut line = Vec::new();
    chain_line(fields, &prev, &mut line);
    file.write_all(&line).map_err(io(path))?;
    file.sync_data().map_err(io(path))
}

impl AuditLog {
    /// Opens (creating with its directory) the log at `config.path`-or-`default_path`,
    /// continuing the chain from its last entry. `expected_head` is the chain head the store
    /// remembers; if the file ends elsewhere (truncated or replaced), the first new entry
    /// records the mismatch.
    pub fn open(
        default_path: &Path,
        config: &AuditConfig,
        key: Ed25519Key,
        registry: Registry,
        expected_head: Option<(u64, [u8; 32])>,
    ) -> Result<AuditLog, AuditError> {
        let path = config
            .path
            .clone()
            .unwrap_or_else(|| default_path.to_owned());
        let file = open_log(&path)?;
        let repaired = repair(&path)?;
        let last = repaired.last;
        let bytes = file.metadata().map_err(io(&path))?.len();
        // The journal serves entries written by the background flusher; with every entry
        // synced by its caller, or batched by choice, there is nothing for it to do.
        let mut journal_problem = repaired.journal_problem;
        let journal = if config.sync_operation_entries || config.batch_operation_entries {
            None
        } else {
            let jpath = crate::journal::path_for(&path);
            match crate::journal::Journal::open(&jpath) {
                Ok(j) => Some(j),
                Err(e) => {
                    // Still correct without it: each entry is then written by its caller.
                    journal_problem = Some(format!("{}: {e}", jpath.display()));
                    None
                }
            }
        };
        let (next_seq, prev) = match last {
            Some((seq, h)) => (seq + 1, h),
            None => (0, GENESIS),
        };
        let log = AuditLog {
            chain: Mutex::new(Chain {
                file: std::sync::Arc::new(file),
                path,
                next_seq,
                prev,
                queued: Vec::new(),
                spare: Vec::new(),
                written_next: next_seq,
                synced_next: next_seq,
                syncing: false,
                last_sync: std::time::Instant::now(),
                flushing: false,
                since_seal: 0,
                bytes,
                sealed_tail: false,
                waiters: 0,
                journal,
            }),
            flushed: Condvar::new(),
            key,
            config: config.clone(),
            registry,
            caller_json: Caller::this_process().json(),
            broken: std::sync::atomic::AtomicBool::new(false),
        };
        let mut opened = Fields::default();
        if let Some((seq, head)) = expected_head
            && last != Some((seq, head))
        {
            let found = last.map(|l| l.0);
            let why = match found {
                Some(f) if f > seq => "the file continues past the recorded head (an unclean stop)",
                _ => "the file ends before the recorded head (truncated or replaced)",
            };
            opened.put(
                "chain_mismatch",
                Field::Json(json!({
                    "expected_seq": seq,
                    "expected_hash": hex(&head),
                    "found_seq": found,
                    "meaning": why,
                })),
            );
        }
        if repaired.torn_bytes > 0 {
            opened.put("torn_bytes_removed", Field::U64(repaired.torn_bytes));
        }
        if repaired.recovered > 0 {
            opened.put("recovered_from_journal", Field::U64(repaired.recovered));
        }
        if let Some(why) = journal_problem {
            opened.put("journal_problem", Field::Str(why));
        }
        log.append("log_opened", opened, false)?;
        Ok(log)
    }

    /// The public half of the audit key (hex), for `craton-hsm audit export-public-key`.
    pub fn public_key_hex(&self) -> String {
        hex(&self.key.public_bytes())
    }

    /// The current chain head: (last sequence number, its hash).
    pub fn head(&self) -> Option<(u64, [u8; 32])> {
        let c = self.chain.lock().ok()?;
        c.next_seq.checked_sub(1).map(|s| (s, c.prev))
    }

    /// Writes a seal now (also done every `seal_every` entries and on drop).
    pub fn seal(&self) -> Result<(), AuditError> {
        let c = self.lock();
        if c.sealed_tail {
            // The last entry is a seal already (a periodic one, perhaps still queued or not
            // yet synced): make it and everything before it durable.
            return match c.next_seq.checked_sub(1) {
                Some(last) => self.settle(c, last, true).map(drop),
                None => Ok(()),
            };
        }
        drop(c);
        self.append("seal", Fields::default(), true)
    }

    /// The seal due every `seal_every` entries: as durable as operation entries (written now,
    /// synced within [`SYNC_INTERVAL`] unless `sync_operation_entries` asks for a sync now),
    /// so a call does not wait for a sync just because its entry was the thousandth. Seals at
    /// shutdown and rotation are synced before they return ([`AuditLog::seal`]).
    fn periodic_seal(&self) -> Result<(), AuditError> {
        if self.lock().sealed_tail {
            return Ok(());
        }
        let durable = self.config.sync_operation_entries;
        self.append_with("seal", Fields::default(), true, durable)
    }

    /// Rotates: seals the current file, renames it to `<name>.<first-seq-of-next>`, and starts
    /// a new file whose first entry links to the old one. Returns the rotated file's path.
    pub fn rotate(&self) -> Result<PathBuf, AuditError> {
        self.rotate_if(false).map(|r| r.unwrap_or_default())
    }

    /// Rotates when the file has reached `rotate_bytes` (checked again under the lock, so
    /// that the flusher and a caller both seeing a full file rotate it once).
    fn rotate_if_full(&self) -> Result<(), AuditError> {
        self.rotate_if(true).map(|_| ())
    }

    fn rotate_if(&self, only_if_full: bool) -> Result<Option<PathBuf>, AuditError> {
        let full = |c: &Chain| c.bytes >= self.config.rotate_bytes;
        if only_if_full && !full(&self.lock()) {
            return Ok(None);
        }
        self.seal()?;
        let mut c = self.lock();
        // Every entry chained so far goes into the file being closed: wait for a write in
        // progress, then write what is still queued.
        loop {
            while c.flushing {
                c = self.wait(c);
            }
            if c.queued.is_empty() {
                break;
            }
            c = self.flush(c);
        }
        if only_if_full && !full(&c) {
            return Ok(None);
        }
        let rotated = c.path.with_extension(format!("log.{}", c.next_seq));
        if rotated.exists() {
            // Rotated a moment ago with no entry since: renaming again would replace it.
            return Ok(Some(rotated));
        }
        std::fs::rename(&c.path, &rotated).map_err(io(&c.path))?;
        c.file = std::sync::Arc::new(open_log(&c.path)?);
        c.bytes = 0;
        drop(c);
        let mut m = Fields::default();
        m.put(
            "previous_file",
            Field::Json(json!(
                rotated
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            )),
        );
        self.append("log_rotated", m, false)?;
        Ok(Some(rotated))
    }

    /// Writes the queue; called with the lock held and no write in progress, returns with
    /// the lock held again.
    fn flush<'a>(
        &'a self,
        mut c: std::sync::MutexGuard<'a, Chain>,
    ) -> std::sync::MutexGuard<'a, Chain> {
        // Swap in the spare buffer so neither side allocates per flush.
        let spare = std::mem::take(&mut c.spare);
        let mut batch = std::mem::replace(&mut c.queued, spare);
        let upto = c.next_seq;
        let journaled_upto = c.journal.as_ref().map(crate::journal::Journal::position);
        c.flushing = true;
        let file = c.file.clone();
        drop(c);
        let result = (&*file).write_all(&batch);
        let written = batch.len() as u64;
        batch.clear();
        let mut c = self.lock();
        c.flushing = false;
        c.spare = batch;
        match result {
            Ok(()) => {
                c.written_next = c.written_next.max(upto);
                c.bytes += written;
                if let (Some(j), Some(at)) = (c.journal.as_mut(), journaled_upto) {
                    j.written_upto(at);
                }
            }
            Err(_) => self
                .broken
                .store(true, std::sync::atomic::Ordering::Release),
        }
        if c.waiters > 0 {
            self.flushed.notify_all();
        }
        c
    }

    /// Syncs everything written so far; called with the lock held and no sync in progress.
    /// Writers are not held up: the sync runs on a cloned descriptor with the lock released.
    fn sync<'a>(
        &'a self,
        mut c: std::sync::MutexGuard<'a, Chain>,
    ) -> std::sync::MutexGuard<'a, Chain> {
        let upto = c.written_next;
        c.syncing = true;
        let file = c.file.clone();
        drop(c);
        let result = file.sync_data();
        let mut c = self.lock();
        c.syncing = false;
        match result {
            Ok(()) => {
                c.synced_next = c.synced_next.max(upto);
                c.last_sync = std::time::Instant::now();
            }
            Err(_) => self
                .broken
                .store(true, std::sync::atomic::Ordering::Release),
        }
        if c.waiters > 0 {
            self.flushed.notify_all();
        }
        c
    }

    /// Writes queued entries, and syncs written ones once the last sync is older than
    /// [`SYNC_INTERVAL`] (the background flusher calls this every [`FLUSH_INTERVAL`]).
    pub fn sync_pending(&self) -> Result<(), AuditError> {
        let mut c = self.lock();
        if !c.flushing && !c.queued.is_empty() {
            c = self.flush(c);
        }
        if !c.syncing && c.synced_next < c.written_next && c.last_sync.elapsed() >= SYNC_INTERVAL {
            c = self.sync(c);
        }
        if self.is_failed() {
            return Err(AuditError::Failed);
        }
        // Batched operation entries grow the file here, so the size check happens here too.
        let rotate_due = self.config.rotate_bytes != 0 && c.bytes >= self.config.rotate_bytes;
        drop(c);
        if rotate_due {
            self.rotate_if_full()?;
        }
        Ok(())
    }

    /// Returns once entry `seq` is written (and, if `durable`, synced). Phase 1: one writer
    /// at a time writes the whole queue. Phase 2: a sync that started after the entry was
    /// written; concurrent callers share one.
    fn settle<'a>(
        &'a self,
        mut c: std::sync::MutexGuard<'a, Chain>,
        seq: u64,
        durable: bool,
    ) -> Result<std::sync::MutexGuard<'a, Chain>, AuditError> {
        while c.written_next <= seq {
            if self.is_failed() {
                return Err(AuditError::Failed);
            }
            if c.flushing {
                c = self.wait(c);
                continue;
            }
            c = self.flush(c);
        }
        while durable && c.synced_next <= seq {
            if self.is_failed() {
                return Err(AuditError::Failed);
            }
            if c.syncing {
                c = self.wait(c);
                continue;
            }
            c = self.sync(c);
        }
        Ok(c)
    }

    fn wait<'a>(
        &self,
        mut c: std::sync::MutexGuard<'a, Chain>,
    ) -> std::sync::MutexGuard<'a, Chain> {
        c.waiters += 1;
        let mut c = self.flushed.wait(c).unwrap_or_else(|p| p.into_inner());
        c.waiters -= 1;
        c
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Formats and chains an entry, then waits until it is on disk (group commit).
    fn append(&self, event: &'static str, fields: Fields, seal: bool) -> Result<(), AuditError> {
        self.append_with(event, fields, seal, true)
    }

    /// Formats and chains an entry, then returns once it is written (and, if `durable`, once
    /// it is synced). Group commit: the first waiter with no flush in progress writes the
    /// whole queue with one write (and one sync when any waiter needs it, or when the last
    /// sync is older than [`SYNC_INTERVAL`]); the others wait for a flush that covers them.
    fn append_with(
        &self,
        event: &'static str,
        mut fields: Fields,
        seal: bool,
        durable: bool,
    ) -> Result<(), AuditError> {
        let mut c = self.lock();
        if self.is_failed() {
            return Err(AuditError::Io {
                path: c.path.clone(),
                source: std::io::Error::other("an earlier audit write failed"),
            });
        }
        let seq = c.next_seq;
        fields.put("seq", Field::U64(seq));
        fields.put("ts", Field::Time(crate::clock::rfc3339_now_bytes()));
        fields.put("event", Field::Static(event));
        let caller = CURRENT_CALLER
            .with(|c| c.borrow().clone())
            .unwrap_or_else(|| self.caller_json.clone());
        fields.put("caller", Field::Raw(caller));
        if seal {
            let sig = self
                .key
                .sign(&seal_message(seq, &c.prev))
                .unwrap_or_default();
            fields.put("sig", Field::Str(hex(&sig)));
        }
        let prev = c.prev;
        let from = c.queued.len();
        let hash = chain_line(fields, &prev, &mut c.queued);
        let chain = &mut *c;
        let journaled = chain
            .journal
            .as_mut()
            .is_some_and(|j| j.append(&chain.queued[from..]));
        c.prev = hash;
        c.next_seq = seq + 1;
        c.since_seal = if seal { 0 } else { c.since_seal + 1 };
        c.sealed_tail = seal;
        let due_seal = !seal && c.since_seal >= self.config.seal_every;
        // Journaled or batched operation entries: chained and queued now, written to the
        // file by the flusher (a journaled one is already beyond the reach of a crash).
        let batched = !durable && (journaled || self.config.batch_operation_entries);
        if batched && c.queued.len() < BATCH_BYTES {
            drop(c);
            if due_seal {
                self.periodic_seal()?;
            }
            return Ok(());
        }
        let c = self.settle(c, seq, durable)?;
        let rotate_due =
            self.config.rotate_bytes != 0 && c.bytes >= self.config.rotate_bytes && !seal;
        drop(c);
        if due_seal {
            self.periodic_seal()?;
        }
        if rotate_due && event != "log_rotated" {
            self.rotate_if_full()?;
        }
        Ok(())
    }

    fn wanted(&self, e: &Event) -> bool {
        match self.config.level {
            AuditLevel::None => false,
            AuditLevel::All => true,
            AuditLevel::KeyManagement => !matches!(e, Event::Operation { .. }),
        }
    }
}

impl EventSink for AuditLog {
    fn record(&self, event: &Event) {
        if !self.wanted(event) {
            return;
        }
        let (name, fields) = event_name_and_fields(event, &self.registry);
        // Per-operation entries are written before the call returns and synced within
        // SYNC_INTERVAL; everything else is synced before the call returns.
        let durable =
            self.config.sync_operation_entries || !matches!(event, Event::Operation { .. });
        // A failed audit write is sticky (`broken`). The event sink interface has no error
        // path; the engine checks `is_failed` after recording and fails the call.
        let _ = self.append_with(name, fields, false, durable);
    }
}

impl AuditLog {
    /// Whether a write failed; the engine refuses further work when it has.
    pub fn is_failed(&self) -> bool {
        // An atomic, not the chain's lock: the engine asks before every operation.
        self.broken.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.seal();
    }
}

/// An entry line that passed its own checks.
pub(crate) struct CheckedEntry {
    pub(crate) fields: serde_json::Map<String, Value>,
    pub(crate) seq: u64,
    pub(crate) prev: [u8; 32],
    pub(crate) hash: [u8; 32],
}

/// The checks one line passes on its own (the chain is the caller's): a JSON object in
/// canonical form, with a `hash` that is SHA-256 of the line before `,"hash"` closed with `}`,
/// a sequence number and a previous hash. Re-serialising the body canonically means an edit
/// that keeps the JSON valid but changes a byte still changes the hash. The verifier and the
/// journal's recovery both use it.
pub(crate) fn check_line(line: &str) -> Result<CheckedEntry, &'static str> {
    let cut = line.rfind(",\"hash\":\"").ok_or("entry has no hash")?;
    let body = format!("{}}}", &line[..cut]);
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
        return Err("not a JSON object");
    };
    let hash = fields
        .get("hash")
        .and_then(Value::as_str)
        .and_then(unhex32)
        .ok_or("malformed hash")?;
    let body_value = serde_json::from_str::<Value>(&body).map_err(|_| "entry body is not JSON")?;
    // (Compared as text: `Value == String` would compare against a JSON string value.)
    let canonical = body_value.to_string();
    if canonical != body {
        return Err("entry is not in canonical form (edited)");
    }
    if sha256(body.as_bytes()) != hash {
        return Err("hash does not match the entry (edited)");
    }
    let seq = fields
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("missing seq")?;
    let prev = fields
        .get("prev")
        .and_then(Value::as_str)
        .and_then(unhex32)
        .ok_or("missing prev")?;
    Ok(CheckedEntry {
        fields,
        seq,
        prev,
        hash,
    })
}

/// The first problem [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {why}")]
pub struct VerifyError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number (0 when the problem is the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Seals whose signatures verified.
    pub seals: u64,
    /// Sequence number of the last entry.
    pub last_seq: u64,
}

/// The files of the log whose live file is `live`, oldest first: the rotated ones
/// (`<name>.<first sequence number>`, in number order), then `live` if it exists. What
/// [`verify`] takes.
pub fn log_files(live: &Path) -> Vec<PathBuf> {
    let dir = live.parent().unwrap_or(Path::new("."));
    let prefix = format!(
        "{}.",
        live.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut rotated: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_str()?
                .strip_prefix(&prefix)?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if live.exists() {
        files.push(live.to_owned());
    }
    files
}

/// Verifies log files, oldest first (rotated files, then the live one), against the audit
/// public key (32 bytes). Checks every line's hash, the chain and sequence across files, and
/// every seal's signature; the last entry must be a seal, otherwise the tail is unprotected
/// (the log was cut, or the writer died before sealing).
pub fn verify(paths: &[PathBuf], public_key: &[u8]) -> Result<VerifyReport, VerifyError> {
    verify_with_progress(paths, public_key, &mut |_, _| {})
}

/// [`verify`], telling `progress` how many bytes of how many it has checked (after each
/// entry), so a command line can show how far a long verification has got.
pub fn verify_with_progress(
    paths: &[PathBuf],
    public_key: &[u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut done = 0u64;
    let bad = |file: &Path, line: usize, why: String| VerifyError {
        file: file.to_owned(),
        line,
        why,
    };
    let first = paths
        .first()
        .ok_or_else(|| bad(Path::new(""), 0, "no files given".into()))?;
    let key = Ed25519Key::from_public(public_key)
        .map_err(|_| bad(first, 0, "the public key is not an Ed25519 key".into()))?;
    let mut prev: Option<[u8; 32]> = None;
    let mut expected_seq: Option<u64> = None;
    let mut report = VerifyReport {
        entries: 0,
        seals: 0,
        last_seq: 0,
    };
    let mut last_was_seal = false;
    for path in paths {
        let file = File::open(path).map_err(|e| bad(path, 0, e.to_string()))?;
        let mut mode_ok = true;
        if let Ok(meta) = file.metadata() {
            mode_ok = meta.permissions().mode() & 0o002 == 0;
        }
        if !mode_ok {
            return Err(bad(path, 0, "the file is world-writable".into()));
        }
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| bad(path, n, e.to_string()))?;
            done += line.len() as u64 + 1;
            progress(done.min(total), total);
            let CheckedEntry {
                fields,
                seq,
                prev: entry_prev,
                hash: stated,
            } = check_line(&line).map_err(|why| bad(path, n, why.into()))?;
            match (expected_seq, prev) {
                (Some(want), _) if seq != want => {
                    return Err(bad(
                        path,
                        n,
                        format!(
                            "sequence {seq} where {want} was expected (deleted, inserted or reordered)"
                        ),
                    ));
                }
                (_, Some(p)) if entry_prev != p => {
                    return Err(bad(
                        path,
                        n,
                        "chain broken: prev does not match the previous entry".into(),
                    ));
                }
                (None, None) if seq == 0 && entry_prev != GENESIS => {
                    return Err(bad(path, n, "first entry does not start the chain".into()));
                }
                _ => {}
            }
            last_was_seal = false;
            if let Some(sig) = fields.get("sig") {
                let sig = sig
                    .as_str()
                    .and_then(|s| {
                        (0..s.len())
                            .step_by(2)
                            .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                            .collect::<Option<Vec<u8>>>()
                    })
                    .ok_or_else(|| bad(path, n, "malformed seal signature".into()))?;
                key.verify(&seal_message(seq, &entry_prev), &sig)
                    .map_err(|_| {
                        bad(
                            path,
                            n,
                            "seal signature does not verify (chain rewritten or wrong key)".into(),
                        )
                    })?;
                report.seals += 1;
                last_was_seal = true;
            }
            prev = Some(stated);
            expected_seq = Some(seq + 1);
            report.entries += 1;
            report.last_seq = seq;
        }
    }
    let last = paths.last().unwrap_or(first);
    if report.entries == 0 {
        return Err(bad(last, 0, "the log is empty".into()));
    }
    if report.seals == 0 {
        return Err(bad(
            last,
            0,
            "no seal anywhere: the chain is not protected".into(),
        ));
    }
    if !last_was_seal {
        return Err(bad(
            last,
            0,
            "entries after the last seal (the log was cut, or the writer stopped without sealing)"
                .into(),
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_serialise_as_serde_json_re_serialises_them() {
        let mut f = Fields::default();
        // Keys sharing their first eight bytes, a key that is another's prefix, and numbers
        // at the edges.
        f.put("sessions_open", Field::U64(u64::MAX));
        f.put("session", Field::U64(0));
        f.put("sessions", Field::U64(10));
        f.put("a", Field::Bool(true));
        f.put("mechanism", Field::Mechanism(MechanismType(0x1041)));
        f.put("vendor_mech", Field::Mechanism(MechanismType(0x8000_0001)));
        f.put("ts", Field::Time(*b"2026-11-27T12:34:56.789Z"));
        f.put("text", Field::Str("a \"quoted\"\n\u{1}line".into()));
        let mut line = Vec::new();
        f.write_json(&mut line);
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap().as_bytes(),
            &line[..]
        );
        assert_eq!(parsed["mechanism"]["id"], "0x1041");
        assert_eq!(parsed["mechanism"]["name"], "ECDSA");
        assert_eq!(parsed["vendor_mech"]["name"], Value::Null);
        assert_eq!(parsed["sessions_open"], u64::MAX);
    }
}
