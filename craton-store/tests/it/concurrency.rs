//! Many threads, many sessions, one key: no global lock, every signature valid.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::attribute::ObjectClass;
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

/// Operations start while other threads open and close sessions and change the token (each
/// change empties the sessions' key caches, so starts keep looking keys up). Opening a
/// session takes a session shard's write lock with the token's write lock held; a start that
/// looked a key up (the token's read lock) under a shard lock would deadlock with it. A
/// watchdog turns a deadlock into a failure instead of a hung test.
#[test]
fn operations_start_while_sessions_open_and_close_and_the_token_changes() {
    let dir = Scratch::new("churn-start");
    let hsm = Arc::new(ready(dir.path()));
    let admin = user_session(&hsm);
    let key = hsm
        .generate_key(
            admin,
            &Mechanism::Generate(M::GENERIC_SECRET_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(32)), (A::SIGN, b(true))],
        )
        .unwrap();
    let rounds = 2_000;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, finished) = std::sync::mpsc::channel();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (hsm, done) = (hsm.clone(), done.clone());
        workers.push(std::thread::spawn(move || {
            let s = hsm.open_session(0, false).unwrap();
            let hmac = Mechanism::Hmac {
                hash: HashAlg::Sha256,
                tag_len: 32,
                general: false,
            };
            for _ in 0..rounds {
                hsm.sign_init(s, &hmac, key).unwrap();
                assert_eq!(hsm.sign(s, b"m").unwrap().len(), 32);
            }
            done.send(()).unwrap();
        }));
    }
    // Opens and closes sessions: every shard's write lock, under the token's.
    let (h, stopping) = (hsm.clone(), stop.clone());
    workers.push(std::thread::spawn(move || {
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            let s = h.open_session(0, false).unwrap();
            h.close_session(s).unwrap();
        }
    }));
    // Changes the token: a session object created and destroyed.
    let (h, stopping) = (hsm.clone(), stop.clone());
    workers.push(std::thread::spawn(move || {
        let s = h.open_session(0, false).unwrap();
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            let o = h
                .create_object(
                    s,
                    &[
                        (A::CLASS, AttrValue::Ulong(ObjectClass::DATA.0)),
                        (A::VALUE, AttrValue::Bytes(b"x".to_vec())),
                    ],
                )
                .unwrap();
            h.destroy_object(s, o).unwrap();
        }
    }));
    for _ in 0..2 {
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the signers stalled: a lock-order deadlock");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}
