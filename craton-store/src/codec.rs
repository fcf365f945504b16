//! The byte encoding of stored records: length-prefixed little-endian fields, read back with
//! bounds checks so that a damaged record yields an error, never a panic or a huge
//! allocation. (Damage is normally caught earlier by the AES-GCM tag; this is the second
//! line.)

use craton_core::attribute::{AttrValue, AttributeType, Attributes};
use zeroize::Zeroizing;

/// A record that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed record: {0}")]
pub struct Malformed(pub &'static str);

/// Appends fields to a buffer that is wiped on drop.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Zeroizing<Vec<u8>>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Records are bounded far below 4 GiB by the engine's size limits.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
        self
    }
}

/// Reads fields back, refusing anything that runs past the end.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.data.len() < n {
            return Err(Malformed("truncated"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
    pub(crate) fn finish(self) -> Result<(), Malformed> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(Malformed("trailing bytes"))
        }
    }
}

const TAG_BOOL: u8 = 0;
const TAG_ULONG: u8 = 1;
const TAG_BYTES: u8 = 2;
const TAG_DATE_EMPTY: u8 = 3;
const TAG_DATE: u8 = 4;

/// Encodes an attribute set.
pub(crate) fn write_attributes(w: &mut Writer, attrs: &Attributes) {
    w.u32(u32::try_from(attrs.len()).unwrap_or(u32::MAX));
    for (t, v) in attrs {
        w.u64(t.0);
        match v {
            AttrValue::Bool(b) => {
                w.u8(TAG_BOOL).u8(u8::from(*b));
            }
            AttrValue::Ulong(u) => {
                w.u8(TAG_ULONG).u64(*u);
            }
            // A secret part is stored like any other bytes (the record is sealed); the
            // object it is read back into moves it to locked pages again.
            AttrValue::Bytes(b) => {
                w.u8(TAG_BYTES).bytes(b);
            }
            AttrValue::Secret(b) => {
                w.u8(TAG_BYTES).bytes(b.expose());
            }
            AttrValue::Date(None) => {
                w.u8(TAG_DATE_EMPTY);
            }
            AttrValue::Date(Some(d)) => {
                w.u8(TAG_DATE);
                w.buf.extend_from_slice(d);
            }
        }
    }
}

/// Decodes an attribute set written by [`write_attributes`].
pub(crate) fn read_attributes(r: &mut Reader<'_>) -> Result<Attributes, Malformed> {
    let n = r.u32()?;
    let mut attrs = Attributes::new();
    for _ in 0..n {
        let t = AttributeType(r.u64()?);
        let v = match r.u8()? {
            TAG_BOOL => AttrValue::Bool(match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(Malformed("boolean")),
            }),
            TAG_ULONG => AttrValue::Ulong(r.u64()?),
            TAG_BYTES => AttrValue::Bytes(r.bytes()?.to_vec()),
            TAG_DATE_EMPTY => AttrValue::Date(None),
            TAG_DATE => AttrValue::Date(Some(r.array::<8>()?)),
            _ => return Err(Malformed("attribute tag")),
        };
        if attrs.insert(t, v).is_some() {
            return Err(Malformed("duplicate attribute"));
        }
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_and_damage_is_an_error() {
        let mut a = Attributes::new();
        a.insert(AttributeType::TOKEN, AttrValue::Bool(true));
        a.insert(AttributeType::CLASS, AttrValue::Ulong(4));
        a.insert(AttributeType::LABEL, AttrValue::Bytes(b"k".to_vec()));
        a.insert(
            AttributeType::START_DATE,
            AttrValue::Date(Some(*b"20261126")),
        );
        a.insert(AttributeType::END_DATE, AttrValue::Date(None));
        let mut w = Writer::default();
        write_attributes(&mut w, &a);
        let mut r = Reader::new(&w.buf);
        assert_eq!(read_attributes(&mut r).unwrap(), a);
        r.finish().unwrap();
        for cut in 0..w.buf.len() {
            let mut r = Reader::new(&w.buf[..cut]);
            assert!(read_attributes(&mut r).is_err(), "cut at {cut}");
        }
        let mut huge = Writer::default();
        huge.u32(1).u64(0x11).u8(TAG_BYTES).u32(u32::MAX);
        assert!(read_attributes(&mut Reader::new(&huge.buf)).is_err());
    }
}
