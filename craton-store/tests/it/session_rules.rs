//! Session and login states as PKCS#11 v3.0 defines them.

use crate::*;
use craton_core::attribute::ObjectClass;
use craton_store::{HsmError, SessionState};

#[test]
fn an_uninitialised_token_has_no_sessions() {
    let dir = Scratch::new("uninit");
    let hsm = Hsm::open(config(dir.path())).unwrap();
    assert!(!hsm.token_info(0).unwrap().initialized);
    assert!(matches!(
        hsm.open_session(0, true),
        Err(HsmError::TokenNotInitialized)
    ));
    assert!(matches!(
        hsm.open_session(9, true),
        Err(HsmError::SlotIdInvalid)
    ));
}

#[test]
fn login_is_per_token_across_sessions_and_ends_with_the_last_session() {
    let dir = Scratch::new("login-states");
    let hsm = ready(dir.path());
    let a = hsm.open_session(0, true).unwrap();
    let b = hsm.open_session(0, false).unwrap();
    assert_eq!(hsm.session_info(b).unwrap().state, SessionState::RoPublic);
    hsm.login(a, UserType::User, USER_PIN).unwrap();
    assert_eq!(hsm.session_info(a).unwrap().state, SessionState::RwUser);
    assert_eq!(hsm.session_info(b).unwrap().state, SessionState::RoUser);
    assert!(matches!(
        hsm.login(b, UserType::User, USER_PIN),
        Err(HsmError::UserAlreadyLoggedIn)
    ));
    assert!(matches!(
        hsm.login(b, UserType::So, SO_PIN),
        Err(HsmError::UserAnotherAlreadyLoggedIn)
    ));
    hsm.close_session(a).unwrap();
    assert_eq!(hsm.session_info(b).unwrap().state, SessionState::RoUser);
    hsm.close_session(b).unwrap();
    let c = hsm.open_session(0, true).unwrap();
    assert_eq!(hsm.session_info(c).unwrap().state, SessionState::RwPublic);
    assert!(matches!(
        hsm.session_info(a),
        Err(HsmError::SessionHandleInvalid)
    ));
}

#[test]
fn the_so_cannot_log_in_beside_read_only_sessions() {
    let dir = Scratch::new("so-ro");
    let hsm = ready(dir.path());
    let rw = hsm.open_session(0, true).unwrap();
    let ro = hsm.open_session(0, false).unwrap();
    assert!(matches!(
        hsm.login(rw, UserType::So, SO_PIN),
        Err(HsmError::SessionReadOnlyExists)
    ));
    hsm.close_session(ro).unwrap();
    hsm.login(rw, UserType::So, SO_PIN).unwrap();
    assert_eq!(hsm.session_info(rw).unwrap().state, SessionState::RwSo);
    assert!(matches!(
        hsm.open_session(0, false),
        Err(HsmError::SessionReadWriteSoExists)
    ));
    // The SO does not see or create private objects.
    assert!(matches!(
        hsm.create_object(
            rw,
            &[
                (A::CLASS, AttrValue::Ulong(ObjectClass::DATA.0)),
                (A::PRIVATE, b(true)),
            ]
        ),
        Err(HsmError::UserNotLoggedIn)
    ));
}

#[test]
fn read_only_sessions_cannot_write_token_objects_and_init_token_needs_no_sessions() {
    let dir = Scratch::new("ro-write");
    let hsm = ready(dir.path());
    let ro = hsm.open_session(0, false).unwrap();
    hsm.login(ro, UserType::User, USER_PIN).unwrap();
    let data = |token| {
        [
            (A::CLASS, AttrValue::Ulong(ObjectClass::DATA.0)),
            (A::TOKEN, b(token)),
            (A::PRIVATE, b(false)),
        ]
    };
    assert!(matches!(
        hsm.create_object(ro, &data(true)),
        Err(HsmError::SessionReadOnly)
    ));
    // Session objects are fine in a read-only session.
    hsm.create_object(ro, &data(false)).unwrap();
    assert!(matches!(
        hsm.init_token(0, SO_PIN, "busy"),
        Err(HsmError::SessionExists)
    ));
    hsm.logout(ro).unwrap();
    assert!(matches!(hsm.logout(ro), Err(HsmError::UserNotLoggedIn)));
}

#[test]
fn context_specific_login_guards_always_authenticate_keys() {
    let dir = Scratch::new("ctx-login");
    let hsm = ready(dir.path());
    let s = user_session(&hsm);
    let (_, private) = hsm
        .generate_key_pair(
            s,
            &craton_core::ops::Mechanism::Generate(
                craton_core::MechanismType::EC_EDWARDS_KEY_PAIR_GEN,
            ),
            &[(A::VERIFY, b(true))],
            &[(A::SIGN, b(true)), (A::ALWAYS_AUTHENTICATE, b(true))],
        )
        .unwrap();
    let mech = craton_core::ops::Mechanism::EdDsa;
    hsm.sign_init(s, &mech, private).unwrap();
    assert!(matches!(hsm.sign(s, b"m"), Err(HsmError::UserNotLoggedIn)));
    assert!(matches!(
        hsm.login(s, UserType::ContextSpecific, b"wrong-pin-x"),
        Err(HsmError::PinIncorrect)
    ));
    hsm.login(s, UserType::ContextSpecific, USER_PIN).unwrap();
    assert_eq!(hsm.sign(s, b"m").unwrap().len(), 64);
    // The next operation needs its own context login again.
    hsm.sign_init(s, &mech, private).unwrap();
    assert!(matches!(hsm.sign(s, b"m"), Err(HsmError::UserNotLoggedIn)));
}

#[test]
fn a_token_never_initialised_has_a_blank_label() {
    let dir = Scratch::new("blank-label");
    let hsm = ready(dir.path());
    // Slot 1 was never initialised: PKCS#11 labels are blank padded, never NUL bytes.
    let info = hsm.token_info(1).unwrap();
    assert!(!info.initialized);
    assert_eq!(info.label, [b' '; 32]);
}

#[test]
fn login_belongs_to_the_application_not_the_whole_token() {
    use craton_core::mechanism::MechanismType as M;
    use craton_core::ops::Mechanism;
    use craton_store::Application;
    let dir = Scratch::new("per-app-login");
    let hsm = ready(dir.path());
    let alice = Application(0x8000_0000_0000_0001);
    let bob = Application(0x8000_0000_0000_0002);
    let a = hsm.open_session_for(0, true, alice).unwrap();
    let b_session = hsm.open_session_for(0, true, bob).unwrap();
    hsm.login(a, UserType::User, USER_PIN).unwrap();
    let key = hsm
        .generate_key(
            a,
            &Mechanism::Generate(M::AES_KEY_GEN),
            &[
                (A::VALUE_LEN, AttrValue::Ulong(32)),
                (A::TOKEN, b(true)),
                (A::PRIVATE, b(true)),
                (A::ENCRYPT, b(true)),
            ],
        )
        .unwrap();
    // Bob is not logged in because Alice is: he sees a public session and no private key.
    assert_eq!(
        hsm.session_info(b_session).unwrap().state,
        SessionState::RwPublic
    );
    assert!(matches!(
        hsm.attribute_values(b_session, key, &[A::CLASS]),
        Err(HsmError::ObjectHandleInvalid)
    ));
    hsm.find_objects_init(b_session, &[]).unwrap();
    assert!(!hsm.find_objects(b_session, 100).unwrap().contains(&key));
    hsm.find_objects_final(b_session).unwrap();
    assert!(matches!(
        hsm.logout(b_session),
        Err(HsmError::UserNotLoggedIn)
    ));
    // Bob logs in with his own PIN entry, independent of Alice.
    hsm.login(b_session, UserType::User, USER_PIN).unwrap();
    assert!(hsm.attribute_values(b_session, key, &[A::CLASS]).is_ok());
    // Alice logging out leaves Bob's login and view alone, and hides the key from her.
    hsm.logout(a).unwrap();
    assert!(hsm.attribute_values(b_session, key, &[A::CLASS]).is_ok());
    assert!(matches!(
        hsm.attribute_values(a, key, &[A::CLASS]),
        Err(HsmError::ObjectHandleInvalid)
    ));
    // Closing Bob's last session logs Bob out; Alice logs in again and sees the key.
    hsm.close_session(b_session).unwrap();
    hsm.login(a, UserType::User, USER_PIN).unwrap();
    assert!(hsm.attribute_values(a, key, &[A::CLASS]).is_ok());
    let b2 = hsm.open_session_for(0, true, bob).unwrap();
    assert_eq!(hsm.session_info(b2).unwrap().state, SessionState::RwPublic);
}
