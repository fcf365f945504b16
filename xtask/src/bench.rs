//! `cargo xtask bench`: criterion benchmarks of craton-core next to raw aws-lc-rs.
//!
//! Results land in `target/criterion/`; the ratios we publish are recorded by hand, with the
//! date and machine, in `docs/benchmarks.md`. Extra arguments go to criterion (a filter).

use crate::util::{cargo, run as exec};

pub fn run(args: &[String]) -> Result<(), String> {
    let mut bench = cargo();
    bench.args([
        "bench",
        "--locked",
        "--package",
        "craton-core",
        "--bench",
        "core",
        "--",
    ]);
    // `cargo xtask bench -- --flag` hands us the separator too; criterion must not see it.
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    bench.args(args);
    exec(bench)
}
