//! RSA: key generation (2048/3072/4096, 1024 only where policy allows), PKCS#1 v1.5 and PSS
//! signatures (hashed by us or supplied by the caller), raw RSA, PKCS#1 v1.5 and OAEP
//! encryption (any hash/MGF1 pairing, with a label), and signature recovery.

use crate::digest::HashAlg;
use crate::error::{CryptoError, Result};
use crate::ffi::bn::{BigNum, BnCtx};
use crate::ffi::pkey::{Pkey, RsaCryptPadding, RsaParts, RsaSignPadding};
use crate::mechanism::{
    KeyType, MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row,
};
use crate::rng::Rng;
use zeroize::Zeroizing;

/// RSA components, big-endian. Private fields are wiped on drop.
#[derive(Default)]
pub struct RsaComponents {
    /// Modulus.
    pub modulus: Vec<u8>,
    /// Public exponent.
    pub public_exponent: Vec<u8>,
    /// Private exponent (absent for public keys).
    pub private_exponent: Option<Zeroizing<Vec<u8>>>,
    /// First prime.
    pub prime_1: Option<Zeroizing<Vec<u8>>>,
    /// Second prime.
    pub prime_2: Option<Zeroizing<Vec<u8>>>,
    /// d mod (p-1).
    pub exponent_1: Option<Zeroizing<Vec<u8>>>,
    /// d mod (q-1).
    pub exponent_2: Option<Zeroizing<Vec<u8>>>,
    /// q^-1 mod p.
    pub coefficient: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for RsaComponents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaComponents")
            .field("modulus_bits", &(self.modulus.len() * 8))
            .field("private", &self.private_exponent.is_some())
            .finish_non_exhaustive()
    }
}

/// How an RSA signature is formed over the bytes given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaSignScheme {
    /// `CKM_RSA_PKCS`: the input is a complete DigestInfo (at most k − 11 bytes).
    Pkcs1DigestInfo,
    /// PKCS#1 v1.5 over a digest of the given hash (the input is that digest).
    Pkcs1(HashAlg),
    /// PSS over a digest of `hash` (the input is that digest).
    Pss {
        /// The message hash.
        hash: HashAlg,
        /// The MGF1 hash.
        mgf1: HashAlg,
        /// Salt length in bytes.
        salt_len: usize,
    },
    /// `CKM_RSA_X_509`: raw exponentiation of the input (at most k bytes, numerically < n).
    Raw,
}

impl RsaSignScheme {
    fn padding(self) -> RsaSignPadding {
        match self {
            RsaSignScheme::Pkcs1DigestInfo => RsaSignPadding::Pkcs1 { md: None },
            RsaSignScheme::Pkcs1(h) => RsaSignPadding::Pkcs1 { md: Some(h.md()) },
            RsaSignScheme::Pss {
                hash,
                mgf1,
                salt_len,
            } => RsaSignPadding::Pss {
                md: hash.md(),
                mgf1: mgf1.md(),
                salt_len,
            },
            RsaSignScheme::Raw => RsaSignPadding::Raw,
        }
    }
}

/// How RSA encryption pads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaCryptScheme {
    /// `CKM_RSA_PKCS` (EME-PKCS1-v1_5).
    Pkcs1,
    /// `CKM_RSA_PKCS_OAEP` with its hash, MGF1 hash and label (`pSourceData`).
    Oaep {
        /// Hash of the label.
        hash: HashAlg,
        /// MGF1 hash.
        mgf1: HashAlg,
        /// Label.
        label: Vec<u8>,
    },
    /// `CKM_RSA_X_509`.
    Raw,
}

/// An RSA public or private key.
#[derive(Clone)]
pub struct RsaKey {
    pkey: Pkey,
    bits: usize,
    private: bool,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &self.bits)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

/// The public exponent of every generated key.
const E: u64 = 65_537;

/// One probable prime of `bits` bits for an RSA modulus (FIPS 186-5 A.1.3 steps 4-5): random
/// candidates from our DRBG with the top two bits set (so p ≥ √2·2^(bits−1)) and the low bit
/// set, kept when gcd(p−1, e) = 1 and Miller-Rabin with FIPS 186-5's round count passes.
/// `other` is the first prime when generating the second: they must differ in their top 100
/// bits' worth (|p − q| > 2^(bits−100)).
fn probable_prime(bits: usize, rng: &Rng, ctx: &BnCtx, other: Option<&BigNum>) -> Result<BigNum> {
    let bytes = bits.div_ceil(8);
    let excess = bytes * 8 - bits;
    let min_gap = BigNum::power_of_two(bits - 100)?;
    // FIPS 186-5 allows 5·bits attempts before giving up (step 4.7 / 5.8).
    for _ in 0..5 * bits {
        let mut buf = Zeroizing::new(vec![0u8; bytes]);
        rng.fill(&mut buf)?;
        buf[0] &= 0xff >> excess;
        buf[0] |= 0xc0 >> excess;
        if excess == 7 {
            buf[1] |= 0x80;
        }
        buf[bytes - 1] |= 1;
        let candidate = BigNum::from_be(&buf)?;
        if let Some(p) = other
            && ctx.abs_diff(&candidate, p)?.cmp_abs(&min_gap) != std::cmp::Ordering::Greater
        {
            continue;
        }
        // gcd(candidate − 1, e) = 1 ⇔ e ∤ candidate − 1, since e is prime.
        if candidate.mod_word(E)? == 1 {
            continue;
        }
        if ctx.is_probably_prime(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(CryptoError::Library)
}

/// Generates the components of an RSA key of `bits` bits with e = 65537 (FIPS 186-5 A.1.3),
/// every random bit drawn from `rng`.
fn generate_components(bits: usize, rng: &Rng) -> Result<RsaComponents> {
    let ctx = BnCtx::new()?;
    let e = BigNum::from_u64(E)?;
    let half = bits / 2;
    let d_floor = BigNum::power_of_two(half)?;
    loop {
        let p = probable_prime(half, rng, &ctx, None)?;
        let q = probable_prime(half, rng, &ctx, Some(&p))?;
        // Keep p > q so that the CRT coefficient is q⁻¹ mod p.
        let (p, q) = if p.cmp_abs(&q) == std::cmp::Ordering::Less {
            (q, p)
        } else {
            (p, q)
        };
        let n = ctx.mul(&p, &q)?;
        if n.bits() != bits {
            continue;
        }
        let p1 = p.minus_word(1)?;
        let q1 = q.minus_word(1)?;
        let phi = ctx.mul(&p1, &q1)?;
        let (lambda, _) = ctx.div_rem(&phi, &ctx.gcd(&p1, &q1)?)?;
        let d = ctx.mod_inverse(&e, &lambda)?;
        // FIPS 186-5 A.1.1: d must exceed 2^(nlen/2); otherwise start over.
        if d.cmp_abs(&d_floor) != std::cmp::Ordering::Greater {
            continue;
        }
        let (_, dp) = ctx.div_rem(&d, &p1)?;
        let (_, dq) = ctx.div_rem(&d, &q1)?;
        let qinv = ctx.mod_inverse(&q, &p)?;
        let k = bits / 8;
        return Ok(RsaComponents {
            modulus: n.to_be(k)?.to_vec(),
            public_exponent: e.to_be_minimal()?.to_vec(),
            private_exponent: Some(d.to_be(k)?),
            prime_1: Some(p.to_be_minimal()?),
            prime_2: Some(q.to_be_minimal()?),
            exponent_1: Some(dp.to_be_minimal()?),
            exponent_2: Some(dq.to_be_minimal()?),
            coefficient: Some(qinv.to_be_minimal()?),
        });
    }
}

/// Sizes this module generates.
pub const GENERATE_SIZES: [usize; 4] = [1024, 2048, 3072, 4096];

impl RsaKey {
    /// Generates a key pair with e = 65537 from our DRBG (FIPS 186-5 A.1.3: random probable
    /// primes) and runs the pairwise consistency test. Which sizes are allowed is the
    /// registry's (policy's) decision; this accepts the sizes in [`GENERATE_SIZES`].
    pub fn generate(bits: usize, rng: &Rng) -> Result<Self> {
        if !GENERATE_SIZES.contains(&bits) {
            return Err(CryptoError::KeySizeRange {
                bits,
                min: 2048,
                max: 4096,
            });
        }
        let components = generate_components(bits, rng)?;
        let key = RsaKey::from_components(&components)?;
        if key.bits != bits {
            return Err(CryptoError::Library);
        }
        crate::post::pairwise_rsa(&key)?;
        Ok(key)
    }

    /// Wraps a parsed key so its components can be read (and re-imported with checks).
    pub(crate) fn from_pkey_unchecked(pkey: Pkey) -> Result<Self> {
        let bits = pkey.rsa_bits()?;
        let private = pkey.rsa_is_private()?;
        Ok(RsaKey {
            pkey,
            bits,
            private,
        })
    }

    /// The private key as DER PKCS#8 (for wrapping).
    pub(crate) fn pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.need_private()?;
        Ok(self.pkey.to_pkcs8()?)
    }

    /// Builds a key from components (a private key needs the private exponent; CRT values
    /// all or none). Moduli outside 1024..=16384 bits are refused.
    pub fn from_components(c: &RsaComponents) -> Result<Self> {
        let parts = RsaParts {
            n: c.modulus.clone(),
            e: c.public_exponent.clone(),
            d: c.private_exponent.clone(),
            p: c.prime_1.clone(),
            q: c.prime_2.clone(),
            dp: c.exponent_1.clone(),
            dq: c.exponent_2.clone(),
            qinv: c.coefficient.clone(),
        };
        let pkey =
            Pkey::rsa_from_parts(&parts).map_err(|_| CryptoError::KeyInvalid("RSA components"))?;
        let bits = pkey.rsa_bits()?;
        if !(1024..=16384).contains(&bits) {
            return Err(CryptoError::KeySizeRange {
                bits,
                min: 1024,
                max: 16384,
            });
        }
        let private = pkey.rsa_is_private()?;
        Ok(RsaKey {
            pkey,
            bits,
            private,
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Modulus size in bytes (the signature and ciphertext length).
    pub fn modulus_len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Whether this key can sign and decrypt.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The public half.
    pub fn public_key(&self) -> Result<RsaKey> {
        let c = self.components(false)?;
        RsaKey::from_components(&c)
    }

    /// The components; private ones only with `with_private` (for wrapping and backup).
    pub fn components(&self, with_private: bool) -> Result<RsaComponents> {
        let p = self.pkey.rsa_parts(with_private && self.private)?;
        Ok(RsaComponents {
            modulus: p.n,
            public_exponent: p.e,
            private_exponent: p.d,
            prime_1: p.p,
            prime_2: p.q,
            exponent_1: p.dp,
            exponent_2: p.dq,
            coefficient: p.qinv,
        })
    }

    fn need_private(&self) -> Result<()> {
        if self.private {
            Ok(())
        } else {
            Err(CryptoError::KeyFunctionNotPermitted(
                "public RSA key cannot sign or decrypt",
            ))
        }
    }

    fn check_sign_input(&self, scheme: RsaSignScheme, input: &[u8]) -> Result<()> {
        let k = self.modulus_len();
        let ok = match scheme {
            RsaSignScheme::Pkcs1DigestInfo => input.len() + 11 <= k,
            RsaSignScheme::Pkcs1(h) => input.len() == h.output_len(),
            RsaSignScheme::Pss { hash, salt_len, .. } => {
                input.len() == hash.output_len() && hash.output_len() + salt_len + 2 <= k
            }
            RsaSignScheme::Raw => input.len() <= k,
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::DataLenRange)
        }
    }

    /// Signs `input` (see [`RsaSignScheme`] for what the input is).
    pub fn sign(&self, scheme: RsaSignScheme, input: &[u8]) -> Result<Vec<u8>> {
        self.need_private()?;
        self.check_sign_input(scheme, input)?;
        self.pkey
            .rsa_sign(scheme.padding(), input)
            .map_err(|_| match scheme {
                // Raw input numerically ≥ n is the caller's data error.
                RsaSignScheme::Raw => CryptoError::DataLenRange,
                _ => CryptoError::Library,
            })
    }

    /// Verifies; `SignatureLenRange` for a wrong length, `SignatureInvalid` otherwise.
    pub fn verify(&self, scheme: RsaSignScheme, input: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.modulus_len() {
            return Err(CryptoError::SignatureLenRange);
        }
        if self.check_sign_input(scheme, input).is_err() {
            return Err(CryptoError::SignatureInvalid);
        }
        match self.pkey.rsa_verify(scheme.padding(), input, signature) {
            Ok(true) => Ok(()),
            _ => Err(CryptoError::SignatureInvalid),
        }
    }

    /// `C_VerifyRecover` for `CKM_RSA_PKCS` (returns the DigestInfo) and `CKM_RSA_X_509`.
    pub fn recover(&self, scheme: RsaSignScheme, signature: &[u8]) -> Result<Vec<u8>> {
        if signature.len() != self.modulus_len() {
            return Err(CryptoError::SignatureLenRange);
        }
        match scheme {
            RsaSignScheme::Pkcs1DigestInfo | RsaSignScheme::Raw => self
                .pkey
                .rsa_recover(scheme.padding(), signature)
                .map_err(|_| CryptoError::SignatureInvalid),
            _ => Err(CryptoError::MechanismUnsupported(M::RSA_PKCS_PSS)),
        }
    }

    fn padding(scheme: &RsaCryptScheme) -> RsaCryptPadding<'_> {
        match scheme {
            RsaCryptScheme::Pkcs1 => RsaCryptPadding::Pkcs1,
            RsaCryptScheme::Raw => RsaCryptPadding::Raw,
            RsaCryptScheme::Oaep { hash, mgf1, label } => RsaCryptPadding::Oaep {
                md: hash.md(),
                mgf1: mgf1.md(),
                label,
            },
        }
    }

    /// Largest plaintext for `scheme`.
    pub fn max_plaintext(&self, scheme: &RsaCryptScheme) -> usize {
        let k = self.modulus_len();
        match scheme {
            RsaCryptScheme::Pkcs1 => k.saturating_sub(11),
            RsaCryptScheme::Oaep { hash, .. } => k.saturating_sub(2 * hash.output_len() + 2),
            RsaCryptScheme::Raw => k,
        }
    }

    /// Encrypts with the public key.
    pub fn encrypt(&self, scheme: &RsaCryptScheme, plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > self.max_plaintext(scheme) {
            return Err(CryptoError::DataLenRange);
        }
        self.pkey
            .rsa_encrypt(Self::padding(scheme), plaintext)
            .map_err(|_| CryptoError::DataLenRange)
    }

    /// Decrypts with the private key. Every padding failure is the same error, so the caller
    /// learns nothing about why (Bleichenbacher/Manger).
    pub fn decrypt(
        &self,
        scheme: &RsaCryptScheme,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.need_private()?;
        if ciphertext.len() != self.modulus_len() {
            return Err(CryptoError::EncryptedDataLenRange);
        }
        self.pkey
            .rsa_decrypt(Self::padding(scheme), ciphertext)
            .map_err(|_| CryptoError::EncryptedDataInvalid)
    }
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let rsa: &'static [KeyType] = &[KeyType::RSA];
    let sizes = (2048, 16384, SizeUnit::Bits);
    let sv = Op::SIGN | Op::VERIFY;
    let mut rows = vec![
        row(
            M::RSA_PKCS_KEY_PAIR_GEN,
            rsa,
            (2048, 4096, SizeUnit::Bits),
            Op::GENERATE_KEY_PAIR,
            false,
            true,
        ),
        row(
            M::RSA_PKCS,
            rsa,
            sizes,
            sv | Op::SIGN_RECOVER
                | Op::VERIFY_RECOVER
                | Op::ENCRYPT
                | Op::DECRYPT
                | Op::WRAP
                | Op::UNWRAP,
            false,
            true,
        ),
        // Raw RSA is a building block for clients that pad themselves; not an approved scheme.
        row(
            M::RSA_X_509,
            rsa,
            sizes,
            sv | Op::SIGN_RECOVER | Op::VERIFY_RECOVER | Op::ENCRYPT | Op::DECRYPT,
            false,
            false,
        ),
        row(
            M::RSA_PKCS_OAEP,
            rsa,
            sizes,
            Op::ENCRYPT | Op::DECRYPT | Op::WRAP | Op::UNWRAP,
            false,
            true,
        ),
        row(M::RSA_PKCS_PSS, rsa, sizes, sv, false, true),
    ];
    for m in [
        M::SHA1_RSA_PKCS,
        M::SHA224_RSA_PKCS,
        M::SHA256_RSA_PKCS,
        M::SHA384_RSA_PKCS,
        M::SHA512_RSA_PKCS,
    ] {
        rows.push(row(m, rsa, sizes, sv, true, true));
    }
    for m in [
        M::SHA1_RSA_PKCS_PSS,
        M::SHA224_RSA_PKCS_PSS,
        M::SHA256_RSA_PKCS_PSS,
        M::SHA384_RSA_PKCS_PSS,
        M::SHA512_RSA_PKCS_PSS,
    ] {
        rows.push(row(m, rsa, sizes, sv, true, true));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngConfig;
    use crate::rng::testing::DeterministicEntropy;

    fn rng(seed: u8) -> Rng {
        Rng::new(
            Box::new(DeterministicEntropy::new([seed; 32])),
            RngConfig {
                reseed_interval: 1 << 20,
                shards: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn key_generation_draws_every_bit_from_our_drbg() {
        // The same DRBG seed gives the same key; another seed, another key. AWS-LC's own
        // generator plays no part in the key material.
        let a = RsaKey::generate(2048, &rng(1)).unwrap();
        let b = RsaKey::generate(2048, &rng(1)).unwrap();
        let c = RsaKey::generate(2048, &rng(2)).unwrap();
        let (ca, cb, cc) = (
            a.components(true).unwrap(),
            b.components(true).unwrap(),
            c.components(true).unwrap(),
        );
        assert_eq!(ca.modulus, cb.modulus);
        assert_ne!(ca.modulus, cc.modulus);
        assert_eq!(a.bits(), 2048);
        assert_eq!(ca.public_exponent, vec![1, 0, 1]);
        // FIPS 186-5: p and q of half the size, d > 2^(nlen/2).
        assert_eq!(ca.prime_1.as_ref().unwrap().len(), 128);
        assert_eq!(ca.prime_2.as_ref().unwrap().len(), 128);
        let d = ca.private_exponent.as_ref().unwrap();
        assert!(d.iter().take(128).any(|b| *b != 0));
    }

    #[test]
    fn every_offered_size_generates() {
        for bits in [1024, 3072] {
            let k = RsaKey::generate(bits, &rng(3)).unwrap();
            assert_eq!(k.bits(), bits);
        }
        assert!(RsaKey::generate(2000, &rng(3)).is_err());
    }
}
