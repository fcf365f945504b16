//! The audit log: what it records, and that every kind of tampering is caught by `verify`.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use craton_store::Event;
use craton_store::audit::verify;
use craton_store::config::AuditLevel;
use serde_json::Value;
use std::sync::Arc;

fn hex_decode(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Runs a small workload and returns (log path, public key).
fn workload(dir: &Path) -> (PathBuf, Vec<u8>) {
    let hsm = ready(dir);
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = hsm.open_session(0, true).unwrap();
    let _ = hsm.login(s, UserType::User, b"wrong-pin-1");
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    let (_, private) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            &[(
                A::EC_PARAMS,
                AttrValue::Bytes(craton_core::ec::Curve::P256.ec_params().to_vec()),
            )],
            &[(A::SIGN, b(true))],
        )
        .unwrap();
    for _ in 0..3 {
        hsm.sign_init(s, &Mechanism::EcdsaWith(HashAlg::Sha256), private)
            .unwrap();
        hsm.sign(s, b"audited").unwrap();
    }
    let path = hsm.config().audit_path();
    drop(hsm);
    (path, public)
}

/// A 32-byte HMAC signing key (a token object when `token`, visible to every session).
fn hmac_key(hsm: &Hsm, s: SessionHandle, token: bool) -> craton_store::ObjectHandle {
    hsm.generate_key(
        s,
        &Mechanism::Generate(M::GENERIC_SECRET_KEY_GEN),
        &[
            (A::VALUE_LEN, AttrValue::Ulong(32)),
            (A::SIGN, b(true)),
            (A::TOKEN, b(token)),
        ],
    )
    .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_log_records_security_events_and_verifies() {
    let dir = Scratch::new("audit-ok");
    let (path, public) = workload(dir.path());
    let report = verify(std::slice::from_ref(&path), &public).unwrap();
    assert!(report.seals >= 2, "{report:?}");
    let entries: Vec<Value> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = entries
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for wanted in [
        "log_opened",
        "module_started",
        "token_initialized",
        "pin_initialized",
        "login",
        "key_generated",
        "operation",
        "seal",
    ] {
        assert!(events.contains(&wanted), "{wanted} missing from {events:?}");
    }
    let failed_login = entries
        .iter()
        .find(|e| e["event"] == "login" && e["result"] == "pin_incorrect")
        .unwrap();
    assert_eq!(failed_login["failures"], 1);
    assert_eq!(failed_login["lockout_threshold"], 3);
    let sign = entries.iter().find(|e| e["event"] == "operation").unwrap();
    assert_eq!(sign["operation"], "sign");
    assert_eq!(sign["fips_approved"], true);
    assert_eq!(sign["mechanism"]["name"], "ECDSA_SHA256");
    assert_eq!(sign["caller"]["pid"], std::process::id());
    // No PIN ever reaches the log.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("user-pin") && !text.contains("so-pin") && !text.contains("wrong-pin"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

fn tampered(name: &str, change: impl FnOnce(&mut Vec<String>)) -> String {
    let dir = Scratch::new(name);
    let (path, public) = workload(dir.path());
    let mut l = lines(&path);
    change(&mut l);
    write_lines(&path, &l);
    verify(&[path], &public).unwrap_err().to_string()
}

#[test]
fn an_edited_entry_is_caught() {
    let why = tampered("audit-edit", |l| {
        let i = l.iter().position(|x| x.contains("pin_incorrect")).unwrap();
        l[i] = l[i].replace("\"failures\":1", "\"failures\":0");
    });
    assert!(why.contains("edited"), "{why}");
}

#[test]
fn a_deleted_entry_is_caught() {
    let why = tampered("audit-delete", |l| {
        let i = l.iter().position(|x| x.contains("pin_incorrect")).unwrap();
        l.remove(i);
    });
    assert!(why.contains("deleted"), "{why}");
}

#[test]
fn reordered_entries_are_caught() {
    let why = tampered("audit-reorder", |l| l.swap(3, 4));
    assert!(why.contains("reordered") || why.contains("chain"), "{why}");
}

#[test]
fn an_inserted_entry_is_caught() {
    let why = tampered("audit-insert", |l| {
        let forged = l[2].clone();
        l.insert(3, forged);
    });
    assert!(why.contains("inserted") || why.contains("chain"), "{why}");
}

#[test]
fn truncation_is_caught() {
    let why = tampered("audit-truncate", |l| {
        // Cut the final (shutdown) seal off.
        let n = l.len();
        assert!(l[n - 1].contains("\"event\":\"seal\""));
        assert!(!l[n - 2].contains("\"event\":\"seal\""));
        l.truncate(n - 1);
    });
    assert!(why.contains("after the last seal"), "{why}");
}

#[test]
fn a_rewritten_chain_without_the_key_is_caught() {
    // The attacker drops an entry and recomputes every hash; without the audit key the seals
    // cannot be redone.
    let dir = Scratch::new("audit-rewrite");
    let (path, public) = workload(dir.path());
    let mut entries: Vec<serde_json::Map<String, Value>> = lines(&path)
        .iter()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        })
        .collect();
    entries.retain(|e| e["event"] != "login");
    let mut prev = "0".repeat(64);
    let mut out = Vec::new();
    for (seq, mut e) in entries.into_iter().enumerate() {
        e.remove("hash");
        e.insert("seq".into(), Value::from(seq as u64));
        e.insert("prev".into(), Value::String(prev.clone()));
        let body = Value::Object(e).to_string();
        let hash =
            hex::encode(craton_core::digest::digest(HashAlg::Sha256, body.as_bytes()).unwrap());
        out.push(format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]));
        prev = hash;
    }
    write_lines(&path, &out);
    let why = verify(&[path], &public).unwrap_err().to_string();
    assert!(why.contains("seal signature does not verify"), "{why}");
    // And a different key never verifies a genuine log.
    let dir = Scratch::new("audit-wrong-key");
    let (path, _) = workload(dir.path());
    let other = craton_core::edwards::Ed25519Key::from_seed(&[9; 32])
        .unwrap()
        .public_bytes();
    assert!(verify(&[path], &other).is_err());
}

#[test]
fn a_log_cut_back_to_a_seal_is_noticed_at_the_next_start() {
    let dir = Scratch::new("audit-cut");
    let (path, public) = workload(dir.path());
    // Cut back to the first seal: on its own the file still verifies...
    let l = lines(&path);
    let first_seal = l
        .iter()
        .position(|x| x.contains("\"event\":\"seal\""))
        .unwrap();
    write_lines(&path, &l[..=first_seal]);
    verify(std::slice::from_ref(&path), &public).unwrap();
    // ...but the engine remembers where the chain ended and says so in the log.
    drop(Hsm::open(config(dir.path())).unwrap());
    let reopened = std::fs::read_to_string(&path).unwrap();
    assert!(reopened.contains("truncated or replaced"), "{reopened}");
}

#[test]
fn rotation_keeps_the_chain_across_files() {
    let dir = Scratch::new("audit-rotate");
    let hsm = ready(dir.path());
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let rotated = hsm.audit().unwrap().rotate().unwrap();
    let s = user_session(&hsm);
    hsm.generate_key(
        s,
        &Mechanism::Generate(M::AES_KEY_GEN),
        &[(A::VALUE_LEN, AttrValue::Ulong(16))],
    )
    .unwrap();
    let live = hsm.config().audit_path();
    drop(hsm);
    let report = verify(&[rotated.clone(), live.clone()], &public).unwrap();
    assert!(report.entries > 5);
    assert!(lines(&live)[0].contains("log_rotated"));
    // Out of order, the chain does not connect.
    assert!(verify(&[live, rotated], &public).is_err());
}

#[test]
fn many_threads_logging_keep_one_intact_chain() {
    let dir = Scratch::new("audit-stress");
    let hsm = Arc::new(ready(dir.path()));
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = user_session(&hsm);
    // A token object, so every thread's session can use it.
    let key = hmac_key(&hsm, s, true);
    let threads = 8;
    let per_thread = 100;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let hsm = hsm.clone();
            std::thread::spawn(move || {
                let s = hsm.open_session(0, false).unwrap();
                let mac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
                for _ in 0..per_thread {
                    hsm.sign_init(s, &mac, key).unwrap();
                    hsm.sign(s, b"stress").unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let path = hsm.config().audit_path();
    drop(hsm);
    let report = verify(std::slice::from_ref(&path), &public).unwrap();
    let ops = lines(&path)
        .iter()
        .filter(|l| l.contains("\"event\":\"operation\""))
        .count();
    assert_eq!(ops, threads * per_thread);
    assert!(report.seals >= 1);
}

#[test]
fn the_key_management_level_leaves_out_operations() {
    let dir = Scratch::new("audit-level");
    let mut c = config(dir.path());
    c.audit.level = AuditLevel::KeyManagement;
    let hsm = Hsm::open(c).unwrap();
    init(&hsm);
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    hsm.sign_init(s, &Mechanism::without_params(M::SHA256_HMAC).unwrap(), k)
        .unwrap();
    hsm.sign(s, b"x").unwrap();
    let path = hsm.config().audit_path();
    drop(hsm);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("key_generated"));
    assert!(!text.contains("\"event\":\"operation\""));
}

#[test]
fn the_log_rotates_by_size_and_the_files_verify_together() {
    let dir = Scratch::new("audit-size");
    let mut c = config(dir.path());
    c.audit.rotate_bytes = 4096;
    let hsm = Hsm::open(c).unwrap();
    init(&hsm);
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    for _ in 0..60 {
        hsm.sign_init(s, &Mechanism::without_params(M::SHA256_HMAC).unwrap(), k)
            .unwrap();
        hsm.sign(s, b"fill").unwrap();
        // What the background flusher does every few milliseconds: write the entries the
        // journal holds to the file, and rotate it when full.
        hsm.audit().unwrap().sync_pending().unwrap();
    }
    let live = hsm.config().audit_path();
    drop(hsm);
    let files = craton_store::audit::log_files(&live);
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(files.last(), Some(&live));
    let report = verify(&files, &public).unwrap();
    assert!(report.entries > 60);
}

#[test]
fn entries_name_the_caller_a_frontend_sets() {
    let dir = Scratch::new("audit-caller");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let client = craton_store::audit::Caller::Client("ab".repeat(32));
    craton_store::audit::with_caller(&client, || {
        hsm.generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(16))],
        )
        .unwrap();
    });
    hsm.generate_key(
        s,
        &Mechanism::Generate(M::AES_KEY_GEN),
        &[(A::VALUE_LEN, AttrValue::Ulong(16))],
    )
    .unwrap();
    let path = hsm.config().audit_path();
    drop(hsm);
    let generated: Vec<Value> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "key_generated")
        .collect();
    assert_eq!(generated[0]["caller"]["cert_sha256"], "ab".repeat(32));
    assert_eq!(generated[1]["caller"]["pid"], std::process::id());
}

/// Fills the file system of `dir` with a file of zeros, whose path it returns.
fn fill_up(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut filler = std::fs::File::create(&path).unwrap();
    while std::io::Write::write_all(&mut filler, &[0u8; 4096]).is_ok() {}
    path
}

#[test]
fn when_the_audit_log_cannot_be_written_nothing_is_handed_out_unaudited() {
    let dir = Scratch::new("audit-broken");
    let logs = dir.path().join("logs");
    let Some(_mount) = Tmpfs::mount(&logs, "64k", "broken-audit-log") else {
        return;
    };
    let mut c = config(&dir.path().join("state"));
    c.audit.path = Some(logs.join("audit.log"));
    let hsm = Hsm::open(c).unwrap();
    init(&hsm);
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    // 64 KiB has no room for the journal: the log writes each entry itself, and says why.
    let opened = lines(&logs.join("audit.log"));
    assert!(
        opened[0].contains("\"journal_problem\""),
        "the journal should not fit: {}",
        opened[0]
    );
    fill_up(&logs);
    let mac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    // The log's last page may still have room for a few entries; then a call's entry cannot
    // be written, and that call gets an error, not its signature.
    let mut signed = 0;
    let failure = loop {
        hsm.sign_init(s, &mac, k).unwrap();
        match hsm.sign(s, b"unaudited?") {
            Ok(_) => signed += 1,
            Err(e) => break e,
        }
        assert!(signed < 100, "the log never filled up");
    };
    assert!(
        matches!(
            failure,
            craton_store::HsmError::Audit(craton_store::audit::AuditError::Failed)
        ),
        "{failure}"
    );
    assert!(hsm.audit().unwrap().is_failed());
    // And from now on the engine refuses work outright.
    assert!(matches!(
        hsm.sign_init(s, &mac, k),
        Err(craton_store::HsmError::Audit(_))
    ));
}

#[test]
fn a_full_disk_under_the_journal_loses_no_entry_of_a_returned_call() {
    // Room for the journal, then none: the flusher's write fails, the log breaks, and the
    // engine refuses work. Every signature handed out before that is still audited once the
    // disk has room again: its entry was in the journal.
    let dir = Scratch::new("audit-full-journal");
    let logs = dir.path().join("logs");
    let Some(_mount) = Tmpfs::mount(&logs, "1m", "full-journal") else {
        return;
    };
    let mut c = config(&dir.path().join("state"));
    c.audit.path = Some(logs.join("audit.log"));
    let hsm = Hsm::open(c.clone()).unwrap();
    init(&hsm);
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    let opened = lines(&logs.join("audit.log"));
    assert!(
        !opened[0].contains("journal_problem"),
        "the journal should fit: {}",
        opened[0]
    );
    let filler_path = fill_up(&logs);
    let mac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    let started = std::time::Instant::now();
    let mut signed = 0u64;
    loop {
        let outcome = hsm
            .sign_init(s, &mac, k)
            .and_then(|()| hsm.sign(s, b"audited?"));
        match outcome {
            Ok(_) => signed += 1,
            Err(e) => {
                assert!(matches!(e, craton_store::HsmError::Audit(_)), "{e}");
                break;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the log never filled up"
        );
    }
    assert!(signed > 0);
    drop(hsm);
    // Room again: the next start puts the journaled entries into the file.
    std::fs::remove_file(&filler_path).unwrap();
    let hsm = Hsm::open(c).unwrap();
    drop(hsm);
    let text = std::fs::read_to_string(logs.join("audit.log")).unwrap();
    let audited = text
        .lines()
        .filter(|l| l.contains("\"event\":\"operation\"") && l.contains("\"result\":\"ok\""))
        .count() as u64;
    assert!(
        audited >= signed,
        "{signed} signatures handed out, {audited} audited"
    );
    assert!(
        text.contains("recovered_from_journal"),
        "nothing was left to recover"
    );
    verify(
        &craton_store::audit::log_files(&logs.join("audit.log")),
        &public,
    )
    .unwrap();
}

#[test]
fn a_second_engine_refused_the_store_leaves_the_first_ones_log_alone() {
    // The second engine may not touch the log: the first owns it, and has entries in its
    // journal that are not in the file yet. An entry appended from outside would fork the chain.
    let dir = Scratch::new("audit-second-engine");
    let hsm = ready(dir.path());
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    let mac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    let sign = || {
        hsm.sign_init(s, &mac, k).unwrap();
        hsm.sign(s, b"owner").unwrap();
    };
    sign();
    let second = Hsm::open(config(dir.path()));
    assert!(
        matches!(
            second,
            Err(craton_store::HsmError::Store(
                craton_store::persist::StoreError::Locked { .. }
            ))
        ),
        "{second:?}"
    );
    sign();
    let live = hsm.config().audit_path();
    drop(hsm);
    let text = std::fs::read_to_string(&live).unwrap();
    assert!(!text.contains("store_refused"));
    assert_eq!(text.matches("\"event\":\"operation\"").count(), 2);
    verify(&craton_store::audit::log_files(&live), &public).unwrap();
}

#[test]
fn a_line_cut_short_by_a_crash_is_removed_at_the_next_start() {
    let dir = Scratch::new("audit-torn");
    let (path, public) = workload(dir.path());
    // What a kill in the middle of a write leaves: the start of a line, no newline.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"caller\":{\"pid\":1").unwrap();
    drop(f);
    assert!(verify(std::slice::from_ref(&path), &public).is_err());
    drop(Hsm::open(config(dir.path())).unwrap());
    let opened: Vec<Value> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "log_opened")
        .collect();
    assert_eq!(opened.last().unwrap()["torn_bytes_removed"], 18);
    verify(&[path], &public).unwrap();
}

#[test]
fn threads_and_the_flusher_rotating_at_once_lose_no_file() {
    // Several writers and the background flusher all see the file full at about the same
    // moment; each full file must be rotated once, never renamed over a rotated one.
    let dir = Scratch::new("audit-rotate-race");
    let mut c = config(dir.path());
    c.audit.rotate_bytes = 2048;
    c.audit.batch_operation_entries = true;
    let hsm = Hsm::open(c).unwrap();
    init(&hsm);
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    let live = hsm.config().audit_path();
    // Sign until the race has had many chances (a rotation roughly every flusher pass).
    let stop = std::sync::atomic::AtomicBool::new(false);
    let signed = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let t = hsm.open_session(0, false).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    hsm.sign_init(t, &Mechanism::without_params(M::SHA256_HMAC).unwrap(), k)
                        .unwrap();
                    hsm.sign(t, b"fill").unwrap();
                    signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while craton_store::audit::log_files(&live).len() < 12
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    drop(hsm);
    let files = craton_store::audit::log_files(&live);
    assert!(files.len() >= 12, "{files:?}");
    let report = verify(&files, &public).unwrap();
    let signed = signed.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        report.entries > signed,
        "{report:?} for {signed} signatures"
    );
}

#[test]
fn a_periodic_seal_still_queued_at_rotation_or_shutdown_reaches_the_file() {
    // With batched operation entries the seal due every `seal_every` entries is only queued;
    // when it is the last entry, a rotation or closing the engine must still write it.
    let dir = Scratch::new("audit-queued-seal");
    let mut c = config(dir.path());
    c.audit.batch_operation_entries = true;
    let hsm = Hsm::open(c).unwrap();
    init(&hsm);
    let public = hex_decode(&hsm.audit().unwrap().public_key_hex());
    let s = user_session(&hsm);
    let k = hmac_key(&hsm, s, false);
    let mac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    let head = || hsm.audit().unwrap().head().unwrap().0;
    // Signs until one signature's entry made a seal due (the head then moves by two) and
    // returns the seal's sequence number.
    let sign_until_a_seal = || {
        for _ in 0..20 {
            let before = head();
            hsm.sign_init(s, &mac, k).unwrap();
            hsm.sign(s, b"data").unwrap();
            if head() == before + 2 {
                break;
            }
        }
        head()
    };
    let last_line = |path: &std::path::Path| -> Value {
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    let last = sign_until_a_seal();
    // A rotation now: the rotated file must end with that seal, written before the rename.
    let rotated = hsm.audit().unwrap().rotate().unwrap();
    let tail = last_line(&rotated);
    assert_eq!(tail["event"], "seal", "{tail}");
    assert_eq!(tail["seq"], last);
    // And at shutdown.
    let live = hsm.config().audit_path();
    let last = sign_until_a_seal();
    drop(hsm);
    let report = verify(&craton_store::audit::log_files(&live), &public).unwrap();
    assert_eq!(report.entries, last + 1, "{report:?}");
    let tail = last_line(&live);
    assert_eq!(tail["event"], "seal", "{tail}");
    assert_eq!(tail["seq"], last);
}

/// With the audit log off, the engine skips building operation events only when nobody
/// listens: a caller's own sink still receives every operation's end, success or failure.
#[test]
fn without_an_audit_log_a_callers_sink_still_sees_every_operation() {
    let dir = Scratch::new("audit-off-sink");
    let mut c = config(dir.path());
    c.audit.level = AuditLevel::None;
    let rec = recorder();
    let hsm = Hsm::open_with_events(c, rec.clone()).unwrap();
    assert!(hsm.audit().is_none());
    init(&hsm);
    let s = user_session(&hsm);
    let mac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    let key = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::GENERIC_SECRET_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::SIGN, b(true)),
                (A::VERIFY, b(true)),
            ],
        )
        .unwrap();
    hsm.sign_init(s, &mac, key).unwrap();
    let tag = hsm.sign(s, b"data").unwrap();
    hsm.verify_init(s, &mac, key).unwrap();
    assert!(hsm.verify(s, b"other data", &tag).is_err());
    let ops: Vec<(&str, bool)> = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Operation { kind, success, .. } => Some((*kind, *success)),
            _ => None,
        })
        .collect();
    assert_eq!(ops, [("sign", true), ("verify", false)]);
}
