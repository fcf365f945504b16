//! A throwaway private CA for demos and tests, made with the `openssl` command: a CA,
//! server and client certificates signed by it, revocations and CRLs with chosen dates.
//! Production deployments bring their own PKI (see `docs/daemon.md`); nothing here is used
//! by the daemon itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private CA in a directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    dir: PathBuf,
    name: String,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// Its serial number, hex.
    pub serial: String,
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A daemon: `serverAuth`, names `localhost` and 127.0.0.1.
    Server,
    /// A client: `clientAuth`.
    Client,
}

fn openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl (install Debian's openssl package): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

impl DevPki {
    /// Creates a CA named `name` (an EC P-256 key, valid ten years) in `dir`.
    pub fn create(dir: &Path, name: &str) -> Result<DevPki, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let pki = DevPki {
            dir: dir.to_owned(),
            name: name.to_owned(),
        };
        let subject = format!("/CN={name}");
        openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "3650",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir,
        )?;
        let write = |file: &str, text: &str| {
            std::fs::write(dir.join(file), text).map_err(|e| format!("{file}: {e}"))
        };
        write(&format!("{name}.index"), "")?;
        write(&format!("{name}.crlnumber"), "01\n")?;
        write(
            &format!("{name}.cnf"),
            &format!(
                "[ca]\ndefault_ca = dev\n[dev]\ndatabase = {name}.index\ncrlnumber = \
                 {name}.crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\n"
            ),
        )?;
        Ok(pki)
    }

    /// The CA certificate (what the other side trusts).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// Issues a certificate for `cn`, valid `days` days.
    pub fn issue(&self, cn: &str, usage: Usage, days: u32) -> Result<Issued, String> {
        let key = self.dir.join(format!("{cn}.key"));
        let csr = self.dir.join(format!("{cn}.csr"));
        let cert = self.dir.join(format!("{cn}.pem"));
        let ext = self.dir.join(format!("{cn}.ext"));
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                path_str(&key)?,
                "-out",
                path_str(&csr)?,
                "-subj",
                &format!("/CN={cn}"),
            ],
            &self.dir,
        )?;
        let usage_ext = match usage {
            Usage::Server => {
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
            }
            Usage::Client => "extendedKeyUsage=clientAuth\n",
        };
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 {usage_ext}"
            ),
        )
        .map_err(|e| format!("{}: {e}", ext.display()))?;
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| "no randomness for a serial")?;
        serial[0] &= 0x7f;
        let serial = hex::encode_upper(serial);
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                path_str(&csr)?,
                "-CA",
                path_str(&self.ca_cert())?,
                "-CAkey",
                &format!("{}.key", self.name),
                "-set_serial",
                &format!("0x{serial}"),
                "-days",
                &days.to_string(),
                "-sha256",
                "-extfile",
                path_str(&ext)?,
                "-out",
                path_str(&cert)?,
            ],
            &self.dir,
        )?;
        let _ = std::fs::remove_file(&csr);
        let _ = std::fs::remove_file(&ext);
        Ok(Issued { cert, key, serial })
    }

    /// Records `cert` as revoked (it appears in CRLs made afterwards).
    pub fn revoke(&self, cert: &Issued, cn: &str) -> Result<(), String> {
        let index = self.dir.join(format!("{}.index", self.name));
        let mut text = std::fs::read_to_string(&index).map_err(|e| e.to_string())?;
        text.push_str(&format!(
            "R\t491231235959Z\t250101000000Z\t{}\tunknown\t/CN={cn}\n",
            cert.serial
        ));
        std::fs::write(&index, text).map_err(|e| e.to_string())
    }

    /// Writes a CRL to `out` with the given `thisUpdate`/`nextUpdate`
    /// (`YYYYMMDDHHMMSSZ`); `None` means now and a week from now.
    pub fn crl(
        &self,
        out: &Path,
        this_update: Option<&str>,
        next_update: Option<&str>,
    ) -> Result<(), String> {
        let mut args = vec![
            "ca".to_owned(),
            "-gencrl".to_owned(),
            "-config".to_owned(),
            format!("{}.cnf", self.name),
            "-keyfile".to_owned(),
            format!("{}.key", self.name),
            "-cert".to_owned(),
            format!("{}.pem", self.name),
            "-out".to_owned(),
            path_str(out)?.to_owned(),
        ];
        if let Some(t) = this_update {
            args.extend(["-crl_lastupdate".to_owned(), t.to_owned()]);
        }
        if let Some(t) = next_update {
            args.extend(["-crl_nextupdate".to_owned(), t.to_owned()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(&refs, &self.dir)
    }
}

/// A daemon process started for a demo or a test, with a notify socket of its own so the
/// caller knows when it is ready (the same protocol systemd uses).
#[derive(Debug)]
pub struct DevDaemon {
    child: std::process::Child,
    notify: std::os::unix::net::UnixDatagram,
    log: PathBuf,
}

impl DevDaemon {
    /// Starts `binary --config config` (with `--allow-root` when running as root), its
    /// stderr in `log`, and waits up to a minute for `READY=1`.
    pub fn start(binary: &Path, config: &Path, log: &Path) -> Result<DevDaemon, String> {
        let sock = log.with_extension("notify");
        let _ = std::fs::remove_file(&sock);
        let notify = std::os::unix::net::UnixDatagram::bind(&sock)
            .map_err(|e| format!("{}: {e}", sock.display()))?;
        notify
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(config)
            .env("NOTIFY_SOCKET", &sock)
            .stderr(stderr);
        if rustix::process::geteuid().is_root() {
            cmd.arg("--allow-root");
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let d = DevDaemon {
            child,
            notify,
            log: log.to_owned(),
        };
        d.expect_notify("READY=1")?;
        Ok(d)
    }

    /// Waits for a notification starting with `prefix` (skipping others).
    pub fn expect_notify(&self, prefix: &str) -> Result<String, String> {
        let mut buf = [0u8; 512];
        loop {
            let n = self.notify.recv(&mut buf).map_err(|e| {
                format!(
                    "the daemon never sent {prefix} ({e}); its log:\n{}",
                    self.log()
                )
            })?;
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with(prefix) {
                return Ok(msg);
            }
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: rustix::process::Signal) -> Result<(), String> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, sig).map_err(|e| e.to_string())
    }

    /// SIGTERM, then waits; returns whether it exited cleanly.
    pub fn stop(mut self) -> Result<bool, String> {
        self.signal(rustix::process::Signal::TERM)?;
        let status = self.child.wait().map_err(|e| e.to_string())?;
        Ok(status.success())
    }
}

impl Drop for DevDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon's service run inside the calling process on a free loopback port, behind
/// mutual TLS with certificates from a throwaway CA: for tests of clients (the CLI's
/// `--remote`, the PKCS#11 module's remote mode) that need a daemon but not its process.
/// Stops when dropped.
#[derive(Debug)]
pub struct InProcessDaemon {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    service: std::sync::Arc<crate::service::Service>,
    /// What a client needs to reach it.
    pub client: craton_store::config::ClientConfig,
}

impl InProcessDaemon {
    /// Starts a daemon whose CA, certificates and state live under `dir`, on the engine
    /// configuration `config` (its `[daemon]` TLS settings and listen address are filled in
    /// here). The client certificate's CN is `client`.
    pub fn start(dir: &Path, mut config: craton_store::Config) -> Result<InProcessDaemon, String> {
        use std::sync::Arc;
        let pki = DevPki::create(&dir.join("pki"), "in-process-ca")?;
        let server = pki.issue("daemon", Usage::Server, 90)?;
        let client = pki.issue("client", Usage::Client, 90)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        config.daemon.listen_addr = addr;
        config.daemon.server_identities = vec![craton_store::config::ServerIdentity {
            cert: server.cert,
            key: server.key,
        }];
        config.daemon.client_ca = Some(pki.ca_cert());
        let hsm = Arc::new(craton_store::Hsm::open(config.clone()).map_err(|e| e.to_string())?);
        let service = Arc::new(crate::service::Service::new(
            hsm,
            config.daemon.pin_attempts_per_minute,
            1 << 20,
        ));
        let server = Arc::new(
            crate::server::Server::new(service.clone(), config.daemon)
                .map_err(|e| e.to_string())?,
        );
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = server
                    .serve(listener, async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(InProcessDaemon {
            stop: Some(tx),
            thread: Some(thread),
            service,
            client: craton_store::config::ClientConfig {
                endpoint: format!("https://localhost:{}", addr.port()),
                ca: pki.ca_cert(),
                cert: client.cert,
                key: client.key,
                timeout_secs: 30,
            },
        })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.service.connections()
    }

    /// The `[client]` section of a configuration that reaches this daemon.
    pub fn client_toml(&self) -> String {
        client_toml(&self.client)
    }
}

impl Drop for InProcessDaemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `c` as the `[client]` section of a configuration file.
pub fn client_toml(c: &craton_store::config::ClientConfig) -> String {
    format!(
        "[client]\nendpoint = \"{}\"\nca = {:?}\ncert = {:?}\nkey = {:?}\ntimeout_secs = {}\n",
        c.endpoint, c.ca, c.cert, c.key, c.timeout_secs
    )
}
