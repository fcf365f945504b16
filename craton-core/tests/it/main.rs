//! Integration tests of craton-core: known-answer vectors from NIST CAVP and Wycheproof, and
//! the self-test error state. One binary, one module per behaviour.

// Test helpers abort on malformed vector files with a message; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod cavp;
mod post_fault;
mod registry;
mod wycheproof_vectors;
