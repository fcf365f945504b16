//! Errors of the engine.
//!
//! Each variant is one thing a caller can act on; `craton-pkcs11` maps each to exactly one
//! `CK_RV` and the daemon to one gRPC status. Caller misuse (wrong session state, bad handle)
//! stays apart from authentication failures, template problems, cryptographic failures and
//! storage failures. No variant carries a PIN or key bytes.

use crate::config::ConfigError;
use crate::persist::StoreError;
use craton_core::CryptoError;
use craton_core::attribute::AttributeError;

/// Anything the engine can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// No such slot.
    #[error("slot id is invalid")]
    SlotIdInvalid,
    /// The token has not been initialised (`C_InitToken`).
    #[error("token is not initialised")]
    TokenNotInitialized,
    /// No such session (or it belongs to someone else).
    #[error("session handle is invalid")]
    SessionHandleInvalid,
    /// A write was attempted in a read-only session.
    #[error("session is read-only")]
    SessionReadOnly,
    /// The SO cannot log in while read-only sessions are open.
    #[error("a read-only session exists")]
    SessionReadOnlyExists,
    /// A read-only session cannot be opened while the SO is logged in.
    #[error("a read/write SO session exists")]
    SessionReadWriteSoExists,
    /// `C_InitToken` while sessions are open.
    #[error("sessions are open on this token")]
    SessionExists,
    /// Already logged in as this user.
    #[error("user is already logged in")]
    UserAlreadyLoggedIn,
    /// Another user type is logged in.
    #[error("another user is already logged in")]
    UserAnotherAlreadyLoggedIn,
    /// The operation needs a login.
    #[error("user is not logged in")]
    UserNotLoggedIn,
    /// The user PIN was never set.
    #[error("user PIN is not initialised")]
    UserPinNotInitialized,
    /// Wrong PIN.
    #[error("PIN is incorrect")]
    PinIncorrect,
    /// Too many wrong PINs.
    #[error("PIN is locked")]
    PinLocked,
    /// PIN shorter or longer than the token allows.
    #[error("PIN length is out of range")]
    PinLenRange,
    /// No such object, or not visible to this session.
    #[error("object handle is invalid")]
    ObjectHandleInvalid,
    /// No such key, or not visible to this session.
    #[error("key handle is invalid")]
    KeyHandleInvalid,
    /// A template or attribute rule was broken.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// The object forbids this (not destroyable, not copyable, not modifiable).
    #[error("action prohibited: {0}")]
    ActionProhibited(&'static str),
    /// The key's attributes do not permit this operation (`CKA_SIGN` false, outside its
    /// dates, an `CKA_ALWAYS_AUTHENTICATE` key without the context login…).
    #[error("key function not permitted: {0}")]
    KeyFunctionNotPermitted(&'static str),
    /// `C_DigestKey` on a key whose value may not be digested (not a secret key, or a
    /// sensitive one).
    #[error("key cannot be digested: {0}")]
    KeyIndigestible(&'static str),
    /// The key cannot be wrapped (unextractable, or needs a trusted wrapping key).
    #[error("key cannot be wrapped: {0}")]
    KeyUnextractable(&'static str),
    /// `C_WrapKey`'s wrapping key does not exist or is not visible.
    #[error("wrapping key handle is invalid")]
    WrappingKeyHandleInvalid,
    /// `C_WrapKey`'s wrapping key is of the wrong type for the mechanism.
    #[error("wrapping key type does not fit the mechanism")]
    WrappingKeyTypeInconsistent,
    /// `C_UnwrapKey`'s unwrapping key does not exist or is not visible.
    #[error("unwrapping key handle is invalid")]
    UnwrappingKeyHandleInvalid,
    /// `C_UnwrapKey`'s unwrapping key is of the wrong type for the mechanism.
    #[error("unwrapping key type does not fit the mechanism")]
    UnwrappingKeyTypeInconsistent,
    /// The wrapping key is weaker than the key it would wrap.
    #[error("wrapping key is weaker than the key to be wrapped")]
    WrappingKeyTooWeak,
    /// An operation of this kind is already running in the session.
    #[error("an operation is already active")]
    OperationActive,
    /// No operation of this kind is running in the session.
    #[error("operation not initialised")]
    OperationNotInitialized,
    /// A saved operation state that this engine did not issue, or issued for another token.
    #[error("saved operation state is invalid")]
    SavedStateInvalid,
    /// A malformed argument that no more specific variant covers.
    #[error("bad arguments: {0}")]
    ArgumentsBad(&'static str),
    /// The cryptographic core refused or failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log cannot be written; the engine refuses to work unaudited.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A remote token (the daemon) failed the call with this PKCS#11 return value, or could
    /// not be reached (`CKR_DEVICE_REMOVED`); see [`crate::ck::to_hsm`].
    #[error("the daemon answered CK_RV 0x{rv:08X}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Remote {
        /// The `CK_RV`.
        rv: u64,
        /// What the transport or the daemon said.
        detail: String,
    },
}

/// Result alias of the engine.
pub type Result<T, E = HsmError> = std::result::Result<T, E>;
