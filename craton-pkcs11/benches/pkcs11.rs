//! libcraton_hsm.so and SoftHSMv2 loaded into one process and driven through the same
//! PKCS#11 function lists, with raw aws-lc-rs beside them for the same primitive. Each
//! iteration is what an application does per operation: `C_*Init` and the operation (one
//! call, with a buffer big enough). Rows run with 1 and 2 threads, each thread on its own
//! session, for `CRATON_BENCH_SECONDS` (default 1) per cell after a short warm-up
//! (`CRATON_BENCH_FILTER` keeps the rows whose name contains it, or one of its `|`-separated
//! parts). A cell's time is cut into `CRATON_BENCH_SLICES` slices (default 5), and a row's six
//! cells take their slices in turn, so a busy minute of a shared machine falls on all of them
//! alike; each cell shows its best slice (or, where a slice holds fewer than a hundred
//! operations, as for RSA key generation, all its slices together). The table prints
//! operations per second and the ratios. Also `C_Initialize` of our module, with POST and
//! the integrity check, timed over repeated initialise/finalise cycles.
//!
//! Run through `cargo xtask bench`, which builds the release module with its sidecar and
//! names it in `CRATON_BENCH_MODULE`. SoftHSMv2 is skipped (and its column empty) when
//! `/usr/lib/softhsm/libsofthsm2.so` is missing.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]
// The benchmark calls C function pointers out of dynamically loaded modules.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks)]

use aws_lc_rs::{
    aead, cipher, digest, hmac, rand as lc_rand, rsa as lc_rsa, signature as lc_sig,
    signature::KeyPair,
};
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SO_PIN: &[u8] = b"bench-so-pin";
const USER_PIN: &[u8] = b"bench-user-pin";
const DATA: [u8; 4096] = [0x5a; 4096];
const MSG: [u8; 32] = [0x11; 32];

/// A loaded module: its function list and the session objects the rows use.
struct Module {
    _lib: Pkcs11,
    f: &'static CK_FUNCTION_LIST,
    slot: CK_SLOT_ID,
    keys: Keys,
}

#[derive(Clone, Default)]
struct Keys {
    rsa: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    ec: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    ed: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    aes: CK_OBJECT_HANDLE,
    hmac: CK_OBJECT_HANDLE,
    rsa_sig: Vec<u8>,
    ec_sig: Vec<u8>,
}

macro_rules! call {
    ($f:expr, $name:ident($($a:expr),* $(,)?)) => {{
        let rv = unsafe { ($f.$name.expect(stringify!($name)))($($a),*) };
        assert_eq!(rv, CKR_OK, "{} failed: {rv:#x}", stringify!($name));
    }};
}

/// Calls a function of the list and returns its code from the enclosing function unless OK.
macro_rules! step {
    ($f:expr, $name:ident($($a:expr),* $(,)?)) => {{
        let rv = unsafe { ($f.$name.expect(stringify!($name)))($($a),*) };
        if rv != CKR_OK {
            return rv;
        }
    }};
}

fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

fn attr<T>(t: CK_ATTRIBUTE_TYPE, v: &mut T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: (v as *mut T).cast(),
        ulValueLen: size_of::<T>() as CK_ULONG,
    }
}

fn attr_bytes(t: CK_ATTRIBUTE_TYPE, v: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: v.as_mut_ptr().cast(),
        ulValueLen: v.len() as CK_ULONG,
    }
}

impl Module {
    fn load(path: &str) -> Module {
        let lib = unsafe { Pkcs11::new(path) }.unwrap_or_else(|e| panic!("load {path}: {e}"));
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        assert_eq!(unsafe { lib.C_GetFunctionList(&mut list) }, CKR_OK);
        let f: &'static CK_FUNCTION_LIST = unsafe { &*list };
        let mut args = CK_C_INITIALIZE_ARGS {
            flags: CKF_OS_LOCKING_OK,
            ..Default::default()
        };
        call!(
            f,
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast())
        );
        let mut so = SO_PIN.to_vec();
        let mut label = [b' '; 32];
        label[..5].copy_from_slice(b"bench");
        call!(
            f,
            C_InitToken(0, so.as_mut_ptr(), so.len() as CK_ULONG, label.as_mut_ptr())
        );
        // SoftHSMv2 moves an initialised token to a new slot; find it by label.
        let mut n: CK_ULONG = 0;
        call!(f, C_GetSlotList(CK_TRUE, null_mut(), &mut n));
        let mut slots = vec![0; n as usize];
        call!(f, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n));
        let slot = slots
            .into_iter()
            .find(|s| {
                let mut info = CK_TOKEN_INFO::default();
                (unsafe { (f.C_GetTokenInfo.unwrap())(*s, &mut info) }) == CKR_OK
                    && info.label.starts_with(b"bench ")
            })
            .expect("the bench token");
        let mut m = Module {
            _lib: lib,
            f,
            slot,
            keys: Keys::default(),
        };
        let h = m.session();
        call!(f, C_Login(h, CKU_SO, so.as_mut_ptr(), so.len() as CK_ULONG));
        let mut pin = USER_PIN.to_vec();
        call!(f, C_InitPIN(h, pin.as_mut_ptr(), pin.len() as CK_ULONG));
        call!(f, C_Logout(h));
        call!(
            f,
            C_Login(h, CKU_USER, pin.as_mut_ptr(), pin.len() as CK_ULONG)
        );
        // The setup session stays open: its session objects serve every thread's session.
        m.keys = m.make_keys(h);
        m
    }

    fn session(&self) -> CK_SESSION_HANDLE {
        let mut h = 0;
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        call!(
            self.f,
            C_OpenSession(self.slot, flags, null_mut(), None, &mut h)
        );
        h
    }

    fn make_keys(&self, h: CK_SESSION_HANDLE) -> Keys {
        let f = self.f;
        let mut k = Keys::default();
        let mut yes = CK_TRUE;
        let mut bits: CK_ULONG = 2048;
        let mut e = [1u8, 0, 1];
        let mut p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut ed = [0x06, 0x03, 0x2b, 0x65, 0x70];
        let pair = |m: CK_MECHANISM_TYPE, public: &mut [CK_ATTRIBUTE]| {
            let mut m = mech(m);
            let (mut yes, mut no) = (CK_TRUE, CK_FALSE);
            let mut private = [attr(CKA_SIGN, &mut yes), attr(CKA_TOKEN, &mut no)];
            let (mut pubh, mut privh) = (0, 0);
            call!(
                f,
                C_GenerateKeyPair(
                    h,
                    &mut m,
                    public.as_mut_ptr(),
                    public.len() as CK_ULONG,
                    private.as_mut_ptr(),
                    2,
                    &mut pubh,
                    &mut privh
                )
            );
            (pubh, privh)
        };
        k.rsa = pair(
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            &mut [
                attr(CKA_VERIFY, &mut yes),
                attr(CKA_MODULUS_BITS, &mut bits),
                attr_bytes(CKA_PUBLIC_EXPONENT, &mut e),
            ],
        );
        let mut yes2 = CK_TRUE;
        k.ec = pair(
            CKM_EC_KEY_PAIR_GEN,
            &mut [
                attr(CKA_VERIFY, &mut yes2),
                attr_bytes(CKA_EC_PARAMS, &mut p256),
            ],
        );
        let mut yes3 = CK_TRUE;
        k.ed = pair(
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            &mut [
                attr(CKA_VERIFY, &mut yes3),
                attr_bytes(CKA_EC_PARAMS, &mut ed),
            ],
        );
        let secret = |m: CK_MECHANISM_TYPE, usage: [CK_ATTRIBUTE_TYPE; 2]| {
            let mut m = mech(m);
            let mut len: CK_ULONG = 32;
            let (mut a, mut b, mut t) = (CK_TRUE, CK_TRUE, CK_FALSE);
            let mut tpl = [
                attr(CKA_VALUE_LEN, &mut len),
                attr(usage[0], &mut a),
                attr(usage[1], &mut b),
                attr(CKA_TOKEN, &mut t),
            ];
            let mut key = 0;
            call!(f, C_GenerateKey(h, &mut m, tpl.as_mut_ptr(), 4, &mut key));
            key
        };
        k.aes = secret(CKM_AES_KEY_GEN, [CKA_ENCRYPT, CKA_DECRYPT]);
        k.hmac = secret(CKM_GENERIC_SECRET_KEY_GEN, [CKA_SIGN, CKA_VERIFY]);
        // Signatures for the verify rows.
        k.rsa_sig = vec![0; 256];
        k.ec_sig = vec![0; 64];
        let mut m = mech(CKM_SHA256_RSA_PKCS);
        let mut n: CK_ULONG = 256;
        call!(f, C_SignInit(h, &mut m, k.rsa.1));
        call!(
            f,
            C_Sign(
                h,
                MSG.as_ptr().cast_mut(),
                32,
                k.rsa_sig.as_mut_ptr(),
                &mut n
            )
        );
        let mut m = mech(CKM_ECDSA);
        let mut n: CK_ULONG = 64;
        let mut hash = msg_hash();
        call!(f, C_SignInit(h, &mut m, k.ec.1));
        call!(
            f,
            C_Sign(h, hash.as_mut_ptr(), 32, k.ec_sig.as_mut_ptr(), &mut n)
        );
        k
    }
}

/// One iteration of a row on a module: the init call and the operation.
/// Returns the first code that is not `CKR_OK`: a module that cannot do a row shows it
/// instead of a rate.
type Op = fn(&CK_FUNCTION_LIST, CK_SESSION_HANDLE, &Keys, &mut [u8]) -> CK_RV;

fn sign(
    f: &CK_FUNCTION_LIST,
    h: CK_SESSION_HANDLE,
    m: CK_MECHANISM_TYPE,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    out: &mut [u8],
) -> CK_RV {
    let mut m = mech(m);
    let mut n = out.len() as CK_ULONG;
    step!(f, C_SignInit(h, &mut m, key));
    let (p, l) = (data.as_ptr().cast_mut(), data.len() as CK_ULONG);
    step!(f, C_Sign(h, p, l, out.as_mut_ptr(), &mut n));
    CKR_OK
}

fn verify(
    f: &CK_FUNCTION_LIST,
    h: CK_SESSION_HANDLE,
    m: CK_MECHANISM_TYPE,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
) -> CK_RV {
    let mut m = mech(m);
    step!(f, C_VerifyInit(h, &mut m, key));
    let (p, l) = (data.as_ptr().cast_mut(), data.len() as CK_ULONG);
    let (sp, sl) = (sig.as_ptr().cast_mut(), sig.len() as CK_ULONG);
    step!(f, C_Verify(h, p, l, sp, sl));
    CKR_OK
}

fn encrypt(
    f: &CK_FUNCTION_LIST,
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    out: &mut [u8],
) -> CK_RV {
    let mut n = out.len() as CK_ULONG;
    step!(f, C_EncryptInit(h, m, key));
    let data = DATA.as_ptr().cast_mut();
    step!(f, C_Encrypt(h, data, 4096, out.as_mut_ptr(), &mut n));
    CKR_OK
}

fn generate_key_pair(
    f: &CK_FUNCTION_LIST,
    h: CK_SESSION_HANDLE,
    m: CK_MECHANISM_TYPE,
    public: &mut [CK_ATTRIBUTE],
) -> CK_RV {
    let mut m = mech(m);
    let (mut no, mut yes) = (CK_FALSE, CK_TRUE);
    let mut private = [attr(CKA_TOKEN, &mut no), attr(CKA_SIGN, &mut yes)];
    let (mut pubh, mut privh) = (0, 0);
    let (pp, pl) = (public.as_mut_ptr(), public.len() as CK_ULONG);
    step!(
        f,
        C_GenerateKeyPair(
            h,
            &mut m,
            pp,
            pl,
            private.as_mut_ptr(),
            2,
            &mut pubh,
            &mut privh
        )
    );
    step!(f, C_DestroyObject(h, pubh));
    step!(f, C_DestroyObject(h, privh));
    CKR_OK
}

/// The SHA-256 of `MSG`, which the ECDSA rows sign with `CKM_ECDSA` (SoftHSMv2 2.6 has no
/// `CKM_ECDSA_SHA256`; hashing 32 bytes costs a fraction of a microsecond either way).
fn msg_hash() -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, &MSG);
    d.as_ref().try_into().unwrap()
}

const ROWS: &[(&str, Op)] = &[
    ("RSA-2048 sign (SHA-256)", |f, h, k, out| {
        sign(f, h, CKM_SHA256_RSA_PKCS, k.rsa.1, &MSG, out)
    }),
    ("RSA-2048 verify (SHA-256)", |f, h, k, _| {
        verify(f, h, CKM_SHA256_RSA_PKCS, k.rsa.0, &MSG, &k.rsa_sig)
    }),
    ("ECDSA P-256 sign (hash given)", |f, h, k, out| {
        sign(f, h, CKM_ECDSA, k.ec.1, &msg_hash(), out)
    }),
    ("ECDSA P-256 verify (hash given)", |f, h, k, _| {
        verify(f, h, CKM_ECDSA, k.ec.0, &msg_hash(), &k.ec_sig)
    }),
    ("Ed25519 sign", |f, h, k, out| {
        sign(f, h, CKM_EDDSA, k.ed.1, &MSG, out)
    }),
    ("AES-256-GCM encrypt 4 KiB", |f, h, k, out| {
        let mut iv = [7u8; 12];
        let mut p = CK_GCM_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: null_mut(),
            ulAADLen: 0,
            ulTagBits: 128,
        };
        let mut m = CK_MECHANISM {
            mechanism: CKM_AES_GCM,
            pParameter: (&mut p as *mut CK_GCM_PARAMS).cast::<c_void>(),
            ulParameterLen: size_of::<CK_GCM_PARAMS>() as CK_ULONG,
        };
        encrypt(f, h, &mut m, k.aes, out)
    }),
    ("AES-256-CBC-PAD encrypt 4 KiB", |f, h, k, out| {
        let mut iv = [7u8; 16];
        let mut m = CK_MECHANISM {
            mechanism: CKM_AES_CBC_PAD,
            pParameter: iv.as_mut_ptr().cast(),
            ulParameterLen: 16,
        };
        encrypt(f, h, &mut m, k.aes, out)
    }),
    ("SHA-256 4 KiB", |f, h, _, out| {
        let mut m = mech(CKM_SHA256);
        let mut n: CK_ULONG = 32;
        step!(f, C_DigestInit(h, &mut m));
        let data = DATA.as_ptr().cast_mut();
        step!(f, C_Digest(h, data, 4096, out.as_mut_ptr(), &mut n));
        CKR_OK
    }),
    ("HMAC-SHA-256 4 KiB", |f, h, k, out| {
        sign(f, h, CKM_SHA256_HMAC, k.hmac, &DATA, out)
    }),
    ("32 random bytes", |f, h, _, out| {
        step!(f, C_GenerateRandom(h, out.as_mut_ptr(), 32));
        CKR_OK
    }),
    ("AES-256 key generation", |f, h, _, _| {
        let mut m = mech(CKM_AES_KEY_GEN);
        let mut len: CK_ULONG = 32;
        let mut no = CK_FALSE;
        let mut t = [attr(CKA_VALUE_LEN, &mut len), attr(CKA_TOKEN, &mut no)];
        let mut key = 0;
        step!(f, C_GenerateKey(h, &mut m, t.as_mut_ptr(), 2, &mut key));
        step!(f, C_DestroyObject(h, key));
        CKR_OK
    }),
    ("EC P-256 key pair generation", |f, h, _, _| {
        let mut p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut no = CK_FALSE;
        generate_key_pair(
            f,
            h,
            CKM_EC_KEY_PAIR_GEN,
            &mut [
                attr_bytes(CKA_EC_PARAMS, &mut p256),
                attr(CKA_TOKEN, &mut no),
            ],
        )
    }),
    ("RSA-2048 key pair generation", |f, h, _, _| {
        let mut bits: CK_ULONG = 2048;
        let mut e = [1u8, 0, 1];
        let mut no = CK_FALSE;
        generate_key_pair(
            f,
            h,
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            &mut [
                attr(CKA_MODULUS_BITS, &mut bits),
                attr_bytes(CKA_PUBLIC_EXPONENT, &mut e),
                attr(CKA_TOKEN, &mut no),
            ],
        )
    }),
];

/// Raw aws-lc-rs doing the same primitive, with the same per-operation set-up.
struct Raw {
    rsa: lc_rsa::KeyPair,
    rsa_sig: Vec<u8>,
    ec: lc_sig::EcdsaKeyPair,
    ec_sig: Vec<u8>,
    ed: lc_sig::Ed25519KeyPair,
    key: [u8; 32],
}

fn raw_op(row: usize, r: &Raw, out: &mut Vec<u8>) {
    let rng = lc_rand::SystemRandom::new();
    match row {
        0 => {
            out.resize(256, 0);
            r.rsa
                .sign(&lc_sig::RSA_PKCS1_SHA256, &rng, &MSG, out)
                .unwrap();
        }
        1 => lc_sig::UnparsedPublicKey::new(
            &lc_sig::RSA_PKCS1_2048_8192_SHA256,
            r.rsa.public_key().as_ref(),
        )
        .verify(&MSG, &r.rsa_sig)
        .unwrap(),
        2 => {
            let d = digest::digest(&digest::SHA256, &MSG);
            let _ = r.ec.sign_digest(&d).unwrap();
        }
        3 => lc_sig::UnparsedPublicKey::new(
            &lc_sig::ECDSA_P256_SHA256_FIXED,
            r.ec.public_key().as_ref(),
        )
        .verify(&MSG, &r.ec_sig)
        .unwrap(),
        4 => {
            let _ = r.ed.sign(&MSG);
        }
        5 => {
            let k =
                aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &r.key).unwrap());
            out.clear();
            out.extend_from_slice(&DATA);
            k.seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key([7; 12]),
                aead::Aad::empty(),
                out,
            )
            .unwrap();
        }
        6 => {
            let k = cipher::PaddedBlockEncryptingKey::cbc_pkcs7(
                cipher::UnboundCipherKey::new(&cipher::AES_256, &r.key).unwrap(),
            )
            .unwrap();
            out.clear();
            out.extend_from_slice(&DATA);
            k.less_safe_encrypt(
                out,
                cipher::EncryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from([7u8; 16])),
            )
            .unwrap();
        }
        7 => {
            let _ = digest::digest(&digest::SHA256, &DATA);
        }
        8 => {
            let _ = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &r.key), &DATA);
        }
        9 => {
            out.resize(32, 0);
            lc_rand::fill(out).unwrap();
        }
        10 => {
            out.resize(32, 0);
            lc_rand::fill(out).unwrap();
        }
        11 => {
            let _ =
                lc_sig::EcdsaKeyPair::generate(&lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        }
        _ => {
            let _ = lc_rsa::KeyPair::generate(lc_rsa::KeySize::Rsa2048).unwrap();
        }
    }
}

fn seconds() -> Duration {
    let s: f64 = std::env::var("CRATON_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(s)
}

/// How many slices each cell's time is cut into (`CRATON_BENCH_SLICES`, default 5).
fn slices() -> u32 {
    std::env::var("CRATON_BENCH_SLICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5)
}

/// What a cell's slices measured: the best slice's rate, and all their operations and time.
#[derive(Clone, Copy, Default)]
struct Cell {
    best: f64,
    ops: u64,
    secs: f64,
}

impl Cell {
    fn add(self, (ops, secs): (u64, f64)) -> Cell {
        Cell {
            best: self.best.max(ops as f64 / secs),
            ops: self.ops + ops,
            secs: self.secs + secs,
        }
    }

    /// Operations per second: the best slice, which a busy moment of the machine can only
    /// slow down. Where a slice holds few operations (RSA key generation: tens of
    /// milliseconds each, and how long depends on the primes found), the best slice is the
    /// luckiest one, so all slices together count instead.
    fn rate(&self) -> f64 {
        if self.ops < 100 * u64::from(slices()) {
            self.ops as f64 / self.secs
        } else {
            self.best
        }
    }
}

/// Runs `body` on `threads` threads for one slice of a cell's time; returns the operations
/// done and the seconds taken.
fn slice(threads: usize, body: &(dyn Fn(&AtomicBool) -> u64 + Sync)) -> (u64, f64) {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                total.fetch_add(body(&stop), Ordering::Relaxed);
            });
        }
        std::thread::sleep(seconds() / slices());
        stop.store(true, Ordering::Relaxed);
    });
    (
        total.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// One slice of `row` on `m` (operations, seconds), or the code the module answered instead.
fn module_slice(m: &Module, row: usize, threads: usize) -> Result<(u64, f64), CK_RV> {
    let op = ROWS[row].1;
    {
        let h = m.session();
        let mut out = vec![0u8; 8192];
        let rv = op(m.f, h, &m.keys, &mut out);
        call!(m.f, C_CloseSession(h));
        if rv != CKR_OK {
            return Err(rv);
        }
    }
    Ok(slice(threads, &|stop| {
        let h = m.session();
        let mut out = vec![0u8; 8192];
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            assert_eq!(op(m.f, h, &m.keys, &mut out), CKR_OK);
            n += 1;
        }
        call!(m.f, C_CloseSession(h));
        n
    }))
}

fn raw_slice(raw: &Raw, row: usize, threads: usize) -> (u64, f64) {
    slice(threads, &|stop| {
        let mut out = Vec::with_capacity(8192);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            raw_op(row, raw, &mut out);
            n += 1;
        }
        n
    })
}

/// C_Initialize (config, POST, integrity check, store open) plus C_Finalize, repeated: the
/// first call in the process, and the best of the next 20. The library stays loaded
/// (returned) so the module is not unloaded under the benchmark.
fn initialize_time(path: &str) -> (Duration, Duration, Pkcs11) {
    let lib = unsafe { Pkcs11::new(path) }.unwrap();
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    assert_eq!(unsafe { lib.C_GetFunctionList(&mut list) }, CKR_OK);
    let f = unsafe { &*list };
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        call!(f, C_Initialize(null_mut()));
        times.push(t.elapsed());
        call!(f, C_Finalize(null_mut()));
    }
    let best = times[1..].iter().min().copied().unwrap();
    (times[0], best, lib)
}

fn fmt_rate(r: f64) -> String {
    if r >= 100_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else if r >= 1000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

fn main() {
    let Ok(module) = std::env::var("CRATON_BENCH_MODULE") else {
        eprintln!("pkcs11 bench: run it through `cargo xtask bench` (CRATON_BENCH_MODULE unset)");
        return;
    };
    let scratch = std::env::temp_dir().join(format!("craton-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("softhsm")).unwrap();
    let config = scratch.join("craton_hsm.toml");
    // Audit off: this measures the PKCS#11 path; the audit log's cost has its own rows in
    // docs/benchmarks.md. PBKDF2 at its production default; only login pays it.
    std::fs::write(
        &config,
        format!(
            "[token]\nslots = 1\nstate_dir = {:?}\n[audit]\nlevel = \"none\"\n",
            scratch.join("state")
        ),
    )
    .unwrap();
    let softhsm_conf = scratch.join("softhsm2.conf");
    std::fs::write(
        &softhsm_conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            scratch.join("softhsm").display()
        ),
    )
    .unwrap();
    // SAFETY: no other thread exists yet.
    unsafe {
        std::env::set_var("CRATON_HSM_CONFIG", &config);
        std::env::set_var("SOFTHSM2_CONF", &softhsm_conf);
    }

    let (first_init, init, _keep_loaded) = initialize_time(&module);
    let ours = Module::load(&module);
    let theirs = std::path::Path::new(SOFTHSM)
        .exists()
        .then(|| Module::load(SOFTHSM));
    let rsa = lc_rsa::KeyPair::generate(lc_rsa::KeySize::Rsa2048).unwrap();
    let ec = lc_sig::EcdsaKeyPair::generate(&lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let rng = lc_rand::SystemRandom::new();
    let mut rsa_sig = vec![0u8; 256];
    rsa.sign(&lc_sig::RSA_PKCS1_SHA256, &rng, &MSG, &mut rsa_sig)
        .unwrap();
    let ec_sig = ec.sign(&rng, &MSG).unwrap().as_ref().to_vec();
    let raw = Raw {
        rsa,
        rsa_sig,
        ec,
        ec_sig,
        ed: lc_sig::Ed25519KeyPair::generate().unwrap(),
        key: [9; 32],
    };

    println!();
    println!(
        "PKCS#11 Init + operation, operations per second ({} s per cell, the best of {} slices \
         taken in turn)",
        seconds().as_secs_f64(),
        slices()
    );
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7} {:>9}",
        "row",
        "craton",
        "softhsm",
        "aws-lc",
        "vs soft",
        "vs raw",
        "craton×2",
        "soft×2",
        "scale",
        "raw scale"
    );
    let cell = |r: &Result<f64, CK_RV>| match r {
        Ok(v) => fmt_rate(*v),
        Err(rv) => format!("rv {rv:#x}"),
    };
    let filter = std::env::var("CRATON_BENCH_FILTER").unwrap_or_default();
    for (i, (name, _)) in ROWS.iter().enumerate() {
        if !filter.split('|').any(|f| name.contains(f)) {
            continue;
        }
        // The six cells take their slices in turn.
        let soft = |threads| {
            theirs
                .as_ref()
                .map_or(Err(CKR_GENERAL_ERROR), |t| module_slice(t, i, threads))
        };
        let (mut c1, mut r1, mut c2, mut r2) = Default::default();
        let (mut s1, mut s2): (Result<Cell, CK_RV>, Result<Cell, CK_RV>) =
            (Ok(Cell::default()), Ok(Cell::default()));
        for _ in 0..slices() {
            c1 = Cell::add(
                c1,
                module_slice(&ours, i, 1).expect("our module runs every row"),
            );
            s1 = s1.and_then(|c| soft(1).map(|v| c.add(v)));
            r1 = Cell::add(r1, raw_slice(&raw, i, 1));
            c2 = Cell::add(
                c2,
                module_slice(&ours, i, 2).expect("our module runs every row"),
            );
            s2 = s2.and_then(|c| soft(2).map(|v| c.add(v)));
            // What the machine itself gives two threads, for the scale column to be read
            // against.
            r2 = Cell::add(r2, raw_slice(&raw, i, 2));
        }
        let (c1, r1, c2, r2) = (c1.rate(), r1.rate(), c2.rate(), r2.rate());
        let (s1, s2) = (s1.map(|c| c.rate()), s2.map(|c| c.rate()));
        println!(
            "{:<32} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7} {:>9}",
            name,
            fmt_rate(c1),
            cell(&s1),
            fmt_rate(r1),
            s1.map_or("-".to_owned(), |s| format!("{:.2}", c1 / s)),
            format!("{:.2}", c1 / r1),
            fmt_rate(c2),
            cell(&s2),
            format!("{:.2}", c2 / c1),
            format!("{:.2}", r2 / r1),
        );
        // The fixed cost per Init+operation over raw aws-lc-rs, in microseconds.
        eprintln!(
            "  {name}: {:+.2} µs per operation over aws-lc-rs",
            1e6 / c1 - 1e6 / r1
        );
    }
    println!();
    println!(
        "C_Initialize (config, POST, integrity check, store open): first in the process {:.2} ms, \
         then best of 20 {:.2} ms",
        first_init.as_secs_f64() * 1e3,
        init.as_secs_f64() * 1e3
    );
    drop(ours);
    drop(theirs);
    let _ = std::fs::remove_dir_all(&scratch);
}
