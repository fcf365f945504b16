//! `craton_hsm.toml`: the one configuration file of every frontend.
//!
//! Found by an explicit path (`--config`), then `CRATON_HSM_CONFIG`, then
//! `/etc/craton-hsm/craton_hsm.toml`, then the embedded default, which keeps state under the
//! user's data directory so the module works with no file at all. Unknown keys are refused
//! with their name and line; values out of range are refused with the key's dotted name.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The system-wide configuration path.
pub const SYSTEM_CONFIG: &str = "/etc/craton-hsm/craton_hsm.toml";
/// The environment variable naming a configuration file.
pub const CONFIG_ENV: &str = "CRATON_HSM_CONFIG";
/// The iteration count PIN-derived keys get unless the configuration says otherwise.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type (the
    /// message names the key and its line).
    #[error("configuration {path}: {message}")]
    Parse {
        /// The file (or `<embedded default>`).
        path: String,
        /// toml's message, with the key and line.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Slots and tokens.
    pub token: TokenConfig,
    /// PIN and store protection.
    pub security: SecurityConfig,
    /// Which algorithms the tokens offer.
    pub algorithms: AlgorithmsConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// The gRPC daemon.
    pub daemon: DaemonConfig,
    /// Remote mode of the PKCS#11 module and the CLI.
    pub client: Option<ClientConfig>,
    /// Where this configuration was read from (for the audit log); not a file key.
    #[serde(skip)]
    origin: Option<String>,
}

/// `[token]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// How many slots (each with one token), 1..=64.
    pub slots: u32,
    /// Where `state.redb` lives. Default: `$XDG_DATA_HOME/craton-hsm` or
    /// `~/.local/share/craton-hsm`.
    pub state_dir: Option<PathBuf>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            slots: 1,
            state_dir: None,
        }
    }
}

/// `[security]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// PBKDF2-HMAC-SHA-256 iterations for PIN-derived keys (at least 1 000; the default
    /// 600 000 follows OWASP's current advice for PBKDF2-SHA-256).
    pub pbkdf2_iterations: u32,
    /// Consecutive wrong PINs before the PIN locks (1..=100).
    pub max_failed_logins: u32,
    /// Shortest PIN accepted, in bytes.
    pub pin_min_len: usize,
    /// Longest PIN accepted, in bytes.
    pub pin_max_len: usize,
    /// A development build may run without a matching integrity sidecar (audited either
    /// way). Never set this in production.
    pub development_build: bool,
    /// Per-key AES-GCM encryption limit (SP 800-38D: 2^32 invocations with random IVs).
    pub gcm_invocation_limit: u64,
    /// Permit keys that can both wrap and decrypt, or unwrap and encrypt. Off by default:
    /// such a key lets a caller wrap a sensitive key and then decrypt it into the clear.
    pub allow_dual_use_wrapping_keys: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            pbkdf2_iterations: DEFAULT_PBKDF2_ITERATIONS,
            max_failed_logins: 10,
            pin_min_len: 4,
            pin_max_len: 255,
            development_build: false,
            gcm_invocation_limit: 1 << 32,
            allow_dual_use_wrapping_keys: false,
        }
    }
}

/// `[algorithms]`: what tokens offer beyond the safe defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmsConfig {
    /// Allow 1024-bit RSA keys.
    pub allow_weak_rsa: bool,
    /// Allow creating SHA-1 signatures.
    pub allow_sha1_signatures: bool,
    /// Offer only FIPS-approved mechanisms.
    pub fips_only: bool,
}

/// How much the audit log records.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AuditLevel {
    /// Every security-relevant event including each cryptographic operation.
    #[default]
    All,
    /// Key management and authentication only.
    KeyManagement,
    /// Nothing (benchmarks only).
    None,
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The log file. Default: `audit.log` in the state directory.
    pub path: Option<PathBuf>,
    /// What is recorded.
    pub level: AuditLevel,
    /// Rotate when the file reaches this many bytes (0: never by size).
    pub rotate_bytes: u64,
    /// Seal the chain with a signature every this many entries.
    pub seal_every: u32,
    /// Per-operation entries (sign, encrypt, …) are chained before the call returns and
    /// written by the background flusher within 5 ms, without the journal copy that by default
    /// keeps them safe from a crash of the process in between: such a crash can then lose the
    /// last few milliseconds of operation entries (the log then ends unsealed, which `verify`
    /// and the next start both report). Authentication and key-management entries are always
    /// synced before their call returns.
    pub batch_operation_entries: bool,
    /// Per-operation entries are written and synced (`fdatasync`) before their call returns,
    /// like every other entry, instead of journaled and then written and synced by a
    /// background thread. Concurrent callers still share syncs. The engine then starts no
    /// thread of its own (and keeps no journal), which is how the PKCS#11 module runs for an
    /// application that forbids threads (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`).
    /// Cannot be combined with `batch_operation_entries`.
    pub sync_operation_entries: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            path: None,
            level: AuditLevel::All,
            rotate_bytes: 64 << 20,
            seal_every: 1000,
            batch_operation_entries: false,
            sync_operation_entries: false,
        }
    }
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Where the gRPC service listens.
    pub listen_addr: SocketAddr,
    /// Permit binding a public (non-private) address.
    pub allow_public_bind: bool,
    /// Serve without client certificates (only honoured on loopback).
    pub loopback_without_client_auth: bool,
    /// Server certificate chains and keys (several during a rotation).
    pub server_identities: Vec<ServerIdentity>,
    /// The CA bundle client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// CRL files.
    pub crls: Vec<PathBuf>,
    /// How often CRLs are re-read, in seconds.
    pub crl_reload_secs: u64,
    /// The oldest a CRL may be (since its thisUpdate) before it no longer counts as fresh.
    pub crl_max_age_secs: u64,
    /// Optional allow-list of client certificate SHA-256 fingerprints (hex).
    pub client_fingerprints: Vec<String>,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// Failed PIN attempts (login, PIN change, token init) each client may make per minute;
    /// more are refused before they reach the token. Attempts with the right PIN do not
    /// count. 0 means no limit.
    pub pin_attempts_per_minute: u32,
    /// Log lines on stderr: `text` or `json`.
    pub log_format: LogFormat,
}

/// How the daemon writes its log.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            allow_public_bind: false,
            loopback_without_client_auth: false,
            server_identities: Vec::new(),
            client_ca: None,
            crls: Vec::new(),
            crl_reload_secs: 300,
            crl_max_age_secs: 7 * 24 * 3600,
            client_fingerprints: Vec::new(),
            max_request_bytes: 4 << 20,
            pin_attempts_per_minute: 10,
            log_format: LogFormat::Text,
        }
    }
}

/// One server certificate chain and its key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerIdentity {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[client]`: talk to a daemon instead of a local store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `https://host:port` of the daemon.
    pub endpoint: String,
    /// CA bundle that signs the daemon's certificate.
    pub ca: PathBuf,
    /// This client's certificate chain.
    pub cert: PathBuf,
    /// This client's key.
    pub key: PathBuf,
    /// How long a call may take before it fails with `CKR_DEVICE_REMOVED`, in seconds
    /// (connecting included).
    #[serde(default = "default_client_timeout")]
    pub timeout_secs: u64,
}

fn default_client_timeout() -> u64 {
    30
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file.
    File(PathBuf),
    /// No file: the embedded defaults.
    Embedded,
}

impl Config {
    /// Parses and validates TOML text. `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        let mut config = config;
        config.origin = Some(origin.to_owned());
        Ok(config)
    }

    /// Where this configuration came from: a file path, or "embedded default".
    pub fn origin(&self) -> &str {
        self.origin.as_deref().unwrap_or("embedded default")
    }

    /// Reads and validates a file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Finds the configuration: `explicit`, then `$CRATON_HSM_CONFIG`, then the system file,
    /// then the embedded default. A path that is named but unreadable is an error, never a
    /// silent fallback.
    pub fn discover(explicit: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
        if let Some(p) = explicit {
            return Ok((Config::from_file(p)?, ConfigSource::File(p.to_owned())));
        }
        if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            return Ok((Config::from_file(&p)?, ConfigSource::File(p)));
        }
        let system = Path::new(SYSTEM_CONFIG);
        if system.exists() {
            return Ok((
                Config::from_file(system)?,
                ConfigSource::File(system.to_owned()),
            ));
        }
        Ok((Config::default(), ConfigSource::Embedded))
    }

    /// Checks ranges that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_owned(),
            })
        };
        if !(1..=64).contains(&self.token.slots) {
            return invalid("token.slots", "must be between 1 and 64");
        }
        if let Some(d) = &self.token.state_dir
            && !d.is_absolute()
        {
            return invalid("token.state_dir", "must be an absolute path");
        }
        let s = &self.security;
        if s.pbkdf2_iterations < 1000 {
            return invalid("security.pbkdf2_iterations", "must be at least 1000");
        }
        if !(1..=100).contains(&s.max_failed_logins) {
            return invalid("security.max_failed_logins", "must be between 1 and 100");
        }
        if s.pin_min_len < 4 || s.pin_min_len > s.pin_max_len || s.pin_max_len > 255 {
            return invalid(
                "security.pin_min_len",
                "need 4 <= pin_min_len <= pin_max_len <= 255",
            );
        }
        if s.gcm_invocation_limit == 0 || s.gcm_invocation_limit > 1 << 32 {
            return invalid(
                "security.gcm_invocation_limit",
                "must be between 1 and 2^32",
            );
        }
        if self.audit.seal_every == 0 {
            return invalid("audit.seal_every", "must be at least 1");
        }
        if self.audit.batch_operation_entries && self.audit.sync_operation_entries {
            return invalid(
                "audit.sync_operation_entries",
                "cannot be combined with audit.batch_operation_entries",
            );
        }
        if self.daemon.max_request_bytes < 1024 {
            return invalid("daemon.max_request_bytes", "must be at least 1024");
        }
        for fp in &self.daemon.client_fingerprints {
            let clean: String = fp.chars().filter(|c| *c != ':').collect();
            if clean.len() != 64 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
                return invalid(
                    "daemon.client_fingerprints",
                    "each entry must be a SHA-256 fingerprint in hex",
                );
            }
        }
        Ok(())
    }

    /// The state directory: configured, or the user's data directory.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.token.state_dir {
            return d.clone();
        }
        default_state_dir()
    }

    /// The audit log path: configured, or `audit.log` in the state directory.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("audit.log"))
    }

    /// The mechanism policy tokens are built with.
    pub fn policy(&self) -> craton_core::Policy {
        craton_core::Policy {
            allow_weak_rsa: self.algorithms.allow_weak_rsa,
            allow_sha1_signatures: self.algorithms.allow_sha1_signatures,
            fips_only: self.algorithms.fips_only,
        }
    }
}

/// `$XDG_DATA_HOME/craton-hsm`, else `$HOME/.local/share/craton-hsm`, else
/// `/var/lib/craton-hsm` (a service account without a home).
pub fn default_state_dir() -> PathBuf {
    let from_env = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = from_env("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return x.join("craton-hsm");
    }
    if let Some(h) = from_env("HOME").filter(|p| p.is_absolute()) {
        return h.join(".local/share/craton-hsm");
    }
    PathBuf::from("/var/lib/craton-hsm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let expected = Config {
            origin: Some("t".into()),
            ..Config::default()
        };
        assert_eq!(Config::from_toml("", "t").unwrap(), expected);
        assert_eq!(Config::default().origin(), "embedded default");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml("[token]\nslotz = 2\n", "t").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("slotz"), "{msg}");
        assert!(msg.contains("line 2") || msg.contains("2:"), "{msg}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = Config::from_toml("[token]\nslots = 0\n", "t").unwrap_err();
        assert!(e.to_string().contains("token.slots"));
        let e = Config::from_toml("[security]\npbkdf2_iterations = 10\n", "t").unwrap_err();
        assert!(e.to_string().contains("security.pbkdf2_iterations"));
        let e = Config::from_toml("[security]\nmax_failed_logins = \"x\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("max_failed_logins"));
        let both = "[audit]\nbatch_operation_entries = true\nsync_operation_entries = true\n";
        let e = Config::from_toml(both, "t").unwrap_err();
        assert!(e.to_string().contains("audit.sync_operation_entries"));
    }

    #[test]
    fn a_full_file_parses() {
        let c = Config::from_toml(
            r#"
[token]
slots = 2
state_dir = "/var/lib/craton-hsm"
[security]
pbkdf2_iterations = 700000
[algorithms]
fips_only = true
[audit]
level = "key-management"
[daemon]
listen_addr = "10.0.0.5:8443"
server_identities = [{ cert = "/etc/craton-hsm/tls/a.pem", key = "/etc/craton-hsm/tls/a.key" }]
[client]
endpoint = "https://hsm:8443"
ca = "/ca.pem"
cert = "/c.pem"
key = "/c.key"
"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.token.slots, 2);
        assert_eq!(c.audit.level, AuditLevel::KeyManagement);
        assert!(c.policy().fips_only);
        assert!(c.client.is_some());
    }
}
