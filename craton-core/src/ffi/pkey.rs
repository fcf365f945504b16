//! Asymmetric keys as AWS-LC `EVP_PKEY`s: RSA, NIST-curve EC, ML-KEM and ML-DSA.
//!
//! One representation per key serves every PKCS#11 mechanism on it: PKCS#1 v1.5 and PSS with
//! any hash, raw RSA, OAEP with any hash/MGF pairing and a label, ECDSA over a caller's
//! digest, ECDH, and the post-quantum schemes from their seeds and with context strings.

use super::{LibFailure, check, sys};
use std::os::raw::c_int;
use std::ptr::{NonNull, null, null_mut};
use zeroize::Zeroizing;

/// Hash functions that can parameterise a signature or OAEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Md {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

fn evp_md(md: Md) -> *const sys::EVP_MD {
    // SAFETY: each accessor returns a pointer to a static table.
    unsafe {
        match md {
            Md::Sha1 => sys::EVP_sha1(),
            Md::Sha224 => sys::EVP_sha224(),
            Md::Sha256 => sys::EVP_sha256(),
            Md::Sha384 => sys::EVP_sha384(),
            Md::Sha512 => sys::EVP_sha512(),
            Md::Sha3_224 => sys::EVP_sha3_224(),
            Md::Sha3_256 => sys::EVP_sha3_256(),
            Md::Sha3_384 => sys::EVP_sha3_384(),
            Md::Sha3_512 => sys::EVP_sha3_512(),
        }
    }
}

/// RSA signature paddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaSignPadding {
    /// EMSA-PKCS1-v1_5. With `md`, the input is that hash's digest and AWS-LC adds the
    /// DigestInfo; without, the input is the caller's complete DigestInfo (`CKM_RSA_PKCS`).
    Pkcs1 { md: Option<Md> },
    /// EMSA-PSS over a digest of `md`.
    Pss { md: Md, mgf1: Md, salt_len: usize },
    /// No padding: the input, left-padded to the modulus size, is exponentiated as is.
    Raw,
}

/// RSA encryption paddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaCryptPadding<'a> {
    Pkcs1,
    Oaep { md: Md, mgf1: Md, label: &'a [u8] },
    Raw,
}

/// RSA key components, big-endian without leading zeros. Private parts are wiped on drop.
#[derive(Default)]
pub(crate) struct RsaParts {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: Option<Zeroizing<Vec<u8>>>,
    pub p: Option<Zeroizing<Vec<u8>>>,
    pub q: Option<Zeroizing<Vec<u8>>>,
    pub dp: Option<Zeroizing<Vec<u8>>>,
    pub dq: Option<Zeroizing<Vec<u8>>>,
    pub qinv: Option<Zeroizing<Vec<u8>>>,
}

/// An owned BIGNUM, cleared on drop.
struct Bn(NonNull<sys::BIGNUM>);

impl Bn {
    fn from_be(bytes: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: bytes is a valid slice; a null `ret` asks for a fresh BIGNUM.
        let raw = unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), null_mut()) };
        NonNull::new(raw).map(Bn).ok_or(LibFailure)
    }

    /// Gives up ownership (to a setter that takes it).
    fn into_raw(self) -> *mut sys::BIGNUM {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }
}

impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: owned BIGNUM, freed once; clear_free wipes it first.
        unsafe { sys::BN_clear_free(self.0.as_ptr()) };
    }
}

/// Big-endian bytes of a BIGNUM, left-padded to `min_len`.
fn bn_to_be(bn: *const sys::BIGNUM, min_len: usize) -> Result<Vec<u8>, LibFailure> {
    if bn.is_null() {
        return Err(LibFailure);
    }
    // SAFETY: bn is a valid BIGNUM owned by a live key.
    let natural = unsafe { sys::BN_num_bytes(bn) } as usize;
    let len = natural.max(min_len);
    let mut out = vec![0u8; len];
    // SAFETY: out has `len` bytes, at least the number's size.
    check(unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), len, bn) })?;
    Ok(out)
}

fn bn_to_be_secret(
    bn: *const sys::BIGNUM,
    min_len: usize,
) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
    bn_to_be(bn, min_len).map(Zeroizing::new)
}

/// An `EVP_PKEY_CTX`, freed on drop.
struct PkeyCtx(NonNull<sys::EVP_PKEY_CTX>);

impl PkeyCtx {
    fn for_key(key: &Pkey) -> Result<Self, LibFailure> {
        // SAFETY: the key is valid; the context takes its own reference to it.
        let raw = unsafe { sys::EVP_PKEY_CTX_new(key.0.as_ptr(), null_mut()) };
        NonNull::new(raw).map(PkeyCtx).ok_or(LibFailure)
    }

    fn for_type(id: c_int) -> Result<Self, LibFailure> {
        // SAFETY: creates a context for a key type; no key involved.
        let raw = unsafe { sys::EVP_PKEY_CTX_new_id(id, null_mut()) };
        NonNull::new(raw).map(PkeyCtx).ok_or(LibFailure)
    }

    fn ptr(&self) -> *mut sys::EVP_PKEY_CTX {
        self.0.as_ptr()
    }

    // The setters below only store a value in an initialised RSA operation context; `md`
    // pointers are AWS-LC's static tables. AWS-LC rejects a setter that does not fit the
    // context's key or operation, which surfaces as `LibFailure`.

    fn rsa_padding(&self, padding: c_int) -> Result<(), LibFailure> {
        // SAFETY: see the note above; the context is valid while self lives.
        check(unsafe { sys::EVP_PKEY_CTX_set_rsa_padding(self.ptr(), padding) })
    }

    fn signature_md(&self, md: Md) -> Result<(), LibFailure> {
        // SAFETY: see the note above.
        check(unsafe { sys::EVP_PKEY_CTX_set_signature_md(self.ptr(), evp_md(md)) })
    }

    fn mgf1_md(&self, md: Md) -> Result<(), LibFailure> {
        // SAFETY: see the note above.
        check(unsafe { sys::EVP_PKEY_CTX_set_rsa_mgf1_md(self.ptr(), evp_md(md)) })
    }

    fn oaep_md(&self, md: Md) -> Result<(), LibFailure> {
        // SAFETY: see the note above.
        check(unsafe { sys::EVP_PKEY_CTX_set_rsa_oaep_md(self.ptr(), evp_md(md)) })
    }

    fn pss_salt_len(&self, salt_len: usize) -> Result<(), LibFailure> {
        let salt = c_int::try_from(salt_len).map_err(|_| LibFailure)?;
        // SAFETY: see the note above.
        check(unsafe { sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(self.ptr(), salt) })
    }

    /// Sets the OAEP label; AWS-LC takes ownership of an `OPENSSL_malloc`ed copy.
    fn oaep_label(&self, label: &[u8]) -> Result<(), LibFailure> {
        if label.is_empty() {
            return Ok(());
        }
        // SAFETY: allocating label.len() bytes; null is handled.
        let copy = unsafe { sys::OPENSSL_malloc(label.len()) }.cast::<u8>();
        if copy.is_null() {
            return Err(LibFailure);
        }
        // SAFETY: copy has label.len() writable bytes; the regions do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(label.as_ptr(), copy, label.len()) };
        // SAFETY: on success set0 takes ownership of `copy`.
        let rc = unsafe { sys::EVP_PKEY_CTX_set0_rsa_oaep_label(self.ptr(), copy, label.len()) };
        if rc != 1 {
            // SAFETY: on failure ownership stayed with us; free it once.
            unsafe { sys::OPENSSL_free(copy.cast()) };
            return Err(LibFailure::take());
        }
        Ok(())
    }
}

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: owned context, freed once.
        unsafe { sys::EVP_PKEY_CTX_free(self.0.as_ptr()) };
    }
}

/// An asymmetric key held by AWS-LC. Private key material lives in AWS-LC's heap and is
/// cleansed by AWS-LC when the last reference is freed.
pub(crate) struct Pkey(NonNull<sys::EVP_PKEY>);

// SAFETY: EVP_PKEY is reference counted with atomic counts, and every operation here uses a
// fresh per-call EVP_PKEY_CTX; AWS-LC documents concurrent non-mutating use as safe.
unsafe impl Send for Pkey {}
// SAFETY: as above; no method mutates the key after construction.
unsafe impl Sync for Pkey {}

impl Clone for Pkey {
    fn clone(&self) -> Self {
        // SAFETY: taking another reference to a live key.
        unsafe { sys::EVP_PKEY_up_ref(self.0.as_ptr()) };
        Pkey(self.0)
    }
}

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: releases the reference this value owns.
        unsafe { sys::EVP_PKEY_free(self.0.as_ptr()) };
    }
}

impl std::fmt::Debug for Pkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pkey { .. }")
    }
}

fn new_pkey() -> Result<NonNull<sys::EVP_PKEY>, LibFailure> {
    // SAFETY: no preconditions.
    NonNull::new(unsafe { sys::EVP_PKEY_new() }).ok_or(LibFailure)
}

/// Runs the two-call length query then the real call of an AWS-LC output function.
fn two_call(mut f: impl FnMut(*mut u8, &mut usize) -> c_int) -> Result<Vec<u8>, LibFailure> {
    let mut len = 0usize;
    check(f(null_mut(), &mut len))?;
    let mut out = vec![0u8; len];
    check(f(out.as_mut_ptr(), &mut len))?;
    out.truncate(len);
    Ok(out)
}

/// The algorithm of a key parsed from PKCS#8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pkcs8Kind {
    /// RSA.
    Rsa,
    /// EC on the curve with this NID.
    Ec(c_int),
}

impl Pkey {
    // ----- PKCS#8 ----------------------------------------------------------------------

    /// The private key as a DER PKCS#8 PrivateKeyInfo (RFC 5208), for key wrapping.
    pub(crate) fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        // SAFETY: CBB is plain data; all-zero is the state CBB_init expects to overwrite.
        let mut cbb: sys::CBB = unsafe { std::mem::zeroed() };
        // SAFETY: cbb is writable; 0 asks for a growing heap buffer.
        check(unsafe { sys::CBB_init(&mut cbb, 0) })?;
        // SAFETY: cbb is initialised; the key is valid for reading.
        let rc = unsafe { sys::EVP_marshal_private_key(&mut cbb, self.0.as_ptr()) };
        let mut data: *mut u8 = null_mut();
        let mut len = 0usize;
        // SAFETY: on success CBB_finish hands us the buffer (to free with OPENSSL_free) and
        // leaves nothing to clean up; on failure CBB_cleanup releases the partial buffer.
        let finished = rc == 1 && unsafe { sys::CBB_finish(&mut cbb, &mut data, &mut len) } == 1;
        if !finished {
            // SAFETY: cbb was initialised and not finished.
            unsafe { sys::CBB_cleanup(&mut cbb) };
            return Err(LibFailure::take());
        }
        // SAFETY: data points to `len` bytes owned by us until freed below.
        let out = Zeroizing::new(unsafe { std::slice::from_raw_parts(data, len) }.to_vec());
        // SAFETY: the buffer holds key material: wipe, then free it once.
        unsafe {
            sys::OPENSSL_cleanse(data.cast(), len);
            sys::OPENSSL_free(data.cast());
        }
        Ok(out)
    }

    /// Parses a DER PKCS#8 PrivateKeyInfo holding an RSA or EC key; trailing bytes are refused.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<(Self, Pkcs8Kind), LibFailure> {
        // SAFETY: CBS is plain data; CBS_init sets every field.
        let mut cbs: sys::CBS = unsafe { std::mem::zeroed() };
        // SAFETY: der outlives cbs's use below.
        unsafe { sys::CBS_init(&mut cbs, der.as_ptr(), der.len()) };
        // SAFETY: cbs is initialised over valid bytes.
        let raw = unsafe { sys::EVP_parse_private_key(&mut cbs) };
        let key = Pkey(NonNull::new(raw).ok_or_else(LibFailure::take)?);
        // SAFETY: cbs is still valid.
        if unsafe { sys::CBS_len(&cbs) } != 0 {
            return Err(LibFailure);
        }
        // SAFETY: the key is valid.
        let kind = match unsafe { sys::EVP_PKEY_id(key.0.as_ptr()) } {
            sys::EVP_PKEY_RSA => Pkcs8Kind::Rsa,
            sys::EVP_PKEY_EC => {
                let ec = key.ec()?;
                // SAFETY: borrowed group of a valid key.
                let nid = unsafe { sys::EC_GROUP_get_curve_name(sys::EC_KEY_get0_group(ec)) };
                Pkcs8Kind::Ec(nid)
            }
            _ => return Err(LibFailure),
        };
        Ok((key, kind))
    }

    // ----- RSA -------------------------------------------------------------------------

    fn adopt_rsa(rsa: *mut sys::RSA) -> Result<Self, LibFailure> {
        let pkey = match new_pkey() {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: rsa is still owned by us.
                unsafe { sys::RSA_free(rsa) };
                return Err(e);
            }
        };
        // SAFETY: assign takes ownership of rsa on success.
        if unsafe { sys::EVP_PKEY_assign_RSA(pkey.as_ptr(), rsa) } != 1 {
            // SAFETY: on failure ownership stayed with us; free both.
            unsafe {
                sys::RSA_free(rsa);
                sys::EVP_PKEY_free(pkey.as_ptr());
            }
            return Err(LibFailure::take());
        }
        Ok(Pkey(pkey))
    }

    /// Builds an RSA key from components. A private key needs `d`; when the CRT values are
    /// given, all five must be, and the key is checked for consistency.
    pub(crate) fn rsa_from_parts(parts: &RsaParts) -> Result<Self, LibFailure> {
        if parts.n.is_empty() || parts.e.is_empty() {
            return Err(LibFailure);
        }
        // SAFETY: no preconditions.
        let rsa = unsafe { sys::RSA_new() };
        if rsa.is_null() {
            return Err(LibFailure);
        }
        let built = (|| -> Result<(), LibFailure> {
            let n = Bn::from_be(&parts.n)?;
            let e = Bn::from_be(&parts.e)?;
            let d = parts.d.as_ref().map(|d| Bn::from_be(d)).transpose()?;
            let d_raw = d.map_or(null_mut(), Bn::into_raw);
            // SAFETY: rsa is fresh; set0_key takes ownership of the three BIGNUMs on success.
            let rc = unsafe { sys::RSA_set0_key(rsa, n.into_raw(), e.into_raw(), d_raw) };
            check(rc)?;
            let crt = [&parts.p, &parts.q, &parts.dp, &parts.dq, &parts.qinv];
            let given = crt.iter().filter(|c| c.is_some()).count();
            if given == 5 {
                let [p, q, dp, dq, qinv] = crt.map(|c| c.as_ref().map(|v| Bn::from_be(v)));
                let (p, q) = (p.ok_or(LibFailure)??, q.ok_or(LibFailure)??);
                // SAFETY: takes ownership of p and q.
                check(unsafe { sys::RSA_set0_factors(rsa, p.into_raw(), q.into_raw()) })?;
                let (dp, dq, qinv) = (
                    dp.ok_or(LibFailure)??,
                    dq.ok_or(LibFailure)??,
                    qinv.ok_or(LibFailure)??,
                );
                // SAFETY: takes ownership of the three CRT values.
                check(unsafe {
                    sys::RSA_set0_crt_params(rsa, dp.into_raw(), dq.into_raw(), qinv.into_raw())
                })?;
                // SAFETY: rsa is a complete private key.
                check(unsafe { sys::RSA_check_key(rsa) })?;
            } else if given != 0 {
                return Err(LibFailure);
            }
            Ok(())
        })();
        if let Err(e) = built {
            // SAFETY: rsa is owned here.
            unsafe { sys::RSA_free(rsa) };
            return Err(e);
        }
        Self::adopt_rsa(rsa)
    }

    fn rsa(&self) -> Result<*const sys::RSA, LibFailure> {
        // SAFETY: get0 borrows the key's RSA without changing the refcount.
        let rsa = unsafe { sys::EVP_PKEY_get0_RSA(self.0.as_ptr()) };
        if rsa.is_null() {
            Err(LibFailure)
        } else {
            Ok(rsa)
        }
    }

    /// Modulus length in bits.
    pub(crate) fn rsa_bits(&self) -> Result<usize, LibFailure> {
        let rsa = self.rsa()?;
        // SAFETY: rsa is valid while self is.
        Ok(unsafe { sys::RSA_bits(rsa) } as usize)
    }

    /// Whether this RSA key carries its private exponent.
    pub(crate) fn rsa_is_private(&self) -> Result<bool, LibFailure> {
        let rsa = self.rsa()?;
        let mut d: *const sys::BIGNUM = null();
        // SAFETY: out-pointers may be null except the one we read.
        unsafe { sys::RSA_get0_key(rsa, null_mut(), null_mut(), &mut d) };
        Ok(!d.is_null())
    }

    /// The components (private ones only if `with_private`).
    pub(crate) fn rsa_parts(&self, with_private: bool) -> Result<RsaParts, LibFailure> {
        let rsa = self.rsa()?;
        let (mut n, mut e, mut d) = (null(), null(), null());
        let (mut p, mut q) = (null(), null());
        let (mut dp, mut dq, mut qinv) = (null(), null(), null());
        // SAFETY: rsa is valid; the getters fill borrowed pointers (null when absent).
        unsafe {
            sys::RSA_get0_key(rsa, &mut n, &mut e, &mut d);
            sys::RSA_get0_factors(rsa, &mut p, &mut q);
            sys::RSA_get0_crt_params(rsa, &mut dp, &mut dq, &mut qinv);
        }
        let mut parts = RsaParts {
            n: bn_to_be(n, 0)?,
            e: bn_to_be(e, 0)?,
            ..RsaParts::default()
        };
        if with_private {
            let opt = |bn: *const sys::BIGNUM| -> Result<Option<Zeroizing<Vec<u8>>>, LibFailure> {
                if bn.is_null() {
                    Ok(None)
                } else {
                    bn_to_be_secret(bn, 0).map(Some)
                }
            };
            parts.d = opt(d)?;
            parts.p = opt(p)?;
            parts.q = opt(q)?;
            parts.dp = opt(dp)?;
            parts.dq = opt(dq)?;
            parts.qinv = opt(qinv)?;
        }
        Ok(parts)
    }

    fn rsa_modulus_len(&self) -> Result<usize, LibFailure> {
        let rsa = self.rsa()?;
        // SAFETY: rsa is valid.
        Ok(unsafe { sys::RSA_size(rsa) } as usize)
    }

    fn set_sign_padding(ctx: &PkeyCtx, padding: RsaSignPadding) -> Result<(), LibFailure> {
        match padding {
            RsaSignPadding::Pkcs1 { md } => {
                ctx.rsa_padding(sys::RSA_PKCS1_PADDING)?;
                if let Some(md) = md {
                    ctx.signature_md(md)?;
                }
            }
            RsaSignPadding::Pss { md, mgf1, salt_len } => {
                ctx.rsa_padding(sys::RSA_PKCS1_PSS_PADDING)?;
                ctx.signature_md(md)?;
                ctx.mgf1_md(mgf1)?;
                ctx.pss_salt_len(salt_len)?;
            }
            RsaSignPadding::Raw => ctx.rsa_padding(sys::RSA_NO_PADDING)?,
        }
        Ok(())
    }

    fn left_pad(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        let k = self.rsa_modulus_len()?;
        if input.len() > k {
            return Err(LibFailure);
        }
        let mut block = Zeroizing::new(vec![0u8; k]);
        block[k - input.len()..].copy_from_slice(input);
        Ok(block)
    }

    /// Signs `input` (a digest, a DigestInfo, or a raw block, per `padding`).
    pub(crate) fn rsa_sign(
        &self,
        padding: RsaSignPadding,
        input: &[u8],
    ) -> Result<Vec<u8>, LibFailure> {
        let padded;
        let input = if padding == RsaSignPadding::Raw {
            padded = self.left_pad(input)?;
            &padded[..]
        } else {
            input
        };
        let ctx = PkeyCtx::for_key(self)?;
        // SAFETY: ctx is a fresh context for this key.
        check(unsafe { sys::EVP_PKEY_sign_init(ctx.ptr()) })?;
        Self::set_sign_padding(&ctx, padding)?;
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe {
            sys::EVP_PKEY_sign(ctx.ptr(), out, len, input.as_ptr(), input.len())
        })
    }

    /// Verifies an RSA signature; `Ok(false)` for a signature that does not match.
    pub(crate) fn rsa_verify(
        &self,
        padding: RsaSignPadding,
        input: &[u8],
        sig: &[u8],
    ) -> Result<bool, LibFailure> {
        if padding == RsaSignPadding::Raw {
            let recovered = match self.rsa_recover(RsaSignPadding::Raw, sig) {
                Ok(r) => r,
                Err(_) => return Ok(false),
            };
            let expected = match self.left_pad(input) {
                Ok(e) => e,
                Err(_) => return Ok(false),
            };
            return Ok(
                aws_lc_rs::constant_time::verify_slices_are_equal(&recovered, &expected).is_ok(),
            );
        }
        let ctx = PkeyCtx::for_key(self)?;
        // SAFETY: ctx is a fresh context for this key.
        check(unsafe { sys::EVP_PKEY_verify_init(ctx.ptr()) })?;
        Self::set_sign_padding(&ctx, padding)?;
        // SAFETY: sig and input are valid slices.
        let rc = unsafe {
            sys::EVP_PKEY_verify(
                ctx.ptr(),
                sig.as_ptr(),
                sig.len(),
                input.as_ptr(),
                input.len(),
            )
        };
        if rc == 1 {
            Ok(true)
        } else {
            LibFailure::take();
            Ok(false)
        }
    }

    /// Recovers the signed data (PKCS#1 v1.5 without a hash: the DigestInfo; raw: the block).
    pub(crate) fn rsa_recover(
        &self,
        padding: RsaSignPadding,
        sig: &[u8],
    ) -> Result<Vec<u8>, LibFailure> {
        if !matches!(
            padding,
            RsaSignPadding::Raw | RsaSignPadding::Pkcs1 { md: None }
        ) {
            return Err(LibFailure);
        }
        if sig.len() != self.rsa_modulus_len()? {
            return Err(LibFailure);
        }
        let ctx = PkeyCtx::for_key(self)?;
        // SAFETY: ctx is a fresh context for this key.
        check(unsafe { sys::EVP_PKEY_verify_recover_init(ctx.ptr()) })?;
        Self::set_sign_padding(&ctx, padding)?;
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe {
            sys::EVP_PKEY_verify_recover(ctx.ptr(), out, len, sig.as_ptr(), sig.len())
        })
    }

    fn set_crypt_padding(ctx: &PkeyCtx, padding: RsaCryptPadding<'_>) -> Result<(), LibFailure> {
        match padding {
            RsaCryptPadding::Pkcs1 => ctx.rsa_padding(sys::RSA_PKCS1_PADDING),
            RsaCryptPadding::Raw => ctx.rsa_padding(sys::RSA_NO_PADDING),
            RsaCryptPadding::Oaep { md, mgf1, label } => {
                ctx.rsa_padding(sys::RSA_PKCS1_OAEP_PADDING)?;
                ctx.oaep_md(md)?;
                ctx.mgf1_md(mgf1)?;
                ctx.oaep_label(label)
            }
        }
    }

    pub(crate) fn rsa_encrypt(
        &self,
        padding: RsaCryptPadding<'_>,
        input: &[u8],
    ) -> Result<Vec<u8>, LibFailure> {
        let padded;
        let input = if padding == RsaCryptPadding::Raw {
            padded = self.left_pad(input)?;
            &padded[..]
        } else {
            input
        };
        let ctx = PkeyCtx::for_key(self)?;
        // SAFETY: ctx is a fresh context for this key.
        check(unsafe { sys::EVP_PKEY_encrypt_init(ctx.ptr()) })?;
        Self::set_crypt_padding(&ctx, padding)?;
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe {
            sys::EVP_PKEY_encrypt(ctx.ptr(), out, len, input.as_ptr(), input.len())
        })
    }

    pub(crate) fn rsa_decrypt(
        &self,
        padding: RsaCryptPadding<'_>,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        if input.len() != self.rsa_modulus_len()? {
            return Err(LibFailure);
        }
        let ctx = PkeyCtx::for_key(self)?;
        // SAFETY: ctx is a fresh context for this key.
        check(unsafe { sys::EVP_PKEY_decrypt_init(ctx.ptr()) })?;
        Self::set_crypt_padding(&ctx, padding)?;
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe {
            sys::EVP_PKEY_decrypt(ctx.ptr(), out, len, input.as_ptr(), input.len())
        })
        .map(Zeroizing::new)
    }

    // ----- EC (NIST curves) ------------------------------------------------------------

    fn adopt_ec(ec: *mut sys::EC_KEY) -> Result<Self, LibFailure> {
        let pkey = match new_pkey() {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: ec is still ours.
                unsafe { sys::EC_KEY_free(ec) };
                return Err(e);
            }
        };
        // SAFETY: assign takes ownership of ec on success.
        if unsafe { sys::EVP_PKEY_assign_EC_KEY(pkey.as_ptr(), ec) } != 1 {
            // SAFETY: on failure ownership stayed with us.
            unsafe {
                sys::EC_KEY_free(ec);
                sys::EVP_PKEY_free(pkey.as_ptr());
            }
            return Err(LibFailure::take());
        }
        Ok(Pkey(pkey))
    }

    /// A private EC key from its scalar (big-endian). Rejects 0 and values ≥ the order; the
    /// public point is computed.
    pub(crate) fn ec_from_private(nid: c_int, scalar: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: no preconditions; unknown nids return null.
        let ec = unsafe { sys::EC_KEY_new_by_curve_name(nid) };
        if ec.is_null() {
            return Err(LibFailure);
        }
        let built = (|| -> Result<(), LibFailure> {
            let d = Bn::from_be(scalar)?;
            // SAFETY: ec is valid; set_private_key copies d and rejects out-of-range scalars.
            check(unsafe { sys::EC_KEY_set_private_key(ec, d.0.as_ptr()) })?;
            // SAFETY: group belongs to ec.
            let group = unsafe { sys::EC_KEY_get0_group(ec) };
            // SAFETY: group is valid.
            let point = unsafe { sys::EC_POINT_new(group) };
            if point.is_null() {
                return Err(LibFailure);
            }
            // SAFETY: computes d·G into point; all pointers valid, optional ones null.
            let mut rc = unsafe {
                sys::EC_POINT_mul(group, point, d.0.as_ptr(), null(), null(), null_mut())
            };
            // SAFETY: group and point are valid. With 0 < d < n, d·G is never the point at
            // infinity; refusing it anyway keeps a faulty multiplication out of the key.
            if rc == 1 && unsafe { sys::EC_POINT_is_at_infinity(group, point) } != 0 {
                rc = 0;
            }
            // SAFETY: set_public_key copies the point.
            let rc2 = if rc == 1 {
                // SAFETY: set_public_key copies the point into ec.
                unsafe { sys::EC_KEY_set_public_key(ec, point) }
            } else {
                0
            };
            // SAFETY: point is ours to free.
            unsafe { sys::EC_POINT_free(point) };
            check(rc)?;
            check(rc2)
            // No EC_KEY_check_key: it would compute d·G a second time only to compare it with
            // the point just computed from d (a tenth of a key generation's time). The point
            // lies on the curve by construction, and generated pairs pass their pairwise
            // consistency test (a signature verified with this point) before use.
        })();
        if let Err(e) = built {
            // SAFETY: ec is owned here.
            unsafe { sys::EC_KEY_free(ec) };
            return Err(e);
        }
        Self::adopt_ec(ec)
    }

    /// A public EC key from an encoded point (uncompressed or compressed); the point must be
    /// on the curve and not the point at infinity.
    pub(crate) fn ec_from_public(nid: c_int, point_bytes: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: no preconditions; unknown nids return null.
        let ec = unsafe { sys::EC_KEY_new_by_curve_name(nid) };
        if ec.is_null() {
            return Err(LibFailure);
        }
        let built = (|| -> Result<(), LibFailure> {
            // SAFETY: group belongs to ec.
            let group = unsafe { sys::EC_KEY_get0_group(ec) };
            // SAFETY: group is valid.
            let point = unsafe { sys::EC_POINT_new(group) };
            if point.is_null() {
                return Err(LibFailure);
            }
            // SAFETY: decodes point_bytes into point, checking it lies on the curve.
            let rc = unsafe {
                sys::EC_POINT_oct2point(
                    group,
                    point,
                    point_bytes.as_ptr(),
                    point_bytes.len(),
                    null_mut(),
                )
            };
            // SAFETY: copies the point into ec.
            let rc2 = if rc == 1 {
                // SAFETY: set_public_key copies the point into ec.
                unsafe { sys::EC_KEY_set_public_key(ec, point) }
            } else {
                0
            };
            // SAFETY: point is ours.
            unsafe { sys::EC_POINT_free(point) };
            check(rc)?;
            check(rc2)?;
            // SAFETY: ec has a group and public key.
            check(unsafe { sys::EC_KEY_check_key(ec) })
        })();
        if let Err(e) = built {
            // SAFETY: ec is owned here.
            unsafe { sys::EC_KEY_free(ec) };
            return Err(e);
        }
        Self::adopt_ec(ec)
    }

    fn ec(&self) -> Result<*const sys::EC_KEY, LibFailure> {
        // SAFETY: borrows the key's EC_KEY.
        let ec = unsafe { sys::EVP_PKEY_get0_EC_KEY(self.0.as_ptr()) };
        if ec.is_null() {
            Err(LibFailure)
        } else {
            Ok(ec)
        }
    }

    /// The public point, uncompressed (0x04 ‖ X ‖ Y).
    pub(crate) fn ec_public_point(&self) -> Result<Vec<u8>, LibFailure> {
        let ec = self.ec()?;
        // SAFETY: borrowed from a valid key.
        let (group, point) =
            unsafe { (sys::EC_KEY_get0_group(ec), sys::EC_KEY_get0_public_key(ec)) };
        if point.is_null() {
            return Err(LibFailure);
        }
        let form = sys::point_conversion_form_t::POINT_CONVERSION_UNCOMPRESSED;
        // One call into a buffer that fits every supported curve (P-521: 1 + 2·66 bytes):
        // each call converts the point to affine form, a field inversion, so asking for the
        // length first would pay for it twice.
        let mut buf = [0u8; 1 + 2 * 66];
        // SAFETY: buf has buf.len() bytes; point2oct writes at most that many, or fails.
        let written = unsafe {
            sys::EC_POINT_point2oct(group, point, form, buf.as_mut_ptr(), buf.len(), null_mut())
        };
        if written == 0 || written > buf.len() {
            return Err(LibFailure::take());
        }
        Ok(buf[..written].to_vec())
    }

    /// The public half of an EC key: the same group and point, in a key of its own. The point
    /// is copied, not decoded again, so it needs no second on-curve check.
    pub(crate) fn ec_public_half(&self) -> Result<Self, LibFailure> {
        let from = self.ec()?;
        // SAFETY: borrowed from a valid key.
        let (group, point) = unsafe {
            (
                sys::EC_KEY_get0_group(from),
                sys::EC_KEY_get0_public_key(from),
            )
        };
        if group.is_null() || point.is_null() {
            return Err(LibFailure);
        }
        // SAFETY: no preconditions.
        let ec = unsafe { sys::EC_KEY_new() };
        if ec.is_null() {
            return Err(LibFailure);
        }
        // SAFETY: ec is valid and empty; set_group copies the group.
        let grouped = unsafe { sys::EC_KEY_set_group(ec, group) } == 1;
        // SAFETY: ec has the point's group now; set_public_key copies the point.
        if !grouped || unsafe { sys::EC_KEY_set_public_key(ec, point) } != 1 {
            // SAFETY: ec is owned here.
            unsafe { sys::EC_KEY_free(ec) };
            return Err(LibFailure::take());
        }
        Self::adopt_ec(ec)
    }

    /// The private scalar, left-padded to `len` bytes.
    pub(crate) fn ec_private_scalar(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        let ec = self.ec()?;
        // SAFETY: borrowed from a valid key; null when public-only.
        let d = unsafe { sys::EC_KEY_get0_private_key(ec) };
        bn_to_be_secret(d, len)
    }

    /// ECDSA over `digest` as given (truncated to the order's bit length by the algorithm);
    /// returns r ‖ s, each `field_len` bytes.
    pub(crate) fn ecdsa_sign(
        &self,
        digest: &[u8],
        field_len: usize,
    ) -> Result<Vec<u8>, LibFailure> {
        let ec = self.ec()?;
        // SAFETY: digest is a valid slice; ec holds a private key (else this fails).
        let sig = unsafe { sys::ECDSA_do_sign(digest.as_ptr(), digest.len(), ec) };
        if sig.is_null() {
            return Err(LibFailure::take());
        }
        let (mut r, mut s) = (null(), null());
        // SAFETY: sig is valid; r and s are borrowed from it.
        unsafe { sys::ECDSA_SIG_get0(sig, &mut r, &mut s) };
        let out = (|| {
            let mut out = bn_to_be(r, field_len)?;
            out.extend_from_slice(&bn_to_be(s, field_len)?);
            Ok(out)
        })();
        // SAFETY: sig is ours.
        unsafe { sys::ECDSA_SIG_free(sig) };
        out
    }

    /// Verifies r ‖ s over `digest`.
    pub(crate) fn ecdsa_verify(
        &self,
        digest: &[u8],
        sig: &[u8],
        field_len: usize,
    ) -> Result<bool, LibFailure> {
        if sig.len() != 2 * field_len {
            return Ok(false);
        }
        let ec = self.ec()?;
        let r = Bn::from_be(&sig[..field_len])?;
        let s = Bn::from_be(&sig[field_len..])?;
        // SAFETY: no preconditions.
        let esig = unsafe { sys::ECDSA_SIG_new() };
        if esig.is_null() {
            return Err(LibFailure);
        }
        // SAFETY: set0 takes ownership of r and s.
        if unsafe { sys::ECDSA_SIG_set0(esig, r.into_raw(), s.into_raw()) } != 1 {
            // SAFETY: esig is ours.
            unsafe { sys::ECDSA_SIG_free(esig) };
            return Err(LibFailure::take());
        }
        // SAFETY: all pointers are valid for the call.
        let ok = unsafe { sys::ECDSA_do_verify(digest.as_ptr(), digest.len(), esig, ec) } == 1;
        // SAFETY: esig is ours.
        unsafe { sys::ECDSA_SIG_free(esig) };
        if !ok {
            LibFailure::take();
        }
        Ok(ok)
    }

    /// ECDH: the x-coordinate of d·Q_peer. The peer must be on the same curve.
    pub(crate) fn ecdh(&self, peer: &Pkey) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        let ctx = PkeyCtx::for_key(self)?;
        // SAFETY: ctx is fresh for this key; set_peer checks curve compatibility.
        check(unsafe { sys::EVP_PKEY_derive_init(ctx.ptr()) })?;
        // SAFETY: the peer key is valid; set_peer takes its own reference.
        check(unsafe { sys::EVP_PKEY_derive_set_peer(ctx.ptr(), peer.0.as_ptr()) })?;
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe { sys::EVP_PKEY_derive(ctx.ptr(), out, len) })
            .map(Zeroizing::new)
    }

    // ----- ML-KEM ----------------------------------------------------------------------

    /// ML-KEM key pair from the 64-byte seed d ‖ z (FIPS 203 ML-KEM.KeyGen_internal).
    pub(crate) fn mlkem_from_seed(nid: c_int, seed: &[u8]) -> Result<Self, LibFailure> {
        let ctx = PkeyCtx::for_type(sys::EVP_PKEY_KEM)?;
        // SAFETY: ctx is a fresh KEM context.
        check(unsafe { sys::EVP_PKEY_CTX_kem_set_params(ctx.ptr(), nid) })?;
        // SAFETY: as above.
        check(unsafe { sys::EVP_PKEY_keygen_init(ctx.ptr()) })?;
        let mut out: *mut sys::EVP_PKEY = null_mut();
        let mut seed_len = seed.len();
        // SAFETY: seed is valid for seed_len bytes; AWS-LC checks the length.
        check(unsafe {
            sys::EVP_PKEY_keygen_deterministic(ctx.ptr(), &mut out, seed.as_ptr(), &mut seed_len)
        })?;
        NonNull::new(out).map(Pkey).ok_or(LibFailure)
    }

    /// ML-KEM encapsulation key from its encoding (checked per FIPS 203 §7.2).
    pub(crate) fn mlkem_public(nid: c_int, bytes: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: bytes is valid; AWS-LC checks length and encoding.
        let raw = unsafe { sys::EVP_PKEY_kem_new_raw_public_key(nid, bytes.as_ptr(), bytes.len()) };
        NonNull::new(raw).map(Pkey).ok_or_else(LibFailure::take)
    }

    /// ML-KEM decapsulation key from its expanded encoding.
    pub(crate) fn mlkem_secret(nid: c_int, bytes: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: bytes is valid; AWS-LC checks length.
        let raw = unsafe { sys::EVP_PKEY_kem_new_raw_secret_key(nid, bytes.as_ptr(), bytes.len()) };
        NonNull::new(raw).map(Pkey).ok_or_else(LibFailure::take)
    }

    /// Encapsulates to this key. With `seed` (32 bytes, tests only) the result is
    /// deterministic; without, AWS-LC draws the randomness.
    pub(crate) fn encapsulate(
        &self,
        seed: Option<&[u8]>,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), LibFailure> {
        let ctx = PkeyCtx::for_key(self)?;
        let (mut ct_len, mut ss_len) = (0usize, 0usize);
        // SAFETY: null outputs ask for the sizes.
        check(unsafe {
            sys::EVP_PKEY_encapsulate(ctx.ptr(), null_mut(), &mut ct_len, null_mut(), &mut ss_len)
        })?;
        let mut ct = vec![0u8; ct_len];
        let mut ss = Zeroizing::new(vec![0u8; ss_len]);
        // SAFETY: buffers have the sizes AWS-LC reported.
        let rc = match seed {
            // SAFETY: buffers have the sizes AWS-LC reported.
            None => unsafe {
                sys::EVP_PKEY_encapsulate(
                    ctx.ptr(),
                    ct.as_mut_ptr(),
                    &mut ct_len,
                    ss.as_mut_ptr(),
                    &mut ss_len,
                )
            },
            Some(seed) => {
                let mut seed_len = seed.len();
                // SAFETY: as above, plus the seed slice.
                unsafe {
                    sys::EVP_PKEY_encapsulate_deterministic(
                        ctx.ptr(),
                        ct.as_mut_ptr(),
                        &mut ct_len,
                        ss.as_mut_ptr(),
                        &mut ss_len,
                        seed.as_ptr(),
                        &mut seed_len,
                    )
                }
            }
        };
        check(rc)?;
        ct.truncate(ct_len);
        ss.truncate(ss_len);
        Ok((ct, ss))
    }

    /// Decapsulates; a malformed ciphertext of the right length yields the implicit-rejection
    /// secret, as FIPS 203 requires, and a wrong length is an error.
    pub(crate) fn decapsulate(&self, ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        let ctx = PkeyCtx::for_key(self)?;
        let mut ss_len = 0usize;
        // SAFETY: null output asks for the size.
        check(unsafe {
            sys::EVP_PKEY_decapsulate(ctx.ptr(), null_mut(), &mut ss_len, ct.as_ptr(), ct.len())
        })?;
        let mut ss = Zeroizing::new(vec![0u8; ss_len]);
        // SAFETY: ss has the reported size.
        check(unsafe {
            sys::EVP_PKEY_decapsulate(
                ctx.ptr(),
                ss.as_mut_ptr(),
                &mut ss_len,
                ct.as_ptr(),
                ct.len(),
            )
        })?;
        ss.truncate(ss_len);
        Ok(ss)
    }

    // ----- ML-DSA ----------------------------------------------------------------------

    /// ML-DSA key pair from the 32-byte seed ξ (FIPS 204 ML-DSA.KeyGen_internal).
    pub(crate) fn mldsa_from_seed(nid: c_int, seed: &[u8]) -> Result<Self, LibFailure> {
        if seed.len() != 32 {
            return Err(LibFailure);
        }
        // SAFETY: a 32-byte input is taken as the seed and expanded.
        let raw =
            unsafe { sys::EVP_PKEY_pqdsa_new_raw_private_key(nid, seed.as_ptr(), seed.len()) };
        NonNull::new(raw).map(Pkey).ok_or_else(LibFailure::take)
    }

    /// ML-DSA verification key from its encoding.
    pub(crate) fn mldsa_public(nid: c_int, bytes: &[u8]) -> Result<Self, LibFailure> {
        // SAFETY: bytes is valid; AWS-LC checks the length.
        let raw =
            unsafe { sys::EVP_PKEY_pqdsa_new_raw_public_key(nid, bytes.as_ptr(), bytes.len()) };
        NonNull::new(raw).map(Pkey).ok_or_else(LibFailure::take)
    }

    fn digest_ctx_for(&self, sign: bool, context: &[u8]) -> Result<DigestCtx, LibFailure> {
        if context.len() > 255 {
            return Err(LibFailure);
        }
        let md = DigestCtx::new()?;
        let mut pctx: *mut sys::EVP_PKEY_CTX = null_mut();
        // SAFETY: md is fresh; a null EVP_MD selects the pure (one-shot) mode; pctx is
        // borrowed from md and freed with it.
        let rc = unsafe {
            if sign {
                sys::EVP_DigestSignInit(
                    md.0.as_ptr(),
                    &mut pctx,
                    null(),
                    null_mut(),
                    self.0.as_ptr(),
                )
            } else {
                sys::EVP_DigestVerifyInit(
                    md.0.as_ptr(),
                    &mut pctx,
                    null(),
                    null_mut(),
                    self.0.as_ptr(),
                )
            }
        };
        check(rc)?;
        if !context.is_empty() {
            // SAFETY: pctx belongs to md; context is ≤ 255 bytes.
            check(unsafe {
                sys::EVP_PKEY_CTX_set_signature_context(pctx, context.as_ptr(), context.len())
            })?;
        }
        Ok(md)
    }

    /// Pure ML-DSA signature (hedged) with an optional context string (≤ 255 bytes).
    pub(crate) fn mldsa_sign(&self, msg: &[u8], context: &[u8]) -> Result<Vec<u8>, LibFailure> {
        let md = self.digest_ctx_for(true, context)?;
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe {
            sys::EVP_DigestSign(md.0.as_ptr(), out, len, msg.as_ptr(), msg.len())
        })
    }

    /// Verifies a pure ML-DSA signature.
    pub(crate) fn mldsa_verify(
        &self,
        msg: &[u8],
        context: &[u8],
        sig: &[u8],
    ) -> Result<bool, LibFailure> {
        let md = self.digest_ctx_for(false, context)?;
        // SAFETY: slices are valid.
        let ok = unsafe {
            sys::EVP_DigestVerify(
                md.0.as_ptr(),
                sig.as_ptr(),
                sig.len(),
                msg.as_ptr(),
                msg.len(),
            )
        } == 1;
        if !ok {
            LibFailure::take();
        }
        Ok(ok)
    }

    // ----- raw encodings ---------------------------------------------------------------

    /// The raw public key (ML-KEM encapsulation key, ML-DSA verification key).
    pub(crate) fn raw_public_key(&self) -> Result<Vec<u8>, LibFailure> {
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe { sys::EVP_PKEY_get_raw_public_key(self.0.as_ptr(), out, len) })
    }

    /// The raw (expanded) private key.
    pub(crate) fn raw_private_key(&self) -> Result<Zeroizing<Vec<u8>>, LibFailure> {
        // SAFETY: two_call passes a buffer of the length AWS-LC asked for.
        two_call(|out, len| unsafe { sys::EVP_PKEY_get_raw_private_key(self.0.as_ptr(), out, len) })
            .map(Zeroizing::new)
    }
}

/// An `EVP_MD_CTX` used for one-shot DigestSign/DigestVerify.
struct DigestCtx(NonNull<sys::EVP_MD_CTX>);

impl DigestCtx {
    fn new() -> Result<Self, LibFailure> {
        // SAFETY: no preconditions.
        NonNull::new(unsafe { sys::EVP_MD_CTX_new() })
            .map(DigestCtx)
            .ok_or(LibFailure)
    }
}

impl Drop for DigestCtx {
    fn drop(&mut self) {
        // SAFETY: owned context (and the pkey ctx it owns), freed once.
        unsafe { sys::EVP_MD_CTX_free(self.0.as_ptr()) };
    }
}
