//! Signatures per second through the daemon (mutual TLS, a session per client) with 1, 8 and
//! 64 concurrent clients on a connection each, and 64 sharing one connection (one
//! multi-threaded application in the module's remote mode), next to the same operation
//! in-process on the engine. Two ways to sign remotely: `SignInit` + `Sign` per signature, as a
//! remote PKCS#11 client makes them, and the one-shot `SignData`. Two rows bound what any
//! remote call could reach on this machine: `ListSlots`, which does no work in the engine, in
//! the same shapes (the transport's own ceiling), and a plain loopback TCP round trip between
//! two threads (no TLS, no HTTP/2: the floor of one client's latency).
//!
//! Run by `cargo xtask bench` (or `cargo bench -p craton-daemon --bench daemon`); each
//! measurement lasts `CRATON_BENCH_SECS` seconds (default 5). The daemon and the clients
//! share this machine's cores, as they would share a host in a small deployment; so each row
//! also reports the CPU time the daemon process itself spent per signature, and what that
//! rate would be on cores of its own.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use craton_core::attribute::{AttrValue, AttributeType as A};
use craton_core::mechanism::MechanismType as M;
use craton_core::ops::Mechanism;
use craton_daemon::devpki::{DevDaemon, DevPki, Usage};
use craton_daemon::pb;
use craton_store::config::ClientConfig;
use craton_store::{Config, Hsm, UserType};
use cryptoki_sys::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SO_PIN: &[u8] = b"bench-so-pin";
const USER_PIN: &[u8] = b"bench-user-pin";
const DATA: &[u8] = &[0x5a; 64];
const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn seconds() -> Duration {
    Duration::from_secs(
        std::env::var("CRATON_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

fn state_dir(dir: &Path) -> std::path::PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    state
}

/// ECDSA P-256 SHA-256 signatures per second on the engine, `threads` sessions in parallel.
fn in_process(dir: &Path, threads: usize, run: Duration) -> f64 {
    let mut config = Config::default();
    config.token.state_dir = Some(state_dir(dir));
    config.security.pbkdf2_iterations = 1000;
    let hsm = Arc::new(Hsm::open(config).unwrap());
    if !hsm.token_info(0).unwrap().initialized {
        hsm.init_token(0, SO_PIN, "bench").unwrap();
        let so = hsm.open_session(0, true).unwrap();
        hsm.login(so, UserType::So, SO_PIN).unwrap();
        hsm.init_pin(so, USER_PIN).unwrap();
        hsm.close_session(so).unwrap();
    }
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    let (_, private) = hsm
        .generate_key_pair(
            s,
            &Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            &[
                (A::EC_PARAMS, AttrValue::Bytes(P256.to_vec())),
                (A::VERIFY, AttrValue::Bool(true)),
            ],
            &[(A::SIGN, AttrValue::Bool(true))],
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hsm, stop, count) = (hsm.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let s = hsm.open_session(0, false).unwrap();
                let mech = Mechanism::EcdsaWith(craton_core::digest::HashAlg::Sha256);
                while !stop.load(Ordering::Relaxed) {
                    hsm.sign_init(s, &mech, private).unwrap();
                    hsm.sign(s, DATA).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Microseconds per round trip of 64 bytes over loopback TCP between two threads, with
/// `TCP_NODELAY`: what waking the other side costs here before any TLS or HTTP/2.
fn loopback_round_trip(rounds: usize) -> f64 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        while peer.read_exact(&mut buf).is_ok() {
            if peer.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut buf = [0x5au8; 64];
    let start = Instant::now();
    for _ in 0..rounds {
        c.write_all(&buf).unwrap();
        c.read_exact(&mut buf).unwrap();
    }
    let per = start.elapsed().as_secs_f64() / rounds as f64;
    drop(c);
    echo.join().unwrap();
    per * 1e6
}

fn mech(t: u64) -> Option<pb::Mechanism> {
    Some(pb::Mechanism {
        r#type: t,
        params: None,
    })
}

fn attr(t: u64, v: pb::attribute::Value) -> pb::Attribute {
    pb::Attribute {
        r#type: t,
        value: Some(v),
    }
}

/// Sets the token up through one client and returns the private key's handle.
async fn setup(cfg: &ClientConfig) -> u64 {
    use pb::attribute::Value;
    let mut c = craton_daemon::client::connect(cfg).await.unwrap();
    c.init_token(pb::InitTokenRequest {
        slot: 0,
        so_pin: SO_PIN.to_vec(),
        label: "bench".into(),
    })
    .await
    .unwrap();
    let s = c
        .open_session(pb::OpenSessionRequest {
            slot: 0,
            read_write: true,
        })
        .await
        .unwrap()
        .into_inner()
        .session;
    let login = |user_type, pin: &[u8]| pb::LoginRequest {
        session: s,
        user_type,
        pin: pin.to_vec(),
    };
    c.login(login(CKU_SO, SO_PIN)).await.unwrap();
    c.init_pin(pb::InitPinRequest {
        session: s,
        pin: USER_PIN.to_vec(),
    })
    .await
    .unwrap();
    c.logout(pb::SessionRequest { session: s }).await.unwrap();
    c.login(login(CKU_USER, USER_PIN)).await.unwrap();
    let pair = c
        .generate_key_pair(pb::GenerateKeyPairRequest {
            session: s,
            mechanism: mech(CKM_EC_KEY_PAIR_GEN),
            public_template: vec![attr(CKA_EC_PARAMS, Value::Bytes(P256.to_vec()))],
            private_template: vec![
                attr(CKA_SIGN, Value::Boolean(true)),
                attr(CKA_TOKEN, Value::Boolean(true)),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    // The key is a token object: every client that logs in sees it.
    pair.private_key
}

/// CPU seconds (user + system) process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime
    // and stime are the 12th and 13th of them, in clock ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = rustix::param::clock_ticks_per_second() as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

/// How a remote client signs.
#[derive(Clone, Copy, PartialEq)]
enum Pattern {
    /// `SignInit` then `Sign`: two RPCs, what the PKCS#11 module's remote mode sends.
    InitThenSign,
    /// `SignData`: one RPC.
    OneShot,
    /// `ListSlots`, which does no work in the engine: what the transport alone (TLS,
    /// HTTP/2, gRPC, the loopback, the clients) allows, the ceiling of any one-RPC signature.
    Transport,
}

/// Signatures per second through the daemon with `clients` signing at once, each with a
/// session of its own, spread over `connections` connections: one connection per client is
/// many single-threaded applications; one connection for all is one application whose
/// threads share the module's remote connection, as the PKCS#11 module's remote mode does.
async fn through_daemon(
    cfg: &ClientConfig,
    key: u64,
    (clients, connections): (usize, usize),
    pattern: Pattern,
    run: Duration,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut links = Vec::new();
    for _ in 0..connections {
        links.push(craton_daemon::client::connect(cfg).await.unwrap());
    }
    for i in 0..clients {
        // A clone shares its connection.
        let mut c = links[i % connections].clone();
        let s = c
            .open_session(pb::OpenSessionRequest {
                slot: 0,
                read_write: false,
            })
            .await
            .unwrap()
            .into_inner()
            .session;
        // Login belongs to the connection (one PKCS#11 application each): once per
        // connection, on its first session.
        if i < connections {
            c.login(pb::LoginRequest {
                session: s,
                user_type: CKU_USER,
                pin: USER_PIN.to_vec(),
            })
            .await
            .unwrap();
        }
        let (stop, count) = (stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match pattern {
                    Pattern::OneShot => {
                        c.sign_data(pb::SignDataRequest {
                            session: s,
                            mechanism: mech(CKM_ECDSA_SHA256),
                            key,
                            data: DATA.to_vec(),
                        })
                        .await
                        .unwrap();
                    }
                    Pattern::InitThenSign => {
                        c.sign_init(pb::OperationInit {
                            session: s,
                            mechanism: mech(CKM_ECDSA_SHA256),
                            key,
                        })
                        .await
                        .unwrap();
                        c.sign(pb::DataRequest {
                            session: s,
                            data: DATA.to_vec(),
                        })
                        .await
                        .unwrap();
                    }
                    Pattern::Transport => {
                        c.list_slots(pb::Empty {}).await.unwrap();
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            c.close_session(pb::SessionRequest { session: s })
                .await
                .unwrap();
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    let done = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await.unwrap();
    }
    done as f64 / elapsed
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a timed run has no place in the test suite.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("daemon bench: run it with `cargo xtask bench` or `cargo bench`");
        return;
    }
    let run = seconds();
    let dir = std::env::temp_dir().join(format!("craton-bench-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let loopback = loopback_round_trip(20_000);
    let one = in_process(&dir.join("local1"), 1, run);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let all = in_process(&dir.join("local2"), cores, run);

    let pki = DevPki::create(&dir.join("pki"), "bench-ca").unwrap();
    let server = pki.issue("daemon", Usage::Server, 2).unwrap();
    let client = pki.issue("client", Usage::Client, 2).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("craton_hsm.toml");
    std::fs::write(
        &config,
        format!(
            "[token]\nstate_dir = {:?}\n[security]\npbkdf2_iterations = 1000\n\
             development_build = true\n[daemon]\nlisten_addr = \"127.0.0.1:{port}\"\n\
             server_identities = [{{ cert = {:?}, key = {:?} }}]\nclient_ca = {:?}\n\
             pin_attempts_per_minute = 0\n",
            state_dir(&dir.join("remote")),
            server.cert,
            server.key,
            pki.ca_cert()
        ),
    )
    .unwrap();
    let daemon = DevDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_craton-hsm-daemon")),
        &config,
        &dir.join("daemon.log"),
    )
    .unwrap();
    let cfg = ClientConfig {
        endpoint: format!("https://localhost:{port}"),
        ca: pki.ca_cert(),
        cert: client.cert,
        key: client.key,
        timeout_secs: 60,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid = daemon.pid();
    let remote: Vec<(&str, (usize, usize), f64, f64)> = runtime.block_on(async {
        let key = setup(&cfg).await;
        let mut out = Vec::new();
        for (name, pattern) in [
            ("SignInit+Sign", Pattern::InitThenSign),
            ("SignData", Pattern::OneShot),
            ("no-op ListSlots", Pattern::Transport),
        ] {
            // (clients, connections): a connection each, then 64 sharing one.
            for shape in [(1, 1), (8, 8), (64, 64), (64, 1)] {
                let cpu = cpu_seconds(pid);
                let start = Instant::now();
                let rate = through_daemon(&cfg, key, shape, pattern, run).await;
                let calls = rate * start.elapsed().as_secs_f64();
                let per_call = (cpu_seconds(pid) - cpu) / calls.max(1.0);
                out.push((name, shape, rate, per_call));
            }
        }
        out
    });
    drop(runtime);
    assert!(daemon.stop().unwrap(), "the daemon stopped cleanly");

    println!();
    println!(
        "ECDSA P-256 SHA-256 signatures per second ({} s each, {cores} cores)",
        run.as_secs()
    );
    println!(
        "  {:<38} {:>10}",
        "in-process, 1 thread",
        format!("{one:.0}")
    );
    println!(
        "  {:<38} {:>10}",
        format!("in-process, {cores} threads"),
        format!("{all:.0}")
    );
    println!(
        "  {:<38} {:>10}",
        "loopback TCP round trip, 64 bytes",
        format!("{loopback:.1} µs")
    );
    println!(
        "  {:<38} {:>10}   {:>8}   {:>9}   {:>12}   {:>8}",
        "daemon over mTLS", "calls/s", "of in-p.", "daemon µs", "own cores/s", "of in-p."
    );
    for (name, (clients, connections), rate, per_call) in remote {
        // What the daemon's own CPU time per signature allows on `cores` cores of its own.
        let capacity = cores as f64 / per_call.max(1e-9);
        let shape = if connections == clients {
            format!("{clients} clients")
        } else {
            format!("{clients} clients, {connections} conn.")
        };
        println!(
            "  {:<38} {:>10}   {:>8.2}   {:>9.1}   {:>12.0}   {:>8.2}",
            format!("{name}, {shape}"),
            format!("{rate:.0}"),
            rate / all,
            per_call * 1e6,
            capacity,
            capacity / all
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
