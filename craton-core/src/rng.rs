//! Random bits: an SP 800-90A rev. 1 HMAC_DRBG (SHA-256) seeded from an entropy source, with
//! reseed counter, prediction resistance on request and continuous health tests, and a
//! sharded pool of such DRBGs so concurrent callers do not queue on one lock.
//!
//! Every key, IV and random byte the HSM hands out comes from an [`Rng`]: AES and HMAC keys,
//! RSA primes (generated here, FIPS 186-5 A.1.3), EC, Ed25519, X25519, ML-KEM, ML-DSA and
//! SLH-DSA key seeds, module-generated GCM IVs, SLH-DSA randomisers and `C_GenerateRandom`.
//! The entropy source is a trait so tests can feed known seeds; production uses [`OsEntropy`]
//! (`getrandom(2)`, which blocks until the kernel pool is initialised).
//!
//! One boundary is AWS-LC's: the per-operation randomness *inside* its signing primitives
//! (the ECDSA nonce, the RSA-PSS salt, ML-DSA's hedging value, RSA blinding) comes from
//! AWS-LC's own SP 800-90A CTR_DRBG, seeded from CPU-jitter and OS entropy, because those
//! primitives take no caller randomness. None of it is key material the HSM stores.

use crate::ffi::md::HmacSha256;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::{Zeroize, Zeroizing};

/// Security strength of HMAC_DRBG with SHA-256, in bytes.
const STRENGTH: usize = 32;
/// Largest single generate request (SP 800-90A Table 2 allows 2^19 bits).
const MAX_REQUEST: usize = 1 << 16;

/// Failures of random generation. After a health-test failure the generator stays failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RngError {
    /// The entropy source failed to deliver.
    #[error("entropy source failed")]
    EntropySource,
    /// The continuous health test saw a repeated entropy or output block.
    #[error("continuous health test failed")]
    HealthTest,
    /// The generator failed earlier and refuses to produce output.
    #[error("random generator is in the failed state")]
    Failed,
}

/// A source of full-entropy bytes.
pub trait EntropySource: Send {
    /// Fills `buf` completely with entropy, or fails.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RngError>;
}

/// The operating system's CSPRNG via `getrandom(2)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl EntropySource for OsEntropy {
    fn fill(&mut self, mut buf: &mut [u8]) -> Result<(), RngError> {
        while !buf.is_empty() {
            match rustix::rand::getrandom(&mut *buf, rustix::rand::GetRandomFlags::empty()) {
                Ok(0) => return Err(RngError::EntropySource),
                Ok(n) => buf = &mut buf[n..],
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return Err(RngError::EntropySource),
            }
        }
        Ok(())
    }
}

/// The HMAC_DRBG state (SP 800-90A §10.1.2). Wiped on drop.
pub struct HmacDrbg {
    /// `K` held only as a keyed HMAC state (wiped on drop), rebuilt when `K` changes: the
    /// generate loop and the first step of every update reuse it instead of re-running the
    /// key schedule.
    keyed: HmacSha256,
    v: [u8; STRENGTH],
    reseed_counter: u64,
    reseed_interval: u64,
}

impl Drop for HmacDrbg {
    fn drop(&mut self) {
        self.v.zeroize();
    }
}

impl std::fmt::Debug for HmacDrbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacDrbg")
            .field("reseed_counter", &self.reseed_counter)
            .finish_non_exhaustive()
    }
}

fn hmac_parts(key: &HmacSha256, parts: &[&[u8]]) -> [u8; STRENGTH] {
    key.mac(parts)
}

impl HmacDrbg {
    /// HMAC_DRBG_Instantiate with the given inputs (entropy ‖ nonce ‖ personalisation).
    pub fn instantiate(
        entropy: &[u8],
        nonce: &[u8],
        personalization: &[u8],
        reseed_interval: u64,
    ) -> Self {
        let mut d = HmacDrbg {
            keyed: HmacSha256::new(&[0u8; STRENGTH]),
            v: [1u8; STRENGTH],
            reseed_counter: 1,
            reseed_interval,
        };
        d.update(&[entropy, nonce, personalization]);
        d
    }

    /// HMAC_DRBG_Update over the concatenation of `provided`.
    fn update(&mut self, provided: &[&[u8]]) {
        let empty = provided.iter().all(|p| p.is_empty());
        // At most three provided strings (entropy, nonce, personalisation): no allocation.
        debug_assert!(provided.len() <= 3);
        let mut parts: [&[u8]; 5] = [&[]; 5];
        let v = self.v;
        parts[0] = &v;
        parts[1] = &[0x00];
        for (slot, p) in parts[2..].iter_mut().zip(provided) {
            *slot = p;
        }
        self.set_key(hmac_parts(&self.keyed, &parts));
        self.v = hmac_parts(&self.keyed, &[&self.v]);
        if empty {
            return;
        }
        let v = self.v;
        parts[0] = &v;
        parts[1] = &[0x01];
        self.set_key(hmac_parts(&self.keyed, &parts));
        self.v = hmac_parts(&self.keyed, &[&self.v]);
    }

    fn set_key(&mut self, mut k: [u8; STRENGTH]) {
        self.keyed = HmacSha256::new(&k);
        k.zeroize();
    }

    /// HMAC_DRBG_Reseed.
    pub fn reseed(&mut self, entropy: &[u8], additional: &[u8]) {
        self.update(&[entropy, additional]);
        self.reseed_counter = 1;
    }

    /// Whether the reseed interval has been reached.
    pub fn needs_reseed(&self) -> bool {
        self.reseed_counter > self.reseed_interval
    }

    /// HMAC_DRBG_Generate of `out.len()` bytes (≤ 64 KiB). The caller must reseed first when
    /// [`Self::needs_reseed`] says so; the continuous test fails on a repeated V block.
    pub fn generate(&mut self, out: &mut [u8], additional: &[u8]) -> Result<(), RngError> {
        if out.len() > MAX_REQUEST || self.needs_reseed() {
            return Err(RngError::Failed);
        }
        if !additional.is_empty() {
            self.update(&[additional]);
        }
        for chunk in out.chunks_mut(STRENGTH) {
            let next = hmac_parts(&self.keyed, &[&self.v]);
            if next == self.v {
                return Err(RngError::HealthTest);
            }
            self.v = next;
            chunk.copy_from_slice(&self.v[..chunk.len()]);
        }
        self.update(&[additional]);
        self.reseed_counter += 1;
        Ok(())
    }
}

/// Tunables of an [`Rng`].
#[derive(Debug, Clone, Copy)]
pub struct RngConfig {
    /// Generate requests between reseeds, per shard (SP 800-90A allows up to 2^48).
    pub reseed_interval: u64,
    /// Number of independent DRBG instances; 0 picks twice the CPU count.
    pub shards: usize,
}

impl Default for RngConfig {
    fn default() -> Self {
        RngConfig {
            reseed_interval: 1 << 20,
            shards: 0,
        }
    }
}

struct Source {
    inner: Box<dyn EntropySource>,
    /// Hash of the previous 32-byte entropy block, for the continuous test (SP 800-90B §4.4.1
    /// in its simplest form: two identical consecutive blocks fail).
    previous: Option<[u8; 32]>,
}

impl Source {
    /// Draws entropy in 32-byte blocks, comparing each block with the one before.
    fn draw(&mut self, buf: &mut [u8]) -> Result<(), RngError> {
        let mut block = Zeroizing::new([0u8; STRENGTH]);
        for chunk in buf.chunks_mut(STRENGTH) {
            self.inner.fill(&mut block[..])?;
            let tag: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &block[..])
                .as_ref()
                .try_into()
                .map_err(|_| RngError::EntropySource)?;
            if self.previous == Some(tag) {
                return Err(RngError::HealthTest);
            }
            self.previous = Some(tag);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// A pool of HMAC_DRBGs sharing one entropy source. Cheap to call from many threads: each call
/// takes the first free shard.
pub struct Rng {
    shards: Box<[Shard]>,
    source: Mutex<Source>,
    failed: AtomicBool,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rng")
            .field("shards", &self.shards.len())
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One DRBG, alone on its cache lines so shards used by different cores never share one.
#[repr(align(128))]
struct Shard(Mutex<HmacDrbg>);

impl Rng {
    /// Instantiates every shard from `source` (entropy, a nonce, and the shard number as
    /// personalisation so no two shards ever share a state).
    pub fn new(source: Box<dyn EntropySource>, config: RngConfig) -> Result<Self, RngError> {
        let n = if config.shards == 0 {
            std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
        } else {
            config.shards
        };
        let mut source = Source {
            inner: source,
            previous: None,
        };
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let mut seed = Zeroizing::new([0u8; STRENGTH + STRENGTH / 2]);
            source.draw(&mut seed[..])?;
            let (entropy, nonce) = seed.split_at(STRENGTH);
            let personalization = format!("craton-hsm drbg shard {i}");
            shards.push(Shard(Mutex::new(HmacDrbg::instantiate(
                entropy,
                nonce,
                personalization.as_bytes(),
                config.reseed_interval.max(1),
            ))));
        }
        Ok(Rng {
            shards: shards.into_boxed_slice(),
            source: Mutex::new(source),
            failed: AtomicBool::new(false),
        })
    }

    /// An `Rng` on the operating system's entropy with default settings.
    pub fn from_os() -> Result<Self, RngError> {
        Rng::new(Box::new(OsEntropy), RngConfig::default())
    }

    /// Whether a health-test or entropy failure has put the generator out of service.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    fn fail(&self, e: RngError) -> RngError {
        self.failed.store(true, Ordering::Release);
        e
    }

    fn reseed(&self, drbg: &mut HmacDrbg, additional: &[u8]) -> Result<(), RngError> {
        let mut entropy = Zeroizing::new([0u8; STRENGTH]);
        {
            let mut src = self.source.lock().map_err(|_| RngError::Failed)?;
            src.draw(&mut entropy[..]).map_err(|e| self.fail(e))?;
        }
        drbg.reseed(&entropy[..], additional);
        Ok(())
    }

    fn with_shard<T>(
        &self,
        f: impl FnOnce(&mut HmacDrbg) -> Result<T, RngError>,
    ) -> Result<T, RngError> {
        if self.is_failed() {
            return Err(RngError::Failed);
        }
        // Each thread has a home shard, handed out round-robin on its first request, so a
        // busy thread keeps reusing one DRBG whose state stays in its core's cache, and the
        // first threads never share one. (A shared counter per request made every call move
        // a state between cores; hashing thread ids let two threads collide on one shard.)
        static NEXT_HOME: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        thread_local! {
            static HOME: usize = NEXT_HOME.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let n = self.shards.len();
        let start = HOME.with(|h| *h) % n;
        for i in 0..n {
            if let Ok(mut guard) = self.shards[(start + i) % n].0.try_lock() {
                return f(&mut guard);
            }
        }
        let mut guard = self.shards[start].0.lock().map_err(|_| RngError::Failed)?;
        f(&mut guard)
    }

    /// Fills `out` with random bytes.
    pub fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        self.fill_inner(out, false)
    }

    /// Fills `out` after reseeding from the entropy source first (prediction resistance).
    pub fn fill_with_prediction_resistance(&self, out: &mut [u8]) -> Result<(), RngError> {
        self.fill_inner(out, true)
    }

    fn fill_inner(&self, out: &mut [u8], prediction_resistance: bool) -> Result<(), RngError> {
        for chunk in out.chunks_mut(MAX_REQUEST) {
            self.with_shard(|drbg| {
                if prediction_resistance || drbg.needs_reseed() {
                    self.reseed(drbg, &[])?;
                }
                drbg.generate(chunk, &[]).map_err(|e| self.fail(e))
            })?;
        }
        Ok(())
    }

    /// A fresh vector of `len` random bytes.
    pub fn bytes(&self, len: usize) -> Result<Vec<u8>, RngError> {
        let mut v = vec![0u8; len];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// Adapter for code that wants a `rand_core` generator (SLH-DSA signing).
    pub(crate) fn as_rand_core(&self) -> RandCoreAdapter<'_> {
        RandCoreAdapter(self)
    }
}

/// Lets `fips205` draw randomness from our DRBG.
pub(crate) struct RandCoreAdapter<'a>(&'a Rng);

impl rand_core::RngCore for RandCoreAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // fips205 only calls try_fill_bytes; a failing infallible call must not return
        // predictable bytes, so it aborts the operation by unwinding in this one place.
        if self.try_fill_bytes(dest).is_err() {
            panic!("random generator failed");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest).map_err(|_| {
            rand_core::Error::from(
                std::num::NonZeroU32::new(rand_core::Error::CUSTOM_START)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )
        })
    }
}

impl rand_core::CryptoRng for RandCoreAdapter<'_> {}

/// Deterministic entropy for tests and known-answer checks. Never use it for real keys.
pub mod testing {
    use super::{EntropySource, RngError};

    /// Expands a seed with SHA-256 in counter mode: distinct blocks, fully reproducible.
    #[derive(Debug, Clone)]
    pub struct DeterministicEntropy {
        seed: [u8; 32],
        counter: u64,
    }

    impl DeterministicEntropy {
        /// A source that replays the same stream for the same seed.
        pub fn new(seed: [u8; 32]) -> Self {
            DeterministicEntropy { seed, counter: 0 }
        }
    }

    impl EntropySource for DeterministicEntropy {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RngError> {
            for chunk in buf.chunks_mut(32) {
                let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                ctx.update(&self.seed);
                ctx.update(&self.counter.to_be_bytes());
                self.counter += 1;
                chunk.copy_from_slice(&ctx.finish().as_ref()[..chunk.len()]);
            }
            Ok(())
        }
    }

    /// An entropy source that returns the same bytes every time: the continuous test must
    /// catch it.
    #[derive(Debug, Clone, Default)]
    pub struct StuckEntropy;

    impl EntropySource for StuckEntropy {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RngError> {
            buf.fill(0x5A);
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) fn test_rng() -> Rng {
    match Rng::new(
        Box::new(testing::DeterministicEntropy::new([7; 32])),
        RngConfig {
            reseed_interval: 4,
            shards: 2,
        },
    ) {
        Ok(rng) => rng,
        Err(e) => panic!("test rng: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_entropy_is_caught_and_latches() {
        // Start-up draws two blocks (entropy and nonce): the second repeats the first.
        let cfg = RngConfig {
            reseed_interval: 1,
            shards: 1,
        };
        let r = Rng::new(Box::new(testing::StuckEntropy), cfg);
        assert_eq!(r.map(|_| ()).unwrap_err(), RngError::HealthTest);

        /// Distinct blocks while the counter runs down, then the same block for ever.
        struct StuckAfter(u8);
        impl EntropySource for StuckAfter {
            fn fill(&mut self, buf: &mut [u8]) -> Result<(), RngError> {
                buf.fill(self.0);
                self.0 = self.0.saturating_sub(1);
                Ok(())
            }
        }
        // Blocks 1, 0 at start-up; the first reseed draws 0 again and fails.
        let r = Rng::new(Box::new(StuckAfter(1)), cfg).expect("start-up");
        let mut buf = [0u8; 16];
        assert_eq!(
            r.fill_with_prediction_resistance(&mut buf),
            Err(RngError::HealthTest)
        );
        assert!(r.is_failed());
        assert_eq!(r.fill(&mut buf), Err(RngError::Failed));
    }

    #[test]
    fn reseeds_past_the_interval_and_keeps_producing() {
        let rng = test_rng();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let b = rng.bytes(32).expect("bytes");
            assert!(seen.insert(b), "outputs never repeat");
        }
        let mut big = vec![0u8; MAX_REQUEST * 2 + 3];
        rng.fill_with_prediction_resistance(&mut big)
            .expect("large fill");
        assert!(big.iter().any(|&b| b != 0));
    }

    #[test]
    fn generate_refuses_when_reseed_is_due() {
        let mut d = HmacDrbg::instantiate(&[1; 32], &[2; 16], b"", 1);
        let mut out = [0u8; 16];
        d.generate(&mut out, b"").expect("first");
        assert_eq!(d.generate(&mut out, b""), Err(RngError::Failed));
        d.reseed(&[3; 32], b"");
        d.generate(&mut out, b"").expect("after reseed");
    }

    #[test]
    fn many_threads_draw_concurrently() {
        let rng = std::sync::Arc::new(Rng::from_os().expect("os rng"));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let rng = rng.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| rng.bytes(16).expect("bytes"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for h in handles {
            for b in h.join().expect("thread") {
                assert!(all.insert(b));
            }
        }
        assert_eq!(all.len(), 1600);
    }
}
