//! SHA3-224 through `EVP_MD_CTX`: aws-lc-rs offers SHA3-256/384/512 but not SHA3-224.

use super::{LibFailure, check, sys};
use std::ptr::NonNull;

/// A running SHA3-224 computation. Cloning copies the whole hash state.
pub(crate) struct Sha3_224 {
    ctx: NonNull<sys::EVP_MD_CTX>,
}

// SAFETY: the context is exclusively owned; AWS-LC keeps no thread affinity for EVP_MD_CTX.
unsafe impl Send for Sha3_224 {}
// SAFETY: `&Sha3_224` permits no mutation (every mutating method takes `&mut self`).
unsafe impl Sync for Sha3_224 {}

impl Sha3_224 {
    pub(crate) const OUTPUT_LEN: usize = 28;
    pub(crate) const BLOCK_LEN: usize = 144;

    pub(crate) fn new() -> Result<Self, LibFailure> {
        // SAFETY: EVP_MD_CTX_new has no preconditions; null is handled below.
        let ctx = NonNull::new(unsafe { sys::EVP_MD_CTX_new() }).ok_or(LibFailure)?;
        let me = Sha3_224 { ctx };
        // SAFETY: ctx is a valid fresh context; EVP_sha3_224 returns a static EVP_MD.
        check(unsafe {
            sys::EVP_DigestInit_ex(me.ctx.as_ptr(), sys::EVP_sha3_224(), std::ptr::null_mut())
        })?;
        Ok(me)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        // SAFETY: ctx was initialised in `new`; data is a valid slice for its length. Updating an
        // initialised SHA-3 context cannot fail, so the return code carries no information.
        unsafe { sys::EVP_DigestUpdate(self.ctx.as_ptr(), data.as_ptr().cast(), data.len()) };
    }

    pub(crate) fn finish(self) -> [u8; Self::OUTPUT_LEN] {
        let mut out = [0u8; Self::OUTPUT_LEN];
        let mut len: std::os::raw::c_uint = 0;
        // SAFETY: out has room for the 28-byte digest; ctx is initialised.
        unsafe { sys::EVP_DigestFinal_ex(self.ctx.as_ptr(), out.as_mut_ptr(), &mut len) };
        debug_assert_eq!(len as usize, Self::OUTPUT_LEN);
        out
    }
}

impl Clone for Sha3_224 {
    fn clone(&self) -> Self {
        // SAFETY: EVP_MD_CTX_new has no preconditions.
        let raw = unsafe { sys::EVP_MD_CTX_new() };
        // Allocation failure of a ~400-byte context is treated like any other OOM: abort.
        let Some(ctx) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 512]>())
        };
        // SAFETY: both contexts are valid; the source is initialised.
        let rc = unsafe { sys::EVP_MD_CTX_copy_ex(ctx.as_ptr(), self.ctx.as_ptr()) };
        if rc != 1 {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 512]>())
        }
        Sha3_224 { ctx }
    }
}

impl Drop for Sha3_224 {
    fn drop(&mut self) {
        // SAFETY: ctx came from EVP_MD_CTX_new and is freed exactly once.
        unsafe { sys::EVP_MD_CTX_free(self.ctx.as_ptr()) };
    }
}

impl std::fmt::Debug for Sha3_224 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha3_224 { .. }")
    }
}
