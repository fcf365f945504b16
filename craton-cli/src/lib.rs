//! craton-cli: `craton-hsm`, the administration command line of Craton HSM.
//!
//! Every command opens the local store through [`craton_store::Hsm`] (the same engine the
//! PKCS#11 module and the daemon drive), does one thing, and prints a table or, with
//! `--json`, one JSON document. Failures print one line to standard error and exit with the
//! code their class documents ([`Failure`]).

pub mod cli;
mod commands;
pub mod doctor;
pub mod pin;
mod progress;
pub mod release;

use std::fmt;

/// Why a command failed, and the exit code that says so.
#[derive(Debug)]
pub struct Failure {
    /// The exit code: see [`Failure::code`].
    pub code: i32,
    /// One line for the operator.
    pub message: String,
}

impl Failure {
    /// Exit 1: the operation failed.
    pub fn failed(m: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: m.into(),
        }
    }

    /// Exit 2: bad usage, or a PIN that could not be obtained.
    pub fn usage(m: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: m.into(),
        }
    }

    /// Exit 3: the configuration or the store could not be opened.
    pub fn setup(m: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: m.into(),
        }
    }

    /// Exit 4: authentication failed.
    pub fn auth(m: impl Into<String>) -> Self {
        Failure {
            code: 4,
            message: m.into(),
        }
    }

    /// Exit 5: a verification failed.
    pub fn verification(m: impl Into<String>) -> Self {
        Failure {
            code: 5,
            message: m.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<craton_store::HsmError> for Failure {
    fn from(e: craton_store::HsmError) -> Self {
        use craton_store::HsmError as E;
        match e {
            E::PinIncorrect | E::PinLocked | E::UserNotLoggedIn | E::UserPinNotInitialized => {
                Failure::auth(e.to_string())
            }
            _ => Failure::failed(e.to_string()),
        }
    }
}

/// Runs the parsed command line; what it prints goes to standard output.
pub fn run(cli: cli::Cli) -> Result<(), Failure> {
    commands::run(cli)
}
