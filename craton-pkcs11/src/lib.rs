//! craton-pkcs11: will build `libcraton_hsm.so`, the PKCS#11 3.0 module.
//!
//! Not built yet: it exports no C symbols, so no application can load it and believe it works.
//! The module arrives with the PKCS#11 issue, on top of craton-store.
