//! Message digesting (PKCS#11 3.0 §5.11).

use super::crypt::ending;
use super::params::mechanism;
use super::{bytes, entry, object, output, session};
use crate::rv::check;
use crate::state::module;
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
        // SAFETY: the mechanism and its parameters are valid for their stated lengths.
        let mech = unsafe { mechanism(mech) }?;
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
    entry(|| {
        let m = module()?;
        let r = (|| {
            // SAFETY: the data is `data_len` bytes; the digest buffer holds `*digest_len`.
            let (data, mut out) = unsafe { (bytes(data, data_len)?, output(digest, digest_len)?) };
            if !out.ready(check(m.hsm.digest_len(session(h)))?)? {
                return Ok(());
            }
            out.put(&check(m.hsm.digest(session(h), data))?)
        })();
        ending(&m, h, OperationKind::Digest, r)
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
    entry(|| {
        let m = module()?;
        // SAFETY: the part is `len` bytes.
        let r = unsafe { bytes(part, len) }.and_then(|p| check(m.hsm.digest_update(session(h), p)));
        ending(&m, h, OperationKind::Digest, r)
    })
}

/// `C_DigestKey`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestKey(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
    entry(|| {
        let m = module()?;
        let r = check(m.hsm.digest_key(session(h), object(key)));
        ending(&m, h, OperationKind::Digest, r)
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
    entry(|| {
        let m = module()?;
        let r = (|| {
            // SAFETY: the digest buffer holds `*digest_len` bytes.
            let mut out = unsafe { output(digest, digest_len) }?;
            if !out.ready(check(m.hsm.digest_len(session(h)))?)? {
                return Ok(());
            }
            out.put(&check(m.hsm.digest_final(session(h)))?)
        })();
        ending(&m, h, OperationKind::Digest, r)
    })
}
