//! Objects: creation from templates, key generation, attribute reads and changes, copy,
//! destroy and search, with the visibility and write rules of PKCS#11 and the key-management
//! rules that defeat the known API attacks (see [`crate::hsm`] for locking).
//!
//! The key-management rules, each with a test named after the attack it stops:
//! - a key may not both wrap and decrypt, or unwrap and encrypt (the wrap-then-decrypt
//!   attack), unless `security.allow_dual_use_wrapping_keys` says otherwise;
//! - an unwrapped key is always sensitive (unwrapping as non-sensitive would reveal a key
//!   that was sensitive when wrapped);
//! - a key derived from a sensitive or unextractable base inherits that;
//! - a weaker key may not wrap a stronger one, and a `CKA_WRAP_WITH_TRUSTED` key only under a
//!   `CKA_TRUSTED` key;
//! - `CKA_SENSITIVE` only becomes true, `CKA_EXTRACTABLE` only false.

use crate::error::{HsmError, Result};
use crate::event::{Event, KeyOrigin};
use crate::hsm::{Hsm, Login, ObjectHandle, Session, SessionHandle, Token};
use crate::persist::{StoredObject, is_private};
use craton_core::attribute::{
    self, AttrValue, AttributeError, AttributeType as A, Attributes, ObjectClass,
};
use craton_core::ec::Curve;
use craton_core::key::{Generated, KeyMaterial, KeySpec};
use craton_core::ops::Mechanism;
use craton_core::pq::{MlDsaParams, MlKemParams, SlhDsaParams};
use craton_core::{KeyType, MechanismType as M, Operations};
use std::sync::{Arc, OnceLock};

/// The session that created a session object (which destroys it on closing) and its
/// application (whose sessions may all use it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) session: u64,
    pub(crate) app: crate::hsm::Application,
}

/// The error for `CKA_EC_PARAMS` naming no curve this mechanism generates: a well-formed
/// name of another curve (Ed448, say) is `CurveNotSupported`, anything else an invalid value.
fn unknown_curve(params: &[u8]) -> HsmError {
    if craton_core::ec::names_a_curve(params) {
        HsmError::Crypto(craton_core::CryptoError::CurveNotSupported)
    } else {
        AttributeError::ValueInvalid(A::EC_PARAMS).into()
    }
}

/// A template: attribute values as the caller gave them.
pub type Template = [(A, AttrValue)];

/// One object in memory.
pub struct Object {
    pub(crate) handle: u64,
    pub(crate) attrs: Attributes,
    /// The owning session of a session object.
    pub(crate) session: Option<Owner>,
    /// A public key object whose secret part is sealed and the user is not logged in.
    pub(crate) secret_closed: bool,
    /// `CKA_CLASS`, read once.
    class: ObjectClass,
    /// Whether `CKA_START_DATE` or `CKA_END_DATE` is set (most keys have neither, and then
    /// the clock is never read).
    dated: bool,
    material: OnceLock<std::result::Result<Arc<KeyMaterial>, craton_core::CryptoError>>,
    /// AES-GCM encryptions under this key, shared by every copy of this object in memory.
    pub(crate) gcm: Arc<GcmCounter>,
    /// AES-GCM invocations drawn from `gcm` for this copy of the key and not spent yet. A
    /// session's private copy spends them without a lock; dropping a copy forgets its unspent
    /// draws, which stay counted as used.
    pub(crate) gcm_budget: std::sync::atomic::AtomicU64,
}

/// The keys a session used lately, valid while the token's generation stays at
/// `generation`. A key's first use in a session shares the token's copy of it; from its
/// second use on, the session has a private copy (its own attributes and its own key
/// material), so threads working in their own sessions with one key never write a cache line
/// in common (reference counts, AWS-LC's per-key state). The GCM invocation counter stays
/// shared: it belongs to the key, not to a copy.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    generation: u64,
    entries: Vec<CachedKey>,
}

#[derive(Debug)]
pub(crate) struct CachedKey {
    handle: u64,
    pub(crate) object: Arc<Object>,
    private: bool,
    /// The mechanism and use this key last passed the engine's key checks for (class,
    /// mechanism policy, key type and size, usage attribute). They read only the key's
    /// attributes and the fixed mechanism registry, so they hold while the generation does.
    pub(crate) checked: Option<(M, Operations)>,
}

/// How many keys a session keeps; past that the cache starts over.
const KEY_CACHE: usize = 16;

impl KeyCache {
    /// Where key `handle` is cached, if the cache is of `generation` (else it starts over);
    /// a shared entry seen a second time becomes private.
    #[inline]
    fn position(&mut self, generation: u64, handle: u64) -> Option<usize> {
        if self.generation != generation {
            self.start_over(generation);
            return None;
        }
        let i = self.entries.iter().position(|e| e.handle == handle)?;
        if !self.entries[i].private {
            self.make_private(i);
        }
        Some(i)
    }

    /// Forgets every entry: the token changed since they were looked up. Off the hit path.
    #[cold]
    fn start_over(&mut self, generation: u64) {
        self.entries.clear();
        self.generation = generation;
    }

    /// Gives entry `i` a copy of its own (its second use). Off the hit path.
    #[cold]
    fn make_private(&mut self, i: usize) {
        let e = &mut self.entries[i];
        e.object = Arc::new(e.object.session_copy());
        e.private = true;
    }

    /// Remembers the token's copy of a key (looked up at the cache's generation).
    fn put(&mut self, handle: u64, object: Arc<Object>) -> usize {
        if self.entries.len() >= KEY_CACHE {
            self.entries.clear();
        }
        self.entries.push(CachedKey {
            handle,
            object,
            private: false,
            checked: None,
        });
        self.entries.len() - 1
    }
}

/// AES-GCM invocations of one key: used, and (for token keys) reserved in the store. Counting
/// one is a compare-and-swap on `used`; the mutex serialises only loading the count from the
/// store and moving the reservation forward, once per block of invocations.
#[derive(Debug, Default)]
pub(crate) struct GcmCounter {
    pub(crate) used: std::sync::atomic::AtomicU64,
    pub(crate) reserved: std::sync::atomic::AtomicU64,
    pub(crate) loaded: std::sync::atomic::AtomicBool,
    pub(crate) slow: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("handle", &self.handle)
            .field("class", &self.attrs.get(&A::CLASS))
            .finish_non_exhaustive()
    }
}

impl Object {
    pub(crate) fn stored(o: StoredObject) -> Object {
        let mut obj = Object::new(o.id, o.attrs, None);
        obj.secret_closed = o.secret_closed;
        obj
    }

    fn new(handle: u64, mut attrs: Attributes, session: Option<Owner>) -> Object {
        // CKA_UNIQUE_ID (PKCS#11 3.0): the handle, which is never reused for another object
        // (token object ids come from a persistent counter, session handles from their own).
        attrs.insert(
            A::UNIQUE_ID,
            AttrValue::Bytes(handle.to_string().into_bytes()),
        );
        let class = match attrs.get(&A::CLASS) {
            Some(AttrValue::Ulong(c)) => ObjectClass(*c),
            _ => ObjectClass(u64::MAX),
        };
        if matches!(class, ObjectClass::SECRET_KEY | ObjectClass::PRIVATE_KEY) {
            lock_secret_parts(&mut attrs);
        }
        let dated = [A::START_DATE, A::END_DATE]
            .iter()
            .any(|a| matches!(attrs.get(a), Some(AttrValue::Date(Some(_)))));
        Object {
            handle,
            attrs,
            session,
            secret_closed: false,
            class,
            dated,
            material: OnceLock::new(),
            gcm: Arc::default(),
            gcm_budget: Default::default(),
        }
    }

    pub(crate) fn class(&self) -> ObjectClass {
        self.class
    }

    /// A copy for one session: the same attributes and GCM counter, its key material built
    /// afresh (so it shares nothing with the token's copy but the counter).
    pub(crate) fn session_copy(&self) -> Object {
        Object {
            handle: self.handle,
            attrs: self.attrs.clone(),
            session: self.session,
            secret_closed: self.secret_closed,
            class: self.class,
            dated: self.dated,
            material: OnceLock::new(),
            gcm: self.gcm.clone(),
            gcm_budget: Default::default(),
        }
    }

    /// Whether the key may be used now, by its start and end dates.
    pub(crate) fn within_dates(&self) -> bool {
        !self.dated || within_dates(&self.attrs)
    }

    pub(crate) fn flag(&self, a: A) -> bool {
        matches!(self.attrs.get(&a), Some(AttrValue::Bool(true)))
    }

    pub(crate) fn is_token(&self) -> bool {
        self.session.is_none()
    }

    /// The usable key, built once from the attributes and shared by every operation.
    pub(crate) fn material(&self) -> Result<Arc<KeyMaterial>> {
        if self.secret_closed {
            return Err(HsmError::UserNotLoggedIn);
        }
        self.material
            .get_or_init(|| KeyMaterial::from_attributes(self.class(), &self.attrs).map(Arc::new))
            .clone()
            .map_err(HsmError::Crypto)
    }
}

/// Moves a key's secret parts (`CKA_VALUE`, the private components) from the heap to locked,
/// dump-excluded pages; the heap copies are wiped as they drop. An object keeps its secrets
/// only there, for as long as it lives.
fn lock_secret_parts(attrs: &mut Attributes) {
    // Its own values only: the class's defaults hold no key material, and `iter_mut` would
    // copy them into the object.
    for (a, v) in attrs.own_values_mut() {
        if let AttrValue::Bytes(b) = v
            && (*a == A::VALUE || a.is_secret_component())
        {
            *v = AttrValue::secret(b);
        }
    }
}

fn to_map(template: &Template) -> Result<Attributes> {
    attribute::check_kinds(template)?;
    let mut map = Attributes::new();
    for (a, v) in template {
        if map.insert(*a, v.clone()).is_some_and(|old| old != *v) {
            return Err(AttributeError::Inconsistent(*a).into());
        }
    }
    Ok(map)
}

fn ulong(attrs: &Attributes, a: A) -> Option<u64> {
    match attrs.get(&a) {
        Some(AttrValue::Ulong(v)) => Some(*v),
        _ => None,
    }
}

fn bytes(attrs: &Attributes, a: A) -> Option<&[u8]> {
    attrs.get(&a).and_then(AttrValue::as_bytes)
}

fn flag(attrs: &Attributes, a: A) -> bool {
    matches!(attrs.get(&a), Some(AttrValue::Bool(true)))
}

/// Attributes the token sets and a template may not.
fn refuse_token_managed(template: &Attributes) -> Result<()> {
    for a in template.keys() {
        if attribute::token_managed(*a) {
            return Err(AttributeError::ReadOnly(*a).into());
        }
    }
    Ok(())
}

/// The attributes that say what a key may be used for.
const USAGE: [A; 11] = [
    A::ENCRYPT,
    A::DECRYPT,
    A::SIGN,
    A::VERIFY,
    A::SIGN_RECOVER,
    A::VERIFY_RECOVER,
    A::WRAP,
    A::UNWRAP,
    A::DERIVE,
    A::ENCAPSULATE,
    A::DECAPSULATE,
];

/// The usage a generated key gets when its template names none: what its type is for.
/// Applications such as Java's SunPKCS11 leave usage to the token, and a key that may do
/// nothing is useless to them. A template that names any usage attribute gets exactly what
/// it names (the rest default to false), and wrapping is never granted implicitly.
fn natural_usage(spec: KeySpec, class: ObjectClass) -> &'static [A] {
    let private = class != ObjectClass::PUBLIC_KEY;
    match spec {
        KeySpec::Aes { .. } => &[A::ENCRYPT, A::DECRYPT],
        KeySpec::GenericSecret { .. } => &[A::SIGN, A::VERIFY],
        KeySpec::Rsa { .. } if private => &[A::SIGN, A::DECRYPT],
        KeySpec::Rsa { .. } => &[A::VERIFY, A::ENCRYPT],
        KeySpec::Ec(_) | KeySpec::Ed25519 | KeySpec::MlDsa(_) | KeySpec::SlhDsa(_) if private => {
            &[A::SIGN]
        }
        KeySpec::Ec(_) | KeySpec::Ed25519 | KeySpec::MlDsa(_) | KeySpec::SlhDsa(_) => &[A::VERIFY],
        KeySpec::X25519 if private => &[A::DERIVE],
        KeySpec::X25519 => &[],
        KeySpec::MlKem(_) if private => &[A::DECAPSULATE],
        KeySpec::MlKem(_) => &[A::ENCAPSULATE],
    }
}

pub(crate) use crate::clock::today;

/// Whether the key is inside its `CKA_START_DATE`..=`CKA_END_DATE` window. Keys without
/// dates (the common case) never look at the clock.
pub(crate) fn within_dates(attrs: &Attributes) -> bool {
    let start = match attrs.get(&A::START_DATE) {
        Some(AttrValue::Date(Some(d))) => Some(d),
        _ => None,
    };
    let end = match attrs.get(&A::END_DATE) {
        Some(AttrValue::Date(Some(d))) => Some(d),
        _ => None,
    };
    if start.is_none() && end.is_none() {
        return true;
    }
    let now = today();
    start.is_none_or(|d| now >= *d) && end.is_none_or(|d| now <= *d)
}

fn key_type_for(spec: KeySpec) -> KeyType {
    spec.key_type()
}

/// The mechanism a key type is generated with (for `CKA_KEY_GEN_MECHANISM` checks).
fn class_of_generated(spec: KeySpec) -> ObjectClass {
    if spec.is_pair() {
        ObjectClass::PRIVATE_KEY
    } else {
        ObjectClass::SECRET_KEY
    }
}

/// A secret key made by unwrap, derive or a KEM, and the rules it inherits.
pub(crate) struct NewSecret<'a> {
    pub(crate) template: &'a Template,
    pub(crate) value: &'a [u8],
    /// The base key whose sensitivity and extractability the new key inherits.
    pub(crate) inherit_from: Option<&'a Object>,
    /// Unwrapped keys are always sensitive.
    pub(crate) force_sensitive: bool,
    pub(crate) mechanism: M,
    pub(crate) origin: KeyOrigin,
}

impl Hsm {
    /// Visibility: a session sees token objects and the session objects of its application,
    /// and private objects only while the user is logged in.
    pub(crate) fn visible(t: &Token, s: &Session, o: &Object) -> bool {
        o.session.is_none_or(|w| w.app == s.app)
            && (!o.flag(A::PRIVATE) || t.login_of(s.app) == Login::User)
    }

    /// A key for an operation of session `s`: from the session's cache while the token is
    /// unchanged, else looked up (and cached) like [`Hsm::object`].
    pub(crate) fn session_key<'c>(
        &self,
        s: &Session,
        cache: &'c mut KeyCache,
        h: ObjectHandle,
    ) -> Result<&'c mut CachedKey> {
        let i = match self.cached_index(s, cache, h) {
            Some(i) => i,
            None => {
                // The token's read lock is taken with the session's operations locked;
                // nothing takes them the other way round.
                let o = self.object(s, h, HsmError::KeyHandleInvalid)?;
                cache.put(h.0, o)
            }
        };
        Ok(&mut cache.entries[i])
    }

    /// [`Hsm::session_key`] without the look-up: the key if the session's cache holds it
    /// for the token's current generation. Takes no lock, so it may run under any.
    pub(crate) fn cached_key<'c>(
        &self,
        s: &Session,
        cache: &'c mut KeyCache,
        h: ObjectHandle,
    ) -> Option<&'c mut CachedKey> {
        let i = self.cached_index(s, cache, h)?;
        Some(&mut cache.entries[i])
    }

    /// Where the session's cache holds key `h`, if it is of the token's current generation.
    #[inline]
    fn cached_index(&self, s: &Session, cache: &mut KeyCache, h: ObjectHandle) -> Option<usize> {
        let generation = self.generations[s.slot]
            .0
            .load(std::sync::atomic::Ordering::Acquire);
        cache.position(generation, h.0)
    }

    /// The DER `SubjectPublicKeyInfo` of a public key, or of a private key's public half
    /// (what `craton-hsm key export-public` writes as PEM). A private key's material is
    /// needed for the latter, so it takes a logged-in user like any use of the key.
    pub fn public_key_info(&self, h: SessionHandle, object: ObjectHandle) -> Result<Vec<u8>> {
        self.check_module()?;
        let s = self.session(h)?;
        let o = self.object(&s, object, HsmError::ObjectHandleInvalid)?;
        if !matches!(
            o.class(),
            ObjectClass::PUBLIC_KEY | ObjectClass::PRIVATE_KEY
        ) {
            return Err(HsmError::KeyHandleInvalid);
        }
        let material = o.material()?;
        Ok(craton_core::spki::public_key_info(&material)?)
    }

    pub(crate) fn object(
        &self,
        s: &Session,
        h: ObjectHandle,
        missing: HsmError,
    ) -> Result<Arc<Object>> {
        let t = self.read_token(s.slot)?;
        match t.objects.get(&h.0) {
            Some(o) if Self::visible(&t, s, o) => Ok(o.clone()),
            _ => Err(missing),
        }
    }

    /// Write rules: token objects need a read/write session; private objects need the user.
    fn check_can_write(t: &Token, s: &Session, token_object: bool, private: bool) -> Result<()> {
        if token_object && !s.read_write {
            return Err(HsmError::SessionReadOnly);
        }
        if private && t.login_of(s.app) != Login::User {
            return Err(HsmError::UserNotLoggedIn);
        }
        Ok(())
    }

    /// The key-usage combinations this token refuses (see the module docs).
    fn check_key_usage(&self, attrs: &Attributes) -> Result<()> {
        if self.config.security.allow_dual_use_wrapping_keys {
            return Ok(());
        }
        if flag(attrs, A::WRAP) && flag(attrs, A::DECRYPT) {
            return Err(AttributeError::Inconsistent(A::DECRYPT).into());
        }
        if flag(attrs, A::UNWRAP) && flag(attrs, A::ENCRYPT) {
            return Err(AttributeError::Inconsistent(A::ENCRYPT).into());
        }
        Ok(())
    }

    /// Stores a new object (token objects in redb first, then in memory) and returns its
    /// handle.
    pub(crate) fn insert_object(&self, s: &Session, attrs: Attributes) -> Result<u64> {
        let private = is_private(&attrs);
        if !flag(&attrs, A::TOKEN) {
            // A session object is built before the token's lock is taken (a handle left
            // unused by a refusal is never handed out); under it, only the check that the
            // session may write it and the filing.
            let handle = self
                .next_session_object
                .0
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let owner = Owner {
                session: s.handle,
                app: s.app,
            };
            let object = Arc::new(Object::new(handle, attrs, Some(owner)));
            let mut t = self.write_token_adding(s.slot)?;
            Self::check_can_write(&t, s, false, private)?;
            t.objects.insert(handle, object);
            return Ok(handle);
        }
        let mut t = self.write_token_adding(s.slot)?;
        Self::check_can_write(&t, s, true, private)?;
        let needs_master = private
            || attrs
                .keys()
                .any(|a| crate::persist::is_secret_part(&attrs, *a));
        if needs_master && t.master.is_none() {
            return Err(HsmError::UserNotLoggedIn);
        }
        let handle = self
            .store
            .create_object(t.slot, &attrs, t.master.as_ref())?;
        t.objects
            .insert(handle, Arc::new(Object::new(handle, attrs, None)));
        Ok(handle)
    }

    /// `C_CreateObject`: data objects, certificates and imported keys. Imported key material
    /// is checked (a point must be on its curve, RSA components consistent).
    pub fn create_object(&self, h: SessionHandle, template: &Template) -> Result<ObjectHandle> {
        self.check_module()?;
        let s = self.session(h)?;
        let tpl = to_map(template)?;
        refuse_token_managed(&tpl)?;
        let class = ObjectClass(ulong(&tpl, A::CLASS).ok_or(AttributeError::Incomplete(A::CLASS))?);
        let mut attrs = tpl.over_defaults(class);
        match class {
            ObjectClass::DATA => {}
            ObjectClass::CERTIFICATE => {
                for a in [A::CERTIFICATE_TYPE, A::VALUE] {
                    if !attrs.contains_key(&a) {
                        return Err(AttributeError::Incomplete(a).into());
                    }
                }
            }
            ObjectClass::SECRET_KEY | ObjectClass::PUBLIC_KEY | ObjectClass::PRIVATE_KEY => {
                let key_type = KeyType(
                    ulong(&attrs, A::KEY_TYPE).ok_or(AttributeError::Incomplete(A::KEY_TYPE))?,
                );
                for a in attribute::required_for_import(class, key_type) {
                    if !attrs.contains_key(a) {
                        return Err(AttributeError::Incomplete(*a).into());
                    }
                }
                self.check_key_usage(&attrs)?;
                let material =
                    KeyMaterial::from_attributes(class, &attrs).map_err(|e| match e {
                        craton_core::CryptoError::KeyInvalid(_) => {
                            HsmError::Attribute(AttributeError::ValueInvalid(A::VALUE))
                        }
                        other => HsmError::Crypto(other),
                    })?;
                // Fill in what the key implies (CKA_MODULUS_BITS, CKA_VALUE_LEN, the public
                // values of a private key) without overriding what the caller gave.
                let implied = if class == ObjectClass::PUBLIC_KEY {
                    material.public_attributes()?
                } else {
                    material.private_attributes()?
                };
                attrs.fill_from(implied);
                attrs.insert(A::LOCAL, AttrValue::Bool(false));
                attrs.insert(A::KEY_GEN_MECHANISM, AttrValue::Ulong(u64::MAX));
                if class != ObjectClass::PUBLIC_KEY {
                    attrs.insert(A::ALWAYS_SENSITIVE, AttrValue::Bool(false));
                    attrs.insert(A::NEVER_EXTRACTABLE, AttrValue::Bool(false));
                }
            }
            _ => return Err(AttributeError::ValueInvalid(A::CLASS).into()),
        }
        let handle = self.insert_object(&s, attrs)?;
        if matches!(
            class,
            ObjectClass::SECRET_KEY | ObjectClass::PRIVATE_KEY | ObjectClass::PUBLIC_KEY
        ) {
            self.emit(Event::KeyCreated {
                slot: s.slot as u64,
                handles: vec![handle],
                mechanism: None,
                origin: KeyOrigin::Imported,
            })?;
        }
        Ok(ObjectHandle(handle))
    }

    /// Reads the generation spec from a template.
    fn spec_from_template(mechanism: M, tpl: &Attributes) -> Result<KeySpec> {
        let len = || -> Result<usize> {
            Ok(ulong(tpl, A::VALUE_LEN).ok_or(AttributeError::Incomplete(A::VALUE_LEN))? as usize)
        };
        let set =
            || ulong(tpl, A::PARAMETER_SET).ok_or(AttributeError::Incomplete(A::PARAMETER_SET));
        let bad_set = || HsmError::Attribute(AttributeError::ValueInvalid(A::PARAMETER_SET));
        Ok(match mechanism {
            M::AES_KEY_GEN => KeySpec::Aes { len: len()? },
            M::GENERIC_SECRET_KEY_GEN | M::HKDF_KEY_GEN => {
                let key_type = ulong(tpl, A::KEY_TYPE).map_or(
                    if mechanism == M::HKDF_KEY_GEN {
                        KeyType::HKDF
                    } else {
                        KeyType::GENERIC_SECRET
                    },
                    KeyType,
                );
                KeySpec::GenericSecret {
                    len: len()?,
                    key_type,
                }
            }
            M::RSA_PKCS_KEY_PAIR_GEN => {
                if let Some(e) = bytes(tpl, A::PUBLIC_EXPONENT) {
                    let trimmed: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
                    if trimmed != [1, 0, 1] {
                        return Err(AttributeError::ValueInvalid(A::PUBLIC_EXPONENT).into());
                    }
                }
                KeySpec::Rsa {
                    bits: ulong(tpl, A::MODULUS_BITS)
                        .ok_or(AttributeError::Incomplete(A::MODULUS_BITS))?
                        as usize,
                }
            }
            M::EC_KEY_PAIR_GEN => {
                let p = bytes(tpl, A::EC_PARAMS).ok_or(AttributeError::Incomplete(A::EC_PARAMS))?;
                KeySpec::Ec(Curve::from_ec_params(p).map_err(|_| unknown_curve(p))?)
            }
            M::EC_EDWARDS_KEY_PAIR_GEN => {
                if let Some(p) = bytes(tpl, A::EC_PARAMS)
                    && !craton_core::edwards::is_ed25519_params(p)
                {
                    return Err(unknown_curve(p));
                }
                KeySpec::Ed25519
            }
            M::EC_MONTGOMERY_KEY_PAIR_GEN => {
                if let Some(p) = bytes(tpl, A::EC_PARAMS)
                    && !craton_core::edwards::is_x25519_params(p)
                {
                    return Err(unknown_curve(p));
                }
                KeySpec::X25519
            }
            M::ML_KEM_KEY_PAIR_GEN => {
                KeySpec::MlKem(MlKemParams::from_ckp(set()?).ok_or_else(bad_set)?)
            }
            M::ML_DSA_KEY_PAIR_GEN => {
                KeySpec::MlDsa(MlDsaParams::from_ckp(set()?).ok_or_else(bad_set)?)
            }
            M::SLH_DSA_KEY_PAIR_GEN => {
                KeySpec::SlhDsa(SlhDsaParams::from_ckp(set()?).ok_or_else(bad_set)?)
            }
            other => return Err(craton_core::CryptoError::MechanismUnsupported(other).into()),
        })
    }

    /// Completes a generated key's attributes: template, defaults, what the token sets.
    fn generated_attrs(
        &self,
        class: ObjectClass,
        tpl: Attributes,
        spec: KeySpec,
        material_attrs: Vec<(A, AttrValue)>,
    ) -> Result<Attributes> {
        if let Some(c) = ulong(&tpl, A::CLASS)
            && c != class.0
        {
            return Err(AttributeError::Inconsistent(A::CLASS).into());
        }
        if let Some(k) = ulong(&tpl, A::KEY_TYPE)
            && k != key_type_for(spec).0
            && !matches!(spec, KeySpec::GenericSecret { .. })
        {
            return Err(AttributeError::Inconsistent(A::KEY_TYPE).into());
        }
        let mut tpl = tpl;
        if !USAGE.iter().any(|a| tpl.contains_key(a)) {
            for a in natural_usage(spec, class) {
                tpl.insert(*a, AttrValue::Bool(true));
            }
        }
        let mut attrs = tpl.over_defaults(class);
        // What the token sets, over the template and the defaults, in one pass.
        attrs.extend(
            [
                (A::CLASS, AttrValue::Ulong(class.0)),
                (A::KEY_TYPE, AttrValue::Ulong(key_type_for(spec).0)),
            ]
            .into_iter()
            .chain(material_attrs)
            .chain([
                (A::LOCAL, AttrValue::Bool(true)),
                (A::KEY_GEN_MECHANISM, AttrValue::Ulong(spec.mechanism().0)),
            ]),
        );
        if class != ObjectClass::PUBLIC_KEY {
            let sensitive = flag(&attrs, A::SENSITIVE);
            let extractable = flag(&attrs, A::EXTRACTABLE);
            attrs.extend([
                (A::ALWAYS_SENSITIVE, AttrValue::Bool(sensitive)),
                (A::NEVER_EXTRACTABLE, AttrValue::Bool(!extractable)),
            ]);
        }
        self.check_key_usage(&attrs)?;
        Ok(attrs)
    }

    /// `C_GenerateKey`: AES, generic secret and HKDF keys.
    pub fn generate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        template: &Template,
    ) -> Result<ObjectHandle> {
        self.check_module()?;
        let s = self.session(h)?;
        let Mechanism::Generate(m) = mechanism else {
            return Err(
                craton_core::CryptoError::MechanismUnsupported(mechanism.mechanism_type()).into(),
            );
        };
        // A mechanism this call cannot use is refused before the template is looked at.
        if !self
            .registry
            .get(*m)
            .is_some_and(|row| row.operations.contains(Operations::GENERATE))
        {
            return Err(craton_core::CryptoError::MechanismUnsupported(*m).into());
        }
        let tpl = to_map(template)?;
        refuse_token_managed(&tpl)?;
        let spec = Self::spec_from_template(*m, &tpl)?;
        if spec.is_pair() {
            return Err(craton_core::CryptoError::MechanismUnsupported(*m).into());
        }
        self.registry.check(
            *m,
            Operations::GENERATE,
            Some((spec.key_type(), spec.size())),
        )?;
        let Generated::Secret(key) = KeyMaterial::generate(spec, &self.rng)? else {
            return Err(HsmError::ArgumentsBad("secret key generation made a pair"));
        };
        let mut material = key.private_attributes()?;
        material.retain(|(a, _)| *a != A::VALUE_LEN);
        material.push((A::VALUE_LEN, AttrValue::Ulong(key.size())));
        let attrs = self.generated_attrs(class_of_generated(spec), tpl, spec, material)?;
        let handle = self.insert_object(&s, attrs)?;
        self.emit(Event::KeyCreated {
            slot: s.slot as u64,
            handles: vec![handle],
            mechanism: Some(*m),
            origin: KeyOrigin::Generated,
        })?;
        Ok(ObjectHandle(handle))
    }

    /// `C_GenerateKeyPair`: returns (public, private). The pair passed its pairwise
    /// consistency test before either object exists.
    pub fn generate_key_pair(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        self.check_module()?;
        let s = self.session(h)?;
        let Mechanism::Generate(m) = mechanism else {
            return Err(
                craton_core::CryptoError::MechanismUnsupported(mechanism.mechanism_type()).into(),
            );
        };
        let pub_tpl = to_map(public_template)?;
        let priv_tpl = to_map(private_template)?;
        refuse_token_managed(&pub_tpl)?;
        refuse_token_managed(&priv_tpl)?;
        // Size parameters may sit in either template (CKA_MODULUS_BITS in the public one by
        // convention, CKA_PARAMETER_SET in either).
        let mut merged = priv_tpl.clone();
        merged.fill_from(pub_tpl.iter().map(|(a, v)| (*a, v.clone())));
        let spec = Self::spec_from_template(*m, &merged)?;
        if !spec.is_pair() {
            return Err(craton_core::CryptoError::MechanismUnsupported(*m).into());
        }
        self.registry.check(
            *m,
            Operations::GENERATE_KEY_PAIR,
            Some((spec.key_type(), spec.size())),
        )?;
        let Generated::Pair(public, private) = KeyMaterial::generate(spec, &self.rng)? else {
            return Err(HsmError::ArgumentsBad("key pair generation made one key"));
        };
        let mut pub_tpl = pub_tpl;
        pub_tpl.remove(&A::PARAMETER_SET);
        let pub_attrs = self.generated_attrs(
            ObjectClass::PUBLIC_KEY,
            pub_tpl,
            spec,
            public.public_attributes()?,
        )?;
        let mut priv_tpl = priv_tpl;
        priv_tpl.remove(&A::PARAMETER_SET);
        let mut priv_material = private.private_attributes()?;
        // The private object also names its public value where PKCS#11 3.x lets clients read
        // it (CKA_EC_POINT is not standard there, the public key info is; ours is omitted).
        priv_material.retain(|(a, _)| *a != A::MODULUS_BITS);
        let priv_attrs =
            self.generated_attrs(ObjectClass::PRIVATE_KEY, priv_tpl, spec, priv_material)?;
        // Create the private key first: if it is refused (not logged in, read-only session)
        // no orphan public key is left behind.
        let private_handle = self.insert_object(&s, priv_attrs)?;
        let public_handle = match self.insert_object(&s, pub_attrs) {
            Ok(h) => h,
            Err(e) => {
                let _ = self.remove_object(&s, private_handle);
                return Err(e);
            }
        };
        self.emit(Event::KeyCreated {
            slot: s.slot as u64,
            handles: vec![public_handle, private_handle],
            mechanism: Some(*m),
            origin: KeyOrigin::Generated,
        })?;
        Ok((ObjectHandle(public_handle), ObjectHandle(private_handle)))
    }

    fn remove_object(&self, s: &Session, handle: u64) -> Result<()> {
        let mut t = self.write_token(s.slot)?;
        if let Some(o) = t.objects.get(&handle)
            && o.is_token()
        {
            self.store.destroy_object(handle)?;
        }
        t.objects.remove(&handle);
        Ok(())
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&self, h: SessionHandle, object: ObjectHandle) -> Result<()> {
        let s = self.session(h)?;
        let mut t = self.write_token(s.slot)?;
        let o = match t.objects.get(&object.0) {
            Some(o) if Self::visible(&t, &s, o) => o.clone(),
            _ => return Err(HsmError::ObjectHandleInvalid),
        };
        Self::check_can_write(&t, &s, o.is_token(), false)?;
        if matches!(o.attrs.get(&A::DESTROYABLE), Some(AttrValue::Bool(false))) {
            return Err(HsmError::ActionProhibited("object is not destroyable"));
        }
        if o.is_token() {
            self.store.destroy_object(object.0)?;
        }
        t.objects.remove(&object.0);
        let slot = t.slot;
        drop(t);
        self.emit(Event::ObjectDestroyed {
            slot,
            handle: object.0,
        })?;
        Ok(())
    }

    /// `C_GetAttributeValue`: one result per requested attribute, in order. Absent
    /// attributes are `TypeInvalid`; secret values of sensitive or unextractable keys are
    /// `Sensitive`.
    pub fn attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        wanted: &[A],
    ) -> Result<Vec<std::result::Result<AttrValue, AttributeError>>> {
        let s = self.session(h)?;
        let o = self.object(&s, object, HsmError::ObjectHandleInvalid)?;
        Ok(wanted
            .iter()
            .map(|a| {
                attribute::check_readable(&o.attrs, *a)?;
                o.attrs
                    .get(a)
                    .cloned()
                    .ok_or(AttributeError::TypeInvalid(*a))
            })
            .collect())
    }

    /// `C_GetObjectSize`: the size of the object's stored attributes, in bytes.
    pub fn object_size(&self, h: SessionHandle, object: ObjectHandle) -> Result<u64> {
        let s = self.session(h)?;
        let o = self.object(&s, object, HsmError::ObjectHandleInvalid)?;
        Ok(o.attrs
            .values()
            .map(|v| match v.as_bytes() {
                Some(b) => b.len() as u64 + 16,
                None => 24,
            })
            .sum())
    }

    /// `C_SetAttributeValue`: all changes or none, following the one-way rules.
    pub fn set_attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        template: &Template,
    ) -> Result<()> {
        let s = self.session(h)?;
        let changes = to_map(template)?;
        let mut t = self.write_token(s.slot)?;
        let o = match t.objects.get(&object.0) {
            Some(o) if Self::visible(&t, &s, o) => o.clone(),
            _ => return Err(HsmError::ObjectHandleInvalid),
        };
        Self::check_can_write(&t, &s, o.is_token(), o.flag(A::PRIVATE))?;
        if o.secret_closed {
            // Rewriting the record needs its sealed secret part, which only the user can open.
            return Err(HsmError::UserNotLoggedIn);
        }
        if !changes.is_empty()
            && matches!(o.attrs.get(&A::MODIFIABLE), Some(AttrValue::Bool(false)))
        {
            return Err(HsmError::ActionProhibited("object is not modifiable"));
        }
        let is_so = t.login_of(s.app) == Login::So;
        let mut attrs = o.attrs.clone();
        for (a, v) in &changes {
            attribute::check_change(&o.attrs, *a, v, is_so)?;
            attrs.insert(*a, v.clone());
        }
        self.check_key_usage(&attrs)?;
        if o.is_token() {
            self.store
                .update_object(t.slot, object.0, &attrs, t.master.as_ref())?;
        }
        let mut updated = Object::new(object.0, attrs, o.session);
        updated.secret_closed = o.secret_closed;
        // The key is the same key: its GCM count carries over.
        updated.gcm = o.gcm.clone();
        t.objects.insert(object.0, Arc::new(updated));
        Ok(())
    }

    /// `C_CopyObject`: needs `CKA_COPYABLE`; the template may change what `C_SetAttributeValue`
    /// could, plus `CKA_TOKEN` and `CKA_PRIVATE`.
    pub fn copy_object(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        template: &Template,
    ) -> Result<ObjectHandle> {
        let s = self.session(h)?;
        let o = self.object(&s, object, HsmError::ObjectHandleInvalid)?;
        if matches!(o.attrs.get(&A::COPYABLE), Some(AttrValue::Bool(false))) {
            return Err(HsmError::ActionProhibited("object is not copyable"));
        }
        if o.secret_closed {
            return Err(HsmError::UserNotLoggedIn);
        }
        let changes = to_map(template)?;
        let is_so = self.read_token(s.slot)?.login_of(s.app) == Login::So;
        let mut attrs = o.attrs.clone();
        for (a, v) in &changes {
            match a {
                &A::TOKEN | &A::PRIVATE => {}
                _ => attribute::check_change(&o.attrs, *a, v, is_so)?,
            }
            attrs.insert(*a, v.clone());
        }
        // A private key copied as a public object would expose nothing new (its secret part
        // stays sealed), but a copy must not lower CKA_PRIVATE below what the user can see.
        self.check_key_usage(&attrs)?;
        let handle = self.insert_object(&s, attrs)?;
        if matches!(
            o.class(),
            ObjectClass::SECRET_KEY | ObjectClass::PRIVATE_KEY
        ) {
            self.emit(Event::KeyCreated {
                slot: s.slot as u64,
                handles: vec![handle],
                mechanism: None,
                origin: KeyOrigin::Copied,
            })?;
        }
        Ok(ObjectHandle(handle))
    }

    /// `C_FindObjectsInit`.
    pub fn find_objects_init(&self, h: SessionHandle, template: &Template) -> Result<()> {
        let s = self.session(h)?;
        let wanted = to_map(template)?;
        let mut found: Vec<u64> = {
            let t = self.read_token(s.slot)?;
            t.objects
                .values()
                .filter(|o| Self::visible(&t, &s, o))
                .filter(|o| {
                    wanted.iter().all(|(a, v)| {
                        // Secret values never match: a search must not become an oracle for a
                        // sensitive key's value.
                        attribute::check_readable(&o.attrs, *a).is_ok() && o.attrs.get(a) == Some(v)
                    })
                })
                .map(|o| o.handle)
                .collect()
        };
        found.sort_unstable();
        let mut ops = self.lock_ops(&s)?;
        if ops.find.is_some() {
            return Err(HsmError::OperationActive);
        }
        found.reverse();
        ops.find = Some(found);
        Ok(())
    }

    /// `C_FindObjects`: up to `max` more handles.
    pub fn find_objects(&self, h: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        let list = ops.find.as_mut().ok_or(HsmError::OperationNotInitialized)?;
        let n = max.min(list.len());
        Ok((0..n)
            .filter_map(|_| list.pop())
            .map(ObjectHandle)
            .collect())
    }

    /// `C_FindObjectsFinal`.
    pub fn find_objects_final(&self, h: SessionHandle) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = self.lock_ops(&s)?;
        ops.find
            .take()
            .map(|_| ())
            .ok_or(HsmError::OperationNotInitialized)
    }

    /// Builds the attributes of a key made by unwrap or derive, applying the inheritance
    /// rules, and stores it.
    pub(crate) fn insert_derived_secret(
        &self,
        s: &Session,
        n: NewSecret<'_>,
    ) -> Result<ObjectHandle> {
        let NewSecret {
            template,
            value,
            inherit_from,
            force_sensitive,
            mechanism,
            origin,
        } = n;
        let tpl = to_map(template)?;
        refuse_token_managed(&tpl)?;
        let class = ObjectClass(ulong(&tpl, A::CLASS).unwrap_or(ObjectClass::SECRET_KEY.0));
        // Unwrapping may also yield a private key (from PKCS#8); everything else is a secret.
        let private_key = class == ObjectClass::PRIVATE_KEY && origin == KeyOrigin::Unwrapped;
        if class != ObjectClass::SECRET_KEY && !private_key {
            return Err(AttributeError::ValueInvalid(A::CLASS).into());
        }
        let key_type =
            KeyType(ulong(&tpl, A::KEY_TYPE).ok_or(AttributeError::Incomplete(A::KEY_TYPE))?);
        let mut attrs = tpl.over_defaults(class);
        if force_sensitive {
            if matches!(attrs.get(&A::SENSITIVE), Some(AttrValue::Bool(false))) {
                return Err(AttributeError::Inconsistent(A::SENSITIVE).into());
            }
            attrs.insert(A::SENSITIVE, AttrValue::Bool(true));
        }
        let (always_sensitive, never_extractable) = match inherit_from {
            Some(base) => {
                if base.flag(A::SENSITIVE) && !flag(&attrs, A::SENSITIVE) {
                    return Err(AttributeError::Inconsistent(A::SENSITIVE).into());
                }
                if !base.flag(A::EXTRACTABLE) && flag(&attrs, A::EXTRACTABLE) {
                    return Err(AttributeError::Inconsistent(A::EXTRACTABLE).into());
                }
                (
                    base.flag(A::ALWAYS_SENSITIVE) && flag(&attrs, A::SENSITIVE),
                    base.flag(A::NEVER_EXTRACTABLE) && !flag(&attrs, A::EXTRACTABLE),
                )
            }
            None => (false, false),
        };
        attrs.insert(A::CLASS, AttrValue::Ulong(class.0));
        attrs.insert(A::KEY_TYPE, AttrValue::Ulong(key_type.0));
        if private_key {
            let material = KeyMaterial::from_pkcs8(key_type, value).map_err(|e| match e {
                craton_core::CryptoError::KeyInvalid(_) => {
                    HsmError::Crypto(craton_core::CryptoError::WrappedKeyInvalid)
                }
                other => HsmError::Crypto(other),
            })?;
            for (a, v) in material.private_attributes()? {
                attrs.insert(a, v);
            }
        } else {
            attrs.insert(A::VALUE, AttrValue::Bytes(value.to_vec()));
            attrs.insert(A::VALUE_LEN, AttrValue::Ulong(value.len() as u64));
        }
        attrs.insert(A::LOCAL, AttrValue::Bool(false));
        attrs.insert(A::KEY_GEN_MECHANISM, AttrValue::Ulong(u64::MAX));
        attrs.insert(A::ALWAYS_SENSITIVE, AttrValue::Bool(always_sensitive));
        attrs.insert(A::NEVER_EXTRACTABLE, AttrValue::Bool(never_extractable));
        self.check_key_usage(&attrs)?;
        KeyMaterial::from_attributes(class, &attrs).map_err(|_| {
            if private_key {
                HsmError::Crypto(craton_core::CryptoError::WrappedKeyInvalid)
            } else {
                AttributeError::ValueInvalid(A::VALUE_LEN).into()
            }
        })?;
        let handle = self.insert_object(s, attrs)?;
        self.emit(Event::KeyCreated {
            slot: s.slot as u64,
            handles: vec![handle],
            mechanism: Some(mechanism),
            origin,
        })?;
        Ok(ObjectHandle(handle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_a_valid_date() {
        let d = today();
        assert!(attribute::valid_date(&d), "{}", String::from_utf8_lossy(&d));
        assert!(d.as_slice() >= b"20260101".as_slice());
    }
}
