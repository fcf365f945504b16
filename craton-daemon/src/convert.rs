//! Protobuf messages to engine types and back. The server parses every request here, once,
//! at the edge; remote clients (the module's remote mode, the CLI) use the reverse direction.
//! A malformed message gets the `CK_RV` PKCS#11 gives the same mistake in C.

use crate::pb;
use crate::status::{CkError, ck};
use craton_core::aes::{AesMode, GcmIv, GcmParams, KeyWrap};
use craton_core::attribute::{AttrKind, AttrValue, AttributeType as A};
use craton_core::digest::HashAlg;
use craton_core::mechanism::MechanismType as M;
use craton_core::ops::{HkdfParams, Mechanism, OaepParams, Pbkdf2Params, PssParams};
use cryptoki_sys::*;
use pb::mechanism::Params;

fn bad_param() -> CkError {
    ck(CKR_MECHANISM_PARAM_INVALID)
}

fn hash(n: u64) -> Result<HashAlg, CkError> {
    HashAlg::from_mechanism(M(n)).ok_or_else(bad_param)
}

/// A request's mechanism, parameters parsed. A missing mechanism is `CKR_ARGUMENTS_BAD`.
pub fn mechanism(m: Option<&pb::Mechanism>) -> Result<Mechanism, CkError> {
    let m = m.ok_or(ck(CKR_ARGUMENTS_BAD))?;
    let t = M(m.r#type);
    let crypto = |e: craton_core::CryptoError| ck(craton_store::ck::from_crypto(&e));
    let Some(params) = &m.params else {
        return Mechanism::without_params(t).map_err(crypto);
    };
    Ok(match (t, params) {
        (M::AES_CBC | M::AES_CBC_PAD, Params::Iv(iv)) => {
            let iv: [u8; 16] = iv.as_slice().try_into().map_err(|_| bad_param())?;
            Mechanism::Aes(if t == M::AES_CBC {
                AesMode::Cbc { iv }
            } else {
                AesMode::CbcPad { iv }
            })
        }
        (M::AES_CTR, Params::Ctr(c)) => Mechanism::Aes(AesMode::Ctr {
            counter_block: c
                .counter_block
                .as_slice()
                .try_into()
                .map_err(|_| bad_param())?,
            counter_bits: c.counter_bits,
        }),
        (M::AES_GCM, Params::Gcm(g)) => Mechanism::Aes(AesMode::Gcm(gcm(g)?)),
        (M::AES_CMAC_GENERAL, Params::MacLength(n)) => Mechanism::AesCmac {
            tag_len: usize::try_from(*n).map_err(|_| bad_param())?,
            general: true,
        },
        (_, Params::MacLength(n)) => {
            let hash = HashAlg::ALL
                .into_iter()
                .find(|h| craton_core::mac::hmac_mechanisms(*h).1 == t)
                .ok_or_else(bad_param)?;
            Mechanism::Hmac {
                hash,
                tag_len: usize::try_from(*n).map_err(|_| bad_param())?,
                general: true,
            }
        }
        (_, Params::Pss(p)) => {
            let params = PssParams {
                hash: hash(p.hash)?,
                mgf1: hash(p.mgf1_hash)?,
                salt_len: usize::try_from(p.salt_length).map_err(|_| bad_param())?,
            };
            Mechanism::pss(t, params).map_err(crypto)?
        }
        (M::RSA_PKCS_OAEP, Params::Oaep(p)) => Mechanism::RsaOaep(OaepParams {
            hash: hash(p.hash)?,
            mgf1: hash(p.mgf1_hash)?,
            label: p.label.clone(),
        }),
        (M::ML_DSA | M::SLH_DSA, Params::Context(c)) => {
            if c.len() > 255 {
                return Err(bad_param());
            }
            if t == M::ML_DSA {
                Mechanism::MlDsa { context: c.clone() }
            } else {
                Mechanism::SlhDsa { context: c.clone() }
            }
        }
        (M::ECDH1_DERIVE, Params::PublicValue(v)) => Mechanism::Ecdh { public: v.clone() },
        (M::HKDF_DERIVE | M::HKDF_DATA, Params::Hkdf(p)) => Mechanism::Hkdf {
            params: HkdfParams {
                hash: hash(p.hash)?,
                extract: p.extract,
                expand: p.expand,
                salt: p.salt.clone(),
                info: p.info.clone(),
            },
            data: t == M::HKDF_DATA,
        },
        (M::PKCS5_PBKD2, Params::Pbkdf2(p)) => Mechanism::Pbkdf2(Pbkdf2Params {
            prf: hash(p.prf_hash)?,
            salt: p.salt.clone(),
            iterations: p.iterations,
            password: zeroize::Zeroizing::new(p.password.clone()),
        }),
        // Parameters the mechanism does not take, or of the wrong kind.
        _ => {
            // A mechanism the token does not know at all says so first.
            Mechanism::without_params(t).map_err(|e| match e {
                craton_core::CryptoError::MechanismUnsupported(_) => crypto(e),
                _ => bad_param(),
            })?;
            return Err(bad_param());
        }
    })
}

fn gcm(g: &pb::GcmParams) -> Result<GcmParams, CkError> {
    let iv = match (g.iv.is_empty(), g.generate_iv_length) {
        (false, 0) => GcmIv::Given(g.iv.clone()),
        (true, n) if n > 0 => GcmIv::Generate {
            fixed: g.generate_iv_fixed.clone(),
            len: n as usize,
        },
        _ => return Err(bad_param()),
    };
    Ok(GcmParams {
        iv,
        aad: g.aad.clone(),
        tag_bits: g.tag_bits as usize,
    })
}

/// The message for a mechanism (the remote client's direction).
pub fn mechanism_to_pb(m: &Mechanism) -> pb::Mechanism {
    let params = match m {
        Mechanism::Aes(AesMode::Cbc { iv } | AesMode::CbcPad { iv }) => {
            Some(Params::Iv(iv.to_vec()))
        }
        Mechanism::Aes(AesMode::Ctr {
            counter_block,
            counter_bits,
        }) => Some(Params::Ctr(pb::CtrParams {
            counter_block: counter_block.to_vec(),
            counter_bits: *counter_bits,
        })),
        Mechanism::Aes(AesMode::Gcm(g)) => {
            let (iv, generate_iv_length, generate_iv_fixed) = match &g.iv {
                GcmIv::Given(iv) => (iv.clone(), 0, Vec::new()),
                GcmIv::Generate { fixed, len } => (
                    Vec::new(),
                    u32::try_from(*len).unwrap_or(u32::MAX),
                    fixed.clone(),
                ),
            };
            Some(Params::Gcm(pb::GcmParams {
                iv,
                aad: g.aad.clone(),
                tag_bits: u32::try_from(g.tag_bits).unwrap_or(u32::MAX),
                generate_iv_length,
                generate_iv_fixed,
            }))
        }
        Mechanism::Aes(AesMode::Ecb) | Mechanism::AesKeyWrap(KeyWrap::Kw | KeyWrap::Kwp) => None,
        Mechanism::AesCmac {
            tag_len,
            general: true,
        }
        | Mechanism::Hmac {
            tag_len,
            general: true,
            ..
        } => Some(Params::MacLength(*tag_len as u64)),
        Mechanism::RsaPss { params, .. } => Some(Params::Pss(pb::PssParams {
            hash: params.hash.mechanism().0,
            mgf1_hash: params.mgf1.mechanism().0,
            salt_length: params.salt_len as u64,
        })),
        Mechanism::RsaOaep(p) => Some(Params::Oaep(pb::OaepParams {
            hash: p.hash.mechanism().0,
            mgf1_hash: p.mgf1.mechanism().0,
            label: p.label.clone(),
        })),
        Mechanism::MlDsa { context } | Mechanism::SlhDsa { context } if !context.is_empty() => {
            Some(Params::Context(context.clone()))
        }
        Mechanism::Ecdh { public } => Some(Params::PublicValue(public.clone())),
        Mechanism::Hkdf { params, .. } => Some(Params::Hkdf(pb::HkdfParams {
            hash: params.hash.mechanism().0,
            extract: params.extract,
            expand: params.expand,
            salt: params.salt.clone(),
            info: params.info.clone(),
        })),
        Mechanism::Pbkdf2(p) => Some(Params::Pbkdf2(pb::Pbkdf2Params {
            prf_hash: p.prf.mechanism().0,
            salt: p.salt.clone(),
            iterations: p.iterations,
            password: p.password.to_vec(),
        })),
        _ => None,
    };
    pb::Mechanism {
        r#type: m.mechanism_type().0,
        params,
    }
}

/// One attribute; its value must be of the attribute's kind.
pub fn attribute(a: &pb::Attribute) -> Result<(A, AttrValue), CkError> {
    use pb::attribute::Value;
    let t = A(a.r#type);
    let kind = t.kind().ok_or(ck(CKR_ATTRIBUTE_TYPE_INVALID))?;
    let invalid = ck(CKR_ATTRIBUTE_VALUE_INVALID);
    let v = match (kind, &a.value) {
        (AttrKind::Bool, Some(Value::Boolean(b))) => AttrValue::Bool(*b),
        (AttrKind::Ulong, Some(Value::Number(n))) => AttrValue::Ulong(*n),
        (AttrKind::Bytes, Some(Value::Bytes(b))) => AttrValue::Bytes(b.clone()),
        // An empty bytes field arrives as no value at all.
        (AttrKind::Bytes, None) => AttrValue::Bytes(Vec::new()),
        (AttrKind::Date, Some(Value::Date(d))) if d.is_empty() => AttrValue::Date(None),
        (AttrKind::Date, Some(Value::Date(d))) => {
            let date: [u8; 8] = d.as_bytes().try_into().map_err(|_| invalid)?;
            if !date.iter().all(u8::is_ascii_digit) {
                return Err(invalid);
            }
            AttrValue::Date(Some(date))
        }
        _ => return Err(invalid),
    };
    Ok((t, v))
}

/// A template.
pub fn template(attrs: &[pb::Attribute]) -> Result<Vec<(A, AttrValue)>, CkError> {
    attrs.iter().map(attribute).collect()
}

/// The message for one attribute.
pub fn attribute_to_pb(t: A, v: &AttrValue) -> pb::Attribute {
    use pb::attribute::Value;
    let value = match v {
        AttrValue::Bool(b) => Value::Boolean(*b),
        AttrValue::Ulong(n) => Value::Number(*n),
        AttrValue::Bytes(b) => Value::Bytes(b.clone()),
        AttrValue::Secret(b) => Value::Bytes(b.expose().to_vec()),
        AttrValue::Date(Some(d)) => Value::Date(String::from_utf8_lossy(d).into_owned()),
        AttrValue::Date(None) => Value::Date(String::new()),
    };
    pb::Attribute {
        r#type: t.0,
        value: Some(value),
    }
}

/// A template as messages.
pub fn template_to_pb(template: &[(A, AttrValue)]) -> Vec<pb::Attribute> {
    template
        .iter()
        .map(|(t, v)| attribute_to_pb(*t, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_round_trip() {
        let cases = [
            Mechanism::EcdsaWith(HashAlg::Sha256),
            Mechanism::Aes(AesMode::CbcPad { iv: [7; 16] }),
            Mechanism::Aes(AesMode::Ctr {
                counter_block: [1; 16],
                counter_bits: 32,
            }),
            Mechanism::Aes(AesMode::Gcm(GcmParams {
                iv: GcmIv::Generate {
                    fixed: vec![1, 2],
                    len: 12,
                },
                aad: b"aad".to_vec(),
                tag_bits: 128,
            })),
            Mechanism::Aes(AesMode::Gcm(GcmParams {
                iv: GcmIv::Given(vec![3; 12]),
                aad: Vec::new(),
                tag_bits: 96,
            })),
            Mechanism::Hmac {
                hash: HashAlg::Sha384,
                tag_len: 20,
                general: true,
            },
            Mechanism::RsaOaep(OaepParams {
                hash: HashAlg::Sha256,
                mgf1: HashAlg::Sha256,
                label: b"l".to_vec(),
            }),
            Mechanism::MlDsa {
                context: b"ctx".to_vec(),
            },
            Mechanism::MlDsa {
                context: Vec::new(),
            },
            Mechanism::Ecdh {
                public: vec![4; 65],
            },
            Mechanism::Generate(M::EC_KEY_PAIR_GEN),
            Mechanism::MlKem,
        ];
        for m in cases {
            let back = mechanism(Some(&mechanism_to_pb(&m))).expect("parses");
            assert_eq!(back, m);
        }
        let pss = Mechanism::pss(
            M::SHA256_RSA_PKCS_PSS,
            PssParams {
                hash: HashAlg::Sha256,
                mgf1: HashAlg::Sha256,
                salt_len: 32,
            },
        )
        .expect("valid");
        assert_eq!(mechanism(Some(&mechanism_to_pb(&pss))).expect("ok"), pss);
    }

    #[test]
    fn malformed_mechanisms_get_the_pkcs11_codes() {
        let code = |m: pb::Mechanism| mechanism(Some(&m)).map(|_| ()).map_err(|e| e.rv());
        assert_eq!(
            code(pb::Mechanism {
                r#type: 0x7fff_fff0,
                params: None
            }),
            Err(CKR_MECHANISM_INVALID)
        );
        // CBC needs its IV; a short IV is a bad parameter.
        assert_eq!(
            code(pb::Mechanism {
                r#type: M::AES_CBC.0,
                params: None
            }),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            code(pb::Mechanism {
                r#type: M::AES_CBC.0,
                params: Some(Params::Iv(vec![0; 15]))
            }),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        // ECDSA takes no parameter.
        assert_eq!(
            code(pb::Mechanism {
                r#type: M::ECDSA.0,
                params: Some(Params::Iv(vec![0; 16]))
            }),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        // GCM with both a caller IV and a generated one is ambiguous.
        assert_eq!(
            code(pb::Mechanism {
                r#type: M::AES_GCM.0,
                params: Some(Params::Gcm(pb::GcmParams {
                    iv: vec![1; 12],
                    generate_iv_length: 12,
                    tag_bits: 128,
                    ..Default::default()
                }))
            }),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            mechanism(None).map(|_| ()).map_err(|e| e.rv()),
            Err(CKR_ARGUMENTS_BAD)
        );
    }

    #[test]
    fn attributes_must_have_their_kind() {
        use pb::attribute::Value;
        let a = |t: A, v: Value| pb::Attribute {
            r#type: t.0,
            value: Some(v),
        };
        assert_eq!(
            attribute(&a(A::TOKEN, Value::Boolean(true))).expect("ok"),
            (A::TOKEN, AttrValue::Bool(true))
        );
        assert_eq!(
            attribute(&a(A::TOKEN, Value::Number(1))).map_err(|e| e.rv()),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            attribute(&a(A::START_DATE, Value::Date("2026-11".into()))).map_err(|e| e.rv()),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            attribute(&a(A(0x7fff_0000), Value::Bytes(vec![]))).map_err(|e| e.rv()),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        for (t, v) in [
            (A::LABEL, AttrValue::Bytes(b"x".to_vec())),
            (A::VALUE_LEN, AttrValue::Ulong(32)),
            (A::END_DATE, AttrValue::Date(Some(*b"20270101"))),
            (A::END_DATE, AttrValue::Date(None)),
        ] {
            assert_eq!(attribute(&attribute_to_pb(t, &v)).expect("ok"), (t, v));
        }
    }
}
