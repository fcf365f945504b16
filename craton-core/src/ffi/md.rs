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

/// HMAC-SHA-256 with the key schedule done once: the SHA-256 states after absorbing
/// `K ⊕ ipad` and `K ⊕ opad` are kept, and each MAC starts from copies of them (two 112-byte
/// copies instead of a fresh `HMAC_CTX`). This is the DRBG's hot path. Both states are wiped
/// on drop.
pub(crate) struct HmacSha256 {
    inner: sys::SHA256_CTX,
    outer: sys::SHA256_CTX,
}

fn sha256_state(block: &[u8; 64]) -> sys::SHA256_CTX {
    // SAFETY: SHA256_CTX is plain data (integers and a byte array); all-zero is a valid value
    // for SHA256_Init to overwrite.
    let mut ctx: sys::SHA256_CTX = unsafe { std::mem::zeroed() };
    // SAFETY: ctx is a valid, writable SHA256_CTX; block is 64 readable bytes. Init and
    // Update cannot fail for SHA-256.
    unsafe {
        sys::SHA256_Init(&mut ctx);
        sys::SHA256_Update(&mut ctx, block.as_ptr().cast(), block.len());
    }
    ctx
}

impl HmacSha256 {
    /// Keys an HMAC-SHA-256 with a key of at most 64 bytes (the DRBG's keys are 32).
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let mut pad = [0u8; 64];
        pad[..32].copy_from_slice(key);
        pad.iter_mut().for_each(|b| *b ^= 0x36);
        let inner = sha256_state(&pad);
        pad.iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5c);
        let outer = sha256_state(&pad);
        zeroize::Zeroize::zeroize(&mut pad);
        HmacSha256 { inner, outer }
    }

    /// HMAC of the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = self.inner;
        let mut inner_hash = [0u8; 32];
        let mut out = [0u8; 32];
        // SAFETY: ctx is a copy of an initialised state; each part is a valid slice; the
        // outputs are 32 writable bytes, SHA-256's digest size. None of these calls can fail.
        unsafe {
            for p in parts {
                sys::SHA256_Update(&mut ctx, p.as_ptr().cast(), p.len());
            }
            sys::SHA256_Final(inner_hash.as_mut_ptr(), &mut ctx);
            ctx = self.outer;
            sys::SHA256_Update(&mut ctx, inner_hash.as_ptr().cast(), inner_hash.len());
            sys::SHA256_Final(out.as_mut_ptr(), &mut ctx);
        }
        wipe(&mut ctx);
        out
    }
}

fn wipe(ctx: &mut sys::SHA256_CTX) {
    zeroize::Zeroize::zeroize(&mut ctx.h);
    zeroize::Zeroize::zeroize(&mut ctx.data);
}

impl Drop for HmacSha256 {
    fn drop(&mut self) {
        wipe(&mut self.inner);
        wipe(&mut self.outer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hmac_sha256_matches_aws_lc_rs() {
        let key = [0x0bu8; 32];
        let ours = HmacSha256::new(&key).mac(&[b"Hi ", b"There", b""]);
        let theirs = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key),
            b"Hi There",
        );
        assert_eq!(&ours[..], theirs.as_ref());
    }
}
