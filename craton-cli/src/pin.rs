//! Where PINs and passphrases come from: a file named on the command line, an environment
//! variable, a prompt without echo on a terminal, or (only with `--insecure-pin-arg`) the
//! command line itself, which other users can read in the process list.

use crate::Failure;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The sources of one secret, in the order they are tried.
#[derive(Debug, Default, Clone)]
pub struct Source {
    /// What the secret is, for prompts and errors ("user PIN").
    pub what: &'static str,
    /// The option that names a file holding it ("--pin-file").
    pub flag: &'static str,
    /// The file option's value.
    pub file: Option<PathBuf>,
    /// The environment variable to read.
    pub env: &'static str,
    /// The command-line value (already checked against `--insecure-pin-arg`).
    pub arg: Option<String>,
}

impl Source {
    /// Reads the secret; `confirm` prompts twice on a terminal (for a new secret).
    pub fn read(&self, confirm: bool) -> Result<Zeroizing<Vec<u8>>, Failure> {
        if let Some(path) = &self.file {
            let text = Zeroizing::new(std::fs::read(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the {} from {}: {e}",
                    self.what,
                    path.display()
                ))
            })?);
            let end = text
                .iter()
                .rposition(|b| *b != b'\n' && *b != b'\r')
                .map_or(0, |i| i + 1);
            return non_empty(self.what, Zeroizing::new(text[..end].to_vec()));
        }
        if let Some(value) = std::env::var_os(self.env) {
            use std::os::unix::ffi::OsStrExt;
            return non_empty(self.what, Zeroizing::new(value.as_bytes().to_vec()));
        }
        if let Some(arg) = &self.arg {
            return non_empty(self.what, Zeroizing::new(arg.as_bytes().to_vec()));
        }
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(format!(
                "the {} is needed: give a file with {}, set {}, or run on a terminal to be asked",
                self.what, self.flag, self.env
            )));
        }
        let first = prompt(&format!("{}: ", capitalised(self.what)))?;
        if confirm {
            let again = prompt(&format!("{} again: ", capitalised(self.what)))?;
            if *again != *first {
                return Err(Failure::usage(format!("the two {}s differ", self.what)));
            }
        }
        non_empty(self.what, first)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn non_empty(what: &str, v: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if v.is_empty() {
        return Err(Failure::usage(format!("the {what} is empty")));
    }
    Ok(v)
}

/// Asks on the terminal with echo off, restoring the terminal afterwards.
fn prompt(text: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{text}");
    let _ = err.flush();
    let stdin = std::io::stdin();
    let saved = rustix::termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
    }
    let _ = writeln!(err);
    read.map_err(|e| Failure::usage(format!("cannot read from the terminal: {e}")))?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Zeroizing::new(trimmed.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_wins_and_loses_its_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("craton-cli-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pin");
        std::fs::write(&file, "1234-abcd\n").unwrap();
        let s = Source {
            what: "user PIN",
            flag: "--pin-file",
            file: Some(file),
            env: "CRATON_HSM_TEST_UNSET_VARIABLE",
            arg: Some("ignored".into()),
        };
        assert_eq!(&s.read(false).unwrap()[..], b"1234-abcd");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_argument_is_used_when_nothing_else_is_given() {
        let s = Source {
            what: "user PIN",
            flag: "--pin-file",
            file: None,
            env: "CRATON_HSM_TEST_UNSET_VARIABLE",
            arg: Some("from-arg".into()),
        };
        assert_eq!(&s.read(false).unwrap()[..], b"from-arg");
        let empty = Source {
            arg: Some(String::new()),
            ..s
        };
        assert!(empty.read(false).is_err());
    }
}
