//! The listener: TCP accept, the TLS handshake under a deadline (a client that stalls in the
//! handshake holds only its own task), the ALPN and certificate checks, then tonic over the
//! accepted streams. Reloads swap the TLS configuration for new connections only.

use crate::pb::hsm_server::HsmServer;
use crate::service::{Connection, ConnectionGuard, Service};
use crate::tls::{self, Built, Material, TlsError, TlsState};
use crate::{der, log, notify};
use craton_store::Event;
use craton_store::config::DaemonConfig;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The running daemon's network side.
#[derive(Debug)]
pub struct Server {
    service: Arc<Service>,
    cfg: DaemonConfig,
    tls: TlsState,
    material: Mutex<Material>,
}

impl Server {
    /// Loads the TLS material and builds the first configuration. Refuses a public bind
    /// address unless the configuration allows it.
    pub fn new(service: Arc<Service>, cfg: DaemonConfig) -> Result<Server, TlsError> {
        let ip = cfg.listen_addr.ip();
        if !tls::is_private(ip) && !cfg.allow_public_bind {
            return Err(TlsError::Config(format!(
                "daemon.listen_addr {} is not a private address; set \
                 daemon.allow_public_bind = true to serve on it anyway",
                cfg.listen_addr
            )));
        }
        let material = tls::load_material(&cfg)?;
        let built = tls::build(&cfg, &material, der::now())?;
        let server = Server {
            tls: TlsState::new(built.config.clone()),
            service,
            cfg,
            material: Mutex::new(material),
        };
        server.report(&built);
        Ok(server)
    }

    /// The service.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    fn audit(&self, event: Event) {
        if let Err(e) = self.service.hsm().report(event) {
            log::error("audit entry not written", &[("error", &e)]);
        }
    }

    /// Logs and audits what a build found: stale CRLs, certificates near expiry.
    fn report(&self, built: &Built) {
        if !self.cfg.crls.is_empty() {
            let fresh = built.crls.iter().map(|c| c.fresh.len() as u64).sum();
            let stale: Vec<String> = built
                .crls
                .iter()
                .filter_map(|c| c.problem.clone())
                .collect();
            for s in &stale {
                log::warn(
                    "CRL not in force; clients of its issuer are refused until a fresh one arrives",
                    &[("problem", s)],
                );
            }
            self.audit(Event::CrlsLoaded { fresh, stale });
        }
        let now = der::now();
        for (path, not_after) in &built.server_certs {
            let days = (not_after - now) / 86_400;
            if days < 30 {
                log::warn(
                    "server certificate expires soon",
                    &[("cert", &path.display()), ("days_left", &days)],
                );
            }
        }
    }

    /// `SIGHUP`: re-reads certificates, keys, the CA bundle and CRLs. A bad new file keeps the
    /// old material in force and says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let result = tls::load_material(&self.cfg)
            .and_then(|m| tls::build(&self.cfg, &m, der::now()).map(|b| (m, b)));
        match result {
            Ok((material, built)) => {
                self.tls.replace(built.config.clone());
                if let Ok(mut m) = self.material.lock() {
                    *m = material;
                }
                log::info("TLS material reloaded", &[]);
                self.audit(Event::TlsReloaded {
                    success: true,
                    detail: String::new(),
                });
                self.report(&built);
                Ok(())
            }
            Err(e) => {
                log::error(
                    "reload failed; the previous TLS material stays in force",
                    &[("error", &e)],
                );
                self.audit(Event::TlsReloaded {
                    success: false,
                    detail: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// The scheduled CRL re-read: same certificates, fresh CRL verdicts.
    pub fn reload_crls(&self) {
        let material = match self.material.lock() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        };
        match tls::build(&self.cfg, &material, der::now()) {
            Ok(built) => {
                self.tls.replace(built.config.clone());
                self.report(&built);
            }
            Err(e) => log::error("CRL reload failed", &[("error", &e)]),
        }
    }

    /// Runs the TLS handshake for one connection, refusing clients without ALPN `h2`.
    async fn handshake(&self, tcp: TcpStream, peer: SocketAddr) -> Option<TlsStream<TcpStream>> {
        let acceptor =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
        let attempt = async {
            let start = acceptor.await.map_err(|e| e.to_string())?;
            let offers_h2 = start
                .client_hello()
                .alpn()
                .is_some_and(|mut protos| protos.any(|p| p == b"h2"));
            let common_suite = tls::suite_in_common(start.client_hello().cipher_suites());
            let refusal = if !offers_h2 {
                Some("client did not offer ALPN h2")
            } else if !common_suite {
                Some("no cipher suite in common (only TLS 1.3 and ECDHE AEAD suites are served)")
            } else {
                None
            };
            if let Some(why) = refusal {
                // Fail the handshake with an alert rather than dropping the socket, so the
                // client sees a TLS refusal.
                let _ = start.into_stream(self.tls.refusal()).await;
                return Err(why.to_owned());
            }
            start
                .into_stream(self.tls.current())
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(reason)) => {
                self.refused(peer, &reason);
                None
            }
            Err(_) => {
                self.refused(peer, "TLS handshake timed out");
                None
            }
        }
    }

    fn refused(&self, peer: SocketAddr, reason: &str) {
        log::warn(
            "connection refused",
            &[("peer", &peer), ("reason", &reason)],
        );
        self.audit(Event::ConnectionRefused {
            peer: peer.to_string(),
            reason: reason.to_owned(),
        });
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight calls finish,
    /// and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Conn>>(64);
        let accept_server = self.clone();
        let accept = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait, do not spin.
                        log::error("accept failed", &[("error", &e)]);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let server = accept_server.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(stream) = server.handshake(tcp, peer).await {
                        let conn = Conn::new(stream, &server.service);
                        let _ = tx.send(Ok(conn)).await;
                    }
                });
            }
        });
        let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<HsmServer<Arc<Service>>>()
            .await;
        let max = self.cfg.max_request_bytes;
        let hsm = HsmServer::new(self.service.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(max.max(16 << 20));
        let result = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .max_concurrent_streams(Some(256))
            .tcp_nodelay(true)
            .add_service(health)
            .add_service(hsm)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        accept.abort();
        result
    }
}

/// Runs reload triggers: `SIGHUP` reloads everything (with systemd's RELOADING/READY
/// around it); the CRL timer re-reads CRLs.
pub async fn reload_loop(server: Arc<Server>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            log::error(
                "cannot watch SIGHUP; reload is unavailable",
                &[("error", &e)],
            );
            return;
        }
    };
    let period = Duration::from_secs(server.cfg.crl_reload_secs.max(1));
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = notify::reloading();
                let s = server.clone();
                let _ = tokio::task::spawn_blocking(move || s.reload()).await;
                let _ = notify::notify("READY=1");
            }
            _ = timer.tick() => {
                if !server.cfg.crls.is_empty() {
                    let s = server.clone();
                    let _ = tokio::task::spawn_blocking(move || s.reload_crls()).await;
                }
            }
        }
    }
}

static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An accepted connection: the TLS stream, and what each request on it learns about it
/// (who the client is, which connection, and the guard that ends its sessions with it).
struct Conn {
    inner: TlsStream<TcpStream>,
    info: Connection,
    /// Until the client's first bytes after the handshake (its HTTP/2 preface) arrive: when
    /// the connection is closed if they have not. HTTP/2 keep-alive pings only start once
    /// HTTP/2 has, so without this a client that finished TLS and then said nothing would
    /// hold its connection until shutdown.
    silence: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Conn {
    fn new(inner: TlsStream<TcpStream>, service: &Arc<Service>) -> Conn {
        let id = NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fingerprint = inner
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| tls::fingerprint(c))
            .unwrap_or_default();
        Conn {
            inner,
            info: Connection {
                id,
                caller: craton_store::audit::Caller::Client(fingerprint.clone()).json(),
                fingerprint: fingerprint.into(),
                guard: Arc::new(ConnectionGuard::new(id, service)),
            },
            silence: Some(Box::pin(tokio::time::sleep(HANDSHAKE_TIMEOUT))),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Connection;

    fn connect_info(&self) -> Connection {
        self.info.clone()
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        let read = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.silence.is_some() {
            match &read {
                Poll::Ready(Ok(())) if buf.filled().len() > before => self.silence = None,
                Poll::Pending => {
                    if let Some(deadline) = self.silence.as_mut()
                        && deadline.as_mut().poll(cx).is_ready()
                    {
                        log::warn(
                            "connection closed: no HTTP/2 after the TLS handshake",
                            &[("client", &self.info.fingerprint)],
                        );
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no HTTP/2 preface in time",
                        )));
                    }
                }
                Poll::Ready(_) => {}
            }
        }
        read
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
