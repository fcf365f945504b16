//! AES key wrap (RFC 3394 / SP 800-38F KW) and with padding (RFC 5649 / KWP) for 128-, 192-
//! and 256-bit wrapping keys. aws-lc-rs's `key_wrap` lacks 192-bit keys.

use super::{LibFailure, sys};
use zeroize::Zeroizing;

/// An expanded AES key schedule, cleansed when dropped.
struct Schedule(sys::AES_KEY);

impl Drop for Schedule {
    fn drop(&mut self) {
        // SAFETY: the pointer and size describe exactly this AES_KEY value.
        unsafe {
            sys::OPENSSL_cleanse(
                (&mut self.0 as *mut sys::AES_KEY).cast(),
                std::mem::size_of::<sys::AES_KEY>(),
            )
        };
    }
}

fn expand(key: &[u8], encrypt: bool) -> Result<Schedule, LibFailure> {
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(LibFailure);
    }
    // SAFETY: AES_KEY is plain old data (round keys and a round count); all-zero is valid.
    let mut schedule = Schedule(unsafe { std::mem::zeroed() });
    let bits = (key.len() * 8) as std::os::raw::c_uint;
    // SAFETY: key holds bits/8 bytes; schedule is a valid AES_KEY to fill.
    let rc = unsafe {
        if encrypt {
            sys::AES_set_encrypt_key(key.as_ptr(), bits, &mut schedule.0)
        } else {
            sys::AES_set_decrypt_key(key.as_ptr(), bits, &mut schedule.0)
        }
    };
    if rc == 0 {
        Ok(schedule)
    } else {
        Err(LibFailure)
    }
}

/// KW: `input` is a multiple of 8 bytes, at least 16. Output is 8 bytes longer.
pub(crate) fn wrap(kek: &[u8], input: &[u8]) -> Result<Vec<u8>, LibFailure> {
    if input.len() < 16 || !input.len().is_multiple_of(8) || input.len() > (1 << 30) {
        return Err(LibFailure);
    }
    let schedule = expand(kek, true)?;
    let mut out = vec![0u8; input.len() + 8];
    // SAFETY: out has input.len() + 8 bytes as AES_wrap_key requires; a null IV means the
    // RFC 3394 default.
    let n = unsafe {
        sys::AES_wrap_key(
            &schedule.0,
            std::ptr::null(),
            out.as_mut_ptr(),
            input.as_ptr(),
            input.len(),
        )
    };
    if n == out.len() as std::os::raw::c_int {
        Ok(out)
    } else {
        Err(LibFailure)
    }
}

/// KW unwrap; fails if the integrity check value does not match.
pub(crate) fn unwrap(kek: &[u8], input: &[u8]) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
    if input.len() < 24 || !input.len().is_multiple_of(8) || input.len() > (1 << 30) {
        return Err(LibFailure);
    }
    let schedule = expand(kek, false)?;
    let mut out = Zeroizing::new(vec![0u8; input.len() - 8]);
    // SAFETY: out has input.len() - 8 bytes as AES_unwrap_key requires.
    let n = unsafe {
        sys::AES_unwrap_key(
            &schedule.0,
            std::ptr::null(),
            out.as_mut_ptr(),
            input.as_ptr(),
            input.len(),
        )
    };
    if n == out.len() as std::os::raw::c_int {
        Ok(out)
    } else {
        Err(LibFailure)
    }
}

/// KWP: any non-empty input; output is padded to 8 bytes plus 8.
pub(crate) fn wrap_padded(kek: &[u8], input: &[u8]) -> Result<Vec<u8>, LibFailure> {
    if input.is_empty() || input.len() > (1 << 30) {
        return Err(LibFailure);
    }
    let schedule = expand(kek, true)?;
    let max = input.len().div_ceil(8) * 8 + 8;
    let mut out = vec![0u8; max];
    let mut out_len = 0usize;
    // SAFETY: out has `max` writable bytes and max_out says so.
    let rc = unsafe {
        sys::AES_wrap_key_padded(
            &schedule.0,
            out.as_mut_ptr(),
            &mut out_len,
            max,
            input.as_ptr(),
            input.len(),
        )
    };
    if rc != 1 {
        return Err(LibFailure);
    }
    out.truncate(out_len);
    Ok(out)
}

/// KWP unwrap; fails on a bad integrity check or bad padding.
pub(crate) fn unwrap_padded(kek: &[u8], input: &[u8]) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
    if input.len() < 16 || !input.len().is_multiple_of(8) || input.len() > (1 << 30) {
        return Err(LibFailure);
    }
    let schedule = expand(kek, false)?;
    let max = input.len();
    let mut out = Zeroizing::new(vec![0u8; max]);
    let mut out_len = 0usize;
    // SAFETY: out has `max` writable bytes and max_out says so.
    let rc = unsafe {
        sys::AES_unwrap_key_padded(
            &schedule.0,
            out.as_mut_ptr(),
            &mut out_len,
            max,
            input.as_ptr(),
            input.len(),
        )
    };
    if rc != 1 {
        return Err(LibFailure);
    }
    out.truncate(out_len);
    Ok(out)
}
