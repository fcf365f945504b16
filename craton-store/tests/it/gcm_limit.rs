//! The per-key AES-GCM invocation limit (SP 800-38D §8.3), with a small configured limit.

use crate::*;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::ops::Mechanism;
use craton_store::{Event, HsmError};

fn gcm() -> Mechanism {
    Mechanism::Aes(AesMode::Gcm(GcmParams {
        iv: GcmIv::Generate {
            fixed: Vec::new(),
            len: 12,
        },
        aad: Vec::new(),
        tag_bits: 128,
    }))
}

#[test]
fn gcm_encryptions_warn_at_ninety_percent_and_stop_at_the_limit_across_restarts() {
    let dir = Scratch::new("gcm-limit");
    let mut c = config(dir.path());
    c.security.gcm_invocation_limit = 20;
    let key;
    {
        let rec = recorder();
        let hsm = Hsm::open_with_events(c.clone(), rec.clone()).unwrap();
        init(&hsm);
        let s = user_session(&hsm);
        key = hsm
            .generate_key(
                s,
                &Mechanism::Generate(M::AES_KEY_GEN),
                &[
                    (A::VALUE_LEN, AttrValue::Ulong(32)),
                    (A::TOKEN, b(true)),
                    (A::ENCRYPT, b(true)),
                    (A::DECRYPT, b(true)),
                ],
            )
            .unwrap();
        let warnings = |rec: &Recorder| {
            rec.0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| matches!(e, Event::GcmInvocations { refused: false, .. }))
                .count()
        };
        for _ in 0..17 {
            hsm.cipher_init(s, Direction::Encrypt, &gcm(), key).unwrap();
            hsm.encrypt(s, b"x").unwrap();
        }
        assert_eq!(warnings(&rec), 0);
        hsm.cipher_init(s, Direction::Encrypt, &gcm(), key).unwrap();
        hsm.encrypt(s, b"x").unwrap();
        assert_eq!(warnings(&rec), 1, "the 18th of 20 is 90%");
        // Decryption does not count.
        hsm.cipher_init(s, Direction::Encrypt, &gcm(), key).unwrap();
        let iv = hsm.generated_iv(s).unwrap().unwrap();
        let ct = hsm.encrypt(s, b"last but one").unwrap();
        let given = Mechanism::Aes(AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(iv),
            aad: Vec::new(),
            tag_bits: 128,
        }));
        for _ in 0..3 {
            hsm.cipher_init(s, Direction::Decrypt, &given, key).unwrap();
            assert_eq!(
                &hsm.cipher(s, Direction::Decrypt, &ct).unwrap()[..],
                b"last but one"
            );
        }
        hsm.cipher_init(s, Direction::Encrypt, &gcm(), key).unwrap();
        hsm.encrypt(s, b"x").unwrap();
        assert!(matches!(
            hsm.cipher_init(s, Direction::Encrypt, &gcm(), key),
            Err(HsmError::KeyFunctionNotPermitted(_))
        ));
        assert!(rec.0.lock().unwrap().iter().any(|e| matches!(
            e,
            Event::GcmInvocations {
                refused: true,
                used: 20,
                limit: 20,
                ..
            }
        )));
        // Other modes under the same key are not limited.
        hsm.cipher_init(s, Direction::Encrypt, &Mechanism::Aes(AesMode::Ecb), key)
            .unwrap();
    }
    // The count is persisted: a restart does not hand out fresh invocations.
    let hsm = Hsm::open(c).unwrap();
    let s = user_session(&hsm);
    assert!(matches!(
        hsm.cipher_init(s, Direction::Encrypt, &gcm(), key),
        Err(HsmError::KeyFunctionNotPermitted(_))
    ));
}
