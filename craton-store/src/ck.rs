//! The one mapping from the engine's errors to PKCS#11 numbers (`CK_RV`, `CKF_*`), shared by
//! the module and the daemon, which sends the same `CK_RV` to its remote clients.
//!
//! Each engine error names one thing the caller can act on, so most map one to one. Where the
//! choice is not obvious the reason is written beside it.

use crate::HsmError;
use crate::persist::StoreError;
use craton_core::CryptoError;
use craton_core::attribute::AttributeError;
use craton_core::mechanism::{KeyType, MechanismInfo, MechanismType, Operations};

use cryptoki_sys::*;

/// The `CK_RV` for an engine error.
pub fn from_hsm(e: &HsmError) -> CK_RV {
    match e {
        HsmError::SlotIdInvalid => CKR_SLOT_ID_INVALID,
        // C_OpenSession and C_Login on a token that was never initialised: the token is
        // present but has no identity yet.
        HsmError::TokenNotInitialized => CKR_TOKEN_NOT_RECOGNIZED,
        HsmError::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
        HsmError::SessionReadOnly => CKR_SESSION_READ_ONLY,
        HsmError::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
        HsmError::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
        HsmError::SessionExists => CKR_SESSION_EXISTS,
        HsmError::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
        HsmError::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        HsmError::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
        HsmError::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
        HsmError::PinIncorrect => CKR_PIN_INCORRECT,
        HsmError::PinLocked => CKR_PIN_LOCKED,
        HsmError::PinLenRange => CKR_PIN_LEN_RANGE,
        HsmError::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
        HsmError::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
        HsmError::Attribute(a) => from_attribute(a),
        HsmError::ActionProhibited(_) => CKR_ACTION_PROHIBITED,
        HsmError::KeyFunctionNotPermitted(_) => CKR_KEY_FUNCTION_NOT_PERMITTED,
        HsmError::KeyUnextractable(_) => CKR_KEY_UNEXTRACTABLE,
        HsmError::KeyIndigestible(_) => CKR_KEY_INDIGESTIBLE,
        HsmError::WrappingKeyTooWeak => CKR_WRAPPING_KEY_SIZE_RANGE,
        HsmError::WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
        HsmError::WrappingKeyTypeInconsistent => CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
        HsmError::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        HsmError::UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
        HsmError::OperationActive => CKR_OPERATION_ACTIVE,
        HsmError::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
        HsmError::SavedStateInvalid => CKR_SAVED_STATE_INVALID,
        HsmError::ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
        HsmError::Crypto(c) => from_crypto(c),
        HsmError::Store(s) => from_store(s),
        // Nothing is done unaudited: a log that cannot be written is a device failure.
        HsmError::Audit(_) => CKR_DEVICE_ERROR,
        HsmError::Config(_) => CKR_GENERAL_ERROR,
        HsmError::Remote { rv, .. } => *rv,
    }
}

/// The engine error a remote `CK_RV` stands for, where one variant maps to it (so a remote
/// wrong PIN is [`HsmError::PinIncorrect`], as a local one is); otherwise
/// [`HsmError::Remote`] carrying the code.
pub fn to_hsm(rv: CK_RV, detail: &str) -> HsmError {
    const PLAIN: [fn() -> HsmError; 24] = [
        || HsmError::SlotIdInvalid,
        || HsmError::TokenNotInitialized,
        || HsmError::SessionHandleInvalid,
        || HsmError::SessionReadOnly,
        || HsmError::SessionReadOnlyExists,
        || HsmError::SessionReadWriteSoExists,
        || HsmError::SessionExists,
        || HsmError::UserAlreadyLoggedIn,
        || HsmError::UserAnotherAlreadyLoggedIn,
        || HsmError::UserNotLoggedIn,
        || HsmError::UserPinNotInitialized,
        || HsmError::PinIncorrect,
        || HsmError::PinLocked,
        || HsmError::PinLenRange,
        || HsmError::ObjectHandleInvalid,
        || HsmError::KeyHandleInvalid,
        || HsmError::WrappingKeyTooWeak,
        || HsmError::WrappingKeyHandleInvalid,
        || HsmError::WrappingKeyTypeInconsistent,
        || HsmError::UnwrappingKeyHandleInvalid,
        || HsmError::UnwrappingKeyTypeInconsistent,
        || HsmError::OperationActive,
        || HsmError::OperationNotInitialized,
        || HsmError::SavedStateInvalid,
    ];
    PLAIN
        .iter()
        .map(|make| make())
        .find(|e| from_hsm(e) == rv)
        .unwrap_or_else(|| HsmError::Remote {
            rv,
            detail: detail.to_owned(),
        })
}

/// The `CK_RV` for a template-rule violation.
pub fn from_attribute(e: &AttributeError) -> CK_RV {
    match e {
        AttributeError::TypeInvalid(_) => CKR_ATTRIBUTE_TYPE_INVALID,
        AttributeError::ValueInvalid(_) => CKR_ATTRIBUTE_VALUE_INVALID,
        AttributeError::ReadOnly(_) => CKR_ATTRIBUTE_READ_ONLY,
        AttributeError::Sensitive(_) => CKR_ATTRIBUTE_SENSITIVE,
        AttributeError::Incomplete(_) => CKR_TEMPLATE_INCOMPLETE,
        AttributeError::Inconsistent(_) => CKR_TEMPLATE_INCONSISTENT,
        _ => CKR_TEMPLATE_INCONSISTENT,
    }
}

/// The `CK_RV` for a cryptographic failure.
pub fn from_crypto(e: &CryptoError) -> CK_RV {
    match e {
        CryptoError::MechanismUnsupported(_) => CKR_MECHANISM_INVALID,
        CryptoError::MechanismParamInvalid(_) => CKR_MECHANISM_PARAM_INVALID,
        CryptoError::KeyTypeInconsistent { .. } => CKR_KEY_TYPE_INCONSISTENT,
        CryptoError::KeySizeRange { .. } => CKR_KEY_SIZE_RANGE,
        // Key material that does not form a key arrives through a template (C_CreateObject,
        // C_UnwrapKey's result): the value given is what is wrong.
        CryptoError::KeyInvalid(_) => CKR_ATTRIBUTE_VALUE_INVALID,
        CryptoError::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
        CryptoError::KeyFunctionNotPermitted(_) => CKR_KEY_FUNCTION_NOT_PERMITTED,
        CryptoError::DataLenRange => CKR_DATA_LEN_RANGE,
        CryptoError::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
        CryptoError::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
        CryptoError::SignatureInvalid => CKR_SIGNATURE_INVALID,
        CryptoError::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
        CryptoError::WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
        CryptoError::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
        CryptoError::BufferTooSmall { .. } => CKR_BUFFER_TOO_SMALL,
        // "The mechanism cannot be used with the selected function" (C_*Update here).
        CryptoError::SinglePartOnly => CKR_MECHANISM_INVALID,
        CryptoError::MultiPartStarted => CKR_OPERATION_ACTIVE,
        CryptoError::OperationState(_) => CKR_FUNCTION_FAILED,
        // A failed self-test or random generator: the module refuses all cryptography.
        CryptoError::ErrorState(_) | CryptoError::Rng(_) => CKR_DEVICE_ERROR,
        CryptoError::Library => CKR_FUNCTION_FAILED,
        _ => CKR_FUNCTION_FAILED,
    }
}

fn from_store(e: &StoreError) -> CK_RV {
    match e {
        StoreError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
            CKR_DEVICE_MEMORY
        }
        StoreError::MasterKeyUnavailable => CKR_USER_NOT_LOGGED_IN,
        _ => CKR_DEVICE_ERROR,
    }
}

/// The `CKF_*` flags of a registry row.
pub fn mechanism_flags(row: &MechanismInfo) -> CK_FLAGS {
    const MAP: [(Operations, CK_FLAGS); 14] = [
        (Operations::ENCRYPT, CKF_ENCRYPT),
        (Operations::DECRYPT, CKF_DECRYPT),
        (Operations::DIGEST, CKF_DIGEST),
        (Operations::SIGN, CKF_SIGN),
        (Operations::SIGN_RECOVER, CKF_SIGN_RECOVER),
        (Operations::VERIFY, CKF_VERIFY),
        (Operations::VERIFY_RECOVER, CKF_VERIFY_RECOVER),
        (Operations::GENERATE, CKF_GENERATE),
        (Operations::GENERATE_KEY_PAIR, CKF_GENERATE_KEY_PAIR),
        (Operations::WRAP, CKF_WRAP),
        (Operations::UNWRAP, CKF_UNWRAP),
        (Operations::DERIVE, CKF_DERIVE),
        (Operations::ENCAPSULATE, CKF_ENCAPSULATE),
        (Operations::DECAPSULATE, CKF_DECAPSULATE),
    ];
    let mut flags = MAP
        .iter()
        .filter(|(op, _)| row.operations.contains(*op))
        .fold(0, |acc, (_, f)| acc | f);
    if row.key_types.contains(&KeyType::EC) {
        // Prime-field named curves, points uncompressed (what CKA_EC_POINT holds).
        flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    }
    if row.mechanism == MechanismType::AES_GCM {
        flags |= CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_codes_come_back_as_the_same_errors() {
        assert!(matches!(
            to_hsm(CKR_PIN_INCORRECT, ""),
            HsmError::PinIncorrect
        ));
        assert!(matches!(
            to_hsm(CKR_SESSION_HANDLE_INVALID, ""),
            HsmError::SessionHandleInvalid
        ));
        let e = to_hsm(CKR_SIGNATURE_INVALID, "bad");
        assert!(matches!(
            e,
            HsmError::Remote {
                rv: CKR_SIGNATURE_INVALID,
                ..
            }
        ));
        assert_eq!(from_hsm(&e), CKR_SIGNATURE_INVALID);
    }

    #[test]
    fn caller_misuse_and_failures_get_distinct_codes() {
        assert_eq!(from_hsm(&HsmError::OperationActive), CKR_OPERATION_ACTIVE);
        assert_eq!(
            from_crypto(&CryptoError::BufferTooSmall { required: 3 }),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            from_hsm(&HsmError::Crypto(CryptoError::SignatureInvalid)),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(
            from_hsm(&HsmError::Attribute(AttributeError::Sensitive(
                craton_core::attribute::AttributeType::VALUE
            ))),
            CKR_ATTRIBUTE_SENSITIVE
        );
    }
}
