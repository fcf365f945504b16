//! Locked, dump-excluded buffers for long-lived key material.
//!
//! Small secrets (up to 1 KiB: AES and HMAC keys, seeds) take a slot in a pool:
//! 64 KiB chunks of anonymous memory, each mapped, locked and marked `MADV_DONTDUMP` once and
//! kept for the life of the process, cut into equal slots of a size class. Which slots are in
//! use is a bitmap of atomics per chunk, so taking and returning a slot is a compare-and-swap,
//! with no lock to wait for (or to be left held in a child after `fork()`). Mapping pages per key
//! instead took the process's memory-map lock for writing and, on unmapping, interrupted every
//! other core running the process to flush its TLB: key generation on two threads ran slower
//! than on one. The pool's chunks are never returned to the system, so its size is the most
//! small secrets the process ever held at once.
//!
//! Larger secrets get pages of their own from a fresh mapping, unlocked and unmapped on drop.
//!
//! Every slot and every page is wiped before it is reused or unmapped. Without CAP_IPC_LOCK (or
//! past RLIMIT_MEMLOCK) locking fails: the buffer still works and says so through `is_locked`,
//! for the stateful layers to warn about once; it is never an error. (A child after `fork()`
//! inherits the mappings but not the locks.)

use rustix::mm::{self, MapFlags, ProtFlags};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use zeroize::Zeroize;

fn page_size() -> usize {
    rustix::param::page_size()
}

/// The size classes of pooled slots, in bytes.
const CLASSES: [usize; 3] = [64, 256, 1024];

/// The largest secret the pool holds; longer ones get pages of their own.
#[cfg(test)]
const MAX_POOLED: usize = CLASSES[CLASSES.len() - 1];

/// Bytes per chunk.
const CHUNK: usize = 64 * 1024;

/// Bitmap words per chunk: enough for the smallest class.
const WORDS: usize = CHUNK / CLASSES[0] / 64;

/// A mapped, locked run of slots of one class. Chunks are leaked: slots point at them for as
/// long as the process runs.
struct Chunk {
    base: NonNull<u8>,
    slot_size: usize,
    slots: usize,
    locked: bool,
    /// Bit `i` set: slot `i` is in use.
    used: [Word; WORDS],
    /// The next chunk of the same class (chunks are only ever added at the head).
    next: AtomicPtr<Chunk>,
}

/// One bitmap word on a cache line of its own: threads that claim from different words (each
/// starts at its own, see [`home_word`]) then never pass a line between their cores.
#[repr(align(64))]
struct Word(AtomicU64);

/// The bitmap word this thread starts its search at: threads take turns, so two threads
/// generating keys at once work on different words of a chunk.
fn home_word() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    HOME.with(|h| *h)
}

// SAFETY: the chunk's memory is handed out slot by slot, each slot to one owner at a time
// (the bitmap's compare-and-swap decides which); the fields themselves are immutable or atomic.
unsafe impl Send for Chunk {}
// SAFETY: as above.
unsafe impl Sync for Chunk {}

/// The newest chunk of each class.
static HEADS: [AtomicPtr<Chunk>; CLASSES.len()] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CLASSES.len()];

impl Chunk {
    /// Maps, locks and dump-excludes a new chunk, with slot 0 already taken by the caller.
    fn map(slot_size: usize) -> Option<&'static Chunk> {
        let (ptr, locked) = map_locked(CHUNK)?;
        let chunk = Chunk {
            base: ptr,
            slot_size,
            slots: CHUNK / slot_size,
            locked,
            used: std::array::from_fn(|i| Word(AtomicU64::new(u64::from(i == 0)))),
            next: AtomicPtr::new(std::ptr::null_mut()),
        };
        Some(Box::leak(Box::new(chunk)))
    }

    /// Takes a free slot, if any, searching from bitmap word `home` on.
    fn claim(&self, home: usize) -> Option<usize> {
        let words = self.slots.div_ceil(64);
        for k in 0..words {
            let w = (home + k) % words;
            let word = &self.used[w].0;
            let mut current = word.load(Ordering::Relaxed);
            loop {
                let free = !current;
                if free == 0 {
                    break;
                }
                let bit = free.trailing_zeros() as usize;
                let index = w * 64 + bit;
                if index >= self.slots {
                    break;
                }
                match word.compare_exchange_weak(
                    current,
                    current | (1 << bit),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(index),
                    Err(now) => current = now,
                }
            }
        }
        None
    }

    /// Gives slot `index` back (its bytes already wiped).
    fn release(&self, index: usize) {
        self.used[index / 64]
            .0
            .fetch_and(!(1 << (index % 64)), Ordering::Release);
    }

    fn slot_ptr(&self, index: usize) -> NonNull<u8> {
        // SAFETY: `index < slots`, so the offset stays inside the chunk's mapping.
        unsafe { self.base.add(index * self.slot_size) }
    }
}

/// A slot of `class`: from the first chunk with one free, or from a new chunk.
fn take_slot(class: usize) -> Option<(&'static Chunk, usize)> {
    let head = &HEADS[class];
    let home = home_word();
    let mut at = head.load(Ordering::Acquire);
    // SAFETY: chunk pointers come from `Box::leak` and are never freed, so every non-null
    // pointer in the list is valid for the rest of the process.
    while let Some(chunk) = unsafe { at.as_ref() } {
        if let Some(i) = chunk.claim(home) {
            return Some((chunk, i));
        }
        at = chunk.next.load(Ordering::Acquire);
    }
    let chunk = Chunk::map(CLASSES[class])?;
    let mut first = head.load(Ordering::Acquire);
    loop {
        chunk.next.store(first, Ordering::Relaxed);
        let new = std::ptr::from_ref(chunk).cast_mut();
        match head.compare_exchange_weak(first, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some((chunk, 0)),
            Err(now) => first = now,
        }
    }
}

/// Maps `len` bytes (a page multiple), locks them if the process may, and excludes them from
/// core dumps. Returns `None` only if the mapping itself fails.
fn map_locked(len: usize) -> Option<(NonNull<u8>, bool)> {
    // SAFETY: an anonymous private mapping with a null hint touches no existing memory.
    let raw = unsafe {
        mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    let ptr = NonNull::new(raw.cast::<u8>())?;
    // SAFETY: [raw, raw+len) is the mapping created just above.
    let locked = unsafe { mm::mlock(raw, len) }.is_ok();
    // Excluding from core dumps is best effort: an old kernel without MADV_DONTDUMP still
    // gets a working buffer (and the daemon also disables core dumps for the process).
    // SAFETY: advice on our own mapping; it changes no contents.
    let _ = unsafe { mm::madvise(raw, len, mm::Advice::LinuxDontDump) };
    // A forked child gets these pages zero-filled rather than a copy of the parent's keys
    // (it cannot use the parent's module anyway: PKCS#11 makes it initialise its own).
    // Best effort too: kernels before 4.14 lack MADV_WIPEONFORK.
    // SAFETY: advice on our own mapping; it changes nothing in this process.
    let _ = unsafe { mm::madvise(raw, len, mm::Advice::LinuxWipeOnFork) };
    Some((ptr, locked))
}

/// Where a buffer's bytes live.
enum Backing {
    /// Slot `index` of a pool chunk.
    Pooled { chunk: &'static Chunk, index: usize },
    /// A mapping of its own, `mapped` bytes long.
    Own { mapped: usize, locked: bool },
}

/// A zero-filled buffer in locked, dump-excluded memory.
pub(crate) struct LockedPages {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

// SAFETY: the buffer is exclusively owned; nothing about it is tied to a thread.
unsafe impl Send for LockedPages {}
// SAFETY: shared references only give out `&[u8]`.
unsafe impl Sync for LockedPages {}

impl LockedPages {
    /// A zero-filled buffer of `len` bytes: a pool slot for small secrets, pages of its own
    /// for larger ones. Returns `None` only if mapping memory fails (address-space
    /// exhaustion); locking failure is not an error.
    pub(crate) fn new(len: usize) -> Option<Self> {
        if let Some(class) = CLASSES.iter().position(|c| len <= *c) {
            let (chunk, index) = take_slot(class)?;
            return Some(LockedPages {
                ptr: chunk.slot_ptr(index),
                len,
                backing: Backing::Pooled { chunk, index },
            });
        }
        let mapped = len.checked_next_multiple_of(page_size())?;
        let (ptr, locked) = map_locked(mapped)?;
        Some(LockedPages {
            ptr,
            len,
            backing: Backing::Own { mapped, locked },
        })
    }

    pub(crate) fn is_locked(&self) -> bool {
        match self.backing {
            Backing::Pooled { chunk, .. } => chunk.locked,
            Backing::Own { locked, .. } => locked,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for at least `len` initialised (zero-filled or written) bytes
        // for the lifetime of self, which owns them exclusively; only `&mut self` methods hand
        // out mutable access.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LockedPages {
    fn drop(&mut self) {
        match self.backing {
            Backing::Pooled { chunk, index } => {
                // SAFETY: the slot is ours until released below; zeroize uses volatile writes.
                unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), chunk.slot_size) }
                    .zeroize();
                chunk.release(index);
            }
            Backing::Own { mapped, locked } => {
                // SAFETY: the whole mapping is ours and initialised; zeroize uses volatile
                // writes.
                unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), mapped) }.zeroize();
                let raw = self.ptr.as_ptr().cast();
                if locked {
                    // SAFETY: unlocking our own mapping.
                    let _ = unsafe { mm::munlock(raw, mapped) };
                }
                // SAFETY: unmapping exactly the mapping created in `new`; nothing refers to it
                // after.
                let _ = unsafe { mm::munmap(raw, mapped) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_zeroed_and_reused_after_wiping() {
        let mut a = LockedPages::new(32).unwrap();
        let mut b = LockedPages::new(32).unwrap();
        assert_ne!(a.as_slice().as_ptr(), b.as_slice().as_ptr());
        a.as_mut_slice().fill(0xaa);
        b.as_mut_slice().fill(0xbb);
        assert!(a.as_slice().iter().all(|x| *x == 0xaa));
        drop(a);
        // Whatever slot the next one gets (this one, freed above, or another), it starts zeroed.
        let c = LockedPages::new(64).unwrap();
        assert!(c.as_slice().iter().all(|x| *x == 0));
        assert!(b.as_slice().iter().all(|x| *x == 0xbb));
    }

    #[test]
    fn each_size_finds_its_home() {
        for len in [0, 1, 64, 65, 256, 1000, 1024, 1025, 5000] {
            let mut p = LockedPages::new(len).unwrap();
            assert_eq!(p.as_slice().len(), len);
            p.as_mut_slice().fill(1);
            let pooled = matches!(p.backing, Backing::Pooled { .. });
            assert_eq!(pooled, len <= MAX_POOLED, "{len}");
        }
    }

    #[test]
    fn a_search_from_any_home_word_finds_every_free_slot_once() {
        for size in CLASSES {
            // Homes at the first word, the last, and past the end (threads are numbered on).
            for home in [0, WORDS - 1, 1000] {
                let chunk = Chunk::map(size).unwrap();
                let mut seen = std::collections::BTreeSet::new();
                while let Some(i) = chunk.claim(home) {
                    assert!(seen.insert(i), "slot {i} of class {size} claimed twice");
                }
                // Slot 0 went to the chunk's creator; every other slot was found.
                assert_eq!(
                    seen,
                    (1..chunk.slots).collect(),
                    "class {size}, home {home}"
                );
                // A slot given back is found again, whichever word the search starts at.
                let back = chunk.slots - 1;
                chunk.release(back);
                assert_eq!(chunk.claim(home + 1), Some(back));
                assert_eq!(chunk.claim(home), None);
            }
        }
    }

    #[test]
    fn many_threads_never_share_a_slot() {
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..300u16 {
                        let mut held: Vec<LockedPages> =
                            (0..20).map(|_| LockedPages::new(48).unwrap()).collect();
                        for (i, p) in held.iter_mut().enumerate() {
                            p.as_mut_slice().fill(t ^ (i as u8) ^ (round as u8));
                        }
                        for (i, p) in held.iter().enumerate() {
                            let want = t ^ (i as u8) ^ (round as u8);
                            assert!(p.as_slice().iter().all(|x| *x == want));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
