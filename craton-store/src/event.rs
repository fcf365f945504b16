//! Security events the engine reports to whoever listens (the audit log).
//!
//! The engine calls [`EventSink::record`] before the call that caused the event returns.
//! Events carry handles, mechanism numbers and counts, never key bytes or PINs.

use craton_core::MechanismType;

/// Who is authenticating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    /// The security officer.
    So,
    /// The normal user.
    User,
    /// The user, re-authenticating for one operation on a `CKA_ALWAYS_AUTHENTICATE` key.
    ContextSpecific,
}

/// How a key came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Generated in the token.
    Generated,
    /// Imported with `C_CreateObject`.
    Imported,
    /// Unwrapped.
    Unwrapped,
    /// Derived.
    Derived,
    /// Copied.
    Copied,
}

/// A security-relevant event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A token was (re)initialised; its objects are gone.
    TokenInitialized {
        /// Slot.
        slot: u64,
    },
    /// The SO set the user PIN.
    PinInitialized {
        /// Slot.
        slot: u64,
    },
    /// A PIN was changed.
    PinChanged {
        /// Slot.
        slot: u64,
        /// Whose PIN.
        user: UserType,
    },
    /// A login attempt.
    Login {
        /// Slot.
        slot: u64,
        /// Session used.
        session: u64,
        /// Who.
        user: UserType,
        /// Whether it succeeded.
        success: bool,
        /// Consecutive failures after this attempt.
        failures: u32,
        /// The lockout threshold.
        threshold: u32,
    },
    /// A PIN is two failures (or fewer) away from locking.
    PinNearLockout {
        /// Slot.
        slot: u64,
        /// Whose PIN.
        user: UserType,
        /// Attempts left.
        remaining: u32,
    },
    /// A PIN locked.
    PinLocked {
        /// Slot.
        slot: u64,
        /// Whose PIN.
        user: UserType,
    },
    /// A logout.
    Logout {
        /// Slot.
        slot: u64,
    },
    /// A key or key pair came into existence.
    KeyCreated {
        /// Slot.
        slot: u64,
        /// Handles created (one, or public and private).
        handles: Vec<u64>,
        /// Mechanism used, if any.
        mechanism: Option<MechanismType>,
        /// How.
        origin: KeyOrigin,
    },
    /// An object was destroyed.
    ObjectDestroyed {
        /// Slot.
        slot: u64,
        /// Handle.
        handle: u64,
    },
    /// An AES-GCM key is at 90% or more of its invocation limit (`refused` false), or at the
    /// limit and an encryption was refused (`refused` true).
    GcmInvocations {
        /// Slot.
        slot: u64,
        /// The key.
        key: u64,
        /// Invocations used, including this one.
        used: u64,
        /// The configured limit.
        limit: u64,
        /// Whether this encryption was refused.
        refused: bool,
    },
    /// The random generator failed (entropy source or health test); it stays failed.
    RandomFailure {
        /// Slot of the session that asked.
        slot: u64,
        /// What failed.
        detail: String,
    },
    /// This store was restored from a backup (reported once, at the first start after).
    Restored {
        /// When the backup was made (Unix seconds).
        created: u64,
    },
    /// An encrypted backup was made.
    BackupCreated {
        /// Tokens in it.
        tokens: usize,
        /// Objects in it.
        objects: usize,
        /// Whether a passphrase (rather than an operator key) protects it.
        passphrase: bool,
    },
    /// The engine started: power-on self-tests passed.
    ModuleStarted {
        /// Known-answer tests run.
        kats: usize,
        /// How long POST took, in microseconds.
        post_micros: u64,
        /// Where the configuration came from (a path, or "embedded default").
        config: String,
        /// The store file opened.
        store: String,
    },
    /// Key pages cannot be locked in memory (no `CAP_IPC_LOCK`, or `RLIMIT_MEMLOCK` too
    /// small): secrets may be swapped out. Reported once, when the engine opens.
    MemoryNotLocked,
    /// A stored record failed authentication or decoding and was left out; the rest of the
    /// token loaded normally.
    RecordCorrupt {
        /// Slot.
        slot: u64,
        /// Which record and why (path, table, id; never contents).
        detail: String,
    },
    /// A frontend checked its own executable file against its integrity sidecar (the
    /// PKCS#11 module checks `libcraton_hsm.so` against `libcraton_hsm.hmac`).
    IntegrityChecked {
        /// The file checked.
        module: String,
        /// Whether it matched.
        passed: bool,
        /// Why it did not (missing sidecar, mismatch…); empty when it passed.
        detail: String,
        /// Whether a failure stops the module (false only in a development build).
        enforced: bool,
    },
    /// A frontend attached to the engine (`C_Initialize`) or detached from it
    /// (`C_Finalize`).
    Frontend {
        /// Which frontend ("pkcs11", "daemon", "cli").
        frontend: &'static str,
        /// Its process id.
        pid: u32,
        /// Attached (true) or detached (false).
        attached: bool,
    },
    /// The daemon refused a connection: a failed TLS handshake (wrong CA, revoked, stale
    /// CRL, no ALPN `h2`, old protocol…) or a certificate outside the allow-list.
    ConnectionRefused {
        /// The peer's address.
        peer: String,
        /// Why, as rustls or the daemon's own check gave it.
        reason: String,
    },
    /// The daemon read its certificate revocation lists; `stale` names the files that no
    /// longer count (past `nextUpdate` or older than the configured maximum age), whose
    /// issuers' clients are refused until a fresh list arrives.
    CrlsLoaded {
        /// Lists in force.
        fresh: u64,
        /// Files that are missing, malformed or out of date, with the reason.
        stale: Vec<String>,
    },
    /// The daemon re-read its TLS material (`SIGHUP`); on failure it keeps the old material.
    TlsReloaded {
        /// Whether the new material is in force.
        success: bool,
        /// Why not, when it is not.
        detail: String,
    },
    /// A daemon client made PIN attempts faster than its allowance; the attempt was refused
    /// before reaching the token.
    PinAttemptsThrottled,
    /// A cryptographic operation finished (successfully or not).
    Operation {
        /// Slot.
        slot: u64,
        /// Session.
        session: u64,
        /// What kind (sign, verify, encrypt, decrypt, wrap, unwrap, derive, encapsulate,
        /// decapsulate).
        kind: &'static str,
        /// Mechanism.
        mechanism: MechanismType,
        /// Key handle.
        key: u64,
        /// Whether it succeeded.
        success: bool,
    },
}

/// Receives events; implemented by the audit log.
pub trait EventSink: Send + Sync {
    /// Records one event. Called before the operation that caused it returns.
    fn record(&self, event: &Event);

    /// Whether this sink drops every event unseen. An engine with such a sink and no audit
    /// log records no events at all, and does not even build those of cryptographic
    /// operations (the only ones on every call's path).
    fn is_silent(&self) -> bool {
        false
    }
}

/// Forwards every event to several sinks (the audit log and a caller's own).
pub(crate) struct Tee(pub(crate) Vec<std::sync::Arc<dyn EventSink>>);

impl EventSink for Tee {
    fn record(&self, event: &Event) {
        for s in &self.0 {
            s.record(event);
        }
    }

    fn is_silent(&self) -> bool {
        self.0.iter().all(|s| s.is_silent())
    }
}

/// A sink that drops everything (embedding without an audit log).
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn record(&self, _event: &Event) {}

    fn is_silent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Listening;
    impl EventSink for Listening {
        fn record(&self, _event: &Event) {}
    }

    #[test]
    fn a_tee_is_silent_only_when_every_sink_it_feeds_is() {
        assert!(NoEvents.is_silent());
        assert!(
            !Listening.is_silent(),
            "a sink is listening unless it says otherwise"
        );
        assert!(Tee(vec![Arc::new(NoEvents), Arc::new(NoEvents)]).is_silent());
        assert!(!Tee(vec![Arc::new(NoEvents), Arc::new(Listening)]).is_silent());
    }
}
