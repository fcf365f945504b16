//! The daemon's TLS: a rustls `ServerConfig` built by hand (tonic's own settings cannot pin
//! versions, check CRLs or reload), on the aws-lc-rs provider.
//!
//! - TLS 1.3 and 1.2 only; the TLS 1.3 suites and the TLS 1.2 ECDHE AEAD suites only.
//! - Key exchange prefers the post-quantum hybrid X25519MLKEM768, then X25519, then P-256.
//! - ALPN `h2` is required: a client that does not offer it gets no certificate and the
//!   handshake fails (see [`TlsState::refusal`]).
//! - Client certificates are required and must chain to the configured CA bundle (never the
//!   system roots); an optional allow-list of SHA-256 fingerprints narrows that further.
//! - CRLs are read from files. A list counts only while fresh: before its `nextUpdate` and
//!   no older (since `thisUpdate`) than the configured maximum. When CRLs are configured, a
//!   client whose issuer has no fresh list is refused (fail closed), as is a revoked one.
//! - Several server identities may be configured side by side (rotation): each handshake
//!   gets the first whose CA the client names, else the first its signature schemes allow.

use crate::der;
use craton_store::config::DaemonConfig;
use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why TLS material could not be loaded. Each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file held nothing usable.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The configuration cannot be served safely.
    #[error("{0}")]
    Config(String),
}

/// SHA-256 of a certificate, lowercase hex (what `daemon.client_fingerprints` lists and the
/// audit log records).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// Whether a client offering `offered` shares at least one suite with [`provider()`].
pub fn suite_in_common(offered: &[rustls::CipherSuite]) -> bool {
    static OURS: std::sync::LazyLock<Vec<rustls::CipherSuite>> =
        std::sync::LazyLock::new(|| provider().cipher_suites.iter().map(|s| s.suite()).collect());
    offered.iter().any(|o| OURS.contains(o))
}

/// The provider: aws-lc-rs with the suites and groups above, in that order.
pub fn provider() -> CryptoProvider {
    use provider::cipher_suite::*;
    use provider::kx_group::*;
    CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_256_GCM_SHA384,
            TLS13_AES_128_GCM_SHA256,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![X25519MLKEM768, X25519, SECP256R1],
        ..provider::default_provider()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, what: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        path: path.to_owned(),
        what: what.into(),
    }
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(path, "is not a valid PEM certificate file"))?;
    if certs.is_empty() {
        return Err(invalid(path, "holds no certificate"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = zeroize::Zeroizing::new(read(path)?);
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| invalid(path, "holds no PEM private key"))
}

/// The CRLs in a file, PEM or DER.
fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(path)?;
    if bytes.starts_with(b"-----") {
        let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|_| invalid(path, "is not a valid PEM CRL file"))?;
        if crls.is_empty() {
            return Err(invalid(path, "holds no CRL"));
        }
        Ok(crls)
    } else {
        Ok(vec![CertificateRevocationListDer::from(bytes)])
    }
}

/// Whether `ip` is an address the daemon may bind without `allow_public_bind`: loopback,
/// RFC 1918, link-local, carrier-grade NAT, or IPv6 unique-local/link-local. The wildcard
/// addresses listen on every interface, public ones included, so they are public here.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// One CRL file's verdict.
#[derive(Debug, Clone)]
pub struct CrlStatus {
    /// The file.
    pub path: PathBuf,
    /// Fresh lists it holds, by issuer.
    pub fresh: Vec<CrlInfoAt>,
    /// Why it (or a list in it) does not count, if so.
    pub problem: Option<String>,
}

/// A fresh CRL and the file it came from.
#[derive(Debug, Clone)]
pub struct CrlInfoAt {
    /// The parsed fields.
    pub info: der::CrlInfo,
    /// The list itself.
    pub der: CertificateRevocationListDer<'static>,
}

/// Reads every configured CRL file and judges each list at `now` (seconds since the epoch).
pub fn read_crls(paths: &[PathBuf], max_age_secs: u64, now: i64) -> Vec<CrlStatus> {
    paths
        .iter()
        .map(|path| {
            let mut status = CrlStatus {
                path: path.clone(),
                fresh: Vec::new(),
                problem: None,
            };
            match load_crls(path) {
                Err(e) => status.problem = Some(e.to_string()),
                Ok(crls) => {
                    for c in crls {
                        match judge(&c, max_age_secs, now) {
                            Ok(info) => status.fresh.push(CrlInfoAt { info, der: c }),
                            Err(why) => {
                                status.problem = Some(format!("{}: {why}", path.display()));
                            }
                        }
                    }
                }
            }
            status
        })
        .collect()
}

/// A CRL's fields if it is fresh at `now`, else why not.
pub fn judge(crl: &[u8], max_age_secs: u64, now: i64) -> Result<der::CrlInfo, String> {
    let info = der::crl(crl).ok_or("not a DER certificate revocation list")?;
    freshness(&info, max_age_secs, now)?;
    Ok(info)
}

/// Whether a CRL counts at `now`: before its `nextUpdate` and issued no more than
/// `max_age_secs` ago. Judged when lists are loaded and again at each handshake.
fn freshness(info: &der::CrlInfo, max_age_secs: u64, now: i64) -> Result<(), String> {
    let Some(next) = info.next_update else {
        return Err("has no nextUpdate, so it can never be known to be current".into());
    };
    if now >= next {
        return Err(format!("expired {} s ago (nextUpdate passed)", now - next));
    }
    let age = now - info.this_update;
    if age > max_age_secs as i64 {
        return Err(format!(
            "issued {age} s ago, older than daemon.crl_max_age_secs ({max_age_secs})"
        ));
    }
    Ok(())
}

/// The verifier: webpki's chain and revocation checks, then ours (a fresh CRL for the
/// issuer when CRLs are configured, the fingerprint allow-list).
#[derive(Debug)]
struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// With CRLs configured: the issuers that have a fresh list and until when.
    crl_issuers: Option<Vec<der::CrlInfo>>,
    max_age_secs: u64,
    allow: Option<HashSet<String>>,
}

#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse(why: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(Refusal(why)),
    )))
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if let Some(issuers) = &self.crl_issuers {
            let at = now.as_secs() as i64;
            let cert = der::certificate(end_entity)
                .ok_or_else(|| refuse("client certificate cannot be parsed".into()))?;
            let fresh = issuers
                .iter()
                .any(|c| c.issuer == cert.issuer && freshness(c, self.max_age_secs, at).is_ok());
            if !fresh {
                return Err(refuse(
                    "no fresh CRL covers the client certificate's issuer (fail closed)".into(),
                ));
            }
        }
        if let Some(allow) = &self.allow {
            let fp = fingerprint(end_entity);
            if !allow.contains(&fp) {
                return Err(refuse(format!(
                    "client certificate {fp} is not in daemon.client_fingerprints"
                )));
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The server identities, chosen per handshake.
#[derive(Debug)]
struct Identities {
    keys: Vec<(Arc<CertifiedKey>, Vec<Vec<u8>>)>,
}

impl ResolvesServerCert for Identities {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let usable = |k: &&(Arc<CertifiedKey>, Vec<Vec<u8>>)| {
            k.0.key.choose_scheme(hello.signature_schemes()).is_some()
        };
        if let Some(cas) = hello.certificate_authorities() {
            let named = |k: &&(Arc<CertifiedKey>, Vec<Vec<u8>>)| {
                k.1.iter()
                    .any(|issuer| cas.iter().any(|ca| ca.as_ref() == strip_sequence(issuer)))
            };
            if let Some(k) = self.keys.iter().filter(usable).find(named) {
                return Some(k.0.clone());
            }
        }
        self.keys.iter().find(usable).map(|k| k.0.clone())
    }
}

/// A `DistinguishedName` from rustls holds the Name's contents without its SEQUENCE header.
fn strip_sequence(name: &[u8]) -> &[u8] {
    match name {
        [0x30, n, rest @ ..] if (*n as usize) < 0x80 => rest,
        [0x30, 0x81, _, rest @ ..] => rest,
        [0x30, 0x82, _, _, rest @ ..] => rest,
        _ => name,
    }
}

/// Refuses every handshake: used for clients that do not offer ALPN `h2`.
#[derive(Debug)]
struct NoCertificate;

impl ResolvesServerCert for NoCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

/// What a build of the TLS configuration produced.
#[derive(Debug)]
pub struct Built {
    /// The configuration.
    pub config: Arc<ServerConfig>,
    /// The CRL files' verdicts (empty without CRLs).
    pub crls: Vec<CrlStatus>,
    /// The expiry of each server certificate (leaf), by file.
    pub server_certs: Vec<(PathBuf, i64)>,
}

/// Loaded server identities and CA bundle: read at start and on `SIGHUP`, reused by the
/// scheduled CRL reloads.
#[derive(Debug, Clone)]
pub struct Material {
    identities: Vec<(Arc<CertifiedKey>, Vec<Vec<u8>>)>,
    server_certs: Vec<(PathBuf, i64)>,
    roots: Option<Arc<rustls::RootCertStore>>,
}

/// Reads the server identities and the client CA bundle.
pub fn load_material(cfg: &DaemonConfig) -> Result<Material, TlsError> {
    let provider = provider();
    if cfg.server_identities.is_empty() {
        return Err(TlsError::Config(
            "daemon.server_identities is empty: the daemon needs a certificate and key".into(),
        ));
    }
    let mut identities = Vec::new();
    let mut server_certs = Vec::new();
    for id in &cfg.server_identities {
        let chain = load_certs(&id.cert)?;
        let key = load_key(&id.key)?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| invalid(&id.key, format!("unusable private key ({e})")))?;
        let certified = CertifiedKey::new(chain.clone(), signing);
        certified
            .keys_match()
            .map_err(|_| invalid(&id.key, format!("does not match {}", id.cert.display())))?;
        let parsed = der::certificate(&chain[0])
            .ok_or_else(|| invalid(&id.cert, "first certificate cannot be parsed"))?;
        let issuers = chain
            .iter()
            .filter_map(|c| der::certificate(c).map(|i| i.issuer))
            .collect();
        server_certs.push((id.cert.clone(), parsed.not_after));
        identities.push((Arc::new(certified), issuers));
    }
    let roots = match &cfg.client_ca {
        None => None,
        Some(path) => {
            let mut store = rustls::RootCertStore::empty();
            for c in load_certs(path)? {
                store
                    .add(c)
                    .map_err(|e| invalid(path, format!("not a usable CA certificate ({e})")))?;
            }
            Some(Arc::new(store))
        }
    };
    Ok(Material {
        identities,
        server_certs,
        roots,
    })
}

/// Builds the server configuration from loaded material and freshly read CRLs.
pub fn build(cfg: &DaemonConfig, material: &Material, now: i64) -> Result<Built, TlsError> {
    let provider = Arc::new(provider());
    let anonymous_ok = cfg.loopback_without_client_auth && cfg.listen_addr.ip().is_loopback();
    let crls = read_crls(&cfg.crls, cfg.crl_max_age_secs, now);
    let verifier: Arc<dyn ClientCertVerifier> = match &material.roots {
        None if anonymous_ok => WebPkiClientVerifier::no_client_auth(),
        None => {
            return Err(TlsError::Config(
                "daemon.client_ca is not set: clients cannot be authenticated (set it, or \
                 serve loopback only with daemon.loopback_without_client_auth = true)"
                    .into(),
            ));
        }
        Some(roots) => {
            let fresh: Vec<&CrlInfoAt> = crls.iter().flat_map(|c| c.fresh.iter()).collect();
            let mut builder =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .with_crls(fresh.iter().map(|c| c.der.clone()))
                    .only_check_end_entity_revocation()
                    .enforce_revocation_expiration();
            if anonymous_ok {
                builder = builder.allow_unauthenticated();
            }
            let inner = builder
                .build()
                .map_err(|e| TlsError::Config(format!("client verification: {e}")))?;
            let allow = (!cfg.client_fingerprints.is_empty()).then(|| {
                cfg.client_fingerprints
                    .iter()
                    .map(|f| f.to_ascii_lowercase().replace(':', ""))
                    .collect()
            });
            Arc::new(ClientVerifier {
                inner,
                crl_issuers: (!cfg.crls.is_empty())
                    .then(|| fresh.iter().map(|c| c.info.clone()).collect()),
                max_age_secs: cfg.crl_max_age_secs,
                allow,
            })
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(Identities {
            keys: material.identities.clone(),
        }));
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Resumed sessions skip the client certificate check; every connection presents its
    // certificate afresh, so a revocation takes effect at the next connection.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Built {
        config: Arc::new(config),
        crls,
        server_certs: material.server_certs.clone(),
    })
}

/// The configuration in force, swapped whole on reload; each new connection takes the
/// current one, established connections keep theirs.
#[derive(Debug)]
pub struct TlsState {
    current: RwLock<Arc<ServerConfig>>,
    refusal: Arc<ServerConfig>,
}

impl TlsState {
    /// Starts with `config`.
    pub fn new(config: Arc<ServerConfig>) -> TlsState {
        let refusal = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map(|b| {
                b.with_no_client_auth()
                    .with_cert_resolver(Arc::new(NoCertificate))
            })
            .map(Arc::new)
            .unwrap_or_else(|_| config.clone());
        TlsState {
            current: RwLock::new(config),
            refusal,
        }
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts `config` in force for new connections.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        match self.current.write() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
    }

    /// A configuration that fails every handshake with an alert (no certificate to offer).
    pub fn refusal(&self) -> Arc<ServerConfig> {
        self.refusal.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_told_from_public_ones() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(a.parse().expect("ip")), "{a}");
        }
        for a in ["0.0.0.0", "8.8.8.8", "172.32.0.1", "::", "2001:db8::1"] {
            assert!(!is_private(a.parse().expect("ip")), "{a}");
        }
    }

    #[test]
    fn fingerprints_are_lowercase_sha256_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
