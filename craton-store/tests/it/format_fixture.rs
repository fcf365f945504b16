//! A store written by format version 1 is committed under `tests/fixtures/store-v1/`; every
//! later version must still open it, log in with its PINs and use its keys.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::AesMode;
use craton_core::attribute::ObjectClass;
use craton_core::ops::Mechanism;
use std::os::unix::fs::PermissionsExt;

const FIXTURE_SO_PIN: &[u8] = b"fixture-so-pin";
const FIXTURE_USER_PIN: &[u8] = b"fixture-user-pin";
const PLAINTEXT: &[u8] = b"craton fixture v1";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

fn find(hsm: &Hsm, s: SessionHandle, l: &str) -> craton_store::ObjectHandle {
    hsm.find_objects_init(s, &[label(l)]).unwrap();
    let found = hsm.find_objects(s, 2).unwrap();
    hsm.find_objects_final(s).unwrap();
    assert_eq!(found.len(), 1, "{l}");
    found[0]
}

/// Regenerates the fixture: `CRATON_WRITE_FIXTURE=1 cargo test -p craton-store --test it
/// write_store_fixture -- --ignored`. Only when the format version changes.
#[test]
#[ignore = "writes the committed fixture; run by hand when the format changes"]
fn write_store_fixture() {
    if std::env::var_os("CRATON_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let hsm = Hsm::open(config(&dir)).unwrap();
    hsm.init_token(0, FIXTURE_SO_PIN, "fixture v1").unwrap();
    let so = hsm.open_session(0, true).unwrap();
    hsm.login(so, UserType::So, FIXTURE_SO_PIN).unwrap();
    hsm.init_pin(so, FIXTURE_USER_PIN).unwrap();
    hsm.close_session(so).unwrap();
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, FIXTURE_USER_PIN).unwrap();
    hsm.generate_key_pair(
        s,
        &Mechanism::Generate(M::EC_EDWARDS_KEY_PAIR_GEN),
        &[(A::VERIFY, b(true)), (A::TOKEN, b(true)), label("ed25519")],
        &[(A::SIGN, b(true)), (A::TOKEN, b(true)), label("ed25519")],
    )
    .unwrap();
    let aes = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::TOKEN, b(true)),
                (A::ENCRYPT, b(true)),
                (A::DECRYPT, b(true)),
                label("aes"),
            ],
        )
        .unwrap();
    let mech = Mechanism::Aes(AesMode::CbcPad { iv: [0; 16] });
    hsm.cipher_init(s, Direction::Encrypt, &mech, aes).unwrap();
    let ct = hsm.cipher(s, Direction::Encrypt, PLAINTEXT).unwrap();
    hsm.create_object(
        s,
        &[
            (A::CLASS, AttrValue::Ulong(ObjectClass::DATA.0)),
            (A::TOKEN, b(true)),
            (A::PRIVATE, b(false)),
            (A::VALUE, AttrValue::Bytes(ct.to_vec())),
            label("ciphertext"),
        ],
    )
    .unwrap();
    drop(hsm);
    std::fs::remove_file(dir.join("state.lock")).unwrap();
}

#[test]
fn the_version_1_store_fixture_still_opens_and_works() {
    let scratch = Scratch::new("fixture");
    std::fs::create_dir_all(scratch.path()).unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = scratch.path().join("state.redb");
    std::fs::copy(fixture_dir().join("state.redb"), &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hsm = Hsm::open(config(scratch.path())).unwrap();
    assert_eq!(&hsm.token_info(0).unwrap().label[..10], b"fixture v1");
    let s = hsm.open_session(0, true).unwrap();
    // Public objects are there before login; keys are not.
    let ct_obj = find(&hsm, s, "ciphertext");
    hsm.login(s, UserType::User, FIXTURE_USER_PIN).unwrap();
    let ct = match &hsm.attribute_values(s, ct_obj, &[A::VALUE]).unwrap()[0] {
        Ok(AttrValue::Bytes(v)) => v.clone(),
        other => panic!("{other:?}"),
    };
    let aes = find(&hsm, s, "aes");
    let mech = Mechanism::Aes(AesMode::CbcPad { iv: [0; 16] });
    hsm.cipher_init(s, Direction::Decrypt, &mech, aes).unwrap();
    assert_eq!(
        &hsm.cipher(s, Direction::Decrypt, &ct).unwrap()[..],
        PLAINTEXT
    );
    hsm.find_objects_init(s, &[label("ed25519")]).unwrap();
    let pair = hsm.find_objects(s, 4).unwrap();
    hsm.find_objects_final(s).unwrap();
    assert_eq!(pair.len(), 2);
    let class = |h| hsm.attribute_values(s, h, &[A::CLASS]).unwrap()[0].clone();
    let (private, public) = if class(pair[0]) == Ok(AttrValue::Ulong(ObjectClass::PRIVATE_KEY.0)) {
        (pair[0], pair[1])
    } else {
        (pair[1], pair[0])
    };
    hsm.sign_init(s, &Mechanism::EdDsa, private).unwrap();
    let sig = hsm.sign(s, b"still works").unwrap();
    hsm.verify_init(s, &Mechanism::EdDsa, public).unwrap();
    hsm.verify(s, b"still works", &sig).unwrap();
}
