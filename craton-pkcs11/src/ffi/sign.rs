//! Signing, MACs and verification with and without message recovery (PKCS#11 3.0 §5.12,
//! §5.13), and the 3.2 verification that takes the signature first (`C_VerifySignature*`).

use super::params::mechanism_for;
use super::{bytes, entry, object, on_operation, output, session, terminate};
use crate::rv::check;
use crate::state::module;
use craton_core::Operations;
use craton_store::OperationKind;
use cryptoki_sys::*;

#[derive(Clone, Copy)]
enum Init {
    Sign,
    SignRecover,
    Verify,
    VerifyRecover,
}

fn init(h: CK_SESSION_HANDLE, what: Init, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    entry(|| {
        let m = module()?;
        let kind = match what {
            Init::Sign | Init::SignRecover => OperationKind::Sign,
            Init::Verify | Init::VerifyRecover => OperationKind::Verify,
        };
        if mech.is_null() {
            return terminate(&m, h, kind);
        }
        let op = match what {
            Init::Sign => Operations::SIGN,
            Init::SignRecover => Operations::SIGN_RECOVER,
            Init::Verify => Operations::VERIFY,
            Init::VerifyRecover => Operations::VERIFY_RECOVER,
        };
        // SAFETY: the mechanism and its parameters are valid for their stated lengths.
        let mech = unsafe { mechanism_for(mech, m.hsm.registry(), op) }?;
        let (s, k) = (session(h), object(key));
        check(match what {
            Init::Sign => m.hsm.sign_init(s, &mech, k),
            Init::SignRecover => m.hsm.sign_recover_init(s, &mech, k),
            Init::Verify => m.hsm.verify_init(s, &mech, k),
            Init::VerifyRecover => m.hsm.verify_recover_init(s, &mech, k),
        })
    })
}

/// `C_SignInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, Init::Sign, mech, key)
}

/// `C_Sign`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Sign(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Sign], |m| {
        // SAFETY: the data is `data_len` bytes; the signature buffer holds `*sig_len` bytes.
        let (data, mut out) = unsafe { (bytes(data, data_len)?, output(sig, sig_len)?) };
        out.write_with(
            || check(m.hsm.signature_len(session(h))),
            |buf| m.hsm.sign_into(session(h), data, buf),
        )
    })
}

/// `C_SignUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Sign], |m| {
        // SAFETY: the part is `len` bytes.
        let part = unsafe { bytes(part, len) }?;
        check(m.hsm.sign_update(session(h), part))
    })
}

/// `C_SignFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Sign], |m| {
        // SAFETY: the signature buffer holds `*sig_len` bytes.
        let mut out = unsafe { output(sig, sig_len) }?;
        let needed = check(m.hsm.signature_len(session(h)))?;
        out.fill(needed, || check(m.hsm.sign_final(session(h))))
    })
}

/// `C_SignRecoverInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignRecoverInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, Init::SignRecover, mech, key)
}

/// `C_SignRecover`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignRecover(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Sign], |m| {
        // SAFETY: the data is `data_len` bytes; the signature buffer holds `*sig_len` bytes.
        let (data, mut out) = unsafe { (bytes(data, data_len)?, output(sig, sig_len)?) };
        let needed = check(m.hsm.signature_len(session(h)))?;
        out.fill(needed, || check(m.hsm.sign_recover(session(h), data)))
    })
}

/// `C_VerifyInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, Init::Verify, mech, key)
}

/// `C_Verify`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Verify(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        // SAFETY: the data and signature are their stated lengths.
        let (data, sig) = unsafe { (bytes(data, data_len)?, bytes(sig, sig_len)?) };
        check(m.hsm.verify(session(h), data, sig))
    })
}

/// `C_VerifyUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        // SAFETY: the part is `len` bytes.
        let part = unsafe { bytes(part, len) }?;
        check(m.hsm.verify_update(session(h), part))
    })
}

/// `C_VerifyFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        // SAFETY: the signature is `len` bytes.
        let sig = unsafe { bytes(sig, len) }?;
        check(m.hsm.verify_final(session(h), sig))
    })
}

/// `C_VerifyRecoverInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyRecoverInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, Init::VerifyRecover, mech, key)
}

/// `C_VerifyRecover`: the recovered data is never longer than the signature (RSA), which is
/// the length a query gets.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyRecover(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
    data: *mut CK_BYTE,
    data_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        // SAFETY: the signature is `sig_len` bytes; the data buffer holds `*data_len` bytes.
        let (sig, mut out) = unsafe { (bytes(sig, sig_len)?, output(data, data_len)?) };
        out.fill(sig.len(), || check(m.hsm.verify_recover(session(h), sig)))
    })
}

/// `C_VerifySignatureInit` (PKCS#11 3.2): a verification whose signature comes first. It is
/// the session's one verification operation, shared with `C_VerifyInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifySignatureInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        if mech.is_null() {
            return terminate(&m, h, OperationKind::Verify);
        }
        // SAFETY: the mechanism and its parameters are valid for their stated lengths; the
        // signature is `sig_len` bytes.
        let (mech, sig) = unsafe {
            (
                mechanism_for(mech, m.hsm.registry(), Operations::VERIFY)?,
                bytes(sig, sig_len)?,
            )
        };
        check(
            m.hsm
                .verify_signature_init(session(h), &mech, object(key), sig),
        )
    })
}

/// `C_VerifySignature`: `CKR_OK` for a valid signature, `CKR_SIGNATURE_INVALID` otherwise.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifySignature(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        // SAFETY: the data is `data_len` bytes.
        let data = unsafe { bytes(data, data_len) }?;
        check(m.hsm.verify_signature(session(h), data))
    })
}

/// `C_VerifySignatureUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifySignatureUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        // SAFETY: the part is `len` bytes.
        let part = unsafe { bytes(part, len) }?;
        check(m.hsm.verify_signature_update(session(h), part))
    })
}

/// `C_VerifySignatureFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifySignatureFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    on_operation(h, &[OperationKind::Verify], |m| {
        check(m.hsm.verify_signature_final(session(h)))
    })
}
