//! Cryptographic calls through the ABI: the two-call convention, multi-part operations,
//! operations ending on errors, message-based AES-GCM, digests against a published answer.

use crate::*;
use craton_hsm::ffi::crypt::*;
use craton_hsm::ffi::digest::*;
use craton_hsm::ffi::keys::*;
use craton_hsm::ffi::message::*;
use craton_hsm::ffi::sign::*;
use cryptoki_sys::*;

fn aes_key(h: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let mut len: CK_ULONG = 32;
    let mut yes: CK_BBOOL = CK_TRUE;
    let mut yes2: CK_BBOOL = CK_TRUE;
    let mut t = [
        attr(CKA_VALUE_LEN, &mut len),
        attr(CKA_ENCRYPT, &mut yes),
        attr(CKA_DECRYPT, &mut yes2),
    ];
    let mut m = mech(CKM_AES_KEY_GEN);
    let mut k = 0;
    ok(c!(C_GenerateKey(h, &mut m, t.as_mut_ptr(), 3, &mut k)));
    k
}

#[test]
fn sign_follows_the_two_call_convention() {
    both(
        "crypto_calls::sign_follows_the_two_call_convention",
        "",
        || {
            let h = user_session();
            let (pubh, privh) = ec_pair(h, false);
            let mut m = mech(CKM_ECDSA_SHA256);
            ok(c!(C_SignInit(h, &mut m, privh)));
            assert_eq!(c!(C_SignInit(h, &mut m, privh)), CKR_OPERATION_ACTIVE);
            let mut data = *b"two calls";
            let mut len: CK_ULONG = 0;
            ok(c!(C_Sign(
                h,
                data.as_mut_ptr(),
                9,
                std::ptr::null_mut(),
                &mut len,
            )));
            assert_eq!(len, 64);
            let mut sig = [0u8; 64];
            let mut short: CK_ULONG = 10;
            assert_eq!(
                c!(C_Sign(
                    h,
                    data.as_mut_ptr(),
                    9,
                    sig.as_mut_ptr(),
                    &mut short
                )),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(short, 64);
            // Still active after both: the real call succeeds and ends it.
            ok(c!(C_Sign(
                h,
                data.as_mut_ptr(),
                9,
                sig.as_mut_ptr(),
                &mut len
            )));
            assert_eq!(
                c!(C_Sign(h, data.as_mut_ptr(), 9, sig.as_mut_ptr(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // A bad argument ends the operation.
            ok(c!(C_SignInit(h, &mut m, privh)));
            assert_eq!(
                c!(C_Sign(
                    h,
                    std::ptr::null_mut(),
                    9,
                    sig.as_mut_ptr(),
                    &mut len
                )),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                c!(C_SignUpdate(h, data.as_mut_ptr(), 9)),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // Multi-part gives a signature the one-shot verify accepts.
            ok(c!(C_SignInit(h, &mut m, privh)));
            ok(c!(C_SignUpdate(h, data.as_mut_ptr(), 3)));
            ok(c!(C_SignUpdate(h, data[3..].as_mut_ptr(), 6)));
            let mut len: CK_ULONG = 64;
            ok(c!(C_SignFinal(h, sig.as_mut_ptr(), &mut len)));
            ok(c!(C_VerifyInit(h, &mut m, pubh)));
            ok(c!(C_Verify(h, data.as_mut_ptr(), 9, sig.as_mut_ptr(), 64)));
            // A wrong key type is refused at init.
            let mut rsa = mech(CKM_SHA256_RSA_PKCS);
            assert_eq!(
                c!(C_SignInit(h, &mut rsa, privh)),
                CKR_KEY_TYPE_INCONSISTENT
            );
            assert_eq!(c!(C_SignInit(h, &mut m, 0xdead)), CKR_KEY_HANDLE_INVALID);
        },
    );
}

/// `C_Encrypt` and `C_Decrypt` write into the caller's buffer: a length query, a short
/// buffer (the operation stays), a buffer of exactly the length asked for, and the same
/// bytes as the multi-part calls give for the same IV.
#[test]
fn encrypt_follows_the_two_call_convention_into_exact_buffers() {
    both(
        "crypto_calls::encrypt_follows_the_two_call_convention_into_exact_buffers",
        "",
        || {
            let h = user_session();
            let key = aes_key(h);
            let mut iv = [7u8; 12];
            let mut aad = *b"header";
            let mut params = CK_GCM_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: aad.as_mut_ptr(),
                ulAADLen: 6,
                ulTagBits: 128,
            };
            let mut gcm = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: (&mut params as *mut CK_GCM_PARAMS).cast(),
                ulParameterLen: std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG,
            };
            let mut cbc_iv = [3u8; 16];
            let mut cbc = CK_MECHANISM {
                mechanism: CKM_AES_CBC_PAD,
                pParameter: cbc_iv.as_mut_ptr().cast(),
                ulParameterLen: 16,
            };
            let mut data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
            for (m, name) in [(&mut gcm, "GCM"), (&mut cbc, "CBC-PAD")] {
                let expected_len = if name == "GCM" { 1016 } else { 1008 };
                ok(c!(C_EncryptInit(h, m, key)));
                let mut len: CK_ULONG = 0;
                ok(c!(C_Encrypt(
                    h,
                    data.as_mut_ptr(),
                    1000,
                    std::ptr::null_mut(),
                    &mut len
                )));
                assert_eq!(len, expected_len, "{name} length query");
                let mut out = vec![0xeeu8; expected_len as usize + 8];
                let mut short: CK_ULONG = len - 1;
                assert_eq!(
                    c!(C_Encrypt(
                        h,
                        data.as_mut_ptr(),
                        1000,
                        out.as_mut_ptr(),
                        &mut short
                    )),
                    CKR_BUFFER_TOO_SMALL
                );
                assert_eq!(short, expected_len);
                assert!(
                    out.iter().all(|b| *b == 0xee),
                    "{name}: a refusal writes nothing"
                );
                ok(c!(C_Encrypt(
                    h,
                    data.as_mut_ptr(),
                    1000,
                    out.as_mut_ptr(),
                    &mut len
                )));
                assert_eq!(len, expected_len);
                assert!(
                    out[len as usize..].iter().all(|b| *b == 0xee),
                    "{name}: no overrun"
                );
                assert_eq!(
                    c!(C_Encrypt(
                        h,
                        data.as_mut_ptr(),
                        1000,
                        out.as_mut_ptr(),
                        &mut len
                    )),
                    CKR_OPERATION_NOT_INITIALIZED
                );

                // The same through the multi-part calls.
                ok(c!(C_EncryptInit(h, m, key)));
                let mut parts = vec![0u8; 2048];
                let mut done = 0usize;
                for chunk in data.chunks_mut(333) {
                    let mut n = (parts.len() - done) as CK_ULONG;
                    ok(c!(C_EncryptUpdate(
                        h,
                        chunk.as_mut_ptr(),
                        chunk.len() as CK_ULONG,
                        parts[done..].as_mut_ptr(),
                        &mut n
                    )));
                    done += n as usize;
                }
                let mut n = (parts.len() - done) as CK_ULONG;
                ok(c!(C_EncryptFinal(h, parts[done..].as_mut_ptr(), &mut n)));
                done += n as usize;
                assert_eq!(
                    &parts[..done],
                    &out[..len as usize],
                    "{name}: one-shot = multi-part"
                );

                // Decryption into a buffer of exactly the length it asks for.
                ok(c!(C_DecryptInit(h, m, key)));
                let mut plain_len: CK_ULONG = 0;
                ok(c!(C_Decrypt(
                    h,
                    out.as_mut_ptr(),
                    len,
                    std::ptr::null_mut(),
                    &mut plain_len
                )));
                let mut plain = vec![0u8; plain_len as usize];
                ok(c!(C_Decrypt(
                    h,
                    out.as_mut_ptr(),
                    len,
                    plain.as_mut_ptr(),
                    &mut plain_len
                )));
                assert_eq!(&plain[..plain_len as usize], &data[..], "{name} decrypts");
            }
        },
    );
}

#[test]
fn digest_matches_the_published_sha256_answer() {
    both(
        "crypto_calls::digest_matches_the_published_sha256_answer",
        "",
        || {
            let h = user_session();
            let mut m = mech(CKM_SHA256);
            ok(c!(C_DigestInit(h, &mut m)));
            let mut abc = *b"abc";
            ok(c!(C_DigestUpdate(h, abc.as_mut_ptr(), 1)));
            ok(c!(C_DigestUpdate(h, abc[1..].as_mut_ptr(), 2)));
            let mut out = [0u8; 32];
            let mut len: CK_ULONG = 32;
            ok(c!(C_DigestFinal(h, out.as_mut_ptr(), &mut len)));
            // FIPS 180-2 Appendix B.1.
            let answer = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
            assert_eq!(hex::encode(out), answer);

            // The one-shot call: a length query and a short buffer leave the operation
            // running; the answer goes into a buffer of exactly its length.
            ok(c!(C_DigestInit(h, &mut m)));
            let mut len: CK_ULONG = 0;
            ok(c!(C_Digest(
                h,
                abc.as_mut_ptr(),
                3,
                std::ptr::null_mut(),
                &mut len
            )));
            assert_eq!(len, 32);
            let mut short: CK_ULONG = 31;
            let mut out = [0xeeu8; 33];
            assert_eq!(
                c!(C_Digest(
                    h,
                    abc.as_mut_ptr(),
                    3,
                    out.as_mut_ptr(),
                    &mut short
                )),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(short, 32);
            ok(c!(C_Digest(
                h,
                abc.as_mut_ptr(),
                3,
                out.as_mut_ptr(),
                &mut len
            )));
            assert_eq!(len, 32);
            assert_eq!(hex::encode(&out[..32]), answer);
            assert_eq!(out[32], 0xee, "nothing past the digest");
            assert_eq!(
                c!(C_Digest(h, abc.as_mut_ptr(), 3, out.as_mut_ptr(), &mut len)),
                CKR_OPERATION_NOT_INITIALIZED
            );
        },
    );
}

#[test]
fn aes_cbc_pad_multi_part_round_trips_and_dual_calls_digest_too() {
    both(
        "crypto_calls::aes_cbc_pad_multi_part_round_trips_and_dual_calls_digest_too",
        "",
        || {
            let h = user_session();
            let k = aes_key(h);
            let mut iv = [7u8; 16];
            let mut m = CK_MECHANISM {
                mechanism: CKM_AES_CBC_PAD,
                pParameter: iv.as_mut_ptr().cast(),
                ulParameterLen: 16,
            };
            let mut plain = [0x42u8; 37];
            ok(c!(C_EncryptInit(h, &mut m, k)));
            let mut digest = mech(CKM_SHA256);
            ok(c!(C_DigestInit(h, &mut digest)));
            let mut ct = vec![0u8; 64];
            let mut n1: CK_ULONG = 64;
            ok(c!(C_DigestEncryptUpdate(
                h,
                plain.as_mut_ptr(),
                20,
                ct.as_mut_ptr(),
                &mut n1,
            )));
            let mut n2: CK_ULONG = (64 - n1) as CK_ULONG;
            ok(c!(C_EncryptUpdate(
                h,
                plain[20..].as_mut_ptr(),
                17,
                ct[n1 as usize..].as_mut_ptr(),
                &mut n2,
            )));
            let done = (n1 + n2) as usize;
            let mut n3: CK_ULONG = (64 - done) as CK_ULONG;
            ok(c!(C_EncryptFinal(h, ct[done..].as_mut_ptr(), &mut n3)));
            ct.truncate(done + n3 as usize);
            assert_eq!(ct.len(), 48);
            ok(c!(C_DecryptInit(h, &mut m, k)));
            let mut out = vec![0u8; 48];
            let mut len: CK_ULONG = 48;
            ok(c!(C_Decrypt(
                h,
                ct.as_mut_ptr(),
                48,
                out.as_mut_ptr(),
                &mut len,
            )));
            assert_eq!(&out[..len as usize], &plain[..]);
            // A padding error ends the operation.
            ct[47] ^= 0xff;
            ok(c!(C_DecryptInit(h, &mut m, k)));
            let mut len: CK_ULONG = 48;
            let rv = c!(C_Decrypt(
                h,
                ct.as_mut_ptr(),
                48,
                out.as_mut_ptr(),
                &mut len
            ));
            assert_eq!(rv, CKR_ENCRYPTED_DATA_INVALID);
            assert_eq!(
                c!(C_Decrypt(
                    h,
                    ct.as_mut_ptr(),
                    48,
                    out.as_mut_ptr(),
                    &mut len
                )),
                CKR_OPERATION_NOT_INITIALIZED
            );
        },
    );
}

#[test]
fn message_based_gcm_generates_ivs_and_checks_tags() {
    both(
        "crypto_calls::message_based_gcm_generates_ivs_and_checks_tags",
        "",
        || {
            let h = user_session();
            let k = aes_key(h);
            let mut m = mech(CKM_AES_GCM);
            ok(c!(C_MessageEncryptInit(h, &mut m, k)));
            assert_eq!(c!(C_MessageEncryptInit(h, &mut m, k)), CKR_OPERATION_ACTIVE);
            let mut iv = [0xAAu8; 16];
            iv[..4].copy_from_slice(b"fix!");
            let mut tag = [0u8; 16];
            let mut params = CK_GCM_MESSAGE_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 16,
                ulIvFixedBits: 32,
                ivGenerator: CKG_GENERATE_RANDOM,
                pTag: tag.as_mut_ptr(),
                ulTagBits: 128,
            };
            let plen = size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
            let pp = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            let mut aad = *b"header";
            let mut plain = *b"attack at dawn";
            let mut ct = [0u8; 14];
            let mut len: CK_ULONG = 14;
            ok(c!(C_EncryptMessage(
                h,
                pp,
                plen,
                aad.as_mut_ptr(),
                6,
                plain.as_mut_ptr(),
                14,
                ct.as_mut_ptr(),
                &mut len,
            )));
            assert_eq!(&iv[..4], b"fix!", "the fixed field is kept");
            assert_ne!(&iv[4..], &[0xAA; 12], "the rest is generated");
            assert_ne!(ct, plain);
            let first_iv = iv;
            params.pIv = iv.as_mut_ptr();
            params.pTag = tag.as_mut_ptr();
            let pp = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            ok(c!(C_EncryptMessage(
                h,
                pp,
                plen,
                aad.as_mut_ptr(),
                6,
                plain.as_mut_ptr(),
                14,
                ct.as_mut_ptr(),
                &mut len,
            )));
            assert_ne!(iv, first_iv, "every message gets a fresh IV");
            // A caller-chosen IV is refused for encryption.
            params.ivGenerator = CKG_NO_GENERATE;
            let pp = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            assert_eq!(
                c!(C_EncryptMessage(
                    h,
                    pp,
                    plen,
                    aad.as_mut_ptr(),
                    6,
                    plain.as_mut_ptr(),
                    14,
                    ct.as_mut_ptr(),
                    &mut len
                )),
                CKR_MECHANISM_PARAM_INVALID
            );
            ok(c!(C_MessageEncryptFinal(h)));
            ok(c!(C_MessageDecryptInit(h, &mut m, k)));
            let mut out = [0u8; 14];
            let mut olen: CK_ULONG = 14;
            ok(c!(C_DecryptMessage(
                h,
                pp,
                plen,
                aad.as_mut_ptr(),
                6,
                ct.as_mut_ptr(),
                14,
                out.as_mut_ptr(),
                &mut olen,
            )));
            assert_eq!(out, plain);
            tag[0] ^= 1;
            params.pTag = tag.as_mut_ptr();
            params.pIv = iv.as_mut_ptr();
            let pp = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            assert_eq!(
                c!(C_DecryptMessage(
                    h,
                    pp,
                    plen,
                    aad.as_mut_ptr(),
                    6,
                    ct.as_mut_ptr(),
                    14,
                    out.as_mut_ptr(),
                    &mut olen
                )),
                CKR_ENCRYPTED_DATA_INVALID
            );
            ok(c!(C_MessageDecryptFinal(h)));
            assert_eq!(c!(C_MessageDecryptFinal(h)), CKR_OPERATION_NOT_INITIALIZED);
        },
    );
}

#[test]
fn message_based_signing_in_parts_verifies() {
    both(
        "crypto_calls::message_based_signing_in_parts_verifies",
        "",
        || {
            let h = user_session();
            let (pubh, privh) = ec_pair(h, false);
            let mut m = mech(CKM_ECDSA_SHA256);
            ok(c!(C_MessageSignInit(h, &mut m, privh)));
            let mut data = *b"message in two parts";
            let null = std::ptr::null_mut();
            ok(c!(C_SignMessageBegin(h, null, 0)));
            ok(c!(C_SignMessageNext(
                h,
                null,
                0,
                data.as_mut_ptr(),
                8,
                null.cast(),
                null.cast(),
            )));
            let mut sig = [0u8; 64];
            let mut len: CK_ULONG = 64;
            ok(c!(C_SignMessageNext(
                h,
                null,
                0,
                data[8..].as_mut_ptr(),
                12,
                sig.as_mut_ptr(),
                &mut len,
            )));
            ok(c!(C_MessageSignFinal(h)));
            ok(c!(C_MessageVerifyInit(h, &mut m, pubh)));
            ok(c!(C_VerifyMessage(
                h,
                null,
                0,
                data.as_mut_ptr(),
                20,
                sig.as_mut_ptr(),
                64,
            )));
            sig[0] ^= 1;
            assert_eq!(
                c!(C_VerifyMessage(
                    h,
                    null,
                    0,
                    data.as_mut_ptr(),
                    20,
                    sig.as_mut_ptr(),
                    64
                )),
                CKR_SIGNATURE_INVALID
            );
            ok(c!(C_MessageVerifyFinal(h)));
        },
    );
}

#[test]
fn aes_key_wrap_round_trips_through_wrap_and_unwrap() {
    both(
        "crypto_calls::aes_key_wrap_round_trips_through_wrap_and_unwrap",
        "",
        || {
            let h = user_session();
            let mut len: CK_ULONG = 32;
            let (mut y1, mut y2, mut y3) = (CK_TRUE, CK_TRUE, CK_TRUE);
            let mut t = [
                attr(CKA_VALUE_LEN, &mut len),
                attr(CKA_WRAP, &mut y1),
                attr(CKA_UNWRAP, &mut y2),
            ];
            let mut keygen = mech(CKM_AES_KEY_GEN);
            let mut kek = 0;
            ok(c!(C_GenerateKey(
                h,
                &mut keygen,
                t.as_mut_ptr(),
                3,
                &mut kek
            )));
            let mut len2: CK_ULONG = 16;
            let mut t2 = [
                attr(CKA_VALUE_LEN, &mut len2),
                attr(CKA_EXTRACTABLE, &mut y3),
            ];
            let mut key = 0;
            ok(c!(C_GenerateKey(
                h,
                &mut keygen,
                t2.as_mut_ptr(),
                2,
                &mut key
            )));
            let mut kw = mech(CKM_AES_KEY_WRAP);
            let mut n: CK_ULONG = 0;
            ok(c!(C_WrapKey(
                h,
                &mut kw,
                kek,
                key,
                std::ptr::null_mut(),
                &mut n,
            )));
            assert_eq!(n, 24);
            // The length query wrapped nothing, so no wrap is in the audit log yet.
            let count = || {
                std::fs::read_to_string(audit_path())
                    .unwrap()
                    .lines()
                    .filter(|l| l.contains("\"operation\":\"wrap\""))
                    .count()
            };
            // Operation entries go through the journal and reach the file within a few
            // milliseconds: wait for `want` of them (or 5 s), then long enough for a stray
            // extra one to show.
            let wraps = |want: usize| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while count() < want && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                std::thread::sleep(std::time::Duration::from_millis(30));
                count()
            };
            assert_eq!(wraps(0), 0);
            let mut wrapped = vec![0u8; n as usize];
            let mut short: CK_ULONG = 8;
            assert_eq!(
                c!(C_WrapKey(
                    h,
                    &mut kw,
                    kek,
                    key,
                    wrapped.as_mut_ptr(),
                    &mut short,
                )),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(short, 24);
            assert_eq!(wraps(0), 0);
            ok(c!(C_WrapKey(
                h,
                &mut kw,
                kek,
                key,
                wrapped.as_mut_ptr(),
                &mut n,
            )));
            assert_eq!(wraps(1), 1);
            let mut class = CKO_SECRET_KEY;
            let mut kt = CKK_AES;
            let mut t3 = [attr(CKA_CLASS, &mut class), attr(CKA_KEY_TYPE, &mut kt)];
            let mut back = 0;
            ok(c!(C_UnwrapKey(
                h,
                &mut kw,
                kek,
                wrapped.as_mut_ptr(),
                n,
                t3.as_mut_ptr(),
                2,
                &mut back,
            )));
            assert_eq!(read_attr(h, back, CKA_VALUE_LEN), 16u64.to_ne_bytes());
            wrapped[0] ^= 1;
            assert_eq!(
                c!(C_UnwrapKey(
                    h,
                    &mut kw,
                    kek,
                    wrapped.as_mut_ptr(),
                    n,
                    t3.as_mut_ptr(),
                    2,
                    &mut back
                )),
                CKR_WRAPPED_KEY_INVALID
            );
        },
    );
}

#[test]
fn message_gcm_in_parts_decrypts_whole_and_session_cancel_ends_it() {
    both(
        "crypto_calls::message_gcm_in_parts_decrypts_whole_and_session_cancel_ends_it",
        "",
        || {
            let h = user_session();
            let k = aes_key(h);
            let mut m = mech(CKM_AES_GCM);
            ok(c!(C_MessageEncryptInit(h, &mut m, k)));
            let mut iv = [0u8; 12];
            let mut tag = [0u8; 16];
            let mut params = CK_GCM_MESSAGE_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvFixedBits: 0,
                ivGenerator: CKG_GENERATE_RANDOM,
                pTag: tag.as_mut_ptr(),
                ulTagBits: 128,
            };
            let plen = size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
            let pp = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            let mut aad = *b"hdr";
            ok(c!(C_EncryptMessageBegin(h, pp, plen, aad.as_mut_ptr(), 3)));
            let mut plain = *b"first part, second part";
            let mut ct = [0u8; 23];
            // Earlier parts produce nothing; the last part releases the whole ciphertext.
            let mut n: CK_ULONG = 23;
            ok(c!(C_EncryptMessageNext(
                h,
                pp,
                plen,
                plain.as_mut_ptr(),
                12,
                ct.as_mut_ptr(),
                &mut n,
                0
            )));
            assert_eq!(n, 0);
            // A whole message is refused while one is in parts.
            let mut n2: CK_ULONG = 23;
            assert_eq!(
                c!(C_EncryptMessage(
                    h,
                    pp,
                    plen,
                    aad.as_mut_ptr(),
                    3,
                    plain.as_mut_ptr(),
                    23,
                    ct.as_mut_ptr(),
                    &mut n2
                )),
                CKR_OPERATION_ACTIVE
            );
            let mut n: CK_ULONG = 23;
            ok(c!(C_EncryptMessageNext(
                h,
                pp,
                plen,
                plain[12..].as_mut_ptr(),
                11,
                ct.as_mut_ptr(),
                &mut n,
                CKF_END_OF_MESSAGE
            )));
            assert_eq!(n, 23);
            assert_ne!(iv, [0u8; 12], "the IV was generated at Begin");
            ok(c!(C_MessageDecryptInit(h, &mut m, k)));
            params.pIv = iv.as_mut_ptr();
            params.pTag = tag.as_mut_ptr();
            let pp = (&mut params as *mut CK_GCM_MESSAGE_PARAMS).cast();
            let mut out = [0u8; 23];
            let mut olen: CK_ULONG = 23;
            ok(c!(C_DecryptMessage(
                h,
                pp,
                plen,
                aad.as_mut_ptr(),
                3,
                ct.as_mut_ptr(),
                23,
                out.as_mut_ptr(),
                &mut olen
            )));
            assert_eq!(out, plain);
            // C_SessionCancel ends message-based operations too.
            ok(c!(C_SessionCancel(
                h,
                CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT
            )));
            assert_eq!(c!(C_MessageDecryptFinal(h)), CKR_OPERATION_NOT_INITIALIZED);
            assert_eq!(c!(C_MessageEncryptFinal(h)), CKR_OPERATION_NOT_INITIALIZED);
        },
    );
}
