//! The mechanism registry: for each `CKM_*` this module implements, which key types and sizes
//! it takes, which operations it serves, whether it works in several parts, and whether it is
//! FIPS-approved.
//!
//! `C_GetMechanismList`, `C_GetMechanismInfo`, policy checks and the audit's `fips_approved`
//! flag all read this one table. The table is built per token from a [`Policy`], so a token
//! advertises exactly what is implemented *and* allowed. Numbers are the standard PKCS#11 3.2
//! values; only `craton-pkcs11` turns them into C types.

use std::collections::BTreeMap;
use std::fmt;

/// Declares a PKCS#11 number space as a newtype with named constants whose `Debug` prints the
/// name (or the hex value for numbers we do not know).
macro_rules! number_space {
    ($(#[$meta:meta])* $name:ident { $($(#[$cmeta:meta])* $konst:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            $($(#[$cmeta])* pub const $konst: Self = Self($value);)*

            /// Every named value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$konst),*];

            /// The constant's name without its prefix, if this value has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($konst)),)*
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}(0x{:x})", stringify!($name), self.0),
                }
            }
        }
    };
}

number_space! {
    /// A `CKM_*` mechanism number.
    MechanismType {
        /// `CKM_RSA_PKCS_KEY_PAIR_GEN`
        RSA_PKCS_KEY_PAIR_GEN = 0x0000,
        /// `CKM_RSA_PKCS`: PKCS#1 v1.5 over a caller DigestInfo, and encryption.
        RSA_PKCS = 0x0001,
        /// `CKM_RSA_X_509`: raw RSA.
        RSA_X_509 = 0x0003,
        /// `CKM_SHA1_RSA_PKCS`
        SHA1_RSA_PKCS = 0x0006,
        /// `CKM_RSA_PKCS_OAEP`
        RSA_PKCS_OAEP = 0x0009,
        /// `CKM_RSA_PKCS_PSS`: PSS over a caller-supplied hash.
        RSA_PKCS_PSS = 0x000D,
        /// `CKM_SHA1_RSA_PKCS_PSS`
        SHA1_RSA_PKCS_PSS = 0x000E,
        /// `CKM_ML_KEM_KEY_PAIR_GEN`
        ML_KEM_KEY_PAIR_GEN = 0x000F,
        /// `CKM_ML_KEM`
        ML_KEM = 0x0017,
        /// `CKM_ML_DSA_KEY_PAIR_GEN`
        ML_DSA_KEY_PAIR_GEN = 0x001C,
        /// `CKM_ML_DSA`: pure ML-DSA, optional context string.
        ML_DSA = 0x001D,
        /// `CKM_SLH_DSA_KEY_PAIR_GEN`
        SLH_DSA_KEY_PAIR_GEN = 0x002D,
        /// `CKM_SLH_DSA`
        SLH_DSA = 0x002E,
        /// `CKM_SHA256_RSA_PKCS`
        SHA256_RSA_PKCS = 0x0040,
        /// `CKM_SHA384_RSA_PKCS`
        SHA384_RSA_PKCS = 0x0041,
        /// `CKM_SHA512_RSA_PKCS`
        SHA512_RSA_PKCS = 0x0042,
        /// `CKM_SHA256_RSA_PKCS_PSS`
        SHA256_RSA_PKCS_PSS = 0x0043,
        /// `CKM_SHA384_RSA_PKCS_PSS`
        SHA384_RSA_PKCS_PSS = 0x0044,
        /// `CKM_SHA512_RSA_PKCS_PSS`
        SHA512_RSA_PKCS_PSS = 0x0045,
        /// `CKM_SHA224_RSA_PKCS`
        SHA224_RSA_PKCS = 0x0046,
        /// `CKM_SHA224_RSA_PKCS_PSS`
        SHA224_RSA_PKCS_PSS = 0x0047,
        /// `CKM_SHA_1`
        SHA_1 = 0x0220,
        /// `CKM_SHA_1_HMAC`
        SHA_1_HMAC = 0x0221,
        /// `CKM_SHA_1_HMAC_GENERAL`
        SHA_1_HMAC_GENERAL = 0x0222,
        /// `CKM_SHA256`
        SHA256 = 0x0250,
        /// `CKM_SHA256_HMAC`
        SHA256_HMAC = 0x0251,
        /// `CKM_SHA256_HMAC_GENERAL`
        SHA256_HMAC_GENERAL = 0x0252,
        /// `CKM_SHA224`
        SHA224 = 0x0255,
        /// `CKM_SHA224_HMAC`
        SHA224_HMAC = 0x0256,
        /// `CKM_SHA224_HMAC_GENERAL`
        SHA224_HMAC_GENERAL = 0x0257,
        /// `CKM_SHA384`
        SHA384 = 0x0260,
        /// `CKM_SHA384_HMAC`
        SHA384_HMAC = 0x0261,
        /// `CKM_SHA384_HMAC_GENERAL`
        SHA384_HMAC_GENERAL = 0x0262,
        /// `CKM_SHA512`
        SHA512 = 0x0270,
        /// `CKM_SHA512_HMAC`
        SHA512_HMAC = 0x0271,
        /// `CKM_SHA512_HMAC_GENERAL`
        SHA512_HMAC_GENERAL = 0x0272,
        /// `CKM_SHA3_256`
        SHA3_256 = 0x02B0,
        /// `CKM_SHA3_256_HMAC`
        SHA3_256_HMAC = 0x02B1,
        /// `CKM_SHA3_256_HMAC_GENERAL`
        SHA3_256_HMAC_GENERAL = 0x02B2,
        /// `CKM_SHA3_224`
        SHA3_224 = 0x02B5,
        /// `CKM_SHA3_224_HMAC`
        SHA3_224_HMAC = 0x02B6,
        /// `CKM_SHA3_224_HMAC_GENERAL`
        SHA3_224_HMAC_GENERAL = 0x02B7,
        /// `CKM_SHA3_384`
        SHA3_384 = 0x02C0,
        /// `CKM_SHA3_384_HMAC`
        SHA3_384_HMAC = 0x02C1,
        /// `CKM_SHA3_384_HMAC_GENERAL`
        SHA3_384_HMAC_GENERAL = 0x02C2,
        /// `CKM_SHA3_512`
        SHA3_512 = 0x02D0,
        /// `CKM_SHA3_512_HMAC`
        SHA3_512_HMAC = 0x02D1,
        /// `CKM_SHA3_512_HMAC_GENERAL`
        SHA3_512_HMAC_GENERAL = 0x02D2,
        /// `CKM_GENERIC_SECRET_KEY_GEN`
        GENERIC_SECRET_KEY_GEN = 0x0350,
        /// `CKM_PKCS5_PBKD2`
        PKCS5_PBKD2 = 0x03B0,
        /// `CKM_EC_KEY_PAIR_GEN`
        EC_KEY_PAIR_GEN = 0x1040,
        /// `CKM_ECDSA`: over a caller-supplied hash.
        ECDSA = 0x1041,
        /// `CKM_ECDSA_SHA1`
        ECDSA_SHA1 = 0x1042,
        /// `CKM_ECDSA_SHA224`
        ECDSA_SHA224 = 0x1043,
        /// `CKM_ECDSA_SHA256`
        ECDSA_SHA256 = 0x1044,
        /// `CKM_ECDSA_SHA384`
        ECDSA_SHA384 = 0x1045,
        /// `CKM_ECDSA_SHA512`
        ECDSA_SHA512 = 0x1046,
        /// `CKM_ECDH1_DERIVE`
        ECDH1_DERIVE = 0x1050,
        /// `CKM_EC_EDWARDS_KEY_PAIR_GEN`
        EC_EDWARDS_KEY_PAIR_GEN = 0x1055,
        /// `CKM_EC_MONTGOMERY_KEY_PAIR_GEN`
        EC_MONTGOMERY_KEY_PAIR_GEN = 0x1056,
        /// `CKM_EDDSA`
        EDDSA = 0x1057,
        /// `CKM_AES_KEY_GEN`
        AES_KEY_GEN = 0x1080,
        /// `CKM_AES_ECB`
        AES_ECB = 0x1081,
        /// `CKM_AES_CBC`
        AES_CBC = 0x1082,
        /// `CKM_AES_CBC_PAD`
        AES_CBC_PAD = 0x1085,
        /// `CKM_AES_CTR`
        AES_CTR = 0x1086,
        /// `CKM_AES_GCM`
        AES_GCM = 0x1087,
        /// `CKM_AES_CMAC`
        AES_CMAC = 0x108A,
        /// `CKM_AES_CMAC_GENERAL`
        AES_CMAC_GENERAL = 0x108B,
        /// `CKM_AES_KEY_WRAP` (RFC 3394)
        AES_KEY_WRAP = 0x2109,
        /// `CKM_AES_KEY_WRAP_KWP` (RFC 5649)
        AES_KEY_WRAP_KWP = 0x210B,
        /// `CKM_HKDF_DERIVE`
        HKDF_DERIVE = 0x402A,
        /// `CKM_HKDF_DATA`
        HKDF_DATA = 0x402B,
        /// `CKM_HKDF_KEY_GEN`
        HKDF_KEY_GEN = 0x402C,
    }
}

number_space! {
    /// A `CKK_*` key type number.
    KeyType {
        /// `CKK_RSA`
        RSA = 0x00,
        /// `CKK_EC`
        EC = 0x03,
        /// `CKK_GENERIC_SECRET`
        GENERIC_SECRET = 0x10,
        /// `CKK_AES`
        AES = 0x1F,
        /// `CKK_SHA_1_HMAC`
        SHA_1_HMAC = 0x28,
        /// `CKK_SHA256_HMAC`
        SHA256_HMAC = 0x2B,
        /// `CKK_SHA384_HMAC`
        SHA384_HMAC = 0x2C,
        /// `CKK_SHA512_HMAC`
        SHA512_HMAC = 0x2D,
        /// `CKK_SHA224_HMAC`
        SHA224_HMAC = 0x2E,
        /// `CKK_SHA3_224_HMAC`
        SHA3_224_HMAC = 0x36,
        /// `CKK_SHA3_256_HMAC`
        SHA3_256_HMAC = 0x37,
        /// `CKK_SHA3_384_HMAC`
        SHA3_384_HMAC = 0x38,
        /// `CKK_SHA3_512_HMAC`
        SHA3_512_HMAC = 0x39,
        /// `CKK_EC_EDWARDS`
        EC_EDWARDS = 0x40,
        /// `CKK_EC_MONTGOMERY`
        EC_MONTGOMERY = 0x41,
        /// `CKK_HKDF`
        HKDF = 0x42,
        /// `CKK_ML_KEM`
        ML_KEM = 0x49,
        /// `CKK_ML_DSA`
        ML_DSA = 0x4A,
        /// `CKK_SLH_DSA`
        SLH_DSA = 0x4B,
    }
}

/// The operations a mechanism serves, as a small bit set mirroring the `CKF_*` mechanism flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Operations(u32);

impl Operations {
    /// Encrypt.
    pub const ENCRYPT: Self = Self(1 << 0);
    /// Decrypt.
    pub const DECRYPT: Self = Self(1 << 1);
    /// Digest.
    pub const DIGEST: Self = Self(1 << 2);
    /// Sign (and MAC).
    pub const SIGN: Self = Self(1 << 3);
    /// Sign with recovery.
    pub const SIGN_RECOVER: Self = Self(1 << 4);
    /// Verify.
    pub const VERIFY: Self = Self(1 << 5);
    /// Verify with recovery.
    pub const VERIFY_RECOVER: Self = Self(1 << 6);
    /// Generate a secret key.
    pub const GENERATE: Self = Self(1 << 7);
    /// Generate a key pair.
    pub const GENERATE_KEY_PAIR: Self = Self(1 << 8);
    /// Wrap a key.
    pub const WRAP: Self = Self(1 << 9);
    /// Unwrap a key.
    pub const UNWRAP: Self = Self(1 << 10);
    /// Derive a key.
    pub const DERIVE: Self = Self(1 << 11);
    /// Encapsulate a key (KEM).
    pub const ENCAPSULATE: Self = Self(1 << 12);
    /// Decapsulate a key (KEM).
    pub const DECAPSULATE: Self = Self(1 << 13);

    const NAMES: [(Self, &'static str); 14] = [
        (Self::ENCRYPT, "ENCRYPT"),
        (Self::DECRYPT, "DECRYPT"),
        (Self::DIGEST, "DIGEST"),
        (Self::SIGN, "SIGN"),
        (Self::SIGN_RECOVER, "SIGN_RECOVER"),
        (Self::VERIFY, "VERIFY"),
        (Self::VERIFY_RECOVER, "VERIFY_RECOVER"),
        (Self::GENERATE, "GENERATE"),
        (Self::GENERATE_KEY_PAIR, "GENERATE_KEY_PAIR"),
        (Self::WRAP, "WRAP"),
        (Self::UNWRAP, "UNWRAP"),
        (Self::DERIVE, "DERIVE"),
        (Self::ENCAPSULATE, "ENCAPSULATE"),
        (Self::DECAPSULATE, "DECAPSULATE"),
    ];

    /// No operation.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Union of two sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every operation in `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Removes the operations in `other`.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The raw bits (for mapping to `CKF_*` flags).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Operations {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Debug for Operations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(op, _)| self.contains(*op))
            .map(|(_, n)| *n)
            .collect();
        write!(f, "{}", names.join("|"))
    }
}

/// The unit of a mechanism's key-size range, as PKCS#11 defines it per mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    /// Sizes in bits (RSA, EC).
    Bits,
    /// Sizes in bytes (AES, generic secrets, HMAC keys).
    Bytes,
    /// The size has no meaning for the mechanism (digests, ML-KEM by parameter set).
    None,
}

/// One row of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MechanismInfo {
    /// The mechanism.
    pub mechanism: MechanismType,
    /// Key types the mechanism takes (empty for digests).
    pub key_types: &'static [KeyType],
    /// Smallest key size, in `unit`.
    pub min_key_size: u64,
    /// Largest key size, in `unit`.
    pub max_key_size: u64,
    /// What `min_key_size`/`max_key_size` count.
    pub unit: SizeUnit,
    /// The operations served.
    pub operations: Operations,
    /// Whether the `*Update`/`*Final` multi-part form works.
    pub multipart: bool,
    /// Whether the algorithm is FIPS 140-3 approved for these operations.
    pub fips_approved: bool,
}

/// What a token allows beyond the safe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Allow RSA keys of 1024 bits (default: 2048 is the minimum).
    pub allow_weak_rsa: bool,
    /// Allow *creating* SHA-1 signatures (verification of old SHA-1 signatures is always
    /// allowed).
    pub allow_sha1_signatures: bool,
    /// Advertise only FIPS-approved mechanisms.
    pub fips_only: bool,
}

/// The registry a token serves: the rows that are implemented and allowed by its policy.
///
/// Every `C_*Init` and key generation looks its mechanism up here, so the rows sit in one
/// slice sorted by mechanism, found by a binary search over a separate array of their
/// numbers (eight bytes each, a few cache lines for the whole table) rather than by a walk
/// of B-tree nodes.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `rows[i].mechanism`, in ascending order.
    keys: Box<[MechanismType]>,
    rows: Box<[MechanismInfo]>,
    policy: Policy,
}

impl Registry {
    /// Builds the registry for `policy` from every algorithm module's rows.
    pub fn new(policy: Policy) -> Self {
        let mut rows = BTreeMap::new();
        for mut row in crate::algorithms::all_rows() {
            if policy.fips_only && !row.fips_approved {
                continue;
            }
            if row.key_types.contains(&KeyType::RSA) && policy.allow_weak_rsa {
                row.min_key_size = row.min_key_size.min(1024);
            }
            if !policy.allow_sha1_signatures && is_sha1_signature(row.mechanism) {
                row.operations = row
                    .operations
                    .without(Operations::SIGN | Operations::SIGN_RECOVER);
            }
            if row.operations.is_empty() {
                continue;
            }
            // A mechanism declared twice keeps its last row, as a map insert would.
            rows.insert(row.mechanism, row);
        }
        Registry {
            keys: rows.keys().copied().collect(),
            rows: rows.into_values().collect(),
            policy,
        }
    }

    /// The row for `mechanism`, if the token offers it.
    pub fn get(&self, mechanism: MechanismType) -> Option<&MechanismInfo> {
        match self.keys.binary_search(&mechanism) {
            Ok(i) => self.rows.get(i),
            Err(_) => None,
        }
    }

    /// Every mechanism offered, in numeric order.
    pub fn mechanisms(&self) -> impl Iterator<Item = MechanismType> + '_ {
        self.keys.iter().copied()
    }

    /// Every row, in numeric order.
    pub fn rows(&self) -> impl Iterator<Item = &MechanismInfo> + '_ {
        self.rows.iter()
    }

    /// The policy this registry was built for.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Checks that `mechanism` is offered for `operation` with a key of `key_type` and
    /// `key_size` (in the row's unit; ignored when the unit is `None`).
    pub fn check(
        &self,
        mechanism: MechanismType,
        operation: Operations,
        key: Option<(KeyType, u64)>,
    ) -> crate::Result<&MechanismInfo> {
        let row = self
            .get(mechanism)
            .filter(|row| row.operations.contains(operation))
            .ok_or(crate::CryptoError::MechanismUnsupported(mechanism))?;
        if let Some((key_type, size)) = key {
            if !row.key_types.contains(&key_type) {
                return Err(crate::CryptoError::KeyTypeInconsistent {
                    key_type,
                    mechanism,
                });
            }
            if row.unit != SizeUnit::None && !(row.min_key_size..=row.max_key_size).contains(&size)
            {
                let to_bits = |v: u64| match row.unit {
                    SizeUnit::Bytes => v * 8,
                    _ => v,
                } as usize;
                return Err(crate::CryptoError::KeySizeRange {
                    bits: to_bits(size),
                    min: to_bits(row.min_key_size),
                    max: to_bits(row.max_key_size),
                });
            }
        }
        Ok(row)
    }
}

fn is_sha1_signature(m: MechanismType) -> bool {
    matches!(
        m,
        MechanismType::SHA1_RSA_PKCS | MechanismType::SHA1_RSA_PKCS_PSS | MechanismType::ECDSA_SHA1
    )
}

/// Shorthand used by the algorithm modules to declare their rows.
pub(crate) const fn row(
    mechanism: MechanismType,
    key_types: &'static [KeyType],
    (min_key_size, max_key_size, unit): (u64, u64, SizeUnit),
    operations: Operations,
    multipart: bool,
    fips_approved: bool,
) -> MechanismInfo {
    MechanismInfo {
        mechanism,
        key_types,
        min_key_size,
        max_key_size,
        unit,
        operations,
        multipart,
        fips_approved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_names_and_unknown_values() {
        assert_eq!(format!("{:?}", MechanismType::AES_GCM), "AES_GCM");
        assert_eq!(
            format!("{:?}", MechanismType(0x8000_0001)),
            "MechanismType(0x80000001)"
        );
        assert_eq!(
            format!("{:?}", Operations::SIGN | Operations::VERIFY),
            "SIGN|VERIFY"
        );
    }

    #[test]
    fn default_policy_refuses_weak_rsa_and_sha1_signing() {
        let reg = Registry::new(Policy::default());
        let row = reg.get(MechanismType::SHA256_RSA_PKCS).expect("offered");
        assert_eq!(row.min_key_size, 2048);
        let sha1 = reg
            .get(MechanismType::SHA1_RSA_PKCS)
            .expect("verify still offered");
        assert!(!sha1.operations.contains(Operations::SIGN));
        assert!(sha1.operations.contains(Operations::VERIFY));
        let err = reg
            .check(
                MechanismType::SHA256_RSA_PKCS,
                Operations::SIGN,
                Some((KeyType::RSA, 1024)),
            )
            .expect_err("1024-bit RSA refused");
        assert!(matches!(
            err,
            crate::CryptoError::KeySizeRange { bits: 1024, .. }
        ));

        let weak = Registry::new(Policy {
            allow_weak_rsa: true,
            allow_sha1_signatures: true,
            fips_only: false,
        });
        assert_eq!(
            weak.get(MechanismType::SHA256_RSA_PKCS)
                .map(|r| r.min_key_size),
            Some(1024)
        );
        assert!(
            weak.check(
                MechanismType::SHA1_RSA_PKCS,
                Operations::SIGN,
                Some((KeyType::RSA, 2048))
            )
            .is_ok()
        );
    }

    #[test]
    fn fips_only_drops_unapproved_rows() {
        let reg = Registry::new(Policy {
            fips_only: true,
            ..Policy::default()
        });
        assert!(reg.get(MechanismType::SLH_DSA).is_none());
        assert!(reg.rows().all(|r| r.fips_approved));
        assert!(reg.get(MechanismType::AES_GCM).is_some());
    }

    #[test]
    fn every_row_is_found_by_its_mechanism_and_nothing_else_is() {
        let reg = Registry::new(Policy::default());
        let all: Vec<MechanismType> = reg.mechanisms().collect();
        assert!(all.len() > 40, "the registry has its rows");
        assert!(all.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
        for row in reg.rows() {
            assert_eq!(reg.get(row.mechanism), Some(row));
        }
        // Numbers below, between and above the offered ones.
        let first = all[0].0;
        let last = all[all.len() - 1].0;
        let mut absent = vec![u64::MAX, last + 1, 0x8000_0001];
        if first > 0 {
            absent.push(first - 1);
        }
        absent.extend(
            all.windows(2)
                .filter(|w| w[1].0 - w[0].0 > 1)
                .map(|w| w[0].0 + 1),
        );
        for m in absent {
            assert_eq!(reg.get(MechanismType(m)), None, "{m:#x}");
        }
    }

    #[test]
    fn wrong_key_type_is_reported_as_such() {
        let reg = Registry::new(Policy::default());
        let err = reg
            .check(
                MechanismType::AES_GCM,
                Operations::ENCRYPT,
                Some((KeyType::RSA, 2048)),
            )
            .expect_err("RSA key refused for AES");
        assert!(matches!(
            err,
            crate::CryptoError::KeyTypeInconsistent { .. }
        ));
    }
}
