//! Key derivation: HKDF (RFC 5869, extract and/or expand, any supported hash) and PBKDF2
//! (SP 800-132, HMAC-SHA-1/256/384/512).

use crate::digest::HashAlg;
use crate::error::{CryptoError, Result};
use crate::mac::MacContext;
use crate::mechanism::{
    KeyType, MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row,
};
use aws_lc_rs::pbkdf2;
use std::num::NonZeroU32;
use zeroize::Zeroizing;

/// HKDF-Extract: PRK = HMAC(salt, ikm). An empty salt means HashLen zero bytes.
pub fn hkdf_extract(hash: HashAlg, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let zeros = vec![0u8; hash.output_len()];
    let salt = if salt.is_empty() { &zeros[..] } else { salt };
    let mut mac = MacContext::hmac(hash, salt, hash.output_len())?;
    mac.update(ikm)?;
    Ok(Zeroizing::new(mac.finish()?))
}

/// HKDF-Expand to `len` bytes (at most 255 · HashLen).
pub fn hkdf_expand(
    hash: HashAlg,
    prk: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let h = hash.output_len();
    if len == 0 || len > 255 * h {
        return Err(CryptoError::MechanismParamInvalid("HKDF output length"));
    }
    if prk.len() < h {
        return Err(CryptoError::KeySizeRange {
            bits: prk.len() * 8,
            min: h * 8,
            max: usize::MAX,
        });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + h));
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut counter = 1u8;
    while out.len() < len {
        let mut mac = MacContext::hmac(hash, prk, h)?;
        mac.update(&previous)?;
        mac.update(info)?;
        mac.update(&[counter])?;
        previous = Zeroizing::new(mac.finish()?);
        out.extend_from_slice(&previous);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// Full HKDF (extract then expand).
pub fn hkdf(
    hash: HashAlg,
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let prk = hkdf_extract(hash, salt, ikm)?;
    hkdf_expand(hash, &prk, info, len)
}

/// PBKDF2-HMAC with `iterations` ≥ 1, writing `len` bytes.
pub fn pbkdf2(
    hash: HashAlg,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let alg = match hash {
        HashAlg::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        HashAlg::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        HashAlg::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        HashAlg::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        _ => {
            return Err(CryptoError::MechanismParamInvalid(
                "PBKDF2 pseudo-random function",
            ));
        }
    };
    let iterations = NonZeroU32::new(iterations)
        .ok_or(CryptoError::MechanismParamInvalid("PBKDF2 iterations"))?;
    if len == 0 || len > 1 << 20 {
        return Err(CryptoError::MechanismParamInvalid("PBKDF2 output length"));
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    pbkdf2::derive(alg, iterations, salt, password, &mut out);
    Ok(out)
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let secrets: &'static [KeyType] = &[KeyType::GENERIC_SECRET, KeyType::HKDF];
    vec![
        row(
            M::HKDF_DERIVE,
            secrets,
            (1, 1024, SizeUnit::Bytes),
            Op::DERIVE,
            false,
            true,
        ),
        row(
            M::HKDF_DATA,
            secrets,
            (1, 1024, SizeUnit::Bytes),
            Op::DERIVE,
            false,
            true,
        ),
        row(
            M::HKDF_KEY_GEN,
            &[KeyType::HKDF],
            (1, 1024, SizeUnit::Bytes),
            Op::GENERATE,
            false,
            true,
        ),
        row(
            M::PKCS5_PBKD2,
            &[],
            (0, 0, SizeUnit::None),
            Op::GENERATE,
            false,
            true,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").expect("hex");
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").expect("hex");
        let okm = hkdf(HashAlg::Sha256, &salt, &ikm, &info, 42).expect("hkdf");
        assert_eq!(
            hex::encode(&okm[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn limits_are_enforced() {
        assert!(hkdf(HashAlg::Sha256, b"", b"k", b"", 255 * 32 + 1).is_err());
        assert!(pbkdf2(HashAlg::Sha256, b"p", b"s", 0, 32).is_err());
        assert!(pbkdf2(HashAlg::Sha3_256, b"p", b"s", 1, 32).is_err());
    }
}
