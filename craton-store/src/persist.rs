//! The token store on disk: one redb file, `state.redb`, in a 0700 state directory.
//!
//! Every record is sealed with AES-256-GCM, its table, id and format version in the
//! associated data, so a flipped bit, a record moved to another id, or a private record
//! relabelled as public is reported, never returned as data. Private objects and the secret
//! parts of keys are sealed under the token's master key, which exists on disk only wrapped by
//! PIN-derived keys; token records and public objects are sealed under the store's record key,
//! kept beside them, which detects damage but (like any unkeyed check) not a deliberate
//! rewrite by someone who can write the file. `docs/store-format.md` has the byte layout and
//! the durability promise.
//!
//! Every change is one redb write transaction with two-phase commit. A `state.lock` file
//! holds an exclusive lock and the holder's process id for as long as the store is open.

use crate::codec::{Malformed, Reader, Writer, read_attributes, write_attributes};
use craton_core::Direction;
use craton_core::aes::{AesContext, AesMode, GcmIv, GcmParams};
use craton_core::attribute::{AttrValue, AttributeType, Attributes};
use craton_core::rng::Rng;
use craton_core::secret::SecretBytes;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The on-disk format version this build writes.
pub const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<'static, &'static str, &'static [u8]> = TableDefinition::new("meta");
const TOKENS: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("tokens");
const OBJECTS: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("objects");
/// AES-GCM invocations reserved per token key (an upper bound of those used).
const GCM_COUNTS: TableDefinition<'static, u64, u64> = TableDefinition::new("gcm_invocations");

const KIND_RECORD_KEY: u8 = 0;
const KIND_MASTER_KEY: u8 = 1;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A path has group or other permission bits, or belongs to someone else.
    #[error("{path} has mode {mode:04o}; it must be {expected:04o} and owned by uid {uid}")]
    Permissions {
        /// The offending path.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// The mode required.
        expected: u32,
        /// The uid that must own it (the current effective uid).
        uid: u32,
    },
    /// Another process (or another `Hsm` in this one) has the store open.
    #[error("store {path} is in use by {holder}")]
    Locked {
        /// The state directory.
        path: PathBuf,
        /// Who holds it, as far as the lock file says.
        holder: String,
    },
    /// An I/O failure (disk full, read-only file system, …).
    #[error("store {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// redb refused (its message is kept; it never contains record contents).
    #[error("store {path}: database error: {message}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// redb's message.
        message: String,
    },
    /// A record failed authentication or did not decode.
    #[error("store {path}: record {table}/{id} is corrupt ({why})")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The record id.
        id: u64,
        /// What failed.
        why: &'static str,
    },
    /// The file was written by a newer format.
    #[error("store {path} has format version {found}; this build reads up to {FORMAT_VERSION}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The operation needs the token's master key (a user or SO login).
    #[error("the token's master key is not available (not logged in)")]
    MasterKeyUnavailable,
    /// The random generator failed.
    #[error("random generator failure")]
    Rng,
}

/// A PIN-derived wrapping of the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct PinWrap {
    /// PBKDF2 salt.
    pub salt: [u8; 16],
    /// PBKDF2-HMAC-SHA-256 iterations used for this wrap.
    pub iterations: u32,
    /// GCM nonce.
    pub nonce: [u8; 12],
    /// The sealed master key (32 bytes + 16-byte tag).
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for PinWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinWrap")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The persistent state of one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The 32-byte label (blank padded).
    pub label: [u8; 32],
    /// Master key wrapped under the SO PIN (present once initialised).
    pub so_wrap: Option<PinWrap>,
    /// Master key wrapped under the user PIN (present once `C_InitPIN` ran).
    pub user_wrap: Option<PinWrap>,
    /// Consecutive failed SO logins.
    pub so_failures: u32,
    /// Consecutive failed user logins.
    pub user_failures: u32,
    /// Bumped by every `C_InitToken`, so the serial of a re-initialised token changes.
    pub generation: u64,
}

impl Default for TokenRecord {
    /// A token never initialised: a blank label (PKCS#11 pads labels with spaces; an
    /// all-zero label reached `C_GetTokenInfo` as NUL bytes), no PINs.
    fn default() -> Self {
        TokenRecord {
            label: [b' '; 32],
            so_wrap: None,
            user_wrap: None,
            so_failures: 0,
            user_failures: 0,
            generation: 0,
        }
    }
}

fn write_wrap(w: &mut Writer, wrap: &Option<PinWrap>) {
    match wrap {
        None => {
            w.u8(0);
        }
        Some(p) => {
            w.u8(1);
            w.buf.extend_from_slice(&p.salt);
            w.u32(p.iterations);
            w.buf.extend_from_slice(&p.nonce);
            w.bytes(&p.sealed);
        }
    }
}

fn read_wrap(r: &mut Reader<'_>) -> Result<Option<PinWrap>, Malformed> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(PinWrap {
            salt: r.array()?,
            iterations: r.u32()?,
            nonce: r.array()?,
            sealed: r.bytes()?.to_vec(),
        }),
        _ => return Err(Malformed("wrap flag")),
    })
}

impl TokenRecord {
    /// Whether `C_InitToken` has run.
    pub fn initialized(&self) -> bool {
        self.so_wrap.is_some()
    }

    fn encode(&self) -> Writer {
        let mut w = Writer::default();
        w.buf.extend_from_slice(&self.label);
        write_wrap(&mut w, &self.so_wrap);
        write_wrap(&mut w, &self.user_wrap);
        w.u32(self.so_failures)
            .u32(self.user_failures)
            .u64(self.generation);
        w
    }

    fn decode(data: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(data);
        let t = TokenRecord {
            label: r.array()?,
            so_wrap: read_wrap(&mut r)?,
            user_wrap: read_wrap(&mut r)?,
            so_failures: r.u32()?,
            user_failures: r.u32()?,
            generation: r.u64()?,
        };
        r.finish()?;
        Ok(t)
    }
}

/// An object as stored: its id, slot, and the attributes that could be opened.
#[derive(Debug)]
pub struct StoredObject {
    /// The object id (also its handle).
    pub id: u64,
    /// The slot its token is in.
    pub slot: u64,
    /// The attributes opened with the keys at hand.
    pub attrs: Attributes,
    /// Whether a part sealed under the master key was left closed (no master key given).
    pub secret_closed: bool,
}

/// Records copied out of a store for a backup, still sealed as stored.
pub struct Snapshot {
    /// The record key of the store they came from (it opens their public parts).
    pub record_key: SecretBytes,
    /// The next object id, so restored ids are never reused.
    pub next_object_id: u64,
    /// (slot, sealed token record).
    pub tokens: Vec<(u64, Vec<u8>)>,
    /// (object id, object record).
    pub objects: Vec<(u64, Vec<u8>)>,
    /// (object id, reserved GCM invocations).
    pub gcm: Vec<(u64, u64)>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("tokens", &self.tokens.len())
            .field("objects", &self.objects.len())
            .finish_non_exhaustive()
    }
}

/// The objects of a token as loaded, and the records that could not be opened.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The objects that opened and decoded.
    pub objects: Vec<StoredObject>,
    /// One `StoreError::Corrupt` per record that failed authentication or decoding.
    pub corrupt: Vec<StoreError>,
}

/// Whether `attrs` describe an object that is private (`CKA_PRIVATE` true).
pub fn is_private(attrs: &Attributes) -> bool {
    matches!(
        attrs.get(&AttributeType::PRIVATE),
        Some(AttrValue::Bool(true))
    )
}

/// Whether the attribute is secret material of a key object: sealed under the master key
/// even when the object itself is public.
pub fn is_secret_part(attrs: &Attributes, a: AttributeType) -> bool {
    let class = match attrs.get(&AttributeType::CLASS) {
        Some(AttrValue::Ulong(c)) => *c,
        _ => return false,
    };
    let key_with_secret = class == craton_core::attribute::ObjectClass::PRIVATE_KEY.0
        || class == craton_core::attribute::ObjectClass::SECRET_KEY.0;
    key_with_secret && (a == AttributeType::VALUE || a.is_secret_component())
}

/// The database handle. redb commits its allocator state when the handle drops and, on a
/// damaged file, can panic doing so; the drop here contains that panic.
struct Db(Option<redb::Database>);

impl std::ops::Deref for Db {
    type Target = redb::Database;
    fn deref(&self) -> &redb::Database {
        // Invariant: the option is `Some` from construction until `drop` takes it.
        #[allow(clippy::expect_used)]
        self.0.as_ref().expect("database handle used after drop")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(db)));
        }
    }
}

/// The open store.
pub struct Store {
    db: Db,
    path: PathBuf,
    record_key: SecretBytes,
    rng: Arc<Rng>,
    // Held for the lifetime of the store: dropping the file releases the lock.
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check_mode(path: &Path, meta: &std::fs::Metadata, expected: u32) -> Result<(), StoreError> {
    let uid = rustix::process::geteuid().as_raw();
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 || meta.uid() != uid {
        return Err(StoreError::Permissions {
            path: path.to_owned(),
            mode,
            expected,
            uid,
        });
    }
    Ok(())
}

/// Opens (creating 0600) a file of the store for reading and writing, and refuses it if
/// anyone else could read it or it belongs to another user.
fn open_private(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    check_mode(path, &file.metadata().map_err(io(path))?, 0o600)?;
    Ok(file)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`. The directory is created 0700 and the
    /// files 0600; an existing directory or file that others can read, or that another user
    /// owns, is refused with its path and mode.
    pub fn open(dir: &Path, rng: Arc<Rng>) -> Result<Store, StoreError> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(dir))?;
        }
        check_mode(dir, &std::fs::metadata(dir).map_err(io(dir))?, 0o700)?;
        let lock = Self::lock(dir)?;
        let path = dir.join("state.redb");
        let file = open_private(&path)?;
        // redb 3.1 asserts (panics) on some damaged headers instead of returning an error;
        // a damaged file must be a clear error here, never a panic.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            redb::Builder::new().create_file(file)
        }))
        .map_err(|_| StoreError::Corrupt {
            path: path.clone(),
            table: "header",
            id: 0,
            why: "the database header is damaged",
        })?;
        let db = opened.map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                path: dir.to_owned(),
                holder: "another handle in this process".into(),
            },
            other => StoreError::Database {
                path: path.clone(),
                message: other.to_string(),
            },
        })?;
        let mut store = Store {
            db: Db(Some(db)),
            path,
            record_key: SecretBytes::new(&[]),
            rng,
            _lock: lock,
        };
        store.record_key = store.shielded(|| store.init_meta())?;
        Ok(store)
    }

    /// Takes `state.lock` exclusively and records our pid in it.
    fn lock(dir: &Path) -> Result<File, StoreError> {
        let path = dir.join("state.lock");
        let mut file = open_private(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .map_or_else(|| "another process".to_owned(), |p| format!("process {p}"));
                return Err(StoreError::Locked {
                    path: dir.to_owned(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0).map_err(io(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(file)
    }

    fn db_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, table: &'static str, id: u64, why: &'static str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            id,
            why,
        }
    }

    fn write_txn(&self) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.db_err(e))?;
        // redb's own page checksums are not cryptographic; two-phase commit makes a torn
        // commit impossible to mistake for a valid one.
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    fn init_meta(&self) -> Result<SecretBytes, StoreError> {
        let txn = self.write_txn()?;
        let key = {
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            let version = meta
                .get("format")
                .map_err(|e| self.db_err(e))?
                .map(|v| v.value().to_vec());
            match version {
                Some(v) => {
                    let found = v
                        .as_slice()
                        .try_into()
                        .map(u32::from_le_bytes)
                        .map_err(|_| self.corrupt("meta", 0, "format version"))?;
                    if found > FORMAT_VERSION {
                        return Err(StoreError::TooNew {
                            path: self.path.clone(),
                            found,
                        });
                    }
                    let key = meta
                        .get("record_key")
                        .map_err(|e| self.db_err(e))?
                        .map(|v| SecretBytes::new(v.value()))
                        .ok_or_else(|| self.corrupt("meta", 0, "record key missing"))?;
                    if key.len() != 32 {
                        return Err(self.corrupt("meta", 0, "record key length"));
                    }
                    key
                }
                None => {
                    let key = SecretBytes::generate(32, |b| self.rng.fill(b))
                        .map_err(|_| StoreError::Rng)?;
                    meta.insert("format", &FORMAT_VERSION.to_le_bytes()[..])
                        .map_err(|e| self.db_err(e))?;
                    meta.insert("record_key", key.expose())
                        .map_err(|e| self.db_err(e))?;
                    meta.insert("next_object_id", &1u64.to_le_bytes()[..])
                        .map_err(|e| self.db_err(e))?;
                    key
                }
            }
        };
        txn.open_table(TOKENS).map_err(|e| self.db_err(e))?;
        txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok(key)
    }

    /// The installation's audit signing key (an Ed25519 seed), created on first use. It is
    /// kept in `meta` like the record key: the service must sign seals without any PIN, so
    /// file permissions are what protect it.
    pub fn audit_key_seed(&self) -> Result<SecretBytes, StoreError> {
        self.shielded(|| {
            let txn = self.write_txn()?;
            let seed = {
                let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
                let existing = meta
                    .get("audit_key")
                    .map_err(|e| self.db_err(e))?
                    .map(|v| SecretBytes::new(v.value()));
                match existing {
                    Some(s) if s.len() == 32 => s,
                    Some(_) => return Err(self.corrupt("meta", 0, "audit key length")),
                    None => {
                        let s = SecretBytes::generate(32, |b| self.rng.fill(b))
                            .map_err(|_| StoreError::Rng)?;
                        meta.insert("audit_key", s.expose())
                            .map_err(|e| self.db_err(e))?;
                        s
                    }
                }
            };
            txn.commit().map_err(|e| self.db_err(e))?;
            Ok(seed)
        })
    }

    /// How many AES-GCM invocations have been reserved for token key `id` (0 if none).
    pub fn gcm_reserved(&self, id: u64) -> Result<u64, StoreError> {
        self.shielded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let table = match txn.open_table(GCM_COUNTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(self.db_err(e)),
            };
            Ok(table
                .get(id)
                .map_err(|e| self.db_err(e))?
                .map_or(0, |v| v.value()))
        })
    }

    /// Raises the reservation for token key `id` to `upto` invocations. Counts only grow: a
    /// crash can waste part of a reservation, never reuse an invocation.
    pub fn reserve_gcm(&self, id: u64, upto: u64) -> Result<(), StoreError> {
        self.shielded(|| {
            let txn = self.write_txn()?;
            {
                let mut t = txn.open_table(GCM_COUNTS).map_err(|e| self.db_err(e))?;
                let current = t
                    .get(id)
                    .map_err(|e| self.db_err(e))?
                    .map_or(0, |v| v.value());
                t.insert(id, upto.max(current))
                    .map_err(|e| self.db_err(e))?;
            }
            txn.commit().map_err(|e| self.db_err(e))
        })
    }

    /// Every record of the chosen slots exactly as stored (still sealed), with the record key
    /// that opens their public parts: the payload of a backup.
    pub fn snapshot(&self, slots: Option<&[u64]>) -> Result<Snapshot, StoreError> {
        self.shielded(|| {
            let wanted = |slot: u64| slots.is_none_or(|s| s.contains(&slot));
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            let next_object_id = meta
                .get("next_object_id")
                .map_err(|e| self.db_err(e))?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .ok_or_else(|| self.corrupt("meta", 0, "object counter"))?;
            let mut snap = Snapshot {
                record_key: self.record_key.clone(),
                next_object_id,
                tokens: Vec::new(),
                objects: Vec::new(),
                gcm: Vec::new(),
            };
            let tokens = txn.open_table(TOKENS).map_err(|e| self.db_err(e))?;
            for item in tokens.iter().map_err(|e| self.db_err(e))? {
                let (k, v) = item.map_err(|e| self.db_err(e))?;
                if wanted(k.value()) {
                    snap.tokens.push((k.value(), v.value().to_vec()));
                }
            }
            let objects = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
            for item in objects.iter().map_err(|e| self.db_err(e))? {
                let (k, v) = item.map_err(|e| self.db_err(e))?;
                let slot = Reader::new(v.value())
                    .u64()
                    .map_err(|m| self.corrupt("objects", k.value(), m.0))?;
                if wanted(slot) {
                    snap.objects.push((k.value(), v.value().to_vec()));
                }
            }
            if let Ok(gcm) = txn.open_table(GCM_COUNTS) {
                for item in gcm.iter().map_err(|e| self.db_err(e))? {
                    let (k, v) = item.map_err(|e| self.db_err(e))?;
                    if snap.objects.iter().any(|(id, _)| *id == k.value()) {
                        snap.gcm.push((k.value(), v.value()));
                    }
                }
            }
            Ok(snap)
        })
    }

    /// Creates a new store in `dir` (which must not hold one) with exactly the records of
    /// `snap`, in one transaction. On any error the new file is removed.
    pub fn create_from_snapshot(
        dir: &Path,
        snap: &Snapshot,
        created: u64,
        rng: Arc<Rng>,
    ) -> Result<(), StoreError> {
        let path = dir.join("state.redb");
        if path.exists() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "restore needs an empty state directory",
                ),
            });
        }
        let store = Store::open(dir, rng)?;
        let result = store.shielded(|| {
            let txn = store.write_txn()?;
            {
                let mut meta = txn.open_table(META).map_err(|e| store.db_err(e))?;
                meta.insert("record_key", snap.record_key.expose())
                    .map_err(|e| store.db_err(e))?;
                meta.insert("next_object_id", &snap.next_object_id.to_le_bytes()[..])
                    .map_err(|e| store.db_err(e))?;
                meta.insert("restored_from", &created.to_le_bytes()[..])
                    .map_err(|e| store.db_err(e))?;
                let mut tokens = txn.open_table(TOKENS).map_err(|e| store.db_err(e))?;
                for (slot, record) in &snap.tokens {
                    tokens
                        .insert(*slot, &record[..])
                        .map_err(|e| store.db_err(e))?;
                }
                let mut objects = txn.open_table(OBJECTS).map_err(|e| store.db_err(e))?;
                for (id, record) in &snap.objects {
                    objects
                        .insert(*id, &record[..])
                        .map_err(|e| store.db_err(e))?;
                }
                let mut gcm = txn.open_table(GCM_COUNTS).map_err(|e| store.db_err(e))?;
                for (id, n) in &snap.gcm {
                    gcm.insert(*id, *n).map_err(|e| store.db_err(e))?;
                }
            }
            txn.commit().map_err(|e| store.db_err(e))
        });
        drop(store);
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(dir.join("state.lock"));
        }
        result
    }

    /// If this store was restored from a backup and has not reported it yet: the backup's
    /// creation time. The marker is removed.
    pub fn take_restored_marker(&self) -> Result<Option<u64>, StoreError> {
        self.shielded(|| {
            let txn = self.write_txn()?;
            let created = {
                let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
                meta.remove("restored_from")
                    .map_err(|e| self.db_err(e))?
                    .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
            };
            if created.is_some() {
                txn.commit().map_err(|e| self.db_err(e))?;
            } else {
                txn.abort().map_err(|e| self.db_err(e))?;
            }
            Ok(created)
        })
    }

    /// The audit chain head recorded at the last clean shutdown: (sequence, hash).
    pub fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.shielded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            let Some(v) = meta.get("audit_head").map_err(|e| self.db_err(e))? else {
                return Ok(None);
            };
            let v = v.value();
            if v.len() != 40 {
                return Err(self.corrupt("meta", 0, "audit head length"));
            }
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&v[..8]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&v[8..]);
            Ok(Some((u64::from_le_bytes(seq), hash)))
        })
    }

    /// Records the audit chain head.
    pub fn put_audit_head(&self, seq: u64, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.shielded(|| {
            let mut v = seq.to_le_bytes().to_vec();
            v.extend_from_slice(hash);
            let txn = self.write_txn()?;
            {
                let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
                meta.insert("audit_head", &v[..])
                    .map_err(|e| self.db_err(e))?;
            }
            txn.commit().map_err(|e| self.db_err(e))
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read of the database, turning a panic inside redb (it asserts on some damaged
    /// pages instead of returning an error) into a `Corrupt` error naming the file.
    fn shielded<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                table: "pages",
                id: 0,
                why: "the database file is damaged",
            })
        })
    }

    /// Every token record, by slot.
    pub fn tokens(&self) -> Result<Vec<(u64, TokenRecord)>, StoreError> {
        self.shielded(|| self.tokens_inner())
    }

    fn tokens_inner(&self) -> Result<Vec<(u64, TokenRecord)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let table = txn.open_table(TOKENS).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            let slot = k.value();
            let plain = self.open_sealed("tokens", "tokens", slot, v.value(), None)?;
            let record =
                TokenRecord::decode(&plain).map_err(|m| self.corrupt("tokens", slot, m.0))?;
            out.push((slot, record));
        }
        Ok(out)
    }

    /// Writes a token record.
    pub fn put_token(&self, slot: u64, record: &TokenRecord) -> Result<(), StoreError> {
        self.shielded(|| self.put_token_inner(slot, record))
    }

    fn put_token_inner(&self, slot: u64, record: &TokenRecord) -> Result<(), StoreError> {
        let sealed = self.seal_with("tokens", slot, &record.encode().buf, None)?;
        let txn = self.write_txn()?;
        {
            let mut t = txn.open_table(TOKENS).map_err(|e| self.db_err(e))?;
            t.insert(slot, &sealed[..]).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))
    }

    /// Re-initialises a token: removes every object of `slot` and writes its new record, in
    /// one transaction (either the old token survives whole, or the new one replaces it).
    pub fn reinit_token(&self, slot: u64, record: &TokenRecord) -> Result<(), StoreError> {
        self.shielded(|| self.reinit_token_inner(slot, record))
    }

    fn reinit_token_inner(&self, slot: u64, record: &TokenRecord) -> Result<(), StoreError> {
        let sealed = self.seal_with("tokens", slot, &record.encode().buf, None)?;
        let doomed = self.object_ids(slot)?;
        let txn = self.write_txn()?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
            for id in doomed {
                objects.remove(id).map_err(|e| self.db_err(e))?;
            }
            let mut t = txn.open_table(TOKENS).map_err(|e| self.db_err(e))?;
            t.insert(slot, &sealed[..]).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))
    }

    fn object_ids(&self, slot: u64) -> Result<Vec<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let table = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
        let mut ids = Vec::new();
        for item in table.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            // The slot is the record's first, unsealed field (it is in the AAD too).
            let mut r = Reader::new(v.value());
            if r.u64().ok() == Some(slot) {
                ids.push(k.value());
            }
        }
        Ok(ids)
    }

    /// Creates a token object and returns its id (allocation and write are one transaction).
    pub fn create_object(
        &self,
        slot: u64,
        attrs: &Attributes,
        master: Option<&SecretBytes>,
    ) -> Result<u64, StoreError> {
        self.shielded(|| self.create_object_inner(slot, attrs, master))
    }

    fn create_object_inner(
        &self,
        slot: u64,
        attrs: &Attributes,
        master: Option<&SecretBytes>,
    ) -> Result<u64, StoreError> {
        let txn = self.write_txn()?;
        let id = {
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            let id = meta
                .get("next_object_id")
                .map_err(|e| self.db_err(e))?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .ok_or_else(|| self.corrupt("meta", 0, "object counter"))?;
            meta.insert("next_object_id", &(id + 1).to_le_bytes()[..])
                .map_err(|e| self.db_err(e))?;
            id
        };
        let record = self.encode_object(slot, id, attrs, master)?;
        {
            let mut t = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
            t.insert(id, &record[..]).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok(id)
    }

    /// Replaces the attributes of an existing token object.
    pub fn update_object(
        &self,
        slot: u64,
        id: u64,
        attrs: &Attributes,
        master: Option<&SecretBytes>,
    ) -> Result<(), StoreError> {
        self.shielded(|| self.update_object_inner(slot, id, attrs, master))
    }

    fn update_object_inner(
        &self,
        slot: u64,
        id: u64,
        attrs: &Attributes,
        master: Option<&SecretBytes>,
    ) -> Result<(), StoreError> {
        let record = self.encode_object(slot, id, attrs, master)?;
        let txn = self.write_txn()?;
        {
            let mut t = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
            t.insert(id, &record[..]).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))
    }

    /// Deletes a token object.
    pub fn destroy_object(&self, id: u64) -> Result<(), StoreError> {
        self.shielded(|| self.destroy_object_inner(id))
    }

    fn destroy_object_inner(&self, id: u64) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        {
            let mut t = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
            t.remove(id).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))
    }

    /// Record layout: slot (u64, clear) ‖ public part (sealed under the record key, or empty)
    /// ‖ secret part (sealed under the master key, or empty).
    fn encode_object(
        &self,
        slot: u64,
        id: u64,
        attrs: &Attributes,
        master: Option<&SecretBytes>,
    ) -> Result<Vec<u8>, StoreError> {
        let (public, secret): (Attributes, Attributes) = if is_private(attrs) {
            (Attributes::new(), attrs.clone())
        } else {
            attrs
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .partition(|(k, _)| !is_secret_part(attrs, *k))
        };
        let mut out = Writer::default();
        out.u64(slot);
        let aad_slot = |part: &str| format!("{part}:{slot}");
        if public.is_empty() {
            out.bytes(&[]);
        } else {
            let mut w = Writer::default();
            write_attributes(&mut w, &public);
            out.bytes(&self.seal_with(&aad_slot("public"), id, &w.buf, None)?);
        }
        if secret.is_empty() {
            out.bytes(&[]);
        } else {
            let master = master.ok_or(StoreError::MasterKeyUnavailable)?;
            let mut w = Writer::default();
            write_attributes(&mut w, &secret);
            out.bytes(&self.seal_with(&aad_slot("secret"), id, &w.buf, Some(master))?);
        }
        Ok(out.buf.to_vec())
    }

    /// Every object of `slot`, with the parts the keys at hand open. Without `master`, private
    /// objects are skipped and the secret parts of public key objects stay closed. A record
    /// that fails authentication or decoding is reported in [`Loaded::corrupt`] and left out;
    /// the others load normally.
    pub fn objects(&self, slot: u64, master: Option<&SecretBytes>) -> Result<Loaded, StoreError> {
        self.shielded(|| self.objects_inner(slot, master))
    }

    fn objects_inner(&self, slot: u64, master: Option<&SecretBytes>) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let table = txn.open_table(OBJECTS).map_err(|e| self.db_err(e))?;
        let mut loaded = Loaded::default();
        for item in table.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            match self.decode_object(slot, k.value(), v.value(), master) {
                Ok(Some(o)) => loaded.objects.push(o),
                Ok(None) => {}
                Err(e @ StoreError::Corrupt { .. }) => loaded.corrupt.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok(loaded)
    }

    fn decode_object(
        &self,
        slot: u64,
        id: u64,
        record: &[u8],
        master: Option<&SecretBytes>,
    ) -> Result<Option<StoredObject>, StoreError> {
        let mut r = Reader::new(record);
        let bad = |m: Malformed| self.corrupt("objects", id, m.0);
        let record_slot = r.u64().map_err(bad)?;
        if record_slot != slot {
            return Ok(None);
        }
        let public = r.bytes().map_err(bad)?;
        let secret = r.bytes().map_err(bad)?;
        r.finish().map_err(bad)?;
        let mut attrs = Attributes::new();
        if !public.is_empty() {
            let plain = self.open_sealed("objects", &format!("public:{slot}"), id, public, None)?;
            let mut r = Reader::new(&plain);
            attrs = read_attributes(&mut r).map_err(bad)?;
            r.finish().map_err(bad)?;
        }
        let mut secret_closed = false;
        if !secret.is_empty() {
            match master {
                Some(m) => {
                    let plain = self.open_sealed(
                        "objects",
                        &format!("secret:{slot}"),
                        id,
                        secret,
                        Some(m),
                    )?;
                    let mut r = Reader::new(&plain);
                    let s = read_attributes(&mut r).map_err(bad)?;
                    r.finish().map_err(bad)?;
                    attrs.extend(s);
                }
                None if public.is_empty() => return Ok(None),
                None => secret_closed = true,
            }
        }
        if attrs.is_empty() {
            return Err(self.corrupt("objects", id, "empty record"));
        }
        Ok(Some(StoredObject {
            id,
            slot,
            attrs,
            secret_closed,
        }))
    }

    /// Sealed layout: version (u8) ‖ key kind (u8) ‖ nonce (12) ‖ ciphertext ‖ tag (16).
    /// AAD: "craton-hsm record" ‖ version ‖ kind ‖ context ‖ id.
    fn seal_with(
        &self,
        context: &str,
        id: u64,
        plain: &[u8],
        master: Option<&SecretBytes>,
    ) -> Result<Vec<u8>, StoreError> {
        let (kind, key) = match master {
            Some(m) => (KIND_MASTER_KEY, m),
            None => (KIND_RECORD_KEY, &self.record_key),
        };
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Rng)?;
        let mode = AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(nonce.to_vec()),
            aad: aad(kind, context, id),
            tag_bits: 128,
        });
        let ct = craton_core::aes::encrypt(key.expose(), &mode, plain, &self.rng)
            .map_err(|_| StoreError::Rng)?;
        let mut out = Vec::with_capacity(2 + 12 + ct.len());
        out.push(FORMAT_VERSION as u8);
        out.push(kind);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a record sealed by [`Store::seal_with`]; failures name `table` and `id`.
    fn open_sealed(
        &self,
        table: &'static str,
        context: &str,
        id: u64,
        sealed: &[u8],
        master: Option<&SecretBytes>,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let corrupt = |why| self.corrupt(table, id, why);
        if sealed.len() < 2 + 12 + 16 {
            return Err(corrupt("record too short"));
        }
        let (version, kind) = (sealed[0], sealed[1]);
        if u32::from(version) != FORMAT_VERSION {
            return Err(corrupt("unknown record version"));
        }
        let key = match (kind, master) {
            (KIND_RECORD_KEY, _) => &self.record_key,
            (KIND_MASTER_KEY, Some(m)) => m,
            (KIND_MASTER_KEY, None) => return Err(StoreError::MasterKeyUnavailable),
            _ => return Err(corrupt("unknown key kind")),
        };
        let mode = AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(sealed[2..14].to_vec()),
            aad: aad(kind, context, id),
            tag_bits: 128,
        });
        let mut ctx = AesContext::new(key.expose(), &mode, Direction::Decrypt, &self.rng)
            .map_err(|_| corrupt("bad record key"))?;
        let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
        ctx.update(&sealed[14..], &mut out)
            .map_err(|_| corrupt("authentication failed"))?;
        ctx.finish(&mut out)
            .map_err(|_| corrupt("authentication failed"))?;
        Ok(out)
    }
}

fn aad(kind: u8, context: &str, id: u64) -> Vec<u8> {
    let mut a = b"craton-hsm record".to_vec();
    a.push(FORMAT_VERSION as u8);
    a.push(kind);
    a.extend_from_slice(context.as_bytes());
    a.push(0);
    a.extend_from_slice(&id.to_be_bytes());
    a
}
