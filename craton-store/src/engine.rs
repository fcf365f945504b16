//! [`Engine`]: the token operations a frontend needs, whether the token is in this process
//! ([`Hsm`]) or behind `craton-hsm-daemon` (`craton_daemon::client::RemoteHsm`). The CLI's
//! `--remote` drives the same code through either.
//!
//! A remote failure arrives as the daemon's `CK_RV`; [`crate::ck::to_hsm`] turns it back into
//! the engine's error where one matches, so callers treat both alike.

use crate::UserType;
use crate::error::Result;
use crate::hsm::{Hsm, ObjectHandle, SessionHandle, TokenInfo};
use crate::objects::Template;
use craton_core::attribute::{AttrValue, AttributeError, AttributeType as A};
use craton_core::ops::Mechanism;

/// Values, or why each is withheld, as `C_GetAttributeValue` reports them.
pub type AttributeResults = Vec<std::result::Result<AttrValue, AttributeError>>;

/// Token operations common to a local engine and a remote one.
pub trait Engine {
    /// Slot ids.
    fn slot_ids(&self) -> Result<Vec<u64>>;
    /// `C_GetTokenInfo`.
    fn token_info(&self, slot: u64) -> Result<TokenInfo>;
    /// Failed logins before a PIN locks.
    fn max_failed_logins(&self) -> Result<u32>;
    /// `C_InitToken`.
    fn init_token(&self, slot: u64, so_pin: &[u8], label: &str) -> Result<()>;
    /// `C_OpenSession`.
    fn open_session(&self, slot: u64, read_write: bool) -> Result<SessionHandle>;
    /// `C_CloseSession`.
    fn close_session(&self, h: SessionHandle) -> Result<()>;
    /// `C_Login`.
    fn login(&self, h: SessionHandle, user: UserType, pin: &[u8]) -> Result<()>;
    /// `C_InitPIN`.
    fn init_pin(&self, h: SessionHandle, pin: &[u8]) -> Result<()>;
    /// `C_SetPIN`.
    fn set_pin(&self, h: SessionHandle, old: &[u8], new: &[u8]) -> Result<()>;
    /// `C_CreateObject`.
    fn create_object(&self, h: SessionHandle, template: &Template) -> Result<ObjectHandle>;
    /// `C_GenerateKey`.
    fn generate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        template: &Template,
    ) -> Result<ObjectHandle>;
    /// `C_GenerateKeyPair`.
    fn generate_key_pair(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(ObjectHandle, ObjectHandle)>;
    /// `C_DestroyObject`.
    fn destroy_object(&self, h: SessionHandle, object: ObjectHandle) -> Result<()>;
    /// `C_GetAttributeValue`.
    fn attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        wanted: &[A],
    ) -> Result<AttributeResults>;
    /// `C_FindObjectsInit`, `C_FindObjects` until done, `C_FindObjectsFinal`.
    fn find_all(&self, h: SessionHandle, template: &Template) -> Result<Vec<ObjectHandle>>;
    /// The DER SubjectPublicKeyInfo of a key's public half.
    fn public_key_info(&self, h: SessionHandle, object: ObjectHandle) -> Result<Vec<u8>>;
}

impl Engine for Hsm {
    fn slot_ids(&self) -> Result<Vec<u64>> {
        Ok(self.slots().collect())
    }

    fn token_info(&self, slot: u64) -> Result<TokenInfo> {
        Hsm::token_info(self, slot)
    }

    fn max_failed_logins(&self) -> Result<u32> {
        Ok(self.config().security.max_failed_logins)
    }

    fn init_token(&self, slot: u64, so_pin: &[u8], label: &str) -> Result<()> {
        Hsm::init_token(self, slot, so_pin, label)
    }

    fn open_session(&self, slot: u64, read_write: bool) -> Result<SessionHandle> {
        Hsm::open_session(self, slot, read_write)
    }

    fn close_session(&self, h: SessionHandle) -> Result<()> {
        Hsm::close_session(self, h)
    }

    fn login(&self, h: SessionHandle, user: UserType, pin: &[u8]) -> Result<()> {
        Hsm::login(self, h, user, pin)
    }

    fn init_pin(&self, h: SessionHandle, pin: &[u8]) -> Result<()> {
        Hsm::init_pin(self, h, pin)
    }

    fn set_pin(&self, h: SessionHandle, old: &[u8], new: &[u8]) -> Result<()> {
        Hsm::set_pin(self, h, old, new)
    }

    fn create_object(&self, h: SessionHandle, template: &Template) -> Result<ObjectHandle> {
        Hsm::create_object(self, h, template)
    }

    fn generate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        template: &Template,
    ) -> Result<ObjectHandle> {
        Hsm::generate_key(self, h, mechanism, template)
    }

    fn generate_key_pair(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        Hsm::generate_key_pair(self, h, mechanism, public_template, private_template)
    }

    fn destroy_object(&self, h: SessionHandle, object: ObjectHandle) -> Result<()> {
        Hsm::destroy_object(self, h, object)
    }

    fn attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        wanted: &[A],
    ) -> Result<AttributeResults> {
        Hsm::attribute_values(self, h, object, wanted)
    }

    fn find_all(&self, h: SessionHandle, template: &Template) -> Result<Vec<ObjectHandle>> {
        self.find_objects_init(h, template)?;
        let found = self.find_objects(h, usize::MAX);
        self.find_objects_final(h)?;
        found
    }

    fn public_key_info(&self, h: SessionHandle, object: ObjectHandle) -> Result<Vec<u8>> {
        Hsm::public_key_info(self, h, object)
    }
}
