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

/// The hashes AWS-LC's `HMAC_CTX` runs here (SHA-3 HMAC is composed in `mac.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacHash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// A running HMAC over SHA-1 or SHA-2 in an `HMAC_CTX` that AWS-LC keeps on the heap: the
/// value itself is one pointer. aws-lc-rs's `hmac::Context` holds its ~1.2 KB state inline,
/// and the moves of one signing operation (built, boxed, installed in the session, taken out,
/// finished) copied it about fourteen times per call. `HMAC_CTX_free` cleanses the key
/// state.
pub(crate) struct Hmac {
    ctx: NonNull<sys::HMAC_CTX>,
}

// SAFETY: exclusively owned; AWS-LC's HMAC contexts have no thread affinity.
unsafe impl Send for Hmac {}
// SAFETY: `&Hmac` permits no mutation (every mutating method takes `&mut self`).
unsafe impl Sync for Hmac {}

impl Hmac {
    pub(crate) fn new(hash: HmacHash, key: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: each EVP_sha* accessor returns a pointer to a static table.
        let md = unsafe {
            match hash {
                HmacHash::Sha1 => sys::EVP_sha1(),
                HmacHash::Sha224 => sys::EVP_sha224(),
                HmacHash::Sha256 => sys::EVP_sha256(),
                HmacHash::Sha384 => sys::EVP_sha384(),
                HmacHash::Sha512 => sys::EVP_sha512(),
            }
        };
        // SAFETY: no preconditions; null is handled.
        let ctx = NonNull::new(unsafe { sys::HMAC_CTX_new() }).ok_or(LibFailure)?;
        let me = Hmac { ctx };
        // SAFETY: ctx is a fresh context; key is valid for its length (an empty key's pointer
        // is not read); md is a static table.
        check(unsafe {
            sys::HMAC_Init_ex(
                me.ctx.as_ptr(),
                key.as_ptr().cast(),
                key.len(),
                md,
                std::ptr::null_mut(),
            )
        })?;
        Ok(me)
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> Result<(), LibFailure> {
        // SAFETY: ctx is initialised; data is valid for its length.
        check(unsafe { sys::HMAC_Update(self.ctx.as_ptr(), data.as_ptr(), data.len()) })
    }

    /// The full-length tag.
    pub(crate) fn finish(self) -> Result<Vec<u8>, LibFailure> {
        let mut out = [0u8; 64];
        let mut len: std::os::raw::c_uint = 0;
        // SAFETY: out has room for the largest digest (SHA-512, 64 bytes); ctx is initialised.
        check(unsafe { sys::HMAC_Final(self.ctx.as_ptr(), out.as_mut_ptr(), &mut len) })?;
        out.get(..len as usize)
            .map(<[u8]>::to_vec)
            .ok_or(LibFailure)
    }

    /// A deep copy of the running state.
    pub(crate) fn try_clone(&self) -> Result<Self, LibFailure> {
        // SAFETY: no preconditions; null is handled.
        let ctx = NonNull::new(unsafe { sys::HMAC_CTX_new() }).ok_or(LibFailure)?;
        let copy = Hmac { ctx };
        // SAFETY: both contexts are valid; the source is initialised.
        check(unsafe { sys::HMAC_CTX_copy_ex(copy.ctx.as_ptr(), self.ctx.as_ptr()) })?;
        Ok(copy)
    }
}

impl Drop for Hmac {
    fn drop(&mut self) {
        // SAFETY: ctx came from HMAC_CTX_new and is freed once; free cleanses the key state.
        unsafe { sys::HMAC_CTX_free(self.ctx.as_ptr()) };
    }
}

impl std::fmt::Debug for Hmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hmac { .. }")
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
    fn heap_hmac_matches_aws_lc_rs_for_each_hash_and_when_cloned() {
        use aws_lc_rs::hmac;
        let key = b"a key longer than some blocks? no, but not empty either";
        for (ours, theirs) in [
            (HmacHash::Sha1, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            (HmacHash::Sha224, hmac::HMAC_SHA224),
            (HmacHash::Sha256, hmac::HMAC_SHA256),
            (HmacHash::Sha384, hmac::HMAC_SHA384),
            (HmacHash::Sha512, hmac::HMAC_SHA512),
        ] {
            let mut m = Hmac::new(ours, key).unwrap();
            m.update(b"first part, ").unwrap();
            let copy = m.try_clone().unwrap();
            m.update(b"second part").unwrap();
            let expected = hmac::sign(&hmac::Key::new(theirs, key), b"first part, second part");
            assert_eq!(m.finish().unwrap(), expected.as_ref(), "{ours:?}");
            let mut copy = copy;
            copy.update(b"other").unwrap();
            let other = hmac::sign(&hmac::Key::new(theirs, key), b"first part, other");
            assert_eq!(copy.finish().unwrap(), other.as_ref(), "{ours:?} copy");
        }
        let empty = Hmac::new(HmacHash::Sha256, b"").unwrap().finish().unwrap();
        let theirs = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b""), b"");
        assert_eq!(empty, theirs.as_ref());
    }

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
