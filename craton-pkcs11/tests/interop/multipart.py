"""PyKCS11 drives multi-part operations: `python3 multipart.py <module> <token label> <PIN>`.

Run by `cargo xtask interop` against libcraton_hsm.so and SoftHSMv2. Every multi-part result
is checked against something independent: hashlib for digests and HMAC, the single-part call
for deterministic RSA signatures, a decryption for ciphertexts.
"""

import hashlib
import hmac
import sys

import PyKCS11
from PyKCS11 import LowLevel
from PyKCS11.LowLevel import (
    CKA_CLASS, CKA_DECRYPT, CKA_ENCRYPT, CKA_KEY_TYPE, CKA_MODULUS_BITS, CKA_PRIVATE,
    CKA_PUBLIC_EXPONENT, CKA_SENSITIVE, CKA_SIGN, CKA_TOKEN, CKA_VALUE, CKA_VALUE_LEN,
    CKA_VERIFY, CKF_RW_SESSION, CKF_SERIAL_SESSION, CKK_AES, CKK_GENERIC_SECRET,
    CKM_AES_CBC_PAD, CKM_AES_KEY_GEN, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_SHA256,
    CKM_SHA256_HMAC, CKM_SHA256_RSA_PKCS, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY,
    CKR_OK, CKR_SIGNATURE_INVALID,
)

CHUNKS = [bytes([i]) * (i * 37 % 200 + 1) for i in range(1, 40)]
DATA = b"".join(CHUNKS)


def call(rv, what):
    if rv != CKR_OK:
        raise RuntimeError(f"{what} returned {PyKCS11.CKR.get(rv, hex(rv))}")


def pump(update, final, session, parts):
    """Feeds `parts` to a multi-part update call, then finishes; returns all output."""
    out = b""
    for part in parts:
        # A buffer large enough for any block-cipher update, so no call is a length query.
        buf = LowLevel.ckbytelist([0] * (len(part) + 32))
        call(update(session, LowLevel.ckbytelist(part), buf), update.__name__)
        out += bytes(buf)
    last = LowLevel.ckbytelist([0] * 64)
    call(final(session, last), final.__name__)
    return out + bytes(last)


def main():
    module, label, pin = sys.argv[1:4]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == label)
    session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    session.login(pin)
    low, h = session.lib, session.session

    # Digest in 39 parts.
    digest = session.digestSession(PyKCS11.Mechanism(CKM_SHA256))
    for part in CHUNKS:
        digest.update(part)
    if bytes(digest.final()) != hashlib.sha256(DATA).digest():
        raise RuntimeError("multi-part SHA-256 differs from hashlib")

    # AES-256-CBC-PAD encrypt and decrypt in parts that do not align with the block size.
    aes = session.generateKey([
        (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
        (CKA_TOKEN, False), (CKA_ENCRYPT, True), (CKA_DECRYPT, True),
    ], PyKCS11.Mechanism(CKM_AES_KEY_GEN))
    iv = bytes(range(16))
    mech = PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv)
    call(low.C_EncryptInit(h, mech.to_native(), aes), "C_EncryptInit")
    sealed = pump(low.C_EncryptUpdate, low.C_EncryptFinal, h, CHUNKS)
    if len(sealed) != (len(DATA) // 16 + 1) * 16:
        raise RuntimeError(f"CBC-PAD ciphertext has {len(sealed)} bytes")
    call(low.C_DecryptInit(h, mech.to_native(), aes), "C_DecryptInit")
    pieces = [sealed[i:i + 23] for i in range(0, len(sealed), 23)]
    if pump(low.C_DecryptUpdate, low.C_DecryptFinal, h, pieces) != DATA:
        raise RuntimeError("multi-part CBC-PAD round trip changed the data")
    one_shot = bytes(session.decrypt(aes, sealed, mech))
    if one_shot != DATA:
        raise RuntimeError("single-part decryption of multi-part ciphertext differs")

    # HMAC-SHA-256 with an imported key, in parts, against Python's hmac.
    secret = bytes(range(32))
    mac_key = session.createObject([
        (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET), (CKA_TOKEN, False),
        (CKA_SIGN, True), (CKA_VERIFY, True), (CKA_SENSITIVE, True), (CKA_VALUE, secret),
    ])
    hmac_mech = PyKCS11.Mechanism(CKM_SHA256_HMAC)
    call(low.C_SignInit(h, hmac_mech.to_native(), mac_key), "C_SignInit")
    for part in CHUNKS:
        call(low.C_SignUpdate(h, LowLevel.ckbytelist(part)), "C_SignUpdate")
    mac = LowLevel.ckbytelist()
    call(low.C_SignFinal(h, mac), "C_SignFinal (length)")
    call(low.C_SignFinal(h, mac), "C_SignFinal")
    if bytes(mac) != hmac.new(secret, DATA, hashlib.sha256).digest():
        raise RuntimeError("multi-part HMAC-SHA-256 differs from Python's hmac")

    # RSA PKCS#1 v1.5 with SHA-256 is deterministic: multi-part must equal single-part.
    public, private = session.generateKeyPair([
        (CKA_CLASS, CKO_PUBLIC_KEY), (CKA_TOKEN, False), (CKA_VERIFY, True),
        (CKA_MODULUS_BITS, 2048), (CKA_PUBLIC_EXPONENT, (1, 0, 1)),
    ], [
        (CKA_CLASS, CKO_PRIVATE_KEY), (CKA_TOKEN, False), (CKA_PRIVATE, True),
        (CKA_SIGN, True), (CKA_SENSITIVE, True),
    ], PyKCS11.Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN))
    rsa = PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS)
    call(low.C_SignInit(h, rsa.to_native(), private), "C_SignInit")
    for part in CHUNKS:
        call(low.C_SignUpdate(h, LowLevel.ckbytelist(part)), "C_SignUpdate")
    signature = LowLevel.ckbytelist()
    call(low.C_SignFinal(h, signature), "C_SignFinal (length)")
    call(low.C_SignFinal(h, signature), "C_SignFinal")
    if bytes(signature) != bytes(session.sign(private, DATA, rsa)):
        raise RuntimeError("multi-part RSA signature differs from single-part")
    call(low.C_VerifyInit(h, rsa.to_native(), public), "C_VerifyInit")
    for part in CHUNKS:
        call(low.C_VerifyUpdate(h, LowLevel.ckbytelist(part)), "C_VerifyUpdate")
    call(low.C_VerifyFinal(h, signature), "C_VerifyFinal")
    call(low.C_VerifyInit(h, rsa.to_native(), public), "C_VerifyInit")
    call(low.C_VerifyUpdate(h, LowLevel.ckbytelist(DATA + b"!")), "C_VerifyUpdate")
    if low.C_VerifyFinal(h, signature) != CKR_SIGNATURE_INVALID:
        raise RuntimeError("C_VerifyFinal accepted a signature over different data")

    session.logout()
    session.closeSession()
    print(f"ok: SHA-256, AES-CBC-PAD, HMAC-SHA-256 and RSA sign/verify over "
          f"{len(CHUNKS)} parts ({len(DATA)} bytes)")


if __name__ == "__main__":
    main()
