//! Object visibility, attribute rules, persistence of token objects, copy, destroy, find and
//! key dates.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::AesMode;
use craton_core::attribute::{AttributeError, ObjectClass};
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use craton_store::{HsmError, ObjectHandle};

fn aes_key(hsm: &Hsm, s: SessionHandle, extra: &[(A, AttrValue)]) -> ObjectHandle {
    let mut t = vec![
        (A::VALUE_LEN, AttrValue::Ulong(32)),
        (A::ENCRYPT, b(true)),
        (A::DECRYPT, b(true)),
        (A::TOKEN, b(true)),
    ];
    t.extend_from_slice(extra);
    hsm.generate_key(s, &Mechanism::Generate(M::AES_KEY_GEN), &t)
        .unwrap()
}

#[test]
fn private_objects_are_invisible_before_login_and_persist_sealed() {
    let dir = Scratch::new("private");
    let key;
    {
        let hsm = ready(dir.path());
        let s = user_session(&hsm);
        key = aes_key(&hsm, s, &[label("secret-aes")]);
        let public_data = hsm
            .create_object(
                s,
                &[
                    (A::CLASS, AttrValue::Ulong(ObjectClass::DATA.0)),
                    (A::TOKEN, b(true)),
                    (A::PRIVATE, b(false)),
                    (A::VALUE, AttrValue::Bytes(b"public note".to_vec())),
                    label("note"),
                ],
            )
            .unwrap();
        assert_ne!(key, public_data);
    }
    // The key bytes never appear in the file.
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let s = hsm.open_session(0, true).unwrap();
    hsm.find_objects_init(s, &[]).unwrap();
    let before = hsm.find_objects(s, 10).unwrap();
    hsm.find_objects_final(s).unwrap();
    assert_eq!(before.len(), 1, "only the public data object is visible");
    assert!(matches!(
        hsm.attribute_values(s, key, &[A::LABEL]),
        Err(HsmError::ObjectHandleInvalid)
    ));
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    let label_value = hsm.attribute_values(s, key, &[A::LABEL]).unwrap();
    assert_eq!(
        label_value[0].as_ref().unwrap(),
        &AttrValue::Bytes(b"secret-aes".to_vec())
    );
    // Sensitive by default: the value cannot be read.
    let v = hsm
        .attribute_values(
            s,
            key,
            &[A::VALUE, A::SENSITIVE, A::NEVER_EXTRACTABLE, A::LOCAL],
        )
        .unwrap();
    assert_eq!(v[0], Err(AttributeError::Sensitive(A::VALUE)));
    assert_eq!(v[1], Ok(b(true)));
    assert_eq!(v[2], Ok(b(true)));
    assert_eq!(v[3], Ok(b(true)));
    // And it works after the restart.
    let mech = Mechanism::Aes(AesMode::CbcPad { iv: [1; 16] });
    hsm.cipher_init(s, Direction::Encrypt, &mech, key).unwrap();
    let ct = hsm.cipher(s, Direction::Encrypt, b"persisted key").unwrap();
    hsm.cipher_init(s, Direction::Decrypt, &mech, key).unwrap();
    assert_eq!(
        &hsm.cipher(s, Direction::Decrypt, &ct).unwrap()[..],
        b"persisted key"
    );
    hsm.logout(s).unwrap();
    assert!(matches!(
        hsm.cipher_init(s, Direction::Encrypt, &mech, key),
        Err(HsmError::KeyHandleInvalid)
    ));
}

#[test]
fn an_so_reset_of_the_user_pin_keeps_the_objects() {
    let dir = Scratch::new("so-reset");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let key = aes_key(&hsm, s, &[]);
    hsm.close_session(s).unwrap();
    let so = hsm.open_session(0, true).unwrap();
    hsm.login(so, UserType::So, SO_PIN).unwrap();
    hsm.init_pin(so, b"forgotten-reset").unwrap();
    hsm.close_session(so).unwrap();
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, b"forgotten-reset").unwrap();
    assert!(hsm.attribute_values(s, key, &[A::CLASS]).is_ok());
}

#[test]
fn init_token_wipes_every_object_for_good() {
    let dir = Scratch::new("wipe");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let key = aes_key(&hsm, s, &[]);
    hsm.close_session(s).unwrap();
    hsm.init_token(0, SO_PIN, "fresh").unwrap();
    drop(hsm);
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let so = hsm.open_session(0, true).unwrap();
    hsm.login(so, UserType::So, SO_PIN).unwrap();
    hsm.init_pin(so, USER_PIN).unwrap();
    hsm.logout(so).unwrap();
    hsm.login(so, UserType::User, USER_PIN).unwrap();
    assert!(matches!(
        hsm.attribute_values(so, key, &[A::CLASS]),
        Err(HsmError::ObjectHandleInvalid)
    ));
    hsm.find_objects_init(so, &[]).unwrap();
    assert!(hsm.find_objects(so, 10).unwrap().is_empty());
}

#[test]
fn session_objects_are_shared_by_their_application_and_vanish_with_their_session() {
    let dir = Scratch::new("session-objects");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let other = hsm.open_session(0, false).unwrap();
    let stranger = hsm
        .open_session_for(0, true, craton_store::Application(7))
        .unwrap();
    let ephemeral = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(16))],
        )
        .unwrap();
    // Every session of the application may use it (a read-only one too); another
    // application's session cannot see it, by handle or by search.
    assert!(hsm.attribute_values(other, ephemeral, &[A::CLASS]).is_ok());
    hsm.find_objects_init(other, &[]).unwrap();
    assert!(hsm.find_objects(other, 10).unwrap().contains(&ephemeral));
    hsm.find_objects_final(other).unwrap();
    assert!(matches!(
        hsm.attribute_values(stranger, ephemeral, &[A::CLASS]),
        Err(HsmError::ObjectHandleInvalid)
    ));
    hsm.find_objects_init(stranger, &[]).unwrap();
    assert!(!hsm.find_objects(stranger, 10).unwrap().contains(&ephemeral));
    let pinned = aes_key(&hsm, s, &[(A::DESTROYABLE, b(false))]);
    assert!(matches!(
        hsm.destroy_object(s, pinned),
        Err(HsmError::ActionProhibited(_))
    ));
    let gone = aes_key(&hsm, s, &[]);
    hsm.destroy_object(s, gone).unwrap();
    assert!(matches!(
        hsm.destroy_object(s, gone),
        Err(HsmError::ObjectHandleInvalid)
    ));
    hsm.close_session(s).unwrap();
    // The login is the token's and survives in `other`; the session object does not.
    assert!(matches!(
        hsm.attribute_values(other, ephemeral, &[A::CLASS]),
        Err(HsmError::ObjectHandleInvalid)
    ));
}

#[test]
fn attribute_changes_follow_the_one_way_rules_and_copy_needs_copyable() {
    let dir = Scratch::new("attrs");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let open = aes_key(
        &hsm,
        s,
        &[(A::SENSITIVE, b(false)), (A::EXTRACTABLE, b(true))],
    );
    let v = hsm.attribute_values(s, open, &[A::VALUE]).unwrap();
    assert!(matches!(&v[0], Ok(AttrValue::Secret(k)) if k.len() == 32));
    hsm.set_attribute_values(s, open, &[(A::SENSITIVE, b(true)), label("now sensitive")])
        .unwrap();
    assert!(matches!(
        hsm.set_attribute_values(s, open, &[(A::SENSITIVE, b(false))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(A::SENSITIVE)))
    ));
    assert!(matches!(
        hsm.set_attribute_values(s, open, &[(A::VALUE_LEN, AttrValue::Ulong(16))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(_)))
    ));
    assert!(matches!(
        hsm.attribute_values(s, open, &[A::VALUE]).unwrap()[0],
        Err(AttributeError::Sensitive(A::VALUE))
    ));
    let copy = hsm
        .copy_object(s, open, &[label("copy"), (A::TOKEN, b(false))])
        .unwrap();
    assert_eq!(
        hsm.attribute_values(s, copy, &[A::LABEL]).unwrap()[0],
        Ok(AttrValue::Bytes(b"copy".to_vec()))
    );
    let frozen = aes_key(&hsm, s, &[(A::COPYABLE, b(false))]);
    assert!(matches!(
        hsm.copy_object(s, frozen, &[]),
        Err(HsmError::ActionProhibited(_))
    ));
    // Label change persisted.
    drop(hsm);
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let s = user_session(&hsm);
    assert_eq!(
        hsm.attribute_values(s, open, &[A::LABEL]).unwrap()[0],
        Ok(AttrValue::Bytes(b"now sensitive".to_vec()))
    );
}

#[test]
fn find_matches_templates_but_never_secret_values() {
    let dir = Scratch::new("find");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let a = aes_key(
        &hsm,
        s,
        &[
            label("alpha"),
            (A::SENSITIVE, b(false)),
            (A::EXTRACTABLE, b(true)),
        ],
    );
    let _b = aes_key(&hsm, s, &[label("beta")]);
    hsm.find_objects_init(s, &[label("alpha")]).unwrap();
    assert!(matches!(
        hsm.find_objects_init(s, &[]),
        Err(HsmError::OperationActive)
    ));
    assert_eq!(hsm.find_objects(s, 10).unwrap(), vec![a]);
    assert!(hsm.find_objects(s, 10).unwrap().is_empty());
    hsm.find_objects_final(s).unwrap();
    assert!(matches!(
        hsm.find_objects(s, 1),
        Err(HsmError::OperationNotInitialized)
    ));
    // Searching by the value of a sensitive key finds nothing.
    let sensitive = aes_key(&hsm, s, &[label("gamma")]);
    let _ = sensitive;
    hsm.find_objects_init(s, &[(A::VALUE_LEN, AttrValue::Ulong(32))])
        .unwrap();
    assert_eq!(hsm.find_objects(s, 10).unwrap().len(), 3);
    hsm.find_objects_final(s).unwrap();
}

#[test]
fn an_expired_key_cannot_sign_but_still_verifies() {
    let dir = Scratch::new("dates");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
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
            &[(A::SIGN, b(true))],
        )
        .unwrap();
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    hsm.sign_init(s, &mech, private).unwrap();
    let sig = hsm.sign(s, b"before expiry").unwrap();
    let past = AttrValue::Date(Some(*b"20200101"));
    hsm.set_attribute_values(s, private, &[(A::END_DATE, past.clone())])
        .unwrap();
    hsm.set_attribute_values(s, public, &[(A::END_DATE, past)])
        .unwrap();
    assert!(matches!(
        hsm.sign_init(s, &mech, private),
        Err(HsmError::KeyFunctionNotPermitted(_))
    ));
    hsm.verify_init(s, &mech, public).unwrap();
    hsm.verify(s, b"before expiry", &sig).unwrap();
    // A key not yet valid is refused the same way.
    let future = AttrValue::Date(Some(*b"29990101"));
    let k = aes_key(&hsm, s, &[(A::START_DATE, future)]);
    assert!(matches!(
        hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), k),
        Err(HsmError::KeyFunctionNotPermitted(_))
    ));
    hsm.cipher_init(s, Direction::Decrypt, &Mechanism::Aes(AesMode::Ecb), k)
        .unwrap();
}

#[test]
fn usage_flags_and_templates_are_enforced() {
    let dir = Scratch::new("usage");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let k = aes_key(&hsm, s, &[]);
    // CKA_SIGN was never granted.
    assert!(matches!(
        hsm.sign_init(
            s,
            &Mechanism::AesCmac {
                tag_len: 16,
                general: false
            },
            k
        ),
        Err(HsmError::KeyFunctionNotPermitted(_))
    ));
    // Token-managed attributes cannot be supplied.
    assert!(matches!(
        hsm.generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(16)), (A::LOCAL, b(true))]
        ),
        Err(HsmError::Attribute(AttributeError::ReadOnly(A::LOCAL)))
    ));
    // A bad size is the registry's refusal.
    assert!(matches!(
        hsm.generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(20))]
        ),
        Err(HsmError::Crypto(_))
    ));
    // RSA-1024 is refused by default policy.
    assert!(matches!(
        hsm.generate_key_pair(
            s,
            &Mechanism::Generate(M::RSA_PKCS_KEY_PAIR_GEN),
            &[(A::MODULUS_BITS, AttrValue::Ulong(1024))],
            &[]
        ),
        Err(HsmError::Crypto(
            craton_core::CryptoError::KeySizeRange { .. }
        ))
    ));
    // Imported keys are checked.
    assert!(matches!(
        hsm.create_object(
            s,
            &[
                (A::CLASS, AttrValue::Ulong(ObjectClass::SECRET_KEY.0)),
                (A::KEY_TYPE, AttrValue::Ulong(craton_core::KeyType::AES.0)),
                (A::VALUE, AttrValue::Bytes(vec![7; 17])),
            ]
        ),
        Err(HsmError::Attribute(AttributeError::ValueInvalid(_)))
    ));
    assert!(matches!(
        hsm.create_object(s, &[(A::LABEL, AttrValue::Bytes(b"x".to_vec()))]),
        Err(HsmError::Attribute(AttributeError::Incomplete(A::CLASS)))
    ));
}

#[test]
fn every_algorithm_family_signs_or_encrypts_through_the_engine() {
    let dir = Scratch::new("families");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    type Case = (M, Vec<(A, AttrValue)>, Mechanism);
    let pairs: Vec<Case> = vec![
        (
            M::RSA_PKCS_KEY_PAIR_GEN,
            vec![(A::MODULUS_BITS, AttrValue::Ulong(2048))],
            Mechanism::RsaPkcsWith(HashAlg::Sha256),
        ),
        (
            M::ML_DSA_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, AttrValue::Ulong(2))],
            Mechanism::MlDsa {
                context: b"ctx".to_vec(),
            },
        ),
        (
            M::SLH_DSA_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, AttrValue::Ulong(3))],
            Mechanism::SlhDsa {
                context: Vec::new(),
            },
        ),
    ];
    for (gen_mech, params, sign_mech) in pairs {
        let mut pt = params.clone();
        pt.push((A::VERIFY, b(true)));
        let (public, private) = hsm
            .generate_key_pair(
                s,
                &Mechanism::Generate(gen_mech),
                &pt,
                &[(A::SIGN, b(true)), (A::TOKEN, b(true))],
            )
            .unwrap();
        hsm.sign_init(s, &sign_mech, private).unwrap();
        let len = hsm.signature_len(s).unwrap();
        let sig = hsm.sign(s, b"family").unwrap();
        assert_eq!(sig.len(), len);
        hsm.verify_init(s, &sign_mech, public).unwrap();
        hsm.verify(s, b"family", &sig).unwrap();
    }
    // ML-KEM through encapsulate/decapsulate yields the same secret key on both sides.
    let (ek, dk) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::ML_KEM_KEY_PAIR_GEN),
            &[
                (A::PARAMETER_SET, AttrValue::Ulong(2)),
                (A::ENCAPSULATE, b(true)),
            ],
            &[(A::DECAPSULATE, b(true))],
        )
        .unwrap();
    let generic = AttrValue::Ulong(craton_core::KeyType::GENERIC_SECRET.0);
    let (ct, k1) = hsm
        .encapsulate_key(
            s,
            &Mechanism::MlKem,
            ek,
            &[(A::KEY_TYPE, generic.clone()), (A::VERIFY, b(true))],
        )
        .unwrap();
    let k2 = hsm
        .decapsulate_key(
            s,
            &Mechanism::MlKem,
            dk,
            &ct,
            &[(A::KEY_TYPE, generic), (A::SIGN, b(true))],
        )
        .unwrap();
    assert_eq!(
        hsm.attribute_values(s, k2, &[A::VALUE_LEN]).unwrap()[0],
        Ok(AttrValue::Ulong(32))
    );
    // Both sides hold the same secret: a MAC made with one verifies with the other.
    let hmac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    hsm.sign_init(s, &hmac, k2).unwrap();
    let tag = hsm.sign(s, b"kem").unwrap();
    hsm.verify_init(s, &hmac, k1).unwrap();
    hsm.verify(s, b"kem", &tag).unwrap();
    // Digest through a session.
    hsm.digest_init(s, &Mechanism::Digest(HashAlg::Sha256))
        .unwrap();
    hsm.digest_update(s, b"a").unwrap();
    hsm.digest_update(s, b"bc").unwrap();
    assert_eq!(
        hex::encode(hsm.digest_final(s).unwrap()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn a_public_key_object_with_a_sealed_secret_cannot_be_rewritten_before_login() {
    let dir = Scratch::new("sealed-rewrite");
    let handle;
    {
        let hsm = ready(dir.path());
        let s = user_session(&hsm);
        handle = aes_key(&hsm, s, &[(A::PRIVATE, b(false)), label("public-aes")]);
    }
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let s = hsm.open_session(0, true).unwrap();
    // Visible (not private), but its CKA_VALUE is sealed until the user logs in.
    assert!(hsm.attribute_values(s, handle, &[A::LABEL]).is_ok());
    assert!(matches!(
        hsm.set_attribute_values(s, handle, &[label("renamed")]),
        Err(HsmError::UserNotLoggedIn)
    ));
    assert!(matches!(
        hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), handle),
        Err(HsmError::UserNotLoggedIn)
    ));
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    hsm.set_attribute_values(s, handle, &[label("renamed")])
        .unwrap();
    hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), handle)
        .unwrap();
    assert_eq!(
        hsm.cipher(s, Direction::Encrypt, &[0; 16]).unwrap().len(),
        16
    );
}

#[test]
fn every_object_has_a_unique_id_the_caller_cannot_set() {
    let dir = Scratch::new("unique-id");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let a = aes_key(&hsm, s, &[]);
    let b_key = aes_key(&hsm, s, &[]);
    let id = |h| hsm.attribute_values(s, h, &[A::UNIQUE_ID]).unwrap()[0].clone();
    assert_ne!(id(a), id(b_key));
    assert!(matches!(id(a), Ok(AttrValue::Bytes(ref v)) if !v.is_empty()));
    let copy = hsm.copy_object(s, a, &[]).unwrap();
    assert_ne!(id(copy), id(a));
    assert!(matches!(
        hsm.set_attribute_values(s, a, &[(A::UNIQUE_ID, AttrValue::Bytes(b"x".to_vec()))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(A::UNIQUE_ID)))
    ));
    hsm.find_objects_init(s, &[(A::UNIQUE_ID, id(b_key).unwrap())])
        .unwrap();
    assert_eq!(hsm.find_objects(s, 5).unwrap(), vec![b_key]);
}

#[test]
fn generated_keys_without_usage_in_the_template_get_what_their_type_is_for() {
    let dir = Scratch::new("natural-usage");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let p256 = (
        A::EC_PARAMS,
        AttrValue::Bytes(craton_core::ec::Curve::P256.ec_params().to_vec()),
    );
    let read = |h, a| hsm.attribute_values(s, h, &[a]).unwrap()[0].clone();
    // Java's SunPKCS11 sends nothing but the curve.
    let (public, private) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            std::slice::from_ref(&p256),
            &[],
        )
        .unwrap();
    assert_eq!(read(private, A::SIGN), Ok(b(true)));
    assert_eq!(read(public, A::VERIFY), Ok(b(true)));
    for (h, a) in [
        (private, A::DECRYPT),
        (private, A::UNWRAP),
        (private, A::DERIVE),
    ] {
        assert_eq!(read(h, a), Ok(b(false)), "{a:?}");
    }
    let aes = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(32))],
        )
        .unwrap();
    assert_eq!(read(aes, A::ENCRYPT), Ok(b(true)));
    assert_eq!(read(aes, A::DECRYPT), Ok(b(true)));
    assert_eq!(read(aes, A::WRAP), Ok(b(false)));
    // A template that names any usage gets exactly that.
    let (_, only_derive) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            &[p256],
            &[(A::DERIVE, b(true))],
        )
        .unwrap();
    assert_eq!(read(only_derive, A::SIGN), Ok(b(false)));
    assert_eq!(read(only_derive, A::DERIVE), Ok(b(true)));
}

#[test]
fn a_key_a_session_used_before_follows_changes_destruction_and_logout() {
    let dir = Scratch::new("key-cache");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let other = hsm.open_session(0, true).unwrap();
    let key = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::ENCRYPT, b(true)),
                (A::DECRYPT, b(false)),
                (A::PRIVATE, b(true)),
                (A::TOKEN, b(true)),
            ],
        )
        .unwrap();
    let ecb = Mechanism::Aes(AesMode::Ecb);
    let encrypt = |h| {
        hsm.cipher_init(h, Direction::Encrypt, &ecb, key)?;
        hsm.encrypt(h, &[0; 16])
    };
    // Used three times: the session now holds its own copy of the key.
    for _ in 0..3 {
        encrypt(s).unwrap();
    }
    // The session remembers that the key passed the checks for this mechanism and use only:
    // another use, or a mechanism for another key type, is checked afresh.
    assert!(matches!(
        hsm.cipher_init(s, Direction::Decrypt, &ecb, key),
        Err(HsmError::KeyFunctionNotPermitted(_))
    ));
    let hmac = Mechanism::Hmac {
        hash: craton_core::digest::HashAlg::Sha256,
        tag_len: 32,
        general: false,
    };
    assert!(hsm.sign_init(s, &hmac, key).is_err());
    encrypt(s).unwrap();
    // A change made through another session reaches this one's next use.
    hsm.set_attribute_values(other, key, &[(A::ENCRYPT, b(false))])
        .unwrap();
    assert!(matches!(
        encrypt(s),
        Err(HsmError::KeyFunctionNotPermitted(_))
    ));
    hsm.set_attribute_values(other, key, &[(A::ENCRYPT, b(true))])
        .unwrap();
    for _ in 0..3 {
        encrypt(s).unwrap();
    }
    // Logging out hides the private key from every session of the token.
    hsm.logout(other).unwrap();
    assert!(matches!(encrypt(s), Err(HsmError::KeyHandleInvalid)));
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    encrypt(s).unwrap();
    encrypt(s).unwrap();
    // Adding an object elsewhere (which leaves the token's generation alone) does not disturb
    // the key's use...
    let note = hsm
        .create_object(
            other,
            &[
                (A::CLASS, AttrValue::Ulong(ObjectClass::DATA.0)),
                (A::VALUE, AttrValue::Bytes(b"note".to_vec())),
            ],
        )
        .unwrap();
    encrypt(s).unwrap();
    hsm.destroy_object(other, note).unwrap();
    // ...and destruction anywhere ends it everywhere.
    hsm.destroy_object(other, key).unwrap();
    assert!(matches!(encrypt(s), Err(HsmError::KeyHandleInvalid)));
}

/// A key's secret parts live on locked pages in the object, from generation, import and a
/// reload from the store alike; public values stay plain bytes. (Read back from extractable
/// keys, so the values can be looked at.)
#[test]
fn secret_parts_of_keys_are_kept_on_locked_pages() {
    let dir = Scratch::new("locked-secrets");
    let open = [
        (A::SENSITIVE, b(false)),
        (A::EXTRACTABLE, b(true)),
        (A::TOKEN, b(true)),
    ];
    let (aes, rsa_private, rsa_public, imported);
    {
        let hsm = ready(dir.path());
        let s = user_session(&hsm);
        aes = aes_key(&hsm, s, &open);
        let mut private_template = vec![(A::SIGN, b(true))];
        private_template.extend_from_slice(&open);
        (rsa_public, rsa_private) = hsm
            .generate_key_pair(
                s,
                &Mechanism::Generate(M::RSA_PKCS_KEY_PAIR_GEN),
                &[
                    (A::MODULUS_BITS, AttrValue::Ulong(2048)),
                    (A::TOKEN, b(true)),
                ],
                &private_template,
            )
            .unwrap();
        imported = hsm
            .create_object(
                s,
                &[
                    (A::CLASS, AttrValue::Ulong(ObjectClass::SECRET_KEY.0)),
                    (A::KEY_TYPE, AttrValue::Ulong(craton_core::KeyType::AES.0)),
                    (A::VALUE, AttrValue::Bytes(vec![0x11; 16])),
                    (A::SENSITIVE, b(false)),
                    (A::EXTRACTABLE, b(true)),
                    (A::TOKEN, b(true)),
                ],
            )
            .unwrap();
    }
    // Reopened: every object comes back from the store.
    let hsm = Hsm::open(config(dir.path())).unwrap();
    let s = user_session(&hsm);
    let value = |o, a| hsm.attribute_values(s, o, &[a]).unwrap().remove(0).unwrap();
    assert!(matches!(value(aes, A::VALUE), AttrValue::Secret(ref v) if v.len() == 32));
    assert_eq!(value(imported, A::VALUE), AttrValue::Bytes(vec![0x11; 16]));
    assert!(matches!(value(imported, A::VALUE), AttrValue::Secret(_)));
    for a in [A::PRIVATE_EXPONENT, A::PRIME_1, A::PRIME_2, A::COEFFICIENT] {
        assert!(
            matches!(value(rsa_private, a), AttrValue::Secret(_)),
            "{a:?}"
        );
    }
    assert!(matches!(
        value(rsa_private, A::MODULUS),
        AttrValue::Bytes(_)
    ));
    assert!(matches!(value(rsa_public, A::MODULUS), AttrValue::Bytes(_)));
    // And the keys still work from there.
    hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), aes)
        .unwrap();
    assert_eq!(hsm.encrypt(s, &[0u8; 16]).unwrap().len(), 16);
    let mech = Mechanism::RsaPkcsWith(HashAlg::Sha256);
    hsm.sign_init(s, &mech, rsa_private).unwrap();
    let sig = hsm.sign(s, b"locked").unwrap();
    hsm.verify_init(s, &mech, rsa_public).unwrap();
    hsm.verify(s, b"locked", &sig).unwrap();
}
