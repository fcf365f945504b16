//! `craton-hsm`: see the crate documentation and `craton-hsm --help`.

use clap::Parser;

fn main() {
    let cli = craton_cli::cli::Cli::parse();
    if let Err(f) = craton_cli::run(cli) {
        eprintln!("craton-hsm: {}", f.message);
        std::process::exit(f.code);
    }
}
