//! Session management (PKCS#11 3.0 §5.6): sessions, login, saved operation state, and the
//! legacy parallel-function calls; and the 3.2 session calls: validation flags and the
//! asynchronous-operation functions.
//!
//! The module runs every call to completion before returning: it never answers
//! `CKR_PENDING`, refuses `CKF_ASYNC_SESSION` with `CKR_SESSION_ASYNC_NOT_SUPPORTED`, and
//! leaves `CKF_ASYNC_SESSION_SUPPORTED` out of the token flags. So no asynchronous operation
//! ever exists, and the `C_Async*` calls say so with the codes 3.2 gives for that.

use super::slot::pin;
use super::{CkResult, bytes, entry, output, session, write};
use crate::rv::check;
use crate::state::module;
use craton_store::{MessageKind, OperationKind, SessionState, UserType};
use cryptoki_sys::*;

/// `C_OpenSession`. Callbacks (`Notify`) are accepted and never called: the module has no
/// surrender points.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut std::ffi::c_void,
    _notify: CK_NOTIFY,
    out: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        if out.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if flags & CKF_ASYNC_SESSION != 0 {
            return Err(CKR_SESSION_ASYNC_NOT_SUPPORTED);
        }
        let h = check(m.hsm.open_session(slot, flags & CKF_RW_SESSION != 0))?;
        // SAFETY: `out` is non-null and writable by the caller's contract.
        unsafe { write(out, h.0) }
    })
}

/// `C_CloseSession`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    entry(|| check(module()?.hsm.close_session(session(h))))
}

/// `C_CloseAllSessions`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    entry(|| check(module()?.hsm.close_all_sessions(slot)))
}

/// `C_GetSessionInfo`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSessionInfo(
    h: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    entry(|| {
        let i = check(module()?.hsm.session_info(session(h)))?;
        let out = CK_SESSION_INFO {
            slotID: i.slot,
            state: match i.state {
                SessionState::RoPublic => CKS_RO_PUBLIC_SESSION,
                SessionState::RwPublic => CKS_RW_PUBLIC_SESSION,
                SessionState::RoUser => CKS_RO_USER_FUNCTIONS,
                SessionState::RwUser => CKS_RW_USER_FUNCTIONS,
                SessionState::RwSo => CKS_RW_SO_FUNCTIONS,
            },
            flags: CKF_SERIAL_SESSION | if i.read_write { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        // SAFETY: the caller passes a writable CK_SESSION_INFO.
        unsafe { write(info, out) }
    })
}

/// The operation kinds a `C_SessionCancel` flag word names.
fn kinds(flags: CK_FLAGS) -> CkResult<Vec<OperationKind>> {
    const MAP: [(CK_FLAGS, OperationKind); 12] = [
        (CKF_ENCRYPT, OperationKind::Encrypt),
        (CKF_DECRYPT, OperationKind::Decrypt),
        (CKF_DIGEST, OperationKind::Digest),
        (CKF_SIGN, OperationKind::Sign),
        (CKF_SIGN_RECOVER, OperationKind::Sign),
        (CKF_VERIFY, OperationKind::Verify),
        (CKF_VERIFY_RECOVER, OperationKind::Verify),
        (CKF_FIND_OBJECTS, OperationKind::Find),
        (
            CKF_MESSAGE_ENCRYPT,
            OperationKind::Message(MessageKind::Encrypt),
        ),
        (
            CKF_MESSAGE_DECRYPT,
            OperationKind::Message(MessageKind::Decrypt),
        ),
        (CKF_MESSAGE_SIGN, OperationKind::Message(MessageKind::Sign)),
        (
            CKF_MESSAGE_VERIFY,
            OperationKind::Message(MessageKind::Verify),
        ),
    ];
    let known = MAP.iter().fold(0, |acc, (f, _)| acc | f);
    if flags & !known != 0 {
        return Err(CKR_ARGUMENTS_BAD);
    }
    Ok(MAP
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, k)| *k)
        .collect())
}

/// `C_SessionCancel` (3.0): ends the named operations without finishing them.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SessionCancel(h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    entry(|| {
        let m = module()?;
        let k = kinds(flags)?;
        check(m.hsm.cancel(session(h), &k))
    })
}

/// `C_GetOperationState`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetOperationState(
    h: CK_SESSION_HANDLE,
    state: *mut CK_BYTE,
    len: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: `state` holds `*len` bytes when non-null.
        let mut out = unsafe { output(state, len) }?;
        let blob = check(m.hsm.operation_state(session(h)))?;
        out.put(&blob)
    })
}

/// `C_SetOperationState`. The saved state names its keys itself
/// (`CKF_RESTORE_KEY_NOT_NEEDED`), so key handles are refused with `CKR_KEY_NOT_NEEDED`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetOperationState(
    h: CK_SESSION_HANDLE,
    state: *mut CK_BYTE,
    len: CK_ULONG,
    encryption_key: CK_OBJECT_HANDLE,
    authentication_key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: `state` is `len` bytes.
        let blob = unsafe { bytes(state, len) }?;
        if blob.is_empty() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if encryption_key != CK_INVALID_HANDLE || authentication_key != CK_INVALID_HANDLE {
            return Err(CKR_KEY_NOT_NEEDED);
        }
        check(m.hsm.set_operation_state(session(h), blob))
    })
}

fn user_type(u: CK_USER_TYPE) -> CkResult<UserType> {
    match u {
        CKU_SO => Ok(UserType::So),
        CKU_USER => Ok(UserType::User),
        CKU_CONTEXT_SPECIFIC => Ok(UserType::ContextSpecific),
        _ => Err(CKR_USER_TYPE_INVALID),
    }
}

/// `C_Login`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Login(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    p: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        let user = user_type(user)?;
        // SAFETY: the PIN is `len` bytes.
        let p = unsafe { pin(p, len) }?;
        check(m.hsm.login(session(h), user, p))
    })
}

/// `C_LoginUser` (3.0). Tokens here have one user per type and no user names, so a name is
/// refused and an empty one makes this `C_Login`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_LoginUser(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    p: *mut CK_UTF8CHAR,
    len: CK_ULONG,
    username: *mut CK_UTF8CHAR,
    username_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        let user = user_type(user)?;
        // SAFETY: the name is `username_len` bytes and the PIN `len` bytes.
        let (name, p) = unsafe { (bytes(username, username_len)?, pin(p, len)?) };
        if !name.is_empty() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        check(m.hsm.login(session(h), user, p))
    })
}

/// `C_Logout`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    entry(|| check(module()?.hsm.logout(session(h))))
}

/// `C_GetFunctionStatus`: a legacy call; the specification fixes its answer.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionStatus(h: CK_SESSION_HANDLE) -> CK_RV {
    entry(|| {
        check(module()?.hsm.session_info(session(h)))?;
        Err(CKR_FUNCTION_NOT_PARALLEL)
    })
}

/// `C_CancelFunction`: a legacy call; the specification fixes its answer.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CancelFunction(h: CK_SESSION_HANDLE) -> CK_RV {
    entry(|| {
        check(module()?.hsm.session_info(session(h)))?;
        Err(CKR_FUNCTION_NOT_PARALLEL)
    })
}

/// `C_GetSessionValidationFlags` (3.2): the validation flags of the session's last
/// operation. Each flag bit belongs to a validation object (`CKO_VALIDATION`) naming a
/// third-party validation the module holds; Craton HSM publishes none (it claims no
/// certificate it does not have), so no bit is ever set. Per-operation FIPS status is in the
/// audit log's `fips_approved` field instead.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSessionValidationFlags(
    h: CK_SESSION_HANDLE,
    kind: CK_SESSION_VALIDATION_FLAGS_TYPE,
    flags: *mut CK_FLAGS,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        check(m.hsm.session_info(session(h)))?;
        if kind != CKS_LAST_VALIDATION_OK {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the caller passes a writable CK_FLAGS.
        unsafe { write(flags, 0) }
    })
}

/// Checks a session and a function name, the arguments every `C_Async*` call shares.
///
/// # Safety
/// `name` is null or a NUL-terminated string.
unsafe fn async_arguments(h: CK_SESSION_HANDLE, name: *const CK_UTF8CHAR) -> CkResult<()> {
    let m = module()?;
    check(m.hsm.session_info(session(h)))?;
    if name.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    Ok(())
}

/// `C_AsyncComplete` (3.2): no call of this module is ever pending, so whatever function is
/// named has no asynchronous operation to complete.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_AsyncComplete(
    h: CK_SESSION_HANDLE,
    name: *mut CK_UTF8CHAR,
    _result: *mut CK_ASYNC_DATA,
) -> CK_RV {
    entry(|| {
        // SAFETY: a non-null name is NUL-terminated.
        unsafe { async_arguments(h, name) }?;
        Err(CKR_OPERATION_NOT_INITIALIZED)
    })
}

/// `C_AsyncGetID` (3.2): a function that is not performing an asynchronous operation has no
/// identifier (`CKR_OPERATION_NOT_INITIALIZED`, as 3.2 prescribes).
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_AsyncGetID(
    h: CK_SESSION_HANDLE,
    name: *mut CK_UTF8CHAR,
    id: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        // SAFETY: a non-null name is NUL-terminated.
        unsafe { async_arguments(h, name) }?;
        if id.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        Err(CKR_OPERATION_NOT_INITIALIZED)
    })
}

/// `C_AsyncJoin` (3.2): no identifier was ever handed out, so none names an operation to
/// rejoin (`CKR_SAVED_STATE_INVALID`).
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_AsyncJoin(
    h: CK_SESSION_HANDLE,
    name: *mut CK_UTF8CHAR,
    _id: CK_ULONG,
    _data: *mut CK_BYTE,
    _data_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        // SAFETY: a non-null name is NUL-terminated.
        unsafe { async_arguments(h, name) }?;
        Err(CKR_SAVED_STATE_INVALID)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_flags_name_operation_kinds() {
        assert_eq!(
            kinds(CKF_SIGN | CKF_FIND_OBJECTS),
            Ok(vec![OperationKind::Sign, OperationKind::Find])
        );
        assert_eq!(kinds(1 << 40), Err(CKR_ARGUMENTS_BAD));
    }

    #[test]
    fn unknown_user_types_are_refused() {
        assert!(user_type(7).is_err());
    }
}
