//! The C ABI: every exported `C_*` function and the pointer helpers they use.
//!
//! This module tree is the only place in the crate with `unsafe`. The helpers at the top turn
//! the caller's raw pointers into Rust references under the contract the PKCS#11 specification
//! places on each argument (a pointer with a length is valid for that many bytes, an output
//! length pointer is writable, and so on); null pointers and absurd lengths are refused with
//! `CKR_ARGUMENTS_BAD` before anything is read. The functions themselves sit one file per
//! chapter of the specification (PKCS#11 3.0 §5), each one a call to `entry`: catch any
//! panic, check that the module is initialised, run safe code returning `Result`, and map the
//! error to a `CK_RV` in exactly one place (`rv.rs`).
#![allow(unsafe_code)]

use cryptoki_sys::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub mod crypt;
pub mod digest;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod general;
pub mod keys;
pub mod message;
pub mod object;
pub(crate) mod params;
pub mod session;
pub mod sign;
pub mod slot;

/// A result whose error is already a `CK_RV`.
pub(crate) type CkResult<T> = Result<T, CK_RV>;

/// The largest buffer any argument may describe: 1 GiB. Longer lengths are refused before the
/// pointer is touched (a negative `int` cast to `CK_ULONG` shows up as an enormous length).
pub(crate) const MAX_BUFFER: usize = 1 << 30;

/// The largest count of array elements (attributes, handles, mechanisms) an argument may
/// describe.
pub(crate) const MAX_ELEMENTS: usize = 1 << 20;

/// Runs one exported function: catches panics (none may cross the C ABI), and turns the
/// result into a `CK_RV`.
pub(crate) fn entry(f: impl FnOnce() -> CkResult<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv,
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Runs a call on the session's running operation of each of `kinds`. A failed call ends
/// them (PKCS#11 3.0 §5.2), except `CKR_BUFFER_TOO_SMALL` (the two-call convention) and
/// `CKR_USER_NOT_LOGGED_IN` (a key still awaiting its context-specific login).
pub(crate) fn on_operation(
    h: CK_SESSION_HANDLE,
    kinds: &[craton_store::OperationKind],
    f: impl FnOnce(&crate::state::Module) -> CkResult<()>,
) -> CK_RV {
    entry(|| {
        let m = crate::state::module()?;
        let r = f(&m);
        if let Err(rv) = r
            && rv != CKR_BUFFER_TOO_SMALL
            && rv != CKR_USER_NOT_LOGGED_IN
        {
            let _ = m.hsm.cancel(session(h), kinds);
        }
        r
    })
}

/// The null-mechanism form of a `C_*Init` (PKCS#11 3.0 §5.8 and its siblings): it ends the
/// session's running operation of `kind`, if any. Nothing here resists cancelling, so
/// `CKR_OPERATION_CANCEL_FAILED` never arises.
pub(crate) fn terminate(
    m: &crate::state::Module,
    h: CK_SESSION_HANDLE,
    kind: craton_store::OperationKind,
) -> CkResult<()> {
    crate::rv::check(m.hsm.cancel(session(h), &[kind]))
}

fn length(len: CK_ULONG, max: usize) -> CkResult<usize> {
    usize::try_from(len)
        .ok()
        .filter(|n| *n <= max)
        .ok_or(CKR_ARGUMENTS_BAD)
}

/// Reads `len` bytes at `p`. A null pointer is accepted only with a zero length.
///
/// # Safety
/// `p` is null or valid for reads of `len` bytes, unchanged for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: CK_ULONG) -> CkResult<&'a [u8]> {
    let n = length(len, MAX_BUFFER)?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null, and the caller guarantees `n` readable bytes (checked ≤ 1 GiB).
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Reads `n` elements at `p`. A null pointer is accepted only with a zero count.
///
/// # Safety
/// `p` is null or valid for reads of `n` properly aligned `T`s, unchanged for `'a`.
pub(crate) unsafe fn array<'a, T>(p: *const T, n: CK_ULONG) -> CkResult<&'a [T]> {
    let n = length(n, MAX_ELEMENTS)?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() || !p.is_aligned() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null and aligned; the caller guarantees `n` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Borrows `n` elements at `p` for writing. A null pointer is accepted only with a zero count.
///
/// # Safety
/// `p` is null or valid for reads and writes of `n` aligned `T`s, not aliased for `'a`.
pub(crate) unsafe fn array_mut<'a, T>(p: *mut T, n: CK_ULONG) -> CkResult<&'a mut [T]> {
    let n = length(n, MAX_ELEMENTS)?;
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() || !p.is_aligned() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null and aligned; the caller guarantees `n` writable elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

/// Reads one `T` (a parameter structure, a version) at `p`, which may be unaligned.
///
/// # Safety
/// `p` is null or valid for a read of `size_of::<T>()` bytes forming a valid `T`.
pub(crate) unsafe fn read<T: Copy>(p: *const T) -> CkResult<T> {
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null; the caller guarantees a readable `T`; unaligned reads are allowed.
    Ok(unsafe { p.read_unaligned() })
}

/// Reads a parameter structure given as a pointer and a byte length, refusing a length that
/// is not exactly the structure's size.
///
/// # Safety
/// `p` is null or valid for a read of `len` bytes.
pub(crate) unsafe fn read_param<T: Copy>(p: *const std::ffi::c_void, len: CK_ULONG) -> CkResult<T> {
    if p.is_null() || usize::try_from(len).ok() != Some(size_of::<T>()) {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    // SAFETY: non-null and `len == size_of::<T>()` bytes readable by the caller's contract;
    // every parameter structure used here is plain integers and pointers, valid for any bits.
    Ok(unsafe { p.cast::<T>().read_unaligned() })
}

/// Writes one `T` at `p`, which may be unaligned.
///
/// # Safety
/// `p` is null or valid for a write of `size_of::<T>()` bytes.
pub(crate) unsafe fn write<T>(p: *mut T, v: T) -> CkResult<()> {
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null; the caller guarantees the output is writable.
    unsafe { p.write_unaligned(v) };
    Ok(())
}

/// An output buffer with the specification's two-call length convention (PKCS#11 3.0
/// §5.2): a null buffer asks for the length; a short buffer gets `CKR_BUFFER_TOO_SMALL` and
/// the length needed; otherwise the bytes are copied and the length set.
pub(crate) struct Output<'a> {
    buf: Option<&'a mut [u8]>,
    len: *mut CK_ULONG,
}

/// Wraps the caller's `(pBuffer, pulBufferLen)` pair.
///
/// # Safety
/// `len` is null or valid for reads and writes of a `CK_ULONG`; when `p` is non-null it is
/// valid for writes of `*len` bytes, not aliased, for `'a`.
pub(crate) unsafe fn output<'a>(p: *mut u8, len: *mut CK_ULONG) -> CkResult<Output<'a>> {
    if len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let buf = if p.is_null() {
        None
    } else {
        // SAFETY: `len` is non-null and readable by the caller's contract. A capacity beyond
        // `isize::MAX` cannot describe a real buffer and is refused.
        let cap = length(unsafe { len.read_unaligned() }, isize::MAX as usize)?;
        // SAFETY: the caller guarantees `cap` writable bytes at `p`.
        Some(unsafe { std::slice::from_raw_parts_mut(p, cap) })
    };
    Ok(Output { buf, len })
}

impl Output<'_> {
    fn set_len(&mut self, n: usize) {
        // SAFETY: `len` was checked non-null and writable when this `Output` was made.
        unsafe { self.len.write_unaligned(n as CK_ULONG) };
    }

    /// Answers a length query with `needed` (returns `Ok(false)`: nothing more to do), refuses
    /// a buffer shorter than `needed` with `CKR_BUFFER_TOO_SMALL`, and otherwise returns
    /// `Ok(true)`: go ahead and produce the output. `needed` may be an upper bound.
    pub(crate) fn ready(&mut self, needed: usize) -> CkResult<bool> {
        match &self.buf {
            None => {
                self.set_len(needed);
                Ok(false)
            }
            Some(b) if b.len() < needed => {
                self.set_len(needed);
                Err(CKR_BUFFER_TOO_SMALL)
            }
            Some(_) => Ok(true),
        }
    }

    /// The two-call convention around an operation: answers a query or refuses a short
    /// buffer with `needed` (which may be an upper bound) without running `produce`;
    /// otherwise runs it and copies its output out.
    pub(crate) fn fill<R: AsRef<[u8]>>(
        &mut self,
        needed: usize,
        produce: impl FnOnce() -> CkResult<R>,
    ) -> CkResult<()> {
        if !self.ready(needed)? {
            return Ok(());
        }
        self.put(produce()?.as_ref())
    }

    /// The two-call convention for output written straight into the caller's buffer: a
    /// length query is answered with `bound()`; otherwise `produce` writes into the buffer and
    /// returns the length, or refuses a short buffer with `CryptoError::BufferTooSmall`,
    /// which is answered like a query, with `CKR_BUFFER_TOO_SMALL`.
    pub(crate) fn write_with(
        &mut self,
        bound: impl FnOnce() -> CkResult<usize>,
        produce: impl FnOnce(&mut [u8]) -> craton_store::Result<usize>,
    ) -> CkResult<()> {
        let Some(buf) = self.buf.as_deref_mut() else {
            let n = bound()?;
            self.set_len(n);
            return Ok(());
        };
        match produce(buf) {
            Ok(n) => {
                self.set_len(n);
                Ok(())
            }
            Err(craton_store::HsmError::Crypto(craton_core::CryptoError::BufferTooSmall {
                required,
            })) => {
                self.set_len(required);
                Err(CKR_BUFFER_TOO_SMALL)
            }
            Err(e) => Err(craton_store::ck::from_hsm(&e)),
        }
    }

    /// Copies `data` out (the two-call convention applies when the buffer is short) and sets
    /// the length.
    pub(crate) fn put(&mut self, data: &[u8]) -> CkResult<()> {
        if !self.ready(data.len())? {
            return Ok(());
        }
        if let Some(b) = &mut self.buf {
            b[..data.len()].copy_from_slice(data);
        }
        self.set_len(data.len());
        Ok(())
    }
}

/// Copies `text` into a fixed, blank-padded `CK_UTF8CHAR` field (truncating on a character
/// boundary).
pub(crate) fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// The file this code was loaded from: the shared object when loaded as one, the test
/// executable when linked in.
pub(crate) fn own_path() -> Option<std::path::PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let addr = own_path as *const std::ffi::c_void;
    // SAFETY: `addr` is an address inside this object and `info` is a valid, writable
    // `Dl_info`; dladdr only fills it in.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a non-null, NUL-terminated path owned by the loader, valid while
    // this object stays loaded (it is copied at once).
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    if path.is_absolute() {
        return Some(path);
    }
    // dladdr echoes whatever name the application passed to dlopen, so a relative module
    // path (`--module ./libcraton_hsm.so`) or a bare executable name comes back as given.
    // The kernel's map of this process names the file behind our own code exactly.
    mapped_file(addr as usize)
}

/// The absolute path of the file mapped at `addr` in this process, from `/proc/self/maps`.
fn mapped_file(addr: usize) -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        // start-end perms offset dev inode   path
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let path = fields.nth(4)?.trim_start();
        (start <= addr && addr < end && path.starts_with('/')).then(|| path.into())
    })
}

/// Registers the fork handler once per process: a child sees every module initialisation of
/// its parent as gone, so it gets `CKR_CRYPTOKI_NOT_INITIALIZED` until it calls
/// `C_Initialize` itself.
pub(crate) fn watch_fork() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn in_child() {
        crate::state::forked();
    }
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic counter, which is
        // async-signal-safe as a fork child handler must be.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
}

/// Copies `items` out with the two-call convention, where the caller's buffer is an array of
/// `*count` elements.
///
/// # Safety
/// `count` is null or valid for reads and writes of a `CK_ULONG`; when `p` is non-null it is
/// valid for writes of `*count` elements.
pub(crate) unsafe fn output_array<T: Copy>(
    p: *mut T,
    count: *mut CK_ULONG,
    items: &[T],
) -> CkResult<()> {
    if count.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let n = items.len() as CK_ULONG;
    if p.is_null() {
        // SAFETY: `count` is non-null and writable by the caller's contract.
        return unsafe { write(count, n) };
    }
    // SAFETY: non-null and readable by the caller's contract.
    let cap = unsafe { read(count) }?;
    // SAFETY: as above, writable.
    unsafe { write(count, n) }?;
    if cap < n {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: the caller's array holds `cap >= n` elements.
    let out = unsafe { array_mut(p, n) }?;
    out.copy_from_slice(items);
    Ok(())
}

/// The engine's handle for a session.
pub(crate) fn session(h: CK_SESSION_HANDLE) -> craton_store::SessionHandle {
    craton_store::SessionHandle(h)
}

/// Creates an object with `create` and writes its handle to `out`; a null `out` is refused
/// before anything is created.
///
/// # Safety
/// `out` is null or valid for a write of a `CK_OBJECT_HANDLE`.
pub(crate) unsafe fn new_object(
    out: *mut CK_OBJECT_HANDLE,
    create: impl FnOnce() -> CkResult<craton_store::ObjectHandle>,
) -> CkResult<()> {
    if out.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let handle = create()?;
    // SAFETY: non-null and writable by the caller's contract.
    unsafe { write(out, handle.0) }
}

/// The engine's handle for an object.
pub(crate) fn object(h: CK_OBJECT_HANDLE) -> craton_store::ObjectHandle {
    craton_store::ObjectHandle(h)
}

/// Reads a template into typed attributes.
///
/// # Safety
/// `p` is null or points to `n` `CK_ATTRIBUTE`s whose value pointers are valid for their
/// stated lengths.
pub(crate) unsafe fn template(
    p: *const CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CkResult<
    Vec<(
        craton_core::attribute::AttributeType,
        craton_core::attribute::AttrValue,
    )>,
> {
    // SAFETY: forwarded from the caller.
    let raw = unsafe { array(p, n) }?;
    let mut out = Vec::with_capacity(raw.len());
    for a in raw {
        let t = craton_core::attribute::AttributeType(a.type_);
        // SAFETY: each value pointer is valid for its stated length (caller's contract).
        let v = unsafe { bytes(a.pValue.cast_const().cast(), a.ulValueLen) }
            .map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?;
        out.push((t, crate::attrs::decode(t, v)?));
    }
    Ok(out)
}

/// Borrows `len` bytes at `p` for writing. A null pointer is accepted only with a zero length.
///
/// # Safety
/// `p` is null or valid for writes of `len` bytes, not aliased for `'a`.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut u8, len: CK_ULONG) -> CkResult<&'a mut [u8]> {
    let n = length(len, MAX_BUFFER)?;
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null; the caller guarantees `n` writable bytes (checked ≤ 1 GiB).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_code_maps_to_the_file_that_holds_it() {
        // In a test binary this crate is linked into the executable itself.
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let addr = super::mapped_file as *const () as usize;
        assert_eq!(super::mapped_file(addr), Some(exe.clone()));
        assert_eq!(super::own_path(), Some(exe));
        assert_eq!(super::mapped_file(0), None);
    }
}
