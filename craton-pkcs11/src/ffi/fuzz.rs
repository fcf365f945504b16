//! The driver of the `c_abi` cargo-fuzz target (`fuzz/`), built only with the `fuzzing`
//! feature. It lives here because it calls the `unsafe extern "C"` exports, and this tree is
//! where the crate's `unsafe` is allowed; the fuzz target itself only hands it the bytes.
//!
//! Fuzzes libcraton_hsm's C ABI the way a confused or hostile application would call it:
//! attribute templates of any types, lengths and values; mechanisms with any parameters;
//! output buffers too short, absent or exact; operations in any order. Every pointer the
//! harness passes is valid for the length it declares (anything else is the caller's
//! undefined behaviour, not the module's), but everything else is the fuzzer's choice.
//!
//! A failure is any panic inside the module (a panic hook aborts before `catch_unwind` can
//! turn it into `CKR_GENERAL_ERROR`), a crash, or `CKR_GENERAL_ERROR` itself, which the
//! module only returns when something it did not expect happened.

use super::{
    crypt::*, digest::*, general::*, keys::*, message::*, object::*, session::*, sign::*, slot::*,
};
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::OnceLock;

const SO_PIN: &[u8] = b"fuzz-so-pin";
const USER_PIN: &[u8] = b"fuzz-user-pin";

/// Keys made once, as session objects of a session that stays open (every session of the
/// process may use them).
struct Fixture {
    keys: Vec<CK_OBJECT_HANDLE>,
}

fn check(rv: CK_RV, what: &str) {
    assert!(rv == CKR_OK, "{what} failed during set-up: {rv:#x}");
}

// A harness that cannot set itself up has nothing to fuzz: panicking is the right answer.
#[allow(clippy::expect_used)]
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        let dir = std::env::temp_dir().join(format!("craton-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let config = dir.join("craton_hsm.toml");
        std::fs::write(
            &config,
            format!(
                "[token]\nslots = 1\nstate_dir = {:?}\n[security]\ndevelopment_build = true\n\
                 pbkdf2_iterations = 1000\nmax_failed_logins = 100\n[audit]\nlevel = \"none\"\n",
                dir.join("state")
            ),
        )
        .expect("config");
        // SAFETY: set before any other thread exists (libFuzzer runs the target on one).
        unsafe { std::env::set_var("CRATON_HSM_CONFIG", &config) };
        // SAFETY: every pointer below points at a live local for the length passed.
        unsafe {
            check(C_Initialize(null_mut()), "C_Initialize");
            let mut so = SO_PIN.to_vec();
            let mut label = [b' '; 32];
            check(
                C_InitToken(0, so.as_mut_ptr(), so.len() as CK_ULONG, label.as_mut_ptr()),
                "C_InitToken",
            );
            let mut h = 0;
            let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
            check(
                C_OpenSession(0, flags, null_mut(), None, &mut h),
                "C_OpenSession",
            );
            check(
                C_Login(h, CKU_SO, so.as_mut_ptr(), so.len() as CK_ULONG),
                "SO login",
            );
            let mut pin = USER_PIN.to_vec();
            check(
                C_InitPIN(h, pin.as_mut_ptr(), pin.len() as CK_ULONG),
                "C_InitPIN",
            );
            check(C_Logout(h), "C_Logout");
            check(
                C_Login(h, CKU_USER, pin.as_mut_ptr(), pin.len() as CK_ULONG),
                "login",
            );
            let mut keys = Vec::new();
            keys.push(secret(h, CKM_AES_KEY_GEN, 32, &[CKA_ENCRYPT, CKA_DECRYPT]));
            keys.push(secret(h, CKM_AES_KEY_GEN, 16, &[CKA_WRAP, CKA_UNWRAP]));
            keys.push(secret(
                h,
                CKM_GENERIC_SECRET_KEY_GEN,
                32,
                &[CKA_SIGN, CKA_VERIFY],
            ));
            let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
            keys.extend(pair(h, CKM_EC_KEY_PAIR_GEN, CKA_EC_PARAMS, &p256));
            let ed25519 = [0x06, 0x03, 0x2b, 0x65, 0x70];
            keys.extend(pair(
                h,
                CKM_EC_EDWARDS_KEY_PAIR_GEN,
                CKA_EC_PARAMS,
                &ed25519,
            ));
            keys.extend(pair(
                h,
                CKM_RSA_PKCS_KEY_PAIR_GEN,
                CKA_MODULUS_BITS,
                &2048u64.to_ne_bytes(),
            ));
            keys.extend(pair(
                h,
                CKM_ML_KEM_KEY_PAIR_GEN,
                CKA_PARAMETER_SET,
                &CKP_ML_KEM_512.to_ne_bytes(),
            ));
            Fixture { keys }
        }
    })
}

/// # Safety
/// `h` is an open session.
unsafe fn secret(
    h: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    len: CK_ULONG,
    usage: &[CK_ATTRIBUTE_TYPE],
) -> CK_OBJECT_HANDLE {
    let mut len = len;
    let mut yes = [CK_TRUE; 4];
    let mut no = CK_FALSE;
    let mut t = vec![
        attr(CKA_VALUE_LEN, (&mut len as *mut CK_ULONG).cast(), 8),
        attr(CKA_SENSITIVE, (&mut no as *mut CK_BBOOL).cast(), 1),
        attr(CKA_EXTRACTABLE, yes[3..].as_mut_ptr().cast(), 1),
    ];
    for (a, v) in usage.iter().zip(yes.iter_mut()) {
        t.push(attr(*a, (v as *mut CK_BBOOL).cast(), 1));
    }
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut k = 0;
    // SAFETY: the template points at live locals.
    check(
        unsafe { C_GenerateKey(h, &mut m, t.as_mut_ptr(), t.len() as CK_ULONG, &mut k) },
        "key",
    );
    k
}

/// # Safety
/// `h` is an open session.
unsafe fn pair(
    h: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    param: CK_ATTRIBUTE_TYPE,
    value: &[u8],
) -> [CK_OBJECT_HANDLE; 2] {
    let mut v = value.to_vec();
    let mut t = [attr(param, v.as_mut_ptr().cast(), v.len() as CK_ULONG)];
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (mut public, mut private) = (0, 0);
    // SAFETY: the templates point at live locals; empty ones take the natural usage.
    check(
        unsafe {
            C_GenerateKeyPair(
                h,
                &mut m,
                t.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut public,
                &mut private,
            )
        },
        "key pair",
    );
    [public, private]
}

fn attr(t: CK_ATTRIBUTE_TYPE, p: *mut c_void, len: CK_ULONG) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: p,
        ulValueLen: len,
    }
}

/// The fuzzer's bytes, read front to back; an exhausted input reads as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.byte() as usize % from.len()]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.byte() as usize).min(max).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }
    /// A length the module will see for a buffer of `actual` bytes: never more than that.
    fn declared(&mut self, actual: usize) -> CK_ULONG {
        match self.byte() % 4 {
            0 => actual as CK_ULONG,
            1 => 0,
            _ => (self.u32() as usize % (actual + 1)) as CK_ULONG,
        }
    }
}

const ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_VALUE,
    CKA_KEY_TYPE,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_DERIVE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_TRUSTED,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_CERTIFICATE_TYPE,
    CKA_APPLICATION,
    CKA_OBJECT_ID,
    CKA_PARAMETER_SET,
    CKA_UNIQUE_ID,
    CKA_WRAP_TEMPLATE,
    CKA_ALLOWED_MECHANISMS,
    CKA_KEY_GEN_MECHANISM,
    CKA_CHECK_VALUE,
    0x8000_0001,
];

const MECHS: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_ECB,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CTR,
    CKM_AES_GCM,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_KEY_GEN,
    CKM_SHA_1,
    CKM_SHA256,
    CKM_SHA512,
    CKM_SHA3_256,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_RSA_PKCS,
    CKM_RSA_X_509,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_SHA256_RSA_PKCS,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDH1_DERIVE,
    CKM_EDDSA,
    CKM_EC_KEY_PAIR_GEN,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_HKDF_DERIVE,
    CKM_HKDF_DATA,
    CKM_PKCS5_PBKD2,
    CKM_ML_DSA,
    CKM_ML_DSA_KEY_PAIR_GEN,
    CKM_ML_KEM_KEY_PAIR_GEN,
    CKM_ML_KEM,
    CKM_SLH_DSA,
    0x8000_0042,
];

/// Buffers that outlive the call a mechanism is used in.
#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
    a: Vec<u8>,
    b: Vec<u8>,
    gcm: CK_GCM_PARAMS,
    oaep: CK_RSA_PKCS_OAEP_PARAMS,
    ecdh: CK_ECDH1_DERIVE_PARAMS,
    hkdf: CK_HKDF_PARAMS,
    pbkdf2: CK_PKCS5_PBKD2_PARAMS2,
    eddsa: CK_EDDSA_PARAMS,
    context: CK_SIGN_ADDITIONAL_CONTEXT,
}

/// A mechanism whose parameter, if any, points into `s`.
fn mechanism(input: &mut Input<'_>, s: &mut Scratch) -> CK_MECHANISM {
    let t = input.pick(MECHS);
    s.a = input.bytes(300);
    s.b = input.bytes(300);
    let (a, al) = (s.a.as_mut_ptr(), input.declared(s.a.len()));
    let (b, bl) = (s.b.as_mut_ptr(), input.declared(s.b.len()));
    let (p, len): (*mut c_void, usize) = match (t, input.byte() % 3) {
        (_, 0) => (null_mut(), 0),
        (CKM_AES_GCM, _) => {
            s.gcm = CK_GCM_PARAMS {
                pIv: a,
                ulIvLen: al,
                ulIvBits: input.u32() as CK_ULONG % 2048,
                pAAD: b,
                ulAADLen: bl,
                ulTagBits: input.byte() as CK_ULONG,
            };
            (
                (&mut s.gcm as *mut CK_GCM_PARAMS).cast(),
                size_of::<CK_GCM_PARAMS>(),
            )
        }
        (CKM_RSA_PKCS_OAEP, _) => {
            s.oaep = CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: input.pick(&[CKM_SHA_1, CKM_SHA256, CKM_SHA512, 0]),
                mgf: input.pick(&[CKG_MGF1_SHA1, CKG_MGF1_SHA256, CKG_MGF1_SHA512, 0]),
                source: input.pick(&[0, CKZ_DATA_SPECIFIED]),
                pSourceData: a.cast(),
                ulSourceDataLen: al,
            };
            (
                (&mut s.oaep as *mut CK_RSA_PKCS_OAEP_PARAMS).cast(),
                size_of::<CK_RSA_PKCS_OAEP_PARAMS>(),
            )
        }
        (CKM_ECDH1_DERIVE, _) => {
            s.ecdh = CK_ECDH1_DERIVE_PARAMS {
                kdf: input.pick(&[CKD_NULL, CKD_SHA256_KDF]),
                ulSharedDataLen: bl,
                pSharedData: b,
                ulPublicDataLen: al,
                pPublicData: a,
            };
            (
                (&mut s.ecdh as *mut CK_ECDH1_DERIVE_PARAMS).cast(),
                size_of::<CK_ECDH1_DERIVE_PARAMS>(),
            )
        }
        (CKM_HKDF_DERIVE | CKM_HKDF_DATA, _) => {
            s.hkdf = CK_HKDF_PARAMS {
                bExtract: input.byte() & 1,
                bExpand: input.byte() & 1,
                prfHashMechanism: input.pick(&[CKM_SHA256, CKM_SHA512, CKM_AES_CBC]),
                ulSaltType: input.pick(&[
                    CKF_HKDF_SALT_NULL,
                    CKF_HKDF_SALT_DATA,
                    CKF_HKDF_SALT_KEY,
                ]),
                pSalt: a,
                ulSaltLen: al,
                hSaltKey: input.u32() as CK_ULONG,
                pInfo: b,
                ulInfoLen: bl,
            };
            (
                (&mut s.hkdf as *mut CK_HKDF_PARAMS).cast(),
                size_of::<CK_HKDF_PARAMS>(),
            )
        }
        (CKM_PKCS5_PBKD2, _) => {
            s.pbkdf2 = CK_PKCS5_PBKD2_PARAMS2 {
                saltSource: input.pick(&[CKZ_SALT_SPECIFIED, 0]),
                pSaltSourceData: a.cast(),
                ulSaltSourceDataLen: al,
                // Kept small: the iteration count is the caller's own CPU budget.
                iterations: (input.u32() % 2000) as CK_ULONG,
                prf: input.pick(&[CKP_PKCS5_PBKD2_HMAC_SHA256, CKP_PKCS5_PBKD2_HMAC_SHA1, 99]),
                pPrfData: null_mut(),
                ulPrfDataLen: 0,
                pPassword: b,
                ulPasswordLen: bl,
            };
            (
                (&mut s.pbkdf2 as *mut CK_PKCS5_PBKD2_PARAMS2).cast(),
                size_of::<CK_PKCS5_PBKD2_PARAMS2>(),
            )
        }
        (CKM_EDDSA, _) => {
            s.eddsa = CK_EDDSA_PARAMS {
                phFlag: input.byte() & 1,
                ulContextDataLen: al,
                pContextData: a,
            };
            (
                (&mut s.eddsa as *mut CK_EDDSA_PARAMS).cast(),
                size_of::<CK_EDDSA_PARAMS>(),
            )
        }
        (CKM_ML_DSA | CKM_SLH_DSA, _) => {
            s.context = CK_SIGN_ADDITIONAL_CONTEXT {
                hedgeVariant: input.byte() as CK_ULONG % 4,
                pContext: a,
                ulContextLen: al,
            };
            (
                (&mut s.context as *mut CK_SIGN_ADDITIONAL_CONTEXT).cast(),
                size_of::<CK_SIGN_ADDITIONAL_CONTEXT>(),
            )
        }
        // Parameters without pointers: any bytes at all.
        _ => {
            s.raw = input.bytes(64);
            (s.raw.as_mut_ptr().cast(), s.raw.len())
        }
    };
    CK_MECHANISM {
        mechanism: t,
        pParameter: p,
        ulParameterLen: len as CK_ULONG,
    }
}

/// A template of up to 8 attributes whose values live in `values`.
fn template(input: &mut Input<'_>, values: &mut Vec<Vec<u8>>) -> Vec<CK_ATTRIBUTE> {
    let n = input.byte() % 9;
    values.clear();
    for _ in 0..n {
        let v = match input.byte() % 4 {
            0 => vec![input.byte() & 1],
            1 => (input.u32() as CK_ULONG).to_ne_bytes().to_vec(),
            _ => input.bytes(200),
        };
        values.push(v);
    }
    values
        .iter_mut()
        .map(|v| {
            let t = input.pick(ATTRS);
            let len = input.declared(v.len());
            let p = if input.byte().is_multiple_of(8) {
                null_mut()
            } else {
                v.as_mut_ptr().cast()
            };
            attr(t, p, if p.is_null() { 0 } else { len })
        })
        .collect()
}

/// One fuzz input: up to 32 calls on a fresh session, then the session closed and the token
/// objects the input made destroyed.
pub fn run(data: &[u8]) {
    let fixture = fixture();
    let mut input = Input(data);
    let mut h = 0;
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    // SAFETY: every pointer passed below points at a live buffer of at least the declared
    // length; that is the one rule the harness keeps.
    unsafe {
        assert_eq!(C_OpenSession(0, flags, null_mut(), None, &mut h), CKR_OK);
        let mut handles = fixture.keys.clone();
        let mut scratch = Scratch::default();
        let mut values = Vec::new();
        let mut out = vec![0u8; 8192];
        for _ in 0..32 {
            if input.0.is_empty() {
                break;
            }
            let key = match input.byte() % 8 {
                7 => input.u32() as CK_OBJECT_HANDLE,
                _ => input.pick(&handles),
            };
            let data = input.bytes(255);
            let mut data = if input.byte().is_multiple_of(16) {
                vec![0; 4096]
            } else {
                data
            };
            let dl = data.len() as CK_ULONG;
            let dp = data.as_mut_ptr();
            let mut out_len = input.declared(out.len());
            let op = if input.byte().is_multiple_of(8) {
                null_mut()
            } else {
                out.as_mut_ptr()
            };
            let ol: *mut CK_ULONG = &mut out_len;
            let mut new = 0;
            let rv = match input.byte() % 27 {
                0 => {
                    let mut t = template(&mut input, &mut values);
                    C_CreateObject(h, t.as_mut_ptr(), t.len() as CK_ULONG, &mut new)
                }
                1 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    let mut t = template(&mut input, &mut values);
                    C_GenerateKey(h, &mut m, t.as_mut_ptr(), t.len() as CK_ULONG, &mut new)
                }
                2 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    let mut t = template(&mut input, &mut values);
                    let mut v2 = Vec::new();
                    let mut t2 = template(&mut input, &mut v2);
                    let mut other = 0;
                    C_GenerateKeyPair(
                        h,
                        &mut m,
                        t.as_mut_ptr(),
                        t.len() as CK_ULONG,
                        t2.as_mut_ptr(),
                        t2.len() as CK_ULONG,
                        &mut new,
                        &mut other,
                    )
                }
                3 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    match input.byte() % 7 {
                        0 => C_EncryptInit(h, &mut m, key),
                        1 => C_DecryptInit(h, &mut m, key),
                        2 => C_SignInit(h, &mut m, key),
                        3 => C_VerifyInit(h, &mut m, key),
                        4 => C_DigestInit(h, &mut m),
                        5 => C_SignRecoverInit(h, &mut m, key),
                        _ => C_VerifyRecoverInit(h, &mut m, key),
                    }
                }
                4 => C_Encrypt(h, dp, dl, op, ol),
                5 => C_Decrypt(h, dp, dl, op, ol),
                6 => C_Sign(h, dp, dl, op, ol),
                7 => C_Verify(h, dp, dl, op, out_len),
                8 => C_Digest(h, dp, dl, op, ol),
                9 => match input.byte() % 6 {
                    0 => C_EncryptUpdate(h, dp, dl, op, ol),
                    1 => C_DecryptUpdate(h, dp, dl, op, ol),
                    2 => C_SignUpdate(h, dp, dl),
                    3 => C_VerifyUpdate(h, dp, dl),
                    4 => C_DigestUpdate(h, dp, dl),
                    _ => C_DigestKey(h, key),
                },
                10 => match input.byte() % 5 {
                    0 => C_EncryptFinal(h, op, ol),
                    1 => C_DecryptFinal(h, op, ol),
                    2 => C_SignFinal(h, op, ol),
                    3 => C_VerifyFinal(h, dp, dl),
                    _ => C_DigestFinal(h, op, ol),
                },
                11 => {
                    let mut t = template(&mut input, &mut values);
                    C_GetAttributeValue(h, key, t.as_mut_ptr(), t.len() as CK_ULONG)
                }
                12 => {
                    let mut t = template(&mut input, &mut values);
                    C_SetAttributeValue(h, key, t.as_mut_ptr(), t.len() as CK_ULONG)
                }
                13 => {
                    let mut t = template(&mut input, &mut values);
                    let rv = C_FindObjectsInit(h, t.as_mut_ptr(), t.len() as CK_ULONG);
                    let mut found = [0; 16];
                    let mut n = 0;
                    let max = input.byte() as CK_ULONG % 17;
                    let _ = C_FindObjects(h, found.as_mut_ptr(), max, &mut n);
                    let _ = C_FindObjectsFinal(h);
                    rv
                }
                14 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    let wrapping = input.pick(&handles);
                    C_WrapKey(h, &mut m, wrapping, key, op, ol)
                }
                15 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    let mut t = template(&mut input, &mut values);
                    C_UnwrapKey(
                        h,
                        &mut m,
                        key,
                        dp,
                        dl,
                        t.as_mut_ptr(),
                        t.len() as CK_ULONG,
                        &mut new,
                    )
                }
                16 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    let mut t = template(&mut input, &mut values);
                    C_DeriveKey(
                        h,
                        &mut m,
                        key,
                        t.as_mut_ptr(),
                        t.len() as CK_ULONG,
                        &mut new,
                    )
                }
                17 => {
                    let mut t = template(&mut input, &mut values);
                    C_CopyObject(h, key, t.as_mut_ptr(), t.len() as CK_ULONG, &mut new)
                }
                18 => {
                    // Only objects this input made; the fixture's keys stay.
                    if handles.len() > fixture.keys.len() && key > 0 && !fixture.keys.contains(&key)
                    {
                        C_DestroyObject(h, key)
                    } else {
                        CKR_OK
                    }
                }
                19 => C_GetOperationState(h, op, ol),
                20 => C_SetOperationState(h, dp, dl, 0, 0),
                21 => {
                    let mut m = mechanism(&mut input, &mut scratch);
                    match input.byte() % 4 {
                        0 => C_MessageEncryptInit(h, &mut m, key),
                        1 => C_MessageDecryptInit(h, &mut m, key),
                        2 => C_MessageSignInit(h, &mut m, key),
                        _ => C_MessageVerifyInit(h, &mut m, key),
                    }
                }
                22 | 23 => {
                    let mut iv = input.bytes(64);
                    let mut tag = input.bytes(32);
                    let mut p = CK_GCM_MESSAGE_PARAMS {
                        pIv: iv.as_mut_ptr(),
                        ulIvLen: input.declared(iv.len()),
                        ulIvFixedBits: input.byte() as CK_ULONG,
                        ivGenerator: input.byte() as CK_ULONG % 5,
                        pTag: tag.as_mut_ptr(),
                        ulTagBits: (input.declared(tag.len()) * 8),
                    };
                    let pp: *mut c_void = (&mut p as *mut CK_GCM_MESSAGE_PARAMS).cast();
                    let pl = size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
                    let mut aad = input.bytes(64);
                    let (ap, al) = (aad.as_mut_ptr(), aad.len() as CK_ULONG);
                    if input.byte().is_multiple_of(2) {
                        // PKCS#11 3.2 authenticated wrapping takes the same parameters.
                        let mut m = CK_MECHANISM {
                            mechanism: input.pick(&[CKM_AES_GCM, CKM_AES_GCM, CKM_AES_KEY_WRAP]),
                            pParameter: pp,
                            ulParameterLen: pl,
                        };
                        let other = input.pick(&handles);
                        let mut t = template(&mut input, &mut values);
                        if input.byte().is_multiple_of(2) {
                            C_WrapKeyAuthenticated(h, &mut m, other, key, ap, al, op, ol)
                        } else {
                            C_UnwrapKeyAuthenticated(
                                h,
                                &mut m,
                                key,
                                dp,
                                dl,
                                t.as_mut_ptr(),
                                t.len() as CK_ULONG,
                                ap,
                                al,
                                &mut new,
                            )
                        }
                    } else {
                        match input.byte() % 6 {
                            0 => C_EncryptMessage(h, pp, pl, ap, al, dp, dl, op, ol),
                            1 => C_DecryptMessage(h, pp, pl, ap, al, dp, dl, op, ol),
                            2 => C_EncryptMessageBegin(h, pp, pl, ap, al),
                            3 => C_EncryptMessageNext(
                                h,
                                pp,
                                pl,
                                dp,
                                dl,
                                op,
                                ol,
                                input.byte() as CK_ULONG & 1,
                            ),
                            4 => C_SignMessage(h, null_mut(), 0, dp, dl, op, ol),
                            _ => C_VerifyMessage(h, null_mut(), 0, dp, dl, op, out_len),
                        }
                    }
                }
                24 => {
                    // The PKCS#11 3.2 KEM.
                    let mut m = mechanism(&mut input, &mut scratch);
                    let mut t = template(&mut input, &mut values);
                    let (tp, tl) = (t.as_mut_ptr(), t.len() as CK_ULONG);
                    if input.byte().is_multiple_of(2) {
                        C_EncapsulateKey(h, &mut m, key, tp, tl, op, ol, &mut new)
                    } else {
                        C_DecapsulateKey(h, &mut m, key, tp, tl, dp, dl, &mut new)
                    }
                }
                25 => match input.byte() % 4 {
                    // PKCS#11 3.2 verification with the signature first.
                    0 => {
                        let mut m = mechanism(&mut input, &mut scratch);
                        C_VerifySignatureInit(h, &mut m, key, op, out_len)
                    }
                    1 => C_VerifySignature(h, dp, dl),
                    2 => C_VerifySignatureUpdate(h, dp, dl),
                    _ => C_VerifySignatureFinal(h),
                },
                _ => C_SessionCancel(h, input.u32() as CK_ULONG),
            };
            assert_ne!(rv, CKR_GENERAL_ERROR, "a call answered CKR_GENERAL_ERROR");
            if rv == CKR_OK && new != 0 {
                handles.push(new);
            }
        }
        // Token objects this input made would pile up on disk: remove them, then the session
        // (which takes its session objects with it).
        for h2 in &handles[fixture.keys.len()..] {
            let _ = C_DestroyObject(h, *h2);
        }
        assert_eq!(C_CloseSession(h), CKR_OK);
    }
}
