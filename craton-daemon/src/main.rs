//! `craton-hsm-daemon`: serves the Craton HSM token over gRPC behind mutual TLS.

use clap::Parser;
use craton_daemon::server::{self, Server};
use craton_daemon::service::Service;
use craton_daemon::{harden, log, notify};
use craton_store::config::{Config, LogFormat};
use craton_store::{Event, Hsm};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage, 3 configuration or setup refused.
#[derive(Debug, Parser)]
#[command(
    name = "craton-hsm-daemon",
    version,
    about = "Serve the Craton HSM token over gRPC with mutual TLS",
    after_help = "\
The configuration is found at --config, then $CRATON_HSM_CONFIG, then
/etc/craton-hsm/craton_hsm.toml, then the embedded default. The [daemon] table sets the
listen address (default 127.0.0.1:8443), server certificates, the client CA bundle, CRLs
and the optional client fingerprint allow-list.

Signals: SIGHUP re-reads certificates, keys, the CA bundle and CRLs without dropping
connections (a bad file keeps the old material); SIGTERM and SIGINT stop accepting, let
calls in flight finish, seal the audit log and exit.

Under systemd (Type=notify) it reports READY=1 after the self-test and store open,
RELOADING=1/READY=1 around a reload, and STOPPING=1 on shutdown.

Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage, 3 configuration refused.

Examples:
  craton-hsm-daemon --config /etc/craton-hsm/craton_hsm.toml
  craton-hsm-daemon --config ./craton_hsm.toml --check"
)]
struct Args {
    /// The configuration file.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Check the configuration and TLS material, then exit without serving.
    #[arg(long)]
    check: bool,
    /// Run even as root (the service account is the safe choice).
    #[arg(long)]
    allow_root: bool,
}

/// How long calls in flight may take to finish after SIGTERM before connections are cut.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn fail(code: u8, what: &str, error: &dyn std::fmt::Display) -> ExitCode {
    log::error(what, &[("error", error)]);
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (mut config, _) = match Config::discover(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(3, "configuration refused", &e),
    };
    log::set_json(config.daemon.log_format == LogFormat::Json);
    if config.client.is_some() {
        return fail(
            3,
            "configuration refused",
            &"the [client] table is for remote clients; the daemon serves a local store",
        );
    }
    if let Err(e) = harden::apply(args.allow_root) {
        return fail(3, "hardening failed", &e);
    }
    // The daemon has its own threads: per-operation audit entries are group-committed.
    config.audit.sync_operation_entries = false;
    let development = config.security.development_build;
    let integrity = check_integrity();
    let hsm = match Hsm::open(config.clone()) {
        Ok(h) => Arc::new(h),
        Err(e) => return fail(3, "store or self-test refused", &e),
    };
    let (exe, outcome) = integrity;
    if let Err(e) = hsm.report(Event::IntegrityChecked {
        module: exe.clone(),
        passed: outcome.is_ok(),
        detail: outcome.clone().err().unwrap_or_default(),
        enforced: !development,
    }) {
        return fail(1, "audit log unavailable", &e);
    }
    if let Err(why) = outcome {
        if !development {
            hsm.fail_self_test(craton_core::post::PostFailure::Integrity);
            return fail(3, "integrity check failed", &format!("{exe}: {why}"));
        }
        log::warn(
            "integrity check failed (allowed: development build)",
            &[("file", &exe), ("why", &why)],
        );
    }
    let service = Arc::new(Service::new(
        hsm.clone(),
        config.daemon.pin_attempts_per_minute,
        config.daemon.max_request_bytes,
    ));
    let server = match Server::new(service, config.daemon.clone()) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(3, "TLS configuration refused", &e),
    };
    if args.check {
        log::info("configuration and TLS material are usable", &[]);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("craton-rpc")
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(1, "cannot start the runtime", &e),
    };
    let _ = hsm.report(Event::Frontend {
        frontend: "daemon",
        pid: std::process::id(),
        attached: true,
    });
    let addr = config.daemon.listen_addr;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        log::info(
            "serving",
            &[("listen", &addr), ("config", &config.origin())],
        );
        let _ = notify::notify(&format!("READY=1\nSTATUS=serving on {addr}"));
        tokio::spawn(server::reload_loop(server.clone()));
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopping = stop.clone();
        let serve = server.clone().serve(listener, async move {
            shutdown_signal().await;
            stopping.notify_waiters();
        });
        let deadline = async {
            stop.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            r = serve => r.map_err(|e| format!("server failed: {e}")),
            () = deadline => {
                log::warn("connections still open after the grace period; closing them", &[]);
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let _ = hsm.report(Event::Frontend {
        frontend: "daemon",
        pid: std::process::id(),
        attached: false,
    });
    drop(server);
    // The last reference: dropping it seals the audit log and closes the store.
    drop(hsm);
    match result {
        Ok(()) => {
            log::info("stopped", &[]);
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, "stopped on error", &e),
    }
}

/// Resolves on SIGTERM or SIGINT, after telling systemd.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error("cannot watch SIGTERM/SIGINT", &[]);
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let _ = notify::notify("STOPPING=1");
    log::info("shutting down: finishing calls in flight", &[]);
}

/// Checks this executable against `craton-hsm-daemon.hmac` beside it.
fn check_integrity() -> (String, Result<(), String>) {
    match std::env::current_exe() {
        Ok(exe) => (
            exe.display().to_string(),
            craton_store::integrity::verify_module(&exe),
        ),
        Err(e) => (
            "craton-hsm-daemon".to_owned(),
            Err(format!("cannot locate the running executable: {e}")),
        ),
    }
}
