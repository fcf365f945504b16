//! Sign and encrypt through `Hsm` (session lookup, key lookup, attribute and registry
//! checks, audit hook) next to the same operation on craton-core directly. The ratio is the
//! engine's overhead. Run with `cargo xtask bench`.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::attribute::{AttrValue, AttributeType as A, ObjectClass};
use craton_core::digest::HashAlg;
use craton_core::ec::Curve;
use craton_core::key::{Generated, KeyMaterial, KeySpec};
use craton_core::ops::{CipherContext, Mechanism, SignContext};
use craton_core::rng::Rng;
use craton_store::{Config, Hsm, UserType};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

const DATA: [u8; 4096] = [0x5a; 4096];

fn engine(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("craton-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::default();
    config.token.state_dir = Some(dir.clone());
    config.security.pbkdf2_iterations = 1000;
    let hsm = Hsm::open(config).unwrap();
    hsm.init_token(0, b"bench-so-pin", "bench").unwrap();
    let so = hsm.open_session(0, true).unwrap();
    hsm.login(so, UserType::So, b"bench-so-pin").unwrap();
    hsm.init_pin(so, b"bench-user-pin").unwrap();
    hsm.close_session(so).unwrap();
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, b"bench-user-pin").unwrap();
    let rng = Rng::from_os().unwrap();

    // ECDSA P-256 with SHA-256 over 4 KiB.
    let (_, private) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            &[(
                A::EC_PARAMS,
                AttrValue::Bytes(Curve::P256.ec_params().to_vec()),
            )],
            &[(A::SIGN, AttrValue::Bool(true))],
        )
        .unwrap();
    let Generated::Pair(_, core_key) =
        KeyMaterial::generate(KeySpec::Ec(Curve::P256), &rng).unwrap()
    else {
        unreachable!()
    };
    let core_key = Arc::new(core_key);
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    let mut g = c.benchmark_group("ecdsa_p256_sha256_sign_4k");
    g.bench_function("hsm", |b| {
        b.iter(|| {
            hsm.sign_init(s, &mech, private).unwrap();
            hsm.sign(s, black_box(&DATA)).unwrap()
        })
    });
    g.bench_function("craton-core", |b| {
        b.iter(|| {
            SignContext::new(&mech, core_key.clone())
                .unwrap()
                .sign(black_box(&DATA), &rng)
                .unwrap()
        })
    });
    g.finish();

    // AES-256-GCM encryption of 4 KiB.
    let value = [9u8; 32];
    let aes = hsm
        .create_object(
            s,
            &[
                (A::CLASS, AttrValue::Ulong(ObjectClass::SECRET_KEY.0)),
                (A::KEY_TYPE, AttrValue::Ulong(craton_core::KeyType::AES.0)),
                (A::VALUE, AttrValue::Bytes(value.to_vec())),
                (A::ENCRYPT, AttrValue::Bool(true)),
            ],
        )
        .unwrap();
    let core_aes = Arc::new(KeyMaterial::Secret {
        key_type: craton_core::KeyType::AES,
        value: craton_core::secret::SecretBytes::new(&value),
    });
    let gcm = Mechanism::Aes(AesMode::Gcm(GcmParams {
        iv: GcmIv::Given(vec![1; 12]),
        aad: Vec::new(),
        tag_bits: 128,
    }));
    let mut g = c.benchmark_group("aes256_gcm_encrypt_4k");
    g.bench_function("hsm", |b| {
        b.iter(|| {
            hsm.cipher_init(s, Direction::Encrypt, &gcm, aes).unwrap();
            hsm.encrypt(s, black_box(&DATA)).unwrap()
        })
    });
    g.bench_function("craton-core", |b| {
        b.iter(|| {
            let mut out = CipherContext::new(&gcm, core_aes.clone(), Direction::Encrypt, &rng)
                .unwrap()
                .one_shot(black_box(&DATA))
                .unwrap();
            std::mem::take(&mut *out)
        })
    });
    g.finish();
    drop(hsm);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, engine);
criterion_main!(benches);
