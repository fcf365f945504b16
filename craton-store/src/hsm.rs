//! [`Hsm`]: slots → tokens → sessions → objects, with PKCS#11's login and session rules.
//!
//! Locking: each token has its own `RwLock` (login state, objects); sessions live in a
//! sharded map, each with its own `Mutex` for its operation contexts. The cryptographic work
//! of an operation runs with no lock held: a sign call locks its session, takes the context
//! out, and clones the key's `Arc` — a hundred threads signing with one key share it without
//! waiting on each other. PIN derivation (PBKDF2) also runs outside the token lock.

use crate::config::Config;
use crate::error::{HsmError, Result};
use crate::event::{Event, EventSink, NoEvents, UserType};
use crate::objects::Object;
use crate::operations::SessionOps;
use crate::persist::{PinWrap, Store, TokenRecord};
use craton_core::aes::{AesMode, GcmIv, GcmParams};
use craton_core::digest::HashAlg;
use craton_core::post::ModuleState;
use craton_core::rng::Rng;
use craton_core::secret::SecretBytes;
use craton_core::{Direction, Registry};
use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes handles (u64s this engine assigns, never chosen by callers) with one multiply:
/// SipHash's flooding resistance buys nothing here and costs on every operation.
#[derive(Default)]
pub(crate) struct HandleHasher(u64);

impl Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing: spreads sequential handles over the table's high bits.
        self.0 = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by handles.
pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<HandleHasher>>;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A session handle (never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(pub u64);

/// An object handle (never 0). Token objects keep theirs across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectHandle(pub u64);

/// The PKCS#11 session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// `CKS_RO_PUBLIC_SESSION`.
    RoPublic,
    /// `CKS_RW_PUBLIC_SESSION`.
    RwPublic,
    /// `CKS_RO_USER_FUNCTIONS`.
    RoUser,
    /// `CKS_RW_USER_FUNCTIONS`.
    RwUser,
    /// `CKS_RW_SO_FUNCTIONS`.
    RwSo,
}

/// What `C_GetSessionInfo` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// The slot.
    pub slot: u64,
    /// The state.
    pub state: SessionState,
    /// Whether the session is read/write.
    pub read_write: bool,
}

/// The state of one PIN as `C_GetTokenInfo` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinStatus {
    /// Consecutive failures.
    pub failures: u32,
    /// At least one failure since the last success (`CKF_*_PIN_COUNT_LOW`).
    pub count_low: bool,
    /// One more failure locks (`CKF_*_PIN_FINAL_TRY`).
    pub final_try: bool,
    /// Locked (`CKF_*_PIN_LOCKED`).
    pub locked: bool,
}

/// What `C_GetTokenInfo` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// 32-byte blank-padded label.
    pub label: [u8; 32],
    /// 16-character serial number (changes on every `C_InitToken`).
    pub serial: [u8; 16],
    /// `CKF_TOKEN_INITIALIZED`.
    pub initialized: bool,
    /// `CKF_USER_PIN_INITIALIZED`.
    pub user_pin_initialized: bool,
    /// The user PIN's state.
    pub user_pin: PinStatus,
    /// The SO PIN's state.
    pub so_pin: PinStatus,
    /// Open sessions.
    pub sessions: u64,
    /// Open read/write sessions.
    pub rw_sessions: u64,
    /// Shortest PIN.
    pub min_pin_len: usize,
    /// Longest PIN.
    pub max_pin_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    None,
    User,
    So,
}

pub(crate) struct Token {
    pub(crate) slot: u64,
    pub(crate) record: TokenRecord,
    /// Who is logged in, per application: PKCS#11 login state belongs to the application,
    /// across its sessions, so one daemon client's login never serves another.
    pub(crate) logins: HashMap<Application, Login>,
    /// The master key, while any application is logged in.
    pub(crate) master: Option<SecretBytes>,
    pub(crate) objects: HashMap<u64, Arc<Object>>,
    /// Open sessions: handle → (read/write, application).
    pub(crate) sessions: HashMap<u64, (bool, Application)>,
}

impl Token {
    /// How `app` is logged in.
    pub(crate) fn login_of(&self, app: Application) -> Login {
        self.logins.get(&app).copied().unwrap_or(Login::None)
    }

    fn has_ro_session(&self, app: Application) -> bool {
        self.sessions.values().any(|(rw, a)| !rw && *a == app)
    }

    fn user_logged_in(&self) -> bool {
        self.logins.values().any(|l| *l == Login::User)
    }
}

pub(crate) struct Session {
    pub(crate) handle: u64,
    pub(crate) app: Application,
    pub(crate) slot: usize,
    pub(crate) read_write: bool,
    /// The running operations and the keys the session used lately, under one lock: an
    /// operation's start finds its key and installs its context in one critical section.
    pub(crate) ops: Mutex<SessionOps>,
}

/// The application a session belongs to. PKCS#11 shares a session object among every
/// session of the application that created it (Java's SunPKCS11, for one, creates a key in one
/// pooled session and uses it in another) and hides it from every other application. A
/// process that loads the module is one application; the daemon gives each client identity
/// its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Application(pub u64);

const SHARDS: usize = 32;

/// An atomic on cache lines of its own: a token's write generation (every operation reads
/// it), or a counter every new session or session object takes a number from (next to fields
/// every operation reads, each increment would evict them from the other cores).
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded(pub(crate) AtomicU64);

/// One shard of the session table, on cache lines of its own: neighbouring shards serve
/// different threads, and sharing a line would make their read locks contend anyway.
#[repr(align(128))]
struct SessionShard(RwLock<HashMap<u64, Arc<Session>>>);

/// The engine. Cheap to share: wrap it in an `Arc` and call it from any thread.
pub struct Hsm {
    pub(crate) config: Config,
    pub(crate) module: ModuleState,
    pub(crate) rng: Arc<Rng>,
    pub(crate) registry: Registry,
    pub(crate) store: Store,
    pub(crate) tokens: Vec<RwLock<Token>>,
    /// Per token, bumped whenever its state is written: tells sessions their cached keys are
    /// stale without anyone taking the token's lock.
    pub(crate) generations: Vec<Padded>,
    sessions: [SessionShard; SHARDS],
    next_session: Padded,
    pub(crate) next_session_object: Padded,
    pub(crate) events: Arc<dyn EventSink>,
    /// No audit log and a sink that drops every event: events are not recorded, and those
    /// of operations not even built.
    pub(crate) silent: bool,
    pub(crate) saved_states: Mutex<crate::operations::SavedStates>,
    audit: Option<Arc<crate::audit::AuditLog>>,
}

impl Drop for Hsm {
    fn drop(&mut self) {
        // Seal the audit chain and remember its head, so a later open can tell a log cut back
        // to an earlier seal from one that simply ended.
        if let Some(a) = &self.audit
            && a.seal().is_ok()
            && let Some((seq, hash)) = a.head()
        {
            let _ = self.store.put_audit_head(seq, &hash);
        }
    }
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("store", &self.store)
            .field("slots", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Session objects get handles from this value up, far above any token object id.
const SESSION_OBJECT_BASE: u64 = 1 << 48;

fn poisoned<T>(_: T) -> HsmError {
    HsmError::Crypto(craton_core::CryptoError::OperationState(
        "a thread panicked while holding engine state",
    ))
}

impl Hsm {
    /// Runs the power-on self-tests, seeds the DRBG from the OS, opens (or creates) the store
    /// in the configured state directory and loads every token's public objects.
    pub fn open(config: Config) -> Result<Hsm> {
        Hsm::open_with_events(config, Arc::new(NoEvents))
    }

    /// [`Hsm::open`], reporting events to `events`.
    pub fn open_with_events(config: Config, events: Arc<dyn EventSink>) -> Result<Hsm> {
        config.validate()?;
        let module = ModuleState::new();
        let post = module
            .power_on()
            .map_err(|f| HsmError::Crypto(craton_core::CryptoError::ErrorState(f)))?;
        let rng = Arc::new(Rng::from_os().map_err(craton_core::CryptoError::Rng)?);
        let kats = post.kats.len();
        let post_micros = post.total.as_micros() as u64;
        let store = match Store::open(&config.state_dir(), rng.clone()) {
            Ok(s) => s,
            Err(e) => {
                // The audit key lives in the store, so this entry cannot be sealed now; the
                // next successful start seals the chain over it. Not when another engine holds
                // the store: that engine owns the log and is writing it, and an entry from here
                // would fork its chain.
                let owned_elsewhere = matches!(e, crate::persist::StoreError::Locked { .. });
                if config.audit.level != crate::config::AuditLevel::None && !owned_elsewhere {
                    let _ = crate::audit::append_unsealed(
                        &config.audit_path(),
                        "store_refused",
                        &e.to_string(),
                    );
                }
                return Err(e.into());
            }
        };
        let registry = Registry::new(config.policy());
        let audit = if config.audit.level == crate::config::AuditLevel::None {
            None
        } else {
            let seed = store.audit_key_seed()?;
            let key = craton_core::edwards::Ed25519Key::from_seed(seed.expose())?;
            let log = crate::audit::AuditLog::open(
                &config.audit_path(),
                &config.audit,
                key,
                registry.clone(),
                store.audit_head()?,
            )?;
            let log = Arc::new(log);
            if !config.audit.sync_operation_entries {
                // Syncs per-operation entries within SYNC_INTERVAL; exits when the log is gone.
                let weak = Arc::downgrade(&log);
                std::thread::Builder::new()
                    .name("craton-audit-sync".into())
                    .spawn(move || {
                        while let Some(log) = weak.upgrade() {
                            let _ = log.sync_pending();
                            drop(log);
                            std::thread::sleep(crate::audit::FLUSH_INTERVAL);
                        }
                    })
                    .map_err(|source| crate::audit::AuditError::Io {
                        path: config.audit_path(),
                        source,
                    })?;
            }
            Some(log)
        };
        let events: Arc<dyn EventSink> = match &audit {
            Some(a) => Arc::new(crate::event::Tee(vec![a.clone(), events])),
            None => events,
        };
        events.record(&Event::ModuleStarted {
            kats,
            post_micros,
            config: config.origin().to_owned(),
            store: store.path().display().to_string(),
        });
        if !SecretBytes::new(&[0]).is_locked() {
            events.record(&Event::MemoryNotLocked);
        }
        if let Some(created) = store.take_restored_marker()? {
            events.record(&Event::Restored { created });
        }
        let mut records: StdHashMap<u64, TokenRecord> = store.tokens()?.into_iter().collect();
        let mut tokens = Vec::new();
        for slot in 0..u64::from(config.token.slots) {
            let record = records.remove(&slot).unwrap_or_default();
            let mut objects = HashMap::default();
            let loaded = store.objects(slot, None)?;
            for o in loaded.objects {
                objects.insert(o.id, Arc::new(Object::stored(o)));
            }
            for e in loaded.corrupt {
                events.record(&Event::RecordCorrupt {
                    slot,
                    detail: e.to_string(),
                });
            }
            tokens.push(RwLock::new(Token {
                slot,
                record,
                logins: HashMap::default(),
                master: None,
                objects,
                sessions: HashMap::default(),
            }));
        }
        Ok(Hsm {
            registry,
            audit,
            config,
            module,
            rng,
            store,
            generations: tokens.iter().map(|_| Padded::default()).collect(),
            tokens,
            sessions: std::array::from_fn(|_| SessionShard(RwLock::new(HashMap::default()))),
            next_session: Padded(AtomicU64::new(1)),
            next_session_object: Padded(AtomicU64::new(SESSION_OBJECT_BASE)),
            silent: events.is_silent(),
            events,
            saved_states: Mutex::new(Default::default()),
        })
    }

    /// The audit log, when the configuration enables one.
    pub fn audit(&self) -> Option<&crate::audit::AuditLog> {
        self.audit.as_deref()
    }

    /// Records an event a frontend observed (its integrity check, attach and detach) in the
    /// audit log, failing like any audited call when the log cannot take it.
    pub fn report(&self, event: Event) -> Result<()> {
        self.emit(event)
    }

    /// Puts the engine into the self-test error state for good: a frontend's own self-test
    /// (the integrity check of its executable) failed. Every later cryptographic call fails.
    pub fn fail_self_test(&self, reason: craton_core::post::PostFailure) {
        self.module.fail(reason);
    }

    /// Whether the engine is in the self-test error state.
    pub fn self_test_failure(&self) -> Option<craton_core::post::PostFailure> {
        self.module.failure()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The mechanism registry the tokens serve.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Slot ids, `0..slots`.
    pub fn slots(&self) -> impl Iterator<Item = u64> {
        0..self.tokens.len() as u64
    }

    pub(crate) fn check_module(&self) -> Result<()> {
        self.module.check().map_err(HsmError::Crypto)?;
        // Nothing happens unaudited: a broken audit log stops the engine.
        if self.audit.as_ref().is_some_and(|a| a.is_failed()) {
            return Err(HsmError::Audit(crate::audit::AuditError::Failed));
        }
        Ok(())
    }

    /// Records an event and fails the calling operation if the audit log could not write
    /// it: no result is handed out whose audit entry is missing.
    pub(crate) fn emit(&self, e: Event) -> Result<()> {
        if self.silent {
            return Ok(());
        }
        self.events.record(&e);
        if self.audit.as_ref().is_some_and(|a| a.is_failed()) {
            return Err(HsmError::Audit(crate::audit::AuditError::Failed));
        }
        Ok(())
    }

    pub(crate) fn token(&self, slot: u64) -> Result<&RwLock<Token>> {
        usize::try_from(slot)
            .ok()
            .and_then(|s| self.tokens.get(s))
            .ok_or(HsmError::SlotIdInvalid)
    }

    pub(crate) fn read_token(&self, slot: usize) -> Result<RwLockReadGuard<'_, Token>> {
        self.tokens[slot].read().map_err(poisoned)
    }

    pub(crate) fn write_token(&self, slot: usize) -> Result<RwLockWriteGuard<'_, Token>> {
        let guard = self.tokens[slot].write().map_err(poisoned)?;
        // Bumped with the write lock held: a session that reads the new value looks the key
        // up again under the read lock, which waits for this writer to finish.
        self.generations[slot].0.fetch_add(1, Ordering::AcqRel);
        Ok(guard)
    }

    /// The token's write lock for a change that only adds objects: the generation stays, since
    /// no key a session has cached changes (a new object's handle was never cached).
    pub(crate) fn write_token_adding(&self, slot: usize) -> Result<RwLockWriteGuard<'_, Token>> {
        self.tokens[slot].write().map_err(poisoned)
    }

    fn shard(&self, h: u64) -> &RwLock<HashMap<u64, Arc<Session>>> {
        &self.sessions[(h as usize) % SHARDS].0
    }

    pub(crate) fn session(&self, h: SessionHandle) -> Result<Arc<Session>> {
        match self.shard(h.0).read().map_err(poisoned)?.get(&h.0) {
            // A `match`, not `ok_or`: the unused error of `ok_or` is dropped on every call.
            Some(s) => Ok(s.clone()),
            None => Err(HsmError::SessionHandleInvalid),
        }
    }

    /// Runs `f` on session `h` under its shard's read lock, without taking a reference to
    /// the session: for short steps only (a waiting writer holds up the shard's readers).
    pub(crate) fn with_session<T>(
        &self,
        h: SessionHandle,
        f: impl FnOnce(&Session) -> Result<T>,
    ) -> Result<T> {
        let shard = self.shard(h.0).read().map_err(poisoned)?;
        match shard.get(&h.0) {
            Some(s) => f(s),
            None => Err(HsmError::SessionHandleInvalid),
        }
    }

    pub(crate) fn lock_ops<'a>(&self, s: &'a Session) -> Result<MutexGuard<'a, SessionOps>> {
        s.ops.lock().map_err(poisoned)
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&self, slot: u64) -> Result<TokenInfo> {
        let t = self.token(slot)?.read().map_err(poisoned)?;
        let max = self.config.security.max_failed_logins;
        let status = |failures: u32| PinStatus {
            failures,
            count_low: failures > 0,
            final_try: failures + 1 == max,
            locked: failures >= max,
        };
        let mut serial = [b'0'; 16];
        let s = format!("{:08x}{:08x}", slot, t.record.generation);
        serial.copy_from_slice(&s.as_bytes()[s.len() - 16..]);
        Ok(TokenInfo {
            label: t.record.label,
            serial,
            initialized: t.record.initialized(),
            user_pin_initialized: t.record.user_wrap.is_some(),
            user_pin: status(t.record.user_failures),
            so_pin: status(t.record.so_failures),
            sessions: t.sessions.len() as u64,
            rw_sessions: t.sessions.values().filter(|(rw, _)| *rw).count() as u64,
            min_pin_len: self.config.security.pin_min_len,
            max_pin_len: self.config.security.pin_max_len,
        })
    }

    fn check_pin_len(&self, pin: &[u8]) -> Result<()> {
        let s = &self.config.security;
        if pin.len() < s.pin_min_len || pin.len() > s.pin_max_len {
            return Err(HsmError::PinLenRange);
        }
        Ok(())
    }

    fn wrap_aad(role: &str, slot: u64, generation: u64) -> Vec<u8> {
        format!("craton-hsm pin wrap/{role}/{slot}/{generation}").into_bytes()
    }

    /// Wraps the master key under a key derived from `pin` (PBKDF2 runs here).
    fn wrap_master(
        &self,
        master: &SecretBytes,
        pin: &[u8],
        role: &str,
        slot: u64,
        generation: u64,
    ) -> Result<PinWrap> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        self.rng
            .fill(&mut salt)
            .and_then(|()| self.rng.fill(&mut nonce))
            .map_err(craton_core::CryptoError::Rng)?;
        let iterations = self.config.security.pbkdf2_iterations;
        let kek = craton_core::kdf::pbkdf2(HashAlg::Sha256, pin, &salt, iterations, 32)?;
        let mode = AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(nonce.to_vec()),
            aad: Self::wrap_aad(role, slot, generation),
            tag_bits: 128,
        });
        let sealed = craton_core::aes::encrypt(&kek, &mode, master.expose(), &self.rng)?;
        Ok(PinWrap {
            salt,
            iterations,
            nonce,
            sealed,
        })
    }

    /// Opens a wrap with `pin`; `None` for a wrong PIN.
    fn unwrap_master(
        &self,
        wrap: &PinWrap,
        pin: &[u8],
        role: &str,
        slot: u64,
        generation: u64,
    ) -> Result<Option<SecretBytes>> {
        let kek = craton_core::kdf::pbkdf2(HashAlg::Sha256, pin, &wrap.salt, wrap.iterations, 32)?;
        let mode = AesMode::Gcm(GcmParams {
            iv: GcmIv::Given(wrap.nonce.to_vec()),
            aad: Self::wrap_aad(role, slot, generation),
            tag_bits: 128,
        });
        match craton_core::aes::decrypt(&kek, &mode, &wrap.sealed, &self.rng) {
            Ok(m) if m.len() == 32 => Ok(Some(SecretBytes::new(&m))),
            Ok(_) => Ok(None),
            Err(craton_core::CryptoError::EncryptedDataInvalid) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks `pin` against the SO or user wrap of `slot`, counting failures (persisted) and
    /// reporting events. Returns the master key on success. PBKDF2 runs without the token
    /// lock held.
    fn verify_pin(
        &self,
        slot: usize,
        session: u64,
        user: UserType,
        pin: &[u8],
    ) -> Result<SecretBytes> {
        let so = user == UserType::So;
        let role = if so { "so" } else { "user" };
        let max = self.config.security.max_failed_logins;
        let (wrap, generation) = {
            let t = self.read_token(slot)?;
            let (wrap, failures) = if so {
                (&t.record.so_wrap, t.record.so_failures)
            } else {
                (&t.record.user_wrap, t.record.user_failures)
            };
            let wrap = match wrap {
                Some(w) => w.clone(),
                None if so => return Err(HsmError::TokenNotInitialized),
                None => return Err(HsmError::UserPinNotInitialized),
            };
            if failures >= max {
                return Err(HsmError::PinLocked);
            }
            (wrap, t.record.generation)
        };
        let opened = if pin.len() > self.config.security.pin_max_len {
            None
        } else {
            self.unwrap_master(&wrap, pin, role, slot as u64, generation)?
        };
        let mut t = self.write_token(slot)?;
        if t.record.generation != generation {
            // The token was re-initialised meanwhile; the PIN we checked no longer exists.
            return Err(HsmError::PinIncorrect);
        }
        let mut record = t.record.clone();
        let counter = if so {
            &mut record.so_failures
        } else {
            &mut record.user_failures
        };
        let slot_id = slot as u64;
        match opened {
            Some(master) => {
                if *counter != 0 {
                    *counter = 0;
                    self.store.put_token(slot_id, &record)?;
                    t.record = record;
                }
                drop(t);
                self.emit(Event::Login {
                    slot: slot_id,
                    session,
                    user,
                    success: true,
                    failures: 0,
                    threshold: max,
                })?;
                Ok(master)
            }
            None => {
                *counter = counter.saturating_add(1);
                let failures = *counter;
                // Persist the count before answering, so a crash cannot grant a free guess.
                self.store.put_token(slot_id, &record)?;
                t.record = record;
                drop(t);
                self.emit(Event::Login {
                    slot: slot_id,
                    session,
                    user,
                    success: false,
                    failures,
                    threshold: max,
                })?;
                let pin_owner = if so { UserType::So } else { UserType::User };
                if failures >= max {
                    self.emit(Event::PinLocked {
                        slot: slot_id,
                        user: pin_owner,
                    })?;
                } else if max - failures <= 2 {
                    self.emit(Event::PinNearLockout {
                        slot: slot_id,
                        user: pin_owner,
                        remaining: max - failures,
                    })?;
                }
                Err(HsmError::PinIncorrect)
            }
        }
    }

    /// `C_InitToken`: (re)initialises the token in `slot` with an SO PIN and a label. An
    /// initialised token needs its current SO PIN, and loses every object for good.
    pub fn init_token(&self, slot: u64, so_pin: &[u8], label: &str) -> Result<()> {
        self.check_module()?;
        let lock = self.token(slot)?;
        self.check_pin_len(so_pin)?;
        let idx = slot as usize;
        {
            let t = lock.read().map_err(poisoned)?;
            if !t.sessions.is_empty() {
                return Err(HsmError::SessionExists);
            }
        }
        let initialized = lock.read().map_err(poisoned)?.record.initialized();
        if initialized {
            self.verify_pin(idx, 0, UserType::So, so_pin)?;
        }
        let master = SecretBytes::generate(32, |b| self.rng.fill(b))
            .map_err(craton_core::CryptoError::Rng)?;
        let generation = lock.read().map_err(poisoned)?.record.generation + 1;
        let so_wrap = self.wrap_master(&master, so_pin, "so", slot, generation)?;
        let mut label_bytes = [b' '; 32];
        let l = label.as_bytes();
        let n = l.len().min(32);
        label_bytes[..n].copy_from_slice(&l[..n]);
        let record = TokenRecord {
            label: label_bytes,
            so_wrap: Some(so_wrap),
            user_wrap: None,
            so_failures: 0,
            user_failures: 0,
            generation,
        };
        let mut t = lock.write().map_err(poisoned)?;
        if !t.sessions.is_empty() {
            return Err(HsmError::SessionExists);
        }
        self.store.reinit_token(slot, &record)?;
        t.record = record;
        t.objects.clear();
        t.logins.clear();
        t.master = None;
        drop(t);
        self.emit(Event::TokenInitialized { slot })?;
        Ok(())
    }

    /// `C_OpenSession`.
    pub fn open_session(&self, slot: u64, read_write: bool) -> Result<SessionHandle> {
        self.open_session_for(slot, read_write, Application::default())
    }

    /// `C_OpenSession` on behalf of `app`: its session objects are shared with the other
    /// sessions of `app` only.
    pub fn open_session_for(
        &self,
        slot: u64,
        read_write: bool,
        app: Application,
    ) -> Result<SessionHandle> {
        let lock = self.token(slot)?;
        let mut t = lock.write().map_err(poisoned)?;
        if !t.record.initialized() {
            return Err(HsmError::TokenNotInitialized);
        }
        if !read_write && t.login_of(app) == Login::So {
            return Err(HsmError::SessionReadWriteSoExists);
        }
        let handle = self.next_session.0.fetch_add(1, Ordering::Relaxed);
        t.sessions.insert(handle, (read_write, app));
        let session = Arc::new(Session {
            handle,
            app,
            slot: slot as usize,
            read_write,
            ops: Mutex::new(SessionOps::default()),
        });
        self.shard(handle)
            .write()
            .map_err(poisoned)?
            .insert(handle, session);
        Ok(SessionHandle(handle))
    }

    /// `C_CloseSession`: destroys its session objects; closing an application's last session
    /// on the token logs that application out.
    pub fn close_session(&self, h: SessionHandle) -> Result<()> {
        let session = self
            .shard(h.0)
            .write()
            .map_err(poisoned)?
            .remove(&h.0)
            .ok_or(HsmError::SessionHandleInvalid)?;
        let mut t = self.write_token(session.slot)?;
        t.sessions.remove(&h.0);
        t.objects
            .retain(|_, o| o.session.is_none_or(|w| w.session != h.0));
        if !t.sessions.values().any(|(_, a)| *a == session.app) {
            Self::forget_login(&mut t, &self.store, session.app)?;
        }
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&self, slot: u64) -> Result<()> {
        let handles: Vec<u64> = self
            .token(slot)?
            .read()
            .map_err(poisoned)?
            .sessions
            .keys()
            .copied()
            .collect();
        for h in handles {
            match self.close_session(SessionHandle(h)) {
                Ok(()) | Err(HsmError::SessionHandleInvalid) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, h: SessionHandle) -> Result<SessionInfo> {
        let s = self.session(h)?;
        let t = self.read_token(s.slot)?;
        let state = match (t.login_of(s.app), s.read_write) {
            (Login::So, _) => SessionState::RwSo,
            (Login::User, true) => SessionState::RwUser,
            (Login::User, false) => SessionState::RoUser,
            (Login::None, true) => SessionState::RwPublic,
            (Login::None, false) => SessionState::RoPublic,
        };
        Ok(SessionInfo {
            slot: s.slot as u64,
            state,
            read_write: s.read_write,
        })
    }

    /// `C_Login`. The SO cannot log in while read-only sessions exist;
    /// [`UserType::ContextSpecific`] re-authenticates the user for the pending operation on a
    /// `CKA_ALWAYS_AUTHENTICATE` key.
    pub fn login(&self, h: SessionHandle, user: UserType, pin: &[u8]) -> Result<()> {
        self.check_module()?;
        let s = self.session(h)?;
        if user == UserType::ContextSpecific {
            if self.read_token(s.slot)?.login_of(s.app) != Login::User {
                return Err(HsmError::UserNotLoggedIn);
            }
            if !self.lock_ops(&s)?.awaiting_context_login() {
                return Err(HsmError::OperationNotInitialized);
            }
            self.verify_pin(s.slot, h.0, UserType::User, pin)?;
            self.lock_ops(&s)?.context_login_done();
            return Ok(());
        }
        {
            let t = self.read_token(s.slot)?;
            match (t.login_of(s.app), user) {
                (Login::User, UserType::User) | (Login::So, UserType::So) => {
                    return Err(HsmError::UserAlreadyLoggedIn);
                }
                (Login::User, _) | (Login::So, _) => {
                    return Err(HsmError::UserAnotherAlreadyLoggedIn);
                }
                (Login::None, UserType::So) if t.has_ro_session(s.app) => {
                    return Err(HsmError::SessionReadOnlyExists);
                }
                _ => {}
            }
        }
        let master = self.verify_pin(s.slot, h.0, user, pin)?;
        // Private objects are read (and opened) outside the token lock, then merged; another
        // application's user login may have opened them already.
        let opened = if user == UserType::User && !self.read_token(s.slot)?.user_logged_in() {
            let loaded = self.store.objects(s.slot as u64, Some(&master))?;
            for e in loaded.corrupt {
                self.emit(Event::RecordCorrupt {
                    slot: s.slot as u64,
                    detail: e.to_string(),
                })?;
            }
            Some(loaded.objects)
        } else {
            None
        };
        let mut t = self.write_token(s.slot)?;
        if t.login_of(s.app) != Login::None {
            return Err(HsmError::UserAnotherAlreadyLoggedIn);
        }
        if let Some(objects) = opened {
            for o in objects {
                // Opened objects replace their sealed public view; one another application's
                // concurrent login already opened stays as it is.
                if t.objects.get(&o.id).is_none_or(|e| e.secret_closed) {
                    t.objects.insert(o.id, Arc::new(Object::stored(o)));
                }
            }
        }
        let login = if user == UserType::So {
            Login::So
        } else {
            Login::User
        };
        t.logins.insert(s.app, login);
        t.master = Some(master);
        Ok(())
    }

    /// `C_Logout`: forgets the master key and every opened private object.
    pub fn logout(&self, h: SessionHandle) -> Result<()> {
        let s = self.session(h)?;
        let mut t = self.write_token(s.slot)?;
        if t.login_of(s.app) == Login::None {
            return Err(HsmError::UserNotLoggedIn);
        }
        Self::forget_login(&mut t, &self.store, s.app)?;
        let slot = t.slot;
        drop(t);
        self.emit(Event::Logout { slot })?;
        Ok(())
    }

    /// Logs `app` out. While another application's user stays logged in the opened objects
    /// stay (visibility is checked per application); after the last one they are dropped.
    fn forget_login(t: &mut Token, store: &Store, app: Application) -> Result<()> {
        if t.logins.remove(&app).is_none() {
            return Ok(());
        }
        if t.logins.is_empty() {
            t.master = None;
        }
        if t.user_logged_in() {
            return Ok(());
        }
        // Drop every token object and reload the public view: private objects disappear and
        // the secret parts of public key objects close again.
        t.objects.retain(|_, o| o.session.is_some());
        for o in store.objects(t.slot, None)?.objects {
            t.objects.insert(o.id, Arc::new(Object::stored(o)));
        }
        Ok(())
    }

    /// `C_InitPIN`: the SO, in a read/write session, sets the user PIN. The objects survive:
    /// the master key is re-wrapped, not replaced.
    pub fn init_pin(&self, h: SessionHandle, pin: &[u8]) -> Result<()> {
        self.check_module()?;
        let s = self.session(h)?;
        self.check_pin_len(pin)?;
        let (master, generation) = {
            let t = self.read_token(s.slot)?;
            if t.login_of(s.app) != Login::So || !s.read_write {
                return Err(HsmError::UserNotLoggedIn);
            }
            let m = t.master.clone().ok_or(HsmError::UserNotLoggedIn)?;
            (m, t.record.generation)
        };
        let slot = s.slot as u64;
        let wrap = self.wrap_master(&master, pin, "user", slot, generation)?;
        let mut t = self.write_token(s.slot)?;
        let mut record = t.record.clone();
        record.user_wrap = Some(wrap);
        record.user_failures = 0;
        self.store.put_token(slot, &record)?;
        t.record = record;
        drop(t);
        self.emit(Event::PinInitialized { slot })?;
        Ok(())
    }

    /// `C_SetPIN`: changes the SO PIN when the SO is logged in, the user PIN otherwise (the
    /// user's own session, or a read/write public session). Needs the old PIN.
    pub fn set_pin(&self, h: SessionHandle, old: &[u8], new: &[u8]) -> Result<()> {
        self.check_module()?;
        let s = self.session(h)?;
        if !s.read_write {
            return Err(HsmError::SessionReadOnly);
        }
        self.check_pin_len(new)?;
        let user = match self.read_token(s.slot)?.login_of(s.app) {
            Login::So => UserType::So,
            _ => UserType::User,
        };
        let master = self.verify_pin(s.slot, h.0, user, old)?;
        let slot = s.slot as u64;
        let generation = self.read_token(s.slot)?.record.generation;
        let role = if user == UserType::So { "so" } else { "user" };
        let wrap = self.wrap_master(&master, new, role, slot, generation)?;
        let mut t = self.write_token(s.slot)?;
        let mut record = t.record.clone();
        if user == UserType::So {
            record.so_wrap = Some(wrap);
        } else {
            record.user_wrap = Some(wrap);
        }
        self.store.put_token(slot, &record)?;
        t.record = record;
        drop(t);
        self.emit(Event::PinChanged { slot, user })?;
        Ok(())
    }

    /// `C_GenerateRandom`.
    pub fn generate_random(&self, h: SessionHandle, out: &mut [u8]) -> Result<()> {
        self.check_module()?;
        let s = self.session(h)?;
        if let Err(e) = self.rng.fill(out) {
            self.emit(Event::RandomFailure {
                slot: s.slot as u64,
                detail: e.to_string(),
            })?;
            return Err(HsmError::Crypto(craton_core::CryptoError::Rng(e)));
        }
        Ok(())
    }

    /// `C_SeedRandom`: every DRBG instance reseeds from the operating system's entropy with
    /// the caller's seed as additional input, and drops the output it had drawn ahead, so
    /// all later random bytes depend on the seed. The seed is never the generator's only
    /// input: a constant or guessable seed adds nothing but takes nothing away.
    pub fn seed_random(&self, h: SessionHandle, seed: &[u8]) -> Result<()> {
        self.check_module()?;
        self.session(h)?;
        self.rng
            .reseed_all(seed)
            .map_err(|e| HsmError::Crypto(craton_core::CryptoError::Rng(e)))
    }

    pub(crate) fn direction_name(d: Direction) -> &'static str {
        match d {
            Direction::Encrypt => "encrypt",
            Direction::Decrypt => "decrypt",
        }
    }
}
