//! The self-test error state seen from outside: a healthy POST reports every KAT, and an
//! integrity failure leaves a sticky, typed error state. Forced KAT failures are tested in
//! `post.rs`'s unit tests, where the fault-injection hook is compiled for tests only.

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
