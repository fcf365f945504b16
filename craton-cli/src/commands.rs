//! What each command does, on the local store.

use crate::Failure;
use crate::cli::{
    AuditCommand, BackupCommand, Cli, Command, ImportKind, KeyCommand, KeyKind, PinArgs,
    PinCommand, TokenCommand,
};
use crate::pin::Source;
use craton_core::attribute::{AttrValue, AttributeType as A, ObjectClass};
use craton_core::mechanism::{KeyType, MechanismType as M};
use craton_core::ops::Mechanism;
use craton_daemon::client::RemoteHsm;
use craton_store::backup::BackupSecret;
use craton_store::{Config, Engine, Hsm, ObjectHandle, SessionHandle, UserType};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a command prints: a JSON document, and the same as lines for people.
struct Report {
    json: Value,
    text: String,
}

impl Report {
    fn new(json: Value, text: impl Into<String>) -> Self {
        Report {
            json,
            text: text.into(),
        }
    }
}

pub(crate) fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context {
        config_path: cli.config.clone(),
        pins: &cli.pins,
        remote: cli.remote,
    };
    if cli.remote
        && !matches!(
            cli.command,
            Command::Token(_)
                | Command::Pin(_)
                | Command::Key(_)
                | Command::Status
                | Command::Audit(_)
                | Command::Backup(_)
        )
    {
        return Err(Failure::usage(
            "--remote covers token, pin, key, audit, backup and status; self-test, doctor and \
             verify-release run on the HSM host itself",
        ));
    }
    let report = match cli.command {
        Command::Token(c) => token(&ctx, c)?,
        Command::Pin(c) => pin(&ctx, c)?,
        Command::Key(c) => key(&ctx, c)?,
        Command::Audit(c) => audit(&ctx, c)?,
        Command::Backup(c) => backup(&ctx, c)?,
        Command::SelfTest { module } => self_test(module)?,
        Command::Status => status(&ctx)?,
        Command::VerifyRelease { public_key, dir } => verify_release(&public_key, &dir)?,
        Command::Doctor { root } => {
            let checks = crate::doctor::run(&crate::doctor::root_or_slash(root));
            let (text, json, failed) = crate::doctor::report(&checks);
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                print!("{text}");
            }
            if failed {
                return Err(Failure::verification(
                    "the host fails the deployment checks above",
                ));
            }
            return Ok(());
        }
    };
    if cli.json {
        let text = serde_json::to_string_pretty(&report.json)
            .map_err(|e| Failure::failed(format!("cannot print JSON: {e}")))?;
        println!("{text}");
    } else if !report.text.is_empty() {
        println!("{}", report.text.trim_end());
    }
    Ok(())
}

struct Context<'a> {
    config_path: Option<PathBuf>,
    pins: &'a PinArgs,
    remote: bool,
}

impl Context<'_> {
    fn config(&self) -> Result<Config, Failure> {
        Config::discover(self.config_path.as_deref())
            .map(|(c, _)| c)
            .map_err(|e| Failure::setup(e.to_string()))
    }

    fn open(&self) -> Result<Hsm, Failure> {
        Hsm::open(self.config()?).map_err(|e| Failure::setup(e.to_string()))
    }

    /// The token: the local store, or with `--remote` the daemon the `[client]` section
    /// names (mutual TLS with this client's certificate).
    fn engine(&self) -> Result<Box<dyn Engine>, Failure> {
        if !self.remote {
            return Ok(Box::new(self.open()?));
        }
        Ok(Box::new(self.remote()?))
    }

    fn remote(&self) -> Result<RemoteHsm, Failure> {
        let config = self.config()?;
        let client = config.client.as_ref().ok_or_else(|| {
            Failure::setup(format!(
                "--remote needs a [client] section (endpoint, ca, cert, key) in {}",
                config.origin()
            ))
        })?;
        RemoteHsm::connect(client).map_err(|e| Failure::setup(e.to_string()))
    }

    fn user_pin(&self) -> Source {
        Source {
            what: "user PIN",
            flag: "--pin-file",
            env: "CRATON_HSM_PIN",
            file: self.pins.pin_file.clone(),
            arg: self.pins.pin.clone(),
        }
    }

    fn so_pin(&self) -> Source {
        Source {
            what: "SO PIN",
            flag: "--so-pin-file",
            env: "CRATON_HSM_SO_PIN",
            file: self.pins.so_pin_file.clone(),
            arg: self.pins.so_pin.clone(),
        }
    }

    fn new_pin(&self) -> Source {
        Source {
            what: "new PIN",
            flag: "--new-pin-file",
            env: "CRATON_HSM_NEW_PIN",
            file: self.pins.new_pin_file.clone(),
            arg: self.pins.new_pin.clone(),
        }
    }

    fn passphrase(&self) -> Source {
        Source {
            what: "backup passphrase",
            flag: "--passphrase-file",
            env: "CRATON_HSM_BACKUP_PASSPHRASE",
            file: self.pins.passphrase_file.clone(),
            arg: None,
        }
    }
}

/// A read/write session on `slot`, logged in as `user` with the PIN from `source`.
fn session(
    hsm: &dyn Engine,
    slot: u64,
    user: UserType,
    source: &Source,
) -> Result<SessionHandle, Failure> {
    let h = hsm.open_session(slot, true)?;
    let pin = source.read(false)?;
    hsm.login(h, user, &pin)?;
    Ok(h)
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

// ---- token ----

fn token(ctx: &Context<'_>, c: TokenCommand) -> Result<Report, Failure> {
    let engine = ctx.engine()?;
    let hsm = engine.as_ref();
    match c {
        TokenCommand::Init { slot, label, wipe } => {
            let slot = slot.slot;
            if label.len() > 32 {
                return Err(Failure::usage("a token label is at most 32 bytes"));
            }
            if hsm.token_info(slot)?.initialized && !wipe {
                return Err(Failure::usage(format!(
                    "the token in slot {slot} is initialised; --wipe re-initialises it and \
                     destroys every key on it"
                )));
            }
            let so = ctx.so_pin().read(true)?;
            hsm.init_token(slot, &so, &label)?;
            Ok(Report::new(
                json!({"slot": slot, "label": label, "initialized": true}),
                format!("token in slot {slot} initialised as '{label}'; next: craton-hsm pin init"),
            ))
        }
        TokenCommand::Info { slot } => {
            let j = token_json(hsm, slot.slot)?;
            Ok(Report::new(j.clone(), token_text(&j)))
        }
        TokenCommand::List => {
            let all: Vec<Value> = hsm
                .slot_ids()?
                .into_iter()
                .map(|s| token_json(hsm, s))
                .collect::<Result<_, _>>()?;
            let mut text = format!(
                "{:<5} {:<32} {:<16} {}\n",
                "slot", "label", "serial", "state"
            );
            for t in &all {
                text += &format!(
                    "{:<5} {:<32} {:<16} {}\n",
                    t["slot"].to_string(),
                    t["label"].as_str().unwrap_or(""),
                    t["serial"].as_str().unwrap_or(""),
                    state_word(t)
                );
            }
            Ok(Report::new(Value::Array(all), text))
        }
    }
}

fn state_word(t: &Value) -> &'static str {
    if t["initialized"] != json!(true) {
        "not initialised"
    } else if t["user_pin_initialized"] != json!(true) {
        "initialised, no user PIN"
    } else if t["user_pin"]["locked"] == json!(true) {
        "user PIN locked"
    } else {
        "ready"
    }
}

fn pin_json(p: &craton_store::PinStatus) -> Value {
    json!({
        "failures": p.failures,
        "count_low": p.count_low,
        "final_try": p.final_try,
        "locked": p.locked,
    })
}

fn token_json(hsm: &dyn Engine, slot: u64) -> Result<Value, Failure> {
    let t = hsm.token_info(slot)?;
    Ok(json!({
        "slot": slot,
        "label": text_of(&t.label),
        "serial": text_of(&t.serial),
        "initialized": t.initialized,
        "user_pin_initialized": t.user_pin_initialized,
        "user_pin": pin_json(&t.user_pin),
        "so_pin": pin_json(&t.so_pin),
        "pin_length": {"min": t.min_pin_len, "max": t.max_pin_len},
        "max_failed_logins": hsm.max_failed_logins()?,
    }))
}

fn token_text(j: &Value) -> String {
    format!(
        "slot        {}\nlabel       {}\nserial      {}\nstate       {}\nuser PIN    {} failed attempts{}\nSO PIN      {} failed attempts{}\nlockout at  {} failures\n",
        j["slot"],
        j["label"].as_str().unwrap_or(""),
        j["serial"].as_str().unwrap_or(""),
        state_word(j),
        j["user_pin"]["failures"],
        if j["user_pin"]["locked"] == json!(true) {
            ", locked"
        } else {
            ""
        },
        j["so_pin"]["failures"],
        if j["so_pin"]["locked"] == json!(true) {
            ", locked"
        } else {
            ""
        },
        j["max_failed_logins"],
    )
}

// ---- pin ----

fn pin(ctx: &Context<'_>, c: PinCommand) -> Result<Report, Failure> {
    let engine = ctx.engine()?;
    let hsm = engine.as_ref();
    match c {
        PinCommand::Init { slot } => {
            let h = session(hsm, slot.slot, UserType::So, &ctx.so_pin())?;
            let new = ctx.new_pin().read(true)?;
            hsm.init_pin(h, &new)?;
            Ok(Report::new(
                json!({"slot": slot.slot, "user_pin_initialized": true}),
                format!("user PIN of slot {} set", slot.slot),
            ))
        }
        PinCommand::Change { slot, so } => {
            let (user, old) = if so {
                (UserType::So, ctx.so_pin())
            } else {
                (UserType::User, ctx.user_pin())
            };
            let h = session(hsm, slot.slot, user, &old)?;
            let old = old.read(false)?;
            let new = ctx.new_pin().read(true)?;
            hsm.set_pin(h, &old, &new)?;
            let who = if so { "SO" } else { "user" };
            Ok(Report::new(
                json!({"slot": slot.slot, "changed": who}),
                format!("{who} PIN of slot {} changed", slot.slot),
            ))
        }
        PinCommand::UnlockStatus { slot } => {
            let j = token_json(hsm, slot.slot)?;
            let text = format!(
                "user PIN  {} of {} failed attempts{}\nSO PIN    {} of {} failed attempts{}\n",
                j["user_pin"]["failures"],
                j["max_failed_logins"],
                if j["user_pin"]["locked"] == json!(true) {
                    ": locked (the SO resets it with craton-hsm pin init)"
                } else {
                    ""
                },
                j["so_pin"]["failures"],
                j["max_failed_logins"],
                if j["so_pin"]["locked"] == json!(true) {
                    ": locked (only re-initialising the token clears it)"
                } else {
                    ""
                },
            );
            Ok(Report::new(
                json!({
                    "slot": slot.slot,
                    "user_pin": j["user_pin"],
                    "so_pin": j["so_pin"],
                    "max_failed_logins": j["max_failed_logins"],
                }),
                text,
            ))
        }
    }
}

// ---- key ----

/// The generation of one key kind: mechanism, and the public (or only) and private
/// template parts that say which key it is.
fn key_spec(kind: KeyKind) -> (M, Vec<(A, AttrValue)>, bool) {
    use AttrValue::{Bytes, Ulong};
    let ec = |c: craton_core::ec::Curve| vec![(A::EC_PARAMS, Bytes(c.ec_params().to_vec()))];
    match kind {
        KeyKind::Rsa2048 => (
            M::RSA_PKCS_KEY_PAIR_GEN,
            vec![(A::MODULUS_BITS, Ulong(2048))],
            true,
        ),
        KeyKind::Rsa3072 => (
            M::RSA_PKCS_KEY_PAIR_GEN,
            vec![(A::MODULUS_BITS, Ulong(3072))],
            true,
        ),
        KeyKind::Rsa4096 => (
            M::RSA_PKCS_KEY_PAIR_GEN,
            vec![(A::MODULUS_BITS, Ulong(4096))],
            true,
        ),
        KeyKind::EcP256 => (M::EC_KEY_PAIR_GEN, ec(craton_core::ec::Curve::P256), true),
        KeyKind::EcP384 => (M::EC_KEY_PAIR_GEN, ec(craton_core::ec::Curve::P384), true),
        KeyKind::EcP521 => (M::EC_KEY_PAIR_GEN, ec(craton_core::ec::Curve::P521), true),
        KeyKind::Ed25519 => (
            M::EC_EDWARDS_KEY_PAIR_GEN,
            vec![(A::EC_PARAMS, Bytes(vec![0x06, 0x03, 0x2b, 0x65, 0x70]))],
            true,
        ),
        KeyKind::Aes128 => (M::AES_KEY_GEN, vec![(A::VALUE_LEN, Ulong(16))], false),
        KeyKind::Aes256 => (M::AES_KEY_GEN, vec![(A::VALUE_LEN, Ulong(32))], false),
        KeyKind::Hmac256 => (
            M::GENERIC_SECRET_KEY_GEN,
            vec![(A::VALUE_LEN, Ulong(32))],
            false,
        ),
        KeyKind::MlDsa44 => (
            M::ML_DSA_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, Ulong(1))],
            true,
        ),
        KeyKind::MlDsa65 => (
            M::ML_DSA_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, Ulong(2))],
            true,
        ),
        KeyKind::MlDsa87 => (
            M::ML_DSA_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, Ulong(3))],
            true,
        ),
        KeyKind::MlKem512 => (
            M::ML_KEM_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, Ulong(1))],
            true,
        ),
        KeyKind::MlKem768 => (
            M::ML_KEM_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, Ulong(2))],
            true,
        ),
        KeyKind::MlKem1024 => (
            M::ML_KEM_KEY_PAIR_GEN,
            vec![(A::PARAMETER_SET, Ulong(3))],
            true,
        ),
    }
}

fn parse_hex(s: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(s).map_err(|_| Failure::usage(format!("'{s}' is not hex")))
}

const SHOWN: [A; 24] = [
    A::CLASS,
    A::KEY_TYPE,
    A::LABEL,
    A::ID,
    A::TOKEN,
    A::PRIVATE,
    A::SENSITIVE,
    A::EXTRACTABLE,
    A::ALWAYS_SENSITIVE,
    A::NEVER_EXTRACTABLE,
    A::LOCAL,
    A::MODIFIABLE,
    A::SIGN,
    A::VERIFY,
    A::ENCRYPT,
    A::DECRYPT,
    A::WRAP,
    A::UNWRAP,
    A::DERIVE,
    A::ENCAPSULATE,
    A::DECAPSULATE,
    A::MODULUS_BITS,
    A::VALUE_LEN,
    A::PARAMETER_SET,
];

/// An attribute value for people and for JSON.
fn shown(a: A, v: &AttrValue) -> Value {
    match (a, v) {
        (A::CLASS, AttrValue::Ulong(c)) => json!(ObjectClass(*c).name().unwrap_or("vendor")),
        (A::KEY_TYPE, AttrValue::Ulong(k)) => json!(KeyType(*k).name().unwrap_or("vendor")),
        (A::LABEL, AttrValue::Bytes(b)) => json!(String::from_utf8_lossy(b)),
        (_, AttrValue::Bytes(b)) => json!(hex::encode(b)),
        (_, AttrValue::Secret(b)) => json!(hex::encode(b.expose())),
        (_, AttrValue::Bool(b)) => json!(b),
        (_, AttrValue::Ulong(n)) => json!(n),
        (_, AttrValue::Date(d)) => json!(d.map(|d| String::from_utf8_lossy(&d).into_owned())),
    }
}

fn key_json(hsm: &dyn Engine, h: SessionHandle, o: ObjectHandle) -> Result<Value, Failure> {
    let values = hsm.attribute_values(h, o, &SHOWN)?;
    let mut m = serde_json::Map::new();
    m.insert("handle".into(), json!(o.0));
    for (a, v) in SHOWN.iter().zip(values) {
        if let Ok(v) = v {
            let name = a.name().unwrap_or("?").to_ascii_lowercase();
            m.insert(name, shown(*a, &v));
        }
    }
    Ok(Value::Object(m))
}

/// The keys on the token, as JSON objects.
fn keys(hsm: &dyn Engine, h: SessionHandle) -> Result<Vec<Value>, Failure> {
    let found = hsm.find_all(h, &[])?;
    let mut out = Vec::new();
    for o in found {
        let j = key_json(hsm, h, o)?;
        if matches!(
            j["class"].as_str(),
            Some("PUBLIC_KEY" | "PRIVATE_KEY" | "SECRET_KEY")
        ) {
            out.push(j);
        }
    }
    Ok(out)
}

/// The report on keys just made: their attributes, and a line each.
fn made(
    hsm: &dyn Engine,
    h: SessionHandle,
    handles: &[ObjectHandle],
    verb: &str,
    label: &str,
) -> Result<Report, Failure> {
    let shown: Vec<Value> = handles
        .iter()
        .map(|o| key_json(hsm, h, *o))
        .collect::<Result<_, _>>()?;
    let text = shown
        .iter()
        .map(|k| {
            format!(
                "{verb} {} {} '{label}' (handle {})\n",
                k["key_type"].as_str().unwrap_or("?"),
                k["class"].as_str().unwrap_or("?"),
                k["handle"]
            )
        })
        .collect::<String>();
    Ok(Report::new(Value::Array(shown), text))
}

/// The attributes every stored key gets from the command line: a token object, its label,
/// and its id if one was given.
fn labelled(label: &str, id: Option<&str>) -> Result<Vec<(A, AttrValue)>, Failure> {
    let mut t = vec![
        (A::TOKEN, AttrValue::Bool(true)),
        (A::LABEL, AttrValue::Bytes(label.as_bytes().to_vec())),
    ];
    if let Some(id) = id {
        t.push((A::ID, AttrValue::Bytes(parse_hex(id)?)));
    }
    Ok(t)
}

/// The handles `key` names: a number is a handle, anything else a label.
fn named(hsm: &dyn Engine, h: SessionHandle, key: &str) -> Result<Vec<ObjectHandle>, Failure> {
    let all = keys(hsm, h)?;
    let hits: Vec<ObjectHandle> = match key.parse::<u64>() {
        Ok(n) => all
            .iter()
            .filter(|k| k["handle"] == json!(n))
            .map(|_| ObjectHandle(n))
            .collect(),
        Err(_) => all
            .iter()
            .filter(|k| k["label"] == json!(key))
            .filter_map(|k| k["handle"].as_u64().map(ObjectHandle))
            .collect(),
    };
    if hits.is_empty() {
        return Err(Failure::failed(format!("no key '{key}' on this token")));
    }
    Ok(hits)
}

fn key(ctx: &Context<'_>, c: KeyCommand) -> Result<Report, Failure> {
    let engine = ctx.engine()?;
    let hsm = engine.as_ref();
    match c {
        KeyCommand::Generate {
            slot,
            kind,
            label,
            id,
            extractable,
        } => {
            let h = session(hsm, slot.slot, UserType::User, &ctx.user_pin())?;
            let (mech, spec, pair) = key_spec(kind);
            let common = labelled(&label, id.as_deref())?;
            let mut private = common.clone();
            private.extend([
                (A::PRIVATE, AttrValue::Bool(true)),
                (A::SENSITIVE, AttrValue::Bool(true)),
                (A::EXTRACTABLE, AttrValue::Bool(extractable)),
            ]);
            let mechanism = Mechanism::Generate(mech);
            let handles = if pair {
                let mut public = common;
                public.extend(spec);
                let (p, s) = hsm.generate_key_pair(h, &mechanism, &public, &private)?;
                vec![p, s]
            } else {
                private.extend(spec);
                vec![hsm.generate_key(h, &mechanism, &private)?]
            };
            made(hsm, h, &handles, "generated", &label)
        }
        KeyCommand::Import {
            slot,
            kind,
            label,
            id,
            usage,
            extractable,
            file,
        } => {
            let h = session(hsm, slot.slot, UserType::User, &ctx.user_pin())?;
            let handles = import(
                hsm,
                h,
                kind,
                &label,
                id.as_deref(),
                &usage,
                extractable,
                &file,
            )?;
            made(hsm, h, &handles, "imported", &label)
        }
        KeyCommand::List { slot } => {
            let h = session(hsm, slot.slot, UserType::User, &ctx.user_pin())?;
            let all = keys(hsm, h)?;
            let mut text = format!(
                "{:<8} {:<12} {:<10} {:<24} {}\n",
                "handle", "class", "type", "label", "id"
            );
            for k in &all {
                text += &format!(
                    "{:<8} {:<12} {:<10} {:<24} {}\n",
                    k["handle"].to_string(),
                    k["class"].as_str().unwrap_or(""),
                    k["key_type"].as_str().unwrap_or(""),
                    k["label"].as_str().unwrap_or(""),
                    k["id"].as_str().unwrap_or("")
                );
            }
            Ok(Report::new(Value::Array(all), text))
        }
        KeyCommand::Show { slot, key } => {
            let h = session(hsm, slot.slot, UserType::User, &ctx.user_pin())?;
            let shown: Vec<Value> = named(hsm, h, &key)?
                .into_iter()
                .map(|o| key_json(hsm, h, o))
                .collect::<Result<_, _>>()?;
            let mut text = String::new();
            for k in &shown {
                if let Value::Object(m) = k {
                    for (name, v) in m {
                        text += &format!(
                            "{name:<18} {}\n",
                            v.as_str().map_or(v.to_string(), str::to_owned)
                        );
                    }
                }
                text += "\n";
            }
            Ok(Report::new(Value::Array(shown), text))
        }
        KeyCommand::ExportPublic { slot, key, out } => {
            let h = session(hsm, slot.slot, UserType::User, &ctx.user_pin())?;
            let all = keys(hsm, h)?;
            let wanted = |class: &str| {
                all.iter().find(|k| {
                    k["class"] == class
                        && (k["label"] == json!(key)
                            || key.parse::<u64>().is_ok_and(|n| k["handle"] == json!(n)))
                })
            };
            let k = wanted("PUBLIC_KEY")
                .or_else(|| wanted("PRIVATE_KEY"))
                .ok_or_else(|| Failure::failed(format!("no public or private key '{key}'")))?;
            let handle = ObjectHandle(k["handle"].as_u64().unwrap_or_default());
            let der = hsm.public_key_info(h, handle)?;
            let pem = craton_core::spki::pem("PUBLIC KEY", &der);
            if let Some(path) = &out {
                std::fs::write(path, &pem).map_err(|e| {
                    Failure::failed(format!("cannot write {}: {e}", path.display()))
                })?;
            }
            let text = match &out {
                Some(path) => format!("wrote {}", path.display()),
                None => pem.clone(),
            };
            Ok(Report::new(
                json!({"handle": handle.0, "key_type": k["key_type"], "pem": pem}),
                text,
            ))
        }
        KeyCommand::Destroy { slot, key, yes } => {
            if !yes {
                return Err(Failure::usage(
                    "destroying a key cannot be undone: add --yes to go ahead",
                ));
            }
            let h = session(hsm, slot.slot, UserType::User, &ctx.user_pin())?;
            let targets = named(hsm, h, &key)?;
            for o in &targets {
                hsm.destroy_object(h, *o)?;
            }
            let ids: Vec<u64> = targets.iter().map(|o| o.0).collect();
            Ok(Report::new(
                json!({"destroyed": ids}),
                format!("destroyed {} object(s) named '{key}'", ids.len()),
            ))
        }
    }
}

/// The usage attributes named on the command line.
fn usage_attrs(usage: &[String]) -> Result<Vec<A>, Failure> {
    usage
        .iter()
        .map(|u| match u.trim() {
            "encrypt" => Ok(A::ENCRYPT),
            "decrypt" => Ok(A::DECRYPT),
            "sign" => Ok(A::SIGN),
            "verify" => Ok(A::VERIFY),
            "wrap" => Ok(A::WRAP),
            "unwrap" => Ok(A::UNWRAP),
            "derive" => Ok(A::DERIVE),
            other => Err(Failure::usage(format!("unknown usage '{other}'"))),
        })
        .collect()
}

/// The bytes of a PEM block labelled `label`, or `None` if `text` is not PEM.
fn pem_body(text: &[u8], label: &str) -> Option<Result<Zeroizing<Vec<u8>>, Failure>> {
    let text = std::str::from_utf8(text).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let start = text.find(&begin)? + begin.len();
    let end = text[start..].find("-----END")? + start;
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Zeroizing::new(Vec::new());
    for c in text[start..end]
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Some(Err(Failure::usage("the PEM block is not base64"))),
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(Ok(out))
}

#[allow(clippy::too_many_arguments)]
fn import(
    hsm: &dyn Engine,
    h: SessionHandle,
    kind: ImportKind,
    label: &str,
    id: Option<&str>,
    usage: &[String],
    extractable: bool,
    file: &Path,
) -> Result<Vec<ObjectHandle>, Failure> {
    let raw = Zeroizing::new(
        std::fs::read(file)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?,
    );
    let common = labelled(label, id)?;
    let mut usage = usage_attrs(usage)?;
    let secret_attrs = |class: ObjectClass, key_type: KeyType| {
        let mut t = common.clone();
        t.extend([
            (A::CLASS, AttrValue::Ulong(class.0)),
            (A::KEY_TYPE, AttrValue::Ulong(key_type.0)),
            (A::PRIVATE, AttrValue::Bool(true)),
            (A::SENSITIVE, AttrValue::Bool(true)),
            (A::EXTRACTABLE, AttrValue::Bool(extractable)),
        ]);
        t
    };
    let wipe = |t: &mut Vec<(A, AttrValue)>| {
        for (_, v) in t.iter_mut() {
            if let AttrValue::Bytes(b) = v {
                zeroize::Zeroize::zeroize(b);
            }
        }
    };
    match kind {
        ImportKind::Aes | ImportKind::GenericSecret => {
            let text = String::from_utf8_lossy(&raw).trim().to_owned();
            let value = match hex::decode(&text) {
                Ok(v) if !v.is_empty() => Zeroizing::new(v),
                _ => raw.clone(),
            };
            let key_type = if kind == ImportKind::Aes {
                if ![16, 24, 32].contains(&value.len()) {
                    return Err(Failure::usage(format!(
                        "an AES key is 16, 24 or 32 bytes, not {}",
                        value.len()
                    )));
                }
                KeyType::AES
            } else {
                KeyType::GENERIC_SECRET
            };
            if usage.is_empty() {
                usage = if kind == ImportKind::Aes {
                    vec![A::ENCRYPT, A::DECRYPT]
                } else {
                    vec![A::SIGN, A::VERIFY]
                };
            }
            let mut t = secret_attrs(ObjectClass::SECRET_KEY, key_type);
            t.push((A::VALUE, AttrValue::Bytes(value.to_vec())));
            t.extend(usage.iter().map(|a| (*a, AttrValue::Bool(true))));
            let created = hsm.create_object(h, &t);
            wipe(&mut t);
            Ok(vec![created?])
        }
        ImportKind::Pkcs8 => {
            let der = match pem_body(&raw, "PRIVATE KEY") {
                Some(body) => body?,
                None => raw.clone(),
            };
            let (key_type, material) = [
                KeyType::RSA,
                KeyType::EC,
                KeyType::EC_EDWARDS,
                KeyType::EC_MONTGOMERY,
            ]
            .into_iter()
            .find_map(|k| {
                craton_core::key::KeyMaterial::from_pkcs8(k, &der)
                    .ok()
                    .map(|m| (k, m))
            })
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{} is not a PKCS#8 RSA, EC, Ed25519 or X25519 private key",
                    file.display()
                ))
            })?;
            if usage.is_empty() {
                usage = vec![A::SIGN, A::VERIFY];
            }
            let is_private_use = |a: &A| matches!(*a, A::SIGN | A::DECRYPT | A::UNWRAP | A::DERIVE);
            let generate_only = |a: &A| matches!(*a, A::MODULUS_BITS | A::VALUE_LEN);
            let mut private = secret_attrs(ObjectClass::PRIVATE_KEY, key_type);
            private.extend(
                material
                    .private_attributes()
                    .map_err(|e| Failure::failed(e.to_string()))?
                    .into_iter()
                    .filter(|(a, _)| !generate_only(a)),
            );
            private.extend(
                usage
                    .iter()
                    .filter(|a| is_private_use(a))
                    .map(|a| (*a, AttrValue::Bool(true))),
            );
            let mut public = common.clone();
            public.extend([
                (A::CLASS, AttrValue::Ulong(ObjectClass::PUBLIC_KEY.0)),
                (A::KEY_TYPE, AttrValue::Ulong(key_type.0)),
            ]);
            public.extend(
                material
                    .public_attributes()
                    .map_err(|e| Failure::failed(e.to_string()))?
                    .into_iter()
                    .filter(|(a, _)| !generate_only(a)),
            );
            public.extend(
                usage
                    .iter()
                    .filter(|a| !is_private_use(a))
                    .map(|a| (*a, AttrValue::Bool(true))),
            );
            let made = hsm.create_object(h, &private);
            wipe(&mut private);
            let private = made?;
            let public = hsm.create_object(h, &public)?;
            Ok(vec![public, private])
        }
    }
}

// ---- audit ----

/// The configured log and its rotated files, oldest first.
fn audit_files(config: &Config) -> Result<Vec<PathBuf>, Failure> {
    let files = craton_store::audit::log_files(&config.audit_path());
    if files.is_empty() {
        return Err(Failure::failed(format!(
            "no audit log at {}",
            config.audit_path().display()
        )));
    }
    Ok(files)
}

/// The audit public key the operator gave, on the command line or in a file, if any.
fn given_key(arg: Option<String>, file: Option<PathBuf>) -> Result<Option<String>, Failure> {
    match (arg, file) {
        (Some(k), _) => Ok(Some(k)),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map(|t| Some(t.trim().to_owned()))
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", f.display()))),
        (None, None) => Ok(None),
    }
}

/// The slots whose token is initialised.
fn initialised_slots(hsm: &dyn Engine) -> Result<Vec<u64>, Failure> {
    Ok(hsm
        .slot_ids()?
        .into_iter()
        .filter(|s| hsm.token_info(*s).is_ok_and(|t| t.initialized))
        .collect())
}

/// What `audit verify` says of an intact log.
fn intact(entries: u64, seals: u64, last_seq: u64, files: Vec<String>) -> Report {
    let text = format!(
        "audit log intact: {entries} entries, {seals} seals verified, last sequence {last_seq} \
         ({} file(s))",
        files.len()
    );
    Report::new(
        json!({"valid": true, "entries": entries, "seals": seals, "last_seq": last_seq,
               "files": files}),
        text,
    )
}

fn tail_report<S: AsRef<str>>(lines: &[S]) -> Report {
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l.as_ref()).unwrap_or_else(|_| json!(l.as_ref())))
        .collect();
    let text: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
    Report::new(Value::Array(parsed), text.join("\n"))
}

fn rotated_report(old: &str) -> Report {
    Report::new(
        json!({"rotated_to": old}),
        format!("the old log is now {old}"),
    )
}

/// An SO session through the daemon, on `slot` or else the first initialised token.
fn remote_so_session(
    ctx: &Context<'_>,
    remote: &RemoteHsm,
    slot: Option<u64>,
) -> Result<SessionHandle, Failure> {
    let slot = match slot {
        Some(s) => s,
        None => *initialised_slots(remote)?
            .first()
            .ok_or_else(|| Failure::failed("the daemon has no initialised token"))?,
    };
    session(remote, slot, UserType::So, &ctx.so_pin())
}

/// `audit … --remote`: the daemon's log, read, verified and rotated by the daemon for its
/// security officer.
fn remote_audit(ctx: &Context<'_>, c: AuditCommand) -> Result<Report, Failure> {
    let remote = ctx.remote()?;
    match c {
        AuditCommand::ExportPublicKey => {
            let k = remote.audit_public_key()?;
            Ok(Report::new(json!({"public_key": k}), k.clone()))
        }
        AuditCommand::Verify {
            public_key,
            public_key_file,
            files,
        } => {
            if !files.is_empty() {
                return Err(Failure::usage(
                    "with --remote the daemon verifies its own files; copy them and verify \
                     without --remote to check other files",
                ));
            }
            if let Some(k) = given_key(public_key, public_key_file)? {
                let theirs = remote.audit_public_key()?;
                if parse_hex(&k)? != parse_hex(&theirs)? {
                    return Err(Failure::verification(format!(
                        "the daemon's audit key {theirs} is not the one given ({k})"
                    )));
                }
            }
            let so = remote_so_session(ctx, &remote, None)?;
            let r = remote.audit_verify(so);
            remote.close_session(so)?;
            let r = r?;
            if r.valid {
                Ok(intact(r.entries, r.seals, r.last_seq, r.files))
            } else {
                Err(Failure::verification(format!(
                    "audit log NOT intact: {}",
                    r.problem
                )))
            }
        }
        AuditCommand::Tail { lines } => {
            let so = remote_so_session(ctx, &remote, None)?;
            let tail = remote.audit_tail(so, u32::try_from(lines).unwrap_or(u32::MAX));
            remote.close_session(so)?;
            Ok(tail_report(&tail?))
        }
        AuditCommand::Rotate => {
            let so = remote_so_session(ctx, &remote, None)?;
            let old = remote.audit_rotate(so);
            remote.close_session(so)?;
            Ok(rotated_report(&old?))
        }
    }
}

fn audit(ctx: &Context<'_>, c: AuditCommand) -> Result<Report, Failure> {
    if ctx.remote {
        return remote_audit(ctx, c);
    }
    match c {
        AuditCommand::Verify {
            public_key,
            public_key_file,
            files,
        } => {
            let config = ctx.config()?;
            let key_hex = match given_key(public_key, public_key_file)? {
                Some(k) => k,
                None => {
                    // Opening the engine seals the log again when it closes, so the check
                    // below sees a sealed tail.
                    let hsm =
                        Hsm::open(config.clone()).map_err(|e| Failure::setup(e.to_string()))?;
                    let k = hsm.audit().map(|a| a.public_key_hex()).ok_or_else(|| {
                        Failure::failed("the audit log is off in this configuration")
                    })?;
                    drop(hsm);
                    k
                }
            };
            let key = parse_hex(&key_hex)?;
            let files = if files.is_empty() {
                audit_files(&config)?
            } else {
                files
            };
            let mut bar = crate::progress::Bar::new("verifying the audit log");
            let result =
                craton_store::audit::verify_with_progress(&files, &key, &mut |d, t| bar.set(d, t));
            drop(bar);
            match result {
                Ok(r) => Ok(intact(
                    r.entries,
                    r.seals,
                    r.last_seq,
                    files.iter().map(|f| f.display().to_string()).collect(),
                )),
                Err(e) => Err(Failure::verification(format!(
                    "audit log NOT intact: {}:{}: {}",
                    e.file.display(),
                    e.line,
                    e.why
                ))),
            }
        }
        AuditCommand::Tail { lines } => {
            let config = ctx.config()?;
            let path = config.audit_path();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?;
            let all: Vec<&str> = text.lines().collect();
            Ok(tail_report(&all[all.len().saturating_sub(lines)..]))
        }
        AuditCommand::ExportPublicKey => {
            let hsm = ctx.open()?;
            let k = hsm
                .audit()
                .map(|a| a.public_key_hex())
                .ok_or_else(|| Failure::failed("the audit log is off in this configuration"))?;
            Ok(Report::new(json!({"public_key": k}), k.clone()))
        }
        AuditCommand::Rotate => {
            let hsm = ctx.open()?;
            let a = hsm
                .audit()
                .ok_or_else(|| Failure::failed("the audit log is off in this configuration"))?;
            let old = a
                .rotate()
                .map_err(|e| Failure::failed(format!("rotation failed: {e}")))?;
            Ok(rotated_report(&old.display().to_string()))
        }
    }
}

// ---- backup ----

fn key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let raw = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?,
    );
    if raw.len() == 32 {
        return Ok(raw);
    }
    let text = String::from_utf8_lossy(&raw).trim().to_owned();
    match hex::decode(&text) {
        Ok(k) if k.len() == 32 => Ok(Zeroizing::new(k)),
        _ => Err(Failure::usage(format!(
            "{} must hold a 32-byte key (raw, or 64 hex digits)",
            path.display()
        ))),
    }
}

fn backup_failure(e: craton_store::backup::BackupError) -> Failure {
    use craton_store::backup::BackupError as B;
    match e {
        B::Authentication => Failure::verification(e.to_string()),
        B::NotABackup => Failure::verification(e.to_string()),
        _ => Failure::failed(e.to_string()),
    }
}

fn info_json(i: &craton_store::backup::BackupInfo) -> Value {
    json!({
        "protected_by": if i.passphrase { "passphrase" } else { "key" },
        "created": i.created,
        "tokens": i.tokens,
        "size": i.size,
    })
}

/// Writes a backup to `out` (owner-only) and says what it holds.
fn written(out: &Path, bytes: &[u8]) -> Result<Report, Failure> {
    write_private(out, bytes)?;
    let info = craton_store::backup::inspect(bytes).map_err(backup_failure)?;
    Ok(Report::new(
        info_json(&info),
        format!(
            "wrote {} ({} token(s), {} bytes)",
            out.display(),
            info.tokens,
            info.size
        ),
    ))
}

/// The secret a backup is sealed under: the key file's key, or a passphrase.
struct Secret {
    key: bool,
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Reads it: the key file if one is named, else the passphrase (asked twice on a
    /// terminal when `confirm`).
    fn read(
        ctx: &Context<'_>,
        key_file_path: Option<&Path>,
        confirm: bool,
    ) -> Result<Secret, Failure> {
        Ok(match key_file_path {
            Some(f) => Secret {
                key: true,
                bytes: key_file(f)?,
            },
            None => Secret {
                key: false,
                bytes: ctx.passphrase().read(confirm)?,
            },
        })
    }

    fn as_backup(&self) -> BackupSecret<'_> {
        if self.key {
            BackupSecret::Key(&self.bytes)
        } else {
            BackupSecret::Passphrase(&self.bytes)
        }
    }
}

/// `backup create --remote`: the daemon seals the backup (the SO of each token logs in for
/// it) and sends it here; only the sealed file ever crosses the network.
fn remote_backup(ctx: &Context<'_>, c: BackupCommand) -> Result<Report, Failure> {
    let BackupCommand::Create {
        out,
        slot,
        key_file: kf,
    } = c
    else {
        return Err(Failure::usage(
            "with --remote only 'backup create' runs through the daemon: restore on the HSM \
             host with the daemon stopped, and inspect a file without --remote",
        ));
    };
    if out.exists() {
        return Err(Failure::usage(format!(
            "{} exists: choose a new file",
            out.display()
        )));
    }
    let remote = ctx.remote()?;
    let slots: Vec<u64> = if slot.is_empty() {
        initialised_slots(&remote)?
    } else {
        slot
    };
    let mut sessions = Vec::new();
    for s in &slots {
        sessions.push(remote_so_session(ctx, &remote, Some(*s))?);
    }
    let secret = Secret::read(ctx, kf.as_deref(), true)?;
    let spinner = crate::progress::Spinner::start("the daemon is sealing the backup");
    let bytes = remote.backup(&sessions, &secret.as_backup());
    drop(spinner);
    for s in sessions {
        remote.close_session(s)?;
    }
    written(&out, &bytes?)
}

fn backup(ctx: &Context<'_>, c: BackupCommand) -> Result<Report, Failure> {
    if ctx.remote {
        return remote_backup(ctx, c);
    }
    match c {
        BackupCommand::Create {
            out,
            slot,
            key_file: kf,
        } => {
            if out.exists() {
                return Err(Failure::usage(format!(
                    "{} exists: choose a new file",
                    out.display()
                )));
            }
            let hsm = ctx.open()?;
            let slots: Vec<u64> = if slot.is_empty() {
                initialised_slots(&hsm)?
            } else {
                slot
            };
            // The SO of every token in the backup must agree to it.
            let so = ctx.so_pin();
            for s in &slots {
                let h = session(&hsm, *s, UserType::So, &so)?;
                hsm.close_session(h)?;
            }
            let secret = Secret::read(ctx, kf.as_deref(), true)?;
            let spinner =
                crate::progress::Spinner::start("deriving the key and sealing the backup");
            let bytes = hsm.backup(&secret.as_backup(), Some(&slots));
            drop(spinner);
            written(&out, &bytes.map_err(backup_failure)?)
        }
        BackupCommand::Restore { file, key_file: kf } => {
            let config = ctx.config()?;
            let bytes = std::fs::read(&file)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
            let secret = Secret::read(ctx, kf.as_deref(), false)?;
            let dir = config.state_dir();
            let info = {
                let _spinner = crate::progress::Spinner::start(
                    "deriving the key, authenticating and restoring the backup",
                );
                craton_store::backup::restore(&bytes, &secret.as_backup(), &dir)
            }
            .map_err(backup_failure)?;
            Ok(Report::new(
                info_json(&info),
                format!("restored {} token(s) into {}", info.tokens, dir.display()),
            ))
        }
        BackupCommand::Inspect { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
            let info = craton_store::backup::inspect(&bytes).map_err(backup_failure)?;
            Ok(Report::new(
                info_json(&info),
                format!(
                    "Craton HSM backup: {} token(s), protected by a {}, made at {} (Unix time), {} bytes",
                    info.tokens,
                    if info.passphrase { "passphrase" } else { "key" },
                    info.created,
                    info.size
                ),
            ))
        }
    }
}

/// Writes a new file readable only by its owner.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))
}

// ---- self-test and status ----

/// The module file: the one given, or libcraton_hsm.so beside this program or in ../lib.
fn find_module(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given;
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join("libcraton_hsm.so"),
        dir.join("../lib/libcraton_hsm.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn self_test(module: Option<PathBuf>) -> Result<Report, Failure> {
    let post = craton_core::post::run_post();
    let mut text = String::new();
    let (kats, post_ok) = match &post {
        Ok(r) => {
            for k in &r.kats {
                text += &format!(
                    "pass  {:<44} {:>8.1} µs\n",
                    k.name,
                    k.duration.as_secs_f64() * 1e6
                );
            }
            text += &format!(
                "POST passed: {} known-answer tests in {:.1} ms\n",
                r.kats.len(),
                r.total.as_secs_f64() * 1e3
            );
            let kats: Vec<Value> = r
                .kats
                .iter()
                .map(|k| json!({"name": k.name, "micros": k.duration.as_micros() as u64}))
                .collect();
            (kats, true)
        }
        Err(f) => {
            text += &format!("FAIL  POST: {f}\n");
            (Vec::new(), false)
        }
    };
    let module = find_module(module);
    let integrity_result = match &module {
        Some(m) => craton_store::integrity::verify_module(m),
        None => Err("libcraton_hsm.so not found (give --module)".to_owned()),
    };
    match &integrity_result {
        Ok(()) => {
            text += &format!(
                "pass  integrity of {}\n",
                module
                    .as_deref()
                    .map(|m| m.display().to_string())
                    .unwrap_or_default()
            )
        }
        Err(why) => text += &format!("FAIL  integrity: {why}\n"),
    }
    let j = json!({
        "post": {"passed": post_ok, "kats": kats, "failure": post.as_ref().err().map(|f| f.to_string())},
        "integrity": {"module": module.map(|m| m.display().to_string()), "passed": integrity_result.is_ok(),
                      "failure": integrity_result.as_ref().err()},
    });
    if !post_ok || integrity_result.is_err() {
        println!(
            "{}",
            if text.is_empty() {
                j.to_string()
            } else {
                text.trim_end().to_owned()
            }
        );
        return Err(Failure::verification("self-test failed"));
    }
    Ok(Report::new(j, text))
}

fn status(ctx: &Context<'_>) -> Result<Report, Failure> {
    if ctx.remote {
        return remote_status(ctx);
    }
    let (config, source) =
        Config::discover(ctx.config_path.as_deref()).map_err(|e| Failure::setup(e.to_string()))?;
    let source = match source {
        craton_store::config::ConfigSource::File(p) => p.display().to_string(),
        craton_store::config::ConfigSource::Embedded => "built-in defaults".to_owned(),
    };
    let hsm = Hsm::open(config.clone()).map_err(|e| Failure::setup(e.to_string()))?;
    let tokens: Vec<Value> = hsm
        .slots()
        .map(|s| token_json(&hsm, s))
        .collect::<Result<_, _>>()?;
    let audit = hsm.audit().map(|a| {
        json!({"path": config.audit_path().display().to_string(),
               "last_seq": a.head().map(|(seq, _)| seq), "public_key": a.public_key_hex()})
    });
    let j = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": source,
        "state_dir": config.state_dir().display().to_string(),
        "self_test": if hsm.self_test_failure().is_none() { "passed" } else { "failed" },
        "tokens": tokens,
        "audit": audit,
    });
    let mut text = format!(
        "craton-hsm {}\nconfiguration  {}\nstate          {}\nself-test      {}\naudit log      {}\n",
        env!("CARGO_PKG_VERSION"),
        source,
        config.state_dir().display(),
        j["self_test"].as_str().unwrap_or(""),
        config.audit_path().display()
    );
    for t in &tokens {
        text += &format!(
            "slot {:<9} {} ({})\n",
            t["slot"].to_string(),
            t["label"].as_str().filter(|l| !l.is_empty()).unwrap_or("-"),
            state_word(t)
        );
    }
    Ok(Report::new(j, text))
}

// ---- verify-release ----

fn verify_release(public_key: &Path, dir: &Path) -> Result<Report, Failure> {
    let public = std::fs::read_to_string(public_key)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", public_key.display())))?;
    let v = crate::release::verify_dist(dir, &public)
        .map_err(|e| Failure::verification(format!("release NOT verified: {e}")))?;
    let mut sidecars = Vec::new();
    for name in ["libcraton_hsm.so", "craton-hsm-daemon"] {
        let path = dir.join(name);
        if path.exists() {
            craton_store::integrity::verify_module(&path)
                .map_err(|e| Failure::verification(format!("release NOT verified: {e}")))?;
            sidecars.push(name);
        }
    }
    Ok(Report::new(
        json!({"verified": true, "comment": v.comment, "files": v.files, "sidecars_checked": sidecars}),
        format!(
            "release verified: {} files, {} sidecar(s) match\nsigned: {}",
            v.files.len(),
            sidecars.len(),
            v.comment
        ),
    ))
}

/// `status --remote`: the daemon's own account of itself, and its tokens.
fn remote_status(ctx: &Context<'_>) -> Result<Report, Failure> {
    let remote = ctx.remote()?;
    let st = remote.status()?;
    let tokens: Vec<Value> = remote
        .slot_ids()?
        .into_iter()
        .map(|s| token_json(&remote, s))
        .collect::<Result<_, _>>()?;
    let mut text = format!(
        "daemon      craton-hsm-daemon {}\nself-test   {}\nuptime      {} s\nsessions    {}\nyou         {}\n",
        st.version, st.post, st.uptime_seconds, st.sessions, st.client_fingerprint
    );
    for t in &tokens {
        text += &format!(
            "slot {:<6} {:<32} {}\n",
            t["slot"],
            t["label"].as_str().unwrap_or(""),
            state_word(t)
        );
    }
    Ok(Report::new(
        json!({
            "daemon": {"version": st.version, "post": st.post, "uptime_seconds": st.uptime_seconds,
                       "sessions": st.sessions, "client_fingerprint": st.client_fingerprint},
            "tokens": tokens,
        }),
        text,
    ))
}
