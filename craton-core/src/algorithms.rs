//! The list of algorithm modules whose rows make up the registry. Adding a module means adding
//! its `rows()` here, and a known-answer test in POST or a vector file (a test checks that).

use crate::mechanism::MechanismInfo;

/// Every row every module declares, before policy filtering.
pub(crate) fn all_rows() -> Vec<MechanismInfo> {
    let mut rows = Vec::new();
    rows.extend(crate::digest::rows());
    rows.extend(crate::mac::rows());
    rows.extend(crate::aes::rows());
    rows.extend(crate::kdf::rows());
    rows.extend(crate::rsa::rows());
    rows.extend(crate::ec::rows());
    rows.extend(crate::edwards::rows());
    rows.extend(crate::pq::rows());
    rows
}
