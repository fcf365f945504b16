//! Key management (PKCS#11 3.0 §5.15) and random numbers (§5.16): generate, generate pair,
//! wrap, unwrap, derive, seed, random.

use super::params::mechanism_for;
use super::{bytes, bytes_mut, entry, new_object, object, output, session, template, write};
use crate::rv::check;
use crate::state::module;
use craton_core::Operations;
use cryptoki_sys::*;

/// `C_GenerateKey`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKey(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism and template are valid for their stated lengths; `key` is a
        // writable handle.
        unsafe {
            let reg = m.hsm.registry();
            let (mech, t) = (
                mechanism_for(mech, reg, Operations::GENERATE)?,
                template(attrs, count)?,
            );
            new_object(key, || check(m.hsm.generate_key(session(h), &mech, &t)))
        }
    })
}

/// `C_GenerateKeyPair`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKeyPair(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    public_attrs: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private_attrs: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        if public_key.is_null() || private_key.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the mechanism and both templates are valid for their stated lengths.
        let (mech, public, private) = unsafe {
            (
                mechanism_for(mech, m.hsm.registry(), Operations::GENERATE_KEY_PAIR)?,
                template(public_attrs, public_count)?,
                template(private_attrs, private_count)?,
            )
        };
        let (pubh, privh) = check(
            m.hsm
                .generate_key_pair(session(h), &mech, &public, &private),
        )?;
        // SAFETY: both outputs are non-null and writable.
        unsafe {
            write(public_key, pubh.0)?;
            write(private_key, privh.0)
        }
    })
}

/// `C_WrapKey`. A length query (or a buffer too small) is answered from the lengths alone:
/// nothing is wrapped, and only a real wrap is audited.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WrapKey(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism is valid; the output holds `*wrapped_len` bytes.
        let (mech, mut out) = unsafe {
            (
                mechanism_for(mech, m.hsm.registry(), Operations::WRAP)?,
                output(wrapped, wrapped_len)?,
            )
        };
        let (s, w, k) = (session(h), object(wrapping), object(key));
        let needed = check(m.hsm.wrap_key_len(s, &mech, w, k))?;
        out.fill(needed, || check(m.hsm.wrap_key(s, &mech, w, k)))
    })
}

/// `C_UnwrapKey`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_UnwrapKey(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism, wrapped bytes and template are valid for their lengths;
        // `key` is a writable handle.
        unsafe {
            let (mech, blob) = (
                mechanism_for(mech, m.hsm.registry(), Operations::UNWRAP)?,
                bytes(wrapped, wrapped_len)?,
            );
            let t = template(attrs, count)?;
            new_object(key, || {
                check(
                    m.hsm
                        .unwrap_key(session(h), &mech, object(unwrapping), blob, &t),
                )
            })
        }
    })
}

/// `C_DeriveKey`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DeriveKey(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    base: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism and template are valid for their stated lengths; `key` is a
        // writable handle.
        unsafe {
            let (mech, t) = (
                mechanism_for(mech, m.hsm.registry(), Operations::DERIVE)?,
                template(attrs, count)?,
            );
            new_object(key, || {
                check(m.hsm.derive_key(session(h), &mech, object(base), &t))
            })
        }
    })
}

/// `C_SeedRandom`: the seed is taken as a request for fresh entropy, never as the only
/// input to the generator.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SeedRandom(
    h: CK_SESSION_HANDLE,
    seed: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the seed is `len` bytes.
        let seed = unsafe { bytes(seed, len) }?;
        check(m.hsm.seed_random(session(h), seed))
    })
}

/// `C_GenerateRandom`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateRandom(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the output is `len` writable bytes.
        let out = unsafe { bytes_mut(out, len) }?;
        check(m.hsm.generate_random(session(h), out))
    })
}
