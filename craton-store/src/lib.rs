//! craton-store: the stateful HSM engine every frontend drives, and its encrypted,
//! crash-safe persistence.
//!
//! [`Hsm`] holds slots → tokens → sessions → objects with the login, session and object
//! rules of PKCS#11 v3.0; [`persist`] keeps tokens in one redb file whose records are sealed
//! with AES-256-GCM; [`config`] reads `craton_hsm.toml`. Cryptography comes from
//! `craton-core`; this crate adds state, never algorithms. It knows nothing of the C ABI:
//! `craton-pkcs11` maps [`HsmError`] to `CK_RV`.
//!
//! ```
//! use craton_store::{Config, Hsm, UserType};
//! use craton_core::attribute::{AttrValue, AttributeType as A};
//! use craton_core::ops::Mechanism;
//! use craton_core::MechanismType as M;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("craton-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let mut config = Config::default();
//! config.token.state_dir = Some(dir.clone());
//! config.security.pbkdf2_iterations = 10_000; // keep the example quick
//! let hsm = Hsm::open(config)?;
//!
//! hsm.init_token(0, b"so-pin-1234", "example")?;
//! let so = hsm.open_session(0, true)?;
//! hsm.login(so, UserType::So, b"so-pin-1234")?;
//! hsm.init_pin(so, b"user-pin-1234")?;
//! hsm.close_session(so)?;
//!
//! let s = hsm.open_session(0, true)?;
//! hsm.login(s, UserType::User, b"user-pin-1234")?;
//! let (public, private) = hsm.generate_key_pair(
//!     s,
//!     &Mechanism::Generate(M::EC_EDWARDS_KEY_PAIR_GEN),
//!     &[(A::VERIFY, AttrValue::Bool(true))],
//!     &[(A::SIGN, AttrValue::Bool(true)), (A::TOKEN, AttrValue::Bool(true))],
//! )?;
//! hsm.sign_init(s, &Mechanism::EdDsa, private)?;
//! let signature = hsm.sign(s, b"hello")?;
//! hsm.verify_init(s, &Mechanism::EdDsa, public)?;
//! hsm.verify(s, b"hello", &signature)?;
//! # drop(hsm);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod audit;
pub mod backup;
pub mod ck;
pub mod clock;
mod codec;
pub mod config;
pub mod engine;
pub mod error;
pub mod event;
mod hsm;
pub mod integrity;
mod journal;
mod objects;
mod operations;
pub mod persist;

pub use config::Config;
pub use engine::Engine;
pub use error::{HsmError, Result};
pub use event::{Event, EventSink, KeyOrigin, NoEvents, UserType};
pub use hsm::{
    Application, Hsm, ObjectHandle, PinStatus, SessionHandle, SessionInfo, SessionState, TokenInfo,
};
pub use objects::Template;
pub use operations::{MessageKind, MessageOutput, OperationKind};
