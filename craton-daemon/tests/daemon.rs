//! The daemon binary with real peers: `openssl s_client` for every TLS refusal the operator
//! page asks for, a gRPC client for the token calls, a raw TLS connection held open across a
//! reload, the startup refusals, the scheduled CRL re-read, the request size bound and
//! loopback without client certificates.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use craton_daemon::devpki::{DevDaemon, DevPki, Issued, Usage};
use craton_daemon::pb;
use craton_daemon::status::rv_of;
use cryptoki_sys::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_craton-hsm-daemon");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("craton-daemon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The PKI every test uses: a CA, a server, two clients, a client of another CA.
struct Pki {
    ca: DevPki,
    server: Issued,
    alice: Issued,
    bob: Issued,
    stranger: Issued,
}

fn pki(dir: &Path) -> Pki {
    let ca = DevPki::create(&dir.join("pki"), "test-ca").expect("CA");
    let other = DevPki::create(&dir.join("other"), "other-ca").expect("other CA");
    Pki {
        server: ca.issue("server", Usage::Server, 365).expect("server"),
        alice: ca.issue("alice", Usage::Client, 365).expect("alice"),
        bob: ca.issue("bob", Usage::Client, 365).expect("bob"),
        stranger: other
            .issue("stranger", Usage::Client, 365)
            .expect("stranger"),
        ca,
    }
}

struct Daemon {
    inner: Option<DevDaemon>,
    port: u16,
}

impl Daemon {
    fn config(dir: &Path, port: u16, pki: &Pki, daemon_extra: &str) -> PathBuf {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).expect("state");
        std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("mode");
        let text = format!(
            "[token]\nstate_dir = {state:?}\n[security]\npbkdf2_iterations = 1000\n\
             development_build = true\n[daemon]\nlisten_addr = \"127.0.0.1:{port}\"\n\
             server_identities = [{{ cert = {:?}, key = {:?} }}]\nclient_ca = {:?}\n\
             {daemon_extra}\n",
            pki.server.cert,
            pki.server.key,
            pki.ca.ca_cert()
        );
        let path = dir.join("craton_hsm.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    /// Starts the daemon and waits for READY=1.
    fn start(dir: &Path, config: &Path, port: u16) -> Daemon {
        let inner = DevDaemon::start(Path::new(BIN), config, &dir.join("daemon.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        Daemon {
            inner: Some(inner),
            port,
        }
    }

    fn d(&self) -> &DevDaemon {
        self.inner.as_ref().expect("running")
    }

    fn expect_notify(&self, prefix: &str) -> String {
        self.d()
            .expect_notify(prefix)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn log(&self) -> String {
        self.d().log()
    }

    fn signal(&self, sig: rustix::process::Signal) {
        self.d().signal(sig).expect("signal");
    }

    fn client_config(&self, pki: &Pki, who: &Issued) -> craton_store::config::ClientConfig {
        craton_store::config::ClientConfig {
            endpoint: format!("https://localhost:{}", self.port),
            ca: pki.ca.ca_cert(),
            cert: who.cert.clone(),
            key: who.key.clone(),
            timeout_secs: 30,
        }
    }

    /// Stops with SIGTERM; whether it exited cleanly.
    fn stop(mut self) -> bool {
        self.inner.take().expect("running").stop().expect("stop")
    }
}

/// `openssl s_client` against the daemon; Ok(()) when the server accepted the connection
/// (the handshake finished and no alert followed within a second), Err(output) otherwise.
fn s_client(port: u16, pki: &Pki, args: &[&str]) -> Result<(), String> {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(pki.ca.ca_cert())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    // Hold stdin open for a moment: in TLS 1.3 the server's verdict on the client
    // certificate arrives after the client's handshake has finished.
    let stdin = child.stdin.take();
    std::thread::sleep(Duration::from_millis(1200));
    drop(stdin);
    let out = child.wait_with_output().expect("s_client output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && !text.contains("alert") {
        Ok(())
    } else {
        Err(text)
    }
}

fn refused(port: u16, pki: &Pki, args: &[&str], alert: &str) {
    match s_client(port, pki, args) {
        Ok(()) => panic!("accepted with {args:?}"),
        Err(text) => assert!(
            text.contains(alert),
            "refused with {args:?} but not by `{alert}`:\n{text}"
        ),
    }
}

fn cert_args(who: &Issued) -> Vec<String> {
    vec![
        "-cert".into(),
        who.cert.display().to_string(),
        "-key".into(),
        who.key.display().to_string(),
    ]
}

fn with<'a>(base: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

#[test]
fn openssl_clients_are_refused_for_each_weakness_and_accepted_otherwise() {
    let dir = scratch("sclient");
    let pki = pki(&dir);
    pki.ca.revoke(&pki.bob, "bob").expect("revoke");
    let crl = dir.join("ca.crl");
    pki.ca.crl(&crl, None, None).expect("crl");
    let port = free_port();
    let config = Daemon::config(
        &dir,
        port,
        &pki,
        &format!("crls = [{crl:?}]\ncrl_max_age_secs = 86400"),
    );
    let daemon = Daemon::start(&dir, &config, port);
    let alice = cert_args(&pki.alice);
    let bob = cert_args(&pki.bob);
    let stranger = cert_args(&pki.stranger);

    s_client(port, &pki, &with(&alice, &["-alpn", "h2"])).expect("TLS 1.3 with h2");
    s_client(port, &pki, &with(&alice, &["-alpn", "h2", "-tls1_2"])).expect("TLS 1.2 AEAD");

    refused(
        port,
        &pki,
        &with(
            &alice,
            &["-alpn", "h2", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        ),
        "alert",
    );
    refused(
        port,
        &pki,
        &with(
            &alice,
            &[
                "-alpn",
                "h2",
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-SHA256",
            ],
        ),
        "alert",
    );
    refused(port, &pki, &["-alpn", "h2"], "certificate required");
    refused(port, &pki, &with(&stranger, &["-alpn", "h2"]), "alert");
    refused(port, &pki, &with(&bob, &["-alpn", "h2"]), "alert");
    refused(
        port,
        &pki,
        &alice.iter().map(String::as_str).collect::<Vec<_>>(),
        "alert",
    );

    let log = daemon.log();
    for reason in [
        "client did not offer ALPN h2",
        "no cipher suite in common",
        "peer sent no certificates",
        "UnknownIssuer",
        "Revoked",
    ] {
        assert!(log.contains(reason), "the log names `{reason}`:\n{log}");
    }
    assert!(daemon.stop());
    let audit = std::fs::read_to_string(dir.join("state/audit.log")).expect("audit log");
    assert!(
        audit.matches("\"connection_refused\"").count() >= 6,
        "{audit}"
    );
    assert!(audit.contains("\"crls_loaded\""));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_stale_crl_refuses_its_issuers_clients() {
    let dir = scratch("stale");
    let pki = pki(&dir);
    // Past its nextUpdate.
    let expired = dir.join("expired.crl");
    pki.ca
        .crl(&expired, Some("20250101000000Z"), Some("20250108000000Z"))
        .expect("crl");
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, &format!("crls = [{expired:?}]"));
    let daemon = Daemon::start(&dir, &config, port);
    refused(
        port,
        &pki,
        &with(&cert_args(&pki.alice), &["-alpn", "h2"]),
        "alert",
    );
    assert!(
        daemon.log().contains("no fresh CRL covers"),
        "{}",
        daemon.log()
    );
    drop(daemon);

    // Current by nextUpdate, but older than the configured maximum age.
    let old = dir.join("old.crl");
    let this_update = {
        let t = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64;
        let (y, m, d) = craton_store::clock::civil_from_days(secs / 86_400);
        format!("{y:04}{m:02}{d:02}000000Z")
    };
    pki.ca
        .crl(&old, Some(&this_update), Some("20491231000000Z"))
        .expect("crl");
    let port = free_port();
    let config = Daemon::config(
        &dir,
        port,
        &pki,
        &format!("crls = [{old:?}]\ncrl_max_age_secs = 86400"),
    );
    let daemon = Daemon::start(&dir, &config, port);
    refused(
        port,
        &pki,
        &with(&cert_args(&pki.alice), &["-alpn", "h2"]),
        "alert",
    );
    assert!(daemon.log().contains("older than daemon.crl_max_age_secs"));
    drop(daemon);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> CK_RV {
    match r {
        Ok(_) => CKR_OK,
        Err(s) => rv_of(&s),
    }
}

fn ec_params_p256() -> Vec<u8> {
    // OID 1.2.840.10045.3.1.7
    vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sign_and_verify_and_never_see_each_others_sessions() {
    use pb::attribute::Value;
    let dir = scratch("rpc");
    let pki = pki(&dir);
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, "pin_attempts_per_minute = 4");
    let daemon = Daemon::start(&dir, &config, port);
    let mut alice = craton_daemon::client::connect(&daemon.client_config(&pki, &pki.alice))
        .await
        .expect("alice connects");
    let mut bob = craton_daemon::client::connect(&daemon.client_config(&pki, &pki.bob))
        .await
        .expect("bob connects");

    let status = alice
        .get_status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.post, "passed");
    let alice_fp = craton_daemon::tls::fingerprint(
        &craton_daemon::tls::load_certs(&pki.alice.cert).expect("cert")[0],
    );
    assert_eq!(status.client_fingerprint, alice_fp);

    init_token(&mut alice, b"so-pin-1234", "remote").await;
    let s = alice
        .open_session(pb::OpenSessionRequest {
            slot: 0,
            read_write: true,
        })
        .await
        .expect("open")
        .into_inner()
        .session;
    alice
        .login(pb::LoginRequest {
            session: s,
            user_type: CKU_SO,
            pin: b"so-pin-1234".to_vec(),
        })
        .await
        .expect("SO login");
    alice
        .init_pin(pb::InitPinRequest {
            session: s,
            pin: b"user-pin-1234".to_vec(),
        })
        .await
        .expect("init pin");
    alice
        .logout(pb::SessionRequest { session: s })
        .await
        .expect("logout");
    alice
        .login(pb::LoginRequest {
            session: s,
            user_type: CKU_USER,
            pin: b"user-pin-1234".to_vec(),
        })
        .await
        .expect("user login");

    let attr = |t: u64, v: Value| pb::Attribute {
        r#type: t,
        value: Some(v),
    };
    let pair = alice
        .generate_key_pair(pb::GenerateKeyPairRequest {
            session: s,
            mechanism: Some(pb::Mechanism {
                r#type: CKM_EC_KEY_PAIR_GEN,
                params: None,
            }),
            public_template: vec![
                attr(CKA_EC_PARAMS, Value::Bytes(ec_params_p256())),
                attr(CKA_VERIFY, Value::Boolean(true)),
            ],
            private_template: vec![
                attr(CKA_SIGN, Value::Boolean(true)),
                attr(CKA_SENSITIVE, Value::Boolean(true)),
            ],
        })
        .await
        .expect("key pair")
        .into_inner();
    let ecdsa = || {
        Some(pb::Mechanism {
            r#type: CKM_ECDSA_SHA256,
            params: None,
        })
    };
    alice
        .sign_init(pb::OperationInit {
            session: s,
            mechanism: ecdsa(),
            key: pair.private_key,
        })
        .await
        .expect("sign init");
    let signature = alice
        .sign(pb::DataRequest {
            session: s,
            data: b"remote message".to_vec(),
        })
        .await
        .expect("sign")
        .into_inner()
        .data;
    assert_eq!(signature.len(), 64);
    alice
        .verify_init(pb::OperationInit {
            session: s,
            mechanism: ecdsa(),
            key: pair.public_key,
        })
        .await
        .expect("verify init");
    alice
        .verify(pb::VerifyRequest {
            session: s,
            data: b"remote message".to_vec(),
            signature: signature.clone(),
        })
        .await
        .expect("verifies");
    alice
        .verify_init(pb::OperationInit {
            session: s,
            mechanism: ecdsa(),
            key: pair.public_key,
        })
        .await
        .expect("verify init");
    assert_eq!(
        code(
            alice
                .verify(pb::VerifyRequest {
                    session: s,
                    data: b"another message".to_vec(),
                    signature,
                })
                .await
        ),
        CKR_SIGNATURE_INVALID
    );
    // The one-shot SignData: a signature the token verifies, and a public key refused as a
    // signing key, with no operation left running afterwards.
    let one_shot = alice
        .sign_data(pb::SignDataRequest {
            session: s,
            mechanism: ecdsa(),
            key: pair.private_key,
            data: b"one round trip".to_vec(),
        })
        .await
        .expect("sign data")
        .into_inner()
        .data;
    alice
        .verify_init(pb::OperationInit {
            session: s,
            mechanism: ecdsa(),
            key: pair.public_key,
        })
        .await
        .expect("verify init");
    alice
        .verify(pb::VerifyRequest {
            session: s,
            data: b"one round trip".to_vec(),
            signature: one_shot,
        })
        .await
        .expect("the one-shot signature verifies");
    assert_eq!(
        code(
            alice
                .sign_data(pb::SignDataRequest {
                    session: s,
                    mechanism: ecdsa(),
                    key: pair.public_key,
                    data: b"x".to_vec(),
                })
                .await
        ),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );

    // The private key's value never leaves.
    let values = alice
        .get_attribute_value(pb::GetAttributeRequest {
            session: s,
            object: pair.private_key,
            types: vec![CKA_VALUE, CKA_SIGN],
        })
        .await
        .expect("attributes")
        .into_inner()
        .values;
    assert_eq!(
        values[0].result,
        Some(pb::attribute_result::Result::Error(CKR_ATTRIBUTE_SENSITIVE))
    );

    // AES-GCM with a module-generated IV, then decryption with it.
    let aes = alice
        .generate_key(pb::GenerateKeyRequest {
            session: s,
            mechanism: Some(pb::Mechanism {
                r#type: CKM_AES_KEY_GEN,
                params: None,
            }),
            template: vec![
                attr(CKA_VALUE_LEN, Value::Number(32)),
                attr(CKA_ENCRYPT, Value::Boolean(true)),
                attr(CKA_DECRYPT, Value::Boolean(true)),
            ],
        })
        .await
        .expect("aes")
        .into_inner()
        .object;
    let gcm = |iv: Vec<u8>, generate: u32| {
        Some(pb::Mechanism {
            r#type: CKM_AES_GCM,
            params: Some(pb::mechanism::Params::Gcm(pb::GcmParams {
                iv,
                aad: b"aad".to_vec(),
                tag_bits: 128,
                generate_iv_length: generate,
                generate_iv_fixed: Vec::new(),
            })),
        })
    };
    let iv = alice
        .encrypt_init(pb::OperationInit {
            session: s,
            mechanism: gcm(Vec::new(), 12),
            key: aes,
        })
        .await
        .expect("encrypt init")
        .into_inner()
        .generated_iv;
    assert_eq!(iv.len(), 12);
    let ct = alice
        .encrypt(pb::DataRequest {
            session: s,
            data: b"secret".to_vec(),
        })
        .await
        .expect("encrypt")
        .into_inner()
        .data;
    let dec = alice
        .decrypt_init(pb::OperationInit {
            session: s,
            mechanism: gcm(iv, 0),
            key: aes,
        })
        .await
        .expect("decrypt init")
        .into_inner();
    assert!(dec.generated_iv.is_empty());
    let pt = alice
        .decrypt(pb::DataRequest {
            session: s,
            data: ct,
        })
        .await
        .expect("decrypt")
        .into_inner()
        .data;
    assert_eq!(pt, b"secret");

    // Bob names Alice's session: it does not exist for him.
    assert_eq!(
        code(
            bob.sign_init(pb::OperationInit {
                session: s,
                mechanism: ecdsa(),
                key: pair.private_key,
            })
            .await
        ),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        code(bob.close_session(pb::SessionRequest { session: s }).await),
        CKR_SESSION_HANDLE_INVALID
    );
    // Bob's CloseAllSessions leaves Alice's session open.
    bob.close_all_sessions(pb::SlotRequest { slot: 0 })
        .await
        .expect("close all (his)");
    alice
        .get_session_info(pb::SessionRequest { session: s })
        .await
        .expect("Alice's session survives");

    // Bad input gets the PKCS#11 code, not a crash.
    assert_eq!(
        code(
            alice
                .sign_init(pb::OperationInit {
                    session: s,
                    mechanism: Some(pb::Mechanism {
                        r#type: CKM_AES_CBC,
                        params: Some(pb::mechanism::Params::Iv(vec![0; 3])),
                    }),
                    key: pair.private_key,
                })
                .await
        ),
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        code(
            alice
                .generate_random(pb::RandomRequest {
                    session: s,
                    length: u32::MAX,
                })
                .await
        ),
        CKR_ARGUMENTS_BAD
    );

    // PIN attempts beyond the allowance are refused before they reach the token.
    let bs = bob
        .open_session(pb::OpenSessionRequest {
            slot: 0,
            read_write: false,
        })
        .await
        .expect("bob's session")
        .into_inner()
        .session;
    // Alice's login is hers: Bob's session stays public.
    assert_eq!(
        bob.get_session_info(pb::SessionRequest { session: bs })
            .await
            .expect("info")
            .into_inner()
            .state,
        CKS_RO_PUBLIC_SESSION
    );
    let mut throttled = false;
    for _ in 0..6 {
        let r = bob
            .login(pb::LoginRequest {
                session: bs,
                user_type: CKU_USER,
                pin: b"wrong-pin".to_vec(),
            })
            .await;
        if let Err(st) = &r
            && st.code() == tonic::Code::ResourceExhausted
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "bob was never throttled");
    let info = alice
        .get_token_info(pb::SlotRequest { slot: 0 })
        .await
        .expect("token info")
        .into_inner();
    assert!(
        info.user_pin_failures <= 4,
        "throttled attempts reached the token: {}",
        info.user_pin_failures
    );

    // Sessions live as long as their connection: when Bob goes, his session closes.
    let sessions = |st: pb::StatusReply| st.sessions;
    let before = sessions(
        alice
            .get_status(pb::StatusRequest {})
            .await
            .expect("status")
            .into_inner(),
    );
    drop(bob);
    let mut after = before;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = sessions(
            alice
                .get_status(pb::StatusRequest {})
                .await
                .expect("status")
                .into_inner(),
        );
        if after < before {
            break;
        }
    }
    assert_eq!(
        after,
        before - 1,
        "a closed connection's session stays open"
    );

    drop(alice);
    assert!(daemon.stop());
    let audit = std::fs::read_to_string(dir.join("state/audit.log")).expect("audit log");
    assert!(
        audit.contains(&format!("\"cert_sha256\":\"{alice_fp}\"")),
        "audit entries name the client certificate"
    );
    assert!(audit.contains("\"pin_attempts_throttled\""));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// A raw TLS connection (rustls client, ALPN h2) and the serial of the server's leaf.
async fn raw_connect(
    port: u16,
    pki: &Pki,
    who: &Issued,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    let mut roots = rustls::RootCertStore::empty();
    for c in craton_daemon::tls::load_certs(&pki.ca.ca_cert()).expect("ca") {
        roots.add(c).expect("root");
    }
    let certs = craton_daemon::tls::load_certs(&who.cert).expect("cert");
    let key = craton_daemon::tls::load_key(&who.key).expect("key");
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .expect("client auth");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let (_, conn) = tls.get_ref();
    assert_eq!(
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        Some(rustls::NamedGroup::X25519MLKEM768),
        "the post-quantum hybrid is preferred"
    );
    let leaf = conn.peer_certificates().expect("server certs")[0].to_vec();
    (tls, leaf)
}

/// Speaks the first bytes of HTTP/2 on an open connection and waits for the server's
/// SETTINGS frame: proof the connection is alive and served.
async fn h2_alive(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    if tls.write_all(&hello).await.is_err() || tls.flush().await.is_err() {
        return false;
    }
    let mut header = [0u8; 9];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut header)).await,
        Ok(Ok(_))
    ) && header[3] == 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_serves_the_new_certificate_and_keeps_open_connections() {
    let dir = scratch("reload");
    let pki = pki(&dir);
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, "");
    let daemon = Daemon::start(&dir, &config, port);
    let (mut old_conn, old_leaf) = raw_connect(port, &pki, &pki.alice).await;

    // Rotate: a new certificate and key in the same files, then SIGHUP.
    let next = pki
        .ca
        .issue("server-next", Usage::Server, 365)
        .expect("next");
    std::fs::copy(&next.cert, &pki.server.cert).expect("cert");
    std::fs::copy(&next.key, &pki.server.key).expect("key");
    daemon.signal(rustix::process::Signal::HUP);
    daemon.expect_notify("RELOADING=1");
    daemon.expect_notify("READY=1");

    let (_new_conn, new_leaf) = raw_connect(port, &pki, &pki.alice).await;
    assert_ne!(
        old_leaf, new_leaf,
        "new connections see the new certificate"
    );
    assert_eq!(
        new_leaf,
        craton_daemon::tls::load_certs(&next.cert).expect("cert")[0].to_vec()
    );
    assert!(
        h2_alive(&mut old_conn).await,
        "the open connection survived"
    );

    // A broken file on the next reload keeps the material in force.
    let mut f = std::fs::File::create(&pki.server.cert).expect("cert");
    f.write_all(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
        .expect("write");
    drop(f);
    daemon.signal(rustix::process::Signal::HUP);
    daemon.expect_notify("RELOADING=1");
    daemon.expect_notify("READY=1");
    let (_still, leaf) = raw_connect(port, &pki, &pki.alice).await;
    assert_eq!(leaf, new_leaf, "the previous material stays in force");
    assert!(
        daemon
            .log()
            .contains("the previous TLS material stays in force")
    );
    drop((old_conn, _new_conn, _still));
    assert!(daemon.stop());
    let audit = std::fs::read_to_string(dir.join("state/audit.log")).expect("audit");
    assert!(audit.contains("\"tls_reloaded\""));
    assert!(audit.contains("\"frontend_detached\""));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn run_refused(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unsafe_setups_are_refused_at_startup() {
    let dir = scratch("refuse");
    let pki = pki(&dir);
    let port = free_port();

    let public = Daemon::config(&dir, port, &pki, "");
    let text = std::fs::read_to_string(&public)
        .expect("config")
        .replace("127.0.0.1:", "0.0.0.0:");
    std::fs::write(&public, text).expect("write");
    assert!(
        run_refused(&public, &["--allow-root", "--check"]).contains("allow_public_bind"),
        "a public bind is refused"
    );

    let config = Daemon::config(&dir, port, &pki, "");
    if rustix::process::geteuid().is_root() {
        assert!(run_refused(&config, &["--check"]).contains("refusing to run as root"));
    }

    // Without the development flag a copy of the binary with no sidecar beside it fails
    // its integrity check.
    let production = dir.join("production.toml");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("development_build = true", "development_build = false");
    std::fs::write(&production, text).expect("write");
    let copy = dir.join("craton-hsm-daemon");
    std::fs::copy(BIN, &copy).expect("copy");
    let out = Command::new(&copy)
        .arg("--config")
        .arg(&production)
        .args(["--allow-root", "--check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("integrity check failed"));

    // Without a client CA nobody could be authenticated.
    let no_ca = dir.join("no-ca.toml");
    let text: String = std::fs::read_to_string(&config)
        .expect("config")
        .lines()
        .filter(|l| !l.starts_with("client_ca"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&no_ca, text).expect("write");
    assert!(run_refused(&no_ca, &["--allow-root", "--check"]).contains("client_ca is not set"));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn the_fingerprint_allow_list_admits_only_the_listed_certificates() {
    let dir = scratch("allow");
    let pki = pki(&dir);
    let alice = craton_daemon::tls::fingerprint(
        &craton_daemon::tls::load_certs(&pki.alice.cert).expect("cert")[0],
    );
    let port = free_port();
    // Listed with colons and in upper case, as operators copy them from openssl.
    let listed: String = alice
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let config = Daemon::config(
        &dir,
        port,
        &pki,
        &format!("client_fingerprints = [\"{listed}\"]"),
    );
    let daemon = Daemon::start(&dir, &config, port);
    s_client(port, &pki, &with(&cert_args(&pki.alice), &["-alpn", "h2"])).expect("listed");
    // Bob chains to the same CA but is not listed.
    refused(
        port,
        &pki,
        &with(&cert_args(&pki.bob), &["-alpn", "h2"]),
        "alert",
    );
    assert!(
        daemon
            .log()
            .contains("is not in daemon.client_fingerprints"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn crls_are_read_again_on_their_schedule_without_a_reload() {
    let dir = scratch("crl-schedule");
    let pki = pki(&dir);
    let crl = dir.join("clients.crl");
    pki.ca.crl(&crl, None, None).expect("crl");
    let port = free_port();
    let config = Daemon::config(
        &dir,
        port,
        &pki,
        &format!("crls = [{crl:?}]\ncrl_reload_secs = 1"),
    );
    let daemon = Daemon::start(&dir, &config, port);
    let bob = cert_args(&pki.bob);
    s_client(port, &pki, &with(&bob, &["-alpn", "h2"])).expect("bob before revocation");
    // The CA revokes Bob and publishes a new list; nobody signals the daemon.
    pki.ca.revoke(&pki.bob, "bob").expect("revoke");
    let next = dir.join("next.crl");
    pki.ca.crl(&next, None, None).expect("crl");
    std::fs::rename(&next, &crl).expect("publish");
    std::thread::sleep(Duration::from_millis(2500));
    refused(port, &pki, &with(&bob, &["-alpn", "h2"]), "alert");
    s_client(port, &pki, &with(&cert_args(&pki.alice), &["-alpn", "h2"]))
        .expect("alice is not revoked");
    assert!(daemon.stop(), "clean stop");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_and_the_connection_carries_on() {
    let dir = scratch("request-size");
    let pki = pki(&dir);
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, "max_request_bytes = 4096");
    let daemon = Daemon::start(&dir, &config, port);
    let mut c = craton_daemon::client::connect(&daemon.client_config(&pki, &pki.alice))
        .await
        .expect("connect");
    init_token(&mut c, b"size-so-pin", "size").await;
    let s = open_session(&mut c, false).await;
    c.digest_init(pb::OperationInit {
        session: s,
        mechanism: Some(pb::Mechanism {
            r#type: CKM_SHA256,
            params: None,
        }),
        key: 0,
    })
    .await
    .expect("digest init");
    let big = c
        .digest_update(pb::DataRequest {
            session: s,
            data: vec![0; 64 << 10],
        })
        .await
        .expect_err("a 64 KiB request over a 4 KiB bound");
    assert_eq!(big.code(), tonic::Code::OutOfRange, "{big:?}");
    // The connection and its session are still there; small requests go through.
    let digest = c
        .digest(pb::DataRequest {
            session: s,
            data: b"abc".to_vec(),
        })
        .await
        .expect("digest")
        .into_inner()
        .data;
    assert_eq!(
        hex::encode(digest),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    drop(c);
    assert!(daemon.stop(), "clean stop");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn loopback_may_skip_client_certificates_only_when_configured() {
    let dir = scratch("anonymous");
    let pki = pki(&dir);
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, "loopback_without_client_auth = true");
    let daemon = Daemon::start(&dir, &config, port);
    s_client(port, &pki, &["-alpn", "h2"]).expect("no certificate, on loopback, as configured");
    // A certificate, if presented, is still checked.
    refused(
        port,
        &pki,
        &with(&cert_args(&pki.stranger), &["-alpn", "h2"]),
        "alert",
    );
    assert!(daemon.stop(), "clean stop");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_peers_hold_up_no_one_and_silent_connections_are_dropped() {
    use tokio::io::AsyncReadExt;
    let dir = scratch("stalled");
    let pki = pki(&dir);
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, "");
    let daemon = Daemon::start(&dir, &config, port);
    // Peers that connect and then say nothing: a hundred silent TCP connections, and one
    // that finishes TLS (a valid client certificate) but never speaks HTTP/2.
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("tcp"),
        );
    }
    let (mute, _) = raw_connect(port, &pki, &pki.bob).await;
    // Meanwhile a real client is served at once.
    let started = std::time::Instant::now();
    let mut c = craton_daemon::client::connect(&daemon.client_config(&pki, &pki.alice))
        .await
        .expect("connect past the stalled peers");
    for _ in 0..20 {
        c.list_slots(pb::Empty {}).await.expect("list slots");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a working client waited {:?} behind stalled ones",
        started.elapsed()
    );
    // The silent connections are closed once the 10-second handshake allowance is over.
    let mut first = silent.swap_remove(0);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), first.read(&mut byte))
        .await
        .expect("the daemon never closed a silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed before the handshake allowance: {:?}",
        started.elapsed()
    );
    // So is the one that finished TLS but never started HTTP/2.
    // (It hears the server's HTTP/2 settings first; then the connection ends.)
    let mut mute = mute;
    let mut sink = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(n) = mute.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the daemon never closed a connection without HTTP/2");
    assert!(
        daemon.log().contains("no HTTP/2 after the TLS handshake"),
        "{}",
        daemon.log()
    );
    // The working client is still served.
    c.list_slots(pb::Empty {}).await.expect("list slots");
    drop(c);
    assert!(daemon.stop(), "clean stop");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

type Client = pb::hsm_client::HsmClient<tonic::transport::Channel>;

/// Initialises the token in slot 0.
async fn init_token(c: &mut Client, so_pin: &[u8], label: &str) {
    c.init_token(pb::InitTokenRequest {
        slot: 0,
        so_pin: so_pin.to_vec(),
        label: label.into(),
    })
    .await
    .expect("init token");
}

/// Opens a session on slot 0.
async fn open_session(c: &mut Client, read_write: bool) -> u64 {
    c.open_session(pb::OpenSessionRequest {
        slot: 0,
        read_write,
    })
    .await
    .expect("open session")
    .into_inner()
    .session
}

/// Logs `user_type` in on session `s`.
async fn login(c: &mut Client, s: u64, user_type: CK_USER_TYPE, pin: &[u8]) {
    c.login(pb::LoginRequest {
        session: s,
        user_type,
        pin: pin.to_vec(),
    })
    .await
    .expect("login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_generations_in_progress_hold_up_no_short_call() {
    use pb::attribute::Value;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = scratch("slow-calls");
    let pki = pki(&dir);
    let port = free_port();
    let config = Daemon::config(&dir, port, &pki, "");
    let daemon = Daemon::start(&dir, &config, port);
    let alice = daemon.client_config(&pki, &pki.alice);
    let mut so = craton_daemon::client::connect(&alice)
        .await
        .expect("connect");
    init_token(&mut so, b"slow-so-pin", "slow").await;
    let s = open_session(&mut so, true).await;
    login(&mut so, s, CKU_SO, b"slow-so-pin").await;
    so.init_pin(pb::InitPinRequest {
        session: s,
        pin: b"slow-user-pin".to_vec(),
    })
    .await
    .expect("init pin");
    drop(so);

    // As many clients as the daemon has engine threads (one per core) generate RSA-4096 key
    // pairs, each taking about a second or more: if key generation ran on the engine
    // threads, every short call would queue behind them.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let generating = std::sync::Arc::new(AtomicUsize::new(0));
    let mut generators = Vec::new();
    for _ in 0..cores {
        let mut c = craton_daemon::client::connect(&alice)
            .await
            .expect("connect");
        let s = open_session(&mut c, false).await;
        login(&mut c, s, CKU_USER, b"slow-user-pin").await;
        let (stop, generating) = (stop.clone(), generating.clone());
        generators.push(tokio::spawn(async move {
            let attr = |t: u64, v: Value| pb::Attribute {
                r#type: t,
                value: Some(v),
            };
            while !stop.load(Ordering::SeqCst) {
                generating.fetch_add(1, Ordering::SeqCst);
                c.generate_key_pair(pb::GenerateKeyPairRequest {
                    session: s,
                    mechanism: Some(pb::Mechanism {
                        r#type: CKM_RSA_PKCS_KEY_PAIR_GEN,
                        params: None,
                    }),
                    public_template: vec![attr(CKA_MODULUS_BITS, Value::Number(4096))],
                    private_template: vec![attr(CKA_SIGN, Value::Boolean(true))],
                })
                .await
                .expect("RSA-4096 key pair");
                generating.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Meanwhile another client's digests keep answering promptly, most of them while every
    // generator is busy.
    let mut c = craton_daemon::client::connect(&alice)
        .await
        .expect("connect");
    let s = open_session(&mut c, false).await;
    let mut during = 0;
    for _ in 0..40 {
        let busy = generating.load(Ordering::SeqCst) == cores;
        let start = std::time::Instant::now();
        c.digest_init(pb::OperationInit {
            session: s,
            mechanism: Some(pb::Mechanism {
                r#type: CKM_SHA256,
                params: None,
            }),
            key: 0,
        })
        .await
        .expect("digest init");
        c.digest(pb::DataRequest {
            session: s,
            data: b"abc".to_vec(),
        })
        .await
        .expect("digest");
        let took = start.elapsed();
        if busy && generating.load(Ordering::SeqCst) == cores {
            during += 1;
        }
        assert!(took < Duration::from_millis(800), "a digest took {took:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        during >= 10,
        "only {during} digests overlapped the key generations"
    );
    stop.store(true, Ordering::SeqCst);
    for g in generators {
        g.await.expect("generator");
    }
    drop(c);
    assert!(daemon.stop(), "clean stop");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
