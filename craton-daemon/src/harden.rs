//! What the daemon does to itself before it holds a key: no core dumps, no ptrace attach by
//! other processes of the same user, a check that key material can be locked in memory, and
//! a refusal to run as root unless told to.

use crate::log;
use rustix::process::{DumpableBehavior, Resource, Rlimit};

/// Why the daemon will not start hardened.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// Running as root without `--allow-root`.
    #[error(
        "refusing to run as root: run as the craton-hsm service account (the systemd unit \
         does), or pass --allow-root if you really mean it"
    )]
    Root,
    /// A setting could not be applied.
    #[error("cannot {what}: {source}")]
    Apply {
        /// What.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// Applies the process hardening. Returns whether key material can be locked in memory.
pub fn apply(allow_root: bool) -> Result<bool, HardenError> {
    if rustix::process::geteuid().is_root() && !allow_root {
        return Err(HardenError::Root);
    }
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| HardenError::Apply {
        what: "disable core dumps (RLIMIT_CORE)",
        source: e.into(),
    })?;
    // Not dumpable: no core file, and processes of the same uid cannot ptrace-attach or read
    // /proc/<pid>/mem.
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| {
        HardenError::Apply {
            what: "mark the process not dumpable (PR_SET_DUMPABLE)",
            source: e.into(),
        }
    })?;
    let probe = craton_core::secret::SecretBytes::new(&[0u8; 4096]);
    let locked = probe.is_locked();
    if !locked {
        let limit = rustix::process::getrlimit(Resource::Memlock);
        let shown = limit
            .current
            .map_or("unlimited".to_owned(), |n| format!("{n} bytes"));
        log::warn(
            "key material cannot be locked in memory and may be swapped out",
            &[
                ("memlock_limit", &shown),
                (
                    "fix",
                    &"grant CAP_IPC_LOCK (AmbientCapabilities=CAP_IPC_LOCK) or raise LimitMEMLOCK",
                ),
            ],
        );
    }
    Ok(locked)
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_dumps_are_off_after_hardening() {
        // Root in CI: allow it here; the refusal itself is tested through the binary.
        super::apply(true).expect("hardening applies");
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(core.current, Some(0));
        assert_eq!(
            rustix::process::dumpable_behavior().expect("prctl"),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
