//! Message digests: SHA-1, SHA-2 and SHA-3, single- and multi-part, cloneable mid-stream.

use crate::ffi::md::Sha3_224;
use crate::mechanism::{MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row};
use aws_lc_rs::digest as lc;

/// A hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (legacy; refused for new signatures by default policy).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

impl HashAlg {
    /// Every hash, in registry order.
    pub const ALL: [HashAlg; 9] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha3_224,
        HashAlg::Sha3_256,
        HashAlg::Sha3_384,
        HashAlg::Sha3_512,
    ];

    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 | HashAlg::Sha3_224 => 28,
            HashAlg::Sha256 | HashAlg::Sha3_256 => 32,
            HashAlg::Sha384 | HashAlg::Sha3_384 => 48,
            HashAlg::Sha512 | HashAlg::Sha3_512 => 64,
        }
    }

    /// Input block length in bytes (the HMAC block size).
    pub const fn block_len(self) -> usize {
        match self {
            HashAlg::Sha1 | HashAlg::Sha224 | HashAlg::Sha256 => 64,
            HashAlg::Sha384 | HashAlg::Sha512 => 128,
            HashAlg::Sha3_224 => Sha3_224::BLOCK_LEN,
            HashAlg::Sha3_256 => 136,
            HashAlg::Sha3_384 => 104,
            HashAlg::Sha3_512 => 72,
        }
    }

    /// The digest mechanism for this hash.
    pub const fn mechanism(self) -> M {
        match self {
            HashAlg::Sha1 => M::SHA_1,
            HashAlg::Sha224 => M::SHA224,
            HashAlg::Sha256 => M::SHA256,
            HashAlg::Sha384 => M::SHA384,
            HashAlg::Sha512 => M::SHA512,
            HashAlg::Sha3_224 => M::SHA3_224,
            HashAlg::Sha3_256 => M::SHA3_256,
            HashAlg::Sha3_384 => M::SHA3_384,
            HashAlg::Sha3_512 => M::SHA3_512,
        }
    }

    /// The hash of a digest mechanism.
    pub fn from_mechanism(m: M) -> Option<Self> {
        HashAlg::ALL.into_iter().find(|h| h.mechanism() == m)
    }

    /// The DER prefix of a PKCS#1 DigestInfo for this hash (the digest follows it).
    pub const fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            HashAlg::Sha224 => &[
                0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x04, 0x05, 0x00, 0x04, 0x1c,
            ],
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
            HashAlg::Sha3_224 => &[
                0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x07, 0x05, 0x00, 0x04, 0x1c,
            ],
            HashAlg::Sha3_256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x08, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha3_384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x09, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha3_512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x0a, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    pub(crate) fn md(self) -> crate::ffi::pkey::Md {
        use crate::ffi::pkey::Md;
        match self {
            HashAlg::Sha1 => Md::Sha1,
            HashAlg::Sha224 => Md::Sha224,
            HashAlg::Sha256 => Md::Sha256,
            HashAlg::Sha384 => Md::Sha384,
            HashAlg::Sha512 => Md::Sha512,
            HashAlg::Sha3_224 => Md::Sha3_224,
            HashAlg::Sha3_256 => Md::Sha3_256,
            HashAlg::Sha3_384 => Md::Sha3_384,
            HashAlg::Sha3_512 => Md::Sha3_512,
        }
    }

    fn aws(self) -> Option<&'static lc::Algorithm> {
        Some(match self {
            HashAlg::Sha1 => &lc::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha224 => &lc::SHA224,
            HashAlg::Sha256 => &lc::SHA256,
            HashAlg::Sha384 => &lc::SHA384,
            HashAlg::Sha512 => &lc::SHA512,
            HashAlg::Sha3_224 => return None,
            HashAlg::Sha3_256 => &lc::SHA3_256,
            HashAlg::Sha3_384 => &lc::SHA3_384,
            HashAlg::Sha3_512 => &lc::SHA3_512,
        })
    }
}

/// A running digest. `Clone` copies the state, so a caller can fork a computation (PKCS#11
/// `C_GetOperationState`, HMAC pad precomputation).
#[derive(Clone)]
pub struct DigestContext {
    alg: HashAlg,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Aws(lc::Context),
    Sha3_224(Sha3_224),
}

impl DigestContext {
    /// Starts a digest.
    pub fn new(alg: HashAlg) -> crate::Result<Self> {
        let inner = match alg.aws() {
            Some(a) => Inner::Aws(lc::Context::new(a)),
            None => Inner::Sha3_224(Sha3_224::new()?),
        };
        Ok(DigestContext { alg, inner })
    }

    /// The hash being computed.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Absorbs more input.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            Inner::Aws(c) => c.update(data),
            Inner::Sha3_224(c) => c.update(data),
        }
    }

    /// Finishes and returns the digest.
    pub fn finish(self) -> Vec<u8> {
        match self.inner {
            Inner::Aws(c) => c.finish().as_ref().to_vec(),
            Inner::Sha3_224(c) => c.finish().to_vec(),
        }
    }
}

impl std::fmt::Debug for DigestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestContext")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// One-shot digest.
pub fn digest(alg: HashAlg, data: &[u8]) -> crate::Result<Vec<u8>> {
    if let Some(a) = alg.aws() {
        return Ok(lc::digest(a, data).as_ref().to_vec());
    }
    let mut ctx = DigestContext::new(alg)?;
    ctx.update(data);
    Ok(ctx.finish())
}

/// SHA-256 into a fixed array, without allocating (for hash chains and other hot paths).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = lc::digest(&lc::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    HashAlg::ALL
        .into_iter()
        .map(|h| {
            row(
                h.mechanism(),
                &[],
                (0, 0, SizeUnit::None),
                Op::DIGEST,
                true,
                true,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_forks_the_state() {
        for alg in HashAlg::ALL {
            let mut a = DigestContext::new(alg).expect("ctx");
            a.update(b"abc");
            let mut b = a.clone();
            a.update(b"def");
            b.update(b"def");
            let (da, db) = (a.finish(), b.finish());
            assert_eq!(da, db);
            assert_eq!(da.len(), alg.output_len());
            assert_eq!(da, digest(alg, b"abcdef").expect("one-shot"));
        }
    }

    #[test]
    fn digest_info_prefixes_announce_the_digest_length() {
        for alg in HashAlg::ALL {
            let p = alg.digest_info_prefix();
            assert_eq!(p[1] as usize + 2, p.len() + alg.output_len());
            assert_eq!(*p.last().expect("non-empty") as usize, alg.output_len());
        }
    }
}
