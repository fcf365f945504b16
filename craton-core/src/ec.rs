//! Elliptic curves P-256, P-384 and P-521: key generation from our DRBG, ECDSA over a
//! caller-supplied digest (raw r ‖ s signatures, as PKCS#11 specifies), and ECDH.
//!
//! Also the two DER encodings PKCS#11 uses for these keys: `CKA_EC_PARAMS` (the named-curve
//! OID) and `CKA_EC_POINT` (an OCTET STRING around the uncompressed point).

use crate::error::{CryptoError, Result};
use crate::ffi::pkey::Pkey;
use crate::mechanism::{
    KeyType, MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row,
};
use crate::rng::Rng;
use aws_lc_sys as sys;
use zeroize::Zeroizing;

/// A NIST prime curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// P-256 (secp256r1, prime256v1).
    P256,
    /// P-384 (secp384r1).
    P384,
    /// P-521 (secp521r1).
    P521,
}

const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

/// Whether `CKA_EC_PARAMS` is well-formed as a curve name, an OID or a PrintableString, as
/// opposed to malformed bytes: a well-formed name of a curve we lack is
/// `CurveNotSupported`, malformed bytes are an invalid attribute value.
pub fn names_a_curve(der: &[u8]) -> bool {
    der.len() >= 3 && matches!(der[0], 0x06 | 0x13) && der[1] as usize == der.len() - 2
}

impl Curve {
    /// Every curve.
    pub const ALL: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

    /// Size of the field (and of r, s and each coordinate) in bytes.
    pub const fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Size of the order in bits (what PKCS#11 reports as the key size).
    pub const fn bits(self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// The DER named-curve OID, as `CKA_EC_PARAMS` holds it.
    pub const fn ec_params(self) -> &'static [u8] {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
            Curve::P521 => OID_P521,
        }
    }

    /// Parses `CKA_EC_PARAMS`: a named-curve OID, or the PrintableString curve names
    /// "prime256v1"/"secp256r1"/"secp384r1"/"secp521r1" that some clients send.
    pub fn from_ec_params(der: &[u8]) -> Result<Self> {
        if let Some(c) = Curve::ALL.into_iter().find(|c| c.ec_params() == der) {
            return Ok(c);
        }
        if der.len() >= 2 && der[0] == 0x13 && der[1] as usize == der.len() - 2 {
            return match &der[2..] {
                b"prime256v1" | b"secp256r1" | b"P-256" => Ok(Curve::P256),
                b"secp384r1" | b"P-384" => Ok(Curve::P384),
                b"secp521r1" | b"P-521" => Ok(Curve::P521),
                _ => Err(CryptoError::CurveNotSupported),
            };
        }
        if names_a_curve(der) {
            return Err(CryptoError::CurveNotSupported);
        }
        Err(CryptoError::KeyInvalid("malformed EC parameters"))
    }

    /// The curve with AWS-LC's NID `nid`.
    pub(crate) fn from_nid(nid: i32) -> Option<Self> {
        Curve::ALL.into_iter().find(|c| c.nid() == nid)
    }

    fn nid(self) -> i32 {
        match self {
            Curve::P256 => sys::NID_X9_62_prime256v1,
            Curve::P384 => sys::NID_secp384r1,
            Curve::P521 => sys::NID_secp521r1,
        }
    }
}

/// Wraps `content` in a DER OCTET STRING (as `CKA_EC_POINT` is stored).
pub fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xFF {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Unwraps a DER OCTET STRING; also accepts a bare point (some clients send one), which is
/// recognised by its 0x04 prefix and exact uncompressed length.
pub fn parse_ec_point(bytes: &[u8], field_len: usize) -> Result<&[u8]> {
    let raw_len = 1 + 2 * field_len;
    if bytes.len() == raw_len && bytes[0] == 0x04 {
        return Ok(bytes);
    }
    let bad = CryptoError::KeyInvalid("malformed EC point encoding");
    if bytes.len() < 2 || bytes[0] != 0x04 {
        return Err(bad);
    }
    let (len, header) = match bytes[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 if bytes.len() >= 3 => (bytes[2] as usize, 3),
        0x82 if bytes.len() >= 4 => (((bytes[2] as usize) << 8) | bytes[3] as usize, 4),
        _ => return Err(bad),
    };
    if bytes.len() != header + len {
        return Err(bad);
    }
    Ok(&bytes[header..])
}

/// An EC public or private key.
#[derive(Clone)]
pub struct EcKey {
    curve: Curve,
    pkey: Pkey,
    private: bool,
    /// The public point, uncompressed, encoded once: every encoding converts the point to
    /// affine form (a field inversion), and objects ask for it several times.
    point: Vec<u8>,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("curve", &self.curve)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// Generates a key with a scalar drawn from `rng` (rejection sampling, FIPS 186-5
    /// A.4.2), then runs the pairwise consistency test.
    pub fn generate(curve: Curve, rng: &Rng) -> Result<Self> {
        let mut scalar = Zeroizing::new(vec![0u8; curve.field_len()]);
        for _ in 0..64 {
            rng.fill(&mut scalar)?;
            if curve == Curve::P521 {
                scalar[0] &= 0x01;
            }
            if let Ok(key) = EcKey::from_private_scalar(curve, &scalar) {
                crate::post::pairwise_ec(&key)?;
                return Ok(key);
            }
        }
        // 64 rejections in a row has probability < 2^-2000 for these curves.
        Err(CryptoError::Library)
    }

    /// The private key as DER PKCS#8 (for wrapping).
    pub(crate) fn pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        if !self.private {
            return Err(CryptoError::KeyFunctionNotPermitted("not a private key"));
        }
        Ok(self.pkey.to_pkcs8()?)
    }

    /// A private key from its scalar (big-endian, 0 < d < n).
    pub fn from_private_scalar(curve: Curve, scalar: &[u8]) -> Result<Self> {
        if scalar.len() > curve.field_len() {
            return Err(CryptoError::KeyInvalid("EC private scalar too long"));
        }
        let pkey = Pkey::ec_from_private(curve.nid(), scalar)
            .map_err(|_| CryptoError::KeyInvalid("EC private scalar out of range"))?;
        Ok(EcKey {
            curve,
            point: pkey.ec_public_point()?,
            pkey,
            private: true,
        })
    }

    /// A public key from an encoded point (uncompressed or compressed), checked on-curve.
    pub fn from_public_point(curve: Curve, point: &[u8]) -> Result<Self> {
        let pkey = Pkey::ec_from_public(curve.nid(), point)
            .map_err(|_| CryptoError::KeyInvalid("EC point not on curve"))?;
        Ok(EcKey {
            curve,
            point: pkey.ec_public_point()?,
            pkey,
            private: false,
        })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Whether this key can sign and derive.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The public point, uncompressed.
    pub fn public_point(&self) -> &[u8] {
        &self.point
    }

    /// The private scalar, padded to the field length (for wrapping and backup).
    pub fn private_scalar(&self) -> Result<Zeroizing<Vec<u8>>> {
        if !self.private {
            return Err(CryptoError::KeyFunctionNotPermitted(
                "public EC key has no scalar",
            ));
        }
        Ok(self.pkey.ec_private_scalar(self.curve.field_len())?)
    }

    /// The public half.
    pub fn public_key(&self) -> Result<EcKey> {
        Ok(EcKey {
            curve: self.curve,
            pkey: self.pkey.ec_public_half()?,
            private: false,
            point: self.point.clone(),
        })
    }

    /// ECDSA over `digest` (any length; longer digests are truncated to the order size as
    /// FIPS 186-5 specifies). Returns r ‖ s.
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        if !self.private {
            return Err(CryptoError::KeyFunctionNotPermitted(
                "public EC key cannot sign",
            ));
        }
        if digest.is_empty() || digest.len() > 1024 {
            return Err(CryptoError::DataLenRange);
        }
        Ok(self.pkey.ecdsa_sign(digest, self.curve.field_len())?)
    }

    /// Verifies r ‖ s over `digest`.
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != 2 * self.curve.field_len() {
            return Err(CryptoError::SignatureLenRange);
        }
        match self
            .pkey
            .ecdsa_verify(digest, signature, self.curve.field_len())
        {
            Ok(true) => Ok(()),
            _ => Err(CryptoError::SignatureInvalid),
        }
    }

    /// ECDH (`CKM_ECDH1_DERIVE` with `CKD_NULL`): the x-coordinate of d·Q.
    pub fn ecdh(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if !self.private {
            return Err(CryptoError::KeyFunctionNotPermitted(
                "public EC key cannot derive",
            ));
        }
        let peer = EcKey::from_public_point(self.curve, peer_point)
            .map_err(|_| CryptoError::MechanismParamInvalid("peer public point"))?;
        Ok(self.pkey.ecdh(&peer.pkey)?)
    }
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let ec: &'static [KeyType] = &[KeyType::EC];
    let sizes = (256, 521, SizeUnit::Bits);
    let sv = Op::SIGN | Op::VERIFY;
    let mut rows = vec![
        row(
            M::EC_KEY_PAIR_GEN,
            ec,
            sizes,
            Op::GENERATE_KEY_PAIR,
            false,
            true,
        ),
        row(M::ECDSA, ec, sizes, sv, false, true),
        // PKCS#11 3.0 uses CKM_ECDH1_DERIVE for Montgomery (X25519) keys as well.
        row(
            M::ECDH1_DERIVE,
            &[KeyType::EC, KeyType::EC_MONTGOMERY],
            (255, 521, SizeUnit::Bits),
            Op::DERIVE,
            false,
            true,
        ),
    ];
    for m in [
        M::ECDSA_SHA1,
        M::ECDSA_SHA224,
        M::ECDSA_SHA256,
        M::ECDSA_SHA384,
        M::ECDSA_SHA512,
    ] {
        rows.push(row(m, ec, sizes, sv, true, true));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_params_accept_oids_and_names() {
        for c in Curve::ALL {
            assert_eq!(Curve::from_ec_params(c.ec_params()), Ok(c));
        }
        let mut name = vec![0x13, 10];
        name.extend_from_slice(b"prime256v1");
        assert_eq!(Curve::from_ec_params(&name), Ok(Curve::P256));
        assert_eq!(
            Curve::from_ec_params(&[0x06, 0x03, 1, 2, 3]),
            Err(CryptoError::CurveNotSupported)
        );
        assert!(matches!(
            Curve::from_ec_params(&[0x06, 0x09, 1, 2]),
            Err(CryptoError::KeyInvalid(_))
        ));
    }

    #[test]
    fn ec_point_octet_string_round_trip() {
        let point = [0x04u8; 133];
        let der = der_octet_string(&point);
        assert_eq!(&der[..3], &[0x04, 0x81, 133]);
        assert_eq!(parse_ec_point(&der, 66), Ok(&point[..]));
        assert!(parse_ec_point(&der[..der.len() - 1], 66).is_err());
    }

    /// P-256's base point G (SEC 2 §2.4.2, FIPS 186-5 / SP 800-186 §3.2.1.3).
    const P256_GX: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
    const P256_GY: &str = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

    #[test]
    fn the_point_of_scalar_one_is_the_base_point_and_every_encoding_is_uncompressed() {
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = EcKey::from_private_scalar(Curve::P256, &one).expect("d = 1");
        let g = hex::decode(format!("04{P256_GX}{P256_GY}")).expect("hex");
        assert_eq!(key.public_point(), g);
        // The public half carries the same point, and a compressed point (0x03: Gy is odd)
        // comes back uncompressed.
        let public = key.public_key().expect("public half");
        assert!(!public.is_private());
        assert_eq!(public.public_point(), g);
        let compressed = hex::decode(format!("03{P256_GX}")).expect("hex");
        let decoded = EcKey::from_public_point(Curve::P256, &compressed).expect("compressed G");
        assert_eq!(decoded.public_point(), g);
    }

    #[test]
    fn the_public_half_of_a_generated_key_verifies_its_signatures_on_every_curve() {
        let rng = crate::rng::Rng::from_os().expect("rng");
        for curve in Curve::ALL {
            let key = EcKey::generate(curve, &rng).expect("generate");
            let public = key.public_key().expect("public half");
            let point = public.public_point();
            assert_eq!(point.len(), 1 + 2 * curve.field_len());
            assert_eq!(point, key.public_point());
            let digest = [0x5au8; 32];
            let sig = key.sign_digest(&digest).expect("sign");
            public.verify_digest(&digest, &sig).expect("verifies");
            let mut bad = sig.clone();
            bad[0] ^= 1;
            assert!(public.verify_digest(&digest, &bad).is_err());
            assert!(
                public.sign_digest(&digest).is_err(),
                "a public half cannot sign"
            );
        }
    }

    #[test]
    fn zero_and_order_scalars_are_refused() {
        assert!(EcKey::from_private_scalar(Curve::P256, &[0u8; 32]).is_err());
        let order = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
            .expect("hex");
        assert!(EcKey::from_private_scalar(Curve::P256, &order).is_err());
    }
}
