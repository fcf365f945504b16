//! `CK_RV` for engine results; the mapping itself is [`craton_store::ck`], shared with the
//! daemon.

pub(crate) use craton_store::ck::{from_attribute, from_crypto};

/// Maps an engine result.
pub(crate) fn check<T>(r: craton_store::Result<T>) -> Result<T, cryptoki_sys::CK_RV> {
    r.map_err(|e| craton_store::ck::from_hsm(&e))
}
