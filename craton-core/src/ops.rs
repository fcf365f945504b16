//! Operation dispatch: a mechanism with its parameters parsed ([`Mechanism`]) plus a key gives
//! a running operation ([`SignContext`], [`VerifyContext`], [`CipherContext`]), or a one-shot
//! result ([`derive()`], [`wrap_key`], [`encapsulate`], …).
//!
//! Frontends parse their wire format (C structs, protobuf) into a [`Mechanism`] once, at the
//! edge, and never look at raw parameters again. This module checks that the key fits the
//! mechanism; whether the token *allows* the mechanism is the [`crate::Registry`]'s job, and
//! whether the key's attributes permit the operation is the engine's.
//!
//! Hash-then-sign mechanisms (`CKM_SHA256_RSA_PKCS`, `CKM_ECDSA_SHA384`, …) hash as data
//! arrives, so multi-part signing of large inputs holds only a digest state. Mechanisms the
//! specification defines as single-part (`CKM_RSA_PKCS`, `CKM_ECDSA`, `CKM_EDDSA`, ML-DSA,
//! SLH-DSA) refuse `update`.

use crate::Direction;
use crate::aes::{self, AesContext, AesMode, KeyWrap};
use crate::digest::{DigestContext, HashAlg};
use crate::error::{CryptoError, Result};
use crate::kdf;
use crate::key::KeyMaterial;
use crate::mac::{MacContext, hmac_mechanisms};
use crate::mechanism::{KeyType, MechanismType as M};
use crate::rng::Rng;
use crate::rsa::{RsaCryptScheme, RsaSignScheme};
use std::sync::Arc;
use zeroize::Zeroizing;

/// `CK_RSA_PKCS_PSS_PARAMS`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PssParams {
    /// The message hash.
    pub hash: HashAlg,
    /// The MGF1 hash.
    pub mgf1: HashAlg,
    /// Salt length in bytes.
    pub salt_len: usize,
}

/// `CK_RSA_PKCS_OAEP_PARAMS`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaepParams {
    /// Hash of the label.
    pub hash: HashAlg,
    /// MGF1 hash.
    pub mgf1: HashAlg,
    /// The label (`CKZ_DATA_SPECIFIED` source data).
    pub label: Vec<u8>,
}

/// `CK_HKDF_PARAMS`, parsed (salt given as data; key-handle salts are resolved by the engine).
#[derive(Clone, PartialEq, Eq)]
pub struct HkdfParams {
    /// The PRF hash.
    pub hash: HashAlg,
    /// Run the extract step.
    pub extract: bool,
    /// Run the expand step.
    pub expand: bool,
    /// The salt (empty means a string of zeros of the hash length).
    pub salt: Vec<u8>,
    /// The expand info.
    pub info: Vec<u8>,
}

impl std::fmt::Debug for HkdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HkdfParams")
            .field("hash", &self.hash)
            .field("extract", &self.extract)
            .field("expand", &self.expand)
            .finish_non_exhaustive()
    }
}

/// `CK_PKCS5_PBKD2_PARAMS2`, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Pbkdf2Params {
    /// The PRF's hash (`CKP_PKCS5_PBKD2_HMAC_*`).
    pub prf: HashAlg,
    /// The salt.
    pub salt: Vec<u8>,
    /// Iteration count (at least 1).
    pub iterations: u32,
    /// The password.
    pub password: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Pbkdf2Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pbkdf2Params")
            .field("prf", &self.prf)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A mechanism with its parameters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// A digest.
    Digest(HashAlg),
    /// HMAC; `tag_len` is the full output for the plain mechanism, the parameter for
    /// `_GENERAL`.
    Hmac {
        /// The hash.
        hash: HashAlg,
        /// Output length in bytes.
        tag_len: usize,
        /// Whether this is the `_GENERAL` mechanism (for mapping back to its number).
        general: bool,
    },
    /// AES-CMAC (16-byte tag) or `CKM_AES_CMAC_GENERAL` with a shorter tag.
    AesCmac {
        /// Output length in bytes.
        tag_len: usize,
        /// Whether this is `CKM_AES_CMAC_GENERAL`.
        general: bool,
    },
    /// An AES encryption mode.
    Aes(AesMode),
    /// AES key wrap, RFC 3394 or RFC 5649.
    AesKeyWrap(KeyWrap),
    /// `CKM_RSA_PKCS`: signature over a caller DigestInfo, or PKCS#1 v1.5 encryption.
    RsaPkcs,
    /// `CKM_RSA_X_509`: raw RSA.
    RsaX509,
    /// `CKM_SHA*_RSA_PKCS`.
    RsaPkcsWith(HashAlg),
    /// `CKM_RSA_PKCS_PSS` over a caller digest (`with_hash` false) or `CKM_SHA*_RSA_PKCS_PSS`.
    RsaPss {
        /// The parameters.
        params: PssParams,
        /// Whether the mechanism hashes the data itself.
        with_hash: bool,
    },
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep(OaepParams),
    /// `CKM_ECDSA` over a caller-supplied hash.
    Ecdsa,
    /// `CKM_ECDSA_SHA*`.
    EcdsaWith(HashAlg),
    /// `CKM_EDDSA`, pure Ed25519 (no pre-hash, no context).
    EdDsa,
    /// `CKM_ML_DSA` with an optional context string (at most 255 bytes).
    MlDsa {
        /// The context string.
        context: Vec<u8>,
    },
    /// `CKM_SLH_DSA` with an optional context string (at most 255 bytes).
    SlhDsa {
        /// The context string.
        context: Vec<u8>,
    },
    /// `CKM_ECDH1_DERIVE` with `CKD_NULL` and the peer's public value (EC point or X25519
    /// u-coordinate).
    Ecdh {
        /// The peer's public value.
        public: Vec<u8>,
    },
    /// `CKM_HKDF_DERIVE` / `CKM_HKDF_DATA`.
    Hkdf {
        /// The parameters.
        params: HkdfParams,
        /// `CKM_HKDF_DATA` (the result is a data object) rather than `CKM_HKDF_DERIVE`.
        data: bool,
    },
    /// `CKM_PKCS5_PBKD2`.
    Pbkdf2(Pbkdf2Params),
    /// `CKM_ML_KEM`.
    MlKem,
    /// A key-generation mechanism; what to generate comes from the template.
    Generate(M),
}

impl Mechanism {
    /// The `CKM_*` number.
    pub fn mechanism_type(&self) -> M {
        match self {
            Mechanism::Digest(h) => h.mechanism(),
            Mechanism::Hmac { hash, general, .. } => {
                let (plain, general_m, _) = hmac_mechanisms(*hash);
                if *general { general_m } else { plain }
            }
            Mechanism::AesCmac { general: false, .. } => M::AES_CMAC,
            Mechanism::AesCmac { general: true, .. } => M::AES_CMAC_GENERAL,
            Mechanism::Aes(mode) => mode.mechanism(),
            Mechanism::AesKeyWrap(KeyWrap::Kw) => M::AES_KEY_WRAP,
            Mechanism::AesKeyWrap(KeyWrap::Kwp) => M::AES_KEY_WRAP_KWP,
            Mechanism::RsaPkcs => M::RSA_PKCS,
            Mechanism::RsaX509 => M::RSA_X_509,
            Mechanism::RsaPkcsWith(h) => rsa_pkcs_with(*h),
            Mechanism::RsaPss {
                with_hash: false, ..
            } => M::RSA_PKCS_PSS,
            Mechanism::RsaPss { params, .. } => rsa_pss_with(params.hash),
            Mechanism::RsaOaep(_) => M::RSA_PKCS_OAEP,
            Mechanism::Ecdsa => M::ECDSA,
            Mechanism::EcdsaWith(h) => ecdsa_with(*h),
            Mechanism::EdDsa => M::EDDSA,
            Mechanism::MlDsa { .. } => M::ML_DSA,
            Mechanism::SlhDsa { .. } => M::SLH_DSA,
            Mechanism::Ecdh { .. } => M::ECDH1_DERIVE,
            Mechanism::Hkdf { data: false, .. } => M::HKDF_DERIVE,
            Mechanism::Hkdf { data: true, .. } => M::HKDF_DATA,
            Mechanism::Pbkdf2(_) => M::PKCS5_PBKD2,
            Mechanism::MlKem => M::ML_KEM,
            Mechanism::Generate(m) => *m,
        }
    }

    /// The parameterless mechanisms (and those whose parameters have a default), by number.
    /// Mechanisms that need parameters return `MechanismParamInvalid`.
    pub fn without_params(m: M) -> Result<Self> {
        let need = |what| Err(CryptoError::MechanismParamInvalid(what));
        if let Some(h) = HashAlg::from_mechanism(m) {
            return Ok(Mechanism::Digest(h));
        }
        for h in HashAlg::ALL {
            let (plain, general, _) = hmac_mechanisms(h);
            if m == plain {
                return Ok(Mechanism::Hmac {
                    hash: h,
                    tag_len: h.output_len(),
                    general: false,
                });
            }
            if m == general {
                return need("HMAC_GENERAL needs its output length");
            }
            if m == rsa_pkcs_with(h) && h != HashAlg::Sha3_224 {
                return Ok(Mechanism::RsaPkcsWith(h));
            }
            if m == ecdsa_with(h) {
                return Ok(Mechanism::EcdsaWith(h));
            }
        }
        Ok(match m {
            M::AES_CMAC => Mechanism::AesCmac {
                tag_len: 16,
                general: false,
            },
            M::AES_ECB => Mechanism::Aes(AesMode::Ecb),
            M::AES_KEY_WRAP => Mechanism::AesKeyWrap(KeyWrap::Kw),
            M::AES_KEY_WRAP_KWP => Mechanism::AesKeyWrap(KeyWrap::Kwp),
            M::RSA_PKCS => Mechanism::RsaPkcs,
            M::RSA_X_509 => Mechanism::RsaX509,
            M::ECDSA => Mechanism::Ecdsa,
            M::EDDSA => Mechanism::EdDsa,
            M::ML_DSA => Mechanism::MlDsa {
                context: Vec::new(),
            },
            M::SLH_DSA => Mechanism::SlhDsa {
                context: Vec::new(),
            },
            M::ML_KEM => Mechanism::MlKem,
            M::AES_KEY_GEN
            | M::GENERIC_SECRET_KEY_GEN
            | M::RSA_PKCS_KEY_PAIR_GEN
            | M::EC_KEY_PAIR_GEN
            | M::EC_EDWARDS_KEY_PAIR_GEN
            | M::EC_MONTGOMERY_KEY_PAIR_GEN
            | M::ML_KEM_KEY_PAIR_GEN
            | M::ML_DSA_KEY_PAIR_GEN
            | M::SLH_DSA_KEY_PAIR_GEN
            | M::HKDF_KEY_GEN => Mechanism::Generate(m),
            M::AES_CBC | M::AES_CBC_PAD | M::AES_CTR | M::AES_GCM => {
                return need("this AES mode needs its IV or parameters");
            }
            M::AES_CMAC_GENERAL => return need("CMAC_GENERAL needs its output length"),
            M::RSA_PKCS_PSS => return need("PSS needs CK_RSA_PKCS_PSS_PARAMS"),
            M::RSA_PKCS_OAEP => return need("OAEP needs CK_RSA_PKCS_OAEP_PARAMS"),
            M::ECDH1_DERIVE => return need("ECDH needs the peer's public value"),
            M::HKDF_DERIVE | M::HKDF_DATA => return need("HKDF needs CK_HKDF_PARAMS"),
            M::PKCS5_PBKD2 => return need("PBKDF2 needs CK_PKCS5_PBKD2_PARAMS2"),
            _ if rsa_pss_hash(m).is_some() => return need("PSS needs CK_RSA_PKCS_PSS_PARAMS"),
            _ => return Err(CryptoError::MechanismUnsupported(m)),
        })
    }

    /// Checks a PSS parameter block against the mechanism it came with: the hash-and-sign
    /// PSS mechanisms must name their own hash.
    pub fn pss(m: M, params: PssParams) -> Result<Self> {
        if m == M::RSA_PKCS_PSS {
            return Ok(Mechanism::RsaPss {
                params,
                with_hash: false,
            });
        }
        match rsa_pss_hash(m) {
            Some(h) if h == params.hash => Ok(Mechanism::RsaPss {
                params,
                with_hash: true,
            }),
            Some(_) => Err(CryptoError::MechanismParamInvalid(
                "PSS hashAlg differs from the mechanism's hash",
            )),
            None => Err(CryptoError::MechanismUnsupported(m)),
        }
    }
}

fn rsa_pkcs_with(h: HashAlg) -> M {
    match h {
        HashAlg::Sha1 => M::SHA1_RSA_PKCS,
        HashAlg::Sha224 => M::SHA224_RSA_PKCS,
        HashAlg::Sha256 => M::SHA256_RSA_PKCS,
        HashAlg::Sha384 => M::SHA384_RSA_PKCS,
        HashAlg::Sha512 => M::SHA512_RSA_PKCS,
        _ => M(u64::MAX),
    }
}

fn rsa_pss_with(h: HashAlg) -> M {
    match h {
        HashAlg::Sha1 => M::SHA1_RSA_PKCS_PSS,
        HashAlg::Sha224 => M::SHA224_RSA_PKCS_PSS,
        HashAlg::Sha256 => M::SHA256_RSA_PKCS_PSS,
        HashAlg::Sha384 => M::SHA384_RSA_PKCS_PSS,
        HashAlg::Sha512 => M::SHA512_RSA_PKCS_PSS,
        _ => M(u64::MAX),
    }
}

fn rsa_pss_hash(m: M) -> Option<HashAlg> {
    HashAlg::ALL
        .into_iter()
        .find(|h| rsa_pss_with(*h) == m && m != M(u64::MAX))
}

fn ecdsa_with(h: HashAlg) -> M {
    match h {
        HashAlg::Sha1 => M::ECDSA_SHA1,
        HashAlg::Sha224 => M::ECDSA_SHA224,
        HashAlg::Sha256 => M::ECDSA_SHA256,
        HashAlg::Sha384 => M::ECDSA_SHA384,
        HashAlg::Sha512 => M::ECDSA_SHA512,
        _ => M(u64::MAX),
    }
}

fn wrong_key(key: &KeyMaterial, m: &Mechanism) -> CryptoError {
    CryptoError::KeyTypeInconsistent {
        key_type: key.key_type(),
        mechanism: m.mechanism_type(),
    }
}

fn check_context(context: &[u8]) -> Result<()> {
    if context.len() > 255 {
        return Err(CryptoError::MechanismParamInvalid(
            "context string longer than 255 bytes",
        ));
    }
    Ok(())
}

/// Largest input a single-part signature mechanism buffers (messages for EdDSA, ML-DSA and
/// SLH-DSA are signed whole). Larger inputs get `DataLenRange`.
pub const MAX_SINGLE_PART: usize = 64 << 20;

/// What a signing or verifying context does with the data it is given.
#[derive(Clone)]
enum Input {
    /// Hash as data arrives; the signature covers the digest.
    Hashing(DigestContext),
    /// MAC as data arrives.
    Mac(Box<MacContext>),
    /// Collect the whole input (single-part mechanisms).
    Whole(Zeroizing<Vec<u8>>),
}

/// What is signed or verified once the input is complete.
#[derive(Clone)]
enum Scheme {
    Rsa(RsaSignScheme),
    Ecdsa,
    Ed25519,
    MlDsa(Vec<u8>),
    SlhDsa(Vec<u8>),
    Mac,
}

fn multipart(m: &Mechanism) -> bool {
    !matches!(
        m,
        Mechanism::RsaPkcs
            | Mechanism::RsaX509
            | Mechanism::RsaPss {
                with_hash: false,
                ..
            }
            | Mechanism::Ecdsa
            | Mechanism::EdDsa
            | Mechanism::MlDsa { .. }
            | Mechanism::SlhDsa { .. }
    )
}

fn plan(m: &Mechanism, key: &KeyMaterial) -> Result<(Input, Scheme)> {
    let whole = || Input::Whole(Zeroizing::new(Vec::new()));
    let hashing = |h: HashAlg| DigestContext::new(h).map(Input::Hashing);
    Ok(match (m, key) {
        (Mechanism::Hmac { hash, tag_len, .. }, KeyMaterial::Secret { value, key_type })
            if *key_type != KeyType::AES =>
        {
            (
                Input::Mac(Box::new(MacContext::hmac(*hash, value.expose(), *tag_len)?)),
                Scheme::Mac,
            )
        }
        (Mechanism::AesCmac { tag_len, .. }, KeyMaterial::Secret { value, key_type })
            if *key_type == KeyType::AES =>
        {
            (
                Input::Mac(Box::new(MacContext::cmac(value.expose(), *tag_len)?)),
                Scheme::Mac,
            )
        }
        (Mechanism::RsaPkcs, KeyMaterial::Rsa(_)) => {
            (whole(), Scheme::Rsa(RsaSignScheme::Pkcs1DigestInfo))
        }
        (Mechanism::RsaX509, KeyMaterial::Rsa(_)) => (whole(), Scheme::Rsa(RsaSignScheme::Raw)),
        (Mechanism::RsaPkcsWith(h), KeyMaterial::Rsa(_)) => {
            (hashing(*h)?, Scheme::Rsa(RsaSignScheme::Pkcs1(*h)))
        }
        (Mechanism::RsaPss { params, with_hash }, KeyMaterial::Rsa(_)) => {
            let scheme = Scheme::Rsa(RsaSignScheme::Pss {
                hash: params.hash,
                mgf1: params.mgf1,
                salt_len: params.salt_len,
            });
            if *with_hash {
                (hashing(params.hash)?, scheme)
            } else {
                (whole(), scheme)
            }
        }
        (Mechanism::Ecdsa, KeyMaterial::Ec(_)) => (whole(), Scheme::Ecdsa),
        (Mechanism::EcdsaWith(h), KeyMaterial::Ec(_)) => (hashing(*h)?, Scheme::Ecdsa),
        (Mechanism::EdDsa, KeyMaterial::Ed25519(_)) => (whole(), Scheme::Ed25519),
        (Mechanism::MlDsa { context }, KeyMaterial::MlDsa(_)) => {
            check_context(context)?;
            (whole(), Scheme::MlDsa(context.clone()))
        }
        (Mechanism::SlhDsa { context }, KeyMaterial::SlhDsa(_)) => {
            check_context(context)?;
            (whole(), Scheme::SlhDsa(context.clone()))
        }
        (
            Mechanism::Hmac { .. }
            | Mechanism::AesCmac { .. }
            | Mechanism::RsaPkcs
            | Mechanism::RsaX509
            | Mechanism::RsaPkcsWith(_)
            | Mechanism::RsaPss { .. }
            | Mechanism::Ecdsa
            | Mechanism::EcdsaWith(_)
            | Mechanism::EdDsa
            | Mechanism::MlDsa { .. }
            | Mechanism::SlhDsa { .. },
            _,
        ) => return Err(wrong_key(key, m)),
        _ => return Err(CryptoError::MechanismUnsupported(m.mechanism_type())),
    })
}

fn absorb(input: &mut Input, data: &[u8], allow_multipart: bool) -> Result<()> {
    match input {
        Input::Hashing(d) => d.update(data),
        Input::Mac(mac) => mac.update(data)?,
        Input::Whole(buf) => {
            if !allow_multipart {
                return Err(CryptoError::SinglePartOnly);
            }
            if buf.len().saturating_add(data.len()) > MAX_SINGLE_PART {
                return Err(CryptoError::DataLenRange);
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(())
}

/// What signing and verifying share: the key, the data collected or hashed so far, and
/// whether a multi-part update has started (a single-part call is refused after one).
#[derive(Clone)]
struct Progress {
    key: Arc<KeyMaterial>,
    input: Input,
    scheme: Scheme,
    multipart: bool,
    started: bool,
    mechanism: M,
}

impl Progress {
    fn new(mechanism: &Mechanism, key: Arc<KeyMaterial>) -> Result<Self> {
        let (input, scheme) = plan(mechanism, &key)?;
        Ok(Progress {
            key,
            input,
            scheme,
            multipart: multipart(mechanism),
            started: false,
            mechanism: mechanism.mechanism_type(),
        })
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.started = true;
        absorb(&mut self.input, data, self.multipart)
    }

    /// Takes the whole input of a single-part call.
    fn one_shot(&mut self, data: &[u8]) -> Result<()> {
        if self.started {
            return Err(CryptoError::MultiPartStarted);
        }
        absorb(&mut self.input, data, true)
    }

    fn signature_len(&self) -> usize {
        signature_len(&self.key, &self.scheme, &self.input)
    }

    /// Whether the scheme recovers the signed data (`CKM_RSA_PKCS`, `CKM_RSA_X_509`).
    fn recovers(&self) -> bool {
        matches!(
            (&*self.key, &self.scheme),
            (
                KeyMaterial::Rsa(_),
                Scheme::Rsa(RsaSignScheme::Pkcs1DigestInfo | RsaSignScheme::Raw)
            )
        )
    }
}

/// A running signature (or MAC) computation. Cloning copies the running state (for
/// `C_GetOperationState`); the key is shared.
#[derive(Clone)]
pub struct SignContext(Progress);

impl std::fmt::Debug for SignContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignContext")
            .field("mechanism", &self.0.mechanism)
            .finish_non_exhaustive()
    }
}

impl SignContext {
    /// Starts signing with `key`, which must be a private (or secret, for MACs) key that
    /// fits `mechanism`.
    pub fn new(mechanism: &Mechanism, key: Arc<KeyMaterial>) -> Result<Self> {
        let progress = Progress::new(mechanism, key)?;
        if !progress.key.is_private() {
            return Err(CryptoError::KeyFunctionNotPermitted(
                "signing needs a private key",
            ));
        }
        Ok(SignContext(progress))
    }

    /// The mechanism being used.
    pub fn mechanism(&self) -> M {
        self.0.mechanism
    }

    /// The exact (or, for DER-free fixed schemes, maximal) signature length.
    pub fn signature_len(&self) -> usize {
        self.0.signature_len()
    }

    /// Adds data (multi-part mechanisms only).
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data)
    }

    /// Finishes and returns the signature.
    pub fn finish(self, rng: &Rng) -> Result<Vec<u8>> {
        let p = self.0;
        let message = finish_input(p.input)?;
        sign_message(&p.key, &p.scheme, message, rng)
    }

    /// Signs `data` in one call (`C_Sign`): refused after `update` was used.
    pub fn sign(mut self, data: &[u8], rng: &Rng) -> Result<Vec<u8>> {
        self.0.one_shot(data)?;
        self.finish(rng)
    }

    /// Signs a message whose mechanism recovers it from the signature (`C_SignRecover`:
    /// `CKM_RSA_PKCS` and `CKM_RSA_X_509`).
    pub fn sign_recover(self, data: &[u8], rng: &Rng) -> Result<Vec<u8>> {
        if !self.0.recovers() {
            return Err(CryptoError::MechanismUnsupported(self.0.mechanism));
        }
        self.sign(data, rng)
    }
}

enum Message {
    Digest(Vec<u8>),
    Tag(Box<MacContext>),
    Whole(Zeroizing<Vec<u8>>),
}

fn finish_input(input: Input) -> Result<Message> {
    Ok(match input {
        Input::Hashing(d) => Message::Digest(d.finish()),
        Input::Mac(m) => Message::Tag(m),
        Input::Whole(buf) => Message::Whole(buf),
    })
}

impl Message {
    fn bytes(&self) -> &[u8] {
        match self {
            Message::Digest(d) => d,
            Message::Whole(w) => w,
            Message::Tag(_) => &[],
        }
    }
}

fn signature_len(key: &KeyMaterial, scheme: &Scheme, input: &Input) -> usize {
    match (key, scheme) {
        (_, Scheme::Mac) => match input {
            Input::Mac(m) => m.tag_len(),
            _ => 0,
        },
        (KeyMaterial::Rsa(k), _) => k.modulus_len(),
        (KeyMaterial::Ec(k), _) => 2 * k.curve().field_len(),
        (KeyMaterial::Ed25519(_), _) => 64,
        (KeyMaterial::MlDsa(k), _) => k.params().sizes().1,
        (KeyMaterial::SlhDsa(k), _) => k.params().signature_len(),
        _ => 0,
    }
}

fn sign_message(key: &KeyMaterial, scheme: &Scheme, msg: Message, rng: &Rng) -> Result<Vec<u8>> {
    if let Message::Tag(mac) = msg {
        return (*mac).finish();
    }
    let data = msg.bytes();
    match (key, scheme) {
        (KeyMaterial::Rsa(k), Scheme::Rsa(s)) => k.sign(*s, data),
        (KeyMaterial::Ec(k), Scheme::Ecdsa) => k.sign_digest(data),
        (KeyMaterial::Ed25519(k), Scheme::Ed25519) => k.sign(data),
        (KeyMaterial::MlDsa(k), Scheme::MlDsa(ctx)) => k.sign(data, ctx),
        (KeyMaterial::SlhDsa(k), Scheme::SlhDsa(ctx)) => k.sign(data, ctx, rng),
        _ => Err(CryptoError::OperationState("key and scheme disagree")),
    }
}

/// A running signature (or MAC) verification. Cloning copies the running state.
#[derive(Clone)]
pub struct VerifyContext(Progress);

impl std::fmt::Debug for VerifyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyContext")
            .field("mechanism", &self.0.mechanism)
            .finish_non_exhaustive()
    }
}

impl VerifyContext {
    /// Starts verifying with `key` (a public key, or the secret key of a MAC; a private key
    /// verifies through its public half).
    pub fn new(mechanism: &Mechanism, key: Arc<KeyMaterial>) -> Result<Self> {
        Progress::new(mechanism, key).map(VerifyContext)
    }

    /// The mechanism being used.
    pub fn mechanism(&self) -> M {
        self.0.mechanism
    }

    /// Adds data (multi-part mechanisms only).
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data)
    }

    /// Finishes: `Ok(())` for a valid signature, `SignatureInvalid` or `SignatureLenRange`
    /// otherwise.
    pub fn finish(self, signature: &[u8]) -> Result<()> {
        let p = self.0;
        let fixed_len = !matches!(p.scheme, Scheme::Mac);
        if fixed_len && signature.len() != p.signature_len() {
            return Err(CryptoError::SignatureLenRange);
        }
        let msg = finish_input(p.input)?;
        if let Message::Tag(mac) = msg {
            return (*mac).verify(signature);
        }
        let data = msg.bytes();
        match (&*p.key, &p.scheme) {
            (KeyMaterial::Rsa(k), Scheme::Rsa(s)) => k.verify(*s, data, signature),
            (KeyMaterial::Ec(k), Scheme::Ecdsa) => k.verify_digest(data, signature),
            (KeyMaterial::Ed25519(k), Scheme::Ed25519) => k.verify(data, signature),
            (KeyMaterial::MlDsa(k), Scheme::MlDsa(ctx)) => k.verify(data, ctx, signature),
            (KeyMaterial::SlhDsa(k), Scheme::SlhDsa(ctx)) => k.verify(data, ctx, signature),
            _ => Err(CryptoError::OperationState("key and scheme disagree")),
        }
    }

    /// Verifies `data` against `signature` in one call (`C_Verify`).
    pub fn verify(mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        self.0.one_shot(data)?;
        self.finish(signature)
    }

    /// Recovers the signed data (`C_VerifyRecover`: `CKM_RSA_PKCS`, `CKM_RSA_X_509`).
    pub fn recover(self, signature: &[u8]) -> Result<Vec<u8>> {
        match (&*self.0.key, &self.0.scheme) {
            (KeyMaterial::Rsa(k), Scheme::Rsa(s)) if self.0.recovers() => k.recover(*s, signature),
            _ => Err(CryptoError::MechanismUnsupported(self.0.mechanism)),
        }
    }
}

/// A running encryption or decryption.
pub enum CipherContext {
    /// AES in any of its modes (multi-part).
    Aes(AesContext),
    /// AES key wrap used as a cipher (single-part, as PKCS#11 allows for `CKM_AES_KEY_WRAP*`).
    KeyWrap {
        /// The wrapping key.
        key: Arc<KeyMaterial>,
        /// KW or KWP.
        flavour: KeyWrap,
        /// Direction.
        direction: Direction,
        /// The collected input.
        input: Zeroizing<Vec<u8>>,
    },
    /// RSA (single-part: input collected, processed at `finish`).
    Rsa {
        /// The key.
        key: Arc<KeyMaterial>,
        /// The padding.
        scheme: RsaCryptScheme,
        /// Direction.
        direction: Direction,
        /// The collected input.
        input: Zeroizing<Vec<u8>>,
    },
}

impl std::fmt::Debug for CipherContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CipherContext::Aes(a) => a.fmt(f),
            CipherContext::Rsa { direction, .. } => {
                write!(f, "CipherContext::Rsa({direction:?})")
            }
            CipherContext::KeyWrap {
                flavour, direction, ..
            } => write!(f, "CipherContext::KeyWrap({flavour:?}, {direction:?})"),
        }
    }
}

impl CipherContext {
    /// Starts encrypting or decrypting with `key`.
    pub fn new(
        mechanism: &Mechanism,
        key: Arc<KeyMaterial>,
        direction: Direction,
        rng: &Rng,
    ) -> Result<Self> {
        match (mechanism, &*key) {
            (Mechanism::Aes(mode), KeyMaterial::Secret { key_type, value })
                if *key_type == KeyType::AES =>
            {
                Ok(CipherContext::Aes(AesContext::new(
                    value.expose(),
                    mode,
                    direction,
                    rng,
                )?))
            }
            (Mechanism::AesKeyWrap(flavour), KeyMaterial::Secret { key_type, .. })
                if *key_type == KeyType::AES =>
            {
                Ok(CipherContext::KeyWrap {
                    key: key.clone(),
                    flavour: *flavour,
                    direction,
                    input: Zeroizing::new(Vec::new()),
                })
            }
            (
                Mechanism::RsaPkcs | Mechanism::RsaX509 | Mechanism::RsaOaep(_),
                KeyMaterial::Rsa(k),
            ) => {
                if direction == Direction::Decrypt && !k.is_private() {
                    return Err(CryptoError::KeyFunctionNotPermitted(
                        "decryption needs a private key",
                    ));
                }
                let scheme = match mechanism {
                    Mechanism::RsaPkcs => RsaCryptScheme::Pkcs1,
                    Mechanism::RsaX509 => RsaCryptScheme::Raw,
                    Mechanism::RsaOaep(p) => RsaCryptScheme::Oaep {
                        hash: p.hash,
                        mgf1: p.mgf1,
                        label: p.label.clone(),
                    },
                    _ => {
                        return Err(CryptoError::MechanismUnsupported(
                            mechanism.mechanism_type(),
                        ));
                    }
                };
                Ok(CipherContext::Rsa {
                    key,
                    scheme,
                    direction,
                    input: Zeroizing::new(Vec::new()),
                })
            }
            (
                Mechanism::Aes(_)
                | Mechanism::AesKeyWrap(_)
                | Mechanism::RsaPkcs
                | Mechanism::RsaX509
                | Mechanism::RsaOaep(_),
                _,
            ) => Err(wrong_key(&key, mechanism)),
            _ => Err(CryptoError::MechanismUnsupported(
                mechanism.mechanism_type(),
            )),
        }
    }

    /// A deep copy of the running state (for `C_GetOperationState`).
    pub fn try_clone(&self) -> Result<Self> {
        Ok(match self {
            CipherContext::Aes(a) => CipherContext::Aes(a.try_clone()?),
            CipherContext::Rsa {
                key,
                scheme,
                direction,
                input,
            } => CipherContext::Rsa {
                key: key.clone(),
                scheme: scheme.clone(),
                direction: *direction,
                input: input.clone(),
            },
            CipherContext::KeyWrap {
                key,
                flavour,
                direction,
                input,
            } => CipherContext::KeyWrap {
                key: key.clone(),
                flavour: *flavour,
                direction: *direction,
                input: input.clone(),
            },
        })
    }

    /// The IV a module-generated GCM encryption chose.
    pub fn gcm_iv(&self) -> Option<&[u8]> {
        match self {
            CipherContext::Aes(a) => a.gcm_iv(),
            _ => None,
        }
    }

    /// An upper bound of `update`'s output for `input_len` more bytes.
    pub fn update_len(&self, input_len: usize) -> usize {
        match self {
            CipherContext::Aes(a) => a.update_len(input_len),
            _ => 0,
        }
    }

    /// An upper bound of `finish`'s output.
    pub fn finish_len(&self) -> usize {
        match self {
            CipherContext::Aes(a) => a.finish_len(),
            CipherContext::Rsa { key, .. } => match &**key {
                KeyMaterial::Rsa(k) => k.modulus_len(),
                _ => 0,
            },
            // KWP pads to a multiple of 8 and adds an 8-byte integrity block.
            CipherContext::KeyWrap { input, .. } => input.len() + 16,
        }
    }

    /// An upper bound of the whole output of a one-shot call over `input_len` bytes.
    pub fn one_shot_len(&self, input_len: usize) -> usize {
        match self {
            CipherContext::KeyWrap { .. } => input_len + 16,
            CipherContext::Aes(a) => a.one_shot_len(input_len),
            _ => self.update_len(input_len) + self.finish_len(),
        }
    }

    /// Processes more input, appending ready output to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self {
            CipherContext::Aes(a) => a.update(input, out),
            _ => Err(CryptoError::SinglePartOnly),
        }
    }

    /// Finishes, appending the last output to `out`.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            CipherContext::Aes(a) => a.finish(out),
            CipherContext::Rsa {
                key,
                scheme,
                direction,
                input,
            } => {
                let KeyMaterial::Rsa(k) = &*key else {
                    return Err(CryptoError::OperationState("key and scheme disagree"));
                };
                match direction {
                    Direction::Encrypt => out.extend(k.encrypt(&scheme, &input)?),
                    Direction::Decrypt => out.extend_from_slice(&k.decrypt(&scheme, &input)?),
                }
                Ok(())
            }
            CipherContext::KeyWrap {
                key,
                flavour,
                direction,
                input,
            } => {
                let Some(kek) = key.secret_value() else {
                    return Err(CryptoError::OperationState("key and scheme disagree"));
                };
                match direction {
                    Direction::Encrypt => out.extend(aes::wrap(kek.expose(), flavour, &input)?),
                    Direction::Decrypt => {
                        let plain =
                            aes::unwrap(kek.expose(), flavour, &input).map_err(|e| match e {
                                CryptoError::WrappedKeyInvalid => CryptoError::EncryptedDataInvalid,
                                CryptoError::WrappedKeyLenRange => {
                                    CryptoError::EncryptedDataLenRange
                                }
                                other => other,
                            })?;
                        out.extend_from_slice(&plain);
                    }
                }
                Ok(())
            }
        }
    }

    /// [`Self::one_shot`] into the caller's buffer `out`, which must hold at least
    /// [`Self::one_shot_len`] bytes (else `BufferTooSmall`, before any work); returns the
    /// length written. AES encryption writes there directly; everything else (decrypted
    /// plaintext above all) is produced whole and checked first, then copied.
    pub fn one_shot_into(self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        let required = self.one_shot_len(input.len());
        if out.len() < required {
            return Err(CryptoError::BufferTooSmall { required });
        }
        match self {
            CipherContext::Aes(a) if a.direction() == Direction::Encrypt => {
                a.encrypt_into(input, out)
            }
            other => {
                let data = other.one_shot(input)?;
                let n = data.len();
                out.get_mut(..n)
                    .ok_or(CryptoError::BufferTooSmall { required: n })?
                    .copy_from_slice(&data);
                Ok(n)
            }
        }
    }

    /// Processes `input` in one call (`C_Encrypt`/`C_Decrypt`).
    pub fn one_shot(mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.one_shot_len(input.len())));
        match &mut self {
            CipherContext::Aes(a) => a.update(input, &mut out)?,
            CipherContext::Rsa { input: buf, .. } | CipherContext::KeyWrap { input: buf, .. } => {
                buf.extend_from_slice(input)
            }
        }
        self.finish(&mut out)?;
        Ok(out)
    }
}

fn oaep(p: &OaepParams) -> RsaCryptScheme {
    RsaCryptScheme::Oaep {
        hash: p.hash,
        mgf1: p.mgf1,
        label: p.label.clone(),
    }
}

/// Refuses a module-generated GCM IV for wrapping: `C_WrapKey` has no way to hand it back.
fn given_iv_only(mode: &AesMode) -> Result<()> {
    match mode {
        AesMode::Gcm(p) if !matches!(p.iv, aes::GcmIv::Given(_)) => Err(
            CryptoError::MechanismParamInvalid("wrapping with AES-GCM needs a caller IV"),
        ),
        _ => Ok(()),
    }
}

/// Wraps the bytes of a key (a secret key's value, or a private key's PKCS#8 encoding): AES
/// key wrap (KW, KWP), the AES encryption modes the registry offers for wrapping, or RSA-OAEP.
pub fn wrap_key(
    mechanism: &Mechanism,
    wrapping: &KeyMaterial,
    key_bytes: &[u8],
    rng: &Rng,
) -> Result<Vec<u8>> {
    match (mechanism, wrapping) {
        (Mechanism::AesKeyWrap(flavour), KeyMaterial::Secret { key_type, value })
            if *key_type == KeyType::AES =>
        {
            aes::wrap(value.expose(), *flavour, key_bytes)
        }
        (Mechanism::Aes(mode), KeyMaterial::Secret { key_type, value })
            if *key_type == KeyType::AES =>
        {
            given_iv_only(mode)?;
            aes::encrypt(value.expose(), mode, key_bytes, rng)
        }
        (Mechanism::RsaOaep(p), KeyMaterial::Rsa(k)) => k.encrypt(&oaep(p), key_bytes),
        (Mechanism::AesKeyWrap(_) | Mechanism::Aes(_) | Mechanism::RsaOaep(_), _) => {
            Err(wrong_key(wrapping, mechanism))
        }
        _ => Err(CryptoError::MechanismUnsupported(
            mechanism.mechanism_type(),
        )),
    }
}

/// The length [`wrap_key`] produces for `key_len` bytes of key, without wrapping anything
/// (for a `C_WrapKey` length query).
pub fn wrapped_len(
    mechanism: &Mechanism,
    wrapping: &KeyMaterial,
    key_len: usize,
    rng: &Rng,
) -> Result<usize> {
    match (mechanism, wrapping) {
        (Mechanism::AesKeyWrap(flavour), KeyMaterial::Secret { key_type, .. })
            if *key_type == KeyType::AES =>
        {
            aes::wrapped_len(*flavour, key_len)
        }
        (Mechanism::Aes(mode), KeyMaterial::Secret { key_type, value })
            if *key_type == KeyType::AES =>
        {
            given_iv_only(mode)?;
            let ctx = AesContext::new(value.expose(), mode, Direction::Encrypt, rng)?;
            Ok(ctx.one_shot_len(key_len))
        }
        (Mechanism::RsaOaep(_), KeyMaterial::Rsa(k)) => Ok(k.modulus_len()),
        (Mechanism::AesKeyWrap(_) | Mechanism::Aes(_) | Mechanism::RsaOaep(_), _) => {
            Err(wrong_key(wrapping, mechanism))
        }
        _ => Err(CryptoError::MechanismUnsupported(
            mechanism.mechanism_type(),
        )),
    }
}

/// Unwraps key bytes wrapped by [`wrap_key`]. A failed integrity check or padding is
/// `WrappedKeyInvalid`.
pub fn unwrap_key(
    mechanism: &Mechanism,
    unwrapping: &KeyMaterial,
    wrapped: &[u8],
    rng: &Rng,
) -> Result<Zeroizing<Vec<u8>>> {
    let as_wrapped = |e: CryptoError| match e {
        CryptoError::EncryptedDataInvalid => CryptoError::WrappedKeyInvalid,
        CryptoError::EncryptedDataLenRange | CryptoError::DataLenRange => {
            CryptoError::WrappedKeyLenRange
        }
        other => other,
    };
    match (mechanism, unwrapping) {
        (Mechanism::AesKeyWrap(flavour), KeyMaterial::Secret { key_type, value })
            if *key_type == KeyType::AES =>
        {
            aes::unwrap(value.expose(), *flavour, wrapped)
        }
        (Mechanism::Aes(mode), KeyMaterial::Secret { key_type, value })
            if *key_type == KeyType::AES =>
        {
            given_iv_only(mode)?;
            aes::decrypt(value.expose(), mode, wrapped, rng).map_err(as_wrapped)
        }
        (Mechanism::RsaOaep(p), KeyMaterial::Rsa(k)) => {
            k.decrypt(&oaep(p), wrapped).map_err(as_wrapped)
        }
        (Mechanism::AesKeyWrap(_) | Mechanism::Aes(_) | Mechanism::RsaOaep(_), _) => {
            Err(wrong_key(unwrapping, mechanism))
        }
        _ => Err(CryptoError::MechanismUnsupported(
            mechanism.mechanism_type(),
        )),
    }
}

/// Derives `len` bytes of key material from `base` (`C_DeriveKey`). For ECDH the natural
/// length is the shared secret's; `len` shorter than that truncates (`CKD_NULL` semantics),
/// longer is refused.
pub fn derive(
    mechanism: &Mechanism,
    base: &KeyMaterial,
    len: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = match (mechanism, base) {
        (Mechanism::Ecdh { public }, KeyMaterial::Ec(k)) => {
            let point = crate::ec::parse_ec_point(public, k.curve().field_len())?;
            k.ecdh(point)?
        }
        (Mechanism::Ecdh { public }, KeyMaterial::X25519(k)) => {
            let u = match public.as_slice() {
                [0x04, 32, rest @ ..] if rest.len() == 32 => rest,
                raw => raw,
            };
            k.derive(u)?
        }
        (Mechanism::Hkdf { params, .. }, KeyMaterial::Secret { value, key_type })
            if *key_type != KeyType::AES || params.extract =>
        {
            let len = len.ok_or(CryptoError::MechanismParamInvalid(
                "HKDF needs CKA_VALUE_LEN",
            ))?;
            hkdf(params, value.expose(), len)?
        }
        (Mechanism::Ecdh { .. } | Mechanism::Hkdf { .. }, _) => {
            return Err(wrong_key(base, mechanism));
        }
        _ => {
            return Err(CryptoError::MechanismUnsupported(
                mechanism.mechanism_type(),
            ));
        }
    };
    if let Some(len) = len {
        if len == 0 || len > out.len() {
            return Err(CryptoError::MechanismParamInvalid(
                "requested key length exceeds the derived secret",
            ));
        }
        out.truncate(len);
    }
    Ok(out)
}

fn hkdf(p: &HkdfParams, ikm: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    match (p.extract, p.expand) {
        (true, true) => kdf::hkdf(p.hash, &p.salt, ikm, &p.info, len),
        (true, false) => kdf::hkdf_extract(p.hash, &p.salt, ikm),
        (false, true) => kdf::hkdf_expand(p.hash, ikm, &p.info, len),
        (false, false) => Err(CryptoError::MechanismParamInvalid(
            "HKDF must extract, expand or both",
        )),
    }
}

/// Derives `len` bytes from a password (`CKM_PKCS5_PBKD2`, which takes no base key).
pub fn pbkdf2(params: &Pbkdf2Params, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if params.iterations == 0 {
        return Err(CryptoError::MechanismParamInvalid("PBKDF2 iterations"));
    }
    kdf::pbkdf2(
        params.prf,
        &params.password,
        &params.salt,
        params.iterations,
        len,
    )
}

/// ML-KEM encapsulation to `public`: (ciphertext, shared secret).
pub fn encapsulate(public: &KeyMaterial) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    match public {
        KeyMaterial::MlKem(k) => k.encapsulate(),
        _ => Err(wrong_key(public, &Mechanism::MlKem)),
    }
}

/// The length of the ciphertext [`encapsulate`] returns for `public`, without encapsulating.
pub fn encapsulated_len(public: &KeyMaterial) -> Result<usize> {
    match public {
        KeyMaterial::MlKem(k) => Ok(k.params().sizes().2),
        _ => Err(wrong_key(public, &Mechanism::MlKem)),
    }
}

/// ML-KEM decapsulation of `ciphertext` with `private`. A ciphertext of the wrong length is
/// `WrappedKeyLenRange` (the code PKCS#11 3.2 gives `C_DecapsulateKey`).
pub fn decapsulate(private: &KeyMaterial, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    match private {
        KeyMaterial::MlKem(k) => k.decapsulate(ciphertext).map_err(|e| match e {
            CryptoError::EncryptedDataLenRange => CryptoError::WrappedKeyLenRange,
            other => other,
        }),
        _ => Err(wrong_key(private, &Mechanism::MlKem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Generated, KeySpec};
    use crate::rng::RngConfig;
    use crate::rng::testing::DeterministicEntropy;

    fn rng() -> Rng {
        Rng::new(
            Box::new(DeterministicEntropy::new([3; 32])),
            RngConfig::default(),
        )
        .unwrap()
    }

    fn pair(spec: KeySpec, rng: &Rng) -> (Arc<KeyMaterial>, Arc<KeyMaterial>) {
        match KeyMaterial::generate(spec, rng).unwrap() {
            Generated::Pair(p, s) => (Arc::new(p), Arc::new(s)),
            Generated::Secret(_) => panic!("pair expected"),
        }
    }

    /// Every AES mode, encrypting and decrypting: the in-place call writes exactly what the
    /// allocating one returns, into a buffer of exactly the length it asks for or a larger
    /// one, touches nothing beyond it, and refuses a short buffer without writing to it.
    #[test]
    fn one_shot_into_writes_what_one_shot_returns_and_refuses_short_buffers() {
        use crate::aes::{GcmIv, GcmParams};
        let rng = rng();
        let key = Arc::new(KeyMaterial::Secret {
            key_type: KeyType::AES,
            value: crate::secret::SecretBytes::new(&[7u8; 32]),
        });
        let gcm = |tag_bits, aad: &[u8]| {
            AesMode::Gcm(GcmParams {
                iv: GcmIv::Given(vec![9; 12]),
                aad: aad.to_vec(),
                tag_bits,
            })
        };
        let modes = [
            (AesMode::Ecb, true),
            (AesMode::Cbc { iv: [1; 16] }, true),
            (AesMode::CbcPad { iv: [2; 16] }, false),
            (
                AesMode::Ctr {
                    counter_block: [3; 16],
                    counter_bits: 32,
                },
                false,
            ),
            (gcm(128, b""), false),
            (gcm(96, b"header"), false),
            (gcm(32, b""), false),
        ];
        let make = |mode: &AesMode, d| {
            CipherContext::new(&Mechanism::Aes(mode.clone()), key.clone(), d, &rng).unwrap()
        };
        for (mode, whole_blocks) in &modes {
            for len in [0usize, 1, 15, 16, 17, 100, 4096, 4097] {
                if *whole_blocks && len % 16 != 0 {
                    continue;
                }
                let input: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let expected = make(mode, Direction::Encrypt).one_shot(&input).unwrap();
                let required = make(mode, Direction::Encrypt).one_shot_len(len);
                for slack in [0usize, 1, 40] {
                    let mut buf = vec![0xee; required + slack];
                    let n = make(mode, Direction::Encrypt)
                        .one_shot_into(&input, &mut buf)
                        .unwrap();
                    assert_eq!(&buf[..n], &expected[..], "{mode:?}, {len} bytes");
                    assert!(buf[n..].iter().all(|b| *b == 0xee), "nothing past the end");
                }
                if required > 0 {
                    let mut short = vec![0xee; required - 1];
                    let err = make(mode, Direction::Encrypt)
                        .one_shot_into(&input, &mut short)
                        .unwrap_err();
                    assert_eq!(err, CryptoError::BufferTooSmall { required });
                    assert!(short.iter().all(|b| *b == 0xee), "a refusal writes nothing");
                }
                // Decryption through the same call gives the plaintext back.
                let bound = make(mode, Direction::Decrypt).one_shot_len(expected.len());
                let mut plain = vec![0xee; bound];
                let n = make(mode, Direction::Decrypt)
                    .one_shot_into(&expected, &mut plain)
                    .unwrap();
                assert_eq!(&plain[..n], &input[..], "{mode:?} decrypts");
            }
        }
        // A forged GCM ciphertext leaves the caller's buffer as it was.
        let mut forged = make(&modes[4].0, Direction::Encrypt)
            .one_shot(b"attack at dawn")
            .unwrap();
        forged[0] ^= 1;
        let mut plain = vec![0xee; 64];
        assert!(
            make(&modes[4].0, Direction::Decrypt)
                .one_shot_into(&forged, &mut plain)
                .is_err()
        );
        assert!(plain.iter().all(|b| *b == 0xee), "no unchecked plaintext");
    }

    #[test]
    fn multi_part_and_one_shot_signatures_agree_and_verify() {
        let rng = rng();
        let data = vec![0x5a; 10_000];
        for (spec, mech) in [
            (
                KeySpec::Rsa { bits: 2048 },
                Mechanism::RsaPkcsWith(HashAlg::Sha256),
            ),
            (
                KeySpec::Ec(crate::ec::Curve::P384),
                Mechanism::EcdsaWith(HashAlg::Sha384),
            ),
        ] {
            let (public, private) = pair(spec, &rng);
            let mut ctx = SignContext::new(&mech, private.clone()).unwrap();
            for chunk in data.chunks(999) {
                ctx.update(chunk).unwrap();
            }
            let sig = ctx.finish(&rng).unwrap();
            let one = SignContext::new(&mech, private.clone()).unwrap();
            assert_eq!(one.signature_len(), sig.len());
            let sig2 = one.sign(&data, &rng).unwrap();
            VerifyContext::new(&mech, public.clone())
                .unwrap()
                .verify(&data, &sig)
                .unwrap();
            let mut v = VerifyContext::new(&mech, public.clone()).unwrap();
            v.update(&data[..5000]).unwrap();
            v.update(&data[5000..]).unwrap();
            v.finish(&sig2).unwrap();
            let mut bad = sig.clone();
            bad[3] ^= 1;
            assert_eq!(
                VerifyContext::new(&mech, public)
                    .unwrap()
                    .verify(&data, &bad),
                Err(CryptoError::SignatureInvalid)
            );
        }
    }

    #[test]
    fn single_part_mechanisms_refuse_update_and_public_keys_cannot_sign() {
        let rng = rng();
        let (public, private) = pair(KeySpec::Ed25519, &rng);
        let mut ctx = SignContext::new(&Mechanism::EdDsa, private).unwrap();
        assert_eq!(ctx.update(b"x"), Err(CryptoError::SinglePartOnly));
        assert!(matches!(
            SignContext::new(&Mechanism::EdDsa, public.clone()),
            Err(CryptoError::KeyFunctionNotPermitted(_))
        ));
        assert!(matches!(
            SignContext::new(&Mechanism::Ecdsa, public),
            Err(CryptoError::KeyTypeInconsistent { .. })
        ));
    }

    #[test]
    fn sign_recover_gives_back_the_digest_info_and_other_schemes_refuse_it() {
        let rng = rng();
        let (public, private) = pair(KeySpec::Rsa { bits: 2048 }, &rng);
        let mut info = HashAlg::Sha256.digest_info_prefix().to_vec();
        info.extend([0x11; 32]);
        let sig = SignContext::new(&Mechanism::RsaPkcs, private.clone())
            .unwrap()
            .sign_recover(&info, &rng)
            .unwrap();
        let recovered = VerifyContext::new(&Mechanism::RsaPkcs, public.clone())
            .unwrap()
            .recover(&sig)
            .unwrap();
        assert_eq!(recovered, info);
        // A single-part call after an update is refused, and hash-then-sign cannot recover.
        let mut ctx =
            SignContext::new(&Mechanism::RsaPkcsWith(HashAlg::Sha256), private.clone()).unwrap();
        ctx.update(b"part").unwrap();
        assert_eq!(ctx.sign(b"whole", &rng), Err(CryptoError::MultiPartStarted));
        let hashing = Mechanism::RsaPkcsWith(HashAlg::Sha256);
        assert!(matches!(
            SignContext::new(&hashing, private)
                .unwrap()
                .sign_recover(b"x", &rng),
            Err(CryptoError::MechanismUnsupported(_))
        ));
        assert!(matches!(
            VerifyContext::new(&hashing, public).unwrap().recover(&sig),
            Err(CryptoError::MechanismUnsupported(_))
        ));
    }

    #[test]
    fn hmac_and_aes_dispatch() {
        let rng = rng();
        // RFC 4231 test case 2.
        let key = Arc::new(KeyMaterial::Secret {
            key_type: KeyType::GENERIC_SECRET,
            value: crate::secret::SecretBytes::new(b"Jefe"),
        });
        let mech = Mechanism::without_params(M::SHA256_HMAC).unwrap();
        let tag = SignContext::new(&mech, key.clone())
            .unwrap()
            .sign(b"what do ya want for nothing?", &rng)
            .unwrap();
        assert_eq!(
            hex::encode(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        VerifyContext::new(&mech, key)
            .unwrap()
            .verify(b"what do ya want for nothing?", &tag)
            .unwrap();

        let Generated::Secret(aes) = KeyMaterial::generate(KeySpec::Aes { len: 32 }, &rng).unwrap()
        else {
            panic!("secret expected")
        };
        let aes = Arc::new(aes);
        let mech = Mechanism::Aes(AesMode::CbcPad { iv: [9; 16] });
        let ct = CipherContext::new(&mech, aes.clone(), Direction::Encrypt, &rng)
            .unwrap()
            .one_shot(b"seventeen bytes!!")
            .unwrap();
        assert_eq!(ct.len(), 32);
        let pt = CipherContext::new(&mech, aes, Direction::Decrypt, &rng)
            .unwrap()
            .one_shot(&ct)
            .unwrap();
        assert_eq!(&pt[..], b"seventeen bytes!!");
    }

    #[test]
    fn ecdh_agrees_both_ways_and_kem_round_trips() {
        let rng = rng();
        let (pa, sa) = pair(KeySpec::Ec(crate::ec::Curve::P256), &rng);
        let (pb, sb) = pair(KeySpec::Ec(crate::ec::Curve::P256), &rng);
        let point = |k: &KeyMaterial| match k {
            KeyMaterial::Ec(k) => k.public_point().to_vec(),
            _ => unreachable!(),
        };
        let ab = derive(&Mechanism::Ecdh { public: point(&pb) }, &sa, None).unwrap();
        let ba = derive(&Mechanism::Ecdh { public: point(&pa) }, &sb, Some(16)).unwrap();
        assert_eq!(&ab[..16], &ba[..]);
        let (kp, ks) = pair(KeySpec::MlKem(crate::pq::MlKemParams::MlKem512), &rng);
        let (ct, ss) = encapsulate(&kp).unwrap();
        assert_eq!(decapsulate(&ks, &ct).unwrap(), ss);
    }

    #[test]
    fn pss_parameters_must_match_the_mechanism() {
        let p = PssParams {
            hash: HashAlg::Sha384,
            mgf1: HashAlg::Sha384,
            salt_len: 48,
        };
        assert!(Mechanism::pss(M::SHA256_RSA_PKCS_PSS, p).is_err());
        assert_eq!(
            Mechanism::pss(M::SHA384_RSA_PKCS_PSS, p)
                .unwrap()
                .mechanism_type(),
            M::SHA384_RSA_PKCS_PSS
        );
    }
}
