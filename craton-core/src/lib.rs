//! craton-core: the pure cryptographic heart of Craton HSM.
//!
//! It holds the mechanism registry, the cryptographic operations on AWS-LC (through aws-lc-rs,
//! and through `aws-lc-sys` in the one `ffi` module where aws-lc-rs stops short), key material
//! types that lock, hide and wipe secrets, the SP 800-90A HMAC_DRBG, the power-on self-tests
//! and the PKCS#11 attribute model.
//!
//! It refuses to do I/O: no files, sockets, threads or global state. Entropy arrives through
//! [`rng::EntropySource`], the module image to check arrives as bytes, and every piece of
//! state (DRBG, self-test state, registry) is a value its owner passes around.
#![deny(missing_docs)]

// Declared first: its `number_space!` macro is used by `attribute`.
#[macro_use]
pub mod mechanism;

pub mod aes;
mod algorithms;
pub mod attribute;
pub mod digest;
pub mod ec;
pub mod edwards;
pub mod error;
mod ffi;
pub mod kdf;
pub mod key;
pub mod mac;
pub mod ops;
pub mod post;
pub mod pq;
pub mod rng;
pub mod rsa;
pub mod secret;
pub mod spki;

pub use error::{CryptoError, Result};
pub use ffi::cipher::Direction;
pub use ffi::mapped::SharedFileMap;
pub use mechanism::{KeyType, MechanismInfo, MechanismType, Operations, Policy, Registry};
