//! craton-daemon: will hold `craton-hsm-daemon`, the gRPC service behind mutual TLS, and the
//! client that the PKCS#11 module's remote mode uses.
//!
//! Not built yet: no binary and no API, so nothing listens or pretends to.
