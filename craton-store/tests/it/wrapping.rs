//! Key wrapping: secret keys as their value, private keys as PKCS#8, under AES key wrap, AES
//! modes or RSA-OAEP; unwrapped keys work and stay sensitive.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::{AesMode, KeyWrap};
use craton_core::attribute::{AttributeError, ObjectClass};
use craton_core::digest::HashAlg;
use craton_core::ops::{Mechanism, OaepParams};
use craton_core::{CryptoError, KeyType};
use craton_store::HsmError;

#[test]
fn an_ec_private_key_round_trips_through_kwp_as_pkcs8() {
    let dir = Scratch::new("wrap-ec");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let kek = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::WRAP, b(true)),
                (A::UNWRAP, b(true)),
            ],
        )
        .unwrap();
    let (public, private) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            &[
                (
                    A::EC_PARAMS,
                    AttrValue::Bytes(craton_core::ec::Curve::P256.ec_params().to_vec()),
                ),
                (A::VERIFY, b(true)),
            ],
            &[(A::SIGN, b(true)), (A::EXTRACTABLE, b(true))],
        )
        .unwrap();
    let kwp = Mechanism::AesKeyWrap(KeyWrap::Kwp);
    let blob = hsm.wrap_key(s, &kwp, kek, private).unwrap();
    let template = [
        (A::CLASS, AttrValue::Ulong(ObjectClass::PRIVATE_KEY.0)),
        (A::KEY_TYPE, AttrValue::Ulong(KeyType::EC.0)),
        (A::SIGN, b(true)),
    ];
    let restored = hsm.unwrap_key(s, &kwp, kek, &blob, &template).unwrap();
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    hsm.sign_init(s, &mech, restored).unwrap();
    let sig = hsm.sign(s, b"unwrapped").unwrap();
    hsm.verify_init(s, &mech, public).unwrap();
    hsm.verify(s, b"unwrapped", &sig).unwrap();
    assert_eq!(
        hsm.attribute_values(s, restored, &[A::VALUE]).unwrap()[0],
        Err(AttributeError::Sensitive(A::VALUE))
    );
    // A damaged blob, or the wrong key type, is a wrapped-key error.
    let mut bad = blob.clone();
    bad[5] ^= 1;
    assert!(matches!(
        hsm.unwrap_key(s, &kwp, kek, &bad, &template),
        Err(HsmError::Crypto(CryptoError::WrappedKeyInvalid))
    ));
    let wrong_type = [
        (A::CLASS, AttrValue::Ulong(ObjectClass::PRIVATE_KEY.0)),
        (A::KEY_TYPE, AttrValue::Ulong(KeyType::RSA.0)),
    ];
    assert!(matches!(
        hsm.unwrap_key(s, &kwp, kek, &blob, &wrong_type),
        Err(HsmError::Crypto(CryptoError::WrappedKeyInvalid))
    ));
}

#[test]
fn a_secret_key_round_trips_through_rsa_oaep() {
    let dir = Scratch::new("wrap-oaep");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let (rsa_pub, rsa_priv) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::RSA_PKCS_KEY_PAIR_GEN),
            &[
                (A::MODULUS_BITS, AttrValue::Ulong(3072)),
                (A::WRAP, b(true)),
            ],
            &[(A::UNWRAP, b(true))],
        )
        .unwrap();
    let aes = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(16)),
                (A::EXTRACTABLE, b(true)),
                (A::ENCRYPT, b(true)),
            ],
        )
        .unwrap();
    let oaep = Mechanism::RsaOaep(OaepParams {
        hash: HashAlg::Sha256,
        mgf1: HashAlg::Sha256,
        label: b"craton".to_vec(),
    });
    let blob = hsm.wrap_key(s, &oaep, rsa_pub, aes).unwrap();
    assert_eq!(blob.len(), 384);
    let back = hsm
        .unwrap_key(
            s,
            &oaep,
            rsa_priv,
            &blob,
            &[
                (A::CLASS, AttrValue::Ulong(ObjectClass::SECRET_KEY.0)),
                (A::KEY_TYPE, AttrValue::Ulong(KeyType::AES.0)),
                (A::DECRYPT, b(true)),
            ],
        )
        .unwrap();
    let ecb = Mechanism::Aes(AesMode::Ecb);
    hsm.cipher_init(s, Direction::Encrypt, &ecb, aes).unwrap();
    let ct = hsm.encrypt(s, &[7; 16]).unwrap();
    hsm.cipher_init(s, Direction::Decrypt, &ecb, back).unwrap();
    assert_eq!(
        &hsm.cipher(s, Direction::Decrypt, &ct).unwrap()[..],
        &[7; 16]
    );
}

#[test]
fn aes_key_wrap_also_works_as_a_single_part_cipher() {
    let dir = Scratch::new("kw-cipher");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let k = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::ENCRYPT, b(true)),
                (A::DECRYPT, b(true)),
            ],
        )
        .unwrap();
    let kwp = Mechanism::AesKeyWrap(KeyWrap::Kwp);
    hsm.cipher_init(s, Direction::Encrypt, &kwp, k).unwrap();
    assert!(hsm.cipher_len(s, Direction::Encrypt, 20).unwrap() >= 32);
    let wrapped = hsm.encrypt(s, &[1; 20]).unwrap();
    assert_eq!(wrapped.len(), 32);
    hsm.cipher_init(s, Direction::Decrypt, &kwp, k).unwrap();
    assert!(matches!(
        hsm.cipher_update(s, Direction::Decrypt, &wrapped),
        Err(HsmError::Crypto(CryptoError::SinglePartOnly))
    ));
    hsm.cipher_init(s, Direction::Decrypt, &kwp, k).unwrap();
    assert_eq!(
        &hsm.cipher(s, Direction::Decrypt, &wrapped).unwrap()[..],
        &[1; 20]
    );
}
