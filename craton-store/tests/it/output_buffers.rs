//! The calls that write into a caller's buffer (`cipher_into`, `sign_into`, `digest_into`,
//! what `C_Encrypt`, `C_Sign` and `C_Digest` use): a short buffer is refused with the length
//! needed and the operation stays; otherwise the output is what the allocating calls return,
//! and nothing past it is touched.

use crate::*;
use craton_core::CryptoError;
use craton_core::Direction;
use craton_core::MechanismType as M;
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use craton_store::HsmError;

fn too_small(r: craton_store::Result<usize>) -> usize {
    match r {
        Err(HsmError::Crypto(CryptoError::BufferTooSmall { required })) => required,
        other => panic!("expected BufferTooSmall, got {other:?}"),
    }
}

#[test]
fn short_buffers_keep_the_operation_and_exact_ones_get_the_whole_output() {
    let dir = Scratch::new("output-buffers");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let aes = hsm
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
    let mac = hsm
        .generate_key(
            s,
            &Mechanism::Generate(M::GENERIC_SECRET_KEY_GEN),
            &[(A::VALUE_LEN, AttrValue::Ulong(32)), (A::SIGN, b(true))],
        )
        .unwrap();
    let data = vec![0x42u8; 1000];

    // AES-GCM with one IV for both runs, so the two paths can be compared byte for byte.
    let gcm = Mechanism::Aes(AesMode::Gcm(GcmParams {
        iv: GcmIv::Given(vec![5; 12]),
        aad: b"aad".to_vec(),
        tag_bits: 128,
    }));
    hsm.cipher_init(s, Direction::Encrypt, &gcm, aes).unwrap();
    let expected = hsm.encrypt(s, &data).unwrap();
    hsm.cipher_init(s, Direction::Encrypt, &gcm, aes).unwrap();
    let mut out = vec![0xee; expected.len() + 4];
    let required = too_small(hsm.cipher_into(s, Direction::Encrypt, &data, &mut out[..10]));
    assert_eq!(required, expected.len());
    assert!(out.iter().all(|x| *x == 0xee), "a refusal writes nothing");
    let n = hsm
        .cipher_into(s, Direction::Encrypt, &data, &mut out[..required])
        .unwrap();
    assert_eq!(&out[..n], &expected[..]);
    assert!(out[n..].iter().all(|x| *x == 0xee));
    assert!(matches!(
        hsm.cipher_into(s, Direction::Encrypt, &data, &mut out),
        Err(HsmError::OperationNotInitialized)
    ));

    // Decryption: a forged tag fails and writes nothing; the genuine one decrypts.
    let mut forged = expected.clone();
    forged[3] ^= 1;
    let mut plain = vec![0xee; data.len()];
    hsm.cipher_init(s, Direction::Decrypt, &gcm, aes).unwrap();
    assert!(matches!(
        hsm.cipher_into(s, Direction::Decrypt, &forged, &mut plain),
        Err(HsmError::Crypto(CryptoError::EncryptedDataInvalid))
    ));
    assert!(plain.iter().all(|x| *x == 0xee), "no unchecked plaintext");
    hsm.cipher_init(s, Direction::Decrypt, &gcm, aes).unwrap();
    let n = hsm
        .cipher_into(s, Direction::Decrypt, &expected, &mut plain)
        .unwrap();
    assert_eq!(&plain[..n], &data[..]);

    // HMAC is deterministic: sign_into against sign.
    let hmac = Mechanism::without_params(M::SHA256_HMAC).unwrap();
    hsm.sign_init(s, &hmac, mac).unwrap();
    let tag = hsm.sign(s, &data).unwrap();
    hsm.sign_init(s, &hmac, mac).unwrap();
    let mut sig = [0xeeu8; 40];
    assert_eq!(too_small(hsm.sign_into(s, &data, &mut sig[..31])), 32);
    let n = hsm.sign_into(s, &data, &mut sig[..32]).unwrap();
    assert_eq!(&sig[..n], &tag[..]);
    assert_eq!(sig[32..], [0xee; 8]);

    // SHA-256 of "abc" (FIPS 180-2, Appendix B.1).
    hsm.digest_init(s, &Mechanism::Digest(HashAlg::Sha256))
        .unwrap();
    let mut digest = [0u8; 32];
    assert_eq!(too_small(hsm.digest_into(s, b"abc", &mut digest[..16])), 32);
    let n = hsm.digest_into(s, b"abc", &mut digest).unwrap();
    assert_eq!(
        hex::encode(&digest[..n]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
