//! Message-based encryption, decryption, signing and verification (PKCS#11 3.0 §5.9, §5.10,
//! §5.12, §5.13): one `C_Message*Init` fixes the key and mechanism, then each message is its
//! own operation with its own parameters. The engine keeps the operations
//! ([`craton_store::MessageKind`]); this file reads and writes the C structures.
//!
//! Encryption is AES-GCM with IVs the module generates (`CKG_GENERATE` / `CKG_GENERATE_RANDOM`,
//! the caller's fixed field first); a caller-chosen IV for encryption is refused, so an IV can
//! never be reused by mistake. Signing takes every signature or MAC mechanism the token offers.
//! A message sent in parts (`*MessageBegin` / `*MessageNext`) is processed when its last part
//! arrives (AES-GCM cannot release plaintext before the tag is checked anyway), so earlier
//! parts produce no output.

use super::params::mechanism_for;
use super::{CkResult, Output, bytes, bytes_mut, entry, object, output, read, read_param, session};
use crate::rv::check;
use crate::state::{Module, module};
use craton_core::Direction;
use craton_core::Operations;
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::ops::Mechanism;
use craton_store::MessageKind;
use cryptoki_sys::*;
use std::ffi::c_void;

fn init(
    h: CK_SESSION_HANDLE,
    kind: MessageKind,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        let mechanism = match kind {
            MessageKind::Encrypt | MessageKind::Decrypt => {
                // SAFETY: the caller passes a valid CK_MECHANISM; message ciphers take their
                // parameters per message, so only the mechanism number matters here.
                if unsafe { read(mech) }?.mechanism != CKM_AES_GCM {
                    return Err(CKR_MECHANISM_INVALID);
                }
                // The key is checked against AES-GCM; each message brings its own IV.
                Mechanism::Aes(AesMode::Gcm(GcmParams {
                    iv: GcmIv::Given(vec![0; 12]),
                    aad: Vec::new(),
                    tag_bits: 128,
                }))
            }
            MessageKind::Sign | MessageKind::Verify => {
                let op = if kind == MessageKind::Sign {
                    Operations::SIGN
                } else {
                    Operations::VERIFY
                };
                // SAFETY: the mechanism and its parameters are valid for their stated lengths.
                unsafe { mechanism_for(mech, m.hsm.registry(), op) }?
            }
        };
        check(
            m.hsm
                .message_init(session(h), kind, &mechanism, object(key)),
        )
    })
}

fn finish(h: CK_SESSION_HANDLE, kind: MessageKind) -> CK_RV {
    entry(|| check(module()?.hsm.message_final(session(h), kind)))
}

/// A message's `CK_GCM_MESSAGE_PARAMS`: the IV field (read for decryption, written for
/// encryption) and the tag field (written by encryption, read by decryption).
pub(super) struct GcmMessage<'a> {
    iv: &'a mut [u8],
    fixed_bits: usize,
    generator: CK_GENERATOR_FUNCTION,
    tag: &'a mut [u8],
}

/// # Safety
/// `p` is valid for `len` bytes, and the IV and tag pointers in it for the lengths stated.
pub(super) unsafe fn gcm_message<'a>(p: *mut c_void, len: CK_ULONG) -> CkResult<GcmMessage<'a>> {
    // SAFETY: forwarded from the caller.
    let g: CK_GCM_MESSAGE_PARAMS = unsafe { read_param(p, len) }?;
    let bad = |_| CKR_MECHANISM_PARAM_INVALID;
    let tag_bits = usize::try_from(g.ulTagBits).map_err(bad)?;
    if g.pIv.is_null() || g.pTag.is_null() || tag_bits == 0 || !tag_bits.is_multiple_of(8) {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    // SAFETY: the IV and tag buffers hold `ulIvLen` and `ulTagBits / 8` bytes.
    let (iv, tag) = unsafe {
        (
            bytes_mut(g.pIv, g.ulIvLen)?,
            bytes_mut(g.pTag, (tag_bits / 8) as CK_ULONG)?,
        )
    };
    Ok(GcmMessage {
        iv,
        fixed_bits: usize::try_from(g.ulIvFixedBits).map_err(bad)?,
        generator: g.ivGenerator,
        tag,
    })
}

impl GcmMessage<'_> {
    /// This message's mechanism: for encryption an IV the engine generates after the
    /// caller's fixed field; for decryption the caller's IV.
    pub(super) fn mechanism(&self, d: Direction, aad: &[u8]) -> CkResult<Mechanism> {
        let iv = match d {
            Direction::Encrypt => {
                if !matches!(self.generator, CKG_GENERATE | CKG_GENERATE_RANDOM)
                    || !self.fixed_bits.is_multiple_of(8)
                    || self.fixed_bits / 8 > self.iv.len()
                {
                    // Counter IVs need state per key across sessions; caller IVs can repeat.
                    return Err(CKR_MECHANISM_PARAM_INVALID);
                }
                GcmIv::Generate {
                    fixed: self.iv[..self.fixed_bits / 8].to_vec(),
                    len: self.iv.len(),
                }
            }
            Direction::Decrypt => GcmIv::Given(self.iv.to_vec()),
        };
        Ok(Mechanism::Aes(AesMode::Gcm(GcmParams {
            iv,
            aad: aad.to_vec(),
            tag_bits: self.tag.len() * 8,
        })))
    }

    /// `data` with this message's tag after it, as AES-GCM decryption takes it.
    pub(super) fn with_tag(&self, data: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
        let mut joined = zeroize::Zeroizing::new(Vec::with_capacity(data.len() + self.tag.len()));
        joined.extend_from_slice(data);
        joined.extend_from_slice(self.tag);
        joined
    }

    /// Moves the tag at the end of AES-GCM output into the caller's tag field, leaving the
    /// ciphertext.
    pub(super) fn take_tag(&mut self, output: &mut Vec<u8>) -> CkResult<()> {
        let body = output
            .len()
            .checked_sub(self.tag.len())
            .ok_or(CKR_FUNCTION_FAILED)?;
        self.tag.copy_from_slice(&output[body..]);
        output.truncate(body);
        Ok(())
    }

    /// Writes a generated IV back to the caller.
    pub(super) fn set_iv(&mut self, iv: Option<&[u8]>) {
        if let Some(iv) = iv
            && iv.len() == self.iv.len()
        {
            self.iv.copy_from_slice(iv);
        }
    }
}

fn direction(kind: MessageKind) -> Direction {
    if kind == MessageKind::Encrypt {
        Direction::Encrypt
    } else {
        Direction::Decrypt
    }
}

/// Encrypts or decrypts one message (`whole`: its mechanism), or the message in parts
/// completed by `input` (`whole` is `None`); the tag travels in the parameters.
fn run_cipher(
    m: &Module,
    h: CK_SESSION_HANDLE,
    d: Direction,
    g: &mut GcmMessage<'_>,
    whole: Option<&Mechanism>,
    input: &[u8],
    out: &mut Output<'_>,
) -> CkResult<()> {
    let input = match d {
        Direction::Encrypt => zeroize::Zeroizing::new(input.to_vec()),
        Direction::Decrypt => g.with_tag(input),
    };
    let mut result = check(m.hsm.cipher_message(session(h), d, whole, &input))?;
    if d == Direction::Encrypt {
        g.take_tag(&mut result.data)?;
        g.set_iv(result.iv.as_deref());
    }
    out.put(&result.data)
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
        let (mut g, aad, input, mut out) = unsafe {
            (
                gcm_message(param, param_len)?,
                bytes(aad, aad_len)?,
                bytes(input, input_len)?,
                output(out, out_len)?,
            )
        };
        let kind = MessageKind::of_direction(d);
        if check(m.hsm.message_pending_len(session(h), kind))?.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        // GCM output is exactly as long as its input (the tag goes to the parameters).
        if !out.ready(input.len())? {
            return Ok(());
        }
        let mech = g.mechanism(d, aad)?;
        run_cipher(&m, h, d, &mut g, Some(&mech), input, &mut out)
    })
}

fn begin(
    h: CK_SESSION_HANDLE,
    kind: MessageKind,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        match kind {
            MessageKind::Encrypt | MessageKind::Decrypt => {
                // SAFETY: every pointer is valid for the length stated beside it.
                let (mut g, aad) =
                    unsafe { (gcm_message(param, param_len)?, bytes(aad, aad_len)?) };
                let mech = g.mechanism(direction(kind), aad)?;
                let iv = check(m.hsm.message_begin(session(h), kind, Some(mech)))?;
                g.set_iv(iv.as_deref());
                Ok(())
            }
            MessageKind::Sign | MessageKind::Verify => {
                no_message_params(param, param_len)?;
                check(m.hsm.message_begin(session(h), kind, None)).map(|_| ())
            }
        }
    })
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
        if flags & !CKF_END_OF_MESSAGE != 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: every pointer is valid for the length stated beside it.
        let (mut g, input, mut out) = unsafe {
            (
                gcm_message(param, param_len)?,
                bytes(input, input_len)?,
                output(out, out_len)?,
            )
        };
        let kind = MessageKind::of_direction(d);
        let collected = check(m.hsm.message_pending_len(session(h), kind))?
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if flags & CKF_END_OF_MESSAGE == 0 {
            if out.ready(0)? {
                check(m.hsm.message_part(session(h), kind, input))?;
                out.put(&[])?;
            }
            return Ok(());
        }
        if !out.ready(collected + input.len())? {
            return Ok(());
        }
        run_cipher(&m, h, d, &mut g, None, input, &mut out)
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
    init(h, MessageKind::Encrypt, mech, key)
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
    begin(h, MessageKind::Encrypt, param, param_len, aad, aad_len)
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
    finish(h, MessageKind::Encrypt)
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
    init(h, MessageKind::Decrypt, mech, key)
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
    begin(h, MessageKind::Decrypt, param, param_len, aad, aad_len)
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
    finish(h, MessageKind::Decrypt)
}

/// Refuses per-message parameters for signature mechanisms: theirs are fixed at init.
fn no_message_params(param: *mut c_void, param_len: CK_ULONG) -> CkResult<()> {
    if param.is_null() && param_len == 0 {
        Ok(())
    } else {
        Err(CKR_MECHANISM_PARAM_INVALID)
    }
}

/// Signs a whole message, or the message in parts completed by `data`.
fn sign_into(
    m: &Module,
    h: CK_SESSION_HANDLE,
    data: &[u8],
    last_part: bool,
    out: &mut Output<'_>,
) -> CkResult<()> {
    let needed = check(m.hsm.message_signature_len(session(h)))?;
    out.fill(needed, || {
        check(m.hsm.sign_message(session(h), data, last_part))
    })
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
    init(h, MessageKind::Sign, mech, key)
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
        if check(m.hsm.message_pending_len(session(h), MessageKind::Sign))?.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        sign_into(&m, h, data, false, &mut out)
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
    begin(
        h,
        MessageKind::Sign,
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
            return check(m.hsm.message_part(session(h), MessageKind::Sign, data));
        }
        // SAFETY: the signature buffer holds `*sig_len` bytes.
        let mut out = unsafe { output(sig, sig_len) }?;
        sign_into(&m, h, data, true, &mut out)
    })
}

/// `C_MessageSignFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageSignFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    finish(h, MessageKind::Sign)
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
    init(h, MessageKind::Verify, mech, key)
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
        check(m.hsm.verify_message(session(h), data, false, sig))
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
    begin(
        h,
        MessageKind::Verify,
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
            return check(m.hsm.message_part(session(h), MessageKind::Verify, data));
        }
        // SAFETY: the signature is `sig_len` bytes.
        let sig = unsafe { bytes(sig, sig_len) }?;
        check(m.hsm.verify_message(session(h), data, true, sig))
    })
}

/// `C_MessageVerifyFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_MessageVerifyFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    finish(h, MessageKind::Verify)
}
