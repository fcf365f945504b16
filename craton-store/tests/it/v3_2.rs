//! The engine side of the PKCS#11 3.2 additions: verification with the signature given
//! first, authenticated (AES-GCM) key wrapping under module IVs, and the KEM's length query
//! and key attributes.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use craton_core::{CryptoError, KeyType};
use craton_store::{HsmError, ObjectHandle};

fn ec_pair(hsm: &Hsm, s: SessionHandle) -> (ObjectHandle, ObjectHandle) {
    hsm.generate_key_pair(
        s,
        &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
        &[(
            A::EC_PARAMS,
            AttrValue::Bytes(craton_core::ec::Curve::P256.ec_params().to_vec()),
        )],
        &[],
    )
    .unwrap()
}

#[test]
fn a_signature_given_first_verifies_in_one_part_or_many_and_a_bad_one_is_invalid() {
    let dir = Scratch::new("verify-sig");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let (public, private) = ec_pair(&hsm, s);
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    hsm.sign_init(s, &mech, private).unwrap();
    let sig = hsm.sign(s, b"first part, second part").unwrap();

    hsm.verify_signature_init(s, &mech, public, &sig).unwrap();
    hsm.verify_signature(s, b"first part, second part").unwrap();

    hsm.verify_signature_init(s, &mech, public, &sig).unwrap();
    hsm.verify_signature_update(s, b"first part, ").unwrap();
    hsm.verify_signature_update(s, b"second part").unwrap();
    hsm.verify_signature_final(s).unwrap();

    let mut bad = sig.clone();
    bad[5] ^= 1;
    hsm.verify_signature_init(s, &mech, public, &bad).unwrap();
    assert!(matches!(
        hsm.verify_signature(s, b"first part, second part"),
        Err(HsmError::Crypto(CryptoError::SignatureInvalid))
    ));
    // Each call ended its operation, so the next one finds none.
    assert!(matches!(
        hsm.verify_signature_final(s),
        Err(HsmError::OperationNotInitialized)
    ));
}

#[test]
fn the_two_ways_of_verifying_share_one_operation_and_do_not_mix() {
    let dir = Scratch::new("verify-mix");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let (public, private) = ec_pair(&hsm, s);
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    hsm.sign_init(s, &mech, private).unwrap();
    let sig = hsm.sign(s, b"m").unwrap();

    hsm.verify_init(s, &mech, public).unwrap();
    assert!(matches!(
        hsm.verify_signature_init(s, &mech, public, &sig),
        Err(HsmError::OperationActive)
    ));
    // A 3.2 call on a 3.0 verification finds no 3.2 operation, and ends the other.
    assert!(matches!(
        hsm.verify_signature(s, b"m"),
        Err(HsmError::OperationNotInitialized)
    ));
    assert!(matches!(
        hsm.verify(s, b"m", &sig),
        Err(HsmError::OperationNotInitialized)
    ));

    hsm.verify_signature_init(s, &mech, public, &sig).unwrap();
    assert!(matches!(
        hsm.verify_update(s, b"m"),
        Err(HsmError::OperationNotInitialized)
    ));
    // The key must allow verification, as for C_VerifyInit.
    assert!(matches!(
        hsm.verify_signature_init(s, &mech, private, &sig),
        Err(HsmError::KeyFunctionNotPermitted(_) | HsmError::Crypto(_))
    ));
    // An absurd signature is refused before anything is kept.
    assert!(matches!(
        hsm.verify_signature_init(s, &mech, public, &vec![0; 1 << 20]),
        Err(HsmError::Crypto(CryptoError::SignatureLenRange))
    ));
}

fn aes_key(hsm: &Hsm, s: SessionHandle, extra: &[(A, AttrValue)]) -> ObjectHandle {
    let mut t = vec![(A::VALUE_LEN, AttrValue::Ulong(32))];
    t.extend_from_slice(extra);
    hsm.generate_key(s, &Mechanism::Generate(M::AES_KEY_GEN), &t)
        .unwrap()
}

fn gcm(iv: GcmIv, aad: &[u8]) -> Mechanism {
    Mechanism::Aes(AesMode::Gcm(GcmParams {
        iv,
        aad: aad.to_vec(),
        tag_bits: 128,
    }))
}

#[test]
fn an_authenticated_wrap_uses_a_fresh_module_iv_and_binds_its_associated_data() {
    let dir = Scratch::new("wrap-auth");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let kek = aes_key(&hsm, s, &[(A::WRAP, b(true)), (A::UNWRAP, b(true))]);
    let target = aes_key(&hsm, s, &[(A::EXTRACTABLE, b(true)), (A::ENCRYPT, b(true))]);
    let fixed = b"node".to_vec();
    let generate = gcm(
        GcmIv::Generate {
            fixed: fixed.clone(),
            len: 16,
        },
        b"key-id-7",
    );
    assert_eq!(
        hsm.wrap_key_authenticated_len(s, &generate, kek, target)
            .unwrap(),
        32
    );
    let one = hsm
        .wrap_key_authenticated(s, &generate, kek, target)
        .unwrap();
    let two = hsm
        .wrap_key_authenticated(s, &generate, kek, target)
        .unwrap();
    let (iv1, iv2) = (one.iv.clone().unwrap(), two.iv.clone().unwrap());
    assert_eq!(iv1.len(), 16, "a fixed field plus 96 random bits");
    assert!(
        iv1.starts_with(&fixed),
        "the caller's fixed field leads the IV"
    );
    assert_ne!(iv1, iv2, "every wrap gets its own IV");
    assert_eq!(one.data.len(), 32 + 16, "the key, then the tag");

    let template = [
        (
            A::CLASS,
            AttrValue::Ulong(craton_core::attribute::ObjectClass::SECRET_KEY.0),
        ),
        (A::KEY_TYPE, AttrValue::Ulong(KeyType::AES.0)),
        (A::ENCRYPT, b(true)),
    ];
    // The wrong associated data fails the tag and creates nothing.
    let wrong = gcm(GcmIv::Given(iv1.clone()), b"key-id-8");
    assert!(matches!(
        hsm.unwrap_key(s, &wrong, kek, &one.data, &template),
        Err(HsmError::Crypto(CryptoError::WrappedKeyInvalid))
    ));
    let right = gcm(GcmIv::Given(iv1), b"key-id-7");
    let restored = hsm
        .unwrap_key(s, &right, kek, &one.data, &template)
        .unwrap();
    // Both are the same AES key: they encrypt a block alike.
    let block = |k| {
        hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), k)
            .unwrap();
        hsm.encrypt(s, &[0x42; 16]).unwrap()
    };
    assert_eq!(block(restored), block(target));

    // A caller-chosen IV could repeat: refused. So is a mechanism that is not AES-GCM.
    let given = gcm(GcmIv::Given(vec![7; 12]), b"");
    assert!(matches!(
        hsm.wrap_key_authenticated(s, &given, kek, target),
        Err(HsmError::Crypto(CryptoError::MechanismParamInvalid(_)))
    ));
    assert!(matches!(
        hsm.wrap_key_authenticated(
            s,
            &Mechanism::AesKeyWrap(craton_core::aes::KeyWrap::Kwp),
            kek,
            target
        ),
        Err(HsmError::Crypto(CryptoError::MechanismUnsupported(_)))
    ));
    // The wrapping key must allow wrapping; the target must be extractable.
    let plain = aes_key(&hsm, s, &[(A::ENCRYPT, b(true))]);
    assert!(matches!(
        hsm.wrap_key_authenticated(s, &generate, plain, target),
        Err(HsmError::KeyFunctionNotPermitted(
            "the key's CKA_WRAP is false"
        ))
    ));
    assert!(matches!(
        hsm.wrap_key_authenticated(s, &generate, kek, plain),
        Err(HsmError::KeyUnextractable(_))
    ));
}

#[test]
fn a_kem_length_query_creates_nothing_and_both_sides_get_plain_derived_keys() {
    let dir = Scratch::new("kem-len");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let (ek, dk) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::ML_KEM_KEY_PAIR_GEN),
            &[(A::PARAMETER_SET, AttrValue::Ulong(3))],
            &[],
        )
        .unwrap();
    let count = || {
        hsm.find_objects_init(s, &[]).unwrap();
        let n = hsm.find_objects(s, 1000).unwrap().len();
        hsm.find_objects_final(s).unwrap();
        n
    };
    let before = count();
    assert_eq!(
        hsm.encapsulate_key_len(s, &Mechanism::MlKem, ek).unwrap(),
        1568
    );
    assert_eq!(count(), before);
    let aes = [
        (A::KEY_TYPE, AttrValue::Ulong(KeyType::AES.0)),
        (A::ENCRYPT, b(true)),
    ];
    let (ct, k1) = hsm.encapsulate_key(s, &Mechanism::MlKem, ek, &aes).unwrap();
    assert_eq!(ct.len(), 1568);
    let k2 = hsm
        .decapsulate_key(s, &Mechanism::MlKem, dk, &ct, &aes)
        .unwrap();
    for k in [k1, k2] {
        let v = hsm
            .attribute_values(s, k, &[A::ALWAYS_SENSITIVE, A::NEVER_EXTRACTABLE, A::LOCAL])
            .unwrap();
        assert!(v.iter().all(|a| *a == Ok(b(false))), "{v:?}");
    }
    // A ciphertext of the wrong length is the 3.2 code for a bad wrapped key length.
    assert!(matches!(
        hsm.decapsulate_key(s, &Mechanism::MlKem, dk, &ct[1..], &aes),
        Err(HsmError::Crypto(CryptoError::WrappedKeyLenRange))
    ));
    // The private key cannot encapsulate, nor the public one decapsulate.
    assert!(matches!(
        hsm.encapsulate_key_len(s, &Mechanism::MlKem, dk),
        Err(HsmError::KeyFunctionNotPermitted(
            "the key's CKA_ENCAPSULATE is false"
        ))
    ));
    assert!(matches!(
        hsm.decapsulate_key(s, &Mechanism::MlKem, ek, &ct, &aes),
        Err(HsmError::KeyFunctionNotPermitted(
            "the key's CKA_DECAPSULATE is false"
        ))
    ));
}
