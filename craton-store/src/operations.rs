//! Cryptographic operations through sessions: one active operation of each kind per session,
//! single- and multi-part, with the key's attributes (usage flags, dates,
//! `CKA_ALWAYS_AUTHENTICATE`) and the token's registry checked at `*_init`.
//!
//! The contexts live in the session; the work itself runs after the session lock is released,
//! on an `Arc` of the key, so parallel sessions never wait on each other.

use crate::error::{HsmError, Result};
use crate::event::{Event, KeyOrigin};
use crate::hsm::{Hsm, ObjectHandle, Session, SessionHandle};
use crate::objects::{CachedKey, KeyCache, NewSecret, Object, Template};
use craton_core::Direction;
use craton_core::attribute::{AttrValue, AttributeError, AttributeType as A, ObjectClass};
use craton_core::digest::DigestContext;
use craton_core::key::KeyMaterial;
use craton_core::mechanism::MechanismType as M;
use craton_core::ops::{self, CipherContext, Mechanism, SignContext, VerifyContext};
use craton_core::{KeyType, Operations};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where a kind of operation lives in a session's [`SessionOps`].
type Slot<C> = fn(&mut SessionOps) -> &mut Option<Running<C>>;

/// What the audit entry of an operation's end names (kept apart from the context, which
/// finishing consumes).
#[derive(Clone, Copy)]
struct OpTag {
    /// The token slot of the session it runs in.
    slot: usize,
    key: u64,
    mechanism: M,
}

/// What an operation's start asks for: a key, the mechanism, and the use.
struct Want<'a> {
    key: ObjectHandle,
    mechanism: &'a Mechanism,
    usage: &'a Use,
}

/// An operation in progress, with what is needed to audit it.
#[derive(Clone)]
pub(crate) struct Running<C> {
    ctx: C,
    tag: OpTag,
    /// A `CKA_ALWAYS_AUTHENTICATE` key still waiting for its context-specific login.
    needs_login: bool,
    /// The signature given up front to `C_VerifySignatureInit` (PKCS#11 3.2); such a
    /// verification is finished only by the `C_VerifySignature*` calls, and one begun by
    /// `C_VerifyInit` only by the 3.0 calls.
    signature: Option<Vec<u8>>,
}

/// The operation contexts of one session.
#[derive(Default)]
pub(crate) struct SessionOps {
    pub(crate) sign: Option<Running<SignContext>>,
    pub(crate) verify: Option<Running<VerifyContext>>,
    pub(crate) encrypt: Option<Running<CipherContext>>,
    pub(crate) decrypt: Option<Running<CipherContext>>,
    pub(crate) digest: Option<DigestContext>,
    pub(crate) find: Option<Vec<u64>>,
    /// Message-based operations, by [`MessageKind`].
    messages: [Option<MessageOp>; 4],
    /// The keys this session used lately (see [`Hsm::session_key`]); not operation state.
    pub(crate) keys: crate::objects::KeyCache,
}

/// A message-based operation (`C_MessageEncryptInit` and friends): the key and mechanism are
/// fixed; each message is its own operation.
struct MessageOp {
    key: u64,
    mechanism: Mechanism,
    /// The message being sent in parts: its own mechanism (IV, AAD) and the parts so far.
    pending: Option<(Mechanism, Zeroizing<Vec<u8>>)>,
}

/// The four kinds of message-based operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `C_MessageEncryptInit`.
    Encrypt,
    /// `C_MessageDecryptInit`.
    Decrypt,
    /// `C_MessageSignInit`.
    Sign,
    /// `C_MessageVerifyInit`.
    Verify,
}

impl MessageKind {
    fn index(self) -> usize {
        self as usize
    }

    fn usage(self) -> &'static Use {
        match self {
            MessageKind::Encrypt => &ENCRYPT,
            MessageKind::Decrypt => &DECRYPT,
            MessageKind::Sign => &SIGN,
            MessageKind::Verify => &VERIFY,
        }
    }

    /// The message-based cipher operation of a direction.
    pub fn of_direction(direction: Direction) -> MessageKind {
        match direction {
            Direction::Encrypt => MessageKind::Encrypt,
            Direction::Decrypt => MessageKind::Decrypt,
        }
    }
}

/// Which message a message-based call processes.
enum Which<'a> {
    /// A whole message, with its own mechanism or (`None`) the operation's.
    Whole(Option<&'a Mechanism>),
    /// The last part of the message sent in parts.
    LastPart,
}

impl Which<'_> {
    fn of(last_part: bool) -> Self {
        if last_part {
            Which::LastPart
        } else {
            Which::Whole(None)
        }
    }
}

/// The output of one message of a message-based encryption or decryption.
#[derive(Debug)]
pub struct MessageOutput {
    /// Ciphertext (with the tag at its end, for AES-GCM) or plaintext.
    pub data: Zeroizing<Vec<u8>>,
    /// The IV used, when the module generated it.
    pub iv: Option<Vec<u8>>,
}

impl SessionOps {
    /// A copy of every active cryptographic operation (not the find cursor, which PKCS#11
    /// leaves out of the saved state).
    fn snapshot(&self) -> Result<SessionOps> {
        let cipher = |r: &Option<Running<CipherContext>>| -> Result<_> {
            r.as_ref()
                .map(|r| {
                    Ok(Running {
                        ctx: r.ctx.try_clone()?,
                        tag: r.tag,
                        needs_login: r.needs_login,
                        signature: None,
                    })
                })
                .transpose()
        };
        Ok(SessionOps {
            sign: self.sign.clone(),
            verify: self.verify.clone(),
            encrypt: cipher(&self.encrypt)?,
            decrypt: cipher(&self.decrypt)?,
            digest: self.digest.clone(),
            find: None,
            messages: Default::default(),
            keys: Default::default(),
        })
    }

    fn is_idle(&self) -> bool {
        self.sign.is_none()
            && self.verify.is_none()
            && self.encrypt.is_none()
            && self.decrypt.is_none()
            && self.digest.is_none()
    }

    pub(crate) fn awaiting_context_login(&self) -> bool {
        self.sign.as_ref().is_some_and(|r| r.needs_login)
            || self.decrypt.as_ref().is_some_and(|r| r.needs_login)
    }

    pub(crate) fn context_login_done(&mut self) {
        if let Some(r) = &mut self.sign {
            r.needs_login = false;
        }
        if let Some(r) = &mut self.decrypt {
            r.needs_login = false;
        }
    }
}

/// A kind of operation a session can have running, for [`Hsm::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Signing or MAC generation (including sign-recover).
    Sign,
    /// Verification (including verify-recover).
    Verify,
    /// Encryption.
    Encrypt,
    /// Decryption.
    Decrypt,
    /// Digesting.
    Digest,
    /// An object search.
    Find,
    /// A message-based operation.
    Message(MessageKind),
}

/// Which attribute a use needs, and whether the key's dates bind it (they bind creating
/// signatures and ciphertexts, not checking or opening them).
struct Use {
    op: Operations,
    attr: A,
    dated: bool,
    name: &'static str,
}

const SIGN: Use = Use {
    op: Operations::SIGN,
    attr: A::SIGN,
    dated: true,
    name: "sign",
};
const SIGN_RECOVER: Use = Use {
    op: Operations::SIGN_RECOVER,
    attr: A::SIGN_RECOVER,
    dated: true,
    name: "sign",
};
const VERIFY: Use = Use {
    op: Operations::VERIFY,
    attr: A::VERIFY,
    dated: false,
    name: "verify",
};
const VERIFY_RECOVER: Use = Use {
    op: Operations::VERIFY_RECOVER,
    attr: A::VERIFY_RECOVER,
    dated: false,
    name: "verify",
};
const ENCRYPT: Use = Use {
    op: Operations::ENCRYPT,
    attr: A::ENCRYPT,
    dated: true,
    name: "encrypt",
};
const DECRYPT: Use = Use {
    op: Operations::DECRYPT,
    attr: A::DECRYPT,
    dated: false,
    name: "decrypt",
};
const WRAP: Use = Use {
    op: Operations::WRAP,
    attr: A::WRAP,
    dated: true,
    name: "wrap",
};
const UNWRAP: Use = Use {
    op: Operations::UNWRAP,
    attr: A::UNWRAP,
    dated: false,
    name: "unwrap",
};
const DERIVE: Use = Use {
    op: Operations::DERIVE,
    attr: A::DERIVE,
    dated: true,
    name: "derive",
};
const ENCAPSULATE: Use = Use {
    op: Operations::ENCAPSULATE,
    attr: A::ENCAPSULATE,
    dated: true,
    name: "encapsulate",
};
const DECAPSULATE: Use = Use {
    op: Operations::DECAPSULATE,
    attr: A::DECAPSULATE,
    dated: false,
    name: "decapsulate",
};

/// `CryptoError::BufferTooSmall` unless `out` holds `required` bytes: the two-call
/// convention's refusal, which leaves the operation in place.
pub(crate) fn fits(out: &[u8], required: usize) -> Result<()> {
    if out.len() < required {
        return Err(craton_core::CryptoError::BufferTooSmall { required }.into());
    }
    Ok(())
}

/// Copies `data` to the start of `out`, returning its length.
pub(crate) fn put(out: &mut [u8], data: &[u8]) -> Result<usize> {
    fits(out, data.len())?;
    out[..data.len()].copy_from_slice(data);
    Ok(data.len())
}

fn not_permitted(what: &'static str) -> HsmError {
    HsmError::KeyFunctionNotPermitted(what)
}

impl Hsm {
    /// Finds a key the session may use for `u` with `mechanism`, and its material.
    fn usable_key(
        &self,
        s: &Session,
        key: ObjectHandle,
        mechanism: &Mechanism,
        u: &Use,
    ) -> Result<(Arc<Object>, Arc<KeyMaterial>)> {
        let mut ops = self.lock_ops(s)?;
        let (o, material) = self.usable_key_in(s, &mut ops.keys, key, mechanism, u)?;
        Ok((o.clone(), material))
    }

    /// [`Self::usable_key`] with the session's operations already locked; the key is lent
    /// from the session's cache.
    fn usable_key_in<'c>(
        &self,
        s: &Session,
        keys: &'c mut KeyCache,
        key: ObjectHandle,
        mechanism: &Mechanism,
        u: &Use,
    ) -> Result<(&'c Arc<Object>, Arc<KeyMaterial>)> {
        let entry = self.session_key(s, keys, key)?;
        self.check_entry(entry, mechanism.mechanism_type(), u)
    }

    /// The key of a cache entry and its material, if it may serve `u` with `mechanism`.
    fn check_entry<'c>(
        &self,
        entry: &'c mut CachedKey,
        mechanism: M,
        u: &Use,
    ) -> Result<(&'c Arc<Object>, Arc<KeyMaterial>)> {
        let checked = Some((mechanism, u.op));
        // Same key copy, mechanism and use as last time, and the token unchanged since: the
        // checks would pass again.
        if entry.checked != checked {
            self.check_key_use(&entry.object, mechanism, u)?;
            entry.checked = checked;
        }
        let o = &entry.object;
        let material = o.material()?;
        if u.dated && !o.within_dates() {
            return Err(not_permitted("the key is outside its start/end dates"));
        }
        Ok((o, material))
    }

    /// Whether `o` is a key that `mechanism` serves for `u` under the policy, with its usage
    /// attribute set. Reads only the key's attributes and the registry.
    fn check_key_use(&self, o: &Object, mechanism: M, u: &Use) -> Result<()> {
        if !matches!(
            o.class(),
            ObjectClass::SECRET_KEY | ObjectClass::PUBLIC_KEY | ObjectClass::PRIVATE_KEY
        ) {
            return Err(HsmError::KeyHandleInvalid);
        }
        let material = o.material()?;
        self.registry.check(
            mechanism,
            u.op,
            Some((material.key_type(), material.size())),
        )?;
        if !o.flag(u.attr) {
            return Err(not_permitted(match u.name {
                "sign" => "the key's CKA_SIGN is false",
                "verify" => "the key's CKA_VERIFY is false",
                "encrypt" => "the key's CKA_ENCRYPT is false",
                "decrypt" => "the key's CKA_DECRYPT is false",
                "wrap" => "the key's CKA_WRAP is false",
                "unwrap" => "the key's CKA_UNWRAP is false",
                "derive" => "the key's CKA_DERIVE is false",
                "encapsulate" => "the key's CKA_ENCAPSULATE is false",
                "decapsulate" => "the key's CKA_DECAPSULATE is false",
                _ => "the key's usage attribute is false",
            }));
        }
        Ok(())
    }

    /// Audits the end of an operation of session `h`.
    fn audit_end(
        &self,
        h: SessionHandle,
        kind: &'static str,
        tag: OpTag,
        success: bool,
    ) -> Result<()> {
        if self.silent {
            // Neither an audit log nor a caller's sink: nothing to build the entry for.
            return Ok(());
        }
        self.emit(Event::Operation {
            slot: tag.slot as u64,
            session: h.0,
            kind,
            mechanism: tag.mechanism,
            key: tag.key,
            success,
        })
    }

    fn audit_op(
        &self,
        s: &Session,
        kind: &'static str,
        mechanism: M,
        key: u64,
        success: bool,
    ) -> Result<()> {
        let tag = OpTag {
            slot: s.slot,
            key,
            mechanism,
        };
        self.audit_end(SessionHandle(s.handle), kind, tag, success)
    }

    // ---- the life of a running operation, shared by sign, verify, encrypt, decrypt ----

    /// Starts an operation in the session slot `slot`: refuses a second one, finds a key
    /// fit for `u`, lets `build` make the context (and say whether it awaits a
    /// context-specific login), then installs it, all under the session's own lock (taken
    /// once: this is every operation's fixed cost; other sessions are not held up).
    /// `build` is first called under the session shard's read lock (its last argument true),
    /// where it must not wait for I/O: it returns `None` to be called again without it.
    fn start<C>(
        &self,
        h: SessionHandle,
        slot: Slot<C>,
        want: Want<'_>,
        build: impl Fn(&Session, &Object, Arc<KeyMaterial>, bool) -> Result<Option<(C, bool)>>,
    ) -> Result<()> {
        self.check_module()?;
        // A key the session has used since the token last changed: all of it under the
        // shard's read lock, without the two atomic steps of a counted reference.
        let started = self.with_session(h, |s| {
            let mut ops = self.lock_ops(s)?;
            self.start_in(s, &mut ops, slot, &want, &build, false)
        })?;
        if !started {
            // Looking the key up takes the token's read lock, which must not be awaited
            // under a shard lock: `open_session_for` takes a shard's write lock while it
            // holds the token's write lock.
            let s = self.session(h)?;
            let mut ops = self.lock_ops(&s)?;
            self.start_in(&s, &mut ops, slot, &want, &build, true)?;
        }
        Ok(())
    }

    /// [`Self::start`] with the session's operations locked. Without `look_up` (under the
    /// shard's lock), only a key in the session's cache will do, and `build` is told to do no
    /// I/O: `Ok(false)` says the start must be made again with `look_up`.
    fn start_in<C>(
        &self,
        s: &Session,
        ops: &mut SessionOps,
        slot: Slot<C>,
        want: &Want<'_>,
        build: &impl Fn(&Session, &Object, Arc<KeyMaterial>, bool) -> Result<Option<(C, bool)>>,
        look_up: bool,
    ) -> Result<bool> {
        if slot(ops).is_some() {
            return Err(HsmError::OperationActive);
        }
        let entry = if look_up {
            self.session_key(s, &mut ops.keys, want.key)?
        } else {
            match self.cached_key(s, &mut ops.keys, want.key) {
                Some(entry) => entry,
                None => return Ok(false),
            }
        };
        // The mechanism's number, worked out once (it is a match over every mechanism).
        let mechanism = want.mechanism.mechanism_type();
        let (o, material) = self.check_entry(entry, mechanism, want.usage)?;
        let Some((ctx, needs_login)) = build(s, o, material, !look_up)? else {
            return Ok(false);
        };
        *slot(ops) = Some(Running {
            ctx,
            tag: OpTag {
                slot: s.slot,
                key: want.key.0,
                mechanism,
            },
            needs_login,
            signature: None,
        });
        Ok(true)
    }

    /// Takes the running operation of session `h` out of its slot to finish it (a pending
    /// context-specific login leaves it in place).
    fn take<C>(&self, h: SessionHandle, slot: Slot<C>) -> Result<Running<C>> {
        self.take_as(h, slot, false)
    }

    /// [`Self::take`] for an operation begun with its signature up front (`preset`,
    /// `C_VerifySignatureInit`) or without. The 3.0 and 3.2 verification calls do not finish
    /// each other's operation: a mismatch ends it, as any failed call does.
    fn take_as<C>(&self, h: SessionHandle, slot: Slot<C>, preset: bool) -> Result<Running<C>> {
        self.with_session(h, |s| self.take_from(s, slot, preset))
    }

    fn take_from<C>(&self, s: &Session, slot: Slot<C>, preset: bool) -> Result<Running<C>> {
        self.take_if(s, slot, preset, |_| Ok(()))
    }

    /// [`Self::take_from`], if `fits` accepts the running context; a refusal (a caller's
    /// buffer too short for the output) leaves the operation in place.
    fn take_if<C>(
        &self,
        s: &Session,
        slot: Slot<C>,
        preset: bool,
        fits: impl FnOnce(&C) -> Result<()>,
    ) -> Result<Running<C>> {
        let mut ops = self.lock_ops(s)?;
        let running = slot(&mut ops);
        match running {
            None => Err(HsmError::OperationNotInitialized),
            Some(r) if r.signature.is_some() != preset => {
                *running = None;
                Err(HsmError::OperationNotInitialized)
            }
            Some(r) if r.needs_login => Err(HsmError::UserNotLoggedIn),
            Some(r) => {
                fits(&r.ctx)?;
                match running.take() {
                    Some(r) => Ok(r),
                    None => Err(HsmError::OperationNotInitialized),
                }
            }
        }
    }

    /// Runs `f` on the running operation in place (a multi-part update); a failure ends
    /// the operation, as PKCS#11 prescribes.
    fn step<C, T>(
        &self,
        h: SessionHandle,
        slot: Slot<C>,
        f: impl FnOnce(&mut C) -> std::result::Result<T, craton_core::CryptoError>,
    ) -> Result<T> {
        self.step_as(h, slot, false, f)
    }

    /// [`Self::step`] with the same check of how the operation began as [`Self::take_as`].
    fn step_as<C, T>(
        &self,
        h: SessionHandle,
        slot: Slot<C>,
        preset: bool,
        f: impl FnOnce(&mut C) -> std::result::Result<T, craton_core::CryptoError>,
    ) -> Result<T> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        let running = slot(&mut ops);
        let Some(r) = running.as_mut() else {
            return Err(HsmError::OperationNotInitialized);
        };
        if r.signature.is_some() != preset {
            *running = None;
            return Err(HsmError::OperationNotInitialized);
        }
        if r.needs_login {
            return Err(HsmError::UserNotLoggedIn);
        }
        f(&mut r.ctx).map_err(|e| {
            *running = None;
            e.into()
        })
    }

    /// Reads the running operation without changing it (lengths, the generated IV).
    fn peek<C, T>(&self, h: SessionHandle, slot: Slot<C>, f: impl FnOnce(&C) -> T) -> Result<T> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        match slot(&mut ops) {
            Some(r) => Ok(f(&r.ctx)),
            None => Err(HsmError::OperationNotInitialized),
        }
    }

    /// Ends the session's running operations of the given kinds without finishing them
    /// (`C_SessionCancel`, and a frontend ending an operation whose call it refused). Kinds
    /// with nothing running are ignored.
    pub fn cancel(&self, h: SessionHandle, kinds: &[OperationKind]) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        for kind in kinds {
            match kind {
                OperationKind::Sign => ops.sign = None,
                OperationKind::Verify => ops.verify = None,
                OperationKind::Encrypt => ops.encrypt = None,
                OperationKind::Decrypt => ops.decrypt = None,
                OperationKind::Digest => ops.digest = None,
                OperationKind::Find => ops.find = None,
                OperationKind::Message(k) => ops.messages[k.index()] = None,
            }
        }
        Ok(())
    }

    // ---- message-based operations (PKCS#11 3.0 §5.9-§5.13, C_*Message*) ----

    /// `C_Message*Init`: fixes the key and mechanism for the session's message-based
    /// operations of `kind`. A `CKA_ALWAYS_AUTHENTICATE` key is refused: its context-specific
    /// login covers one operation, and a message-based one has no end.
    pub fn message_init(
        &self,
        h: SessionHandle,
        kind: MessageKind,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.check_module()?;
        let s = self.session(h)?;
        if self.lock_ops(&s)?.messages[kind.index()].is_some() {
            return Err(HsmError::OperationActive);
        }
        let (o, _) = self.usable_key(&s, key, mechanism, kind.usage())?;
        if o.flag(A::ALWAYS_AUTHENTICATE) {
            return Err(not_permitted(
                "a key that needs a context-specific login cannot serve message-based operations",
            ));
        }
        let slot = &mut self.lock_ops(&s)?.messages[kind.index()];
        if slot.is_some() {
            return Err(HsmError::OperationActive);
        }
        *slot = Some(MessageOp {
            key: key.0,
            mechanism: mechanism.clone(),
            pending: None,
        });
        Ok(())
    }

    /// `C_Message*Final`: ends the message-based operations of `kind`.
    pub fn message_final(&self, h: SessionHandle, kind: MessageKind) -> Result<()> {
        let s = self.session(h)?;
        self.lock_ops(&s)?.messages[kind.index()]
            .take()
            .map(|_| ())
            .ok_or(HsmError::OperationNotInitialized)
    }

    /// Runs `f` on the session's message-based operation of `kind`.
    fn with_message<T>(
        &self,
        h: SessionHandle,
        kind: MessageKind,
        f: impl FnOnce(&mut MessageOp) -> Result<T>,
    ) -> Result<T> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        f(ops.messages[kind.index()]
            .as_mut()
            .ok_or(HsmError::OperationNotInitialized)?)
    }

    /// How many bytes of a message sent in parts have arrived (`None`: no message is in
    /// parts). Fails when no message-based operation of `kind` is initialised.
    pub fn message_pending_len(
        &self,
        h: SessionHandle,
        kind: MessageKind,
    ) -> Result<Option<usize>> {
        self.with_message(h, kind, |op| Ok(op.pending.as_ref().map(|(_, d)| d.len())))
    }

    /// `C_*MessageBegin`: starts a message sent in parts. Cipher messages bring their own
    /// mechanism (IV, AAD, tag length); a module-generated GCM IV is drawn now and returned,
    /// so the caller has it before the first part.
    pub fn message_begin(
        &self,
        h: SessionHandle,
        kind: MessageKind,
        per_message: Option<Mechanism>,
    ) -> Result<Option<Vec<u8>>> {
        self.check_module()?;
        let mut iv = None;
        let per_message = match per_message {
            Some(Mechanism::Aes(craton_core::aes::AesMode::Gcm(mut p))) => {
                let direction = match kind {
                    MessageKind::Encrypt => Direction::Encrypt,
                    _ => Direction::Decrypt,
                };
                let resolved = p.iv.resolve(direction, &self.rng)?;
                p.iv = craton_core::aes::GcmIv::Given(resolved.clone());
                iv = Some(resolved);
                Some(Mechanism::Aes(craton_core::aes::AesMode::Gcm(p)))
            }
            other => other,
        };
        self.with_message(h, kind, |op| {
            if op.pending.is_some() {
                return Err(HsmError::OperationActive);
            }
            let mechanism = per_message.unwrap_or_else(|| op.mechanism.clone());
            op.pending = Some((mechanism, Zeroizing::new(Vec::new())));
            Ok(())
        })?;
        Ok(iv)
    }

    /// `C_*MessageNext` without the end flag: adds a part to the message sent in parts.
    pub fn message_part(&self, h: SessionHandle, kind: MessageKind, part: &[u8]) -> Result<()> {
        self.with_message(h, kind, |op| Self::collect(op, part))
    }

    fn collect(op: &mut MessageOp, part: &[u8]) -> Result<()> {
        let (_, data) = op
            .pending
            .as_mut()
            .ok_or(HsmError::OperationNotInitialized)?;
        if data.len() + part.len() > ops::MAX_SINGLE_PART {
            op.pending = None;
            return Err(craton_core::CryptoError::DataLenRange.into());
        }
        data.extend_from_slice(part);
        Ok(())
    }

    /// The key, and the mechanism plus data of the message to process now: `input` as a
    /// whole message (refused while a message is in parts), or the message in parts
    /// completed by `input`.
    fn message_input(
        &self,
        h: SessionHandle,
        kind: MessageKind,
        input: &[u8],
        which: Which<'_>,
    ) -> Result<(ObjectHandle, Mechanism, Zeroizing<Vec<u8>>)> {
        self.with_message(h, kind, |op| {
            let key = ObjectHandle(op.key);
            match which {
                Which::Whole(_) if op.pending.is_some() => Err(HsmError::OperationActive),
                Which::Whole(m) => Ok((
                    key,
                    m.unwrap_or(&op.mechanism).clone(),
                    Zeroizing::new(input.to_vec()),
                )),
                Which::LastPart => {
                    Self::collect(op, input)?;
                    let (m, data) = op.pending.take().ok_or(HsmError::OperationNotInitialized)?;
                    Ok((key, m, data))
                }
            }
        })
    }

    /// One message of a message-based encryption or decryption, begun and ended in this
    /// call: `per_message` is a whole message's mechanism (IV or IV generator, AAD), or
    /// `None` to finish the message sent in parts with `input` as its last part.
    pub fn cipher_message(
        &self,
        h: SessionHandle,
        direction: Direction,
        per_message: Option<&Mechanism>,
        input: &[u8],
    ) -> Result<MessageOutput> {
        self.check_module()?;
        let kind = MessageKind::of_direction(direction);
        let which = per_message.map_or(Which::LastPart, |m| Which::Whole(Some(m)));
        let (key, mechanism, input) = self.message_input(h, kind, input, which)?;
        let s = self.session(h)?;
        let (o, material) = self.usable_key(&s, key, &mechanism, kind.usage())?;
        if direction == Direction::Encrypt
            && matches!(mechanism, Mechanism::Aes(craton_core::aes::AesMode::Gcm(_)))
        {
            self.count_gcm(&s, &o)?;
        }
        let ctx = CipherContext::new(&mechanism, material, direction, &self.rng)?;
        let iv = ctx.gcm_iv().map(<[u8]>::to_vec);
        let out = ctx.one_shot(&input);
        self.audit_op(
            &s,
            Self::direction_name(direction),
            mechanism.mechanism_type(),
            key.0,
            out.is_ok(),
        )?;
        Ok(MessageOutput { data: out?, iv })
    }

    /// The length of a message-based signature.
    pub fn message_signature_len(&self, h: SessionHandle) -> Result<usize> {
        let (key, mechanism) = self.with_message(h, MessageKind::Sign, |op| {
            Ok((op.key, op.mechanism.clone()))
        })?;
        let s = self.session(h)?;
        let (_, material) = self.usable_key(&s, ObjectHandle(key), &mechanism, &SIGN)?;
        Ok(SignContext::new(&mechanism, material)?.signature_len())
    }

    /// One message of a message-based signing: `data` is a whole message (`last_part`
    /// false) or the last part of the message sent in parts.
    pub fn sign_message(&self, h: SessionHandle, data: &[u8], last_part: bool) -> Result<Vec<u8>> {
        self.check_module()?;
        let (key, mechanism, data) =
            self.message_input(h, MessageKind::Sign, data, Which::of(last_part))?;
        let s = self.session(h)?;
        let (_, material) = self.usable_key(&s, key, &mechanism, &SIGN)?;
        let out = SignContext::new(&mechanism, material)?.sign(&data, &self.rng);
        self.audit_op(&s, "sign", mechanism.mechanism_type(), key.0, out.is_ok())?;
        Ok(out?)
    }

    /// One message of a message-based verification (see [`Hsm::sign_message`]).
    pub fn verify_message(
        &self,
        h: SessionHandle,
        data: &[u8],
        last_part: bool,
        signature: &[u8],
    ) -> Result<()> {
        self.check_module()?;
        let (key, mechanism, data) =
            self.message_input(h, MessageKind::Verify, data, Which::of(last_part))?;
        let s = self.session(h)?;
        let (_, material) = self.usable_key(&s, key, &mechanism, &VERIFY)?;
        let out = VerifyContext::new(&mechanism, material)?.verify(&data, signature);
        self.audit_op(&s, "verify", mechanism.mechanism_type(), key.0, out.is_ok())?;
        Ok(out?)
    }

    // ---- signing ----

    fn sign_init_as(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
        u: &Use,
    ) -> Result<()> {
        self.start(
            h,
            |o| &mut o.sign,
            Want {
                key,
                mechanism,
                usage: u,
            },
            |_, o, material, _| {
                let ctx = SignContext::new(mechanism, material)?;
                Ok(Some((ctx, o.flag(A::ALWAYS_AUTHENTICATE))))
            },
        )
    }

    /// `C_SignInit` (signatures and MACs).
    pub fn sign_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.sign_init_as(h, mechanism, key, &SIGN)
    }

    /// `C_SignRecoverInit`.
    pub fn sign_recover_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.sign_init_as(h, mechanism, key, &SIGN_RECOVER)
    }

    /// The length `sign`/`sign_final` will return (the two-call convention's first call).
    pub fn signature_len(&self, h: SessionHandle) -> Result<usize> {
        self.peek(h, |o| &mut o.sign, SignContext::signature_len)
    }

    /// `C_Sign`: signs `data` in one call and ends the operation.
    pub fn sign(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>> {
        let r = self.take(h, |o| &mut o.sign)?;
        let out = r.ctx.sign(data, &self.rng);
        self.audit_end(h, "sign", r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_Sign` into the caller's buffer `out`, returning the signature's length: one visit
    /// to the session checks the buffer against [`Hsm::signature_len`] (too short:
    /// `CryptoError::BufferTooSmall`, and the operation stays) and takes the operation.
    pub fn sign_into(&self, h: SessionHandle, data: &[u8], out: &mut [u8]) -> Result<usize> {
        let r = self.with_session(h, |s| {
            self.take_if(s, |o| &mut o.sign, false, |c| fits(out, c.signature_len()))
        })?;
        let signature = r.ctx.sign(data, &self.rng);
        self.audit_end(h, "sign", r.tag, signature.is_ok())?;
        put(out, &signature?)
    }

    /// `C_SignRecover`.
    pub fn sign_recover(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>> {
        let r = self.take(h, |o| &mut o.sign)?;
        let out = r.ctx.sign_recover(data, &self.rng);
        self.audit_end(h, "sign", r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_SignUpdate`. A failure ends the operation, as PKCS#11 prescribes.
    pub fn sign_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        self.step(h, |o| &mut o.sign, |ctx| ctx.update(data))
    }

    /// `C_SignFinal`.
    pub fn sign_final(&self, h: SessionHandle) -> Result<Vec<u8>> {
        let r = self.take(h, |o| &mut o.sign)?;
        let out = r.ctx.finish(&self.rng);
        self.audit_end(h, "sign", r.tag, out.is_ok())?;
        Ok(out?)
    }

    // ---- verification ----

    fn verify_init_as(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
        u: &Use,
    ) -> Result<()> {
        self.start(
            h,
            |o| &mut o.verify,
            Want {
                key,
                mechanism,
                usage: u,
            },
            |_, _, material, _| Ok(Some((VerifyContext::new(mechanism, material)?, false))),
        )
    }

    /// `C_VerifyInit`.
    pub fn verify_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.verify_init_as(h, mechanism, key, &VERIFY)
    }

    /// `C_VerifyRecoverInit`.
    pub fn verify_recover_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.verify_init_as(h, mechanism, key, &VERIFY_RECOVER)
    }

    /// `C_Verify`: `Ok(())` only for a valid signature.
    pub fn verify(&self, h: SessionHandle, data: &[u8], signature: &[u8]) -> Result<()> {
        let r = self.take(h, |o| &mut o.verify)?;
        let out = r.ctx.verify(data, signature);
        self.audit_end(h, "verify", r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_VerifyUpdate`.
    pub fn verify_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        self.step(h, |o| &mut o.verify, |ctx| ctx.update(data))
    }

    /// `C_VerifyFinal`.
    pub fn verify_final(&self, h: SessionHandle, signature: &[u8]) -> Result<()> {
        let r = self.take(h, |o| &mut o.verify)?;
        let out = r.ctx.finish(signature);
        self.audit_end(h, "verify", r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_VerifyRecover`: the data recovered from the signature.
    pub fn verify_recover(&self, h: SessionHandle, signature: &[u8]) -> Result<Vec<u8>> {
        let r = self.take(h, |o| &mut o.verify)?;
        let out = r.ctx.recover(signature);
        self.audit_end(h, "verify", r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_VerifySignatureInit` (PKCS#11 3.2): a verification whose signature is given now,
    /// before the data. It occupies the session's one verification, like `C_VerifyInit`.
    pub fn verify_signature_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
        signature: &[u8],
    ) -> Result<()> {
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(craton_core::CryptoError::SignatureLenRange.into());
        }
        self.verify_init_as(h, mechanism, key, &VERIFY)?;
        let s = self.session(h)?;
        if let Some(r) = &mut self.lock_ops(&s)?.verify {
            r.signature = Some(signature.to_vec());
        }
        Ok(())
    }

    /// `C_VerifySignature`: checks the signature given at init against `data` in one call
    /// and ends the operation.
    pub fn verify_signature(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        let mut r = self.take_as(h, |o| &mut o.verify, true)?;
        let signature = r.signature.take().unwrap_or_default();
        let out = r.ctx.verify(data, &signature);
        self.audit_end(h, "verify", r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_VerifySignatureUpdate`.
    pub fn verify_signature_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        self.step_as(h, |o| &mut o.verify, true, |ctx| ctx.update(data))
    }

    /// `C_VerifySignatureFinal`.
    pub fn verify_signature_final(&self, h: SessionHandle) -> Result<()> {
        let mut r = self.take_as(h, |o| &mut o.verify, true)?;
        let signature = r.signature.take().unwrap_or_default();
        let out = r.ctx.finish(&signature);
        self.audit_end(h, "verify", r.tag, out.is_ok())?;
        Ok(out?)
    }

    // ---- encryption ----

    fn slot_for(direction: Direction) -> Slot<CipherContext> {
        match direction {
            Direction::Encrypt => |o| &mut o.encrypt,
            Direction::Decrypt => |o| &mut o.decrypt,
        }
    }

    /// `C_EncryptInit` / `C_DecryptInit`.
    pub fn cipher_init(
        &self,
        h: SessionHandle,
        direction: Direction,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        let u = match direction {
            Direction::Encrypt => &ENCRYPT,
            Direction::Decrypt => &DECRYPT,
        };
        self.start(
            h,
            Self::slot_for(direction),
            Want {
                key,
                mechanism,
                usage: u,
            },
            |s, o, material, quick| {
                if direction == Direction::Encrypt
                    && matches!(mechanism, Mechanism::Aes(craton_core::aes::AesMode::Gcm(_)))
                    && !Self::spend_gcm(o)
                {
                    // Drawing more invocations may sync the store or the audit log: not
                    // under the session shard's lock.
                    if quick {
                        return Ok(None);
                    }
                    self.draw_and_spend_gcm(s, o)?;
                }
                let ctx = CipherContext::new(mechanism, material, direction, &self.rng)?;
                let needs_login = direction == Direction::Decrypt && o.flag(A::ALWAYS_AUTHENTICATE);
                Ok(Some((ctx, needs_login)))
            },
        )
    }

    /// An upper bound of the output of a one-shot `cipher` over `input_len` bytes.
    pub fn cipher_len(
        &self,
        h: SessionHandle,
        direction: Direction,
        input_len: usize,
    ) -> Result<usize> {
        self.peek(h, Self::slot_for(direction), |c| c.one_shot_len(input_len))
    }

    /// An upper bound of the output of `cipher_update` over `input_len` more bytes.
    pub fn cipher_update_len(
        &self,
        h: SessionHandle,
        direction: Direction,
        input_len: usize,
    ) -> Result<usize> {
        self.peek(h, Self::slot_for(direction), |c| c.update_len(input_len))
    }

    /// An upper bound of the output of `cipher_final`.
    pub fn cipher_final_len(&self, h: SessionHandle, direction: Direction) -> Result<usize> {
        self.peek(h, Self::slot_for(direction), CipherContext::finish_len)
    }

    /// The IV a module-generated AES-GCM encryption chose (to return in the caller's
    /// `CK_GCM_PARAMS`).
    pub fn generated_iv(&self, h: SessionHandle) -> Result<Option<Vec<u8>>> {
        self.peek(h, |o| &mut o.encrypt, |c| c.gcm_iv().map(<[u8]>::to_vec))
    }

    /// `C_Encrypt` / `C_Decrypt`: the whole input in one call; ends the operation. The
    /// output is wiped when dropped (it is plaintext when decrypting); see
    /// [`Hsm::encrypt`] for ciphertext that need not be.
    pub fn cipher(
        &self,
        h: SessionHandle,
        direction: Direction,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.take(h, Self::slot_for(direction))?;
        let out = r.ctx.one_shot(input);
        self.audit_end(h, Self::direction_name(direction), r.tag, out.is_ok())?;
        Ok(out?)
    }

    /// `C_Encrypt` / `C_Decrypt` into the caller's buffer `out`, returning the length written.
    /// A buffer shorter than the output's upper bound is refused with
    /// `CryptoError::BufferTooSmall` carrying that bound, and the operation stays, as the
    /// two-call convention requires; otherwise the operation ends. The session is visited
    /// once, and ciphertext is written straight into `out`; plaintext only after the whole of
    /// it has been checked.
    pub fn cipher_into(
        &self,
        h: SessionHandle,
        direction: Direction,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let r = self.with_session(h, |s| {
            self.take_if(s, Self::slot_for(direction), false, |c| {
                fits(out, c.one_shot_len(input.len()))
            })
        })?;
        let written = r.ctx.one_shot_into(input, out);
        self.audit_end(h, Self::direction_name(direction), r.tag, written.is_ok())?;
        Ok(written?)
    }

    /// `C_Encrypt`: like [`Hsm::cipher`] in the encrypt direction, returning the ciphertext as
    /// a plain vector (wiping ciphertext on every call would only cost time).
    pub fn encrypt(&self, h: SessionHandle, input: &[u8]) -> Result<Vec<u8>> {
        let mut out = self.cipher(h, Direction::Encrypt, input)?;
        Ok(std::mem::take(&mut *out))
    }

    /// `C_EncryptUpdate` / `C_DecryptUpdate`.
    pub fn cipher_update(
        &self,
        h: SessionHandle,
        direction: Direction,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.step(h, Self::slot_for(direction), |ctx| {
            let mut out = Zeroizing::new(Vec::with_capacity(ctx.update_len(input.len())));
            ctx.update(input, &mut out)?;
            Ok(out)
        })
    }

    /// `C_EncryptFinal` / `C_DecryptFinal`.
    pub fn cipher_final(
        &self,
        h: SessionHandle,
        direction: Direction,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.take(h, Self::slot_for(direction))?;
        let mut out = Zeroizing::new(Vec::with_capacity(r.ctx.finish_len()));
        let res = r.ctx.finish(&mut out);
        self.audit_end(h, Self::direction_name(direction), r.tag, res.is_ok())?;
        res?;
        Ok(out)
    }

    /// Counts one AES-GCM encryption under `o` against `security.gcm_invocation_limit`
    /// (SP 800-38D §8.3): warns from 90%, refuses at the limit. Token keys reserve counts in
    /// the store in blocks, so a restart never reuses an invocation. Each copy of
    /// the key (a session's private copy, or the token's) draws invocations from the key's
    /// shared count in blocks (one at a time for small limits, at most 256 under the default
    /// 2^32) and spends them with one atomic step, so threads encrypting under one key in
    /// their own sessions rarely touch the shared count. An invocation drawn and not spent
    /// counts as used: the limit is never exceeded.
    fn count_gcm(&self, s: &Session, o: &Object) -> Result<()> {
        if Self::spend_gcm(o) {
            return Ok(());
        }
        self.draw_and_spend_gcm(s, o)
    }

    /// Spends an invocation this copy of the key has drawn, if one is left (one atomic step,
    /// no lock, no I/O).
    fn spend_gcm(o: &Object) -> bool {
        use std::sync::atomic::Ordering::{AcqRel, Relaxed};
        o.gcm_budget
            .fetch_update(AcqRel, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Draws a block of invocations for this copy of the key and spends one of them. May
    /// write the store (a token key's next reservation) and the audit log (warnings).
    fn draw_and_spend_gcm(&self, s: &Session, o: &Object) -> Result<()> {
        use std::sync::atomic::Ordering::AcqRel;
        let limit = self.config.security.gcm_invocation_limit;
        let block = (limit >> 24).clamp(1, 256);
        let drawn = self.draw_gcm(s, o, block)?;
        o.gcm_budget.fetch_add(drawn - 1, AcqRel);
        Ok(())
    }

    /// Draws up to `want` invocations from the key's shared count (fewer near the limit),
    /// persisting the reservation first for token keys, and emits the warnings and refusal.
    fn draw_gcm(&self, s: &Session, o: &Object, want: u64) -> Result<u64> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
        let limit = self.config.security.gcm_invocation_limit;
        let g = &*o.gcm;
        let slow = || g.slow.lock().map_err(|_| HsmError::OperationNotInitialized);
        if !g.loaded.load(Acquire) {
            let _guard = slow()?;
            if !g.loaded.load(Acquire) {
                if o.is_token() {
                    let stored = self.store.gcm_reserved(o.handle)?;
                    g.used.store(stored, Relaxed);
                    g.reserved.store(stored, Relaxed);
                }
                g.loaded.store(true, Release);
            }
        }
        let event = |used, refused| Event::GcmInvocations {
            slot: s.slot as u64,
            key: o.handle,
            used,
            limit,
            refused,
        };
        let (before, after) = loop {
            let used = g.used.load(Acquire);
            if used >= limit {
                self.emit(event(used, true))?;
                return Err(not_permitted(
                    "the key reached its AES-GCM invocation limit",
                ));
            }
            let after = used + want.min(limit - used);
            if o.is_token() && after > g.reserved.load(Acquire) {
                // Persist the next block before any invocation in it is handed out, so a
                // crash never forgets a used invocation.
                let _guard = slow()?;
                let reserved = g.reserved.load(Acquire);
                if after > reserved {
                    let block = (limit / 100).clamp(1, 4096);
                    let upto = (used + block).max(after).min(limit);
                    self.store.reserve_gcm(o.handle, upto)?;
                    g.reserved.store(upto, Release);
                }
                continue;
            }
            if g.used
                .compare_exchange_weak(used, after, AcqRel, Relaxed)
                .is_ok()
            {
                break (used, after);
            }
        };
        // From 90% on, warn at every whole percent crossed (and on reaching the limit).
        let step = (limit / 100).max(1);
        let at_or_above = |n: u64| n.saturating_mul(10) >= limit.saturating_mul(9);
        if at_or_above(after)
            && (!at_or_above(before) || after / step != before / step || after == limit)
        {
            self.emit(event(after, false))?;
        }
        Ok(after - before)
    }

    // ---- digests ----

    /// `C_DigestInit`.
    pub fn digest_init(&self, h: SessionHandle, mechanism: &Mechanism) -> Result<()> {
        self.check_module()?;
        let s = self.session(h)?;
        let Mechanism::Digest(alg) = mechanism else {
            return Err(
                craton_core::CryptoError::MechanismUnsupported(mechanism.mechanism_type()).into(),
            );
        };
        self.registry
            .check(mechanism.mechanism_type(), Operations::DIGEST, None)?;
        let mut ops = self.lock_ops(&s)?;
        if ops.digest.is_some() {
            return Err(HsmError::OperationActive);
        }
        ops.digest = Some(DigestContext::new(*alg)?);
        Ok(())
    }

    /// The digest length of the active digest.
    pub fn digest_len(&self, h: SessionHandle) -> Result<usize> {
        let s = self.session(h)?;
        let ops = self.lock_ops(&s)?;
        let d = ops
            .digest
            .as_ref()
            .ok_or(HsmError::OperationNotInitialized)?;
        Ok(d.alg().output_len())
    }

    /// `C_Digest`.
    pub fn digest(&self, h: SessionHandle, data: &[u8]) -> Result<Vec<u8>> {
        let s = self.session(h)?;
        let mut d = self
            .lock_ops(&s)?
            .digest
            .take()
            .ok_or(HsmError::OperationNotInitialized)?;
        d.update(data);
        Ok(d.finish())
    }

    /// `C_Digest` into the caller's buffer `out`, returning the digest's length: one visit
    /// to the session checks the buffer (too short: `CryptoError::BufferTooSmall`, and the
    /// operation stays) and takes the operation.
    pub fn digest_into(&self, h: SessionHandle, data: &[u8], out: &mut [u8]) -> Result<usize> {
        let mut d = self.with_session(h, |s| {
            let mut ops = self.lock_ops(s)?;
            match &ops.digest {
                Some(d) => fits(out, d.alg().output_len())?,
                None => return Err(HsmError::OperationNotInitialized),
            }
            match ops.digest.take() {
                Some(d) => Ok(d),
                None => Err(HsmError::OperationNotInitialized),
            }
        })?;
        d.update(data);
        put(out, &d.finish())
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&self, h: SessionHandle, data: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        ops.digest
            .as_mut()
            .ok_or(HsmError::OperationNotInitialized)?
            .update(data);
        Ok(())
    }

    /// `C_DigestKey`: feeds a secret key's value into the digest. Sensitive keys are refused:
    /// a digest of a sensitive key is an oracle for guessing it.
    pub fn digest_key(&self, h: SessionHandle, key: ObjectHandle) -> Result<()> {
        let s = self.session(h)?;
        let o = self.object(&s, key, HsmError::KeyHandleInvalid)?;
        if o.class() != ObjectClass::SECRET_KEY || o.flag(A::SENSITIVE) {
            return Err(HsmError::KeyIndigestible(
                "only non-sensitive secret keys can be digested",
            ));
        }
        let material = o.material()?;
        let value = material
            .secret_value()
            .ok_or(HsmError::KeyIndigestible("not a secret key"))?;
        let mut ops = self.lock_ops(&s)?;
        ops.digest
            .as_mut()
            .ok_or(HsmError::OperationNotInitialized)?
            .update(value.expose());
        Ok(())
    }

    /// `C_DigestFinal`.
    pub fn digest_final(&self, h: SessionHandle) -> Result<Vec<u8>> {
        let s = self.session(h)?;
        let d = self
            .lock_ops(&s)?
            .digest
            .take()
            .ok_or(HsmError::OperationNotInitialized)?;
        Ok(d.finish())
    }

    // ---- key wrapping, derivation, KEM ----

    /// The checks `C_WrapKey` makes before wrapping anything, and the bytes it would wrap.
    fn prepare_wrap(
        &self,
        s: &Session,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<Wrap> {
        let (w, wkey) = self
            .usable_key(s, wrapping, mechanism, &WRAP)
            .map_err(|e| match e {
                HsmError::KeyHandleInvalid => HsmError::WrappingKeyHandleInvalid,
                HsmError::Crypto(craton_core::CryptoError::KeyTypeInconsistent { .. }) => {
                    HsmError::WrappingKeyTypeInconsistent
                }
                e => e,
            })?;
        let t = self.object(s, target, HsmError::KeyHandleInvalid)?;
        if !t.flag(A::EXTRACTABLE) {
            return Err(HsmError::KeyUnextractable(
                "the key's CKA_EXTRACTABLE is false",
            ));
        }
        if t.flag(A::WRAP_WITH_TRUSTED) && !w.flag(A::TRUSTED) {
            return Err(HsmError::KeyUnextractable(
                "the key may only be wrapped by a CKA_TRUSTED key",
            ));
        }
        let tkey = t.material()?;
        if wkey.security_bits() < tkey.security_bits() {
            return Err(HsmError::WrappingKeyTooWeak);
        }
        // Secret keys wrap as their value, private keys as PKCS#8.
        let bytes = match tkey.secret_value() {
            Some(v) => Zeroizing::new(v.expose().to_vec()),
            None if t.class() == ObjectClass::PRIVATE_KEY => tkey
                .to_pkcs8()
                .map_err(|_| HsmError::KeyUnextractable("this key type cannot be wrapped"))?,
            None => return Err(HsmError::KeyUnextractable("public keys are not wrapped")),
        };
        Ok(Wrap {
            wrapping: w,
            material: wkey,
            bytes,
        })
    }

    /// `C_WrapKey`: the wrapped bytes of `target` under `wrapping`. Audited.
    pub fn wrap_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<Vec<u8>> {
        self.check_module()?;
        let s = self.session(h)?;
        self.wrap_in(&s, mechanism, wrapping, target)
    }

    /// Wraps after [`Self::prepare_wrap`]'s checks; an AES-GCM wrap counts against the
    /// wrapping key's invocation limit like any other GCM encryption.
    fn wrap_in(
        &self,
        s: &Session,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<Vec<u8>> {
        let w = self.prepare_wrap(s, mechanism, wrapping, target)?;
        if matches!(mechanism, Mechanism::Aes(craton_core::aes::AesMode::Gcm(_))) {
            self.count_gcm(s, &w.wrapping)?;
        }
        let out = ops::wrap_key(mechanism, &w.material, &w.bytes, &self.rng);
        self.audit_op(
            s,
            "wrap",
            mechanism.mechanism_type(),
            wrapping.0,
            out.is_ok(),
        )?;
        Ok(out?)
    }

    /// `C_WrapKeyAuthenticated` (PKCS#11 3.2): wraps `target` with AES-GCM under an IV the
    /// module generates (the mechanism's IV must be [`craton_core::aes::GcmIv::Generate`];
    /// its AAD is bound to the wrapped key). Returns the wrapped key with the tag at its end,
    /// and the IV, which the unwrapping side needs.
    pub fn wrap_key_authenticated(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<MessageOutput> {
        use craton_core::aes::{AesMode, GcmIv};
        self.check_module()?;
        let s = self.session(h)?;
        let Mechanism::Aes(AesMode::Gcm(p)) = mechanism else {
            return Err(
                craton_core::CryptoError::MechanismUnsupported(mechanism.mechanism_type()).into(),
            );
        };
        if !matches!(p.iv, GcmIv::Generate { .. }) {
            return Err(craton_core::CryptoError::MechanismParamInvalid(
                "an authenticated wrap uses an IV the module generates",
            )
            .into());
        }
        let mut p = p.clone();
        let iv = p.iv.resolve(Direction::Encrypt, &self.rng)?;
        p.iv = GcmIv::Given(iv.clone());
        let data = self.wrap_in(&s, &Mechanism::Aes(AesMode::Gcm(p)), wrapping, target)?;
        Ok(MessageOutput {
            data: Zeroizing::new(data),
            iv: Some(iv),
        })
    }

    /// The length of the wrapped key [`Hsm::wrap_key_authenticated`] returns, without its
    /// tag, after the same checks and without wrapping.
    pub fn wrap_key_authenticated_len(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<usize> {
        self.check_module()?;
        let s = self.session(h)?;
        Ok(self
            .prepare_wrap(&s, mechanism, wrapping, target)?
            .bytes
            .len())
    }

    /// The length [`Hsm::wrap_key`] would return, after the same checks, without wrapping
    /// (so a `C_WrapKey` length query neither wraps nor is audited as a wrap).
    pub fn wrap_key_len(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<usize> {
        self.check_module()?;
        let s = self.session(h)?;
        let w = self.prepare_wrap(&s, mechanism, wrapping, target)?;
        Ok(ops::wrapped_len(
            mechanism,
            &w.material,
            w.bytes.len(),
            &self.rng,
        )?)
    }

    /// `C_UnwrapKey`: a secret key, or (with `CKA_CLASS` `CKO_PRIVATE_KEY` in the template) a
    /// private key from PKCS#8. The new key is always sensitive (see the module docs of
    /// `objects.rs`).
    pub fn unwrap_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        unwrapping: ObjectHandle,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<ObjectHandle> {
        self.check_module()?;
        let s = self.session(h)?;
        let (_, ukey) = self
            .usable_key(&s, unwrapping, mechanism, &UNWRAP)
            .map_err(|e| match e {
                HsmError::KeyHandleInvalid => HsmError::UnwrappingKeyHandleInvalid,
                HsmError::Crypto(craton_core::CryptoError::KeyTypeInconsistent { .. }) => {
                    HsmError::UnwrappingKeyTypeInconsistent
                }
                e => e,
            })?;
        let value = ops::unwrap_key(mechanism, &ukey, wrapped, &self.rng);
        self.audit_op(
            &s,
            "unwrap",
            mechanism.mechanism_type(),
            unwrapping.0,
            value.is_ok(),
        )?;
        let value = value?;
        self.insert_derived_secret(
            &s,
            NewSecret {
                template,
                value: &value,
                inherit_from: None,
                force_sensitive: true,
                mechanism: mechanism.mechanism_type(),
                origin: KeyOrigin::Unwrapped,
            },
        )
    }

    /// `C_DeriveKey`: ECDH (`CKD_NULL`), X25519 and HKDF into a secret key that inherits the
    /// base key's sensitivity and extractability.
    pub fn derive_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        base: ObjectHandle,
        template: &Template,
    ) -> Result<ObjectHandle> {
        self.check_module()?;
        let s = self.session(h)?;
        let (b, bkey) = self.usable_key(&s, base, mechanism, &DERIVE)?;
        let len = template.iter().find_map(|(a, v)| match (a, v) {
            (&A::VALUE_LEN, AttrValue::Ulong(l)) => Some(*l as usize),
            _ => None,
        });
        let key_type = template.iter().find_map(|(a, v)| match (a, v) {
            (&A::KEY_TYPE, AttrValue::Ulong(k)) => Some(KeyType(*k)),
            _ => None,
        });
        if key_type == Some(KeyType::AES) && len.is_none() {
            return Err(AttributeError::Incomplete(A::VALUE_LEN).into());
        }
        let value = ops::derive(mechanism, &bkey, len);
        self.audit_op(
            &s,
            "derive",
            mechanism.mechanism_type(),
            base.0,
            value.is_ok(),
        )?;
        let value = value?;
        self.insert_derived_secret(
            &s,
            NewSecret {
                template,
                value: &value,
                inherit_from: Some(&b),
                force_sensitive: false,
                mechanism: mechanism.mechanism_type(),
                origin: KeyOrigin::Derived,
            },
        )
    }

    /// `C_EncapsulateKey` (PKCS#11 3.2): ML-KEM to a public key; returns the ciphertext and
    /// the handle of the new shared-secret key.
    pub fn encapsulate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public: ObjectHandle,
        template: &Template,
    ) -> Result<(Vec<u8>, ObjectHandle)> {
        self.check_module()?;
        let s = self.session(h)?;
        let (_, pkey) = self.usable_key(&s, public, mechanism, &ENCAPSULATE)?;
        let out = ops::encapsulate(&pkey);
        self.audit_op(
            &s,
            "encapsulate",
            mechanism.mechanism_type(),
            public.0,
            out.is_ok(),
        )?;
        let (ct, secret) = out?;
        let handle = self.insert_derived_secret(
            &s,
            NewSecret {
                template,
                value: &secret,
                inherit_from: None,
                force_sensitive: false,
                mechanism: mechanism.mechanism_type(),
                origin: KeyOrigin::Derived,
            },
        )?;
        Ok((ct, handle))
    }

    /// The length of the ciphertext [`Hsm::encapsulate_key`] would return, after the same
    /// checks, without encapsulating (a `C_EncapsulateKey` length query creates no key).
    pub fn encapsulate_key_len(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public: ObjectHandle,
    ) -> Result<usize> {
        self.check_module()?;
        let s = self.session(h)?;
        let (_, pkey) = self.usable_key(&s, public, mechanism, &ENCAPSULATE)?;
        Ok(ops::encapsulated_len(&pkey)?)
    }

    /// `C_DecapsulateKey` (PKCS#11 3.2). Like the key `C_EncapsulateKey` makes, the shared
    /// secret is not "always sensitive": the encapsulating side has known it. (ML-KEM stays
    /// secure against a caller who decapsulates chosen ciphertexts, so the secret need not
    /// inherit the private key's sensitivity.)
    pub fn decapsulate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        private: ObjectHandle,
        ciphertext: &[u8],
        template: &Template,
    ) -> Result<ObjectHandle> {
        self.check_module()?;
        let s = self.session(h)?;
        let (_, pkey) = self.usable_key(&s, private, mechanism, &DECAPSULATE)?;
        let out = ops::decapsulate(&pkey, ciphertext);
        self.audit_op(
            &s,
            "decapsulate",
            mechanism.mechanism_type(),
            private.0,
            out.is_ok(),
        )?;
        let secret = out?;
        self.insert_derived_secret(
            &s,
            NewSecret {
                template,
                value: &secret,
                inherit_from: None,
                force_sensitive: false,
                mechanism: mechanism.mechanism_type(),
                origin: KeyOrigin::Derived,
            },
        )
    }
}

/// What a wrap needs once its checks pass: the wrapping key, its material, and the bytes
/// to wrap.
struct Wrap {
    wrapping: Arc<Object>,
    material: Arc<KeyMaterial>,
    bytes: Zeroizing<Vec<u8>>,
}

/// The longest signature `C_VerifySignatureInit` accepts: above the largest any mechanism
/// makes (SLH-DSA-256f, 49 856 bytes), so a longer one is refused before it is stored.
const MAX_SIGNATURE_LEN: usize = 64 << 10;

/// How many saved operation states the engine keeps; older ones are forgotten.
const MAX_SAVED_STATES: usize = 256;
const STATE_MAGIC: &[u8; 8] = b"CRTNOPS1";

/// Operation states saved by `C_GetOperationState`: the blob handed out is a random,
/// unguessable reference to a copy kept here, so no key or intermediate value ever leaves
/// the module.
#[derive(Default)]
pub(crate) struct SavedStates {
    entries: std::collections::VecDeque<([u8; 16], SavedState)>,
}

pub(crate) struct SavedState {
    slot: usize,
    user_logged_in: bool,
    ops: SessionOps,
}

impl Hsm {
    /// `C_GetOperationState`: an opaque blob that `set_operation_state` accepts in any
    /// session of the same token while this engine runs.
    pub fn operation_state(&self, h: SessionHandle) -> Result<Vec<u8>> {
        let s = self.session(h)?;
        let snapshot = {
            let ops = self.lock_ops(&s)?;
            if ops.is_idle() {
                return Err(HsmError::OperationNotInitialized);
            }
            ops.snapshot()?
        };
        let user_logged_in = self.read_token(s.slot)?.login_of(s.app) == crate::hsm::Login::User;
        let mut id = [0u8; 16];
        self.rng
            .fill(&mut id)
            .map_err(craton_core::CryptoError::Rng)?;
        let mut saved = self
            .saved_states
            .lock()
            .map_err(|_| HsmError::OperationNotInitialized)?;
        if saved.entries.len() >= MAX_SAVED_STATES {
            saved.entries.pop_front();
        }
        saved.entries.push_back((
            id,
            SavedState {
                slot: s.slot,
                user_logged_in,
                ops: snapshot,
            },
        ));
        let mut blob = STATE_MAGIC.to_vec();
        blob.extend_from_slice(&(s.slot as u64).to_le_bytes());
        blob.extend_from_slice(&id);
        Ok(blob)
    }

    /// The length of every blob [`Hsm::operation_state`] returns.
    pub const OPERATION_STATE_LEN: usize = 32;

    /// `C_SetOperationState`: replaces the session's operations with a saved copy. The saved
    /// state must come from this token, and one saved while the user was logged in needs the
    /// user logged in now.
    pub fn set_operation_state(&self, h: SessionHandle, blob: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        if blob.len() != Self::OPERATION_STATE_LEN || &blob[..8] != STATE_MAGIC {
            return Err(HsmError::SavedStateInvalid);
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&blob[16..]);
        let restored = {
            let saved = self
                .saved_states
                .lock()
                .map_err(|_| HsmError::SavedStateInvalid)?;
            let (_, state) = saved
                .entries
                .iter()
                .find(|(k, _)| *k == id)
                .ok_or(HsmError::SavedStateInvalid)?;
            if state.slot != s.slot {
                return Err(HsmError::SavedStateInvalid);
            }
            if state.user_logged_in
                && self.read_token(s.slot)?.login_of(s.app) != crate::hsm::Login::User
            {
                return Err(HsmError::UserNotLoggedIn);
            }
            state.ops.snapshot()?
        };
        let mut ops = self.lock_ops(&s)?;
        let find = ops.find.take();
        let keys = std::mem::take(&mut ops.keys);
        *ops = restored;
        ops.find = find;
        ops.keys = keys;
        Ok(())
    }
}
