//! Many threads, many sessions, one key: no global lock, every signature valid.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use std::sync::Arc;

#[test]
fn one_key_signs_correctly_from_a_hundred_threads_at_once() {
    let dir = Scratch::new("stress");
    let hsm = Arc::new(ready(dir.path()));
    let admin = user_session(&hsm);
    let (public, private) = hsm
        .generate_key_pair(
            admin,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            &[
                (
                    A::EC_PARAMS,
                    AttrValue::Bytes(craton_core::ec::Curve::P256.ec_params().to_vec()),
                ),
                (A::VERIFY, b(true)),
            ],
            &[(A::SIGN, b(true)), (A::TOKEN, b(true))],
        )
        .unwrap();
    let threads: usize = std::env::var("CRATON_STRESS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let per_thread = 20;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let hsm = hsm.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let s = hsm.open_session(0, false).unwrap();
                let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
                barrier.wait();
                let mut out = Vec::new();
                for i in 0..per_thread {
                    let msg = format!("thread {t} message {i}").into_bytes();
                    hsm.sign_init(s, &mech, private).unwrap();
                    let sig = hsm.sign(s, &msg).unwrap();
                    out.push((msg, sig));
                }
                hsm.close_session(s).unwrap();
                out
            })
        })
        .collect();
    let mut total = 0;
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    for w in workers {
        for (msg, sig) in w.join().unwrap() {
            hsm.verify_init(admin, &mech, public).unwrap();
            hsm.verify(admin, &msg, &sig).unwrap();
            total += 1;
        }
    }
    assert_eq!(total, threads * per_thread);
}

#[test]
fn sessions_on_many_threads_create_and_destroy_objects_without_interference() {
    let dir = Scratch::new("churn");
    let hsm = Arc::new(ready(dir.path()));
    let _login = user_session(&hsm);
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let hsm = hsm.clone();
            std::thread::spawn(move || {
                let s = hsm.open_session(0, true).unwrap();
                let mut kept = Vec::new();
                for i in 0..25 {
                    let k = hsm
                        .generate_key(
                            s,
                            &Mechanism::Generate(M::AES_KEY_GEN),
                            &[
                                (A::VALUE_LEN, AttrValue::Ulong(16)),
                                (A::TOKEN, b(true)),
                                label(&format!("t{t}-{i}")),
                            ],
                        )
                        .unwrap();
                    if i % 3 == 0 {
                        hsm.destroy_object(s, k).unwrap();
                    } else {
                        kept.push(k);
                    }
                }
                kept
            })
        })
        .collect();
    let kept: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let s = hsm.open_session(0, false).unwrap();
    hsm.find_objects_init(s, &[]).unwrap();
    let mut found = hsm.find_objects(s, 10_000).unwrap();
    found.sort();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    assert_eq!(found, kept_sorted);
}
