//! One test per known PKCS#11 key-management attack, each named after it (Clulow 2003;
//! Delaune, Kremer and Steel 2008; Bortolozzo et al. 2010). Each shows the attack's first
//! step is refused, so the sensitive key never leaves in the clear.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::{AesMode, KeyWrap};
use craton_core::attribute::{AttributeError, ObjectClass};
use craton_core::ops::Mechanism;
use craton_store::{HsmError, ObjectHandle};

fn aes(
    hsm: &Hsm,
    s: SessionHandle,
    len: u64,
    attrs: &[(A, AttrValue)],
) -> Result<ObjectHandle, HsmError> {
    let mut t = vec![(A::VALUE_LEN, AttrValue::Ulong(len))];
    t.extend_from_slice(attrs);
    hsm.generate_key(s, &Mechanism::Generate(M::AES_KEY_GEN), &t)
}

fn secret_template() -> Vec<(A, AttrValue)> {
    vec![
        (A::CLASS, AttrValue::Ulong(ObjectClass::SECRET_KEY.0)),
        (A::KEY_TYPE, AttrValue::Ulong(craton_core::KeyType::AES.0)),
    ]
}

#[test]
fn wrap_then_decrypt_attack_is_refused() {
    // Clulow: a key that can wrap and decrypt wraps the target, then decrypts the blob.
    let dir = Scratch::new("wrap-decrypt");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    assert!(matches!(
        aes(&hsm, s, 32, &[(A::WRAP, b(true)), (A::DECRYPT, b(true))]),
        Err(HsmError::Attribute(AttributeError::Inconsistent(
            A::DECRYPT
        )))
    ));
    // Nor can the combination be assembled afterwards.
    let k = aes(&hsm, s, 32, &[(A::WRAP, b(true))]).unwrap();
    assert!(matches!(
        hsm.set_attribute_values(s, k, &[(A::DECRYPT, b(true))]),
        Err(HsmError::Attribute(AttributeError::Inconsistent(
            A::DECRYPT
        )))
    ));
    // Nor by copying with new usage flags.
    assert!(matches!(
        hsm.copy_object(s, k, &[(A::DECRYPT, b(true))]),
        Err(HsmError::Attribute(AttributeError::Inconsistent(
            A::DECRYPT
        )))
    ));
}

#[test]
fn encrypt_then_unwrap_attack_is_refused() {
    // The mirror image: encrypt chosen key material, then unwrap it as a key with known value.
    let dir = Scratch::new("encrypt-unwrap");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    assert!(matches!(
        aes(&hsm, s, 32, &[(A::UNWRAP, b(true)), (A::ENCRYPT, b(true))]),
        Err(HsmError::Attribute(AttributeError::Inconsistent(
            A::ENCRYPT
        )))
    ));
}

#[test]
fn unwrap_as_non_sensitive_attack_is_refused() {
    // Wrap a sensitive key, unwrap the blob with CKA_SENSITIVE false, read CKA_VALUE.
    let dir = Scratch::new("unwrap-insensitive");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let kek = aes(&hsm, s, 32, &[(A::WRAP, b(true)), (A::UNWRAP, b(true))]).unwrap();
    let target = aes(&hsm, s, 16, &[(A::EXTRACTABLE, b(true))]).unwrap();
    let mech = Mechanism::AesKeyWrap(KeyWrap::Kw);
    let blob = hsm.wrap_key(s, &mech, kek, target).unwrap();
    let mut tpl = secret_template();
    tpl.push((A::SENSITIVE, b(false)));
    tpl.push((A::EXTRACTABLE, b(true)));
    assert!(matches!(
        hsm.unwrap_key(s, &mech, kek, &blob, &tpl),
        Err(HsmError::Attribute(AttributeError::Inconsistent(
            A::SENSITIVE
        )))
    ));
    // Unwrapping without saying anything gives a sensitive key whose value stays hidden.
    let back = hsm
        .unwrap_key(s, &mech, kek, &blob, &secret_template())
        .unwrap();
    assert_eq!(
        hsm.attribute_values(s, back, &[A::VALUE]).unwrap()[0],
        Err(AttributeError::Sensitive(A::VALUE))
    );
    assert_eq!(
        hsm.attribute_values(s, back, &[A::ALWAYS_SENSITIVE])
            .unwrap()[0],
        Ok(b(false))
    );
}

#[test]
fn weak_key_wraps_strong_key_attack_is_refused() {
    // Wrapping a 256-bit key under a 128-bit key lets a brute force on the weaker key recover
    // the stronger one.
    let dir = Scratch::new("weak-wraps-strong");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let weak = aes(&hsm, s, 16, &[(A::WRAP, b(true))]).unwrap();
    let strong = aes(&hsm, s, 32, &[(A::EXTRACTABLE, b(true))]).unwrap();
    assert!(matches!(
        hsm.wrap_key(s, &Mechanism::AesKeyWrap(KeyWrap::Kw), weak, strong),
        Err(HsmError::WrappingKeyTooWeak)
    ));
}

#[test]
fn wrap_with_untrusted_key_attack_is_refused() {
    // A CKA_WRAP_WITH_TRUSTED key may leave only under a key the SO marked trusted.
    let dir = Scratch::new("wrap-untrusted");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let kek = aes(&hsm, s, 32, &[(A::WRAP, b(true))]).unwrap();
    let guarded = aes(
        &hsm,
        s,
        16,
        &[(A::EXTRACTABLE, b(true)), (A::WRAP_WITH_TRUSTED, b(true))],
    )
    .unwrap();
    assert!(matches!(
        hsm.wrap_key(s, &Mechanism::AesKeyWrap(KeyWrap::Kw), kek, guarded),
        Err(HsmError::KeyUnextractable(_))
    ));
    // Only the SO can mark a key trusted.
    assert!(matches!(
        hsm.set_attribute_values(s, kek, &[(A::TRUSTED, b(true))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(A::TRUSTED)))
    ));
    // And the flag cannot be dropped to get around it.
    assert!(matches!(
        hsm.set_attribute_values(s, guarded, &[(A::WRAP_WITH_TRUSTED, b(false))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(
            A::WRAP_WITH_TRUSTED
        )))
    ));
}

#[test]
fn unextractable_key_wrap_attack_is_refused() {
    let dir = Scratch::new("unextractable");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let kek = aes(&hsm, s, 32, &[(A::WRAP, b(true))]).unwrap();
    let target = aes(&hsm, s, 16, &[]).unwrap();
    assert!(matches!(
        hsm.wrap_key(s, &Mechanism::AesKeyWrap(KeyWrap::Kw), kek, target),
        Err(HsmError::KeyUnextractable(_))
    ));
    // CKA_EXTRACTABLE cannot be turned back on.
    assert!(matches!(
        hsm.set_attribute_values(s, target, &[(A::EXTRACTABLE, b(true))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(
            A::EXTRACTABLE
        )))
    ));
}

#[test]
fn sensitive_flag_reset_attack_is_refused() {
    let dir = Scratch::new("sensitive-reset");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let k = aes(&hsm, s, 32, &[(A::EXTRACTABLE, b(true))]).unwrap();
    assert!(matches!(
        hsm.set_attribute_values(s, k, &[(A::SENSITIVE, b(false))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(A::SENSITIVE)))
    ));
    assert!(matches!(
        hsm.copy_object(s, k, &[(A::SENSITIVE, b(false))]),
        Err(HsmError::Attribute(AttributeError::ReadOnly(A::SENSITIVE)))
    ));
}

#[test]
fn derive_non_sensitive_from_sensitive_base_attack_is_refused() {
    // Deriving a key that is readable from a sensitive base would expose the base's secret
    // output (for HKDF with no salt and an extract-only step: a keyed hash of the base).
    let dir = Scratch::new("derive-leak");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let base = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::GENERIC_SECRET_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(32)), (A::DERIVE, b(true))],
        )
        .unwrap();
    let hkdf = Mechanism::Hkdf {
        params: craton_core::ops::HkdfParams {
            hash: craton_core::digest::HashAlg::Sha256,
            extract: true,
            expand: true,
            salt: b"salt".to_vec(),
            info: b"info".to_vec(),
        },
        data: false,
    };
    let mut tpl = secret_template();
    tpl.push((A::VALUE_LEN, AttrValue::Ulong(32)));
    let mut leaky = tpl.clone();
    leaky.push((A::SENSITIVE, b(false)));
    assert!(matches!(
        hsm.derive_key(s, &hkdf, base, &leaky),
        Err(HsmError::Attribute(AttributeError::Inconsistent(
            A::SENSITIVE
        )))
    ));
    let derived = hsm.derive_key(s, &hkdf, base, &tpl).unwrap();
    assert_eq!(
        hsm.attribute_values(s, derived, &[A::VALUE]).unwrap()[0],
        Err(AttributeError::Sensitive(A::VALUE))
    );
    // The derived key works.
    hsm.set_attribute_values(s, derived, &[(A::ENCRYPT, b(true))])
        .unwrap();
    hsm.cipher_init(
        s,
        Direction::Encrypt,
        &Mechanism::Aes(AesMode::Ecb),
        derived,
    )
    .unwrap();
    assert_eq!(
        hsm.cipher(s, Direction::Encrypt, &[0; 16]).unwrap().len(),
        16
    );
}
