//! Message digesting (PKCS#11 3.0 §5.11).

use super::params::mechanism_for;
use super::{bytes, entry, object, on_operation, output, session};
use crate::rv::check;
use crate::state::module;
use craton_core::Operations;
use craton_store::OperationKind;
use cryptoki_sys::*;

/// `C_DigestInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestInit(h: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> CK_RV {
    entry(|| {
        let m = module()?;
        if mech.is_null() {
            return super::terminate(&m, h, OperationKind::Digest);
        }
        // SAFETY: the mechanism and its parameters are valid for their stated lengths.
        let mech = unsafe { mechanism_for(mech, m.hsm.registry(), Operations::DIGEST) }?;
        check(m.hsm.digest_init(session(h), &mech))
    })
}

/// `C_Digest`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Digest(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Digest], |m| {
        // SAFETY: the data is `data_len` bytes; the digest buffer holds `*digest_len`.
        let (data, mut out) = unsafe { (bytes(data, data_len)?, output(digest, digest_len)?) };
        out.write_with(
            || check(m.hsm.digest_len(session(h))),
            |buf| m.hsm.digest_into(session(h), data, buf),
        )
    })
}

/// `C_DigestUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Digest], |m| {
        // SAFETY: the part is `len` bytes.
        let part = unsafe { bytes(part, len) }?;
        check(m.hsm.digest_update(session(h), part))
    })
}

/// `C_DigestKey`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestKey(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
    on_operation(h, &[OperationKind::Digest], |m| {
        check(m.hsm.digest_key(session(h), object(key)))
    })
}

/// `C_DigestFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestFinal(
    h: CK_SESSION_HANDLE,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[OperationKind::Digest], |m| {
        // SAFETY: the digest buffer holds `*digest_len` bytes.
        let mut out = unsafe { output(digest, digest_len) }?;
        let needed = check(m.hsm.digest_len(session(h)))?;
        out.fill(needed, || check(m.hsm.digest_final(session(h))))
    })
}
