//! The crate's one `static`: the engine `C_Initialize` opened, until `C_Finalize`.
//!
//! Every call takes a reference-counted handle to the module under a read lock and works with
//! no lock of ours held; `C_Finalize` removes the module, and the engine closes (sealing its
//! audit log) once the last call still running lets go of it. After `fork()` the child sees
//! no module: the parent's engine, its store lock and its threads are not the child's to use
//! or to close.
//!
//! The module is published in [`SHARDS`] copies, each behind its own lock on its own cache
//! lines, each a handle of its own on the one engine; a thread uses the copy it was assigned
//! on its first call. So the read lock and the reference count every call takes are on lines
//! no other thread writes, and calls on several threads do not queue for one cache line.

use crate::ffi::{self, CkResult};
use craton_core::post::PostFailure;
use craton_store::{Config, Engine, Event, Hsm};
use cryptoki_sys::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// An initialised module.
#[derive(Debug)]
pub(crate) struct Module {
    /// The token: the engine in this process, or the daemon's in remote mode.
    pub(crate) hsm: Arc<dyn Engine>,
    /// The engine in this process (none in remote mode), for what only it has: the audit log.
    local: Option<Arc<Hsm>>,
    /// The fork generation this module was opened in.
    generation: u64,
}

/// What a call holds: a handle on the engine, one per shard. Dereferences to the module.
#[derive(Debug)]
pub(crate) struct Handle(Arc<Module>);

impl std::ops::Deref for Handle {
    type Target = Module;

    fn deref(&self) -> &Module {
        &self.0
    }
}

/// How many copies of the module are published.
const SHARDS: usize = 16;

#[repr(align(128))]
struct Shard(RwLock<Option<Arc<Handle>>>);

static MODULE: [Shard; SHARDS] = [const { Shard(RwLock::new(None)) }; SHARDS];

/// The shard of the calling thread, assigned round-robin on its first call.
fn my_shard() -> &'static RwLock<Option<Arc<Handle>>> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    &MODULE[INDEX.with(|i| *i)].0
}

/// Write-locks every shard, in order (so two writers never deadlock).
fn lock_all() -> Vec<std::sync::RwLockWriteGuard<'static, Option<Arc<Handle>>>> {
    MODULE
        .iter()
        .map(|s| s.0.write().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Bumped in the child after every `fork()`.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Wakes `C_WaitForSlotEvent` callers when the module is finalised.
static FINALIZED: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

/// Called by the fork handler in the child.
pub(crate) fn forked() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The initialised module, or `CKR_CRYPTOKI_NOT_INITIALIZED`.
pub(crate) fn module() -> CkResult<Arc<Handle>> {
    let guard = my_shard().read().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(m) if m.generation == FORK_GENERATION.load(Ordering::Acquire) => Ok(m.clone()),
        _ => Err(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

/// What `CK_C_INITIALIZE_ARGS` asked for, once checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitOptions {
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS` was not set.
    pub(crate) may_create_threads: bool,
}

/// `C_Initialize`: loads the configuration, opens the engine (which runs POST), checks the
/// integrity of the module file and records the start in the audit log.
pub(crate) fn initialize(options: InitOptions) -> CkResult<()> {
    ffi::watch_fork();
    let generation = FORK_GENERATION.load(Ordering::Acquire);
    let mut shards = lock_all();
    if shards[0]
        .as_ref()
        .is_some_and(|m| m.generation == generation)
    {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    for shard in &mut shards {
        if let Some(m) = shard.take() {
            // Inherited from the parent across fork(): its store lock, log and threads belong
            // to the parent, so it must be neither used nor closed (closing would seal the
            // parent's audit log from here).
            std::mem::forget(m);
        }
    }
    let (mut config, _) =
        Config::discover(None).map_err(|e| refuse(&e.to_string(), CKR_GENERAL_ERROR))?;
    let development = config.security.development_build;
    if let Some(client) = config.client.clone() {
        let module = Arc::new(open_remote(
            &client,
            options,
            development,
            check_integrity(),
            generation,
        )?);
        publish(&mut shards, &module);
        return Ok(());
    }
    if !options.may_create_threads {
        // The engine's only thread syncs per-operation audit entries in the background;
        // without it every entry is synced before its call returns (p11-kit, and so GnuTLS,
        // always initialise modules this way).
        config.audit.sync_operation_entries = true;
        config.audit.batch_operation_entries = false;
    }
    // Hashing the module file, and the self-tests plus the store's opening, take a few
    // milliseconds each; when the application lets the module start threads they run side by
    // side. The engine serves nothing until both are done and the outcome is recorded.
    let (opened, integrity) = if options.may_create_threads {
        std::thread::scope(|s| {
            let hashing = s.spawn(check_integrity);
            let opened = Hsm::open(config);
            let integrity = hashing.join().unwrap_or_else(|_| {
                (
                    "<unknown>".to_owned(),
                    Err("the integrity check stopped unexpectedly".to_owned()),
                )
            });
            (opened, integrity)
        })
    } else {
        let integrity = check_integrity();
        (Hsm::open(config), integrity)
    };
    let hsm = opened.map_err(|e| refuse(&e.to_string(), CKR_FUNCTION_FAILED))?;
    let (module_path, outcome) = integrity;
    hsm.report(Event::IntegrityChecked {
        module: module_path.clone(),
        passed: outcome.is_ok(),
        detail: outcome.clone().err().unwrap_or_default(),
        enforced: !development,
    })
    .map_err(|e| refuse(&e.to_string(), CKR_FUNCTION_FAILED))?;
    if let Err(why) = outcome
        && !development
    {
        hsm.fail_self_test(PostFailure::Integrity);
        return Err(refuse(
            &format!("integrity check of {module_path} failed: {why}"),
            CKR_FUNCTION_FAILED,
        ));
    }
    hsm.report(Event::Frontend {
        frontend: "pkcs11",
        pid: std::process::id(),
        attached: true,
    })
    .map_err(|e| refuse(&e.to_string(), CKR_FUNCTION_FAILED))?;
    let hsm = Arc::new(hsm);
    let module = Arc::new(Module {
        hsm: hsm.clone(),
        local: Some(hsm),
        generation,
    });
    publish(&mut shards, &module);
    Ok(())
}

/// Remote mode: the token is the daemon's, reached over mutual TLS. There is no local store
/// or audit log; the daemon audits every call under this client's certificate. The module
/// file is still checked, since it is what holds the client's key while it runs.
fn open_remote(
    client: &craton_store::config::ClientConfig,
    options: InitOptions,
    development: bool,
    (module_path, outcome): (String, Result<(), String>),
    generation: u64,
) -> CkResult<Module> {
    match outcome {
        Err(why) if !development => {
            return Err(refuse(
                &format!("integrity check of {module_path} failed: {why}"),
                CKR_FUNCTION_FAILED,
            ));
        }
        Err(why) => eprintln!(
            "craton-hsm: integrity check of {module_path} failed ({why}); \
             continuing because security.development_build is set"
        ),
        Ok(()) => {}
    }
    let remote = craton_daemon::client::RemoteHsm::connect_with(client, options.may_create_threads)
        .map_err(|e| refuse(&format!("remote mode: {e}"), CKR_FUNCTION_FAILED))?;
    Ok(Module {
        hsm: Arc::new(remote),
        local: None,
        generation,
    })
}

/// Makes `module` the one every call sees.
fn publish(
    shards: &mut [std::sync::RwLockWriteGuard<'static, Option<Arc<Handle>>>],
    module: &Arc<Module>,
) {
    for shard in shards.iter_mut() {
        **shard = Some(Arc::new(Handle(module.clone())));
    }
}

/// `C_Finalize`.
pub(crate) fn finalize() -> CkResult<()> {
    let m = {
        let mut shards = lock_all();
        match shards[0].as_ref() {
            Some(m) if m.generation == FORK_GENERATION.load(Ordering::Acquire) => {}
            _ => return Err(CKR_CRYPTOKI_NOT_INITIALIZED),
        }
        let handles: Vec<_> = shards.iter_mut().filter_map(|s| s.take()).collect();
        handles.first().map(|h| h.0.clone())
    };
    if let Some(local) = m.as_ref().and_then(|m| m.local.as_ref()) {
        // The engine closes when the last running call drops its handle.
        let _ = local.report(Event::Frontend {
            frontend: "pkcs11",
            pid: std::process::id(),
            attached: false,
        });
    }
    let (count, wake) = &FINALIZED;
    *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    wake.notify_all();
    Ok(())
}

/// Blocks until the module is finalised (the slots of this module never change otherwise).
pub(crate) fn wait_for_finalize() {
    let (count, wake) = &FINALIZED;
    let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
    let start = *n;
    // `finalize` clears the module before it bumps the count under this lock, so either the
    // module is already gone here or the bump (and its notification) comes after the wait.
    while *n == start && module().is_ok() {
        n = wake.wait(n).unwrap_or_else(|e| e.into_inner());
    }
}

/// An initialisation failure: the reason goes to standard error (the caller only gets a
/// number, and an operator needs the words), then the code.
fn refuse(reason: &str, rv: CK_RV) -> CK_RV {
    eprintln!("craton-hsm: C_Initialize failed: {reason}");
    rv
}

/// Checks the file this code was loaded from against the sidecar beside it
/// (`libcraton_hsm.so` → `libcraton_hsm.hmac`). Returns the path checked and the outcome.
fn check_integrity() -> (String, Result<(), String>) {
    let Some(path) = ffi::own_path() else {
        return (
            "<unknown>".to_owned(),
            Err("cannot locate the module file".to_owned()),
        );
    };
    let shown = path.display().to_string();
    (shown, craton_store::integrity::verify_module(&path))
}
