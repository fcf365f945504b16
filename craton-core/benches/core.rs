//! Each core operation next to the same primitive called on aws-lc-rs directly, so the
//! overhead of our layer reads off as a ratio. Run with `cargo xtask bench`.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use aws_lc_rs::{aead, digest as lc_digest, hmac as lc_hmac, rand as lc_rand, signature as lc_sig};
use craton_core::aes::{self, AesMode, GcmIv, GcmParams};
use craton_core::digest::{self, HashAlg};
use craton_core::ec::{Curve, EcKey};
use craton_core::edwards::Ed25519Key;
use craton_core::mac::MacContext;
use craton_core::rng::Rng;
use craton_core::rsa::{RsaKey, RsaSignScheme};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const DATA: [u8; 4096] = [0x5a; 4096];

fn symmetric(c: &mut Criterion) {
    let rng = Rng::from_os().expect("rng");

    let mut g = c.benchmark_group("sha256_4k");
    g.bench_function("craton", |b| {
        b.iter(|| digest::digest(HashAlg::Sha256, black_box(&DATA)).unwrap())
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| lc_digest::digest(&lc_digest::SHA256, black_box(&DATA)))
    });
    g.finish();

    let key = [7u8; 32];
    let mut g = c.benchmark_group("hmac_sha256_4k");
    g.bench_function("craton", |b| {
        b.iter(|| {
            let mut m = MacContext::hmac(HashAlg::Sha256, &key, 32).unwrap();
            m.update(black_box(&DATA)).unwrap();
            m.finish().unwrap()
        })
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            lc_hmac::sign(
                &lc_hmac::Key::new(lc_hmac::HMAC_SHA256, &key),
                black_box(&DATA),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("aes256_gcm_encrypt_4k");
    let mode = AesMode::Gcm(GcmParams {
        iv: GcmIv::Given(vec![1; 12]),
        aad: Vec::new(),
        tag_bits: 128,
    });
    g.bench_function("craton", |b| {
        b.iter(|| aes::encrypt(&key, &mode, black_box(&DATA), &rng).unwrap())
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            let k =
                aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &key).unwrap());
            let mut buf = DATA.to_vec();
            k.seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key([1; 12]),
                aead::Aad::empty(),
                &mut buf,
            )
            .unwrap();
            buf
        })
    });
    g.finish();

    let mut g = c.benchmark_group("random_32");
    let sys = lc_rand::SystemRandom::new();
    g.bench_function("craton_drbg", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            rng.fill(&mut out).unwrap();
            out
        })
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| lc_rand::generate::<[u8; 32]>(&sys).unwrap().expose())
    });
    g.finish();
}

fn asymmetric(c: &mut Criterion) {
    let rng = Rng::from_os().expect("rng");
    let msg = b"benchmark message";

    let mut g = c.benchmark_group("ecdsa_p256_sha256_sign");
    let ours = EcKey::generate(Curve::P256, &rng).unwrap();
    let sys = lc_rand::SystemRandom::new();
    let pkcs8 =
        lc_sig::EcdsaKeyPair::generate_pkcs8(&lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING, &sys)
            .unwrap();
    let theirs =
        lc_sig::EcdsaKeyPair::from_pkcs8(&lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .unwrap();
    g.bench_function("craton", |b| {
        b.iter(|| {
            ours.sign_digest(&digest::digest(HashAlg::Sha256, black_box(msg)).unwrap())
                .unwrap()
        })
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| theirs.sign(&sys, black_box(msg)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("ed25519_sign");
    let ours = Ed25519Key::generate(&rng).unwrap();
    let theirs = lc_sig::Ed25519KeyPair::generate().unwrap();
    g.bench_function("craton", |b| b.iter(|| ours.sign(black_box(msg)).unwrap()));
    g.bench_function("aws-lc-rs", |b| b.iter(|| theirs.sign(black_box(msg))));
    g.finish();

    let mut g = c.benchmark_group("rsa2048_pkcs1_sha256_sign");
    g.sample_size(20);
    let ours = RsaKey::generate(2048, &Rng::from_os().unwrap()).unwrap();
    let theirs = lc_sig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    g.bench_function("craton", |b| {
        b.iter(|| {
            let h = digest::digest(HashAlg::Sha256, black_box(msg)).unwrap();
            ours.sign(RsaSignScheme::Pkcs1(HashAlg::Sha256), &h)
                .unwrap()
        })
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            let mut sig = vec![0u8; theirs.public_modulus_len()];
            theirs
                .sign(&lc_sig::RSA_PKCS1_SHA256, &sys, black_box(msg), &mut sig)
                .unwrap();
            sig
        })
    });
    g.finish();
}

criterion_group!(benches, symmetric, asymmetric);
criterion_main!(benches);
