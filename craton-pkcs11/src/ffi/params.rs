//! Mechanism parameters (PKCS#11 3.0 §6 and the 3.2 additions): `CK_MECHANISM` in, a typed
//! [`Mechanism`] out, parsed once here and never looked at raw again.

use super::{CkResult, bytes, read, read_param};
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::digest::HashAlg;
use craton_core::mechanism::MechanismType as M;
use craton_core::ops::{HkdfParams, Mechanism, OaepParams, Pbkdf2Params, PssParams};
use cryptoki_sys::*;
use std::ffi::c_void;

/// `CK_GCM_PARAMS` as PKCS#11 2.40 laid it out (no `ulIvBits`), still passed by older
/// clients; told apart from the 3.0 structure by its size.
#[repr(C)]
#[derive(Clone, Copy)]
struct GcmParams240 {
    p_iv: *mut CK_BYTE,
    ul_iv_len: CK_ULONG,
    p_aad: *mut CK_BYTE,
    ul_aad_len: CK_ULONG,
    ul_tag_bits: CK_ULONG,
}

fn bad(_: impl Sized) -> CK_RV {
    CKR_MECHANISM_PARAM_INVALID
}

fn param_ptr(m: &CK_MECHANISM) -> (*const c_void, CK_ULONG) {
    (m.pParameter.cast_const(), m.ulParameterLen)
}

fn no_params(m: &CK_MECHANISM) -> bool {
    m.pParameter.is_null() || m.ulParameterLen == 0
}

/// The hash an `CKG_MGF1_*` value names.
fn mgf1_hash(mgf: CK_RSA_PKCS_MGF_TYPE) -> CkResult<HashAlg> {
    Ok(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        CKG_MGF1_SHA3_224 => HashAlg::Sha3_224,
        CKG_MGF1_SHA3_256 => HashAlg::Sha3_256,
        CKG_MGF1_SHA3_384 => HashAlg::Sha3_384,
        CKG_MGF1_SHA3_512 => HashAlg::Sha3_512,
        _ => return Err(CKR_MECHANISM_PARAM_INVALID),
    })
}

fn hash_of(m: CK_MECHANISM_TYPE) -> CkResult<HashAlg> {
    HashAlg::from_mechanism(M(m)).ok_or(CKR_MECHANISM_PARAM_INVALID)
}

/// A `CK_ULONG` parameter (`CK_MAC_GENERAL_PARAMS`).
///
/// # Safety
/// The mechanism's parameter pointer is valid for its stated length.
unsafe fn ulong_param(m: &CK_MECHANISM) -> CkResult<usize> {
    let (p, len) = param_ptr(m);
    // SAFETY: forwarded from the caller.
    let v: CK_ULONG = unsafe { read_param(p, len) }?;
    usize::try_from(v).map_err(bad)
}

/// Reads a `CK_MECHANISM` for `operation`: a mechanism the token does not offer for that
/// operation is `CKR_MECHANISM_INVALID` whatever its parameters, and only then are the
/// parameters parsed (`CKR_MECHANISM_PARAM_INVALID` for bad ones).
///
/// # Safety
/// As for [`mechanism`].
pub(crate) unsafe fn mechanism_for(
    p: *const CK_MECHANISM,
    registry: &craton_core::mechanism::Registry,
    operation: craton_core::Operations,
) -> CkResult<Mechanism> {
    // SAFETY: forwarded from the caller.
    let m = unsafe { read(p) }?;
    offered(registry, m.mechanism, operation)?;
    // SAFETY: forwarded from the caller.
    unsafe { mechanism(p) }
}

/// `CKR_MECHANISM_INVALID` unless the token's policy offers `mechanism` for `operation`.
pub(crate) fn offered(
    registry: &craton_core::mechanism::Registry,
    mechanism: CK_MECHANISM_TYPE,
    operation: craton_core::Operations,
) -> CkResult<()> {
    registry
        .get(M(mechanism))
        .is_some_and(|row| row.operations.contains(operation))
        .then_some(())
        .ok_or(CKR_MECHANISM_INVALID)
}

/// Reads a `CK_MECHANISM` and parses its parameters.
///
/// # Safety
/// `p` is null or points to a `CK_MECHANISM` whose parameter pointers are valid for the
/// lengths they state.
pub(crate) unsafe fn mechanism(p: *const CK_MECHANISM) -> CkResult<Mechanism> {
    // SAFETY: forwarded from the caller.
    let m = unsafe { read(p) }?;
    let t = M(m.mechanism);
    let (pp, plen) = param_ptr(&m);
    let parsed = match t {
        M::AES_CBC | M::AES_CBC_PAD => {
            // SAFETY: forwarded from the caller.
            let iv: [u8; 16] = unsafe { read_param(pp, plen) }?;
            Mechanism::Aes(if t == M::AES_CBC {
                AesMode::Cbc { iv }
            } else {
                AesMode::CbcPad { iv }
            })
        }
        M::AES_CTR => {
            // SAFETY: forwarded from the caller.
            let c: CK_AES_CTR_PARAMS = unsafe { read_param(pp, plen) }?;
            Mechanism::Aes(AesMode::Ctr {
                counter_block: c.cb,
                counter_bits: u32::try_from(c.ulCounterBits).map_err(bad)?,
            })
        }
        // SAFETY: forwarded from the caller.
        M::AES_GCM => Mechanism::Aes(AesMode::Gcm(unsafe { gcm(&m) }?)),
        M::AES_CMAC_GENERAL => Mechanism::AesCmac {
            // SAFETY: forwarded from the caller.
            tag_len: unsafe { ulong_param(&m) }?,
            general: true,
        },
        M::RSA_PKCS_PSS
        | M::SHA1_RSA_PKCS_PSS
        | M::SHA224_RSA_PKCS_PSS
        | M::SHA256_RSA_PKCS_PSS
        | M::SHA384_RSA_PKCS_PSS
        | M::SHA512_RSA_PKCS_PSS => {
            // SAFETY: forwarded from the caller.
            let p: CK_RSA_PKCS_PSS_PARAMS = unsafe { read_param(pp, plen) }?;
            let params = PssParams {
                hash: hash_of(p.hashAlg)?,
                mgf1: mgf1_hash(p.mgf)?,
                salt_len: usize::try_from(p.sLen).map_err(bad)?,
            };
            Mechanism::pss(t, params).map_err(|e| crate::rv::from_crypto(&e))?
        }
        M::RSA_PKCS_OAEP => {
            // SAFETY: forwarded from the caller.
            let p: CK_RSA_PKCS_OAEP_PARAMS = unsafe { read_param(pp, plen) }?;
            let label = match p.source {
                CKZ_DATA_SPECIFIED => {
                    // SAFETY: the label pointer and length come from the caller's structure.
                    unsafe { bytes(p.pSourceData.cast_const().cast(), p.ulSourceDataLen) }
                        .map_err(bad)?
                        .to_vec()
                }
                0 if p.ulSourceDataLen == 0 => Vec::new(),
                _ => return Err(CKR_MECHANISM_PARAM_INVALID),
            };
            Mechanism::RsaOaep(OaepParams {
                hash: hash_of(p.hashAlg)?,
                mgf1: mgf1_hash(p.mgf)?,
                label,
            })
        }
        M::ECDH1_DERIVE => {
            // SAFETY: forwarded from the caller.
            let p: CK_ECDH1_DERIVE_PARAMS = unsafe { read_param(pp, plen) }?;
            if p.kdf != CKD_NULL || p.ulSharedDataLen != 0 {
                // Only the raw shared secret (CKD_NULL) is offered; KDFs run as HKDF.
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            // SAFETY: the public value pointer and length come from the caller's structure.
            let public = unsafe { bytes(p.pPublicData, p.ulPublicDataLen) }.map_err(bad)?;
            Mechanism::Ecdh {
                public: unwrap_octet_string(public).to_vec(),
            }
        }
        M::HKDF_DERIVE | M::HKDF_DATA => {
            // SAFETY: forwarded from the caller.
            let p: CK_HKDF_PARAMS = unsafe { read_param(pp, plen) }?;
            let salt = match p.ulSaltType {
                CKF_HKDF_SALT_NULL => Vec::new(),
                // SAFETY: the salt pointer and length come from the caller's structure.
                CKF_HKDF_SALT_DATA => unsafe { bytes(p.pSalt, p.ulSaltLen) }
                    .map_err(bad)?
                    .to_vec(),
                // A salt held in a key object is not offered.
                _ => return Err(CKR_MECHANISM_PARAM_INVALID),
            };
            // SAFETY: the info pointer and length come from the caller's structure.
            let info = unsafe { bytes(p.pInfo, p.ulInfoLen) }
                .map_err(bad)?
                .to_vec();
            Mechanism::Hkdf {
                params: HkdfParams {
                    hash: hash_of(p.prfHashMechanism)?,
                    extract: p.bExtract != CK_FALSE,
                    expand: p.bExpand != CK_FALSE,
                    salt,
                    info,
                },
                data: t == M::HKDF_DATA,
            }
        }
        M::PKCS5_PBKD2 => {
            // SAFETY: forwarded from the caller.
            let p: CK_PKCS5_PBKD2_PARAMS2 = unsafe { read_param(pp, plen) }?;
            if p.saltSource != CKZ_SALT_SPECIFIED {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let prf = match p.prf {
                CKP_PKCS5_PBKD2_HMAC_SHA1 => HashAlg::Sha1,
                CKP_PKCS5_PBKD2_HMAC_SHA224 => HashAlg::Sha224,
                CKP_PKCS5_PBKD2_HMAC_SHA256 => HashAlg::Sha256,
                CKP_PKCS5_PBKD2_HMAC_SHA384 => HashAlg::Sha384,
                CKP_PKCS5_PBKD2_HMAC_SHA512 => HashAlg::Sha512,
                _ => return Err(CKR_MECHANISM_PARAM_INVALID),
            };
            // SAFETY: the salt and password pointers and lengths come from the caller's
            // structure.
            let (salt, password) = unsafe {
                (
                    bytes(p.pSaltSourceData.cast_const().cast(), p.ulSaltSourceDataLen),
                    bytes(p.pPassword, p.ulPasswordLen),
                )
            };
            Mechanism::Pbkdf2(Pbkdf2Params {
                prf,
                salt: salt.map_err(bad)?.to_vec(),
                iterations: u32::try_from(p.iterations).map_err(bad)?,
                password: zeroize::Zeroizing::new(password.map_err(bad)?.to_vec()),
            })
        }
        M::EDDSA if !no_params(&m) => {
            // SAFETY: forwarded from the caller.
            let p: CK_EDDSA_PARAMS = unsafe { read_param(pp, plen) }?;
            if p.phFlag != CK_FALSE || p.ulContextDataLen != 0 {
                // Ed25519ph and Ed25519ctx are not offered; pure Ed25519 only.
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            Mechanism::EdDsa
        }
        M::ML_DSA | M::SLH_DSA if !no_params(&m) => {
            // SAFETY: forwarded from the caller.
            let p: CK_SIGN_ADDITIONAL_CONTEXT = unsafe { read_param(pp, plen) }?;
            if p.hedgeVariant == CKH_DETERMINISTIC_REQUIRED {
                // Signing is always hedged (randomised); a deterministic signature cannot be
                // promised.
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            // SAFETY: the context pointer and length come from the caller's structure.
            let ctx = unsafe { bytes(p.pContext, p.ulContextLen) }.map_err(bad)?;
            if ctx.len() > 255 {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            if t == M::ML_DSA {
                Mechanism::MlDsa {
                    context: ctx.to_vec(),
                }
            } else {
                Mechanism::SlhDsa {
                    context: ctx.to_vec(),
                }
            }
        }
        M::AES_KEY_WRAP | M::AES_KEY_WRAP_KWP if !no_params(&m) => {
            // The optional parameter is an alternative initial value; only the standard one
            // (RFC 3394 §2.2.3.1 / RFC 5649 §3) is offered.
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        _ => {
            if let Some(general) = hmac_general(t) {
                // SAFETY: forwarded from the caller.
                let tag_len = unsafe { ulong_param(&m) }?;
                Mechanism::Hmac {
                    hash: general,
                    tag_len,
                    general: true,
                }
            } else {
                let parsed =
                    Mechanism::without_params(t).map_err(|e| crate::rv::from_crypto(&e))?;
                // Key generation mechanisms take no parameter; a stray one is ignored, as
                // deployed clients pass odd values there. Everything else must pass none.
                if !no_params(&m) && !matches!(parsed, Mechanism::Generate(_)) {
                    return Err(CKR_MECHANISM_PARAM_INVALID);
                }
                parsed
            }
        }
    };
    Ok(parsed)
}

/// The hash of a `CKM_*_HMAC_GENERAL` mechanism.
fn hmac_general(t: M) -> Option<HashAlg> {
    HashAlg::ALL
        .into_iter()
        .find(|h| craton_core::mac::hmac_mechanisms(*h).1 == t)
}

/// `CK_GCM_PARAMS` (3.0 layout, or 2.40's without `ulIvBits`).
///
/// # Safety
/// The mechanism's parameter pointer is valid for its stated length, and the pointers inside
/// the structure for the lengths they state.
pub(crate) unsafe fn gcm(m: &CK_MECHANISM) -> CkResult<GcmParams> {
    let (pp, plen) = param_ptr(m);
    let (iv_ptr, iv_len, aad_ptr, aad_len, tag_bits) = if plen as usize == size_of::<GcmParams240>()
    {
        // SAFETY: forwarded from the caller.
        let p: GcmParams240 = unsafe { read_param(pp, plen) }?;
        (p.p_iv, p.ul_iv_len, p.p_aad, p.ul_aad_len, p.ul_tag_bits)
    } else {
        // SAFETY: forwarded from the caller.
        let p: CK_GCM_PARAMS = unsafe { read_param(pp, plen) }?;
        (p.pIv, p.ulIvLen, p.pAAD, p.ulAADLen, p.ulTagBits)
    };
    // SAFETY: the IV and AAD pointers and lengths come from the caller's structure.
    let (iv, aad) = unsafe { (bytes(iv_ptr, iv_len), bytes(aad_ptr, aad_len)) };
    Ok(GcmParams {
        iv: GcmIv::Given(iv.map_err(bad)?.to_vec()),
        aad: aad.map_err(bad)?.to_vec(),
        tag_bits: usize::try_from(tag_bits).map_err(bad)?,
    })
}

/// A peer's public EC point may arrive bare or wrapped in a DER OCTET STRING (as
/// `CKA_EC_POINT` holds it); both are accepted.
fn unwrap_octet_string(v: &[u8]) -> &[u8] {
    let inner = match v {
        [0x04, n, rest @ ..] if (*n as usize) < 0x80 && *n as usize == rest.len() => rest,
        [0x04, 0x81, n, rest @ ..] if *n as usize == rest.len() && *n >= 0x80 => rest,
        _ => return v,
    };
    // An uncompressed point is 04‖X‖Y (odd length), an X25519 value 32 bytes; a bare point
    // whose first bytes merely look like a header leaves neither.
    if (inner.first() == Some(&0x04) && inner.len() % 2 == 1) || inner.len() == 32 {
        inner
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_are_accepted_bare_or_wrapped() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&point);
        assert_eq!(unwrap_octet_string(&wrapped), &point[..]);
        assert_eq!(unwrap_octet_string(&point), &point[..]);
        // X25519: 32 bytes, never wrapped in a way that looks like a point.
        assert_eq!(unwrap_octet_string(&[9u8; 32]), &[9u8; 32][..]);
        let mut x = vec![0x04, 32];
        x.extend([9u8; 32]);
        assert_eq!(unwrap_octet_string(&x), &[9u8; 32][..]);
    }
}
