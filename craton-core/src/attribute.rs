//! The attribute model: `CKA_*` numbers, the kind of value each holds, per-class defaults, and
//! the template rules of PKCS#11 (required, read-only, one-way changes, sensitive values never
//! readable) as pure functions over typed values.
//!
//! Raw C encodings are `craton-pkcs11`'s business; here values are [`AttrValue`]s.

use crate::mechanism::KeyType;

number_space! {
    /// A `CKA_*` attribute number.
    AttributeType {
        /// `CKA_CLASS`
        CLASS = 0x0000,
        /// `CKA_TOKEN`
        TOKEN = 0x0001,
        /// `CKA_PRIVATE`
        PRIVATE = 0x0002,
        /// `CKA_LABEL`
        LABEL = 0x0003,
        /// `CKA_UNIQUE_ID`
        UNIQUE_ID = 0x0004,
        /// `CKA_APPLICATION`
        APPLICATION = 0x0010,
        /// `CKA_VALUE`
        VALUE = 0x0011,
        /// `CKA_OBJECT_ID`
        OBJECT_ID = 0x0012,
        /// `CKA_CERTIFICATE_TYPE`
        CERTIFICATE_TYPE = 0x0080,
        /// `CKA_ISSUER`
        ISSUER = 0x0081,
        /// `CKA_SERIAL_NUMBER`
        SERIAL_NUMBER = 0x0082,
        /// `CKA_TRUSTED`
        TRUSTED = 0x0086,
        /// `CKA_CERTIFICATE_CATEGORY`
        CERTIFICATE_CATEGORY = 0x0087,
        /// `CKA_CHECK_VALUE`
        CHECK_VALUE = 0x0090,
        /// `CKA_KEY_TYPE`
        KEY_TYPE = 0x0100,
        /// `CKA_SUBJECT`
        SUBJECT = 0x0101,
        /// `CKA_ID`
        ID = 0x0102,
        /// `CKA_SENSITIVE`
        SENSITIVE = 0x0103,
        /// `CKA_ENCRYPT`
        ENCRYPT = 0x0104,
        /// `CKA_DECRYPT`
        DECRYPT = 0x0105,
        /// `CKA_WRAP`
        WRAP = 0x0106,
        /// `CKA_UNWRAP`
        UNWRAP = 0x0107,
        /// `CKA_SIGN`
        SIGN = 0x0108,
        /// `CKA_SIGN_RECOVER`
        SIGN_RECOVER = 0x0109,
        /// `CKA_VERIFY`
        VERIFY = 0x010A,
        /// `CKA_VERIFY_RECOVER`
        VERIFY_RECOVER = 0x010B,
        /// `CKA_DERIVE`
        DERIVE = 0x010C,
        /// `CKA_START_DATE`
        START_DATE = 0x0110,
        /// `CKA_END_DATE`
        END_DATE = 0x0111,
        /// `CKA_MODULUS`
        MODULUS = 0x0120,
        /// `CKA_MODULUS_BITS`
        MODULUS_BITS = 0x0121,
        /// `CKA_PUBLIC_EXPONENT`
        PUBLIC_EXPONENT = 0x0122,
        /// `CKA_PRIVATE_EXPONENT`
        PRIVATE_EXPONENT = 0x0123,
        /// `CKA_PRIME_1`
        PRIME_1 = 0x0124,
        /// `CKA_PRIME_2`
        PRIME_2 = 0x0125,
        /// `CKA_EXPONENT_1`
        EXPONENT_1 = 0x0126,
        /// `CKA_EXPONENT_2`
        EXPONENT_2 = 0x0127,
        /// `CKA_COEFFICIENT`
        COEFFICIENT = 0x0128,
        /// `CKA_PUBLIC_KEY_INFO`
        PUBLIC_KEY_INFO = 0x0129,
        /// `CKA_VALUE_LEN`
        VALUE_LEN = 0x0161,
        /// `CKA_EXTRACTABLE`
        EXTRACTABLE = 0x0162,
        /// `CKA_LOCAL`
        LOCAL = 0x0163,
        /// `CKA_NEVER_EXTRACTABLE`
        NEVER_EXTRACTABLE = 0x0164,
        /// `CKA_ALWAYS_SENSITIVE`
        ALWAYS_SENSITIVE = 0x0165,
        /// `CKA_KEY_GEN_MECHANISM`
        KEY_GEN_MECHANISM = 0x0166,
        /// `CKA_MODIFIABLE`
        MODIFIABLE = 0x0170,
        /// `CKA_COPYABLE`
        COPYABLE = 0x0171,
        /// `CKA_DESTROYABLE`
        DESTROYABLE = 0x0172,
        /// `CKA_EC_PARAMS`
        EC_PARAMS = 0x0180,
        /// `CKA_EC_POINT`
        EC_POINT = 0x0181,
        /// `CKA_ALWAYS_AUTHENTICATE`
        ALWAYS_AUTHENTICATE = 0x0202,
        /// `CKA_WRAP_WITH_TRUSTED`
        WRAP_WITH_TRUSTED = 0x0210,
        /// `CKA_PARAMETER_SET`
        PARAMETER_SET = 0x061D,
        /// `CKA_ENCAPSULATE`
        ENCAPSULATE = 0x0633,
        /// `CKA_DECAPSULATE`
        DECAPSULATE = 0x0634,
        /// `CKA_SEED`
        SEED = 0x0637,
    }
}

number_space! {
    /// A `CKO_*` object class.
    ObjectClass {
        /// `CKO_DATA`
        DATA = 0,
        /// `CKO_CERTIFICATE`
        CERTIFICATE = 1,
        /// `CKO_PUBLIC_KEY`
        PUBLIC_KEY = 2,
        /// `CKO_PRIVATE_KEY`
        PRIVATE_KEY = 3,
        /// `CKO_SECRET_KEY`
        SECRET_KEY = 4,
    }
}

/// The kind of value an attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    /// `CK_BBOOL`.
    Bool,
    /// `CK_ULONG` (classes, key types, lengths, mechanism numbers).
    Ulong,
    /// A byte string (values, labels, big integers, DER).
    Bytes,
    /// `CK_DATE` (8 ASCII digits YYYYMMDD, or empty).
    Date,
}

impl AttributeType {
    /// The kind of value this attribute holds, or `None` for attributes we do not know.
    pub fn kind(self) -> Option<AttrKind> {
        use AttributeType as A;
        Some(match self {
            A::TOKEN
            | A::PRIVATE
            | A::TRUSTED
            | A::SENSITIVE
            | A::ENCRYPT
            | A::DECRYPT
            | A::WRAP
            | A::UNWRAP
            | A::SIGN
            | A::SIGN_RECOVER
            | A::VERIFY
            | A::VERIFY_RECOVER
            | A::DERIVE
            | A::EXTRACTABLE
            | A::LOCAL
            | A::NEVER_EXTRACTABLE
            | A::ALWAYS_SENSITIVE
            | A::MODIFIABLE
            | A::COPYABLE
            | A::DESTROYABLE
            | A::ALWAYS_AUTHENTICATE
            | A::WRAP_WITH_TRUSTED
            | A::ENCAPSULATE
            | A::DECAPSULATE => AttrKind::Bool,
            A::CLASS
            | A::CERTIFICATE_TYPE
            | A::CERTIFICATE_CATEGORY
            | A::KEY_TYPE
            | A::MODULUS_BITS
            | A::VALUE_LEN
            | A::KEY_GEN_MECHANISM
            | A::PARAMETER_SET => AttrKind::Ulong,
            A::START_DATE | A::END_DATE => AttrKind::Date,
            A::LABEL
            | A::UNIQUE_ID
            | A::APPLICATION
            | A::VALUE
            | A::OBJECT_ID
            | A::ISSUER
            | A::SERIAL_NUMBER
            | A::CHECK_VALUE
            | A::SUBJECT
            | A::ID
            | A::MODULUS
            | A::PUBLIC_EXPONENT
            | A::PRIVATE_EXPONENT
            | A::PRIME_1
            | A::PRIME_2
            | A::EXPONENT_1
            | A::EXPONENT_2
            | A::COEFFICIENT
            | A::PUBLIC_KEY_INFO
            | A::EC_PARAMS
            | A::EC_POINT
            | A::SEED => AttrKind::Bytes,
            _ => return None,
        })
    }

    /// Whether the value is secret key material (never readable from a sensitive or
    /// unextractable key, never logged).
    pub fn is_secret_component(self) -> bool {
        Self::SECRET_COMPONENTS.contains(&self)
    }

    /// The private components of a key, besides `CKA_VALUE` (see
    /// [`Self::is_secret_component`]).
    pub const SECRET_COMPONENTS: [AttributeType; 7] = [
        AttributeType::PRIVATE_EXPONENT,
        AttributeType::PRIME_1,
        AttributeType::PRIME_2,
        AttributeType::EXPONENT_1,
        AttributeType::EXPONENT_2,
        AttributeType::COEFFICIENT,
        AttributeType::SEED,
    ];
}

/// A typed attribute value.
pub enum AttrValue {
    /// `CK_BBOOL`.
    Bool(bool),
    /// `CK_ULONG`.
    Ulong(u64),
    /// Bytes.
    Bytes(Vec<u8>),
    /// The bytes of a key's secret part (`CKA_VALUE` of a secret or private key, the private
    /// components) as an object keeps them: on locked pages excluded from core dumps, wiped
    /// on drop. Templates and wire formats carry [`AttrValue::Bytes`]; an object moves its
    /// secret parts here when it is made. Equal to a `Bytes` value with the same contents.
    /// (Boxed: `SecretBytes` is larger than a vector, and every value of every object would
    /// pay for the difference.)
    Secret(Box<crate::secret::SecretBytes>),
    /// A date (YYYYMMDD) or the empty date.
    Date(Option<[u8; 8]>),
}

impl AttrValue {
    /// A secret value: `bytes` copied onto locked, dump-excluded pages (the caller wipes its
    /// own copy).
    pub fn secret(bytes: &[u8]) -> AttrValue {
        AttrValue::Secret(Box::new(crate::secret::SecretBytes::new(bytes)))
    }

    /// The bytes of a `Bytes` or `Secret` value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            AttrValue::Bytes(b) => Some(b),
            AttrValue::Secret(s) => Some(s.expose()),
            _ => None,
        }
    }
}

// By hand, so that copying the scalar values (most of an object's defaults) stays inline in
// the loops that copy attribute lists; the derived form was an out-of-line call per value.
impl Clone for AttrValue {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            AttrValue::Bool(b) => AttrValue::Bool(*b),
            AttrValue::Ulong(n) => AttrValue::Ulong(*n),
            AttrValue::Date(d) => AttrValue::Date(*d),
            AttrValue::Bytes(b) => AttrValue::Bytes(b.clone()),
            AttrValue::Secret(s) => AttrValue::Secret(s.clone()),
        }
    }
}

impl PartialEq for AttrValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AttrValue::Bool(a), AttrValue::Bool(b)) => a == b,
            (AttrValue::Ulong(a), AttrValue::Ulong(b)) => a == b,
            (AttrValue::Date(a), AttrValue::Date(b)) => a == b,
            (AttrValue::Bytes(a), AttrValue::Bytes(b)) => a == b,
            // A secret compared (a template matched against a key) in constant time.
            (a, b) => match (a.as_bytes(), b.as_bytes()) {
                (Some(a), Some(b)) => {
                    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
                }
                _ => false,
            },
        }
    }
}

impl Eq for AttrValue {}

impl std::fmt::Debug for AttrValue {
    // Byte values may be key material; only their length is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Bool(b) => write!(f, "Bool({b})"),
            AttrValue::Ulong(v) => write!(f, "Ulong({v})"),
            AttrValue::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            AttrValue::Secret(b) => write!(f, "Secret({} bytes)", b.len()),
            AttrValue::Date(Some(d)) => write!(f, "Date({})", String::from_utf8_lossy(d)),
            AttrValue::Date(None) => f.write_str("Date(empty)"),
        }
    }
}

impl Drop for AttrValue {
    fn drop(&mut self) {
        if let AttrValue::Bytes(b) = self {
            zeroize::Zeroize::zeroize(b);
        }
    }
}

/// Template-rule violations, each naming the attribute at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// Unknown attribute, or one that does not belong to the object's class.
    #[error("attribute {0:?} is not valid here")]
    TypeInvalid(AttributeType),
    /// The value has the wrong kind or an impossible value.
    #[error("attribute {0:?} has an invalid value")]
    ValueInvalid(AttributeType),
    /// The caller may not set or change this attribute.
    #[error("attribute {0:?} is read-only")]
    ReadOnly(AttributeType),
    /// The value is sensitive and cannot be revealed.
    #[error("attribute {0:?} is sensitive")]
    Sensitive(AttributeType),
    /// A required attribute is missing.
    #[error("template is missing {0:?}")]
    Incomplete(AttributeType),
    /// The template contradicts itself or the operation.
    #[error("template is inconsistent at {0:?}")]
    Inconsistent(AttributeType),
}

/// An object's attributes: one value per attribute type, in type order.
///
/// An object has a few dozen attributes, built once and then mostly read. They live in one
/// vector sorted by type: one allocation where a B-tree takes one per node, a binary search
/// in contiguous memory, no nodes to walk on drop. Most of an object's attributes are its
/// class's defaults ([`default_attributes`]), the same for every object of the class, so
/// those stay in a static table beside the vector and only the values an object sets are
/// its own: creating, copying and dropping an object moves a dozen values instead of forty.
/// A value in the vector hides the default of its type; every method sees the two as one
/// map. The API is the part of `BTreeMap`'s that the engine uses, with the same meaning (a
/// later insert of a type replaces its value, iteration is in type order).
#[derive(Clone, Default)]
pub struct Attributes {
    /// The values set on this map, sorted by type.
    entries: Vec<(AttributeType, AttrValue)>,
    /// Sorted defaults for the types `entries` lacks (a class's table), or none.
    defaults: &'static [(AttributeType, AttrValue)],
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes::default()
    }

    fn find(&self, a: AttributeType) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(&a))
    }

    fn default_of(&self, a: AttributeType) -> Option<&'static AttrValue> {
        let defaults: &'static [(AttributeType, AttrValue)] = self.defaults;
        defaults
            .binary_search_by(|(k, _)| k.cmp(&a))
            .ok()
            .map(|i| &defaults[i].1)
    }

    /// Copies the defaults not hidden by a value into the vector, for the operations that
    /// change or take values wholesale.
    fn own_defaults(&mut self) {
        if self.defaults.is_empty() {
            return;
        }
        let defaults = std::mem::take(&mut self.defaults);
        self.merge(
            defaults.iter().map(|(a, v)| (*a, v.clone())).collect(),
            false,
        );
    }

    /// The value of `a`, if present.
    pub fn get(&self, a: &AttributeType) -> Option<&AttrValue> {
        match self.find(*a) {
            Ok(i) => Some(&self.entries[i].1),
            Err(_) => self.default_of(*a),
        }
    }

    /// The value of `a` to change in place, if present.
    pub fn get_mut(&mut self, a: &AttributeType) -> Option<&mut AttrValue> {
        let i = match self.find(*a) {
            Ok(i) => i,
            Err(i) => {
                let v = self.default_of(*a)?.clone();
                self.entries.insert(i, (*a, v));
                i
            }
        };
        Some(&mut self.entries[i].1)
    }

    /// Whether `a` is present.
    pub fn contains_key(&self, a: &AttributeType) -> bool {
        self.find(*a).is_ok() || self.default_of(*a).is_some()
    }

    /// Sets `a` to `v`, returning the value it replaces.
    pub fn insert(&mut self, a: AttributeType, v: AttrValue) -> Option<AttrValue> {
        match self.find(a) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, v)),
            Err(i) => {
                self.entries.insert(i, (a, v));
                self.default_of(a).cloned()
            }
        }
    }

    /// Takes `a` out, returning its value.
    pub fn remove(&mut self, a: &AttributeType) -> Option<AttrValue> {
        if self.default_of(*a).is_some() {
            self.own_defaults();
        }
        self.find(*a).ok().map(|i| self.entries.remove(i).1)
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        let hidden = self
            .entries
            .iter()
            .filter(|(a, _)| self.default_of(*a).is_some())
            .count();
        self.entries.len() + self.defaults.len() - hidden
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.defaults.is_empty()
    }

    /// The attributes in type order.
    pub fn iter(&self) -> Iter<'_> {
        self.into_iter()
    }

    /// The attributes in type order, values to change in place.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&AttributeType, &mut AttrValue)> + '_ {
        self.own_defaults();
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The values set on this map, to change in place: not the defaults it shows for the
    /// types it has no value of (which never include key material).
    pub fn own_values_mut(
        &mut self,
    ) -> impl Iterator<Item = (&AttributeType, &mut AttrValue)> + '_ {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The attribute types in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &AttributeType> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values in type order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &AttrValue> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Adds each of `more` whose type is not present yet (of repeated types in `more`, the
    /// first): what `entry(a).or_insert(v)` does for each, in one merge instead of an
    /// insertion into the middle per attribute.
    pub fn fill_from(&mut self, more: impl IntoIterator<Item = (AttributeType, AttrValue)>) {
        self.add_all(more.into_iter(), false);
    }

    /// [`Self::merge`] of `more`, with a few (by the iterator's own bound) put in place one
    /// by one without collecting them first.
    fn add_all(
        &mut self,
        more: impl Iterator<Item = (AttributeType, AttrValue)>,
        later_wins: bool,
    ) {
        if more.size_hint().1.is_some_and(|n| n <= FEW) {
            more.for_each(|(a, v)| self.put(a, v, later_wins));
        } else {
            self.merge(more.collect(), later_wins);
        }
    }

    /// One value put in place by binary search; an insertion moves the entries after it
    /// (under a kilobyte: a map holds its own values, not its class's defaults). With `later_wins` it replaces a present value, else
    /// a present value (or default) stays.
    fn put(&mut self, a: AttributeType, v: AttrValue, later_wins: bool) {
        match self.find(a) {
            Ok(i) if later_wins => self.entries[i].1 = v,
            Ok(_) => {}
            Err(_) if !later_wins && self.default_of(a).is_some() => {}
            Err(i) => self.entries.insert(i, (a, v)),
        }
    }

    /// Merges `more` into the vector: sorted by type (stably, so repeats keep their order),
    /// then walked beside the present entries once. Where a type repeats, `later_wins` keeps
    /// the last value given (present entries, defaults included, count as given first),
    /// otherwise the first.
    fn merge(&mut self, mut more: Vec<(AttributeType, AttrValue)>, later_wins: bool) {
        // A few: each put in place. Many: sorted and merged in one walk.
        if more.len() <= FEW {
            for (a, v) in more {
                self.put(a, v, later_wins);
            }
            return;
        }
        if !later_wins && !self.defaults.is_empty() {
            more.retain(|(a, _)| self.default_of(*a).is_none());
        }
        // Stable, so repeats keep their order; short lists sort in place without allocating.
        more.sort_by_key(|(k, _)| *k);
        let mut out: Vec<(AttributeType, AttrValue)> =
            Vec::with_capacity(self.entries.len() + more.len());
        let mut keep = |e: (AttributeType, AttrValue)| match out.last_mut() {
            Some(last) if last.0 == e.0 => {
                if later_wins {
                    *last = e;
                }
            }
            _ => out.push(e),
        };
        let mut old = std::mem::take(&mut self.entries).into_iter().peekable();
        let mut new = more.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (Some(a), Some(b)) => a.0 <= b.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_old { old.next() } else { new.next() };
            if let Some(e) = next {
                keep(e);
            }
        }
        self.entries = out;
    }

    /// Keeps only the attributes for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&AttributeType, &mut AttrValue) -> bool) {
        self.own_defaults();
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Attributes {}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // AttrValue's own Debug shows no byte values.
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(AttributeType, AttrValue)> for Attributes {
    /// Like collecting into a map: of repeated types, the last value stays.
    fn from_iter<I: IntoIterator<Item = (AttributeType, AttrValue)>>(iter: I) -> Self {
        let mut attrs = Attributes::new();
        attrs.extend(iter);
        attrs
    }
}

impl Extend<(AttributeType, AttrValue)> for Attributes {
    /// Like inserting each in turn: a type given again replaces the value it has.
    fn extend<I: IntoIterator<Item = (AttributeType, AttrValue)>>(&mut self, iter: I) {
        self.add_all(iter.into_iter(), true);
    }
}

impl IntoIterator for Attributes {
    type Item = (AttributeType, AttrValue);
    type IntoIter = std::vec::IntoIter<(AttributeType, AttrValue)>;
    fn into_iter(mut self) -> Self::IntoIter {
        self.own_defaults();
        std::mem::take(&mut self.entries).into_iter()
    }
}

/// The attributes of an [`Attributes`] in type order: its own values and the defaults they
/// do not hide, walked side by side (from either end).
pub struct Iter<'a> {
    entries: &'a [(AttributeType, AttrValue)],
    defaults: &'a [(AttributeType, AttrValue)],
}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

type Entry<'a> = &'a (AttributeType, AttrValue);

impl<'a> Iter<'a> {
    /// The next entry from the front (`back` false) or the back, and what is left of each
    /// side: an entry's own value goes with any default it hides.
    fn step(&mut self, back: bool) -> Option<Entry<'a>> {
        let end = |s: &'a [(AttributeType, AttrValue)]| if back { s.last() } else { s.first() };
        let trim = |s: &mut &'a [(AttributeType, AttrValue)]| {
            *s = if back { &s[..s.len() - 1] } else { &s[1..] };
        };
        let (take_default, hidden) = match (end(self.entries), end(self.defaults)) {
            (None, None) => return None,
            (None, Some(_)) => (true, false),
            (Some(_), None) => (false, false),
            (Some(e), Some(d)) if d.0 == e.0 => (false, true),
            (Some(e), Some(d)) => (if back { d.0 > e.0 } else { d.0 < e.0 }, false),
        };
        let next = if take_default {
            end(self.defaults)
        } else {
            end(self.entries)
        };
        if take_default || hidden {
            trim(&mut self.defaults);
        }
        if !take_default {
            trim(&mut self.entries);
        }
        next
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a AttributeType, &'a AttrValue);

    fn next(&mut self) -> Option<Self::Item> {
        self.step(false).map(|(k, v)| (k, v))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(true).map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a AttributeType, &'a AttrValue);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        Iter {
            entries: &self.entries,
            defaults: self.defaults,
        }
    }
}

/// Checks that a date is eight ASCII digits forming a plausible YYYYMMDD.
pub fn valid_date(d: &[u8; 8]) -> bool {
    if !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
    let (month, day) = (n(4..6), n(6..8));
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// Checks each value's kind (and date format) against the attribute's definition.
pub fn check_kinds(template: &[(AttributeType, AttrValue)]) -> Result<(), AttributeError> {
    for (attr, value) in template {
        let kind = attr.kind().ok_or(AttributeError::TypeInvalid(*attr))?;
        let ok = match (kind, value) {
            (AttrKind::Bool, AttrValue::Bool(_))
            | (AttrKind::Ulong, AttrValue::Ulong(_))
            | (AttrKind::Bytes, AttrValue::Bytes(_) | AttrValue::Secret(_))
            | (AttrKind::Date, AttrValue::Date(None)) => true,
            (AttrKind::Date, AttrValue::Date(Some(d))) => valid_date(d),
            _ => false,
        };
        if !ok {
            return Err(AttributeError::ValueInvalid(*attr));
        }
    }
    Ok(())
}

/// Attributes only the token sets (`CKA_LOCAL`, the "always/never" history, generation
/// mechanism, derived sizes). A caller's template may not contain them.
pub fn token_managed(attr: AttributeType) -> bool {
    use AttributeType as A;
    matches!(
        attr,
        A::LOCAL | A::ALWAYS_SENSITIVE | A::NEVER_EXTRACTABLE | A::KEY_GEN_MECHANISM | A::UNIQUE_ID
    )
}

/// Attributes fixed once the object exists (`C_SetAttributeValue` refuses them).
pub fn fixed_after_creation(attr: AttributeType) -> bool {
    use AttributeType as A;
    token_managed(attr)
        || matches!(
            attr,
            A::CLASS
                | A::TOKEN
                | A::PRIVATE
                | A::KEY_TYPE
                | A::VALUE
                | A::VALUE_LEN
                | A::MODULUS
                | A::MODULUS_BITS
                | A::PUBLIC_EXPONENT
                | A::EC_PARAMS
                | A::EC_POINT
                | A::MODIFIABLE
                | A::COPYABLE
                | A::PARAMETER_SET
                | A::SEED
                | A::ALWAYS_AUTHENTICATE
                | A::CERTIFICATE_TYPE
        )
        || attr.is_secret_component()
}

/// The defaults of `class` ([`defaults`]) as an attribute map, for a template to be merged
/// into (its values win). The map refers to one static table per class; nothing is copied
/// until a default is changed or taken out.
pub fn default_attributes(class: ObjectClass) -> Attributes {
    Attributes::new().over_defaults(class)
}

/// Up to how many values are put into a map one by one rather than merged in one walk.
const FEW: usize = 8;

/// How many values a new object's map has room for beyond its template's.
const NEW_OBJECT_ROOM: usize = 12;

impl Attributes {
    /// These attributes over the defaults of `class`: what `default_attributes(class)`
    /// extended with them holds (their values win), without copying the defaults.
    pub fn over_defaults(mut self, class: ObjectClass) -> Attributes {
        self.own_defaults();
        self.defaults = sorted_defaults(class);
        // Room for what the token adds to a new object (class, key type, the key's own
        // attributes, LOCAL, the generation mechanism, UNIQUE_ID ...) without regrowing.
        self.entries.reserve(NEW_OBJECT_ROOM);
        self
    }
}

/// [`defaults`] sorted by type, built once per class: what an object's attributes are
/// merged with at creation.
fn sorted_defaults(class: ObjectClass) -> &'static [(AttributeType, AttrValue)] {
    type Table = Vec<(ObjectClass, Vec<(AttributeType, AttrValue)>)>;
    static TABLE: std::sync::LazyLock<Table> = std::sync::LazyLock::new(|| {
        [
            ObjectClass::DATA,
            ObjectClass::CERTIFICATE,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::PRIVATE_KEY,
            ObjectClass::SECRET_KEY,
        ]
        .into_iter()
        .map(|c| {
            let mut d = defaults(c);
            d.sort_by_key(|(k, _)| *k);
            (c, d)
        })
        .collect()
    });
    static COMMON: std::sync::LazyLock<Vec<(AttributeType, AttrValue)>> =
        std::sync::LazyLock::new(|| {
            let mut d = defaults(ObjectClass(u64::MAX));
            d.sort_by_key(|(k, _)| *k);
            d
        });
    TABLE
        .iter()
        .find(|(c, _)| *c == class)
        .map_or(COMMON.as_slice(), |(_, d)| d.as_slice())
}

/// The defaults PKCS#11 gives an object of `class` for attributes the template leaves out.
/// Our defaults are the safe ones: keys are private and sensitive unless asked otherwise.
pub fn defaults(class: ObjectClass) -> Vec<(AttributeType, AttrValue)> {
    use AttributeType as A;
    let mut d = vec![
        (A::TOKEN, AttrValue::Bool(false)),
        (A::MODIFIABLE, AttrValue::Bool(true)),
        (A::COPYABLE, AttrValue::Bool(true)),
        (A::DESTROYABLE, AttrValue::Bool(true)),
        (A::LABEL, AttrValue::Bytes(Vec::new())),
    ];
    match class {
        ObjectClass::DATA | ObjectClass::CERTIFICATE => {
            d.push((A::PRIVATE, AttrValue::Bool(false)))
        }
        ObjectClass::PUBLIC_KEY => d.extend([
            (A::PRIVATE, AttrValue::Bool(false)),
            (A::ID, AttrValue::Bytes(Vec::new())),
            (A::START_DATE, AttrValue::Date(None)),
            (A::END_DATE, AttrValue::Date(None)),
            (A::DERIVE, AttrValue::Bool(false)),
            (A::LOCAL, AttrValue::Bool(false)),
            (A::ENCRYPT, AttrValue::Bool(false)),
            (A::VERIFY, AttrValue::Bool(false)),
            (A::VERIFY_RECOVER, AttrValue::Bool(false)),
            (A::WRAP, AttrValue::Bool(false)),
            (A::ENCAPSULATE, AttrValue::Bool(false)),
            (A::TRUSTED, AttrValue::Bool(false)),
        ]),
        ObjectClass::PRIVATE_KEY | ObjectClass::SECRET_KEY => {
            d.extend([
                (A::PRIVATE, AttrValue::Bool(true)),
                (A::ID, AttrValue::Bytes(Vec::new())),
                (A::START_DATE, AttrValue::Date(None)),
                (A::END_DATE, AttrValue::Date(None)),
                (A::DERIVE, AttrValue::Bool(false)),
                (A::LOCAL, AttrValue::Bool(false)),
                (A::SENSITIVE, AttrValue::Bool(true)),
                (A::EXTRACTABLE, AttrValue::Bool(false)),
                (A::DECRYPT, AttrValue::Bool(false)),
                (A::SIGN, AttrValue::Bool(false)),
                (A::UNWRAP, AttrValue::Bool(false)),
                (A::WRAP_WITH_TRUSTED, AttrValue::Bool(false)),
                (A::ALWAYS_AUTHENTICATE, AttrValue::Bool(false)),
            ]);
            if class == ObjectClass::PRIVATE_KEY {
                d.extend([
                    (A::SIGN_RECOVER, AttrValue::Bool(false)),
                    (A::DECAPSULATE, AttrValue::Bool(false)),
                ]);
            } else {
                d.extend([
                    (A::ENCRYPT, AttrValue::Bool(false)),
                    (A::VERIFY, AttrValue::Bool(false)),
                    (A::WRAP, AttrValue::Bool(false)),
                    (A::TRUSTED, AttrValue::Bool(false)),
                ]);
            }
        }
        _ => {}
    }
    d
}

/// Attributes `C_CreateObject` needs for a key of `class`/`key_type` (imported, not
/// generated).
pub fn required_for_import(class: ObjectClass, key_type: KeyType) -> &'static [AttributeType] {
    use AttributeType as A;
    match (class, key_type) {
        (ObjectClass::SECRET_KEY, _) => &[A::VALUE],
        (ObjectClass::PUBLIC_KEY, KeyType::RSA) => &[A::MODULUS, A::PUBLIC_EXPONENT],
        (ObjectClass::PRIVATE_KEY, KeyType::RSA) => {
            &[A::MODULUS, A::PUBLIC_EXPONENT, A::PRIVATE_EXPONENT]
        }
        (ObjectClass::PUBLIC_KEY, KeyType::EC | KeyType::EC_EDWARDS | KeyType::EC_MONTGOMERY) => {
            &[A::EC_PARAMS, A::EC_POINT]
        }
        (ObjectClass::PRIVATE_KEY, KeyType::EC | KeyType::EC_EDWARDS | KeyType::EC_MONTGOMERY) => {
            &[A::EC_PARAMS, A::VALUE]
        }
        (ObjectClass::PUBLIC_KEY, KeyType::ML_KEM | KeyType::ML_DSA | KeyType::SLH_DSA) => {
            &[A::PARAMETER_SET, A::VALUE]
        }
        (ObjectClass::PRIVATE_KEY, KeyType::ML_KEM | KeyType::ML_DSA | KeyType::SLH_DSA) => {
            &[A::PARAMETER_SET]
        }
        _ => &[],
    }
}

/// Whether the caller may read `attr` of an object with these attributes: secret components
/// and the `CKA_VALUE` of private and secret keys are refused when the key is sensitive or
/// not extractable (PKCS#11 §4.4: "sensitive" attributes).
pub fn check_readable(attrs: &Attributes, attr: AttributeType) -> Result<(), AttributeError> {
    let class = match attrs.get(&AttributeType::CLASS) {
        Some(AttrValue::Ulong(c)) => ObjectClass(*c),
        _ => return Ok(()),
    };
    let is_key_secret = matches!(class, ObjectClass::PRIVATE_KEY | ObjectClass::SECRET_KEY)
        && (attr == AttributeType::VALUE || attr.is_secret_component());
    if !is_key_secret {
        return Ok(());
    }
    let flag = |a| matches!(attrs.get(&a), Some(AttrValue::Bool(true)));
    if flag(AttributeType::SENSITIVE) || !flag(AttributeType::EXTRACTABLE) {
        return Err(AttributeError::Sensitive(attr));
    }
    Ok(())
}

/// Checks one change `C_SetAttributeValue` (or `C_CopyObject`) wants to make, by the
/// one-way rules: `CKA_SENSITIVE` and `CKA_WRAP_WITH_TRUSTED` may only become true,
/// `CKA_EXTRACTABLE` may only become false, `CKA_TRUSTED` needs the SO, fixed attributes never
/// change, and nothing changes on an unmodifiable object.
pub fn check_change(
    attrs: &Attributes,
    attr: AttributeType,
    new: &AttrValue,
    is_so: bool,
) -> Result<(), AttributeError> {
    check_kinds(&[(attr, new.clone())])?;
    if matches!(
        attrs.get(&AttributeType::MODIFIABLE),
        Some(AttrValue::Bool(false))
    ) {
        return Err(AttributeError::ReadOnly(attr));
    }
    if fixed_after_creation(attr) {
        return Err(AttributeError::ReadOnly(attr));
    }
    let old = attrs.get(&attr);
    match (attr, old, new) {
        (AttributeType::SENSITIVE, Some(AttrValue::Bool(true)), AttrValue::Bool(false))
        | (AttributeType::WRAP_WITH_TRUSTED, Some(AttrValue::Bool(true)), AttrValue::Bool(false))
        | (AttributeType::EXTRACTABLE, Some(AttrValue::Bool(false)), AttrValue::Bool(true)) => {
            Err(AttributeError::ReadOnly(attr))
        }
        (AttributeType::TRUSTED, _, AttrValue::Bool(true)) if !is_so => {
            Err(AttributeError::ReadOnly(attr))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sensitive: bool, extractable: bool) -> Attributes {
        let mut a = Attributes::new();
        a.insert(
            AttributeType::CLASS,
            AttrValue::Ulong(ObjectClass::SECRET_KEY.0),
        );
        a.insert(AttributeType::SENSITIVE, AttrValue::Bool(sensitive));
        a.insert(AttributeType::EXTRACTABLE, AttrValue::Bool(extractable));
        a.insert(AttributeType::VALUE, AttrValue::Bytes(vec![1; 16]));
        a
    }

    #[test]
    fn sensitive_values_are_never_readable() {
        assert_eq!(
            check_readable(&key(true, true), AttributeType::VALUE),
            Err(AttributeError::Sensitive(AttributeType::VALUE))
        );
        assert!(check_readable(&key(false, false), AttributeType::VALUE).is_err());
        assert!(check_readable(&key(false, true), AttributeType::VALUE).is_ok());
        assert!(check_readable(&key(true, false), AttributeType::LABEL).is_ok());
    }

    #[test]
    fn one_way_attributes_only_move_one_way() {
        let k = key(true, false);
        assert!(
            check_change(&k, AttributeType::SENSITIVE, &AttrValue::Bool(false), false).is_err()
        );
        assert!(
            check_change(
                &k,
                AttributeType::EXTRACTABLE,
                &AttrValue::Bool(true),
                false
            )
            .is_err()
        );
        let open = key(false, true);
        assert!(
            check_change(
                &open,
                AttributeType::SENSITIVE,
                &AttrValue::Bool(true),
                false
            )
            .is_ok()
        );
        assert!(
            check_change(
                &open,
                AttributeType::EXTRACTABLE,
                &AttrValue::Bool(false),
                false
            )
            .is_ok()
        );
        assert!(
            check_change(
                &open,
                AttributeType::VALUE,
                &AttrValue::Bytes(vec![0; 16]),
                false
            )
            .is_err()
        );
        assert!(
            check_change(&open, AttributeType::TRUSTED, &AttrValue::Bool(true), false).is_err()
        );
        assert!(check_change(&open, AttributeType::TRUSTED, &AttrValue::Bool(true), true).is_ok());
        assert!(check_change(&open, AttributeType::LABEL, &AttrValue::Bool(true), false).is_err());
    }

    #[test]
    fn kinds_and_dates_are_checked() {
        assert!(
            check_kinds(&[(
                AttributeType::START_DATE,
                AttrValue::Date(Some(*b"20261126"))
            )])
            .is_ok()
        );
        assert!(
            check_kinds(&[(
                AttributeType::START_DATE,
                AttrValue::Date(Some(*b"20261326"))
            )])
            .is_err()
        );
        assert!(check_kinds(&[(AttributeType(0x7777_0000), AttrValue::Bool(true))]).is_err());
        assert!(check_kinds(&[(AttributeType::TOKEN, AttrValue::Ulong(1))]).is_err());
    }

    #[test]
    fn keys_default_to_private_sensitive_and_unextractable() {
        let d: Attributes = defaults(ObjectClass::PRIVATE_KEY).into_iter().collect();
        assert_eq!(
            d.get(&AttributeType::SENSITIVE),
            Some(&AttrValue::Bool(true))
        );
        assert_eq!(
            d.get(&AttributeType::EXTRACTABLE),
            Some(&AttrValue::Bool(false))
        );
        assert_eq!(d.get(&AttributeType::PRIVATE), Some(&AttrValue::Bool(true)));
    }

    /// The attribute map against `BTreeMap` as a model: the same contents and order after
    /// every kind of change, over a few thousand pseudo-random steps.
    #[test]
    fn attributes_behave_like_a_sorted_map() {
        let pool: Vec<AttributeType> = (0..24).map(AttributeType).collect();
        follow_the_model(Attributes::new(), &pool);
        // Over a class's defaults (kept apart from the values set, see `Attributes`) the map
        // must show the same as a map holding every default as a value: a value hides its
        // type's default, a removed default stays removed, merges count defaults as present.
        for c in [
            ObjectClass::SECRET_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::DATA,
        ] {
            let mut pool: Vec<AttributeType> = defaults(c).into_iter().map(|(a, _)| a).collect();
            pool.extend((0..12).map(|i| AttributeType(0x8000_0000 + i)));
            pool.extend([AttributeType::VALUE, AttributeType::CLASS]);
            follow_the_model(default_attributes(c), &pool);
            let template: Attributes = [
                (AttributeType::LABEL, AttrValue::Bytes(b"k".to_vec())),
                (AttributeType::VALUE, AttrValue::Bytes(vec![7; 4])),
            ]
            .into_iter()
            .collect();
            let mut all = default_attributes(c);
            all.extend(template.clone());
            assert_eq!(template.clone().over_defaults(c), all, "{c:?}");
            assert!(template.over_defaults(c).into_iter().eq(all));
        }
    }

    /// Drives `ours` and a `BTreeMap` holding the same attributes through the same few
    /// thousand pseudo-random changes of types drawn from `pool`, checking that they agree
    /// after each.
    fn follow_the_model(mut ours: Attributes, pool: &[AttributeType]) {
        use std::collections::BTreeMap;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut draw = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut model: BTreeMap<AttributeType, AttrValue> =
            ours.iter().map(|(k, v)| (*k, v.clone())).collect();
        let n = pool.len() as u64;
        for step in 0..4000u64 {
            let a = pool[draw(n) as usize];
            let v = AttrValue::Ulong(step);
            match draw(8) {
                0 => assert_eq!(ours.insert(a, v.clone()), model.insert(a, v)),
                1 => assert_eq!(ours.remove(&a), model.remove(&a)),
                2 => {
                    let more: Vec<_> = (0..draw(14))
                        .map(|i| (pool[draw(n) as usize], AttrValue::Ulong(step * 10 + i)))
                        .collect();
                    ours.extend(more.clone());
                    model.extend(more);
                }
                3 => {
                    let more: Vec<_> = (0..draw(14))
                        .map(|i| (pool[draw(n) as usize], AttrValue::Ulong(step * 10 + i)))
                        .collect();
                    ours.fill_from(more.clone());
                    for (k, v) in more {
                        model.entry(k).or_insert(v);
                    }
                }
                4 if draw(20) == 0 => {
                    let m = pool[draw(n) as usize].0 % 5;
                    ours.retain(|k, _| k.0 % 5 != m);
                    model.retain(|k, _| k.0 % 5 != m);
                }
                5 => {
                    // A copy behaves the same as the original from here on.
                    ours = ours.clone();
                }
                6 => {
                    for (k, v) in ours.own_values_mut() {
                        if k.0 % 3 == step % 3 {
                            *v = AttrValue::Ulong(step);
                            model.insert(*k, AttrValue::Ulong(step));
                        }
                    }
                }
                _ => {
                    if let (Some(x), Some(y)) = (ours.get_mut(&a), model.get_mut(&a)) {
                        *x = AttrValue::Bool(true);
                        *y = AttrValue::Bool(true);
                    }
                    assert_eq!(ours.get_mut(&a).is_some(), model.contains_key(&a));
                }
            }
            assert_eq!(ours.get(&a), model.get(&a));
            assert_eq!(ours.contains_key(&a), model.contains_key(&a));
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.is_empty(), model.is_empty());
            assert!(ours.iter().eq(model.iter()), "step {step}");
            assert!(ours.keys().eq(model.keys()), "step {step}");
            assert!(ours.values().rev().eq(model.values().rev()), "step {step}");
            // From both ends at once, meeting in the middle.
            let mut both = ours.iter();
            let mut model_both = model.iter();
            loop {
                let (x, y) = if step % 2 == 0 {
                    (both.next(), model_both.next())
                } else {
                    (both.next_back(), model_both.next_back())
                };
                assert_eq!(x, y, "step {step}");
                let (x, y) = (both.next_back(), model_both.next_back());
                assert_eq!(x, y, "step {step}");
                if x.is_none() {
                    break;
                }
            }
        }
        let as_values: Attributes = model.clone().into_iter().collect();
        assert_eq!(ours, as_values);
        assert!(ours.into_iter().eq(model));
    }

    #[test]
    fn collecting_keeps_the_last_value_of_a_type() {
        let collected: Attributes = [
            (AttributeType(3), AttrValue::Ulong(1)),
            (AttributeType(1), AttrValue::Ulong(2)),
            (AttributeType(3), AttrValue::Ulong(3)),
        ]
        .into_iter()
        .collect();
        let keys: Vec<_> = collected.keys().map(|k| k.0).collect();
        assert_eq!(keys, [1, 3]);
        assert_eq!(collected.get(&AttributeType(3)), Some(&AttrValue::Ulong(3)));
    }

    #[test]
    fn attributes_debug_shows_no_byte_values() {
        let mut a = Attributes::new();
        a.insert(AttributeType::VALUE, AttrValue::Bytes(vec![0x42; 4]));
        let shown = format!("{a:?}");
        assert!(
            shown.contains("4 bytes") && !shown.contains("66"),
            "{shown}"
        );
    }

    #[test]
    fn a_secret_value_is_its_bytes_to_compare_and_kind_checks_but_never_printed() {
        let secret = AttrValue::secret(&[0x42; 4]);
        assert_eq!(secret, AttrValue::Bytes(vec![0x42; 4]));
        assert_eq!(AttrValue::Bytes(vec![0x42; 4]), secret);
        assert_ne!(secret, AttrValue::Bytes(vec![0x42; 5]));
        assert_ne!(secret, AttrValue::Bytes(vec![0x43; 4]));
        assert_ne!(secret, AttrValue::Ulong(0x4242_4242));
        assert_eq!(secret.as_bytes(), Some(&[0x42u8; 4][..]));
        assert_eq!(format!("{secret:?}"), "Secret(4 bytes)");
        assert!(check_kinds(&[(AttributeType::VALUE, secret.clone())]).is_ok());
        assert!(check_kinds(&[(AttributeType::SENSITIVE, secret)]).is_err());
    }

    #[test]
    fn default_attributes_are_the_defaults_in_order() {
        for c in [
            ObjectClass::DATA,
            ObjectClass::CERTIFICATE,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::PRIVATE_KEY,
            ObjectClass::SECRET_KEY,
            ObjectClass(0x8000_0001),
        ] {
            let want: Attributes = defaults(c).into_iter().collect();
            assert_eq!(default_attributes(c), want, "{c:?}");
            assert!(default_attributes(c).keys().is_sorted());
        }
    }
}
