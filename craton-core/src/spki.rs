//! DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) for every public key type the core holds,
//! and its PEM form: what `CKA_PUBLIC_KEY_INFO` carries and what `craton-hsm key
//! export-public` writes for other tools (OpenSSL, certificate requests) to read.
//!
//! Algorithm identifiers: RSA (RFC 3279, with a NULL parameter), EC (RFC 5480, the curve's
//! named OID as parameter), Ed25519 and X25519 (RFC 8410), ML-DSA (FIPS 204, OIDs under
//! 2.16.840.1.101.3.4.3, RFC 9881), ML-KEM (FIPS 203, under 2.16.840.1.101.3.4.4) and SLH-DSA
//! (FIPS 205, under 2.16.840.1.101.3.4.3): the last three without parameters, the key bytes as
//! the BIT STRING.

use crate::error::{CryptoError, Result};
use crate::key::KeyMaterial;
use crate::pq::{MlDsaParams, MlKemParams, SlhDsaParams};

const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const NULL: &[u8] = &[0x05, 0x00];
/// The shared prefix of the NIST algorithm OIDs 2.16.840.1.101.3.4.
const NIST_ALGORITHMS: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x00];

fn nist_oid(arc: u8, leaf: u8) -> Vec<u8> {
    let mut body = NIST_ALGORITHMS.to_vec();
    body[7] = arc;
    body.push(leaf);
    tlv(0x06, &body)
}

fn ml_dsa_oid(p: MlDsaParams) -> Vec<u8> {
    nist_oid(
        3,
        match p {
            MlDsaParams::MlDsa44 => 17,
            MlDsaParams::MlDsa65 => 18,
            MlDsaParams::MlDsa87 => 19,
        },
    )
}

fn ml_kem_oid(p: MlKemParams) -> Vec<u8> {
    nist_oid(
        4,
        match p {
            MlKemParams::MlKem512 => 1,
            MlKemParams::MlKem768 => 2,
            MlKemParams::MlKem1024 => 3,
        },
    )
}

fn slh_dsa_oid(p: SlhDsaParams) -> Vec<u8> {
    nist_oid(
        3,
        match p {
            SlhDsaParams::Sha2_128s => 20,
            SlhDsaParams::Sha2_128f => 21,
            SlhDsaParams::Sha2_192s => 22,
            SlhDsaParams::Sha2_192f => 23,
            SlhDsaParams::Sha2_256s => 24,
            SlhDsaParams::Sha2_256f => 25,
        },
    )
}

/// One DER element: tag, definite length, contents.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER from big-endian unsigned bytes.
fn unsigned_integer(be: &[u8]) -> Vec<u8> {
    let start = be.iter().take_while(|b| **b == 0).count();
    let digits = &be[start..];
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(0x02, &content)
}

fn spki(algorithm: &[&[u8]], key: &[u8]) -> Vec<u8> {
    let alg = tlv(0x30, &algorithm.concat());
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    tlv(0x30, &[alg, tlv(0x03, &bits)].concat())
}

/// The DER `SubjectPublicKeyInfo` of `key`'s public half. Secret keys have none.
pub fn public_key_info(key: &KeyMaterial) -> Result<Vec<u8>> {
    Ok(match key {
        KeyMaterial::Secret { .. } => {
            return Err(CryptoError::KeyInvalid("a secret key has no public half"));
        }
        KeyMaterial::Rsa(k) => {
            let c = k.components(false)?;
            let rsa_public = tlv(
                0x30,
                &[
                    unsigned_integer(&c.modulus),
                    unsigned_integer(&c.public_exponent),
                ]
                .concat(),
            );
            spki(&[RSA_ENCRYPTION, NULL], &rsa_public)
        }
        KeyMaterial::Ec(k) => spki(&[EC_PUBLIC_KEY, k.curve().ec_params()], k.public_point()),
        KeyMaterial::Ed25519(k) => spki(&[crate::edwards::ED25519_OID], &k.public_bytes()),
        KeyMaterial::X25519(k) => spki(&[crate::edwards::X25519_OID], &k.public_bytes()),
        KeyMaterial::X25519Public(u) => spki(&[crate::edwards::X25519_OID], u),
        KeyMaterial::MlDsa(k) => spki(&[&ml_dsa_oid(k.params())], &k.public_bytes()?),
        KeyMaterial::MlKem(k) => spki(&[&ml_kem_oid(k.params())], &k.public_bytes()?),
        KeyMaterial::SlhDsa(k) => spki(&[&slh_dsa_oid(k.params())], k.public_bytes()),
    })
}

/// PEM text (RFC 7468) of DER bytes under `label` ("PUBLIC KEY").
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Generated, KeySpec};
    use crate::rng::Rng;

    fn public_of(spec: KeySpec) -> KeyMaterial {
        let rng = Rng::from_os().unwrap();
        match KeyMaterial::generate(spec, &rng).unwrap() {
            Generated::Pair(public, _) => public,
            Generated::Secret(_) => panic!("{spec:?} makes a pair"),
        }
    }

    #[test]
    fn lengths_and_integers_follow_der() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(unsigned_integer(&[0x01, 0x00, 0x01]), [0x02, 3, 1, 0, 1]);
        assert_eq!(unsigned_integer(&[0x00, 0x80]), [0x02, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[]), [0x02, 1, 0]);
    }

    #[test]
    fn a_p256_key_has_the_rfc_5480_prefix() {
        let der = public_key_info(&public_of(KeySpec::Ec(crate::ec::Curve::P256))).unwrap();
        // SEQUENCE(89) { SEQUENCE(19) { id-ecPublicKey, prime256v1 }, BIT STRING(66) { 0, 04‖X‖Y } }
        assert_eq!(
            &der[..27],
            &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04
            ]
        );
        assert_eq!(der.len(), 91);
    }

    #[test]
    fn ed25519_and_ml_dsa_keys_carry_their_oids() {
        let ed = public_key_info(&public_of(KeySpec::Ed25519)).unwrap();
        assert_eq!(
            &ed[..12],
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
            ]
        );
        let ml = public_key_info(&public_of(KeySpec::MlDsa(MlDsaParams::MlDsa65))).unwrap();
        let oid = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12,
        ];
        assert_eq!(&ml[6..17], &oid);
        // 1952-byte key: SEQUENCE, long form.
        assert_eq!(ml.len(), 4 + 13 + 4 + 1 + 1952);
    }

    #[test]
    fn pem_wraps_base64_at_64_columns() {
        assert_eq!(
            pem("PUBLIC KEY", b"Man"),
            "-----BEGIN PUBLIC KEY-----\nTWFu\n-----END PUBLIC KEY-----\n"
        );
        assert_eq!(
            pem("X", b"Ma"),
            "-----BEGIN X-----\nTWE=\n-----END X-----\n"
        );
        let long = pem("X", &[0u8; 60]);
        assert_eq!(long.lines().nth(1).unwrap().len(), 64);
    }
}
