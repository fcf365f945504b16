//! Big-number arithmetic on AWS-LC's `BIGNUM`, for generating RSA keys from our own DRBG.
//!
//! Values are wiped when freed (`BN_clear_free`). Only the operations RSA key generation needs
//! are wrapped; each returns an owned result.

use super::{LibFailure, check};
use aws_lc_sys as sys;
use std::cmp::Ordering;
use std::ptr::{NonNull, null_mut};
use zeroize::Zeroizing;

/// An owned big number, wiped on drop.
pub(crate) struct BigNum(NonNull<sys::BIGNUM>);

impl Drop for BigNum {
    fn drop(&mut self) {
        // SAFETY: we own the BIGNUM and free it exactly once; clear_free wipes it first.
        unsafe { sys::BN_clear_free(self.0.as_ptr()) };
    }
}

impl BigNum {
    fn fresh() -> Result<Self, LibFailure> {
        // SAFETY: no preconditions.
        NonNull::new(unsafe { sys::BN_new() })
            .map(BigNum)
            .ok_or(LibFailure)
    }

    /// From big-endian bytes.
    pub(crate) fn from_be(bytes: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: bytes is a valid slice; a null `ret` asks for a fresh BIGNUM.
        let raw = unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), null_mut()) };
        NonNull::new(raw).map(BigNum).ok_or(LibFailure)
    }

    /// From a machine word.
    pub(crate) fn from_u64(v: u64) -> Result<Self, LibFailure> {
        let n = Self::fresh()?;
        // SAFETY: n is a valid BIGNUM we own.
        check(unsafe { sys::BN_set_u64(n.0.as_ptr(), v) })?;
        Ok(n)
    }

    fn ptr(&self) -> *const sys::BIGNUM {
        self.0.as_ptr()
    }

    /// Big-endian bytes, left-padded to `len` (fails if the number is longer).
    pub(crate) fn to_be(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        // SAFETY: out has `len` writable bytes; the call fails rather than overflow.
        check(unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), len, self.ptr()) })?;
        Ok(out)
    }

    /// Big-endian bytes without leading zeros.
    pub(crate) fn to_be_minimal(&self) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        // SAFETY: self is a valid BIGNUM.
        let len = unsafe { sys::BN_num_bytes(self.ptr()) } as usize;
        self.to_be(len)
    }

    /// Size in bits.
    pub(crate) fn bits(&self) -> usize {
        // SAFETY: self is a valid BIGNUM.
        unsafe { sys::BN_num_bits(self.ptr()) as usize }
    }

    /// `self mod w` for a word `w` > 0.
    pub(crate) fn mod_word(&self, w: u64) -> Result<u64, LibFailure> {
        if w == 0 {
            return Err(LibFailure);
        }
        // SAFETY: self is a valid BIGNUM; w is non-zero.
        let r = unsafe { sys::BN_mod_word(self.ptr(), w) };
        if r == u64::MAX {
            return Err(LibFailure::take());
        }
        Ok(r)
    }

    /// Compares absolute values.
    pub(crate) fn cmp_abs(&self, other: &BigNum) -> Ordering {
        // SAFETY: both are valid BIGNUMs.
        unsafe { sys::BN_ucmp(self.ptr(), other.ptr()) }.cmp(&0)
    }

    /// `self - w`.
    pub(crate) fn minus_word(&self, w: u64) -> Result<BigNum, LibFailure> {
        let out = self.duplicate()?;
        // SAFETY: out is a valid BIGNUM we own.
        check(unsafe { sys::BN_sub_word(out.0.as_ptr(), w) })?;
        Ok(out)
    }

    /// `2^n`.
    pub(crate) fn power_of_two(n: usize) -> Result<BigNum, LibFailure> {
        let one = Self::from_u64(1)?;
        let out = Self::fresh()?;
        let n = i32::try_from(n).map_err(|_| LibFailure)?;
        // SAFETY: both valid; out is ours to write.
        check(unsafe { sys::BN_lshift(out.0.as_ptr(), one.ptr(), n) })?;
        Ok(out)
    }

    fn duplicate(&self) -> Result<BigNum, LibFailure> {
        let out = Self::fresh()?;
        // SAFETY: both valid; BN_copy returns null on failure.
        if unsafe { sys::BN_copy(out.0.as_ptr(), self.ptr()) }.is_null() {
            return Err(LibFailure::take());
        }
        Ok(out)
    }
}

/// Scratch space for the arithmetic.
pub(crate) struct BnCtx(NonNull<sys::BN_CTX>);

impl Drop for BnCtx {
    fn drop(&mut self) {
        // SAFETY: owned context, freed once.
        unsafe { sys::BN_CTX_free(self.0.as_ptr()) };
    }
}

impl BnCtx {
    /// A fresh context.
    pub(crate) fn new() -> Result<Self, LibFailure> {
        // SAFETY: no preconditions.
        NonNull::new(unsafe { sys::BN_CTX_new() })
            .map(BnCtx)
            .ok_or(LibFailure)
    }

    /// `a * b`.
    pub(crate) fn mul(&self, a: &BigNum, b: &BigNum) -> Result<BigNum, LibFailure> {
        let out = BigNum::fresh()?;
        // SAFETY: all valid; out is distinct from the inputs.
        check(unsafe { sys::BN_mul(out.0.as_ptr(), a.ptr(), b.ptr(), self.0.as_ptr()) })?;
        Ok(out)
    }

    /// `|a - b|`.
    pub(crate) fn abs_diff(&self, a: &BigNum, b: &BigNum) -> Result<BigNum, LibFailure> {
        let (big, small) = if a.cmp_abs(b) == Ordering::Less {
            (b, a)
        } else {
            (a, b)
        };
        let out = BigNum::fresh()?;
        // SAFETY: all valid; big >= small so the unsigned subtraction cannot fail on sign.
        check(unsafe { sys::BN_sub(out.0.as_ptr(), big.ptr(), small.ptr()) })?;
        Ok(out)
    }

    /// `gcd(a, b)`.
    pub(crate) fn gcd(&self, a: &BigNum, b: &BigNum) -> Result<BigNum, LibFailure> {
        let out = BigNum::fresh()?;
        // SAFETY: all valid.
        check(unsafe { sys::BN_gcd(out.0.as_ptr(), a.ptr(), b.ptr(), self.0.as_ptr()) })?;
        Ok(out)
    }

    /// `(a / b, a mod b)`.
    pub(crate) fn div_rem(&self, a: &BigNum, b: &BigNum) -> Result<(BigNum, BigNum), LibFailure> {
        let q = BigNum::fresh()?;
        let r = BigNum::fresh()?;
        // SAFETY: all valid; q and r are distinct fresh outputs.
        check(unsafe {
            sys::BN_div(
                q.0.as_ptr(),
                r.0.as_ptr(),
                a.ptr(),
                b.ptr(),
                self.0.as_ptr(),
            )
        })?;
        Ok((q, r))
    }

    /// `a^-1 mod n`, if it exists.
    pub(crate) fn mod_inverse(&self, a: &BigNum, n: &BigNum) -> Result<BigNum, LibFailure> {
        let out = BigNum::fresh()?;
        // SAFETY: all valid; the call writes into `out` and returns it, or null on failure.
        let r = unsafe { sys::BN_mod_inverse(out.0.as_ptr(), a.ptr(), n.ptr(), self.0.as_ptr()) };
        if r.is_null() {
            return Err(LibFailure::take());
        }
        Ok(out)
    }

    /// Whether `a` is probably prime: trial division, then Miller-Rabin with the number of
    /// rounds FIPS 186-5 Table B.1 requires for its size (AWS-LC's
    /// `BN_prime_checks_for_generation`).
    pub(crate) fn is_probably_prime(&self, a: &BigNum) -> Result<bool, LibFailure> {
        let mut verdict = 0;
        // SAFETY: all valid; verdict is a writable int; a null callback is allowed.
        check(unsafe {
            sys::BN_primality_test(
                &mut verdict,
                a.ptr(),
                sys::BN_prime_checks_for_generation,
                self.0.as_ptr(),
                1,
                null_mut(),
            )
        })?;
        Ok(verdict == 1)
    }
}
