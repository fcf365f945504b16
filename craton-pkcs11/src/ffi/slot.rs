//! Slot and token management (PKCS#11 3.0 §5.5): slots, tokens, mechanisms, token and PIN
//! initialisation, and slot events.

use super::general::{MANUFACTURER, library_version};
use super::{CkResult, bytes, entry, output_array, padded, session, write};
use crate::rv::check;
use crate::state::{self, module};
use craton_core::mechanism::MechanismType;
use cryptoki_sys::*;

fn slot_index(hsm: &dyn craton_store::Engine, id: CK_SLOT_ID) -> CkResult<u64> {
    check(hsm.slot_ids())?
        .into_iter()
        .find(|s| *s == id)
        .ok_or(CKR_SLOT_ID_INVALID)
}

/// `C_GetSlotList`: every slot holds a token, so `tokenPresent` changes nothing.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotList(
    _token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        let slots: Vec<CK_SLOT_ID> = check(m.hsm.slot_ids())?;
        // SAFETY: the caller's list holds `*count` slot ids.
        unsafe { output_array(list, count, &slots) }
    })
}

/// `C_GetSlotInfo`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotInfo(id: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    entry(|| {
        let m = module()?;
        slot_index(m.hsm.as_ref(), id)?;
        let out = CK_SLOT_INFO {
            slotDescription: padded(&format!("Craton HSM slot {id}")),
            manufacturerID: padded(MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: library_version(),
            firmwareVersion: library_version(),
        };
        // SAFETY: the caller passes a writable CK_SLOT_INFO.
        unsafe { write(info, out) }
    })
}

/// `C_GetTokenInfo`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetTokenInfo(id: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    entry(|| {
        let m = module()?;
        let t = check(m.hsm.token_info(slot_index(m.hsm.as_ref(), id)?))?;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_RESTORE_KEY_NOT_NEEDED;
        let on = |cond: bool, f: CK_FLAGS| if cond { f } else { 0 };
        flags |= on(t.initialized, CKF_TOKEN_INITIALIZED);
        flags |= on(t.user_pin_initialized, CKF_USER_PIN_INITIALIZED);
        flags |= on(t.user_pin.count_low, CKF_USER_PIN_COUNT_LOW);
        flags |= on(t.user_pin.final_try, CKF_USER_PIN_FINAL_TRY);
        flags |= on(t.user_pin.locked, CKF_USER_PIN_LOCKED);
        flags |= on(t.so_pin.count_low, CKF_SO_PIN_COUNT_LOW);
        flags |= on(t.so_pin.final_try, CKF_SO_PIN_FINAL_TRY);
        flags |= on(t.so_pin.locked, CKF_SO_PIN_LOCKED);
        let out = CK_TOKEN_INFO {
            label: t.label,
            manufacturerID: padded(MANUFACTURER),
            model: padded("software HSM"),
            serialNumber: t.serial,
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: t.sessions as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: t.rw_sessions as CK_ULONG,
            ulMaxPinLen: t.max_pin_len as CK_ULONG,
            ulMinPinLen: t.min_pin_len as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: library_version(),
            firmwareVersion: library_version(),
            utcTime: [b' '; 16],
        };
        // SAFETY: the caller passes a writable CK_TOKEN_INFO.
        unsafe { write(info, out) }
    })
}

/// `C_GetMechanismList`: exactly the mechanisms the token's policy offers and this module can
/// run.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismList(
    id: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        slot_index(m.hsm.as_ref(), id)?;
        let mechs: Vec<CK_MECHANISM_TYPE> =
            m.hsm.registry().rows().map(|r| r.mechanism.0).collect();
        // SAFETY: the caller's list holds `*count` mechanism types.
        unsafe { output_array(list, count, &mechs) }
    })
}

/// `C_GetMechanismInfo`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismInfo(
    id: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        slot_index(m.hsm.as_ref(), id)?;
        let row = m
            .hsm
            .registry()
            .get(MechanismType(mechanism))
            .ok_or(CKR_MECHANISM_INVALID)?;
        let out = CK_MECHANISM_INFO {
            ulMinKeySize: row.min_key_size as CK_ULONG,
            ulMaxKeySize: row.max_key_size as CK_ULONG,
            flags: craton_store::ck::mechanism_flags(row),
        };
        // SAFETY: the caller passes a writable CK_MECHANISM_INFO.
        unsafe { write(info, out) }
    })
}

/// A PIN argument. A null PIN asks for a protected authentication path, which a software
/// token does not have.
///
/// # Safety
/// `p` is null or valid for `len` bytes.
pub(crate) unsafe fn pin<'a>(p: *const u8, len: CK_ULONG) -> CkResult<&'a [u8]> {
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: forwarded from the caller.
    unsafe { bytes(p, len) }
}

/// `C_InitToken`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitToken(
    id: CK_SLOT_ID,
    so_pin: *mut CK_UTF8CHAR,
    so_pin_len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        let slot = slot_index(m.hsm.as_ref(), id)?;
        // SAFETY: the PIN is `so_pin_len` bytes; the label is the specification's 32 bytes.
        let (so_pin, label) = unsafe { (pin(so_pin, so_pin_len)?, bytes(label, 32)?) };
        if label.is_empty() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let label = std::str::from_utf8(label).map_err(|_| CKR_ARGUMENTS_BAD)?;
        check(m.hsm.init_token(slot, so_pin, label.trim_end_matches(' ')))
    })
}

/// `C_InitPIN`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitPIN(
    h: CK_SESSION_HANDLE,
    p: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the PIN is `len` bytes.
        let p = unsafe { pin(p, len) }?;
        check(m.hsm.init_pin(session(h), p))
    })
}

/// `C_SetPIN`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetPIN(
    h: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: each PIN is its stated number of bytes.
        let (old, new) = unsafe { (pin(old, old_len)?, pin(new, new_len)?) };
        check(m.hsm.set_pin(session(h), old, new))
    })
}

/// `C_WaitForSlotEvent`: this module's slots never change (no removable tokens), so a
/// non-blocking call finds no event and a blocking one waits until `C_Finalize`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    slot: *mut CK_SLOT_ID,
    reserved: *mut std::ffi::c_void,
) -> CK_RV {
    entry(|| {
        module()?;
        if slot.is_null() || !reserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if flags & CKF_DONT_BLOCK != 0 {
            return Err(CKR_NO_EVENT);
        }
        state::wait_for_finalize();
        Err(CKR_CRYPTOKI_NOT_INITIALIZED)
    })
}
