//! The gRPC service: each RPC checks who is calling and whether the session is theirs, then
//! runs the engine call off the reactor, with every audit entry it causes attributed to the
//! client's certificate. The short cryptographic calls (operation starts, sign, verify,
//! encrypt, decrypt, digest) run on the engine threads of [`crate::pool`]; everything that
//! may take long (key generation, PBKDF2 logins, calls that sync the store or the audit log)
//! runs on tokio's blocking pool, so a slow RSA key generation cannot stall other clients.

use crate::convert::{self, mechanism, template};
use crate::pb::{self, hsm_server::Hsm as HsmRpc};
use crate::status::{CkError, ck};
use craton_core::Direction;
use craton_core::attribute::AttributeType as A;
use craton_store::audit::Caller;
use craton_store::{
    Application, Event, Hsm, MessageKind, ObjectHandle, OperationKind, SessionHandle, SessionState,
    UserType,
};
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tonic::{Request, Response, Status};

/// What the listener knows about one connection, attached to each of its requests.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Unique for the daemon's lifetime.
    pub id: u64,
    /// SHA-256 of the client's certificate, hex (empty when the configuration lets loopback
    /// clients connect without one).
    pub fingerprint: Arc<str>,
    /// The client as its audit entries name it (serialised once per connection).
    pub caller: Arc<str>,
    /// Closes the connection's sessions when the last copy goes (the connection and every
    /// request on it are gone).
    pub guard: Arc<ConnectionGuard>,
}

/// Ends a connection's sessions, as a process's exit ends its sessions locally.
#[derive(Debug)]
pub struct ConnectionGuard {
    id: u64,
    service: std::sync::Weak<Service>,
}

impl ConnectionGuard {
    /// A guard for connection `id` of `service`.
    pub fn new(id: u64, service: &Arc<Service>) -> ConnectionGuard {
        service
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ConnectionGuard {
            id,
            service: Arc::downgrade(service),
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(service) = self.service.upgrade() {
            service.connection_closed(self.id);
        }
    }
}

/// Who is calling: the client certificate, over one connection. A connection is one
/// PKCS#11 application: its sessions, session objects and login are its own.
#[derive(Debug, Clone)]
pub struct Identity {
    fingerprint: Arc<str>,
    connection: u64,
    caller: Arc<str>,
}

impl Identity {
    /// The engine application of this connection (0 is the local process's; never used).
    fn application(&self) -> Application {
        Application(self.connection | 1 << 63)
    }
}

#[derive(Debug)]
struct Owner {
    connection: u64,
    slot: u64,
}

/// Failed PIN attempts per client per minute, as a token bucket: bursts up to the
/// allowance, then one attempt per (60 / allowance) seconds. Each attempt takes a token
/// before it reaches the engine (so parallel guesses cannot overtake the count) and a right
/// PIN gives it back: a client that logs in often with the right PIN is never slowed.
#[derive(Debug)]
struct PinLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<Arc<str>, (f64, Instant)>>,
}

impl PinLimiter {
    fn allow(&self, who: &Identity) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let cap = f64::from(self.per_minute);
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        if buckets.len() > 10_000 {
            // Forget clients that have been quiet long enough to have a full bucket again.
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs() < 60);
        }
        let (tokens, last) = buckets.entry(who.fingerprint.clone()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * cap / 60.0).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back the token of an attempt that succeeded.
    fn refund(&self, who: &Identity) {
        if self.per_minute == 0 {
            return;
        }
        if let Ok(mut buckets) = self.buckets.lock()
            && let Some((tokens, _)) = buckets.get_mut(&who.fingerprint)
        {
            *tokens = (*tokens + 1.0).min(f64::from(self.per_minute));
        }
    }
}

/// The service state shared by every connection.
#[derive(Debug)]
pub struct Service {
    hsm: Arc<Hsm>,
    owners: RwLock<HashMap<u64, Owner>>,
    started: Instant,
    pins: PinLimiter,
    max_random: usize,
    connections: std::sync::atomic::AtomicU64,
    /// Where the short cryptographic calls run (`None` if its threads could not be started:
    /// then everything runs on tokio's blocking pool).
    engine: Option<crate::pool::EnginePool>,
}

type Reply<T> = Result<Response<T>, Status>;

fn rv(e: CkError) -> Status {
    e.into()
}

impl Service {
    /// A service over `hsm`, allowing each client `pin_attempts_per_minute` PIN attempts (0:
    /// unlimited) and random requests up to `max_random` bytes.
    pub fn new(hsm: Arc<Hsm>, pin_attempts_per_minute: u32, max_random: usize) -> Service {
        Service {
            hsm,
            owners: RwLock::new(HashMap::new()),
            started: Instant::now(),
            pins: PinLimiter {
                per_minute: pin_attempts_per_minute,
                buckets: Mutex::new(HashMap::new()),
            },
            max_random,
            connections: std::sync::atomic::AtomicU64::new(0),
            engine: crate::pool::EnginePool::per_core().ok(),
        }
    }

    /// Connections accepted since the service started.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The engine.
    pub fn hsm(&self) -> &Arc<Hsm> {
        &self.hsm
    }

    /// Open sessions, across all clients.
    pub fn session_count(&self) -> usize {
        self.owners.read().map(|o| o.len()).unwrap_or(0)
    }

    fn who<T>(req: &Request<T>) -> Identity {
        match req.extensions().get::<Connection>() {
            Some(c) => Identity {
                fingerprint: c.fingerprint.clone(),
                connection: c.id,
                caller: c.caller.clone(),
            },
            // Not through our listener (in-process tests of the service): one anonymous
            // application.
            None => Identity {
                fingerprint: "".into(),
                connection: 0,
                caller: Caller::Client(String::new()).json(),
            },
        }
    }

    /// A connection ended: its sessions close, and with the last one its login.
    pub fn connection_closed(&self, connection: u64) {
        let mine: Vec<u64> = match self.owners.write() {
            Ok(mut owners) => {
                let ids: Vec<u64> = owners
                    .iter()
                    .filter(|(_, o)| o.connection == connection)
                    .map(|(s, _)| *s)
                    .collect();
                for s in &ids {
                    owners.remove(s);
                }
                ids
            }
            Err(_) => return,
        };
        for s in mine {
            // Already gone (closed by the client) is fine.
            let _ = self.hsm.close_session(SessionHandle(s));
        }
    }

    /// The session, if `who` opened it; anyone else's handle does not exist for them.
    fn own(&self, who: &Identity, session: u64) -> Result<SessionHandle, Status> {
        let owners = self.owners.read().map_err(|_| rv(ck(CKR_GENERAL_ERROR)))?;
        match owners.get(&session) {
            Some(o) if o.connection == who.connection => Ok(SessionHandle(session)),
            _ => Err(rv(ck(CKR_SESSION_HANDLE_INVALID))),
        }
    }

    /// The session, if `who` opened it and the SO is logged in to it: what the
    /// administration calls require.
    fn so_session(&self, who: &Identity, session: u64) -> Result<SessionHandle, Status> {
        let s = self.own(who, session)?;
        match self.hsm.session_info(s).map_err(|e| rv(e.into()))?.state {
            SessionState::RwSo => Ok(s),
            _ => Err(rv(ck(CKR_USER_NOT_LOGGED_IN))),
        }
    }

    /// Runs an engine call off the reactor, attributed to `who`.
    async fn run<T, F>(&self, who: &Identity, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Hsm) -> Result<T, CkError> + Send + 'static,
    {
        let hsm = self.hsm.clone();
        let caller = who.caller.clone();
        tokio::task::spawn_blocking(move || {
            craton_store::audit::with_caller_json(&caller, || f(&hsm))
        })
        .await
        .map_err(|_| rv(ck(CKR_GENERAL_ERROR)))?
        .map_err(rv)
    }

    /// Runs a short cryptographic call (its input bounded by `max_request_bytes`, nothing
    /// synced to disk) on the engine threads, attributed to `who`.
    async fn run_fast<T, F>(&self, who: &Identity, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Hsm) -> Result<T, CkError> + Send + 'static,
    {
        let Some(engine) = &self.engine else {
            return self.run(who, f).await;
        };
        let hsm = self.hsm.clone();
        let caller = who.caller.clone();
        engine
            .run(move || craton_store::audit::with_caller_json(&caller, || f(&hsm)))
            .await
            .ok_or_else(|| rv(ck(CKR_GENERAL_ERROR)))?
            .map_err(rv)
    }

    /// Runs an engine call that checks a PIN, if the client's failed attempts allow it.
    async fn pin_attempt<T, F>(&self, who: &Identity, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Hsm) -> Result<T, CkError> + Send + 'static,
    {
        self.throttle(who)?;
        let result = self.run(who, f).await;
        if result.is_ok() {
            self.pins.refund(who);
        }
        result
    }

    fn throttle(&self, who: &Identity) -> Result<(), Status> {
        if self.pins.allow(who) {
            return Ok(());
        }
        // The refusal is audited; if even that fails the refusal still stands.
        let _ = craton_store::audit::with_caller_json(&who.caller, || {
            self.hsm.report(Event::PinAttemptsThrottled)
        });
        let s = crate::status::to_status(CKR_FUNCTION_FAILED);
        Err(Status::with_metadata(
            tonic::Code::ResourceExhausted,
            "too many PIN attempts from this client; wait and retry",
            s.metadata().clone(),
        ))
    }
}

fn empty() -> Reply<pb::Empty> {
    Ok(Response::new(pb::Empty {}))
}

fn data(d: impl Into<Vec<u8>>) -> Reply<pb::DataReply> {
    Ok(Response::new(pb::DataReply { data: d.into() }))
}

fn object(h: ObjectHandle) -> Reply<pb::ObjectReply> {
    Ok(Response::new(pb::ObjectReply { object: h.0 }))
}

fn user_type(n: u64) -> Result<UserType, Status> {
    match n {
        CKU_SO => Ok(UserType::So),
        CKU_USER => Ok(UserType::User),
        CKU_CONTEXT_SPECIFIC => Ok(UserType::ContextSpecific),
        _ => Err(rv(ck(CKR_USER_TYPE_INVALID))),
    }
}

fn state_number(s: SessionState) -> u64 {
    match s {
        SessionState::RoPublic => CKS_RO_PUBLIC_SESSION,
        SessionState::RwPublic => CKS_RW_PUBLIC_SESSION,
        SessionState::RoUser => CKS_RO_USER_FUNCTIONS,
        SessionState::RwUser => CKS_RW_USER_FUNCTIONS,
        SessionState::RwSo => CKS_RW_SO_FUNCTIONS,
    }
}

fn message_kind(n: i32) -> Result<MessageKind, Status> {
    Ok(match pb::MessageKind::try_from(n) {
        Ok(pb::MessageKind::Encrypt) => MessageKind::Encrypt,
        Ok(pb::MessageKind::Decrypt) => MessageKind::Decrypt,
        Ok(pb::MessageKind::Sign) => MessageKind::Sign,
        Ok(pb::MessageKind::Verify) => MessageKind::Verify,
        Err(_) => return Err(rv(ck(CKR_ARGUMENTS_BAD))),
    })
}

fn operation_kind(n: i32) -> Result<OperationKind, Status> {
    use pb::OperationKind as P;
    Ok(match P::try_from(n) {
        Ok(P::Sign) => OperationKind::Sign,
        Ok(P::Verify) => OperationKind::Verify,
        Ok(P::Encrypt) => OperationKind::Encrypt,
        Ok(P::Decrypt) => OperationKind::Decrypt,
        Ok(P::Digest) => OperationKind::Digest,
        Ok(P::Find) => OperationKind::Find,
        Ok(P::MessageEncrypt) => OperationKind::Message(MessageKind::Encrypt),
        Ok(P::MessageDecrypt) => OperationKind::Message(MessageKind::Decrypt),
        Ok(P::MessageSign) => OperationKind::Message(MessageKind::Sign),
        Ok(P::MessageVerify) => OperationKind::Message(MessageKind::Verify),
        Err(_) => return Err(rv(ck(CKR_ARGUMENTS_BAD))),
    })
}

/// Every kind of operation a session can run, for a cancel that names none.
const ALL_OPERATIONS: [OperationKind; 10] = [
    OperationKind::Sign,
    OperationKind::Verify,
    OperationKind::Encrypt,
    OperationKind::Decrypt,
    OperationKind::Digest,
    OperationKind::Find,
    OperationKind::Message(MessageKind::Encrypt),
    OperationKind::Message(MessageKind::Decrypt),
    OperationKind::Message(MessageKind::Sign),
    OperationKind::Message(MessageKind::Verify),
];

fn direction(decrypt: bool) -> Direction {
    if decrypt {
        Direction::Decrypt
    } else {
        Direction::Encrypt
    }
}

fn size(n: usize) -> Reply<pb::SizeReply> {
    Ok(Response::new(pb::SizeReply { size: n as u64 }))
}

/// The per-message mechanism of a message call, if the request has one.
fn per_message(m: Option<&pb::Mechanism>) -> Result<Option<craton_core::ops::Mechanism>, Status> {
    m.map(|m| mechanism(Some(m)).map_err(rv)).transpose()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

macro_rules! init_op {
    ($self:ident, $req:ident, $method:ident) => {{
        let who = Service::who(&$req);
        let r = $req.into_inner();
        let s = $self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let key = ObjectHandle(r.key);
        $self
            .run_fast(&who, move |h| Ok(h.$method(s, &m, key)?))
            .await?;
        empty()
    }};
}

/// A signing operation's start, answering with the signature length.
macro_rules! sign_init {
    ($self:ident, $req:ident, $method:ident) => {{
        let who = Service::who(&$req);
        let r = $req.into_inner();
        let s = $self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let key = ObjectHandle(r.key);
        let length = $self
            .run_fast(&who, move |h| {
                h.$method(s, &m, key)?;
                // Unknown (0) if the engine cannot say yet; the client then asks later.
                Ok(h.signature_len(s).unwrap_or(0))
            })
            .await?;
        Ok(Response::new(pb::SignInitReply {
            signature_length: length as u64,
        }))
    }};
}

macro_rules! cipher_init {
    ($self:ident, $req:ident, $dir:expr) => {{
        let who = Service::who(&$req);
        let r = $req.into_inner();
        let s = $self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let key = ObjectHandle(r.key);
        let iv = $self
            .run_fast(&who, move |h| {
                h.cipher_init(s, $dir, &m, key)?;
                Ok(match $dir {
                    Direction::Encrypt => h.generated_iv(s)?,
                    Direction::Decrypt => None,
                })
            })
            .await?;
        Ok(Response::new(pb::InitReply {
            generated_iv: iv.unwrap_or_default(),
        }))
    }};
}

macro_rules! wrap_request {
    ($self:ident, $req:ident, |$h:ident, $s:ident, $m:ident, $w:ident, $k:ident| $body:expr) => {{
        let who = Service::who(&$req);
        let r = $req.into_inner();
        let $s = $self.own(&who, r.session)?;
        let $m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let ($w, $k) = (ObjectHandle(r.wrapping_key), ObjectHandle(r.key));
        $self.run(&who, move |$h| Ok($body?)).await?
    }};
}

macro_rules! session_data {
    ($self:ident, $req:ident, |$h:ident, $s:ident, $d:ident| $body:expr) => {{
        let who = Service::who(&$req);
        let r = $req.into_inner();
        let $s = $self.own(&who, r.session)?;
        let $d = r.data;
        $self.run_fast(&who, move |$h| Ok($body?)).await?
    }};
}

macro_rules! session_only {
    ($self:ident, $req:ident, |$h:ident, $s:ident| $body:expr) => {{
        let who = Service::who(&$req);
        let r = $req.into_inner();
        let $s = $self.own(&who, r.session)?;
        $self.run_fast(&who, move |$h| Ok($body?)).await?
    }};
}

/// The audit log, or `CKR_FUNCTION_FAILED` when the configuration turned it off.
fn audit_log(hsm: &Hsm) -> Result<&craton_store::audit::AuditLog, CkError> {
    hsm.audit().ok_or(ck(CKR_FUNCTION_FAILED))
}

/// Backups go out in pieces of this size.
const BACKUP_CHUNK: usize = 1 << 20;

#[tonic::async_trait]
impl HsmRpc for Arc<Service> {
    type BackupCreateStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::DataReply, Status>>>;

    async fn audit_public_key(&self, _req: Request<pb::Empty>) -> Reply<pb::AuditKeyReply> {
        let key = audit_log(&self.hsm).map_err(rv)?.public_key_hex();
        Ok(Response::new(pb::AuditKeyReply { public_key: key }))
    }

    async fn audit_tail(&self, req: Request<pb::AuditTailRequest>) -> Reply<pb::AuditLines> {
        let who = Service::who(&req);
        let r = req.into_inner();
        self.so_session(&who, r.session)?;
        let lines = self
            .run(&who, move |h| {
                audit_log(h)?
                    .sync_pending()
                    .map_err(|_| ck(CKR_FUNCTION_FAILED))?;
                let text = std::fs::read_to_string(h.config().audit_path())
                    .map_err(|_| ck(CKR_FUNCTION_FAILED))?;
                let all: Vec<&str> = text.lines().collect();
                let from = all.len().saturating_sub(r.lines as usize);
                Ok(all[from..].iter().map(|l| (*l).to_owned()).collect())
            })
            .await?;
        Ok(Response::new(pb::AuditLines { lines }))
    }

    async fn audit_verify(&self, req: Request<pb::SessionRequest>) -> Reply<pb::AuditVerifyReply> {
        let who = Service::who(&req);
        self.so_session(&who, req.get_ref().session)?;
        let reply = self
            .run(&who, move |h| {
                let log = audit_log(h)?;
                // Seal first, so every entry so far is covered by a signature.
                log.seal().map_err(|_| ck(CKR_FUNCTION_FAILED))?;
                let key = hex::decode(log.public_key_hex()).map_err(|_| ck(CKR_GENERAL_ERROR))?;
                let files = craton_store::audit::log_files(&h.config().audit_path());
                let names = files.iter().map(|f| f.display().to_string()).collect();
                Ok(match craton_store::audit::verify(&files, &key) {
                    Ok(r) => pb::AuditVerifyReply {
                        valid: true,
                        entries: r.entries,
                        seals: r.seals,
                        last_seq: r.last_seq,
                        files: names,
                        problem: String::new(),
                    },
                    Err(e) => pb::AuditVerifyReply {
                        valid: false,
                        files: names,
                        problem: format!("{}:{}: {}", e.file.display(), e.line, e.why),
                        ..Default::default()
                    },
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn audit_rotate(&self, req: Request<pb::SessionRequest>) -> Reply<pb::AuditRotateReply> {
        let who = Service::who(&req);
        self.so_session(&who, req.get_ref().session)?;
        let old = self
            .run(&who, move |h| {
                audit_log(h)?.rotate().map_err(|_| ck(CKR_FUNCTION_FAILED))
            })
            .await?;
        Ok(Response::new(pb::AuditRotateReply {
            rotated_to: old.display().to_string(),
        }))
    }

    async fn backup_create(
        &self,
        req: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupCreateStream>, Status> {
        use pb::backup_request::Secret;
        let who = Service::who(&req);
        let r = req.into_inner();
        if r.sessions.is_empty() {
            return Err(rv(ck(CKR_ARGUMENTS_BAD)));
        }
        let mut slots = Vec::new();
        for session in &r.sessions {
            let s = self.so_session(&who, *session)?;
            let slot = self.hsm.session_info(s).map_err(|e| rv(e.into()))?.slot;
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        let secret = zeroize::Zeroizing::new(match r.secret {
            Some(Secret::Passphrase(p)) => (false, p),
            Some(Secret::Key(k)) => (true, k),
            None => return Err(rv(ck(CKR_ARGUMENTS_BAD))),
        });
        let bytes = self
            .run(&who, move |h| {
                let secret = match &*secret {
                    (true, k) => craton_store::backup::BackupSecret::Key(k),
                    (false, p) => craton_store::backup::BackupSecret::Passphrase(p),
                };
                h.backup(&secret, Some(&slots)).map_err(|e| {
                    use craton_store::backup::BackupError as B;
                    ck(match e {
                        B::Engine(inner) => CkError::from(*inner).rv(),
                        _ => CKR_ARGUMENTS_BAD,
                    })
                })
            })
            .await?;
        let chunks: Vec<Result<pb::DataReply, Status>> = bytes
            .chunks(BACKUP_CHUNK)
            .map(|c| Ok(pb::DataReply { data: c.to_vec() }))
            .collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn get_status(&self, req: Request<pb::StatusRequest>) -> Reply<pb::StatusReply> {
        let who = Service::who(&req);
        Ok(Response::new(pb::StatusReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            post: match self.hsm.self_test_failure() {
                None => "passed".to_owned(),
                Some(f) => f.to_string(),
            },
            uptime_seconds: self.started.elapsed().as_secs(),
            sessions: self.session_count() as u64,
            client_fingerprint: who.fingerprint.to_string(),
            policy: Some({
                let p = self.hsm.registry().policy();
                pb::Policy {
                    allow_weak_rsa: p.allow_weak_rsa,
                    allow_sha1_signatures: p.allow_sha1_signatures,
                    fips_only: p.fips_only,
                }
            }),
        }))
    }

    async fn list_slots(&self, _req: Request<pb::Empty>) -> Reply<pb::SlotList> {
        Ok(Response::new(pb::SlotList {
            slots: self.hsm.slots().collect(),
        }))
    }

    async fn get_token_info(&self, req: Request<pb::SlotRequest>) -> Reply<pb::TokenInfo> {
        let slot = req.get_ref().slot;
        let t = self.hsm.token_info(slot).map_err(|e| rv(e.into()))?;
        Ok(Response::new(pb::TokenInfo {
            label: text(&t.label),
            initialized: t.initialized,
            user_pin_initialized: t.user_pin_initialized,
            user_pin_locked: t.user_pin.locked,
            so_pin_locked: t.so_pin.locked,
            user_pin_failures: t.user_pin.failures,
            so_pin_failures: t.so_pin.failures,
            serial: text(&t.serial),
            min_pin_len: t.min_pin_len as u64,
            max_pin_len: t.max_pin_len as u64,
            max_failed_logins: self.hsm.config().security.max_failed_logins,
            user_pin_count_low: t.user_pin.count_low,
            user_pin_final_try: t.user_pin.final_try,
            so_pin_count_low: t.so_pin.count_low,
            so_pin_final_try: t.so_pin.final_try,
            sessions: t.sessions,
            rw_sessions: t.rw_sessions,
        }))
    }

    async fn get_mechanisms(&self, req: Request<pb::SlotRequest>) -> Reply<pb::MechanismList> {
        self.hsm
            .token_info(req.get_ref().slot)
            .map_err(|e| rv(e.into()))?;
        let mechanisms = self
            .hsm
            .registry()
            .rows()
            .map(|row| pb::MechanismInfo {
                r#type: row.mechanism.0,
                min_key_size: row.min_key_size,
                max_key_size: row.max_key_size,
                flags: craton_store::ck::mechanism_flags(row),
            })
            .collect();
        Ok(Response::new(pb::MechanismList { mechanisms }))
    }

    async fn init_token(&self, req: Request<pb::InitTokenRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let pin = zeroize::Zeroizing::new(r.so_pin);
        self.pin_attempt(&who, move |h| Ok(h.init_token(r.slot, &pin, &r.label)?))
            .await?;
        empty()
    }

    async fn open_session(&self, req: Request<pb::OpenSessionRequest>) -> Reply<pb::SessionReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let app = who.application();
        let s = self
            .run(&who, move |h| {
                Ok(h.open_session_for(r.slot, r.read_write, app)?)
            })
            .await?;
        self.owners
            .write()
            .map_err(|_| rv(ck(CKR_GENERAL_ERROR)))?
            .insert(
                s.0,
                Owner {
                    connection: who.connection,
                    slot: r.slot,
                },
            );
        Ok(Response::new(pb::SessionReply { session: s.0 }))
    }

    async fn close_session(&self, req: Request<pb::SessionRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let s = self.own(&who, req.get_ref().session)?;
        self.run(&who, move |h| Ok(h.close_session(s)?)).await?;
        if let Ok(mut o) = self.owners.write() {
            o.remove(&s.0);
        }
        empty()
    }

    async fn close_all_sessions(&self, req: Request<pb::SlotRequest>) -> Reply<pb::Empty> {
        // Only the caller's own sessions on that slot: other clients keep theirs.
        let who = Service::who(&req);
        let slot = req.get_ref().slot;
        self.hsm.token_info(slot).map_err(|e| rv(e.into()))?;
        let mine: Vec<u64> = self
            .owners
            .read()
            .map_err(|_| rv(ck(CKR_GENERAL_ERROR)))?
            .iter()
            .filter(|(_, o)| o.connection == who.connection && o.slot == slot)
            .map(|(s, _)| *s)
            .collect();
        for s in mine {
            let h = SessionHandle(s);
            match self.run(&who, move |hsm| Ok(hsm.close_session(h)?)).await {
                Ok(()) => {}
                Err(e) if crate::status::rv_of(&e) == CKR_SESSION_HANDLE_INVALID => {}
                Err(e) => return Err(e),
            }
            if let Ok(mut o) = self.owners.write() {
                o.remove(&s);
            }
        }
        empty()
    }

    async fn get_session_info(&self, req: Request<pb::SessionRequest>) -> Reply<pb::SessionInfo> {
        let info = session_only!(self, req, |h, s| h.session_info(s));
        Ok(Response::new(pb::SessionInfo {
            slot: info.slot,
            state: state_number(info.state),
            read_write: info.read_write,
        }))
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let user = user_type(r.user_type)?;
        let pin = zeroize::Zeroizing::new(r.pin);
        self.pin_attempt(&who, move |h| Ok(h.login(s, user, &pin)?))
            .await?;
        empty()
    }

    async fn logout(&self, req: Request<pb::SessionRequest>) -> Reply<pb::Empty> {
        // Not a short call: its audit entry is synced before it returns.
        let who = Service::who(&req);
        let s = self.own(&who, req.into_inner().session)?;
        self.run(&who, move |h| Ok(h.logout(s)?)).await?;
        empty()
    }

    async fn init_pin(&self, req: Request<pb::InitPinRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let pin = zeroize::Zeroizing::new(r.pin);
        self.pin_attempt(&who, move |h| Ok(h.init_pin(s, &pin)?))
            .await?;
        empty()
    }

    async fn set_pin(&self, req: Request<pb::SetPinRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let (old, new) = (
            zeroize::Zeroizing::new(r.old_pin),
            zeroize::Zeroizing::new(r.new_pin),
        );
        self.pin_attempt(&who, move |h| Ok(h.set_pin(s, &old, &new)?))
            .await?;
        empty()
    }

    async fn create_object(&self, req: Request<pb::TemplateRequest>) -> Reply<pb::ObjectReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let t = template(&r.template).map_err(rv)?;
        object(self.run(&who, move |h| Ok(h.create_object(s, &t)?)).await?)
    }

    async fn copy_object(&self, req: Request<pb::ObjectTemplateRequest>) -> Reply<pb::ObjectReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let t = template(&r.template).map_err(rv)?;
        let o = ObjectHandle(r.object);
        object(
            self.run(&who, move |h| Ok(h.copy_object(s, o, &t)?))
                .await?,
        )
    }

    async fn destroy_object(&self, req: Request<pb::ObjectRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let o = ObjectHandle(r.object);
        self.run(&who, move |h| Ok(h.destroy_object(s, o)?)).await?;
        empty()
    }

    async fn get_attribute_value(
        &self,
        req: Request<pb::GetAttributeRequest>,
    ) -> Reply<pb::AttributeValues> {
        use pb::attribute_result::Result as R;
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let o = ObjectHandle(r.object);
        let types: Vec<A> = r.types.iter().map(|t| A(*t)).collect();
        let wanted = types.clone();
        let found = self
            .run(&who, move |h| Ok(h.attribute_values(s, o, &wanted)?))
            .await?;
        let values = types
            .into_iter()
            .zip(found)
            .map(|(t, v)| pb::AttributeResult {
                result: Some(match v {
                    Ok(v) => R::Attribute(convert::attribute_to_pb(t, &v)),
                    Err(e) => R::Error(craton_store::ck::from_attribute(&e)),
                }),
            })
            .collect();
        Ok(Response::new(pb::AttributeValues { values }))
    }

    async fn set_attribute_value(
        &self,
        req: Request<pb::ObjectTemplateRequest>,
    ) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let t = template(&r.template).map_err(rv)?;
        let o = ObjectHandle(r.object);
        self.run(&who, move |h| Ok(h.set_attribute_values(s, o, &t)?))
            .await?;
        empty()
    }

    async fn get_object_size(&self, req: Request<pb::ObjectRequest>) -> Reply<pb::SizeReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let o = ObjectHandle(r.object);
        let size = self.run(&who, move |h| Ok(h.object_size(s, o)?)).await?;
        Ok(Response::new(pb::SizeReply { size }))
    }

    async fn find_objects(&self, req: Request<pb::FindRequest>) -> Reply<pb::ObjectList> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let t = template(&r.template).map_err(rv)?;
        let max = match r.max {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let found = self
            .run(&who, move |h| {
                h.find_objects_init(s, &t)?;
                let found = h.find_objects(s, max);
                h.find_objects_final(s)?;
                Ok(found?)
            })
            .await?;
        Ok(Response::new(pb::ObjectList {
            objects: found.into_iter().map(|o| o.0).collect(),
        }))
    }

    async fn get_public_key_info(&self, req: Request<pb::ObjectRequest>) -> Reply<pb::DataReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let o = ObjectHandle(r.object);
        data(
            self.run(&who, move |h| Ok(h.public_key_info(s, o)?))
                .await?,
        )
    }

    async fn generate_key(&self, req: Request<pb::GenerateKeyRequest>) -> Reply<pb::ObjectReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let t = template(&r.template).map_err(rv)?;
        object(
            self.run(&who, move |h| Ok(h.generate_key(s, &m, &t)?))
                .await?,
        )
    }

    async fn generate_key_pair(
        &self,
        req: Request<pb::GenerateKeyPairRequest>,
    ) -> Reply<pb::KeyPairReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let public = template(&r.public_template).map_err(rv)?;
        let private = template(&r.private_template).map_err(rv)?;
        let (public_key, private_key) = self
            .run(&who, move |h| {
                Ok(h.generate_key_pair(s, &m, &public, &private)?)
            })
            .await?;
        Ok(Response::new(pb::KeyPairReply {
            public_key: public_key.0,
            private_key: private_key.0,
        }))
    }

    async fn wrap_key(&self, req: Request<pb::WrapKeyRequest>) -> Reply<pb::DataReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let (wrapping, key) = (ObjectHandle(r.wrapping_key), ObjectHandle(r.key));
        data(
            self.run(&who, move |h| Ok(h.wrap_key(s, &m, wrapping, key)?))
                .await?,
        )
    }

    async fn unwrap_key(&self, req: Request<pb::UnwrapKeyRequest>) -> Reply<pb::ObjectReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let t = template(&r.template).map_err(rv)?;
        let unwrapping = ObjectHandle(r.unwrapping_key);
        let wrapped = r.wrapped_key;
        object(
            self.run(&who, move |h| {
                Ok(h.unwrap_key(s, &m, unwrapping, &wrapped, &t)?)
            })
            .await?,
        )
    }

    async fn derive_key(&self, req: Request<pb::DeriveKeyRequest>) -> Reply<pb::ObjectReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let t = template(&r.template).map_err(rv)?;
        let base = ObjectHandle(r.base_key);
        object(
            self.run(&who, move |h| Ok(h.derive_key(s, &m, base, &t)?))
                .await?,
        )
    }

    async fn encapsulate_key(
        &self,
        req: Request<pb::EncapsulateRequest>,
    ) -> Reply<pb::EncapsulateReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let t = template(&r.template).map_err(rv)?;
        let public = ObjectHandle(r.public_key);
        let (ciphertext, key) = self
            .run(&who, move |h| Ok(h.encapsulate_key(s, &m, public, &t)?))
            .await?;
        Ok(Response::new(pb::EncapsulateReply {
            object: key.0,
            ciphertext,
        }))
    }

    async fn decapsulate_key(
        &self,
        req: Request<pb::DecapsulateRequest>,
    ) -> Reply<pb::ObjectReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let t = template(&r.template).map_err(rv)?;
        let private = ObjectHandle(r.private_key);
        let ct = r.ciphertext;
        object(
            self.run(&who, move |h| {
                Ok(h.decapsulate_key(s, &m, private, &ct, &t)?)
            })
            .await?,
        )
    }

    async fn sign_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::SignInitReply> {
        sign_init!(self, req, sign_init)
    }

    async fn sign(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        data(session_data!(self, req, |h, s, d| h.sign(s, &d)))
    }

    async fn sign_update(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.sign_update(s, &d));
        empty()
    }

    async fn sign_final(&self, req: Request<pb::SessionRequest>) -> Reply<pb::DataReply> {
        data(session_only!(self, req, |h, s| h.sign_final(s)))
    }

    async fn sign_data(&self, req: Request<pb::SignDataRequest>) -> Reply<pb::DataReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let key = ObjectHandle(r.key);
        data(
            self.run_fast(&who, move |h| {
                h.sign_init(s, &m, key)?;
                let signature = h.sign(s, &r.data);
                if signature.is_err() {
                    // A key that wants its context-specific login would leave the operation
                    // waiting; a one-shot call has no second step, so it ends here.
                    let _ = h.cancel(s, &[OperationKind::Sign]);
                }
                Ok(signature?)
            })
            .await?,
        )
    }

    async fn sign_length(&self, req: Request<pb::SessionRequest>) -> Reply<pb::SizeReply> {
        let size = session_only!(self, req, |h, s| h.signature_len(s));
        Ok(Response::new(pb::SizeReply { size: size as u64 }))
    }

    async fn verify_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::Empty> {
        init_op!(self, req, verify_init)
    }

    async fn verify(&self, req: Request<pb::VerifyRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        self.run_fast(&who, move |h| Ok(h.verify(s, &r.data, &r.signature)?))
            .await?;
        empty()
    }

    async fn verify_update(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.verify_update(s, &d));
        empty()
    }

    async fn verify_final(&self, req: Request<pb::VerifyRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        self.run(&who, move |h| Ok(h.verify_final(s, &r.signature)?))
            .await?;
        empty()
    }

    async fn encrypt_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::InitReply> {
        cipher_init!(self, req, Direction::Encrypt)
    }

    async fn encrypt(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        data(session_data!(self, req, |h, s, d| h.encrypt(s, &d)))
    }

    async fn encrypt_update(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        let out = session_data!(self, req, |h, s, d| h.cipher_update(
            s,
            Direction::Encrypt,
            &d
        ));
        data(out.to_vec())
    }

    async fn encrypt_final(&self, req: Request<pb::SessionRequest>) -> Reply<pb::DataReply> {
        let out = session_only!(self, req, |h, s| h.cipher_final(s, Direction::Encrypt));
        data(out.to_vec())
    }

    async fn decrypt_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::InitReply> {
        cipher_init!(self, req, Direction::Decrypt)
    }

    async fn decrypt(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        let out = session_data!(self, req, |h, s, d| h.cipher(s, Direction::Decrypt, &d));
        data(out.to_vec())
    }

    async fn decrypt_update(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        let out = session_data!(self, req, |h, s, d| h.cipher_update(
            s,
            Direction::Decrypt,
            &d
        ));
        data(out.to_vec())
    }

    async fn decrypt_final(&self, req: Request<pb::SessionRequest>) -> Reply<pb::DataReply> {
        let out = session_only!(self, req, |h, s| h.cipher_final(s, Direction::Decrypt));
        data(out.to_vec())
    }

    async fn digest_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        self.run_fast(&who, move |h| Ok(h.digest_init(s, &m)?))
            .await?;
        empty()
    }

    async fn digest(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        data(session_data!(self, req, |h, s, d| h.digest(s, &d)))
    }

    async fn digest_update(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.digest_update(s, &d));
        empty()
    }

    async fn digest_key(&self, req: Request<pb::ObjectRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let o = ObjectHandle(r.object);
        self.run(&who, move |h| Ok(h.digest_key(s, o)?)).await?;
        empty()
    }

    async fn digest_final(&self, req: Request<pb::SessionRequest>) -> Reply<pb::DataReply> {
        data(session_only!(self, req, |h, s| h.digest_final(s)))
    }

    async fn cancel_operations(&self, req: Request<pb::CancelRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let kinds = if r.kinds.is_empty() {
            ALL_OPERATIONS.to_vec()
        } else {
            r.kinds
                .iter()
                .map(|k| operation_kind(*k))
                .collect::<Result<Vec<_>, _>>()?
        };
        self.run(&who, move |h| Ok(h.cancel(s, &kinds)?)).await?;
        empty()
    }

    async fn get_operation_state(&self, req: Request<pb::SessionRequest>) -> Reply<pb::DataReply> {
        data(session_only!(self, req, |h, s| h.operation_state(s)))
    }

    async fn set_operation_state(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.set_operation_state(s, &d));
        empty()
    }

    async fn seed_random(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.seed_random(s, &d));
        empty()
    }

    async fn find_objects_init(&self, req: Request<pb::TemplateRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let t = template(&r.template).map_err(rv)?;
        self.run(&who, move |h| Ok(h.find_objects_init(s, &t)?))
            .await?;
        empty()
    }

    async fn find_objects_next(&self, req: Request<pb::FindNextRequest>) -> Reply<pb::ObjectList> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let max = match r.max {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let found = self.run(&who, move |h| Ok(h.find_objects(s, max)?)).await?;
        Ok(Response::new(pb::ObjectList {
            objects: found.into_iter().map(|o| o.0).collect(),
        }))
    }

    async fn find_objects_final(&self, req: Request<pb::SessionRequest>) -> Reply<pb::Empty> {
        session_only!(self, req, |h, s| h.find_objects_final(s));
        empty()
    }

    async fn wrap_key_length(&self, req: Request<pb::WrapKeyRequest>) -> Reply<pb::SizeReply> {
        size(wrap_request!(self, req, |h, s, m, w, k| h.wrap_key_len(s, &m, w, k)))
    }

    async fn wrap_key_authenticated(
        &self,
        req: Request<pb::WrapKeyRequest>,
    ) -> Reply<pb::MessageReply> {
        let out = wrap_request!(self, req, |h, s, m, w, k| h
            .wrap_key_authenticated(s, &m, w, k));
        Ok(Response::new(pb::MessageReply {
            data: out.data.to_vec(),
            generated_iv: out.iv,
        }))
    }

    async fn wrap_key_authenticated_length(
        &self,
        req: Request<pb::WrapKeyRequest>,
    ) -> Reply<pb::SizeReply> {
        size(wrap_request!(self, req, |h, s, m, w, k| h
            .wrap_key_authenticated_len(s, &m, w, k)))
    }

    async fn encapsulate_key_length(
        &self,
        req: Request<pb::EncapsulateRequest>,
    ) -> Reply<pb::SizeReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let public = ObjectHandle(r.public_key);
        size(
            self.run(&who, move |h| Ok(h.encapsulate_key_len(s, &m, public)?))
                .await?,
        )
    }

    async fn sign_recover_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::SignInitReply> {
        sign_init!(self, req, sign_recover_init)
    }

    async fn sign_recover(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        data(session_data!(self, req, |h, s, d| h.sign_recover(s, &d)))
    }

    async fn verify_recover_init(&self, req: Request<pb::OperationInit>) -> Reply<pb::Empty> {
        init_op!(self, req, verify_recover_init)
    }

    async fn verify_recover(&self, req: Request<pb::DataRequest>) -> Reply<pb::DataReply> {
        data(session_data!(self, req, |h, s, d| h.verify_recover(s, &d)))
    }

    async fn verify_signature_init(
        &self,
        req: Request<pb::VerifySignatureInitRequest>,
    ) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let key = ObjectHandle(r.key);
        let signature = r.signature;
        self.run(&who, move |h| {
            Ok(h.verify_signature_init(s, &m, key, &signature)?)
        })
        .await?;
        empty()
    }

    async fn verify_signature(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.verify_signature(s, &d));
        empty()
    }

    async fn verify_signature_update(&self, req: Request<pb::DataRequest>) -> Reply<pb::Empty> {
        session_data!(self, req, |h, s, d| h.verify_signature_update(s, &d));
        empty()
    }

    async fn verify_signature_final(&self, req: Request<pb::SessionRequest>) -> Reply<pb::Empty> {
        session_only!(self, req, |h, s| h.verify_signature_final(s));
        empty()
    }

    async fn message_init(&self, req: Request<pb::MessageInitRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let kind = message_kind(r.kind)?;
        let m = mechanism(r.mechanism.as_ref()).map_err(rv)?;
        let key = ObjectHandle(r.key);
        self.run(&who, move |h| Ok(h.message_init(s, kind, &m, key)?))
            .await?;
        empty()
    }

    async fn message_final(&self, req: Request<pb::MessageKindRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let kind = message_kind(r.kind)?;
        self.run(&who, move |h| Ok(h.message_final(s, kind)?))
            .await?;
        empty()
    }

    async fn message_begin(
        &self,
        req: Request<pb::MessageBeginRequest>,
    ) -> Reply<pb::MessageBeginReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let kind = message_kind(r.kind)?;
        let m = per_message(r.mechanism.as_ref())?;
        let generated_iv = self
            .run(&who, move |h| Ok(h.message_begin(s, kind, m)?))
            .await?;
        Ok(Response::new(pb::MessageBeginReply { generated_iv }))
    }

    async fn message_part(&self, req: Request<pb::MessagePartRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let kind = message_kind(r.kind)?;
        let part = r.data;
        self.run(&who, move |h| Ok(h.message_part(s, kind, &part)?))
            .await?;
        empty()
    }

    async fn cipher_message(
        &self,
        req: Request<pb::CipherMessageRequest>,
    ) -> Reply<pb::MessageReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let d = match message_kind(r.kind)? {
            MessageKind::Encrypt => Direction::Encrypt,
            MessageKind::Decrypt => Direction::Decrypt,
            _ => return Err(rv(ck(CKR_ARGUMENTS_BAD))),
        };
        let m = per_message(r.mechanism.as_ref())?;
        let input = r.data;
        let out = self
            .run(&who, move |h| {
                Ok(h.cipher_message(s, d, m.as_ref(), &input)?)
            })
            .await?;
        Ok(Response::new(pb::MessageReply {
            data: out.data.to_vec(),
            generated_iv: out.iv,
        }))
    }

    async fn sign_message(&self, req: Request<pb::SignMessageRequest>) -> Reply<pb::DataReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        data(
            self.run(&who, move |h| {
                Ok(h.sign_message(s, &r.data, r.last_part)?)
            })
            .await?,
        )
    }

    async fn verify_message(&self, req: Request<pb::VerifyMessageRequest>) -> Reply<pb::Empty> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        self.run(&who, move |h| {
            Ok(h.verify_message(s, &r.data, r.last_part, &r.signature)?)
        })
        .await?;
        empty()
    }

    async fn get_output_length(
        &self,
        req: Request<pb::OutputLengthRequest>,
    ) -> Reply<pb::OutputLengthReply> {
        use pb::OutputKind as K;
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let kind = K::try_from(r.kind).map_err(|_| rv(ck(CKR_ARGUMENTS_BAD)))?;
        let d = direction(r.decrypt);
        let n = usize::try_from(r.input_length).map_err(|_| rv(ck(CKR_DATA_LEN_RANGE)))?;
        let message = message_kind(r.message_kind)?;
        let length = self
            .run(&who, move |h| {
                Ok(match kind {
                    K::Cipher => Some(h.cipher_len(s, d, n)?),
                    K::CipherUpdate => Some(h.cipher_update_len(s, d, n)?),
                    K::CipherFinal => Some(h.cipher_final_len(s, d)?),
                    K::Signature => Some(h.signature_len(s)?),
                    K::Digest => Some(h.digest_len(s)?),
                    K::MessageSignature => Some(h.message_signature_len(s)?),
                    K::MessagePending => h.message_pending_len(s, message)?,
                })
            })
            .await?;
        Ok(Response::new(pb::OutputLengthReply {
            length: length.map(|n| n as u64),
        }))
    }

    async fn generate_random(&self, req: Request<pb::RandomRequest>) -> Reply<pb::DataReply> {
        let who = Service::who(&req);
        let r = req.into_inner();
        let s = self.own(&who, r.session)?;
        let n = r.length as usize;
        if n > self.max_random {
            return Err(rv(ck(CKR_ARGUMENTS_BAD)));
        }
        data(
            self.run(&who, move |h| {
                let mut out = vec![0u8; n];
                h.generate_random(s, &mut out)?;
                Ok(out)
            })
            .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> Identity {
        Identity {
            fingerprint: name.into(),
            connection: 1,
            caller: Caller::Client(name.into()).json(),
        }
    }

    #[test]
    fn only_failed_pin_attempts_use_up_the_allowance() {
        let limiter = PinLimiter {
            per_minute: 3,
            buckets: Mutex::new(HashMap::new()),
        };
        let (alice, bob) = (client("alice"), client("bob"));
        // Alice logs in rightly a hundred times in a row: each attempt is given back.
        for _ in 0..100 {
            assert!(limiter.allow(&alice));
            limiter.refund(&alice);
        }
        // Bob guesses: three attempts, then refused, and Alice is not affected.
        for _ in 0..3 {
            assert!(limiter.allow(&bob));
        }
        assert!(!limiter.allow(&bob));
        assert!(limiter.allow(&alice));
        // A refund never lifts a bucket above the allowance.
        for _ in 0..10 {
            limiter.refund(&alice);
        }
        for _ in 0..3 {
            assert!(limiter.allow(&alice));
        }
        assert!(!limiter.allow(&alice));
    }
}
