//! `craton-hsm-daemon`: the Craton HSM token served over gRPC behind mutual TLS.
//!
//! The library holds everything but `main`: the generated protobuf types ([`pb`]), the
//! conversions between them and the engine's types ([`convert`]), the one mapping between
//! PKCS#11 return values and gRPC statuses ([`status`]), the TLS configuration ([`tls`]), the
//! service ([`service`]), the threads its cryptography runs on ([`pool`]) and the listener
//! ([`server`]). Clients (the CLI's `--remote`, the
//! module's remote mode, tests) use [`client`].

pub mod client;
pub mod convert;
pub mod der;
pub mod devpki;
pub mod harden;
pub mod log;
pub mod notify;
pub mod pool;
pub mod server;
pub mod service;
pub mod status;
pub mod tls;

/// The generated protobuf messages and gRPC stubs (`proto/craton/hsm/v1/hsm.proto`).
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod pb {
    tonic::include_proto!("craton.hsm.v1");
}
