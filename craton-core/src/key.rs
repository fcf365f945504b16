//! Key material as one type the engine can hold, and its translation to and from PKCS#11
//! attributes.
//!
//! A PKCS#11 key object *is* its attributes: `CKA_MODULUS` and friends for RSA, `CKA_EC_PARAMS`
//! and `CKA_VALUE` for an EC private key, `CKA_PARAMETER_SET` and `CKA_SEED` for ML-DSA. This
//! module turns such attributes into a usable [`KeyMaterial`] (checking that they form a valid
//! key) and turns generated keys back into the attributes an object stores. It refuses key
//! material it cannot check, and never prints any of it.

use crate::attribute::{AttrValue, AttributeType as A, Attributes, ObjectClass};
use crate::ec::{Curve, EcKey, der_octet_string, parse_ec_point};
use crate::edwards::{self, Ed25519Key, X25519Key};
use crate::error::{CryptoError, Result};
use crate::mechanism::{KeyType, MechanismType as M};
use crate::pq::{MlDsaKey, MlDsaParams, MlKemKey, MlKemParams, SlhDsaKey, SlhDsaParams};
use crate::rng::Rng;
use crate::rsa::{RsaComponents, RsaKey};
use crate::secret::SecretBytes;
use zeroize::Zeroizing;

/// What to generate: the key type and its size or parameter set, as the engine reads them
/// from a generation template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// An AES key of 16, 24 or 32 bytes.
    Aes {
        /// Length in bytes.
        len: usize,
    },
    /// A generic secret (HMAC) key of `len` bytes, of the given key type.
    GenericSecret {
        /// Length in bytes.
        len: usize,
        /// `CKK_GENERIC_SECRET` or one of the `CKK_SHA*_HMAC` types.
        key_type: KeyType,
    },
    /// An RSA key pair with e = 65537.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// An ECDSA/ECDH key pair.
    Ec(Curve),
    /// An Ed25519 key pair.
    Ed25519,
    /// An X25519 key pair.
    X25519,
    /// An ML-KEM key pair.
    MlKem(MlKemParams),
    /// An ML-DSA key pair.
    MlDsa(MlDsaParams),
    /// An SLH-DSA key pair.
    SlhDsa(SlhDsaParams),
}

impl KeySpec {
    /// The generation mechanism for this spec.
    pub fn mechanism(self) -> M {
        match self {
            KeySpec::Aes { .. } => M::AES_KEY_GEN,
            KeySpec::GenericSecret { .. } => M::GENERIC_SECRET_KEY_GEN,
            KeySpec::Rsa { .. } => M::RSA_PKCS_KEY_PAIR_GEN,
            KeySpec::Ec(_) => M::EC_KEY_PAIR_GEN,
            KeySpec::Ed25519 => M::EC_EDWARDS_KEY_PAIR_GEN,
            KeySpec::X25519 => M::EC_MONTGOMERY_KEY_PAIR_GEN,
            KeySpec::MlKem(_) => M::ML_KEM_KEY_PAIR_GEN,
            KeySpec::MlDsa(_) => M::ML_DSA_KEY_PAIR_GEN,
            KeySpec::SlhDsa(_) => M::SLH_DSA_KEY_PAIR_GEN,
        }
    }

    /// The `CKK_*` of the generated key.
    pub fn key_type(self) -> KeyType {
        match self {
            KeySpec::Aes { .. } => KeyType::AES,
            KeySpec::GenericSecret { key_type, .. } => key_type,
            KeySpec::Rsa { .. } => KeyType::RSA,
            KeySpec::Ec(_) => KeyType::EC,
            KeySpec::Ed25519 => KeyType::EC_EDWARDS,
            KeySpec::X25519 => KeyType::EC_MONTGOMERY,
            KeySpec::MlKem(_) => KeyType::ML_KEM,
            KeySpec::MlDsa(_) => KeyType::ML_DSA,
            KeySpec::SlhDsa(_) => KeyType::SLH_DSA,
        }
    }

    /// The size in the registry's unit for the generation mechanism (bytes for secrets,
    /// bits for RSA and EC, 0 where the size has no meaning).
    pub fn size(self) -> u64 {
        match self {
            KeySpec::Aes { len } | KeySpec::GenericSecret { len, .. } => len as u64,
            KeySpec::Rsa { bits } => bits as u64,
            KeySpec::Ec(c) => c.bits() as u64,
            KeySpec::Ed25519 | KeySpec::X25519 => 255,
            _ => 0,
        }
    }

    /// Whether this spec makes a key pair (as opposed to one secret key).
    pub fn is_pair(self) -> bool {
        !matches!(self, KeySpec::Aes { .. } | KeySpec::GenericSecret { .. })
    }
}

/// A usable key of any type: secret bytes or a public/private key of one algorithm.
pub enum KeyMaterial {
    /// An AES or generic secret (HMAC, HKDF) key.
    Secret {
        /// The key type (`CKK_AES`, `CKK_GENERIC_SECRET`, `CKK_SHA256_HMAC`, …).
        key_type: KeyType,
        /// The key bytes.
        value: SecretBytes,
    },
    /// RSA.
    Rsa(RsaKey),
    /// ECDSA/ECDH on a NIST curve.
    Ec(EcKey),
    /// Ed25519.
    Ed25519(Ed25519Key),
    /// An X25519 private key.
    X25519(X25519Key),
    /// An X25519 public key (the u-coordinate); used only as a derivation's peer value.
    X25519Public([u8; 32]),
    /// ML-KEM.
    MlKem(MlKemKey),
    /// ML-DSA.
    MlDsa(MlDsaKey),
    /// SLH-DSA.
    SlhDsa(SlhDsaKey),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inner types already redact; name the type and size only.
        write!(
            f,
            "KeyMaterial({:?}, size {}, private {})",
            self.key_type(),
            self.size(),
            self.is_private()
        )
    }
}

/// A freshly generated key: one secret key, or a pair.
#[derive(Debug)]
pub enum Generated {
    /// A secret key.
    Secret(KeyMaterial),
    /// A key pair: (public, private).
    Pair(KeyMaterial, KeyMaterial),
}

fn bytes(attrs: &Attributes, a: crate::attribute::AttributeType) -> Option<&[u8]> {
    attrs.get(&a).and_then(AttrValue::as_bytes)
}

fn need(attrs: &Attributes, a: crate::attribute::AttributeType) -> Result<&[u8]> {
    bytes(attrs, a).ok_or(CryptoError::KeyInvalid(
        "a required key attribute is missing",
    ))
}

fn ulong(attrs: &Attributes, a: crate::attribute::AttributeType) -> Option<u64> {
    match attrs.get(&a) {
        Some(AttrValue::Ulong(v)) => Some(*v),
        _ => None,
    }
}

fn secret(b: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    Some(Zeroizing::new(b.to_vec()))
}

/// Strips the DER OCTET STRING around a `CKA_EC_POINT` if there is one; raw points are also
/// accepted, as several clients send them.
fn unwrap_point(bytes: &[u8], field_len: usize) -> Result<Vec<u8>> {
    parse_ec_point(bytes, field_len).map(<[u8]>::to_vec)
}

fn b(v: Vec<u8>) -> AttrValue {
    AttrValue::Bytes(v)
}

impl KeyMaterial {
    /// Generates a key (pair) from our DRBG; key pairs pass their pairwise consistency test
    /// before they are returned.
    pub fn generate(spec: KeySpec, rng: &Rng) -> Result<Generated> {
        let pair = |k: KeyMaterial| -> Result<Generated> {
            let public = k.public_key()?;
            Ok(Generated::Pair(public, k))
        };
        match spec {
            KeySpec::Aes { len } => {
                if !matches!(len, 16 | 24 | 32) {
                    return Err(CryptoError::KeySizeRange {
                        bits: len * 8,
                        min: 128,
                        max: 256,
                    });
                }
                Ok(Generated::Secret(KeyMaterial::Secret {
                    key_type: KeyType::AES,
                    value: SecretBytes::generate(len, |b| rng.fill(b))?,
                }))
            }
            KeySpec::GenericSecret { len, key_type } => {
                if len == 0 || len > 512 {
                    return Err(CryptoError::KeySizeRange {
                        bits: len * 8,
                        min: 8,
                        max: 4096,
                    });
                }
                Ok(Generated::Secret(KeyMaterial::Secret {
                    key_type,
                    value: SecretBytes::generate(len, |b| rng.fill(b))?,
                }))
            }
            KeySpec::Rsa { bits } => pair(KeyMaterial::Rsa(RsaKey::generate(bits, rng)?)),
            KeySpec::Ec(curve) => pair(KeyMaterial::Ec(EcKey::generate(curve, rng)?)),
            KeySpec::Ed25519 => pair(KeyMaterial::Ed25519(Ed25519Key::generate(rng)?)),
            KeySpec::X25519 => pair(KeyMaterial::X25519(X25519Key::generate(rng)?)),
            KeySpec::MlKem(p) => pair(KeyMaterial::MlKem(MlKemKey::generate(p, rng)?)),
            KeySpec::MlDsa(p) => pair(KeyMaterial::MlDsa(MlDsaKey::generate(p, rng)?)),
            KeySpec::SlhDsa(p) => pair(KeyMaterial::SlhDsa(SlhDsaKey::generate(p, rng)?)),
        }
    }

    /// The `CKK_*` type.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyMaterial::Secret { key_type, .. } => *key_type,
            KeyMaterial::Rsa(_) => KeyType::RSA,
            KeyMaterial::Ec(_) => KeyType::EC,
            KeyMaterial::Ed25519(_) => KeyType::EC_EDWARDS,
            KeyMaterial::X25519(_) | KeyMaterial::X25519Public(_) => KeyType::EC_MONTGOMERY,
            KeyMaterial::MlKem(_) => KeyType::ML_KEM,
            KeyMaterial::MlDsa(_) => KeyType::ML_DSA,
            KeyMaterial::SlhDsa(_) => KeyType::SLH_DSA,
        }
    }

    /// The key size in the unit the registry uses for its mechanisms: bytes for secret keys,
    /// bits for RSA and EC, the curve size for the 25519 curves, 0 for the post-quantum keys
    /// (sized by parameter set).
    pub fn size(&self) -> u64 {
        match self {
            KeyMaterial::Secret { value, .. } => value.len() as u64,
            KeyMaterial::Rsa(k) => k.bits() as u64,
            KeyMaterial::Ec(k) => k.curve().bits() as u64,
            KeyMaterial::Ed25519(_) | KeyMaterial::X25519(_) | KeyMaterial::X25519Public(_) => 255,
            _ => 0,
        }
    }

    /// A comparable strength in bits (SP 800-57 Part 1 Table 2), used to refuse wrapping a
    /// stronger key under a weaker one.
    pub fn security_bits(&self) -> u32 {
        match self {
            KeyMaterial::Secret { value, .. } => (value.len() * 8).min(256) as u32,
            KeyMaterial::Rsa(k) => match k.bits() {
                b if b >= 15360 => 256,
                b if b >= 7680 => 192,
                b if b >= 3072 => 128,
                b if b >= 2048 => 112,
                _ => 80,
            },
            KeyMaterial::Ec(k) => (k.curve().bits() / 2) as u32,
            KeyMaterial::Ed25519(_) | KeyMaterial::X25519(_) | KeyMaterial::X25519Public(_) => 128,
            KeyMaterial::MlKem(k) => match k.params() {
                MlKemParams::MlKem512 => 128,
                MlKemParams::MlKem768 => 192,
                MlKemParams::MlKem1024 => 256,
            },
            KeyMaterial::MlDsa(k) => match k.params() {
                MlDsaParams::MlDsa44 => 128,
                MlDsaParams::MlDsa65 => 192,
                MlDsaParams::MlDsa87 => 256,
            },
            KeyMaterial::SlhDsa(k) => (k.params().n() * 8) as u32,
        }
    }

    /// Whether this is a secret or private key (as opposed to a public key).
    pub fn is_private(&self) -> bool {
        match self {
            KeyMaterial::Secret { .. } | KeyMaterial::X25519(_) => true,
            KeyMaterial::Rsa(k) => k.is_private(),
            KeyMaterial::Ec(k) => k.is_private(),
            KeyMaterial::Ed25519(k) => k.seed().is_some(),
            KeyMaterial::X25519Public(_) => false,
            KeyMaterial::MlKem(k) => k.seed().is_some() || k.expanded_private_bytes().is_ok(),
            KeyMaterial::MlDsa(k) => k.seed().is_some(),
            KeyMaterial::SlhDsa(k) => k.private_bytes().is_some(),
        }
    }

    /// The secret bytes of a secret key.
    pub fn secret_value(&self) -> Option<&SecretBytes> {
        match self {
            KeyMaterial::Secret { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The public half of a key pair.
    pub fn public_key(&self) -> Result<KeyMaterial> {
        Ok(match self {
            KeyMaterial::Secret { .. } => {
                return Err(CryptoError::KeyFunctionNotPermitted(
                    "a secret key has no public half",
                ));
            }
            KeyMaterial::Rsa(k) => KeyMaterial::Rsa(k.public_key()?),
            KeyMaterial::Ec(k) => KeyMaterial::Ec(k.public_key()?),
            KeyMaterial::Ed25519(k) => {
                KeyMaterial::Ed25519(Ed25519Key::from_public(&k.public_bytes())?)
            }
            KeyMaterial::X25519(k) => KeyMaterial::X25519Public(k.public_bytes()),
            KeyMaterial::X25519Public(u) => KeyMaterial::X25519Public(*u),
            KeyMaterial::MlKem(k) => {
                KeyMaterial::MlKem(MlKemKey::from_public(k.params(), &k.public_bytes()?)?)
            }
            KeyMaterial::MlDsa(k) => {
                KeyMaterial::MlDsa(MlDsaKey::from_public(k.params(), &k.public_bytes()?)?)
            }
            KeyMaterial::SlhDsa(k) => {
                KeyMaterial::SlhDsa(SlhDsaKey::from_public(k.params(), k.public_bytes())?)
            }
        })
    }

    /// The attributes that describe the public half of this key (for a public key object,
    /// and also stored on the private key object where PKCS#11 expects them, such as
    /// `CKA_MODULUS` or `CKA_EC_PARAMS`).
    pub fn public_attributes(&self) -> Result<Vec<(crate::attribute::AttributeType, AttrValue)>> {
        Ok(match self {
            KeyMaterial::Secret { value, .. } => {
                vec![(A::VALUE_LEN, AttrValue::Ulong(value.len() as u64))]
            }
            KeyMaterial::Rsa(k) => {
                let c = k.components(false)?;
                vec![
                    (A::MODULUS, b(c.modulus.clone())),
                    (A::PUBLIC_EXPONENT, b(c.public_exponent.clone())),
                    (A::MODULUS_BITS, AttrValue::Ulong(k.bits() as u64)),
                ]
            }
            KeyMaterial::Ec(k) => vec![
                (A::EC_PARAMS, b(k.curve().ec_params().to_vec())),
                (A::EC_POINT, b(der_octet_string(k.public_point()))),
            ],
            KeyMaterial::Ed25519(k) => vec![
                (A::EC_PARAMS, b(edwards::ED25519_OID.to_vec())),
                (A::EC_POINT, b(der_octet_string(&k.public_bytes()))),
            ],
            KeyMaterial::X25519(k) => vec![
                (A::EC_PARAMS, b(edwards::X25519_OID.to_vec())),
                (A::EC_POINT, b(der_octet_string(&k.public_bytes()))),
            ],
            KeyMaterial::X25519Public(u) => vec![
                (A::EC_PARAMS, b(edwards::X25519_OID.to_vec())),
                (A::EC_POINT, b(der_octet_string(u))),
            ],
            KeyMaterial::MlKem(k) => vec![
                (A::PARAMETER_SET, AttrValue::Ulong(k.params().ckp())),
                (A::VALUE, b(k.public_bytes()?)),
            ],
            KeyMaterial::MlDsa(k) => vec![
                (A::PARAMETER_SET, AttrValue::Ulong(k.params().ckp())),
                (A::VALUE, b(k.public_bytes()?)),
            ],
            KeyMaterial::SlhDsa(k) => vec![
                (A::PARAMETER_SET, AttrValue::Ulong(k.params().ckp())),
                (A::VALUE, b(k.public_bytes().to_vec())),
            ],
        })
    }

    /// The attributes of a private or secret key object: its public description (where the
    /// object type carries one) plus the secret components. These are what the store keeps,
    /// encrypted, and what [`KeyMaterial::from_attributes`] reads back.
    pub fn private_attributes(&self) -> Result<Vec<(crate::attribute::AttributeType, AttrValue)>> {
        let mut out = match self {
            KeyMaterial::Secret { .. } => Vec::new(),
            KeyMaterial::MlKem(k) => vec![(A::PARAMETER_SET, AttrValue::Ulong(k.params().ckp()))],
            KeyMaterial::MlDsa(k) => vec![(A::PARAMETER_SET, AttrValue::Ulong(k.params().ckp()))],
            KeyMaterial::SlhDsa(k) => {
                vec![(A::PARAMETER_SET, AttrValue::Ulong(k.params().ckp()))]
            }
            KeyMaterial::Rsa(_) => self
                .public_attributes()?
                .into_iter()
                .filter(|(a, _)| *a != A::MODULUS_BITS)
                .collect(),
            _ => self
                .public_attributes()?
                .into_iter()
                .filter(|(a, _)| *a == A::EC_PARAMS)
                .collect(),
        };
        let secret_missing = || CryptoError::KeyFunctionNotPermitted("not a private key");
        match self {
            KeyMaterial::Secret { value, .. } => {
                out.push((A::VALUE, AttrValue::secret(value.expose())));
                out.push((A::VALUE_LEN, AttrValue::Ulong(value.len() as u64)));
            }
            KeyMaterial::Rsa(k) => {
                let c = k.components(true)?;
                let parts = [
                    (A::PRIVATE_EXPONENT, &c.private_exponent),
                    (A::PRIME_1, &c.prime_1),
                    (A::PRIME_2, &c.prime_2),
                    (A::EXPONENT_1, &c.exponent_1),
                    (A::EXPONENT_2, &c.exponent_2),
                    (A::COEFFICIENT, &c.coefficient),
                ];
                for (a, v) in parts {
                    let v = v.as_ref().ok_or_else(secret_missing)?;
                    out.push((a, AttrValue::secret(v)));
                }
            }
            KeyMaterial::Ec(k) => out.push((A::VALUE, AttrValue::secret(&k.private_scalar()?))),
            KeyMaterial::Ed25519(k) => {
                let seed = k.seed().ok_or_else(secret_missing)?;
                out.push((A::VALUE, AttrValue::secret(seed.expose())));
            }
            KeyMaterial::X25519(k) => {
                out.push((A::VALUE, AttrValue::secret(k.private_bytes().expose())))
            }
            KeyMaterial::X25519Public(_) => return Err(secret_missing()),
            KeyMaterial::MlKem(k) => {
                if let Some(seed) = k.seed() {
                    out.push((A::SEED, AttrValue::secret(seed.expose())));
                }
                out.push((A::VALUE, AttrValue::secret(&k.expanded_private_bytes()?)));
            }
            KeyMaterial::MlDsa(k) => {
                let seed = k.seed().ok_or_else(secret_missing)?;
                out.push((A::SEED, AttrValue::secret(seed.expose())));
            }
            KeyMaterial::SlhDsa(k) => {
                let sk = k.private_bytes().ok_or_else(secret_missing)?;
                out.push((A::VALUE, AttrValue::secret(sk.expose())));
            }
        }
        Ok(out)
    }

    /// The private key as DER PKCS#8 PrivateKeyInfo (RFC 5208; RFC 8410 for the 25519
    /// curves): the encoding `C_WrapKey` wraps for private keys. Post-quantum keys have no
    /// settled PKCS#8 form in AWS-LC yet and are refused.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        let curve25519 = |oid_last: u8, secret: &[u8]| {
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, oid_last, 0x04,
                0x22, 0x04, 0x20,
            ];
            der.extend_from_slice(secret);
            Zeroizing::new(der)
        };
        match self {
            KeyMaterial::Rsa(k) => k.pkcs8(),
            KeyMaterial::Ec(k) => k.pkcs8(),
            KeyMaterial::Ed25519(k) => {
                let seed = k
                    .seed()
                    .ok_or(CryptoError::KeyFunctionNotPermitted("not a private key"))?;
                Ok(curve25519(0x70, seed.expose()))
            }
            KeyMaterial::X25519(k) => Ok(curve25519(0x6e, k.private_bytes().expose())),
            _ => Err(CryptoError::KeyFunctionNotPermitted(
                "this key type has no PKCS#8 encoding here",
            )),
        }
    }

    /// Parses a DER PKCS#8 private key of `key_type` (what `C_UnwrapKey` unwraps), checking it
    /// like any imported key.
    pub fn from_pkcs8(key_type: KeyType, der: &[u8]) -> Result<KeyMaterial> {
        let bad = || CryptoError::KeyInvalid("not a valid PKCS#8 key of the expected type");
        let curve25519 = |oid_last: u8| -> Option<&[u8]> {
            let prefix = [
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, oid_last, 0x04,
                0x22, 0x04, 0x20,
            ];
            der.strip_prefix(&prefix[..])
                .filter(|rest| rest.len() == 32)
        };
        match key_type {
            KeyType::EC_EDWARDS => Ok(KeyMaterial::Ed25519(Ed25519Key::from_seed(
                curve25519(0x70).ok_or_else(bad)?,
            )?)),
            KeyType::EC_MONTGOMERY => Ok(KeyMaterial::X25519(X25519Key::from_private(
                curve25519(0x6e).ok_or_else(bad)?,
            )?)),
            KeyType::RSA => {
                let (pkey, kind) = crate::ffi::pkey::Pkey::from_pkcs8(der).map_err(|_| bad())?;
                if kind != crate::ffi::pkey::Pkcs8Kind::Rsa {
                    return Err(bad());
                }
                // Rebuild from components so the key goes through the same checks as any
                // import.
                let key = RsaKey::from_pkey_unchecked(pkey)?;
                let c = key.components(true)?;
                Ok(KeyMaterial::Rsa(RsaKey::from_components(&c)?))
            }
            KeyType::EC => {
                let (pkey, kind) = crate::ffi::pkey::Pkey::from_pkcs8(der).map_err(|_| bad())?;
                let crate::ffi::pkey::Pkcs8Kind::Ec(nid) = kind else {
                    return Err(bad());
                };
                let curve = Curve::from_nid(nid).ok_or_else(bad)?;
                let scalar = pkey
                    .ec_private_scalar(curve.field_len())
                    .map_err(|_| bad())?;
                Ok(KeyMaterial::Ec(EcKey::from_private_scalar(curve, &scalar)?))
            }
            _ => Err(CryptoError::KeyFunctionNotPermitted(
                "this key type has no PKCS#8 encoding here",
            )),
        }
    }

    /// Rebuilds a key from the attributes of a key object of `class`, checking that they form
    /// a valid key (point on the curve, consistent RSA components, lengths of the parameter
    /// set). `CKA_KEY_TYPE` must be present.
    pub fn from_attributes(class: ObjectClass, attrs: &Attributes) -> Result<KeyMaterial> {
        let key_type = KeyType(
            ulong(attrs, A::KEY_TYPE).ok_or(CryptoError::KeyInvalid("CKA_KEY_TYPE is missing"))?,
        );
        let private = match class {
            ObjectClass::SECRET_KEY => {
                let value = need(attrs, A::VALUE)?;
                if key_type == KeyType::AES && !matches!(value.len(), 16 | 24 | 32) {
                    return Err(CryptoError::KeyInvalid("an AES key is 16, 24 or 32 bytes"));
                }
                if value.is_empty() {
                    return Err(CryptoError::KeyInvalid("a secret key cannot be empty"));
                }
                return Ok(KeyMaterial::Secret {
                    key_type,
                    value: SecretBytes::new(value),
                });
            }
            ObjectClass::PRIVATE_KEY => true,
            ObjectClass::PUBLIC_KEY => false,
            _ => return Err(CryptoError::KeyInvalid("not a key object")),
        };
        let set = |what| ulong(attrs, A::PARAMETER_SET).ok_or(CryptoError::KeyInvalid(what));
        Ok(match key_type {
            KeyType::RSA => {
                let mut c = RsaComponents {
                    modulus: need(attrs, A::MODULUS)?.to_vec(),
                    public_exponent: need(attrs, A::PUBLIC_EXPONENT)?.to_vec(),
                    ..RsaComponents::default()
                };
                if private {
                    c.private_exponent = secret(need(attrs, A::PRIVATE_EXPONENT)?);
                    c.prime_1 = bytes(attrs, A::PRIME_1).and_then(secret);
                    c.prime_2 = bytes(attrs, A::PRIME_2).and_then(secret);
                    c.exponent_1 = bytes(attrs, A::EXPONENT_1).and_then(secret);
                    c.exponent_2 = bytes(attrs, A::EXPONENT_2).and_then(secret);
                    c.coefficient = bytes(attrs, A::COEFFICIENT).and_then(secret);
                }
                KeyMaterial::Rsa(RsaKey::from_components(&c)?)
            }
            KeyType::EC => {
                let curve = Curve::from_ec_params(need(attrs, A::EC_PARAMS)?)?;
                if private {
                    KeyMaterial::Ec(EcKey::from_private_scalar(curve, need(attrs, A::VALUE)?)?)
                } else {
                    let point = unwrap_point(need(attrs, A::EC_POINT)?, curve.field_len())?;
                    KeyMaterial::Ec(EcKey::from_public_point(curve, &point)?)
                }
            }
            KeyType::EC_EDWARDS => {
                if !edwards::is_ed25519_params(need(attrs, A::EC_PARAMS)?) {
                    return Err(CryptoError::KeyInvalid("only Ed25519 is supported"));
                }
                if private {
                    KeyMaterial::Ed25519(Ed25519Key::from_seed(need(attrs, A::VALUE)?)?)
                } else {
                    let point = strip_octet_string(need(attrs, A::EC_POINT)?, 32)?;
                    KeyMaterial::Ed25519(Ed25519Key::from_public(point)?)
                }
            }
            KeyType::EC_MONTGOMERY => {
                if !edwards::is_x25519_params(need(attrs, A::EC_PARAMS)?) {
                    return Err(CryptoError::KeyInvalid("only X25519 is supported"));
                }
                if private {
                    KeyMaterial::X25519(X25519Key::from_private(need(attrs, A::VALUE)?)?)
                } else {
                    let u = strip_octet_string(need(attrs, A::EC_POINT)?, 32)?;
                    let mut out = [0u8; 32];
                    out.copy_from_slice(u);
                    KeyMaterial::X25519Public(out)
                }
            }
            KeyType::ML_KEM => {
                let p = MlKemParams::from_ckp(set("CKA_PARAMETER_SET is missing")?)
                    .ok_or(CryptoError::KeyInvalid("unknown ML-KEM parameter set"))?;
                if !private {
                    KeyMaterial::MlKem(MlKemKey::from_public(p, need(attrs, A::VALUE)?)?)
                } else if let Some(seed) = bytes(attrs, A::SEED) {
                    let k = MlKemKey::from_seed(p, seed)?;
                    // A stored expanded key must be the one the seed expands to.
                    if let Some(v) = bytes(attrs, A::VALUE)
                        && k.expanded_private_bytes()?.as_slice() != v
                    {
                        return Err(CryptoError::KeyInvalid("ML-KEM seed and value disagree"));
                    }
                    KeyMaterial::MlKem(k)
                } else {
                    KeyMaterial::MlKem(MlKemKey::from_expanded_private(p, need(attrs, A::VALUE)?)?)
                }
            }
            KeyType::ML_DSA => {
                let p = MlDsaParams::from_ckp(set("CKA_PARAMETER_SET is missing")?)
                    .ok_or(CryptoError::KeyInvalid("unknown ML-DSA parameter set"))?;
                if private {
                    let seed = bytes(attrs, A::SEED).ok_or(CryptoError::KeyInvalid(
                        "an ML-DSA private key is imported from its CKA_SEED",
                    ))?;
                    KeyMaterial::MlDsa(MlDsaKey::from_seed(p, seed)?)
                } else {
                    KeyMaterial::MlDsa(MlDsaKey::from_public(p, need(attrs, A::VALUE)?)?)
                }
            }
            KeyType::SLH_DSA => {
                let p = SlhDsaParams::from_ckp(set("CKA_PARAMETER_SET is missing")?)
                    .ok_or(CryptoError::KeyInvalid("unknown SLH-DSA parameter set"))?;
                if private {
                    KeyMaterial::SlhDsa(SlhDsaKey::from_private(p, need(attrs, A::VALUE)?)?)
                } else {
                    KeyMaterial::SlhDsa(SlhDsaKey::from_public(p, need(attrs, A::VALUE)?)?)
                }
            }
            _ => return Err(CryptoError::KeyInvalid("unsupported key type")),
        })
    }
}

/// Accepts a 32-byte 25519 public value raw or inside a DER OCTET STRING.
fn strip_octet_string(bytes: &[u8], len: usize) -> Result<&[u8]> {
    if bytes.len() == len {
        return Ok(bytes);
    }
    match bytes {
        [0x04, l, rest @ ..] if usize::from(*l) == len && rest.len() == len => Ok(rest),
        _ => Err(CryptoError::KeyInvalid("public value has the wrong length")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngConfig;
    use crate::rng::testing::DeterministicEntropy;

    fn rng() -> Rng {
        Rng::new(
            Box::new(DeterministicEntropy::new([7; 32])),
            RngConfig::default(),
        )
        .unwrap()
    }

    fn round_trip(spec: KeySpec) {
        let rng = rng();
        let Generated::Pair(public, private) = KeyMaterial::generate(spec, &rng).unwrap() else {
            panic!("a pair");
        };
        let mut attrs: Attributes = private.private_attributes().unwrap().into_iter().collect();
        attrs.insert(A::KEY_TYPE, AttrValue::Ulong(spec.key_type().0));
        let back = KeyMaterial::from_attributes(ObjectClass::PRIVATE_KEY, &attrs).unwrap();
        let sorted = |v: Vec<_>| v.into_iter().collect::<Attributes>();
        assert_eq!(
            sorted(back.public_attributes().unwrap()),
            sorted(private.public_attributes().unwrap())
        );
        {
            let mut pattrs: Attributes = public.public_attributes().unwrap().into_iter().collect();
            pattrs.insert(A::KEY_TYPE, AttrValue::Ulong(spec.key_type().0));
            let pback = KeyMaterial::from_attributes(ObjectClass::PUBLIC_KEY, &pattrs).unwrap();
            assert!(!pback.is_private());
            pattrs.remove(&A::KEY_TYPE);
            assert_eq!(sorted(pback.public_attributes().unwrap()), pattrs);
        }
    }

    #[test]
    fn every_key_pair_type_survives_its_attributes() {
        for spec in [
            KeySpec::Rsa { bits: 2048 },
            KeySpec::Ec(Curve::P256),
            KeySpec::Ec(Curve::P521),
            KeySpec::Ed25519,
            KeySpec::X25519,
            KeySpec::MlKem(MlKemParams::MlKem768),
            KeySpec::MlDsa(MlDsaParams::MlDsa44),
            KeySpec::SlhDsa(SlhDsaParams::Sha2_128f),
        ] {
            round_trip(spec);
        }
    }

    #[test]
    fn private_keys_survive_pkcs8_and_ed25519_matches_rfc_8410() {
        let rng = rng();
        for spec in [
            KeySpec::Rsa { bits: 2048 },
            KeySpec::Ec(Curve::P384),
            KeySpec::Ed25519,
            KeySpec::X25519,
        ] {
            let Generated::Pair(_, private) = KeyMaterial::generate(spec, &rng).unwrap() else {
                panic!("a pair");
            };
            let der = private.to_pkcs8().unwrap();
            let back = KeyMaterial::from_pkcs8(spec.key_type(), &der).unwrap();
            assert_eq!(
                back.public_attributes().unwrap(),
                private.public_attributes().unwrap()
            );
            // The wrong type, trailing bytes and truncation are refused.
            let other = if spec.key_type() == KeyType::RSA {
                KeyType::EC
            } else {
                KeyType::RSA
            };
            assert!(KeyMaterial::from_pkcs8(other, &der).is_err());
            let mut longer = der.to_vec();
            longer.push(0);
            assert!(KeyMaterial::from_pkcs8(spec.key_type(), &longer).is_err());
            assert!(KeyMaterial::from_pkcs8(spec.key_type(), &der[..der.len() - 1]).is_err());
        }
        // RFC 8410 section 10.3: the example Ed25519 private key.
        let der = hex::decode(
            "302e020100300506032b657004220420d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842",
        )
        .unwrap();
        let key = KeyMaterial::from_pkcs8(KeyType::EC_EDWARDS, &der).unwrap();
        assert_eq!(&key.to_pkcs8().unwrap()[..], &der[..]);
    }

    #[test]
    fn bad_key_attributes_are_refused() {
        let mut attrs = Attributes::new();
        attrs.insert(A::KEY_TYPE, AttrValue::Ulong(KeyType::AES.0));
        attrs.insert(A::VALUE, AttrValue::Bytes(vec![0; 15]));
        assert!(KeyMaterial::from_attributes(ObjectClass::SECRET_KEY, &attrs).is_err());
        let mut ec = Attributes::new();
        ec.insert(A::KEY_TYPE, AttrValue::Ulong(KeyType::EC.0));
        ec.insert(
            A::EC_PARAMS,
            AttrValue::Bytes(Curve::P256.ec_params().to_vec()),
        );
        let mut off_curve = vec![0x04];
        off_curve.extend([1u8; 64]);
        ec.insert(A::EC_POINT, AttrValue::Bytes(off_curve));
        assert!(KeyMaterial::from_attributes(ObjectClass::PUBLIC_KEY, &ec).is_err());
    }
}
