//! A child process creating and destroying token keys is killed with SIGKILL at arbitrary
//! moments, again and again. After each kill the store must open, every key the child saw
//! committed must be there whole, none it saw destroyed may be, and no record may be damaged.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::ops::Mechanism;
use craton_store::{Event, ObjectHandle};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

const CHILD_ENV: &str = "CRATON_CRASH_CHILD_DIR";

/// The child's body: runs only when the parent starts this binary with `CHILD_ENV` set.
#[test]
#[ignore = "run by crash_safety::sigkill_at_random_moments_loses_nothing_committed"]
fn child_worker() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let hsm = Hsm::open(config(&dir)).expect("child opens the store");
    let s = user_session(&hsm);
    let mut out = std::io::stdout().lock();
    let mut live: Vec<ObjectHandle> = Vec::new();
    for i in 0u64.. {
        let k = hsm
            .generate_key(
                s,
                &Mechanism::Generate(M::AES_KEY_GEN),
                &[
                    (A::VALUE_LEN, AttrValue::Ulong(32)),
                    (A::TOKEN, b(true)),
                    (A::PRIVATE, b(i % 2 == 0)),
                    (A::ENCRYPT, b(true)),
                    label(&format!("crash-{}", std::process::id())),
                ],
            )
            .expect("generate");
        writeln!(out, "C {}", k.0).unwrap();
        out.flush().unwrap();
        live.push(k);
        if i % 3 == 2 {
            let victim = live.remove(0);
            // Announce the intent first: a kill between the commit and the report below
            // leaves the parent knowing this one key may legitimately be gone.
            writeln!(out, "X {}", victim.0).unwrap();
            out.flush().unwrap();
            hsm.destroy_object(s, victim).expect("destroy");
            writeln!(out, "D {}", victim.0).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed() {
    let dir = Scratch::new("crash");
    drop(ready(dir.path()));
    let iterations: u64 = std::env::var("CRATON_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut created: BTreeSet<u64> = BTreeSet::new();
    let mut destroyed: BTreeSet<u64> = BTreeSet::new();
    let mut kills_mid_write = 0;
    for round in 0..iterations {
        let child = Child::spawn("crash_safety::child_worker", CHILD_ENV, dir.path());
        // Let the child commit a random number of changes (0..12), then kill it after a
        // random extra delay so the kill lands anywhere inside the next transaction.
        let wanted = rng.draw() % 12;
        let mut seen: Vec<String> = Vec::new();
        while (seen.iter().filter(|l| l.starts_with("C ")).count() as u64) < wanted {
            match child.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("round {round}: child produced nothing for 30 s"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.draw() % 3000));
        seen.extend(child.kill());
        // The test harness prints its own lines; keep only the child's reports.
        seen.retain(|l| l.starts_with("C ") || l.starts_with("D ") || l.starts_with("X "));
        let mut in_doubt = None;
        if !seen.is_empty() {
            kills_mid_write += 1;
        }
        for l in &seen {
            let (op, h) = l.split_once(' ').unwrap();
            let h: u64 = h.parse().unwrap();
            match op {
                "C" => {
                    created.insert(h);
                }
                "X" => in_doubt = Some(h),
                "D" => {
                    destroyed.insert(h);
                    in_doubt = None;
                }
                _ => panic!("unexpected child output {l}"),
            }
        }
        // Restart: the store opens, nothing is damaged, every committed key is whole.
        let rec = recorder();
        let hsm = Hsm::open_with_events(config(dir.path()), rec.clone())
            .unwrap_or_else(|e| panic!("round {round}: store does not open: {e}"));
        let s = user_session(&hsm);
        hsm.find_objects_init(s, &[]).unwrap();
        let present: BTreeSet<u64> = hsm
            .find_objects(s, 1_000_000)
            .unwrap()
            .iter()
            .map(|h| h.0)
            .collect();
        hsm.find_objects_final(s).unwrap();
        let events = rec.0.lock().unwrap().clone();
        // A destroy the child announced but did not confirm may or may not have committed.
        if let Some(h) = in_doubt
            && !present.contains(&h)
        {
            destroyed.insert(h);
        }
        for h in created.difference(&destroyed) {
            assert!(
                present.contains(h),
                "round {round}: committed key {h} lost; this round's child said {seen:?}; events {events:?}"
            );
        }
        for h in &destroyed {
            assert!(
                !present.contains(h),
                "round {round}: destroyed key {h} came back"
            );
        }
        // Keys the child created but never reported may exist (killed after commit, before
        // the report); each one must be whole: usable for encryption.
        for h in present.iter().take(3).chain(present.iter().rev().take(3)) {
            hsm.cipher_init(
                s,
                craton_core::Direction::Encrypt,
                &Mechanism::Aes(craton_core::aes::AesMode::Ecb),
                ObjectHandle(*h),
            )
            .unwrap_or_else(|e| panic!("round {round}: key {h} unusable: {e}"));
            hsm.cipher(s, craton_core::Direction::Encrypt, &[0; 16])
                .unwrap();
        }
        assert!(
            !rec.0
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::RecordCorrupt { .. })),
            "round {round}: a record was damaged"
        );
    }
    eprintln!(
        "{iterations} kills, {kills_mid_write} after at least one commit; {} keys created, {} destroyed",
        created.len(),
        destroyed.len()
    );
    assert!(kills_mid_write > iterations / 2);
}
