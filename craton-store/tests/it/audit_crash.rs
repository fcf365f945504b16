//! The audit log's promise under SIGKILL: an operation entry whose call returned is never
//! lost, although the background flusher writes the file in batches (the journal carries the
//! entries in between), and the chain verifies after every crash and restart.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::ops::Mechanism;
use craton_store::audit::{log_files, verify};
use std::io::Write;
use std::time::Duration;

const CHILD_ENV: &str = "CRATON_AUDIT_CRASH_CHILD_DIR";

/// The child's body: signs in a loop and reports each signature after its call returned.
#[test]
#[ignore = "run by audit_crash::sigkill_loses_no_entry_of_a_returned_call"]
fn audit_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let hsm = Hsm::open(config(Path::new(&dir))).expect("child opens the store");
    let s = user_session(&hsm);
    let k = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::GENERIC_SECRET_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(32)), (A::SIGN, b(true))],
        )
        .expect("generate");
    let mac = Mechanism::without_params(M::SHA256_HMAC).expect("mechanism");
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        hsm.sign_init(s, &mac, k).expect("sign_init");
        hsm.sign(s, &i.to_be_bytes()).expect("sign");
        writeln!(out, "S {i}").unwrap();
        out.flush().unwrap();
    }
}

/// Sign entries across every file of the log.
fn sign_entries(live: &Path) -> u64 {
    log_files(live)
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| {
                    l.contains("\"event\":\"operation\"") && l.contains("\"operation\":\"sign\"")
                })
                .count() as u64
        })
        .sum()
}

#[test]
fn sigkill_loses_no_entry_of_a_returned_call() {
    let dir = Scratch::new("audit-crash");
    let hsm = ready(dir.path());
    let public = hex::decode(hsm.audit().unwrap().public_key_hex()).unwrap();
    let live = hsm.config().audit_path();
    drop(hsm);
    let rounds: u64 = std::env::var("CRATON_AUDIT_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut promised = 0u64;
    let mut recovered_rounds = 0;
    for round in 0..rounds {
        let child = Child::spawn("audit_crash::audit_child", CHILD_ENV, dir.path());
        // A random number of signatures, then a kill a random moment later: mostly while
        // entries wait for the flusher's next batch, sometimes in the middle of its write.
        let wanted = 1 + rng.draw() % 400;
        let mut signed = 0u64;
        while signed < wanted {
            match child.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if l.starts_with("S ") => signed += 1,
                Ok(_) => {}
                Err(_) => panic!("round {round}: the child reported nothing for 30 s"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.draw() % 6000));
        signed += child.kill().iter().filter(|l| l.starts_with("S ")).count() as u64;
        promised += signed;
        // Restart: opening the log completes it from the journal.
        let hsm = Hsm::open(config(dir.path()))
            .unwrap_or_else(|e| panic!("round {round}: the engine does not open: {e}"));
        drop(hsm);
        let found = sign_entries(&live);
        assert!(
            found >= promised,
            "round {round}: {promised} signatures returned, {found} audited"
        );
        // At most the entry of the one call under way when the kill came is extra.
        assert!(
            found <= promised + round + 1,
            "round {round}: {found} audited for {promised} returned"
        );
        let files = log_files(&live);
        verify(&files, &public).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let last_open = std::fs::read_to_string(&live)
            .unwrap()
            .lines()
            .rfind(|l| l.contains("\"event\":\"log_opened\""))
            .map(str::to_owned)
            .unwrap();
        if last_open.contains("recovered_from_journal") {
            recovered_rounds += 1;
        }
    }
    eprintln!(
        "{rounds} kills, {promised} signatures, entries recovered from the journal after {recovered_rounds}"
    );
    assert!(
        recovered_rounds > 0,
        "no kill left entries for the journal to carry: the test did not test it"
    );
}
