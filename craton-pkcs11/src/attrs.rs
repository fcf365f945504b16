//! Attribute values between the C encoding (`CK_BBOOL`, native-endian `CK_ULONG`, `CK_DATE`,
//! byte strings) and the engine's typed [`AttrValue`].

use craton_core::attribute::{AttrKind, AttrValue, AttributeType};
use cryptoki_sys::*;

/// Decodes one attribute from the caller's bytes.
pub(crate) fn decode(attr: AttributeType, raw: &[u8]) -> Result<AttrValue, CK_RV> {
    let kind = attr.kind().ok_or(CKR_ATTRIBUTE_TYPE_INVALID)?;
    Ok(match kind {
        AttrKind::Bool => match raw {
            [b] => AttrValue::Bool(*b != CK_FALSE),
            _ => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
        },
        AttrKind::Ulong => {
            let b: [u8; size_of::<CK_ULONG>()] =
                raw.try_into().map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?;
            AttrValue::Ulong(CK_ULONG::from_ne_bytes(b))
        }
        AttrKind::Date => match raw.len() {
            0 => AttrValue::Date(None),
            8 => AttrValue::Date(Some(
                raw.try_into().map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?,
            )),
            _ => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
        },
        AttrKind::Bytes => AttrValue::Bytes(raw.to_vec()),
    })
}

/// Encodes a value the way the caller reads it. Byte values are wiped when the returned
/// buffer drops (they may be key material).
pub(crate) fn encode(v: &AttrValue) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(match v {
        AttrValue::Bool(b) => vec![if *b { CK_TRUE } else { CK_FALSE }],
        AttrValue::Ulong(n) => (*n as CK_ULONG).to_ne_bytes().to_vec(),
        AttrValue::Date(Some(d)) => d.to_vec(),
        AttrValue::Date(None) => Vec::new(),
        AttrValue::Bytes(b) => b.clone(),
        AttrValue::Secret(b) => b.expose().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_c_encoding() {
        for (a, v) in [
            (AttributeType::TOKEN, AttrValue::Bool(true)),
            (AttributeType::VALUE_LEN, AttrValue::Ulong(32)),
            (
                AttributeType::START_DATE,
                AttrValue::Date(Some(*b"20261126")),
            ),
            (AttributeType::START_DATE, AttrValue::Date(None)),
            (AttributeType::LABEL, AttrValue::Bytes(b"k".to_vec())),
        ] {
            assert_eq!(decode(a, &encode(&v)), Ok(v));
        }
    }

    #[test]
    fn wrong_sizes_and_unknown_types_are_refused() {
        assert_eq!(
            decode(AttributeType::TOKEN, &[1, 0]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            decode(AttributeType::VALUE_LEN, &[1, 0, 0, 0]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            decode(AttributeType::END_DATE, b"2026"),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            decode(AttributeType(0x7fff_0000), b""),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
    }
}
