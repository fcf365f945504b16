//! `cargo xtask cli-docs [DIR]`: the man page and shell completions of `craton-hsm`, generated
//! from the same clap definitions the binary parses (so they cannot drift from `--help`).
//!
//! Writes `DIR/man/craton-hsm.1` (plus one page per subcommand, `craton-hsm-key.1` and so
//! on) and `DIR/completions/{craton-hsm.bash,_craton-hsm,craton-hsm.fish}`; `DIR` defaults
//! to `target/cli-docs`. `cargo xtask install` will put them under the prefix.

use clap::CommandFactory;
use std::path::{Path, PathBuf};

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = match args {
        [] => crate::util::target_dir().join("cli-docs"),
        [d] => PathBuf::from(d),
        _ => return Err("usage: cargo xtask cli-docs [DIR]".into()),
    };
    let written = generate(&dir)?;
    for f in &written {
        eprintln!("xtask: wrote {}", f.display());
    }
    Ok(())
}

/// Writes every page and completion script under `dir`; returns the files.
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let mut written = Vec::new();
    let cmd = craton_cli::cli::Cli::command().bin_name("craton-hsm");
    let mut pages = vec![(String::from("craton-hsm"), cmd.clone())];
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            let name = format!("craton-hsm-{}", sub.get_name());
            let page = sub
                .clone()
                .display_name(name.clone())
                .bin_name(format!("craton-hsm {}", sub.get_name()));
            pages.push((name, page));
        }
    }
    for (name, page) in pages {
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.clone())
            .render(&mut out)
            .map_err(|e| format!("cannot render the man page {name}: {e}"))?;
        let path = man.join(format!("{name}.1"));
        std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "craton-hsm.bash"),
        (Shell::Zsh, "_craton-hsm"),
        (Shell::Fish, "craton-hsm.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "craton-hsm", &mut out);
        let path = completions.join(file);
        std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_and_completions_cover_every_command() {
        let dir = std::env::temp_dir().join(format!("craton-cli-docs-{}", std::process::id()));
        let files = super::generate(&dir).unwrap();
        let page = std::fs::read_to_string(dir.join("man/craton-hsm.1")).unwrap();
        assert!(page.contains(".TH") && page.contains("backup"), "{page}");
        let key = std::fs::read_to_string(dir.join("man/craton-hsm-key.1")).unwrap();
        assert!(key.contains("export\\-public"), "{key}");
        let bash = std::fs::read_to_string(dir.join("completions/craton-hsm.bash")).unwrap();
        assert!(bash.contains("unlock-status") && bash.contains("--insecure-pin-arg"));
        // One page for the program and one per command, plus three completion scripts.
        use clap::CommandFactory;
        let commands = craton_cli::cli::Cli::command()
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .count();
        assert!(commands >= 8, "{commands}");
        assert_eq!(files.len(), 1 + commands + 3);
        assert!(dir.join("man/craton-hsm-doctor.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
