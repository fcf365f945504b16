//! AES in ECB, CBC (with or without PKCS#7 padding), CTR and GCM through `EVP_CIPHER_CTX`.
//!
//! aws-lc-rs has no streaming unpadded ECB/CBC, no GCM with IVs other than 96 bits or tags
//! shorter than 128 bits, and no multi-part GCM; PKCS#11 needs all of them, and needs the
//! running state to be cloneable. One context type serves every AES mode here.

use super::{LibFailure, c_int_len, check, sys};
use std::os::raw::c_int;
use std::ptr::{NonNull, null, null_mut};

/// The AES modes this context drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AesMode {
    Ecb,
    Cbc,
    Ctr,
    Gcm,
}

/// Encrypt or decrypt; fixed when the context is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
}

/// Where a context puts its output: appended to a vector, or into a caller's buffer after
/// what is already there. Writing into the caller's buffer saves allocating and copying the
/// output (for 4 KiB of AES-GCM, that was a tenth of the call).
#[derive(Debug)]
pub(crate) enum Out<'a> {
    /// Appended to the vector, which grows as needed.
    Vec(&'a mut Vec<u8>),
    /// Written into `buf` after its first `filled` bytes; never beyond its end.
    Slice {
        /// The buffer.
        buf: &'a mut [u8],
        /// Bytes already written.
        filled: usize,
    },
}

impl Out<'_> {
    /// Bytes written so far (for a vector: its length).
    pub(crate) fn len(&self) -> usize {
        match self {
            Out::Vec(v) => v.len(),
            Out::Slice { filled, .. } => *filled,
        }
    }

    /// Puts `data` after what is there; a buffer without room for it is left as it was.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), LibFailure> {
        match self {
            Out::Vec(v) => v.extend_from_slice(data),
            Out::Slice { buf, filled } => {
                let end = filled.checked_add(data.len()).ok_or(LibFailure)?;
                buf.get_mut(*filled..end)
                    .ok_or(LibFailure)?
                    .copy_from_slice(data);
                *filled = end;
            }
        }
        Ok(())
    }

    /// Where `n` more bytes may be written (uninitialised room, for a vector), or `None` if a
    /// buffer has less room left than that.
    fn room(&mut self, n: usize) -> Option<*mut u8> {
        match self {
            Out::Vec(v) => {
                v.reserve(n);
                Some(v.spare_capacity_mut().as_mut_ptr().cast())
            }
            Out::Slice { buf, filled } => {
                (buf.len() - *filled >= n).then(|| buf[*filled..].as_mut_ptr())
            }
        }
    }

    /// Counts `n` bytes written at the place [`Self::room`] gave.
    ///
    /// # Safety
    /// `n` is at most the room asked for, and that many bytes were initialised there.
    unsafe fn advance(&mut self, n: usize) {
        match self {
            Out::Vec(v) => {
                let len = v.len() + n;
                // SAFETY: the caller initialised `n` bytes of the reserved spare capacity.
                unsafe { v.set_len(len) }
            }
            Out::Slice { filled, .. } => *filled += n,
        }
    }
}

fn evp_cipher(mode: AesMode, key_len: usize) -> Result<*const sys::EVP_CIPHER, LibFailure> {
    // SAFETY: each EVP_aes_* accessor returns a pointer to a static table and cannot fail.
    let cipher = unsafe {
        match (mode, key_len) {
            (AesMode::Ecb, 16) => sys::EVP_aes_128_ecb(),
            (AesMode::Ecb, 24) => sys::EVP_aes_192_ecb(),
            (AesMode::Ecb, 32) => sys::EVP_aes_256_ecb(),
            (AesMode::Cbc, 16) => sys::EVP_aes_128_cbc(),
            (AesMode::Cbc, 24) => sys::EVP_aes_192_cbc(),
            (AesMode::Cbc, 32) => sys::EVP_aes_256_cbc(),
            (AesMode::Ctr, 16) => sys::EVP_aes_128_ctr(),
            (AesMode::Ctr, 24) => sys::EVP_aes_192_ctr(),
            (AesMode::Ctr, 32) => sys::EVP_aes_256_ctr(),
            (AesMode::Gcm, 16) => sys::EVP_aes_128_gcm(),
            (AesMode::Gcm, 24) => sys::EVP_aes_192_gcm(),
            (AesMode::Gcm, 32) => sys::EVP_aes_256_gcm(),
            _ => return Err(LibFailure),
        }
    };
    Ok(cipher)
}

/// A running AES computation. Its key schedule lives inside AWS-LC's context and is wiped by
/// `EVP_CIPHER_CTX_free` (which cleanses the cipher data) when this value drops.
pub(crate) struct CipherCtx {
    ctx: NonNull<sys::EVP_CIPHER_CTX>,
    mode: AesMode,
    direction: Direction,
}

// SAFETY: exclusively owned; AWS-LC cipher contexts have no thread affinity.
unsafe impl Send for CipherCtx {}
// SAFETY: `&CipherCtx` permits no mutation (all mutating methods take `&mut self`).
unsafe impl Sync for CipherCtx {}

impl CipherCtx {
    /// Sets up a context. `iv` is ignored for ECB; for GCM it may be any non-zero length.
    /// `padding` only matters for ECB/CBC (PKCS#7).
    pub(crate) fn new(
        mode: AesMode,
        direction: Direction,
        key: &[u8],
        iv: &[u8],
        padding: bool,
    ) -> Result<Self, LibFailure> {
        let cipher = evp_cipher(mode, key.len())?;
        match mode {
            AesMode::Ecb => {}
            AesMode::Cbc | AesMode::Ctr if iv.len() != 16 => return Err(LibFailure),
            AesMode::Gcm if iv.is_empty() => return Err(LibFailure),
            _ => {}
        }
        // SAFETY: no preconditions; null is handled.
        let ctx = NonNull::new(unsafe { sys::EVP_CIPHER_CTX_new() }).ok_or(LibFailure)?;
        let me = CipherCtx {
            ctx,
            mode,
            direction,
        };
        let enc: c_int = match direction {
            Direction::Encrypt => 1,
            Direction::Decrypt => 0,
        };
        if mode == AesMode::Gcm {
            let iv_len = c_int_len(iv.len())?;
            // SAFETY: ctx is valid; cipher is a static GCM table; key and IV are set later.
            check(unsafe {
                sys::EVP_CipherInit_ex(me.ctx.as_ptr(), cipher, null_mut(), null(), null(), enc)
            })?;
            // SAFETY: SET_IVLEN takes its argument by value and no pointer.
            check(unsafe {
                sys::EVP_CIPHER_CTX_ctrl(
                    me.ctx.as_ptr(),
                    sys::EVP_CTRL_GCM_SET_IVLEN,
                    iv_len,
                    null_mut(),
                )
            })?;
            // SAFETY: key length matches the cipher (checked by evp_cipher); iv has the length
            // just configured.
            check(unsafe {
                sys::EVP_CipherInit_ex(
                    me.ctx.as_ptr(),
                    null(),
                    null_mut(),
                    key.as_ptr(),
                    iv.as_ptr(),
                    enc,
                )
            })?;
        } else {
            let iv_ptr = if mode == AesMode::Ecb {
                null()
            } else {
                iv.as_ptr()
            };
            // SAFETY: key length matches the cipher; iv is 16 bytes for CBC/CTR, unused for ECB.
            check(unsafe {
                sys::EVP_CipherInit_ex(
                    me.ctx.as_ptr(),
                    cipher,
                    null_mut(),
                    key.as_ptr(),
                    iv_ptr,
                    enc,
                )
            })?;
            let pad = c_int::from(padding && matches!(mode, AesMode::Ecb | AesMode::Cbc));
            // SAFETY: ctx is initialised; set_padding only stores a flag.
            check(unsafe { sys::EVP_CIPHER_CTX_set_padding(me.ctx.as_ptr(), pad) })?;
        }
        Ok(me)
    }

    pub(crate) fn mode(&self) -> AesMode {
        self.mode
    }

    pub(crate) fn direction(&self) -> Direction {
        self.direction
    }

    /// Feeds additional authenticated data (GCM only, before any plaintext or ciphertext).
    pub(crate) fn aad(&mut self, aad: &[u8]) -> Result<(), LibFailure> {
        if self.mode != AesMode::Gcm {
            return Err(LibFailure);
        }
        for chunk in aad.chunks(1 << 30) {
            let mut out_len: c_int = 0;
            // SAFETY: a null output pointer tells GCM this is AAD; chunk fits in c_int.
            check(unsafe {
                sys::EVP_CipherUpdate(
                    self.ctx.as_ptr(),
                    null_mut(),
                    &mut out_len,
                    chunk.as_ptr(),
                    chunk.len() as c_int,
                )
            })?;
        }
        Ok(())
    }

    /// AWS-LC's block size for this context: 1 for the stream modes (CTR, GCM), 16 for ECB
    /// and CBC.
    fn block(&self) -> usize {
        // SAFETY: ctx is initialised; the call reads its cipher's table.
        let block = unsafe { sys::EVP_CIPHER_CTX_block_size(self.ctx.as_ptr()) } as usize;
        block.clamp(1, 16)
    }

    /// Processes `input`, putting whatever output is ready into `out`. Fails, writing nothing
    /// more, if `out` is a buffer without room for the output.
    pub(crate) fn update(&mut self, input: &[u8], out: &mut Out<'_>) -> Result<(), LibFailure> {
        // EVP_CipherUpdate may write up to `n + block - 1` bytes for `n` bytes in (AWS-LC's
        // contract, as OpenSSL's): ECB and CBC may release a block held back from before.
        let spare = self.block() - 1;
        for chunk in input.chunks(1 << 30) {
            let bound = chunk.len() + spare;
            // The room is not zero-filled first: AWS-LC writes the output there, and filling
            // 4 KiB only to overwrite it cost about 5% of an AES-GCM encryption.
            if let Some(at) = out.room(bound) {
                // SAFETY: `at` has room for `bound` bytes, the most the call writes.
                let n = unsafe { self.update_at(chunk, at, bound) }?;
                // SAFETY: update_at initialised `n ≤ bound` bytes at `at`.
                unsafe { out.advance(n) };
                continue;
            }
            // A caller's buffer sized to the exact output has less room than the bound: all
            // but the last two blocks' worth go straight into it (their bound fits, since the
            // exact output is at least `chunk.len() - spare`), the rest through a buffer of
            // our own.
            let head = chunk.len().saturating_sub(2 * spare);
            if head > 0 {
                let at = out.room(head + spare).ok_or(LibFailure)?;
                // SAFETY: as above, for the head's bound.
                let n = unsafe { self.update_at(&chunk[..head], at, head + spare) }?;
                // SAFETY: as above.
                unsafe { out.advance(n) };
            }
            let tail = &chunk[head..];
            let mut held = zeroize::Zeroizing::new([0u8; 64]);
            // SAFETY: the tail is at most 2 * spare = 30 bytes, so its bound (at most 45)
            // fits the 64 bytes of `held`.
            let n = unsafe { self.update_at(tail, held.as_mut_ptr(), tail.len() + spare) }?;
            out.extend_from_slice(&held[..n])?;
        }
        Ok(())
    }

    /// One `EVP_CipherUpdate` of `chunk` (at most 2^30 bytes) to `at`; the bytes written.
    ///
    /// # Safety
    /// `at` is valid for writes of `bound` bytes, and `bound` is at least
    /// `chunk.len() + block - 1`.
    unsafe fn update_at(
        &mut self,
        chunk: &[u8],
        at: *mut u8,
        bound: usize,
    ) -> Result<usize, LibFailure> {
        let mut out_len: c_int = 0;
        // SAFETY: `at` has `bound` writable bytes, the most EVP_CipherUpdate writes for this
        // chunk (by the caller's contract); chunk fits in c_int. Nothing reads that room
        // before the call fills it.
        let rc = unsafe {
            sys::EVP_CipherUpdate(
                self.ctx.as_ptr(),
                at,
                &mut out_len,
                chunk.as_ptr(),
                chunk.len() as c_int,
            )
        };
        if rc != 1 {
            return Err(LibFailure::take());
        }
        usize::try_from(out_len)
            .ok()
            .filter(|n| *n <= bound)
            .ok_or_else(LibFailure::take)
    }

    /// Finishes the operation, putting the last block (padding) into `out`. For GCM decryption
    /// the expected tag must have been set first; a mismatch is an error.
    pub(crate) fn finish(&mut self, out: &mut Out<'_>) -> Result<(), LibFailure> {
        // The final block goes through a block-sized buffer of our own, so the caller's
        // buffer needs room only for what is actually produced (nothing, for the stream modes).
        let mut last = zeroize::Zeroizing::new([0u8; 16]);
        let mut out_len: c_int = 0;
        // SAFETY: 16 writable bytes are the most a final AES block needs.
        let rc =
            unsafe { sys::EVP_CipherFinal_ex(self.ctx.as_ptr(), last.as_mut_ptr(), &mut out_len) };
        if rc != 1 {
            return Err(LibFailure::take());
        }
        let n = usize::try_from(out_len)
            .ok()
            .filter(|n| *n <= 16)
            .ok_or(LibFailure)?;
        out.extend_from_slice(&last[..n])
    }

    /// Puts the GCM tag after `finish` of an encryption, truncated to `len` bytes (1..=16),
    /// into `out`.
    pub(crate) fn gcm_tag(&mut self, len: usize, out: &mut Out<'_>) -> Result<(), LibFailure> {
        if self.mode != AesMode::Gcm || !(1..=16).contains(&len) {
            return Err(LibFailure);
        }
        let mut tag = [0u8; 16];
        // SAFETY: tag has 16 ≥ `len` writable bytes, as GET_TAG requires.
        check(unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                sys::EVP_CTRL_GCM_GET_TAG,
                len as c_int,
                tag.as_mut_ptr().cast(),
            )
        })?;
        out.extend_from_slice(&tag[..len])
    }

    /// Sets the tag a GCM decryption must match (before `finish`).
    pub(crate) fn gcm_set_expected_tag(&mut self, tag: &[u8]) -> Result<(), LibFailure> {
        if self.mode != AesMode::Gcm || !(1..=16).contains(&tag.len()) {
            return Err(LibFailure);
        }
        let mut copy = [0u8; 16];
        copy[..tag.len()].copy_from_slice(tag);
        // SAFETY: SET_TAG reads exactly `tag.len()` (≤ 16) bytes from the pointer.
        check(unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                sys::EVP_CTRL_GCM_SET_TAG,
                tag.len() as c_int,
                copy.as_mut_ptr().cast(),
            )
        })
    }

    /// A deep copy of the running state (PKCS#11 operation-state saving, speculative work).
    pub(crate) fn try_clone(&self) -> Result<Self, LibFailure> {
        // SAFETY: no preconditions; null is handled.
        let ctx = NonNull::new(unsafe { sys::EVP_CIPHER_CTX_new() }).ok_or(LibFailure)?;
        let copy = CipherCtx {
            ctx,
            mode: self.mode,
            direction: self.direction,
        };
        // SAFETY: both contexts are valid and the source is initialised.
        check(unsafe { sys::EVP_CIPHER_CTX_copy(copy.ctx.as_ptr(), self.ctx.as_ptr()) })?;
        Ok(copy)
    }
}

impl Drop for CipherCtx {
    fn drop(&mut self) {
        // SAFETY: ctx came from EVP_CIPHER_CTX_new and is freed once; free cleanses key data.
        unsafe { sys::EVP_CIPHER_CTX_free(self.ctx.as_ptr()) };
    }
}

impl std::fmt::Debug for CipherCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherCtx")
            .field("mode", &self.mode)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}
