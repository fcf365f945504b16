//! The store on disk: modes, the exclusive lock, tamper and damage detection, full disks.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::ops::Mechanism;
use craton_store::persist::StoreError;
use craton_store::{Event, HsmError};
use redb::ReadableTable;
use std::os::unix::fs::PermissionsExt;

#[test]
fn files_are_private_and_a_readable_store_is_refused_by_path_and_mode() {
    let dir = Scratch::new("modes");
    drop(ready(dir.path()));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("state.redb")), 0o600);
    std::fs::set_permissions(
        dir.path().join("state.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = Hsm::open(config(dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(
        err,
        HsmError::Store(StoreError::Permissions { .. })
    ));
    assert!(msg.contains("state.redb") && msg.contains("0644"), "{msg}");
    std::fs::set_permissions(
        dir.path().join("state.redb"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // The next start seals over the unsealed refusal entry: the whole log verifies.
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let public = hex::decode(hsm.audit().unwrap().public_key_hex()).unwrap();
    drop(hsm);
    craton_store::audit::verify(&[dir.path().join("audit.log")], &public).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let msg = Hsm::open(config(dir.path())).unwrap_err().to_string();
    assert!(msg.contains("0755"), "{msg}");
}

#[test]
fn a_second_opener_is_kept_out_with_the_holder_named() {
    let dir = Scratch::new("lock");
    let first = ready(dir.path());
    let err = Hsm::open(config(dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, HsmError::Store(StoreError::Locked { .. })),
        "{msg}"
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    drop(first);
    Hsm::open(config(dir.path())).unwrap();
}

fn make_objects(dir: &Path) -> Vec<u64> {
    let hsm = ready(dir);
    let s = user_session(&hsm);
    let mut handles = Vec::new();
    for i in 0..5 {
        let private = i % 2 == 0;
        let k = hsm
            .generate_key(
                s,
                &Mechanism::Generate(M::AES_KEY_GEN),
                &[
                    (A::VALUE_LEN, AttrValue::Ulong(32)),
                    (A::TOKEN, b(true)),
                    (A::PRIVATE, b(private)),
                    (A::ENCRYPT, b(true)),
                    label(&format!("key{i}")),
                ],
            )
            .unwrap();
        handles.push(k.0);
    }
    handles
}

fn flip_record_byte(dir: &Path, id: u64, at: usize) {
    let db = redb::Database::open(dir.join("state.redb")).unwrap();
    let table: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("objects");
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let mut v = t.get(id).unwrap().unwrap().value().to_vec();
        let at = at % v.len();
        v[at] ^= 0x10;
        t.insert(id, &v[..]).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_flipped_bit_in_a_record_is_reported_and_the_rest_still_loads() {
    let dir = Scratch::new("tamper");
    let handles = make_objects(dir.path());
    // Damage one public and one private object, deep inside their sealed parts.
    flip_record_byte(dir.path(), handles[1], 40);
    flip_record_byte(dir.path(), handles[2], 60);
    let rec = recorder();
    let hsm = Hsm::open_with_events(config(dir.path()), rec.clone()).unwrap();
    let s = user_session(&hsm);
    hsm.find_objects_init(s, &[]).unwrap();
    let found: Vec<u64> = hsm
        .find_objects(s, 100)
        .unwrap()
        .iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(found, vec![handles[0], handles[3], handles[4]]);
    let corrupt: std::collections::BTreeSet<String> = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::RecordCorrupt { detail, .. } => Some(detail.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(corrupt.len(), 2, "{corrupt:?}");
    assert!(corrupt.iter().all(|d| d.contains("state.redb")));
}

#[test]
fn a_record_moved_to_another_id_is_rejected() {
    let dir = Scratch::new("swap");
    let handles = make_objects(dir.path());
    let db = redb::Database::open(dir.path().join("state.redb")).unwrap();
    let table: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("objects");
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let v = t.get(handles[1]).unwrap().unwrap().value().to_vec();
        t.insert(handles[3], &v[..]).unwrap();
    }
    txn.commit().unwrap();
    drop(db);
    let rec = recorder();
    let hsm = Hsm::open_with_events(config(dir.path()), rec.clone()).unwrap();
    let s = hsm.open_session(0, false).unwrap();
    assert!(matches!(
        hsm.attribute_values(s, craton_store::ObjectHandle(handles[3]), &[A::LABEL]),
        Err(HsmError::ObjectHandleInvalid)
    ));
    assert!(
        rec.0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::RecordCorrupt { .. }))
    );
}

#[test]
fn random_damage_to_the_file_never_yields_wrong_data() {
    let dir = Scratch::new("bitrot");
    let handles = make_objects(dir.path());
    let pristine = std::fs::read(dir.path().join("state.redb")).unwrap();
    let labels = |hsm: &Hsm| -> Vec<(u64, Vec<u8>)> {
        let Ok(s) = hsm.open_session(0, true) else {
            return Vec::new();
        };
        // Damage to the PIN wrap shows as a wrong PIN: an error, not data.
        if hsm.login(s, UserType::User, USER_PIN).is_err() {
            return Vec::new();
        }
        hsm.find_objects_init(s, &[]).unwrap();
        let found = hsm.find_objects(s, 100).unwrap();
        found
            .iter()
            .map(|h| {
                let v = hsm.attribute_values(s, *h, &[A::LABEL]).unwrap();
                match &v[0] {
                    Ok(AttrValue::Bytes(l)) => (h.0, l.clone()),
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    };
    let expected: Vec<(u64, Vec<u8>)> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, format!("key{i}").into_bytes()))
        .collect();
    // Deterministic positions spread over the file (no randomness: reproducible failures).
    let rounds: usize = std::env::var("CRATON_BITROT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut outcomes = (0, 0);
    for i in 0..rounds {
        let mut damaged = pristine.clone();
        let at = (i * 7919 + 13) % damaged.len();
        damaged[at] ^= 1 << (i % 8);
        std::fs::write(dir.path().join("state.redb"), &damaged).unwrap();
        match Hsm::open(config(dir.path())) {
            Err(e) => {
                // A clear error naming the store, never a panic.
                assert!(!e.to_string().is_empty());
                outcomes.0 += 1;
            }
            Ok(hsm) => {
                let got = labels(&hsm);
                for (h, l) in &got {
                    assert!(
                        expected.contains(&(*h, l.clone())),
                        "wrong data for {h} at byte {at}"
                    );
                }
                outcomes.1 += 1;
            }
        }
    }
    eprintln!(
        "bit flips: {} refused to open, {} opened with only correct data",
        outcomes.0, outcomes.1
    );
}

#[test]
fn a_full_disk_fails_cleanly_and_loses_nothing_committed() {
    let dir = Scratch::new("full");
    let Some(_mount) = Tmpfs::mount(dir.path(), "2m", "full-disk") else {
        return;
    };
    let mut committed = Vec::new();
    let failure = {
        let hsm = ready(dir.path());
        let s = user_session(&hsm);
        let big = vec![0x42u8; 60_000];
        let mut failure = None;
        for i in 0..1000 {
            let r = hsm.create_object(
                s,
                &[
                    (
                        A::CLASS,
                        AttrValue::Ulong(craton_core::attribute::ObjectClass::DATA.0),
                    ),
                    (A::TOKEN, b(true)),
                    (A::PRIVATE, b(false)),
                    (A::VALUE, AttrValue::Bytes(big.clone())),
                    label(&format!("blob{i}")),
                ],
            );
            match r {
                Ok(h) => committed.push(h),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        failure
    };
    let failure = failure.expect("the disk filled up");
    assert!(matches!(failure, HsmError::Store(_)), "{failure}");
    assert!(!committed.is_empty());
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let s = hsm.open_session(0, false).unwrap();
    for h in &committed {
        hsm.attribute_values(s, *h, &[A::LABEL]).unwrap()[0]
            .as_ref()
            .expect("committed object survives");
    }
}
