//! Errors of the cryptographic core.
//!
//! The variants keep caller misuse (bad parameters, wrong key, short buffer) apart from data
//! failures (bad padding, bad signature) and from failures of the module itself (error state,
//! RNG, library). `craton-pkcs11` maps each variant to one `CK_RV` in a single place. No
//! variant ever carries key bytes, PINs or plaintext.

use crate::mechanism::{KeyType, MechanismType};
use crate::post::PostFailure;
use crate::rng::RngError;

/// Anything a core operation can refuse or fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The mechanism is unknown, or disabled by policy.
    #[error("mechanism {0:?} is not supported")]
    MechanismUnsupported(MechanismType),
    /// The mechanism's parameters are missing, malformed or out of range.
    #[error("mechanism parameter invalid: {0}")]
    MechanismParamInvalid(&'static str),
    /// The key's type does not fit the mechanism.
    #[error("key type {key_type:?} cannot be used with {mechanism:?}")]
    KeyTypeInconsistent {
        /// The key's type.
        key_type: KeyType,
        /// The mechanism asked for.
        mechanism: MechanismType,
    },
    /// The key's size is outside what the mechanism (or policy) allows.
    #[error("key size {bits} bits is outside the allowed range {min}..={max}")]
    KeySizeRange {
        /// The key's size in bits.
        bits: usize,
        /// Smallest allowed size in bits.
        min: usize,
        /// Largest allowed size in bits.
        max: usize,
    },
    /// Well-formed domain parameters naming a curve this token does not implement.
    #[error("curve not supported")]
    CurveNotSupported,
    /// Key material that does not form a valid key (bad point, inconsistent RSA components…).
    #[error("key material invalid: {0}")]
    KeyInvalid(&'static str),
    /// The key cannot do this operation (a public key asked to sign, for instance).
    #[error("key cannot perform this operation: {0}")]
    KeyFunctionNotPermitted(&'static str),
    /// Plaintext or data input of a length the mechanism cannot take.
    #[error("input length is out of range for this mechanism")]
    DataLenRange,
    /// Ciphertext that fails to decrypt: bad padding, failed authentication tag.
    #[error("encrypted data is invalid")]
    EncryptedDataInvalid,
    /// Ciphertext of a length the mechanism cannot take.
    #[error("encrypted data length is out of range")]
    EncryptedDataLenRange,
    /// A signature or MAC that does not verify.
    #[error("signature is invalid")]
    SignatureInvalid,
    /// A signature or MAC of the wrong length.
    #[error("signature length is out of range")]
    SignatureLenRange,
    /// A wrapped key that fails to unwrap.
    #[error("wrapped key is invalid")]
    WrappedKeyInvalid,
    /// A wrapped key of a length the mechanism cannot take.
    #[error("wrapped key length is out of range")]
    WrappedKeyLenRange,
    /// The caller's output buffer is too small; `required` is the size needed.
    #[error("output buffer too small: {required} bytes required")]
    BufferTooSmall {
        /// Bytes needed for the output.
        required: usize,
    },
    /// A multi-part call (`C_*Update`) with a mechanism that works in one part only
    /// (`CKM_RSA_PKCS`, `CKM_ECDSA`, `CKM_EDDSA`…).
    #[error("this mechanism works in a single part only")]
    SinglePartOnly,
    /// A single-part call after a multi-part update of the same operation.
    #[error("a single-part call after a multi-part update")]
    MultiPartStarted,
    /// The operation was already finished, or used in the wrong order.
    #[error("operation used out of order: {0}")]
    OperationState(&'static str),
    /// The module failed a self-test and refuses all cryptography.
    #[error("module is in the error state: {0}")]
    ErrorState(PostFailure),
    /// The random bit generator failed (entropy source or health test).
    #[error("random generator failure: {0}")]
    Rng(#[from] RngError),
    /// AWS-LC reported a failure that no more specific variant explains.
    #[error("cryptographic library failure")]
    Library,
}

impl From<crate::ffi::LibFailure> for CryptoError {
    fn from(_: crate::ffi::LibFailure) -> Self {
        CryptoError::Library
    }
}

impl From<aws_lc_rs::error::Unspecified> for CryptoError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        CryptoError::Library
    }
}

/// Result alias for core operations.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
