//! Page-granular, locked, dump-excluded buffers for long-lived key material.
//!
//! Each buffer gets pages of its own from an anonymous mapping, so locking or unlocking one key
//! never changes another key's pages (mlock does not nest). The pages are marked
//! `MADV_DONTDUMP` so a core dump does not carry them, and are wiped before they are unmapped.
//! Without CAP_IPC_LOCK (or past RLIMIT_MEMLOCK) locking fails: the buffer still works and says
//! so through `is_locked`, for the stateful layers to warn about once; it is never an error.

use rustix::mm::{self, MapFlags, ProtFlags};
use std::ptr::NonNull;
use zeroize::Zeroize;

fn page_size() -> usize {
    rustix::param::page_size()
}

/// A zero-filled buffer on pages of its own.
pub(crate) struct LockedPages {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
    locked: bool,
}

// SAFETY: the mapping is exclusively owned; nothing about it is tied to a thread.
unsafe impl Send for LockedPages {}
// SAFETY: shared references only give out `&[u8]`.
unsafe impl Sync for LockedPages {}

impl LockedPages {
    /// Maps `len` bytes (rounded up to whole pages, at least one). Returns `None` only if the
    /// mapping itself fails (address-space exhaustion); locking failure is not an error.
    pub(crate) fn new(len: usize) -> Option<Self> {
        let page = page_size();
        let mapped = len.max(1).checked_next_multiple_of(page)?;
        // SAFETY: an anonymous private mapping with a null hint touches no existing memory.
        let raw = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                mapped,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .ok()?;
        let ptr = NonNull::new(raw.cast::<u8>())?;
        // SAFETY: [ptr, ptr+mapped) is the mapping created just above.
        let locked = unsafe { mm::mlock(raw, mapped) }.is_ok();
        // Excluding from core dumps is best effort: an old kernel without MADV_DONTDUMP still
        // gets a working buffer (and the daemon also disables core dumps for the process).
        // SAFETY: advice on our own mapping; it changes no contents.
        let _ = unsafe { mm::madvise(raw, mapped, mm::Advice::LinuxDontDump) };
        Some(LockedPages {
            ptr,
            len,
            mapped,
            locked,
        })
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.locked
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for `mapped >= len` initialised (zero-filled) bytes for the
        // lifetime of self, and only `&mut self` methods hand out mutable access.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LockedPages {
    fn drop(&mut self) {
        // SAFETY: the whole mapping is ours and initialised; zeroize uses volatile writes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.mapped) }.zeroize();
        let raw = self.ptr.as_ptr().cast();
        if self.locked {
            // SAFETY: unlocking our own mapping.
            let _ = unsafe { mm::munlock(raw, self.mapped) };
        }
        // SAFETY: unmapping exactly the mapping created in `new`; nothing refers to it after.
        let _ = unsafe { mm::munmap(raw, self.mapped) };
    }
}
