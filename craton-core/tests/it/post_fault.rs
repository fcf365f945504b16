//! A forced KAT failure must put the module in the error state, with the KAT named, and every
//! later check must refuse. Needs the test-only `fault-injection` feature (`cargo xtask ci`
//! runs it); without the feature only the healthy path is checked.

use craton_core::post::{self, ModuleState, PostFailure};

#[test]
fn healthy_post_reports_every_kat_and_is_fast_enough_to_measure() {
    let report = post::run_post().expect("POST passes");
    assert_eq!(report.kats.len(), post::kat_names().len());
    assert!(report.kats.iter().all(|k| !k.name.is_empty()));
    // Printed (visible with --nocapture) so the POST duration can be recorded; not asserted,
    // since timing belongs in benchmarks.
    eprintln!(
        "POST took {:?} for {} KATs: {:?}",
        report.total,
        report.kats.len(),
        report.kats
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn post_fault_puts_the_module_in_the_error_state() {
    for name in post::kat_names() {
        let state = ModuleState::new();
        let result = post::run_post_with_fault(name);
        assert_eq!(
            result.as_ref().err(),
            Some(&PostFailure::KnownAnswer(name)),
            "fault in {name}"
        );
        if let Err(f) = result {
            state.fail(f);
        }
        assert_eq!(
            state.check(),
            Err(craton_core::CryptoError::ErrorState(
                PostFailure::KnownAnswer(name)
            ))
        );
    }
}

#[test]
fn error_state_refuses_after_integrity_failure() {
    let state = ModuleState::new();
    let image = b"module image".to_vec();
    let tag = post::integrity_tag(&image).expect("tag");
    let mut tampered = image.clone();
    tampered[0] ^= 0x80;
    if let Err(f) = post::verify_integrity(&tampered, &tag) {
        state.fail(f);
    }
    assert_eq!(state.failure(), Some(PostFailure::Integrity));
    assert!(state.check().is_err());
}
