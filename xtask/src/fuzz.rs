//! `cargo xtask fuzz [seconds]`: runs the `c_abi` cargo-fuzz target (`fuzz/`) over
//! libcraton_hsm's C ABI for a bounded time (default 60 s, or `CRATON_FUZZ_SECONDS`).
//! `cargo xtask fuzz pack` minimises the corpus and stores it as the committed seeds.
//!
//! cargo-fuzz is installed from crates.io when missing. The target is built without a
//! sanitizer (`-s none`), which works on the stable toolchain: coverage guidance comes from
//! SanitizerCoverage, and the harness itself turns any panic or `CKR_GENERAL_ERROR` into a
//! crash. Findings land in `fuzz/artifacts/c_abi/`; the corpus grows in `fuzz/corpus/c_abi/`.
//!
//! A run starts from the seeds in `fuzz/seeds/c_abi.seeds` (a minimised corpus of earlier
//! long runs, in one file), so a short CI run replays the deep call sequences those runs
//! found before it searches further, instead of starting from nothing every time.
//!
//! cargo-fuzz builds without `--locked`, so a stale `fuzz/Cargo.lock` would be re-resolved
//! against whatever crates.io holds that day; a run that changes the lock fails and says so.

use crate::util::{cargo, io, run as exec, workspace_root};
use std::path::{Path, PathBuf};

/// The first line of a seeds file; the seeds follow, each as a 4-byte little-endian
/// length and that many bytes.
const MAGIC: &[u8] = b"craton-fuzz-seeds 1\n";

pub fn run(args: &[String]) -> Result<(), String> {
    if let [cmd] = args
        && cmd == "pack"
    {
        return pack();
    }
    let seconds: u64 = match args {
        [] => std::env::var("CRATON_FUZZ_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
        [s] => s
            .parse()
            .map_err(|_| format!("`{s}` is not a number of seconds"))?,
        _ => return Err("usage: cargo xtask fuzz [seconds | pack]".into()),
    };
    ensure_cargo_fuzz()?;
    let planted = plant_seeds(&seeds_file(), &corpus_dir())?;
    if planted > 0 {
        println!("fuzz: {planted} seeds from fuzz/seeds/c_abi.seeds added to the corpus");
    }
    let lock = fuzz_dir().join("Cargo.lock");
    let lock_before = std::fs::read(&lock).ok();
    // The harness keeps its token's state in the temporary directory; one of its own, so
    // each run's state goes when the run passes (and stays, beside the build, when not).
    let scratch = workspace_root().join("target").join("fuzz-tmp");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| io(&scratch, e))?;
    let mut fuzz = cargo();
    fuzz.current_dir(fuzz_dir()).env("TMPDIR", &scratch).args([
        "fuzz",
        "run",
        "-s",
        "none",
        "c_abi",
        "--",
        &format!("-max_total_time={seconds}"),
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]);
    exec(fuzz)?;
    let _ = std::fs::remove_dir_all(&scratch);
    if std::fs::read(&lock).ok() != lock_before {
        return Err(
            "fuzz/Cargo.lock was out of date and cargo rewrote it during the build; \
             commit the updated file so the fuzz build uses the same crates every time"
                .into(),
        );
    }
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

fn corpus_dir() -> PathBuf {
    fuzz_dir().join("corpus").join("c_abi")
}

fn seeds_file() -> PathBuf {
    fuzz_dir().join("seeds").join("c_abi.seeds")
}

/// `cargo xtask fuzz pack`: minimises the corpus with `cargo fuzz cmin` (keeping only inputs
/// that add coverage) and writes it, sorted by name, to the seeds file.
fn pack() -> Result<(), String> {
    ensure_cargo_fuzz()?;
    plant_seeds(&seeds_file(), &corpus_dir())?;
    let mut cmin = cargo();
    cmin.current_dir(fuzz_dir())
        .args(["fuzz", "cmin", "-s", "none", "c_abi"]);
    exec(cmin)?;
    let n = write_seeds(&corpus_dir(), &seeds_file())?;
    println!("fuzz: {n} seeds written to fuzz/seeds/c_abi.seeds");
    Ok(())
}

/// The seeds in `file`; an absent file holds none.
fn read_seeds(file: &Path) -> Result<Vec<Vec<u8>>, String> {
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(file, e)),
    };
    let bad = |why: &str| format!("{}: not a seeds file ({why})", file.display());
    let mut rest = data.strip_prefix(MAGIC).ok_or_else(|| bad("no header"))?;
    let mut seeds = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(bad("truncated"));
        }
        let (seed, tail) = tail.split_at(len);
        seeds.push(seed.to_vec());
        rest = tail;
    }
    Ok(seeds)
}

/// A seed's file name in the corpus: a hash of its bytes, so planting twice adds nothing.
fn seed_name(seed: &[u8]) -> String {
    let digest = craton_core::digest::sha256(seed);
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("seed-{hex}")
}

/// Writes each seed of `file` into `corpus` that is not there yet; returns how many.
fn plant_seeds(file: &Path, corpus: &Path) -> Result<usize, String> {
    let seeds = read_seeds(file)?;
    std::fs::create_dir_all(corpus).map_err(|e| io(corpus, e))?;
    let mut planted = 0;
    for seed in seeds {
        let path = corpus.join(seed_name(&seed));
        if !path.exists() {
            std::fs::write(&path, &seed).map_err(|e| io(&path, e))?;
            planted += 1;
        }
    }
    Ok(planted)
}

/// Writes every file of `corpus`, sorted by name, to `file`; returns how many.
fn write_seeds(corpus: &Path, file: &Path) -> Result<usize, String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(corpus).map_err(|e| io(corpus, e))? {
        let path = entry.map_err(|e| io(corpus, e))?.path();
        if path.is_file() {
            names.push(path);
        }
    }
    names.sort();
    let mut out = MAGIC.to_vec();
    for path in &names {
        let seed = std::fs::read(path).map_err(|e| io(path, e))?;
        let len = u32::try_from(seed.len())
            .map_err(|_| format!("{}: too long for a seed", path.display()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&seed);
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::write(file, out).map_err(|e| io(file, e))?;
    Ok(names.len())
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    exec(install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_survive_a_round_trip_and_planting_twice_adds_nothing() {
        let dir = std::env::temp_dir().join(format!("xtask-seeds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let corpus = dir.join("corpus");
        std::fs::create_dir_all(&corpus).unwrap();
        let seeds: [&[u8]; 3] = [b"", b"\x00\x01\x02", &[0xab; 3000]];
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(corpus.join(format!("{i}")), s).unwrap();
        }
        let file = dir.join("seeds").join("c_abi.seeds");
        assert_eq!(write_seeds(&corpus, &file).unwrap(), 3);
        assert_eq!(read_seeds(&file).unwrap(), seeds.map(<[u8]>::to_vec));

        let fresh = dir.join("fresh");
        assert_eq!(plant_seeds(&file, &fresh).unwrap(), 3);
        assert_eq!(plant_seeds(&file, &fresh).unwrap(), 0);
        let mut planted: Vec<Vec<u8>> = std::fs::read_dir(&fresh)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        planted.sort();
        let mut expected = seeds.map(<[u8]>::to_vec).to_vec();
        expected.sort();
        assert_eq!(planted, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_seeds_file_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("xtask-badseeds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c_abi.seeds");
        std::fs::write(&file, b"something else").unwrap();
        let e = read_seeds(&file).unwrap_err();
        assert!(e.contains("c_abi.seeds") && e.contains("no header"), "{e}");
        let mut truncated = MAGIC.to_vec();
        truncated.extend_from_slice(&10u32.to_le_bytes());
        truncated.extend_from_slice(b"short");
        std::fs::write(&file, truncated).unwrap();
        assert!(read_seeds(&file).unwrap_err().contains("truncated"));
        // A length cut short is truncation too.
        let mut cut = MAGIC.to_vec();
        cut.extend_from_slice(&[1, 0]);
        std::fs::write(&file, cut).unwrap();
        assert!(read_seeds(&file).unwrap_err().contains("truncated"));
        // No file: no seeds, not an error (a checkout without them still fuzzes).
        assert!(read_seeds(&dir.join("absent")).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
