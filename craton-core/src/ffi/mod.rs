//! The only place craton-core reaches below aws-lc-rs's safe API.
//!
//! aws-lc-rs stops short of what PKCS#11 needs in a few places: raw ECDSA over a caller's
//! digest, RSA without padding or over a caller's DigestInfo, PSS and OAEP with any hash/MGF
//! pairing and labels, GCM with other IV and tag lengths or in several parts, SHA3-224,
//! AES key wrap with 192-bit keys, ML-KEM and ML-DSA from seeds and with context strings.
//! Those are reached here through `aws-lc-sys`, pinned to the version aws-lc-rs links, so one
//! copy of AWS-LC is in every binary. Memory locking of key pages lives here too, and the
//! shared file mapping behind the audit log's journal.
//!
//! Every item exported from this module is safe to call: owned pointers are wrapped in types
//! that free them on drop, lengths are checked before they reach C, and each `unsafe` block
//! says why it is sound. Nothing here panics across the C boundary (there is none: AWS-LC never
//! calls back into us).
#![allow(unsafe_code)]

pub(crate) mod bn;
pub(crate) mod cipher;
pub(crate) mod keywrap;
pub(crate) mod mapped;
pub(crate) mod md;
pub(crate) mod memory;
pub(crate) mod pkey;

use aws_lc_sys as sys;

/// AWS-LC reported failure. The reason stays in AWS-LC's thread-local error queue only
/// until we clear it here, so a later call never sees a stale error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LibFailure;

impl LibFailure {
    pub(crate) fn take() -> Self {
        // SAFETY: ERR_clear_error only touches this thread's error queue and takes no input.
        unsafe { sys::ERR_clear_error() };
        LibFailure
    }
}

/// Turns AWS-LC's `1 == success` convention into a `Result`.
pub(crate) fn check(rc: std::os::raw::c_int) -> Result<(), LibFailure> {
    if rc == 1 {
        Ok(())
    } else {
        Err(LibFailure::take())
    }
}

/// Lengths crossing into C as `int` must fit; anything larger is refused before the call.
pub(crate) fn c_int_len(len: usize) -> Result<std::os::raw::c_int, LibFailure> {
    std::os::raw::c_int::try_from(len).map_err(|_| LibFailure)
}
