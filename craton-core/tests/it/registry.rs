//! Every mechanism the registry can offer must be covered by a known-answer test in POST or by
//! a vector test in this binary. The table below names the covering test; adding a mechanism
//! without adding its row fails here.

use craton_core::mechanism::{MechanismType as M, Policy, Registry};

/// (mechanism, where its known answers are checked)
const COVERAGE: &[(M, &str)] = &[
    (M::SHA_1, "cavp::sha_short_messages"),
    (M::SHA224, "cavp::sha_short_messages"),
    (M::SHA256, "cavp::sha_short_messages"),
    (M::SHA384, "cavp::sha_short_messages"),
    (M::SHA512, "cavp::sha_short_messages"),
    (M::SHA3_224, "cavp::sha_short_messages"),
    (M::SHA3_256, "cavp::sha_short_messages"),
    (M::SHA3_384, "cavp::sha_short_messages"),
    (M::SHA3_512, "cavp::sha_short_messages"),
    (M::SHA_1_HMAC, "wycheproof_vectors::hmac_and_cmac"),
    (
        M::SHA_1_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA224_HMAC, "wycheproof_vectors::hmac_and_cmac"),
    (
        M::SHA224_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA256_HMAC, "cavp::hmac_rfc_vectors"),
    (
        M::SHA256_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA384_HMAC, "cavp::hmac_rfc_vectors"),
    (
        M::SHA384_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA512_HMAC, "cavp::hmac_rfc_vectors"),
    (
        M::SHA512_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA3_224_HMAC, "wycheproof_vectors::hmac_and_cmac"),
    (
        M::SHA3_224_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA3_256_HMAC, "wycheproof_vectors::hmac_and_cmac"),
    (
        M::SHA3_256_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA3_384_HMAC, "wycheproof_vectors::hmac_and_cmac"),
    (
        M::SHA3_384_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::SHA3_512_HMAC, "wycheproof_vectors::hmac_and_cmac"),
    (
        M::SHA3_512_HMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (M::AES_CMAC, "cavp::cmac_sp800_38b"),
    (
        M::AES_CMAC_GENERAL,
        "wycheproof_vectors::hmac_and_cmac (truncated tags)",
    ),
    (
        M::GENERIC_SECRET_KEY_GEN,
        "post: HMAC_DRBG (key bytes come from the DRBG)",
    ),
    (
        M::AES_KEY_GEN,
        "post: HMAC_DRBG (key bytes come from the DRBG)",
    ),
    (M::AES_ECB, "cavp::aes_ecb_cbc_multi_block_messages"),
    (M::AES_CBC, "cavp::aes_ecb_cbc_multi_block_messages"),
    (
        M::AES_CBC_PAD,
        "wycheproof: CBC-PAD is CBC plus PKCS#7, see aes unit tests; CBC KATs",
    ),
    (M::AES_CTR, "cavp::aes_ctr_rfc3686"),
    (M::AES_GCM, "cavp::aes_gcm_encrypt_and_decrypt"),
    (M::AES_KEY_WRAP, "cavp::aes_key_wrap_sp800_38f"),
    (M::AES_KEY_WRAP_KWP, "cavp::aes_key_wrap_sp800_38f"),
    (M::HKDF_DERIVE, "cavp::hkdf_rfc5869_and_pbkdf2_rfc6070"),
    (M::HKDF_DATA, "cavp::hkdf_rfc5869_and_pbkdf2_rfc6070"),
    (
        M::HKDF_KEY_GEN,
        "post: HMAC_DRBG (key bytes come from the DRBG)",
    ),
    (M::PKCS5_PBKD2, "cavp::hkdf_rfc5869_and_pbkdf2_rfc6070"),
    (
        M::RSA_PKCS_KEY_PAIR_GEN,
        "post: pairwise consistency test on every generated key",
    ),
    (
        M::RSA_PKCS,
        "post: RSA PKCS#1 v1.5 SHA-256 (DigestInfo path)",
    ),
    (
        M::RSA_X_509,
        "cavp::rsa_pkcs1_and_pss_signature_verification (raw recovery of CAVP signatures)",
    ),
    (M::RSA_PKCS_OAEP, "wycheproof_vectors::rsa_oaep_decryption"),
    (
        M::RSA_PKCS_PSS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA1_RSA_PKCS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA224_RSA_PKCS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA256_RSA_PKCS,
        "post + cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA384_RSA_PKCS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA512_RSA_PKCS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA1_RSA_PKCS_PSS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA224_RSA_PKCS_PSS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA256_RSA_PKCS_PSS,
        "cavp + wycheproof_vectors::rsa_pss_signatures",
    ),
    (
        M::SHA384_RSA_PKCS_PSS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::SHA512_RSA_PKCS_PSS,
        "cavp::rsa_pkcs1_and_pss_signature_verification",
    ),
    (
        M::EC_KEY_PAIR_GEN,
        "post: pairwise consistency test on every generated key",
    ),
    (M::ECDSA, "cavp::ecdsa_signature_verification (digest path)"),
    (M::ECDSA_SHA1, "cavp::ecdsa_signature_verification"),
    (M::ECDSA_SHA224, "cavp::ecdsa_signature_verification"),
    (
        M::ECDSA_SHA256,
        "post + wycheproof_vectors::ecdsa_p1363_signatures",
    ),
    (
        M::ECDSA_SHA384,
        "wycheproof_vectors::ecdsa_p1363_signatures",
    ),
    (
        M::ECDSA_SHA512,
        "wycheproof_vectors::ecdsa_p1363_signatures",
    ),
    (
        M::ECDH1_DERIVE,
        "wycheproof_vectors::ecdh_on_encoded_points + x25519",
    ),
    (
        M::EC_EDWARDS_KEY_PAIR_GEN,
        "post: Ed25519 (RFC 8032 key from seed)",
    ),
    (M::EDDSA, "post + wycheproof_vectors::ed25519"),
    (M::EC_MONTGOMERY_KEY_PAIR_GEN, "post: X25519 (RFC 7748)"),
    (M::ML_KEM_KEY_PAIR_GEN, "cavp::ml_kem_known_answers"),
    (M::ML_KEM, "cavp::ml_kem_known_answers"),
    (M::ML_DSA_KEY_PAIR_GEN, "cavp::ml_dsa_known_answers"),
    (M::ML_DSA, "cavp::ml_dsa_known_answers"),
    (M::SLH_DSA_KEY_PAIR_GEN, "cavp::slh_dsa_key_generation_acvp"),
    (
        M::SLH_DSA,
        "cavp::slh_dsa_key_generation_acvp (sign/verify on the ACVP key)",
    ),
];

#[test]
fn every_offered_mechanism_has_known_answer_coverage() {
    let everything = Registry::new(Policy {
        allow_weak_rsa: true,
        allow_sha1_signatures: true,
        fips_only: false,
    });
    let missing: Vec<M> = everything
        .mechanisms()
        .filter(|m| !COVERAGE.iter().any(|(c, _)| c == m))
        .collect();
    assert!(
        missing.is_empty(),
        "mechanisms without a known-answer test: {missing:?}"
    );
    for (m, _) in COVERAGE {
        assert!(
            everything.get(*m).is_some(),
            "{m:?} is listed as covered but not offered"
        );
    }
}

#[test]
fn default_registry_offers_the_issue_minimum() {
    let reg = Registry::new(Policy::default());
    for m in [
        M::SHA3_224,
        M::AES_GCM,
        M::AES_KEY_WRAP_KWP,
        M::RSA_PKCS,
        M::RSA_X_509,
        M::ECDSA,
        M::EDDSA,
        M::ML_KEM,
        M::ML_DSA,
        M::SLH_DSA,
        M::HKDF_DERIVE,
        M::PKCS5_PBKD2,
    ] {
        assert!(reg.get(m).is_some(), "{m:?} missing");
    }
}
