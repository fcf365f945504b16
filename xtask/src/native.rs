//! PKCS#11 clients written with the `cryptoki` crate (a client we did not write), run as
//! `xtask pkcs11-client <client> <module> <token label> <user PIN>` in a child process so each
//! gets the module's environment and a process of its own, as a real application would.
//!
//! - `stress`: many threads, each with its own session, sign/verify with one shared EC key and
//!   seal/open with one shared AES key, all at once; every result is checked.
//! - `message`: the PKCS#11 3.0 message-based AES-GCM calls with module-generated IVs.
//! - `ml-dsa`: an ML-DSA-65 key pair on the token, a signature and its verification (the demo
//!   uses it: pkcs11-tool cannot set `CKA_PARAMETER_SET`).
//! - `kem`: the PKCS#11 3.2 interface: ML-KEM-768 encapsulation and decapsulation into AES
//!   keys that must agree, `C_VerifySignature*`, and the validation flags.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::{GcmMessageParams, GcmParams, GeneratorFunction};
use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::{Mechanism, MessageParam};
use cryptoki::object::{
    Attribute, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType, ValidationFlagsType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::process::Command;
use std::time::Instant;

/// The hidden xtask job that runs one client.
pub const JOB: &str = "pkcs11-client";

/// The clients the interop job runs against every provider: (row name, client).
pub const SCENARIOS: &[(&str, &str)] = &[
    ("cryptoki: threads in parallel", "stress"),
    ("cryptoki: 3.0 message-based GCM", "message"),
    ("cryptoki: 3.2 ML-KEM + verify-sig", "kem"),
];

/// DER of the P-256 named-curve OID, for `CKA_EC_PARAMS`.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

type Result<T> = std::result::Result<T, String>;

/// The command that runs `client` (this xtask binary's hidden job) against the token
/// `label` of `module`; the caller adds the module's environment.
pub fn command(client: &str, module: &std::path::Path, label: &str, pin: &str) -> Result<Command> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find xtask itself: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([JOB, client]).arg(module).args([label, pin]);
    Ok(cmd)
}

fn err(what: &str) -> impl Fn(cryptoki::error::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Loads the module, initialises it for OS threads and logs the user in on the token `label`.
fn open(module: &str, label: &str, pin: &str) -> Result<(Pkcs11, Slot, Session)> {
    let pkcs11 = Pkcs11::new(module).map_err(err("load module"))?;
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(err("C_Initialize"))?;
    let slots = pkcs11
        .get_slots_with_token()
        .map_err(err("C_GetSlotList"))?;
    let slot = slots
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .is_ok_and(|t| t.label().trim_end() == label)
        })
        .ok_or_else(|| format!("no token labelled {label}"))?;
    let session = pkcs11.open_rw_session(slot).map_err(err("C_OpenSession"))?;
    session
        .login(UserType::User, Some(&AuthPin::new(pin.into())))
        .map_err(err("C_Login"))?;
    Ok((pkcs11, slot, session))
}

pub fn run(args: &[String]) -> Result<()> {
    let [client, module, label, pin] = args else {
        return Err(format!(
            "usage: xtask {JOB} <client> <module> <label> <PIN>"
        ));
    };
    let (pkcs11, slot, session) = open(module, label, pin)?;
    let summary = match client.as_str() {
        "stress" => stress(&pkcs11, slot, &session),
        "message" => message(&session),
        "ml-dsa" => ml_dsa(&session),
        "kem" => kem(&session),
        other => Err(format!("unknown client {other}")),
    }?;
    session.logout().map_err(err("C_Logout"))?;
    drop(session);
    pkcs11.finalize().map_err(err("C_Finalize"))?;
    println!("{summary}");
    Ok(())
}

fn threads() -> usize {
    std::env::var("CRATON_INTEROP_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn iterations() -> usize {
    std::env::var("CRATON_INTEROP_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// Shared token keys used from every thread at once.
fn stress(pkcs11: &Pkcs11, slot: Slot, admin: &Session) -> Result<String> {
    let (public, private) = admin
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Label(b"stress-ec".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
                Attribute::Label(b"stress-ec".to_vec()),
            ],
        )
        .map_err(err("C_GenerateKeyPair"))?;
    let aes = admin
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(b"stress-aes".to_vec()),
            ],
        )
        .map_err(err("C_GenerateKey"))?;

    let (threads, iterations) = (threads(), iterations());
    let started = Instant::now();
    let results: Vec<Result<usize>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || worker(pkcs11, slot, t, iterations, private, public, aes)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut ops = 0;
    for r in results {
        ops += r?;
    }
    for key in [public, private, aes] {
        admin.destroy_object(key).map_err(err("C_DestroyObject"))?;
    }
    Ok(format!(
        "{threads} threads x {iterations}: {ops} sign/verify/GCM ops, all correct, {:.0} ops/s",
        ops as f64 / elapsed
    ))
}

fn worker(
    pkcs11: &Pkcs11,
    slot: Slot,
    thread: usize,
    iterations: usize,
    private: ObjectHandle,
    public: ObjectHandle,
    aes: ObjectHandle,
) -> Result<usize> {
    // Login is per token: a new session of a logged-in application is logged in too.
    let session = pkcs11.open_ro_session(slot).map_err(err("C_OpenSession"))?;
    let mut ops = 0;
    for i in 0..iterations {
        let data = format!("thread {thread} message {i}").into_bytes();
        // CKM_ECDSA over a SHA-256 hash taken here (SoftHSMv2 lacks CKM_ECDSA_SHA256).
        let hash = craton_core::digest::sha256(&data);
        let signature = session
            .sign(&Mechanism::Ecdsa, private, &hash)
            .map_err(err("C_Sign"))?;
        if signature.len() != 64 {
            return Err(format!(
                "ECDSA P-256 signature of {} bytes",
                signature.len()
            ));
        }
        session
            .verify(&Mechanism::Ecdsa, public, &hash, &signature)
            .map_err(err("C_Verify"))?;
        let mut wrong = hash;
        wrong[0] ^= 1;
        if session
            .verify(&Mechanism::Ecdsa, public, &wrong, &signature)
            .is_ok()
        {
            return Err("a signature verified over different data".into());
        }

        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&(thread as u32).to_be_bytes().repeat(2));
        iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
        let aad = b"stress";
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(err("GCM params"))?;
        let sealed = session
            .encrypt(&Mechanism::AesGcm(params), aes, &data)
            .map_err(err("C_Encrypt"))?;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(err("GCM params"))?;
        let opened = session
            .decrypt(&Mechanism::AesGcm(params), aes, &sealed)
            .map_err(err("C_Decrypt"))?;
        if opened != data {
            return Err("AES-GCM round trip changed the data".into());
        }
        ops += 4;
    }
    Ok(ops)
}

/// Message-based AES-GCM: the module chooses each IV and returns it with the tag.
fn message(session: &Session) -> Result<String> {
    let key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .map_err(err("C_GenerateKey"))?;
    let messages: Vec<Vec<u8>> = (0..16)
        .map(|i| format!("message {i} sealed under a module-chosen IV").into_bytes())
        .collect();
    let aad = b"message api";

    let mut sealed = Vec::new();
    let mut init_iv = [0u8; 12];
    let mut init_tag = [0u8; 16];
    let init = GcmMessageParams::new(
        &mut init_iv,
        0.into(),
        GeneratorFunction::GenerateRandom,
        &mut init_tag,
    )
    .map_err(err("GCM message params"))?;
    session
        .message_encrypt_init(&Mechanism::AesGcmMessage(init), key)
        .map_err(err("C_MessageEncryptInit"))?;
    for m in &messages {
        let mut iv = [0u8; 12];
        let mut tag = [0u8; 16];
        let params = GcmMessageParams::new(
            &mut iv,
            0.into(),
            GeneratorFunction::GenerateRandom,
            &mut tag,
        )
        .map_err(err("GCM message params"))?;
        let cipher = session
            .encrypt_message(&MessageParam::AesGcmMessage(params), aad, m)
            .map_err(err("C_EncryptMessage"))?;
        sealed.push((iv, tag, cipher));
    }
    session
        .message_encrypt_final()
        .map_err(err("C_MessageEncryptFinal"))?;
    let distinct: std::collections::HashSet<_> = sealed.iter().map(|(iv, _, _)| *iv).collect();
    if distinct.len() != messages.len() || distinct.contains(&[0u8; 12]) {
        return Err("the module did not choose a fresh IV for every message".into());
    }

    let mut init_iv = [0u8; 12];
    let mut init_tag = [0u8; 16];
    let init = GcmMessageParams::new(
        &mut init_iv,
        0.into(),
        GeneratorFunction::NoGenerate,
        &mut init_tag,
    )
    .map_err(err("GCM message params"))?;
    session
        .message_decrypt_init(&Mechanism::AesGcmMessage(init), key)
        .map_err(err("C_MessageDecryptInit"))?;
    for (m, (iv, tag, cipher)) in messages.iter().zip(&mut sealed) {
        let params = GcmMessageParams::new(iv, 0.into(), GeneratorFunction::NoGenerate, tag)
            .map_err(err("GCM message params"))?;
        let plain = session
            .decrypt_message(&MessageParam::AesGcmMessage(params), aad, cipher)
            .map_err(err("C_DecryptMessage"))?;
        if &plain != m {
            return Err("a message came back changed".into());
        }
    }
    let (iv, tag, cipher) = &mut sealed[0];
    cipher[0] ^= 1;
    let params = GcmMessageParams::new(iv, 0.into(), GeneratorFunction::NoGenerate, tag)
        .map_err(err("GCM message params"))?;
    if session
        .decrypt_message(&MessageParam::AesGcmMessage(params), aad, cipher)
        .is_ok()
    {
        return Err("a changed ciphertext decrypted".into());
    }
    session
        .message_decrypt_final()
        .map_err(err("C_MessageDecryptFinal"))?;
    session
        .destroy_object(key)
        .map_err(err("C_DestroyObject"))?;
    Ok(format!(
        "{} messages, distinct module-chosen IVs, tamper refused",
        messages.len()
    ))
}

/// An ML-DSA-65 key pair on the token, then a signature and its verification.
fn ml_dsa(session: &Session) -> Result<String> {
    let label = b"ml-dsa".to_vec();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into()),
                Attribute::Verify(true),
                Attribute::Label(label.clone()),
                Attribute::Id(vec![0x05]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
                Attribute::Label(label),
                Attribute::Id(vec![0x05]),
            ],
        )
        .map_err(err("C_GenerateKeyPair (ML-DSA-65)"))?;
    let data = b"Craton HSM demo: a post-quantum signature";
    let mechanism = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
    let signature = session
        .sign(&mechanism, private, data)
        .map_err(err("C_Sign (ML-DSA)"))?;
    session
        .verify(&mechanism, public, data, &signature)
        .map_err(err("C_Verify (ML-DSA)"))?;
    if session
        .verify(&mechanism, public, b"something else", &signature)
        .is_ok()
    {
        return Err("an ML-DSA signature verified over different data".into());
    }
    Ok(format!("valid ({}-byte signature)", signature.len()))
}

/// The PKCS#11 3.2 calls: an ML-KEM-768 pair (session objects), a shared AES key on each
/// side that must agree (one seals, the other opens), verification with the signature given
/// first, and the validation flags.
fn kem(session: &Session) -> Result<String> {
    let (ek, dk) = session
        .generate_key_pair(
            &Mechanism::MlKemKeyPairGen,
            &[
                Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                Attribute::Encapsulate(true),
            ],
            &[Attribute::Decapsulate(true), Attribute::Sensitive(true)],
        )
        .map_err(err("C_GenerateKeyPair (ML-KEM-768)"))?;
    let aes = |usage: Attribute| {
        [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Sensitive(true),
            usage,
        ]
    };
    let (ciphertext, sender) = session
        .encapsulate_key(&Mechanism::MlKem, ek, &aes(Attribute::Encrypt(true)))
        .map_err(err("C_EncapsulateKey"))?;
    let receiver = session
        .decapsulate_key(
            &Mechanism::MlKem,
            dk,
            &aes(Attribute::Decrypt(true)),
            &ciphertext,
        )
        .map_err(err("C_DecapsulateKey"))?;
    let mut iv = [7u8; 12];
    let data = b"sealed under a key both sides derived";
    let params = GcmParams::new(&mut iv, b"kem", 128.into()).map_err(err("GCM params"))?;
    let sealed = session
        .encrypt(&Mechanism::AesGcm(params), sender, data)
        .map_err(err("C_Encrypt (sender's key)"))?;
    let params = GcmParams::new(&mut iv, b"kem", 128.into()).map_err(err("GCM params"))?;
    let opened = session
        .decrypt(&Mechanism::AesGcm(params), receiver, &sealed)
        .map_err(err("C_Decrypt (receiver's key)"))?;
    if opened != data {
        return Err("the two sides of the KEM hold different keys".into());
    }

    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(P256.to_vec()), Attribute::Verify(true)],
            &[Attribute::Sign(true)],
        )
        .map_err(err("C_GenerateKeyPair (P-256)"))?;
    let message = b"the signature comes first";
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private, message)
        .map_err(err("C_Sign"))?;
    session
        .verify_signature_init(&Mechanism::EcdsaSha256, public, &signature)
        .map_err(err("C_VerifySignatureInit"))?;
    session
        .verify_signature_update(&message[..9])
        .map_err(err("C_VerifySignatureUpdate"))?;
    session
        .verify_signature_update(&message[9..])
        .map_err(err("C_VerifySignatureUpdate"))?;
    session
        .verify_signature_final()
        .map_err(err("C_VerifySignatureFinal"))?;
    session
        .verify_signature_init(&Mechanism::EcdsaSha256, public, &signature)
        .map_err(err("C_VerifySignatureInit"))?;
    if session.verify_signature(b"something else").is_ok() {
        return Err("C_VerifySignature accepted a signature over different data".into());
    }
    let flags = session
        .get_validation_flags(ValidationFlagsType::VALIDATION_OK)
        .map_err(err("C_GetSessionValidationFlags"))?;
    for key in [ek, dk, sender, receiver, public, private] {
        session
            .destroy_object(key)
            .map_err(err("C_DestroyObject"))?;
    }
    Ok(format!(
        "{}-byte ciphertext, both sides agree; verify-signature ok; validation flags {flags:#x}",
        ciphertext.len()
    ))
}
