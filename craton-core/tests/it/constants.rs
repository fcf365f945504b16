//! Every PKCS#11 number craton-core names is checked against `cryptoki-sys` (the PKCS#11 3.2
//! headers the PKCS#11 module will be built on), so a typo in a constant cannot hide until a
//! client sends it. Each table must list every named constant: a new one fails the count.

use craton_core::attribute::{AttributeType, ObjectClass};
use craton_core::{KeyType, MechanismType};
use cryptoki_sys as sys;

fn check<T: Copy + std::fmt::Debug + PartialEq>(
    table: &[(T, sys::CK_ULONG)],
    all: &[T],
    value: impl Fn(T) -> u64,
) {
    for (ours, theirs) in table {
        // CK_ULONG is u64 on 64-bit Linux but u32 on Windows; the conversion is for the latter.
        #[allow(clippy::useless_conversion)]
        let theirs = u64::from(*theirs);
        assert_eq!(value(*ours), theirs, "{ours:?}");
    }
    for named in all {
        assert!(
            table.iter().any(|(t, _)| t == named),
            "{named:?} has no row in the cross-check table"
        );
    }
}

#[test]
fn mechanism_numbers_match_the_pkcs11_headers() {
    let table = [
        (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            sys::CKM_RSA_PKCS_KEY_PAIR_GEN,
        ),
        (MechanismType::RSA_PKCS, sys::CKM_RSA_PKCS),
        (MechanismType::RSA_X_509, sys::CKM_RSA_X_509),
        (MechanismType::SHA1_RSA_PKCS, sys::CKM_SHA1_RSA_PKCS),
        (MechanismType::RSA_PKCS_OAEP, sys::CKM_RSA_PKCS_OAEP),
        (MechanismType::RSA_PKCS_PSS, sys::CKM_RSA_PKCS_PSS),
        (MechanismType::SHA1_RSA_PKCS_PSS, sys::CKM_SHA1_RSA_PKCS_PSS),
        (
            MechanismType::ML_KEM_KEY_PAIR_GEN,
            sys::CKM_ML_KEM_KEY_PAIR_GEN,
        ),
        (MechanismType::ML_KEM, sys::CKM_ML_KEM),
        (
            MechanismType::ML_DSA_KEY_PAIR_GEN,
            sys::CKM_ML_DSA_KEY_PAIR_GEN,
        ),
        (MechanismType::ML_DSA, sys::CKM_ML_DSA),
        (
            MechanismType::SLH_DSA_KEY_PAIR_GEN,
            sys::CKM_SLH_DSA_KEY_PAIR_GEN,
        ),
        (MechanismType::SLH_DSA, sys::CKM_SLH_DSA),
        (MechanismType::SHA256_RSA_PKCS, sys::CKM_SHA256_RSA_PKCS),
        (MechanismType::SHA384_RSA_PKCS, sys::CKM_SHA384_RSA_PKCS),
        (MechanismType::SHA512_RSA_PKCS, sys::CKM_SHA512_RSA_PKCS),
        (
            MechanismType::SHA256_RSA_PKCS_PSS,
            sys::CKM_SHA256_RSA_PKCS_PSS,
        ),
        (
            MechanismType::SHA384_RSA_PKCS_PSS,
            sys::CKM_SHA384_RSA_PKCS_PSS,
        ),
        (
            MechanismType::SHA512_RSA_PKCS_PSS,
            sys::CKM_SHA512_RSA_PKCS_PSS,
        ),
        (MechanismType::SHA224_RSA_PKCS, sys::CKM_SHA224_RSA_PKCS),
        (
            MechanismType::SHA224_RSA_PKCS_PSS,
            sys::CKM_SHA224_RSA_PKCS_PSS,
        ),
        (MechanismType::SHA_1, sys::CKM_SHA_1),
        (MechanismType::SHA_1_HMAC, sys::CKM_SHA_1_HMAC),
        (
            MechanismType::SHA_1_HMAC_GENERAL,
            sys::CKM_SHA_1_HMAC_GENERAL,
        ),
        (MechanismType::SHA256, sys::CKM_SHA256),
        (MechanismType::SHA256_HMAC, sys::CKM_SHA256_HMAC),
        (
            MechanismType::SHA256_HMAC_GENERAL,
            sys::CKM_SHA256_HMAC_GENERAL,
        ),
        (MechanismType::SHA224, sys::CKM_SHA224),
        (MechanismType::SHA224_HMAC, sys::CKM_SHA224_HMAC),
        (
            MechanismType::SHA224_HMAC_GENERAL,
            sys::CKM_SHA224_HMAC_GENERAL,
        ),
        (MechanismType::SHA384, sys::CKM_SHA384),
        (MechanismType::SHA384_HMAC, sys::CKM_SHA384_HMAC),
        (
            MechanismType::SHA384_HMAC_GENERAL,
            sys::CKM_SHA384_HMAC_GENERAL,
        ),
        (MechanismType::SHA512, sys::CKM_SHA512),
        (MechanismType::SHA512_HMAC, sys::CKM_SHA512_HMAC),
        (
            MechanismType::SHA512_HMAC_GENERAL,
            sys::CKM_SHA512_HMAC_GENERAL,
        ),
        (MechanismType::SHA3_256, sys::CKM_SHA3_256),
        (MechanismType::SHA3_256_HMAC, sys::CKM_SHA3_256_HMAC),
        (
            MechanismType::SHA3_256_HMAC_GENERAL,
            sys::CKM_SHA3_256_HMAC_GENERAL,
        ),
        (MechanismType::SHA3_224, sys::CKM_SHA3_224),
        (MechanismType::SHA3_224_HMAC, sys::CKM_SHA3_224_HMAC),
        (
            MechanismType::SHA3_224_HMAC_GENERAL,
            sys::CKM_SHA3_224_HMAC_GENERAL,
        ),
        (MechanismType::SHA3_384, sys::CKM_SHA3_384),
        (MechanismType::SHA3_384_HMAC, sys::CKM_SHA3_384_HMAC),
        (
            MechanismType::SHA3_384_HMAC_GENERAL,
            sys::CKM_SHA3_384_HMAC_GENERAL,
        ),
        (MechanismType::SHA3_512, sys::CKM_SHA3_512),
        (MechanismType::SHA3_512_HMAC, sys::CKM_SHA3_512_HMAC),
        (
            MechanismType::SHA3_512_HMAC_GENERAL,
            sys::CKM_SHA3_512_HMAC_GENERAL,
        ),
        (
            MechanismType::GENERIC_SECRET_KEY_GEN,
            sys::CKM_GENERIC_SECRET_KEY_GEN,
        ),
        (MechanismType::PKCS5_PBKD2, sys::CKM_PKCS5_PBKD2),
        (MechanismType::EC_KEY_PAIR_GEN, sys::CKM_EC_KEY_PAIR_GEN),
        (MechanismType::ECDSA, sys::CKM_ECDSA),
        (MechanismType::ECDSA_SHA1, sys::CKM_ECDSA_SHA1),
        (MechanismType::ECDSA_SHA224, sys::CKM_ECDSA_SHA224),
        (MechanismType::ECDSA_SHA256, sys::CKM_ECDSA_SHA256),
        (MechanismType::ECDSA_SHA384, sys::CKM_ECDSA_SHA384),
        (MechanismType::ECDSA_SHA512, sys::CKM_ECDSA_SHA512),
        (MechanismType::ECDH1_DERIVE, sys::CKM_ECDH1_DERIVE),
        (
            MechanismType::EC_EDWARDS_KEY_PAIR_GEN,
            sys::CKM_EC_EDWARDS_KEY_PAIR_GEN,
        ),
        (
            MechanismType::EC_MONTGOMERY_KEY_PAIR_GEN,
            sys::CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
        ),
        (MechanismType::EDDSA, sys::CKM_EDDSA),
        (MechanismType::AES_KEY_GEN, sys::CKM_AES_KEY_GEN),
        (MechanismType::AES_ECB, sys::CKM_AES_ECB),
        (MechanismType::AES_CBC, sys::CKM_AES_CBC),
        (MechanismType::AES_CBC_PAD, sys::CKM_AES_CBC_PAD),
        (MechanismType::AES_CTR, sys::CKM_AES_CTR),
        (MechanismType::AES_GCM, sys::CKM_AES_GCM),
        (MechanismType::AES_CMAC, sys::CKM_AES_CMAC),
        (MechanismType::AES_CMAC_GENERAL, sys::CKM_AES_CMAC_GENERAL),
        (MechanismType::AES_KEY_WRAP, sys::CKM_AES_KEY_WRAP),
        (MechanismType::AES_KEY_WRAP_KWP, sys::CKM_AES_KEY_WRAP_KWP),
        (MechanismType::HKDF_DERIVE, sys::CKM_HKDF_DERIVE),
        (MechanismType::HKDF_DATA, sys::CKM_HKDF_DATA),
        (MechanismType::HKDF_KEY_GEN, sys::CKM_HKDF_KEY_GEN),
    ];
    check(&table, MechanismType::ALL, |v| v.0);
}

#[test]
fn key_type_numbers_match_the_pkcs11_headers() {
    let table = [
        (KeyType::RSA, sys::CKK_RSA),
        (KeyType::EC, sys::CKK_EC),
        (KeyType::GENERIC_SECRET, sys::CKK_GENERIC_SECRET),
        (KeyType::AES, sys::CKK_AES),
        (KeyType::SHA_1_HMAC, sys::CKK_SHA_1_HMAC),
        (KeyType::SHA256_HMAC, sys::CKK_SHA256_HMAC),
        (KeyType::SHA384_HMAC, sys::CKK_SHA384_HMAC),
        (KeyType::SHA512_HMAC, sys::CKK_SHA512_HMAC),
        (KeyType::SHA224_HMAC, sys::CKK_SHA224_HMAC),
        (KeyType::SHA3_224_HMAC, sys::CKK_SHA3_224_HMAC),
        (KeyType::SHA3_256_HMAC, sys::CKK_SHA3_256_HMAC),
        (KeyType::SHA3_384_HMAC, sys::CKK_SHA3_384_HMAC),
        (KeyType::SHA3_512_HMAC, sys::CKK_SHA3_512_HMAC),
        (KeyType::EC_EDWARDS, sys::CKK_EC_EDWARDS),
        (KeyType::EC_MONTGOMERY, sys::CKK_EC_MONTGOMERY),
        (KeyType::HKDF, sys::CKK_HKDF),
        (KeyType::ML_KEM, sys::CKK_ML_KEM),
        (KeyType::ML_DSA, sys::CKK_ML_DSA),
        (KeyType::SLH_DSA, sys::CKK_SLH_DSA),
    ];
    check(&table, KeyType::ALL, |v| v.0);
}

#[test]
fn attribute_numbers_match_the_pkcs11_headers() {
    let table = [
        (AttributeType::CLASS, sys::CKA_CLASS),
        (AttributeType::TOKEN, sys::CKA_TOKEN),
        (AttributeType::PRIVATE, sys::CKA_PRIVATE),
        (AttributeType::LABEL, sys::CKA_LABEL),
        (AttributeType::UNIQUE_ID, sys::CKA_UNIQUE_ID),
        (AttributeType::APPLICATION, sys::CKA_APPLICATION),
        (AttributeType::VALUE, sys::CKA_VALUE),
        (AttributeType::OBJECT_ID, sys::CKA_OBJECT_ID),
        (AttributeType::CERTIFICATE_TYPE, sys::CKA_CERTIFICATE_TYPE),
        (AttributeType::ISSUER, sys::CKA_ISSUER),
        (AttributeType::SERIAL_NUMBER, sys::CKA_SERIAL_NUMBER),
        (AttributeType::TRUSTED, sys::CKA_TRUSTED),
        (
            AttributeType::CERTIFICATE_CATEGORY,
            sys::CKA_CERTIFICATE_CATEGORY,
        ),
        (AttributeType::CHECK_VALUE, sys::CKA_CHECK_VALUE),
        (AttributeType::KEY_TYPE, sys::CKA_KEY_TYPE),
        (AttributeType::SUBJECT, sys::CKA_SUBJECT),
        (AttributeType::ID, sys::CKA_ID),
        (AttributeType::SENSITIVE, sys::CKA_SENSITIVE),
        (AttributeType::ENCRYPT, sys::CKA_ENCRYPT),
        (AttributeType::DECRYPT, sys::CKA_DECRYPT),
        (AttributeType::WRAP, sys::CKA_WRAP),
        (AttributeType::UNWRAP, sys::CKA_UNWRAP),
        (AttributeType::SIGN, sys::CKA_SIGN),
        (AttributeType::SIGN_RECOVER, sys::CKA_SIGN_RECOVER),
        (AttributeType::VERIFY, sys::CKA_VERIFY),
        (AttributeType::VERIFY_RECOVER, sys::CKA_VERIFY_RECOVER),
        (AttributeType::DERIVE, sys::CKA_DERIVE),
        (AttributeType::START_DATE, sys::CKA_START_DATE),
        (AttributeType::END_DATE, sys::CKA_END_DATE),
        (AttributeType::MODULUS, sys::CKA_MODULUS),
        (AttributeType::MODULUS_BITS, sys::CKA_MODULUS_BITS),
        (AttributeType::PUBLIC_EXPONENT, sys::CKA_PUBLIC_EXPONENT),
        (AttributeType::PRIVATE_EXPONENT, sys::CKA_PRIVATE_EXPONENT),
        (AttributeType::PRIME_1, sys::CKA_PRIME_1),
        (AttributeType::PRIME_2, sys::CKA_PRIME_2),
        (AttributeType::EXPONENT_1, sys::CKA_EXPONENT_1),
        (AttributeType::EXPONENT_2, sys::CKA_EXPONENT_2),
        (AttributeType::COEFFICIENT, sys::CKA_COEFFICIENT),
        (AttributeType::PUBLIC_KEY_INFO, sys::CKA_PUBLIC_KEY_INFO),
        (AttributeType::VALUE_LEN, sys::CKA_VALUE_LEN),
        (AttributeType::EXTRACTABLE, sys::CKA_EXTRACTABLE),
        (AttributeType::LOCAL, sys::CKA_LOCAL),
        (AttributeType::NEVER_EXTRACTABLE, sys::CKA_NEVER_EXTRACTABLE),
        (AttributeType::ALWAYS_SENSITIVE, sys::CKA_ALWAYS_SENSITIVE),
        (AttributeType::KEY_GEN_MECHANISM, sys::CKA_KEY_GEN_MECHANISM),
        (AttributeType::MODIFIABLE, sys::CKA_MODIFIABLE),
        (AttributeType::COPYABLE, sys::CKA_COPYABLE),
        (AttributeType::DESTROYABLE, sys::CKA_DESTROYABLE),
        (AttributeType::EC_PARAMS, sys::CKA_EC_PARAMS),
        (AttributeType::EC_POINT, sys::CKA_EC_POINT),
        (
            AttributeType::ALWAYS_AUTHENTICATE,
            sys::CKA_ALWAYS_AUTHENTICATE,
        ),
        (AttributeType::WRAP_WITH_TRUSTED, sys::CKA_WRAP_WITH_TRUSTED),
        (AttributeType::PARAMETER_SET, sys::CKA_PARAMETER_SET),
        (AttributeType::ENCAPSULATE, sys::CKA_ENCAPSULATE),
        (AttributeType::DECAPSULATE, sys::CKA_DECAPSULATE),
        (AttributeType::SEED, sys::CKA_SEED),
    ];
    check(&table, AttributeType::ALL, |v| v.0);
}

#[test]
fn object_class_numbers_match_the_pkcs11_headers() {
    let table = [
        (ObjectClass::DATA, sys::CKO_DATA),
        (ObjectClass::CERTIFICATE, sys::CKO_CERTIFICATE),
        (ObjectClass::PUBLIC_KEY, sys::CKO_PUBLIC_KEY),
        (ObjectClass::PRIVATE_KEY, sys::CKO_PRIVATE_KEY),
        (ObjectClass::SECRET_KEY, sys::CKO_SECRET_KEY),
    ];
    check(&table, ObjectClass::ALL, |v| v.0);
}
