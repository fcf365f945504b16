//! Random bits: an SP 800-90A rev. 1 HMAC_DRBG (SHA-256) seeded from an entropy source, with
//! reseed counter, prediction resistance on request and continuous health tests, and a
//! sharded pool of such DRBGs so concurrent callers do not queue on one lock.
//!
//! Each shard serves small requests (up to 64 bytes) from the output of one generate request
//! drawn ahead, so the DRBG's re-keying after each request is paid once per 992 bytes rather
//! than per key; the read-ahead also tells a forked child that its state is inherited (see
//! `ReadAhead`).
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
use crate::ffi::memory::LockedPages;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::{Zeroize, Zeroizing};

/// Security strength of HMAC_DRBG with SHA-256, in bytes.
const STRENGTH: usize = 32;
/// Largest single generate request (SP 800-90A Table 2 allows 2^19 bits).
const MAX_REQUEST: usize = 1 << 16;
/// Requests of at most this many bytes (keys, IVs, nonces, salts) are served from a shard's
/// read-ahead; longer ones and prediction-resistance requests get a generate call of their own.
const READ_AHEAD_REQUEST: usize = 64;
/// DRBG output a shard draws in one generate request for its read-ahead: 31 blocks, so the
/// buffer and its 16-byte header fill one 1 KiB slot of locked memory.
const READ_AHEAD_LEN: usize = 31 * STRENGTH;
/// The read-ahead's header: the `ARMED` mark, then the count of unread bytes.
const HEADER: usize = 16;
/// Written into each read-ahead page when it is made. The page is marked `MADV_WIPEONFORK`,
/// so a forked child reads zero here instead: the sign that its DRBG state is a copy of its
/// parent's and must take fresh entropy before it produces anything.
const ARMED: u64 = 0x6372_6174_6f6e_2101;

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
struct Shard(Mutex<ShardState>);

struct ShardState {
    drbg: HmacDrbg,
    /// `None` only if locked memory could not be mapped; the shard then serves every request
    /// with a generate call of its own (and cannot notice a fork).
    ahead: Option<ReadAhead>,
}

/// Output of one generate request, handed out to later small requests and wiped as it goes.
///
/// An HMAC_DRBG request costs the same re-keying (six SHA-256 compressions) whether it asks
/// for 32 bytes or a kilobyte; drawing ahead spreads that over 31 small requests. Bytes not
/// yet handed out are output the DRBG has already produced and moved past: someone who reads
/// this memory learns the next keys, as they would from the DRBG state itself, and nothing
/// about bytes already handed out (they are wiped on the way out). The buffer lives in locked,
/// dump-excluded, wipe-on-fork memory like key material.
struct ReadAhead {
    /// `[ARMED as u64][unread count as u64][READ_AHEAD_LEN bytes]`; the unread bytes are the
    /// first `unread` of the buffer.
    page: LockedPages,
}

impl ReadAhead {
    fn new() -> Option<Self> {
        let mut ahead = ReadAhead {
            page: LockedPages::new(HEADER + READ_AHEAD_LEN)?,
        };
        ahead.arm();
        Some(ahead)
    }

    fn word(&self, at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.page.as_slice()[at..at + 8]);
        u64::from_le_bytes(w)
    }

    fn set_word(&mut self, at: usize, v: u64) {
        self.page.as_mut_slice()[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Whether this process wrote the page: `false` in a forked child (the kernel zeroed it).
    fn armed(&self) -> bool {
        self.word(0) == ARMED
    }

    /// Marks the page as this process's, with nothing unread.
    fn arm(&mut self) {
        self.discard();
        self.set_word(0, ARMED);
    }

    fn unread(&self) -> usize {
        usize::try_from(self.word(8)).map_or(0, |n| n.min(READ_AHEAD_LEN))
    }

    /// Copies the last `out.len()` unread bytes out and wipes them; `false` (nothing taken)
    /// if fewer are left.
    fn take(&mut self, out: &mut [u8]) -> bool {
        let unread = self.unread();
        let Some(rest) = unread.checked_sub(out.len()) else {
            return false;
        };
        let bytes = &mut self.page.as_mut_slice()[HEADER + rest..HEADER + unread];
        out.copy_from_slice(bytes);
        bytes.zeroize();
        self.set_word(8, rest as u64);
        true
    }

    /// Wipes whatever is unread.
    fn discard(&mut self) {
        self.page.as_mut_slice()[HEADER..].zeroize();
        self.set_word(8, 0);
    }

    /// Replaces the contents with what `generate` writes (one generate request's output). On
    /// failure nothing is left unread (a partial output is wiped).
    fn refill(
        &mut self,
        generate: impl FnOnce(&mut [u8]) -> Result<(), RngError>,
    ) -> Result<(), RngError> {
        self.discard();
        let result = generate(&mut self.page.as_mut_slice()[HEADER..]);
        match result {
            Ok(()) => self.set_word(8, READ_AHEAD_LEN as u64),
            Err(_) => self.discard(),
        }
        result
    }
}

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
            shards.push(Shard(Mutex::new(ShardState {
                drbg: HmacDrbg::instantiate(
                    entropy,
                    nonce,
                    personalization.as_bytes(),
                    config.reseed_interval.max(1),
                ),
                ahead: ReadAhead::new(),
            })));
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

    /// Runs `f` on a shard (the calling thread's home shard when it is free), after making
    /// sure the shard's state is this process's own: in a forked child (its read-ahead page
    /// wiped by the kernel) the inherited state first takes fresh entropy, so parent and
    /// child never produce the same bytes.
    fn with_shard<T>(
        &self,
        f: impl FnOnce(&mut ShardState) -> Result<T, RngError>,
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
        let mut guard = (0..n)
            .find_map(|i| self.shards[(start + i) % n].0.try_lock().ok())
            .map_or_else(|| self.shards[start].0.lock(), Ok)
            .map_err(|_| RngError::Failed)?;
        let state = &mut *guard;
        if let Some(ahead) = state.ahead.as_mut().filter(|a| !a.armed()) {
            self.reseed(&mut state.drbg, b"craton-hsm drbg: forked child")?;
            ahead.arm();
        }
        f(state)
    }

    /// Fills `out` with random bytes.
    pub fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        if out.len() > READ_AHEAD_REQUEST {
            return self.fill_inner(out, false);
        }
        self.with_shard(|ShardState { drbg, ahead }| {
            let Some(ahead) = ahead else {
                return self.generate(drbg, out, false);
            };
            if !ahead.take(out) {
                ahead.refill(|buf| self.generate(drbg, buf, false))?;
                // Cannot fail: a request here is at most 64 bytes, a refill 992.
                if !ahead.take(out) {
                    return Err(RngError::Failed);
                }
            }
            Ok(())
        })
    }

    /// Fills `out` after reseeding from the entropy source first (prediction resistance).
    /// The output comes from a generate request of its own, never from the read-ahead.
    pub fn fill_with_prediction_resistance(&self, out: &mut [u8]) -> Result<(), RngError> {
        self.fill_inner(out, true)
    }

    fn fill_inner(&self, out: &mut [u8], prediction_resistance: bool) -> Result<(), RngError> {
        for chunk in out.chunks_mut(MAX_REQUEST) {
            self.with_shard(|state| self.generate(&mut state.drbg, chunk, prediction_resistance))?;
        }
        Ok(())
    }

    /// One generate request straight into `out` (at most `MAX_REQUEST` bytes), reseeding
    /// first when asked to or when the interval is up.
    fn generate(
        &self,
        drbg: &mut HmacDrbg,
        out: &mut [u8],
        prediction_resistance: bool,
    ) -> Result<(), RngError> {
        if prediction_resistance || drbg.needs_reseed() {
            self.reseed(drbg, &[])?;
        }
        drbg.generate(out, &[]).map_err(|e| self.fail(e))
    }

    /// Reseeds every shard from the entropy source with `additional` as additional input
    /// (SP 800-90A §9.2), and wipes every read-ahead, so that all later output depends on
    /// `additional` and on fresh entropy (`C_SeedRandom`).
    pub fn reseed_all(&self, additional: &[u8]) -> Result<(), RngError> {
        if self.is_failed() {
            return Err(RngError::Failed);
        }
        for shard in self.shards.iter() {
            let mut guard = shard.0.lock().map_err(|_| RngError::Failed)?;
            let state = &mut *guard;
            self.reseed(&mut state.drbg, additional)?;
            if let Some(ahead) = state.ahead.as_mut() {
                ahead.arm();
            }
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
    use std::sync::atomic::AtomicUsize;

    /// Distinct blocks while the counter runs down, then the same block for ever.
    struct StuckAfter(u8);

    impl EntropySource for StuckAfter {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RngError> {
            buf.fill(self.0);
            self.0 = self.0.saturating_sub(1);
            Ok(())
        }
    }

    #[test]
    fn stuck_entropy_is_caught_and_latches() {
        // Start-up draws two blocks (entropy and nonce): the second repeats the first.
        let cfg = RngConfig {
            reseed_interval: 1,
            shards: 1,
        };
        let r = Rng::new(Box::new(testing::StuckEntropy), cfg);
        assert_eq!(r.map(|_| ()).unwrap_err(), RngError::HealthTest);

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
    fn a_failed_refill_leaves_nothing_to_hand_out_and_latches() {
        // Start-up draws blocks 1 and 0. The first refill needs no reseed (interval 1); the
        // second does, draws 0 again, and its generate request fails the continuous test.
        let cfg = RngConfig {
            reseed_interval: 1,
            shards: 1,
        };
        let rng = Rng::new(Box::new(StuckAfter(1)), cfg).expect("start-up");
        let mut out = [0u8; 32];
        for _ in 0..READ_AHEAD_LEN / 32 {
            rng.fill(&mut out).expect("served from the first refill");
        }
        assert_eq!(rng.fill(&mut out), Err(RngError::HealthTest));
        assert!(rng.is_failed());
        {
            let shard = rng.shards[0].0.lock().expect("shard");
            let ahead = shard.ahead.as_ref().expect("read-ahead");
            assert_eq!(ahead.unread(), 0, "nothing left to hand out");
            assert!(ahead.page.as_slice()[HEADER..].iter().all(|b| *b == 0));
        }
        assert_eq!(rng.fill(&mut out), Err(RngError::Failed));
        assert_eq!(rng.fill(&mut [0u8; 8]), Err(RngError::Failed));
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

    /// A one-shard `Rng` on deterministic entropy, with the reference DRBG its shard starts
    /// from (same entropy, nonce and personalisation), and a count of entropy draws.
    fn one_shard(seed: [u8; 32]) -> (Rng, HmacDrbg, std::sync::Arc<AtomicUsize>) {
        struct Counting(testing::DeterministicEntropy, std::sync::Arc<AtomicUsize>);
        impl EntropySource for Counting {
            fn fill(&mut self, buf: &mut [u8]) -> Result<(), RngError> {
                self.1.fetch_add(1, Ordering::Relaxed);
                self.0.fill(buf)
            }
        }
        let draws = std::sync::Arc::new(AtomicUsize::new(0));
        let cfg = RngConfig {
            reseed_interval: 1 << 20,
            shards: 1,
        };
        let rng = Rng::new(
            Box::new(Counting(
                testing::DeterministicEntropy::new(seed),
                draws.clone(),
            )),
            cfg,
        )
        .expect("rng");
        let mut src = testing::DeterministicEntropy::new(seed);
        let (mut entropy, mut nonce) = ([0u8; 32], [0u8; 32]);
        src.fill(&mut entropy).expect("entropy");
        src.fill(&mut nonce).expect("nonce");
        let reference =
            HmacDrbg::instantiate(&entropy, &nonce[..16], b"craton-hsm drbg shard 0", 1 << 20);
        (rng, reference, draws)
    }

    #[test]
    fn small_requests_are_handed_the_drbg_output_itself() {
        let (rng, mut reference, draws) = one_shard([3; 32]);
        assert!(rng.shards[0].0.lock().expect("shard").ahead.is_some());
        let mut first = vec![0u8; READ_AHEAD_LEN];
        reference.generate(&mut first, b"").expect("reference");
        // Handed out from the end of one generate request's output, request by request.
        let mut expected_end = READ_AHEAD_LEN;
        for len in [32usize, 16, 64, 0, 1, 12] {
            let mut out = vec![0u8; len];
            rng.fill(&mut out).expect("fill");
            assert_eq!(out, first[expected_end - len..expected_end], "{len} bytes");
            expected_end -= len;
        }
        // Once too little is left, the rest is dropped and the next request's output used.
        let mut second = vec![0u8; READ_AHEAD_LEN];
        reference.generate(&mut second, b"").expect("reference");
        for _ in 0..expected_end / 64 {
            rng.fill(&mut [0u8; 64]).expect("fill");
        }
        let mut out = [0u8; 64];
        rng.fill(&mut out).expect("fill");
        assert_eq!(out[..], second[READ_AHEAD_LEN - 64..]);
        // Longer and prediction-resistant requests never come from the read-ahead.
        let mut long = [0u8; READ_AHEAD_REQUEST + 1];
        rng.fill(&mut long).expect("fill");
        let mut direct = [0u8; READ_AHEAD_REQUEST + 1];
        reference.generate(&mut direct, b"").expect("reference");
        assert_eq!(long, direct);
        let before = draws.load(Ordering::Relaxed);
        let mut pr = [0u8; 16];
        rng.fill_with_prediction_resistance(&mut pr).expect("fill");
        assert_eq!(
            draws.load(Ordering::Relaxed),
            before + 1,
            "one fresh entropy draw"
        );
        assert!(!second[..READ_AHEAD_LEN - 64].windows(16).any(|w| w == pr));
    }

    #[test]
    fn handed_out_bytes_are_wiped_from_the_read_ahead() {
        let (rng, _, _) = one_shard([4; 32]);
        let mut out = [0u8; 48];
        rng.fill(&mut out).expect("fill");
        let shard = rng.shards[0].0.lock().expect("shard");
        let page = shard.ahead.as_ref().expect("read-ahead").page.as_slice();
        let tail = &page[HEADER + READ_AHEAD_LEN - 48..];
        assert!(tail.iter().all(|b| *b == 0), "taken bytes are gone");
        assert_eq!(
            shard.ahead.as_ref().expect("read-ahead").unread(),
            READ_AHEAD_LEN - 48
        );
        assert!(
            page[HEADER..HEADER + 64].iter().any(|b| *b != 0),
            "the rest is still there"
        );
    }

    #[test]
    fn a_wiped_read_ahead_page_makes_the_shard_take_fresh_entropy_first() {
        // What a forked child sees: the kernel zeroes the page, mark and unread bytes alike.
        let (rng, mut reference, draws) = one_shard([5; 32]);
        rng.fill(&mut [0u8; 32]).expect("fill");
        let mut parent_next = vec![0u8; READ_AHEAD_LEN];
        reference
            .generate(&mut parent_next, b"")
            .expect("reference");
        {
            let mut shard = rng.shards[0].0.lock().expect("shard");
            let ahead = shard.ahead.as_mut().expect("read-ahead");
            ahead.page.as_mut_slice().zeroize();
            assert!(!ahead.armed());
        }
        let before = draws.load(Ordering::Relaxed);
        let mut child = [0u8; 32];
        rng.fill(&mut child).expect("fill");
        assert_eq!(draws.load(Ordering::Relaxed), before + 1, "reseeded once");
        assert_ne!(
            child[..],
            parent_next[READ_AHEAD_LEN - 64..READ_AHEAD_LEN - 32]
        );
        assert!(!parent_next.windows(32).any(|w| w == child));
        assert!(
            rng.shards[0]
                .0
                .lock()
                .expect("shard")
                .ahead
                .as_ref()
                .expect("ahead")
                .armed()
        );
        // Only once: the page is this process's again.
        rng.fill(&mut child).expect("fill");
        assert_eq!(draws.load(Ordering::Relaxed), before + 1);
    }

    #[test]
    fn reseeding_all_shards_puts_the_seed_into_every_later_output() {
        let outputs = |seed: &[u8]| {
            let rng = Rng::new(
                Box::new(testing::DeterministicEntropy::new([6; 32])),
                RngConfig {
                    reseed_interval: 1 << 20,
                    shards: 3,
                },
            )
            .expect("rng");
            // Draw first so every shard has output drawn ahead that must be dropped.
            let mut before = [0u8; 32];
            rng.fill(&mut before).expect("fill");
            rng.reseed_all(seed).expect("reseed");
            let mut after = [0u8; 32];
            rng.fill(&mut after).expect("fill");
            (before, after)
        };
        let (before_a, after_a) = outputs(b"caller seed a");
        let (before_b, after_b) = outputs(b"caller seed b");
        let (_, after_a_again) = outputs(b"caller seed a");
        assert_eq!(
            before_a, before_b,
            "same entropy, same output before the seed"
        );
        assert_ne!(after_a, after_b, "the seed changes what follows");
        assert_eq!(after_a, after_a_again);
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
