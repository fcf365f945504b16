//! Backups restore onto an empty state directory with the same objects, PINs and attributes;
//! wrong secrets and damaged files fail cleanly and write nothing; no key appears in clear.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::AesMode;
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use craton_store::backup::{self, BackupError, BackupSecret};

const PASS: &[u8] = b"correct horse battery staple";

/// A token with a signing key pair, an extractable AES key (so its value can be compared)
/// and a public data object; returns the backup and the AES key's value.
fn source(dir: &Path, secret: &BackupSecret<'_>) -> (Vec<u8>, Vec<u8>) {
    let hsm = ready(dir);
    let s = user_session(&hsm);
    hsm.generate_key_pair(
        s,
        &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
        &[
            (
                A::EC_PARAMS,
                AttrValue::Bytes(craton_core::ec::Curve::P256.ec_params().to_vec()),
            ),
            (A::VERIFY, b(true)),
            (A::TOKEN, b(true)),
            label("signer"),
        ],
        &[(A::SIGN, b(true)), (A::TOKEN, b(true)), label("signer")],
    )
    .unwrap();
    let aes = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::TOKEN, b(true)),
                (A::SENSITIVE, b(false)),
                (A::EXTRACTABLE, b(true)),
                (A::ENCRYPT, b(true)),
                label("aes"),
            ],
        )
        .unwrap();
    // A key's value comes back as the object keeps it: on locked pages.
    let value = match &hsm.attribute_values(s, aes, &[A::VALUE]).unwrap()[0] {
        Ok(AttrValue::Secret(v)) => v.expose().to_vec(),
        other => panic!("{other:?}"),
    };
    (hsm.backup(secret, None).unwrap(), value)
}

fn find(hsm: &Hsm, s: SessionHandle, l: &str, class: u64) -> craton_store::ObjectHandle {
    hsm.find_objects_init(s, &[label(l), (A::CLASS, AttrValue::Ulong(class))])
        .unwrap();
    let found = hsm.find_objects(s, 2).unwrap();
    hsm.find_objects_final(s).unwrap();
    assert_eq!(found.len(), 1, "{l}");
    found[0]
}

#[test]
fn a_restored_token_has_the_same_pins_objects_and_attributes() {
    let from = Scratch::new("backup-from");
    let (blob, aes_value) = source(from.path(), &BackupSecret::Passphrase(PASS));
    // The AES key's value never appears in the backup (even though it is extractable).
    assert!(!blob.windows(aes_value.len()).any(|w| w == aes_value));
    let info = backup::inspect(&blob).unwrap();
    assert!(info.passphrase);
    assert_eq!(info.tokens, 1);

    let to = Scratch::new("backup-to");
    backup::restore(&blob, &BackupSecret::Passphrase(PASS), to.path()).unwrap();
    let hsm = Hsm::open(config(to.path())).unwrap();
    let log = std::fs::read_to_string(hsm.config().audit_path()).unwrap();
    assert!(log.contains("store_restored"), "{log}");
    assert_eq!(&hsm.token_info(0).unwrap().label[..4], b"test");
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    let private = find(&hsm, s, "signer", 3);
    let public = find(&hsm, s, "signer", 2);
    let mech = Mechanism::EcdsaWith(HashAlg::Sha256);
    hsm.sign_init(s, &mech, private).unwrap();
    let sig = hsm.sign(s, b"restored").unwrap();
    hsm.verify_init(s, &mech, public).unwrap();
    hsm.verify(s, b"restored", &sig).unwrap();
    let aes = find(&hsm, s, "aes", 4);
    assert_eq!(
        hsm.attribute_values(s, aes, &[A::VALUE]).unwrap()[0],
        Ok(AttrValue::Bytes(aes_value))
    );
    hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), aes)
        .unwrap();
    // The SO PIN came along too.
    hsm.logout(s).unwrap();
    hsm.login(s, UserType::So, SO_PIN).unwrap();
}

#[test]
fn an_operator_key_protects_a_backup_too() {
    let from = Scratch::new("backup-key-from");
    let key = [0x5au8; 32];
    let (blob, _) = source(from.path(), &BackupSecret::Key(&key));
    assert!(!backup::inspect(&blob).unwrap().passphrase);
    let to = Scratch::new("backup-key-to");
    assert!(matches!(
        backup::restore(&blob, &BackupSecret::Passphrase(PASS), to.path()),
        Err(BackupError::Authentication)
    ));
    assert!(matches!(
        backup::restore(&blob, &BackupSecret::Key(&[1; 31]), to.path()),
        Err(BackupError::BadSecret)
    ));
    backup::restore(&blob, &BackupSecret::Key(&key), to.path()).unwrap();
    Hsm::open(config(to.path())).unwrap();
}

#[test]
fn wrong_secrets_and_damaged_backups_write_nothing() {
    let from = Scratch::new("backup-bad-from");
    let (blob, _) = source(from.path(), &BackupSecret::Passphrase(PASS));
    let to = Scratch::new("backup-bad-to");
    let nothing_written = |to: &Scratch| !to.path().join("state.redb").exists();
    assert!(matches!(
        backup::restore(&blob, &BackupSecret::Passphrase(b"wrong"), to.path()),
        Err(BackupError::Authentication)
    ));
    assert!(nothing_written(&to));
    assert!(matches!(
        backup::restore(
            &blob[..blob.len() - 10],
            &BackupSecret::Passphrase(PASS),
            to.path()
        ),
        Err(BackupError::Authentication)
    ));
    assert!(nothing_written(&to));
    for at in [12, 40, blob.len() / 2, blob.len() - 1] {
        let mut altered = blob.clone();
        altered[at] ^= 0x01;
        assert!(
            backup::restore(&altered, &BackupSecret::Passphrase(PASS), to.path()).is_err(),
            "byte {at}"
        );
        assert!(nothing_written(&to));
    }
    assert!(matches!(
        backup::restore(
            b"not a backup at all",
            &BackupSecret::Passphrase(PASS),
            to.path()
        ),
        Err(BackupError::NotABackup)
    ));
    // Restoring over an existing store is refused.
    assert!(backup::restore(&blob, &BackupSecret::Passphrase(PASS), from.path()).is_err());
}
