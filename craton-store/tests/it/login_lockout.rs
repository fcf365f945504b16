//! Failed logins are counted, persisted, and lock the PIN; an event warns two failures early.

use crate::*;
use craton_store::{HsmError, event::Event};

#[test]
fn wrong_pins_lock_the_user_pin_and_the_count_survives_a_restart() {
    let dir = Scratch::new("lockout");
    {
        let hsm = ready(dir.path());
        let s = hsm.open_session(0, true).unwrap();
        assert!(matches!(
            hsm.login(s, UserType::User, b"wrong-pin-1"),
            Err(HsmError::PinIncorrect)
        ));
        let info = hsm.token_info(0).unwrap();
        assert_eq!(info.user_pin.failures, 1);
        assert!(info.user_pin.count_low);
        assert!(!info.user_pin.final_try);
    }
    // Reopen: the failure count was persisted.
    let rec = recorder();
    let hsm = Hsm::open_with_events(config(dir.path()), rec.clone()).unwrap();
    assert_eq!(hsm.token_info(0).unwrap().user_pin.failures, 1);
    let s = hsm.open_session(0, true).unwrap();
    assert!(matches!(
        hsm.login(s, UserType::User, b"wrong-pin-2"),
        Err(HsmError::PinIncorrect)
    ));
    assert!(hsm.token_info(0).unwrap().user_pin.final_try);
    assert!(matches!(
        hsm.login(s, UserType::User, b"wrong-pin-3"),
        Err(HsmError::PinIncorrect)
    ));
    assert!(hsm.token_info(0).unwrap().user_pin.locked);
    // Even the right PIN is refused now, without being tried.
    assert!(matches!(
        hsm.login(s, UserType::User, USER_PIN),
        Err(HsmError::PinLocked)
    ));
    let events = rec.0.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::PinNearLockout {
            user: UserType::User,
            remaining: 1,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::PinLocked {
            user: UserType::User,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Login {
            success: false,
            failures: 3,
            threshold: 3,
            ..
        }
    )));
}

#[test]
fn a_success_resets_the_count_and_the_so_can_unlock_by_setting_a_new_pin() {
    let dir = Scratch::new("unlock");
    let hsm = ready(dir.path());
    let s = hsm.open_session(0, true).unwrap();
    let _ = hsm.login(s, UserType::User, b"wrong-pin-1");
    hsm.login(s, UserType::User, USER_PIN).unwrap();
    assert_eq!(hsm.token_info(0).unwrap().user_pin.failures, 0);
    hsm.logout(s).unwrap();
    for _ in 0..3 {
        let _ = hsm.login(s, UserType::User, b"wrong-pin-1");
    }
    assert!(hsm.token_info(0).unwrap().user_pin.locked);
    hsm.close_session(s).unwrap();
    let so = hsm.open_session(0, true).unwrap();
    hsm.login(so, UserType::So, SO_PIN).unwrap();
    hsm.init_pin(so, b"new-user-pin").unwrap();
    hsm.close_session(so).unwrap();
    let s = hsm.open_session(0, true).unwrap();
    hsm.login(s, UserType::User, b"new-user-pin").unwrap();
}

#[test]
fn the_so_pin_locks_too_and_pin_lengths_are_checked() {
    let dir = Scratch::new("so-lock");
    let hsm = ready(dir.path());
    let s = hsm.open_session(0, true).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            hsm.login(s, UserType::So, b"bad-so-pin"),
            Err(HsmError::PinIncorrect)
        ));
    }
    assert!(hsm.token_info(0).unwrap().so_pin.locked);
    assert!(matches!(
        hsm.login(s, UserType::So, SO_PIN),
        Err(HsmError::PinLocked)
    ));
    // A locked SO PIN also blocks re-initialising the token.
    hsm.close_session(s).unwrap();
    assert!(matches!(
        hsm.init_token(0, SO_PIN, "again"),
        Err(HsmError::PinLocked)
    ));
    assert!(matches!(
        hsm.init_token(1, b"abc", "short"),
        Err(HsmError::PinLenRange)
    ));
}

#[test]
fn set_pin_changes_the_user_pin_and_needs_the_old_one() {
    let dir = Scratch::new("setpin");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    assert!(matches!(
        hsm.set_pin(s, b"not-the-pin", b"next-pin-1"),
        Err(HsmError::PinIncorrect)
    ));
    hsm.set_pin(s, USER_PIN, b"next-pin-1").unwrap();
    hsm.logout(s).unwrap();
    assert!(matches!(
        hsm.login(s, UserType::User, USER_PIN),
        Err(HsmError::PinIncorrect)
    ));
    hsm.login(s, UserType::User, b"next-pin-1").unwrap();
    let ro = hsm.open_session(0, false).unwrap();
    assert!(matches!(
        hsm.set_pin(ro, b"next-pin-1", b"next-pin-2"),
        Err(HsmError::SessionReadOnly)
    ));
}
