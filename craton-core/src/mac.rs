//! Message authentication: HMAC over every supported hash (full-length and `_GENERAL`
//! truncated) and AES-CMAC, single- and multi-part.
//!
//! HMAC over SHA-1/SHA-2 runs in AWS-LC's `HMAC_CTX` (held on the heap, so the context
//! moves as one pointer); HMAC over SHA-3 (which AWS-LC's HMAC lacks) is built per RFC 2104
//! on our digest contexts, with the padded-key states computed once per key.

use crate::digest::{DigestContext, HashAlg};
use crate::error::{CryptoError, Result};
use crate::ffi::md::{Hmac, HmacHash};
use crate::mechanism::{
    KeyType, MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row,
};
use aws_lc_rs::{cmac, constant_time};
use zeroize::Zeroizing;

/// HMAC keys (bytes): at least 112 bits of security strength per SP 800-131A.
const HMAC_KEY_BYTES: (u64, u64, SizeUnit) = (14, 1024, SizeUnit::Bytes);
/// AES key sizes in bytes.
pub(crate) const AES_KEY_BYTES: (u64, u64, SizeUnit) = (16, 32, SizeUnit::Bytes);

/// A running MAC computation.
#[derive(Clone)]
pub struct MacContext {
    inner: MacInner,
    tag_len: usize,
}

#[derive(Clone)]
enum MacInner {
    Hmac(HmacCtx),
    HmacSha3 {
        inner: DigestContext,
        outer: DigestContext,
    },
    Cmac(cmac::Context),
}

fn hmac_alg(alg: HashAlg) -> Option<HmacHash> {
    Some(match alg {
        HashAlg::Sha1 => HmacHash::Sha1,
        HashAlg::Sha224 => HmacHash::Sha224,
        HashAlg::Sha256 => HmacHash::Sha256,
        HashAlg::Sha384 => HmacHash::Sha384,
        HashAlg::Sha512 => HmacHash::Sha512,
        _ => return None,
    })
}

/// AWS-LC's HMAC context; cloning copies the running state (`C_GetOperationState`).
struct HmacCtx(Hmac);

impl Clone for HmacCtx {
    fn clone(&self) -> Self {
        match self.0.try_clone() {
            Ok(c) => HmacCtx(c),
            // Copying a context fails only when allocating fails: treated like any OOM.
            Err(_) => std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 1024]>()),
        }
    }
}

impl MacContext {
    /// HMAC with `alg`, producing `tag_len` bytes (the full digest length for plain HMAC,
    /// 1..=full for the `_GENERAL` mechanisms).
    pub fn hmac(alg: HashAlg, key: &[u8], tag_len: usize) -> Result<Self> {
        if tag_len == 0 || tag_len > alg.output_len() {
            return Err(CryptoError::MechanismParamInvalid("HMAC output length"));
        }
        let inner = match hmac_alg(alg) {
            Some(a) => MacInner::Hmac(HmacCtx(Hmac::new(a, key)?)),
            None => {
                let block = alg.block_len();
                let mut k0 = Zeroizing::new(vec![0u8; block]);
                if key.len() > block {
                    let hashed = Zeroizing::new(crate::digest::digest(alg, key)?);
                    k0[..hashed.len()].copy_from_slice(&hashed);
                } else {
                    k0[..key.len()].copy_from_slice(key);
                }
                let mut pad = Zeroizing::new(vec![0u8; block]);
                let mut inner = DigestContext::new(alg)?;
                pad.iter_mut()
                    .zip(k0.iter())
                    .for_each(|(p, k)| *p = k ^ 0x36);
                inner.update(&pad);
                let mut outer = DigestContext::new(alg)?;
                pad.iter_mut()
                    .zip(k0.iter())
                    .for_each(|(p, k)| *p = k ^ 0x5c);
                outer.update(&pad);
                MacInner::HmacSha3 { inner, outer }
            }
        };
        Ok(MacContext { inner, tag_len })
    }

    /// AES-CMAC (SP 800-38B) producing `tag_len` bytes (1..=16).
    pub fn cmac(key: &[u8], tag_len: usize) -> Result<Self> {
        if tag_len == 0 || tag_len > 16 {
            return Err(CryptoError::MechanismParamInvalid("CMAC output length"));
        }
        let alg = match key.len() {
            16 => cmac::AES_128,
            24 => cmac::AES_192,
            32 => cmac::AES_256,
            n => {
                return Err(CryptoError::KeySizeRange {
                    bits: n * 8,
                    min: 128,
                    max: 256,
                });
            }
        };
        let key = cmac::Key::new(alg, key)?;
        Ok(MacContext {
            inner: MacInner::Cmac(cmac::Context::with_key(&key)),
            tag_len,
        })
    }

    /// The tag length this context produces.
    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// Absorbs more data.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.inner {
            MacInner::Hmac(c) => c.0.update(data)?,
            MacInner::HmacSha3 { inner, .. } => inner.update(data),
            MacInner::Cmac(c) => c.update(data)?,
        }
        Ok(())
    }

    /// Finishes and returns the (possibly truncated) tag.
    pub fn finish(self) -> Result<Vec<u8>> {
        let mut full = match self.inner {
            MacInner::Hmac(c) => c.0.finish()?,
            MacInner::HmacSha3 { inner, mut outer } => {
                outer.update(&inner.finish());
                outer.finish()
            }
            MacInner::Cmac(c) => c.sign()?.as_ref().to_vec(),
        };
        full.truncate(self.tag_len);
        Ok(full)
    }

    /// Finishes and compares with `tag` in constant time.
    pub fn verify(self, tag: &[u8]) -> Result<()> {
        if tag.len() != self.tag_len {
            return Err(CryptoError::SignatureLenRange);
        }
        let computed = self.finish()?;
        constant_time::verify_slices_are_equal(&computed, tag)
            .map_err(|_| CryptoError::SignatureInvalid)
    }
}

impl std::fmt::Debug for MacContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            MacInner::Hmac(_) | MacInner::HmacSha3 { .. } => "HMAC",
            MacInner::Cmac(_) => "CMAC",
        };
        f.debug_struct("MacContext")
            .field("kind", &kind)
            .field("tag_len", &self.tag_len)
            .finish_non_exhaustive()
    }
}

/// The (plain, general) HMAC mechanisms and key type of each hash.
pub const fn hmac_mechanisms(alg: HashAlg) -> (M, M, KeyType) {
    match alg {
        HashAlg::Sha1 => (M::SHA_1_HMAC, M::SHA_1_HMAC_GENERAL, KeyType::SHA_1_HMAC),
        HashAlg::Sha224 => (M::SHA224_HMAC, M::SHA224_HMAC_GENERAL, KeyType::SHA224_HMAC),
        HashAlg::Sha256 => (M::SHA256_HMAC, M::SHA256_HMAC_GENERAL, KeyType::SHA256_HMAC),
        HashAlg::Sha384 => (M::SHA384_HMAC, M::SHA384_HMAC_GENERAL, KeyType::SHA384_HMAC),
        HashAlg::Sha512 => (M::SHA512_HMAC, M::SHA512_HMAC_GENERAL, KeyType::SHA512_HMAC),
        HashAlg::Sha3_224 => (
            M::SHA3_224_HMAC,
            M::SHA3_224_HMAC_GENERAL,
            KeyType::SHA3_224_HMAC,
        ),
        HashAlg::Sha3_256 => (
            M::SHA3_256_HMAC,
            M::SHA3_256_HMAC_GENERAL,
            KeyType::SHA3_256_HMAC,
        ),
        HashAlg::Sha3_384 => (
            M::SHA3_384_HMAC,
            M::SHA3_384_HMAC_GENERAL,
            KeyType::SHA3_384_HMAC,
        ),
        HashAlg::Sha3_512 => (
            M::SHA3_512_HMAC,
            M::SHA3_512_HMAC_GENERAL,
            KeyType::SHA3_512_HMAC,
        ),
    }
}

/// Key types an HMAC over `alg` accepts: a generic secret, or the hash's own HMAC key type.
fn hmac_key_types(alg: HashAlg) -> &'static [KeyType] {
    match alg {
        HashAlg::Sha1 => &[KeyType::GENERIC_SECRET, KeyType::SHA_1_HMAC],
        HashAlg::Sha224 => &[KeyType::GENERIC_SECRET, KeyType::SHA224_HMAC],
        HashAlg::Sha256 => &[KeyType::GENERIC_SECRET, KeyType::SHA256_HMAC],
        HashAlg::Sha384 => &[KeyType::GENERIC_SECRET, KeyType::SHA384_HMAC],
        HashAlg::Sha512 => &[KeyType::GENERIC_SECRET, KeyType::SHA512_HMAC],
        HashAlg::Sha3_224 => &[KeyType::GENERIC_SECRET, KeyType::SHA3_224_HMAC],
        HashAlg::Sha3_256 => &[KeyType::GENERIC_SECRET, KeyType::SHA3_256_HMAC],
        HashAlg::Sha3_384 => &[KeyType::GENERIC_SECRET, KeyType::SHA3_384_HMAC],
        HashAlg::Sha3_512 => &[KeyType::GENERIC_SECRET, KeyType::SHA3_512_HMAC],
    }
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let sv = Op::SIGN | Op::VERIFY;
    let mut rows = Vec::new();
    for alg in HashAlg::ALL {
        let (plain, general, _) = hmac_mechanisms(alg);
        let kt = hmac_key_types(alg);
        rows.push(row(plain, kt, HMAC_KEY_BYTES, sv, true, true));
        rows.push(row(general, kt, HMAC_KEY_BYTES, sv, true, true));
    }
    rows.push(row(
        M::AES_CMAC,
        &[KeyType::AES],
        AES_KEY_BYTES,
        sv,
        true,
        true,
    ));
    rows.push(row(
        M::AES_CMAC_GENERAL,
        &[KeyType::AES],
        AES_KEY_BYTES,
        sv,
        true,
        true,
    ));
    rows.push(row(
        M::GENERIC_SECRET_KEY_GEN,
        &[KeyType::GENERIC_SECRET],
        (1, 1024, SizeUnit::Bytes),
        Op::GENERATE,
        false,
        true,
    ));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_over_every_sha2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = [
            (
                HashAlg::Sha224,
                "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
            ),
            (
                HashAlg::Sha256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
        ];
        for (alg, hex_tag) in expected {
            let mut m = MacContext::hmac(alg, b"Jefe", alg.output_len()).expect("ctx");
            m.update(b"what do ya want ").expect("update");
            m.update(b"for nothing?").expect("update");
            assert_eq!(hex::encode(m.finish().expect("tag")), hex_tag);
        }
    }

    #[test]
    fn truncated_tags_and_wrong_tags() {
        let m = MacContext::hmac(HashAlg::Sha3_256, &[7u8; 32], 10).expect("ctx");
        let tag = m.clone().finish().expect("tag");
        assert_eq!(tag.len(), 10);
        m.clone().verify(&tag).expect("verifies");
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert_eq!(m.clone().verify(&bad), Err(CryptoError::SignatureInvalid));
        assert_eq!(m.verify(&tag[..9]), Err(CryptoError::SignatureLenRange));
        assert!(MacContext::hmac(HashAlg::Sha256, b"k", 33).is_err());
        assert!(MacContext::cmac(&[0u8; 20], 16).is_err());
    }
}
