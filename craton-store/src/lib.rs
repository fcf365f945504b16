//! craton-store: the stateful HSM engine (slots, tokens, sessions, objects) and its encrypted,
//! crash-safe persistence.
//!
//! Not built yet: this crate is a placeholder in the workspace so that the dependency
//! direction (core ← store ← frontends) is fixed from the start. It exports nothing, so
//! nothing can mistake it for a working engine. The engine arrives with the craton-store issue.
