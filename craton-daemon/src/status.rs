//! The one mapping between PKCS#11 return values and gRPC statuses. A failed call carries
//! its `CK_RV` in the `craton-ckr` metadata entry, so a remote PKCS#11 client returns exactly
//! what the local module would; the gRPC code is the nearest general meaning, for clients
//! that know nothing of PKCS#11. Messages name the code only: details stay in the daemon's
//! log, never key bytes or PINs.

use cryptoki_sys::*;
use tonic::{Code, Status};

/// The metadata key that carries the `CK_RV`.
pub const CKR_METADATA: &str = "craton-ckr";

/// A PKCS#11 failure, on its way to becoming a [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CkError(CK_RV);

/// A failure with this `CK_RV`.
pub fn ck(rv: CK_RV) -> CkError {
    CkError(rv)
}

impl CkError {
    /// The `CK_RV`.
    pub fn rv(self) -> CK_RV {
        self.0
    }
}

impl From<craton_store::HsmError> for CkError {
    fn from(e: craton_store::HsmError) -> Self {
        CkError(craton_store::ck::from_hsm(&e))
    }
}

impl From<CkError> for Status {
    fn from(e: CkError) -> Status {
        to_status(e.0)
    }
}

/// The gRPC code nearest to a `CK_RV`.
pub fn code_for(rv: CK_RV) -> Code {
    match rv {
        CKR_SLOT_ID_INVALID
        | CKR_SESSION_HANDLE_INVALID
        | CKR_OBJECT_HANDLE_INVALID
        | CKR_KEY_HANDLE_INVALID
        | CKR_WRAPPING_KEY_HANDLE_INVALID
        | CKR_UNWRAPPING_KEY_HANDLE_INVALID => Code::NotFound,
        CKR_PIN_INCORRECT | CKR_USER_NOT_LOGGED_IN | CKR_USER_PIN_NOT_INITIALIZED => {
            Code::Unauthenticated
        }
        CKR_PIN_LOCKED
        | CKR_KEY_FUNCTION_NOT_PERMITTED
        | CKR_ACTION_PROHIBITED
        | CKR_ATTRIBUTE_SENSITIVE
        | CKR_KEY_UNEXTRACTABLE
        | CKR_ATTRIBUTE_READ_ONLY
        | CKR_SESSION_READ_ONLY => Code::PermissionDenied,
        CKR_OPERATION_ACTIVE
        | CKR_OPERATION_NOT_INITIALIZED
        | CKR_USER_ALREADY_LOGGED_IN
        | CKR_USER_ANOTHER_ALREADY_LOGGED_IN
        | CKR_SESSION_READ_ONLY_EXISTS
        | CKR_SESSION_READ_WRITE_SO_EXISTS
        | CKR_SESSION_EXISTS
        | CKR_TOKEN_NOT_RECOGNIZED => Code::FailedPrecondition,
        CKR_DEVICE_MEMORY => Code::ResourceExhausted,
        CKR_DEVICE_REMOVED => Code::Unavailable,
        CKR_DEVICE_ERROR | CKR_GENERAL_ERROR | CKR_FUNCTION_FAILED => Code::Internal,
        CKR_FUNCTION_NOT_SUPPORTED => Code::Unimplemented,
        _ => Code::InvalidArgument,
    }
}

/// A status carrying `rv`.
pub fn to_status(rv: CK_RV) -> Status {
    let mut s = Status::new(code_for(rv), format!("PKCS#11 error 0x{rv:08X}"));
    if let Ok(v) = rv.to_string().parse() {
        s.metadata_mut().insert(CKR_METADATA, v);
    }
    s
}

/// The `CK_RV` a remote client returns for a status: the daemon's own code when it sent one;
/// otherwise the link failed (`CKR_DEVICE_REMOVED` when the daemon cannot be reached or timed
/// out, `CKR_DEVICE_ERROR` for anything else).
pub fn rv_of(s: &Status) -> CK_RV {
    if let Some(rv) = s
        .metadata()
        .get(CKR_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<CK_RV>().ok())
    {
        return rv;
    }
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => CKR_DEVICE_REMOVED,
        _ => CKR_DEVICE_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ck_rv_survives_the_trip() {
        for rv in [
            CKR_SIGNATURE_INVALID,
            CKR_SESSION_HANDLE_INVALID,
            CKR_PIN_INCORRECT,
            CKR_BUFFER_TOO_SMALL,
        ] {
            assert_eq!(rv_of(&to_status(rv)), rv);
        }
        assert_eq!(code_for(CKR_PIN_LOCKED), Code::PermissionDenied);
        assert_eq!(rv_of(&Status::unavailable("down")), CKR_DEVICE_REMOVED);
        assert_eq!(rv_of(&Status::internal("?")), CKR_DEVICE_ERROR);
    }
}
