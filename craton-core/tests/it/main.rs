//! Integration tests of craton-core: known-answer vectors from NIST CAVP and Wycheproof, and
//! the self-test error state. One binary, one module per behaviour.

mod cavp;
mod post_fault;
