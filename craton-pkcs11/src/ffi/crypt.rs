//! Encryption and decryption (PKCS#11 3.0 §5.9, §5.10) and the dual-function calls of §5.14.
//!
//! A call that fails ends its operation, except a length query and `CKR_BUFFER_TOO_SMALL`
//! (the two-call convention) and a key still awaiting its context-specific login.

use super::params::mechanism_for;
use super::{CkResult, bytes, entry, object, on_operation, output, session};
use crate::rv::check;
use crate::state::{Module, module};
use craton_core::Direction;
use craton_core::Operations;
use craton_store::OperationKind;
use cryptoki_sys::*;

fn kind(d: Direction) -> OperationKind {
    match d {
        Direction::Encrypt => OperationKind::Encrypt,
        Direction::Decrypt => OperationKind::Decrypt,
    }
}

fn init(
    h: CK_SESSION_HANDLE,
    d: Direction,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CkResult<()> {
    let m = module()?;
    if mech.is_null() {
        return super::terminate(&m, h, kind(d));
    }
    let op = match d {
        Direction::Encrypt => Operations::ENCRYPT,
        Direction::Decrypt => Operations::DECRYPT,
    };
    // SAFETY: the mechanism and its parameters are valid for their stated lengths.
    let mech = unsafe { mechanism_for(mech, m.hsm.registry(), op) }?;
    check(m.hsm.cipher_init(session(h), d, &mech, object(key)))
}

fn one_shot(
    h: CK_SESSION_HANDLE,
    d: Direction,
    input: *const u8,
    input_len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[kind(d)], |m| {
        // SAFETY: the input is `input_len` bytes; the output holds `*out_len` bytes.
        let (input, mut out) = unsafe { (bytes(input, input_len)?, output(out, out_len)?) };
        // Into the caller's buffer in one visit to the session: ciphertext is written there
        // directly, plaintext once the whole of it has been checked.
        out.write_with(
            || check(m.hsm.cipher_len(session(h), d, input.len())),
            |buf| m.hsm.cipher_into(session(h), d, input, buf),
        )
    })
}

fn update(
    h: CK_SESSION_HANDLE,
    d: Direction,
    input: *const u8,
    input_len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[kind(d)], |m| {
        // SAFETY: the input is `input_len` bytes; the output holds `*out_len` bytes.
        let (input, mut out) = unsafe { (bytes(input, input_len)?, output(out, out_len)?) };
        let needed = check(m.hsm.cipher_update_len(session(h), d, input.len()))?;
        out.fill(needed, || check(m.hsm.cipher_update(session(h), d, input)))
    })
}

fn finish(h: CK_SESSION_HANDLE, d: Direction, out: *mut u8, out_len: *mut CK_ULONG) -> CK_RV {
    on_operation(h, &[kind(d)], |m| {
        // SAFETY: the output holds `*out_len` bytes.
        let mut out = unsafe { output(out, out_len) }?;
        let needed = check(m.hsm.cipher_final_len(session(h), d))?;
        out.fill(needed, || check(m.hsm.cipher_final(session(h), d)))
    })
}

/// `C_EncryptInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| init(h, Direction::Encrypt, mech, key))
}

/// `C_Encrypt`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Encrypt(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    one_shot(h, Direction::Encrypt, data, data_len, out, out_len)
}

/// `C_EncryptUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    update(h, Direction::Encrypt, part, part_len, out, out_len)
}

/// `C_EncryptFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptFinal(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    finish(h, Direction::Encrypt, out, out_len)
}

/// `C_DecryptInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| init(h, Direction::Decrypt, mech, key))
}

/// `C_Decrypt`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Decrypt(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    one_shot(h, Direction::Decrypt, data, data_len, out, out_len)
}

/// `C_DecryptUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    update(h, Direction::Decrypt, part, part_len, out, out_len)
}

/// `C_DecryptFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptFinal(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    finish(h, Direction::Decrypt, out, out_len)
}

/// The other half of a dual-function call.
#[derive(Clone, Copy)]
enum Companion {
    Digest,
    Sign,
    Verify,
}

impl Companion {
    fn kind(self) -> OperationKind {
        match self {
            Companion::Digest => OperationKind::Digest,
            Companion::Sign => OperationKind::Sign,
            Companion::Verify => OperationKind::Verify,
        }
    }

    fn feed(self, m: &Module, h: CK_SESSION_HANDLE, data: &[u8]) -> CkResult<()> {
        let s = session(h);
        check(match self {
            Companion::Digest => m.hsm.digest_update(s, data),
            Companion::Sign => m.hsm.sign_update(s, data),
            Companion::Verify => m.hsm.verify_update(s, data),
        })
    }
}

/// A dual-function update (§5.14): the plaintext goes to both the cipher and the companion
/// operation. Both must be active; the output buffer is checked before either runs, and a
/// failure ends both.
fn dual(
    h: CK_SESSION_HANDLE,
    d: Direction,
    companion: Companion,
    input: *const u8,
    input_len: CK_ULONG,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    on_operation(h, &[kind(d), companion.kind()], |m| {
        // SAFETY: the input is `input_len` bytes; the output holds `*out_len` bytes.
        let (input, mut out) = unsafe { (bytes(input, input_len)?, output(out, out_len)?) };
        let needed = check(m.hsm.cipher_update_len(session(h), d, input.len()))?;
        out.fill(needed, || match d {
            Direction::Encrypt => {
                companion.feed(m, h, input)?;
                check(m.hsm.cipher_update(session(h), d, input))
            }
            Direction::Decrypt => {
                let plain = check(m.hsm.cipher_update(session(h), d, input))?;
                companion.feed(m, h, &plain)?;
                Ok(plain)
            }
        })
    })
}

/// `C_DigestEncryptUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestEncryptUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    dual(
        h,
        Direction::Encrypt,
        Companion::Digest,
        part,
        part_len,
        out,
        out_len,
    )
}

/// `C_DecryptDigestUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptDigestUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    dual(
        h,
        Direction::Decrypt,
        Companion::Digest,
        part,
        part_len,
        out,
        out_len,
    )
}

/// `C_SignEncryptUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignEncryptUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    dual(
        h,
        Direction::Encrypt,
        Companion::Sign,
        part,
        part_len,
        out,
        out_len,
    )
}

/// `C_DecryptVerifyUpdate`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptVerifyUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    dual(
        h,
        Direction::Decrypt,
        Companion::Verify,
        part,
        part_len,
        out,
        out_len,
    )
}
