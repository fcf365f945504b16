//! Signed releases: `SHA256SUMS` over the release files and a detached Ed25519 signature over
//! it in minisign's format, so `minisign -V` verifies it as well as `craton-hsm
//! verify-release` and `cargo xtask verify-release` do.
//!
//! The signature is minisign's "Ed" form (Ed25519 over the file itself, which is small), and
//! a global signature binds the trusted comment (release name and date) to it. The public key
//! file is minisign's; the secret key file is ours: a line `craton-release-key v1 <key id>`
//! and a line with the Ed25519 seed in base64, mode 0600. The cryptography is craton-core's.

use craton_core::edwards::Ed25519Key;
use std::path::Path;
use zeroize::Zeroizing;

/// The checksum list's name.
pub const SUMS: &str = "SHA256SUMS";
/// The signature's name.
pub const SIGNATURE: &str = "SHA256SUMS.minisig";

const ALG_LEGACY: [u8; 2] = *b"Ed";
const KEY_HEADER: &str = "craton-release-key v1";

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => B64.iter().position(|&x| x == c)? as u32,
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// A release signing key.
#[derive(Debug)]
pub struct SigningKey {
    id: [u8; 8],
    key: Ed25519Key,
}

impl SigningKey {
    /// A new key with a random id; returns it and its secret key file's text.
    pub fn generate() -> Result<(SigningKey, Zeroizing<String>), String> {
        let rng = craton_core::rng::Rng::from_os().map_err(|e| e.to_string())?;
        let key = Ed25519Key::generate(&rng).map_err(|e| e.to_string())?;
        let mut id = [0u8; 8];
        rng.fill(&mut id).map_err(|e| e.to_string())?;
        let seed = key.seed().ok_or("a generated key has its seed")?;
        let text = Zeroizing::new(format!(
            "{KEY_HEADER} {}\n{}\n",
            hex::encode(id),
            Zeroizing::new(b64_encode(seed.expose())).as_str()
        ));
        Ok((SigningKey { id, key }, text))
    }

    /// Reads a secret key file.
    pub fn from_file_text(text: &str) -> Result<SigningKey, String> {
        let mut lines = text.lines();
        let id = lines
            .next()
            .and_then(|l| l.strip_prefix(KEY_HEADER))
            .and_then(|h| hex::decode(h.trim()).ok())
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .ok_or("not a craton release key (first line must be `craton-release-key v1 <id>`)")?;
        let seed = Zeroizing::new(
            lines
                .next()
                .and_then(b64_decode)
                .ok_or("the key's second line is not base64")?,
        );
        let key = Ed25519Key::from_seed(&seed).map_err(|e| e.to_string())?;
        Ok(SigningKey { id, key })
    }

    /// The public key file, minisign's format.
    pub fn public_key_file(&self) -> String {
        let mut raw = ALG_LEGACY.to_vec();
        raw.extend_from_slice(&self.id);
        raw.extend_from_slice(&self.key.public_bytes());
        format!(
            "untrusted comment: craton-hsm release key {}\n{}\n",
            hex::encode_upper(self.id),
            b64_encode(&raw)
        )
    }

    /// A detached signature of `message` with `trusted_comment` (one line).
    pub fn sign(&self, message: &[u8], trusted_comment: &str) -> Result<String, String> {
        let sig = self.key.sign(message).map_err(|e| e.to_string())?;
        let mut raw = ALG_LEGACY.to_vec();
        raw.extend_from_slice(&self.id);
        raw.extend_from_slice(&sig);
        let mut global = sig.clone();
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_sig = self.key.sign(&global).map_err(|e| e.to_string())?;
        Ok(format!(
            "untrusted comment: signature from craton-hsm release key {}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            hex::encode_upper(self.id),
            b64_encode(&raw),
            b64_encode(&global_sig)
        ))
    }
}

/// A minisign public key: (key id, Ed25519 key).
pub fn parse_public_key(text: &str) -> Result<([u8; 8], [u8; 32]), String> {
    let line = text
        .lines()
        .find(|l| !l.starts_with("untrusted comment:") && !l.trim().is_empty())
        .ok_or("the public key file is empty")?;
    let raw = b64_decode(line).ok_or("the public key is not base64")?;
    if raw.len() != 42 || raw[..2] != ALG_LEGACY {
        return Err("not a minisign Ed25519 public key".into());
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[2..10]);
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[10..]);
    Ok((id, key))
}

/// Checks a minisign signature of `message`; returns the trusted comment.
pub fn verify(public_key: &str, signature: &str, message: &[u8]) -> Result<String, String> {
    let (id, key) = parse_public_key(public_key)?;
    let mut lines = signature.lines();
    let _untrusted = lines.next().ok_or("the signature file is empty")?;
    let raw = lines
        .next()
        .and_then(b64_decode)
        .ok_or("the signature line is not base64")?;
    let trusted = lines
        .next()
        .and_then(|l| l.strip_prefix("trusted comment: "))
        .ok_or("the signature file has no trusted comment")?;
    let global = lines
        .next()
        .and_then(b64_decode)
        .ok_or("the global signature is not base64")?;
    if raw.len() != 74 {
        return Err("the signature has the wrong length".into());
    }
    if raw[..2] != ALG_LEGACY {
        return Err("only minisign's Ed (non-prehashed) signatures are used for releases".into());
    }
    if raw[2..10] != id {
        return Err(format!(
            "signed by key {}, not by {}",
            hex::encode_upper(&raw[2..10]),
            hex::encode_upper(id)
        ));
    }
    let pk = Ed25519Key::from_public(&key).map_err(|e| e.to_string())?;
    pk.verify(message, &raw[10..])
        .map_err(|_| "the signature does not match the file".to_owned())?;
    let mut bound = raw[10..].to_vec();
    bound.extend_from_slice(trusted.as_bytes());
    pk.verify(&bound, &global)
        .map_err(|_| "the trusted comment was altered".to_owned())?;
    Ok(trusted.to_owned())
}

/// The `SHA256SUMS` text for `files` (names relative to `dir`).
pub fn sums(dir: &Path, files: &[&str]) -> Result<String, String> {
    let mut out = String::new();
    for f in files {
        let bytes = std::fs::read(dir.join(f)).map_err(|e| format!("{f}: {e}"))?;
        let digest = craton_core::digest::sha256(&bytes);
        out.push_str(&format!("{}  {f}\n", hex::encode(digest)));
    }
    Ok(out)
}

/// What [`verify_dist`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The trusted comment (release name and date).
    pub comment: String,
    /// The files whose checksums matched.
    pub files: Vec<String>,
}

/// Verifies a release directory: the signature over `SHA256SUMS`, then every listed file,
/// and that nothing else but the signature and public key sits beside them.
pub fn verify_dist(dir: &Path, public_key: &str) -> Result<Verified, String> {
    let read = |name: &str| -> Result<Vec<u8>, String> {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let sums_bytes = read(SUMS)?;
    let sig = String::from_utf8(read(SIGNATURE)?).map_err(|_| "the signature is not text")?;
    let comment = verify(public_key, &sig, &sums_bytes).map_err(|e| format!("{SUMS}: {e}"))?;
    let text = String::from_utf8(sums_bytes).map_err(|_| format!("{SUMS} is not text"))?;
    let mut files = Vec::new();
    for line in text.lines() {
        let (hash, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("{SUMS}: malformed line `{line}`"))?;
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("{SUMS} names a path outside the release: {name}"));
        }
        let bytes = read(name)?;
        let digest = hex::encode(craton_core::digest::sha256(&bytes));
        if digest != hash {
            return Err(format!("{name} does not match its checksum"));
        }
        files.push(name.to_owned());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let name = e.map_err(|e| e.to_string())?.file_name();
        let name = name.to_string_lossy();
        let known = name == SUMS || name == SIGNATURE || name.ends_with(".pub");
        if !known && !files.iter().any(|f| *f == name) {
            return Err(format!(
                "{name} is in the release directory but not in {SUMS}"
            ));
        }
    }
    Ok(Verified { comment, files })
}

/// Writes `text` to `path` readable by the owner only (for the secret key).
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..20 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64_decode(&b64_encode(&data)), Some(data));
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert_eq!(b64_decode("Zm8=x"), None);
        assert_eq!(b64_decode("Z=8="), None);
    }

    #[test]
    fn signatures_verify_and_every_alteration_is_caught() {
        let (key, secret) = SigningKey::generate().expect("key");
        let key2 = SigningKey::from_file_text(&secret).expect("reload");
        let public = key2.public_key_file();
        assert_eq!(public, key.public_key_file());
        let sig = key.sign(b"the sums", "craton-hsm 0.1.0").expect("sign");
        assert_eq!(
            verify(&public, &sig, b"the sums"),
            Ok("craton-hsm 0.1.0".to_owned())
        );
        assert!(verify(&public, &sig, b"the sumz").is_err());
        let forged = sig.replace("craton-hsm 0.1.0", "craton-hsm 9.9.9");
        assert_eq!(
            verify(&public, &forged, b"the sums"),
            Err("the trusted comment was altered".to_owned())
        );
        let (other, _) = SigningKey::generate().expect("key");
        assert!(
            verify(&other.public_key_file(), &sig, b"the sums")
                .expect_err("other key")
                .contains("not by")
        );
    }
}
