//! Integration tests of craton-core: known-answer vectors from NIST CAVP and Wycheproof, and
//! the self-test error state. One binary, one module per behaviour.

// Test helpers abort on malformed vector files with a message; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod cavp;
mod constants;
mod post_fault;
mod registry;
mod wycheproof_vectors;

use craton_core::rng::testing::DeterministicEntropy;
use craton_core::rng::{Rng, RngConfig};

/// A single-shard DRBG on a fixed seed, so vector tests that consume randomness are
/// reproducible.
fn test_rng(seed: u8) -> Rng {
    Rng::new(
        Box::new(DeterministicEntropy::new([seed; 32])),
        RngConfig {
            reseed_interval: 1 << 20,
            shards: 1,
        },
    )
    .expect("rng")
}
