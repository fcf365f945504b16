//! The daemon for the demo, interop and benchmark jobs: builds `craton-hsm-daemon` with its
//! integrity sidecar, makes a throwaway private CA with a server and a client certificate,
//! writes a configuration for loopback, and starts it (ready when it says `READY=1`).

use crate::util::{cargo, ensure_tool, run as exec, target_dir};
use craton_daemon::devpki::{DevDaemon, DevPki, Usage};
use craton_store::config::ClientConfig;
use std::path::{Path, PathBuf};

/// Builds the daemon and writes `craton-hsm-daemon.hmac` beside it.
pub fn build_daemon() -> Result<PathBuf, String> {
    let mut build = cargo();
    build.args([
        "build",
        "--locked",
        "-p",
        "craton-daemon",
        "--bin",
        "craton-hsm-daemon",
    ]);
    exec(build)?;
    let bin = target_dir().join("debug").join("craton-hsm-daemon");
    crate::sidecar::write(&bin)?;
    Ok(bin)
}

/// A running daemon on loopback and what a client needs to reach it.
pub struct Remote {
    pub daemon: DevDaemon,
    pub client: ClientConfig,
    pub state: PathBuf,
}

/// Starts a daemon whose files all live under `dir`; `extra` is appended to `[daemon]`.
pub fn start(dir: &Path, extra: &str) -> Result<Remote, String> {
    ensure_tool("openssl", &["openssl"])?;
    let bin = build_daemon()?;
    let pki = DevPki::create(&dir.join("pki"), "craton-demo-ca")?;
    let server = pki.issue("daemon", Usage::Server, 30)?;
    let client = pki.issue("client", Usage::Client, 30)?;
    let state = dir.join("state");
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = dir.join("craton_hsm.toml");
    let text = format!(
        "[token]\nstate_dir = {state:?}\n[daemon]\nlisten_addr = \"127.0.0.1:{port}\"\n\
         server_identities = [{{ cert = {:?}, key = {:?} }}]\nclient_ca = {:?}\n{extra}\n",
        server.cert,
        server.key,
        pki.ca_cert()
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let daemon = DevDaemon::start(&bin, &config, &dir.join("daemon.log"))?;
    Ok(Remote {
        daemon,
        client: ClientConfig {
            endpoint: format!("https://localhost:{port}"),
            ca: pki.ca_cert(),
            cert: client.cert,
            key: client.key,
            timeout_secs: 30,
        },
        state,
    })
}

fn status(e: tonic::Status) -> String {
    format!(
        "{} (CK_RV 0x{:X})",
        e.message(),
        craton_daemon::status::rv_of(&e)
    )
}

fn attr(t: u64, v: pb::attribute::Value) -> pb::Attribute {
    pb::Attribute {
        r#type: t,
        value: Some(v),
    }
}

fn mech(t: u64, params: Option<pb::mechanism::Params>) -> Option<pb::Mechanism> {
    Some(pb::Mechanism { r#type: t, params })
}

use craton_daemon::pb;
use cryptoki_sys::*;
use pb::attribute::Value;

/// The demo through the daemon: token set-up, EC and Ed25519 sign + verify, AES-GCM with a
/// module-generated IV. Returns (step, result) rows.
pub async fn demo_steps(
    cfg: &ClientConfig,
    so_pin: &str,
    user_pin: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut rows = Vec::new();
    let mut c = craton_daemon::client::connect(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let st = c
        .get_status(pb::StatusRequest {})
        .await
        .map_err(status)?
        .into_inner();
    rows.push((
        "connect over mutual TLS (private CA)".to_owned(),
        format!(
            "daemon {} POST {}, client {}…",
            st.version,
            st.post,
            &st.client_fingerprint[..16.min(st.client_fingerprint.len())]
        ),
    ));
    c.init_token(pb::InitTokenRequest {
        slot: 0,
        so_pin: so_pin.into(),
        label: "remote-demo".into(),
    })
    .await
    .map_err(status)?;
    let s = c
        .open_session(pb::OpenSessionRequest {
            slot: 0,
            read_write: true,
        })
        .await
        .map_err(status)?
        .into_inner()
        .session;
    let login = |user_type: u64, pin: &str| pb::LoginRequest {
        session: s,
        user_type,
        pin: pin.into(),
    };
    c.login(login(CKU_SO, so_pin)).await.map_err(status)?;
    c.init_pin(pb::InitPinRequest {
        session: s,
        pin: user_pin.into(),
    })
    .await
    .map_err(status)?;
    c.logout(pb::SessionRequest { session: s })
        .await
        .map_err(status)?;
    c.login(login(CKU_USER, user_pin)).await.map_err(status)?;
    rows.push((
        "initialise token 'remote-demo', user login".to_owned(),
        "ok".to_owned(),
    ));

    for (name, curve, sign_mech) in [
        (
            "ECDSA P-256",
            vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            CKM_ECDSA_SHA256,
        ),
        ("Ed25519", vec![0x06, 0x03, 0x2b, 0x65, 0x70], CKM_EDDSA),
    ] {
        let gen_mech = if sign_mech == CKM_EDDSA {
            CKM_EC_EDWARDS_KEY_PAIR_GEN
        } else {
            CKM_EC_KEY_PAIR_GEN
        };
        let pair = c
            .generate_key_pair(pb::GenerateKeyPairRequest {
                session: s,
                mechanism: mech(gen_mech, None),
                public_template: vec![
                    attr(CKA_EC_PARAMS, Value::Bytes(curve)),
                    attr(CKA_VERIFY, Value::Boolean(true)),
                ],
                private_template: vec![
                    attr(CKA_SIGN, Value::Boolean(true)),
                    attr(CKA_TOKEN, Value::Boolean(true)),
                ],
            })
            .await
            .map_err(status)?
            .into_inner();
        let data = b"Craton HSM demo over the network".to_vec();
        c.sign_init(pb::OperationInit {
            session: s,
            mechanism: mech(sign_mech, None),
            key: pair.private_key,
        })
        .await
        .map_err(status)?;
        let sig = c
            .sign(pb::DataRequest {
                session: s,
                data: data.clone(),
            })
            .await
            .map_err(status)?
            .into_inner()
            .data;
        c.verify_init(pb::OperationInit {
            session: s,
            mechanism: mech(sign_mech, None),
            key: pair.public_key,
        })
        .await
        .map_err(status)?;
        c.verify(pb::VerifyRequest {
            session: s,
            data,
            signature: sig.clone(),
        })
        .await
        .map_err(status)?;
        rows.push((
            format!("{name} keygen + sign + verify (daemon)"),
            format!("valid ({}-byte signature)", sig.len()),
        ));
    }

    let aes = c
        .generate_key(pb::GenerateKeyRequest {
            session: s,
            mechanism: mech(CKM_AES_KEY_GEN, None),
            template: vec![
                attr(CKA_VALUE_LEN, Value::Number(32)),
                attr(CKA_ENCRYPT, Value::Boolean(true)),
                attr(CKA_DECRYPT, Value::Boolean(true)),
            ],
        })
        .await
        .map_err(status)?
        .into_inner()
        .object;
    let gcm = |iv: Vec<u8>, generate: u32| {
        mech(
            CKM_AES_GCM,
            Some(pb::mechanism::Params::Gcm(pb::GcmParams {
                iv,
                aad: b"demo".to_vec(),
                tag_bits: 128,
                generate_iv_length: generate,
                generate_iv_fixed: Vec::new(),
            })),
        )
    };
    let iv = c
        .encrypt_init(pb::OperationInit {
            session: s,
            mechanism: gcm(Vec::new(), 12),
            key: aes,
        })
        .await
        .map_err(status)?
        .into_inner()
        .generated_iv;
    let message = b"keys stay inside, results come out".to_vec();
    let ct = c
        .encrypt(pb::DataRequest {
            session: s,
            data: message.clone(),
        })
        .await
        .map_err(status)?
        .into_inner()
        .data;
    c.decrypt_init(pb::OperationInit {
        session: s,
        mechanism: gcm(iv.clone(), 0),
        key: aes,
    })
    .await
    .map_err(status)?;
    let pt = c
        .decrypt(pb::DataRequest {
            session: s,
            data: ct,
        })
        .await
        .map_err(status)?
        .into_inner()
        .data;
    if pt != message {
        return Err("AES-GCM through the daemon lost the message".into());
    }
    rows.push((
        "AES-256-GCM encrypt + decrypt (daemon)".to_owned(),
        format!("round trip ok, module-generated {}-byte IV", iv.len()),
    ));
    c.close_session(pb::SessionRequest { session: s })
        .await
        .map_err(status)?;
    Ok(rows)
}
