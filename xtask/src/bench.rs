//! `cargo xtask bench`: criterion benchmarks of craton-core next to raw aws-lc-rs, and of the
//! `Hsm` engine next to craton-core.
//!
//! Results land in `target/criterion/`; the ratios we publish are recorded by hand, with the
//! date and machine, in `docs/benchmarks.md`. Extra arguments go to criterion (a filter).

use crate::util::{cargo, run as exec};

/// (package, bench target): craton-core against aws-lc-rs, then the engine against the core.
const BENCHES: [(&str, &str); 2] = [("craton-core", "core"), ("craton-store", "hsm")];

pub fn run(args: &[String]) -> Result<(), String> {
    // `cargo xtask bench -- --flag` hands us the separator too; criterion must not see it.
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    for (package, target) in BENCHES {
        let mut bench = cargo();
        bench.args([
            "bench",
            "--locked",
            "--package",
            package,
            "--bench",
            target,
            "--",
        ]);
        bench.args(args);
        exec(bench)?;
    }
    Ok(())
}
