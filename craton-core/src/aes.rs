//! AES: ECB, CBC, CBC with PKCS#7 padding, CTR, GCM (caller or module-generated IV, any tag
//! length SP 800-38D allows), and key wrap (RFC 3394 KW, RFC 5649 KWP).
//!
//! Multi-part rules follow PKCS#11: GCM decryption releases no plaintext until the tag has been
//! checked at the final call; CTR refuses input that would wrap the counter field the caller
//! declared; unpadded ECB/CBC refuse a final partial block.

use crate::error::{CryptoError, Result};
use crate::ffi::cipher::{AesMode as FfiMode, CipherCtx, Direction, Out};
use crate::ffi::keywrap;
use crate::mac::AES_KEY_BYTES;
use crate::mechanism::{KeyType, MechanismInfo, MechanismType as M, Operations as Op, row};
use crate::rng::Rng;
use zeroize::Zeroizing;

/// Where a GCM IV comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum GcmIv {
    /// The caller supplies the IV (decryption, or encryption where policy permits).
    Given(Vec<u8>),
    /// The module generates the IV: `fixed` leading bytes from the caller (may be empty),
    /// the rest, up to `len` bytes, from the DRBG (SP 800-38D §8.2.2).
    Generate {
        /// Caller-chosen fixed field.
        fixed: Vec<u8>,
        /// Total IV length in bytes (≥ 12).
        len: usize,
    },
}

impl std::fmt::Debug for GcmIv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GcmIv::Given(iv) => write!(f, "Given({} bytes)", iv.len()),
            GcmIv::Generate { fixed, len } => {
                write!(f, "Generate {{ fixed: {} bytes, len: {len} }}", fixed.len())
            }
        }
    }
}

impl GcmIv {
    /// The IV an operation in `direction` uses: the given one, or for encryption a fresh one
    /// (SP 800-38D §8.2.2: the caller's fixed field, then at least 96 bits from `rng`).
    pub fn resolve(&self, direction: Direction, rng: &Rng) -> Result<Vec<u8>> {
        match (self, direction) {
            (GcmIv::Given(iv), _) => Ok(iv.clone()),
            (GcmIv::Generate { fixed, len }, Direction::Encrypt) => {
                if *len < 12 || *len > 256 || fixed.len() > len - 12 {
                    return Err(CryptoError::MechanismParamInvalid("GCM IV generator"));
                }
                let mut iv = fixed.clone();
                iv.resize(*len, 0);
                rng.fill(&mut iv[fixed.len()..])?;
                Ok(iv)
            }
            (GcmIv::Generate { .. }, Direction::Decrypt) => Err(
                CryptoError::MechanismParamInvalid("GCM decryption needs the IV"),
            ),
        }
    }
}

/// `CK_GCM_PARAMS`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmParams {
    /// The IV or how to make it.
    pub iv: GcmIv,
    /// Additional authenticated data.
    pub aad: Vec<u8>,
    /// Tag length in bits: 32, 64, or 96..=128 in steps of 8 (SP 800-38D §5.2.1.2).
    pub tag_bits: usize,
}

/// An AES mode with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AesMode {
    /// `CKM_AES_ECB`: whole blocks only.
    Ecb,
    /// `CKM_AES_CBC`: whole blocks only.
    Cbc {
        /// IV.
        iv: [u8; 16],
    },
    /// `CKM_AES_CBC_PAD`: PKCS#7 padding.
    CbcPad {
        /// IV.
        iv: [u8; 16],
    },
    /// `CKM_AES_CTR` with the counter in the low `counter_bits` of the block.
    Ctr {
        /// Initial counter block.
        counter_block: [u8; 16],
        /// Width of the counter field, 1..=128.
        counter_bits: u32,
    },
    /// `CKM_AES_GCM`.
    Gcm(GcmParams),
}

impl AesMode {
    /// The mechanism this mode is.
    pub fn mechanism(&self) -> M {
        match self {
            AesMode::Ecb => M::AES_ECB,
            AesMode::Cbc { .. } => M::AES_CBC,
            AesMode::CbcPad { .. } => M::AES_CBC_PAD,
            AesMode::Ctr { .. } => M::AES_CTR,
            AesMode::Gcm(_) => M::AES_GCM,
        }
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    match key.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(CryptoError::KeySizeRange {
            bits: n * 8,
            min: 128,
            max: 256,
        }),
    }
}

/// Longest GCM IV accepted, in bytes.
pub const MAX_GCM_IV: usize = 4096;

fn valid_tag_bits(bits: usize) -> bool {
    matches!(bits, 32 | 64) || (96..=128).contains(&bits) && bits.is_multiple_of(8)
}

/// How many more bytes a CTR context may process before its counter field wraps.
fn ctr_budget(block: &[u8; 16], counter_bits: u32) -> Result<u128> {
    if counter_bits == 0 || counter_bits > 128 {
        return Err(CryptoError::MechanismParamInvalid("CTR counter bits"));
    }
    let value = u128::from_be_bytes(*block);
    let blocks_left = if counter_bits == 128 {
        u128::MAX - value
    } else {
        let mask = (1u128 << counter_bits) - 1;
        mask - (value & mask)
    };
    // +1 because the current counter value itself is usable.
    Ok(blocks_left.saturating_add(1).saturating_mul(16))
}

/// A running AES encryption or decryption.
pub struct AesContext {
    ctx: CipherCtx,
    kind: Kind,
}

enum Kind {
    Plain {
        whole_blocks: bool,
        buffered: usize,
    },
    Pad,
    Ctr {
        budget: u128,
    },
    GcmEncrypt {
        tag_len: usize,
        iv: Vec<u8>,
    },
    GcmDecrypt {
        tag_len: usize,
        held: Zeroizing<Vec<u8>>,
    },
}

impl AesContext {
    /// Starts an operation. `rng` supplies module-generated GCM IVs.
    pub fn new(key: &[u8], mode: &AesMode, direction: Direction, rng: &Rng) -> Result<Self> {
        check_key(key)?;
        let bad = |_| CryptoError::MechanismParamInvalid("AES parameters");
        let (ctx, kind) = match mode {
            AesMode::Ecb => (
                CipherCtx::new(FfiMode::Ecb, direction, key, &[], false).map_err(bad)?,
                Kind::Plain {
                    whole_blocks: true,
                    buffered: 0,
                },
            ),
            AesMode::Cbc { iv } => (
                CipherCtx::new(FfiMode::Cbc, direction, key, iv, false).map_err(bad)?,
                Kind::Plain {
                    whole_blocks: true,
                    buffered: 0,
                },
            ),
            AesMode::CbcPad { iv } => (
                CipherCtx::new(FfiMode::Cbc, direction, key, iv, true).map_err(bad)?,
                Kind::Pad,
            ),
            AesMode::Ctr {
                counter_block,
                counter_bits,
            } => (
                CipherCtx::new(FfiMode::Ctr, direction, key, counter_block, false).map_err(bad)?,
                Kind::Ctr {
                    budget: ctr_budget(counter_block, *counter_bits)?,
                },
            ),
            AesMode::Gcm(p) => {
                if !valid_tag_bits(p.tag_bits) {
                    return Err(CryptoError::MechanismParamInvalid("GCM tag length"));
                }
                let iv = p.iv.resolve(direction, rng)?;
                // SP 800-38D allows IVs up to 2^64 bits; 4 KiB bounds the work a caller can ask for.
                if iv.is_empty() || iv.len() > MAX_GCM_IV {
                    return Err(CryptoError::MechanismParamInvalid("GCM IV length"));
                }
                let mut ctx =
                    CipherCtx::new(FfiMode::Gcm, direction, key, &iv, false).map_err(bad)?;
                ctx.aad(&p.aad).map_err(bad)?;
                let tag_len = p.tag_bits / 8;
                let kind = match direction {
                    Direction::Encrypt => Kind::GcmEncrypt { tag_len, iv },
                    Direction::Decrypt => Kind::GcmDecrypt {
                        tag_len,
                        held: Zeroizing::new(Vec::new()),
                    },
                };
                (ctx, kind)
            }
        };
        Ok(AesContext { ctx, kind })
    }

    /// Whether this context encrypts.
    pub fn direction(&self) -> Direction {
        self.ctx.direction()
    }

    /// The IV actually used by a GCM encryption (module-generated IVs go back to the caller).
    pub fn gcm_iv(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::GcmEncrypt { iv, .. } => Some(iv),
            _ => None,
        }
    }

    /// An upper bound of what `update` with `input_len` bytes can output (for the two-call
    /// buffer convention).
    pub fn update_len(&self, input_len: usize) -> usize {
        match &self.kind {
            Kind::GcmDecrypt { .. } => 0,
            Kind::Plain { buffered, .. } => (buffered + input_len) / 16 * 16,
            Kind::Ctr { .. } | Kind::GcmEncrypt { .. } => input_len,
            Kind::Pad => input_len + 16,
        }
    }

    /// An upper bound of the whole output of a one-shot call (update then finish) over
    /// `input_len` bytes: exact for encryption, never below the true length for decryption.
    pub fn one_shot_len(&self, input_len: usize) -> usize {
        let decrypt = self.ctx.direction() == Direction::Decrypt;
        match &self.kind {
            Kind::GcmDecrypt { held, tag_len } => (held.len() + input_len).saturating_sub(*tag_len),
            Kind::Pad if decrypt => input_len,
            Kind::Pad => (input_len / 16 + 1) * 16,
            _ => self.update_len(input_len) + self.finish_len(),
        }
    }

    /// An upper bound of what `finish` can output.
    pub fn finish_len(&self) -> usize {
        match &self.kind {
            Kind::GcmEncrypt { tag_len, .. } => *tag_len,
            Kind::GcmDecrypt { held, tag_len } => held.len().saturating_sub(*tag_len),
            Kind::Pad => 16,
            Kind::Plain { .. } | Kind::Ctr { .. } => 0,
        }
    }

    /// Processes more input, appending ready output to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.update_to(input, &mut Out::Vec(out))
    }

    /// Finishes, appending the final output (padding block, GCM tag, or the verified GCM
    /// plaintext) to `out`.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<()> {
        self.finish_to(&mut Out::Vec(out))
    }

    /// Encrypts `input` in one call straight into `out`, which must hold at least
    /// [`Self::one_shot_len`] bytes; returns the length written. Ciphertext only: a
    /// decryption is refused, since plaintext must not reach a caller's buffer before the
    /// whole of it has been checked.
    pub fn encrypt_into(mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.direction() != Direction::Encrypt {
            return Err(CryptoError::OperationState(
                "decryption has no in-place form",
            ));
        }
        let required = self.one_shot_len(input.len());
        if out.len() < required {
            return Err(CryptoError::BufferTooSmall { required });
        }
        let mut into = Out::Slice {
            buf: out,
            filled: 0,
        };
        self.update_to(input, &mut into)?;
        self.finish_to(&mut into)?;
        Ok(into.len())
    }

    fn update_to(&mut self, input: &[u8], out: &mut Out<'_>) -> Result<()> {
        let is_decrypt = self.ctx.direction() == Direction::Decrypt;
        match &mut self.kind {
            Kind::GcmDecrypt { held, .. } => {
                held.extend_from_slice(input);
                return Ok(());
            }
            Kind::Ctr { budget } => {
                let n = input.len() as u128;
                if n > *budget {
                    return Err(CryptoError::DataLenRange);
                }
                *budget -= n;
            }
            Kind::Plain { buffered, .. } => *buffered = (*buffered + input.len()) % 16,
            Kind::Pad | Kind::GcmEncrypt { .. } => {}
        }
        self.ctx.update(input, out).map_err(|_| {
            if is_decrypt {
                CryptoError::EncryptedDataInvalid
            } else {
                CryptoError::Library
            }
        })
    }

    fn finish_to(mut self, out: &mut Out<'_>) -> Result<()> {
        let decrypt = self.ctx.direction() == Direction::Decrypt;
        match &mut self.kind {
            Kind::Plain { buffered, .. } if *buffered != 0 => {
                return Err(if decrypt {
                    CryptoError::EncryptedDataLenRange
                } else {
                    CryptoError::DataLenRange
                });
            }
            Kind::GcmEncrypt { tag_len, .. } => {
                let tag_len = *tag_len;
                self.ctx.finish(out)?;
                self.ctx.gcm_tag(tag_len, out)?;
                return Ok(());
            }
            Kind::GcmDecrypt { tag_len, held } => {
                if held.len() < *tag_len {
                    return Err(CryptoError::EncryptedDataLenRange);
                }
                let split = held.len() - *tag_len;
                self.ctx
                    .gcm_set_expected_tag(&held[split..])
                    .map_err(|_| CryptoError::EncryptedDataInvalid)?;
                let mut plain = Zeroizing::new(Vec::with_capacity(split + 16));
                let mut to_plain = Out::Vec(&mut plain);
                self.ctx
                    .update(&held[..split], &mut to_plain)
                    .map_err(|_| CryptoError::EncryptedDataInvalid)?;
                self.ctx
                    .finish(&mut to_plain)
                    .map_err(|_| CryptoError::EncryptedDataInvalid)?;
                out.extend_from_slice(&plain)?;
                return Ok(());
            }
            _ => {}
        }
        self.ctx.finish(out).map_err(|_| {
            if decrypt {
                CryptoError::EncryptedDataInvalid
            } else {
                CryptoError::Library
            }
        })
    }

    /// A deep copy of the running state.
    pub fn try_clone(&self) -> Result<Self> {
        let kind = match &self.kind {
            Kind::Plain {
                whole_blocks,
                buffered,
            } => Kind::Plain {
                whole_blocks: *whole_blocks,
                buffered: *buffered,
            },
            Kind::Pad => Kind::Pad,
            Kind::Ctr { budget } => Kind::Ctr { budget: *budget },
            Kind::GcmEncrypt { tag_len, iv } => Kind::GcmEncrypt {
                tag_len: *tag_len,
                iv: iv.clone(),
            },
            Kind::GcmDecrypt { tag_len, held } => Kind::GcmDecrypt {
                tag_len: *tag_len,
                held: held.clone(),
            },
        };
        Ok(AesContext {
            ctx: self.ctx.try_clone()?,
            kind,
        })
    }
}

impl std::fmt::Debug for AesContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesContext")
            .field("mode", &self.ctx.mode())
            .field("direction", &self.ctx.direction())
            .finish_non_exhaustive()
    }
}

/// One-shot encryption.
pub fn encrypt(key: &[u8], mode: &AesMode, data: &[u8], rng: &Rng) -> Result<Vec<u8>> {
    let mut ctx = AesContext::new(key, mode, Direction::Encrypt, rng)?;
    let mut out = Vec::with_capacity(data.len() + 32);
    ctx.update(data, &mut out)?;
    ctx.finish(&mut out)?;
    Ok(out)
}

/// One-shot decryption. The plaintext is wiped when the returned value drops.
pub fn decrypt(key: &[u8], mode: &AesMode, data: &[u8], rng: &Rng) -> Result<Zeroizing<Vec<u8>>> {
    let mut ctx = AesContext::new(key, mode, Direction::Decrypt, rng)?;
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() + 16));
    ctx.update(data, &mut out)?;
    ctx.finish(&mut out)?;
    Ok(out)
}

/// Which AES key-wrap flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWrap {
    /// RFC 3394 / SP 800-38F KW: input a multiple of 8 bytes, at least 16.
    Kw,
    /// RFC 5649 / SP 800-38F KWP: any non-empty input.
    Kwp,
}

/// Wraps `key_bytes` under `kek`.
pub fn wrap(kek: &[u8], flavour: KeyWrap, key_bytes: &[u8]) -> Result<Vec<u8>> {
    check_key(kek)?;
    match flavour {
        KeyWrap::Kw => keywrap::wrap(kek, key_bytes),
        KeyWrap::Kwp => keywrap::wrap_padded(kek, key_bytes),
    }
    .map_err(|_| CryptoError::DataLenRange)
}

/// The length [`wrap`] produces for `key_len` bytes, or `DataLenRange` for a length the
/// flavour cannot wrap.
pub fn wrapped_len(flavour: KeyWrap, key_len: usize) -> Result<usize> {
    match flavour {
        KeyWrap::Kw if key_len >= 16 && key_len.is_multiple_of(8) => Ok(key_len + 8),
        KeyWrap::Kwp if key_len > 0 => Ok(key_len.div_ceil(8) * 8 + 8),
        _ => Err(CryptoError::DataLenRange),
    }
}

/// Unwraps; an integrity failure is `WrappedKeyInvalid`.
pub fn unwrap(kek: &[u8], flavour: KeyWrap, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    check_key(kek)?;
    let len_ok = match flavour {
        KeyWrap::Kw => wrapped.len() >= 24 && wrapped.len().is_multiple_of(8),
        KeyWrap::Kwp => wrapped.len() >= 16 && wrapped.len().is_multiple_of(8),
    };
    if !len_ok {
        return Err(CryptoError::WrappedKeyLenRange);
    }
    match flavour {
        KeyWrap::Kw => keywrap::unwrap(kek, wrapped),
        KeyWrap::Kwp => keywrap::unwrap_padded(kek, wrapped),
    }
    .map_err(|_| CryptoError::WrappedKeyInvalid)
}

pub(crate) fn rows() -> Vec<MechanismInfo> {
    let aes: &'static [KeyType] = &[KeyType::AES];
    let ed = Op::ENCRYPT | Op::DECRYPT;
    let edw = ed | Op::WRAP | Op::UNWRAP;
    vec![
        row(
            M::AES_KEY_GEN,
            aes,
            AES_KEY_BYTES,
            Op::GENERATE,
            false,
            true,
        ),
        row(M::AES_ECB, aes, AES_KEY_BYTES, edw, true, true),
        row(M::AES_CBC, aes, AES_KEY_BYTES, edw, true, true),
        row(M::AES_CBC_PAD, aes, AES_KEY_BYTES, edw, true, true),
        row(M::AES_CTR, aes, AES_KEY_BYTES, ed, true, true),
        row(M::AES_GCM, aes, AES_KEY_BYTES, edw, true, true),
        row(M::AES_KEY_WRAP, aes, AES_KEY_BYTES, edw, false, true),
        row(M::AES_KEY_WRAP_KWP, aes, AES_KEY_BYTES, edw, false, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::test_rng;

    #[test]
    fn wrapped_len_is_what_wrap_produces() {
        let kek = [3u8; 32];
        for n in [1usize, 7, 8, 9, 16, 24, 31, 32, 33, 1217] {
            let key = vec![0x42; n];
            for flavour in [KeyWrap::Kw, KeyWrap::Kwp] {
                match (wrap(&kek, flavour, &key), wrapped_len(flavour, n)) {
                    (Ok(w), Ok(len)) => assert_eq!(w.len(), len, "{flavour:?} of {n}"),
                    (Err(_), Err(_)) => {}
                    (w, len) => panic!("{flavour:?} of {n}: wrap {w:?}, length {len:?}"),
                }
            }
        }
    }

    #[test]
    fn ctr_refuses_to_wrap_a_short_counter() {
        let rng = test_rng();
        let mut block = [0u8; 16];
        block[15] = 0xFE; // two blocks left in an 8-bit counter
        let mode = AesMode::Ctr {
            counter_block: block,
            counter_bits: 8,
        };
        assert_eq!(
            encrypt(&[1; 16], &mode, &[0; 32], &rng).map(|c| c.len()),
            Ok(32)
        );
        assert_eq!(
            encrypt(&[1; 16], &mode, &[0; 33], &rng),
            Err(CryptoError::DataLenRange)
        );
    }

    #[test]
    fn gcm_generated_iv_is_reported_and_decrypts() {
        let rng = test_rng();
        let key = [9u8; 32];
        let params = GcmParams {
            iv: GcmIv::Generate {
                fixed: vec![1, 2, 3, 4],
                len: 16,
            },
            aad: b"header".to_vec(),
            tag_bits: 96,
        };
        let mut ctx =
            AesContext::new(&key, &AesMode::Gcm(params), Direction::Encrypt, &rng).expect("ctx");
        let iv = ctx.gcm_iv().expect("iv").to_vec();
        assert_eq!(&iv[..4], &[1, 2, 3, 4]);
        assert_eq!(iv.len(), 16);
        // SP 800-38D §8.2.2: the random field must be at least 96 bits.
        let short = GcmParams {
            iv: GcmIv::Generate {
                fixed: vec![1, 2, 3, 4],
                len: 12,
            },
            aad: Vec::new(),
            tag_bits: 128,
        };
        assert!(AesContext::new(&key, &AesMode::Gcm(short), Direction::Encrypt, &rng).is_err());
        let mut ct = Vec::new();
        ctx.update(b"hello ", &mut ct).expect("update");
        ctx.update(b"world", &mut ct).expect("update");
        ctx.finish(&mut ct).expect("finish");
        assert_eq!(ct.len(), 11 + 12);
        let dec = AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(iv),
            aad: b"header".to_vec(),
            tag_bits: 96,
        });
        assert_eq!(
            &decrypt(&key, &dec, &ct, &rng).expect("decrypts")[..],
            b"hello world"
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            decrypt(&key, &dec, &bad, &rng).map(|_| ()),
            Err(CryptoError::EncryptedDataInvalid)
        );
    }

    /// Every mode, fed in pieces that split blocks every which way (so the cipher holds some
    /// input back and writes less than it was given), produces exactly the one-shot output,
    /// both ways.
    #[test]
    fn output_in_odd_pieces_equals_the_one_shot_output() {
        let rng = test_rng();
        let key = [7u8; 32];
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let gcm = AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(vec![3; 12]),
            aad: b"header".to_vec(),
            tag_bits: 128,
        });
        let modes = [
            (AesMode::Ecb, 992),
            (AesMode::Cbc { iv: [1; 16] }, 992),
            (AesMode::CbcPad { iv: [2; 16] }, 1000),
            (
                AesMode::Ctr {
                    counter_block: [0; 16],
                    counter_bits: 128,
                },
                1000,
            ),
            (gcm, 1000),
        ];
        let pieces = [1usize, 15, 17, 0, 32, 5, 100, 16, 33];
        let in_pieces = |mode: &AesMode, direction: Direction, input: &[u8]| -> Vec<u8> {
            let mut ctx = AesContext::new(&key, mode, direction, &rng).expect("starts");
            let mut out = Vec::new();
            let mut rest = input;
            for n in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (part, tail) = rest.split_at((*n).min(rest.len()));
                let before = out.len();
                ctx.update(part, &mut out).expect("update");
                // At most what it was given plus one block held back earlier.
                assert!(out.len() - before <= part.len() + 16, "{mode:?}");
                rest = tail;
            }
            ctx.finish(&mut out).expect("finish");
            out
        };
        for (mode, len) in &modes {
            let plain = &data[..*len];
            let whole = encrypt(&key, mode, plain, &rng).expect("encrypts");
            assert_eq!(
                in_pieces(mode, Direction::Encrypt, plain),
                whole,
                "{mode:?}"
            );
            assert_eq!(
                in_pieces(mode, Direction::Decrypt, &whole),
                plain,
                "{mode:?}"
            );
        }
    }

    #[test]
    fn partial_blocks_and_bad_padding_are_refused() {
        let rng = test_rng();
        let cbc = AesMode::Cbc { iv: [0; 16] };
        assert_eq!(
            encrypt(&[1; 16], &cbc, &[0; 17], &rng),
            Err(CryptoError::DataLenRange)
        );
        assert_eq!(
            decrypt(&[1; 16], &cbc, &[0; 15], &rng).map(|_| ()),
            Err(CryptoError::EncryptedDataLenRange)
        );
        let pad = AesMode::CbcPad { iv: [0; 16] };
        let ct = encrypt(&[1; 16], &pad, b"sixteen bytes!!!", &rng).expect("encrypts");
        assert_eq!(ct.len(), 32);
        let mut bad = ct.clone();
        bad[31] ^= 0x55;
        assert_eq!(
            decrypt(&[1; 16], &pad, &bad, &rng).map(|_| ()),
            Err(CryptoError::EncryptedDataInvalid)
        );
        assert!(matches!(
            encrypt(&[1; 15], &pad, b"x", &rng),
            Err(CryptoError::KeySizeRange { .. })
        ));
    }
}
