//! Message-based encryption, decryption, signing and verification (PKCS#11 3.0 §5.9, §5.10,
//! §5.12, §5.13): one `C_Message*Init` fixes the key and mechanism, then each message is its
//! own operation with its own parameters.
//!
//! Encryption is AES-GCM with IVs the module generates (`CKG_GENERATE` / `CKG_GENERATE_RANDOM`,
//! the caller's fixed field first); a caller-chosen IV for encryption is refused, so an IV can
//! never be reused by mistake. Signing takes every signature or MAC mechanism the token offers.
//! A message sent in parts (`*MessageBegin` / `*MessageNext`) is collected and processed when
//! its last part arrives (AES-GCM cannot release plaintext before the tag is checked anyway).

use super::params::mechanism;
use super::{CkResult, bytes, bytes_mut, entry, object, output, read, read_param, session};
use crate::rv::check;
use crate::state::{Module, module};
use craton_core::Direction;
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::ops::{MAX_SINGLE_PART, Mechanism};
use craton_store::OperationKind;
use cryptoki_sys::*;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// A message-based operation set up by `C_Message*Init`.
struct MessageOp {
    mechanism: Mechanism,
    key: CK_OBJECT_HANDLE,
    /// The message being sent in parts, if any.
    pending: Option<Pending>,
}

struct Pending {
    /// The per-message mechanism (with this message's IV, AAD and tag length).
    mechanism: Mechanism,
    data: Zeroizing<Vec<u8>>,
}

/// Message-based operations of every session, keyed by session and kind.
#[derive(Default)]
pub(crate) struct Messages(Mutex<HashMap<(CK_SESSION_HANDLE, u8), MessageOp>>);

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Messages")
    }
}

fn code(kind: OperationKind) -> u8 {
    match kind {
        OperationKind::Encrypt => 0,
        OperationKind::Decrypt => 1,
        OperationKind::Sign => 2,
        _ => 3,
    }
}

impl Messages {
    fn with<T>(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        f: impl FnOnce(&mut MessageOp) -> CkResult<T>,
    ) -> CkResult<T> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let op = map
            .get_mut(&(h, code(kind)))
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        f(op)
    }

    /// Forgets every operation of a closed session.
    pub(crate) fn forget_session(&self, h: CK_SESSION_HANDLE) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(s, _), _| *s != h);
    }

    /// Forgets the operations of sessions that no longer exist.
    pub(crate) fn forget_closed(&self, hsm: &craton_store::Hsm) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(s, _), _| hsm.session_info(session(*s)).is_ok());
    }
}

/// `C_SessionCancel`'s message-based part.
pub(crate) fn cancel(m: &Module, h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CkResult<()> {
    let mut map = m.messages.0.lock().unwrap_or_else(|e| e.into_inner());
    for (flag, kind) in [
        (CKF_MESSAGE_ENCRYPT, OperationKind::Encrypt),
        (CKF_MESSAGE_DECRYPT, OperationKind::Decrypt),
        (CKF_MESSAGE_SIGN, OperationKind::Sign),
        (CKF_MESSAGE_VERIFY, OperationKind::Verify),
    ] {
        if flags & flag != 0 {
            map.remove(&(h, code(kind)));
        }
    }
    Ok(())
}

fn init(
    h: CK_SESSION_HANDLE,
    kind: OperationKind,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the mechanism is valid; message operations take their parameters per
        // message, so only the mechanism number and key matter here.
        let raw = unsafe { read(mech) }?;
        let mechanism = match kind {
            OperationKind::Encrypt | OperationKind::Decrypt => {
                if raw.mechanism != CKM_AES_GCM {
                    return Err(CKR_MECHANISM_INVALID);
                }
                gcm_template()
            }
            // SAFETY: as above, with the mechanism's own parameters.
            _ => unsafe { mechanism(mech) }?,
        };
        check(
            m.hsm
                .message_init(session(h), kind, &mechanism, object(key)),
        )?;
        let mut map = m.messages.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&(h, code(kind))) {
            return Err(CKR_OPERATION_ACTIVE);
        }
        map.insert(
            (h, code(kind)),
            MessageOp {
                mechanism,
                key,
                pending: None,
            },
        );
        Ok(())
    })
}

fn finish(h: CK_SESSION_HANDLE, kind: OperationKind) -> CK_RV {
    entry(|| {
        let m = module()?;
        check(m.hsm.session_info(session(h)))?;
        let mut map = m.messages.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(h, code(kind)))
            .map(|_| ())
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)
    })
}

/// The mechanism the key is checked against at init (the IV comes per message).
fn gcm_template() -> Mechanism {
    Mechanism::Aes(AesMode::Gcm(GcmParams {
        iv: GcmIv::Given(vec![0; 12]),
        aad: Vec::new(),
        tag_bits: 128,
    }))
}

/// A message's `CK_GCM_MESSAGE_PARAMS`, read.
struct GcmMessage {
    iv: *mut u8,
    iv_len: usize,
    fixed_bits: usize,
    generator: CK_GENERATOR_FUNCTION,
    tag: *mut u8,
    tag_bits: usize,
}

/// # Safety
/// `p` is valid for `len` bytes.
unsafe fn gcm_message(p: *mut c_void, len: CK_ULONG) -> CkResult<GcmMessage> {
    // SAFETY: forwarded from the caller.
    let g: CK_GCM_MESSAGE_PARAMS = unsafe { read_param(p, len) }?;
    let bad = |_| CKR_MECHANISM_PARAM_INVALID;
    let out = GcmMessage {
        iv: g.pIv,
        iv_len: usize::try_from(g.ulIvLen).map_err(bad)?,
        fixed_bits: usize::try_from(g.ulIvFixedBits).map_err(bad)?,
        generator: g.ivGenerator,
        tag: g.pTag,
        tag_bits: usize::try_from(g.ulTagBits).map_err(bad)?,
    };
    if out.iv.is_null() || out.tag.is_null() || !out.tag_bits.is_multiple_of(8) || out.tag_bits == 0
    {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    Ok(out)
}

/// The per-message mechanism: for encryption a fresh IV (the caller's fixed leading bits,
/// then DRBG output) written back to the caller's `pIv`; for decryption the caller's IV.
///
/// # Safety
/// The pointers in `g` are valid for the lengths it states.
unsafe fn message_mechanism(
    m: &Module,
    h: CK_SESSION_HANDLE,
    d: Direction,
    g: &GcmMessage,
    aad: &[u8],
) -> CkResult<Mechanism> {
    // SAFETY: `iv` holds `iv_len` bytes by the caller's contract.
    let iv = unsafe { bytes_mut(g.iv, g.iv_len as CK_ULONG) }?;
    let iv = match d {
        Direction::Encrypt => {
            if !matches!(g.generator, CKG_GENERATE | CKG_GENERATE_RANDOM) {
                // Counter IVs need state per key across sessions; caller IVs can repeat.
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            if !g.fixed_bits.is_multiple_of(8) || g.fixed_bits / 8 + 12 > iv.len() {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let fixed = g.fixed_bits / 8;
            check(m.hsm.generate_random(session(h), &mut iv[fixed..]))?;
            iv.to_vec()
        }
        Direction::Decrypt => iv.to_vec(),
    };
    Ok(Mechanism::Aes(AesMode::Gcm(GcmParams {
        iv: GcmIv::Given(iv),
        aad: aad.to_vec(),
        tag_bits: g.tag_bits,
    })))
}

/// Encrypts or decrypts one whole message; the tag travels in the parameters.
///
/// # Safety
/// The pointers in `g` are valid for the lengths it states.
unsafe fn run_cipher(
    m: &Module,
    h: CK_SESSION_HANDLE,
    d: Direction,
    key: CK_OBJECT_HANDLE,
    mechanism: &Mechanism,
    g: &GcmMessage,
    input: &[u8],
) -> CkResult<Zeroizing<Vec<u8>>> {
    let tag_len = g.tag_bits / 8;
    // SAFETY: `tag` holds `tag_bits / 8` bytes by the caller's contract.
    let tag = unsafe { bytes_mut(g.tag, tag_len as CK_ULONG) }?;
    match d {
        Direction::Encrypt => {
            let mut out =
                check(
                    m.hsm
                        .cipher_message(session(h), d, mechanism, object(key), input),
                )?;
            let body = out.len().checked_sub(tag_len).ok_or(CKR_FUNCTION_FAILED)?;
            tag.copy_from_slice(&out[body..]);
            out.truncate(body);
            Ok(out)
        }
        Direction::Decrypt => {
            let mut joined = Zeroizing::new(Vec::with_capacity(input.len() + tag_len));
            joined.extend_from_slice(input);
            joined.extend_from_slice(tag);
            let out = check(
                m.hsm
                    .cipher_message(session(h), d, mechanism, object(key), &joined),
            )?;
            Ok(out)
        }
    }
}

fn kind_of(d: Direction) -> OperationKind {
    match d {
        Direction::Encrypt => OperationKind::Encrypt,
        Direction::Decrypt => OperationKind::Decrypt,
    }
}

#[allow(clippy::too_many_arguments)]
fn cipher_message(
    h: CK_SESSION_HANDLE,
    d: Direction,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    input: *mut CK_BYTE,
    input_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: every pointer is valid for the length stated beside it.
        let (g, aad, input, mut out) = unsafe {
            (
                gcm_message(param, param_len)?,
                bytes(aad, aad_len)?,
                bytes(input, input_len)?,
                output(out, out_len)?,
            )
        };
        // GCM output is exactly as long as its input (the tag goes to the parameters).
        if !out.ready(input.len())? {
            return Ok(());
        }
        let key = m.messages.with(h, kind_of(d), |op| {
            if op.pending.is_some() {
                return Err(CKR_OPERATION_ACTIVE);
            }
            Ok(op.key)
        })?;
        // SAFETY: the pointers in `g` are valid for their lengths.
        let result = unsafe {
            let mech = message_mechanism(&m, h, d, &g, aad)?;
            run_cipher(&m, h, d, key, &mech, &g, input)?
        };
        out.put(&result)
    })
}

fn begin(
    h: CK_SESSION_HANDLE,
    kind: OperationKind,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        let mechanism = match kind {
            OperationKind::Encrypt | OperationKind::Decrypt => {
                let d = if kind == OperationKind::Encrypt {
                    Direction::Encrypt
                } else {
                    Direction::Decrypt
                };
                // SAFETY: every pointer is valid for the length stated beside it.
                unsafe {
                    let g = gcm_message(param, param_len)?;
                    let aad = bytes(aad, aad_len)?;
                    Some(message_mechanism(&m, h, d, &g, aad)?)
                }
            }
            _ => None,
        };
        m.messages.with(h, kind, |op| {
            if op.pending.is_some() {
                return Err(CKR_OPERATION_ACTIVE);
            }
            op.pending = Some(Pending {
                mechanism: mechanism.unwrap_or_else(|| op.mechanism.clone()),
                data: Zeroizing::new(Vec::new()),
            });
            Ok(())
        })
    })
}

/// Appends a part to the pending message, refusing messages larger than one call could take.
fn collect(op: &mut MessageOp, part: &[u8]) -> CkResult<()> {
    let p = op.pending.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
    if p.data.len() + part.len() > MAX_SINGLE_PART {
        op.pending = None;
        return Err(CKR_DATA_LEN_RANGE);
    }
    p.data.extend_from_slice(part);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cipher_next(
    h: CK_SESSION_HANDLE,
    d: Direction,
    param: *mut c_void,
    param_len: CK_ULONG,
    input: *mut CK_BYTE,
    input_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: every pointer is valid for the length stated beside it.
        let (g, input, mut out) = unsafe {
            (
                gcm_message(param, param_len)?,
                bytes(input, input_len)?,
                output(out, out_len)?,
            )
        };
        let last = flags & CKF_END_OF_MESSAGE != 0;
        if flags & !CKF_END_OF_MESSAGE != 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // Output is released with the last part; earlier parts produce none.
        let collected = m.messages.with(h, kind_of(d), |op| {
            let have = op.pending.as_ref().map_or(0, |p| p.data.len());
            Ok(have)
        })?;
        if !out.ready(if last { collected + input.len() } else { 0 })? {
            return Ok(());
        }
        let (key, pending) = m.messages.with(h, kind_of(d), |op| {
            collect(op, input)?;
            Ok((op.key, if last { op.pending.take() } else { None }))
        })?;
        let Some(p) = pending else {
            return out.put(&[]);
        };
        // SAFETY: the pointers in `g` are valid for their lengths.
        let result = unsafe { run_cipher(&m, h, d, key, &p.mechanism, &g, &p.data) }?;
        out.put(&result)
    })
}

/// `C_MessageEncryptInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageEncryptInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, OperationKind::Encrypt, mech, key)
}

/// `C_EncryptMessage`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessage(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    plain: *mut CK_BYTE,
    plain_len: CK_ULONG,
    cipher: *mut CK_BYTE,
    cipher_len: *mut CK_ULONG,
) -> CK_RV {
    cipher_message(
        h,
        Direction::Encrypt,
        param,
        param_len,
        aad,
        aad_len,
        plain,
        plain_len,
        cipher,
        cipher_len,
    )
}

/// `C_EncryptMessageBegin`: the IV is generated now and written to the parameters.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessageBegin(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
) -> CK_RV {
    begin(h, OperationKind::Encrypt, param, param_len, aad, aad_len)
}

/// `C_EncryptMessageNext`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessageNext(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    cipher_next(
        h,
        Direction::Encrypt,
        param,
        param_len,
        part,
        part_len,
        out,
        out_len,
        flags,
    )
}

/// `C_MessageEncryptFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageEncryptFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    finish(h, OperationKind::Encrypt)
}

/// `C_MessageDecryptInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageDecryptInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, OperationKind::Decrypt, mech, key)
}

/// `C_DecryptMessage`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessage(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    cipher: *mut CK_BYTE,
    cipher_len: CK_ULONG,
    plain: *mut CK_BYTE,
    plain_len: *mut CK_ULONG,
) -> CK_RV {
    cipher_message(
        h,
        Direction::Decrypt,
        param,
        param_len,
        aad,
        aad_len,
        cipher,
        cipher_len,
        plain,
        plain_len,
    )
}

/// `C_DecryptMessageBegin`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessageBegin(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
) -> CK_RV {
    begin(h, OperationKind::Decrypt, param, param_len, aad, aad_len)
}

/// `C_DecryptMessageNext`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessageNext(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    cipher_next(
        h,
        Direction::Decrypt,
        param,
        param_len,
        part,
        part_len,
        out,
        out_len,
        flags,
    )
}

/// `C_MessageDecryptFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageDecryptFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    finish(h, OperationKind::Decrypt)
}

/// Refuses per-message parameters for signature mechanisms: theirs are fixed at init.
fn no_message_params(param: *mut c_void, param_len: CK_ULONG) -> CkResult<()> {
    if param.is_null() && param_len == 0 {
        Ok(())
    } else {
        Err(CKR_MECHANISM_PARAM_INVALID)
    }
}

/// `C_MessageSignInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageSignInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, OperationKind::Sign, mech, key)
}

fn sign_out(
    m: &Module,
    h: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    out: &mut super::Output<'_>,
) -> CkResult<()> {
    let needed = check(
        m.hsm
            .message_signature_len(session(h), mechanism, object(key)),
    )?;
    if !out.ready(needed)? {
        return Ok(());
    }
    out.put(&check(m.hsm.sign_message(
        session(h),
        mechanism,
        object(key),
        data,
    ))?)
}

/// `C_SignMessage`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessage(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        no_message_params(param, param_len)?;
        // SAFETY: the data is `data_len` bytes; the signature buffer `*sig_len` bytes.
        let (data, mut out) = unsafe { (bytes(data, data_len)?, output(sig, sig_len)?) };
        let (mech, key) = m.messages.with(h, OperationKind::Sign, |op| {
            if op.pending.is_some() {
                return Err(CKR_OPERATION_ACTIVE);
            }
            Ok((op.mechanism.clone(), op.key))
        })?;
        sign_out(&m, h, &mech, key, data, &mut out)
    })
}

/// `C_SignMessageBegin`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessageBegin(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
) -> CK_RV {
    if let Err(rv) = no_message_params(param, param_len) {
        return rv;
    }
    begin(
        h,
        OperationKind::Sign,
        param,
        param_len,
        std::ptr::null_mut(),
        0,
    )
}

/// `C_SignMessageNext`: a null `pulSignatureLen` adds a part; otherwise this is the last part
/// and the signature comes back (with the two-call convention).
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessageNext(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        no_message_params(param, param_len)?;
        // SAFETY: the data is `data_len` bytes.
        let data = unsafe { bytes(data, data_len) }?;
        if sig_len.is_null() {
            return m
                .messages
                .with(h, OperationKind::Sign, |op| collect(op, data));
        }
        // SAFETY: the signature buffer holds `*sig_len` bytes.
        let mut out = unsafe { output(sig, sig_len) }?;
        let (mech, key) = m.messages.with(h, OperationKind::Sign, |op| {
            if op.pending.is_none() {
                return Err(CKR_OPERATION_NOT_INITIALIZED);
            }
            Ok((op.mechanism.clone(), op.key))
        })?;
        let needed = check(m.hsm.message_signature_len(session(h), &mech, object(key)))?;
        if !out.ready(needed)? {
            return Ok(());
        }
        let p = m.messages.with(h, OperationKind::Sign, |op| {
            collect(op, data)?;
            op.pending.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)
        })?;
        sign_out(&m, h, &mech, key, &p.data, &mut out)
    })
}

/// `C_MessageSignFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageSignFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    finish(h, OperationKind::Sign)
}

/// `C_MessageVerifyInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageVerifyInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    init(h, OperationKind::Verify, mech, key)
}

/// `C_VerifyMessage`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessage(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        no_message_params(param, param_len)?;
        // SAFETY: the data and signature are their stated lengths.
        let (data, sig) = unsafe { (bytes(data, data_len)?, bytes(sig, sig_len)?) };
        let (mech, key) = m.messages.with(h, OperationKind::Verify, |op| {
            if op.pending.is_some() {
                return Err(CKR_OPERATION_ACTIVE);
            }
            Ok((op.mechanism.clone(), op.key))
        })?;
        check(
            m.hsm
                .verify_message(session(h), &mech, object(key), data, sig),
        )
    })
}

/// `C_VerifyMessageBegin`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessageBegin(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
) -> CK_RV {
    if let Err(rv) = no_message_params(param, param_len) {
        return rv;
    }
    begin(
        h,
        OperationKind::Verify,
        param,
        param_len,
        std::ptr::null_mut(),
        0,
    )
}

/// `C_VerifyMessageNext`: a null signature adds a part; a signature ends the message.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessageNext(
    h: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        no_message_params(param, param_len)?;
        // SAFETY: the data is `data_len` bytes.
        let data = unsafe { bytes(data, data_len) }?;
        if sig.is_null() {
            return m
                .messages
                .with(h, OperationKind::Verify, |op| collect(op, data));
        }
        // SAFETY: the signature is `sig_len` bytes.
        let sig = unsafe { bytes(sig, sig_len) }?;
        let (mech, key, p) = m.messages.with(h, OperationKind::Verify, |op| {
            collect(op, data)?;
            let p = op.pending.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
            Ok((op.mechanism.clone(), op.key, p))
        })?;
        check(
            m.hsm
                .verify_message(session(h), &mech, object(key), &p.data, sig),
        )
    })
}

/// `C_MessageVerifyFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageVerifyFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    finish(h, OperationKind::Verify)
}
