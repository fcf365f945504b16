//! [`Engine`]: every token operation a frontend drives, whether the token is in this process
//! ([`Hsm`]) or behind `craton-hsm-daemon` (`craton_daemon::client::RemoteHsm`). The PKCS#11
//! module's remote mode and the CLI's `--remote` run the same code through either.
//!
//! The trait's methods are [`Hsm`]'s own, with the same names, arguments and meaning; see
//! each method there for the rules it enforces. A remote failure arrives as the daemon's
//! `CK_RV`; [`crate::ck::to_hsm`] turns it back into the engine's error where one matches, so
//! callers treat both alike.

use crate::UserType;
use crate::error::Result;
use crate::hsm::{Hsm, ObjectHandle, SessionHandle, SessionInfo, TokenInfo};
use crate::objects::Template;
use crate::operations::{MessageKind, MessageOutput, OperationKind};
use craton_core::Direction;
use craton_core::attribute::{AttrValue, AttributeError, AttributeType as A};
use craton_core::mechanism::Registry;
use craton_core::ops::Mechanism;
use zeroize::Zeroizing;

/// Values, or why each is withheld, as `C_GetAttributeValue` reports them.
pub type AttributeResults = Vec<std::result::Result<AttrValue, AttributeError>>;

/// Declares [`Engine`] from one list of methods, and implements it for [`Hsm`] by calling
/// the inherent method of the same name, so the two cannot drift apart.
macro_rules! engine {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        /// Token operations common to a local engine and a remote one.
        pub trait Engine: Send + Sync + std::fmt::Debug {
            /// The mechanisms the token serves, under its policy.
            fn registry(&self) -> &Registry;
            /// Slot ids.
            fn slot_ids(&self) -> Result<Vec<u64>>;
            /// Failed logins before a PIN locks.
            fn max_failed_logins(&self) -> Result<u32>;
            /// `C_FindObjectsInit`, `C_FindObjects` until done, `C_FindObjectsFinal`.
            fn find_all(&self, h: SessionHandle, template: &Template) -> Result<Vec<ObjectHandle>> {
                self.find_objects_init(h, template)?;
                let found = self.find_objects(h, usize::MAX);
                self.find_objects_final(h)?;
                found
            }
            /// `C_Encrypt` / `C_Decrypt` into `out` (see [`Hsm::cipher_into`]): a buffer
            /// shorter than the output's upper bound is refused with
            /// `CryptoError::BufferTooSmall` and the operation stays.
            fn cipher_into(
                &self,
                h: SessionHandle,
                direction: Direction,
                input: &[u8],
                out: &mut [u8],
            ) -> Result<usize> {
                crate::operations::fits(out, self.cipher_len(h, direction, input.len())?)?;
                let data = match direction {
                    Direction::Encrypt => Zeroizing::new(self.encrypt(h, input)?),
                    Direction::Decrypt => self.cipher(h, direction, input)?,
                };
                crate::operations::put(out, &data)
            }
            /// `C_Sign` into `out` (see [`Hsm::sign_into`]).
            fn sign_into(&self, h: SessionHandle, data: &[u8], out: &mut [u8]) -> Result<usize> {
                crate::operations::fits(out, self.signature_len(h)?)?;
                crate::operations::put(out, &self.sign(h, data)?)
            }
            /// `C_Digest` into `out` (see [`Hsm::digest_into`]).
            fn digest_into(&self, h: SessionHandle, data: &[u8], out: &mut [u8]) -> Result<usize> {
                crate::operations::fits(out, self.digest_len(h)?)?;
                crate::operations::put(out, &self.digest(h, data)?)
            }
            $( $(#[$doc])* fn $name(&self $(, $arg: $ty)*) -> $ret; )*
        }

        impl Engine for Hsm {
            fn registry(&self) -> &Registry {
                Hsm::registry(self)
            }
            fn slot_ids(&self) -> Result<Vec<u64>> {
                Ok(self.slots().collect())
            }
            fn max_failed_logins(&self) -> Result<u32> {
                Ok(self.config().security.max_failed_logins)
            }
            fn cipher_into(
                &self,
                h: SessionHandle,
                direction: Direction,
                input: &[u8],
                out: &mut [u8],
            ) -> Result<usize> {
                Hsm::cipher_into(self, h, direction, input, out)
            }
            fn sign_into(&self, h: SessionHandle, data: &[u8], out: &mut [u8]) -> Result<usize> {
                Hsm::sign_into(self, h, data, out)
            }
            fn digest_into(&self, h: SessionHandle, data: &[u8], out: &mut [u8]) -> Result<usize> {
                Hsm::digest_into(self, h, data, out)
            }
            $( fn $name(&self $(, $arg: $ty)*) -> $ret { Hsm::$name(self $(, $arg)*) } )*
        }
    };
}

engine! {
    /// `C_GetTokenInfo`.
    fn token_info(&self, slot: u64) -> Result<TokenInfo>;
    /// `C_InitToken`.
    fn init_token(&self, slot: u64, so_pin: &[u8], label: &str) -> Result<()>;
    /// `C_OpenSession`.
    fn open_session(&self, slot: u64, read_write: bool) -> Result<SessionHandle>;
    /// `C_CloseSession`.
    fn close_session(&self, h: SessionHandle) -> Result<()>;
    /// `C_CloseAllSessions` (this application's sessions on the slot).
    fn close_all_sessions(&self, slot: u64) -> Result<()>;
    /// `C_GetSessionInfo`.
    fn session_info(&self, h: SessionHandle) -> Result<SessionInfo>;
    /// `C_Login`.
    fn login(&self, h: SessionHandle, user: UserType, pin: &[u8]) -> Result<()>;
    /// `C_Logout`.
    fn logout(&self, h: SessionHandle) -> Result<()>;
    /// `C_InitPIN`.
    fn init_pin(&self, h: SessionHandle, pin: &[u8]) -> Result<()>;
    /// `C_SetPIN`.
    fn set_pin(&self, h: SessionHandle, old: &[u8], new: &[u8]) -> Result<()>;
    /// `C_GenerateRandom`.
    fn generate_random(&self, h: SessionHandle, out: &mut [u8]) -> Result<()>;
    /// `C_SeedRandom`.
    fn seed_random(&self, h: SessionHandle, seed: &[u8]) -> Result<()>;

    /// `C_CreateObject`.
    fn create_object(&self, h: SessionHandle, template: &Template) -> Result<ObjectHandle>;
    /// `C_CopyObject`.
    fn copy_object(&self, h: SessionHandle, object: ObjectHandle, template: &Template)
        -> Result<ObjectHandle>;
    /// `C_DestroyObject`.
    fn destroy_object(&self, h: SessionHandle, object: ObjectHandle) -> Result<()>;
    /// `C_GetAttributeValue`.
    fn attribute_values(&self, h: SessionHandle, object: ObjectHandle, wanted: &[A])
        -> Result<AttributeResults>;
    /// `C_SetAttributeValue`.
    fn set_attribute_values(&self, h: SessionHandle, object: ObjectHandle, template: &Template)
        -> Result<()>;
    /// `C_GetObjectSize`.
    fn object_size(&self, h: SessionHandle, object: ObjectHandle) -> Result<u64>;
    /// `C_FindObjectsInit`.
    fn find_objects_init(&self, h: SessionHandle, template: &Template) -> Result<()>;
    /// `C_FindObjects`.
    fn find_objects(&self, h: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>>;
    /// `C_FindObjectsFinal`.
    fn find_objects_final(&self, h: SessionHandle) -> Result<()>;
    /// The DER SubjectPublicKeyInfo of a key's public half.
    fn public_key_info(&self, h: SessionHandle, object: ObjectHandle) -> Result<Vec<u8>>;

    /// `C_GenerateKey`.
    fn generate_key(&self, h: SessionHandle, mechanism: &Mechanism, template: &Template)
        -> Result<ObjectHandle>;
    /// `C_GenerateKeyPair`.
    fn generate_key_pair(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(ObjectHandle, ObjectHandle)>;
    /// `C_WrapKey`.
    fn wrap_key(&self, h: SessionHandle, mechanism: &Mechanism, wrapping: ObjectHandle,
        target: ObjectHandle) -> Result<Vec<u8>>;
    /// The length `C_WrapKey` would return.
    fn wrap_key_len(&self, h: SessionHandle, mechanism: &Mechanism, wrapping: ObjectHandle,
        target: ObjectHandle) -> Result<usize>;
    /// `C_WrapKeyAuthenticated` (PKCS#11 3.2).
    fn wrap_key_authenticated(&self, h: SessionHandle, mechanism: &Mechanism,
        wrapping: ObjectHandle, target: ObjectHandle) -> Result<MessageOutput>;
    /// The length `C_WrapKeyAuthenticated` would return.
    fn wrap_key_authenticated_len(&self, h: SessionHandle, mechanism: &Mechanism,
        wrapping: ObjectHandle, target: ObjectHandle) -> Result<usize>;
    /// `C_UnwrapKey`.
    fn unwrap_key(&self, h: SessionHandle, mechanism: &Mechanism, unwrapping: ObjectHandle,
        wrapped: &[u8], template: &Template) -> Result<ObjectHandle>;
    /// `C_DeriveKey`.
    fn derive_key(&self, h: SessionHandle, mechanism: &Mechanism, base: ObjectHandle,
        template: &Template) -> Result<ObjectHandle>;
    /// `C_EncapsulateKey` (PKCS#11 3.2): the ciphertext and the new key.
    fn encapsulate_key(&self, h: SessionHandle, mechanism: &Mechanism, public: ObjectHandle,
        template: &Template) -> Result<(Vec<u8>, ObjectHandle)>;
    /// The ciphertext length `C_EncapsulateKey` would return.
    fn encapsulate_key_len(&self, h: SessionHandle, mechanism: &Mechanism, public: ObjectHandle)
        -> Result<usize>;
    /// `C_DecapsulateKey` (PKCS#11 3.2).
    fn decapsulate_key(&self, h: SessionHandle, mechanism: &Mechanism, private: ObjectHandle,
        ciphertext: &[u8], template: &Template) -> Result<ObjectHandle>;

    /// Ends the session's operations of the given kinds.
    fn cancel(&self, h: SessionHandle, kinds: &[OperationKind]) -> Result<()>;
    /// `C_GetOperationState`.
    fn operation_state(&self, h: SessionHandle) -> Result<Vec<u8>>;
    /// `C_SetOperationState`.
    fn set_operation_state(&self, h: SessionHandle, blob: &[u8]) -> Result<()>;

    /// `C_SignInit`.
    fn sign_init(&self, h: SessionHandle, mechanism: &Mechanism, key: ObjectHandle)
        -> Result<()>;
    /// `C_SignRecoverInit`.
    fn sign_recover_init(&self, h: SessionHandle, mechanism: &Mechanism, key: ObjectHandle)
        -> Result<()>;
    /// The length `C_Sign`, `C_SignFinal` or `C_SignRecover` would return.
    fn signature_len(&self, h: SessionHandle) -> Result<usize>;
    /// `C_Sign`.
    fn sign(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>>;
    /// `C_SignRecover`.
    fn sign_recover(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>>;
    /// `C_SignUpdate`.
    fn sign_update(&self, h: SessionHandle, data: &[u8]) -> Result<()>;
    /// `C_SignFinal`.
    fn sign_final(&self, h: SessionHandle) -> Result<Vec<u8>>;
    /// `C_VerifyInit`.
    fn verify_init(&self, h: SessionHandle, mechanism: &Mechanism, key: ObjectHandle)
        -> Result<()>;
    /// `C_VerifyRecoverInit`.
    fn verify_recover_init(&self, h: SessionHandle, mechanism: &Mechanism, key: ObjectHandle)
        -> Result<()>;
    /// `C_Verify`.
    fn verify(&self, h: SessionHandle, data: &[u8], signature: &[u8]) -> Result<()>;
    /// `C_VerifyUpdate`.
    fn verify_update(&self, h: SessionHandle, data: &[u8]) -> Result<()>;
    /// `C_VerifyFinal`.
    fn verify_final(&self, h: SessionHandle, signature: &[u8]) -> Result<()>;
    /// `C_VerifyRecover`.
    fn verify_recover(&self, h: SessionHandle, signature: &[u8]) -> Result<Vec<u8>>;
    /// `C_VerifySignatureInit` (PKCS#11 3.2).
    fn verify_signature_init(&self, h: SessionHandle, mechanism: &Mechanism, key: ObjectHandle,
        signature: &[u8]) -> Result<()>;
    /// `C_VerifySignature`.
    fn verify_signature(&self, h: SessionHandle, data: &[u8]) -> Result<()>;
    /// `C_VerifySignatureUpdate`.
    fn verify_signature_update(&self, h: SessionHandle, data: &[u8]) -> Result<()>;
    /// `C_VerifySignatureFinal`.
    fn verify_signature_final(&self, h: SessionHandle) -> Result<()>;

    /// `C_EncryptInit` / `C_DecryptInit`.
    fn cipher_init(&self, h: SessionHandle, direction: Direction, mechanism: &Mechanism,
        key: ObjectHandle) -> Result<()>;
    /// The length `C_Encrypt` / `C_Decrypt` would return for `input_len` bytes.
    fn cipher_len(&self, h: SessionHandle, direction: Direction, input_len: usize)
        -> Result<usize>;
    /// The length `C_EncryptUpdate` / `C_DecryptUpdate` would return.
    fn cipher_update_len(&self, h: SessionHandle, direction: Direction, input_len: usize)
        -> Result<usize>;
    /// The length `C_EncryptFinal` / `C_DecryptFinal` would return.
    fn cipher_final_len(&self, h: SessionHandle, direction: Direction) -> Result<usize>;
    /// `C_Encrypt` / `C_Decrypt`.
    fn cipher(&self, h: SessionHandle, direction: Direction, input: &[u8])
        -> Result<Zeroizing<Vec<u8>>>;
    /// `C_Encrypt` (ciphertext needs no wiping).
    fn encrypt(&self, h: SessionHandle, input: &[u8]) -> Result<Vec<u8>>;
    /// `C_EncryptUpdate` / `C_DecryptUpdate`.
    fn cipher_update(&self, h: SessionHandle, direction: Direction, input: &[u8])
        -> Result<Zeroizing<Vec<u8>>>;
    /// `C_EncryptFinal` / `C_DecryptFinal`.
    fn cipher_final(&self, h: SessionHandle, direction: Direction)
        -> Result<Zeroizing<Vec<u8>>>;

    /// `C_DigestInit`.
    fn digest_init(&self, h: SessionHandle, mechanism: &Mechanism) -> Result<()>;
    /// The length `C_Digest` / `C_DigestFinal` would return.
    fn digest_len(&self, h: SessionHandle) -> Result<usize>;
    /// `C_Digest`.
    fn digest(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>>;
    /// `C_DigestUpdate`.
    fn digest_update(&self, h: SessionHandle, data: &[u8]) -> Result<()>;
    /// `C_DigestKey`.
    fn digest_key(&self, h: SessionHandle, key: ObjectHandle) -> Result<()>;
    /// `C_DigestFinal`.
    fn digest_final(&self, h: SessionHandle) -> Result<Vec<u8>>;

    /// `C_MessageEncryptInit` and its siblings.
    fn message_init(&self, h: SessionHandle, kind: MessageKind, mechanism: &Mechanism,
        key: ObjectHandle) -> Result<()>;
    /// `C_MessageEncryptFinal` and its siblings.
    fn message_final(&self, h: SessionHandle, kind: MessageKind) -> Result<()>;
    /// The output length of the message being fed in parts, if one is.
    fn message_pending_len(&self, h: SessionHandle, kind: MessageKind)
        -> Result<Option<usize>>;
    /// `C_EncryptMessageBegin` and its siblings: the generated IV, if any.
    fn message_begin(&self, h: SessionHandle, kind: MessageKind, per_message: Option<Mechanism>)
        -> Result<Option<Vec<u8>>>;
    /// `C_EncryptMessageNext` and its siblings, for a part that is not the last.
    fn message_part(&self, h: SessionHandle, kind: MessageKind, part: &[u8]) -> Result<()>;
    /// `C_EncryptMessage` / `C_DecryptMessage`, or the last part of one.
    fn cipher_message(&self, h: SessionHandle, direction: Direction,
        per_message: Option<&Mechanism>, input: &[u8]) -> Result<MessageOutput>;
    /// The length `C_SignMessage` would return.
    fn message_signature_len(&self, h: SessionHandle) -> Result<usize>;
    /// `C_SignMessage`, or `C_SignMessageNext`.
    fn sign_message(&self, h: SessionHandle, data: &[u8], last_part: bool) -> Result<Vec<u8>>;
    /// `C_VerifyMessage`, or `C_VerifyMessageNext`.
    fn verify_message(&self, h: SessionHandle, data: &[u8], last_part: bool,
        signature: &[u8]) -> Result<()>;
}
