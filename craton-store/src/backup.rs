//! Encrypted, authenticated backups of tokens, and their restore onto a fresh host.
//!
//! A backup holds the store's records exactly as stored: private objects and the secret parts
//! of keys are still sealed under their token's master key, which exists only wrapped by the
//! PINs. The whole payload is then sealed again with AES-256-GCM under a key derived from a
//! passphrase (PBKDF2-HMAC-SHA-256) or given by the operator. So no key ever appears in clear,
//! and a restored token answers to the same PINs with the same objects and attributes.
//!
//! Layout: `"CRATONBK"` ‖ version (u8 = 1) ‖ key kind (u8: 1 passphrase, 2 operator key) ‖
//! salt (16) ‖ iterations (u32 LE) ‖ created (u64 LE, Unix seconds) ‖ slots (u32 LE) ‖ nonce
//! (12) ‖ AES-256-GCM(payload) with everything before the nonce as associated data.
//! A wrong secret, a truncated file or any altered byte fails authentication: nothing is
//! written.

use crate::codec::{Reader, Writer};
use crate::hsm::Hsm;
use crate::persist::{Snapshot, Store, StoreError};
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::digest::HashAlg;
use craton_core::rng::Rng;
use craton_core::secret::SecretBytes;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"CRATONBK";
const VERSION: u8 = 1;
const KIND_PASSPHRASE: u8 = 1;
const KIND_KEY: u8 = 2;
const HEADER_LEN: usize = 8 + 1 + 1 + 16 + 4 + 8 + 4;

/// What protects a backup.
pub enum BackupSecret<'a> {
    /// A passphrase; the key is derived with PBKDF2-HMAC-SHA-256.
    Passphrase(&'a [u8]),
    /// A 32-byte AES-256 key supplied by the operator.
    Key(&'a [u8]),
}

impl std::fmt::Debug for BackupSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupSecret::Passphrase(_) => "Passphrase(..)",
            BackupSecret::Key(_) => "Key(..)",
        })
    }
}

/// Why a backup could not be made, read or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Not a Craton HSM backup, or a version this build does not read.
    #[error("not a Craton HSM backup (or an unsupported version)")]
    NotABackup,
    /// The secret is wrong, or the file was truncated or altered.
    #[error(
        "the backup does not authenticate: wrong passphrase or key, or the file is truncated or altered"
    )]
    Authentication,
    /// An operator key that is not 32 bytes, or an empty passphrase.
    #[error("the backup key must be 32 bytes and a passphrase must not be empty")]
    BadSecret,
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Cryptography failed.
    #[error(transparent)]
    Crypto(#[from] craton_core::CryptoError),
    /// The engine refuses to work (self-test failure, broken audit log).
    #[error(transparent)]
    Engine(Box<crate::HsmError>),
}

/// What [`inspect`] can tell without the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Whether a passphrase (rather than an operator key) protects it.
    pub passphrase: bool,
    /// When it was made (Unix seconds).
    pub created: u64,
    /// How many tokens it holds.
    pub tokens: u32,
    /// Total size in bytes.
    pub size: usize,
}

fn derive(
    secret: &BackupSecret<'_>,
    salt: &[u8; 16],
    iterations: u32,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    match secret {
        BackupSecret::Passphrase(p) if !p.is_empty() => Ok(craton_core::kdf::pbkdf2(
            HashAlg::Sha256,
            p,
            salt,
            iterations,
            32,
        )?),
        BackupSecret::Key(k) if k.len() == 32 => Ok(Zeroizing::new(k.to_vec())),
        _ => Err(BackupError::BadSecret),
    }
}

fn encode(snap: &Snapshot) -> Writer {
    let mut w = Writer::default();
    w.bytes(snap.record_key.expose()).u64(snap.next_object_id);
    w.u32(snap.tokens.len() as u32);
    for (slot, rec) in &snap.tokens {
        w.u64(*slot).bytes(rec);
    }
    w.u32(snap.objects.len() as u32);
    for (id, rec) in &snap.objects {
        w.u64(*id).bytes(rec);
    }
    w.u32(snap.gcm.len() as u32);
    for (id, n) in &snap.gcm {
        w.u64(*id).u64(*n);
    }
    w
}

fn decode(payload: &[u8]) -> Option<Snapshot> {
    let mut r = Reader::new(payload);
    let record_key = SecretBytes::new(r.bytes().ok()?);
    let next_object_id = r.u64().ok()?;
    let mut snap = Snapshot {
        record_key,
        next_object_id,
        tokens: Vec::new(),
        objects: Vec::new(),
        gcm: Vec::new(),
    };
    for _ in 0..r.u32().ok()? {
        snap.tokens.push((r.u64().ok()?, r.bytes().ok()?.to_vec()));
    }
    for _ in 0..r.u32().ok()? {
        snap.objects.push((r.u64().ok()?, r.bytes().ok()?.to_vec()));
    }
    for _ in 0..r.u32().ok()? {
        snap.gcm.push((r.u64().ok()?, r.u64().ok()?));
    }
    r.finish().ok()?;
    Some(snap)
}

fn gcm(iv: &[u8], aad: &[u8]) -> AesMode {
    AesMode::Gcm(GcmParams {
        iv: GcmIv::Given(iv.to_vec()),
        aad: aad.to_vec(),
        tag_bits: 128,
    })
}

impl Hsm {
    /// Makes an encrypted backup of the tokens in `slots` (all when `None`). A passphrase is
    /// stretched with `security.pbkdf2_iterations` (recorded in the backup).
    pub fn backup(
        &self,
        secret: &BackupSecret<'_>,
        slots: Option<&[u64]>,
    ) -> Result<Vec<u8>, BackupError> {
        self.check_module()
            .map_err(|e| BackupError::Engine(Box::new(e)))?;
        let snap = self.store.snapshot(slots)?;
        let out = seal(
            &snap,
            secret,
            &self.rng,
            self.config.security.pbkdf2_iterations,
        )?;
        self.emit(crate::event::Event::BackupCreated {
            tokens: snap.tokens.len(),
            objects: snap.objects.len(),
            passphrase: matches!(secret, BackupSecret::Passphrase(_)),
        })
        .map_err(|e| BackupError::Engine(Box::new(e)))?;
        Ok(out)
    }
}

fn seal(
    snap: &Snapshot,
    secret: &BackupSecret<'_>,
    rng: &Rng,
    iterations: u32,
) -> Result<Vec<u8>, BackupError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(craton_core::CryptoError::Rng)?;
    let key = derive(secret, &salt, iterations)?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.push(match secret {
        BackupSecret::Passphrase(_) => KIND_PASSPHRASE,
        BackupSecret::Key(_) => KIND_KEY,
    });
    out.extend_from_slice(&salt);
    out.extend_from_slice(&iterations.to_le_bytes());
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&(snap.tokens.len() as u32).to_le_bytes());
    let aad = out.clone();
    out.extend_from_slice(&nonce);
    let payload = encode(snap);
    out.extend(craton_core::aes::encrypt(
        &key,
        &gcm(&nonce, &aad),
        &payload.buf,
        rng,
    )?);
    Ok(out)
}

/// Reads a backup's header (no secret needed).
pub fn inspect(backup: &[u8]) -> Result<BackupInfo, BackupError> {
    if backup.len() < HEADER_LEN + 12 + 16 || &backup[..8] != MAGIC || backup[8] != VERSION {
        return Err(BackupError::NotABackup);
    }
    let mut r = Reader::new(&backup[10..HEADER_LEN]);
    let _salt: [u8; 16] = r.array().map_err(|_| BackupError::NotABackup)?;
    let _iterations = r.u32().map_err(|_| BackupError::NotABackup)?;
    let created = r.u64().map_err(|_| BackupError::NotABackup)?;
    let tokens = r.u32().map_err(|_| BackupError::NotABackup)?;
    Ok(BackupInfo {
        passphrase: backup[9] == KIND_PASSPHRASE,
        created,
        tokens,
        size: backup.len(),
    })
}

/// Restores a backup into `state_dir`, which must not already hold a store. The backup is
/// fully authenticated before anything is written; a failure leaves the directory as it was.
pub fn restore(
    backup: &[u8],
    secret: &BackupSecret<'_>,
    state_dir: &Path,
) -> Result<BackupInfo, BackupError> {
    let info = inspect(backup)?;
    let kind_matches = matches!(
        (backup[9], secret),
        (KIND_PASSPHRASE, BackupSecret::Passphrase(_)) | (KIND_KEY, BackupSecret::Key(_))
    );
    if !kind_matches {
        return Err(BackupError::Authentication);
    }
    let mut r = Reader::new(&backup[10..HEADER_LEN]);
    let salt: [u8; 16] = r.array().map_err(|_| BackupError::NotABackup)?;
    let iterations = r.u32().map_err(|_| BackupError::NotABackup)?;
    if iterations == 0 {
        return Err(BackupError::NotABackup);
    }
    let key = derive(secret, &salt, iterations)?;
    let aad = &backup[..HEADER_LEN];
    let nonce = &backup[HEADER_LEN..HEADER_LEN + 12];
    let rng = Arc::new(Rng::from_os().map_err(craton_core::CryptoError::Rng)?);
    let payload =
        craton_core::aes::decrypt(&key, &gcm(nonce, aad), &backup[HEADER_LEN + 12..], &rng)
            .map_err(|_| BackupError::Authentication)?;
    let snap = decode(&payload).ok_or(BackupError::Authentication)?;
    if snap.record_key.len() != 32 {
        return Err(BackupError::Authentication);
    }
    Store::create_from_snapshot(state_dir, &snap, info.created, rng)?;
    Ok(info)
}
