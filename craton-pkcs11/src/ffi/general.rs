//! General-purpose functions (PKCS#11 3.0 §5.4) and the interface discovery of §5.2:
//! `C_Initialize`, `C_Finalize`, `C_GetInfo`, `C_GetFunctionList`, `C_GetInterfaceList`,
//! `C_GetInterface`, and the function tables they hand out.

use super::crypt::*;
use super::digest::*;
use super::keys::*;
use super::message::*;
use super::object::*;
use super::session::*;
use super::sign::*;
use super::slot::*;
use super::{CkResult, entry, output_array, padded, read, write};
use crate::state;
use cryptoki_sys::*;
use std::ffi::c_void;

/// The library version `C_GetInfo` reports (this crate's major and minor).
pub(crate) fn library_version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

/// The manufacturer every info structure names.
pub(crate) const MANUFACTURER: &str = "Craton HSM";

/// Checks `CK_C_INITIALIZE_ARGS` (PKCS#11 3.0 §5.4): a non-null `pReserved`, or some but not
/// all of the four mutex callbacks, is `CKR_ARGUMENTS_BAD`. The module always locks with the
/// operating system's primitives, which serve every threading model an application can
/// declare, so supplied callbacks are accepted but never needed.
fn init_options(args: *mut c_void) -> CkResult<state::InitOptions> {
    if args.is_null() {
        return Ok(state::InitOptions {
            may_create_threads: true,
        });
    }
    // SAFETY: a non-null argument to C_Initialize points to a CK_C_INITIALIZE_ARGS.
    let a: CK_C_INITIALIZE_ARGS = unsafe { read(args.cast::<CK_C_INITIALIZE_ARGS>()) }?;
    if !a.pReserved.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let given = [
        a.CreateMutex.is_some(),
        a.DestroyMutex.is_some(),
        a.LockMutex.is_some(),
        a.UnlockMutex.is_some(),
    ];
    if given.contains(&true) && given.contains(&false) {
        return Err(CKR_ARGUMENTS_BAD);
    }
    Ok(state::InitOptions {
        may_create_threads: a.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS == 0,
    })
}

/// `C_Initialize`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    entry(|| state::initialize(init_options(init_args)?))
}

/// `C_Finalize`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    entry(|| {
        if !reserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        state::finalize()
    })
}

/// `C_GetInfo`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    entry(|| {
        state::module()?;
        let out = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 2 },
            manufacturerID: padded(MANUFACTURER),
            flags: 0,
            libraryDescription: padded("Craton HSM PKCS#11 module"),
            libraryVersion: library_version(),
        };
        // SAFETY: the caller passes a writable CK_INFO.
        unsafe { write(info, out) }
    })
}

/// `C_GetFunctionList`: the 2.40 table (callable before `C_Initialize`).
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    entry(|| {
        let table = std::ptr::from_ref(&FUNCTIONS_2_40).cast_mut();
        // SAFETY: the caller passes a writable CK_FUNCTION_LIST_PTR; the table is static and
        // callers only read it.
        unsafe { write(list, table) }
    })
}

const NAME: &[u8] = b"PKCS 11\0";

/// The interfaces offered, newest first: 3.2 (every 3.2 function real: the KEM, verification
/// with the signature first, authenticated wrapping, validation flags, and the asynchronous
/// calls of a module that never runs anything asynchronously), then 3.0 and 2.40 for clients
/// that ask for them by version.
struct Interfaces([CK_INTERFACE; 3]);

// SAFETY: the table holds pointers to immutable statics (the name and the function tables),
// which every thread may read.
unsafe impl Sync for Interfaces {}

const fn interface(list: *const std::ffi::c_void) -> CK_INTERFACE {
    CK_INTERFACE {
        pInterfaceName: NAME.as_ptr().cast_mut(),
        pFunctionList: list.cast_mut(),
        flags: 0,
    }
}

static INTERFACES: Interfaces = Interfaces([
    interface(std::ptr::from_ref(&FUNCTIONS_3_2).cast()),
    interface(std::ptr::from_ref(&FUNCTIONS_3_0).cast()),
    interface(std::ptr::from_ref(&FUNCTIONS_2_40).cast()),
]);

/// The entries `C_GetInterface` hands out, one per entry of `INTERFACES`, in writable memory.
/// The specification makes them the library's, but real clients write to them: OpenSC's
/// pkcs11-spy replaces `pFunctionList` with its own table. A read-only entry would crash such
/// a client, so these live apart from `INTERFACES`, which stays pristine for the list.
struct HandedOut([std::cell::UnsafeCell<CK_INTERFACE>; 3]);

// SAFETY: the module only ever hands out pointers to these entries and never reads or writes
// them after start-up; what a client does with its pointer is the client's business.
unsafe impl Sync for HandedOut {}

static HANDED_OUT: HandedOut = HandedOut([
    std::cell::UnsafeCell::new(interface(std::ptr::from_ref(&FUNCTIONS_3_2).cast())),
    std::cell::UnsafeCell::new(interface(std::ptr::from_ref(&FUNCTIONS_3_0).cast())),
    std::cell::UnsafeCell::new(interface(std::ptr::from_ref(&FUNCTIONS_2_40).cast())),
]);

/// The interfaces `C_GetInterfaceList` reports, as static entries.
pub fn interface_table() -> &'static [CK_INTERFACE; 3] {
    &INTERFACES.0
}

/// `C_GetInterfaceList`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: the caller's list holds `*count` CK_INTERFACE entries when non-null.
    entry(|| unsafe { output_array(list, count, &INTERFACES.0) })
}

/// `C_GetInterface`: by name ("PKCS 11" or null), version (or null for the newest) and flags
/// (each requested flag must be offered).
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    entry(|| {
        if interface.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        if !name.is_null() {
            // SAFETY: a non-null name is a NUL-terminated string.
            let n = unsafe { std::ffi::CStr::from_ptr(name.cast_const().cast()) };
            if n.to_bytes() != &NAME[..NAME.len() - 1] {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        let wanted = if version.is_null() {
            None
        } else {
            // SAFETY: a non-null version points to a CK_VERSION.
            Some(unsafe { read(version) }?)
        };
        let versions = [
            FUNCTIONS_3_2.version,
            FUNCTIONS_3_0.version,
            FUNCTIONS_2_40.version,
        ];
        let found = INTERFACES.0.iter().zip(versions).position(|(i, v)| {
            wanted.is_none_or(|w| w.major == v.major && w.minor == v.minor)
                && i.flags & flags == flags
        });
        let Some(found) = found else {
            return Err(CKR_ARGUMENTS_BAD);
        };
        // SAFETY: `interface` is non-null and writable; the entry is a static that outlives
        // every caller.
        unsafe { write(interface, HANDED_OUT.0[found].get()) }
    })
}

/// A function table: `$table` with the 2.40 functions, then `$extra` (the 3.0 additions).
macro_rules! function_table {
    ($table:ident, $version:expr, { $($extra:tt)* }) => {
        $table {
            version: $version,
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra)*
        }
    };
}

/// A 3.x function table: the 2.40 functions, the 3.0 additions, then `$extra`.
macro_rules! function_table_3 {
    ($table:ident, $version:expr, { $($extra:tt)* }) => {
        function_table!($table, $version, {
    C_GetInterfaceList: Some(C_GetInterfaceList),
    C_GetInterface: Some(C_GetInterface),
    C_LoginUser: Some(C_LoginUser),
    C_SessionCancel: Some(C_SessionCancel),
    C_MessageEncryptInit: Some(C_MessageEncryptInit),
    C_EncryptMessage: Some(C_EncryptMessage),
    C_EncryptMessageBegin: Some(C_EncryptMessageBegin),
    C_EncryptMessageNext: Some(C_EncryptMessageNext),
    C_MessageEncryptFinal: Some(C_MessageEncryptFinal),
    C_MessageDecryptInit: Some(C_MessageDecryptInit),
    C_DecryptMessage: Some(C_DecryptMessage),
    C_DecryptMessageBegin: Some(C_DecryptMessageBegin),
    C_DecryptMessageNext: Some(C_DecryptMessageNext),
    C_MessageDecryptFinal: Some(C_MessageDecryptFinal),
    C_MessageSignInit: Some(C_MessageSignInit),
    C_SignMessage: Some(C_SignMessage),
    C_SignMessageBegin: Some(C_SignMessageBegin),
    C_SignMessageNext: Some(C_SignMessageNext),
    C_MessageSignFinal: Some(C_MessageSignFinal),
    C_MessageVerifyInit: Some(C_MessageVerifyInit),
    C_VerifyMessage: Some(C_VerifyMessage),
    C_VerifyMessageBegin: Some(C_VerifyMessageBegin),
    C_VerifyMessageNext: Some(C_VerifyMessageNext),
    C_MessageVerifyFinal: Some(C_MessageVerifyFinal),
            $($extra)*
        })
    };
}

/// The PKCS#11 3.0 table.
pub static FUNCTIONS_3_0: CK_FUNCTION_LIST_3_0 =
    function_table_3!(CK_FUNCTION_LIST_3_0, CK_VERSION { major: 3, minor: 0 }, {});

/// The PKCS#11 3.2 table.
pub static FUNCTIONS_3_2: CK_FUNCTION_LIST_3_2 = function_table_3!(CK_FUNCTION_LIST_3_2, CK_VERSION { major: 3, minor: 2 }, {
    C_EncapsulateKey: Some(C_EncapsulateKey),
    C_DecapsulateKey: Some(C_DecapsulateKey),
    C_VerifySignatureInit: Some(C_VerifySignatureInit),
    C_VerifySignature: Some(C_VerifySignature),
    C_VerifySignatureUpdate: Some(C_VerifySignatureUpdate),
    C_VerifySignatureFinal: Some(C_VerifySignatureFinal),
    C_GetSessionValidationFlags: Some(C_GetSessionValidationFlags),
    C_AsyncComplete: Some(C_AsyncComplete),
    C_AsyncGetID: Some(C_AsyncGetID),
    C_AsyncJoin: Some(C_AsyncJoin),
    C_WrapKeyAuthenticated: Some(C_WrapKeyAuthenticated),
    C_UnwrapKeyAuthenticated: Some(C_UnwrapKeyAuthenticated),
});

/// The PKCS#11 2.40 table (`CK_FUNCTION_LIST`, the 3.0 table's prefix).
pub static FUNCTIONS_2_40: CK_FUNCTION_LIST = function_table!(
    CK_FUNCTION_LIST,
    CK_VERSION {
        major: 2,
        minor: 40
    },
    {}
);
