//! Key management (PKCS#11 3.0 §5.15) and random numbers (§5.16): generate, generate pair,
//! wrap, unwrap, derive, seed, random; and the 3.2 additions: the KEM
//! (`C_EncapsulateKey`, `C_DecapsulateKey`) and authenticated wrapping
//! (`C_WrapKeyAuthenticated`, `C_UnwrapKeyAuthenticated`, AES-GCM with module IVs).

use super::message::gcm_message;
use super::params::{mechanism_for, offered};
use super::{
    CkResult, bytes, bytes_mut, entry, new_object, object, output, read, session, template, write,
};
use crate::rv::check;
use crate::state::module;
use craton_core::{Direction, Operations};
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

/// `C_SeedRandom`: the seed is mixed into every DRBG instance as additional input to a
/// reseed from fresh operating-system entropy, never used as the generator's only input.
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

/// `C_EncapsulateKey` (PKCS#11 3.2): ML-KEM to a public key. The ciphertext follows the
/// two-call convention; a length query (or a short buffer) creates no key.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncapsulateKey(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    public: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: *mut CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        if key.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the mechanism and template are valid for their stated lengths; the output
        // holds `*ciphertext_len` bytes.
        let (mech, t, mut out) = unsafe {
            (
                mechanism_for(mech, m.hsm.registry(), Operations::ENCAPSULATE)?,
                template(attrs, count)?,
                output(ciphertext, ciphertext_len)?,
            )
        };
        let (s, public) = (session(h), object(public));
        let needed = check(m.hsm.encapsulate_key_len(s, &mech, public))?;
        if !out.ready(needed)? {
            return Ok(());
        }
        let (ct, handle) = check(m.hsm.encapsulate_key(s, &mech, public, &t))?;
        out.put(&ct)?;
        // SAFETY: `key` is non-null and writable.
        unsafe { write(key, handle.0) }
    })
}

/// `C_DecapsulateKey` (PKCS#11 3.2).
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecapsulateKey(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    private: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism, template and ciphertext are valid for their stated lengths;
        // `key` is a writable handle.
        unsafe {
            let (mech, t, ct) = (
                mechanism_for(mech, m.hsm.registry(), Operations::DECAPSULATE)?,
                template(attrs, count)?,
                bytes(ciphertext, ciphertext_len)?,
            );
            new_object(key, || {
                check(
                    m.hsm
                        .decapsulate_key(session(h), &mech, object(private), ct, &t),
                )
            })
        }
    })
}

/// The mechanism of an authenticated wrap or unwrap: only AES-GCM, and only where the
/// token's policy offers it for `operation`; its parameters are read per call.
///
/// # Safety
/// `mech` is null or points to a `CK_MECHANISM`.
unsafe fn authenticated(
    m: &crate::state::Module,
    mech: *const CK_MECHANISM,
    operation: Operations,
) -> CkResult<CK_MECHANISM> {
    // SAFETY: forwarded from the caller.
    let cm = unsafe { read(mech) }?;
    if cm.mechanism != CKM_AES_GCM {
        return Err(CKR_MECHANISM_INVALID);
    }
    offered(m.hsm.registry(), cm.mechanism, operation)?;
    Ok(cm)
}

/// `C_WrapKeyAuthenticated` (PKCS#11 3.2): AES-GCM with `CK_GCM_MESSAGE_PARAMS`. The module
/// generates the IV (after the caller's fixed field) and writes it and the tag into the
/// parameters; the output is the wrapped key alone. A caller-chosen IV is refused, as for
/// message-based encryption, so no IV can repeat under a wrapping key.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WrapKeyAuthenticated(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    wrapped: *mut CK_BYTE,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism, its message parameters and the AAD are valid for their
        // stated lengths; the output holds `*wrapped_len` bytes.
        let (mut g, aad, mut out) = unsafe {
            let cm = authenticated(&m, mech, Operations::WRAP)?;
            (
                gcm_message(cm.pParameter, cm.ulParameterLen)?,
                bytes(aad, aad_len)?,
                output(wrapped, wrapped_len)?,
            )
        };
        let mech = g.mechanism(Direction::Encrypt, aad)?;
        let (s, w, k) = (session(h), object(wrapping), object(key));
        let needed = check(m.hsm.wrap_key_authenticated_len(s, &mech, w, k))?;
        if !out.ready(needed)? {
            return Ok(());
        }
        let mut r = check(m.hsm.wrap_key_authenticated(s, &mech, w, k))?;
        g.take_tag(&mut r.data)?;
        g.set_iv(r.iv.as_deref());
        out.put(&r.data)
    })
}

/// `C_UnwrapKeyAuthenticated` (PKCS#11 3.2): AES-GCM with the IV and tag the wrap wrote into
/// `CK_GCM_MESSAGE_PARAMS`. A wrong tag, IV or associated data is
/// `CKR_WRAPPED_KEY_INVALID`, and no key is made.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_UnwrapKeyAuthenticated(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism, its message parameters, the wrapped key, the template and
        // the AAD are valid for their stated lengths; `key` is a writable handle.
        unsafe {
            let cm = authenticated(&m, mech, Operations::UNWRAP)?;
            let (g, blob, t, aad) = (
                gcm_message(cm.pParameter, cm.ulParameterLen)?,
                bytes(wrapped, wrapped_len)?,
                template(attrs, count)?,
                bytes(aad, aad_len)?,
            );
            let mech = g.mechanism(Direction::Decrypt, aad)?;
            let joined = g.with_tag(blob);
            new_object(key, || {
                check(
                    m.hsm
                        .unwrap_key(session(h), &mech, object(unwrapping), &joined, &t),
                )
            })
        }
    })
}
