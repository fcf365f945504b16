//! Structured logs to stderr, one line per event: text for people
//! (`2026-11-27T05:00:00.000Z WARN tls handshake refused peer=10.0.0.9:51234 reason="…"`) or
//! JSON for collectors (`{"ts":…,"level":"warn","msg":…,"peer":…}`). Values are never key
//! material or PINs: callers pass addresses, paths, fingerprints and reasons.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Chooses the format for the rest of the process.
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something an operator should look at.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Formats one line.
pub fn format(level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) -> String {
    let ts = craton_store::clock::rfc3339_now();
    if JSON.load(Ordering::Relaxed) {
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), ts.into());
        obj.insert("level".into(), level.name().into());
        obj.insert("msg".into(), msg.into());
        for (k, v) in fields {
            obj.insert((*k).into(), v.to_string().into());
        }
        serde_json::Value::Object(obj).to_string()
    } else {
        let mut line = format!("{ts} {} {msg}", level.name().to_uppercase());
        for (k, v) in fields {
            let v = v.to_string();
            if v.is_empty() || v.contains([' ', '"', '=']) {
                line.push_str(&format!(" {k}={v:?}"));
            } else {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        line
    }
}

/// Writes one line to stderr.
pub fn log(level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    let line = format(level, msg, fields);
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `log(Level::Info, …)`.
pub fn info(msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    log(Level::Info, msg, fields);
}

/// `log(Level::Warn, …)`.
pub fn warn(msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    log(Level::Warn, msg, fields);
}

/// `log(Level::Error, …)`.
pub fn error(msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    log(Level::Error, msg, fields);
}
