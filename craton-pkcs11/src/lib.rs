//! craton-pkcs11: `libcraton_hsm.so`, the Craton HSM PKCS#11 3.0 module.
//!
//! Any PKCS#11 application loads it (`pkcs11-tool --module libcraton_hsm.so`, OpenSSL's
//! pkcs11 provider or engine, p11-kit, Java's SunPKCS11, NSS) and drives the
//! [`craton_store::Hsm`] engine through the C ABI: `C_GetFunctionList` hands out the 2.40
//! table, `C_GetInterfaceList` / `C_GetInterface` the 3.0 one. `C_Initialize` loads the
//! configuration (`CRATON_HSM_CONFIG`, then `/etc/craton-hsm/craton_hsm.toml`, then the
//! embedded default), runs the power-on self-tests and checks this file against its
//! `libcraton_hsm.hmac` integrity sidecar.
//!
//! Only this crate knows the C ABI, and all of its `unsafe` lives in the [`ffi`] module
//! tree: pointer helpers, and the exported functions one file per chapter of the
//! specification. It refuses to guess: a null pointer, a length that cannot be right, a
//! malformed template or parameter gets the specification's error code and changes nothing,
//! and no panic crosses the ABI.
#![deny(missing_docs)]

mod attrs;
pub mod ffi;
mod rv;
mod state;

pub use ffi::general::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
