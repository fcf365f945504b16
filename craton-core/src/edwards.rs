//! Ed25519 signatures (`CKM_EDDSA`, pure mode) and X25519 key agreement, on aws-lc-rs.
//!
//! Private keys are the 32-byte RFC 8032 seed / RFC 7748 scalar, drawn from our DRBG and held
//! in [`SecretBytes`]. `CKA_EC_PARAMS` for these keys is the curve OID or, per PKCS#11 3.0,
//! the PrintableString "edwards25519" / "curve25519".

use crate::error::{CryptoError, Result};
use crate::mechanism::{
    KeyType, MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row,
};
use crate::rng::Rng;
use crate::secret::SecretBytes;
use aws_lc_rs::{agreement, signature};
use zeroize::Zeroizing;

/// DER OID 1.3.101.112 (id-Ed25519).
pub const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER OID 1.3.101.110 (id-X25519).
pub const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];

/// Whether `CKA_EC_PARAMS` names Ed25519.
pub fn is_ed25519_params(der: &[u8]) -> bool {
    der == ED25519_OID || der == b"\x13\x0cedwards25519"
}

/// Whether `CKA_EC_PARAMS` names X25519.
pub fn is_x25519_params(der: &[u8]) -> bool {
    der == X25519_OID || der == b"\x13\x0acurve25519"
}

/// An Ed25519 key: private (seed) or public only.
pub struct Ed25519Key {
    seed: Option<SecretBytes>,
    pair: Option<signature::Ed25519KeyPair>,
    public: [u8; 32],
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("private", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// Generates a key from the DRBG and runs the pairwise test.
    pub fn generate(rng: &Rng) -> Result<Self> {
        let seed = SecretBytes::generate(32, |b| rng.fill(b))?;
        let key = Ed25519Key::from_seed(seed.expose())?;
        crate::post::pairwise_ed25519(&key)?;
        Ok(key)
    }

    /// A private key from its 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self> {
        if seed.len() != 32 {
            return Err(CryptoError::KeyInvalid("Ed25519 seed must be 32 bytes"));
        }
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| CryptoError::KeyInvalid("Ed25519 seed"))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(signature::KeyPair::public_key(&pair).as_ref());
        Ok(Ed25519Key {
            seed: Some(SecretBytes::new(seed)),
            pair: Some(pair),
            public,
        })
    }

    /// A public key from its 32-byte encoding.
    pub fn from_public(bytes: &[u8]) -> Result<Self> {
        let public: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::KeyInvalid("Ed25519 public key must be 32 bytes"))?;
        Ok(Ed25519Key {
            seed: None,
            pair: None,
            public,
        })
    }

    /// The 32-byte public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.public
    }

    /// The seed, for wrapping and backup.
    pub fn seed(&self) -> Option<&SecretBytes> {
        self.seed.as_ref()
    }

    /// Pure Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let pair = self
            .pair
            .as_ref()
            .ok_or(CryptoError::KeyFunctionNotPermitted(
                "public Ed25519 key cannot sign",
            ))?;
        Ok(pair.try_sign(msg)?.as_ref().to_vec())
    }

    /// Verifies a pure Ed25519 signature.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        if sig.len() != 64 {
            return Err(CryptoError::SignatureLenRange);
        }
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.public)
            .verify(msg, sig)
            .map_err(|_| CryptoError::SignatureInvalid)
    }
}

/// An X25519 private key.
pub struct X25519Key {
    scalar: SecretBytes,
    public: [u8; 32],
}

impl std::fmt::Debug for X25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("X25519Key { .. }")
    }
}

impl X25519Key {
    /// Generates a key from the DRBG.
    pub fn generate(rng: &Rng) -> Result<Self> {
        let scalar = SecretBytes::generate(32, |b| rng.fill(b))?;
        X25519Key::from_private(scalar.expose())
    }

    /// A key from its 32-byte private scalar.
    pub fn from_private(bytes: &[u8]) -> Result<Self> {
        let key = agreement::PrivateKey::from_private_key(&agreement::X25519, bytes)
            .map_err(|_| CryptoError::KeyInvalid("X25519 private key must be 32 bytes"))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(key.compute_public_key()?.as_ref());
        Ok(X25519Key {
            scalar: SecretBytes::new(bytes),
            public,
        })
    }

    /// The public u-coordinate.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.public
    }

    /// The private scalar, for wrapping and backup.
    pub fn private_bytes(&self) -> &SecretBytes {
        &self.scalar
    }

    /// X25519(k, peer). An all-zero result (a small-order peer point) is refused.
    pub fn derive(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if peer.len() != 32 {
            return Err(CryptoError::MechanismParamInvalid(
                "X25519 peer key must be 32 bytes",
            ));
        }
        let key = agreement::PrivateKey::from_private_key(&agreement::X25519, self.scalar.expose())
            .map_err(|_| CryptoError::KeyInvalid("X25519 private key"))?;
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
        agreement::agree(
            &key,
            peer,
            CryptoError::MechanismParamInvalid("X25519 peer key"),
            |s| Ok(Zeroizing::new(s.to_vec())),
        )
    }
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let ed: &'static [KeyType] = &[KeyType::EC_EDWARDS];
    let mont: &'static [KeyType] = &[KeyType::EC_MONTGOMERY];
    let sizes = (255, 255, SizeUnit::Bits);
    vec![
        row(
            M::EC_EDWARDS_KEY_PAIR_GEN,
            ed,
            sizes,
            Op::GENERATE_KEY_PAIR,
            false,
            true,
        ),
        row(M::EDDSA, ed, sizes, Op::SIGN | Op::VERIFY, false, true),
        // X25519 is not (yet) an approved key-agreement scheme under SP 800-56A.
        row(
            M::EC_MONTGOMERY_KEY_PAIR_GEN,
            mont,
            sizes,
            Op::GENERATE_KEY_PAIR,
            false,
            false,
        ),
    ]
}
