//! The command line: what `craton-hsm` accepts, with the help text and examples each
//! command prints.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  craton-hsm token init --label payments            (asks for the SO PIN twice)
  craton-hsm pin init                               (SO PIN, then the new user PIN)
  craton-hsm key generate --type ec-p256 --label signing
  craton-hsm key list --json
  CRATON_HSM_PIN_FILE=/run/secrets/pin craton-hsm key list
  craton-hsm audit verify --public-key <hex from audit export-public-key>
  craton-hsm backup create --out /var/backups/hsm.cbk
  craton-hsm --remote --config client.toml key list   (through craton-hsm-daemon)

PINs come from --pin-file/--so-pin-file/--new-pin-file, from CRATON_HSM_PIN,
CRATON_HSM_SO_PIN and CRATON_HSM_NEW_PIN, or from a prompt without echo on a terminal.
--pin and its siblings work only together with --insecure-pin-arg: anyone on the host
can read a command line.

Exit codes: 0 success; 1 the operation failed; 2 bad usage or a missing PIN;
3 the configuration or the store could not be opened; 4 authentication failed (wrong
PIN, locked PIN); 5 a verification failed (audit chain, backup integrity, self-test).";

/// Administer Craton HSM: tokens, PINs, keys, the audit log and backups.
///
/// Works on the local state directory named by the configuration (`--config`,
/// `CRATON_HSM_CONFIG`, `/etc/craton-hsm/craton_hsm.toml`, else the built-in default). The
/// store admits one process at a time: while the daemon runs, use `--remote`.
#[derive(Debug, Parser)]
#[command(name = "craton-hsm", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, value_name = "FILE", env = "CRATON_HSM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Work through the daemon over mutual TLS instead of on the local store (token, pin,
    /// key, status, audit, and backup create; the configuration's [client] section names the
    /// daemon and this client's certificate). Audit and backup need the SO PIN.
    #[arg(long, global = true)]
    pub remote: bool,
    #[command(flatten)]
    pub pins: PinArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where PINs come from.
#[derive(Debug, Args, Default)]
pub struct PinArgs {
    /// File holding the user PIN (one line).
    #[arg(long, global = true, value_name = "FILE", env = "CRATON_HSM_PIN_FILE")]
    pub pin_file: Option<PathBuf>,
    /// File holding the SO PIN.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "CRATON_HSM_SO_PIN_FILE"
    )]
    pub so_pin_file: Option<PathBuf>,
    /// File holding the new PIN (for `pin init` and `pin change`).
    #[arg(long, global = true, value_name = "FILE")]
    pub new_pin_file: Option<PathBuf>,
    /// File holding the backup passphrase.
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Allow PINs on the command line (`--pin`, `--so-pin`, `--new-pin`). Anyone on the host
    /// can read them in the process list.
    #[arg(long, global = true)]
    pub insecure_pin_arg: bool,
    /// The user PIN itself (needs --insecure-pin-arg).
    #[arg(long, global = true, value_name = "PIN", requires = "insecure_pin_arg")]
    pub pin: Option<String>,
    /// The SO PIN itself (needs --insecure-pin-arg).
    #[arg(long, global = true, value_name = "PIN", requires = "insecure_pin_arg")]
    pub so_pin: Option<String>,
    /// The new PIN itself (needs --insecure-pin-arg).
    #[arg(long, global = true, value_name = "PIN", requires = "insecure_pin_arg")]
    pub new_pin: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initialise and inspect tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Set, change and inspect PINs.
    #[command(subcommand)]
    Pin(PinCommand),
    /// Generate, list, show, export and destroy keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Verify, read, rotate the audit log, and export its public key.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Encrypted backups of tokens: create, restore, inspect.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Run the power-on self-tests (every known-answer test) and the integrity check of
    /// libcraton_hsm.so.
    #[command(
        after_help = "Example:\n  craton-hsm self-test --module /opt/craton-hsm/lib/libcraton_hsm.so"
    )]
    SelfTest {
        /// The module to check against its `.hmac` sidecar (default: beside this program,
        /// or in ../lib).
        #[arg(long, value_name = "FILE")]
        module: Option<PathBuf>,
    },
    /// Check this host against the deployment page (docs/deployment.md): account, paths and
    /// modes, mounts, the systemd unit, core dumps, ptrace, swap, entropy, AppArmor/SELinux,
    /// the library's integrity, the daemon's TLS (listen address, client CA, key and
    /// certificate modes, certificate expiry, CRL freshness) and the audit chain (against
    /// /etc/craton-hsm/audit-public-key.hex). Exits 5 if any check fails.
    #[command(
        after_help = "Examples:\n  craton-hsm doctor\n  craton-hsm doctor --json | jq '.[] | select(.status != \"pass\")'\n  craton-hsm doctor --root /mnt/image    (a mounted image of another host)"
    )]
    Doctor {
        /// Check the tree under this directory instead of / (an image, a fixture).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Configuration, state directory, tokens and audit log at a glance.
    #[command(after_help = "Example:\n  craton-hsm status --json")]
    Status,
    /// Check a release directory before installing it: the minisign signature over
    /// SHA256SUMS (made by `cargo xtask sign-release`), every file's checksum, no unlisted
    /// file, and each binary against its .hmac sidecar. Exits 5 if anything does not match.
    #[command(
        after_help = "Examples:\n  craton-hsm verify-release --public-key craton-release.pub ./dist\n  minisign -V -m dist/SHA256SUMS -p craton-release.pub    (the same signature, standard tool)"
    )]
    VerifyRelease {
        /// The release public key (minisign format), obtained from a trusted place.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// The release directory.
        dir: PathBuf,
    },
}

/// Selects a slot.
#[derive(Debug, Args, Clone, Copy)]
pub struct SlotArg {
    /// The slot (0 is the first).
    #[arg(long, default_value_t = 0)]
    pub slot: u64,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Initialise the token in a slot with a label and an SO PIN. An initialised token is
    /// wiped: every object on it is destroyed for good.
    #[command(
        after_help = "Example:\n  craton-hsm token init --slot 0 --label payments --so-pin-file so.pin"
    )]
    Init {
        #[command(flatten)]
        slot: SlotArg,
        /// The token label (up to 32 bytes).
        #[arg(long)]
        label: String,
        /// Re-initialise a token that is already initialised (destroys its keys).
        #[arg(long)]
        wipe: bool,
    },
    /// Show one token.
    #[command(after_help = "Example:\n  craton-hsm token info --slot 1")]
    Info {
        #[command(flatten)]
        slot: SlotArg,
    },
    /// List every slot and its token.
    #[command(after_help = "Example:\n  craton-hsm token list --json")]
    List,
}

/// `pin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Set the user PIN (the SO logs in to do it; also resets a locked user PIN).
    #[command(
        after_help = "Example:\n  craton-hsm pin init --so-pin-file so.pin --new-pin-file user.pin"
    )]
    Init {
        #[command(flatten)]
        slot: SlotArg,
    },
    /// Change the user PIN (or, with --so, the SO PIN).
    #[command(
        after_help = "Example:\n  craton-hsm pin change --pin-file old.pin --new-pin-file new.pin"
    )]
    Change {
        #[command(flatten)]
        slot: SlotArg,
        /// Change the SO PIN instead.
        #[arg(long)]
        so: bool,
    },
    /// Failed attempts and lock state of both PINs.
    #[command(after_help = "Example:\n  craton-hsm pin unlock-status --json")]
    UnlockStatus {
        #[command(flatten)]
        slot: SlotArg,
    },
}

/// The key types `key generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyKind {
    /// RSA, 2048-bit modulus.
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072-bit modulus.
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096-bit modulus.
    #[value(name = "rsa-4096")]
    Rsa4096,
    /// ECDSA/ECDH on P-256.
    EcP256,
    /// ECDSA/ECDH on P-384.
    EcP384,
    /// ECDSA/ECDH on P-521.
    EcP521,
    /// Ed25519.
    Ed25519,
    /// AES-128.
    #[value(name = "aes-128")]
    Aes128,
    /// AES-256.
    #[value(name = "aes-256")]
    Aes256,
    /// A 256-bit HMAC key (generic secret).
    #[value(name = "hmac-256")]
    Hmac256,
    /// ML-DSA-44.
    #[value(name = "ml-dsa-44")]
    MlDsa44,
    /// ML-DSA-65.
    #[value(name = "ml-dsa-65")]
    MlDsa65,
    /// ML-DSA-87.
    #[value(name = "ml-dsa-87")]
    MlDsa87,
    /// ML-KEM-512.
    #[value(name = "ml-kem-512")]
    MlKem512,
    /// ML-KEM-768.
    #[value(name = "ml-kem-768")]
    MlKem768,
    /// ML-KEM-1024.
    #[value(name = "ml-kem-1024")]
    MlKem1024,
}

/// What `key import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    /// An AES key: 16, 24 or 32 raw bytes (or as many in hex).
    Aes,
    /// A generic secret (HMAC) key: raw bytes (or hex).
    GenericSecret,
    /// A private key in PKCS#8, DER or PEM: RSA, EC (P-256/384/521), Ed25519 or X25519. Its
    /// public key is stored beside it.
    Pkcs8,
}

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key (or key pair) on the token, private and sensitive.
    #[command(
        after_help = "Examples:\n  craton-hsm key generate --type ec-p256 --label tls\n  craton-hsm key generate --type aes-256 --label kek --id 0a0b"
    )]
    Generate {
        #[command(flatten)]
        slot: SlotArg,
        /// The key type.
        #[arg(long = "type", value_enum)]
        kind: KeyKind,
        /// The label (CKA_LABEL) of the key, or of both halves of a pair.
        #[arg(long)]
        label: String,
        /// The id (CKA_ID), in hex.
        #[arg(long, value_name = "HEX")]
        id: Option<String>,
        /// Let the key be wrapped (CKA_EXTRACTABLE); it stays sensitive either way.
        #[arg(long)]
        extractable: bool,
    },
    /// Import a key from a file: kept private and sensitive on the token, never readable
    /// again. (A key that existed outside an HSM is never "always sensitive".)
    #[command(
        after_help = "Examples:\n  craton-hsm key import --type pkcs8 --label legacy-tls tls.key.pem\n  craton-hsm key import --type aes --label kek --usage wrap,unwrap kek.bin"
    )]
    Import {
        #[command(flatten)]
        slot: SlotArg,
        /// What the file holds.
        #[arg(long = "type", value_enum)]
        kind: ImportKind,
        /// The label (CKA_LABEL) of the key, or of both halves of a pair.
        #[arg(long)]
        label: String,
        /// The id (CKA_ID), in hex.
        #[arg(long, value_name = "HEX")]
        id: Option<String>,
        /// What the key may do (comma-separated: encrypt, decrypt, sign, verify, wrap,
        /// unwrap, derive). Default: encrypt,decrypt for AES, sign,verify otherwise. Of a
        /// pair, the private key takes sign, decrypt, unwrap and derive, the public key the
        /// rest.
        #[arg(long, value_delimiter = ',')]
        usage: Vec<String>,
        /// Let the key be wrapped (CKA_EXTRACTABLE); it stays sensitive either way.
        #[arg(long)]
        extractable: bool,
        /// The key file.
        file: PathBuf,
    },
    /// List the keys on the token.
    #[command(after_help = "Example:\n  craton-hsm key list --json")]
    List {
        #[command(flatten)]
        slot: SlotArg,
    },
    /// Show a key's attributes (never a secret value).
    #[command(after_help = "Examples:\n  craton-hsm key show tls\n  craton-hsm key show 42")]
    Show {
        #[command(flatten)]
        slot: SlotArg,
        /// The key's label, or its handle as a number.
        key: String,
    },
    /// Write a key's public half as PEM (SubjectPublicKeyInfo), for OpenSSL and other tools.
    #[command(
        after_help = "Examples:\n  craton-hsm key export-public tls > tls.pub.pem\n  craton-hsm key export-public tls --out tls.pub.pem\n  openssl pkey -pubin -in tls.pub.pem -text"
    )]
    ExportPublic {
        #[command(flatten)]
        slot: SlotArg,
        /// The key's label (its public key, else its private key's public half), or a handle.
        key: String,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Destroy a key (every object with that label, or the one handle).
    #[command(after_help = "Example:\n  craton-hsm key destroy old-tls --yes")]
    Destroy {
        #[command(flatten)]
        slot: SlotArg,
        /// The key's label, or its handle as a number.
        key: String,
        /// Confirm: destroying a key cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the chain and seals of the audit log, rotated files included.
    #[command(
        after_help = "Examples:\n  craton-hsm audit verify --public-key 3b6a27bc...\n  craton-hsm audit verify /archive/audit.log.1 /archive/audit.log.900 --public-key-file audit.pub\n  craton-hsm --remote audit verify --public-key-file audit.pub --so-pin-file so.pin   (the daemon's log)"
    )]
    Verify {
        /// The installation's audit public key (hex), as `audit export-public-key` printed
        /// it. Without it (or --public-key-file) the key comes from the store itself, which
        /// does not protect against someone who can rewrite both.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// A file holding that key.
        #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
        public_key_file: Option<PathBuf>,
        /// The files to check, oldest first (default: the configured log and its rotated
        /// files).
        files: Vec<PathBuf>,
    },
    /// Print the last entries.
    #[command(
        after_help = "Examples:\n  craton-hsm audit tail -n 50 --json\n  craton-hsm --remote audit tail -n 20 --so-pin-file so.pin   (the daemon's log, for its SO)"
    )]
    Tail {
        /// How many entries.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// Print the audit public key (hex), to keep where the host cannot change it.
    #[command(after_help = "Example:\n  craton-hsm audit export-public-key > /secure/audit.pub")]
    ExportPublicKey,
    /// Seal and close the current log file and start a new one linked to it.
    #[command(after_help = "Example:\n  craton-hsm audit rotate")]
    Rotate,
}

/// `backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write an encrypted, authenticated backup of every token (or of --slot). The SO of
    /// each token in it must log in.
    #[command(
        after_help = "Examples:\n  craton-hsm backup create --out hsm.cbk --passphrase-file pass --so-pin-file so.pin\n  craton-hsm backup create --out hsm.cbk --key-file kek.bin --slot 0\n  craton-hsm --remote backup create --out hsm.cbk --passphrase-file pass --so-pin-file so.pin   (sealed by the daemon)"
    )]
    Create {
        /// Where to write it (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only these slots.
        #[arg(long)]
        slot: Vec<u64>,
        /// A 32-byte key file instead of a passphrase.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Restore a backup into the configured state directory, which must hold no store.
    #[command(
        after_help = "Example:\n  craton-hsm --config /etc/craton-hsm/craton_hsm.toml backup restore hsm.cbk"
    )]
    Restore {
        /// The backup file.
        file: PathBuf,
        /// A 32-byte key file instead of a passphrase.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Show what a backup file says about itself (no secret needed).
    #[command(after_help = "Example:\n  craton-hsm backup inspect hsm.cbk")]
    Inspect {
        /// The backup file.
        file: PathBuf,
    },
}
