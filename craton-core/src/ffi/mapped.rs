//! A file mapped shared and writable, for a journal that must outlive the process that fills
//! it: a store into a shared file mapping lands in the kernel's page cache for that file, where
//! it stays if the process is killed the next instant (exactly as `write(2)` would leave it),
//! without a system call per record.
//!
//! The mapping is only ever written through raw pointers, never borrowed as a Rust slice, so
//! another process changing the file meanwhile cannot break Rust's aliasing rules. One hazard
//! stays, and callers must document it: if the file is cut shorter than the mapping while
//! mapped, the next store to a page past its end raises `SIGBUS`. The caller sizes the file
//! (craton-core touches no file beyond mapping the descriptor it is given), keeps it in a
//! directory only the service writes, and writes the whole file before mapping it (so a full
//! disk cannot strike at a store either).

use rustix::mm::{self, MapFlags, ProtFlags};
use std::os::fd::AsFd;
use std::ptr::NonNull;

/// `len` bytes of a file, mapped shared and writable; unmapped on drop.
pub struct SharedFileMap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; writes need `&mut self`.
unsafe impl Send for SharedFileMap {}
// SAFETY: `&self` methods only read the length.
unsafe impl Sync for SharedFileMap {}

impl std::fmt::Debug for SharedFileMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFileMap")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SharedFileMap {
    /// Maps the first `len` bytes of the file behind `fd` (open for reading and writing),
    /// shared. craton-core opens, reads and sizes no file: the caller makes the file at least
    /// `len` bytes long first, since a store past its end raises `SIGBUS` (a crash, never a
    /// stray write).
    pub fn new(fd: impl AsFd, len: usize) -> std::io::Result<SharedFileMap> {
        if len == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        // SAFETY: a new shared mapping of a file descriptor we hold, at an address the kernel
        // chooses (null hint), so it replaces no existing memory of this process.
        let raw = unsafe {
            mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        let ptr = NonNull::new(raw.cast::<u8>())
            .ok_or_else(|| std::io::Error::other("mmap returned a null mapping"))?;
        Ok(SharedFileMap { ptr, len })
    }

    /// The mapped length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an empty mapping is refused by [`SharedFileMap::new`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `bytes` into the file at `offset`. Returns false, writing nothing, if they do
    /// not fit inside the mapping.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> bool {
        let fits = offset
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.len);
        if !fits {
            return false;
        }
        // SAFETY: [offset, offset + bytes.len()) lies inside the mapping (checked above), which
        // lives as long as `self`; `bytes` is ordinary memory of this process, so the two
        // ranges cannot overlap; `&mut self` keeps other writers of this process out.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            );
        }
        true
    }
}

impl Drop for SharedFileMap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; no pointer into it outlives
        // `self`. Dirty pages stay in the page cache and reach the file as usual.
        let _ = unsafe { mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An empty scratch file, open for reading and writing.
    fn scratch(name: &str) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("craton-map-{name}-{}", std::process::id()));
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    #[test]
    fn stores_reach_the_file_and_out_of_range_stores_are_refused() {
        let (path, mut f) = scratch("stores");
        f.write_all(&[0u8; 8192]).unwrap();
        let mut map = SharedFileMap::new(&f, 8192).unwrap();
        assert_eq!(map.len(), 8192);
        assert!(map.write(4090, b"across a page"));
        assert!(map.write(0, b"start"));
        assert!(!map.write(8190, b"too long"));
        assert!(!map.write(usize::MAX, b"x"));
        assert!(map.write(8192, b""));
        // Read back through the file, with the mapping still in place.
        let seen = std::fs::read(&path).unwrap();
        assert_eq!(&seen[4090..4103], b"across a page");
        assert_eq!(&seen[..5], b"start");
        assert!(seen[8184..].iter().all(|&b| b == 0));
        drop(map);
        assert_eq!(std::fs::read(&path).unwrap(), seen);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_empty_mapping_is_refused() {
        let (path, f) = scratch("empty");
        assert_eq!(
            SharedFileMap::new(&f, 0).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        let _ = std::fs::remove_file(&path);
    }
}
