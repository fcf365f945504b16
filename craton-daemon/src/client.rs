//! Connecting to the daemon: mutual TLS with this client's certificate, trusting only the
//! configured CA, ALPN `h2`, and a deadline on every call so a dead daemon yields an error,
//! never a hang.

use crate::pb::hsm_client::HsmClient;
use craton_store::config::ClientConfig;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoint or TLS settings were refused, or the daemon could not be reached.
    #[error("{0}")]
    Transport(String),
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The endpoint for `cfg`, not yet connected.
pub fn endpoint(cfg: &ClientConfig) -> Result<Endpoint, ClientError> {
    let ca = read(&cfg.ca)?;
    let cert = read(&cfg.cert)?;
    let key = zeroize::Zeroizing::new(read(&cfg.key)?);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key.as_slice()));
    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    Endpoint::from_shared(cfg.endpoint.clone())
        .map_err(|e| ClientError::Transport(format!("endpoint {}: {e}", cfg.endpoint)))?
        .tls_config(tls)
        .map_err(|e| ClientError::Transport(format!("TLS settings: {e}")))
        .map(|e| {
            e.connect_timeout(timeout)
                .timeout(timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
        })
}

/// Connects now.
pub async fn connect(cfg: &ClientConfig) -> Result<HsmClient<Channel>, ClientError> {
    let channel = endpoint(cfg)?
        .connect()
        .await
        .map_err(|e| ClientError::Transport(format!("cannot reach {}: {e:?}", cfg.endpoint)))?;
    Ok(HsmClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}
