//! Post-quantum schemes: ML-KEM (FIPS 203) and ML-DSA (FIPS 204) on AWS-LC, SLH-DSA
//! (FIPS 205) on the `fips205` crate.
//!
//! Private keys are kept as their seeds (ML-KEM d ‖ z, ML-DSA ξ, SLH-DSA SK.seed ‖ SK.prf ‖
//! PK.seed), which is what PKCS#11 3.2's `CKA_SEED` carries; the expanded key is recomputed
//! when the key is loaded. SLH-DSA is not FIPS-approved here: AWS-LC has no SLH-DSA, and the
//! `fips205` crate is outside the validated boundary.

use crate::error::{CryptoError, Result};
use crate::ffi::pkey::Pkey;
use crate::mechanism::{
    KeyType, MechanismInfo, MechanismType as M, Operations as Op, SizeUnit, row,
};
use crate::rng::Rng;
use crate::secret::SecretBytes;
use aws_lc_sys as sys;
use zeroize::Zeroizing;

/// ML-KEM parameter sets (`CKP_ML_KEM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlKemParams {
    /// ML-KEM-512.
    MlKem512,
    /// ML-KEM-768.
    MlKem768,
    /// ML-KEM-1024.
    MlKem1024,
}

impl MlKemParams {
    /// Every parameter set.
    pub const ALL: [Self; 3] = [Self::MlKem512, Self::MlKem768, Self::MlKem1024];

    /// The `CKP_*` value for `CKA_PARAMETER_SET`.
    pub const fn ckp(self) -> u64 {
        match self {
            Self::MlKem512 => 1,
            Self::MlKem768 => 2,
            Self::MlKem1024 => 3,
        }
    }

    /// From a `CKP_*` value.
    pub fn from_ckp(v: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.ckp() == v)
    }

    /// (encapsulation key, decapsulation key, ciphertext) lengths.
    pub const fn sizes(self) -> (usize, usize, usize) {
        match self {
            Self::MlKem512 => (800, 1632, 768),
            Self::MlKem768 => (1184, 2400, 1088),
            Self::MlKem1024 => (1568, 3168, 1568),
        }
    }

    fn nid(self) -> i32 {
        match self {
            Self::MlKem512 => sys::NID_MLKEM512,
            Self::MlKem768 => sys::NID_MLKEM768,
            Self::MlKem1024 => sys::NID_MLKEM1024,
        }
    }
}

/// An ML-KEM key: a decapsulation key (with its seed) or an encapsulation key.
#[derive(Clone)]
pub struct MlKemKey {
    params: MlKemParams,
    pkey: Pkey,
    seed: Option<SecretBytes>,
}

impl std::fmt::Debug for MlKemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlKemKey")
            .field("params", &self.params)
            .field("private", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

impl MlKemKey {
    /// Generates a key pair from a 64-byte DRBG seed and runs the pairwise test.
    pub fn generate(params: MlKemParams, rng: &Rng) -> Result<Self> {
        let seed = SecretBytes::generate(64, |b| rng.fill(b))?;
        let key = Self::from_seed(params, seed.expose())?;
        crate::post::pairwise_mlkem(&key)?;
        Ok(key)
    }

    /// The key pair of the 64-byte seed d ‖ z (ML-KEM.KeyGen_internal).
    pub fn from_seed(params: MlKemParams, seed: &[u8]) -> Result<Self> {
        if seed.len() != 64 {
            return Err(CryptoError::KeyInvalid("ML-KEM seed must be 64 bytes"));
        }
        let pkey = Pkey::mlkem_from_seed(params.nid(), seed)
            .map_err(|_| CryptoError::KeyInvalid("ML-KEM seed"))?;
        Ok(MlKemKey {
            params,
            pkey,
            seed: Some(SecretBytes::new(seed)),
        })
    }

    /// An encapsulation key from its encoding (length and modulus checks of FIPS 203 §7.2).
    pub fn from_public(params: MlKemParams, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != params.sizes().0 {
            return Err(CryptoError::KeyInvalid("ML-KEM encapsulation key length"));
        }
        let pkey = Pkey::mlkem_public(params.nid(), bytes)
            .map_err(|_| CryptoError::KeyInvalid("ML-KEM encapsulation key"))?;
        Ok(MlKemKey {
            params,
            pkey,
            seed: None,
        })
    }

    /// A decapsulation key from its expanded encoding (when no seed is available).
    pub fn from_expanded_private(params: MlKemParams, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != params.sizes().1 {
            return Err(CryptoError::KeyInvalid("ML-KEM decapsulation key length"));
        }
        let pkey = Pkey::mlkem_secret(params.nid(), bytes)
            .map_err(|_| CryptoError::KeyInvalid("ML-KEM decapsulation key"))?;
        Ok(MlKemKey {
            params,
            pkey,
            seed: None,
        })
    }

    /// The parameter set.
    pub fn params(&self) -> MlKemParams {
        self.params
    }

    /// The seed (private keys made from one).
    pub fn seed(&self) -> Option<&SecretBytes> {
        self.seed.as_ref()
    }

    /// The encapsulation key bytes.
    pub fn public_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.raw_public_key()?)
    }

    /// The expanded decapsulation key (FIPS 203 encoding), for interchange with systems that
    /// do not keep seeds.
    pub fn expanded_private_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.pkey.raw_private_key().map_err(|_| {
            CryptoError::KeyFunctionNotPermitted("ML-KEM encapsulation key has no private part")
        })
    }

    /// Encapsulates: (ciphertext, 32-byte shared secret).
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        Ok(self.pkey.encapsulate(None)?)
    }

    /// Deterministic encapsulation with the 32-byte message m (known-answer tests only).
    pub fn encapsulate_deterministic(&self, m: &[u8]) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        if m.len() != 32 {
            return Err(CryptoError::MechanismParamInvalid(
                "ML-KEM encapsulation seed",
            ));
        }
        Ok(self.pkey.encapsulate(Some(m))?)
    }

    /// Decapsulates a ciphertext of the right length (implicit rejection for bad ones).
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() != self.params.sizes().2 {
            return Err(CryptoError::EncryptedDataLenRange);
        }
        self.pkey.decapsulate(ciphertext).map_err(|_| {
            CryptoError::KeyFunctionNotPermitted("ML-KEM encapsulation key cannot decapsulate")
        })
    }
}

/// ML-DSA parameter sets (`CKP_ML_DSA_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlDsaParams {
    /// ML-DSA-44.
    MlDsa44,
    /// ML-DSA-65.
    MlDsa65,
    /// ML-DSA-87.
    MlDsa87,
}

impl MlDsaParams {
    /// Every parameter set.
    pub const ALL: [Self; 3] = [Self::MlDsa44, Self::MlDsa65, Self::MlDsa87];

    /// The `CKP_*` value.
    pub const fn ckp(self) -> u64 {
        match self {
            Self::MlDsa44 => 1,
            Self::MlDsa65 => 2,
            Self::MlDsa87 => 3,
        }
    }

    /// From a `CKP_*` value.
    pub fn from_ckp(v: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.ckp() == v)
    }

    /// (public key, signature) lengths.
    pub const fn sizes(self) -> (usize, usize) {
        match self {
            Self::MlDsa44 => (1312, 2420),
            Self::MlDsa65 => (1952, 3309),
            Self::MlDsa87 => (2592, 4627),
        }
    }

    fn nid(self) -> i32 {
        match self {
            Self::MlDsa44 => sys::NID_MLDSA44,
            Self::MlDsa65 => sys::NID_MLDSA65,
            Self::MlDsa87 => sys::NID_MLDSA87,
        }
    }
}

/// An ML-DSA key: a signing key (with its seed ξ) or a verification key.
#[derive(Clone)]
pub struct MlDsaKey {
    params: MlDsaParams,
    pkey: Pkey,
    seed: Option<SecretBytes>,
}

impl std::fmt::Debug for MlDsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlDsaKey")
            .field("params", &self.params)
            .field("private", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

impl MlDsaKey {
    /// Generates a key pair from a 32-byte DRBG seed and runs the pairwise test.
    pub fn generate(params: MlDsaParams, rng: &Rng) -> Result<Self> {
        let seed = SecretBytes::generate(32, |b| rng.fill(b))?;
        let key = Self::from_seed(params, seed.expose())?;
        crate::post::pairwise_mldsa(&key)?;
        Ok(key)
    }

    /// The key pair of the seed ξ (ML-DSA.KeyGen_internal).
    pub fn from_seed(params: MlDsaParams, seed: &[u8]) -> Result<Self> {
        let pkey = Pkey::mldsa_from_seed(params.nid(), seed)
            .map_err(|_| CryptoError::KeyInvalid("ML-DSA seed must be 32 bytes"))?;
        Ok(MlDsaKey {
            params,
            pkey,
            seed: Some(SecretBytes::new(seed)),
        })
    }

    /// A verification key from its encoding.
    pub fn from_public(params: MlDsaParams, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != params.sizes().0 {
            return Err(CryptoError::KeyInvalid("ML-DSA public key length"));
        }
        let pkey = Pkey::mldsa_public(params.nid(), bytes)
            .map_err(|_| CryptoError::KeyInvalid("ML-DSA public key"))?;
        Ok(MlDsaKey {
            params,
            pkey,
            seed: None,
        })
    }

    /// The parameter set.
    pub fn params(&self) -> MlDsaParams {
        self.params
    }

    /// The seed ξ.
    pub fn seed(&self) -> Option<&SecretBytes> {
        self.seed.as_ref()
    }

    /// The public key bytes.
    pub fn public_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.raw_public_key()?)
    }

    /// Hedged pure ML-DSA signature with a context string of at most 255 bytes.
    pub fn sign(&self, msg: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        if self.seed.is_none() {
            return Err(CryptoError::KeyFunctionNotPermitted(
                "ML-DSA public key cannot sign",
            ));
        }
        if context.len() > 255 {
            return Err(CryptoError::MechanismParamInvalid(
                "ML-DSA context longer than 255 bytes",
            ));
        }
        Ok(self.pkey.mldsa_sign(msg, context)?)
    }

    /// Verifies a pure ML-DSA signature.
    pub fn verify(&self, msg: &[u8], context: &[u8], sig: &[u8]) -> Result<()> {
        if context.len() > 255 {
            return Err(CryptoError::MechanismParamInvalid(
                "ML-DSA context longer than 255 bytes",
            ));
        }
        if sig.len() != self.params.sizes().1 {
            return Err(CryptoError::SignatureLenRange);
        }
        match self.pkey.mldsa_verify(msg, context, sig) {
            Ok(true) => Ok(()),
            _ => Err(CryptoError::SignatureInvalid),
        }
    }
}

/// SLH-DSA parameter sets offered (SHA2 family, `CKP_SLH_DSA_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlhDsaParams {
    /// SLH-DSA-SHA2-128s.
    Sha2_128s,
    /// SLH-DSA-SHA2-128f.
    Sha2_128f,
    /// SLH-DSA-SHA2-192s.
    Sha2_192s,
    /// SLH-DSA-SHA2-192f.
    Sha2_192f,
    /// SLH-DSA-SHA2-256s.
    Sha2_256s,
    /// SLH-DSA-SHA2-256f.
    Sha2_256f,
}

impl SlhDsaParams {
    /// Every parameter set.
    pub const ALL: [Self; 6] = [
        Self::Sha2_128s,
        Self::Sha2_128f,
        Self::Sha2_192s,
        Self::Sha2_192f,
        Self::Sha2_256s,
        Self::Sha2_256f,
    ];

    /// The `CKP_*` value.
    pub const fn ckp(self) -> u64 {
        match self {
            Self::Sha2_128s => 1,
            Self::Sha2_128f => 3,
            Self::Sha2_192s => 5,
            Self::Sha2_192f => 7,
            Self::Sha2_256s => 9,
            Self::Sha2_256f => 11,
        }
    }

    /// From a `CKP_*` value.
    pub fn from_ckp(v: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.ckp() == v)
    }

    /// n, the security parameter in bytes (each of the three seeds is n bytes).
    pub const fn n(self) -> usize {
        match self {
            Self::Sha2_128s | Self::Sha2_128f => 16,
            Self::Sha2_192s | Self::Sha2_192f => 24,
            Self::Sha2_256s | Self::Sha2_256f => 32,
        }
    }
}

/// Runs `$body` with `$m` bound to the fips205 module of `$params`.
macro_rules! with_slh {
    ($params:expr, $m:ident => $body:expr) => {
        match $params {
            SlhDsaParams::Sha2_128s => {
                use fips205::slh_dsa_sha2_128s as $m;
                $body
            }
            SlhDsaParams::Sha2_128f => {
                use fips205::slh_dsa_sha2_128f as $m;
                $body
            }
            SlhDsaParams::Sha2_192s => {
                use fips205::slh_dsa_sha2_192s as $m;
                $body
            }
            SlhDsaParams::Sha2_192f => {
                use fips205::slh_dsa_sha2_192f as $m;
                $body
            }
            SlhDsaParams::Sha2_256s => {
                use fips205::slh_dsa_sha2_256s as $m;
                $body
            }
            SlhDsaParams::Sha2_256f => {
                use fips205::slh_dsa_sha2_256f as $m;
                $body
            }
        }
    };
}

impl SlhDsaParams {
    /// Signature length in bytes.
    pub fn signature_len(self) -> usize {
        with_slh!(self, m => m::SIG_LEN)
    }
}

fn arr<const N: usize>(s: &[u8], what: &'static str) -> Result<[u8; N]> {
    s.try_into().map_err(|_| CryptoError::KeyInvalid(what))
}

/// An SLH-DSA key: private (SK.seed ‖ SK.prf ‖ PK.seed ‖ PK.root) or public
/// (PK.seed ‖ PK.root).
pub struct SlhDsaKey {
    params: SlhDsaParams,
    private: Option<SecretBytes>,
    public: Vec<u8>,
}

impl std::fmt::Debug for SlhDsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlhDsaKey")
            .field("params", &self.params)
            .field("private", &self.private.is_some())
            .finish_non_exhaustive()
    }
}

impl SlhDsaKey {
    /// Generates a key from 3n DRBG bytes and runs the pairwise test.
    pub fn generate(params: SlhDsaParams, rng: &Rng) -> Result<Self> {
        let seeds = SecretBytes::generate(3 * params.n(), |b| rng.fill(b))?;
        let key = Self::from_seeds(params, seeds.expose())?;
        crate::post::pairwise_slhdsa(&key, rng)?;
        Ok(key)
    }

    /// The key of SK.seed ‖ SK.prf ‖ PK.seed (3n bytes; slh_keygen_internal).
    pub fn from_seeds(params: SlhDsaParams, seeds: &[u8]) -> Result<Self> {
        use fips205::traits::{KeyGen, SerDes};
        let n = params.n();
        if seeds.len() != 3 * n {
            return Err(CryptoError::KeyInvalid("SLH-DSA seeds must be 3n bytes"));
        }
        let what = "SLH-DSA seed length";
        let (public, private) = with_slh!(params, m => {
            let (pk, sk) = m::KG::keygen_from_seed(
                &arr::<{ m::N }>(&seeds[..n], what)?,
                &arr::<{ m::N }>(&seeds[n..2 * n], what)?,
                &arr::<{ m::N }>(&seeds[2 * n..], what)?,
            );
            let sk = Zeroizing::new(sk.into_bytes());
            (pk.into_bytes().to_vec(), SecretBytes::new(&sk[..]))
        });
        Ok(SlhDsaKey {
            params,
            private: Some(private),
            public,
        })
    }

    /// A private key from its 4n-byte encoding.
    pub fn from_private(params: SlhDsaParams, bytes: &[u8]) -> Result<Self> {
        let n = params.n();
        if bytes.len() != 4 * n {
            return Err(CryptoError::KeyInvalid(
                "SLH-DSA private key must be 4n bytes",
            ));
        }
        Ok(SlhDsaKey {
            params,
            private: Some(SecretBytes::new(bytes)),
            public: bytes[2 * n..].to_vec(),
        })
    }

    /// A public key from PK.seed ‖ PK.root.
    pub fn from_public(params: SlhDsaParams, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 2 * params.n() {
            return Err(CryptoError::KeyInvalid("SLH-DSA public key length"));
        }
        Ok(SlhDsaKey {
            params,
            private: None,
            public: bytes.to_vec(),
        })
    }

    /// The parameter set.
    pub fn params(&self) -> SlhDsaParams {
        self.params
    }

    /// The public key bytes.
    pub fn public_bytes(&self) -> &[u8] {
        &self.public
    }

    /// The private key bytes, for wrapping and backup.
    pub fn private_bytes(&self) -> Option<&SecretBytes> {
        self.private.as_ref()
    }

    /// Hedged SLH-DSA signature (randomiser from our DRBG) with a context of ≤ 255 bytes.
    pub fn sign(&self, msg: &[u8], context: &[u8], rng: &Rng) -> Result<Vec<u8>> {
        use fips205::traits::{SerDes, Signer};
        let sk_bytes = self
            .private
            .as_ref()
            .ok_or(CryptoError::KeyFunctionNotPermitted(
                "SLH-DSA public key cannot sign",
            ))?;
        if context.len() > 255 {
            return Err(CryptoError::MechanismParamInvalid(
                "SLH-DSA context longer than 255 bytes",
            ));
        }
        with_slh!(self.params, m => {
            let raw = Zeroizing::new(arr::<{ m::SK_LEN }>(sk_bytes.expose(), "SLH-DSA private key")?);
            let sk = m::PrivateKey::try_from_bytes(*raw).map_err(|_| CryptoError::KeyInvalid("SLH-DSA private key"))?;
            let sig = sk
                .try_sign_with_rng(&mut rng.as_rand_core(), msg, context, true)
                .map_err(|_| CryptoError::Library)?;
            Ok(sig.to_vec())
        })
    }

    /// Verifies an SLH-DSA signature.
    pub fn verify(&self, msg: &[u8], context: &[u8], sig: &[u8]) -> Result<()> {
        use fips205::traits::{SerDes, Verifier};
        if context.len() > 255 {
            return Err(CryptoError::MechanismParamInvalid(
                "SLH-DSA context longer than 255 bytes",
            ));
        }
        with_slh!(self.params, m => {
            let sig: [u8; m::SIG_LEN] = sig.try_into().map_err(|_| CryptoError::SignatureLenRange)?;
            let pk = m::PublicKey::try_from_bytes(arr::<{ m::PK_LEN }>(&self.public, "SLH-DSA public key")?)
                .map_err(|_| CryptoError::KeyInvalid("SLH-DSA public key"))?;
            if pk.verify(msg, &sig, context) { Ok(()) } else { Err(CryptoError::SignatureInvalid) }
        })
    }
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let none = (0, 0, SizeUnit::None);
    let sv = Op::SIGN | Op::VERIFY;
    vec![
        row(
            M::ML_KEM_KEY_PAIR_GEN,
            &[KeyType::ML_KEM],
            none,
            Op::GENERATE_KEY_PAIR,
            false,
            true,
        ),
        row(
            M::ML_KEM,
            &[KeyType::ML_KEM],
            none,
            Op::ENCAPSULATE | Op::DECAPSULATE,
            false,
            true,
        ),
        row(
            M::ML_DSA_KEY_PAIR_GEN,
            &[KeyType::ML_DSA],
            none,
            Op::GENERATE_KEY_PAIR,
            false,
            true,
        ),
        row(M::ML_DSA, &[KeyType::ML_DSA], none, sv, false, true),
        row(
            M::SLH_DSA_KEY_PAIR_GEN,
            &[KeyType::SLH_DSA],
            none,
            Op::GENERATE_KEY_PAIR,
            false,
            false,
        ),
        row(M::SLH_DSA, &[KeyType::SLH_DSA], none, sv, false, false),
    ]
}
