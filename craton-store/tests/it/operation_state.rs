//! `C_GetOperationState` / `C_SetOperationState`: a half-done digest or signature continues
//! in another session and gives the same result.

use crate::*;
use craton_core::MechanismType as M;
use craton_core::digest::HashAlg;
use craton_core::ops::Mechanism;
use craton_store::HsmError;

#[test]
fn a_saved_digest_and_signature_continue_in_another_session() {
    let dir = Scratch::new("opstate");
    let hsm = ready(dir.path());
    let a = user_session(&hsm);
    let other = hsm.open_session(0, false).unwrap();
    let (public, private) = hsm
        .generate_key_pair(
            a,
            &Mechanism::Generate(M::RSA_PKCS_KEY_PAIR_GEN),
            &[
                (A::MODULUS_BITS, AttrValue::Ulong(2048)),
                (A::VERIFY, b(true)),
            ],
            &[(A::SIGN, b(true))],
        )
        .unwrap();
    let _ = public;
    // Digest half of the message in A, save, finish in B.
    hsm.digest_init(a, &Mechanism::Digest(HashAlg::Sha3_256))
        .unwrap();
    hsm.digest_update(a, b"first half, ").unwrap();
    // A deterministic signature (PKCS#1 v1.5) so both paths can be compared.
    let mech = Mechanism::RsaPkcsWith(HashAlg::Sha256);
    hsm.sign_init(a, &mech, private).unwrap();
    hsm.sign_update(a, b"first half, ").unwrap();
    let state = hsm.operation_state(a).unwrap();
    assert_eq!(state.len(), Hsm::OPERATION_STATE_LEN);
    hsm.set_operation_state(other, &state).unwrap();
    hsm.digest_update(other, b"second half").unwrap();
    let continued = hsm.digest_final(other).unwrap();
    hsm.digest_init(other, &Mechanism::Digest(HashAlg::Sha3_256))
        .unwrap();
    let whole = hsm.digest(other, b"first half, second half").unwrap();
    assert_eq!(continued, whole);
    hsm.sign_update(other, b"second half").unwrap();
    let sig_b = hsm.sign_final(other).unwrap();
    // The original session still has its own copy and gets the same signature.
    hsm.sign_update(a, b"second half").unwrap();
    let sig_a = hsm.sign_final(a).unwrap();
    assert_eq!(sig_a, sig_b);
    // A saved state is refused by another token, after logout, and when forged.
    hsm.logout(a).unwrap();
    assert!(matches!(
        hsm.set_operation_state(other, &state),
        Err(HsmError::UserNotLoggedIn)
    ));
    let mut forged = state.clone();
    forged[20] ^= 1;
    assert!(matches!(
        hsm.set_operation_state(other, &forged),
        Err(HsmError::SavedStateInvalid)
    ));
    assert!(matches!(
        hsm.set_operation_state(other, b"short"),
        Err(HsmError::SavedStateInvalid)
    ));
    let idle = hsm.open_session(0, true).unwrap();
    assert!(matches!(
        hsm.operation_state(idle),
        Err(HsmError::OperationNotInitialized)
    ));
}
