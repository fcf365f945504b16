//! Secret key bytes: on pages of their own, locked in memory where the process may, excluded
//! from core dumps, wiped when dropped, and never printed.
//!
//! What lives here: AES, HMAC and generic secrets, and the seeds of Ed25519, X25519, ML-KEM,
//! ML-DSA and SLH-DSA keys, as key material; and the secret parts of every object's
//! attributes (`AttrValue::Secret`: `CKA_VALUE` of secret and private keys, the RSA private
//! components), which the engine moves here when it makes an object. What does not: the expanded key structures AWS-LC builds inside
//! its own `EVP_PKEY`/`RSA`/`EC_KEY` objects (RSA and EC private keys, expanded ML-KEM/ML-DSA
//! keys) sit on AWS-LC's heap, which AWS-LC wipes when it frees them but which this crate
//! cannot lock or exclude from dumps page by page. Processes that hold such keys protect them
//! as a whole: the daemon disables core dumps and ptrace for itself, and the deployment runs it
//! with `LimitCORE=0` and `CAP_IPC_LOCK`.

use crate::ffi::memory::LockedPages;
use std::fmt;
use zeroize::Zeroizing;

/// Long-lived secret key material (AES, HMAC, generic secrets, seeds).
///
/// `Debug` shows only the length. Equality is deliberately not implemented: comparing secrets
/// belongs in constant-time code at the call site.
pub struct SecretBytes {
    storage: Storage,
}

enum Storage {
    Paged(LockedPages),
    /// Used only if mapping fresh pages fails (address-space exhaustion); still wiped on drop.
    Heap(Zeroizing<Vec<u8>>),
}

impl SecretBytes {
    /// Copies `bytes` into fresh locked pages. The caller should wipe its own copy.
    pub fn new(bytes: &[u8]) -> Self {
        let storage = match LockedPages::new(bytes.len()) {
            Some(mut pages) => {
                pages.as_mut_slice().copy_from_slice(bytes);
                Storage::Paged(pages)
            }
            None => Storage::Heap(Zeroizing::new(bytes.to_vec())),
        };
        SecretBytes { storage }
    }

    /// Allocates `len` zero bytes and lets `fill` write them in place, so the secret never
    /// exists outside the locked pages.
    pub fn generate<E>(
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Self, E> {
        let mut storage = match LockedPages::new(len) {
            Some(pages) => Storage::Paged(pages),
            None => Storage::Heap(Zeroizing::new(vec![0u8; len])),
        };
        let buf = match &mut storage {
            Storage::Paged(p) => p.as_mut_slice(),
            Storage::Heap(v) => &mut v[..],
        };
        fill(buf)?;
        Ok(SecretBytes { storage })
    }

    /// The secret. Keep the borrow short.
    pub fn expose(&self) -> &[u8] {
        match &self.storage {
            Storage::Paged(p) => p.as_slice(),
            Storage::Heap(v) => v,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the pages are locked in RAM. `false` means the process lacks CAP_IPC_LOCK or hit
    /// RLIMIT_MEMLOCK; the stateful layers warn about it once.
    pub fn is_locked(&self) -> bool {
        matches!(&self.storage, Storage::Paged(p) if p.is_locked())
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        SecretBytes::new(self.expose())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let s = SecretBytes::new(&[0xAB; 16]);
        let shown = format!("{s:?}");
        assert_eq!(shown, "SecretBytes([REDACTED; 16])");
        assert!(!shown.to_lowercase().contains("ab,"));
    }

    #[test]
    fn round_trips_and_clones() {
        let s = SecretBytes::new(b"0123456789abcdef");
        assert_eq!(s.expose(), b"0123456789abcdef");
        let c = s.clone();
        drop(s);
        assert_eq!(c.expose(), b"0123456789abcdef");
        let g = SecretBytes::generate(5, |b| {
            b.copy_from_slice(b"hello");
            Ok::<_, ()>(())
        })
        .expect("fill succeeds");
        assert_eq!(g.expose(), b"hello");
        assert_eq!(SecretBytes::new(&[]).len(), 0);
    }
}
