//! Known-answer tests from the NIST CAVP and RFC vector files in `testdata/` (provenance in
//! `testdata/README.md`). One small parser reads them all: `[section]` headers, `Name = hex`
//! fields, blank lines between records, bare words (`FAIL`) as flags.

use craton_core::aes::{self, AesMode, GcmIv, GcmParams, KeyWrap};
use craton_core::digest::{self, DigestContext, HashAlg};
use craton_core::ec::{Curve, EcKey};
use craton_core::kdf;
use craton_core::mac::MacContext;
use craton_core::pq::{MlDsaKey, MlDsaParams, MlKemKey, MlKemParams};
use craton_core::rng::{HmacDrbg, Rng};
use craton_core::rsa::{RsaComponents, RsaKey, RsaSignScheme};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
struct Record {
    section: BTreeMap<String, String>,
    fields: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Record {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn hex(&self, name: &str) -> Vec<u8> {
        let v = self
            .get(name)
            .unwrap_or_else(|| panic!("field {name} missing in {self:?}"));
        // CAVP drops leading zero nibbles of big integers.
        let v = if v.len() % 2 == 1 {
            format!("0{v}")
        } else {
            v.to_string()
        };
        hex::decode(&v).unwrap_or_else(|e| panic!("field {name}: {e}"))
    }
    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn parse(rel: &str) -> Vec<Record> {
    let text = std::fs::read_to_string(testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut section = BTreeMap::new();
    let mut records = Vec::new();
    let mut cur = Record::default();
    let flush = |cur: &mut Record, records: &mut Vec<Record>| {
        if !cur.fields.is_empty() || !cur.flags.is_empty() {
            records.push(std::mem::take(cur));
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            flush(&mut cur, &mut records);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            flush(&mut cur, &mut records);
            if cur.section.is_empty() && !records.is_empty() && !inner.contains('=') {
                section.clear();
            }
            match inner.split_once('=') {
                Some((k, v)) => section.insert(k.trim().to_string(), v.trim().to_string()),
                None => section.insert("name".to_string(), inner.to_string()),
            };
            continue;
        }
        // Some files run records together; a COUNT line always starts a new one.
        let starts_record = line
            .split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("count"));
        if starts_record {
            flush(&mut cur, &mut records);
        }
        if cur.fields.is_empty() && cur.flags.is_empty() {
            cur.section = section.clone();
        }
        match line.split_once('=') {
            Some((k, v)) => cur
                .fields
                .push((k.trim().to_string(), v.trim().to_string())),
            None => cur.flags.push(line.to_string()),
        }
    }
    flush(&mut cur, &mut records);
    records
}

fn rng() -> Rng {
    crate::test_rng(3)
}

#[test]
fn sha_short_messages() {
    let files = [
        ("SHA1ShortMsg.rsp", HashAlg::Sha1),
        ("SHA224ShortMsg.rsp", HashAlg::Sha224),
        ("SHA256ShortMsg.rsp", HashAlg::Sha256),
        ("SHA384ShortMsg.rsp", HashAlg::Sha384),
        ("SHA512ShortMsg.rsp", HashAlg::Sha512),
        ("SHA3_224ShortMsg.rsp", HashAlg::Sha3_224),
        ("SHA3_256ShortMsg.rsp", HashAlg::Sha3_256),
        ("SHA3_384ShortMsg.rsp", HashAlg::Sha3_384),
        ("SHA3_512ShortMsg.rsp", HashAlg::Sha3_512),
    ];
    for (file, alg) in files {
        let mut n = 0;
        for r in parse(&format!("cavp/sha/{file}")) {
            let Some(len) = r.get("Len") else { continue };
            let bits: usize = len.parse().expect("Len");
            let msg = &r.hex("Msg")[..bits / 8];
            assert_eq!(
                digest::digest(alg, msg).expect("digest"),
                r.hex("MD"),
                "{file} Len={bits}"
            );
            // Multi-part, byte by byte, through a clone taken halfway.
            let mut ctx = DigestContext::new(alg).expect("ctx");
            let (a, b) = msg.split_at(msg.len() / 2);
            ctx.update(a);
            let mut fork = ctx.clone();
            fork.update(b);
            assert_eq!(fork.finish(), r.hex("MD"), "{file} multi-part Len={bits}");
            n += 1;
        }
        assert!(n > 60, "{file}: only {n} records");
    }
}

#[test]
fn hmac_rfc_vectors() {
    let files = [
        ("rfc-2202-sha1.txt", HashAlg::Sha1),
        ("rfc-4231-sha224.txt", HashAlg::Sha224),
        ("rfc-4231-sha256.txt", HashAlg::Sha256),
        ("rfc-4231-sha384.txt", HashAlg::Sha384),
        ("rfc-4231-sha512.txt", HashAlg::Sha512),
    ];
    for (file, alg) in files {
        let mut n = 0;
        for r in parse(&format!("rfc/{file}")) {
            if !r.has("MD") {
                continue;
            }
            let md = r.hex("MD");
            let mut m = MacContext::hmac(alg, &r.hex("Key"), md.len()).expect("ctx");
            m.update(&r.hex("Msg")).expect("update");
            assert_eq!(m.finish().expect("tag"), md, "{file}");
            n += 1;
        }
        assert!(n >= 6, "{file}: {n}");
    }
}

#[test]
fn cmac_sp800_38b() {
    for file in [
        "nist-800-38b-aes128.txt",
        "nist-800-38b-aes192.txt",
        "nist-800-38b-aes256.txt",
    ] {
        let records = parse(&format!("cavp/cmac/{file}"));
        assert_eq!(records.len(), 4, "{file}");
        for r in records {
            let mut m = MacContext::cmac(&r.hex("KEY"), 16).expect("ctx");
            m.update(&r.hex("MESSAGE")).expect("update");
            assert_eq!(m.finish().expect("tag"), r.hex("OUTPUT"), "{file}");
        }
    }
}

#[test]
fn aes_ecb_cbc_multi_block_messages() {
    let rng = rng();
    for bits in [128, 192, 256] {
        for (prefix, cbc) in [("ECB", false), ("CBC", true)] {
            let file = format!("cavp/aes/{prefix}MMT{bits}.rsp");
            let mut n = 0;
            for r in parse(&file) {
                let key = r.hex("KEY");
                let mode = if cbc {
                    AesMode::Cbc {
                        iv: r.hex("IV").try_into().expect("16-byte IV"),
                    }
                } else {
                    AesMode::Ecb
                };
                let (pt, ct) = (r.hex("PLAINTEXT"), r.hex("CIPHERTEXT"));
                if r.section.get("name").map(String::as_str) == Some("ENCRYPT") {
                    assert_eq!(
                        aes::encrypt(&key, &mode, &pt, &rng).expect("enc"),
                        ct,
                        "{file}"
                    );
                } else {
                    assert_eq!(
                        &aes::decrypt(&key, &mode, &ct, &rng).expect("dec")[..],
                        &pt[..],
                        "{file}"
                    );
                }
                n += 1;
            }
            assert_eq!(n, 20, "{file}");
        }
    }
}

#[test]
fn aes_ctr_rfc3686() {
    let rng = rng();
    for bits in [128, 192, 256] {
        let file = format!("cavp/aes/aes-{bits}-ctr.txt");
        let records = parse(&file);
        assert_eq!(records.len(), 3, "{file}");
        for r in records {
            let mode = AesMode::Ctr {
                counter_block: r.hex("IV").try_into().expect("IV"),
                counter_bits: 32,
            };
            let ct = aes::encrypt(&r.hex("KEY"), &mode, &r.hex("PLAINTEXT"), &rng).expect("enc");
            assert_eq!(ct, r.hex("CIPHERTEXT"), "{file}");
        }
    }
}

#[test]
fn aes_gcm_encrypt_and_decrypt() {
    let rng = rng();
    let (mut enc, mut dec, mut rejected) = (0, 0, 0);
    for bits in [128, 192, 256] {
        for r in parse(&format!("cavp/aes/gcmEncryptExtIV{bits}.rsp")) {
            let tag = r.hex("Tag");
            let mode = AesMode::Gcm(GcmParams {
                iv: GcmIv::Given(r.hex("IV")),
                aad: r.hex("AAD"),
                tag_bits: tag.len() * 8,
            });
            let mut expected = r.hex("CT");
            expected.extend_from_slice(&tag);
            assert_eq!(
                aes::encrypt(&r.hex("Key"), &mode, &r.hex("PT"), &rng).expect("enc"),
                expected
            );
            enc += 1;
        }
        for r in parse(&format!("cavp/aes/gcmDecrypt{bits}.rsp")) {
            let tag = r.hex("Tag");
            let mode = AesMode::Gcm(GcmParams {
                iv: GcmIv::Given(r.hex("IV")),
                aad: r.hex("AAD"),
                tag_bits: tag.len() * 8,
            });
            let mut input = r.hex("CT");
            input.extend_from_slice(&tag);
            let out = aes::decrypt(&r.hex("Key"), &mode, &input, &rng);
            if r.flags.iter().any(|f| f == "FAIL") {
                assert_eq!(
                    out.map(|_| ()),
                    Err(craton_core::CryptoError::EncryptedDataInvalid)
                );
                rejected += 1;
            } else {
                assert_eq!(&out.expect("dec")[..], &r.hex("PT")[..]);
                dec += 1;
            }
        }
    }
    assert!(
        enc > 300 && dec > 100 && rejected > 50,
        "{enc} {dec} {rejected}"
    );
}

#[test]
fn aes_key_wrap_sp800_38f() {
    let mut n = 0;
    for bits in [128, 192, 256] {
        for (flavour, name) in [(KeyWrap::Kw, "KW"), (KeyWrap::Kwp, "KWP")] {
            for r in parse(&format!("cavp/keywrap/{name}_AE_{bits}.txt")) {
                assert_eq!(
                    aes::wrap(&r.hex("K"), flavour, &r.hex("P")).expect("wrap"),
                    r.hex("C")
                );
                n += 1;
            }
            for r in parse(&format!("cavp/keywrap/{name}_AD_{bits}.txt")) {
                let out = aes::unwrap(&r.hex("K"), flavour, &r.hex("C"));
                if r.flags.iter().any(|f| f == "FAIL") {
                    assert!(out.is_err(), "{name} AD {bits} must fail");
                } else {
                    assert_eq!(&out.expect("unwrap")[..], &r.hex("P")[..]);
                }
                n += 1;
            }
        }
    }
    assert!(n > 100, "{n}");
}

#[test]
fn hkdf_rfc5869_and_pbkdf2_rfc6070() {
    for (file, alg) in [
        ("rfc-5869-HKDF-SHA256.txt", HashAlg::Sha256),
        ("rfc-5869-HKDF-SHA1.txt", HashAlg::Sha1),
    ] {
        // These files put a blank line inside each case: merge fields until OKM arrives.
        let mut records = Vec::new();
        let mut acc = Record::default();
        for r in parse(&format!("rfc/{file}")) {
            acc.fields.extend(r.fields);
            if acc.has("OKM") {
                records.push(std::mem::take(&mut acc));
            }
        }
        assert!(records.len() >= 3);
        for r in records {
            let len: usize = r.get("L").expect("L").parse().expect("L");
            let prk = kdf::hkdf_extract(alg, &r.hex("salt"), &r.hex("IKM")).expect("extract");
            assert_eq!(&prk[..], &r.hex("PRK")[..], "{file} PRK");
            let okm = kdf::hkdf_expand(alg, &prk, &r.hex("info"), len).expect("expand");
            assert_eq!(&okm[..], &r.hex("OKM")[..], "{file} OKM");
        }
    }
    let mut n = 0;
    for r in parse("rfc/rfc-6070-PBKDF2-SHA1.txt") {
        let iterations: u32 = r.get("ITERATIONS").expect("it").parse().expect("it");
        if iterations > 100_000 {
            continue; // the 16 777 216-iteration vector belongs in a benchmark, not a unit test
        }
        let len: usize = r.get("LENGTH").expect("len").parse().expect("len");
        let pw = r.get("PASSWORD").expect("pw").replace("\\0", "\0");
        let salt = r.get("SALT").expect("salt").replace("\\0", "\0");
        let dk = kdf::pbkdf2(
            HashAlg::Sha1,
            pw.as_bytes(),
            salt.as_bytes(),
            iterations,
            len,
        )
        .expect("pbkdf2");
        assert_eq!(&dk[..], &r.hex("DERIVED_KEY")[..]);
        n += 1;
    }
    assert!(n >= 4, "{n}");
}

fn sha_alg(name: &str) -> HashAlg {
    match name {
        "SHA1" | "SHA-1" => HashAlg::Sha1,
        "SHA224" | "SHA-224" => HashAlg::Sha224,
        "SHA256" | "SHA-256" => HashAlg::Sha256,
        "SHA384" | "SHA-384" => HashAlg::Sha384,
        "SHA512" | "SHA-512" => HashAlg::Sha512,
        other => panic!("hash {other}"),
    }
}

/// Walks an RSA SigVer file: `n` records stand alone, `SHAAlg` records use the last `n`.
fn rsa_sigver(file: &str, pss: bool) -> (usize, usize) {
    let (mut pass, mut fail) = (0, 0);
    let mut n = Vec::new();
    for r in parse(file) {
        if r.has("n") {
            n = r.hex("n");
        }
        let Some(sha) = r.get("SHAAlg") else { continue };
        let key = RsaKey::from_components(&RsaComponents {
            modulus: n.clone(),
            public_exponent: r.hex("e"),
            ..Default::default()
        });
        let Ok(key) = key else {
            // Moduli below 1024 bits are refused outright; none are in these files.
            panic!("{file}: key rejected");
        };
        let hash = sha_alg(sha);
        let digest = digest::digest(hash, &r.hex("Msg")).expect("digest");
        let scheme = if pss {
            RsaSignScheme::Pss {
                hash,
                mgf1: hash,
                salt_len: r.hex("SaltVal").len(),
            }
        } else {
            RsaSignScheme::Pkcs1(hash)
        };
        let ok = key.verify(scheme, &digest, &r.hex("S")).is_ok();
        let expected = r.get("Result").expect("Result").starts_with('P');
        if expected && !pss {
            // CKM_RSA_PKCS recovers the DigestInfo; CKM_RSA_X_509 the whole encoded block
            // 00 01 FF.. 00 DigestInfo (EMSA-PKCS1-v1_5, RFC 8017 §9.2).
            let mut info = hash.digest_info_prefix().to_vec();
            info.extend_from_slice(&digest);
            assert_eq!(
                key.recover(RsaSignScheme::Pkcs1DigestInfo, &r.hex("S"))
                    .expect("recover"),
                info
            );
            let block = key.recover(RsaSignScheme::Raw, &r.hex("S")).expect("raw");
            assert_eq!(block.len(), key.modulus_len());
            assert_eq!(&block[..2], &[0x00, 0x01]);
            assert!(block.ends_with(&info));
            // Raw verification of the same block with CKM_RSA_X_509.
            key.verify(RsaSignScheme::Raw, &block, &r.hex("S"))
                .expect("raw verify");
        }
        assert_eq!(ok, expected, "{file} {sha} {:?}", r.get("Result"));
        if expected { pass += 1 } else { fail += 1 }
    }
    (pass, fail)
}

#[test]
fn rsa_pkcs1_and_pss_signature_verification() {
    let (p, f) = rsa_sigver("cavp/rsa/SigVer15_186-3.rsp", false);
    assert!(p > 40 && f > 100, "{p} {f}");
    let (p, f) = rsa_sigver("cavp/rsa/SigVerPSS_186-3.rsp", true);
    assert!(p > 40 && f > 100, "{p} {f}");
}

#[test]
fn ecdsa_signature_verification() {
    let (mut pass, mut fail) = (0, 0);
    for r in parse("cavp/ecdsa/SigVer.rsp") {
        let Some(name) = r.section.get("name") else {
            continue;
        };
        let Some((curve, sha)) = name.split_once(',') else {
            continue;
        };
        let curve = match curve {
            "P-256" => Curve::P256,
            "P-384" => Curve::P384,
            "P-521" => Curve::P521,
            _ => continue,
        };
        let field = curve.field_len();
        let pad = |v: Vec<u8>| {
            let mut out = vec![0u8; field - v.len()];
            out.extend(v);
            out
        };
        let mut point = vec![0x04];
        point.extend(pad(r.hex("Qx")));
        point.extend(pad(r.hex("Qy")));
        let expected = r.get("Result").expect("Result").starts_with('P');
        let key = match EcKey::from_public_point(curve, &point) {
            Ok(k) => k,
            Err(_) => {
                assert!(!expected, "valid key refused");
                fail += 1;
                continue;
            }
        };
        let mut sig = pad(r.hex("R"));
        sig.extend(pad(r.hex("S")));
        let digest = digest::digest(sha_alg(sha), &r.hex("Msg")).expect("digest");
        assert_eq!(key.verify_digest(&digest, &sig).is_ok(), expected, "{name}");
        if expected { pass += 1 } else { fail += 1 }
    }
    assert!(pass > 30 && fail > 100, "{pass} {fail}");
}

#[test]
fn hmac_drbg_cavp_records() {
    let records = parse("cavp/drbg/HMAC_DRBG_SHA256.rsp");
    assert_eq!(records.len(), 2);
    for r in records {
        let variant = r.section.get("Variant").expect("variant").as_str();
        let mut d = HmacDrbg::instantiate(
            &r.hex("EntropyInput"),
            &r.hex("Nonce"),
            &r.hex("PersonalizationString"),
            1 << 20,
        );
        let expected = r.hex("ReturnedBits");
        let mut out = vec![0u8; expected.len()];
        let additional = r.all("AdditionalInput");
        match variant {
            "reseed" => {
                d.reseed(
                    &r.hex("EntropyInputReseed"),
                    &r.hex("AdditionalInputReseed"),
                );
                for a in additional {
                    d.generate(&mut out, &hex::decode(a).expect("hex"))
                        .expect("generate");
                }
            }
            "pr" => {
                let entropy = r.all("EntropyInputPR");
                for (e, a) in entropy.iter().zip(additional) {
                    d.reseed(&hex::decode(e).expect("hex"), &hex::decode(a).expect("hex"));
                    d.generate(&mut out, b"").expect("generate");
                }
            }
            other => panic!("variant {other}"),
        }
        assert_eq!(out, expected, "variant {variant}");
    }
}

#[test]
fn ml_kem_known_answers() {
    for (file, params) in [
        ("kat_MLKEM_512.rsp", MlKemParams::MlKem512),
        ("kat_MLKEM_768.rsp", MlKemParams::MlKem768),
        ("kat_MLKEM_1024.rsp", MlKemParams::MlKem1024),
    ] {
        let records = parse(&format!("pq/{file}"));
        assert_eq!(records.len(), 3, "{file}");
        for r in records {
            let mut seed = r.hex("d");
            seed.extend(r.hex("z"));
            let key = MlKemKey::from_seed(params, &seed).expect("keygen");
            assert_eq!(key.public_bytes().expect("pk"), r.hex("pk"), "{file} pk");
            assert_eq!(
                &key.expanded_private_bytes().expect("sk")[..],
                &r.hex("sk")[..],
                "{file} sk"
            );
            let (ct, ss) = key
                .encapsulate_deterministic(&r.hex("msg"))
                .expect("encaps");
            assert_eq!(ct, r.hex("ct"), "{file} ct");
            assert_eq!(&ss[..], &r.hex("ss")[..], "{file} ss");
            assert_eq!(
                &key.decapsulate(&r.hex("ct")).expect("decaps")[..],
                &r.hex("ss")[..]
            );
            // Implicit rejection: a bad ciphertext yields the KAT's rejection secret.
            assert_eq!(
                &key.decapsulate(&r.hex("ct_n")).expect("decaps")[..],
                &r.hex("ss_n")[..],
                "{file} ss_n"
            );
            let public = MlKemKey::from_public(params, &r.hex("pk")).expect("pk");
            let (ct2, ss2) = public
                .encapsulate_deterministic(&r.hex("msg"))
                .expect("encaps");
            assert_eq!((ct2, &ss2[..]), (r.hex("ct"), &r.hex("ss")[..]));
        }
    }
}

#[test]
fn ml_dsa_known_answers() {
    for (file, params) in [
        ("kat_MLDSA_44_det_pure.rsp", MlDsaParams::MlDsa44),
        ("kat_MLDSA_65_det_pure.rsp", MlDsaParams::MlDsa65),
        ("kat_MLDSA_87_det_pure.rsp", MlDsaParams::MlDsa87),
    ] {
        let records = parse(&format!("pq/{file}"));
        assert_eq!(records.len(), 3, "{file}");
        for r in records {
            let key = MlDsaKey::from_seed(params, &r.hex("xi")).expect("keygen");
            assert_eq!(key.public_bytes().expect("pk"), r.hex("pk"), "{file} pk");
            let sig_len = params.sizes().1;
            let sm = r.hex("sm");
            let (sig, msg) = sm.split_at(sig_len);
            assert_eq!(msg, &r.hex("msg")[..]);
            let ctx = r.hex("ctx");
            let public = MlDsaKey::from_public(params, &r.hex("pk")).expect("pk");
            public
                .verify(msg, &ctx, sig)
                .expect("KAT signature verifies");
            let mut bad = sig.to_vec();
            bad[5] ^= 1;
            assert!(public.verify(msg, &ctx, &bad).is_err());
            assert!(public.verify(msg, b"another context", sig).is_err());
            let ours = key.sign(msg, &ctx).expect("sign");
            public
                .verify(msg, &ctx, &ours)
                .expect("our signature verifies");
        }
    }
}

#[test]
fn slh_dsa_key_generation_acvp() {
    use craton_core::pq::{SlhDsaKey, SlhDsaParams};
    let mut n = 0;
    for r in parse("acvp/SLH-DSA-keyGen-SHA2.rsp") {
        let params = match r.section.get("name").map(String::as_str) {
            Some("SLH-DSA-SHA2-128s") => SlhDsaParams::Sha2_128s,
            Some("SLH-DSA-SHA2-128f") => SlhDsaParams::Sha2_128f,
            Some("SLH-DSA-SHA2-192s") => SlhDsaParams::Sha2_192s,
            Some("SLH-DSA-SHA2-192f") => SlhDsaParams::Sha2_192f,
            Some("SLH-DSA-SHA2-256s") => SlhDsaParams::Sha2_256s,
            Some("SLH-DSA-SHA2-256f") => SlhDsaParams::Sha2_256f,
            other => panic!("parameter set {other:?}"),
        };
        let mut seeds = r.hex("skSeed");
        seeds.extend(r.hex("skPrf"));
        seeds.extend(r.hex("pkSeed"));
        let key = SlhDsaKey::from_seeds(params, &seeds).expect("keygen");
        assert_eq!(key.public_bytes(), &r.hex("pk")[..], "{params:?} pk");
        assert_eq!(
            key.private_bytes().expect("sk").expose(),
            &r.hex("sk")[..],
            "{params:?} sk"
        );
        if params == SlhDsaParams::Sha2_128f {
            // Signing is slow for the "s" sets; one fast set proves the sign/verify path.
            let rng = rng();
            let sig = key.sign(b"message", b"ctx", &rng).expect("sign");
            let public = SlhDsaKey::from_public(params, &r.hex("pk")).expect("pk");
            public.verify(b"message", b"ctx", &sig).expect("verifies");
            assert!(public.verify(b"message", b"other", &sig).is_err());
            assert!(public.verify(b"message", b"ctx", &sig[1..]).is_err());
        }
        n += 1;
    }
    assert_eq!(n, 12);
}
